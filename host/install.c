#include "install.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dist.h"

#include "build.h"
#include "elfcheck.h"
#include "callbacks.h"
#include "error.h"
#include "interface.h"
#include "log.h"
#include "migrate.h"
#include "scan.h"
#include "reload.h"
#include "resolver.h"

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* ---- install ---- */

static void problem(json_t *report, json_t *text)
{
    json_array_append_new(json_object_get(report, "problems"), text);
    json_object_set_new(report, "ok", json_false());
}

static int is_new(const ph_manifest *m, ph_manifest *const *news, size_t n_new)
{
    for (size_t i = 0; i < n_new; i++)
        if (news[i] == m)
            return 1;
    return 0;
}

/* Is `m` the same package and version as one of `news` (which replaces it)? */
static int same_new(const ph_manifest *m, ph_manifest *const *news, size_t n_new)
{
    for (size_t i = 0; i < n_new; i++)
        if (strcmp(news[i]->name, m->name) == 0 &&
            ph_semver_cmp(&news[i]->version, &m->version) == 0)
            return 1;
    return 0;
}

/* The plan's note on the version chosen for package `name` ("package 'x': 1.1.0 chosen; ..."). */
static const char *choice_note(const ph_plan *plan, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < plan->n_notes; i++)
        if (strncmp(plan->notes[i], "package '", 9) == 0 &&
            strncmp(plan->notes[i] + 9, name, len) == 0 && plan->notes[i][9 + len] == '\'')
            return plan->notes[i];
    return NULL;
}

/* A new version no instance would run (others are chosen) is installed all the same: say so. */
static void note_unchosen(const ph_plan *plan, const ph_manifest *m, json_t *report)
{
    for (size_t i = 0; i < plan->n; i++)
        if (plan->items[i].manifest == m)
            return;
    const char *why = choice_note(plan, m->name);
    json_array_append_new(json_object_get(report, "notes"),
                          json_sprintf("%s %s goes beside the installed versions, but no "
                                       "instance runs it%s%s",
                                       m->name, m->version_text, why ? ": " : "", why ? why : ""));
}

/*
 * Resolves `set` with `news` beside the installed versions (replacing the
 * same version; installed together: a major upgrade of a package and of
 * its dependents); reports on every instance of them or depending on them.
 */
static int check_plan(const ph_config *cfg, const ph_manifest_set *set, ph_manifest *const *news,
                      size_t n_new, json_t *report, ph_plan *plan)
{
    ph_manifest_set with = *set;
    ph_manifest **items = calloc(set->n + n_new, sizeof *items);
    if (!items)
        return ph_error_set(PH_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < set->n; i++)
        if (!same_new(set->items[i], news, n_new))
            items[n++] = set->items[i];
    for (size_t i = 0; i < n_new; i++)
        items[n++] = news[i];
    with.items = items;
    with.n = n;
    int rc = ph_resolve(cfg, &with, plan);
    for (size_t i = 0; !rc && i < plan->n; i++) {
        const ph_plan_item *it = &plan->items[i];
        int concerned = it->manifest && is_new(it->manifest, news, n_new);
        for (size_t k = 0; !concerned && it->manifest && k < n_new; k++)
            concerned = ph_manifest_depends_on(it->manifest, news[k]->name);
        if (concerned && it->state != PH_PLAN_OK)
            problem(report,
                    json_sprintf("instance '%s' could not run: %s%s", it->instance,
                                 it->reason ? it->reason : "?",
                                 is_new(it->manifest, news, n_new)
                                     ? ""
                                     : "; to upgrade a package and the packages that depend on "
                                       "it together, give all their directories to one "
                                       "`plughost install DIR DIR...`"));
    }
    for (size_t k = 0; !rc && k < n_new; k++)
        note_unchosen(plan, news[k], report);
    free(items);
    return rc;
}

/* The installed package called `name`, or NULL. */
static const ph_manifest *installed(const ph_manifest_set *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->items[i]->name, name) == 0)
            return set->items[i];
    return NULL;
}

static void interface_problem(json_t *report, const ph_manifest *m, const char *was,
                              const ph_semver *wasv, const json_t *older, const json_t *newer)
{
    char *text = NULL;
    if (ph_interface_diff_json(older, newer, 1, &text) > 0)
        problem(report, json_sprintf("the new build of %s %s -> %s breaks its declared "
                                     "interface without a new major version (semver): %s; keep "
                                     "these or raise the version to %llu.0.0",
                                     m->name, was, m->version_text, text,
                                     (unsigned long long)wasv->major + 1));
    free(text);
}

/*
 * Compares the declared interface with the build that ran last (recorded
 * with the build store), or else with the installed build's (semver).
 */
static void check_interface(const ph_config *cfg, const ph_manifest_set *set, const ph_manifest *m,
                            const json_t *scan, const ph_plan *plan, json_t *report)
{
    for (size_t i = 0; i < plan->n; i++) {
        if (plan->items[i].manifest != m)
            continue;
        json_t *last = ph_build_last_interface(cfg->data_dir, plan->items[i].instance);
        const char *was = json_string_value(json_object_get(last, "version"));
        ph_semver v;
        if (was && ph_semver_parse(was, &v) == 0) {
            if (ph_interface_must_keep(&v, &m->version))
                interface_problem(report, m, was, &v, json_object_get(last, "interface"),
                                  json_object_get(scan, "interface"));
            json_decref(last);
            return;
        }
        json_decref(last);
        ph_error_clear();
    }
    json_t *old_scan = NULL;
    const ph_manifest *old = installed(set, m->name);
    if (old && ph_interface_must_keep(&old->version, &m->version) &&
        ph_scan_package(old, NULL, 0, cfg->data_dir, 0, &old_scan) == 0 &&
        json_object_get(old_scan, "interface"))
        interface_problem(report, m, old->version_text, &old->version,
                          json_object_get(old_scan, "interface"),
                          json_object_get(scan, "interface"));
    json_decref(old_scan); /* nothing to keep, or the installed build cannot be read */
}

/*
 * Opens the new build in the scanner (never in this process), rehearses
 * each of its instances' migrations on a copy of the database, and
 * compares its declared interface with the installed build's.
 */
static int check_build(const ph_config *cfg, const ph_manifest_set *set, const ph_manifest *m,
                       const ph_plan *plan, json_t *report)
{
    const char **names = calloc(plan->n + 1, sizeof *names);
    json_t *scan = NULL;
    size_t n = 0;
    if (!names)
        return ph_error_set(PH_ENOMEM, "out of memory");
    for (size_t i = 0; i < plan->n; i++)
        if (plan->items[i].manifest == m && plan->items[i].state == PH_PLAN_OK)
            names[n++] = plan->items[i].instance;
    int rc = ph_scan_package(m, names, n, cfg->data_dir, 0, &scan);
    if (!rc && !json_is_true(json_object_get(scan, "ok"))) {
        problem(report, json_sprintf("%s", json_string_value(json_object_get(scan, "error"))));
    } else if (!rc) {
        size_t i;
        json_t *inst;
        json_array_foreach(json_object_get(scan, "instances"), i, inst)
        {
            const char *err = json_string_value(json_object_get(inst, "error"));
            const char *name = json_string_value(json_object_get(inst, "instance"));
            const char *action = json_string_value(json_object_get(inst, "action"));
            if (err)
                problem(report, json_sprintf("dry run of the migration: %s", err));
            else
                json_array_append_new(json_object_get(report, "migrations"),
                                      json_sprintf("%s: %s, rehearsed on a copy of its database",
                                                   name ? name : "?", action ? action : "none"));
        }
        check_interface(cfg, set, m, scan, plan, report);
    }
    json_decref(scan);
    free(names);
    ph_error_clear();
    return rc;
}

/* The installed version `version` of package `name`, or NULL. */
static const ph_manifest *installed_version(const ph_manifest_set *set, const char *name,
                                            const ph_semver *version)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->items[i]->name, name) == 0 &&
            ph_semver_cmp(&set->items[i]->version, version) == 0)
            return set->items[i];
    return NULL;
}

/*
 * install replaces the directory of the same version in the first package
 * directory; the same version kept under another directory would stay
 * beside it (installed twice).
 */
static void elsewhere(const ph_config *cfg, const ph_manifest_set *set, const ph_manifest *m,
                      json_t *report)
{
    const ph_manifest *old = installed_version(set, m->name, &m->version);
    char *target = NULL;
    if (!old || strcmp(old->dir, m->dir) == 0 || ph_install_target(cfg, set, m, &target) < 0) {
        ph_error_clear();
        return;
    }
    char *real = realpath(target, NULL);
    if (!real || strcmp(real, old->dir) != 0)
        problem(report, json_sprintf("package '%s' is installed in %s, not in %s, which install "
                                     "replaces; `plughost remove %s` first (its data is kept)",
                                     m->name, old->dir, target, m->name));
    free(real);
    free(target);
}

/*
 * An endpoint belongs to one package: a new package declaring an endpoint
 * another installed (or new) package declares would take its contributions.
 */
static void endpoint_taken(const ph_manifest_set *set, ph_manifest *const *ms, size_t n, size_t i,
                           json_t *report)
{
    const ph_manifest *m = ms[i];
    for (size_t e = 0; e < m->n_endpoints; e++) {
        const ph_endpoint *ep = &m->endpoints[e], *other = NULL;
        const ph_manifest *om = NULL;
        for (size_t k = 0; k < set->n && !om; k++)
            if (strcmp(set->items[k]->name, m->name) != 0 &&
                (other = ph_manifest_endpoint(set->items[k], ep->name)))
                om = set->items[k];
        for (size_t k = 0; k < n && !om; k++)
            if (k != i && strcmp(ms[k]->name, m->name) != 0 &&
                (other = ph_manifest_endpoint(ms[k], ep->name)))
                om = ms[k];
        if (om)
            problem(report, json_sprintf("%s:%d: package '%s' declares [endpoint %s], which "
                                         "package '%s' declares already (%s:%d); an endpoint "
                                         "belongs to one package",
                                         m->path, ep->line, m->name, ep->name, om->name, om->path,
                                         other->line));
    }
}

int ph_install_check(const ph_config *cfg, const ph_manifest_set *set, char *const *dirs,
                     size_t n_dirs, ph_manifest ***m_out, json_t **report)
{
    ph_manifest **ms = calloc(n_dirs ? n_dirs : 1, sizeof *ms);
    ph_plan plan;
    int rc = 0, planned = 0;
    *m_out = NULL;
    *report = json_pack("{s:[], s:[], s:[], s:[], s:b}", "packages", "migrations", "problems",
                        "notes", "ok", 1);
    if (!ms || !*report) {
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n_dirs && !rc; i++) {
        char *ini = NULL, hash[17];
        struct stat st;
        if (asprintf(&ini, "%s/package.ini", dirs[i]) < 0)
            rc = ph_error_set(PH_ENOMEM, "out of memory");
        else if (stat(ini, &st) != 0 && (errno == ENOENT || errno == ENOTDIR))
            /* the caller's mistake (404), not the host's (an I/O error) */
            rc = ph_error_set(PH_ENOTFOUND,
                              "%s is not a package directory (no package.ini in it); give the "
                              "directory that holds the package's package.ini and .so",
                              dirs[i]);
        else
            rc = ph_manifest_load(ini, &ms[i]);
        free(ini);
        /* The library is checked before anything is copied: a complete ELF that can be unloaded. */
        if (!rc)
            rc = ph_elf_check(ms[i]->library, ms[i]->name, ms[i]->library, hash);
        for (size_t k = 0; !rc && k < i; k++)
            if (strcmp(ms[k]->name, ms[i]->name) == 0)
                rc = ph_error_set(PH_EINVAL, "%s and %s are both package '%s'; install one",
                                  ms[k]->dir, ms[i]->dir, ms[i]->name);
        if (!rc)
            json_array_append_new(json_object_get(*report, "packages"),
                                  json_pack("{s:s, s:s, s:s}", "package", ms[i]->name, "version",
                                            ms[i]->version_text, "directory", ms[i]->dir));
    }
    for (size_t i = 0; !rc && i < n_dirs; i++)
        elsewhere(cfg, set, ms[i], *report);
    for (size_t i = 0; !rc && i < n_dirs; i++)
        endpoint_taken(set, ms, n_dirs, i, *report);
    if (rc || (rc = check_plan(cfg, set, ms, n_dirs, *report, &plan)))
        goto fail;
    planned = 1;
    for (size_t i = 0; i < n_dirs && !rc; i++)
        rc = check_build(cfg, set, ms[i], &plan, *report);
    if (rc)
        goto fail;
    ph_plan_free(&plan);
    *m_out = ms;
    return 0;
fail:
    if (planned)
        ph_plan_free(&plan);
    json_decref(*report);
    *report = NULL;
    ph_install_free(ms, n_dirs);
    return rc;
}

void ph_install_free(ph_manifest **ms, size_t n)
{
    for (size_t i = 0; ms && i < n; i++)
        ph_manifest_free(ms[i]);
    free(ms);
}

/* Whether `path` is the directory `dir` (a realpath). */
static int is_dir(const char *path, const char *dir)
{
    char *real = realpath(path, NULL);
    int same = real && strcmp(real, dir) == 0;
    free(real);
    return same;
}

int ph_install_target(const ph_config *cfg, const ph_manifest_set *set, const ph_manifest *m,
                      char **out)
{
    const ph_manifest *same = installed_version(set, m->name, &m->version);
    struct stat st;
    *out = NULL;
    if (!cfg->n_package_dirs)
        return ph_error_set(PH_ECONFIG, "no package directory is configured; set package_dirs");
    for (int versioned = 0; versioned < 2; versioned++) {
        free(*out);
        if ((versioned ? asprintf(out, "%s/%s-%s", cfg->package_dirs[0], m->name, m->version_text)
                       : asprintf(out, "%s/%s", cfg->package_dirs[0], m->name)) < 0) {
            *out = NULL;
            return ph_error_set(PH_ENOMEM, "out of memory");
        }
        if (is_dir(*out, m->dir))
            return 1; /* installing from where it is installed */
        if ((same && is_dir(*out, same->dir)) || lstat(*out, &st) != 0)
            return 0; /* this version's directory (replaced), or a free name */
    }
    return 0; /* <name>-<version> holds something else: ph_install_copy says so */
}

/* Deletes a directory tree (not following links, not crossing mounts). */
static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

int ph_install_copy(const ph_config *cfg, const ph_manifest_set *set, const ph_manifest *m,
                    ph_install_copied *out)
{
    char *stage = NULL, *old = NULL;
    *out = (ph_install_copied){0};
    int rc = ph_install_target(cfg, set, m, &out->target);
    if (rc)
        return rc < 0 ? rc : 0; /* already in place */
    const ph_manifest *same = installed_version(set, m->name, &m->version);
    if (asprintf(&stage, "%s/.install-%s-%d", cfg->package_dirs[0], m->name, (int)getpid()) < 0 ||
        asprintf(&old, "%s/.old-%s-%s-%d", cfg->package_dirs[0], m->name, m->version_text,
                 (int)getpid()) < 0) {
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    remove_tree(stage); /* left by an interrupted install */
    if ((rc = ph_copy_tree(m->dir, stage, 0)))
        goto cleanup;
    struct stat st;
    int had = lstat(out->target, &st) == 0;
    if (had && (!S_ISDIR(st.st_mode) || !same || !is_dir(out->target, same->dir))) {
        rc = ph_error_set(PH_EPERM,
                          "%s exists and is not the directory of %s %s; move it away and install "
                          "again",
                          out->target, m->name, m->version_text);
        goto cleanup;
    }
    if (had)
        remove_tree(old);
    if ((had && rename(out->target, old) != 0) || rename(stage, out->target) != 0) {
        rc = ph_error_set(PH_EIO, "cannot move the package into %s: %s", out->target,
                          ph_strerror(errno));
        goto cleanup;
    }
    out->moved = 1;
    if (had) {
        out->kept = old; /* until ph_install_settle: a refused change puts it back */
        old = NULL;
    }
cleanup:
    if (rc && stage)
        remove_tree(stage);
    free(stage);
    free(old);
    return rc;
}

void ph_install_settle(ph_install_copied *c, int undo)
{
    if (undo && c->moved) {
        remove_tree(c->target);
        if (c->kept && rename(c->kept, c->target) != 0)
            ph_log_error("cannot put %s back in %s: %s", c->kept, c->target, ph_strerror(errno));
    } else if (c->kept) {
        remove_tree(c->kept);
    }
    free(c->kept);
    free(c->target);
    *c = (ph_install_copied){0};
}

/* "a; b; c" of a JSON array of strings. */
static char *joined(const json_t *arr)
{
    size_t i, len = 1;
    json_t *v;
    json_array_foreach(arr, i, v) len += strlen(json_string_value(v)) + 2;
    char *out = calloc(1, len);
    json_array_foreach(arr, i, v)
    {
        if (out && i)
            strcat(out, "; ");
        if (out)
            strcat(out, json_string_value(v));
    }
    return out;
}

/* Each instance of package `name`: its state (and why it is not running). */
static json_t *instance_states(ph_host *h, const char *name)
{
    json_t *arr = json_array();
    pthread_rwlock_rdlock(&h->lock);
    for (size_t i = 0; arr && i < h->plan.n; i++) {
        const ph_plan_item *it = &h->plan.items[i];
        if (!it->manifest || strcmp(it->manifest->name, name) != 0)
            continue;
        const char *why = NULL, *state = ph_host_item_state(h, i, &why);
        json_array_append_new(arr,
                              json_pack("{s:s, s:s, s:s?}", "instance", it->instance, "state",
                                        state, "reason", strcmp(state, "running") ? why : NULL));
    }
    pthread_rwlock_unlock(&h->lock);
    return arr;
}

/*
 * The running instances of package `name`, in plan order, for a lifecycle
 * callback; *n_out counts them. Caller holds the change lock (instances
 * stay) and frees the array.
 */
static ph_instance **running_of(ph_host *h, const char *name, size_t *n_out)
{
    *n_out = 0;
    pthread_rwlock_rdlock(&h->lock);
    ph_instance **v = calloc(h->plan.n + 1, sizeof *v);
    for (size_t i = 0; v && i < h->plan.n; i++) {
        ph_instance *inst = h->insts[i];
        const ph_manifest *m = h->plan.items[i].manifest;
        if (inst && m && strcmp(m->name, name) == 0 && atomic_load(&inst->state) == PH_INST_RUNNING)
            v[(*n_out)++] = inst;
    }
    pthread_rwlock_unlock(&h->lock);
    return v;
}

static int install_dir(ph_host *h, const char *dir, json_t **out)
{
    ph_manifest **ms = NULL, *m;
    json_t *report = NULL;
    ph_install_copied copied = {0};
    char *dirs[1] = {(char *)dir};
    int n = 0;
    *out = NULL;
    pthread_rwlock_rdlock(&h->lock); /* the installed set: replaced by changes */
    int rc = ph_install_check(&h->cfg, &h->set, dirs, 1, &ms, &report);
    if (!rc && json_is_true(json_object_get(report, "ok")))
        rc = ph_install_copy(&h->cfg, &h->set, ms[0], &copied);
    pthread_rwlock_unlock(&h->lock);
    if (rc)
        goto cleanup;
    m = ms[0];
    if (!json_is_true(json_object_get(report, "ok"))) {
        char *why = joined(json_object_get(report, "problems"));
        rc = ph_error_set(PH_EDEPENDENCY, "%s %s was not installed, nothing was changed: %s",
                          m->name, m->version_text, why ? why : "?");
        free(why);
        goto cleanup;
    }
    json_object_set_new(report, "directory", json_string(copied.target));
    if ((rc = ph_reload_package(h, m->name, &n)) && rc != PH_ESTATE) {
        /*
         * Refused, the old build serving (an upgrade script, before_upgrade, a
         * dependent): the directory goes back as it was, or the next start would
         * run the new build without its upgrade. (PH_ESTATE: a new package that
         * failed to start stays installed, failed, as the status says.)
         */
        char *why = strdup(ph_error_last());
        ph_install_settle(&copied, 1);
        ph_host_reconcile(h, NULL, NULL, NULL);
        rc = ph_error_set(rc, "%s; %s %s was not installed, the package directory is as it was",
                          why ? why : "?", m->name, m->version_text);
        free(why);
        goto cleanup;
    }
    json_object_set_new(report, "instances", instance_states(h, m->name));
    ph_error_clear();
    rc = 0; /* "instances" says how each one is */
    *out = report;
    report = NULL;
cleanup:
    ph_install_settle(&copied, 0);
    json_decref(report);
    ph_install_free(ms, 1);
    return rc;
}

int ph_install(ph_host *h, const char *path, json_t **out)
{
    char *staging = NULL;
    *out = NULL;
    if (!ph_dist_is(path))
        return install_dir(h, path, out);
    int rc = ph_dist_unpack(&h->cfg, path, &staging, NULL, NULL);
    if (!rc)
        rc = install_dir(h, staging, out);
    if (!rc)
        json_object_set_new(*out, "archive", json_string(path));
    ph_dist_discard(staging);
    free(staging);
    return rc;
}

/* The instance the plan runs `m` in, or NULL. */
static const char *runs_in(const ph_plan *plan, const ph_manifest *m)
{
    for (size_t i = 0; plan && i < plan->n; i++)
        if (plan->items[i].manifest == m && plan->items[i].state == PH_PLAN_OK)
            return plan->items[i].instance;
    return NULL;
}

/* "1.0.0, 1.1.0 (instance 'shop' runs it), 2.0.0": the installed versions of `name`. */
static char *versions_text(const ph_manifest_set *set, const ph_plan *plan, const char *name)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    int any = 0;
    for (size_t i = 0; i < set->n; i++) {
        const ph_manifest *m = set->items[i];
        if (strcmp(m->name, name) != 0)
            continue;
        const char *inst = runs_in(plan, m);
        fprintf(f, "%s%s", any++ ? ", " : "", m->version_text);
        if (inst)
            fprintf(f, " (instance '%s' runs it)", inst);
    }
    fclose(f);
    return text;
}

int ph_install_pick(const ph_manifest_set *set, const ph_plan *plan, const char *spec,
                    const ph_manifest **out, int *only)
{
    char *name = strdup(spec), *at = name ? strchr(name, '@') : NULL;
    ph_semver v;
    size_t n = 0;
    int rc = 0;
    *out = NULL;
    if (!name)
        return ph_error_set(PH_ENOMEM, "out of memory");
    if (at)
        *at++ = 0;
    if ((rc = ph_config_check_name("package", name, PH_EINVAL)))
        goto cleanup;
    if (at && ph_semver_parse(at, &v)) {
        char *why = strdup(ph_error_last()); /* the message below is written where it was */
        rc = ph_error_set(PH_EINVAL,
                          "'%s': '%s' is no version (%s); write NAME@VERSION, e.g. %s@1.0.0", spec,
                          at, why ? why : "?", name);
        free(why);
        goto cleanup;
    }
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->items[i]->name, name) == 0) {
            n++;
            if (!at && !*out)
                *out = set->items[i];
        }
    if (at)
        *out = installed_version(set, name, &v);
    *only = n == 1;
    char *versions = versions_text(set, plan, name);
    const char *inst = *out ? runs_in(plan, *out) : NULL;
    if (!n)
        rc = ph_error_set(PH_ENOTFOUND,
                          "no package '%s' is installed; `plughost list` shows what is installed",
                          name);
    else if (!*out)
        rc = ph_error_set(PH_ENOTFOUND, "package '%s' %s is not installed; installed: %s", name, at,
                          versions ? versions : "?");
    else if (!at && n > 1)
        rc = ph_error_set(PH_ECONFLICT,
                          "package '%s' is installed in %zu versions: %s; say which one to "
                          "remove: `plughost remove %s@VERSION`",
                          name, n, versions ? versions : "?", name);
    else if (n > 1 && inst)
        rc = ph_error_set(PH_ECONFLICT,
                          "package '%s' %s runs as instance '%s' and is not removed while it "
                          "runs; remove the other versions first (installed: %s), or pin one of "
                          "them in host.ini ([instance %s] version = ...)",
                          name, at, inst, versions ? versions : "?", inst);
    free(versions);
    if (rc)
        *out = NULL;
cleanup:
    free(name);
    return rc;
}

/*
 * A copy of the installed manifest `spec` names (ph_install_pick), or NULL
 * (the error set). *only: the package's only version.
 */
static ph_manifest *installed_manifest(ph_host *h, const char *spec, int *only)
{
    ph_manifest *copy = NULL;
    const ph_manifest *m = NULL;
    char *path = NULL;
    pthread_rwlock_rdlock(&h->lock);
    if (ph_install_pick(&h->set, &h->plan, spec, &m, only) == 0 && !(path = strdup(m->path)))
        ph_error_set(PH_ENOMEM, "out of memory");
    pthread_rwlock_unlock(&h->lock);
    if (path)
        ph_manifest_load(path, &copy);
    free(path);
    return copy;
}

/*
 * before_uninstall on each running instance of package `name` (the first
 * failure refuses the removal, nothing changed), then before_delete on
 * each (failures logged: the removal goes on).
 */
static int before_uninstall(ph_host *h, const char *name, int purge)
{
    size_t n = 0;
    char *why = NULL;
    int rc = ph_host_lock_changes(h);
    if (rc)
        return rc;
    ph_instance **insts = running_of(h, name, &n);
    ph_callback_args a = {.purge = purge};
    for (size_t i = 0; i < n && !rc; i++)
        if (ph_callback_run_live(insts[i], PH_CB_BEFORE_UNINSTALL, &a, h->drain_ms, &why) != PH_OK)
            rc = ph_error_set(PH_ECONFLICT,
                              "package '%s' refused its removal (instance '%s': %s); nothing "
                              "was changed",
                              name, insts[i]->name, why ? why : "?");
    for (size_t i = 0; i < n && !rc; i++) {
        free(why);
        why = NULL;
        if (ph_callback_run_live(insts[i], PH_CB_BEFORE_DELETE, &a, h->drain_ms, &why) != PH_OK)
            ph_log_warn("%s: %s; the instance is deleted anyway (its data is kept)", insts[i]->name,
                        why ? why : "?");
    }
    free(why);
    free(insts);
    ph_host_unlock_changes(h);
    return rc;
}

/* Disables every instance of package `name` (not only the one named like it). */
static int unload_instances(ph_host *h, const char *name)
{
    size_t n = 0;
    char **names = NULL;
    pthread_rwlock_rdlock(&h->lock);
    names = calloc(h->plan.n + 1, sizeof *names);
    for (size_t i = 0; names && i < h->plan.n; i++)
        if (h->plan.items[i].manifest && !strcmp(h->plan.items[i].manifest->name, name) &&
            strcmp(h->plan.items[i].instance, name) != 0)
            names[n++] = strdup(h->plan.items[i].instance);
    pthread_rwlock_unlock(&h->lock);
    if (!names)
        return ph_error_set(PH_ENOMEM, "out of memory");
    int rc = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rc && names[i])
            rc = ph_host_unload(h, names[i], &k);
        free(names[i]);
    }
    free(names);
    return rc ? rc : ph_host_unload(h, name, &k);
}

int ph_uninstall(ph_host *h, const char *spec, int purge, json_t **out)
{
    int rc, only = 0;
    *out = NULL;
    ph_manifest *m = installed_manifest(h, spec, &only);
    if (!m)
        return ph_error_last_code();
    const char *name = m->name;
    if (!only) { /* a version no instance runs: no callback to run, nothing to stop */
        if ((rc = ph_uninstall_dir(&h->cfg, m, 0)))
            goto cleanup;
        ph_host_reconcile(h, NULL, NULL, NULL);
    } else if ((rc = ph_uninstall_dir(&h->cfg, m, 1)) || (rc = before_uninstall(h, name, purge)) ||
               (rc = unload_instances(h, name)) || (rc = ph_uninstall_dir(&h->cfg, m, 0))) {
        goto cleanup;
    } else {
        ph_host_reconcile(h, NULL, NULL, NULL); /* the host forgets it; its data stays */
        ph_callback_forget_installed(h->cfg.data_dir, name); /* installed again: after_install */
    }
    *out = json_pack("{s:s, s:s, s:s, s:s}", "package", name, "version", m->version_text,
                     "directory", m->dir, "result",
                     only ? "removed; data kept" : "version removed; no instance ran it");
    rc = *out ? 0 : ph_error_set(PH_ENOMEM, "out of memory");
cleanup:
    ph_manifest_free(m);
    return rc;
}

/* ---- uninstall ---- */

/*
 * The entry of a package directory that holds package `dir` (a realpath),
 * or NULL: only a direct child of a package directory is removed, never a
 * package directory itself. *is_link says the entry is a symlink.
 */
static char *package_entry_of(const ph_config *cfg, const char *dir, int *is_link)
{
    for (size_t i = 0; i < cfg->n_package_dirs; i++) {
        DIR *d = opendir(cfg->package_dirs[i]);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char *path = NULL, *real = NULL;
            struct stat st;
            if (asprintf(&path, "%s/%s", cfg->package_dirs[i], e->d_name) < 0)
                continue;
            real = realpath(path, NULL);
            if (real && strcmp(real, dir) == 0 && lstat(path, &st) == 0) {
                *is_link = S_ISLNK(st.st_mode);
                free(real);
                closedir(d);
                return path;
            }
            free(real);
            free(path);
        }
        if (d)
            closedir(d);
    }
    return NULL;
}

/* Inside `dir`: a package directory, the data directory, the token file or the config? */
static const char *holds_host_file(const ph_config *cfg, const char *dir)
{
    static char found[4096];
    const char *paths[64];
    size_t n = 0;
    paths[n++] = cfg->data_dir;
    paths[n++] = cfg->auth.token_file;
    paths[n++] = cfg->path;
    for (size_t i = 0; i < cfg->n_package_dirs && n < sizeof paths / sizeof paths[0]; i++)
        paths[n++] = cfg->package_dirs[i];
    size_t len = strlen(dir);
    for (size_t i = 0; i < n; i++) {
        char *real = paths[i] ? realpath(paths[i], NULL) : NULL;
        int inside = real && strncmp(real, dir, len) == 0 && (real[len] == '/' || real[len] == 0);
        if (inside)
            snprintf(found, sizeof found, "%s", real);
        free(real);
        if (inside)
            return found;
    }
    return NULL;
}

static int manifests_in_tree;
static int count_manifests(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    if (flag == FTW_F && strcmp(path + ftw->base, "package.ini") == 0)
        manifests_in_tree++;
    return 0;
}

int ph_uninstall_dir(const ph_config *cfg, const ph_manifest *m, int dry)
{
    int is_link = 0;
    char *entry = package_entry_of(cfg, m->dir, &is_link);
    if (!entry)
        return ph_error_set(PH_EPERM,
                            "package '%s' is not a directory of its own inside a "
                            "package directory (%s); remove its files by hand",
                            m->name, m->dir);
    int rc = 0;
    if (is_link) {
        /* A linked package: remove the link, never what it points to. */
        if (!dry && unlink(entry) != 0)
            rc = ph_error_set(PH_EIO, "cannot remove %s: %s", entry, ph_strerror(errno));
        free(entry);
        return rc;
    }
    manifests_in_tree = 0;
    nftw(m->dir, count_manifests, 16, FTW_PHYS | FTW_MOUNT);
    const char *held = holds_host_file(cfg, m->dir);
    if (held)
        rc = ph_error_set(PH_EPERM, "%s holds %s, which the host uses; not deleting it", m->dir,
                          held);
    else if (manifests_in_tree != 1)
        rc = ph_error_set(PH_EPERM,
                          "%s holds %d package manifests, not just its own; not deleting "
                          "it",
                          m->dir, manifests_in_tree);
    else if (!dry && nftw(m->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0)
        rc = ph_error_set(PH_EIO, "cannot delete %s: %s", m->dir, ph_strerror(errno));
    free(entry);
    return rc;
}
