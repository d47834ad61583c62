"""e2e: cross-compiled executables under qemu-user against the float64
PyTorch reference (relative L2 error of the logits <= 1e-4).

`mambac compile --target aarch64-linux-gnu` and `--target riscv64-linux-gnu`
(RVV on by default: -v must report +v, and the code must hold vector
instructions) of a small custom config at an odd size, and of the published
Spatial-Mamba-T config at 33x35, and of a small UperNet segmentor
(mmengine-layout checkpoint) at 71x45 with its --argmax class map, linked
by Debian's cross gcc, run under qemu-aarch64 / qemu-riscv64 (several VLENs for RVV);
`--emit obj` for each target links into examples/embed with the cross gcc.

Needs gcc-aarch64-linux-gnu, gcc-riscv64-linux-gnu and qemu-user
(scripts/install-deps.sh installs them).  Without them the test is skipped
(exit 77) -- unless the environment variable CI is set, where missing tools
are a failure.
"""
import os
import re
import shutil
import struct
import sys

import e2e_common as E
import numpy as np
import torch

TARGETS = [
    # triple, cross gcc, qemu, ELF e_machine, qemu CPU variants to run
    ("aarch64-linux-gnu", "aarch64-linux-gnu-gcc", "qemu-aarch64", 183, [[]]),
    ("riscv64-linux-gnu", "riscv64-linux-gnu-gcc", "qemu-riscv64", 243,
     [["-cpu", "rv64,v=true,vlen=%d,vext_spec=v1.0" % v] for v in (128, 256, 512)]),
]

missing = [tool for tr in TARGETS for tool in tr[1:3] if shutil.which(tool) is None]
if missing and not E.ci_set():
    print("SKIP: cross tools missing: %s (sh scripts/install-deps.sh installs them)"
          % " ".join(missing))
    sys.exit(77)

t = E.Test("cross_qemu")
if missing:
    t.check(False, "CI is set, so the cross tools must be installed; missing: %s "
                   "(run sh scripts/install-deps.sh)" % " ".join(missing))
    t.finish()

cfg, sd, depths = E.custom_model(t)
weights = {"aarch64-linux-gnu": E.save_weights("train", t.path("custom_train.pth"), sd),
           "riscv64-linux-gnu": E.save_weights("safetensors", t.path("custom.safetensors"), sd)}
B, H, W = 2, 35, 33
x = E.image((B, 3, H, W), seed=61)
want = E.reference(x, sd, depths)
xin = t.path("x.npy")
np.save(xin, x)


def elf_info(path):
    """(e_machine, e_flags, has PT_INTERP) of a 64-bit little-endian ELF."""
    with open(path, "rb") as f:
        data = f.read(1 << 16)
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    e_machine = struct.unpack_from("<H", data, 18)[0]
    e_phoff = struct.unpack_from("<Q", data, 32)[0]
    e_flags = struct.unpack_from("<I", data, 48)[0]
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    interp = any(struct.unpack_from("<I", data, e_phoff + i * e_phentsize)[0] == 3
                 for i in range(e_phnum) if e_phoff + (i + 1) * e_phentsize <= len(data))
    return e_machine, e_flags, interp


def rvv_count(dis):
    """(vsetvli-like, all OP-V) instruction counts in objdump -d output.
    objdump versions that do not decode RVV print the words as .4byte, so
    those are decoded here: major opcode 0x57 is OP-V, funct3 7 the vset*."""
    nset = nvec = 0
    for m in re.finditer(r"^\s*[0-9a-f]+:\s+(\S+)\s*(\S*)", dis, re.M):
        op, arg = m.groups()
        if op in (".4byte", ".word") and arg.startswith("0x"):
            w = int(arg, 16)
            if w & 0x7f == 0x57:
                nvec += 1
                nset += (w >> 12) & 7 == 7
        elif op.startswith("v"):
            nvec += 1
            nset += op.startswith("vset")
    return nset, nvec


for triple, cc, qemu, machine, cpus in TARGETS:
    arch = triple.split("-")[0]
    sysroot = "/usr/" + triple
    env = dict(os.environ, QEMU_LD_PREFIX=sysroot)     # harmless for static executables
    exe = t.path("custom-" + arch)
    rc, out, err, dt = t.run(["compile", cfg, "--weights", weights[triple], "--batch", B,
                              "--image-size", "%dx%d" % (H, W), "--target", triple, "-v",
                              "-o", exe], timeout=300)
    if not t.check(rc == 0 and os.path.exists(exe), "%s: mambac compile --target %s rc=%s "
                   "(%.1fs)%s" % (arch, triple, rc, dt, "" if rc == 0 else " " + err.strip()[-1500:])):
        continue
    m = re.search(r"triple=(\S+) cpu=(\S+) features=(\S*)", err)
    feats = set(m.group(3).split(",")) if m else set()
    if arch == "riscv64":
        need = {"+m", "+a", "+f", "+d", "+c", "+v"}
    else:
        need = {"+neon"}
    t.check(m is not None and m.group(1).startswith(arch) and need <= feats,
            "%s: -v reports triple=%s cpu=%s features=%s (need %s)" % (
                arch, m.group(1) if m else "?", m.group(2) if m else "?",
                m.group(3) if m else "?", ",".join(sorted(need))))
    info = elf_info(exe)
    ok = info is not None and info[0] == machine
    if arch == "riscv64" and ok:
        ok = (info[1] & 0x6) == 0x4                          # EF_RISCV_FLOAT_ABI_DOUBLE
    t.check(ok, "%s: executable is a 64-bit ELF for e_machine %d%s (got %s)" % (
        arch, machine, ", lp64d float ABI" if arch == "riscv64" else "",
        info and "machine %d flags 0x%x" % info[:2]))
    t.check(info is not None and not info[2],
            "%s: linked statically (runs under qemu with no target libraries)" % arch)
    if arch == "riscv64":
        objdump = shutil.which("riscv64-linux-gnu-objdump")
        if objdump:
            rc, dis, derr, _ = E.run_prog([objdump, "-d", "--no-show-raw-insn", exe], timeout=120)
            nset, nvec = rvv_count(dis)
            t.check(rc == 0 and nset > 10 and nvec > 100,
                    "riscv64: the code uses RVV (%d vset[i]vli, %d OP-V instructions)" % (
                        nset, nvec))
    for cpu in cpus:
        yout = t.path("y-%s.npy" % arch)
        if os.path.exists(yout):
            os.unlink(yout)
        rc, out, err, dt = E.run_prog([qemu] + cpu + [exe, "--input", xin, "--output", yout,
                                                      "--threads", 2], timeout=300, env=env)
        label = "%s under %s%s" % (arch, qemu, (" " + " ".join(cpu)) if cpu else "")
        if t.check(rc == 0, "%s: rc=%s (%.1fs) %s" % (label, rc, dt, err.strip()[:500])):
            E.check_logits(t, label, yout, want, dt)
    # a wrong input shape is refused under qemu too
    bad = t.path("bad.npy")
    np.save(bad, np.zeros((1, 3, H, W), np.float32))
    rc, out, err, dt = E.run_prog([qemu] + cpus[-1] + [exe, "--input", bad, "--output",
                                                       t.path("bad_out.npy")], env=env)
    t.check(rc == 1 and "[2,3,35,33]" in err.replace(" ", ""),
            "%s: wrong input shape refused under qemu (rc=%s: %s)" % (arch, rc, err.strip()[:200]))
    os.unlink(exe)

    # --emit obj for the target, linked into examples/embed with the cross gcc
    lib = t.path("lib-" + arch, "custom")
    os.makedirs(os.path.dirname(lib))
    rc, out, err, dt = t.run(["compile", cfg, "--weights", weights[triple], "--batch", B,
                              "--image-size", "%dx%d" % (H, W), "--target", triple,
                              "--emit", "obj", "-o", lib], timeout=300)
    if not t.check(rc == 0 and os.path.exists(lib + ".o"), "%s: --emit obj rc=%s (%.1fs) %s" % (
            arch, rc, dt, err.strip()[-800:])):
        continue
    bdir = t.path("embed-" + arch)
    os.makedirs(bdir)
    rc, mout, merr, dt = E.run_prog(["make", "-s", "-f",
                                     os.path.join(E.REPO, "examples", "embed", "Makefile"),
                                     "MODEL=" + lib, "CC=" + cc, "LDFLAGS=-static", "embed"],
                                    cwd=bdir, timeout=180)
    if not t.check(rc == 0, "%s: examples/embed cross-links against custom.o (%s) rc=%s%s" % (
            arch, cc, rc, "" if rc == 0 else " " + (mout + merr).strip()[-800:])):
        continue
    rc, eout, eerr, dt = E.run_prog([qemu] + cpus[-1] + [os.path.join(bdir, "embed"),
                                                         lib + ".weights", xin, 2],
                                    env=env, timeout=300)
    imgs = re.findall(r"^image (\d+):((?:\s+\d+ \(-?[\d.]+\))+)", eout, re.M)
    worst, ok = 0.0, rc == 0 and len(imgs) == B
    for b, rest in imgs:
        scale = float(np.abs(want[int(b)]).max())
        pairs = [(int(c), float(v)) for c, v in re.findall(r"(\d+) \((-?[\d.]+)\)", rest)]
        fifth = np.sort(want[int(b)])[-5]        # the five printed are the reference's top 5
        ok = ok and len(pairs) == 5 and len(set(c for c, _ in pairs)) == 5 and \
            all(want[int(b)][c] >= fifth - 1e-3 * scale for c, _ in pairs)
        worst = max([worst] + [abs(v - want[int(b)][c]) / scale for c, v in pairs])
    t.check(ok and worst <= 2e-4, "%s: embed under %s prints the reference's top-5 of %d images "
            "(max err %.2g of max|logit|) rc=%s%s" % (arch, qemu, B, worst, rc,
                                                      "" if ok else " " + (eout + eerr)[:300]))

# ------------------------------------------------------------ the published tiny model
# Spatial-Mamba-T itself (public config, training-layout checkpoint) at an odd
# small size, cross-compiled for both targets and run under qemu.
tcfg, C, tdepths, ncls, mlp, inc = E.config_for(t, "tiny")
tsd = E.sm.random_state_dict(C, tdepths, ncls, inc, mlp, seed=733)
tw = E.save_weights("train", t.path("tiny_train.pth"), tsd)
tx = E.image((1, 3, 33, 35), seed=734)
twant = E.reference(tx, tsd, tdepths)
txin = t.path("tiny_x.npy")
np.save(txin, tx)
for triple, cc, qemu, machine, cpus in TARGETS:
    arch = triple.split("-")[0]
    exe = t.path("tiny-" + arch)
    rc, out, err, dt = t.run(["compile", tcfg, "--weights", tw, "--image-size", "33x35",
                              "--target", triple, "-o", exe], timeout=300)
    if not t.check(rc == 0, "tiny %s: mambac compile --target %s rc=%s (%.1fs)%s" % (
            arch, triple, rc, dt, "" if rc == 0 else " " + err.strip()[-800:])):
        continue
    yout = t.path("tiny-y-%s.npy" % arch)
    rc, out, err, dt = E.run_prog([qemu] + cpus[-1] + [exe, "--input", txin, "--output", yout,
                                                       "--threads", 2], timeout=300)
    label = "tiny %s under %s" % (arch, qemu)
    if t.check(rc == 0, "%s: rc=%s (%.1fs) %s" % (label, rc, dt, err.strip()[:500])):
        E.check_logits(t, label, yout, twant, dt)
    os.unlink(exe)

# ------------------------------------------------------------ a UperNet segmentor
# A small segmentor (backbone + UperNet head + the final resize) from an
# mmengine-layout checkpoint at an odd, non-square size, cross-compiled for
# both targets: its logits and its --argmax class map under qemu.
scfg = t.path("seg.yaml")
with open(scfg, "w") as f:
    f.write("MODEL:\n  TYPE: spatial_mamba\n  NAME: seg_cross\n"
            "  SPATIALMAMBA: {EMBED_DIM: 16, DEPTHS: [1, 1, 1, 1], D_STATE: 1, MLP_RATIO: 2.0}\n"
            "  BACKBONE: {OUT_INDICES: [0, 1, 2, 3]}\n"
            "  DECODE_HEAD: {TYPE: uper_head, CHANNELS: 16, POOL_SCALES: [1, 2, 3, 6], NUM_CLASSES: 5}\n")
sdcfg = E.sm.dense_config(scfg)
ssd = E.sm.random_dense_state_dict(sdcfg, seed=735)
sw = t.path("seg.pth")
E.ck.save_mmengine(sw, E.ck.segmentor_state_dict(ssd))
SB, SH, SW = 1, 71, 45
sx = E.image((SB, 3, SH, SW), seed=736)
with torch.no_grad():
    swant = E.sm.dense_forward(torch.from_numpy(sx).double(), ssd, sdcfg,
                               dtype=torch.float64)["logits"].numpy()
stop2 = np.sort(swant, axis=1)[:, -2:]
sclear = (stop2[:, 1] - stop2[:, 0]) > 1e-3
sxin = t.path("seg_x.npy")
np.save(sxin, sx)
for triple, cc, qemu, machine, cpus in TARGETS:
    arch = triple.split("-")[0]
    exe = t.path("seg-" + arch)
    rc, out, err, dt = t.run(["compile", scfg, "--weights", sw, "--batch", SB, "--image-size",
                              "%dx%d" % (SH, SW), "--target", triple, "-o", exe], timeout=300)
    if not t.check(rc == 0, "seg %s: mambac compile --target %s rc=%s (%.1fs)%s" % (
            arch, triple, rc, dt, "" if rc == 0 else " " + err.strip()[-800:])):
        continue
    yout, aout = t.path("seg-y-%s.npy" % arch), t.path("seg-a-%s.npy" % arch)
    rc, out, err, dt = E.run_prog([qemu] + cpus[0] + [exe, "--input", sxin, "--output", yout,
                                                      "--argmax", aout, "--threads", 2], timeout=300)
    label = "seg %s under %s%s" % (arch, qemu, (" " + " ".join(cpus[0])) if cpus[0] else "")
    if t.check(rc == 0, "%s: rc=%s (%.1fs) %s" % (label, rc, dt, err.strip()[:500])):
        E.check_logits(t, label, yout, swant, dt)
        a = np.load(aout)
        t.check(a.dtype == np.int32 and a.shape == (SB, SH, SW) and
                (a[sclear] == swant.argmax(axis=1)[sclear]).all(),
                "%s: --argmax int32 %s equals the reference's class map (%d of %d pixels clear)" % (
                    label, list(a.shape), int(sclear.sum()), sclear.size))
    os.unlink(exe)
t.finish()
