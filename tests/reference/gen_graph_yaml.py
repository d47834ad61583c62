"""Writes a Spatial-Mamba classifier as a generic graph YAML (docs/graph-yaml.md).

Takes: a public config (.yaml with a MODEL key), a batch size and an image
size (or the config's DATA.IMG_SIZE).
Produces: graph YAML text on stdout or into a file: every value is listed
explicitly with its op, inputs, attributes and its dtype and shape, which
this script works out itself from the model's published semantics (conv
arithmetic, stage widths, dt rank, MLP width) -- mambac's loader checks each
declared shape against its own inference.
Owns: nothing.

Independent of the C model builder (frontend/model.c): it only follows the
same naming conventions (weights named by checkpoint key, a module's result
by its prefix, derived values with short suffixes) and creates each weight
right before its first use, in the same op order, so that
`mambac dump generated.graph.yaml` and `mambac dump config.yaml` can be
compared byte for byte.

  python3 gen_graph_yaml.py CONFIG.yaml [--batch B] [--image-size H[xW]] [-o OUT]
"""
import argparse
import math
import sys

import yaml

EPS = "1e-05"


class G:
    def __init__(self, name):
        self.name = name
        self.lines = []
        self.shapes = {}
        self.names = set()

    def _add(self, name, op, shape, inputs=(), attrs=()):
        assert name not in self.names, "duplicate node name " + name
        for i in inputs:
            assert i in self.shapes, "undefined input %s of %s" % (i, name)
        self.names.add(name)
        self.shapes[name] = list(shape)
        parts = ["name: %s" % name, "op: %s" % op]
        if inputs:
            parts.append("inputs: [%s]" % ", ".join(inputs))
        parts += ["%s: %s" % (k, v) for k, v in attrs]
        parts += ["dtype: f32", "shape: [%s]" % ", ".join(str(int(d)) for d in shape)]
        self.lines.append("    - {%s}" % ", ".join(parts))
        return name

    def input(self, name, shape):
        return self._add(name, "input", shape)

    def weight(self, key, *shape):
        return self._add(key, "weight", shape)

    def unary(self, op, name, x):
        return self._add(name, op, self.shapes[x], [x])

    def binary(self, op, name, a, b):
        sa, sb = self.shapes[a], self.shapes[b]
        n = max(len(sa), len(sb))
        sa, sb = [1] * (n - len(sa)) + sa, [1] * (n - len(sb)) + sb
        out = []
        for p, q in zip(sa, sb):
            assert p == q or p == 1 or q == 1, (name, sa, sb)
            out.append(max(p, q))
        return self._add(name, op, out, [a, b])

    def text(self):
        return ("# Spatial-Mamba '%s' as a generic graph YAML (written by "
                "tests/reference/gen_graph_yaml.py)\ngraph:\n  name: %s\n  nodes:\n%s\n"
                "  outputs: [%s]\n" % (self.name, self.name, "\n".join(self.lines), self.out))


def conv(g, p, name, x, co, k, stride, pad, groups, bias):
    B, H, W, ci = g.shapes[x]
    w = g.weight(p + ".weight", co, ci // groups, k, k)
    ins = [x, w]
    if bias:
        ins.append(g.weight(p + ".bias", co))
    Ho = (H + 2 * pad - k) // stride + 1
    Wo = (W + 2 * pad - k) // stride + 1
    attrs = [("stride", "[%d, %d]" % (stride, stride)), ("pad", "[%d, %d]" % (pad, pad)),
             ("dilation", "[1, 1]"), ("groups", groups)]
    return g._add(name, "conv2d", [B, Ho, Wo, co], ins, attrs)


def batchnorm(g, p, x):
    c = g.shapes[x][-1]
    ins = [x] + [g.weight(p + s, c) for s in (".weight", ".bias", ".running_mean", ".running_var")]
    return g._add(p, "batchnorm", g.shapes[x], ins, [("eps", EPS)])


def layernorm(g, p, x):
    c = g.shapes[x][-1]
    ins = [x, g.weight(p + ".weight", c), g.weight(p + ".bias", c)]
    return g._add(p, "layernorm", g.shapes[x], ins, [("eps", EPS)])


def linear(g, wkey, bkey, name, x, n):
    ins = [x, g.weight(wkey, n, g.shapes[x][-1])]
    if bkey:
        ins.append(g.weight(bkey, n))
    return g._add(name, "linear", g.shapes[x][:-1] + [n], ins)


def slice_(g, name, x, start, n):
    return g._add(name, "slice", g.shapes[x][:-1] + [n], [x], [("start", start), ("len", n)])


def conv_layer(g, p, x, co, k, stride, pad, groups, bias, norm, act):
    x = conv(g, p + ".conv", p + ".conv", x, co, k, stride, pad, groups, bias)
    if norm:
        x = batchnorm(g, p + ".norm", x)
    if act:
        x = g.unary("relu", p + ".act", x)
    return x


def stem(g, img, C):
    B, ci, H, W = g.shapes[img]
    x = g._add("x.nhwc", "permute", [B, H, W, ci], [img], [("perm", "[0, 2, 3, 1]")])
    x = conv_layer(g, "patch_embed.conv1", x, C // 2, 3, 2, 1, 1, False, True, True)
    t = conv_layer(g, "patch_embed.conv2.0", x, C // 2, 3, 1, 1, 1, False, True, True)
    t = conv_layer(g, "patch_embed.conv2.1", t, C // 2, 3, 1, 1, 1, False, True, False)
    x = g.binary("add", "patch_embed.add", x, t)
    x = conv_layer(g, "patch_embed.conv3.0", x, 4 * C, 3, 2, 1, 1, False, True, True)
    return conv_layer(g, "patch_embed.conv3.1", x, C, 1, 1, 0, 1, False, True, False)


def ssm(g, a, x, C):
    D, R = 2 * C, math.ceil(C / 16)
    xz = linear(g, a + ".in_proj.weight", None, a + ".in_proj", x, 2 * D)
    u = slice_(g, a + ".u", xz, 0, D)
    z = slice_(g, a + ".z", xz, D, D)
    u = conv(g, a + ".conv2d", a + ".conv2d", u, D, 3, 1, 1, D, True)
    u = g.unary("silu", a + ".conv2d.act", u)
    xd = linear(g, a + ".x_proj_weight", None, a + ".x_proj", u, R + 2)
    dtl = slice_(g, a + ".dt_low", xd, 0, R)
    Bv = slice_(g, a + ".Bv", xd, R, 1)
    Cv = slice_(g, a + ".Cv", xd, R + 1, 1)
    dt = linear(g, a + ".dt_projs_weight", a + ".dt_projs_bias", a + ".dt_projs", dtl, D)
    delta = g.unary("softplus", a + ".delta", dt)
    Al = g.weight(a + ".A_logs", D, 1)
    A = g.unary("exp", a + ".A_logs.exp", Al)
    A = g.unary("neg", a + ".A", A)
    h = g._add(a + ".scan", "selective_scan", g.shapes[u], [u, delta, A, Bv])
    sf = a + ".state_fusion"
    ks = [g.weight(sf + k, D, 1, 3, 3) for k in (".kernel_3", ".kernel_3_1", ".kernel_3_2")]
    al = g.weight(sf + ".alpha", 3)
    hf = g._add(sf, "state_fusion", g.shapes[h], [h] + ks + [al])
    y = g.binary("mul", a + ".y.hc", hf, Cv)
    Ds = g.weight(a + ".Ds", D)
    ud = g.binary("mul", a + ".y.ud", u, Ds)
    y = g.binary("add", a + ".y", y, ud)
    y = layernorm(g, a + ".out_norm", y)
    zs = g.unary("silu", a + ".z.act", z)
    y = g.binary("mul", a + ".gate", y, zs)
    return linear(g, a + ".out_proj.weight", None, a + ".out_proj", y, C)


def block(g, p, x, C, mlp_ratio):
    t = conv(g, p + ".cpe1", p + ".cpe1", x, C, 3, 1, 1, C, True)
    x = g.binary("add", p + ".cpe1.add", x, t)
    t = layernorm(g, p + ".ln_1", x)
    t = ssm(g, p + ".self_attention", t, C)
    x = g.binary("add", p + ".ssm.add", x, t)
    t = conv(g, p + ".cpe2", p + ".cpe2", x, C, 3, 1, 1, C, True)
    x = g.binary("add", p + ".cpe2.add", x, t)
    t = layernorm(g, p + ".ln_2", x)
    hid = int(C * mlp_ratio)
    t = linear(g, p + ".mlp.fc1.weight", p + ".mlp.fc1.bias", p + ".mlp.fc1", t, hid)
    t = g.unary("gelu", p + ".mlp.act", t)
    t = linear(g, p + ".mlp.fc2.weight", p + ".mlp.fc2.bias", p + ".mlp.fc2", t, C)
    return g.binary("add", p + ".mlp.add", x, t)


def downsample(g, p, x, C):
    x = conv_layer(g, p + ".0", x, 8 * C, 1, 1, 0, 1, True, False, True)
    x = conv_layer(g, p + ".1", x, 8 * C, 3, 2, 1, 8 * C, True, False, True)
    return conv_layer(g, p + ".2", x, 2 * C, 1, 1, 0, 1, True, True, False)


def build(name, embed_dim, depths, num_classes=1000, mlp_ratio=4.0, in_chans=3, B=1, H=224,
          W=224):
    g = G(name)
    x = g.input("x", [B, in_chans, H, W])
    x = stem(g, x, embed_dim)
    for i, d in enumerate(depths):
        Ci = embed_dim * 2 ** i
        for j in range(d):
            x = block(g, "layers.%d.blocks.%d" % (i, j), x, Ci, mlp_ratio)
        if i < len(depths) - 1:
            x = downsample(g, "layers.%d.downsample.conv" % i, x, Ci)
    x = layernorm(g, "norm", x)
    Bn, _, _, Cl = g.shapes[x]
    x = g._add("pool", "mean_hw", [Bn, Cl], [x])
    g.out = linear(g, "head.weight", "head.bias", "head", x, num_classes)
    return g


def from_config(path, B=1, H=None, W=None):
    with open(path) as f:
        doc = yaml.safe_load(f)
    m = doc["MODEL"]
    s = m.get("SPATIALMAMBA", {}) or {}
    size = (doc.get("DATA") or {}).get("IMG_SIZE", 224)
    H = H or size
    W = W or H
    return build(m.get("NAME", "spatial_mamba"), int(s.get("EMBED_DIM", 96)),
                 list(s.get("DEPTHS", [2, 2, 9, 2])), int(m.get("NUM_CLASSES", 1000)),
                 float(s.get("MLP_RATIO", 4.0)), int(s.get("IN_CHANS", 3)), B, H, W)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--image-size", default=None)
    ap.add_argument("-o", dest="out", default=None)
    a = ap.parse_args(argv)
    H = W = None
    if a.image_size:
        hw = a.image_size.lower().split("x")
        H = int(hw[0])
        W = int(hw[1]) if len(hw) > 1 else H
    text = from_config(a.config, a.batch, H, W).text()
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
