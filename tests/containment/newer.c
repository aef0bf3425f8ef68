/*
 * Containment fixture: a descriptor as a newer SDK of the same ABI would
 * write it, one field appended (EXTRA: its value; 0 is "not used").
 */
#include <plughost/sdk.h>

#ifndef EXTRA
#define EXTRA 1
#endif

struct newer_package {
    ph_package base;
    const void *appended;
};

static int64_t one(ph_ctx *ctx)
{
    (void)ctx;
    return 1;
}

static const ph_method newer_methods[] = {
    PH_METHOD0(one, PH_I64),
};
static const ph_actor newer_actors[] = {PH_ACTOR("newer", newer_methods)};

PH_EXTERN_ PH_EXPORT const struct newer_package plughost_package_v1;
const struct newer_package plughost_package_v1 = {
    {.abi = PH_ABI_VERSION,
     .size = (uint32_t)sizeof(struct newer_package),
     .name = PH_PACKAGE_NAME,
     .version = PH_PACKAGE_VERSION,
     .actors = newer_actors,
     .n_actors = 1},
    (const void *)(uintptr_t)EXTRA,
};
