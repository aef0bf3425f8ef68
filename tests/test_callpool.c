/*
 * callpool.c: the threads that run package calls for HTTP callers. A job
 * that does not return keeps its thread; past the maximum a submit is
 * refused at once with the setting to raise, never queued behind it.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "callpool.h"
#include "error.h"
#include "testutil.h"

typedef struct blocker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool release;
    atomic_int started, done;
} blocker;

static void block_job(void *arg)
{
    blocker *b = arg;
    atomic_fetch_add(&b->started, 1);
    pthread_mutex_lock(&b->mu);
    while (!b->release)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    atomic_fetch_add(&b->done, 1);
}

static void count_job(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void wait_until(atomic_int *v, int want)
{
    struct timespec step = {0, 1000 * 1000};
    for (int i = 0; i < 5000 && atomic_load(v) < want; i++)
        nanosleep(&step, NULL);
    assert_int_equal(atomic_load(v), want);
}

static void test_busy_pool_refuses(void **state)
{
    (void)state;
    ph_callpool *p = NULL;
    blocker b = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0};
    assert_int_equal(ph_callpool_new(2, &p), 0);
    assert_int_equal(ph_callpool_submit(p, block_job, &b), 0);
    assert_int_equal(ph_callpool_submit(p, block_job, &b), 0);
    wait_until(&b.started, 2);
    assert_int_equal(ph_callpool_threads(p), 2);
    assert_int_equal(ph_callpool_busy(p), 2);
    atomic_int n = 0;
    ph_error_clear();
    assert_int_equal(ph_callpool_submit(p, count_job, &n), PH_ELIMIT);
    assert_string_equal(ph_error_last(),
                        "all 2 call workers are busy ([limits] call_workers in host.ini)");
    pthread_mutex_lock(&b.mu);
    b.release = true;
    pthread_cond_broadcast(&b.cv);
    pthread_mutex_unlock(&b.mu);
    wait_until(&b.done, 2);
    /* the threads are reused once free: no third one starts */
    for (int i = 0; i < 100; i++) {
        int rc;
        for (int tries = 0; (rc = ph_callpool_submit(p, count_job, &n)) != 0 && tries < 1000;
             tries++) {
            struct timespec step = {0, 100 * 1000};
            nanosleep(&step, NULL);
        }
        assert_int_equal(rc, 0);
    }
    wait_until(&n, 100);
    assert_int_equal(ph_callpool_threads(p), 2);
    assert_int_equal(ph_callpool_free(p, 2000), 0);
}

static void test_free_leaves_a_stuck_job(void **state)
{
    (void)state;
    ph_callpool *p = NULL;
    blocker b = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0};
    assert_int_equal(ph_callpool_new(4, &p), 0);
    assert_int_equal(ph_callpool_submit(p, block_job, &b), 0);
    wait_until(&b.started, 1);
    /* the job does not return in time: the pool stays allocated for it */
    assert_int_equal(ph_callpool_free(p, 50), 1);
    pthread_mutex_lock(&b.mu);
    b.release = true;
    pthread_cond_broadcast(&b.cv);
    pthread_mutex_unlock(&b.mu);
    wait_until(&b.done, 1);
    /* once it returned, its thread leaves and the pool can go */
    size_t left = 1;
    for (int i = 0; i < 100 && left; i++)
        left = ph_callpool_free(p, 50);
    assert_int_equal(left, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busy_pool_refuses),
        cmocka_unit_test(test_free_leaves_a_stuck_job),
    };
    return cmocka_run_group_tests_name("callpool", tests, NULL, NULL);
}
