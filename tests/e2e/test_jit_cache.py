"""e2e: the JIT cache of `mambac run --backend llvm` (backends/llvm/jit_cache.h).

A private MAMBAC_CACHE_DIR under the work dir.  A first run stores the object
(-v: miss, stored), a second run is a hit that gives bit-identical outputs;
the entry's name is the SHA-256 of its meta text (build id, LLVM version,
triple, CPU, features) and the kernel IR that `mambac dump --format
kernels` prints, recomputed here; other weights are a hit (the object reads
weights from the blob packed at every run) with the outputs of those
weights; another input shape is a miss.  Damaged entries (truncated, a
flipped payload byte, a bad magic, empty, a well-formed entry whose object
does not link) are misses, recompiled and replaced, with correct outputs.
Two runs started at once both succeed and leave one whole entry.
--no-cache and MAMBAC_CACHE_DIR= write nothing; a cache dir that cannot be
created, or is writable by others, runs without the cache and one note.
The directory is trimmed to 64 entries, oldest mtime first (a hit
refreshes the mtime), and old temporaries go."""
import hashlib
import os
import re
import stat
import subprocess
import time

import numpy as np

import e2e_common as E

t = E.Test("jit_cache")
M = t.mambac
cfg, sd, depths = E.custom_model(t, depths=(1, 1, 1, 1))
w = E.save_weights("safetensors", t.path("w.safetensors"), sd)
x = E.image((1, 3, 32, 32), seed=61)
xin = t.path("x.npy")
np.save(xin, x)
want = E.reference(x, sd, depths)
cache = t.path("cache")
ENTRY = re.compile(r"^jit-([0-9a-f]{64})\.mco$")


def env_with(d, **more):
    e = dict(os.environ)
    e.pop("MAMBAC_CACHE_DIR", None)
    if d is not None:
        e["MAMBAC_CACHE_DIR"] = d
    e.update(more)
    return e


def run(label, out, d=cache, weights=w, xpath=xin, extra=(), env=None):
    """mambac run --backend llvm -v; returns (ok, stderr)."""
    if os.path.exists(out):
        os.unlink(out)
    rc, _, err, dt = t.run(["run", cfg, "--weights", weights, "--input", xpath, "--output", out,
                            "--backend", "llvm", "--threads", 2, "-v"] + list(extra),
                           env=env if env is not None else env_with(d))
    ok = rc == 0 and os.path.exists(out) and not any(b in err.lower() for b in E.BAD_WORDS)
    if not ok:
        t.check(False, "%s: rc=%s %s" % (label, rc, err.strip()[:600]))
    return ok, err, dt


def entries(d=cache):
    return sorted(n for n in os.listdir(d) if ENTRY.match(n)) if os.path.isdir(d) else []


def same(a, b):
    return os.path.exists(a) and os.path.exists(b) and open(a, "rb").read() == open(b, "rb").read()


def parse(path):
    """(magic, meta, key, checksum, object, meta length, object length) of an entry."""
    b = open(path, "rb").read()
    ml = int.from_bytes(b[8:12], "little")
    ol = int.from_bytes(b[16:24], "little")
    return b[:8], b[88:88 + ml], b[24:56], b[56:88], b[88 + ml:], ml, ol, len(b)


# ---- first run stores, second run hits with the same bytes
ok, err, dt1 = run("first run", t.path("y1.npy"))
if ok:
    t.check("jit cache miss (no entry)" in err and "jit cache stored" in err,
            "first run: -v says miss and stored (%.1f s)" % dt1)
    E.check_logits(t, "first run", t.path("y1.npy"), want, dt1)
ents = entries()
t.check(len(ents) == 1, "first run: one entry in the cache dir, got %s" % ents)
t.check(stat.S_IMODE(os.stat(cache).st_mode) == 0o700, "the cache dir is created 0700")
if ents:
    e0 = os.path.join(cache, ents[0])
    t.check(stat.S_IMODE(os.stat(e0).st_mode) & 0o077 == 0, "the entry is private (no group/other bits)")
ok, err, dt2 = run("second run", t.path("y2.npy"))
if ok:
    t.check("jit cache hit" in err and "stored" not in err and "code generation" not in err,
            "second run: -v says hit, nothing compiled or stored (%.1f s vs %.1f s)" % (dt2, dt1))
    t.check(same(t.path("y1.npy"), t.path("y2.npy")), "second run (hit): outputs bit-identical to the first")

# ---- the key: SHA-256 of the meta text and the kernel IR, recomputed here
if ents:
    magic, meta, key, csum, obj, ml, ol, n = parse(e0)
    kir = t.path("p.kir")
    rc, _, err, _ = t.run(["dump", cfg, "--weights", w, "--format", "kernels", "--image-size", "32", "-o", kir])
    t.check(rc == 0, "dump --format kernels: rc=%s %s" % (rc, err.strip()[:300]))
    text = meta.decode("utf-8", "replace")
    hexkey = ENTRY.match(ents[0]).group(1)
    # the object, or the program's objects (compiled in parts, llvm_jit.c):
    # "MCOBJS1\0", their number, 4 zero bytes, their lengths, the objects
    objs = [obj]
    if obj[:8] == b"MCOBJS1\0":
        k = int.from_bytes(obj[8:12], "little")
        lens = [int.from_bytes(obj[16 + 8 * i:24 + 8 * i], "little") for i in range(k)]
        offs = [16 + 8 * k + sum(lens[:i]) for i in range(k)]
        objs = [obj[o:o + n] for o, n in zip(offs, lens)] if 16 + 8 * k + sum(lens) == ol else []
    t.check(magic == b"MCJITC1\n" and n == 88 + ml + ol and objs and all(o[:4] == b"\x7fELF" for o in objs),
            "entry layout: magic, lengths, %d ELF object(s) in %d bytes" % (len(objs), ol))
    t.check(key.hex() == hexkey and os.path.exists(kir)
            and hashlib.sha256(meta + open(kir, "rb").read()).hexdigest() == hexkey,
            "the key is SHA-256(meta + kernel IR) and names the file")
    t.check(hashlib.sha256(meta + obj).digest() == csum, "the checksum is SHA-256(meta + object)")
    t.check(all(re.search(p, text, re.M) for p in (r"^build-id [0-9a-f]{16,}$", r"^llvm \d+\.\d+",
                                                   r"^target triple=\S+ cpu=\S+ features=\S+",
                                                   r"^entry run ")),
            "the meta text (in the key) holds the build id, LLVM version, triple, CPU and features:\n      " +
            text.strip().replace("\n", "\n      ")[:400])

# ---- other weights: a hit, with those weights' outputs (no stale values)
sd2 = E.sm.random_state_dict(32, depths, 17, 3, 2.5, seed=99)
w2 = E.save_weights("safetensors", t.path("w2.safetensors"), sd2)
ok, err, dt = run("other weights", t.path("y3.npy"), weights=w2)
if ok:
    t.check("jit cache hit" in err, "other weights: a hit (the object does not depend on weight values)")
    E.check_logits(t, "other weights (cached object)", t.path("y3.npy"), E.reference(x, sd2, depths), dt)
    ok2, _, _ = run("other weights --no-cache", t.path("y3n.npy"), weights=w2, extra=["--no-cache"])
    t.check(ok2 and same(t.path("y3.npy"), t.path("y3n.npy")),
            "other weights: cached and freshly compiled outputs bit-identical")

# ---- another input shape: another program, a miss
x40 = t.path("x40.npy")
np.save(x40, E.image((1, 3, 40, 40), seed=62))
ok, err, _ = run("other shape", t.path("y4.npy"), xpath=x40)
t.check(ok and "jit cache miss" in err and len(entries()) == 2, "another input shape: a miss, a second entry")

# ---- damaged entries: a miss, recompiled, replaced; correct outputs


def damage(label, how):
    p = os.path.join(cache, ents[0])
    b = bytearray(open(p, "rb").read())
    b = how(b)
    with open(p, "wb") as f:
        f.write(b)
    ok, err, _ = run(label, t.path("yd.npy"))
    if not ok:
        return
    m = re.search(r"miss \(damaged entry: ([^)]*)\)", err)
    t.check(m is not None and "stored" in err, "%s: detected (%s), recompiled and stored" % (
        label, m.group(1) if m else err.strip()[:300]))
    t.check(same(t.path("y1.npy"), t.path("yd.npy")), "%s: outputs bit-identical to the first run" % label)
    _, meta2, _, _, obj2, _, _, _ = parse(p)
    t.check(hashlib.sha256(meta2 + obj2).digest() == parse(p)[3], "%s: the entry is whole again" % label)


if ents:
    damage("truncated entry", lambda b: b[:len(b) // 2])

    def flip(b):
        b[len(b) - 5000] ^= 0x10
        return b
    damage("a flipped byte in the object", flip)

    def bad_magic(b):
        b[0] ^= 1
        return b
    damage("a bad magic", bad_magic)
    damage("an empty entry", lambda b: bytearray())

    # well-formed (key, meta, checksum right) but not an object: it does not
    # link, so it is removed and compiled anew
    def not_an_object(b):
        magic, meta, key, _, obj, ml, _, _ = parse(os.path.join(cache, ents[0]))
        junk = b"\x7fELF" + bytes(range(256)) * 8
        return (magic + ml.to_bytes(4, "little") + bytes(4) + len(junk).to_bytes(8, "little") + key
                + hashlib.sha256(meta + junk).digest() + meta + junk)
    p = os.path.join(cache, ents[0])
    bad = not_an_object(None)
    with open(p, "wb") as f:
        f.write(bad)
    ok, err, _ = run("an entry that does not link", t.path("yd.npy"))
    good = ok and "does not link" in err and "stored" in err and same(t.path("y1.npy"), t.path("yd.npy"))
    t.check(good, "an entry that does not link: removed, recompiled, stored, outputs bit-identical%s" % (
        "" if good else ": " + err.strip().replace("\n", " | ")[:500]))

# ---- two runs started at once
for n in entries():
    os.unlink(os.path.join(cache, n))
procs = []
for i in range(2):
    out = t.path("yc%d.npy" % i)
    procs.append((out, subprocess.Popen([M, "run", cfg, "--weights", w, "--input", xin, "--output", out,
                                         "--backend", "llvm", "--threads", "1"], env=env_with(cache),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
for i, (out, p) in enumerate(procs):
    o, e = p.communicate(timeout=600)
    t.check(p.returncode == 0 and same(t.path("y1.npy"), out),
            "concurrent run %d: rc=%s, outputs bit-identical %s" % (i, p.returncode, e.decode()[-300:]))
left = os.listdir(cache)
t.check(len(entries()) == 1 and len(left) == 1, "after two concurrent runs: one entry, no temporaries: %s" % left)
if entries():
    _, meta, key, csum, obj, _, _, _ = parse(os.path.join(cache, entries()[0]))
    t.check(hashlib.sha256(meta + obj).digest() == csum, "after two concurrent runs: the entry is whole")
ok, err, _ = run("after concurrent runs", t.path("yc.npy"))
t.check(ok and "jit cache hit" in err, "after two concurrent runs: the next run is a hit")

# ---- --no-cache and MAMBAC_CACHE_DIR= write nothing
c2 = t.path("cache2")
ok, err, _ = run("--no-cache", t.path("y5.npy"), d=c2, extra=["--no-cache"])
t.check(ok and not os.path.exists(c2) and "jit cache" not in err and same(t.path("y1.npy"), t.path("y5.npy")),
        "--no-cache: no cache dir, no cache lines, same outputs")
home = t.path("home")
os.mkdir(home)
env = env_with("", HOME=home)
env.pop("XDG_CACHE_HOME", None)
ok, err, _ = run("MAMBAC_CACHE_DIR=", t.path("y6.npy"), env=env)
t.check(ok and os.listdir(home) == [] and "jit cache" not in err and "note" not in err,
        "MAMBAC_CACHE_DIR= (empty): nothing written (not under HOME either), no note")
env = env_with(None, HOME=home, XDG_CACHE_HOME=t.path("xdg"))
ok, err, _ = run("XDG_CACHE_HOME", t.path("y6.npy"), env=env)
t.check(ok and len(entries(t.path("xdg", "mambac"))) == 1 and os.listdir(home) == [],
        "no MAMBAC_CACHE_DIR: the cache is $XDG_CACHE_HOME/mambac")
env = env_with(None, HOME=home)
env.pop("XDG_CACHE_HOME", None)
ok, err, _ = run("HOME", t.path("y6.npy"), env=env)
t.check(ok and len(entries(os.path.join(home, ".cache", "mambac"))) == 1,
        "no MAMBAC_CACHE_DIR or XDG_CACHE_HOME: the cache is $HOME/.cache/mambac")

# ---- a cache dir that cannot be used: runs, one note
afile = t.path("a_file")
open(afile, "w").close()
for label, d in (("a cache dir under a regular file", os.path.join(afile, "cache")),
                 ("a cache dir writable by others", t.path("open"))):
    if label.endswith("others"):
        os.mkdir(d)
        os.chmod(d, 0o777)
    ok, err, _ = run(label, t.path("y7.npy"), d=d)
    notes = [ln for ln in err.splitlines() if "note:" in ln]
    t.check(ok and len(notes) == 1 and "without the JIT cache" in notes[0] and same(t.path("y1.npy"),
                                                                                    t.path("y7.npy")),
            "%s: runs, one note: %s" % (label, notes))
    t.check(not entries(d), "%s: nothing stored" % label)
if os.geteuid() != 0:
    ro = t.path("ro")
    os.mkdir(ro, 0o700)
    os.chmod(ro, 0o500)
    ok, err, _ = run("a read-only cache dir", t.path("y8.npy"), d=ro)
    notes = [ln for ln in err.splitlines() if "note:" in ln]
    t.check(ok and len(notes) == 1 and same(t.path("y1.npy"), t.path("y8.npy")),
            "a read-only cache dir: runs, one note: %s" % notes)
    os.chmod(ro, 0o700)
else:
    print("  info: running as root: a read-only directory is writable, not tested")

# ---- trimming: 64 entries, oldest mtime first; a hit refreshes the mtime
c3 = t.path("cache3")
os.mkdir(c3, 0o700)
old = time.time() - 86400
for i in range(70):
    p = os.path.join(c3, "jit-%064x.mco" % i)
    with open(p, "wb") as f:
        f.write(b"x" * 100)
    os.utime(p, (old + i, old + i))
stale_tmp = os.path.join(c3, ".jit-%064x.mco.1.0.tmp" % 1)
fresh_tmp = os.path.join(c3, ".jit-%064x.mco.2.0.tmp" % 2)
for p, when in ((stale_tmp, old), (fresh_tmp, time.time())):
    open(p, "w").close()
    os.utime(p, (when, when))
ok, err, _ = run("trim", t.path("y9.npy"), d=c3)
left = entries(c3)
fakes = sorted(int(n[4:68], 16) for n in left if n.startswith("jit-" + "0" * 56))
real = [n for n in left if not n.startswith("jit-" + "0" * 56)]
t.check(ok and len(left) == 64 and len(real) == 1 and fakes == list(range(7, 70)),
        "trim: 70 old entries + 1 new -> 64, the 7 oldest removed, the new one kept (%d left)" % len(left))
t.check(not os.path.exists(stale_tmp) and os.path.exists(fresh_tmp),
        "trim: a temporary older than an hour removed, a fresh one kept")
if real:
    p = os.path.join(c3, real[0])
    os.utime(p, (old - 10, old - 10))
    ok, err, _ = run("hit refreshes mtime", t.path("y9.npy"), d=c3)
    t.check(ok and "jit cache hit" in err and os.stat(p).st_mtime > time.time() - 3600,
            "a hit sets the entry's mtime (used entries are trimmed last)")

# ---- the option belongs to run; --help says so
rc, out, err, _ = t.run(["run", "--help"])
t.check(rc == 0 and "--no-cache" in out and "MAMBAC_CACHE_DIR" in out, "run --help describes --no-cache")
rc, out, err, _ = t.run(["compile", cfg, "-o", t.path("z"), "--no-cache"])
t.check(rc == 2 and "--no-cache" in err, "compile --no-cache: a usage error (rc=%s)" % rc)
t.finish()
