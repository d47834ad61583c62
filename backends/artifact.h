/* backends/artifact.h -- turn a model object file into what `mambac compile`
 * delivers: an executable, a shared library or a relocatable object, plus a
 * C header and the weights file (docs/artifacts.md).
 *
 * Takes the object bytes a code generator produced (exporting
 * `int <name>_run(const void *weights, const float *input, float *output,
 * void *scratch)` -- with n > 1 outputs one `float *` per output, in order
 * -- and the i64 globals `<name>_weights_size`,
 * `<name>_scratch_size`, calling mc_rt_* from runtime/mc_rt.h), the packed
 * weights blob and the model's metadata.  Runs the target's C compiler as
 * the linker.  Outputs depend only on the inputs (no timestamps, no temp
 * names), so compiling twice gives identical bytes.
 */
#ifndef MC_ARTIFACT_H
#define MC_ARTIFACT_H
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include "../ir/diag.h"
#include "../ir/graph.h"
#include "../ir/kernel.h"

typedef enum McArtifactKind {
    MC_ART_EXE,     /* OUT: self-contained executable, weights inside */
    MC_ART_SHARED,  /* OUT.so + OUT.h + OUT.weights */
    MC_ART_OBJ,     /* OUT.o  + OUT.h + OUT.weights */
} McArtifactKind;

/* One compiled variant of the model (one --cpu entry): its object defines
 * <prefix>_run over the shared weights blob at weights_offset.  The artifact
 * adds the start-up check and dispatcher (runtime/mc_cpu.h) that define
 * <name>_run, <name>_weights_size, <name>_scratch_size and
 * <name>_check_cpu() and pick the best variant the running CPU supports. */
typedef struct McArtifactVariant {
    const char *name;          /* "x86-64-v3", "znver5", "generic-rv64+v" */
    const char *features;      /* comma-separated features it needs (mc_cpu.h) */
    const char *prefix;        /* its symbol prefix */
    int nobjs;                 /* its object files (the kernels compiled in parts) */
    const uint8_t *const *objs; /* [nobjs] their bytes ... */
    const size_t *obj_lens;    /* ... and lengths */
    int64_t weights_offset;    /* its packed weights inside `weights` */
} McArtifactVariant;

typedef struct McArtifact {
    McArtifactKind emit;
    const char *out;           /* -o; for shared/obj a trailing .so/.o is dropped to get OUT */
    const char *triple;        /* target triple; NULL or "" = the host */
    const char *cpu;           /* recorded in OUT.h only (NULL = none) */
    const char *features;      /* recorded in OUT.h only */

    const char *name;          /* symbol prefix, a C identifier (mc_artifact_symbol) */
    Shape in_shape;            /* the caller's input, e.g. [B,3,H,W] */
    int noutputs;              /* 1..MC_MAX_OUTPUTS: the entry point's output pointers */
    Shape out_shapes[MC_MAX_OUTPUTS];       /* output j's, e.g. [B,classes] */
    const char *out_names[MC_MAX_OUTPUTS];  /* the graph outputs' names (OUT.h, the executable's .npz) */
    int64_t scratch_size;      /* must equal the object's <name>_scratch_size */

    const char *arch;          /* "x86_64", "aarch64", "riscv64": what variants check */
    int nvariants;             /* > 0: the model is these objects + a dispatcher ... */
    const McArtifactVariant *variants;
    const void *obj;           /* ... else one object (defining <name>_run) as bytes ... */
    size_t obj_len;
    const char *obj_path;      /* ... or its path (used when obj is NULL) */
    const void *weights;       /* packed weights blob, as the object reads it */
    size_t weights_len;        /* must equal the object's <name>_weights_size */

    const char *precision;     /* what mambac_info says the products run in: "bf16", NULL = "fp32" */
    int nkernels;              /* for `--profile` executables; 0 = none */
    const char *const *kernel_names;  /* [nkernels] */
    const double *kernel_flops;       /* [nkernels] useful FLOPs per run */

    int verbose;               /* print each command to stderr */
    /* what --image, --top, --mask and the Python module need (kind, the
     * evaluation transform, class names and colours); NULL: what the
     * shapes tell (runtime/mc_labels.h, frontend/io.h) */
    const struct McModelIO *io;
} McArtifact;

/* Writes the artifact.  On error returns -1 with a message (what failed, and
 * for a failed compiler run its command and the end of its output). */
int mc_artifact_write(const McArtifact *a, McErr *err);

/* Fills a's name (= sym, which must outlive a), in/out shapes and output
 * names (the program's input and output buffers), scratch_size (p->scratch_bytes) and the kernel
 * names and FLOPs (arrays malloc'd here, indexed like p->k: free them with
 * mc_artifact_release).  Leaves every other field alone. */
int mc_artifact_from_kprogram(McArtifact *a, const KProgram *p, const char *sym, McErr *err);
void mc_artifact_release(McArtifact *a);

/* The C identifier used as symbol prefix for a model name: characters
 * outside [A-Za-z0-9_] become '_', a leading digit gets a '_' before it,
 * "" becomes "model".  Returns buf. */
char *mc_artifact_symbol(const char *model_name, char *buf, size_t n);

/* The C compiler that links for `triple` (NULL = host): $MAMBAC_CC if set;
 * for the host $CC, else "cc"; for aarch64-* "aarch64-linux-gnu-gcc", for
 * riscv64-* "riscv64-linux-gnu-gcc", for x86_64-* "x86_64-linux-gnu-gcc".
 * -1 with a message for an unknown architecture. */
int mc_artifact_cc(const char *triple, char *buf, size_t n, McErr *err);

/* The directory holding runtime/mc_rt.h, rt.c, npy.c and exe/exe_main.c:
 * $MAMBAC_RUNTIME_DIR, else MC_SOURCE_DIR "/runtime" (a compile-time define),
 * else ../runtime next to the running executable.  -1 if none has rt.c. */
int mc_artifact_runtime_dir(char *buf, size_t n, McErr *err);

/* The files mc_artifact_write(a) replaces for emit and out: OUT for an
 * executable; OUT.so or OUT.o, OUT.weights and OUT.h otherwise (in that
 * order).  Returns their number (1 or 3).  Each is written to a temporary
 * beside it and renamed into place only when all are complete. */
int mc_artifact_outputs(McArtifactKind emit, const char *out, char paths[3][4096]);

/* The multi-variant part (artifact_cpu.c): mc_dispatch.c, which defines
 * <name>_run, _check_cpu, _cpu_variant, _cpu_dispatch, _weights_size and
 * _scratch_size over a->variants (runtime/mc_cpu.h), written into dir; the
 * file name of variant i's object j there; s as a C string literal. */
int mc_artifact_dispatch_source(const McArtifact *a, FILE *f);
int mc_artifact_write_dispatch(const McArtifact *a, const char *dir, McErr *err);
void mc_artifact_variant_obj(int i, int j, char *buf, size_t n);
void mc_artifact_c_string(FILE *f, const char *s);
/* s's dimensions, ", "-separated, between brackets[0] and brackets[1]. */
void mc_artifact_shape_list(FILE *f, const Shape *s, const char *brackets);

/* Shared with the CUDA backend's build (cuda_host.c):
 * a private temporary directory $TMPDIR/mambac-XXXXXX, registered for
 * removal on SIGINT/SIGTERM/SIGHUP (runtime/mc_out.h); its removal
 * (kept, with a note, when MAMBAC_KEEP_TEMPS is set);
 * running a tool -- `prog` (words: "ccache gcc"), then args -- in dir, in
 * its own process group with TMPDIR=dir, no shell; its stdout into out
 * (when outn > 0); on failure err holds the command and its output's end;
 * the bytes of src committed into the open output o (mc_out_commit). */
int mc_artifact_tempdir(char *dir, size_t n, int *slot, McErr *err);
void mc_artifact_tempdir_remove(const char *dir, int slot);
int mc_artifact_run(const char *prog, const char *const *args, const char *dir, int verbose, char *out, size_t outn,
                    McErr *err);
struct McOut;
int mc_artifact_copy_out(const char *src, struct McOut *o, McErr *err);
/* The n bytes of data as the object file dir/BASE.o for triple (NULL: the
 * host): read-only data, 64-byte aligned, in section .rodata.SYMBOL, one
 * zero byte after them, under the global symbol SYMBOL (of size n + 1).
 * Written directly for the ELF architectures backends/elf_obj.h knows;
 * for others BASE.S (.incbin "BASE.bin") assembled with cc. */
int mc_artifact_blob_object(const char *dir, const char *triple, const char *cc, const char *base, const char *symbol,
                            const void *data, size_t n, int verbose, McErr *err);

/* Users' metadata (artifact_io.c): a->io (or what the shapes tell) as C
 * defining `[static] const McModelIO var` (runtime/mc_labels.h), and as
 * the JSON object mambac_info() of a shared library returns (images:
 * whether it reads images, docs/python.md). */
void mc_artifact_write_io_c(FILE *f, const McArtifact *a, const char *var, int is_static);
void mc_artifact_info_json(FILE *f, const McArtifact *a, int images);

/* The image libraries (libjpeg, libpng16, zlib) the C compiler cc links
 * for its target: 1 with their paths in libs (static archives, or with
 * shared the shared libraries), 0 when one is missing or MAMBAC_NO_IMAGE
 * is set (then artifacts read no images, and say so when asked to). */
int mc_artifact_image_libs(const char *cc, const char *dir, int shared, char libs[3][4096]);

/* The runtime an artifact links (docs/artifacts.md): its C sources
 * (names under the runtime directory) compiled with the flags of the
 * artifact's kind -- pic (shared library, object) or not (executable,
 * -no-pie), images (-DMC_HAVE_IMAGE) or not -- into <base name>.o each.
 * The sources of a kind, in link order (at most MC_ART_RT_MAX); an
 * object's file name; those flags as text; the compile, into dir. */
#define MC_ART_RT_MAX 8
int mc_artifact_runtime_sources(int pic, const char *const **srcs);
void mc_artifact_runtime_object(const char *src, char *buf, size_t n);
void mc_artifact_runtime_flags(const char *rt, int pic, int images, char *buf, size_t n);
int mc_artifact_compile_runtime(const char *rt, const char *cc, int pic, int images, const char *const *srcs, int n,
                                const char *dir, int verbose, McErr *err);

/* The prebuilt runtime (artifact_rt.c): the objects of every kind,
 * compiled once when mambac is built (mambac-prebuild DIR), each kind's
 * in DIR/exe, DIR/exe-image, DIR/pic, DIR/pic-image with a MANIFEST that
 * names the compiler (its path, size and time), the flags and every
 * runtime source and header (length and FNV-1a), so that objects that no
 * longer match are not used.
 * mc_artifact_prebuild: writes DIR (kinds whose MANIFEST matches are left
 * as they are; image kinds only where cc has the image libraries).
 * mc_artifact_prebuilt_find: 1 and the directory of that kind's objects
 * in buf when a prebuilt one matches cc and the sources in rt, looking in
 * $MAMBAC_PREBUILT_DIR if set (only there; empty: nowhere), else in
 * mambac-runtime/ beside the running program, ../lib/mambac-runtime/
 * from it and MC_PREBUILT_DIR (where the build put it); else 0 and why in
 * why. */
int mc_artifact_prebuild(const char *dir, const char *cc, int verbose, McErr *err);
int mc_artifact_prebuilt_find(const char *rt, const char *cc, int pic, int images, char *buf, size_t n, char *why,
                              size_t whyn);

/* The header text `mambac compile` writes as OUT.h (deterministic). */
int mc_artifact_header(const McArtifact *a, FILE *f);

/* Is prog an executable on $PATH (or a path to one)?  1 with its path in
 * buf (when buf), else 0. */
int mc_artifact_which(const char *prog, char *buf, size_t n);

/* 64-bit FNV-1a of bytes (OUT.h records the weights' hash). */
uint64_t mc_artifact_fnv1a64(const void *p, size_t n);

#endif
