/* backends/llvm/llvm_codegen.c -- KProgram -> LLVM module.
 *
 * Takes a KProgram and a McLlvmTarget; produces a McLlvmModule (its own
 * LLVMContext) holding
 *   - one internal function per kernel, `void mc_k<i>(ptr ctx, i64 begin,
 *     i64 end)`, computing the part [begin, end) of the kernel's parallel
 *     range (docs/codegen.md lists the range per kind);
 *   - `i32 <name>_run(ptr weights, ptr input, ptr output, ptr scratch)`
 *     (a program with n > 1 outputs: one pointer per output, in the
 *     graph's order, `(weights, input, output0, ..., output<n-1>, scratch)`),
 *     which runs the internal `<name>_team(args)` on every thread of one
 *     team (mc_rt_team_run: one OpenMP parallel region per inference); each
 *     thread fills its ctx = {weights, scratch, input, output0} (outputs 1..
 *     in the slots after the image index's) and calls
 *     mc_rt_team_for(mc_k<i>, &ctx, n_i, grain_i) for each kernel in order
 *     (its share of the range, then a barrier),
 *     between mc_rt_kernel_begin(i)/end(i) when mc_rt_profile_active is set;
 *     a program with a per-image Segment (the schedule-images kernel pass,
 *     llvm_passes.c): its segment's calls sit in a
 *     loop over images, ctx[4] = image, and those kernels add
 *     image * Buffer.image_bytes to the buffers that have it;
 *   - i64 constants <name>_weights_size, _scratch_size, _input_size,
 *     _output_size (output 0's; with several outputs also _output1_size,
 *     ...).
 * Also the Plan (per kernel: its schedule, llvm_schedule.c, as micro-kernel
 * shape, GEMM task grid, parallel range and grain, and its packed offsets;
 * per weight: where its graph-layout copy is, if any kernel reads it
 * through a view) and the weight packer that writes the blob the code
 * reads, each weight once.  Owns the module
 * (mc_llvm_module_free).
 */
#include "llvm_internal.h"
#include "../../ir/weights_blob.h"
#include "../artifact.h"
#include "../../passes/lower.h"
#include <stdlib.h>
#include <string.h>

static int64_t
align64(int64_t v)
{
    return (v + 63) & ~(int64_t)63;
}

static int64_t
cdiv(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* kernels whose in[1] (a weight) is read only in the packed layout */
static int
packs_in1(KernelKind k)
{
    return k == KK_GEMM || k == KK_CONV || k == KK_DWCONV || k == KK_FUSION25;
}

/* ------------------------------------------------------------ shared code */

int
mc_llvm_kernel_slots(const Kernel *k, int *bufs)
{
    int n = 0;
    const View *v[MC_LLVM_MAX_SLOTS];
    for (int j = 0; j < k->nin; j++) v[n++] = &k->in[j];
    v[n++] = &k->out;
    for (int j = 0; j < k->nargs; j++) v[n++] = &k->args[j];
    int ns = 0;
    for (int j = 0; j < n; j++) {
        int s = 0;
        while (s < ns && bufs[s] != v[j]->buf) s++;
        if (s == ns) bufs[ns++] = v[j]->buf;
    }
    return ns;
}

int
mc_llvm_call_table(const KProgram *p, const Plan *pl, int k, int64_t *tab)
{
    int bufs[MC_LLVM_MAX_SLOTS], ns = mc_llvm_kernel_slots(&p->k[k], bufs);
    for (int s = 0; s < ns; s++) tab[s] = mc_llvm_buf_offset(p, pl, bufs[s]);
    tab[ns] = pl->k[k].pack_off;
    return ns + 1;
}

typedef struct Sig {
    uint8_t *b;
    size_t n, cap;
    int ok;
} Sig;

static void
put(Sig *s, const void *p, size_t n)
{
    if (!s->ok) return;
    if (s->n + n > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        while (cap < s->n + n) cap *= 2;
        uint8_t *b = realloc(s->b, cap);
        if (!b) {
            s->ok = 0;
            return;
        }
        s->b = b, s->cap = cap;
    }
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

static void
put64(Sig *s, int64_t v)
{
    put(s, &v, sizeof v);
}

static void
put_view(Sig *s, const View *v, const int *bufs, int ns)
{
    int slot = 0;
    while (slot < ns && bufs[slot] != v->buf) slot++;
    put64(s, slot);
    put64(s, v->rank);
    for (int d = 0; d < v->rank && d < MC_MAX_RANK; d++) put64(s, v->shape[d]), put64(s, v->stride[d]);
    put64(s, v->offset);
}

/* Everything of kernel i that its code depends on, buffers by slot (the
 * kernel's own numbering) rather than by id, and not where the buffers and
 * the packed weights are: field by field, so no padding byte enters. */
static void
kernel_sig(const KProgram *p, const Plan *pl, int i, Sig *s)
{
    const Kernel *k = &p->k[i];
    const KPlan *kp = &pl->k[i];
    int bufs[MC_LLVM_MAX_SLOTS], ns = mc_llvm_kernel_slots(k, bufs);
    s->n = 0;
    put64(s, k->kind);
    put64(s, k->nin);
    for (int j = 0; j < k->nin; j++) put_view(s, &k->in[j], bufs, ns);
    put_view(s, &k->out, bufs, ns);
    put64(s, k->nargs);
    for (int j = 0; j < k->nargs; j++) put_view(s, &k->args[j], bufs, ns);
    put64(s, k->nexpr);
    for (int j = 0; j < k->nexpr; j++) {
        const EInstr *e = &k->expr[j];
        put64(s, e->op), put64(s, e->a), put64(s, e->b), put64(s, e->arg);
        put(s, &e->imm, sizeof e->imm);
    }
    put64(s, k->softplus_dt);
    const Attrs *a = &k->attrs;
    for (int d = 0; d < 2; d++) put64(s, a->stride[d]), put64(s, a->pad[d]), put64(s, a->dil[d]), put64(s, a->size[d]);
    put64(s, a->groups), put64(s, a->start), put64(s, a->len), put64(s, a->align_corners);
    put(s, &a->eps, sizeof a->eps);
    for (int d = 0; d < MC_MAX_RANK; d++) put64(s, a->perm[d]);
    put64(s, k->M), put64(s, k->N), put64(s, k->K);
    put64(s, k->host), put64(s, k->fuse);
#define SCHED(field, name, doc) put64(s, k->sched.field);
#include "../../ir/sched.def"
#undef SCHED
    put64(s, kp->mr), put64(s, kp->nv), put64(s, kp->nr), put64(s, kp->pnr), put64(s, kp->pcp);
    put64(s, kp->pack_off >= 0), put64(s, kp->pack_bytes), put64(s, kp->n), put64(s, kp->grain);
    put64(s, kp->nmb), put64(s, kp->npan), put64(s, kp->tpb), put64(s, kp->panel_major), put64(s, kp->group);
    put64(s, kp->kc), put64(s, kp->crows), put64(s, kp->cpan), put64(s, kp->bf16), put64(s, kp->kpad);
    int seg = mc_kprogram_segment_of(p, i);
    put64(s, seg >= 0);
    put64(s, seg >= 0 ? p->segs[seg].groups : 0);
    for (int j = 0; j < ns; j++) {
        const Buffer *B = &p->bufs[bufs[j]];
        put64(s, B->kind);
        put64(s, B->kind == BUF_OUTPUT ? mc_kprogram_output_index(p, bufs[j]) : -1);
        put64(s, B->bytes), put64(s, B->image_bytes), put64(s, B->group_bytes);
        put64(s, B->shape.rank);
        for (int d = 0; d < B->shape.rank && d < MC_MAX_RANK; d++) put64(s, B->shape.d[d]);
    }
}

/* pl->rep, shared, nclasses: kernels of equal signature share a function.
 * A kernel fused into another (host >= 0) keeps its own, as does every
 * kernel when memory runs out (nothing shared). */
void
mc_llvm_plan_classes(const KProgram *p, Plan *pl)
{
    int nk = p->nk;
    pl->rep = malloc(sizeof(int) * (size_t)(nk ? nk : 1));
    pl->shared = calloc((size_t)(nk ? nk : 1), sizeof(int));
    uint64_t *h = malloc(sizeof(uint64_t) * (size_t)(nk ? nk : 1));
    Sig *sig = calloc((size_t)(nk ? nk : 1), sizeof(Sig));
    int ok = pl->rep && pl->shared && h && sig;
    for (int i = 0; ok && i < nk; i++) {
        sig[i].ok = 1;
        kernel_sig(p, pl, i, &sig[i]);
        ok = sig[i].ok;
        h[i] = mc_artifact_fnv1a64(sig[i].b, sig[i].n);
    }
    pl->nclasses = 0;
    for (int i = 0; pl->rep && i < nk; i++) {
        pl->rep[i] = i;
        for (int j = 0; ok && j < i && p->k[i].host < 0; j++)
            if (pl->rep[j] == j && h[j] == h[i] && p->k[j].host < 0 && sig[j].n == sig[i].n &&
                !memcmp(sig[j].b, sig[i].b, sig[i].n)) {
                pl->rep[i] = j;
                pl->shared[i] = pl->shared[j] = 1;
                break;
            }
        pl->nclasses += pl->rep[i] == i;
    }
    for (int i = 0; sig && i < nk; i++) free(sig[i].b);
    free(sig);
    free(h);
    if (!pl->shared) { /* out of memory: no sharing */
        free(pl->rep);
        pl->rep = NULL;
    }
}

int
mc_llvm_plan(const KProgram *p, const McLlvmTarget *t, const McLlvmTarget *pk, Plan *pl)
{
    int fits = 1;
    if (!pk) pk = t;
    memset(pl, 0, sizeof *pl);
    pl->nk = p->nk;
    pl->k = calloc((size_t)(p->nk ? p->nk : 1), sizeof(KPlan));
    pl->nbufs = p->nbufs;
    pl->woff = malloc(sizeof(int64_t) * (size_t)(p->nbufs ? p->nbufs : 1));
    for (int i = 0; i < p->nbufs; i++) pl->woff[i] = -1;
    /* weights read through views keep their graph layout; the others are
     * stored only packed (each weight once, in the layout its kernel reads) */
    for (int i = 0; i < p->nk; i++) {
        const Kernel *k = &p->k[i];
        for (int j = 0; j < k->nin; j++)
            if (!(j == 1 && packs_in1(k->kind)) && p->bufs[k->in[j].buf].kind == BUF_WEIGHT) pl->woff[k->in[j].buf] = 0;
        for (int j = 0; j < k->nargs; j++)
            if (p->bufs[k->args[j].buf].kind == BUF_WEIGHT) pl->woff[k->args[j].buf] = 0;
    }
    int64_t off = 0;
    for (int i = 0; i < p->nbufs; i++) {
        if (pl->woff[i] < 0) continue;
        pl->woff[i] = off;
        off = align64(off + p->bufs[i].bytes);
    }
    int L = t->lanes, Lp = pk->lanes;
    if (Lp % L) fits = 0;
    for (int i = 0; i < p->nk; i++) {
        const Kernel *k = &p->k[i];
        KPlan *kp = &pl->k[i];
        Sched s, ps; /* the packing target's schedule: its panels are the blob's */
        mc_llvm_schedule(k, t, &s, NULL);
        mc_llvm_schedule(k, pk, &ps, NULL);
        kp->pack_off = -1;
        kp->grain = s.grain;
        kp->mr = (int)s.tile_m;
        kp->nv = (int)(s.tile_n / L);
        kp->nr = (int)s.tile_n;
        kp->pnr = ps.tile_n;
        kp->group = s.tile_n / L;
        const View *o = &k->out;
        int64_t rows = mc_llvm_rows(o->shape, o->rank), cols = mc_llvm_cols(o->shape, o->rank);
        switch (k->kind) {
        case KK_GEMM: {
            if (kp->pnr % kp->nr || s.bf16 != ps.bf16) fits = 0;
            kp->pack_bytes = cdiv(k->N, kp->pnr) * k->K * kp->pnr * 4;
            if ((kp->bf16 = (int)s.bf16)) { /* [kpad/2][pnr][2] bf16 a panel */
                kp->kpad = mc_llvm_bf16_kpad(k->K);
                kp->pack_bytes = cdiv(k->N, kp->pnr) * kp->kpad * kp->pnr * 2;
            }
            int64_t ntiles = cdiv(k->M, kp->mr);
            kp->panel_major = s.order == 2;
            kp->tpb = s.block_m / kp->mr;
            kp->nmb = cdiv(ntiles < 1 ? 1 : ntiles, kp->tpb);
            kp->npan = cdiv(k->N, kp->nr);
            kp->n = kp->nmb * kp->npan;
            break;
        }
        case KK_CONV: {
            const View *w = &k->in[1];
            int64_t Co = w->shape[0], Ci = w->shape[1], T = w->shape[2] * w->shape[3];
            if (kp->pnr % kp->nr || s.bf16 != ps.bf16) fits = 0;
            kp->pack_bytes = cdiv(Co, kp->pnr) * T * Ci * kp->pnr * 4;
            if ((kp->bf16 = (int)s.bf16)) { /* [T][kpad/2][pnr][2] bf16 a panel */
                kp->kpad = mc_llvm_bf16_kpad(Ci);
                kp->pack_bytes = cdiv(Co, kp->pnr) * T * kp->kpad * kp->pnr * 2;
            }
            kp->n = o->shape[0] * o->shape[1];
            if (s.tile_k) { /* blocked (llvm_schedule.c) */
                kp->kc = s.tile_k;
                kp->crows = s.block_m / o->shape[2];
                kp->cpan = s.block_n / kp->nr;
                kp->n = o->shape[0] * cdiv(o->shape[1], kp->crows) * cdiv(cdiv(Co, kp->nr), kp->cpan);
            }
            if (Ci > pl->zeros) pl->zeros = Ci;
            break;
        }
        case KK_DWCONV: {
            const View *w = &k->in[1];
            int64_t C = w->shape[0], T = w->shape[2] * w->shape[3];
            kp->pcp = cdiv(C, Lp) * Lp;
            kp->pack_bytes = T * kp->pcp * 4;
            kp->n = o->shape[0] * o->shape[1];
            break;
        }
        case KK_FUSION25: {
            int64_t D = k->in[1].shape[0];
            kp->pcp = cdiv(D, Lp) * Lp;
            kp->pack_bytes = 25 * kp->pcp * 4;
            kp->n = o->shape[0] * o->shape[1] * cdiv(cdiv(D, L), kp->group);
            break;
        }
        case KK_SCAN:
            kp->n = o->shape[0] * cdiv(cdiv(cols, L), kp->group);
            break;
        case KK_LAYERNORM:
            kp->n = rows;
            break;
        case KK_MEAN_HW:
            kp->n = o->shape[0];
            break;
        case KK_RESIZE:
        case KK_AVGPOOL: /* output rows (b, y) */
            kp->n = o->shape[0] * o->shape[1];
            break;
        case KK_ELTWISE: {
            Kernel mk;
            mc_llvm_eltwise_merge(k, &mk);
            kp->n = mc_llvm_rows(mk.out.shape, mk.out.rank);
            break;
        }
        case KK_COUNT: break;
        }
        if (kp->pack_bytes) {
            kp->pack_off = off;
            off = align64(off + kp->pack_bytes);
        }
    }
    pl->blob_bytes = off;
    return fits ? 0 : -1;
}

void
mc_llvm_plan_free(Plan *pl)
{
    free(pl->k);
    free(pl->woff);
    free(pl->rep);
    free(pl->shared);
    pl->k = NULL;
    pl->woff = NULL;
    pl->rep = pl->shared = NULL;
}

int64_t
mc_llvm_weights_size(const KProgram *p, const McLlvmTarget *t)
{
    Plan pl;
    mc_llvm_plan(p, t, NULL, &pl);
    int64_t n = pl.blob_bytes;
    mc_llvm_plan_free(&pl);
    return n;
}

/* ------------------------------------------------------------ weight packing */

uint16_t
mc_llvm_bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN: quiet, keeps its sign */
    u += 0x7fffu + ((u >> 16) & 1); /* to nearest, ties to even (past the largest: infinity) */
    return (uint16_t)(u >> 16);
}

/* bf16 weight w of column n (of N), k (of K) into the VNNI-pair panels
 * [kpad/2][nr][2] at dst (bf16 elements), `kbase` pairs of rows before k's
 * (a conv's earlier taps) */
static void
put_bf16(uint16_t *dst, int64_t n, int64_t k, int64_t nr, int64_t panel_pairs, int64_t kbase, float w)
{
    dst[(((n / nr) * panel_pairs + kbase + k / 2) * nr + n % nr) * 2 + (k & 1)] = mc_llvm_bf16_round(w);
}

/* The packed copy of kernel ki's weights operand (mc_weights_blob's hook,
 * ctx the Plan): kernels with a pack_off read in[1] there. */
static void
pack_kernel(void *ctx, const KProgram *p, int ki, const McBlobSrc *s, uint8_t *blob)
{
    const Kernel *k = &p->k[ki];
    const KPlan *kp = &((const Plan *)ctx)->k[ki];
    if (kp->pack_off < 0) return;
    float *dst = (float *)(blob + kp->pack_off);
    const View *w = &k->in[1];
    const float *src = mc_blob_src_view(s, w);
    switch (k->kind) {
    case KK_GEMM: { /* W[N,K] -> [N/nr][K][nr]; bf16: [N/nr][kpad/2][nr][2] */
        int64_t N = k->N, K = k->K, nr = kp->pnr;
        if (kp->bf16) {
            for (int64_t n = 0; n < N; n++)
                for (int64_t kk = 0; kk < K; kk++)
                    put_bf16((uint16_t *)dst, n, kk, nr, kp->kpad / 2, 0, src[n * w->stride[0] + kk * w->stride[1]]);
            break;
        }
        for (int64_t n = 0; n < N; n++)
            for (int64_t kk = 0; kk < K; kk++)
                dst[((n / nr) * K + kk) * nr + n % nr] = src[n * w->stride[0] + kk * w->stride[1]];
        break;
    }
    case KK_CONV: { /* OIHW -> [Co/nr][kh*kw][Ci][nr]; bf16: [Co/nr][kh*kw][kpad/2][nr][2] */
        int64_t Co = w->shape[0], Ci = w->shape[1], kh = w->shape[2], kw = w->shape[3], nr = kp->pnr;
        if (kp->bf16) {
            for (int64_t co = 0; co < Co; co++)
                for (int64_t ci = 0; ci < Ci; ci++)
                    for (int64_t t = 0; t < kh * kw; t++)
                        put_bf16((uint16_t *)dst, co, ci, nr, kh * kw * kp->kpad / 2, t * kp->kpad / 2,
                                 src[co * w->stride[0] + ci * w->stride[1] + t / kw * w->stride[2] + t % kw * w->stride[3]]);
            break;
        }
        for (int64_t co = 0; co < Co; co++)
            for (int64_t ci = 0; ci < Ci; ci++)
                for (int64_t y = 0; y < kh; y++)
                    for (int64_t x = 0; x < kw; x++)
                        dst[(((co / nr) * kh * kw + y * kw + x) * Ci + ci) * nr + co % nr] =
                            src[co * w->stride[0] + ci * w->stride[1] + y * w->stride[2] + x * w->stride[3]];
        break;
    }
    case KK_DWCONV: { /* [C,1,kh,kw] -> [kh*kw][Cp] */
        int64_t C = w->shape[0], kh = w->shape[2], kw = w->shape[3], Cp = kp->pcp;
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t y = 0; y < kh; y++)
                for (int64_t x = 0; x < kw; x++)
                    dst[(y * kw + x) * Cp + ch] = src[ch * w->stride[0] + y * w->stride[2] + x * w->stride[3]];
        break;
    }
    case KK_FUSION25: { /* [D,25] -> [25][Dp] */
        int64_t D = w->shape[0], Dp = kp->pcp;
        for (int64_t d = 0; d < D; d++)
            for (int64_t tp = 0; tp < 25; tp++) dst[tp * Dp + d] = src[d * w->stride[0] + tp * w->stride[1]];
        break;
    }
    default:
        break;
    }
}

int
mc_llvm_pack_weights(const KProgram *p, const WeightStore *ws, const McLlvmTarget *t, uint8_t **blob,
                     int64_t *size, McErr *err)
{
    Plan pl;
    mc_llvm_plan(p, t, NULL, &pl);
    /* weights read through views at pl.woff, the others only packed */
    McBlobLayout bl = {.bytes = pl.blob_bytes, .place = pl.woff, .pack = pack_kernel, .ctx = &pl};
    *blob = mc_weights_blob(p, ws, &bl, size, err);
    mc_llvm_plan_free(&pl);
    return *blob ? 0 : -1;
}

/* ------------------------------------------------------------ module */

void
mc_llvm_symbol_prefix(const KProgram *p, char *buf, size_t n)
{
    const char *s = p->name && p->name[0] ? p->name : "model";
    size_t j = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_') && j + 1 < n) buf[j++] = '_';
    for (size_t i = 0; s[i] && j + 1 < n; i++) {
        char ch = s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
        buf[j++] = ok ? ch : '_';
    }
    buf[j] = 0;
}

static void
add_str_attr(CG *c, LLVMValueRef f, const char *k, const char *v)
{
    LLVMAttributeRef a = LLVMCreateStringAttribute(c->ctx, k, (unsigned)strlen(k), v, (unsigned)strlen(v));
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, a);
}

static void
add_enum_attr(CG *c, LLVMValueRef f, unsigned idx, const char *name)
{
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    LLVMAddAttributeAtIndex(f, idx, LLVMCreateEnumAttribute(c->ctx, kind, 0));
}

static void
target_attrs(CG *c, LLVMValueRef f)
{
    add_str_attr(c, f, "target-cpu", c->t->cpu);
    if (c->t->features[0]) add_str_attr(c, f, "target-features", c->t->features);
    add_enum_attr(c, f, LLVMAttributeFunctionIndex, "nounwind");
}

/* Kernel i's function: internal mc_k<i> in a module of the whole program,
 * else (split: kernels in several modules, mc_llvm_compile) <prefix>_k<i>,
 * global and hidden, so that the entry point's module links to it and two
 * models' (or variants') kernels do not meet. */
static LLVMValueRef
kernel_fn(CG *c, const char *prefix, int split, int i)
{
    char name[192];
    if (split) snprintf(name, sizeof name, "%s_k%d", prefix, i);
    else snprintf(name, sizeof name, "mc_k%d", i);
    LLVMValueRef f = LLVMGetNamedFunction(c->mod, name);
    if (f) return f;
    f = LLVMAddFunction(c->mod, name, c->kfn_ty);
    LLVMSetLinkage(f, split ? LLVMExternalLinkage : LLVMInternalLinkage);
    if (split) LLVMSetVisibility(f, LLVMHiddenVisibility);
    return f;
}

static void
gen_kernel(CG *c, int i, LLVMValueRef f)
{
    const Kernel *k = &c->p->k[i];
    const KPlan *kp = &c->plan->k[i];
    target_attrs(c, f);
    c->fn = f;
    c->ki = i;
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, f, "entry"));
    LLVMValueRef ctx = LLVMGetParam(f, 0);
    static const int slot_of[4] = {2, 3, 0, 1}; /* BufKind -> ctx slot */
    for (int kind = 0; kind < 4; kind++) {
        LLVMValueRef idx = cg_i64(c, slot_of[kind]);
        LLVMValueRef pp = LLVMBuildGEP2(c->b, c->ptr, ctx, &idx, 1, "");
        c->base[kind] = LLVMBuildLoad2(c->b, c->ptr, pp, "");
    }
    c->out_base[0] = c->base[BUF_OUTPUT];
    for (int j = 1; j < c->p->noutputs; j++) { /* the other outputs: after the image index */
        LLVMValueRef idx = cg_i64(c, 4 + j);
        c->out_base[j] = LLVMBuildLoad2(c->b, c->ptr, LLVMBuildGEP2(c->b, c->ptr, ctx, &idx, 1, ""), "");
    }
    c->img = NULL;
    if (mc_kprogram_segment_of(c->p, i) >= 0) {
        LLVMValueRef idx = cg_i64(c, 4);
        c->img = LLVMBuildLoad2(c->b, c->i64, LLVMBuildGEP2(c->b, c->ptr, ctx, &idx, 1, ""), "img");
    }
    /* shared code: the places of this call's buffers and packed weights,
     * loaded once here from the table in ctx[MC_LLVM_CTX_TAB] */
    c->tab = c->share && c->plan->shared && c->plan->shared[i];
    c->nslot = 0;
    if (c->tab) {
        LLVMValueRef idx = cg_i64(c, MC_LLVM_CTX_TAB);
        LLVMValueRef tab = LLVMBuildLoad2(c->b, c->ptr, LLVMBuildGEP2(c->b, c->ptr, ctx, &idx, 1, ""), "tab");
        c->nslot = mc_llvm_kernel_slots(k, c->slot_buf);
        for (int s = 0; s <= c->nslot; s++) {
            LLVMValueRef si = cg_i64(c, s);
            LLVMValueRef v = LLVMBuildLoad2(c->b, c->i64, LLVMBuildGEP2(c->b, c->i64, tab, &si, 1, ""), "");
            if (s < c->nslot) c->slot_off[s] = v;
            else c->pack_off = v;
        }
    }
    LLVMValueRef begin = LLVMGetParam(f, 1), end = LLVMGetParam(f, 2);
    switch (k->kind) {
    case KK_GEMM: cg_gemm(c, k, kp, begin, end); break;
    case KK_CONV: cg_conv(c, k, kp, begin, end); break;
    case KK_DWCONV: cg_dwconv(c, k, kp, begin, end); break;
    case KK_SCAN: cg_scan(c, k, kp, begin, end); break;
    case KK_FUSION25: cg_fusion25(c, k, kp, begin, end); break;
    case KK_LAYERNORM: cg_layernorm(c, k, kp, begin, end); break;
    case KK_MEAN_HW: cg_mean_hw(c, k, kp, begin, end); break;
    case KK_RESIZE: cg_resize(c, k, kp, begin, end); break;
    case KK_AVGPOOL: cg_avgpool(c, k, kp, begin, end); break;
    case KK_ELTWISE: cg_eltwise(c, k, kp, begin, end); break;
    case KK_COUNT: break;
    }
    LLVMBuildRetVoid(c->b);
    c->tab = 0;
}

/* The table of kernel i's call (shared code, mc_llvm_call_table): an
 * internal constant of the entry point's module. */
static LLVMValueRef
call_table(CG *c, int i)
{
    int64_t t[MC_LLVM_MAX_SLOTS + 1];
    LLVMValueRef v[MC_LLVM_MAX_SLOTS + 1];
    int n = mc_llvm_call_table(c->p, c->plan, i, t);
    for (int s = 0; s < n; s++) v[s] = cg_i64(c, t[s]);
    LLVMTypeRef at = LLVMArrayType2(c->i64, (uint64_t)n);
    char name[32];
    snprintf(name, sizeof name, "mc_tab%d", i);
    LLVMValueRef g = LLVMAddGlobal(c->mod, at, name);
    LLVMSetInitializer(g, LLVMConstArray2(c->i64, v, (uint64_t)n));
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMInternalLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    return g;
}

static void
add_size_global(CG *c, const char *prefix, const char *what, int64_t v)
{
    char name[192];
    snprintf(name, sizeof name, "%s_%s", prefix, what);
    LLVMValueRef g = LLVMAddGlobal(c->mod, c->i64, name);
    LLVMSetInitializer(g, cg_i64(c, v));
    LLVMSetGlobalConstant(g, 1);
}

int mc_llvm_optimize(McLlvmModule *m, McErr *err); /* llvm_emit.c */

/* The module of kernels [k0, k1) of p, with the entry point and the size
 * globals when `entry`; split when that is not the whole program. */
static McLlvmModule *
codegen(const KProgram *p, const McLlvmTarget *t, const char *prefix, const McLlvmTarget *pk, int optimize, int k0,
        int k1, int entry, McErr *err)
{
    char why[300];
    for (int i = 0; i < p->nk; i++)
        if (!mc_llvm_supports(p, &p->k[i], why, sizeof why)) {
            mc_err(err, "llvm: kernel %d (%s): %s", i, p->k[i].name ? p->k[i].name : "?", why);
            return NULL;
        }
    /* one target: the schedules must be its own (a multi-CPU build checked
     * them against all its CPUs, mc_llvm_variants_build) */
    if (!pk && mc_llvm_schedule_check(p, &t, 1, err)) return NULL;
    McLlvmModule *m = calloc(1, sizeof *m);
    m->t = t;
    if (prefix) snprintf(m->prefix, sizeof m->prefix, "%s", prefix);
    else mc_llvm_symbol_prefix(p, m->prefix, sizeof m->prefix);
    m->ctx = LLVMContextCreate();
    m->mod = LLVMModuleCreateWithNameInContext(m->prefix, m->ctx);
    LLVMSetTarget(m->mod, t->triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(t->tm);
    LLVMSetModuleDataLayout(m->mod, td);
    LLVMDisposeTargetData(td);

    Plan pl;
    if (mc_llvm_plan(p, t, pk, &pl)) {
        mc_llvm_plan_free(&pl);
        mc_llvm_module_free(m);
        mc_err(err, "llvm: internal error: the code for %s cannot read weights packed for %s", t->cpu, pk->cpu);
        return NULL;
    }
    CG c;
    memset(&c, 0, sizeof c);
    c.p = p;
    c.t = t;
    c.plan = &pl;
    mc_llvm_plan_classes(p, &pl);
    c.share = pl.rep != NULL;
    c.ctx = m->ctx;
    c.mod = m->mod;
    c.b = LLVMCreateBuilderInContext(m->ctx);
    c.L = t->lanes;
    c.f32 = LLVMFloatTypeInContext(m->ctx);
    c.f64 = LLVMDoubleTypeInContext(m->ctx);
    c.i1 = LLVMInt1TypeInContext(m->ctx);
    c.i8 = LLVMInt8TypeInContext(m->ctx);
    c.i32 = LLVMInt32TypeInContext(m->ctx);
    c.i64 = LLVMInt64TypeInContext(m->ctx);
    c.ptr = LLVMPointerTypeInContext(m->ctx, 0);
    c.voidt = LLVMVoidTypeInContext(m->ctx);
    c.vf = LLVMVectorType(c.f32, (unsigned)c.L);
    c.vi = LLVMVectorType(c.i32, (unsigned)c.L);
    c.vd = LLVMVectorType(c.f64, (unsigned)c.L);
    c.vb = LLVMVectorType(c.i1, (unsigned)c.L);
    LLVMTypeRef kargs[3] = {c.ptr, c.i64, c.i64};
    c.kfn_ty = LLVMFunctionType(c.voidt, kargs, 3, 0);
    if (pl.zeros > 0) {
        LLVMTypeRef at = LLVMArrayType2(c.f32, (uint64_t)pl.zeros);
        c.zeros = LLVMAddGlobal(c.mod, at, "mc_zeros");
        LLVMSetInitializer(c.zeros, LLVMConstNull(at));
        LLVMSetGlobalConstant(c.zeros, 1);
        LLVMSetLinkage(c.zeros, LLVMInternalLinkage);
        LLVMSetAlignment(c.zeros, 64);
    }

    int split = k0 > 0 || k1 < p->nk || !entry;
    for (int i = k0; i < k1; i++) /* shared code: the first kernel of a class has the function */
        if (!c.share || pl.rep[i] == i) gen_kernel(&c, i, kernel_fn(&c, m->prefix, split, i));
    if (!entry) goto verify; /* a part of the kernels only (mc_llvm_codegen_part) */

    /* entry point: <name>_run(weights, input, outputs..., scratch) puts its
     * arguments in an array and runs <name>_team(args) on every thread of
     * one team (mc_rt_team_run); the team function calls mc_rt_team_for per
     * kernel, which ends with a barrier */
    LLVMTypeRef pf_args[4] = {c.ptr, c.ptr, c.i64, c.i64};
    LLVMTypeRef pf_ty = LLVMFunctionType(c.voidt, pf_args, 4, 0);
    LLVMValueRef pf = LLVMAddFunction(c.mod, "mc_rt_team_for", pf_ty);
    LLVMTypeRef tr_args[2] = {c.ptr, c.ptr};
    LLVMTypeRef tr_ty = LLVMFunctionType(c.voidt, tr_args, 2, 0);
    LLVMValueRef tr = LLVMAddFunction(c.mod, "mc_rt_team_run", tr_ty);
    LLVMTypeRef gb_args[3] = {c.i64, c.i64, c.ptr};
    LLVMTypeRef gb_ty = LLVMFunctionType(c.i64, gb_args, 3, 0), ge_ty = LLVMFunctionType(c.voidt, NULL, 0, 0);
    LLVMValueRef gbegin = NULL, gend = NULL;
    if (p->nsegs) {
        gbegin = LLVMAddFunction(c.mod, "mc_rt_team_group_begin", gb_ty);
        gend = LLVMAddFunction(c.mod, "mc_rt_team_group_end", ge_ty);
    }
    char name[192];
    snprintf(name, sizeof name, "%s_run", m->prefix);
    int nout = m->noutputs = p->noutputs > 1 ? p->noutputs : 1;
    int nargs = 3 + nout;
    LLVMTypeRef run_args[3 + MC_MAX_OUTPUTS];
    for (int i = 0; i < nargs; i++) run_args[i] = c.ptr;
    LLVMValueRef run = LLVMAddFunction(c.mod, name, LLVMFunctionType(c.i32, run_args, (unsigned)nargs, 0));
    target_attrs(&c, run);
    snprintf(name, sizeof name, "%s_team", m->prefix);
    LLVMValueRef team = LLVMAddFunction(c.mod, name, LLVMFunctionType(c.voidt, &c.ptr, 1, 0));
    LLVMSetLinkage(team, LLVMInternalLinkage);
    target_attrs(&c, team);
    c.fn = run;
    LLVMPositionBuilderAtEnd(c.b, LLVMAppendBasicBlockInContext(c.ctx, run, "entry"));
    LLVMValueRef argv = LLVMBuildAlloca(c.b, LLVMArrayType2(c.ptr, (uint64_t)nargs), "args");
    for (int i = 0; i < nargs; i++) {
        LLVMValueRef idx = cg_i64(&c, i);
        LLVMBuildStore(c.b, LLVMGetParam(run, (unsigned)i), LLVMBuildGEP2(c.b, c.ptr, argv, &idx, 1, ""));
    }
    LLVMValueRef tra[2] = {team, argv};
    LLVMBuildCall2(c.b, tr_ty, tr, tra, 2, "");
    LLVMBuildRet(c.b, cg_i32(&c, 0));

    /* the team function: every thread has its own ctx */
    c.fn = team;
    LLVMPositionBuilderAtEnd(c.b, LLVMAppendBasicBlockInContext(c.ctx, team, "entry"));
    LLVMValueRef par[3 + MC_MAX_OUTPUTS];
    for (int i = 0; i < nargs; i++) {
        LLVMValueRef idx = cg_i64(&c, i);
        par[i] = LLVMBuildLoad2(c.b, c.ptr, LLVMBuildGEP2(c.b, c.ptr, LLVMGetParam(team, 0), &idx, 1, ""), "");
    }
    /* ctx: weights, scratch, input, output 0, image index (i64 in a pointer-sized slot), outputs 1.. */
    int nctx = nout > 1 ? 4 + nout : p->nsegs ? 5 : 4;
    for (int i = 0; c.share && i < p->nk; i++)
        if (pl.shared[i]) nctx = MC_LLVM_CTX_TAB + 1; /* the slot of shared code's table */
    LLVMValueRef ctxv = LLVMBuildAlloca(c.b, LLVMArrayType2(c.ptr, (uint64_t)nctx), "ctx");
    LLVMValueRef vals[4] = {par[0], par[2 + nout], par[1], par[2]};
    for (int s = 0; s < 4 + nout; s++) {
        if (s == 4) continue; /* the image index */
        LLVMValueRef idx = cg_i64(&c, s);
        LLVMBuildStore(c.b, s < 4 ? vals[s] : par[s - 2], LLVMBuildGEP2(c.b, c.ptr, ctxv, &idx, 1, ""));
    }
    /* profiling hook (runtime/mc_rt.h): if (mc_rt_profile_active) begin(i) ... end(i) */
    LLVMTypeRef hk_ty = LLVMFunctionType(c.voidt, &c.i32, 1, 0);
    LLVMValueRef kbegin = LLVMAddFunction(c.mod, "mc_rt_kernel_begin", hk_ty);
    LLVMValueRef kend = LLVMAddFunction(c.mod, "mc_rt_kernel_end", hk_ty);
    LLVMValueRef prof = LLVMAddGlobal(c.mod, c.ptr, "mc_rt_profile_active");
    LLVMSetLinkage(prof, LLVMExternalLinkage);
    LLVMValueRef imgslot = NULL, ngv = NULL, grp = NULL;
    if (p->nsegs) {
        LLVMValueRef idx = cg_i64(&c, 4);
        imgslot = LLVMBuildGEP2(c.b, c.ptr, ctxv, &idx, 1, "");
        LLVMBuildStore(c.b, cg_i64(&c, 0), imgslot);
        ngv = LLVMBuildAlloca(c.b, c.i64, "ngroups");
    }
    Loop il;
    for (int i = 0; i < p->nk; i++) {
        int s = mc_kprogram_segment_of(p, i);
        if (s >= 0 && i == p->segs[s].k0) {
            /* this thread's image group g of G (the runtime's choice, a
             * divisor of the segment's groups; 1 group: the whole team on
             * every image): for image = g, g+G, ... < images: kernels k0..k1-1 */
            int64_t imgs = p->segs[s].images, gmax = p->segs[s].groups > 1 ? p->segs[s].groups : 1;
            LLVMValueRef ga[3] = {cg_i64(&c, imgs), cg_i64(&c, gmax), ngv};
            grp = LLVMBuildCall2(c.b, gb_ty, gbegin, ga, 3, "group");
            LLVMValueRef G = LLVMBuildLoad2(c.b, c.i64, ngv, "G");
            LLVMValueRef trips = LLVMBuildUDiv(
                c.b, LLVMBuildAdd(c.b, LLVMBuildSub(c.b, cg_i64(&c, imgs), grp, ""), LLVMBuildSub(c.b, G, cg_i64(&c, 1), ""), ""),
                G, "");
            cg_loop_begin(&c, &il, cg_i64(&c, 0), trips, NULL, 0, "image");
            LLVMBuildStore(c.b, LLVMBuildAdd(c.b, grp, LLVMBuildMul(c.b, il.iv, G, ""), ""), imgslot);
        }
        LLVMValueRef a[4] = {kernel_fn(&c, m->prefix, split, c.share ? pl.rep[i] : i), ctxv, cg_i64(&c, pl.k[i].n),
                             cg_i64(&c, pl.k[i].grain)};
        if (c.share && pl.shared[i] && pl.k[i].n > 0) {
            LLVMValueRef idx = cg_i64(&c, MC_LLVM_CTX_TAB);
            LLVMBuildStore(c.b, call_table(&c, i), LLVMBuildGEP2(c.b, c.ptr, ctxv, &idx, 1, ""));
        }
        LLVMValueRef ld = LLVMBuildLoad2(c.b, c.ptr, prof, "");
        LLVMSetVolatile(ld, 1);
        LLVMValueRef on = LLVMBuildIsNotNull(c.b, ld, "");
        LLVMValueRef ki = cg_i32(&c, i);
        If f;
        cg_if_begin(&c, &f, on, "prof");
        LLVMBuildCall2(c.b, hk_ty, kbegin, &ki, 1, "");
        cg_if_end(&c, &f);
        if (pl.k[i].n > 0) LLVMBuildCall2(c.b, pf_ty, pf, a, 4, "");
        cg_if_begin(&c, &f, on, "prof");
        LLVMBuildCall2(c.b, hk_ty, kend, &ki, 1, "");
        cg_if_end(&c, &f);
        if (s >= 0 && i == p->segs[s].k1 - 1) {
            cg_loop_end(&c, &il, NULL);
            LLVMBuildCall2(c.b, ge_ty, gend, NULL, 0, "");
        }
    }
    LLVMBuildRetVoid(c.b);
    add_size_global(&c, m->prefix, "weights_size", pl.blob_bytes);
    add_size_global(&c, m->prefix, "scratch_size", p->scratch_bytes);
    add_size_global(&c, m->prefix, "input_size", p->input_buf >= 0 ? p->bufs[p->input_buf].bytes : 0);
    for (int j = 0; j < nout; j++) {
        char what[32];
        if (j) snprintf(what, sizeof what, "output%d_size", j);
        else snprintf(what, sizeof what, "output_size");
        add_size_global(&c, m->prefix, what, p->noutputs ? p->bufs[p->output_bufs[j]].bytes : 0);
    }
verify:
    LLVMDisposeBuilder(c.b);
    mc_llvm_plan_free(&pl);

    char *msg = NULL;
    if (LLVMVerifyModule(m->mod, LLVMReturnStatusAction, &msg)) {
        mc_err(err, "llvm: internal error: generated module does not verify: %.1500s", msg ? msg : "");
        LLVMDisposeMessage(msg);
        mc_llvm_module_free(m);
        return NULL;
    }
    LLVMDisposeMessage(msg);
    if (optimize && mc_llvm_optimize(m, err)) {
        mc_llvm_module_free(m);
        return NULL;
    }
    return m;
}

McLlvmModule *
mc_llvm_codegen_opt(const KProgram *p, const McLlvmTarget *t, int optimize, McErr *err)
{
    return codegen(p, t, NULL, NULL, optimize, 0, p->nk, 1, err);
}

McLlvmModule *
mc_llvm_codegen(const KProgram *p, const McLlvmTarget *t, McErr *err)
{
    return codegen(p, t, NULL, NULL, 1, 0, p->nk, 1, err);
}

McLlvmModule *
mc_llvm_codegen_part(const KProgram *p, const McLlvmTarget *t, const char *prefix, const McLlvmTarget *pack, int k0,
                     int k1, int entry, McErr *err)
{
    return codegen(p, t, prefix, pack, 1, k0, k1, entry, err);
}

int
mc_llvm_packing_fits(const KProgram *p, const McLlvmTarget *t, const McLlvmTarget *pack)
{
    Plan pl;
    int r = mc_llvm_plan(p, t, pack, &pl);
    mc_llvm_plan_free(&pl);
    return r == 0;
}

void
mc_llvm_module_free(McLlvmModule *m)
{
    if (!m) return;
    if (m->mod) LLVMDisposeModule(m->mod);
    if (m->ctx) LLVMContextDispose(m->ctx);
    free(m);
}
