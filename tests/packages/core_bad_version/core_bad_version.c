/* Overrides the version the build passes in, as a stale .so would have. */
#undef PH_PACKAGE_VERSION
#define PH_PACKAGE_VERSION "2.0.0"
#include "../core_marker.h"

PH_PACKAGE(.prepare = core_mark_prepare, .start = core_mark_start, .stop = core_mark_stop);
