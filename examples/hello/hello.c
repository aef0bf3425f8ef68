/* hello: lifecycle callbacks, a parameter, logging, a string result. */
#include <stdio.h>

#include <plughost/sdk.h>

typedef struct hello_state {
    int64_t greeted; /* per-instance memory: no globals needed */
} hello_state;

static int prepare(ph_ctx *ctx)
{
    ph_log(ctx, PH_LOG_INFO, "prepared with greeting '%s'", ph_param(ctx, "greeting"));
    return PH_OK;
}

static int start(ph_ctx *ctx)
{
    ph_log(ctx, PH_LOG_INFO, "started");
    return PH_OK;
}

static void stop(ph_ctx *ctx)
{
    hello_state *st = ph_instance_data(ctx);
    ph_log(ctx, PH_LOG_INFO, "stopped after %lld greeting(s)", (long long)st->greeted);
}

/* Returns "<greeting>, <name>!"; the result is allocated with ph_alloc. */
static char *greet(ph_ctx *ctx, const char *name)
{
    hello_state *st = ph_instance_data(ctx);
    const char *greeting = ph_param(ctx, "greeting");
    int n = snprintf(NULL, 0, "%s, %s!", greeting, name);
    char *out = ph_alloc(ctx, (size_t)n + 1);
    if (!out)
        return NULL;
    snprintf(out, (size_t)n + 1, "%s, %s!", greeting, name);
    st->greeted++;
    return out;
}

static int64_t count(ph_ctx *ctx)
{
    hello_state *st = ph_instance_data(ctx);
    return st->greeted;
}

static const ph_method hello_methods[] = {
    PH_METHOD(greet, PH_STR, PH_ARG("name", PH_STR)),
    PH_METHOD0(count, PH_I64),
};

PH_PACKAGE(.instance_size = sizeof(hello_state), .prepare = prepare, .start = start, .stop = stop,
           .actors = PH_ACTORS(PH_ACTOR("hello", hello_methods)));
