/* Containment fixture: start() takes PH_SLOW_MS (default 1500) milliseconds. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <time.h>

#include <plughost/sdk.h>

static int start(ph_ctx *ctx)
{
    (void)ctx;
    const char *ms = getenv("PH_SLOW_MS");
    long n = ms ? atol(ms) : 1500;
    struct timespec t = {n / 1000, (n % 1000) * 1000000L};
    nanosleep(&t, NULL);
    return PH_OK;
}

static int64_t one(ph_ctx *ctx)
{
    (void)ctx;
    return 1;
}

static const ph_method slow_methods[] = {
    PH_METHOD0(one, PH_I64),
};

PH_PACKAGE(.start = start, .actors = PH_ACTORS(PH_ACTOR("slow", slow_methods)));
