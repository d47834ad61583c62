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
  save_mmengine     the layout mmseg/mmdet training (mmengine) writes: meta
                    (with dataset_meta classes / palette when given),
                    state_dict (backbone.*, decode_head.*, maybe
                    auxiliary_head.*), message_hub (a pickled
                    fakemmengine.message_hub.MessageHub, a class the loader
                    cannot know), optimizer, param_schedulers
and state-dict transforms: cast (float16 / bfloat16 copies), noncontiguous
(the same values stored as strided / offset / shared-storage views),
perturbed (a different copy, e.g. for model_ema), segmentor_state_dict (the
graph's names -> an mmseg segmentor's, optionally with auxiliary_head.*).
Reading (for the reference CLI and self-checks): load_checkpoint (any of
the above; classes outside torch / numpy / the standard containers become
inert stand-ins, nothing of theirs is imported), model_state_dict (the
model's weights in the graph's names), read_safetensors.
Owns: nothing.
"""
import json
import os
import pickle
import struct
import sys
import types
from collections import OrderedDict

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeyacs.config import CfgNode  # noqa: E402  (a foreign class in the pickle)
from fakemmengine.message_hub import MessageHub  # noqa: E402  (another)


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


def _adamw_state(sd, optimizer_params, step, lr=1e-3):
    """An AdamW state_dict for sd's floating tensors: state for the first
    `optimizer_params` ("all" or an int) of them, two param groups."""
    params = [k for k, v in sd.items() if v.is_floating_point()]
    n = len(params) if optimizer_params == "all" else min(int(optimizer_params), len(params))
    state = {}
    for i in range(n):
        v = sd[params[i]].float()
        state[i] = {"step": torch.tensor(float(step)),
                    "exp_avg": v * 1e-3,
                    "exp_avg_sq": (v * v) * 1e-6}
    groups = [
        {"lr": lr, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.05, "amsgrad": False,
         "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
         "fused": None, "initial_lr": lr, "params": list(range(0, len(params), 2))},
        {"lr": lr, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False,
         "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
         "fused": None, "initial_lr": lr, "params": list(range(1, len(params), 2))},
    ]
    return {"state": state, "param_groups": groups}


def save_training(path, sd, ema=None, optimizer_params="all", epoch=5):
    """The training-checkpoint layout.  `ema`: the model_ema state dict
    (None: a perturbed copy, so a loader that picks 'model_ema' instead of
    'model' gets visibly wrong numbers; "shared": the same tensors, which
    torch.save stores once).  `optimizer_params`: "all" or an int (how many
    parameters get AdamW state; keeps big checkpoints small)."""
    if ema is None:
        ema = perturbed(sd)
    elif ema == "shared":
        ema = sd
    ckpt = {
        "model": sd,
        "optimizer": _adamw_state(sd, optimizer_params, 100 * epoch),
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


# ---------------------------------------------------------------- mmengine (mmseg / mmdet)

def segmentor_state_dict(sd, head=None, auxiliary=False, seed=0):
    """An mmseg segmentor's state dict from the graph's names: every key of
    sd (a backbone: patch_embed.*, layers.*, outnorm{i}.*) gets the prefix
    'backbone.', except decode_head.* ones, kept as they are; then head's
    keys (decode_head.*, if given).  auxiliary=True adds an FCNHead's
    training-only auxiliary_head.* weights (on stage 2, random, `seed`),
    which a loader must skip."""
    out = OrderedDict()
    for k, v in sd.items():
        out[k if k.startswith("decode_head.") else "backbone." + k] = v
    out.update(head or {})
    if auxiliary:
        g = torch.Generator().manual_seed(int(seed))
        ref = out["backbone.patch_embed.conv1.conv.weight"]
        c2 = ref.shape[0] * 2 * 4
        ncls = out["decode_head.conv_seg.weight"].shape[0] if "decode_head.conv_seg.weight" in out \
            else 150
        ch = 16
        for k, shape in (("convs.0.conv.weight", (ch, c2, 3, 3)), ("convs.0.bn.weight", (ch,)),
                         ("convs.0.bn.bias", (ch,)), ("convs.0.bn.running_mean", (ch,)),
                         ("convs.0.bn.running_var", (ch,)), ("conv_seg.weight", (ncls, ch, 1, 1)),
                         ("conv_seg.bias", (ncls,))):
            t = torch.randn(*shape, generator=g, dtype=torch.float32)
            out["auxiliary_head." + k] = (t.abs() + 0.5 if k.endswith("var") else t).to(ref.dtype)
        out["auxiliary_head.convs.0.bn.num_batches_tracked"] = torch.tensor(160000)
    return out


def save_mmengine(path, sd, classes=None, palette=None, optimizer_params=4, iteration=160000):
    """mmengine's checkpoint layout, as mmseg / mmdet training writes it.
    `sd`: the segmentor's (or detector's) state dict (segmentor_state_dict).
    `classes` (names) and `palette` ([[r, g, b], ...]): meta.dataset_meta,
    present only when one is given.  `optimizer_params`: as in
    save_training."""
    meta = {"mmengine_version": "0.10.4", "epoch": 0, "iter": iteration, "seed": 0,
            "experiment_name": "upernet_spatialmamba_20240101_000000",
            "time": "20240101_000000",
            "cfg": "norm_cfg = dict(type='SyncBN', requires_grad=True)\n"
                   "model = dict(type='EncoderDecoder', decode_head=dict(type='UPerHead'))\n"}
    if classes is not None or palette is not None:
        meta["dataset_meta"] = {}
        if classes is not None:
            meta["dataset_meta"]["classes"] = tuple(classes)
        if palette is not None:
            meta["dataset_meta"]["palette"] = [list(c) for c in palette]
    hub = MessageHub("upernet_spatialmamba_20240101_000000",
                     {"train/loss": [0.9, 0.8, 0.71], "train/lr": [6e-5, 5.9e-5, 5.8e-5],
                      "train/time": [0.5, 0.49, 0.51]},
                     {"iter": iteration, "max_iters": iteration, "epoch": 0,
                      "dataset_meta": meta.get("dataset_meta"), "seed": 0})
    ckpt = {
        "meta": meta,
        "state_dict": sd,
        "message_hub": hub,
        "optimizer": _adamw_state(sd, optimizer_params, iteration, lr=6e-5),
        "param_schedulers": [
            {"start_factor": 1e-6, "end_factor": 1.0, "total_iters": 1500, "begin": 0,
             "end": 1500, "by_epoch": False, "last_step": 1500, "verbose": False,
             "_global_step": 1500, "base_values": [6e-5, 6e-5], "_last_value": [6e-5, 6e-5]},
            {"eta_min": 0.0, "power": 1.0, "total_iters": 158500, "begin": 1500,
             "end": iteration, "by_epoch": False, "last_step": iteration, "verbose": False,
             "_global_step": iteration, "base_values": [6e-5, 6e-5], "_last_value": [0.0, 0.0]},
        ],
    }
    torch.save(ckpt, path)


# ---------------------------------------------------------------- reading

class Foreign:
    """What a pickled class outside torch / numpy / the standard containers
    becomes on reading: its arguments, state, items kept; nothing run."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, k, v):
        self.__dict__.setdefault("items", {})[k] = v

    def append(self, v):
        self.__dict__.setdefault("list", []).append(v)

    def extend(self, vs):
        self.__dict__.setdefault("list", []).extend(vs)


class _Unpickler(pickle.Unpickler):
    KNOWN = ("torch", "collections", "builtins", "copyreg", "_codecs", "numpy")

    def find_class(self, module, name):
        if module.split(".")[0] in self.KNOWN:
            return super().find_class(module, name)
        return type(name, (Foreign,), {"__module__": "foreign." + module})


_PICKLE = types.SimpleNamespace(__name__="pickle", Unpickler=_Unpickler,
                                load=lambda f, **kw: _Unpickler(f, **kw).load())


def load_checkpoint(path):
    """A checkpoint of any layout above, on the CPU; safetensors too.
    Foreign classes (CfgNode, MessageHub, ...) become Foreign stand-ins."""
    if str(path).endswith(".safetensors"):
        return read_safetensors(path)
    ser = torch.serialization
    # torch 1.13's torch.load ignores pickle_module unless weights_only is
    # set (and then refuses it): its zip reader is called directly.
    if hasattr(ser, "_open_zipfile_reader") and hasattr(ser, "_load"):
        with open(path, "rb") as f:
            zipped = ser._is_zipfile(f)
        if zipped:
            with ser._open_zipfile_reader(str(path)) as z:
                return ser._load(z, "cpu", _PICKLE, encoding="utf-8")
    return torch.load(path, map_location="cpu", pickle_module=_PICKLE)


def model_state_dict(obj):
    """The model's weights of a loaded checkpoint in the graph's names, and
    the keys skipped: mmengine ('state_dict': 'backbone.' stripped,
    decode_head.* kept, auxiliary_head / neck / rpn_head / roi_head skipped),
    classification ('model') or a bare state dict."""
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and "model" in obj:
        obj = obj["model"]
    out, skipped = OrderedDict(), []
    for k, v in obj.items():
        if k.split(".")[0] in ("auxiliary_head", "neck", "rpn_head", "roi_head"):
            skipped.append(k)
        else:
            out[k[len("backbone."):] if k.startswith("backbone.") else k] = v
    return out, skipped


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


def _selfcheck_mmengine(d, sm):
    """save_mmengine round-trips through load_checkpoint (foreign classes as
    stand-ins, not the classes written) and model_state_dict (graph names
    back, auxiliary_head skipped); a training checkpoint with its CfgNode
    loads too."""
    hd = {"channels": 8, "pool_scales": [1, 2], "num_classes": 3}
    sd = sm.random_state_dict(16, [1, 1, 1, 1], seed=3, decode_head=hd)
    p, pt = os.path.join(d, "seg.pth"), os.path.join(d, "tr.pth")
    save_mmengine(p, segmentor_state_dict(sd, auxiliary=True), classes=("sky", "road", "tree"),
                  palette=[[0, 0, 255], [1, 2, 3], [9, 9, 9]])
    save_training(pt, sd, optimizer_params=2)
    o, t = load_checkpoint(p), load_checkpoint(pt)
    got, skipped = model_state_dict(o)
    hub = o["message_hub"]
    ok = (isinstance(hub, Foreign) and not isinstance(hub, MessageHub)
          and isinstance(t["config"], Foreign)
          and isinstance(hub.state["log_scalars"]["train/loss"], Foreign)
          and len(skipped) == 8 and all(k.startswith("auxiliary_head.") for k in skipped)
          and o["meta"]["dataset_meta"] == {"classes": ("sky", "road", "tree"),
                                            "palette": [[0, 0, 255], [1, 2, 3], [9, 9, 9]]}
          and list(got) == list(sd) and all(torch.equal(got[k], sd[k]) for k in sd)
          and all(k.startswith(("backbone.", "decode_head.", "auxiliary_head."))
                  for k in o["state_dict"]))
    print("mmengine", os.path.getsize(p), "bytes, round-trip", ok)
    return ok


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
        ok &= _selfcheck_mmengine(d, sm)
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)
