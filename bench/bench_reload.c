/*
 * Hot reload costs, on examples/counter:
 *
 *  1. Gate overhead per routed call: a typed routed call (counter.counter.get
 *     through ph_router_call_values, which enters and leaves the instance's
 *     gate) against the same call with the gate's cost taken out, where the
 *     gate's cost is an enter+leave pair on the same gate measured in the
 *     same rounds; and, as a cross-check, the routed call with a second
 *     enter+leave pair around it against the plain routed call. Subjects run
 *     interleaved; ratios are medians of per-round ratios.
 *  2. Gate-closed time per swap (from closing the gate to reopening it, as
 *     the reload records it), p50/p99 over N swaps, idle and with a thread
 *     calling the package throughout.
 *  3. Write to serving: a new build is renamed over counter.so (what lld
 *     and `mv` do) and the watcher (default settle) swaps it in; the time
 *     from the completed rename until a call is served by the new build.
 *     Also ph_reload_package alone (no settle): stage + validate + swap.
 *
 * New builds are the staged counter.so with i bytes appended (a different
 * file and hash, same code), so no compiler is needed.
 *
 * usage: bench_reload PACKAGES_DIR [rounds]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "host.h"
#include "log.h"
#include "reload.h"
#include "report.h"

#define ITERS 200000
#define SWAPS 200
#define WATCHED 12

static volatile int64_t sink;
static ph_host *host;
static ph_instance *inst;
static char pk[4096], lib[4200], tmpdir[64];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

/* ---- 1. gate overhead ---- */

static void run_routed(void)
{
    ph_value ret;
    for (int i = 0; i < ITERS; i++) {
        if (ph_router_call_values(host->router, "counter.counter.get", NULL, &ret))
            abort();
        sink = ret.i;
    }
}

static void run_gate_pair(void)
{
    for (int i = 0; i < ITERS; i++) {
        if (ph_gate_enter(&inst->gate, 5000))
            abort();
        ph_gate_leave(&inst->gate);
        sink = i;
    }
}

static void run_routed_extra_gate(void)
{
    ph_value ret;
    for (int i = 0; i < ITERS; i++) {
        if (ph_gate_enter(&inst->gate, 5000))
            abort();
        if (ph_router_call_values(host->router, "counter.counter.get", NULL, &ret))
            abort();
        ph_gate_leave(&inst->gate);
        sink = ret.i;
    }
}

static void bench_gate(int rounds)
{
    double t[3][64], r1[64], r2[64];
    void (*fn[3])(void) = {run_routed, run_gate_pair, run_routed_extra_gate};
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < 3; k++) {
            int s = (k + r) % 3; /* rotate the order each round */
            double t0 = now();
            fn[s]();
            t[s][r] = now() - t0;
        }
    for (int r = 0; r < rounds; r++) {
        r1[r] = t[0][r] / (t[0][r] - t[1][r]);
        r2[r] = t[2][r] / t[0][r];
    }
    double ns[3];
    for (int k = 0; k < 3; k++)
        ns[k] = pct(t[k], rounds, 0.5) / ITERS * 1e9;
    printf("gate overhead: %d rounds x %d calls of counter.counter.get (median per call)\n", rounds,
           ITERS);
    printf("  typed routed call (gate inside)     %8.1f ns\n", ns[0]);
    printf("  gate enter+leave alone              %8.1f ns\n", ns[1]);
    printf("  routed call + a second gate pair    %8.1f ns\n", ns[2]);
    printf("ratios (median of per-round ratios):\n");
    printf("  routed + extra gate / routed        %6.3fx  (cross-check, no target)\n",
           pct(r2, rounds, 0.5));
    ph_bench_figure("gate: routed / routed without gate", pct(r1, rounds, 0.5), "x", "<=", 1.1);
}

/* ---- builds ---- */

/* Writes <tmpdir>/v<i>.so: the staged counter.so plus i bytes of padding. */
static void make_variant(int i, char *out, size_t size)
{
    snprintf(out, size, "%s/v%d.so", tmpdir, i);
    char *cmd = NULL;
    if (asprintf(&cmd, "cp '%s/counter/.orig.so' '%s' && head -c %d /dev/zero >> '%s'", pk, out,
                 i + 1, out) < 0 ||
        system(cmd) != 0) {
        fprintf(stderr, "bench_reload: cannot make a build variant\n");
        exit(1);
    }
    free(cmd);
}

static unsigned reloads(void)
{
    ph_reload_info ri;
    ph_reload_info_get(inst, &ri);
    free(ri.error);
    return ri.reloads;
}

/* ---- 2. gate closed per swap ---- */

static atomic_int caller_stop;
static atomic_long caller_calls, caller_fail;

static void *caller(void *arg)
{
    (void)arg;
    ph_value v = {.i = 1}, ret;
    while (!atomic_load(&caller_stop)) {
        if (ph_router_call_values(host->router, "counter.counter.increment", &v, &ret))
            atomic_fetch_add(&caller_fail, 1);
        else
            atomic_fetch_add(&caller_calls, 1);
    }
    return NULL;
}

static void swaps(const char *label, int with_load, int *variant)
{
    double hold[SWAPS], total[SWAPS];
    pthread_t t;
    atomic_store(&caller_stop, 0);
    if (with_load)
        pthread_create(&t, NULL, caller, NULL);
    for (int i = 0; i < SWAPS; i++) {
        char v[4200];
        make_variant((*variant)++, v, sizeof v);
        if (rename(v, lib) != 0)
            abort();
        int swapped = 0;
        double t0 = now();
        if (ph_reload_package(host, "counter", &swapped) || swapped != 1) {
            fprintf(stderr, "bench_reload: reload failed: %s\n", ph_error_last());
            exit(1);
        }
        total[i] = (now() - t0) * 1e3;
        ph_reload_info ri;
        ph_reload_info_get(inst, &ri);
        free(ri.error);
        hold[i] = ri.last_hold_ms;
    }
    if (with_load) {
        atomic_store(&caller_stop, 1);
        pthread_join(t, NULL);
    }
    printf("  %-26s gate closed p50 %6.3f ms  p99 %6.3f ms  max %6.3f ms | "
           "ph_reload_package p50 %6.3f ms  p99 %6.3f ms\n",
           label, pct(hold, SWAPS, 0.5), pct(hold, SWAPS, 0.99), pct(hold, SWAPS, 1.0),
           pct(total, SWAPS, 0.5), pct(total, SWAPS, 0.99));
    /* the prototype in notes/hot-reload.md held the gate at most 3.95 ms */
    char name[96];
    snprintf(name, sizeof name, "reload: gate closed p99, %s", label);
    ph_bench_figure(name, pct(hold, SWAPS, 0.99), "ms", "<=", 5.0);
}

/* ---- 3. write to serving through the watcher ---- */

static void write_to_serving(int *variant)
{
    ph_reloader *w = NULL;
    if (ph_reloader_start(host, NULL, &w)) {
        fprintf(stderr, "bench_reload: %s\n", ph_error_last());
        exit(1);
    }
    double lat[WATCHED];
    for (int i = 0; i < WATCHED; i++) {
        char v[4200];
        make_variant((*variant)++, v, sizeof v);
        unsigned before = reloads();
        if (rename(v, lib) != 0)
            abort();
        double t0 = now();
        ph_value ret;
        while (reloads() == before) {
            if (now() - t0 > 10) {
                fprintf(stderr, "bench_reload: the watcher never swapped the build\n");
                exit(1);
            }
            usleep(200);
        }
        if (ph_router_call_values(host->router, "counter.counter.get", NULL, &ret))
            abort();
        lat[i] = (now() - t0) * 1e3;
    }
    ph_reloader_stop(w);
    printf("write -> new build serving (watcher, default settle 250 ms + 100 ms stability look), "
           "%d writes:\n  p50 %.1f ms  max %.1f ms\n",
           WATCHED, pct(lat, WATCHED, 0.5), pct(lat, WATCHED, 1.0));
    /* settle 250 ms + stability look 100 ms + the swap */
    ph_bench_figure("reload: write -> new build serving, p50", pct(lat, WATCHED, 0.5), "ms",
                    "<=", 500);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PACKAGES_DIR [rounds]\n", argv[0]);
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 11;
    if (rounds < 1 || rounds > 64)
        rounds = 11;
    ph_log_set_level(PH_L_WARN);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/phbench-reload.XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    snprintf(pk, sizeof pk, "%s/pk", tmpdir);
    snprintf(lib, sizeof lib, "%s/counter/counter.so", pk);
    char *cmd = NULL;
    if (asprintf(&cmd, "mkdir -p '%s' && cp -r '%s/counter' '%s/' && cp '%s' '%s/counter/.orig.so'",
                 pk, argv[1], pk, lib, pk) < 0 ||
        system(cmd) != 0) {
        fprintf(stderr, "bench_reload: no counter package in %s\n", argv[1]);
        return 1;
    }
    free(cmd);
    ph_config cfg;
    if (ph_config_defaults(&cfg))
        return 1;
    for (size_t i = 0; i < cfg.n_package_dirs; i++)
        free(cfg.package_dirs[i]);
    cfg.package_dirs[0] = strdup(pk);
    cfg.n_package_dirs = 1;
    free(cfg.data_dir);
    if (asprintf(&cfg.data_dir, "%s/data", tmpdir) < 0)
        return 1;
    if (ph_host_open(&cfg, &host) || ph_host_start(host) ||
        !(inst = ph_router_instance(host->router, "counter"))) {
        fprintf(stderr, "bench_reload: cannot start counter: %s\n", ph_error_last());
        return 1;
    }
    bench_gate(rounds);

    int variant = 0;
    printf("gate closed per swap, %d swaps each:\n", SWAPS);
    swaps("idle", 0, &variant);
    swaps("one thread calling", 1, &variant);
    printf("  calls during the loaded swaps: %ld, failed: %ld\n", atomic_load(&caller_calls),
           atomic_load(&caller_fail));
    write_to_serving(&variant);

    ph_host_stop(host);
    ph_host_free(host);
    if (asprintf(&cmd, "rm -rf '%s'", tmpdir) > 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    free(cmd);
    return atomic_load(&caller_fail) ? 1 : 0;
}
