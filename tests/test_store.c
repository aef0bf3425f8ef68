/*
 * The instance database: settings, declaration checks, keep-or-purge,
 * backups, and kill -9 at many points of writes and of a migration.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backup.h"
#include "packages/model_common/harness.h"

static const ph_field f_v1[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED),
    PH_FIELD("body", PH_TEXT, 0),
    PH_FIELD("n", PH_INT, PH_INDEXED),
};
static const ph_model m_v1[] = {PH_MODEL("note", f_v1)};
static const ph_package d_v1 = MH_DESC("1.0.0", m_v1);

static const ph_field f_v11[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED),
    PH_FIELD("content", PH_TEXT, 0),
    PH_FIELD("n", PH_INT, PH_INDEXED),
};
static const ph_model m_v11[] = {PH_MODEL("note", f_v11)};
static const ph_package d_v11 = MH_DESC("1.1.0", m_v11);

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

#define q mh_q
#define expect_q mh_expect_q

/* Adds `n` rows in one transaction with plain SQL (fast fixture data). */
static void bulk(mh *h, int n)
{
    char *db_path = mh_db_path(h);
    sqlite3 *db = NULL;
    sqlite3_open(db_path, &db);
    char *sql = sqlite3_mprintf("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c "
                                "WHERE i < %d) INSERT INTO note(created, updated, title, body, n) "
                                "SELECT 1, 1, 'bulk' || i, 'body' || i, i FROM c",
                                n);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_free(sql);
    sqlite3_close(db);
    free(db_path);
}

/* ---- settings and declarations ---- */

static void test_pragmas(void **state)
{
    mh *h = *state;
    mh_open(h, &d_v1);
    sqlite3 *db = ph_store_db(h->inst->store);
    static const char *const checks[][2] = {{"PRAGMA journal_mode", "wal"},
                                            {"PRAGMA synchronous", "2"},
                                            {"PRAGMA foreign_keys", "1"},
                                            {"PRAGMA busy_timeout", "5000"}};
    for (size_t i = 0; i < 4; i++) {
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, checks[i][0], -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), checks[i][1]);
        sqlite3_finalize(st);
    }
    char *path = mh_db_path(h);
    assert_string_equal(ph_store_path(h->inst->store), path);
    free(path);
    expect_q(
        h, "SELECT sql FROM sqlite_master WHERE name='note'",
        "CREATE TABLE \"note\"(id INTEGER PRIMARY KEY AUTOINCREMENT, created INTEGER NOT "
        "NULL, updated INTEGER NOT NULL, \"title\" TEXT, \"body\" TEXT, \"n\" INTEGER) STRICT");
    expect_q(h, "SELECT value FROM _ph_meta WHERE key='package'", "t");
    expect_q(h, "SELECT schema FROM _ph_models WHERE name='note'",
             "{\"model\":\"note\",\"fields\":[{\"name\":\"title\",\"type\":\"text\",\"required\":"
             "true,\"unique\":false,\"indexed\":false},{\"name\":\"body\",\"type\":\"text\","
             "\"required\":false,\"unique\":false,\"indexed\":false},{\"name\":\"n\",\"type\":"
             "\"int\",\"required\":false,\"unique\":false,\"indexed\":true}]}");
}

static void compile_fails(const ph_model *models, uint32_t n, const char *text)
{
    ph_package d = {.abi = PH_ABI_VERSION,
                    .size = sizeof(ph_package),
                    .name = "t",
                    .version = "1.0.0",
                    .models = models,
                    .n_models = n};
    ph_store_model *out = NULL;
    size_t n_out = 0;
    assert_int_equal(ph_store_models_compile(&d, &out, &n_out), PH_ELOAD);
    assert_null(out);
    assert_true(tu_contains(ph_error_last(), text));
}

static void test_declaration_errors(void **state)
{
    (void)state;
    static const ph_field ok[] = {PH_FIELD("x", PH_INT, 0)};
    static const ph_field order[] = {PH_FIELD("order", PH_INT, 0)};
    static const ph_field created[] = {PH_FIELD("created", PH_TIME, 0)};
    static const ph_field upper[] = {PH_FIELD("Title", PH_TEXT, 0)};
    static const ph_field quote[] = {PH_FIELD("a\"b", PH_TEXT, 0)};
    static const ph_field badtype[] = {PH_FIELD("x", PH_VOID, 0)};
    static const ph_field baddef[] = {PH_FIELD("on", PH_BOOL, PH_DEFAULT("maybe"))};
    static const ph_field badjson[] = {PH_FIELD("j", PH_JSON, PH_DEFAULT("{oops"))};
    static const ph_field ghost[] = {PH_FIELD_REF("owner", "ghost", 0)};
    static const ph_field twice[] = {PH_FIELD("x", PH_INT, 0), PH_FIELD("x", PH_TEXT, 0)};
    const ph_model m1[] = {PH_MODEL("Note", ok)};
    const ph_model m2[] = {PH_MODEL("note", order)};
    const ph_model m3[] = {PH_MODEL("note", created)};
    const ph_model m4[] = {PH_MODEL("note", upper)};
    const ph_model m5[] = {PH_MODEL("note", quote)};
    const ph_model m6[] = {PH_MODEL("note", badtype)};
    const ph_model m7[] = {PH_MODEL("note", baddef)};
    const ph_model m8[] = {PH_MODEL("note", badjson)};
    const ph_model m9[] = {PH_MODEL("note", ghost)};
    const ph_model m10[] = {PH_MODEL("note", twice)};
    const ph_model m11[] = {PH_MODEL("note", ok), PH_MODEL("note", ok)};
    const ph_model m12[] = {PH_MODEL("sqlite_x", ok)};
    compile_fails(m1, 1, "package t 1.0.0: model name 'Note' is not valid; use lower-case letters");
    compile_fails(m2, 1, "model 'note': field name 'order' is reserved");
    compile_fails(m3, 1,
                  "field name 'created' is reserved (id, created, updated are kept by the "
                  "host");
    compile_fails(m4, 1, "model 'note': field name 'Title' is not valid");
    compile_fails(m5, 1, "field name 'a\"b' is not valid");
    compile_fails(m6, 1, "model 'note', field 'x': unknown type 0");
    compile_fails(m7, 1,
                  "model 'note', field 'on': default 'maybe' is not a boolean (true or "
                  "false)");
    compile_fails(m8, 1, "field 'j': default '{oops' is not valid JSON");
    compile_fails(m9, 1,
                  "field 'owner' refers to model 'ghost', which the package does not "
                  "declare");
    compile_fails(m10, 1, "model 'note' declares field 'x' twice");
    compile_fails(m11, 2, "package t 1.0.0 declares model 'note' twice");
    compile_fails(m12, 1, "model name 'sqlite_x' is not valid");
}

static void test_bad_declaration_creates_nothing(void **state)
{
    mh *h = *state;
    static const ph_field order[] = {PH_FIELD("limit", PH_INT, 0)};
    static const ph_model m[] = {PH_MODEL("note", order)};
    static const ph_package d = MH_DESC("1.0.0", m);
    mh_instance(h, &d);
    assert_int_equal(mh_attach(h), PH_ELOAD);
    assert_null(h->inst->store);
    char *db = mh_db_path(h);
    assert_int_not_equal(access(db, F_OK), 0);
    free(db);
}

/* ---- keep or purge ---- */

static void test_remove_keeps_data_reinstall_finds_it(void **state)
{
    mh *h = *state;
    mh_open(h, &d_v1);
    assert_int_equal(mh_call(h, "note.new", "{\"title\":\"kept\",\"body\":\"b\"}", NULL), 0);
    mh_close_instance(h); /* removed: the code is gone, the data stays */
    bulk(h, 999);
    char *before = q(h, "SELECT count(*) || ':' || total(n) || ':' || sum(length(title)) || ':' "
                        "|| max(id) FROM note");
    mh_open(h, &d_v1); /* reinstalled */
    json_t *n = NULL;
    assert_int_equal(mh_call(h, "note.count", NULL, &n), 0);
    assert_int_equal(json_integer_value(n), 1000);
    json_decref(n);
    assert_int_equal(mh_call(h, "note.list", "{\"title\":\"kept\"}", &n), 0);
    assert_int_equal(json_integer_value(json_object_get(n, "total")), 1);
    json_decref(n);
    mh_close_instance(h);
    char *after = q(h, "SELECT count(*) || ':' || total(n) || ':' || sum(length(title)) || ':' "
                       "|| max(id) FROM note");
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_purge_backs_up_first(void **state)
{
    mh *h = *state;
    char *backup = NULL;
    assert_int_equal(ph_store_purge(h->data, "t", &backup), PH_ENOTFOUND);
    assert_true(tu_contains(ph_error_last(), "nothing to purge: instance 't' has no database at "));
    assert_null(backup);
    mh_open(h, &d_v1);
    mh_close_instance(h);
    bulk(h, 321);
    assert_int_equal(ph_store_purge(h->data, "t", &backup), 0);
    assert_non_null(backup);
    assert_true(tu_contains(backup, "/backups/t/t-"));
    assert_true(tu_contains(backup, "-purge.db"));
    assert_int_equal(ph_backup_verify(backup), 0);
    char *rows = mh_sql1(backup, "SELECT count(*) FROM note");
    assert_string_equal(rows, "321");
    free(rows);
    char *db = mh_db_path(h);
    assert_int_not_equal(access(db, F_OK), 0);
    char *dir = tu_fmt("%s/t", h->data);
    assert_int_not_equal(access(dir, F_OK), 0);
    free(dir);
    /* reinstalling after a purge starts empty; the purge backup is never pruned */
    mh_open(h, &d_v1);
    json_t *n = NULL;
    assert_int_equal(mh_call(h, "note.count", NULL, &n), 0);
    assert_int_equal(json_integer_value(n), 0);
    json_decref(n);
    mh_close_instance(h);
    assert_int_equal(access(backup, F_OK), 0);
    free(db);
    free(backup);
}

static void test_backup_while_running(void **state)
{
    mh *h = *state;
    char *path = NULL;
    assert_int_equal(ph_store_backup(h->data, "t", &path), PH_ENOTFOUND);
    assert_true(tu_contains(ph_error_last(), "nothing to back up"));
    mh_open(h, &d_v1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(mh_call(h, "note.new", "{\"title\":\"x\"}", NULL), 0);
    assert_int_equal(ph_store_backup(h->data, "t", &path), 0);
    assert_true(tu_contains(path, "-manual.db"));
    char *rows = mh_sql1(path, "SELECT count(*) FROM note");
    assert_string_equal(rows, "5");
    free(rows);
    assert_int_equal(ph_backup_verify(path), 0);
    char *v = NULL;
    assert_int_equal(ph_store_installed_version(h->data, "t", &v), 0);
    assert_string_equal(v, "1.0.0");
    free(v);
    assert_int_equal(ph_store_installed_version(h->data, "nobody", &v), 0);
    assert_null(v);
    json_t *d = NULL;
    assert_int_equal(ph_store_describe(h->data, "t", &d), 0);
    assert_string_equal(json_string_value(json_object_get(d, "version")), "1.0.0");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "models"), "note")), 5);
    assert_true(json_integer_value(json_object_get(d, "bytes")) > 0);
    json_decref(d);
    assert_int_equal(ph_store_describe(h->data, "nobody", &d), PH_ENOTFOUND);
    assert_true(tu_contains(ph_error_last(), "instance 'nobody' has no database at "));
    free(path);
}

/* ---- kill -9 ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Child: open the store and write notes forever, acknowledging each committed id. */
static void writer_child(mh *h, int fd)
{
    mh_open(h, &d_v1);
    for (;;) {
        json_t *r = NULL;
        if (mh_call(h, "note.new", "{\"title\":\"w\",\"body\":\"acknowledged\"}", &r) != 0)
            _exit(3);
        int64_t id = json_integer_value(json_object_get(r, "id"));
        json_decref(r);
        if (write(fd, &id, sizeof id) != sizeof id)
            _exit(4);
    }
}

/* The database opens, passes integrity_check and has the given schema. */
static void check_db(mh *h)
{
    expect_q(h, "PRAGMA integrity_check", "ok");
    expect_q(h, "PRAGMA foreign_key_check", "(none)");
}

static void test_kill9_during_writes(void **state)
{
    mh *h = *state;
    alarm(60);         /* bounded even if the disk stalls: fail instead of hanging */
    mh_open(h, &d_v1); /* create the schema once */
    mh_close_instance(h);
    int64_t acked_total = 0;
    char *db_path = mh_db_path(h);
    double t0 = now_s();
    for (int round = 0; round < 24; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            writer_child(h, fds[1]);
        }
        close(fds[1]);
        sleep_s(0.003 + 0.004 * (round % 10)); /* kill at many points: 3 to 39 ms in */
        kill(pid, SIGKILL);
        int64_t *ids = NULL;
        size_t n = 0, cap = 0;
        int64_t id;
        while (read(fds[0], &id, sizeof id) == sizeof id) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                ids = realloc(ids, cap * sizeof *ids);
            }
            ids[n++] = id;
        }
        close(fds[0]);
        int st;
        waitpid(pid, &st, 0);
        assert_true(WIFSIGNALED(st));
        check_db(h);
        /* every acknowledged row is there */
        sqlite3 *db = NULL;
        sqlite3_stmt *s = NULL;
        assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        sqlite3_prepare_v2(db, "SELECT body FROM note WHERE id=?1", -1, &s, NULL);
        for (size_t i = 0; i < n; i++) {
            sqlite3_bind_int64(s, 1, ids[i]);
            assert_int_equal(sqlite3_step(s), SQLITE_ROW);
            assert_string_equal((const char *)sqlite3_column_text(s, 0), "acknowledged");
            sqlite3_reset(s);
        }
        sqlite3_finalize(s);
        sqlite3_close(db);
        acked_total += (int64_t)n;
        free(ids);
    }
    fprintf(stderr, "kill -9 during writes: 24 kills, %lld acknowledged rows all present, %.2fs\n",
            (long long)acked_total, now_s() - t0);
    assert_true(acked_total > 0);
    alarm(0);
    free(db_path);
}

/* Child: migrate to 1.1.0, then say so. */
static void migrate_child(mh *h, int fd)
{
    mh_instance(h, &d_v11);
    int rc = mh_attach(h);
    char c = rc ? 'F' : 'D';
    if (write(fd, &c, 1) != 1)
        _exit(4);
    _exit(rc ? 3 : 0);
}

/* Old (1.0.0, body, sum n) or new (1.1.0, content, sum n + rows): never in between. */
static int check_old_or_new(mh *h, int rows)
{
    check_db(h);
    char *v = q(h, "SELECT value FROM _ph_meta WHERE key='version'");
    char *has_body = q(h, "SELECT count(*) FROM pragma_table_info('note') WHERE name='body'");
    char *has_content = q(h, "SELECT count(*) FROM pragma_table_info('note') WHERE name='content'");
    char *count = q(h, "SELECT count(*) FROM note");
    char *sum = q(h, "SELECT sum(n) FROM note");
    char *want_count = tu_fmt("%d", rows);
    long long base = (long long)rows * (rows + 1) / 2;
    int upgraded = !strcmp(v, "1.1.0");
    if (upgraded) {
        assert_string_equal(has_body, "0");
        assert_string_equal(has_content, "1");
        assert_int_equal(atoll(sum), base + rows);
    } else {
        assert_string_equal(v, "1.0.0");
        assert_string_equal(has_body, "1");
        assert_string_equal(has_content, "0");
        assert_int_equal(atoll(sum), base);
    }
    assert_string_equal(count, want_count);
    free(v);
    free(has_body);
    free(has_content);
    free(count);
    free(sum);
    free(want_count);
    return upgraded;
}

static void copy_file(const char *from, const char *to)
{
    char *out = NULL;
    assert_int_equal(tu_run(&out, "rm -f '%s-wal' '%s-shm' && cp '%s' '%s'", to, to, from, to), 0);
    free(out);
}

static void test_kill9_during_migration(void **state)
{
    mh *h = *state;
    const int rows = 20000;
    alarm(60);
    mh_open(h, &d_v1);
    mh_close_instance(h);
    bulk(h, rows);
    free(tu_write(h->pkgdir, "sql/upgrade-1.0.0-1.1.0.sql",
                  "ALTER TABLE note RENAME COLUMN body TO content;\n"
                  "UPDATE note SET n = n + 1;\n"
                  "CREATE INDEX scratch ON note(content, title);\n"
                  "UPDATE note SET content = content || '';\n"
                  "DROP INDEX scratch;\n"));
    char *db_path = mh_db_path(h);
    char *pristine = tu_fmt("%s/pristine.db", h->tmp);
    copy_file(db_path, pristine);
    /* how long one whole migration takes here */
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0)
        migrate_child(h, open("/dev/null", O_WRONLY));
    int st;
    waitpid(pid, &st, 0);
    double full = now_s() - t0;
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(check_old_or_new(h, rows), 1);
    int kills = 0, upgraded = 0, done = 0;
    t0 = now_s();
    for (int round = 0; round < 30; round++) {
        copy_file(pristine, db_path);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid = fork();
        if (pid == 0) {
            close(fds[0]);
            migrate_child(h, fds[1]);
        }
        close(fds[1]);
        sleep_s(full * 2.0 * (round + 0.5) / 30); /* over the whole migration, and past it */
        kill(pid, SIGKILL);
        char c = 0;
        int acked = read(fds[0], &c, 1) == 1 && c == 'D';
        close(fds[0]);
        waitpid(pid, &st, 0);
        kills += WIFSIGNALED(st);
        int now_new = check_old_or_new(h, rows);
        if (acked)
            assert_int_equal(now_new, 1); /* an acknowledged migration is never lost */
        upgraded += now_new;
        done += acked;
        /* whatever happened, the next start completes the migration */
        if (round % 10 == 9) {
            mh_instance(h, &d_v11);
            assert_int_equal(mh_attach(h), 0);
            mh_close_instance(h);
            assert_int_equal(check_old_or_new(h, rows), 1);
        }
    }
    fprintf(stderr,
            "kill -9 during migration: one migration %.0f ms; %d kills, %d acknowledged; "
            "%d left 1.1.0, %d kept 1.0.0, all intact, %.2fs\n",
            full * 1000, kills, done, upgraded, 30 - upgraded, now_s() - t0);
    assert_true(kills > 0);
    alarm(0);
    /* backups killed half-way leave only .tmp files, cleaned once stale */
    char *out = NULL;
    tu_run(&out,
           "cd '%s/backups/t' && for f in *.tmp*; do [ -e \"$f\" ] && touch -d '2 hours ago' "
           "\"$f\"; done; true",
           h->data);
    free(out);
    char *bk = NULL;
    assert_int_equal(ph_store_backup(h->data, "t", &bk), 0);
    free(bk);
    tu_run(&out, "ls '%s/backups/t' | grep -c '\\.tmp'", h->data);
    assert_string_equal(out, "0\n");
    free(out);
    /* a completed upgrade prunes what killed ones left: PH_BACKUP_KEEP remain */
    copy_file(pristine, db_path);
    mh_instance(h, &d_v11);
    assert_int_equal(mh_attach(h), 0);
    mh_close_instance(h);
    tu_run(&out, "ls '%s/backups/t' | grep -c 'upgrade.*\\.db$'", h->data);
    assert_string_equal(out, "5\n");
    free(out);
    free(db_path);
    free(pristine);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pragmas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_declaration_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_declaration_creates_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_keeps_data_reinstall_finds_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_backs_up_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_during_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_during_migration, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
