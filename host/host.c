#include "host.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crash.h"
#include "crud.h"
#include "error.h"
#include "log.h"
#include "store.h"

static _Thread_local const ph_host *changing; /* the host whose change_mu this thread holds */

int ph_host_lock_changes(ph_host *h)
{
    if (changing == h)
        return ph_error_set(PH_ESTATE, "packages cannot be reloaded, unloaded or enabled from "
                                       "prepare, start or stop while the host is changing "
                                       "packages; do it from a method call");
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
                                      p, strerror(errno));
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

/* Loads and starts plan item i. Returns 0, or an error with the reason recorded. */
static int start_item(ph_host *h, size_t i)
{
    ph_plan_item *it = &h->plan.items[i];
    ph_module *mod = NULL;
    ph_instance *inst = NULL;
    int rc;
    if ((rc = ph_module_open(it->manifest, h->stage_dir, &mod)))
        return rc;
    if ((rc = ph_instance_new(it->instance, it->mount, it->manifest, mod, it->params, it->n_params,
                              &inst)))
        return rc;
    pthread_rwlock_wrlock(&h->lock); /* status readers walk insts */
    h->insts[i] = inst;
    pthread_rwlock_unlock(&h->lock);
    return activate(h, inst);
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

int ph_host_start(ph_host *h)
{
    int failures = 0, rc;
    if ((rc = mkdir_p(h->cfg.data_dir)))
        return rc;
    for (size_t i = 0; i < h->plan.n; i++) {
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
    if (failures && h->cfg.strict) {
        ph_host_stop(h);
        return ph_error_set(PH_ELOAD, "%d instance(s) could not start and strict mode is on",
                            failures);
    }
    return 0;
}

void ph_host_stop(ph_host *h)
{
    for (size_t i = h->plan.n; i-- > 0;) {
        ph_instance *inst = h->insts[i];
        if (!inst)
            continue;
        if (atomic_load(&inst->state) == PH_INST_RUNNING) {
            /* Let calls in flight finish before stop runs. */
            if (ph_gate_close(&inst->gate, h->drain_ms)) {
                /* Stopping under a running call would pull its code and data away. */
                ph_log_error("%s: %s; not stopping it", inst->name, ph_error_last());
                h->stuck = 1;
                continue;
            }
            ph_instance_stop(inst);
            ph_gate_open(&inst->gate); /* late callers learn it is stopped */
            ph_log_info("%s stopped", inst->name);
        }
        ph_store_detach(inst);
    }
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
    for (size_t i = 0; i < h->n_reloaded; i++)
        ph_manifest_free(h->reloaded[i]);
    free(h->reloaded);
    for (size_t i = 0; i < h->n_old_sets; i++)
        ph_manifest_set_free(&h->old_sets[i]);
    free(h->old_sets);
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
        if (reason)
            *reason = inst->reason;
        return ph_inst_state_name(atomic_load(&inst->state));
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
        return errno == ENOENT ? PH_ENOTFOUND
                               : ph_error_set(PH_EIO, "cannot read %s: %s", path, strerror(errno));
    char buf[256];
    char *line = fgets(buf, sizeof buf, f);
    fclose(f);
    if (!line)
        return ph_error_set(PH_ECONFIG, "%s is empty; delete it to generate a new token", path);
    buf[strcspn(buf, "\r\n")] = 0;
    if (strlen(buf) < 16)
        return ph_error_set(PH_ECONFIG,
                            "%s holds a token shorter than 16 characters; delete it "
                            "to generate a new one",
                            path);
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
        return ph_error_set(PH_EIO, "cannot create %s: %s", path, strerror(errno));
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
    if (h->cfg.auth.token)
        return (h->admin_token = strdup(h->cfg.auth.token)) ? 0 : PH_ENOMEM;
    char *path = h->cfg.auth.token_file, *owned = NULL;
    if (!path) {
        if (asprintf(&owned, "%s/admin.token", h->cfg.data_dir) < 0)
            return ph_error_set(PH_ENOMEM, "out of memory");
        path = owned;
    }
    int rc = mkdir_p(h->cfg.data_dir);
    if (!rc) {
        rc = read_token(path, &h->admin_token);
        if (rc == PH_ENOTFOUND) {
            rc = write_token(path, &h->admin_token);
            if (!rc)
                ph_log_info("admin token written to %s (mode 0600)", path);
        }
    }
    free(owned);
    return rc;
}

/* Packages turned off by management stay off across configuration reloads. */
static int is_disabled(const ph_host *h, const char *pkg)
{
    for (size_t i = 0; i < h->n_disabled; i++)
        if (strcmp(h->disabled[i], pkg) == 0)
            return 1;
    return 0;
}

static void set_disabled(ph_host *h, const char *pkg, int on)
{
    for (size_t i = 0; i < h->n_disabled; i++)
        if (strcmp(h->disabled[i], pkg) == 0) {
            if (!on) {
                free(h->disabled[i]);
                h->disabled[i] = h->disabled[--h->n_disabled];
            }
            return;
        }
    char **d = on ? realloc(h->disabled, (h->n_disabled + 1) * sizeof *d) : NULL;
    if (d && (d[h->n_disabled] = strdup(pkg))) {
        h->disabled = d;
        h->n_disabled++;
    } else if (d) {
        h->disabled = d;
    }
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
    ph_instance_stop(inst);
    ph_router_remove_instance(h->router, inst->name);
    ph_store_detach(inst);
    ph_instance_set_reason(inst, why);
    ph_gate_open(&inst->gate);
}

/* The first running instance of another package that depends on `pkg`, or NULL. */
static const char *running_dependent(ph_host *h, const char *pkg)
{
    for (size_t i = 0; i < h->plan.n; i++) {
        ph_instance *inst = h->insts[i];
        if (!inst || atomic_load(&inst->state) != PH_INST_RUNNING ||
            strcmp(inst->manifest->name, pkg) == 0)
            continue;
        if (ph_manifest_depends_on(inst->manifest, pkg))
            return inst->name;
    }
    return NULL;
}

static int of_package_loaded(ph_host *h, size_t i, const void *pkg)
{
    return strcmp(h->plan.items[i].manifest->name, pkg) == 0 && in_router(h, h->insts[i]);
}

static int unload_locked(ph_host *h, const char *pkg, int *n_out)
{
    *n_out = 0;
    const char *dep = running_dependent(h, pkg);
    if (dep)
        return ph_error_set(PH_ECONFLICT,
                            "package '%s' is used by instance '%s', which depends "
                            "on it; remove or stop '%s' first",
                            pkg, dep, dep);
    int found = 0;
    for (size_t i = 0; i < h->plan.n; i++) {
        ph_instance *inst = h->insts[i];
        if (!inst || strcmp(h->plan.items[i].manifest->name, pkg) != 0)
            continue;
        found = 1;
        if (ph_frame_inside(inst))
            return ph_error_set(PH_ESTATE,
                                "instance '%s' cannot be unloaded from inside one of "
                                "its own calls",
                                inst->name);
    }
    if (!found)
        return ph_error_set(PH_ENOTFOUND,
                            "no instance of package '%s' is loaded; "
                            "`plughost status` lists them",
                            pkg);
    /* Every instance drains first, so a busy one leaves the package whole. */
    int rc = drain_all(h, of_package_loaded, pkg);
    if (rc)
        return rc;
    for (size_t i = h->plan.n; i-- > 0;) {
        ph_instance *inst = h->insts[i];
        if (!inst || !of_package_loaded(h, i, pkg))
            continue;
        take_down(h, inst, "disabled (unloaded by management); its data is kept");
        ph_log_info("%s unloaded (package %s; its data is kept)", inst->name, pkg);
        (*n_out)++;
    }
    set_disabled(h, pkg, 1);
    return 0;
}

/* ---- configuration reload ---- */

/* Same package build, mount and parameters: the instance can keep running. */
static int same_item(const ph_plan_item *a, const ph_plan_item *b)
{
    if (!a->manifest || !b->manifest || strcmp(a->manifest->name, b->manifest->name) != 0 ||
        strcmp(a->manifest->version_text, b->manifest->version_text) != 0 ||
        strcmp(a->manifest->path, b->manifest->path) != 0 || a->n_params != b->n_params ||
        strcmp(a->mount, b->mount) != 0)
        return 0;
    for (size_t i = 0; i < a->n_params; i++)
        if (strcmp(a->params[i].key, b->params[i].key) != 0 ||
            strcmp(a->params[i].value, b->params[i].value) != 0)
            return 0;
    return 1;
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

/* What a configuration reload will do, decided before anything changes. */
typedef struct change {
    ph_config cfg;
    ph_manifest_set set;
    ph_plan plan;
    ph_instance **insts; /* indexed like plan.items: the instances kept */
    long *keep;          /* old index -> new index, or -1 to retire */
} change;

static void change_free(change *c)
{
    ph_config_free(&c->cfg);
    ph_manifest_set_free(&c->set);
    ph_plan_free(&c->plan);
    free(c->insts);
    free(c->keep);
}

static int plan_change(ph_host *h, change *c)
{
    int rc;
    /* Packages are read again: a new one may have been installed, a reloaded one changed. */
    if ((rc = ph_manifest_discover(h->cfg.package_dirs, h->cfg.n_package_dirs, &c->set)) ||
        (rc = ph_resolve(&c->cfg, &c->set, &c->plan)))
        return rc;
    c->insts = calloc(c->plan.n ? c->plan.n : 1, sizeof *c->insts);
    c->keep = calloc(h->plan.n ? h->plan.n : 1, sizeof *c->keep);
    /* Room reserved now, so nothing can fail once instances start changing. */
    ph_instance **retired = realloc(h->retired, (h->n_retired + h->plan.n + 1) * sizeof *retired);
    if (retired)
        h->retired = retired;
    ph_manifest_set *sets = realloc(h->old_sets, (h->n_old_sets + 1) * sizeof *sets);
    if (sets)
        h->old_sets = sets;
    if (!c->insts || !c->keep || !retired || !sets)
        return ph_error_set(PH_ENOMEM, "out of memory");
    for (size_t i = 0; i < h->plan.n; i++) {
        ph_instance *inst = h->insts[i];
        long j = inst ? ph_plan_find(&c->plan, inst->name) : -1;
        c->keep[i] = -1;
        int st = atomic_load(&inst->state);
        int disabled = st == PH_INST_STOPPED && is_disabled(h, inst->manifest->name);
        if (j >= 0 && c->plan.items[j].state == PH_PLAN_OK && (st == PH_INST_RUNNING || disabled) &&
            same_item(&h->plan.items[i], &c->plan.items[j])) {
            c->keep[i] = j;
            c->insts[j] = inst;
        }
    }
    return 0;
}

static int to_retire(ph_host *h, size_t i, const void *ud)
{
    const change *c = ud;
    return c->keep[i] < 0 && in_router(h, h->insts[i]);
}

/* Retires the drained instances (dependents first); kept ones keep valid parameters. */
static void apply_retirements(ph_host *h, change *c, int *stopped)
{
    for (size_t i = h->plan.n; i-- > 0;) {
        ph_instance *inst = h->insts[i];
        if (!inst)
            continue;
        long j = c->keep[i];
        if (j >= 0) {
            /* Equal values: the kept instance's array moves to the new plan, unchanged. */
            ph_plan_item *o = &h->plan.items[i], *n = &c->plan.items[j];
            ph_kv *t = o->params;
            o->params = n->params;
            n->params = t;
            continue;
        }
        if (in_router(h, inst)) { /* its gate is closed and drained */
            *stopped += atomic_load(&inst->state) == PH_INST_RUNNING;
            take_down(h, inst, "unloaded by a configuration reload");
        }
        h->retired[h->n_retired++] = inst; /* late callers may still hold it */
    }
}

/* Installs the new plan; the old manifests stay alive for instances that point into them. */
static void swap_in(ph_host *h, change *c)
{
    pthread_rwlock_wrlock(&h->lock);
    h->old_sets[h->n_old_sets++] = h->set;
    h->set = c->set;
    memset(&c->set, 0, sizeof c->set);
    free(h->insts);
    h->insts = c->insts;
    c->insts = NULL;
    ph_plan_free(&h->plan);
    h->plan = c->plan;
    memset(&c->plan, 0, sizeof c->plan);
    keep_restart_settings(h, &c->cfg);
    ph_config t = h->cfg;
    h->cfg = c->cfg;
    c->cfg = t;
    pthread_rwlock_unlock(&h->lock);
    ph_log_set_level(h->cfg.log_level);
}

/* Starts what the new plan has that is not running yet, in dependency order. */
static int start_new(ph_host *h)
{
    int started = 0;
    for (size_t i = 0; i < h->plan.n; i++) {
        ph_plan_item *it = &h->plan.items[i];
        if (h->insts[i] || it->state != PH_PLAN_OK || is_disabled(h, it->manifest->name))
            continue;
        started += bring_up(h, i) == 0;
    }
    return started;
}

int ph_host_reconfigure(ph_host *h, ph_config *cfg)
{
    change c;
    memset(&c, 0, sizeof c);
    c.cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    int stopped = 0, kept = 0, started = 0;
    if (ph_host_lock_changes(h)) {
        change_free(&c);
        return PH_ESTATE;
    }
    int rc = plan_change(h, &c);
    if (!rc)
        rc = drain_all(h, to_retire, &c);
    if (!rc) {
        apply_retirements(h, &c, &stopped);
        swap_in(h, &c);
    }
    if (!rc) {
        for (size_t i = 0; i < h->plan.n; i++)
            kept += h->insts[i] != NULL;
        started = start_new(h);
    }
    ph_host_unlock_changes(h);
    change_free(&c);
    if (rc)
        return rc;
    ph_log_info("configuration reloaded: %d instance(s) kept, %d stopped, %d started", kept,
                stopped, started);
    return 0;
}

int ph_host_unload(ph_host *h, const char *pkg, int *n_out)
{
    *n_out = 0;
    int rc = ph_host_lock_changes(h);
    if (rc)
        return rc;
    rc = unload_locked(h, pkg, n_out);
    ph_host_unlock_changes(h);
    return rc;
}

int ph_host_enable(ph_host *h, const char *pkg, int *n_out)
{
    *n_out = 0;
    int found = 0, running = 0, rc = ph_host_lock_changes(h);
    const ph_instance *not_running = NULL;
    if (rc)
        return rc;
    for (size_t i = 0; i < h->plan.n; i++) {
        ph_instance *inst = h->insts[i];
        if (!inst || strcmp(h->plan.items[i].manifest->name, pkg) != 0)
            continue;
        found = 1;
        int st = atomic_load(&inst->state);
        if (st == PH_INST_RUNNING) {
            running++;
            continue;
        }
        if (st != PH_INST_STOPPED || in_router(h, inst)) {
            not_running = inst; /* failed or declined: a new build brings it back */
            continue;
        }
        const char *dep = failed_dependency(h, i);
        if (dep) {
            rc = ph_error_set(PH_EDEPENDENCY,
                              "instance '%s' needs '%s', which is not running; "
                              "enable it first",
                              inst->name, dep);
            break;
        }
        if ((rc = activate(h, inst))) {
            ph_log_error("%s: %s", inst->name, ph_error_last());
            break;
        }
        ph_log_info("%s is running again", inst->name);
        (*n_out)++;
    }
    if (!rc && found)
        set_disabled(h, pkg, 0);
    ph_host_unlock_changes(h);
    if (!found)
        return ph_error_set(PH_ENOTFOUND,
                            "no instance of package '%s' is loaded; "
                            "`plughost status` lists them",
                            pkg);
    if (!rc && !*n_out && !running && not_running) {
        const char *why = atomic_load(&not_running->reason); /* valid while it lives */
        return ph_error_set(PH_ESTATE,
                            "instance '%s' is not running%s%s; fix the package and "
                            "rebuild it (a new build is loaded by itself)",
                            not_running->name, why ? ": " : "", why ? why : "");
    }
    return rc;
}
