/* Cannot run beside core_good >= 1.0. */
#include "../core_marker.h"

PH_PACKAGE(.prepare = core_mark_prepare);
