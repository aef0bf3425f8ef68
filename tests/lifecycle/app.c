/* Lifecycle fixture: a dependent of api. */
#include <plughost/sdk.h>

static int64_t ping(ph_ctx *ctx)
{
    (void)ctx;
    return 1;
}

static const ph_method app_methods[] = {
    PH_METHOD0(ping, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("app", app_methods)));
