/* A package without models (issue 8, failure 6): built at 2.0.0 and 1.2.3. */
#include <plughost/sdk.h>

static char *version(ph_ctx *ctx)
{
    return ph_strdup(ctx, PH_PACKAGE_VERSION);
}

static const ph_method methods[] = {
    PH_METHOD0(version, PH_STR),
};
PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("about", methods)));
