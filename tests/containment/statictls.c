/* Containment fixture: a thread-local counter built with -ftls-model=initial-exec (DF_STATIC_TLS).
 */
#include <plughost/sdk.h>

static __thread int64_t calls;

static int64_t count(ph_ctx *ctx)
{
    (void)ctx;
    return ++calls;
}

static const ph_method statictls_methods[] = {
    PH_METHOD0(count, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("statictls", statictls_methods)));
