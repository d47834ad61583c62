/* tests/fuzz/fuzz_npy.c -- libFuzzer harness for the runtime's .npy
 * reader: any input must return 0 or -1 with a message, never crash. */
#include <stdint.h>
#include <stdlib.h>
#include "runtime/mc_npy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    McNpy a;
    char em[256];
    em[0] = 0;
    int rc = mc_npy_read_mem(data, size, "fuzz.npy", &a, em, sizeof em);
    if (rc == 0)
        mc_npy_free(&a);
    else if (rc != -1 || em[0] == 0)
        abort();
    return 0;
}
