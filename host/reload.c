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
#include "error.h"
#include "log.h"
#include "store.h"

static pthread_mutex_t reload_mu = PTHREAD_MUTEX_INITIALIZER;
static int drain_ms = 10000;

void ph_reload_set_drain_ms(int ms) { drain_ms = ms; }

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
            return ph_error_set(PH_EDEPENDENCY, "package '%s' %s requires '%s' (%s), which is not "
                                                "loaded; not reloaded",
                                nm->name, nm->version_text, d->name, d->range.text);
        if (!ph_range_satisfies(&d->range, &found->version))
            return ph_error_set(PH_EDEPENDENCY, "package '%s' %s requires %s %s but %s %s is "
                                                "running; not reloaded",
                                nm->name, nm->version_text, d->name, d->range.text, d->name,
                                found->version_text);
    }
    return 0;
}

static int keep_manifest(ph_host *h, ph_manifest *m)
{
    ph_manifest **p = realloc(h->reloaded, (h->n_reloaded + 1) * sizeof *p);
    if (!p)
        return ph_error_set(PH_ENOMEM, "out of memory");
    h->reloaded = p;
    h->reloaded[h->n_reloaded++] = m;
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
    inst->cur = v;
    inst->module = v->module;
    inst->manifest = m;
    inst->store = store;
    ph_routes *t = NULL;
    int rc = build_routes(inst, v, &t);
    if (!rc)
        ph_router_publish(inst->router, inst, t);
    return rc;
}

static void fail_reload(ph_instance *inst, ph_module *mod_or_null, const char *hash)
{
    inst->reload_failures++;
    free(inst->reload_error);
    inst->reload_error = strdup(ph_error_last());
    if (hash)
        snprintf(inst->bad_hash, sizeof inst->bad_hash, "%s", hash);
    (void)mod_or_null;
    ph_logf(PH_L_ERROR, inst->name, "reload failed, the old version keeps serving: %s",
            inst->reload_error);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/*
 * Swaps one instance to the build described by `nm`. Returns 0 (swapped),
 * 1 (nothing to do: same build, or a build already known bad) or an error.
 */
static int swap_instance(ph_host *h, ph_instance *inst, const ph_manifest *nm)
{
    ph_module *mod = NULL;
    ph_version *nv = NULL, *old = inst->cur;
    ph_store *nstore = NULL, *ostore = inst->store;
    const ph_manifest *om = inst->manifest;
    saved_state st = {0};
    char *reason = NULL;
    char hash[17];
    int rc;

    if ((rc = ph_file_hash(nm->library, hash))) {
        fail_reload(inst, NULL, NULL);
        return rc;
    }
    if (strcmp(hash, old->module->hash) == 0 || strcmp(hash, inst->bad_hash) == 0)
        return 1;
    if ((rc = ph_module_open(nm, h->stage_dir, &mod))) {
        fail_reload(inst, NULL, hash);
        return rc;
    }
    if ((rc = ph_version_new(inst, mod, &nv))) {
        fail_reload(inst, NULL, NULL);
        return rc;
    }
    /* Prepared beside the old version, which keeps serving. */
    int s = ph_version_step(nv, nv->module->desc->prepare, "prepare", &reason);
    if (s != PH_OK) {
        rc = ph_error_set(PH_EPACKAGE, "new build of '%s' (%s): %s", inst->name, hash,
                          reason ? reason : "prepare declined");
        goto discard;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((rc = ph_gate_close(&inst->gate, drain_ms))) {
        ph_error_wrap("instance '%s': the drain timed out, reload abandoned", inst->name);
        snprintf(hash, sizeof hash, "%s", ""); /* not the build's fault: retry allowed */
        goto discard;
    }
    /* Gate closed and empty: nothing of the old version runs now. */
    if ((rc = ph_store_open_for(h->cfg.data_dir, inst->name, nm, nv->module->desc, &nstore))) {
        ph_gate_open(&inst->gate);
        goto discard;
    }
    ph_instance_stop(inst);
    save_state(old, &st);
    if ((rc = install(inst, nv, nm, nstore)) == 0) {
        restore_state(nv, &st);
        s = ph_version_step(nv, nv->module->desc->start, "start", &reason);
        if (s != PH_OK)
            rc = ph_error_set(PH_EPACKAGE, "new build of '%s' (%s): %s", inst->name, hash,
                              reason ? reason : "start declined");
    }
    if (rc) {
        /* Roll back: the old version serves again with its state and store. */
        char *msg = strdup(ph_error_last());
        if (install(inst, old, om, ostore) ||
            ph_version_step(old, old->module->desc->start, "start", &reason) != PH_OK) {
            atomic_store(&inst->state, PH_INST_FAILED);
            ph_logf(PH_L_ERROR, inst->name, "rollback failed too; the instance is down");
        } else {
            atomic_store(&inst->state, PH_INST_RUNNING);
        }
        ph_gate_open(&inst->gate);
        ph_error_set(PH_EPACKAGE, "%s", msg ? msg : "reload failed");
        free(msg);
        ph_store_close(nstore);
        goto discard;
    }
    atomic_store(&inst->state, PH_INST_RUNNING);
    ph_gate_open(&inst->gate);
    double held = ms_since(&t0);
    free(st.data);
    ph_store_close(ostore);
    ph_version_free(old);
    inst->reloads++;
    free(inst->reload_error);
    inst->reload_error = NULL;
    ph_logf(PH_L_INFO, inst->name, "reloaded %s %s -> %s %s (build %s, gate closed %.2f ms)",
            om->name, om->version_text, nm->name, nm->version_text, hash, held);
    free(reason);
    return 0;
discard:
    free(st.data);
    fail_reload(inst, NULL, hash[0] ? hash : NULL);
    ph_version_free(nv);
    free(reason);
    return rc;
}

int ph_reload_package(ph_host *h, const char *pkg, int *swapped)
{
    ph_manifest *nm = NULL;
    const ph_manifest *cur = NULL;
    int rc = 0, first = 0;
    *swapped = 0;
    pthread_mutex_lock(&reload_mu);
    for (size_t i = 0; i < h->plan.n && !cur; i++)
        if (h->insts[i] && strcmp(h->plan.items[i].manifest->name, pkg) == 0)
            cur = h->plan.items[i].manifest;
    if (!cur) {
        rc = ph_error_set(PH_ENOTFOUND, "no loaded instance of package '%s'; `plughost list` "
                                        "shows what is loaded", pkg);
        goto done;
    }
    if ((rc = ph_manifest_load(cur->path, &nm)))
        goto report;
    if (strcmp(nm->name, cur->name) != 0) {
        rc = ph_error_set(PH_EMANIFEST, "%s now names package '%s', not '%s'; a package cannot "
                                        "be renamed by a reload", cur->path, nm->name, cur->name);
        goto report;
    }
    if ((rc = check_dependents(h, nm)) || (rc = check_requirements(h, nm)))
        goto report;
    if ((rc = keep_manifest(h, nm)))
        goto report;
    ph_manifest *kept = nm;
    nm = NULL;
    for (size_t i = 0; i < h->plan.n; i++) {
        ph_instance *inst = h->insts[i];
        if (!inst || strcmp(h->plan.items[i].manifest->name, pkg) != 0 ||
            atomic_load(&inst->state) != PH_INST_RUNNING)
            continue;
        int r = swap_instance(h, inst, kept);
        if (r == 0) {
            (*swapped)++;
            h->plan.items[i].manifest = kept;
        } else if (r < 0 && !first) {
            first = r;
        }
    }
    rc = first;
    goto done;
report:
    /* The build could not even be considered: every instance reports why. */
    for (size_t i = 0; i < h->plan.n; i++)
        if (h->insts[i] && strcmp(h->plan.items[i].manifest->name, pkg) == 0)
            fail_reload(h->insts[i], NULL, NULL);
done:
    ph_manifest_free(nm);
    pthread_mutex_unlock(&reload_mu);
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
    struct stat last_stat;
    int have_stat;
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
};

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
    return a->st_size == b->st_size && a->st_ino == b->st_ino &&
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
        return;
    }
    if (!w->have_stat || !same_stat(&st, &w->last_stat)) {
        w->last_stat = st;
        w->have_stat = 1;
        clock_gettime(CLOCK_MONOTONIC, &w->last_event);
        w->last_event.tv_nsec -= (long)(r->opts.settle_ms - 100) * 1000000L; /* next look in 100 ms */
        return;
    }
    w->dirty = 0;
    int swapped = 0;
    if (ph_reload_package(r->host, w->pkg, &swapped) == 0 && swapped)
        ph_log_info("%s: new build is serving", w->pkg);
}

static void *watch_loop(void *arg)
{
    ph_reloader *r = arg;
    struct pollfd fds[2] = {{.fd = r->fd, .events = POLLIN}, {.fd = r->stop_pipe[0], .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, 50) < 0 && errno != EINTR)
            break;
        if (fds[1].revents)
            break;
        if (fds[0].revents & POLLIN)
            read_events(r);
        for (size_t i = 0; i < r->n; i++)
            check_settled(r, &r->w[i]);
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
    r->opts.drain_ms = opts && opts->drain_ms > 0 ? opts->drain_ms : 10000;
    r->stop_pipe[0] = r->stop_pipe[1] = -1;
    r->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    int rc = 0;
    if (r->fd < 0 || pipe2(r->stop_pipe, O_CLOEXEC) != 0) {
        rc = ph_error_set(PH_EIO, "cannot start the file watcher: %s", strerror(errno));
        goto fail;
    }
    ph_reload_set_drain_ms(r->opts.drain_ms);
    for (size_t i = 0; i < h->plan.n; i++)
        if (h->insts[i] && (rc = add_watch(r, h->plan.items[i].manifest)))
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
