/* Lifecycle fixture: a build that crashes the host in prepare (CRASH_IN_PREPARE). */
#include <plughost/sdk.h>

#ifndef TAG
#define TAG 1
#endif

static int prepare(ph_ctx *ctx)
{
    (void)ctx;
#ifdef CRASH_IN_PREPARE
    volatile int *p = 0;
    return *p; /* the bug */
#else
    return PH_OK;
#endif
}

static int64_t tag(ph_ctx *ctx)
{
    (void)ctx;
    return TAG;
}

static const ph_method crashy_methods[] = {
    PH_METHOD0(tag, PH_I64),
};

PH_PACKAGE(.prepare = prepare, .actors = PH_ACTORS(PH_ACTOR("crashy", crashy_methods)));
