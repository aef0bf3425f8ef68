/*
 * Fatal signals in package code. A SIGSEGV (or SIGBUS, SIGILL, SIGFPE,
 * SIGABRT) cannot be recovered from in-process: the package may hold a lock
 * or have corrupted the heap. The host says which package, instance, build
 * and method the crash happened in, appends the same line to a crash
 * journal, and lets the signal end the process (a supervisor restarts it).
 * The handler runs on an alternate stack (a stack overflow is reported too),
 * and exit() called from package code is reported the same way.
 * The handler only uses async-signal-safe calls.
 */
#ifndef PH_HOST_CRASH_H
#define PH_HOST_CRASH_H

#include <stddef.h>

/**
 * Installs the handlers. `journal` (may be NULL) is a file the crash lines
 * are appended to (opened now, O_APPEND). Returns 0 or PH_EIO.
 */
int ph_crash_install(const char *journal);

/**
 * Gives the calling thread an alternate signal stack (once), so that a
 * stack overflow in package code still reaches the handler; a no-op until
 * ph_crash_install. Called before a thread runs package code
 * (ph_frame_push); the stack is freed when the thread exits.
 */
void ph_crash_thread_ready(void);

/**
 * Puts the host's handlers back for every fatal signal whose handler a
 * package replaced (a no-op before ph_crash_install). Writes their names
 * ("SIGSEGV, SIGBUS") to `names` (of `size`); returns how many.
 */
int ph_crash_reclaim(char *names, size_t size);

/**
 * Reports an exit (`call`: "_exit", "_Exit", "quick_exit") by package code
 * before it happens, like a crash (stderr and the journal): the package,
 * build and where it ran (a call, its constructor or destructor, a thread
 * it started, or `caller`, the return address, in its code). Says nothing
 * for the host's own exits or a forked child's. Async-signal-safe.
 */
void ph_crash_exit_called(const char *call, int status, const void *caller);

/**
 * Before the host dlopens build `build` of package `pkg` (its constructors
 * run then): PH_EPACKAGE with the quarantine message if the journal holds
 * PH_CRASH_QUARANTINE crashes of it in its constructor (while the host
 * loaded it) in the window, else 0 (also without a journal). Other crashes
 * quarantine a loaded instance (host.c), which stays mounted and answers 503.
 */
int ph_crash_quarantined(const char *pkg, const char *build);

/** The words a hung constructor is journaled with (and found by, for quarantine). */
#define PH_LOAD_HUNG "its ELF constructor did not return within"

/**
 * The loader's watchdog: build `build` of `pkg` did not come back from the
 * host's dlopen within limit_ms. Reports it (stderr and the journal) naming
 * the package and build and saying the host exits with `status`; the
 * journal line quarantines the build (ph_crash_quarantined) for good.
 */
void ph_crash_load_hung(const char *pkg, const char *version, const char *build, int limit_ms,
                        int status);

/**
 * A call package code must not make (`call`, e.g. "kill(getpid(), SIGTERM)"):
 * if the calling thread runs package code (a call, a constructor, a thread
 * it started, or `caller`, the return address, in a build), reports and
 * journals "<call> called in package 'x' V (build B), ...; refused (EPERM):
 * <why>" and returns 1 (the caller then refuses it); 0 for the host's own
 * calls (or before ph_crash_install), which go ahead. Async-signal-safe.
 */
int ph_crash_refused(const char *call, const void *caller, const char *why);

/** Where a crash or exit in a build's constructor happened (the loader's words, journaled). */
#define PH_WHILE_LOADING "in its constructor, while the host loaded it (dlopen)"

/** Crashes that quarantine a build, and the window they are counted in. */
#define PH_CRASH_QUARANTINE 3
#define PH_CRASH_WINDOW_S 600

/**
 * How many crashes of build `build` of package `pkg` the journal records in
 * the last `window_s` seconds (0 when the journal does not exist). Reads
 * only; lines it cannot parse are skipped.
 */
int ph_crash_count(const char *journal, const char *pkg, const char *build, long window_s);

#endif
