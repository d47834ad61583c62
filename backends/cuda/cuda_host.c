/* backends/cuda/cuda_host.c -- the whole .cu, the device weights blob and
 * the nvcc driver (mc_cuda_compile).
 *
 * Takes a KProgram, its weights and McCudaOptions; produces OUT.cu (model
 * #defines, the device code of cuda_print.c, the executable's interface
 * runtime/exe/mc_cuda_glue.h and its GPU half device/mc_main.cuh; with
 * --instrument the kernel-output hook and table), OUT.weights when the
 * weights are external, and for --emit exe the executable OUT: the
 * runtime's main (runtime/exe/cuda_main.c, npy.c, out.c) compiled with the
 * host C compiler, linked by nvcc with the .cu (static cudart; embedded
 * weights are an object file written directly, backends/elf_obj.h).  Every output is
 * opened before the work and renamed into place when all are complete
 * (runtime/mc_out.h); the tools run without a shell, in a private
 * temporary directory (backends/artifact.h) that a signal's cleanup
 * removes.  Owns that directory for the duration of a call.
 */
#define _GNU_SOURCE
#include "cuda_print.h"
#include "../../passes/lower.h"
#include "../../ir/weights_blob.h"
#include "../../runtime/mc_npy.h"
#include "../../runtime/mc_out.h"
#include "../artifact.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* device/mc_main.cuh as mc_main_cuh[], runtime/exe/mc_cuda_glue.h as
 * mc_cuda_glue_h[], and for several outputs device/mc_outputs.cuh and
 * runtime/exe/mc_cuda_outputs.h (embedded by the build) */
#include "mc_cuda_glue_h.h"
#include "mc_cuda_outputs_h.h"
#include "mc_main_cuh.h"
#include "mc_outputs_cuh.h"

static void
shape_list(McBuf *b, const Shape *s, const char *open, const char *close)
{
    mc_buf_puts(b, open);
    for (int i = 0; i < s->rank; i++) mc_buf_printf(b, "%s%lld", i ? ", " : "", (long long)s->d[i]);
    mc_buf_puts(b, close);
}

static void
c_string(McBuf *b, const char *s)
{
    mc_buf_puts(b, "\"");
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') mc_buf_printf(b, "\\%c", *s);
        else if ((unsigned char)*s < 32) mc_buf_printf(b, "\\%03o", (unsigned char)*s);
        else mc_buf_printf(b, "%c", *s);
    }
    mc_buf_puts(b, "\"");
}

/* --instrument: where each kernel's output buffer is (arena offset, -1 on
 * chip), its elements, whether it holds bf16, its shape */
static void
print_kernel_outputs(const KProgram *p, const McCudaOptions *o, const CudaLayout *lay, McBuf *b)
{
    int n = p->nk ? p->nk : 1;
    mc_buf_printf(b, "static const long long mc_kout_off[%d] = {", n);
    for (int i = 0; i < p->nk; i++)
        mc_buf_printf(b, "%s%lld", i ? ", " : "", mc_kprogram_on_chip(p, i) ? -1LL : (long long)mc_cuda_buf_offset(p, lay, p->k[i].out.buf));
    mc_buf_printf(b, "};\nstatic const long long mc_kout_count[%d] = {", n);
    for (int i = 0; i < p->nk; i++) mc_buf_printf(b, "%s%lld", i ? ", " : "", (long long)(p->bufs[p->k[i].out.buf].bytes / 4));
    mc_buf_printf(b, "};\nstatic const int mc_kout_bf16[%d] = {", n);
    for (int i = 0; i < p->nk; i++) mc_buf_printf(b, "%s%d", i ? ", " : "", mc_cu_stores_bf16(p, o->precision, p->k[i].out.buf));
    mc_buf_printf(b, "};\nstatic const int mc_kout_rank[%d] = {", n);
    for (int i = 0; i < p->nk; i++) mc_buf_printf(b, "%s%d", i ? ", " : "", p->bufs[p->k[i].out.buf].shape.rank);
    mc_buf_printf(b, "};\nstatic const int64_t mc_kout_shape[%d][8] = {\n", n);
    for (int i = 0; i < p->nk; i++) shape_list(b, &p->bufs[p->k[i].out.buf].shape, "    {", "},\n");
    mc_buf_puts(b, "};\n\n");
}

/* A model with several outputs: their table and run (mc_outputs.cuh) */
static void
print_outputs(const KProgram *p, const CudaLayout *lay, McBuf *b)
{
    mc_buf_puts(b, "/* ---------------------------------------------------------------- outputs */\n");
    mc_buf_puts(b, mc_cuda_outputs_h);
    mc_buf_printf(b, "#define MC_NOUTPUTS %d\n#define MC_OUTPUT_NAMES {", p->noutputs);
    for (int j = 0; j < p->noutputs; j++) {
        mc_buf_puts(b, j ? ", " : "");
        c_string(b, p->bufs[p->output_bufs[j]].name);
    }
    mc_buf_puts(b, "}\n#define MC_OUTPUT_RANKS {");
    for (int j = 0; j < p->noutputs; j++) mc_buf_printf(b, "%s%d", j ? ", " : "", p->bufs[p->output_bufs[j]].shape.rank);
    mc_buf_puts(b, "}\n#define MC_OUTPUT_SHAPES {");
    for (int j = 0; j < p->noutputs; j++) shape_list(b, &p->bufs[p->output_bufs[j]].shape, j ? ", {" : "{", "}");
    mc_buf_puts(b, "}\n#define MC_OUTPUT_OFFS {");
    for (int j = 0; j < p->noutputs; j++) mc_buf_printf(b, "%s%lldll", j ? ", " : "", (long long)lay->output_off[j]);
    mc_buf_puts(b, "}\n#define MC_OUTPUT_COUNTS {");
    for (int j = 0; j < p->noutputs; j++)
        mc_buf_printf(b, "%s%lldll", j ? ", " : "", (long long)(p->bufs[p->output_bufs[j]].bytes / 4));
    mc_buf_puts(b, "}\n");
    mc_buf_puts(b, mc_outputs_cuh);
}

int
mc_cuda_print(const KProgram *p, const McCudaOptions *o, McBuf *b, int64_t *blob_bytes, McErr *err)
{
    if (p->input_buf < 0 || p->noutputs < 1 || p->noutputs > MC_MAX_OUTPUTS)
        return mc_err(err, "cuda: the program needs one input and 1 to %d outputs", MC_MAX_OUTPUTS);
    CudaOpts co = {o->precision, o->sm ? o->sm : 90};
    CudaLayout lay;
    mc_cuda_layout(p, o->precision, &lay);
    /* output 0 is the glue's MC_OUTPUT_*; the others are in mc_outputs.cuh's table */
    const Buffer *in = &p->bufs[p->input_buf], *out = &p->bufs[p->output_bufs[0]];
    char outs[64 * MC_MAX_OUTPUTS];
    size_t n = (size_t)snprintf(outs, sizeof outs, "output%s", p->noutputs > 1 ? "s" : "");
    for (int j = 0; j < p->noutputs; j++)
        n += (size_t)snprintf(outs + n, sizeof outs - n, "%s @%lld", j ? "," : "", (long long)lay.output_off[j]);
    mc_buf_printf(b, "/* %s.cu -- generated by mambac (CUDA backend), model '%s', precision %s, sm_%d.\n",
                  p->name ? p->name : "model", p->name ? p->name : "model", mc_cuda_precision_name(o->precision),
                  co.sm);
    mc_buf_printf(b, " * %d fused kernels; device arena %lld bytes: weights %lld @0, scratch %lld @%lld,\n"
                     " * input @%lld, %s, scan carries @%lld.\n"
                     " * Build: nvcc -O3 -std=c++17 -arch=sm_%d%s -cudart static %s.cu cuda_main.o npy.o out.o -o %s\n"
                     " *        (the objects: cc -c runtime/exe/cuda_main.c runtime/npy.c runtime/out.c; with\n"
                     " *        -DMC_EMBEDDED_WEIGHTS=1 and an object defining mc_cuda_weights to embed them). */\n",
                  p->nk, (long long)lay.arena_bytes, (long long)lay.blob_bytes, (long long)p->scratch_bytes,
                  (long long)lay.scratch_off, (long long)lay.input_off, outs,
                  (long long)lay.carry_off, co.sm, co.sm == 90 ? "a" : "", p->name ? p->name : "model", p->name ? p->name : "model");
    if (o->instrument) /* the hook of mc_forward's events (mc_main.cuh, --kernel-outputs) */
        mc_buf_puts(b, "#define MC_INSTRUMENT 1\nstatic cudaError_t mc_instr_record(cudaEvent_t *e, cudaStream_t s);\n"
                       "#define cudaEventRecord(e, s) mc_instr_record(&(e), s)\n");
    int rc = mc_cuda_print_device(p, &co, &lay, b, err);
    if (!rc) {
        mc_buf_puts(b, "/* ---------------------------------------------------------------- model */\n");
        mc_buf_puts(b, "#ifndef MC_EMBEDDED_WEIGHTS\n#define MC_EMBEDDED_WEIGHTS 0\n#endif\n");
        mc_buf_puts(b, "#define MC_NAME ");
        c_string(b, p->name ? p->name : "model");
        mc_buf_printf(b, "\n#define MC_PRECISION \"%s\"\n", mc_cuda_precision_name(o->precision));
        mc_buf_printf(b, "#define MC_BATCH %lld\n", (long long)in->shape.d[0]);
        mc_buf_printf(b, "#define MC_SM %d\n", o->sm ? o->sm : 90);
        mc_buf_printf(b, "#define MC_NK %d\n", p->nk);
        mc_buf_printf(b, "#define MC_WEIGHTS_BYTES %lldll\n", (long long)lay.blob_bytes);
        mc_buf_printf(b, "#define MC_ARENA_BYTES %lldll\n", (long long)lay.arena_bytes);
        mc_buf_printf(b, "#define MC_INPUT_OFF %lldll\n#define MC_OUTPUT_OFF %lldll\n", (long long)lay.input_off,
                      (long long)lay.output_off[0]);
        mc_buf_printf(b, "#define MC_INPUT_RANK %d\n#define MC_INPUT_COUNT %lldll\n", in->shape.rank,
                      (long long)(in->bytes / 4));
        mc_buf_printf(b, "#define MC_OUTPUT_RANK %d\n#define MC_OUTPUT_COUNT %lldll\n", out->shape.rank,
                      (long long)(out->bytes / 4));
        mc_buf_puts(b, "#define MC_INPUT_SHAPE ");
        shape_list(b, &in->shape, "{", "}\n");
        mc_buf_puts(b, "#define MC_OUTPUT_SHAPE ");
        shape_list(b, &out->shape, "{", "}\n");
        mc_buf_puts(b, "#define MC_INPUT_SHAPE_STR ");
        shape_list(b, &in->shape, "\"[", "]\"\n");
        mc_buf_puts(b, "#define MC_OUTPUT_SHAPE_STR ");
        shape_list(b, &out->shape, "\"[", "]\"\n");
        mc_buf_printf(b, "static const char *mc_kernel_names[%d] = {\n", p->nk ? p->nk : 1);
        /* a kernel run inside another is named so, its FLOPs counted there */
        for (int i = 0; i < p->nk; i++) {
            char nm[320];
            int f = p->k[i].host;
            if (f >= 0) snprintf(nm, sizeof nm, "%s (inside %s)", p->k[i].name, p->k[f].name);
            else snprintf(nm, sizeof nm, "%s", p->k[i].name);
            mc_buf_puts(b, "    ");
            c_string(b, nm);
            mc_buf_puts(b, ",\n");
        }
        mc_buf_printf(b, "};\nstatic const double mc_kernel_flops[%d] = {\n", p->nk ? p->nk : 1);
        for (int i = 0; i < p->nk; i++) {
            double fl = p->k[i].host >= 0 ? 0.0 : p->k[i].flops;
            for (int j = i + 1; j < p->nk && p->k[j].host == i; j++) fl += p->k[j].flops;
            mc_buf_printf(b, "    %s,\n", MC_DOUBLE_LIT(fl));
        }
        mc_buf_puts(b, "};\n\n");
        if (o->instrument) print_kernel_outputs(p, o, &lay, b);
        mc_buf_puts(b, mc_cuda_glue_h);
        mc_buf_puts(b, mc_main_cuh);
        if (p->noutputs > 1) print_outputs(p, &lay, b);
    }
    if (blob_bytes) *blob_bytes = lay.blob_bytes;
    mc_cuda_layout_free(&lay);
    if (!rc && b->oom) rc = mc_err(err, "cuda: out of memory");
    return rc;
}

/* The CUDA layout's re-packed weights of kernel ki (mc_weights_blob's hook,
 * ctx the CudaLayout): kernels with lay->repack[ki] >= 0 read in[1] there. */
static void
pack_kernel(void *ctx, const KProgram *p, int ki, const McBlobSrc *s, uint8_t *blob)
{
    const CudaLayout *lay = ctx;
    if (lay->repack[ki] < 0) return;
    const Kernel *k = &p->k[ki];
    const View *w = &k->in[1];
    const float *src = mc_blob_src_view(s, w);
    float *dst = (float *)(blob + lay->repack[ki]);
    if (k->kind == KK_FUSION25) { /* [D,25] -> [25][D] */
        for (int64_t d = 0; d < w->shape[0]; d++)
            for (int64_t j = 0; j < 25; j++) dst[j * w->shape[0] + d] = src[d * w->stride[0] + j * w->stride[1]];
        return;
    }
    if (k->kind == KK_DWCONV) { /* [C,1,kh,kw] -> [kh][kw][C] */
        int64_t C = w->shape[0], KH = w->shape[2], KW = w->shape[3];
        for (int64_t c = 0; c < C; c++)
            for (int64_t kh = 0; kh < KH; kh++)
                for (int64_t kw = 0; kw < KW; kw++)
                    dst[(kh * KW + kw) * C + c] = src[c * w->stride[0] + kh * w->stride[2] + kw * w->stride[3]];
        return;
    }
    /* OIHW -> [Co][kh][kw][Ci] */
    int64_t Co = w->shape[0], Ci = w->shape[1], KH = w->shape[2], KW = w->shape[3];
    for (int64_t co = 0; co < Co; co++)
        for (int64_t ci = 0; ci < Ci; ci++)
            for (int64_t kh = 0; kh < KH; kh++)
                for (int64_t kw = 0; kw < KW; kw++)
                    dst[((co * KH + kh) * KW + kw) * Ci + ci] =
                        src[co * w->stride[0] + ci * w->stride[1] + kh * w->stride[2] + kw * w->stride[3]];
}

uint8_t *
mc_cuda_weights_blob(const KProgram *p, const WeightStore *ws, int64_t *len, McErr *err)
{
    CudaLayout lay;
    mc_cuda_layout(p, MC_CUDA_FP32, &lay); /* the blob does not depend on the precision */
    /* the graph layout, then the re-packed copies */
    McBlobLayout bl = {.bytes = lay.blob_bytes, .pack = pack_kernel, .ctx = &lay};
    uint8_t *blob = mc_weights_blob(p, ws, &bl, len, err);
    mc_cuda_layout_free(&lay);
    return blob;
}

static const char *
find_nvcc(const McCudaOptions *o)
{
    if (o->nvcc) return o->nvcc;
    const char *e = getenv("NVCC");
    if (e && *e) return e;
    if (access("/usr/local/cuda/bin/nvcc", X_OK) == 0) return "/usr/local/cuda/bin/nvcc";
    return "nvcc";
}

/* 1 when nvcc can build for sm_90a: CUDA 12.0 or newer ("release 12.0"
 * in --version; 1 too when it cannot say: the build then reports the
 * error) */
static int
nvcc_has_sm90a(const char *nvcc, const char *dir)
{
    static const char *const args[] = {"--version", NULL};
    char out[4096];
    McErr e;
    if (mc_artifact_run(nvcc, args, dir, 0, out, sizeof out, &e)) return 1;
    const char *r = strstr(out, "release ");
    return !r || atoi(r + 8) >= 12;
}

static const char *
base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* The executable, built in the private directory dir from NAME.cu (the
 * name the user's OUT.cu has, so nvcc sees the same file name wherever dir
 * is) and, with embedded weights, the blob (blob_len bytes).  out_name: a one-output
 * model's output node (the array's name in an .npz: the .cu of such a
 * model does not say it), else NULL. */
/* mc_io.c in dir: the model's users' metadata (mc_model_io, runtime/mc_labels.h). */
static int
write_io(const KProgram *p, const McCudaOptions *o, const char *dir, McErr *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/mc_io.c", dir);
    FILE *f = fopen(path, "w");
    if (!f) return mc_err(err, "cannot write %s", path);
    McArtifact a;
    memset(&a, 0, sizeof a);
    a.in_shape = p->bufs[p->input_buf].shape;
    a.noutputs = p->noutputs;
    for (int j = 0; j < p->noutputs && j < MC_MAX_OUTPUTS; j++) a.out_shapes[j] = p->bufs[p->output_bufs[j]].shape;
    a.io = o->io;
    fputs("/* mc_io.c -- generated by mambac: the model's users' metadata. */\n#include \"mc_labels.h\"\n\n", f);
    mc_artifact_write_io_c(f, &a, "mc_model_io", 0);
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    return bad ? mc_err(err, "cannot write %s", path) : 0;
}

static int
build_exe(const KProgram *p, const McCudaOptions *o, const char *dir, const char *cu_name, int embed,
          const uint8_t *blob, size_t blob_len, const char *out_name, McErr *err)
{
    const char *cc = getenv("CC");
    cc = cc && *cc ? cc : "cc";
    /* the embedded weights: weights.o defining mc_cuda_weights (64-byte aligned, read-only) */
    if (embed && mc_artifact_blob_object(dir, NULL, cc, "weights", "mc_cuda_weights", blob, blob_len, o->verbose, err))
        return -1;
    /* the host side that touches no GPU: the runtime's C, with the host C
     * compiler (runtime/exe/cuda_main.c, npy.c, out.c) */
    char rt[4096], rtinc[4200], rtexe[4200], src[5][4200], libs[3][4096];
    if (mc_artifact_runtime_dir(rt, sizeof rt, err)) return -1;
    if (write_io(p, o, dir, err)) return -1;
    snprintf(rtinc, sizeof rtinc, "-I%s", rt);
    snprintf(rtexe, sizeof rtexe, "-I%s/exe", rt);
    static const char *const files[5] = {"exe/cuda_main.c", "npy.c", "out.c", "labels.c", "image.c"};
    for (int i = 0; i < 5; i++) snprintf(src[i], sizeof src[i], "%s/%s", rt, files[i]);
    char name_def[300], member[256];
    mc_npz_member_name(out_name, member, sizeof member);
    snprintf(name_def, sizeof name_def, "-DMC_OUTPUT_NAME=\"%s\"", member);
    /* images: libjpeg, libpng and zlib linked statically, so the executable
     * runs on a GPU machine without them */
    int images = mc_artifact_image_libs(cc, dir, 0, libs);
    const char *const cc_args[] = {"-O2", "-std=gnu11", "-fno-ident", rtinc, rtexe, "-c", src[0], src[1], src[2],
                                   src[3], src[4], "mc_io.c", images ? "-DMC_HAVE_IMAGE" : "-UMC_HAVE_IMAGE",
                                   out_name ? name_def : NULL, NULL};
    if (mc_artifact_run(cc, cc_args, dir, o->verbose, NULL, 0, err)) return -1;
    int sm = o->sm ? o->sm : 90;
    const char *nvcc = find_nvcc(o);
    /* sm_90 builds for sm_90a, Hopper's own features (wgmma): the binary
     * runs on sm_90 devices only, as an sm_90 one does.  An nvcc older than
     * 12.0 has no sm_90a: plain sm_90 (mma.sync) */
    const char *feat = sm == 90 && nvcc_has_sm90a(nvcc, dir) ? "a" : "";
    if (sm == 90 && !*feat)
        fprintf(stderr, "mambac: nvcc: %s is older than CUDA 12.0 (no sm_90a): building for sm_90, "
                        "without wgmma\n", nvcc);
    /* the slow step (~20-60 s for a whole model): say so */
    fprintf(stderr, "mambac: nvcc: building %s from %s.cu (sm_%d%s)...\n", o->out, o->out, sm, feat);
    char gencode[64];
    snprintf(gencode, sizeof gencode, "-gencode=arch=compute_%d%s,code=sm_%d%s", sm, feat, sm, feat);
    const char *args[24] = {"-O3", "-std=c++17", gencode, "-cudart", "static", "-Xcompiler", "-fno-ident",
                            "-o", "out.bin", cu_name, "cuda_main.o", "npy.o", "out.o", "labels.o", "image.o", "mc_io.o"};
    int n = 16;
    if (embed) {
        args[n++] = "-DMC_EMBEDDED_WEIGHTS=1";
        args[n++] = "weights.o";
    }
    for (int i = 0; images && i < 3; i++) args[n++] = libs[i];
    args[n] = NULL;
    return mc_artifact_run(nvcc, args, dir, o->verbose, NULL, 0, err);
}

int
mc_cuda_compile(const KProgram *p, const WeightStore *ws, const McCudaOptions *o, McErr *err)
{
    if (!o->out) return mc_err(err, "cuda: no output path");
    int exe = o->emit == MC_CUDA_EMIT_EXE, embed = exe && !o->external_weights;
    /* every output opened (a temporary beside it) before the work, and
     * renamed into place only when all are complete (runtime/mc_out.h) */
    char paths[3][4096];
    int modes[3], nout = 0;
    snprintf(paths[nout], sizeof paths[0], "%s.cu", o->out);
    modes[nout++] = 0666;
    if (!embed) {
        snprintf(paths[nout], sizeof paths[0], "%s.weights", o->out);
        modes[nout++] = 0666;
    }
    if (exe) {
        snprintf(paths[nout], sizeof paths[0], "%s", o->out);
        modes[nout++] = 0777;
    }
    McOut out[3];
    for (int i = 0; i < nout; i++)
        if (mc_out_open(&out[i], paths[i], modes[i], err->msg, sizeof err->msg)) {
            while (i--) mc_out_discard(&out[i]);
            return -1;
        }
    McBuf b = {0};
    int64_t blen = 0, wl = 0;
    uint8_t *blob = NULL;
    char dir[4096] = "";
    int slot = -1, rc = -1, committed = 0;
    if (mc_cuda_print(p, o, &b, &blen, err)) goto done;
    if (!(blob = mc_cuda_weights_blob(p, ws, &wl, err))) goto done;
    if (fwrite(b.s, 1, b.len, out[0].f) != b.len) {} /* a failed write: the commit reports it */
    if (!embed && wl && fwrite(blob, 1, (size_t)wl, out[1].f) != (size_t)wl) {}
    if (exe) {
        char path[4200];
        const char *cu_name = base_name(paths[0]);
        if (mc_artifact_tempdir(dir, sizeof dir, &slot, err)) goto done;
        snprintf(path, sizeof path, "%s/%s", dir, cu_name);
        if (mc_out_write_file(path, b.s, b.len, 0666, err->msg, sizeof err->msg)) goto done;
        const char *one = p->noutputs == 1 ? p->bufs[p->output_bufs[0]].name : NULL;
        if (build_exe(p, o, dir, cu_name, embed, blob, (size_t)wl, one, err)) goto done;
    }
    for (; committed < nout; committed++) {
        char bin[4200];
        snprintf(bin, sizeof bin, "%s/out.bin", dir);
        int r = exe && committed == nout - 1 ? mc_artifact_copy_out(bin, &out[committed], err)
                                             : mc_out_commit(&out[committed], err->msg, sizeof err->msg);
        if (r) {
            committed++;
            goto done;
        }
    }
    rc = 0;
done:
    for (int i = committed; i < nout; i++) mc_out_discard(&out[i]);
    if (dir[0]) mc_artifact_tempdir_remove(dir, slot);
    mc_buf_free(&b);
    free(blob);
    return rc;
}
