#include "build.h"

#include <dirent.h>
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
        return ph_error_set(PH_EIO, "cannot read %s: %s", path, strerror(errno));
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
    char lib[PH_BUILD_ID_LEN];
    uint64_t h = FNV_OFFSET;
    int rc;
    out[0] = 0;
    if (!so_hash) {
        if ((rc = ph_file_hash(m->library, lib)))
            return rc;
        so_hash = lib;
    }
    h = mix(h, so_hash, strlen(so_hash) + 1);
    if ((rc = mix_file(&h, m->path, 1)) || (rc = mix_sql(&h, m->dir)))
        return rc;
    snprintf(out, PH_BUILD_ID_LEN, "%016llx", (unsigned long long)h);
    return 0;
}
