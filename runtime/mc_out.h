/* runtime/mc_out.h -- output files written atomically, and temporary files
 * removed when a signal ends the program.
 *
 * Every file mambac or a compiled executable writes goes through McOut:
 * mc_out_open() creates a temporary in the destination's directory (so a
 * path that cannot be written is reported, with the reason, before any work
 * is done), the caller writes to o->f, and mc_out_commit() checks every
 * write, flushes, syncs and renames the temporary over the destination.  On
 * any error, or mc_out_discard(), the temporary is unlinked: the old file,
 * if any, is left as it was, never truncated or half written.  A destination
 * that exists and is not a regular file (/dev/null, /dev/stdout, a FIFO) is
 * written in place; a symbolic link to a regular file has its target
 * replaced.  path NULL means standard output (checked, never closed).
 *
 * The cleanup registry: paths (files, or flat directories whose entries
 * are all removed) and one child process to kill, undone by the handlers
 * mc_cleanup_install() sets for SIGINT, SIGTERM and SIGHUP (only async-
 * signal-safe calls), which then re-raise the signal with its default
 * action.  McOut registers its temporaries there itself.
 *
 * Part of the runtime (standard C and POSIX; Linux for directory cleanup):
 * executables compile it with npy.c and exe_main.c.
 */
#ifndef MC_OUT_H
#define MC_OUT_H
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MC_OUT_PATH 4096

typedef struct McOut {
    const char *path;          /* as given, for messages; NULL = standard output */
    char dst[MC_OUT_PATH];     /* the file replaced (symbolic links resolved) */
    char tmp[MC_OUT_PATH];     /* the temporary beside it; "" when written in place */
    FILE *f;                   /* write here */
    int slot;                  /* cleanup registry slot of tmp, or -1 */
} McOut;

/* Opens an output.  mode: permissions of a new file before the umask
 * (0666, 0777 for executables).  -1 with "cannot write PATH: <reason>" in
 * msg when the destination's directory does not take a new file. */
int mc_out_open(McOut *o, const char *path, int mode, char *msg, size_t msglen);

/* Flushes, checks every write, syncs, closes and renames into place.
 * -1 with "cannot write PATH: <reason>" (the temporary removed). */
int mc_out_commit(McOut *o, char *msg, size_t msglen);

/* Closes and removes the temporary (the destination is untouched). */
void mc_out_discard(McOut *o);

/* open + fwrite(data, n) + commit. */
int mc_out_write_file(const char *path, const void *data, size_t n, int mode, char *msg,
                      size_t msglen);

/* Flushes standard output and checks that everything printed on it was
 * written: 0, or -1 with "cannot write standard output: <reason>". */
int mc_out_check_stdout(char *msg, size_t msglen);

/* Registers a path to remove on SIGINT/SIGTERM/SIGHUP: a file, or (is_dir)
 * a directory whose entries (files) are removed before it.  Returns the
 * slot for mc_cleanup_remove, or -1 when the registry is full. */
int mc_cleanup_add(const char *path, int is_dir);
void mc_cleanup_remove(int slot);
/* The child process (pid > 0) to kill with its process group, and wait for,
 * before the paths are removed; 0 forgets it. */
void mc_cleanup_set_child(pid_t pid);
/* Installs the handlers (once; a signal ignored at start stays ignored). */
void mc_cleanup_install(void);

/* Are a and b the same file (device and inode; for paths that do not exist
 * yet, the same resolved path)?  For refusing an output that names an
 * input. */
int mc_out_same_file(const char *a, const char *b);

#ifdef __cplusplus
}
#endif
#endif
