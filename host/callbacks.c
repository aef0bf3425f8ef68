/*
 * Lifecycle callbacks: a size-checked read of the descriptor field and one
 * runner with the frame, error and residue handling of prepare/start.
 */
#include "callbacks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "residue.h"

const char *ph_callback_name(ph_callback cb)
{
    static const char *const names[] = {
#define PH_CB_NAME_(id, name) name,
        PH_CALLBACKS(PH_CB_NAME_)
#undef PH_CB_NAME_
    };
    return (unsigned)cb < sizeof names / sizeof names[0] ? names[cb] : "callback";
}

/* Calls the callback; -2 when the descriptor does not have it. */
static int invoke(const ph_package *d, ph_ctx *ctx, ph_callback cb, const ph_callback_args *a)
{
#define HAS(f) (PH_DESC_HAS(d, f) && d->f)
    switch (cb) {
    case PH_CB_AFTER_INSTALL:
        return HAS(after_install) ? d->after_install(ctx) : -2;
    case PH_CB_BEFORE_UPGRADE:
        return HAS(before_upgrade) ? d->before_upgrade(ctx, a->from, a->to) : -2;
    case PH_CB_AFTER_UPGRADE:
        return HAS(after_upgrade) ? d->after_upgrade(ctx, a->from, a->to) : -2;
    case PH_CB_BEFORE_UNINSTALL:
        return HAS(before_uninstall) ? d->before_uninstall(ctx, a->purge) : -2;
    case PH_CB_AFTER_INSTANTIATE:
        return HAS(after_instantiate) ? d->after_instantiate(ctx) : -2;
    case PH_CB_BEFORE_DELETE:
        return HAS(before_delete) ? d->before_delete(ctx) : -2;
    case PH_CB_AFTER_MOUNT:
        return HAS(after_mount) ? d->after_mount(ctx, a->mount) : -2;
    }
#undef HAS
    return -2;
}

int ph_callback_has(const ph_version *v, ph_callback cb)
{
    const ph_package *d = v->module->desc;
    switch (cb) {
    case PH_CB_AFTER_INSTALL:
        return PH_DESC_HAS(d, after_install) && d->after_install;
    case PH_CB_BEFORE_UPGRADE:
        return PH_DESC_HAS(d, before_upgrade) && d->before_upgrade;
    case PH_CB_AFTER_UPGRADE:
        return PH_DESC_HAS(d, after_upgrade) && d->after_upgrade;
    case PH_CB_BEFORE_UNINSTALL:
        return PH_DESC_HAS(d, before_uninstall) && d->before_uninstall;
    case PH_CB_AFTER_INSTANTIATE:
        return PH_DESC_HAS(d, after_instantiate) && d->after_instantiate;
    case PH_CB_BEFORE_DELETE:
        return PH_DESC_HAS(d, before_delete) && d->before_delete;
    case PH_CB_AFTER_MOUNT:
        return PH_DESC_HAS(d, after_mount) && d->after_mount;
    }
    return 0;
}

/* What the callback's thread owns: it may outlive the caller (callbacks.h). */
typedef struct cb_job {
    ph_callback cb;
    ph_callback_args a;
} cb_job;

static void cb_job_free(void *p)
{
    cb_job *j = p;
    if (!j)
        return;
    free((char *)j->a.from);
    free((char *)j->a.to);
    free((char *)j->a.mount);
    free(j);
}

static char *dup_or_null(const char *s, int *ok)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *ok = 0;
    return d;
}

static cb_job *cb_job_new(ph_callback cb, const ph_callback_args *a)
{
    cb_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    int ok = 1;
    j->cb = cb;
    j->a.purge = a ? a->purge : 0;
    j->a.from = dup_or_null(a ? a->from : NULL, &ok);
    j->a.to = dup_or_null(a ? a->to : NULL, &ok);
    j->a.mount = dup_or_null(a ? a->mount : NULL, &ok);
    if (!ok) {
        cb_job_free(j);
        return NULL;
    }
    return j;
}

static int call_cb(ph_version *v, void *arg)
{
    cb_job *j = arg;
    return invoke(v->module->desc, &v->ctx, j->cb, &j->a);
}

int ph_callback_run(ph_version *v, ph_callback cb, const ph_callback_args *a, char **reason)
{
    *reason = NULL;
    if (!ph_callback_has(v, cb))
        return PH_OK;
    const char *what = ph_callback_name(cb);
    cb_job *j = cb_job_new(cb, a);
    if (!j) {
        *reason = strdup("out of memory");
        return PH_FAIL;
    }
    char pin_as[64];
    snprintf(pin_as, sizeof pin_as, "%s()", what);
    ph_limited c = {.what = what,
                    .fn = call_cb,
                    .arg = j,
                    .arg_free = cb_job_free,
                    .consequence = "it counts as failed",
                    .pin_as = pin_as};
    int st = PH_OK;
    char *error = NULL, msg[2048];
    if (ph_version_run_limited(v, &c, ph_instance_stop_timeout_ms(v->inst), &st, &error)) {
        /* Still running in the build: no residue check under it; the failure is the timeout.
         * Logged here, whatever the caller does with it: a thread left in a package is
         * something the operator must see even when only a client is answered. */
        ph_logf(PH_L_ERROR, v->inst->name, "%s", ph_error_last());
        *reason = strdup(ph_error_last());
        return PH_FAIL;
    }
    ph_residue_after_step(v->module, what);
    if (st == PH_OK && !error)
        return PH_OK;
    snprintf(msg, sizeof msg, "%s failed: %s", what,
             error ? error : "the package returned an error without a message");
    free(error);
    *reason = strdup(msg);
    return PH_FAIL;
}

int ph_callback_run_live(ph_instance *inst, ph_callback cb, const ph_callback_args *a, int drain_ms,
                         char **reason)
{
    *reason = NULL;
    if (!inst->cur || !ph_callback_has(inst->cur, cb))
        return PH_OK;
    if (ph_frame_inside(inst)) /* asked from one of its own calls: closing would wait for it */
        return ph_callback_run(inst->cur, cb, a, reason);
    if (ph_gate_close(&inst->gate, drain_ms)) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s did not run: calls of '%s' were still running after %d ms",
                 ph_callback_name(cb), inst->name, drain_ms);
        *reason = strdup(msg);
        return PH_EBUSY;
    }
    int st = ph_callback_run(inst->cur, cb, a, reason);
    ph_gate_open(&inst->gate);
    return st;
}

/* ---------------------------------------------------------------- installed packages */

static char *marker(const char *data_dir, const char *package)
{
    char *p = NULL;
    return asprintf(&p, "%s/.installed/%s", data_dir, package) < 0 ? NULL : p;
}

int ph_callback_installed(const char *data_dir, const char *package)
{
    char *p = marker(data_dir, package);
    int yes = !p || access(p, F_OK) == 0; /* no memory: better skipped than run twice */
    free(p);
    return yes;
}

int ph_callback_mark_installed(const char *data_dir, const char *package, const char *version)
{
    char *dir = NULL, *p = marker(data_dir, package);
    int rc = 0;
    if (!p || asprintf(&dir, "%s/.installed", data_dir) < 0) {
        free(p);
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    FILE *f = NULL;
    if ((mkdir(dir, 0700) != 0 && errno != EEXIST) || !(f = fopen(p, "w")) ||
        fprintf(f, "%s\n", version) < 0)
        rc = ph_error_set(PH_EIO, "cannot write %s: %s", p, ph_strerror(errno));
    if (f && fclose(f) != 0 && !rc)
        rc = ph_error_set(PH_EIO, "cannot write %s: %s", p, ph_strerror(errno));
    free(dir);
    free(p);
    return rc;
}

void ph_callback_forget_installed(const char *data_dir, const char *package)
{
    char *p = marker(data_dir, package);
    if (p)
        unlink(p);
    free(p);
}
