/*
 * package.ini: reading one manifest, and discovering packages in directories.
 * No package code runs here.
 */
#include "manifest.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "text.h"
#include "ini.h"
#include "path.h"

#define MANIFEST_FILE "package.ini"

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
    "[package], [requires], [optional], [conflicts], [parameters], [limits]";

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
    return ph_error_set(PH_EMANIFEST,
                        "unknown key '%s' in [package]; known keys: name, version, "
                        "description, abi, library, disable_crud, manager",
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

static int add_param(ph_manifest *m, const char *key, const char *v, int line)
{
    return ph_kv_append(&m->params, &m->n_params, key, v, line);
}

static int on_section(mf_ctx *x, const char *section)
{
    static const char *const known[] = {"package",   "requires", "optional",
                                        "conflicts", "limits",   "parameters"};
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
        return on_section(x, section);
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
    if (strcmp(x->section, "limits") == 0)
        return add_limit(m, key, value, line);
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
    free(m);
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
} scan;

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
        for (size_t i = 0; i < s->n_seen; i++) {
            if (strcmp(s->seen[i], real) == 0) {
                free(real);
                return 0;
            }
        }
        if (push_str(&s->seen, &s->n_seen, real))
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
