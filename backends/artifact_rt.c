/* backends/artifact_rt.c -- the prebuilt runtime: the runtime's objects
 * compiled once, when mambac is built, instead of for every artifact
 * (artifact.h, docs/artifacts.md).
 *
 * Takes the runtime directory (mc_artifact_runtime_dir) and the C compiler
 * command.  mc_artifact_prebuild writes, per kind of artifact (exe, exe-image,
 * pic, pic-image), the objects of that kind's runtime sources
 * (mc_artifact_compile_runtime) and then its MANIFEST: the compiler (the
 * command, the file it runs, that file's size and modification time), the
 * flags, the objects, and the length and FNV-1a of every source and every
 * header of the runtime.  mc_artifact_prebuilt_find computes the same text
 * for the artifact being built and uses a directory only when its MANIFEST
 * is exactly that text: a changed source or header, another compiler or
 * other flags (another source tree) mean compiling the runtime as before.
 * The objects are those the artifact would compile (same command, same
 * file names), so an artifact is byte-identical either way.
 */
#define _GNU_SOURCE
#include "artifact.h"
#include "../runtime/mc_file.h"
#include "../runtime/mc_out.h"
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST_MAX (1 << 16)

static const char *
kind_name(int pic, int images)
{
    return pic ? (images ? "pic-image" : "pic") : (images ? "exe-image" : "exe");
}

/* The file the compiler command's first word runs: itself when it has a
 * '/', else the first on $PATH; realpath'd.  0, or -1 when none. */
static int
compiler_file(const char *cc, char *buf, size_t n)
{
    char prog[1024], cand[PATH_MAX + 1100], real[PATH_MAX];
    snprintf(prog, sizeof prog, "%.*s", (int)strcspn(cc, " \t"), cc);
    if (!mc_artifact_which(prog, cand, sizeof cand) || !realpath(cand, real))
        return -1;
    snprintf(buf, n, "%s", real);
    return 0;
}

/* One line per file: "file NAME LENGTH FNV1A64", NAME under the runtime
 * directory; -1 when it cannot be read. */
static int
file_line(FILE *m, const char *rt, const char *name)
{
    char p[PATH_MAX + 300], msg[256];
    snprintf(p, sizeof p, "%s/%s", rt, name);
    size_t len = 0;
    char *b = mc_file_read_all(p, "runtime source", (uint64_t)1 << 30, &len, msg, sizeof msg);
    if (!b)
        return -1;
    fprintf(m, "file %s %llu %016llx\n", name, (unsigned long long)len,
            (unsigned long long)mc_artifact_fnv1a64(b, len));
    free(b);
    return 0;
}

static int
is_header(const struct dirent *e)
{
    size_t k = strlen(e->d_name);
    return k > 2 && !strcmp(e->d_name + k - 2, ".h");
}

/* The headers of rt/sub (sub "" or "exe/"), sorted by name. */
static int
header_lines(FILE *m, const char *rt, const char *sub)
{
    char d[PATH_MAX + 16], name[300];
    snprintf(d, sizeof d, "%s/%s", rt, sub);
    struct dirent **list;
    int n = scandir(d, &list, is_header, alphasort), bad = n < 0;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s%s", sub, list[i]->d_name);
        bad |= file_line(m, rt, name) != 0;
        free(list[i]);
    }
    if (n >= 0)
        free(list);
    return bad ? -1 : 0;
}

/* The MANIFEST of kind (pic, images) compiled by cc from rt (malloc'd
 * text in *text); -1 when a file cannot be read or the compiler found. */
static int
manifest(const char *rt, const char *cc, int pic, int images, char **text)
{
    char file[PATH_MAX], flags[4096], o[64];
    struct stat st;
    *text = NULL;
    if (compiler_file(cc, file, sizeof file) || stat(file, &st))
        return -1;
    size_t len = 0;
    FILE *m = open_memstream(text, &len);
    if (!m)
        return -1;
    mc_artifact_runtime_flags(rt, pic, images, flags, sizeof flags);
    fprintf(m, "mambac runtime objects 1: %s\n", kind_name(pic, images));
    fprintf(m, "compiler %s: %s, %lld bytes, modified %lld.%09ld\n", cc, file, (long long)st.st_size,
            (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
    fprintf(m, "flags %s\nobjects", flags);
    const char *const *srcs;
    int n = mc_artifact_runtime_sources(pic, &srcs), bad = 0;
    for (int i = 0; i < n; i++) {
        mc_artifact_runtime_object(srcs[i], o, sizeof o);
        fprintf(m, " %s", o);
    }
    fputc('\n', m);
    for (int i = 0; i < n; i++)
        bad |= file_line(m, rt, srcs[i]) != 0;
    bad |= header_lines(m, rt, "") != 0;
    bad |= header_lines(m, rt, "exe/") != 0;
    bad |= fclose(m) != 0;
    if (bad) {
        free(*text);
        *text = NULL;
        return -1;
    }
    return 0;
}

/* Is dir/MANIFEST exactly want, and are the kind's objects there? */
static int
matches(const char *dir, const char *want, int pic)
{
    char p[PATH_MAX + 64], o[64];
    snprintf(p, sizeof p, "%s/MANIFEST", dir);
    FILE *f = fopen(p, "rb");
    if (!f)
        return 0;
    char *have = malloc(MANIFEST_MAX);
    size_t n = have ? fread(have, 1, MANIFEST_MAX, f) : 0;
    fclose(f);
    int ok = have && n == strlen(want) && !memcmp(have, want, n);
    free(have);
    const char *const *srcs;
    int k = mc_artifact_runtime_sources(pic, &srcs);
    for (int i = 0; ok && i < k; i++) {
        mc_artifact_runtime_object(srcs[i], o, sizeof o);
        snprintf(p, sizeof p, "%s/%s", dir, o);
        ok = access(p, R_OK) == 0;
    }
    return ok;
}

int
mc_artifact_prebuilt_find(const char *rt, const char *cc, int pic, int images, char *buf, size_t n, char *why,
                          size_t whyn)
{
    char self[PATH_MAX], bases[3][PATH_MAX + 64], dir[PATH_MAX + 128];
    int nb = 0, seen = 0;
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash = k > 0 ? (self[k] = 0, strrchr(self, '/')) : NULL;
    if (slash) {
        *slash = 0;
        snprintf(bases[nb++], sizeof bases[0], "%s/mambac-runtime", self);
        snprintf(bases[nb++], sizeof bases[0], "%s/../lib/mambac-runtime", self);
    }
#ifdef MC_PREBUILT_DIR
    snprintf(bases[nb++], sizeof bases[0], "%s", MC_PREBUILT_DIR);
#endif
    const char *env = getenv("MAMBAC_PREBUILT_DIR");
    if (env) { /* only there; "": nowhere */
        nb = 0;
        if (*env)
            snprintf(bases[nb++], sizeof bases[0], "%s", env);
    }
    char *want = NULL;
    for (int i = 0; i < nb; i++) {
        snprintf(dir, sizeof dir, "%s/%s", bases[i], kind_name(pic, images));
        char p[PATH_MAX + 200];
        snprintf(p, sizeof p, "%s/MANIFEST", dir);
        if (access(p, R_OK))
            continue;
        if (!seen++ && manifest(rt, cc, pic, images, &want)) {
            snprintf(why, whyn, "cannot read the runtime's sources in %s or find the compiler '%s'", rt, cc);
            return 0;
        }
        if (matches(dir, want, pic)) {
            free(want);
            char real[PATH_MAX];
            snprintf(buf, n, "%s", realpath(dir, real) ? real : dir);
            return 1;
        }
    }
    free(want);
    if (seen)
        snprintf(why, whyn, "the prebuilt runtime objects (%s) are not those of this compiler and these sources",
                 kind_name(pic, images));
    else
        snprintf(why, whyn, "no prebuilt runtime objects (%s) %s", kind_name(pic, images),
                 env ? "in MAMBAC_PREBUILT_DIR" : "beside mambac");
    return 0;
}

int
mc_artifact_prebuild(const char *dir, const char *cc, int verbose, McErr *err)
{
    char rt[PATH_MAX], kdir[PATH_MAX + 64], p[PATH_MAX + 128], libs[3][4096];
    if (mc_artifact_runtime_dir(rt, sizeof rt, err))
        return -1;
    if (mkdir(dir, 0755) && errno != EEXIST)
        return mc_err(err, "cannot create %s: %s", dir, strerror(errno));
    for (int pic = 0; pic < 2; pic++) {
        int have_images = mc_artifact_image_libs(cc, dir, pic, libs);
        for (int images = 0; images <= have_images; images++) {
            snprintf(kdir, sizeof kdir, "%s/%s", dir, kind_name(pic, images));
            if (mkdir(kdir, 0755) && errno != EEXIST)
                return mc_err(err, "cannot create %s: %s", kdir, strerror(errno));
            char *want;
            if (manifest(rt, cc, pic, images, &want))
                return mc_err(err, "cannot read the runtime's sources in %s or find the compiler '%s'", rt, cc);
            if (matches(kdir, want, pic)) {
                if (verbose)
                    fprintf(stderr, "mambac-prebuild: %s: up to date\n", kdir);
                free(want);
                continue;
            }
            /* no MANIFEST while the objects change: a compile that is
             * interrupted leaves a kind that is not used */
            snprintf(p, sizeof p, "%s/MANIFEST", kdir);
            remove(p);
            const char *const *srcs;
            int n = mc_artifact_runtime_sources(pic, &srcs);
            int rc = mc_artifact_compile_runtime(rt, cc, pic, images, srcs, n, kdir, 0, err);
            snprintf(p, sizeof p, "%s/tool.log", kdir);
            remove(p);
            snprintf(p, sizeof p, "%s/MANIFEST", kdir);
            if (!rc && mc_out_write_file(p, want, strlen(want), 0644, err->msg, sizeof err->msg))
                rc = -1;
            free(want);
            if (rc)
                return -1;
            if (verbose)
                fprintf(stderr, "mambac-prebuild: %s: %d objects compiled\n", kdir, n);
        }
    }
    snprintf(p, sizeof p, "%s/tool.log", dir);
    remove(p);
    return 0;
}
