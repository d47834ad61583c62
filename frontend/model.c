/* frontend/model.c -- Spatial-Mamba config -> graph IR (SPEC sections 3-6).
 *
 * Takes a parsed ModelConfig and an input size; produces the classifier graph
 * with node names that follow the checkpoint keys (docs/ir.md).  Weight nodes
 * are created right before their first use, so the printed IR reads top to
 * bottom like the model.  Owns nothing beyond the graph it fills.
 * Sizes (parameters, the largest activation) are computed from the config
 * alone and checked against ir/budget.h before any node is made; a node the
 * graph still refuses is a user error, never an abort.
 */
#include "frontend.h"
#include "../ir/budget.h"
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct Builder {
    Graph *g;
    McErr *err;
    jmp_buf fail; /* a node that cannot be added: err is set */
} Builder;

static const char *
fmt(Builder *b, const char *f, ...)
{
    static char buf[4][256];
    static int k;
    char *p = buf[k++ & 3];
    va_list ap;
    va_start(ap, f);
    vsnprintf(p, 256, f, ap);
    va_end(ap);
    return p;
}

static int
check(Builder *b, int id)
{
    if (id < 0) longjmp(b->fail, 1); /* e.g. a tensor beyond the IR's size cap */
    return id;
}

/* A weight by checkpoint key, f32 of the given dims. */
static int
W(Builder *b, const char *key, int rank, ...)
{
    Shape s;
    memset(&s, 0, sizeof s);
    s.rank = rank;
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++) s.d[i] = va_arg(ap, int64_t);
    va_end(ap);
    return check(b, mc_graph_weight(b->g, key, DT_F32, &s, b->err));
}

static int
op(Builder *b, OpKind k, const char *name, const Attrs *a, int n, ...)
{
    int in[MC_MAX_INPUTS];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) in[i] = va_arg(ap, int);
    va_end(ap);
    return check(b, mc_graph_add(b->g, k, in, n, a, name, b->err));
}

static int
unary(Builder *b, OpKind k, const char *name, int x)
{
    return op(b, k, name, NULL, 1, x);
}

static int
binary(Builder *b, OpKind k, const char *name, int x, int y)
{
    return op(b, k, name, NULL, 2, x, y);
}

static int64_t
chan(Builder *b, int id)
{
    const Node *n = &b->g->nodes[id];
    return n->shape.d[n->shape.rank - 1];
}

/* conv2d with an OIHW weight at `p`.weight (and `p`.bias if bias). */
static int
conv(Builder *b, const char *p, const char *name, int x, int64_t co, int64_t k, int64_t stride,
     int64_t pad, int64_t groups, int bias)
{
    int64_t ci = chan(b, x);
    Attrs a = mc_attrs_default();
    a.stride[0] = a.stride[1] = stride;
    a.pad[0] = a.pad[1] = pad;
    a.groups = groups;
    int w = W(b, fmt(b, "%s.weight", p), 4, co, ci / groups, k, k);
    if (bias) {
        int bb = W(b, fmt(b, "%s.bias", p), 1, co);
        return op(b, OP_CONV2D, name, &a, 3, x, w, bb);
    }
    return op(b, OP_CONV2D, name, &a, 2, x, w);
}

static int
batchnorm(Builder *b, const char *p, int x)
{
    int64_t c = chan(b, x);
    int w = W(b, fmt(b, "%s.weight", p), 1, c);
    int bb = W(b, fmt(b, "%s.bias", p), 1, c);
    int m = W(b, fmt(b, "%s.running_mean", p), 1, c);
    int v = W(b, fmt(b, "%s.running_var", p), 1, c);
    Attrs a = mc_attrs_default();
    return op(b, OP_BATCHNORM, p, &a, 5, x, w, bb, m, v);
}

static int
layernorm(Builder *b, const char *p, int x)
{
    int64_t c = chan(b, x);
    int w = W(b, fmt(b, "%s.weight", p), 1, c);
    int bb = W(b, fmt(b, "%s.bias", p), 1, c);
    Attrs a = mc_attrs_default();
    return op(b, OP_LAYERNORM, p, &a, 3, x, w, bb);
}

static int
linear(Builder *b, const char *wkey, const char *bkey, const char *name, int x, int64_t n)
{
    int w = W(b, wkey, 2, n, chan(b, x));
    if (bkey) {
        int bb = W(b, bkey, 1, n);
        return op(b, OP_LINEAR, name, NULL, 3, x, w, bb);
    }
    return op(b, OP_LINEAR, name, NULL, 2, x, w);
}

static int
slice(Builder *b, const char *name, int x, int64_t start, int64_t len)
{
    Attrs a = mc_attrs_default();
    a.start = start;
    a.len = len;
    return op(b, OP_SLICE, name, &a, 1, x);
}

/* ConvLayer (SPEC 3): conv (p.conv), BN (p.norm) if norm, ReLU (p.act) if act. */
static int
conv_layer(Builder *b, const char *p, int x, int64_t co, int64_t k, int64_t stride, int64_t pad,
           int64_t groups, int bias, int norm, int act)
{
    char pc[192], pn[192];
    snprintf(pc, sizeof pc, "%s.conv", p);
    snprintf(pn, sizeof pn, "%s.norm", p);
    x = conv(b, pc, pc, x, co, k, stride, pad, groups, bias);
    if (norm) x = batchnorm(b, pn, x);
    if (act) x = unary(b, OP_RELU, fmt(b, "%s.act", p), x);
    return x;
}

static int
stem(Builder *b, int img, int64_t C)
{
    Attrs a = mc_attrs_default();
    a.perm[0] = 0; a.perm[1] = 2; a.perm[2] = 3; a.perm[3] = 1;
    int x = op(b, OP_PERMUTE, "x.nhwc", &a, 1, img);
    x = conv_layer(b, "patch_embed.conv1", x, C / 2, 3, 2, 1, 1, 0, 1, 1);
    int t = conv_layer(b, "patch_embed.conv2.0", x, C / 2, 3, 1, 1, 1, 0, 1, 1);
    t = conv_layer(b, "patch_embed.conv2.1", t, C / 2, 3, 1, 1, 1, 0, 1, 0);
    x = binary(b, OP_ADD, "patch_embed.add", x, t);
    x = conv_layer(b, "patch_embed.conv3.0", x, 4 * C, 3, 2, 1, 1, 0, 1, 1);
    return conv_layer(b, "patch_embed.conv3.1", x, C, 1, 1, 0, 1, 0, 1, 0);
}

static int
ssm(Builder *b, const char *prefix, int x, int64_t C)
{
    char a[192]; /* fmt()'s ring buffers are reused: keep the prefix */
    snprintf(a, sizeof a, "%s", prefix);
    int64_t D = 2 * C, R = (C + 15) / 16;
    int xz = linear(b, fmt(b, "%s.in_proj.weight", a), NULL, fmt(b, "%s.in_proj", a), x, 2 * D);
    int u = slice(b, fmt(b, "%s.u", a), xz, 0, D);
    int z = slice(b, fmt(b, "%s.z", a), xz, D, D);
    char pc[192];
    snprintf(pc, sizeof pc, "%s.conv2d", a);
    u = conv(b, pc, pc, u, D, 3, 1, 1, D, 1);
    u = unary(b, OP_SILU, fmt(b, "%s.conv2d.act", a), u);
    int xd = linear(b, fmt(b, "%s.x_proj_weight", a), NULL, fmt(b, "%s.x_proj", a), u, R + 2);
    int dtl = slice(b, fmt(b, "%s.dt_low", a), xd, 0, R);
    int Bv = slice(b, fmt(b, "%s.Bv", a), xd, R, 1);
    int Cv = slice(b, fmt(b, "%s.Cv", a), xd, R + 1, 1);
    int dt = linear(b, fmt(b, "%s.dt_projs_weight", a), fmt(b, "%s.dt_projs_bias", a),
                    fmt(b, "%s.dt_projs", a), dtl, D);
    int delta = unary(b, OP_SOFTPLUS, fmt(b, "%s.delta", a), dt);
    int Al = W(b, fmt(b, "%s.A_logs", a), 2, D, (int64_t)1);
    int A = unary(b, OP_EXP, fmt(b, "%s.A_logs.exp", a), Al);
    A = unary(b, OP_NEG, fmt(b, "%s.A", a), A);
    int h = op(b, OP_SCAN, fmt(b, "%s.scan", a), NULL, 4, u, delta, A, Bv);
    char sf[192];
    snprintf(sf, sizeof sf, "%s.state_fusion", a);
    int k0 = W(b, fmt(b, "%s.kernel_3", sf), 4, D, (int64_t)1, (int64_t)3, (int64_t)3);
    int k1 = W(b, fmt(b, "%s.kernel_3_1", sf), 4, D, (int64_t)1, (int64_t)3, (int64_t)3);
    int k2 = W(b, fmt(b, "%s.kernel_3_2", sf), 4, D, (int64_t)1, (int64_t)3, (int64_t)3);
    int al = W(b, fmt(b, "%s.alpha", sf), 1, (int64_t)3);
    int hf = op(b, OP_STATE_FUSION, sf, NULL, 5, h, k0, k1, k2, al);
    int y = binary(b, OP_MUL, fmt(b, "%s.y.hc", a), hf, Cv);
    int Ds = W(b, fmt(b, "%s.Ds", a), 1, D);
    int ud = binary(b, OP_MUL, fmt(b, "%s.y.ud", a), u, Ds);
    y = binary(b, OP_ADD, fmt(b, "%s.y", a), y, ud);
    y = layernorm(b, fmt(b, "%s.out_norm", a), y);
    int zs = unary(b, OP_SILU, fmt(b, "%s.z.act", a), z);
    y = binary(b, OP_MUL, fmt(b, "%s.gate", a), y, zs);
    return linear(b, fmt(b, "%s.out_proj.weight", a), NULL, fmt(b, "%s.out_proj", a), y, C);
}

static int
block(Builder *b, const char *prefix, int x, int64_t C, int64_t hid)
{
    char p[192];
    snprintf(p, sizeof p, "%s", prefix);
    char q[192];
    snprintf(q, sizeof q, "%s.cpe1", p);
    int t = conv(b, q, q, x, C, 3, 1, 1, C, 1);
    x = binary(b, OP_ADD, fmt(b, "%s.cpe1.add", p), x, t);
    t = layernorm(b, fmt(b, "%s.ln_1", p), x);
    t = ssm(b, fmt(b, "%s.self_attention", p), t, C);
    x = binary(b, OP_ADD, fmt(b, "%s.ssm.add", p), x, t);
    snprintf(q, sizeof q, "%s.cpe2", p);
    t = conv(b, q, q, x, C, 3, 1, 1, C, 1);
    x = binary(b, OP_ADD, fmt(b, "%s.cpe2.add", p), x, t);
    t = layernorm(b, fmt(b, "%s.ln_2", p), x);
    t = linear(b, fmt(b, "%s.mlp.fc1.weight", p), fmt(b, "%s.mlp.fc1.bias", p), fmt(b, "%s.mlp.fc1", p), t, hid);
    t = unary(b, OP_GELU, fmt(b, "%s.mlp.act", p), t);
    t = linear(b, fmt(b, "%s.mlp.fc2.weight", p), fmt(b, "%s.mlp.fc2.bias", p), fmt(b, "%s.mlp.fc2", p), t, C);
    return binary(b, OP_ADD, fmt(b, "%s.mlp.add", p), x, t);
}

static int
downsample(Builder *b, const char *prefix, int x, int64_t C)
{
    char p[192];
    snprintf(p, sizeof p, "%s", prefix);
    char q[192];
    snprintf(q, sizeof q, "%s.0", p);
    x = conv_layer(b, q, x, 8 * C, 1, 1, 0, 1, 1, 0, 1);
    snprintf(q, sizeof q, "%s.1", p);
    x = conv_layer(b, q, x, 8 * C, 3, 2, 1, 8 * C, 1, 0, 1);
    snprintf(q, sizeof q, "%s.2", p);
    return conv_layer(b, q, x, 2 * C, 1, 1, 0, 1, 1, 1, 0);
}

/* ------------------------------------------------------------ UPerHead */

/* mmseg's ConvModule: conv without bias (p.conv) -> BatchNorm (p.bn) -> ReLU. */
static int
conv_module(Builder *b, const char *prefix, int x, int64_t co, int64_t k)
{
    char p[192], pc[200], pn[200];
    snprintf(p, sizeof p, "%s", prefix); /* fmt()'s ring buffers are reused: keep the prefix */
    snprintf(pc, sizeof pc, "%s.conv", p);
    snprintf(pn, sizeof pn, "%s.bn", p);
    x = conv(b, pc, pc, x, co, k, 1, k / 2, 1, 0);
    x = batchnorm(b, pn, x);
    return unary(b, OP_RELU, fmt(b, "%s.act", p), x);
}

/* Bilinear resize of x to h x w (none when it has that size: the identity). */
static int
resize(Builder *b, const char *name, int x, int64_t h, int64_t w, int align)
{
    const Node *n = &b->g->nodes[x];
    if (n->shape.d[1] == h && n->shape.d[2] == w) return x;
    Attrs a = mc_attrs_default();
    a.size[0] = h, a.size[1] = w, a.align_corners = align;
    return op(b, OP_RESIZE, name, &a, 1, x);
}

static int
concat(Builder *b, const char *name, const int *x, int n)
{
    return check(b, mc_graph_add(b->g, OP_CONCAT, x, n, NULL, name, b->err));
}

/* UPerHead (mmseg) on the features f[0..n-1] (NHWC, finest first): PPM on
 * the last, lateral 1x1 ConvModules, top-down resize + add, 3x3 fpn_convs,
 * everything resized to f[0]'s size, concat, fpn_bottleneck, conv_seg. */
static int
uper_head(Builder *b, const ModelConfig *cfg, const int *f, int n)
{
    int64_t C = cfg->head_channels;
    int al = cfg->align_corners, lat[MC_MAX_STAGES], parts[MC_MAX_POOL_SCALES + 1];
    const Node *top = &b->g->nodes[f[n - 1]];
    int64_t th = top->shape.d[1], tw = top->shape.d[2];
    parts[0] = f[n - 1];
    for (int i = 0; i < cfg->npool; i++) {
        Attrs a = mc_attrs_default();
        a.size[0] = a.size[1] = cfg->pool_scales[i];
        char p[96];
        snprintf(p, sizeof p, "decode_head.psp_modules.%d", i);
        int t = op(b, OP_ADAPTIVE_AVG_POOL, fmt(b, "%s.0", p), &a, 1, f[n - 1]);
        t = conv_module(b, fmt(b, "%s.1", p), t, C, 1);
        parts[i + 1] = resize(b, fmt(b, "%s.up", p), t, th, tw, al);
    }
    int psp = concat(b, "decode_head.psp_cat", parts, cfg->npool + 1);
    lat[n - 1] = conv_module(b, "decode_head.bottleneck", psp, C, 3);
    for (int i = 0; i < n - 1; i++) lat[i] = conv_module(b, fmt(b, "decode_head.lateral_convs.%d", i), f[i], C, 1);
    for (int i = n - 1; i > 0; i--) {
        const Node *t = &b->g->nodes[lat[i - 1]];
        int up = resize(b, fmt(b, "decode_head.top_down.%d.up", i), lat[i], t->shape.d[1], t->shape.d[2], al);
        lat[i - 1] = binary(b, OP_ADD, fmt(b, "decode_head.top_down.%d.add", i), lat[i - 1], up);
    }
    int outs[MC_MAX_STAGES];
    for (int i = 0; i < n - 1; i++) outs[i] = conv_module(b, fmt(b, "decode_head.fpn_convs.%d", i), lat[i], C, 3);
    outs[n - 1] = lat[n - 1];
    const Node *f0 = &b->g->nodes[outs[0]];
    int64_t h0 = f0->shape.d[1], w0 = f0->shape.d[2];
    for (int i = 1; i < n; i++) outs[i] = resize(b, fmt(b, "decode_head.fpn_up.%d", i), outs[i], h0, w0, al);
    int x = n > 1 ? concat(b, "decode_head.fpn_cat", outs, n) : outs[0];
    x = conv_module(b, "decode_head.fpn_bottleneck", x, C, 3);
    return conv(b, "decode_head.conv_seg", "decode_head.conv_seg", x, cfg->head_classes, 1, 1, 0, 1, 1);
}

/* channels-last -> NCHW, as the caller's output `name` */
static int
to_nchw(Builder *b, const char *name, int x)
{
    Attrs a = mc_attrs_default();
    a.perm[0] = 0; a.perm[1] = 3; a.perm[2] = 1; a.perm[3] = 2;
    return op(b, OP_PERMUTE, name, &a, 1, x);
}

/* ------------------------------------------------------------ sizes */

/* Stages the builder makes: a backbone stops at its last output. */
static int
built_stages(const ModelConfig *cfg)
{
    return cfg->nout ? cfg->out_indices[cfg->nout - 1] + 1 : cfg->nstages;
}

/* Parameters of one block (block(), ssm()) of width C and MLP width hid. */
static double
block_params(double C, double hid)
{
    double D = 2 * C, R = (double)(((int64_t)C + 15) / 16);
    double ssm = 2 * D * C + 10 * D + (R + 2) * D + D * R + D + D + 27 * D + 3 + D + 2 * D + C * D;
    return 10 * C + 2 * C + ssm + 10 * C + 2 * C + (hid * C + hid) + (C * hid + C);
}

double
mc_model_params(const ModelConfig *cfg)
{
    double C = cfg->embed_dim, h = C / 2, ci = cfg->in_chans;
    double n = h * ci * 9 + 4 * h;     /* patch_embed.conv1 + BN */
    n += 2 * (h * h * 9 + 4 * h);      /* conv2.0, conv2.1 */
    n += 4 * C * h * 9 + 16 * C;       /* conv3.0 */
    n += C * 4 * C + 4 * C;            /* conv3.1 */
    int built = built_stages(cfg);
    for (int i = 0; i < built; i++) {
        double Ci = C * (double)((int64_t)1 << i);
        n += cfg->depths[i] * block_params(Ci, (double)mc_model_hidden(cfg, i));
        if (i < built - 1) /* downsample: 1x1 (bias), depthwise 3x3 (bias), 1x1 (bias) + BN */
            n += (8 * Ci * Ci + 8 * Ci) + (8 * Ci * 9 + 8 * Ci) + (2 * Ci * 8 * Ci + 2 * Ci + 8 * Ci);
    }
    double Cl = C * (double)((int64_t)1 << (cfg->nstages - 1));
    if (!cfg->nout) return n + 2 * Cl + cfg->num_classes * Cl + cfg->num_classes;
    for (int i = 0; i < cfg->nout; i++) n += 2 * C * (double)((int64_t)1 << cfg->out_indices[i]); /* outnorm */
    if (!cfg->head) return n;
    double hc = cfg->head_channels, Ct = C * (double)((int64_t)1 << cfg->out_indices[cfg->nout - 1]);
    n += cfg->npool * (Ct * hc + 4 * hc) + (Ct + cfg->npool * hc) * hc * 9 + 4 * hc; /* PPM, bottleneck */
    for (int i = 0; i < cfg->nout - 1; i++)  /* lateral 1x1 and fpn 3x3 ConvModules */
        n += C * (double)((int64_t)1 << cfg->out_indices[i]) * hc + 4 * hc + hc * hc * 9 + 4 * hc;
    n += cfg->nout * hc * hc * 9 + 4 * hc;    /* fpn_bottleneck */
    return n + cfg->head_classes * hc + cfg->head_classes;
}

int64_t
mc_model_hidden(const ModelConfig *cfg, int stage)
{
    double h = (double)((int64_t)cfg->embed_dim << stage) * cfg->mlp_ratio;
    return h < 9e18 ? (int64_t)h : INT64_MAX; /* as block() computes it */
}

/* Elements of the largest intermediate tensor for batch B and an HxW image. */
double
mc_model_max_activation(const ModelConfig *cfg, int B, int H, int W, const char **where)
{
    double C = cfg->embed_dim, best = (double)cfg->in_chans * H * W;
    int64_t h = (H - 1) / 2 + 1, w = (W - 1) / 2 + 1;
    *where = "the input";
#define CAND(v, name) do { if ((v) > best) best = (v), *where = (name); } while (0)
    CAND((double)h * w * C / 2, "patch_embed.conv1");
    h = (h - 1) / 2 + 1, w = (w - 1) / 2 + 1;
    CAND((double)h * w * 4 * C, "patch_embed.conv3.0");
    int built = built_stages(cfg);
    for (int i = 0; i < built; i++) {
        double Ci = C * (double)((int64_t)1 << i), hw = (double)h * w;
        if (cfg->depths[i] > 0) {
            CAND(hw * 4 * Ci, "an in_proj");
            CAND(hw * (double)mc_model_hidden(cfg, i), "an MLP");
        }
        if (i < built - 1) {
            CAND(hw * 8 * Ci, "a downsample");
            h = (h - 1) / 2 + 1, w = (w - 1) / 2 + 1;
        }
    }
    if (cfg->head) { /* the finest feature's size: the fpn concat; the logits at input size */
        h = (H - 1) / 2 + 1, w = (W - 1) / 2 + 1;
        h = (h - 1) / 2 + 1, w = (w - 1) / 2 + 1;
        for (int i = 0; i < cfg->out_indices[0]; i++) h = (h - 1) / 2 + 1, w = (w - 1) / 2 + 1;
        CAND((double)h * w * cfg->nout * cfg->head_channels, "decode_head.fpn_cat");
        CAND((double)H * W * cfg->head_classes, "the segmentation logits");
    }
#undef CAND
    return best * B;
}

int
mc_model_build(const ModelConfig *cfg, int B, int H, int W_, Graph *g, McErr *err)
{
    if (mc_config_check(cfg, err)) return -1;
    if (cfg->d_state != 1)
        return mc_err_at(err, cfg->file, cfg->d_state_line, cfg->d_state_col,
                         "MODEL.SPATIALMAMBA.D_STATE is %d; mambac supports D_STATE 1 (every published config)",
                         cfg->d_state);
    if (cfg->patch_size != 4)
        return mc_err(err, "%s: PATCH_SIZE %d is not supported (the Spatial-Mamba stem is fixed at 4)", cfg->file, cfg->patch_size);
    if (cfg->embed_dim < 2 || cfg->embed_dim % 2)
        return mc_err(err, "%s: EMBED_DIM must be even and >= 2, got %d", cfg->file, cfg->embed_dim);
    if (cfg->nstages < 1 || cfg->nstages > MC_MAX_STAGES)
        return mc_err(err, "%s: DEPTHS must list 1 to %d stages", cfg->file, MC_MAX_STAGES);
    if (B < 1) return mc_err(err, "batch must be >= 1, got %d", B);
    if (H < 32 || W_ < 32)
        return mc_err(err, "image size %dx%d is too small: height and width must be >= 32", H, W_);
    if (H > 16384 || W_ > 16384 || (int64_t)B * H * W_ > ((int64_t)1 << 34))
        return mc_err(err, "input [%d,%d,%d,%d] is too large", B, cfg->in_chans, H, W_);
    const char *where;
    double act = mc_model_max_activation(cfg, B, H, W_, &where);
    char what[160];
    snprintf(what, sizeof what, "at batch %d and %dx%d, %s's output", B, H, W_, where);
    if (mc_budget_check_activation(act, 4 * act, what, cfg->file, 0, 0, err)) return -1;

    mc_graph_init(g, cfg->name[0] ? cfg->name : "spatial_mamba");
    Builder bd = {.g = g, .err = err}, *b = &bd;
    if (setjmp(bd.fail)) {
        mc_err_prefix(err, "%s: cannot build the model", cfg->file);
        return -1;
    }
    Shape s = {4, {B, cfg->in_chans, H, W_}};
    int x = check(b, mc_graph_input(g, "x", DT_F32, &s, err));
    int64_t C = cfg->embed_dim;
    int feats[MC_MAX_STAGES], nf = 0;
    x = stem(b, x, C);
    for (int i = 0; i < cfg->nstages; i++) {
        int64_t Ci = C << i;
        for (int j = 0; j < cfg->depths[i]; j++)
            x = block(b, fmt(b, "layers.%d.blocks.%d", i, j), x, Ci, mc_model_hidden(cfg, i));
        /* a backbone output: the stage before its downsample, through outnorm<i> */
        if (nf < cfg->nout && cfg->out_indices[nf] == i) feats[nf++] = layernorm(b, fmt(b, "outnorm%d", i), x);
        if (nf == cfg->nout && cfg->nout) break; /* later stages feed nothing */
        if (i < cfg->nstages - 1) x = downsample(b, fmt(b, "layers.%d.downsample.conv", i), x, Ci);
    }
    if (cfg->head) {
        x = uper_head(b, cfg, feats, nf);
        x = resize(b, "seg.resize", x, H, W_, cfg->align_corners);
        mc_graph_add_output(g, to_nchw(b, "seg_logits", x));
    } else if (cfg->nout) {
        for (int i = 0; i < nf; i++) mc_graph_add_output(g, to_nchw(b, fmt(b, "stage%d", cfg->out_indices[i]), feats[i]));
    } else {
        x = layernorm(b, "norm", x);
        x = unary(b, OP_MEAN_HW, "pool", x);
        x = linear(b, "head.weight", "head.bias", "head", x, cfg->num_classes);
        mc_graph_add_output(g, x);
    }
    return 0;
}
