/* Scanner fixture: a package linked against its own library through -rpath '$ORIGIN'. */
#include <plughost/sdk.h>

long pkghelper_value(void);

static int64_t value(ph_ctx *ctx)
{
    (void)ctx;
    return pkghelper_value();
}

static const ph_method methods[] = {
    PH_METHOD0(value, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("helper", methods)));
