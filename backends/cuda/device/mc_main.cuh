/* backends/cuda/device/mc_main.cuh -- the GPU half of the CUDA
 * executable's host code, at the end of every generated .cu: the model's
 * glue (mc_cuda_glue) and the mc_cuda_* functions of
 * runtime/exe/mc_cuda_glue.h (pasted before this): the device check, the
 * arena, the CUDA graph, the timings, --instrument's kernel outputs.  The
 * rest of the executable -- options, .npy files, atomic outputs, messages
 * -- is the runtime's (runtime/exe/cuda_main.c, npy.c, out.c), which
 * cuda_host.c compiles with the host C compiler and links with this .cu.
 * It follows the model's #defines (MC_NAME, shapes, arena offsets),
 * mc_arena, mc_prepare() and mc_forward(), which cuda_host.c emits before
 * pasting it.  Embedded at build time (embed.cmake: everything after this
 * comment, byte for byte).
 */
/* ---------------------------------------------------------------- host */
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s: error: CUDA %s (%s) at line %d\n", MC_NAME, cudaGetErrorName(e_), \
            cudaGetErrorString(e_), __LINE__); exit(1); } } while (0)

#if MC_EMBEDDED_WEIGHTS
extern "C" const unsigned char mc_cuda_weights[];
#endif
#ifndef MC_INSTRUMENT
#define MC_INSTRUMENT 0
#endif
#undef cudaEventRecord /* --instrument's hook (before the device code) ends here */

extern "C" const McCudaGlue mc_cuda_glue = {
    MC_NAME, MC_PRECISION, MC_BATCH, MC_SM, MC_NK, MC_WEIGHTS_BYTES,
    MC_INPUT_RANK, MC_INPUT_SHAPE, MC_OUTPUT_RANK, MC_OUTPUT_SHAPE,
#if MC_EMBEDDED_WEIGHTS
    mc_cuda_weights,
#else
    NULL,
#endif
    mc_kernel_names, mc_kernel_flops, MC_INSTRUMENT};

static cudaStream_t mc_stream;
static cudaGraph_t mc_graph;
static cudaGraphExec_t mc_exec;
static float *mc_hin, *mc_hout;

extern "C" int
mc_cuda_open(char *dev, size_t devlen, char *msg, size_t msglen)
{
    int ndev = 0;
    const cudaError_t de = cudaGetDeviceCount(&ndev);
    if (de != cudaSuccess || ndev == 0) {
        snprintf(msg, msglen, "no usable NVIDIA GPU (%s); this executable needs one of compute capability %d.%d%s, with its driver",
                 de != cudaSuccess ? cudaGetErrorString(de) : "no device", MC_SM / 10, MC_SM % 10,
                 MC_SM == 90 ? "" : " (or a later one of the same major version)");
        return -1;
    }
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    /* its machine code runs on MC_SM's major version, from MC_SM on (sm_90:
     * built as sm_90a, compute capability 9.0 only) */
    if (prop.major != MC_SM / 10 || prop.minor < MC_SM % 10 || (MC_SM == 90 && prop.minor != 0)) {
        snprintf(msg, msglen, "%s is compute capability %d.%d; this executable was built for %d.%d (mambac compile --sm)",
                 prop.name, prop.major, prop.minor, MC_SM / 10, MC_SM % 10);
        return -1;
    }
    snprintf(dev, devlen, "%s", prop.name);
    return 0;
}

extern "C" void
mc_cuda_setup(const void *w, const float *x)
{
    CK(cudaMallocHost((void **)&mc_hin, MC_INPUT_COUNT * 4));
    CK(cudaMallocHost((void **)&mc_hout, MC_OUTPUT_COUNT * 4));
    memcpy(mc_hin, x, MC_INPUT_COUNT * 4);
    /* device: one arena, weights uploaded once */
    CK(cudaMalloc((void **)&mc_arena, MC_ARENA_BYTES));
    CK(cudaMemcpy(mc_arena, w, MC_WEIGHTS_BYTES, cudaMemcpyHostToDevice));
    /* everything after the weights starts zeroed: the split-K tile counters
     * must (each kernel leaves them zero again) */
    CK(cudaMemset(mc_arena + MC_WEIGHTS_BYTES, 0, MC_ARENA_BYTES - MC_WEIGHTS_BYTES));
    CK(cudaStreamCreateWithFlags(&mc_stream, cudaStreamNonBlocking));
    mc_prepare(mc_stream);
    CK(cudaStreamSynchronize(mc_stream));
    CK(cudaGetLastError());
    /* the whole forward pass as one CUDA graph, captured once */
    CK(cudaStreamBeginCapture(mc_stream, cudaStreamCaptureModeThreadLocal));
    mc_forward(mc_stream, NULL);
    CK(cudaStreamEndCapture(mc_stream, &mc_graph));
    CK(cudaGetLastError());
    CK(cudaGraphInstantiate(&mc_exec, mc_graph, 0));
    CK(cudaMemcpyAsync(P(MC_INPUT_OFF), mc_hin, MC_INPUT_COUNT * 4, cudaMemcpyHostToDevice, mc_stream));
    CK(cudaStreamSynchronize(mc_stream));
}

extern "C" void
mc_cuda_set_input(const float *x)
{
    memcpy(mc_hin, x, MC_INPUT_COUNT * 4);
    CK(cudaMemcpyAsync(P(MC_INPUT_OFF), mc_hin, MC_INPUT_COUNT * 4, cudaMemcpyHostToDevice, mc_stream));
    CK(cudaStreamSynchronize(mc_stream));
}

extern "C" void
mc_cuda_run(float *y)
{
    CK(cudaGraphLaunch(mc_exec, mc_stream));
    CK(cudaMemcpyAsync(mc_hout, P(MC_OUTPUT_OFF), MC_OUTPUT_COUNT * 4, cudaMemcpyDeviceToHost, mc_stream));
    CK(cudaStreamSynchronize(mc_stream));
    CK(cudaGetLastError());
    memcpy(y, mc_hout, MC_OUTPUT_COUNT * 4);
}

extern "C" void
mc_cuda_bench(int n, float *t)
{
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    CK(cudaGraphLaunch(mc_exec, mc_stream));
    for (int r = 0; r < n; r++) {
        CK(cudaEventRecord(e0, mc_stream));
        CK(cudaGraphLaunch(mc_exec, mc_stream));
        CK(cudaEventRecord(e1, mc_stream));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&t[r], e0, e1));
    }
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
}

extern "C" void
mc_cuda_profile(int n, double *ms)
{
    static cudaEvent_t ev[MC_NK + 1];
    for (int k = 0; k <= MC_NK; k++) CK(cudaEventCreate(&ev[k]));
    for (int r = 0; r < n; r++) {
        mc_forward(mc_stream, ev);
        CK(cudaStreamSynchronize(mc_stream));
        CK(cudaGetLastError());
        for (int k = 0; k < MC_NK; k++) {
            float x;
            CK(cudaEventElapsedTime(&x, ev[k], ev[k + 1]));
            ms[k] += x / n;
        }
    }
    for (int k = 0; k <= MC_NK; k++) CK(cudaEventDestroy(ev[k]));
}

#if MC_INSTRUMENT
/* --instrument: mc_forward's event before kernel k (the hook of
 * cudaEventRecord defined before the device code) means kernels 0..k-1
 * are queued: the stream is synchronized and kernel k-1's output buffer
 * (mc_kout_*) goes to the caller's function. */
static McCudaKernelOutput mc_kout_fn;
static void *mc_kout_user;
static cudaEvent_t mc_kout_ev[MC_NK + 1];
static int mc_kout_rc;
static float *mc_kout_host;

static void
mc_kout_pass(int k)
{
    if (mc_kout_rc || mc_kout_off[k] < 0) return;
    const long long n = mc_kout_count[k];
    CK(cudaStreamSynchronize(mc_stream));
    CK(cudaGetLastError());
    CK(cudaMemcpy(mc_kout_host, mc_arena + mc_kout_off[k], (size_t)n * (mc_kout_bf16[k] ? 2 : 4), cudaMemcpyDeviceToHost));
    if (mc_kout_bf16[k]) /* bf16 -> float: the high half of the bits, backwards in place */
        for (long long i = n - 1; i >= 0; i--) {
            const uint32_t u = (uint32_t)((const uint16_t *)mc_kout_host)[i] << 16;
            memcpy(&mc_kout_host[i], &u, 4);
        }
    mc_kout_rc = mc_kout_fn(mc_kout_user, k, mc_kout_host, mc_kout_rank[k], mc_kout_shape[k]);
}

static cudaError_t
mc_instr_record(cudaEvent_t *e, cudaStream_t s)
{
    const cudaError_t r = cudaEventRecord(*e, s);
    if (mc_kout_fn && e > mc_kout_ev && e <= mc_kout_ev + MC_NK) mc_kout_pass((int)(e - mc_kout_ev) - 1);
    return r;
}
#endif

extern "C" int
mc_cuda_kernel_outputs(McCudaKernelOutput fn, void *user)
{
#if MC_INSTRUMENT
    long long most = 1;
    for (int k = 0; k < MC_NK; k++) most = mc_kout_count[k] > most ? mc_kout_count[k] : most;
    CK(cudaMallocHost((void **)&mc_kout_host, (size_t)most * 4));
    for (int k = 0; k <= MC_NK; k++) CK(cudaEventCreate(&mc_kout_ev[k]));
    mc_kout_fn = fn;
    mc_kout_user = user;
    mc_kout_rc = 0;
    CK(cudaMemcpyAsync(P(MC_INPUT_OFF), mc_hin, MC_INPUT_COUNT * 4, cudaMemcpyHostToDevice, mc_stream));
    mc_forward(mc_stream, mc_kout_ev);
    CK(cudaStreamSynchronize(mc_stream));
    CK(cudaGetLastError());
    mc_kout_fn = NULL;
    for (int k = 0; k <= MC_NK; k++) CK(cudaEventDestroy(mc_kout_ev[k]));
    CK(cudaFreeHost(mc_kout_host));
    return mc_kout_rc;
#else
    (void)fn;
    (void)user;
    return -1;
#endif
}

extern "C" void
mc_cuda_close(void)
{
    CK(cudaGraphExecDestroy(mc_exec));
    CK(cudaGraphDestroy(mc_graph));
    CK(cudaFree(mc_arena));
    CK(cudaFreeHost(mc_hin));
    CK(cudaFreeHost(mc_hout));
}
