#!/usr/bin/env python3
"""examples/dask/classify.py -- classifies every image below a directory
with a compiled model (.so) on a Dask cluster, results to one CSV.

    python3 examples/dask/classify.py --model OUT.so --images DIR --out results.csv
        [--workers N] [--scheduler tcp://host:8786] [--top K] [--shard-size S]
        [--threads T] [--weights W]

Takes: OUT.so and OUT.weights (from `mambac compile MODEL.yaml --weights
ckpt.pth --emit shared -o OUT`; a classifier with image support), the
.jpg/.jpeg/.png files below DIR (recursively, sorted; names starting with
"." skipped), and either a LocalCluster of N worker processes on this
machine (default: 2) or the scheduler of a running cluster.
Produces: the CSV (through a temporary file renamed into place, so it is
never half-written): a header, then one row per image in the order of the
sorted file names:
    file,top1,prob1,name1,...,topK,probK,nameK,error
`file` relative to DIR, `topJ` the class index, `probJ` its softmax
probability, `nameJ` only when the model knows its class names, `error`
empty -- or, for an image that cannot be read, empty class columns and the
reason (also printed on stderr).  Progress lines on stderr.
Exit status: 0 when every image was classified; 1 when any was not (the CSV
still written, the failed rows carry their error) or nothing could be done
(bad model, no images, no workers: one sentence, no CSV); 2 bad usage.

How: the files are cut into shards of S (a task each).  Every worker
process opens the model once, when it joins (a WorkerPlugin holding a
mambac.Model), and keeps it for all its shards; a worker runs one shard at a
time (one Dask thread) with T OpenMP threads inside the model.  The workers
read the .so, its weights and the images by the same paths as this script:
on a real cluster, a shared filesystem (docs/scale-out.md).  The module
runtime/python/mambac.py is sent to the workers (Client.upload_file).
"""
import argparse
import csv
import logging
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MAMBAC_PY = os.path.join(HERE, "..", "..", "runtime", "python", "mambac.py")
sys.path.insert(0, os.path.dirname(MAMBAC_PY))

import mambac  # noqa: E402

PLUGIN = "mambac-model"
EXTENSIONS = (".jpg", ".jpeg", ".png")


class Fatal(Exception):
    """Nothing can be done: one sentence, exit 1."""


try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # the message comes from main()
    WorkerPlugin = object


class ModelPlugin(WorkerPlugin):
    """On each worker process: the model, opened once when the worker joins
    and kept for every shard it runs."""
    name = PLUGIN

    def __init__(self, path, weights, threads):
        self.path, self.weights, self.threads = path, weights, threads
        self.model = None
        self.opened = 0        # how often this process opened the model (once)

    def setup(self, worker):
        self.model = None
        self.get()

    def get(self):
        if self.model is None:
            import mambac as mc   # sent by Client.upload_file
            self.model = mc.Model(self.path, weights=self.weights, threads=self.threads)
            self.opened += 1
        return self.model


def classify_shard(files, root, k):
    """One task: files (relative to root) -> (rows, (process id, times
    it opened the model, its OpenMP threads)); rows a list of (file, [(class, prob), ...] or
    None, error or None), in the order of files."""
    from distributed import get_worker
    plugin = get_worker().plugins[PLUGIN]
    m = plugin.get()
    x, _, good, errors = m.try_load_images([os.path.join(root, f) for f in files])
    best = m.top(m(x), k) if len(good) else []
    done = {p: [(b.index, b.prob) for b in row] for p, row in zip(good, best)}
    why = dict(errors)
    rows = []
    for f in files:
        p = os.path.join(root, f)
        rows.append((f, done.get(p), None if p in done else why.get(p, "not classified")))
    return rows, (os.getpid(), plugin.opened, m.threads)


def list_images(root):
    """The image files below root, relative to it, sorted."""
    def refuse(e):
        raise Fatal("%s: cannot be listed: %s" % (e.filename, e.strerror))

    found = []
    for d, dirs, names in os.walk(root, onerror=refuse):
        dirs[:] = sorted(n for n in dirs if not n.startswith("."))
        for n in names:
            if not n.startswith(".") and n.lower().endswith(EXTENSIONS):
                found.append(os.path.relpath(os.path.join(d, n), root))
    return sorted(found)


def check_model(path, weights):
    """The model's info; refuses what this example cannot use."""
    try:
        info = mambac.read_info(path)
    except mambac.Error as e:
        raise Fatal(str(e))
    outs = info["outputs"]
    if info.get("kind") not in (None, "classifier") or len(outs) != 1 or len(outs[0]["shape"]) != 2:
        raise Fatal("%s: a %s with outputs %s; this example needs a classifier (one output [B, classes])" % (
            path, info.get("kind", "model"), ", ".join("%s %s" % (o["name"], o["shape"]) for o in outs)))
    if not info.get("images"):
        raise Fatal("%s: compiled without image support (mambac built without libjpeg/libpng)" % path)
    w = weights or os.path.splitext(path)[0] + ".weights"
    if not os.path.isfile(w):
        raise Fatal("%s: no such file (the weights written beside the .so; or --weights)" % w)
    return info


def header(k, names):
    h = ["file"]
    for j in range(1, k + 1):
        h += ["top%d" % j, "prob%d" % j] + (["name%d" % j] if names else [])
    return h + ["error"]


def csv_row(r, k, names):
    f, best, err = r
    row = [f]
    for j in range(k):
        if best is None or j >= len(best):
            row += ["", ""] + ([""] if names else [])
            continue
        c, p = best[j]
        row += [str(c), "%.6g" % p] + ([names[c] if c < len(names) else ""] if names else [])
    return row + [err or ""]


def start_client(a, threads):
    """(client, cluster or None, OpenMP threads per worker)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise Fatal("Dask's distributed is not installed (Debian: apt-get install python3-distributed)")
    if a.scheduler:
        try:
            client = Client(a.scheduler, timeout="%ds" % a.connect_timeout)
        except (OSError, TimeoutError) as e:
            raise Fatal("cannot reach the scheduler %s: %s" % (a.scheduler, e))
        try:
            client.wait_for_workers(1, timeout=a.connect_timeout)
        except (OSError, TimeoutError):
            client.close()
            raise Fatal("no worker joined the scheduler %s within %d s" % (a.scheduler, a.connect_timeout))
        return client, None, threads if threads is not None else 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if threads is None:   # the cores shared out among the worker processes
        threads = max(1, cores // a.workers)
    cluster = LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster), cluster, threads


def run(a):
    info = check_model(a.model, a.weights)
    names = info.get("classes")
    classes = info["outputs"][0]["shape"][1]
    k = min(a.top, classes)
    if not os.path.isdir(a.images):
        raise Fatal("%s: not a directory" % a.images)
    root = os.path.abspath(a.images)
    files = list_images(root)
    if not files:
        raise Fatal("%s: no .jpg, .jpeg or .png files below it" % a.images)
    outdir = os.path.dirname(os.path.abspath(a.out))
    try:
        fd, tmp = tempfile.mkstemp(dir=outdir, prefix="." + os.path.basename(a.out) + ".", suffix=".tmp")
    except OSError as e:
        raise Fatal("%s: cannot be written: %s" % (a.out, e.strerror))
    committed = False
    client = cluster = None
    try:
        client, cluster, threads = start_client(a, a.threads)
        client.upload_file(os.path.normpath(MAMBAC_PY))
        try:
            client.register_worker_plugin(ModelPlugin(os.path.abspath(a.model),
                                                      a.weights and os.path.abspath(a.weights), threads))
        except Exception as e:   # a worker could not open the model: its sentence
            raise Fatal("a worker could not open the model: %s" % e)
        nworkers = len(client.scheduler_info()["workers"])
        shards = [files[i:i + a.shard_size] for i in range(0, len(files), a.shard_size)]
        print("classify: %d images in %d shards of %d on %d workers (%s), %s OpenMP threads each" % (
            len(files), len(shards), a.shard_size, nworkers, a.scheduler or "LocalCluster",
            threads or "the workers' default"), file=sys.stderr)
        ok, failed, procs = write_results(a, client, shards, root, k, names, fd, len(files))
        os.replace(tmp, a.out)
        committed = True
        opened = [v[0] for v in procs.values()]
        nts = ", ".join(sorted({str(v[1]) for v in procs.values()}))
        print("classify: wrote %s: %d images classified, %d failed; %d worker processes (OpenMP threads: %s), "
              "the model opened %s" % (a.out, ok, failed, len(procs), nts,
                                       "once in each" if set(opened) == {1} else "%d times" % sum(opened)),
              file=sys.stderr)
        return 0 if failed == 0 else 1
    finally:
        if not committed:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def write_results(a, client, shards, root, k, names, fd, total):
    """Submits the shards and writes the rows in shard order as they come
    (out-of-order shards wait in memory); progress on stderr."""
    from distributed import as_completed
    futures = [client.submit(classify_shard, s, root, k, pure=False) for s in shards]
    index = {f.key: i for i, f in enumerate(futures)}
    waiting, nxt, done, ok, failed, procs = {}, 0, 0, 0, 0, {}
    t0 = last = time.time()
    with os.fdopen(fd, "w", newline="") as out:
        w = csv.writer(out)
        w.writerow(header(k, names))
        for fut in as_completed(futures):
            i = index[fut.key]
            try:
                rows, (pid, opened, nt) = fut.result()
                procs[pid] = (max(opened, procs.get(pid, (0,))[0]), nt)
            except Exception as e:   # the whole shard: every file gets the reason
                why = "the shard failed on its worker: %s: %s" % (type(e).__name__, e)
                rows = [(f, None, why) for f in shards[i]]
            fut.release()
            futures[i] = None
            waiting[i] = rows
            while nxt in waiting:
                for r in waiting.pop(nxt):
                    w.writerow(csv_row(r, k, names))
                    if r[2] is None:
                        ok += 1
                    else:
                        failed += 1
                        print("classify: %s: %s" % (r[0], r[2]), file=sys.stderr)
                nxt += 1
            done += len(rows)
            now = time.time()
            if now - last >= a.progress or done == total:
                last = now
                rate = done / max(now - t0, 1e-9)
                print("classify: %d/%d images (%.0f%%), %.1f images/s%s" % (
                    done, total, 100.0 * done / total, rate,
                    ", about %.0f s left" % ((total - done) / rate) if done < total else ""),
                    file=sys.stderr)
        out.flush()
        os.fsync(out.fileno())
    return ok, failed, procs


def main(argv=None):
    ap = argparse.ArgumentParser(description="Classify the images below a directory with a compiled model "
                                 "(mambac compile --emit shared) on a Dask cluster; results to CSV.")
    ap.add_argument("--model", required=True, help="OUT.so (OUT.weights beside it)")
    ap.add_argument("--weights", help="the weights file (default: beside the .so)")
    ap.add_argument("--images", required=True, help="a directory; every .jpg/.jpeg/.png below it")
    ap.add_argument("--out", required=True, help="the CSV to write")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    ap.add_argument("--scheduler", help="a running cluster's scheduler (tcp://host:8786) instead of a LocalCluster")
    ap.add_argument("--top", type=int, default=5, help="classes per image (default 5)")
    ap.add_argument("--shard-size", type=int, default=64, help="images per task (default 64)")
    ap.add_argument("--threads", type=int, help="OpenMP threads per worker (default: LocalCluster: cores / "
                    "workers; a cluster: the worker's OMP_NUM_THREADS, which Dask's nanny sets to 1)")
    ap.add_argument("--progress", type=float, default=5.0, help="seconds between progress lines (default 5)")
    ap.add_argument("--connect-timeout", type=int, default=60, help="seconds to wait for the scheduler and "
                    "a first worker (default 60)")
    a = ap.parse_args(argv)
    for opt, v, lo in (("--workers", a.workers, 1), ("--top", a.top, 1), ("--shard-size", a.shard_size, 1),
                       ("--threads", 0 if a.threads is None else a.threads, 0),
                       ("--connect-timeout", a.connect_timeout, 1)):
        if v < lo:
            ap.error("%s must be >= %d" % (opt, lo))
    try:
        return run(a)
    except Fatal as e:
        print("classify: error: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("classify: interrupted; nothing written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
