/*
 * The identity of a package build: everything the host reads from a package
 * directory to run it. Two builds are the same build exactly when their
 * identities are equal; every lifecycle path (the watcher, `plughost
 * reload`, SIGHUP, the package manager) compares identities, so a change to
 * package.ini alone (a parameter default, a dependency) or to sql/ alone (a
 * fixed upgrade script) is a new build just as a new .so is.
 *
 * What is covered: the .so's bytes, package.ini's bytes, and the name and
 * bytes of every regular file directly under sql/ (in name order). www/ and
 * wiki/ are served from disk as they are and need no reload.
 */
#ifndef PH_HOST_BUILD_H
#define PH_HOST_BUILD_H

#include "manifest.h"

/** Length of an identity: 16 lowercase hex digits (FNV-1a 64) and a NUL. */
#define PH_BUILD_ID_LEN 17

/**
 * Computes the identity of the build of manifest `m` into `out`.
 * `so_hash` is the hash of the .so (ph_file_hash) when the caller already
 * has it (e.g. of the private copy it loaded), or NULL to read m->library.
 * Returns 0, or PH_EIO naming the file that cannot be read (out is then "").
 * Thread-safe; reads the files, runs no package code.
 */
int ph_build_id(const ph_manifest *m, const char *so_hash, char out[PH_BUILD_ID_LEN]);

#endif
