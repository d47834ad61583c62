/* examples/embed/main.c -- embeds a model compiled by `mambac compile
 * --emit obj` (or shared) in a C program.
 *
 * Takes: OUT.h (chosen at build time with -DMODEL_H='"OUT.h"'), OUT.o or
 * OUT.so, the weights file OUT.weights and optionally a float32 .npy input
 * of the model's input shape.  Prints the top-5 classes of each image.
 * All memory is the caller's: the weights are read into 64-byte-aligned
 * memory, scratch is allocated once; the model itself allocates nothing.
 *
 *   make MODEL=/path/to/OUT        (see the Makefile), then
 *   ./embed OUT.weights [input.npy] [threads]
 * Without an input, a fixed synthetic image is used.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MODEL_H
#error "build with -DMODEL_H='\"OUT.h\"' (see the Makefile)"
#endif
#include MODEL_H

static void *
aligned(size_t n)
{
    void *p = NULL;
    size_t a = MC_MODEL_ALIGNMENT;
    if (posix_memalign(&p, a, n ? (n + a - 1) / a * a : a))
        return NULL;
    return p;
}

/* 64-bit FNV-1a, to check that the weights file belongs to this model. */
static uint64_t
fnv1a64(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void *
load_weights(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    unsigned char *w = aligned(MC_MODEL_WEIGHTS_SIZE);
    size_t got = w ? fread(w, 1, MC_MODEL_WEIGHTS_SIZE, f) : 0;
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (!w || got != MC_MODEL_WEIGHTS_SIZE || extra) {
        fprintf(stderr, "%s: expected exactly %llu bytes of weights\n", path,
                (unsigned long long)MC_MODEL_WEIGHTS_SIZE);
        free(w);
        return NULL;
    }
    if (fnv1a64(w, got) != MC_MODEL_WEIGHTS_FNV1A64) {
        fprintf(stderr, "%s: these weights were not compiled with this model\n", path);
        free(w);
        return NULL;
    }
    return w;
}

/* A minimal .npy reader: little-endian float32, C order, the right count. */
static int
load_npy(const char *path, float *dst)
{
    FILE *f = fopen(path, "rb");
    unsigned char pre[10];
    if (!f || fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
        fprintf(stderr, "%s: not a .npy file\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    size_t hl = pre[8] | pre[9] << 8;
    if (pre[6] >= 2) { /* format 2.0+: 4-byte header length */
        unsigned char b[2];
        if (fread(b, 1, 2, f) != 2) hl = 0;
        hl |= (size_t)b[0] << 16 | (size_t)b[1] << 24;
    }
    char *h = calloc(1, hl + 1);
    int ok = h && fread(h, 1, hl, f) == hl && strstr(h, "'<f4'") &&
             strstr(h, "'fortran_order': False");
    ok = ok && fread(dst, sizeof(float), MC_MODEL_INPUT_COUNT, f) == MC_MODEL_INPUT_COUNT &&
         fgetc(f) == EOF;
    free(h);
    fclose(f);
    if (!ok)
        fprintf(stderr, "%s: need a float32 C-order array of %lld values\n", path,
                (long long)MC_MODEL_INPUT_COUNT);
    return ok ? 0 : -1;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s %s.weights [input.npy] [threads]\n", argv[0], MC_MODEL_NAME);
        return 2;
    }
    static const int64_t ishape[] = MC_MODEL_INPUT_SHAPE, oshape[] = MC_MODEL_OUTPUT_SHAPE;
    void *weights = load_weights(argv[1]);
    float *input = aligned(MC_MODEL_INPUT_COUNT * sizeof(float));
    float *output = aligned(MC_MODEL_OUTPUT_COUNT * sizeof(float));
    void *scratch = aligned(MC_MODEL_SCRATCH_SIZE);
    if (!weights || !input || !output || !scratch)
        return 1;
    if (argc > 2 && strcmp(argv[2], "-")) {
        if (load_npy(argv[2], input))
            return 1;
    } else {
        for (long long i = 0; i < MC_MODEL_INPUT_COUNT; i++)
            input[i] = (float)((i * 7919) % 255) / 127.5f - 1.0f;
    }
    if (argc > 3)
        mc_rt_set_threads(atoi(argv[3]));

    int rc = MC_MODEL_RUN(weights, input, output, scratch);
    if (rc) {
        fprintf(stderr, "%s_run failed: %d\n", MC_MODEL_NAME, rc);
        return 1;
    }

    /* output [B, classes]: top-5 per image */
    long long batch = ishape[0];
    long long classes = MC_MODEL_OUTPUT_COUNT / (oshape[0] > 0 ? oshape[0] : 1);
    for (long long b = 0; b < batch && b < oshape[0]; b++) {
        const float *y = output + b * classes;
        int top[5], nt = classes < 5 ? (int)classes : 5;
        for (int t = 0; t < nt; t++) {
            int best = -1;
            for (long long c = 0; c < classes; c++) {
                int used = 0;
                for (int u = 0; u < t; u++)
                    used |= top[u] == c;
                if (!used && (best < 0 || y[c] > y[best]))
                    best = (int)c;
            }
            top[t] = best;
        }
        printf("image %lld:", b);
        for (int t = 0; t < nt; t++)
            printf(" %d (%.4f)", top[t], y[top[t]]);
        printf("\n");
    }
    free(weights);
    free(input);
    free(output);
    free(scratch);
    return 0;
}
