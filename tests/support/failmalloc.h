/*
 * Allocation-failure injection for tests/test_oom.c (SQLite's "malloc fails
 * on the Nth call" and curl's torture tests).
 *
 * tests/support/failmalloc.c replaces the allocator of the test executable
 * by symbol interposition: it defines malloc, calloc, realloc, reallocarray,
 * free, strdup, strndup, the aligned allocators and realpath, and forwards
 * each to the next definition (dlsym(RTLD_NEXT): glibc's, or the sanitizer
 * runtime's under ASan/TSan, so ASan still tracks every block and LSan still
 * finds leaks). A definition in the executable comes first in the global
 * lookup scope, so it receives the calls of the host code (phcore is linked
 * statically), of libc itself (asprintf, fopen, opendir, getline, dlopen's
 * bookkeeping: glibc calls malloc through its interposable symbol), and of
 * every shared library: jansson and SQLite use plain malloc/realloc/free by
 * default (the host installs no json_set_alloc_funcs nor
 * SQLITE_CONFIG_MALLOC), libffi, and the packages' own ph_alloc via the host.
 *
 * Only allocations made while armed are counted, on every thread. One
 * wrapper call is one injection point: a real allocator reached from inside
 * a wrapper (e.g. glibc's realpath calling malloc) is not counted again.
 */
#ifndef PH_FAILMALLOC_H
#define PH_FAILMALLOC_H

/**
 * Starts counting allocations from 0. The allocation numbered `n` (1-based)
 * fails (returns NULL with errno ENOMEM); with `persistent`, so does every
 * one after it. n = 0 fails nothing (a counting run).
 */
void fm_arm(long n, int persistent);
/** Stops counting and failing; returns how many allocations were counted while armed. */
long fm_disarm(void);
/** How many allocations were failed since the last fm_arm. */
long fm_failures(void);
/** True if the allocator of this executable is the interposed one (a self-check). */
int fm_active(void);

#endif
