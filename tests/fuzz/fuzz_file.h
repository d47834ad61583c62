/* tests/fuzz/fuzz_file.h -- for the harnesses of readers that only take a
 * path (the image reader, fuzz_image.c; the labels reader, fuzz_labels.c):
 * the input bytes written to a private scratch file, the same file every
 * call (mkstemp under $TMPDIR or /tmp, 0600; removed at a normal exit,
 * left holding the input after a crash).
 * Header-only (static functions).
 */
#ifndef MC_FUZZ_FILE_H
#define MC_FUZZ_FILE_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char fuzz_path[4096];

static void
fuzz_file_remove(void)
{
    if (fuzz_path[0])
        unlink(fuzz_path);
}

/* data[0..size) into the scratch file; returns its path (aborts when it
 * cannot be written: that is the machine's fault, not the reader's). */
static const char *
fuzz_file_write(const uint8_t *data, size_t size)
{
    if (!fuzz_path[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_path, sizeof fuzz_path, "%s/mc-fuzz-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
        int fd = mkstemp(fuzz_path);
        if (fd < 0) {
            perror("fuzz: mkstemp");
            abort();
        }
        close(fd);
        atexit(fuzz_file_remove);
    }
    FILE *f = fopen(fuzz_path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f)) {
        perror("fuzz: cannot write the scratch file");
        abort();
    }
    return fuzz_path;
}
#endif
