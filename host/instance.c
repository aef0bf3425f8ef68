#include "instance.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "callbacks.h"
#include "crash.h"
#include "error.h"
#include "log.h"
#include "residue.h"

static _Thread_local ph_frame *frame_top;

void ph_frame_push(ph_frame *f, ph_instance *inst)
{
    ph_crash_thread_ready();
    f->inst = inst;
    f->failed = 0;
    f->what = NULL;
    f->ver = NULL;
    f->escape = NULL;
    f->prev = frame_top;
    frame_top = f;
}

void ph_frame_pop(ph_frame *f)
{
    frame_top = f->prev;
}
_Noreturn void ph_frame_escape(ph_frame *f, const char *call)
{
    const ph_version *ver = f->ver ? f->ver : f->inst->cur;
    const ph_manifest *m = ver && ver->manifest ? ver->manifest : f->inst->manifest;
    ph_error_set(PH_EPACKAGE,
                 "package '%s' build %s: %s.%s called %s; the call was ended (a method must "
                 "return; pthread_exit() is for threads the package started)",
                 m ? m->name : "?", ver && ver->module ? ver->module->hash : "?", f->inst->name,
                 f->what ? f->what : "?", call);
    f->failed = 1;
    sigjmp_buf *back = f->escape;
    f->escape = NULL;
    siglongjmp(*back, 1);
}

ph_frame *ph_frame_current(void)
{
    return frame_top;
}

int ph_frame_inside(const ph_instance *inst)
{
    for (ph_frame *f = frame_top; f; f = f->prev)
        if (f->inst == inst)
            return 1;
    return 0;
}

const char *ph_inst_state_name(ph_inst_state s)
{
    static const char *const names[] = {"loaded", "prepared", "running", "stopped",
                                        "failed", "skipped",  "declined"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

static int build_callable(ph_instance *inst)
{
    const ph_manifest *m = inst->manifest;
    size_t n = 1 + m->n_requires + m->n_optional;
    inst->callable = calloc(n, sizeof *inst->callable);
    if (!inst->callable)
        return PH_ENOMEM;
    inst->callable[inst->n_callable++] = m->name;
    for (size_t i = 0; i < m->n_requires; i++)
    inst->callable[inst->n_callable++] = m->requires[i].name;
    for (size_t i = 0; i < m->n_optional; i++)
        inst->callable[inst->n_callable++] = m->optional[i].name;
    return 0;
}

int ph_version_new(ph_instance *inst, ph_module *mod, ph_version **out)
{
    *out = NULL;
    ph_version *v = calloc(1, sizeof *v);
    if (!v)
        goto nomem;
    v->ctx.api = &ph_host_api_v1;
    v->inst = inst;
    v->module = mod;
    if (mod->desc->instance_size && !(v->mem = calloc(1, mod->desc->instance_size)))
        goto nomem;
    *out = v;
    return 0;
nomem:
    if (v)
        v->module = NULL;
    ph_version_free(v);
    ph_module_close(mod);
    return ph_error_set(PH_ENOMEM, "out of memory loading a version of %s", inst->name);
}

static void free_params(ph_kv *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++) {
        free(p[i].key);
        free(p[i].value);
    }
    free(p);
}

int ph_version_set_params(ph_version *v, const ph_kv *params, size_t n)
{
    ph_kv *copy = NULL;
    size_t nc = 0;
    for (size_t i = 0; i < n; i++)
        if (ph_kv_append(&copy, &nc, params[i].key, params[i].value, params[i].line)) {
            free_params(copy, nc);
            return ph_error_set(PH_ENOMEM, "out of memory copying parameters");
        }
    free_params(v->params, v->n_params);
    v->params = copy;
    v->n_params = nc;
    return 0;
}

const char *ph_version_param(const ph_version *v, const char *name)
{
    for (size_t i = 0; i < v->n_params; i++)
        if (strcmp(v->params[i].key, name) == 0)
            return v->params[i].value;
    return NULL;
}

/* Pins are rare (only calls past their time limit): one lock for all. */
static pthread_mutex_t pin_mu = PTHREAD_MUTEX_INITIALIZER;

void ph_version_pin(ph_version *v)
{
    ph_version_pin_call(v, NULL);
}

void ph_version_pin_call(ph_version *v, const char *address)
{
    pthread_mutex_lock(&pin_mu);
    v->pins++;
    v->inst->pins++;
    if (address)
        snprintf(v->pinned_call, sizeof v->pinned_call, "%s", address);
    pthread_mutex_unlock(&pin_mu);
}

/* The call an abandoned, still running call of `v` runs (into out), or 0 if none runs. */
static int pinned_call(ph_version *v, char *out, size_t size)
{
    pthread_mutex_lock(&pin_mu);
    int pinned = v->pins > 0;
    snprintf(out, size, "%s", v->pinned_call[0] ? v->pinned_call : "a method");
    pthread_mutex_unlock(&pin_mu);
    return pinned;
}

int ph_version_pinned(ph_version *v)
{
    char call[sizeof v->pinned_call];
    return pinned_call(v, call, sizeof call);
}

void ph_version_unpin(ph_version *v)
{
    pthread_mutex_lock(&pin_mu);
    ph_instance *inst = v->inst;
    v->pins--;
    inst->pins--;
    int free_v = v->pins == 0 && v->free_pending;
    int free_inst = inst->pins == 0 && inst->free_pending;
    if (free_v)
        v->free_pending = 0;
    if (free_inst)
        inst->free_pending = 0;
    pthread_mutex_unlock(&pin_mu);
    if (free_v)
        ph_version_free(v);
    if (free_inst)
        ph_instance_free(inst);
}

/* True if the pinned object must outlive this free: it is then marked for its last unpin. */
static int defer_free(int *pins, int *free_pending)
{
    pthread_mutex_lock(&pin_mu);
    int pinned = *pins > 0;
    if (pinned)
        *free_pending = 1;
    pthread_mutex_unlock(&pin_mu);
    return pinned;
}

void ph_version_free(ph_version *v)
{
    if (!v || defer_free(&v->pins, &v->free_pending))
        return;
    ph_module_close(v->module);
    free_params(v->params, v->n_params);
    free(v->mem);
    free(v);
}

int ph_instance_new(const char *name, const char *mount, const ph_manifest *m, ph_module *mod,
                    ph_kv *params, size_t n_params, ph_instance **out)
{
    *out = NULL;
    ph_instance *inst = calloc(1, sizeof *inst);
    if (!inst) {
        ph_module_close(mod);
        return ph_error_set(PH_ENOMEM, "out of memory creating instance %s", name);
    }
    inst->manifest = m;
    inst->params = params;
    inst->n_params = n_params;
    atomic_init(&inst->state, PH_INST_LOADED);
    atomic_init(&inst->routes, NULL);
    atomic_init(&inst->reason, NULL);
    pthread_mutex_init(&inst->reason_mu, NULL);
    if (!(inst->name = strdup(name)) || !(inst->mount = strdup(mount)) || build_callable(inst)) {
        ph_module_close(mod);
        goto nomem;
    }
    if (ph_version_new(inst, mod, &inst->cur) || ph_version_set_params(inst->cur, params, n_params))
        goto nomem;
    inst->module = mod;
    if (ph_gate_init(&inst->gate))
        goto nomem;
    *out = inst;
    return 0;
nomem:
    ph_version_free(inst->cur);
    free(inst->callable);
    free(inst->mount);
    free(inst->name);
    free(inst);
    return ph_error_set(PH_ENOMEM, "out of memory creating instance %s", name);
}

void ph_instance_free(ph_instance *inst)
{
    if (!inst || defer_free(&inst->pins, &inst->free_pending))
        return;
    ph_gate_destroy(&inst->gate);
    ph_version_free(inst->cur);
    free(inst->callable);
    free(inst->reason);
    for (size_t i = 0; i < inst->n_old_reasons; i++)
        free(inst->old_reasons[i]);
    free(inst->old_reasons);
    pthread_mutex_destroy(&inst->reason_mu);
    free(inst->reload_error);
    free(inst->mount);
    free(inst->name);
    free(inst);
}

void ph_instance_set_reason(ph_instance *inst, const char *text)
{
    char *copy = text ? strdup(text) : NULL;
    pthread_mutex_lock(&inst->reason_mu);
    char *old = atomic_exchange(&inst->reason, copy);
    if (old) {
        char **p = realloc(inst->old_reasons, (inst->n_old_reasons + 1) * sizeof *p);
        if (p) {
            inst->old_reasons = p;
            inst->old_reasons[inst->n_old_reasons++] = old;
        } /* else: leaked rather than freed under a reader */
    }
    pthread_mutex_unlock(&inst->reason_mu);
}

static void set_reason(ph_instance *inst, char *text)
{
    ph_instance_set_reason(inst, text);
    free(text);
}

int ph_version_step(ph_version *v, ph_lifecycle_fn fn, const char *what, char **reason)
{
    *reason = NULL;
    if (!fn)
        return PH_OK;
    ph_frame f;
    ph_error_clear();
    ph_frame_push(&f, v->inst);
    f.what = what;
    f.ver = v;
    int st = fn(&v->ctx);
    ph_frame_pop(&f);
    ph_residue_after_step(v->module, what);
    if (st == PH_OK && !f.failed)
        return PH_OK;
    char msg[2048];
    if (st == PH_DECLINE) {
        snprintf(msg, sizeof msg, "%s declined%s%s", what, f.failed ? ": " : "",
                 f.failed ? ph_error_last() : "");
        *reason = strdup(msg);
        return PH_DECLINE;
    }
    snprintf(msg, sizeof msg, "%s failed: %s", what,
             f.failed ? ph_error_last() : "the package returned an error without a message");
    *reason = strdup(msg);
    return PH_FAIL;
}

/* The callbacks of a started instance before its first call (callbacks.h). */
static int after_start(ph_instance *inst, char **reason)
{
    ph_callback_args a = {.mount = inst->mount};
    int st = PH_OK;
    if (inst->fresh & PH_FRESH_PACKAGE)
        st = ph_callback_run(inst->cur, PH_CB_AFTER_INSTALL, &a, reason);
    if (st == PH_OK && (inst->fresh & PH_FRESH_INSTANCE))
        st = ph_callback_run(inst->cur, PH_CB_AFTER_INSTANTIATE, &a, reason);
    if (st == PH_OK)
        st = ph_callback_run(inst->cur, PH_CB_AFTER_MOUNT, &a, reason);
    return st;
}

int ph_instance_start(ph_instance *inst)
{
    const ph_package *d = inst->cur->module->desc;
    char *reason = NULL;
    int st = ph_version_step(inst->cur, d->prepare, "prepare", &reason);
    if (st == PH_OK) {
        atomic_store(&inst->state, PH_INST_PREPARED);
        st = ph_version_step(inst->cur, d->start, "start", &reason);
        if (st == PH_OK)
            st = after_start(inst, &reason);
        if (st != PH_OK && d->stop && !ph_version_pinned(inst->cur)) {
            /* Release what prepare acquired: stop copes with a half-started instance (not
             * under a callback still running past its time limit: the build stays as it is). */
            ph_frame f;
            ph_frame_push(&f, inst);
            f.what = "stop";
            d->stop(&inst->cur->ctx);
            ph_frame_pop(&f);
            ph_residue_after_step(inst->cur->module, "stop");
        }
    }
    if (st == PH_OK) {
        atomic_store(&inst->state, PH_INST_RUNNING);
        return 0;
    }
    set_reason(inst, reason);
    if (st == PH_DECLINE) {
        atomic_store(&inst->state, PH_INST_DECLINED);
        return ph_error_set(PH_EDECLINED, "instance '%s': %s", inst->name, inst->reason);
    }
    atomic_store(&inst->state, PH_INST_FAILED);
    return ph_error_set(PH_EPACKAGE, "instance '%s': %s", inst->name, inst->reason);
}

/* ---- stop() with a time limit ---- */

static atomic_int stop_limit_ms = PH_STOP_TIMEOUT_MS;

void ph_instance_set_stop_timeout_ms(int ms)
{
    atomic_store(&stop_limit_ms, ms > 0 ? ms : PH_STOP_TIMEOUT_MS);
}

int ph_instance_stop_timeout_ms(const ph_instance *inst)
{
    /* inst->manifest: a change repoints it at the current set (a version's may be stale) */
    int ms = ph_manifest_stop_timeout(inst->manifest);
    return ms > 0 ? ms : atomic_load(&stop_limit_ms);
}

/*
 * One package function (stop(), a lifecycle callback) run on its own thread,
 * so that the host can stop waiting for it. The job is freed by whichever
 * side finishes last: the host when the function returned in time, else the
 * thread when it returns at last (it then frees the argument and unpins the
 * build it kept mapped).
 */
typedef struct limited_job {
    ph_version *v;
    ph_limited c;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int status;  /* what the function returned */
    char *error; /* the package's message (ph_error of its frame), or NULL */
    int done;    /* the function returned */
    int left;    /* the host stopped waiting: the thread frees the job and unpins the build */
} limited_job;

static void limited_job_free(limited_job *j)
{
    if (j->c.arg_free)
        j->c.arg_free(j->c.arg);
    free(j->error);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* Runs the function in a frame of its instance; its status and message go into the job. */
static void limited_call(limited_job *j)
{
    ph_frame f;
    ph_error_clear();
    ph_frame_push(&f, j->v->inst);
    f.what = j->c.what;
    f.ver = j->v;
    j->status = j->c.fn(j->v, j->c.arg);
    ph_frame_pop(&f);
    if (f.failed)
        j->error = strdup(ph_error_last());
}

static void *run_limited(void *p)
{
    limited_job *j = p;
    limited_call(j);
    pthread_mutex_lock(&j->mu);
    j->done = 1;
    int left = j->left;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (left) { /* late: its build was kept for it; now it may go */
        ph_version *v = j->v;
        if (j->c.stop)
            ph_residue_stop_hung(v->module, 0); /* it returned at last */
        limited_job_free(j);
        ph_version_unpin(v);
    }
    return NULL;
}

/* Waits for the job up to ms; 1 if the function returned, 0 if the host gave up on it. */
static int wait_limited(limited_job *j, int ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    int rc = 0;
    while (!j->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&j->cv, &j->mu, &deadline);
    int done = j->done;
    if (!done)
        j->left = 1;
    pthread_mutex_unlock(&j->mu);
    return done;
}

/* A job with its condition variable on the monotonic clock, or NULL. */
static limited_job *limited_job_new(ph_version *v, const ph_limited *c)
{
    limited_job *j = calloc(1, sizeof *j);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int ok = j && pthread_cond_init(&j->cv, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!ok) {
        free(j);
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    j->v = v;
    j->c = *c;
    return j;
}

int ph_version_run_limited(ph_version *v, const ph_limited *c, int limit_ms, int *status,
                           char **error)
{
    *status = 0;
    *error = NULL;
    limited_job *j = limited_job_new(v, c);
    pthread_t t;
    int ok = j != NULL;
    if (ok) {
        ph_version_pin_call(v, c->pin_as); /* kept mapped, with its ctx and memory, meanwhile */
        ok = pthread_create(&t, NULL, run_limited, j) == 0;
        if (!ok) {
            j->c.arg_free = NULL; /* the caller's to free: the call runs here */
            limited_job_free(j);
            ph_version_unpin(v);
        }
    }
    if (!ok) { /* no thread to spare: the function runs here, without a limit */
        limited_job here = {.v = v, .c = *c};
        limited_call(&here);
        *status = here.status;
        *error = here.error;
        if (c->arg_free)
            c->arg_free(c->arg);
        return 0;
    }
    pthread_detach(t);
    if (!wait_limited(j, limit_ms)) {
        if (c->stop)
            ph_residue_stop_hung(v->module, limit_ms);
        return ph_error_set(PH_ETIMEOUT,
                            "package '%s' build %s: %s() did not return within %g s; its code "
                            "stays mapped and %s; make %s() return (signal and join your threads, "
                            "never wait without a time limit), or raise [limits] stop_timeout",
                            v->module->desc->name, v->module->hash, c->what, limit_ms / 1000.0,
                            c->consequence, c->what);
    }
    *status = j->status;
    *error = j->error;
    j->error = NULL;
    limited_job_free(j);
    ph_version_unpin(v);
    return 0;
}

static int call_stop(ph_version *v, void *arg)
{
    (void)arg;
    v->module->desc->stop(&v->ctx);
    return 0;
}

int ph_version_stop(ph_version *v, int limit_ms)
{
    if (!v->module->desc->stop)
        return 0;
    char consequence[256];
    snprintf(consequence, sizeof consequence, "instance '%s' is marked failed", v->inst->name);
    ph_limited c = {.what = "stop", .fn = call_stop, .consequence = consequence, .stop = true};
    int status;
    char *error = NULL;
    int rc = ph_version_run_limited(v, &c, limit_ms, &status, &error);
    free(error);
    return rc;
}

int ph_instance_stop(ph_instance *inst)
{
    if (atomic_load(&inst->state) != PH_INST_RUNNING)
        return 0;
    ph_version *v = inst->cur;
    char call[sizeof v->pinned_call];
    if (pinned_call(v, call, sizeof call)) {
        /* stop() would free what that call still uses: it is not run at all. */
        int rc = ph_error_set(PH_EBUSY,
                              "package '%s' build %s: stop() not run: %s is still running past "
                              "its time limit (its caller was answered 504); stop() must not "
                              "run under it, so the build stays mapped and keeps what it holds",
                              v->module->desc->name, v->module->hash, call);
        ph_instance_set_reason(inst, ph_error_last());
        atomic_store(&inst->state, PH_INST_FAILED);
        ph_residue_after_step(v->module, "stop");
        return rc;
    }
    int rc = ph_version_stop(v, ph_instance_stop_timeout_ms(inst));
    if (rc) {
        ph_instance_set_reason(inst, ph_error_last());
        ph_version_pin(v); /* never unmapped: its stop() may still return into it */
        atomic_store(&inst->state, PH_INST_FAILED);
        return rc;
    }
    ph_residue_after_step(v->module, "stop");
    atomic_store(&inst->state, PH_INST_STOPPED);
    return 0;
}

int ph_instance_params_equal(const ph_instance *inst, const ph_kv *params, size_t n)
{
    if (inst->n_params != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(inst->params[i].key, params[i].key) != 0 ||
            strcmp(inst->params[i].value, params[i].value) != 0)
            return 0;
    return 1;
}

const char *ph_instance_param(const ph_instance *inst, const char *name)
{
    for (size_t i = 0; i < inst->n_params; i++)
        if (strcmp(inst->params[i].key, name) == 0)
            return inst->params[i].value;
    return NULL;
}

const ph_dep *ph_instance_optional_left_out(const ph_instance *inst, const ph_manifest *callee)
{
    const ph_manifest *m = inst->manifest;
    for (size_t i = 0; i < m->n_requires; i++)
        if (strcmp(m->requires[i].name, callee->name) == 0)
            return NULL; /* a hard requirement: the plan checked it */
    for (size_t i = 0; i < m->n_optional; i++)
        if (strcmp(m->optional[i].name, callee->name) == 0 &&
            !ph_range_satisfies(&m->optional[i].range, &callee->version))
            return &m->optional[i];
    return NULL;
}

int ph_instance_may_call(const ph_instance *inst, const char *pkg)
{
    for (size_t i = 0; i < inst->n_callable; i++)
        if (strcmp(inst->callable[i], pkg) == 0)
            return 1;
    return 0;
}
