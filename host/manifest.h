/*
 * package.ini: a package's manifest, read before any code of it runs.
 *
 *   [package]    name, version (semver), description, abi (default 1),
 *                library (default "<name>.so"), disable_crud (bool),
 *                manager (bool: may manage the host, for the package manager)
 *   [requires]   NAME = RANGE
 *   [optional]   NAME = RANGE
 *   [conflicts]  NAME = RANGE
 *   [parameters] NAME = DEFAULT
 *
 * Errors name "path:line" and the field, e.g.
 *   pkg/package.ini:3: 'version' in [package]: invalid version '1.0': expected ...
 *   pkg/package.ini:7: unknown key 'vesion' in [package]; known keys: name, version, ...
 *   pkg/package.ini: [package] has no 'name'; add name = <package name>
 * The name follows ph_config_check_name (no dots: it is used in URLs and
 * addresses). A package may not name itself in a dependency section, nor one
 * package in two of [requires], [optional] and [conflicts].
 */
#ifndef PH_HOST_MANIFEST_H
#define PH_HOST_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "semver.h"

typedef struct ph_dep {
    char *name;
    ph_range range;
    int line;
} ph_dep;

typedef struct ph_manifest {
    char *path; /* .../package.ini, absolute (directory canonicalised) */
    char *dir;  /* directory holding it, canonical absolute (www/, wiki/, sql/ live here) */
    char *name;
    char *version_text; /* as written */
    ph_semver version;
    char *description;
    char *library; /* the .so: "library" resolved against dir, default "<dir>/<name>.so" */
    int abi;       /* default 1 */
    bool disable_crud;
    bool manager; /* may use the host management API (the package manager) */
    ph_dep *requires;
    size_t n_requires;
    ph_dep *optional;
    size_t n_optional;
    ph_dep *conflicts;
    size_t n_conflicts;
    ph_kv *params; /* declared parameters with their defaults */
    size_t n_params;
    ph_kv *limits; /* [limits]: call_timeout and ACTOR.METHOD = seconds (checked durations) */
    size_t n_limits;
} ph_manifest;

/**
 * The time limit in ms [limits] of package.ini sets for method `actor`.`method`
 * (its own line, else call_timeout), or 0 when it sets none.
 */
int ph_manifest_call_timeout(const ph_manifest *m, const char *actor, const char *method);
/** stop()'s time limit in ms that [limits] stop_timeout of package.ini sets, or 0. */
int ph_manifest_stop_timeout(const ph_manifest *m);

/**
 * Reads one manifest. *out is owned by the caller (ph_manifest_free); NULL on
 * error. 0, PH_EMANIFEST (message "path:line: ..."), PH_EIO or PH_ENOMEM.
 * Thread-safe.
 */
int ph_manifest_load(const char *path, ph_manifest **out);
/** Frees a manifest; accepts NULL and half-built ones. */
void ph_manifest_free(ph_manifest *m);

/** True if `m` declares `pkg` in [requires] or [optional]. */
bool ph_manifest_depends_on(const ph_manifest *m, const char *pkg);

/** What discovery found: manifests and the problems of unreadable ones. */
typedef struct ph_manifest_set {
    ph_manifest **items;
    size_t n;
    char **problems;      /* one message per bad manifest */
    char **problem_names; /* per problem: the package name its manifest gives, or NULL */
    size_t n_problems;
} ph_manifest_set;

/**
 * Scans each directory: a directory holding package.ini is a package, and so
 * is each of its immediate subdirectories holding one. A manifest that fails
 * to parse becomes a problem; scanning goes on. Order is deterministic
 * (directories in the given order, entries sorted by name, bytewise).
 * Hidden entries (".name") are skipped; a package directory reached twice
 * (overlapping or repeated dirs, symlinks) is read once. A directory that is
 * missing or unreadable is a problem ("package directory 'D' does not exist;
 * ..."). Duplicate package names are kept: the resolver refuses them.
 * *out is overwritten; free it with ph_manifest_set_free. Returns 0, or
 * PH_ENOMEM (then *out is freed).
 */
int ph_manifest_discover(char *const *dirs, size_t n_dirs, ph_manifest_set *out);
/** Frees the set's manifests and problems; accepts a zeroed set. */
void ph_manifest_set_free(ph_manifest_set *s);

#endif
