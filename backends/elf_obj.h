/* backends/elf_obj.h -- a relocatable ELF object that holds one blob of
 * bytes under a global symbol, written directly (no assembler).
 *
 * Takes an architecture name ("x86_64", "aarch64", "riscv64"), a section
 * name, a symbol name and the bytes; produces an ELF64 little-endian
 * relocatable object (ET_REL) whose sections are the blob's (allocated,
 * read-only, aligned as asked), an empty .note.GNU-stack (the program's
 * stack stays non-executable), .symtab, .strtab and .shstrtab, with one
 * global STT_OBJECT symbol at the blob's start.  What `.incbin` inside
 * `.section NAME,"a",%progbits` / `.balign A` / `.globl SYM` and
 * `.byte 0` / `.size SYM, . - SYM` assembles to: the blob is followed by one
 * zero byte (so that an empty blob still has an address of its own) and
 * the symbol's size counts it.  The bytes are a function of the inputs only.
 * Used for the weights that executables embed (backends/artifact.c,
 * backends/cuda/cuda_host.c): 100+ MB that the assembler would copy.
 */
#ifndef MC_ELF_OBJ_H
#define MC_ELF_OBJ_H
#include <stddef.h>
#include <stdint.h>
#include "../ir/diag.h"

/* The ELF e_machine and e_flags of objects for arch: x86_64 (EM_X86_64,
 * 0), aarch64 (EM_AARCH64, 0), riscv64 (EM_RISCV, RVC + double-float ABI:
 * what riscv64-linux-gnu-gcc's lp64d objects carry, so that Debian's linker
 * takes it with them).  0, or -1 for an architecture it does not know. */
int mc_elf_machine(const char *arch, uint16_t *machine, uint32_t *flags);

/* Writes the object to path (created or truncated): section `section`
 * aligned to `align` (a power of two) holding the n bytes of data and a
 * zero byte, global symbol `symbol` of size n + 1 at its start.  0, or -1
 * with a message naming path (unknown arch, a write that failed). */
int mc_elf_blob_write(const char *path, const char *arch, const char *section, const char *symbol,
                      unsigned align, const void *data, size_t n, McErr *err);

#endif
