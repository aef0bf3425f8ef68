/*
 * JSON arguments -> typed values: the first byte picks a method signature,
 * the rest is a request body (parsed as HTTP does). ph_ffi_args_from_json
 * converts it for the signature; every value is also coerced for every
 * model field type (ph_store_coerce, the CRUD path). Invariants: a refusal
 * is PH_EARGS naming where; an accepted string argument is valid memory.
 */
#include <jansson.h>
#include <string.h>

#include "error.h"
#include "ffi_call.h"
#include "fuzz.h"
#include "jsonflat.h"
#include "store.h"

static const ph_arg two_ints[] = {{"a", PH_I64}, {"b", PH_I64}};
static const ph_arg mixed[] = {
    {"text", PH_STR}, {"x", PH_F64}, {"flag", PH_BOOL}, {"n", PH_I64}, {"doc", PH_JSON}};
static const ph_arg one_json[] = {{"value", PH_JSON}};
static const ph_arg one_str[] = {{"name", PH_STR}};

static const struct {
    const ph_arg *args;
    uint32_t n;
    ph_type ret;
} sigs[] = {
    {two_ints, 2, PH_I64}, {mixed, 5, PH_STR}, {one_json, 1, PH_JSON},
    {one_str, 1, PH_STR},  {NULL, 0, PH_VOID},
};
#define N_SIGS (sizeof sigs / sizeof sigs[0])

static ph_sig prepared[N_SIGS];

static const ph_type field_types[] = {PH_BOOL, PH_I64, PH_F64, PH_STR, PH_JSON, PH_TIME, PH_REF};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < N_SIGS; i++)
        if (ph_ffi_prepare(&prepared[i], sigs[i].args, sigs[i].n, sigs[i].ret) != 0)
            fz_fail("cannot prepare signature %zu: %s", i, ph_error_last());
    return 0;
}

static void coerce_all(json_t *v, int required)
{
    for (size_t t = 0; t < sizeof field_types / sizeof field_types[0]; t++) {
        ph_store_field f = {.name = "f", .type = field_types[t], .ref = -1};
        f.flags = required ? PH_REQUIRED : 0;
        json_t *out = NULL;
        int rc = ph_store_coerce(&f, "fuzz.m.new", v, &out);
        if (rc == 0 && !out)
            fz_fail("coerce succeeded without a value");
        if (rc && (rc != PH_EARGS || strncmp(ph_error_last(), "fuzz.m.new: ", 12) != 0))
            fz_fail("coerce refusal does not say where: %s", ph_error_last());
        json_decref(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const ph_sig *sig = &prepared[data[0] % N_SIGS];
    json_error_t err;
    json_t *args = ph_json_load_body((const char *)data + 1, size - 1, &err); /* as HTTP reads */
    if (!args)
        return 0;
    ph_value vals[PH_MAX_ARGS];
    memset(vals, 0, sizeof vals);
    int rc = ph_ffi_args_from_json(sig, "fuzz.a.m", args, vals);
    if (rc == 0) {
        for (uint32_t i = 0; i < sig->n_args; i++)
            if (sig->args[i].type == PH_STR && vals[i].s && strlen(vals[i].s) > size)
                fz_fail("string argument longer than the input");
    } else if (rc != PH_EARGS || !strstr(ph_error_last(), "fuzz.a.m")) {
        fz_fail("argument refusal %d does not say where: %s", rc, ph_error_last());
    }
    coerce_all(args, data[0] & 0x80);
    if (json_is_object(args) || json_is_array(args)) {
        size_t i;
        const char *k;
        json_t *v;
        if (json_is_object(args)) {
            json_object_foreach(args, k, v) coerce_all(v, 0);
        } else {
            json_array_foreach(args, i, v) coerce_all(v, 0);
        }
    }
    json_decref(args);
    return 0;
}
