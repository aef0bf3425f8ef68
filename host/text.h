/*
 * The one reader of each scalar a user types, wherever it is typed:
 * host.ini and package.ini, `plughost call name=value`, URL query values,
 * JSON strings given for typed model fields. Every place accepts the same
 * spellings, so "yes" means the same in a config file and on a command line.
 * And the one writer of a call's dotted address.
 */
#ifndef PH_TEXT_H
#define PH_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * true, yes, on, 1 -> true; false, no, off, 0 -> false (ASCII
 * case-insensitive, nothing else, no spaces). Returns 0, or PH_EINVAL with
 * *out untouched. Sets no error text: callers name the field.
 */
int ph_parse_bool(const char *s, bool *out);

/**
 * A decimal integer: an optional '-', then digits only (no spaces, no '+',
 * no 0x), within int64. Returns 0, or PH_EINVAL (PH_EINVAL also when it
 * overflows) with *out untouched. Sets no error text.
 */
int ph_parse_i64(const char *s, int64_t *out);

/**
 * A finite decimal number as strtod reads it (no leading space, no nan or
 * inf, no value beyond double's range). Returns 0, or PH_EINVAL with *out
 * untouched. Sets no error text.
 */
int ph_parse_f64(const char *s, double *out);

/**
 * Writes "a", "a.b" or "a.b.c" (b and c may be NULL: a call's address is
 * "instance.actor.method") into buf of `size` bytes (size > 0), always
 * NUL-terminated, cut to fit. Returns the length the whole text needs, as
 * snprintf does: a result >= size means it was cut. On the path of every
 * call, so no printf.
 */
size_t ph_dotted(char *buf, size_t size, const char *a, const char *b, const char *c);

/**
 * The address "a.b.c" in `stack` (of `size` bytes) when it fits, else in
 * a malloc'd buffer. Returns the address, or NULL when out of memory; free
 * it with ph_dotted_free(result, stack).
 */
char *ph_dotted_in(char *stack, size_t size, const char *a, const char *b, const char *c);
void ph_dotted_free(char *address, char *stack);

#endif
