/* bench/amx.c -- what AMX-BF16 tiles reach on one core for the GEMM shapes of
 * Spatial-Mamba-T, against AVX-512 FMA in fp32.
 *
 * Takes: options (--quick, --min-ms T, shapes "MxNxK" to replace the
 * default list).  Produces: on stdout, first the peak of each unit on one
 * core (register-only loops: AVX-512 FMA, TDPBF16PS on 16-row and on 1-row
 * tiles), then one table row per GEMM shape Y[M,N] = X[M,K] W[N,K]^T + bias
 * (mambac's layout: X fp32 row-major, W packed per 64-column panel) with
 * the GFLOP/s of
 *   fp32      AVX-512 FMA, 6x64 register tile (mambac's fp32 micro-kernel)
 *   tiles     AMX 2x2 blocks (32x32 fp32 in four 16x16 tiles), X already bf16,
 *             C tiles stored to a buffer only: the tile unit and its loads
 *   +cvt      the same, X converted fp32 -> bf16 once per row block
 *   2x2 1x4 4x1  the whole GEMM (conversion, tiles, C tiles through a 16x16
 *             fp32 buffer, + bias, store) with each blocking (in tiles)
 *   cvt/task  2x2, X converted again for every panel (once per task)
 *   direct    2x2, C tiles stored straight into Y, bias added in place
 * and the error of the AMX result against a float64 product of the same
 * bf16-rounded inputs (relative L2; only the summation order differs).
 * Owns: its matrices.
 *
 * Not part of mambac: a measurement for the AMX code generator
 * (backends/llvm/llvm_amx.c).  Build and run (bench/amx does both):
 *     cc -O2 -mavx512f -mavx512bf16 -mamx-tile -mamx-bf16 bench/amx.c -o amx
 *     ./amx            (one thread: pin it, e.g. taskset -c 1 ./amx)
 * Linux: the process asks for the AMX tile state (arch_prctl
 * ARCH_REQ_XCOMP_PERM) before its first tile instruction.
 *
 * Layouts (those of the code generator): W per panel of 64 columns as
 * K/2 rows of 64 VNNI pairs, [K/2][64][2] bf16, K a multiple of 32; a B
 * tile is 16 pairs x 16 columns of a panel (64 bytes a row, 256 apart);
 * X converted into rows of K bf16, an A tile 16 rows x 32 bf16.  Rows past
 * M in the last 32-row block are computed on zero rows and not stored.
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
#define PANEL 64      /* columns of a packed panel */
#define ABLOCK 32768  /* floats of X per row block (128 KB: A in L2) */

typedef struct Gemm {
    int M, N, K, Mp;      /* Mp: M rounded up to 32 */
    float *x, *bias, *y;  /* [M][K], [N], [M][N] */
    float *wf;            /* fp32 panels [N/64][K][64] */
    uint16_t *wb;         /* bf16 panels [N/64][K/2][64][2] */
    uint16_t *xb;         /* bf16 rows [Mp][K] */
} Gemm;

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static uint16_t
to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1); /* round to nearest even (no NaNs here) */
    return (uint16_t)(u >> 16);
}

static float
from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void *
xalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "amx: out of memory\n");
        exit(1);
    }
    memset(p, 0, n);
    return p;
}

/* ------------------------------------------------------------ tile setup */

typedef struct TileCfg {
    uint8_t palette, start;
    uint8_t res[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((aligned(64))) TileCfg;

/* every tile 16 rows x 64 bytes; `rows` rows for the first nshort ones
 * (the peak test's short tiles) */
static void
tiles_config(int nshort, int rows)
{
    TileCfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = (uint8_t)(i < nshort ? rows : 16);
    }
    _tile_loadconfig(&cfg);
}

/* the accumulators, tiles 0-3 */
static inline void
zero_c(void)
{
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
}

/* ------------------------------------------------------------ peaks */

static double
peak_fma(void)
{
    __m512 m = _mm512_set1_ps(0.999f), s = _mm512_set1_ps(1e-3f);
    __m512 a0 = m, a1 = s, a2 = m, a3 = s, a4 = m, a5 = s, a6 = m, a7 = s, a8 = m, a9 = s, a10 = m, a11 = s;
    long n = 50000000;
    double t0 = now_ms();
    for (long it = 0; it < n; it++) {
#define F(a) a = _mm512_fmadd_ps(a, m, s)
        F(a0), F(a1), F(a2), F(a3), F(a4), F(a5), F(a6), F(a7), F(a8), F(a9), F(a10), F(a11);
#undef F
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
    }
    double t = now_ms() - t0;
    volatile float sink = _mm512_reduce_add_ps(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    (void)sink;
    return 2.0 * 16 * 12 * n / t * 1e-6;
}

/* TDPBF16PS on four independent accumulators; tiles 0-3 (and with
 * rows < 16 the A tiles 4-5) of `rows` rows */
static double
peak_amx(int rows)
{
    static uint16_t buf[16 * 32] __attribute__((aligned(64)));
    static float out[16 * 16] __attribute__((aligned(64)));
    for (int i = 0; i < 16 * 32; i++) buf[i] = to_bf16(1e-3f);
    tiles_config(rows < 16 ? 6 : 0, rows);
    zero_c();
    _tile_loadd(4, buf, 64);
    _tile_loadd(5, buf, 64);
    _tile_loadd(6, buf, 64);
    _tile_loadd(7, buf, 64);
    long n = 2000000;
    double t0 = now_ms();
    for (long it = 0; it < n; it++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, 64);
    double t = now_ms() - t0;
    _tile_release();
    return 2.0 * rows * 16 * 32 * 4 * n / t * 1e-6;
}

/* ------------------------------------------------------------ fp32 FMA */

/* rows [m0, m0+rows) of panel p: rows x 64 accumulators, + bias, store
 * (inlined with a constant `rows`, so the accumulators live in registers) */
static inline __attribute__((always_inline)) void
fma_tile(const Gemm *g, int m0, int rows, int p)
{
    __m512 acc[6][4];
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++)
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
    const float *w = g->wf + (size_t)p * g->K * PANEL;
    for (int k = 0; k < g->K; k++) {
        __m512 b[4];
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) b[v] = _mm512_load_ps(w + (size_t)k * PANEL + 16 * v);
#pragma GCC unroll 6
        for (int r = 0; r < rows; r++) {
            __m512 s = _mm512_set1_ps(g->x[(size_t)(m0 + r) * g->K + k]);
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) acc[r][v] = _mm512_fmadd_ps(s, b[v], acc[r][v]);
        }
    }
    int nc = g->N - p * PANEL < PANEL ? g->N - p * PANEL : PANEL;
    for (int v = 0; v < 4 && 16 * v < nc; v++) {
        __mmask16 mk = nc - 16 * v >= 16 ? 0xffff : (__mmask16)((1u << (nc - 16 * v)) - 1);
        __m512 bv = _mm512_maskz_loadu_ps(mk, g->bias + p * PANEL + 16 * v);
        for (int r = 0; r < rows; r++)
            _mm512_mask_storeu_ps(g->y + (size_t)(m0 + r) * g->N + p * PANEL + 16 * v, mk, _mm512_add_ps(acc[r][v], bv));
    }
}

static void
gemm_fma(const Gemm *g)
{
    int np = (g->N + PANEL - 1) / PANEL, rb = ABLOCK / g->K / 6 * 6;
    if (rb < 6) rb = 6;
    for (int m1 = 0; m1 < g->M; m1 += rb)
        for (int p = 0; p < np; p++)
            for (int m0 = m1; m0 < m1 + rb && m0 < g->M; m0 += 6) {
                if (m0 + 6 <= g->M) fma_tile(g, m0, 6, p);
                else fma_tile(g, m0, g->M - m0, p);
            }
}

/* ------------------------------------------------------------ AMX */

/* rows [m0, m1) of X to bf16 rows of xb (K a multiple of 32) */
static void
convert_rows(const Gemm *g, int m0, int m1)
{
    for (int m = m0; m < m1; m++) {
        const float *s = g->x + (size_t)m * g->K;
        uint16_t *d = g->xb + (size_t)m * g->K;
        for (int k = 0; k < g->K; k += 32) {
            __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + k + 16), _mm512_loadu_ps(s + k));
            _mm512_storeu_si512((void *)(d + k), (__m512i)h);
        }
    }
}

enum { ST_BUFFER, ST_DIRECT, ST_NONE };

/* a 16x16 C tile already stored in buf: + bias, rows [m, m+16) clipped at
 * M, columns [n, n+16) clipped at N */
static void
store_c(const Gemm *g, const float *buf, int m, int n)
{
    int nr = g->M - m < 16 ? g->M - m : 16, nc = g->N - n < 16 ? g->N - n : 16;
    if (nr <= 0 || nc <= 0) return;
    __mmask16 mk = nc >= 16 ? 0xffff : (__mmask16)((1u << nc) - 1);
    __m512 bv = _mm512_maskz_loadu_ps(mk, g->bias + n);
    for (int r = 0; r < nr; r++)
        _mm512_mask_storeu_ps(g->y + (size_t)(m + r) * g->N + n, mk, _mm512_add_ps(_mm512_load_ps(buf + 16 * r), bv));
}

/* bias added in place to the 16x16 block that a tile store wrote into Y */
static void
bias_in_place(const Gemm *g, int m, int n)
{
    int nr = g->M - m < 16 ? g->M - m : 16;
    __m512 bv = _mm512_loadu_ps(g->bias + n);
    for (int r = 0; r < nr; r++) {
        float *p = g->y + (size_t)(m + r) * g->N + n;
        _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), bv));
    }
}

#define BT(p, kk, n) (g->wb + (size_t)(p) * g->K * PANEL + (size_t)(kk) * PANEL * 2 + (size_t)(n) * 2)
#define AT(m, k) (g->xb + (size_t)(m) * g->K + (k))
#define SA (g->K * 2)
#define SB (PANEL * 4)

/* C tile t (a tile register number) of rows m, columns n: stored */
#define CSTORE(t, m, n)                                                                                               \
    do {                                                                                                              \
        if (mode == ST_DIRECT && (m) + 16 <= g->M && (n) + 16 <= g->N) {                                                                  \
            _tile_stored(t, g->y + (size_t)(m) * g->N + (n), g->N * 4);                                               \
            bias_in_place(g, m, n);                                                                                   \
        } else {                                                                                                      \
            _tile_stored(t, buf, 64);                                                                                 \
            if (mode != ST_NONE) store_c(g, buf, m, n);                                                               \
        }                                                                                                             \
    } while (0)

/* 2x2: C tiles 0-3 (32 rows x 32 columns), A tiles 4-5, B tiles 6-7 */
static void
block_2x2(const Gemm *g, int p, int m, int n, int mode, float *buf)
{
    zero_c();
    for (int k = 0; k < g->K; k += 32) {
        _tile_loadd(4, AT(m, k), SA);
        _tile_loadd(5, AT(m + 16, k), SA);
        _tile_loadd(6, BT(p, k / 2, n), SB);
        _tile_loadd(7, BT(p, k / 2, n + 16), SB);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    int n0 = p * PANEL + n;
    CSTORE(0, m, n0);
    CSTORE(1, m, n0 + 16);
    CSTORE(2, m + 16, n0);
    CSTORE(3, m + 16, n0 + 16);
}

/* 1x4: C tiles 0-3 (16 rows x 64 columns), A tile 4, B tiles 5-6 in turn */
static void
block_1x4(const Gemm *g, int p, int m, int mode, float *buf)
{
    zero_c();
    for (int k = 0; k < g->K; k += 32) {
        _tile_loadd(4, AT(m, k), SA);
        _tile_loadd(5, BT(p, k / 2, 0), SB);
        _tile_loadd(6, BT(p, k / 2, 16), SB);
        _tile_dpbf16ps(0, 4, 5);
        _tile_loadd(5, BT(p, k / 2, 32), SB);
        _tile_dpbf16ps(1, 4, 6);
        _tile_loadd(6, BT(p, k / 2, 48), SB);
        _tile_dpbf16ps(2, 4, 5);
        _tile_dpbf16ps(3, 4, 6);
    }
    int n0 = p * PANEL;
    CSTORE(0, m, n0);
    CSTORE(1, m, n0 + 16);
    CSTORE(2, m, n0 + 32);
    CSTORE(3, m, n0 + 48);
}

/* 4x1: C tiles 0-3 (64 rows x 16 columns), B tile 4, A tiles 5-6 in turn */
static void
block_4x1(const Gemm *g, int p, int m, int n, int mode, float *buf)
{
    zero_c();
    for (int k = 0; k < g->K; k += 32) {
        _tile_loadd(4, BT(p, k / 2, n), SB);
        _tile_loadd(5, AT(m, k), SA);
        _tile_loadd(6, AT(m + 16, k), SA);
        _tile_dpbf16ps(0, 5, 4);
        _tile_loadd(5, AT(m + 32, k), SA);
        _tile_dpbf16ps(1, 6, 4);
        _tile_loadd(6, AT(m + 48, k), SA);
        _tile_dpbf16ps(2, 5, 4);
        _tile_dpbf16ps(3, 6, 4);
    }
    int n0 = p * PANEL + n;
    CSTORE(0, m, n0);
    CSTORE(1, m + 16, n0);
    CSTORE(2, m + 32, n0);
    CSTORE(3, m + 48, n0);
}

enum { B_2X2, B_1X4, B_4X1 };

/* the whole GEMM on tiles: row blocks of ABLOCK floats of X (a multiple of
 * the blocking's rows) outer, panels, then rows and columns of blocks;
 * cvt: 0 none (xb ready), 1 once per row block, 2 once per task (row
 * block, panel) */
static void
gemm_amx(const Gemm *g, int blocking, int cvt, int mode)
{
    float buf[256] __attribute__((aligned(64)));
    int bm = blocking == B_4X1 ? 64 : blocking == B_1X4 ? 16 : 32;
    int np = (g->N + PANEL - 1) / PANEL, rb = ABLOCK / g->K / bm * bm;
    if (rb < bm) rb = bm;
    tiles_config(0, 16);
    for (int m1 = 0; m1 < g->M; m1 += rb) {
        int m2 = m1 + rb < g->M ? m1 + rb : g->M;
        if (cvt == 1) convert_rows(g, m1, m2);
        for (int p = 0; p < np; p++) {
            if (cvt == 2) convert_rows(g, m1, m2);
            for (int m = m1; m < m2; m += bm) {
                if (blocking == B_1X4) block_1x4(g, p, m, mode, buf);
                else
                    for (int n = 0; n < PANEL && p * PANEL + n < g->N; n += blocking == B_2X2 ? 32 : 16) {
                        if (blocking == B_2X2) block_2x2(g, p, m, n, mode, buf);
                        else block_4x1(g, p, m, n, mode, buf);
                    }
            }
        }
    }
    _tile_release();
}

/* ------------------------------------------------------------ set-up, checks */

static void
gemm_init(Gemm *g, int M, int N, int K)
{
    g->M = M;
    g->N = N;
    g->K = K;
    g->Mp = (M + 63) / 64 * 64; /* 4x1 blocks run to 64-row multiples */
    int np = (N + PANEL - 1) / PANEL;
    g->x = xalloc((size_t)M * K * 4);
    g->bias = xalloc((size_t)np * PANEL * 4);
    g->y = xalloc((size_t)M * N * 4);
    g->wf = xalloc((size_t)np * K * PANEL * 4);
    g->wb = xalloc((size_t)np * K * PANEL * 2);
    g->xb = xalloc((size_t)g->Mp * K * 2);
    uint32_t s = 12345;
#define RND() ((s = s * 1664525u + 1013904223u), ((float)(s >> 8) / 16777216.0f - 0.5f))
    for (size_t i = 0; i < (size_t)M * K; i++) g->x[i] = RND();
    for (int n = 0; n < N; n++) g->bias[n] = RND();
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            float w = RND() * 0.2f;
            int p = n / PANEL, c = n % PANEL;
            g->wf[(size_t)p * K * PANEL + (size_t)k * PANEL + c] = w;
            g->wb[(size_t)p * K * PANEL + (size_t)(k / 2) * PANEL * 2 + c * 2 + k % 2] = to_bf16(w);
        }
#undef RND
}

static void
gemm_free(Gemm *g)
{
    free(g->x);
    free(g->bias);
    free(g->y);
    free(g->wf);
    free(g->wb);
    free(g->xb);
}

/* relative L2 of y against the float64 product (bf16: of the rounded inputs) */
static double
gemm_error(const Gemm *g, int bf16)
{
    double num = 0, den = 0;
    for (int m = 0; m < g->M; m++)
        for (int n = 0; n < g->N; n++) {
            double acc = g->bias[n];
            int p = n / PANEL, c = n % PANEL;
            for (int k = 0; k < g->K; k++) {
                float x = g->x[(size_t)m * g->K + k];
                if (bf16)
                    acc += (double)from_bf16(to_bf16(x)) *
                           from_bf16(g->wb[(size_t)p * g->K * PANEL + (size_t)(k / 2) * PANEL * 2 + c * 2 + k % 2]);
                else
                    acc += (double)x * g->wf[(size_t)p * g->K * PANEL + (size_t)k * PANEL + c];
            }
            double d = g->y[(size_t)m * g->N + n] - acc;
            num += d * d;
            den += acc * acc;
        }
    return sqrt(num / (den > 0 ? den : 1));
}

enum { V_FP32, V_TILES, V_CVT, V_2X2, V_1X4, V_4X1, V_TASK, V_DIRECT, NV };
static const char *const vname[NV] = {"fp32", "tiles", "+cvt", "2x2", "1x4", "4x1", "cvt/task", "direct"};

static void
run_variant(const Gemm *g, int v)
{
    switch (v) {
    case V_FP32: gemm_fma(g); break;
    case V_TILES: gemm_amx(g, B_2X2, 0, ST_NONE); break;
    case V_CVT: gemm_amx(g, B_2X2, 1, ST_NONE); break;
    case V_2X2: gemm_amx(g, B_2X2, 1, ST_BUFFER); break;
    case V_1X4: gemm_amx(g, B_1X4, 1, ST_BUFFER); break;
    case V_4X1: gemm_amx(g, B_4X1, 1, ST_BUFFER); break;
    case V_TASK: gemm_amx(g, B_2X2, 2, ST_BUFFER); break;
    default: gemm_amx(g, B_2X2, 1, ST_DIRECT); break;
    }
}

/* best time of 5 rounds, each at least min_ms long */
static double
time_variant(const Gemm *g, int v, double min_ms)
{
    run_variant(g, v);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        int n = 0;
        double t0 = now_ms(), t;
        do {
            run_variant(g, v);
            n++;
        } while ((t = now_ms() - t0) < min_ms / 5);
        if (t / n < best) best = t / n;
    }
    return best;
}

int
main(int argc, char **argv)
{
    static const int tiny[][3] = {{3136, 256, 64}, {3136, 64, 256},  {784, 512, 128},  {784, 128, 512}, {196, 1024, 256},
                                  {196, 256, 1024}, {49, 2048, 512}, {49, 512, 2048}, {1, 1000, 512}};
    int shapes[64][3], ns = 0;
    double min_ms = 200;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) min_ms = 20;
        else if (!strcmp(argv[i], "--min-ms") && i + 1 < argc) min_ms = atof(argv[++i]);
        else if (ns < 64 && sscanf(argv[i], "%dx%dx%d", &shapes[ns][0], &shapes[ns][1], &shapes[ns][2]) == 3 &&
                 shapes[ns][0] > 0 && shapes[ns][1] > 0 && shapes[ns][2] > 0 && shapes[ns][2] % 32 == 0)
            ns++;
        else {
            fprintf(stderr, "usage: amx [--quick] [--min-ms T] [MxNxK ...]  (K a multiple of 32)\n");
            return 2;
        }
    }
    if (!ns)
        for (; ns < (int)(sizeof tiny / sizeof tiny[0]); ns++) memcpy(shapes[ns], tiny[ns], sizeof tiny[0]);
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)) {
        perror("amx: arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)");
        return 1;
    }
    printf("one core; peaks (register-only loops): AVX-512 FMA fp32 %.0f GFLOP/s, TDPBF16PS 16-row tiles %.0f "
           "GFLOP/s, 1-row tiles %.0f GFLOP/s\n\n",
           peak_fma(), peak_amx(16), peak_amx(1));
    printf("GFLOP/s per variant (one core); err: relative L2 of 2x2 against float64 of the bf16 inputs\n\n");
    printf("| M | N | K |");
    for (int v = 0; v < NV; v++) printf(" %s |", vname[v]);
    printf(" 2x2/fp32 | err |\n|---:|---:|---:|");
    for (int v = 0; v <= NV; v++) printf("---:|");
    printf("---:|\n");
    for (int s = 0; s < ns; s++) {
        Gemm g;
        gemm_init(&g, shapes[s][0], shapes[s][1], shapes[s][2]);
        double flop = 2.0 * g.M * g.N * g.K, gf[NV];
        for (int v = 0; v < NV; v++) gf[v] = flop / time_variant(&g, v, min_ms) * 1e-6;
        run_variant(&g, V_FP32);
        double e32 = gemm_error(&g, 0);
        run_variant(&g, V_2X2);
        double e = gemm_error(&g, 1);
        printf("| %d | %d | %d |", g.M, g.N, g.K);
        for (int v = 0; v < NV; v++) printf(" %.0f |", gf[v]);
        printf(" %.2fx | %.1e |\n", gf[V_2X2] / gf[V_FP32], e);
        fflush(stdout);
        if (e > 1e-5 || e32 > 1e-5) {
            fprintf(stderr, "amx: %dx%dx%d: wrong result (relative L2 %.2e bf16, %.2e fp32)\n", g.M, g.N, g.K, e, e32);
            return 1;
        }
        gemm_free(&g);
    }
    return 0;
}
