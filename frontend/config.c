/* frontend/config.c -- the public Spatial-Mamba config (YAML) into a ModelConfig.
 * Takes: the YAML text of a public config (a top-level MODEL mapping).
 * Produces: a validated ModelConfig (every value in range, every stage's MLP
 * with a hidden channel, the model within the parameter budget of
 * ir/budget.h); every user error carries file:line:col.
 * Owns: nothing after return (the YAML tree is freed before returning).
 *
 * Rules: keys outside MODEL are ignored except DATA.IMG_SIZE; unknown keys
 * directly under MODEL are ignored (the public code has many training-only
 * ones); an unknown key or a wrong type inside MODEL.SPATIALMAMBA is an error.
 */
#include "frontend.h"
#include "yamlutil.h"
#include "../ir/budget.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys of MODEL.SPATIALMAMBA in the public code; the last three are read and
 * type-checked but only matter for training/data loading. */
static const char *const sm_keys[] = {"EMBED_DIM", "DEPTHS", "D_STATE", "MLP_RATIO", "IN_CHANS",
                                      "PATCH_SIZE", "DT_INIT", "IMAGE_SIZE"};
#define N_SM_KEYS (int)(sizeof sm_keys / sizeof sm_keys[0])

static void
config_defaults(ModelConfig *cfg, const char *file)
{
    static const int def_depths[4] = {2, 2, 9, 2};
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->type, sizeof cfg->type, "spatial_mamba");
    snprintf(cfg->name, sizeof cfg->name, "spatial_mamba");
    snprintf(cfg->file, sizeof cfg->file, "%s", file);
    cfg->num_classes = 1000;
    cfg->embed_dim = 96;
    memcpy(cfg->depths, def_depths, sizeof def_depths);
    cfg->nstages = 4;
    cfg->d_state = 16;
    cfg->mlp_ratio = 4.0;
    cfg->in_chans = 3;
    cfg->patch_size = 4;
    cfg->img_size = cfg->img_w = 224;
    cfg->head_channels = 512;
    cfg->npool = 4;
    cfg->pool_scales[0] = 1, cfg->pool_scales[1] = 2, cfg->pool_scales[2] = 3, cfg->pool_scales[3] = 6;
    cfg->head_classes = 150;
    cfg->test_crop = 1;
    cfg->interp = 3; /* bicubic */
}

static void
set_pos(CfgPos *p, const YNode *n)
{
    p->line = n->line;
    p->col = n->col;
}

static int
get_int(const YDoc *d, const YNode *n, const char *what, int64_t lo, int64_t hi, int *out,
        McErr *err)
{
    int64_t v;
    if (y_int(d, n, what, lo, hi, &v, err)) return -1;
    *out = (int)v;
    return 0;
}

/* true/false (True/False, as Python writes them) */
static int
get_bool(const YDoc *d, const YNode *v, const char *what, int *out, McErr *err)
{
    char b[96];
    if (v->kind != YN_SCALAR || (strcmp(v->str, "true") && strcmp(v->str, "false") && strcmp(v->str, "True") &&
                                 strcmp(v->str, "False")))
        return y_err(d, v, err, "expected true or false for %s, got %s", what, y_desc(v, b, sizeof b));
    *out = v->str[0] == 't' || v->str[0] == 'T';
    return 0;
}

static int
copy_str(const YDoc *d, const YNode *n, const char *what, char *dst, size_t cap, McErr *err)
{
    const char *s;
    if (y_str(d, n, what, &s, err)) return -1;
    if (strlen(s) >= cap || strlen(s) != n->len)
        return y_err(d, n, err, "%s is too long or holds a NUL byte (at most %zu characters)",
                     what, cap - 1);
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

static int
parse_depths(const YDoc *d, const YNode *n, ModelConfig *cfg, McErr *err)
{
    char b[96];
    const char *what = "MODEL.SPATIALMAMBA.DEPTHS";
    if (n->kind != YN_SEQ)
        return y_err(d, n, err, "expected a list of integers for %s, got %s", what,
                     y_desc(n, b, sizeof b));
    if (n->nkids < 1 || n->nkids > MC_MAX_STAGES)
        return y_err(d, n, err, "%s must list 1 to %d stage depths, got %d", what, MC_MAX_STAGES,
                     n->nkids);
    int any = 0;
    for (int i = 0; i < n->nkids; i++) {
        char w[64];
        snprintf(w, sizeof w, "%s[%d]", what, i);
        if (get_int(d, n->kids[i], w, 0, MC_MAX_DEPTH, &cfg->depths[i], err)) return -1;
        any |= cfg->depths[i] > 0;
    }
    if (!any) return y_err(d, n, err, "%s: at least one stage needs a depth above 0", what);
    cfg->nstages = n->nkids;
    set_pos(&cfg->at_depths, n);
    return 0;
}

static int
parse_spatialmamba(const YDoc *d, const YNode *m, ModelConfig *cfg, McErr *err)
{
    char b[96];
    if (m->kind != YN_MAP)
        return y_err(d, m, err, "expected a mapping for MODEL.SPATIALMAMBA, got %s",
                     y_desc(m, b, sizeof b));
    if (y_check_dups(d, m, "MODEL.SPATIALMAMBA", err)) return -1;
    for (int i = 0; i < y_npairs(m); i++) {
        YNode *k = y_key(m, i), *v = y_val(m, i);
        int which = -1;
        for (int j = 0; j < N_SM_KEYS; j++)
            if (y_key_is(k, sm_keys[j])) which = j;
        if (which < 0) {
            char known[256] = "";
            for (int j = 0; j < N_SM_KEYS; j++) {
                strcat(known, sm_keys[j]);
                if (j + 1 < N_SM_KEYS) strcat(known, ", ");
            }
            return y_err(d, k, err, "unknown key %s in MODEL.SPATIALMAMBA (known: %s)",
                         y_desc(k, b, sizeof b), known);
        }
        switch (which) {
        case 0: /* EMBED_DIM */
            if (get_int(d, v, "MODEL.SPATIALMAMBA.EMBED_DIM", 1, 65536, &cfg->embed_dim, err))
                return -1;
            if (cfg->embed_dim % 2)
                return y_err(d, v, err,
                             "MODEL.SPATIALMAMBA.EMBED_DIM must be even (the stem uses "
                             "EMBED_DIM/2 channels), got %d", cfg->embed_dim);
            set_pos(&cfg->at_embed, v);
            break;
        case 1:
            if (parse_depths(d, v, cfg, err)) return -1;
            break;
        case 2:
            if (get_int(d, v, "MODEL.SPATIALMAMBA.D_STATE", 1, 1024, &cfg->d_state, err)) return -1;
            cfg->d_state_line = v->line;
            cfg->d_state_col = v->col;
            break;
        case 3:
            if (y_double(d, v, "MODEL.SPATIALMAMBA.MLP_RATIO", &cfg->mlp_ratio, err)) return -1;
            if (!(cfg->mlp_ratio > 0) || cfg->mlp_ratio > 1024)
                return y_err(d, v, err,
                             "MODEL.SPATIALMAMBA.MLP_RATIO must be above 0 (and at most 1024), "
                             "got %g", cfg->mlp_ratio);
            set_pos(&cfg->at_mlp, v);
            break;
        case 4:
            if (get_int(d, v, "MODEL.SPATIALMAMBA.IN_CHANS", 1, 4096, &cfg->in_chans, err))
                return -1;
            break;
        case 5: {
            int ps;
            if (get_int(d, v, "MODEL.SPATIALMAMBA.PATCH_SIZE", 1, 1024, &ps, err)) return -1;
            if (ps != 4)
                return y_err(d, v, err,
                             "MODEL.SPATIALMAMBA.PATCH_SIZE %d is not supported: the "
                             "Spatial-Mamba stem downsamples by exactly 4 (use 4)", ps);
            cfg->patch_size = ps;
            break;
        }
        case 6: { /* DT_INIT: training only */
            const char *s;
            if (y_str(d, v, "MODEL.SPATIALMAMBA.DT_INIT", &s, err)) return -1;
            break;
        }
        case 7: { /* IMAGE_SIZE: unused by the model; DATA.IMG_SIZE decides */
            int is;
            if (get_int(d, v, "MODEL.SPATIALMAMBA.IMAGE_SIZE", 1, 65536, &is, err)) return -1;
            break;
        }
        }
    }
    return 0;
}

/* A list of ints in lo..hi, 1..max entries, strictly increasing if `incr`. */
static int
int_list(const YDoc *d, const YNode *n, const char *what, int lo, int hi, int max, int incr, int *v, int *cnt,
         McErr *err)
{
    char b[96];
    if (n->kind != YN_SEQ)
        return y_err(d, n, err, "expected a list of integers for %s, got %s", what, y_desc(n, b, sizeof b));
    if (n->nkids < 1 || n->nkids > max)
        return y_err(d, n, err, "%s must list 1 to %d values, got %d", what, max, n->nkids);
    for (int i = 0; i < n->nkids; i++) {
        char w[96];
        snprintf(w, sizeof w, "%s[%d]", what, i);
        if (get_int(d, n->kids[i], w, lo, hi, &v[i], err)) return -1;
        if (incr && i && v[i] <= v[i - 1])
            return y_err(d, n->kids[i], err, "%s must be strictly increasing (%d follows %d)", what, v[i], v[i - 1]);
    }
    *cnt = n->nkids;
    return 0;
}

/* MODEL.BACKBONE: OUT_INDICES (checked against DEPTHS by mc_config_check). */
static int
parse_backbone(const YDoc *d, const YNode *m, ModelConfig *cfg, McErr *err)
{
    char b[96];
    if (m->kind != YN_MAP)
        return y_err(d, m, err, "expected a mapping for MODEL.BACKBONE, got %s", y_desc(m, b, sizeof b));
    if (y_check_dups(d, m, "MODEL.BACKBONE", err)) return -1;
    const YNode *oi = NULL;
    for (int i = 0; i < y_npairs(m); i++) {
        YNode *k = y_key(m, i);
        if (!y_key_is(k, "OUT_INDICES"))
            return y_err(d, k, err, "unknown key %s in MODEL.BACKBONE (known: OUT_INDICES)", y_desc(k, b, sizeof b));
        oi = y_val(m, i);
    }
    if (!oi) return y_err(d, m, err, "MODEL.BACKBONE needs OUT_INDICES (e.g. [0, 1, 2, 3])");
    if (int_list(d, oi, "MODEL.BACKBONE.OUT_INDICES", 0, MC_MAX_STAGES - 1, MC_MAX_STAGES, 1, cfg->out_indices,
                 &cfg->nout, err))
        return -1;
    for (int i = 0; i < cfg->nout; i++)
        if (cfg->out_indices[i] >= cfg->nstages)
            return y_err(d, oi->kids[i], err, "MODEL.BACKBONE.OUT_INDICES[%d] is %d, but DEPTHS lists %d stages (0..%d)",
                         i, cfg->out_indices[i], cfg->nstages, cfg->nstages - 1);
    return 0;
}

static const char *const head_keys[] = {"TYPE", "CHANNELS", "POOL_SCALES", "NUM_CLASSES", "ALIGN_CORNERS",
                                        "IN_INDEX", "DROPOUT_RATIO"};
#define N_HEAD_KEYS (int)(sizeof head_keys / sizeof head_keys[0])

/* MODEL.DECODE_HEAD (UPerHead). */
static int
parse_head(const YDoc *d, const YNode *m, ModelConfig *cfg, McErr *err)
{
    char b[96];
    if (m->kind != YN_MAP)
        return y_err(d, m, err, "expected a mapping for MODEL.DECODE_HEAD, got %s", y_desc(m, b, sizeof b));
    if (y_check_dups(d, m, "MODEL.DECODE_HEAD", err)) return -1;
    cfg->head = 1;
    set_pos(&cfg->at_head, m);
    for (int i = 0; i < y_npairs(m); i++) {
        YNode *k = y_key(m, i), *v = y_val(m, i);
        int which = -1;
        for (int j = 0; j < N_HEAD_KEYS; j++)
            if (y_key_is(k, head_keys[j])) which = j;
        switch (which) {
        case 0: {
            const char *s;
            if (y_str(d, v, "MODEL.DECODE_HEAD.TYPE", &s, err)) return -1;
            if (strcmp(s, "uper_head") && strcmp(s, "UPerHead"))
                return y_err(d, v, err, "MODEL.DECODE_HEAD.TYPE must be uper_head (the head mambac builds), got %s",
                             y_desc(v, b, sizeof b));
            break;
        }
        case 1:
            if (get_int(d, v, "MODEL.DECODE_HEAD.CHANNELS", 1, 65536, &cfg->head_channels, err)) return -1;
            break;
        case 2:
            if (int_list(d, v, "MODEL.DECODE_HEAD.POOL_SCALES", 1, 1024, MC_MAX_POOL_SCALES, 0, cfg->pool_scales,
                         &cfg->npool, err))
                return -1;
            break;
        case 3:
            if (get_int(d, v, "MODEL.DECODE_HEAD.NUM_CLASSES", 1, 100000, &cfg->head_classes, err)) return -1;
            break;
        case 4:
            if (get_bool(d, v, "MODEL.DECODE_HEAD.ALIGN_CORNERS", &cfg->align_corners, err)) return -1;
            break;
        case 5: { /* IN_INDEX: must be every backbone output, in order (checked below) */
            int v5[MC_MAX_STAGES], n5;
            if (int_list(d, v, "MODEL.DECODE_HEAD.IN_INDEX", 0, MC_MAX_STAGES - 1, MC_MAX_STAGES, 1, v5, &n5, err))
                return -1;
            for (int j = 0; j < n5; j++)
                if (v5[j] != j)
                    return y_err(d, v, err, "MODEL.DECODE_HEAD.IN_INDEX must be [0, 1, ..., n-1]: the head reads "
                                            "every backbone output in order");
            break;
        }
        case 6: { /* DROPOUT_RATIO: a no-op at inference */
            double r;
            if (y_double(d, v, "MODEL.DECODE_HEAD.DROPOUT_RATIO", &r, err)) return -1;
            break;
        }
        default: {
            char known[256] = "";
            for (int j = 0; j < N_HEAD_KEYS; j++) {
                strcat(known, head_keys[j]);
                if (j + 1 < N_HEAD_KEYS) strcat(known, ", ");
            }
            return y_err(d, k, err, "unknown key %s in MODEL.DECODE_HEAD (known: %s)", y_desc(k, b, sizeof b), known);
        }
        }
    }
    return 0;
}

static int
parse_model(const YDoc *d, const YNode *m, ModelConfig *cfg, McErr *err)
{
    char b[96];
    if (m->kind != YN_MAP)
        return y_err(d, m, err, "expected a mapping for MODEL, got %s", y_desc(m, b, sizeof b));
    if (y_check_dups(d, m, "MODEL", err)) return -1;
    for (int i = 0; i < y_npairs(m); i++) {
        YNode *k = y_key(m, i), *v = y_val(m, i);
        if (y_key_is(k, "TYPE")) {
            if (copy_str(d, v, "MODEL.TYPE", cfg->type, sizeof cfg->type, err)) return -1;
            if (strcmp(cfg->type, "spatial_mamba") != 0)
                return y_err(d, v, err,
                             "MODEL.TYPE must be spatial_mamba (the only model this compiler "
                             "builds), got %s", y_desc(v, b, sizeof b));
        } else if (y_key_is(k, "NAME")) {
            if (copy_str(d, v, "MODEL.NAME", cfg->name, sizeof cfg->name, err)) return -1;
        } else if (y_key_is(k, "NUM_CLASSES")) {
            if (get_int(d, v, "MODEL.NUM_CLASSES", 1, 10000000, &cfg->num_classes, err)) return -1;
        } else if (y_key_is(k, "SPATIALMAMBA")) {
            set_pos(&cfg->at_model, k);
            if (parse_spatialmamba(d, v, cfg, err)) return -1;
        }
    }
    /* after SPATIALMAMBA (DEPTHS), whatever the key order */
    const YNode *bb = y_get(m, "BACKBONE"), *hd = y_get(m, "DECODE_HEAD");
    if (bb && parse_backbone(d, bb, cfg, err)) return -1;
    if (hd) {
        if (parse_head(d, hd, cfg, err)) return -1;
        if (!bb) return y_err(d, hd, err, "MODEL.DECODE_HEAD needs MODEL.BACKBONE.OUT_INDICES (the features it reads)");
        if (cfg->nout != cfg->nstages)
            return y_err(d, y_get(bb, "OUT_INDICES"), err,
                         "MODEL.DECODE_HEAD reads every stage: MODEL.BACKBONE.OUT_INDICES must be [0, ..., %d]",
                         cfg->nstages - 1);
    }
    /* DROP_PATH_RATE, DDP, DROP_RATE, LABEL_SMOOTHING, PRETRAINED, RESUME,
     * MMCKPT and anything else under MODEL: training-only, ignored. */
    return 0;
}

/* The evaluation transform's keys (docs/images.md): DATA.INTERPOLATION
 * (bicubic, bilinear, nearest; "random", a training-time choice, means
 * bilinear at evaluation as in the public code) and TEST.CROP. */
static int
parse_eval(const YDoc *d, const YNode *data, const YNode *test, ModelConfig *cfg, McErr *err)
{
    char b[96];
    const YNode *v = y_get(data, "INTERPOLATION");
    if (v) {
        static const char *const names[] = {"nearest", "bilinear", "bicubic", "random"};
        static const int codes[] = {0, 2, 3, 2};
        int k = -1;
        for (int i = 0; i < 4 && v->kind == YN_SCALAR; i++)
            if (!strcmp(v->str, names[i])) k = i;
        if (k < 0)
            return y_err(d, v, err, "DATA.INTERPOLATION must be bicubic, bilinear, nearest or random, got %s",
                         y_desc(v, b, sizeof b));
        cfg->interp = codes[k];
    }
    if (!test) return 0;
    if (test->kind != YN_MAP)
        return y_err(d, test, err, "expected a mapping for TEST, got %s", y_desc(test, b, sizeof b));
    if (y_check_dups(d, test, "TEST", err)) return -1;
    v = y_get(test, "CROP");
    return v ? get_bool(d, v, "TEST.CROP", &cfg->test_crop, err) : 0;
}

int
mc_config_load_mem(const char *text, size_t len, const char *name, ModelConfig *cfg, McErr *err)
{
    char b[96];
    const char *file = name ? name : "<config>";
    config_defaults(cfg, file);
    YDoc d;
    if (mc_ydoc_load(&d, text, len, file, err)) return -1;
    int rc = -1;
    const YNode *r = d.root;
    if (!r || y_is_null(r)) {
        mc_err_at(err, file, 0, 0, "empty config (expected a mapping with a MODEL key)");
        goto out;
    }
    if (r->kind != YN_MAP) {
        y_err(&d, r, err, "expected a mapping with a MODEL key at the top level, got %s",
              y_desc(r, b, sizeof b));
        goto out;
    }
    for (int i = 0; i < y_npairs(r); i++) {
        const YNode *k = y_key(r, i);
        if (!y_key_is(k, "MODEL") && !y_key_is(k, "DATA") && !y_key_is(k, "TEST")) continue;
        for (int j = 0; j < i; j++)
            if (y_key_is(y_key(r, j), k->str)) {
                y_err(&d, k, err, "duplicate key '%s' at the top level (first at %d:%d)", k->str,
                      y_key(r, j)->line, y_key(r, j)->col);
                goto out;
            }
    }
    const YNode *model = y_get(r, "MODEL");
    if (!model) {
        y_err(&d, r, err, "no MODEL section: this is not a Spatial-Mamba config");
        goto out;
    }
    if (!cfg->at_model.line) set_pos(&cfg->at_model, model);
    if (parse_model(&d, model, cfg, err)) goto out;
    const YNode *data = y_get(r, "DATA");
    const YNode *img = y_get(data, "IMG_SIZE");
    if (img) {
        if (y_check_dups(&d, data, "DATA", err)) goto out;
        if (img->kind == YN_SEQ) {
            int hw[2], n;
            if (int_list(&d, img, "DATA.IMG_SIZE", 1, 65536, 2, 0, hw, &n, err)) goto out;
            if (n != 2) {
                y_err(&d, img, err, "DATA.IMG_SIZE must be an int or [H, W], got a list of %d", n);
                goto out;
            }
            cfg->img_size = hw[0], cfg->img_w = hw[1];
        } else {
            if (get_int(&d, img, "DATA.IMG_SIZE", 1, 65536, &cfg->img_size, err)) goto out;
            cfg->img_w = cfg->img_size;
        }
    }
    if (parse_eval(&d, data, y_get(r, "TEST"), cfg, err)) goto out;
    rc = mc_config_check(cfg, err);
out:
    mc_ydoc_free(&d);
    return rc;
}

int
mc_config_load(const char *path, ModelConfig *cfg, McErr *err)
{
    size_t len;
    char *text = mc_read_file(path, &len, err);
    if (!text) {
        config_defaults(cfg, path);
        return -1;
    }
    int rc = mc_config_load_mem(text, len, path, cfg, err);
    free(text);
    return rc;
}

/* ------------------------------------------------------------ sizes */

/* The first given of the positions, else none. */
static CfgPos
first_pos(CfgPos a, CfgPos b, CfgPos c)
{
    return a.line ? a : b.line ? b : c;
}

int
mc_config_check(const ModelConfig *cfg, McErr *err)
{
    for (int i = 0; i < cfg->nstages; i++) {
        if (cfg->depths[i] <= 0 || mc_model_hidden(cfg, i) >= 1) continue;
        CfgPos p = first_pos(cfg->at_mlp, cfg->at_embed, cfg->at_model);
        return mc_err_at(err, cfg->file, p.line, p.col,
                         "MODEL.SPATIALMAMBA.MLP_RATIO %g leaves stage %d's MLP no hidden channel "
                         "(int(%lld * %g) = 0); it must be at least %g",
                         cfg->mlp_ratio, i, (long long)cfg->embed_dim << i, cfg->mlp_ratio,
                         1.0 / ((double)cfg->embed_dim * (1 << i)));
    }
    double n = mc_model_params(cfg);
    CfgPos p = first_pos(cfg->at_embed, cfg->at_depths, cfg->at_model);
    return mc_budget_check_params(n, 4 * n, "the model", cfg->file, p.line, p.col, err);
}

/* ------------------------------------------------------------ file kind */

/* IR text: after blank and '#' comment lines, a line "graph NAME {". */
static int
looks_like_ir(const char *t, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && (t[j] == ' ' || t[j] == '\t' || t[j] == '\r')) j++;
        if (j < len && t[j] == '\n') { i = j + 1; continue; }
        if (j < len && t[j] == '#') {
            while (j < len && t[j] != '\n') j++;
            i = j + 1;
            continue;
        }
        if (len - j < 6 || memcmp(t + j, "graph", 5) != 0 || (t[j + 5] != ' ' && t[j + 5] != '\t'))
            return 0;
        for (size_t k = j + 6; k < len && t[k] != '\n'; k++) {
            if (t[k] == '{') return 1;
            if (t[k] == ':') return 0;
        }
        return 0;
    }
    return 0;
}

/* kernel IR text: the first line that is not a comment or blank is a
 * 'program' record */
static int
looks_like_kir(const char *t, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && (t[j] == ' ' || t[j] == '\t' || t[j] == '\r')) j++;
        if (j < len && (t[j] == '\n' || t[j] == '#')) {
            while (j < len && t[j] != '\n') j++;
            i = j + 1;
            continue;
        }
        return len - j >= 8 && !memcmp(t + j, "program ", 8);
    }
    return 0;
}

int
mc_frontend_kind(const char *path, McErr *err)
{
    size_t len, pl = strlen(path);
    char *text = mc_read_file(path, &len, err);
    if (!text) return -1;
    if ((pl > 4 && strcmp(path + pl - 4, ".kir") == 0) || looks_like_kir(text, len)) {
        free(text);
        return 4;
    }
    if ((pl > 4 && strcmp(path + pl - 4, ".mir") == 0) || looks_like_ir(text, len)) {
        free(text);
        return 3;
    }
    YDoc d;
    int kind = -1;
    char b[96];
    if (mc_ydoc_load(&d, text, len, path, err)) {
        free(text);
        return -1;
    }
    const YNode *r = d.root;
    if (!r || y_is_null(r))
        mc_err_at(err, path, 0, 0,
                  "empty file (expected a Spatial-Mamba config with a top-level MODEL key, a "
                  "graph YAML with a top-level 'graph' key, or graph IR text)");
    else if (r->kind != YN_MAP)
        y_err(&d, r, err, "expected a YAML mapping with a top-level MODEL or 'graph' key, got %s",
              y_desc(r, b, sizeof b));
    else if (y_get(r, "MODEL") && y_get(r, "graph"))
        y_err(&d, r, err, "both MODEL and 'graph' at the top level: cannot tell a public config "
                          "from a graph YAML");
    else if (y_get(r, "MODEL"))
        kind = 1;
    else if (y_get(r, "graph"))
        kind = 2;
    else
        y_err(&d, r, err,
              "cannot tell what this file is: expected a top-level MODEL key (Spatial-Mamba "
              "config), a top-level 'graph' key (graph YAML, docs/graph-yaml.md) or graph IR "
              "text ('graph NAME {', .mir)");
    mc_ydoc_free(&d);
    free(text);
    return kind;
}
