/*
 * The per-instance gate: lets calls in, holds new calls while a reload swaps
 * the instance's code, and drains the calls already inside.
 *
 * Fast path: no atomic read-modify-write. A caller counts itself in a slot
 * of its own thread (a plain store), then reads `closed`; the rare closer
 * stores `closed` and then makes every running thread of the process pass a
 * memory barrier (membarrier(2), registered once) before it adds up the
 * slots, so a caller and a closer cannot both miss each other (asymmetric
 * Dekker). Where membarrier is unavailable, and in ThreadSanitizer builds
 * (TSan does not model membarrier), both sides use a seq_cst fence instead.
 * A thread inside more gates than it has slots, or a thread leaving for
 * another (an abandoned call), uses the shared counter `inflight`.
 */
#ifndef PH_HOST_GATE_H
#define PH_HOST_GATE_H

#include <pthread.h>
#include <stdatomic.h>

typedef struct ph_gate {
    atomic_long inflight; /* entries not in a thread's slot; may go negative */
    atomic_int closed;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int waiters;
    atomic_long drain_until_ms; /* CLOCK_MONOTONIC ms when the current drain gives up */
} ph_gate;

int ph_gate_init(ph_gate *g);
void ph_gate_destroy(ph_gate *g);
/**
 * Enters the gate, waiting up to `timeout_ms` while it is closed.
 * Returns 0 (caller must ph_gate_leave) or PH_EBUSY.
 */
int ph_gate_enter(ph_gate *g, int timeout_ms);
/**
 * The same for a call: while the gate is closed it waits for the whole
 * drain that closed it and `timeout_ms` more, so a call that arrives during
 * a reload's drain is queued and served by the new build, not refused
 * midway through the drain. Same fast path as ph_gate_enter.
 */
int ph_gate_enter_held(ph_gate *g, int timeout_ms);
/** Enters even if closed: for a thread that is already inside (nested call). */
void ph_gate_enter_nested(ph_gate *g);
/** Leaves; another thread may leave on behalf of a caller (see ph_gate_forget). */
void ph_gate_leave(ph_gate *g);
/**
 * For the thread whose entry another thread already left for it (a call
 * its caller abandoned, ph_router_abandon): forgets that entry on this
 * thread without leaving the gate a second time.
 */
void ph_gate_forget(ph_gate *g);
/**
 * The number of calls inside, as seen now (exact only while the gate is
 * closed and drained; otherwise a snapshot for statistics and idleness).
 */
long ph_gate_inside(ph_gate *g);
/**
 * Closes the gate and waits up to `drain_ms` for the calls inside to leave.
 * Returns 0 with the gate closed and empty, or PH_EBUSY with the gate open
 * again (the drain timed out; the reload must be abandoned, not the calls).
 */
int ph_gate_close(ph_gate *g, int drain_ms);
/** Reopens the gate and wakes the held callers. */
void ph_gate_open(ph_gate *g);

#endif
