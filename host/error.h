/*
 * Error codes and the thread-local last error.
 *
 * Functions return 0 on success or a negative PH_E* code. The detail a user
 * needs (file:line, package, versions, the cycle path) is written once, where
 * the failure is first known, with ph_error_set(); the caller that decides
 * what to do reads it with ph_error_last() and logs or prints it.
 */
#ifndef PH_HOST_ERROR_H
#define PH_HOST_ERROR_H

#include <stdarg.h>

/* X(NAME, value, code word for APIs, default text). Appended, never renumbered. */
#define PH_ERRORS(X)                                                                               \
    X(OK, 0, "ok", "success")                                                                      \
    X(NOMEM, -1, "no_memory", "out of memory")                                                     \
    X(INVAL, -2, "invalid", "invalid argument")                                                    \
    X(NOTFOUND, -3, "not_found", "not found")                                                      \
    X(IO, -4, "io", "input/output error")                                                          \
    X(CONFIG, -5, "config", "invalid configuration")                                               \
    X(MANIFEST, -6, "manifest", "invalid package manifest")                                        \
    X(DEPENDENCY, -7, "dependency", "unsatisfied dependency")                                      \
    X(CYCLE, -8, "cycle", "dependency cycle")                                                      \
    X(ABI, -9, "abi", "ABI mismatch")                                                              \
    X(LOAD, -10, "load", "cannot load package")                                                    \
    X(PACKAGE, -11, "package_error", "the package reported an error")                              \
    X(PERM, -12, "forbidden", "not permitted")                                                     \
    X(ARGS, -13, "bad_args", "bad arguments")                                                      \
    X(CONFLICT, -14, "conflict", "conflict")                                                       \
    X(BUSY, -15, "reloading", "temporarily unavailable, retry")                                    \
    X(DECLINED, -16, "declined", "declined")                                                       \
    X(TOOBIG, -17, "too_large", "too large")                                                       \
    X(AUTH, -18, "unauthorized", "authentication required")                                        \
    X(SQL, -19, "storage", "storage error")                                                        \
    X(STATE, -20, "state", "not in a state that allows this")                                      \
    X(MIGRATION, -21, "migration", "schema migration failed")                                      \
    X(INTERNAL, -22, "internal", "internal error")                          \
    X(RATE, -23, "rate_limited", "too many requests; retry later")          \
    X(UNREACHABLE, -24, "unreachable", "nothing listens at that address")                          \
    X(TIMEOUT, -25, "timeout", "the call ran past its time limit")                                 \
    X(LIMIT, -26, "too_many_calls", "too many calls at once; retry later")

enum {
#define PH_ERR_ENUM_(name, value, word, text) PH_E##name = value,
    PH_ERRORS(PH_ERR_ENUM_)
#undef PH_ERR_ENUM_
};

/**
 * Records the last error of this thread and returns `code` (so callers can
 * `return ph_error_set(PH_EINVAL, "...")`). The package error word (see
 * ph_error_set_word) is reset to the code's default word.
 */
int ph_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ph_error_setv(int code, const char *fmt, va_list ap);
/**
 * Like ph_error_set, with an explicit machine-readable word (a package's own
 * error code such as "divide_by_zero"). `word` may be NULL for the default.
 */
int ph_error_set_word(int code, const char *word, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ph_error_set_wordv(int code, const char *word, const char *fmt, va_list ap);
/** Prefixes the current message with "prefix: " (adds context on the way up). */
void ph_error_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** The last error's message of this thread; "" if none. Borrowed until the next set. */
const char *ph_error_last(void);
/** The last error's code (0 if none). */
int ph_error_last_code(void);
/** The last error's word (package code or the default word of its code). */
const char *ph_error_last_word(void);
/** Clears this thread's last error. */
void ph_error_clear(void);

/** Default word ("bad_args") and text of a code; "unknown" for unknown codes. */
const char *ph_error_word(int code);
const char *ph_error_text(int code);

/** What to do when the host ran out of file descriptors (appended to such errors). */
#define PH_EMFILE_HINT                                                                             \
    "the host has too many files open; raise its open-file limit (ulimit -n, systemd "            \
    "LimitNOFILE=)"

#endif
