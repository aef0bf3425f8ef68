#include "instance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    f->prev = frame_top;
    frame_top = f;
}

void ph_frame_pop(ph_frame *f)
{
    frame_top = f->prev;
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
    pthread_mutex_lock(&pin_mu);
    v->pins++;
    v->inst->pins++;
    pthread_mutex_unlock(&pin_mu);
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

int ph_instance_start(ph_instance *inst)
{
    const ph_package *d = inst->cur->module->desc;
    char *reason = NULL;
    int st = ph_version_step(inst->cur, d->prepare, "prepare", &reason);
    if (st == PH_OK) {
        atomic_store(&inst->state, PH_INST_PREPARED);
        st = ph_version_step(inst->cur, d->start, "start", &reason);
        if (st != PH_OK && d->stop) {
            /* Release what prepare acquired: stop copes with a half-started instance. */
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

void ph_instance_stop(ph_instance *inst)
{
    if (atomic_load(&inst->state) != PH_INST_RUNNING)
        return;
    const ph_package *d = inst->cur->module->desc;
    if (d->stop) {
        ph_frame f;
        ph_frame_push(&f, inst);
        f.what = "stop";
        d->stop(&inst->cur->ctx);
        ph_frame_pop(&f);
    }
    ph_residue_after_step(inst->cur->module, "stop");
    atomic_store(&inst->state, PH_INST_STOPPED);
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
