/*
 * Helpers for the tests that run hosts over the staged fixture packages
 * (tests/packages/core_*) and examples. Header-only (static inline) so that
 * only the tests that include it get it.
 *
 * Every fixture's lifecycle callbacks create $PH_TEST_MARKERS/<instance>.<step>
 * (see tests/packages/core_marker.h); fx_marked() checks for those files.
 */
#ifndef PH_PHFIX_H
#define PH_PHFIX_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/*
 * The staged directory of a package: "calc" or "ex:calc" -> $PH_EXAMPLES/calc,
 * anything else -> $PH_FIXTURES/<name>. Malloc'd.
 */
static inline char *fx_pkgdir(const char *name)
{
    if (strncmp(name, "ex:", 3) == 0)
        return tu_fmt("%s/%s", tu_env("PH_EXAMPLES"), name + 3);
    return tu_fmt("%s/%s", tu_env("PH_FIXTURES"), name);
}

/*
 * A free TCP port on 127.0.0.1 for hosts that serve HTTP: the kernel picks
 * one for a socket bound to port 0, which is closed again (a small race with
 * other processes, far smaller than a fixed or random port's).
 */
static inline int fx_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    if (!port)
        abort();
    return port;
}

/*
 * Writes <tmp>/host.ini whose package_dirs lists exactly the staged
 * directories of `names` (NULL-terminated), data_dir <tmp>/data, and appends
 * `extra` (may be NULL). Also creates <tmp>/markers. Returns the ini path.
 *
 * Each package is listed through a symlink <tmp>/p/<name> -> its staged
 * directory, as the relative path "p/<name>": host.ini lines are limited to
 * PH_INI_MAX_LINE characters, which a long list of absolute build paths
 * could exceed. (Manifest paths in messages are the real, staged paths.)
 */
static inline char *fx_host_ini(const char *tmp, const char *const *names, const char *extra)
{
    char *dirs = strdup("");
    char *pdir = tu_fmt("%s/p", tmp);
    mkdir(pdir, 0755);
    for (size_t i = 0; names[i]; i++) {
        const char *base = strncmp(names[i], "ex:", 3) == 0 ? names[i] + 3 : names[i];
        char *d = fx_pkgdir(names[i]);
        char *link = tu_fmt("%s/%s", pdir, base);
        unlink(link);
        if (symlink(d, link) != 0)
            abort();
        char *n = tu_fmt("%s%sp/%s", dirs, i ? ", " : "", base);
        free(link);
        free(d);
        free(dirs);
        dirs = n;
    }
    char *text = tu_fmt("[host]\npackage_dirs = %s\ndata_dir = data\nlog_level = info\n\n"
                        "[http]\nlisten = 127.0.0.1:%d\n%s",
                        dirs, fx_port(), extra ? extra : "");
    char *path = tu_write(tmp, "host.ini", text);
    char *markers = tu_fmt("%s/markers", tmp);
    mkdir(markers, 0755);
    free(markers);
    free(pdir);
    free(text);
    free(dirs);
    return path;
}

/* True if the fixture instance `inst` ran lifecycle step `step` in this temp dir. */
static inline int fx_marked(const char *tmp, const char *inst, const char *step)
{
    struct stat st;
    char *path = tu_fmt("%s/markers/%s.%s", tmp, inst, step);
    int ok = stat(path, &st) == 0;
    free(path);
    return ok;
}

/*
 * Runs `plughost ARGS` in `tmp` with markers enabled; stdout to *out, stderr to
 * *err (both malloc'd). Returns the exit status.
 */
static inline int fx_plughost(const char *tmp, char **out, char **err, const char *args)
{
    char *errfile = tu_fmt("%s/stderr.txt", tmp);
    int rc = tu_run(out, "cd '%s' && PH_TEST_MARKERS='%s/markers' '%s' %s 2>'%s'", tmp, tmp,
                    tu_env("PH_BIN"), args, errfile);
    *err = tu_read(errfile);
    if (!*err)
        *err = strdup("");
    free(errfile);
    return rc;
}

/* Position of `needle` in `hay`, or -1 (printing both). */
static inline long fx_pos(const char *hay, const char *needle)
{
    const char *p = hay ? strstr(hay, needle) : NULL;
    if (!p) {
        fprintf(stderr, "expected to find:\n  %s\nin:\n%s\n", needle, hay ? hay : "(null)");
        return -1;
    }
    return (long)(p - hay);
}

/*
 * Starts `plughost run -c <ini>` in the background with stdout+stderr going
 * to <tmp>/run.log, waits (up to `wait_s` seconds) until the log contains
 * `ready`. Returns the pid (> 0) or -1 if it never got ready (the child is
 * killed then).
 */
static inline pid_t fx_start_run(const char *tmp, const char *ini, const char *ready, int wait_s)
{
    char *log = tu_fmt("%s/run.log", tmp);
    char *markers = tu_fmt("%s/markers", tmp);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        if (!f || dup2(fileno(stdout), 2) < 0)
            _exit(127);
        setenv("PH_TEST_MARKERS", markers, 1);
        execl(tu_env("PH_BIN"), "plughost", "run", "-c", ini, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; pid > 0 && i < wait_s * 20; i++) {
        char *text = tu_read(log);
        int ok = text && strstr(text, ready);
        free(text);
        if (ok)
            goto done;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            pid = -1;
            goto done;
        }
        usleep(50000);
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    pid = -1;
done:
    free(log);
    free(markers);
    return pid;
}

/*
 * Sends `sig` to a host started with fx_start_run and waits up to `wait_s`
 * seconds for it to exit. Returns its exit status, 128+signal, or -1 on
 * timeout (it is killed then).
 */
static inline int fx_stop_run(pid_t pid, int sig, int wait_s)
{
    int st;
    kill(pid, sig);
    for (int i = 0; i < wait_s * 20; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

#endif
