/*
 * Prometheus text exposition (format 0.0.4) of the host's counters: per
 * method calls, errors and latency histogram (from each route's
 * ph_route_stats), and the state of every planned instance.
 */
#ifndef PH_HOST_METRICS_H
#define PH_HOST_METRICS_H

#include <stddef.h>

#include "host.h"

/**
 * Renders the metrics of `host`, followed by `extra` (more exposition lines
 * from the caller, e.g. the HTTP server's own counters; may be NULL).
 * On success returns 0 and sets *out (malloc'd, NUL-terminated, caller
 * frees) and *len. PH_ENOMEM otherwise. Thread-safe (reads atomics under
 * the router's read lock).
 */
int ph_metrics_render(ph_host *host, const char *extra, char **out, size_t *len);

#endif
