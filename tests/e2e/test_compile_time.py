"""e2e: what makes `mambac compile` fast (docs/performance.md, "Compile
time and the JIT cache"), checked on the bundled digits model.

- The kernels are compiled in parts (llvm_emit.c, mc_llvm_compile): -v
  names the parts and threads; the executable is byte-identical when
  compiled again and when compiled on one core (taskset), so the parts do
  not depend on the machine; the JIT (mambac run, also in parts) computes
  bit for bit what the executable computes.
- The parts' kernels are hidden symbols <name>_k<i>: global in the
  --emit obj object, absent from a shared library's exported symbols.
- The runtime's objects are the prebuilt ones beside mambac
  (mambac-runtime/, backends/artifact_rt.c) and the executable is
  byte-identical to one whose runtime is compiled from the sources
  (MAMBAC_RUNTIME_DIR).
- The weights are an object written directly (backends/elf_obj.c): the
  compiler runs no assembler."""
import os
import re
import shutil
import subprocess

import numpy as np

import e2e_common as E

t = E.Test("compile_time")
cfg = os.path.join(E.REPO, "examples", "digits", "digits.yaml")
w = os.path.join(E.REPO, "examples", "digits", "digits.pth")
x = t.path("x.npy")
np.save(x, E.image((1, 3, 32, 32), seed=5))


def compile_exe(out, env=None, prefix=()):
    """mambac compile -v into out (a command prefix such as taskset); (ok, stderr)."""
    rc, o, err, dt = E.run_prog(list(prefix) + [t.mambac, "compile", cfg, "--weights", w, "-v", "-o", out], env=env,
                                timeout=600)
    t.check(rc == 0, "compile %s%s: rc=%s (%.1f s)%s" % (" ".join(prefix) + " " if prefix else "",
                                                         os.path.basename(out), rc, dt,
                                                         "" if rc == 0 else " " + err.strip()[-400:]))
    return rc == 0, err


def same(a, b):
    return os.path.exists(a) and os.path.exists(b) and open(a, "rb").read() == open(b, "rb").read()


exe = t.path("dg")
ok, err = compile_exe(exe)
m = re.search(r"llvm: (\d+) kernels \((\d+) functions\) in (\d+) parts on (\d+) threads", err)
t.check(m is not None and int(m.group(3)) > 1 and int(m.group(4)) == min(len(os.sched_getaffinity(0)),
                                                                          int(m.group(3))),
        "-v: the kernels compiled in several parts, a thread a core (%s)" % (m.group(0) if m else err[-300:]))
# shared code (docs/codegen.md): the repeated blocks' kernels have one function
t.check(m is not None and 0 < int(m.group(2)) < int(m.group(1)),
        "-v: fewer functions than kernels (%s)" % (m.group(0) if m else "?"))
t.check(re.search(r"the runtime's objects, prebuilt: \S+/mambac-runtime/exe", err) is not None,
        "-v: the runtime's objects are the prebuilt ones beside mambac")
t.check(" -c mc_weights.S" not in err and "mc_weights.o" in err, "-v: the weights are an object, not assembled")

exe2 = t.path("dg-again")
compile_exe(exe2)
t.check(same(exe, exe2), "compiled again: byte-identical")
if shutil.which("taskset") and len(os.sched_getaffinity(0)) > 1:
    one = t.path("dg-one-core")
    ok1, err1 = compile_exe(one, prefix=("taskset", "-c", str(min(os.sched_getaffinity(0)))))
    t.check(ok1 and "on 1 threads" in err1 and same(exe, one),
            "compiled on one core: byte-identical to the multi-core compile")
src = t.path("dg-sources")
ok2, err2 = compile_exe(src, env=dict(os.environ, MAMBAC_RUNTIME_DIR=os.path.join(E.REPO, "runtime")))
t.check(ok2 and "compiling the runtime (MAMBAC_RUNTIME_DIR is set)" in err2 and same(exe, src),
        "the runtime compiled from its sources: byte-identical to the prebuilt one's executable")

# the executable and the JIT (parts too) compute the same bits
y_exe, y_jit = t.path("y_exe.npy"), t.path("y_jit.npy")
rc, out, err, _ = E.run_prog([exe, "--input", x, "--output", y_exe, "--threads", "1"])
t.check(rc == 0, "the executable runs: rc=%s %s" % (rc, err.strip()[-300:]))
rc, out, err, _ = t.run(["run", cfg, "--weights", w, "--backend", "llvm", "--input", x, "--output", y_jit,
                         "--threads", "1", "-v"], timeout=600)
t.check(rc == 0 and "parts on" in err, "mambac run --backend llvm compiles in parts: rc=%s %s" % (
    rc, err.strip()[-300:]))
t.check(same(y_exe, y_jit) and os.path.getsize(y_exe) > 128, "the JIT's outputs are bit-identical to the executable's")

# the kernels of the parts: hidden globals <name>_k<i>
base = t.path("dgo")
rc, _, err, _ = t.run(["compile", cfg, "--weights", w, "--emit", "obj", "-o", base], timeout=600)
syms = subprocess.run(["readelf", "-sW", base + ".o"], capture_output=True, text=True).stdout if rc == 0 else ""
kern = re.findall(r"FUNC +GLOBAL +HIDDEN +\d+ (\w+_k\d+)$", syms, re.M)
t.check(rc == 0 and len(kern) > 10, "--emit obj: the kernels are hidden globals (%d, e.g. %s)%s" % (
    len(kern), kern[:2], "" if rc == 0 else " " + err.strip()[-300:]))
rc, _, err, _ = t.run(["compile", cfg, "--weights", w, "--emit", "shared", "-o", base], timeout=600)
dyn = subprocess.run(["nm", "-D", "--defined-only", base + ".so"], capture_output=True, text=True).stdout
t.check(rc == 0 and re.search(r"_run$", dyn, re.M) and not re.search(r"_k\d+$", dyn, re.M),
        "--emit shared: the entry point exported, no kernel")
t.finish()
