/* Contract fixture: errors whose HTTP status the package chooses, or the host's words imply. */
#include <plughost/sdk.h>

static int64_t taken(ph_ctx *ctx)
{
    return ph_error_status(ctx, 409, "name_taken", "that name is taken; pick another");
}

static int64_t missing(ph_ctx *ctx)
{
    return ph_error(ctx, "not_found", "no such shelf");
}

static int64_t broken(ph_ctx *ctx)
{
    return ph_error(ctx, "disk_on_fire", "the package's own fault");
}

static int64_t odd(ph_ctx *ctx)
{
    return ph_error_status(ctx, 200, "odd", "a success status is no error status");
}

static const ph_method shelf_methods[] = {
    PH_METHOD0(taken, PH_I64),
    PH_METHOD0(missing, PH_I64),
    PH_METHOD0(broken, PH_I64),
    PH_METHOD0(odd, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("shelf", shelf_methods)));
