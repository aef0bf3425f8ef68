#include "jsonflat.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* JSON whitespace (RFC 8259 §2): space, tab, LF, CR. */
static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string without escapes of printable ASCII: its bytes [*s, *s + *len); the end, or NULL. */
static const char *plain_string(const char *p, const char *end, const char **s, size_t *len)
{
    if (p >= end || *p != '"')
        return NULL;
    const char *q = ++p;
    while (q < end && *q != '"') {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20 || c > 0x7e || c == '\\')
            return NULL;
        q++;
    }
    if (q >= end)
        return NULL;
    *s = p;
    *len = (size_t)(q - p);
    return q + 1;
}

static bool word_at(const char *p, const char *end, const char *w, size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, w, n) == 0;
}

/* One scalar value; the end, or NULL (with nothing made) for what the fast path leaves. */
static const char *scalar(const char *p, const char *end, json_t **v)
{
    const char *s;
    size_t len;
    if (p >= end)
        return NULL;
    switch (*p) {
    case '"':
        if (!(p = plain_string(p, end, &s, &len)))
            return NULL;
        *v = json_stringn_nocheck(s, len);
        return *v ? p : NULL;
    case 't':
        if (!word_at(p, end, "true", 4))
            return NULL;
        *v = json_true();
        return p + 4;
    case 'f':
        if (!word_at(p, end, "false", 5))
            return NULL;
        *v = json_false();
        return p + 5;
    case 'n':
        if (!word_at(p, end, "null", 4))
            return NULL;
        *v = json_null();
        return p + 4;
    default:
        break;
    }
    bool neg = *p == '-';
    const char *d = p + neg, *q = d;
    int64_t x = 0;
    while (q < end && *q >= '0' && *q <= '9' && q - d < 18) /* 18 digits cannot overflow */
        x = x * 10 + (*q++ - '0');
    size_t digits = (size_t)(q - d);
    /* no digits, more than 18, a leading zero, or a fraction/exponent: jansson's */
    if (!digits || (*d == '0' && digits > 1) ||
        (q < end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9'))))
        return NULL;
    *v = json_integer(neg ? -x : x);
    return *v ? q : NULL;
}

json_t *ph_json_flat_object(const char *text, size_t n)
{
    const char *p = text, *end = text + n;
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return NULL;
    json_t *o = json_object();
    if (!o)
        return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        goto done;
    for (;;) {
        const char *key;
        size_t key_len;
        json_t *v = NULL;
        if (!(p = plain_string(p, end, &key, &key_len)))
            goto decline;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            goto decline;
        p = skip_ws(p + 1, end);
        if (!(p = scalar(p, end, &v)) || json_object_getn(o, key, key_len) ||
            json_object_setn_new_nocheck(o, key, key_len, v)) {
            json_decref(v);
            goto decline;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            break;
        goto decline;
    }
done:
    if (skip_ws(p + 1, end) == end)
        return o;
decline:
    json_decref(o);
    return NULL;
}

json_t *ph_json_load_body(const char *text, size_t n, json_error_t *err)
{
    json_t *v = ph_json_flat_object(text, n);
    if (v)
        return v;
    /* jansson skips a NUL right after a number or a literal ({"a":1\0}) and takes the rest:
     * JSON text holds no NUL byte anywhere (RFC 8259 2, 7), so one is refused here */
    const char *nul = memchr(text, '\0', n);
    if (nul) {
        memset(err, 0, sizeof *err);
        snprintf(err->text, sizeof err->text, "a NUL byte (JSON text cannot hold one)");
        err->position = (int)(nul - text);
        err->line = 1;
        for (const char *p = text; p < nul; p++)
            err->line += *p == '\n';
        const char *bol = nul;
        while (bol > text && bol[-1] != '\n')
            bol--;
        err->column = (int)(nul - bol) + 1;
        return NULL;
    }
    return json_loadb(text, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, err);
}
