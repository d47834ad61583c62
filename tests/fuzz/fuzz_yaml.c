/* tests/fuzz/fuzz_yaml.c -- libFuzzer harness for the two YAML frontends.
 * Feeds the bytes to mc_config_load_mem and mc_graph_yaml_load_mem; neither
 * may crash, leak past its return or hang.  When a graph loads, the writer's
 * round trip is checked too: load(write(g)) must print the same IR as g.
 * Seeds and kept crashers: tests/fuzz/corpus/yaml/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ModelConfig cfg;
    McErr err;
    if (mc_config_load_mem((const char *)data, size, "fuzz.yaml", &cfg, &err) == 0) {
        if (cfg.nstages < 1 || cfg.nstages > MC_MAX_STAGES || cfg.embed_dim < 1 || cfg.embed_dim % 2)
            abort(); /* validation let a bad config through */
    }
    Graph g;
    if (mc_graph_yaml_load_mem((const char *)data, size, "fuzz.yaml", &g, &err) == 0) {
        char *y = NULL;
        size_t ylen = 0;
        FILE *f = open_memstream(&y, &ylen);
        mc_graph_yaml_write(&g, f);
        fclose(f);
        Graph h;
        if (mc_graph_yaml_load_mem(y, ylen, "rt.yaml", &h, &err) != 0) {
            fprintf(stderr, "round trip failed to load: %s\n%s", err.msg, y);
            abort();
        }
        char *p1 = mc_graph_print_str(&g), *p2 = mc_graph_print_str(&h);
        if (strcmp(p1, p2) != 0) {
            fprintf(stderr, "round trip changed the IR:\n%s\n---\n%s", p1, p2);
            abort();
        }
        free(p1);
        free(p2);
        free(y);
        mc_graph_free(&h);
        mc_graph_free(&g);
    }
    return 0;
}
