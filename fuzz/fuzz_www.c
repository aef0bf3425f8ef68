/*
 * Static files: the input is a decoded request path ("a/b/c", as the HTTP
 * layer hands it over after splitting on '/' and decoding each segment; the
 * first byte picks www or wiki index files). ph_www_open serves from a tree
 * with files, subdirectories, and symlinks inside and out of it.
 * Invariant: whatever opens is a regular file beneath the root, never
 * secret.txt beside it.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fuzz.h"
#include "www.h"

#define MAX_SEGS 16

static char *root, *root_slash;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char *p = fz_path("secret.txt");
    fz_write(p, "secret", 6);
    free(p);
    static const char *const files[] = {"www/index.html",          "www/a/b.txt", "www/a/index.md",
                                        "www/sub/deep/index.html", "www/.hidden", NULL};
    for (size_t i = 0; files[i]; i++) {
        p = fz_path(files[i]);
        fz_write(p, files[i], strlen(files[i]));
        free(p);
    }
    root = fz_path("www");
    static const char *const links[][2] = {
        {"../secret.txt", "out"}, {"a/b.txt", "in"},
        {"/etc/passwd", "abs"},   {"..", "up"},
        {"loop", "loop"},         {"/proc/self/root/etc/passwd", "magic"}};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        char *q = NULL;
        if (asprintf(&q, "%s/%s", root, links[i][1]) < 0 || symlink(links[i][0], q) != 0)
            fz_fail("cannot create link %s", links[i][1]);
        free(q);
    }
    char *real = realpath(root, NULL);
    if (!real || asprintf(&root_slash, "%s/", real) < 0)
        fz_fail("cannot resolve %s", root);
    free(real);
    return 0;
}

/* The path of an open descriptor, from /proc. */
static void fd_path(int fd, char *buf, size_t size)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, size - 1);
    buf[n < 0 ? 0 : n] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const wiki_index[] = {"index.html", "index.md", NULL};
    if (size < 1)
        return 0;
    char *text = fz_str(data + 1, size - 1);
    char *segs[MAX_SEGS];
    size_t n = 0;
    for (char *s = text; n < MAX_SEGS;) {
        char *slash = strchr(s, '/');
        if (slash)
            *slash = '\0';
        if (*s || slash)
            segs[n++] = s;
        if (!slash)
            break;
        s = slash + 1;
    }
    for (size_t i = 0; i < n; i++)
        (void)ph_www_segment_ok(segs[i], strlen(segs[i]));
    ph_www_file f;
    int rc = ph_www_open(root, segs, n, data[0] & 1 ? wiki_index : NULL, &f);
    if (rc == 0) {
        char where[PATH_MAX];
        struct stat st;
        fd_path(f.fd, where, sizeof where);
        if (strncmp(where, root_slash, strlen(root_slash)) != 0)
            fz_fail("opened %s, outside %s", where, root_slash);
        if (fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != f.size)
            fz_fail("opened %s, which is not the regular file described", where);
        close(f.fd);
    } else if (rc != PH_ENOTFOUND && rc != PH_EINVAL) {
        fz_fail("unexpected code %d: %s", rc, ph_error_last());
    }
    free(text);
    return 0;
}
