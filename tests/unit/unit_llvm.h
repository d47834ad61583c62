/* tests/unit/unit_llvm.h -- one inference of a kernel program's LLVM module
 * in the unit tests (test_llvm_kernels, test_llvm_bf16, test_amx).
 *
 * unit_llvm_run: the weights ws packed for target tg, module m (built by
 * the caller for tg from p; not consumed) JIT-compiled, run once on `in`
 * into outs[] with a 64-byte aligned scratch arena of p's size.  0, or -1
 * with err.
 */
#ifndef MC_UNIT_LLVM_H
#define MC_UNIT_LLVM_H
#include <stdlib.h>
#include "backends/llvm/llvm.h"

static int
unit_llvm_run(McLlvmModule *m, const KProgram *p, const WeightStore *ws, const McLlvmTarget *tg, const float *in,
              float *const *outs, McErr *err)
{
    uint8_t *blob = NULL;
    int64_t bs = 0;
    void *scratch = NULL;
    McLlvmJit *j = NULL;
    int rc = -1;
    if (m && !mc_llvm_pack_weights(p, ws, tg, &blob, &bs, err) && (j = mc_llvm_jit_create(m, err)) &&
        !posix_memalign(&scratch, 64, (size_t)(p->scratch_bytes > 0 ? p->scratch_bytes : 64)))
        rc = mc_llvm_jit_run(j, blob, in, outs, scratch, err);
    free(scratch);
    free(blob);
    mc_llvm_jit_free(j);
    return rc;
}
#endif
