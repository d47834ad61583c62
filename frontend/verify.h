/* frontend/verify.h -- `mambac verify`: a backend's kernel program checked
 * kernel by kernel against the reference executor of the kernel IR
 * (frontend/verify.c; docs/kernel-ir.md, "Verifying a backend"). */
#ifndef MC_VERIFY_H
#define MC_VERIFY_H

/* argv: the arguments after "verify".  Exit status: 0 every kernel within
 * the tolerance, 1 a kernel over it (named) or a user error, 2 bad usage. */
int mc_cmd_verify(int argc, char **argv);

#endif
