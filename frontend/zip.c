/* frontend/zip.c -- ZIP central directory reader for torch.save archives.
 *
 * Takes a whole archive in memory; produces a ZipEntry table (names
 * malloc'd, data by offset into the buffer).  Understands zip64 end records
 * and zip64 extra fields; reads only stored entries and checks each entry's
 * CRC-32 the first time its data are asked for.  Every offset and size is
 * checked against the buffer; nothing is trusted.
 */
#include "zip.h"
#include <errno.h>
#include "mc_file.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint16_t
rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* mc_crc32: the runtime's (runtime/npy.c, also the .npz writer's) */

/* Finds the end-of-central-directory record; returns its offset or -1. */
static int64_t
find_eocd(const uint8_t *buf, size_t len)
{
    if (len < 22)
        return -1;
    size_t lo = len > 22 + 65535 ? len - 22 - 65535 : 0;
    for (size_t i = len - 22 + 1; i-- > lo;) {
        if (rd32(buf + i) == 0x06054b50u && i + 22 + rd16(buf + i + 20) <= len)
            return (int64_t)i;
    }
    return -1;
}

/* Two entries of one name would be read differently by different readers
 * (torch.load takes the last, a search the first): refused. */
static int
check_unique(ZipArchive *z, McErr *err)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)z->n)
        cap *= 2;
    int *t = malloc(cap * sizeof *t), rc = 0;
    if (!t) {
        mc_zip_close(z);
        return mc_err(err, "%s: out of memory", z->name);
    }
    for (size_t i = 0; i < cap; i++)
        t[i] = -1;
    for (int i = 0; i < z->n && !rc; i++) {
        const char *nm = z->e[i].name;
        size_t h = (size_t)mc_hash_bytes(nm, strlen(nm)) & (cap - 1);
        for (; t[h] >= 0; h = (h + 1) & (cap - 1))
            if (strcmp(z->e[t[h]].name, nm) == 0) {
                char esc[256];
                rc = mc_err(err, "%s: zip entry '%s' appears twice in the central directory (entries %d "
                            "and %d); readers disagree on which copy counts, so the archive is refused",
                            z->name, mc_str_escape(esc, sizeof esc, nm, strlen(nm)), t[h], i);
                break;
            }
        t[h] = i;
    }
    free(t);
    if (rc)
        mc_zip_close(z);
    return rc;
}

void
mc_zip_close(ZipArchive *z)
{
    for (int i = 0; i < z->n; i++)
        free(z->e[i].name);
    free(z->e);
    z->e = NULL;
    z->n = 0;
}

int
mc_zip_open(ZipArchive *z, const uint8_t *buf, size_t len, const char *name, McErr *err)
{
    memset(z, 0, sizeof *z);
    z->buf = buf;
    z->len = len;
    z->name = name;
    int64_t eo = find_eocd(buf, len);
    if (eo < 0)
        return mc_err(err, "%s: not a zip archive (no end-of-central-directory record; truncated?)", name);
    const uint8_t *p = buf + eo;
    uint64_t nent = rd16(p + 10), cdsize = rd32(p + 12), cdoff = rd32(p + 16);
    if (rd16(p + 4) != 0 || rd16(p + 6) != 0)
        return mc_err(err, "%s: multi-disk zip archives are not supported", name);
    if (nent == 0xFFFF || cdsize == 0xFFFFFFFFu || cdoff == 0xFFFFFFFFu) {
        /* zip64: locator right before the EOCD */
        if (eo < 20 || rd32(buf + eo - 20) != 0x07064b50u)
            return mc_err(err, "%s: zip64 end record locator missing", name);
        uint64_t o64 = rd64(buf + eo - 20 + 8);
        if (o64 > (uint64_t)eo - 20 || (uint64_t)eo - 20 - o64 < 56 || rd32(buf + o64) != 0x06064b50u)
            return mc_err(err, "%s: bad zip64 end-of-central-directory record", name);
        const uint8_t *q = buf + o64;
        nent = rd64(q + 32);
        cdsize = rd64(q + 40);
        cdoff = rd64(q + 48);
    }
    if (cdoff > len || cdsize > len - cdoff)
        return mc_err(err, "%s: central directory lies outside the file (truncated?)", name);
    if (nent > cdsize / 46)
        return mc_err(err, "%s: central directory too small for %llu entries", name,
                      (unsigned long long)nent);
    z->e = calloc(nent ? nent : 1, sizeof *z->e);
    if (!z->e)
        return mc_err(err, "%s: out of memory", name);
    const uint8_t *c = buf + cdoff, *end = buf + cdoff + cdsize;
    for (uint64_t i = 0; i < nent; i++) {
        if (end - c < 46 || rd32(c) != 0x02014b50u) {
            mc_zip_close(z);
            return mc_err(err, "%s: bad central directory entry %llu", name, (unsigned long long)i);
        }
        uint16_t flags = rd16(c + 8), method = rd16(c + 10);
        uint32_t crc = rd32(c + 16);
        uint64_t csize = rd32(c + 20), usize = rd32(c + 24), off = rd32(c + 42);
        size_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
        if ((size_t)(end - c) - 46 < nlen + xlen + clen) {
            mc_zip_close(z);
            return mc_err(err, "%s: central directory entry %llu overruns the directory", name,
                          (unsigned long long)i);
        }
        const uint8_t *x = c + 46 + nlen, *xe = x + xlen;
        while (xe - x >= 4) {
            uint16_t id = rd16(x), sz = rd16(x + 2);
            if ((size_t)(xe - x) - 4 < sz)
                break;
            if (id == 0x0001) {
                const uint8_t *f = x + 4, *fe = x + 4 + sz;
                if (usize == 0xFFFFFFFFu && fe - f >= 8) { usize = rd64(f); f += 8; }
                if (csize == 0xFFFFFFFFu && fe - f >= 8) { csize = rd64(f); f += 8; }
                if (off == 0xFFFFFFFFu && fe - f >= 8) { off = rd64(f); f += 8; }
            }
            x += 4 + sz;
        }
        ZipEntry *e = &z->e[z->n];
        e->name = malloc(nlen + 1);
        if (!e->name) {
            mc_zip_close(z);
            return mc_err(err, "%s: out of memory", name);
        }
        memcpy(e->name, c + 46, nlen);
        e->name[nlen] = 0;
        z->n++;
        if (memchr(e->name, 0, nlen)) {
            mc_zip_close(z);
            return mc_err(err, "%s: zip entry name contains a NUL byte", name);
        }
        if (flags & 1) {
            char en[256];
            int r = mc_err(err, "%s: zip entry '%s' is encrypted", name, MC_ESC(en, e->name));
            mc_zip_close(z);
            return r;
        }
        e->off = off;
        e->crc = crc;
        e->csize = csize;
        e->usize = usize;
        e->method = method;
        /* local header */
        if (off > len || len - off < 30 || rd32(buf + off) != 0x04034b50u) {
            char en[256];
            int r = mc_err(err, "%s: zip entry '%s': bad local header offset %llu", name, MC_ESC(en, e->name),
                           (unsigned long long)off);
            mc_zip_close(z);
            return r;
        }
        uint64_t d = off + 30 + (uint64_t)rd16(buf + off + 26) + rd16(buf + off + 28);
        if (d > len || csize > len - d) {
            char en[256];
            int r = mc_err(err, "%s: zip entry '%s' (%llu bytes) lies outside the file (truncated?)",
                           name, MC_ESC(en, e->name), (unsigned long long)csize);
            mc_zip_close(z);
            return r;
        }
        e->data_off = d;
        c += 46 + nlen + xlen + clen;
    }
    return check_unique(z, err);
}

ZipEntry *
mc_zip_find(const ZipArchive *z, const char *name)
{
    for (int i = 0; i < z->n; i++)
        if (strcmp(z->e[i].name, name) == 0)
            return &z->e[i];
    return NULL;
}

int
mc_zip_data(ZipArchive *z, ZipEntry *e, const uint8_t **data, size_t *len, McErr *err)
{
    char en[256];
    MC_ESC(en, e->name);
    if (e->method != 0)
        return mc_err(err, "%s: zip entry '%s' is compressed (method %u); only stored entries are "
                      "supported (torch.save writes them stored)", z->name, en, e->method);
    if (e->csize != e->usize)
        return mc_err(err, "%s: zip entry '%s': stored size %llu != size %llu", z->name, en,
                      (unsigned long long)e->csize, (unsigned long long)e->usize);
    const uint8_t *p = z->buf + e->data_off;
    if (!e->checked) {
        uint32_t c = mc_crc32(0, p, (size_t)e->csize);
        if (c != e->crc)
            return mc_err(err, "%s: zip entry '%s': CRC-32 mismatch (file says %08x, data give %08x); "
                          "the file is corrupt", z->name, en, e->crc, c);
        e->checked = 1;
    }
    *data = p;
    *len = (size_t)e->csize;
    return 0;
}

int
mc_file_map(const char *path, const uint8_t **buf, size_t *len, McErr *err)
{
    uint64_t size;
    int fd = mc_file_open(path, "checkpoint file", 0, &size, err->msg, sizeof err->msg);
    if (fd < 0)
        return -1;
    if (size == 0) {
        close(fd);
        return mc_err(err, "%s: empty file", path);
    }
    if (size > SIZE_MAX) {
        close(fd);
        return mc_err(err, "%s: too large to map", path);
    }
    void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return mc_err(err, "%s: cannot map: %s", path, strerror(e));
    *buf = p;
    *len = (size_t)size;
    return 0;
}

void
mc_file_unmap(const uint8_t *buf, size_t len)
{
    if (buf)
        munmap((void *)buf, len);
}
