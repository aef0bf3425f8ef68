#include <plughost/sdk.h>

static int64_t now(ph_ctx *ctx)
{
    (void)ctx;
    volatile int64_t *p = 0;
    return *p; /* the bug */
}

static int64_t fine(ph_ctx *ctx)
{
    (void)ctx;
    return 1;
}

static const ph_method boom_methods[] = {
    PH_METHOD0(now, PH_I64),
    PH_METHOD0(fine, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("boom", boom_methods)));
