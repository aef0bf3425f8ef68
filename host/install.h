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
 * resolution of the installed set `set` with them in place of their older
 * versions under `cfg` (every instance of them, or depending on them, must
 * be able to run), and, in the scanner child (scan.h: no package code runs
 * in this process), each build's descriptor, a rehearsal of each
 * instance's migration on a copy of its database, and its declared
 * interface against the installed build's (an upgrade within a major
 * version must keep it, semver). *m_out (caller frees with
 * ph_install_free(*m_out, n_dirs)) are the manifests read; *report (caller
 * owns): {"packages": [{"package", "version", "directory"}], "ok": bool,
 * "migrations": [text], "problems": [text]}. Returns 0 (look at "ok"), or
 * an error reading a manifest or a library (PH_EMANIFEST, PH_ELOAD...)
 * with the message naming the file.
 */
int ph_install_check(const ph_config *cfg, const ph_manifest_set *set, char *const *dirs,
                     size_t n_dirs, ph_manifest ***m_out, json_t **report);

/** Frees what ph_install_check returned; accepts NULL. */
void ph_install_free(ph_manifest **ms, size_t n);

/**
 * Copies the checked package `m` into the first package directory of
 * `cfg` as <dir>/<name>, replacing an older version of it in one rename
 * (nothing to do when it is there already). *target (caller frees) is the
 * directory. 0, or PH_ECONFIG/PH_EPERM/PH_EIO/PH_EINVAL naming the path.
 */
int ph_install_copy(const ph_config *cfg, const ph_manifest *m, char **target);

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
 * Uninstalls package `name` from a running host: before_uninstall(purge)
 * and before_delete run on every running instance of it (the first
 * before_uninstall that fails refuses the removal, nothing changed), then
 * every instance of it is disabled (refused while a running package
 * requires it), its directory is deleted and the host forgets it. The data
 * is kept; `purge` only tells the callbacks the caller deletes it next.
 * *out (caller owns): {"package", "directory", "result"}.
 */
int ph_uninstall(ph_host *h, const char *name, int purge, json_t **out);

#endif
