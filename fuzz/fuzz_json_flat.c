/*
 * The request-body reader's fast path against jansson, differentially:
 * whenever ph_json_flat_object takes a body, json_loadb with the flags HTTP
 * uses must accept it too and give an equal value (json_equal), and the
 * value must be a flat object. When the fast path declines, nothing is
 * checked here: jansson reads it, as before.
 */
#include <jansson.h>

#include "fuzz.h"
#include "jsonflat.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *fast = ph_json_flat_object((const char *)data, size);
    if (!fast)
        return 0;
    json_error_t err;
    json_t *ref =
        json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    if (!ref)
        fz_fail("the fast path took a body jansson refuses (%s at %d:%d): %.*s", err.text, err.line,
                err.column, (int)size, (const char *)data);
    if (!json_equal(fast, ref))
        fz_fail("the fast path read a different value: %.*s", (int)size, (const char *)data);
    const char *key;
    json_t *v;
    if (!json_is_object(fast))
        fz_fail("the fast path returned something other than an object");
    json_object_foreach(fast, key, v)
    {
        if (json_is_object(v) || json_is_array(v) || json_is_real(v))
            fz_fail("the fast path returned a nested or real value under '%s'", key);
    }
    json_decref(fast);
    json_decref(ref);
    return 0;
}
