#include "log.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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
static _Atomic int journal_probed;      /* journald's socket was tried (journal_probe) */

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
    journal_probed = 0; /* journal again (a reload): tried again */
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
 * The length of the UTF-8 sequence at `s` (2 to 4) and its code point in
 * *cp, or 0 if it is not valid UTF-8 (a stray continuation byte, a
 * truncated sequence, an overlong form, a surrogate, beyond U+10FFFF).
 */
static int utf8_seq(const unsigned char *s, unsigned *cp)
{
    static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
    int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || (n == 3 && s[0] > 0xef))
        return 0;
    unsigned c = s[0] & (0x7f >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/*
 * Copies `s` into [o, end) with control characters escaped (\n, \r, \t,
 * \xHH for the other C0 controls and DEL), so text from a package or a
 * request can never start a line of its own or steer a terminal. UTF-8
 * passes as it is but for the C1 controls U+0080..U+009F (\u0085; a
 * terminal may read them as escapes); a byte that is not part of valid
 * UTF-8 becomes \xHH. Returns the new end.
 */
static char *escape_into(char *o, const char *end, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    while (*s && o < end) {
        unsigned char c = (unsigned char)*s;
        unsigned cp = 0;
        int n = c >= 0x80 ? utf8_seq((const unsigned char *)s, &cp) : 1;
        if ((c >= 0x20 && c < 0x7f) || (n > 1 && cp > 0x9f)) {
            if (end - o < n)
                break;
            memcpy(o, s, (size_t)n);
            o += n;
            s += n;
            continue;
        }
        if (end - o < 6)
            break;
        *o++ = '\\';
        if (c == '\n' || c == '\r' || c == '\t') {
            *o++ = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (n > 1) { /* a C1 control */
            memcpy(o, "u00", 3);
            o[3] = hex[cp >> 4];
            o[4] = hex[cp & 15];
            o += 5;
        } else {
            *o++ = 'x';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
        s += n > 1 ? n : 1;
    }
    return o;
}

void ph_log_escape(char *buf, size_t size, const char *s)
{
    if (size)
        *escape_into(buf, buf + size - 1, s ? s : "") = '\0';
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

/*
 * journald's socket: sd_journal_send drops lines without a word when it is
 * missing, so it is tried once before the first journal line. 0 or errno.
 */
static int journal_probe(void)
{
    static const char path[] = "/run/systemd/journal/socket";
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, path, sizeof path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), e = 0;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        e = errno;
    if (fd >= 0)
        close(fd);
    return e;
}

/* No journald to take the lines: stderr as text from now on, said in one line. */
static void journal_unreachable(int e)
{
    char warn[256], when[48];
    int expected = PH_LOG_JOURNAL;
    if (!atomic_compare_exchange_strong(&current_format, &expected, PH_LOG_TEXT))
        return; /* another thread said it */
    rfc3339_now(when, sizeof when);
    int n = snprintf(warn, sizeof warn,
                     "%s warn  journald is not reachable (/run/systemd/journal/socket: %s): "
                     "logging to stderr as text\n",
                     when, ph_strerror(e));
    write_line(warn, n > 0 && (size_t)n < sizeof warn ? (size_t)n : 0);
}

static void emit(ph_level level, const char *who, const char *build, const char *msg)
{
    char line[PH_LOG_LINE], when[48];
    ph_log_format format = ph_log_get_format();
    if (format == PH_LOG_JOURNAL && !atomic_exchange(&journal_probed, 1)) {
        int e = journal_probe();
        if (e)
            journal_unreachable(e);
        format = ph_log_get_format();
    }
    if (format == PH_LOG_JOURNAL) {
        char text[PH_LOG_LINE];
        *escape_into(text, text + sizeof text - 1, msg) = '\0';
        int rc = sd_journal_send("MESSAGE=%s%s%s%s", who ? "[" : "", who ? who : "",
                                 who ? "] " : "", text, "PRIORITY=%d", level_priorities[level],
                                 "SYSLOG_IDENTIFIER=plughost", "PLUGHOST_INSTANCE=%s",
                                 who ? who : "", "PLUGHOST_BUILD=%s", build ? build : "", NULL);
        if (rc >= 0)
            return;
        journal_unreachable(-rc);
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
    if (after > end - 6 && end - o > 16) { /* the line is full: escaping outgrew it */
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
