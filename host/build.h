/*
 * The identity of a package build: everything the host reads from a package
 * directory to run it. Two builds are the same build exactly when their
 * identities are equal; every lifecycle path (the watcher, `plughost
 * reload`, SIGHUP, the package manager) compares identities, so a change to
 * package.ini alone (a parameter default, a dependency) or to sql/ alone (a
 * fixed upgrade script) is a new build just as a new .so is.
 *
 * What is covered: the .so's bytes, the libraries it loads from the package
 * directory through $ORIGIN (their paths and bytes, ph_module_libs_hash),
 * package.ini's bytes, and the name and bytes of every regular file
 * directly under sql/ (in name order). www/ and
 * wiki/ are served from disk as they are and need no reload.
 */
#ifndef PH_HOST_BUILD_H
#define PH_HOST_BUILD_H

#include <jansson.h>

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

/**
 * Copies package directory `from` to `to` (created; must not exist):
 * directories and regular files with their modes, fsync'd. A link or
 * special file is refused (PH_EINVAL naming it), as it could reach outside
 * the package, or skipped with `skip_special`. Not reentrant (nftw keeps
 * no user pointer).
 */
int ph_copy_tree(const char *from, const char *to, int skip_special);

/*
 * The build store: a copy of every build that started, under
 * <data_dir>/.builds/<instance>/<build id>/ (the newest PH_BUILDS_KEPT per
 * instance), and a mark on the ones that served through their probation
 * (PH_PROBATION_S) or until a clean stop. When a new build crashes the host
 * before it is proven, the next start runs the last proven build instead of
 * failing the instance (the "good.so" of notes/hot-reload.md) until a new
 * build arrives.
 */
#define PH_BUILDS_KEPT 3
#define PH_PROBATION_S 60

/** Keeps a copy of the build of `m` (identity `build`) for `instance`. 0 or PH_EIO/PH_ENOMEM. */
int ph_build_keep(const char *data_dir, const char *instance, const ph_manifest *m,
                  const char *build);
/** Marks a kept build as proven. 0 or PH_ENOMEM. */
int ph_build_prove(const char *data_dir, const char *instance, const char *build);
/** True if the build is kept and proven. */
int ph_build_proven(const char *data_dir, const char *instance, const char *build);
/**
 * The directory of the newest proven build of `instance` other than
 * `not_build`: *out (caller frees), or PH_ENOTFOUND.
 */
int ph_build_last_good(const char *data_dir, const char *instance, const char *not_build,
                       char **out);

/**
 * Records the declared interface (interface.h's JSON, borrowed) of the
 * build of `version` that just started for `instance`, in
 * <data_dir>/.builds/<instance>/interface.json, so that the next build
 * (after a restart, enable or install) is held to semver against it.
 * 0, PH_ENOMEM or PH_EIO.
 */
int ph_build_record_interface(const char *data_dir, const char *instance, const char *version,
                              json_t *iface);

/** The last recorded {"version", "interface"} of `instance` (new reference), or NULL. */
json_t *ph_build_last_interface(const char *data_dir, const char *instance);

#endif
