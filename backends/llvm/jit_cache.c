/* backends/llvm/jit_cache.c -- the content-addressed cache of JIT objects
 * (jit_cache.h: the directory, the key, the entry format, the limits).
 *
 * Takes a planned program and its target; produces the key (SHA-256 of a
 * meta text and the program's kernel-IR text) and reads, writes and trims
 * the entries.  SHA-256 rather than a 64- or 128-bit hash of our own: the
 * key must never collide (a collision would run another model's code), it
 * is the standard one that anyone can recompute (the tests do, with
 * Python's hashlib), and at about 0.2 GB/s it costs a few milliseconds on
 * the kernel IR and the object, against seconds of compiling.  The
 * generator's identity is the GNU build id of the binary that holds this
 * code (a hash of the linked bytes, the same for the same sources and
 * compiler, different after any change of mambac); a binary without one
 * runs without the cache.
 */
#define _GNU_SOURCE
#include "jit_cache.h"
#include "llvm_internal.h"
#include "../../runtime/mc_file.h"
#include "../../runtime/mc_out.h"
#include <llvm/Config/llvm-config.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ SHA-256 */

typedef struct Sha256 {
    uint32_t h[8];
    uint8_t buf[64];
    uint64_t len;        /* bytes so far */
} Sha256;

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t
ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void
sha_block(Sha256 *s, const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d;
    s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}

static void
sha_update(Sha256 *s, const uint8_t *p, size_t n)
{
    size_t fill = (size_t)(s->len % 64);
    s->len += n;
    if (fill) {
        size_t take = 64 - fill < n ? 64 - fill : n;
        memcpy(s->buf + fill, p, take);
        p += take, n -= take;
        if (fill + take < 64) return;
        sha_block(s, s->buf);
    }
    for (; n >= 64; p += 64, n -= 64) sha_block(s, p);
    memcpy(s->buf, p, n);
}

void
mc_sha256(const void *const *data, const size_t *len, int n, uint8_t out[32])
{
    Sha256 s = {{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19},
                {0},
                0};
    for (int i = 0; i < n; i++) sha_update(&s, data[i], len[i]);
    uint64_t bits = s.len * 8;
    uint8_t pad[72] = {0x80};
    size_t np = (size_t)((119 - s.len % 64) % 64) + 1; /* 0x80, zeros, to 56 mod 64 */
    for (int i = 0; i < 8; i++) pad[np + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha_update(&s, pad, np + 8);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (uint8_t)(s.h[i] >> (24 - 8 * j));
}

static void
hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* ------------------------------------------------------------ state */

static int enabled;
static int state;               /* 0 not looked at, 1 usable, -1 off */
static int noted;               /* the one note on stderr was printed */
static char cache_dir[3900];

void
mc_jit_cache_enable(int on)
{
    enabled = on;
}

/* The note (once per process) and the cache off for the process. */
static void
note_off(const char *fmt, ...)
{
    state = -1;
    if (noted) return;
    noted = 1;
    va_list ap;
    va_start(ap, fmt);
    fputs("mambac: note: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("; compiling without the JIT cache\n", stderr);
    va_end(ap);
}

/* The directory named by the environment ("" for none) */
static void
dir_from_env(char *dir, size_t n)
{
    const char *d = getenv("MAMBAC_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (d) snprintf(dir, n, "%s", d);
    else if (x && x[0] == '/') snprintf(dir, n, "%s/mambac", x);
    else if (h && *h) snprintf(dir, n, "%s/.cache/mambac", h);
    else dir[0] = 0;
}

/* mkdir -p with 0700 for what it creates; 0 or -1 (errno) */
static int
make_dirs(char *dir)
{
    for (char *s = dir + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = 0;
        int bad = mkdir(dir, 0700) && errno != EEXIST;
        *s = c;
        if (bad) return -1;
        if (!c) return 0;
    }
}

/* 1 when the directory is usable, else off (with the note where one is due) */
static int
open_dir(void)
{
    if (state) return state > 0;
    state = -1;
    dir_from_env(cache_dir, sizeof cache_dir);
    if (!cache_dir[0]) return 0; /* MAMBAC_CACHE_DIR= or no HOME: off, silently */
    struct stat st;
    if (make_dirs(cache_dir) || stat(cache_dir, &st)) {
        note_off("cannot create the cache directory %s: %s", cache_dir, strerror(errno));
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        note_off("%s is not a directory", cache_dir);
        return 0;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 022)) {
        note_off("the cache directory %s is %s (it holds code this program runs)", cache_dir,
                 st.st_uid != geteuid() ? "owned by another user" : "writable by others");
        return 0;
    }
    state = 1;
    return 1;
}

/* ------------------------------------------------------------ the key */

typedef struct BuildId {
    uintptr_t addr;       /* an address in the object sought */
    char hex[128];        /* its build id, "" when none */
} BuildId;

static int
find_build_id(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    BuildId *b = arg;
    int inside = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && b->addr >= lo && b->addr < lo + ph->p_memsz) inside = 1;
    }
    if (!inside) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + 12 <= end) {
            uint32_t nsz, dsz, type;
            memcpy(&nsz, p, 4);
            memcpy(&dsz, p + 4, 4);
            memcpy(&type, p + 8, 4);
            const uint8_t *name = p + 12, *desc = name + ((nsz + 3) & ~3u);
            if (desc + dsz > end || desc < name) break;
            if (type == NT_GNU_BUILD_ID && nsz == 4 && !memcmp(name, "GNU", 4) && dsz && dsz <= 60) {
                hex(desc, dsz, b->hex);
                return 1;
            }
            p = desc + ((dsz + 3) & ~3u);
        }
    }
    return 1;
}

int
mc_jit_cache_key(McJitKey *k, const KProgram *p, const McLlvmTarget *t, const char *entry, FILE *verbose)
{
    memset(k, 0, sizeof *k);
    if (!enabled || !open_dir()) return -1;
    static BuildId id;
    if (!id.addr) {
        id.addr = (uintptr_t)&mc_jit_cache_key;
        dl_iterate_phdr(find_build_id, &id);
    }
    if (!id.hex[0]) {
        note_off("this mambac has no build id (linked with --build-id=none)");
        return -1;
    }
    unsigned maj = 0, min = 0, pat = 0;
    LLVMGetVersion(&maj, &min, &pat);
    char *kir = mc_kprogram_print_str(p);
    size_t mn = strlen(t->descr) + strlen(entry) + 512;
    k->meta = malloc(mn);
    if (!kir || !k->meta) {
        free(kir);
        free(k->meta);
        k->meta = NULL;
        return -1;
    }
    snprintf(k->meta, mn,
             "mambac-jit-cache 1\nbuild-id %s\nllvm %s (library %u.%u.%u)\ntarget %s\nentry %s outputs %d\n", id.hex,
             LLVM_VERSION_STRING, maj, min, pat, t->descr, entry, p->noutputs);
    const void *parts[2] = {k->meta, kir};
    size_t lens[2] = {strlen(k->meta), strlen(kir)};
    mc_sha256(parts, lens, 2, k->key);
    free(kir);
    char kh[65];
    hex(k->key, 32, kh);
    snprintf(k->path, sizeof k->path, "%s/jit-%s.mco", cache_dir, kh);
    k->verbose = verbose;
    return 0;
}

void
mc_jit_key_free(McJitKey *k)
{
    free(k->meta);
    k->meta = NULL;
}

/* ------------------------------------------------------------ entries */

static const char magic[8] = {'M', 'C', 'J', 'I', 'T', 'C', '1', '\n'};
enum { HDR = 8 + 4 + 4 + 8 + 32 + 32 };

static uint64_t
get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void
put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void
say(const McJitKey *k, const char *fmt, const char *why)
{
    if (!k->verbose) return;
    fprintf(k->verbose, "mambac: jit cache ");
    fprintf(k->verbose, fmt, why);
    fprintf(k->verbose, ": %s\n", k->path);
}

/* "" when the entry is k's, else why not */
static const char *
check_entry(const McJitKey *k, const uint8_t *b, size_t n, size_t *off, size_t *len)
{
    if (n < HDR) return "shorter than its header";
    if (memcmp(b, magic, 8)) return "not an entry (bad magic)";
    uint64_t ml = get_le(b + 8, 4), ol = get_le(b + 16, 8);
    if (get_le(b + 12, 4) || ml > n || ol > n || HDR + ml + ol != n) return "truncated or of a wrong length";
    if (memcmp(b + 24, k->key, 32)) return "the key differs";
    if (ml != strlen(k->meta) || memcmp(b + HDR, k->meta, ml)) return "the meta text differs";
    const void *parts[1] = {b + HDR};
    size_t lens[1] = {(size_t)(ml + ol)};
    uint8_t sum[32];
    mc_sha256(parts, lens, 1, sum);
    if (memcmp(b + 56, sum, 32)) return "the checksum differs";
    *off = HDR + (size_t)ml;
    *len = (size_t)ol;
    return "";
}

int
mc_jit_cache_get(McJitKey *k, uint8_t **obj, size_t *len)
{
    struct stat st;
    if (stat(k->path, &st)) {
        say(k, "miss (%s)", errno == ENOENT ? "no entry" : strerror(errno));
        return 0;
    }
    char msg[512];
    size_t n = 0, off = 0;
    uint8_t *b = (uint8_t *)mc_file_read_all(k->path, "JIT cache entry", MC_JIT_CACHE_MAX_BYTES, &n, msg, sizeof msg);
    if (!b) {
        say(k, "miss (unreadable: %s)", msg);
        return 0;
    }
    const char *why = check_entry(k, b, n, &off, len);
    if (*why) {
        say(k, "miss (damaged entry: %s)", why);
        free(b);
        return 0;
    }
    memmove(b, b + off, *len);
    *obj = b;
    utimensat(AT_FDCWD, k->path, NULL, 0); /* recently used: trimmed last */
    if (k->verbose) fprintf(k->verbose, "mambac: jit cache hit (%zu bytes of object): %s\n", *len, k->path);
    return 1;
}

typedef struct Entry {
    char name[80];
    struct timespec mtime;
    long long bytes;
} Entry;

static int
older(const void *a, const void *b)
{
    const Entry *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec) return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec) return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int
ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Keeps at most MC_JIT_CACHE_MAX_ENTRIES entries and MAX_BYTES bytes
 * (oldest mtime removed first, never `keep`) and removes temporaries of
 * writers that died more than an hour ago. */
static void
trim(const char *keep)
{
    int dfd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0) close(dfd);
        return;
    }
    Entry *e = NULL;
    int n = 0, cap = 0;
    long long total = 0;
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        int entry = !strncmp(nm, "jit-", 4) && ends(nm, ".mco") && strlen(nm) < sizeof e->name;
        int temp = !strncmp(nm, ".jit-", 5) && ends(nm, ".tmp");
        struct stat st;
        if ((!entry && !temp) || fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode)) continue;
        if (temp) {
            if (now - st.st_mtime > 3600) unlinkat(dfd, nm, 0);
            continue;
        }
        if (n == cap) {
            Entry *ne = realloc(e, sizeof *e * (size_t)(cap = cap ? 2 * cap : 64));
            if (!ne) break;
            e = ne;
        }
        snprintf(e[n].name, sizeof e[n].name, "%s", nm);
        e[n].mtime = st.st_mtim;
        e[n].bytes = (long long)st.st_size;
        total += e[n].bytes;
        n++;
    }
    qsort(e, (size_t)n, sizeof *e, older);
    for (int i = 0, left = n; i < n && (left > MC_JIT_CACHE_MAX_ENTRIES || total > MC_JIT_CACHE_MAX_BYTES); i++) {
        if (!strcmp(e[i].name, keep)) continue;
        if (!unlinkat(dfd, e[i].name, 0) || errno == ENOENT) {
            left--;
            total -= e[i].bytes;
        }
    }
    free(e);
    closedir(d);
}

void
mc_jit_cache_put(McJitKey *k, const void *obj, size_t len)
{
    size_t ml = strlen(k->meta);
    uint8_t h[HDR] = {0};
    memcpy(h, magic, 8);
    put_le(h + 8, ml, 4);
    put_le(h + 16, len, 8);
    memcpy(h + 24, k->key, 32);
    const void *parts[2] = {k->meta, obj};
    size_t lens[2] = {ml, len};
    mc_sha256(parts, lens, 2, h + 56);
    McOut o;
    char msg[1024];
    if (mc_out_open(&o, k->path, 0600, msg, sizeof msg)) {
        note_off("%s", msg);
        return;
    }
    fwrite(h, 1, HDR, o.f);
    fwrite(k->meta, 1, ml, o.f);
    fwrite(obj, 1, len, o.f);
    if (mc_out_commit(&o, msg, sizeof msg)) {
        note_off("%s", msg);
        return;
    }
    if (k->verbose) fprintf(k->verbose, "mambac: jit cache stored (%zu bytes of object): %s\n", len, k->path);
    trim(strrchr(k->path, '/') + 1);
}

void
mc_jit_cache_drop(McJitKey *k)
{
    unlink(k->path);
}
