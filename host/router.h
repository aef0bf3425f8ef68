/*
 * The registry and router: every caller (CLI, HTTP, another package) reaches
 * a method by its address "instance.actor.method" through ph_router_call.
 *
 * Routes are either package methods (called through libffi with a cif built
 * once at registration) or native methods implemented by the host (the
 * generated CRUD actors). Each instance's routes form one immutable table,
 * replaced as a whole while the instance's gate is closed (hot reload).
 */
#ifndef PH_HOST_ROUTER_H
#define PH_HOST_ROUTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <jansson.h>
#include <plughost/sdk.h>

#include "ffi_call.h"
#include "instance.h"
#include "jsonout.h"

typedef struct ph_router ph_router;

/**
 * A host-implemented method. `args` is the caller's JSON (object, array or
 * NULL), borrowed. Returns 0 and sets *out (owned by the router), or a
 * negative PH_E* code with ph_error_set() detail.
 */
typedef int (*ph_native_fn)(void *ud, ph_instance *inst, json_t *args, json_t **out);

/**
 * A host-implemented method that appends its result as JSON text (what
 * dumping ph_native_fn's *out with JSON_COMPACT | JSON_ENCODE_ANY gives) to
 * `out`, for callers that want text: no jansson value is built. Optional
 * beside the route's ph_native_fn; same errors.
 */
typedef int (*ph_native_text_fn)(void *ud, ph_instance *inst, json_t *args, ph_json_buf *out);

/** Latency histogram bucket upper bounds in seconds (plus +Inf). */
#define PH_LAT_BUCKETS 12
extern const double ph_lat_bounds[PH_LAT_BUCKETS];

typedef struct ph_route_stats {
    pthread_mutex_t rate_mu; /* guards the token bucket below */
    double rate_tokens;
    double rate_last; /* seconds, CLOCK_MONOTONIC; 0 before the first limited call */
    atomic_ulong calls;
    atomic_ulong errors;        /* failed with a 5xx status: host or package faults */
    atomic_ulong client_errors; /* refused with a 4xx status: the caller's mistake */
    atomic_ulong buckets[PH_LAT_BUCKETS + 1];
    atomic_ulong sum_ns;
} ph_route_stats;

typedef struct ph_route {
    char *name; /* "actor.method" */
    char *actor;
    char *method;
    ph_instance *inst;
    ph_ctx *ctx; /* the version whose code `fn` is (package methods) */
    /* what the route declares (for listings and OpenAPI) */
    const ph_arg *args;
    uint32_t n_args;
    ph_type ret;
    uint32_t flags; /* PH_ADMIN */
    const char *doc;
    const ph_model *model; /* CRUD routes: the model whose fields they take */
    /* how it is called */
    void (*fn)(void); /* package method, or NULL */
    ph_sig sig;
    ph_native_fn native;
    ph_native_text_fn native_text; /* or NULL: text callers get native's value dumped */
    void *ud;
    ph_route_stats *stats; /* shared by the versions of an instance's route */
    int timeout_ms;        /* the method's time limit from package.ini [limits]; 0: the default */
} ph_route;

/*
 * An instance's calls as its callers' limits see them: kept by name for the
 * router's lifetime (an instance replaced by a reload keeps counting on), so
 * a call that outlives its instance object can still be counted out.
 */
typedef struct ph_inst_load {
    atomic_int running;     /* calls handed to a worker and not yet returned */
    atomic_ulong timed_out; /* callers answered 504: the call ran past its time limit */
    atomic_ulong refused;   /* calls refused with 503: the instance was at its limit */
} ph_inst_load;

/*
 * A call whose caller may stop waiting for it (the HTTP time limit). Zeroed
 * by the caller; ph_router_call_watched fills it once the call is inside its
 * instance, and the waiting side calls ph_router_abandon when it gives up.
 */
enum {
    PH_WATCH_OUTSIDE = 0,
    PH_WATCH_INSIDE,
    PH_WATCH_DONE,
    PH_WATCH_ABANDONING,
    PH_WATCH_ABANDONED
};
typedef struct ph_call_watch {
    atomic_int state;       /* PH_WATCH_* */
    atomic_int limit_ms;    /* the method's own time limit (package.ini), 0: the caller's default */
    ph_instance *inst;      /* set before state becomes INSIDE */
    struct ph_version *ver; /* the build the call runs */
    char address[128];      /* "instance.actor.method", set with ver: named if stop() must wait */
} ph_call_watch;

/** Call flags. */
#define PH_CALL_ADMIN 0x1u   /* the caller holds the admin token */
#define PH_CALL_LIMITED 0x2u /* subject to the per-method rate limit (HTTP callers) */

int ph_router_new(ph_router **out);
/** Frees the router and every route table; instances are not freed. */
void ph_router_free(ph_router *r);

/** Adds an instance (by name) so it can be called; routes come from ph_router_publish. */
int ph_router_add_instance(ph_router *r, ph_instance *inst);
/** Removes an instance by name; its gate must be closed and drained. */
void ph_router_remove_instance(ph_router *r, const char *name);
/** The instance called `name`, or NULL. Borrowed. */
ph_instance *ph_router_instance(ph_router *r, const char *name);

/** A set of routes being built for one instance. */
typedef struct ph_routes ph_routes;
int ph_routes_new(ph_instance *inst, ph_routes **out);
void ph_routes_free(ph_routes *t);
/** Adds every actor method of a version's descriptor (prepares each cif). */
int ph_routes_add_package(ph_routes *t, ph_version *ver);
/** Gives the native route actor.method (added before) a JSON text writer. 0 or PH_ENOTFOUND. */
int ph_routes_set_text(ph_routes *t, const char *actor, const char *method, ph_native_text_fn fn);
/** Adds a host-implemented method; `args` etc. describe it (borrowed, must outlive the table). */
int ph_routes_add_native(ph_routes *t, const char *actor, const char *method, const ph_arg *args,
                         uint32_t n_args, ph_type ret, uint32_t flags, const char *doc,
                         const ph_model *model, ph_native_fn fn, void *ud);
/**
 * Installs `t` as the instance's routes (taking ownership) and frees the
 * previous table. Callers must hold the instance's gate closed unless the
 * instance was never callable.
 */
void ph_router_publish(ph_router *r, ph_instance *inst, ph_routes *t);

/**
 * Calls `address` with JSON `args` (object, array or NULL; borrowed).
 * `caller` is the calling instance (package-to-package) or NULL (CLI/HTTP).
 * On success returns 0 and sets *out (caller owns it). On failure returns a
 * negative code: PH_ENOTFOUND (no such instance/method), PH_EPERM (the
 * caller does not depend on the target's package, or relays a call to an
 * admin method for a chain whose outermost call lacked PH_CALL_ADMIN: the
 * package's code already ran, so it is not "send credentials and retry"),
 * PH_EAUTH (admin method called directly without PH_CALL_ADMIN), PH_EARGS (names the parameter),
 * PH_EPACKAGE (the package's own error word and message), PH_EBUSY (reload hold timed out),
 * PH_ESTATE (instance not running); detail in ph_error_last().
 */
int ph_router_call(ph_router *r, ph_instance *caller, const char *address, json_t *args,
                   unsigned flags, json_t **out);

/**
 * ph_router_call for a caller outside the host (CLI, HTTP) that may stop
 * waiting: `w` (zeroed, owned by the caller, valid until this returns) tells
 * the waiting side where the call is. When the call returns after
 * ph_router_abandon, its result is dropped and PH_ETIMEOUT returned.
 */
int ph_router_call_watched(ph_router *r, const char *address, json_t *args, unsigned flags,
                           ph_call_watch *w, json_t **out);
/**
 * ph_router_call_watched (`w` may be NULL) for a caller that sends the
 * result on as JSON text (HTTP): appends the result to `out` as
 * JSON_COMPACT | JSON_ENCODE_ANY text. A host method with a text writer
 * (CRUD get) writes it without building jansson values. On an error `out`
 * is left as it was (or failed, when memory ran out).
 */
int ph_router_call_text(ph_router *r, const char *address, json_t *args, unsigned flags,
                        ph_call_watch *w, ph_json_buf *out);
/**
 * Gives up on a watched call, from another thread. A call not yet inside
 * its instance will not run; a call inside leaves the instance's gate now
 * (a reload no longer waits for it) and pins its build, which stays mapped
 * until the call returns. Returns false if the call has already returned.
 */
bool ph_router_abandon(ph_call_watch *w);
/**
 * True while this thread runs a call abandoned by its caller: host services
 * (ph_call, the database) then refuse with PH_ETIMEOUT and this message.
 */
bool ph_router_abandoned(void);
/** Sets the PH_ETIMEOUT error host services return to an abandoned call; returns the code. */
int ph_router_refuse_abandoned(const char *what);
/** The call counters of the instance called `name`, or NULL (unknown, out of memory). */
ph_inst_load *ph_router_load(ph_router *r, const char *name);

/**
 * True while the current thread runs a call chain that started with the
 * admin token (PH_CALL_ADMIN on the outermost ph_router_call). Calls made by
 * packages inherit it: an admin method (PH_ADMIN) or a changing management
 * operation is reachable from a package only inside such a chain.
 */
bool ph_router_chain_admin(void);

/**
 * Typed call without JSON: resolves `address` and calls the package method
 * with `vals` (count and types per the route's declaration), raw result in
 * *ret. For benchmarks and hosts embedding plughost.
 */
int ph_router_call_values(ph_router *r, const char *address, ph_value *vals, ph_value *ret);

/** Visits every route of every running instance (under the router's read lock). */
typedef void (*ph_route_visit_fn)(const ph_route *route, void *ud);
void ph_router_each(ph_router *r, ph_route_visit_fn fn, void *ud);
/** Visits every instance added to the router. */
typedef void (*ph_instance_visit_fn)(ph_instance *inst, void *ud);
void ph_router_each_instance(ph_router *r, ph_instance_visit_fn fn, void *ud);
/** Looks up a route of an instance; borrowed, valid while the instance's gate is not swapped. */
const ph_route *ph_router_find(ph_router *r, const char *address);

/**
 * Host management reachable from packages (ph_manage_host in the SDK): the
 * host installs the implementation, so the router needs no knowledge of it.
 */
typedef int (*ph_manage_fn)(void *ud, const char *op, const char *name, json_t **out);
void ph_router_set_manager(ph_router *r, ph_manage_fn fn, void *ud);
/**
 * Runs a management operation for `caller`, which must be an instance of a
 * package with `manager = true`; PH_EPERM otherwise, PH_ESTATE if no
 * implementation is installed. Operations other than "packages" and "info"
 * change the host and also need ph_router_chain_admin() (PH_EPERM).
 */
int ph_router_manage(ph_router *r, ph_instance *caller, const char *op, const char *name,
                     json_t **out);

/**
 * Calls per second each method accepts from PH_CALL_LIMITED callers (0, the
 * default: no limit); past it ph_router_call returns PH_ERATE.
 */
void ph_router_set_rate_limit(ph_router *r, int per_second);

/** Milliseconds a call waits at a closed gate before PH_EBUSY (default 5000). */
void ph_router_set_hold_ms(ph_router *r, int ms);

#endif
