/*
 * Containment fixture: an ELF constructor that behaves in the scanner child
 * (its parent is the plughost host) and crashes anywhere else, i.e. in the
 * host's own dlopen. A package must not have constructors; the host blames
 * this crash on the package and build, and quarantines it.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <plughost/sdk.h>

#include "in_scanner.h"

__attribute__((constructor)) static void at_load(void)
{
    if (!in_scanner())
        *(volatile int *)(uintptr_t)8 = 1;
}

static int64_t one(ph_ctx *ctx)
{
    (void)ctx;
    return 1;
}

static const ph_method methods[] = {
    PH_METHOD0(one, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("ctorout", methods)));
