/* The good fixture: every lifecycle step leaves a marker and a log line. */
#include "../core_marker.h"

typedef struct state {
    int64_t calls;
} state;

static int prepare(ph_ctx *ctx)
{
    core_mark(ctx, "prepare");
    ph_log(ctx, PH_LOG_INFO, "prepare called");
    return PH_OK;
}

static int start(ph_ctx *ctx)
{
    core_mark(ctx, "start");
    ph_log(ctx, PH_LOG_INFO, "start called");
    return PH_OK;
}

static void stop(ph_ctx *ctx)
{
    core_mark(ctx, "stop");
    ph_log(ctx, PH_LOG_INFO, "stop called");
}

static char *ping(ph_ctx *ctx)
{
    ((state *)ph_instance_data(ctx))->calls++;
    return ph_strdup(ctx, "pong");
}

static int64_t calls(ph_ctx *ctx)
{
    return ((state *)ph_instance_data(ctx))->calls;
}

/* The value of a parameter, or null if it is not declared. */
static char *param(ph_ctx *ctx, const char *name)
{
    const char *v = ph_param(ctx, name);
    return v ? ph_strdup(ctx, v) : NULL;
}

/* Raises an error with the given code and message. */
static char *fail(ph_ctx *ctx, const char *code, const char *message)
{
    ph_error(ctx, code, "%s", message);
    return ph_strdup(ctx, "this result must be discarded");
}

/* Calls a method of its own instance (always allowed). */
static char *self_ping(ph_ctx *ctx)
{
    ph_json *out = NULL;
    char *s;
    char address[256];
    snprintf(address, sizeof address, "%s.probe.ping", ph_instance_name(ctx));
    if (ph_call(ctx, address, NULL, &out))
        return NULL;
    s = ph_strdup(ctx, ph_json_str(ctx, out));
    ph_json_free(ctx, out);
    return s;
}

static const ph_method probe_methods[] = {
    PH_METHOD0(ping, PH_STR),
    PH_METHOD0(calls, PH_I64),
    PH_METHOD(param, PH_STR, PH_ARG("name", PH_STR)),
    PH_METHOD(fail, PH_STR, PH_ARG("code", PH_STR), PH_ARG("message", PH_STR)),
    PH_METHOD0(self_ping, PH_STR),
};

PH_PACKAGE(.instance_size = sizeof(state), .prepare = prepare, .start = start, .stop = stop,
           .actors = PH_ACTORS(PH_ACTOR("probe", probe_methods)));
