/* Hostile client fixture: see package.ini. */
#include <plughost/sdk.h>

/* Forwards to an admin method on behalf of whoever called: it must not lend them its rights. */
static ph_json *relay(ph_ctx *ctx, const char *name)
{
    ph_json *args = ph_json_object(ctx), *out = NULL;
    if (!args || ph_json_set(ctx, args, "name", ph_json_new_str(ctx, name)) != 0) {
        ph_json_free(ctx, args);
        return NULL;
    }
    int rc = ph_call(ctx, "pkgmgr.packages.disable", args, &out);
    ph_json_free(ctx, args);
    return rc == 0 ? out : NULL; /* the router's error reaches the caller */
}

/* Logs its argument as given: a newline in it must not start a log line of its own. */
static int64_t say(ph_ctx *ctx, const char *text)
{
    ph_log(ctx, PH_LOG_INFO, "said: %s", text);
    return 1;
}

static const ph_method fx_methods[] = {
    PH_METHOD(relay, PH_JSON, PH_ARG("name", PH_STR)),
    PH_METHOD(say, PH_I64, PH_ARG("text", PH_STR)),
};

static const ph_field reading_fields[] = {
    PH_FIELD("f", PH_FLOAT, 0),
    PH_FIELD("who", PH_TEXT, PH_INDEXED),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("fx", fx_methods)),
           .models = PH_MODELS(PH_MODEL("reading", reading_fields)));
