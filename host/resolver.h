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
 * Versions: a package may be installed in several versions (in different
 * directories). Per package, the version chosen is the highest one that
 * every requirer's range accepts (releases before pre-releases; a
 * backtracking search over the packages with several versions, bounded, then
 * greedy), within the range an [instance] of it pins with `version = RANGE`
 * in host.ini. Each choice is a note: "package 'base': 1.1.0 chosen; not
 * 2.0.0: outside ^1.0 of a 1.0.0; not 1.0.0: lower". Two copies of one
 * version are refused.
 *
 * Capabilities: a [requires]/[optional]/[conflicts] entry may name what
 * packages provide ([provides] NAME = VERSION) when no installed package has
 * that name; each requirement goes to the running provider (chosen version,
 * an enabled instance) with the highest provided version in range, the one
 * the router reaches for a call addressed to the capability. A note per
 * capability says who provides it and who uses which; a conflict covers
 * every running provider. The version search (backtracking with
 * conflict-directed backjumping: a dead end jumps back to the package whose
 * choice caused it) treats a requirement on a capability as met when some
 * installed version provides it in range.
 *
 * An instance depends on every instance of each package its package requires
 * (and of each installed [optional] one within range; an optional one out of
 * range, or whose edge would close a cycle, is left out with a note). Load order is
 * topological; among instances that are ready, the one earlier in base order
 * (discovery order of the packages, then config order) comes first, so the
 * plan is deterministic.
 *
 * An instance fails when its package: has a duplicate name (both copies are
 * refused, the error names both paths), declares another ABI, requires a
 * package that is missing or whose version is outside the range (the message
 * names the package, the range and the version found; when several
 * packages require it, one more problem lists every requirer with its range,
 * the versions each accepts and which versions would satisfy them all, or
 * that none does), requires one whose manifest is invalid (quoted), conflicts
 * with a present package (pre-releases included), is on a dependency cycle (the message prints the
 * path "a -> b -> c -> a"), or is configured with a parameter it does not declare (config
 * file:line). A configured instance whose package is not installed, and one whose mount another
 * instance already uses, fail as well. Instances depending on a failed one are skipped, naming the
 * direct dependency and the root cause only, so output stays linear in the number of packages; a
 * cycle's path is printed once, its other members point to it. A failed optional dependency only
 * drops the edge.
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
 *   package 'auth' 1.0.0 is installed 2 times: A and B; remove all but one
 *   on the dependency cycle stated for instance 'a'; remove one of its requirements
 *   package 'base' (installed: 1.5.0) is required by left 1.0.0 (^1.0 accepts 1.5.0)
 *     and right 1.0.0 (^2.0 accepts no installed version); no version satisfies all
 *     of them: change one of the ranges
 *   host.ini:6: instance 'base' pins package 'base' to ^3, but the installed
 *     versions are 2.0.0 and 1.0.0; install a matching version or change the pin
 *   package 'shop' 1.0.0 requires sql-store ^3, a capability no running provider suits:
 *     pg_store 2.0.0 provides sql-store 2.1.0 (outside ^3); install a provider ...
 *   package 'legacy' 1.0.0 conflicts with sql-store 1.4.0, which sqlite_store 1.0.0
 *     provides (PATH:LINE: sql-store = <2); remove or disable one of them
 *   skipped: depends on 'auth', which failed
 *   skipped: depends on 'api', which is skipped because 'auth' failed
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
