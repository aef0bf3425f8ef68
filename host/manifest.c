/*
 * package.ini: reading one manifest, and discovering packages in directories.
 * No package code runs here.
 */
#include "manifest.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "text.h"
#include "ini.h"
#include "path.h"

#define MANIFEST_FILE "package.ini"
#define PH_SUMMARY_MAX 120

typedef struct dep_list {
    const ph_dep *items;
    size_t n;
    const char *section;
} dep_list;

typedef struct mf_ctx {
    ph_manifest *m;
    const char *section; /* the current known section, NULL before any */
} mf_ctx;

static const char known_sections[] =
    "[package], [requires], [optional], [conflicts], [provides], [parameters], [limits], "
    "[endpoint NAME], [hook ENDPOINT [ITEM]]";

/* Replaces the current error (code and message) by "prefix: <message>" with `code`. */
static int rewrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int rewrap(int code, const char *fmt, ...)
{
    char *prefix = NULL, *msg = strdup(ph_error_last());
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&prefix, fmt, ap);
    va_end(ap);
    if (!msg || n < 0)
        code = ph_error_set(PH_ENOMEM, "out of memory");
    else
        ph_error_set(code, "%s: %s", prefix, msg);
    free(msg);
    if (n >= 0)
        free(prefix);
    return code;
}

static int set_str(char **slot, const char *v)
{
    char *s = strdup(v);
    if (!s)
        return ph_error_set(PH_ENOMEM, "out of memory");
    free(*slot);
    *slot = s;
    return 0;
}

/* ---------------------------------------------------------------- metadata */

/* SPDX license expressions (SPDX spec, annex D), checked for shape only. */
typedef struct spdx {
    const char *p;
    const char *why;
} spdx;

static int spdx_expr(spdx *s);

static void spdx_blanks(spdx *s)
{
    while (*s->p == ' ')
        s->p++;
}

static size_t spdx_id_len(const char *p)
{
    size_t n = 0;
    while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
           (p[n] >= '0' && p[n] <= '9') || p[n] == '.' || p[n] == '-' || p[n] == ':')
        n++;
    return n;
}

/* True if the next word is the operator `op` (then skipped). */
static int spdx_op(spdx *s, const char *op)
{
    size_t n = strlen(op);
    spdx_blanks(s);
    if (strncmp(s->p, op, n) != 0 || spdx_id_len(s->p) != n)
        return 0;
    s->p += n;
    return 1;
}

static int spdx_id(spdx *s)
{
    spdx_blanks(s);
    size_t n = spdx_id_len(s->p);
    if (!n || (n == 2 && strncmp(s->p, "OR", 2) == 0) || (n == 3 && strncmp(s->p, "AND", 3) == 0) ||
        (n == 4 && strncmp(s->p, "WITH", 4) == 0)) {
        s->why = "a license identifier is missing";
        return -1;
    }
    s->p += n;
    return 0;
}

static int spdx_atom(spdx *s)
{
    spdx_blanks(s);
    if (*s->p == '(') {
        s->p++;
        if (spdx_expr(s))
            return -1;
        spdx_blanks(s);
        if (*s->p != ')') {
            s->why = "a '(' is not closed";
            return -1;
        }
        s->p++;
        return 0;
    }
    if (spdx_id(s))
        return -1;
    if (*s->p == '+')
        s->p++;
    if (spdx_op(s, "WITH"))
        return spdx_id(s);
    return 0;
}

static int spdx_expr(spdx *s)
{
    if (spdx_atom(s))
        return -1;
    while (spdx_op(s, "AND") || spdx_op(s, "OR"))
        if (spdx_atom(s))
            return -1;
    return 0;
}

static int check_license(const char *v)
{
    spdx s = {v, NULL};
    if (!spdx_expr(&s)) {
        spdx_blanks(&s);
        if (*s.p)
            s.why = *s.p == ')' ? "a ')' has no '('"
                                : "identifiers are joined by AND, OR or WITH (upper case)";
    }
    if (!s.why)
        return 0;
    return ph_error_set(PH_EMANIFEST,
                        "'license' in [package] must be an SPDX license expression such as "
                        "MIT or 'Apache-2.0 OR MIT', not '%s': %s",
                        v, s.why);
}

static int check_url(const char *v)
{
    const char *rest = strncmp(v, "https://", 8) == 0  ? v + 8
                       : strncmp(v, "http://", 7) == 0 ? v + 7
                                                       : NULL;
    if (rest && *rest && *rest != '/' && !strpbrk(v, " \t\"<>"))
        return 0;
    return ph_error_set(PH_EMANIFEST,
                        "'url' in [package] must be an http:// or https:// address such as "
                        "https://example.org/notes, not '%s'",
                        v);
}

/* [package] metadata keys: 0 or an error if `key` is one, 1 if it is not. */
static int set_meta_key(ph_manifest *m, const char *key, const char *v)
{
    char **slot = strcmp(key, "author") == 0    ? &m->author
                  : strcmp(key, "url") == 0     ? &m->url
                  : strcmp(key, "license") == 0 ? &m->license
                  : strcmp(key, "summary") == 0 ? &m->summary
                  : strcmp(key, "kind") == 0    ? &m->kind
                                                : NULL;
    if (!slot)
        return 1;
    if (!*v)
        return ph_error_set(PH_EMANIFEST, "'%s' in [package] is empty; remove the line or fill it",
                            key);
    int rc = slot == &m->url ? check_url(v) : slot == &m->license ? check_license(v) : 0;
    if (slot == &m->summary && strlen(v) > PH_SUMMARY_MAX)
        rc = ph_error_set(PH_EMANIFEST,
                          "'summary' in [package] is %zu characters; keep it to one line of at "
                          "most %d (the description can be longer)",
                          strlen(v), PH_SUMMARY_MAX);
    if (slot == &m->kind && strcmp(v, "application") != 0 && strcmp(v, "service") != 0)
        rc = ph_error_set(PH_EMANIFEST,
                          "'kind' in [package] must be application (mounted, used by people) or "
                          "service (used by other packages), not '%s'",
                          v);
    return rc ? rc : set_str(slot, v);
}

static int set_package_key(mf_ctx *x, const char *key, const char *v)
{
    ph_manifest *m = x->m;
    if (strcmp(key, "name") == 0) {
        if (ph_config_check_name("package", v, PH_EMANIFEST))
            return rewrap(PH_EMANIFEST, "'name' in [package]");
        return set_str(&m->name, v);
    }
    if (strcmp(key, "version") == 0) {
        if (ph_semver_parse(v, &m->version))
            return rewrap(PH_EMANIFEST, "'version' in [package]");
        return set_str(&m->version_text, v);
    }
    if (strcmp(key, "description") == 0)
        return set_str(&m->description, v);
    if (strcmp(key, "abi") == 0) {
        char *end = NULL;
        errno = 0;
        long abi = strtol(v, &end, 10);
        if (!*v || *end || errno || abi < 1 || abi > INT_MAX || *v == '+' || *v == ' ')
            return ph_error_set(PH_EMANIFEST,
                                "'abi' in [package] must be a positive integer "
                                "such as 1, not '%s'",
                                v);
        m->abi = (int)abi;
        return 0;
    }
    if (strcmp(key, "library") == 0) {
        if (!*v)
            return ph_error_set(PH_EMANIFEST, "'library' in [package] is empty; remove the line "
                                              "to use <name>.so, or name the file");
        return set_str(&m->library, v);
    }
    bool *flag = strcmp(key, "disable_crud") == 0 ? &m->disable_crud
                 : strcmp(key, "manager") == 0    ? &m->manager
                                                  : NULL;
    if (flag) {
        if (ph_parse_bool(v, flag))
            return ph_error_set(PH_EMANIFEST, "'%s' in [package] must be true or false, not '%s'",
                                key, v);
        return 0;
    }
    int rc = set_meta_key(m, key, v);
    if (rc != 1)
        return rc;
    return ph_error_set(PH_EMANIFEST,
                        "unknown key '%s' in [package]; known keys: name, version, "
                        "description, abi, library, disable_crud, manager, author, url, "
                        "license, summary, kind",
                        key);
}

static int add_dep(ph_dep **items, size_t *n, const char *section, const char *key, const char *v,
                   int line)
{
    ph_range range;
    if (ph_config_check_name("package", key, PH_EMANIFEST))
        return rewrap(PH_EMANIFEST, "[%s]", section);
    if (ph_range_parse(v, &range))
        return rewrap(PH_EMANIFEST, "'%s' in [%s]", key, section);
    ph_dep *nd = reallocarray(*items, *n + 1, sizeof *nd);
    if (!nd)
        return ph_error_set(PH_ENOMEM, "out of memory");
    *items = nd;
    nd[*n].name = strdup(key);
    if (!nd[*n].name)
        return ph_error_set(PH_ENOMEM, "out of memory");
    nd[*n].range = range;
    nd[*n].line = line;
    (*n)++;
    return 0;
}

static int add_provide(ph_manifest *m, const char *key, const char *v, int line)
{
    ph_semver version;
    if (ph_config_check_name("capability", key, PH_EMANIFEST))
        return rewrap(PH_EMANIFEST, "[provides]");
    if (ph_semver_parse(v, &version))
        return rewrap(PH_EMANIFEST, "'%s' in [provides] (the version of %s it provides)", key, key);
    ph_provide *np = reallocarray(m->provides, m->n_provides + 1, sizeof *np);
    if (!np)
        return ph_error_set(PH_ENOMEM, "out of memory");
    m->provides = np;
    np[m->n_provides] = (ph_provide){strdup(key), strdup(v), version, line};
    m->n_provides++;
    if (!np[m->n_provides - 1].name || !np[m->n_provides - 1].version_text)
        return ph_error_set(PH_ENOMEM, "out of memory");
    return 0;
}

static int add_param(ph_manifest *m, const char *key, const char *v, int line)
{
    return ph_kv_append(&m->params, &m->n_params, key, v, line);
}

/* ---------------------------------------------------------------- extension points */

/* The words of "endpoint NAME" or "hook ENDPOINT [ITEM]": 1 to 3 names, blanks between. */
static int split_words(const char *section, char *words[3], size_t *n)
{
    *n = 0;
    for (const char *p = section; *p;) {
        while (ph_ini_is_blank(*p))
            p++;
        if (!*p)
            break;
        size_t len = 0;
        while (p[len] && !ph_ini_is_blank(p[len]))
            len++;
        if (*n == 3)
            return 1;
        if (!(words[(*n)++] = strndup(p, len)))
            return ph_error_set(PH_ENOMEM, "out of memory");
        p += len;
    }
    return 0;
}

static int add_endpoint(mf_ctx *x, char *name, int line)
{
    ph_manifest *m = x->m;
    for (size_t i = 0; i < m->n_endpoints; i++)
        if (strcmp(m->endpoints[i].name, name) == 0)
            return ph_error_set(PH_EMANIFEST, "[endpoint %s] is declared twice (first on line %d)",
                                name, m->endpoints[i].line);
    ph_endpoint *ne = reallocarray(m->endpoints, m->n_endpoints + 1, sizeof *ne);
    if (!ne)
        return ph_error_set(PH_ENOMEM, "out of memory");
    m->endpoints = ne;
    ne[m->n_endpoints++] = (ph_endpoint){.name = name, .line = line};
    x->section = "endpoint";
    return 0;
}

static int add_hook(mf_ctx *x, char *endpoint, char *item, int line)
{
    ph_manifest *m = x->m;
    for (size_t i = 0; i < m->n_hooks; i++)
        if (strcmp(m->hooks[i].endpoint, endpoint) == 0 &&
            strcmp(m->hooks[i].item ? m->hooks[i].item : "", item ? item : "") == 0)
            return ph_error_set(PH_EMANIFEST,
                                "[hook %s%s%s] is given twice (first on line %d); give each "
                                "item its own name: [hook %s ITEM]",
                                endpoint, item ? " " : "", item ? item : "", m->hooks[i].line,
                                endpoint);
    ph_hook *nh = reallocarray(m->hooks, m->n_hooks + 1, sizeof *nh);
    if (!nh)
        return ph_error_set(PH_ENOMEM, "out of memory");
    m->hooks = nh;
    nh[m->n_hooks++] = (ph_hook){.endpoint = endpoint, .item = item, .line = line};
    x->section = "hook";
    return 0;
}

/* [endpoint NAME] and [hook ENDPOINT [ITEM]]: 0, 1 if `section` is neither, or an error. */
static int on_ext_section(mf_ctx *x, const char *section, int line)
{
    char *w[3] = {NULL, NULL, NULL};
    size_t n = 0;
    int rc = split_words(section, w, &n);
    int is_ep = rc >= 0 && n && strcmp(w[0], "endpoint") == 0;
    int is_hook = rc >= 0 && n && strcmp(w[0], "hook") == 0;
    if (rc < 0 || (!is_ep && !is_hook)) {
        rc = rc < 0 ? rc : 1;
        goto cleanup;
    }
    if (rc || n < 2 || (is_ep && n > 2)) {
        rc = ph_error_set(PH_EMANIFEST, "[%s] is not a section; write %s", section,
                          is_ep ? "[endpoint NAME]" : "[hook ENDPOINT] or [hook ENDPOINT ITEM]");
        goto cleanup;
    }
    for (size_t i = 1; i < n; i++)
        if ((rc = ph_config_check_name(i == 1 ? "endpoint" : "item", w[i], PH_EMANIFEST))) {
            rewrap(PH_EMANIFEST, "[%s]", section);
            goto cleanup;
        }
    rc = is_ep ? add_endpoint(x, w[1], line) : add_hook(x, w[1], n > 2 ? w[2] : NULL, line);
    if (!rc)
        w[1] = w[2] = NULL; /* taken */
cleanup:
    for (size_t i = 0; i < 3; i++)
        free(w[i]);
    return rc;
}

/* "string", "int64", "double" or "bool", optionally followed by '?'. */
static int check_param_type(const char *ep, const char *key, const char *v)
{
    static const char *const types[] = {"string", "int64", "double", "bool"};
    size_t len = strlen(v);
    if (len && v[len - 1] == '?')
        len--;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strlen(types[i]) == len && strncmp(v, types[i], len) == 0)
            return 0;
    return ph_error_set(PH_EMANIFEST,
                        "'%s' in [endpoint %s] has type '%s'; the types are string, int64, "
                        "double and bool, with '?' after one for an optional parameter "
                        "(order = int64?)",
                        key, ep, v);
}

static int add_ext_value(mf_ctx *x, const char *key, const char *v, int line)
{
    ph_manifest *m = x->m;
    if (strcmp(x->section, "endpoint") == 0) {
        ph_endpoint *e = &m->endpoints[m->n_endpoints - 1];
        if (ph_config_check_name("parameter", key, PH_EMANIFEST))
            return rewrap(PH_EMANIFEST, "[endpoint %s]", e->name);
        if (check_param_type(e->name, key, v))
            return PH_EMANIFEST;
        return ph_kv_append(&e->params, &e->n_params, key, v, line)
                   ? ph_error_set(PH_ENOMEM, "out of memory")
                   : 0;
    }
    ph_hook *hk = &m->hooks[m->n_hooks - 1];
    return ph_kv_append(&hk->values, &hk->n_values, key, v, line)
               ? ph_error_set(PH_ENOMEM, "out of memory")
               : 0;
}

const ph_endpoint *ph_manifest_endpoint(const ph_manifest *m, const char *name)
{
    for (size_t i = 0; m && i < m->n_endpoints; i++)
        if (strcmp(m->endpoints[i].name, name) == 0)
            return &m->endpoints[i];
    return NULL;
}

static void free_kvs(ph_kv *kv, size_t n)
{
    for (size_t i = 0; kv && i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static void free_ext(ph_manifest *m)
{
    for (size_t i = 0; m->endpoints && i < m->n_endpoints; i++) {
        free(m->endpoints[i].name);
        free_kvs(m->endpoints[i].params, m->endpoints[i].n_params);
    }
    free(m->endpoints);
    for (size_t i = 0; m->hooks && i < m->n_hooks; i++) {
        free(m->hooks[i].endpoint);
        free(m->hooks[i].item);
        free_kvs(m->hooks[i].values, m->hooks[i].n_values);
    }
    free(m->hooks);
    free(m->author);
    free(m->url);
    free(m->license);
    free(m->summary);
    free(m->kind);
}

/* ---------------------------------------------------------------- sections */

static int on_section(mf_ctx *x, const char *section, int line)
{
    int ext = on_ext_section(x, section, line);
    if (ext != 1)
        return ext;
    static const char *const known[] = {"package", "requires",   "optional", "conflicts",
                                        "limits",  "parameters", "provides"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(section, known[i]) == 0) {
            x->section = known[i];
            return 0;
        }
    }
    return ph_error_set(PH_EMANIFEST, "unknown section [%s]; known sections: %s", section,
                        known_sections);
}

/* [limits]: call_timeout, or ACTOR.METHOD, = seconds. */
static int add_limit(ph_manifest *m, const char *key, const char *v, int line)
{
    int ms;
    const char *dot = strchr(key, '.');
    if (strcmp(key, "call_timeout") != 0 && strcmp(key, "stop_timeout") != 0 &&
        (!dot || dot == key || !dot[1] || strchr(dot + 1, '.')))
        return ph_error_set(PH_EMANIFEST,
                            "unknown key '%s' in [limits]; known keys: call_timeout (every "
                            "method), ACTOR.METHOD (one method) and stop_timeout (stop())",
                            key);
    for (size_t i = 0; i < m->n_limits; i++)
        if (strcmp(m->limits[i].key, key) == 0)
            return ph_error_set(PH_EMANIFEST, "'%s' is set twice in [limits] (first on line %d)",
                                key, m->limits[i].line);
    if (ph_config_parse_seconds(v, &ms))
        return ph_error_set(PH_EMANIFEST,
                            "'%s' in [limits] must be seconds from 0.001 to 86400 (such as 30 "
                            "or 2.5), not '%s'",
                            key, v);
    return ph_kv_append(&m->limits, &m->n_limits, key, v, line)
               ? ph_error_set(PH_ENOMEM, "out of memory")
               : 0;
}

int ph_manifest_stop_timeout(const ph_manifest *m)
{
    int ms = 0;
    for (size_t i = 0; m && i < m->n_limits; i++)
        if (strcmp(m->limits[i].key, "stop_timeout") == 0)
            ph_config_parse_seconds(m->limits[i].value, &ms);
    return ms;
}

int ph_manifest_call_timeout(const ph_manifest *m, const char *actor, const char *method)
{
    int ms = 0, all = 0;
    size_t al = strlen(actor);
    for (size_t i = 0; m && i < m->n_limits; i++) {
        const char *k = m->limits[i].key;
        if (strcmp(k, "call_timeout") == 0)
            ph_config_parse_seconds(m->limits[i].value, &all);
        else if (strncmp(k, actor, al) == 0 && k[al] == '.' && strcmp(k + al + 1, method) == 0)
            ph_config_parse_seconds(m->limits[i].value, &ms);
    }
    return ms ? ms : all;
}

static int on_manifest_event(void *user, const char *section, const char *key, const char *value,
                             int line)
{
    mf_ctx *x = user;
    ph_manifest *m = x->m;
    if (!key)
        return on_section(x, section, line);
    if (!x->section)
        return ph_error_set(PH_EMANIFEST, "'%s' is outside any section; put it under one of %s",
                            key, known_sections);
    if (strcmp(x->section, "package") == 0)
        return set_package_key(x, key, value);
    if (strcmp(x->section, "requires") == 0)
        return add_dep(&m->requires, &m->n_requires, x->section, key, value, line);
    if (strcmp(x->section, "optional") == 0)
        return add_dep(&m->optional, &m->n_optional, x->section, key, value, line);
    if (strcmp(x->section, "conflicts") == 0)
        return add_dep(&m->conflicts, &m->n_conflicts, x->section, key, value, line);
    if (strcmp(x->section, "provides") == 0)
        return add_provide(m, key, value, line);
    if (strcmp(x->section, "limits") == 0)
        return add_limit(m, key, value, line);
    if (strcmp(x->section, "endpoint") == 0 || strcmp(x->section, "hook") == 0)
        return add_ext_value(x, key, value, line);
    return add_param(m, key, value, line);
}

static const ph_dep *find_dep(const ph_dep *deps, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(deps[i].name, name) == 0)
            return &deps[i];
    return NULL;
}

/* A package cannot name itself, nor one package in two dependency sections. */
static int check_deps(const char *path, const ph_manifest *m)
{
    const dep_list lists[] = {{m->requires, m->n_requires, "requires"},
                              {m->optional, m->n_optional, "optional"},
                              {m->conflicts, m->n_conflicts, "conflicts"}};
    for (size_t a = 0; a < 3; a++) {
        for (size_t i = 0; i < lists[a].n; i++) {
            const ph_dep *d = &lists[a].items[i];
            if (strcmp(d->name, m->name) == 0)
                return ph_error_set(PH_EMANIFEST,
                                    "%s:%d: '%s' in [%s] names the package itself; "
                                    "remove it",
                                    path, d->line, d->name, lists[a].section);
            for (size_t b = 0; b < a; b++) {
                const ph_dep *o = find_dep(lists[b].items, lists[b].n, d->name);
                if (o)
                    return ph_error_set(PH_EMANIFEST,
                                        "%s:%d: '%s' is in both [%s] (line %d) and "
                                        "[%s]; keep one",
                                        path, d->line, d->name, lists[b].section, o->line,
                                        lists[a].section);
            }
        }
    }
    for (size_t i = 0; i < m->n_provides; i++) {
        const ph_provide *pv = &m->provides[i];
        if (strcmp(pv->name, m->name) == 0)
            return ph_error_set(PH_EMANIFEST,
                                "%s:%d: '%s' in [provides] is the package's own name; a package "
                                "is required by its name already: remove the line",
                                path, pv->line, pv->name);
        for (size_t a = 0; a < 3; a++) {
            const ph_dep *d = find_dep(lists[a].items, lists[a].n, pv->name);
            if (d)
                return ph_error_set(PH_EMANIFEST,
                                    "%s:%d: '%s' is in both [provides] (line %d) and [%s]; a "
                                    "package cannot %s what it provides: keep one",
                                    path, d->line, d->name, pv->line, lists[a].section,
                                    a == 2 ? "conflict with" : "depend on");
        }
    }
    return 0;
}

/* Checks required fields and fills defaults once the whole file is read. */
static int finish(const char *path, mf_ctx *x)
{
    ph_manifest *m = x->m;
    if (!m->name)
        return ph_error_set(PH_EMANIFEST, "%s: [package] has no 'name'; add name = <package name>",
                            path);
    if (!m->version_text)
        return ph_error_set(PH_EMANIFEST,
                            "%s: [package] has no 'version'; add a semantic "
                            "version such as version = 1.0.0",
                            path);
    int rc = check_deps(path, m);
    if (rc)
        return rc;
    if (!m->kind && set_str(&m->kind, "application"))
        return PH_ENOMEM;
    char *lib = NULL, *so = NULL;
    if (!m->library)
        lib = asprintf(&so, "%s.so", m->name) < 0 ? (so = NULL) : ph_path_join(m->dir, so);
    else if (m->library[0] == '/')
        lib = strdup(m->library);
    else
        lib = ph_path_join(m->dir, m->library);
    free(so);
    if (!lib)
        return ph_error_set(PH_ENOMEM, "out of memory");
    free(m->library);
    m->library = lib;
    return 0;
}

/* Fills m->dir (canonical absolute directory) and m->path from `path`. */
static int locate(const char *path, ph_manifest *m)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return ph_error_set(PH_ENOMEM, "out of memory");
    m->dir = realpath(dir, NULL);
    free(dir);
    if (!m->dir)
        return ph_error_set(errno == ENOMEM ? PH_ENOMEM : PH_EIO, "%s: cannot read: %s", path,
                            ph_strerror(errno));
    const char *file = slash ? slash + 1 : path;
    if (!(m->path = ph_path_join(m->dir, file))) {
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    return 0;
}

static const ph_ini_opts manifest_ini = {PH_EMANIFEST, NULL};

int ph_manifest_load(const char *path, ph_manifest **out)
{
    *out = NULL;
    ph_manifest *m = calloc(1, sizeof *m);
    if (!m)
        return ph_error_set(PH_ENOMEM, "out of memory");
    m->abi = 1;
    mf_ctx x = {.m = m};
    int rc = locate(path, m);
    if (!rc)
        rc = ph_ini_parse_file(path, &manifest_ini, on_manifest_event, &x);
    if (!rc)
        rc = finish(path, &x);
    if (rc) {
        ph_manifest_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

static void free_deps(ph_dep *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++)
        free(d[i].name);
    free(d);
}

void ph_manifest_free(ph_manifest *m)
{
    if (!m)
        return;
    free(m->path);
    free(m->dir);
    free(m->name);
    free(m->version_text);
    free(m->description);
    free(m->library);
    free_deps(m->requires, m->n_requires);
    free_deps(m->optional, m->n_optional);
    free_deps(m->conflicts, m->n_conflicts);
    for (size_t i = 0; i < m->n_provides; i++) {
        free(m->provides[i].name);
        free(m->provides[i].version_text);
    }
    free(m->provides);
    for (size_t i = 0; i < m->n_params; i++) {
        free(m->params[i].key);
        free(m->params[i].value);
    }
    free(m->params);
    for (size_t i = 0; i < m->n_limits; i++) {
        free(m->limits[i].key);
        free(m->limits[i].value);
    }
    free(m->limits);
    free_ext(m);
    free(m);
}

const ph_provide *ph_manifest_provides(const ph_manifest *m, const char *name)
{
    for (size_t i = 0; m && i < m->n_provides; i++)
        if (strcmp(m->provides[i].name, name) == 0)
            return &m->provides[i];
    return NULL;
}

json_t *ph_manifest_provides_json(const ph_manifest *m)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < m->n_provides; i++)
        json_object_set_new(o, m->provides[i].name, json_string(m->provides[i].version_text));
    return o;
}

void ph_manifest_provides_print(FILE *f, const ph_manifest *m)
{
    for (size_t i = 0; i < m->n_provides; i++)
        fprintf(f, "%s%s %s", i ? ", " : "", m->provides[i].name, m->provides[i].version_text);
}

bool ph_manifest_depends_on(const ph_manifest *m, const char *pkg)
{
    return find_dep(m->requires, m->n_requires, pkg) || find_dep(m->optional, m->n_optional, pkg);
}

/* ---------------------------------------------------------------- discovery */

typedef struct scan {
    ph_manifest_set *set;
    char **seen; /* canonical directories already taken, so overlapping dirs count once */
    size_t n_seen;
    size_t *slot;  /* open addressing over seen: index + 1, 0 empty */
    size_t n_slot; /* a power of two, at least twice n_seen */
} scan;

static size_t path_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

/* True if the canonical directory `real` was taken already: constant time per lookup. */
static bool seen_before(const scan *s, const char *real)
{
    for (size_t i = s->n_slot ? path_hash(real) & (s->n_slot - 1) : 0; s->n_slot;
         i = (i + 1) & (s->n_slot - 1)) {
        if (!s->slot[i])
            return false;
        if (strcmp(s->seen[s->slot[i] - 1], real) == 0)
            return true;
    }
    return false;
}

static void slot_put(scan *s, size_t k)
{
    size_t i = path_hash(s->seen[k]) & (s->n_slot - 1);
    while (s->slot[i])
        i = (i + 1) & (s->n_slot - 1);
    s->slot[i] = k + 1;
}

/* Indexes seen[n_seen - 1], growing the table to keep it at most half full. */
static int index_seen(scan *s)
{
    if (2 * s->n_seen > s->n_slot) {
        size_t n = s->n_slot ? s->n_slot * 2 : 64;
        size_t *slot = calloc(n, sizeof *slot);
        if (!slot)
            return ph_error_set(PH_ENOMEM, "out of memory");
        free(s->slot);
        s->slot = slot;
        s->n_slot = n;
        for (size_t k = 0; k + 1 < s->n_seen; k++)
            slot_put(s, k);
    }
    slot_put(s, s->n_seen - 1);
    return 0;
}

static int push_str(char ***v, size_t *n, char *s)
{
    char **nv = reallocarray(*v, *n + 1, sizeof *nv);
    if (!nv) {
        free(s);
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

/* Appends a problem (`msg` taken) and the package name it is about (copied; may be NULL). */
static int push_problem(scan *s, char *msg, const char *name)
{
    ph_manifest_set *set = s->set;
    char *copy = name ? strdup(name) : NULL;
    char **nn = reallocarray(set->problem_names, set->n_problems + 1, sizeof *nn);
    if (nn)
        set->problem_names = nn;
    if (!nn || (name && !copy)) {
        free(copy);
        free(msg);
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    nn[set->n_problems] = copy;
    int rc = push_str(&set->problems, &set->n_problems, msg);
    if (rc)
        free(copy);
    return rc;
}

static int add_problem(scan *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int add_problem(scan *s, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ph_error_set(PH_ENOMEM, "out of memory");
    return push_problem(s, msg, NULL);
}

/* The name an invalid manifest gives in [package], read leniently; "" if none. */
typedef struct name_probe {
    bool in_package;
    char name[128];
} name_probe;

static int on_probe_event(void *user, const char *section, const char *key, const char *value,
                          int line)
{
    (void)line;
    name_probe *p = user;
    if (!key)
        p->in_package = strcmp(section, "package") == 0;
    else if (p->in_package && strcmp(key, "name") == 0 && strlen(value) < sizeof p->name)
        strcpy(p->name, value);
    return 0;
}

/* 1 if `dir` holds a regular file package.ini, 0 if not, or PH_ENOMEM. */
static int has_manifest(const char *dir)
{
    struct stat st;
    char *p = ph_path_join(dir, MANIFEST_FILE);
    if (!p)
        return ph_error_set(PH_ENOMEM, "out of memory");
    int yes = stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return yes;
}

/* Loads dir/package.ini into the set (or its problem), once per real directory. */
static int take_package(scan *s, const char *dir)
{
    char *real = realpath(dir, NULL);
    if (!real && errno == ENOMEM) /* not knowing the real path could read a package twice */
        return ph_error_set(PH_ENOMEM, "out of memory");
    if (real) {
        if (seen_before(s, real)) {
            free(real);
            return 0;
        }
        if (push_str(&s->seen, &s->n_seen, real) || index_seen(s))
            return PH_ENOMEM;
    }
    char *path = ph_path_join(dir, MANIFEST_FILE);
    if (!path)
        return ph_error_set(PH_ENOMEM, "out of memory");
    ph_manifest *m = NULL;
    int rc = ph_manifest_load(path, &m);
    if (rc == PH_ENOMEM) {
        free(path);
        return rc;
    }
    if (rc) {
        /* Its dependents are told the package is there but invalid, not missing. */
        char *msg = strdup(ph_error_last());
        name_probe probe = {0};
        ph_ini_parse_file(path, &manifest_ini, on_probe_event, &probe);
        free(path);
        if (!msg)
            return ph_error_set(PH_ENOMEM, "out of memory");
        return push_problem(s, msg, probe.name[0] ? probe.name : NULL);
    }
    free(path);
    ph_manifest **ni = reallocarray(s->set->items, s->set->n + 1, sizeof *ni);
    if (!ni) {
        ph_manifest_free(m);
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    ni[s->set->n++] = m;
    s->set->items = ni;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Records why `dir` cannot be scanned. */
static int dir_problem(scan *s, const char *dir, int err)
{
    if (err == ENOMEM) /* opendir allocates: the directory itself is fine */
        return ph_error_set(PH_ENOMEM, "out of memory");
    if (err == ENOENT)
        return add_problem(s,
                           "package directory '%s' does not exist; create it or fix "
                           "package_dirs in the configuration",
                           dir);
    if (err == ENOTDIR)
        return add_problem(s,
                           "package directory '%s' is not a directory; fix package_dirs in "
                           "the configuration",
                           dir);
    return add_problem(s, "cannot read package directory '%s': %s", dir, ph_strerror(err));
}

/*
 * Names of the non-hidden entries of `dir`, sorted bytewise (not by locale,
 * so the order is the same everywhere). 1 if the directory cannot be read
 * (recorded as a problem), 0, or PH_ENOMEM.
 */
static int list_dir(scan *s, const char *dir, char ***out, size_t *out_n)
{
    int rc = 0;
    char **names = NULL;
    size_t n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        rc = dir_problem(s, dir, errno);
        return rc ? rc : 1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *name = strdup(e->d_name);
        if (!name || push_str(&names, &n, name)) {
            rc = ph_error_set(PH_ENOMEM, "out of memory");
            goto cleanup;
        }
    }
    if (n)
        qsort(names, n, sizeof *names, by_name);
    *out = names;
    *out_n = n;
    names = NULL;
    n = 0;
cleanup:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

static int scan_dir(scan *s, const char *dir)
{
    char **names = NULL;
    size_t n = 0;
    int rc = list_dir(s, dir, &names, &n);
    if (rc)
        return rc > 0 ? 0 : rc;
    if ((rc = has_manifest(dir)) > 0)
        rc = take_package(s, dir);
    for (size_t i = 0; i < n && !rc; i++) {
        char *sub = ph_path_join(dir, names[i]);
        if (!sub) {
            rc = ph_error_set(PH_ENOMEM, "out of memory");
            break;
        }
        if ((rc = has_manifest(sub)) > 0)
            rc = take_package(s, sub);
        free(sub);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int ph_manifest_discover(char *const *dirs, size_t n_dirs, ph_manifest_set *out)
{
    memset(out, 0, sizeof *out);
    scan s = {.set = out};
    int rc = 0;
    for (size_t i = 0; i < n_dirs && !rc; i++)
        rc = scan_dir(&s, dirs[i]);
    for (size_t i = 0; i < s.n_seen; i++)
        free(s.seen[i]);
    free(s.seen);
    free(s.slot);
    if (rc)
        ph_manifest_set_free(out);
    return rc;
}

void ph_manifest_set_free(ph_manifest_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        ph_manifest_free(s->items[i]);
    free(s->items);
    for (size_t i = 0; i < s->n_problems; i++) {
        free(s->problems[i]);
        if (s->problem_names)
            free(s->problem_names[i]);
    }
    free(s->problems);
    free(s->problem_names);
    memset(s, 0, sizeof *s);
}
