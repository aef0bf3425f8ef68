#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

/* Growing text buffer; `oom` sticks once an allocation failed. */
typedef struct text {
    char *p;
    size_t len, cap;
    bool oom;
} text;

static bool text_reserve(text *t, size_t more)
{
    if (t->oom)
        return false;
    if (more > SIZE_MAX - t->len - 1) {
        t->oom = true;
        return false;
    }
    size_t need = t->len + more + 1;
    if (need <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(t->p, cap);
    if (!p) {
        t->oom = true;
        return false;
    }
    t->p = p;
    t->cap = cap;
    return true;
}

static void text_add(text *t, const char *s, size_t n)
{
    if (!text_reserve(t, n))
        return;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void text_printf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(text *t, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->oom = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        text_add(t, small, (size_t)n);
        return;
    }
    if (!text_reserve(t, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static void text_str(text *t, const char *s)
{
    text_add(t, s, strlen(s));
}

/* A label value with \, " and newline escaped as the format requires. */
static void text_label(text *t, const char *v)
{
    for (const char *s = v ? v : ""; *s; s++) {
        if (*s == '\\')
            text_str(t, "\\\\");
        else if (*s == '"')
            text_str(t, "\\\"");
        else if (*s == '\n')
            text_str(t, "\\n");
        else
            text_add(t, s, 1);
    }
}

/* {instance="..",actor="..",method=".."[,le=".."]} */
static void route_labels(text *t, const ph_route *r, const char *le)
{
    text_str(t, "{instance=\"");
    text_label(t, r->inst ? r->inst->name : "");
    text_str(t, "\",actor=\"");
    text_label(t, r->actor);
    text_str(t, "\",method=\"");
    text_label(t, r->method);
    if (le) {
        text_str(t, "\",le=\"");
        text_str(t, le);
    }
    text_str(t, "\"}");
}

typedef struct pass {
    text *t;
    int which; /* 0 calls, 1 errors, 2 histogram, 3 client errors */
} pass;

static void emit_route(const ph_route *r, void *ud)
{
    pass *p = ud;
    text *t = p->t;
    if (!r->stats)
        return;
    unsigned long calls = atomic_load_explicit(&r->stats->calls, memory_order_relaxed);
    if (p->which != 2) {
        static const char *const names[] = {"plughost_calls_total", "plughost_call_errors_total",
                                            NULL, "plughost_call_client_errors_total"};
        text_str(t, names[p->which]);
        route_labels(t, r, NULL);
        text_printf(t, " %lu\n",
                    p->which == 0 ? calls
                    : p->which == 1
                        ? atomic_load_explicit(&r->stats->errors, memory_order_relaxed)
                        : atomic_load_explicit(&r->stats->client_errors, memory_order_relaxed));
        return;
    }
    /* Buckets are stored per interval; Prometheus wants them cumulative. */
    unsigned long cum = 0;
    for (int i = 0; i <= PH_LAT_BUCKETS; i++) {
        cum += atomic_load_explicit(&r->stats->buckets[i], memory_order_relaxed);
        text_str(t, "plughost_call_duration_seconds_bucket");
        char le[32] = "+Inf";
        if (i < PH_LAT_BUCKETS)
            snprintf(le, sizeof(le), "%g", ph_lat_bounds[i]);
        route_labels(t, r, le);
        text_printf(t, " %lu\n", cum);
    }
    text_str(t, "plughost_call_duration_seconds_sum");
    route_labels(t, r, NULL);
    text_printf(t, " %.9f\n",
                (double)atomic_load_explicit(&r->stats->sum_ns, memory_order_relaxed) / 1e9);
    text_str(t, "plughost_call_duration_seconds_count");
    route_labels(t, r, NULL);
    text_printf(t, " %lu\n", cum);
}

static void emit_instances(text *t, ph_host *host)
{
    text_str(t, "# HELP plughost_instance_up 1 if the instance is running.\n"
                "# TYPE plughost_instance_up gauge\n");
    for (size_t i = 0; i < host->plan.n; i++) {
        const char *state = ph_host_item_state(host, i, NULL);
        text_str(t, "plughost_instance_up{instance=\"");
        text_label(t, host->plan.items[i].instance);
        text_printf(t, "\"} %d\n", state && strcmp(state, "running") == 0);
    }
    text_str(t, "# HELP plughost_instance_state The instance's current state (the series with "
                "value 1).\n# TYPE plughost_instance_state gauge\n");
    for (size_t i = 0; i < host->plan.n; i++) {
        const char *state = ph_host_item_state(host, i, NULL);
        text_str(t, "plughost_instance_state{instance=\"");
        text_label(t, host->plan.items[i].instance);
        text_str(t, "\",state=\"");
        text_label(t, state);
        text_str(t, "\"} 1\n");
    }
}

/* Seconds since the Unix epoch when this process started (/proc/self/stat field 22). */
static double start_time(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    char buf[1024];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ticks = 0;
    for (int field = 2; p && *p && field < 22; p++)
        field += *p == ' ';
    if (!p || sscanf(p, "%llu", &ticks) != 1)
        return 0;
    struct timespec now, up;
    clock_gettime(CLOCK_REALTIME, &now);
    clock_gettime(CLOCK_BOOTTIME, &up);
    double boot = (double)now.tv_sec + now.tv_nsec / 1e9 - ((double)up.tv_sec + up.tv_nsec / 1e9);
    return boot + (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

/* The standard process_* collector of Prometheus' client libraries, and build info. */
static void emit_process(text *t)
{
    struct rusage ru;
    struct rlimit rl;
    long pages = 0, rss = 0, page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &rss) != 2)
        pages = rss = 0;
    if (f)
        fclose(f);
    double cpu = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
              ru.ru_stime.tv_usec / 1e6;
    double max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                         ? (double)rl.rlim_cur
                         : -1;
    text_printf(t,
                "# HELP process_cpu_seconds_total Total user and system CPU time spent in "
                "seconds.\n# TYPE process_cpu_seconds_total counter\n"
                "process_cpu_seconds_total %.6f\n"
                "# HELP process_open_fds Number of open file descriptors.\n"
                "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n"
                "# HELP process_max_fds Maximum number of open file descriptors.\n"
                "# TYPE process_max_fds gauge\nprocess_max_fds %.0f\n"
                "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %ld\n"
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n"
                "# HELP process_start_time_seconds Start time of the process since unix epoch in "
                "seconds.\n# TYPE process_start_time_seconds gauge\n"
                "process_start_time_seconds %.2f\n"
                "# HELP plughost_build_info The running plughost's version (value 1).\n"
                "# TYPE plughost_build_info gauge\nplughost_build_info{version=\"%s\"} 1\n",
                cpu, ph_host_open_fds(), max_fds, pages * page, rss * page, start_time(),
                PH_HOST_VERSION);
}

typedef struct load_pass {
    text *t;
    int which;
} load_pass;

static void emit_load(ph_instance *inst, void *ud)
{
    load_pass *p = ud;
    const ph_inst_load *ld = inst->load;
    if (!ld)
        return;
    static const char *const names[] = {"plughost_calls_running", "plughost_calls_timed_out_total",
                                        "plughost_calls_refused_total"};
    text_str(p->t, names[p->which]);
    text_str(p->t, "{instance=\"");
    text_label(p->t, inst->name);
    if (p->which == 0)
        text_printf(p->t, "\"} %d\n", atomic_load_explicit(&ld->running, memory_order_relaxed));
    else if (p->which == 1)
        text_printf(p->t, "\"} %lu\n", atomic_load_explicit(&ld->timed_out, memory_order_relaxed));
    else
        text_printf(p->t, "\",reason=\"concurrency_limit\"} %lu\n",
                    atomic_load_explicit(&ld->refused, memory_order_relaxed));
}

/* The limits of [limits]: calls running, past their time limit, refused. */
static void emit_loads(text *t, ph_host *host)
{
    static const char *const heads[] = {
        "# HELP plughost_calls_running Package calls of the instance running now from HTTP "
        "callers (a call past its time limit counts until it returns).\n"
        "# TYPE plughost_calls_running gauge\n",
        "# HELP plughost_calls_timed_out_total Calls whose caller got 504: they ran past their "
        "time limit.\n"
        "# TYPE plughost_calls_timed_out_total counter\n",
        "# HELP plughost_calls_refused_total Calls refused with 503: the instance was at "
        "[limits] max_concurrent_calls.\n"
        "# TYPE plughost_calls_refused_total counter\n"};
    for (int which = 0; which < 3; which++) {
        load_pass p = {t, which};
        text_str(t, heads[which]);
        ph_router_each_instance(host->router, emit_load, &p);
    }
}

int ph_metrics_render(ph_host *host, const char *extra, char **out, size_t *len)
{
    text t = {0};
    pass p = {&t, 0};

    text_str(&t, "# HELP plughost_calls_total Calls of each method.\n"
                 "# TYPE plughost_calls_total counter\n");
    ph_router_each(host->router, emit_route, &p);
    text_str(&t, "# HELP plughost_call_errors_total Calls of each method that failed with a "
                 "server error (5xx: a host or package fault).\n"
                 "# TYPE plughost_call_errors_total counter\n");
    p.which = 1;
    ph_router_each(host->router, emit_route, &p);
    text_str(&t, "# HELP plughost_call_client_errors_total Calls of each method refused as the "
                 "caller's mistake (4xx: bad arguments, not found, a validate hook's refusal).\n"
                 "# TYPE plughost_call_client_errors_total counter\n");
    p.which = 3;
    ph_router_each(host->router, emit_route, &p);
    text_str(&t, "# HELP plughost_call_duration_seconds Time spent in each method.\n"
                 "# TYPE plughost_call_duration_seconds histogram\n");
    p.which = 2;
    ph_router_each(host->router, emit_route, &p);
    emit_loads(&t, host);
    pthread_rwlock_rdlock(&host->lock); /* a configuration reload replaces the plan */
    emit_instances(&t, host);
    pthread_rwlock_unlock(&host->lock);
    emit_process(&t);
    if (extra)
        text_add(&t, extra, strlen(extra));
    if (t.oom || !t.p) {
        free(t.p);
        return ph_error_set(PH_ENOMEM, "out of memory rendering metrics");
    }
    *out = t.p;
    *len = t.len;
    return 0;
}
