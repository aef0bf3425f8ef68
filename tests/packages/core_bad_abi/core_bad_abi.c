/*
 * A descriptor written by hand (not with PH_PACKAGE) that claims ABI 2.
 * The host must refuse it without calling prepare (which would leave a marker).
 */
#include "../core_marker.h"

PH_EXTERN_ PH_EXPORT const ph_package plughost_package_v1;
const ph_package plughost_package_v1 = {
    .abi = 2,
    .size = (uint32_t)sizeof(ph_package),
    .name = PH_PACKAGE_NAME,
    .version = PH_PACKAGE_VERSION,
    .prepare = core_mark_prepare,
    .start = core_mark_start,
    .stop = core_mark_stop,
};
