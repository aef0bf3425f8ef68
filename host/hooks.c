/*
 * Extension points: contributions ([hook E ITEM]) checked against their
 * endpoint's declaration ([endpoint E]), from the manifests alone.
 */
#include "hooks.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "host.h"
#include "text.h"

/*
 * The package declaring `endpoint`, or NULL. When several do (install
 * refuses that, but a package directory may be filled by hand), the first
 * by package name, whatever the order of the package directories.
 */
static const ph_manifest *declarer(const ph_manifest_set *set, const char *endpoint,
                                   const ph_endpoint **ep)
{
    const ph_manifest *dm = NULL;
    *ep = NULL;
    for (size_t i = 0; i < set->n; i++) {
        const ph_endpoint *e = ph_manifest_endpoint(set->items[i], endpoint);
        if (e && (!dm || strcmp(set->items[i]->name, dm->name) < 0)) {
            dm = set->items[i];
            *ep = e;
        }
    }
    return dm;
}

static void add_problem(json_t *problems, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A problem for each other package declaring the endpoint `dm` declares as `ep`. */
static void declared_twice(const ph_manifest_set *set, const ph_manifest *dm, const ph_endpoint *ep,
                           json_t *problems)
{
    for (size_t i = 0; i < set->n; i++) {
        const ph_endpoint *e = ph_manifest_endpoint(set->items[i], ep->name);
        if (e && set->items[i] != dm)
            add_problem(problems,
                        "%s:%d: [endpoint %s] is declared by package '%s' too (%s:%d); an "
                        "endpoint belongs to one package: the contributions go to '%s', the "
                        "first by name",
                        set->items[i]->path, e->line, ep->name, dm->name, dm->path, ep->line,
                        dm->name);
    }
}

static void add_problem(json_t *problems, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_problem(json_t *problems, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n >= 0)
        json_array_append_new(problems, json_string(text));
    if (n >= 0)
        free(text);
}

static const char *item_name(const ph_manifest *m, const ph_hook *hk)
{
    return hk->item ? hk->item : m->name;
}

/* "[hook menu]" or "[hook menu ITEM]" as written. */
static void hook_label(char *buf, size_t size, const ph_hook *hk)
{
    snprintf(buf, size, "[hook %s%s%s]", hk->endpoint, hk->item ? " " : "",
             hk->item ? hk->item : "");
}

static const ph_kv *find_kv(const ph_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return &kv[i];
    return NULL;
}

/*
 * The JSON value of `text` as declared `type` ("int64?" counts as int64)
 * into *out (NULL on no memory): 0, or -1 if `text` is not of the type.
 */
static int typed_value(const char *type, const char *text, json_t **out)
{
    int64_t i;
    double d;
    bool b;
    *out = NULL;
    if (strncmp(type, "int64", 5) == 0 && ph_parse_i64(text, &i) == 0)
        *out = json_integer(i);
    else if (strncmp(type, "double", 6) == 0 && ph_parse_f64(text, &d) == 0)
        *out = json_real(d);
    else if (strncmp(type, "bool", 4) == 0 && ph_parse_bool(text, &b) == 0)
        *out = json_boolean(b);
    else if (strncmp(type, "string", 6) == 0)
        *out = json_string(text);
    else
        return -1;
    return 0;
}

/* The length of a declared type without its '?': "int64?" -> 5. */
static int type_len(const char *type)
{
    size_t n = strlen(type);
    return (int)(n && type[n - 1] == '?' ? n - 1 : n);
}

/*
 * A value of a parameter named "url" is a link a page shows: a relative path
 * ("/notes/", "notes/", "./x") or an http(s) URL, never "javascript:",
 * "data:" and the like, nor "//host" (another site); no blanks, control
 * characters or backslashes (browsers drop or reinterpret them).
 */
static bool safe_url(const char *u)
{
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '\\')
            return false;
    if (!strncasecmp(u, "http://", 7))
        return u[7] != '\0';
    if (!strncasecmp(u, "https://", 8))
        return u[8] != '\0';
    if (u[0] == '/')
        return u[1] != '/';
    size_t head = strcspn(u, "/?#"); /* a ':' before the first '/' would be a scheme */
    return memchr(u, ':', head) == NULL;
}

/*
 * One contribution as a JSON item, or NULL with its problems added (each
 * naming file:line): a value for a parameter the endpoint does not declare,
 * a required parameter missing, a value not of the declared type.
 */
static json_t *check_hook(const ph_manifest *m, const ph_hook *hk, const ph_manifest *dm,
                          const ph_endpoint *ep, json_t *problems)
{
    char label[256];
    hook_label(label, sizeof label, hk);
    json_t *item = json_pack("{s:s,s:s}", "package", m->name, "item", item_name(m, hk));
    bool bad = !item;
    for (size_t k = 0; item && k < hk->n_values; k++) {
        const ph_kv *v = &hk->values[k];
        const ph_kv *p = find_kv(ep->params, ep->n_params, v->key);
        if (!p) {
            add_problem(problems,
                        "%s:%d: '%s' in %s is not a parameter of endpoint '%s' (declared by %s "
                        "in %s:%d); the contribution is left out",
                        m->path, v->line, v->key, label, ep->name, dm->name, dm->path, ep->line);
            bad = true;
            continue;
        }
        if (strcmp(v->key, "url") == 0 && !safe_url(v->value)) {
            add_problem(problems,
                        "%s:%d: 'url' in %s must be a relative path or an http(s) URL, not "
                        "'%.200s'; the contribution is left out",
                        m->path, v->line, label, v->value);
            bad = true;
            continue;
        }
        json_t *val = NULL;
        if (typed_value(p->value, v->value, &val) == 0) {
            bad |= !val || json_object_set_new(item, v->key, val) != 0; /* no memory */
            continue;
        }
        add_problem(problems,
                    "%s:%d: '%s' in %s must be %.*s (endpoint '%s' of %s), not '%s'; the "
                    "contribution is left out",
                    m->path, v->line, v->key, label, type_len(p->value), p->value, ep->name,
                    dm->name, v->value);
        bad = true;
    }
    for (size_t k = 0; item && k < ep->n_params; k++) {
        const ph_kv *p = &ep->params[k];
        if (p->value[strlen(p->value) - 1] == '?' || find_kv(hk->values, hk->n_values, p->key))
            continue;
        add_problem(problems,
                    "%s:%d: %s gives no '%s' (%s), which endpoint '%s' of %s requires (%s:%d); "
                    "the contribution is left out",
                    m->path, hk->line, label, p->key, p->value, ep->name, dm->name, dm->path,
                    p->line);
        bad = true;
    }
    if (bad) {
        json_decref(item);
        return NULL;
    }
    return item;
}

/* Items with an "order" first, by it; then by package, then by item. */
static int by_order(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_t *ox = json_object_get(x, "order"), *oy = json_object_get(y, "order");
    if (json_is_integer(ox) != json_is_integer(oy))
        return json_is_integer(ox) ? -1 : 1;
    if (json_is_integer(ox) && json_integer_value(ox) != json_integer_value(oy))
        return json_integer_value(ox) < json_integer_value(oy) ? -1 : 1;
    int c = strcmp(json_string_value(json_object_get(x, "package")),
                   json_string_value(json_object_get(y, "package")));
    return c ? c
             : strcmp(json_string_value(json_object_get(x, "item")),
                      json_string_value(json_object_get(y, "item")));
}

static json_t *sorted(json_t *items)
{
    size_t n = json_array_size(items);
    json_t **v = n ? calloc(n, sizeof *v) : NULL, *out = json_array();
    if (n && (!v || !out)) {
        free(v);
        json_decref(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(items, i);
    if (n)
        qsort(v, n, sizeof *v, by_order);
    for (size_t i = 0; out && i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    return out;
}

/* Adds the contributions of `m` to `endpoint` (NULL: every endpoint, items not kept). */
static void check_package(const ph_manifest_set *set, const ph_manifest *m, const char *endpoint,
                          json_t *items, json_t *problems)
{
    for (size_t h = 0; h < m->n_hooks; h++) {
        const ph_hook *hk = &m->hooks[h];
        const ph_endpoint *ep = NULL;
        if (endpoint && strcmp(hk->endpoint, endpoint) != 0)
            continue;
        const ph_manifest *dm = declarer(set, hk->endpoint, &ep);
        if (!dm) {
            char label[256];
            hook_label(label, sizeof label, hk);
            add_problem(problems,
                        "%s:%d: %s contributes to endpoint '%s', which no installed package "
                        "declares ([endpoint %s]); the contribution is left out",
                        m->path, hk->line, label, hk->endpoint, hk->endpoint);
            continue;
        }
        json_t *item = check_hook(m, hk, dm, ep, problems);
        if (item && items)
            json_array_append(items, item);
        json_decref(item);
    }
}

int ph_hooks_collect(const ph_manifest_set *set, const char *endpoint, ph_hooks_keep_fn keep,
                     void *ud, json_t **out)
{
    *out = NULL;
    const ph_endpoint *ep = NULL;
    const ph_manifest *dm = declarer(set, endpoint, &ep);
    if (!dm)
        return ph_error_set(PH_ENOTFOUND,
                            "no installed package declares the endpoint '%s'; a package "
                            "declares one with [endpoint %s] in its package.ini",
                            endpoint, endpoint);
    json_t *items = json_array(), *problems = json_array(), *params = json_object();
    for (size_t k = 0; params && k < ep->n_params; k++)
        json_object_set_new(params, ep->params[k].key, json_string(ep->params[k].value));
    if (problems)
        declared_twice(set, dm, ep, problems);
    for (size_t i = 0; items && problems && i < set->n; i++)
        if (!keep || keep(ud, set->items[i]))
            check_package(set, set->items[i], endpoint, items, problems);
    json_t *order = items ? sorted(items) : NULL;
    json_decref(items);
    if (order && problems && params)
        *out = json_pack("{s:s,s:s,s:o,s:o,s:o}", "endpoint", endpoint, "declared_by", dm->name,
                         "parameters", params, "items", order, "problems", problems);
    else {
        json_decref(order);
        json_decref(problems);
        json_decref(params);
    }
    return *out ? 0 : ph_error_set(PH_ENOMEM, "out of memory");
}

json_t *ph_hooks_problems(const ph_manifest_set *set)
{
    json_t *problems = json_array();
    for (size_t i = 0; problems && i < set->n; i++)
        for (size_t e = 0; e < set->items[i]->n_endpoints; e++) {
            const ph_endpoint *ep = NULL;
            const ph_manifest *dm = declarer(set, set->items[i]->endpoints[e].name, &ep);
            if (dm == set->items[i]) /* each endpoint once, from its owner */
                declared_twice(set, dm, ep, problems);
        }
    for (size_t i = 0; problems && i < set->n; i++)
        check_package(set, set->items[i], NULL, NULL, problems);
    return problems;
}

/* ---------------------------------------------------------------- a running host */

static ph_host *_Atomic attached;

void ph_hooks_attach(ph_host *h)
{
    atomic_store(&attached, h);
}

void ph_hooks_detach(ph_host *h)
{
    ph_host *expected = h;
    atomic_compare_exchange_strong(&attached, &expected, NULL);
}

ph_host *ph_hooks_current(void)
{
    return atomic_load(&attached);
}

/* A package contributes while one of its instances runs (h->lock held). */
static int running(void *ud, const ph_manifest *m)
{
    ph_host *h = ud;
    for (size_t i = 0; h->insts && i < h->plan.n; i++) {
        const ph_manifest *pm = h->plan.items[i].manifest;
        ph_instance *inst = h->insts[i];
        if (pm && inst && strcmp(pm->name, m->name) == 0 &&
            atomic_load(&inst->state) == PH_INST_RUNNING)
            return 1;
    }
    return 0;
}

int ph_hooks_list(ph_host *h, const char *endpoint, json_t **out)
{
    pthread_rwlock_rdlock(&h->lock); /* a change replaces the set and the plan */
    int rc = ph_hooks_collect(&h->set, endpoint, running, h, out);
    pthread_rwlock_unlock(&h->lock);
    return rc;
}
