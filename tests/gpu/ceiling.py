#!/usr/bin/python3
"""tests/gpu/ceiling.py -- the physical ceilings of this GPU, measured once
through PyTorch (CUDA events, median of 20): device-to-device copy bandwidth
(bytes read + written) and 8192^3 matrix products in fp32 (FFMA, TF32 off),
tf32 and bf16.  Prints one line per ceiling, "ceiling NAME VALUE UNIT"."""
import torch


def timed(fn, reps=20):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2] / 1e3


def main():
    dev = torch.device("cuda")
    print("gpu", torch.cuda.get_device_name(0))
    n = 1 << 28
    x = torch.rand(n, device=dev)
    y = torch.empty_like(x)
    t = timed(lambda: y.copy_(x))
    print("ceiling copy_bandwidth %.0f GB/s" % (2 * 4 * n / t / 1e9))
    N = 8192
    for name, dt, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True),
                           ("bf16", torch.bfloat16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a = torch.rand(N, N, device=dev, dtype=dt) - 0.5
        b = torch.rand(N, N, device=dev, dtype=dt) - 0.5
        t = timed(lambda: a @ b, reps=10)
        print("ceiling matmul_%s %.1f TFLOP/s" % (name, 2 * N ** 3 / t / 1e12))


if __name__ == "__main__":
    main()
