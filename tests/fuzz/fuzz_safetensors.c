/* tests/fuzz/fuzz_safetensors.c -- libFuzzer harness for the .safetensors
 * reader (header length, JSON header, offsets): any input must return 0 or
 * -1 with a message, never crash, hang or leak. */
#include <stdint.h>
#include <stdlib.h>
#include "frontend/weights.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    WeightStore ws;
    McErr err;
    err.msg[0] = 0;
    mc_weights_init(&ws);
    int rc = mc_safetensors_load_mem(data, size, "fuzz.safetensors", &ws, &err);
    if (rc != 0 && (rc != -1 || err.msg[0] == 0))
        abort();
    mc_weights_free(&ws);
    return 0;
}
