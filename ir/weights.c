/* ir/weights.c -- the weights store: the model's constants, by key.
 *
 * Takes tensors (name, dtype, shape, malloc'd data) from whoever reads or
 * makes them (the checkpoint readers, random weights, passes that fold
 * constants); owns every tensor's name and data (mc_weights_free).
 */
#include "weights.h"
#include "../runtime/mc_file.h"
#include <stdlib.h>
#include <string.h>

void
mc_weights_init(WeightStore *ws)
{
    memset(ws, 0, sizeof *ws);
}

void
mc_weights_free(WeightStore *ws)
{
    mc_weights_truncate(ws, 0, 0);
    free(ws->t);
    free(ws->skipped);
    free(ws->source);
    for (int i = 0; ws->classes && i < ws->nclasses; i++)
        free(ws->classes[i]);
    free(ws->classes);
    free(ws->palette);
    memset(ws, 0, sizeof *ws);
}

void
mc_weights_truncate(WeightStore *ws, int n, int nskipped)
{
    for (int i = n; i < ws->n; i++) {
        free(ws->t[i].name);
        free(ws->t[i].data);
    }
    for (int i = nskipped; i < ws->nskipped; i++)
        free(ws->skipped[i].name);
    if (n < ws->n)
        ws->n = n;
    if (nskipped < ws->nskipped)
        ws->nskipped = nskipped;
}

int
mc_weights_skip(WeightStore *ws, const char *name, const char *dtype, size_t dtype_len)
{
    if (ws->nskipped == ws->skipcap) {
        int nc = ws->skipcap ? ws->skipcap * 2 : 16;
        WSkipped *ns = realloc(ws->skipped, (size_t)nc * sizeof *ns);
        if (!ns)
            return -1;
        ws->skipped = ns;
        ws->skipcap = nc;
    }
    char *nm = strdup(name);
    if (!nm)
        return -1;
    WSkipped *s = &ws->skipped[ws->nskipped++];
    s->name = nm;
    mc_str_escape(s->dtype, sizeof s->dtype, dtype, dtype_len > 20 ? 20 : dtype_len);
    return 0;
}

static size_t
tensor_bytes(DType dt, const Shape *s)
{
    return (size_t)mc_shape_numel(s) * (size_t)mc_dtype_size(dt);
}

WTensor *
mc_weights_append(WeightStore *ws, const char *name, DType dt, DType orig, const Shape *s, void *data)
{
    if (ws->n == ws->cap) {
        int nc = ws->cap ? ws->cap * 2 : 64;
        WTensor *nt = realloc(ws->t, (size_t)nc * sizeof *nt);
        if (!nt)
            return NULL;
        ws->t = nt;
        ws->cap = nc;
    }
    char *nm = strdup(name);
    if (!nm)
        return NULL;
    WTensor *t = &ws->t[ws->n++];
    memset(t, 0, sizeof *t);
    t->name = nm;
    t->dtype = dt;
    t->orig = orig;
    t->shape = *s;
    t->data = data;
    t->nbytes = tensor_bytes(dt, s);
    return t;
}

WTensor *
mc_weights_put(WeightStore *ws, const char *name, DType dt, DType orig, const Shape *s, void *data)
{
    WTensor *t = mc_weights_find(ws, name);
    if (t) {
        free(t->data);
        t->dtype = dt;
        t->orig = orig;
        t->shape = *s;
        t->data = data;
        t->nbytes = tensor_bytes(dt, s);
        t->used = 0;
        return t;
    }
    return mc_weights_append(ws, name, dt, orig, s, data);
}

WTensor *
mc_weights_find(const WeightStore *ws, const char *name)
{
    for (int i = 0; i < ws->n; i++)
        if (strcmp(ws->t[i].name, name) == 0)
            return &ws->t[i];
    return NULL;
}
