#include "notify.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "error.h"
#include "log.h"

static pthread_t dog;
static bool dog_running;
static atomic_bool dog_stop;
static pthread_mutex_t dog_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dog_cv = PTHREAD_COND_INITIALIZER;
static uint64_t dog_usec;
static ph_host *dog_host;

static void deadline_after(struct timespec *ts, uint64_t usec)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(usec / 1000000);
    ts->tv_nsec += (long)(usec % 1000000) * 1000;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* WATCHDOG=1 only while the host's state lock answers within the interval. */
static void *dog_main(void *arg)
{
    (void)arg;
    size_t said = (size_t)-1;
    pthread_mutex_lock(&dog_mu);
    while (!atomic_load(&dog_stop)) {
        pthread_mutex_unlock(&dog_mu);
        struct timespec until;
        deadline_after(&until, dog_usec);
        if (pthread_rwlock_timedrdlock(&dog_host->lock, &until) == 0) {
            size_t left = atomic_load(&dog_host->starting), n = dog_host->plan.n;
            pthread_rwlock_unlock(&dog_host->lock);
            if (left && left != said)
                sd_notifyf(0, "WATCHDOG=1\nSTATUS=starting instances: %zu of %zu to go", left, n);
            else
                sd_notify(0, "WATCHDOG=1");
            said = left;
        } else {
            ph_log_error("watchdog: the host's state lock was held for a whole watchdog interval "
                         "(%llu ms); not telling the service manager it is alive",
                         (unsigned long long)(dog_usec / 1000));
        }
        pthread_mutex_lock(&dog_mu);
        deadline_after(&until, dog_usec / 2);
        while (!atomic_load(&dog_stop) &&
               pthread_cond_timedwait(&dog_cv, &dog_mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&dog_mu);
    return NULL;
}

int ph_notify_start(ph_host *h)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    dog_usec = usec;
    dog_host = h;
    atomic_store(&dog_stop, false);
    int e = pthread_create(&dog, NULL, dog_main, NULL);
    if (e)
        return ph_error_set(PH_EIO, "cannot start the watchdog thread: %s", ph_strerror(e));
    dog_running = true;
    ph_log_info("watchdog: telling the service manager every %llu ms",
                (unsigned long long)(usec / 2000));
    return 0;
}

void ph_notify_ready(size_t n_instances, const char *addr, int port, const char *failure)
{
    if (failure) /* STATUS= is one line: the first of the message */
        sd_notifyf(0,
                   "READY=1\nSTATUS=serving %zu instance(s) on http://%s:%d/; reload failed: %.*s "
                   "(the previous configuration stays)",
                   n_instances, addr, port, (int)strcspn(failure, "\n"), failure);
    else
        sd_notifyf(0, "READY=1\nSTATUS=serving %zu instance(s) on http://%s:%d/", n_instances, addr,
                   port);
}

void ph_notify_reloading(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=re-reading the configuration",
               (unsigned long long)now.tv_sec * 1000000ULL +
                   (unsigned long long)now.tv_nsec / 1000);
}

void ph_notify_stopping(void)
{
    sd_notify(0, "STOPPING=1\nSTATUS=stopping the instances");
}

void ph_notify_stop(void)
{
    if (!dog_running)
        return;
    pthread_mutex_lock(&dog_mu);
    atomic_store(&dog_stop, true);
    pthread_cond_signal(&dog_cv);
    pthread_mutex_unlock(&dog_mu);
    pthread_join(dog, NULL);
    dog_running = false;
}
