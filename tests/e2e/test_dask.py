"""e2e: examples/dask/classify.py -- a compiled classifier (.so) mapped over
shards of an image directory on a Dask LocalCluster of 2 workers.

A small classifier with 1000 classes (so the ImageNet-1k names are in the
CSV) compiled at 32x32, batch 4; 300 generated images (JPEG and PNG, RGB,
grayscale and RGBA, sizes 20..90, in two subdirectories) and 3 broken files
(a truncated JPEG, a text file named .png, an empty .jpg), plus a file that
is no image by its name (skipped).  Checks:
- the run: exit 1 (some images failed), every image one row in sorted
  order, header file,top1,prob1,name1,...,error; every good row equals a
  direct run of the Python module on the same file (class indices, names,
  probabilities to the CSV's 6 digits), and for a sample, the compiled
  executable's --image --top --json; the broken files have an error naming
  them (also on stderr), the rest are done; each worker process opened the
  model once (the summary line says so);
- a dask-scheduler and a dask-worker started here, as on a cluster:
  --scheduler gives the same CSV; before the worker joins, one sentence;
- a directory of good images only (on that worker): exit 0, --top 2
  columns;
- refused with one sentence, exit 1, no CSV (an existing one untouched):
  a missing model, a backbone, an empty directory, an output directory
  that does not exist; --workers 0 is a usage error (exit 2).
Skipped (77) without Dask's distributed or PIL.
"""
import csv
import os
import signal
import socket
import subprocess
import sys

import e2e_common as E
import numpy as np

try:
    import distributed  # noqa: F401
    from PIL import Image
except ImportError as e:
    print("SKIP: %s (Debian: python3-distributed, python3-pil)" % e)
    sys.exit(77)

sys.path.insert(0, os.path.join(E.REPO, "runtime", "python"))
import mambac  # noqa: E402

t = E.Test("dask")
SCRIPT = os.path.join(E.REPO, "examples", "dask", "classify.py")
N = 300

cfg = E.write_config(t.path("k.yaml"), 16, [1, 1, 1, 1], num_classes=1000, mlp_ratio=2.0, name="dk")
sd = E.sm.random_state_dict(16, [1, 1, 1, 1], 1000, 3, 2.0, seed=3)
wts = E.save_weights("model", t.path("k.pth"), sd)
so, exe = t.path("dk.so"), t.path("dk")
ok = True
for out, extra in ((so, ["--emit", "shared"]), (exe, [])):
    rc, o, err, dt = t.run(["compile", cfg, "--weights", wts, "--image-size", "32", "--batch", "4", "-o", out] + extra,
                           timeout=600)
    ok = t.check(rc == 0, "compile %s (%.1fs)%s" % (os.path.basename(out), dt, "" if rc == 0 else " " + err[-500:])) and ok
if not ok:
    t.finish()
if not mambac.read_info(so).get("images"):
    print("SKIP: the .so reads no images (mambac built without libjpeg/libpng)")
    sys.exit(77)

# ------------------------------------------------------------ the images
imgdir = t.path("images")
rng = np.random.RandomState(1)
for i in range(N):
    sub = os.path.join(imgdir, "a" if i % 3 else "b")
    os.makedirs(sub, exist_ok=True)
    w0, h0 = rng.randint(20, 91, 2)
    mode = ("RGB", "L", "RGBA")[i % 5 % 3]
    c = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    base = rng.randint(0, 256, (1, 1, c)).astype(np.float32)
    a = np.clip(base + rng.standard_normal((h0, w0, c)) * 40 + np.linspace(-60, 60, w0)[None, :, None], 0, 255)
    a = a.astype(np.uint8)
    im = Image.fromarray(a[:, :, 0] if mode == "L" else a, mode)
    if i % 2 or mode == "RGBA":
        im.save(os.path.join(sub, "img%03d.png" % i))
    else:
        im.save(os.path.join(sub, "img%03d.jpg" % i), quality=85)
good_jpg = os.path.join(imgdir, "b", "img000.jpg")
with open(good_jpg, "rb") as f:
    head = f.read(300)
broken = {"a/broken.jpg": head, "b/notimage.png": b"this is not a PNG\n", "b/empty.jpg": b""}
for name, data in broken.items():
    with open(os.path.join(imgdir, name), "wb") as f:
        f.write(data)
with open(os.path.join(imgdir, "a", "notes.txt"), "w") as f:
    f.write("not an image by its name: skipped\n")
files = sorted(os.path.relpath(os.path.join(d, n), imgdir) for d, _, ns in os.walk(imgdir) for n in ns
               if n.endswith((".jpg", ".png")))
t.check(len(files) == N + len(broken), "%d images and %d broken files generated" % (N, len(broken)))

# the direct run: the Python module on every good file
m = mambac.Model(so)
K = 3
x, sizes, good, errors = m.try_load_images([os.path.join(imgdir, f) for f in files])
direct = {os.path.relpath(p, imgdir): r for p, r in zip(good, m.top(m(x), K))}
t.check(sorted(os.path.relpath(p, imgdir) for p, _ in errors) == sorted(broken),
        "the module alone: the %d broken files fail, %d read" % (len(errors), len(good)))
names = m.classes


def classify(label, args, want_rc, timeout=120):
    rc, out, err, dt = E.run_prog([sys.executable, SCRIPT] + args, timeout=timeout)
    bad = any(w in err.lower() for w in E.BAD_WORDS) or "Traceback" in err
    t.check(rc == want_rc and not bad, "%s: rc=%s (want %d), %.1fs%s" % (
        label, rc, want_rc, dt, "" if rc == want_rc and not bad else " " + err.strip()[-1500:]))
    return rc, err, dt


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


# ------------------------------------------------------------ the run
res = t.path("results.csv")
rc, err, dt = classify("classify.py --workers 2 --top 3 --shard-size 32",
                       ["--model", so, "--images", imgdir, "--out", res, "--workers", "2", "--top", str(K),
                        "--shard-size", "32", "--progress", "1"], 1)
print("  note: %d images on 2 workers in %.1f s (cluster start included)" % (len(files), dt))
rows = read_csv(res) if os.path.exists(res) else []
hdr = ["file"] + sum([["top%d" % j, "prob%d" % j, "name%d" % j] for j in range(1, K + 1)], []) + ["error"]
t.check(rows and rows[0] == hdr, "CSV header %s" % (rows[0] if rows else None))
body = rows[1:]
t.check([r[0] for r in body] == files, "one row per file, in sorted order (%d rows)" % len(body))
mism = []
for r in body:
    f = r[0]
    if f in broken:
        continue
    want = direct.get(f)
    got = [(int(r[1 + 3 * j]), float(r[2 + 3 * j]), r[3 + 3 * j]) for j in range(K)] if r[1] else None
    if (got is None or r[-1] != "" or [g[0] for g in got] != [b.index for b in want]
            or any(abs(g[1] - b.prob) > 1e-6 * max(1.0, b.prob) * 10 for g, b in zip(got, want))
            or [g[2] for g in got] != [names[b.index] for b in want]):
        mism.append(f)
t.check(not mism, "every good row equals the Python module's top-%d on the same file (%d differ: %s)" % (
    K, len(mism), mism[:3]))
errs = {r[0]: r[-1] for r in body if r[-1]}
t.check(sorted(errs) == sorted(broken) and all(os.path.basename(f) in e for f, e in errs.items())
        and all(r[1] == "" for r in body if r[0] in broken),
        "the broken files, and only they, have an error naming them: %s" % {k: v[-60:] for k, v in errs.items()})
t.check(all(os.path.basename(f) in err for f in broken) and "%d images classified, %d failed" % (N, 3) in err
        and "images/s" in err, "stderr: each failure, progress, and the summary")
t.check("2 worker processes (OpenMP threads: 1), the model opened once in each" in err,
        "each of the 2 worker processes (1 OpenMP thread: the 2 cores shared out) opened the model once for its "
        "shards: %s" % err.strip().splitlines()[-1:])
t.check(not [n for n in os.listdir(t.work) if n.endswith(".tmp")], "no temporary file left")

# the compiled executable on a sample of the same files (--image, --top)
sample = [f for f in files if f not in broken][::37]
rc, out, err, dt = E.run_prog([exe, "--image"] + [os.path.join(imgdir, f) for f in sample] + ["--top", str(K),
                                                                                             "--json"])
got = None
if rc == 0:
    import json
    try:
        got = json.loads(out)
    except ValueError:
        got = None
print("  note: exe --json: %s" % (out.strip()[:300] if got is None else "parsed"))
by_file = {}
for img in (got.get("images", []) if isinstance(got, dict) else got or []):
    by_file[os.path.relpath(img.get("file", ""), imgdir)] = [c.get("class") for c in img.get("top", [])]
csv_top = {r[0]: [int(r[1 + 3 * j]) for j in range(K)] for r in body if r[1]}
t.check(rc == 0 and all(by_file.get(f) == csv_top[f] for f in sample),
        "the executable's --image --top %d --json on %d of the files gives the CSV's classes (rc=%s %s)" % (
            K, len(sample), rc, err.strip()[-200:]))

# ------------------------------------------------------------ a scheduler and a worker, as on a cluster
def start(args, log):
    with open(t.path(log), "w") as f:
        return subprocess.Popen([sys.executable, "-m"] + args, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
addr = "tcp://127.0.0.1:%d" % port
procs = [start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
               "scheduler.log")]
try:
    res3 = t.path("r3.csv")
    rc, err, dt = classify("--scheduler with no worker", ["--model", so, "--images", imgdir, "--out", res3,
                                                          "--scheduler", addr, "--connect-timeout", "3"], 1)
    t.check("no worker joined" in err and not os.path.exists(res3), "no worker: one sentence, no CSV: %s" %
            err.strip().splitlines()[-1:])
    procs.append(start(["distributed.cli.dask_worker", addr, "--nworkers", "1", "--nthreads", "1",
                        "--no-dashboard"], "worker.log"))
    rc, err, dt = classify("--scheduler %s (one dask-worker)" % addr,
                           ["--model", so, "--images", imgdir, "--out", res3, "--scheduler", addr, "--top", str(K),
                            "--shard-size", "50"], 1)
    same = os.path.exists(res3) and read_csv(res3) == rows
    t.check(same and "1 worker processes (OpenMP threads: 1), the model opened once in each" in err,
            "--scheduler: the same CSV as the LocalCluster's; the worker's default of 1 OpenMP thread (Dask's nanny "
            "sets OMP_NUM_THREADS=1) (%.1fs)" % dt)
    # good images only: exit 0
    gooddir = t.path("good")
    os.makedirs(gooddir)
    some = [f for f in files[:40] if f not in broken]
    for f in some:
        os.link(os.path.join(imgdir, f), os.path.join(gooddir, f.replace("/", "_")))
    res2 = t.path("r2.csv")
    classify("classify.py on good images only --top 2", ["--model", so, "--images", gooddir, "--out", res2,
                                                          "--top", "2", "--scheduler", addr], 0)
    rows2 = read_csv(res2) if os.path.exists(res2) else []
    t.check(len(rows2) == 1 + len(some) and rows2[0] == ["file", "top1", "prob1", "name1", "top2", "prob2", "name2",
                                                          "error"] and all(r[-1] == "" for r in rows2[1:]),
            "good images only: exit 0, %d rows, top-2 columns %s" % (len(rows2) - 1, rows2[0] if rows2 else None))
finally:
    for p in reversed(procs):
        stop(p)

# ------------------------------------------------------------ refusals: no CSV, nothing touched
old = t.path("old.csv")
before = b"file,top1\nan earlier run,1\n"
with open(old, "wb") as f:
    f.write(before)
bcfg = t.path("bb.yaml")
with open(bcfg, "w") as f:
    f.write("MODEL:\n  TYPE: spatial_mamba\n  NAME: bb\n  SPATIALMAMBA: {EMBED_DIM: 16, DEPTHS: [1, 1, 1, 1], "
            "D_STATE: 1, MLP_RATIO: 2.0}\n  BACKBONE: {OUT_INDICES: [2, 3]}\n")
rc, o, e, _ = t.run(["compile", bcfg, "--image-size", "32", "--emit", "shared", "-o", t.path("bb.so")])
os.makedirs(t.path("empty"))
cases = [("a missing model", ["--model", t.path("none.so")], "none.so"),
         ("an empty directory", ["--images", t.path("empty")], "no .jpg"),
         ("an output directory that does not exist", ["--out", t.path("nodir", "r.csv")], "r.csv")]
if rc == 0:
    cases.append(("a backbone", ["--model", t.path("bb.so")], "classifier"))
for label, change, must in cases:
    args = {"--model": so, "--images": imgdir, "--out": old}
    args.update(dict(zip(change[::2], change[1::2])))
    rc, err, dt = classify("refused: " + label, sum([[k, v] for k, v in args.items()], []), 1, timeout=60)
    with open(old, "rb") as f:
        same = f.read() == before
    lines = [ln for ln in err.strip().splitlines() if ln]
    t.check(same and len(lines) == 1 and must in lines[0] and dt < 15,
            "refused: %s: one sentence (%s), the old CSV untouched" % (label, lines[-1][:160] if lines else ""))
rc, err, dt = classify("--workers 0: a usage error", ["--model", so, "--images", imgdir, "--out", old,
                                                      "--workers", "0"], 2, timeout=60)

t.finish()
