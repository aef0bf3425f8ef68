/* prepare fails: start and stop must never run. */
#include "../core_marker.h"

static int prepare(ph_ctx *ctx)
{
    core_mark(ctx, "prepare");
    return ph_error(ctx, "no_widget", "cannot open the widget");
}

PH_PACKAGE(.prepare = prepare, .start = core_mark_start, .stop = core_mark_stop);
