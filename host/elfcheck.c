/*
 * The one ELF reader. Offsets and sizes come from the file: each range is
 * checked with `inside` (no addition that can wrap), and each header, symbol
 * and dynamic entry is copied out with `take` (no misaligned access).
 */
#include "elfcheck.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#endif

typedef struct image {
    const unsigned char *p;
    size_t size;
    const char *shown;
} image;

/* True if [off, off + n) lies inside the image (no overflow). */
static bool inside(const image *im, uint64_t off, uint64_t n)
{
    return off <= im->size && n <= im->size - off;
}

/* Copies n bytes at off into out if they lie inside the image. */
static bool take(const image *im, uint64_t off, void *out, size_t n)
{
    if (!inside(im, off, n))
        return false;
    memcpy(out, im->p + off, n);
    return true;
}

/* ------------------------------------------------------------------ opening */

static const char *file_kind(mode_t mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "not a file";
}

int ph_elf_open(const char *path, const char *package, int *fd_out, size_t *size_out)
{
    struct stat st;
    const char *p = package ? package : "?";
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), rc = 0;
    if (fd < 0 && (errno == EMFILE || errno == ENFILE))
        return ph_error_set(PH_EIO, "cannot open %s: %s", path, ph_strerror(errno));
    if (fd < 0)
        return ph_error_set(PH_ELOAD, "cannot open %s: %s; build the package first", path,
                            ph_strerror(errno));
    if (fstat(fd, &st) != 0)
        rc = ph_error_set(PH_EIO, "cannot read %s: %s", path, ph_strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = ph_error_set(PH_ELOAD,
                          "package '%s': library %s is not a regular file (it is %s); point "
                          "'library' in package.ini at the built .so",
                          p, path, file_kind(st.st_mode));
    else if (st.st_size < 0 || (uint64_t)st.st_size > PH_ELF_MAX_SIZE)
        rc = ph_error_set(PH_ELOAD,
                          "package '%s': library %s is %lld bytes, more than the %u a library "
                          "may have; is it the right file?",
                          p, path, (long long)st.st_size, PH_ELF_MAX_SIZE);
    else if (fcntl(fd, F_SETFL, 0) != 0)
        rc = ph_error_set(PH_EIO, "cannot read %s: %s", path, ph_strerror(errno));
    if (rc) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    *size_out = (size_t)st.st_size;
    return 0;
}

/* Reads at most `size` bytes (the size at open; a file that shrank gives fewer). */
static int read_fd(int fd, const char *path, size_t size, unsigned char **out, size_t *len)
{
    size_t got = 0;
    unsigned char *buf = malloc(size + 1);
    if (!buf)
        return ph_error_set(PH_ENOMEM, "out of memory reading %s", path);
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            return ph_error_set(PH_EIO, "cannot read %s: %s", path, ph_strerror(errno));
        }
        if (n == 0)
            break; /* shrank under us: check what was read */
        got += (size_t)n;
    }
    *out = buf;
    *len = got;
    return 0;
}

/* ------------------------------------------------------------------ checks */

static int truncated(const image *im)
{
    return ph_error_set(PH_ELOAD,
                        "%s is truncated or not a shared object; wait for the build to "
                        "finish",
                        im->shown);
}

static int check_header(const image *im, Elf64_Ehdr *eh)
{
    /* Text is not ELF at any size; the start of an ELF file is one still being written. */
    size_t head = im->size < SELFMAG ? im->size : SELFMAG;
    if (memcmp(im->p, ELFMAG, head) != 0)
        return ph_error_set(PH_ELOAD, "%s is not a 64-bit ELF shared object", im->shown);
    if (im->size < sizeof *eh)
        return ph_error_set(PH_ELOAD,
                            "%s is not a shared object (only %zu bytes); is it still being "
                            "written?",
                            im->shown, im->size);
    memcpy(eh, im->p, sizeof *eh);
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_type != ET_DYN)
        return ph_error_set(PH_ELOAD, "%s is not a 64-bit ELF shared object", im->shown);
#ifdef HOST_MACHINE
    if (eh->e_machine != HOST_MACHINE)
        return ph_error_set(PH_ELOAD, "%s was built for another machine (e_machine %u)", im->shown,
                            eh->e_machine);
#endif
    if (eh->e_phentsize != sizeof(Elf64_Phdr) ||
        !inside(im, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)))
        return ph_error_set(PH_ELOAD,
                            "%s is truncated: its program headers lie past the end of the "
                            "file (%zu bytes); wait for the build to finish",
                            im->shown, im->size);
    /* The section headers come last in the file: the mark of a finished write. */
    if (eh->e_shnum && (eh->e_shentsize != sizeof(Elf64_Shdr) ||
                        !inside(im, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr))))
        return ph_error_set(PH_ELOAD,
                            "%s is truncated: its section headers lie past the end of the "
                            "file (%zu bytes); wait for the build to finish",
                            im->shown, im->size);
    return 0;
}

/* The dynamic section: NODELETE, STATIC_TLS and TEXTREL. */
static int check_dynamic(const image *im, const Elf64_Phdr *ph)
{
    size_t n = ph->p_filesz / sizeof(Elf64_Dyn);
    for (size_t k = 0; k < n; k++) {
        Elf64_Dyn d;
        if (!take(im, ph->p_offset + k * sizeof d, &d, sizeof d))
            return truncated(im);
        if (d.d_tag == DT_NULL)
            break;
        if (d.d_tag == DT_FLAGS_1 && (d.d_un.d_val & DF_1_NODELETE))
            return ph_error_set(PH_ELOAD,
                                "%s is marked NODELETE (linked with -z nodelete): it could "
                                "never be unloaded, so it cannot be reloaded; build it without "
                                "-Wl,-z,nodelete",
                                im->shown);
        /* Initial-exec TLS takes the static TLS block, which glibc never gives back:
         * every reload takes more until dlopen fails. */
        if (d.d_tag == DT_FLAGS && (d.d_un.d_val & DF_STATIC_TLS))
            return ph_error_set(PH_ELOAD,
                                "%s uses static TLS (DF_STATIC_TLS: thread-local variables "
                                "built with -ftls-model=initial-exec): glibc cannot give its "
                                "space back, so reloading it would fail after a few builds; "
                                "rebuild it with -fPIC and the default global-dynamic TLS model "
                                "(drop -ftls-model=initial-exec and tls_model(\"initial-exec\"))",
                                im->shown);
        if (d.d_tag == DT_TEXTREL || (d.d_tag == DT_FLAGS && (d.d_un.d_val & DF_TEXTREL)))
            return ph_error_set(PH_ELOAD,
                                "%s has text relocations; compile every source with -fPIC "
                                "(plughost_add_package does)",
                                im->shown);
    }
    return 0;
}

/* Every segment inside the file; the dynamic one checked. */
static int check_segments(const image *im, const Elf64_Ehdr *eh)
{
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph;
        if (!take(im, eh->e_phoff + (uint64_t)i * sizeof ph, &ph, sizeof ph))
            return truncated(im);
        if ((ph.p_type == PT_LOAD || ph.p_type == PT_DYNAMIC) &&
            !inside(im, ph.p_offset, ph.p_filesz))
            return ph_error_set(PH_ELOAD,
                                "%s is truncated: a %s segment ends past the end of the "
                                "file; wait for the build to finish",
                                im->shown, ph.p_type == PT_LOAD ? "loadable" : "dynamic");
        if (ph.p_type == PT_DYNAMIC) {
            int rc = check_dynamic(im, &ph);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* A symbol name fit for a message: printable ASCII, NUL-terminated inside the table. */
static const char *symbol_name(const image *im, const Elf64_Shdr *str, uint32_t name)
{
    if (name >= str->sh_size)
        return "?";
    const char *s = (const char *)im->p + str->sh_offset + name;
    size_t max = str->sh_size - name, n = 0;
    while (n < max && n < 256 && s[n] >= 0x20 && s[n] < 0x7F)
        n++;
    return n < max && s[n] == '\0' && n > 0 ? s : "?";
}

/* Looks for a defined STB_GNU_UNIQUE symbol in one SHT_DYNSYM section. */
static int check_dynsym(const image *im, const Elf64_Ehdr *eh, const Elf64_Shdr *sym)
{
    Elf64_Shdr str;
    if (sym->sh_link >= eh->e_shnum || sym->sh_entsize != sizeof(Elf64_Sym) ||
        !inside(im, sym->sh_offset, sym->sh_size) ||
        !take(im, eh->e_shoff + (uint64_t)sym->sh_link * sizeof str, &str, sizeof str) ||
        !inside(im, str.sh_offset, str.sh_size))
        return truncated(im);
    size_t n = sym->sh_size / sizeof(Elf64_Sym);
    for (size_t k = 0; k < n; k++) {
        Elf64_Sym s;
        if (!take(im, sym->sh_offset + k * sizeof s, &s, sizeof s))
            return truncated(im);
        if (ELF64_ST_BIND(s.st_info) != STB_GNU_UNIQUE || s.st_shndx == SHN_UNDEF)
            continue;
        return ph_error_set(PH_ELOAD,
                            "%s defines the STB_GNU_UNIQUE symbol '%s': glibc never unloads "
                            "such an object and a new copy would reuse the old one's state; "
                            "build with -fvisibility=hidden (C++: also -fno-gnu-unique, and the "
                            "shared libstdc++), as plughost_add_package does",
                            im->shown, symbol_name(im, &str, s.st_name));
    }
    return 0;
}

static int check_sections(const image *im, const Elf64_Ehdr *eh)
{
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        Elf64_Shdr sh;
        if (!take(im, eh->e_shoff + (uint64_t)i * sizeof sh, &sh, sizeof sh))
            return truncated(im);
        if (sh.sh_type == SHT_DYNSYM) {
            int rc = check_dynsym(im, eh, &sh);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int ph_elf_check_image(const unsigned char *p, size_t len, const char *shown)
{
    image im = {p, len, shown};
    Elf64_Ehdr eh;
    int rc = check_header(&im, &eh);
    if (!rc)
        rc = check_segments(&im, &eh);
    if (!rc)
        rc = check_sections(&im, &eh);
    return rc;
}

/* Same function as ph_file_hash (loader.c), so the two can be compared. */
static void fnv_hex(const unsigned char *p, size_t n, char out[17])
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

int ph_elf_check(const char *path, const char *package, const char *shown, char *hash_out)
{
    unsigned char *buf = NULL;
    size_t size = 0, len = 0;
    int fd = -1;
    if (hash_out)
        hash_out[0] = 0;
    int rc = ph_elf_open(path, package, &fd, &size);
    if (rc)
        return rc;
    rc = read_fd(fd, path, size, &buf, &len);
    close(fd);
    if (rc)
        return rc;
    if (hash_out)
        fnv_hex(buf, len, hash_out);
    rc = ph_elf_check_image(buf, len, shown ? shown : path);
    free(buf);
    return rc;
}
