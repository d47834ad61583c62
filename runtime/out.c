/* runtime/out.c -- atomic output files and the signal cleanup registry
 * (see mc_out.h).
 *
 * Takes: destination paths.  Owns: the temporaries it creates until they
 * are renamed or removed, and a fixed table of paths to remove when a
 * signal ends the program (filled by the main thread, read by the handler:
 * a slot's path is complete before its kind is set, and the handler only
 * makes async-signal-safe calls).
 */
#define _GNU_SOURCE
#include "mc_out.h"
#include "mc_file.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

/* ------------------------------------------------------------ cleanup */

#define CLEANUP_SLOTS 32
enum { SLOT_FREE, SLOT_FILE, SLOT_DIR };

static char cleanup_path[CLEANUP_SLOTS][MC_OUT_PATH];
static volatile sig_atomic_t cleanup_kind[CLEANUP_SLOTS];
static volatile sig_atomic_t cleanup_child;  /* pid, 0 = none */
static volatile sig_atomic_t cleanup_owner;  /* the pid that installed the handlers */

int
mc_cleanup_add(const char *path, int is_dir)
{
    if (!path || strlen(path) >= MC_OUT_PATH)
        return -1;
    for (int i = 0; i < CLEANUP_SLOTS; i++)
        if (cleanup_kind[i] == SLOT_FREE) {
            memcpy(cleanup_path[i], path, strlen(path) + 1);
            cleanup_kind[i] = is_dir ? SLOT_DIR : SLOT_FILE;
            return i;
        }
    return -1;
}

void
mc_cleanup_remove(int slot)
{
    if (slot >= 0 && slot < CLEANUP_SLOTS)
        cleanup_kind[slot] = SLOT_FREE;
}

void
mc_cleanup_set_child(pid_t pid)
{
    cleanup_child = pid > 0 ? pid : 0;
}

/* Removes the entries of a flat directory, then the directory. */
static void
remove_dir(const char *path)
{
#if defined(__linux__) && defined(SYS_getdents64)
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        _Alignas(8) char buf[4096];
        long n;
        while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
            for (long off = 0; off < n;) {
                /* struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name */
                unsigned short reclen;
                memcpy(&reclen, buf + off + 16, sizeof reclen);
                const char *name = buf + off + 19;
                if (strcmp(name, ".") && strcmp(name, ".."))
                    unlinkat(fd, name, 0);
                off += reclen;
            }
        close(fd);
    }
#endif
    rmdir(path);
}

static const int cleanup_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void
on_signal(int sig)
{
    if (cleanup_owner == (sig_atomic_t)getpid()) {
        pid_t c = (pid_t)cleanup_child;
        if (c > 0) {
            kill(-c, SIGKILL); /* the child's process group: a compiler and its passes */
            kill(c, SIGKILL);
            while (waitpid(c, NULL, 0) < 0 && errno == EINTR) {
            }
        }
        for (int i = CLEANUP_SLOTS - 1; i >= 0; i--) {
            if (cleanup_kind[i] == SLOT_FILE)
                unlink(cleanup_path[i]);
            else if (cleanup_kind[i] == SLOT_DIR)
                remove_dir(cleanup_path[i]);
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    raise(sig); /* delivered when the handler returns: the default action */
}

void
mc_cleanup_install(void)
{
    if (cleanup_owner == (sig_atomic_t)getpid())
        return;
    cleanup_owner = (sig_atomic_t)getpid();
    for (size_t i = 0; i < sizeof cleanup_signals / sizeof *cleanup_signals; i++) {
        struct sigaction old, sa;
        if (sigaction(cleanup_signals[i], NULL, &old) || old.sa_handler == SIG_IGN)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigfillset(&sa.sa_mask);
        sigaction(cleanup_signals[i], &sa, NULL);
    }
}

/* ------------------------------------------------------------ output files */

/* dir of p ("." when none) and the name after the last '/'. */
static void
split_path(const char *p, char *dir, size_t n, const char **base)
{
    const char *s = strrchr(p, '/');
    if (!s) {
        snprintf(dir, n, ".");
        *base = p;
    } else {
        snprintf(dir, n, "%.*s", s == p ? 1 : (int)(s - p), p);
        *base = s + 1;
    }
}

int
mc_out_open(McOut *o, const char *path, int mode, char *msg, size_t msglen)
{
    static unsigned counter;
    memset(o, 0, sizeof *o);
    o->path = path;
    o->slot = -1;
    if (!path) {
        o->f = stdout;
        return 0;
    }
    if (!*path)
        return mc_file_fail(msg, msglen, "cannot write '': %s", strerror(ENOENT));
    if (strlen(path) >= MC_OUT_PATH)
        return mc_file_fail(msg, msglen, "cannot write %.200s...: %s", path, strerror(ENAMETOOLONG));
    snprintf(o->dst, sizeof o->dst, "%s", path);
    struct stat st;
    char real[PATH_MAX];
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
        realpath(path, real) && strlen(real) < sizeof o->dst)
        snprintf(o->dst, sizeof o->dst, "%s", real);
    if (stat(o->dst, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return mc_file_fail(msg, msglen, "cannot write %s: %s", path, strerror(EISDIR));
        if (!S_ISREG(st.st_mode)) { /* a device or FIFO: written in place */
            if (!(o->f = fopen(o->dst, "wb")))
                return mc_file_fail(msg, msglen, "cannot write %s: %s", path, strerror(errno));
            return 0;
        }
    }
    char dir[MC_OUT_PATH];
    const char *base;
    split_path(o->dst, dir, sizeof dir, &base);
    int fd = -1, e = 0;
    for (int tries = 0; tries < 100; tries++) {
        int k = snprintf(o->tmp, sizeof o->tmp, "%s/.%.180s.%ld.%u.tmp", dir, base, (long)getpid(), counter++);
        if (k < 0 || (size_t)k >= sizeof o->tmp) {
            e = ENAMETOOLONG;
            break;
        }
        o->slot = mc_cleanup_add(o->tmp, 0);
        fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, mode);
        e = errno;
        if (fd >= 0 || e != EEXIST)
            break;
        mc_cleanup_remove(o->slot);
        o->slot = -1;
    }
    if (fd < 0 || !(o->f = fdopen(fd, "wb"))) {
        if (fd >= 0) {
            e = errno;
            close(fd);
            unlink(o->tmp);
        }
        mc_cleanup_remove(o->slot);
        o->slot = -1;
        o->tmp[0] = 0;
        return mc_file_fail(msg, msglen, "cannot write %s: %s", path, strerror(e ? e : EIO));
    }
    return 0;
}

int
mc_out_commit(McOut *o, char *msg, size_t msglen)
{
    if (!o->f)
        return mc_file_fail(msg, msglen, "cannot write %s: not open", o->path ? o->path : "standard output");
    int e = 0;
    if (fflush(o->f) != 0 || ferror(o->f))
        e = errno ? errno : EIO;
    if (o->f == stdout) {
        o->f = NULL;
        return e ? mc_file_fail(msg, msglen, "cannot write standard output: %s", strerror(e)) : 0;
    }
    if (!e && o->tmp[0] && fsync(fileno(o->f)) != 0 && errno != EINVAL && errno != EROFS)
        e = errno;
    if (fclose(o->f) != 0 && !e)
        e = errno ? errno : EIO;
    o->f = NULL;
    if (!e && o->tmp[0] && rename(o->tmp, o->dst) != 0)
        e = errno;
    if (e && o->tmp[0])
        unlink(o->tmp);
    mc_cleanup_remove(o->slot);
    o->slot = -1;
    o->tmp[0] = 0;
    return e ? mc_file_fail(msg, msglen, "cannot write %s: %s", o->path, strerror(e)) : 0;
}

void
mc_out_discard(McOut *o)
{
    if (o->f && o->f != stdout)
        fclose(o->f);
    o->f = NULL;
    if (o->tmp[0])
        unlink(o->tmp);
    mc_cleanup_remove(o->slot);
    o->slot = -1;
    o->tmp[0] = 0;
}

int
mc_out_write_file(const char *path, const void *data, size_t n, int mode, char *msg, size_t msglen)
{
    McOut o;
    if (mc_out_open(&o, path, mode, msg, msglen))
        return -1;
    if (n && fwrite(data, 1, n, o.f) != n) {
        int e = errno;
        mc_out_discard(&o);
        return mc_file_fail(msg, msglen, "cannot write %s: %s", path, strerror(e ? e : EIO));
    }
    return mc_out_commit(&o, msg, msglen);
}

int
mc_out_check_stdout(char *msg, size_t msglen)
{
    McOut o;
    mc_out_open(&o, NULL, 0, msg, msglen);
    return mc_out_commit(&o, msg, msglen);
}

/* p resolved: realpath of p, or of its directory plus its name when p does
 * not exist; p itself when neither resolves. */
static void
resolve(const char *p, char *buf, size_t n)
{
    char real[PATH_MAX], dir[MC_OUT_PATH];
    const char *base;
    if (realpath(p, real)) {
        snprintf(buf, n, "%s", real);
        return;
    }
    split_path(p, dir, sizeof dir, &base);
    if (realpath(dir, real))
        snprintf(buf, n, "%s/%s", real, base);
    else
        snprintf(buf, n, "%s", p);
}

int
mc_out_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    int ha = stat(a, &sa) == 0, hb = stat(b, &sb) == 0;
    if (ha && hb)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (ha != hb)
        return 0;
    char ra[MC_OUT_PATH + PATH_MAX], rb[MC_OUT_PATH + PATH_MAX];
    resolve(a, ra, sizeof ra);
    resolve(b, rb, sizeof rb);
    return strcmp(ra, rb) == 0;
}
