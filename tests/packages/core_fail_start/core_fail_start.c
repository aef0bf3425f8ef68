/* start fails without saying why; stop must not run for it. */
#include "../core_marker.h"

static int start(ph_ctx *ctx)
{
    core_mark(ctx, "start");
    return PH_FAIL;
}

PH_PACKAGE(.prepare = core_mark_prepare, .start = start, .stop = core_mark_stop);
