#include "residue.h"

#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crash.h"
#include "error.h"
#include "loader.h"
#include "log.h"

typedef enum {
    SLOT_FREE = 0,
    SLOT_MAPPED,    /* loaded (serving, or stopped and not yet unloaded) */
    SLOT_KEPT,      /* unload refused: something of the package still runs */
    SLOT_LINGERING, /* dlclosed, yet glibc kept the mapping (thread_local destructors) */
    SLOT_UNMAPPED,  /* gone; its range is remembered for crash reports */
    SLOT_LOADING    /* reserved for a build in the host's dlopen: its constructors run */
} slot_state;

#define KEYS_PER_SLOT 16

typedef struct {
    _Atomic int state; /* slot_state; the fields below are written before it (release) */
    uintptr_t lo, hi;  /* the PT_LOAD segments, [lo, hi) */
    uintptr_t base;    /* dlpi_addr: finds the object again after dlclose */
    unsigned long seq; /* order of loading: the newest former range wins a crash report */
    char pkg[64], version[32], build[17];
    _Atomic int threads; /* threads alive whose start routine lies in the range */
    _Atomic int stopped; /* stop() ran and no prepare/start since */
    int n_keys;          /* under mu */
    pthread_key_t keys[KEYS_PER_SLOT];
    int keys_lost; /* keys beyond KEYS_PER_SLOT: never forgotten, so never unmapped */
    int n_timers;  /* SIGEV_THREAD timers whose callback lies in the range, under mu */
    timer_t timers[KEYS_PER_SLOT];
    int timers_lost;
    int logged;               /* the kept/lingering warning was logged */
    _Atomic int stop_hung_ms; /* its stop() did not return within this limit (0: it did) */
} slot;

_Atomic int ph_residue_tracking;
static slot slots[PH_RESIDUE_SLOTS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long next_seq = 1;
static struct sigaction baseline[NSIG];
static int have_baseline;
/* slot + 1 of the package that started the calling thread; 0: none. */
static _Thread_local int thread_slot;
/* slot + 1 of the build the calling thread is loading (dlopen); 0: none. */
static _Thread_local int loading_slot;

static slot *slot_at(int i)
{
    return i >= 0 && i < PH_RESIDUE_SLOTS ? &slots[i] : NULL;
}

static int mapped(int state)
{
    return state == SLOT_MAPPED || state == SLOT_KEPT || state == SLOT_LINGERING ||
           state == SLOT_LOADING;
}

/* ---- tracking ---- */

typedef struct {
    uintptr_t base;
    const char *name;
    uintptr_t lo, hi;
    int found;
} range_query;

static int find_range(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    range_query *q = data;
    if (info->dlpi_addr != q->base || !info->dlpi_name || strcmp(info->dlpi_name, q->name) != 0)
        return 0;
    q->lo = UINTPTR_MAX;
    q->hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        q->lo = lo < q->lo ? lo : q->lo;
        q->hi = hi > q->hi ? hi : q->hi;
    }
    q->found = q->hi > q->lo;
    return 1;
}

/* A free slot, else the oldest unmapped one; -1 if every slot is mapped. Under mu. */
static int free_slot(void)
{
    int oldest = -1;
    for (int i = 0; i < PH_RESIDUE_SLOTS; i++) {
        int st = atomic_load(&slots[i].state);
        if (st == SLOT_FREE)
            return i;
        if (st == SLOT_UNMAPPED && (oldest < 0 || slots[i].seq < slots[oldest].seq))
            oldest = i;
    }
    return oldest;
}

static int live_keys(const slot *s);
static int live_timers(const slot *s);

/* The host's dispositions before any package code ran. Under mu. */
static void take_baseline(void)
{
    if (have_baseline)
        return;
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, NULL, &baseline[sig]);
    have_baseline = 1;
}

/* Takes slot i for a build (its range still unknown while LOADING). Under mu. */
static void claim(int i, const char *pkg, const char *version, const char *build, int state)
{
    slot *s = &slots[i];
    atomic_store(&s->state, SLOT_FREE); /* a crash report skips it while it is rewritten */
    s->lo = s->hi = s->base = 0;
    s->seq = next_seq++;
    snprintf(s->pkg, sizeof s->pkg, "%s", pkg);
    snprintf(s->version, sizeof s->version, "%s", version);
    snprintf(s->build, sizeof s->build, "%s", build);
    atomic_store(&s->threads, 0);
    atomic_store(&s->stopped, 0);
    atomic_store(&s->stop_hung_ms, 0);
    s->n_keys = s->keys_lost = s->n_timers = s->timers_lost = s->logged = 0;
    atomic_store_explicit(&s->state, state, memory_order_release);
    atomic_store(&ph_residue_tracking, 1);
}

int ph_residue_loading(const char *pkg, const char *version, const char *build)
{
    pthread_mutex_lock(&mu);
    take_baseline();
    int i = free_slot();
    if (i >= 0)
        claim(i, pkg, version, build, SLOT_LOADING);
    pthread_mutex_unlock(&mu);
    loading_slot = i + 1;
    return i;
}

void ph_residue_loading_failed(int i)
{
    loading_slot = 0;
    slot *s = slot_at(i);
    if (!s)
        return;
    pthread_mutex_lock(&mu);
    /* a constructor's thread or key may still point at it: remembered, never reused early */
    if (atomic_load(&s->state) == SLOT_LOADING)
        atomic_store(&s->state, atomic_load(&s->threads) || live_keys(s) || live_timers(s)
                                    ? SLOT_KEPT
                                    : SLOT_FREE);
    pthread_mutex_unlock(&mu);
}

int ph_residue_loading_now(void)
{
    return loading_slot - 1;
}

int ph_residue_track(ph_module *mod, const char *pkg, const char *version)
{
    mod->residue = -1;
    int reserved = loading_slot - 1;
    loading_slot = 0;
    struct link_map *lm = NULL;
    range_query q = {0};
    if (dlinfo(mod->handle, RTLD_DI_LINKMAP, &lm) == 0 && lm) {
        q = (range_query){.base = lm->l_addr, .name = lm->l_name};
        dl_iterate_phdr(find_range, &q);
    }
    pthread_mutex_lock(&mu);
    take_baseline();
    int i = reserved >= 0 && atomic_load(&slots[reserved].state) == SLOT_LOADING ? reserved : -1;
    if (!q.found) { /* not watched: the reservation goes back */
        if (i >= 0)
            atomic_store(&slots[i].state, SLOT_FREE);
        pthread_mutex_unlock(&mu);
        return 0;
    }
    if (i < 0 && (i = free_slot()) >= 0)
        claim(i, pkg, version, mod->hash, SLOT_LOADING);
    if (i >= 0) {
        slot *s = &slots[i];
        s->lo = q.lo;
        s->hi = q.hi;
        s->base = q.base;
        atomic_store_explicit(&s->state, SLOT_MAPPED, memory_order_release);
        mod->residue = i;
    }
    pthread_mutex_unlock(&mu);
    if (i < 0)
        return ph_error_set(PH_ENOMEM,
                            "package '%s': %d builds are still mapped; this one is not "
                            "watched for threads left after stop()",
                            pkg, PH_RESIDUE_SLOTS);
    return 0;
}

/* ---- what a package leaves ---- */

static int live_keys(const slot *s)
{
    return s->n_keys + s->keys_lost;
}

static int live_timers(const slot *s)
{
    return s->n_timers + s->timers_lost;
}

/* Appends the sentences for slot `s` to `out` (a malloc'd text, may be NULL). Under mu. */
static char *append_line(char *out, const char *line);

static char *append(char *out, const char *fmt, const slot *s, int n, const char *one,
                    const char *many)
{
    char line[512];
    snprintf(line, sizeof line, fmt, s->pkg, s->build, n, n == 1 ? "" : "s", n == 1 ? one : many);
    return append_line(out, line);
}

static char *append_line(char *out, const char *line)
{
    size_t have = out ? strlen(out) : 0, add = strlen(line);
    char *p = realloc(out, have + add + 2);
    if (!p)
        return out;
    if (have)
        p[have++] = '\n';
    memcpy(p + have, line, add + 1);
    return p;
}

#define TEXT_THREADS                                                                               \
    "package '%s' build %s: %d thread%s started by the package %s still running after stop(); "    \
    "its code stays mapped; join your threads in stop()"
#define TEXT_KEYS                                                                                  \
    "package '%s' build %s: %d pthread key%s with a destructor in the package %s never deleted; "  \
    "its code stays mapped; call pthread_key_delete() in stop()"
#define TEXT_TIMERS                                                                                \
    "package '%s' build %s: %d timer%s (timer_create, SIGEV_THREAD) calling into the package "     \
    "%s never deleted; its code stays mapped; call timer_delete() in stop()"
#define TEXT_LINGERING                                                                             \
    "package '%s' build %s: still mapped after it was unloaded (%d copy%.0s%.0s): most likely "    \
    "thread-local destructors (C++ thread_local, __cxa_thread_atexit) registered on threads "      \
    "that still run; every reload keeps another copy; give thread-local objects no destructor"

#define TEXT_STOP_HUNG                                                                             \
    "package '%s' build %s: stop() did not return within %g s; its code stays mapped (stop() "     \
    "may still run in it) and the host will not stop cleanly"

static char *slot_text(const slot *s, char *out)
{
    int st = atomic_load(&s->state), th = atomic_load(&s->threads);
    if (!mapped(st) || (st == SLOT_MAPPED && !atomic_load(&s->stopped)))
        return out;
    int hung = atomic_load(&s->stop_hung_ms);
    if (hung) {
        char line[512];
        snprintf(line, sizeof line, TEXT_STOP_HUNG, s->pkg, s->build, hung / 1000.0);
        out = append_line(out, line);
    }
    if (th)
        out = append(out, TEXT_THREADS, s, th, "is", "are");
    if (live_keys(s))
        out = append(out, TEXT_KEYS, s, live_keys(s), "was", "were");
    if (live_timers(s))
        out = append(out, TEXT_TIMERS, s, live_timers(s), "was", "were");
    if (st == SLOT_LINGERING)
        out = append(out, TEXT_LINGERING, s, 1, "", "");
    return out;
}

char *ph_residue_text(const char *pkg)
{
    char *out = NULL;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < PH_RESIDUE_SLOTS; i++)
        if (atomic_load(&slots[i].state) != SLOT_FREE && (!pkg || !strcmp(slots[i].pkg, pkg)))
            out = slot_text(&slots[i], out);
    pthread_mutex_unlock(&mu);
    return out;
}

int ph_residue_threads(const char *pkg)
{
    int n = 0;
    for (int i = 0; i < PH_RESIDUE_SLOTS; i++)
        if (mapped(atomic_load(&slots[i].state)) && (!pkg || !strcmp(slots[i].pkg, pkg)))
            n += atomic_load(&slots[i].threads);
    return n;
}

static void sleep_ms(int ms);
static void reset_signals(const slot *s);

/* Threads of stopped builds of `pkg` that still run. */
static int stopped_threads(const char *pkg)
{
    int n = 0;
    for (int i = 0; i < PH_RESIDUE_SLOTS; i++) {
        const slot *s = &slots[i];
        int st = atomic_load(&s->state);
        if (mapped(st) && (st != SLOT_MAPPED || atomic_load(&s->stopped)) && !strcmp(s->pkg, pkg))
            n += atomic_load(&s->threads);
    }
    return n;
}

void ph_residue_settle(const char *pkg)
{
    for (int waited = 0; pkg && stopped_threads(pkg) > 0 && waited < PH_RESIDUE_GRACE_MS;
         waited += 10)
        sleep_ms(10);
}

void ph_residue_after_step(const ph_module *mod, const char *what)
{
    slot *s = slot_at(mod ? mod->residue : -1);
    char names[128];
    if (ph_crash_reclaim(names, sizeof names) > 0)
        ph_log_warn("package '%s'%s%s replaced the host's crash handler (%s) in %s(); the host "
                    "put its own back, so that a crash is still reported and journaled; a "
                    "package must not handle SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGABRT",
                    s                                     ? s->pkg
                    : mod && mod->desc && mod->desc->name ? mod->desc->name
                                                          : "?",
                    s ? " build " : "", s ? s->build : "", names, what);
    if (!s)
        return;
    int stop = strcmp(what, "stop") == 0;
    atomic_store(&s->stopped, stop);
    if (stop)
        reset_signals(s); /* before a signal can reach code that no longer serves */
    int older = stop ? 0 : stopped_threads(s->pkg);
    if (!stop && strcmp(what, "start") == 0 && older > 0)
        ph_log_warn("package '%s': %d thread%s started by earlier builds still run%s; see "
                    "plughost status",
                    s->pkg, older, older == 1 ? "" : "s", older == 1 ? "s" : "");
}

void ph_residue_stop_hung(const ph_module *mod, int limit_ms)
{
    slot *s = slot_at(mod ? mod->residue : -1);
    if (!s)
        return;
    if (limit_ms > 0)
        atomic_store(&s->stopped, 1);
    atomic_store(&s->stop_hung_ms, limit_ms > 0 ? limit_ms : 0);
}

char *ph_residue_stops_hung(void)
{
    char *out = NULL;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < PH_RESIDUE_SLOTS; i++) {
        const slot *s = &slots[i];
        int hung = atomic_load(&s->stop_hung_ms);
        if (hung && mapped(atomic_load(&s->state))) {
            char line[512];
            snprintf(line, sizeof line, TEXT_STOP_HUNG, s->pkg, s->build, hung / 1000.0);
            out = append_line(out, line);
        }
    }
    pthread_mutex_unlock(&mu);
    return out;
}

/* ---- signal handlers left behind ---- */

static int in_slot(const slot *s, uintptr_t a)
{
    return a >= s->lo && a < s->hi;
}

static int in_any_package(uintptr_t a)
{
    return ph_residue_slot_of((const void *)a) >= 0;
}

static uintptr_t handler_of(const struct sigaction *sa)
{
    return (sa->sa_flags & SA_SIGINFO) ? (uintptr_t)sa->sa_sigaction : (uintptr_t)sa->sa_handler;
}

/* A signal nobody but the package expected: ignored rather than ending the host by default. */
static int ignore_when_orphaned(int sig)
{
    switch (sig) {
    case SIGUSR1:
    case SIGUSR2:
    case SIGALRM:
    case SIGVTALRM:
    case SIGPROF:
    case SIGIO:
    case SIGPIPE:
        return 1;
    default:
        return sig >= SIGRTMIN && sig <= SIGRTMAX;
    }
}

static int crash_signal(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT;
}

/* Restores what the host had for `sig`; returns how it was left ("ignored", ...). */
static const char *restore_signal(int sig)
{
    struct sigaction sa = baseline[sig];
    uintptr_t h = handler_of(&sa);
    if (h != (uintptr_t)SIG_DFL && h != (uintptr_t)SIG_IGN && in_any_package(h)) {
        memset(&sa, 0, sizeof sa); /* the host's one was a package's too */
        sa.sa_handler = SIG_DFL;
    }
    const char *how = "restored to the host's own disposition";
    if (sa.sa_handler == SIG_DFL && !(sa.sa_flags & SA_SIGINFO) && ignore_when_orphaned(sig)) {
        sa.sa_handler = SIG_IGN;
        how = "now ignored (its default would end the host)";
    }
    sigaction(sig, &sa, NULL);
    return how;
}

static void reset_signals(const slot *s)
{
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction cur;
        if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &cur) != 0)
            continue;
        uintptr_t h = handler_of(&cur);
        if (h == (uintptr_t)SIG_DFL || h == (uintptr_t)SIG_IGN || !in_slot(s, h))
            continue;
        const char *how =
            crash_signal(sig) ? "given back to the host's crash handler" : restore_signal(sig);
        if (crash_signal(sig)) {
            char names[128];
            ph_crash_reclaim(names, sizeof names);
        }
        ph_log_warn("package '%s' build %s left its handler for SIG%s in place after stop(); "
                    "SIG%s is %s; restore the previous handler in stop()",
                    s->pkg, s->build, sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
                    sigabbrev_np(sig) ? sigabbrev_np(sig) : "?", how);
    }
}

/* ---- unloading ---- */

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
    nanosleep(&ts, NULL);
}

int ph_residue_before_unmap(const ph_module *mod)
{
    slot *s = slot_at(mod ? mod->residue : -1);
    if (!s)
        return 0;
    /* A thread told to stop but not joined may be on its way out. */
    for (int waited = 0; atomic_load(&s->threads) > 0 && waited < PH_RESIDUE_GRACE_MS; waited += 10)
        sleep_ms(10);
    reset_signals(s);
    pthread_mutex_lock(&mu);
    int keep = atomic_load(&s->threads) > 0 || live_keys(s) > 0 || live_timers(s) > 0;
    char *text = NULL;
    if (keep) {
        atomic_store(&s->stopped, 1);
        atomic_store(&s->state, SLOT_KEPT);
        if (!s->logged)
            text = slot_text(s, NULL);
        s->logged = 1;
    }
    pthread_mutex_unlock(&mu);
    if (text)
        ph_log_warn("%s", text);
    free(text);
    return keep;
}

typedef struct {
    uintptr_t base;
    const char *name;
    int found;
} presence_query;

static int find_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    presence_query *q = data;
    if (info->dlpi_addr == q->base && info->dlpi_name && strcmp(info->dlpi_name, q->name) == 0) {
        q->found = 1;
        return 1;
    }
    return 0;
}

void ph_residue_after_unmap(const ph_module *mod)
{
    slot *s = slot_at(mod ? mod->residue : -1);
    if (!s || !mod->copy)
        return;
    presence_query q = {.base = s->base, .name = mod->copy};
    dl_iterate_phdr(find_object, &q);
    pthread_mutex_lock(&mu);
    char *text = NULL;
    atomic_store(&s->stopped, 1);
    if (q.found) {
        atomic_store(&s->state, SLOT_LINGERING);
        if (!s->logged)
            text = slot_text(s, NULL);
        s->logged = 1;
    } else {
        atomic_store(&s->state, SLOT_UNMAPPED);
    }
    pthread_mutex_unlock(&mu);
    if (text)
        ph_log_warn("%s", text);
    free(text);
}

/* ---- interposition hooks ---- */

int ph_residue_slot_of(const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    for (int i = 0; i < PH_RESIDUE_SLOTS; i++) {
        int st = atomic_load_explicit(&slots[i].state, memory_order_acquire);
        if (mapped(st) && st != SLOT_LOADING && in_slot(&slots[i], a))
            return i;
    }
    return -1;
}

void ph_residue_thread_count(int slot_index, int delta)
{
    slot *s = slot_at(slot_index);
    if (s)
        atomic_fetch_add(&s->threads, delta);
}

void ph_residue_thread_is(int slot_index)
{
    thread_slot = slot_index + 1;
}

void ph_residue_key_created(int slot_index, pthread_key_t key)
{
    slot *s = slot_at(slot_index);
    if (!s)
        return;
    pthread_mutex_lock(&mu);
    if (s->n_keys < KEYS_PER_SLOT)
        s->keys[s->n_keys++] = key;
    else
        s->keys_lost++;
    pthread_mutex_unlock(&mu);
}

void ph_residue_key_deleted(pthread_key_t key)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < PH_RESIDUE_SLOTS; i++) {
        slot *s = &slots[i];
        if (!mapped(atomic_load(&s->state)))
            continue;
        for (int k = 0; k < s->n_keys; k++)
            if (s->keys[k] == key) {
                s->keys[k] = s->keys[--s->n_keys];
                goto done;
            }
    }
done:
    pthread_mutex_unlock(&mu);
}

void ph_residue_timer_created(int slot_index, timer_t timer)
{
    slot *s = slot_at(slot_index);
    if (!s)
        return;
    pthread_mutex_lock(&mu);
    if (s->n_timers < KEYS_PER_SLOT)
        s->timers[s->n_timers++] = timer;
    else
        s->timers_lost++;
    pthread_mutex_unlock(&mu);
}

void ph_residue_timer_deleted(timer_t timer)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < PH_RESIDUE_SLOTS; i++) {
        slot *s = &slots[i];
        if (!mapped(atomic_load(&s->state)))
            continue;
        for (int k = 0; k < s->n_timers; k++)
            if (s->timers[k] == timer) {
                s->timers[k] = s->timers[--s->n_timers];
                goto done;
            }
    }
done:
    pthread_mutex_unlock(&mu);
}

/* ---- code of a build that runs outside any call: constructors, destructors ---- */

typedef struct {
    int on;
    char pkg[64], version[32], build[17];
    const char *what;
} doing_rec;
static _Thread_local doing_rec doing;

void ph_residue_doing(const char *pkg, const char *version, const char *build, const char *what)
{
    doing.on = 0; /* a signal meanwhile sees either nothing or the whole record */
    atomic_signal_fence(memory_order_seq_cst);
    if (!what)
        return;
    snprintf(doing.pkg, sizeof doing.pkg, "%s", pkg ? pkg : "?");
    snprintf(doing.version, sizeof doing.version, "%s", version ? version : "");
    snprintf(doing.build, sizeof doing.build, "%s", build ? build : "?");
    doing.what = what;
    atomic_signal_fence(memory_order_seq_cst);
    doing.on = 1;
}

void ph_residue_doing_module(const ph_module *mod, const char *what)
{
    const slot *s = slot_at(mod ? mod->residue : -1);
    if (s)
        ph_residue_doing(s->pkg, s->version, s->build, what);
    else
        ph_residue_doing(NULL, NULL, NULL, NULL);
}

int ph_residue_doing_now(const char **pkg, const char **version, const char **build,
                         const char **what)
{
    if (!doing.on)
        return 0;
    *pkg = doing.pkg;
    *version = doing.version;
    *build = doing.build;
    *what = doing.what;
    return 1;
}

int ph_residue_in_package_thread(void)
{
    return thread_slot != 0 || doing.on;
}

int ph_residue_blame_exit(uintptr_t pc, const char **pkg, const char **version, const char **build,
                          const char **how)
{
    const slot *s = slot_at(thread_slot - 1);
    if (s && atomic_load(&s->state) != SLOT_FREE) {
        *how = atomic_load(&s->stopped)
                   ? "in a thread the package started, still running after stop()"
                   : "in a thread the package started";
    } else {
        int i = pc ? ph_residue_slot_of((const void *)pc) : -1;
        if (i < 0)
            return 0;
        s = &slots[i];
        *how = "in its code, outside any call";
    }
    *pkg = s->pkg;
    *version = s->version;
    *build = s->build;
    return 1;
}

/* ---- crash reports ---- */

/* Which of two slots holding pc or addr a crash is blamed on: the code that ran beats
 * the address it touched, a mapped build a former one, a newer build an older one. */
static int better(const slot *c, const slot *best, uintptr_t pc)
{
    if (!best)
        return 1;
    int a = in_slot(c, pc), b = in_slot(best, pc);
    if (a != b)
        return a > b;
    int ma = mapped(atomic_load(&c->state)), mb = mapped(atomic_load(&best->state));
    if (ma != mb)
        return ma > mb;
    return c->seq > best->seq;
}

int ph_residue_blame(uintptr_t pc, uintptr_t addr, const char **pkg, const char **version,
                     const char **build, const char **how)
{
    const slot *best = slot_at(thread_slot - 1);
    if (best && atomic_load(&best->state) != SLOT_FREE) {
        *how = atomic_load(&best->stopped)
                   ? "in a thread the package started, still running after stop()"
                   : "in a thread the package started";
    } else {
        best = NULL;
        for (int i = 0; i < PH_RESIDUE_SLOTS; i++) {
            const slot *c = &slots[i];
            int st = atomic_load_explicit(&c->state, memory_order_acquire);
            if (st == SLOT_FREE || st == SLOT_LOADING || /* its range is being written */
                !(in_slot(c, pc) || in_slot(c, addr)))
                continue;
            if (better(c, best, pc))
                best = c;
        }
        if (!best)
            return 0;
        int former = atomic_load(&best->state) == SLOT_UNMAPPED;
        if (in_slot(best, pc))
            *how =
                former ? "in code of a build that was unloaded" : "in its code, outside any call";
        else
            *how = former ? "touching the range of a build that was unloaded"
                          : "touching its code or data, outside any call";
    }
    *pkg = best->pkg;
    *version = best->version;
    *build = best->build;
    return 1;
}
