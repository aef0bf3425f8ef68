/*
 * The plughost binary's own pthread_create, thrd_create,
 * pthread_key_create/delete, timer_create/delete, _exit, _Exit and
 * quick_exit (exported by plughost.dynlist, so a package's calls bind to
 * them before libc's): a thread whose start routine lies in a package's
 * mapping, or that package code created (its stack: C++ std::thread starts
 * threads from libstdc++), a key whose destructor does and a SIGEV_THREAD
 * timer whose callback does are counted against that build (residue.c),
 * which is then never unmapped while they live; an exit that skips exit()'s
 * handlers is reported against the package that called it (crash.c).
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
#include <execinfo.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "instance.h"
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

/* The host's own code (linker-defined bounds of the executable's text). */
extern const char __executable_start[], etext[];

static int in_host(const void *pc)
{
    return (const char *)pc >= __executable_start && (const char *)pc < etext;
}

/*
 * The build whose code created a thread whose start routine lies elsewhere
 * (C++ std::thread: libstdc++'s trampoline; a library the package called):
 * the first return address on the creating stack that lies in a build.
 * Not walked when the host's own code called: its threads are its own.
 */
#define PH_CREATOR_FRAMES 24
static int creator_slot(const void *caller)
{
    if (in_host(caller))
        return -1;
    int slot = ph_residue_slot_of(caller);
    if (slot >= 0)
        return slot;
    /* Package code runs on this thread only inside a call or lifecycle step (a frame), in a
       thread it started, or in its constructor or destructor: elsewhere (a library's own
       threads, such as the HTTP server's per connection) the walk is skipped. */
    if (!ph_frame_current() && !ph_residue_in_package_thread())
        return -1;
    void *frames[PH_CREATOR_FRAMES];
    int n = backtrace(frames, PH_CREATOR_FRAMES);
    int i = 0;
    while (i < n && frames[i] != caller) /* this file's own frames */
        i++;
    for (i++; i < n; i++) {
        if (in_host(frames[i]))
            return -1; /* the host's code reached first: it called the library */
        if ((slot = ph_residue_slot_of(frames[i])) >= 0)
            return slot;
    }
    return -1;
}

static int slot_of_thread(start_fn fn, const void *caller)
{
    if (!atomic_load_explicit(&ph_residue_tracking, memory_order_relaxed))
        return -1;
    int slot = ph_residue_slot_of((const void *)(uintptr_t)fn);
    return slot >= 0 ? slot : creator_slot(caller);
}

/* Starts a thread counted against build `slot` (-1: not package code). */
static int create_in(int slot, pthread_t *thread, const pthread_attr_t *attr, start_fn fn,
                     void *arg)
{
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

PH_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr, start_fn fn, void *arg)
{
    return create_in(slot_of_thread(fn, __builtin_return_address(0)), thread, attr, fn, arg);
}

/*
 * C11 thrd_create: glibc's calls its pthread_create internally, past this
 * file's, so it is built on it here: an int start routine, its result
 * passed through as glibc does (thrd_join reads it back as an int).
 */
typedef struct {
    thrd_start_t fn;
    void *arg;
} c11_launch;

static void *c11_start(void *p)
{
    c11_launch l = *(c11_launch *)p;
    free(p);
    return (void *)(intptr_t)l.fn(l.arg);
}

PH_EXPORT int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
    int slot = slot_of_thread((start_fn)(uintptr_t)func, __builtin_return_address(0));
    c11_launch *l = malloc(sizeof *l);
    if (!l)
        return thrd_nomem;
    *l = (c11_launch){func, arg};
    pthread_t t;
    int rc = create_in(slot, &t, NULL, c11_start, l);
    if (rc) {
        free(l);
        return rc == ENOMEM ? thrd_nomem : thrd_error;
    }
    *thr = (thrd_t)t;
    return thrd_success;
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

/* ---- exits that skip exit()'s handlers: _exit, _Exit, quick_exit ---- */

typedef void (*exit_fn)(int);

static exit_fn real_exit_fn(const char *name, _Atomic(exit_fn) *cache)
{
    exit_fn f = atomic_load_explicit(cache, memory_order_acquire);
    if (!f)
        atomic_store_explicit(cache, f = (exit_fn)next(name), memory_order_release);
    return f;
}

/* Reported (crash.c) when package code calls it; then the process ends as asked. */
static _Noreturn void exit_as_asked(const char *name, _Atomic(exit_fn) *cache, int status,
                                    const void *caller)
{
    if (atomic_load_explicit(&ph_residue_tracking, memory_order_relaxed))
        ph_crash_exit_called(name, status, caller);
    real_exit_fn(name, cache)(status);
    abort(); /* not reached: each of them ends the process */
}

static _Atomic(exit_fn) real__exit, real__Exit, real_quick_exit;

PH_EXPORT void _exit(int status)
{
    exit_as_asked("_exit", &real__exit, status, __builtin_return_address(0));
}

PH_EXPORT void _Exit(int status)
{
    exit_as_asked("_Exit", &real__Exit, status, __builtin_return_address(0));
}

PH_EXPORT void quick_exit(int status)
{
    exit_as_asked("quick_exit", &real_quick_exit, status, __builtin_return_address(0));
}
