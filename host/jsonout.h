/*
 * JSON text out of jansson values, safe when memory runs out.
 *
 * jansson (2.14, Debian 12) ignores a failed write while it dumps an object
 * key: json_dumps() then returns malformed text such as {"a:1} instead of
 * NULL when an allocation fails half-way (tests/test_oom.c found it). Every
 * host output of JSON text goes through ph_json_dumps, whose buffer stays
 * failed after the first failed write.
 */
#ifndef PH_HOST_JSONOUT_H
#define PH_HOST_JSONOUT_H

#include <stddef.h>

#include <jansson.h>

/** A growing buffer for json_dump_callback; once a write fails, every later one fails. */
typedef struct ph_json_buf {
    char *p;
    size_t len, cap;
    int failed;
} ph_json_buf;

/** json_dump_callback callback appending to a ph_json_buf (`ud`); 0 or -1. */
int ph_json_buf_add(const char *s, size_t n, void *ud);

/**
 * Room for `n` more bytes (and a NUL): where to write them, or NULL (out of
 * memory; the buffer is failed). The writer then adds what it wrote to
 * `len` and ends the text with a NUL itself.
 */
/* ph_json_buf_reserve when the room is not there yet: grows the buffer. */
char *ph_json_buf_grow(ph_json_buf *b, size_t n);
static inline char *ph_json_buf_reserve(ph_json_buf *b, size_t n)
{
    return !b->failed && n < b->cap && b->len < b->cap - n - 1 ? b->p + b->len
                                                               : ph_json_buf_grow(b, n);
}

/** Appends `n` bytes; 0 or -1 (the buffer is failed from then on). */
static inline int ph_json_buf_put(ph_json_buf *b, const char *s, size_t n)
{
    return ph_json_buf_add(s, n, b);
}

/**
 * Appends `len` bytes of valid UTF-8 as a JSON string, quoted and escaped
 * exactly as jansson dumps it without JSON_ENSURE_ASCII / JSON_ESCAPE_SLASH
 * (so text built here and text dumped by jansson agree byte for byte).
 * 0 or -1.
 */
int ph_json_buf_string(ph_json_buf *b, const char *s, size_t len);

/** Appends a JSON integer as jansson writes it; 0 or -1. */
int ph_json_buf_int(ph_json_buf *b, long long v);
/** Writes v in decimal at p (room for 21 bytes); returns the length. */
size_t ph_json_int_text(char *p, long long v);

/**
 * Like json_dumps(v, flags): malloc'd NUL-terminated text, or NULL when `v`
 * cannot be dumped or memory runs out (never partial text). Thread-safe.
 */
char *ph_json_dumps(const json_t *v, size_t flags);

#endif
