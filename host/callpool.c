#include "callpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "error.h"

typedef struct job {
    ph_job_fn fn;
    void *arg;
    struct job *next;
} job;

struct ph_callpool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job was queued, or the pool stops */
    pthread_cond_t idle; /* a thread finished its job or left */
    job *head, *tail;
    size_t queued;
    size_t threads, max_threads;
    size_t waiting; /* threads waiting for a job */
    size_t busy;
    bool stopping;
};

int ph_callpool_new(size_t max_threads, ph_callpool **out)
{
    *out = NULL;
    ph_callpool *p = calloc(1, sizeof *p);
    if (!p)
        return ph_error_set(PH_ENOMEM, "out of memory creating the call pool");
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->work, &attr);
    pthread_cond_init(&p->idle, &attr);
    pthread_condattr_destroy(&attr);
    p->max_threads = max_threads ? max_threads : 1;
    *out = p;
    return 0;
}

static void *worker_main(void *arg)
{
    ph_callpool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stopping) {
            p->waiting++;
            pthread_cond_wait(&p->work, &p->mu);
            p->waiting--;
        }
        if (!p->head)
            break; /* stopping, nothing left to run */
        job *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        p->busy++;
        pthread_mutex_unlock(&p->mu);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&p->mu);
        p->busy--;
        pthread_cond_broadcast(&p->idle);
    }
    p->threads--;
    pthread_cond_broadcast(&p->idle);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Under mu: a new thread, detached (a job may never return, so none is joined). */
static int start_thread(ph_callpool *p)
{
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, worker_main, p);
    pthread_attr_destroy(&attr);
    if (rc)
        return -1;
    p->threads++;
    return 0;
}

int ph_callpool_submit(ph_callpool *p, ph_job_fn fn, void *arg)
{
    job *j = malloc(sizeof *j);
    if (!j)
        return ph_error_set(PH_ENOMEM, "out of memory queueing a call");
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    /* Every queued job needs a thread of its own that is not busy. */
    if (p->waiting < p->queued + 1 &&
        (p->stopping || p->threads >= p->max_threads || start_thread(p))) {
        size_t threads = p->threads;
        bool stopping = p->stopping;
        pthread_mutex_unlock(&p->mu);
        free(j);
        if (stopping)
            return ph_error_set(PH_ELIMIT, "the host is stopping");
        if (threads < p->max_threads)
            return ph_error_set(PH_ELIMIT, "cannot start a call worker: %s", "out of threads");
        return ph_error_set(PH_ELIMIT,
                            "all %zu call workers are busy ([limits] call_workers in host.ini)",
                            threads);
    }
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

size_t ph_callpool_busy(ph_callpool *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->busy + p->queued;
    pthread_mutex_unlock(&p->mu);
    return n;
}

size_t ph_callpool_threads(ph_callpool *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->threads;
    pthread_mutex_unlock(&p->mu);
    return n;
}

size_t ph_callpool_free(ph_callpool *p, int wait_ms)
{
    if (!p)
        return 0;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->work);
    int rc = 0;
    while (p->threads > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&p->idle, &p->mu, &until);
    size_t left = p->busy + p->queued;
    bool gone = p->threads == 0;
    pthread_mutex_unlock(&p->mu);
    if (!gone)
        return left ? left : 1; /* a thread still on its way out uses the pool */
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    free(p);
    return 0;
}
