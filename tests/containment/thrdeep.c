/* Containment fixture: start() starts a thread that overflows its stack 300 ms later. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>

#include <plughost/sdk.h>

static int down(volatile int *n)
{
    volatile char pad[512];
    pad[0] = (char)*n;
    int more = *n + 1;
    return down(&more) + pad[0];
}

static void *run(void *arg)
{
    (void)arg;
    struct timespec t = {0, 300 * 1000 * 1000};
    nanosleep(&t, NULL);
    int n = 0;
    down(&n);
    return NULL;
}

static int start(ph_ctx *ctx)
{
    (void)ctx;
    pthread_t t;
    return pthread_create(&t, NULL, run, NULL) == 0 ? PH_OK : PH_FAIL;
}

PH_PACKAGE(.start = start);
