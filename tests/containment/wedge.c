/*
 * Containment fixture: a stop() that never returns (it waits for the file
 * named by the parameter `release`, which the test never creates, polling
 * every 10 ms for at most 120 s so that nothing is left behind for long).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <plughost/sdk.h>

static void stop(ph_ctx *ctx)
{
    char release[512];
    snprintf(release, sizeof release, "%s",
             ph_param(ctx, "release") ? ph_param(ctx, "release") : "");
    struct timespec step = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 12000 && !(release[0] && access(release, F_OK) == 0); i++)
        nanosleep(&step, NULL);
}

static int64_t one(ph_ctx *ctx)
{
    (void)ctx;
    return 1;
}

static const ph_method wedge_methods[] = {
    PH_METHOD0(one, PH_I64),
};

PH_PACKAGE(.stop = stop, .actors = PH_ACTORS(PH_ACTOR("wedge", wedge_methods)));
