/* frontend/frontend.h -- model files into graph IR.
 *
 * Two YAML inputs: the public Spatial-Mamba config (a top-level MODEL key)
 * and the generic graph YAML (a top-level `graph` key, docs/graph-yaml.md).
 * Every user error carries file:line:col and the key.
 */
#ifndef MC_FRONTEND_H
#define MC_FRONTEND_H
#include "../ir/graph.h"

#define MC_MAX_STAGES 8
#define MC_MAX_POOL_SCALES 7 /* with the feature itself, one concat of 8 */
#define MC_MAX_DEPTH 1000 /* blocks per stage (the public models have at most 27) */
typedef struct CfgPos {
    int line, col;         /* 0: not given */
} CfgPos;
typedef struct ModelConfig {
    char type[64];         /* MODEL.TYPE, "spatial_mamba" */
    char name[64];         /* MODEL.NAME */
    int num_classes;       /* MODEL.NUM_CLASSES, default 1000 */
    int embed_dim;         /* MODEL.SPATIALMAMBA.EMBED_DIM, default 96 */
    int depths[MC_MAX_STAGES];
    int nstages;           /* len(DEPTHS), default [2,2,9,2] */
    int d_state;           /* D_STATE, default 16 (only 1 can be built) */
    double mlp_ratio;      /* MLP_RATIO, default 4.0 */
    int in_chans;          /* IN_CHANS, default 3 */
    int patch_size;        /* PATCH_SIZE, default 4 */
    int img_size, img_w;   /* DATA.IMG_SIZE: an int (square) or [H, W]; default 224 */
    /* dense prediction (docs/dense.md): MODEL.BACKBONE.OUT_INDICES (nout > 0:
     * the stages' normalized feature maps instead of the classifier head) */
    int nout;
    int out_indices[MC_MAX_STAGES];
    /* MODEL.DECODE_HEAD (uper_head on the backbone's features) */
    int head;
    int head_channels;     /* CHANNELS, default 512 */
    int npool;
    int pool_scales[MC_MAX_POOL_SCALES]; /* POOL_SCALES, default [1, 2, 3, 6] */
    int head_classes;      /* DECODE_HEAD.NUM_CLASSES, default 150 */
    int align_corners;     /* ALIGN_CORNERS, default false */
    /* the evaluation transform (docs/images.md) */
    int test_crop;         /* TEST.CROP, default true */
    int interp;            /* DATA.INTERPOLATION as PIL numbers it: 3 bicubic (default), 2 bilinear, 0 nearest */
    /* where D_STATE was set (for errors raised later) */
    int d_state_line, d_state_col;
    /* where MODEL.SPATIALMAMBA (else MODEL) and the values of EMBED_DIM, DEPTHS, MLP_RATIO are */
    CfgPos at_model, at_embed, at_depths, at_mlp;
    CfgPos at_head;        /* MODEL.DECODE_HEAD */
    char file[512];
} ModelConfig;

/* Parses the public config. */
int mc_config_load(const char *path, ModelConfig *cfg, McErr *err);
int mc_config_load_mem(const char *text, size_t len, const char *name, ModelConfig *cfg, McErr *err);

/* Checks what no single key decides: every stage's MLP has a hidden channel
 * (int(width * MLP_RATIO) >= 1) and the parameter count fits the budget
 * (ir/budget.h).  mc_config_load does it; so does mc_model_build. */
int mc_config_check(const ModelConfig *cfg, McErr *err);
/* Sizes computed from the config alone, before anything is built:
 * parameters (every weight tensor's elements), the MLP width of a stage,
 * and the largest intermediate tensor's elements for B x H x W (*where
 * names it). */
double mc_model_params(const ModelConfig *cfg);
int64_t mc_model_hidden(const ModelConfig *cfg, int stage);
double mc_model_max_activation(const ModelConfig *cfg, int B, int H, int W, const char **where);

/* Builds the model's graph for batch B and an HxW image (input "x",
 * f32 [B, in_chans, H, W]).  Outputs: the classifier's logits [B, classes];
 * a backbone's feature maps "stage<i>" [B, C_i, H_i, W_i] (NCHW), one per
 * OUT_INDICES entry; a segmentor's "seg_logits" [B, classes, H, W].  Node names follow
 * checkpoint keys (docs/ir.md).  Errors (e.g. D_STATE != 1, image too small,
 * a model or activation over budget) name the config file:line:col where
 * known. */
int mc_model_build(const ModelConfig *cfg, int B, int H, int W, Graph *g, McErr *err);

/* Generic graph YAML. */
int mc_graph_yaml_load(const char *path, Graph *g, McErr *err);
int mc_graph_yaml_load_mem(const char *text, size_t len, const char *name, Graph *g, McErr *err);
/* Writes g as generic graph YAML (parses back to the same IR). */
void mc_graph_yaml_write(const Graph *g, FILE *f);

/* Detects the kind of file: 1 = public config, 2 = graph YAML, 3 = IR text
 * (.mir), 4 = kernel IR text (.kir); -1 with err on unreadable input. */
int mc_frontend_kind(const char *path, McErr *err);

#endif
