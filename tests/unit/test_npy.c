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
    file_fail(FIX, "cannot");
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
             "overflows");
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

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"types", test_types},
    {"rejected_files", test_rejected_files},
    {"bad_headers", test_bad_headers},
    {"truncate_all", test_truncate_all},
    {"write", test_write},
};

MC_UNIT_MAIN("npy", tests)
