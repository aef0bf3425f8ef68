/*
 * Hot-reload fixture. test_reload.c compiles this file again with other
 * macros and drops the result over the staged .so:
 *   RELOAD_TAG=n   what fx.tag returns (which build serves)
 *   FAIL_PREPARE   prepare raises an error
 *   FAIL_START     start raises an error
 *   WRONG_ABI      the descriptor claims ABI 99
 *   WITH_MODEL     declares a model "item" (CRUD, stored in the instance database)
 * The count (fx.incr/fx.count) crosses reloads through save/restore.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <plughost/sdk.h>

#ifndef RELOAD_TAG
#define RELOAD_TAG 1
#endif

typedef struct fx_state {
    int64_t count;
} fx_state;

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int64_t tag(ph_ctx *ctx)
{
    (void)ctx;
    return RELOAD_TAG;
}

static int64_t incr(ph_ctx *ctx)
{
    fx_state *st = ph_instance_data(ctx);
    return __atomic_add_fetch(&st->count, 1, __ATOMIC_SEQ_CST);
}

static int64_t count(ph_ctx *ctx)
{
    fx_state *st = ph_instance_data(ctx);
    return __atomic_load_n(&st->count, __ATOMIC_SEQ_CST);
}

/* Holds the call for `ms` (a call in flight during a reload); returns the tag. */
static int64_t slow(ph_ctx *ctx, int64_t ms)
{
    sleep_ms(ms);
    return tag(ctx);
}

/*
 * Sleeps `ms`, then calls back into its own instance: with a reload waiting
 * for this call to drain, the inner call meets a closed gate.
 */
static int64_t nested(ph_ctx *ctx, int64_t ms)
{
    char address[160];
    ph_json *out = NULL;
    sleep_ms(ms);
    snprintf(address, sizeof address, "%s.fx.tag", ph_instance_name(ctx));
    if (ph_call(ctx, address, NULL, &out))
        return -1;
    int64_t v = ph_json_i64(ctx, out);
    ph_json_free(ctx, out);
    return v;
}

static int prepare(ph_ctx *ctx)
{
#ifdef FAIL_PREPARE
    return ph_error(ctx, "prepare_broken", "prepare of build %d refuses", RELOAD_TAG);
#else
    (void)ctx;
    return PH_OK;
#endif
}

static int start(ph_ctx *ctx)
{
#ifdef FAIL_START
    return ph_error(ctx, "start_broken", "start of build %d refuses", RELOAD_TAG);
#else
    (void)ctx;
    return PH_OK;
#endif
}

static int save(ph_ctx *ctx, uint32_t *version, void **out, size_t *len)
{
#ifdef FAIL_SAVE
    (void)version;
    (void)out;
    (void)len;
    return ph_error(ctx, "io", "save of build %d refuses", RELOAD_TAG);
#endif
    fx_state *copy = ph_alloc(ctx, sizeof *copy);
    if (!copy)
        return ph_error(ctx, "no_memory", "cannot save");
    memcpy(copy, ph_instance_data(ctx), sizeof *copy);
    *version = 1;
    *out = copy;
    *len = sizeof *copy;
    return PH_OK;
}

static int restore(ph_ctx *ctx, uint32_t version, const void *data, size_t len)
{
#ifdef FAIL_RESTORE
    (void)version;
    (void)data;
    (void)len;
    return ph_error(ctx, "io", "restore of build %d refuses", RELOAD_TAG);
#endif
    if (version != 1 || len != sizeof(fx_state))
        return PH_DECLINE;
    memcpy(ph_instance_data(ctx), data, len);
    return PH_OK;
}

static const ph_method fx_methods[] = {
    PH_METHOD0(tag, PH_I64),
    PH_METHOD0(incr, PH_I64),
    PH_METHOD0(count, PH_I64),
#ifndef NO_SLOW
    PH_METHOD(slow, PH_I64, PH_ARG("ms", PH_I64)),
#endif
    PH_METHOD(nested, PH_I64, PH_ARG("ms", PH_I64)),
};

#ifdef WRONG_ABI
#pragma GCC diagnostic ignored "-Woverride-init"
#define FX_ABI .abi = 99,
#else
#define FX_ABI
#endif

#ifdef WITH_MODEL
static const ph_field item_fields[] = {
    PH_FIELD("name", PH_TEXT, PH_REQUIRED),
};
#define FX_MODELS .models = PH_MODELS(PH_MODEL("item", item_fields)),
#else
#define FX_MODELS
#endif

PH_PACKAGE(FX_ABI FX_MODELS.instance_size = sizeof(fx_state), .prepare = prepare, .start = start,
           .save = save, .restore = restore, .actors = PH_ACTORS(PH_ACTOR("fx", fx_methods)));
