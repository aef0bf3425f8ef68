/* Lifecycle fixture: an interface that later builds keep (TAG) or break (NO_MATH, ADD_STR). */
#include <plughost/sdk.h>

#ifndef TAG
#define TAG 1
#endif

static int64_t add(ph_ctx *ctx, int64_t a, int64_t b)
{
    (void)ctx;
    return a + b;
}

#ifdef ADD_STR
static int64_t add_text(ph_ctx *ctx, int64_t a, const char *b)
{
    (void)ctx;
    return a + (b && *b);
}
#endif

static int64_t tag(ph_ctx *ctx)
{
    (void)ctx;
    return TAG;
}

static const ph_method math_methods[] = {
#ifdef ADD_STR
    PH_METHOD_EX("add", add_text, PH_I64, 0, NULL, PH_ARG("a", PH_I64), PH_ARG("b", PH_STR)),
#else
    PH_METHOD(add, PH_I64, PH_ARG("a", PH_I64), PH_ARG("b", PH_I64)),
#endif
};
static const ph_method info_methods[] = {
    PH_METHOD0(tag, PH_I64),
};

#ifdef NO_MATH
PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("info", info_methods)));
#elif defined(NO_INFO)
PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("math", math_methods)));
#else
PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("math", math_methods), PH_ACTOR("info", info_methods)));
#endif
