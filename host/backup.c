#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

int ph_backup_mkdirs(const char *path)
{
    char *p = strdup(path);
    int rc = 0;
    if (!p)
        return ph_error_set(PH_ENOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0)
            continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            rc = ph_error_set(PH_EIO,
                              "cannot create directory %s: %s; check the permissions of "
                              "its parent",
                              p, ph_strerror(errno));
            break;
        }
        if (!c)
            break;
        *s = c;
    }
    free(p);
    return rc;
}

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int ph_backup_verify(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = ph_error_set(PH_ESQL, "cannot open backup %s: %s", path,
                          db ? sqlite3_errmsg(db) : "out of memory");
        goto cleanup;
    }
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = ph_error_set(PH_ESQL, "cannot check backup %s: %s", path, sqlite3_errmsg(db));
        goto cleanup;
    }
    const char *res = (const char *)sqlite3_column_text(st, 0);
    if (!res || strcmp(res, "ok") != 0)
        rc = ph_error_set(PH_ESQL, "backup %s failed its integrity check: %s", path,
                          res ? res : "no result");
cleanup:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* "20260122T013000.123Z": UTC, sortable by name. */
static void utc_stamp(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y%m%dT%H%M%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* A name no file has yet: base.db, else base-2.db, ... */
static int free_name(const char *dir, const char *base, char **out)
{
    for (int i = 1; i < 1000; i++) {
        char *p = NULL;
        int n = i == 1 ? asprintf(&p, "%s/%s.db", dir, base)
                       : asprintf(&p, "%s/%s-%d.db", dir, base, i);
        if (n < 0)
            return ph_error_set(PH_ENOMEM, "out of memory");
        if (access(p, F_OK) != 0) {
            *out = p;
            return 0;
        }
        free(p);
    }
    return ph_error_set(PH_EIO, "too many backups named %s in %s", base, dir);
}

static int vacuum_into(sqlite3 *db, const char *tmp, const char *instance)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db, "VACUUM main INTO ?1", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, tmp, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        rc = ph_error_set(PH_EIO,
                          "cannot back up the database of instance '%s' to %s: %s; check "
                          "free space and permissions",
                          instance, tmp, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

/* True if `name` is a temporary file of a backup of `instance` (or its journal). */
static int is_tmp_of(const char *name, const char *instance)
{
    size_t n = strlen(instance);
    return strncmp(name, instance, n) == 0 && name[n] == '-' && strstr(name, ".db.tmp") != NULL;
}

/* Removes temporary files older than PH_BACKUP_STALE_S: backups killed half-way. */
static void remove_stale_tmp(const char *dir, const char *instance)
{
    DIR *d = opendir(dir);
    time_t now = time(NULL);
    struct dirent *e;
    if (!d)
        return;
    while ((e = readdir(d))) {
        struct stat st;
        char *p = NULL;
        if (!is_tmp_of(e->d_name, instance) || asprintf(&p, "%s/%s", dir, e->d_name) < 0)
            continue;
        if (stat(p, &st) == 0 && now - st.st_mtime > PH_BACKUP_STALE_S)
            unlink(p);
        free(p);
    }
    closedir(d);
}

int ph_backup_write(sqlite3 *db, const char *dir, const char *instance, const char *kind,
                    char **out_path)
{
    char stamp[48];
    char *base = NULL, *final = NULL, *tmp = NULL;
    int rc;
    *out_path = NULL;
    if ((rc = ph_backup_mkdirs(dir)))
        return rc;
    remove_stale_tmp(dir, instance);
    utc_stamp(stamp, sizeof stamp);
    if (asprintf(&base, "%s-%s-%s", instance, stamp, kind) < 0) {
        base = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = free_name(dir, base, &final)))
        goto cleanup;
    if (asprintf(&tmp, "%s.tmp", final) < 0) {
        tmp = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    unlink(tmp); /* a leftover of a backup killed half-way */
    if ((rc = vacuum_into(db, tmp, instance)))
        goto cleanup;
    if (fsync_path(tmp, 0) != 0) {
        rc = ph_error_set(PH_EIO, "cannot sync backup %s: %s", tmp, ph_strerror(errno));
        goto cleanup;
    }
    if ((rc = ph_backup_verify(tmp)))
        goto cleanup;
    if (rename(tmp, final) != 0) {
        rc = ph_error_set(PH_EIO, "cannot rename backup %s to %s: %s", tmp, final, ph_strerror(errno));
        goto cleanup;
    }
    fsync_path(dir, 1);
    *out_path = final;
    final = NULL;
cleanup:
    if (rc && tmp)
        unlink(tmp);
    free(base);
    free(final);
    free(tmp);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* True if name is "<instance>-<stamp>-<kind_prefix>...db". */
static int is_backup_of(const char *name, const char *instance, const char *kind_prefix)
{
    size_t n = strlen(instance);
    if (strncmp(name, instance, n) != 0 || name[n] != '-')
        return 0;
    const char *stamp = name + n + 1;
    const char *dash = strchr(stamp, '-');
    size_t len = strlen(name);
    return dash && dash - stamp == 20 && strncmp(dash + 1, kind_prefix, strlen(kind_prefix)) == 0 &&
           len > 3 && strcmp(name + len - 3, ".db") == 0;
}

int ph_backup_prune(const char *dir, const char *instance, const char *kind_prefix, int keep)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int removed = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_backup_of(e->d_name, instance, kind_prefix))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **p = realloc(names, ncap * sizeof *names);
            if (!p)
                goto cleanup;
            names = p;
            cap = ncap;
        }
        if (!(names[n] = strdup(e->d_name)))
            goto cleanup;
        n++;
    }
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; keep >= 0 && i + (size_t)keep < n; i++) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, names[i]) >= 0) {
            if (unlink(p) == 0)
                removed++;
            free(p);
        }
    }
cleanup:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return removed;
}
