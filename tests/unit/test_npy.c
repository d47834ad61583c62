/* tests/unit/test_npy.c -- the runtime's .npy reader/writer (runtime/npy.c).
 *
 * Takes the .npy fixtures that numpy wrote (unit/data/a_*.npy, see
 * make_fixtures.py: a = (arange(12).reshape(3,4) - 5) / 4 in several
 * dtypes, byte orders and format versions) and hand-made headers.  Checks
 * values, shapes, the 64-byte aligned '<f4' header written back, and that
 * each malformed input (every truncation, bad magic/version/dict/shape,
 * unsupported dtype, fortran order, size mismatch) fails with a message
 * naming the file.  Run from tests/ (ctest does).
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/mc_file.h"
#include "runtime/mc_npy.h"

#define FIX "unit/data/"

static void
check_contains(const char *msg, const char *want)
{
    if (!strstr(msg, want)) fprintf(stderr, "\n  message: %s\n  missing: %s\n", msg, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
}

static double
a_val(int i) { return (i - 5) / 4.0; }

static void
read_ok(const char *file, McNpy *a)
{
    char em[256] = "";
    int rc = mc_npy_read(file, a, em, sizeof em);
    if (rc) fprintf(stderr, "\n  %s\n", em);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
}

static void
test_types(void)
{
    static const char *files[] = {FIX "a_f4.npy", FIX "a_f8.npy", FIX "a_be.npy", FIX "a_v2.npy"};
    for (int f = 0; f < 4; f++) {
        McNpy a;
        read_ok(files[f], &a);
        CU_ASSERT_EQUAL(a.type, f == 1 ? MC_NPY_F64 : MC_NPY_F32);
        CU_ASSERT_EQUAL(a.rank, 2);
        CU_ASSERT_EQUAL(a.shape[0], 3);
        CU_ASSERT_EQUAL(a.shape[1], 4);
        CU_ASSERT_EQUAL(a.nbytes, f == 1 ? 96u : 48u);
        for (int i = 0; i < 12; i++) {
            double v = f == 1 ? ((double *)a.data)[i] : ((float *)a.data)[i];
            CU_ASSERT_EQUAL(v, a_val(i));
        }
        mc_npy_free(&a);
    }
    McNpy a;
    read_ok(FIX "a_i8.npy", &a);
    CU_ASSERT_EQUAL(a.type, MC_NPY_I64);
    CU_ASSERT_EQUAL(((int64_t *)a.data)[2], (int64_t)1 << 40);
    CU_ASSERT_EQUAL(((int64_t *)a.data)[1], -2);
    mc_npy_free(&a);
    read_ok(FIX "a_i4.npy", &a);
    CU_ASSERT_EQUAL(a.type, MC_NPY_I32);
    CU_ASSERT_EQUAL(a.rank, 1);
    CU_ASSERT_EQUAL(((int32_t *)a.data)[1], -8);
    mc_npy_free(&a);
    read_ok(FIX "a_u1.npy", &a);
    CU_ASSERT_EQUAL(a.type, MC_NPY_U8);
    CU_ASSERT_EQUAL(((uint8_t *)a.data)[1], 255);
    mc_npy_free(&a);
    read_ok(FIX "a_scalar.npy", &a);
    CU_ASSERT_EQUAL(a.rank, 0);
    CU_ASSERT_EQUAL(((float *)a.data)[0], 1.25f);
    mc_npy_free(&a);
    read_ok(FIX "a_empty.npy", &a);
    CU_ASSERT_EQUAL(a.rank, 2);
    CU_ASSERT_EQUAL(a.shape[0], 0);
    CU_ASSERT_EQUAL(a.shape[1], 5);
    CU_ASSERT_EQUAL(a.nbytes, 0u);
    mc_npy_free(&a);
}

static void
file_fail(const char *file, const char *want)
{
    McNpy a;
    char em[256] = "";
    CU_ASSERT_EQUAL(mc_npy_read(file, &a, em, sizeof em), -1);
    check_contains(em, file);
    check_contains(em, want);
    CU_ASSERT_PTR_NULL(a.data);
}

static void
test_rejected_files(void)
{
    file_fail(FIX "a_fortran.npy", "fortran_order");
    file_fail(FIX "a_f2.npy", "unsupported dtype '<f2'");
    file_fail(FIX "no_such.npy", "cannot open");
    file_fail(FIX "small.safetensors", "not a .npy file");
    file_fail(FIX, "not a regular file (a directory)");
}

static void
mem_fail(const char *hdr, size_t datan, const char *want)
{
    size_t hl = strlen(hdr), n = 10 + hl + datan;
    uint8_t *b = calloc(n, 1);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)(hl & 255);
    b[9] = (uint8_t)(hl >> 8);
    memcpy(b + 10, hdr, hl);
    McNpy a;
    char em[256] = "";
    int rc = mc_npy_read_mem(b, n, "hand.npy", &a, em, sizeof em);
    CU_ASSERT_EQUAL(rc, -1);
    check_contains(em, "hand.npy");
    if (want) check_contains(em, want);
    if (rc == 0) mc_npy_free(&a);
    free(b);
}

static void
test_bad_headers(void)
{
    mem_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 4, "needs 8");
    mem_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 12, "trailing bytes");
    mem_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }\n", 8, "tuple");
    mem_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n", 8, "tuple");
    mem_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", 8, "too large");
    mem_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }\n", 8,
             "shape is too large");
    mem_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }\n", 4, "rank");
    mem_fail("{'descr': '<f4', 'fortran_order': False}\n", 4, "lacks");
    mem_fail("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}\n", 4, "repeated");
    mem_fail("{'descr': '<f4', 'fortran_order': 0, 'shape': ()}\n", 4, "True or False");
    mem_fail("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': ()}\n", 4, "structured");
    mem_fail("{'descr': '|f4', 'fortran_order': False, 'shape': ()}\n", 4, "unsupported dtype");
    mem_fail("{'descr': '<c8', 'fortran_order': False, 'shape': ()}\n", 8, "unsupported dtype");
    mem_fail("{'descr': '<f4', 'fortran_order': False, 'shape': ()} x\n", 4, "trailing characters");
    mem_fail("{'descr': '<f4', 'fortran_order': False, 'shape': () 'x': 1}\n", 4, "expected ','");
    mem_fail("['descr']\n", 4, "not a dict");
    mem_fail("{descr: '<f4'}\n", 4, "quoted key");
    mem_fail("{'descr': '<f4\n", 4, "'descr' must be a string");
    /* bad magic, version, announced header length */
    McNpy a;
    char em[256];
    CU_ASSERT_EQUAL(mc_npy_read_mem((const uint8_t *)"\x93NUMPX\x01\x00\x00\x00", 10, "m.npy", &a, em, sizeof em), -1);
    check_contains(em, "m.npy: not a .npy file");
    CU_ASSERT_EQUAL(mc_npy_read_mem((const uint8_t *)"\x93NUMPY\x04\x00\x00\x00", 10, "v.npy", &a, em, sizeof em), -1);
    check_contains(em, "format version 4.0");
    CU_ASSERT_EQUAL(mc_npy_read_mem((const uint8_t *)"\x93NUMPY\x01\x00\xff\x00{", 11, "t.npy", &a, em, sizeof em), -1);
    check_contains(em, "truncated");
    CU_ASSERT_EQUAL(mc_npy_read_mem((const uint8_t *)"", 0, "e.npy", &a, em, sizeof em), -1);
    check_contains(em, "e.npy");
}

static void
test_truncate_all(void)
{
    static const char *files[] = {FIX "a_f4.npy", FIX "a_v2.npy", FIX "a_i8.npy", FIX "a_scalar.npy"};
    for (int f = 0; f < 4; f++) {
        FILE *fp = fopen(files[f], "rb");
        CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
        uint8_t buf[512];
        size_t n = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        int bad = 0;
        for (size_t k = 0; k < n; k++) {
            uint8_t *c = malloc(k ? k : 1);
            memcpy(c, buf, k);
            McNpy a;
            char em[256] = "";
            int rc = mc_npy_read_mem(c, k, "cut.npy", &a, em, sizeof em);
            if (rc != -1 || strncmp(em, "cut.npy", 7) != 0) bad++;
            if (rc == 0) mc_npy_free(&a);
            free(c);
        }
        CU_ASSERT_EQUAL(bad, 0);
    }
}

static void
test_write(void)
{
    const char *path = "unit_npy_write_tmp.npy";
    float d[6] = {1, -2, 3.5f, 0, 1e-20f, 7};
    int64_t shapes[3][3] = {{2, 3}, {6}, {1, 2, 3}};
    int ranks[3] = {2, 1, 3};
    const char *want[3] = {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                           "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }",
                           "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }"};
    for (int k = 0; k < 3; k++) {
        char em[256] = "";
        CU_ASSERT_EQUAL_FATAL(mc_npy_write_f32(path, d, ranks[k], shapes[k], em, sizeof em), 0);
        FILE *f = fopen(path, "rb");
        uint8_t b[256];
        size_t n = fread(b, 1, sizeof b, f);
        fclose(f);
        size_t h = 10 + strlen(want[k]) + 1 <= 64 ? 64 : 128; /* header padded to 64 bytes */
        CU_ASSERT_EQUAL_FATAL(n, h + 24u);
        CU_ASSERT_EQUAL(memcmp(b, "\x93NUMPY\x01\x00", 8), 0);
        CU_ASSERT_EQUAL((size_t)(b[8] | b[9] << 8), h - 10);
        CU_ASSERT_EQUAL(memcmp(b + 10, want[k], strlen(want[k])), 0);
        CU_ASSERT_EQUAL(b[h - 1], '\n');
        for (size_t i = 10 + strlen(want[k]); i < h - 1; i++) CU_ASSERT_EQUAL(b[i], ' ');
        CU_ASSERT_EQUAL(memcmp(b + h, d, 24), 0);
        McNpy a;
        read_ok(path, &a);
        CU_ASSERT_EQUAL(a.rank, ranks[k]);
        CU_ASSERT_EQUAL(memcmp(a.data, d, 24), 0);
        mc_npy_free(&a);
    }
    /* a scalar and a bad path */
    char em[256] = "";
    CU_ASSERT_EQUAL(mc_npy_write_f32(path, d, 0, NULL, em, sizeof em), 0);
    McNpy a;
    read_ok(path, &a);
    CU_ASSERT_EQUAL(a.rank, 0);
    CU_ASSERT_EQUAL(((float *)a.data)[0], 1.0f);
    mc_npy_free(&a);
    remove(path);
    CU_ASSERT_EQUAL(mc_npy_write_f32("no/such/dir/x.npy", d, 1, shapes[1], em, sizeof em), -1);
    check_contains(em, "no/such/dir/x.npy");
}

/* A scratch path under $TMPDIR (or /tmp). */
static const char *
tmp_path(char *buf, size_t n, const char *leaf)
{
    const char *d = getenv("TMPDIR");
    snprintf(buf, n, "%s/unit_npy_%d_%s", d && *d ? d : "/tmp", (int)getpid(), leaf);
    return buf;
}

static long
max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Issue 15 row 2: a FIFO (nobody writing), a device or a directory is
 * refused at once, naming what it is; the old reader blocked in fopen. */
static void
test_not_regular(void)
{
    char fifo[256], em[256];
    tmp_path(fifo, sizeof fifo, "fifo");
    unlink(fifo);
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    alarm(20); /* a hang fails the suite instead of blocking ctest */
    static const struct { const char *path, *kind; } cases[] = {
        {NULL, "(a FIFO)"}, {"/dev/zero", "(a character device)"}, {"/tmp", "(a directory)"}};
    for (int i = 0; i < 3; i++) {
        const char *p = cases[i].path ? cases[i].path : fifo;
        McNpy a;
        em[0] = 0;
        CU_ASSERT_EQUAL(mc_npy_read(p, &a, em, sizeof em), -1);
        check_contains(em, "not a regular file");
        check_contains(em, cases[i].kind);
        check_contains(em, p);
        size_t len;
        CU_ASSERT_PTR_NULL(mc_file_read_all(p, "config", 0, &len, em, sizeof em));
        check_contains(em, cases[i].kind);
    }
    alarm(0);
    unlink(fifo);
    /* the size cap */
    char big[256];
    tmp_path(big, sizeof big, "big");
    FILE *f = fopen(big, "wb");
    fputs("0123456789", f);
    fclose(f);
    size_t len;
    CU_ASSERT_PTR_NULL(mc_file_read_all(big, "config", 8, &len, em, sizeof em));
    check_contains(em, "10 bytes, more than the 8 bytes limit for a config");
    char *t = mc_file_read_all(big, "config", 10, &len, em, sizeof em);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(len, 10u);
    CU_ASSERT_STRING_EQUAL(t, "0123456789");
    free(t);
    unlink(big);
}

/* Issue 15 row 7: a 4 GiB file (sparse) that is not a .npy, or whose size
 * does not match its header, is refused without reading its data: the
 * old reader read all 4 GiB first. */
static void
test_huge_files(void)
{
    char p[256], em[256];
    tmp_path(p, sizeof p, "huge");
    static const char hdr[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, "
                              "'shape': (1, 3, 224, 224), }";
    for (int k = 0; k < 2; k++) {
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        CU_ASSERT_FATAL(fd >= 0);
        if (k == 1) { /* a valid header, then 4 GiB of data for a 600 KB shape */
            char h[128];
            memset(h, ' ', sizeof h);
            memcpy(h, hdr, sizeof hdr - 1);
            h[127] = '\n';
            CU_ASSERT_EQUAL(write(fd, h, sizeof h), (ssize_t)sizeof h);
        }
        CU_ASSERT_EQUAL_FATAL(ftruncate(fd, (off_t)4 << 30), 0);
        close(fd);
        long rss0 = max_rss_kb();
        McNpy a;
        em[0] = 0;
        CU_ASSERT_EQUAL(mc_npy_read(p, &a, em, sizeof em), -1);
        check_contains(em, k ? "shape needs 602112" : "no \\x93NUMPY magic");
        CU_ASSERT(max_rss_kb() - rss0 < 64 * 1024);
    }
    unlink(p);
}

/* Issue 15 rows 14 and 20: shapes whose sizes overflow, and a file that
 * ends inside the header, get precise messages. */
static void
test_overflow_and_truncation(void)
{
    char em[256];
    McNpy a;
    static const char six[] = "\x93NUMPY";
    CU_ASSERT_EQUAL(mc_npy_read_mem((const uint8_t *)six, 6, "six.npy", &a, em, sizeof em), -1);
    check_contains(em, "six.npy: truncated .npy file: the header is incomplete");
    static const char *shapes[] = {"(0, 4611686018427387904, 4611686018427387904)",
                                   "(4611686018427387904, 4611686018427387904, 0)",
                                   "(0, 2305843009213693952)"};
    for (int i = 0; i < 3; i++) {
        uint8_t b[256];
        int n = snprintf((char *)b + 10, sizeof b - 10,
                         "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }\n", shapes[i]);
        memcpy(b, "\x93NUMPY\x01\x00", 8);
        b[8] = (uint8_t)n;
        b[9] = 0;
        em[0] = 0;
        CU_ASSERT_EQUAL(mc_npy_read_mem(b, (size_t)n + 10, "big.npy", &a, em, sizeof em), -1);
        check_contains(em, "big.npy: .npy shape is too large");
    }
    /* the shared helper itself */
    int64_t d[3] = {0, (int64_t)1 << 62, (int64_t)1 << 62};
    uint64_t numel, bytes;
    CU_ASSERT_EQUAL(mc_dims_numel(d, 3, 4, &numel, &bytes), -1);
    int64_t e[3] = {0, 1 << 20, 1 << 20};
    CU_ASSERT_EQUAL(mc_dims_numel(e, 3, 4, &numel, &bytes), 0);
    CU_ASSERT_EQUAL(numel, 0u);
    int64_t g[2] = {3, 5};
    CU_ASSERT_EQUAL(mc_dims_numel(g, 2, 8, &numel, &bytes), 0);
    CU_ASSERT_EQUAL(numel, 15u);
    CU_ASSERT_EQUAL(bytes, 120u);
    int64_t neg[1] = {-1};
    CU_ASSERT_EQUAL(mc_dims_numel(neg, 1, 1, &numel, &bytes), -1);
}

/* Issue 15 row 13: what a file names is printed with control characters,
 * C1 codes and invalid UTF-8 escaped; valid UTF-8 is kept. */
static void
test_escape(void)
{
    char o[64];
    CU_ASSERT_STRING_EQUAL(mc_str_escape(o, sizeof o, "a\x1b]0;x\x07" "b", 8), "a\\x1B]0;x\\x07b");
    CU_ASSERT_STRING_EQUAL(mc_str_escape(o, sizeof o, "caf\xc3\xa9 \xc2\x9b\xff\x7f", 10),
                           "caf\xc3\xa9 \\xC2\\x9B\\xFF\\x7F");
    CU_ASSERT_STRING_EQUAL(mc_str_escape(o, sizeof o, "\xc0\xaf\xed\xa0\x80", 5),
                           "\\xC0\\xAF\\xED\\xA0\\x80");
    CU_ASSERT_STRING_EQUAL(mc_str_escape(o, 12, "0123456789abcdef", 16), "01234567...");
    CU_ASSERT_STRING_EQUAL(mc_str_escape(o, 12, "\n\n\n\n", 4), "\\x0A\\x0A...");
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"types", test_types},
    {"rejected_files", test_rejected_files},
    {"bad_headers", test_bad_headers},
    {"truncate_all", test_truncate_all},
    {"write", test_write},
    {"not_regular", test_not_regular},
    {"huge_files", test_huge_files},
    {"overflow_and_truncation", test_overflow_and_truncation},
    {"escape", test_escape},
};

MC_UNIT_MAIN("npy", tests)
