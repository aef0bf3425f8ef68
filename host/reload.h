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
 * A watcher thread (inotify on each package directory) triggers reloads
 * when a package's .so or package.ini changes and has settled.
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
 * Reloads every instance of package `pkg` from its directory now.
 * Serialised with every other reload. Returns 0 when each instance runs the
 * build on disk (swapped, already running it, or a build already known bad),
 * else the first error (also recorded in each instance's reload_error, see
 * ph_reload_info_get). *swapped counts swaps.
 * Must not be called from inside a call of `pkg` (refused with PH_ESTATE:
 * the drain would wait for the caller itself).
 */
int ph_reload_package(ph_host *h, const char *pkg, int *swapped);

/** Starts the watcher thread over the package directories of h's instances. */
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
    char build[17];      /* hash of the build serving */
    double last_hold_ms; /* gate-closed time of the last successful swap, 0 if none */
} ph_reload_info;

/**
 * Copies inst's reload bookkeeping into *out; the caller frees out->error.
 * Status outputs (/_/packages, metrics) read through this, never the
 * instance fields directly: a reload rewrites them from another thread.
 * Returns 0 or PH_ENOMEM.
 */
int ph_reload_info_get(ph_instance *inst, ph_reload_info *out);

#endif
