#!/usr/bin/env python3
"""Writes the small checkpoint/tensor fixtures used by test_weights.c and
test_npy.c.  Run from this directory with Debian's python3 (torch + numpy):

    python3 make_fixtures.py

For every checkpoint X it also writes X.expect.npy (float64, all expected
tensors flattened and concatenated) and X.expect.txt (one line per tensor:
key dtype rank dims... offset numel), produced by numpy/torch, so the C
tests compare the reader against an independent source.
"""
import collections
import io
import json
import os
import struct
import sys
import zipfile
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakecfg  # noqa: E402

torch.manual_seed(0)
HERE = os.path.dirname(os.path.abspath(__file__))


def out(name):
    return os.path.join(HERE, name)


def write_expect(name, tensors):
    """tensors: list of (key, dtype-name-as-stored, torch tensor)."""
    flat, lines, off = [], [], 0
    for k, dt, t in tensors:
        a = t.detach().to(torch.float64).contiguous().numpy().reshape(-1)
        lines.append("%s %s %d %s %d %d" % (k, dt, t.dim(), " ".join(str(d) for d in t.shape),
                                            off, a.size))
        flat.append(a)
        off += a.size
    np.save(out(name + ".expect.npy"), np.concatenate(flat) if flat else np.zeros(0))
    with open(out(name + ".expect.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.ln_1 = torch.nn.LayerNorm(4)
        self.head = torch.nn.Linear(4, 3)
        self.A_logs = torch.nn.Parameter(torch.randn(4, 1))


# 1. training layout: model + optimizer + scheduler + scaler + foreign config
net = Net()
with torch.no_grad():
    net.bn.running_mean.uniform_(-1, 1)
    net.bn.running_var.uniform_(0.5, 2)
    net.bn.num_batches_tracked.fill_(7)
opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
loss = net.head(net.ln_1(net.bn(net.conv(torch.randn(2, 3, 5, 5))).mean((2, 3)))).sum() + net.A_logs.sum()
loss.backward()
opt.step()
sched = torch.optim.lr_scheduler.StepLR(opt, 10)
cfg = fakecfg.CfgNode({"MODEL": fakecfg.CfgNode({"TYPE": "spatial_mamba", "DEPTHS": [1, 2]}),
                       "LR": 1e-3})
sd = net.state_dict()
ema = collections.OrderedDict((k, v.clone() * 0) for k, v in sd.items())
ckpt = {"model": sd, "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict(),
        "scaler": {"scale": 65536.0, "growth_factor": 2.0, "_growth_tracker": 3},
        "epoch": 5, "max_accuracy": 81.25, "steps": 2 ** 40, "model_ema": ema, "config": cfg,
        "sched_obj": fakecfg.Scheduler(), "flags": {1, 2, 3}, "blob": b"\x00\x01",
        "big": 2 ** 100, "neg": -5}
torch.save(ckpt, out("train.pth"))
write_expect("train", [(k, "i64" if v.dtype == torch.int64 else "f32", v) for k, v in sd.items()])

# 2. views of one storage: transposed, sliced with an offset, scalar, empty
base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.5 - 3
views = collections.OrderedDict()
views["base"] = base
views["t"] = base.t()
views["s"] = base[1:3, 2:5]
views["col"] = base[:, 4]
views["step"] = base[::2, ::3]
views["scalar"] = torch.tensor(2.5)
views["empty"] = torch.zeros(0, 3)
views["idx"] = torch.tensor([3, -1, 1 << 40], dtype=torch.int64)
torch.save({"state_dict": views, "epoch": 1}, out("views.pth"))
write_expect("views", [(k, "i64" if v.dtype == torch.int64 else "f32", v) for k, v in views.items()])

# 3. dtypes, DDP "module." keys, a Parameter, at the top level
dd = collections.OrderedDict()
dd["module.h"] = torch.tensor([1.0, -2.5, 65504.0, 6.1e-5, 1e-7, 0.0, -0.0], dtype=torch.float16)
dd["module.b"] = torch.tensor([[1.0, -3.140625], [1e30, -1e-30]], dtype=torch.bfloat16)
dd["module.d"] = torch.tensor([1.0 / 3, -2.0, 1e10], dtype=torch.float64)
dd["module.i"] = torch.tensor([1, -2, 2147483647], dtype=torch.int32)
dd["module.p"] = torch.nn.Parameter(torch.randn(2, 2))
dd["module.mask"] = torch.tensor([True, False])  # bool: skipped by the reader
dd["module.sub"] = (torch.arange(6.0).reshape(2, 3) - 2).as_subclass(fakecfg.MyTensor)
torch.save(dd, out("dtypes.pth"))
exp = [(k[7:], {torch.int64: "i64", torch.int32: "i32"}.get(v.dtype, "f32"), v)
       for k, v in dd.items() if v.dtype != torch.bool]
write_expect("dtypes", exp)

# 4. the same archive rewritten with zip64 records, and compressed
def entries(path):
    z = zipfile.ZipFile(path)
    return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def write_zip64(path, ents):
    """Stored entries; every size/offset in the central directory is
    0xFFFFFFFF with the real values in zip64 extra fields; zip64 end record
    and locator.  64-byte aligned data like torch."""
    buf = io.BytesIO()
    cd = []
    for name, data in ents:
        off = buf.tell()
        nb = name.encode()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        pad = (64 - (off + 30 + len(nb) + 4) % 64) % 64
        extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        buf.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, len(data), len(data),
                              len(nb), len(extra)) + nb + extra)
        buf.write(data)
        z64 = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        cd.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF,
                              0xFFFFFFFF, len(nb), len(z64), 0, 0, 0, 0, 0xFFFFFFFF) + nb + z64)
    cdoff = buf.tell()
    for c in cd:
        buf.write(c)
    cdsize = buf.tell() - cdoff
    e64 = buf.tell()
    buf.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(ents), len(ents), cdsize, cdoff))
    buf.write(struct.pack("<IIQI", 0x07064B50, 0, e64, 1))
    buf.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
    with open(path, "wb") as f:
        f.write(buf.getvalue())


write_zip64(out("views_zip64.pth"), entries(out("views.pth")))
with zipfile.ZipFile(out("views_deflate.pth"), "w", zipfile.ZIP_DEFLATED) as z:
    for n, d in entries(out("views.pth")):
        z.writestr(zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0)), d, zipfile.ZIP_DEFLATED)

# 5. safetensors written by hand
st_t = collections.OrderedDict()
st_t["layers.0.w"] = torch.randn(3, 4)
st_t["h16"] = torch.tensor([0.5, -1.0, 3.0], dtype=torch.float16)
st_t["b16"] = torch.tensor([[1.5, -2.0]], dtype=torch.bfloat16)
st_t["f64"] = torch.tensor([0.1, 1e-3], dtype=torch.float64)
st_t["i64"] = torch.tensor([5, -7], dtype=torch.int64)
st_t["i32"] = torch.tensor([[9], [-9]], dtype=torch.int32)
st_t["scalar"] = torch.tensor(4.0)
names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
         torch.int64: "I64", torch.int32: "I32"}
hdr, blob = {"__metadata__": {"format": "pt"}}, b""
for k in ["i32", "layers.0.w", "f64", "h16", "b16", "i64", "scalar"]:  # data order differs from key order
    t = st_t[k]
    raw = t.contiguous().view(torch.uint8).numpy().tobytes() if t.dim() else \
        t.reshape(1).view(torch.uint8).numpy().tobytes()
    hdr[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [len(blob), len(blob) + len(raw)]}
    blob += raw
h = json.dumps(hdr).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(out("small.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + blob)
write_expect("small", [(k, {torch.int64: "i64", torch.int32: "i32"}.get(v.dtype, "f32"), v)
                       for k, v in st_t.items()])

# 6. .npy files written by numpy
a = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5) / 4
np.save(out("a_f4.npy"), a)
np.save(out("a_f8.npy"), a.astype(np.float64))
np.save(out("a_i8.npy"), np.array([[1, -2], [1 << 40, 3]], dtype=np.int64))
np.save(out("a_i4.npy"), np.array([7, -8, 9], dtype=np.int32))
np.save(out("a_u1.npy"), np.array([0, 255, 7], dtype=np.uint8))
np.save(out("a_be.npy"), a.astype(">f4"))
np.save(out("a_fortran.npy"), np.asfortranarray(a))
np.save(out("a_scalar.npy"), np.float32(1.25))
np.save(out("a_empty.npy"), np.zeros((0, 5), dtype=np.float32))
np.save(out("a_f2.npy"), a.astype(np.float16))
with open(out("a_v2.npy"), "wb") as f:
    np.lib.format.write_array(f, a, version=(2, 0))
print("fixtures written")
