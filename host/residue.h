/*
 * What a package leaves behind after stop(): threads it started, pthread
 * keys with a destructor in its code, signal handlers pointing into it,
 * thread-local destructors that keep its mapping alive. The host records
 * every loaded build's address range (a fixed table, readable from a signal
 * handler), counts the threads and keys whose code lies in a package
 * (interpose.c wraps pthread_create and pthread_key_create in the plughost
 * binary), and decides at unload whether the code may be unmapped: a build
 * whose threads still run or whose keys or timers were never deleted stays mapped
 * (and says so), and a crash in a former build's range is still blamed on
 * its package.
 */
#ifndef PH_HOST_RESIDUE_H
#define PH_HOST_RESIDUE_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

struct ph_module;

/** How many builds the table remembers (unmapped ones are recycled, oldest first). */
#define PH_RESIDUE_SLOTS 1024

/**
 * Records the address range of `mod` (dlopened, mod->copy its private
 * path) under package `pkg` version `version` and build mod->hash; sets
 * mod->residue. Also takes the host's signal dispositions once, before the
 * first package code runs. Returns 0, or PH_ENOMEM when every slot holds a
 * build still mapped (the module then loads untracked: mod->residue is -1).
 */
int ph_residue_track(struct ph_module *mod, const char *pkg, const char *version);

/**
 * Before the host dlopens build `build` of `pkg`: reserves its slot and
 * marks the calling thread as loading it, so that threads, keys and timers
 * its ELF constructors create are counted against it (its range is not
 * known yet). ph_residue_track then fills that slot in; after a failed
 * dlopen, ph_residue_loading_failed(the returned slot). Returns the slot
 * or -1 (every slot holds a mapped build).
 */
int ph_residue_loading(const char *pkg, const char *version, const char *build);
void ph_residue_loading_failed(int slot);
/** For interpose.c: the slot the calling thread is loading (its constructors run), or -1. */
int ph_residue_loading_now(void);

/**
 * Called after a lifecycle callback of `mod` returned (`what`: "prepare",
 * "start", "stop"): reinstalls the host's crash handlers if the package
 * replaced them (logs a warning naming the package). After "stop": notes
 * that the build no longer serves and resets the signal handlers still
 * pointing into it (logged). After "start": logs how many threads stopped
 * builds of the package still run. Thread-safe.
 */
void ph_residue_after_step(const struct ph_module *mod, const char *what);

/**
 * Before dlclose: waits up to PH_RESIDUE_GRACE_MS for the threads the build
 * started, then returns 1 (keep it mapped: threads still run or keys with
 * its destructor were never deleted; logged once, shown by
 * ph_residue_text) or 0 (unmap it). Resets signal handlers pointing into
 * the build either way (logged).
 */
int ph_residue_before_unmap(const struct ph_module *mod);
#define PH_RESIDUE_GRACE_MS 200

/** After dlclose: notes whether the mapping is really gone; logs once if it stays. */
void ph_residue_after_unmap(const struct ph_module *mod);

/**
 * What builds of package `pkg` (NULL: every package) that no longer serve
 * still leave behind, one sentence per build and per line, e.g. "package
 * 'x' build 1a2b...: 1 thread started by the package is still running
 * after stop(); its code stays mapped; join your threads in stop()".
 * NULL when there is nothing. Caller frees.
 */
char *ph_residue_text(const char *pkg);

/**
 * The stop() of `mod` did not return within limit_ms (its build stays
 * mapped: the host pinned it); ph_residue_text then says so and the host's
 * shutdown is not clean. limit_ms 0: it returned after all.
 */
void ph_residue_stop_hung(const struct ph_module *mod, int limit_ms);
/** One line per build whose stop() has not returned (NULL: none). Caller frees. */
char *ph_residue_stops_hung(void);

/**
 * Waits up to PH_RESIDUE_GRACE_MS for the threads of stopped builds of
 * `pkg` to end (a thread told to stop but not joined is on its way out).
 */
void ph_residue_settle(const char *pkg);

/** How many threads started by package code run now (every build of `pkg`; NULL: all). */
int ph_residue_threads(const char *pkg);

/*
 * For interpose.c (the plughost binary). Slots are indexes into the table;
 * -1 means "not package code".
 */
/**
 * Nonzero once a package has been loaded: until then the wrappers pass
 * straight through (a sanitizer's runtime creates keys before it can run
 * instrumented code, so they must not call into the host that early).
 */
extern _Atomic int ph_residue_tracking;
/** The slot whose mapped range holds `addr`, or -1. Lock-free. */
int ph_residue_slot_of(const void *addr);
/** A thread whose start routine lies in `slot` began (+1) or ended (-1). */
void ph_residue_thread_count(int slot, int delta);
/** The calling thread was started by package code of `slot` (crash reports blame it). */
void ph_residue_thread_is(int slot);
/** A key whose destructor lies in `slot` was created / any key was deleted. */
void ph_residue_key_created(int slot, pthread_key_t key);
void ph_residue_key_deleted(pthread_key_t key);
/** A SIGEV_THREAD timer whose callback lies in `slot` was created / any timer was deleted. */
void ph_residue_timer_created(int slot, timer_t timer);
void ph_residue_timer_deleted(timer_t timer);

/**
 * The calling thread runs code of a build outside any call: its ELF
 * constructors (dlopen) or destructors (dlclose). `what` (a static string,
 * e.g. "in its constructor, while the host loaded it (dlopen)") ends the
 * crash or exit report that happens meanwhile; NULL: the step is over.
 * The strings are copied.
 */
void ph_residue_doing(const char *pkg, const char *version, const char *build, const char *what);
/** The same for a tracked module (its slot's names); a no-op for an untracked one. */
void ph_residue_doing_module(const struct ph_module *mod, const char *what);
/**
 * Async-signal-safe: what ph_residue_doing set on this thread (1), or 0.
 * The strings stay valid while the thread lives.
 */
int ph_residue_doing_now(const char **pkg, const char **version, const char **build,
                         const char **what);

/** True on a thread the package started, or while a build's constructor or destructor runs. */
int ph_residue_in_package_thread(void);

/**
 * For exit reports (async-signal-safe): if the calling thread was started by
 * a package, or `pc` (the caller's return address) lies in a mapped build,
 * sets the out pointers and returns 1; `*how` is "in a thread the package
 * started" or "in its code". 0 otherwise.
 */
int ph_residue_blame_exit(uintptr_t pc, const char **pkg, const char **version, const char **build,
                          const char **how);

/**
 * For the crash handler (async-signal-safe): if the calling thread was
 * started by a package, or `pc` or `addr` lies in a build's range (serving
 * or former), sets the out pointers (to strings that stay valid) and
 * returns 1; `*how` says which ("in a thread the package started", ...).
 */
int ph_residue_blame(uintptr_t pc, uintptr_t addr, const char **pkg, const char **version,
                     const char **build, const char **how);

#endif
