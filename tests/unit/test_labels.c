/* tests/unit/test_labels.c -- class names and the best classes printed
 * (runtime/labels.c): labels files (CRLF, blanks, wrong counts, control
 * characters, each error at FILE:LINE), JSON strings (escapes, UTF-8 kept,
 * invalid bytes replaced), top-k order (NaN last, ties by index), the
 * printed probabilities against softmax values worked out by hand, the
 * JSON form, image lists (a directory's images sorted, other files left
 * out, an empty directory refused).  Run from tests/ (ctest does).
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/mc_labels.h"

static char path[128];

static const char *
write_tmp(const char *text)
{
    snprintf(path, sizeof path, "labels_%d.txt", (int)getpid());
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
    return path;
}

/* what f's memory stream holds, as a string (static) */
static char *
captured(FILE *f, char **buf)
{
    fflush(f);
    return *buf;
}

static void
test_read(void)
{
    McLabels l;
    char msg[512];
    CU_ASSERT_EQUAL_FATAL(mc_labels_read(write_tmp("cat\r\n  dog house \nbird"), 3, &l, msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(l.n, 3);
    CU_ASSERT_STRING_EQUAL(l.names[0], "cat");
    CU_ASSERT_STRING_EQUAL(l.names[1], "dog house");
    CU_ASSERT_STRING_EQUAL(l.names[2], "bird");
    mc_labels_free(&l);
    CU_ASSERT_EQUAL(mc_labels_read(write_tmp("a\nb\n"), 0, &l, msg, sizeof msg), 0); /* any count */
    CU_ASSERT_EQUAL(l.n, 2);
    mc_labels_free(&l);
    CU_ASSERT_EQUAL(mc_labels_read(write_tmp("a\n\nc\n"), 3, &l, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, ":2: an empty line"));
    CU_ASSERT_EQUAL(mc_labels_read(write_tmp("a\nb\n"), 3, &l, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "has 2 class names, the model has 3 classes"));
    CU_ASSERT_EQUAL(mc_labels_read(write_tmp("a\nb\nc\nd\n"), 3, &l, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "more than the model's 3 class names (line 4)"));
    CU_ASSERT_EQUAL(mc_labels_read(write_tmp("a\nb\x01x\n"), 2, &l, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, ":2: a control character (byte 0x01)"));
    CU_ASSERT_EQUAL(mc_labels_read(write_tmp(""), 0, &l, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "no class names"));
    char longline[600];
    memset(longline, 'x', 300);
    strcpy(longline + 300, "\n");
    CU_ASSERT_EQUAL(mc_labels_read(write_tmp(longline), 1, &l, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, ":1: a class name of 300 bytes (at most 255)"));
    unlink(path);
    CU_ASSERT_EQUAL(mc_labels_read(path, 1, &l, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, ": cannot open: "));
    CU_ASSERT_EQUAL(l.n, 0);
    CU_ASSERT_PTR_NULL(l.names);
}

static void
test_json_string(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mc_labels_json_string(f, "a\"b\\c\n\x7f\xc3\xa9\xff\xe2\x82");
    CU_ASSERT_STRING_EQUAL(captured(f, &buf), "\"a\\\"b\\\\c\\u000a\\u007f\xc3\xa9\\ufffd\\ufffd\\ufffd\"");
    fclose(f);
    free(buf);
}

static void
test_topk(void)
{
    const float x[6] = {1.0f, NAN, 3.0f, 3.0f, -1.0f, 2.0f};
    int64_t o[6];
    CU_ASSERT_EQUAL(mc_labels_topk(x, 6, 10, o), 6);
    const int64_t want[6] = {2, 3, 5, 0, 4, 1}; /* ties by index, NaN last */
    CU_ASSERT_EQUAL(memcmp(o, want, sizeof want), 0);
    CU_ASSERT_EQUAL(mc_labels_topk(x, 6, 2, o), 2);
    CU_ASSERT_EQUAL(mc_labels_topk(x, 0, 2, o), 0);
}

static void
test_print(void)
{
    /* logits ln 1, ln 2, ln 5, ln 2: softmax 0.1, 0.2, 0.5, 0.2 */
    const float y[8] = {0.0f, 0.6931472f, 1.6094379f, 0.6931472f, 0, 0, 0, 0};
    const char *const names[4] = {"tench", "gold fish", "shark", "ray"};
    const char *const files[2] = {"a.jpg", "b \"q\".png"};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int64_t printed = 0;
    CU_ASSERT_EQUAL(mc_labels_print_top(f, y, 2, 4, 3, names, files, 0, &printed), 0);
    CU_ASSERT_EQUAL(printed, 2);
    CU_ASSERT_STRING_EQUAL(captured(f, &buf), "a.jpg:\n  1. shark 50.0%\n  2. gold fish 20.0%\n  3. ray 20.0%\n"
                                              "b \"q\".png:\n  1. tench 25.0%\n  2. gold fish 25.0%\n"
                                              "  3. shark 25.0%\n");
    fclose(f);
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    printed = 5; /* a second batch: numbered on, a comma before it */
    CU_ASSERT_EQUAL(mc_labels_print_top(f, y, 1, 4, 1, NULL, NULL, 0, &printed), 0);
    CU_ASSERT_EQUAL(mc_labels_print_top(f, y, 1, 4, 1, NULL, NULL, 1, &printed), 0);
    CU_ASSERT_STRING_EQUAL(captured(f, &buf), "image 5:\n  1. class 2 50.0%\n"
                                              ",\n  {\"file\": null, \"top\": [{\"rank\": 1, \"class\": 2, \"name\": "
                                              "null, \"prob\": 0.5, \"logit\": 1.60944}]}");
    fclose(f);
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    printed = 0;
    mc_labels_json_begin(f);
    CU_ASSERT_EQUAL(mc_labels_print_top(f, y, 1, 4, 2, names, files + 1, 1, &printed), 0);
    mc_labels_json_end(f, 1.5);
    CU_ASSERT_STRING_EQUAL(captured(f, &buf),
                           "{\"images\": [\n  {\"file\": \"b \\\"q\\\".png\", \"top\": [{\"rank\": 1, \"class\": 2, "
                           "\"name\": \"shark\", \"prob\": 0.5, \"logit\": 1.60944}, {\"rank\": 2, \"class\": 1, "
                           "\"name\": \"gold fish\", \"prob\": 0.2, \"logit\": 0.693147}]}\n], \"time_ms\": 1.500}\n");
    fclose(f);
    free(buf);
}

static void
test_image_list(void)
{
    char dir[64], p[128];
    snprintf(dir, sizeof dir, "imglist_%d", (int)getpid());
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0777), 0);
    const char *files[] = {"b.PNG", "a.jpg", "c.txt", ".hidden.jpg", "d.jpeg"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        fclose(fopen(p, "w"));
    }
    char one[] = "x.png";
    char *args[2] = {dir, one};
    McImageList l;
    /* x.png does not exist: refused, naming it */
    CU_ASSERT_EQUAL(mc_image_list("t", 2, args, &l), -1);
    fclose(fopen(one, "w"));
    CU_ASSERT_EQUAL_FATAL(mc_image_list("t", 2, args, &l), 0);
    CU_ASSERT_EQUAL_FATAL(l.n, 4);
    snprintf(p, sizeof p, "%s/a.jpg", dir);
    CU_ASSERT_STRING_EQUAL(l.path[0], p);
    snprintf(p, sizeof p, "%s/b.PNG", dir);
    CU_ASSERT_STRING_EQUAL(l.path[1], p);
    snprintf(p, sizeof p, "%s/d.jpeg", dir);
    CU_ASSERT_STRING_EQUAL(l.path[2], p);
    CU_ASSERT_STRING_EQUAL(l.path[3], "x.png");
    mc_image_list_free(&l);
    unlink(one);
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        if (i != 2)
            unlink(p);
    }
    CU_ASSERT_EQUAL(mc_image_list("t", 1, args, &l), -1); /* only c.txt left */
    snprintf(p, sizeof p, "%s/c.txt", dir);
    unlink(p);
    rmdir(dir);
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"read", test_read},
    {"json_string", test_json_string},
    {"topk", test_topk},
    {"print", test_print},
    {"image_list", test_image_list},
};
MC_UNIT_MAIN("labels", tests)
