/* Depends on core_fail_prepare: must be skipped, never prepared. */
#include "../core_marker.h"

PH_PACKAGE(.prepare = core_mark_prepare, .start = core_mark_start, .stop = core_mark_stop);
