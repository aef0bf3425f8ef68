/*
 * Containment fixture: methods that block (issue "Package faults in
 * process", item 4). `hold` waits until the file named by the parameter
 * `release` exists, or `seconds` pass; `hold_write` then also writes a
 * record through its own CRUD actor. BUILD_TAG tells builds apart.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <plughost/sdk.h>

#ifndef BUILD_TAG
#define BUILD_TAG 1
#endif

static int64_t wait_release(ph_ctx *ctx, int64_t seconds)
{
    /* Copied: what the host lends is borrowed for the call, and a call past
     * its time limit may outlive the parameters (a reload replaces them). */
    char release[512];
    snprintf(release, sizeof release, "%s",
             ph_param(ctx, "release") ? ph_param(ctx, "release") : "");
    struct timespec step = {0, 10 * 1000 * 1000};
    for (int64_t i = 0; i < seconds * 100; i++) {
        if (release[0] && access(release, F_OK) == 0)
            return BUILD_TAG;
        nanosleep(&step, NULL);
    }
    return BUILD_TAG;
}

static int64_t hold(ph_ctx *ctx, int64_t seconds)
{
    return wait_release(ctx, seconds);
}

static int64_t hold_write(ph_ctx *ctx, int64_t seconds)
{
    wait_release(ctx, seconds);
    char address[128];
    snprintf(address, sizeof address, "%s.item.new", ph_instance_name(ctx));
    ph_json *args = ph_json_object(ctx), *out = NULL;
    ph_json_set(ctx, args, "name", ph_json_new_str(ctx, "written after the hold"));
    int rc = ph_call(ctx, address, args, &out);
    ph_json_free(ctx, args);
    ph_json_free(ctx, out);
    ph_log(ctx, PH_LOG_WARN, "hold_write: the write after the hold was %s",
           rc ? "refused" : "done");
    return BUILD_TAG;
}

static int64_t quick(ph_ctx *ctx)
{
    (void)ctx;
    return BUILD_TAG;
}

static const ph_method slow_methods[] = {
    PH_METHOD(hold, PH_I64, PH_ARG("seconds", PH_I64)),
    PH_METHOD(hold_write, PH_I64, PH_ARG("seconds", PH_I64)),
    PH_METHOD0(quick, PH_I64),
};
static const ph_field item_fields[] = {
    PH_FIELD("name", PH_TEXT, PH_REQUIRED),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("slow", slow_methods)),
           .models = PH_MODELS(PH_MODEL("item", item_fields)));
