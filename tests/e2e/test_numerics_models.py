"""e2e: the published model sizes (tiny, small, base) against the float64
PyTorch reference, at reduced resolution, with random weights saved in the
training-checkpoint layout (optimizer state, a different model_ema, a
pickled foreign config class).  Relative L2 error of the logits <= 1e-4."""
import os

import e2e_common as E

t = E.Test("numerics_models")
cases = [
    # size, batch, H, W, optimizer params with state, model_ema
    ("tiny", 2, 64, 64, "all", None),       # None: a perturbed EMA copy
    ("small", 1, 48, 40, 12, None),
    ("base", 1, 40, 44, 4, "shared"),       # shared: same storages, saved once
]
for k, (size, B, H, W, opt, ema) in enumerate(cases):
    cfg, C, depths, ncls, mlp, inc = E.config_for(t, size)
    sd = E.sm.random_state_dict(C, depths, ncls, inc, mlp, seed=100 + k)
    w = t.path("%s_train.pth" % size)
    E.ck.save_training(w, sd, ema=ema, optimizer_params=opt)
    x = E.image((B, inc, H, W), seed=k)
    t.run_logits("%s (%s) training ckpt" % (size, cfg.split("/")[-1]), cfg, w, x, sd, depths)
    os.unlink(w)
t.finish()
