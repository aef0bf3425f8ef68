/* Lifecycle fixture: a method whose result shows the parameters the build runs with. */
#include <stdio.h>
#include <string.h>

#include <plughost/sdk.h>

static char *say(ph_ctx *ctx)
{
    const char *g = ph_param(ctx, "greeting"), *s = ph_param(ctx, "suffix");
    size_t n = strlen(g ? g : "") + strlen(s ? s : "") + 1;
    char *out = ph_alloc(ctx, n);
    if (out)
        snprintf(out, n, "%s%s", g ? g : "", s ? s : "");
    return out;
}

static const ph_method shout_methods[] = {
    PH_METHOD0(say, PH_STR),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("shout", shout_methods)));
