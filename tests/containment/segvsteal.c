/* Containment fixture: `take` resets the fatal signals to their defaults; `boom` crashes. */
#include <signal.h>

#include <plughost/sdk.h>

static int64_t take(ph_ctx *ctx)
{
    (void)ctx;
    signal(SIGSEGV, SIG_DFL);
    signal(SIGABRT, SIG_DFL);
    return 1;
}

static int64_t boom(ph_ctx *ctx)
{
    (void)ctx;
    return *(volatile int64_t *)16;
}

static const ph_method x_methods[] = {
    PH_METHOD0(take, PH_I64),
    PH_METHOD0(boom, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("x", x_methods)));
