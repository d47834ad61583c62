/* frontend/pth.c -- torch.save checkpoints (.pth/.pt) into a WeightStore.
 *
 * Takes a zip archive (zip.c) holding <prefix>/data.pkl and the raw storages
 * <prefix>/data/<key>; runs the pickle symbolically (pickle.c) and
 * interprets only torch._utils._rebuild_tensor_v2/_v3/_rebuild_tensor,
 * _rebuild_parameter(_with_state) and torch._tensor._rebuild_from_type_v2
 * calls whose storages are persistent ids ('storage', torch.<T>Storage,
 * key, location, numel).  Produces one
 * contiguous tensor per key of the chosen dict ("model", else "state_dict",
 * else the top level), "module." then "backbone." stripped; tensors under
 * auxiliary_head., neck., rpn_head. and roi_head. (training parts and other
 * models of mmseg/mmdet checkpoints) are skipped with one note.  Tensors of
 * a dtype we do not read (uint8, bool, int8, ...) are recorded by name and
 * dtype only (mc_weights_skip).  An mmengine checkpoint's
 * meta.dataset_meta.classes and .palette are checked and kept in the store.
 * Everything else in the pickle (optimizer state, message hubs and configs
 * of foreign classes, ...) is skipped unread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pickle.h"
#include "weights.h"
#include "zip.h"
#include "mc_file.h"

typedef struct Pth {
    ZipArchive z;
    ZipEntry **sorted;   /* entries sorted by name, for lookup */
    const char *prefix;  /* "<archive>/" */
    size_t plen;
    const char *name;
    size_t out_bytes, out_cap;
    McErr *err;
    const char *unsup;   /* make_tensor returned 2: the dtype's name */
    size_t unsup_len;
} Pth;

static int
cmp_entry(const void *a, const void *b)
{
    return strcmp((*(ZipEntry *const *)a)->name, (*(ZipEntry *const *)b)->name);
}

static ZipEntry *
find_entry(Pth *p, const char *key, uint32_t klen)
{
    size_t n = p->plen + 5 + klen;
    char *full = malloc(n + 1);
    if (!full)
        return NULL;
    memcpy(full, p->prefix, p->plen);
    memcpy(full + p->plen, "data/", 5);
    memcpy(full + p->plen + 5, key, klen);
    full[n] = 0;
    size_t lo = 0, hi = (size_t)p->z.n;
    ZipEntry *r = NULL;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(p->sorted[mid]->name, full);
        if (c == 0) {
            r = p->sorted[mid];
            break;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    free(full);
    return r;
}

static int
storage_type(const PVal *g, DType *dt, int *untyped)
{
    static const struct { const char *n; DType t; } map[] = {
        {"FloatStorage", DT_F32}, {"DoubleStorage", DT_F64}, {"HalfStorage", DT_F16},
        {"BFloat16Storage", DT_BF16}, {"LongStorage", DT_I64}, {"IntStorage", DT_I32},
    };
    *untyped = 0;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (mc_pv_global_is(g, "torch", map[i].n)) {
            *dt = map[i].t;
            return 0;
        }
    if (mc_pv_global_is(g, "torch", "UntypedStorage") || mc_pv_global_is(g, "torch", "ByteStorage")) {
        *untyped = 1;
        return 0;
    }
    return -1;
}

/* Sets p->unsup to the dtype name of a storage class we do not read
 * (torch.ByteStorage -> "uint8"; an unknown class by its own name). */
static int
unsupported(Pth *p, const PVal *g)
{
    static const struct { const char *cls, *dt; } map[] = {
        {"ByteStorage", "uint8"}, {"CharStorage", "int8"}, {"ShortStorage", "int16"},
        {"BoolStorage", "bool"}, {"ComplexFloatStorage", "complex64"},
        {"ComplexDoubleStorage", "complex128"},
    };
    p->unsup = g->s2;
    p->unsup_len = g->len2;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (mc_pv_global_is(g, "torch", map[i].cls)) {
            p->unsup = map[i].dt;
            p->unsup_len = strlen(map[i].dt);
        }
    return 2;
}

static int
torch_dtype(const PVal *g, DType *dt)
{
    static const struct { const char *n; DType t; } map[] = {
        {"float32", DT_F32}, {"float", DT_F32}, {"float64", DT_F64}, {"double", DT_F64},
        {"float16", DT_F16}, {"half", DT_F16}, {"bfloat16", DT_BF16}, {"int64", DT_I64},
        {"long", DT_I64}, {"int32", DT_I32}, {"int", DT_I32},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (mc_pv_global_is(g, "torch", map[i].n)) {
            *dt = map[i].t;
            return 0;
        }
    return -1;
}

static int
terr(Pth *p, const char *key, const char *what)
{
    char k[300];
    return mc_err(p->err, "%s: tensor '%s': %s", p->name, MC_ESC(k, key), what);
}

/* Whether v is a call of a function make_tensor interprets. */
static int
tensor_call(const PVal *v)
{
    static const char *const fns[][2] = {
        {"torch._utils", "_rebuild_parameter"}, {"torch._utils", "_rebuild_parameter_with_state"},
        {"torch._tensor", "_rebuild_from_type_v2"}, {"torch._utils", "_rebuild_tensor_v3"},
        {"torch._utils", "_rebuild_tensor_v2"}, {"torch._utils", "_rebuild_tensor"},
    };
    for (size_t i = 0; v && v->kind == PV_CALL && i < sizeof fns / sizeof *fns; i++)
        if (mc_pv_global_is(v->a, fns[i][0], fns[i][1]))
            return 1;
    return 0;
}

/* Turns value v (for dict key `key`) into a store tensor.  Returns 1 when a
 * tensor was produced (*out filled), 2 for a tensor of a dtype we do not
 * read (p->unsup names it), 0 when v is not a tensor (skipped), -1 on a
 * malformed tensor. */
static int
make_tensor(Pth *p, const char *key, const PVal *v, int depth, WTensor *out)
{
    if (!tensor_call(v) || depth > 4)
        return 0;
    const PVal *fn = v->a, *args = v->b;
    if (mc_pv_global_is(fn, "torch._utils", "_rebuild_parameter") ||
        mc_pv_global_is(fn, "torch._utils", "_rebuild_parameter_with_state")) {
        if (args->kind != PV_TUPLE || args->n < 1)
            return terr(p, key, "_rebuild_parameter without arguments");
        return make_tensor(p, key, args->items[0], depth + 1, out);
    }
    if (mc_pv_global_is(fn, "torch._tensor", "_rebuild_from_type_v2")) {
        /* (func, type, args, state): a Tensor subclass; rebuild func(*args) */
        if (args->kind != PV_TUPLE || args->n < 3)
            return terr(p, key, "_rebuild_from_type_v2 with too few arguments");
        PVal inner = {.kind = PV_CALL};
        inner.a = args->items[0];
        inner.b = args->items[2];
        return make_tensor(p, key, &inner, depth + 1, out);
    }
    int v3 = mc_pv_global_is(fn, "torch._utils", "_rebuild_tensor_v3");
    if (args->kind != PV_TUPLE || args->n < (v3 ? 7 : 4))
        return terr(p, key, "rebuild call with too few arguments");
    const PVal *ps = args->items[0], *po = args->items[1], *psz = args->items[2], *pst = args->items[3];
    if (ps->kind != PV_PERSID || ps->a->kind != PV_TUPLE || ps->a->n < 5)
        return terr(p, key, "storage is not a persistent id ('storage', type, key, location, numel)");
    PVal **pid = ps->a->items;
    if (!mc_pv_str_eq(pid[0], "storage") || pid[1]->kind != PV_GLOBAL || pid[2]->kind != PV_STR ||
        pid[4]->kind != PV_INT)
        return terr(p, key, "malformed storage persistent id");
    DType dt = DT_F32;
    int untyped;
    if (storage_type(pid[1], &dt, &untyped))
        return unsupported(p, pid[1]); /* bool, int8, complex...: named, not read */
    if (v3 && torch_dtype(args->items[6], &dt))
        return args->items[6]->kind == PV_GLOBAL ? unsupported(p, args->items[6])
                                                 : terr(p, key, "the tensor's dtype is not a torch dtype");
    if (untyped && !v3 && mc_pv_global_is(pid[1], "torch", "ByteStorage"))
        return unsupported(p, pid[1]); /* torch.save's uint8 tensors */
    if (untyped && !v3)
        return terr(p, key, "untyped storage without a dtype");
    int64_t es = mc_dtype_size(dt);
    int64_t snumel = pid[4]->i; /* in elements of the storage type (bytes if untyped) */
    if (snumel < 0)
        return terr(p, key, "negative storage size");
    ZipEntry *e = find_entry(p, pid[2]->s, pid[2]->len);
    if (!e) {
        char k[200], sk[80];
        snprintf(k, sizeof k, "storage 'data/%s' is missing from the archive",
                 mc_str_escape(sk, sizeof sk, pid[2]->s, pid[2]->len > 40 ? 40 : pid[2]->len));
        return terr(p, key, k);
    }
    const uint8_t *data;
    size_t dlen;
    if (mc_zip_data(&p->z, e, &data, &dlen, p->err))
        return -1;
    uint64_t sbytes;
    if (mc_mul_u64((uint64_t)snumel, (uint64_t)(untyped ? 1 : es), &sbytes) || sbytes > dlen)
        return terr(p, key, "storage is larger than its archive entry (truncated?)");
    if (po->kind != PV_INT || po->i < 0)
        return terr(p, key, "bad storage offset");
    if (psz->kind != PV_TUPLE || pst->kind != PV_TUPLE || psz->n != pst->n)
        return terr(p, key, "size and stride must be tuples of the same length");
    if (psz->n > MC_MAX_RANK)
        return terr(p, key, "rank too large");
    Shape s = {.rank = psz->n};
    int64_t stride[MC_MAX_RANK];
    uint64_t numel, maxidx = (uint64_t)po->i, ob;
    for (int i = 0; i < psz->n; i++) {
        if (psz->items[i]->kind != PV_INT || pst->items[i]->kind != PV_INT || psz->items[i]->i < 0 ||
            pst->items[i]->i < 0)
            return terr(p, key, "size/stride entries must be non-negative integers");
        s.d[i] = psz->items[i]->i;
        stride[i] = pst->items[i]->i;
    }
    DType st = mc_weights_store_type(dt);
    if (mc_dims_numel(s.d, s.rank, (uint64_t)mc_dtype_size(st), &numel, &ob))
        return terr(p, key, "size is too large (its dimensions multiply past 2^63 bytes)");
    if (numel > 0) {
        for (int i = 0; i < s.rank; i++) {
            uint64_t t;
            if (mc_mul_u64((uint64_t)(s.d[i] - 1), (uint64_t)stride[i], &t) || mc_add_u64(maxidx, t, &maxidx))
                return terr(p, key, "view extent overflows");
        }
        uint64_t endb;
        if (maxidx + 1 == 0 || mc_mul_u64(maxidx + 1, (uint64_t)es, &endb) || endb > sbytes)
            return terr(p, key, "view (offset, size, stride) reaches past the end of its storage");
    }
    if (ob > p->out_cap || p->out_bytes + ob > p->out_cap)
        return terr(p, key, "tensor data would exceed 8x the file size (storages shared too often?)");
    size_t nb = 0;
    void *buf = mc_weights_gather(dt, data, po->i, &s, stride, &nb);
    if (!buf)
        return terr(p, key, "out of memory");
    p->out_bytes += nb;
    memset(out, 0, sizeof *out);
    out->dtype = st;
    out->orig = dt;
    out->shape = s;
    out->data = buf;
    out->nbytes = nb;
    return 1;
}

static uint64_t
hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

/* Parts of mmseg/mmdet state dicts that are not the model mambac builds:
 * the training-only auxiliary head and other models' necks and heads. */
static const char *const other_parts[] = {"auxiliary_head.", "neck.", "rpn_head.", "roi_head."};
#define NPARTS ((int)(sizeof other_parts / sizeof *other_parts))

/* The index in other_parts of the part key s (n bytes) is in, or -1. */
static int
other_part(const char *s, uint32_t n)
{
    for (int i = 0; i < NPARTS; i++) {
        size_t m = strlen(other_parts[i]);
        if (n >= m && memcmp(s, other_parts[i], m) == 0)
            return i;
    }
    return -1;
}

/* One note for the tensors of other_parts that extract skipped. */
static void
note_other_parts(const Pth *p, const int *count)
{
    char parts[80] = "";
    int total = 0;
    for (int i = 0; i < NPARTS; i++) {
        if (!count[i])
            continue;
        size_t k = strlen(parts);
        snprintf(parts + k, sizeof parts - k, "%s%.*s", total ? ", " : "", (int)strlen(other_parts[i]) - 1,
                 other_parts[i]);
        total += count[i];
    }
    if (total)
        mc_note("%s: skipped %d tensor%s of %s (not part of this model)", p->name, total, total == 1 ? "" : "s",
                parts);
}

static void
free_names(char **names, int n)
{
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

/* meta.dataset_meta of an mmengine checkpoint: "classes" (a tuple or list
 * of str) and "palette" (one [r, g, b] of integers 0..255 per class), both
 * optional (None is absent).  On success *names and *colours are malloc'd,
 * or NULL when absent; -1 with a message when they are malformed. */
static int
dataset_meta(Pth *p, const PVal *top, char ***names, uint8_t (**colours)[3], int *n)
{
    const PVal *dm = mc_pv_dict_get(mc_pv_dict_get(top, "meta"), "dataset_meta");
    const PVal *cl = mc_pv_dict_get(dm, "classes"), *pal = mc_pv_dict_get(dm, "palette");
    *names = NULL;
    *colours = NULL;
    *n = 0;
    if (cl && cl->kind == PV_NONE)
        cl = NULL;
    if (pal && pal->kind == PV_NONE)
        pal = NULL;
    if (!cl && pal)
        return mc_err(p->err, "%s: meta.dataset_meta has a palette but no classes", p->name);
    if (!cl)
        return 0;
    if (cl->kind != PV_TUPLE && cl->kind != PV_LIST)
        return mc_err(p->err, "%s: meta.dataset_meta.classes is not a tuple or list of class names", p->name);
    if (pal && pal->kind != PV_TUPLE && pal->kind != PV_LIST)
        return mc_err(p->err, "%s: meta.dataset_meta.palette is not a list of [r, g, b] colours", p->name);
    if (pal && pal->n != cl->n)
        return mc_err(p->err, "%s: meta.dataset_meta.palette has %d colour%s for %d class%s", p->name, pal->n,
                      pal->n == 1 ? "" : "s", cl->n, cl->n == 1 ? "" : "es");
    for (int i = 0; i < cl->n; i++) {
        const PVal *c = cl->items[i];
        if (c->kind != PV_STR || memchr(c->s, 0, c->len))
            return mc_err(p->err, "%s: meta.dataset_meta.classes[%d] is not a class name (a string)", p->name, i);
    }
    for (int i = 0; pal && i < pal->n; i++) {
        const PVal *c = pal->items[i];
        int ok = (c->kind == PV_TUPLE || c->kind == PV_LIST) && c->n == 3;
        for (int k = 0; ok && k < 3; k++)
            ok = c->items[k]->kind == PV_INT && c->items[k]->i >= 0 && c->items[k]->i <= 255;
        if (!ok)
            return mc_err(p->err, "%s: meta.dataset_meta.palette[%d] is not [r, g, b] with integers 0..255",
                          p->name, i);
    }
    if (cl->n == 0)
        return 0;
    *names = calloc((size_t)cl->n, sizeof **names);
    *colours = pal ? malloc((size_t)cl->n * sizeof **colours) : NULL;
    if (!*names || (pal && !*colours))
        goto oom;
    for (int i = 0; i < cl->n; i++) {
        const PVal *c = cl->items[i];
        if (!((*names)[i] = malloc(c->len + 1u)))
            goto oom;
        memcpy((*names)[i], c->s, c->len);
        (*names)[i][c->len] = 0;
        for (int k = 0; pal && k < 3; k++)
            (*colours)[i][k] = (uint8_t)pal->items[i]->items[k]->i;
    }
    *n = cl->n;
    return 0;
oom:
    free_names(*names, cl->n);
    free(*colours);
    *names = NULL;
    *colours = NULL;
    return mc_err(p->err, "%s: out of memory", p->name);
}

static int
extract(Pth *p, const PVal *top, WeightStore *ws)
{
    if (!top || top->kind != PV_DICT)
        return mc_err(p->err, "%s: the pickled object is not a dict (torch.save of a whole model is "
                      "not supported; save model.state_dict())", p->name);
    const PVal *sel = mc_pv_dict_get(top, "model");
    if (!sel || sel->kind != PV_DICT)
        sel = mc_pv_dict_get(top, "state_dict");
    if (!sel || sel->kind != PV_DICT)
        sel = top;
    char **names;
    uint8_t (*colours)[3];
    int nc, nother[NPARTS] = {0};
    if (dataset_meta(p, top, &names, &colours, &nc))
        return -1;
    int np = sel->n / 2;
    /* keys (with "module." and "backbone." stripped) and "a later entry has
     * the same key" */
    char **keys = calloc((size_t)np + 1, sizeof *keys);
    size_t hcap = 16;
    while (hcap < (size_t)np * 2)
        hcap *= 2;
    int *ht = malloc(hcap * sizeof *ht);
    int rc = 0, prior = ws->n > 0, found = 0, n0 = ws->n, s0 = ws->nskipped;
    if (!keys || !ht) {
        rc = mc_err(p->err, "%s: out of memory", p->name);
        goto done;
    }
    for (size_t i = 0; i < hcap; i++)
        ht[i] = -1;
    for (int i = np - 1; i >= 0; i--) {
        const PVal *k = sel->items[2 * i];
        if (k->kind != PV_STR)
            continue;
        const char *s = k->s;
        uint32_t n = k->len;
        if (n >= 7 && memcmp(s, "module.", 7) == 0)
            s += 7, n -= 7;
        if (n >= 9 && memcmp(s, "backbone.", 9) == 0)
            s += 9, n -= 9;
        int part = other_part(s, n);
        if (part >= 0) {
            nother[part] += tensor_call(sel->items[2 * i + 1]);
            continue;
        }
        if (memchr(s, 0, n))
            continue;
        keys[i] = malloc(n + 1);
        if (!keys[i]) {
            rc = mc_err(p->err, "%s: out of memory", p->name);
            goto done;
        }
        memcpy(keys[i], s, n);
        keys[i][n] = 0;
        size_t h = hash_str(keys[i]) & (hcap - 1);
        int dup = 0;
        while (ht[h] >= 0) {
            if (strcmp(keys[ht[h]], keys[i]) == 0) {
                dup = 1;
                break;
            }
            h = (h + 1) & (hcap - 1);
        }
        if (dup) {
            free(keys[i]);
            keys[i] = NULL;
        } else
            ht[h] = i;
    }
    for (int i = 0; i < np; i++) {
        if (!keys[i])
            continue;
        WTensor t;
        int r = make_tensor(p, keys[i], sel->items[2 * i + 1], 0, &t);
        if (r < 0) {
            rc = -1;
            goto done;
        }
        if (r == 0)
            continue;
        found++;
        if (r == 2) {
            if (mc_weights_skip(ws, keys[i], p->unsup, p->unsup_len)) {
                rc = mc_err(p->err, "%s: out of memory", p->name);
                goto done;
            }
            continue;
        }
        WTensor *w = prior ? mc_weights_put(ws, keys[i], t.dtype, t.orig, &t.shape, t.data)
                           : mc_weights_append(ws, keys[i], t.dtype, t.orig, &t.shape, t.data);
        if (!w) {
            free(t.data);
            rc = mc_err(p->err, "%s: out of memory", p->name);
            goto done;
        }
    }
    for (int i = 0; i < NPARTS; i++)
        found += nother[i];
    if (!found)
        rc = mc_err(p->err, "%s: no tensors found (looked in 'model', 'state_dict' and the top-level dict)",
                    p->name);
done:
    if (rc < 0 && !prior) /* leave the store as it was */
        mc_weights_truncate(ws, n0, s0);
    if (rc == 0) {
        note_other_parts(p, nother);
        if (names) { /* a later file's classes replace the earlier ones */
            free_names(ws->classes, ws->nclasses);
            free(ws->palette);
            ws->classes = names;
            ws->palette = colours;
            ws->nclasses = nc;
            names = NULL;
            colours = NULL;
        }
    }
    free_names(names, nc);
    free(colours);
    if (keys)
        for (int i = 0; i < np; i++)
            free(keys[i]);
    free(keys);
    free(ht);
    return rc;
}

int
mc_pth_load_mem(const uint8_t *buf, size_t len, const char *name, WeightStore *ws, McErr *err)
{
    Pth p = {.name = name, .err = err};
    if (len < 4 || memcmp(buf, "PK\3\4", 4) != 0)
        return mc_err(err, "%s: not a torch.save checkpoint (no zip header; legacy non-zip .pth "
                      "files are not supported, re-save with a recent torch.save)", name);
    if (mc_zip_open(&p.z, buf, len, name, err))
        return -1;
    int rc = -1;
    ZipEntry *pkl = NULL;
    for (int i = 0; i < p.z.n; i++) {
        const char *nm = p.z.e[i].name, *sl = strchr(nm, '/');
        if (sl && strcmp(sl + 1, "data.pkl") == 0) {
            pkl = &p.z.e[i];
            p.prefix = nm;
            p.plen = (size_t)(sl - nm) + 1;
            break;
        }
    }
    if (!pkl) {
        mc_err(err, "%s: zip archive has no <name>/data.pkl entry (not a torch.save file)", name);
        goto out;
    }
    char bo[512];
    snprintf(bo, sizeof bo, "%.*sbyteorder", (int)(p.plen < 400 ? p.plen : 400), p.prefix);
    ZipEntry *boe = mc_zip_find(&p.z, bo);
    const uint8_t *bod;
    size_t bol;
    if (boe) {
        if (mc_zip_data(&p.z, boe, &bod, &bol, err))
            goto out;
        if (!(bol == 6 && memcmp(bod, "little", 6) == 0)) {
            char bs[80];
            mc_err(err, "%s: storages are not little-endian (byteorder '%s'); re-save on a "
                   "little-endian machine", name,
                   mc_str_escape(bs, sizeof bs, (const char *)bod, bol > 16 ? 16 : bol));
            goto out;
        }
    }
    p.sorted = malloc((size_t)(p.z.n ? p.z.n : 1) * sizeof *p.sorted);
    if (!p.sorted) {
        mc_err(err, "%s: out of memory", name);
        goto out;
    }
    for (int i = 0; i < p.z.n; i++)
        p.sorted[i] = &p.z.e[i];
    qsort(p.sorted, (size_t)p.z.n, sizeof *p.sorted, cmp_entry);
    p.out_cap = len > SIZE_MAX / 8 - (1u << 20) ? SIZE_MAX : len * 8 + (1u << 20);
    const uint8_t *pk;
    size_t pklen;
    if (mc_zip_data(&p.z, pkl, &pk, &pklen, err))
        goto out;
    PickleCtx *ctx;
    PVal *top;
    if (mc_pickle_load(pk, pklen, name, &ctx, &top, err) == 0)
        rc = extract(&p, top, ws);
    mc_pickle_free(ctx);
out:
    free(p.sorted);
    mc_zip_close(&p.z);
    return rc;
}

int
mc_pth_load(const char *path, WeightStore *ws, McErr *err)
{
    const uint8_t *buf;
    size_t len;
    if (mc_file_map(path, &buf, &len, err))
        return -1;
    int rc = mc_pth_load_mem(buf, len, path, ws, err);
    mc_file_unmap(buf, len);
    return rc;
}
