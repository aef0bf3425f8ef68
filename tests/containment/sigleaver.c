/*
 * Containment fixture: start() installs a SIGUSR1 handler and stop() leaves
 * it in place (-DUSR1=0: a build without it); with -DGRAB=1 start()
 * installs its own SIGSEGV handler over the host's crash handler (and
 * crash() then faults).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <plughost/sdk.h>

#ifndef GRAB
#define GRAB 0
#endif
#ifndef USR1
#define USR1 1
#endif

static volatile sig_atomic_t got;

static void on_usr1(int sig)
{
    (void)sig;
    got++;
}

static void on_segv(int sig)
{
    (void)sig;
    _exit(0); /* swallows the crash: no report, no journal */
}

static int start(ph_ctx *ctx)
{
    (void)ctx;
    if (!GRAB && !USR1)
        return PH_OK;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = GRAB ? on_segv : on_usr1;
    sigaction(GRAB ? SIGSEGV : SIGUSR1, &sa, NULL);
    return PH_OK;
}

static int64_t crash(ph_ctx *ctx)
{
    (void)ctx;
    volatile int *p = NULL;
    return *p;
}

static int64_t signals(ph_ctx *ctx)
{
    (void)ctx;
    return got;
}

static const ph_method sigleaver_methods[] = {
    PH_METHOD0(crash, PH_I64),
    PH_METHOD0(signals, PH_I64),
};

PH_PACKAGE(.start = start, .actors = PH_ACTORS(PH_ACTOR("sigleaver", sigleaver_methods)));
