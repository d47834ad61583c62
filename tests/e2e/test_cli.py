"""e2e: the command line itself: help texts exit 0, usage errors exit 2."""
import os

import e2e_common as E

t = E.Test("cli")
for args in (["--help"], ["run", "--help"], ["dump", "--help"]):
    rc, out, err, dt = t.run(args, timeout=20)
    t.check(rc == 0 and "usage" in out.lower(), "mambac %s: rc=%s, usage on stdout" % (
        " ".join(args), rc))
rc, out, err, dt = t.run(["run", "--help"], timeout=20)
for opt in ("--weights", "--input", "--output", "--backend", "--threads"):
    t.check(opt in out, "run --help documents %s" % opt)
rc, out, err, dt = t.run(["dump", "--help"], timeout=20)
t.check("--format" in out, "dump --help documents --format")

cfg = E.write_config(t.path("m.yaml"), 16, [1, 1, 1, 1], num_classes=5, mlp_ratio=2.0)
for label, args in (
        ("unknown option", ["run", cfg, "--no-such-option", "--input", "x.npy", "--output", "y.npy"]),
        ("unknown dump option", ["dump", cfg, "--frobnicate"]),
        ("unknown command", ["frobnicate"]),
        ("no command", []),
        ("option without its value", ["run", cfg, "--input"]),
        ("--threads not a number", ["run", cfg, "--input", "x.npy", "--output", "y.npy",
                                    "--threads", "two"]),
        ("run without --input", ["run", cfg, "--output", "y.npy"]),
        ("run with compile's -o", ["run", cfg, "--input", "x.npy", "--output", "y.npy", "-o", "z.npy"]),
        ("unknown backend", ["run", cfg, "--input", "x.npy", "--output", "y.npy",
                             "--backend", "nosuchbackend"]),
        ("dump with a bad --format", ["dump", cfg, "--format", "png"])):
    rc, out, err, dt = t.run(args, timeout=20)
    t.check(rc == 2 and err.strip() != "" and not any(w in err.lower() for w in E.BAD_WORDS),
            "%s: rc=%s (want 2), stderr: %s" % (label, rc, err.strip().splitlines()[0][:120]
                                                  if err.strip() else "(empty)"))

# a hand-written IR graph with a rank-2 input and two outputs runs on both
# backends: --output y.npz holds both (relu, gelu); a .npy is refused
import numpy as np
mir = t.path("two.mir")
with open(mir, "w") as f:
    f.write("graph two {\n  %x = input : f32[2,3]\n  %a = relu %x : f32[2,3]\n"
            "  %b = gelu %x : f32[2,3]\n  return %a, %b\n}\n")
x2 = np.array([[-1.5, 0.25, 2.0], [0.5, -0.125, 3.0]], np.float32)
np.save(t.path("x2.npy"), x2)
gelu = 0.5 * x2 * (1 + np.vectorize(__import__("math").erf)(x2 / np.sqrt(2)))
for backend in ("ref", "llvm"):
    y = t.path("y2_%s.npz" % backend)
    rc, out, err, dt = t.run(["run", mir, "--input", t.path("x2.npy"), "--output", y,
                              "--backend", backend], timeout=60)
    got = np.load(y) if rc == 0 and os.path.exists(y) else None
    t.check(got is not None and got.files == ["a", "b"] and np.array_equal(got["a"], np.maximum(x2, 0))
            and np.allclose(got["b"], gelu, rtol=1e-5, atol=1e-6) and "random weights" not in err,
            "%s backend: rank-2 .mir graph, both outputs in y.npz (rc=%s, %s)" % (backend, rc, err.strip()[:200]))
    t.expect_user_error("%s backend: two outputs to a .npy" % backend,
                        ["run", mir, "--input", t.path("x2.npy"), "--output", t.path("y2.npy"), "--backend", backend],
                        must_contain=("2 outputs (a, b)", ".npz"))
t.finish()
