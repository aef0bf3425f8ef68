#include "scan.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    if ((rc = ph_backup_mkdirs(dir)) || access(src, F_OK) != 0)
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

/* Migrates the scratch copy as attaching would; the report's fields go into r. */
static int migrate_copy(const ph_manifest *m, const ph_package *desc, const char *scratch,
                        const char *instance, json_t *r)
{
    ph_store_model *models = NULL;
    size_t n_models = 0;
    ph_store *s = NULL;
    char *path = NULL, *bdir = NULL;
    json_t *report = NULL;
    int rc;
    if ((rc = ph_store_models_compile(desc, &models, &n_models)) ||
        (rc = ph_store_db_path(scratch, instance, &path)) ||
        (rc = ph_store_backup_dir(scratch, instance, &bdir)) || (rc = ph_store_open(path, &s)))
        goto cleanup;
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
        rc = migrate_copy(m, desc, scratch, instance, r);
    json_object_set_new(r, "ok", json_boolean(rc == 0));
    if (rc)
        json_object_set_new(r, "error", json_string(ph_error_last()));
    return r;
}

/* Everything the child does; the answer is one JSON document. */
static json_t *child_scan(const ph_manifest *m, const char *const *instances, size_t n,
                          const char *data_dir, const char *tmp)
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
        if (asprintf(&scratch, "%s/data-%zu", tmp, i) < 0)
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

static void child_main(int fd, const ph_manifest *m, const char *const *instances, size_t n,
                       const char *data_dir)
{
    const char *base = getenv("TMPDIR");
    char *tmp = NULL;
    /* Logs would interleave with the caller's output; the answer says everything. */
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        close(null);
    }
    ph_log_set_level(PH_L_ERROR);
    /* A fault in package code ends the child by its signal, which the parent
     * names; no sanitizer or crash handler of the caller, and no core file. */
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        signal(fatal[i], SIG_DFL);
    setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
    if (asprintf(&tmp, "%s/plughost-scan.XXXXXX", base && *base ? base : "/tmp") < 0 ||
        !mkdtemp(tmp))
        _exit(3);
    json_t *out = child_scan(m, instances, n, data_dir, tmp);
    char *text = json_dumps(out, JSON_COMPACT);
    int ok = text != NULL;
    json_decref(out);
    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(tmp);
    if (text)
        write_all(fd, text, strlen(text));
    free(text);
    close(fd);
    _exit(ok ? 0 : 4);
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

static int scan_timeout(int timeout_ms)
{
    const char *env = getenv("PLUGHOST_SCAN_TIMEOUT_MS");
    if (timeout_ms > 0)
        return timeout_ms;
    if (env && atoi(env) > 0)
        return atoi(env);
    return PH_SCAN_TIMEOUT_MS;
}

/* The child failed to answer: blame the package and its build. */
static json_t *failed_scan(const ph_manifest *m, const char *build, int timed_out, int status,
                           int timeout_ms)
{
    char what[160];
    const char *sig = WIFSIGNALED(status) ? sigabbrev_np(WTERMSIG(status)) : NULL;
    if (timed_out)
        snprintf(what, sizeof what, "did not answer within %d ms (killed)", timeout_ms);
    else if (WIFSIGNALED(status))
        snprintf(what, sizeof what, "crashed with SIG%s", sig ? sig : "?");
    else
        snprintf(what, sizeof what, "exited with status %d without an answer",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return json_pack("{s:s, s:s, s:s, s:s?, s:b, s:o, s:[]}", "package", m->name, "version",
                     m->version_text, "library", m->library, "build", build, "ok", 0, "error",
                     json_sprintf("the scanner %s while reading package '%s' %s (%s, build %s): "
                                  "its code runs when it is loaded (a constructor or a broken "
                                  "library); fix or remove the package",
                                  what, m->name, m->version_text, m->library,
                                  build ? build : "unknown"),
                     "instances");
}

int ph_scan_package(const ph_manifest *m, const char *const *instances, size_t n,
                    const char *data_dir, int timeout_ms, json_t **out)
{
    int fds[2], status = 0, timed_out;
    char build[17];
    const char *hash = ph_file_hash(m->library, build) == 0 ? build : NULL;
    ph_error_clear();
    *out = NULL;
    timeout_ms = scan_timeout(timeout_ms);
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
        child_main(fds[1], m, instances, n, data_dir);
    }
    close(fds[1]);
    sqlite3_str *buf = sqlite3_str_new(NULL);
    timed_out = read_answer(fds[0], timeout_ms, buf);
    close(fds[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    char *text = sqlite3_str_finish(buf);
    json_t *answer = !timed_out && text ? json_loads(text, 0, NULL) : NULL;
    sqlite3_free(text);
    if (!answer || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        json_decref(answer);
        answer = failed_scan(m, hash, timed_out, status, timeout_ms);
    }
    if (!json_object_get(answer, "build") && hash)
        json_object_set_new(answer, "build", json_string(hash));
    *out = answer;
    return answer ? 0 : ph_error_set(PH_ENOMEM, "out of memory");
}
