/* Containment fixture: unbounded recursion (a stack overflow) in a method. */
#include <plughost/sdk.h>

static int64_t down(volatile int64_t n)
{
    volatile char pad[256];
    pad[0] = (char)n;
    return down(n + 1) + pad[0];
}

static int64_t recurse(ph_ctx *ctx)
{
    (void)ctx;
    return down(0);
}

static const ph_method deep_methods[] = {
    PH_METHOD0(recurse, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("deep", deep_methods)));
