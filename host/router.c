#include "router.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "text.h"

const double ph_lat_bounds[PH_LAT_BUCKETS] = {0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005,
                                              0.01,    0.05,    0.1,    0.5,    1.0,   5.0};

struct ph_routes {
    ph_instance *inst;
    ph_route *items;
    size_t n, cap;
    uint32_t *slots; /* open addressing over items, index+1; 0 = empty */
    size_t mask;
};

typedef struct stats_entry {
    char *address;
    ph_route_stats *stats;
} stats_entry;

typedef struct load_entry {
    char *name;
    ph_inst_load *load;
} load_entry;

/*
 * The instance list is read on every call without a lock: writers (rare:
 * startup, configuration reload) publish a new immutable list and keep the
 * old ones until the router is freed, so a reader never sees freed memory.
 */
typedef struct inst_list {
    struct inst_list *retired; /* older lists, freed with the router */
    size_t n;
    ph_instance *items[];
} inst_list;

struct ph_router {
    pthread_mutex_t write_mu; /* serialises writers of `list` */
    inst_list *_Atomic list;
    int hold_ms;
    int rate_limit;
    ph_manage_fn manage;
    void *manage_ud;
    pthread_mutex_t stats_mu;
    stats_entry *stats;
    size_t n_stats, cap_stats;
    load_entry *loads; /* under stats_mu */
    size_t n_loads, cap_loads;
};

/* ---- helpers ---- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static int grow(void **items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    if (ncap > SIZE_MAX / size)
        return PH_ENOMEM;
    void *p = realloc(*items, ncap * size);
    if (!p)
        return PH_ENOMEM;
    *items = p;
    *cap = ncap;
    return 0;
}

/* ---- router ---- */

int ph_router_new(ph_router **out)
{
    ph_router *r = calloc(1, sizeof *r);
    if (!r)
        return ph_error_set(PH_ENOMEM, "out of memory");
    pthread_mutex_init(&r->write_mu, NULL);
    pthread_mutex_init(&r->stats_mu, NULL);
    inst_list *l = calloc(1, sizeof *l);
    if (!l) {
        free(r);
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    atomic_init(&r->list, l);
    r->hold_ms = 5000;
    *out = r;
    return 0;
}

void ph_router_free(ph_router *r)
{
    if (!r)
        return;
    inst_list *l = atomic_load(&r->list);
    for (size_t i = 0; i < l->n; i++) {
        ph_routes_free(atomic_load(&l->items[i]->routes));
        atomic_store(&l->items[i]->routes, NULL);
    }
    while (l) {
        inst_list *next = l->retired;
        free(l);
        l = next;
    }
    for (size_t i = 0; i < r->n_stats; i++) {
        free(r->stats[i].address);
        pthread_mutex_destroy(&r->stats[i].stats->rate_mu);
        free(r->stats[i].stats);
    }
    free(r->stats);
    for (size_t i = 0; i < r->n_loads; i++) {
        free(r->loads[i].name);
        /* a call that never returned still counts itself out here: left allocated */
        if (atomic_load(&r->loads[i].load->running) == 0)
            free(r->loads[i].load);
    }
    free(r->loads);
    pthread_mutex_destroy(&r->write_mu);
    pthread_mutex_destroy(&r->stats_mu);
    free(r);
}

void ph_router_set_hold_ms(ph_router *r, int ms)
{
    r->hold_ms = ms;
}

void ph_router_set_rate_limit(ph_router *r, int per_second)
{
    r->rate_limit = per_second;
}

/* Token bucket per method: refilled at the limit per second, bursts of one second's worth. */
static int rate_take(ph_route_stats *st, int per_second)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9, rate = per_second;
    pthread_mutex_lock(&st->rate_mu);
    st->rate_tokens = st->rate_last == 0 ? rate : st->rate_tokens + (now - st->rate_last) * rate;
    if (st->rate_tokens > rate)
        st->rate_tokens = rate;
    st->rate_last = now;
    int ok = st->rate_tokens >= 1.0;
    if (ok)
        st->rate_tokens -= 1.0;
    pthread_mutex_unlock(&st->rate_mu);
    return ok;
}

/* Publishes a copy of the current list with `add` appended or `remove` left out. */
static int replace_list(ph_router *r, ph_instance *add, const char *remove)
{
    pthread_mutex_lock(&r->write_mu);
    inst_list *old = atomic_load(&r->list);
    inst_list *l = malloc(sizeof *l + (old->n + 1) * sizeof l->items[0]);
    if (!l) {
        pthread_mutex_unlock(&r->write_mu);
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    l->n = 0;
    for (size_t i = 0; i < old->n; i++)
        if (!remove || strcmp(old->items[i]->name, remove) != 0)
            l->items[l->n++] = old->items[i];
    if (add)
        l->items[l->n++] = add;
    l->retired = old;
    atomic_store(&r->list, l);
    pthread_mutex_unlock(&r->write_mu);
    return 0;
}

/* The counters of instance `name`, created on first use when `create`. */
static ph_inst_load *load_of(ph_router *r, const char *name, bool create)
{
    ph_inst_load *ld = NULL;
    pthread_mutex_lock(&r->stats_mu);
    for (size_t i = 0; i < r->n_loads; i++)
        if (strcmp(r->loads[i].name, name) == 0) {
            ld = r->loads[i].load;
            goto done;
        }
    char *copy = NULL;
    if (!create || grow((void **)&r->loads, &r->cap_loads, r->n_loads + 1, sizeof *r->loads) ||
        !(copy = strdup(name)) || !(ld = calloc(1, sizeof *ld))) {
        free(copy);
        goto done;
    }
    r->loads[r->n_loads].name = copy;
    r->loads[r->n_loads++].load = ld;
done:
    pthread_mutex_unlock(&r->stats_mu);
    return ld;
}

ph_inst_load *ph_router_load(ph_router *r, const char *name)
{
    return load_of(r, name, false);
}

int ph_router_add_instance(ph_router *r, ph_instance *inst)
{
    inst->router = r;
    if (!inst->load && !(inst->load = load_of(r, inst->name, true)))
        return ph_error_set(PH_ENOMEM, "out of memory");
    return replace_list(r, inst, NULL);
}

void ph_router_remove_instance(ph_router *r, const char *name)
{
    ph_instance *inst = ph_router_instance(r, name);
    if (inst && !replace_list(r, NULL, name)) {
        ph_routes_free(atomic_exchange(&inst->routes, NULL));
    }
}

static ph_instance *find_instance(ph_router *r, const char *name, size_t len)
{
    inst_list *l = atomic_load(&r->list);
    for (size_t i = 0; i < l->n; i++) {
        const char *n = l->items[i]->name;
        if (strncmp(n, name, len) == 0 && n[len] == 0)
            return l->items[i];
    }
    return NULL;
}

ph_instance *ph_router_instance(ph_router *r, const char *name)
{
    return find_instance(r, name, strlen(name));
}

void ph_router_each_instance(ph_router *r, ph_instance_visit_fn fn, void *ud)
{
    inst_list *l = atomic_load(&r->list);
    for (size_t i = 0; i < l->n; i++)
        fn(l->items[i], ud);
}

/* ---- route tables ---- */

int ph_routes_new(ph_instance *inst, ph_routes **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return ph_error_set(PH_ENOMEM, "out of memory");
    (*out)->inst = inst;
    return 0;
}

void ph_routes_free(ph_routes *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->items[i].name);
        free(t->items[i].actor);
        free(t->items[i].method);
    }
    free(t->items);
    free(t->slots);
    free(t);
}

static const ph_route *routes_find(const ph_routes *t, const char *name, size_t len)
{
    if (!t || !t->slots)
        return NULL;
    for (size_t i = hash_bytes(name, len) & t->mask;; i = (i + 1) & t->mask) {
        uint32_t s = t->slots[i];
        if (!s)
            return NULL;
        const ph_route *rt = &t->items[s - 1];
        if (strncmp(rt->name, name, len) == 0 && rt->name[len] == 0)
            return rt;
    }
}

static int routes_index(ph_routes *t)
{
    size_t size = 16;
    while (size < t->n * 2)
        size *= 2;
    uint32_t *slots = calloc(size, sizeof *slots);
    if (!slots)
        return PH_ENOMEM;
    free(t->slots);
    t->slots = slots;
    t->mask = size - 1;
    for (size_t k = 0; k < t->n; k++) {
        size_t i = hash_bytes(t->items[k].name, strlen(t->items[k].name)) & t->mask;
        while (slots[i])
            i = (i + 1) & t->mask;
        slots[i] = (uint32_t)(k + 1);
    }
    return 0;
}

static ph_route *routes_append(ph_routes *t, const char *actor, const char *method)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->items[i].actor, actor) == 0 && strcmp(t->items[i].method, method) == 0) {
            ph_error_set(PH_EINVAL,
                         "instance '%s': method %s.%s is defined twice (a model and an "
                         "actor with the same name?)",
                         t->inst->name, actor, method);
            return NULL;
        }
    ph_route *before = t->items;
    if (grow((void **)&t->items, &t->cap, t->n + 1, sizeof *t->items)) {
        ph_error_set(PH_ENOMEM, "out of memory");
        return NULL;
    }
    /* A prepared cif points at its own types array: follow the move. */
    if (t->items != before)
        for (size_t i = 0; i < t->n; i++)
            t->items[i].sig.cif.arg_types = t->items[i].sig.types;
    ph_route *rt = &t->items[t->n];
    memset(rt, 0, sizeof *rt);
    rt->inst = t->inst;
    if (asprintf(&rt->name, "%s.%s", actor, method) < 0 || !(rt->actor = strdup(actor)) ||
        !(rt->method = strdup(method))) {
        free(rt->name);
        free(rt->actor);
        ph_error_set(PH_ENOMEM, "out of memory");
        return NULL;
    }
    t->n++;
    return rt;
}

/* Every ACTOR.METHOD line of package.ini [limits] must name a method of the build. */
static int check_limits(const ph_routes *t, const ph_version *ver)
{
    const ph_manifest *m = ver->manifest ? ver->manifest : t->inst->manifest;
    for (size_t i = 0; m && i < m->n_limits; i++) {
        const char *k = m->limits[i].key;
        bool found = strcmp(k, "call_timeout") == 0 || strcmp(k, "stop_timeout") == 0;
        for (size_t r = 0; !found && r < t->n; r++)
            found = strcmp(t->items[r].name, k) == 0;
        if (!found)
            return ph_error_set(PH_EMANIFEST,
                                "%s:%d: [limits] sets a time limit for '%s', which is not a "
                                "method of package '%s'; write it as ACTOR.METHOD",
                                m->path, m->limits[i].line, k, m->name);
    }
    return 0;
}

int ph_routes_add_package(ph_routes *t, ph_version *ver)
{
    const ph_package *d = ver->module->desc;
    for (uint32_t a = 0; a < d->n_actors; a++) {
        const ph_actor *actor = &d->actors[a];
        for (uint32_t m = 0; m < actor->n_methods; m++) {
            const ph_method *me = &actor->methods[m];
            ph_route *rt = routes_append(t, actor->name, me->name);
            if (!rt)
                return ph_error_last_code();
            rt->args = me->args;
            rt->n_args = me->n_args;
            rt->ret = me->ret;
            rt->flags = me->flags;
            rt->doc = me->doc;
            rt->fn = me->fn;
            rt->ctx = &ver->ctx;
            rt->timeout_ms = ph_manifest_call_timeout(
                ver->manifest ? ver->manifest : t->inst->manifest, actor->name, me->name);
            int rc = ph_ffi_prepare(&rt->sig, me->args, me->n_args, me->ret);
            if (rc) {
                ph_error_wrap("instance '%s': method %s.%s", t->inst->name, actor->name, me->name);
                return rc;
            }
        }
    }
    return check_limits(t, ver) ? ph_error_last_code()
           : routes_index(t)    ? ph_error_set(PH_ENOMEM, "out of memory")
                                : 0;
}

int ph_routes_add_native(ph_routes *t, const char *actor, const char *method, const ph_arg *args,
                         uint32_t n_args, ph_type ret, uint32_t flags, const char *doc,
                         const ph_model *model, ph_native_fn fn, void *ud)
{
    ph_route *rt = routes_append(t, actor, method);
    if (!rt)
        return ph_error_last_code();
    rt->args = args;
    rt->n_args = n_args;
    rt->ret = ret;
    rt->flags = flags;
    rt->doc = doc;
    rt->model = model;
    rt->native = fn;
    rt->ud = ud;
    return routes_index(t) ? ph_error_set(PH_ENOMEM, "out of memory") : 0;
}

int ph_routes_set_text(ph_routes *t, const char *actor, const char *method, ph_native_text_fn fn)
{
    char name[256];
    int n = snprintf(name, sizeof name, "%s.%s", actor, method);
    ph_route *rt =
        n > 0 && (size_t)n < sizeof name ? (ph_route *)routes_find(t, name, (size_t)n) : NULL;
    if (!rt || !rt->native)
        return ph_error_set(PH_ENOTFOUND, "no host method %s.%s to give a text writer", actor,
                            method);
    rt->native_text = fn;
    return 0;
}

static ph_route_stats *stats_for(ph_router *r, const char *inst, const char *name)
{
    char *address = NULL;
    ph_route_stats *st = NULL;
    if (asprintf(&address, "%s.%s", inst, name) < 0)
        return NULL;
    pthread_mutex_lock(&r->stats_mu);
    for (size_t i = 0; i < r->n_stats; i++)
        if (strcmp(r->stats[i].address, address) == 0) {
            st = r->stats[i].stats;
            goto done;
        }
    if (grow((void **)&r->stats, &r->cap_stats, r->n_stats + 1, sizeof *r->stats) ||
        !(st = calloc(1, sizeof *st)))
        goto done;
    pthread_mutex_init(&st->rate_mu, NULL);
    r->stats[r->n_stats].address = address;
    r->stats[r->n_stats++].stats = st;
    address = NULL;
done:
    pthread_mutex_unlock(&r->stats_mu);
    free(address);
    return st;
}

void ph_router_publish(ph_router *r, ph_instance *inst, ph_routes *t)
{
    /* counts calls whose stats could not be allocated */
    static ph_route_stats dropped = {.rate_mu = PTHREAD_MUTEX_INITIALIZER};
    for (size_t i = 0; t && i < t->n; i++) {
        t->items[i].stats = stats_for(r, inst->name, t->items[i].name);
        if (!t->items[i].stats)
            t->items[i].stats = &dropped;
    }
    ph_routes *old = atomic_exchange(&inst->routes, t);
    ph_routes_free(old);
}

void ph_router_each(ph_router *r, ph_route_visit_fn fn, void *ud)
{
    inst_list *l = atomic_load(&r->list);
    for (size_t i = 0; i < l->n; i++) {
        ph_instance *inst = l->items[i];
        if (ph_gate_enter(&inst->gate, r->hold_ms))
            continue;
        ph_routes *t = atomic_load(&inst->routes);
        for (size_t k = 0; t && k < t->n; k++)
            fn(&t->items[k], ud);
        ph_gate_leave(&inst->gate);
    }
}

/* ---- calls ---- */

static void list_methods(const ph_routes *t, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; t && i < t->n && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "", t->items[i].name);
    if (!t || !t->n)
        snprintf(buf, size, "none");
}

static void list_instances(ph_router *r, char *buf, size_t size)
{
    inst_list *l = atomic_load(&r->list);
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < l->n && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "", l->items[i]->name);
    if (!l->n)
        snprintf(buf, size, "none");
}

/* The [requires] or [optional] line of `m` naming the first `len` bytes of `name`, or NULL. */
static const ph_dep *dep_named(const ph_manifest *m, const char *name, size_t len)
{
    const ph_dep *lists[] = {m->requires, m->optional};
    size_t counts[] = {m->n_requires, m->n_optional};
    for (size_t l = 0; l < 2; l++)
        for (size_t i = 0; i < counts[l]; i++)
            if (strncmp(lists[l][i].name, name, len) == 0 && lists[l][i].name[len] == '\0')
                return &lists[l][i];
    return NULL;
}

/*
 * A call from a package to a capability it requires ([provides] of another
 * package, e.g. "sql-store.db.query"): *out is the instance providing the
 * highest version of it in the caller's range (releases first), as the
 * resolver made it the caller's dependency. *out stays NULL when the caller
 * does not name the capability; an error when no instance provides a
 * version in range.
 */
static int find_provider(ph_router *r, const ph_instance *caller, const char *address, size_t len,
                         ph_instance **out)
{
    *out = NULL;
    /* manifests are repointed by a change meanwhile (ph_reload_repoint): loaded atomically */
    const ph_manifest *cm = __atomic_load_n(&caller->manifest, __ATOMIC_ACQUIRE);
    const ph_dep *d = dep_named(cm, address, len);
    const ph_provide *best = NULL, *other = NULL;
    const ph_instance *other_inst = NULL;
    const ph_manifest *other_owner = NULL;
    if (!d)
        return 0;
    inst_list *l = atomic_load(&r->list);
    for (size_t i = 0; i < l->n; i++) {
        const ph_manifest *m = __atomic_load_n(&l->items[i]->manifest, __ATOMIC_ACQUIRE);
        const ph_provide *pv = NULL;
        for (size_t k = 0; k < m->n_provides && !pv; k++)
            if (strncmp(m->provides[k].name, address, len) == 0 && m->provides[k].name[len] == 0)
                pv = &m->provides[k];
        if (pv && !ph_range_satisfies(&d->range, &pv->version)) {
            other = other ? other : pv;
            other_owner = other_inst ? other_owner : m;
            other_inst = other_inst ? other_inst : l->items[i];
            continue;
        }
        bool pre = pv && pv->version.pre[0], best_pre = best && best->version.pre[0];
        if (pv && (!best || (best_pre && !pre) ||
                   (pre == best_pre && ph_semver_cmp(&pv->version, &best->version) > 0))) {
            best = pv;
            *out = l->items[i];
        }
    }
    if (!*out && other)
        return ph_error_set(PH_ENOTFOUND,
                            "package '%s' requires %s %s, but no instance provides a version of it "
                            "in range (instance '%s' of %s provides %s); address '%s'",
                            cm->name, d->name, d->range.text, other_inst->name, other_owner->name,
                            other->version_text, address);
    return 0;
}

/* Finds the instance and enters its gate. On success the caller must leave the gate. */
static int enter_instance(ph_router *r, ph_instance *caller, const char *address, size_t len,
                          ph_instance **out)
{
    char names[512];
    ph_instance *inst = find_instance(r, address, len);
    bool provider = false; /* reached through a capability the caller requires */
    if (!inst && caller) {
        int rc = find_provider(r, caller, address, len, &inst);
        if (rc)
            return rc;
        provider = inst != NULL;
    }
    if (!inst) {
        list_instances(r, names, sizeof names);
        return ph_error_set(PH_ENOTFOUND, "no instance '%.*s' (address '%s'); instances: %s",
                            (int)len, address, address, names);
    }
    if (caller && caller != inst && !provider &&
        !ph_instance_may_call(caller, inst->manifest->name)) {
        return ph_error_set(PH_EPERM,
                            "package '%s' may not call '%s': it does not depend on "
                            "package '%s'; add it to [requires] or [optional] in %s",
                            caller->manifest->name, address, inst->manifest->name,
                            caller->manifest->path);
    }
    const ph_dep *left_out = caller && caller != inst && !provider
                                 ? ph_instance_optional_left_out(caller, inst->manifest)
                                 : NULL;
    if (left_out) /* the plan ran the caller without it: a call would use what it did not ask for */
        return ph_error_set(PH_EDEPENDENCY,
                            "package '%s' may not call '%s': its optional %s %s does not accept "
                            "the running %s %s, so it runs without it (%s:%d)",
                            caller->manifest->name, address, left_out->name, left_out->range.text,
                            inst->manifest->name, inst->manifest->version_text,
                            caller->manifest->path, left_out->line);
    if (ph_frame_inside(inst)) {
        ph_gate_enter_nested(&inst->gate);
    } else if (ph_gate_enter_held(&inst->gate, r->hold_ms)) {
        return ph_error_set(PH_EBUSY, "instance '%s' is being reloaded; retry in a moment",
                            inst->name);
    }
    int state = atomic_load(&inst->state);
    if (state != PH_INST_RUNNING) {
        const char *why = atomic_load(&inst->reason); /* stays valid while inst lives */
        ph_gate_leave(&inst->gate);
        if (state == PH_INST_LOADED || state == PH_INST_PREPARED) /* on its way up */
            return ph_error_set(PH_EBUSY,
                                "instance '%s' is starting (%s); retry in a moment (GET "
                                "/_/health?ready answers 200 once every instance is up)",
                                inst->name, ph_inst_state_name(state));
        return ph_error_set(PH_ESTATE, "instance '%s' is %s%s%s", inst->name,
                            ph_inst_state_name(state), why ? ": " : "", why ? why : "");
    }
    *out = inst;
    return 0;
}

static int find_route(ph_instance *inst, const char *address, const char *rest,
                      const ph_route **out)
{
    char names[1024];
    const ph_routes *t = atomic_load(&inst->routes);
    const ph_route *rt = routes_find(t, rest, strlen(rest));
    if (!rt) {
        list_methods(t, names, sizeof names);
        return ph_error_set(PH_ENOTFOUND,
                            "instance '%s' has no method '%s' (address '%s'); "
                            "methods: %s",
                            inst->name, rest, address, names);
    }
    *out = rt;
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void record(ph_route_stats *st, uint64_t ns, int failed)
{
    atomic_fetch_add_explicit(&st->calls, 1, memory_order_relaxed);
    if (failed) /* the error is still this thread's last: its status says whose it is */
        atomic_fetch_add_explicit(ph_error_last_http_status() < 500 ? &st->client_errors
                                                                    : &st->errors,
                                  1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->sum_ns, ns, memory_order_relaxed);
    double s = (double)ns / 1e9;
    int b = 0;
    while (b < PH_LAT_BUCKETS && s > ph_lat_bounds[b])
        b++;
    atomic_fetch_add_explicit(&st->buckets[b], 1, memory_order_relaxed);
}

/*
 * A watched call may be abandoned and its route table freed by a reload
 * while the method still runs: it then calls through a copy of its route,
 * taken before the call counts as inside (the build itself stays pinned).
 */
typedef struct route_copy {
    ph_route rt; /* name, actor and method point into `what` only */
    char what[128];
} route_copy;

static const ph_route *copy_route(const ph_route *rt, route_copy *c)
{
    c->rt = *rt;
    c->rt.sig.cif.arg_types = c->rt.sig.types;
    ph_dotted(c->what, sizeof c->what, rt->name, NULL, NULL);
    c->rt.name = c->rt.actor = c->rt.method = c->what;
    return &c->rt;
}

static bool watch_abandoned(const ph_call_watch *w)
{
    return w && atomic_load(&w->state) >= PH_WATCH_ABANDONING;
}

static int invoke_package(const ph_route *rt, const char *address, json_t *args,
                          const ph_call_watch *w, json_t **out)
{
    ph_value vals[PH_MAX_ARGS], ret;
    int rc = ph_ffi_args_from_json(&rt->sig, address, args, vals);
    if (rc)
        return rc;
    ph_frame f;
    ph_frame_push(&f, rt->inst);
    f.what = rt->name;
    ph_ffi_call(&rt->sig, rt->fn, rt->ctx, vals, &ret);
    ph_frame_pop(&f);
    if (f.failed || watch_abandoned(w)) {
        ph_ffi_result_discard(&rt->sig, &ret);
        rc = ph_error_last_code();
        return rc ? rc : ph_error_set(PH_EPACKAGE, "%s failed", address);
    }
    return ph_ffi_result_to_json(&rt->sig, &ret, out);
}

/*
 * Whether the call chain running on this thread started with the admin
 * token. The outermost call (caller NULL: HTTP, CLI) sets it from its
 * flags; every call a package makes inside that chain inherits it, so a
 * package cannot lend its callers an authority they did not bring.
 */
static _Thread_local bool chain_admin;

bool ph_router_chain_admin(void)
{
    return chain_admin;
}

/* The call the current thread runs for a caller that may abandon it, or NULL. */
static _Thread_local ph_call_watch *current_watch;

bool ph_router_abandoned(void)
{
    return watch_abandoned(current_watch);
}

int ph_router_refuse_abandoned(const char *what)
{
    return ph_error_set(PH_ETIMEOUT,
                        "%s refused: this call ran past its time limit and its caller was "
                        "already answered (504); the host no longer runs what it asks",
                        what);
}

/* Marks a watched call inside its instance; false if its caller already gave up. */
static bool watch_enter(ph_call_watch *w, ph_instance *inst, const ph_route *rt)
{
    w->inst = inst;
    w->ver = rt->ctx ? ph_version_of(rt->ctx) : inst->cur;
    /* a longer address is cut: it only names the call in a log */
    ph_dotted(w->address, sizeof w->address, inst->name, rt->name, NULL);
    atomic_store(&w->limit_ms, rt->timeout_ms);
    int s = PH_WATCH_OUTSIDE;
    return atomic_compare_exchange_strong(&w->state, &s, PH_WATCH_INSIDE);
}

/*
 * The call returned: true if it still holds the gate (the caller waits for
 * it). Otherwise the caller abandoned it, which left the gate for it; its
 * pin is dropped here.
 */
static bool watch_leave(ph_call_watch *w)
{
    int s = PH_WATCH_INSIDE;
    if (atomic_compare_exchange_strong(&w->state, &s, PH_WATCH_DONE))
        return true;
    while (atomic_load(&w->state) == PH_WATCH_ABANDONING)
        sched_yield(); /* ph_router_abandon is pinning the build: a few instructions */
    ph_version_unpin(w->ver);
    return false;
}

bool ph_router_abandon(ph_call_watch *w)
{
    int s = PH_WATCH_OUTSIDE;
    if (atomic_compare_exchange_strong(&w->state, &s, PH_WATCH_ABANDONED))
        return true; /* never entered: it will not run */
    s = PH_WATCH_INSIDE;
    if (!atomic_compare_exchange_strong(&w->state, &s, PH_WATCH_ABANDONING))
        return false;
    /* Still inside and holding the gate: the build cannot be retired before this pin. */
    ph_version_pin_call(w->ver, w->address);
    ph_instance *inst = w->inst;
    atomic_store(&w->state, PH_WATCH_ABANDONED);
    ph_gate_leave(&inst->gate);
    return true;
}

/*
 * One call. `text` NULL: the result in *out. Otherwise the result is
 * appended to `text` as JSON text (*out stays NULL).
 */
static int call_impl(ph_router *r, ph_instance *caller, const char *address, json_t *args,
                     unsigned flags, ph_call_watch *w, json_t **out, ph_json_buf *text)
{
    *out = NULL;
    const char *dot = strchr(address, '.');
    if (!dot || !strchr(dot + 1, '.'))
        return ph_error_set(PH_ENOTFOUND, "'%s' is not an address; use instance.actor.method",
                            address);
    if (caller && ph_router_abandoned())
        return ph_router_refuse_abandoned(address);
    ph_instance *inst;
    int rc = enter_instance(r, caller, address, (size_t)(dot - address), &inst);
    if (rc)
        return rc;
    bool holds_gate = true;
    const ph_route *rt;
    if ((rc = find_route(inst, address, dot + 1, &rt)))
        goto leave;
    bool admin = caller ? chain_admin : (flags & PH_CALL_ADMIN) != 0;
    if ((rt->flags & PH_ADMIN) && !admin) {
        if (caller) /* package code already ran: 403, so no client resends it blindly */
            rc = ph_error_set(PH_EPERM,
                              "%s is an admin method and package '%s' relayed a call that did "
                              "not come with the admin token; send the admin token with the "
                              "request that starts the chain",
                              address, caller->manifest->name);
        else
            rc = ph_error_set(PH_EAUTH, "%s is an admin method; pass the admin token", address);
        goto leave;
    }
    /* Checked only for a method that exists: unknown addresses never create state. */
    if ((flags & PH_CALL_LIMITED) && r->rate_limit > 0 && !rate_take(rt->stats, r->rate_limit)) {
        rc = ph_error_set(PH_ERATE,
                          "%s is called more than %d times per second ([http] "
                          "rate_limit); retry in a second",
                          address, r->rate_limit);
        goto leave;
    }
    route_copy copy;
    if (w) {
        rt = copy_route(rt, &copy); /* before the call counts as inside: see route_copy */
        if (!watch_enter(w, inst, rt)) {
            rc = ph_error_set(PH_ETIMEOUT, "%s was not started: its caller stopped waiting",
                              address);
            goto leave;
        }
    }
    ph_call_watch *outer_watch = current_watch;
    if (w)
        current_watch = w;
    ph_route_stats *st = rt->stats; /* router-owned: outlives a route table freed meanwhile */
    bool outer_admin = chain_admin;
    chain_admin = admin;
    uint64_t t0 = now_ns();
    size_t text_start = text ? text->len : 0;
    if (text && rt->native_text) {
        ph_frame f;
        ph_frame_push(&f, inst);
        f.what = rt->name;
        rc = rt->native_text(rt->ud, inst, args, text);
        ph_frame_pop(&f);
    } else if (rt->native) {
        ph_frame f;
        ph_frame_push(&f, inst);
        f.what = rt->name;
        rc = rt->native(rt->ud, inst, args, out);
        ph_frame_pop(&f);
    } else {
        rc = invoke_package(rt, address, args, w, out);
    }
    record(st, now_ns() - t0, rc != 0);
    chain_admin = outer_admin;
    current_watch = outer_watch;
    if (w && !(holds_gate = watch_leave(w))) {
        ph_gate_forget(&inst->gate); /* its caller left the gate for it */
        json_decref(*out);
        *out = NULL;
        if (text && !text->failed && text->p) {
            text->len = text_start;
            text->p[text_start] = 0;
        }
        rc = ph_error_set(PH_ETIMEOUT, "%s returned after its caller stopped waiting", address);
    }
    if (text && !rc && *out) { /* a method without a text writer: its value dumped */
        if (json_dump_callback(*out, ph_json_buf_add, text, JSON_COMPACT | JSON_ENCODE_ANY) ||
            text->failed)
            rc = ph_error_set(PH_ENOMEM, "out of memory");
        json_decref(*out);
        *out = NULL;
    }
leave:
    if (holds_gate)
        ph_gate_leave(&inst->gate);
    return rc;
}

int ph_router_call(ph_router *r, ph_instance *caller, const char *address, json_t *args,
                   unsigned flags, json_t **out)
{
    return call_impl(r, caller, address, args, flags, NULL, out, NULL);
}

int ph_router_call_watched(ph_router *r, const char *address, json_t *args, unsigned flags,
                           ph_call_watch *w, json_t **out)
{
    return call_impl(r, NULL, address, args, flags, w, out, NULL);
}

int ph_router_call_text(ph_router *r, const char *address, json_t *args, unsigned flags,
                        ph_call_watch *w, ph_json_buf *out)
{
    json_t *v = NULL;
    return call_impl(r, NULL, address, args, flags, w, &v, out);
}

int ph_router_call_values(ph_router *r, const char *address, ph_value *vals, ph_value *ret)
{
    const char *dot = strchr(address, '.');
    if (!dot)
        return ph_error_set(PH_ENOTFOUND, "'%s' is not an address; use instance.actor.method",
                            address);
    ph_instance *inst;
    int rc = enter_instance(r, NULL, address, (size_t)(dot - address), &inst);
    if (rc)
        return rc;
    const ph_route *rt;
    if ((rc = find_route(inst, address, dot + 1, &rt)))
        goto leave;
    if (!rt->fn) {
        rc = ph_error_set(PH_EINVAL, "%s is a host method; call it with JSON", address);
        goto leave;
    }
    ph_frame f;
    ph_frame_push(&f, inst);
    f.what = rt->name;
    ph_ffi_call(&rt->sig, rt->fn, rt->ctx, vals, ret);
    ph_frame_pop(&f);
    atomic_fetch_add_explicit(&rt->stats->calls, 1, memory_order_relaxed);
    if (f.failed) {
        ph_ffi_result_discard(&rt->sig, ret);
        rc = ph_error_last_code();
    }
leave:
    ph_gate_leave(&inst->gate);
    return rc;
}

const ph_route *ph_router_find(ph_router *r, const char *address)
{
    const char *dot = strchr(address, '.');
    if (!dot)
        return NULL;
    ph_instance *inst = find_instance(r, address, (size_t)(dot - address));
    if (!inst)
        return NULL;
    return routes_find(atomic_load(&inst->routes), dot + 1, strlen(dot + 1));
}

void ph_router_set_manager(ph_router *r, ph_manage_fn fn, void *ud)
{
    r->manage = fn;
    r->manage_ud = ud;
}

int ph_router_manage(ph_router *r, ph_instance *caller, const char *op, const char *name,
                     json_t **out)
{
    *out = NULL;
    /* a change repoints an unchanged build at its new manifest (ph_reload_repoint) meanwhile */
    const ph_manifest *cm = __atomic_load_n(&caller->manifest, __ATOMIC_ACQUIRE);
    if (!cm->manager)
        return ph_error_set(PH_EPERM,
                            "package '%s' may not manage the host; only a package with "
                            "'manager = true' in [package] of its package.ini may",
                            cm->name);
    /* Reading is open; every other operation changes the host and needs the chain's token. */
    bool reads = !strcmp(op, "packages") || !strcmp(op, "info");
    if (!reads && !chain_admin)
        return ph_error_set(PH_EPERM,
                            "package '%s' asked the host to %s '%s' for a caller without the "
                            "admin token; send the admin token with the request",
                            cm->name, op, name ? name : "");
    if (!r->manage)
        return ph_error_set(PH_ESTATE, "host management is not available in this process");
    return r->manage(r->manage_ud, op, name, out);
}
