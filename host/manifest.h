/*
 * package.ini: a package's manifest, read before any code of it runs.
 *
 *   [package]    name, version (semver), description, abi (default 1),
 *                library (default "<name>.so"), disable_crud (bool),
 *                manager (bool: may manage the host, for the package manager)
 *   [requires]   NAME = RANGE
 *   [optional]   NAME = RANGE
 *   [conflicts]  NAME = RANGE
 *   [provides]   CAPABILITY = VERSION (a name other packages may require, as
 *                Debian's Provides: "sql-store = 1.4.0")
 *   [parameters] NAME = DEFAULT
 *   [endpoint E] PARAM = TYPE      an extension point others contribute to; TYPE is
 *                                  string, int64, double or bool, '?' after it makes
 *                                  the parameter optional
 *   [hook E] or [hook E ITEM]      a contribution to endpoint E: PARAM = VALUE (ITEM
 *                                  defaults to the package name)
 * Metadata in [package] (APM): author, url (http/https), license (an SPDX
 * expression such as "MIT OR Apache-2.0"), summary (one line), kind
 * (application, the default, or service).
 *
 * Errors name "path:line" and the field, e.g.
 *   pkg/package.ini:3: 'version' in [package]: invalid version '1.0': expected ...
 *   pkg/package.ini:7: unknown key 'vesion' in [package]; known keys: name, version, ...
 *   pkg/package.ini: [package] has no 'name'; add name = <package name>
 * The name follows ph_config_check_name (no dots: it is used in URLs and
 * addresses). A package may not name itself in a dependency section, nor one
 * package in two of [requires], [optional] and [conflicts]; it may not
 * provide its own name, nor require or conflict with what it provides.
 */
#ifndef PH_HOST_MANIFEST_H
#define PH_HOST_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "config.h"
#include "semver.h"

typedef struct ph_dep {
    char *name;
    ph_range range;
    int line;
} ph_dep;

/** [endpoint NAME]: the parameters a contribution gives (key = name, value = type). */
typedef struct ph_endpoint {
    char *name;
    ph_kv *params; /* value: "string", "int64", "double" or "bool", '?' appended if optional */
    size_t n_params;
    int line; /* of the section header */
} ph_endpoint;

/** [hook ENDPOINT ITEM]: one contribution, checked against the declaration by hooks.c. */
typedef struct ph_hook {
    char *endpoint;
    char *item;
    ph_kv *values;
    size_t n_values;
    int line;
} ph_hook;
/* One line of [provides]: a capability and the version of it the package provides. */
typedef struct ph_provide {
    char *name;
    char *version_text;
    ph_semver version;
    int line;
} ph_provide;

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
    ph_provide *provides;
    size_t n_provides;
    ph_kv *params; /* declared parameters with their defaults */
    size_t n_params;
    ph_kv *limits; /* [limits]: call_timeout and ACTOR.METHOD = seconds (checked durations) */
    size_t n_limits;
    /* metadata (NULL when not given; kind is never NULL after a load) */
    char *author;
    char *url;
    char *license;
    char *summary;
    char *kind; /* "application" or "service" */
    ph_endpoint *endpoints;
    size_t n_endpoints;
    ph_hook *hooks;
    size_t n_hooks;
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

/** The endpoint `name` that `m` declares, or NULL. */
const ph_endpoint *ph_manifest_endpoint(const ph_manifest *m, const char *name);
/** The [provides] line of `m` for capability `name`, or NULL. */
const ph_provide *ph_manifest_provides(const ph_manifest *m, const char *name);
/** What `m` provides, {"CAPABILITY": "VERSION"} (new reference; {} when nothing). */
json_t *ph_manifest_provides_json(const ph_manifest *m);
/** Prints what `m` provides to `f`: "sql-store 1.4.0, kv 2.0.0" (nothing when nothing). */
void ph_manifest_provides_print(FILE *f, const ph_manifest *m);

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
