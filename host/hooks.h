/*
 * Extension points (Snooz's item hooks): a package declares an endpoint in
 * its package.ini ([endpoint menu] with the parameters a contribution gives
 * and their types) and other packages contribute items ([hook menu] or
 * [hook menu ITEM]). Every contribution is checked against the declaration
 * from the manifests alone, before any package code runs; a contribution
 * that does not fit is left out, with a problem naming its file:line (its
 * package still starts: a bad menu item must not take a service down).
 *
 * The list is computed from the installed packages on each request, so an
 * install, a removal or a reload changes it at once; only packages with a
 * running instance contribute.
 */
#ifndef PH_HOST_HOOKS_H
#define PH_HOST_HOOKS_H

#include <jansson.h>

#include "manifest.h"

struct ph_host;

/** Whether a package's contributions count (e.g. it has a running instance). */
typedef int (*ph_hooks_keep_fn)(void *ud, const ph_manifest *m);

/**
 * The contributions of the packages of `set` to `endpoint`, checked and
 * ordered ("order" when the item gives one, items without it after; then
 * package name; then item name): *out (caller owns) is
 *   {"endpoint", "declared_by", "parameters": {name: type},
 *    "items": [{"package", "item", PARAM: value...}], "problems": [text]}
 * `keep` (may be NULL: every package) filters the contributors. Returns 0,
 * PH_ENOTFOUND when no package of the set declares `endpoint` (message says
 * what to do), or PH_ENOMEM. Thread-safe for a set nobody changes.
 */
int ph_hooks_collect(const ph_manifest_set *set, const char *endpoint, ph_hooks_keep_fn keep,
                     void *ud, json_t **out);

/**
 * Every problem of every contribution in `set` (undeclared endpoint,
 * missing, unknown or mistyped parameter), one "path:line: ..." text each;
 * caller owns the array (NULL on no memory).
 */
json_t *ph_hooks_problems(const ph_manifest_set *set);

/**
 * ph_hooks_collect over the installed packages of a running host, counting
 * only packages with a running instance. Takes the host's read lock.
 */
int ph_hooks_list(struct ph_host *h, const char *endpoint, json_t **out);

/**
 * The host ph_hooks() of the SDK answers from (one per process): set by
 * ph_host_open, cleared by ph_host_free. ph_hooks_current() is NULL when
 * none is attached.
 */
void ph_hooks_attach(struct ph_host *h);
void ph_hooks_detach(struct ph_host *h);
struct ph_host *ph_hooks_current(void);

#endif
