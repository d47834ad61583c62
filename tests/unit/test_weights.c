/* tests/unit/test_weights.c -- checkpoint readers and the weights store
 * (frontend/zip.c, pickle.c, pth.c, safetensors.c, weights.c).
 *
 * Takes the fixtures of unit/data/ written by make_fixtures.py with torch
 * and numpy (X.pth / X.safetensors plus X.expect.npy + X.expect.txt, the
 * expected tensors in an independent form), and hand-built archives and
 * pickles made here.  Checks values, keys and shapes; that every class of
 * malformed input (truncation at every offset, flipped bytes, bad CRC, bad
 * offsets, hostile pickles, foreign files) gives -1 and a message naming the
 * file; mmengine-layout checkpoints (prefixes, skipped parts, dataset_meta
 * classes and palette); mc_weights_check's message; mc_weights_random's
 * ranges and determinism.  Run from tests/ (ctest does).
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend/weights.h"
#include "frontend/zip.h"
#include "runtime/mc_npy.h"

#define FIX "unit/data/"

/* ------------------------------------------------------------ helpers */

static uint8_t *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void
check_contains(const char *msg, const char *want)
{
    if (!strstr(msg, want)) fprintf(stderr, "\n  message: %s\n  missing: %s\n", msg, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
}

/* Compares ws against NAME.expect.{txt,npy}; also that ws has no other tensors. */
static void
compare_expect(const WeightStore *ws, const char *name)
{
    char p[256], line[1024], em[256];
    snprintf(p, sizeof p, FIX "%s.expect.npy", name);
    McNpy ex;
    int rc = mc_npy_read(p, &ex, em, sizeof em);
    if (rc) fprintf(stderr, "\n  %s\n", em);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(ex.type, MC_NPY_F64);
    const double *ev = ex.data;
    snprintf(p, sizeof p, FIX "%s.expect.txt", name);
    FILE *f = fopen(p, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        char *tok[16];
        int nt = 0;
        for (char *t = strtok(line, " \n"); t && nt < 16; t = strtok(NULL, " \n")) tok[nt++] = t;
        if (nt < 5) continue;
        count++;
        int rank = atoi(tok[2]);
        long off = atol(tok[3 + rank]), numel = atol(tok[4 + rank]);
        WTensor *t = mc_weights_find(ws, tok[0]);
        if (!t) fprintf(stderr, "\n  tensor %s not found\n", tok[0]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        DType want = strcmp(tok[1], "i64") == 0 ? DT_I64 : strcmp(tok[1], "i32") == 0 ? DT_I32 : DT_F32;
        CU_ASSERT_EQUAL(t->dtype, want);
        CU_ASSERT_EQUAL_FATAL(t->shape.rank, rank);
        for (int i = 0; i < rank; i++) CU_ASSERT_EQUAL(t->shape.d[i], atol(tok[3 + i]));
        CU_ASSERT_EQUAL_FATAL(mc_shape_numel(&t->shape), numel);
        CU_ASSERT_EQUAL(t->nbytes, (size_t)numel * (want == DT_F32 || want == DT_I32 ? 4 : 8));
        int bad = 0;
        for (long i = 0; i < numel; i++) {
            double e = ev[off + i];
            if (want == DT_F32) bad += ((float *)t->data)[i] != (float)e;
            else if (want == DT_I64) bad += ((int64_t *)t->data)[i] != (int64_t)e;
            else bad += ((int32_t *)t->data)[i] != (int32_t)e;
        }
        if (bad) fprintf(stderr, "\n  %s: %d values differ\n", tok[0], bad);
        CU_ASSERT_EQUAL(bad, 0);
    }
    fclose(f);
    CU_ASSERT_TRUE(count > 0);
    CU_ASSERT_EQUAL(ws->n, count);
    mc_npy_free(&ex);
}

static void
load_ok(const char *file, const char *expect)
{
    WeightStore ws;
    McErr err = {{0}};
    mc_weights_init(&ws);
    int rc = mc_weights_load(file, &ws, &err);
    if (rc) fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(ws.source, file);
    compare_expect(&ws, expect);
    mc_weights_free(&ws);
}

/* A load from memory that must fail with a message naming "buf". */
static void
mem_fail(int pth, const uint8_t *b, size_t n, const char *want)
{
    WeightStore ws;
    McErr err = {{0}};
    mc_weights_init(&ws);
    int rc = pth ? mc_pth_load_mem(b, n, "buf.pth", &ws, &err)
                 : mc_safetensors_load_mem(b, n, "buf.st", &ws, &err);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_EQUAL(ws.n, 0);
    check_contains(err.msg, pth ? "buf.pth" : "buf.st");
    CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
    if (want) check_contains(err.msg, want);
    mc_weights_free(&ws);
}

/* ---- a tiny zip writer (own CRC) and pickle writer for hand-made files */

typedef struct Buf {
    uint8_t *p;
    size_t n, cap;
} Buf;

static void
put(Buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put8(Buf *b, unsigned v) { uint8_t c = (uint8_t)v; put(b, &c, 1); }
static void put16(Buf *b, unsigned v) { put8(b, v & 255); put8(b, v >> 8); }
static void put32(Buf *b, uint32_t v) { put16(b, v & 0xffff); put16(b, v >> 16); }
static void puts_(Buf *b, const char *s) { put(b, s, strlen(s)); }

static uint32_t
crc_ref(const uint8_t *p, size_t n) /* bitwise CRC-32, independent of mc_crc32 */
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & -(c & 1));
    }
    return ~c;
}

typedef struct ZEnt {
    const char *name;
    const uint8_t *data;
    size_t n;
    int method;
} ZEnt;

static Buf
make_zip(const ZEnt *e, int n)
{
    Buf z = {0}, cd = {0};
    for (int i = 0; i < n; i++) {
        uint32_t off = (uint32_t)z.n, crc = crc_ref(e[i].data, e[i].n);
        put32(&z, 0x04034b50); put16(&z, 20); put16(&z, 0); put16(&z, (unsigned)e[i].method);
        put32(&z, 0); put32(&z, crc); put32(&z, (uint32_t)e[i].n); put32(&z, (uint32_t)e[i].n);
        put16(&z, (unsigned)strlen(e[i].name)); put16(&z, 0); puts_(&z, e[i].name);
        put(&z, e[i].data, e[i].n);
        put32(&cd, 0x02014b50); put16(&cd, 20); put16(&cd, 20); put16(&cd, 0);
        put16(&cd, (unsigned)e[i].method); put32(&cd, 0); put32(&cd, crc); put32(&cd, (uint32_t)e[i].n);
        put32(&cd, (uint32_t)e[i].n); put16(&cd, (unsigned)strlen(e[i].name)); put16(&cd, 0);
        put16(&cd, 0); put16(&cd, 0); put16(&cd, 0); put32(&cd, 0); put32(&cd, off);
        puts_(&cd, e[i].name);
    }
    uint32_t cdoff = (uint32_t)z.n;
    put(&z, cd.p, cd.n);
    put32(&z, 0x06054b50); put16(&z, 0); put16(&z, 0); put16(&z, (unsigned)n); put16(&z, (unsigned)n);
    put32(&z, (uint32_t)cd.n); put32(&z, cdoff); put16(&z, 0);
    free(cd.p);
    return z;
}

/* pickle pieces */
static void pk_str(Buf *b, const char *s) { put8(b, 'X'); put32(b, (uint32_t)strlen(s)); puts_(b, s); }
static void pk_int(Buf *b, int32_t v) { put8(b, 'J'); put32(b, (uint32_t)v); }
static void pk_glob(Buf *b, const char *m, const char *n) { put8(b, 'c'); puts_(b, m); put8(b, '\n'); puts_(b, n); put8(b, '\n'); }
static void pk_tuple(Buf *b, const int *v, int n) { put8(b, '('); for (int i = 0; i < n; i++) pk_int(b, v[i]); put8(b, 't'); }

/* _rebuild_tensor_v2(PERSID(('storage', torch.<st>, skey, 'cpu', numel)), off, size, stride, False, OrderedDict()) */
static void
pk_tensor(Buf *b, const char *st, const char *skey, int numel, int off, const int *size, const int *stride, int rank)
{
    pk_glob(b, "torch._utils", "_rebuild_tensor_v2");
    put8(b, '(');
    put8(b, '(');
    pk_str(b, "storage"); pk_glob(b, "torch", st); pk_str(b, skey); pk_str(b, "cpu"); pk_int(b, numel);
    put8(b, 't');
    put8(b, 'Q');
    pk_int(b, off);
    pk_tuple(b, size, rank);
    pk_tuple(b, stride, rank);
    put8(b, 0x89);
    pk_glob(b, "collections", "OrderedDict"); put8(b, ')'); put8(b, 'R');
    put8(b, 't');
    put8(b, 'R');
}

/* archive/data.pkl = {'w': tensor(...)} with archive/data/0 = floats 0..7 */
static Buf
tensor_archive(const char *st, int numel, int off, const int *size, const int *stride, int rank, size_t datan)
{
    Buf pk = {0};
    put8(&pk, 0x80); put8(&pk, 2); put8(&pk, '}'); put8(&pk, '(');
    pk_str(&pk, "w");
    pk_tensor(&pk, st, "0", numel, off, size, stride, rank);
    put8(&pk, 'u'); put8(&pk, '.');
    float data[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    ZEnt e[2] = {{"archive/data.pkl", pk.p, pk.n, 0}, {"archive/data/0", (uint8_t *)data, datan, 0}};
    Buf z = make_zip(e, 2);
    free(pk.p);
    return z;
}

/* ------------------------------------------------------------ tests */

static void test_train(void) { load_ok(FIX "train.pth", "train"); }
static void test_views(void) { load_ok(FIX "views.pth", "views"); }
static void test_dtypes(void) { load_ok(FIX "dtypes.pth", "dtypes"); }
static void test_zip64(void) { load_ok(FIX "views_zip64.pth", "views"); }
static void test_safetensors(void) { load_ok(FIX "small.safetensors", "small"); }

static void
test_orig_dtypes(void)
{
    WeightStore ws;
    McErr err = {{0}};
    mc_weights_init(&ws);
    CU_ASSERT_EQUAL_FATAL(mc_pth_load(FIX "dtypes.pth", &ws, &err), 0);
    CU_ASSERT_EQUAL(mc_weights_find(&ws, "h")->orig, DT_F16);
    CU_ASSERT_EQUAL(mc_weights_find(&ws, "b")->orig, DT_BF16);
    CU_ASSERT_EQUAL(mc_weights_find(&ws, "d")->orig, DT_F64);
    CU_ASSERT_EQUAL(mc_weights_find(&ws, "p")->orig, DT_F32);
    CU_ASSERT_PTR_NULL(mc_weights_find(&ws, "module.h"));
    CU_ASSERT_PTR_NULL(mc_weights_find(&ws, "mask")); /* bool: skipped */
    mc_weights_free(&ws);
    mc_weights_init(&ws);
    CU_ASSERT_EQUAL_FATAL(mc_safetensors_load(FIX "small.safetensors", &ws, &err), 0);
    CU_ASSERT_EQUAL(mc_weights_find(&ws, "b16")->orig, DT_BF16);
    CU_ASSERT_EQUAL(mc_weights_find(&ws, "i64")->orig, DT_I64);
    mc_weights_free(&ws);
}

static void
test_deflate_rejected(void)
{
    WeightStore ws;
    McErr err = {{0}};
    mc_weights_init(&ws);
    CU_ASSERT_EQUAL(mc_weights_load(FIX "views_deflate.pth", &ws, &err), -1);
    check_contains(err.msg, "views_deflate.pth");
    check_contains(err.msg, "compressed");
    mc_weights_free(&ws);
}

static void
truncate_all(const char *file, int pth)
{
    size_t n;
    uint8_t *b = slurp(file, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    int fails = 0;
    for (size_t k = 0; k < n; k++) {
        WeightStore ws;
        McErr err = {{0}};
        mc_weights_init(&ws);
        uint8_t *c = malloc(k ? k : 1); /* exact-size copy so ASan/valgrind see overreads */
        memcpy(c, b, k);
        int rc = pth ? mc_pth_load_mem(c, k, "cut", &ws, &err) : mc_safetensors_load_mem(c, k, "cut", &ws, &err);
        if (rc != -1 || strncmp(err.msg, "cut", 3) != 0) {
            if (fails++ < 3) fprintf(stderr, "\n  cut at %zu: rc %d '%s'\n", k, rc, err.msg);
        }
        mc_weights_free(&ws);
        free(c);
    }
    CU_ASSERT_EQUAL(fails, 0);
    free(b);
}

static void test_truncate_pth(void) { truncate_all(FIX "views.pth", 1); truncate_all(FIX "views_zip64.pth", 1); }
static void test_truncate_st(void) { truncate_all(FIX "small.safetensors", 0); }

/* Flipping any byte of any entry's data must fail the CRC check; flipping
 * any byte anywhere must never crash. */
static void
test_flip_bytes(void)
{
    size_t n;
    uint8_t *b = slurp(FIX "views.pth", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    ZipArchive z;
    McErr err = {{0}};
    CU_ASSERT_EQUAL_FATAL(mc_zip_open(&z, b, n, "x", &err), 0);
    CU_ASSERT_TRUE(z.n >= 3);
    uint8_t *inside = calloc(n, 1);
    for (int i = 0; i < z.n; i++) /* the entries the reader reads */
        if (strstr(z.e[i].name, "/data"))
        for (uint64_t k = z.e[i].data_off; k < z.e[i].data_off + z.e[i].csize; k++)
            inside[k] = 1;
    mc_zip_close(&z);
    int crc_fail = 0, checked = 0;
    for (size_t k = 0; k < n; k++) {
        WeightStore ws;
        mc_weights_init(&ws);
        b[k] ^= 0x55;
        err.msg[0] = 0;
        int rc = mc_pth_load_mem(b, n, "flip", &ws, &err);
        if (inside[k]) {
            checked++;
            if (rc != -1 || !strstr(err.msg, "CRC")) {
                if (crc_fail++ < 3) fprintf(stderr, "\n  flip at %zu: rc %d '%s'\n", k, rc, err.msg);
            }
        } else if (rc == -1) {
            CU_ASSERT_TRUE(err.msg[0] != 0);
        }
        b[k] ^= 0x55;
        mc_weights_free(&ws);
    }
    CU_ASSERT_TRUE(checked > 100);
    CU_ASSERT_EQUAL(crc_fail, 0);
    free(inside);
    free(b);
}

static void
test_bad_central_crc(void)
{
    size_t n;
    uint8_t *b = slurp(FIX "views.pth", &n);
    /* the first central directory record's CRC field */
    size_t k = 0;
    for (size_t i = 0; i + 4 <= n; i++)
        if (b[i] == 'P' && b[i + 1] == 'K' && b[i + 2] == 1 && b[i + 3] == 2) { k = i + 16; break; }
    CU_ASSERT_TRUE_FATAL(k > 0);
    b[k] ^= 1;
    mem_fail(1, b, n, "CRC-32 mismatch");
    free(b);
}

static void
test_foreign_files(void)
{
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                  0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89};
    const char *txt = "MODEL:\n  TYPE: spatial_mamba\n  NAME: tiny\n";
    mem_fail(0, png, sizeof png, "not a safetensors file");
    mem_fail(1, png, sizeof png, "not a torch.save checkpoint");
    mem_fail(0, (const uint8_t *)txt, strlen(txt), "not a safetensors file");
    mem_fail(0, (const uint8_t *)"", 0, NULL);
    mem_fail(1, (const uint8_t *)"PK\3\4", 4, "not a zip archive");
    /* a .npy is neither */
    size_t n;
    uint8_t *b = slurp(FIX "a_f4.npy", &n);
    mem_fail(0, b, n, NULL);
    free(b);
    WeightStore ws;
    McErr err = {{0}};
    mc_weights_init(&ws);
    CU_ASSERT_EQUAL(mc_weights_load(FIX "no_such_file.pth", &ws, &err), -1);
    check_contains(err.msg, "no_such_file.pth");
    CU_ASSERT_EQUAL(mc_weights_load(FIX "fakecfg.py", &ws, &err), -1);
    check_contains(err.msg, FIX "fakecfg.py: not a checkpoint");
    CU_ASSERT_EQUAL(mc_weights_load(FIX "a_f4.npy", &ws, &err), -1);
    check_contains(err.msg, FIX "a_f4.npy: not a checkpoint");
    CU_ASSERT_EQUAL(mc_weights_load(FIX, &ws, &err), -1); /* a directory */
    mc_weights_free(&ws);
}

static void
test_handmade_tensor(void)
{
    int sz[2] = {2, 3}, st[2] = {1, 2};
    Buf z = tensor_archive("FloatStorage", 8, 1, sz, st, 2, 32); /* w[i][j] = 1 + i + 2j */
    WeightStore ws;
    McErr err = {{0}};
    mc_weights_init(&ws);
    int rc = mc_pth_load_mem(z.p, z.n, "hand", &ws, &err);
    if (rc) fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    WTensor *t = mc_weights_find(&ws, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    float want[6] = {1, 3, 5, 2, 4, 6};
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(((float *)t->data)[i], want[i]);
    mc_weights_free(&ws);
    free(z.p);
}

static void
test_bad_tensors(void)
{
    int sz[2] = {2, 2}, st[2] = {2, 1}, bigst[2] = {0x40000000, 1}, neg[2] = {-1, 1};
    int big[3] = {0x7fffffff, 0x7fffffff, 0x7fffffff};
    struct { const char *st; int numel, off; const int *size, *stride; int rank; size_t datan; const char *want; } c[] = {
        {"FloatStorage", 4, 1, sz, st, 2, 32, "past the end of its storage"},
        {"FloatStorage", 8, 0, sz, st, 2, 16, "larger than its archive entry"},
        {"FloatStorage", 8, 0, sz, bigst, 2, 32, "past the end"},
        {"FloatStorage", 8, 0, neg, st, 2, 32, "non-negative"},
        {"FloatStorage", 8, -3, sz, st, 2, 32, "bad storage offset"},
        {"FloatStorage", 8, 0, sz, st, 1, 32, NULL}, /* rank 1: size (2,) stride (2,) */
        {"FloatStorage", 8, 0, big, big, 3, 32, "too large"},
        {"FloatStorage", 8, 0, big, big, 2, 32, "too large"},
        {"DoubleStorage", 8, 0, sz, st, 2, 32, "larger than its archive entry"},
        {"FloatStorage", -1, 0, sz, st, 2, 32, "negative storage size"},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        Buf z = tensor_archive(c[i].st, c[i].numel, c[i].off, c[i].size, c[i].stride, c[i].rank, c[i].datan);
        WeightStore ws;
        McErr err = {{0}};
        mc_weights_init(&ws);
        int rc = mc_pth_load_mem(z.p, z.n, "bad", &ws, &err);
        if (c[i].want) {
            CU_ASSERT_EQUAL(rc, -1);
            check_contains(err.msg, "bad: tensor 'w'");
            check_contains(err.msg, c[i].want);
        } else {
            CU_ASSERT_EQUAL(rc, 0); /* w = storage[0], storage[2] */
            if (rc == 0) {
                CU_ASSERT_EQUAL(((float *)ws.t[0].data)[1], 2.0f);
            }
        }
        mc_weights_free(&ws);
        free(z.p);
    }
    /* missing storage entry */
    Buf pk = {0};
    put8(&pk, 0x80); put8(&pk, 2); put8(&pk, '}'); pk_str(&pk, "w");
    pk_tensor(&pk, "FloatStorage", "7", 4, 0, sz, st, 2);
    put8(&pk, 's'); put8(&pk, '.');
    ZEnt e[1] = {{"archive/data.pkl", pk.p, pk.n, 0}};
    Buf z = make_zip(e, 1);
    mem_fail(1, z.p, z.n, "storage 'data/7' is missing");
    free(z.p);
    free(pk.p);
}

/* Wraps raw pickle bytes as archive/data.pkl and expects failure. */
static void
pickle_fail(const void *pk, size_t n, const char *want)
{
    ZEnt e[1] = {{"archive/data.pkl", pk, n, 0}};
    Buf z = make_zip(e, 1);
    mem_fail(1, z.p, z.n, want);
    free(z.p);
}

static void
test_bad_pickles(void)
{
#define PF(s, w) pickle_fail(s, sizeof(s) - 1, w)
    PF("\x80\x02R.", "stack underflow");
    PF("\x80\x02}q\x00", "without STOP");
    PF("\x80\x02\xff.", "unsupported opcode 0xff");
    PF("\x80\x02h\x05.", "memo key not found");
    PF("\x80\x02X\xff\xff\xff\x7f", "past the end");
    PF("\x80\x02K\x01.", "not a dict");
    PF("\x80\x02}.", "no tensors found");
    PF("\x80\x02(u.", "stack underflow");
    PF("\x80\x02}(K\x01u.", "odd number");
    PF("\x80\x02K\x01K\x02s.", "stack underflow");
    PF("\x80\x02K\x01K\x02K\x03s.", "not a dict");
    PF("\x80\x02t.", "MARK expected");
    PF("\x80\x09}.", "unsupported protocol");
    PF("\x80\x02\x93.", "stack underflow");
    PF("\x80\x02K\x01K\x02\x93.", "two strings");
    PF("\x80\x02r\xff\xff\xff\x7f.", "stack underflow");
    PF("\x80\x02}r\xff\xff\xff\x7f.", "memo index out of range");
    PF("\x80\x02" "ctorch\n", "unterminated");
    PF("", "without STOP");
    PF("\x80\x02.", "stack underflow");
#undef PF
    /* a recursion bomb: deep nesting of lists, marks and tuples */
    Buf b = {0};
    put8(&b, 0x80); put8(&b, 2);
    for (int i = 0; i < 200000; i++) put8(&b, i % 3 ? ']' : '(');
    for (int i = 0; i < 200000; i++) put8(&b, 'a');
    put8(&b, '.');
    pickle_fail(b.p, b.n, NULL);
    /* a list appended to itself, then as the top-level value */
    pickle_fail("\x80\x02]q\x00h\x00" "a.", 9, "not a dict");
    free(b.p);
}

/* A training checkpoint whose "model" is not a dict falls back to state_dict. */
static void
test_selection(void)
{
    int sz[1] = {2}, st[1] = {1};
    Buf pk = {0};
    float data[2] = {4, 5};
    put8(&pk, 0x80); put8(&pk, 2); put8(&pk, '}'); put8(&pk, '(');
    pk_str(&pk, "model"); pk_glob(&pk, "somepkg.models", "Net"); put8(&pk, ')'); put8(&pk, 0x81);
    pk_str(&pk, "state_dict"); put8(&pk, '}'); put8(&pk, '(');
    pk_str(&pk, "module.a"); pk_tensor(&pk, "FloatStorage", "0", 2, 0, sz, st, 1);
    pk_str(&pk, "n"); pk_int(&pk, 3);
    pk_str(&pk, "module.a"); pk_tensor(&pk, "FloatStorage", "0", 2, 1, sz, (int[]){0}, 1); /* later wins */
    put8(&pk, 'u');
    pk_str(&pk, "other"); pk_tensor(&pk, "FloatStorage", "0", 2, 0, sz, st, 1);
    put8(&pk, 'u'); put8(&pk, '.');
    ZEnt e[2] = {{"x/data.pkl", pk.p, pk.n, 0}, {"x/data/0", (uint8_t *)data, 8, 0}};
    Buf z = make_zip(e, 2);
    WeightStore ws;
    McErr err = {{0}};
    mc_weights_init(&ws);
    int rc = mc_pth_load_mem(z.p, z.n, "sel", &ws, &err);
    if (rc) fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(ws.n, 1);
    WTensor *t = mc_weights_find(&ws, "a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(((float *)t->data)[0], 5.0f);
    CU_ASSERT_EQUAL(((float *)t->data)[1], 5.0f);
    mc_weights_free(&ws);
    free(z.p);
    free(pk.p);
}

static void
test_byteorder(void)
{
    int sz[1] = {2}, st[1] = {1};
    Buf pk = {0};
    float data[2] = {4, 5};
    put8(&pk, 0x80); put8(&pk, 2); put8(&pk, '}'); pk_str(&pk, "a");
    pk_tensor(&pk, "FloatStorage", "0", 2, 0, sz, st, 1);
    put8(&pk, 's'); put8(&pk, '.');
    for (int big = 0; big < 2; big++) {
        const char *bo = big ? "big" : "little";
        ZEnt e[3] = {{"x/data.pkl", pk.p, pk.n, 0}, {"x/byteorder", (const uint8_t *)bo, strlen(bo), 0},
                     {"x/data/0", (uint8_t *)data, 8, 0}};
        Buf z = make_zip(e, 3);
        if (big) {
            mem_fail(1, z.p, z.n, "not little-endian");
        } else {
            WeightStore ws;
            McErr err = {{0}};
            mc_weights_init(&ws);
            CU_ASSERT_EQUAL(mc_pth_load_mem(z.p, z.n, "le", &ws, &err), 0);
            mc_weights_free(&ws);
        }
        free(z.p);
    }
    free(pk.p);
}

static void
st_fail(const char *json, size_t datan, const char *want)
{
    Buf b = {0};
    uint64_t hl = strlen(json);
    put32(&b, (uint32_t)hl); put32(&b, (uint32_t)(hl >> 32));
    puts_(&b, json);
    for (size_t i = 0; i < datan; i++) put8(&b, 0);
    mem_fail(0, b.p, b.n, want);
    free(b.p);
}

static void
test_bad_safetensors(void)
{
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12, "12 bytes of data");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "past the end");
    st_fail("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "non-negative integers");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "non-negative integers");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "data_offsets");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "needs");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, "unexpected");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "twice");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
            "too large");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "rank");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999999]}}", 8,
            "data_offsets");
    st_fail("{\"a\":1,}", 0, "safetensors header");
    st_fail("{\"a\" 1}", 0, "expected ':'");
    st_fail("{\"a\":\"\\x\"}", 0, "bad escape");
    st_fail("{\"a\":\"\\ud800\"}", 0, "surrogate");
    st_fail("{\"a\":01}", 0, "leading zero");
    st_fail("{\"a\":tru}", 0, "unexpected character");
    st_fail("{\"__metadata__\":[]}", 0, "__metadata__");
    st_fail("{} x", 0, "trailing");
    st_fail("[]", 0, "start with '{'");
    /* nesting bomb */
    char deep[4200];
    size_t k = 0;
    deep[k++] = '{'; memcpy(deep + k, "\"a\":", 4); k += 4;
    for (int i = 0; i < 2000; i++) deep[k++] = '[';
    for (int i = 0; i < 2000; i++) deep[k++] = ']';
    deep[k++] = '}'; deep[k] = 0;
    st_fail(deep, 0, "nesting too deep");
    /* header length larger than the file */
    uint8_t h[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    mem_fail(0, h, sizeof h, "exceeds the file size");
}

static void
test_safetensors_ok_edge(void)
{
    /* metadata, escapes in keys, unsupported-but-known dtype skipped, empty tensor */
    const char *json = "{\"__metadata__\":{\"format\":\"pt\"},\"k\\u00e9y\\n\":{\"dtype\":\"F32\",\"shape\":[1],"
                       "\"data_offsets\":[0,4]},\"m\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[4,6]},"
                       "\"e\":{\"dtype\":\"I64\",\"shape\":[0,3],\"data_offsets\":[6,6]}}  ";
    Buf b = {0};
    put32(&b, (uint32_t)strlen(json)); put32(&b, 0); puts_(&b, json);
    float one = 1.5f;
    put(&b, &one, 4); put8(&b, 1); put8(&b, 0);
    WeightStore ws;
    McErr err = {{0}};
    mc_weights_init(&ws);
    int rc = mc_safetensors_load_mem(b.p, b.n, "edge", &ws, &err);
    if (rc) fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(ws.n, 2);
    WTensor *t = mc_weights_find(&ws, "k\xc3\xa9y\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(((float *)t->data)[0], 1.5f);
    t = mc_weights_find(&ws, "e");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->dtype, DT_I64);
    CU_ASSERT_EQUAL(t->shape.rank, 2);
    CU_ASSERT_EQUAL(t->nbytes, 0);
    mc_weights_free(&ws);
    free(b.p);
}

static void
test_store(void)
{
    WeightStore ws;
    mc_weights_init(&ws);
    Shape s = {.rank = 1, .d = {2}};
    float *a = malloc(8), *b = malloc(8);
    a[0] = 1; b[0] = 2;
    CU_ASSERT_PTR_NOT_NULL(mc_weights_put(&ws, "x", DT_F32, DT_F32, &s, a));
    CU_ASSERT_PTR_NOT_NULL(mc_weights_put(&ws, "x", DT_F32, DT_F16, &s, b)); /* replaces, frees a */
    CU_ASSERT_EQUAL(ws.n, 1);
    CU_ASSERT_EQUAL(((float *)mc_weights_find(&ws, "x")->data)[0], 2.0f);
    CU_ASSERT_EQUAL(mc_weights_find(&ws, "x")->orig, DT_F16);
    CU_ASSERT_EQUAL(mc_weights_find(&ws, "x")->nbytes, 8);
    CU_ASSERT_PTR_NULL(mc_weights_find(&ws, "y"));
    mc_weights_free(&ws);
    CU_ASSERT_EQUAL(ws.n, 0);
}

static char *
capture_stderr_begin(int *saved, FILE **tmp)
{
    fflush(stderr);
    *tmp = tmpfile();
    *saved = dup(2);
    dup2(fileno(*tmp), 2);
    return NULL;
}

static char *
capture_stderr_end(int saved, FILE *tmp)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long n = ftell(tmp);
    char *s = calloc((size_t)(n > 0 ? n : 0) + 1, 1);
    rewind(tmp);
    if (n > 0 && fread(s, 1, (size_t)n, tmp) != (size_t)n) s[0] = 0;
    fclose(tmp);
    return s;
}

static int
add_w(Graph *g, const char *k, int rank, int64_t d0, int64_t d1, DType dt)
{
    McErr err;
    Shape s = {.rank = rank, .d = {d0, d1}};
    int id = mc_graph_weight(g, k, dt, &s, &err);
    if (id < 0) fprintf(stderr, "\n  %s\n", err.msg);
    return id;
}

/* ws holds train.pth's tensors (a small classifier-like checkpoint). */
static void
train_store(WeightStore *ws)
{
    McErr err = {{0}};
    mc_weights_init(ws);
    CU_ASSERT_EQUAL_FATAL(mc_weights_load(FIX "train.pth", ws, &err), 0);
}

static void
test_check(void)
{
    WeightStore ws;
    McErr err = {{0}};
    train_store(&ws);
    Graph g;
    mc_graph_init(&g, "t");
    CU_ASSERT_TRUE(add_w(&g, "head.weight", 2, 3, 4, DT_F32) >= 0);
    CU_ASSERT_TRUE(add_w(&g, "head.bias", 1, 3, 0, DT_F32) >= 0);
    CU_ASSERT_TRUE(add_w(&g, "bn.weight", 1, 4, 0, DT_F32) >= 0);
    /* all present and right: note lists the unused ones but not num_batches_tracked */
    int saved;
    FILE *tmp;
    capture_stderr_begin(&saved, &tmp);
    int rc = mc_weights_check(&g, &ws, &err);
    char *note = capture_stderr_end(saved, tmp);
    CU_ASSERT_EQUAL(rc, 0);
    check_contains(note, "8 tensors in " FIX "train.pth are not used by the model: A_logs, conv.weight, "
                         "conv.bias, bn.bias, bn.running_mean, bn.running_var, ln_1.weight, ln_1.bias\n");
    CU_ASSERT_PTR_NULL(strstr(note, "num_batches_tracked"));
    CU_ASSERT_TRUE(mc_weights_find(&ws, "head.weight")->used);
    CU_ASSERT_FALSE(mc_weights_find(&ws, "conv.bias")->used);
    free(note);
    /* problems: all of them in one message */
    CU_ASSERT_TRUE(add_w(&g, "layers.0.blocks.0.ln_1.weight", 1, 64, 0, DT_F32) >= 0);
    CU_ASSERT_TRUE(add_w(&g, "A_logs", 1, 4, 0, DT_F32) >= 0);   /* file has [4,1]: strict */
    CU_ASSERT_TRUE(add_w(&g, "conv.bias", 2, 4, 1, DT_F32) >= 0);
    CU_ASSERT_TRUE(add_w(&g, "missing2", 2, 1000, 512, DT_F32) >= 0);
    CU_ASSERT_TRUE(add_w(&g, "bn.num_batches_tracked", 0, 0, 0, DT_F32) >= 0);
    rc = mc_weights_check(&g, &ws, &err);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "weights " FIX "train.pth: 5 problems:\n"
                           "  missing: layers.0.blocks.0.ln_1.weight [64]\n"
                           "  shape mismatch: A_logs expected [4] got [4,1]\n"
                           "  shape mismatch: conv.bias expected [4,1] got [4]\n"
                           "  missing: missing2 [1000,512]\n"
                           "  type mismatch: bn.num_batches_tracked expected f32 got i64");
    mc_graph_free(&g);
    mc_weights_free(&ws);
}

/* ---- mmengine layout (mmseg/mmdet checkpoints) */

/* {'meta': {'seed': 0, 'dataset_meta': {'classes': (...), 'palette': [[r, g, b], ...]}},
 *  'state_dict': {'backbone.w', 'decode_head.d', 'neck.n', 'auxiliary_head.a', 'rpn_head.r',
 *                 'roi_head.s', 'auxiliary_head.cfg': 3 (not a tensor)},
 *  'message_hub': <mmengine.logging.message_hub.MessageHub with state>, 'optimizer': {},
 *  'param_schedulers': [{}]}
 * classes: ncls names ("#" puts an integer there; ncls < 0: no "classes");
 * pal: npal rows of ncomp integers (npal < 0: no "palette"). */
static Buf
mm_archive(const char *const *classes, int ncls, const int *pal, int npal, int ncomp)
{
    int sz[1] = {2}, st[1] = {1};
    static const char *const keys[] = {"backbone.w", "decode_head.d", "neck.n", "auxiliary_head.a", "rpn_head.r",
                                       "roi_head.s"};
    Buf pk = {0};
    put8(&pk, 0x80); put8(&pk, 2); put8(&pk, '}'); put8(&pk, '(');
    pk_str(&pk, "meta"); put8(&pk, '}'); put8(&pk, '(');
    pk_str(&pk, "seed"); pk_int(&pk, 0);
    pk_str(&pk, "dataset_meta"); put8(&pk, '}'); put8(&pk, '(');
    if (ncls >= 0) {
        pk_str(&pk, "classes"); put8(&pk, '(');
        for (int i = 0; i < ncls; i++) {
            if (strcmp(classes[i], "#") == 0) pk_int(&pk, 7);
            else pk_str(&pk, classes[i]);
        }
        put8(&pk, 't');
    }
    if (npal >= 0) {
        pk_str(&pk, "palette"); put8(&pk, ']'); put8(&pk, '(');
        for (int i = 0; i < npal; i++) {
            put8(&pk, ']'); put8(&pk, '(');
            for (int k = 0; k < ncomp; k++) pk_int(&pk, pal[i * ncomp + k]);
            put8(&pk, 'e');
        }
        put8(&pk, 'e');
    }
    put8(&pk, 'u'); put8(&pk, 'u');
    pk_str(&pk, "state_dict"); put8(&pk, '}'); put8(&pk, '(');
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        pk_str(&pk, keys[i]);
        pk_tensor(&pk, "FloatStorage", "0", 2, 0, sz, st, 1);
    }
    pk_str(&pk, "auxiliary_head.cfg"); pk_int(&pk, 3);
    put8(&pk, 'u');
    pk_str(&pk, "message_hub"); pk_glob(&pk, "mmengine.logging.message_hub", "MessageHub"); put8(&pk, ')');
    put8(&pk, 0x81); put8(&pk, '}'); pk_str(&pk, "_log_scalars"); put8(&pk, '}'); put8(&pk, 's'); put8(&pk, 'b');
    pk_str(&pk, "optimizer"); put8(&pk, '}');
    pk_str(&pk, "param_schedulers"); put8(&pk, ']'); put8(&pk, '}'); put8(&pk, 'a');
    put8(&pk, 'u'); put8(&pk, '.');
    float data[2] = {4, 5};
    ZEnt e[2] = {{"ckpt/data.pkl", pk.p, pk.n, 0}, {"ckpt/data/0", (uint8_t *)data, 8, 0}};
    Buf z = make_zip(e, 2);
    free(pk.p);
    return z;
}

static void
test_mmengine(void)
{
    static const char *const cls[] = {"wall", "sky \xc3\xa9"};
    static const int pal[] = {1, 2, 3, 250, 255, 0};
    Buf z = mm_archive(cls, 2, pal, 2, 3);
    WeightStore ws;
    McErr err = {{0}};
    mc_weights_init(&ws);
    int saved;
    FILE *tmp;
    capture_stderr_begin(&saved, &tmp);
    int rc = mc_pth_load_mem(z.p, z.n, "mm.pth", &ws, &err);
    char *note = capture_stderr_end(saved, tmp);
    if (rc) fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(note, "mambac: note: mm.pth: skipped 4 tensors of auxiliary_head, neck, rpn_head, "
                                 "roi_head (not part of this model)\n");
    free(note);
    CU_ASSERT_EQUAL(ws.n, 2);
    CU_ASSERT_PTR_NOT_NULL(mc_weights_find(&ws, "w"));            /* backbone. stripped */
    CU_ASSERT_PTR_NOT_NULL(mc_weights_find(&ws, "decode_head.d")); /* kept as it is */
    CU_ASSERT_EQUAL_FATAL(ws.nclasses, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ws.classes);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ws.palette);
    CU_ASSERT_STRING_EQUAL(ws.classes[0], "wall");
    CU_ASSERT_STRING_EQUAL(ws.classes[1], "sky \xc3\xa9");
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(ws.palette[i / 3][i % 3], pal[i]);
    /* a second file without dataset_meta keeps them; one with classes only replaces them */
    Buf z2 = mm_archive(NULL, -1, NULL, -1, 3);
    CU_ASSERT_EQUAL(mc_pth_load_mem(z2.p, z2.n, "mm2.pth", &ws, &err), 0);
    CU_ASSERT_EQUAL(ws.nclasses, 2);
    free(z2.p);
    z2 = mm_archive(cls + 1, 1, NULL, -1, 3);
    CU_ASSERT_EQUAL(mc_pth_load_mem(z2.p, z2.n, "mm3.pth", &ws, &err), 0);
    CU_ASSERT_EQUAL_FATAL(ws.nclasses, 1);
    CU_ASSERT_STRING_EQUAL(ws.classes[0], "sky \xc3\xa9");
    CU_ASSERT_PTR_NULL(ws.palette);
    free(z2.p);
    mc_weights_free(&ws); /* frees the classes (ASan/valgrind see leaks) */
    CU_ASSERT_PTR_NULL(ws.classes);
    CU_ASSERT_EQUAL(ws.nclasses, 0);
    free(z.p);
}

static void
test_mmengine_bad_meta(void)
{
    static const char *const cls[] = {"wall", "sky"}, *const notstr[] = {"wall", "#"};
    static const int pal[] = {1, 2, 3, 4, 5, 6}, big[] = {1, 2, 3, 4, 256, 6}, neg[] = {1, -2, 3, 4, 5, 6};
    struct { const char *const *cls; int ncls; const int *pal; int npal, ncomp; const char *want; } c[] = {
        {cls, 2, pal, 1, 3, "meta.dataset_meta.palette has 1 colour for 2 classes"},
        {cls, 2, pal, 3, 2, "meta.dataset_meta.palette has 3 colours for 2 classes"},
        {cls, 2, big, 2, 3, "meta.dataset_meta.palette[1] is not [r, g, b] with integers 0..255"},
        {cls, 2, neg, 2, 3, "meta.dataset_meta.palette[0] is not [r, g, b]"},
        {cls, 2, pal, 2, 2, "meta.dataset_meta.palette[0] is not [r, g, b]"},
        {cls, 1, pal, 1, 4, "meta.dataset_meta.palette[0] is not [r, g, b]"},
        {notstr, 2, pal, 2, 3, "meta.dataset_meta.classes[1] is not a class name"},
        {NULL, -1, pal, 2, 3, "meta.dataset_meta has a palette but no classes"},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        Buf z = mm_archive(c[i].cls, c[i].ncls, c[i].pal, c[i].npal, c[i].ncomp);
        mem_fail(1, z.p, z.n, c[i].want);
        free(z.p);
    }
}

/* The missing-weight message names the likely cause: a classification
 * checkpoint for a backbone, a segmentation one for a classifier. */
static void
test_check_kind_of_checkpoint(void)
{
    WeightStore ws;
    McErr err = {{0}};
    train_store(&ws);
    Graph g;
    mc_graph_init(&g, "t");
    CU_ASSERT_TRUE(add_w(&g, "bn.weight", 1, 4, 0, DT_F32) >= 0);
    for (int i = 0; i < 2; i++) {
        char k[32];
        snprintf(k, sizeof k, "outnorm%d.weight", i);
        CU_ASSERT_TRUE(add_w(&g, k, 1, 4, 0, DT_F32) >= 0);
        snprintf(k, sizeof k, "outnorm%d.bias", i);
        CU_ASSERT_TRUE(add_w(&g, k, 1, 4, 0, DT_F32) >= 0);
    }
    CU_ASSERT_EQUAL(mc_weights_check(&g, &ws, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "weights " FIX "train.pth: no outnorm0.weight, outnorm0.bias, outnorm1.weight, "
                           "outnorm1.bias: this is a classification checkpoint; a backbone (MODEL.BACKBONE) needs "
                           "the outnorm{i} weights of a detection/segmentation checkpoint");
    /* another problem too: the list, then the cause */
    CU_ASSERT_TRUE(add_w(&g, "A_logs", 1, 4, 0, DT_F32) >= 0);
    CU_ASSERT_EQUAL(mc_weights_check(&g, &ws, &err), -1);
    check_contains(err.msg, "5 problems:\n  missing: outnorm0.weight [4]\n");
    check_contains(err.msg, "\n  this is a classification checkpoint; ");
    /* a checkpoint with other outnorm weights (other OUT_INDICES): no such claim */
    Shape s4 = {.rank = 1, .d = {4}};
    CU_ASSERT_PTR_NOT_NULL(mc_weights_put(&ws, "outnorm3.weight", DT_F32, DT_F32, &s4, calloc(4, 4)));
    CU_ASSERT_EQUAL(mc_weights_check(&g, &ws, &err), -1);
    CU_ASSERT_PTR_NULL(strstr(err.msg, "classification"));
    check_contains(err.msg, "missing: outnorm1.bias [4]");
    mc_graph_free(&g);
    /* a segmentation checkpoint (decode_head, no norm/head) for a classifier */
    mc_graph_init(&g, "c");
    CU_ASSERT_TRUE(add_w(&g, "bn.weight", 1, 4, 0, DT_F32) >= 0);
    CU_ASSERT_TRUE(add_w(&g, "norm.weight", 1, 4, 0, DT_F32) >= 0);
    CU_ASSERT_TRUE(add_w(&g, "norm.bias", 1, 4, 0, DT_F32) >= 0);
    CU_ASSERT_EQUAL(mc_weights_check(&g, &ws, &err), -1); /* outnorm3 is there */
    CU_ASSERT_STRING_EQUAL(err.msg, "weights " FIX "train.pth: no norm.weight, norm.bias: this is a "
                           "detection/segmentation checkpoint (backbone outnorm{i} or decode_head weights, no "
                           "classifier norm/head); a classifier needs a classification checkpoint, a backbone or "
                           "segmentation model (MODEL.BACKBONE) takes this one");
    mc_weights_free(&ws);
    train_store(&ws);
    CU_ASSERT_EQUAL(mc_weights_check(&g, &ws, &err), -1); /* a classifier's checkpoint: plain list */
    CU_ASSERT_STRING_EQUAL(err.msg, "weights " FIX "train.pth: 2 problems:\n  missing: norm.weight [4]\n"
                           "  missing: norm.bias [4]");
    CU_ASSERT_PTR_NOT_NULL(mc_weights_put(&ws, "decode_head.conv_seg.bias", DT_F32, DT_F32, &s4, calloc(4, 4)));
    CU_ASSERT_EQUAL(mc_weights_check(&g, &ws, &err), -1);
    check_contains(err.msg, "no norm.weight, norm.bias: this is a detection/segmentation checkpoint");
    mc_graph_free(&g);
    mc_weights_free(&ws);
}

static double
mean_of(const WTensor *t, double *sd, float *mn, float *mx)
{
    int64_t n = mc_shape_numel(&t->shape);
    double s = 0, s2 = 0;
    const float *f = t->data;
    *mn = f[0], *mx = f[0];
    for (int64_t i = 0; i < n; i++) {
        s += f[i], s2 += (double)f[i] * f[i];
        if (f[i] < *mn) *mn = f[i];
        if (f[i] > *mx) *mx = f[i];
    }
    *sd = sqrt(s2 / n - (s / n) * (s / n));
    return s / n;
}

static void
test_random(void)
{
    Graph g;
    mc_graph_init(&g, "r");
    const char *sa = "layers.0.blocks.0.self_attention.";
    char k[128];
    struct { const char *key; int rank; int64_t d0, d1; float lo, hi; double sd; } c[] = {
        {"A_logs", 2, 512, 1, (float)log(0.5), (float)log(4.0), -1},
        {"Ds", 1, 512, 0, 0.5f, 1.5f, -1},
        {"dt_projs_bias", 1, 512, 0, (float)log(expm1(1e-3)), (float)log(expm1(1e-1)), -1},
        {"alpha", 1, 3, 0, 0.3f, 1.2f, -1},
        {"norm.weight", 1, 512, 0, 0.8f, 1.2f, -1},
        {"bn.running_var", 1, 512, 0, 0.5f, 2.0f, -1},
        {"ln_1.weight", 1, 512, 0, 0.8f, 1.2f, -1},
        {"head.weight", 2, 100, 256, -1, 1, 1.0 / 16},
        {"head.bias", 1, 4096, 0, -1, 1, 0.02},
        {"x_proj_weight", 2, 40, 400, -1, 1, 0.05},
        {"other", 2, 64, 64, -1, 1, 0.02},
    };
    int nc = sizeof c / sizeof *c;
    for (int i = 0; i < nc; i++) {
        snprintf(k, sizeof k, "%s%s", sa, c[i].key);
        CU_ASSERT_TRUE(add_w(&g, k, c[i].rank, c[i].d0, c[i].d1, DT_F32) >= 0);
    }
    CU_ASSERT_TRUE(add_w(&g, "blk.state_fusion.kernel_3_1", 2, 64, 9, DT_F32) >= 0);
    CU_ASSERT_TRUE(add_w(&g, "bn.num_batches_tracked", 0, 0, 0, DT_I64) >= 0);
    WeightStore a, b, d;
    mc_weights_init(&a); mc_weights_init(&b); mc_weights_init(&d);
    mc_weights_random(&g, &a, 42);
    mc_weights_random(&g, &b, 42);
    mc_weights_random(&g, &d, 43);
    CU_ASSERT_EQUAL_FATAL(a.n, nc + 2);
    int same = 1, diff = 0;
    for (int i = 0; i < a.n; i++) {
        CU_ASSERT_STRING_EQUAL(a.t[i].name, b.t[i].name);
        same &= a.t[i].nbytes == b.t[i].nbytes && memcmp(a.t[i].data, b.t[i].data, a.t[i].nbytes) == 0;
        diff += a.t[i].nbytes && memcmp(a.t[i].data, d.t[i].data, a.t[i].nbytes) != 0;
    }
    CU_ASSERT_TRUE(same);
    CU_ASSERT_EQUAL(diff, nc + 1);
    for (int i = 0; i < nc; i++) {
        snprintf(k, sizeof k, "%s%s", sa, c[i].key);
        WTensor *t = mc_weights_find(&a, k);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        double sd;
        float mn, mx;
        double m = mean_of(t, &sd, &mn, &mx);
        if (c[i].sd < 0) {
            if (mn < c[i].lo - 1e-6f || mx > c[i].hi + 1e-6f)
                fprintf(stderr, "\n  %s: [%g, %g] outside [%g, %g]\n", c[i].key, mn, mx, c[i].lo, c[i].hi);
            CU_ASSERT_TRUE(mn >= c[i].lo - 1e-6f && mx <= c[i].hi + 1e-6f);
            if (t->shape.d[0] > 100) CU_ASSERT_TRUE(mx - mn > 0.7 * (c[i].hi - c[i].lo));
        } else {
            if (fabs(sd / c[i].sd - 1) > 0.1) fprintf(stderr, "\n  %s: sd %g want %g\n", c[i].key, sd, c[i].sd);
            CU_ASSERT_TRUE(fabs(sd / c[i].sd - 1) < 0.1);
            CU_ASSERT_TRUE(fabs(m) < 4 * c[i].sd / sqrt((double)mc_shape_numel(&t->shape)) + 1e-3);
        }
    }
    double sd;
    float mn, mx;
    mean_of(mc_weights_find(&a, "blk.state_fusion.kernel_3_1"), &sd, &mn, &mx);
    CU_ASSERT_TRUE(fabs(sd / 0.3 - 1) < 0.15);
    CU_ASSERT_EQUAL(*(int64_t *)mc_weights_find(&a, "bn.num_batches_tracked")->data, 0);
    mc_weights_free(&a); mc_weights_free(&b); mc_weights_free(&d);
    mc_graph_free(&g);
}

static void
test_crc32(void)
{
    /* the standard check value */
    CU_ASSERT_EQUAL(mc_crc32(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
    uint8_t buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (uint8_t)(i * 7 + 3);
    for (int n = 0; n < 20; n++) CU_ASSERT_EQUAL(mc_crc32(0, buf + n, 1000 - 2 * n), crc_ref(buf + n, 1000 - 2 * n));
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"crc32", test_crc32},
    {"store", test_store},
    {"train_checkpoint", test_train},
    {"views", test_views},
    {"dtypes_module_prefix", test_dtypes},
    {"orig_dtypes", test_orig_dtypes},
    {"zip64", test_zip64},
    {"safetensors", test_safetensors},
    {"safetensors_edge", test_safetensors_ok_edge},
    {"deflate_rejected", test_deflate_rejected},
    {"truncate_pth", test_truncate_pth},
    {"truncate_safetensors", test_truncate_st},
    {"flip_bytes", test_flip_bytes},
    {"bad_central_crc", test_bad_central_crc},
    {"foreign_files", test_foreign_files},
    {"handmade_tensor", test_handmade_tensor},
    {"bad_tensors", test_bad_tensors},
    {"bad_pickles", test_bad_pickles},
    {"selection", test_selection},
    {"byteorder", test_byteorder},
    {"bad_safetensors", test_bad_safetensors},
    {"check", test_check},
    {"check_kind_of_checkpoint", test_check_kind_of_checkpoint},
    {"mmengine", test_mmengine},
    {"mmengine_bad_meta", test_mmengine_bad_meta},
    {"random", test_random},
};

MC_UNIT_MAIN("weights", tests)
