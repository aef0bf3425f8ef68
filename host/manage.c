#include "manage.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "install.h"
#include "metrics.h"
#include "reload.h"
#include "residue.h"
#include "store.h"

/* How long a status read waits for an instance a reload holds. */
#define PH_MANAGE_GATE_WAIT_MS 2000

/*
 * What /_/packages says about a loaded instance: the manifest, reason and
 * build it runs now. A reload rewrites those while the instance's gate is
 * closed, so they are read inside the gate (and the reload bookkeeping
 * through ph_reload_info_get). Returns false if a reload held the gate
 * past PH_MANAGE_GATE_WAIT_MS; e is then left as the plan describes it.
 */
/* [package] metadata (manifest.h): kind always, the others when given. */
static void add_metadata(json_t *e, const ph_manifest *m)
{
    const char *keys[] = {"kind", "summary", "author", "url", "license"};
    const char *vals[] = {m->kind, m->summary, m->author, m->url, m->license};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (vals[k])
            json_object_set_new(e, keys[k], json_string(vals[k]));
}

static bool running_entry(ph_instance *inst, json_t *e)
{
    if (ph_gate_enter(&inst->gate, PH_MANAGE_GATE_WAIT_MS))
        return false;
    /* a change repoints an unchanged build at its new manifest without closing the gate */
    const ph_manifest *m = __atomic_load_n(&inst->manifest, __ATOMIC_ACQUIRE);
    if (m) {
        json_object_set_new(e, "version", json_string(m->version_text));
        if (m->description)
            json_object_set_new(e, "description", json_string(m->description));
        add_metadata(e, m);
    }
    const char *why = atomic_load(&inst->reason);
    if (why && atomic_load(&inst->state) != PH_INST_RUNNING)
        json_object_set_new(e, "reason", json_string(why));
    ph_reload_info info;
    if (ph_reload_info_get(inst, &info) == 0) {
        json_object_set_new(e, "reloads", json_integer(info.reloads));
        json_object_set_new(e, "reload_failures", json_integer(info.failures));
        if (info.error)
            json_object_set_new(e, "reload_error", json_string(info.error));
        if (info.build[0])
            json_object_set_new(e, "build", json_string(info.build));
    }
    free(info.error);
    ph_gate_leave(&inst->gate);
    return true;
}

static json_t *package_entry(ph_host *host, size_t i)
{
    const ph_plan_item *it = &host->plan.items[i];
    const ph_manifest *m = it->manifest; /* the plan's: what was resolved at start */
    json_t *deps = json_array();
    for (size_t d = 0; deps && d < it->n_deps; d++)
        if (it->deps[d] < host->plan.n)
            json_array_append_new(deps, json_string(host->plan.items[it->deps[d]].instance));
    json_t *e = json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:s,s:o}", "instance", it->instance, "package",
                          m ? m->name : NULL, "version", m ? m->version_text : NULL, "description",
                          m ? m->description : NULL, "mount", it->mount, "state",
                          ph_host_item_state(host, i, NULL), "dependencies", deps);
    if (e && m)
        add_metadata(e, m);
    ph_instance *inst = host->insts ? host->insts[i] : NULL;
    if (e && inst) {
        if (!running_entry(inst, e))
            json_object_set_new(e, "reloading", json_true());
    } else if (e && it->reason) {
        json_object_set_new(e, "reason", json_string(it->reason));
    }
    if (e && it->note) /* runs, but without an optional dependency: say so */
        json_object_set_new(e, "note", json_string(it->note));
    return e;
}

/* "outlived": what stopped builds of `pkg` (NULL: any) still leave running, one text each. */
static void add_outlived(json_t *obj, const char *pkg)
{
    char *text = ph_residue_text(pkg);
    if (!text || !obj)
        goto cleanup;
    json_t *arr = json_array();
    for (char *line = text, *end; arr && line && *line; line = end ? end + 1 : NULL) {
        if ((end = strchr(line, '\n')))
            *end = 0;
        json_array_append_new(arr, json_string(line));
    }
    json_object_set_new(obj, "outlived", arr);
cleanup:
    free(text);
}

json_t *ph_manage_packages(ph_host *h)
{
    json_t *arr = json_array();
    pthread_rwlock_rdlock(&h->lock); /* a configuration reload replaces the plan */
    for (size_t i = 0; arr && i < h->plan.n; i++)
        if (json_array_append_new(arr, package_entry(h, i))) {
            json_decref(arr);
            arr = NULL;
        }
    pthread_rwlock_unlock(&h->lock);
    json_t *out = arr ? json_pack("{s:o}", "instances", arr) : NULL;
    add_outlived(out, NULL);
    return out;
}

/* The package's manifest, its instances and what each stores (an instance name finds its package).
 */
static int package_info(ph_host *h, const char *pkg, json_t **out)
{
    json_t *info = NULL, *insts = json_array();
    pthread_rwlock_rdlock(&h->lock);
    long named = ph_plan_find(&h->plan, pkg);
    if (named >= 0 && h->plan.items[named].manifest)
        pkg = h->plan.items[named].manifest->name;
    for (size_t i = 0; insts && i < h->plan.n; i++) {
        const ph_plan_item *it = &h->plan.items[i];
        const ph_manifest *m = it->manifest;
        if (!m || strcmp(m->name, pkg) != 0)
            continue;
        if (!info) {
            json_t *req = json_object();
            for (size_t k = 0; req && k < m->n_requires; k++)
                json_object_set_new(req, m->requires[k].name,
                                    json_string(m->requires[k].range.text));
            json_t *params = json_object();
            for (size_t k = 0; params && k < m->n_params; k++)
                json_object_set_new(params, m->params[k].key, json_string(m->params[k].value));
            info = json_pack("{s:s,s:s,s:s?,s:s,s:o,s:o}", "package", m->name, "version",
                             m->version_text, "description", m->description, "directory", m->dir,
                             "requires", req ? req : json_object(), "parameters",
                             params ? params : json_object());
            if (info)
                add_metadata(info, m);
        }
        json_t *e = package_entry(h, i), *data = NULL;
        if (e && ph_store_describe(h->cfg.data_dir, it->instance, &data) == 0 && data)
            json_object_set_new(e, "data", data);
        json_array_append_new(insts, e);
    }
    pthread_rwlock_unlock(&h->lock);
    if (!info) {
        json_decref(insts);
        return ph_error_set(PH_ENOTFOUND,
                            "no package '%s' is loaded; `plughost list` shows the "
                            "installed ones",
                            pkg);
    }
    json_object_set_new(info, "instances", insts);
    *out = info;
    return 0;
}

/* The package an instance or package name stands for (residue.c knows packages). */
static const char *residue_package(ph_host *h, const char *name)
{
    const char *pkg = name;
    pthread_rwlock_rdlock(&h->lock);
    long i = ph_plan_find(&h->plan, name);
    if (i >= 0 && h->plan.items[i].manifest)
        pkg = h->plan.items[i].manifest->name; /* manifests outlive the lock (grace period) */
    pthread_rwlock_unlock(&h->lock);
    return pkg;
}

int ph_manage(ph_host *h, const char *op, const char *name, json_t **out)
{
    *out = NULL;
    if (strcmp(op, "packages") == 0) {
        *out = ph_manage_packages(h);
        return *out ? 0 : ph_error_set(PH_ENOMEM, "out of memory");
    }
    if (!name || !*name)
        return ph_error_set(PH_EARGS, "'%s' needs a package name", op);
    if (strcmp(op, "info") == 0)
        return package_info(h, name, out);
    int n = 0, rc;
    const char *result;
    if (strcmp(op, "reload") == 0) {
        rc = ph_reload_package(h, name, &n);
        result = n ? "reloaded" : "already running this build";
    } else if (strcmp(op, "unload") == 0 || strcmp(op, "disable") == 0) {
        rc = ph_host_unload(h, name, &n);
        result = "disabled; data kept";
    } else if (strcmp(op, "enable") == 0) {
        rc = ph_host_enable(h, name, &n);
        result = "running";
    } else if (strcmp(op, "install") == 0 || strcmp(op, "remove") == 0) {
        /* their reports say more (directory, checks); "operation" as every answer has it */
        rc = op[0] == 'i' ? ph_install(h, name, out) : ph_uninstall(h, name, out);
        if (!rc && json_object_set_new(*out, "operation", json_string(op)))
            return ph_error_set(PH_ENOMEM, "out of memory");
        return rc;
    } else {
        return ph_error_set(PH_EINVAL,
                            "unknown management operation '%s'; use packages, info, "
                            "reload, disable, enable, install or remove",
                            op);
    }
    if (rc)
        return rc;
    /* Never a plain "disabled" or "reloaded" while package code still runs. */
    const char *pkg = residue_package(h, name);
    ph_residue_settle(pkg);
    char *left = ph_residue_text(pkg), *said = NULL;
    if (left &&
        asprintf(&said, "%s, but code of package '%s' still runs after stop()", result, pkg) < 0)
        said = NULL;
    free(left);
    *out = json_pack("{s:s,s:s,s:i,s:s}", "package", name, "operation", op, "instances", n,
                     "result", said ? said : result);
    free(said);
    add_outlived(*out, pkg);
    return *out ? 0 : ph_error_set(PH_ENOMEM, "out of memory");
}
