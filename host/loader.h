/*
 * Loading a package's code: a private copy of its .so (a fresh inode per
 * version, so dlopen never returns a stale handle and a writer of the
 * original file cannot corrupt the mapping), dlopen(RTLD_NOW|RTLD_LOCAL),
 * and validation of the descriptor against the manifest before any code of
 * the package is called.
 */
#ifndef PH_HOST_LOADER_H
#define PH_HOST_LOADER_H

#include <stdbool.h>

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
 * Makes the private copy of m->library under `stage_dir` (a directory per
 * load that mirrors the package directory: the .so and the libraries it
 * needs through a $ORIGIN-relative RUNPATH/RPATH, see loader.c), checks
 * every file with the ELF reader (complete, reloadable, no exported symbol
 * that the host's global scope already has: that is refused, other exports
 * besides the descriptor are logged as a warning), has a scanner child
 * (scan.h, ph_scan_descriptor) dlopen the copy and validate the descriptor
 * unless this build was accepted before (<stage_dir>.accepted/) -- a
 * refusal is remembered by the process --, then
 * dlopens the copy, finds PH_DESCRIPTOR_SYMBOL and validates it
 * (ph_loader_validate). So no code of a build runs in the calling process
 * before its descriptor was accepted. *out owned by the caller:
 * ph_module_close. Errors (PH_ELOAD, PH_EABI, PH_EMANIFEST) name the package,
 * the file and what to do.
 */
int ph_module_open(const ph_manifest *m, const char *stage_dir, ph_module **out);
/**
 * The time limit of the host's dlopen of a build (its ELF constructors):
 * [limits] load_timeout; ms <= 0 restores PH_LOAD_TIMEOUT_MS. Applies where
 * the loading thread blocks SIGTERM and SIGINT (the daemon). Past it the
 * host reports and journals the build as hung (quarantined: the next start
 * refuses it) and ends with PH_LOAD_HUNG_STATUS, since a thread stuck in the
 * dynamic loader holds its lock for good.
 */
void ph_loader_set_load_timeout_ms(int ms);
#define PH_LOAD_TIMEOUT_MS 10000
/** The exit status of a host ended by a hung constructor (EX_TEMPFAIL: restart it). */
#define PH_LOAD_HUNG_STATUS 75

/**
 * While the host does something that may hang (`what`: "the instances are
 * starting"): a thread takes SIGTERM and SIGINT if the calling thread
 * blocks them (the daemon): the first is logged ("SIGTERM received while
 * WHAT: stopping once UNTIL; ...") and handed back to the process once
 * ph_watch_end is called, a second ends the host at once (exit status 1,
 * logged). The host's own dlopen of a build is watched the same way, with
 * [limits] load_timeout. NULL when nothing is to be watched (ph_watch_end
 * accepts it).
 */
typedef struct ph_watch ph_watch;
ph_watch *ph_watch_start(const char *what, const char *until);
void ph_watch_end(ph_watch *w);

/**
 * Whether a watch took a SIGTERM/SIGINT it has not handed back yet: work
 * that can stop part way (the start-up, between instances) asks this, since
 * the signal is no longer pending for sigpending() to see.
 */
bool ph_watch_stop_requested(void);

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

/**
 * The hash (FNV-1a 64, hex) of the libraries m->library needs from the
 * package directory through $ORIGIN (their paths and bytes), or "" when it
 * needs none: part of the build's identity (build.c). 0 or the error that
 * kept the files from being read. Thread-safe.
 */
int ph_module_libs_hash(const ph_manifest *m, char out[17]);

/**
 * Called in a scanner child: ph_module_open loads without asking another
 * scanner. Not for the host process.
 */
void ph_loader_in_scanner(void);

/**
 * In a scanner child only: dlopens the staged copy `copy` of m's library
 * (never closed: the child exits), finds the descriptor and validates it.
 * 0 or the error (PH_ELOAD, PH_EABI, PH_EMANIFEST).
 */
int ph_loader_probe(const ph_manifest *m, const char *copy);

/** Hash of a library file's content (as in ph_module.hash): a regular file of at most
 * PH_ELF_MAX_SIZE bytes (ph_elf_open), never blocking. 0, PH_ELOAD or PH_EIO. */
int ph_file_hash(const char *path, char out[17]);

#endif
