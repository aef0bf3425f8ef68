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

/*
 * X(NAME, value, code word for APIs, default text, HTTP status). Appended,
 * never renumbered. The status is what HTTP answers (RFC 9110) and what the
 * CLI's client reads back; packages may choose another for their own errors
 * (ph_error_status in the SDK).
 */
#define PH_ERRORS(X)                                                                               \
    X(OK, 0, "ok", "success", 200)                                                                 \
    X(NOMEM, -1, "no_memory", "out of memory", 500)                                                \
    X(INVAL, -2, "invalid", "invalid argument", 400)                                               \
    X(NOTFOUND, -3, "not_found", "not found", 404)                                                 \
    X(IO, -4, "io", "input/output error", 500)                                                     \
    X(CONFIG, -5, "config", "invalid configuration", 500)                                          \
    X(MANIFEST, -6, "manifest", "invalid package manifest", 500)                                   \
    X(DEPENDENCY, -7, "dependency", "unsatisfied dependency", 500)                                 \
    X(CYCLE, -8, "cycle", "dependency cycle", 500)                                                 \
    X(ABI, -9, "abi", "ABI mismatch", 500)                                                         \
    X(LOAD, -10, "load", "cannot load package", 500)                                               \
    X(PACKAGE, -11, "package_error", "the package reported an error", 500)                         \
    X(PERM, -12, "forbidden", "not permitted", 403)                                                \
    X(ARGS, -13, "bad_args", "bad arguments", 400)                                                 \
    X(CONFLICT, -14, "conflict", "conflict", 409)                                                  \
    X(BUSY, -15, "reloading", "temporarily unavailable, retry", 503)                               \
    X(DECLINED, -16, "declined", "declined", 500)                                                  \
    X(TOOBIG, -17, "too_large", "too large", 413)                                                  \
    X(AUTH, -18, "unauthorized", "authentication required", 401)                                   \
    X(SQL, -19, "storage", "storage error", 500)                                                   \
    X(STATE, -20, "state", "not in a state that allows this", 503)                                 \
    X(MIGRATION, -21, "migration", "schema migration failed", 500)                                 \
    X(INTERNAL, -22, "internal", "internal error", 500)                                            \
    X(RATE, -23, "rate_limited", "too many requests; retry later", 429)                            \
    X(UNREACHABLE, -24, "unreachable", "nothing listens at that address", 502)                     \
    X(TIMEOUT, -25, "timeout", "the call ran past its time limit", 504)                            \
    X(LIMIT, -26, "too_many_calls", "too many calls at once; retry later", 503)

enum {
#define PH_ERR_ENUM_(name, value, word, text, http) PH_E##name = value,
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
/** The HTTP status of a code (the table's column); 500 for unknown codes. */
unsigned ph_error_http_status(int code);
/** The code whose default word is `word` ("rate_limited" -> PH_ERATE), or 0 if none. */
int ph_error_code_of_word(const char *word);
/**
 * The code a client reads back from an HTTP error: the host's word when it
 * is one of the table's, else the first code with that status (PH_EPACKAGE
 * for other 5xx, PH_EARGS for other 4xx).
 */
int ph_error_code_of_http(unsigned status, const char *word);
/**
 * Overrides the HTTP status of this thread's last error (a package's choice,
 * or 422 for a validate hook's refusal); 0 while none was set. Reset by every
 * ph_error_set*. `status` outside 400-599 is ignored.
 */
void ph_error_set_http_status(unsigned status);
/** The status the last error answers with: the override, else its code's. */
unsigned ph_error_last_http_status(void);
/** The override alone: 0 when the last error's code decides its status. */
unsigned ph_error_chosen_http_status(void);
const char *ph_error_text(int code);

/** What to do when the host ran out of file descriptors (appended to such errors). */
#define PH_EMFILE_HINT                                                                             \
    "the host has too many files open; raise its open-file limit (ulimit -n, systemd "             \
    "LimitNOFILE=)"

/**
 * strerror(e), with PH_EMFILE_HINT after it when e is EMFILE or ENFILE, so
 * every "cannot open" names the real cause and what to do. The text is in a
 * thread-local buffer, valid until this thread's next call.
 */
const char *ph_strerror(int e);

#endif
