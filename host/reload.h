/*
 * Hot reload: swap an instance's code while it serves calls.
 *
 * The swap is a transaction (see README "Hot reload"): the new build is
 * copied to a private path, validated and prepared beside the old version
 * while the old one keeps serving; then the instance's gate closes, calls in
 * flight drain (bounded), the old version stops and hands over its state,
 * the database is migrated if needed, the new version starts and its routes
 * are published, and the gate reopens. Any failure leaves the old version
 * serving with its state and data; the bad build is remembered by hash and
 * not retried until the file changes.
 *
 * A watcher thread (inotify on each package directory) triggers reloads
 * when a package's .so or package.ini changes and has settled.
 */
#ifndef PH_HOST_RELOAD_H
#define PH_HOST_RELOAD_H

#include "host.h"

typedef struct ph_reloader ph_reloader;

/** Timing knobs (milliseconds); defaults: settle 250, drain 10000. */
typedef struct ph_reload_opts {
    int settle_ms;
    int drain_ms;
} ph_reload_opts;

/**
 * Reloads every instance of package `pkg` from its directory now.
 * Serialised with every other reload. Returns 0 when each instance runs the
 * build on disk (swapped, or already running it), else the first error
 * (also recorded in each instance's reload_error). *swapped counts swaps.
 */
int ph_reload_package(ph_host *h, const char *pkg, int *swapped);

/** Starts the watcher thread over the package directories of h's instances. */
int ph_reloader_start(ph_host *h, const ph_reload_opts *opts, ph_reloader **out);
/** Stops and joins the watcher; accepts NULL. */
void ph_reloader_stop(ph_reloader *r);
/** Sets the drain bound used by ph_reload_package (default 10000 ms). */
void ph_reload_set_drain_ms(int ms);

#endif
