#include "www.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "error.h"

bool ph_www_segment_ok(const char *seg, size_t len)
{
    if (len == 0 || strlen(seg) != len) /* empty, or a NUL inside */
        return false;
    if (strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0)
        return false;
    return strpbrk(seg, "/\\") == NULL;
}

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/vnd.microsoft.icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"xml", "application/xml"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
};

const char *ph_www_content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && !strchr(dot, '/')) {
        for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++)
            if (strcasecmp(dot + 1, content_types[i].ext) == 0)
                return content_types[i].type;
    }
    return "application/octet-stream";
}

/* Joins segments with '/'; NULL on overflow or allocation failure. */
static char *join_segments(char *const *segs, size_t n, const char *tail)
{
    size_t len = tail ? strlen(tail) + 1 : 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(segs[i]) + 1;
        if (len > SIZE_MAX - l)
            return NULL;
        len += l;
    }
    char *p = malloc(len + 2); /* room for "." when there are no segments */
    if (!p)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(segs[i]);
        if (at)
            p[at++] = '/';
        memcpy(p + at, segs[i], l);
        at += l;
    }
    if (tail) {
        if (at)
            p[at++] = '/';
        memcpy(p + at, tail, strlen(tail));
        at += strlen(tail);
    }
    p[at] = '\0';
    if (at == 0)
        strcpy(p, ".");
    return p;
}

/* -1 with errno ENOSYS when the kernel has no openat2. */
static int open_beneath(int dirfd, const char *rel)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
}

/* Fallback: one segment at a time, never following a symlink. */
static int open_walk(int dirfd, char *const *segs, size_t n, const char *tail)
{
    int fd = dup(dirfd);
    if (fd < 0)
        return -1;
    for (size_t i = 0; i < n + (tail ? 1 : 0); i++) {
        const char *name = i < n ? segs[i] : tail;
        int next = openat(fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
        int saved = errno;
        close(fd);
        if (next < 0) {
            errno = saved == ELOOP ? ENOENT : saved;
            return -1;
        }
        fd = next;
    }
    return fd;
}

static bool have_openat2 = true; /* cleared once on ENOSYS; racy writes are idempotent */

static int open_path(int rootfd, char *const *segs, size_t n, const char *tail)
{
    if (__atomic_load_n(&have_openat2, __ATOMIC_RELAXED)) {
        char *rel = join_segments(segs, n, tail);
        if (!rel) {
            errno = ENOMEM;
            return -1;
        }
        int fd = open_beneath(rootfd, rel);
        int saved = errno;
        free(rel);
        if (fd >= 0 || saved != ENOSYS) {
            errno = saved;
            return fd;
        }
        __atomic_store_n(&have_openat2, false, __ATOMIC_RELAXED);
    }
    return open_walk(rootfd, segs, n, tail);
}

static int not_found(void)
{
    return ph_error_set(PH_ENOTFOUND, "no such file; check the path (files are served from the "
                                      "package's www/ and wiki/ directories only)");
}

/* Opens the first of `index` (NULL-terminated) that is a regular file in the directory. */
static int open_index(int rootfd, char *const *segs, size_t n, const char *const *index,
                      struct stat *st, const char **name)
{
    for (; *index; index++) {
        int fd = open_path(rootfd, segs, n, *index);
        if (fd < 0)
            continue;
        if (fstat(fd, st) == 0 && S_ISREG(st->st_mode)) {
            *name = *index;
            return fd;
        }
        close(fd);
    }
    return -1;
}

int ph_www_open(const char *root, char *const *segs, size_t n, const char *const *index,
                ph_www_file *out)
{
    static const char *const default_index[] = {"index.html", NULL};
    const char *index_name = NULL;
    int rc = 0, rootfd = -1, fd = -1;
    struct stat st;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    for (size_t i = 0; i < n; i++)
        if (!ph_www_segment_ok(segs[i], strlen(segs[i])))
            return ph_error_set(PH_EINVAL,
                                "path segment %zu is not allowed (empty, '.', '..', or "
                                "holding '/', '\\' or NUL); request a plain file path",
                                i + 1);
    rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        rc = not_found();
        goto cleanup;
    }
    fd = open_path(rootfd, segs, n, NULL);
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = errno == ENOMEM ? ph_error_set(PH_ENOMEM, "out of memory opening a static file")
                             : not_found();
        goto cleanup;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        fd = open_index(rootfd, segs, n, index ? index : default_index, &st, &index_name);
        if (fd < 0) {
            rc = not_found();
            goto cleanup;
        }
        out->is_index = true;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = not_found();
        goto cleanup;
    }
    out->fd = fd;
    fd = -1;
    out->size = (uint64_t)st.st_size;
    out->content_type = ph_www_content_type(index_name ? index_name : n ? segs[n - 1] : "");
cleanup:
    if (fd >= 0)
        close(fd);
    if (rootfd >= 0)
        close(rootfd);
    return rc;
}
