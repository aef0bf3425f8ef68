#include "fuzz.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;

void fz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz invariant broken: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static void remove_dir(void)
{
    char *cmd = NULL;
    if (dir && asprintf(&cmd, "rm -rf '%s'", dir) >= 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    free(cmd);
}

const char *fz_dir(void)
{
    if (dir)
        return dir;
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    if (asprintf(&dir, "%s/phfuzz.XXXXXX", base) < 0 || !mkdtemp(dir))
        fz_fail("cannot create a scratch directory: %s", strerror(errno));
    atexit(remove_dir);
    return dir;
}

char *fz_path(const char *rel)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", fz_dir(), rel) < 0)
        fz_fail("out of memory");
    for (char *s = p + strlen(fz_dir()) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            fz_fail("cannot create %s: %s", p, strerror(errno));
        *s = '/';
    }
    return p;
}

void fz_write(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        fz_fail("cannot write %s: %s", path, strerror(errno));
}

char *fz_str(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        fz_fail("out of memory");
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}
