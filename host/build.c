#include "build.h"

#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "loader.h"

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

static uint64_t mix(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

/* Mixes a file's bytes (and a separator) into *h; a missing file counts as empty. */
static int mix_file(uint64_t *h, const char *path, int must_exist)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (!must_exist && errno == ENOENT)
            return 0;
        return ph_error_set(PH_EIO, "cannot read %s: %s", path, ph_strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ph_error_set(PH_EIO, "%s is not a regular file", path);
    }
    unsigned char buf[16384];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        *h = mix(*h, buf, (size_t)n);
    close(fd);
    *h = mix(*h, "\0", 1);
    return n < 0 ? ph_error_set(PH_EIO, "cannot read %s", path) : 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int regular_visible(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Every regular file directly under dir/sql, by name: name and bytes. */
static int mix_sql(uint64_t *h, const char *dir)
{
    char *sql = NULL;
    struct dirent **list = NULL;
    int rc = 0;
    if (asprintf(&sql, "%s/sql", dir) < 0)
        return ph_error_set(PH_ENOMEM, "out of memory");
    int n = scandir(sql, &list, regular_visible, by_name);
    for (int i = 0; i < n; i++) {
        char *path = NULL;
        struct stat st;
        if (!rc && asprintf(&path, "%s/%s", sql, list[i]->d_name) < 0) {
            path = NULL;
            rc = ph_error_set(PH_ENOMEM, "out of memory");
        }
        if (!rc && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            *h = mix(*h, list[i]->d_name, strlen(list[i]->d_name) + 1);
            rc = mix_file(h, path, 1);
        }
        free(path);
        free(list[i]);
    }
    free(list);
    free(sql);
    return rc;
}

int ph_build_id(const ph_manifest *m, const char *so_hash, char out[PH_BUILD_ID_LEN])
{
    char lib[PH_BUILD_ID_LEN], libs[PH_BUILD_ID_LEN];
    uint64_t h = FNV_OFFSET;
    int rc;
    out[0] = 0;
    if (!so_hash) {
        if ((rc = ph_file_hash(m->library, lib)))
            return rc;
        so_hash = lib;
    }
    h = mix(h, so_hash, strlen(so_hash) + 1);
    /* Libraries the .so loads from the package through $ORIGIN are part of the build;
     * a build without them keeps the identity it had before they were counted. */
    if (ph_module_libs_hash(m, libs) == 0 && libs[0])
        h = mix(h, libs, strlen(libs) + 1);
    ph_error_clear();
    if ((rc = mix_file(&h, m->path, 1)) || (rc = mix_sql(&h, m->dir)))
        return rc;
    snprintf(out, PH_BUILD_ID_LEN, "%016llx", (unsigned long long)h);
    return 0;
}

/* ---- copying package directories ---- */

static const char *copy_to; /* nftw has no user pointer */
static size_t copy_from_len;
static int copy_rc;
static int copy_skip_special;

static int copy_file(const char *from, const char *to, mode_t mode)
{
    int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0777);
    int rc = 0;
    char buf[65536];
    ssize_t n = 0;
    while (out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) {
            n = -1;
            break;
        }
    if (in < 0 || out < 0 || n < 0 || fsync(out) != 0)
        rc = ph_error_set(PH_EIO, "cannot copy %s to %s: %s", from, to, ph_strerror(errno));
    if (out >= 0 && close(out) != 0 && !rc)
        rc = ph_error_set(PH_EIO, "cannot write %s: %s", to, ph_strerror(errno));
    if (in >= 0)
        close(in);
    return rc;
}

static int copy_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    char *to = NULL;
    int rc = 0;
    if (asprintf(&to, "%s%s", copy_to, path + copy_from_len) < 0)
        return ph_error_set(PH_ENOMEM, "out of memory");
    if (flag == FTW_D)
        rc = mkdir(to, 0755) == 0 || errno == EEXIST
                 ? 0
                 : ph_error_set(PH_EIO, "cannot create %s: %s", to, ph_strerror(errno));
    else if (flag == FTW_F && S_ISREG(st->st_mode))
        rc = copy_file(path, to, st->st_mode);
    else if (copy_skip_special)
        rc = 0;
    else
        rc = ph_error_set(PH_EINVAL,
                          "%s is not a regular file or directory (links and special files are "
                          "not installed); replace it by the file itself",
                          path);
    free(to);
    copy_rc = rc;
    return rc ? 1 : 0; /* nonzero stops the walk; the error is in copy_rc */
}

int ph_copy_tree(const char *from, const char *to, int skip_special)
{
    copy_skip_special = skip_special;
    copy_to = to;
    copy_from_len = strlen(from);
    copy_rc = 0;
    int rc = nftw(from, copy_entry, 16, FTW_PHYS);
    if (rc > 0)
        return copy_rc;
    return rc < 0 ? ph_error_set(PH_EIO, "cannot read %s: %s", from, ph_strerror(errno)) : 0;
}

/* ---- the store of builds that ran ---- */

static int build_dir(const char *data_dir, const char *instance, const char *build, char **out)
{
    if (asprintf(out, "%s/.builds/%s/%s", data_dir, instance, build) < 0) {
        *out = NULL;
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    return 0;
}

static int mkdirs(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return ph_error_set(PH_ENOMEM, "out of memory");
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0700);
            *s = '/';
        }
    int rc = mkdir(p, 0700) == 0 || errno == EEXIST
                 ? 0
                 : ph_error_set(PH_EIO, "cannot create %s: %s", p, ph_strerror(errno));
    free(p);
    return rc;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Keeps the newest PH_BUILDS_KEPT builds of an instance (by modification time). */
static void prune(const char *data_dir, const char *instance)
{
    char *dir = NULL;
    struct dirent **list = NULL;
    if (asprintf(&dir, "%s/.builds/%s", data_dir, instance) < 0)
        return;
    int n = scandir(dir, &list, regular_visible, NULL), builds = 0;
    time_t *when = n > 0 ? calloc((size_t)n, sizeof *when) : NULL;
    for (int i = 0; when && i < n; i++) {
        char *path = NULL;
        struct stat st;
        /* Only kept builds (directories) count; interface.json and the like stay. */
        if (asprintf(&path, "%s/%s", dir, list[i]->d_name) >= 0 && lstat(path, &st) == 0 &&
            S_ISDIR(st.st_mode)) {
            when[i] = st.st_mtime ? st.st_mtime : 1;
            builds++;
        }
        free(path);
    }
    for (int kept = builds; when && kept > PH_BUILDS_KEPT; kept--) {
        int oldest = -1;
        for (int i = 0; i < n; i++)
            if (when[i] && (oldest < 0 || when[i] < when[oldest]))
                oldest = i;
        if (oldest < 0)
            break;
        char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, list[oldest]->d_name) >= 0)
            nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(path);
        when[oldest] = 0;
    }
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    free(when);
    free(dir);
}

int ph_build_keep(const char *data_dir, const char *instance, const ph_manifest *m,
                  const char *build)
{
    char *dir = NULL, *tmp = NULL;
    struct stat st;
    int rc = build_dir(data_dir, instance, build, &dir);
    if (rc || stat(dir, &st) == 0)
        goto cleanup; /* kept already */
    if (asprintf(&tmp, "%s.tmp", dir) < 0) {
        tmp = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS); /* left by a crash */
    char *parent = strdup(dir);
    if (parent)
        *strrchr(parent, '/') = 0;
    rc = parent ? mkdirs(parent) : ph_error_set(PH_ENOMEM, "out of memory");
    free(parent);
    /* What is not a regular file (a link in www/, say) is not part of a kept build. */
    if (!rc && !(rc = ph_copy_tree(m->dir, tmp, 1)) && rename(tmp, dir) != 0)
        rc = ph_error_set(PH_EIO, "cannot keep build %s: %s", dir, ph_strerror(errno));
    if (rc)
        nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        prune(data_dir, instance);
cleanup:
    free(dir);
    free(tmp);
    return rc;
}

int ph_build_prove(const char *data_dir, const char *instance, const char *build)
{
    char *dir = NULL, *mark = NULL;
    int rc = build_dir(data_dir, instance, build, &dir);
    if (!rc && asprintf(&mark, "%s/.proven", dir) < 0) {
        mark = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
    }
    if (!rc) {
        int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
    }
    free(dir);
    free(mark);
    return rc;
}

int ph_build_proven(const char *data_dir, const char *instance, const char *build)
{
    char *mark = NULL;
    struct stat st;
    if (asprintf(&mark, "%s/.builds/%s/%s/.proven", data_dir, instance, build) < 0)
        return 0;
    int yes = stat(mark, &st) == 0;
    free(mark);
    return yes;
}

int ph_build_last_good(const char *data_dir, const char *instance, const char *not_build,
                       char **out)
{
    char *dir = NULL;
    struct dirent **list = NULL;
    time_t best_time = 0;
    *out = NULL;
    if (asprintf(&dir, "%s/.builds/%s", data_dir, instance) < 0)
        return ph_error_set(PH_ENOMEM, "out of memory");
    int n = scandir(dir, &list, regular_visible, NULL);
    for (int i = 0; i < n; i++) {
        char *path = NULL, *mark = NULL;
        struct stat st;
        if (strcmp(list[i]->d_name, not_build) != 0 && !strstr(list[i]->d_name, ".tmp") &&
            asprintf(&path, "%s/%s", dir, list[i]->d_name) >= 0 &&
            asprintf(&mark, "%s/.proven", path) >= 0 && stat(mark, &st) == 0 &&
            st.st_mtime >= best_time) {
            best_time = st.st_mtime;
            free(*out);
            *out = path;
            path = NULL;
        }
        free(path);
        free(mark);
        free(list[i]);
    }
    free(list);
    free(dir);
    return *out ? 0 : PH_ENOTFOUND;
}

/* ---- the interface of the build that ran last ---- */

static char *interface_path(const char *data_dir, const char *instance)
{
    char *p = NULL;
    return asprintf(&p, "%s/.builds/%s/interface.json", data_dir, instance) < 0 ? NULL : p;
}

int ph_build_record_interface(const char *data_dir, const char *instance, const char *version,
                              json_t *iface)
{
    char *path = interface_path(data_dir, instance), *tmp = NULL;
    json_t *doc = iface ? json_pack("{s:s, s:O}", "version", version, "interface", iface) : NULL;
    int rc = 0;
    if (!path || !doc || asprintf(&tmp, "%s.tmp", path) < 0) {
        tmp = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
    } else if (json_dump_file(doc, tmp, JSON_COMPACT) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        rc = ph_error_set(PH_EIO, "cannot write %s", path);
    }
    json_decref(doc);
    free(path);
    free(tmp);
    return rc;
}

json_t *ph_build_last_interface(const char *data_dir, const char *instance)
{
    char *path = interface_path(data_dir, instance);
    json_t *doc = path ? json_load_file(path, 0, NULL) : NULL;
    free(path);
    return doc;
}
