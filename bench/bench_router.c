/*
 * Router overhead: a routed call (JSON in, JSON out) and a typed routed call
 * (no JSON), against a direct libffi call and a plain function-pointer call
 * of the same method (calc.math.add), and against jansson's own parse +
 * serialise of the same payload. Subjects run interleaved, several rounds;
 * the ratios printed are medians of per-round ratios.
 *
 * usage: bench_router PACKAGES_DIR [rounds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "host.h"
#include "log.h"
#include "report.h"

#define ITERS 200000

typedef int64_t (*add_fn)(ph_ctx *, int64_t, int64_t);

static volatile int64_t sink;
static ph_host *host;
static const ph_route *route;
static const char payload[] = "{\"a\":2,\"b\":40}";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run_direct(void)
{
    add_fn f = (add_fn)route->fn;
    add_fn volatile vf = f; /* keep it an indirect call */
    for (int i = 0; i < ITERS; i++)
        sink = vf(route->ctx, i, 40);
}

static void run_ffi(void)
{
    ph_value vals[2], ret;
    for (int i = 0; i < ITERS; i++) {
        vals[0].i = i;
        vals[1].i = 40;
        ph_ffi_call(&route->sig, route->fn, route->ctx, vals, &ret);
        sink = ret.i;
    }
}

static void run_typed(void)
{
    ph_value vals[2], ret;
    for (int i = 0; i < ITERS; i++) {
        vals[0].i = i;
        vals[1].i = 40;
        if (ph_router_call_values(host->router, "calc.math.add", vals, &ret))
            abort();
        sink = ret.i;
    }
}

static void run_json_baseline(void)
{
    for (int i = 0; i < ITERS; i++) {
        json_t *v = json_loads(payload, 0, NULL);
        char *s = json_dumps(v, JSON_COMPACT);
        sink += (int64_t)strlen(s);
        free(s);
        json_decref(v);
    }
}

static void run_json_routed(void)
{
    for (int i = 0; i < ITERS; i++) {
        json_t *args = json_loads(payload, 0, NULL), *out = NULL;
        if (ph_router_call(host->router, NULL, "calc.math.add", args, 0, &out))
            abort();
        char *s = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
        sink += (int64_t)strlen(s);
        free(s);
        json_decref(out);
        json_decref(args);
    }
}

typedef struct subject {
    const char *name;
    void (*fn)(void);
    double t[64];
} subject;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_ratio(const subject *num, const subject *den, int rounds)
{
    double r[64];
    for (int i = 0; i < rounds; i++)
        r[i] = num->t[i] / den->t[i];
    qsort(r, (size_t)rounds, sizeof r[0], cmp_double);
    return rounds % 2 ? r[rounds / 2] : (r[rounds / 2 - 1] + r[rounds / 2]) / 2;
}

static double median_ns(const subject *s, int rounds)
{
    double t[64];
    memcpy(t, s->t, sizeof t);
    qsort(t, (size_t)rounds, sizeof t[0], cmp_double);
    return t[rounds / 2] / ITERS * 1e9;
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
    ph_config cfg;
    char data[] = "/tmp/phbench.XXXXXX";
    if (ph_config_defaults(&cfg) || !mkdtemp(data))
        return 1;
    for (size_t i = 0; i < cfg.n_package_dirs; i++)
        free(cfg.package_dirs[i]);
    cfg.package_dirs[0] = realpath(argv[1], NULL);
    cfg.n_package_dirs = 1;
    free(cfg.data_dir);
    cfg.data_dir = strdup(data);
    if (ph_host_open(&cfg, &host) || ph_host_start(host) ||
        !(route = ph_router_find(host->router, "calc.math.add"))) {
        fprintf(stderr, "bench_router: cannot start calc from %s: %s\n", argv[1], ph_error_last());
        return 1;
    }
    subject s[] = {{"direct call", run_direct, {0}},
                   {"libffi call", run_ffi, {0}},
                   {"typed routed", run_typed, {0}},
                   {"jansson parse+dump", run_json_baseline, {0}},
                   {"JSON routed", run_json_routed, {0}}};
    const int n = (int)(sizeof s / sizeof s[0]);
    for (int r = 0; r < rounds; r++) {
        /* Rotate the order each round so no subject always runs first. */
        for (int k = 0; k < n; k++) {
            subject *x = &s[(k + r) % n];
            double t0 = now();
            x->fn();
            x->t[r] = now() - t0;
        }
    }
    printf("router benchmark: %d rounds x %d calls of calc.math.add (median per call)\n", rounds,
           ITERS);
    for (int k = 0; k < n; k++)
        printf("  %-20s %8.1f ns\n", s[k].name, median_ns(&s[k], rounds));
    printf("ratios (median of per-round ratios; informational, no target):\n");
    printf("  typed routed / direct call      %6.2fx\n", median_ratio(&s[2], &s[0], rounds));
    printf("  libffi call  / direct call      %6.2fx\n", median_ratio(&s[1], &s[0], rounds));
    printf("  JSON routed  / libffi call      %6.2fx\n", median_ratio(&s[4], &s[1], rounds));
    printf("figures (median of per-round ratios):\n");
    ph_bench_figure("router: typed routed / libffi call", median_ratio(&s[2], &s[1], rounds), "x",
                    "<=", 2.0);
    ph_bench_figure("router: JSON routed / jansson parse+dump", median_ratio(&s[4], &s[3], rounds),
                    "x", "<=", 1.5);
    ph_host_stop(host);
    ph_host_free(host);
    char *out = NULL;
    if (asprintf(&out, "rm -rf '%s'", data) > 0 && system(out) != 0)
        fprintf(stderr, "could not remove %s\n", data);
    free(out);
    return 0;
}
