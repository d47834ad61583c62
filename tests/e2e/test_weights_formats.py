"""e2e: the same model from every checkpoint layout and encoding mambac reads:
{'model': sd}, a bare state dict, {'state_dict': sd} with 'module.' key
prefixes, the training layout, float16 / bfloat16 tensors (.pth and
.safetensors), non-contiguous / offset / shared-storage views, .safetensors
written by hand with and without __metadata__.  Expected values are the
float64 reference on the weights as stored (after the dtype's rounding)."""
import os
from collections import OrderedDict

import e2e_common as E
import torch

t = E.Test("weights_formats")
depths = [1, 2, 1, 1]
cfg = E.write_config(t.path("m.yaml"), 32, depths, num_classes=17, mlp_ratio=2.5)
sd = E.sm.random_state_dict(32, depths, 17, 3, 2.5, seed=11)
x = E.image((2, 3, 35, 42), seed=5)


def case(label, fname, writer, stored_sd, tol=E.TOL):
    p = t.path(fname)
    writer(p, stored_sd)
    t.run_logits(label, cfg, p, x, {k: v for k, v in stored_sd.items()}, depths, tol=tol)
    os.unlink(p)


case("pth {'model': sd}", "a.pth", E.ck.save_model, sd)
case("pth bare state dict", "b.pth", E.ck.save_bare, sd)
case("pth training layout", "c.pth", E.ck.save_training, sd)


def save_module_prefix(p, s):
    torch.save({"state_dict": OrderedDict(("module." + k, v) for k, v in s.items()),
                "epoch": 3}, p)


case("pth {'state_dict': sd} with module. prefixes", "d.pth", save_module_prefix, sd)
case("pth non-contiguous / offset / shared-storage views", "e.pth", E.ck.save_model,
     E.ck.noncontiguous(sd))
case("pth float16", "f.pth", E.ck.save_model, E.ck.cast(sd, torch.float16))
case("pth bfloat16", "g.pth", E.ck.save_model, E.ck.cast(sd, torch.bfloat16))
case("pth float16 training layout, non-contiguous", "h.pth", E.ck.save_training,
     E.ck.noncontiguous(E.ck.cast(sd, torch.float16)))
case("safetensors float32", "i.safetensors", E.ck.save_safetensors, sd)
case("safetensors float16", "j.safetensors", E.ck.save_safetensors, E.ck.cast(sd, torch.float16))
case("safetensors bfloat16", "k.safetensors", E.ck.save_safetensors, E.ck.cast(sd, torch.bfloat16))


def st_nometa(p, s):
    with open(p, "wb") as f:
        f.write(E.ck.safetensors_bytes(s, metadata=None, order=list(s.keys())))


case("safetensors without __metadata__, data in key order", "l.safetensors", st_nometa, sd)
case("safetensors float64", "m.safetensors", E.ck.save_safetensors, E.ck.cast(sd, torch.float64))

# The loader must use 'model', not 'model_ema': a checkpoint whose EMA is a
# different model must give the 'model' logits (and not the EMA's).
p = t.path("n.pth")
ema = E.ck.perturbed(sd, seed=99)
E.ck.save_training(p, sd, ema=ema)
e1 = t.run_logits("training layout picks 'model' over 'model_ema'", cfg, p, x, sd, depths)
with torch.no_grad():
    a = E.sm.forward(torch.from_numpy(x).double(), sd, depths, dtype=torch.float64)
    b = E.sm.forward(torch.from_numpy(x).double(), ema, depths, dtype=torch.float64)
t.check(E.sm.rel_l2(b, a) > 100 * E.TOL,
        "model_ema differs from model enough to tell them apart (rel %.3g)" % E.sm.rel_l2(b, a))
t.finish()
