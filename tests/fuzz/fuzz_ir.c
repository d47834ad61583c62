/* tests/fuzz/fuzz_ir.c -- libFuzzer harness for the textual graph IR.
 *
 * Takes: arbitrary bytes.  Parses them with mc_graph_parse; when they parse,
 * the graph must verify, print, reparse, and print to the very same bytes
 * (print(parse(print(g))) == print(g)); the DOT view must not crash.  Any
 * violation aborts: it is a real finding.  Kept inputs: tests/fuzz/corpus/ir/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/graph.h"

static void
finding(const char *what, const char *msg, const char *text)
{
    fprintf(stderr, "fuzz_ir: %s\n%s\n--- text ---\n%s\n", what, msg ? msg : "", text ? text : "");
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Graph g;
    McErr err;
    mc_graph_init(&g, "fuzz");
    if (mc_graph_parse(&g, (const char *)data, size, "fuzz.mir", &err) != 0) {
        /* every parse error carries a location */
        if (strncmp(err.msg, "fuzz.mir:", 9) != 0)
            finding("parse error without file:line:col", err.msg, NULL);
        mc_graph_free(&g);
        return 0;
    }
    char *s1 = mc_graph_print_str(&g);
    if (!s1)
        finding("print failed", NULL, NULL);
    if (mc_graph_verify(&g, &err) != 0)
        finding("a parsed graph does not verify", err.msg, s1);

    Graph h;
    mc_graph_init(&h, "fuzz2");
    if (mc_graph_parse(&h, s1, strlen(s1), "printed.mir", &err) != 0)
        finding("printed IR does not parse back", err.msg, s1);
    char *s2 = mc_graph_print_str(&h);
    if (!s2 || strcmp(s1, s2) != 0)
        finding("print(parse(print(g))) != print(g)", s2, s1);

    FILE *devnull = fopen("/dev/null", "w");
    if (devnull) {
        int *group = malloc(sizeof(int) * (size_t)(g.nnodes + 1));
        for (int i = 0; i < g.nnodes; i++)
            group[i] = i % 3 - 1;
        mc_graph_print_dot(&g, devnull);
        mc_graph_print_dot_groups(&g, group, devnull);
        free(group);
        fclose(devnull);
    }
    free(s1);
    free(s2);
    mc_graph_free(&g);
    mc_graph_free(&h);
    return 0;
}
