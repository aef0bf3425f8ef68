/*
 * A running instance: a package's code loaded under an instance name with
 * its own parameters, memory, database, gate and routes. The ph_ctx handed
 * to the package is the first member of a ph_version, so the host gets back
 * to the version and instance from a ctx without a lookup.
 */
#ifndef PH_HOST_INSTANCE_H
#define PH_HOST_INSTANCE_H

#include <stdatomic.h>

#include <plughost/sdk.h>

#include "config.h"
#include "gate.h"
#include "loader.h"
#include "manifest.h"

struct ph_router;
struct ph_routes;
struct ph_store;

typedef enum {
    PH_INST_LOADED = 0, /* code loaded and validated, not prepared */
    PH_INST_PREPARED,
    PH_INST_RUNNING,
    PH_INST_STOPPED,
    PH_INST_FAILED,
    PH_INST_SKIPPED,
    PH_INST_DECLINED
} ph_inst_state;

struct ph_instance;

/*
 * One loaded version of an instance's code. Each version has its own ctx
 * and memory, so a new version can be prepared while the old one serves
 * (hot reload); packages receive &version->ctx.
 */
typedef struct ph_version {
    ph_ctx ctx; /* must stay first */
    struct ph_instance *inst;
    ph_module *module;           /* owned */
    void *mem;                   /* descriptor.instance_size zeroed bytes, owned */
    char build[17];              /* build identity (build.h) this version was loaded from */
    const ph_manifest *manifest; /* the manifest it was loaded with (borrowed), or NULL */
    double started;              /* CLOCK_MONOTONIC seconds when it started serving, 0 before */
    int proven;                  /* served through its probation (build.h) */
    ph_kv *params;               /* its own copy of the instance's parameters (ph_param), set by
                                    ph_version_set_params: a reload never changes what its code reads */
    size_t n_params;
    int pins;              /* abandoned calls still running its code (under the pin lock) */
    char pinned_call[128]; /* the address of the last such call ("stuck.slow.hold") */
    int free_pending;      /* freed while pinned: the last unpin frees it */
} ph_version;

typedef struct ph_instance {
    char *name;
    char *mount;
    const ph_manifest *manifest; /* borrowed from the host's manifest set (or the reloader's) */
    ph_version *cur;             /* the version serving calls */
    ph_module *module;           /* == cur->module, kept for convenience */
    ph_kv *params;               /* borrowed from the plan; replaced by a swap (gate closed) */
    size_t n_params;
    _Atomic int state;    /* ph_inst_state */
    char *_Atomic reason; /* why failed/declined/skipped; set with ph_instance_set_reason */
    char **old_reasons;   /* replaced reasons, freed with the instance: readers that
                             loaded the pointer may still use them */
    size_t n_old_reasons;
    pthread_mutex_t reason_mu;
    ph_gate gate;
    struct ph_routes *_Atomic routes; /* swapped only while the gate is closed */
    struct ph_store *store;           /* the instance database, NULL until opened */
    struct ph_router *router;         /* for ph_call */
    const char **callable;            /* packages it may call: own + [requires] + [optional] */
    size_t n_callable;
    /* hot reload bookkeeping (reload.c), read by status outputs */
    unsigned reloads; /* successful swaps */
    unsigned reload_failures;
    long long reload_at;       /* wall-clock time (s since the epoch) of the last reload, 0: none */
    char *reload_error;        /* why the last reload failed; NULL after a success */
    int reload_code;           /* its PH_E* code */
    char bad_hash[17];         /* a build that failed; not retried until the file changes */
    int bad_crashed;           /* bad_hash crashed the host: not retried even when asked (it would
                                  crash it again); only a new build replaces it */
    struct ph_inst_load *load; /* its call counters, owned by the router (outlive it) */
    int pins;                  /* abandoned calls still running in one of its versions */
    int free_pending;          /* freed while pinned: the last unpin frees it */
    int fresh; /* PH_FRESH_*: which first-time callbacks its next start runs (host.c sets it) */
} ph_instance;

/* ph_instance.fresh */
#define PH_FRESH_INSTANCE 0x1 /* never started on this data directory: after_instantiate */
#define PH_FRESH_PACKAGE 0x2  /* its package's after_install has not run: after_install */

/** The instance of a ctx handed out by the host. */
static inline ph_instance *ph_instance_of(ph_ctx *ctx)
{
    return ((ph_version *)ctx)->inst;
}
/** The version of a ctx handed out by the host. */
static inline ph_version *ph_version_of(ph_ctx *ctx)
{
    return (ph_version *)ctx;
}
/** The ctx of the version serving calls: what to pass to package callbacks (model hooks). */
static inline ph_ctx *ph_instance_ctx(ph_instance *inst)
{
    return &inst->cur->ctx;
}

/** Creates a version around a loaded module (takes ownership of `mod`, even on failure). */
int ph_version_new(ph_instance *inst, ph_module *mod, ph_version **out);
/**
 * Frees the version and dlcloses its module; accepts NULL. A pinned version
 * (an abandoned call still runs its code) is freed by its last unpin instead.
 */
void ph_version_free(ph_version *v);
/**
 * Keeps a version's code mapped and its ctx, instance and memory allocated
 * while a call that its caller stopped waiting for still runs in it, after
 * that call left the instance's gate (so a reload can swap it out).
 * Thread-safe.
 */
void ph_version_pin(ph_version *v);
/** The same for an abandoned call of `address` ("inst.actor.method"), named at stop(). */
void ph_version_pin_call(ph_version *v, const char *address);
/** Drops a pin; the last one frees a version (and instance) freed meanwhile. */
void ph_version_unpin(ph_version *v);
/**
 * True while something the host stopped waiting for (an abandoned call, a
 * stop() or lifecycle callback past its time limit) may still run in v's
 * code: stop() must not run under it. Thread-safe.
 */
int ph_version_pinned(ph_version *v);
/**
 * Gives the version its own copy of `params` (what its code reads with
 * ph_param), replacing an earlier one. Call only while its code cannot run
 * (before it serves, or with the gate closed). 0 or PH_ENOMEM.
 */
int ph_version_set_params(ph_version *v, const ph_kv *params, size_t n);
/** Value of the version's parameter `name`, or NULL. */
const char *ph_version_param(const ph_version *v, const char *name);
/**
 * Runs one lifecycle callback of a version; returns PH_OK, PH_DECLINE or
 * PH_FAIL and sets *reason (malloc'd) for the last two.
 */
int ph_version_step(ph_version *v, ph_lifecycle_fn fn, const char *what, char **reason);

/** Creates an instance around a loaded module (takes ownership of `mod`). */
int ph_instance_new(const char *name, const char *mount, const ph_manifest *m, ph_module *mod,
                    ph_kv *params, size_t n_params, ph_instance **out);
/**
 * Frees (the module too); the instance must not be running. Accepts NULL. A
 * pinned instance is freed by the last unpin of its versions instead.
 */
void ph_instance_free(ph_instance *inst);

/**
 * Runs prepare, start, then the lifecycle callbacks after_install (first
 * start of the package), after_instantiate (first start of the instance)
 * and after_mount, before the instance takes calls (inst->fresh).
 * Returns 0 (running), PH_EDECLINED (declined, with the reason) or
 * PH_EPACKAGE (failed, with the package's message; stop has run).
 */
int ph_instance_start(ph_instance *inst);
/**
 * Runs stop if running, within the instance's stop time limit
 * (ph_instance_stop_timeout_ms); the state becomes STOPPED and 0 is
 * returned. Never runs stop() under an abandoned call still running in the
 * build (one past its time limit): then stop() is skipped, the build stays
 * mapped, the state becomes FAILED and PH_EBUSY names the call. A stop()
 * that does not return in time is left running on its own thread: the build
 * stays mapped for good, the state becomes FAILED and PH_ETIMEOUT says so.
 * The reason is recorded either way.
 */
int ph_instance_stop(ph_instance *inst);

/** stop()'s default time limit, and its setter ([limits] stop_timeout in host.ini). */
#define PH_STOP_TIMEOUT_MS 10000
void ph_instance_set_stop_timeout_ms(int ms);
/** The instance's stop() limit: its package.ini [limits] stop_timeout, else the host's. */
int ph_instance_stop_timeout_ms(const ph_instance *inst);
/**
 * Runs v's stop() on a thread of its own and waits up to limit_ms: 0 when
 * it returned, PH_ETIMEOUT (with the message) when it did not; the build is
 * then pinned until it returns.
 */
int ph_version_stop(ph_version *v, int limit_ms);

/** A package function the host runs with a time limit (stop(), the lifecycle callbacks). */
typedef struct ph_limited {
    const char *what; /* its name: the frame's, and the message's "what() did not return" */
    int (*fn)(struct ph_version *v, void *arg); /* calls the package; its return is *status */
    void *arg;                                  /* given to fn; freed by arg_free (also late) */
    void (*arg_free)(void *arg);                /* or NULL */
    const char *consequence; /* the timeout message's "its code stays mapped and <this>" */
    const char *pin_as;      /* what a stop() skipped under it names ("after_mount()"), or NULL */
    bool stop; /* it is stop(): a timeout is kept for status and shutdown (ph_residue_stop_hung) */
} ph_limited;

/**
 * Runs c->fn in a frame of v's instance on a thread of its own (the
 * mechanism of ph_version_stop) and waits up to limit_ms. 0 when it
 * returned: *status is its return, *error the package's ph_error message
 * (malloc'd) or NULL. PH_ETIMEOUT when it did not, with the message
 * "package 'P' build B: WHAT() did not return within N s; ...": the build
 * stays pinned (mapped) until the function returns, and the thread then
 * frees c->arg. c->what must outlive the function (a literal); the other
 * strings are read before this returns.
 */
int ph_version_run_limited(ph_version *v, const ph_limited *c, int limit_ms, int *status,
                           char **error);

const char *ph_inst_state_name(ph_inst_state s);

/**
 * Sets why the instance is not running (copied; NULL clears). Readers may
 * load inst->reason at any time: a replaced text stays valid until the
 * instance is freed.
 */
void ph_instance_set_reason(ph_instance *inst, const char *text);

/** True if inst runs with exactly these parameters (same keys, values and order). */
int ph_instance_params_equal(const ph_instance *inst, const ph_kv *params, size_t n);

/** Value of a parameter, or NULL. */
const char *ph_instance_param(const ph_instance *inst, const char *name);
/** True if `inst` may call instances of package `pkg`. */
int ph_instance_may_call(const ph_instance *inst, const char *pkg);
/**
 * The [optional] dependency of `inst` on `callee`'s package whose range
 * the running version does not meet (the instance runs without it), or
 * NULL: such a dependency may not be called either.
 */
const ph_dep *ph_instance_optional_left_out(const ph_instance *inst, const ph_manifest *callee);

/*
 * Call frames: which instance's code the current thread is running, so the
 * host API knows whose error a ph_error() is, and nested calls back into an
 * instance the thread is already inside pass its gate (no deadlock).
 */
typedef struct ph_frame {
    ph_instance *inst;
    int failed;                   /* the package raised an error (or a ph_call of it failed) */
    const char *what;             /* "actor.method", "prepare", ...: named by the crash report */
    const struct ph_version *ver; /* the build running, when not inst->cur (a reload's new
                                     build in prepare, the old one in save): crash reports
                                     blame it */
    void *escape; /* a sigjmp_buf * back to the method's call (ph_ffi_call), or NULL */
    struct ph_frame *prev;
} ph_frame;

void ph_frame_push(ph_frame *f, ph_instance *inst);
void ph_frame_pop(ph_frame *f);
ph_frame *ph_frame_current(void);
/**
 * Ends the method call of frame `f` (f->escape set) from inside it, as if it
 * had failed: sets the error "package 'x' build B: x.actor.method called
 * `call`; ..." (PH_EPACKAGE) and jumps back to the call. For what a method
 * must not do but the host can survive (pthread_exit: interpose.c).
 */
_Noreturn void ph_frame_escape(ph_frame *f, const char *call);
/** True if the current thread is inside a call of `inst`. */
int ph_frame_inside(const ph_instance *inst);

/** The host API table handed to every package (hostapi.c). */
extern const ph_host_api ph_host_api_v1;
#endif
