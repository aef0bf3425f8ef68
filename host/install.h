/*
 * Installing and uninstalling package directories, one implementation for
 * the CLI (`plughost install DIR`, `plughost remove NAME`), the HTTP host
 * endpoints (POST /_/install, POST /_/remove/NAME) and the package manager
 * (ThreeBot's package_add(path), APM's install): check first, then copy or
 * delete, then the host applies the change (ph_host_reconcile).
 */
#ifndef PH_HOST_INSTALL_H
#define PH_HOST_INSTALL_H

#include <jansson.h>

#include "host.h"

/**
 * Checks package directories `dirs` (n_dirs; installed together, e.g. a
 * package and its dependents across a major version) before anything is
 * copied: each manifest, a complete shared library (elfcheck.h),
 * resolution of the installed set `set` with them beside the installed
 * versions (replacing the same version) under `cfg` (every instance of
 * them, or depending on them, must be able to run), and, in the scanner child (scan.h: no package
 * code runs in this process), each build's descriptor, a rehearsal of each instance's migration on
 * a copy of its database, and its declared interface against the installed build's (an upgrade
 * within a major version must keep it, semver). *m_out (caller frees with ph_install_free(*m_out,
 * n_dirs)) are the manifests read; *report (caller owns): {"packages": [{"package", "version",
 * "directory"}], "ok": bool, "migrations": [text], "problems": [text], "notes": [text]} (a version
 * no instance would run is installed beside the others all the same, with
 * a note). Returns 0 (look at "ok"), or an error reading a manifest or a library (PH_EMANIFEST,
 * PH_ELOAD...) with the message naming the file.
 */
int ph_install_check(const ph_config *cfg, const ph_manifest_set *set, char *const *dirs,
                     size_t n_dirs, ph_manifest ***m_out, json_t **report);

/** Frees what ph_install_check returned; accepts NULL. */
void ph_install_free(ph_manifest **ms, size_t n);

/**
 * Where `m` is installed (*out, caller frees): in the first package
 * directory of `cfg`, the directory of the same version when one is there
 * (<dir>/<name> or <dir>/<name>-<version>; replaced), else <dir>/<name>
 * when that name is free, else <dir>/<name>-<version>: versions of a
 * package are installed side by side and the resolver chooses among them.
 * Returns 1 when `m` is there already, 0, or PH_ECONFIG/PH_ENOMEM.
 */
int ph_install_target(const ph_config *cfg, const ph_manifest_set *set, const ph_manifest *m,
                      char **out);

/* What ph_install_copy did, for ph_install_settle. */
typedef struct ph_install_copied {
    char *target; /* the package's directory now */
    char *kept;   /* the directory it replaced (the same version), moved aside; or NULL */
    int moved;    /* 0: nothing was copied (it was in place) */
} ph_install_copied;

/**
 * Copies the checked package `m` to ph_install_target (the installed set
 * `set`) in one rename, keeping a directory it replaces aside until
 * ph_install_settle. 0, or PH_ECONFIG/PH_EPERM/PH_EIO/PH_EINVAL naming the
 * path (nothing changed).
 */
int ph_install_copy(const ph_config *cfg, const ph_manifest_set *set, const ph_manifest *m,
                    ph_install_copied *out);

/**
 * Ends an install: with `undo` (the running host refused the change) the
 * copied directory is deleted and a replaced one put back, so the package
 * directory is as it was; otherwise the replaced one is deleted. Frees `c`.
 */
void ph_install_settle(ph_install_copied *c, int undo);

/**
 * The installed version a removal of `spec` ("NAME" or "NAME@VERSION")
 * takes, in *out (borrowed from `set`); *only says it is the package's only
 * version (its instances go with it). `plan` is the resolution of `set`.
 * Refused: NAME with several versions installed (PH_ECONFLICT listing them
 * and the instance running each), NAME@VERSION of a version an instance
 * runs while others are installed (PH_ECONFLICT naming the instance), an
 * unknown package or version (PH_ENOTFOUND), a bad name (PH_EINVAL).
 */
int ph_install_pick(const ph_manifest_set *set, const ph_plan *plan, const char *spec,
                    const ph_manifest **out, int *only);

/**
 * Deletes package `m`'s own directory (with `dry`, only checks it may): an
 * entry directly inside a package directory of `cfg`, holding no other
 * manifest, no package directory, data directory, token or config file; a
 * symlinked package loses the link, never its target. 0 or PH_EPERM/PH_EIO
 * saying why.
 */
int ph_uninstall_dir(const ph_config *cfg, const ph_manifest *m, int dry);

/**
 * The whole install on a running host: check, copy, then the host loads
 * it (ph_host_reconcile with the package forced). `path` is a package
 * directory or a distribution archive (NAME-VERSION.phpkg, dist.h:
 * verified against host.ini's [trust] and unpacked into a staging
 * directory first, removed afterwards). *out (caller owns): the check
 * report plus "directory", the state of each instance and, for an archive,
 * "archive". PH_EDEPENDENCY (nothing copied) when the check fails, with
 * the problems in the message; the archive's refusals (PH_EPERM, PH_ELOAD).
 */
int ph_install(ph_host *h, const char *path, json_t **out);

/**
 * Uninstalls `spec` from a running host (ph_install_pick). A version no
 * instance runs, beside others: its directory is deleted and the host
 * forgets it. The package's only version: before_uninstall(purge)
 * and before_delete run on every running instance of it (the first
 * before_uninstall that fails refuses the removal, nothing changed), then
 * every instance of it is disabled (refused while a running package
 * requires it), its directory is deleted and the host forgets it. The data
 * is kept; `purge` only tells the callbacks the caller deletes it next.
 * *out (caller owns): {"package", "version", "directory", "result"}.
 */
int ph_uninstall(ph_host *h, const char *spec, int purge, json_t **out);

#endif
