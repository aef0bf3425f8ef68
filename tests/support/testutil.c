#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

const char *tu_env(const char *name)
{
    const char *v = getenv(name);
    if (!v) {
        fprintf(stderr, "test environment variable %s is not set; run the tests through ctest\n",
                name);
        abort();
    }
    return v;
}

char *tu_fmt(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *path = tu_fmt("%s/phtest.XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(path))
        abort();
    return path;
}

void tu_rmtree(const char *path)
{
    char *out = NULL;
    if (path && *path)
        tu_run(&out, "rm -rf '%s'", path);
    free(out);
}

static void mkparents(const char *file)
{
    char *p = strdup(file);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    }
    free(p);
}

char *tu_write(const char *dir, const char *name, const char *text)
{
    char *path = tu_fmt("%s/%s", dir, name);
    mkparents(path);
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
    return path;
}

/* Reads a stream to its end into a malloc'd, NUL-terminated buffer. */
static char *read_all(FILE *f)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[len] = 0;
    return buf;
}

char *tu_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = read_all(f);
    fclose(f);
    return buf;
}

int tu_run(char **out, const char *fmt, ...)
{
    va_list ap;
    char *cmd = NULL;
    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *full = tu_fmt("( %s ) 2>&1", cmd);
    free(cmd);
    FILE *p = popen(full, "r");
    free(full);
    if (!p)
        abort();
    char *buf = read_all(p);
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int tu_contains(const char *hay, const char *needle)
{
    if (hay && strstr(hay, needle))
        return 1;
    fprintf(stderr, "expected to find:\n  %s\nin:\n%s\n", needle, hay ? hay : "(null)");
    return 0;
}

int tu_dir_setup(void **state)
{
    tu_dir_fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = tu_tmpdir();
    *state = f;
    return 0;
}

int tu_dir_teardown(void **state)
{
    tu_dir_fixture *f = *state;
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}
