/*
 * ELF checks for shared objects that must be unloadable: hot reload keeps a
 * package's old copy mapped only until its new one serves, so a build that
 * glibc can never unload (or that binds into the old copy's state) is
 * refused before it is loaded.
 */
#ifndef PH_HOST_ELFCHECK_H
#define PH_HOST_ELFCHECK_H

/**
 * Checks the 64-bit ELF shared object at `path` (`shown` is the name used
 * in messages, e.g. the package's .so rather than a private copy) for what
 * makes it unsafe to reload:
 *   - STB_GNU_UNIQUE symbols in .dynsym (glibc marks the object NODELETE and
 *     a later copy binds to the old copy's object, carrying state over);
 *   - DF_1_NODELETE (linked with -z nodelete);
 *   - text relocations (DT_TEXTREL / DF_TEXTREL: not built with -fPIC).
 * Every offset is bounds-checked, so a truncated or garbage file yields an
 * error, never a fault. If `hash_out` is not NULL it receives the FNV-1a 64
 * hash (hex, as ph_file_hash) of exactly the bytes checked, or "" if the
 * file could not be read: a caller that loads the file later compares it
 * with the loaded copy's hash to know the checked bytes are the loaded ones.
 * Returns 0, PH_ELOAD (with a message naming `shown`, the symbol, and how to
 * build it instead) or PH_EIO. Thread-safe.
 */
int ph_elf_check_reloadable(const char *path, const char *shown, char *hash_out);

#endif
