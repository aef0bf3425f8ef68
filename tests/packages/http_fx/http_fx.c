/* HTTP gateway fixture: see package.ini. */
#include <string.h>
#include <time.h>

#include <plughost/sdk.h>

static int64_t add(ph_ctx *ctx, int64_t a, int64_t b)
{
    (void)ctx;
    return a + b;
}

static ph_json *echo(ph_ctx *ctx, const ph_json *value)
{
    return ph_json_copy(ctx, value);
}

static char *greet(ph_ctx *ctx, const char *name)
{
    size_t n = strlen(name);
    char *out = ph_alloc(ctx, n + 7);
    if (out) {
        memcpy(out, "hello ", 6);
        memcpy(out + 6, name, n + 1);
    }
    return out;
}

static int64_t fail(ph_ctx *ctx)
{
    return ph_error(ctx, "fixture_broke", "the fixture failed on purpose");
}

static char *secret(ph_ctx *ctx)
{
    return ph_strdup(ctx, "s3cret");
}

/* Holds the calling thread: in-flight requests for the shutdown and slow tests. */
static int64_t nap(ph_ctx *ctx, int64_t ms)
{
    (void)ctx;
    if (ms < 0 || ms > 10000)
        return ph_error(ctx, "bad_ms", "ms must be within 0..10000");
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return ms;
}

/* Which build serves: test_http compiles a second one with -DHTTP_FX_BUILD=2 to hot-reload. */
#ifndef HTTP_FX_BUILD
#define HTTP_FX_BUILD 1
#endif
static int64_t build(ph_ctx *ctx)
{
    (void)ctx;
    return HTTP_FX_BUILD;
}

static const ph_method fx_methods[] = {
    PH_METHOD(add, PH_I64, PH_ARG("a", PH_I64), PH_ARG("b", PH_I64)),
    PH_METHOD(echo, PH_JSON, PH_ARG("value", PH_JSON)),
    PH_METHOD(greet, PH_STR, PH_ARG("name", PH_STR)),
    PH_METHOD0(fail, PH_I64),
    PH_METHOD0_EX("secret", secret, PH_STR, PH_ADMIN, "Needs the admin token"),
    PH_METHOD(nap, PH_I64, PH_ARG("ms", PH_I64)),
    PH_METHOD0(build, PH_I64),
};

static const ph_field item_fields[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED | PH_UNIQUE),
    PH_FIELD("qty", PH_INT, PH_DEFAULT("0")),
    PH_FIELD("done", PH_BOOL, PH_DEFAULT("false")),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("fx", fx_methods)),
           .models = PH_MODELS(PH_MODEL("item", item_fields)));
