/* backends/cuda/device/mc_prelude.cuh -- device code every generated .cu
 * starts with: the tiled GEMM used by dense layers and (implicit-GEMM)
 * convolutions -- FFMA, and mma.sync tensor-core paths for tf32, bf16 and
 * the float32 mode's tf32 + bf16 split -- warp reductions and the 25-tap
 * table.  Embedded at build time (embed.cmake: everything after this
 * comment, byte for byte, but for the 25-tap table's rows, which the
 * #include of ir/fusion25_taps.def below brings in and embed.cmake writes
 * out as one line of values each) and pasted verbatim by cuda_print.c
 * after the MC_TF32_INT default, so the generated file reads on its own.
 * It compiles alone as a file (nvcc -x cu -c: tests/unit/test_cuda_emit.c).
 */
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <type_traits>

/* GEMM modes: MC_FP32 FFMA (skinny products, and -DMC_FP32_MODE=MC_FP32);
 * MC_TF32 / MC_BF16 tensor cores with operands rounded to tf32 / bf16;
 * MC_F32X3 the float32 mode's tensor-core path: each operand split into a
 * tf32 high part and a tf32 remainder, three products (hi*hi + hi*lo +
 * lo*hi), which keeps float32 accuracy (error ~2^-21 per product).
 * With MC_F32X3_BF16C (default) the two correction products lo*hi + hi*lo
 * run as one bf16 m16n8k16 MMA (the k8 step's 8 remainders and 8 high
 * parts side by side along k, each rounded to bf16: error ~2^-20 per
 * product): two MMAs of equal time per k8 step instead of three. */
enum { MC_FP32 = 0, MC_TF32 = 1, MC_BF16 = 2, MC_F32X3 = 3 };
#ifndef MC_F32X3_BF16C
#define MC_F32X3_BF16C 1
#endif
/* __launch_bounds__ minimum blocks per SM of the tiled GEMM kernels */
#ifndef MC_GEMM_MINB_L
#define MC_GEMM_MINB_L 2
#endif
#ifndef MC_GEMM_MINB_S
#define MC_GEMM_MINB_S 1
#endif
/* Programmatic dependent launch (Hopper and newer; -DMC_PDL=0: off): every
 * kernel is launched with programmatic stream serialization and starts
 * with mc_pdl_begin(): wait until the kernel before has completed and its
 * writes are visible (griddepcontrol.wait).  The next kernel is launched
 * as this one's last blocks exit, before its completion is flushed (the
 * launch latency overlaps).  Triggering it earlier (launch_dependents at
 * the start of each block) was measured slower: tiny bf16 13.58 -> 14.00
 * ms at batch 128, 1.38 -> 1.50 at batch 1. */
#ifndef MC_PDL
#define MC_PDL 1
#endif
static __device__ __forceinline__ void
mc_pdl_begin()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (MC_PDL) {
        asm volatile("griddepcontrol.wait;\n" ::: "memory");
    }
#endif
}

/* set by mc_pdl_init() (start-up): the device is sm_90 or newer */
static int mc_pdl_ok;

static void
mc_pdl_init()
{
    int dev = 0, major = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    mc_pdl_ok = MC_PDL && major >= 9;
}

/* launches kernel(args...) on grid x 256 threads with smem bytes of
 * dynamic shared memory on stream s, with the attribute where mc_pdl_ok;
 * a launch error stops the program */
template <class... KA, class... AA>
static void
mc_launch(void (*kernel)(KA...), dim3 grid, size_t smem, cudaStream_t s, AA... args)
{
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.gridDim = grid;
    cfg.blockDim = dim3(256);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cfg.attrs = at;
    cfg.numAttrs = mc_pdl_ok ? 1 : 0;
    const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, args...);
    if (e != cudaSuccess) {
        fprintf(stderr, "kernel launch failed: %s\n", cudaGetErrorString(e));
        exit(1);
    }
}

/* positions unrolled in the 8-channel scan loops (-DMC_SCAN_UNROLL=N) */
#ifndef MC_SCAN_UNROLL
#define MC_SCAN_UNROLL 2
#endif
constexpr int mc_scan_unroll = MC_SCAN_UNROLL;
#ifndef MC_FP32_MODE
#define MC_FP32_MODE MC_F32X3
#endif

/* x rounded to tf32: cvt.rna, or (MC_TF32_INT) on the integer pipes --
 * add half of the dropped 13 bits' unit to the magnitude, clear them
 * (nearest, ties away from zero, the rule PTX gives for cvt.rna; finite x).
 * fp32 mode's default: its outputs were byte-identical, in less time; in
 * tf32 mode the two gave outputs 2.4e-5 apart, so they differ on some
 * values there, and tf32 keeps cvt.rna */
#ifndef MC_TF32_INT
#define MC_TF32_INT 0
#endif
__device__ __forceinline__ uint32_t
mc_tf32(float x)
{
#if MC_TF32_INT
    return (__float_as_uint(x) + 0x1000u) & 0xffffe000u;
#else
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
#endif
}

/* two floats as a bf16 pair (x in the low half: the lower k) */
__device__ __forceinline__ uint32_t
mc_bf16x2(float x, float y)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(x, y);
    return *(const uint32_t *)&v;
}


__device__ __forceinline__ void
mc_mma_bf16(float *c, const uint32_t *a, const uint32_t *b)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ void
mc_mma_tf32(float *c, const uint32_t *a, const uint32_t *b)
{
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* four 8x8 matrices of 16-bit elements (or 8x4 of 32-bit ones) from shared
 * memory: lane l gives the address of row l % 8 of matrix l / 8 */
__device__ __forceinline__ void
mc_ldsm4(uint32_t *r, const void *p)
{
    const uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}

/* cp.async: 16 bytes from global memory into shared memory without a
 * register round trip (ok false: zeros, src not read); A rows through L1
 * (.ca: the im2col rows of a convolution are read up to 9 times), weights
 * through L2 only (.cg) */
template <bool L1>
__device__ __forceinline__ void
mc_cp16(void *dst, const void *src, bool ok)
{
    const uint32_t d = (uint32_t)__cvta_generic_to_shared(dst);
    if constexpr (L1)
        asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(ok ? 16 : 0));
    else
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(ok ? 16 : 0));
}

__device__ __forceinline__ void
mc_cp_commit()
{
    asm volatile("cp.async.commit_group;\n" ::);
}

template <int NP>
__device__ __forceinline__ void
mc_cp_wait()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(NP));
}

/* Hopper's warpgroup MMA (wgmma.mma_async, sm_90a only: nvcc defines
 * __CUDA_ARCH_FEAT_SM90_ALL for -arch sm_90a; -DMC_NO_WGMMA turns it off).
 * A warpgroup (4 warps) multiplies a 64 x 16 bf16 tile of A by a 16 x NW
 * tile of B (both k-major), read from shared memory through matrix
 * descriptors, into 64 x NW float accumulators held as mma.sync's m16n8
 * fragments (warp w of the group: rows 16 w + lane / 4 (+ 8), columns 8 j
 * + 2 (lane % 4) (+ 1) in d[4 j ..]).  A descriptor holds the start
 * address, the byte steps between 8 x 16-byte core matrices along k (LBO)
 * and along the rows (SBO), each / 16, and the swizzle mode. */
#if defined(__CUDA_ARCH_FEAT_SM90_ALL) && !defined(MC_NO_WGMMA)
#define MC_WGMMA 1
#else
#define MC_WGMMA 0
#endif
__device__ __forceinline__ uint64_t
mc_wg_desc(const void *p, int lbo, int sbo)
{
    const uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    return (uint64_t)((a & 0x3FFFF) >> 4) | (uint64_t)(lbo >> 4) << 16 | (uint64_t)(sbo >> 4) << 32;
}

/* the same for rows of 64 bytes in the 64-byte swizzle (16-byte chunk c
 * of row r at c ^ (r / 2) % 4; 8-row groups 512 bytes apart, 512-byte
 * aligned) */
__device__ __forceinline__ uint64_t
mc_wg_desc_sw64(const void *p)
{
    return mc_wg_desc(p, 16, 512) | (uint64_t)2 << 62;
}

template <int NW>
__device__ __forceinline__ void mc_wgmma_bf16(float *d, uint64_t a, uint64_t b);
/* the same with A from registers: this warp's 16 x 16 slice as mma.sync's
 * m16n8k16 A fragment */
template <int NW>
__device__ __forceinline__ void mc_wgmma_bf16_ra(float *d, const uint32_t *a, uint64_t b);
#if MC_WGMMA
template <>
__device__ __forceinline__ void
mc_wgmma_bf16<128>(float *d, uint64_t a, uint64_t b)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
                 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
                 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
                 "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                   "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),
                   "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),
                   "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),
                   "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),
                   "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]),
                   "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]),
                   "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),
                   "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "l"(a), "l"(b));
}

template <>
__device__ __forceinline__ void
mc_wgmma_bf16<64>(float *d, uint64_t a, uint64_t b)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
                 "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                   "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),
                   "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),
                   "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),
                   "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "l"(a), "l"(b));
}

template <>
__device__ __forceinline__ void
mc_wgmma_bf16_ra<128>(float *d, const uint32_t *a, uint64_t b)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
                 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
                 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
                 "}, {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                   "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),
                   "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),
                   "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),
                   "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),
                   "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]),
                   "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]),
                   "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),
                   "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}

template <>
__device__ __forceinline__ void
mc_wgmma_bf16_ra<64>(float *d, const uint32_t *a, uint64_t b)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
                 "}, {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                   "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),
                   "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),
                   "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),
                   "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}

/* before the first wgmma that reads the accumulators; after the group's
 * wgmmas are issued; wait until at most N groups are still running */
__device__ __forceinline__ void
mc_wg_fence()
{
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}

__device__ __forceinline__ void
mc_wg_commit()
{
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

template <int N>
__device__ __forceinline__ void
mc_wg_wait()
{
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

/* after a wait: the compiler may not read the N accumulators d before it
 * (an empty asm that "changes" each, ordered after the wait's asm) */
template <int N>
__device__ __forceinline__ void
mc_wg_hold(float *d)
{
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
}

/* shared-memory writes of this thread (cp.async included) visible to the
 * async proxy that wgmma reads through */
__device__ __forceinline__ void
mc_fence_async_smem()
{
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
#endif

/* the cp.async pipeline of the tensor-core GEMM (A given as an address
 * loader AP(m, k) -> const T *): STG k-tiles in flight, up to
 * MC_GEMM_STAGES (at least 2); its
 * dynamic shared memory in bytes (0: not pipelined, static shared memory).
 * The host launches with these bytes and raises the kernel's limit once. */
#ifndef MC_GEMM_STAGES
#define MC_GEMM_STAGES 4
#endif
static_assert(MC_GEMM_STAGES >= 2, "MC_GEMM_STAGES: at least 2");
template <int MODE, int KC>
__host__ __device__ constexpr int
mc_gemm_stages()
{
    /* k-tiles + 1 (all of them in flight at once), at most MC_GEMM_STAGES */
    return (KC + (MODE == MC_BF16 ? 32 : 16) - 1) / (MODE == MC_BF16 ? 32 : 16) + 1 > MC_GEMM_STAGES
               ? MC_GEMM_STAGES
               : (KC + (MODE == MC_BF16 ? 32 : 16) - 1) / (MODE == MC_BF16 ? 32 : 16) + 1;
}

template <int MODE, int BM, int BN, int KC>
__host__ __device__ constexpr int
mc_gemm_dsm()
{
    return MODE == MC_FP32 ? 0
           : mc_gemm_stages<MODE, KC>() * (BM + BN) * 80 > (MODE == MC_BF16 ? BM * (BN + 8) * 2 : 0)
               ? mc_gemm_stages<MODE, KC>() * (BM + BN) * 80
               : BM * (BN + 8) * 2;
}

extern __shared__ __align__(16) unsigned char mc_dsm[];

/* one element of A: AL an element loader (float) or an address loader
 * (const float *, nullptr outside the input: zero) */
template <class AL>
__device__ __forceinline__ float
mc_a1(const AL &A, int64_t m, int k)
{
    if constexpr (std::is_pointer<decltype(A((int64_t)0, 0))>::value) {
        const float *p = A(m, k);
        return p ? *p : 0.0f;
    } else {
        return A(m, k);
    }
}

/* four consecutive k of row r (zero outside [ROWS, KK]): one 16-byte load
 * through A4 when V (KK % 4 == 0, rows 16-byte aligned), else four through A */
template <bool V, int64_t ROWS, int KK, class AL, class AL4>
__device__ __forceinline__ float4
mc_ld4(const AL &A, const AL4 &A4, int64_t r, int k)
{
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (r >= ROWS) return v;
    if constexpr (V) {
        if (k < KK) v = A4(r, k);
    } else {
        if (k < KK) v.x = A(r, k);
        if (k + 1 < KK) v.y = A(r, k + 1);
        if (k + 2 < KK) v.z = A(r, k + 2);
        if (k + 3 < KK) v.w = A(r, k + 3);
    }
    return v;
}

/* C[m, n] = sum_k A(m, k) * W[n * K + k] for the BM x BN tile of this block
 * (blockIdx.x = row block * column blocks + column block: the blocks that
 * share rows of A run together and read them from L2), then epi(m, n,
 * C[m, n]) for each element inside [M, N] (tensor cores: epi2(m, n, C[m, n],
 * C[m, n + 1]) for each pair of columns inside it).  256 threads.  A(m, k) reads one
 * element, A4(m, k) four (k % 4 == 0, used when VA); W is read with 16-byte
 * loads when VW.
 * MC_FP32: FFMA, 16x16 threads of (BM/16)x(BN/16) outputs each, BK = 8.
 * Tensor cores (mma.sync): 8 warps as 2 x 4, each a (BM/2)x(BN/4) tile of
 * m16n8 fragments; BK = 32 (bf16, m16n8k16) or 16 (tf32, m16n8k8).
 * Pipelined (A an address loader AP, operands stored as the tensor cores
 * read them: bf16 / float): cp.async copies 16-byte chunks of the next
 * STG - 1 k-tiles straight into shared memory while the tensor cores work
 * on this one.  Otherwise the next k-tile is loaded into registers
 * (16-byte loads), converted, and stored into the other of two
 * shared-memory buffers.  One barrier per k-tile.  Fragments are read with
 * ldmatrix (for tf32, 8x4 matrices of 32-bit elements); rows padded by 16
 * bytes, so those reads are free of bank conflicts.
 * Split-K (SK > 1, tensor cores only): block z = blockIdx.x / tiles sums k
 * in [z * KC, (z + 1) * KC) and writes its partial tile to ws[z][M][N]; the
 * last of a tile's SK blocks (counter cnt[tile], left zero again) adds the
 * SK partials in slice order and runs the epilogue. */
template <int MODE, int BM, int BN, int64_t M, int N, int K, bool VA, bool VW, int SK = 1, int KC = K,
          class AL, class AL4, class TW, class EP, class EP2, class EPV = int>
static __device__ __forceinline__ void
mc_gemm(const AL &A, const AL4 &A4, const TW *__restrict__ W, const EP &epi, const EP2 &epi2,
        float *__restrict__ ws = nullptr, unsigned *cnt = nullptr, const EPV &epv = 0,
        __nv_bfloat16 *__restrict__ O = nullptr)
{
    constexpr int NB = (N + BN - 1) / BN;
    constexpr int TILES = (int)((M + BM - 1) / BM) * NB;
    static_assert(SK == 1 || (MODE != MC_FP32 && KC % 32 == 0), "mc_gemm: split-K needs tensor cores");
    const int tile = SK > 1 ? (int)(blockIdx.x % TILES) : (int)blockIdx.x;
    const int kz = SK > 1 ? (int)(blockIdx.x / TILES) : 0;
    const int64_t m0 = (int64_t)(tile / NB) * BM;
    const int n0 = (tile % NB) * BN;
    const int tid = threadIdx.x;
    if constexpr (MODE == MC_FP32) {
        constexpr int BK = 8, TM = BM / 16, TN = BN / 16;
        __shared__ __align__(16) float As[2][BK][BM + 4];
        __shared__ __align__(16) float Bs[2][BK][BN + 4];
        float acc[TM][TN];
#pragma unroll
        for (int i = 0; i < TM; i++)
#pragma unroll
            for (int j = 0; j < TN; j++) acc[i][j] = 0.0f;
        const int tx = tid % 16, ty = tid / 16;
        float ra[BM * BK / 256], rb[BN * BK / 256];
        auto fetch = [&](int k0) {
#pragma unroll
            for (int s = 0; s < BM * BK / 256; s++) {
                int e = tid + 256 * s, r = e / BK, c = e % BK;
                int64_t m = m0 + r; int k = k0 + c;
                ra[s] = (m < M && k < K) ? mc_a1(A, m, k) : 0.0f;
            }
#pragma unroll
            for (int s = 0; s < BN * BK / 256; s++) {
                int e = tid + 256 * s, r = e / BK, c = e % BK;
                int n = n0 + r; int k = k0 + c;
                rb[s] = (n < N && k < K) ? W[(int64_t)n * K + k] : 0.0f;
            }
        };
        auto stash = [&](int buf) {
#pragma unroll
            for (int s = 0; s < BM * BK / 256; s++) { int e = tid + 256 * s; As[buf][e % BK][e / BK] = ra[s]; }
#pragma unroll
            for (int s = 0; s < BN * BK / 256; s++) { int e = tid + 256 * s; Bs[buf][e % BK][e / BK] = rb[s]; }
        };
        fetch(0);
        stash(0);
        __syncthreads();
        int buf = 0;
        for (int k0 = 0; k0 < K; k0 += BK) {
            if (k0 + BK < K) fetch(k0 + BK);
#pragma unroll
            for (int kk = 0; kk < BK; kk++) {
                float a[TM], b[TN];
#pragma unroll
                for (int i = 0; i < TM / 4; i++) {
                    float4 v = *(const float4 *)&As[buf][kk][ty * 4 + 64 * i];
                    a[4 * i] = v.x; a[4 * i + 1] = v.y; a[4 * i + 2] = v.z; a[4 * i + 3] = v.w;
                }
#pragma unroll
                for (int j = 0; j < TN / 4; j++) {
                    float4 v = *(const float4 *)&Bs[buf][kk][tx * 4 + 64 * j];
                    b[4 * j] = v.x; b[4 * j + 1] = v.y; b[4 * j + 2] = v.z; b[4 * j + 3] = v.w;
                }
#pragma unroll
                for (int i = 0; i < TM; i++)
#pragma unroll
                    for (int j = 0; j < TN; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
            }
            if (k0 + BK < K) stash(buf ^ 1);
            __syncthreads();
            buf ^= 1;
        }
#pragma unroll
        for (int i = 0; i < TM; i++) {
            int64_t m = m0 + (i / 4) * 64 + ty * 4 + i % 4;
            if (m >= M) continue;
            /* a thread's columns come in runs of 4: pairs through epi2 */
#pragma unroll
            for (int j = 0; j < TN; j += 2) {
                int n = n0 + (j / 4) * 64 + tx * 4 + j % 4;
                if (n + 1 < N) epi2(m, n, acc[i][j], acc[i][j + 1]);
                else if (n < N) epi(m, n, acc[i][j]);
            }
        }
    } else {
        constexpr bool BF = MODE == MC_BF16, X3 = MODE == MC_F32X3;
        typedef typename std::conditional<BF, __nv_bfloat16, float>::type T;
        constexpr int BK = BF ? 32 : 16, LD = BK + (BF ? 8 : 4), KS = BF ? 16 : 8;
        /* WG: the cp.async pipeline's bf16 products on wgmma (sm_90a): in a
         * 128-row tile (64 or 128 columns) warpgroup z takes rows [64 z, 64
         * z + 64), all the columns; in a 64 x 128 tile, columns [64 z, 64 z +
         * 64).  Warp w of a group holds rows 16 (w % 4) + [0, 16) of its
         * group's 64 as mma.sync's fragments, so the epilogue is shared */
        constexpr bool WG = MC_WGMMA && BF && std::is_pointer<decltype(A((int64_t)0, 0))>::value && SK == 1 &&
                            ((BM == 128 && (BN == 128 || BN == 64)) || (BM == 64 && BN == 128)) &&
                            mc_gemm_stages<MODE, KC>() >= 3;
        /* warps as WR x WC: 2 x 4, or 4 x 2 for 32-column tiles; WG: 8 x 1
         * (128 rows), 4 x 2 (64 rows) */
        constexpr int WC = WG ? (BM == 128 ? 1 : 2) : BN == 32 ? 2 : 4, WR = 8 / WC;
        constexpr int WM = BM / WR, WN = BN / WC, MI = WM / 16, NI = WN / 8;
        /* A8: A4 returns eight k as raw bf16 (uint4), copied into shared
         * memory as they are (bf16 activation storage, K % 8 == 0) */
        constexpr bool A8 = BF && VA && std::is_same<decltype(A4((int64_t)0, 0)), uint4>::value;
        typedef typename std::conditional<A8, uint4, float4>::type TA;
        /* W8: W is a bf16 copy of the weights (K % 8 == 0): eight k per
         * 16-byte load, copied into shared memory as they are */
        constexpr bool W8 = BF && std::is_same<TW, __nv_bfloat16>::value;
        typedef typename std::conditional<W8, uint4, float4>::type TB;
        constexpr int KV = BK / 4, KVA = A8 ? BK / 8 : KV, KVB = W8 ? BK / 8 : KV;
        /* BVN 16-byte chunks of a W tile, over BV rounds of 256 threads */
        constexpr int AV = BM * KVA / 256, BVN = BN * KVB, BV = (BVN + 255) / 256;
        static_assert(AV >= 1 && BV >= 1 && MI >= 1 && NI >= 2 && NI % 2 == 0, "mc_gemm: tile too small");
        /* ST (bf16 mode, a bf16 output O that is a dense [M][N] array, N %
         * 8 == 0): epv(m, n, c0, c1) computes the epilogue of a column pair,
         * the results go through shared memory (rows padded by 16 bytes)
         * and out as 16-byte row segments, whole 32-byte sectors */
        constexpr bool ST = BF && !std::is_same<EPV, int>::value;
        /* PIPE: A is an address loader (const T *, nullptr outside the
         * input), W holds T too: raw 16-byte chunks go straight into STG
         * shared-memory stages through cp.async (no register staging), the
         * tf32 rounding moves to the fragments; else two stages through
         * registers */
        constexpr bool PIPE = std::is_pointer<decltype(A((int64_t)0, 0))>::value;
        constexpr int STG = PIPE ? mc_gemm_stages<MODE, KC>() : 2;
        constexpr int SAB = STG * (BM + BN) * LD, SC = ST ? BM * (BN + 8) : 0;
        T *sm;
        if constexpr (PIPE) {
            static_assert(std::is_same<decltype(A((int64_t)0, 0)), const T *>::value && std::is_same<TW, T>::value,
                          "mc_gemm: the pipeline copies raw operands");
            static_assert(mc_gemm_dsm<MODE, BM, BN, KC>() >= (int)sizeof(T) * (SAB > SC ? SAB : SC),
                          "mc_gemm: dynamic shared memory too small");
            sm = reinterpret_cast<T *>(mc_dsm);
        } else {
            __shared__ __align__(16) T sms[SAB > SC ? SAB : SC];
            sm = sms;
        }
        T (*As)[BM][LD] = reinterpret_cast<T (*)[BM][LD]>(sm);
        T (*Bs)[BN][LD] = reinterpret_cast<T (*)[BN][LD]>(sm + STG * BM * LD);
        const int warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
        const int wm = WG ? warp % WR : warp / WC, wn = WG ? warp / WR : warp % WC;
        float acc[MI][NI][4];
#pragma unroll
        for (int i = 0; i < MI; i++)
#pragma unroll
            for (int j = 0; j < NI; j++)
#pragma unroll
                for (int q = 0; q < 4; q++) acc[i][j][q] = 0.0f;
        TA ra[AV];
        TB rb[BV];
        auto fetch = [&](int k0) {
#pragma unroll
            for (int s = 0; s < AV; s++) {
                if constexpr (A8) {
                    int e = tid + 256 * s, r = e / KVA, c = (e % KVA) * 8;
                    const int64_t m = m0 + r; const int k = k0 + c;
                    ra[s] = m < M && k < K ? A4(m, k) : make_uint4(0u, 0u, 0u, 0u);
                } else {
                    int e = tid + 256 * s, r = e / KV, c = (e % KV) * 4;
                    ra[s] = mc_ld4<VA, M, K>(A, A4, m0 + r, k0 + c);
                }
            }
#pragma unroll
            for (int s = 0; s < BV; s++) {
                if (BVN % 256 && tid + 256 * s >= BVN) continue;
                if constexpr (W8) {
                    int e = tid + 256 * s, r = e / KVB, c = (e % KVB) * 8;
                    int n = n0 + r, k = k0 + c;
                    rb[s] = n < N && k < K ? *(const uint4 *)(W + (int64_t)n * K + k) : make_uint4(0u, 0u, 0u, 0u);
                    continue;
                } else {
                int e = tid + 256 * s, r = e / KV, c = (e % KV) * 4;
                int n = n0 + r, k = k0 + c;
                float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                if (n < N) {
                    const float *w = W + (int64_t)n * K + k;
                    if constexpr (VW) {
                        if (k < K) v = *(const float4 *)w;
                    } else {
                        if (k < K) v.x = w[0];
                        if (k + 1 < K) v.y = w[1];
                        if (k + 2 < K) v.z = w[2];
                        if (k + 3 < K) v.w = w[3];
                    }
                }
                rb[s] = v;
                }
            }
        };
        auto put = [&](T *dst, float4 v) {
            if constexpr (BF) {
                __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
                uint2 u;
                u.x = *(const uint32_t *)&lo;
                u.y = *(const uint32_t *)&hi;
                *(uint2 *)dst = u;
            } else if constexpr (MODE == MC_TF32) {
                *(uint4 *)dst = make_uint4(mc_tf32(v.x), mc_tf32(v.y), mc_tf32(v.z), mc_tf32(v.w));
            } else {
                *(float4 *)dst = v;
            }
        };
        auto stash = [&](int buf) {
#pragma unroll
            for (int s = 0; s < AV; s++) {
                int e = tid + 256 * s;
                if constexpr (A8) *(uint4 *)&As[buf][e / KVA][(e % KVA) * 8] = ra[s];
                else put(&As[buf][e / KV][(e % KV) * 4], ra[s]);
            }
#pragma unroll
            for (int s = 0; s < BV; s++) {
                int e = tid + 256 * s;
                if (BVN % 256 && e >= BVN) continue;
                if constexpr (W8) *(uint4 *)&Bs[buf][e / KVB][(e % KVB) * 8] = rb[s];
                else put(&Bs[buf][e / KV][(e % KV) * 4], rb[s]);
            }
        };
        /* the tensor-core work on the k-tile in stage buf */
        auto mma_tile = [&](int buf) {
#if MC_WGMMA
            if constexpr (WG) {
                /* the k-tile's rows of 64 bytes in order, 16-byte chunk c of
                 * row r at c ^ (r / 2) % 4 (the 64-byte swizzle: the
                 * no-swizzle core-matrix layout measured 13% slower on tiny) */
                const char *a = reinterpret_cast<const char *>(&As[buf][0][0]) + (BM == 128 ? warp / 4 : 0) * 64 * BK * 2;
                const char *b = reinterpret_cast<const char *>(&Bs[buf][0][0]) + wn * WN * BK * 2;
                mc_wg_fence();
#pragma unroll
                for (int ks = 0; ks < BK; ks += KS)
                    mc_wgmma_bf16<WN>(&acc[0][0][0], mc_wg_desc_sw64(a + ks * 2), mc_wg_desc_sw64(b + ks * 2));
                mc_wg_commit();
                /* the previous k-tile's products have finished: its stage
                 * may be refilled after the next barrier */
                mc_wg_wait<1>();
                return;
            }
#endif
            if constexpr (!WG) {
#pragma unroll
            for (int ks = 0; ks < BK; ks += KS) {
                uint32_t af[MI][4], bf[NI][2], al[X3 ? MI : 1][4], bl[X3 ? NI : 1][2];
                /* fragments through ldmatrix: A as 16 x KS, B as two n8 tiles
                 * at once; lane l addresses row l % 16 (A) or l % 8 + l / 16 * 8
                 * (B), at column (l / 16) (A) or (l / 8) % 2 (B) times KS / 2 */
                constexpr int KH = KS / 2;
#pragma unroll
                for (int i = 0; i < MI; i++) {
                    mc_ldsm4(af[i], &As[buf][wm * WM + i * 16 + lane % 16][ks + (lane / 16) * KH]);
                    if constexpr (X3) {
#pragma unroll
                        for (int q = 0; q < 4; q++) {
                            const float x = __uint_as_float(af[i][q]);
                            af[i][q] = mc_tf32(x);
                            al[i][q] = MC_F32X3_BF16C ? mc_bf16x2(x - __uint_as_float(af[i][q]), __uint_as_float(af[i][q]))
                                                      : mc_tf32(x - __uint_as_float(af[i][q]));
                        }
                    } else if constexpr (PIPE && MODE == MC_TF32) {
#pragma unroll
                        for (int q = 0; q < 4; q++) af[i][q] = mc_tf32(__uint_as_float(af[i][q]));
                    }
                }
#pragma unroll
                for (int j = 0; j < NI; j += 2) {
                    uint32_t r[4];
                    mc_ldsm4(r, &Bs[buf][wn * WN + j * 8 + lane % 8 + (lane / 16) * 8][ks + ((lane / 8) % 2) * KH]);
                    bf[j][0] = r[0];
                    bf[j][1] = r[1];
                    bf[j + 1][0] = r[2];
                    bf[j + 1][1] = r[3];
                    if constexpr (X3) {
#pragma unroll
                        for (int jj = j; jj < j + 2; jj++)
#pragma unroll
                            for (int q = 0; q < 2; q++) {
                                const float x = __uint_as_float(bf[jj][q]);
                                bf[jj][q] = mc_tf32(x);
                                bl[jj][q] = MC_F32X3_BF16C ? mc_bf16x2(__uint_as_float(bf[jj][q]), x - __uint_as_float(bf[jj][q]))
                                                           : mc_tf32(x - __uint_as_float(bf[jj][q]));
                            }
                    } else if constexpr (PIPE && MODE == MC_TF32) {
#pragma unroll
                        for (int jj = j; jj < j + 2; jj++)
#pragma unroll
                            for (int q = 0; q < 2; q++) bf[jj][q] = mc_tf32(__uint_as_float(bf[jj][q]));
                    }
                }
#pragma unroll
                for (int i = 0; i < MI; i++)
#pragma unroll
                    for (int j = 0; j < NI; j++) {
                        if constexpr (BF) {
                            mc_mma_bf16(acc[i][j], af[i], bf[j]);
                        } else {
                            if constexpr (X3 && MC_F32X3_BF16C) {
                                /* tf32 fragment register q (row, k) and bf16 register q
                                 * (row, k pair) cover the same rows: the pair holds (lo,
                                 * hi) of A against (hi, lo) of B */
                                mc_mma_bf16(acc[i][j], al[i], bl[j]);
                            } else if constexpr (X3) {
                                mc_mma_tf32(acc[i][j], al[i], bf[j]);
                                mc_mma_tf32(acc[i][j], af[i], bl[j]);
                            }
                            mc_mma_tf32(acc[i][j], af[i], bf[j]);
                        }
                    }
            }
            }
        };
        const int kb = kz * KC, ke = kb + KC < K ? kb + KC : K;
        if constexpr (PIPE) {
            /* EC elements per 16-byte chunk, KVP chunks per row of a k-tile */
            constexpr int EC = 16 / (int)sizeof(T), KVP = BK / EC, AVP = BM * KVP / 256, BVP = BN * KVP,
                          BVR = (BVP + 255) / 256;
            static_assert(AVP >= 1 && BM * KVP % 256 == 0 && K % EC == 0, "mc_gemm: pipeline tile shape");
            const int nk = (ke - kb + BK - 1) / BK;
            /* chunk (row r, column c) of a k-tile in shared memory (WG:
             * rows of BK * 2 = 64 bytes, the 64-byte swizzle) */
            auto place = [&](T (*S)[LD], int r, int c) -> T * {
                if constexpr (WG)
                    return reinterpret_cast<T *>(reinterpret_cast<char *>(&S[0][0]) + r * BK * 2 +
                                                 ((c / EC) ^ ((r >> 1) & 3)) * 16);
                else
                    return &S[r][c];
            };
            auto issue = [&](int st, int k0) {
#pragma unroll
                for (int s = 0; s < AVP; s++) {
                    const int e = tid + 256 * s, r = e / KVP, c = (e % KVP) * EC;
                    const int64_t m = m0 + r;
                    const int k = k0 + c;
                    const T *src = m < M && k < K ? A(m, k) : nullptr;
                    mc_cp16<true>(place(As[st], r, c), src ? (const void *)src : (const void *)W, src != nullptr);
                }
#pragma unroll
                for (int s = 0; s < BVR; s++) {
                    const int e = tid + 256 * s;
                    if (BVP % 256 && e >= BVP) continue;
                    const int r = e / KVP, c = (e % KVP) * EC, n = n0 + r, k = k0 + c;
                    const bool ok = n < N && k < K;
                    mc_cp16<false>(place(Bs[st], r, c), ok ? (const void *)(W + (int64_t)n * K + k) : (const void *)W, ok);
                }
            };
            /* STG - 1 - LAG k-tiles in flight before the first MMA; one
             * commit group per k-tile (empty ones at the end keep the
             * count).  LAG: k-tiles whose products may still run (WG: one
             * wgmma group) */
            constexpr int LAG = WG && (KC + BK - 1) / BK > STG - 1 ? 1 : 0, FL = STG - 1 - LAG;
#pragma unroll
            for (int s = 0; s < FL; s++) {
                if (s < nk) issue(s, kb + s * BK);
                mc_cp_commit();
            }
            for (int it = 0; it < nk; it++) {
                mc_cp_wait<FL - 1>();
#if MC_WGMMA
                if constexpr (WG) mc_fence_async_smem();
#endif
                __syncthreads();
                /* the stage refilled here was consumed in iteration it - 1 -
                 * LAG, by every thread (the barrier above) */
                if (it + FL < nk) issue((it + FL) % STG, kb + (it + FL) * BK);
                mc_cp_commit();
                mma_tile(it % STG);
            }
#if MC_WGMMA
            if constexpr (WG) {
                mc_wg_wait<0>();
                mc_wg_hold<MI * NI * 4>(&acc[0][0][0]);
            }
#endif
            mc_cp_wait<0>();
            __syncthreads();
        } else {
            fetch(kb);
            stash(0);
            __syncthreads();
            int buf = 0;
            for (int k0 = kb; k0 < ke; k0 += BK) {
                if (k0 + BK < ke) fetch(k0 + BK);
                mma_tile(buf);
                if (k0 + BK < ke) stash(buf ^ 1);
                __syncthreads();
                buf ^= 1;
            }
        }
        if constexpr (SK > 1) {
            /* acc[i][j][q] is element (m + 8 * (q / 2), n + q % 2) */
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int j = 0; j < NI; j++)
#pragma unroll
                    for (int q = 0; q < 4; q++) {
                        const int64_t m = m0 + wm * WM + i * 16 + g + 8 * (q / 2);
                        const int n = n0 + wn * WN + j * 8 + 2 * t + q % 2;
                        if (m < M && n < N) ws[((int64_t)kz * M + m) * N + n] = acc[i][j][q];
                    }
            __threadfence();
            __syncthreads();
            __shared__ unsigned last;
            if (tid == 0) last = atomicAdd(&cnt[tile], 1u) == SK - 1;
            __syncthreads();
            if (!last) return;
            __threadfence();
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int j = 0; j < NI; j++)
#pragma unroll
                    for (int q = 0; q < 4; q++) {
                        const int64_t m = m0 + wm * WM + i * 16 + g + 8 * (q / 2);
                        const int n = n0 + wn * WN + j * 8 + 2 * t + q % 2;
                        float v = 0.0f;
                        if (m < M && n < N)
                            for (int z = 0; z < SK; z++) v += __ldcg(&ws[((int64_t)z * M + m) * N + n]);
                        acc[i][j][q] = v;
                    }
            if (tid == 0) cnt[tile] = 0u;
        }
        if constexpr (ST) {
            /* the main loop ended with a barrier: the tiles are free */
            __nv_bfloat16 *Cs = reinterpret_cast<__nv_bfloat16 *>(sm);
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int j = 0; j < NI; j++)
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        const int ml = wm * WM + i * 16 + g + 8 * h, nl = wn * WN + j * 8 + 2 * t;
                        const int64_t m = m0 + ml;
                        const int n = n0 + nl;
                        if (m < M && n < N) {
                            const float2 r = epv(m, n, acc[i][j][2 * h], acc[i][j][2 * h + 1]);
                            *(__nv_bfloat162 *)&Cs[ml * (BN + 8) + nl] = __floats2bfloat162_rn(r.x, r.y);
                        }
                    }
            __syncthreads();
#pragma unroll
            for (int e = tid; e < BM * BN / 8; e += 256) {
                const int r = e / (BN / 8), c = (e % (BN / 8)) * 8;
                const int64_t m = m0 + r;
                if (m < M && n0 + c < N) *(uint4 *)&O[m * N + n0 + c] = *(const uint4 *)&Cs[r * (BN + 8) + c];
            }
        } else {
#pragma unroll
        for (int i = 0; i < MI; i++)
#pragma unroll
            for (int j = 0; j < NI; j++) {
                const int64_t m = m0 + wm * WM + i * 16 + g;
                const int n = n0 + wn * WN + j * 8 + 2 * t;
                /* a thread owns columns n, n + 1 of rows m, m + 8: epi2
                 * stores the pair at once (8 bytes) where it can */
                if (m < M) {
                    if (n + 1 < N) epi2(m, n, acc[i][j][0], acc[i][j][1]);
                    else if (n < N) epi(m, n, acc[i][j][0]);
                }
                if (m + 8 < M) {
                    if (n + 1 < N) epi2(m + 8, n, acc[i][j][2], acc[i][j][3]);
                    else if (n < N) epi(m + 8, n, acc[i][j][2]);
                }
            }
        }
    }
}

/* Skinny products in float32 (FFMA), one thread per output row: N <= 24
 * columns (x_proj), W staged in shared memory, the row read with 16-byte
 * loads (K % 4 == 0).  Grid: ceil(M / 256) blocks. */
template <int64_t M, int N, int K, class AL4, class EP>
static __device__ __forceinline__ void
mc_gemm_thin(const AL4 &A4, const float *__restrict__ W, const EP &epi)
{
    __shared__ __align__(16) float Ws[N * K];
    for (int e = threadIdx.x; e < N * K; e += 256) Ws[e] = W[e];
    __syncthreads();
    const int64_t m = (int64_t)blockIdx.x * 256 + threadIdx.x;
    if (m >= M) return;
    float acc[N];
#pragma unroll
    for (int n = 0; n < N; n++) acc[n] = 0.0f;
#pragma unroll 2
    for (int k = 0; k < K; k += 4) {
        const float4 v = A4(m, k);
#pragma unroll
        for (int n = 0; n < N; n++) {
            const float4 w = *(const float4 *)&Ws[n * K + k];
            /* k in order, as the tiled kernels sum */
            acc[n] = fmaf(v.w, w.w, fmaf(v.z, w.z, fmaf(v.y, w.y, fmaf(v.x, w.x, acc[n]))));
        }
    }
#pragma unroll
    for (int n = 0; n < N; n++) epi(m, n, acc[n]);
}

/* The same products over bf16 rows staged through shared memory: each warp
 * copies its 32 rows' next 32 k with coalesced 16-byte loads (AP(m, k):
 * the address of A[m][k], rows 16-byte aligned), then each lane sums its
 * own row from shared memory (rows padded to 80 bytes: no bank conflicts),
 * k in order exactly as mc_gemm_thin (the same values).  A lane reading its
 * own row from global memory touches 32 lines per load; this reads each
 * line once.  Dynamic shared memory: mc_thin_dsm<N, K>() bytes. */
template <int N, int K>
__host__ __device__ constexpr int
mc_thin_dsm()
{
    return N * K * 4 + 8 * 32 * 80;
}

template <int64_t M, int N, int K, class ALP, class EP>
static __device__ __forceinline__ void
mc_gemm_thin_s(const ALP &AP, const float *__restrict__ W, const EP &epi)
{
    static_assert(std::is_same<decltype(AP((int64_t)0, 0)), const __nv_bfloat16 *>::value, "mc_gemm_thin_s: bf16 rows");
    constexpr int EC = 8, KC = 32, CPR = 4, RB = 80;
    static_assert(K % EC == 0, "mc_gemm_thin_s: 16-byte rows");
    float *Ws = reinterpret_cast<float *>(mc_dsm);
    unsigned char *S = mc_dsm + N * K * 4 + (threadIdx.x / 32) * 32 * RB;
    for (int e = threadIdx.x; e < N * K; e += 256) Ws[e] = W[e];
    __syncthreads();
    const int lane = threadIdx.x % 32;
    const int64_t mw = (int64_t)blockIdx.x * 256 + (threadIdx.x / 32) * 32, m = mw + lane;
    if (mw >= M) return;
    float acc[N];
#pragma unroll
    for (int n = 0; n < N; n++) acc[n] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += KC) {
#pragma unroll
        for (int s = 0; s < CPR; s++) {
            const int e = lane + 32 * s, r = e / CPR, c = e % CPR, k = k0 + c * EC;
            uint4 v = make_uint4(0u, 0u, 0u, 0u);
            if (mw + r < M && k < K) v = *(const uint4 *)AP(mw + r, k);
            *(uint4 *)&S[r * RB + c * 16] = v;
        }
        __syncwarp();
#pragma unroll
        for (int c = 0; c < CPR; c++) {
            const int kc = k0 + c * EC;
            if (kc >= K) break;
            const uint4 raw = *(const uint4 *)&S[lane * RB + c * 16];
            float x[EC];
            const __nv_bfloat162 *h2 = reinterpret_cast<const __nv_bfloat162 *>(&raw);
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const float2 f = __bfloat1622float2(h2[q]);
                x[2 * q] = f.x;
                x[2 * q + 1] = f.y;
            }
#pragma unroll
            for (int h = 0; h < EC; h += 4)
#pragma unroll
                for (int n = 0; n < N; n++) {
                    const float4 w = *(const float4 *)&Ws[n * K + kc + h];
                    acc[n] = fmaf(x[h + 3], w.w, fmaf(x[h + 2], w.z, fmaf(x[h + 1], w.y, fmaf(x[h], w.x, acc[n]))));
                }
        }
        __syncwarp();
    }
    if (m >= M) return;
#pragma unroll
    for (int n = 0; n < N; n++) epi(m, n, acc[n]);
}

static __device__ __forceinline__ float
mc_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* start-up: float weights -> a bf16 copy (W8 GEMMs) */
__global__ void
mc_f2bf(const float *__restrict__ src, __nv_bfloat16 *__restrict__ dst, int64_t n)
{
    const int64_t i = (int64_t)blockIdx.x * 256 + threadIdx.x;
    if (i < n) dst[i] = __float2bfloat16_rn(src[i]);
}

/* start-up: float weights rounded to tf32 in place (mc_mlp32's: its
 * fragments then take them as they are) */
__global__ void
mc_round_tf32(float *__restrict__ w, int64_t n)
{
    const int64_t i = (int64_t)blockIdx.x * 256 + threadIdx.x;
    if (i < n) w[i] = __uint_as_float(mc_tf32(w[i]));
}

/* the sum over each aligned group of G lanes (G a power of two <= 32) */
template <int G>
static __device__ __forceinline__ float
mc_group_sum(float v)
{
#pragma unroll
    for (int o = G / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* The same products when M is small (batch 1): one warp per row, 8 rows per
 * block, lane l summing k = 4l + 128j (16-byte loads of A and W), then a
 * butterfly sum per column; lane n % 32 runs the epilogue of column n. */
template <int64_t M, int N, int K, class AL4, class EP>
static __device__ __forceinline__ void
mc_gemm_warp(const AL4 &A4, const float *__restrict__ W, const EP &epi)
{
    const int lane = threadIdx.x % 32;
    const int64_t m = (int64_t)blockIdx.x * 8 + threadIdx.x / 32;
    if (m >= M) return;
    float acc[N];
#pragma unroll
    for (int n = 0; n < N; n++) acc[n] = 0.0f;
    for (int k = 4 * lane; k < K; k += 128) {
        const float4 v = A4(m, k);
#pragma unroll
        for (int n = 0; n < N; n++) {
            const float4 w = __ldg((const float4 *)&W[n * K + k]);
            acc[n] = fmaf(v.w, w.w, fmaf(v.z, w.z, fmaf(v.y, w.y, fmaf(v.x, w.x, acc[n]))));
        }
    }
#pragma unroll
    for (int n = 0; n < N; n++) {
        const float s = mc_warp_sum(acc[n]);
        if (lane == n % 32) epi(m, n, s);
    }
}


/* activation loads as float: scratch buffers hold bf16 in the bf16 mode;
 * mc_ldv4 reads four consecutive elements (16 bytes of float, 8 of bf16) */
__device__ __forceinline__ float mc_ld(float v) { return v; }
__device__ __forceinline__ float mc_ld(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float4
mc_ldv4(const float *p)
{
    return *(const float4 *)p;
}
__device__ __forceinline__ float4
mc_ldv4(const __nv_bfloat16 *p)
{
    const uint2 u = *(const uint2 *)p;
    const float2 lo = __bfloat1622float2(*(const __nv_bfloat162 *)&u.x);
    const float2 hi = __bfloat1622float2(*(const __nv_bfloat162 *)&u.y);
    return make_float4(lo.x, lo.y, hi.x, hi.y);
}

/* eight bf16 (16 bytes) as floats; eight consecutive elements as float
 * (bf16: one 16-byte load; float: two) / eight floats stored (rounded to bf16: 16 bytes; float: two float4) */
__device__ __forceinline__ void
mc_cvt8(const uint4 u, float *v)
{
    const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const float2 f = __bfloat1622float2(*(const __nv_bfloat162 *)&w[j]);
        v[2 * j] = f.x;
        v[2 * j + 1] = f.y;
    }
}
__device__ __forceinline__ void
mc_ldv8(const __nv_bfloat16 *p, float *v)
{
    mc_cvt8(*(const uint4 *)p, v);
}
__device__ __forceinline__ void
mc_ldv8(const float *p, float *v)
{
    const float4 a = *(const float4 *)p, b = *(const float4 *)(p + 4);
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}
__device__ __forceinline__ void
mc_stv8(float *p, const float *v)
{
    *(float4 *)p = make_float4(v[0], v[1], v[2], v[3]);
    *(float4 *)(p + 4) = make_float4(v[4], v[5], v[6], v[7]);
}
__device__ __forceinline__ void
mc_stv8(__nv_bfloat16 *p, const float *v)
{
    uint4 u;
    __nv_bfloat162 h0 = __floats2bfloat162_rn(v[0], v[1]), h1 = __floats2bfloat162_rn(v[2], v[3]);
    __nv_bfloat162 h2 = __floats2bfloat162_rn(v[4], v[5]), h3 = __floats2bfloat162_rn(v[6], v[7]);
    u.x = *(unsigned *)&h0; u.y = *(unsigned *)&h1; u.z = *(unsigned *)&h2; u.w = *(unsigned *)&h3;
    *(uint4 *)p = u;
}

/* two float4 (8 floats, e.g. in shared memory) as an array */
__device__ __forceinline__ void
mc_f4x2(const float4 *p, float *v)
{
    const float4 a = p[0], b = p[1];
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}

/* the one-pass scan's chunk records, read by other blocks: 8 floats
 * stored and loaded through L2 (.cg: not cached in this SM's L1), a flag
 * set after a fence (the records first), polled until it reaches `want`
 * (then a fence: the records are read after the flag) */
__device__ __forceinline__ void
mc_st8cg(float *p, const float *v)
{
    __stcg((float4 *)p, make_float4(v[0], v[1], v[2], v[3]));
    __stcg((float4 *)(p + 4), make_float4(v[4], v[5], v[6], v[7]));
}
__device__ __forceinline__ void
mc_ld8cg(const float *p, float *v)
{
    const float4 a = __ldcg((const float4 *)p), b = __ldcg((const float4 *)(p + 4));
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}
__device__ __forceinline__ void
mc_flag_set(int *f, int v)
{
    __threadfence();
    *(volatile int *)f = v;
}
__device__ __forceinline__ int
mc_flag_wait(const int *f, int want)
{
    int v;
    while ((v = *(const volatile int *)f) < want) {
    }
    __threadfence();
    return v;
}

/* state_fusion25 taps: 0 = centre; 1 + 8r + j = dilation (1,3,5)[r], j-th of the
 * 8 non-centre 3x3 offsets in row-major order */
__host__ __device__ constexpr int
mc_f25_dy(int t)
{
    return t == 0 ? 0 : (2 * ((t - 1) / 8) + 1) * ((t - 1) % 8 < 3 ? -1 : (t - 1) % 8 < 5 ? 0 : 1);
}
__host__ __device__ constexpr int
mc_f25_dx(int t)
{
    return t == 0 ? 0
                  : (2 * ((t - 1) / 8) + 1) * ((t - 1) % 8 < 3    ? (t - 1) % 8 - 1
                                               : (t - 1) % 8 == 3 ? -1
                                               : (t - 1) % 8 == 4 ? 1
                                                                  : (t - 1) % 8 - 6);
}
/* constant expressions (not a table in memory), so that in the unrolled tap
 * loops the offsets fold and the loads of equal positions merge; checked
 * against the table at compile time */
__host__ __device__ constexpr bool
mc_f25_check()
{
#define TAP(dy, dx) dy,
    const int dy[25] = {
#include "../../../ir/fusion25_taps.def"
    };
#undef TAP
#define TAP(dy, dx) dx,
    const int dx[25] = {
#include "../../../ir/fusion25_taps.def"
    };
#undef TAP
    for (int t = 0; t < 25; t++)
        if (mc_f25_dy(t) != dy[t] || mc_f25_dx(t) != dx[t]) return false;
    return true;
}
static_assert(mc_f25_check(), "mc_f25_dy / mc_f25_dx: the 25-tap offsets");


/* The MLP (fc1 -> its epilogue -> fc2) with the hidden activations on chip
 * (bf16 mode; C, CO <= 128): a block of 128 rows, a warp per 16 of them.
 * The warp's A fragments (16 rows x C) are loaded once into registers;
 * for each chunk of 64 hidden columns (the last one cut at HID, HID % 8 ==
 * 0) the warp computes fc1 for its rows on the tensor cores, adds fc1's
 * bias (B1, nullptr: none), runs the rest of fc1's epilogue (GELU: e1, a
 * column pair at a time) and rounds it to bf16 -- what the unfused fc1
 * stored -- straight into the A fragments of fc2 (an m16n8 accumulator
 * pair is an m16k16 operand: no shared-memory round trip), and adds the
 * chunk's share of fc2 (k = those hidden columns, in order: the summation
 * order of the unfused GEMM) into accumulators that stay in registers;
 * fc2's epilogue (epi2: bias, residual, store) at the end.  The weights
 * (bf16 copies W1 [HID][C], W2 [CO][HID]) go through shared memory, the
 * next chunk's copied while the tensor cores work on this one: one barrier
 * per chunk. */
template <int C, int CO>
__host__ __device__ constexpr int
mc_mlp_dsm()
{
    return (128 * (C + 8) + 2 * 64 * (C + 8) + 2 * CO * 72) * 2;
}

template <int64_t M, int C, int HID, int CO, class ALP, class E1, class E2>
__device__ __forceinline__ void
mc_mlp(const ALP &AP, const __nv_bfloat16 *__restrict__ W1, const __nv_bfloat16 *__restrict__ W2,
       const float *__restrict__ B1, const E1 &e1, const E2 &epi2)
{
    constexpr int BM = 128, HC = 64, LA = C + 8, LH = HC + 8, KS = C / 16, NI1 = HC / 8, NI2 = CO / 8;
    constexpr int NCH = (HID + HC - 1) / HC;
    static_assert(C % 16 == 0 && C <= 128 && HID % 8 == 0 && CO % 16 == 0 && CO <= 128, "mc_mlp: shape");
    typedef __nv_bfloat16 T;
    T *sm = reinterpret_cast<T *>(mc_dsm);
    T (*As)[LA] = reinterpret_cast<T (*)[LA]>(sm);
    T (*W1s)[HC][LA] = reinterpret_cast<T (*)[HC][LA]>(sm + BM * LA);
    T (*W2s)[CO][LH] = reinterpret_cast<T (*)[CO][LH]>(sm + (BM + 2 * HC) * LA);
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int64_t m0 = (int64_t)blockIdx.x * BM, mw = m0 + warp * 16;
    for (int e = tid; e < BM * C / 8; e += 256) {
        const int r = e / (C / 8), c = (e % (C / 8)) * 8;
        const T *src = m0 + r < M ? AP(m0 + r, c) : nullptr;
        mc_cp16<true>(&As[r][c], src ? (const void *)src : (const void *)W1, src != nullptr);
    }
    /* WG (sm_90a): both products on wgmma, A (the warp's fragments) from
     * registers, the weights from shared memory in blocks of 32 k: rows of
     * 64 bytes in the 64-byte swizzle, as mc_gemm's WG form */
    constexpr bool WG = MC_WGMMA && C % 32 == 0 && (CO == 64 || CO == 128);
    /* element (r, c) of a weight tile of R rows (k = c; rows LD apart
     * without WG) */
    auto wplace = [&](T *S, int R, int LD, int r, int c) -> T * {
        if constexpr (WG)
            return reinterpret_cast<T *>(reinterpret_cast<char *>(S) + (c / 32) * R * 64 + r * 64 +
                                         (((c % 32) / 8) ^ ((r >> 1) & 3)) * 16);
        else
            return S + r * LD + c;
    };
    auto weights = [&](int ch) {
        const int h0 = ch * HC, st = ch % 2;
        /* a last chunk past HID: zero weights (its hidden values are zeros too) */
        for (int e = tid; e < HC * C / 8; e += 256) {
            const int r = e / (C / 8), c = (e % (C / 8)) * 8;
            mc_cp16<false>(wplace(&W1s[st][0][0], HC, LA, r, c), W1 + (int64_t)(h0 + r < HID ? h0 + r : 0) * C + c,
                           h0 + r < HID);
        }
        for (int e = tid; e < CO * HC / 8; e += 256) {
            const int r = e / (HC / 8), c = (e % (HC / 8)) * 8;
            mc_cp16<false>(wplace(&W2s[st][0][0], CO, LH, r, c), W2 + (int64_t)r * HID + (h0 + c < HID ? h0 + c : 0),
                           h0 + c < HID);
        }
    };
    weights(0);
    mc_cp_commit();
    uint32_t af[KS][4];
    float acc2[NI2][4];
#pragma unroll
    for (int j = 0; j < NI2; j++)
#pragma unroll
        for (int q = 0; q < 4; q++) acc2[j][q] = 0.0f;
    for (int ch = 0; ch < NCH; ch++) {
        const int st = ch % 2;
        /* this chunk's weights (and, first, the A rows) have landed, and
         * every warp is done with the other stage: refill it */
        mc_cp_wait<0>();
#if MC_WGMMA
        if constexpr (WG) mc_fence_async_smem();
#endif
        __syncthreads();
        if (ch == 0)
#pragma unroll
            for (int ks = 0; ks < KS; ks++) mc_ldsm4(af[ks], &As[warp * 16 + lane % 16][ks * 16 + (lane / 16) * 8]);
        if (ch + 1 < NCH) weights(ch + 1);
        mc_cp_commit();
        float acc1[NI1][4];
#pragma unroll
        for (int j = 0; j < NI1; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc1[j][q] = 0.0f;
#if MC_WGMMA
        if constexpr (WG) {
            mc_wg_fence();
#pragma unroll
            for (int ks = 0; ks < KS; ks++)
                mc_wgmma_bf16_ra<HC>(&acc1[0][0], af[ks],
                                     mc_wg_desc_sw64(reinterpret_cast<const char *>(&W1s[st][0][0]) +
                                                     (ks / 2) * HC * 64 + (ks % 2) * 32));
            mc_wg_commit();
            mc_wg_wait<0>();
            mc_wg_hold<NI1 * 4>(&acc1[0][0]);
        }
#endif
#pragma unroll
        for (int ks = 0; ks < (WG ? 0 : KS); ks++)
#pragma unroll
            for (int j = 0; j < NI1; j += 2) {
                uint32_t r[4];
                mc_ldsm4(r, &W1s[st][j * 8 + lane % 8 + (lane / 16) * 8][ks * 16 + ((lane / 8) % 2) * 8]);
                const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
                mc_mma_bf16(acc1[j], af[ks], b0);
                mc_mma_bf16(acc1[j + 1], af[ks], b1);
            }
        /* fc1's epilogue, rounded to bf16 as the unfused fc1 stored it, as
         * fc2's A fragments (rows past M, columns past HID: zeros, e1 not
         * called): hf[kk] covers hidden columns 16 kk .. 16 kk + 15 */
        uint32_t hf[HC / 16][4];
#pragma unroll
        for (int j = 0; j < NI1; j++)
#pragma unroll
            for (int hh = 0; hh < 2; hh++) {
                const int64_t m = mw + g + 8 * hh;
                const int n = ch * HC + j * 8 + 2 * t;
                float2 v = make_float2(0.0f, 0.0f);
                if (m < M && n < HID) {
                    const float2 bb = B1 ? *(const float2 *)&B1[n] : make_float2(0.0f, 0.0f);
                    v = e1(m, n, acc1[j][2 * hh] + bb.x, acc1[j][2 * hh + 1] + bb.y);
                }
                const __nv_bfloat162 h2 = __floats2bfloat162_rn(v.x, v.y);
                hf[j / 2][(j % 2) * 2 + hh] = *(const uint32_t *)&h2;
            }
#if MC_WGMMA
        if constexpr (WG) {
            /* the chunk's fc2 share; waited for before the next barrier
             * (after it this stage is refilled) */
            mc_wg_fence();
#pragma unroll
            for (int kk = 0; kk < HC / 16; kk++)
                mc_wgmma_bf16_ra<CO>(&acc2[0][0], hf[kk],
                                     mc_wg_desc_sw64(reinterpret_cast<const char *>(&W2s[st][0][0]) +
                                                     (kk / 2) * CO * 64 + (kk % 2) * 32));
            mc_wg_commit();
            mc_wg_wait<0>();
            mc_wg_hold<NI2 * 4>(&acc2[0][0]);
        }
#endif
#pragma unroll
        for (int kk = 0; kk < (WG ? 0 : HC / 16); kk++)
#pragma unroll
            for (int j = 0; j < NI2; j += 2) {
                uint32_t r[4];
                mc_ldsm4(r, &W2s[st][j * 8 + lane % 8 + (lane / 16) * 8][kk * 16 + ((lane / 8) % 2) * 8]);
                const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
                mc_mma_bf16(acc2[j], hf[kk], b0);
                mc_mma_bf16(acc2[j + 1], hf[kk], b1);
            }
    }
#pragma unroll
    for (int j = 0; j < NI2; j++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int64_t m = mw + g + 8 * hh;
            if (m < M) epi2(m, j * 8 + 2 * t, acc2[j][2 * hh], acc2[j][2 * hh + 1]);
        }
}

/* mc_mlp in tf32 mode (float rows, float weights; C, CO <= 64): the same
 * block of 128 rows, a warp per 16 of them, the same chunks of 64 hidden
 * columns, on the m16n8k8 tf32 tensor cores.  The hidden values never
 * leave the registers without a shuffle because k is permuted inside each
 * k-step: a thread's fragment values for k = t and t + 4 are the adjacent
 * columns 2t and 2t + 1 -- for fc1 the row's inputs (one 8-byte load) and
 * W1's columns (one 8-byte shared-memory load), for fc2 the column pair
 * of fc1's accumulators the thread already holds and W2's matching
 * columns.  A sum over all k does not depend on the order of its terms
 * apart from float rounding, so this is fc1 -> e1 -> tf32 -> fc2 as the
 * unfused GEMMs compute it (the hidden values rounded to tf32 as fc2's
 * fragments rounded them).  W1 [HID][C] and W2 [CO][HID], rounded to
 * tf32 in place at start-up (mc_round_tf32), go through shared memory, the next chunk's copied while this one is computed; rows
 * padded by 8 floats (8-byte loads without bank conflicts). */
template <int C, int CO>
__host__ __device__ constexpr int
mc_mlp32_dsm()
{
    return (2 * 64 * (C + 8) + 2 * CO * 72) * 4;
}

template <int64_t M, int C, int HID, int CO, class E1, class E2>
__device__ __forceinline__ void
mc_mlp32(const float *__restrict__ X, const float *__restrict__ W1, const float *__restrict__ W2,
         const float *__restrict__ B1, const E1 &e1, const E2 &epi2)
{
    constexpr int BM = 128, HC = 64, LA = C + 8, LH = HC + 8, KS = C / 8, NI1 = HC / 8, NI2 = CO / 8;
    constexpr int NCH = (HID + HC - 1) / HC;
    static_assert(C % 16 == 0 && C <= 64 && HID % 8 == 0 && CO % 16 == 0 && CO <= 64, "mc_mlp32: shape");
    float *sm = reinterpret_cast<float *>(mc_dsm);
    float (*W1s)[HC][LA] = reinterpret_cast<float (*)[HC][LA]>(sm);
    float (*W2s)[CO][LH] = reinterpret_cast<float (*)[CO][LH]>(sm + 2 * HC * LA);
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int64_t mw = (int64_t)blockIdx.x * BM + warp * 16;
    auto weights = [&](int ch) {
        const int h0 = ch * HC, st = ch % 2;
        /* a last chunk past HID: zero weights (its hidden values are zeros too) */
        for (int e = tid; e < HC * C / 4; e += 256) {
            const int r = e / (C / 4), c = (e % (C / 4)) * 4;
            mc_cp16<false>(&W1s[st][r][c], W1 + (int64_t)(h0 + r < HID ? h0 + r : 0) * C + c, h0 + r < HID);
        }
        for (int e = tid; e < CO * HC / 4; e += 256) {
            const int r = e / (HC / 4), c = (e % (HC / 4)) * 4;
            mc_cp16<false>(&W2s[st][r][c], W2 + (int64_t)r * HID + (h0 + c < HID ? h0 + c : 0), h0 + c < HID);
        }
    };
    weights(0);
    mc_cp_commit();
    /* the warp's rows (zeros past M), rounded to tf32: k-step ks holds
     * columns 8 ks + 2t, + 1 as its k = t, t + 4 */
    uint32_t af[KS][4];
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        const int64_t m = mw + g + 8 * hh;
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
            const float2 v = m < M ? *(const float2 *)&X[m * C + ks * 8 + 2 * t] : make_float2(0.0f, 0.0f);
            af[ks][hh] = mc_tf32(v.x);
            af[ks][2 + hh] = mc_tf32(v.y);
        }
    }
    float acc2[NI2][4];
#pragma unroll
    for (int j = 0; j < NI2; j++)
#pragma unroll
        for (int q = 0; q < 4; q++) acc2[j][q] = 0.0f;
    for (int ch = 0; ch < NCH; ch++) {
        const int st = ch % 2;
        mc_cp_wait<0>();
        __syncthreads();
        if (ch + 1 < NCH) weights(ch + 1);
        mc_cp_commit();
        float acc1[NI1][4];
#pragma unroll
        for (int j = 0; j < NI1; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc1[j][q] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < KS; ks++)
#pragma unroll
            for (int j = 0; j < NI1; j++) {
                const uint2 b = *(const uint2 *)&W1s[st][j * 8 + g][ks * 8 + 2 * t];
                mc_mma_tf32(acc1[j], af[ks], &b.x);
            }
        /* per 8 hidden columns: fc1's epilogue (rows past M, columns past
         * HID: zeros, e1 not called), rounded to tf32, is fc2's A fragment
         * for those 8 k (columns 2t, 2t + 1 as k = t, t + 4) */
#pragma unroll
        for (int j = 0; j < NI1; j++) {
            uint32_t hf[4];
#pragma unroll
            for (int hh = 0; hh < 2; hh++) {
                const int64_t m = mw + g + 8 * hh;
                const int n = ch * HC + j * 8 + 2 * t;
                float2 v = make_float2(0.0f, 0.0f);
                if (m < M && n < HID) {
                    const float2 bb = B1 ? *(const float2 *)&B1[n] : make_float2(0.0f, 0.0f);
                    v = e1(m, n, acc1[j][2 * hh] + bb.x, acc1[j][2 * hh + 1] + bb.y);
                }
                hf[hh] = mc_tf32(v.x);
                hf[2 + hh] = mc_tf32(v.y);
            }
#pragma unroll
            for (int jj = 0; jj < NI2; jj++) {
                const uint2 b = *(const uint2 *)&W2s[st][jj * 8 + g][j * 8 + 2 * t];
                mc_mma_tf32(acc2[jj], hf, &b.x);
            }
        }
    }
#pragma unroll
    for (int j = 0; j < NI2; j++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int64_t m = mw + g + 8 * hh;
            if (m < M) epi2(m, j * 8 + 2 * t, acc2[j][2 * hh], acc2[j][2 * hh + 1]);
        }
}

/* The downsample between stages in one kernel (bf16 mode): t =
 * e1(X W1^T) (a 1x1 conv C -> HID, HID = 8C), u = e2(dwconv3x3 stride 2
 * pad 1 of t), Y = epi2(u W2^T) (a 1x1 conv HID -> CO), t and u never
 * in memory.  A block takes R output rows x TW output columns of one
 * image: the (2R + 1) x (2TW + 1) input pixels they read go to shared
 * memory once; then per chunk of MC_DOWN_HC hidden channels: t for those
 * pixels on the tensor cores (zeros outside the image: the conv's
 * padding), rounded to bf16 as the unfused conv stored it; u for the
 * block's outputs from t (FFMA, the taps in the unfused kernel's order);
 * u's share of Y on the tensor cores into accumulators that stay in
 * registers (k in order: the unfused GEMM's summation order).  Weights
 * (bf16 W1 [HID][C], W2 [CO][HID]; float Wd [3][3][HID]) are copied per
 * chunk, W2 while t is computed, the next W1 while u is: three barriers
 * per chunk.  The outputs equal the unfused kernels' bit for bit. */
#define MC_DOWN_HC 32
template <int C, int CO, int R, int TW, int MT3>
__host__ __device__ constexpr int
mc_down_dsm()
{
    return ((((2 * R + 1) * (2 * TW + 1) + 15) / 16 * 16) * (C + 8 + MC_DOWN_HC + 8) + MC_DOWN_HC * (C + 8) +
            CO * (MC_DOWN_HC + 8) + 16 * MT3 * (MC_DOWN_HC + 8)) * 2 + 2 * 9 * MC_DOWN_HC * 4;
}

template <int B, int H, int W, int C, int HID, int CO, int R, int TW, int MT3, class E1, class E2, class E3>
__device__ __forceinline__ void
mc_down(const __nv_bfloat16 *__restrict__ X, const __nv_bfloat16 *__restrict__ W1, const float *__restrict__ B1,
        const float *__restrict__ Wd, const __nv_bfloat16 *__restrict__ W2, const E1 &e1, const E2 &e2, const E3 &epi2)
{
    constexpr int HO = (H - 1) / 2 + 1, WO = (W - 1) / 2 + 1, HC = MC_DOWN_HC, IC = 2 * TW + 1, P0 = (2 * R + 1) * IC;
    constexpr int P = (P0 + 15) / 16 * 16, MT1 = P / 16, M2 = R * TW, LX = C + 8, LH = HC + 8, KS = C / 16;
    constexpr int NTW = (WO + TW - 1) / TW, NRT = (HO + R - 1) / R, WN = 8 / MT3, NW = CO / WN, NI3 = NW / 8;
    static_assert(C % 16 == 0 && C <= 128 && HID % HC == 0 && 8 % MT3 == 0 && 16 * MT3 >= M2 && 16 * MT3 <= 128 &&
                  NW % 16 == 0, "mc_down: shape");
    typedef __nv_bfloat16 T;
    T *sm = reinterpret_cast<T *>(mc_dsm);
    T (*Xs)[LX] = reinterpret_cast<T (*)[LX]>(sm);
    T (*W1s)[LX] = reinterpret_cast<T (*)[LX]>(sm + P * LX);
    T (*W2s)[LH] = reinterpret_cast<T (*)[LH]>(sm + (P + HC) * LX);
    T (*Hs)[LH] = reinterpret_cast<T (*)[LH]>(sm + (P + HC) * LX + CO * LH);
    T (*Us)[LH] = reinterpret_cast<T (*)[LH]>(sm + (P + HC) * LX + (CO + P) * LH);
    float (*Wds)[9 * HC] = reinterpret_cast<float (*)[9 * HC]>(sm + (P + HC) * LX + (CO + P + 16 * MT3) * LH);
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int bb = blockIdx.x / (NRT * NTW), oh0 = (blockIdx.x / NTW) % NRT * R, ow0 = blockIdx.x % NTW * TW;
    /* the input pixels (zeros outside the image and past P0) */
    for (int e = tid; e < P * (C / 8); e += 256) {
        const int p = e / (C / 8), c = (e % (C / 8)) * 8, ih = 2 * oh0 - 1 + p / IC, iw = 2 * ow0 - 1 + p % IC;
        const bool ok = p < P0 && ih >= 0 && ih < H && iw >= 0 && iw < W;
        mc_cp16<true>(&Xs[p][c], ok ? (const void *)(X + (((int64_t)bb * H + ih) * W + iw) * C + c) : (const void *)X, ok);
    }
    /* W1's rows of chunk ch, and the chunk's depthwise weights (double-buffered: read after W1 is free) */
    auto w1 = [&](int ch) {
        for (int e = tid; e < HC * C / 8; e += 256) {
            const int r = e / (C / 8), c = (e % (C / 8)) * 8;
            mc_cp16<false>(&W1s[r][c], W1 + (int64_t)(ch * HC + r) * C + c, true);
        }
        for (int e = tid; e < 9 * HC / 4; e += 256)
            mc_cp16<false>(&Wds[ch % 2][e * 4], Wd + (e / (HC / 4)) * HID + ch * HC + (e % (HC / 4)) * 4, true);
    };
    auto w2 = [&](int ch) {
        for (int e = tid; e < CO * HC / 8; e += 256) {
            const int r = e / (HC / 8), c = (e % (HC / 8)) * 8;
            mc_cp16<false>(&W2s[r][c], W2 + (int64_t)r * HID + ch * HC + c, true);
        }
    };
    w1(0);
    mc_cp_commit();
    const int mt3 = warp % MT3, n3 = warp / MT3 * NW;
    float acc3[NI3][4];
#pragma unroll
    for (int j = 0; j < NI3; j++)
#pragma unroll
        for (int q = 0; q < 4; q++) acc3[j][q] = 0.0f;
    for (int ch = 0; ch < HID / HC; ch++) {
        /* W1 of this chunk (and the pixels) landed; every warp is done
         * with the last chunk's t, u and W2 */
        mc_cp_wait<0>();
        __syncthreads();
        w2(ch);
        mc_cp_commit();
        /* t = e1(X W1^T + B1) for the tile's pixels: warp w the 16 hidden
         * columns w % 2 of every fourth row tile from w / 2, its W1
         * fragments and bias loaded once */
        {
            const int nh = (warp % 2) * 16;
            uint32_t bw[KS][4];
#pragma unroll
            for (int ks = 0; ks < KS; ks++)
                mc_ldsm4(bw[ks], &W1s[nh + lane % 8 + (lane / 16) * 8][ks * 16 + ((lane / 8) % 2) * 8]);
            float2 bias[2];
#pragma unroll
            for (int j = 0; j < 2; j++)
                bias[j] = B1 ? *(const float2 *)&B1[ch * HC + nh + j * 8 + 2 * t] : make_float2(0.0f, 0.0f);
            for (int mt = warp / 2; mt < MT1; mt += 4) {
                float acc[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
                for (int ks = 0; ks < KS; ks++) {
                    uint32_t af[4];
                    mc_ldsm4(af, &Xs[mt * 16 + lane % 16][ks * 16 + (lane / 16) * 8]);
                    const uint32_t b0[2] = {bw[ks][0], bw[ks][1]}, b1[2] = {bw[ks][2], bw[ks][3]};
                    mc_mma_bf16(acc[0], af, b0);
                    mc_mma_bf16(acc[1], af, b1);
                }
#pragma unroll
                for (int j = 0; j < 2; j++)
#pragma unroll
                    for (int hh = 0; hh < 2; hh++) {
                        const int p = mt * 16 + g + 8 * hh, ih = 2 * oh0 - 1 + p / IC, iw = 2 * ow0 - 1 + p % IC;
                        const int n = ch * HC + nh + j * 8 + 2 * t;
                        float2 v = make_float2(0.0f, 0.0f);
                        if (p < P0 && ih >= 0 && ih < H && iw >= 0 && iw < W)
                            v = e1(((int64_t)bb * H + ih) * W + iw, n, acc[j][2 * hh] + bias[j].x, acc[j][2 * hh + 1] + bias[j].y);
                        *(__nv_bfloat162 *)&Hs[p][nh + j * 8 + 2 * t] = __floats2bfloat162_rn(v.x, v.y);
                    }
            }
        }
        __syncthreads();
        if (ch + 1 < HID / HC) w1(ch + 1);
        mc_cp_commit();
        /* u = e2(depthwise 3x3 stride 2 of t) for the block's outputs, 8
         * channels a thread (zeros past the outputs) */
        for (int e = tid; e < 16 * MT3 * (HC / 8); e += 256) {
            const int o = e / (HC / 8), c = (e % (HC / 8)) * 8, orow = o / TW, ocol = o % TW;
            float a[8];
#pragma unroll
            for (int q = 0; q < 8; q++) a[q] = 0.0f;
            const bool live = o < M2 && oh0 + orow < HO && ow0 + ocol < WO;
            if (live) {
#pragma unroll
                for (int kh = 0; kh < 3; kh++)
#pragma unroll
                    for (int kw = 0; kw < 3; kw++) {
                        const float *wt = &Wds[ch % 2][(kh * 3 + kw) * HC + c];
                        const float4 wa = *(const float4 *)wt, wb = *(const float4 *)(wt + 4);
                        const float w[8] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
                        float v[8];
                        mc_cvt8(*(const uint4 *)&Hs[(2 * orow + kh) * IC + 2 * ocol + kw][c], v);
#pragma unroll
                        for (int q = 0; q < 8; q++) a[q] = fmaf(v[q], w[q], a[q]);
                    }
#pragma unroll
                for (int q = 0; q < 8; q++) a[q] = e2(ch * HC + c + q, a[q]);
            }
            uint4 pk;
            pk.x = mc_bf16x2(a[0], a[1]);
            pk.y = mc_bf16x2(a[2], a[3]);
            pk.z = mc_bf16x2(a[4], a[5]);
            pk.w = mc_bf16x2(a[6], a[7]);
            *(uint4 *)&Us[o][c] = pk;
        }
        /* W2 of this chunk landed (the next W1 may still be in flight) */
        mc_cp_wait<1>();
        __syncthreads();
        /* Y += u W2^T: warp = (16 outputs, NW columns) */
#pragma unroll
        for (int kk = 0; kk < HC / 16; kk++) {
            uint32_t af[4];
            mc_ldsm4(af, &Us[mt3 * 16 + lane % 16][kk * 16 + (lane / 16) * 8]);
#pragma unroll
            for (int j = 0; j < NI3; j += 2) {
                uint32_t r[4];
                mc_ldsm4(r, &W2s[n3 + j * 8 + lane % 8 + (lane / 16) * 8][kk * 16 + ((lane / 8) % 2) * 8]);
                const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
                mc_mma_bf16(acc3[j], af, b0);
                mc_mma_bf16(acc3[j + 1], af, b1);
            }
        }
    }
#pragma unroll
    for (int j = 0; j < NI3; j++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int o = mt3 * 16 + g + 8 * hh, orow = o / TW, ocol = o % TW;
            if (o < M2 && oh0 + orow < HO && ow0 + ocol < WO)
                epi2(((int64_t)bb * HO + oh0 + orow) * WO + ow0 + ocol, n3 + j * 8 + 2 * t, acc3[j][2 * hh],
                     acc3[j][2 * hh + 1]);
        }
}

/* 3x3 convolutions, stride 1, pad 1, on the tensor cores without im2col
 * copies (bf16 mode; C % 16 == 0 input channels, CO % 16 == 0 <= 64
 * outputs): a block of 256 consecutive output positions (b, oh, ow) copies
 * the input rows they read (at most mc_conv3_nr of them, whole rows of W
 * pixels, C bf16 each) and all the weights [CO][kh][kw][C] into shared
 * memory once, then each warp's A fragments (32 positions x 16 channels of
 * one tap) come from ldmatrix with per-lane pixel addresses (the zero row
 * for the padding) -- no barrier inside the loop.  k runs tap-major, 16
 * channels at a time: the order of the implicit GEMM it replaces, so the
 * results are the same. */
/* mc_conv3 / mc_conv3t (stride 1, pad 1: output H x W): the linear input
 * rows b * H + ih that the tile's positions m0 .. mlast read, from the first
 * one's top row to the last one's bottom row, within their images (the
 * first in *r0; returns how many); and output position p's place in them:
 * its tile row and column of tap (0, 0), and the tile pixel of tap (kh,
 * kw) -- the zero row NR * W past the image or past M. */
template <int H, int W>
__device__ __forceinline__ int
mc_conv3_rows(int64_t m0, int64_t mlast, int64_t *r0)
{
    const int64_t l0 = m0 / W, l1 = mlast / W;
    *r0 = (l0 / H) * H + ((l0 % H) > 0 ? (l0 % H) - 1 : 0);
    const int64_t r1 = (l1 / H) * H + ((l1 % H) + 1 < H ? (l1 % H) + 1 : H - 1);
    return (int)(r1 - *r0 + 1);
}

struct McConv3Pos {
    int rb, ih0, iw0;
    bool ok;
};

template <int H, int W>
__device__ __forceinline__ McConv3Pos
mc_conv3_pos(int64_t p, int64_t M, int64_t r0)
{
    const int64_t l = p / W;
    const int oh = (int)(l % H), ow = (int)(p % W);
    return McConv3Pos{(int)((l / H) * H + oh - 1 - r0), oh - 1, ow - 1, p < M};
}

template <int H, int W, int NR>
__device__ __forceinline__ int
mc_conv3_px(const McConv3Pos &q, int kh, int kw)
{
    const int ih = q.ih0 + kh, iw = q.iw0 + kw;
    return q.ok && ih >= 0 && ih < H && iw >= 0 && iw < W ? (q.rb + kh) * W + iw : NR * W;
}

template <int W, int C, int CO, int WO>
__host__ __device__ constexpr int
mc_conv3_nr()
{
    /* 256 positions span at most ceil(256 / WO) + 1 output rows; their
     * input rows, one more where the tile crosses into the next image */
    return (256 + WO - 1) / WO + 1 + 2 + 1;
}

template <int W, int C, int CO, int WO>
__host__ __device__ constexpr int
mc_conv3_dsm()
{
    return ((mc_conv3_nr<W, C, CO, WO>() * W + 1) * (C + 8) + CO * (9 * C + 8)) * 2;
}

template <int B, int H, int W, int C, int CO, class E2>
__device__ __forceinline__ void
mc_conv3(const __nv_bfloat16 *__restrict__ X, const __nv_bfloat16 *__restrict__ W16, const E2 &epi2)
{
    constexpr int HO = H, WO = W, BM = 256, MI = 2, K = 9 * C, LX = C + 8, LW = K + 8, NI = CO / 8;
    constexpr int NR = mc_conv3_nr<W, C, CO, WO>();
    constexpr int64_t M = (int64_t)B * HO * WO;
    static_assert(C % 16 == 0 && CO % 16 == 0 && CO <= 64 && HO * WO >= BM, "mc_conv3: shape");
    typedef __nv_bfloat16 T;
    T *sm = reinterpret_cast<T *>(mc_dsm);
    T (*Xs)[LX] = reinterpret_cast<T (*)[LX]>(sm);
    T (*Ws)[LW] = reinterpret_cast<T (*)[LW]>(sm + (NR * W + 1) * LX);
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int64_t m0 = (int64_t)blockIdx.x * BM, mlast = (m0 + BM < M ? m0 + BM : M) - 1;
    int64_t r0;
    const int nr = mc_conv3_rows<H, W>(m0, mlast, &r0);
    for (int e = tid; e < nr * W * (C / 8); e += 256) {
        const int px = e / (C / 8), c = (e % (C / 8)) * 8;
        mc_cp16<true>(&Xs[px][c], X + (r0 * W + px) * C + c, true);
    }
    for (int e = tid; e < CO * (K / 8); e += 256) {
        const int r = e / (K / 8), c = (e % (K / 8)) * 8;
        mc_cp16<false>(&Ws[r][c], W16 + (int64_t)r * K + c, true);
    }
    mc_cp_commit();
    if (tid < C / 8) *(uint4 *)&Xs[NR * W][tid * 8] = make_uint4(0u, 0u, 0u, 0u);
    /* this lane's A rows: position lane % 16 of fragment i */
    McConv3Pos pos[MI];
#pragma unroll
    for (int i = 0; i < MI; i++) pos[i] = mc_conv3_pos<H, W>(m0 + warp * 16 * MI + i * 16 + lane % 16, M, r0);
    mc_cp_wait<0>();
    __syncthreads();
    float acc[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc[i][j][q] = 0.0f;
#pragma unroll
    for (int tap = 0; tap < 9; tap++) {
        const int kh = tap / 3, kw = tap % 3;
        int xo[MI];
#pragma unroll
        for (int i = 0; i < MI; i++) xo[i] = mc_conv3_px<H, W, NR>(pos[i], kh, kw);
#pragma unroll
        for (int cs = 0; cs < C; cs += 16) {
            uint32_t af[MI][4], bf[NI][2];
#pragma unroll
            for (int i = 0; i < MI; i++) mc_ldsm4(af[i], &Xs[xo[i]][cs + (lane / 16) * 8]);
#pragma unroll
            for (int j = 0; j < NI; j += 2) {
                uint32_t r[4];
                mc_ldsm4(r, &Ws[j * 8 + lane % 8 + (lane / 16) * 8][tap * C + cs + ((lane / 8) % 2) * 8]);
                bf[j][0] = r[0];
                bf[j][1] = r[1];
                bf[j + 1][0] = r[2];
                bf[j + 1][1] = r[3];
            }
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int j = 0; j < NI; j++) mc_mma_bf16(acc[i][j], af[i], bf[j]);
        }
    }
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int hh = 0; hh < 2; hh++) {
                const int64_t m = m0 + warp * 16 * MI + i * 16 + g + 8 * hh;
                if (m < M) epi2(m, j * 8 + 2 * t, acc[i][j][2 * hh], acc[i][j][2 * hh + 1]);
            }
}

/* mc_conv3 in tf32 mode (float rows and weights): the same block of 256
 * positions, the same input rows and weights in shared memory (float: rows
 * padded by 8 floats), the m16n8k8 tf32 MMA.  k is permuted inside each
 * 8-channel step as in mc_mlp32: a thread's fragment values for k = t and
 * t + 4 are channels 2t and 2t + 1 (one 8-byte shared-memory load per
 * pixel row of A and per output channel of B, no bank conflicts).  The
 * inputs are rounded to tf32 per fragment, the weights once at start-up
 * (mc_round_tf32 on the re-packed copy). */
template <int W, int C, int CO, int WO>
__host__ __device__ constexpr int
mc_conv3t_dsm()
{
    return ((mc_conv3_nr<W, C, CO, WO>() * W + 1) * (C + 8) + CO * (9 * C + 8)) * 4;
}

template <int B, int H, int W, int C, int CO, class E2>
__device__ __forceinline__ void
mc_conv3t(const float *__restrict__ X, const float *__restrict__ Wt, const E2 &epi2)
{
    constexpr int HO = H, WO = W, BM = 256, MI = 2, K = 9 * C, LX = C + 8, LW = K + 8, NI = CO / 8;
    constexpr int NR = mc_conv3_nr<W, C, CO, WO>();
    constexpr int64_t M = (int64_t)B * HO * WO;
    static_assert(C % 16 == 0 && CO % 16 == 0 && CO <= 64 && HO * WO >= BM, "mc_conv3t: shape");
    float *sm = reinterpret_cast<float *>(mc_dsm);
    float (*Xs)[LX] = reinterpret_cast<float (*)[LX]>(sm);
    float (*Ws)[LW] = reinterpret_cast<float (*)[LW]>(sm + (NR * W + 1) * LX);
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int64_t m0 = (int64_t)blockIdx.x * BM, mlast = (m0 + BM < M ? m0 + BM : M) - 1;
    int64_t r0;
    const int nr = mc_conv3_rows<H, W>(m0, mlast, &r0);
    for (int e = tid; e < nr * W * (C / 4); e += 256) {
        const int px = e / (C / 4), c = (e % (C / 4)) * 4;
        mc_cp16<true>(&Xs[px][c], X + (r0 * W + px) * C + c, true);
    }
    for (int e = tid; e < CO * (K / 4); e += 256) {
        const int r = e / (K / 4), c = (e % (K / 4)) * 4;
        mc_cp16<false>(&Ws[r][c], Wt + (int64_t)r * K + c, true);
    }
    mc_cp_commit();
    if (tid < C / 4) *(float4 *)&Xs[NR * W][tid * 4] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    /* this lane's A rows g and g + 8 of fragment i */
    McConv3Pos pos[MI][2];
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++) pos[i][hh] = mc_conv3_pos<H, W>(m0 + warp * 16 * MI + i * 16 + g + 8 * hh, M, r0);
    mc_cp_wait<0>();
    __syncthreads();
    float acc[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc[i][j][q] = 0.0f;
#pragma unroll
    for (int tap = 0; tap < 9; tap++) {
        const int kh = tap / 3, kw = tap % 3;
        int xo[MI][2];
#pragma unroll
        for (int i = 0; i < MI; i++)
#pragma unroll
            for (int hh = 0; hh < 2; hh++) xo[i][hh] = mc_conv3_px<H, W, NR>(pos[i][hh], kh, kw);
#pragma unroll
        for (int cs = 0; cs < C; cs += 8) {
            uint32_t af[MI][4];
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int hh = 0; hh < 2; hh++) {
                    const float2 v = *(const float2 *)&Xs[xo[i][hh]][cs + 2 * t];
                    af[i][hh] = mc_tf32(v.x);
                    af[i][2 + hh] = mc_tf32(v.y);
                }
#pragma unroll
            for (int j = 0; j < NI; j++) {
                const uint2 b = *(const uint2 *)&Ws[j * 8 + g][tap * C + cs + 2 * t];
#pragma unroll
                for (int i = 0; i < MI; i++) mc_mma_tf32(acc[i][j], af[i], &b.x);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int hh = 0; hh < 2; hh++) {
                const int64_t m = m0 + warp * 16 * MI + i * 16 + g + 8 * hh;
                if (m < M) epi2(m, j * 8 + 2 * t, acc[i][j][2 * hh], acc[i][j][2 * hh + 1]);
            }
}
