#include "gate.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

#if defined(__SANITIZE_THREAD__)
#define PH_GATE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PH_GATE_TSAN 1
#endif
#endif

/* Gates one thread can be inside at once through its slots; deeper nesting uses `inflight`. */
#define PH_GATE_SLOTS 8

/*
 * One thread's entries, a stack in call order: slot[depth - 1] is the gate
 * it entered last, the one it leaves first. Each entry is one slot holding
 * the gate (nested entries of one gate take a slot each), so a closer
 * counts the slots equal to its gate and never reads a half-written entry.
 * A slot is written only by its thread (relaxed stores: plain moves);
 * `depth` is read only by its thread. An entry left out of order leaves a
 * hole (NULL) that the stack drops when it reaches it.
 */
typedef struct gate_reader {
    _Atomic(ph_gate *) slot[PH_GATE_SLOTS];
    int depth;
    struct gate_reader *prev, *next;
} gate_reader;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t reader_key;
static pthread_mutex_t readers_mu = PTHREAD_MUTEX_INITIALIZER;
static gate_reader *readers; /* every thread that has entered a gate and still runs */
static bool expedited;       /* membarrier registered: callers need only a compiler barrier */
static _Thread_local gate_reader *me;

static void reader_exit(void *p)
{
    gate_reader *r = p;
    /*
     * A thread that ends inside a gate (it never should) keeps counting
     * there; moved before the slots go, so a closer counts it twice, never
     * not at all.
     */
    for (int i = 0; i < PH_GATE_SLOTS; i++) {
        ph_gate *g = atomic_load(&r->slot[i]);
        if (g)
            atomic_fetch_add(&g->inflight, 1);
    }
    pthread_mutex_lock(&readers_mu);
    if (r->prev)
        r->prev->next = r->next;
    else
        readers = r->next;
    if (r->next)
        r->next->prev = r->prev;
    pthread_mutex_unlock(&readers_mu);
    me = NULL; /* called on its own thread: a later entry (another destructor) starts afresh */
    free(r);
}

static void gate_once(void)
{
    if (pthread_key_create(&reader_key, reader_exit))
        abort(); /* only when the process is out of keys at start-up */
#ifndef PH_GATE_TSAN
    expedited = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
}

/* Between a caller's store to its slot and its load of `closed`. */
static inline void light_barrier(void)
{
    if (expedited)
        atomic_signal_fence(memory_order_seq_cst);
    else
        atomic_thread_fence(memory_order_seq_cst);
}

/* Between a closer's store to `closed` and its reading of the slots. */
static void heavy_barrier(void)
{
    if (!expedited || syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
        atomic_thread_fence(memory_order_seq_cst);
}

static gate_reader *reader_get(void)
{
    if (me)
        return me;
    pthread_once(&once, gate_once);
    gate_reader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL; /* the shared counter serves this thread */
    pthread_mutex_lock(&readers_mu);
    r->next = readers;
    if (readers)
        readers->prev = r;
    readers = r;
    pthread_mutex_unlock(&readers_mu);
    if (pthread_setspecific(reader_key, r)) {
        reader_exit(r);
        return NULL;
    }
    return me = r;
}

static ph_gate *slot_get(gate_reader *r, int i)
{
    return atomic_load_explicit(&r->slot[i], memory_order_relaxed);
}

/* count_in when this thread has no record yet or its slots are full. */
static __attribute__((noinline)) void count_in_slow(ph_gate *g)
{
    gate_reader *r = reader_get();
    if (r && r->depth < PH_GATE_SLOTS)
        atomic_store_explicit(&r->slot[r->depth++], g, memory_order_relaxed);
    else
        atomic_fetch_add(&g->inflight, 1);
}

/* Counts this thread in g: in its slots, or in the shared counter when they are full. */
static inline void count_in(ph_gate *g)
{
    gate_reader *r = me;
    int d;
    if (__builtin_expect(r && (d = r->depth) < PH_GATE_SLOTS, 1)) {
        atomic_store_explicit(&r->slot[d], g, memory_order_relaxed);
        r->depth = d + 1;
    } else {
        count_in_slow(g);
    }
}

/* count_out when g is not on top: an entry left out of order, or holes on top. */
static __attribute__((noinline)) bool count_out_slow(gate_reader *r, ph_gate *g)
{
    while (r->depth && !slot_get(r, r->depth - 1))
        r->depth--; /* holes left by entries that left out of order */
    int i = r->depth - 1;
    while (i >= 0 && slot_get(r, i) != g)
        i--;
    if (i < 0)
        return false;
    atomic_store_explicit(&r->slot[i], NULL, memory_order_release);
    while (r->depth && !slot_get(r, r->depth - 1))
        r->depth--;
    return true;
}

/*
 * Counts this thread out of g; false if it was counted in the shared
 * counter. The release store orders what the call did inside before a
 * closer's count that no longer sees it.
 */
static inline bool count_out(ph_gate *g)
{
    gate_reader *r = me;
    if (!r)
        return false;
    int d = r->depth;
    if (__builtin_expect(d > 0 && slot_get(r, d - 1) == g, 1)) {
        atomic_store_explicit(&r->slot[d - 1], NULL, memory_order_release);
        r->depth = d - 1;
        return true;
    }
    return count_out_slow(r, g);
}

int ph_gate_init(ph_gate *g)
{
    pthread_once(&once, gate_once);
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

/* A closer may be waiting for the call that left: lets it count again. */
static __attribute__((noinline)) void wake_closer(ph_gate *g)
{
    pthread_mutex_lock(&g->mu);
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

void ph_gate_leave(ph_gate *g)
{
    if (count_out(g))
        light_barrier();
    else
        atomic_fetch_sub(&g->inflight, 1);
    if (atomic_load_explicit(&g->closed, memory_order_acquire))
        wake_closer(g);
}

void ph_gate_forget(ph_gate *g)
{
    gate_reader *r = me;
    int i = r ? r->depth - 1 : -1;
    while (i >= 0 && slot_get(r, i) != g)
        i--;
    if (i < 0)
        return; /* the entry was in the shared counter, which the other thread left */
    /* Moved to the shared counter first: the sum may read one high, never low. */
    atomic_fetch_add(&g->inflight, 1);
    count_out(g);
}

/* The gate was closed: waits for it to open and enters then. */
/* Milliseconds until the drain that closed the gate gives up (0 if past). */
static long drain_left_ms(ph_gate *g)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long left =
        atomic_load(&g->drain_until_ms) - ((long)now.tv_sec * 1000 + now.tv_nsec / 1000000L);
    return left > 0 ? left : 0;
}

static __attribute__((noinline)) int enter_slow(ph_gate *g, int timeout_ms, int through_drain)
{
    struct timespec deadline;
    int have_deadline = 0;
    for (;;) {
        ph_gate_leave(g); /* counted in, found closed: out again before waiting */
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
        count_in(g);
        light_barrier();
        if (!atomic_load_explicit(&g->closed, memory_order_acquire))
            return 0;
    }
}

int ph_gate_enter(ph_gate *g, int timeout_ms)
{
    count_in(g);
    light_barrier();
    if (!atomic_load_explicit(&g->closed, memory_order_acquire))
        return 0;
    return enter_slow(g, timeout_ms, 0);
}

int ph_gate_enter_held(ph_gate *g, int timeout_ms)
{
    count_in(g);
    light_barrier();
    if (!atomic_load_explicit(&g->closed, memory_order_acquire))
        return 0;
    return enter_slow(g, timeout_ms, 1);
}

void ph_gate_enter_nested(ph_gate *g)
{
    count_in(g);
}

long ph_gate_inside(ph_gate *g)
{
    long n = 0;
    pthread_mutex_lock(&readers_mu);
    for (gate_reader *r = readers; r; r = r->next)
        for (int i = 0; i < PH_GATE_SLOTS; i++)
            n += atomic_load_explicit(&r->slot[i], memory_order_acquire) == g;
    pthread_mutex_unlock(&readers_mu);
    /*
     * Read after the slots: an entry moves from a slot to the shared counter
     * (ph_gate_forget, a thread's end) counter first, so it is seen in one
     * place or both, never in neither.
     */
    return n + atomic_load(&g->inflight);
}

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

int ph_gate_close(ph_gate *g, int drain_ms)
{
    struct timespec deadline, now, next;
    deadline_in(&deadline, drain_ms);
    atomic_store(&g->drain_until_ms, (long)deadline.tv_sec * 1000 + deadline.tv_nsec / 1000000L);
    pthread_once(&once, gate_once);
    pthread_mutex_lock(&g->mu);
    atomic_store(&g->closed, 1);
    heavy_barrier();
    long inside;
    /*
     * Decided inside the loop: once the calls inside have been counted at 0
     * with the gate closed, no call can get past it. A later look could
     * count a caller that is only probing the closed gate (it counts itself
     * in, sees closed, counts itself out) and misreport a drain that
     * succeeded as stuck. Every call that leaves a closed gate wakes the
     * closer to count again; the count is also retaken every 5 ms, so a
     * wake-up lost to a path nobody foresaw costs 5 ms, not the drain.
     */
    while ((inside = ph_gate_inside(g)) > 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!before(&now, &deadline))
            break;
        deadline_in(&next, 5);
        pthread_cond_timedwait(&g->cv, &g->mu, before(&next, &deadline) ? &next : &deadline);
    }
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
