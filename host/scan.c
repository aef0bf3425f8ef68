#include "scan.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "backup.h"
#include "error.h"
#include "interface.h"
#include "loader.h"
#include "log.h"
#include "migrate.h"
#include "store.h"

/* ------------------------------------------------------------------ */
/* The child                                                            */
/* ------------------------------------------------------------------ */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    remove(path);
    return 0;
}

/*
 * Copies the instance database into <scratch>/<instance>/<instance>.db
 * without writing the original: a read-only connection reads a consistent
 * snapshot and VACUUM INTO writes the copy. *copied says whether there was
 * a database at all (a missing one rehearses a first install).
 */
static int copy_database(const char *data_dir, const char *scratch, const char *instance,
                         int *copied)
{
    char *src = NULL, *dst = NULL, *dir = NULL;
    sqlite3 *db = NULL;
    int rc = 0;
    *copied = 0;
    if ((rc = ph_store_db_path(data_dir, instance, &src)) ||
        (rc = ph_store_db_path(scratch, instance, &dst)))
        goto cleanup;
    if (asprintf(&dir, "%s/%s", scratch, instance) < 0) {
        dir = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (access(src, F_OK) != 0 || (rc = ph_backup_mkdirs(dir)))
        goto cleanup;
    if (sqlite3_open_v2(src, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = ph_error_set(PH_ESQL, "cannot open %s: %s", src, sqlite3_errmsg(db));
        goto cleanup;
    }
    sqlite3_busy_timeout(db, 5000);
    char *sql = sqlite3_mprintf("VACUUM INTO %Q", dst);
    if (!sql || sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        rc = ph_error_set(PH_ESQL, "cannot copy %s for the dry run: %s", src, sqlite3_errmsg(db));
    else
        *copied = 1;
    sqlite3_free(sql);
cleanup:
    sqlite3_close(db);
    free(src);
    free(dst);
    free(dir);
    return rc;
}

/*
 * A scratch copy is thrown away, so it need not reach the disk: its file is
 * put in WAL mode here without an fsync, and the migration then writes with
 * synchronous=OFF. A first install (no database yet) is rehearsed on an
 * empty database in memory: creating files cost more than the rest of a
 * small package's scan (nine fsyncs, and ext4 inodes where many were just
 * deleted).
 */
static int unsynced(const char *path)
{
    sqlite3 *db = NULL;
    int rc = 0;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA synchronous=OFF; PRAGMA journal_mode=WAL;", NULL, NULL, NULL) !=
            SQLITE_OK)
        rc = ph_error_set(PH_ESQL, "cannot create %s for the dry run: %s", path,
                          db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return rc;
}

/* Migrates the scratch copy as attaching would; the report's fields go into r. */
static int migrate_copy(const ph_manifest *m, const ph_package *desc, const char *scratch,
                        const char *instance, int copied, json_t *r)
{
    ph_store_model *models = NULL;
    size_t n_models = 0;
    ph_store *s = NULL;
    char *path = NULL, *bdir = NULL;
    json_t *report = NULL;
    int rc;
    if ((rc = ph_store_models_compile(desc, &models, &n_models)) ||
        (rc = ph_store_db_path(scratch, instance, &path)) ||
        (rc = ph_store_backup_dir(scratch, instance, &bdir)) || (copied && (rc = unsynced(path))) ||
        (rc = ph_store_open(copied ? path : ":memory:", &s)))
        goto cleanup;
    sqlite3_exec(ph_store_db(s), "PRAGMA synchronous=OFF", NULL, NULL, NULL);
    ph_migrate_ctx mc = {.db = ph_store_db(s),
                         .models = models,
                         .n_models = n_models,
                         .manifest = m,
                         .instance = instance,
                         .backup_dir = bdir};
    if ((rc = ph_migrate_apply(&mc, &report)))
        goto cleanup;
    json_object_del(report, "backup"); /* a scratch path, gone with the copy */
    json_object_update(r, report);
cleanup:
    json_decref(report);
    ph_store_close(s);
    ph_store_models_free(models, n_models);
    free(path);
    free(bdir);
    return rc;
}

/* Rehearses one instance's migration on a scratch copy; never fails as a whole. */
static json_t *rehearse(const ph_manifest *m, const ph_package *desc, const char *data_dir,
                        const char *scratch, const char *instance)
{
    json_t *r = json_pack("{s:s}", "instance", instance);
    int copied = 0;
    int rc = copy_database(data_dir, scratch, instance, &copied);
    json_object_set_new(r, "database", json_string(copied ? "copied" : "none"));
    if (!rc)
        rc = migrate_copy(m, desc, scratch, instance, copied, r);
    if (copied) /* a database may be large: its copy goes at once */
        nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    json_object_set_new(r, "ok", json_boolean(rc == 0));
    if (rc)
        json_object_set_new(r, "error", json_string(ph_error_last()));
    return r;
}

/* Everything the child does; the answer is one JSON document. */
static json_t *child_scan(const ph_manifest *m, const char *const *instances, size_t n,
                          const char *data_dir, const char *tmp, size_t job)
{
    json_t *out = json_pack("{s:s, s:s, s:s, s:[]}", "package", m->name, "version", m->version_text,
                            "library", m->library, "instances");
    char *stage = NULL;
    ph_module *mod = NULL;
    if (asprintf(&stage, "%s/modules", tmp) < 0) {
        json_object_set_new(out, "error", json_string("out of memory"));
        return out;
    }
    if (ph_module_open(m, stage, &mod)) {
        json_object_set_new(out, "ok", json_false());
        json_object_set_new(out, "error", json_string(ph_error_last()));
        free(stage);
        return out;
    }
    json_object_set_new(out, "ok", json_true());
    json_object_set_new(out, "build", json_string(mod->hash));
    json_object_set_new(out, "interface", ph_interface_json(mod->desc));
    for (size_t i = 0; i < n; i++) {
        char *scratch = NULL;
        if (asprintf(&scratch, "%s/data-%zu-%zu", tmp, job, i) < 0)
            break;
        json_array_append_new(json_object_get(out, "instances"),
                              rehearse(m, mod->desc, data_dir, scratch, instances[i]));
        free(scratch);
    }
    ph_module_close(mod); /* freed, so leak checkers following the child stay quiet */
    free(stage);
    return out;
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        p += k;
        len -= (size_t)k;
    }
}

/*
 * exit() called by package code while it loads (a constructor): the answer
 * says so, and the child ends before the caller's own exit handlers (which
 * this process inherited with fork) run. Registered last, so it runs first.
 */
static int answer_fd = -1;

static void report_exit(int status, void *arg)
{
    (void)arg;
    char text[48];
    int n = snprintf(text, sizeof text, "{\"exit\": %d}\n", status);
    if (answer_fd >= 0 && n > 0)
        write_all(answer_fd, text, (size_t)n);
    _exit(status);
}

/* What every scanner child does first: quiet, default fatal signals, no core file. */
static int child_setup(int fd)
{
    /* A host started with its standard streams closed has the pipe among them. */
    if (fd <= STDERR_FILENO)
        fd = fcntl(fd, F_DUPFD, STDERR_FILENO + 1);
    /* Logs would interleave with the caller's output; the answer says everything. */
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        close(null);
    }
    ph_log_set_level(PH_L_ERROR);
    ph_loader_in_scanner();
    /* A fault in package code ends the child by its signal, which the parent
     * names; no sanitizer or crash handler of the caller, and no core file. */
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        signal(fatal[i], SIG_DFL);
    setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
    answer_fd = fd;
    on_exit(report_exit, NULL);
    return fd;
}

/*
 * One scanner child scans jobs[from..n) in turn, in the scratch directory
 * `tmp` (which the parent made and removes, even after a crash), and writes
 * each answer as one line (compact JSON holds no newline) as soon as it has
 * it: the parent knows which package a crash, an exit() or a hang belongs to
 * by the number of answers it read.
 */
static void child_main(int fd, const ph_scan_job *jobs, size_t from, size_t n, const char *data_dir,
                       const char *tmp)
{
    fd = child_setup(fd);
    for (size_t k = from; k < n; k++) {
        json_t *out = child_scan(jobs[k].m, jobs[k].instances, jobs[k].n, data_dir, tmp, k);
        char *text = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        if (!text)
            _exit(4);
        write_all(fd, text, strlen(text));
        write_all(fd, "\n", 1);
        free(text);
    }
    close(fd);
    _exit(0);
}

/* ------------------------------------------------------------------ */
/* The parent                                                           */
/* ------------------------------------------------------------------ */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the child's answer until EOF or the deadline. 1 if it timed out. */
static int read_answer(int fd, int timeout_ms, sqlite3_str *buf)
{
    long long deadline = now_ms() + timeout_ms;
    char chunk[4096];
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return 1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int k = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            continue;
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return 0;
        sqlite3_str_append(buf, chunk, (int)got);
    }
}

static int scan_timeout(int timeout_ms, int fallback)
{
    const char *env = getenv("PLUGHOST_SCAN_TIMEOUT_MS");
    if (timeout_ms > 0)
        return timeout_ms;
    if (env && atoi(env) > 0)
        return atoi(env);
    return fallback;
}

/* What ended a child that gave no answer: "crashed with SIGSEGV", "called exit(3)", ... */
static void child_fate(char *what, size_t size, int timed_out, int status, int exit_code)
{
    const char *sig = WIFSIGNALED(status) ? sigabbrev_np(WTERMSIG(status)) : NULL;
    if (timed_out)
        snprintf(what, size, "did not answer within %d ms (killed)", timed_out);
    else if (exit_code >= 0)
        snprintf(what, size, "called exit(%d)", exit_code);
    else if (WIFSIGNALED(status))
        snprintf(what, size, "crashed with SIG%s", sig ? sig : "?");
    else
        snprintf(what, size, "exited with status %d without an answer",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* The child failed to answer: blame the package and its build. */
static json_t *failed_scan(const ph_manifest *m, const char *build, int timed_out, int status,
                           int exit_code)
{
    char what[160];
    child_fate(what, sizeof what, timed_out, status, exit_code);
    return json_pack("{s:s, s:s, s:s, s:s?, s:b, s:o, s:[]}", "package", m->name, "version",
                     m->version_text, "library", m->library, "build", build, "ok", 0, "error",
                     json_sprintf("the scanner %s while reading package '%s' %s (%s, build %s): "
                                  "its code runs when it is loaded (a constructor or a broken "
                                  "library); fix or remove the package",
                                  what, m->name, m->version_text, m->library,
                                  build ? build : "unknown"),
                     "instances");
}

/* The exit status package code passed to exit() in the child (report_exit), or -1. */
static int exit_of(json_t *answer)
{
    json_t *e = json_object_get(answer, "exit");
    return json_is_integer(e) ? (int)json_integer_value(e) : -1;
}

/*
 * Runs `fn(fd, arg)` in a child and collects its answer (one JSON document)
 * within timeout_ms; *timed_out is the timeout when it expired (the child
 * was killed), *status the child's wait status. *answer NULL if none.
 */
static int run_child(void (*fn)(int, const void *), const void *arg, int timeout_ms,
                     json_t **answer, int *timed_out, int *status)
{
    int fds[2];
    *answer = NULL;
    *status = 0;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return ph_error_set(PH_EIO, "cannot create a pipe for the scanner: %s", ph_strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return ph_error_set(PH_EIO, "cannot start the scanner: %s", ph_strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        fn(fds[1], arg);
        _exit(5);
    }
    close(fds[1]);
    sqlite3_str *buf = sqlite3_str_new(NULL);
    *timed_out = read_answer(fds[0], timeout_ms, buf) ? timeout_ms : 0;
    close(fds[0]);
    if (*timed_out)
        kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    char *text = sqlite3_str_finish(buf);
    *answer = !*timed_out && text ? json_loads(text, 0, NULL) : NULL;
    sqlite3_free(text);
    return 0;
}

/* What the parent knows of one scanner child of a batch. */
typedef struct batch {
    const ph_scan_job *jobs;
    size_t n;
    const char *data_dir;
    int timeout_ms;
    json_t **outs;
    const char *tmp; /* the scratch directory of the children */
    size_t next;     /* the job whose answer comes next */
    int timed_out;   /* the timeout, when the child was killed for it */
    int exit_code;   /* what package code passed to exit(), or -1 */
} batch;

/* Takes one line of the child's answers: the next job's, or an exit() report. */
static void take_line(batch *b, const char *line, size_t len)
{
    json_t *answer = json_loadb(line, len, 0, NULL);
    if (json_object_get(answer, "exit")) {
        b->exit_code = exit_of(answer);
        json_decref(answer);
    } else if (answer && b->next < b->n) {
        b->outs[b->next++] = answer;
    } else {
        json_decref(answer);
    }
}

/*
 * Reads answer lines until EOF, or until one job took longer than the
 * timeout (then b->timed_out is set). Every answer restarts the clock: the
 * bound is per package, as with one child per package.
 */
static void read_answers(batch *b, int fd)
{
    long long deadline = now_ms() + b->timeout_ms;
    char chunk[4096];
    sqlite3_str *buf = sqlite3_str_new(NULL);
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            b->timed_out = b->timeout_ms;
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int k = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (k <= 0)
            continue;
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        for (ssize_t i = 0; i < got; i++) {
            if (chunk[i] != '\n') {
                sqlite3_str_appendchar(buf, 1, chunk[i]);
                continue;
            }
            size_t before = b->next;
            take_line(b, sqlite3_str_value(buf) ?: "", (size_t)sqlite3_str_length(buf));
            sqlite3_str_reset(buf);
            if (b->next != before)
                deadline = now_ms() + b->timeout_ms;
        }
    }
    sqlite3_free(sqlite3_str_finish(buf));
}

/* One child for the jobs from b->next on; returns when it ended, answered or not. */
static int run_batch_child(batch *b)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return ph_error_set(PH_EIO, "cannot create a pipe for the scanner: %s", ph_strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return ph_error_set(PH_EIO, "cannot start the scanner: %s", ph_strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        child_main(fds[1], b->jobs, b->next, b->n, b->data_dir, b->tmp);
        _exit(5);
    }
    close(fds[1]);
    int status = 0;
    b->timed_out = 0;
    b->exit_code = -1;
    read_answers(b, fds[0]);
    close(fds[0]);
    if (b->timed_out)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (b->next < b->n) {
        /* it ended without answering for the job it was on: that job is blamed (a crash, an
         * exit(), a hang), and a new child takes the rest */
        const ph_manifest *m = b->jobs[b->next].m;
        char build[17];
        const char *hash = ph_file_hash(m->library, build) == 0 ? build : NULL;
        if (!(b->outs[b->next++] = failed_scan(m, hash, b->timed_out, status, b->exit_code)))
            return ph_error_set(PH_ENOMEM, "out of memory");
    }
    return 0;
}

int ph_scan_packages(const ph_scan_job *jobs, size_t n, const char *data_dir, int timeout_ms,
                     json_t **outs)
{
    const char *base = getenv("TMPDIR");
    batch b = {jobs, n, data_dir, scan_timeout(timeout_ms, PH_SCAN_TIMEOUT_MS), outs, NULL,
               0,    0, -1};
    char *tmp = NULL;
    int rc = 0;
    ph_error_clear();
    for (size_t i = 0; i < n; i++)
        outs[i] = NULL;
    if (asprintf(&tmp, "%s/plughost-scan.XXXXXX", base && *base ? base : "/tmp") < 0)
        return ph_error_set(PH_ENOMEM, "out of memory");
    if (!mkdtemp(tmp)) {
        rc = ph_error_set(PH_EIO, "cannot create a scratch directory %s for the scanner: %s", tmp,
                          ph_strerror(errno));
        free(tmp);
        return rc;
    }
    b.tmp = tmp;
    while (b.next < n && !rc)
        rc = run_batch_child(&b);
    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(tmp);
    for (size_t i = 0; i < n && !rc; i++) {
        char build[17];
        if (!json_object_get(outs[i], "build") && ph_file_hash(jobs[i].m->library, build) == 0)
            json_object_set_new(outs[i], "build", json_string(build));
    }
    if (rc)
        for (size_t i = 0; i < n; i++) {
            json_decref(outs[i]);
            outs[i] = NULL;
        }
    return rc;
}

int ph_scan_package(const ph_manifest *m, const char *const *instances, size_t n,
                    const char *data_dir, int timeout_ms, json_t **out)
{
    ph_scan_job job = {m, instances, n};
    return ph_scan_packages(&job, 1, data_dir, timeout_ms, out);
}

/* ------------------------------------------------------------------ */
/* The descriptor gate                                                  */
/* ------------------------------------------------------------------ */

typedef struct descriptor_job {
    const ph_manifest *m;
    const char *copy;
} descriptor_job;

static void descriptor_child(int fd, const void *arg)
{
    const descriptor_job *j = arg;
    fd = child_setup(fd);
    /* Killed with the thread that waits for it; holds none of the host's descriptors
     * (a listening socket kept by a hung child would keep the port). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (fd != 3) {
        dup2(fd, 3);
        answer_fd = fd = 3;
    }
    close_range(4, ~0U, 0);
    int rc = ph_loader_probe(j->m, j->copy);
    json_t *out = rc ? json_pack("{s:b, s:i, s:s}", "ok", 0, "code", rc, "error", ph_error_last())
                     : json_pack("{s:b}", "ok", 1);
    char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;
    if (text)
        write_all(fd, text, strlen(text));
    _exit(text ? 0 : 4);
}

/* "2 s", "1.5 s" */
static void seconds(char *out, size_t size, int ms)
{
    if (ms % 1000 == 0)
        snprintf(out, size, "%d s", ms / 1000);
    else
        snprintf(out, size, "%.1f s", ms / 1000.0);
}

int ph_scan_descriptor(const ph_manifest *m, const char *copy, const char *build, int timeout_ms)
{
    descriptor_job job = {m, copy};
    json_t *answer = NULL;
    int status = 0, timed_out = 0, rc;
    timeout_ms = scan_timeout(timeout_ms, PH_SCAN_DESCRIPTOR_TIMEOUT_MS);
    if ((rc = run_child(descriptor_child, &job, timeout_ms, &answer, &timed_out, &status)))
        return rc;
    int exit_code = exit_of(answer);
    json_t *ok = json_object_get(answer, "ok");
    if (json_is_true(ok) && exit_code < 0) {
        json_decref(answer);
        return 0;
    }
    if (json_is_false(ok)) {
        json_int_t code = json_integer_value(json_object_get(answer, "code"));
        rc = ph_error_set(code < 0 ? (int)code : PH_ELOAD, "%s",
                          json_string_value(json_object_get(answer, "error")) ?: "refused");
        json_decref(answer);
        return rc;
    }
    json_decref(answer);
    if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0 && exit_code < 0)
        return ph_error_set(PH_ENOMEM, "out of memory reading the scanner's answer for '%s'",
                            m->name);
    char what[160], limit[32];
    seconds(limit, sizeof limit, timeout_ms);
    if (timed_out)
        snprintf(what, sizeof what, "did not answer within %s (killed)", limit);
    else
        child_fate(what, sizeof what, 0, status, exit_code);
    return ph_error_set(PH_ELOAD,
                        "package '%s' %s (%s, build %s) %s while loading, in a scanner child: the "
                        "host did not load it; a package must not run code when it is loaded "
                        "(constructors, static initialisers), so fix or rebuild it",
                        m->name, m->version_text, m->library, build ? build : "unknown", what);
}
