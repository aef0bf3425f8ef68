#include "reload.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crud.h"
#include "elfcheck.h"
#include "error.h"
#include "log.h"
#include "store.h"

/* Serialises reloads: one swap at a time, process-wide. */
/* Guards the reload bookkeeping of every instance (read by status outputs). */
static pthread_mutex_t status_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int drain_ms = 10000;

/* Gate-closed time of each instance's last swap (no room for it in ph_instance). */
typedef struct hold_entry {
    const ph_instance *inst;
    double ms;
} hold_entry;
static hold_entry *holds;
static size_t n_holds;

void ph_reload_set_drain_ms(int ms)
{
    atomic_store(&drain_ms, ms > 0 ? ms : 10000);
}

/* ---- bookkeeping ---- */

static double *hold_slot(const ph_instance *inst) /* status_mu held */
{
    for (size_t i = 0; i < n_holds; i++)
        if (holds[i].inst == inst)
            return &holds[i].ms;
    hold_entry *p = realloc(holds, (n_holds + 1) * sizeof *p);
    if (!p)
        return NULL;
    holds = p;
    holds[n_holds].inst = inst;
    holds[n_holds].ms = 0;
    return &holds[n_holds++].ms;
}

int ph_reload_info_get(ph_instance *inst, ph_reload_info *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&status_mu);
    out->reloads = inst->reloads;
    out->failures = inst->reload_failures;
    if (inst->module)
        snprintf(out->build, sizeof out->build, "%s", inst->module->hash);
    for (size_t i = 0; i < n_holds; i++)
        if (holds[i].inst == inst)
            out->last_hold_ms = holds[i].ms;
    int rc = 0;
    if (inst->reload_error && !(out->error = strdup(inst->reload_error)))
        rc = PH_ENOMEM;
    pthread_mutex_unlock(&status_mu);
    return rc;
}

/* Records the current error as inst's reload failure; `bad_key` (or NULL) is not retried. */
static void fail_reload(ph_instance *inst, const char *bad_key)
{
    char *msg = strdup(ph_error_last());
    pthread_mutex_lock(&status_mu);
    inst->reload_failures++;
    free(inst->reload_error);
    inst->reload_error = msg;
    if (bad_key)
        snprintf(inst->bad_hash, sizeof inst->bad_hash, "%s", bad_key);
    pthread_mutex_unlock(&status_mu);
    ph_logf(PH_L_ERROR, inst->name, "reload failed, the old version keeps serving: %s",
            msg ? msg : ph_error_last());
}

static void clear_error(ph_instance *inst)
{
    pthread_mutex_lock(&status_mu);
    free(inst->reload_error);
    inst->reload_error = NULL;
    pthread_mutex_unlock(&status_mu);
}

static void record_success(ph_instance *inst, double held)
{
    pthread_mutex_lock(&status_mu);
    inst->reloads++;
    free(inst->reload_error);
    inst->reload_error = NULL;
    inst->bad_hash[0] = 0;
    double *slot = hold_slot(inst);
    if (slot)
        *slot = held;
    pthread_mutex_unlock(&status_mu);
}

/* ---- checks before loading anything ---- */

/* A new version must still satisfy every running dependent's declared range. */
static int check_dependents(ph_host *h, const ph_manifest *nm)
{
    char v[96];
    ph_semver_format(&nm->version, v, sizeof v);
    for (size_t i = 0; i < h->plan.n; i++) {
        const ph_manifest *m = h->plan.items[i].manifest;
        if (!m || !h->insts[i])
            continue;
        const ph_dep *deps[2] = {m->requires, m->optional};
        size_t counts[2] = {m->n_requires, m->n_optional};
        for (int k = 0; k < 2; k++)
            for (size_t j = 0; j < counts[k]; j++)
                if (strcmp(deps[k][j].name, nm->name) == 0 &&
                    !ph_range_satisfies(&deps[k][j].range, &nm->version))
                    return ph_error_set(PH_EDEPENDENCY,
                                        "package '%s' %s would break '%s', which requires %s %s; "
                                        "not reloaded (keep the version in range or update '%s')",
                                        nm->name, v, m->name, nm->name, deps[k][j].range.text,
                                        m->name);
    }
    return 0;
}

/* The new version's own requirements must be met by what is running. */
static int check_requirements(ph_host *h, const ph_manifest *nm)
{
    for (size_t j = 0; j < nm->n_requires; j++) {
        const ph_dep *d = &nm->requires[j];
        const ph_manifest *found = NULL;
        for (size_t i = 0; i < h->plan.n && !found; i++)
            if (h->insts[i] && strcmp(h->plan.items[i].manifest->name, d->name) == 0)
                found = h->plan.items[i].manifest;
        if (!found)
            return ph_error_set(PH_EDEPENDENCY,
                                "package '%s' %s requires '%s' (%s), which is not "
                                "loaded; not reloaded",
                                nm->name, nm->version_text, d->name, d->range.text);
        if (!ph_range_satisfies(&d->range, &found->version))
            return ph_error_set(PH_EDEPENDENCY,
                                "package '%s' %s requires %s %s but %s %s is "
                                "running; not reloaded",
                                nm->name, nm->version_text, d->name, d->range.text, d->name,
                                found->version_text);
    }
    return 0;
}

/* Makes room for one more kept manifest, so keeping it after a swap cannot fail. */
static int reserve_manifest(ph_host *h)
{
    ph_manifest **p = realloc(h->reloaded, (h->n_reloaded + 1) * sizeof *p);
    if (!p)
        return ph_error_set(PH_ENOMEM, "out of memory");
    h->reloaded = p;
    return 0;
}

/* What a failed attempt remembers: the .so and the package.ini it was validated against. */
static void build_key(const char *so_hash, const char *ini_hash, char key[17])
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = so_hash; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '/') * 1099511628211ULL;
    for (const char *p = ini_hash; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    snprintf(key, 17, "%016llx", (unsigned long long)h);
}

/* Packages an instance running manifest m may call: its own + [requires] + [optional]. */
static int build_callable(const ph_manifest *m, const char ***out, size_t *n_out)
{
    size_t n = 1 + m->n_requires + m->n_optional, k = 0;
    const char **c = calloc(n, sizeof *c);
    if (!c)
        return ph_error_set(PH_ENOMEM, "out of memory");
    c[k++] = m->name;
    for (size_t i = 0; i < m->n_requires; i++)
    c[k++] = m->requires[i].name;
    for (size_t i = 0; i < m->n_optional; i++)
        c[k++] = m->optional[i].name;
    *out = c;
    *n_out = k;
    return 0;
}

/* ---- the swap ---- */

static int build_routes(ph_instance *inst, ph_version *ver, ph_routes **out)
{
    ph_routes *t = NULL;
    int rc = ph_routes_new(inst, &t);
    if (!rc)
        rc = ph_routes_add_package(t, ver);
    if (!rc)
        rc = ph_crud_add_routes(t, inst);
    if (rc) {
        ph_routes_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

typedef struct saved_state {
    uint32_t version;
    void *data;
    size_t len;
    int have;
} saved_state;

static void save_state(ph_version *v, saved_state *s)
{
    const ph_package *d = v->module->desc;
    memset(s, 0, sizeof *s);
    if (!d->save)
        return;
    ph_frame f;
    ph_frame_push(&f, v->inst);
    f.what = "save";
    int rc = d->save(&v->ctx, &s->version, &s->data, &s->len);
    ph_frame_pop(&f);
    if (rc != PH_OK || f.failed) {
        ph_logf(PH_L_WARN, v->inst->name, "save failed; the new version starts without state");
        free(s->data);
        memset(s, 0, sizeof *s);
        return;
    }
    s->have = 1;
}

static void restore_state(ph_version *v, const saved_state *s)
{
    const ph_package *d = v->module->desc;
    if (!s->have || !d->restore)
        return;
    ph_frame f;
    ph_frame_push(&f, v->inst);
    f.what = "restore";
    int rc = d->restore(&v->ctx, s->version, s->data, s->len);
    ph_frame_pop(&f);
    if (rc == PH_DECLINE)
        ph_logf(PH_L_INFO, v->inst->name, "restore declined state version %u; starting cold",
                s->version);
    else if (rc != PH_OK || f.failed)
        ph_logf(PH_L_WARN, v->inst->name, "restore failed; starting cold");
}

/* Points the instance at version v (with its manifest and store) and publishes its routes. */
static int install(ph_instance *inst, ph_version *v, const ph_manifest *m, ph_store *store)
{
    pthread_mutex_lock(&status_mu); /* ph_reload_info_get reads module->hash without the gate */
    inst->cur = v;
    inst->module = v->module;
    inst->manifest = m;
    inst->store = store;
    pthread_mutex_unlock(&status_mu);
    ph_routes *t = NULL;
    int rc = build_routes(inst, v, &t);
    if (!rc)
        ph_router_publish(inst->router, inst, t);
    return rc;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* What the instance ran before a swap: restored if the swap fails. */
typedef struct previous {
    ph_version *v;
    const ph_manifest *m;
    ph_store *store;
    const char **callable;
    size_t n_callable;
    int was_running;
    saved_state state;
} previous;

/*
 * The new version could not start: the old one serves again, with its own
 * saved state, store and routes. Keeps the current error for the caller.
 */
static void roll_back(ph_instance *inst, previous *p)
{
    int code = ph_error_last_code();
    char *msg = strdup(ph_error_last());
    char *reason = NULL;
    inst->callable = p->callable;
    inst->n_callable = p->n_callable;
    if (install(inst, p->v, p->m, p->store)) {
        atomic_store(&inst->state, PH_INST_FAILED);
        ph_logf(PH_L_ERROR, inst->name, "rollback failed too (%s); the instance is down",
                ph_error_last());
    } else if (p->was_running) {
        /*
         * stop released what prepare acquired: the old version prepares again,
         * gets its state back and starts, in the order of a normal swap.
         */
        int ok = ph_version_step(p->v, p->v->module->desc->prepare, "prepare", &reason) == PH_OK;
        if (ok) {
            restore_state(p->v, &p->state);
            ok = ph_version_step(p->v, p->v->module->desc->start, "start", &reason) == PH_OK;
        }
        if (ok) {
            atomic_store(&inst->state, PH_INST_RUNNING);
        } else {
            atomic_store(&inst->state, PH_INST_FAILED);
            ph_logf(PH_L_ERROR, inst->name,
                    "rollback failed too: the old version's %s; the "
                    "instance is down until its next build",
                    reason ? reason : "start failed");
        }
    }
    free(reason);
    ph_error_set(code ? code : PH_EPACKAGE, "%s", msg ? msg : "reload failed");
    free(msg);
}

/* Runs stop on a prepared build that will not serve (never started, or failed to). */
static void discard_prepared(ph_version *v)
{
    if (!v->module->desc->stop)
        return;
    ph_frame f;
    ph_frame_push(&f, v->inst);
    f.what = "stop";
    v->module->desc->stop(&v->ctx);
    ph_frame_pop(&f);
}

/* Starts the prepared version nv in place of p->v; the gate is closed and empty. */
static int switch_to(ph_host *h, ph_instance *inst, ph_version *nv, const ph_manifest *nm,
                     ph_store *nstore, int commit, previous *p, const char *hash, int *nv_stopped)
{
    char *reason = NULL;
    if (p->was_running) {
        ph_instance_stop(inst);
        save_state(p->v, &p->state);
    }
    int rc = build_callable(nm, &inst->callable, &inst->n_callable);
    if (!rc && (rc = install(inst, nv, nm, nstore)) == 0) {
        restore_state(nv, &p->state);
        int s = ph_version_step(nv, nv->module->desc->start, "start", &reason);
        if (s != PH_OK)
            rc = ph_error_set(PH_EPACKAGE, "new build of '%s' (%s): %s", inst->name, hash,
                              reason ? reason : "start declined");
        /* A migration becomes permanent only with a started new version. */
        else if (commit && (rc = ph_store_commit(nstore)))
            ph_error_wrap("new build of '%s' (%s): the migration to %s could not be committed",
                          inst->name, hash, nm->version_text);
    }
    free(reason);
    (void)h;
    if (rc) {
        if (inst->callable != p->callable)
            free(inst->callable);
        /* The new build releases what its prepare took before the old one prepares again. */
        discard_prepared(nv);
        *nv_stopped = 1;
        roll_back(inst, p);
        return rc;
    }
    atomic_store(&inst->state, PH_INST_RUNNING);
    return 0;
}

/*
 * Swaps one instance to the build described by `nm`. Returns 0 (swapped),
 * 1 (nothing to do: same build, or a build already known bad) or an error.
 */
static int swap_instance(ph_host *h, ph_instance *inst, const ph_manifest *nm, const char *ini_hash)
{
    ph_module *mod = NULL;
    ph_version *nv = NULL;
    ph_store *nstore = NULL;
    previous p = {inst->cur,
                  inst->manifest,
                  inst->store,
                  inst->callable,
                  inst->n_callable,
                  atomic_load(&inst->state) == PH_INST_RUNNING,
                  {0}};
    char *reason = NULL;
    char hash[17], key[17];
    const char *bad = NULL; /* set when the failure is the build's fault */
    int rc, prepared = 0;

    if (ph_frame_inside(inst)) {
        rc = ph_error_set(PH_ESTATE,
                          "instance '%s' cannot be reloaded from inside one of its own "
                          "calls (the drain would wait for that very call); reload it "
                          "from outside",
                          inst->name);
        fail_reload(inst, NULL);
        return rc;
    }
    /* Checked before dlopen: a UNIQUE symbol would bind into the old copy at once. */
    rc = ph_elf_check(nm->library, nm->name, nm->library, hash);
    if (!hash[0]) {
        fail_reload(inst, NULL);
        return rc;
    }
    if (strcmp(hash, p.v->module->hash) == 0) {
        clear_error(inst); /* the file is what runs: an older failure no longer matters */
        return 1;
    }
    build_key(hash, ini_hash, key);
    if (strcmp(key, inst->bad_hash) == 0)
        return 1;
    bad = key;
    if (rc || (rc = ph_module_open(nm, h->stage_dir, &mod)))
        goto fail;
    if (strcmp(mod->hash, hash) != 0) {
        ph_module_close(mod);
        rc = ph_error_set(PH_EBUSY,
                          "%s changed while it was being loaded; it is loaded again "
                          "once it settles",
                          nm->library);
        bad = NULL;
        goto fail;
    }
    if ((rc = ph_version_new(inst, mod, &nv))) {
        bad = NULL;
        goto fail;
    }
    /* Prepared beside the old version, which keeps serving. */
    int s = ph_version_step(nv, nv->module->desc->prepare, "prepare", &reason);
    if (s != PH_OK) {
        rc = ph_error_set(PH_EPACKAGE, "new build of '%s' (%s): %s", inst->name, hash,
                          reason ? reason : "prepare declined");
        goto discard;
    }
    prepared = 1;
    /*
     * Same version: no upgrade scripts, only additive changes the old code
     * tolerates, so the database is opened before the gate closes (keeps
     * the hold short). A new version migrates with nothing running.
     */
    int same_version = strcmp(nm->version_text, p.m->version_text) == 0;
    if (same_version &&
        (rc = ph_store_open_for(h->cfg.data_dir, inst->name, nm, nv->module->desc, &nstore)))
        goto discard;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int drain = atomic_load(&drain_ms);
    if ((rc = ph_gate_close(&inst->gate, drain))) {
        ph_error_wrap("instance '%s': the drain timed out, reload abandoned (the calls go on; "
                      "the build is tried again when it changes or on `plughost reload`)",
                      inst->name);
        bad = NULL; /* not the build's fault */
        goto discard;
    }
    /*
     * Gate closed and empty: nothing of the old version runs now. A new
     * version's migration stays uncommitted until the new version has
     * started, so a start failure rolls the schema back with the code.
     */
    if (!nstore && (rc = ph_store_open_uncommitted(h->cfg.data_dir, inst->name, nm,
                                                   nv->module->desc, &nstore))) {
        ph_gate_open(&inst->gate);
        goto discard;
    }
    int nv_stopped = 0;
    rc = switch_to(h, inst, nv, nm, nstore, !same_version, &p, hash, &nv_stopped);
    if (nv_stopped)
        prepared = 0;
    double held = ms_since(&t0);
    if (!rc)
        record_success(inst, held); /* before the new build serves its first call */
    ph_gate_open(&inst->gate);
    if (rc)
        goto discard; /* rolled back: the old version serves */
    free(p.state.data);
    free(p.callable);
    ph_store_close(p.store);
    ph_version_free(p.v);
    ph_logf(PH_L_INFO, inst->name, "reloaded %s %s -> %s %s (build %s, gate closed %.2f ms)",
            p.m->name, p.m->version_text, nm->name, nm->version_text, hash, held);
    free(reason);
    return 0;
discard:
    if (prepared)
        discard_prepared(nv); /* stop releases what prepare acquired */
    ph_store_close(nstore);
    ph_version_free(nv);
fail:
    free(p.state.data);
    free(reason);
    fail_reload(inst, bad);
    return rc;
}

/* Instances a reload of their package applies to: running ones, and failed ones to revive. */
static int reloadable(ph_host *h, ph_instance *inst)
{
    int s = atomic_load(&inst->state);
    if (s == PH_INST_RUNNING)
        return 1;
    return (s == PH_INST_FAILED || s == PH_INST_DECLINED) &&
           ph_router_instance(h->router, inst->name) == inst;
}

int ph_reload_package(ph_host *h, const char *pkg, int *swapped)
{
    ph_manifest *nm = NULL;
    const ph_manifest *cur = NULL;
    char ini_hash[17] = "", *first_msg = NULL;
    int rc = 0, first = 0;
    *swapped = 0;
    if ((rc = ph_host_lock_changes(h)))
        return rc;
    for (size_t i = 0; i < h->plan.n && !cur; i++)
        if (h->insts[i] && strcmp(h->plan.items[i].manifest->name, pkg) == 0)
            cur = h->plan.items[i].manifest;
    if (!cur) {
        rc = ph_error_set(PH_ENOTFOUND,
                          "no loaded instance of package '%s'; `plughost list` "
                          "shows what is loaded",
                          pkg);
        goto done;
    }
    int any = 0;
    for (size_t i = 0; i < h->plan.n && !any; i++)
        any = h->insts[i] && strcmp(h->plan.items[i].manifest->name, pkg) == 0 &&
              reloadable(h, h->insts[i]);
    if (!any) {
        rc = ph_error_set(PH_ESTATE, "package '%s' is disabled; enable it before reloading it",
                          pkg);
        goto done;
    }
    if ((rc = ph_manifest_load(cur->path, &nm)))
        goto report;
    if (strcmp(nm->name, cur->name) != 0) {
        rc = ph_error_set(PH_EMANIFEST,
                          "%s now names package '%s', not '%s'; a package cannot "
                          "be renamed by a reload",
                          cur->path, nm->name, cur->name);
        goto report;
    }
    if ((rc = check_dependents(h, nm)) || (rc = check_requirements(h, nm)) ||
        (rc = reserve_manifest(h)))
        goto report;
    if (ph_file_hash(nm->path, ini_hash))
        ini_hash[0] = 0;
    for (size_t i = 0; i < h->plan.n; i++) {
        ph_instance *inst = h->insts[i];
        if (!inst || strcmp(h->plan.items[i].manifest->name, pkg) != 0 || !reloadable(h, inst))
            continue;
        int r = swap_instance(h, inst, nm, ini_hash);
        if (r == 0) {
            (*swapped)++;
            pthread_rwlock_wrlock(&h->lock);
            h->plan.items[i].manifest = nm;
            pthread_rwlock_unlock(&h->lock);
        } else if (r < 0 && !first) {
            first = r;
            first_msg = strdup(ph_error_last());
        }
    }
    if (*swapped) {
        h->reloaded[h->n_reloaded++] = nm; /* instances point into it now */
        nm = NULL;
    }
    rc = first;
    if (first)
        ph_error_set(first, "%s", first_msg ? first_msg : "reload failed");
    goto done;
report:
    /* The build could not even be considered: every instance reports why. */
    for (size_t i = 0; i < h->plan.n; i++)
        if (h->insts[i] && strcmp(h->plan.items[i].manifest->name, pkg) == 0)
            fail_reload(h->insts[i], NULL);
done:
    free(first_msg);
    ph_manifest_free(nm);
    ph_host_unlock_changes(h);
    return rc;
}

/* ---- the watcher ---- */

typedef struct watched {
    char *pkg;
    char *dir;
    char *lib_name; /* basename of the .so */
    int wd;
    int dirty;
    struct timespec last_event;
    struct stat last_stat; /* of the .so at the previous settle look */
    int have_stat;
    struct stat seen_lib, seen_ini; /* as of the last reload attempt (rescan compares) */
} watched;

struct ph_reloader {
    ph_host *host;
    ph_reload_opts opts;
    int fd;
    int stop_pipe[2];
    pthread_t thread;
    int started;
    watched *w;
    size_t n;
    struct timespec last_rescan;
};

static void stat_or_zero(const char *dir, const char *name, struct stat *st)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (stat(path, st) != 0)
        memset(st, 0, sizeof *st);
}

static void remember_files(watched *w)
{
    stat_or_zero(w->dir, w->lib_name, &w->seen_lib);
    stat_or_zero(w->dir, "package.ini", &w->seen_ini);
}

static int add_watch(ph_reloader *r, const ph_manifest *m)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->w[i].pkg, m->name) == 0)
            return 0;
    watched *p = realloc(r->w, (r->n + 1) * sizeof *p);
    if (!p)
        return ph_error_set(PH_ENOMEM, "out of memory");
    r->w = p;
    watched *w = &r->w[r->n];
    memset(w, 0, sizeof *w);
    const char *base = strrchr(m->library, '/');
    if (!(w->pkg = strdup(m->name)) || !(w->dir = strdup(m->dir)) ||
        !(w->lib_name = strdup(base ? base + 1 : m->library))) {
        free(w->pkg);
        free(w->dir);
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    /* The directory, not the file: linkers unlink and recreate, or rename over. */
    w->wd = inotify_add_watch(r->fd, m->dir,
                              IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                                  IN_ATTRIB);
    if (w->wd < 0) {
        int rc = ph_error_set(PH_EIO, "cannot watch %s: %s", m->dir, strerror(errno));
        free(w->pkg);
        free(w->dir);
        free(w->lib_name);
        return rc;
    }
    remember_files(w);
    r->n++;
    return 0;
}

static void mark_dirty(watched *w)
{
    w->dirty = 1;
    w->have_stat = 0;
    clock_gettime(CLOCK_MONOTONIC, &w->last_event);
}

static void read_events(ph_reloader *r)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n = read(r->fd, buf, sizeof buf);
    for (char *p = buf; n > 0 && p < buf + n;) {
        struct inotify_event *ev = (struct inotify_event *)p;
        p += sizeof *ev + ev->len;
        if (ev->mask & IN_Q_OVERFLOW) {
            /* Events were lost: look at every package again. */
            for (size_t i = 0; i < r->n; i++)
                mark_dirty(&r->w[i]);
            continue;
        }
        for (size_t i = 0; i < r->n; i++) {
            watched *w = &r->w[i];
            if (w->wd == ev->wd && ev->len &&
                (strcmp(ev->name, w->lib_name) == 0 || strcmp(ev->name, "package.ini") == 0))
                mark_dirty(w);
        }
    }
}

static int same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_size == b->st_size && a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* A dirty package reloads once events have stopped and the file is stable. */
static void check_settled(ph_reloader *r, watched *w)
{
    if (!w->dirty || ms_since(&w->last_event) < r->opts.settle_ms)
        return;
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", w->dir, w->lib_name);
    if (stat(path, &st) != 0) {
        w->dirty = 0; /* deleted: keep serving; a new file brings new events */
        remember_files(w);
        return;
    }
    if (!w->have_stat || !same_stat(&st, &w->last_stat)) {
        /* Look again in 100 ms: size, mtime and inode must hold still. */
        w->last_stat = st;
        w->have_stat = 1;
        clock_gettime(CLOCK_MONOTONIC, &w->last_event);
        w->last_event.tv_nsec -= (long)(r->opts.settle_ms - 100) * 1000000L;
        return;
    }
    w->dirty = 0;
    remember_files(w);
    int swapped = 0;
    if (ph_reload_package(r->host, w->pkg, &swapped) == 0 && swapped)
        ph_log_info("%s: new build is serving", w->pkg);
}

/* Without events (lost, or a file system that sends none) a changed stat still counts. */
static void rescan(ph_reloader *r)
{
    if (ms_since(&r->last_rescan) < r->opts.rescan_ms)
        return;
    clock_gettime(CLOCK_MONOTONIC, &r->last_rescan);
    for (size_t i = 0; i < r->n; i++) {
        watched *w = &r->w[i];
        struct stat lib, ini;
        stat_or_zero(w->dir, w->lib_name, &lib);
        stat_or_zero(w->dir, "package.ini", &ini);
        if (!w->dirty && lib.st_ino &&
            (!same_stat(&lib, &w->seen_lib) || !same_stat(&ini, &w->seen_ini)))
            mark_dirty(w);
    }
}

static void *watch_loop(void *arg)
{
    ph_reloader *r = arg;
    struct pollfd fds[2] = {{.fd = r->fd, .events = POLLIN},
                            {.fd = r->stop_pipe[0], .events = POLLIN}};
    clock_gettime(CLOCK_MONOTONIC, &r->last_rescan);
    for (;;) {
        int any = 0;
        for (size_t i = 0; i < r->n; i++)
            any |= r->w[i].dirty;
        /* Idle: sleep until an event (or the rescan); dirty: tick for the settle timer. */
        int timeout = any ? 20 : (r->opts.rescan_ms < 1000 ? r->opts.rescan_ms : 1000);
        if (poll(fds, 2, timeout) < 0 && errno != EINTR)
            break;
        if (fds[1].revents)
            break;
        if (fds[0].revents & POLLIN)
            read_events(r);
        for (size_t i = 0; i < r->n; i++)
            check_settled(r, &r->w[i]);
        rescan(r);
    }
    return NULL;
}

int ph_reloader_start(ph_host *h, const ph_reload_opts *opts, ph_reloader **out)
{
    *out = NULL;
    ph_reloader *r = calloc(1, sizeof *r);
    if (!r)
        return ph_error_set(PH_ENOMEM, "out of memory");
    r->host = h;
    r->opts.settle_ms = opts && opts->settle_ms > 0 ? opts->settle_ms : 250;
    if (r->opts.settle_ms < 100)
        r->opts.settle_ms = 100; /* the stability look is 100 ms after the first */
    r->opts.rescan_ms = opts && opts->rescan_ms > 0 ? opts->rescan_ms : 30000;
    r->stop_pipe[0] = r->stop_pipe[1] = -1;
    r->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    int rc = 0;
    if (r->fd < 0 || pipe2(r->stop_pipe, O_CLOEXEC) != 0) {
        rc = ph_error_set(PH_EIO, "cannot start the file watcher: %s", strerror(errno));
        goto fail;
    }
    /* Only an explicit drain bound replaces the one set before. */
    if (opts && opts->drain_ms > 0)
        ph_reload_set_drain_ms(opts->drain_ms);
    r->opts.drain_ms = atomic_load(&drain_ms);
    pthread_rwlock_rdlock(&h->lock); /* a reload may rewrite plan manifests meanwhile */
    for (size_t i = 0; i < h->plan.n && !rc; i++)
        if (h->insts[i])
            rc = add_watch(r, h->plan.items[i].manifest);
    pthread_rwlock_unlock(&h->lock);
    if (rc)
        goto fail;
    if (pthread_create(&r->thread, NULL, watch_loop, r) != 0) {
        rc = ph_error_set(PH_EIO, "cannot start the file watcher thread");
        goto fail;
    }
    r->started = 1;
    *out = r;
    return 0;
fail:
    ph_reloader_stop(r);
    return rc;
}

void ph_reloader_stop(ph_reloader *r)
{
    if (!r)
        return;
    if (r->started) {
        ssize_t n = write(r->stop_pipe[1], "x", 1);
        (void)n;
        pthread_join(r->thread, NULL);
    }
    for (size_t i = 0; i < r->n; i++) {
        free(r->w[i].pkg);
        free(r->w[i].dir);
        free(r->w[i].lib_name);
    }
    free(r->w);
    if (r->fd >= 0)
        close(r->fd);
    if (r->stop_pipe[0] >= 0)
        close(r->stop_pipe[0]);
    if (r->stop_pipe[1] >= 0)
        close(r->stop_pipe[1]);
    free(r);
}
