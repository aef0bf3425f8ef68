/*
 * Loading a package's code: a private copy of its .so (a fresh inode per
 * version, so dlopen never returns a stale handle and a writer of the
 * original file cannot corrupt the mapping), dlopen(RTLD_NOW|RTLD_LOCAL),
 * and validation of the descriptor against the manifest before any code of
 * the package is called.
 */
#ifndef PH_HOST_LOADER_H
#define PH_HOST_LOADER_H

#include <plughost/sdk.h>

#include "manifest.h"

typedef struct ph_module {
    char *source;           /* the .so the copy was made from */
    char *copy;             /* the private copy (unlinked once mapped) */
    void *handle;           /* dlopen handle */
    const ph_package *desc; /* the validated descriptor, inside the mapping */
    char hash[17];          /* FNV-1a 64 of the file, hex: identifies a build */
    int residue;            /* its slot in residue.c's table, or -1 */
} ph_module;

/**
 * Copies m->library into `stage_dir`, checks the ELF is complete, dlopens
 * it, finds PH_DESCRIPTOR_SYMBOL and validates it (ph_loader_validate).
 * Runs no package code (beyond what the dynamic linker runs: packages must
 * have no constructors). *out owned by the caller: ph_module_close.
 * Errors (PH_ELOAD, PH_EABI, PH_EMANIFEST) name the file and what to do.
 */
int ph_module_open(const ph_manifest *m, const char *stage_dir, ph_module **out);
/**
 * dlcloses and frees; accepts NULL. A build whose threads still run or
 * whose pthread keys were never deleted is not unmapped (residue.c logs
 * it, plughost status shows it); signal handlers left in it are reset.
 */
void ph_module_close(ph_module *mod);

/** Largest descriptor size accepted (a newer SDK's, with the fields it appended). */
#define PH_DESCRIPTOR_MAX 4096

/**
 * True if descriptor `d` (validated) has `field`: fields are appended, so an
 * older SDK's descriptor ends before the newer fields (they read as absent).
 */
#define PH_DESC_HAS(d, field) ((d)->size >= offsetof(ph_package, field) + sizeof((d)->field))

/**
 * Checks a descriptor: ABI version first, then size (a newer SDK's longer
 * descriptor only with zero unknown fields), name and version
 * against the manifest, then every table (names, types, counts, functions).
 * Messages say what was expected and what was found.
 */
int ph_loader_validate(const ph_package *d, const ph_manifest *m);

/** Hash of a library file's content (as in ph_module.hash): a regular file of at most
 * PH_ELF_MAX_SIZE bytes (ph_elf_open), never blocking. 0, PH_ELOAD or PH_EIO. */
int ph_file_hash(const char *path, char out[17]);

#endif
