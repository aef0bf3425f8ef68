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
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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

/* A build's constructors run on this thread (the host's dlopen of it): its range is not
 * known yet, so whatever the package creates meanwhile is counted against that build. */
static int loading_slot(const void *caller)
{
    return in_host(caller) ? -1 : ph_residue_loading_now();
}

static int slot_of_thread(start_fn fn, const void *caller)
{
    if (!atomic_load_explicit(&ph_residue_tracking, memory_order_relaxed))
        return -1;
    int slot = ph_residue_slot_of((const void *)(uintptr_t)fn);
    if (slot < 0)
        slot = creator_slot(caller);
    return slot >= 0 ? slot : loading_slot(caller);
}

/* The build code at `fn` belongs to, or the one loading when `caller` is not the host's. */
static int slot_of_code(const void *fn, const void *caller)
{
    int slot = ph_residue_slot_of(fn);
    return slot >= 0 ? slot : loading_slot(caller);
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
        int slot = slot_of_code((const void *)(uintptr_t)destructor, __builtin_return_address(0));
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
        int slot = slot_of_code((const void *)(uintptr_t)event->sigev_notify_function,
                                __builtin_return_address(0));
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

/* ---- calls package code must not make: refused with EPERM, reported and journaled ---- */

/* True if `caller` (a return address) is package code, or code a package's call runs. */
static int package_caller(const void *caller)
{
    if (!atomic_load_explicit(&ph_residue_tracking, memory_order_relaxed) || in_host(caller))
        return 0;
    return ph_residue_slot_of(caller) >= 0 || ph_frame_current() ||
           ph_residue_in_package_thread() || ph_residue_loading_now() >= 0;
}

/* Reports `call` as refused when package code made it (then 1: the caller returns EPERM). */
static int refuse(const char *call, const void *caller, const char *why)
{
    return package_caller(caller) && ph_crash_refused(call, caller, why);
}

#define WHY_SIGNAL                                                                                 \
    "a package must not stop, end or reload the host with a signal; return PH_FAIL or report "     \
    "an error with ph_error"
#define WHY_EXEC                                                                                   \
    "a package must not replace the host process; run programs with posix_spawn() or fork() "      \
    "and exec in the child"

/* Signals that would stop, end or reload the host if aimed at it. */
static int host_ending(int sig)
{
    switch (sig) {
    case SIGTERM:
    case SIGINT:
    case SIGQUIT:
    case SIGHUP:
    case SIGKILL:
    case SIGSTOP:
    case SIGTSTP:
        return 1;
    default:
        return 0;
    }
}

/* "kill(getpid(), SIGTERM)", "raise(SIGINT)" (target NULL) and the like, for the report. */
static const char *signal_call(char *buf, size_t size, const char *fn, const char *target, int sig)
{
    const char *name = sigabbrev_np(sig);
    size_t n = 0;
    for (const char *parts[] = {fn, "(", target ? target : "", target ? ", " : "", "SIG",
                                name ? name : "?", ")", NULL},
                    **p = parts;
         *p; p++)
        for (const char *c = *p; *c && n + 1 < size; c++)
            buf[n++] = *c;
    buf[n] = 0;
    return buf;
}

typedef int (*kill_fn)(pid_t, int);
typedef int (*raise_fn)(int);
typedef int (*tgkill_fn)(pid_t, pid_t, int);
typedef int (*pthread_kill_fn)(pthread_t, int);
typedef long (*syscall_fn)(long, ...);
typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execv_fn)(const char *, char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
typedef int (*on_exit_fn)(void (*)(int, void *), void *);
typedef int (*cxa_atexit_fn)(void (*)(void *), void *, void *);
typedef int (*cxa_at_quick_exit_fn)(void (*)(void *), void *);
typedef void (*pthread_exit_fn)(void *);

/* Every function this file forwards to, looked up once before any package is loaded:
 * a dlsym while a constructor hangs in the dynamic loader would wait for its lock. */
static struct {
    kill_fn kill;
    raise_fn raise;
    tgkill_fn tgkill;
    pthread_kill_fn pthread_kill;
    syscall_fn syscall;
    execve_fn execve, execvpe;
    execv_fn execv, execvp;
    fexecve_fn fexecve;
    on_exit_fn on_exit;
    cxa_atexit_fn cxa_atexit;
    cxa_at_quick_exit_fn cxa_at_quick_exit;
    pthread_exit_fn pthread_exit;
    void (*thrd_exit)(int);
} real;

/* A library's constructor may call one before look_up_real has run (libstdc++ registers
 * with __cxa_atexit): looked up then. */
static void *look_up(void **cache, const char *name)
{
    void *f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
    if (!f)
        __atomic_store_n(cache, f = next(name), __ATOMIC_RELEASE);
    return f;
}
#define REAL(field, name) ((__typeof__(real.field))look_up((void **)&real.field, name))

__attribute__((constructor)) static void look_up_real(void)
{
    real_create();
    real_key_create();
    real_key_delete();
    real_timer_create();
    real_timer_delete();
    real_exit_fn("_exit", &real__exit);
    real_exit_fn("_Exit", &real__Exit);
    real_exit_fn("quick_exit", &real_quick_exit);
    (void)REAL(kill, "kill");
    (void)REAL(raise, "raise");
    (void)REAL(tgkill, "tgkill");
    (void)REAL(pthread_kill, "pthread_kill");
    (void)REAL(syscall, "syscall");
    (void)REAL(execve, "execve");
    (void)REAL(execvpe, "execvpe");
    (void)REAL(execv, "execv");
    (void)REAL(execvp, "execvp");
    (void)REAL(fexecve, "fexecve");
    (void)REAL(on_exit, "on_exit");
    (void)REAL(cxa_atexit, "__cxa_atexit");
    (void)REAL(cxa_at_quick_exit, "__cxa_at_quick_exit");
    (void)REAL(pthread_exit, "pthread_exit");
    (void)REAL(thrd_exit, "thrd_exit");
}

static int refused(void)
{
    errno = EPERM;
    return -1;
}

PH_EXPORT int kill(pid_t pid, int sig)
{
    char call[64];
    if (host_ending(sig) && (pid == getpid() || pid == 0 || pid == -getpgrp()) &&
        refuse(signal_call(call, sizeof call, "kill",
                           pid == getpid() ? "getpid()"
                           : pid == 0      ? "0"
                                           : "-getpgrp()",
                           sig),
               __builtin_return_address(0), WHY_SIGNAL))
        return refused();
    return REAL(kill, "kill")(pid, sig);
}

PH_EXPORT int raise(int sig)
{
    char call[64];
    if (host_ending(sig) && refuse(signal_call(call, sizeof call, "raise", NULL, sig),
                                   __builtin_return_address(0), WHY_SIGNAL))
        return refused();
    return REAL(raise, "raise")(sig);
}

PH_EXPORT int tgkill(pid_t tgid, pid_t tid, int sig)
{
    char call[64];
    if (host_ending(sig) && tgid == getpid() &&
        refuse(signal_call(call, sizeof call, "tgkill", "getpid(), tid", sig),
               __builtin_return_address(0), WHY_SIGNAL))
        return refused();
    return REAL(tgkill, "tgkill")(tgid, tid, sig);
}

PH_EXPORT int pthread_kill(pthread_t thread, int sig)
{
    char call[64];
    if (host_ending(sig) && refuse(signal_call(call, sizeof call, "pthread_kill", "thread", sig),
                                   __builtin_return_address(0), WHY_SIGNAL))
        return EPERM;
    return REAL(pthread_kill, "pthread_kill")(thread, sig);
}

/* syscall(2): the exits and signals above, made by number. */
PH_EXPORT long syscall(long number, ...)
{
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    const void *caller = __builtin_return_address(0);
    char call[64];
    const char *what = NULL, *why = WHY_SIGNAL;
    if (number == SYS_exit_group) {
        what = "syscall(SYS_exit_group)";
        why = "a package must return PH_FAIL or report an error with ph_error, never exit the "
              "process";
    } else if ((number == SYS_kill && (a[0] == getpid() || a[0] == 0) && host_ending((int)a[1])) ||
               (number == SYS_tgkill && a[0] == getpid() && host_ending((int)a[2])) ||
               (number == SYS_tkill && host_ending((int)a[1]))) {
        what = signal_call(call, sizeof call, "syscall",
                           number == SYS_kill     ? "SYS_kill, getpid()"
                           : number == SYS_tgkill ? "SYS_tgkill, getpid(), tid"
                                                  : "SYS_tkill, tid",
                           (int)(number == SYS_tgkill ? a[2] : a[1]));
    } else if (number == SYS_execve || number == SYS_execveat) {
        what = number == SYS_execve ? "syscall(SYS_execve)" : "syscall(SYS_execveat)";
        why = WHY_EXEC;
    }
    if (what && refuse(what, caller, why))
        return refused();
    return REAL(syscall, "syscall")(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* ---- the exec family: the host process replaced ---- */

PH_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    if (refuse("execve()", __builtin_return_address(0), WHY_EXEC))
        return refused();
    return REAL(execve, "execve")(path, argv, envp);
}

PH_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    if (refuse("execvpe()", __builtin_return_address(0), WHY_EXEC))
        return refused();
    return REAL(execvpe, "execvpe")(file, argv, envp);
}

PH_EXPORT int execv(const char *path, char *const argv[])
{
    if (refuse("execv()", __builtin_return_address(0), WHY_EXEC))
        return refused();
    return REAL(execv, "execv")(path, argv);
}

PH_EXPORT int execvp(const char *file, char *const argv[])
{
    if (refuse("execvp()", __builtin_return_address(0), WHY_EXEC))
        return refused();
    return REAL(execvp, "execvp")(file, argv);
}

PH_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    if (refuse("fexecve()", __builtin_return_address(0), WHY_EXEC))
        return refused();
    return REAL(fexecve, "fexecve")(fd, argv, envp);
}

/* execl, execlp, execle: their arguments, as the vector the others take. */
#define PH_EXECL_MAX 256
static int list_args(const char *arg0, va_list ap, char **argv, char ***envp)
{
    int n = 0;
    argv[n++] = (char *)arg0;
    while (arg0 && n < PH_EXECL_MAX && (argv[n] = va_arg(ap, char *)))
        n++;
    if (n == PH_EXECL_MAX) {
        errno = E2BIG;
        return -1;
    }
    argv[n] = NULL;
    if (envp)
        *envp = va_arg(ap, char **);
    return 0;
}

/* How an execl-style call goes on: like execv, execvp or execve. */
enum { EXEC_PATH, EXEC_SEARCH, EXEC_ENV };

static int exec_list(int how, const char *call, const void *caller, const char *path,
                     const char *arg, va_list ap)
{
    if (refuse(call, caller, WHY_EXEC))
        return refused();
    char *argv[PH_EXECL_MAX + 1], **envp = NULL;
    if (list_args(arg, ap, argv, how == EXEC_ENV ? &envp : NULL))
        return -1;
    if (how == EXEC_SEARCH)
        return REAL(execvp, "execvp")(path, argv);
    return how == EXEC_ENV ? REAL(execve, "execve")(path, argv, envp)
                           : REAL(execv, "execv")(path, argv);
}

#define PH_EXECL(name, how)                                                                        \
    PH_EXPORT int name(const char *path, const char *arg, ...)                                     \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, arg);                                                                         \
        int rc = exec_list(how, #name "()", __builtin_return_address(0), path, arg, ap);           \
        va_end(ap);                                                                                \
        return rc;                                                                                 \
    }
PH_EXECL(execl, EXEC_PATH)
PH_EXECL(execlp, EXEC_SEARCH)
PH_EXECL(execle, EXEC_ENV)

/* ---- handlers run at exit, when the build may be gone: refused from package code ---- */

#define WHY_AT_EXIT                                                                                \
    "it would run when the host exits, after the build was unloaded; clean up in stop() "          \
    "(atexit() "                                                                                   \
    "in a package is run when its build is unloaded and is allowed)"

PH_EXPORT int on_exit(void (*fn)(int, void *), void *arg)
{
    if (refuse("on_exit()", __builtin_return_address(0), WHY_AT_EXIT))
        return refused();
    return REAL(on_exit, "on_exit")(fn, arg);
}

/* atexit() in a package is glibc's libc_nonshared one: __cxa_atexit with the package's own
 * __dso_handle, run by dlclose while the build is still mapped. Without a handle it would
 * run at the host's exit instead. */
PH_EXPORT int __cxa_atexit(void (*fn)(void *), void *arg, void *dso)
{
    if (!dso && refuse("__cxa_atexit(fn, arg, NULL)", __builtin_return_address(0), WHY_AT_EXIT))
        return refused();
    return REAL(cxa_atexit, "__cxa_atexit")(fn, arg, dso);
}

/* at_quick_exit(): glibc keeps these past dlclose, so they would run in an unmapped build. */
PH_EXPORT int __cxa_at_quick_exit(void (*fn)(void *), void *dso)
{
    if (refuse("at_quick_exit()", __builtin_return_address(0),
               "glibc keeps quick_exit handlers after the build is unloaded; clean up in stop()"))
        return refused();
    return REAL(cxa_at_quick_exit, "__cxa_at_quick_exit")(fn, dso);
}

/* ---- pthread_exit in a method: the call is ended instead of the host's thread ---- */

/* On a host call thread inside a method: reports it and unwinds to the call (never returns). */
static void end_call(const char *call, void *caller)
{
    ph_frame *f = ph_frame_current();
    if (f && f->escape && !ph_residue_in_package_thread() && package_caller(caller)) {
        ph_crash_refused(call, caller,
                         "a method must return; the call ends with an error and the host's "
                         "thread goes on");
        f->failed = 1;
        ph_frame_escape(f, call);
    }
}

PH_EXPORT _Noreturn void pthread_exit(void *value)
{
    end_call("pthread_exit()", __builtin_return_address(0));
    REAL(pthread_exit, "pthread_exit")(value);
    abort();
}

PH_EXPORT _Noreturn void thrd_exit(int res)
{
    end_call("thrd_exit()", __builtin_return_address(0));
    REAL(thrd_exit, "thrd_exit")(res);
    abort();
}
