/* Containment fixture: a method forks a helper child that ends with exit(0). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <plughost/sdk.h>

static int64_t spawn(ph_ctx *ctx)
{
    (void)ctx;
    pid_t p = fork();
    if (p == 0)
        exit(0);
    int st = 0;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const ph_method x_methods[] = {
    PH_METHOD0(spawn, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("x", x_methods)));
