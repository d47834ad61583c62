/* tests/unit/test_npz.c -- the runtime's .npz writer (runtime/npy.c).
 *
 * Writes several float32 arrays with mc_npz_write_f32_out and reads the
 * file back with the zip reader of the checkpoint loader (frontend/zip.c,
 * which checks every member's CRC-32) and the .npy reader: names (made
 * member names), shapes (ranks 1 to 4, an empty array), values; the same
 * bytes twice; zip64 records (mc_npz_zip64_from lowered) read back the
 * same; the choice between .npy and .npz (mc_npz_output_kind) with its
 * messages; a full disk reported.  numpy reads these files too
 * (tests/e2e/test_outputs.py).  Run from tests/ (ctest does).
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend/zip.h"
#include "runtime/mc_npy.h"

static float a1[5] = {1, -2, 3.5f, 4, 1e30f};
static float a2[6] = {0.25f, 0.5f, 0.75f, 1, 1.25f, 1.5f};
static float a4[2 * 1 * 3 * 2];
static const int64_t s1[] = {5}, s2[] = {2, 3}, s4[] = {2, 1, 3, 2}, s0[] = {3, 0};

static int
write_npz(const char *path, const McNpzArray *a, int n)
{
    McOut o;
    char em[512];
    if (mc_out_open(&o, path, 0666, em, sizeof em)) return -1;
    int rc = mc_npz_write_f32_out(&o, a, n, em, sizeof em);
    if (rc) fprintf(stderr, "\n  %s\n", em);
    return rc;
}

/* member `name` of the zip z: an .npy of rank, shape and values want */
static void
check_member(ZipArchive *z, const char *name, int rank, const int64_t *shape, const float *want)
{
    ZipEntry *e = mc_zip_find(z, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    const uint8_t *d;
    size_t len = 0;
    McErr err;
    CU_ASSERT_EQUAL_FATAL(mc_zip_data(z, e, &d, &len, &err), 0); /* its CRC-32 checked */
    McNpy a;
    char em[512];
    CU_ASSERT_EQUAL_FATAL(mc_npy_read_mem(d, len, name, &a, em, sizeof em), 0);
    CU_ASSERT_EQUAL(a.type, MC_NPY_F32);
    CU_ASSERT_EQUAL_FATAL(a.rank, rank);
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        CU_ASSERT_EQUAL(a.shape[i], shape[i]);
        n *= shape[i];
    }
    CU_ASSERT(n == 0 || memcmp(a.data, want, (size_t)n * 4) == 0);
    mc_npy_free(&a);
}

/* path read back: the four arrays of write_four */
static void
check_four(const char *path)
{
    size_t len = 0;
    char *buf = unit_slurp(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    ZipArchive z;
    McErr err;
    CU_ASSERT_EQUAL_FATAL(mc_zip_open(&z, (const uint8_t *)buf, len, path, &err), 0);
    CU_ASSERT_EQUAL(z.n, 4);
    check_member(&z, "stage0.npy", 2, s2, a2);
    check_member(&z, "layers.0_out_x.npy", 1, s1, a1);
    check_member(&z, "feats-4.npy", 4, s4, a4);
    check_member(&z, "array.npy", 2, s0, NULL);
    mc_zip_close(&z);
    free(buf);
}

static int
write_four(const char *path)
{
    for (int i = 0; i < 12; i++) a4[i] = (float)i / 3.0f - 1.0f;
    const McNpzArray a[4] = {
        {"stage0", a2, 2, s2}, {"layers.0/out x", a1, 1, s1}, {"feats-4", a4, 4, s4}, {"", NULL, 2, s0}};
    return write_npz(path, a, 4);
}

static void
test_round_trip(void)
{
    char p1[64], p2[64];
    snprintf(p1, sizeof p1, "npz_a_%d.npz", (int)getpid());
    snprintf(p2, sizeof p2, "npz_b_%d.npz", (int)getpid());
    CU_ASSERT_EQUAL_FATAL(write_four(p1), 0);
    check_four(p1);
    /* the same arrays, the same bytes (no time in the headers) */
    CU_ASSERT_EQUAL_FATAL(write_four(p2), 0);
    size_t n1 = 0, n2 = 0;
    char *b1 = unit_slurp(p1, &n1), *b2 = unit_slurp(p2, &n2);
    CU_ASSERT(b1 && b2 && n1 == n2 && !memcmp(b1, b2, n1));
    free(b1);
    free(b2);
    unlink(p1);
    unlink(p2);
}

/* zip64 records (sizes, offsets, the end record) where the format needs
 * them: forced from 100 bytes on, the file still reads back */
static void
test_zip64(void)
{
    char p[64];
    snprintf(p, sizeof p, "npz_z_%d.npz", (int)getpid());
    mc_npz_zip64_from = 100;
    int rc = write_four(p);
    mc_npz_zip64_from = 0xffffffffu;
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    check_four(p);
    size_t len = 0;
    uint8_t *b = (uint8_t *)unit_slurp(p, &len);
    CU_ASSERT_FATAL(b && len > 98);
    /* the zip64 end record and locator before the end record, whose size and offset say "see zip64" */
    CU_ASSERT(!memcmp(b + len - 22, "PK\x05\x06", 4));
    CU_ASSERT(!memcmp(b + len - 42, "PK\x06\x07", 4));
    CU_ASSERT(!memcmp(b + len - 98, "PK\x06\x06", 4));
    CU_ASSERT(!memcmp(b + len - 10, "\xff\xff\xff\xff\xff\xff\xff\xff", 8));
    free(b);
    unlink(p);
}

static void
test_output_kind(void)
{
    char em[512];
    const char *names[3] = {"stage0", "stage1", "stage2"};
    CU_ASSERT_EQUAL(mc_npz_output_kind("y.npy", 1, names, em, sizeof em), 0);
    CU_ASSERT_EQUAL(mc_npz_output_kind("/dev/null", 1, names, em, sizeof em), 0);
    CU_ASSERT_EQUAL(mc_npz_output_kind("y.npz", 1, names, em, sizeof em), 1);
    CU_ASSERT_EQUAL(mc_npz_output_kind("d/feats.npz", 3, names, em, sizeof em), 1);
    CU_ASSERT_EQUAL(mc_npz_output_kind("feats.npy", 3, names, em, sizeof em), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(em, "feats.npy: the model has 3 outputs (stage0, stage1, stage2)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(em, ".npz"));
    const char *same[3] = {"a.b", "a b", "a_b"}; /* a b and a_b are both the member a_b */
    CU_ASSERT_EQUAL(mc_npz_output_kind("y.npz", 2, same, em, sizeof em), 1);
    CU_ASSERT_EQUAL(mc_npz_output_kind("y.npz", 3, same, em, sizeof em), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(em, "outputs 1 and 2 would both be the array 'a_b'"));
    const char *twice[2] = {"y", "y"};
    CU_ASSERT_EQUAL(mc_npz_output_kind("y.npz", 2, twice, em, sizeof em), -1);
    char m[16];
    mc_npz_member_name("", m, sizeof m);
    CU_ASSERT_STRING_EQUAL(m, "array");
    mc_npz_member_name("x/../y\n", m, sizeof m);
    CU_ASSERT_STRING_EQUAL(m, "x_.._y_");
}

static void
test_errors(void)
{
    char em[512];
    McOut o;
    const McNpzArray a[1] = {{"x", a1, 1, s1}};
    if (access("/dev/full", W_OK) == 0) { /* a write that fails: reported, not a success */
        CU_ASSERT_EQUAL_FATAL(mc_out_open(&o, "/dev/full", 0666, em, sizeof em), 0);
        CU_ASSERT_EQUAL(mc_npz_write_f32_out(&o, a, 1, em, sizeof em), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(em, "/dev/full"));
    }
    char p[64];
    snprintf(p, sizeof p, "npz_e_%d.npz", (int)getpid());
    CU_ASSERT_EQUAL_FATAL(mc_out_open(&o, p, 0666, em, sizeof em), 0);
    CU_ASSERT_EQUAL(mc_npz_write_f32_out(&o, a, 0, em, sizeof em), -1); /* no arrays: discarded */
    CU_ASSERT_NOT_EQUAL(access(p, F_OK), 0);
    CU_ASSERT_EQUAL_FATAL(mc_out_open(&o, p, 0666, em, sizeof em), 0);
    CU_ASSERT_EQUAL(mc_npy_write_arrays_out(&o, 0, (const McNpzArray[2]){a[0], a[0]}, 2, em, sizeof em), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(em, "a .npy holds one"));
    CU_ASSERT_NOT_EQUAL(access(p, F_OK), 0);
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"round_trip", test_round_trip},
    {"zip64", test_zip64},
    {"output_kind", test_output_kind},
    {"errors", test_errors},
};
MC_UNIT_MAIN("npz", tests)
