/*
 * Resolution: from the configuration and the discovered manifests to a plan,
 * the instances to run in dependency order. Runs no package code.
 *
 * Instances: every [instance NAME] of the config; plus, for each discovered
 * package that no [instance] section uses, a default instance named after the
 * package. Instances with enabled = false are left out (so
 * "[instance x] enabled = false" turns package x off). If a default instance's
 * name is taken by an [instance] section running another package, the package
 * gets no instance and a problem says so.
 *
 * An instance depends on every instance of each package its package requires
 * (and of each installed [optional] one within range). Load order is
 * topological; among instances that are ready, the one earlier in base order
 * (discovery order of the packages, then config order) comes first, so the
 * plan is deterministic.
 *
 * An instance fails when its package: has a duplicate name (both copies are
 * refused, the error names both paths), declares another ABI, requires a
 * package that is missing or whose version is outside the range (the message
 * names the package, the range and the version found; an installed
 * [optional] package outside its range counts too), conflicts with a present
 * package, is on a dependency cycle (the message prints the path
 * "a -> b -> c -> a"), or is configured with a parameter it does not declare
 * (config file:line). A configured instance whose package is not installed,
 * and one whose mount another instance already uses, fail as well.
 * Instances depending on a failed one are skipped, naming it; a failed
 * optional dependency only drops the edge.
 *
 * Messages (the item's reason):
 *   instance 'app' (package app 1.0.0) requires package 'auth' (^1.0), which is not
 *     installed; add it to a package directory or remove the requirement
 *   package 'app' 1.0.0 requires auth ^2.0 but auth 1.4.0 is installed; ...
 *   package 'x' declares abi 2 but this host supports abi 1; ...
 *   dependency cycle: a -> b -> c -> a; remove one of these requirements
 *   host.ini:14: instance 'blog' sets parameter 'page_sise', which package 'notes' does
 *     not declare; declared parameters: page_size, title
 *   package 'x' 1.0.0 conflicts with y 2.1.0 (PATH:LINE: y = >=2); remove or disable one of them
 *   package 'auth' is installed 2 times: A and B; remove all but one
 *   skipped: depends on 'auth', which failed
 *   skipped: depends on 'api', which depends on 'auth', which failed
 */
#ifndef PH_HOST_RESOLVER_H
#define PH_HOST_RESOLVER_H

#include <stddef.h>

#include "config.h"
#include "manifest.h"

typedef enum { PH_PLAN_OK = 0, PH_PLAN_FAILED = 1, PH_PLAN_SKIPPED = 2 } ph_plan_state;

typedef struct ph_plan_item {
    char *instance;               /* instance name */
    const ph_manifest *manifest;  /* borrowed from the manifest set; NULL if not installed */
    const ph_instance_conf *conf; /* borrowed from the config; NULL for a default instance */
    char *mount;                  /* "/<instance>" unless configured */
    ph_kv *params;                /* effective parameters: declared defaults + overrides */
    size_t n_params;
    ph_plan_state state;
    char *reason; /* why failed/skipped; NULL if ok */
    size_t *deps; /* indices (in items) of the instances this one needs */
    size_t n_deps;
    char *note; /* a warning for an instance that runs (an optional dependency left out); or NULL */
} ph_plan_item;

typedef struct ph_plan {
    ph_plan_item *items; /* in load order: every dependency before its dependents */
    size_t n;
    char **problems; /* every failure and skip, as printed by `check`: "instance 'x': reason"
                        (or the reason alone when it names the instance) */
    size_t n_problems;
    char **notes; /* warnings about instances that run anyway: "instance 'x': note" */
    size_t n_notes;
} ph_plan;

/**
 * Builds the plan into *out (overwritten; free with ph_plan_free). `cfg` and
 * `set` may be NULL (no instance sections / no packages) and must outlive the
 * plan, which borrows from them. Returns 0 even when some instances fail
 * (they are in the plan with their reason); a negative code only for
 * allocation failure (then *out is freed). Runs no package code; reentrant.
 */
int ph_resolve(const ph_config *cfg, const ph_manifest_set *set, ph_plan *out);
/** Frees what the plan owns; accepts a zeroed or half-built plan. */
void ph_plan_free(ph_plan *p);
/** Index of the item for `instance`, or -1. */
long ph_plan_find(const ph_plan *p, const char *instance);

#endif
