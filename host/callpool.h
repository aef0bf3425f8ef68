/*
 * The call pool: threads that run package calls for callers that must not
 * wait for them (the HTTP server's threads answer the host's own endpoints
 * while package calls run here).
 *
 * Threads are started when a job finds none idle, up to a maximum, and stay
 * for the next jobs. A job that never returns keeps its thread: the pool
 * never kills or joins a thread that runs package code.
 */
#ifndef PH_HOST_CALLPOOL_H
#define PH_HOST_CALLPOOL_H

#include <stddef.h>

typedef struct ph_callpool ph_callpool;
typedef void (*ph_job_fn)(void *arg);

/** A pool of at most `max_threads` threads (none started yet). 0 or PH_ENOMEM. */
int ph_callpool_new(size_t max_threads, ph_callpool **out);
/**
 * Runs fn(arg) on a pool thread. 0, or PH_ELIMIT when every thread is busy
 * and no other may start (nothing was run; the caller still owns arg).
 * Thread-safe.
 */
int ph_callpool_submit(ph_callpool *p, ph_job_fn fn, void *arg);
/** Threads running a job now. */
size_t ph_callpool_busy(ph_callpool *p);
/** Threads started so far. */
size_t ph_callpool_threads(ph_callpool *p);
/**
 * Stops the idle threads and frees the pool once every job has returned,
 * waiting up to `wait_ms` for them. Returns the number of jobs still running
 * (the pool is then left allocated for them to finish into). Accepts NULL.
 */
size_t ph_callpool_free(ph_callpool *p, int wait_ms);

#endif
