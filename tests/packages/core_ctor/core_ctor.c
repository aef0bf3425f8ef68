/*
 * Fixture: an ELF constructor (which no package may have) that leaves
 * $PH_TEST_MARKERS/core_ctor.ctor.<pid of the process that loaded it>,
 * and a descriptor the host refuses (version CORE_CTOR_VERSION against
 * package.ini's 1.0.0): the constructor must never run in the host.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <plughost/sdk.h>

__attribute__((constructor)) static void at_load(void)
{
    const char *dir = getenv("PH_TEST_MARKERS");
    char path[4096];
    if (!dir)
        return;
    snprintf(path, sizeof path, "%s/core_ctor.ctor.%d", dir, (int)getpid());
    FILE *f = fopen(path, "w");
    if (f)
        fclose(f);
}

#undef PH_PACKAGE_VERSION
#define PH_PACKAGE_VERSION CORE_CTOR_VERSION
PH_PACKAGE(.n_actors = 0);
