#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backup.h"
#include "error.h"
#include "jsonout.h"
#include "semver.h"

/* ------------------------------------------------------------------ */
/* Finding the chain of scripts                                         */
/* ------------------------------------------------------------------ */

typedef struct edge {
    ph_semver from, to;
    char *name;
} edge;

/* Parses "upgrade-<from>-<to>.sql"; exactly one split of the dashes must give two versions. */
static int parse_script_name(const char *name, ph_semver *from, ph_semver *to)
{
    size_t len = strlen(name);
    int found = 0;
    if (len <= 12 || strncmp(name, "upgrade-", 8) != 0 || strcmp(name + len - 4, ".sql") != 0)
        return -1;
    char *mid = strndup(name + 8, len - 12);
    if (!mid)
        return -1;
    for (char *p = strchr(mid, '-'); p; p = strchr(p + 1, '-')) {
        ph_semver a, b;
        *p = 0;
        if (ph_semver_parse(mid, &a) == 0 && ph_semver_parse(p + 1, &b) == 0) {
            *from = a;
            *to = b;
            found++;
        }
        *p = '-';
    }
    free(mid);
    ph_error_clear();
    return found == 1 ? 0 : -1;
}

static int cmp_edges(const void *a, const void *b)
{
    const edge *x = a, *y = b;
    int c = ph_semver_cmp(&x->from, &y->from);
    return c ? c : ph_semver_cmp(&x->to, &y->to);
}

static int push_str(char ***arr, size_t *n, const char *s)
{
    char **p = realloc(*arr, (*n + 1) * sizeof **arr);
    if (!p)
        return PH_ENOMEM;
    *arr = p;
    if (!(p[*n] = strdup(s)))
        return PH_ENOMEM;
    (*n)++;
    return 0;
}

static int read_edges(const char *sql_dir, edge **out, size_t *n_out, ph_migrate_chain *c)
{
    DIR *d = opendir(sql_dir);
    edge *edges = NULL;
    size_t n = 0;
    int rc = 0;
    *out = NULL;
    *n_out = 0;
    if (!d && errno == ENOMEM) /* not "no scripts": that would ask for a script that exists */
        return ph_error_set(PH_ENOMEM, "out of memory");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) && !rc) {
        ph_semver a, b;
        if (strncmp(e->d_name, "upgrade-", 8) != 0)
            continue;
        if (parse_script_name(e->d_name, &a, &b) != 0) {
            rc = push_str(&c->ignored, &c->n_ignored, e->d_name);
            continue;
        }
        edge *p = realloc(edges, (n + 1) * sizeof *edges);
        if (!p || !(p[n].name = strdup(e->d_name))) {
            edges = p ? p : edges;
            rc = PH_ENOMEM;
            break;
        }
        edges = p;
        edges[n].from = a;
        edges[n].to = b;
        n++;
    }
    closedir(d);
    if (n)
        qsort(edges, n, sizeof *edges, cmp_edges);
    *out = edges;
    *n_out = n;
    return rc ? ph_error_set(PH_ENOMEM, "out of memory") : 0;
}

static void free_edges(edge *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
}

/*
 * Breadth-first search over versions; edges are sorted, so the first chain
 * found among equally short ones goes through the lowest versions.
 * prev[i] = index of the edge reaching edge i's target first (-1 = start).
 */
static long bfs(const edge *edges, size_t n, const ph_semver *from, const ph_semver *to, long *prev)
{
    long *queue = malloc((n + 1) * sizeof *queue);
    char *seen = calloc(n + 1, 1);
    long head = 0, tail = 0, found = -1;
    if (!queue || !seen)
        goto done;
    for (size_t i = 0; i < n; i++)
        if (ph_semver_cmp(&edges[i].from, from) == 0 && ph_semver_cmp(&edges[i].to, from) != 0) {
            prev[i] = -1;
            seen[i] = 1;
            queue[tail++] = (long)i;
        }
    while (head < tail && found < 0) {
        long cur = queue[head++];
        if (ph_semver_cmp(&edges[cur].to, to) == 0) {
            found = cur;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (seen[i] || ph_semver_cmp(&edges[i].from, &edges[cur].to) != 0)
                continue;
            /* never revisit a version already reached */
            int reached = ph_semver_cmp(&edges[i].to, from) == 0;
            for (long k = 0; k < tail && !reached; k++)
                reached = ph_semver_cmp(&edges[queue[k]].to, &edges[i].to) == 0;
            seen[i] = 1;
            if (reached)
                continue;
            prev[i] = cur;
            queue[tail++] = (long)i;
        }
    }
done:
    free(queue);
    free(seen);
    return found;
}

static char *list_names(char **names, size_t n)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    for (size_t i = 0; i < n; i++)
        sqlite3_str_appendf(s, "%s%s", i ? ", " : "", names[i]);
    if (!n)
        sqlite3_str_appendall(s, "none");
    char *t = sqlite3_str_finish(s);
    char *copy = t ? strdup(t) : NULL;
    sqlite3_free(t);
    return copy;
}

static int chain_not_found(const char *sql_dir, const char *from, const char *to, edge *edges,
                           size_t n, const ph_migrate_chain *c)
{
    char **names = calloc(n + 1, sizeof *names);
    for (size_t i = 0; names && i < n; i++)
        names[i] = edges[i].name;
    char *found = names ? list_names(names, n) : NULL;
    char *ignored = c->n_ignored ? list_names(c->ignored, c->n_ignored) : NULL;
    int rc = ph_error_set(PH_ENOTFOUND,
                          "no chain of upgrade scripts leads from %s to %s: add "
                          "%s/upgrade-%s-%s.sql (scripts found: %s%s%s%s)",
                          from, to, sql_dir, from, to, found ? found : "?",
                          ignored ? "; ignored, names must be upgrade-<from>-<to>.sql with "
                                    "semantic versions: "
                                  : "",
                          ignored ? ignored : "", "");
    free(names);
    free(found);
    free(ignored);
    return rc;
}

/*
 * Fills *out with the scripts edges[idx[0..len-1]], in that order. Automatic
 * changes run before a script that does not start where the database stands:
 * every script after the first, and the first when it starts above `start`.
 */
static int fill_chain(ph_migrate_chain *out, const char *sql_dir, const edge *edges,
                      const size_t *idx, size_t len, const ph_semver *start, int with_auto)
{
    if (!len)
        return 0;
    if (!(out->paths = calloc(len, sizeof *out->paths)) ||
        !(out->names = calloc(len, sizeof *out->names)) ||
        !(out->to = calloc(len, sizeof *out->to)) ||
        !(out->auto_before = calloc(len, sizeof *out->auto_before)))
        return ph_error_set(PH_ENOMEM, "out of memory");
    out->n = len;
    for (size_t i = 0; i < len; i++) {
        const edge *e = &edges[idx[i]];
        char v[96];
        out->auto_before[i] = with_auto && (i > 0 || ph_semver_cmp(&e->from, start) > 0);
        if (!(out->names[i] = strdup(e->name)) ||
            !(out->to[i] = strdup(ph_semver_format(&e->to, v, sizeof v))) ||
            asprintf(&out->paths[i], "%s/%s", sql_dir, e->name) < 0) {
            out->paths[i] = NULL;
            return ph_error_set(PH_ENOMEM, "out of memory");
        }
    }
    return 0;
}

int ph_migrate_find_chain(const char *sql_dir, const char *from, const char *to,
                          ph_migrate_chain *out)
{
    ph_semver a, b;
    edge *edges = NULL;
    size_t n = 0, *idx = NULL;
    long *prev = NULL;
    int rc;
    memset(out, 0, sizeof *out);
    if (ph_semver_parse(from, &a) || ph_semver_parse(to, &b))
        return ph_error_set(PH_EINVAL, "'%s' -> '%s': not semantic versions", from, to);
    if (ph_semver_cmp(&a, &b) == 0)
        return 0;
    if ((rc = read_edges(sql_dir, &edges, &n, out)))
        goto cleanup;
    prev = malloc((n + 1) * sizeof *prev);
    idx = malloc((n + 1) * sizeof *idx);
    long last = prev && idx ? bfs(edges, n, &a, &b, prev) : -1;
    if (last < 0) {
        rc = prev && idx ? chain_not_found(sql_dir, from, to, edges, n, out)
                         : ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    size_t len = 0;
    for (long k = last; k >= 0; k = prev[k])
        len++;
    size_t i = len;
    for (long k = last; k >= 0; k = prev[k])
        idx[--i] = (size_t)k;
    rc = fill_chain(out, sql_dir, edges, idx, len, &a, 0);
cleanup:
    free(prev);
    free(idx);
    free_edges(edges, n);
    return rc;
}

/*
 * The greedy walk of ph_migrate_upgrade_chain: from `cur`, the script with
 * the lowest `from` >= cur, and among those the highest `to` <= target.
 * Edges are sorted by (from, to). Returns its index or -1.
 */
static long next_step(const edge *edges, size_t n, const ph_semver *cur, const ph_semver *target)
{
    long best = -1;
    for (size_t i = 0; i < n; i++) {
        const edge *e = &edges[i];
        if (ph_semver_cmp(&e->from, &e->to) >= 0 || ph_semver_cmp(&e->from, cur) < 0 ||
            ph_semver_cmp(&e->to, target) > 0)
            continue;
        if (best >= 0 && ph_semver_cmp(&e->from, &edges[best].from) != 0)
            break;
        best = (long)i;
    }
    return best;
}

int ph_migrate_upgrade_chain(const char *sql_dir, const char *from, const char *to,
                             ph_migrate_chain *out)
{
    ph_semver a, b, cur;
    edge *edges = NULL;
    size_t n = 0, len = 0, *idx = NULL;
    int rc;
    memset(out, 0, sizeof *out);
    if (ph_semver_parse(from, &a) || ph_semver_parse(to, &b) || ph_semver_cmp(&a, &b) >= 0)
        return ph_error_set(PH_EINVAL, "'%s' -> '%s': not an upgrade between semantic versions",
                            from, to);
    if ((rc = read_edges(sql_dir, &edges, &n, out)))
        goto cleanup;
    if (!(idx = malloc((n + 1) * sizeof *idx))) {
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    cur = a;
    for (long k; (k = next_step(edges, n, &cur, &b)) >= 0;) {
        idx[len++] = (size_t)k;
        cur = edges[k].to;
    }
    rc = fill_chain(out, sql_dir, edges, idx, len, &a, 1);
cleanup:
    free(idx);
    free_edges(edges, n);
    return rc;
}

void ph_migrate_chain_free(ph_migrate_chain *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->paths ? c->paths[i] : NULL);
        free(c->names ? c->names[i] : NULL);
        free(c->to ? c->to[i] : NULL);
    }
    free(c->to);
    free(c->auto_before);
    for (size_t i = 0; i < c->n_ignored; i++)
        free(c->ignored[i]);
    free(c->paths);
    free(c->names);
    free(c->ignored);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------ */
/* Applying                                                             */
/* ------------------------------------------------------------------ */

/* State of one apply run. */
typedef struct run {
    ph_migrate_ctx *c;
    sqlite3 *db;
    char *installed; /* version in the database, NULL if none */
    const char *target;
    const char *action;
    char *sql_dir;
    ph_migrate_chain chain;
    json_t *stored;  /* {model: schema} from _ph_models */
    json_t *changes; /* array of text */
    char *backup;
    int script_failed; /* the error is a script's own */
    json_t *eager;     /* [[table, column|null]] added ahead of a script in this attempt */
    json_t *excluded;  /* [[table, column|null]] a script creates itself: never added early */
    int conflict;      /* a script failed on something added early (retry without it) */
} run;

/* "what: SQLite's message" as PH_ESQL, or PH_ENOMEM "what: out of memory". */
static int sql_failure(sqlite3 *db, const char *what)
{
    int code = sqlite3_errcode(db);
    if (code == SQLITE_NOMEM || code == SQLITE_OK) /* SQLITE_OK: sqlite3_mprintf failed */
        return ph_error_set(PH_ENOMEM, "%s: out of memory", what);
    if (ph_store_out_of_files(db))
        return ph_error_set(PH_EIO, "%s: %s: %s", what, sqlite3_errmsg(db), PH_EMFILE_HINT);
    return ph_error_set(PH_ESQL, "%s: %s", what, sqlite3_errmsg(db));
}

/*
 * SQLite may roll a transaction back by itself when it runs out of memory
 * (or I/O fails); statements after that would each commit on their own and
 * could record the new version over the old schema. 0 while BEGIN holds.
 */
static int tx_alive(run *r)
{
    if (!sqlite3_get_autocommit(r->db))
        return 0;
    return ph_error_set(sqlite3_errcode(r->db) == SQLITE_NOMEM ? PH_ENOMEM : PH_EMIGRATION,
                        "instance '%s': the migration's transaction was rolled back (%s); "
                        "nothing changed",
                        r->c->instance, sqlite3_errmsg(r->db));
}

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = ph_error_set(PH_ESQL, "%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

/* Runs a statement built with sqlite3_mprintf (takes ownership). */
static int exec_owned(sqlite3 *db, char *sql)
{
    if (!sql)
        return ph_error_set(PH_ENOMEM, "out of memory");
    int rc = exec(db, sql);
    sqlite3_free(sql);
    return rc;
}

/* 1 if table `name` exists, 0 if not, or PH_ESQL/PH_ENOMEM (never a guess: a wrong "no"
 * would treat an installed database as a fresh one). */
static int table_exists(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    int yes = -1, step = SQLITE_ERROR;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1", -1,
                           &st, NULL) == SQLITE_OK &&
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) == SQLITE_OK)
        step = sqlite3_step(st);
    if (step == SQLITE_ROW || step == SQLITE_DONE)
        yes = step == SQLITE_ROW;
    else
        yes = sql_failure(db, "cannot read the schema");
    sqlite3_finalize(st);
    return yes;
}

/* Reads the installed version and the stored schemas (tables may not exist yet). */
static int read_state(run *r)
{
    sqlite3_stmt *st = NULL;
    free(r->installed);
    r->installed = NULL;
    json_decref(r->stored);
    r->stored = json_object();
    if (!r->stored)
        return ph_error_set(PH_ENOMEM, "out of memory");
    int exists = table_exists(r->db, "_ph_meta");
    if (exists <= 0)
        return exists;
    if (sqlite3_prepare_v2(r->db, "SELECT value FROM _ph_meta WHERE key='version'", -1, &st,
                           NULL) != SQLITE_OK)
        return ph_error_set(PH_ESQL, "cannot read the installed version: %s",
                            sqlite3_errmsg(r->db));
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0); /* NULL: out of memory */
        r->installed = v ? strdup(v) : NULL;
    }
    sqlite3_finalize(st);
    if ((step == SQLITE_ROW && !r->installed) || (step != SQLITE_ROW && step != SQLITE_DONE))
        return sql_failure(r->db, "cannot read the installed version");
    if (sqlite3_prepare_v2(r->db, "SELECT name, schema FROM _ph_models", -1, &st, NULL) !=
        SQLITE_OK)
        return sqlite3_errcode(r->db) == SQLITE_NOMEM ? ph_error_set(PH_ENOMEM, "out of memory")
                                                      : 0;
    int rc = 0;
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *text = (const char *)sqlite3_column_text(st, 1);
        errno = 0;
        json_t *s = text ? json_loads(text, 0, NULL) : NULL;
        if (!name || (!s && (!text || errno == ENOMEM)) ||
            (s && json_object_set_new(r->stored, name, s)))
            rc = ph_error_set(PH_ENOMEM, "out of memory"); /* a schema missing looks changed */
    }
    if (!rc && step != SQLITE_DONE)
        rc = sql_failure(r->db, "cannot read the stored schemas");
    sqlite3_finalize(st);
    return rc;
}

static const char *prefix_versions(const run *r, char *buf, size_t size)
{
    if (!r->installed || !strcmp(r->installed, r->target))
        snprintf(buf, size, "%s %s", r->c->manifest->name, r->target);
    else
        snprintf(buf, size, "%s %s -> %s", r->c->manifest->name, r->installed, r->target);
    return buf;
}

/* Sets a migration error: "instance 'x' (notes 1.0.0 -> 1.1.0): <what>; <hint>". */
static int fail(const run *r, const char *what)
{
    char v[256];
    sqlite3_str *s = sqlite3_str_new(NULL);
    if (r->script_failed) {
        sqlite3_str_appendall(s, "fix the script; the whole chain runs again at the next start");
    } else if (r->chain.n && !strcmp(r->chain.to[r->chain.n - 1], r->target)) {
        sqlite3_str_appendall(s, "the upgrade scripts ran (");
        for (size_t i = 0; i < r->chain.n; i++)
            sqlite3_str_appendf(s, "%s%s", i ? ", " : "", r->chain.names[i]);
        sqlite3_str_appendall(s, ") but did not make this change; fix them");
    } else if (!r->installed) {
        sqlite3_str_appendall(s, "the table was not created by this package; move it away or "
                                 "migrate it by hand");
    } else if (!strcmp(r->installed, r->target)) {
        sqlite3_str_appendf(s,
                            "the version is still %s: raise the version in %s and add "
                            "%s/upgrade-%s-<new version>.sql that makes this change",
                            r->target, r->c->manifest->path ? r->c->manifest->path : "package.ini",
                            r->sql_dir, r->target);
    } else {
        /* The missing link: from where the last script left the data to the target. */
        const char *from = r->chain.n ? r->chain.to[r->chain.n - 1] : r->installed;
        sqlite3_str_appendf(s,
                            "add %s/upgrade-%s-%s.sql that makes this change (for a rename: "
                            "ALTER TABLE <model> RENAME COLUMN <old> TO <new>;)",
                            r->sql_dir, from, r->target);
        if (r->chain.n) {
            sqlite3_str_appendall(s, "; the scripts before it ran: ");
            for (size_t i = 0; i < r->chain.n; i++)
                sqlite3_str_appendf(s, "%s%s", i ? ", " : "", r->chain.names[i]);
        }
    }
    char *hint = sqlite3_str_finish(s);
    int rc = ph_error_set(PH_EMIGRATION, "instance '%s' (%s): %s; %s; the database was not changed",
                          r->c->instance, prefix_versions(r, v, sizeof v), what, hint ? hint : "");
    sqlite3_free(hint);
    return rc;
}

static int failf(const run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(const run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    int rc = fail(r, what ? what : "out of memory");
    sqlite3_free(what);
    return rc;
}

static void change(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void change(run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *t = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    if (t)
        json_array_append_new(r->changes, json_string(t));
    sqlite3_free(t);
}

static int ensure_meta(sqlite3 *db)
{
    return exec(db, "CREATE TABLE IF NOT EXISTS _ph_meta(key TEXT PRIMARY KEY, value TEXT NOT "
                    "NULL) STRICT;"
                    "CREATE TABLE IF NOT EXISTS _ph_models(name TEXT PRIMARY KEY, schema TEXT NOT "
                    "NULL, version TEXT NOT NULL) STRICT;"
                    "CREATE TABLE IF NOT EXISTS _ph_migrations(id INTEGER PRIMARY KEY, at INTEGER "
                    "NOT NULL, from_version TEXT, to_version TEXT NOT NULL, scripts TEXT NOT NULL, "
                    "backup TEXT, changes TEXT NOT NULL) STRICT;");
}

/* ---- running one script ---- */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (cap - len < 4096) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *p = realloc(buf, ncap);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
            cap = ncap;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    buf[len] = 0;
    fclose(f);
    return buf;
}

static const char *skip_blank(const char *p)
{
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ';')
            p++;
        if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            if (!end)
                return p;
            p = end + 2;
        } else {
            return p;
        }
    }
}

static int line_of(const char *text, const char *p)
{
    int line = 1;
    for (const char *q = text; q < p; q++)
        line += *q == '\n';
    return line;
}

/* [table, column|null] is in `list`. */
static int listed(json_t *list, const char *table, const char *col)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *t = json_string_value(json_array_get(v, 0));
        const char *c = json_string_value(json_array_get(v, 1));
        if (t && !strcmp(t, table) && (col ? c && !strcasecmp(c, col) : !c))
            return 1;
    }
    return 0;
}

/* True if `msg` names `name` as a word ("x", 'x', x). */
static int names(const char *msg, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(msg, name); p; p = strstr(p + 1, name)) {
        char before = p == msg ? ' ' : p[-1], after = p[n];
        if (!(before == '_' || (before >= 'a' && before <= 'z') ||
              (before >= '0' && before <= '9')) &&
            !(after == '_' || (after >= 'a' && after <= 'z') || (after >= '0' && after <= '9')))
            return 1;
    }
    return 0;
}

/*
 * A script failed with `msg`: if it tried to create a table or column that
 * the host added ahead of it, remember it in r->excluded and set
 * r->conflict, so the chain is run again without adding it early.
 */
static void note_conflict(run *r, const char *msg)
{
    size_t i;
    json_t *v;
    const char *dup = strstr(msg, "duplicate column name: ");
    int exists = strstr(msg, "already exists") || strstr(msg, "already another table");
    json_array_foreach(r->eager, i, v)
    {
        const char *t = json_string_value(json_array_get(v, 0));
        const char *c = json_string_value(json_array_get(v, 1));
        int hit = c ? dup && !strcasecmp(dup + 23, c) : exists && names(msg, t);
        if (hit && !listed(r->excluded, t, c)) {
            json_array_append(r->excluded, v);
            r->conflict = 1;
        }
    }
}

static int run_script(run *r, size_t i)
{
    const char *path = r->chain.paths[i];
    char *text = read_file(path);
    ph_sql_guard g;
    int rc = 0;
    if (!text)
        return r->script_failed = 1,
               failf(r, "cannot read upgrade script %s: %s", path, ph_strerror(errno));
    ph_store_guard_on(r->db, &g);
    for (const char *p = skip_blank(text); *p; p = skip_blank(p)) {
        sqlite3_stmt *st = NULL;
        const char *tail = NULL;
        int step = SQLITE_DONE;
        g.denied = NULL;
        if (sqlite3_prepare_v2(r->db, p, -1, &st, &tail) == SQLITE_OK && st)
            while ((step = sqlite3_step(st)) == SQLITE_ROW)
                ;
        if (!st || step != SQLITE_DONE) {
            if (!st && tail && *skip_blank(p) == 0)
                break;
            r->script_failed = 1;
            if (!g.denied)
                note_conflict(r, sqlite3_errmsg(r->db));
            rc = failf(r, "upgrade script %s failed at line %d: %s", path, line_of(text, p),
                       g.denied ? g.denied : sqlite3_errmsg(r->db));
            sqlite3_finalize(st);
            break;
        }
        sqlite3_finalize(st);
        p = tail;
    }
    ph_store_guard_off(r->db);
    free(text);
    return rc;
}

/* ---- making tables match the declaration ---- */

typedef struct col_info {
    char *name;
    char *type;
} col_info;

static void free_cols(col_info *cols, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(cols[i].name);
        free(cols[i].type);
    }
    free(cols);
}

static int table_cols(sqlite3 *db, const ph_store_model *m, col_info **out, size_t *n)
{
    sqlite3_stmt *st = NULL;
    char *sql = sqlite3_mprintf("SELECT name, type FROM pragma_table_info(%Q)", m->name);
    col_info *cols = NULL;
    size_t k = 0;
    int rc = 0;
    if (!sql || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = sql_failure(db, "cannot read the columns");
        goto cleanup;
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        col_info *p = realloc(cols, (k + 1) * sizeof *cols);
        if (!p) {
            rc = ph_error_set(PH_ENOMEM, "out of memory");
            goto cleanup;
        }
        cols = p;
        /* NULL text here is SQLite out of memory (a column without a type reads as "") */
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *type = (const char *)sqlite3_column_text(st, 1);
        cols[k].name = name ? strdup(name) : NULL;
        cols[k].type = type ? strdup(type) : NULL;
        if (!cols[k++].type || !cols[k - 1].name) {
            rc = ph_error_set(PH_ENOMEM, "out of memory");
            goto cleanup;
        }
    }
    if (step != SQLITE_DONE) /* a column missing from the list would look dropped or new */
        rc = sql_failure(db, "cannot read the columns");
cleanup:
    sqlite3_free(sql);
    sqlite3_finalize(st);
    if (rc) {
        free_cols(cols, k);
        cols = NULL;
        k = 0;
    }
    *out = cols;
    *n = k;
    return rc;
}

static const char *ref_table(const run *r, const ph_store_model *m, const ph_store_field *f)
{
    (void)m;
    return f->ref >= 0 ? r->c->models[f->ref].name : NULL;
}

static char *default_literal(const ph_store_field *f);

/*
 * A column definition; with its DEFAULT clause, so rows that a script
 * inserts without the field get the declared default whether the table was
 * created with the field or the field was added later (route independence).
 */
/* Returns 0, or PH_ENOMEM: DEFAULT NULL would leave records without their default. */
static int append_col_def(const run *r, const ph_store_model *m, sqlite3_str *s,
                          const ph_store_field *f)
{
    sqlite3_str_appendf(s, "%s %s", f->qname, ph_store_sql_type(f->type));
    if (f->ref >= 0)
        sqlite3_str_appendf(s, " REFERENCES \"%w\"(id)", ref_table(r, m, f));
    if (f->def && !f->def_now) {
        char *lit = default_literal(f);
        if (!lit)
            return ph_error_set(PH_ENOMEM, "out of memory");
        sqlite3_str_appendf(s, " DEFAULT %s", lit);
        sqlite3_free(lit);
    }
    return 0;
}

static int create_table(run *r, const ph_store_model *m)
{
    sqlite3_str *s = sqlite3_str_new(r->db);
    sqlite3_str_appendf(s,
                        "CREATE TABLE %s(id INTEGER PRIMARY KEY AUTOINCREMENT, created INTEGER "
                        "NOT NULL, updated INTEGER NOT NULL",
                        m->qname);
    for (size_t i = PH_STORE_HOST_COLS; i < m->n_cols; i++) {
        sqlite3_str_appendall(s, ", ");
        if (append_col_def(r, m, s, &m->cols[i])) {
            sqlite3_free(sqlite3_str_finish(s));
            return PH_ENOMEM;
        }
    }
    sqlite3_str_appendall(s, ") STRICT");
    int rc = exec_owned(r->db, sqlite3_str_finish(s));
    if (rc)
        return failf(r, "cannot create table for model '%s': %s", m->name, ph_error_last());
    change(r, "created model '%s'", m->name);
    return 0;
}

/* SQL literal of a default value, for ALTER TABLE ADD COLUMN (sqlite3_free). */
static char *default_literal(const ph_store_field *f)
{
    const json_t *d = f->def;
    switch (f->type) {
    case PH_BOOL:
        return sqlite3_mprintf("%d", json_is_true(d));
    case PH_I64:
    case PH_TIME:
    case PH_REF:
        return sqlite3_mprintf("%lld", (long long)json_integer_value(d));
    case PH_F64:
        return sqlite3_mprintf("%!.17g", json_number_value(d));
    case PH_STR:
        return sqlite3_mprintf("%Q", json_string_value(d));
    default: {
        char *t = ph_json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
        char *q = t ? sqlite3_mprintf("%Q", t) : NULL;
        free(t);
        return q;
    }
    }
}

static long long count_where(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long n = -1;
    if (sql && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int add_column(run *r, const ph_store_model *m, const ph_store_field *f)
{
    char *sql = sqlite3_mprintf("SELECT count(*) FROM %s", m->qname);
    long long rows = count_where(r->db, sql);
    sqlite3_free(sql);
    if (rows < 0)
        return sql_failure(r->db, "cannot count records");
    if ((f->flags & PH_REQUIRED) && !f->def && rows != 0)
        return failf(r,
                     "new field '%s' of model '%s' is required and has no default, but %lld "
                     "records exist and would have no value; give it a default "
                     "(PH_DEFAULT) or fill it in an upgrade script",
                     f->name, m->name, rows);
    sqlite3_str *s = sqlite3_str_new(r->db);
    sqlite3_str_appendf(s, "ALTER TABLE %s ADD COLUMN ", m->qname);
    if (append_col_def(r, m, s, f)) {
        sqlite3_free(sqlite3_str_finish(s));
        return PH_ENOMEM;
    }
    int rc = exec_owned(r->db, sqlite3_str_finish(s));
    if (rc)
        return failf(r, "cannot add field '%s' to model '%s': %s", f->name, m->name,
                     ph_error_last());
    change(r, "added field '%s' to model '%s'", f->name, m->name);
    return 0;
}

/* The table a column references (PRAGMA foreign_key_list) into *out (malloc'd, NULL: none). */
static int fk_target(sqlite3 *db, const ph_store_model *m, const char *col, char **out)
{
    sqlite3_stmt *st = NULL;
    char *sql = sqlite3_mprintf("SELECT \"table\" FROM pragma_foreign_key_list(%Q) WHERE "
                                "\"from\"=%Q",
                                m->name, col);
    int rc = 0, step = SQLITE_NOMEM;
    *out = NULL;
    if (sql && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK)
        step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (!t || !(*out = strdup(t)))
            rc = ph_error_set(PH_ENOMEM, "out of memory");
    } else if (step != SQLITE_DONE) {
        rc = sql ? sql_failure(db, "cannot read the references") : PH_ENOMEM;
        if (!sql)
            ph_error_set(PH_ENOMEM, "out of memory");
    }
    sqlite3_finalize(st);
    sqlite3_free(sql);
    return rc;
}

static const col_info *find_col(const col_info *cols, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(cols[i].name, name))
            return &cols[i];
    return NULL;
}

static int check_field(run *r, const ph_store_model *m, const ph_store_field *f,
                       const col_info *col)
{
    if (strcasecmp(col->type, ph_store_sql_type(f->type)) != 0)
        return failf(r,
                     "field '%s' of model '%s' is declared %s (SQL %s) but the database "
                     "stores %s; changing a field's type needs an upgrade script",
                     f->name, m->name, ph_store_type_name(f->type), ph_store_sql_type(f->type),
                     col->type);
    char *target = NULL;
    int rc = fk_target(r->db, m, f->name, &target);
    if (rc)
        return rc;
    const char *want = ref_table(r, m, f);
    int bad = (want && (!target || strcasecmp(target, want))) || (!want && target);
    if (bad) {
        rc = failf(r,
                   "field '%s' of model '%s' %s%s%s but the database %s%s; changing a "
                   "reference needs an upgrade script",
                   f->name, m->name, want ? "refers to model '" : "is not a reference",
                   want ? want : "", want ? "'" : "",
                   target ? "references table " : "has no reference", target ? target : "");
        free(target);
        return rc;
    }
    free(target);
    return 0;
}

/* True if the stored schema of m said field `name` was required (or there is none). */
static int was_required(const run *r, const ph_store_model *m, const char *name)
{
    json_t *fields = json_object_get(json_object_get(r->stored, m->name), "fields");
    size_t i;
    json_t *f;
    if (!fields)
        return 0;
    json_array_foreach(fields, i, f)
    {
        if (!strcmp(json_string_value(json_object_get(f, "name")) ?: "", name))
            return json_is_true(json_object_get(f, "required"));
    }
    return 0;
}

static int check_required(run *r, const ph_store_model *m, const ph_store_field *f)
{
    if (!(f->flags & PH_REQUIRED) || was_required(r, m, f->name))
        return 0;
    char *sql = sqlite3_mprintf("SELECT count(*) FROM %s WHERE %s IS NULL", m->qname, f->qname);
    long long n = count_where(r->db, sql);
    sqlite3_free(sql);
    if (n < 0)
        return sql_failure(r->db, "cannot count records");
    if (n > 0)
        return failf(r,
                     "field '%s' of model '%s' became required but %lld records have no "
                     "value; fill them in an upgrade script",
                     f->name, m->name, n);
    return 0;
}

static int sync_columns(run *r, const ph_store_model *m)
{
    col_info *cols = NULL;
    size_t n = 0;
    int rc = table_cols(r->db, m, &cols, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < PH_STORE_HOST_COLS && !rc; i++)
        if (!find_col(cols, n, m->cols[i].name))
            rc = failf(r, "table '%s' has no column '%s': it was not created by plughost", m->name,
                       m->cols[i].name);
    for (size_t i = PH_STORE_HOST_COLS; i < m->n_cols && !rc; i++) {
        const col_info *col = find_col(cols, n, m->cols[i].name);
        rc = col ? check_field(r, m, &m->cols[i], col) : add_column(r, m, &m->cols[i]);
        if (!rc && col)
            rc = check_required(r, m, &m->cols[i]);
    }
    for (size_t i = 0; i < n && !rc; i++)
        if (!ph_store_model_col(m, cols[i].name))
            rc = failf(r,
                       "model '%s' has a column '%s' in the database that %s %s does not "
                       "declare (a field was dropped or renamed)",
                       m->name, cols[i].name, r->c->manifest->name, r->target);
    free_cols(cols, n);
    return rc;
}

static char *index_name(const ph_store_model *m, const ph_store_field *f, int unique)
{
    return sqlite3_mprintf("_ph_%s_%s__%s", unique ? "ux" : "ix", m->name, f->name);
}

static int wanted_index(const ph_store_model *m, const char *name)
{
    for (size_t i = PH_STORE_HOST_COLS; i < m->n_cols; i++) {
        const ph_store_field *f = &m->cols[i];
        int unique = (f->flags & PH_UNIQUE) != 0;
        if (!unique && !(f->flags & PH_INDEXED) && f->ref < 0)
            continue;
        char *want = index_name(m, f, unique);
        int same = want && !strcmp(want, name);
        sqlite3_free(want);
        if (same)
            return 1;
    }
    return 0;
}

static int drop_stale_indexes(run *r, const ph_store_model *m)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT name FROM sqlite_master WHERE type='index' AND "
                           "tbl_name=?1 AND name LIKE '\\_ph\\_%' ESCAPE '\\'",
                           -1, &st, NULL) != SQLITE_OK)
        return ph_error_set(PH_ESQL, "cannot list indexes: %s", sqlite3_errmsg(r->db));
    char **stale = NULL;
    size_t n = 0;
    int step = sqlite3_bind_text(st, 1, m->name, -1, SQLITE_STATIC) == SQLITE_OK ? SQLITE_ROW
                                                                                 : SQLITE_NOMEM;
    while (!rc && step == SQLITE_ROW && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!name)
            rc = ph_error_set(PH_ENOMEM, "out of memory");
        else if (!wanted_index(m, name))
            rc = push_str(&stale, &n, name);
    }
    /* an error here can have rolled the transaction back: never carry on without it */
    if (!rc && step != SQLITE_DONE)
        rc = sql_failure(r->db, "cannot list indexes");
    sqlite3_finalize(st);
    for (size_t i = 0; i < n; i++) {
        if (!rc)
            rc = exec_owned(r->db, sqlite3_mprintf("DROP INDEX \"%w\"", stale[i]));
        if (!rc)
            change(r, "dropped index %s", stale[i]);
        free(stale[i]);
    }
    free(stale);
    return rc;
}

static int create_indexes(run *r, const ph_store_model *m)
{
    for (size_t i = PH_STORE_HOST_COLS; i < m->n_cols; i++) {
        const ph_store_field *f = &m->cols[i];
        int unique = (f->flags & PH_UNIQUE) != 0;
        if (!unique && !(f->flags & PH_INDEXED) && f->ref < 0)
            continue;
        char *name = index_name(m, f, unique);
        if (!name)
            return ph_error_set(PH_ENOMEM, "out of memory");
        int exists = 0, step = SQLITE_NOMEM;
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(r->db, "SELECT 1 FROM sqlite_master WHERE type='index' AND name=?1",
                               -1, &st, NULL) == SQLITE_OK &&
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) == SQLITE_OK)
            step = sqlite3_step(st);
        exists = step == SQLITE_ROW;
        sqlite3_finalize(st);
        if (step != SQLITE_ROW && step != SQLITE_DONE) { /* the transaction may be gone */
            sqlite3_free(name);
            return sql_failure(r->db, "cannot read the indexes");
        }
        int rc = exists ? 0
                        : exec_owned(r->db, sqlite3_mprintf("CREATE %s INDEX \"%w\" ON %s(%s)",
                                                            unique ? "UNIQUE" : "", name, m->qname,
                                                            f->qname));
        if (rc && unique)
            rc = failf(r,
                       "cannot make field '%s' of model '%s' unique: records share a value "
                       "(%s); make the values distinct in an upgrade script",
                       f->name, m->name, ph_error_last());
        else if (rc)
            rc = failf(r, "cannot index field '%s' of model '%s': %s", f->name, m->name,
                       ph_error_last());
        else if (!exists)
            change(r, "%s field '%s' of model '%s'", unique ? "made unique" : "indexed", f->name,
                   m->name);
        sqlite3_free(name);
        if (rc)
            return rc;
    }
    return 0;
}

static int sync_models(run *r)
{
    int rc = 0;
    for (size_t i = 0; i < r->c->n_models && !rc; i++) {
        const ph_store_model *m = &r->c->models[i];
        if ((rc = tx_alive(r))) /* before any change of this model */
            break;
        int exists = table_exists(r->db, m->name);
        if (exists < 0)
            rc = exists;
        else if (!exists)
            rc = create_table(r, m);
        else
            rc = sync_columns(r, m);
        if (!rc)
            rc = drop_stale_indexes(r, m);
        if (!rc)
            rc = create_indexes(r, m);
        if (!rc)
            rc = tx_alive(r);
    }
    return rc;
}

/*
 * The automatic step between two scripts: the tables and addable fields
 * (nullable or with a default) of the target declaration that are missing,
 * except those a script creates itself (r->excluded). Each is remembered in
 * r->eager. No index changes here: a later script may still fix the data a
 * unique index needs.
 */
static int add_missing(run *r)
{
    int rc = 0;
    for (size_t i = 0; i < r->c->n_models && !rc; i++) {
        const ph_store_model *m = &r->c->models[i];
        if (!table_exists(r->db, m->name)) {
            if (listed(r->excluded, m->name, NULL))
                continue;
            rc = create_table(r, m);
            json_array_append_new(r->eager, json_pack("[s, n]", m->name));
            continue;
        }
        col_info *cols = NULL;
        size_t n = 0;
        if ((rc = table_cols(r->db, m, &cols, &n)))
            break;
        for (size_t k = PH_STORE_HOST_COLS; k < m->n_cols && !rc; k++) {
            const ph_store_field *f = &m->cols[k];
            if (find_col(cols, n, f->name) || ((f->flags & PH_REQUIRED) && !f->def) ||
                listed(r->excluded, m->name, f->name))
                continue;
            rc = add_column(r, m, f);
            json_array_append_new(r->eager, json_pack("[s, s]", m->name, f->name));
        }
        free_cols(cols, n);
    }
    return rc;
}

static int run_chain_once(run *r)
{
    int rc = 0;
    for (size_t i = 0; i < r->chain.n && !rc; i++) {
        if (r->chain.auto_before[i] && (rc = add_missing(r)))
            break;
        rc = run_script(r, i);
        if (!rc)
            change(r, "ran %s", r->chain.names[i]);
    }
    return rc;
}

/*
 * Runs the chain with the automatic steps between scripts. When a script
 * fails on a table or field added ahead of it, everything since the
 * savepoint is undone and the chain runs again without adding it early;
 * each retry excludes at least one more, so this ends.
 */
static int run_chain(run *r)
{
    size_t n_changes = json_array_size(r->changes);
    int rc = exec(r->db, "SAVEPOINT ph_chain");
    for (int attempt = 0; !rc; attempt++) {
        json_array_clear(r->eager);
        r->conflict = 0;
        r->script_failed = 0;
        rc = run_chain_once(r);
        if (!rc || !r->conflict || attempt > 64)
            break;
        while (json_array_size(r->changes) > n_changes)
            json_array_remove(r->changes, json_array_size(r->changes) - 1);
        ph_error_clear();
        rc = exec(r->db, "ROLLBACK TO ph_chain");
    }
    if (!rc)
        rc = exec(r->db, "RELEASE ph_chain");
    return rc;
}

static int fk_check(run *r)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(r->db, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK)
        return ph_error_set(PH_ESQL, "foreign key check: %s", sqlite3_errmsg(r->db));
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = failf(r,
                   "after the upgrade scripts, record %lld of table '%s' refers to a missing "
                   "record of '%s'",
                   (long long)sqlite3_column_int64(st, 1), sqlite3_column_text(st, 0),
                   sqlite3_column_text(st, 2));
    else if (step != SQLITE_DONE)
        rc = sql_failure(r->db, "foreign key check");
    sqlite3_finalize(st);
    return rc;
}

static int bind_exec(sqlite3 *db, const char *sql, const char *const *vals, int n)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = ph_error_set(PH_ESQL, "%s: %s", sql, sqlite3_errmsg(db));
        goto cleanup;
    }
    for (int i = 0; i < n; i++) {
        if (sqlite3_bind_text(st, i + 1, vals[i], -1, SQLITE_TRANSIENT) != SQLITE_OK) {
            rc = sql_failure(db, sql);
            goto cleanup;
        }
    }
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = ph_error_set(PH_ESQL, "%s: %s", sql, sqlite3_errmsg(db));
cleanup:
    sqlite3_finalize(st);
    return rc;
}

static char *dump_or_null(json_t *v)
{
    return v ? ph_json_dumps(v, JSON_COMPACT) : NULL;
}

/* True if every declared model is stored with exactly its declared schema. */
static int declared_schemas_stored(const run *r)
{
    for (size_t i = 0; i < r->c->n_models; i++) {
        json_t *schema = ph_store_model_schema(&r->c->models[i]);
        int same = json_equal(schema, json_object_get(r->stored, r->c->models[i].name));
        json_decref(schema);
        if (!same)
            return 0;
    }
    return 1;
}

/* True if nothing would change: same version, no changes, the same stored schemas. */
static int up_to_date(const run *r)
{
    return !strcmp(r->action, "none") && !json_array_size(r->changes) && declared_schemas_stored(r);
}

static int record(run *r)
{
    char now[32];
    if (up_to_date(r))
        return 0; /* a plain start writes nothing */
    snprintf(now, sizeof now, "%lld", (long long)ph_store_now_ms());
    const char *meta[] = {"package", r->c->manifest->name, "version", r->target, "updated", now};
    int rc = bind_exec(r->db,
                       "INSERT OR REPLACE INTO _ph_meta(key, value) VALUES(?1,?2),(?3,?4),"
                       "(?5,?6)",
                       meta, 6);
    if (!rc && !r->installed)
        rc = bind_exec(r->db, "INSERT OR IGNORE INTO _ph_meta(key, value) VALUES('installed',?1)",
                       (const char *[]){now}, 1);
    for (size_t i = 0; i < r->c->n_models && !rc; i++) {
        json_t *schema = ph_store_model_schema(&r->c->models[i]);
        char *text = dump_or_null(schema);
        const char *vals[] = {r->c->models[i].name, text, r->target};
        rc = text ? bind_exec(r->db,
                              "INSERT OR REPLACE INTO _ph_models(name, schema, version) "
                              "VALUES(?1,?2,?3)",
                              vals, 3)
                  : ph_error_set(PH_ENOMEM, "out of memory"); /* never record a wrong schema */
        free(text);
        json_decref(schema);
    }
    if (rc || (!strcmp(r->action, "none") && !json_array_size(r->changes)))
        return rc;
    json_t *scripts = json_array();
    for (size_t i = 0; i < r->chain.n && !rc; i++)
        if (json_array_append_new(scripts, json_string(r->chain.names[i])))
            rc = ph_error_set(PH_ENOMEM, "out of memory");
    char *s = dump_or_null(scripts), *ch = dump_or_null(r->changes);
    const char *vals[] = {now, r->installed, r->target, s, r->backup, ch};
    sqlite3_stmt *st = NULL;
    if (rc || !s || !ch) { /* the history must say what ran */
        rc = ph_error_set(PH_ENOMEM, "out of memory");
    } else if (sqlite3_prepare_v2(r->db,
                                  "INSERT INTO _ph_migrations(at, from_version, to_version, "
                                  "scripts, backup, changes) VALUES(?1,?2,?3,?4,?5,?6)",
                                  -1, &st, NULL) == SQLITE_OK) {
        int bound = sqlite3_bind_int64(st, 1, ph_store_now_ms()) == SQLITE_OK;
        for (int i = 1; i < 6 && bound; i++)
            bound = sqlite3_bind_text(st, i + 1, vals[i], -1, SQLITE_TRANSIENT) == SQLITE_OK;
        if (!bound)
            rc = sql_failure(r->db, "cannot record the migration");
        else if (sqlite3_step(st) != SQLITE_DONE)
            rc = ph_error_set(PH_ESQL, "cannot record the migration: %s", sqlite3_errmsg(r->db));
    } else {
        rc = ph_error_set(PH_ESQL, "cannot record the migration: %s", sqlite3_errmsg(r->db));
    }
    sqlite3_finalize(st);
    free(s);
    free(ch);
    json_decref(scripts);
    return rc;
}

/* True if the stored schemas are exactly the declared ones (none and none included). */
static int schema_unchanged(const run *r)
{
    return json_object_size(r->stored) == r->c->n_models && declared_schemas_stored(r);
}

/* True if _ph_migrations records an upgrade script that led above version `t`. */
static int script_ran_since(sqlite3 *db, const ph_semver *t)
{
    sqlite3_stmt *st = NULL;
    int yes = 0;
    if (!table_exists(db, "_ph_migrations"))
        return 0;
    if (sqlite3_prepare_v2(db, "SELECT to_version FROM _ph_migrations WHERE scripts != '[]'", -1,
                           &st, NULL) != SQLITE_OK)
        return 1; /* unreadable history: assume the worst */
    while (!yes && sqlite3_step(st) == SQLITE_ROW) {
        ph_semver v;
        const char *text = (const char *)sqlite3_column_text(st, 0);
        yes = !text || ph_semver_parse(text, &v) || ph_semver_cmp(&v, t) > 0;
    }
    ph_error_clear();
    sqlite3_finalize(st);
    return yes;
}

/* Decides the action and finds the chain; may fail before anything is written. */
static int plan_run(run *r)
{
    ph_semver a, b;
    if (!r->installed) {
        r->action = "install";
        return 0;
    }
    if (ph_semver_parse(r->installed, &a) || ph_semver_parse(r->target, &b))
        return failf(r, "the database records version '%s', which is not a semantic version",
                     r->installed);
    int cmp = ph_semver_cmp(&b, &a);
    r->action = cmp == 0 ? "none" : cmp > 0 ? "upgrade" : "downgrade";
    if (cmp == 0)
        return 0;
    if (cmp > 0)
        return ph_migrate_upgrade_chain(r->sql_dir, r->installed, r->target, &r->chain);
    int rc = ph_migrate_find_chain(r->sql_dir, r->installed, r->target, &r->chain);
    if (rc == PH_ENOTFOUND) {
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", ph_error_last());
        if (schema_unchanged(r) && !script_ran_since(r->db, &b)) {
            ph_error_clear(); /* failure 6: nothing to undo, so going back needs no script */
            return 0;
        }
        char v[256];
        return ph_error_set(PH_EMIGRATION,
                            "instance '%s' (%s): the database holds data of %s "
                            "%s, newer than this package; downgrading needs "
                            "scripts: %s; install %s %s or newer instead (going back without "
                            "scripts works only when the schema is unchanged and no upgrade "
                            "script ran since %s)",
                            r->c->instance, prefix_versions(r, v, sizeof v), r->c->manifest->name,
                            r->installed, msg, r->c->manifest->name, r->installed, r->target);
    }
    return rc;
}

static int take_backup(run *r)
{
    if (strcmp(r->action, "upgrade") && strcmp(r->action, "downgrade"))
        return 0;
    char *kind = NULL;
    if (asprintf(&kind, "upgrade-%s-to-%s", r->installed, r->target) < 0)
        return ph_error_set(PH_ENOMEM, "out of memory");
    int rc = ph_backup_write(r->db, r->c->backup_dir, r->c->instance, kind, &r->backup);
    free(kind);
    if (rc) {
        ph_error_wrap("instance '%s': no upgrade without a verified backup; nothing was changed",
                      r->c->instance);
        return rc;
    }
    ph_backup_prune(r->c->backup_dir, r->c->instance, "upgrade", PH_BACKUP_KEEP);
    return 0;
}

/* Everything between BEGIN IMMEDIATE and COMMIT. */
static int migrate_in_tx(run *r, const char *expected)
{
    int rc = read_state(r);
    if (rc)
        return rc;
    if ((expected || r->installed) &&
        (!expected || !r->installed || strcmp(expected, r->installed) != 0))
        return ph_error_set(PH_EMIGRATION,
                            "instance '%s': the database changed version while "
                            "migrating (another host running it?); retry",
                            r->c->instance);
    if ((rc = ensure_meta(r->db)))
        return rc;
    if (r->chain.n)
        rc = run_chain(r);
    if (!rc)
        rc = sync_models(r);
    if (!rc && r->chain.n)
        rc = fk_check(r);
    if (!rc && !strcmp(r->action, "none") && json_array_size(r->changes))
        r->action = "update";
    if (!rc)
        rc = tx_alive(r); /* never record a version for changes that were rolled back */
    if (!rc)
        rc = record(r);
    return rc;
}

static json_t *make_report(const run *r)
{
    json_t *scripts = json_array();
    for (size_t i = 0; i < r->chain.n; i++)
        json_array_append_new(scripts, json_string(r->chain.names[i]));
    return json_pack("{s:s, s:s?, s:s, s:o, s:s?, s:O}", "action", r->action, "from", r->installed,
                     "to", r->target, "scripts", scripts, "backup", r->backup, "changes",
                     r->changes);
}

int ph_migrate_apply(ph_migrate_ctx *c, json_t **report)
{
    run r = {.c = c, .db = c->db, .target = c->manifest->version_text};
    char *expected = NULL;
    int rc, in_tx = 0, fk_off = 0;
    *report = NULL;
    r.changes = json_array();
    r.eager = json_array();
    r.excluded = json_array();
    if (asprintf(&r.sql_dir, "%s/sql", c->manifest->dir) < 0) {
        r.sql_dir = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = read_state(&r)) || (rc = plan_run(&r)) || (rc = take_backup(&r)))
        goto cleanup;
    if (r.installed && !(expected = strdup(r.installed))) {
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (r.chain.n) { /* scripts may rebuild tables (the 12-step ALTER); checked before COMMIT */
        if ((rc = exec(r.db, "PRAGMA foreign_keys=OFF")))
            goto cleanup;
        fk_off = 1;
    }
    if ((rc = exec(r.db, "BEGIN IMMEDIATE")))
        goto cleanup;
    in_tx = 1;
    if ((rc = migrate_in_tx(&r, expected)))
        goto cleanup;
    if (c->defer_commit) {
        c->fk_off = fk_off;
        fk_off = 0;
    } else if ((rc = exec(r.db, "COMMIT"))) {
        goto cleanup;
    }
    in_tx = 0;
    *report = make_report(&r);
    if (c->defer_commit)
        json_object_set_new(*report, "pending", json_true());
cleanup:
    if (in_tx)
        sqlite3_exec(r.db, "ROLLBACK", NULL, NULL, NULL);
    if (fk_off)
        sqlite3_exec(r.db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    ph_migrate_chain_free(&r.chain);
    json_decref(r.stored);
    json_decref(r.changes);
    json_decref(r.eager);
    json_decref(r.excluded);
    free(r.installed);
    free(r.sql_dir);
    free(r.backup);
    free(expected);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Planning (check)                                                     */
/* ------------------------------------------------------------------ */

/*
 * A downgrade without a chain of scripts: allowed when no upgrade script ran
 * since the target and the schema did not change. Without the declaration
 * (no package code runs here) only "no models stored" is certain; otherwise
 * the dry run of `check` decides.
 */
static int downgrade_note(json_t *plan, const char *data_dir, const char *instance,
                          const ph_semver *target)
{
    char *err = strdup(ph_error_last());
    char *path = NULL;
    sqlite3 *db = NULL;
    int rc = ph_store_db_path(data_dir, instance, &path), ran = 1, models = -1;
    if (rc || !err) {
        free(err);
        free(path);
        return rc ? rc : ph_error_set(PH_ENOMEM, "out of memory");
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        ran = script_ran_since(db, target);
        models = table_exists(db, "_ph_models")
                     ? (int)count_where(db, "SELECT count(*) FROM _ph_models")
                     : 0;
    }
    sqlite3_close(db);
    free(path);
    if (ran)
        json_object_set_new(plan, "problem", json_sprintf("downgrade refused: %s", err));
    else if (models == 0)
        json_object_set_new(plan, "note",
                            json_string("no scripts needed: no models and no upgrade script "
                                        "ran since; recorded as a downgrade"));
    else
        json_object_set_new(plan, "note",
                            json_string("without scripts: allowed only if the declared models "
                                        "are exactly the stored ones"));
    free(err);
    return 0;
}

int ph_migrate_plan(const ph_manifest *m, const char *data_dir, const char *instance, json_t **out)
{
    char *installed = NULL, *sql_dir = NULL;
    ph_migrate_chain chain = {0};
    json_t *plan = NULL, *scripts = json_array();
    int rc;
    *out = NULL;
    if ((rc = ph_store_installed_version(data_dir, instance, &installed)))
        goto cleanup;
    if (asprintf(&sql_dir, "%s/sql", m->dir) < 0) {
        sql_dir = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    plan = json_pack("{s:s, s:s, s:s?, s:s, s:O}", "instance", instance, "package", m->name,
                     "installed", installed, "target", m->version_text, "scripts", scripts);
    if (!plan) {
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    ph_semver a;
    if (!installed) {
        json_object_set_new(plan, "action", json_string("install"));
        goto cleanup;
    }
    if (ph_semver_parse(installed, &a)) {
        ph_error_clear();
        json_object_set_new(plan, "action", json_string("upgrade"));
        json_object_set_new(plan, "problem",
                            json_sprintf("the database records version '%s', "
                                         "which is not a semantic version",
                                         installed));
        goto cleanup;
    }
    int cmp = ph_semver_cmp(&m->version, &a);
    json_object_set_new(plan, "action",
                        json_string(cmp == 0  ? "none"
                                    : cmp > 0 ? "upgrade"
                                              : "downgrade"));
    if (cmp == 0)
        goto cleanup;
    int frc = cmp > 0 ? ph_migrate_upgrade_chain(sql_dir, installed, m->version_text, &chain)
                      : ph_migrate_find_chain(sql_dir, installed, m->version_text, &chain);
    json_t *steps = json_array();
    for (size_t i = 0; !frc && i < chain.n; i++) {
        if (chain.auto_before[i])
            json_array_append_new(steps, json_string("automatic changes"));
        json_array_append_new(steps, json_string(chain.names[i]));
        json_array_append_new(scripts, json_string(chain.names[i]));
    }
    if (!frc && cmp > 0 && (!chain.n || strcmp(chain.to[chain.n - 1], m->version_text)))
        json_array_append_new(steps, json_sprintf("automatic changes to %s", m->version_text));
    json_object_set_new(plan, "steps", steps);
    if (frc && cmp < 0 && (rc = downgrade_note(plan, data_dir, instance, &m->version)))
        goto cleanup;
    if (cmp > 0 && !chain.n)
        json_object_set_new(plan, "note",
                            json_sprintf("no upgrade scripts: only added models, "
                                         "fields and indexes can apply; a dropped, "
                                         "renamed or retyped field needs "
                                         "%s/upgrade-%s-%s.sql",
                                         sql_dir, installed, m->version_text));
    else if (cmp > 0 && strcmp(chain.to[chain.n - 1], m->version_text))
        json_object_set_new(plan, "note",
                            json_sprintf("a field dropped, renamed or retyped after %s needs "
                                         "%s/upgrade-%s-%s.sql",
                                         chain.to[chain.n - 1], sql_dir, chain.to[chain.n - 1],
                                         m->version_text));
    ph_error_clear();
cleanup:
    if (!rc) {
        *out = plan;
        plan = NULL;
    }
    json_decref(plan);
    json_decref(scripts);
    ph_migrate_chain_free(&chain);
    free(installed);
    free(sql_dir);
    return rc;
}

char *ph_migrate_plan_text(const json_t *plan)
{
    const char *inst = json_string_value(json_object_get(plan, "instance"));
    const char *action = json_string_value(json_object_get(plan, "action"));
    const char *from = json_string_value(json_object_get(plan, "installed"));
    const char *to = json_string_value(json_object_get(plan, "target"));
    const char *problem = json_string_value(json_object_get(plan, "problem"));
    const char *note = json_string_value(json_object_get(plan, "note"));
    json_t *scripts = json_object_get(plan, "scripts");
    json_t *steps = json_object_get(plan, "steps");
    sqlite3_str *s = sqlite3_str_new(NULL);
    if (!action)
        action = "?";
    if (!strcmp(action, "install"))
        sqlite3_str_appendf(s, "%s: new database for %s", inst, to);
    else if (!strcmp(action, "none"))
        sqlite3_str_appendf(s, "%s: schema up to date (%s)", inst, to);
    else
        sqlite3_str_appendf(s, "%s: %s %s -> %s", inst, action, from ? from : "?", to);
    if (json_array_size(scripts)) {
        size_t i;
        json_t *v;
        sqlite3_str_appendall(s, " via ");
        json_array_foreach(json_array_size(steps) ? steps : scripts, i, v)
        {
            sqlite3_str_appendf(s, "%s%s", i ? ", " : "", json_string_value(v));
        }
        sqlite3_str_appendall(s, " (verified backup first)");
    }
    if (problem)
        sqlite3_str_appendf(s, ": ERROR %s", problem);
    else if (note)
        sqlite3_str_appendf(s, " (%s)", note);
    char *t = sqlite3_str_finish(s);
    char *copy = t ? strdup(t) : NULL;
    sqlite3_free(t);
    return copy;
}
