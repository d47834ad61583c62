/* tests/unit/test_kernel_files.c -- text-file tests of the kernel IR.
 *
 * Each tests/ir/kernels/NAME.test holds an input graph (graph IR text),
 * header lines
 *   # passes: p1,p2      graph passes to run first (default: none)
 *   # target: T [prec]   the kernel pipeline's target: none (lower, memplan),
 *                        llvm (its kernel passes) or cuda fp32|tf32|bf16
 *   # fill: N            cuda: the row count of the many-row forms (small tests)
 *   # disable: k1,k2     kernel passes of the target not to run (e.g. tile, whose
 *                        schedules depend on this machine's vector width)
 * and after "# expect:" the kernel IR the pipeline must print, written by
 * hand.  The test runs the pipeline (graph passes, lower, the target's
 * kernel passes, memplan) on deterministic random weights with
 * --verify-each, compares the printed program with the expectation byte for
 * byte, and parses the expectation back: it must verify and print itself.
 * Also: every tests/ir/kernels/bad_*.kir must be refused (parse or verify)
 * with the message on its first line ("# error: TEXT"). */
#include <CUnit/Basic.h>
#include "unit.h"
#include "frontend/weights.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backends/cuda/cuda.h"
#include "backends/llvm/llvm.h"
#include "passes/pipeline.h"

#define KDIR "ir/kernels"

/* the value of header "# key: " in text, or "" */
static void
header(const char *text, const char *key, char *out, size_t n)
{
    char k[64];
    snprintf(k, sizeof k, "# %s: ", key);
    const char *p = strstr(text, k);
    out[0] = 0;
    if (p) sscanf(p + strlen(k), "%255[^\n]", out);
    (void)n;
}

static int
check_file(const char *name)
{
    char path[512], passes[256], target[256], fill[256], disable[256];
    snprintf(path, sizeof path, "%s/%s", KDIR, name);
    size_t len;
    char *text = unit_slurp(path, &len);
    if (!text) { fprintf(stderr, "%s: cannot read\n", path); return 0; }
    char *exp = strstr(text, "# expect:\n");
    if (!exp) { fprintf(stderr, "%s: needs '# expect:'\n", path); free(text); return 0; }
    *exp = 0;
    exp += strlen("# expect:\n");
    header(text, "passes", passes, sizeof passes);
    header(text, "target", target, sizeof target);
    header(text, "fill", fill, sizeof fill);
    header(text, "disable", disable, sizeof disable);

    Graph g;
    McErr e;
    mc_graph_init(&g, "t");
    int ok = mc_graph_parse(&g, text, strlen(text), path, &e) == 0;
    if (!ok) fprintf(stderr, "%s\n", e.msg);
    PassOptions o;
    memset(&o, 0, sizeof o);
    o.verify_each = true;
    for (int i = 0; i < mc_npasses; i++) {
        char list[260], key[80];
        snprintf(list, sizeof list, ",%s,", passes);
        snprintf(key, sizeof key, ",%s,", mc_passes[i].name);
        if (!strstr(list, key)) o.disable[o.n_disable++] = mc_passes[i].name;
    }
    for (char *tok = strtok(disable, ","); tok && o.n_disable < MC_MAX_PASS_OPTS; tok = strtok(NULL, ","))
        o.disable[o.n_disable++] = tok;
    McTarget t, *tp = NULL;
    if (!strncmp(target, "llvm", 4)) {
        t = mc_llvm_target_row;
        tp = &t;
    } else if (!strncmp(target, "cuda", 4)) {
        t = mc_cuda_target_row;
        t.desc.precision = mc_cuda_precision_parse(target[4] ? target + 5 : "fp32");
        tp = &t;
    }
    mc_cuda_set_fill(atoi(fill));
    WeightStore ws;
    mc_weights_init(&ws);
    KProgram p;
    memset(&p, 0, sizeof p);
    if (ok) {
        mc_weights_random(&g, &ws, 42);
        ok = mc_pipeline_run(&g, &ws, tp, &o, &p, &e) == 0;
        if (!ok) fprintf(stderr, "%s: %s\n", path, e.msg);
    }
    if (ok) {
        char *got = mc_kprogram_print_str(&p);
        if (strcmp(got, exp)) {
            fprintf(stderr, "%s: got:\n%s\nexpected:\n%s\n", path, got, exp);
            ok = 0;
        }
        free(got);
    }
    if (ok) { /* the expectation is kernel IR that verifies and prints itself */
        KProgram q;
        ok = mc_kprogram_parse(&q, exp, strlen(exp), path, &e) == 0 && mc_kprogram_verify(&q, &e) == 0;
        if (ok) {
            char *again = mc_kprogram_print_str(&q);
            ok = !strcmp(again, exp);
            if (!ok) fprintf(stderr, "%s: the expectation does not print itself:\n%s\n", path, again);
            free(again);
            mc_kprogram_free(&q);
        } else {
            fprintf(stderr, "%s: the expectation: %s\n", path, e.msg);
        }
    }
    mc_cuda_set_fill(0);
    mc_kprogram_free(&p);
    mc_weights_free(&ws);
    mc_graph_free(&g);
    free(text);
    return ok;
}

/* bad_*.kir: "# error: TEXT" on the first line; parse + verify must fail
 * with TEXT in the message */
static int
check_bad(const char *name)
{
    char path[512], want[256] = "";
    snprintf(path, sizeof path, "%s/%s", KDIR, name);
    size_t len;
    char *text = unit_slurp(path, &len);
    if (!text) return 0;
    sscanf(text, "# error: %255[^\n]", want);
    KProgram p;
    McErr e;
    int rc = mc_kprogram_parse(&p, text, len, path, &e);
    if (!rc) {
        rc = mc_kprogram_verify(&p, &e);
        mc_kprogram_free(&p);
    }
    int ok = rc != 0 && want[0] && strstr(e.msg, want);
    if (!ok) fprintf(stderr, "%s: want an error with '%s', got %s\n", path, want, rc ? e.msg : "none");
    free(text);
    return ok;
}

static void
test_all_files(void)
{
    DIR *d = opendir(KDIR);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    struct dirent *ent;
    int n = 0, nbad = 0;
    while ((ent = readdir(d))) {
        size_t l = strlen(ent->d_name);
        if (l > 5 && !strcmp(ent->d_name + l - 5, ".test")) {
            CU_ASSERT(check_file(ent->d_name));
            n++;
        } else if (l > 4 && !strncmp(ent->d_name, "bad_", 4) && !strcmp(ent->d_name + l - 4, ".kir")) {
            CU_ASSERT(check_bad(ent->d_name));
            nbad++;
        }
    }
    closedir(d);
    CU_ASSERT(n >= 3);
    CU_ASSERT(nbad >= 5);
}

static const struct {
    const char *name;
    CU_TestFunc fn;
} tests[] = {
    {"tests/ir/kernels/*.test and bad_*.kir", test_all_files},
};

MC_UNIT_MAIN("kernel files", tests)
