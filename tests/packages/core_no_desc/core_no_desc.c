/* Exports a descriptor under the wrong name, so the host finds none. */
#include "../core_marker.h"

PH_EXTERN_ PH_EXPORT const ph_package plughost_package_v0;
const ph_package plughost_package_v0 = {
    .abi = PH_ABI_VERSION,
    .size = (uint32_t)sizeof(ph_package),
    .name = PH_PACKAGE_NAME,
    .version = PH_PACKAGE_VERSION,
    .prepare = core_mark_prepare,
};
