#include "manage.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config_write.h"
#include "crash.h"
#include "dist.h"
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
/* [package] metadata (manifest.h): kind always, the others (and "provides") when given. */
static void add_metadata(json_t *e, const ph_manifest *m)
{
    const char *keys[] = {"kind", "summary", "author", "url", "license"};
    const char *vals[] = {m->kind, m->summary, m->author, m->url, m->license};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (vals[k])
            json_object_set_new(e, keys[k], json_string(vals[k]));
    if (m->n_provides) /* the capabilities it provides ([provides]) */
        json_object_set_new(e, "provides", ph_manifest_provides_json(m));
}

/* t as RFC 3339 in UTC ("2026-11-30T12:00:52Z"); false if it does not fit. */
static bool rfc3339_utc(char *out, size_t size, long long t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    return gmtime_r(&tt, &tm) && strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0;
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
        char at[32];
        if (info.at && rfc3339_utc(at, sizeof at, info.at))
            json_object_set_new(e, "last_reload", json_string(at));
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

static int ph_manage_page(ph_host *h, const char *op, const char *name, json_t **out);
static int remove_with_data(ph_host *h, const char *spec, bool purge, json_t **out);

int ph_manage(ph_host *h, const char *op, const char *name, json_t **out)
{
    *out = NULL;
    int page = ph_manage_page(h, op, name, out);
    if (page != 1)
        return page;
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
    } else if (strcmp(op, "remove") == 0 || strcmp(op, "purge") == 0) {
        /* NAME or NAME@VERSION; "purge" tells before_uninstall, then deletes the data */
        return remove_with_data(h, name, op[0] == 'p', out);
    } else if (strcmp(op, "install") == 0) {
        /* its report says more (directory, checks); "operation" as every answer has it */
        rc = ph_install(h, name, out);
        if (!rc && json_object_set_new(*out, "operation", json_string(op)))
            return ph_error_set(PH_ENOMEM, "out of memory");
        return rc;
    } else {
        return ph_error_set(PH_EINVAL,
                            "unknown management operation '%s'; use packages, info, "
                            "reload, disable, enable, install, remove, purge, upload, uninstall, "
                            "instance_new or instance_set",
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

/* ------------------------------------------------------------------ */
/* The package manager page: overview, upload, remove with data, instances */
/* ------------------------------------------------------------------ */

/* One writer of host.ini at a time (two administrators saving at once). */
static pthread_mutex_t config_write_mu = PTHREAD_MUTEX_INITIALIZER;

static int write_instance(const char *path, const char *inst, const ph_kv *kv, size_t n)
{
    pthread_mutex_lock(&config_write_mu);
    int rc = ph_config_write_instance(path, inst, kv, n, 1);
    pthread_mutex_unlock(&config_write_mu);
    return rc;
}

/* Decoded upload cap: archives past it are refused (PH_ETOOBIG). */
#define PH_MANAGE_UPLOAD_MAX (64u << 20)

/*
 * "parameters" of plan item `it`: {key: value} as in effect (the manifest's
 * defaults with host.ini's overrides), and "defaults". Read from the
 * manifest and the configuration, which only change under h->lock held for
 * writing; the plan item's own copy is handed between plans by a change
 * without it.
 */
static void add_parameters(const ph_plan_item *it, json_t *e)
{
    json_t *params = json_object(), *defaults = json_object();
    const ph_manifest *m = it->manifest;
    for (size_t k = 0; params && defaults && m && k < m->n_params; k++) {
        const char *key = m->params[k].key, *v = m->params[k].value;
        json_object_set_new(defaults, key, json_string(v));
        for (size_t c = 0; it->conf && c < it->conf->n_params; c++)
            if (!strcmp(it->conf->params[c].key, key))
                v = it->conf->params[c].value;
        json_object_set_new(params, key, json_string(v));
    }
    json_object_set_new(e, "parameters", params ? params : json_object());
    json_object_set_new(e, "defaults", defaults ? defaults : json_object());
}

/* Instances that need plan item i (its dependents). */
static json_t *dependents_of(ph_host *h, size_t i)
{
    json_t *arr = json_array();
    for (size_t j = 0; arr && j < h->plan.n; j++)
        for (size_t d = 0; d < h->plan.items[j].n_deps; d++)
            if (h->plan.items[j].deps[d] == i) {
                json_array_append_new(arr, json_string(h->plan.items[j].instance));
                break;
            }
    return arr;
}

/* Crashes of the build serving `e` in the quarantine window, and whether it is quarantined. */
static void add_crashes(ph_host *h, const ph_plan_item *it, json_t *e)
{
    const char *build = json_string_value(json_object_get(e, "build"));
    const char *why = json_string_value(json_object_get(e, "reason"));
    if (why && strncmp(why, "quarantined", 11) == 0)
        json_object_set_new(e, "quarantined", json_true());
    char *journal = NULL;
    if (!build || !it->manifest || asprintf(&journal, "%s/crashes.log", h->cfg.data_dir) < 0)
        return;
    int n = ph_crash_count(journal, it->manifest->name, build, PH_CRASH_WINDOW_S);
    if (n > 0)
        json_object_set_new(e, "crashes",
                            json_pack("{s:i,s:i,s:i}", "count", n, "window_s", PH_CRASH_WINDOW_S,
                                      "quarantine_at", PH_CRASH_QUARANTINE));
    free(journal);
}

static json_t *detailed_entry(ph_host *h, size_t i)
{
    const ph_plan_item *it = &h->plan.items[i];
    json_t *e = package_entry(h, i), *data = NULL;
    if (!e)
        return NULL;
    add_parameters(it, e);
    json_object_set_new(e, "dependents", dependents_of(h, i));
    if (ph_store_describe(h->cfg.data_dir, it->instance, &data) == 0 && data)
        json_object_set_new(e, "data", data);
    ph_error_clear(); /* no database is not a failure of the overview */
    if (it->conf)
        json_object_set_new(e, "configured", json_true()); /* it has an [instance] section */
    char *wiki = NULL;
    struct stat st;
    if (!it->manifest || asprintf(&wiki, "%s/wiki", it->manifest->dir) < 0)
        wiki = NULL;
    if (wiki && stat(wiki, &st) == 0 && S_ISDIR(st.st_mode))
        json_object_set_new(e, "wiki", json_true());
    free(wiki);
    add_crashes(h, it, e);
    return e;
}

/* The installed packages (the manifest set), each with its instances. */
static json_t *installed_packages(ph_host *h)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < h->set.n; i++) {
        const ph_manifest *m = h->set.items[i];
        json_t *insts = json_array();
        for (size_t j = 0; insts && j < h->plan.n; j++)
            if (h->plan.items[j].manifest && !strcmp(h->plan.items[j].manifest->name, m->name))
                json_array_append_new(insts, json_string(h->plan.items[j].instance));
        json_t *params = json_object();
        for (size_t k = 0; params && k < m->n_params; k++)
            json_object_set_new(params, m->params[k].key, json_string(m->params[k].value));
        json_t *pe =
            json_pack("{s:s,s:s,s:s?,s:s,s:o,s:o}", "package", m->name, "version", m->version_text,
                      "description", m->description, "directory", m->dir, "instances",
                      insts ? insts : json_array(), "parameters", params ? params : json_object());
        if (pe) /* summary, author, url, license, kind: the page shows them */
            add_metadata(pe, m);
        json_array_append_new(arr, pe);
    }
    return arr;
}

static json_t *config_info(ph_host *h)
{
    const char *path = h->cfg.path;
    if (!path)
        return json_pack("{s:n,s:b,s:s}", "path", "writable", 0, "why",
                         "the host was started without a host.ini (-c FILE)");
    char *copy = strdup(path);
    struct stat st;
    bool w = copy && access(path, W_OK) == 0 && stat(path, &st) == 0 && (st.st_mode & 0222) &&
             access(dirname(copy), W_OK) == 0;
    free(copy);
    return json_pack("{s:s,s:b}", "path", path, "writable", w);
}

/* {"instances": [detailed], "packages": [installed], "config", "data_dir", "outlived"}. */
static int overview(ph_host *h, json_t **out)
{
    json_t *arr = json_array(), *pkgs = NULL, *cfg = NULL;
    pthread_rwlock_rdlock(&h->lock);
    for (size_t i = 0; arr && i < h->plan.n; i++)
        if (json_array_append_new(arr, detailed_entry(h, i))) {
            json_decref(arr);
            arr = NULL;
        }
    pkgs = installed_packages(h);
    cfg = config_info(h);
    json_t *data_dir = json_string(h->cfg.data_dir); /* a configuration reload swaps h->cfg */
    pthread_rwlock_unlock(&h->lock);
    *out = arr && pkgs && cfg && data_dir
               ? json_pack("{s:o,s:o,s:o,s:o}", "instances", arr, "packages", pkgs, "config", cfg,
                           "data_dir", data_dir)
               : NULL;
    if (!*out) {
        json_decref(arr);
        json_decref(pkgs);
        json_decref(cfg);
        json_decref(data_dir);
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    add_outlived(*out, NULL);
    return 0;
}

/* The JSON object a page operation carries in `name`; PH_EARGS saying what `op` takes. */
static int op_args(const char *op, const char *name, const char *takes, json_t **out)
{
    *out = name ? json_loads(name, 0, NULL) : NULL;
    if (json_is_object(*out))
        return 0;
    json_decref(*out);
    *out = NULL;
    return ph_error_set(PH_EARGS, "'%s' takes a JSON object %s", op, takes);
}

/* A copy of the data directory (caller frees), read under the lock a configuration reload takes. */
static char *data_dir_copy(ph_host *h)
{
    pthread_rwlock_rdlock(&h->lock);
    char *d = strdup(h->cfg.data_dir);
    pthread_rwlock_unlock(&h->lock);
    if (!d)
        ph_error_set(PH_ENOMEM, "out of memory");
    return d;
}

/* Writes `bytes` into a new file under <data_dir>/uploads named after `filename`. */
static int save_upload(ph_host *h, const char *filename, const unsigned char *bytes, size_t len,
                       char **path)
{
    char *dir = NULL, *data = data_dir_copy(h);
    int fd = -1, rc = 0;
    *path = NULL;
    size_t fl = strlen(filename), sl = strlen(PH_DIST_SUFFIX);
    if (!data || asprintf(&dir, "%s/uploads", data) < 0 ||
        asprintf(path, "%s/%.*s.XXXXXX%s", dir, (int)(fl - sl), filename, PH_DIST_SUFFIX) < 0) {
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    /* the browser's name ("notes-2.0.0 (1).phpkg", "../x.phpkg") only names the temporary file */
    for (char *p = *path + strlen(dir) + 1; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-", *p) ||
            (p == *path + strlen(dir) + 1 && *p == '.'))
            *p = '_';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = ph_error_set(PH_EIO, "cannot create %s: %s", dir, strerror(errno));
        goto cleanup;
    }
    if ((fd = mkstemps(*path, (int)sl)) < 0) {
        rc = ph_error_set(PH_EIO, "cannot create a file in %s: %s", dir, strerror(errno));
        goto cleanup;
    }
    for (size_t at = 0; at < len;) {
        ssize_t w = write(fd, bytes + at, len - at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = ph_error_set(PH_EIO, "cannot write %s: %s", *path, strerror(errno));
            unlink(*path);
            goto cleanup;
        }
        at += (size_t)w;
    }
cleanup:
    if (fd >= 0)
        close(fd);
    if (rc) {
        free(*path);
        *path = NULL;
    }
    free(dir);
    free(data);
    return rc;
}

/* `text` with each `from` replaced by `to` (malloc'd), or NULL on no memory. */
static char *replace_all(const char *text, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *p = text; fl && (p = strstr(p, from)); p += fl)
        n++;
    if (n > (SIZE_MAX - strlen(text) - 1) / (tl + 1))
        return NULL;
    char *out = malloc(strlen(text) + n * tl + 1), *o = out;
    for (const char *p = text; out;) {
        const char *hit = fl ? strstr(p, from) : NULL;
        size_t k = hit ? (size_t)(hit - p) : strlen(p);
        memcpy(o, p, k);
        o += k;
        if (!hit)
            break;
        memcpy(o, to, tl);
        o += tl;
        p = hit + fl;
    }
    if (out)
        *o = '\0';
    return out;
}

/*
 * The refusal of an uploaded archive as its uploader reads it: named by the
 * file they uploaded, not by the temporary copy under <data_dir>/uploads,
 * and a package that cannot be loaded (a library for another machine,
 * garbage, a bad manifest) is the upload's fault: 400, not 500.
 */
static int upload_error(int rc, const char *path, const char *fn)
{
    char *copy = strdup(path);
    char *full = copy ? replace_all(ph_error_last(), path, fn) : NULL;
    char *text = full ? replace_all(full, basename(copy), fn) : NULL;
    if (rc == PH_ELOAD || rc == PH_EABI || rc == PH_EMANIFEST)
        rc = PH_EARGS;
    if (text)
        rc = ph_error_set(rc, "%s", text);
    free(text);
    free(full);
    free(copy);
    return rc;
}

/* {"filename": "NAME-VERSION.phpkg", "data": base64}: installs an uploaded archive. */
static int upload(ph_host *h, const char *name, json_t **out)
{
    json_t *a = NULL;
    unsigned char *bin = NULL;
    char *path = NULL;
    int rc =
        op_args("upload", name, "{\"filename\": \"NAME-VERSION.phpkg\", \"data\": BASE64}", &a);
    if (rc)
        return rc;
    const char *fn = json_string_value(json_object_get(a, "filename"));
    const char *b64 = json_string_value(json_object_get(a, "data"));
    size_t blen = b64 ? strlen(b64) : 0, len = 0;
    if (!fn || !ph_dist_is(fn) || strlen(fn) > 200) {
        rc = ph_error_set(PH_EARGS,
                          "upload a distribution archive: a file named NAME-VERSION%s, as "
                          "`plughost pack` writes it",
                          PH_DIST_SUFFIX);
        goto cleanup;
    }
    if (!b64 || !blen) {
        rc = ph_error_set(PH_EARGS, "the upload of %s holds no data", fn);
        goto cleanup;
    }
    if (blen / 4 * 3 > PH_MANAGE_UPLOAD_MAX) {
        rc = ph_error_set(PH_ETOOBIG,
                          "%s is larger than the %u MiB an upload may be; install it "
                          "from a path on the host instead",
                          fn, PH_MANAGE_UPLOAD_MAX >> 20);
        goto cleanup;
    }
    if (!(bin = malloc(blen / 4 * 3 + 3))) {
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (sodium_base642bin(bin, blen / 4 * 3 + 3, b64, blen, " \r\n", &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        rc = ph_error_set(PH_EARGS, "the upload of %s is not valid base64", fn);
        goto cleanup;
    }
    if ((rc = save_upload(h, fn, bin, len, &path)))
        goto cleanup;
    rc = ph_install(h, path, out);
    unlink(path);
    if (rc)
        rc = upload_error(rc, path, fn);
    if (!rc)
        json_object_set_new(*out, "archive", json_string(fn));
    if (!rc && json_object_set_new(*out, "operation", json_string("upload")))
        rc = ph_error_set(PH_ENOMEM, "out of memory");
cleanup:
    free(path);
    free(bin);
    json_decref(a);
    return rc;
}

/* The instances of package `pkg` in the plan (names copied). */
static json_t *instances_of(ph_host *h, const char *pkg)
{
    json_t *arr = json_array();
    pthread_rwlock_rdlock(&h->lock);
    for (size_t i = 0; arr && i < h->plan.n; i++)
        if (h->plan.items[i].manifest && !strcmp(h->plan.items[i].manifest->name, pkg))
            json_array_append_new(arr, json_string(h->plan.items[i].instance));
    pthread_rwlock_unlock(&h->lock);
    return arr;
}

/* After a removal: where each instance's data is kept, or its purge backup. */
static json_t *instance_data(ph_host *h, json_t *insts, bool purge)
{
    json_t *arr = json_array(), *v;
    char *data_dir = data_dir_copy(h);
    size_t i;
    if (!data_dir)
        return arr;
    json_array_foreach(insts, i, v)
    {
        const char *inst = json_string_value(v);
        json_t *d = NULL;
        char *backup = NULL;
        if (purge) {
            int rc = ph_store_purge(data_dir, inst, &backup);
            if (rc == 0)
                json_array_append_new(arr,
                                      json_pack("{s:s,s:s,s:s}", "instance", inst, "result",
                                                "data deleted after a backup", "backup", backup));
            else if (rc != PH_ENOTFOUND)
                json_array_append_new(
                    arr, json_pack("{s:s,s:s}", "instance", inst, "error", ph_error_last()));
            free(backup);
        } else if (ph_store_describe(data_dir, inst, &d) == 0 && d) {
            json_array_append_new(arr, json_pack("{s:s,s:s,s:O?}", "instance", inst, "result",
                                                 "data kept; reinstalling finds it", "path",
                                                 json_object_get(d, "path")));
            json_decref(d);
        }
    }
    ph_error_clear();
    free(data_dir);
    return arr;
}

/*
 * Removes `spec` (NAME or NAME@VERSION, ph_uninstall), then keeps or purges
 * the data of each instance the package had (none when only a version no
 * instance ran went).
 */
static int remove_with_data(ph_host *h, const char *spec, bool purge, json_t **out)
{
    char *name = strndup(spec, strcspn(spec, "@"));
    json_t *insts = name ? instances_of(h, name) : NULL;
    int rc = insts ? ph_uninstall(h, spec, purge, out) : ph_error_set(PH_ENOMEM, "out of memory");
    if (rc)
        goto cleanup;
    if (strcmp(json_string_value(json_object_get(*out, "result")), "removed; data kept") != 0)
        json_array_clear(insts); /* a version beside others: the instances run another */
    else if (purge)
        json_object_set_new(*out, "result", json_string("removed; data deleted after a backup"));
    json_object_set_new(*out, "operation", json_string("remove"));
    json_object_set_new(*out, "purge", json_boolean(purge));
    json_object_set_new(*out, "data", instance_data(h, insts, purge));
    if (json_array_size(insts)) { /* never a plain "removed" while package code still runs */
        ph_residue_settle(name);
        add_outlived(*out, name);
    }
cleanup:
    json_decref(insts);
    free(name);
    return rc;
}

/* {"name": PACKAGE, "purge": bool}: remove, then keep or purge each instance's data. */
static int uninstall(ph_host *h, const char *name, json_t **out)
{
    json_t *a = NULL;
    int rc = op_args("uninstall", name, "{\"name\": PACKAGE, \"purge\": false}", &a);
    if (rc)
        return rc;
    const char *pkg = json_string_value(json_object_get(a, "name"));
    if (!pkg)
        rc = ph_error_set(PH_EARGS, "'uninstall' needs \"name\"");
    else /* every instance's callbacks run, then every instance is disabled (ph_uninstall) */
        rc = remove_with_data(h, pkg, json_is_true(json_object_get(a, "purge")), out);
    json_decref(a);
    return rc;
}

/* Applies host.ini as SIGHUP does, where `plughost run` waits for SIGHUP. */
static bool apply_config(void)
{
    sigset_t set;
    if (pthread_sigmask(SIG_BLOCK, NULL, &set) != 0 || !sigismember(&set, SIGHUP))
        return false; /* not the daemon (e.g. `plughost call`): SIGHUP would end the process */
    return kill(getpid(), SIGHUP) == 0;
}

/* Frees what params_kv and ph_kv_append built. */
static void free_kv(ph_kv *kv, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        free(kv[k].key);
        free(kv[k].value);
    }
    free(kv);
}

/*
 * Parameters {key: string|number|bool|null} appended to *kv as host.ini
 * lines (copies; NULL value: delete the line, unless `skip_null`).
 */
static int params_kv(json_t *params, bool skip_null, ph_kv **kv, size_t *n)
{
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v)
    {
        char *text = NULL;
        if (json_is_string(v))
            text = strdup(json_string_value(v));
        else if (json_is_integer(v) &&
                 asprintf(&text, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
            text = NULL;
        else if (json_is_boolean(v))
            text = strdup(json_is_true(v) ? "true" : "false");
        else if (!json_is_null(v) && !json_is_integer(v))
            return ph_error_set(PH_EARGS,
                                "parameter '%s' must be a string, a number, true/false "
                                "or null (back to the package's default)",
                                key);
        if (!text && !json_is_null(v))
            return ph_error_set(PH_ENOMEM, "out of memory");
        if (!text && skip_null)
            continue;
        ph_kv *more = realloc(*kv, (*n + 1) * sizeof **kv);
        char *k = strdup(key);
        if (more)
            *kv = more;
        if (!more || !k) {
            free(text);
            free(k);
            return ph_error_set(PH_ENOMEM, "out of memory");
        }
        (*kv)[*n] = (ph_kv){k, text, 0};
        (*n)++;
    }
    return 0;
}

/* The answer of instance_new/instance_set: where it was written and whether it is applied. */
static int config_written(const char *path, const char *op, const char *inst, json_t **out)
{
    bool applied = apply_config();
    *out = json_pack("{s:s,s:s,s:s,s:b,s:s}", "operation", op, "instance", inst, "config", path,
                     "applying", applied, "result",
                     applied ? "written to host.ini; the host applies it now (as on SIGHUP)"
                             : "written to host.ini; send SIGHUP to the host to apply it");
    return *out ? 0 : ph_error_set(PH_ENOMEM, "out of memory");
}

/*
 * A copy of the host.ini path into *path (a configuration reload replaces
 * h->cfg under h->lock); PH_ESTATE when the host runs without one.
 */
static int config_path(ph_host *h, char **path)
{
    pthread_rwlock_rdlock(&h->lock);
    *path = h->cfg.path ? strdup(h->cfg.path) : NULL;
    bool none = !h->cfg.path;
    pthread_rwlock_unlock(&h->lock);
    if (none)
        return ph_error_set(PH_ESTATE, "the host was started without a host.ini, so there is no "
                                       "file to write instances to; start it with -c host.ini");
    return *path ? 0 : ph_error_set(PH_ENOMEM, "out of memory");
}

/* How long instance_new waits for the host to start the new instance (below a call's limit). */
#define PH_MANAGE_NEW_WAIT_MS 20000

/*
 * Waits (bounded) until the host applied host.ini and instance `inst`
 * settled: true with its state (and reason, malloc'd, or NULL) when it did.
 */
static bool await_instance(ph_host *h, const char *inst, char *state, size_t size, char **reason)
{
    *reason = NULL;
    for (int waited = 0; waited < PH_MANAGE_NEW_WAIT_MS; waited += 50) {
        pthread_rwlock_rdlock(&h->lock);
        long i = ph_plan_find(&h->plan, inst);
        const char *why = NULL, *st = i >= 0 ? ph_host_item_state(h, (size_t)i, &why) : "";
        bool settled =
            i >= 0 && strcmp(st, "planned") && strcmp(st, "loaded") && strcmp(st, "prepared");
        if (settled) {
            snprintf(state, size, "%s", st);
            *reason = why ? strdup(why) : NULL;
        }
        pthread_rwlock_unlock(&h->lock);
        if (settled)
            return true;
        usleep(50000);
    }
    return false;
}

/* The bytes of host.ini (malloc'd, *len), or NULL with the error set. */
static char *read_config(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t cap = 0;
    *len = 0;
    if (!f) {
        ph_error_set(PH_EIO, "cannot read %s: %s", path, ph_strerror(errno));
        return NULL;
    }
    for (;;) {
        if (*len + 4096 + 1 > cap) {
            char *more = cap > (1u << 24) ? NULL : realloc(text, cap = *len + 65536);
            if (!more) {
                free(text);
                fclose(f);
                ph_error_set(PH_ENOMEM, "out of memory reading %s", path);
                return NULL;
            }
            text = more;
        }
        size_t got = fread(text + *len, 1, 4096, f);
        *len += got;
        if (got < 4096)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(text);
        ph_error_set(PH_EIO, "cannot read %s", path);
        return NULL;
    }
    text[*len] = '\0';
    return text;
}

/* Puts back the host.ini `text` (len bytes) that instance_new replaced: written beside, renamed. */
static int restore_config(const char *path, const char *text, size_t len)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.rollback", path) < 0)
        return ph_error_set(PH_ENOMEM, "out of memory");
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f || fwrite(text, 1, len, f) != len || fflush(f) || fsync(fileno(f)))
        rc = ph_error_set(PH_EIO, "cannot write %s: %s", tmp, ph_strerror(errno));
    if (f && fclose(f) && !rc)
        rc = ph_error_set(PH_EIO, "cannot write %s: %s", tmp, ph_strerror(errno));
    if (!rc && rename(tmp, path))
        rc = ph_error_set(PH_EIO, "cannot replace %s: %s", path, ph_strerror(errno));
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

/*
 * The new instance applied by the host: running (or another settled state)
 * is the answer's "state"; a failed or declined start (after_instantiate
 * failed, ...) rolls host.ini back to `before` and is the answer.
 */
static int new_instance_outcome(ph_host *h, const char *path, const char *inst, const char *before,
                                size_t len, json_t *out)
{
    char state[32], *why = NULL;
    if (!await_instance(h, inst, state, sizeof state, &why))
        return 0; /* not settled in time: "the host applies it now" stays true */
    int rc = 0;
    if (strcmp(state, "failed") && strcmp(state, "declined")) {
        json_object_set_new(out, "state", json_string(state));
    } else {
        pthread_mutex_lock(&config_write_mu);
        int back = restore_config(path, before, len);
        pthread_mutex_unlock(&config_write_mu);
        char *not_back = back ? strdup(ph_error_last()) : NULL;
        bool applied = !back && apply_config();
        rc = ph_error_set(PH_EPACKAGE, "instance '%s' did not start (%s): %s; %s%s", inst, state,
                          why ? why : "no reason given",
                          back      ? "it stays in host.ini, which could not be rolled back: "
                          : applied ? "host.ini is rolled back (the section is removed) and the "
                                      "host applies that now"
                                    : "host.ini is rolled back (the section is removed); send "
                                      "SIGHUP to the host to apply it",
                          not_back ? not_back : "");
        free(not_back);
    }
    free(why);
    return rc;
}

/* {"instance", "package", "mount"?, "parameters"?}: a new [instance NAME] in host.ini. */
static int instance_new(ph_host *h, const char *name, json_t **out)
{
    char *path = NULL, *before = NULL;
    size_t before_len = 0;
    json_t *a = NULL;
    ph_kv *kv = NULL;
    size_t n = 0;
    int rc = op_args("instance_new", name,
                     "{\"instance\": NAME, \"package\": PACKAGE, \"mount\": \"/path\", "
                     "\"parameters\": {}}",
                     &a);
    if (rc || (rc = config_path(h, &path)))
        goto cleanup;
    const char *inst = json_string_value(json_object_get(a, "instance"));
    const char *pkg = json_string_value(json_object_get(a, "package"));
    const char *mount = json_string_value(json_object_get(a, "mount"));
    json_t *params = json_object_get(a, "parameters");
    if (!inst || !pkg) {
        rc = ph_error_set(PH_EARGS, "a new instance needs \"instance\" (its name) and "
                                    "\"package\"");
        goto cleanup;
    }
    if ((rc = ph_config_check_name("instance", inst, PH_EARGS)))
        goto cleanup;
    pthread_rwlock_rdlock(&h->lock);
    long at = ph_plan_find(&h->plan, inst), def = ph_plan_find(&h->plan, pkg);
    bool known = false;
    const char *undeclared = NULL, *mount_of = NULL;
    char *declared = NULL; /* the package's parameter names, for the refusal */
    for (size_t i = 0; i < h->set.n && !known; i++) {
        const ph_manifest *pm = h->set.items[i];
        if (!(known = !strcmp(pm->name, pkg)))
            continue;
        const char *key;
        json_t *v;
        if (json_is_object(params))
            json_object_foreach(params, key, v)
            {
                bool found = false;
                for (size_t k = 0; k < pm->n_params && !found; k++)
                    found = !strcmp(pm->params[k].key, key);
                if (!found && !undeclared)
                    undeclared = key;
            }
        for (size_t k = 0; undeclared && k < pm->n_params; k++) {
            char *more = NULL;
            if (asprintf(&more, "%s%s%s", declared ? declared : "", declared ? ", " : "",
                         pm->params[k].key) < 0)
                more = NULL;
            free(declared);
            declared = more;
        }
    }
    /* another instance already answers under this mount ("/NAME" when none is given) */
    char *want = NULL;
    if (mount && *mount)
        want = strdup(mount);
    else if (asprintf(&want, "/%s", inst) < 0)
        want = NULL;
    for (size_t i = 0; want && i < h->plan.n && !mount_of; i++)
        if (h->plan.items[i].mount && !strcmp(h->plan.items[i].mount, want))
            mount_of = h->plan.items[i].instance;
    for (size_t i = 0; want && i < h->cfg.n_instances && !mount_of; i++)
        if (h->cfg.instances[i].mount && !strcmp(h->cfg.instances[i].mount, want))
            mount_of = h->cfg.instances[i].name;
    /* a configured package has only the instances host.ini lists: keep its default one */
    bool keep_default = def >= 0 && !h->plan.items[def].conf && h->plan.items[def].manifest &&
                        !strcmp(h->plan.items[def].manifest->name, pkg);
    bool taken = at >= 0 || ph_config_instance(&h->cfg, inst);
    if (!taken && known && undeclared)
        rc = ph_error_set(PH_EARGS,
                          "package '%s' declares no parameter '%s'; its parameters are: %s", pkg,
                          undeclared, declared ? declared : "(none)");
    else if (!taken && known && mount_of)
        rc = ph_error_set(PH_ECONFLICT,
                          "instance '%s' is mounted at %s already; choose another mount", mount_of,
                          want);
    free(declared);
    free(want);
    pthread_rwlock_unlock(&h->lock);
    if (rc)
        goto cleanup;
    if (taken) {
        rc = ph_error_set(PH_ECONFLICT,
                          "an instance named '%s' exists already; choose another "
                          "name",
                          inst);
        goto cleanup;
    }
    if (!known) {
        rc = ph_error_set(PH_ENOTFOUND, "no package '%s' is installed; install it first", pkg);
        goto cleanup;
    }
    if ((rc = ph_kv_append(&kv, &n, "package", pkg, 0)) ||
        (mount && *mount && (rc = ph_kv_append(&kv, &n, "mount", mount, 0))))
        goto cleanup;
    if (params && !json_is_object(params))
        rc = ph_error_set(PH_EARGS, "\"parameters\" is an object {name: value}");
    else if (params)
        rc = params_kv(params, true, &kv, &n);
    if (!rc && !(before = read_config(path, &before_len)))
        rc = ph_error_last_code();
    if (!rc && keep_default)
        rc = write_instance(path, pkg, kv, 1); /* package = PKG */
    if (!rc && !(rc = write_instance(path, inst, kv, n)))
        rc = config_written(path, "instance_new", inst, out);
    if (!rc && json_is_true(json_object_get(*out, "applying")) &&
        (rc = new_instance_outcome(h, path, inst, before, before_len, *out))) {
        json_decref(*out);
        *out = NULL;
    }
cleanup:
    free(before);
    free(path);
    free_kv(kv, n);
    json_decref(a);
    return rc;
}

/* {"instance", "parameters": {key: value|null}}: an instance's parameters in host.ini. */
static int instance_set(ph_host *h, const char *name, json_t **out)
{
    char *path = NULL;
    json_t *a = NULL;
    ph_kv *kv = NULL;
    size_t n = 0;
    int rc =
        op_args("instance_set", name, "{\"instance\": NAME, \"parameters\": {name: value}}", &a);
    if (rc || (rc = config_path(h, &path)))
        goto cleanup;
    const char *inst = json_string_value(json_object_get(a, "instance"));
    json_t *params = json_object_get(a, "parameters");
    if (!inst || !json_is_object(params)) {
        rc = ph_error_set(PH_EARGS, "give \"instance\" and \"parameters\" {name: value}");
        goto cleanup;
    }
    pthread_rwlock_rdlock(&h->lock);
    long at = ph_plan_find(&h->plan, inst);
    bool declared = true;
    const char *undeclared = NULL;
    const ph_manifest *m = at >= 0 ? h->plan.items[at].manifest : NULL;
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v)
    {
        bool found = false;
        for (size_t k = 0; m && k < m->n_params && !found; k++)
            found = !strcmp(m->params[k].key, key);
        if (m && !found && declared) {
            declared = false;
            undeclared = key;
        }
    }
    if (!declared)
        rc = ph_error_set(PH_EARGS,
                          "package '%s' declares no parameter '%s'; its parameters "
                          "are in [parameters] of its package.ini",
                          m->name, undeclared);
    pthread_rwlock_unlock(&h->lock);
    if (rc)
        goto cleanup;
    if (at < 0) {
        rc = ph_error_set(PH_ENOTFOUND, "no instance '%s'; the page lists the instances", inst);
        goto cleanup;
    }
    if ((rc = params_kv(params, false, &kv, &n)))
        goto cleanup;
    if (!(rc = write_instance(path, inst, kv, n)))
        rc = config_written(path, "instance_set", inst, out);
cleanup:
    free(path);
    free_kv(kv, n);
    json_decref(a);
    return rc;
}

/* The page's operations; 1 when `op` is not one of them. */
static int ph_manage_page(ph_host *h, const char *op, const char *name, json_t **out)
{
    if (!strcmp(op, "packages"))
        return name && !strcmp(name, "detail") ? overview(h, out) : 1;
    if (!strcmp(op, "upload"))
        return upload(h, name, out);
    if (!strcmp(op, "uninstall"))
        return uninstall(h, name, out);
    if (!strcmp(op, "instance_new") || !strcmp(op, "instance_set")) {
        /*
         * One edit of host.ini at a time, each until its outcome: two requests for the same
         * new name (a double click, two administrators) must not both be answered 200, nor
         * one's rollback remove the section the other wrote. A second edit meanwhile is
         * refused, not queued: the first waits for the host to apply its change, which a
         * queue of waiting requests could hold up.
         */
        static pthread_mutex_t edit_mu = PTHREAD_MUTEX_INITIALIZER;
        if (pthread_mutex_trylock(&edit_mu))
            return ph_error_set(PH_ECONFLICT,
                                "another change of host.ini from this page is being applied; "
                                "retry once it is done");
        int rc =
            !strcmp(op, "instance_new") ? instance_new(h, name, out) : instance_set(h, name, out);
        pthread_mutex_unlock(&edit_mu);
        return rc;
    }
    return 1;
}
