/* Requires core_absent, which no package directory holds. */
#include "../core_marker.h"

PH_PACKAGE(.prepare = core_mark_prepare);
