/* One link of the cycle core_cycle_a -> core_cycle_b -> core_cycle_c -> core_cycle_a. */
#include "../core_marker.h"

PH_PACKAGE(.prepare = core_mark_prepare);
