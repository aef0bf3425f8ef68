#include "gate.h"

#include <errno.h>
#include <time.h>

#include "error.h"

int ph_gate_init(ph_gate *g)
{
    atomic_init(&g->inflight, 0);
    atomic_init(&g->closed, 0);
    atomic_init(&g->drain_until_ms, 0);
    g->waiters = 0;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&g->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc)
        return ph_error_set(PH_ENOMEM, "cannot create gate condition");
    if (pthread_mutex_init(&g->mu, NULL)) {
        pthread_cond_destroy(&g->cv);
        return ph_error_set(PH_ENOMEM, "cannot create gate mutex");
    }
    return 0;
}

void ph_gate_destroy(ph_gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void ph_gate_leave(ph_gate *g)
{
    /* The last call out of a closed gate wakes the reloader. */
    if (atomic_fetch_sub(&g->inflight, 1) == 1 && atomic_load(&g->closed)) {
        pthread_mutex_lock(&g->mu);
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
    }
}

static int enter(ph_gate *g, int timeout_ms, int through_drain);

int ph_gate_enter(ph_gate *g, int timeout_ms)
{
    return enter(g, timeout_ms, 0);
}

int ph_gate_enter_held(ph_gate *g, int timeout_ms)
{
    return enter(g, timeout_ms, 1);
}

/* Milliseconds until the drain that closed the gate gives up (0 if past). */
static long drain_left_ms(ph_gate *g)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long left =
        atomic_load(&g->drain_until_ms) - ((long)now.tv_sec * 1000 + now.tv_nsec / 1000000L);
    return left > 0 ? left : 0;
}

static int enter(ph_gate *g, int timeout_ms, int through_drain)
{
    struct timespec deadline;
    int have_deadline = 0;
    for (;;) {
        atomic_fetch_add(&g->inflight, 1);
        if (!atomic_load(&g->closed))
            return 0;
        ph_gate_leave(g);
        if (!have_deadline) {
            /* held: for the whole drain, then timeout_ms more (for the swap itself) */
            deadline_in(&deadline, timeout_ms + (through_drain ? (int)drain_left_ms(g) : 0));
            have_deadline = 1;
        }
        pthread_mutex_lock(&g->mu);
        int rc = 0;
        g->waiters++;
        while (atomic_load(&g->closed) && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&g->cv, &g->mu, &deadline);
        g->waiters--;
        pthread_mutex_unlock(&g->mu);
        if (rc == ETIMEDOUT && atomic_load(&g->closed))
            return PH_EBUSY;
    }
}

void ph_gate_enter_nested(ph_gate *g)
{
    atomic_fetch_add(&g->inflight, 1);
}

int ph_gate_close(ph_gate *g, int drain_ms)
{
    struct timespec deadline;
    deadline_in(&deadline, drain_ms);
    atomic_store(&g->drain_until_ms, (long)deadline.tv_sec * 1000 + deadline.tv_nsec / 1000000L);
    pthread_mutex_lock(&g->mu);
    atomic_store(&g->closed, 1);
    int rc = 0;
    long inside;
    /*
     * Decided inside the loop: once inflight has been seen at 0 with the
     * gate closed, no call can get past it. A later look could count a
     * caller that is only probing the closed gate (it adds, sees closed,
     * subtracts) and misreport a drain that succeeded as stuck.
     */
    while ((inside = atomic_load(&g->inflight)) > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &deadline);
    pthread_mutex_unlock(&g->mu);
    if (inside > 0) {
        ph_gate_open(g);
        return ph_error_set(PH_EBUSY, "%ld call(s) still running after %d ms", inside, drain_ms);
    }
    return 0;
}

void ph_gate_open(ph_gate *g)
{
    pthread_mutex_lock(&g->mu);
    atomic_store(&g->closed, 0);
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}
