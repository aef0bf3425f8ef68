/*
 * counter: in-memory state that survives hot reloads.
 *
 * The count lives in per-instance memory (ph_instance_data). When the host
 * swaps in a new build, it calls `save` on the old version after its `stop`
 * and `restore` on the new one before its `start`, so no increment is lost.
 * The state carries a version number: a build that changes the layout
 * bumps it and declines (starts cold) or converts older versions.
 */
#include <string.h>

#include <plughost/sdk.h>

#define STATE_VERSION 1

typedef struct counter_state {
    int64_t count;
} counter_state;

static int64_t increment(ph_ctx *ctx, int64_t by)
{
    counter_state *st = ph_instance_data(ctx);
    /* Calls of one instance may run on several threads at once. */
    return __atomic_add_fetch(&st->count, by, __ATOMIC_SEQ_CST);
}

static int64_t get(ph_ctx *ctx)
{
    counter_state *st = ph_instance_data(ctx);
    return __atomic_load_n(&st->count, __ATOMIC_SEQ_CST);
}

static int save(ph_ctx *ctx, uint32_t *version, void **out, size_t *len)
{
    counter_state *st = ph_instance_data(ctx);
    counter_state *copy = ph_alloc(ctx, sizeof *copy);
    if (!copy)
        return ph_error(ctx, "no_memory", "cannot save the count");
    memcpy(copy, st, sizeof *copy);
    *version = STATE_VERSION;
    *out = copy;
    *len = sizeof *copy;
    return PH_OK;
}

static int restore(ph_ctx *ctx, uint32_t version, const void *data, size_t len)
{
    if (version != STATE_VERSION || len != sizeof(counter_state))
        return PH_DECLINE; /* unknown layout: start from zero */
    memcpy(ph_instance_data(ctx), data, len);
    ph_log(ctx, PH_LOG_INFO, "restored count %lld",
           (long long)((const counter_state *)data)->count);
    return PH_OK;
}

static const ph_method counter_methods[] = {
    PH_METHOD(increment, PH_I64, PH_ARG("by", PH_I64)),
    PH_METHOD0(get, PH_I64),
};

PH_PACKAGE(.instance_size = sizeof(counter_state), .save = save, .restore = restore,
           .actors = PH_ACTORS(PH_ACTOR("counter", counter_methods)));
