/* ir/budget.h -- the size budgets of a model, enforced by every frontend
 * (public config, graph YAML, IR text) before anything is allocated, filled
 * or compiled.
 *
 * Two budgets, each raised (or lowered) by an environment variable holding
 * a positive integer or 2^N, at most 2^40 (the graph IR's own cap on one
 * tensor's element count):
 *   MAMBAC_MAX_PARAMS      weight elements in the whole model, default 2^31
 *                          (8 GiB of float32; Spatial-Mamba-B has 8.9e7);
 *   MAMBAC_MAX_ACTIVATION  elements of the largest intermediate tensor,
 *                          default 2^32 (16 GiB of float32).
 * A size fits when both its element count and its bytes fit (the bytes of
 * the budget counted as float32: f64 tensors count twice).  Sizes are
 * doubles: a config can describe models far beyond int64.
 */
#ifndef MC_BUDGET_H
#define MC_BUDGET_H
#include <stdint.h>
#include "diag.h"
#include "graph.h"

#define MC_DEFAULT_MAX_PARAMS ((int64_t)1 << 31)
#define MC_DEFAULT_MAX_ACTIVATION ((int64_t)1 << 32)

/* The budgets in force; -1 with err when the variable is malformed. */
int mc_budget_max_params(int64_t *out, McErr *err);
int mc_budget_max_activation(int64_t *out, McErr *err);

/* 0 when `elems` elements (`bytes` bytes) fit the parameter budget; else -1
 * with err at file:line:col (line 0: no position) saying
 * "WHAT has N parameters (X GiB); the limit is 2^31 parameters (8 GiB of
 * float32); set MAMBAC_MAX_PARAMS to raise it". */
int mc_budget_check_params(double elems, double bytes, const char *what, const char *file, int line,
                           int col, McErr *err);
/* The same for one intermediate tensor and MAMBAC_MAX_ACTIVATION. */
int mc_budget_check_activation(double elems, double bytes, const char *what, const char *file,
                               int line, int col, McErr *err);

/* For readers that add nodes one by one (IR text, graph YAML): checks node
 * n just added at file:line:col -- a weight adds to *wparams / *wbytes (the
 * running totals, start at 0) against the parameter budget, any other node's
 * elements are checked against the activation budget. */
int mc_budget_check_node(const Node *n, double *wparams, double *wbytes, const char *file, int line,
                         int col, McErr *err);

#endif
