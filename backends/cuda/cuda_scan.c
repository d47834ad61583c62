/* backends/cuda/cuda_scan.c -- the selective scan as CUDA C.
 *
 * h_l = a_l h_{l-1} + x_l along the H*W positions of each (b, channel), with
 * a_l = exp(delta_l A), x_l = delta_l Bv_l u_l (delta = softplus(dt) where the
 * kernel says so): a linear recurrence, so a run of positions maps a
 * carry-in c to P c + S (P = prod a, S = the run's own scan from 0), and
 * runs compose.  Two forms:
 *   - one pass (8-aligned views, D % 64 == 0, a big enough batch; bf16 or
 *     float activations): a block per chunk, decoupled look-back for the
 *     carry-in (below);
 *   - three passes otherwise: chunk maps, carries across chunks, rescan.
 * The carries region of the arena holds the chunk records; the one-pass
 * form's flags have their own region, zeroed at the start of every run.
 * The forms (chunking, 8 channels a thread, the one-pass shape, the bytes
 * of the carries): cuda_forms.c.  Calls the printing utilities
 * (cuda_emit.c); called by the program printer (cuda_print.c).  Owns
 * nothing.
 */
#include "cuda_scan.h"
#include <stdio.h>
#include <string.h>

/* channels per thread of the scan's passes 1 and 3 (mc_cu_scan_vec) */
static int
scan_vec(const Kernel *k)
{
    return mc_cu_scan_vec(k, mc_cu_buf_bf16(k->in[0].buf));
}

/* The scan as a chunked parallel scan: h_l = a_l h_{l-1} + x_l with
 * a_l = exp(delta_l A), x_l = delta_l Bv_l u_l, a linear recurrence, so a
 * chunk of T positions maps a carry-in c to P c + S (P = prod a, S = the
 * chunk's own scan from 0).  Pass 1 (_chunks) computes (P, S) per (b, chunk,
 * d); pass 2 (_carry) turns them into each chunk's carry-in: a block per
 * (b, 32 channels), its 8 warps each composing a run of chunks, the runs
 * combined through shared memory, then each run walked again; pass 3 rescans
 * each chunk from its carry-in and stores every state.  Chunking:
 * mc_cuda_scan_chunks.  The carries region holds [S | P | carry-in], each
 * [B][NC][D] float.  bf16 mode, D % 8 == 0, 8-aligned views and enough
 * threads: passes 1 and 3 run 8 channels per thread (16-byte loads of u and
 * delta, one 16-byte store of h). */
static void
print_scan3(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    const View *u = &k->in[0], *dt = &k->in[1], *A = &k->in[2], *bv = &k->in[3];
    long long B = k->out.shape[0], L = k->out.shape[1] * k->out.shape[2], D = k->out.shape[3];
    int V = scan_vec(k);
    int64_t T64, NC64;
    mc_cuda_scan_chunks(k, V, &T64, &NC64);
    long long T = T64, NC = NC64, BNCD = B * NC * D;
    long long DV = D / V, QW = (NC + 7) / 8, DG = (D + 31) / 32;
    mc_cu_header(b, p, k, ki);
    mc_buf_printf(b, "/* %lld chunks of %lld positions, %d channel%s per thread */\n", NC, T, V, V > 1 ? "s" : "");
    for (int pass = 1; pass <= 3; pass++) {
        if (pass == 2) {
            mc_buf_printf(b, "%s __launch_bounds__(256)\n%s_carry(const float *__restrict__ cs, float *__restrict__ cin" KERNEL_BODY,
                          mc_dialect_cuda.kernel_qual, id);
            mc_cu_idx_typedef(b, k);
            mc_buf_puts(b, "    __shared__ float rp[8][32], rs[8][32];\n");
            mc_buf_puts(b, "    const int lane = threadIdx.x % 32, w = threadIdx.x / 32;\n");
            mc_buf_printf(b, "    const idx_t bb = blockIdx.x / %lld, d = (blockIdx.x %% %lld) * 32 + lane;\n", DG, DG);
            mc_buf_printf(b, "    const idx_t q0 = min((idx_t)w * %lld, (idx_t)%lld), q1 = min(q0 + %lld, (idx_t)%lld);\n",
                          QW, NC, QW, NC);
            mc_buf_puts(b, "    /* this warp's run of chunks as one map c -> pr c + sr */\n");
            mc_buf_puts(b, "    float pr = 1.0f, sr = 0.0f;\n");
            mc_buf_printf(b, "    if (d < %lld)\n        for (idx_t q = q0; q < q1; q++) {\n", D);
            mc_buf_printf(b, "            const idx_t j = (bb * %lld + q) * %lld + d;\n", NC, D);
            mc_buf_printf(b, "            const float pq = cs[%lld + j];\n", BNCD);
            mc_buf_puts(b, "            sr = fmaf(pq, sr, cs[j]);\n            pr *= pq;\n        }\n");
            mc_buf_puts(b, "    rp[w][lane] = pr;\n    rs[w][lane] = sr;\n    __syncthreads();\n");
            mc_buf_puts(b, "    float c = 0.0f;\n    for (int v = 0; v < w; v++) c = fmaf(rp[v][lane], c, rs[v][lane]);\n");
            mc_buf_printf(b, "    if (d < %lld)\n        for (idx_t q = q0; q < q1; q++) {\n", D);
            mc_buf_printf(b, "            const idx_t j = (bb * %lld + q) * %lld + d;\n", NC, D);
            mc_buf_printf(b, "            cin[j] = c;\n            c = fmaf(cs[%lld + j], c, cs[j]);\n        }\n}\n\n", BNCD);
            continue;
        }
        char nm[112];
        snprintf(nm, sizeof nm, "%s%s", id, pass == 1 ? "_chunks" : "");
        mc_cu_thread_head(b, k, nm, "float *__restrict__ carry", "i", BNCD / V, ln);
        mc_buf_printf(b, "    const idx_t d = (i %% %lld) * %d, q = (i / %lld) %% %lld, bb = i / %lld;\n", DV, V, DV, NC,
                      DV * NC);
        mc_buf_printf(b, "    const idx_t j = (bb * %lld + q) * %lld + d;\n", NC, D);
        char lin[96], linb[64], ad[16];
        snprintf(lin, sizeof lin, "(bb * %lld + l) * %lld + d", L, D);
        snprintf(linb, sizeof linb, "bb * %lld + l", L);
        mc_buf_printf(b, "    float a[%d], h[%d]%s;\n", V, V, pass == 1 ? (V == 8 ? ", prod[8]" : ", prod[1]") : "");
        mc_buf_printf(b, "#pragma unroll\n    for (int c = 0; c < %d; c++) {\n        a[c] = ", V);
        snprintf(ad, sizeof ad, "d + c");
        mc_cu_load(b, A, ad);
        /* pass 1 starts each chunk from 0, pass 3 from its carry-in */
        if (pass == 1) mc_buf_puts(b, ";\n        h[c] = 0.0f;\n");
        else mc_buf_printf(b, ";\n        h[c] = carry[%lld + j + c];\n", 2 * BNCD);
        mc_buf_puts(b, pass == 1 ? "        prod[c] = 1.0f;\n    }\n" : "    }\n");
        mc_buf_printf(b, "    const idx_t l1 = min((q + 1) * %lld, (idx_t)%lld);\n", T, L);
        mc_buf_printf(b, "#pragma unroll %s\n    for (idx_t l = q * %lld; l < l1; l++) {\n", V > 1 ? "mc_scan_unroll" : "4", T);
        mc_buf_printf(b, "        float dv[%d], uv[%d];\n", V, V);
        if (V == 8) {
            mc_buf_puts(b, "        mc_ldv8(&");
            mc_cu_ref(b, dt, lin);
            mc_buf_puts(b, ", dv);\n        mc_ldv8(&");
            mc_cu_ref(b, u, lin);
            mc_buf_puts(b, ", uv);\n");
        } else {
            mc_buf_puts(b, "        dv[0] = ");
            mc_cu_load(b, dt, lin);
            mc_buf_puts(b, ";\n        uv[0] = ");
            mc_cu_load(b, u, lin);
            mc_buf_puts(b, ";\n");
        }
        mc_buf_puts(b, "        const float bl = ");
        mc_cu_load(b, bv, linb);
        mc_buf_puts(b, ";\n");
        mc_buf_printf(b, "#pragma unroll\n        for (int c = 0; c < %d; c++) {\n", V);
        mc_buf_printf(b, "            const float delta = %s(dv[c]);\n", k->softplus_dt ? "mc_scan_softplus" : "");
        mc_buf_puts(b, "            const float decay = mc_scan_exp(delta * a[c]);\n");
        mc_buf_puts(b, "            h[c] = fmaf(decay, h[c], delta * bl * uv[c]);\n");
        if (pass == 1) mc_buf_puts(b, "            prod[c] *= decay;\n        }\n");
        else mc_buf_puts(b, "        }\n");
        if (pass == 3) {
            if (V == 8) {
                mc_buf_puts(b, "        mc_stv8(&");
                mc_cu_ref(b, &k->out, lin);
                mc_buf_puts(b, ", h);\n");
            } else {
                mc_cu_store_view(b, &k->out, "        ", lin, "h[0]");
            }
        }
        mc_buf_puts(b, "    }\n");
        if (pass == 1)
            mc_buf_printf(b, "#pragma unroll\n    for (int c = 0; c < %d; c++) {\n        carry[j + c] = h[c];\n"
                             "        carry[%lld + j + c] = prod[c];\n    }\n", V, BNCD);
        mc_buf_puts(b, "}\n\n");
    }
    ln->gx = (BNCD / V + 255) / 256;
    ln->gy = B * DG; /* pass 2 grid */
}


/* ------------------------------------------------------------ one pass */

/* the tag of one-pass scan ki: 4 x (1 + the one-pass scans before it); its
 * flags read tag + 1 (the chunk's map is there) or tag + 2 (its inclusive
 * state is), and only values of this scan are >= tag + 1 (the flags are
 * zeroed at the start of the run, the scans before wrote smaller tags) */
static long long
scan1_tag(const KProgram *p, int ki)
{
    long long n = 1;
    for (int i = 0; i < ki; i++)
        if (p->k[i].kind == KK_SCAN && mc_cu_scan1(&p->k[i], NULL, NULL, NULL)) n++;
    return 4 * n;
}

/* One pass (Merrill and Garland's decoupled look-back, for this linear
 * recurrence): block = (chunk q, b, 8G channels), q the slowest so that a
 * chunk's predecessor was dispatched one layer of blocks earlier (and
 * usually has its inclusive state out by the time it is needed).  Thread
 * (s, g) loads its 4 positions of 8 channels once and keeps a and x in
 * registers; the block composes the S sub-chunk maps through shared memory
 * (thread s composes those before it: its exclusive prefix); the last
 * sub-chunk's threads publish the chunk's map (flag tag + 1), walk back
 * over the predecessors' maps to the first inclusive state, publish theirs
 * (flag tag + 2) and hand the carry-in to the block; every thread then
 * runs its positions from its prefix applied to the carry-in and stores
 * each state.  dt and u are read once (the three passes read them
 * twice). */
static void
print_scan1(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    const View *u = &k->in[0], *dt = &k->in[1], *A = &k->in[2], *bv = &k->in[3];
    long long B = k->out.shape[0], L = k->out.shape[1] * k->out.shape[2], D = k->out.shape[3];
    int G = 16;
    int64_t T64 = 0, NC64 = 0;
    mc_cu_scan1(k, &G, &T64, &NC64);
    long long T = T64, NC = NC64, S = 256 / G, NCB = D / (8 * G), NSEQ = B * NCB, NTOT = B * NC * D, tag = scan1_tag(p, ki);
    mc_cu_header(b, p, k, ki);
    mc_buf_printf(b, "/* one pass: %lld chunks of %lld positions, a block per (chunk, b, %d channels), %lld sub-chunks of %d\n"
                     " * positions a thread, 8 channels; carry-in by decoupled look-back (flags tag %lld) */\n",
                  NC, T, 8 * G, S, MC_CU_SCAN1_PT, tag);
    mc_cu_kernel_open(b, k, id, "float *__restrict__ carry, int *__restrict__ flags");
    mc_buf_printf(b, "    __shared__ float4 smp[%lld][%d][2], sms[%lld][%d][2], scin[%d][2];\n", S, G, S, G, G);
    mc_buf_printf(b, "    const int g = threadIdx.x %% %d, s = threadIdx.x / %d;\n", G, G);
    mc_buf_printf(b, "    const idx_t seq = blockIdx.x %% %lld, q = blockIdx.x / %lld, bb = seq / %lld;\n", NSEQ, NSEQ, NCB);
    mc_buf_printf(b, "    const idx_t d = (seq %% %lld) * %d + g * 8, f = seq * %lld + q, lb = q * %lld + s * %d;\n", NCB, 8 * G,
                  NC, T, MC_CU_SCAN1_PT);
    mc_buf_printf(b, "    float a[8], dv[%d][8], uv[%d][8], bl[%d];\n", MC_CU_SCAN1_PT, MC_CU_SCAN1_PT, MC_CU_SCAN1_PT);
    mc_buf_puts(b, "#pragma unroll\n    for (int c = 0; c < 8; c++) a[c] = ");
    mc_cu_load(b, A, "d + c");
    mc_buf_puts(b, ";\n    /* this thread's positions, loaded once */\n");
    char lin[96], linb[64];
    snprintf(lin, sizeof lin, "(bb * %lld + l) * %lld + d", L, D);
    snprintf(linb, sizeof linb, "bb * %lld + l", L);
    mc_buf_printf(b, "#pragma unroll\n    for (int p = 0; p < %d; p++) {\n        const idx_t l = min(lb + p, (idx_t)%lld);\n",
                  MC_CU_SCAN1_PT, L - 1);
    mc_buf_puts(b, "        mc_ldv8(&");
    mc_cu_ref(b, dt, lin);
    mc_buf_puts(b, ", dv[p]);\n        mc_ldv8(&");
    mc_cu_ref(b, u, lin);
    mc_buf_puts(b, ", uv[p]);\n        bl[p] = ");
    mc_cu_load(b, bv, linb);
    mc_buf_puts(b, ";\n    }\n");
    mc_buf_puts(b, "    /* decays and inputs (past L: the identity), and this sub-chunk's map */\n");
    mc_buf_puts(b, "    float pt[8], st[8];\n#pragma unroll\n    for (int c = 0; c < 8; c++) {\n        pt[c] = 1.0f;\n"
                   "        st[c] = 0.0f;\n    }\n");
    mc_buf_printf(b, "#pragma unroll\n    for (int p = 0; p < %d; p++)\n#pragma unroll\n        for (int c = 0; c < 8; c++) {\n",
                  MC_CU_SCAN1_PT);
    mc_buf_printf(b, "            const float delta = %s(dv[p][c]);\n", k->softplus_dt ? "mc_scan_softplus" : "");
    mc_buf_printf(b, "            const bool live = lb + p < %lld;\n", L);
    mc_buf_puts(b, "            dv[p][c] = live ? mc_scan_exp(delta * a[c]) : 1.0f;\n"
                   "            uv[p][c] = live ? delta * bl[p] * uv[p][c] : 0.0f;\n"
                   "            st[c] = fmaf(dv[p][c], st[c], uv[p][c]);\n            pt[c] *= dv[p][c];\n        }\n");
    mc_buf_puts(b, "    smp[s][g][0] = make_float4(pt[0], pt[1], pt[2], pt[3]);\n"
                   "    smp[s][g][1] = make_float4(pt[4], pt[5], pt[6], pt[7]);\n"
                   "    sms[s][g][0] = make_float4(st[0], st[1], st[2], st[3]);\n"
                   "    sms[s][g][1] = make_float4(st[4], st[5], st[6], st[7]);\n    __syncthreads();\n");
    mc_buf_puts(b, "    /* the sub-chunks before this one, composed: c -> pe c + se */\n");
    mc_buf_puts(b, "    float pe[8], se[8];\n#pragma unroll\n    for (int c = 0; c < 8; c++) {\n        pe[c] = 1.0f;\n"
                   "        se[c] = 0.0f;\n    }\n");
    mc_buf_puts(b, "    for (int r = 0; r < s; r++) {\n        float pr[8], sr[8];\n"
                   "        mc_f4x2(smp[r][g], pr);\n        mc_f4x2(sms[r][g], sr);\n"
                   "#pragma unroll\n        for (int c = 0; c < 8; c++) {\n            se[c] = fmaf(pr[c], se[c], sr[c]);\n"
                   "            pe[c] *= pr[c];\n        }\n    }\n");
    mc_buf_printf(b, "    if (s == %lld) {\n", S - 1);
    mc_buf_puts(b, "        /* the chunk's map; its carry-in from the chunks before it */\n"
                   "        float pb[8], sb[8], cv[8];\n#pragma unroll\n        for (int c = 0; c < 8; c++) {\n"
                   "            sb[c] = fmaf(pt[c], se[c], st[c]);\n            pb[c] = pe[c] * pt[c];\n"
                   "            cv[c] = 0.0f;\n        }\n");
    mc_buf_printf(b, "        float *const cp = carry + (f * %d + g) * 8;\n", G);
    /* the predecessor's inclusive state already out: the carry-in is that,
     * this chunk's map need not be published */
    mc_buf_printf(b, "        if (q > 0 && *(const volatile int *)&flags[(f - 1) * %d + g] == %lld) {\n", G, tag + 2);
    mc_buf_printf(b, "            __threadfence();\n            mc_ld8cg(carry + %lld + ((f - 1) * %d + g) * 8, cv);\n", 2 * NTOT, G);
    mc_buf_puts(b, "        } else if (q > 0) {\n");
    mc_buf_printf(b, "            mc_st8cg(cp, pb);\n            mc_st8cg(cp + %lld, sb);\n", NTOT);
    mc_buf_printf(b, "            mc_flag_set(&flags[f * %d + g], %lld);\n", G, tag + 1);
    mc_buf_puts(b, "            float ap[8], as[8];\n#pragma unroll\n            for (int c = 0; c < 8; c++) {\n"
                   "                ap[c] = 1.0f;\n                as[c] = 0.0f;\n            }\n");
    mc_buf_puts(b, "            for (idx_t j = f - 1;; j--) {\n");
    mc_buf_printf(b, "                const int v = mc_flag_wait(&flags[j * %d + g], %lld);\n", G, tag + 1);
    mc_buf_printf(b, "                float wp[8], ws[8];\n                if (v == %lld) {\n", tag + 2);
    mc_buf_printf(b, "                    mc_ld8cg(carry + %lld + (j * %d + g) * 8, ws);\n", 2 * NTOT, G);
    mc_buf_puts(b, "#pragma unroll\n                    for (int c = 0; c < 8; c++) cv[c] = fmaf(ap[c], ws[c], as[c]);\n"
                   "                    break;\n                }\n");
    mc_buf_printf(b, "                mc_ld8cg(carry + (j * %d + g) * 8, wp);\n", G);
    mc_buf_printf(b, "                mc_ld8cg(carry + %lld + (j * %d + g) * 8, ws);\n", NTOT, G);
    mc_buf_puts(b, "#pragma unroll\n                for (int c = 0; c < 8; c++) {\n"
                   "                    as[c] = fmaf(ap[c], ws[c], as[c]);\n                    ap[c] *= wp[c];\n"
                   "                }\n            }\n        }\n");
    mc_buf_printf(b, "        if (q + 1 < %lld) {\n            float hi[8];\n", NC);
    mc_buf_puts(b, "#pragma unroll\n            for (int c = 0; c < 8; c++) hi[c] = fmaf(pb[c], cv[c], sb[c]);\n");
    mc_buf_printf(b, "            mc_st8cg(cp + %lld, hi);\n            mc_flag_set(&flags[f * %d + g], %lld);\n        }\n",
                  2 * NTOT, G, tag + 2);
    mc_buf_puts(b, "        scin[g][0] = make_float4(cv[0], cv[1], cv[2], cv[3]);\n"
                   "        scin[g][1] = make_float4(cv[4], cv[5], cv[6], cv[7]);\n    }\n    __syncthreads();\n");
    mc_buf_puts(b, "    float h[8], cin[8];\n    mc_f4x2(scin[g], cin);\n"
                   "#pragma unroll\n    for (int c = 0; c < 8; c++) h[c] = fmaf(pe[c], cin[c], se[c]);\n");
    mc_buf_printf(b, "#pragma unroll\n    for (int p = 0; p < %d; p++) {\n        const idx_t l = lb + p;\n", MC_CU_SCAN1_PT);
    mc_buf_puts(b, "#pragma unroll\n        for (int c = 0; c < 8; c++) h[c] = fmaf(dv[p][c], h[c], uv[p][c]);\n");
    mc_buf_printf(b, "        if (l < %lld) mc_stv8(&", L);
    mc_cu_ref(b, &k->out, lin);
    mc_buf_puts(b, ", h);\n    }\n}\n\n");
    ln->gx = NSEQ * NC;
    ln->gy = 1;
}


void
mc_cu_print_scan(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    if (mc_cu_scan1(k, NULL, NULL, NULL)) print_scan1(b, p, k, ki, id, ln);
    else print_scan3(b, p, k, ki, id, ln);
}

void
mc_cu_print_scan_launch(McBuf *b, const KProgram *p, const CudaLayout *lay, int ki, const char *id, const Params *ps,
                        const CudaLaunch *ln)
{
    const Kernel *k = &p->k[ki];
    char extra[96];
    if (mc_cu_scan1(k, NULL, NULL, NULL)) {
        snprintf(extra, sizeof extra, "P(%lld), (int *)(mc_arena + %lld)", (long long)lay->carry_off,
                 (long long)lay->flags_off);
        mc_buf_printf(b, "    mc_launch(%s, dim3(%lld), 0, s, ", id, (long long)ln->gx);
        mc_cu_print_args(b, p, lay, ps, extra);
        mc_buf_puts(b, ");\n");
        return;
    }
    snprintf(extra, sizeof extra, "P(%lld)", (long long)lay->carry_off);
    mc_buf_printf(b, "    mc_launch(%s_chunks, dim3(%lld), 0, s, ", id, (long long)ln->gx);
    mc_cu_print_args(b, p, lay, ps, extra);
    int64_t T, NC;
    mc_cuda_scan_chunks(k, scan_vec(k), &T, &NC);
    mc_buf_printf(b, ");\n    mc_launch(%s_carry, dim3(%lld), 0, s, P(%lld), P(%lld));\n", id, (long long)ln->gy,
                  (long long)lay->carry_off, (long long)(lay->carry_off + 2 * k->out.shape[0] * NC * k->out.shape[3] * 4));
    mc_buf_printf(b, "    mc_launch(%s, dim3(%lld), 0, s, ", id, (long long)ln->gx);
    mc_cu_print_args(b, p, lay, ps, extra);
    mc_buf_puts(b, ");\n");
}
