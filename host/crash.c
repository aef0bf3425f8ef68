#include "crash.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <ucontext.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "instance.h"
#include "residue.h"

static int journal_fd = -1;
static char *journal_path; /* for the quarantine check before a dlopen */
static atomic_int installed;

/* Appends `s` to buf (of `size`) at *n; async-signal-safe (no stdio). */
static void put(char *buf, size_t size, size_t *n, const char *s)
{
    while (s && *s && *n + 1 < size)
        buf[(*n)++] = *s++;
}

static void put_num(char *buf, size_t size, size_t *n, unsigned long v)
{
    char digits[24];
    int i = 0;
    do {
        digits[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i < (int)sizeof digits);
    while (i > 0 && *n + 1 < size)
        buf[(*n)++] = digits[--i];
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV (invalid memory access)";
    case SIGBUS:
        return "SIGBUS (bad memory access)";
    case SIGILL:
        return "SIGILL (illegal instruction)";
    case SIGFPE:
        return "SIGFPE (arithmetic error)";
    case SIGABRT:
        return "SIGABRT (abort)";
    default:
        return "fatal signal";
    }
}

/* " in package 'P' V (build B), WHERE": the one wording for a build in a report. Async-signal-safe.
 */
static void put_build(char *buf, size_t size, size_t *n, const char *pkg, const char *version,
                      const char *build, const char *where)
{
    put(buf, size, n, " in package '");
    put(buf, size, n, pkg);
    put(buf, size, n, "' ");
    put(buf, size, n, version);
    put(buf, size, n, " (build ");
    put(buf, size, n, build);
    put(buf, size, n, "), ");
    put(buf, size, n, where);
}

/*
 * Appends " in package 'x' 1.0.0 (build h), instance 'i', in what" for the
 * package code the current thread runs (a reload's new build in prepare is
 * the build named, not the one serving). Returns 0 outside package code.
 * Async-signal-safe.
 */
static int describe_package(char *buf, size_t size, size_t *n)
{
    const ph_frame *f = ph_frame_current();
    const ph_instance *inst = f ? f->inst : NULL;
    if (!inst)
        return 0;
    const ph_version *ver = f->ver ? f->ver : inst->cur;
    const ph_manifest *m = ver && ver->manifest ? ver->manifest : inst->manifest;
    put_build(buf, size, n, m ? m->name : "?", m ? m->version_text : "",
              ver && ver->module ? ver->module->hash : "?", "instance '");
    put(buf, size, n, inst->name);
    put(buf, size, n, "', in ");
    put(buf, size, n, f->what ? f->what : "package code");
    return 1;
}

static void report(const char *buf, size_t n)
{
    ssize_t w = write(STDERR_FILENO, buf, n);
    if (journal_fd >= 0)
        w = write(journal_fd, buf, n);
    (void)w;
}

static size_t stamp(char *buf, size_t size)
{
    size_t n = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    put_num(buf, size, &n, (unsigned long)ts.tv_sec);
    put(buf, size, &n, " plughost: ");
    return n;
}

/* The instruction that faulted, from the signal's context (0 where unknown). */
static uintptr_t fault_pc(void *uctx)
{
    const ucontext_t *uc = uctx;
    if (!uc)
        return 0;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.pc;
#else
    return 0;
#endif
}

/* The host's process id: a package's forked child inherits the handlers, not the role. */
static pid_t host_pid;

/*
 * Outside any call: code a package left running (a thread it started, a
 * handler, a destructor) is still blamed on it when the thread was started
 * by the package, or the faulting instruction or address lies in a build's
 * range, serving or former. Async-signal-safe.
 */
static int describe_residue(char *buf, size_t size, size_t *n, const siginfo_t *si, void *uctx)
{
    const char *pkg, *version, *build, *how;
    uintptr_t addr =
        si && (si->si_signo == SIGSEGV || si->si_signo == SIGBUS) ? (uintptr_t)si->si_addr : 0;
    if (!ph_residue_blame(fault_pc(uctx), addr, &pkg, &version, &build, &how))
        return 0;
    put_build(buf, size, n, pkg, version, build, how);
    return 1;
}

/* Code of a build running outside any call on this thread: a constructor or destructor. */
static int describe_doing(char *buf, size_t size, size_t *n)
{
    const char *pkg, *version, *build, *what;
    if (!ph_residue_doing_now(&pkg, &version, &build, &what))
        return 0;
    put_build(buf, size, n, pkg, version, build, what);
    return 1;
}

static void on_fatal(int sig, siginfo_t *si, void *uctx)
{
    int saved = errno;
    if (getpid() != host_pid) { /* a child a package forked: its crash is not the host's */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    char buf[1024];
    size_t n = stamp(buf, sizeof buf);
    put(buf, sizeof buf, &n, signal_name(sig));
    if (describe_package(buf, sizeof buf, &n) || describe_doing(buf, sizeof buf, &n) ||
        describe_residue(buf, sizeof buf, &n, si, uctx))
        put(buf, sizeof buf, &n,
            "; the host stops: fix the package (run it under gdb or ASan), "
            "then start the host again\n");
    else
        put(buf, sizeof buf, &n, " in the host itself, outside package code; please report it\n");
    report(buf, n);
    errno = saved;
    /* SA_RESETHAND restored the default: re-raise to end with the real signal. */
    raise(sig);
}

/* Where an exit from outside any call came from: a thread the package started, or its code. */
static int describe_exit_caller(char *buf, size_t size, size_t *n, uintptr_t caller)
{
    const char *pkg, *version, *build, *how;
    if (!ph_residue_blame_exit(caller, &pkg, &version, &build, &how))
        return 0;
    put_build(buf, size, n, pkg, version, build, how);
    return 1;
}

/*
 * exit() (or _exit, _Exit, quick_exit: interpose.c) called by package code
 * ends the host too: it is reported like a crash (and counts toward
 * quarantine), naming the package, build, where it ran and the status.
 * Async-signal-safe (a package may call _exit from a signal handler).
 */
static void exit_report(const char *call, int status, uintptr_t caller)
{
    /* a child a package forked ends with exit() as it should: the host did not stop */
    if (!atomic_load(&installed) || getpid() != host_pid)
        return;
    char buf[1024];
    size_t n = stamp(buf, sizeof buf);
    put(buf, sizeof buf, &n, call);
    put(buf, sizeof buf, &n, "(");
    if (status < 0) {
        put(buf, sizeof buf, &n, "-");
        status = -status;
    }
    put_num(buf, sizeof buf, &n, (unsigned long)status);
    put(buf, sizeof buf, &n, ") called");
    if (!describe_package(buf, sizeof buf, &n) && !describe_doing(buf, sizeof buf, &n) &&
        !describe_exit_caller(buf, sizeof buf, &n, caller))
        return; /* the host's own exit */
    put(buf, sizeof buf, &n,
        "; the host stops: a package must return PH_FAIL or report an error with ph_error, "
        "never exit the process\n");
    report(buf, n);
}

static void on_exit_report(int status, void *arg)
{
    (void)arg;
    exit_report("exit", status, 0);
}

void ph_crash_exit_called(const char *call, int status, const void *caller)
{
    exit_report(call, status, (uintptr_t)caller);
}

/* ---- alternate signal stacks: a stack overflow in package code is reported too ---- */

#define PH_ALTSTACK_SIZE (64 * 1024)
static pthread_key_t altstack_key;
static pthread_once_t altstack_once = PTHREAD_ONCE_INIT;
static _Thread_local int have_altstack;

static void altstack_free(void *mem)
{
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
    free(mem);
}

static void altstack_key_init(void)
{
    pthread_key_create(&altstack_key, altstack_free);
}

void ph_crash_thread_ready(void)
{
    if (have_altstack || !atomic_load_explicit(&installed, memory_order_relaxed))
        return;
    have_altstack = 1;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return; /* the thread has one already (a sanitizer's, or its creator's) */
    pthread_once(&altstack_once, altstack_key_init);
    void *mem = malloc(PH_ALTSTACK_SIZE);
    stack_t ss = {.ss_sp = mem, .ss_size = PH_ALTSTACK_SIZE};
    if (mem && sigaltstack(&ss, NULL) == 0)
        pthread_setspecific(altstack_key, mem);
    else
        free(mem);
}

static const int fatal_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

static struct sigaction fatal_action(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    return sa;
}

int ph_crash_reclaim(char *names, size_t size)
{
    size_t n = 0;
    int taken = 0;
    if (size)
        names[0] = 0;
    if (!atomic_load(&installed))
        return 0;
    struct sigaction mine = fatal_action();
    for (size_t i = 0; i < sizeof fatal_sigs / sizeof fatal_sigs[0]; i++) {
        struct sigaction cur;
        if (sigaction(fatal_sigs[i], NULL, &cur) != 0 ||
            ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_fatal))
            continue;
        sigaction(fatal_sigs[i], &mine, NULL);
        if (taken++)
            put(names, size, &n, ", ");
        put(names, size, &n, "SIG");
        put(names, size, &n, sigabbrev_np(fatal_sigs[i]));
    }
    if (size)
        names[n < size ? n : size - 1] = 0;
    return taken;
}

int ph_crash_install(const char *journal)
{
    host_pid = getpid();
    if (journal) {
        journal_fd = open(journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (journal_fd < 0)
            return ph_error_set(PH_EIO, "cannot open the crash journal %s: %s", journal,
                                strerror(errno));
        free(journal_path);
        journal_path = strdup(journal);
    }
    struct sigaction sa = fatal_action();
    for (size_t i = 0; i < sizeof fatal_sigs / sizeof fatal_sigs[0]; i++)
        sigaction(fatal_sigs[i], &sa, NULL);
    if (!atomic_exchange(&installed, 1))
        on_exit(on_exit_report, NULL);
    ph_crash_thread_ready();
    return 0;
}

static int count_lines(const char *journal, const char *pkg, const char *build, const char *also,
                       long window_s);

int ph_crash_count(const char *journal, const char *pkg, const char *build, long window_s)
{
    return count_lines(journal, pkg, build, NULL, window_s);
}

static int count_lines(const char *journal, const char *pkg, const char *build, const char *also,
                       long window_s)
{
    FILE *f = fopen(journal, "r");
    if (!f)
        return 0;
    char *line = NULL, *needle = NULL;
    size_t cap = 0;
    int n = 0;
    time_t now = time(NULL);
    if (asprintf(&needle, " in package '%s' ", pkg) < 0)
        needle = NULL;
    char *bneedle = NULL;
    if (asprintf(&bneedle, "(build %s)", build) < 0)
        bneedle = NULL;
    while (needle && bneedle && getline(&line, &cap, f) > 0) {
        char *end;
        long t = strtol(line, &end, 10);
        if (end == line || (window_s != LONG_MAX && now - t > window_s))
            continue;
        char *at = strstr(line, needle);
        if (at && strstr(at, bneedle) && (!also || strstr(at, also)))
            n++;
    }
    free(line);
    free(needle);
    free(bneedle);
    fclose(f);
    return n;
}

/*
 * A build whose constructor hung the host's dlopen: journaled like a crash
 * (" in package 'x' V (build B), " + PH_LOAD_HUNG ...), so that the next start
 * refuses it at once (ph_crash_quarantined). Not async-signal-safe needed:
 * called from the loader's watchdog thread.
 */
void ph_crash_load_hung(const char *pkg, const char *version, const char *build, int limit_ms,
                        int status)
{
    char buf[1024], where[160];
    snprintf(where, sizeof where, PH_LOAD_HUNG " %g s while loading (dlopen)", limit_ms / 1000.0);
    size_t n = stamp(buf, sizeof buf);
    put(buf, sizeof buf, &n, "hang");
    put_build(buf, sizeof buf, &n, pkg, version, build, where);
    put(buf, sizeof buf, &n,
        "; the build is quarantined (the next start does not load it); a "
        "thread stuck in the dynamic loader holds its lock, so the host "
        "cannot recover and exits with status ");
    put_num(buf, sizeof buf, &n, (unsigned long)status);
    put(buf, sizeof buf, &n,
        " for its supervisor to restart it; [limits] load_timeout sets the "
        "limit; a package must not have constructors that can block\n");
    report(buf, n);
}

int ph_crash_refused(const char *call, const void *caller, const char *why)
{
    if (!atomic_load(&installed) || getpid() != host_pid)
        return 0;
    char buf[1024];
    size_t n = stamp(buf, sizeof buf);
    put(buf, sizeof buf, &n, call);
    put(buf, sizeof buf, &n, " called");
    if (!describe_package(buf, sizeof buf, &n) && !describe_doing(buf, sizeof buf, &n) &&
        !describe_exit_caller(buf, sizeof buf, &n, (uintptr_t)caller))
        return 0; /* not package code: the call goes ahead */
    put(buf, sizeof buf, &n, "; refused (EPERM): ");
    put(buf, sizeof buf, &n, why);
    put(buf, sizeof buf, &n, "\n");
    report(buf, n);
    return 1;
}

int ph_crash_quarantined(const char *pkg, const char *build)
{
    if (!journal_path)
        return 0;
    /* one hang is enough: a supervisor restarting the host would meet it every time */
    if (count_lines(journal_path, pkg, build, PH_LOAD_HUNG, LONG_MAX) > 0)
        return ph_error_set(PH_EPACKAGE,
                            "package '%s': quarantined: build %s hung the host: its ELF "
                            "constructor did not return while loading (see %s); it is not loaded "
                            "again; fix and rebuild the package, a new build is started",
                            pkg, build, journal_path);
    int n = count_lines(journal_path, pkg, build, PH_WHILE_LOADING, PH_CRASH_WINDOW_S);
    if (n < PH_CRASH_QUARANTINE)
        return 0;
    return ph_error_set(PH_EPACKAGE,
                        "package '%s': quarantined: build %s crashed the host %d times in the "
                        "last %d minutes while it was loaded, in its constructor (see %s); it "
                        "is not loaded again; fix and rebuild the package, a new build is "
                        "started",
                        pkg, build, n, PH_CRASH_WINDOW_S / 60, journal_path);
}
