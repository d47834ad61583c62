/* backends/llvm/llvm.h -- native code generation through the LLVM C API.
 *
 * Takes a KProgram (ir/kernel.h, fusion already decided) and a target
 * (triple, CPU, features; default the host); produces one LLVM module with an
 * outlined function per kernel and the entry point
 *
 *     int <name>_run(const void *weights, const float *input, float *output,
 *                    void *scratch);
 *
 * (a program with n > 1 outputs takes one pointer per output, in the
 * graph's order: weights, input, output0, ..., output<n-1>, scratch) plus
 * i64 constants <name>_weights_size, <name>_scratch_size,
 * <name>_input_size, <name>_output_size (bytes; output 0's, and
 * <name>_output1_size, ... with several).  The module is verified and
 * optimized (new pass manager, default<O3>) and can be written as an object
 * file, assembly or IR text, or run in memory through ORC LLJIT.
 * `weights` is the blob written by mc_llvm_pack_weights() for the same
 * program and target: each weight once, in the layout its kernel reads
 * (graph layout for weights read through views, then pre-packed GEMM/conv
 * panels and depthwise/stencil taps, which have no graph-layout copy).  The generated code opens
 * one team per inference (mc_rt_team_run, runtime/mc_rt.h) and calls
 * mc_rt_team_for() once per kernel on every thread, between
 * mc_rt_kernel_begin(i) and mc_rt_kernel_end(i) when mc_rt_profile_active
 * is set.
 *
 * No LLVM types appear here: the objects are opaque, so callers compile
 * without LLVM's headers.  docs/codegen.md describes the generated code.
 */
#ifndef MC_LLVM_H
#define MC_LLVM_H
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include "../../ir/kernel.h"
#include "../../passes/pipeline.h"
#include "../../ir/weights.h"
#include "../artifact.h"

typedef struct McLlvmTarget McLlvmTarget;
typedef struct McLlvmModule McLlvmModule;

/* NULL triple/cpu/features mean the host's (for a non-host triple: cpu
 * "generic" and a default feature set: aarch64 +neon, riscv64 rv64gcv).
 * Returns NULL with err set on an unknown triple or CPU. */
McLlvmTarget *mc_llvm_target_create(const char *triple, const char *cpu, const char *features,
                                    McErr *err);
void mc_llvm_target_free(McLlvmTarget *t);
/* "triple=x86_64-pc-linux-gnu cpu=skylake-avx512 features=+avx512f,... vector=16xf32 vregs=32" */
const char *mc_llvm_target_describe(const McLlvmTarget *t);
int mc_llvm_target_lanes(const McLlvmTarget *t);  /* f32 lanes per vector */
/* The features the generated code may use that an artifact checks at
 * start-up (runtime/mc_cpu.h): the CPU's own (a table of every CPU LLVM
 * knows) with --features applied, "avx2,fma,..." ("" for none). */
const char *mc_llvm_target_required(const McLlvmTarget *t);
const char *mc_llvm_target_cpu(const McLlvmTarget *t);
int mc_llvm_target_is_host(const McLlvmTarget *t);

/* Every registered LLVM target ("x86-64  64-bit X86: EM_X86_64"). */
void mc_llvm_list_targets(FILE *f);
/* The triple's target and LLVM's own table of its CPUs and features (the C
 * API has no enumeration: a subtarget for the CPU name "help" prints it, in
 * a child process).  Returns 0, or -1 on an unknown triple. */
int mc_llvm_list_cpus(const char *triple, FILE *f, McErr *err);

/* Builds, verifies and optimizes the module for p.  NULL + err on failure. */
McLlvmModule *mc_llvm_codegen(const KProgram *p, const McLlvmTarget *t, McErr *err);
/* Same, without the O3 pipeline (for looking at the generated IR). */
McLlvmModule *mc_llvm_codegen_opt(const KProgram *p, const McLlvmTarget *t, int optimize,
                                  McErr *err);
/* Whether t's code can read weights packed for target `pack` (its panel
 * widths divide pack's): one variant of a multi-CPU artifact. */
int mc_llvm_packing_fits(const KProgram *p, const McLlvmTarget *t, const McLlvmTarget *pack);
void mc_llvm_module_free(McLlvmModule *m);

/* p compiled for t into object files (llvm_emit.c): its kernels cut into
 * parts (ranges of about equal estimated compile time), each generated,
 * optimized and emitted in an LLVM context of its own on one of up to
 * one thread per core (at most the parts); part 0 has the entry point and
 * the size globals, and calls the others' kernels (hidden <prefix>_k<i>).
 * prefix: the symbols' prefix (NULL: the program's name), as <prefix>_run;
 * pack: the target the weights were packed for, mc_llvm_pack_weights(p,
 * ws, pack) (NULL: t; a variant of a multi-CPU artifact reads its widest
 * variant's panels).
 * The parts, and so the bytes, depend on p and t only, not on the number
 * of cores.  `verbose`: a line with the parts, threads and time.  0, or -1
 * with err (then out holds nothing). */
typedef struct McLlvmObjects {
    int n;
    uint8_t **obj;    /* [n] malloc'd object files ... */
    size_t *len;      /* ... of len[i] bytes */
} McLlvmObjects;
int mc_llvm_compile(const KProgram *p, const McLlvmTarget *t, const char *prefix, const McLlvmTarget *pack,
                    FILE *verbose, McLlvmObjects *out, McErr *err);
void mc_llvm_objects_free(McLlvmObjects *o);

typedef enum McLlvmEmit { MC_EMIT_OBJ, MC_EMIT_ASM, MC_EMIT_IR } McLlvmEmit;
/* Writes the module to `path` / to a malloc'd buffer (*out, *len). */
int mc_llvm_emit_file(McLlvmModule *m, McLlvmEmit kind, const char *path, McErr *err);
int mc_llvm_emit_mem(McLlvmModule *m, McLlvmEmit kind, uint8_t **out, size_t *len, McErr *err);

/* The LLVM target's kernel passes (llvm_passes.c): schedule-images (the
 * per-image schedule of batched programs, docs/kernel-ir.md).  The code
 * generator follows the program it is given: segments, plan, schedules. */
extern const McTarget mc_llvm_target_row;
/* The kernels the code generator can run: 1, or 0 with the reason. */
int mc_llvm_supports(const KProgram *p, const Kernel *k, char *why, size_t n);

/* The emit of the llvm backend row (llvm_artifact.c): --emit exe | shared |
 * obj | llvm-ir | asm (mc_llvm_emit_kind: 0..4, -1 unknown). */
struct EmitOpts;
int mc_llvm_emit_kind(const char *s);
int mc_llvm_emit_artifact(const KProgram *p, const WeightStore *ws, const struct EmitOpts *o, McErr *err);

/* The C identifier used as <name> in the symbols above (from p->name). */
void mc_llvm_symbol_prefix(const KProgram *p, char *buf, size_t n);

/* The weights blob the generated code reads (malloc'd, *size bytes,
 * 64-byte aligned sections).  Depends on the target (panel widths follow
 * the vector width), so use the same target as mc_llvm_codegen. */
int mc_llvm_pack_weights(const KProgram *p, const WeightStore *ws, const McLlvmTarget *t,
                         uint8_t **blob, int64_t *size, McErr *err);
int64_t mc_llvm_weights_size(const KProgram *p, const McLlvmTarget *t);

/* One model compiled for several CPUs (llvm_variants.c): `cpus` is a
 * comma-separated --cpu list whose entries are CPU[+feature...] or
 * +feature... (the default CPU with those features), or "portable" (a
 * preset per architecture), or NULL / one name for a single variant.  Fills
 * one McArtifactVariant per entry (object with symbols <name>__v<i>_*, the
 * features it needs) and the shared weights blob, where byte-identical
 * packings are stored once.  `verbose`, if not NULL, gets a line per
 * variant. */
typedef struct McLlvmVariants {
    int n;
    McArtifactVariant *v;      /* [n]: every pointer in it owned here */
    char **descr;              /* [n]: mc_llvm_target_describe of each */
    uint8_t *blob;             /* the shared weights */
    int64_t blob_len;
    char arch[32];             /* "x86_64", "aarch64", "riscv64" */
} McLlvmVariants;
int mc_llvm_variants_build(const KProgram *p, const WeightStore *ws, const char *triple, const char *cpus,
                           const char *features, const char *name, FILE *verbose, McLlvmVariants *out,
                           McErr *err);
void mc_llvm_variants_free(McLlvmVariants *v);
/* --precision bf16 for the CPUs of `cpus` (as above; NULL: the default
 * CPU): 0 when every one has bf16 dot products (x86-64: avx512bf16), 1
 * with err naming the first that lacks them, -1 with err on a bad triple,
 * CPU or list. */
int mc_llvm_bf16_check(const char *triple, const char *cpus, const char *features, McErr *err);

/* In-memory execution (ORC LLJIT).  The target must be the host. */
typedef struct McLlvmJit McLlvmJit;
McLlvmJit *mc_llvm_jit_create(McLlvmModule *m, McErr *err);  /* consumes nothing */
/* Calls the entry point with outputs[0..n) (n: the program's outputs). */
int mc_llvm_jit_run(McLlvmJit *j, const void *weights, const float *input, float *const *outputs,
                    void *scratch, McErr *err);
void mc_llvm_jit_free(McLlvmJit *j);


/* Whole pipeline on host buffers: lower (mc_lower + mc_memplan) a graph that
 * went through the graph passes, generate for the host, JIT, run. */
int mc_llvm_run_program(const KProgram *p, const WeightStore *ws, const float *input,
                        float *const *outputs, McErr *err);

#endif
