/* frontend/prebuild_main.c -- `mambac-prebuild DIR`: the runtime's objects
 * for host artifacts, compiled once when mambac is built (the build runs
 * it; backends/artifact.h, mc_artifact_prebuild).
 *
 * Takes DIR and the environment mambac compiles artifacts with ($CC,
 * $MAMBAC_CC, the runtime's sources); produces DIR/exe, DIR/exe-image,
 * DIR/pic, DIR/pic-image (objects and MANIFEST; the image kinds where the
 * compiler has libjpeg and libpng).  Kinds that are up to date are left
 * alone.  Exit status 0, 1 with a message when a compile fails, 2 for bad
 * usage.
 */
#include "../backends/artifact.h"
#include <stdio.h>

int
main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: mambac-prebuild DIR\n");
        return 2;
    }
    char cc[1024];
    McErr err;
    if (mc_artifact_cc(NULL, cc, sizeof cc, &err) || mc_artifact_prebuild(argv[1], cc, 1, &err)) {
        fprintf(stderr, "mambac-prebuild: error: %s\n", err.msg);
        return 1;
    }
    return 0;
}
