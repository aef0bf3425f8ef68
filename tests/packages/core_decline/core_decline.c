/* start declines (for example: the feature is switched off on this machine). */
#include "../core_marker.h"

static int start(ph_ctx *ctx)
{
    core_mark(ctx, "start");
    return PH_DECLINE;
}

PH_PACKAGE(.prepare = core_mark_prepare, .start = start, .stop = core_mark_stop);
