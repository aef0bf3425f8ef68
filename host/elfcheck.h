/*
 * The host's one ELF reader: everything the host checks in a package's .so
 * before dlopen sees it. A truncated, half-written or hostile file yields an
 * error, never a fault: every offset and size read from the file is
 * overflow-checked against the file's size, and every structure is copied
 * (memcpy) into a local, so no misaligned pointer into the file is ever
 * dereferenced.
 */
#ifndef PH_HOST_ELFCHECK_H
#define PH_HOST_ELFCHECK_H

#include <stddef.h>
#include <stdint.h>

/*
 * The largest library file the host opens: far above any package (the
 * examples are ~20 KiB), and small enough that reading a wrong file (a disk
 * image, a symlink to a huge file) is refused at once.
 */
#define PH_ELF_MAX_SIZE (256u * 1024u * 1024u)

/**
 * Opens a package's library file for reading without ever blocking: it must
 * be a regular file (after following symlinks) of at most PH_ELF_MAX_SIZE
 * bytes, so a FIFO, a device (/dev/zero) or a directory is refused at once.
 * `package` (may be NULL) names the package in messages. On success *fd_out
 * is an open descriptor (the caller closes it) and *size_out the file's size.
 * Errors (PH_ELOAD):
 *   "cannot open PATH: reason; build the package first"
 *   "package 'P': library PATH is not a regular file (it is a FIFO); ..."
 *   "package 'P': library PATH is N bytes, more than the M a library may have; ..."
 * Thread-safe.
 */
int ph_elf_open(const char *path, const char *package, int *fd_out, size_t *size_out);

/**
 * Checks `len` bytes of a 64-bit ELF shared object in memory (`shown` is the
 * name used in messages, e.g. the package's .so rather than a private copy):
 *   - an ELF64 little-endian ET_DYN header for this machine;
 *   - the program and section header tables and every PT_LOAD and
 *     PT_DYNAMIC segment inside the file (a half-written file is refused
 *     before dlopen could fault on it: "... is truncated ...");
 *   - what makes it unsafe to reload: STB_GNU_UNIQUE symbols in .dynsym
 *     (glibc marks the object NODELETE and a later copy binds to the old
 *     copy's object), DF_1_NODELETE, and text relocations.
 * Returns 0 or PH_ELOAD with a message naming `shown` and what to do.
 * Thread-safe.
 */
int ph_elf_check_image(const unsigned char *p, size_t len, const char *shown);

/**
 * Reads the library at `path` (as ph_elf_open: regular files only, size
 * capped) and checks it with ph_elf_check_image. If `hash_out` is not NULL it
 * receives the FNV-1a 64 hash (hex, as ph_file_hash) of exactly the bytes
 * checked, or "" if the file could not be read: a caller that loads the file
 * later compares it with the loaded copy's hash to know the checked bytes are
 * the loaded ones. Returns 0, PH_ELOAD, PH_EIO or PH_ENOMEM. Thread-safe.
 */
int ph_elf_check(const char *path, const char *package, const char *shown, char *hash_out);

/**
 * Reads the library at `path` (as ph_elf_open) into memory: *out (caller
 * frees) holds *len bytes (fewer than at open if it shrank). 0, PH_ELOAD,
 * PH_EIO or PH_ENOMEM. Thread-safe.
 */
int ph_elf_read(const char *path, const char *package, unsigned char **out, size_t *len);

/* A string of the dynamic string table and where it lies in the file. */
typedef struct ph_elf_str {
    char *text;
    size_t off; /* file offset of its first byte */
} ph_elf_str;

/* What the dynamic linker reads from a shared object's dynamic section and symbols. */
typedef struct ph_elf_dyn {
    ph_elf_str *needed; /* DT_NEEDED, in order */
    size_t n_needed;
    char **search; /* DT_RUNPATH entries (DT_RPATH when there is none), split at ':' */
    size_t n_search;
    ph_elf_str *verneed; /* the file names of DT_VERNEED entries */
    size_t n_verneed;
    size_t *strings; /* file offsets of the other dynamic strings (SONAME, RPATH, RUNPATH) */
    size_t n_strings;
    char **exports; /* defined global/weak default-visibility symbols, minus the linker's own */
    size_t n_exports;
} ph_elf_dyn;

/**
 * Reads the dynamic section and .dynsym of an image ph_elf_check_image
 * accepted: needed libraries, search path, version needs, exported
 * symbols (without those the static linker adds itself: _init, _fini,
 * _edata, _end, __bss_start, ..., and ASan's __odr_asan.* indicators).
 * *out is filled (ph_elf_dyn_free). 0, PH_ELOAD (a string or table outside
 * the file) or PH_ENOMEM. Thread-safe.
 */
int ph_elf_dyn_read(const unsigned char *p, size_t len, const char *shown, ph_elf_dyn *out);
/** Frees what ph_elf_dyn_read filled; accepts a zeroed or half-filled one. */
void ph_elf_dyn_free(ph_elf_dyn *d);

#endif
