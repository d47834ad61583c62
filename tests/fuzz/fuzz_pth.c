/* tests/fuzz/fuzz_pth.c -- libFuzzer harness for the .pth reader.
 *
 * The first byte picks the mode: even -> the rest is a whole .pth file
 * (zip + pickle + storages); odd -> the rest is a pickle, wrapped here into
 * a valid archive (correct CRCs, storages archive/data/0..7 of 512..0 bytes) so
 * that mutations reach the pickle machine and the tensor rebuild instead of
 * stopping at the CRC check.  Any input must return 0 or -1 with a message,
 * never crash, hang or leak.  Corpus: tests/fuzz/corpus/pth/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "frontend/weights.h"
#include "frontend/zip.h"
#include "fuzz_zip.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    WeightStore ws;
    McErr err;
    err.msg[0] = 0;
    mc_weights_init(&ws);
    int rc;
    if (size == 0 || !(data[0] & 1)) {
        rc = mc_pth_load_mem(data + (size > 0), size - (size > 0), "fuzz.pth", &ws, &err);
    } else {
        static uint8_t st[512];
        for (int i = 0; i < 512; i++) st[i] = (uint8_t)(i * 37 + 11);
        const char *names[9] = {"archive/data.pkl", "archive/data/0", "archive/data/1", "archive/data/2",
                                "archive/data/3", "archive/data/4", "archive/data/5", "archive/data/6",
                                "archive/data/7"};
        const uint8_t *d[9] = {data + 1, st, st, st, st, st, st, st, st};
        size_t l[9] = {size - 1, 512, 256, 128, 64, 32, 16, 8, 0}, zl;
        uint8_t *z = make_zip(names, d, l, 9, &zl);
        rc = mc_pth_load_mem(z, zl, "fuzz.pth", &ws, &err);
        free(z);
    }
    if (rc != 0 && (rc != -1 || err.msg[0] == 0))
        abort();
    mc_weights_free(&ws);
    return 0;
}
