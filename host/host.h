/*
 * The host: configuration -> discovery -> resolution -> loading -> running
 * instances behind the router. One ph_host per process.
 */
#ifndef PH_HOST_HOST_H
#define PH_HOST_HOST_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

#include "config.h"
#include "instance.h"
#include "manifest.h"
#include "resolver.h"
#include "router.h"

typedef struct ph_host {
    ph_config cfg;
    ph_manifest_set set;
    ph_plan plan;
    ph_router *router;
    ph_instance **insts;   /* indexed like plan.items; NULL where not loaded */
    char *stage_dir;       /* private copies of .so files */
    char *admin_token;     /* NULL until ph_host_load_token */
    ph_instance **retired; /* taken down by a change; late callers may hold them */
    unsigned *retired_gen; /* generation each was retired in: freed PH_HOST_GRACE changes later */
    size_t n_retired;
    ph_manifest_set *old_sets; /* package sets replaced by a change: running instances may
                                  point into them; freed PH_HOST_GRACE changes after the
                                  last reference went away */
    unsigned *old_gen;         /* last generation each old set was referenced in */
    size_t n_old_sets;
    unsigned generation;            /* changes applied (ph_host_reconcile); atomic reads */
    struct ph_failed_build *failed; /* builds that failed: not retried until they change */
    size_t n_failed;
    int retry_pending; /* a change was abandoned (busy instance): the watcher retries it */
    char retry_instance[PH_NAME_MAX + 1]; /* the busy instance (written before retry_pending) */
    ph_manifest **fallbacks; /* manifests of last good builds started instead of crashing ones */
    size_t n_fallbacks;
    int stuck;       /* a call did not finish at shutdown: the host is not freed */
    int drain_ms;    /* how long stop/unload/configuration reload wait for calls (10000) */
    char **disabled; /* instances disabled by management: every change keeps them off */
    size_t n_disabled;
    pthread_mutex_t change_mu; /* serialises hot reloads and configuration reloads */
    _Atomic size_t starting;   /* instances ph_host_start has yet to bring up (0 once up) */
    /* asked between instances by ph_host_start: true ends the start-up there (a SIGTERM) */
    bool (*start_cancelled)(void);
    pthread_rwlock_t lock;     /* plan and insts: read by status outputs, replaced by
                                  ph_host_reconfigure */
} ph_host;

/**
 * Reads the packages of `cfg` and resolves them. Takes ownership of *cfg
 * (zeroes it). Runs no package code. Problems are in host->plan.problems.
 */
int ph_host_open(ph_config *cfg, ph_host **out);

/**
 * Loads and starts every instance of the plan in order. A failing instance
 * takes down only itself and its dependents (logged); with cfg.strict any
 * failure makes this return PH_ELOAD after stopping what started. The HTTP
 * listener may already serve: until this returns, changes asked for
 * (ph_host_lock_changes) are refused with PH_EBUSY and health is not ready.
 */
int ph_host_start(ph_host *h);
/** Stops running instances in reverse order. */
/**
 * During a shutdown: a second signal of `set` (SIGINT, SIGTERM) ends the
 * process at once, exit status 1, after a log line naming what was still
 * stopping; a stop() past its limit cannot hold the host any longer than
 * that. Starts a detached thread (the signals must be blocked in every
 * thread, as `plughost run` does). 0 or PH_ENOMEM.
 */
int ph_host_exit_on_second_signal(const sigset_t *set);
/** True if the last ph_host_stop left code running (a stop() or a call past its limit). */
int ph_host_stop_incomplete(const ph_host *h);
void ph_host_stop(ph_host *h);
void ph_host_free(ph_host *h);

/** State and (if `reason` is not NULL) reason of plan item i for status output. */
const char *ph_host_item_state(const ph_host *h, size_t i, const char **reason);

/** Changes applied before an unreferenced old package set or retired instance is freed. */
#define PH_HOST_GRACE 8

/**
 * Disables `name` in a running host: an instance name acts on that
 * instance only, a package name on every instance of the package. Calls in
 * flight finish, the instances stop, their routes go away and their
 * databases close; data is kept and the instances stay disabled across
 * every change until ph_host_enable. Refused (PH_ECONFLICT, naming it)
 * while a running instance of another package depends on one of them.
 * *n_out counts the instances disabled.
 */
int ph_host_unload(ph_host *h, const char *name, int *n_out);

/**
 * Enables `name` (instance or package, as above) again: the instances are
 * loaded from the build on disk now and started, and so are dependents that
 * were skipped because of them. *n_out counts the instances running
 * afterwards. PH_EDEPENDENCY if a dependency is not running; the instance's
 * own failure otherwise.
 */
int ph_host_enable(ph_host *h, const char *name, int *n_out);

/** What one change did (ph_host_reconcile). */
typedef struct ph_change_counts {
    int kept, swapped, started, stopped, failed;
} ph_change_counts;

/**
 * The one path by which a running host's packages change. Reads the package
 * directories again and resolves them with `cfg` (a re-read host.ini, owned
 * and zeroed; NULL keeps the running configuration), then, per instance:
 *   - running, same package and mount: kept; hot-swapped (ph_reload_swap)
 *     when its build identity (build.h) or its parameters changed;
 *   - new, or failed/declined/skipped before: started, unless the build on
 *     disk is the one that already failed (not retried until it changes,
 *     or `force` names it: an instance name, a package name, or "*");
 *   - gone (package removed, instance dropped from the config): stopped;
 *   - disabled by management: left off.
 * Without `cfg`, a change that would stop a running instance because of
 * another package (e.g. a major version its dependents do not accept) is
 * refused as a whole (PH_EDEPENDENCY naming both and what to do) and
 * nothing changes. PH_EBUSY when an instance to stop is still busy after
 * the drain bound (nothing changed; the watcher retries). *counts may be
 * NULL. Serialised with every other change (ph_host_lock_changes).
 */
int ph_host_reconcile(ph_host *h, ph_config *cfg, const char *force, ph_change_counts *counts);

/**
 * Applies a re-read configuration to a running host (SIGHUP):
 * ph_host_reconcile(h, cfg, "*", NULL) — failed builds are retried. If an instance to stop is still
 * busy after the drain bound, nothing changes (PH_EBUSY). Takes ownership of *cfg (zeroes it).
 * [host] package_dirs/data_dir, [http] and [auth] need a restart: a change there is reported and
 * the running values stay. Returns 0, or an error (nothing changed) when the new configuration
 * cannot be resolved.
 */
int ph_host_reconfigure(ph_host *h, ph_config *cfg);

/** Open descriptors of this process (a read of /proc/self/fd), or 0 when it cannot tell. */
long ph_host_open_fds(void);

/** True if management disabled instance `name` (ph_host_unload). */
int ph_host_is_disabled(const ph_host *h, const char *name);

/**
 * Takes h->change_mu (hot reloads, unload/enable, configuration reloads are
 * serialised by it). PH_ESTATE, without locking, when this thread already
 * holds it: package code run by such a change (prepare/start/stop) asking
 * for another change would otherwise deadlock. PH_EBUSY while ph_host_start
 * brings the instances up (the message says how far it got).
 */
int ph_host_lock_changes(ph_host *h);
void ph_host_unlock_changes(ph_host *h);

/**
 * Marks the builds of running instances that served through their
 * probation (PH_PROBATION_S) as proven (build.h); called about once a
 * second by the watcher, and for every running build at a clean stop.
 */
void ph_host_prove_builds(ph_host *h);

/** Reads or creates (0600) the admin token; sets h->admin_token. */
int ph_host_load_token(ph_host *h);

#endif
