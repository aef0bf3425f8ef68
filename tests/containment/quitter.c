/* Containment fixture: calls exit() in prepare. */
#include <stdlib.h>

#include <plughost/sdk.h>

static int prepare(ph_ctx *ctx)
{
    (void)ctx;
    exit(3);
}

PH_PACKAGE(.prepare = prepare);
