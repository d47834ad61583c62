#!/usr/bin/env python3
"""bench/torch_dense_gpu.py -- the project's PyTorch reference of the dense
models (tests/reference/spatial_mamba.py) on a CUDA GPU: the baseline of
the GPU speed targets of docs/dense.md.

Takes: nothing (or --quick: one chunk length, 1 warm-up and 3 runs).  Runs UperNet-T at 512x512 and the
Spatial-Mamba-T backbone at 800x1333, batch 1, random weights, in every
configuration below, and prints one table: the median of 10 timed runs
(CUDA events, after 3 warm-ups) per configuration, and which is fastest --
the number mambac's GPU code is compared with.

Configurations: float32 (TF32 off), TF32 (matmul and cuDNN), bf16 autocast;
each with torch.inference_mode, a channels-last input, the state fusion as
three dilated depthwise convolutions (state_fusion_conv) and the chunked
scan at chunk lengths 8, 16 and 32.
"""
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import spatial_mamba as sm  # noqa: E402

DEPTHS_T = [2, 4, 8, 4]


def timed(fn, runs=10, warm=3):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(runs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2]


def main(argv):
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    dev = torch.device("cuda")
    quick = "--quick" in argv
    hd = {"channels": 512, "pool_scales": [1, 2, 3, 6], "num_classes": 150}
    sd = sm.random_state_dict(64, DEPTHS_T, seed=0, decode_head=hd)
    sd = {k: v.to(dev) for k, v in sd.items()}
    models = [
        ("UperNet-T 512x512", (1, 3, 512, 512),
         lambda x: sm.segmentor_forward(x, sd, 64, DEPTHS_T, 4.0, 512, hd["pool_scales"], 150)),
        ("backbone-T 800x1333", (1, 3, 800, 1333),
         lambda x: sm.backbone_forward(x, sd, 64, DEPTHS_T, 4.0, [0, 1, 2, 3])),
    ]
    precs = [("fp32", torch.float32, False), ("tf32", torch.float32, True), ("bf16 autocast", torch.bfloat16, True)]
    chunks = (16,) if quick else (8, 16, 32)
    print("GPU: %s, torch %s" % (torch.cuda.get_device_name(0), torch.__version__))
    print("| model | precision | configuration | median ms |")
    print("|---|---|---|---|")
    for name, shape, fwd in models:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1)).to(dev)
        xl = x.contiguous(memory_format=torch.channels_last)
        best = None
        for pname, dt, tf32 in precs:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            configs = [("as written", torch.no_grad, x, sm.state_fusion_loop, 8)]
            configs += [("inference_mode, channels_last, fusion-conv, scan T=%d" % T, torch.inference_mode, xl,
                         sm.state_fusion_conv, T) for T in chunks]
            for label, mode, xin, fusion, T in configs:
                sm.state_fusion = fusion
                sm.scan = lambda u, d, A, B, T=T: sm.scan_chunked(u, d, A, B, T)

                def run():
                    with mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=dt == torch.bfloat16):
                        return fwd(xin)
                try:
                    ms = timed(run, runs=3 if quick else 10, warm=1 if quick else 3)
                except RuntimeError as e:  # out of memory at a configuration: say so, go on
                    print("| %s | %s | %s | failed: %s |" % (name, pname, label, str(e).splitlines()[0][:80]))
                    torch.cuda.empty_cache()
                    continue
                print("| %s | %s | %s | %.2f |" % (name, pname, label, ms))
                sys.stdout.flush()
                if best is None or ms < best[0]:
                    best = (ms, pname, label)
        sm.state_fusion, sm.scan = sm.state_fusion_loop, sm.scan_chunked
        if best:
            print("| %s | fastest: %s | %s | %.2f |" % (name, best[1], best[2], best[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
