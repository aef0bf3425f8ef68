/*
 * Calling package methods through libffi. A signature (ffi_cif) is prepared
 * once per method at load; a call converts JSON arguments to C values by the
 * declared types, calls, and converts the result back to JSON.
 */
#ifndef PH_HOST_FFI_CALL_H
#define PH_HOST_FFI_CALL_H

#include <ffi.h>
#include <jansson.h>
#include <plughost/sdk.h>

#define PH_MAX_ARGS 32

/** C storage for one value of any ph_type. */
typedef union ph_value {
    int b; /* PH_BOOL */
    int64_t i;
    double d;
    const char *s;
    const void *p;
    ffi_arg r; /* libffi widens small integer results to ffi_arg */
} ph_value;

typedef struct ph_sig {
    ffi_cif cif;
    ffi_type *types[PH_MAX_ARGS + 1]; /* ctx + args */
    const ph_arg *args;
    uint32_t n_args;
    ph_type ret;
} ph_sig;

/** Prepares the cif for `fn(ph_ctx *, args...)`. PH_EINVAL names the bad type. */
int ph_ffi_prepare(ph_sig *sig, const ph_arg *args, uint32_t n_args, ph_type ret);

/**
 * Converts `args` (object by name, array by position, or NULL/null for none)
 * into `vals` per the signature. Messages name the parameter and the
 * expected type. Strings point into `args` (borrowed); JSON values too.
 */
int ph_ffi_args_from_json(const ph_sig *sig, const char *where, json_t *args, ph_value *vals);

/** Calls fn with ctx and vals; the raw result goes to *ret. */
void ph_ffi_call(const ph_sig *sig, void (*fn)(void), ph_ctx *ctx, ph_value *vals, ph_value *ret);

/**
 * Converts a raw result to JSON (*out owned by caller) and releases what the
 * package returned (PH_STR/PH_JSON results are owned by the host).
 */
int ph_ffi_result_to_json(const ph_sig *sig, ph_value *ret, json_t **out);
/** Releases a PH_STR/PH_JSON result without converting it (method failed). */
void ph_ffi_result_discard(const ph_sig *sig, ph_value *ret);

/** "int64", "string", ... for messages and schemas. */
const char *ph_type_name(ph_type t);

#endif
