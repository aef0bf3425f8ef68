/*
 * Fixture helper shared by the core_* test packages: records that a
 * lifecycle callback ran by creating the file $PH_TEST_MARKERS/<instance>.<what>.
 * Tests assert on these files to prove which package code ran and which did
 * not (a refused package must never reach prepare).
 */
#ifndef CORE_MARKER_H
#define CORE_MARKER_H

#include <stdio.h>
#include <stdlib.h>

#include <plughost/sdk.h>

static inline void core_mark(ph_ctx *ctx, const char *what)
{
    const char *dir = getenv("PH_TEST_MARKERS");
    char path[4096];
    FILE *f;
    if (!dir)
        return;
    snprintf(path, sizeof path, "%s/%s.%s", dir, ph_instance_name(ctx), what);
    f = fopen(path, "w");
    if (f)
        fclose(f);
}

/* Lifecycle callbacks that only leave their marker. */
static inline int core_mark_prepare(ph_ctx *ctx)
{
    core_mark(ctx, "prepare");
    return PH_OK;
}

static inline int core_mark_start(ph_ctx *ctx)
{
    core_mark(ctx, "start");
    return PH_OK;
}

static inline void core_mark_stop(ph_ctx *ctx)
{
    core_mark(ctx, "stop");
}

#endif
