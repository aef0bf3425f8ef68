/*
 * Containment fixture (issue "Package faults in process", second round):
 * a package that tries what the host must refuse or survive.
 *   - methods that signal the host to stop (kill, raise, pthread_kill,
 *     syscall(SYS_kill)), end it (syscall(SYS_exit_group)) or replace it
 *     (execl): each answers the errno it got (EPERM = 1 when refused), or 0;
 *   - methods that leave exit handlers (on_exit, at_quick_exit: refused;
 *     atexit: allowed, run when the build is unloaded; it touches the file
 *     named by $ROGUE_MARK.atexit);
 *   - `threadexit` calls pthread_exit() in the method (the host ends the
 *     call); `ownthread` calls it in a thread of its own (allowed);
 *   - with -DCTOR_HANG an ELF constructor that hangs in the host's dlopen
 *     (not in the scanner child), touching $ROGUE_MARK.hang first;
 *   - with -DCTOR_THREAD a constructor that starts a thread that never ends;
 *   - with -DSTART_HANG a start() that never returns (touching $ROGUE_MARK.start).
 * BUILD tells builds apart.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <plughost/sdk.h>

#include "in_scanner.h"

#ifndef BUILD
#define BUILD 1
#endif

static void touch(const char *suffix)
{
    const char *mark = getenv("ROGUE_MARK");
    char path[512];
    if (!mark)
        return;
    snprintf(path, sizeof path, "%s.%s", mark, suffix);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
}

__attribute__((unused)) static void *forever(void *arg)
{
    (void)arg;
    for (;;)
        sleep(1);
    return NULL;
}

__attribute__((constructor)) static void at_load(void)
{
    if (in_scanner())
        return;
#ifdef CTOR_HANG
    touch("hang");
    for (;;)
        pause();
#endif
#ifdef CTOR_THREAD
    pthread_t t;
    if (pthread_create(&t, NULL, forever, NULL) == 0)
        pthread_detach(t);
#endif
}

static int64_t answer(int rc)
{
    return rc == -1 ? errno : rc;
}

static int64_t build(ph_ctx *ctx)
{
    (void)ctx;
    return BUILD;
}

static int64_t killself(ph_ctx *ctx)
{
    (void)ctx;
    return answer(kill(getpid(), SIGTERM));
}

static int64_t raiseint(ph_ctx *ctx)
{
    (void)ctx;
    return answer(raise(SIGINT));
}

static int64_t threadkill(ph_ctx *ctx)
{
    (void)ctx;
    return pthread_kill(pthread_self(), SIGKILL);
}

static int64_t syskill(ph_ctx *ctx)
{
    (void)ctx;
    return answer((int)syscall(SYS_kill, getpid(), SIGTERM));
}

static int64_t exitgroup(ph_ctx *ctx)
{
    (void)ctx;
    return answer((int)syscall(SYS_exit_group, 3));
}

static int64_t execself(ph_ctx *ctx)
{
    (void)ctx;
    return answer(execl("/bin/true", "true", (char *)NULL));
}

static void on_exit_handler(int status, void *arg)
{
    (void)status;
    (void)arg;
    touch("on_exit");
}

static void at_exit_handler(void)
{
    touch("atexit");
}

static int64_t onexit(ph_ctx *ctx)
{
    (void)ctx;
    return answer(on_exit(on_exit_handler, NULL));
}

static int64_t quickexit(ph_ctx *ctx)
{
    (void)ctx;
    return answer(at_quick_exit(at_exit_handler));
}

static int64_t atexit_ok(ph_ctx *ctx)
{
    (void)ctx;
    return answer(atexit(at_exit_handler));
}

static int64_t threadexit(ph_ctx *ctx)
{
    (void)ctx;
    pthread_exit(NULL);
}

static void *exit_early(void *arg)
{
    (void)arg;
    pthread_exit((void *)(intptr_t)7);
}

static int64_t ownthread(ph_ctx *ctx)
{
    (void)ctx;
    pthread_t t;
    void *res = NULL;
    if (pthread_create(&t, NULL, exit_early, NULL) != 0 || pthread_join(t, &res) != 0)
        return -1;
    return (int64_t)(intptr_t)res;
}

#ifdef START_HANG
static int start(ph_ctx *ctx)
{
    (void)ctx;
    touch("start");
    for (;;)
        pause();
    return PH_OK;
}
#define ROGUE_START .start = start,
#else
#define ROGUE_START
#endif

static const ph_method methods[] = {
    PH_METHOD0(build, PH_I64),      PH_METHOD0(killself, PH_I64),   PH_METHOD0(raiseint, PH_I64),
    PH_METHOD0(threadkill, PH_I64), PH_METHOD0(syskill, PH_I64),    PH_METHOD0(exitgroup, PH_I64),
    PH_METHOD0(execself, PH_I64),   PH_METHOD0(onexit, PH_I64),     PH_METHOD0(quickexit, PH_I64),
    PH_METHOD0(atexit_ok, PH_I64),  PH_METHOD0(threadexit, PH_I64), PH_METHOD0(ownthread, PH_I64),
};

PH_PACKAGE(ROGUE_START.actors = PH_ACTORS(PH_ACTOR("rogue", methods)));
