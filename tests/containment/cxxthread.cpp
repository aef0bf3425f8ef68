/*
 * Containment fixture, C++: start() starts a std::thread that stop() tells
 * to end but does not join (it is detached). Its start routine is
 * libstdc++'s, not the package's: the host counts it by the code that
 * created it. BUILD makes builds differ.
 */
#include <atomic>
#include <chrono>
#include <thread>

#include <plughost/sdk.h>

#ifndef BUILD
#define BUILD 1
#endif

static std::atomic<int> stopping{0}, ticks{0};

static int start(ph_ctx *)
{
    stopping = 0;
    std::thread([] {
        for (;;) { /* told to stop, it keeps ticking: code left after stop() */
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            ticks++;
        }
    }).detach();
    return PH_OK;
}

static void stop(ph_ctx *)
{
    stopping = 1;
}

static int64_t build(ph_ctx *)
{
    return BUILD;
}

static const ph_method cxx_methods[] = {
    PH_METHOD0(build, PH_I64),
};

PH_PACKAGE(.start = start, .stop = stop,
           .actors = PH_ACTORS(PH_ACTOR("cxxthread", cxx_methods)));
