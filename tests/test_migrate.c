/*
 * Schema migrations: chain selection, upgrade scripts, automatic changes,
 * refusals, backups, the `check` plan, and notes 1.0.0 -> 2.0.0 end to end
 * through the real plughost binary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backup.h"
#include "migrate.h"
#include "packages/model_common/harness.h"

/* ---- the model "note" at several versions ---- */

static const ph_field f_v1[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED),
    PH_FIELD("body", PH_TEXT, 0),
    PH_FIELD("n", PH_INT, 0),
};
static const ph_model m_v1[] = {PH_MODEL("note", f_v1)};
static const ph_package d_v1 = MH_DESC("1.0.0", m_v1);

static const ph_field f_v11[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED),
    PH_FIELD("content", PH_TEXT, 0),
    PH_FIELD("n", PH_INT, 0),
};
static const ph_model m_v11[] = {PH_MODEL("note", f_v11)};
static const ph_package d_v11 = MH_DESC("1.1.0", m_v11);
static const ph_package d_v2 = MH_DESC("2.0.0", m_v11);

static const ph_field f_add[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED),
    PH_FIELD("body", PH_TEXT, 0),
    PH_FIELD("n", PH_INT, PH_INDEXED),
    PH_FIELD("extra", PH_TEXT, PH_DEFAULT("x")),
    PH_FIELD("tags", PH_JSON, 0),
};
static const ph_field f_label[] = {PH_FIELD("name", PH_TEXT, PH_UNIQUE)};
static const ph_model m_add[] = {PH_MODEL("note", f_add), PH_MODEL("label", f_label)};
static const ph_package d_add = MH_DESC("1.1.0", m_add);

static const ph_field f_drop[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED),
    PH_FIELD("n", PH_INT, 0),
};
static const ph_model m_drop[] = {PH_MODEL("note", f_drop)};
static const ph_package d_drop_same = MH_DESC("1.0.0", m_drop);

static const ph_field f_type[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED),
    PH_FIELD("body", PH_INT, 0),
    PH_FIELD("n", PH_INT, 0),
};
static const ph_model m_type[] = {PH_MODEL("note", f_type)};
static const ph_package d_type = MH_DESC("1.2.0", m_type);

static const ph_field f_req[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED),
    PH_FIELD("body", PH_TEXT, 0),
    PH_FIELD("n", PH_INT, 0),
    PH_FIELD("must", PH_TEXT, PH_REQUIRED),
};
static const ph_model m_req[] = {PH_MODEL("note", f_req)};
static const ph_package d_req = MH_DESC("1.1.0", m_req);

static const ph_field f_uniq[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED | PH_UNIQUE),
    PH_FIELD("body", PH_TEXT, 0),
    PH_FIELD("n", PH_INT, 0),
};
static const ph_model m_uniq[] = {PH_MODEL("note", f_uniq)};
static const ph_package d_uniq = MH_DESC("1.1.0", m_uniq);

static int setup(void **state)
{
    mh *h = calloc(1, sizeof *h);
    mh_init(h);
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    mh_done(*state);
    free(*state);
    return 0;
}

/* Version 1.0.0 with `rows` notes: title tN, body bN, n N. */
static void install_v1(mh *h, int rows)
{
    mh_open(h, &d_v1);
    for (int i = 1; i <= rows; i++) {
        char *args = tu_fmt("{\"title\":\"t%d\",\"body\":\"b%d\",\"n\":%d}", i, i, i);
        assert_int_equal(mh_call(h, "note.new", args, NULL), 0);
        free(args);
    }
    mh_close_instance(h);
}

static void script(mh *h, const char *name, const char *text)
{
    char *rel = tu_fmt("sql/%s", name);
    free(tu_write(h->pkgdir, rel, text));
    free(rel);
}

/* Attaching `d` must fail with PH_EMIGRATION and a message holding each text. */
static void attach_fails(mh *h, const ph_package *d, const char *t1, const char *t2)
{
    mh_instance(h, d);
    int rc = mh_attach(h);
    if (rc != PH_EMIGRATION)
        fprintf(stderr, "attach: %d %s\n", rc, ph_error_last());
    assert_int_equal(rc, PH_EMIGRATION);
    assert_null(h->inst->store);
    assert_true(tu_contains(ph_error_last(), t1));
    if (t2)
        assert_true(tu_contains(ph_error_last(), t2));
    assert_true(tu_contains(ph_error_last(), "the database was not changed"));
    ph_instance_free(h->inst);
    h->inst = NULL;
}

#define q mh_q
#define expect_q mh_expect_q

/* The database is still exactly version 1.0.0 with `rows` rows. */
static void still_v1(mh *h, int rows)
{
    char *n = tu_fmt("%d", rows);
    expect_q(h, "SELECT value FROM _ph_meta WHERE key='version'", "1.0.0");
    expect_q(h, "SELECT count(*) FROM pragma_table_info('note') WHERE name='body'", "1");
    expect_q(h, "SELECT count(*) FROM pragma_table_info('note') WHERE name='content'", "0");
    expect_q(h, "SELECT count(*) FROM note", n);
    expect_q(h, "SELECT group_concat(body, ',') FROM (SELECT body FROM note ORDER BY id LIMIT 3)",
             rows >= 3   ? "b1,b2,b3"
             : rows == 2 ? "b1,b2"
             : rows == 1 ? "b1"
                         : "(none)");
    expect_q(h, "PRAGMA integrity_check", "ok");
    free(n);
}

/* ---- chain selection ---- */

static void test_chain_selection(void **state)
{
    mh *h = *state;
    ph_migrate_chain c;
    char *dir = tu_fmt("%s/sql", h->pkgdir);
    script(h, "upgrade-1.0.0-1.1.0.sql", "");
    script(h, "upgrade-1.1.0-1.2.0.sql", "");
    script(h, "upgrade-1.2.0-2.0.0.sql", "");
    script(h, "upgrade-1.0.0-1.2.0.sql", "");
    script(h, "upgrade-2.0.0-1.2.0.sql", "");
    script(h, "upgrade-2.0.0-rc.1-2.0.0.sql", "");
    script(h, "upgrade-one-two.sql", "");
    script(h, "README", "");

    assert_int_equal(ph_migrate_find_chain(dir, "1.0.0", "2.0.0", &c), 0);
    assert_int_equal(c.n, 2); /* shortest: through the direct 1.0.0 -> 1.2.0 */
    assert_string_equal(c.names[0], "upgrade-1.0.0-1.2.0.sql");
    assert_string_equal(c.names[1], "upgrade-1.2.0-2.0.0.sql");
    assert_true(tu_contains(c.paths[1], "/sql/upgrade-1.2.0-2.0.0.sql"));
    ph_migrate_chain_free(&c);

    assert_int_equal(ph_migrate_find_chain(dir, "1.1.0", "2.0.0", &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.names[0], "upgrade-1.1.0-1.2.0.sql");
    ph_migrate_chain_free(&c);

    assert_int_equal(ph_migrate_find_chain(dir, "2.0.0-rc.1", "1.2.0", &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.names[0], "upgrade-2.0.0-rc.1-2.0.0.sql");
    ph_migrate_chain_free(&c);

    assert_int_equal(ph_migrate_find_chain(dir, "1.2.0", "1.2.0", &c), 0);
    assert_int_equal(c.n, 0);
    ph_migrate_chain_free(&c);

    assert_int_equal(ph_migrate_find_chain(dir, "1.0.0", "3.0.0", &c), PH_ENOTFOUND);
    assert_true(tu_contains(ph_error_last(), "no chain of upgrade scripts leads from 1.0.0 to "
                                             "3.0.0: add "));
    assert_true(tu_contains(ph_error_last(), "/sql/upgrade-1.0.0-3.0.0.sql (scripts found: "
                                             "upgrade-1.0.0-1.1.0.sql, upgrade-1.0.0-1.2.0.sql"));
    assert_true(tu_contains(ph_error_last(), "ignored, names must be upgrade-<from>-<to>.sql "
                                             "with semantic versions: upgrade-one-two.sql"));
    ph_migrate_chain_free(&c);
    assert_int_equal(ph_migrate_find_chain(dir, "1.0", "2.0.0", &c), PH_EINVAL);
    ph_migrate_chain_free(&c);
    free(dir);
}

/* ---- the upgrade rule: every script within S..T, greedy over overlaps ---- */

static void test_upgrade_chain_rule(void **state)
{
    mh *h = *state;
    ph_migrate_chain c;
    char *dir = tu_fmt("%s/sql", h->pkgdir);
    script(h, "upgrade-1.0.0-1.1.0.sql", "");
    script(h, "upgrade-1.1.0-1.2.0.sql", "");
    script(h, "upgrade-1.0.0-1.2.0.sql", "");
    script(h, "upgrade-1.3.0-1.4.0.sql", "");
    script(h, "upgrade-1.4.0-1.3.0.sql", "");
    script(h, "upgrade-1.4.0-2.0.0.sql", "");
    /* direct script preferred, then a gap (automatic), then 1.3.0 -> 1.4.0 */
    assert_int_equal(ph_migrate_upgrade_chain(dir, "1.0.0", "1.5.0", &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.names[0], "upgrade-1.0.0-1.2.0.sql");
    assert_string_equal(c.names[1], "upgrade-1.3.0-1.4.0.sql");
    assert_int_equal(c.auto_before[0], 0);
    assert_int_equal(c.auto_before[1], 1);
    assert_string_equal(c.to[1], "1.4.0");
    ph_migrate_chain_free(&c);
    /* a skipped release's script still runs (failure 1): 1.0.0 -> 1.1.5 */
    assert_int_equal(ph_migrate_upgrade_chain(dir, "1.0.0", "1.1.5", &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.names[0], "upgrade-1.0.0-1.1.0.sql");
    ph_migrate_chain_free(&c);
    /* starting above a script's `from`: that script is not in S..T */
    assert_int_equal(ph_migrate_upgrade_chain(dir, "1.0.5", "1.3.5", &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.names[0], "upgrade-1.1.0-1.2.0.sql");
    assert_int_equal(c.auto_before[0], 1);
    ph_migrate_chain_free(&c);
    assert_int_equal(ph_migrate_upgrade_chain(dir, "2.0.0", "3.0.0", &c), 0);
    assert_int_equal(c.n, 0);
    ph_migrate_chain_free(&c);
    assert_int_equal(ph_migrate_upgrade_chain(dir, "2.0.0", "1.0.0", &c), PH_EINVAL);
    ph_migrate_chain_free(&c);
    free(dir);
}

/* ---- the shop example of issue 8 ---- */

static const ph_field shop_f1[] = {
    PH_FIELD("name", PH_TEXT, PH_REQUIRED),
    PH_FIELD("price", PH_INT, 0),
};
static const ph_model shop_m1[] = {PH_MODEL("item", shop_f1)};
static const ph_package shop_10 = MH_DESC("1.0.0", shop_m1);
static const ph_package shop_11 = MH_DESC("1.1.0", shop_m1);
static const ph_field shop_f3[] = {
    PH_FIELD("name", PH_TEXT, PH_REQUIRED),
    PH_FIELD("price", PH_INT, 0),
    PH_FIELD("note", PH_TEXT, 0),
};
static const ph_model shop_m3[] = {PH_MODEL("item", shop_f3)};
static const ph_package shop_12 = MH_DESC("1.2.0", shop_m3);
static const ph_field shop_f3r[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED),
    PH_FIELD("price", PH_INT, 0),
};
static const ph_model shop_m3r[] = {PH_MODEL("item", shop_f3r)};
static const ph_package shop_12_rename = MH_DESC("1.2.0", shop_m3r);

/*
 * Schema (tables, columns by name and type, indexes) and every row (columns
 * by name), for comparing routes. Left out, as history rather than state:
 * _ph_migrations, _ph_meta's timestamps, the record timestamps (created,
 * updated), column order and the SQL text of sqlite_master.
 */
static char *db_digest(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *t = NULL;
    sqlite3_str *out = sqlite3_str_new(NULL);
    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    sqlite3_prepare_v2(db,
                       "SELECT type, name, tbl_name FROM sqlite_master WHERE type IN "
                       "('table','index') AND name NOT LIKE 'sqlite%' AND name NOT IN "
                       "('_ph_meta','_ph_migrations') ORDER BY type, name",
                       -1, &t, NULL);
    while (sqlite3_step(t) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(t, 0);
        const char *name = (const char *)sqlite3_column_text(t, 1);
        char *sql = NULL;
        if (!strcmp(type, "index"))
            sql = sqlite3_mprintf("SELECT 'index %q on %q(' || group_concat(name) || ')' FROM "
                                  "pragma_index_info(%Q)",
                                  name, sqlite3_column_text(t, 2), name);
        else
            sql = sqlite3_mprintf("SELECT 'table %q: ' || group_concat(name || ' ' || type, ', ') "
                                  "FROM (SELECT name, type FROM pragma_table_info(%Q) ORDER BY "
                                  "name)",
                                  name, name);
        char *line = mh_sql1(path, sql);
        sqlite3_str_appendf(out, "%s\n", line);
        free(line);
        sqlite3_free(sql);
        if (!strcmp(type, "table")) {
            /* every row, columns by name */
            /* created/updated hold the time of the write, which differs between runs */
            sql = sqlite3_mprintf("SELECT group_concat(name, ',') FROM (SELECT name FROM "
                                  "pragma_table_info(%Q) WHERE name NOT IN ('created', "
                                  "'updated') ORDER BY name)",
                                  name);
            char *cols = mh_sql1(path, sql);
            sqlite3_free(sql);
            sqlite3_str *q = sqlite3_str_new(NULL);
            sqlite3_str_appendall(q, "SELECT group_concat(r, char(10)) FROM (SELECT ''");
            for (char *c = strtok(cols, ","); c; c = strtok(NULL, ","))
                sqlite3_str_appendf(q, " || '%q=' || quote(\"%w\") || ' '", c, c);
            sqlite3_str_appendf(q, " AS r FROM \"%w\" ORDER BY 1)", name);
            char *qs = sqlite3_str_finish(q);
            char *data = mh_sql1(path, qs);
            sqlite3_str_appendf(out, "%s\n", data);
            free(data);
            sqlite3_free(qs);
            free(cols);
        }
    }
    sqlite3_finalize(t);
    sqlite3_close(db);
    char *v = mh_sql1(path, "SELECT value FROM _ph_meta WHERE key='version'");
    sqlite3_str_appendf(out, "version %s\n", v);
    free(v);
    char *r = sqlite3_str_finish(out);
    char *copy = strdup(r);
    sqlite3_free(r);
    return copy;
}

static void shop_install(mh *h)
{
    mh_open(h, &shop_10);
    assert_int_equal(mh_call(h, "item.new", "{\"name\":\"pen\",\"price\":3}", NULL), 0);
    assert_int_equal(mh_call(h, "item.new", "{\"name\":\"ink\",\"price\":7}", NULL), 0);
    mh_close_instance(h);
}

static void test_shop_skipped_release_runs_its_script(void **state)
{
    mh *h = *state;
    script(h, "upgrade-1.0.0-1.1.0.sql", "UPDATE item SET price = price*100;\n");
    /* route A: 1.0.0 -> 1.1.0 -> 1.2.0 */
    shop_install(h);
    mh_open(h, &shop_11);
    mh_close_instance(h);
    mh_open(h, &shop_12);
    mh_close_instance(h);
    expect_q(h, "SELECT price FROM item WHERE name='pen'", "300");
    char *path = mh_db_path(h);
    char *a = db_digest(path);
    /* route B: 1.0.0 -> 1.2.0 directly (a fresh data directory, the same package dir) */
    tu_rmtree(h->data);
    shop_install(h);
    mh_open(h, &shop_12);
    mh_close_instance(h);
    expect_q(h, "SELECT price FROM item WHERE name='pen'", "300");
    expect_q(h, "SELECT group_concat(price) FROM item", "300,700");
    expect_q(h,
             "SELECT from_version || '>' || to_version || ' ' || scripts FROM _ph_migrations "
             "ORDER BY id DESC LIMIT 1",
             "1.0.0>1.2.0 [\"upgrade-1.0.0-1.1.0.sql\"]");
    char *b = db_digest(path);
    free(path);
    if (strcmp(a, b))
        fprintf(stderr, "route A:\n%s\nroute B:\n%s\n", a, b);
    assert_string_equal(a, b);
    assert_true(tu_contains(a, "table item: created INTEGER, id INTEGER, name TEXT, note TEXT, "
                               "price INTEGER"));
    free(a);
    free(b);
}

static void test_missing_link_advice(void **state)
{
    mh *h = *state;
    script(h, "upgrade-1.0.0-1.1.0.sql", "UPDATE item SET price = price*100;\n");
    shop_install(h);
    mh_instance(h, &shop_12_rename);
    assert_int_equal(mh_attach(h), PH_EMIGRATION);
    const char *e = ph_error_last();
    assert_true(tu_contains(e, "instance 't' (t 1.0.0 -> 1.2.0): new field 'title' of model "
                               "'item' is required and has no default, but 2 records exist"));
    assert_true(tu_contains(e, "add "));
    assert_true(tu_contains(e, "/sql/upgrade-1.1.0-1.2.0.sql that makes this change"));
    assert_false(tu_contains(e, "upgrade-1.0.0-1.2.0.sql"));
    assert_true(tu_contains(e, "the scripts before it ran: upgrade-1.0.0-1.1.0.sql"));
    assert_true(tu_contains(e, "the database was not changed"));
    ph_instance_free(h->inst);
    h->inst = NULL;
    expect_q(h, "SELECT group_concat(price) FROM item", "3,7");
    expect_q(h, "SELECT value FROM _ph_meta WHERE key='version'", "1.0.0");
}

/* ---- failure 6: going back when the schema did not change ---- */

static const ph_package bare_2 = {
    .abi = PH_ABI_VERSION, .size = sizeof(ph_package), .name = "t", .version = "2.0.0"};
static const ph_package bare_123 = {
    .abi = PH_ABI_VERSION, .size = sizeof(ph_package), .name = "t", .version = "1.2.3"};
static const ph_package d_v09 = MH_DESC("0.9.0", m_v1);
static const ph_package d_v101 = MH_DESC("1.0.1", m_v1);

static void test_downgrade_without_schema_change(void **state)
{
    mh *h = *state;
    mh_open(h, &bare_2);
    mh_close_instance(h);
    mh_open(h, &bare_123);
    mh_close_instance(h);
    expect_q(h, "SELECT value FROM _ph_meta WHERE key='version'", "1.2.3");
    expect_q(h,
             "SELECT from_version || '>' || to_version || ' ' || scripts || ' ' || "
             "(backup IS NOT NULL) FROM _ph_migrations ORDER BY id DESC LIMIT 1",
             "2.0.0>1.2.3 [] 1");
    char *backup = q(h, "SELECT backup FROM _ph_migrations ORDER BY id DESC LIMIT 1");
    assert_true(tu_contains(backup, "-upgrade-2.0.0-to-1.2.3.db"));
    assert_int_equal(ph_backup_verify(backup), 0);
    free(backup);
    /* models identical: back from 1.0.0 to 0.9.0 works too */
    mh_done(h);
    mh_init(h);
    install_v1(h, 2);
    mh_open(h, &d_v09);
    mh_close_instance(h);
    expect_q(h, "SELECT value FROM _ph_meta WHERE key='version'", "0.9.0");
    expect_q(h, "SELECT count(*) FROM note", "2");
    /* but not over an upgrade script that ran since: its data change cannot be undone */
    script(h, "upgrade-0.9.0-1.0.1.sql", "UPDATE note SET n = n + 1;");
    mh_open(h, &d_v101);
    mh_close_instance(h);
    mh_instance(h, &d_v09);
    assert_int_equal(mh_attach(h), PH_EMIGRATION);
    assert_true(tu_contains(ph_error_last(), "downgrading needs scripts: no chain of upgrade "
                                             "scripts leads from 1.0.1 to 0.9.0"));
    assert_true(tu_contains(ph_error_last(), "going back without scripts works only when the "
                                             "schema is unchanged and no upgrade script ran "
                                             "since 0.9.0"));
    ph_instance_free(h->inst);
    h->inst = NULL;
    expect_q(h, "SELECT value FROM _ph_meta WHERE key='version'", "1.0.1");
    /* and not when the schema differs (d_v1 has field body, 0.9.0 here has none) */
    mh_done(h);
    mh_init(h);
    install_v1(h, 1);
    static const ph_package d_drop_09 = MH_DESC("0.9.0", m_drop);
    mh_instance(h, &d_drop_09);
    assert_int_equal(mh_attach(h), PH_EMIGRATION);
    ph_instance_free(h->inst);
    h->inst = NULL;
    still_v1(h, 1);
}

/* ---- acceptance 1: generated release histories, random routes ---- */

/*
 * A history: releases 1.0.0, 1.1.0, ... Each release may add models and
 * fields (nullable or with a default), and ship a script that changes data,
 * inserts rows, renames or retypes a field that existed at 1.0.0 or that a
 * script created (the documented limit: scripts do not rely on fields a
 * later release drops). Sometimes a direct script skips a release without
 * automatic changes. Every route from 1.0.0 to the last release must give
 * the same digest as installing every release in turn.
 */
#define G_MODELS 4
#define G_FIELDS 12
#define G_RELEASES 7

typedef struct gfield {
    char name[24];
    ph_type type;
    uint32_t flags;
    const char *def;
    int scripted; /* existed at 1.0.0 or created by a script: scripts may rename/retype it */
} gfield;
typedef struct gmodel {
    char name[16];
    gfield f[G_FIELDS];
    int n;
} gmodel;
typedef struct grelease {
    gmodel m[G_MODELS];
    int n;
    ph_field fields[G_MODELS][G_FIELDS];
    ph_model models[G_MODELS];
    ph_package desc;
    char version[16];
} grelease;

static unsigned g_rand(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) & 0x7fff;
}

static void g_desc(grelease *r)
{
    for (int i = 0; i < r->n; i++) {
        for (int k = 0; k < r->m[i].n; k++) {
            gfield *f = &r->m[i].f[k];
            r->fields[i][k] =
                (ph_field){.name = f->name, .type = f->type, .flags = f->flags, .def = f->def};
        }
        r->models[i] = (ph_model){
            .name = r->m[i].name, .fields = r->fields[i], .n_fields = (uint32_t)r->m[i].n};
    }
    r->desc = (ph_package){.abi = PH_ABI_VERSION,
                           .size = sizeof(ph_package),
                           .name = "t",
                           .version = r->version,
                           .models = r->models,
                           .n_models = (uint32_t)r->n};
}

static void g_add_field(gmodel *m, unsigned *seed, int tag, int scripted)
{
    if (m->n >= G_FIELDS - 2)
        return;
    gfield *f = &m->f[m->n++];
    snprintf(f->name, sizeof f->name, "f%d_%d", tag, m->n);
    f->type = g_rand(seed) % 2 ? PH_INT : PH_TEXT;
    f->flags = 0;
    f->def = NULL;
    f->scripted = scripted;
    if (!scripted && g_rand(seed) % 2) {
        f->flags = PH_HAS_DEFAULT;
        f->def = f->type == PH_INT ? "7" : "d";
    }
    if (!scripted && g_rand(seed) % 4 == 0)
        f->flags |= PH_INDEXED;
}

/* One script statement changing release `r` (already a copy of the previous one). */
static void g_script_op(grelease *r, unsigned *seed, int rel, int op, sqlite3_str *sql)
{
    gmodel *m = &r->m[g_rand(seed) % r->n];
    gfield *f = &m->f[g_rand(seed) % m->n];
    switch (op) {
    case 0: /* data change */
        if (f->type == PH_INT)
            sqlite3_str_appendf(sql, "UPDATE %s SET %s = %s * 3 + %d;\n", m->name, f->name, f->name,
                                rel);
        else
            sqlite3_str_appendf(sql, "UPDATE %s SET %s = %s || 'r%d';\n", m->name, f->name, f->name,
                                rel);
        break;
    case 1: /* a new row */
        sqlite3_str_appendf(sql, "INSERT INTO %s(created, updated, %s) VALUES(1, 2, %s);\n",
                            m->name, f->name, f->type == PH_INT ? "42" : "'s'");
        break;
    case 2: /* rename */
        if (!f->scripted || (f->flags & PH_INDEXED))
            break;
        char old[24];
        snprintf(old, sizeof old, "%s", f->name);
        snprintf(f->name, sizeof f->name, "r%d_%.12s", rel, old);
        sqlite3_str_appendf(sql, "ALTER TABLE %s RENAME COLUMN %s TO %s;\n", m->name, old, f->name);
        break;
    default: /* retype integer -> text */
        if (!f->scripted || (f->flags & PH_INDEXED) || f->type != PH_INT)
            break;
        sqlite3_str_appendf(sql,
                            "ALTER TABLE %s ADD COLUMN tmp_%d TEXT;\n"
                            "UPDATE %s SET tmp_%d = CAST(%s AS TEXT) || 'x';\n"
                            "ALTER TABLE %s DROP COLUMN %s;\n"
                            "ALTER TABLE %s RENAME COLUMN tmp_%d TO %s;\n",
                            m->name, rel, m->name, rel, f->name, m->name, f->name, m->name, rel,
                            f->name);
        f->type = PH_TEXT;
        break;
    }
}

/* Generates the releases and writes their scripts; returns how many releases. */
static int g_history(mh *h, unsigned seed, grelease *rel, char **sqls)
{
    int n = 3 + (int)(g_rand(&seed) % (G_RELEASES - 2));
    memset(rel, 0, sizeof *rel * G_RELEASES);
    rel[0].n = 1 + (int)(g_rand(&seed) % 2);
    for (int i = 0; i < rel[0].n; i++) {
        snprintf(rel[0].m[i].name, sizeof rel[0].m[i].name, "m%d", i);
        for (int k = 0; k < 2 + (int)(g_rand(&seed) % 2); k++)
            g_add_field(&rel[0].m[i], &seed, 0, 1);
    }
    for (int v = 0; v < n; v++) {
        sqls[v] = NULL;
        if (v) {
            memcpy(rel[v].m, rel[v - 1].m, sizeof rel[v].m);
            rel[v].n = rel[v - 1].n;
            sqlite3_str *sql = sqlite3_str_new(NULL);
            int ops = (int)(g_rand(&seed) % 4); /* 0: no script */
            for (int k = 0; k < ops; k++)
                g_script_op(&rel[v], &seed, v, (int)(g_rand(&seed) % 4), sql);
            char *text = sqlite3_str_finish(sql);
            if (text && *text)
                sqls[v] = strdup(text);
            sqlite3_free(text);
            int adds = (int)(g_rand(&seed) % 3);
            for (int k = 0; k < adds; k++) {
                if (g_rand(&seed) % 3 == 0 && rel[v].n < G_MODELS) {
                    gmodel *m = &rel[v].m[rel[v].n++];
                    snprintf(m->name, sizeof m->name, "m%d", rel[v].n - 1);
                    g_add_field(m, &seed, v, 0);
                } else {
                    g_add_field(&rel[v].m[g_rand(&seed) % rel[v].n], &seed, v, 0);
                }
            }
        }
        snprintf(rel[v].version, sizeof rel[v].version, "1.%d.0", v);
        g_desc(&rel[v]);
    }
    for (int v = 1; v < n; v++)
        if (sqls[v]) {
            char *name = tu_fmt("upgrade-1.%d.0-1.%d.0.sql", v - 1, v);
            script(h, name, sqls[v]);
            free(name);
        }
    /* a direct script over a release that added nothing: v-1 -> v+1 */
    for (int v = 1; v + 1 < n; v++) {
        if ((!sqls[v] && !sqls[v + 1]) || g_rand(&seed) % 3)
            continue;
        int plain = 1; /* release v adds nothing without a script */
        for (int i = 0; i < rel[v].n && plain; i++)
            plain = i < rel[v - 1].n && rel[v].m[i].n == rel[v - 1].m[i].n;
        plain = plain && rel[v].n == rel[v - 1].n;
        if (!plain)
            continue;
        char *name = tu_fmt("upgrade-1.%d.0-1.%d.0.sql", v - 1, v + 1);
        char *text = tu_fmt("%s%s", sqls[v] ? sqls[v] : "", sqls[v + 1] ? sqls[v + 1] : "");
        script(h, name, text);
        free(name);
        free(text);
    }
    return n;
}

/* Runs one migration of the database at `path` to release r (aborts with the seed on failure). */
static void g_migrate(mh *h, const char *path, grelease *r, unsigned seed)
{
    ph_store *s = NULL;
    free(h->man.version_text);
    h->man.version_text = strdup(r->version);
    ph_semver_parse(r->version, &h->man.version);
    free(h->man.dir);
    h->man.dir = strdup(h->pkgdir);
    free(h->man.name);
    h->man.name = strdup("t");
    char *data = tu_fmt("%s", h->data);
    int rc = ph_store_open_for(data, "t", &h->man, &r->desc, &s);
    if (rc)
        fprintf(stderr, "seed %u: migrating %s to %s: %s\n", seed, path, r->version,
                ph_error_last());
    assert_int_equal(rc, 0);
    ph_store_close(s);
    free(data);
}

static void g_seed_rows(const char *path, grelease *r0)
{
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    for (int i = 0; i < r0->n; i++)
        for (int row = 1; row <= 3; row++) {
            sqlite3_str *q = sqlite3_str_new(NULL);
            sqlite3_str_appendf(q, "INSERT INTO %s(created, updated", r0->m[i].name);
            for (int k = 0; k < r0->m[i].n; k++)
                sqlite3_str_appendf(q, ", %s", r0->m[i].f[k].name);
            sqlite3_str_appendall(q, ") VALUES(1, 1");
            for (int k = 0; k < r0->m[i].n; k++)
                if (r0->m[i].f[k].type == PH_INT)
                    sqlite3_str_appendf(q, ", %d", row * 10 + k);
                else
                    sqlite3_str_appendf(q, ", 'v%d_%d'", row, k);
            sqlite3_str_appendall(q, ")");
            char *sql = sqlite3_str_finish(q);
            assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
            sqlite3_free(sql);
        }
    sqlite3_close(db);
}

/* Installs release 0 with rows, walks `route` (release indexes), returns the digest. */
static char *g_route(mh *h, grelease *rel, const int *route, int len, unsigned seed)
{
    char *path = mh_db_path(h);
    tu_rmtree(h->data);
    g_migrate(h, path, &rel[0], seed);
    g_seed_rows(path, &rel[0]);
    for (int i = 0; i < len; i++)
        g_migrate(h, path, &rel[route[i]], seed);
    char *d = db_digest(path);
    free(path);
    return d;
}

static void test_random_histories(void **state)
{
    mh *h = *state;
    unsigned base = (unsigned)time(NULL);
    const char *env = getenv("PH_MIGRATE_SEED");
    if (env)
        base = (unsigned)strtoul(env, NULL, 10);
    /* tmpfs when there is one: every upgrade writes a verified (fsynced) backup */
    char *root = tu_fmt("%s", access("/dev/shm", W_OK) == 0 ? "/dev/shm/phmig.XXXXXX" : "");
    if (*root && mkdtemp(root)) {
        free(h->data);
        h->data = tu_fmt("%s/data", root);
    }
    int histories = 0, routes = 0, scripts_run = 0;
    for (unsigned i = 0; i < 200; i++) {
        unsigned seed = base + i;
        grelease rel[G_RELEASES];
        char *sqls[G_RELEASES] = {0};
        tu_rmtree(h->pkgdir);
        free(tu_write(h->pkgdir, "package.ini", "[package]\nname = t\nversion = 0.0.0\n"));
        int n = g_history(h, seed, rel, sqls);
        int all[G_RELEASES];
        for (int v = 1; v < n; v++)
            all[v - 1] = v;
        char *want = g_route(h, rel, all, n - 1, seed);
        char *path = mh_db_path(h);
        char *count = mh_sql1(path, "SELECT count(*) FROM _ph_migrations WHERE scripts != '[]'");
        scripts_run += atoi(count);
        free(count);
        free(path);
        /* the direct route and a random one */
        for (int t = 0; t < 2; t++) {
            int route[G_RELEASES], len = 0;
            unsigned rs = seed * 7u + (unsigned)t;
            for (int v = 1; v < n - 1; v++)
                if (t > 0 && g_rand(&rs) % 2)
                    route[len++] = v;
            route[len++] = n - 1;
            char *got = g_route(h, rel, route, len, seed);
            if (strcmp(want, got)) {
                fprintf(stderr, "seed %u (PH_MIGRATE_SEED=%u reproduces it), route", seed, seed);
                for (int k = 0; k < len; k++)
                    fprintf(stderr, " 1.%d.0", route[k]);
                fprintf(stderr, "\nstep by step:\n%s\nthis route:\n%s\n", want, got);
            }
            assert_string_equal(want, got);
            free(got);
            routes++;
        }
        free(want);
        for (int v = 0; v < n; v++)
            free(sqls[v]);
        histories++;
    }
    if (*root)
        tu_rmtree(root);
    free(root);
    printf("random histories: %d histories, %d routes compared with step-by-step, %d upgrades "
           "with scripts (seeds %u..%u)\n",
           histories, routes, scripts_run, base, base + 199);
}

/* ---- upgrades ---- */

static void test_rename_keeps_rows_and_backs_up(void **state)
{
    mh *h = *state;
    install_v1(h, 50);
    script(h, "upgrade-1.0.0-1.1.0.sql",
           "-- rename\nALTER TABLE note RENAME COLUMN body TO content;\n");
    mh_open(h, &d_v11);
    json_t *r = NULL;
    assert_int_equal(mh_call(h, "note.get", "{\"id\":42}", &r), 0);
    assert_string_equal(json_string_value(json_object_get(r, "content")), "b42");
    json_decref(r);
    assert_int_equal(mh_call(h, "note.new", "{\"title\":\"new\",\"content\":\"c\"}", NULL), 0);
    mh_close_instance(h);
    expect_q(h, "SELECT count(*) FROM note", "51");
    expect_q(h, "SELECT value FROM _ph_meta WHERE key='version'", "1.1.0");
    expect_q(h,
             "SELECT from_version || '>' || to_version || ' ' || scripts FROM _ph_migrations "
             "ORDER BY id DESC LIMIT 1",
             "1.0.0>1.1.0 [\"upgrade-1.0.0-1.1.0.sql\"]");
    /* the backup is the verified 1.0.0 database */
    char *backup = q(h, "SELECT backup FROM _ph_migrations ORDER BY id DESC LIMIT 1");
    assert_true(tu_contains(backup, "/backups/t/t-"));
    assert_true(tu_contains(backup, "-upgrade-1.0.0-to-1.1.0.db"));
    assert_int_equal(ph_backup_verify(backup), 0);
    char *rows = mh_sql1(backup, "SELECT count(*) || ' ' || max(body) FROM note");
    assert_string_equal(rows, "50 b9");
    free(rows);
    free(backup);
}

static void test_failing_script_changes_nothing(void **state)
{
    mh *h = *state;
    install_v1(h, 10);
    script(h, "upgrade-1.0.0-1.1.0.sql",
           "ALTER TABLE note RENAME COLUMN body TO content;\n\n"
           "/* then a typo */\nUPDATE note SET nosuch = 1;\n");
    attach_fails(h, &d_v11, "instance 't' (t 1.0.0 -> 1.1.0): upgrade script ",
                 "/sql/upgrade-1.0.0-1.1.0.sql failed at line 4: no such column: nosuch");
    still_v1(h, 10);
    /* the old version still loads and serves */
    mh_open(h, &d_v1);
    assert_int_equal(mh_call(h, "note.count", NULL, NULL), 0);
}

static void test_declared_change_without_script(void **state)
{
    mh *h = *state;
    install_v1(h, 3);
    attach_fails(h, &d_v11,
                 "model 'note' has a column 'body' in the database that t 1.1.0 does "
                 "not declare (a field was dropped or renamed)",
                 "/sql/upgrade-1.0.0-1.1.0.sql that makes this change");
    still_v1(h, 3);
    attach_fails(h, &d_drop_same, "column 'body'",
                 "the version is still 1.0.0: raise the version in ");
    still_v1(h, 3);
    attach_fails(h, &d_type,
                 "field 'body' of model 'note' is declared int (SQL INTEGER) but the "
                 "database stores TEXT; changing a field's type needs an upgrade "
                 "script",
                 "upgrade-1.0.0-1.2.0.sql");
    still_v1(h, 3);
}

static void test_additive_changes_apply(void **state)
{
    mh *h = *state;
    install_v1(h, 4);
    mh_open(h, &d_add);
    json_t *r = NULL;
    assert_int_equal(mh_call(h, "note.get", "{\"id\":2}", &r), 0);
    assert_string_equal(json_string_value(json_object_get(r, "extra")), "x");
    assert_true(json_is_null(json_object_get(r, "tags")));
    assert_string_equal(json_string_value(json_object_get(r, "body")), "b2");
    json_decref(r);
    assert_int_equal(mh_call(h, "label.new", "{\"name\":\"a\"}", NULL), 0);
    assert_int_equal(mh_call(h, "label.new", "{\"name\":\"a\"}", NULL), PH_ECONFLICT);
    mh_close_instance(h);
    expect_q(h, "SELECT value FROM _ph_meta WHERE key='version'", "1.1.0");
    expect_q(h, "SELECT count(*) FROM sqlite_master WHERE name='_ph_ix_note__n'", "1");
    expect_q(h, "SELECT changes FROM _ph_migrations ORDER BY id DESC LIMIT 1",
             "[\"added field 'extra' to model 'note'\",\"added field 'tags' to model 'note'\","
             "\"indexed field 'n' of model 'note'\",\"created model 'label'\",\"made unique "
             "field 'name' of model 'label'\"]");
    /* back to fewer indexes at the same schema is automatic too */
    static const ph_field f_add2[] = {
        PH_FIELD("title", PH_TEXT, PH_REQUIRED),
        PH_FIELD("body", PH_TEXT, 0),
        PH_FIELD("n", PH_INT, 0),
        PH_FIELD("extra", PH_TEXT, PH_DEFAULT("x")),
        PH_FIELD("tags", PH_JSON, 0),
    };
    static const ph_model m_add2[] = {PH_MODEL("note", f_add2), PH_MODEL("label", f_label)};
    static const ph_package d_add2 = MH_DESC("1.1.0", m_add2);
    mh_open(h, &d_add2);
    mh_close_instance(h);
    expect_q(h, "SELECT count(*) FROM sqlite_master WHERE name='_ph_ix_note__n'", "0");
}

static void test_downgrade_needs_script(void **state)
{
    mh *h = *state;
    install_v1(h, 2);
    script(h, "upgrade-1.0.0-1.1.0.sql", "ALTER TABLE note RENAME COLUMN body TO content;");
    mh_open(h, &d_v11);
    mh_close_instance(h);
    mh_instance(h, &d_v1);
    assert_int_equal(mh_attach(h), PH_EMIGRATION);
    assert_true(tu_contains(ph_error_last(), "instance 't' (t 1.1.0 -> 1.0.0): the database holds "
                                             "data of t 1.1.0, newer than this package; "
                                             "downgrading needs scripts: no chain of upgrade "
                                             "scripts leads from 1.1.0 to 1.0.0: add "));
    assert_true(tu_contains(ph_error_last(), "upgrade-1.1.0-1.0.0.sql"));
    assert_true(tu_contains(ph_error_last(), "install t 1.1.0 or newer instead"));
    ph_instance_free(h->inst);
    h->inst = NULL;
    expect_q(h, "SELECT value FROM _ph_meta WHERE key='version'", "1.1.0");
    script(h, "upgrade-1.1.0-1.0.0.sql", "ALTER TABLE note RENAME COLUMN content TO body;");
    mh_open(h, &d_v1);
    mh_close_instance(h);
    still_v1(h, 2);
}

static void test_required_and_unique_need_clean_data(void **state)
{
    mh *h = *state;
    install_v1(h, 2);
    attach_fails(h, &d_req,
                 "new field 'must' of model 'note' is required and has no default, but "
                 "2 records exist and would have no value",
                 NULL);
    still_v1(h, 2);
    mh_open(h, &d_v1);
    assert_int_equal(mh_call(h, "note.set", "{\"id\":2,\"title\":\"t1\"}", NULL), 0);
    mh_close_instance(h);
    attach_fails(h, &d_uniq,
                 "cannot make field 'title' of model 'note' unique: records share a "
                 "value",
                 "make the values distinct in an upgrade script");
    expect_q(h, "SELECT value FROM _ph_meta WHERE key='version'", "1.0.0");
    expect_q(h, "SELECT count(*) FROM sqlite_master WHERE name LIKE '_ph_ux_%'", "0");
}

static void test_script_cannot_control_transaction(void **state)
{
    mh *h = *state;
    install_v1(h, 3);
    script(h, "upgrade-1.0.0-1.1.0.sql",
           "ALTER TABLE note RENAME COLUMN body TO content;\nCOMMIT;\n");
    attach_fails(h, &d_v11,
                 "failed at line 2: transaction control (BEGIN, COMMIT, ROLLBACK, "
                 "SAVEPOINT) is not allowed",
                 NULL);
    still_v1(h, 3);
    script(h, "upgrade-1.0.0-1.1.0.sql", "UPDATE _ph_meta SET value='9' WHERE key='version';");
    attach_fails(h, &d_v11, "the host's _ph_ tables and indexes can only be changed by the host",
                 NULL);
    still_v1(h, 3);
}

static void test_chain_of_two_in_one_transaction(void **state)
{
    mh *h = *state;
    install_v1(h, 5);
    script(h, "upgrade-1.0.0-1.1.0.sql", "ALTER TABLE note RENAME COLUMN body TO content;");
    script(h, "upgrade-1.1.0-2.0.0.sql", "UPDATE note SET n = n * 10;");
    mh_open(h, &d_v2);
    mh_close_instance(h);
    expect_q(h, "SELECT sum(n) FROM note", "150");
    expect_q(h, "SELECT value FROM _ph_meta WHERE key='version'", "2.0.0");
    expect_q(h, "SELECT scripts FROM _ph_migrations ORDER BY id DESC LIMIT 1",
             "[\"upgrade-1.0.0-1.1.0.sql\",\"upgrade-1.1.0-2.0.0.sql\"]");
    /* a failure in the second script undoes the first as well */
    mh_done(h);
    mh_init(h);
    install_v1(h, 5);
    script(h, "upgrade-1.0.0-1.1.0.sql", "ALTER TABLE note RENAME COLUMN body TO content;");
    script(h, "upgrade-1.1.0-2.0.0.sql", "UPDATE note SET n = n * 10;\nSELECT nope();");
    mh_instance(h, &d_v2);
    assert_int_equal(mh_attach(h), PH_EMIGRATION);
    assert_true(tu_contains(ph_error_last(), "upgrade-1.1.0-2.0.0.sql failed at line 2: no such "
                                             "function: nope"));
    ph_instance_free(h->inst);
    h->inst = NULL;
    still_v1(h, 5);
    expect_q(h, "SELECT sum(n) FROM note", "15");
}

static void test_check_plan(void **state)
{
    mh *h = *state;
    json_t *plan = NULL;
    mh_instance(h, &d_v1);
    assert_int_equal(ph_migrate_plan(&h->man, h->data, "t", &plan), 0);
    char *text = ph_migrate_plan_text(plan);
    assert_string_equal(text, "t: new database for 1.0.0");
    free(text);
    json_decref(plan);
    ph_instance_free(h->inst);
    h->inst = NULL;
    install_v1(h, 1);
    script(h, "upgrade-1.0.0-1.1.0.sql", "ALTER TABLE note RENAME COLUMN body TO content;");
    mh_instance(h, &d_v11);
    assert_int_equal(ph_migrate_plan(&h->man, h->data, "t", &plan), 0);
    text = ph_migrate_plan_text(plan);
    assert_string_equal(text, "t: upgrade 1.0.0 -> 1.1.0 via upgrade-1.0.0-1.1.0.sql (verified "
                              "backup first)");
    assert_string_equal(json_string_value(json_object_get(plan, "installed")), "1.0.0");
    free(text);
    json_decref(plan);
    ph_instance_free(h->inst);
    h->inst = NULL;
    mh_instance(h, &d_type); /* 1.2.0: no script */
    assert_int_equal(ph_migrate_plan(&h->man, h->data, "t", &plan), 0);
    text = ph_migrate_plan_text(plan);
    /* failure 2: the shipped script is part of the chain, and the missing link is named */
    assert_true(tu_contains(text, "t: upgrade 1.0.0 -> 1.2.0 via upgrade-1.0.0-1.1.0.sql, "
                                  "automatic changes to 1.2.0 (verified backup first) (a field "
                                  "dropped, renamed or retyped after 1.1.0 needs "));
    assert_true(tu_contains(text, "/sql/upgrade-1.1.0-1.2.0.sql)"));
    assert_false(tu_contains(text, "no upgrade scripts"));
    free(text);
    json_decref(plan);
    ph_instance_free(h->inst);
    h->inst = NULL;
    mh_open(h, &d_v11);
    mh_close_instance(h);
    mh_instance(h, &d_v1);
    assert_int_equal(ph_migrate_plan(&h->man, h->data, "t", &plan), 0);
    text = ph_migrate_plan_text(plan);
    assert_true(tu_contains(text, "t: downgrade 1.1.0 -> 1.0.0: ERROR downgrade refused: no "
                                  "chain of upgrade scripts leads from 1.1.0 to 1.0.0"));
    free(text);
    json_decref(plan);
    ph_instance_free(h->inst);
    h->inst = NULL;
    expect_q(h, "SELECT value FROM _ph_meta WHERE key='version'", "1.1.0");
}

static void test_backup_prune(void **state)
{
    mh *h = *state;
    install_v1(h, 1);
    char *db_path = mh_db_path(h);
    char *dir = tu_fmt("%s/backups/t", h->data);
    sqlite3 *db = NULL;
    sqlite3_open(db_path, &db);
    char *manual = NULL;
    assert_int_equal(ph_store_backup(h->data, "t", &manual), 0);
    for (int i = 0; i < PH_BACKUP_KEEP + 3; i++) {
        char *p = NULL;
        char *kind = tu_fmt("upgrade-1.0.%d-to-1.0.%d", i, i + 1);
        assert_int_equal(ph_backup_write(db, dir, "t", kind, &p), 0);
        ph_backup_prune(dir, "t", "upgrade", PH_BACKUP_KEEP);
        free(kind);
        free(p);
    }
    sqlite3_close(db);
    char *out = NULL;
    tu_run(&out, "ls '%s' | grep -c upgrade; ls '%s' | grep -c manual; ls '%s' | grep -c tmp", dir,
           dir, dir);
    assert_string_equal(out, "5\n1\n0\n");
    free(out);
    tu_run(&out, "ls '%s' | grep upgrade | head -1", dir);
    assert_true(tu_contains(out, "-upgrade-1.0.3-to-1.0.4.db")); /* the oldest three went */
    free(out);
    free(manual);
    free(db_path);
    free(dir);
}

/* Reload: the migration stays open until the new version started. */
static void test_uncommitted_until_started(void **state)
{
    mh *h = *state;
    ph_store *s = NULL;
    install_v1(h, 4);
    script(h, "upgrade-1.0.0-1.1.0.sql", "ALTER TABLE note RENAME COLUMN body TO content;");
    free(h->man.version_text);
    h->man.version_text = strdup("1.1.0");
    assert_int_equal(ph_store_open_uncommitted(h->data, "t", &h->man, &d_v11, &s), 0);
    ph_store_close(s); /* the new version failed to start: rolled back */
    still_v1(h, 4);
    assert_int_equal(ph_store_open_uncommitted(h->data, "t", &h->man, &d_v11, &s), 0);
    json_t *rows = NULL;
    assert_int_equal(ph_store_query(s, "SELECT content FROM note WHERE id=3", NULL, &rows), 0);
    char *t = mh_dump(rows);
    assert_string_equal(t, "[{\"content\":\"b3\"}]");
    free(t);
    json_decref(rows);
    assert_int_equal(ph_store_commit(s), 0);
    ph_store_close(s);
    expect_q(h, "SELECT value FROM _ph_meta WHERE key='version'", "1.1.0");
    expect_q(h, "SELECT content FROM note WHERE id=4", "b4");
    free(h->man.version_text);
    h->man.version_text = NULL;
}

/* ---- notes 1.0.0 -> 2.0.0 with the real binary ---- */

static int run_bin(char **out, const char *ini, const char *args)
{
    return tu_run(out, "'%s' call --local -c '%s' --log-level warn %s", tu_env("PH_BIN"), ini,
                  args);
}

static void test_notes_upgrade_end_to_end(void **state)
{
    mh *h = *state;
    char *pk = tu_fmt("%s/packages", h->tmp);
    char *ini = tu_fmt("%s/host.ini", h->tmp);
    char *out = NULL;
    char *text = tu_fmt("[host]\npackage_dirs = %s\ndata_dir = %s\n", pk, h->data);
    free(tu_write(h->tmp, "host.ini", text));
    free(text);
    tu_run(NULL, "mkdir -p '%s' && cp -r '%s/model_notes_v1/notes' '%s/'", pk,
           tu_env("PH_FIXTURES"), pk);
    assert_int_equal(run_bin(&out, ini, "notes.note.new title=hello body=world owner=ann"), 0);
    assert_true(tu_contains(out, "\"id\":1,"));
    assert_true(tu_contains(out, "\"body\":\"world\""));
    free(out);
    assert_int_equal(run_bin(&out, ini, "notes.note.new title=second body=two"), 0);
    free(out);
    /* a broken 2.0.0: refused, 1.0.0 schema and data intact, error names the script */
    tu_run(NULL, "rm -rf '%s/notes' && cp -r '%s/model_notes_broken/notes' '%s/'", pk,
           tu_env("PH_FIXTURES"), pk);
    assert_int_not_equal(run_bin(&out, ini, "notes.note.count"), 0);
    assert_true(tu_contains(out, "upgrade-1.0.0-2.0.0.sql failed at line 4: no such column: "
                                 "contnt"));
    assert_true(tu_contains(out, "the database was not changed"));
    free(out);
    tu_run(NULL, "rm -rf '%s/notes' && cp -r '%s/model_notes_v1/notes' '%s/'", pk,
           tu_env("PH_FIXTURES"), pk);
    assert_int_equal(run_bin(&out, ini, "notes.note.get id=2"), 0);
    assert_true(tu_contains(out, "\"body\":\"two\""));
    free(out);
    /* the real 2.0.0 example: upgraded, rows kept, backup left */
    tu_run(NULL, "rm -rf '%s/notes' && cp -r '%s/notes' '%s/'", pk, tu_env("PH_EXAMPLES"), pk);
    assert_int_equal(run_bin(&out, ini, "notes.note.list order=-id"), 0);
    assert_true(tu_contains(out, "\"title\":\"second\",\"content\":\"two\""));
    assert_true(tu_contains(out, "\"title\":\"hello\",\"content\":\"world\""));
    assert_true(tu_contains(out, "\"total\":2"));
    free(out);
    tu_run(&out, "ls '%s/backups/notes/'", h->data);
    assert_true(tu_contains(out, "-upgrade-1.0.0-to-2.0.0.db"));
    free(out);
    free(pk);
    free(ini);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_selection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_chain_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shop_skipped_release_runs_its_script, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_link_advice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downgrade_without_schema_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_histories, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_keeps_rows_and_backs_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_script_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_declared_change_without_script, setup, teardown),
        cmocka_unit_test_setup_teardown(test_additive_changes_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downgrade_needs_script, setup, teardown),
        cmocka_unit_test_setup_teardown(test_required_and_unique_need_clean_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_script_cannot_control_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_of_two_in_one_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_plan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncommitted_until_started, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notes_upgrade_end_to_end, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
