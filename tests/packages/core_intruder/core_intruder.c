/* Calls core_good, which it does not declare in [requires]: forbidden. */
#include "../core_marker.h"

static char *poke(ph_ctx *ctx)
{
    ph_json *out = NULL;
    if (ph_call(ctx, "core_good.probe.ping", NULL, &out))
        return NULL; /* the router's error passes on to our caller */
    ph_json_free(ctx, out);
    return ph_strdup(ctx, "the call went through");
}

static const ph_method intruder_methods[] = {
    PH_METHOD0(poke, PH_STR),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("intruder", intruder_methods)));
