#include "elfcheck.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

/* Far above any package; keeps a stray huge file from being read whole. */
#define ELF_MAX_SIZE (512u * 1024u * 1024u)

typedef struct image {
    const unsigned char *p;
    size_t size;
    const char *shown;
} image;

/* True if [off, off + n) lies inside the image (no overflow). */
static int inside(const image *im, uint64_t off, uint64_t n)
{
    return off <= im->size && n <= im->size - off;
}

static int read_all(const char *path, unsigned char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    struct stat st;
    unsigned char *buf = NULL;
    size_t got = 0;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = ph_error_set(PH_EIO, "cannot read %s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > ELF_MAX_SIZE) {
        rc =
            ph_error_set(PH_ELOAD, "%s is larger than %u bytes; not a package", path, ELF_MAX_SIZE);
        goto cleanup;
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        rc = ph_error_set(PH_ENOMEM, "out of memory reading %s", path);
        goto cleanup;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* shrank under us: check what was read */
        got += (size_t)n;
    }
    *out = buf;
    *len = got;
    buf = NULL;
cleanup:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int truncated(const image *im)
{
    return ph_error_set(PH_ELOAD,
                        "%s is truncated or not a shared object; wait for the build to "
                        "finish",
                        im->shown);
}

/* The first STB_GNU_UNIQUE symbol of .dynsym, or NULL; -1 in *bad if malformed. */
static const char *unique_symbol(const image *im, const Elf64_Ehdr *eh, int *bad)
{
    *bad = 0;
    if (!eh->e_shoff || !eh->e_shnum)
        return NULL; /* stripped of sections: the dynamic section check still applies */
    if (eh->e_shentsize != sizeof(Elf64_Shdr) ||
        !inside(im, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr))) {
        *bad = 1;
        return NULL;
    }
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(im->p + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM)
            continue;
        if (sh[i].sh_link >= eh->e_shnum || sh[i].sh_entsize != sizeof(Elf64_Sym) ||
            !inside(im, sh[i].sh_offset, sh[i].sh_size)) {
            *bad = 1;
            return NULL;
        }
        const Elf64_Shdr *str = &sh[sh[i].sh_link];
        if (!inside(im, str->sh_offset, str->sh_size) || str->sh_size == 0 ||
            im->p[str->sh_offset + str->sh_size - 1] != 0) {
            *bad = 1;
            return NULL;
        }
        const Elf64_Sym *sym = (const Elf64_Sym *)(im->p + sh[i].sh_offset);
        size_t n = sh[i].sh_size / sizeof(Elf64_Sym);
        for (size_t k = 0; k < n; k++)
            if (ELF64_ST_BIND(sym[k].st_info) == STB_GNU_UNIQUE && sym[k].st_shndx != SHN_UNDEF)
                return sym[k].st_name < str->sh_size
                           ? (const char *)im->p + str->sh_offset + sym[k].st_name
                           : "?";
    }
    return NULL;
}

/* Looks at PT_DYNAMIC: NODELETE and TEXTREL. */
static int check_dynamic(const image *im, const Elf64_Ehdr *eh)
{
    if (eh->e_phentsize != sizeof(Elf64_Phdr) ||
        !inside(im, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)))
        return truncated(im);
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(im->p + eh->e_phoff);
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_DYNAMIC)
            continue;
        if (!inside(im, ph[i].p_offset, ph[i].p_filesz))
            return truncated(im);
        const Elf64_Dyn *d = (const Elf64_Dyn *)(im->p + ph[i].p_offset);
        size_t n = ph[i].p_filesz / sizeof(Elf64_Dyn);
        for (size_t k = 0; k < n && d[k].d_tag != DT_NULL; k++) {
            if (d[k].d_tag == DT_FLAGS_1 && (d[k].d_un.d_val & DF_1_NODELETE))
                return ph_error_set(PH_ELOAD,
                                    "%s is marked NODELETE (linked with -z nodelete): "
                                    "it could never be unloaded, so it cannot be "
                                    "reloaded; build it without -Wl,-z,nodelete",
                                    im->shown);
            if (d[k].d_tag == DT_TEXTREL ||
                (d[k].d_tag == DT_FLAGS && (d[k].d_un.d_val & DF_TEXTREL)))
                return ph_error_set(PH_ELOAD,
                                    "%s has text relocations; compile every source "
                                    "with -fPIC (plughost_add_package does)",
                                    im->shown);
        }
    }
    return 0;
}

/* Same function as ph_file_hash (loader.c), so the two can be compared. */
static void fnv_hex(const unsigned char *p, size_t n, char out[17])
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

int ph_elf_check_reloadable(const char *path, const char *shown, char *hash_out)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    if (hash_out)
        hash_out[0] = 0;
    int rc = read_all(path, &buf, &len);
    if (rc)
        return rc;
    if (hash_out)
        fnv_hex(buf, len, hash_out);
    image im = {buf, len, shown ? shown : path};
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)buf;
    if (len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_type != ET_DYN) {
        rc = ph_error_set(PH_ELOAD,
                          "%s is not a 64-bit ELF shared object (%zu bytes); is it "
                          "still being written?",
                          im.shown, len);
        goto cleanup;
    }
    if ((rc = check_dynamic(&im, eh)))
        goto cleanup;
    int bad = 0;
    const char *u = unique_symbol(&im, eh, &bad);
    if (bad)
        rc = truncated(&im);
    else if (u)
        rc = ph_error_set(PH_ELOAD,
                          "%s defines the STB_GNU_UNIQUE symbol '%s': glibc never "
                          "unloads such an object and a new copy would reuse the old "
                          "one's state; build with -fvisibility=hidden (C++: also "
                          "-fno-gnu-unique, and the shared libstdc++), as "
                          "plughost_add_package does",
                          im.shown, u);
cleanup:
    free(buf);
    return rc;
}
