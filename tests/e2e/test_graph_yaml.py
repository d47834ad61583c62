"""e2e: the generic graph YAML front end against the config front end.
tests/reference/gen_graph_yaml.py writes a model as graph YAML from the
model's semantics (declaring every value's shape), independently of the C
model builder.  Checks: the committed examples/spatialmamba_tiny.graph.yaml
is what the generator writes today; `mambac dump` of it equals `mambac dump`
of examples/spatialmamba_tiny.yaml byte for byte; the same for a custom model
at an odd size, which is also run numerically against the float64
reference; `dump --format yaml` output loads back to the same IR."""
import os

import e2e_common as E

import gen_graph_yaml as GY  # noqa: E402  (tests/reference is on sys.path via e2e_common)

t = E.Test("graph_yaml")
committed = os.path.join(E.REPO, "examples", "spatialmamba_tiny.graph.yaml")
cfg_tiny = os.path.join(E.REPO, "examples", "spatialmamba_tiny.yaml")
if not os.path.exists(cfg_tiny):
    cfg_tiny = E.write_config(t.path("spatialmamba_tiny.yaml"), 64, [2, 4, 8, 4], name="tiny",
                              mlp_ratio=4.0)

fresh = GY.from_config(cfg_tiny).text()
t.check(os.path.exists(committed) and open(committed).read() == fresh,
        "examples/spatialmamba_tiny.graph.yaml == gen_graph_yaml.py output (%d bytes)" % len(fresh))


def same_dump(label, a, b, extra_b=()):
    rc1, ir1, e1, _ = t.run(["dump", a], timeout=60)
    rc2, ir2, e2, _ = t.run(["dump", b] + list(extra_b), timeout=60)
    ok = rc1 == 0 and rc2 == 0 and ir1 == ir2 and ir1.strip() != ""
    t.check(ok, "%s: dump %s == dump %s (%d lines)%s" % (
        label, os.path.basename(a), os.path.basename(b), ir1.count("\n"),
        "" if ok else " rc=%s/%s %s %s" % (rc1, rc2, e1.strip()[:400], e2.strip()[:400])))
    if rc1 == 0 and rc2 == 0 and ir1 != ir2:
        for i, (la, lb) in enumerate(zip(ir1.splitlines(), ir2.splitlines())):
            if la != lb:
                print("      first difference, line %d:\n      - %s\n      + %s" % (i + 1, la, lb))
                break
    return ir1 if ok else None


g1 = t.path("tiny.graph.yaml")
with open(g1, "w") as f:
    f.write(fresh)
same_dump("tiny 1x3x224x224", g1, cfg_tiny)

# A custom model at an odd size, batch 2: dump equality, then numerics.
depths = [1, 2, 1, 1]
cfg = E.write_config(t.path("c.yaml"), 32, depths, num_classes=17, mlp_ratio=2.5, name="c32")
gy = t.path("c32.graph.yaml")
with open(gy, "w") as f:
    f.write(GY.from_config(cfg, B=2, H=37, W=45).text())
ir = same_dump("custom 2x3x37x45", gy, cfg, ["--batch", "2", "--image-size", "37x45"])
sd = E.sm.random_state_dict(32, depths, 17, 3, 2.5, seed=21)
w = t.path("c32.safetensors")
E.ck.save_safetensors(w, sd)
t.run_logits("graph YAML model run", gy, w, E.image((2, 3, 37, 45), 4), sd, depths)
# A graph YAML fixes its input shape: another shape is a clean error.
xin = t.path("x_bad.npy")
E.np.save(xin, E.image((1, 3, 37, 45), 5))
t.expect_user_error("graph YAML with an input of another shape",
                    ["run", gy, "--weights", w, "--input", xin, "--output", t.path("y.npy")],
                    must_contain=("[2,3,37,45]",))

# mambac's own YAML writer: its output loads back to the same IR.
rc, ytext, err, _ = t.run(["dump", cfg, "--format", "yaml", "--batch", "2", "--image-size", "37x45"])
if t.check(rc == 0 and "graph" in ytext, "dump --format yaml rc=%s %s" % (rc, err.strip()[:200])):
    y2 = t.path("written.graph.yaml")
    with open(y2, "w") as f:
        f.write(ytext)
    same_dump("custom, mambac-written graph YAML", y2, cfg, ["--batch", "2", "--image-size", "37x45"])

# Errors in a graph YAML carry file:line:col.
bad = fresh.splitlines()
# line 7 (1-based) is the first weight: give it a wrong shape
i = next(k for k, l in enumerate(bad) if "op: conv2d" in l)
bad[i] = bad[i].replace("shape: [1, 112, 112, 32]", "shape: [1, 112, 112, 31]")
pb = t.path("bad_shape.graph.yaml")
with open(pb, "w") as f:
    f.write("\n".join(bad) + "\n")
t.expect_user_error("graph YAML with a wrong declared shape", ["dump", pb],
                    regex=r"bad_shape\.graph\.yaml:%d:\d+" % (i + 1))
bad = fresh.splitlines()
i = next(k for k, l in enumerate(bad) if "op: relu" in l)
bad[i] = bad[i].replace("op: relu", "op: rleu")
pb = t.path("bad_op.graph.yaml")
with open(pb, "w") as f:
    f.write("\n".join(bad) + "\n")
t.expect_user_error("graph YAML with an unknown op", ["dump", pb], must_contain=("rleu",),
                    regex=r"bad_op\.graph\.yaml:%d:\d+" % (i + 1))
t.finish()
