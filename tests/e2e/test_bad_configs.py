"""e2e: models the per-key ranges accept but that cannot or should not be
built are refused before anything is allocated, filled or compiled: exit 1,
one file:line:col message naming the key or the budget, within seconds and
without a crash.  Public configs (an MLP with no hidden channel, models far
over the parameter budget, a 200-byte config whose random weights would fill
hundreds of GiB), IR text and graph YAML declaring huge weights or
intermediates, an image size over the activation budget; MAMBAC_MAX_PARAMS /
MAMBAC_MAX_ACTIVATION raise the budgets."""
import os

import e2e_common as E

t = E.Test("bad_configs")
x = os.path.join(E.REPO, "examples", "input_224.npy")


def write(name, text):
    p = t.path(name)
    with open(p, "w") as f:
        f.write(text)
    return p


def env(**kw):
    e = dict(os.environ)
    e.pop("MAMBAC_MAX_PARAMS", None)
    e.pop("MAMBAC_MAX_ACTIVATION", None)
    e.update(kw)
    return e


BUDGET = "the limit is 2^31 parameters (8 GiB of float32); set MAMBAC_MAX_PARAMS to raise it"
configs = [
    ("MLP_RATIO 1e-9", "mlp_tiny.yaml",
     "MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 64\n    DEPTHS: [1]\n    D_STATE: 1\n    MLP_RATIO: 1e-9\n",
     ["mlp_tiny.yaml:6:16: error: MODEL.SPATIALMAMBA.MLP_RATIO 1e-09 leaves stage 0's MLP no hidden "
      "channel (int(64 * 1e-09) = 0); it must be at least 0.015625"]),
    ("EMBED_DIM 65536 with MLP_RATIO 1024", "wide.yaml",
     "MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 65536\n    DEPTHS: [1]\n    D_STATE: 1\n    MLP_RATIO: 1024\n",
     ["wide.yaml:3:16: error: the model has 8.94e+12 parameters (32.5 TiB); " + BUDGET]),
    ("8 stages at EMBED_DIM 65536", "deep.yaml",
     "MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 65536\n    DEPTHS: [1, 1, 1, 1, 1, 1, 1, 1]\n    D_STATE: 1\n",
     ["deep.yaml:3:16: error: the model has 1.9e+15 parameters (6.75 PiB); " + BUDGET]),
    ("EMBED_DIM 4096, random weights", "e4096.yaml",
     "MODEL:\n  TYPE: spatial_mamba\n  NAME: big\n  SPATIALMAMBA:\n    EMBED_DIM: 4096\n    D_STATE: 1\n",
     ["e4096.yaml:5:16: error: the model has 7.64e+10 parameters (285 GiB); " + BUDGET]),
    ("NUM_CLASSES 10^7 at default width", "classes.yaml",
     "MODEL:\n  NUM_CLASSES: 10000000\n  SPATIALMAMBA:\n    D_STATE: 1\n",
     ["classes.yaml:3:3: error: the model has 7.73e+09 parameters (28.8 GiB)"]),
    ("a stage of 1001 blocks", "depth.yaml",
     "MODEL:\n  SPATIALMAMBA:\n    DEPTHS: [2, 1001]\n    D_STATE: 1\n",
     ["depth.yaml:3:17: error: MODEL.SPATIALMAMBA.DEPTHS[1] must be between 0 and 1000"]),
]
for label, name, text, want in configs:
    p = write(name, text)
    for cmd in (["run", p, "--input", x, "--output", t.path("y.npy")],
                ["run", p, "--input", x, "--output", t.path("y.npy"), "--backend", "llvm"],
                ["compile", p, "-o", t.path("exe")],
                ["dump", p, "--format", "kernels"]):
        rc, err = t.expect_user_error("%s: %s" % (label, cmd[0]), cmd, want, max_seconds=5)
    t.check(not os.path.exists(t.path("y.npy")) and not os.path.exists(t.path("exe")),
            "%s: no output written" % label)

# the budget is the user's to raise (dump builds the graph, fills nothing)
p = t.path("e4096.yaml")
rc, out, err, dt = t.run(["dump", p], timeout=60, env=env(MAMBAC_MAX_PARAMS="2^40"))
t.check(rc == 0 and "graph big {" in out and dt < 10,
        "MAMBAC_MAX_PARAMS=2^40 lets dump build the EMBED_DIM 4096 graph rc=%s %.1fs %s" % (
            rc, dt, err.strip()[:200]))
rc, out, err, dt = t.run(["dump", p], timeout=60, env=env(MAMBAC_MAX_PARAMS="2^41"))
t.check(rc == 1 and "MAMBAC_MAX_PARAMS must be a positive integer or 2^N, at most 2^40; got '2^41'" in err,
        "MAMBAC_MAX_PARAMS=2^41 is refused: %s" % err.strip()[:200])
tiny = os.path.join(E.REPO, "examples", "spatialmamba_tiny.yaml")
# tiny's size as the reference model counts it
n = sum(v.numel() for k, v in E.sm.random_state_dict(64, [2, 4, 8, 4], 1000, 3, 4.0).items()
        if not k.endswith("num_batches_tracked"))
rc, out, err, dt = t.run(["dump", tiny], timeout=60, env=env(MAMBAC_MAX_PARAMS="1000000"))
want = "tiny.yaml:6:16: error: the model has %.3g parameters (%.3g MiB); the limit is 1000000 parameters" % (
    n, n * 4 / 2**20)
t.check(rc == 1 and want in err,
        "MAMBAC_MAX_PARAMS=1000000 refuses tiny: %s" % err.strip()[:200])

# the largest intermediate, from the config and the image size, before building
t.expect_user_error("tiny at 16384x16384", ["dump", tiny, "--image-size", "16384"],
                    ["spatialmamba_tiny.yaml: error: at batch 1 and 16384x16384, a downsample's output has "
                     "8.59e+09 elements (32 GiB); the limit is 2^32 elements (16 GiB of float32); "
                     "set MAMBAC_MAX_ACTIVATION to raise it"], max_seconds=5)
rc, out, err, dt = t.run(["dump", tiny, "--image-size", "16384"], timeout=60,
                         env=env(MAMBAC_MAX_ACTIVATION="2^34"))
t.check(rc == 0 and dt < 20, "MAMBAC_MAX_ACTIVATION=2^34 lets tiny be built at 16384x16384 rc=%s %s" % (
    rc, err.strip()[:200]))

# IR text and graph YAML: total weights and every tensor, at its position
irs = [
    ("one 2^32-element weight", "w.mir",
     "graph big {\n  %x = input : f32[1,65536]\n  %w = weight : f32[65536,65536]\n"
     "  %y = linear %x, %w : f32[1,65536]\n  return %y\n}\n",
     ["w.mir:3:17: error: the graph (weights up to %w) has 4.29e+09 parameters (16 GiB); " + BUDGET]),
    ("two weights, f64 counted by bytes", "sum.mir",
     "graph big {\n  %x = input : f32[1,16]\n  %w = weight : f64[32768,32768]\n"
     "  %w2 = weight : f32[32768,32768]\n  return %x\n}\n",
     ["sum.mir:4:18: error: the graph (weights up to %w2) has 2.15e+09 parameters (12 GiB); " + BUDGET]),
    ("a broadcast add of 2^40 elements", "act.mir",
     "graph big {\n  %a = input : f32[1048576,1]\n  %b = weight : f32[1,1048576]\n"
     "  %c = add %a, %b : f32[1048576,1048576]\n  return %c\n}\n",
     ["act.mir:4:21: error: %c has 1.1e+12 elements (4 TiB); the limit is 2^32 elements (16 GiB of float32); "
      "set MAMBAC_MAX_ACTIVATION to raise it"]),
    ("graph YAML weight", "w.yaml",
     "graph:\n  inputs:\n    - {name: x, dtype: f32, shape: [1, 65536]}\n  weights:\n"
     "    - {name: w, dtype: f32, shape: [65536, 65536]}\n  nodes:\n"
     "    - {name: y, op: linear, inputs: [x, w]}\n  outputs: [y]\n",
     ["w.yaml:5:7: error: the graph (weights up to %w) has 4.29e+09 parameters (16 GiB); " + BUDGET]),
    ("graph YAML intermediate", "act.yaml",
     "graph:\n  inputs:\n    - {name: a, dtype: f32, shape: [1048576, 1]}\n  weights:\n"
     "    - {name: b, dtype: f32, shape: [1, 1048576]}\n  nodes:\n"
     "    - {name: c, op: add, inputs: [a, b]}\n  outputs: [c]\n",
     ["act.yaml:7:7: error: %c has 1.1e+12 elements (4 TiB)"]),
]
for label, name, text, want in irs:
    p = write(name, text)
    for cmd in (["dump", p, "--format", "kernels"], ["compile", p, "-o", t.path("exe")]):
        t.expect_user_error("%s: %s" % (label, cmd[0]), cmd, want, max_seconds=5)

t.finish()
