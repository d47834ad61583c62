/* tests/unit/test_config.c -- the public Spatial-Mamba config reader
 * (frontend/config.c): the shipped examples, defaults, ignored keys, and one
 * test per error class checking file:line:col and the key in the message.
 * Run from tests/ (ctest does): fixtures are in unit/data/yaml/ and
 * ../examples/.  Expected line:col values were counted by hand.
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include <stdio.h>
#include <string.h>

#include "frontend/frontend.h"
#include <stdlib.h>

#define FIX "unit/data/yaml/"

static void
check_contains(const char *msg, const char *want)
{
    if (!strstr(msg, want)) fprintf(stderr, "\n  message: %s\n  missing: %s\n", msg, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
}

/* Loads a fixture that must fail; checks the message has each of the wants. */
static void
expect_fail(const char *file, const char *w1, const char *w2)
{
    ModelConfig cfg;
    McErr err = {{0}};
    char path[256];
    snprintf(path, sizeof path, FIX "%s", file);
    int rc = mc_config_load(path, &cfg, &err);
    CU_ASSERT_EQUAL(rc, -1);
    if (w1) check_contains(err.msg, w1);
    if (w2) check_contains(err.msg, w2);
}

static void
test_examples(void)
{
    static const struct {
        const char *file, *name;
        int embed, depths[4];
    } ex[] = {
        {"../examples/spatialmamba_tiny.yaml", "tiny", 64, {2, 4, 8, 4}},
        {"../examples/spatialmamba_small.yaml", "small", 64, {2, 4, 21, 5}},
        {"../examples/spatialmamba_base.yaml", "base", 96, {2, 4, 21, 5}},
    };
    for (int i = 0; i < 3; i++) {
        ModelConfig cfg;
        McErr err = {{0}};
        int rc = mc_config_load(ex[i].file, &cfg, &err);
        if (rc) fprintf(stderr, "\n  %s\n", err.msg);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT_STRING_EQUAL(cfg.type, "spatial_mamba");
        CU_ASSERT_STRING_EQUAL(cfg.name, ex[i].name);
        CU_ASSERT_EQUAL(cfg.embed_dim, ex[i].embed);
        CU_ASSERT_EQUAL(cfg.nstages, 4);
        for (int s = 0; s < 4; s++) CU_ASSERT_EQUAL(cfg.depths[s], ex[i].depths[s]);
        CU_ASSERT_EQUAL(cfg.d_state, 1);
        CU_ASSERT_DOUBLE_EQUAL(cfg.mlp_ratio, 4.0, 0);
        CU_ASSERT_EQUAL(cfg.num_classes, 1000);
        CU_ASSERT_EQUAL(cfg.in_chans, 3);
        CU_ASSERT_EQUAL(cfg.patch_size, 4);
        CU_ASSERT_EQUAL(cfg.img_size, 224);
        /* "    D_STATE: 1" is line 8; the value starts at column 14 */
        CU_ASSERT_EQUAL(cfg.d_state_line, 8);
        CU_ASSERT_EQUAL(cfg.d_state_col, 14);
        CU_ASSERT_STRING_EQUAL(cfg.file, ex[i].file);
    }
}

/* The exact text of the public tiny config (no DATA section). */
static void
test_public_text(void)
{
    static const char txt[] =
        "MODEL:\n"
        "  TYPE: spatial_mamba\n"
        "  NAME: tiny\n"
        "  DROP_PATH_RATE: 0.2\n"
        "  SPATIALMAMBA:\n"
        "    EMBED_DIM: 64\n"
        "    DEPTHS: [ 2, 4, 8, 4]\n"
        "    D_STATE: 1\n"
        "    MLP_RATIO: 4.0\n"
        "    DT_INIT: 'random'\n"
        "    \n"
        "  DDP: 'torch'\n"
        "\n"
        "TRAIN:\n"
        "  EPOCHS: 300\n"
        "  WARMUP_EPOCHS: 20\n"
        "  MESA: 1.0\n";
    ModelConfig cfg;
    McErr err = {{0}};
    CU_ASSERT_EQUAL_FATAL(mc_config_load_mem(txt, strlen(txt), "tiny.yaml", &cfg, &err), 0);
    CU_ASSERT_EQUAL(cfg.embed_dim, 64);
    CU_ASSERT_EQUAL(cfg.depths[2], 8);
    CU_ASSERT_EQUAL(cfg.img_size, 224);
    CU_ASSERT_EQUAL(cfg.d_state, 1);
    CU_ASSERT_STRING_EQUAL(cfg.file, "tiny.yaml");
}

static void
test_defaults(void)
{
    ModelConfig cfg;
    McErr err = {{0}};
    CU_ASSERT_EQUAL_FATAL(mc_config_load(FIX "defaults.yaml", &cfg, &err), 0);
    CU_ASSERT_EQUAL(cfg.num_classes, 1000);
    CU_ASSERT_EQUAL(cfg.embed_dim, 96);
    CU_ASSERT_EQUAL(cfg.nstages, 4);
    CU_ASSERT_EQUAL(cfg.depths[0], 2);
    CU_ASSERT_EQUAL(cfg.depths[1], 2);
    CU_ASSERT_EQUAL(cfg.depths[2], 9);
    CU_ASSERT_EQUAL(cfg.depths[3], 2);
    CU_ASSERT_EQUAL(cfg.d_state, 16);
    CU_ASSERT_DOUBLE_EQUAL(cfg.mlp_ratio, 4.0, 0);
    CU_ASSERT_EQUAL(cfg.in_chans, 3);
    CU_ASSERT_EQUAL(cfg.patch_size, 4);
    CU_ASSERT_EQUAL(cfg.img_size, 224);
    CU_ASSERT_EQUAL(cfg.d_state_line, 0);
}

static void
test_ignored_keys(void)
{
    ModelConfig cfg;
    McErr err = {{0}};
    int rc = mc_config_load(FIX "ignored_keys.yaml", &cfg, &err);
    if (rc) fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(cfg.name, "custom");
    CU_ASSERT_EQUAL(cfg.num_classes, 10);
    CU_ASSERT_EQUAL(cfg.embed_dim, 32);
    CU_ASSERT_EQUAL(cfg.nstages, 2);
    CU_ASSERT_EQUAL(cfg.depths[0], 1);
    CU_ASSERT_EQUAL(cfg.depths[1], 2);
    CU_ASSERT_DOUBLE_EQUAL(cfg.mlp_ratio, 2.5, 0);
    CU_ASSERT_EQUAL(cfg.in_chans, 1);
    CU_ASSERT_EQUAL(cfg.img_size, 96);
    CU_ASSERT_EQUAL(cfg.d_state_line, 21);
    CU_ASSERT_EQUAL(cfg.d_state_col, 14);
}

static void
test_unknown_key(void)
{
    expect_fail("bad_unknown_key.yaml",
                FIX "bad_unknown_key.yaml:7:5: error: unknown key 'FOO' in MODEL.SPATIALMAMBA",
                "(known: EMBED_DIM, DEPTHS, D_STATE, MLP_RATIO");
}

static void
test_wrong_types(void)
{
    expect_fail("bad_type_int.yaml", FIX "bad_type_int.yaml:6:16: error: ",
                "expected an integer for MODEL.SPATIALMAMBA.EMBED_DIM, got 'abc'");
    expect_fail("bad_depths_item.yaml", FIX "bad_depths_item.yaml:3:17: error: ",
                "MODEL.SPATIALMAMBA.DEPTHS[1], got 'x'");
    expect_fail("bad_mlp_type.yaml", FIX "bad_mlp_type.yaml:3:16: error: ",
                "expected a number for MODEL.SPATIALMAMBA.MLP_RATIO, got a sequence");
    expect_fail("bad_sm_not_map.yaml", FIX "bad_sm_not_map.yaml:2:17: error: ",
                "expected a mapping for MODEL.SPATIALMAMBA, got '64'");
    expect_fail("bad_img_size.yaml", FIX "bad_img_size.yaml:4:13: error: ",
                "DATA.IMG_SIZE, got 'big'");
    expect_fail("bad_quoted_int.yaml", FIX "bad_quoted_int.yaml:3:16: error: ",
                "expected an integer for MODEL.SPATIALMAMBA.EMBED_DIM");
}

static void
test_bad_values(void)
{
    expect_fail("bad_patch_size.yaml", FIX "bad_patch_size.yaml:3:17: error: ",
                "PATCH_SIZE 8 is not supported");
    expect_fail("bad_odd_embed.yaml", FIX "bad_odd_embed.yaml:3:16: error: ",
                "EMBED_DIM must be even");
    expect_fail("bad_model_type.yaml", FIX "bad_model_type.yaml:2:9: error: ",
                "MODEL.TYPE must be spatial_mamba");
    expect_fail("bad_mlp_ratio.yaml", FIX "bad_mlp_ratio.yaml:3:16: error: ",
                "MLP_RATIO must be above 0");
    expect_fail("bad_num_classes.yaml", FIX "bad_num_classes.yaml:2:16: error: ",
                "MODEL.NUM_CLASSES must be between 1 and");
    expect_fail("bad_depths_zero.yaml", FIX "bad_depths_zero.yaml:3:13: error: ",
                "at least one stage");
    expect_fail("bad_depths_long.yaml", FIX "bad_depths_long.yaml:3:13: error: ", "1 to 8");
    expect_fail("bad_dup_key.yaml", FIX "bad_dup_key.yaml:4:5: error: ",
                "duplicate key 'EMBED_DIM' in MODEL.SPATIALMAMBA (first at 3:5)");
}

static void
test_structure_errors(void)
{
    expect_fail("bad_syntax.yaml", FIX "bad_syntax.yaml:5:", "error: ");
    expect_fail("empty.yaml", FIX "empty.yaml: error: empty", NULL);
    expect_fail("bad_top_list.yaml", FIX "bad_top_list.yaml:1:1: error: ",
                "expected a mapping with a MODEL key");
    expect_fail("no_model.yaml", FIX "no_model.yaml:1:1: error: ", "no MODEL section");
    expect_fail("no_such_file.yaml", FIX "no_such_file.yaml", "cannot open");
}

/* In-memory text: syntax errors and odd YAML never crash and name the place. */
static void
test_mem_errors(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"MODEL: [1, 2", "m.yaml:2:1: error: did not find expected ',' or ']'"},
        {"MODEL:\n  SPATIALMAMBA:\n    DEPTHS: *nope\n", "m.yaml:3:13: error: undefined alias"},
        {"MODEL: {}\n---\nMODEL: {}\n", "m.yaml:2:1: error: more than one YAML document"},
        {"MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 1.5\n", "m.yaml:3:16: error: expected an integer"},
        {"MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 99999999999999999999999\n", "m.yaml:3:16"},
        {"MODEL:\n  SPATIALMAMBA:\n    MLP_RATIO: .inf\n", "m.yaml:3:16: error: expected a number"},
        {"MODEL:\n  SPATIALMAMBA:\n    DT_INIT: [a]\n", "m.yaml:3:14: error: expected a string"},
        {"MODEL:\n  SPATIALMAMBA:\n    ? [a]\n    : 1\n", "m.yaml:3:7: error: unknown key a sequence"},
        {"MODEL:\n  NAME: " "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
         "m.yaml:2:9: error: MODEL.NAME is too long"},
        {"MODEL: 3\n", "m.yaml:1:8: error: expected a mapping for MODEL, got '3'"},
        {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]"
         "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "deeper than"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ModelConfig cfg;
        McErr err = {{0}};
        CU_ASSERT_EQUAL(mc_config_load_mem(cases[i].text, strlen(cases[i].text), "m.yaml", &cfg, &err), -1);
        check_contains(err.msg, cases[i].want);
    }
    /* a NUL byte inside the text is a reader error, not a crash */
    static const char nul[] = "MODEL:\n  N\0AME: x\n";
    ModelConfig cfg;
    McErr err = {{0}};
    CU_ASSERT_EQUAL(mc_config_load_mem(nul, sizeof nul - 1, "m.yaml", &cfg, &err), -1);
    check_contains(err.msg, "m.yaml:2:4: error: ");
}

/* Loads text that must fail; checks the message has want (and want2). */
static void
expect_mem_fail(const char *text, const char *want, const char *want2)
{
    ModelConfig cfg;
    McErr err = {{0}};
    CU_ASSERT_EQUAL(mc_config_load_mem(text, strlen(text), "m.yaml", &cfg, &err), -1);
    check_contains(err.msg, want);
    if (want2) check_contains(err.msg, want2);
}

/* mc_model_params counts exactly the weight elements the builder makes. */
static void
test_params_match_graph(void)
{
    static const char *const texts[] = {
        "MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 64\n    DEPTHS: [2, 4, 8, 4]\n    D_STATE: 1\n",
        "MODEL:\n  NUM_CLASSES: 17\n  SPATIALMAMBA:\n    EMBED_DIM: 34\n    DEPTHS: [1, 2, 1, 1]\n"
        "    D_STATE: 1\n    MLP_RATIO: 2.5\n    IN_CHANS: 1\n",
        "MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 6\n    DEPTHS: [1]\n    D_STATE: 1\n    MLP_RATIO: 0.5\n",
        "MODEL:\n  NUM_CLASSES: 3\n  SPATIALMAMBA:\n    EMBED_DIM: 2\n    DEPTHS: [1, 0, 1, 0, 1, 0, 1, 2]\n"
        "    D_STATE: 1\n    MLP_RATIO: 1.3\n",
        /* a backbone (stages after the last output are not built), a segmentor */
        "MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 12\n    DEPTHS: [1, 2, 1, 1]\n    D_STATE: 1\n"
        "  BACKBONE: {OUT_INDICES: [0, 2]}\n",
        "MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 16\n    DEPTHS: [1, 1, 1, 1]\n    D_STATE: 1\n"
        "  BACKBONE: {OUT_INDICES: [0, 1, 2, 3]}\n"
        "  DECODE_HEAD: {TYPE: uper_head, CHANNELS: 24, POOL_SCALES: [1, 3], NUM_CLASSES: 7}\n",
        "MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 16\n    DEPTHS: [1, 1, 1]\n    D_STATE: 1\n"
        "  BACKBONE: {OUT_INDICES: [0, 1, 2]}\n  DECODE_HEAD: {CHANNELS: 8, ALIGN_CORNERS: true}\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        ModelConfig cfg;
        McErr err = {{0}};
        int rc = mc_config_load_mem(texts[i], strlen(texts[i]), "p.yaml", &cfg, &err);
        if (rc) fprintf(stderr, "\n  %s\n", err.msg);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        Graph g;
        rc = mc_model_build(&cfg, 1, 64, 48, &g, &err);
        if (rc) fprintf(stderr, "\n  %s\n", err.msg);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        int64_t n = 0, act = 0;
        for (int j = 0; j < g.nnodes; j++) {
            int64_t e = mc_shape_numel(&g.nodes[j].shape);
            if (g.nodes[j].op == OP_WEIGHT) n += e;
            else if (e > act) act = e;
        }
        CU_ASSERT_DOUBLE_EQUAL(mc_model_params(&cfg), (double)n, 0);
        const char *where;
        double est = mc_model_max_activation(&cfg, 1, 64, 48, &where);
        if (est < (double)act) fprintf(stderr, "\n  config %zu: estimate %g < largest %lld\n", i, est, (long long)act);
        CU_ASSERT(est >= (double)act && est <= 2.0 * (double)act);
        mc_graph_free(&g);
    }
}

/* MODEL.BACKBONE / MODEL.DECODE_HEAD / DATA.IMG_SIZE [H, W]: values read,
 * each mistake refused at its key. */
static void
test_dense_keys(void)
{
    const char *text = "MODEL:\n  SPATIALMAMBA: {EMBED_DIM: 16, DEPTHS: [1, 1, 1, 1], D_STATE: 1}\n"
                       "  DECODE_HEAD: {TYPE: uper_head, CHANNELS: 24, POOL_SCALES: [1, 3], NUM_CLASSES: 7,\n"
                       "                ALIGN_CORNERS: true, IN_INDEX: [0, 1, 2], DROPOUT_RATIO: 0.1}\n"
                       "  BACKBONE: {OUT_INDICES: [0, 1, 2, 3]}\n"
                       "DATA: {IMG_SIZE: [512, 640]}\n";
    ModelConfig cfg;
    McErr err = {{0}};
    int rc = mc_config_load_mem(text, strlen(text), "m.yaml", &cfg, &err);
    if (rc) fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(cfg.nout, 4);
    CU_ASSERT_EQUAL(cfg.out_indices[0], 0);
    CU_ASSERT_EQUAL(cfg.out_indices[3], 3);
    CU_ASSERT_EQUAL(cfg.head, 1);
    CU_ASSERT_EQUAL(cfg.head_channels, 24);
    CU_ASSERT_EQUAL(cfg.npool, 2);
    CU_ASSERT_EQUAL(cfg.pool_scales[1], 3);
    CU_ASSERT_EQUAL(cfg.head_classes, 7);
    CU_ASSERT_EQUAL(cfg.align_corners, 1);
    CU_ASSERT_EQUAL(cfg.img_size, 512);
    CU_ASSERT_EQUAL(cfg.img_w, 640);
    const char *sm = "MODEL:\n  SPATIALMAMBA: {EMBED_DIM: 16, DEPTHS: [1, 1, 1], D_STATE: 1}\n";
    char t[512];
#define BAD(extra, want)                           \
    do {                                           \
        snprintf(t, sizeof t, "%s%s", sm, extra);  \
        expect_mem_fail(t, want, NULL);            \
    } while (0)
    BAD("  BACKBONE: {OUT_INDICES: [0, 3]}\n",
        "m.yaml:3:31: error: MODEL.BACKBONE.OUT_INDICES[1] is 3, but DEPTHS lists 3 stages (0..2)");
    BAD("  BACKBONE: {OUT_INDICES: [1, 1]}\n", "m.yaml:3:31: error: MODEL.BACKBONE.OUT_INDICES must be strictly increasing");
    BAD("  BACKBONE: {OUT_INDICES: []}\n", "MODEL.BACKBONE.OUT_INDICES must list 1 to 8 values, got 0");
    BAD("  BACKBONE: {}\n", "m.yaml:3:13: error: MODEL.BACKBONE needs OUT_INDICES");
    BAD("  BACKBONE: {OUT: [0]}\n", "unknown key 'OUT' in MODEL.BACKBONE (known: OUT_INDICES)");
    BAD("  DECODE_HEAD: {CHANNELS: 8}\n", "m.yaml:3:16: error: MODEL.DECODE_HEAD needs MODEL.BACKBONE.OUT_INDICES");
    BAD("  BACKBONE: {OUT_INDICES: [0, 1, 2]}\n  DECODE_HEAD: {TYPE: fcn_head}\n",
        "m.yaml:4:23: error: MODEL.DECODE_HEAD.TYPE must be uper_head");
    BAD("  BACKBONE: {OUT_INDICES: [0, 1, 2]}\n  DECODE_HEAD: {POOL_SCALES: [1, 2, 3, 4, 5, 6, 7, 8]}\n",
        "MODEL.DECODE_HEAD.POOL_SCALES must list 1 to 7 values, got 8");
    BAD("  BACKBONE: {OUT_INDICES: [0, 2]}\n  DECODE_HEAD: {}\n",
        "m.yaml:3:27: error: MODEL.DECODE_HEAD reads every stage: MODEL.BACKBONE.OUT_INDICES must be [0, ..., 2]");
    BAD("  BACKBONE: {OUT_INDICES: [0, 1, 2]}\n  DECODE_HEAD: {IN_INDEX: [1, 2]}\n",
        "MODEL.DECODE_HEAD.IN_INDEX must be [0, 1, ..., n-1]");
    BAD("  BACKBONE: {OUT_INDICES: [0, 1, 2]}\n  DECODE_HEAD: {ALIGN_CORNERS: 1}\n",
        "expected true or false for MODEL.DECODE_HEAD.ALIGN_CORNERS");
    BAD("  BACKBONE: {OUT_INDICES: [0, 1, 2]}\n  DECODE_HEAD: {CHANNEL: 8}\n", "unknown key 'CHANNEL' in MODEL.DECODE_HEAD");
    BAD("DATA: {IMG_SIZE: [512, 512, 3]}\n", "DATA.IMG_SIZE must list 1 to 2 values, got 3");
    BAD("DATA: {IMG_SIZE: [512]}\n", "DATA.IMG_SIZE must be an int or [H, W], got a list of 1");
#undef BAD
}

/* Configs the per-key ranges accept but no model can be built from. */
static void
test_model_limits(void)
{
    unsetenv("MAMBAC_MAX_PARAMS");
    unsetenv("MAMBAC_MAX_ACTIVATION");
    /* hidden = int(64 * 1e-9) = 0: at MLP_RATIO's value */
    expect_mem_fail("MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 64\n    D_STATE: 1\n    MLP_RATIO: 1e-9\n",
                    "m.yaml:5:16: error: MODEL.SPATIALMAMBA.MLP_RATIO 1e-09 leaves stage 0's MLP no hidden channel",
                    "at least 0.015625");
    /* key order does not matter: MLP_RATIO before EMBED_DIM */
    expect_mem_fail("MODEL:\n  SPATIALMAMBA:\n    MLP_RATIO: 0.1\n    EMBED_DIM: 8\n",
                    "m.yaml:3:16: error: MODEL.SPATIALMAMBA.MLP_RATIO 0.1", "int(8 * 0.1) = 0");
    /* over the parameter budget: at EMBED_DIM's value */
    expect_mem_fail("MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 65536\n    MLP_RATIO: 1024\n    D_STATE: 1\n",
                    "m.yaml:3:16: error: the model has ",
                    "e+15 parameters (8.85 PiB); the limit is 2^31 parameters (8 GiB of float32); "
                    "set MAMBAC_MAX_PARAMS to raise it");
    expect_mem_fail("MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 65536\n    DEPTHS: [1, 1, 1, 1, 1, 1, 1, 1]\n",
                    "m.yaml:3:16: error: the model has 1.9e+15 parameters (6.75 PiB)", NULL);
    /* 60 bytes that would fill 285 GiB of random weights */
    static const char big[] = "MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 4096\n    D_STATE: 1\n";
    expect_mem_fail(big, "m.yaml:3:16: error: the model has 7.64e+10 parameters (285 GiB); the limit is 2^31", NULL);
    /* no EMBED_DIM: the position of DEPTHS, then of MODEL.SPATIALMAMBA */
    expect_mem_fail("MODEL:\n  NUM_CLASSES: 10000000\n  SPATIALMAMBA:\n    DEPTHS: [1, 1, 1, 1]\n",
                    "m.yaml:4:13: error: the model has ", NULL);
    expect_mem_fail("MODEL:\n  NUM_CLASSES: 10000000\n  SPATIALMAMBA: {}\n", "m.yaml:3:3: error: the model has ", NULL);
    expect_mem_fail("MODEL:\n  SPATIALMAMBA:\n    DEPTHS: [1001]\n", "m.yaml:3:14: error: MODEL.SPATIALMAMBA.DEPTHS[0] must be between 0 and 1000", NULL);

    /* the budget is raised by the environment; malformed values are errors */
    ModelConfig cfg;
    McErr err = {{0}};
    setenv("MAMBAC_MAX_PARAMS", "2^40", 1);
    CU_ASSERT_EQUAL(mc_config_load_mem(big, strlen(big), "m.yaml", &cfg, &err), 0);
    setenv("MAMBAC_MAX_PARAMS", "1000", 1);
    expect_mem_fail("MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 8\n    DEPTHS: [1]\n",
                    "the limit is 1000 parameters (3.91 KiB of float32)", NULL);
    setenv("MAMBAC_MAX_PARAMS", "2^41", 1);
    expect_mem_fail(big, "MAMBAC_MAX_PARAMS must be a positive integer or 2^N, at most 2^40; got '2^41'", NULL);
    setenv("MAMBAC_MAX_PARAMS", "12x", 1);
    expect_mem_fail(big, "MAMBAC_MAX_PARAMS must be", NULL);
    unsetenv("MAMBAC_MAX_PARAMS");

    /* the largest activation is checked before building, with batch and size */
    CU_ASSERT_EQUAL_FATAL(mc_config_load("../examples/spatialmamba_tiny.yaml", &cfg, &err), 0);
    Graph g;
    memset(&g, 0, sizeof g);
    CU_ASSERT_EQUAL(mc_model_build(&cfg, 1, 16384, 16384, &g, &err), -1);
    check_contains(err.msg, "../examples/spatialmamba_tiny.yaml: error: at batch 1 and 16384x16384, ");
    check_contains(err.msg, "elements (32 GiB); the limit is 2^32 elements (16 GiB of float32); "
                            "set MAMBAC_MAX_ACTIVATION to raise it");
    mc_graph_free(&g);
}

/* Aliases are resolved (public configs do not use them, but YAML allows it). */
static void
test_alias(void)
{
    static const char txt[] = "D: &d [1, 2, 3]\nMODEL:\n  SPATIALMAMBA:\n    DEPTHS: *d\n"
                              "    EMBED_DIM: 16\n";
    ModelConfig cfg;
    McErr err = {{0}};
    CU_ASSERT_EQUAL_FATAL(mc_config_load_mem(txt, strlen(txt), "a.yaml", &cfg, &err), 0);
    CU_ASSERT_EQUAL(cfg.nstages, 3);
    CU_ASSERT_EQUAL(cfg.depths[2], 3);
    CU_ASSERT_EQUAL(cfg.embed_dim, 16);
}

static void
test_kind(void)
{
    McErr err = {{0}};
    CU_ASSERT_EQUAL(mc_frontend_kind("../examples/spatialmamba_tiny.yaml", &err), 1);
    CU_ASSERT_EQUAL(mc_frontend_kind(FIX "defaults.yaml", &err), 1);
    CU_ASSERT_EQUAL(mc_frontend_kind(FIX "no_model.yaml", &err), -1);
    check_contains(err.msg, FIX "no_model.yaml:1:1: error: cannot tell what this file is");
    CU_ASSERT_EQUAL(mc_frontend_kind(FIX "empty.yaml", &err), -1);
    check_contains(err.msg, FIX "empty.yaml: error: empty file");
    CU_ASSERT_EQUAL(mc_frontend_kind(FIX "bad_syntax.yaml", &err), -1);
    check_contains(err.msg, FIX "bad_syntax.yaml:5:");
    CU_ASSERT_EQUAL(mc_frontend_kind(FIX "missing.yaml", &err), -1);
    check_contains(err.msg, "cannot open");
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"examples", test_examples},
    {"public_text", test_public_text},
    {"defaults", test_defaults},
    {"ignored_keys", test_ignored_keys},
    {"unknown_key", test_unknown_key},
    {"wrong_types", test_wrong_types},
    {"bad_values", test_bad_values},
    {"structure_errors", test_structure_errors},
    {"mem_errors", test_mem_errors},
    {"alias", test_alias},
    {"kind", test_kind},
    {"params_match_graph", test_params_match_graph},
    {"model_limits", test_model_limits},
    {"dense_keys", test_dense_keys},
};

MC_UNIT_MAIN("config", tests)
