/*
 * Compiled (never linked) by tests/test_sdk_header.c: a package that uses
 * every declaration macro and inline helper of <plughost/sdk.h>, so the
 * macros are checked under -std=c99 -pedantic -Werror and as C++.
 */
#include <plughost/sdk.h>

typedef struct st {
    int64_t n;
} st;

static int64_t add(ph_ctx *ctx, int64_t a, int64_t b)
{
    (void)ctx;
    return a + b;
}
static int64_t count(ph_ctx *ctx)
{
    st *s = (st *)ph_instance_data(ctx);
    return s->n;
}
static char *hi(ph_ctx *ctx, const char *name)
{
    ph_log(ctx, PH_LOG_INFO, "hi %s (%s)", name, ph_instance_name(ctx));
    return ph_strdup(ctx, name);
}
static ph_json *js(ph_ctx *ctx, const ph_json *v)
{
    ph_json *o = ph_json_object(ctx), *out = NULL;
    ph_json_set(ctx, o, "v", ph_json_copy(ctx, v));
    if (ph_call(ctx, "other.a.b", o, &out) != 0) {
        ph_error_reset(ctx);
        return o;
    }
    ph_json_free(ctx, o);
    return out;
}
static int prepare(ph_ctx *ctx)
{
    if (!ph_host_has(ctx, manage))
        return PH_DECLINE;
    if (!ph_param(ctx, "x"))
        return ph_error(ctx, "no_x", "parameter %s missing", "x");
    return ph_db_query(ctx, "SELECT 1", NULL, NULL) == 0 ? PH_OK : PH_FAIL;
}
static void stop(ph_ctx *ctx)
{
    (void)ctx;
}
static int validate(ph_ctx *ctx, const char *op, const ph_json *rec)
{
    (void)ctx;
    (void)op;
    (void)rec;
    return 0;
}

static const ph_method m[] = {
    PH_METHOD(add, PH_I64, PH_ARG("a", PH_I64), PH_ARG("b", PH_I64)),
    PH_METHOD0(count, PH_I64),
    PH_METHOD_EX("hello", hi, PH_STR, PH_ADMIN, "says hi", PH_ARG("name", PH_STR)),
    PH_METHOD0_EX("count2", count, PH_I64, 0, "doc"),
    PH_METHOD(js, PH_JSON, PH_ARG("v", PH_JSON)),
};
static const ph_field f[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED),
    PH_FIELD("n", PH_INT, PH_DEFAULT("0")),
    PH_FIELD_REF("owner", "user", PH_INDEXED),
};
static const ph_field uf[] = {PH_FIELD("name", PH_TEXT, PH_REQUIRED | PH_UNIQUE)};

PH_PACKAGE(.instance_size = sizeof(st), .prepare = prepare, .stop = stop,
           .actors = PH_ACTORS(PH_ACTOR("math", m)),
           .models = PH_MODELS(PH_MODEL("note", f), PH_MODEL_EX("user", uf, 0, validate, NULL)));
