#include "host.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>

#include "build.h"
#include "crash.h"
#include "crud.h"
#include "callbacks.h"
#include "error.h"
#include "hooks.h"
#include "interface.h"
#include "loader.h"
#include "log.h"
#include "reload.h"
#include "residue.h"
#include "store.h"

static void forget_failures(ph_host *h, const char *instance);

static _Thread_local const ph_host *changing; /* the host whose change_mu this thread holds */

int ph_host_lock_changes(ph_host *h)
{
    if (changing == h)
        return ph_error_set(PH_ESTATE, "packages cannot be reloaded, unloaded or enabled from "
                                       "prepare, start or stop while the host is changing "
                                       "packages; do it from a method call");
    size_t left = atomic_load(&h->starting);
    if (left)
        return ph_error_set(PH_EBUSY,
                            "the host is still starting its packages (%zu of %zu to go); "
                            "retry when /_/health?ready answers 200",
                            left, h->plan.n);
    pthread_mutex_lock(&h->change_mu);
    changing = h;
    return 0;
}

void ph_host_unlock_changes(ph_host *h)
{
    changing = NULL;
    pthread_mutex_unlock(&h->change_mu);
}

int ph_host_open(ph_config *cfg, ph_host **out)
{
    int rc;
    *out = NULL;
    ph_host *h = calloc(1, sizeof *h);
    if (!h)
        return ph_error_set(PH_ENOMEM, "out of memory");
    h->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    pthread_mutex_init(&h->change_mu, NULL);
    pthread_rwlock_init(&h->lock, NULL);
    h->drain_ms = 10000;
    ph_instance_set_stop_timeout_ms(h->cfg.limits.stop_timeout_ms);
    ph_loader_set_load_timeout_ms(h->cfg.limits.load_timeout_ms);
    if ((rc = ph_manifest_discover(h->cfg.package_dirs, h->cfg.n_package_dirs, &h->set)))
        goto fail;
    if ((rc = ph_resolve(&h->cfg, &h->set, &h->plan)))
        goto fail;
    if ((rc = ph_router_new(&h->router)))
        goto fail;
    if (h->plan.n && !(h->insts = calloc(h->plan.n, sizeof *h->insts))) {
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto fail;
    }
    if (asprintf(&h->stage_dir, "%s/.modules", h->cfg.data_dir) < 0) {
        h->stage_dir = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto fail;
    }
    *out = h;
    ph_hooks_attach(h); /* ph_hooks() of the SDK answers from this host */
    return 0;
fail:
    ph_host_free(h);
    return rc;
}

static int mkdir_p(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return ph_error_set(PH_ENOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0700) != 0 && errno != EEXIST) {
                int rc = ph_error_set(PH_EIO,
                                      "cannot create directory %s: %s; check data_dir "
                                      "in the config",
                                      p, ph_strerror(errno));
                free(p);
                return rc;
            }
            if (!c)
                break;
            *s = c;
        }
    }
    free(p);
    return 0;
}

/* The first dependency of item i that is not running, or NULL. */
static const char *failed_dependency(ph_host *h, size_t i)
{
    const ph_plan_item *it = &h->plan.items[i];
    for (size_t k = 0; k < it->n_deps; k++) {
        ph_instance *dep = h->insts[it->deps[k]];
        if (!dep || atomic_load(&dep->state) != PH_INST_RUNNING)
            return h->plan.items[it->deps[k]].instance;
    }
    return NULL;
}

static int build_routes(ph_host *h, ph_instance *inst)
{
    ph_routes *t = NULL;
    int rc = ph_routes_new(inst, &t);
    if (!rc)
        rc = ph_routes_add_package(t, inst->cur);
    if (!rc)
        rc = ph_crud_add_routes(t, inst);
    if (rc) {
        ph_routes_free(t);
        return rc;
    }
    ph_router_publish(h->router, inst, t);
    return 0;
}

/*
 * A build that crashed the host PH_CRASH_QUARANTINE times within
 * PH_CRASH_WINDOW_S is not started again (it would only crash the host once
 * more); it stays visible as failed, and a new build clears it.
 */
static int check_quarantine(ph_host *h, ph_instance *inst)
{
    char *journal = NULL;
    if (asprintf(&journal, "%s/crashes.log", h->cfg.data_dir) < 0)
        return 0;
    int n = ph_crash_count(journal, inst->manifest->name, inst->module->hash, PH_CRASH_WINDOW_S);
    int rc = 0;
    if (n >= PH_CRASH_QUARANTINE) {
        char msg[1024];
        snprintf(msg, sizeof msg,
                 "quarantined: build %s crashed the host %d times in the last %d "
                 "minutes (see %s); fix and rebuild the package, a new build is "
                 "started",
                 inst->module->hash, n, PH_CRASH_WINDOW_S / 60, journal);
        atomic_store(&inst->state, PH_INST_FAILED);
        ph_instance_set_reason(inst, msg);
        rc = ph_error_set(PH_EPACKAGE, "instance '%s': %s", inst->name, msg);
    }
    free(journal);
    return rc;
}

/* Opens the database, publishes the routes and starts a loaded instance. */
static int activate(ph_host *h, ph_instance *inst)
{
    int rc;
    if ((rc = ph_store_attach(inst, h->cfg.data_dir)) || (rc = build_routes(h, inst)) ||
        (rc = ph_router_add_instance(h->router, inst))) {
        ph_store_detach(inst);
        /* published but never reachable: the router, which frees the routes of its
           instances, does not know this one */
        ph_routes_free(atomic_exchange(&inst->routes, NULL));
        atomic_store(&inst->state, PH_INST_FAILED);
        ph_instance_set_reason(inst, ph_error_last());
        return rc;
    }
    if ((rc = check_quarantine(h, inst)))
        return rc;
    ph_log_info("starting %s (%s %s)", inst->name, inst->manifest->name,
                inst->manifest->version_text);
    return ph_instance_start(inst);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A running version served through its probation: its kept copy is a last good build. */
static void prove(ph_host *h, ph_instance *inst, int at_stop)
{
    ph_version *v = inst->cur;
    if (!v || v->proven || !v->started || atomic_load(&inst->state) != PH_INST_RUNNING)
        return;
    if (!at_stop && now_s() - v->started < PH_PROBATION_S)
        return;
    if (ph_build_prove(h->cfg.data_dir, inst->name, v->build) == 0)
        v->proven = 1;
}

void ph_host_prove_builds(ph_host *h)
{
    if (ph_host_lock_changes(h))
        return;
    for (size_t i = 0; i < h->plan.n; i++)
        if (h->insts[i])
            prove(h, h->insts[i], 0);
    ph_host_unlock_changes(h);
}

/*
 * A started build is kept, so a later build that crashes can fall back to
 * it, and its interface is recorded, so the next build is held to semver.
 */
static void started(ph_host *h, ph_instance *inst)
{
    inst->cur->started = now_s();
    if ((inst->fresh & PH_FRESH_PACKAGE) &&
        ph_callback_mark_installed(h->cfg.data_dir, inst->manifest->name,
                                   inst->manifest->version_text))
        ph_log_warn("%s: %s; its after_install runs again at the next start", inst->name,
                    ph_error_last());
    inst->fresh = 0;
    if (ph_build_keep(h->cfg.data_dir, inst->name, inst->cur->manifest, inst->cur->build))
        ph_log_warn("%s: cannot keep a copy of build %s: %s", inst->name, inst->cur->build,
                    ph_error_last());
    /* The highest version of a major keeps its record: going back and forth drops nothing. */
    json_t *last = ph_build_last_interface(h->cfg.data_dir, inst->name);
    const char *was = json_string_value(json_object_get(last, "version"));
    ph_semver v;
    int keep = was && ph_semver_parse(was, &v) == 0 &&
               ph_semver_cmp(&inst->cur->manifest->version, &v) < 0 &&
               ph_interface_must_keep(&inst->cur->manifest->version, &v);
    ph_error_clear();
    json_decref(last);
    json_t *iface = keep ? NULL : ph_interface_json(inst->cur->module->desc);
    if (!keep && ph_build_record_interface(h->cfg.data_dir, inst->name,
                                           inst->cur->manifest->version_text, iface))
        ph_log_warn("%s: cannot record the declared interface: %s", inst->name, ph_error_last());
    json_decref(iface);
}

/*
 * A build that starts where another ran before (a restart, enable, a copy
 * made by hand) keeps that build's calling interface (actors, methods and
 * their types) within a major version, as a hot swap must: dependents call
 * it. Its models are left to the migration, which already refuses a field
 * change that no upgrade script makes (and names the script to write).
 */
static int keeps_interface(ph_host *h, const char *instance, const ph_manifest *m,
                           const ph_package *d)
{
    json_t *last = ph_build_last_interface(h->cfg.data_dir, instance), *now = NULL;
    const char *was = json_string_value(json_object_get(last, "version"));
    ph_semver v;
    char *text = NULL;
    int rc = 0;
    if (!was || ph_semver_parse(was, &v) || !ph_interface_must_keep(&v, &m->version) ||
        !(now = ph_interface_json(d))) {
        ph_error_clear();
        goto cleanup;
    }
    if (ph_interface_diff_json(json_object_get(last, "interface"), now, 0, &text) > 0)
        rc = ph_error_set(PH_EABI,
                          "instance '%s': the build of %s %s breaks the declared interface of "
                          "%s %s, which ran before, without a new major version (semver): %s; "
                          "keep these or raise the version to %llu.0.0",
                          instance, m->name, m->version_text, m->name, was, text,
                          (unsigned long long)v.major + 1);
cleanup:
    free(text);
    json_decref(now);
    json_decref(last);
    return rc;
}

/*
 * The build on disk crashed the host before it was proven: the last proven
 * build of the instance runs instead (loaded from the build store) until a
 * new build arrives. Returns the manifest to load (owned by the host), or
 * `m` when there is nothing to fall back to.
 */
static const ph_manifest *last_good(ph_host *h, const char *instance, const ph_manifest *m,
                                    char bad[PH_BUILD_ID_LEN])
{
    char so[17], *journal = NULL, *dir = NULL, *ini = NULL;
    ph_manifest *good = NULL;
    if (ph_file_hash(m->library, so) || ph_build_id(m, so, bad) ||
        ph_build_proven(h->cfg.data_dir, instance, bad) ||
        asprintf(&journal, "%s/crashes.log", h->cfg.data_dir) < 0)
        return ph_error_clear(), m;
    int crashes = ph_crash_count(journal, m->name, so, PH_CRASH_WINDOW_S);
    free(journal);
    ph_manifest **list = realloc(h->fallbacks, (h->n_fallbacks + 1) * sizeof *list);
    if (list)
        h->fallbacks = list;
    if (!crashes || !list || ph_build_last_good(h->cfg.data_dir, instance, bad, &dir) ||
        asprintf(&ini, "%s/package.ini", dir) < 0 || ph_manifest_load(ini, &good)) {
        free(dir);
        free(ini);
        return ph_error_clear(), m;
    }
    h->fallbacks[h->n_fallbacks++] = good;
    ph_log_warn("%s: build %s of %s %s crashed the host before it was proven (see "
                "<data_dir>/crashes.log); running the last good build, %s %s from %s, until a "
                "new build arrives",
                instance, bad, m->name, m->version_text, good->name, good->version_text, dir);
    free(dir);
    free(ini);
    return good;
}

/* Loads and starts plan item i. Returns 0, or an error with the reason recorded. */
/*
 * Descriptors an instance needs (its library, database, WAL, shared memory)
 * and those kept for the listener's connections, the watcher and the
 * scanner: an instance that would take the last of them is not started, so
 * the host keeps answering (health, management) with every cause named.
 */
enum { PH_FD_PER_INSTANCE = 8, PH_FD_RESERVE = 32 };

long ph_host_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

static int fd_headroom(void)
{
    struct rlimit rl;
    /* Counting costs a directory read: only when the limit is within reach. */
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 65536)
        return 0;
    long limit = (long)rl.rlim_cur, used = ph_host_open_fds();
    if (limit - used >= PH_FD_PER_INSTANCE + PH_FD_RESERVE)
        return 0;
    return ph_error_set(PH_EIO,
                        "not started: %ld of the host's %ld open files are in use and %d are "
                        "kept for connections; %s",
                        used, limit, PH_FD_RESERVE, PH_EMFILE_HINT);
}

/* No build of the instance ever started here (started() records one): after_instantiate runs. */
static int is_fresh(ph_host *h, const char *instance)
{
    json_t *last = ph_build_last_interface(h->cfg.data_dir, instance);
    ph_error_clear();
    json_decref(last);
    return last == NULL;
}

static int start_item(ph_host *h, size_t i)
{
    ph_plan_item *it = &h->plan.items[i];
    ph_module *mod = NULL;
    ph_instance *inst = NULL;
    int rc;
    char build[PH_BUILD_ID_LEN], bad[PH_BUILD_ID_LEN] = "";
    const ph_manifest *m = last_good(h, it->instance, it->manifest, bad);
    if (m != it->manifest) {
        pthread_rwlock_wrlock(&h->lock);
        it->manifest = m;
        pthread_rwlock_unlock(&h->lock);
    } else {
        bad[0] = 0;
    }
    if ((rc = fd_headroom()) || (rc = ph_module_open(it->manifest, h->stage_dir, &mod)))
        return rc;
    if ((rc = keeps_interface(h, it->instance, it->manifest, mod->desc)) ||
        (rc = ph_build_id(it->manifest, mod->hash, build))) {
        ph_module_close(mod);
        return rc;
    }
    if ((rc = ph_instance_new(it->instance, it->mount, it->manifest, mod, it->params, it->n_params,
                              &inst)))
        return rc;
    snprintf(inst->cur->build, sizeof inst->cur->build, "%s", build);
    inst->cur->manifest = it->manifest;
    snprintf(inst->bad_hash, sizeof inst->bad_hash, "%s", bad); /* not swapped back in */
    inst->bad_crashed = bad[0] != 0;
    inst->fresh =
        (is_fresh(h, it->instance) ? PH_FRESH_INSTANCE : 0) |
        (ph_callback_installed(h->cfg.data_dir, it->manifest->name) ? 0 : PH_FRESH_PACKAGE);
    pthread_rwlock_wrlock(&h->lock); /* status readers walk insts */
    h->insts[i] = inst;
    pthread_rwlock_unlock(&h->lock);
    if ((rc = activate(h, inst)) == 0)
        started(h, inst);
    if (!rc && bad[0]) { /* status and `reload` say why the build on disk does not run */
        ph_error_set(PH_EPACKAGE,
                     "build %s on disk crashed the host before it was proven (see "
                     "<data_dir>/crashes.log); the last good build, %s %s, runs until a new "
                     "build arrives",
                     bad, it->manifest->name, it->manifest->version_text);
        ph_reload_fail(inst);
        ph_error_clear();
    }
    return rc;
}

static void record_failure(ph_host *h, size_t i, ph_inst_state state, const char *reason)
{
    ph_plan_item *it = &h->plan.items[i];
    if (h->insts[i]) {
        atomic_store(&h->insts[i]->state, state);
        /* Keep the reason recorded where the failure happened (it is the precise one). */
        if (!h->insts[i]->reason)
            ph_instance_set_reason(h->insts[i], reason);
    } else {
        char *copy = strdup(reason);
        pthread_rwlock_wrlock(&h->lock);
        it->state = state == PH_INST_SKIPPED ? PH_PLAN_SKIPPED : PH_PLAN_FAILED;
        free(it->reason);
        it->reason = copy;
        pthread_rwlock_unlock(&h->lock);
    }
}

/*
 * Starts plan item i unless a dependency is not running. Returns 0
 * (running), PH_EDECLINED, PH_EDEPENDENCY (skipped) or the failure; each
 * outcome is logged and recorded for status outputs.
 */
static int bring_up(ph_host *h, size_t i)
{
    ph_plan_item *it = &h->plan.items[i];
    const char *dep = failed_dependency(h, i);
    if (dep) {
        char msg[512];
        snprintf(msg, sizeof msg, "skipped: depends on '%s', which is not running", dep);
        record_failure(h, i, PH_INST_SKIPPED, msg);
        ph_log_error("%s: %s", it->instance, msg);
        return PH_EDEPENDENCY;
    }
    int rc = start_item(h, i);
    if (rc == 0) {
        ph_log_info("%s is running", it->instance);
    } else if (rc == PH_EDECLINED) {
        ph_log_warn("%s", ph_error_last());
    } else {
        record_failure(h, i, PH_INST_FAILED, ph_error_last());
        ph_log_error("%s: %s", it->instance, ph_error_last());
    }
    return rc;
}

/* Contributions to extension points that do not fit are left out: said once per change. */
static void log_hook_problems(ph_host *h)
{
    json_t *problems = ph_hooks_problems(&h->set), *p;
    size_t k;
    json_array_foreach(problems, k, p) ph_log_warn("%s", json_string_value(p));
    json_decref(problems);
}

int ph_host_start(ph_host *h)
{
    int failures = 0, rc;
    if ((rc = mkdir_p(h->cfg.data_dir)))
        return rc;
    log_hook_problems(h);
    /* Held as a change holds it: the listener may already take requests. */
    pthread_mutex_lock(&h->change_mu);
    changing = h;
    atomic_store(&h->starting, h->plan.n + 1);
    /* A start() that hangs: a SIGTERM waits for it, a second one ends the host. */
    ph_watch *watch =
        ph_watch_start("the instances are starting", "the one starting now has started");
    for (size_t i = 0; i < h->plan.n; i++) {
        if (h->start_cancelled && h->start_cancelled()) {
            ph_log_info("start-up interrupted after %zu of %zu instance(s)", i, h->plan.n);
            break;
        }
        atomic_store(&h->starting, h->plan.n - i);
        ph_plan_item *it = &h->plan.items[i];
        if (it->state != PH_PLAN_OK) {
            ph_log_error("%s: %s", it->instance, it->reason);
            failures++;
            continue;
        }
        rc = bring_up(h, i);
        if (rc == 0 || rc == PH_EDECLINED)
            continue;
        failures++;
        if (h->cfg.strict && rc != PH_EDEPENDENCY)
            break;
    }
    atomic_store(&h->starting, 0);
    ph_watch_end(watch);
    ph_host_unlock_changes(h);
    if (failures && h->cfg.strict) {
        ph_host_stop(h);
        return ph_error_set(PH_ELOAD, "%d instance(s) could not start and strict mode is on",
                            failures);
    }
    return 0;
}

/* The instance being stopped now (for the second signal's log line), or NULL. */
static _Atomic(const char *) stopping_now;

void ph_host_stop(ph_host *h)
{
    for (size_t i = h->plan.n; i-- > 0;) {
        ph_instance *inst = h->insts[i];
        if (!inst)
            continue;
        if (atomic_load(&inst->state) == PH_INST_RUNNING) {
            atomic_store(&stopping_now, inst->name);
            prove(h, inst, 1); /* a clean stop ends the probation */
            /* Let calls in flight finish before stop runs. */
            if (ph_gate_close(&inst->gate, h->drain_ms)) {
                /* Stopping under a running call would pull its code and data away. */
                ph_log_error("%s: %s; not stopping it", inst->name, ph_error_last());
                h->stuck = 1;
                continue;
            }
            if (ph_instance_stop(inst)) {
                ph_log_error("%s: %s", inst->name, ph_error_last());
                h->stuck = 1; /* its code may still run: nothing of it is freed */
            } else {
                ph_log_info("%s stopped", inst->name);
            }
            ph_gate_open(&inst->gate); /* late callers learn it is stopped */
            atomic_store(&stopping_now, NULL);
        }
        ph_store_detach(inst);
    }
    /* An earlier stop() (a reload's, a disable's) that never returned: not a clean stop. */
    char *hung = ph_residue_stops_hung();
    if (hung) {
        ph_log_error("%s", hung);
        h->stuck = 1;
    }
    free(hung);
}

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *second_signal(void *p)
{
    const sigset_t *set = p;
    int sig = 0;
    double first = mono_seconds();
    /* One stop request can arrive twice at once (timeout(1) or a supervisor signalling both
     * the process and its group, make forwarding it): only a repeat after 200 ms is a
     * second request, an operator's "stop now". */
    while (sigwait(set, &sig) != 0 || mono_seconds() - first < 0.2)
        ;
    const char *name = atomic_load(&stopping_now);
    ph_log_error("%s received again during the shutdown: exiting now%s%s%s, exit status 1",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", name ? " without waiting for '" : "",
                 name ? name : "", name ? "' to stop" : "");
    _exit(1);
}

int ph_host_exit_on_second_signal(const sigset_t *set)
{
    static sigset_t watched;
    watched = *set;
    pthread_t t;
    if (pthread_create(&t, NULL, second_signal, &watched) != 0)
        return ph_error_set(PH_ENOMEM, "cannot start a thread for a second signal");
    pthread_detach(t);
    return 0;
}

int ph_host_stop_incomplete(const ph_host *h)
{
    return h->stuck;
}

void ph_host_free(ph_host *h)
{
    if (!h)
        return;
    if (h->stuck) {
        /* A call still runs package code: freeing would pull memory from under it. */
        ph_log_warn("calls were still running at shutdown; exiting without freeing the host");
        return;
    }
    ph_hooks_detach(h);
    ph_router_free(h->router);
    for (size_t i = 0; h->insts && i < h->plan.n; i++)
        ph_instance_free(h->insts[i]);
    free(h->insts);
    for (size_t i = 0; i < h->n_retired; i++)
        ph_instance_free(h->retired[i]);
    free(h->retired);
    for (size_t i = 0; i < h->n_disabled; i++)
        free(h->disabled[i]);
    free(h->disabled);
    pthread_mutex_destroy(&h->change_mu);
    pthread_rwlock_destroy(&h->lock);
    ph_plan_free(&h->plan);
    ph_manifest_set_free(&h->set);
    for (size_t i = 0; i < h->n_old_sets; i++)
        ph_manifest_set_free(&h->old_sets[i]);
    free(h->old_sets);
    free(h->old_gen);
    free(h->retired_gen);
    for (size_t i = 0; i < h->n_fallbacks; i++)
        ph_manifest_free(h->fallbacks[i]);
    free(h->fallbacks);
    forget_failures(h, NULL);
    free(h->failed);
    ph_config_free(&h->cfg);
    free(h->stage_dir);
    free(h->admin_token);
    free(h);
}

const char *ph_host_item_state(const ph_host *h, size_t i, const char **reason)
{
    const ph_plan_item *it = &h->plan.items[i];
    const ph_instance *inst = h->insts ? h->insts[i] : NULL;
    if (inst) {
        int st = atomic_load(&inst->state);
        if (reason)
            *reason = inst->reason;
        if (st == PH_INST_STOPPED && ph_host_is_disabled(h, inst->name))
            return "disabled";
        return ph_inst_state_name(st);
    }
    if (reason)
        *reason = it->reason;
    switch (it->state) {
    case PH_PLAN_FAILED:
        return "failed";
    case PH_PLAN_SKIPPED:
        return "skipped";
    default:
        return "planned";
    }
}

static int read_token(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT
                   ? PH_ENOTFOUND
                   : ph_error_set(PH_EIO, "cannot read %s: %s", path, ph_strerror(errno));
    /* As ssh with private keys: a secret others can read is no secret. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
        fclose(f);
        return ph_error_set(PH_ECONFIG,
                            "%s is readable or writable by group or others (mode %04o); the "
                            "admin token must be private: run chmod 600 %s",
                            path, (unsigned)(st.st_mode & 07777), path);
    }
    char buf[256];
    char *line = fgets(buf, sizeof buf, f);
    fclose(f);
    if (!line)
        return ph_error_set(PH_ECONFIG, "%s is empty; delete it to generate a new token", path);
    buf[strcspn(buf, "\r\n")] = 0;
    int rc = ph_config_check_token(path, buf);
    if (rc)
        return rc;
    *out = strdup(buf);
    return *out ? 0 : PH_ENOMEM;
}

static int write_token(const char *path, char **out)
{
    unsigned char raw[24];
    char hex[49];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, raw, sizeof raw) != (ssize_t)sizeof raw) {
        if (fd >= 0)
            close(fd);
        return ph_error_set(PH_EIO, "cannot read /dev/urandom to make the admin token");
    }
    close(fd);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return ph_error_set(PH_EIO, "cannot create %s: %s", path, ph_strerror(errno));
    int ok = write(fd, hex, 48) == 48 && write(fd, "\n", 1) == 1;
    if (close(fd) != 0 || !ok) {
        unlink(path);
        return ph_error_set(PH_EIO, "cannot write %s", path);
    }
    *out = strdup(hex);
    return *out ? 0 : PH_ENOMEM;
}

int ph_host_load_token(ph_host *h)
{
    free(h->admin_token);
    h->admin_token = NULL;
    /* The data directory exists from here on (the crash journal goes there next). */
    int rc = mkdir_p(h->cfg.data_dir);
    if (rc)
        return rc;
    if (h->cfg.auth.token)
        return (h->admin_token = strdup(h->cfg.auth.token)) ? 0 : PH_ENOMEM;
    char *path = h->cfg.auth.token_file, *owned = NULL;
    if (!path) {
        if (asprintf(&owned, "%s/admin.token", h->cfg.data_dir) < 0)
            return ph_error_set(PH_ENOMEM, "out of memory");
        path = owned;
    }
    rc = read_token(path, &h->admin_token);
    if (rc == PH_ENOTFOUND) {
        rc = write_token(path, &h->admin_token);
        if (!rc)
            ph_log_info("admin token written to %s (mode 0600)", path);
    }
    free(owned);
    return rc;
}

/* ---- what management turned off ---- */

int ph_host_is_disabled(const ph_host *h, const char *name)
{
    for (size_t i = 0; i < h->n_disabled; i++)
        if (strcmp(h->disabled[i], name) == 0)
            return 1;
    return 0;
}

static void set_disabled(ph_host *h, const char *name, int on)
{
    for (size_t i = 0; i < h->n_disabled; i++)
        if (strcmp(h->disabled[i], name) == 0) {
            if (!on) {
                free(h->disabled[i]);
                h->disabled[i] = h->disabled[--h->n_disabled];
            }
            return;
        }
    char **d = on ? realloc(h->disabled, (h->n_disabled + 1) * sizeof *d) : NULL;
    if (d && (d[h->n_disabled] = strdup(name))) {
        h->disabled = d;
        h->n_disabled++;
    } else if (d) {
        h->disabled = d;
    }
}

/* ---- builds that failed: not retried until they change (or are asked for) ---- */

typedef struct ph_failed_build {
    char *instance;
    char build[PH_BUILD_ID_LEN];
    char *reason;
} ph_failed_build;

/* Forgets the failure of `instance` (NULL: every failure). */
static void forget_failures(ph_host *h, const char *instance)
{
    for (size_t i = h->n_failed; i-- > 0;) {
        if (instance && strcmp(h->failed[i].instance, instance) != 0)
            continue;
        free(h->failed[i].instance);
        free(h->failed[i].reason);
        h->failed[i] = h->failed[--h->n_failed];
    }
}

static void remember_failure(ph_host *h, const char *instance, const char *build,
                             const char *reason)
{
    forget_failures(h, instance);
    if (!build[0])
        return;
    ph_failed_build *f = realloc(h->failed, (h->n_failed + 1) * sizeof *f);
    if (!f)
        return;
    h->failed = f;
    f = &h->failed[h->n_failed];
    f->instance = strdup(instance);
    f->reason = strdup(reason ? reason : "failed");
    snprintf(f->build, sizeof f->build, "%s", build);
    if (f->instance && f->reason)
        h->n_failed++;
    else {
        free(f->instance);
        free(f->reason);
    }
}

static const ph_failed_build *known_failure(const ph_host *h, const char *instance,
                                            const char *build)
{
    for (size_t i = 0; i < h->n_failed; i++)
        if (strcmp(h->failed[i].instance, instance) == 0 && strcmp(h->failed[i].build, build) == 0)
            return &h->failed[i];
    return NULL;
}

/* True if `force` (NULL, "*", an instance or a package name) names plan item `it`. */
static int forced(const char *force, const char *instance, const ph_manifest *m)
{
    return force && (strcmp(force, "*") == 0 || strcmp(force, instance) == 0 ||
                     (m && strcmp(force, m->name) == 0));
}

/*
 * Closes and drains the gates of instances [0, n) selected by `pick`: all
 * or none. On failure the gates closed so far are open again.
 */
typedef int (*pick_fn)(ph_host *h, size_t i, const void *ud);

static int drain_all(ph_host *h, pick_fn pick, const void *ud)
{
    for (size_t i = h->plan.n; i-- > 0;) {
        ph_instance *inst = h->insts[i];
        if (!inst || !pick(h, i, ud))
            continue;
        if (ph_gate_close(&inst->gate, h->drain_ms)) {
            ph_error_wrap("instance '%s' is still busy; nothing was changed, try again",
                          inst->name);
            for (size_t k = i + 1; k < h->plan.n; k++)
                if (h->insts[k] && pick(h, k, ud))
                    ph_gate_open(&h->insts[k]->gate);
            return PH_EBUSY;
        }
    }
    return 0;
}

/* Still reachable through the router (running, failed or declined, not yet unloaded). */
static int in_router(ph_host *h, const ph_instance *inst)
{
    return ph_router_instance(h->router, inst->name) == inst;
}

/*
 * Stops an instance whose gate is closed and drained, takes its routes away
 * and closes its database; reopens the gate (late callers get "stopped").
 */
static void take_down(ph_host *h, ph_instance *inst, const char *why)
{
    if (ph_instance_stop(inst))
        ph_log_error("%s: %s", inst->name, ph_error_last());
    ph_router_remove_instance(h->router, inst->name);
    ph_store_detach(inst);
    ph_instance_set_reason(inst, why);
    ph_gate_open(&inst->gate);
}

/* ---- disable (unload) ---- */

/* Plan item i is named by `name`: its instance name, else its package name. */
typedef struct naming {
    const char *name;
    int by_instance; /* some instance is called `name` */
} naming;

static int named(ph_host *h, size_t i, const naming *n)
{
    const ph_plan_item *it = &h->plan.items[i];
    if (n->by_instance)
        return strcmp(it->instance, n->name) == 0;
    return it->manifest && strcmp(it->manifest->name, n->name) == 0;
}

static naming make_naming(ph_host *h, const char *name)
{
    naming n = {name, ph_plan_find(&h->plan, name) >= 0};
    return n;
}

/* The first running instance outside the selection that depends on one inside it, or NULL. */
static const char *running_dependent(ph_host *h, const naming *n)
{
    for (size_t i = 0; i < h->plan.n; i++) {
        ph_instance *inst = h->insts[i];
        if (!inst || atomic_load(&inst->state) != PH_INST_RUNNING || named(h, i, n))
            continue;
        const ph_plan_item *it = &h->plan.items[i];
        for (size_t k = 0; k < it->n_deps; k++)
            if (named(h, it->deps[k], n))
                return inst->name;
    }
    return NULL;
}

static int of_selection_loaded(ph_host *h, size_t i, const void *n)
{
    return named(h, i, n) && in_router(h, h->insts[i]);
}

static int unload_locked(ph_host *h, const char *name, int *n_out)
{
    naming n = make_naming(h, name);
    *n_out = 0;
    const char *dep = running_dependent(h, &n);
    if (dep)
        return ph_error_set(PH_ECONFLICT,
                            "'%s' is used by instance '%s', which depends on it; "
                            "`plughost disable %s` first",
                            name, dep, dep);
    int found = 0;
    for (size_t i = 0; i < h->plan.n; i++) {
        if (!named(h, i, &n))
            continue;
        found = 1;
        ph_instance *inst = h->insts[i];
        if (inst && ph_frame_inside(inst))
            return ph_error_set(PH_ESTATE,
                                "instance '%s' cannot be disabled from inside one of "
                                "its own calls",
                                inst->name);
    }
    if (!found)
        return ph_error_set(PH_ENOTFOUND,
                            "no package or instance '%s' is installed; "
                            "`plughost status` lists them",
                            name);
    /* Every instance drains first, so a busy one leaves the package whole. */
    int rc = drain_all(h, of_selection_loaded, &n);
    if (rc)
        return rc;
    for (size_t i = h->plan.n; i-- > 0;) {
        if (!named(h, i, &n))
            continue;
        ph_instance *inst = h->insts[i];
        set_disabled(h, h->plan.items[i].instance, 1);
        if (!inst || !in_router(h, inst))
            continue;
        take_down(h, inst,
                  "disabled by management; its data is kept (`plughost enable` starts it)");
        ph_log_info("%s disabled (data kept)", inst->name);
        (*n_out)++;
    }
    return 0;
}

/* ---- changes: the one path from package directories to running instances ---- */

/* What a change will do, decided before anything changes. */
typedef struct change {
    ph_config cfg; /* the new configuration when own_cfg */
    int own_cfg;
    const char *force;
    ph_manifest_set set;
    ph_plan plan;
    ph_instance **insts; /* indexed like plan.items: the instances kept */
    long *keep;          /* old index -> new index, or -1 to retire */
} change;

static void change_free(change *c)
{
    if (c->own_cfg)
        ph_config_free(&c->cfg);
    ph_manifest_set_free(&c->set);
    ph_plan_free(&c->plan);
    free(c->insts);
    free(c->keep);
}

/* Keeps the running values of settings that only a restart can change. */
static void keep_restart_settings(ph_host *h, ph_config *cfg)
{
    int changed = strcmp(h->cfg.data_dir, cfg->data_dir) != 0 ||
                  h->cfg.n_package_dirs != cfg->n_package_dirs ||
                  strcmp(h->cfg.http.listen_addr, cfg->http.listen_addr) != 0 ||
                  h->cfg.http.port != cfg->http.port || h->cfg.http.threads != cfg->http.threads;
    for (size_t i = 0; !changed && i < cfg->n_package_dirs; i++)
        changed = strcmp(h->cfg.package_dirs[i], cfg->package_dirs[i]) != 0;
    if (changed)
        ph_log_warn("configuration reload: package_dirs, data_dir and [http] take effect at the "
                    "next restart; the running values stay");
#define SWAP_(field)                                                                               \
    do {                                                                                           \
        __typeof__(h->cfg.field) t_ = h->cfg.field;                                                \
        h->cfg.field = cfg->field;                                                                 \
        cfg->field = t_;                                                                           \
    } while (0)
    SWAP_(data_dir);
    SWAP_(package_dirs);
    SWAP_(n_package_dirs);
    SWAP_(http);
    SWAP_(auth);
#undef SWAP_
}

/* A running (or disabled) instance keeps its place when the same package serves the same mount. */
static int keepable(ph_host *h, ph_instance *inst, const ph_plan_item *n)
{
    int st = atomic_load(&inst->state);
    int disabled =
        ph_host_is_disabled(h, inst->name) && st == PH_INST_STOPPED && !in_router(h, inst);
    return n->state == PH_PLAN_OK && n->manifest &&
           strcmp(n->manifest->name, inst->manifest->name) == 0 &&
           strcmp(n->mount, inst->mount) == 0 && (st == PH_INST_RUNNING || disabled);
}

/* The package of the new set that `dep` (a running instance's manifest) no longer accepts. */
static int explain_breakage(const change *c, const ph_manifest *dep)
{
    for (size_t k = 0; k < dep->n_requires; k++) {
        const ph_dep *d = &dep->requires[k];
        for (size_t i = 0; i < c->set.n; i++) {
            const ph_manifest *m = c->set.items[i];
            if (strcmp(m->name, d->name) != 0 || ph_range_satisfies(&d->range, &m->version))
                continue;
            return ph_error_set(PH_EDEPENDENCY,
                                "package '%s' %s would break '%s', which requires %s %s; not "
                                "reloaded, nothing was changed. To upgrade both together, put "
                                "a version of '%s' whose range accepts %s %s in place as well, "
                                "then run `plughost reload %s`",
                                m->name, m->version_text, dep->name, d->name, d->range.text,
                                dep->name, m->name, m->version_text, m->name);
        }
    }
    return 0;
}

/*
 * Without a new configuration, a package change must not stop running
 * instances of other packages: refused as a whole, saying what to do.
 */
static int refuse_breakage(ph_host *h, change *c)
{
    for (size_t i = 0; i < h->plan.n; i++) {
        ph_instance *inst = h->insts[i];
        if (!inst || atomic_load(&inst->state) != PH_INST_RUNNING || c->keep[i] >= 0)
            continue;
        long j = ph_plan_find(&c->plan, inst->name);
        if (j < 0 || c->plan.items[j].state == PH_PLAN_OK)
            continue; /* its package is gone, or it moves: a plain stop and start */
        const ph_manifest *now =
            c->plan.items[j].manifest ? c->plan.items[j].manifest : inst->manifest;
        int rc = explain_breakage(c, now);
        if (rc)
            return rc;
        return ph_error_set(PH_EDEPENDENCY,
                            "not applied: running instance '%s' would stop: %s; nothing was "
                            "changed",
                            inst->name, c->plan.items[j].reason ? c->plan.items[j].reason : "?");
    }
    return 0;
}

static int plan_change(ph_host *h, change *c)
{
    int rc;
    const ph_config *cfg = c->own_cfg ? &c->cfg : &h->cfg;
    if ((rc = ph_manifest_discover(h->cfg.package_dirs, h->cfg.n_package_dirs, &c->set)) ||
        (rc = ph_resolve(cfg, &c->set, &c->plan)))
        return rc;
    c->insts = calloc(c->plan.n ? c->plan.n : 1, sizeof *c->insts);
    c->keep = calloc(h->plan.n ? h->plan.n : 1, sizeof *c->keep);
    /* Room reserved now, so nothing can fail once instances start changing. */
    ph_instance **retired = realloc(h->retired, (h->n_retired + h->plan.n + 1) * sizeof *retired);
    if (retired)
        h->retired = retired;
    unsigned *rgen = realloc(h->retired_gen, (h->n_retired + h->plan.n + 1) * sizeof *rgen);
    if (rgen)
        h->retired_gen = rgen;
    ph_manifest_set *sets = realloc(h->old_sets, (h->n_old_sets + 1) * sizeof *sets);
    if (sets)
        h->old_sets = sets;
    unsigned *ogen = realloc(h->old_gen, (h->n_old_sets + 1) * sizeof *ogen);
    if (ogen)
        h->old_gen = ogen;
    if (!c->insts || !c->keep || !retired || !rgen || !sets || !ogen)
        return ph_error_set(PH_ENOMEM, "out of memory");
    for (size_t i = 0; i < h->plan.n; i++) {
        ph_instance *inst = h->insts[i];
        long j = inst ? ph_plan_find(&c->plan, inst->name) : -1;
        c->keep[i] = -1;
        if (j >= 0 && keepable(h, inst, &c->plan.items[j])) {
            c->keep[i] = j;
            c->insts[j] = inst;
        }
    }
    return c->own_cfg ? 0 : refuse_breakage(h, c);
}

static int to_retire(ph_host *h, size_t i, const void *ud)
{
    const change *c = ud;
    return c->keep[i] < 0 && in_router(h, h->insts[i]);
}

/* An instance leaves the configuration or the packages: its before_delete (failure: logged). */
static void before_delete(ph_instance *inst)
{
    char *why = NULL;
    if (atomic_load(&inst->state) == PH_INST_RUNNING &&
        ph_callback_run(inst->cur, PH_CB_BEFORE_DELETE, NULL, &why) != PH_OK)
        ph_log_warn("%s: %s; the instance is deleted anyway (its data is kept)", inst->name, why);
    free(why);
}

/* Retires the drained instances (dependents first). */
static void apply_retirements(ph_host *h, change *c, ph_change_counts *n)
{
    for (size_t i = h->plan.n; i-- > 0;) {
        ph_instance *inst = h->insts[i];
        if (!inst || c->keep[i] >= 0)
            continue;
        if (in_router(h, inst)) {                       /* its gate is closed and drained */
            if (ph_plan_find(&c->plan, inst->name) < 0) /* deleted for good */
                before_delete(inst);
            n->stopped += atomic_load(&inst->state) == PH_INST_RUNNING;
            take_down(h, inst, "stopped by a change of packages or configuration");
        }
        h->retired_gen[h->n_retired] = h->generation;
        h->retired[h->n_retired++] = inst; /* late callers may still hold it */
    }
}

/*
 * Kept instances move to the new plan: a new build or new parameters are
 * hot-swapped in, in dependency order; an equal one just points at the
 * new manifest. A failed swap keeps the old build, its manifest and its
 * parameters (moved into the new plan, which owns them from now on).
 */
static void apply_kept(ph_host *h, change *c, ph_change_counts *n)
{
    for (size_t i = 0; i < h->plan.n; i++) {
        long j = c->keep[i];
        if (j < 0)
            continue;
        ph_instance *inst = h->insts[i];
        ph_plan_item *o = &h->plan.items[i], *ni = &c->plan.items[j];
        char build[PH_BUILD_ID_LEN] = "";
        int running = atomic_load(&inst->state) == PH_INST_RUNNING;
        if (running && ph_build_id(ni->manifest, NULL, build) != 0)
            build[0] = 0; /* unreadable now: keep what runs */
        int swap = running && build[0] &&
                   (strcmp(build, inst->cur->build) != 0 ||
                    !ph_instance_params_equal(inst, ni->params, ni->n_params));
        if (swap)
            prove(h, inst, 1); /* it served until now without crashing the host */
        int r = swap ? ph_reload_swap(h, inst, ni->manifest, ni->params, ni->n_params, build,
                                      forced(c->force, inst->name, ni->manifest))
                     : 1;
        if (r == 0) {
            started(h, inst);
            n->swapped++;
            continue;
        }
        if (r < 0)
            n->failed++;
        if (r < 0 || (swap && r == 1 && strcmp(build, inst->cur->build) != 0)) {
            /* Still the old build: the new plan describes what runs. */
            ni->manifest = inst->manifest;
        } else {
            ph_reload_repoint(inst, ni->manifest);
        }
        ph_kv *t = o->params; /* the instance's array moves to the new plan */
        size_t tn = o->n_params;
        o->params = ni->params;
        o->n_params = ni->n_params;
        ni->params = t;
        ni->n_params = tn;
        n->kept++;
    }
}

/* Installs the new plan; the old manifests stay alive for instances that point into them. */
static void swap_in(ph_host *h, change *c)
{
    pthread_rwlock_wrlock(&h->lock);
    h->old_gen[h->n_old_sets] = h->generation;
    h->old_sets[h->n_old_sets++] = h->set;
    h->set = c->set;
    memset(&c->set, 0, sizeof c->set);
    free(h->insts);
    h->insts = c->insts;
    c->insts = NULL;
    ph_plan_free(&h->plan);
    h->plan = c->plan;
    memset(&c->plan, 0, sizeof c->plan);
    if (c->own_cfg) {
        keep_restart_settings(h, &c->cfg);
        ph_config t = h->cfg;
        h->cfg = c->cfg;
        c->cfg = t;
    }
    __atomic_add_fetch(&h->generation, 1, __ATOMIC_RELEASE);
    pthread_rwlock_unlock(&h->lock);
    ph_log_set_level(h->cfg.log_level);
}

/* True if an instance, plan item or retired instance of the host points into `set`. */
static int set_in_use(const ph_host *h, const ph_manifest_set *set)
{
    for (size_t k = 0; k < set->n; k++) {
        const ph_manifest *m = set->items[k];
        for (size_t i = 0; i < h->plan.n; i++)
            if (h->plan.items[i].manifest == m || (h->insts[i] && h->insts[i]->manifest == m))
                return 1;
        for (size_t i = 0; i < h->n_retired; i++)
            if (h->retired[i]->manifest == m)
                return 1;
    }
    return 0;
}

/*
 * Frees what changes left behind once nothing has used it for PH_HOST_GRACE
 * changes: a reader that looked a manifest or an instance up just before a
 * change still finds it valid, and memory stays flat however many changes
 * run (a grace period, as RCU's).
 */
static void collect_garbage(ph_host *h)
{
    for (size_t i = h->n_retired; i-- > 0;) {
        if (h->generation - h->retired_gen[i] < PH_HOST_GRACE)
            continue;
        ph_instance_free(h->retired[i]);
        h->retired[i] = h->retired[h->n_retired - 1];
        h->retired_gen[i] = h->retired_gen[h->n_retired - 1];
        h->n_retired--;
    }
    for (size_t i = h->n_old_sets; i-- > 0;) {
        if (set_in_use(h, &h->old_sets[i])) {
            h->old_gen[i] = h->generation;
            continue;
        }
        if (h->generation - h->old_gen[i] < PH_HOST_GRACE)
            continue;
        ph_manifest_set_free(&h->old_sets[i]);
        h->old_sets[i] = h->old_sets[h->n_old_sets - 1];
        h->old_gen[i] = h->old_gen[h->n_old_sets - 1];
        h->n_old_sets--;
    }
}

/*
 * A disabled instance whose package was removed is forgotten: installing
 * the package again starts it like any new package.
 */
static void forget_removed(ph_host *h)
{
    for (size_t i = h->n_disabled; i-- > 0;) {
        long j = ph_plan_find(&h->plan, h->disabled[i]);
        if (j >= 0 && h->plan.items[j].manifest)
            continue;
        free(h->disabled[i]);
        h->disabled[i] = h->disabled[--h->n_disabled];
    }
}

/* Starts what the new plan has that is not running yet, in dependency order. */
static void start_new(ph_host *h, const char *force, ph_change_counts *n)
{
    for (size_t i = 0; i < h->plan.n; i++) {
        ph_plan_item *it = &h->plan.items[i];
        if (h->insts[i] || it->state != PH_PLAN_OK || ph_host_is_disabled(h, it->instance))
            continue;
        char build[PH_BUILD_ID_LEN] = "";
        if (ph_build_id(it->manifest, NULL, build) != 0)
            build[0] = 0;
        const ph_failed_build *f = build[0] ? known_failure(h, it->instance, build) : NULL;
        if (f && !forced(force, it->instance, it->manifest)) {
            char *why = strdup(f->reason);
            record_failure(h, i, PH_INST_FAILED, why ? why : "failed");
            free(why);
            n->failed++;
            continue;
        }
        int rc = bring_up(h, i);
        if (rc == 0) {
            forget_failures(h, it->instance);
            n->started++;
        } else if (rc != PH_EDEPENDENCY) {
            const char *why = h->insts[i] ? atomic_load(&h->insts[i]->reason) : it->reason;
            remember_failure(h, it->instance, build, why ? why : ph_error_last());
            n->failed++;
        }
    }
}

/* The name a force asks for exists in the plan (as an instance or a package). */
static int force_known(const ph_host *h, const char *force)
{
    if (!force || strcmp(force, "*") == 0)
        return 1;
    for (size_t i = 0; i < h->plan.n; i++)
        if (forced(force, h->plan.items[i].instance, h->plan.items[i].manifest))
            return 1;
    return 0;
}

int ph_host_reconcile(ph_host *h, ph_config *cfg, const char *force, ph_change_counts *counts)
{
    change c;
    ph_change_counts n = {0};
    memset(&c, 0, sizeof c);
    if (cfg) {
        c.cfg = *cfg;
        c.own_cfg = 1;
        memset(cfg, 0, sizeof *cfg);
    }
    c.force = force;
    if (ph_host_lock_changes(h)) {
        change_free(&c);
        return PH_ESTATE;
    }
    int rc = plan_change(h, &c);
    if (rc == PH_EDEPENDENCY) /* refused: the instances asked for say why */
        for (size_t i = 0; i < h->plan.n; i++)
            if (h->insts[i] && force && strcmp(force, "*") != 0 &&
                forced(force, h->plan.items[i].instance, h->plan.items[i].manifest))
                ph_reload_fail(h->insts[i]);
    if (!rc)
        rc = drain_all(h, to_retire, &c);
    if (!rc) {
        apply_retirements(h, &c, &n);
        apply_kept(h, &c, &n);
        swap_in(h, &c);
        log_hook_problems(h);
        forget_removed(h);
        start_new(h, force, &n);
        collect_garbage(h);
        const ph_instance_conf *off = force ? ph_config_instance(&h->cfg, force) : NULL;
        if (!force_known(h, force) && off && !off->enabled)
            rc = ph_error_set(PH_ESTATE,
                              "instance '%s' is switched off in %s:%d (enabled = false); set "
                              "enabled = true there and send SIGHUP (or restart the host)",
                              force, h->cfg.path ? h->cfg.path : "host.ini", off->line);
        else if (!force_known(h, force))
            rc = ph_error_set(PH_ENOTFOUND,
                              "no package or instance '%s' is installed; `plughost status` "
                              "lists them, `plughost install DIR` adds one",
                              force);
    }
    ph_host_unlock_changes(h);
    change_free(&c);
    if (counts)
        *counts = n;
    if (!rc && (n.swapped || n.started || n.stopped || n.failed))
        ph_log_info("packages changed: %d kept, %d swapped, %d started, %d stopped, %d failed",
                    n.kept, n.swapped, n.started, n.stopped, n.failed);
    return rc;
}

int ph_host_reconfigure(ph_host *h, ph_config *cfg)
{
    ph_change_counts n = {0};
    int rc = ph_host_reconcile(h, cfg, "*", &n);
    if (!rc)
        ph_log_info("configuration reloaded: %d kept, %d swapped, %d started, %d stopped, %d "
                    "failed",
                    n.kept, n.swapped, n.started, n.stopped, n.failed);
    return rc;
}

int ph_host_unload(ph_host *h, const char *name, int *n_out)
{
    *n_out = 0;
    int rc = ph_host_lock_changes(h);
    if (rc)
        return rc;
    rc = unload_locked(h, name, n_out);
    ph_host_unlock_changes(h);
    return rc;
}

/* The first instance named by `n` that is not running after an enable, with why. */
static int enable_outcome(ph_host *h, const char *name, int *n_out)
{
    naming n = make_naming(h, name);
    int rc = 0;
    pthread_rwlock_rdlock(&h->lock);
    for (size_t i = 0; i < h->plan.n; i++) {
        if (!named(h, i, &n))
            continue;
        const char *why = NULL;
        const char *state = ph_host_item_state(h, i, &why);
        if (strcmp(state, "running") == 0) {
            (*n_out)++;
        } else if (!rc) {
            rc = ph_error_set(strcmp(state, "skipped") == 0 ? PH_EDEPENDENCY : PH_ESTATE,
                              "instance '%s' is %s%s%s", h->plan.items[i].instance, state,
                              why ? ": " : "", why ? why : "");
        }
    }
    pthread_rwlock_unlock(&h->lock);
    return rc;
}

int ph_host_enable(ph_host *h, const char *name, int *n_out)
{
    *n_out = 0;
    int rc = ph_host_lock_changes(h);
    if (rc)
        return rc;
    naming n = make_naming(h, name);
    for (size_t i = 0; i < h->plan.n; i++)
        if (named(h, i, &n))
            set_disabled(h, h->plan.items[i].instance, 0);
    ph_host_unlock_changes(h);
    if ((rc = ph_host_reconcile(h, NULL, name, NULL)))
        return rc;
    return enable_outcome(h, name, n_out);
}
