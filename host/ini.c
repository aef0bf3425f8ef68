/*
 * The INI reader shared by host.ini and package.ini. One function decides
 * what a line is (next_line, then read_line); handlers only ever see events.
 */
#include "ini.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

static const char bom[] = "\xEF\xBB\xBF";

typedef struct ini_seen {
    char *section;
    char *key;
    int line;
} ini_seen;

typedef struct ini_run {
    const char *name; /* the path shown in messages */
    const ph_ini_opts *opts;
    ph_ini_handler handler;
    void *user;
    const char *text;
    size_t len, pos;
    int line;
    char *section;  /* the current section, "" before any */
    bool after_key; /* the previous non-blank line was a key */
    ini_seen *seen;
    size_t n_seen, cap_seen;
} ini_run;

static int run_fail(ini_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records a format error at the current line: "path:line: message". */
static int run_fail(ini_run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ph_error_setv(r->opts->code, fmt, ap);
    va_end(ap);
    ph_error_wrap("%s:%d", r->name, r->line);
    return rc;
}

static int nomem(void)
{
    return ph_error_set(PH_ENOMEM, "out of memory");
}

bool ph_ini_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

char *ph_ini_trimmed(const char *s, size_t n)
{
    while (n && ph_ini_is_blank(*s))
        s++, n--;
    while (n && ph_ini_is_blank(s[n - 1]))
        n--;
    return strndup(s, n);
}

/* Length of the UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t need;
    unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        need = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        need = 3;
        lo = s[0] == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
        hi = s[0] == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        need = 4;
        lo = s[0] == 0xF0 ? 0x90 : 0x80;
        hi = s[0] == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
    } else
        return 0;
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return need;
}

/* Refuses bytes that make a line mean different things to different readers. */
static int check_bytes(ini_run *r, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t col = i + 1;
        if (u[i] == 0)
            return run_fail(r, "line contains a NUL byte; is this a text file?");
        if (u[i] == '\r')
            return run_fail(r,
                            "line contains a carriage return (CR) at column %zu that does not "
                            "end the line; save the file with LF or CRLF line ends",
                            col);
        if ((u[i] < 0x20 && u[i] != '\t') || u[i] == 0x7F)
            return run_fail(r,
                            "line contains the control character 0x%02X at column %zu; remove it",
                            u[i], col);
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_len(u + i, n - i);
        if (!k)
            return run_fail(r,
                            "line is not valid UTF-8 (byte 0x%02X at column %zu); save the "
                            "file as UTF-8",
                            u[i], col);
        if (k == 3 && memcmp(u + i, bom, 3) == 0)
            return run_fail(r,
                            "line contains a byte order mark (U+FEFF) at column %zu; it is "
                            "allowed only at the very start of the file; remove it",
                            col);
        i += k;
    }
    return 0;
}

/*
 * The next line of the file without its line end (and without the BOM on
 * line 1), checked byte by byte. 1 with *out and *out_n set, 0 at the end, or an
 * error.
 */
static int next_line(ini_run *r, const char **out, size_t *out_n)
{
    if (r->pos >= r->len)
        return 0;
    const char *s = r->text + r->pos;
    const char *nl = memchr(s, '\n', r->len - r->pos);
    size_t n = nl ? (size_t)(nl - s) : r->len - r->pos;
    r->pos += n + (nl ? 1 : 0);
    r->line++;
    if (n && s[n - 1] == '\r')
        n--;
    if (r->line == 1 && n >= 3 && memcmp(s, bom, 3) == 0)
        s += 3, n -= 3;
    if (n > PH_INI_MAX_LINE)
        return run_fail(r, "line is %zu characters long, longer than the %d allowed; shorten it", n,
                        PH_INI_MAX_LINE);
    int rc = check_bytes(r, s, n);
    if (rc)
        return rc;
    *out = s;
    *out_n = n;
    return 1;
}

static bool is_repeatable(const ini_run *r, const char *section, const char *key)
{
    size_t ls = strlen(section);
    for (const char *const *p = r->opts->repeatable; p && *p; p++)
        if (strncmp(*p, section, ls) == 0 && (*p)[ls] == '.' && strcmp(*p + ls + 1, key) == 0)
            return true;
    return false;
}

/* Remembers section/key; fails if the key was already set in that section. */
static int note_key(ini_run *r, const char *key)
{
    if (is_repeatable(r, r->section, key))
        return 0;
    for (size_t i = 0; i < r->n_seen; i++) {
        const ini_seen *s = &r->seen[i];
        if (strcmp(s->section, r->section) == 0 && strcmp(s->key, key) == 0) {
            if (!*r->section)
                return run_fail(r,
                                "'%s' is set twice before any section (first on line %d); "
                                "keep one",
                                key, s->line);
            return run_fail(r, "'%s' is set twice in [%s] (first on line %d); keep one", key,
                            r->section, s->line);
        }
    }
    if (r->n_seen == r->cap_seen) {
        size_t ncap = r->cap_seen ? r->cap_seen * 2 : 16;
        ini_seen *ns = reallocarray(r->seen, ncap, sizeof *ns);
        if (!ns)
            return nomem();
        r->seen = ns;
        r->cap_seen = ncap;
    }
    ini_seen *s = &r->seen[r->n_seen];
    s->section = strdup(r->section);
    s->key = strdup(key);
    s->line = r->line;
    if (!s->section || !s->key) {
        free(s->section);
        free(s->key);
        return nomem();
    }
    r->n_seen++;
    return 0;
}

/* Passes an event to the handler, adding the location to its error. */
static int emit(ini_run *r, const char *key, const char *value)
{
    int rc = r->handler(r->user, r->section, key, value, r->line);
    if (rc < 0)
        ph_error_wrap("%s:%d", r->name, r->line);
    return rc < 0 ? rc : 0;
}

/* "[name]": checks the header, makes name the current section, reports it. */
static int section_line(ini_run *r, const char *s, size_t n)
{
    const char *close = memchr(s, ']', n);
    if (!close)
        return run_fail(r, "section header has no closing ']'; write it as [name]");
    for (const char *p = close + 1; p < s + n; p++) {
        if (*p == ';' || *p == '#')
            break;
        if (!ph_ini_is_blank(*p))
            return run_fail(r, "unexpected text after ']' of a section header; put a ';' before "
                               "a comment");
    }
    char *name = ph_ini_trimmed(s + 1, (size_t)(close - s - 1));
    if (!name)
        return nomem();
    free(r->section);
    r->section = name;
    if (!*name)
        return run_fail(r, "the section name is empty; write it as [name]");
    return emit(r, NULL, NULL);
}

/* "key = value" (or "key : value"); `indented` only shapes the message. */
static int key_line(ini_run *r, const char *s, size_t n, bool indented)
{
    size_t i = 0;
    /* The first '=' or ':' separates, unless a comment (" ;") comes first. */
    while (i < n && s[i] != '=' && s[i] != ':' &&
           !(s[i] == ';' && i > 0 && ph_ini_is_blank(s[i - 1])))
        i++;
    if (i >= n || s[i] == ';') {
        if (indented && r->after_key)
            return run_fail(r, "expected 'key = value' or '[section]'; a value cannot go on "
                               "over several lines: write it on one line");
        return run_fail(r, "expected 'key = value' or '[section]'");
    }
    if (i == 0)
        return run_fail(r, "no key before '%c'; write key = value", s[i]);
    const char *v = s + i + 1, *end = s + n;
    for (const char *p = v; p < end; p++)
        if (*p == ';' && p > v && ph_ini_is_blank(p[-1])) {
            end = p;
            break;
        }
    char *key = ph_ini_trimmed(s, i), *value = ph_ini_trimmed(v, (size_t)(end - v));
    int rc = !key || !value ? nomem() : note_key(r, key);
    if (!rc)
        rc = emit(r, key, value);
    free(key);
    free(value);
    return rc;
}

static int read_line(ini_run *r, const char *s, size_t n)
{
    bool indented = n && ph_ini_is_blank(*s);
    while (n && ph_ini_is_blank(*s))
        s++, n--;
    if (n == 0 || *s == ';' || *s == '#')
        return 0;
    if (*s == '[') {
        r->after_key = false;
        return section_line(r, s, n);
    }
    int rc = key_line(r, s, n, indented);
    r->after_key = true;
    return rc;
}

int ph_ini_parse_text(const char *name, const char *text, size_t len, const ph_ini_opts *opts,
                      ph_ini_handler handler, void *user)
{
    ini_run r = {
        .name = name, .opts = opts, .handler = handler, .user = user, .text = text, .len = len};
    const char *s = NULL;
    size_t n = 0;
    int rc = 0;
    if (len > PH_INI_MAX_FILE)
        return ph_error_set(opts->code, "%s: file is larger than %u bytes; is it the right file?",
                            name, PH_INI_MAX_FILE);
    if (!(r.section = strdup("")))
        return nomem();
    while (!rc && (rc = next_line(&r, &s, &n)) == 1)
        rc = read_line(&r, s, n);
    for (size_t i = 0; i < r.n_seen; i++) {
        free(r.seen[i].section);
        free(r.seen[i].key);
    }
    free(r.seen);
    free(r.section);
    return rc;
}

/* Reads at most PH_INI_MAX_FILE + 1 bytes of a regular file (or a pipe). */
static int read_file(const char *path, int code, char **out, size_t *out_len)
{
    int rc = 0;
    size_t len = 0, cap = 8192;
    struct stat st;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = ph_error_set(PH_EIO, "%s: cannot read: %s", path, ph_strerror(errno));
        goto cleanup;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = ph_error_set(PH_EIO, "%s: cannot read: %s", path, ph_strerror(EISDIR));
        goto cleanup;
    }
    if (!(buf = malloc(cap))) {
        rc = nomem();
        goto cleanup;
    }
    for (;;) {
        if (len == cap) {
            if (len > PH_INI_MAX_FILE) {
                rc = ph_error_set(code, "%s: file is larger than %u bytes; is it the right file?",
                                  path, PH_INI_MAX_FILE);
                goto cleanup;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                rc = nomem();
                goto cleanup;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ph_error_set(PH_EIO, "%s: cannot read: %s", path, ph_strerror(errno));
            goto cleanup;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
cleanup:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

int ph_ini_parse_file(const char *path, const ph_ini_opts *opts, ph_ini_handler handler, void *user)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, opts->code, &buf, &len);
    if (!rc)
        rc = ph_ini_parse_text(path, buf, len, opts, handler, user);
    free(buf);
    return rc;
}
