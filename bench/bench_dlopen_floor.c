/*
 * The floor for start-up: what loading N package files costs a program that
 * does nothing else, dlopen(RTLD_NOW | RTLD_LOCAL) and dlsym of the
 * descriptor for each .so named on the command line (or one per line on
 * stdin with "-"). Prints the elapsed milliseconds; exits non-zero if one
 * does not load.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    struct timespec t0, t1;
    size_t n = 0, cap = 0;
    char **paths = NULL, line[4096];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-")) {
            while (fgets(line, sizeof line, stdin)) {
                line[strcspn(line, "\n")] = 0;
                if (n == cap &&
                    !(paths = realloc(paths, (cap = cap ? cap * 2 : 64) * sizeof *paths)))
                    return 1;
                paths[n++] = strdup(line);
            }
            continue;
        }
        if (n == cap && !(paths = realloc(paths, (cap = cap ? cap * 2 : 64) * sizeof *paths)))
            return 1;
        paths[n++] = strdup(argv[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < n; i++) {
        void *h = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
        if (!h || !dlsym(h, "plughost_package_v1")) {
            fprintf(stderr, "bench_dlopen_floor: %s: %s\n", paths[i], dlerror());
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%.1f\n",
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    return 0;
}
