#include "jsonout.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *ph_json_buf_grow(ph_json_buf *b, size_t n)
{
    if (b->failed || n > SIZE_MAX - b->len - 2)
        goto fail;
    if (b->len + n + 2 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 2)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 2 : cap * 2;
        char *p = realloc(b->p, cap);
        if (!p)
            goto fail;
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->len;
fail:
    b->failed = 1; /* jansson may go on writing after a failure it ignored */
    return NULL;
}

int ph_json_buf_add(const char *s, size_t n, void *ud)
{
    ph_json_buf *b = ud;
    char *p = ph_json_buf_reserve(b, n);
    if (!p)
        return -1;
    memcpy(p, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

int ph_json_buf_string(ph_json_buf *b, const char *s, size_t len)
{
    static const char short_esc[32] = {
        ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    size_t run = 0; /* start of the bytes not yet written */
    if (ph_json_buf_add("\"", 1, b))
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        char esc[8];
        size_t n;
        if (c == '"' || c == '\\' || (c < 0x20 && short_esc[c])) {
            esc[0] = '\\';
            esc[1] = c < 0x20 ? short_esc[c] : (char)c;
            n = 2;
        } else {
            n = (size_t)snprintf(esc, sizeof esc, "\\u%04X", c);
        }
        if (ph_json_buf_add(s + run, i - run, b) || ph_json_buf_add(esc, n, b))
            return -1;
        run = i + 1;
    }
    return ph_json_buf_add(s + run, len - run, b) || ph_json_buf_add("\"", 1, b) ? -1 : 0;
}

size_t ph_json_int_text(char *out, long long v)
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324252627282930"
                                   "31323334353637383940414243444546474849505152535455565758596061"
                                   "62636465666768697071727374757677787980818283848586878889909192"
                                   "93949596979899";
    char num[24], *p = num + sizeof num;
    /* digits from the end, two at a time; unsigned so that LLONG_MIN negates */
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        *--p = pairs[d + 1];
        *--p = pairs[d];
    }
    if (u >= 10) {
        *--p = pairs[u * 2 + 1];
        *--p = pairs[u * 2];
    } else {
        *--p = (char)('0' + u);
    }
    if (v < 0)
        *--p = '-';
    size_t n = (size_t)(num + sizeof num - p);
    memcpy(out, p, n);
    return n;
}

int ph_json_buf_int(ph_json_buf *b, long long v)
{
    char *p = ph_json_buf_reserve(b, 21);
    if (!p)
        return -1;
    b->len += ph_json_int_text(p, v);
    b->p[b->len] = 0;
    return 0;
}

char *ph_json_dumps(const json_t *v, size_t flags)
{
    ph_json_buf b = {0};
    if (!v || json_dump_callback(v, ph_json_buf_add, &b, flags) != 0 || b.failed || !b.p) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
