/* Contract fixture: log lines with embedded newlines and escapes, from start() and a method. */
#include <plughost/sdk.h>

static int start(ph_ctx *ctx)
{
    ph_log(ctx, PH_LOG_INFO, "first\n2026-01-01T00:00:00.000+00:00 error [host] forged\x1b[31m");
    return PH_OK;
}

static int64_t say(ph_ctx *ctx, const char *text)
{
    ph_log(ctx, PH_LOG_WARN, "said: %s", text);
    return 1;
}

static const ph_method log_methods[] = {
    PH_METHOD(say, PH_I64, PH_ARG("text", PH_STR)),
};

PH_PACKAGE(.start = start, .actors = PH_ACTORS(PH_ACTOR("log", log_methods)));
