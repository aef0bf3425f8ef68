/* Calls its dependency core_good through the router, and passes errors on. */
#include <string.h>

#include "../core_marker.h"

static int prepare(ph_ctx *ctx)
{
    core_mark(ctx, "prepare");
    return PH_OK;
}

static void stop(ph_ctx *ctx)
{
    core_mark(ctx, "stop");
    ph_log(ctx, PH_LOG_INFO, "stop called");
}

/* The string core_good.probe.ping returns. */
static char *relay(ph_ctx *ctx)
{
    ph_json *out = NULL;
    char *s;
    if (ph_call(ctx, "core_good.probe.ping", NULL, &out))
        return NULL;
    s = ph_strdup(ctx, ph_json_str(ctx, out));
    ph_json_free(ctx, out);
    return s;
}

static ph_json *fail_args(ph_ctx *ctx)
{
    ph_json *args = ph_json_object(ctx);
    ph_json_set(ctx, args, "code", ph_json_new_str(ctx, "callee_broke"));
    ph_json_set(ctx, args, "message", ph_json_new_str(ctx, "deep trouble"));
    return args;
}

/* The callee raises an error; this method just returns: the error passes on. */
static int64_t relay_error(ph_ctx *ctx)
{
    ph_json *args = fail_args(ctx), *out = NULL;
    int rc = ph_call(ctx, "core_good.probe.fail", args, &out);
    ph_json_free(ctx, args);
    return out == NULL && rc < 0 ? -1 : 1;
}

/* The callee raises an error; this method raises its own instead. */
static int64_t relay_replace(ph_ctx *ctx)
{
    ph_json *args = fail_args(ctx), *out = NULL;
    int rc = ph_call(ctx, "core_good.probe.fail", args, &out);
    ph_json_free(ctx, args);
    if (rc)
        return ph_error(ctx, "caller_gave_up", "core_good failed (code %d)", rc);
    return 0;
}

/* The callee raises an error; this method recovers. */
static char *relay_recover(ph_ctx *ctx)
{
    ph_json *args = fail_args(ctx), *out = NULL;
    int rc = ph_call(ctx, "core_good.probe.fail", args, &out);
    ph_json_free(ctx, args);
    if (rc)
        ph_error_reset(ctx);
    return ph_strdup(ctx, rc ? "recovered" : "no error?");
}

static const ph_method caller_methods[] = {
    PH_METHOD0(relay, PH_STR),
    PH_METHOD0(relay_error, PH_I64),
    PH_METHOD0(relay_replace, PH_I64),
    PH_METHOD0(relay_recover, PH_STR),
};

PH_PACKAGE(.prepare = prepare, .start = core_mark_start, .stop = stop,
           .actors = PH_ACTORS(PH_ACTOR("caller", caller_methods)));
