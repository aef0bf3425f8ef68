/*
 * The host: configuration -> discovery -> resolution -> loading -> running
 * instances behind the router. One ph_host per process.
 */
#ifndef PH_HOST_HOST_H
#define PH_HOST_HOST_H

#include <pthread.h>
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
    ph_instance **insts;    /* indexed like plan.items; NULL where not loaded */
    char *stage_dir;        /* private copies of .so files */
    char *admin_token;      /* NULL until ph_host_load_token */
    ph_manifest **reloaded; /* manifests read by hot reloads (owned) */
    size_t n_reloaded;
    ph_instance **retired; /* unloaded by a configuration reload; freed with the host */
    size_t n_retired;
    ph_manifest_set *old_sets; /* manifests before a configuration reload (kept instances
                                  point into them); freed with the host */
    size_t n_old_sets;
    int stuck;       /* a call did not finish at shutdown: the host is not freed */
    int drain_ms;    /* how long stop/unload/configuration reload wait for calls (10000) */
    char **disabled; /* packages unloaded by management: a configuration reload keeps them off */
    size_t n_disabled;
    pthread_mutex_t change_mu; /* serialises hot reloads and configuration reloads */
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
 * failure makes this return PH_ELOAD after stopping what started.
 */
int ph_host_start(ph_host *h);
/** Stops running instances in reverse order. */
void ph_host_stop(ph_host *h);
void ph_host_free(ph_host *h);

/** State and (if `reason` is not NULL) reason of plan item i for status output. */
const char *ph_host_item_state(const ph_host *h, size_t i, const char **reason);

/**
 * Unloads every instance of package `pkg` from a running host: calls in
 * flight finish, the instances stop, their routes go away and their
 * databases close. Data is kept. Refused (PH_ECONFLICT, naming them) while
 * running instances of other packages depend on it. *n_out counts the
 * instances unloaded.
 */
int ph_host_unload(ph_host *h, const char *pkg, int *n_out);

/**
 * Starts again the instances of `pkg` that ph_host_unload stopped (the
 * package manager's enable). *n_out counts them. PH_EDEPENDENCY if a
 * dependency is not running.
 */
int ph_host_enable(ph_host *h, const char *pkg, int *n_out);

/**
 * Applies a re-read configuration to a running host (SIGHUP): the package
 * directories are read again; instances that are gone or whose package
 * version, mount or parameters changed are stopped and unloaded (their data
 * kept), new and changed ones are loaded and started; the rest keep running
 * untouched. If an instance to stop is still busy after the drain bound,
 * nothing changes (PH_EBUSY). Takes ownership of *cfg (zeroes it). [host]
 * package_dirs/data_dir, [http] and [auth] need a restart: a change there is
 * reported and the running values stay. Returns 0, or an error (nothing
 * changed) when the new configuration cannot be resolved.
 */
int ph_host_reconfigure(ph_host *h, ph_config *cfg);

/**
 * Takes h->change_mu (hot reloads, unload/enable, configuration reloads are
 * serialised by it). PH_ESTATE, without locking, when this thread already
 * holds it: package code run by such a change (prepare/start/stop) asking
 * for another change would otherwise deadlock.
 */
int ph_host_lock_changes(ph_host *h);
void ph_host_unlock_changes(ph_host *h);

/** Reads or creates (0600) the admin token; sets h->admin_token. */
int ph_host_load_token(ph_host *h);

#endif
