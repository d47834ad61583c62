"""e2e: non-published widths and depths at odd, non-square sizes and batch
sizes 1-3 against the float64 PyTorch reference (borders dominate at these
sizes, so zero- vs replicate-padding mistakes show).  Also 3 stages and a
1-channel input, DATA.IMG_SIZE that differs from the input, and running with
4 threads (threads must not change results beyond rounding)."""
import e2e_common as E

t = E.Test("numerics_custom")

# EMBED_DIM 32, DEPTHS [1,2,1,1], 17 classes, MLP_RATIO 2.5
cfg = E.write_config(t.path("c32.yaml"), 32, [1, 2, 1, 1], num_classes=17, mlp_ratio=2.5,
                     img_size=96)
sd = E.sm.random_state_dict(32, [1, 2, 1, 1], 17, 3, 2.5, seed=7)
w = t.path("c32.pth")
E.ck.save_training(w, sd)
for i, (B, H, W) in enumerate([(1, 33, 47), (2, 45, 32), (3, 64, 37), (1, 32, 32), (2, 71, 50)]):
    t.run_logits("C32 d[1,2,1,1] mlp2.5", cfg, w, E.image((B, 3, H, W), 10 + i), sd, [1, 2, 1, 1])
t.run_logits("C32 d[1,2,1,1] mlp2.5 --threads 1", cfg, w, E.image((2, 3, 40, 44), 20), sd,
             [1, 2, 1, 1], extra=["--threads", "1"])

# EMBED_DIM 48 (dt rank 3), MLP_RATIO 3.0, 10 classes
cfg = E.write_config(t.path("c48.yaml"), 48, [2, 1, 1, 1], num_classes=10, mlp_ratio=3.0)
sd = E.sm.random_state_dict(48, [2, 1, 1, 1], 10, 3, 3.0, seed=8)
w = t.path("c48.pth")
E.ck.save_model(w, sd)
for i, (B, H, W) in enumerate([(1, 47, 33), (3, 36, 52)]):
    t.run_logits("C48 d[2,1,1,1] mlp3.0", cfg, w, E.image((B, 3, H, W), 30 + i), sd, [2, 1, 1, 1])

# three stages, one input channel, EMBED_DIM 24 (dt rank 2), MLP_RATIO 2.0
cfg = E.write_config(t.path("c24.yaml"), 24, [1, 1, 2], num_classes=3, mlp_ratio=2.0, in_chans=1)
sd = E.sm.random_state_dict(24, [1, 1, 2], 3, 1, 2.0, seed=9)
w = t.path("c24.pth")
E.ck.save_model(w, sd)
t.run_logits("C24 d[1,1,2] in_chans 1", cfg, w, E.image((2, 1, 37, 41), 40), sd, [1, 1, 2])
t.finish()
