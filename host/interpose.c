/*
 * The plughost binary's own pthread_create, pthread_key_create/delete and
 * timer_create/delete (exported by plughost.dynlist, so a package's calls
 * bind to them before libc's): a thread whose start routine lies in a
 * package's mapping, a key whose destructor does and a SIGEV_THREAD timer
 * whose callback does are counted against that build (residue.c), which is
 * then never unmapped while they live.
 * Everything else passes straight through. Only the executable has these:
 * phcore (linked by the tests too) stays free of interposition.
 *
 * Under a sanitizer the next pthread_create is the sanitizer's interceptor
 * (gcc links its runtime as a shared library, named before libc), or
 * __interceptor_pthread_create where the runtime is linked in statically
 * (clang): the sanitizer still sees every thread. This file is built
 * without sanitizers (host/CMakeLists.txt): ThreadSanitizer's runtime calls
 * pthread_key_create while it initialises, before instrumented code can
 * run; until a package is loaded (ph_residue_tracking) nothing here calls
 * into the host.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "crash.h"
#include "residue.h"

#define PH_EXPORT __attribute__((visibility("default")))

typedef void *(*start_fn)(void *);
typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, start_fn, void *);
typedef int (*key_create_fn)(pthread_key_t *, void (*)(void *));
typedef int (*key_delete_fn)(pthread_key_t);
typedef int (*timer_create_fn)(clockid_t, struct sigevent *, timer_t *);
typedef int (*timer_delete_fn)(timer_t);

extern int __interceptor_pthread_create(pthread_t *, const pthread_attr_t *, start_fn, void *)
    __attribute__((weak));

static void *next(const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);
    if (!fn)
        abort(); /* no libpthread below the binary: nothing can work */
    return fn;
}

static create_fn real_create(void)
{
    static _Atomic(create_fn) fn;
    create_fn f = atomic_load_explicit(&fn, memory_order_acquire);
    if (!f) {
        f = __interceptor_pthread_create ? __interceptor_pthread_create
                                         : (create_fn)next("pthread_create");
        atomic_store_explicit(&fn, f, memory_order_release);
    }
    return f;
}

static key_create_fn real_key_create(void)
{
    static _Atomic(key_create_fn) fn;
    key_create_fn f = atomic_load_explicit(&fn, memory_order_acquire);
    if (!f)
        atomic_store_explicit(&fn, f = (key_create_fn)next("pthread_key_create"),
                              memory_order_release);
    return f;
}

static key_delete_fn real_key_delete(void)
{
    static _Atomic(key_delete_fn) fn;
    key_delete_fn f = atomic_load_explicit(&fn, memory_order_acquire);
    if (!f)
        atomic_store_explicit(&fn, f = (key_delete_fn)next("pthread_key_delete"),
                              memory_order_release);
    return f;
}

/* ---- threads started by package code ---- */

typedef struct {
    start_fn fn;
    void *arg;
    int slot;
} launch;

static pthread_key_t ended_key;
static pthread_once_t ended_once = PTHREAD_ONCE_INIT;

/* Runs at the thread's end however it ends (return, pthread_exit, cancellation). */
static void thread_ended(void *slot_plus_one)
{
    ph_residue_thread_count((int)(intptr_t)slot_plus_one - 1, -1);
}

static void make_ended_key(void)
{
    real_key_create()(&ended_key, thread_ended);
}

static void *package_thread(void *p)
{
    launch l = *(launch *)p;
    free(p);
    pthread_setspecific(ended_key, (void *)(intptr_t)(l.slot + 1));
    ph_residue_thread_is(l.slot);
    ph_crash_thread_ready(); /* a stack overflow in the package's own thread is reported too */
    return l.fn(l.arg);
}

PH_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr, start_fn fn, void *arg)
{
    int slot = atomic_load_explicit(&ph_residue_tracking, memory_order_relaxed)
                   ? ph_residue_slot_of((const void *)(uintptr_t)fn)
                   : -1;
    if (slot < 0)
        return real_create()(thread, attr, fn, arg);
    pthread_once(&ended_once, make_ended_key);
    launch *l = malloc(sizeof *l);
    if (!l)
        return EAGAIN;
    *l = (launch){fn, arg, slot};
    ph_residue_thread_count(slot, +1);
    int rc = real_create()(thread, attr, package_thread, l);
    if (rc) {
        ph_residue_thread_count(slot, -1);
        free(l);
    }
    return rc;
}

/* ---- keys whose destructor is package code ---- */

PH_EXPORT int pthread_key_create(pthread_key_t *key, void (*destructor)(void *))
{
    int rc = real_key_create()(key, destructor);
    if (rc == 0 && destructor && atomic_load_explicit(&ph_residue_tracking, memory_order_relaxed)) {
        int slot = ph_residue_slot_of((const void *)(uintptr_t)destructor);
        if (slot >= 0)
            ph_residue_key_created(slot, *key);
    }
    return rc;
}

PH_EXPORT int pthread_key_delete(pthread_key_t key)
{
    if (atomic_load_explicit(&ph_residue_tracking, memory_order_relaxed))
        ph_residue_key_deleted(key);
    return real_key_delete()(key);
}

/* ---- timers whose callback is package code (SIGEV_THREAD) ---- */

static timer_create_fn real_timer_create(void)
{
    static _Atomic(timer_create_fn) fn;
    timer_create_fn f = atomic_load_explicit(&fn, memory_order_acquire);
    if (!f)
        atomic_store_explicit(&fn, f = (timer_create_fn)next("timer_create"), memory_order_release);
    return f;
}

static timer_delete_fn real_timer_delete(void)
{
    static _Atomic(timer_delete_fn) fn;
    timer_delete_fn f = atomic_load_explicit(&fn, memory_order_acquire);
    if (!f)
        atomic_store_explicit(&fn, f = (timer_delete_fn)next("timer_delete"), memory_order_release);
    return f;
}

PH_EXPORT int timer_create(clockid_t clock, struct sigevent *event, timer_t *timer)
{
    int rc = real_timer_create()(clock, event, timer);
    if (rc == 0 && event && event->sigev_notify == SIGEV_THREAD &&
        atomic_load_explicit(&ph_residue_tracking, memory_order_relaxed)) {
        int slot = ph_residue_slot_of((const void *)(uintptr_t)event->sigev_notify_function);
        if (slot >= 0)
            ph_residue_timer_created(slot, *timer);
    }
    return rc;
}

PH_EXPORT int timer_delete(timer_t timer)
{
    if (atomic_load_explicit(&ph_residue_tracking, memory_order_relaxed))
        ph_residue_timer_deleted(timer);
    return real_timer_delete()(timer);
}
