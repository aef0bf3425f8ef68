/*
 * Logging: one line per event to stderr, "time level [who] message".
 * Thread-safe (one write(2) per line). Control characters in the message and
 * in `who` are escaped (\n, \x1b...): a line is always exactly one event.
 */
#ifndef PH_HOST_LOG_H
#define PH_HOST_LOG_H

#include <stdarg.h>

typedef enum { PH_L_ERROR = 0, PH_L_WARN = 1, PH_L_INFO = 2, PH_L_DEBUG = 3 } ph_level;

/** Sets the level below which lines are dropped (default info). */
void ph_log_set_level(ph_level level);
ph_level ph_log_get_level(void);
/** Parses "error|warn|info|debug"; returns 0 or PH_EINVAL. */
int ph_log_parse_level(const char *text, ph_level *out);

/** `who` is an instance name or NULL for the host. */
void ph_logf(ph_level level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ph_logv(ph_level level, const char *who, const char *fmt, va_list ap);

#define ph_log_error(...) ph_logf(PH_L_ERROR, NULL, __VA_ARGS__)
#define ph_log_warn(...) ph_logf(PH_L_WARN, NULL, __VA_ARGS__)
#define ph_log_info(...) ph_logf(PH_L_INFO, NULL, __VA_ARGS__)
#define ph_log_debug(...) ph_logf(PH_L_DEBUG, NULL, __VA_ARGS__)

#endif
