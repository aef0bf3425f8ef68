/*
 * The library of every package of bench_resolve.sh: one method, compiled
 * once per name and version (-DPH_PACKAGE_NAME, -DPH_PACKAGE_VERSION), so
 * `plughost check` opens and validates a real descriptor for each.
 */
#include <plughost/sdk.h>

static int64_t one(ph_ctx *ctx)
{
    (void)ctx;
    return 1;
}

static const ph_method methods[] = {
    PH_METHOD0(one, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("bench", methods)));
