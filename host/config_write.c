#include "config_write.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "ini.h"

/* One line of the file, without its end; `end` is "\n", "\r\n" or "" (the last). */
typedef struct line {
    const char *p;
    size_t len;
    const char *end;
} line;

typedef struct text {
    char *p;
    size_t len, cap;
    bool failed;
} text;

static void put(text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (n > SIZE_MAX - t->len - 1) {
        t->failed = true;
        return;
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

static void puts_(text *t, const char *s)
{
    put(t, s, strlen(s));
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The section a header line opens ("instance notes"), into buf; false if not a header. */
static bool header(const line *l, char *buf, size_t size)
{
    size_t i = 0;
    while (i < l->len && blank(l->p[i]))
        i++;
    if (i >= l->len || l->p[i] != '[')
        return false;
    const char *close = memchr(l->p + i, ']', l->len - i);
    if (!close)
        return false;
    const char *s = l->p + i + 1, *e = close;
    while (s < e && blank(*s))
        s++;
    while (e > s && blank(e[-1]))
        e--;
    size_t n = (size_t)(e - s);
    if (n >= size)
        n = size - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
    /* "instance  notes" is the section "instance notes" */
    char *sp = strpbrk(buf, " \t");
    if (sp) {
        char *q = sp;
        while (blank(*q))
            q++;
        *sp = ' ';
        memmove(sp + 1, q, strlen(q) + 1);
    }
    return true;
}

/* True if the line sets `key` (blanks around it ignored). */
static bool sets_key(const line *l, const char *key)
{
    size_t i = 0, k = strlen(key);
    while (i < l->len && blank(l->p[i]))
        i++;
    if (i >= l->len || l->p[i] == ';' || l->p[i] == '#' || l->p[i] == '[')
        return false;
    if (l->len - i < k || memcmp(l->p + i, key, k) != 0)
        return false;
    i += k;
    while (i < l->len && blank(l->p[i]))
        i++;
    return i < l->len && (l->p[i] == '=' || l->p[i] == ':');
}

static bool is_key_line(const line *l)
{
    size_t i = 0;
    while (i < l->len && blank(l->p[i]))
        i++;
    return i < l->len && l->p[i] != ';' && l->p[i] != '#' && l->p[i] != '[';
}

static int check_kv(const ph_kv *kv)
{
    if (!*kv->key || strspn(kv->key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789_.-") != strlen(kv->key))
        return ph_error_set(PH_EINVAL,
                            "parameter name '%s' is not allowed; use letters, digits, '_', "
                            "'.' and '-'",
                            kv->key);
    if (!kv->value)
        return 0;
    for (const char *p = kv->value; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f ||
            ((*p == ';' || *p == '#') && p > kv->value && blank(p[-1])))
            return ph_error_set(PH_EINVAL,
                                "the value of '%s' holds a line break, a control character or "
                                "a ' ;' (which host.ini reads as a comment); write it on one "
                                "line without them",
                                kv->key);
    if (strlen(kv->value) > PH_INI_MAX_LINE - strlen(kv->key) - 8)
        return ph_error_set(PH_EINVAL, "the value of '%s' is longer than a host.ini line holds",
                            kv->key);
    return 0;
}

static void put_kv(text *t, const ph_kv *kv, const char *eol)
{
    puts_(t, kv->key);
    puts_(t, " = ");
    puts_(t, kv->value);
    puts_(t, eol);
}

/* The lines of `src` (its own memory; the array is the caller's to free). */
static line *split(const char *src, size_t len, size_t *n)
{
    size_t cap = 64, count = 0;
    line *ls = malloc(cap * sizeof *ls);
    for (size_t at = 0; ls && at < len;) {
        const char *nl = memchr(src + at, '\n', len - at);
        size_t l = nl ? (size_t)(nl - (src + at)) : len - at;
        line x = {src + at, l, nl ? "\n" : ""};
        if (nl && l && src[at + l - 1] == '\r') {
            x.len--;
            x.end = "\r\n";
        }
        if (count == cap) {
            line *more = realloc(ls, cap * 2 * sizeof *ls);
            if (!more) {
                free(ls);
                return NULL;
            }
            ls = more;
            cap *= 2;
        }
        ls[count++] = x;
        at += l + (nl ? 1 : 0);
    }
    *n = count;
    return ls;
}

/* The new text: `src` with the instance's keys set. */
static int rewrite(const char *src, size_t len, const char *instance, const ph_kv *kv, size_t n,
                   int create, text *out)
{
    size_t nl = 0;
    line *ls = split(src, len, &nl);
    if (!ls && len)
        return ph_error_set(PH_ENOMEM, "out of memory");
    char want[PH_INI_MAX_LINE], sec[PH_INI_MAX_LINE];
    snprintf(want, sizeof want, "instance %s", instance);
    const char *eol = nl && !strcmp(ls[0].end, "\r\n") ? "\r\n" : "\n";
    bool *done = calloc(n ? n : 1, sizeof *done), in = false, found = false;
    size_t last_key = 0; /* index after the section's last key line */
    int rc = 0;
    if (!done) {
        free(ls);
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    /* first pass: where the section's last key line is */
    for (size_t i = 0; i < nl; i++) {
        if (header(&ls[i], sec, sizeof sec)) {
            in = strcmp(sec, want) == 0;
            if (in) {
                found = true;
                last_key = i + 1;
            }
        } else if (in && is_key_line(&ls[i])) {
            last_key = i + 1;
        }
    }
    if (!found && !create) {
        rc = ph_error_set(PH_ENOTFOUND, "host.ini has no [instance %s] section", instance);
        goto cleanup;
    }
    in = false;
    for (size_t i = 0; i < nl; i++) {
        if (header(&ls[i], sec, sizeof sec))
            in = strcmp(sec, want) == 0;
        bool replaced = false;
        for (size_t k = 0; in && k < n && !replaced; k++) {
            if (!sets_key(&ls[i], kv[k].key))
                continue;
            replaced = true;
            if (!done[k] && kv[k].value)
                put_kv(out, &kv[k], *ls[i].end ? ls[i].end : eol);
            done[k] = true;
        }
        if (!replaced) {
            put(out, ls[i].p, ls[i].len);
            /* the last line gets an end when something follows it */
            puts_(out, *ls[i].end ? ls[i].end : (found && i + 1 == last_key) || !found ? eol : "");
        }
        if (found && i + 1 == last_key)
            for (size_t k = 0; k < n; k++)
                if (!done[k] && kv[k].value) {
                    put_kv(out, &kv[k], eol);
                    done[k] = true;
                }
    }
    if (!found) {
        if (nl)
            puts_(out, eol);
        puts_(out, "[instance ");
        puts_(out, instance);
        puts_(out, "]");
        puts_(out, eol);
        for (size_t k = 0; k < n; k++)
            if (kv[k].value)
                put_kv(out, &kv[k], eol);
    }
    if (out->failed)
        rc = ph_error_set(PH_ENOMEM, "out of memory");
cleanup:
    free(done);
    free(ls);
    return rc;
}

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ph_error_set(errno == EACCES ? PH_EPERM : PH_EIO, "cannot read %s: %s", path,
                            strerror(errno));
    text t = {0};
    char buf[8192];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0 && t.len <= PH_INI_MAX_FILE)
        put(&t, buf, r);
    int err = ferror(f);
    fclose(f);
    if (t.failed || err) {
        free(t.p);
        return err ? ph_error_set(PH_EIO, "cannot read %s", path)
                   : ph_error_set(PH_ENOMEM, "out of memory");
    }
    *out = t.p;
    *len = t.len;
    return 0;
}

/*
 * The new text in `tmp` must load with the host's own reader, or the host would
 * refuse it on the next SIGHUP or start: PH_EARGS with the reader's message
 * (naming `path`, not the temporary file), and nothing is replaced.
 */
static int check_loads(const char *tmp, const char *path)
{
    ph_config c;
    if (ph_config_load(tmp, &c) == 0) {
        ph_config_free(&c);
        return 0;
    }
    const char *msg = ph_error_last();
    size_t tl = strlen(tmp);
    text t = {0};
    for (const char *p = msg; *p;) {
        const char *at = strstr(p, tmp);
        if (!at) {
            puts_(&t, p);
            break;
        }
        put(&t, p, (size_t)(at - p));
        puts_(&t, path);
        p = at + tl;
    }
    int rc = t.failed ? ph_error_set(PH_ENOMEM, "out of memory")
                      : ph_error_set(PH_EARGS, "%s; nothing was changed", t.p ? t.p : "");
    free(t.p);
    return rc;
}

/* Writes `t` beside `path` and renames it over `path`, keeping the file's mode. */
static int replace_file(const char *path, const text *t)
{
    char *copy = strdup(path), *tmp = NULL;
    int rc = 0, fd = -1;
    struct stat st;
    if (!copy)
        return ph_error_set(PH_ENOMEM, "out of memory");
    const char *dir = dirname(copy);
    /* a file without any write bit is read-only on purpose, even for root */
    bool file_ro = access(path, W_OK) != 0 || (stat(path, &st) == 0 && !(st.st_mode & 0222));
    if (file_ro || access(dir, W_OK) != 0) {
        rc = ph_error_set(PH_EPERM,
                          "%s is not writable by the host (%s); nothing was changed. Make "
                          "%s and its directory writable by the user the host runs as, or "
                          "edit the file by hand and send SIGHUP",
                          path, file_ro ? "the file" : "its directory", path);
        goto cleanup;
    }
    if (asprintf(&tmp, "%s/.host.ini.XXXXXX", dir) < 0) {
        tmp = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((fd = mkstemp(tmp)) < 0) {
        rc = ph_error_set(PH_EIO, "cannot create a file in %s: %s", dir, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto cleanup;
    }
    if (stat(path, &st) == 0)
        fchmod(fd, st.st_mode & 07777);
    size_t at = 0;
    while (at < t->len) {
        ssize_t w = write(fd, t->p + at, t->len - at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        at += (size_t)w;
    }
    if (at != t->len || fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        rc = ph_error_set(PH_EIO, "cannot write %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    fd = -1;
    if ((rc = check_loads(tmp, path)))
        goto cleanup;
    if (rename(tmp, path) != 0) {
        rc = ph_error_set(PH_EIO, "cannot replace %s: %s", path, strerror(errno));
        goto cleanup;
    }
    free(tmp);
    tmp = NULL;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { /* the rename itself survives a power loss */
        fsync(dfd);
        close(dfd);
    }
cleanup:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(copy);
    return rc;
}

int ph_config_write_instance(const char *path, const char *instance, const ph_kv *kv, size_t n,
                             int create)
{
    char *src = NULL;
    size_t len = 0;
    text out = {0};
    int rc = ph_config_check_name("instance", instance, PH_EINVAL);
    for (size_t k = 0; !rc && k < n; k++)
        rc = check_kv(&kv[k]);
    if (rc)
        return rc;
    if ((rc = read_file(path, &src, &len)))
        return rc;
    if (!(rc = rewrite(src, len, instance, kv, n, create, &out)))
        rc = replace_file(path, &out);
    free(src);
    free(out.p);
    return rc;
}
