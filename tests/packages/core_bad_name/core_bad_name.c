/* Overrides the name the build passes in, as a stale or copied .so would have. */
#undef PH_PACKAGE_NAME
#define PH_PACKAGE_NAME "core_impostor"
#include "../core_marker.h"

PH_PACKAGE(.prepare = core_mark_prepare, .start = core_mark_start, .stop = core_mark_stop);
