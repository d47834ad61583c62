/* backends/llvm/llvm_variants.c -- one model compiled for several CPUs.
 *
 * Takes a KProgram, its weights and a --cpu list ("x86-64-v2,x86-64-v3",
 * "portable", "generic-rv64,+v", or one name or none); produces, per entry,
 * the optimized object (symbols <name>__v<i>_run, ...), the features that
 * entry's code needs (checked at start-up by runtime/cpu.c), and one weights
 * blob, packed once for the widest variant: the narrower ones' micro-kernels
 * read its wider panels (llvm_gemm.c panel_off); a variant that cannot
 * (panel widths that do not divide) gets a packing of its own, and
 * byte-identical packings are stored once.
 * backends/artifact.c links the objects with a dispatcher (mc_cpu.h).
 * Owns everything in McLlvmVariants (mc_llvm_variants_free).
 */
#include "llvm_internal.h"
#include <stdlib.h>
#include <string.h>

#define MAX_VARIANTS 16

/* --cpu portable: every level of the architecture, least demanding first */
static const char *
portable_list(const char *arch)
{
    if (!strcmp(arch, "x86_64")) return "x86-64,x86-64-v2,x86-64-v3,x86-64-v4";
    if (!strcmp(arch, "aarch64")) return "generic,neoverse-n1,neoverse-v1";
    if (!strcmp(arch, "riscv64")) return "generic-rv64,+v";
    return NULL;
}

static char *
dupn(const char *s, size_t n)
{
    char *r = malloc(n + 1);
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

void
mc_llvm_variants_free(McLlvmVariants *v)
{
    for (int i = 0; i < v->n; i++) {
        free((void *)v->v[i].name);
        free((void *)v->v[i].features);
        free((void *)v->v[i].prefix);
        McLlvmObjects o = {v->v[i].nobjs, (uint8_t **)v->v[i].objs, (size_t *)v->v[i].obj_lens};
        mc_llvm_objects_free(&o);
        free(v->descr[i]);
    }
    free(v->v);
    free(v->descr);
    free(v->blob);
    memset(v, 0, sizeof *v);
}

/* Appends `blob` to the shared blob unless an identical one is there;
 * returns its offset, -1 when out of memory. */
static int64_t
add_blob(McLlvmVariants *v, int64_t *offs, int64_t *lens, int i, uint8_t *blob, int64_t len)
{
    for (int j = 0; j < i; j++)
        if (lens[j] == len && !memcmp(v->blob + offs[j], blob, (size_t)len)) return offs[j];
    int64_t off = (v->blob_len + 63) & ~(int64_t)63;
    uint8_t *nb = realloc(v->blob, (size_t)(off + len) + 1);
    if (!nb) return -1;
    memset(nb + v->blob_len, 0, (size_t)(off - v->blob_len));
    memcpy(nb + off, blob, (size_t)len);
    v->blob = nb;
    v->blob_len = off + len;
    return off;
}

/* Parses the --cpu entry `item` (NULL: none) into a target: CPU[+feat...]
 * or +feat... (the default CPU with those features added to `features`). */
static McLlvmTarget *
entry_target(const char *triple, const char *item, const char *features, McErr *err)
{
    char *cpu = NULL, *feats = NULL;
    if (item) {
        const char *plus = item[0] == '+' ? item : strchr(item, '+');
        if (plus != item) cpu = dupn(item, plus ? (size_t)(plus - item) : strlen(item));
        if (plus) {
            size_t fl = (features ? strlen(features) : 0) + strlen(plus) * 2 + 2, q;
            feats = malloc(fl);
            q = (size_t)snprintf(feats, fl, "%s", features ? features : "");
            for (const char *f = plus; *f;) { /* "+a+b" -> ",+a,+b" */
                size_t n = strcspn(f + 1, "+");
                q += (size_t)snprintf(feats + q, fl - q, "%s+%.*s", q ? "," : "", (int)n, f + 1);
                f += 1 + n;
            }
        }
    }
    McLlvmTarget *t = mc_llvm_target_create(triple, cpu, feats ? feats : features, err);
    free(cpu);
    free(feats);
    return t;
}

/* a has more lanes (then registers) than b */
static int
wider(const McLlvmTarget *a, const McLlvmTarget *b)
{
    return a->lanes > b->lanes || (a->lanes == b->lanes && a->vregs > b->vregs);
}

/* the architecture of the triple, from a target for it (also validates it) */
static int
arch_of(const char *triple, char *arch, size_t n, McErr *err)
{
    McLlvmTarget *t0 = mc_llvm_target_create(triple, "generic", NULL, err);
    if (!t0) return -1;
    size_t k = strcspn(t0->triple, "-");
    snprintf(arch, n, "%.*s", (int)k, t0->triple);
    if (!strcmp(arch, "arm64")) snprintf(arch, n, "aarch64");
    mc_llvm_target_free(t0);
    return 0;
}

/* the --cpu list with "portable" expanded (NULL + err: no preset) */
static const char *
cpu_list(const char *cpus, const char *arch, McErr *err)
{
    if (!cpus || strcmp(cpus, "portable")) return cpus;
    cpus = portable_list(arch);
    if (!cpus) mc_err(err, "--cpu portable: no preset for architecture %s", arch);
    return cpus;
}

McLlvmTarget *
mc_llvm_variants_widest(const char *triple, const char *cpus, const char *features, McErr *err)
{
    char arch[32];
    if (!cpus || (!strchr(cpus, ',') && strcmp(cpus, "portable"))) return entry_target(triple, cpus, features, err);
    if (arch_of(triple, arch, sizeof arch, err) || !(cpus = cpu_list(cpus, arch, err))) return NULL;
    McLlvmTarget *best = NULL;
    for (const char *s = cpus; *s;) {
        size_t len = strcspn(s, ",");
        char *item = dupn(s, len);
        McLlvmTarget *t = NULL;
        if (item && *item) t = entry_target(triple, item, features, err);
        else mc_err(err, "--cpu '%s': empty entry in the list", cpus);
        free(item);
        if (!t) {
            mc_llvm_target_free(best);
            return NULL;
        }
        if (!best || wider(t, best)) {
            mc_llvm_target_free(best);
            best = t;
        } else {
            mc_llvm_target_free(t);
        }
        s += len + (s[len] == ',');
    }
    return best;
}

int
mc_llvm_bf16_check(const char *triple, const char *cpus, const char *features, McErr *err)
{
    char arch[32];
    if (arch_of(triple, arch, sizeof arch, err) || (cpus && !(cpus = cpu_list(cpus, arch, err)))) return -1;
    for (const char *s = cpus;;) {
        size_t len = s ? strcspn(s, ",") : 0;
        char *item = s ? dupn(s, len) : NULL;
        McLlvmTarget *t = s && !*item ? NULL : entry_target(triple, item, features, err);
        if (s && !*item) mc_err(err, "--cpu '%s': empty entry in the list", cpus);
        int ok = t && t->bf16, bad = !t;
        if (t && !ok) {
            char nm[300];
            snprintf(nm, sizeof nm, "%s%s", !item || item[0] == '+' ? t->cpu : "", item ? item : "");
            if (!strcmp(arch, "aarch64"))
                mc_err(err, "--precision bf16 needs the BF16 extension (bf16: bfdot), which cpu %s does not have (use "
                            "--precision fp32, or a CPU with it such as neoverse-v1 or neoverse-n2, or --features "
                            "+bf16)", nm);
            else if (strcmp(arch, "x86_64"))
                mc_err(err, "--precision bf16 is for x86-64 CPUs with AVX512-BF16 and AArch64 CPUs with BF16; %s cpu "
                            "%s has no bf16 code here (use --precision fp32)", arch, nm);
            else
                mc_err(err, "--precision bf16 needs AVX512-BF16 (avx512bf16), which cpu %s does not have (use "
                            "--precision fp32, or a CPU with it such as sapphirerapids, cooperlake or znver4)", nm);
        }
        mc_llvm_target_free(t);
        free(item);
        if (!ok) return bad ? -1 : 1;
        if (!s || !s[len]) return 0;
        s += len + 1;
    }
}

int
mc_llvm_variants_build(const KProgram *p, const WeightStore *ws, const char *triple, const char *cpus,
                       const char *features, const char *name, FILE *verbose, McLlvmVariants *out,
                       McErr *err)
{
    memset(out, 0, sizeof *out);
    if (arch_of(triple, out->arch, sizeof out->arch, err)) return -1;
    if (cpus && !(cpus = cpu_list(cpus, out->arch, err))) return -1;
    int n = 1;
    for (const char *s = cpus; s && *s; s++) n += *s == ',';
    if (n > MAX_VARIANTS) return mc_err(err, "--cpu '%s': %d CPUs, more than the %d one artifact holds", cpus, n, MAX_VARIANTS);
    McLlvmTarget *tg[MAX_VARIANTS] = {0};
    int64_t offs[MAX_VARIANTS] = {0}, lens[MAX_VARIANTS] = {0};
    int packed_by[MAX_VARIANTS]; /* the variant whose packing variant i reads */
    int have[MAX_VARIANTS] = {0}; /* that variant's packing is in the blob */
    out->v = calloc((size_t)n, sizeof *out->v);
    out->descr = calloc((size_t)n, sizeof *out->descr);
    if (!out->v || !out->descr) {
        mc_llvm_variants_free(out);
        return mc_err(err, "out of memory");
    }
    /* 1. the targets and names */
    const char *s = cpus;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        size_t len = s ? strcspn(s, ",") : 0;
        char *item = s ? dupn(s, len) : NULL;
        if (s) s += len + (s[len] == ',');
        if (item && !*item) rc = mc_err(err, "--cpu '%s': empty entry in the list", cpus);
        else if (!(tg[i] = entry_target(triple, item, features, err))) rc = -1;
        if (!rc) {
            McArtifactVariant *v = &out->v[i];
            char nm[256], pre[300];
            if (n == 1 || !item) snprintf(nm, sizeof nm, "%s", tg[i]->cpu);
            else if (item[0] == '+') snprintf(nm, sizeof nm, "%s%s", tg[i]->cpu, item);
            else snprintf(nm, sizeof nm, "%s", item);
            for (int j = 0; j < i; j++)
                if (!strcmp(out->v[j].name, nm)) rc = mc_err(err, "--cpu '%s': %s is listed twice", cpus, nm);
            snprintf(pre, sizeof pre, "%s__v%d", name, i);
            v->name = strdup(nm);
            v->features = strdup(tg[i]->required);
            v->prefix = strdup(pre);
            out->descr[i] = strdup(tg[i]->descr);
            out->n = i + 1;
        }
        free(item);
    }
    /* 2. the kernels' schedules are for one of the CPUs (the tile pass made
     * them for the widest, llvm_passes.c); one packing of the weights, for
     * the widest variant, read by every variant whose micro-kernels fit its
     * panels (the others pack their own) */
    if (!rc) rc = mc_llvm_schedule_check(p, (const McLlvmTarget *const *)tg, n, err);
    int wide = 0;
    for (int i = 1; i < n && !rc; i++)
        if (wider(tg[i], tg[wide])) wide = i;
    for (int i = 0; i < n && !rc; i++) packed_by[i] = mc_llvm_packing_fits(p, tg[i], tg[wide]) ? wide : i;
    /* 3. code and weights */
    for (int i = 0; i < n && !rc; i++) {
        McArtifactVariant *v = &out->v[i];
        const McLlvmTarget *pk = tg[packed_by[i]];
        if (verbose)
            fprintf(verbose, "mambac: variant %d/%d %s: target %s; weights packed for %s; checked at start-up: %s\n",
                    i + 1, n, v->name, tg[i]->descr, out->v[packed_by[i]].name,
                    tg[i]->required[0] ? tg[i]->required : "(nothing)");
        McLlvmObjects o;
        if (mc_llvm_compile(p, tg[i], v->prefix, pk, verbose, &o, err)) rc = -1;
        v->nobjs = o.n;
        v->objs = (const uint8_t *const *)o.obj;
        v->obj_lens = o.len;
        if (!rc && have[packed_by[i]]) { /* that packing is in the blob already */
            v->weights_offset = offs[packed_by[i]];
            continue;
        }
        uint8_t *blob = NULL;
        int64_t bloblen = 0;
        if (!rc && mc_llvm_pack_weights(p, ws, pk, &blob, &bloblen, err)) rc = -1;
        if (!rc) {
            int owner = packed_by[i];
            lens[owner] = bloblen;
            offs[owner] = add_blob(out, offs, lens, owner, blob, bloblen);
            if (offs[owner] < 0) rc = mc_err(err, "out of memory for the weights of %d variants", n);
            v->weights_offset = offs[owner];
            have[owner] = 1;
        }
        free(blob);
    }
    for (int i = 0; i < n; i++) mc_llvm_target_free(tg[i]);
    if (rc) mc_llvm_variants_free(out);
    return rc;
}
