#include "log.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

static _Atomic int current_level = PH_L_INFO; /* changed by a configuration reload */
static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const int level_priorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
static const char *const format_names[] = {"text", "json", "journal"};
static _Atomic int current_format = -1; /* -1: not chosen, decided at the first line */

int ph_log_stderr_is_journal(void)
{
    /* systemd.exec(5): JOURNAL_STREAM=DEVICE:INODE of the stream stderr was connected to */
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
           (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void ph_log_set_format(ph_log_format format)
{
    current_format = format;
}

ph_log_format ph_log_get_format(void)
{
    int f = current_format;
    if (f < 0) {
        f = ph_log_stderr_is_journal() ? PH_LOG_JOURNAL : PH_LOG_TEXT;
        current_format = f;
    }
    return (ph_log_format)f;
}

int ph_log_parse_format(const char *text, ph_log_format *out)
{
    for (int i = 0; i <= PH_LOG_JOURNAL; i++) {
        if (strcasecmp(text, format_names[i]) == 0) {
            *out = (ph_log_format)i;
            return 0;
        }
    }
    return PH_EINVAL;
}

void ph_log_set_level(ph_level level)
{
    current_level = level;
}
ph_level ph_log_get_level(void)
{
    return (ph_level)current_level;
}

int ph_log_parse_level(const char *text, ph_level *out)
{
    for (int i = 0; i <= PH_L_DEBUG; i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *out = (ph_level)i;
            return 0;
        }
    }
    return PH_EINVAL;
}

/*
 * Copies `s` into [o, end) with control characters escaped (\n, \r, \t,
 * \xHH), so text from a package or a request can never start a line of its
 * own or steer a terminal. Returns the new end.
 */
static char *escape_into(char *o, const char *end, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s && o < end; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != 0x7f) {
            *o++ = (char)c;
            continue;
        }
        if (end - o < 4)
            break;
        *o++ = '\\';
        if (c == '\n' || c == '\r' || c == '\t') {
            *o++ = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else {
            *o++ = 'x';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    return o;
}

/* RFC 3339 local time with milliseconds and the offset: 2026-11-30T07:15:00.123+00:00. */
static int rfc3339_now(char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    char zone[8];
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(zone, sizeof zone, "%z", &tm); /* +0000 -> +00:00 */
    return n + snprintf(out + n, size - (size_t)n, ".%03ld%.3s:%.2s", ts.tv_nsec / 1000000, zone,
                        zone + 3);
}

/* The message, cut at PH_LOG_MAX with how much was cut said at its end. */
static void format_message(char *msg, size_t size, const char *fmt, va_list ap)
{
    int n = vsnprintf(msg, size, fmt, ap);
    if (n < 0)
        msg[0] = '\0';
    else if ((size_t)n >= size) {
        char tail[48];
        int t = snprintf(tail, sizeof tail, "... [%zu bytes cut]", (size_t)n - (size - 1));
        memcpy(msg + size - 1 - (size_t)t, tail, (size_t)t + 1);
    }
}

static void write_line(const char *line, size_t len)
{
    /* One write per line keeps lines from different threads whole. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

static void emit(ph_level level, const char *who, const char *build, const char *msg)
{
    char line[PH_LOG_LINE], when[48];
    ph_log_format format = ph_log_get_format();
    if (format == PH_LOG_JOURNAL) {
        char text[PH_LOG_LINE];
        *escape_into(text, text + sizeof text - 1, msg) = '\0';
        sd_journal_send("MESSAGE=%s%s%s%s", who ? "[" : "", who ? who : "", who ? "] " : "", text,
                        "PRIORITY=%d", level_priorities[level], "SYSLOG_IDENTIFIER=plughost",
                        "PLUGHOST_INSTANCE=%s", who ? who : "", "PLUGHOST_BUILD=%s",
                        build ? build : "", NULL);
        return;
    }
    rfc3339_now(when, sizeof when);
    if (format == PH_LOG_JSON) {
        /* jansson escapes every control character: the object stays on one line */
        json_t *o = json_pack("{s:s,s:s,s:s?,s:s?,s:s}", "time", when, "level", level_names[level],
                              "instance", who, "build", build, "message", msg);
        if (!o) { /* text that is not UTF-8: its other bytes become '?' rather than lost */
            char ascii[PH_LOG_MAX + 1];
            size_t i = 0;
            for (; msg[i] && i < PH_LOG_MAX; i++)
                ascii[i] = (unsigned char)msg[i] < 0x80 ? msg[i] : '?';
            ascii[i] = '\0';
            o = json_pack("{s:s,s:s,s:s?,s:s?,s:s}", "time", when, "level", level_names[level],
                          "instance", who, "build", build, "message", ascii);
        }
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (text) {
            size_t len = strlen(text);
            text[len] = '\n'; /* json_dumps' NUL becomes the line's end */
            write_line(text, len + 1);
        }
        free(text);
        json_decref(o);
        return;
    }
    int n = snprintf(line, sizeof line, "%s %-5s ", when, level_names[level]);
    char *o = line + n, *end = line + sizeof line - 1; /* room for the newline */
    if (who) {
        o = escape_into(o, end, "[");
        o = escape_into(o, end, who);
        o = escape_into(o, end, "] ");
    }
    char *after = escape_into(o, end, msg);
    if (after > end - 4 && end - o > 16) { /* the line is full: escaping outgrew it */
        memcpy(end - 10, " ... [cut]", 10);
        after = end;
    }
    o = after;
    *o++ = '\n';
    write_line(line, (size_t)(o - line));
}

void ph_log_buildv(ph_level level, const char *who, const char *build, const char *fmt, va_list ap)
{
    if ((int)level > current_level)
        return;
    char msg[PH_LOG_MAX + 1];
    format_message(msg, sizeof msg, fmt, ap);
    emit(level, who, build, msg);
}

void ph_logv(ph_level level, const char *who, const char *fmt, va_list ap)
{
    ph_log_buildv(level, who, NULL, fmt, ap);
}

void ph_logf(ph_level level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ph_logv(level, who, fmt, ap);
    va_end(ap);
}
