#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <stdatomic.h>
#include <unistd.h>

#include "error.h"

static _Atomic int current_level = PH_L_INFO; /* changed by a configuration reload */
static const char *const level_names[] = {"error", "warn", "info", "debug"};

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

void ph_logv(ph_level level, const char *who, const char *fmt, va_list ap)
{
    if ((int)level > current_level)
        return;
    char line[4096], msg[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, ".%03ld %-5s ", ts.tv_nsec / 1000000,
                  level_names[level]);
    char *o = line + n, *end = line + sizeof line - 1; /* room for the newline */
    if (who) {
        o = escape_into(o, end, "[");
        o = escape_into(o, end, who);
        o = escape_into(o, end, "] ");
    }
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
        msg[0] = '\0';
    o = escape_into(o, end, msg);
    *o++ = '\n';
    /* One write per line keeps lines from different threads whole. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)(o - line));
    (void)w;
}

void ph_logf(ph_level level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ph_logv(level, who, fmt, ap);
    va_end(ap);
}
