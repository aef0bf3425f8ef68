/*
 * The one reader of each scalar a user types, wherever it is typed:
 * host.ini and package.ini, `plughost call name=value`, URL query values,
 * JSON strings given for typed model fields. Every place accepts the same
 * spellings, so "yes" means the same in a config file and on a command line.
 */
#ifndef PH_TEXT_H
#define PH_TEXT_H

#include <stdbool.h>
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

#endif
