/*
 * Containment fixture: ways to end the process that skip exit()'s handlers
 * or happen outside any call. Methods: underscore (_exit(5)), capital
 * (_Exit(6)), quick (quick_exit(7)), in_thread (exit(8) from a thread it
 * starts), underscore_in_thread (_exit(9) from one), abort_in_thread
 * (abort() from one), one (returns 1). -DDTOR_EXIT=1: an ELF destructor
 * calls exit(4) when the build is unloaded.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <plughost/sdk.h>

#ifndef DTOR_EXIT
#define DTOR_EXIT 0
#endif

#if DTOR_EXIT
__attribute__((destructor)) static void at_unload(void)
{
    exit(4);
}
#endif

static int64_t underscore(ph_ctx *ctx)
{
    (void)ctx;
    _exit(5);
}

static int64_t capital(ph_ctx *ctx)
{
    (void)ctx;
    _Exit(6);
}

static int64_t quick(ph_ctx *ctx)
{
    (void)ctx;
    quick_exit(7);
}

static void *exit_thread(void *how)
{
    switch ((int)(intptr_t)how) {
    case 8:
        exit(8);
    case 9:
        _exit(9);
    default:
        abort();
    }
}

/* Starts the thread and waits for it: the process ends in it. */
static int64_t in(int how)
{
    pthread_t t;
    if (pthread_create(&t, NULL, exit_thread, (void *)(intptr_t)how) == 0)
        pthread_join(t, NULL);
    return 0;
}

static int64_t in_thread(ph_ctx *ctx)
{
    (void)ctx;
    return in(8);
}

static int64_t underscore_in_thread(ph_ctx *ctx)
{
    (void)ctx;
    return in(9);
}

static int64_t abort_in_thread(ph_ctx *ctx)
{
    (void)ctx;
    return in(0);
}

static int64_t one(ph_ctx *ctx)
{
    (void)ctx;
    return 1;
}

static const ph_method exiter_methods[] = {
    PH_METHOD0(underscore, PH_I64),
    PH_METHOD0(capital, PH_I64),
    PH_METHOD0(quick, PH_I64),
    PH_METHOD0(in_thread, PH_I64),
    PH_METHOD0(underscore_in_thread, PH_I64),
    PH_METHOD0(abort_in_thread, PH_I64),
    PH_METHOD0(one, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("exiter", exiter_methods)));
