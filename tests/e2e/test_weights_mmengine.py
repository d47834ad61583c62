"""e2e: checkpoints in mmengine's layout (what mmseg/mmdet training writes):
{'meta': {..., 'dataset_meta': {'classes', 'palette'}}, 'state_dict': {...},
'message_hub': <a foreign class>, 'optimizer': {...}, 'param_schedulers': [...]}.
Keys 'backbone.*' are read without the prefix, 'decode_head.*' as they are,
'auxiliary_head.*' / 'neck.*' / 'rpn_head.*' / 'roi_head.*' are skipped with
one note.  The classifier run from such a checkpoint, and a backbone
(MODEL.BACKBONE) run from a detection one, must give exactly the output of
{'model': sd}; a missing key is named; a classification checkpoint for a
backbone, a segmentation one for a classifier and a bad palette are clear
user errors.

The writer is local (save_mmengine below): the message hub is an object of
classes registered here under mmengine's module names, which the loader
can never import."""
import sys
import types
from collections import OrderedDict

import e2e_common as E
import numpy as np
import torch

t = E.Test("weights_mmengine")
depths = [1, 2, 1, 1]
cfg = E.write_config(t.path("m.yaml"), 32, depths, num_classes=17, mlp_ratio=2.5)
sd = E.sm.random_state_dict(32, depths, 17, 3, 2.5, seed=21)
x = E.image((1, 3, 33, 40), seed=4)
xin = t.path("x.npy")
np.save(xin, x)


# ------------------------------------------------------------ the writer

def _foreign(module, name):
    """A class pickled as module.name, a module that exists only here."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):           # the package and its parents
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    mod = sys.modules[module]
    cls = type(name, (), {"__module__": module})
    setattr(mod, name, cls)
    return cls


HistoryBuffer = _foreign("mmengine.logging.history_buffer", "HistoryBuffer")
MessageHub = _foreign("mmengine.logging.message_hub", "MessageHub")

CLASSES = ("wall", "building", "sky", "floor", "tree")
PALETTE = [[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50], [4, 200, 3]]


def message_hub():
    hub = MessageHub()
    buf = HistoryBuffer()
    buf._log_history = np.array([0.5, 0.25, 0.125])
    buf._count_history = np.array([1, 1, 1])
    buf.max_length = 1000000
    hub.instance_name = "mmengine"
    hub._log_scalars = {"train/loss": buf, "train/lr": buf}
    hub._runtime_info = {"epoch": 0, "iter": 160000, "max_iters": 160000, "dataset_meta": {"classes": CLASSES}}
    hub._resumed_keys = {"epoch": True, "iter": True}
    return hub


def save_mmengine(path, state_dict, classes=CLASSES, palette=PALETTE):
    params = [k for k, v in state_dict.items() if v.is_floating_point()][:4]
    meta = {"mmengine_version": "0.10.3", "seed": 0, "experiment_name": "upernet_test",
            "time": "20240101_000000", "epoch": 0, "iter": 160000,
            "cfg": "model = dict(type='EncoderDecoder')\n"}
    if classes is not None or palette is not None:
        meta["dataset_meta"] = {"classes": classes, "palette": palette}
    ckpt = {
        "meta": meta,
        "state_dict": state_dict,
        "message_hub": message_hub(),
        "optimizer": {"state": {i: {"step": torch.tensor(160000.0),
                                    "exp_avg": state_dict[k].float() * 1e-3} for i, k in enumerate(params)},
                      "param_groups": [{"lr": 6e-5, "betas": (0.9, 0.999), "weight_decay": 0.01,
                                        "params": list(range(len(params)))}]},
        "param_schedulers": [{"begin": 0, "end": 1500, "last_step": 160000, "by_epoch": False},
                             {"eta_min": 0.0, "power": 1.0, "begin": 1500, "end": 160000}],
    }
    torch.save(ckpt, path)


def seg_state_dict(classifier_sd, drop=()):
    """The classifier's keys as a segmentor's backbone, plus a decode head,
    an auxiliary head and a neck."""
    g = torch.Generator().manual_seed(5)
    out = OrderedDict()
    for k, v in classifier_sd.items():
        if k not in drop:
            out["backbone." + k] = v
    out["decode_head.conv_seg.weight"] = torch.randn(5, 8, 1, 1, generator=g)
    out["decode_head.conv_seg.bias"] = torch.randn(5, generator=g)
    out["auxiliary_head.conv_seg.weight"] = torch.randn(5, 16, 1, 1, generator=g)
    out["auxiliary_head.conv_seg.bias"] = torch.randn(5, generator=g)
    out["auxiliary_head.convs.0.bn.num_batches_tracked"] = torch.tensor(7)
    out["neck.lateral.weight"] = torch.randn(4, 4, generator=g)
    return out


# ------------------------------------------------------------ the runs

def run(weights, label):
    y = t.path("y.npy")
    rc, out, err, dt = t.run(["run", cfg, "--weights", weights, "--input", xin, "--output", y,
                              "--backend", "ref", "--threads", "2"])
    ok = rc == 0
    t.check(ok, "%s: mambac run rc=%s (%.1fs)%s" % (label, rc, dt, "" if ok else ": " + err.strip()[:600]))
    return (np.load(y) if ok else None), err


base = t.path("model.pth")
E.ck.save_model(base, sd)
y_model, _ = run(base, "{'model': sd}")
t.run_logits("{'model': sd} matches the float64 reference", cfg, base, x, sd, depths)

seg = t.path("seg.pth")
save_mmengine(seg, seg_state_dict(sd))
y_seg, err = run(seg, "mmengine layout, backbone.* + decode_head.* + auxiliary_head.* + neck.*")
if y_model is not None and y_seg is not None:
    t.check(y_seg.dtype == y_model.dtype and np.array_equal(y_seg, y_model),
            "mmengine layout gives exactly the output of {'model': sd} (max |diff| %.3g)"
            % float(np.max(np.abs(y_seg.astype(np.float64) - y_model))))
notes = [ln for ln in err.splitlines() if "skipped" in ln]
t.check(notes == ["mambac: note: %s: skipped 4 tensors of auxiliary_head, neck (not part of this model)" % seg],
        "one note for the skipped parts: %r" % notes)
unused = [ln for ln in err.splitlines() if "not used by the model" in ln]
t.check(len(unused) == 1 and "decode_head.conv_seg.weight" in unused[0] and "auxiliary_head" not in unused[0]
        and "backbone." not in unused[0],
        "decode_head.* kept under its name (unused by a classifier, said so): %r" % unused)

# Without dataset_meta, and with a bare state dict of prefixed keys.
p = t.path("nometa.pth")
save_mmengine(p, seg_state_dict(sd), classes=None, palette=None)
y, _ = run(p, "mmengine layout without dataset_meta")
t.check(y is not None and y_model is not None and np.array_equal(y, y_model), "same output without dataset_meta")
p = t.path("bare.pth")
torch.save(seg_state_dict(sd), p)
y, _ = run(p, "bare state dict with backbone.* keys")
t.check(y is not None and y_model is not None and np.array_equal(y, y_model), "same output from a bare state dict")


def run_args(weights):
    return ["run", cfg, "--weights", weights, "--input", xin, "--output", t.path("bad.npy"),
            "--backend", "ref", "--threads", "2"]


# A missing key is named (without the prefix, as the model names it).
miss = "layers.1.blocks.0.ln_1.weight"
assert miss in sd
p = t.path("missing.pth")
save_mmengine(p, seg_state_dict(sd, drop=(miss,)))
t.expect_user_error("mmengine checkpoint with a missing tensor", run_args(p), must_contain=["missing: " + miss])

# A segmentation checkpoint (no classifier norm/head) for a classifier config.
p = t.path("segonly.pth")
save_mmengine(p, seg_state_dict(sd, drop=("norm.weight", "norm.bias", "head.weight", "head.bias")))
t.expect_user_error("segmentation checkpoint for a classifier", run_args(p),
                    must_contain=["no norm.weight, norm.bias, head.weight, head.bias",
                                  "detection/segmentation checkpoint", "MODEL.BACKBONE"])

# A classification checkpoint for a backbone config: no outnorm{i}, said so.
bb = E.write_config(t.path("bb.yaml"), 32, depths, mlp_ratio=2.5,
                    extra_model="  BACKBONE:\n    OUT_INDICES: [0, 1, 2, 3]")
t.expect_user_error("classification checkpoint for a backbone config",
                    ["run", bb, "--weights", base, "--input", xin, "--output", t.path("bad.npz"),
                     "--backend", "ref", "--threads", "2"],
                    must_contain=["no outnorm0.weight, outnorm0.bias, outnorm1.weight",
                                  "outnorm3.bias: this is a classification checkpoint",
                                  "a backbone (MODEL.BACKBONE) needs the outnorm{i} weights"])

# A backbone from a detection checkpoint (backbone.* with outnorm{i}, neck,
# rpn_head, roi_head) gives the features of {'model': the same tensors}.
g = torch.Generator().manual_seed(9)
bsd = OrderedDict((k, v) for k, v in sd.items() if not k.startswith(("norm.", "head.")))
for i in range(4):
    bsd["outnorm%d.weight" % i] = 1 + 0.1 * torch.randn(32 << i, generator=g)
    bsd["outnorm%d.bias" % i] = 0.1 * torch.randn(32 << i, generator=g)
det = OrderedDict(("backbone." + k, v) for k, v in bsd.items())
det["neck.fpn_convs.0.conv.weight"] = torch.randn(4, 4, 3, 3, generator=g)
det["rpn_head.rpn_conv.weight"] = torch.randn(4, 4, 3, 3, generator=g)
det["roi_head.bbox_head.fc_cls.weight"] = torch.randn(81, 4, generator=g)
feats = {}
for label, path, write in (("{'model': backbone sd}", "bbm.pth", lambda p: E.ck.save_model(p, bsd)),
                           ("mmengine detection checkpoint", "det.pth", lambda p: save_mmengine(p, det))):
    write(t.path(path))
    y = t.path("f.npz")
    rc, out, err, dt = t.run(["run", bb, "--weights", t.path(path), "--input", xin, "--output", y,
                              "--backend", "ref", "--threads", "2"])
    t.check(rc == 0, "backbone from %s: rc=%s%s" % (label, rc, "" if rc == 0 else ": " + err.strip()[:600]))
    if rc == 0:
        with np.load(y) as z:
            feats[label] = {k: z[k] for k in z.files}
    if path == "det.pth":
        t.check("skipped 3 tensors of neck, rpn_head, roi_head (not part of this model)" in err
                and "not used by the model" not in err, "detection parts skipped with one note: %r" % err.strip())
if len(feats) == 2:
    a, b = feats.values()
    t.check(sorted(a) == sorted(b) and len(a) == 4 and all(np.array_equal(a[k], b[k]) for k in a),
            "the detection checkpoint's backbone gives exactly the features of {'model': sd} (%s)" % sorted(a))

# dataset_meta that does not hold together.
for label, classes, palette, want in (
        ("a palette shorter than the classes", CLASSES, PALETTE[:4], "palette has 4 colours for 5 classes"),
        ("a colour component of 256", CLASSES, PALETTE[:4] + [[1, 256, 3]], "palette[4] is not [r, g, b]"),
        ("a colour of 2 components", CLASSES, [[1, 2]] + PALETTE[1:], "palette[0] is not [r, g, b]"),
        ("a class that is not a string", CLASSES[:4] + (7,), PALETTE, "classes[4] is not a class name"),
        ("a palette without classes", None, PALETTE, "a palette but no classes")):
    p = t.path("meta.pth")
    save_mmengine(p, seg_state_dict(sd), classes=classes, palette=palette)
    t.expect_user_error("dataset_meta with " + label, run_args(p), must_contain=[p, "meta.dataset_meta", want])
t.finish()
