/* Contract fixture: calls an instance of a package it names in [optional] (host.ini sets the
 * range). */
#include <plughost/sdk.h>

static int64_t reach(ph_ctx *ctx)
{
    ph_json *out = NULL;
    int rc = ph_call(ctx, "statuses.shelf.missing", NULL, &out);
    ph_json_free(ctx, out);
    return rc; /* the error of the call passes on to our caller */
}

static const ph_method opt_methods[] = {
    PH_METHOD0(reach, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("opt", opt_methods)));
