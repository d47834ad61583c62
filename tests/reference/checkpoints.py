"""Checkpoint writers in the public formats, for the mambac test-suite.

Takes: a state dict (OrderedDict of name -> torch.Tensor).
Produces: files on disk --
  save_model        torch.save({'model': sd})                  (release checkpoints)
  save_training     the training layout: model, optimizer, lr_scheduler, scaler,
                    epoch, max_accuracy, steps, model_ema, config (a pickled
                    fakeyacs.config.CfgNode, a class the loader cannot know)
  save_bare         torch.save(sd): the state dict at top level
  save_safetensors  .safetensors written by hand (u64 header length, JSON
                    header, raw little-endian data); no safetensors package
and state-dict transforms: cast (float16 / bfloat16 copies), noncontiguous
(the same values stored as strided / offset / shared-storage views),
perturbed (a different copy, e.g. for model_ema).
Owns: nothing.
"""
import json
import os
import struct
import sys
from collections import OrderedDict

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeyacs.config import CfgNode  # noqa: E402  (a foreign class in the pickle)


def cast(sd, dtype):
    """Floating tensors to `dtype` (torch.float16 / bfloat16 / float64); ints kept."""
    return OrderedDict((k, v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items())


def perturbed(sd, seed=1234, scale=0.5):
    """A copy with every floating tensor changed noticeably (a different model)."""
    g = torch.Generator().manual_seed(seed)
    out = OrderedDict()
    for k, v in sd.items():
        if v.is_floating_point():
            n = torch.randn(v.shape, generator=g, dtype=torch.float64)
            if k.endswith("running_var"):                 # must stay positive
                out[k] = (v.double() * torch.exp(scale * n)).to(v.dtype)
            else:
                out[k] = (v.double() * (1 + scale * n)).to(v.dtype)
        else:
            out[k] = v.clone()
    return out


def noncontiguous(sd):
    """Same values, stored as views torch.save keeps strided: 2-D and 4-D
    tensors transposed (stride order reversed), 1-D tensors every other
    element of a larger storage at an odd offset, and runs of small tensors
    packed into one shared storage at different offsets."""
    out = OrderedDict()
    shared = []
    for k, v in sd.items():
        if not v.is_floating_point() or v.dim() == 0:
            out[k] = v
        elif v.dim() == 2:
            out[k] = v.t().contiguous().t()               # column-major
        elif v.dim() == 4:
            out[k] = v.permute(3, 2, 1, 0).contiguous().permute(3, 2, 1, 0)
        elif v.dim() == 1 and len(shared) < 8:
            shared.append(k)
            out[k] = v
        elif v.dim() == 1:
            big = torch.zeros(2 * v.numel() + 3, dtype=v.dtype)
            big[3::2] = v
            out[k] = big[3::2]
        else:
            out[k] = v
    if shared:                                            # one storage, several views
        flat = torch.cat([sd[k].reshape(-1) for k in shared] + [torch.zeros(5, dtype=sd[shared[0]].dtype)])
        off = 0
        for k in shared:
            n = sd[k].numel()
            out[k] = flat[off:off + n]
            off += n
    for k, v in sd.items():
        assert torch.equal(out[k], v), k
    return out


def save_model(path, sd):
    torch.save({"model": sd}, path)


def save_bare(path, sd):
    torch.save(sd, path)


def _config():
    cfg = CfgNode({
        "BASE": [""],
        "DATA": {"BATCH_SIZE": 128, "DATA_PATH": "/data/imagenet", "IMG_SIZE": 224,
                 "INTERPOLATION": "bicubic", "PIN_MEMORY": True, "ZIP_MODE": False},
        "MODEL": {"TYPE": "spatial_mamba", "NAME": "test", "DROP_PATH_RATE": 0.2,
                  "SPATIALMAMBA": {"EMBED_DIM": 64, "DEPTHS": [2, 4, 8, 4], "D_STATE": 1,
                                   "MLP_RATIO": 4.0, "DT_INIT": "random"}},
        "TRAIN": {"EPOCHS": 300, "BASE_LR": 1e-3, "WARMUP_LR": 1e-6, "MIN_LR": 1e-5,
                  "CLIP_GRAD": 5.0, "OPTIMIZER": {"NAME": "adamw", "BETAS": (0.9, 0.999)},
                  "LR_SCHEDULER": {"NAME": "cosine", "DECAY_EPOCHS": 30}},
        "AMP_ENABLE": True, "OUTPUT": "output/Ünïcode ✓", "SEED": -1, "BIG": 1 << 70,
        "TAG": None, "LOCAL_RANK": 0, "NEG": -123456789012,
    })
    return cfg.freeze()


def save_training(path, sd, ema=None, optimizer_params="all", epoch=5):
    """The training-checkpoint layout.  `ema`: the model_ema state dict
    (None: a perturbed copy, so a loader that picks 'model_ema' instead of
    'model' gets visibly wrong numbers; "shared": the same tensors, which
    torch.save stores once).  `optimizer_params`: "all" or an int (how many
    parameters get AdamW state; keeps big checkpoints small)."""
    params = [k for k, v in sd.items() if v.is_floating_point()]
    n = len(params) if optimizer_params == "all" else min(int(optimizer_params), len(params))
    state = {}
    for i in range(n):
        v = sd[params[i]].float()
        state[i] = {"step": torch.tensor(float(100 * epoch)),
                    "exp_avg": v * 1e-3,
                    "exp_avg_sq": (v * v) * 1e-6}
    groups = [
        {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.05, "amsgrad": False,
         "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
         "fused": None, "initial_lr": 1e-3, "params": list(range(0, len(params), 2))},
        {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False,
         "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
         "fused": None, "initial_lr": 1e-3, "params": list(range(1, len(params), 2))},
    ]
    if ema is None:
        ema = perturbed(sd)
    elif ema == "shared":
        ema = sd
    ckpt = {
        "model": sd,
        "optimizer": {"state": state, "param_groups": groups},
        "lr_scheduler": {"t_initial": 300, "lr_min": 1e-5, "cycle_mul": 1.0, "cycle_decay": 0.1,
                         "cycle_limit": 1, "warmup_t": 20, "warmup_lr_init": 1e-6,
                         "warmup_prefixed": False, "t_in_epochs": False,
                         "base_values": [1e-3, 1e-3], "metric": None,
                         "update_groups": None, "noise_range_t": None},
        "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                   "growth_interval": 2000, "_growth_tracker": 17},
        "epoch": epoch,
        "max_accuracy": 81.2,
        "steps": 100,
        "model_ema": ema,
        "config": _config(),
    }
    torch.save(ckpt, path)


_ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
              torch.float64: "F64", torch.int64: "I64", torch.int32: "I32"}


def _raw_bytes(t):
    """Little-endian bytes of a tensor in C order (bfloat16 via int16 view)."""
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()


def safetensors_bytes(sd, metadata=None, align=8, order=None):
    """The bytes of a .safetensors file: u64 LE header size, JSON header
    (padded with spaces to `align`), then the tensors' data.  `order`:
    the order of the data blocks (default: reversed key order, to show that
    offsets, not key order, place the data)."""
    keys = list(sd.keys())
    data_order = order or keys[::-1]
    header, blobs, off = {}, [], 0
    for k in data_order:
        b = _raw_bytes(sd[k])
        header[k] = {"dtype": _ST_DTYPES[sd[k].dtype], "shape": list(sd[k].shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header = {k: header[k] for k in keys}           # JSON in key order, data in data_order
    if metadata is not None:
        header = dict({"__metadata__": metadata}, **header)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((-(8 + len(js))) % align)
    return struct.pack("<Q", len(js)) + js + b"".join(blobs)


def save_safetensors(path, sd, metadata=None):
    with open(path, "wb") as f:
        f.write(safetensors_bytes(sd, metadata if metadata is not None else {"format": "pt"}))


def read_safetensors(path):
    """Independent reader (for self-checks): name -> tensor."""
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8:8 + n])
    header.pop("__metadata__", None)
    inv = {v: k for k, v in _ST_DTYPES.items()}
    out = OrderedDict()
    for k, h in header.items():
        a, b = h["data_offsets"]
        raw = bytearray(buf[8 + n + a:8 + n + b])
        dt = inv[h["dtype"]]
        t = torch.frombuffer(raw, dtype=torch.int16 if dt == torch.bfloat16 else dt) if raw else \
            torch.empty(0, dtype=dt)
        if dt == torch.bfloat16:
            t = t.view(torch.bfloat16)
        out[k] = t.reshape(h["shape"])
    return out


if __name__ == "__main__":
    # Self-check: every writer round-trips through torch.load / read_safetensors.
    import tempfile
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import spatial_mamba as sm
    sd = sm.random_state_dict(16, [1, 1, 1, 1], 5, 3, 2.0, seed=2)
    with tempfile.TemporaryDirectory() as d:
        ok = True
        for name, fn, variant in (("m.pth", save_model, sd), ("t.pth", save_training, sd),
                                  ("b.pth", save_bare, sd),
                                  ("nc.pth", save_model, noncontiguous(sd)),
                                  ("h.pth", save_model, cast(sd, torch.float16)),
                                  ("bf.pth", save_model, cast(sd, torch.bfloat16))):
            p = os.path.join(d, name)
            fn(p, variant)
            obj = torch.load(p)
            got = obj if name == "b.pth" else obj["model"]
            same = all(torch.equal(got[k], variant[k]) for k in variant)
            print(name, os.path.getsize(p), "bytes, round-trip", same)
            ok &= same
        for dt in (torch.float32, torch.float16, torch.bfloat16):
            p = os.path.join(d, "w.safetensors")
            v = cast(sd, dt)
            save_safetensors(p, v)
            got = read_safetensors(p)
            same = list(got) == list(v) and all(torch.equal(got[k], v[k]) for k in v)
            print("safetensors", dt, "round-trip", same)
            ok &= same
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)
