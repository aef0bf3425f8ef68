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

int ph_elf_read(const char *path, const char *package, unsigned char **out, size_t *len)
{
    size_t size = 0;
    int fd = -1;
    *out = NULL;
    *len = 0;
    int rc = ph_elf_open(path, package, &fd, &size);
    if (rc)
        return rc;
    rc = read_fd(fd, path, size, out, len);
    close(fd);
    return rc;
}

int ph_elf_check(const char *path, const char *package, const char *shown, char *hash_out)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    if (hash_out)
        hash_out[0] = 0;
    int rc = ph_elf_read(path, package, &buf, &len);
    if (rc)
        return rc;
    if (hash_out)
        fnv_hex(buf, len, hash_out);
    rc = ph_elf_check_image(buf, len, shown ? shown : path);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------ dynamic info */

/* The file offset of virtual address v (inside a PT_LOAD's file bytes), or SIZE_MAX. */
static size_t vaddr_offset(const image *im, const Elf64_Ehdr *eh, uint64_t v)
{
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph;
        if (!take(im, eh->e_phoff + (uint64_t)i * sizeof ph, &ph, sizeof ph))
            return SIZE_MAX;
        if (ph.p_type == PT_LOAD && v >= ph.p_vaddr && v - ph.p_vaddr < ph.p_filesz &&
            inside(im, ph.p_offset + (v - ph.p_vaddr), 1))
            return (size_t)(ph.p_offset + (v - ph.p_vaddr));
    }
    return SIZE_MAX;
}

typedef struct strtab {
    size_t off, size;
} strtab;

/* The string at index `i` of the table, NUL-terminated inside it (at most 4096 bytes). */
static const char *table_string(const image *im, const strtab *t, uint64_t i, size_t *off)
{
    if (i >= t->size)
        return NULL;
    const char *s = (const char *)im->p + t->off + i;
    size_t max = t->size - i;
    size_t n = strnlen(s, max < 4096 ? max : 4096);
    if (n == max || n == 4096)
        return NULL;
    *off = t->off + (size_t)i;
    return s;
}

static int grow(void **arr, size_t *n, size_t each)
{
    if (*n >= 4096) /* far past any real library */
        return -1;
    void *p = realloc(*arr, (*n + 1) * each);
    if (!p)
        return -1;
    *arr = p;
    return 0;
}

static int add_str(ph_elf_str **arr, size_t *n, const char *text, size_t off)
{
    char *copy = strdup(text);
    if (!copy || grow((void **)arr, n, sizeof **arr)) {
        free(copy);
        return -1;
    }
    (*arr)[(*n)++] = (ph_elf_str){copy, off};
    return 0;
}

static int add_text(char ***arr, size_t *n, const char *text, size_t len)
{
    char *copy = strndup(text, len);
    if (!copy || grow((void **)arr, n, sizeof **arr)) {
        free(copy);
        return -1;
    }
    (*arr)[(*n)++] = copy;
    return 0;
}

static int add_off(size_t **arr, size_t *n, size_t off)
{
    if (grow((void **)arr, n, sizeof **arr))
        return -1;
    (*arr)[(*n)++] = off;
    return 0;
}

static int split_search(ph_elf_dyn *d, const char *path)
{
    for (const char *p = path;;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len && add_text(&d->search, &d->n_search, p, len))
            return -1;
        if (!end)
            return 0;
        p = end + 1;
    }
}

typedef struct dyn_values {
    uint64_t strtab, strsz, verneed, verneednum;
    int has_strtab, has_verneed, has_runpath;
} dyn_values;

/* Walks the dynamic section twice: first the table addresses, then the strings. */
static int read_dynamic(const image *im, const Elf64_Ehdr *eh, const Elf64_Phdr *dp, ph_elf_dyn *d,
                        strtab *st, dyn_values *v)
{
    size_t n = dp->p_filesz / sizeof(Elf64_Dyn);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < n; k++) {
            Elf64_Dyn e;
            size_t off = 0;
            if (!take(im, dp->p_offset + k * sizeof e, &e, sizeof e))
                return truncated(im);
            if (e.d_tag == DT_NULL)
                break;
            if (pass == 0) {
                if (e.d_tag == DT_STRTAB)
                    v->strtab = e.d_un.d_ptr, v->has_strtab = 1;
                else if (e.d_tag == DT_STRSZ)
                    v->strsz = e.d_un.d_val;
                else if (e.d_tag == DT_VERNEED)
                    v->verneed = e.d_un.d_ptr, v->has_verneed = 1;
                else if (e.d_tag == DT_VERNEEDNUM)
                    v->verneednum = e.d_un.d_val;
                else if (e.d_tag == DT_RUNPATH)
                    v->has_runpath = 1;
                continue;
            }
            if (e.d_tag != DT_NEEDED && e.d_tag != DT_SONAME && e.d_tag != DT_RPATH &&
                e.d_tag != DT_RUNPATH)
                continue;
            const char *s = table_string(im, st, e.d_un.d_val, &off);
            if (!s)
                return truncated(im);
            int bad = 0;
            if (e.d_tag == DT_NEEDED)
                bad = add_str(&d->needed, &d->n_needed, s, off);
            else
                bad = add_off(&d->strings, &d->n_strings, off);
            if (!bad && (e.d_tag == DT_RUNPATH || (e.d_tag == DT_RPATH && !v->has_runpath)))
                bad = split_search(d, s);
            if (bad)
                return ph_error_set(PH_ENOMEM, "out of memory reading %s", im->shown);
        }
        if (pass == 0) {
            if (!v->has_strtab)
                return 0; /* no strings: nothing needed */
            st->off = vaddr_offset(im, eh, v->strtab);
            st->size = v->strsz;
            if (st->off == SIZE_MAX || !inside(im, st->off, st->size))
                return truncated(im);
        }
    }
    return 0;
}

/* The file names of the version needs (they name needed libraries too). */
static int read_verneed(const image *im, const Elf64_Ehdr *eh, const strtab *st,
                        const dyn_values *v, ph_elf_dyn *d)
{
    if (!v->has_verneed || !v->has_strtab)
        return 0;
    size_t at = vaddr_offset(im, eh, v->verneed);
    for (uint64_t i = 0; i < v->verneednum && i < 1024; i++) {
        Elf64_Verneed vn;
        size_t off = 0;
        const char *s;
        if (at == SIZE_MAX || !take(im, at, &vn, sizeof vn) ||
            !(s = table_string(im, st, vn.vn_file, &off)))
            return truncated(im);
        if (add_str(&d->verneed, &d->n_verneed, s, off))
            return ph_error_set(PH_ENOMEM, "out of memory reading %s", im->shown);
        if (!vn.vn_next)
            break;
        at = vn.vn_next > SIZE_MAX - at ? SIZE_MAX : at + vn.vn_next;
    }
    return 0;
}

/* Symbols the static linker (or a sanitizer) adds to a shared object: not the package's doing. */
static bool linker_symbol(const char *name)
{
    static const char *const own[] = {
        "_init",         "_fini",       "_edata",         "_end",
        "__bss_start",   "_DYNAMIC",    "__data_start",   "data_start",
        "__dso_handle",  "__TMC_END__", "_IO_stdin_used", "_GLOBAL_OFFSET_TABLE_",
        "__bss_start__", "__end__",     "_bss_end__",     "__bss_end__"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strcmp(name, own[i]) == 0)
            return true;
    /* AddressSanitizer's one-definition-rule indicators, one per exported variable */
    return strncmp(name, "__odr_asan", 10) == 0;
}

static int read_exports(const image *im, const Elf64_Ehdr *eh, ph_elf_dyn *d)
{
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        Elf64_Shdr sh, str;
        if (!take(im, eh->e_shoff + (uint64_t)i * sizeof sh, &sh, sizeof sh))
            return truncated(im);
        if (sh.sh_type != SHT_DYNSYM)
            continue;
        /* ph_elf_check_image checked the table and its string table. */
        if (sh.sh_link >= eh->e_shnum ||
            !take(im, eh->e_shoff + (uint64_t)sh.sh_link * sizeof str, &str, sizeof str) ||
            !inside(im, sh.sh_offset, sh.sh_size) || !inside(im, str.sh_offset, str.sh_size))
            return truncated(im);
        strtab t = {(size_t)str.sh_offset, (size_t)str.sh_size};
        for (size_t k = 1; k < sh.sh_size / sizeof(Elf64_Sym); k++) {
            Elf64_Sym s;
            size_t off = 0;
            const char *name;
            int bind, type;
            if (!take(im, sh.sh_offset + k * sizeof s, &s, sizeof s))
                return truncated(im);
            bind = ELF64_ST_BIND(s.st_info);
            type = ELF64_ST_TYPE(s.st_info);
            if (s.st_shndx == SHN_UNDEF || (bind != STB_GLOBAL && bind != STB_WEAK) ||
                ELF64_ST_VISIBILITY(s.st_other) != STV_DEFAULT || type == STT_SECTION ||
                type == STT_FILE || !(name = table_string(im, &t, s.st_name, &off)) || !*name ||
                linker_symbol(name))
                continue;
            if (add_text(&d->exports, &d->n_exports, name, strlen(name)))
                return ph_error_set(PH_ENOMEM, "out of memory reading %s", im->shown);
        }
    }
    return 0;
}

int ph_elf_dyn_read(const unsigned char *p, size_t len, const char *shown, ph_elf_dyn *out)
{
    image im = {p, len, shown};
    Elf64_Ehdr eh;
    strtab st = {0, 0};
    dyn_values v = {0};
    memset(out, 0, sizeof *out);
    int rc = check_header(&im, &eh);
    for (unsigned i = 0; !rc && i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (!take(&im, eh.e_phoff + (uint64_t)i * sizeof ph, &ph, sizeof ph))
            rc = truncated(&im);
        else if (ph.p_type == PT_DYNAMIC) {
            if (!(rc = read_dynamic(&im, &eh, &ph, out, &st, &v)))
                rc = read_verneed(&im, &eh, &st, &v, out);
            break;
        }
    }
    if (!rc)
        rc = read_exports(&im, &eh, out);
    if (rc)
        ph_elf_dyn_free(out);
    return rc;
}

void ph_elf_dyn_free(ph_elf_dyn *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_needed; i++)
        free(d->needed[i].text);
    for (size_t i = 0; i < d->n_verneed; i++)
        free(d->verneed[i].text);
    for (size_t i = 0; i < d->n_search; i++)
        free(d->search[i]);
    for (size_t i = 0; i < d->n_exports; i++)
        free(d->exports[i]);
    free(d->needed);
    free(d->verneed);
    free(d->search);
    free(d->strings);
    free(d->exports);
    memset(d, 0, sizeof *d);
}
