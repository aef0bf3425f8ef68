/*
 * Containment fixture: start() creates a pthread key whose destructor is in
 * the package and never deletes it; touch() gives the calling thread (an
 * HTTP worker) a value, so the destructor runs when that thread ends, at
 * the host's shutdown. BUILD makes builds differ.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

#include <plughost/sdk.h>

#ifndef BUILD
#define BUILD 1
#endif

static pthread_key_t key;

static void drop(void *value)
{
    free(value);
}

static int start(ph_ctx *ctx)
{
    if (pthread_key_create(&key, drop) != 0)
        return ph_error(ctx, "no_key", "cannot create a key");
    return PH_OK;
}

static int64_t touch(ph_ctx *ctx)
{
    (void)ctx;
    if (!pthread_getspecific(key))
        pthread_setspecific(key, malloc(16));
    return BUILD;
}

static const ph_method keyleaver_methods[] = {
    PH_METHOD0(touch, PH_I64),
};

PH_PACKAGE(.start = start, .actors = PH_ACTORS(PH_ACTOR("keyleaver", keyleaver_methods)));
