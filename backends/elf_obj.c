/* backends/elf_obj.c -- write a relocatable ELF64 object holding one blob
 * (see elf_obj.h).
 *
 * Takes the bytes, the section and symbol names and the architecture;
 * produces the file: ELF header, the blob (at an offset aligned like the
 * section) and its zero byte, then the symbol table, the two string tables
 * and the six section headers (null, the blob's, .note.GNU-stack,
 * .symtab, .strtab, .shstrtab).  Every field is written little-endian byte
 * by byte, so the file does not depend on the host's byte order.  No
 * relocations: the blob refers to nothing.
 */
#include "elf_obj.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    EHDR_SIZE = 64,
    SHDR_SIZE = 64,
    SYM_SIZE = 24,
    NSECT = 6,
    ET_REL = 1,
    EM_X86_64 = 62,
    EM_AARCH64 = 183,
    EM_RISCV = 243,
    SHT_PROGBITS = 1,
    SHT_SYMTAB = 2,
    SHT_STRTAB = 3,
    SHF_ALLOC = 2,
    STB_GLOBAL = 1,
    STT_OBJECT = 1,
    EF_RISCV_RVC = 0x1,
    EF_RISCV_FLOAT_ABI_DOUBLE = 0x4,
};

int
mc_elf_machine(const char *arch, uint16_t *machine, uint32_t *flags)
{
    static const struct {
        const char *arch;
        uint16_t machine;
        uint32_t flags;
    } known[] = {
        {"x86_64", EM_X86_64, 0},
        {"aarch64", EM_AARCH64, 0},
        {"riscv64", EM_RISCV, EF_RISCV_RVC | EF_RISCV_FLOAT_ABI_DOUBLE},
    };
    for (size_t i = 0; arch && i < sizeof known / sizeof *known; i++)
        if (!strcmp(arch, known[i].arch)) {
            *machine = known[i].machine;
            *flags = known[i].flags;
            return 0;
        }
    return -1;
}

/* ------------------------------------------------------------ little-endian fields */

typedef struct Bytes {
    unsigned char b[1024];
    size_t n;
} Bytes;

static void
put(Bytes *o, uint64_t v, int size)
{
    for (int i = 0; i < size && o->n < sizeof o->b; i++) /* bytes past v's 8: zeros */
        o->b[o->n++] = i < 8 ? (unsigned char)(v >> (8 * i)) : 0;
}

static void
put_str(Bytes *o, const char *s)
{
    size_t k = strlen(s) + 1;
    if (o->n + k <= sizeof o->b) {
        memcpy(o->b + o->n, s, k);
        o->n += k;
    }
}

static void
pad_to(Bytes *o, size_t align)
{
    while (o->n % align && o->n < sizeof o->b)
        o->b[o->n++] = 0;
}

static void
section_header(Bytes *o, uint32_t name, uint32_t type, uint64_t flags, uint64_t off, uint64_t size,
               uint32_t link, uint32_t info, uint64_t align, uint64_t entsize)
{
    put(o, name, 4);
    put(o, type, 4);
    put(o, flags, 8);
    put(o, 0, 8); /* sh_addr */
    put(o, off, 8);
    put(o, size, 8);
    put(o, link, 4);
    put(o, info, 4);
    put(o, align, 8);
    put(o, entsize, 8);
}

int
mc_elf_blob_write(const char *path, const char *arch, const char *section, const char *symbol,
                  unsigned align, const void *data, size_t n, McErr *err)
{
    uint16_t machine;
    uint32_t eflags;
    if (mc_elf_machine(arch, &machine, &eflags))
        return mc_err(err, "%s: no ELF machine known for architecture '%s'", path, arch ? arch : "");
    if (!align || (align & (align - 1)) || strlen(section) + strlen(symbol) > 400)
        return mc_err(err, "%s: internal: bad alignment or names for the ELF object", path);

    /* the file: header | pad | blob, 0 | tail (tables and section headers) */
    uint64_t off_data = (EHDR_SIZE + (uint64_t)align - 1) / align * align;
    uint64_t end_data = off_data + n + 1, off_tail = (end_data + 7) & ~(uint64_t)7;
    Bytes t = {{0}, 0};
    /* .symtab: the null symbol, then the blob's (global: sh_info = 1) */
    uint64_t off_sym = off_tail;
    put(&t, 0, SYM_SIZE);
    put(&t, 1, 4); /* st_name: after .strtab's leading NUL */
    put(&t, STB_GLOBAL << 4 | STT_OBJECT, 1);
    put(&t, 0, 1);
    put(&t, 1, 2); /* st_shndx: the blob's section */
    put(&t, 0, 8);
    put(&t, (uint64_t)n + 1, 8);
    uint64_t off_str = off_tail + t.n;
    put(&t, 0, 1);
    put_str(&t, symbol);
    uint64_t str_size = off_tail + t.n - off_str, off_shstr = off_tail + t.n;
    uint32_t nm_sect = 1, nm_stack = nm_sect + (uint32_t)strlen(section) + 1;
    uint32_t nm_symtab = nm_stack + sizeof ".note.GNU-stack", nm_strtab = nm_symtab + sizeof ".symtab",
             nm_shstrtab = nm_strtab + sizeof ".strtab";
    put(&t, 0, 1);
    put_str(&t, section);
    put_str(&t, ".note.GNU-stack");
    put_str(&t, ".symtab");
    put_str(&t, ".strtab");
    put_str(&t, ".shstrtab");
    uint64_t shstr_size = off_tail + t.n - off_shstr;
    pad_to(&t, 8);
    uint64_t off_sh = off_tail + t.n;
    section_header(&t, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    section_header(&t, nm_sect, SHT_PROGBITS, SHF_ALLOC, off_data, (uint64_t)n + 1, 0, 0, align, 0);
    section_header(&t, nm_stack, SHT_PROGBITS, 0, end_data, 0, 0, 0, 1, 0);
    section_header(&t, nm_symtab, SHT_SYMTAB, 0, off_sym, 2 * SYM_SIZE, 4, 1, 8, SYM_SIZE);
    section_header(&t, nm_strtab, SHT_STRTAB, 0, off_str, str_size, 0, 0, 1, 0);
    section_header(&t, nm_shstrtab, SHT_STRTAB, 0, off_shstr, shstr_size, 0, 0, 1, 0);

    Bytes h = {{0}, 0};
    static const unsigned char ident[16] = {0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* LE */, 1 /* version */};
    memcpy(h.b, ident, sizeof ident);
    h.n = sizeof ident;
    put(&h, ET_REL, 2);
    put(&h, machine, 2);
    put(&h, 1, 4); /* e_version */
    put(&h, 0, 8); /* e_entry */
    put(&h, 0, 8); /* e_phoff */
    put(&h, off_sh, 8);
    put(&h, eflags, 4);
    put(&h, EHDR_SIZE, 2);
    put(&h, 0, 2); /* e_phentsize */
    put(&h, 0, 2); /* e_phnum */
    put(&h, SHDR_SIZE, 2);
    put(&h, NSECT, 2);
    put(&h, NSECT - 1, 2); /* e_shstrndx */
    while (h.n < off_data && h.n < sizeof h.b)
        h.b[h.n++] = 0;

    FILE *f = fopen(path, "wb");
    if (!f)
        return mc_err(err, "cannot write %s: %s", path, strerror(errno));
    int bad = fwrite(h.b, 1, h.n, f) != h.n;
    for (uint64_t pad = h.n; !bad && pad < off_data; pad++) /* alignments above 1024 */
        bad = fputc(0, f) == EOF;
    bad |= n && fwrite(data, 1, n, f) != n;
    static const unsigned char zeros[8];
    bad |= fwrite(zeros, 1, 1 + off_tail - end_data, f) != 1 + off_tail - end_data;
    bad |= fwrite(t.b, 1, t.n, f) != t.n;
    bad |= fclose(f) != 0;
    if (bad)
        return mc_err(err, "cannot write %s: %s", path, strerror(errno));
    return 0;
}
