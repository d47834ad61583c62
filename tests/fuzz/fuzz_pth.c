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

static uint8_t *
wr16(uint8_t *p, unsigned v) { p[0] = v & 255; p[1] = (v >> 8) & 255; return p + 2; }
static uint8_t *
wr32(uint8_t *p, uint32_t v) { return wr16(wr16(p, v & 0xffff), v >> 16); }

/* Stored zip of name[i]/data[i]; returns malloc'd buffer. */
static uint8_t *
make_zip(const char **name, const uint8_t **data, const size_t *len, int n, size_t *out)
{
    size_t cap = 22;
    for (int i = 0; i < n; i++) cap += 30 + 46 + 2 * strlen(name[i]) + len[i];
    uint8_t *z = malloc(cap), *p = z, *cd = malloc(cap), *q = cd;
    for (int i = 0; i < n; i++) {
        uint32_t off = (uint32_t)(p - z), crc = mc_crc32(0, data[i], len[i]);
        size_t nl = strlen(name[i]);
        p = wr32(p, 0x04034b50); p = wr16(p, 20); p = wr16(p, 0); p = wr16(p, 0); p = wr32(p, 0);
        p = wr32(p, crc); p = wr32(p, (uint32_t)len[i]); p = wr32(p, (uint32_t)len[i]);
        p = wr16(p, (unsigned)nl); p = wr16(p, 0);
        memcpy(p, name[i], nl); p += nl;
        if (len[i]) memcpy(p, data[i], len[i]);
        p += len[i];
        q = wr32(q, 0x02014b50); q = wr16(q, 20); q = wr16(q, 20); q = wr16(q, 0); q = wr16(q, 0);
        q = wr32(q, 0); q = wr32(q, crc); q = wr32(q, (uint32_t)len[i]); q = wr32(q, (uint32_t)len[i]);
        q = wr16(q, (unsigned)nl); q = wr16(q, 0); q = wr16(q, 0); q = wr16(q, 0); q = wr16(q, 0);
        q = wr32(q, 0); q = wr32(q, off);
        memcpy(q, name[i], nl); q += nl;
    }
    uint32_t cdoff = (uint32_t)(p - z), cdlen = (uint32_t)(q - cd);
    memcpy(p, cd, cdlen); p += cdlen;
    p = wr32(p, 0x06054b50); p = wr16(p, 0); p = wr16(p, 0); p = wr16(p, (unsigned)n); p = wr16(p, (unsigned)n);
    p = wr32(p, cdlen); p = wr32(p, cdoff); p = wr16(p, 0);
    free(cd);
    *out = (size_t)(p - z);
    return z;
}

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
