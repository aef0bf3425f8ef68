/*
 * Code that runs at dlopen (a constructor), which packages must not have:
 * SCAN_CRASH crashes, otherwise it hangs. `plughost check` must survive it
 * (the scanner child) and blame this package and build.
 */
#include <signal.h>
#include <unistd.h>

#include <plughost/sdk.h>

__attribute__((constructor)) static void misbehave(void)
{
#ifdef SCAN_CRASH
    raise(SIGSEGV);
#else
    sleep(30);
#endif
}

PH_PACKAGE(.stop = NULL);
