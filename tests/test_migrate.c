/*
 * Schema migrations: chain selection, upgrade scripts, automatic changes,
 * refusals, backups, the `check` plan, and notes 1.0.0 -> 1.1.0 end to end
 * through the real plughost binary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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
    assert_true(tu_contains(text, "t: upgrade 1.0.0 -> 1.2.0 (no upgrade scripts: only added "
                                  "models, fields and indexes can apply; a dropped, renamed or "
                                  "retyped field needs "));
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

/* ---- notes 1.0.0 -> 1.1.0 with the real binary ---- */

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
    /* a broken 1.1.0: refused, 1.0.0 schema and data intact, error names the script */
    tu_run(NULL, "rm -rf '%s/notes' && cp -r '%s/model_notes_broken/notes' '%s/'", pk,
           tu_env("PH_FIXTURES"), pk);
    assert_int_not_equal(run_bin(&out, ini, "notes.note.count"), 0);
    assert_true(tu_contains(out, "upgrade-1.0.0-1.1.0.sql failed at line 4: no such column: "
                                 "contnt"));
    assert_true(tu_contains(out, "the database was not changed"));
    free(out);
    tu_run(NULL, "rm -rf '%s/notes' && cp -r '%s/model_notes_v1/notes' '%s/'", pk,
           tu_env("PH_FIXTURES"), pk);
    assert_int_equal(run_bin(&out, ini, "notes.note.get id=2"), 0);
    assert_true(tu_contains(out, "\"body\":\"two\""));
    free(out);
    /* the real 1.1.0 example: upgraded, rows kept, backup left */
    tu_run(NULL, "rm -rf '%s/notes' && cp -r '%s/notes' '%s/'", pk, tu_env("PH_EXAMPLES"), pk);
    assert_int_equal(run_bin(&out, ini, "notes.note.list order=-id"), 0);
    assert_true(tu_contains(out, "\"title\":\"second\",\"content\":\"two\""));
    assert_true(tu_contains(out, "\"title\":\"hello\",\"content\":\"world\""));
    assert_true(tu_contains(out, "\"total\":2"));
    free(out);
    tu_run(&out, "ls '%s/backups/notes/'", h->data);
    assert_true(tu_contains(out, "-upgrade-1.0.0-to-1.1.0.db"));
    free(out);
    free(pk);
    free(ini);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_selection, setup, teardown),
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
