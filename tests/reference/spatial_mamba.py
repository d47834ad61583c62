"""Plain-PyTorch reference of the Spatial-Mamba classifier (eval mode), and of
the dense-prediction models on its stages: the backbone (four multi-scale
feature maps) and UperNet semantic segmentation (backbone + UPerHead).

Takes: an image tensor [B, in_chans, H, W] and a state dict with the public
checkpoint key names (see docs and random_state_dict below; the dense models
use the classifier's unprefixed backbone names, outnorm{i}.*, and the head's
full decode_head.* names).
Produces: logits [B, num_classes] (classifier), a list of NCHW feature maps
(backbone_forward) or per-pixel logits [B, classes, H, W] (segmentor_forward),
in the dtype of the image (run it in float64 to get expected values for the
float32 compiler).
Owns: nothing; pure functions.

Written for the mambac test-suite from the model's published semantics:
conv stem with BatchNorm, per-stage blocks (conv position encoding, SSM with
one row-major selective scan over the image, d_state 1, structure-aware
state fusion with clamped borders, MLP), conv downsamples, LayerNorm + mean
pool + linear head.  The dense models: per-stage LayerNorm outnorm{i}
on each stage's output before its downsample; UPerHead (PPM on the last
feature, lateral 1x1 ConvModules, top-down bilinear adds, 3x3 fpn_convs,
fpn_bottleneck, conv_seg), logits resized bilinearly to the input size.
No custom kernels: runs on any CPU.

Used as a module (tests/e2e) and as a small CLI:
  python3 spatial_mamba.py --selftest      scan == naive loop, pooling bins and
                                           bilinear resize == hand formulas, shapes
  python3 spatial_mamba.py --bench tiny    CPU time of one 224x224 image
  python3 spatial_mamba.py --bench-dense CHANNELS EMBED_DIM SIZE [THREADS [RUNS]]
                                           UperNet's CPU time: float32 variants, float64
  python3 spatial_mamba.py --dense CONFIG.yaml --weights CKPT --input X.npy --out OUT.npz
                                           float64 expected outputs of a dense config:
                                           stage{i} (backbone) or logits (segmentor)
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
                      mlp_ratio=4.0, seed=0, dtype=torch.float32, out_indices=None,
                      decode_head=None):
    """Random weights with the public key names, shapes and realistic scales.

    Deterministic in `seed`.  BatchNorm running statistics are non-trivial,
    dt biases follow the public init (inverse softplus of a log-uniform
    dt in [1e-3, 1e-1]), A_logs = log(U[0.5, 4]), num_batches_tracked is int64.

    `out_indices` (a list of stage indices): the backbone instead of the
    classifier -- outnorm{i}.* for each i, no norm.* / head.*.
    `decode_head` (a dict with channels, pool_scales, num_classes, as
    dense_config gives; implies out_indices = every stage unless given):
    also the UPerHead's decode_head.* weights.  Its convolutions are
    He-initialised (std sqrt(2 / fan_in)), which keeps activations O(1)
    through ConvModule -> ReLU chains; num_classes is then the head's, and
    the argument `num_classes` is unused.
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
    if out_indices is None and decode_head is None:
        ln("norm", dims[-1])
        linear("head", num_classes, dims[-1], True, std=0.05)
        return sd
    for i in (range(len(depths)) if out_indices is None else sorted(out_indices)):
        ln("outnorm%d" % i, dims[i])
    if decode_head is None:
        return sd

    def conv_module(p, co, ci, k):
        conv(p + ".conv", co, ci, k, False)
        bn(p + ".bn", co)

    h, ch = "decode_head.", int(decode_head["channels"])
    scales = list(decode_head["pool_scales"])
    for i in range(len(scales)):
        conv_module(h + "psp_modules.%d.1" % i, ch, dims[-1], 1)
    conv_module(h + "bottleneck", ch, dims[-1] + len(scales) * ch, 3)
    for i in range(len(dims) - 1):
        conv_module(h + "lateral_convs.%d" % i, ch, dims[i], 1)
    for i in range(len(dims) - 1):
        conv_module(h + "fpn_convs.%d" % i, ch, ch, 3)
    conv_module(h + "fpn_bottleneck", ch, len(dims) * ch, 3)
    conv(h + "conv_seg", int(decode_head["num_classes"]), ch, 1, True)
    return sd


# ---------------------------------------------------------------- scan

def scan_naive(u, delta, A, Bv):
    """h_l = exp(delta_l*A) h_{l-1} + delta_l*Bv_l*u_l over l (dim 1).
    u, delta: [B, L, D]; A: [D]; Bv: [B, L, 1].  Returns every h: [B, L, D]."""
    Bsz, L, D = u.shape
    h = torch.zeros(Bsz, D, dtype=u.dtype, device=u.device)
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
        mask = torch.ones(L, L, dtype=torch.bool, device=a.device).tril()
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
    mask = torch.ones(T, T, dtype=torch.bool, device=a.device).tril()
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


def conv_layer(x, sd, p, stride=1, pad=0, groups=1, bn=True, relu=True, norm="norm"):
    """conv -> BatchNorm p.<norm> (eval) -> ReLU, each optional; NCHW.  With
    norm="bn", no conv bias and the defaults: mmseg's ConvModule."""
    x = F.conv2d(x, sd[p + ".conv.weight"], sd.get(p + ".conv.bias"), stride, pad, 1, groups)
    if bn:
        x = batchnorm(x, sd, p + "." + norm)
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


FUSION_KERNELS = (("kernel_3", 1), ("kernel_3_1", 3), ("kernel_3_2", 5))   # (name, dilation)


def state_fusion_loop(h, sd, p):
    """h [B,H,W,D]; three dilated depthwise 3x3 kernels, replicate borders
    (coordinates clamped into the image), weighted by alpha."""
    Bsz, H, W, D = h.shape
    alpha = sd[p + ".alpha"]
    out = torch.zeros_like(h)
    for idx, (name, dil) in enumerate(FUSION_KERNELS):
        k = sd[p + "." + name].reshape(D, 3, 3)
        for ky in range(3):
            iy = torch.clamp(torch.arange(H, device=h.device) + (ky - 1) * dil, 0, H - 1)
            hy = h[:, iy]
            for kx in range(3):
                ix = torch.clamp(torch.arange(W, device=h.device) + (kx - 1) * dil, 0, W - 1)
                out = out + (alpha[idx] * k[:, ky, kx]) * hy[:, :, ix]
    return out


def state_fusion_conv(h, sd, p):
    """state_fusion_loop's sums in another order, several times faster at
    large sizes: per kernel one dilated depthwise convolution (oneDNN, on
    the channels-last view) of the states padded by clamped coordinates."""
    Bsz, H, W, D = h.shape
    out = None
    for idx, (name, dil) in enumerate(FUSION_KERNELS):
        iy = torch.clamp(torch.arange(-dil, H + dil, device=h.device), 0, H - 1)
        ix = torch.clamp(torch.arange(-dil, W + dil, device=h.device), 0, W - 1)
        t = h[:, iy][:, :, ix].permute(0, 3, 1, 2)
        y = F.conv2d(t, sd[p + "." + name] * sd[p + ".alpha"][idx], None, 1, 0, dil, D)
        out = y if out is None else out + y
    return out.permute(0, 2, 3, 1)


state_fusion = state_fusion_loop


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


def cast(sd, dtype):
    """Floating tensors of sd to `dtype` (no copy of those already in it);
    integer tensors are left alone."""
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}


def stages(img, sd, depths):
    """The stem and stages: yields stage i's output *before* its downsample,
    NHWC, for i = 0, 1, ...  A generator: nothing after the last stage a
    caller takes is computed.  img and sd in one dtype."""
    x = stem(img, sd).permute(0, 2, 3, 1)                   # [B, H0, W0, C]
    for i, depth in enumerate(depths):
        for j in range(depth):
            x = block(x, sd, "layers.%d.blocks.%d" % (i, j))
        yield x
        if i < len(depths) - 1:
            x = downsample(x, sd, "layers.%d.downsample.conv" % i)


def forward(img, sd, depths, dtype=None):
    """img [B, in_chans, H, W] -> logits [B, classes].  All weights are cast
    to `dtype` (default: img's dtype); integer tensors are left alone."""
    dtype = dtype or img.dtype
    sd = cast(sd, dtype)
    for x in stages(img.to(dtype), sd, depths):
        pass
    x = layernorm(x, sd, "norm").mean(dim=(1, 2))
    return F.linear(x, sd["head.weight"], sd["head.bias"])


# ---------------------------------------------------------------- dense prediction

def _check_backbone(sd, embed_dim, depths, mlp_ratio, out_indices):
    """ValueError naming what does not fit: the weights' stem / MLP widths
    against embed_dim / mlp_ratio, a stage index out of range, a missing
    outnorm (a classification state dict has none)."""
    got = sd["patch_embed.conv1.conv.weight"].shape[0] * 2
    if got != embed_dim:
        raise ValueError("the weights have EMBED_DIM %d, the config %d" % (got, embed_dim))
    for i, Ci in enumerate(stage_dims(embed_dim, depths)):
        k = "layers.%d.blocks.0.mlp.fc1.weight" % i
        if depths[i] and k in sd and sd[k].shape[0] != int(Ci * mlp_ratio):
            raise ValueError("stage %d's MLP has %d hidden channels in the weights, "
                             "MLP_RATIO %g gives %d" % (i, sd[k].shape[0], mlp_ratio,
                                                        int(Ci * mlp_ratio)))
    for i in out_indices:
        if not 0 <= i < len(depths):
            raise ValueError("out index %d: the model has stages 0..%d" % (i, len(depths) - 1))
        if "outnorm%d.weight" % i not in sd:
            raise ValueError("no outnorm%d weights (a classification state dict has no "
                             "per-stage output norms)" % i)


def backbone_forward(img, sd, embed_dim, depths, mlp_ratio, out_indices, dtype=None):
    """img [B, in_chans, H, W] -> [stage i's output before its downsample,
    through LayerNorm outnorm{i} over channels, NCHW [B, embed_dim * 2^i,
    ~H/2^(i+2), ~W/2^(i+2)] for i in sorted(out_indices)] (the public
    Backbone_SpatialMamba).  Weights cast to `dtype` as in forward."""
    dtype = dtype or img.dtype
    sd = cast(sd, dtype)
    idx = sorted(set(int(i) for i in out_indices))
    _check_backbone(sd, embed_dim, list(depths), mlp_ratio, idx)
    outs = []
    for i, x in zip(range(idx[-1] + 1), stages(img.to(dtype), sd, depths)):
        if i in idx:
            outs.append(layernorm(x, sd, "outnorm%d" % i).permute(0, 3, 1, 2).contiguous())
    return outs


def resize(x, size, align_corners=False):
    """Bilinear resize of NCHW x to size (H, W) with F.interpolate's
    semantics (pinned by the selftest: source = (dst + 0.5) * in/out - 0.5
    clamped at 0, or dst * (in-1)/(out-1) with align_corners)."""
    return F.interpolate(x, size=tuple(int(n) for n in size), mode="bilinear",
                         align_corners=bool(align_corners))


def _check_head(sd, feats, channels, pool_scales, num_classes):
    h = "decode_head."
    want = ((h + "conv_seg.weight", (num_classes, channels, 1, 1)),
            (h + "bottleneck.conv.weight",
             (channels, feats[-1].shape[1] + len(pool_scales) * channels, 3, 3)),
            (h + "fpn_bottleneck.conv.weight", (channels, len(feats) * channels, 3, 3)))
    for k, shape in want:
        if k not in sd:
            raise ValueError("no %s in the weights" % k)
        if tuple(sd[k].shape) != shape:
            raise ValueError("%s is %s, the config gives %s" % (k, list(sd[k].shape), list(shape)))
    n = sum(1 for k in sd if k.startswith(h + "psp_modules.") and k.endswith(".conv.weight"))
    if n != len(pool_scales):
        raise ValueError("%d psp_modules in the weights, %d POOL_SCALES" % (n, len(pool_scales)))


def uper_head_forward(feats, sd, channels, pool_scales, num_classes, align_corners=False):
    """UPerHead (mmseg, eval) on NCHW feats [f0, f1, f2, f3] (finest first)
    -> logits [B, num_classes, H0, W0] at f0's size; weights decode_head.*,
    cast to the features' dtype.  ConvModule = conv (no bias) -> BN -> ReLU."""
    h = "decode_head."
    sd = cast(sd, feats[0].dtype)
    _check_head(sd, feats, channels, pool_scales, num_classes)

    def cm(x, name, pad=0):
        return conv_layer(x, sd, h + name, pad=pad, norm="bn")

    x = feats[-1]
    ppm = [resize(cm(F.adaptive_avg_pool2d(x, int(s)), "psp_modules.%d.1" % i), x.shape[2:],
                  align_corners) for i, s in enumerate(pool_scales)]
    lat = [cm(f, "lateral_convs.%d" % i) for i, f in enumerate(feats[:-1])]
    lat.append(cm(torch.cat([x] + ppm, dim=1), "bottleneck", pad=1))
    for i in range(len(lat) - 1, 0, -1):
        lat[i - 1] = lat[i - 1] + resize(lat[i], lat[i - 1].shape[2:], align_corners)
    outs = [cm(t, "fpn_convs.%d" % i, pad=1) for i, t in enumerate(lat[:-1])] + lat[-1:]
    outs = outs[:1] + [resize(t, outs[0].shape[2:], align_corners) for t in outs[1:]]
    y = cm(torch.cat(outs, dim=1), "fpn_bottleneck", pad=1)
    return F.conv2d(y, sd[h + "conv_seg.weight"], sd[h + "conv_seg.bias"])


def segmentor_forward(img, sd, embed_dim, depths, mlp_ratio, channels, pool_scales, num_classes,
                      align_corners=False, dtype=None):
    """UperNet: every stage of the backbone -> UPerHead -> logits resized to
    img's size: [B, num_classes, H, W]."""
    dtype = dtype or img.dtype
    sd = cast(sd, dtype)
    feats = backbone_forward(img.to(dtype), sd, embed_dim, depths, mlp_ratio,
                             range(len(depths)))
    y = uper_head_forward(feats, sd, channels, pool_scales, num_classes, align_corners)
    return resize(y, img.shape[2:], align_corners)


def dense_config(path):
    """The YAML twin config of a dense model -> dict: embed_dim, depths,
    mlp_ratio, in_chans, num_classes (the classifier's), img_size (H, W),
    out_indices (None: the classifier; MODEL.BACKBONE.OUT_INDICES, default
    every stage; MODEL.DECODE_HEAD alone implies every stage) and
    decode_head (None, or a dict channels, pool_scales, num_classes,
    align_corners; defaults 512, [1, 2, 3, 6], 150, false).  Defaults of
    the rest as the compiler's: EMBED_DIM 96, DEPTHS [2, 2, 9, 2],
    MLP_RATIO 4.0, IN_CHANS 3, NUM_CLASSES 1000, IMG_SIZE 224."""
    import yaml
    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    m = doc.get("MODEL") or {}
    s = m.get("SPATIALMAMBA") or {}
    img = (doc.get("DATA") or {}).get("IMG_SIZE", 224)
    cfg = {"embed_dim": int(s.get("EMBED_DIM", 96)),
           "depths": [int(d) for d in s.get("DEPTHS", [2, 2, 9, 2])],
           "mlp_ratio": float(s.get("MLP_RATIO", 4.0)), "in_chans": int(s.get("IN_CHANS", 3)),
           "num_classes": int(m.get("NUM_CLASSES", 1000)),
           "img_size": (int(img), int(img)) if isinstance(img, int) else tuple(int(n) for n in img),
           "out_indices": None, "decode_head": None}
    bb, hd = m.get("BACKBONE"), m.get("DECODE_HEAD")
    if bb is not None or hd is not None:
        cfg["out_indices"] = [int(i) for i in (bb or {}).get("OUT_INDICES",
                                                             range(len(cfg["depths"])))]
    if hd is not None:
        if sorted(cfg["out_indices"]) != list(range(len(cfg["depths"]))):
            raise ValueError("MODEL.DECODE_HEAD takes every stage: OUT_INDICES %s"
                             % cfg["out_indices"])
        if hd.get("TYPE", "uper_head") != "uper_head":
            raise ValueError("MODEL.DECODE_HEAD.TYPE %r: only uper_head" % hd.get("TYPE"))
        cfg["decode_head"] = {"channels": int(hd.get("CHANNELS", 512)),
                              "pool_scales": [int(n) for n in hd.get("POOL_SCALES", [1, 2, 3, 6])],
                              "num_classes": int(hd.get("NUM_CLASSES", 150)),
                              "align_corners": bool(hd.get("ALIGN_CORNERS", False))}
    return cfg


def dense_forward(img, sd, cfg, dtype=None):
    """The outputs of a dense_config model by name: {'logits': [B, classes,
    H, W]} for a segmentor, else {'stage<i>': NCHW features} for each i of
    out_indices."""
    a = (cfg["embed_dim"], cfg["depths"], cfg["mlp_ratio"])
    hd = cfg["decode_head"]
    if hd is not None:
        return {"logits": segmentor_forward(img, sd, *a, hd["channels"], hd["pool_scales"],
                                            hd["num_classes"], hd["align_corners"], dtype)}
    idx = sorted(set(cfg["out_indices"]))
    return {"stage%d" % i: f for i, f in zip(idx, backbone_forward(img, sd, *a, idx, dtype))}


def random_dense_state_dict(cfg, seed=0, dtype=torch.float32):
    """random_state_dict for a dense_config dict."""
    return random_state_dict(cfg["embed_dim"], cfg["depths"], cfg["num_classes"], cfg["in_chans"],
                             cfg["mlp_ratio"], seed, dtype, cfg["out_indices"], cfg["decode_head"])


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
    ok &= _selftest_dense()
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def _pool_naive(x, s):
    """Adaptive average pooling of NCHW x to s x s, by hand: bin i of n
    spans [floor(i*n/s), ceil((i+1)*n/s))."""
    H, W = x.shape[-2:]
    out = torch.empty(*x.shape[:-2], s, s, dtype=x.dtype)
    for i in range(s):
        y0, y1 = i * H // s, -(-(i + 1) * H // s)
        for j in range(s):
            x0, x1 = j * W // s, -(-(j + 1) * W // s)
            out[..., i, j] = x[..., y0:y1, x0:x1].mean(dim=(-2, -1))
    return out


def _resize_taps(n_in, n_out, align_corners):
    """Per output index (i0, i1, weight of i1) of bilinear resizing, by hand."""
    taps = []
    for d in range(n_out):
        if align_corners:
            src = d * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            src = max((d + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        taps.append((i0, min(i0 + 1, n_in - 1), src - i0))
    return taps


def _resize_naive(x, size, align_corners):
    out = torch.empty(*x.shape[:-2], *size, dtype=x.dtype)
    tx = _resize_taps(x.shape[-1], size[1], align_corners)
    for oy, (y0, y1, ly) in enumerate(_resize_taps(x.shape[-2], size[0], align_corners)):
        row = x[..., y0, :] * (1 - ly) + x[..., y1, :] * ly
        for ox, (x0, x1, lx) in enumerate(tx):
            out[..., oy, ox] = row[..., x0] * (1 - lx) + row[..., x1] * lx
    return out


def _selftest_dense():
    """The dense models' semantics pinned independently of torch: pooling
    bins and bilinear resizing against the hand loops above at odd sizes (up
    and down, both align_corners); backbone / segmentor shapes at an odd
    size (every halving rounds up); the last stage's output taken before
    any norm (the classifier's head on it with outnorm = norm gives the
    classifier's logits); a YAML twin config read back."""
    import os
    import tempfile
    ok = True
    for H, W in ((7, 5), (13, 9), (2, 3), (1, 1), (16, 11)):
        x = torch.randn(2, 3, H, W, dtype=torch.float64)
        for s in (1, 2, 3, 6):
            err = float((F.adaptive_avg_pool2d(x, s) - _pool_naive(x, s)).abs().max())
            ok &= err < 1e-12
            if err >= 1e-12:
                print("adaptive pool %dx%d -> %d: max err %.3g" % (H, W, s, err))
    print("adaptive pool == hand bins:", "OK" if ok else "FAILED")
    good = True
    for (h, w), size in (((5, 7), (13, 11)), ((13, 11), (5, 7)), ((1, 1), (3, 4)),
                         ((3, 4), (1, 1)), ((6, 9), (6, 9)), ((4, 3), (17, 2)), ((9, 1), (4, 5))):
        x = torch.randn(1, 2, h, w, dtype=torch.float64)
        for ac in (False, True):
            err = float((resize(x, size, ac) - _resize_naive(x, size, ac)).abs().max())
            good &= err < 1e-12
            if err >= 1e-12:
                print("resize %dx%d -> %s align_corners %s: max err %.3g" % (h, w, size, ac, err))
    print("bilinear resize == hand formula:", "OK" if good else "FAILED")
    ok &= good
    good = True
    for shape in ((2, 1, 1, 3), (1, 2, 7, 4), (1, 13, 6, 5)):
        h = torch.randn(*shape, dtype=torch.float64)
        fsd = {"f.alpha": torch.rand(3, dtype=torch.float64)}
        fsd.update(("f." + n, torch.randn(shape[-1], 1, 3, 3, dtype=torch.float64))
                   for n, _ in FUSION_KERNELS)
        want = state_fusion_loop(h, fsd, "f")
        good &= float((state_fusion_conv(h, fsd, "f") - want).abs().max() / want.abs().max()) < 1e-12
    print("state_fusion_conv == state_fusion_loop:", "OK" if good else "FAILED")
    ok &= good

    depths, hd = [1, 1, 2, 1], {"channels": 24, "pool_scales": [1, 2, 3, 6], "num_classes": 7}
    sd = random_state_dict(16, depths, 9, 3, 2.0, seed=5, decode_head=hd)
    img = torch.randn(2, 3, 33, 47, dtype=torch.float64)
    feats = backbone_forward(img, sd, 16, depths, 2.0, [0, 1, 2, 3])
    want = [(2, 16 << i, -(-33 >> (i + 2)), -(-47 >> (i + 2))) for i in range(4)]
    shapes = [tuple(f.shape) for f in feats]
    good = shapes == want and all(bool(torch.isfinite(f).all()) for f in feats)
    print("backbone shapes", shapes, "OK" if good else "FAILED, want %s" % want)
    ok &= good
    two = backbone_forward(img, sd, 16, depths, 2.0, [2, 1])
    good = len(two) == 2 and all(torch.equal(a, b) for a, b in zip(two, feats[1:3]))
    ok &= good
    cls = dict(sd, **{"norm.weight": sd["outnorm3.weight"], "norm.bias": sd["outnorm3.bias"],
                      "head.weight": torch.randn(9, 128), "head.bias": torch.randn(9)})
    err = rel_l2(F.linear(feats[3].mean(dim=(2, 3)), cls["head.weight"].double(),
                          cls["head.bias"].double()), forward(img, cls, depths))
    print("backbone stage 3 + classifier head == classifier: rel err %.3g" % err)
    ok &= err < 1e-12
    y = segmentor_forward(img, sd, 16, depths, 2.0, 24, [1, 2, 3, 6], 7)
    good = tuple(y.shape) == (2, 7, 33, 47) and bool(torch.isfinite(y).all())
    print("segmentor shape", tuple(y.shape), "OK" if good else "FAILED")
    ok &= good
    for bad, what in (({k: v for k, v in sd.items() if not k.startswith("outnorm")}, "outnorm"),
                      (sd, "EMBED_DIM")):
        try:
            backbone_forward(img, bad, 16 if what == "outnorm" else 32, depths, 2.0, [0])
            ok = False
            print("no error for a missing", what)
        except ValueError as e:
            ok &= what in str(e)

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "u.yaml")
        with open(p, "w") as f:
            f.write("MODEL:\n  TYPE: spatial_mamba\n  NAME: u\n"
                    "  SPATIALMAMBA: {EMBED_DIM: 16, DEPTHS: [1, 1, 2, 1], D_STATE: 1, "
                    "MLP_RATIO: 2.0}\n  BACKBONE:\n    OUT_INDICES: [0, 1, 2, 3]\n"
                    "  DECODE_HEAD:\n    TYPE: uper_head\n    CHANNELS: 24\n"
                    "    POOL_SCALES: [1, 2, 3, 6]\n    NUM_CLASSES: 7\n"
                    "    ALIGN_CORNERS: false\nDATA:\n  IMG_SIZE: [33, 47]\n")
        cfg = dense_config(p)
    out = dense_forward(img, random_dense_state_dict(cfg, seed=5), cfg)
    good = cfg["img_size"] == (33, 47) and list(out) == ["logits"] and torch.equal(out["logits"], y)
    print("dense_config + dense_forward == segmentor_forward:", "OK" if good else "FAILED")
    return ok and good


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


def _dense(argv):
    """--dense CONFIG.yaml --weights CKPT --input X.npy --out OUT.npz: the
    dense model's outputs (stage<i> or logits) on X, float64 unless
    --dtype float32; user errors are one line and status 1."""
    import argparse
    import os
    import numpy as np
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import checkpoints
    ap = argparse.ArgumentParser(prog="spatial_mamba.py --dense")
    ap.add_argument("config")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args(argv)
    try:
        cfg = dense_config(a.config)
        if cfg["out_indices"] is None:
            raise ValueError("%s has no MODEL.BACKBONE or MODEL.DECODE_HEAD: not a dense model"
                             % a.config)
        sd, skipped = checkpoints.model_state_dict(checkpoints.load_checkpoint(a.weights))
        if skipped:
            print("skipped %d weights of training parts / other models (%s, ...)"
                  % (len(skipped), skipped[0]), file=sys.stderr)
        x = np.load(a.input)
        if x.ndim != 4 or x.shape[1] != cfg["in_chans"]:
            raise ValueError("input %s is %s, want [B, %d, H, W]" % (a.input, list(x.shape),
                                                                     cfg["in_chans"]))
        if a.threads:
            torch.set_num_threads(a.threads)
        with torch.no_grad():
            out = dense_forward(torch.from_numpy(x), sd, cfg, getattr(torch, a.dtype))
    except (OSError, ValueError, KeyError) as e:
        print("error: %s" % (e if not isinstance(e, KeyError) else "no weight %s" % e),
              file=sys.stderr)
        return 1
    np.savez(a.out, **{k: v.numpy() for k, v in out.items()})
    return 0


def _bench_dense(channels, embed_dim, size, threads=2, runs=3):
    """UperNet (tiny depths, 150 classes) at size x size, batch 1: wall and
    process CPU time (best of `runs`, variants round-robin after a warm-up)
    of the reference as written in float32, of faster float32 variants
    (torch.inference_mode with a channels-last input, state_fusion_conv,
    scan chunk T, a frozen TorchScript trace) and, once, of float64; each
    variant's error against float64.  On a shared machine run it with
    OMP_WAIT_POLICY=passive (spinning OpenMP workers lose 5-20x there)."""
    import os
    import time
    import warnings
    global scan, state_fusion
    torch.set_num_threads(threads)
    depths = CONFIGS["tiny"][1]
    hd = {"channels": channels, "pool_scales": [1, 2, 3, 6], "num_classes": 150}
    sd32 = random_state_dict(embed_dim, depths, seed=0, decode_head=hd)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    args = (embed_dim, depths, 4.0, channels, hd["pool_scales"], 150)
    xl = x.contiguous(memory_format=torch.channels_last)

    def eager(mode, xin, fusion, T):
        def run():
            global scan, state_fusion
            state_fusion, scan = fusion, (lambda u, d, A, B: scan_chunked(u, d, A, B, T))
            with mode():
                return segmentor_forward(xin, sd32, *args)
        return run

    variants = [("float32 as written (no_grad, NCHW input)",
                 eager(torch.no_grad, x, state_fusion_loop, 8)),
                ("+ inference_mode, channels-last input",
                 eager(torch.inference_mode, xl, state_fusion_loop, 8))]
    for T in (4, 8, 16):
        variants.append(("+ state_fusion_conv, scan chunk %d" % T,
                         eager(torch.inference_mode, xl, state_fusion_conv, T)))

    class Segmentor(torch.nn.Module):
        def forward(self, xin):
            return segmentor_forward(xin, sd32, *args)

    state_fusion, scan = state_fusion_conv, (lambda u, d, A, B: scan_chunked(u, d, A, B, 4))
    t0 = time.perf_counter()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.optimize_for_inference(torch.jit.freeze(
            torch.jit.trace(Segmentor().eval(), xl, check_trace=False)))
    print("TorchScript trace + freeze + optimize_for_inference: %.1f s" % (time.perf_counter() - t0))

    def jit():
        with torch.no_grad():
            return traced(xl)
    variants.append(("TorchScript of state_fusion_conv, chunk 4 (frozen)", jit))
    best, cpu, ys = [float("inf")] * len(variants), [0.0] * len(variants), [None] * len(variants)
    for r in range(runs + 1):
        for k, (label, fn) in enumerate(variants):
            t0, c0 = time.perf_counter(), time.process_time()
            ys[k] = fn()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if r and dt < best[k]:                     # run 0 warms up
                best[k], cpu[k] = dt, dc
    state_fusion, scan = state_fusion_loop, scan_chunked
    with torch.no_grad():
        t0, c0 = time.perf_counter(), time.process_time()
        y64 = segmentor_forward(x.double(), cast(sd32, torch.float64), *args)
        dt64, dc64 = time.perf_counter() - t0, time.process_time() - c0
    print("UperNet C=%d E=%d %dx%d batch 1, %d threads, load %.1f" % (
        channels, embed_dim, size, size, threads, os.getloadavg()[0]))
    for k, v in enumerate(variants):
        print("  %-52s %8.0f ms wall %8.0f ms cpu  rel L2 %.2g" % (
            v[0], best[k] * 1e3, cpu[k] * 1e3, rel_l2(ys[k], y64)))
    print("  %-52s %8.0f ms wall %8.0f ms cpu" % ("float64 as written (one run)", dt64 * 1e3,
                                                  dc64 * 1e3))
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--selftest":
        sys.exit(_selftest())
    if len(sys.argv) >= 3 and sys.argv[1] == "--bench":
        sys.exit(_bench(sys.argv[2], *(int(a) for a in sys.argv[3:])))
    if len(sys.argv) >= 5 and sys.argv[1] == "--bench-dense":
        sys.exit(_bench_dense(*(int(a) for a in sys.argv[2:])))
    if len(sys.argv) >= 2 and sys.argv[1] == "--dense":
        sys.exit(_dense(sys.argv[2:]))
    print(__doc__)
    sys.exit(2)
