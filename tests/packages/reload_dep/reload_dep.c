/* Dependent of reload_fx: calls into it while reload_fx is being swapped. */
#include <plughost/sdk.h>

static int64_t call_fx(ph_ctx *ctx, const char *address, int64_t ms)
{
    ph_json *args = ph_json_object(ctx), *out = NULL;
    ph_json_set(ctx, args, "ms", ph_json_new_i64(ctx, ms));
    int rc = ph_call(ctx, address, args, &out);
    ph_json_free(ctx, args);
    if (rc)
        return -1;
    int64_t v = ph_json_i64(ctx, out);
    ph_json_free(ctx, out);
    return v;
}

/* reload_fx.fx.slow(ms): the tag of the reload_fx build that served it. */
static int64_t relay(ph_ctx *ctx, int64_t ms)
{
    return call_fx(ctx, "reload_fx.fx.slow", ms);
}

/* reload_fx.fx.nested(ms): dep -> fx -> fx. */
static int64_t roundtrip(ph_ctx *ctx, int64_t ms)
{
    return call_fx(ctx, "reload_fx.fx.nested", ms);
}

static const ph_method dep_methods[] = {
    PH_METHOD(relay, PH_I64, PH_ARG("ms", PH_I64)),
    PH_METHOD(roundtrip, PH_I64, PH_ARG("ms", PH_I64)),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("dep", dep_methods)));
