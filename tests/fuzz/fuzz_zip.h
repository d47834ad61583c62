/* tests/fuzz/fuzz_zip.h -- a stored (uncompressed) zip archive in memory,
 * with correct CRC-32s, for the tests that build .pth files: the pth
 * harness (fuzz_pth.c) and the special-files test (special_files.c).
 * Header-only (static functions); needs frontend/zip.h for mc_crc32.
 */
#ifndef MC_FUZZ_ZIP_H
#define MC_FUZZ_ZIP_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

#endif
