/*
 * The JSON reader for request bodies. Most call bodies are one flat object
 * of plain keys and small scalar values ({"a":2,"b":40}); jansson's lexer
 * reads those a byte at a time through its stream layer, which was the
 * largest single cost of an HTTP call. This reader takes such a body in one
 * pass and hands anything else to jansson, so what a client can send and
 * what it is told when the body is wrong stay exactly jansson's.
 */
#ifndef PH_JSONFLAT_H
#define PH_JSONFLAT_H

#include <stddef.h>

#include <jansson.h>

/**
 * The flat-object fast path alone: when `text` (n bytes, not necessarily
 * NUL-terminated) is an object whose keys are printable ASCII without
 * escapes and whose values are true, false, null, integers of at most 18
 * digits or printable-ASCII strings without escapes, with JSON whitespace
 * anywhere between tokens and no key twice, returns the new object
 * (caller owns it). Returns NULL for anything else, without an error:
 * the caller then reads it with jansson. Whatever it returns is
 * json_equal to what json_loadb(text, n, JSON_DECODE_ANY |
 * JSON_REJECT_DUPLICATES) returns (checked by fuzz_json_flat).
 */
json_t *ph_json_flat_object(const char *text, size_t n);

/**
 * A request body as json_loadb(text, n, JSON_DECODE_ANY |
 * JSON_REJECT_DUPLICATES, err) reads it (RFC 8259 JSON, any value at the
 * top), the flat-object fast path first, except that a NUL byte anywhere is
 * refused (jansson skips one after a number or a literal). Returns a new
 * reference, or NULL with the error in *err (jansson's, or "a NUL byte
 * (JSON text cannot hold one)" with its line and column).
 */
json_t *ph_json_load_body(const char *text, size_t n, json_error_t *err);

#endif
