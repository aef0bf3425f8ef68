#include "reload.h"

#include <dirent.h>
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

#include "build.h"
#include "config.h"
#include "crud.h"
#include "elfcheck.h"
#include "callbacks.h"
#include "error.h"
#include "interface.h"
#include "log.h"
#include "residue.h"
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
    out->at = inst->reload_at;
    out->code = inst->reload_error ? inst->reload_code : 0;
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
    int code = ph_error_last_code();
    pthread_mutex_lock(&status_mu);
    inst->reload_failures++;
    inst->reload_at = (long long)time(NULL);
    inst->reload_code = code ? code : PH_ELOAD;
    free(inst->reload_error);
    inst->reload_error = msg;
    if (bad_key)
        snprintf(inst->bad_hash, sizeof inst->bad_hash, "%s", bad_key);
    pthread_mutex_unlock(&status_mu);
    ph_logf(PH_L_ERROR, inst->name, "reload failed, the old version keeps serving: %s",
            msg ? msg : ph_error_last());
}

void ph_reload_fail(ph_instance *inst)
{
    fail_reload(inst, NULL);
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
    inst->reload_at = (long long)time(NULL);
    free(inst->reload_error);
    inst->reload_error = NULL;
    inst->bad_hash[0] = 0;
    inst->bad_crashed = 0;
    double *slot = hold_slot(inst);
    if (slot)
        *slot = held;
    pthread_mutex_unlock(&status_mu);
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

/* Asks the old version for its state; a failure keeps the old version serving. */
static int save_state(ph_version *v, saved_state *s)
{
    const ph_package *d = v->module->desc;
    memset(s, 0, sizeof *s);
    if (!PH_DESC_HAS(d, save) || !d->save)
        return 0;
    ph_frame f;
    ph_frame_push(&f, v->inst);
    f.what = "save";
    f.ver = v;
    int rc = d->save(&v->ctx, &s->version, &s->data, &s->len);
    ph_frame_pop(&f);
    if (rc != PH_OK || f.failed) {
        char why[512];
        snprintf(why, sizeof why, "%s", f.failed ? ph_error_last() : "it returned PH_FAIL");
        free(s->data);
        memset(s, 0, sizeof *s);
        return ph_error_set(PH_EPACKAGE,
                            "instance '%s': the running build's save() failed (%s), so its "
                            "state could not be handed over; reload refused, the old build "
                            "keeps serving (`plughost disable %s` then `plughost enable %s` "
                            "starts the new build without the state)",
                            v->inst->name, why, v->inst->name, v->inst->name);
    }
    s->have = 1;
    return 0;
}

/* Hands the state to a version; PH_DECLINE (a state version it does not read) starts cold. */
static int restore_state(ph_version *v, const saved_state *s)
{
    const ph_package *d = v->module->desc;
    if (!s->have || !PH_DESC_HAS(d, restore) || !d->restore)
        return 0;
    ph_frame f;
    ph_frame_push(&f, v->inst);
    f.what = "restore";
    f.ver = v;
    int rc = d->restore(&v->ctx, s->version, s->data, s->len);
    ph_frame_pop(&f);
    if (rc == PH_DECLINE && !f.failed) {
        ph_logf(PH_L_INFO, v->inst->name, "restore declined state version %u; starting cold",
                s->version);
        return 0;
    }
    if (rc != PH_OK || f.failed) {
        char why[512];
        snprintf(why, sizeof why, "%s", f.failed ? ph_error_last() : "it returned PH_FAIL");
        return ph_error_set(PH_EPACKAGE,
                            "instance '%s': restore() of the new build failed on state "
                            "version %u (%s); reload refused, the old build keeps serving "
                            "with its state",
                            v->inst->name, s->version, why);
    }
    return 0;
}

/* Points the instance at version v (with its manifest, parameters and store) and publishes its
 * routes. */
static int install(ph_instance *inst, ph_version *v, const ph_manifest *m, ph_kv *params,
                   size_t n_params, ph_store *store)
{
    int rc = ph_version_set_params(v, params, n_params);
    if (rc)
        return rc;
    pthread_mutex_lock(&status_mu); /* ph_reload_info_get reads module->hash without the gate */
    inst->cur = v;
    inst->module = v->module;
    inst->manifest = m;
    inst->params = params;
    inst->n_params = n_params;
    inst->store = store;
    pthread_mutex_unlock(&status_mu);
    ph_routes *t = NULL;
    rc = build_routes(inst, v, &t);
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
    ph_kv *params;
    size_t n_params;
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
    if (install(inst, p->v, p->m, p->params, p->n_params, p->store)) {
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
            if (restore_state(p->v, &p->state))
                ph_logf(PH_L_WARN, p->v->inst->name,
                        "the old build could not take its state "
                        "back; it starts cold");
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

/*
 * The drain bound of a swap: the host's (drain_ms), or the longest time
 * limit the package declares for its methods plus PH_ABANDON_MARGIN_MS
 * when that is longer. A call past its limit is abandoned by its caller
 * (504) and leaves the gate, so the reload then goes ahead instead of being
 * given up; the calls held at the closed gate meanwhile wait as long as the
 * drain does (gate.c) and are served by the new build.
 */
#define PH_ABANDON_MARGIN_MS 1000

static int drain_bound(const ph_manifest *m, int drain)
{
    int longest = 0;
    for (size_t i = 0; m && i < m->n_limits; i++) {
        int ms = 0;
        if (strcmp(m->limits[i].key, "stop_timeout") != 0 &&
            ph_config_parse_seconds(m->limits[i].value, &ms) == 0 && ms > longest)
            longest = ms;
    }
    return longest && longest + PH_ABANDON_MARGIN_MS > drain ? longest + PH_ABANDON_MARGIN_MS
                                                             : drain;
}

/* Runs stop on a prepared build that will not serve (never started, or failed to). */
static void discard_prepared(ph_version *v)
{
    if (!v->module->desc->stop || ph_version_pinned(v)) /* not under a callback past its limit */
        return;
    ph_frame f;
    ph_frame_push(&f, v->inst);
    f.what = "stop";
    f.ver = v;
    v->module->desc->stop(&v->ctx);
    ph_frame_pop(&f);
    ph_residue_after_step(v->module, "stop");
}

/* Starts the prepared version nv in place of p->v; the gate is closed and empty. */
typedef struct target {
    const ph_manifest *m;
    ph_kv *params;
    size_t n_params;
    const char *build;
} target;

/* after_upgrade of the started new version (callbacks.h); its failure rolls the upgrade back. */
static int after_upgrade(ph_instance *inst, ph_version *nv, const ph_manifest *om,
                         const ph_manifest *nm, const char *hash)
{
    char *why = NULL;
    ph_callback_args a = {.from = om->version_text, .to = nm->version_text};
    int rc = 0;
    if (ph_callback_run(nv, PH_CB_AFTER_UPGRADE, &a, &why) != PH_OK)
        rc = ph_error_set(PH_EPACKAGE,
                          "new build of '%s' (%s): %s; the upgrade %s -> %s is rolled back and "
                          "%s serves again",
                          inst->name, hash, why, om->version_text, nm->version_text,
                          om->version_text);
    free(why);
    return rc;
}

/* after_mount of the started new build: every start is told its mount (callbacks.h); its
 * failure keeps the old build serving. */
static int after_mount(ph_instance *inst, ph_version *nv, const char *hash)
{
    char *why = NULL;
    ph_callback_args a = {.mount = inst->mount};
    int rc = 0;
    if (ph_callback_run(nv, PH_CB_AFTER_MOUNT, &a, &why) != PH_OK)
        rc = ph_error_set(PH_EPACKAGE, "new build of '%s' (%s): %s", inst->name, hash, why);
    free(why);
    return rc;
}

/* before_upgrade of the old version, gate closed (callbacks.h); its failure refuses the upgrade. */
static int before_upgrade(ph_instance *inst, const previous *p, const ph_manifest *nm)
{
    char *why = NULL;
    ph_callback_args a = {.from = p->m->version_text, .to = nm->version_text};
    int rc = 0;
    if (p->was_running && ph_callback_run(p->v, PH_CB_BEFORE_UPGRADE, &a, &why) != PH_OK)
        rc = ph_error_set(
            PH_EPACKAGE, "instance '%s': %s %s refused the upgrade to %s: %s; %s keeps serving",
            inst->name, p->m->name, p->m->version_text, nm->version_text, why, p->m->version_text);
    free(why);
    return rc;
}

static int switch_to(ph_host *h, ph_instance *inst, ph_version *nv, const target *t,
                     ph_store *nstore, int commit, previous *p, const char *hash, int *nv_stopped)
{
    const ph_manifest *nm = t->m;
    char *reason = NULL;
    int rc = 0;
    if (p->was_running) {
        /* A stop() skipped (under an abandoned call) or past its limit: the old build stays
           mapped, its state is not asked for, and the new build starts cold. */
        if (ph_instance_stop(inst))
            ph_logf(PH_L_ERROR, inst->name, "%s; the new build starts without its state",
                    ph_error_last());
        else
            rc = save_state(p->v, &p->state);
    }
    if (!rc)
        rc = build_callable(nm, &inst->callable, &inst->n_callable);
    if (!rc && (rc = install(inst, nv, nm, t->params, t->n_params, nstore)) == 0 &&
        (rc = restore_state(nv, &p->state)) == 0) {
        int s = ph_version_step(nv, nv->module->desc->start, "start", &reason);
        if (s != PH_OK)
            rc = ph_error_set(PH_EPACKAGE, "new build of '%s' (%s): %s", inst->name, hash,
                              reason ? reason : "start declined");
        else if (commit)
            rc = after_upgrade(inst, nv, p->m, nm, hash);
        if (!rc && s == PH_OK)
            rc = after_mount(inst, nv, hash);
        /* A migration becomes permanent only with a started new version. */
        if (!rc && s == PH_OK && commit && (rc = ph_store_commit(nstore)))
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

/* The refusal of a build that breaks its declared interface within a major version. */
static int interface_refusal(const ph_instance *inst, const ph_manifest *nm, const char *was,
                             const ph_semver *wasv, const char *text)
{
    return ph_error_set(PH_EABI,
                        "instance '%s': the new build of %s %s -> %s breaks its declared "
                        "interface without a new major version (semver): %s; keep these or "
                        "raise the version to %llu.0.0 (dependents then need a range that "
                        "accepts it)",
                        inst->name, nm->name, was, nm->version_text, text ? text : "?",
                        (unsigned long long)(wasv->major + 1));
}

/*
 * The interface recorded for the instance (the highest version of a major
 * that ran, build.h): going back a version and then forward again must not
 * drop what that version had.
 */
static int check_recorded(ph_host *h, const ph_instance *inst, const ph_manifest *nm,
                          const ph_package *nd)
{
    json_t *last = ph_build_last_interface(h->cfg.data_dir, inst->name), *now = NULL;
    const char *was = json_string_value(json_object_get(last, "version"));
    ph_semver v;
    char *text = NULL;
    int rc = 0;
    if (was && ph_semver_parse(was, &v) == 0 && ph_interface_must_keep(&v, &nm->version) &&
        (now = ph_interface_json(nd)) &&
        ph_interface_diff_json(json_object_get(last, "interface"), now, 1, &text) > 0)
        rc = interface_refusal(inst, nm, was, &v, text);
    if (!rc)
        ph_error_clear();
    free(text);
    json_decref(now);
    json_decref(last);
    return rc;
}

/*
 * Semver enforced: a build that removes or changes its declared interface
 * must carry a new major version.
 */
static int check_interface(ph_host *h, const ph_instance *inst, const ph_manifest *om,
                           const ph_package *od, const ph_manifest *nm, const ph_package *nd)
{
    char *text = NULL;
    int n = ph_interface_diff(od, nd, &text);
    if (n < 0 || (n > 0 && ph_interface_must_keep(&om->version, &nm->version))) {
        int rc = n < 0 ? n : interface_refusal(inst, nm, om->version_text, &om->version, text);
        free(text);
        return rc;
    }
    free(text);
    return check_recorded(h, inst, nm, nd);
}

/*
 * Swaps one instance to the build described by `t`. Returns 0 (swapped),
 * 1 (nothing to do: same build and parameters, or a build already known
 * bad and not forced) or an error (the old version keeps serving).
 */
static int swap_instance(ph_host *h, ph_instance *inst, const target *t, int force)
{
    const ph_manifest *nm = t->m;
    ph_module *mod = NULL;
    ph_version *nv = NULL;
    ph_store *nstore = NULL;
    previous p = {
        inst->cur,   inst->manifest, inst->params,     inst->n_params,
        inst->store, inst->callable, inst->n_callable, atomic_load(&inst->state) == PH_INST_RUNNING,
        {0}};
    char *reason = NULL;
    char hash[17];
    const char *bad = NULL; /* set when the failure is the build's fault */
    int rc, prepared = 0;

    if (strcmp(t->build, p.v->build) == 0 &&
        ph_instance_params_equal(inst, t->params, t->n_params)) {
        clear_error(inst); /* the files are what runs: an older failure no longer matters */
        return 1;
    }
    if ((!force || inst->bad_crashed) && strcmp(t->build, inst->bad_hash) == 0)
        return 1;
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
    bad = t->build;
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
    if ((rc = check_interface(h, inst, p.m, p.v->module->desc, nm, mod->desc))) {
        ph_module_close(mod);
        goto fail;
    }
    if ((rc = ph_version_new(inst, mod, &nv)) ||
        (rc = ph_version_set_params(nv, t->params, t->n_params))) {
        bad = NULL;
        if (nv)
            goto discard; /* nothing prepared yet */
        goto fail;
    }
    snprintf(nv->build, sizeof nv->build, "%s", t->build);
    nv->manifest = nm;
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
    int drain = drain_bound(p.m, atomic_load(&drain_ms));
    if ((rc = ph_gate_close(&inst->gate, drain))) {
        ph_error_wrap("instance '%s': the drain timed out, reload abandoned (the calls go on; "
                      "it is tried again once they end)",
                      inst->name);
        bad = NULL; /* not the build's fault */
        snprintf(h->retry_instance, sizeof h->retry_instance, "%s", inst->name);
        __atomic_store_n(&h->retry_pending, 1, __ATOMIC_RELEASE);
        goto discard;
    }
    struct timespec t0; /* the gate-closed time starts now: waits with it open do not count */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /*
     * Gate closed and empty: nothing of the old version runs now. A new
     * version's migration stays uncommitted until the new version has
     * started, so a start failure rolls the schema back with the code.
     */
    if (!same_version && (rc = before_upgrade(inst, &p, nm))) {
        ph_gate_open(&inst->gate);
        goto discard;
    }
    if (!nstore && (rc = ph_store_open_uncommitted(h->cfg.data_dir, inst->name, nm,
                                                   nv->module->desc, &nstore))) {
        ph_gate_open(&inst->gate);
        goto discard;
    }
    int nv_stopped = 0;
    rc = switch_to(h, inst, nv, t, nstore, !same_version, &p, hash, &nv_stopped);
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
            p.m->name, p.m->version_text, nm->name, nm->version_text, t->build, held);
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

int ph_reload_swap(ph_host *h, ph_instance *inst, const ph_manifest *nm, ph_kv *params,
                   size_t n_params, const char *build, int force)
{
    target t = {nm, params, n_params, build};
    return swap_instance(h, inst, &t, force);
}

void ph_reload_repoint(ph_instance *inst, const ph_manifest *m)
{
    pthread_mutex_lock(&status_mu);
    __atomic_store_n(&inst->manifest, m, __ATOMIC_RELEASE); /* read by status pages, gate open */
    pthread_mutex_unlock(&status_mu);
}

/*
 * After a reload: an instance of `name` that is not running says why, and
 * how to move it on (a disabled one needs enable, a failed one a new build).
 */
static int reload_outcome(ph_host *h, const char *name)
{
    int rc = 0;
    pthread_rwlock_rdlock(&h->lock);
    for (size_t i = 0; i < h->plan.n && !rc; i++) {
        const ph_plan_item *it = &h->plan.items[i];
        if (strcmp(it->instance, name) != 0 && (!it->manifest || strcmp(it->manifest->name, name)))
            continue;
        const char *why = NULL, *state = ph_host_item_state(h, i, &why);
        ph_reload_info info;
        if (strcmp(state, "disabled") == 0)
            rc = ph_error_set(PH_ESTATE,
                              "instance '%s' is disabled; `plughost enable %s` loads the build "
                              "on disk and starts it",
                              it->instance, it->instance);
        else if (strcmp(state, "running") != 0)
            rc = ph_error_set(PH_ESTATE, "instance '%s' is %s%s%s", it->instance, state,
                              why ? ": " : "", why ? why : "");
        else if (h->insts[i] && ph_reload_info_get(h->insts[i], &info) == 0) {
            if (info.error) /* the old build keeps serving: the error is the swap's own */
                rc = ph_error_set(info.code ? info.code : PH_ELOAD, "%s", info.error);
            free(info.error);
        }
    }
    pthread_rwlock_unlock(&h->lock);
    return rc;
}

int ph_reload_package(ph_host *h, const char *name, int *swapped)
{
    ph_change_counts n = {0};
    int rc = ph_host_reconcile(h, NULL, name, &n);
    *swapped = n.swapped + n.started;
    return rc ? rc : reload_outcome(h, name);
}

/* ---- the watcher ---- */

/*
 * The watcher looks at the package directories themselves (a package
 * directory created, moved in, replaced by `mv`, a `current` symlink
 * swapped) and at every package's directory, sql/ and lib/ (the .so,
 * package.ini, upgrade scripts, libraries loaded through $ORIGIN/lib). Any
 * event makes the whole set dirty; once events stop for settle_ms and a fingerprint of every
 * watched file holds still for 100 ms, one change (ph_host_reconcile) applies what differs. The
 * watch list is refreshed after every change (also one made by SIGHUP or the CLI), and a rescan
 * every rescan_ms compares the fingerprint even without events (lost events, file systems that send
 * none).
 */

#define PH_WATCH_MASK                                                                              \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB |            \
     IN_DELETE_SELF | IN_MOVE_SELF)

struct ph_reloader {
    ph_host *host;
    ph_reload_opts opts;
    int fd;
    int stop_pipe[2];
    pthread_t thread;
    int started;
    char **paths; /* watched directories, parallel to wds */
    int *wds;
    size_t n;
    unsigned generation; /* host generation the watch list was built for */
    int dirty;
    struct timespec last_event, last_rescan, last_retry, last_prove, retry_since;
    int retry_since_set;
    uint64_t settle_print; /* fingerprint at the first settle look */
    int have_print;
    uint64_t applied_print; /* fingerprint when the last change was applied */
};

static uint64_t mix_u64(uint64_t h, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        h = (h ^ ((v >> (i * 8)) & 0xff)) * 1099511628211ULL;
    return h;
}

static uint64_t mix_stat(uint64_t h, const char *path, int follow)
{
    struct stat st;
    int rc = follow ? stat(path, &st) : lstat(path, &st);
    if (rc != 0)
        return mix_u64(h, 0);
    h = mix_u64(h, (uint64_t)st.st_ino);
    h = mix_u64(h, (uint64_t)st.st_size);
    h = mix_u64(h, (uint64_t)st.st_mtim.tv_sec);
    return mix_u64(h, (uint64_t)st.st_mtim.tv_nsec);
}

/* Every entry of a directory: name, the entry itself and what it points to. */
static uint64_t mix_dir(uint64_t h, const char *dir)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        if (list[i]->d_name[0] != '.' &&
            snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name) < (int)sizeof path) {
            for (const char *c = list[i]->d_name; *c; c++)
                h = (h ^ (unsigned char)*c) * 1099511628211ULL;
            h = mix_stat(mix_stat(h, path, 0), path, 1);
        }
        free(list[i]);
    }
    free(list);
    return mix_u64(h, (uint64_t)(n < 0 ? 0 : n));
}

/* Stats of everything a change would read: package directories, .so, package.ini, sql/, lib/. */
static uint64_t fingerprint(ph_reloader *r)
{
    ph_host *h = r->host;
    uint64_t fp = 1469598103934665603ULL;
    pthread_rwlock_rdlock(&h->lock);
    for (size_t i = 0; i < h->cfg.n_package_dirs; i++)
        fp = mix_dir(fp, h->cfg.package_dirs[i]);
    for (size_t i = 0; i < h->set.n; i++) {
        const ph_manifest *m = h->set.items[i];
        char sql[PATH_MAX];
        fp = mix_stat(mix_stat(fp, m->library, 1), m->path, 1);
        if (snprintf(sql, sizeof sql, "%s/sql", m->dir) < (int)sizeof sql)
            fp = mix_dir(fp, sql);
        /* lib/: libraries of the package's own ($ORIGIN/lib), part of its build */
        if (snprintf(sql, sizeof sql, "%s/lib", m->dir) < (int)sizeof sql)
            fp = mix_dir(fp, sql);
    }
    pthread_rwlock_unlock(&h->lock);
    return fp;
}

static int watched(const ph_reloader *r, const char *path)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->paths[i], path) == 0)
            return 1;
    return 0;
}

/* Adds an inotify watch on a directory that exists and is not watched yet. */
static void watch_dir(ph_reloader *r, const char *path)
{
    struct stat st;
    if (watched(r, path) || stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return;
    char **p = realloc(r->paths, (r->n + 1) * sizeof *p);
    if (p)
        r->paths = p;
    int *w = realloc(r->wds, (r->n + 1) * sizeof *w);
    if (w)
        r->wds = w;
    char *copy = strdup(path);
    if (!p || !w || !copy) {
        free(copy);
        return;
    }
    int wd = inotify_add_watch(r->fd, path, PH_WATCH_MASK);
    if (wd < 0) {
        ph_log_warn("cannot watch %s: %s; changes there are seen by the rescan only", path,
                    ph_strerror(errno));
        free(copy);
        return;
    }
    r->paths[r->n] = copy;
    r->wds[r->n++] = wd;
}

/* Watches what the host's current package set is made of (after every change). */
static void refresh_watches(ph_reloader *r)
{
    ph_host *h = r->host;
    pthread_rwlock_rdlock(&h->lock);
    r->generation = __atomic_load_n(&h->generation, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < h->cfg.n_package_dirs; i++)
        watch_dir(r, h->cfg.package_dirs[i]);
    for (size_t i = 0; i < h->set.n; i++) {
        const ph_manifest *m = h->set.items[i];
        char sql[PATH_MAX];
        watch_dir(r, m->dir);
        if (snprintf(sql, sizeof sql, "%s/sql", m->dir) < (int)sizeof sql)
            watch_dir(r, sql);
        if (snprintf(sql, sizeof sql, "%s/lib", m->dir) < (int)sizeof sql)
            watch_dir(r, sql);
    }
    pthread_rwlock_unlock(&h->lock);
}

static void mark_dirty(ph_reloader *r)
{
    r->dirty = 1;
    r->have_print = 0;
    clock_gettime(CLOCK_MONOTONIC, &r->last_event);
}

static void read_events(ph_reloader *r)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    while ((n = read(r->fd, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_IGNORED) { /* the directory went away: forget its watch */
                for (size_t i = 0; i < r->n; i++)
                    if (r->wds[i] == ev->wd) {
                        free(r->paths[i]);
                        r->paths[i] = r->paths[r->n - 1];
                        r->wds[i] = r->wds[r->n - 1];
                        r->n--;
                        break;
                    }
            }
            /* Editors' and linkers' temporary files still end in an event on the real name. */
            mark_dirty(r);
        }
    }
}

static void apply_change(ph_reloader *r, uint64_t print)
{
    ph_change_counts n = {0};
    r->dirty = 0;
    __atomic_store_n(&r->host->retry_pending, 0, __ATOMIC_RELEASE);
    int rc = ph_host_reconcile(r->host, NULL, NULL, &n);
    if (rc == 0 || rc != PH_EBUSY)
        r->applied_print = print;
    if (rc == 0 && (n.swapped || n.started || n.stopped))
        ph_log_info("package directories changed: %d swapped, %d started, %d stopped", n.swapped,
                    n.started, n.stopped);
    else if (rc)
        ph_log_error("package directories changed, not applied: %s", ph_error_last());
    refresh_watches(r);
}

/* A dirty set changes once events have stopped and the files hold still. */
static void check_settled(ph_reloader *r)
{
    if (!r->dirty || ms_since(&r->last_event) < r->opts.settle_ms)
        return;
    uint64_t print = fingerprint(r);
    if (!r->have_print || print != r->settle_print) {
        /* Look again in 100 ms: sizes, mtimes and inodes must hold still. */
        r->settle_print = print;
        r->have_print = 1;
        clock_gettime(CLOCK_MONOTONIC, &r->last_event);
        r->last_event.tv_nsec -= (long)(r->opts.settle_ms - 100) * 1000000L;
        return;
    }
    apply_change(r, print);
}

/*
 * A change abandoned because an instance stayed busy past the drain bound
 * is tried again once that instance has no call in flight (a retry that
 * closed the gate on the same stuck call would hold every new call for
 * another drain bound), or after PH_RETRY_ANYWAY_MS at the latest.
 */
#define PH_RETRY_ANYWAY_MS 60000
static void retry_when_idle(ph_reloader *r)
{
    ph_host *h = r->host;
    if (!__atomic_load_n(&h->retry_pending, __ATOMIC_ACQUIRE)) {
        r->retry_since_set = 0;
        return;
    }
    if (r->dirty)
        return; /* a change is on its way already */
    if (!r->retry_since_set) {
        clock_gettime(CLOCK_MONOTONIC, &r->retry_since);
        r->retry_since_set = 1;
    }
    ph_instance *inst = ph_router_instance(h->router, h->retry_instance);
    int idle = !inst || ph_gate_inside(&inst->gate) == 0;
    if (!idle && ms_since(&r->retry_since) < PH_RETRY_ANYWAY_MS)
        return;
    r->retry_since_set = 0;
    mark_dirty(r);
}

/* Without events (lost, or a file system that sends none) a changed fingerprint still counts. */
static void rescan(ph_reloader *r)
{
    if (__atomic_load_n(&r->host->generation, __ATOMIC_ACQUIRE) != r->generation) {
        refresh_watches(r); /* a change made elsewhere (SIGHUP, CLI) */
        r->applied_print = fingerprint(r);
    }
    retry_when_idle(r);
    if (ms_since(&r->last_rescan) < r->opts.rescan_ms)
        return;
    clock_gettime(CLOCK_MONOTONIC, &r->last_rescan);
    if (!r->dirty && fingerprint(r) != r->applied_print)
        mark_dirty(r);
}

/* About once a second: builds that served through their probation become last good builds. */
static void probation(ph_reloader *r)
{
    if (ms_since(&r->last_prove) < 1000)
        return;
    clock_gettime(CLOCK_MONOTONIC, &r->last_prove);
    ph_host_prove_builds(r->host);
}

static void *watch_loop(void *arg)
{
    ph_reloader *r = arg;
    struct pollfd fds[2] = {{.fd = r->fd, .events = POLLIN},
                            {.fd = r->stop_pipe[0], .events = POLLIN}};
    clock_gettime(CLOCK_MONOTONIC, &r->last_rescan);
    r->last_retry = r->last_rescan;
    for (;;) {
        /* Idle: sleep until an event (or the rescan); dirty: tick for the settle timer. */
        int waiting = r->dirty || __atomic_load_n(&r->host->retry_pending, __ATOMIC_ACQUIRE);
        int timeout = waiting ? 20 : (r->opts.rescan_ms < 250 ? r->opts.rescan_ms : 250);
        if (poll(fds, 2, timeout) < 0 && errno != EINTR)
            break;
        if (fds[1].revents)
            break;
        if (fds[0].revents & POLLIN)
            read_events(r);
        check_settled(r);
        rescan(r);
        probation(r);
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
        rc = ph_error_set(PH_EIO, "cannot start the file watcher: %s", ph_strerror(errno));
        goto fail;
    }
    /* Only an explicit drain bound replaces the one set before. */
    if (opts && opts->drain_ms > 0)
        ph_reload_set_drain_ms(opts->drain_ms);
    r->opts.drain_ms = atomic_load(&drain_ms);
    refresh_watches(r);
    r->applied_print = fingerprint(r);
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
    for (size_t i = 0; i < r->n; i++)
        free(r->paths[i]);
    free(r->paths);
    free(r->wds);
    if (r->fd >= 0)
        close(r->fd);
    if (r->stop_pipe[0] >= 0)
        close(r->stop_pipe[0]);
    if (r->stop_pipe[1] >= 0)
        close(r->stop_pipe[1]);
    free(r);
}
