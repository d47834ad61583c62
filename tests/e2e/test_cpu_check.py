"""e2e: artifacts refuse a CPU they cannot run on (one sentence, exit 1, no
SIGILL), and one binary serves many CPUs (--cpu A,B,C / --cpu portable).

- riscv64 with RVV under qemu-riscv64 without V (and with too small a VLEN
  for +zvl256b): the sentence, status 1; with V: correct logits.
- x86-64 compiled for x86-64-v4 / x86-64-v3 under qemu-x86_64 CPU models
  without AVX-512 / AVX2: the sentence names the missing features and the
  --cpu to use.
- a fat x86-64 executable (--cpu portable = x86-64,v2,v3,v4) on this CPU and
  under qemu's Nehalem (v2), Haswell (v3) and qemu64 (baseline): the right
  variant runs (-v) and the logits match the float64 reference; MAMBAC_CPU
  forces a variant and is refused for one the CPU lacks; --help lists them.
- aarch64 --cpu generic,neoverse-v1 under qemu-aarch64 cortex-a53 / max.
- the .so's <name>_check_cpu() / <name>_cpu_variant() through ctypes, and
  a .so for a CPU this machine is not: the message, and _run returns 86.
- bad --cpu lists are refused.
Cross parts need Debian's cross gcc + qemu-user (scripts/install-deps.sh);
they are skipped with a note when those are missing."""
import ctypes
import os
import re
import shutil

import e2e_common as E
import numpy as np

t = E.Test("cpu_check")
H, W = 32, 40
cfg, sd, depths = E.custom_model(t, embed_dim=16, depths=(1, 1, 1, 1), num_classes=10, mlp_ratio=2.0,
                                 model_name="cpum")
weights = E.save_weights("model", t.path("w.pth"), sd)
x = E.image((1, 3, H, W), seed=5)
xin = t.path("x.npy")
np.save(xin, x)
want = E.reference(x, sd, depths)
have = {p: shutil.which(p) for p in ("qemu-x86_64", "qemu-aarch64", "qemu-riscv64",
                                     "aarch64-linux-gnu-gcc", "riscv64-linux-gnu-gcc")}


def compile_model(label, out, *extra):
    rc, o, err, dt = t.run(["compile", cfg, "--weights", weights, "--image-size", "%dx%d" % (H, W),
                            "-o", out] + list(extra), timeout=600)
    t.check(rc == 0 and os.path.exists(out),
            "%s: compiles (%.1fs)%s" % (label, dt, "" if rc == 0 else " rc=%s %s" % (rc, err[-800:])))
    return rc == 0, err


def run_exe(label, argv, env_extra=None, expect_variant=None):
    """Runs argv (+ input/output); checks status 0, the logits and the variant -v names."""
    y = t.path("y.npy")
    if os.path.exists(y):
        os.unlink(y)
    env = dict(os.environ, **(env_extra or {}))
    rc, out, err, dt = E.run_prog(argv + ["--input", xin, "--output", y, "-v"], env=env, timeout=300)
    if not t.check(rc == 0, "%s: runs (rc=%s) %s" % (label, rc, err.strip()[-400:])):
        return
    E.check_logits(t, label, y, want, dt)
    if expect_variant is not None:
        m = re.search(r"CPU variant (\S+)", err)
        t.check(m is not None and m.group(1) == expect_variant,
                "%s: -v says variant %s (want %s)" % (label, m.group(1) if m else "?", expect_variant))


def expect_refused(label, argv, must, env_extra=None):
    """Status 1, one sentence on stderr holding every string of must, no signal."""
    env = dict(os.environ, **(env_extra or {}))
    rc, out, err, dt = E.run_prog(argv + ["--input", xin, "--output", t.path("y.npy")], env=env,
                                  timeout=300)
    lines = [ln for ln in err.splitlines() if "warning: TCG doesn't support" not in ln]
    msg = " ".join(lines)
    ok = rc == 1 and all(s in msg for s in must) and "Illegal" not in msg and len(lines) == 1
    t.check(ok, "%s: refused with one sentence (rc=%s): %s" % (label, rc, msg[:400]))


# ------------------------------------------------------------ riscv64 without V
if have["qemu-riscv64"] and have["riscv64-linux-gnu-gcc"]:
    rv = t.path("rv")
    ok, _ = compile_model("riscv64 (RVV by default)", rv, "--target", "riscv64-linux-gnu")
    if ok:
        expect_refused("riscv64 +v under qemu-riscv64 -cpu rv64 (no V)", ["qemu-riscv64", "-cpu", "rv64", rv],
                       ["compiled for riscv64 with +v (vector); this CPU has no V extension",
                        "--features -v or --cpu generic-rv64"])
        run_exe("riscv64 +v under qemu with V", ["qemu-riscv64", "-cpu", "rv64,v=true,vlen=128,vext_spec=v1.0",
                                                 rv])
    rv256 = t.path("rv256")
    ok, _ = compile_model("riscv64 +zvl256b", rv256, "--target", "riscv64-linux-gnu", "--features",
                          "+m,+a,+f,+d,+c,+v,+zvl256b")
    if ok:
        expect_refused("riscv64 +zvl256b under VLEN 128",
                       ["qemu-riscv64", "-cpu", "rv64,v=true,vlen=128,vext_spec=v1.0", rv256],
                       ["zvl256b", "smaller +zvl<N>b"])
        run_exe("riscv64 +zvl256b under VLEN 256", ["qemu-riscv64", "-cpu", "rv64,v=true,vlen=256,vext_spec=v1.0",
                                                    rv256])
    rvs = t.path("rv-scalar")
    ok, _ = compile_model("riscv64 --cpu generic-rv64 (scalar)", rvs, "--target", "riscv64-linux-gnu", "--cpu",
                          "generic-rv64")
    if ok:
        run_exe("riscv64 --cpu generic-rv64 under qemu without V", ["qemu-riscv64", "-cpu", "rv64", rvs])
else:
    print("  note: riscv64 cross gcc or qemu-riscv64 missing: riscv64 part skipped")

# ------------------------------------------------------------ x86-64 levels under qemu
if have["qemu-x86_64"]:
    v4 = t.path("v4")
    if compile_model("x86-64-v4", v4, "--cpu", "x86-64-v4")[0]:
        expect_refused("x86-64-v4 under qemu-x86_64 -cpu Haswell (no AVX-512)",
                       ["qemu-x86_64", "-cpu", "Haswell", v4],
                       ["compiled for x86_64 cpu x86-64-v4", "lacks avx512f", "--cpu x86-64-v3"])
    v3 = t.path("v3")
    if compile_model("x86-64-v3", v3, "--cpu", "x86-64-v3")[0]:
        expect_refused("x86-64-v3 under qemu-x86_64 -cpu Nehalem (no AVX2)",
                       ["qemu-x86_64", "-cpu", "Nehalem", v3], ["avx2", "fma", "--cpu x86-64-v2"])
        run_exe("x86-64-v3 under qemu-x86_64 -cpu Haswell", ["qemu-x86_64", "-cpu", "Haswell", v3],
                expect_variant="x86-64-v3")
else:
    print("  note: qemu-x86_64 missing: x86 CPU-model part skipped")

# ------------------------------------------------------------ one binary for many x86-64 CPUs
fat = t.path("fat")
ok, err = compile_model("fat --cpu portable", fat, "--cpu", "portable", "-v")
if ok:
    names = re.findall(r"variant \d+/\d+ (\S+):", err)
    t.check(names == ["x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"],
            "--cpu portable is x86-64, -v2, -v3, -v4 (-v lists %s)" % names)
    rc, out, err2, _ = E.run_prog([fat, "--help"])
    t.check(rc == 0 and "x86-64 x86-64-v2 x86-64-v3 x86-64-v4" in out and "This CPU runs:" in out,
            "fat --help lists the variants and the one this CPU runs")
    run_exe("fat on this CPU", [fat])
    run_exe("fat, MAMBAC_CPU=x86-64-v2", [fat], {"MAMBAC_CPU": "x86-64-v2"}, "x86-64-v2")
    expect_refused("fat, MAMBAC_CPU=nonsense", [fat], ["MAMBAC_CPU=nonsense names no compiled variant"],
                   {"MAMBAC_CPU": "nonsense"})
    if have["qemu-x86_64"]:
        for model, variant in (("Haswell", "x86-64-v3"), ("Nehalem", "x86-64-v2"), ("qemu64", "x86-64")):
            run_exe("fat under qemu-x86_64 -cpu %s" % model, ["qemu-x86_64", "-cpu", model, fat],
                    expect_variant=variant)
        expect_refused("fat, MAMBAC_CPU=x86-64-v4 under Haswell", ["qemu-x86_64", "-cpu", "Haswell", fat],
                       ["MAMBAC_CPU=x86-64-v4", "lacks avx512f"], {"MAMBAC_CPU": "x86-64-v4"})
    one = t.path("one")
    if compile_model("single variant", one, "--cpu", "x86-64-v2")[0]:
        print("  note: fat (4 variants) %d bytes, one variant %d bytes" % (os.path.getsize(fat),
                                                                          os.path.getsize(one)))

# ------------------------------------------------------------ aarch64 fat under qemu
if have["qemu-aarch64"] and have["aarch64-linux-gnu-gcc"]:
    a64 = t.path("a64")
    if compile_model("aarch64 --cpu generic,neoverse-v1", a64, "--target", "aarch64-linux-gnu", "--cpu",
                     "generic,neoverse-v1")[0]:
        run_exe("aarch64 fat under cortex-a53", ["qemu-aarch64", "-cpu", "cortex-a53", a64],
                expect_variant="generic")
        run_exe("aarch64 fat under max", ["qemu-aarch64", "-cpu", "max", a64], expect_variant="neoverse-v1")
    nv1 = t.path("nv1")
    if compile_model("aarch64 --cpu neoverse-v1", nv1, "--target", "aarch64-linux-gnu", "--cpu",
                     "neoverse-v1")[0]:
        expect_refused("aarch64 neoverse-v1 under cortex-a53", ["qemu-aarch64", "-cpu", "cortex-a53", nv1],
                       ["compiled for aarch64 cpu neoverse-v1", "lacks", "sve", "--cpu generic"])
else:
    print("  note: aarch64 cross gcc or qemu-aarch64 missing: aarch64 part skipped")

# ------------------------------------------------------------ the .so's check through ctypes
def aligned(n):
    """n bytes, 64-byte aligned (OUT.h's <NAME>_ALIGNMENT), as a numpy view."""
    raw = np.zeros(n + 64, np.uint8)
    off = (-raw.ctypes.data) % 64
    return raw[off:off + n]


so = t.path("fatlib.so")
if compile_model("shared --cpu x86-64-v2,x86-64-v3", so, "--emit", "shared", "--cpu", "x86-64-v2,x86-64-v3")[0]:
    hdr = open(t.path("fatlib.h")).read()
    t.check("cpum_check_cpu(void)" in hdr and "cpum_cpu_variant(void)" in hdr,
            "OUT.h declares cpum_check_cpu() and cpum_cpu_variant()")
    so3 = t.path("v3lib.so")
    if compile_model("shared --cpu x86-64-v3", so3, "--emit", "shared", "--cpu", "x86-64-v3")[0]:
        t.check(open(t.path("v3lib.weights"), "rb").read() == open(t.path("fatlib.weights"), "rb").read(),
                "the two variants share one packing of the weights: fatlib.weights == v3lib.weights")
    lib = ctypes.CDLL(so)
    lib.cpum_check_cpu.restype = ctypes.c_char_p
    lib.cpum_cpu_variant.restype = ctypes.c_char_p
    t.check(lib.cpum_check_cpu() is None and lib.cpum_cpu_variant() == b"x86-64-v3",
            ".so on this CPU: check_cpu() NULL, variant %s" % lib.cpum_cpu_variant())
    wbytes = np.fromfile(t.path("fatlib.weights"), np.uint8)
    wbuf = aligned(len(wbytes))
    wbuf[:] = wbytes
    m = re.search(r"#define CPUM_SCRATCH_SIZE (\d+)", hdr)
    scratch = aligned(int(m.group(1)))
    xa = np.ascontiguousarray(x)
    ya = np.zeros(want.shape, np.float32)
    rc = lib.cpum_run(wbuf.ctypes.data_as(ctypes.c_void_p), xa.ctypes.data_as(ctypes.c_void_p), ya.ctypes.data_as(ctypes.c_void_p),
                      scratch.ctypes.data_as(ctypes.c_void_p))
    np.save(t.path("yso.npy"), ya)
    t.check(rc == 0, ".so cpum_run returns 0")
    E.check_logits(t, ".so through ctypes", t.path("yso.npy"), want)

# a .so for a CPU this machine is not (AMX on an AMD CPU, SSE4A on an Intel one)
flags = open("/proc/cpuinfo").read()
foreign = "znver5" if "amx_tile" in flags else "sapphirerapids"
so2 = t.path("foreign.so")
if compile_model("shared --cpu %s" % foreign, so2, "--emit", "shared", "--cpu", foreign)[0]:
    lib2 = ctypes.CDLL(so2)
    lib2.cpum_check_cpu.restype = ctypes.c_char_p
    msg = (lib2.cpum_check_cpu() or b"").decode()
    t.check("compiled for x86_64 cpu %s; this CPU lacks" % foreign in msg,
            ".so for %s on this CPU: check_cpu() says %r" % (foreign, msg[:200]))
    rc = lib2.cpum_run(None, None, None, None)
    t.check(rc == 86, ".so for %s: cpum_run returns 86 (MC_CPU_UNSUPPORTED) without touching memory (got %s)"
            % (foreign, rc))

# ------------------------------------------------------------ bad --cpu lists
t.expect_user_error("--cpu with an entry twice", ["compile", cfg, "--cpu", "x86-64-v2,x86-64-v2", "-o",
                                                  t.path("bad")], ["listed twice"], max_seconds=60)
t.expect_user_error("--cpu with an empty entry", ["compile", cfg, "--cpu", "x86-64-v2,,x86-64-v3", "-o",
                                                  t.path("bad")], ["empty entry"], max_seconds=60)
t.expect_user_error("--cpu with an unknown CPU in the list", ["compile", cfg, "--cpu", "x86-64-v2,nonsense-cpu",
                                                              "-o", t.path("bad")], ["nonsense-cpu"],
                    max_seconds=60)
rc, out, err, dt = t.run(["compile", cfg, "--cpu", "x86-64-v2,x86-64-v3", "--emit", "llvm-ir", "-o",
                          t.path("bad.ll")])
t.check(rc == 2 and "one CPU" in err, "--emit llvm-ir with a CPU list: usage error (rc=%s) %s" % (rc, err.strip()))
t.finish()
