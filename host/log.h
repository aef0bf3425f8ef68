/*
 * Logging: one line per event, to stderr (or to the journal). Thread-safe
 * (one write(2) per line). Control characters in the message and in `who`
 * are escaped (\n, \x1b...): a line is always exactly one event. A message
 * longer than PH_LOG_MAX bytes is cut and says how much was cut; a text line
 * is at most PH_LOG_LINE bytes (" ... [cut]" at its end when escaping made it
 * longer).
 *
 * Formats (--log-format, [host] log_format):
 *   text     "2026-11-30T07:15:00.123+00:00 info  [instance] message" (RFC 3339 time)
 *   json     one JSON object per line: time, level, instance, build, message
 *   journal  systemd's journal through libsystemd (sd_journal_send): PRIORITY
 *            from the level, PLUGHOST_INSTANCE and PLUGHOST_BUILD fields;
 *            chosen by default when stderr is the journal (JOURNAL_STREAM).
 */
#ifndef PH_HOST_LOG_H
#define PH_HOST_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum { PH_L_ERROR = 0, PH_L_WARN = 1, PH_L_INFO = 2, PH_L_DEBUG = 3 } ph_level;
typedef enum { PH_LOG_TEXT = 0, PH_LOG_JSON = 1, PH_LOG_JOURNAL = 2 } ph_log_format;

/** Bytes of a message kept; the rest is cut, the line says so. */
#define PH_LOG_MAX 4000
/** Bytes of a text line at most, newline included (escaping can make a message longer). */
#define PH_LOG_LINE 4096

/** Sets the level below which lines are dropped (default info). */
void ph_log_set_level(ph_level level);
ph_level ph_log_get_level(void);
/** Parses "error|warn|info|debug"; returns 0 or PH_EINVAL. */
int ph_log_parse_level(const char *text, ph_level *out);

/** Sets the format (default: journal when stderr is the journal, else text). */
void ph_log_set_format(ph_log_format format);
ph_log_format ph_log_get_format(void);
/** Parses "text|json|journal"; returns 0 or PH_EINVAL. */
int ph_log_parse_format(const char *text, ph_log_format *out);
/** True when stderr is connected to systemd's journal (JOURNAL_STREAM names it). */
int ph_log_stderr_is_journal(void);

/** `who` is an instance name or NULL for the host. */
void ph_logf(ph_level level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ph_logv(ph_level level, const char *who, const char *fmt, va_list ap);
/** A package's line: `who` its instance, `build` its build id (or NULL). */
void ph_log_buildv(ph_level level, const char *who, const char *build, const char *fmt, va_list ap);

#define ph_log_error(...) ph_logf(PH_L_ERROR, NULL, __VA_ARGS__)
#define ph_log_warn(...) ph_logf(PH_L_WARN, NULL, __VA_ARGS__)
#define ph_log_info(...) ph_logf(PH_L_INFO, NULL, __VA_ARGS__)
#define ph_log_debug(...) ph_logf(PH_L_DEBUG, NULL, __VA_ARGS__)

/**
 * Copies the text `s` into buf (size bytes, NUL-terminated, cut to fit) the
 * way a log line holds it: control characters escaped (\n, \t, \xHH, C1 as
 * \u0085-style) and bytes that are not UTF-8 as \xHH, so text that came
 * from a package, a request or an archive cannot steer a terminal. For
 * anything printed to a terminal, such as the CLI's error lines.
 */
void ph_log_escape(char *buf, size_t size, const char *s);

#endif
