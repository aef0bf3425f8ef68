/*
 * gate.c: the per-instance gate that holds new calls and drains the ones
 * inside while a reload swaps an instance's code.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "gate.h"
#include "testutil.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Waits (bounded) until another thread has closed the gate. */
static void wait_closed(ph_gate *g)
{
    for (int i = 0; i < 5000 && !atomic_load(&g->closed); i++)
        sleep_ms(1);
    assert_int_equal(atomic_load(&g->closed), 1);
}

static int setup(void **state)
{
    ph_gate *g = calloc(1, sizeof *g);
    assert_int_equal(ph_gate_init(g), 0);
    alarm(60);
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    alarm(0);
    ph_gate_destroy(*state);
    free(*state);
    return 0;
}

static void test_open_gate_counts_calls(void **state)
{
    ph_gate *g = *state;
    assert_int_equal(ph_gate_enter(g, 10), 0);
    assert_int_equal(ph_gate_enter(g, 10), 0);
    assert_int_equal(ph_gate_inside(g), 2);
    ph_gate_leave(g);
    ph_gate_leave(g);
    assert_int_equal(ph_gate_inside(g), 0);
}

/* A closed gate holds callers for their bound, then refuses with PH_EBUSY. */
static void test_closed_gate_times_out(void **state)
{
    ph_gate *g = *state;
    assert_int_equal(ph_gate_close(g, 100), 0);
    double t0 = now_ms();
    assert_int_equal(ph_gate_enter(g, 80), PH_EBUSY);
    double waited = now_ms() - t0;
    assert_true(waited >= 75 && waited < 1000);
    assert_int_equal(ph_gate_inside(g), 0); /* the refused call left no trace */
    ph_gate_open(g);
    assert_int_equal(ph_gate_enter(g, 10), 0);
    ph_gate_leave(g);
}

typedef struct waiter {
    ph_gate *g;
    int timeout_ms;
    int rc;
    double at; /* when enter returned */
    pthread_t t;
} waiter;

static void *wait_enter(void *arg)
{
    waiter *w = arg;
    w->rc = ph_gate_enter(w->g, w->timeout_ms);
    w->at = now_ms();
    if (w->rc == 0)
        ph_gate_leave(w->g);
    return NULL;
}

/* Held callers all go on when the gate reopens, not when their bound expires. */
static void test_open_releases_held_callers(void **state)
{
    ph_gate *g = *state;
    assert_int_equal(ph_gate_close(g, 100), 0);
    waiter w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (waiter){.g = g, .timeout_ms = 5000};
        pthread_create(&w[i].t, NULL, wait_enter, &w[i]);
    }
    sleep_ms(150);
    double opened = now_ms();
    ph_gate_open(g);
    for (int i = 0; i < 4; i++) {
        pthread_join(w[i].t, NULL);
        assert_int_equal(w[i].rc, 0);
        assert_true(w[i].at >= opened);
        assert_true(w[i].at - opened < 1000);
    }
}

typedef struct closer {
    ph_gate *g;
    int drain_ms;
    int rc;
    double at;
    pthread_t t;
} closer;

static void *do_close(void *arg)
{
    closer *c = arg;
    c->rc = ph_gate_close(c->g, c->drain_ms);
    c->at = now_ms();
    return NULL;
}

/* Closing waits for the calls inside, and returns as soon as the last one leaves. */
static void test_close_drains(void **state)
{
    ph_gate *g = *state;
    assert_int_equal(ph_gate_enter(g, 10), 0);
    closer c = {.g = g, .drain_ms = 5000};
    pthread_create(&c.t, NULL, do_close, &c);
    wait_closed(g);
    /* Closed now: a new caller is held. */
    assert_int_equal(ph_gate_enter(g, 20), PH_EBUSY);
    double left = now_ms();
    ph_gate_leave(g);
    pthread_join(c.t, NULL);
    assert_int_equal(c.rc, 0);
    assert_true(c.at >= left && c.at - left < 1000);
    assert_int_equal(atomic_load(&g->closed), 1);
    ph_gate_open(g);
}

/* A drain that times out reopens the gate and says how many calls are stuck. */
static void test_drain_timeout_reopens(void **state)
{
    ph_gate *g = *state;
    assert_int_equal(ph_gate_enter(g, 10), 0);
    double t0 = now_ms();
    int rc = ph_gate_close(g, 100);
    double took = now_ms() - t0;
    assert_int_equal(rc, PH_EBUSY);
    assert_true(took >= 95 && took < 1000);
    assert_true(tu_contains(ph_error_last(), "1 call(s) still running after 100 ms"));
    /* Open again: new calls enter at once. */
    t0 = now_ms();
    assert_int_equal(ph_gate_enter(g, 1000), 0);
    assert_true(now_ms() - t0 < 500);
    ph_gate_leave(g);
    ph_gate_leave(g);
    assert_int_equal(ph_gate_inside(g), 0);
}

/* A thread already inside passes a closed gate (nested call), and the drain counts it. */
static void test_nested_enter_passes_closed_gate(void **state)
{
    ph_gate *g = *state;
    assert_int_equal(ph_gate_enter(g, 10), 0);
    closer c = {.g = g, .drain_ms = 5000};
    pthread_create(&c.t, NULL, do_close, &c);
    wait_closed(g);
    ph_gate_enter_nested(g); /* would deadlock if it waited for the gate */
    assert_int_equal(ph_gate_inside(g), 2);
    ph_gate_leave(g);
    sleep_ms(50);
    assert_true(c.at == 0); /* still draining: the outer call is inside */
    ph_gate_leave(g);
    pthread_join(c.t, NULL);
    assert_int_equal(c.rc, 0);
    ph_gate_open(g);
}

/* Deeper nesting than a thread has slots for spills into the shared counter, still counted. */
static void test_nesting_past_the_slots(void **state)
{
    ph_gate *g = *state;
    for (int i = 0; i < 12; i++)
        assert_int_equal(ph_gate_enter(g, 10), 0);
    assert_int_equal(ph_gate_inside(g), 12);
    assert_int_equal(ph_gate_close(g, 50), PH_EBUSY);
    assert_true(tu_contains(ph_error_last(), "12 call(s) still running after 50 ms"));
    for (int i = 0; i < 12; i++)
        ph_gate_leave(g);
    assert_int_equal(ph_gate_inside(g), 0);
    assert_int_equal(ph_gate_close(g, 50), 0);
    ph_gate_open(g);
}

typedef struct entrant {
    ph_gate *g;
    atomic_int step; /* 1: entered; 2: may forget; 3: forgot */
    pthread_t t;
} entrant;

static void *enter_then_forget(void *arg)
{
    entrant *e = arg;
    assert_int_equal(ph_gate_enter(e->g, 10), 0);
    atomic_store(&e->step, 1);
    for (int i = 0; i < 5000 && atomic_load(&e->step) != 2; i++)
        sleep_ms(1);
    ph_gate_forget(e->g); /* its caller left the gate for it (an abandoned call) */
    atomic_store(&e->step, 3);
    /* The thread goes on using gates: its own slots are clean again. */
    assert_int_equal(ph_gate_enter(e->g, 10), 0);
    ph_gate_leave(e->g);
    return NULL;
}

/* Another thread may leave for a call (ph_router_abandon): the drain does not wait for it. */
static void test_leave_for_another_thread(void **state)
{
    ph_gate *g = *state;
    entrant e = {.g = g};
    pthread_create(&e.t, NULL, enter_then_forget, &e);
    for (int i = 0; i < 5000 && atomic_load(&e.step) != 1; i++)
        sleep_ms(1);
    assert_int_equal(ph_gate_inside(g), 1);
    ph_gate_leave(g); /* on behalf of the other thread */
    assert_int_equal(ph_gate_inside(g), 0);
    assert_int_equal(ph_gate_close(g, 50), 0);
    ph_gate_open(g);
    atomic_store(&e.step, 2);
    pthread_join(e.t, NULL);
    assert_int_equal(atomic_load(&e.step), 3);
    assert_int_equal(ph_gate_inside(g), 0);
    assert_int_equal(ph_gate_close(g, 50), 0);
    ph_gate_open(g);
}

static void *enter_and_end(void *arg)
{
    assert_int_equal(ph_gate_enter(arg, 10), 0);
    return NULL; /* ends inside */
}

/* A thread that ends inside the gate still counts as inside: the drain must not skip it. */
static void test_thread_ending_inside_still_counts(void **state)
{
    ph_gate *g = *state;
    pthread_t t;
    pthread_create(&t, NULL, enter_and_end, g);
    pthread_join(t, NULL);
    assert_int_equal(ph_gate_inside(g), 1);
    assert_int_equal(ph_gate_close(g, 50), PH_EBUSY);
    assert_true(tu_contains(ph_error_last(), "1 call(s) still running after 50 ms"));
    ph_gate_leave(g);
    assert_int_equal(ph_gate_close(g, 50), 0);
    ph_gate_open(g);
}

/*
 * The invariant a swap relies on, under contention: once ph_gate_close
 * returns 0, no caller is between enter and leave until ph_gate_open.
 */
typedef struct racer {
    ph_gate *g;
    atomic_int *inside;
    atomic_int *stop;
    atomic_long calls;
    long busy;
    pthread_t t;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    while (!atomic_load(r->stop)) {
        if (ph_gate_enter(r->g, 5000)) {
            r->busy++;
            continue;
        }
        atomic_fetch_add(r->inside, 1);
        for (volatile int i = 0; i < 50; i++)
            ;
        atomic_fetch_sub(r->inside, 1);
        ph_gate_leave(r->g);
        atomic_fetch_add(&r->calls, 1);
    }
    return NULL;
}

static void test_no_call_inside_while_closed(void **state)
{
    ph_gate *g = *state;
    atomic_int inside = 0, stop = 0;
    racer r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (racer){.g = g, .inside = &inside, .stop = &stop};
        pthread_create(&r[i].t, NULL, race, &r[i]);
    }
    /* Every racer is calling before the gate starts to flap. */
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 5000 && atomic_load(&r[i].calls) == 0; k++)
            sleep_ms(1);
    int violations = 0;
    for (int k = 0; k < 2000; k++) {
        assert_int_equal(ph_gate_close(g, 5000), 0);
        for (int i = 0; i < 20; i++)
            if (atomic_load(&inside) != 0)
                violations++;
        ph_gate_open(g);
    }
    atomic_store(&stop, 1);
    long calls = 0, busy = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(r[i].t, NULL);
        calls += atomic_load(&r[i].calls);
        busy += r[i].busy;
    }
    assert_int_equal(violations, 0);
    assert_int_equal(busy, 0);
    assert_true(calls > 0);
    assert_int_equal(ph_gate_inside(g), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_gate_counts_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_gate_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_releases_held_callers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_timeout_reopens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_enter_passes_closed_gate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_call_inside_while_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nesting_past_the_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_for_another_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_ending_inside_still_counts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
