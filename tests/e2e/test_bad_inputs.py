"""e2e: bad user input must give exit status 1, a clear message on stderr
(naming the key / shapes / file:line:col where stated), no crash, and finish
within a few seconds.  Covers truncated and corrupted checkpoints, files that
are not checkpoints, missing and mis-shaped tensors, YAML syntax and type
errors, wrong .npy inputs and missing files."""
import os
import struct
import zipfile
from collections import OrderedDict

import e2e_common as E
import numpy as np
import torch

t = E.Test("bad_inputs")
depths = [1, 2, 1, 1]
cfg = E.write_config(t.path("m.yaml"), 32, depths, num_classes=17, mlp_ratio=2.5)
sd = E.sm.random_state_dict(32, depths, 17, 3, 2.5, seed=3)
good = t.path("good.pth")
E.ck.save_training(good, sd, optimizer_params=6)
x = E.image((1, 3, 32, 36), seed=1)
xin = t.path("x.npy")
np.save(xin, x)
out = t.path("y.npy")


def run_args(weights, inp=xin, model=cfg):
    return ["run", model, "--weights", weights, "--input", inp, "--output", out,
            "--backend", "ref", "--threads", "2"]


# The good checkpoint works (otherwise every failure below proves nothing).
t.run_logits("baseline: the intact checkpoint runs", cfg, good, x, sd, depths)

# ------------------------------------------------------------ damaged .pth
blob = open(good, "rb").read()
n = len(blob)
for cut in (0, 3, 30, 200, n // 4, n // 2, n - 100, n - 22, n - 1):
    p = t.path("trunc_%d.pth" % cut)
    with open(p, "wb") as f:
        f.write(blob[:cut])
    t.expect_user_error("truncated .pth (%d of %d bytes)" % (cut, n), run_args(p))
    os.unlink(p)

# Corrupt one byte inside a stored tensor: the entry's CRC-32 must catch it.
with zipfile.ZipFile(good) as z:
    infos = [i for i in z.infolist() if "/data/" in i.filename]
    big = max(infos, key=lambda i: i.file_size)
    pkl = [i for i in z.infolist() if i.filename.endswith("data.pkl")][0]


def data_offset(info):
    hdr = blob[info.header_offset:info.header_offset + 30]
    name_len, extra_len = struct.unpack("<HH", hdr[26:30])
    return info.header_offset + 30 + name_len + extra_len


for label, info, rel in (("tensor storage %s" % big.filename, big, 0.5),
                         ("tensor storage %s, last byte" % big.filename, big, 1.0),
                         ("data.pkl", pkl, 0.5)):
    off = data_offset(info) + min(int(info.file_size * rel), info.file_size - 1)
    bad = bytearray(blob)
    bad[off] ^= 0x5A
    p = t.path("corrupt.pth")
    with open(p, "wb") as f:
        f.write(bad)
    t.expect_user_error("one byte flipped in %s" % label, run_args(p), must_contain=("crc",))
    os.unlink(p)

# Garbage after a valid zip local header, and a zip that is not a checkpoint.
p = t.path("notckpt.pth")
with zipfile.ZipFile(p, "w") as z:
    z.writestr("archive/readme.txt", "hello")
t.expect_user_error("zip without data.pkl", run_args(p))
p = t.path("junk.pth")
with open(p, "wb") as f:
    f.write(b"PK\x03\x04" + os.urandom(3000))
t.expect_user_error("zip magic then random bytes", run_args(p))

# Not checkpoints at all.
png = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" +
       struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0) + b"\x90wS\xde" +
       b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef" +
       b"\x00\x00\x00\x00IEND\xaeB`\x82")
for fname, data in (("image.png", png), ("notes.txt", b"these are not weights\n" * 20),
                    ("empty.pth", b""), ("w.safetensors", b"\xff" * 8 + b"{}"),
                    ("trunc.safetensors", E.ck.safetensors_bytes(sd)[:5000]),
                    ("badjson.safetensors", struct.pack("<Q", 10) + b"{not json}")):
    p = t.path(fname)
    with open(p, "wb") as f:
        f.write(data)
    t.expect_user_error("weights file %s" % fname, run_args(p))
t.expect_user_error("a directory given as weights", run_args(t.work))

# A tensor missing: the message names it (and its expected shape).
key = "layers.1.blocks.1.self_attention.A_logs"
s2 = OrderedDict((k, v) for k, v in sd.items() if k != key)
p = t.path("missing.pth")
E.ck.save_model(p, s2)
t.expect_user_error("checkpoint without %s" % key, run_args(p), must_contain=(key, "[128,1]"))
E.ck.save_safetensors(t.path("missing.safetensors"), s2)
t.expect_user_error("safetensors without %s" % key, run_args(t.path("missing.safetensors")),
                    must_contain=(key,))

# A mis-shaped tensor: key, expected and actual shapes.
key = "layers.0.blocks.0.mlp.fc1.weight"
s3 = OrderedDict(sd)
s3[key] = sd[key].t().contiguous()
p = t.path("misshaped.pth")
E.ck.save_model(p, s3)
t.expect_user_error("%s stored transposed" % key, run_args(p),
                    must_contain=(key, "[80,32]", "[32,80]"))
s4 = OrderedDict(sd)
s4["head.bias"] = torch.zeros(1000)
E.ck.save_safetensors(t.path("misshaped.safetensors"), s4)
t.expect_user_error("head.bias with 1000 classes for a 17-class config",
                    run_args(t.path("misshaped.safetensors")),
                    must_contain=("head.bias", "[17]", "[1000]"))

# An extra, unknown tensor is fine (skipped with a note): must succeed.
s5 = OrderedDict(sd)
s5["some.extra.tensor"] = torch.ones(3)
p = t.path("extra.pth")
E.ck.save_model(p, s5)
t.run_logits("an extra unknown tensor is ignored", cfg, p, x, sd, depths)

# ------------------------------------------------------------ YAML errors


def yaml_case(label, text, regex_tail, must_contain=()):
    name = label.replace(" ", "_").replace("/", "_") + ".yaml"
    p = t.path(name)
    with open(p, "w") as f:
        f.write(text)
    t.expect_user_error("config: " + label, run_args(good, model=p), must_contain=must_contain,
                        regex=r"%s:%s" % (r"[^\s:]*" + name.replace(".", r"\."), regex_tail))


HEAD = "MODEL:\n  TYPE: spatial_mamba\n  NAME: t\n  NUM_CLASSES: 17\n  SPATIALMAMBA:\n"
# line numbers below: HEAD is lines 1-5, so the first SPATIALMAMBA key is line 6
yaml_case("syntax unclosed flow sequence",
          HEAD + "    EMBED_DIM: 32\n    DEPTHS: [1, 2, 1, 1\n    MLP_RATIO: 2.5\n", r"\d+:\d+")
yaml_case("syntax bad indentation",
          HEAD + "    EMBED_DIM: 32\n   DEPTHS: [1, 2, 1, 1]\n", r"\d+:\d+")
yaml_case("syntax unterminated quote",
          HEAD + "    EMBED_DIM: 32\n    DEPTHS: [1, 2, 1, 1]\n    DT_INIT: 'random\n", r"\d+:\d+")
yaml_case("EMBED_DIM is a string",
          HEAD + "    EMBED_DIM: abc\n    DEPTHS: [1, 2, 1, 1]\n    MLP_RATIO: 2.5\n",
          r"6:\d+", must_contain=("EMBED_DIM",))
yaml_case("DEPTHS is a scalar",
          HEAD + "    EMBED_DIM: 32\n    DEPTHS: 4\n    MLP_RATIO: 2.5\n",
          r"7:\d+", must_contain=("DEPTHS",))
yaml_case("DEPTHS holds a float",
          HEAD + "    EMBED_DIM: 32\n    DEPTHS: [1, 2.5, 1, 1]\n    MLP_RATIO: 2.5\n",
          r"7:\d+", must_contain=("DEPTHS",))
yaml_case("MLP_RATIO is a list",
          HEAD + "    EMBED_DIM: 32\n    DEPTHS: [1, 2, 1, 1]\n    MLP_RATIO: [2.5]\n",
          r"8:\d+", must_contain=("MLP_RATIO",))
yaml_case("unknown key in SPATIALMAMBA",
          HEAD + "    EMBED_DIM: 32\n    DEPTHS: [1, 2, 1, 1]\n    MLP_RATIOS: 2.5\n",
          r"8:\d+", must_contain=("MLP_RATIOS",))
yaml_case("D_STATE 16",
          HEAD + "    EMBED_DIM: 32\n    DEPTHS: [1, 2, 1, 1]\n    D_STATE: 16\n",
          r"8:\d+", must_contain=("D_STATE",))
for label, text in (("empty file", ""), ("top level is a list", "- 1\n- 2\n"),
                    ("binary garbage", "\x00\x01\x02\xff\xfe"),
                    ("odd EMBED_DIM", HEAD + "    EMBED_DIM: 31\n    DEPTHS: [1, 2, 1, 1]\n"),
                    ("negative depth", HEAD + "    EMBED_DIM: 32\n    DEPTHS: [1, -2, 1, 1]\n")):
    p = t.path("y_%s.yaml" % label.replace(" ", "_"))
    with open(p, "w", encoding="latin-1") as f:
        f.write(text)
    t.expect_user_error("config: " + label, run_args(good, model=p))

# ------------------------------------------------------------ .npy inputs


def npy_case(label, arr, must_contain=()):
    p = t.path("in_%d.npy" % t.checks)
    np.save(p, arr)
    t.expect_user_error("input " + label, run_args(good, inp=p), must_contain=must_contain)


npy_case("int64 [1,3,32,36]", np.zeros((1, 3, 32, 36), np.int64), ("float32",))
npy_case("float64 [1,3,32,36] (not converted: the CLI documents float32)",
         x.astype(np.float64), ("float32",))
npy_case("rank 3 [3,32,36]", x[0])
npy_case("4 channels for a 3-channel model", E.image((1, 4, 32, 36), 2), ("channels",))
npy_case("height 31 < 32", E.image((1, 3, 31, 40), 3), ("32",))
npy_case("width 20 < 32", E.image((1, 3, 40, 20), 3), ("32",))
npy_case("batch 0", np.zeros((0, 3, 32, 32), np.float32))
p = t.path("garbage.npy")
with open(p, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + b"\xff" * 40)
t.expect_user_error("input .npy with a garbage header", run_args(good, inp=p))
p = t.path("trunc.npy")
np.save(p, x)
with open(p, "r+b") as f:
    f.truncate(os.path.getsize(p) - 17)
t.expect_user_error("input .npy truncated", run_args(good, inp=p))

# ------------------------------------------------------------ missing files
t.expect_user_error("missing config", run_args(good, model=t.path("nope.yaml")),
                    must_contain=("nope.yaml",))
t.expect_user_error("missing weights", run_args(t.path("nope.pth")), must_contain=("nope.pth",))
t.expect_user_error("missing input", run_args(good, inp=t.path("nope.npy")),
                    must_contain=("nope.npy",))
args = run_args(good)
args[args.index(out)] = t.path("no", "such", "dir", "y.npy")
t.expect_user_error("output in a missing directory", args, must_contain=("y.npy",))

# ------------------------------------------------------------ hostile files
# Row 2 (issue 15): a FIFO, a device or a directory in place of any input file
# is refused before a byte is read: no hang (nothing writes to the FIFO).
fifo = t.path("fifo")
os.mkfifo(fifo)
for label, args, what in (("a FIFO as --weights", run_args(fifo), "fifo"),
                          ("a FIFO as --input", run_args(good, inp=fifo), "fifo"),
                          ("a FIFO as MODEL", run_args(good, model=fifo), "fifo"),
                          ("a FIFO as the IR of dump", ["dump", fifo], "fifo"),
                          ("/dev/zero as MODEL", run_args(good, model="/dev/zero"), "device"),
                          ("/dev/zero as --input", run_args(good, inp="/dev/zero"), "device"),
                          ("a directory as MODEL", run_args(good, model=t.work), "directory"),
                          ("a directory as --input", run_args(good, inp=t.work), "directory")):
    t.expect_user_error(label, args, must_contain=("not a regular file", what))
exe = t.path("tiny_exe")
rc, _, err, _ = t.run(["compile", cfg, "--weights", good, "--batch", "1", "--image-size", "32x36",
                       "-o", exe], timeout=300)
t.check(rc == 0, "compile an executable for the hostile-input cases: rc=%s %s" % (rc, err.strip()[:300]))
if rc == 0:
    for label, path, what in (("FIFO", fifo, "fifo"), ("/dev/zero", "/dev/zero", "device")):
        rc, _, err, dt = E.run_prog([exe, "--input", path, "--output", out], timeout=30)
        t.check(rc == 1 and "not a regular file" in err and what in err.lower() and dt < 10,
                "the executable's --input is a %s: rc=%s %.1fs %s" % (label, rc, dt, err.strip()[:200]))

# Row 5: YAML that made the loader quadratic.  400k anchors whose aliases
# come after all of them (the old linear search walked the whole list for
# each), and 100k keys under MODEL (the old duplicate check compared every
# pair): each must be answered in seconds.
# Timed against the same input at a quarter of the size, so that a loaded
# (or sanitized) machine does not fail it: linear work grows 4x, the old
# quadratic one 16x (it took > 100 s at full size).


def dump_time(label, path):
    rc, _, err, dt = t.run(["dump", path], timeout=300)
    t.check(rc == 0, "%s: rc=%s %.1fs %s" % (label, rc, dt, err.strip()[:200]))
    return dt


def scales_linearly(label, make):
    """make(n) writes the input at size n and returns its path."""
    small = dump_time(label + " (quarter size)", make(N // 4))
    big = dump_time(label, make(N))
    t.check(big < 60 and big < 8 * max(small, 0.25),
            "%s: linear time: %.2fs at full size, %.2fs at a quarter" % (label, big, small))


def anchors(n):
    p = t.path("anchors.yaml")
    with open(p, "w") as f:
        f.write(open(cfg).read() + "EXTRA: [" + ", ".join("&a%d %d" % (i, i) for i in range(n)) + ", " +
                ", ".join("*a%d" % i for i in range(n)) + "]\n")
    return p


def many_keys(n):
    p = t.path("keys.yaml")
    with open(p, "w") as f:
        f.write(open(cfg).read().replace("MODEL:\n", "MODEL:\n" + "".join("  K%d: 1\n" % i for i in range(n)), 1))
    return p


N = 400000
scales_linearly("a config with 400000 anchors and 400000 aliases", anchors)
N = 100000
scales_linearly("a config with 100k unknown keys under MODEL", many_keys)
p = many_keys(N)
model_keys = open(p).read()
with open(p, "w") as f:
    f.write(model_keys.replace("MODEL:\n", "MODEL:\n  K99999: 2\n", 1))
t.expect_user_error("config: 100k keys under MODEL, one twice", run_args(good, model=p),
                    must_contain=("duplicate key 'K99999'",), max_seconds=30)

# Row 6: small files that made the readers' memory explode.  Each must be
# refused with a message naming the limit, and mambac's peak RSS (measured
# by a child Python, so that it is this run's alone) must stay far below the
# old 2+ GB.
RSS_PROBE = ("import resource, subprocess, sys\n"
             "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
             "sys.stderr.write(p.stderr.decode('utf-8', 'replace'))\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
             "sys.exit(p.returncode)\n")


def rss_case(label, weights, want, max_mb=400):
    rc, so, err, dt = E.run_prog(["/usr/bin/python3", "-c", RSS_PROBE, t.mambac] + run_args(weights),
                                 timeout=300)
    mb = int(so.strip() or 0) / 1024.0
    t.check(rc == 1 and want in err and mb < max_mb and dt < 30,
            "%s: rc=%s %.1fs peak RSS %.0f MB (< %d) %s" % (label, rc, dt, mb, max_mb,
                                                         err.strip()[:200]))


p = t.path("opcodes.pth")
with zipfile.ZipFile(p, "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", b"\x80\x02" + b"]" * (42 << 20) + b".")
rss_case("a 42 MB data.pkl of one-byte EMPTY_LIST opcodes", p, "the limit for a checkpoint's data.pkl")
with zipfile.ZipFile(p, "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", b"\x80\x02]q\x00" + b"h\x00" * (13 << 20) + b".")
rss_case("a 26 MB data.pkl of memo gets (a deep stack)", p, "the limit for a checkpoint's data.pkl")
hdr = b'{"__metadata__": [' + b"0," * (33 << 20) + b"0]}"
p = t.path("bighdr.safetensors")
with open(p, "wb") as f:
    f.write(struct.pack("<Q", len(hdr)) + hdr)
rss_case("a 66 MB safetensors header of 33M numbers", p, "the limit for a checkpoint header")

# Row 7: sizes are checked before whole files are read.  A 4 GiB (sparse)
# garbage --input is refused by its magic, one with a valid header by its
# size; a 100 MB config is over the 64 MiB cap for model files.
huge = t.path("huge.npy")
with open(huge, "wb") as f:
    f.write(b"garbage")
    f.truncate(4 << 30)
t.expect_user_error("a 4 GiB garbage --input", run_args(good, inp=huge), must_contain=("magic",),
                    max_seconds=3)
with open(huge, "r+b") as f:
    f.write(open(xin, "rb").read(128))
t.expect_user_error("a 4 GiB --input whose header is for [1,3,32,36]", run_args(good, inp=huge),
                    must_contain=("shape needs 13824",), max_seconds=3)
os.unlink(huge)
p = t.path("huge.yaml")
with open(p, "wb") as f:
    f.write(open(cfg, "rb").read())
    f.truncate(100 << 20)
t.expect_user_error("a 100 MB config", run_args(good, model=p), must_contain=("64 MiB limit",),
                    max_seconds=3)

# Row 9: a second zip entry of the same name (torch.load reads the last
# copy, a first-match reader the first): refused, naming the entry.
import warnings  # noqa: E402
p = t.path("dupentry.pth")
with open(p, "wb") as f:
    f.write(blob)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    with zipfile.ZipFile(p, "a", zipfile.ZIP_STORED) as z:
        z.writestr(big.filename, b"\0" * big.file_size)
t.expect_user_error("a .pth with two entries %s" % big.filename, run_args(p),
                    must_contain=("'%s' appears twice" % big.filename,))

# Row 13: names from a checkpoint are printed with control characters (and
# C1 codes) escaped: a tensor name cannot clear the screen or retitle the
# terminal.
evil = "evil\x1b[2J\x1b]0;pwned\x07\u009b31m"
s6 = OrderedDict(sd)
s6[evil] = torch.ones(3)
for fmt in ("pth", "safetensors"):
    p = t.path("evil." + fmt)
    if fmt == "pth":
        E.ck.save_model(p, s6)
    else:
        E.ck.save_safetensors(p, s6)
    rc, _, err, _ = t.run(run_args(p))
    t.check(rc == 0 and "\x1b" not in err and "\x07" not in err and "\u009b" not in err and
            "evil\\x1B[2J\\x1B]0;pwned\\x07\\xC2\\x9B31m" in err,
            "%s: an unused tensor named with escape sequences is noted escaped: rc=%s %r" % (
                fmt, rc, err.strip()[-200:]))
p = t.path("evil_dtype.safetensors")
hdr = b'{"a\\u001b[2Jb": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}'
with open(p, "wb") as f:
    f.write(struct.pack("<Q", len(hdr)) + hdr + b"\0" * 4)
rc, err = t.expect_user_error("a tensor name with an escape in an error message", run_args(p),
                              must_contain=("'a\\x1B[2Jb'",))
t.check("\x1b" not in err, "that message holds no raw ESC")

# Row 14: shapes whose size products overflow, even with a zero dimension
# (the old reader computed row-major strides that overflowed int64).
for shape in ([0, 1 << 62, 1 << 62], [1 << 62, 1 << 62, 0], [0, 1 << 40, 1 << 40, 1 << 40]):
    hdr = ('{"x": {"dtype": "F32", "shape": %s, "data_offsets": [0, 0]}}' % shape).encode()
    p = t.path("zero_huge.safetensors")
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr)
    t.expect_user_error("safetensors tensor of shape %s" % shape, run_args(p),
                        must_contain=("'x'", "shape is too large"))

# Row 20: a safetensors-shaped file with a wild header length gets the
# reader's own message, not "not a checkpoint".
p = t.path("hlen.safetensors")
with open(p, "wb") as f:
    f.write(struct.pack("<Q", 1 << 63) + b'{"a": 1}')
t.expect_user_error("safetensors header length 2^63", run_args(p),
                    must_contain=("header length 9223372036854775808",))
import json  # noqa: E402

# Row 20: a tensor of a dtype mambac does not read (uint8, bool, int8, ...)
# is named with its dtype, not reported "missing".
key = "layers.0.blocks.0.ln_1.weight"
assert key in sd
for tdt, stname, tname in ((torch.uint8, "U8", "uint8"), (torch.bool, "BOOL", "bool"),
                           (torch.int8, "I8", "int8"), (torch.int16, "I16", "int16")):
    s7 = OrderedDict(sd)
    s7[key] = sd[key].to(tdt)
    p = t.path("dtype.pth")
    E.ck.save_model(p, s7)
    t.expect_user_error("a .pth whose %s is %s" % (key, tname), run_args(p),
                        must_contain=("'%s' has dtype %s" % (key, tname), "does not support",
                                      "float32, float16, bfloat16"))
    parts, hdr, off = [], {}, 0
    for k, v in s7.items():
        raw = v.contiguous().numpy().tobytes()
        dt = stname if k == key else {torch.float32: "F32", torch.int64: "I64"}[v.dtype]
        hdr[k] = {"dtype": dt, "shape": list(v.shape), "data_offsets": [off, off + len(raw)]}
        parts.append(raw)
        off += len(raw)
    hb = json.dumps(hdr).encode()
    p = t.path("dtype.safetensors")
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(parts))
    t.expect_user_error("a .safetensors whose %s is %s" % (key, stname), run_args(p),
                        must_contain=("'%s' has dtype %s" % (key, stname), "does not support",
                                      "float32, float16, bfloat16"))

# Row 20: zero-size and too large input shapes get their own message.
npy_case("H=0 [1,3,0,36]", np.zeros((1, 3, 0, 36), np.float32), ("zero-size dimension",))
npy_case("W=0 and C=0 [1,0,32,0]", np.zeros((1, 0, 32, 0), np.float32), ("zero-size dimension",))
npy_case("batch 0 [0,3,32,36]", np.zeros((0, 3, 32, 36), np.float32), ("empty batch",))
for b in ("1099511627776", "65537", "99999999999999999999999"):
    rc, _, err, _ = t.run(["dump", cfg, "--batch", b], timeout=60)
    t.check(rc == 2 and ("--batch %s is too large" % b) in err and "65536" in err,
            "--batch %s: a usage error naming the limit: rc=%s %s" % (b, rc, err.strip()[:200]))
if os.path.exists(exe):
    for label, shp, what in (("H=0", (1, 3, 0, 36), "zero-size dimension"),
                             ("batch 0", (0, 3, 32, 36), "empty batch")):
        p = t.path("exe_in.npy")
        np.save(p, np.zeros(shp, np.float32))
        rc, _, err, dt = E.run_prog([exe, "--input", p, "--output", out], timeout=30)
        t.check(rc == 1 and what in err and "recompile" not in err,
                "the executable's --input is %s: rc=%s %s" % (label, rc, err.strip()[:200]))
# The --target cuda executable's host side is the runtime's (cuda_main.c,
# npy.c, out.c): the same refusals as the CPU executable's, and the input,
# the weights, the output and --kernel-outputs are checked before the GPU is
# looked for (so this runs on machines without one).
import shutil  # noqa: E402
import subprocess  # noqa: E402

nvcc = os.environ.get("NVCC") or (
    "/usr/local/cuda/bin/nvcc" if os.access("/usr/local/cuda/bin/nvcc", os.X_OK) else "nvcc")
cu = t.path("cu_exe")
if not shutil.which(nvcc):
    print("  skip  the CUDA executable's --input cases: no nvcc (%s)" % nvcc)
else:
    # --emit exe: the .cu linked with the runtime's main (runtime/exe/cuda_main.c)
    rc, _, err, _ = t.run(["compile", cfg, "--target", "cuda", "--batch", "1",
                           "--image-size", "32x36", "--instrument", "-o", cu], timeout=600)
    if t.check(rc == 0 and os.access(cu, os.X_OK), "build a --target cuda executable: rc=%s %s" % (
            rc, err.strip()[-300:])):
        bigcu = t.path("cu_huge.npy")
        with open(bigcu, "wb") as f:
            f.write(open(xin, "rb").read(128))
            f.truncate(4 << 30)
        cases = [("a FIFO", fifo, "not a regular file (a FIFO)"),
                 ("/dev/zero", "/dev/zero", "not a regular file (a character device)"),
                 ("a directory", t.work, "not a regular file (a directory)"),
                 ("a 4 GiB file with the model's header", bigcu, "shape needs 13824"),
                 ("H=0", (1, 3, 0, 36), "a zero-size dimension"),
                 ("batch 0", (0, 3, 32, 36), "an empty batch"),
                 ("[2^62, 2^62]", "(4611686018427387904, 4611686018427387904)", "shape is too large"),
                 ("[1, -3, 32, 36]", "(1, -3, 32, 36)", "must be a tuple of integers"),
                 ("truncated", "trunc", "(truncated?)")]
        for label, what, want in cases:
            path = what
            if isinstance(what, tuple):
                path = t.path("cu_in.npy")
                np.save(path, np.zeros(what, np.float32))
            elif what == "trunc":
                path = t.path("cu_in.npy")
                np.save(path, x)
                with open(path, "r+b") as f:
                    f.truncate(os.path.getsize(path) - 4)
            elif what.startswith("("):
                path = t.path("cu_in.npy")
                h = ("{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % what).encode()
                h += b" " * (117 - len(h)) + b"\n"
                with open(path, "wb") as f:
                    f.write(b"\x93NUMPY\x01\x00" + bytes([len(h), 0]) + h)
            rc, _, err, dt = E.run_prog([cu, "--input", path, "--output", out], timeout=30)
            t.check(rc == 1 and want in err and "GPU" not in err and dt < 10,
                    "the CUDA executable's --input is %s: rc=%s %.1fs %s" % (label, rc, dt, err.strip()[:200]))
        os.unlink(bigcu)
        rc, _, err, dt = E.run_prog([cu, "--weights", fifo], timeout=30)
        t.check(rc == 1 and "not a regular file (a FIFO)" in err and dt < 10,
                "the CUDA executable's --weights is a FIFO: rc=%s %.1fs %s" % (rc, dt, err.strip()[:200]))
        np.save(t.path("cu_ok.npy"), np.zeros((1, 3, 32, 36), np.float32))
        for label, args, want_rc, want in [
                ("--help", ["--help"], 0, None),
                ("--bench 0", ["--bench", "0"], 2, "--bench needs an integer in 1..10000000"),
                ("an unknown option", ["--frob"], 2, "unknown option '--frob'"),
                ("--output into a missing directory", ["--input", t.path("cu_ok.npy"), "--output",
                                                        "/nonexistent/y.npy"], 1, "cannot write /nonexistent/y.npy"),
                ("--kernel-outputs on a file", ["--kernel-outputs", t.path("cu_ok.npy")], 1, "not a directory"),
                ("no GPU here (or one)", ["--input", t.path("cu_ok.npy"), "--output", t.path("cu_y.npy")], None, None)]:
            rc, out_, err, dt = E.run_prog([cu] + args, timeout=60)
            if want_rc is None:  # this machine may have a GPU: then it runs
                ok = rc == 0 or (rc == 1 and "no usable NVIDIA GPU" in err and not os.path.exists(t.path("cu_y.npy"))
                                 and not [f for f in os.listdir(t.work) if f.startswith(".cu_y.npy")])
            elif want is None:
                ok = rc == 0 and "--kernel-outputs DIR" in out_ and "[1, 3, 32, 36]" in out_
            else:
                ok = rc == want_rc and want in err and "GPU" not in err
            t.check(ok and dt < 30, "the CUDA executable's host side, %s: rc=%s %s" % (label, rc, err.strip()[:200]))
t.finish()
