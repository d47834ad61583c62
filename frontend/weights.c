/* frontend/weights.c -- the model check and random weights (the store
 * itself is ir/weights.c).
 *
 * Takes tensors from the readers (pth.c, safetensors.c) or makes random
 * ones.  mc_weights_check compares the
 * store with the WEIGHT nodes of a graph and reports every problem at once
 * (a tensor of a dtype the readers skip is named with that dtype).
 * Also the readers' shared helpers (declared in zip.h): strided gather with
 * f16/bf16/f64 -> f32 conversion, and append without lookup.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "weights.h"
#include "zip.h"
#include "mc_file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the checkpoint readers assume a little-endian host"
#endif

/* ------------------------------------------------------------ conversion */

static float
f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalize */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 1024));
            u = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 1023) << 13;
        }
    } else if (exp == 31) {
        u = sign | 0x7F800000u | man << 13;
    } else {
        u = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float
bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

DType
mc_weights_store_type(DType dt)
{
    return (dt == DT_F16 || dt == DT_BF16 || dt == DT_F64) ? DT_F32 : dt;
}

/* Converts n elements of src (file type dt, element stride st) to dst. */
static void
convert_row(DType dt, const uint8_t *src, int64_t st, int64_t n, uint8_t *dst)
{
    int64_t es = mc_dtype_size(dt);
    float *fd = (float *)dst;
    switch (dt) {
    case DT_F16:
    case DT_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + i * st * es, 2);
            fd[i] = dt == DT_F16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
        break;
    case DT_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + i * st * es, 8);
            fd[i] = (float)d;
        }
        break;
    default: /* same type: copy */
        if (st == 1)
            memcpy(dst, src, (size_t)(n * es));
        else
            for (int64_t i = 0; i < n; i++)
                memcpy(dst + i * es, src + i * st * es, (size_t)es);
        break;
    }
}

void *
mc_weights_gather(DType dt, const uint8_t *src, int64_t offset, const Shape *s, const int64_t *stride,
                  size_t *nbytes)
{
    DType ot = mc_weights_store_type(dt);
    int64_t numel = mc_shape_numel(s), oes = mc_dtype_size(ot), ies = mc_dtype_size(dt);
    *nbytes = (size_t)(numel * oes);
    uint8_t *out = malloc(*nbytes ? *nbytes : 1);
    if (!out || numel == 0)
        return out;
    if (s->rank == 0) {
        convert_row(dt, src + offset * ies, 1, 1, out);
        return out;
    }
    int r = s->rank;
    int64_t inner = s->d[r - 1], ist = stride[r - 1], idx[MC_MAX_RANK] = {0};
    int64_t rows = numel / inner;
    for (int64_t row = 0; row < rows; row++) {
        int64_t base = offset;
        for (int k = 0; k < r - 1; k++)
            base += idx[k] * stride[k];
        convert_row(dt, src + base * ies, ist, inner, out + row * inner * oes);
        for (int k = r - 2; k >= 0; k--) { /* odometer over the outer dims */
            if (++idx[k] < s->d[k])
                break;
            idx[k] = 0;
        }
    }
    return out;
}

/* ------------------------------------------------------------ load */

static int
ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

int
mc_weights_load(const char *path, WeightStore *ws, McErr *err)
{
    const uint8_t *buf;
    size_t len;
    if (mc_file_map(path, &buf, &len, err))
        return -1;
    int rc;
    if (len >= 4 && memcmp(buf, "PK\3\4", 4) == 0)
        rc = mc_pth_load_mem(buf, len, path, ws, err);
    else if (len >= 10 && (buf[8] == '{' || ends_with(path, ".safetensors")))
        rc = mc_safetensors_load_mem(buf, len, path, ws, err); /* its own, precise messages */
    else
        rc = mc_err(err, "%s: not a checkpoint: neither a torch.save zip archive (.pth) nor a "
                    ".safetensors file", path);
    mc_file_unmap(buf, len);
    if (rc == 0) {
        free(ws->source);
        ws->source = strdup(path);
    }
    return rc;
}

/* ------------------------------------------------------------ check */

static uint64_t
hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

/* Name -> index of an array of structs whose first member is the name
 * (WTensor, WSkipped). */
typedef struct Index {
    int *slot;
    size_t cap;
    const char *base;
    size_t stride;
} Index;

#define IX_NAME(ix, i) (*(char *const *)(const void *)((ix)->base + (size_t)(i) * (ix)->stride))

static int
index_build(Index *ix, const void *base, int n, size_t stride)
{
    ix->base = base;
    ix->stride = stride;
    ix->cap = 16;
    while (ix->cap < (size_t)n * 2)
        ix->cap *= 2;
    ix->slot = malloc(ix->cap * sizeof *ix->slot);
    if (!ix->slot)
        return -1;
    for (size_t i = 0; i < ix->cap; i++)
        ix->slot[i] = -1;
    for (int i = 0; i < n; i++) {
        size_t h = hash_str(IX_NAME(ix, i)) & (ix->cap - 1);
        while (ix->slot[h] >= 0)
            h = (h + 1) & (ix->cap - 1);
        ix->slot[h] = i;
    }
    return 0;
}

/* The index of name, or -1; the last duplicate wins, like mc_weights_put. */
static int
index_find(const Index *ix, const char *name)
{
    size_t h = hash_str(name) & (ix->cap - 1);
    int r = -1;
    while (ix->slot[h] >= 0) {
        if (strcmp(IX_NAME(ix, ix->slot[h]), name) == 0)
            r = ix->slot[h];
        h = (h + 1) & (ix->cap - 1);
    }
    return r;
}

static void
shape_fmt(const Shape *s, char *buf, size_t n)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < s->rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)s->d[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* Appends a line to a bounded message buffer; counts what did not fit. */
typedef struct Msg {
    char buf[1800];
    size_t len;
    int dropped;
} Msg;

static void
msg_add(Msg *m, const char *line)
{
    size_t n = strlen(line);
    if (m->dropped || m->len + n + 1 >= sizeof m->buf - 40) {
        m->dropped++;
        return;
    }
    memcpy(m->buf + m->len, line, n);
    m->len += n;
    m->buf[m->len] = 0;
}

static int
starts_with(const char *s, const char *pre)
{
    return strncmp(s, pre, strlen(pre)) == 0;
}

/* Whether ws holds a tensor whose key starts with pre. */
static int
store_has(const WeightStore *ws, const char *pre)
{
    for (int i = 0; i < ws->n; i++)
        if (starts_with(ws->t[i].name, pre))
            return 1;
    return 0;
}

/* Why the weights are missing, when the missing keys say it: a
 * classification checkpoint for a backbone (no outnorm{i}), or a detection/
 * segmentation one for a classifier (no norm/head); else NULL. */
static const char *
missing_reason(const WeightStore *ws, int nmissing, int noutnorm, int nclassifier)
{
    int dense = store_has(ws, "outnorm") || store_has(ws, "decode_head.");
    if (nmissing && noutnorm == nmissing && !store_has(ws, "outnorm"))
        return "this is a classification checkpoint; a backbone (MODEL.BACKBONE) needs the outnorm{i} weights of a "
               "detection/segmentation checkpoint";
    if (nmissing && nclassifier == nmissing && dense)
        return "this is a detection/segmentation checkpoint (backbone outnorm{i} or decode_head weights, no "
               "classifier norm/head); a classifier needs a classification checkpoint, a backbone or segmentation "
               "model (MODEL.BACKBONE) takes this one";
    return NULL;
}

int
mc_weights_check(const Graph *g, WeightStore *ws, McErr *err)
{
    const char *src = ws->source ? ws->source : "(weights)";
    Index ix, sx;
    if (index_build(&ix, ws->t, ws->n, sizeof *ws->t))
        return mc_err(err, "weights %s: out of memory", src);
    if (index_build(&sx, ws->skipped, ws->nskipped, sizeof *ws->skipped)) {
        free(ix.slot);
        return mc_err(err, "weights %s: out of memory", src);
    }
    char *sused = calloc((size_t)ws->nskipped + 1, 1);
    if (!sused) {
        free(ix.slot);
        free(sx.slot);
        return mc_err(err, "weights %s: out of memory", src);
    }
    for (int i = 0; i < ws->n; i++)
        ws->t[i].used = 0;
    Msg m = {.len = 0}, miss = {.len = 0};
    int problems = 0, nmissing = 0, noutnorm = 0, nclassifier = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *nd = &g->nodes[i];
        if (nd->op != OP_WEIGHT)
            continue;
        char line[1024], a[160], b[160], ek[700];
        const char *key = nd->name ? nd->name : "";
        int ti = index_find(&ix, key), si = ti < 0 ? index_find(&sx, key) : -1;
        WTensor *t = ti >= 0 ? &ws->t[ti] : NULL;
        shape_fmt(&nd->shape, a, sizeof a);
        if (si >= 0) {
            sused[si] = 1;
            snprintf(line, sizeof line, "\n  unsupported dtype: tensor '%s' has dtype %s, which mambac does not "
                     "support (float32, float16, bfloat16 and float64 are, int64 and int32 for integer buffers)",
                     MC_ESC(ek, key), ws->skipped[si].dtype);
            msg_add(&m, line);
            problems++;
            continue;
        }
        if (!t) {
            snprintf(line, sizeof line, "\n  missing: %s %s", MC_ESC(ek, key), a);
            msg_add(&m, line);
            snprintf(line, sizeof line, "%s%s", nmissing ? ", " : "", ek);
            msg_add(&miss, line);
            problems++;
            nmissing++;
            noutnorm += starts_with(key, "outnorm");
            nclassifier += starts_with(key, "norm.") || starts_with(key, "head.");
            continue;
        }
        t->used = 1;
        if (!mc_shape_eq(&t->shape, &nd->shape)) {
            shape_fmt(&t->shape, b, sizeof b);
            snprintf(line, sizeof line, "\n  shape mismatch: %s expected %s got %s", MC_ESC(ek, key), a, b);
            msg_add(&m, line);
            problems++;
        } else if (t->dtype != nd->dtype) {
            snprintf(line, sizeof line, "\n  type mismatch: %s expected %s got %s", MC_ESC(ek, key),
                     mc_dtype_name(nd->dtype), mc_dtype_name(t->dtype));
            msg_add(&m, line);
            problems++;
        }
    }
    free(sx.slot);
    if (problems) {
        free(ix.slot);
        free(sused);
        const char *why = missing_reason(ws, nmissing, noutnorm, nclassifier);
        if (why && problems == nmissing) {
            if (miss.dropped)
                snprintf(miss.buf + miss.len, sizeof miss.buf - miss.len, ", ... (%d more)", miss.dropped);
            return mc_err(err, "weights %s: no %s: %s", src, miss.buf, why);
        }
        if (m.dropped)
            snprintf(m.buf + m.len, sizeof m.buf - m.len, "\n  ... and %d more", m.dropped);
        return mc_err(err, "weights %s: %d problem%s:%s%s%s", src, problems, problems == 1 ? "" : "s", m.buf,
                      why ? "\n  " : "", why ? why : "");
    }
    int unused = 0;
    Msg u = {.len = 0};
    for (int i = 0; i < ws->n; i++) {
        WTensor *t = &ws->t[i];
        if (t->used || (t->dtype == DT_I64 && ends_with(t->name, "num_batches_tracked")))
            continue;
        char line[600], ek[500];
        snprintf(line, sizeof line, "%s%s", unused ? ", " : "", MC_ESC(ek, t->name));
        msg_add(&u, line);
        unused++;
    }
    for (int i = 0; i < ws->nskipped; i++) {
        if (sused[i] || index_find(&ix, ws->skipped[i].name) >= 0) /* a later file's tensor replaced it */
            continue;
        char line[600], ek[500];
        snprintf(line, sizeof line, "%s%s (%s, not read)", unused ? ", " : "", MC_ESC(ek, ws->skipped[i].name),
                 ws->skipped[i].dtype);
        msg_add(&u, line);
        unused++;
    }
    free(sused);
    free(ix.slot);
    if (unused) {
        if (u.dropped)
            snprintf(u.buf + u.len, sizeof u.buf - u.len, ", ... (%d more)", u.dropped);
        mc_note("%d tensor%s in %s %s not used by the model: %s", unused, unused == 1 ? "" : "s", src,
                unused == 1 ? "is" : "are", u.buf);
    }
    return 0;
}

/* ------------------------------------------------------------ random */

static uint64_t
splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double
unif(uint64_t *s) /* (0, 1) */
{
    return ((double)(splitmix(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double
gauss(uint64_t *s)
{
    double u1 = unif(s), u2 = unif(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

typedef enum { R_NORMAL, R_UNIFORM, R_LOGUNIF, R_DTBIAS, R_ZERO } RKind;

static void
init_rule(const char *key, const Shape *s, RKind *k, double *a, double *b)
{
    const char *last = strrchr(key, '.');
    last = last ? last + 1 : key;
    *k = R_NORMAL;
    *a = 0;
    *b = 0.02;
    if (ends_with(key, ".running_var") || strcmp(last, "running_var") == 0) {
        *k = R_UNIFORM, *a = 0.5, *b = 2.0;
    } else if (strcmp(last, "A_logs") == 0) {
        *k = R_LOGUNIF, *a = 0.5, *b = 4.0;
    } else if (strcmp(last, "Ds") == 0) {
        *k = R_UNIFORM, *a = 0.5, *b = 1.5;
    } else if (strcmp(last, "dt_projs_bias") == 0) {
        *k = R_DTBIAS, *a = log(1e-3), *b = log(1e-1);
    } else if (strcmp(last, "alpha") == 0) {
        *k = R_UNIFORM, *a = 0.3, *b = 1.2;
    } else if (strstr(key, "state_fusion") && s->rank >= 2) {
        *b = 0.3;
    } else if (strcmp(last, "weight") == 0 &&
               (s->rank == 1 || strstr(key, "norm") || strstr(key, "ln_"))) {
        *k = R_UNIFORM, *a = 0.8, *b = 1.2;
    } else if (strcmp(last, "bias") == 0) {
        *b = 0.02;
    } else if ((strcmp(last, "weight") == 0 || ends_with(last, "_weight")) && s->rank >= 2) {
        int64_t fan = 1;
        for (int i = 1; i < s->rank; i++)
            fan *= s->d[i];
        *b = 1.0 / sqrt((double)(fan > 0 ? fan : 1));
    }
}

void
mc_weights_random_one(WeightStore *ws, const char *key, DType dtype, const Shape *shape, uint64_t seed)
{
    int64_t n = mc_shape_numel(shape);
    size_t es = (size_t)mc_dtype_size(dtype);
    void *data = calloc(n > 0 ? (size_t)n : 1, es);
    if (!data)
        mc_die("mc_weights_random: out of memory for %s", key);
    uint64_t st = seed ^ hash_str(key);
    RKind k;
    double a, b;
    init_rule(key, shape, &k, &a, &b);
    if (dtype == DT_F32) {
        float *f = data;
        for (int64_t j = 0; j < n; j++) {
            double v;
            switch (k) {
            case R_UNIFORM: v = a + (b - a) * unif(&st); break;
            case R_LOGUNIF: v = log(a + (b - a) * unif(&st)); break;
            case R_DTBIAS: {
                double dt = exp(a + (b - a) * unif(&st));
                v = dt + log(-expm1(-dt)); /* inverse softplus */
                break;
            }
            case R_ZERO: v = 0; break;
            default: v = a + b * gauss(&st); break;
            }
            f[j] = (float)v;
        }
    } /* integer weights stay zero */
    if (!mc_weights_put(ws, key, dtype, dtype, shape, data))
        mc_die("mc_weights_random: out of memory for %s", key);
}

void
mc_weights_random(const Graph *g, WeightStore *ws, uint64_t seed)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *nd = &g->nodes[i];
        if (nd->op == OP_WEIGHT) mc_weights_random_one(ws, nd->name ? nd->name : "", nd->dtype, &nd->shape, seed);
    }
}
