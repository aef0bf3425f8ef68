/*
 * Scanner fixture: an ELF constructor, which a package must not have. It
 * appends the PID of the process that loads it to PID_FILE (when given),
 * then, by CTOR_DO: 1 crashes, 2 calls exit(3), 3 hangs, 0 returns.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <plughost/sdk.h>

#ifndef CTOR_DO
#define CTOR_DO 0
#endif

__attribute__((constructor)) static void at_load(void)
{
#ifdef PID_FILE
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
    int fd = open(PID_FILE, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        if (write(fd, line, (size_t)n) != n)
            abort();
        close(fd);
    }
#endif
    if (CTOR_DO == 1)
        *(volatile int *)(uintptr_t)8 = 1;
    if (CTOR_DO == 2)
        exit(3);
    while (CTOR_DO == 3)
        pause();
}

static int64_t one(ph_ctx *ctx)
{
    (void)ctx;
    return 1;
}

static const ph_method methods[] = {
    PH_METHOD0(one, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("ctor", methods)));
