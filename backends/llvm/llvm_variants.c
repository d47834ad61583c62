/* backends/llvm/llvm_variants.c -- one model compiled for several CPUs.
 *
 * Takes a KProgram, its weights and a --cpu list ("x86-64-v2,x86-64-v3",
 * "portable", "generic-rv64,+v", or one name or none); produces, per entry,
 * the optimized object (symbols <name>__v<i>_run, ...), the features that
 * entry's code needs (checked at start-up by runtime/cpu.c), and one weights
 * blob: the packed weights of every variant, where variants of the same
 * vector shape share one copy (byte-identical packings are stored once).
 * backends/artifact.c links the objects with a dispatcher (mc_cpu.h).
 * Owns everything in McLlvmVariants (mc_llvm_variants_free).
 */
#include "llvm_internal.h"
#include <stdlib.h>
#include <string.h>

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
        free((void *)v->v[i].obj);
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

int
mc_llvm_variants_build(const KProgram *p, const WeightStore *ws, const char *triple, const char *cpus,
                       const char *features, const char *name, FILE *verbose, McLlvmVariants *out,
                       McErr *err)
{
    memset(out, 0, sizeof *out);
    /* the architecture, from a target for the triple (also validates it) */
    McLlvmTarget *t0 = mc_llvm_target_create(triple, "generic", NULL, err);
    if (!t0) return -1;
    size_t k = strcspn(t0->triple, "-");
    snprintf(out->arch, sizeof out->arch, "%.*s", (int)k, t0->triple);
    if (!strcmp(out->arch, "arm64")) snprintf(out->arch, sizeof out->arch, "aarch64");
    mc_llvm_target_free(t0);
    if (cpus && !strcmp(cpus, "portable")) {
        cpus = portable_list(out->arch);
        if (!cpus) return mc_err(err, "--cpu portable: no preset for architecture %s", out->arch);
    }
    int n = 1;
    for (const char *s = cpus; s && *s; s++) n += *s == ',';
    out->v = calloc((size_t)n, sizeof *out->v);
    out->descr = calloc((size_t)n, sizeof *out->descr);
    int64_t *offs = calloc((size_t)n, sizeof *offs), *lens = calloc((size_t)n, sizeof *lens);
    if (!out->v || !out->descr || !offs || !lens) {
        free(offs);
        free(lens);
        mc_llvm_variants_free(out);
        return mc_err(err, "out of memory");
    }
    const char *s = cpus;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        /* entry: CPU[+feat...] or +feat... (the default CPU with features) */
        size_t len = s ? strcspn(s, ",") : 0;
        char *item = s ? dupn(s, len) : NULL, *cpu = NULL, *feats = NULL;
        if (s) s += len + (s[len] == ',');
        if (item && !*item) {
            rc = mc_err(err, "--cpu '%s': empty entry in the list", cpus);
            free(item);
            break;
        }
        if (item) {
            char *plus = item[0] == '+' ? item : strchr(item, '+');
            if (plus != item) cpu = dupn(item, plus ? (size_t)(plus - item) : strlen(item));
            if (plus) {
                size_t fl = (features ? strlen(features) : 0) + strlen(plus) * 2 + 2;
                feats = malloc(fl);
                size_t q = (size_t)snprintf(feats, fl, "%s", features ? features : "");
                for (char *f = plus; *f;) { /* "+a+b" -> ",+a,+b" */
                    size_t fl2 = strcspn(f + 1, "+");
                    q += (size_t)snprintf(feats + q, fl - q, "%s+%.*s", q ? "," : "", (int)fl2, f + 1);
                    f += 1 + fl2;
                }
            }
        }
        McLlvmTarget *t = mc_llvm_target_create(triple, cpu, feats ? feats : features, err);
        if (!t) {
            rc = -1;
        } else {
            McArtifactVariant *v = &out->v[i];
            char nm[256], pre[300];
            if (n == 1 || !item) snprintf(nm, sizeof nm, "%s", t->cpu);
            else if (item[0] == '+') snprintf(nm, sizeof nm, "%s%s", t->cpu, item);
            else snprintf(nm, sizeof nm, "%s", item);
            snprintf(pre, sizeof pre, "%s__v%d", name, i);
            for (int j = 0; j < i; j++)
                if (!strcmp(out->v[j].name, nm)) rc = mc_err(err, "--cpu '%s': %s is listed twice", cpus, nm);
            v->name = strdup(nm);
            v->features = strdup(t->required);
            v->prefix = strdup(pre);
            out->descr[i] = strdup(t->descr);
            out->n = i + 1;
            if (verbose)
                fprintf(verbose, "mambac: variant %d/%d %s: target %s; checked at start-up: %s\n", i + 1, n, nm,
                        t->descr, t->required[0] ? t->required : "(nothing)");
            McLlvmModule *m = rc ? NULL : mc_llvm_codegen_as(p, t, pre, err);
            uint8_t *obj = NULL, *blob = NULL;
            size_t objlen = 0;
            int64_t bloblen = 0;
            if (rc || !m || mc_llvm_emit_mem(m, MC_EMIT_OBJ, &obj, &objlen, err) ||
                mc_llvm_pack_weights(p, ws, t, &blob, &bloblen, err)) {
                rc = -1;
            } else {
                v->obj = obj;
                v->obj_len = objlen;
                obj = NULL;
                lens[i] = bloblen;
                offs[i] = v->weights_offset = add_blob(out, offs, lens, i, blob, bloblen);
                if (offs[i] < 0) rc = mc_err(err, "out of memory for the weights of %d variants", n);
            }
            free(obj);
            free(blob);
            mc_llvm_module_free(m);
            mc_llvm_target_free(t);
        }
        free(item);
        free(cpu);
        free(feats);
    }
    free(offs);
    free(lens);
    if (rc) mc_llvm_variants_free(out);
    return rc;
}
