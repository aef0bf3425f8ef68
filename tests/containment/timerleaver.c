/*
 * Containment fixture: start() arms a periodic SIGEV_THREAD timer whose
 * callback is in the package (every 20 ms) and stop() never deletes it.
 * BUILD makes builds differ.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <plughost/sdk.h>

#ifndef BUILD
#define BUILD 1
#endif

static atomic_int ticks;
static timer_t timer;

static void tick(union sigval v)
{
    (void)v;
    atomic_fetch_add(&ticks, 1);
}

static int start(ph_ctx *ctx)
{
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = tick;
    struct itimerspec every = {.it_interval = {0, 20000000}, .it_value = {0, 20000000}};
    if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0 || timer_settime(timer, 0, &every, NULL))
        return ph_error(ctx, "no_timer", "cannot arm a timer");
    return PH_OK;
}

static int64_t build(ph_ctx *ctx)
{
    (void)ctx;
    return BUILD;
}

static const ph_method timerleaver_methods[] = {
    PH_METHOD0(build, PH_I64),
};

PH_PACKAGE(.start = start, .actors = PH_ACTORS(PH_ACTOR("timerleaver", timerleaver_methods)));
