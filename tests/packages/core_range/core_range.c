/* Requires core_good ^2.0 while the fixture is 1.0.0. */
#include "../core_marker.h"

PH_PACKAGE(.prepare = core_mark_prepare);
