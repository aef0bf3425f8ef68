/*
 * Containment fixture, C11 threads: start() starts a thread with
 * thrd_create (glibc creates it without going through pthread_create's
 * PLT entry) that stop() tells to end but does not join. BUILD makes
 * builds differ.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <threads.h>
#include <time.h>

#include <plughost/sdk.h>

#ifndef BUILD
#define BUILD 1
#endif

static atomic_int stopping, ticks;

static int loop(void *arg)
{
    (void)arg;
    struct timespec step = {0, 10 * 1000 * 1000};
    for (;;) { /* told to stop, it keeps ticking: code left after stop() */
        thrd_sleep(&step, NULL);
        atomic_fetch_add(&ticks, 1);
    }
    return 0;
}

static int start(ph_ctx *ctx)
{
    thrd_t t;
    atomic_store(&stopping, 0);
    if (thrd_create(&t, loop, NULL) != thrd_success)
        return ph_error(ctx, "no_thread", "cannot start a thread");
    thrd_detach(t);
    return PH_OK;
}

static void stop(ph_ctx *ctx)
{
    (void)ctx;
    atomic_store(&stopping, 1);
}

static int64_t build(ph_ctx *ctx)
{
    (void)ctx;
    return BUILD;
}

static const ph_method c11_methods[] = {
    PH_METHOD0(build, PH_I64),
};

PH_PACKAGE(.start = start, .stop = stop, .actors = PH_ACTORS(PH_ACTOR("c11thread", c11_methods)));
