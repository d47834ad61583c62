"""e2e: `mambac dump CONFIG --format ir` printed to a .mir file and read back
by `mambac dump FILE.mir` is byte-identical (tiny, small, base at the default
224x224 and a custom model at an odd size), dumping twice gives the same
bytes, and the IR has the structure the config implies."""
import re

import e2e_common as E

t = E.Test("ir_roundtrip")
models = [(s,) + E.config_for(t, s)[:3] for s in ("tiny", "small", "base")]
cfg = E.write_config(t.path("c.yaml"), 32, [1, 2, 1, 1], num_classes=17, mlp_ratio=2.5)
models.append(("custom 2x45x33", cfg, 32, [1, 2, 1, 1]))
for name, path, C, depths in models:
    extra = ["--batch", "2", "--image-size", "45x33"] if name.startswith("custom") else []
    rc, ir1, err, dt = t.run(["dump", path, "--format", "ir"] + extra, timeout=60)
    if not t.check(rc == 0 and ir1.startswith("#") and "graph" in ir1,
                   "%s: dump --format ir rc=%s (%.2fs) %s" % (name, rc, dt, err.strip()[:300])):
        continue
    rc, ir1b, err, dt = t.run(["dump", path] + extra, timeout=60)
    t.check(rc == 0 and ir1b == ir1, "%s: dumping twice gives identical bytes" % name)
    mir = t.path(re.sub(r"\W", "_", name) + ".mir")
    with open(mir, "w") as f:
        f.write(ir1)
    rc, ir2, err, dt = t.run(["dump", mir], timeout=60)
    same = rc == 0 and ir2 == ir1
    t.check(same, "%s: dump FILE.mir == dump CONFIG (%d lines, %d bytes)%s" % (
        name, ir1.count("\n"), len(ir1), "" if same else " rc=%s %s" % (rc, err.strip()[:300])))
    if not same and rc == 0:
        a, b = ir1.splitlines(), ir2.splitlines()
        for i, (la, lb) in enumerate(zip(a, b)):
            if la != lb:
                print("      first difference, line %d:\n      - %s\n      + %s" % (i + 1, la, lb))
                break
    rc, ir3, err, dt = t.run(["dump", path, "-o", mir + "2"] + extra, timeout=60)
    t.check(rc == 0 and open(mir + "2").read() == ir1, "%s: dump -o FILE writes the same IR" % name)
    # structure: one selective_scan and one state_fusion per block, a weight
    # node for every key of the reference state dict (except num_batches_tracked)
    nblocks = sum(depths)
    nscan = len(re.findall(r"= selective_scan ", ir1))
    nfus = len(re.findall(r"= state_fusion ", ir1))
    t.check(nscan == nblocks and nfus == nblocks,
            "%s: %d selective_scan, %d state_fusion nodes for %d blocks" % (name, nscan, nfus, nblocks))
    ncls = 17 if name.startswith("custom") else 1000
    keys = [k for k in E.sm.random_state_dict(C, depths, ncls, 3, 2.5 if ncls == 17 else 4.0)
            if not k.endswith("num_batches_tracked")] if C <= 64 else None
    if keys:
        wnames = set(re.findall(r"^  %(\S+) = weight ", ir1, re.M))
        missing = [k for k in keys if k not in wnames]
        t.check(not missing and len(wnames) == len(keys),
                "%s: weight nodes == checkpoint keys (%d vs %d)%s" % (
                    name, len(wnames), len(keys), (" missing " + ", ".join(missing[:3])) if missing else ""))
    B = 2 if name.startswith("custom") else 1
    m = re.search(r"= input : f32\[(\d+),(\d+),(\d+),(\d+)\]", ir1)
    want = (B, 3, 45, 33) if name.startswith("custom") else (B, 3, 224, 224)
    t.check(m is not None and tuple(int(v) for v in m.groups()) == want,
            "%s: input type f32%s" % (name, list(want)))
    m = re.search(r"return %(\S+)", ir1)
    t.check(m is not None and re.search(r"%%%s = linear .* : f32\[%d,%d\]" % (
        re.escape(m.group(1)), B, ncls), ir1) is not None,
        "%s: returns a linear of type f32[%d,%d]" % (name, B, ncls))
t.finish()
