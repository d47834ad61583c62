/* tests/fuzz/replay_main.c -- runs a libFuzzer harness over every file of a
 * corpus directory (or over the files named), so kept crash inputs stay
 * regression tests on any compiler.  Exit 0 when every input returns. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "replay: cannot open %s\n", path); return 1; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) { fprintf(stderr, "replay: no such path %s\n", argv[i]); return 1; }
        if (!S_ISDIR(st.st_mode)) { if (run_file(argv[i])) return 1; count++; continue; }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while ((d && (e = readdir(d)))) {
            if (e->d_name[0] == '.') continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
            if (run_file(p)) return 1;
            count++;
        }
        if (d) closedir(d);
    }
    printf("replay: %d inputs ran without a crash\n", count);
    return 0;
}
