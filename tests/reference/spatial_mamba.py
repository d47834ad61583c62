"""Plain-PyTorch reference of the Spatial-Mamba classifier (eval mode).

Takes: an image tensor [B, in_chans, H, W] and a state dict with the public
checkpoint key names (see docs and random_state_dict below).
Produces: logits [B, num_classes] in the dtype of the image (run it in
float64 to get expected values for the float32 compiler).
Owns: nothing; pure functions.

Written for the mambac test-suite from the model's published semantics:
conv stem with BatchNorm, per-stage blocks (conv position encoding, SSM with
one row-major selective scan over the image, d_state 1, structure-aware
state fusion with clamped borders, MLP), conv downsamples, LayerNorm + mean
pool + linear head.  No custom kernels: runs on any CPU.

Used as a module (tests/e2e) and as a small CLI:
  python3 spatial_mamba.py --selftest      scan == naive loop, shapes
  python3 spatial_mamba.py --bench tiny    CPU time of one 224x224 image
"""
import math
import sys
from collections import OrderedDict

import torch
import torch.nn.functional as F

EPS = 1e-5


def store(t, kind):
    """Where an implementation stores an activation (kind: 'xz' in_proj's
    output, 'u' the SSM conv's, 'xd' x_proj's, 'dt' dt_projs' (with its
    bias), 'h' the scan's states, 'yg' out_norm's gated output, 'x' the
    residual stream, 'ln' ln_1 / ln_2 outputs, 't' the MLP's hidden values,
    'conv' a stem or downsample conv's output).  The identity here; an
    emulation (tests/gpu/tf32_emulate.py) replaces it to round what it
    stores."""
    return t

CONFIGS = {
    # name: (embed_dim, depths)
    "tiny": (64, [2, 4, 8, 4]),
    "small": (64, [2, 4, 21, 5]),
    "base": (96, [2, 4, 21, 5]),
}


def stage_dims(embed_dim, depths):
    return [embed_dim * (2 ** i) for i in range(len(depths))]


def conv_out(n, k=3, s=2, p=1):
    return (n + 2 * p - k) // s + 1


# ---------------------------------------------------------------- weights

def random_state_dict(embed_dim=64, depths=(2, 4, 8, 4), num_classes=1000, in_chans=3,
                      mlp_ratio=4.0, seed=0, dtype=torch.float32):
    """Random weights with the public key names, shapes and realistic scales.

    Deterministic in `seed`.  BatchNorm running statistics are non-trivial,
    dt biases follow the public init (inverse softplus of a log-uniform
    dt in [1e-3, 1e-1]), A_logs = log(U[0.5, 4]), num_batches_tracked is int64.
    """
    g = torch.Generator().manual_seed(int(seed))
    sd = OrderedDict()

    gdt = torch.float64 if dtype == torch.float64 else torch.float32

    def normal(shape, std, mean=0.0):
        return (torch.randn(*shape, generator=g, dtype=gdt) * std + mean).to(dtype)

    def uniform(shape, lo, hi):
        return (torch.rand(*shape, generator=g, dtype=gdt) * (hi - lo) + lo).to(dtype)

    def conv(p, co, ci_g, k, bias):
        fan_in = ci_g * k * k
        sd[p + ".weight"] = normal((co, ci_g, k, k), math.sqrt(2.0 / fan_in))
        if bias:
            sd[p + ".bias"] = normal((co,), 0.05)

    def bn(p, c):
        sd[p + ".weight"] = uniform((c,), 0.7, 1.3)
        sd[p + ".bias"] = normal((c,), 0.1)
        sd[p + ".running_mean"] = normal((c,), 0.2)
        sd[p + ".running_var"] = uniform((c,), 0.5, 2.5)
        sd[p + ".num_batches_tracked"] = torch.tensor(1000 + int(seed), dtype=torch.int64)

    def ln(p, c):
        sd[p + ".weight"] = normal((c,), 0.1, 1.0)
        sd[p + ".bias"] = normal((c,), 0.05)

    def linear(p, n, k, bias, std=0.02):
        sd[p + ".weight"] = normal((n, k), std)
        if bias:
            sd[p + ".bias"] = normal((n,), 0.02)

    C = embed_dim
    conv("patch_embed.conv1.conv", C // 2, in_chans, 3, False)
    bn("patch_embed.conv1.norm", C // 2)
    conv("patch_embed.conv2.0.conv", C // 2, C // 2, 3, False)
    bn("patch_embed.conv2.0.norm", C // 2)
    conv("patch_embed.conv2.1.conv", C // 2, C // 2, 3, False)
    bn("patch_embed.conv2.1.norm", C // 2)
    conv("patch_embed.conv3.0.conv", 4 * C, C // 2, 3, False)
    bn("patch_embed.conv3.0.norm", 4 * C)
    conv("patch_embed.conv3.1.conv", C, 4 * C, 1, False)
    bn("patch_embed.conv3.1.norm", C)

    dims = stage_dims(embed_dim, depths)
    for i, (Ci, depth) in enumerate(zip(dims, depths)):
        D = 2 * Ci
        R = math.ceil(Ci / 16)
        hid = int(Ci * mlp_ratio)
        for j in range(depth):
            p = "layers.%d.blocks.%d." % (i, j)
            sd[p + "cpe1.weight"] = normal((Ci, 1, 3, 3), 0.2)
            sd[p + "cpe1.bias"] = normal((Ci,), 0.02)
            ln(p + "ln_1", Ci)
            a = p + "self_attention."
            # 4x the default Linear init: makes the scan / state-fusion path matter
            # in the logits (as in trained models), so its errors are visible
            sd[a + "x_proj_weight"] = uniform((R + 2, D), -4 * D ** -0.5, 4 * D ** -0.5)
            sd[a + "dt_projs_weight"] = uniform((D, R), -R ** -0.5, R ** -0.5)
            dt = torch.exp(uniform((D,), math.log(1e-3), math.log(1e-1)).double()).clamp(min=1e-4)
            sd[a + "dt_projs_bias"] = (dt + torch.log(-torch.expm1(-dt))).to(dtype)
            sd[a + "A_logs"] = torch.log(uniform((D, 1), 0.5, 4.0).double()).to(dtype)
            sd[a + "Ds"] = uniform((D,), 0.5, 1.5)
            linear(a + "in_proj", 2 * D, Ci, False, std=Ci ** -0.5)
            sd[a + "conv2d.weight"] = normal((D, 1, 3, 3), 0.3)
            sd[a + "conv2d.bias"] = normal((D,), 0.05)
            ln(a + "out_norm", D)
            linear(a + "out_proj", Ci, D, False, std=0.5 * D ** -0.5)
            sd[a + "state_fusion.alpha"] = uniform((3,), 0.3, 1.2)
            for k in ("kernel_3", "kernel_3_1", "kernel_3_2"):
                sd[a + "state_fusion." + k] = normal((D, 1, 3, 3), 0.12, mean=1.0 / 9)
            sd[p + "cpe2.weight"] = normal((Ci, 1, 3, 3), 0.2)
            sd[p + "cpe2.bias"] = normal((Ci,), 0.02)
            ln(p + "ln_2", Ci)
            linear(p + "mlp.fc1", hid, Ci, True, std=Ci ** -0.5)
            linear(p + "mlp.fc2", Ci, hid, True, std=0.5 * hid ** -0.5)
        if i < len(depths) - 1:
            p = "layers.%d.downsample.conv." % i
            conv(p + "0.conv", 8 * Ci, Ci, 1, True)
            conv(p + "1.conv", 8 * Ci, 1, 3, True)
            conv(p + "2.conv", 2 * Ci, 8 * Ci, 1, True)
            bn(p + "2.norm", 2 * Ci)
    ln("norm", dims[-1])
    linear("head", num_classes, dims[-1], True, std=0.05)
    return sd


# ---------------------------------------------------------------- scan

def scan_naive(u, delta, A, Bv):
    """h_l = exp(delta_l*A) h_{l-1} + delta_l*Bv_l*u_l over l (dim 1).
    u, delta: [B, L, D]; A: [D]; Bv: [B, L, 1].  Returns every h: [B, L, D]."""
    Bsz, L, D = u.shape
    h = torch.zeros(Bsz, D, dtype=u.dtype)
    out = torch.empty_like(u)
    dA = torch.exp(delta * A)
    b = delta * Bv * u
    for l in range(L):
        h = dA[:, l] * h + b[:, l]
        out[:, l] = h
    return out


def _scan_logdecay(a, b, T):
    """Solves h_l = exp(a_l) h_{l-1} + b_l (h_{-1} = 0) along dim 1 with
    a <= 0.  Chunks of length T are solved with a masked T x T matrix of
    exp(S_l - S_k) (S = in-chunk cumulative sum of a; every exponent <= 0,
    so nothing overflows); the carries between chunks obey the same kind of
    recurrence, one level up, and are solved recursively."""
    Bsz, L, D = a.shape
    if L <= T:
        S = torch.cumsum(a, dim=1)                                   # [B, L, D]
        diff = S[:, :, None, :] - S[:, None, :, :]                   # [B, l, k, D]
        mask = torch.ones(L, L, dtype=torch.bool).tril()
        M = torch.exp(diff.masked_fill(~mask[None, :, :, None], float("-inf")))
        return torch.einsum("blkd,bkd->bld", M, b)
    n = (L + T - 1) // T
    pad = n * T - L
    if pad:
        a = F.pad(a, (0, 0, 0, pad))
        b = F.pad(b, (0, 0, 0, pad))
    a4 = a.reshape(Bsz, n, T, D)
    b4 = b.reshape(Bsz, n, T, D)
    S = torch.cumsum(a4, dim=2)                                      # [B, n, T, D]
    diff = S[:, :, :, None, :] - S[:, :, None, :, :]                 # [B, n, l, k, D]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    M = torch.exp(diff.masked_fill(~mask[None, None, :, :, None], float("-inf")))
    local = torch.einsum("bnlkd,bnkd->bnld", M, b4)                  # zero carry-in
    # chunk c ends with H_c = exp(S_c,T-1) H_{c-1} + local_c,T-1
    H = _scan_logdecay(S[:, :, -1, :].contiguous(), local[:, :, -1, :].contiguous(), T)
    carry = F.pad(H[:, :-1], (0, 0, 1, 0))                           # H_{c-1}, H_{-1}=0
    h = local + torch.exp(S) * carry[:, :, None, :]
    return h.reshape(Bsz, n * T, D)[:, :L]


def scan_chunked(u, delta, A, Bv, T=8):
    """Same result as scan_naive, vectorized (see _scan_logdecay)."""
    return _scan_logdecay(delta * A, delta * Bv * u, T)


scan = scan_chunked


# ---------------------------------------------------------------- layers

def batchnorm(x, sd, p):
    """x NCHW."""
    w, b = sd[p + ".weight"], sd[p + ".bias"]
    m, v = sd[p + ".running_mean"], sd[p + ".running_var"]
    s = w / torch.sqrt(v + EPS)
    return x * s[None, :, None, None] + (b - m * s)[None, :, None, None]


def layernorm(x, sd, p):
    """Over the last axis."""
    return F.layer_norm(x, (x.shape[-1],), sd[p + ".weight"], sd[p + ".bias"], EPS)


def conv_layer(x, sd, p, stride=1, pad=0, groups=1, bn=True, relu=True):
    x = F.conv2d(x, sd[p + ".conv.weight"], sd.get(p + ".conv.bias"), stride, pad, 1, groups)
    if bn:
        x = batchnorm(x, sd, p + ".norm")
    return store(F.relu(x) if relu else x, "conv")


def linear(x, w, b=None):
    """x[..., K] @ w[N, K]^T + b.  In float32 a [B,H,W,K] input goes through a
    1x1 convolution on its channels-last view (oneDNN; several times faster
    than the BLAS that PyTorch may be linked with); otherwise F.linear."""
    if x.dtype == torch.float32 and x.dim() == 4 and x.is_contiguous():
        y = F.conv2d(x.permute(0, 3, 1, 2), w[:, :, None, None], b)
        return y.permute(0, 2, 3, 1)
    return F.linear(x, w, b)


def dwconv3x3_nhwc(x, w, b):
    """Depthwise 3x3, zero padding 1, x [B,H,W,C] -> [B,H,W,C]."""
    y = F.conv2d(x.permute(0, 3, 1, 2), w, b, 1, 1, 1, x.shape[-1])
    return y.permute(0, 2, 3, 1)


def softplus(v):
    return torch.where(v > 20, v, torch.log1p(torch.exp(torch.clamp(v, max=20))))


def state_fusion(h, sd, p):
    """h [B,H,W,D]; three dilated depthwise 3x3 kernels, replicate borders
    (coordinates clamped into the image), weighted by alpha."""
    Bsz, H, W, D = h.shape
    alpha = sd[p + ".alpha"]
    out = torch.zeros_like(h)
    for idx, (name, dil) in enumerate((("kernel_3", 1), ("kernel_3_1", 3), ("kernel_3_2", 5))):
        k = sd[p + "." + name].reshape(D, 3, 3)
        for ky in range(3):
            iy = torch.clamp(torch.arange(H) + (ky - 1) * dil, 0, H - 1)
            hy = h[:, iy]
            for kx in range(3):
                ix = torch.clamp(torch.arange(W) + (kx - 1) * dil, 0, W - 1)
                out = out + (alpha[idx] * k[:, ky, kx]) * hy[:, :, ix]
    return out


def ssm(x, sd, p):
    """x [B,H,W,C] (already layer-normed) -> [B,H,W,C]."""
    Bsz, H, W, C = x.shape
    xz = store(linear(x, sd[p + ".in_proj.weight"]), "xz")
    D = xz.shape[-1] // 2
    u, z = xz[..., :D], xz[..., D:]
    u = store(F.silu(dwconv3x3_nhwc(u, sd[p + ".conv2d.weight"], sd[p + ".conv2d.bias"])), "u")
    xpw = sd[p + ".x_proj_weight"]
    R = xpw.shape[0] - 2
    xd = store(linear(u, xpw), "xd")                      # [B,H,W,R+2]
    dt_low, Bv, Cv = xd[..., :R], xd[..., R:R + 1], xd[..., R + 1:R + 2]
    delta = softplus(store(linear(dt_low.contiguous(), sd[p + ".dt_projs_weight"]) + sd[p + ".dt_projs_bias"], "dt"))
    A = -torch.exp(sd[p + ".A_logs"].reshape(D))
    L = H * W
    h = store(scan(u.reshape(Bsz, L, D), delta.reshape(Bsz, L, D), A, Bv.reshape(Bsz, L, 1)), "h")
    hf = state_fusion(h.reshape(Bsz, H, W, D), sd, p + ".state_fusion")
    y = hf * Cv + u * sd[p + ".Ds"]
    y = store(layernorm(y, sd, p + ".out_norm") * F.silu(z), "yg")
    return linear(y, sd[p + ".out_proj.weight"])


def block(x, sd, p):
    x = store(x + dwconv3x3_nhwc(x, sd[p + ".cpe1.weight"], sd[p + ".cpe1.bias"]), "x")
    x = store(x + ssm(store(layernorm(x, sd, p + ".ln_1"), "ln"), sd, p + ".self_attention"), "x")
    x = store(x + dwconv3x3_nhwc(x, sd[p + ".cpe2.weight"], sd[p + ".cpe2.bias"]), "x")
    t = store(layernorm(x, sd, p + ".ln_2"), "ln")
    t = linear(t, sd[p + ".mlp.fc1.weight"], sd[p + ".mlp.fc1.bias"])
    t = store(F.gelu(t), "t")
    return store(x + linear(t, sd[p + ".mlp.fc2.weight"], sd[p + ".mlp.fc2.bias"]), "x")


def stem(x, sd):
    s1 = conv_layer(x, sd, "patch_embed.conv1", stride=2, pad=1)
    t = conv_layer(s1, sd, "patch_embed.conv2.0", pad=1)
    t = conv_layer(t, sd, "patch_embed.conv2.1", pad=1, relu=False)
    s2 = s1 + t
    t = conv_layer(s2, sd, "patch_embed.conv3.0", stride=2, pad=1)
    return conv_layer(t, sd, "patch_embed.conv3.1", relu=False)


def downsample(x, sd, p):
    """x NHWC -> NHWC at half resolution, twice the width."""
    t = x.permute(0, 3, 1, 2)
    t = conv_layer(t, sd, p + ".0", bn=False)
    t = conv_layer(t, sd, p + ".1", stride=2, pad=1, groups=t.shape[1], bn=False)
    t = conv_layer(t, sd, p + ".2", relu=False)
    return t.permute(0, 2, 3, 1)


def forward(img, sd, depths, dtype=None):
    """img [B, in_chans, H, W] -> logits [B, classes].  All weights are cast
    to `dtype` (default: img's dtype); integer tensors are left alone."""
    dtype = dtype or img.dtype
    sd = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}
    x = stem(img.to(dtype), sd).permute(0, 2, 3, 1)         # [B, H0, W0, C]
    for i, depth in enumerate(depths):
        for j in range(depth):
            x = block(x, sd, "layers.%d.blocks.%d" % (i, j))
        if i < len(depths) - 1:
            x = downsample(x, sd, "layers.%d.downsample.conv" % i)
    x = layernorm(x, sd, "norm").mean(dim=(1, 2))
    return F.linear(x, sd["head.weight"], sd["head.bias"])


def infer_config(sd):
    """(embed_dim, depths, num_classes, in_chans, mlp_ratio) from a state dict."""
    C = sd["patch_embed.conv1.conv.weight"].shape[0] * 2
    in_chans = sd["patch_embed.conv1.conv.weight"].shape[1]
    depths = []
    i = 0
    while any(k.startswith("layers.%d." % i) for k in sd):
        j = 0
        while ("layers.%d.blocks.%d.ln_1.weight" % (i, j)) in sd:
            j += 1
        depths.append(j)
        i += 1
    hid = sd["layers.0.blocks.0.mlp.fc1.weight"].shape[0]
    return C, depths, sd["head.weight"].shape[0], in_chans, hid / C


def rel_l2(a, b):
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    return float(torch.linalg.norm(a - b) / max(float(torch.linalg.norm(b)), 1e-300))


# ---------------------------------------------------------------- CLI

def _selftest():
    torch.manual_seed(0)
    ok = True
    for (Bsz, L, D, T) in ((2, 1, 3, 32), (1, 31, 4, 8), (3, 257, 5, 16), (2, 1000, 6, 32),
                           (1, 4096, 2, 32)):
        u = torch.randn(Bsz, L, D, dtype=torch.float64)
        delta = softplus(torch.randn(Bsz, L, D, dtype=torch.float64) * 3 - 2)
        A = -torch.exp(torch.rand(D, dtype=torch.float64) * 2)
        Bv = torch.randn(Bsz, L, 1, dtype=torch.float64)
        want = scan_naive(u, delta, A, Bv)
        got = scan_chunked(u, delta, A, Bv, T)
        err = float((got - want).abs().max() / want.abs().max())
        print("scan B=%d L=%d D=%d T=%d: max rel err %.3g" % (Bsz, L, D, T, err))
        ok &= err < 1e-12
    sd = random_state_dict(16, [1, 1, 1, 1], 5, 3, 2.0, seed=1)
    y = forward(torch.randn(2, 3, 33, 47, dtype=torch.float64), sd, [1, 1, 1, 1])
    print("forward shape", tuple(y.shape))
    ok &= tuple(y.shape) == (2, 5) and bool(torch.isfinite(y).all())
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def _bench(name, threads=2, batch=1, size=224):
    import time
    torch.set_num_threads(threads)
    C, depths = CONFIGS[name]
    sd = random_state_dict(C, depths, seed=0)
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        forward(x, sd, depths)
        t0 = time.perf_counter()
        n = 3
        for _ in range(n):
            forward(x, sd, depths)
        dt = (time.perf_counter() - t0) / n
    print("%s batch %d %dx%d, %d threads, float32: %.1f ms" % (name, batch, size, size, threads,
                                                              dt * 1e3))
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--selftest":
        sys.exit(_selftest())
    if len(sys.argv) >= 3 and sys.argv[1] == "--bench":
        sys.exit(_bench(sys.argv[2], *(int(a) for a in sys.argv[3:])))
    print(__doc__)
    sys.exit(2)
