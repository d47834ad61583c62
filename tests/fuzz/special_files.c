/* tests/fuzz/special_files.c -- the fuzz harnesses' readers against what a
 * byte buffer cannot be: a FIFO, /dev/zero, a directory, a 4 GiB sparse
 * file, and small files that declare models or tensors over a budget.
 *
 * The harnesses (fuzz_*.c) feed bytes to the in-memory entry points; here
 * every reader they cover is called through its path entry point, the one
 * mambac uses: the public config (mc_config_load), the graph YAML
 * (mc_graph_yaml_load), the IR text (mc_read_file + mc_graph_parse), .pth
 * (mc_pth_load), .safetensors (mc_safetensors_load), the checkpoint sniffer
 * (mc_weights_load), .npy (mc_npy_read), images (mc_image_read: a PNG and
 * a JPEG over the pixel budget) and labels files (mc_labels_read for 3
 * names, as mambac reads them for a 3-class model).  Each case runs in a child
 * process under alarm(10): it must return -1 with a message holding the
 * expected words, within 5 s, with a peak RSS under 256 MB, and not crash
 * (a sanitizer report or a signal fails it).  Nothing writes to the FIFO,
 * so a reader that blocks on it hangs until the alarm.
 * Scratch files live in a mkdtemp directory under $TMPDIR (or /tmp),
 * removed at the end.  Exit 0 when every case passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frontend/frontend.h"
#include "frontend/weights.h"
#include "frontend/yamlutil.h"
#include "runtime/mc_image.h"
#include "runtime/mc_labels.h"
#include "runtime/mc_npy.h"
#include "fuzz_zip.h"

#define MAX_SECONDS 5.0
#define MAX_RSS_KB (256 * 1024)

static void
copy_err(const McErr *e, char *msg, size_t n)
{
    snprintf(msg, n, "%s", e->msg);
}

static int
rd_config(const char *path, char *msg, size_t n)
{
    ModelConfig cfg;
    McErr e = {{0}};
    int rc = mc_config_load(path, &cfg, &e);
    copy_err(&e, msg, n);
    return rc;
}

static int
rd_graph_yaml(const char *path, char *msg, size_t n)
{
    Graph g;
    McErr e = {{0}};
    int rc = mc_graph_yaml_load(path, &g, &e);
    if (rc == 0)
        mc_graph_free(&g);
    copy_err(&e, msg, n);
    return rc;
}

static int
rd_ir(const char *path, char *msg, size_t n)
{
    McErr e = {{0}};
    size_t len;
    char *text = mc_read_file(path, &len, &e);
    int rc = -1;
    if (text) {
        Graph g;
        mc_graph_init(&g, "special");
        rc = mc_graph_parse(&g, text, len, path, &e);
        mc_graph_free(&g);
        free(text);
    }
    copy_err(&e, msg, n);
    return rc;
}

static int
rd_weights_with(int (*load)(const char *, WeightStore *, McErr *), const char *path, char *msg, size_t n)
{
    WeightStore ws;
    McErr e = {{0}};
    mc_weights_init(&ws);
    int rc = load(path, &ws, &e);
    mc_weights_free(&ws);
    copy_err(&e, msg, n);
    return rc;
}

static int rd_pth(const char *p, char *m, size_t n) { return rd_weights_with(mc_pth_load, p, m, n); }
static int rd_st(const char *p, char *m, size_t n) { return rd_weights_with(mc_safetensors_load, p, m, n); }
static int rd_sniff(const char *p, char *m, size_t n) { return rd_weights_with(mc_weights_load, p, m, n); }

static int
rd_npy(const char *path, char *msg, size_t n)
{
    McNpy a;
    int rc = mc_npy_read(path, &a, msg, n);
    if (rc == 0)
        mc_npy_free(&a);
    return rc;
}

static int
rd_image(const char *path, char *msg, size_t n)
{
    McImage im;
    int rc = mc_image_read(path, &im, msg, n);
    mc_image_free(&im);
    return rc;
}

static int
rd_labels(const char *path, char *msg, size_t n)
{
    McLabels l;
    int rc = mc_labels_read(path, 3, &l, msg, n);
    mc_labels_free(&l);
    return rc;
}

typedef struct Reader {
    const char *name;
    int (*read)(const char *path, char *msg, size_t n);
    const char *huge_want; /* expected in the 4 GiB sparse file's message (NULL: any message) */
    const char *budget;    /* the over-budget file for this reader, and its expected words */
    const char *budget_want;
} Reader;

static int failures, cases;
static char dir[4096];

/* Runs r on path in a child; checks the outcome. */
static void
expect_error(const Reader *r, const char *label, const char *path, const char *want)
{
    cases++;
    fflush(stdout);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int pfd[2];
    if (pipe(pfd)) {
        perror("pipe");
        exit(2);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        close(pfd[0]);
        alarm(10);
        char msg[2048] = "";
        int rc = r->read(path, msg, sizeof msg);
        int ok = rc == -1 && msg[0] && (!want || strstr(msg, want));
        dprintf(pfd[1], "rc=%d %s", rc, msg);
        _exit(ok ? 0 : 3);
    }
    close(pfd[1]);
    char msg[2200];
    size_t got = 0;
    ssize_t k;
    while (got < sizeof msg - 1 && (k = read(pfd[0], msg + got, sizeof msg - 1 - got)) != 0) {
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            break;
        got += (size_t)k;
    }
    msg[got] = 0;
    close(pfd[0]);
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR)
        ;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    char why[160] = "";
    if (WIFSIGNALED(st))
        snprintf(why, sizeof why, "killed by signal %d%s", WTERMSIG(st),
                 WTERMSIG(st) == SIGALRM ? " (hung for 10 s)" : "");
    else if (WEXITSTATUS(st) != 0)
        snprintf(why, sizeof why, "not a clean error%s%s (exit %d)", want ? " naming " : "", want ? want : "",
                 WEXITSTATUS(st));
    else if (dt > MAX_SECONDS)
        snprintf(why, sizeof why, "took %.1f s (limit %.0f s)", dt, MAX_SECONDS);
    else if (ru.ru_maxrss > MAX_RSS_KB)
        snprintf(why, sizeof why, "peak RSS %ld MB (limit %d MB)", ru.ru_maxrss / 1024, MAX_RSS_KB / 1024);
    /* the message is printed with the scratch directory cut out */
    char *m = msg, *d, pre[4200];
    size_t pl = (size_t)snprintf(pre, sizeof pre, "%s/", dir);
    while ((d = strstr(m, pre)) != NULL)
        memmove(d, d + pl, strlen(d + pl) + 1);
    printf("%s %-13s %-28s %.2fs %ldMB  %s%s%s\n", why[0] ? "FAIL" : "ok  ", r->name, label, dt,
           ru.ru_maxrss / 1024, why, why[0] ? ": " : "", m);
    if (why[0])
        failures++;
}

static void
write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "special_files: cannot write %s\n", path);
        exit(2);
    }
}

static char *
scratch(const char *name)
{
    static char paths[16][4200];
    static int next;
    char *p = paths[next++ % 16];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

/* A .safetensors header of more than 2^21 JSON values (the reader's cap). */
static void
write_st_budget(const char *path)
{
    const char *head = "{\"__metadata__\": {\"a\": [";
    size_t nv = (1u << 21) + 10, hl = strlen(head) + 2 * nv + 2;
    uint8_t *b = malloc(8 + hl);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    char *p = (char *)b + 8;
    memcpy(p, head, strlen(head));
    p += strlen(head);
    for (size_t i = 0; i < nv; i++) {
        *p++ = '0';
        *p++ = i + 1 < nv ? ',' : ']';
    }
    memcpy(p - 1, "]}}", 3);
    write_file(path, b, 8 + hl);
    free(b);
}

/* A .pth whose data.pkl pushes more than 2^20 values (the pickle cap). */
static void
write_pth_budget(const char *path)
{
    size_t n = (1u << 20) + 100, pl = 2 + n + 1;
    uint8_t *pk = malloc(pl);
    pk[0] = 0x80; /* PROTO 2 */
    pk[1] = 2;
    memset(pk + 2, ']', n); /* EMPTY_LIST */
    pk[pl - 1] = '.';       /* STOP */
    const char *names[1] = {"archive/data.pkl"};
    const uint8_t *data[1] = {pk};
    size_t lens[1] = {pl}, zl;
    uint8_t *z = make_zip(names, data, lens, 1, &zl);
    write_file(path, z, zl);
    free(z);
    free(pk);
}

/* A .npy whose header declares 2^32 float32 (16 GiB) and holds no data. */
static void
write_npy_budget(const char *path)
{
    char h[128];
    int n = snprintf(h, sizeof h, "{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 65536), }");
    while ((10 + n + 1) % 64)
        h[n++] = ' ';
    h[n++] = '\n';
    uint8_t b[256] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)n, 0};
    memcpy(b + 10, h, (size_t)n);
    write_file(path, b, 10 + (size_t)n);
}

/* A PNG whose header declares 65536x65536 RGB (2^32 pixels), then an
 * empty IDAT and IEND. */
static void
write_png_budget(const char *path)
{
    static const uint8_t ihdr[] = {0, 1, 0, 0, 0, 1, 0, 0, 8, 2, 0, 0, 0};
    uint8_t b[64] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t n = 8;
    const char *types[3] = {"IHDR", "IDAT", "IEND"};
    for (int c = 0; c < 3; c++) {
        size_t len = c ? 0 : sizeof ihdr;
        uint8_t *p = b + n;
        p[0] = p[1] = p[2] = 0, p[3] = (uint8_t)len;
        memcpy(p + 4, types[c], 4);
        memcpy(p + 8, ihdr, len);
        uint32_t crc = mc_crc32(0, p + 4, len + 4);
        for (int i = 0; i < 4; i++)
            p[8 + len + (size_t)i] = (uint8_t)(crc >> (24 - 8 * i));
        n += 12 + len;
    }
    write_file(path, b, n);
}

/* A JPEG whose frame declares 65500x65500 (libjpeg's largest side), up to
 * its scan header. */
static void
write_jpeg_budget(const char *path)
{
    static const uint8_t b[] = {0xff, 0xd8,                                                          /* SOI */
                                0xff, 0xc0, 0, 17, 8, 0xff, 0xdc, 0xff, 0xdc, 3, 1, 0x11, 0, 2, 0x11, 0, 3,
                                0x11, 0,                                                             /* SOF0 */
                                0xff, 0xda, 0, 12, 3, 1, 0, 2, 0, 3, 0, 0, 63, 0};                   /* SOS */
    write_file(path, b, sizeof b);
}

/* A labels file of 2^20 names, for a model of 3 classes. */
static void
write_labels_budget(const char *path)
{
    size_t n = 1u << 20;
    char *b = malloc(2 * n);
    for (size_t i = 0; i < n; i++)
        b[2 * i] = 'a', b[2 * i + 1] = '\n';
    write_file(path, b, 2 * n);
    free(b);
}

int
main(void)
{
    unsetenv("MAMBAC_MAX_PARAMS"); /* the default budgets */
    unsetenv("MAMBAC_MAX_ACTIVATION");
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/mc-special-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("special_files: mkdtemp");
        return 2;
    }
    char *fifo = scratch("fifo"), *sub = scratch("dir"), *huge = scratch("huge.safetensors");
    if (mkfifo(fifo, 0600) || mkdir(sub, 0700)) {
        perror("special_files: mkfifo/mkdir");
        return 2;
    }
    int fd = open(huge, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)4 << 30) || close(fd)) { /* sparse: no data blocks */
        perror("special_files: 4 GiB sparse file");
        return 2;
    }
    static const char wide_yaml[] = "MODEL:\n  SPATIALMAMBA:\n    EMBED_DIM: 65536\n    DEPTHS: [1]\n"
                                    "    D_STATE: 1\n    MLP_RATIO: 1024\n";
    static const char graph_yaml[] = "graph:\n  inputs:\n    - {name: x, dtype: f32, shape: [1, 65536]}\n"
                                     "  weights:\n    - {name: w, dtype: f32, shape: [65536, 65536]}\n"
                                     "  nodes:\n    - {name: y, op: linear, inputs: [x, w]}\n  outputs: [y]\n";
    static const char ir[] = "graph big {\n  %x = input : f32[1,65536]\n  %w = weight : f32[65536,65536]\n"
                             "  %y = linear %x, %w : f32[1,65536]\n  return %y\n}\n";
    char *b_cfg = scratch("wide.yaml"), *b_gy = scratch("graph.yaml"), *b_ir = scratch("w.mir");
    char *b_st = scratch("values.safetensors"), *b_pth = scratch("values.pth"), *b_npy = scratch("big.npy");
    write_file(b_cfg, wide_yaml, strlen(wide_yaml));
    write_file(b_gy, graph_yaml, strlen(graph_yaml));
    write_file(b_ir, ir, strlen(ir));
    write_st_budget(b_st);
    write_pth_budget(b_pth);
    write_npy_budget(b_npy);
    char *b_png = scratch("big.png"), *b_jpg = scratch("big.jpg"), *b_lab = scratch("labels.txt");
    write_png_budget(b_png);
    write_jpeg_budget(b_jpg);
    write_labels_budget(b_lab);
    /* without libjpeg/libpng an image is refused after its first bytes */
    const char *pixels = mc_image_available() ? "more than the 178956970 pixels accepted" : "no image support";

    const char *pbudget = "; the limit is 2^31 parameters";
    const Reader readers[] = {
        {"config", rd_config, "64 MiB limit", b_cfg, pbudget},
        {"graph-yaml", rd_graph_yaml, "64 MiB limit", b_gy, pbudget},
        {"ir", rd_ir, "64 MiB limit", b_ir, pbudget},
        {"pth", rd_pth, NULL, b_pth, "more than 1048576 values"},
        {"safetensors", rd_st, NULL, b_st, "more than 2097152 JSON values"},
        {"weights-sniff", rd_sniff, NULL, b_pth, "more than 1048576 values"},
        {"npy", rd_npy, NULL, b_npy, "the shape needs 17179869184"},
        {"image-png", rd_image, "not a JPEG or PNG file", b_png, pixels},
        {"image-jpeg", rd_image, "not a JPEG or PNG file", b_jpg, pixels},
        {"labels", rd_labels, "64 MiB limit", b_lab, "more than the model's 3 class names"},
    };
    for (size_t i = 0; i < sizeof readers / sizeof *readers; i++) {
        const Reader *r = &readers[i];
        expect_error(r, "a FIFO", fifo, "not a regular file (a FIFO)");
        expect_error(r, "/dev/zero", "/dev/zero", "not a regular file (a character device)");
        expect_error(r, "a directory", sub, "not a regular file (a directory)");
        expect_error(r, "a 4 GiB sparse file", huge, r->huge_want);
        expect_error(r, "an over-budget file", r->budget, r->budget_want);
    }
    const char *names[] = {"fifo", "dir", "huge.safetensors", "wide.yaml", "graph.yaml", "w.mir",
                           "values.safetensors", "values.pth", "big.npy", "big.png", "big.jpg", "labels.txt"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *p = scratch(names[i]);
        if (remove(p))
            fprintf(stderr, "special_files: cannot remove %s\n", p);
    }
    rmdir(dir);
    printf("special_files: %d of %d cases %s\n", cases - failures, cases, failures ? "passed, FAILED" : "passed");
    return failures ? 1 : 0;
}
