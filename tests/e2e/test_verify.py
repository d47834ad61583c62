"""`mambac verify`: a backend's kernel program checked kernel by kernel
against the reference executor of the kernel IR (docs/kernel-ir.md).

Takes: the mambac executable (argv[1]).
Checks:
  - a small custom model (.pth weights) at an odd shape, batch 1 and batch 3
    (the LLVM pipeline's per-image segment), passes with one line per kernel
    of the program (`dump --format kernels` says how many) and exit 0;
  - MAMBAC_VERIFY_BREAK=K (the testing hook that perturbs the backend's
    output of kernel K) makes verify stop at exactly kernel K -- the first,
    one inside the segment, the last -- naming its kind, its name and the
    graph nodes it computes as the kernel IR records them, exit 1, every
    kernel before it within the tolerance;
  - --tolerance 0 fails (the native code does not round like the reference);
  - a .kir (dumped, then read back): random weights per buffer, and with
    --model/--weights the model's constants; a broken kernel is named there too;
  - --backend cuda says "not supported yet" (exit 1); bad options exit 2; a
    mismatched input, a .kir whose weights a checkpoint lacks, a missing
    file: one sentence, exit 1, no crash.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as E  # noqa: E402
import numpy as np  # noqa: E402

t = E.Test("verify")
cfg, sd, depths = E.custom_model(t, embed_dim=16, depths=(1, 1, 2, 1), num_classes=10)
pth = E.save_weights("model", t.path("w.pth"), sd)
x1 = t.path("x1.npy")
x3 = t.path("x3.npy")
np.save(x1, E.image((1, 3, 35, 41), 1))
np.save(x3, E.image((3, 3, 33, 37), 3))
KLINE = re.compile(r"^k(\d+)\s+(\w+)\s+(\S+)\s+(\S+)(.*)$", re.M)


def program(model, extra):
    """The kernels of the program verify checks: [(index, kind, name, [nodes])], segment text."""
    kir = t.path("p_%d.kir" % t.checks)
    rc, out, err, dt = t.run(["dump", model, "--format", "kernels", "-o", kir] + list(extra))
    if rc != 0:
        t.check(False, "dump --format kernels %s: rc=%s %s" % (extra, rc, err.strip()[-300:]))
        return [], ""
    text = open(kir).read()
    ks = []
    for m in re.finditer(r'^kernel k(\d+) (\w+) "([^"]*)".*\n  nodes (.*)$', text, re.M):
        ks.append((int(m.group(1)), m.group(2), m.group(3), re.findall(r'"([^"]*)"', m.group(4))))
    return ks, "\n".join(re.findall(r"^segment .*$", text, re.M))


def verify(label, args, env_break=None):
    env = dict(os.environ)
    env.pop("MAMBAC_VERIFY_BREAK", None)
    if env_break is not None:
        env["MAMBAC_VERIFY_BREAK"] = str(env_break)
    rc, out, err, dt = t.run(["verify"] + list(args) + ["--threads", "2"], timeout=600, env=env)
    bad = [w for w in E.BAD_WORDS if w in err.lower()]
    if bad:
        t.check(False, "%s: stderr has %s: %s" % (label, bad, err.strip()[-500:]))
    return rc, out, err, dt


def passes(label, args, kernels):
    rc, out, err, dt = verify(label, args)
    lines = KLINE.findall(out)
    idx = [int(m[0]) for m in lines]
    worst = max([float(m[3]) for m in lines] or [0.0])
    ok = rc == 0 and idx == [k[0] for k in kernels] and len(kernels) > 0
    ok = ok and all(m[1] == k[1] and m[2] == k[2] for m, k in zip(lines, kernels))
    ok = ok and ("all %d kernels within the tolerance" % len(kernels)) in out
    t.check(ok, "%s: rc=%s, %d kernel lines for %d kernels, largest rel error %.2e (%.1fs)%s" % (
        label, rc, len(lines), len(kernels), worst, dt, "" if ok else "\n" + out[-1500:] + err[-800:]))


def broken(label, args, kernels, k):
    rc, out, err, dt = verify(label, args, env_break=k)
    lines = KLINE.findall(out)
    kind, name, nodes = kernels[k][1], kernels[k][2], kernels[k][3]
    ok = rc == 1 and lines and int(lines[-1][0]) == k and "over the tolerance" in lines[-1][4]
    ok = ok and [int(m[0]) for m in lines] == list(range(k + 1))
    ok = ok and all("over" not in m[4] for m in lines[:-1])
    head = 'verify: kernel k%d (%s "%s") is over the tolerance' % (k, kind, name)
    m = re.search(r"^verify: it computes the graph nodes? (.*)$", out, re.M)
    named = m.group(1).split() if m else []
    ok = ok and head in out and named == ["%" + n for n in nodes] and len(nodes) > 0
    t.check(ok, "%s: MAMBAC_VERIFY_BREAK=%d: rc=%s, stops at k%d %s %s, nodes %s (%.1fs)%s" % (
        label, k, rc, int(lines[-1][0]) if lines else -1, kind, name, " ".join(nodes), dt,
        "" if ok else "\n" + out[-1500:] + err[-800:]))


# 1. batch 1 at an odd shape, with the checkpoint
k1, _ = program(cfg, ["--weights", pth, "--batch", "1", "--image-size", "35x41"])
passes("custom 1x35x41", [cfg, "--weights", pth, "--input", x1], k1)
# 2. batch 3: the LLVM pipeline runs the early kernels image by image
k3, seg = program(cfg, ["--weights", pth, "--batch", "3", "--image-size", "33x37"])
m = re.search(r"segment s0 k(\d+)\.\.k(\d+) images 3", seg)
t.check(m is not None, "batch 3 has a per-image segment: %s" % (seg or "none"))
passes("custom 3x33x37", [cfg, "--weights", pth, "--input", x3], k3)
# 3. a broken kernel is named: the first, one inside the segment, the last
if k1:
    broken("custom 1x35x41", [cfg, "--weights", pth, "--input", x1], k1, 0)
    broken("custom 1x35x41", [cfg, "--weights", pth, "--input", x1], k1, len(k1) - 1)
if k3 and m:
    inside = (int(m.group(1)) + int(m.group(2))) // 2
    broken("custom 3x33x37", [cfg, "--weights", pth, "--input", x3], k3, inside)
rc, out, err, dt = verify("tolerance 0", [cfg, "--weights", pth, "--input", x1, "--tolerance", "0"])
t.check(rc == 1 and "over the tolerance" in out, "--tolerance 0: rc=%s, a kernel is over it" % rc)

# 4. kernel IR text
kir = t.path("m.kir")
rc, out, err, dt = t.run(["dump", cfg, "--format", "kernels", "--weights", pth, "--batch", "3",
                          "--image-size", "33x37", "-o", kir])
if t.check(rc == 0, "dump --format kernels -o m.kir: rc=%s" % rc):
    passes("m.kir, random weights per buffer", [kir, "--input", x3], k3)
    passes("m.kir --model --weights", [kir, "--model", cfg, "--weights", pth, "--input", x3], k3)
    broken("m.kir", [kir, "--input", x3], k3, 5)
    t.expect_user_error("m.kir --weights without --model", ["verify", kir, "--weights", pth, "--input", x3],
                        ["bnfold", "is not in", "--model"])

# 5. errors
# 6. --backend cuda: the comparison side without a GPU.  The reference's own
# kernel outputs (the hidden --write-reference, the files an --instrument
# executable writes with --kernel-outputs) pass; one kernel's file perturbed
# is named exactly; a missing directory, a file of another shape, and
# --backend cuda without --kernel-outputs are refused.
for prec, tol in (("fp32", "1.0e-04"), ("bf16", "2.0e-02")):
    ref = t.path("kref_" + prec)
    rc, out, err, dt = t.run(["verify", cfg, "--input", x1, "--backend", "cuda", "--precision", prec,
                              "--write-reference", ref])
    files = sorted(os.listdir(ref)) if os.path.isdir(ref) else []
    t.check(rc == 0 and "k0.npy" in files, "verify --write-reference (%s): rc=%s, %d files" % (prec, rc, len(files)))
    rc, out, err, dt = t.run(["verify", cfg, "--input", x1, "--backend", "cuda", "--precision", prec,
                              "--kernel-outputs", ref])
    t.check(rc == 0 and "all %d kernels within the tolerance %s" % (len(files), tol) in out and "add up" in out,
            "verify --backend cuda (%s) on the reference's own outputs: rc=%s %s" % (
                prec, rc, out.strip().splitlines()[-1] if out.strip() else err.strip()[:200]))
    kb = len(files) // 2
    a = np.load(os.path.join(ref, "k%d.npy" % kb))
    np.save(os.path.join(ref, "k%d.npy" % kb), a + 0.5 * (np.abs(a) + 1))
    rc, out, err, dt = t.run(["verify", cfg, "--input", x1, "--backend", "cuda", "--precision", prec,
                              "--kernel-outputs", ref])
    named = re.search(r"verify: kernel k(\d+) ", out)
    t.check(rc == 1 and named and int(named.group(1)) == kb,
            "verify --backend cuda (%s) names the perturbed kernel k%d: rc=%s %s" % (
                prec, kb, rc, named.group(0) if named else out.strip()[-200:]))
    np.save(os.path.join(ref, "k%d.npy" % kb), np.zeros((2, 2), np.float32))
    t.expect_user_error("cuda: a kernel file of another shape", ["verify", cfg, "--input", x1, "--backend", "cuda",
                        "--precision", prec, "--kernel-outputs", ref], ["not float32 of shape", "k%d" % kb])
t.expect_user_error("cuda: a missing --kernel-outputs directory", ["verify", cfg, "--input", x1, "--backend", "cuda",
                    "--kernel-outputs", t.path("nope")], ["k0.npy", "cannot open"])
rc, out, err, dt = t.run(["verify", cfg, "--input", x1, "--backend", "cuda"])
t.check(rc == 2 and "--kernel-outputs" in err, "--backend cuda without --kernel-outputs: rc=%s" % rc)
rc, out, err, dt = t.run(["verify", cfg, "--input", x1, "--precision", "tf32"])
t.check(rc == 2 and "tf32 is for --backend cuda" in err, "--precision tf32 with llvm: rc=%s" % rc)
for bad in (["--tolerance", "-1"], ["--tolerance", "x"], ["--backend", "nope"], ["--bogus"], []):
    args = ["verify"] + ([cfg] if bad else []) + bad
    rc, out, err, dt = t.run(args)
    t.check(rc == 2 and "Try 'mambac verify --help'" in err, "usage error %s: rc=%s %s" % (
        bad, rc, err.strip().splitlines()[0] if err.strip() else ""))
x2 = t.path("x2.npy")
np.save(x2, E.image((1, 2, 35, 41), 2))
t.expect_user_error("2-channel input", ["verify", cfg, "--input", x2], ["does not match the program's input"])
t.expect_user_error("kir input of another shape", ["verify", kir, "--input", x1], ["does not match"])
t.expect_user_error("missing model", ["verify", t.path("nope.yaml")], ["nope.yaml"])
t.expect_user_error("missing input", ["verify", cfg, "--input", t.path("nope.npy")], ["nope.npy"])
rc, out, err, dt = t.run(["verify", "--help"])
t.check(rc == 0 and "--tolerance" in out and "--backend" in out, "verify --help: rc=%s" % rc)
t.finish()
