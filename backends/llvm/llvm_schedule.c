/* backends/llvm/llvm_schedule.c -- every tiling decision of the LLVM code
 * generator, in one place: a kernel's schedule (Sched, ir/sched.def) on a
 * target.
 *
 * Takes a kernel and a McLlvmTarget; produces the schedule the code
 * generator follows (mc_llvm_plan turns it into the KPlan of
 * llvm_internal.h):
 *
 *   gemm      tile_m x tile_n register tile (tile_m rows x tile_n/vec
 *             vectors of accumulators, the micro-kernel of llvm_gemm.c),
 *             block_m rows per parallel task (whole tiles), order 1 = row
 *             blocks outer / 2 = column panels outer
 *   conv      tile_m output pixels x tile_n output channels register tile;
 *             a deep one (a packed panel beyond L2's share, or any of the
 *             three set) is blocked: K blocks of tile_k input channels of
 *             one tap, a task block_m output pixels (whole output rows) x
 *             block_n output channels (whole panels)
 *   scan      tile_n channels per task (1 to 4 vectors: as many independent
 *             recurrences)
 *   fusion25  tile_n channels per task
 *   resize, avgpool  tile_n channels per step of a pixel's channel loop
 *             (tile_n/vec vectors as one wide vector, llvm_dense.c)
 *   gemm, conv  bf16 = 1 (--precision bf16, set by the tile pass): weights
 *             packed bf16, products on bf16 pairs (llvm_gemm.c); a GEMM's
 *             row block is cut so its bf16 copy fits MC_LLVM_BF16_ABUF, a
 *             conv that is blocked or whose input rows do not fit is fp32
 *   every kind: vec = the target's f32 lanes, grain = the parallel-for grain
 *
 * Fields set in Kernel.sched (by the tile pass, llvm_passes.c, or by hand in
 * a .kir) are obeyed; every unset one (0) gets the target's choice, derived
 * from the set ones (a hand-set tile_n changes the default tile_m).  The
 * tile pass records exactly what this returns, so the code of the default
 * schedule is the code of no schedule.  A schedule whose vec is not the
 * target's lanes was made for another target and is ignored here (the
 * target decides itself); the callers decide whether that is an error
 * (mc_llvm_schedule_check).  Owns nothing.
 */
#include "llvm_internal.h"

/* bits of the fields a kind reads */
enum {
#define SCHED(field, nm, doc) SB_##field,
#include "../../ir/sched.def"
#undef SCHED
};
#define SF(f) (1u << SB_##f)

static unsigned
fields_read(KernelKind kind)
{
    unsigned all = SF(vec) | SF(grain);
    switch (kind) {
    case KK_GEMM: return all | SF(tile_m) | SF(tile_n) | SF(block_m) | SF(order) | SF(bf16);
    case KK_CONV: return all | SF(tile_m) | SF(tile_n) | SF(tile_k) | SF(block_m) | SF(block_n) | SF(bf16);
    case KK_SCAN:
    case KK_FUSION25:
    case KK_RESIZE:
    case KK_AVGPOOL: return all | SF(tile_n);
    default: return all;
    }
}

static int64_t
cdiv(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* ------------------------------------------------------------ the target's choices */

/* micro-kernel column vectors for N output columns */
static int64_t
default_nv(const McLlvmTarget *t, int64_t N)
{
    int nvmax = t->vregs >= 32 ? 4 : 2;
    int64_t nv = cdiv(N, t->lanes);
    if (nv > nvmax) nv = nvmax;
    return nv < 1 ? 1 : nv;
}

/* micro-kernel rows for nv column vectors: the accumulators, the nv weight
 * vectors and the broadcast fill the registers */
static int64_t
default_mr(const McLlvmTarget *t, int64_t nv)
{
    int64_t mr = (t->vregs - nv - 1) / nv;
    if (mr > MC_LLVM_MAX_MR) mr = MC_LLVM_MAX_MR;
    return mr < 1 ? 1 : mr;
}

/* GEMM task grid.  Enough tasks for the threads to balance (GEMM_TASKS),
 * and cache reuse: when A (M x K) fits in L2 and the packed weights are
 * larger, tasks run panel-major (order 2), so each thread streams its share
 * of the weights from memory once and re-reads A from L2; otherwise row
 * blocks (A rows of at most GEMM_ABLOCK bytes) are outer and the weights,
 * re-read per block, are the cache-resident side. */
#define GEMM_TASKS 16
#define GEMM_ABLOCK (256 * 1024)
#define GEMM_AL2 (512 * 1024)

static int64_t
default_order(const Kernel *k, int64_t nr)
{
    int64_t abytes = k->M * k->K * 4, bbytes = cdiv(k->N, nr) * nr * k->K * 4;
    return bbytes > abytes && abytes <= GEMM_AL2 ? 2 : 1;
}

static int64_t
default_block_m(const Kernel *k, int64_t mr, int64_t nr, int64_t order)
{
    int64_t ntiles = cdiv(k->M, mr), npan = cdiv(k->N, nr), nmb = cdiv(GEMM_TASKS, npan);
    if (ntiles < 1) ntiles = 1;
    if (order != 2) {
        int64_t tmax = GEMM_ABLOCK / (mr * (k->K > 0 ? k->K : 1) * 4);
        if (tmax < 1) tmax = 1;
        if (cdiv(ntiles, tmax) > nmb) nmb = cdiv(ntiles, tmax);
    }
    if (nmb > ntiles) nmb = ntiles;
    return cdiv(ntiles, nmb) * mr;
}

/* Blocked convolution (llvm_gemm.c, conv_blocked).  The plain implicit
 * GEMM streams a tile's whole packed panel (K = kh*kw*Ci rows of tile_n
 * floats) per tile of tile_m pixels; beyond CONV_PANEL bytes that panel no
 * longer stays in L2 and every tile re-reads it from memory.  Blocked, K
 * is cut into blocks of tile_k channels of one tap (equal blocks, at most
 * CONV_KC), a block's panel slice serves every tile of the task, and the
 * partial sums wait in the output.  A task is rows x panels: the most
 * reuse per byte (Mb*Nb / (Mb+Nb), Mb pixels, Nb channels) among the
 * blocks whose working set fits CONV_L2 -- the partial sums, the input
 * rows the block's taps read (channel blocks are outer: all of a channel
 * block's taps reuse them) and two panel slices (one prefetched) -- with
 * at least CONV_TASKS tasks where the shape has them and within 5% of the
 * least imbalance on 2 and 4 threads; tile_k the largest that fits, at
 * least CONV_KC_MIN (ties to the larger). */
#define CONV_PANEL (512 * 1024)
#define CONV_KC 512
#define CONV_KC_MIN 256
#define CONV_L2 (1280 * 1024)
#define CONV_TASKS 8

/* the partial sums can wait in the output: its channels contiguous, and no
 * operand (input, epilogue operand) in its buffer that they would overwrite */
static int
conv_can_block(const Kernel *k)
{
    const View *o = &k->out;
    if (o->rank != 4 || o->stride[3] != 1) return 0;
    for (int i = 0; i < k->nin; i++)
        if (i != 1 && k->in[i].buf == o->buf) return 0;
    for (int i = 0; i < k->nargs; i++)
        if (k->args[i].buf == o->buf) return 0;
    return 1;
}

static int
conv_is_blocked(const Kernel *k, const Sched *in, int64_t tile_n)
{
    const View *w = &k->in[1];
    int64_t K = w->shape[1] * w->shape[2] * w->shape[3];
    return in->tile_k || in->block_m || in->block_n || K * tile_n * (in->bf16 ? 2 : 4) > CONV_PANEL;
}

/* the largest tile_k (equal blocks of Ci, at most CONV_KC) whose working
 * set for r output rows x nb channels fits CONV_L2; 0 if below CONV_KC_MIN
 * (or Ci) */
static int64_t
conv_fit_kc(const Kernel *k, int64_t r, int64_t nb, int64_t nr)
{
    const View *x = &k->in[0], *w = &k->in[1];
    int64_t H = x->shape[1], W = x->shape[2], Ci = w->shape[1], Wo = k->out.shape[2];
    int64_t arows = r * k->attrs.stride[0] + (w->shape[2] - 1) * (k->attrs.dil[0] ? k->attrs.dil[0] : 1);
    if (arows > H) arows = H;
    int64_t room = CONV_L2 - r * Wo * nb * 4, per = arows * W * 4 + 2 * nr * 4; /* bytes per channel of a block */
    int64_t kc = room > 0 ? room / per : 0;
    if (kc > CONV_KC) kc = CONV_KC;
    if (kc < (Ci < CONV_KC_MIN ? Ci : CONV_KC_MIN)) return 0;
    return cdiv(Ci, cdiv(Ci, kc));
}

/* how much longer than an even share the busiest of 2 or 4 threads works
 * on n equal tasks (the runtime gives each thread a contiguous range) */
static double
conv_imbalance(int64_t n)
{
    double u = 1;
    for (int64_t t = 2; t <= 4; t += 2) {
        double v = (double)(cdiv(n, t) * t) / (double)n;
        if (v > u) u = v;
    }
    return u;
}

/* the task block, *rows output rows x *pans panels of nr channels, and *kc;
 * a nonzero one is kept (set by hand) and the others chosen */
static void
default_conv_block(const Kernel *k, int64_t nr, int64_t *rows, int64_t *pans, int64_t *kc)
{
    const View *o = &k->out;
    int64_t B = o->shape[0], Ho = o->shape[1], Wo = o->shape[2], Ci = k->in[1].shape[1];
    int64_t npan = cdiv(k->in[1].shape[0], nr);
    int64_t hr = *rows, hp = *pans, hk = *kc; /* set by hand */
    int64_t want = B * (hr ? cdiv(Ho, hr) : Ho) * (hp ? cdiv(npan, hp) : npan);
    if (want > CONV_TASKS) want = CONV_TASKS;
    int64_t rmin = hr ? hr : 1, pmin = hp ? hp : 1; /* the smallest block: the choice when none fits */
    double best = -1, umin = 1e9;
    *rows = rmin;
    *pans = pmin;
    *kc = hk ? hk : cdiv(Ci, cdiv(Ci, CONV_KC));
    /* by the number of blocks, rows and panels cut as evenly as they go;
     * pass 0 finds the least imbalance, pass 1 the most reuse within 5% of it */
    for (int pass = 0; pass < 2; pass++)
        for (int64_t nrb = 1; nrb <= (hr ? 1 : Ho); nrb++)
            for (int64_t ng = 1; ng <= (hp ? 1 : npan); ng++) {
                int64_t r = hr ? hr : cdiv(Ho, nrb), pg = hp ? hp : cdiv(npan, ng), mb = r * Wo, nb = pg * nr;
                if ((!hr && cdiv(Ho, r) != nrb) || (!hp && cdiv(npan, pg) != ng)) continue; /* a cut seen before */
                int64_t n = B * cdiv(Ho, r) * cdiv(npan, pg);
                if (n < want) continue;
                int64_t fit = conv_fit_kc(k, r, nb, nr), c = hk ? hk : fit;
                if (!fit || fit < c) continue;
                double u = conv_imbalance(n);
                if (pass == 0) {
                    if (u < umin) umin = u;
                    continue;
                }
                double score = (double)mb * (double)nb / (double)(mb + nb);
                if (u > umin * 1.05) continue;
                if (score > best || (score == best && c > *kc)) {
                    best = score;
                    *rows = r;
                    *pans = pg;
                    *kc = c;
                }
            }
}

/* scan: channel vectors per task, at least 16 tasks per batch image when D
 * allows (a scan is sequential along the sequence: its channels are all the
 * parallelism there is, and 16 threads need more than the 4 tasks this
 * gave before; fewer interleaved vectors per task cost 5-8% of the scans'
 * time on one thread, docs/performance.md), at most MC_LLVM_MAX_SCAN_GROUP (the row loop then reads that many
 * contiguous lines of each operand and carries as many independent
 * recurrences) */
static int64_t
default_scan_group(int64_t nch)
{
    int64_t g = nch / 16;
    return g < 1 ? 1 : g > MC_LLVM_MAX_SCAN_GROUP ? MC_LLVM_MAX_SCAN_GROUP : g;
}

/* fusion25: channel vectors per task for `rows` output rows (B*H), at least
 * 32 tasks where the channels allow (the late stages have 7 or 14 rows at
 * 224x224, too few to balance 2+ threads) */
static int64_t
default_f25_group(int64_t rows, int64_t nch)
{
    if (rows < 1) rows = 1;
    if (nch < 1) return 1;
    int64_t nck = (32 + rows - 1) / rows;
    if (nck > nch) nck = nch;
    return (nch + nck - 1) / nck;
}

/* resize/avgpool: channel vectors processed as one wide vector, at most 4
 * (2 with 16 vector registers: the four source vectors of a resize, or the
 * double accumulators of a pool, stay in registers) and 64 lanes */
static int64_t
default_dense_nw(const McLlvmTarget *t, int64_t C)
{
    int64_t nw = C / t->lanes, nwmax = t->vregs >= 32 ? 4 : 2;
    while (nwmax > 1 && nwmax * t->lanes > 64) nwmax--;
    return nw < 1 ? 1 : nw > nwmax ? nwmax : nw;
}

static int64_t
default_grain(const Kernel *k)
{
    int64_t g = 1, cols;
    if (k->kind == KK_RESIZE || k->kind == KK_AVGPOOL) {
        /* output rows of about 8192 elements written (resize) or read (pool) */
        const View *x = &k->in[0], *o = &k->out;
        cols = o->shape[2] * o->shape[3];
        if (k->kind == KK_AVGPOOL) cols = cdiv(x->shape[1], o->shape[1]) * x->shape[2] * x->shape[3];
        g = cols >= 8192 ? 1 : 8192 / (cols ? cols : 1);
    } else if (k->kind == KK_LAYERNORM) {
        cols = mc_llvm_cols(k->out.shape, k->out.rank);
        g = cols >= 4096 ? 1 : 4096 / (cols ? cols : 1);
    } else if (k->kind == KK_ELTWISE) {
        Kernel m;
        mc_llvm_eltwise_merge(k, &m);
        cols = mc_llvm_cols(m.out.shape, m.out.rank);
        g = cols >= 8192 ? 1 : 8192 / (cols ? cols : 1);
    }
    return g < 1 ? 1 : g;
}

/* ------------------------------------------------------------ resolution */

/* tile_n of a kernel whose tiles are whole vectors, 1..maxv of them */
static int
check_tile_n(int64_t tile_n, int L, int64_t maxv, const char *what, McErr *err)
{
    if (tile_n % L == 0 && (maxv <= 0 || tile_n / L <= maxv)) return 0;
    if (maxv > 0)
        return mc_err(err, "tile_n=%lld: %s %d to %lld columns, a multiple of the vector width (vec=%d)",
                    (long long)tile_n, what, L, (long long)(maxv * L), L);
    return mc_err(err, "tile_n=%lld: %s a multiple of the vector width (vec=%d)", (long long)tile_n, what, L);
}

/* --precision bf16 (s->bf16 set, tiles resolved): a task's bf16 copy of
 * its A rows fits MC_LLVM_BF16_ABUF (llvm_gemm.c) -- a GEMM's row block of
 * block_m rows, a conv's kh input rows; a GEMM row block chosen here (not
 * set by hand) is cut to fit.  A blocked conv runs in fp32. */
static int
resolve_bf16(const Kernel *k, const McLlvmTarget *t, const Sched *in, Sched *s, McErr *err)
{
    if (!s->bf16) return 0;
    if (s->bf16 != 1) return mc_err(err, "bf16=%lld: 1 (bf16 weights and products) or unset (fp32)", (long long)s->bf16);
    if (!t->bf16) return mc_err(err, "bf16=1: the target has no bf16 dot products (x86-64 avx512bf16, AArch64 bf16)");
    int64_t row = mc_llvm_bf16_kpad(k->K) * 2;
    const int cap = MC_LLVM_BF16_ABUF;
    if (k->kind == KK_CONV) {
        if (s->tile_k) return mc_err(err, "bf16=1: a blocked conv (tile_k=%lld) runs in fp32", (long long)s->tile_k);
        const View *x = &k->in[0];
        int64_t bytes = k->in[1].shape[2] * x->shape[2] * mc_llvm_bf16_kpad(x->shape[3]) * 2;
        if (bytes > cap)
            return mc_err(err, "bf16=1: the %lld input rows of a task take %lld KB in bf16, more than %d KB",
                          (long long)k->in[1].shape[2], (long long)(bytes >> 10), cap >> 10);
        return 0;
    }
    if (s->tile_m * row > cap)
        return mc_err(err, "bf16=1: K=%lld is too deep for bf16 (a tile's rows take more than %d KB)", (long long)k->K,
                      cap >> 10);
    if (s->block_m * row <= cap) return 0;
    if (in->block_m)
        return mc_err(err, "block_m=%lld: with bf16=1 a row block holds at most %lld rows (its bf16 copy in %d KB)",
                      (long long)s->block_m, (long long)(cap / row / s->tile_m * s->tile_m), cap >> 10);
    s->block_m = cap / row / s->tile_m * s->tile_m;
    return 0;
}

/* a conv's blocking (tile_m, tile_n resolved): none for a shallow one */
static int
resolve_conv(const Kernel *k, const Sched *in, Sched *s, McErr *err)
{
    if (!conv_is_blocked(k, in, s->tile_n)) return 0;
    if (!conv_can_block(k)) {
        if (!in->tile_k && !in->block_m && !in->block_n) return 0;
        return mc_err(err, "%s=%lld: a blocked conv keeps its partial sums in its output, which needs contiguous "
                      "channels and no operand in the output's buffer",
                      in->tile_k ? "tile_k" : in->block_m ? "block_m" : "block_n",
                      (long long)(in->tile_k ? in->tile_k : in->block_m ? in->block_m : in->block_n));
    }
    const View *o = &k->out;
    int64_t Ci = k->in[1].shape[1], Ho = o->shape[1], Wo = o->shape[2];
    if (s->tile_k > Ci)
        return mc_err(err, "tile_k=%lld: a conv K block holds 1 to %lld input channels (Ci, of one tap)",
                      (long long)s->tile_k, (long long)Ci);
    if (s->block_m % Wo || s->block_m > Ho * Wo)
        return mc_err(err, "block_m=%lld: a conv task holds whole output rows, a multiple of %lld up to %lld",
                      (long long)s->block_m, (long long)Wo, (long long)(Ho * Wo));
    if (s->block_n % s->tile_n)
        return mc_err(err, "block_n=%lld: a conv task holds whole panels, a multiple of tile_n=%lld",
                      (long long)s->block_n, (long long)s->tile_n);
    int64_t rows = s->block_m / Wo, pans = s->block_n / s->tile_n, kc = s->tile_k;
    default_conv_block(k, s->tile_n, &rows, &pans, &kc);
    s->block_m = rows * Wo;
    s->block_n = pans * s->tile_n;
    s->tile_k = kc;
    return 0;
}

/* s = in's set fields + t's choices for the others; -1 with err when a set
 * field cannot be honoured */
static int
resolve(const Kernel *k, const McLlvmTarget *t, const Sched *in, Sched *s, McErr *err)
{
    const char *kind = mc_kernel_kind_name(k->kind);
    unsigned used = fields_read(k->kind);
#define SCHED(field, nm, doc)                                                                                         \
    if (in->field < 0) return mc_err(err, "%s=%lld: must be positive", nm, (long long)in->field);                    \
    if (in->field && !(used & SF(field)))                                                                             \
        return mc_err(err, "%s=%lld: a %s kernel has no such choice on the LLVM target", nm, (long long)in->field,   \
                    kind);
#include "../../ir/sched.def"
#undef SCHED
    *s = *in;
    int L = t->lanes;
    s->vec = L;
    if (!s->grain) s->grain = default_grain(k);
    const View *o = &k->out;
    switch (k->kind) {
    case KK_GEMM:
    case KK_CONV: {
        int64_t N = k->kind == KK_GEMM ? k->N : k->in[1].shape[0];
        if (s->tile_n && check_tile_n(s->tile_n, L, MC_LLVM_MAX_NV, "the micro-kernel holds", err)) return -1;
        if (!s->tile_n) s->tile_n = default_nv(t, N) * L;
        if (s->tile_m > MC_LLVM_MAX_MR)
            return mc_err(err, "tile_m=%lld: the %s micro-kernel holds 1 to %d rows", (long long)s->tile_m, kind,
                        MC_LLVM_MAX_MR);
        if (!s->tile_m) s->tile_m = default_mr(t, s->tile_n / L);
        if (k->kind == KK_CONV) return resolve_conv(k, in, s, err) || resolve_bf16(k, t, in, s, err) ? -1 : 0;
        if (s->order > 2) return mc_err(err, "order=%lld: 1 (row blocks outer) or 2 (panels outer)", (long long)s->order);
        if (!s->order) s->order = default_order(k, s->tile_n);
        if (s->block_m % s->tile_m)
            return mc_err(err, "block_m=%lld: a task holds whole tiles, a multiple of tile_m=%lld", (long long)s->block_m,
                        (long long)s->tile_m);
        if (!s->block_m) s->block_m = default_block_m(k, s->tile_m, s->tile_n, s->order);
        if (resolve_bf16(k, t, in, s, err)) return -1;
        break;
    }
    case KK_SCAN:
        if (s->tile_n && check_tile_n(s->tile_n, L, MC_LLVM_MAX_SCAN_GROUP, "a scan task holds", err)) return -1;
        if (!s->tile_n) s->tile_n = default_scan_group(cdiv(mc_llvm_cols(o->shape, o->rank), L)) * L;
        break;
    case KK_FUSION25:
        if (s->tile_n && check_tile_n(s->tile_n, L, 0, "a fusion25 task holds", err)) return -1;
        if (!s->tile_n) s->tile_n = default_f25_group(o->shape[0] * o->shape[1], cdiv(k->in[1].shape[0], L)) * L;
        break;
    case KK_RESIZE:
    case KK_AVGPOOL: {
        int64_t maxw = 64 / L > 4 ? 4 : 64 / L < 1 ? 1 : 64 / L; /* wide mode: 4 vectors, 64 lanes */
        if (s->tile_n && check_tile_n(s->tile_n, L, maxw, "a resize or avgpool step holds", err)) return -1;
        if (!s->tile_n) s->tile_n = default_dense_nw(t, o->shape[3]) * L;
        break;
    }
    default:
        break;
    }
    return 0;
}

int
mc_llvm_schedule(const Kernel *k, const McLlvmTarget *t, Sched *s, McErr *err)
{
    static const Sched none;
    if (k->sched.vec && k->sched.vec != t->lanes) { /* made for another target: only its precision holds */
        Sched prec = none;
        prec.bf16 = k->sched.bf16;
        if (resolve(k, t, &prec, s, err)) {
            resolve(k, t, &none, s, NULL);
            return -1;
        }
        return 1;
    }
    if (resolve(k, t, &k->sched, s, err)) {
        resolve(k, t, &none, s, NULL);
        return -1;
    }
    return 0;
}

int
mc_llvm_schedule_check(const KProgram *p, const McLlvmTarget *const *t, int nt, McErr *err)
{
    for (int i = 0; i < p->nk; i++) {
        const Kernel *k = &p->k[i];
        const char *name = k->name ? k->name : "?";
        int any = 0;
        for (int j = 0; j < nt; j++) {
            Sched s;
            McErr why;
            int r = mc_llvm_schedule(k, t[j], &s, &why);
            if (r < 0)
                return mc_err(err, "llvm: kernel k%d (%s): schedule %s (target %s; edit or delete the schedule line)", i,
                              name, why.msg, t[j]->cpu);
            any |= r == 0;
        }
        if (!any && nt == 1)
            return mc_err(err,
                          "llvm: kernel k%d (%s): schedule vec=%lld, but the target (%s) has %d f32 lanes: the schedule "
                          "was made for another target (dump the kernel IR for this one, or delete the schedule line)",
                          i, name, (long long)k->sched.vec, t[0]->cpu, t[0]->lanes);
        if (!any)
            return mc_err(err,
                          "llvm: kernel k%d (%s): schedule vec=%lld, but no CPU of this build has %lld f32 lanes: the "
                          "schedule was made for another target (dump the kernel IR for one of them, or delete the "
                          "schedule line)",
                          i, name, (long long)k->sched.vec, (long long)k->sched.vec);
    }
    return 0;
}
