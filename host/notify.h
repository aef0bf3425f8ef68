/*
 * The service manager's side of a run (sd_notify(3), systemd's Type=notify
 * protocol through libsystemd): READY=1 once the listener is open and every
 * instance has been brought up, RELOADING=1 ... READY=1 around a SIGHUP,
 * STOPPING=1 at shutdown, STATUS= lines an operator reads in `systemctl
 * status`, and WATCHDOG=1 keep-alives (WatchdogSec=). Every call is a no-op
 * when NOTIFY_SOCKET is unset (not under systemd), so the host runs the same
 * from a shell.
 */
#ifndef PH_NOTIFY_H
#define PH_NOTIFY_H

#include "host.h"

/**
 * Starts the watchdog thread when the service manager asked for one
 * (WATCHDOG_USEC, and WATCHDOG_PID if set names this process): it sends
 * WATCHDOG=1 every half interval while the host's state lock can be taken
 * within the interval, so a host deadlocked on it is restarted, and STATUS=
 * with the start-up progress. Returns 0, or an error when the thread cannot
 * start (the host runs on without it). Call ph_notify_stop before freeing h.
 */
int ph_notify_start(ph_host *h);

/**
 * READY=1 with STATUS="serving N instance(s) on http://ADDR:PORT/"; after a
 * failed configuration reload, `failure` (its first line) is said too:
 * "...; reload failed: WHY (the previous configuration stays)".
 */
void ph_notify_ready(size_t n_instances, const char *addr, int port, const char *failure);

/** RELOADING=1 with MONOTONIC_USEC (systemd.service(5), Type=notify-reload) and STATUS=. */
void ph_notify_reloading(void);

/** STOPPING=1 with STATUS=. */
void ph_notify_stopping(void);

/** Stops and joins the watchdog thread (if any). */
void ph_notify_stop(void);

#endif
