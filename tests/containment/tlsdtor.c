/*
 * Containment fixture: remember() registers a thread-local destructor on
 * the calling thread, as a C++ thread_local with a destructor does
 * (__cxa_thread_atexit_impl): glibc then keeps the package mapped after
 * dlclose until that thread ends.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include <plughost/sdk.h>

extern void *__dso_handle;
extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso);

static void forget(void *obj)
{
    free(obj);
}

static int64_t remember(ph_ctx *ctx)
{
    (void)ctx;
    void *obj = malloc(16);
    if (!obj || __cxa_thread_atexit_impl(forget, obj, &__dso_handle) != 0) {
        free(obj);
        return 0;
    }
    return 1;
}

static const ph_method tlsdtor_methods[] = {
    PH_METHOD0(remember, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("tlsdtor", tlsdtor_methods)));
