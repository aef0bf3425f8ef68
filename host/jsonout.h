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
 * Like json_dumps(v, flags): malloc'd NUL-terminated text, or NULL when `v`
 * cannot be dumped or memory runs out (never partial text). Thread-safe.
 */
char *ph_json_dumps(const json_t *v, size_t flags);

#endif
