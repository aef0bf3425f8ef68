/*
 * Hot reload: swap an instance's code while it serves calls.
 *
 * The swap is a transaction (see README "Hot reload"): the new build is
 * checked (complete ELF, nothing glibc cannot unload), copied to a private
 * path, validated and prepared beside the old version while the old one
 * keeps serving; then the instance's gate closes, calls in flight drain
 * (bounded), the old version stops and hands over its state, the database
 * is migrated if needed, the new version starts and its routes are
 * published, and the gate reopens. Any failure leaves the old version
 * serving with its state and data; the bad build (the .so together with its
 * package.ini) is remembered and not retried until either file changes.
 *
 * A watcher thread (inotify on the package directories, each package's
 * directory and its sql/) applies a change (ph_host_reconcile) once files
 * have settled: new, replaced and removed packages, new builds, changed
 * manifests and upgrade scripts.
 *
 * Thread-safety: reloads are serialised by one process-wide mutex; every
 * function here may be called from any thread.
 */
#ifndef PH_HOST_RELOAD_H
#define PH_HOST_RELOAD_H

#include "host.h"

typedef struct ph_reloader ph_reloader;

/**
 * Timing knobs (milliseconds); 0 means the default: settle 250 (quiet time
 * after the last file event, then two stats 100 ms apart must agree),
 * drain 10000 (see ph_reload_set_drain_ms), rescan 30000 (stat-compare every
 * package even without events: queues overflow, NFS sends none).
 */
typedef struct ph_reload_opts {
    int settle_ms;
    int drain_ms;
    int rescan_ms;
} ph_reload_opts;

/**
 * Applies the package directories to the running host now, retrying the
 * instances of `name` (a package or an instance name) even where their
 * build failed before: ph_host_reconcile(h, NULL, name, ...). *swapped
 * counts instances swapped or started. Must not be called from inside a
 * call of the package (refused with PH_ESTATE: the drain would wait for
 * the caller itself).
 */
int ph_reload_package(ph_host *h, const char *name, int *swapped);

/**
 * Hot-swaps running instance `inst` to the build of `nm` with parameters
 * `params` (borrowed: they must live as long as the version serves; the
 * plan owns them) and build identity `build` (build.h): the transaction
 * described above. The new build's declared interface must keep
 * everything of the old one unless its major version changed (semver,
 * interface.h). Returns 0 (swapped), 1 (nothing to do: same build and
 * parameters, or a build that failed before and `force` is 0) or an error
 * (the old version keeps serving with its state; recorded as the
 * instance's reload_error). Called by ph_host_reconcile with the change
 * lock held.
 */
int ph_reload_swap(ph_host *h, ph_instance *inst, const ph_manifest *nm, ph_kv *params,
                   size_t n_params, const char *build, int force);

/** Records the current error (ph_error_last) as inst's last reload failure. */
void ph_reload_fail(ph_instance *inst);

/** Points a running instance at an equal manifest (same build) of a newer package set. */
void ph_reload_repoint(ph_instance *inst, const ph_manifest *m);

/** Starts the watcher thread over h's package directories; it follows every change. */
int ph_reloader_start(ph_host *h, const ph_reload_opts *opts, ph_reloader **out);
/** Stops and joins the watcher; accepts NULL. */
void ph_reloader_stop(ph_reloader *r);
/** Sets the drain bound used by ph_reload_package (default 10000 ms). */
void ph_reload_set_drain_ms(int ms);

/** A consistent snapshot of an instance's reload bookkeeping. */
typedef struct ph_reload_info {
    unsigned reloads;    /* successful swaps */
    unsigned failures;   /* failed attempts */
    char *error;         /* why the last attempt failed (malloc'd), NULL after a success */
    int code;            /* its PH_E* code, 0 after a success */
    char build[17];      /* hash of the build serving */
    double last_hold_ms; /* gate-closed time of the last successful swap, 0 if none */
    long long at;        /* wall-clock time (s since the epoch) of the last reload, either
                            result; 0 if none */
} ph_reload_info;

/**
 * Copies inst's reload bookkeeping into *out; the caller frees out->error.
 * Status outputs (/_/packages, metrics) read through this, never the
 * instance fields directly: a reload rewrites them from another thread.
 * Returns 0 or PH_ENOMEM.
 */
int ph_reload_info_get(ph_instance *inst, ph_reload_info *out);

#endif
