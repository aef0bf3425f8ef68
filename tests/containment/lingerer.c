/*
 * Containment fixture: start() starts a thread that stop() tells to end but
 * does not join (-DJOIN=1: joins it). The thread ticks every 10 ms; with
 * -DCRASH=1 it dies on a null pointer 1 s after stop(). BUILD makes
 * builds differ (a reload needs a new file).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#include <plughost/sdk.h>

#ifndef BUILD
#define BUILD 1
#endif
#ifndef JOIN
#define JOIN 0
#endif
#ifndef CRASH
#define CRASH 0
#endif

static atomic_int stopping, ticks;
static pthread_t thread;

static void nap(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *loop(void *arg)
{
    (void)arg;
    for (;;) {
        nap(10);
        atomic_fetch_add(&ticks, 1);
        if (atomic_load(&stopping)) {
            if (JOIN)
                return NULL;
            if (CRASH) {
                nap(1000);
                volatile int *nowhere = NULL;
                *nowhere = 1;
            }
        }
    }
}

static int start(ph_ctx *ctx)
{
    atomic_store(&stopping, 0);
    if (pthread_create(&thread, NULL, loop, NULL) != 0)
        return ph_error(ctx, "no_thread", "cannot start a thread");
    return PH_OK;
}

static void stop(ph_ctx *ctx)
{
    (void)ctx;
    atomic_store(&stopping, 1);
    if (JOIN)
        pthread_join(thread, NULL);
}

static int64_t build(ph_ctx *ctx)
{
    (void)ctx;
    return BUILD;
}

static const ph_method lingerer_methods[] = {
    PH_METHOD0(build, PH_I64),
};

PH_PACKAGE(.start = start, .stop = stop,
           .actors = PH_ACTORS(PH_ACTOR("lingerer", lingerer_methods)));
