#include "ffi_call.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "instance.h"

const char *ph_type_name(ph_type t)
{
    switch (t) {
    case PH_VOID:
        return "void";
    case PH_BOOL:
        return "bool";
    case PH_I64:
        return "int64";
    case PH_F64:
        return "double";
    case PH_STR:
        return "string";
    case PH_JSON:
        return "json";
    case PH_TIME:
        return "timestamp";
    case PH_REF:
        return "reference";
    }
    return "unknown";
}

static ffi_type *ffi_type_of(ph_type t)
{
    switch (t) {
    case PH_VOID:
        return &ffi_type_void;
    case PH_BOOL:
        return &ffi_type_sint;
    case PH_I64:
        return &ffi_type_sint64;
    case PH_F64:
        return &ffi_type_double;
    case PH_STR:
    case PH_JSON:
        return &ffi_type_pointer;
    default:
        return NULL;
    }
}

int ph_ffi_prepare(ph_sig *sig, const ph_arg *args, uint32_t n_args, ph_type ret)
{
    memset(sig, 0, sizeof *sig);
    if (n_args > PH_MAX_ARGS)
        return ph_error_set(PH_EINVAL, "%u parameters declared; at most %d are supported", n_args,
                            PH_MAX_ARGS);
    sig->types[0] = &ffi_type_pointer; /* ph_ctx * */
    for (uint32_t i = 0; i < n_args; i++) {
        if (args[i].type == PH_VOID || !(sig->types[i + 1] = ffi_type_of(args[i].type)))
            return ph_error_set(PH_EINVAL, "parameter '%s' has type %d, which a method cannot take",
                                args[i].name ? args[i].name : "?", (int)args[i].type);
    }
    ffi_type *rtype = ffi_type_of(ret);
    if (!rtype)
        return ph_error_set(PH_EINVAL, "result type %d is not a method result type", (int)ret);
    if (ffi_prep_cif(&sig->cif, FFI_DEFAULT_ABI, n_args + 1, rtype, sig->types) != FFI_OK)
        return ph_error_set(PH_EINVAL, "libffi cannot prepare this signature");
    sig->args = args;
    sig->n_args = n_args;
    sig->ret = ret;
    return 0;
}

static const char *json_kind_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

static int convert_arg(const ph_arg *a, const char *where, json_t *v, ph_value *out)
{
    switch (a->type) {
    case PH_BOOL:
        if (json_is_boolean(v)) {
            out->b = json_is_true(v);
            return 0;
        }
        break;
    case PH_I64:
        if (json_is_integer(v)) {
            out->i = json_integer_value(v);
            return 0;
        }
        break;
    case PH_F64:
        if (json_is_number(v)) {
            out->d = json_number_value(v);
            return 0;
        }
        break;
    case PH_STR:
        if (json_is_string(v)) {
            out->s = json_string_value(v);
            if (strlen(out->s) != json_string_length(v))
                return ph_error_set(PH_EARGS, "%s: parameter '%s' contains a NUL character", where,
                                    a->name);
            return 0;
        }
        break;
    case PH_JSON:
        out->p = v;
        return 0;
    default:
        break;
    }
    return ph_error_set(PH_EARGS, "%s: parameter '%s' must be %s, got %s", where, a->name,
                        ph_type_name(a->type), json_kind_name(v));
}

static void list_params(const ph_sig *sig, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < sig->n_args && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s %s", i ? ", " : "",
                              ph_type_name(sig->args[i].type), sig->args[i].name);
    if (!sig->n_args)
        snprintf(buf, size, "no parameters");
}

static int args_from_object(const ph_sig *sig, const char *where, json_t *args, ph_value *vals)
{
    char params[512];
    const char *key;
    json_t *v;
    json_object_foreach(args, key, v)
    {
        uint32_t i;
        for (i = 0; i < sig->n_args; i++)
            if (strcmp(sig->args[i].name, key) == 0)
                break;
        if (i == sig->n_args) {
            list_params(sig, params, sizeof params);
            return ph_error_set(PH_EARGS, "%s: unknown parameter '%s'; it takes (%s)", where, key,
                                params);
        }
    }
    for (uint32_t i = 0; i < sig->n_args; i++) {
        v = json_object_get(args, sig->args[i].name);
        if (!v)
            return ph_error_set(PH_EARGS, "%s: missing parameter '%s' (%s)", where,
                                sig->args[i].name, ph_type_name(sig->args[i].type));
        int rc = convert_arg(&sig->args[i], where, v, &vals[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int ph_ffi_args_from_json(const ph_sig *sig, const char *where, json_t *args, ph_value *vals)
{
    char params[512];
    if (!args || json_is_null(args)) {
        if (sig->n_args == 0)
            return 0;
        return ph_error_set(PH_EARGS, "%s: missing parameter '%s' (%s)", where, sig->args[0].name,
                            ph_type_name(sig->args[0].type));
    }
    if (json_is_object(args))
        return args_from_object(sig, where, args, vals);
    if (!json_is_array(args))
        return ph_error_set(PH_EARGS,
                            "%s: arguments must be a JSON object (by name) or array (by position), "
                            "got %s",
                            where, json_kind_name(args));
    if (json_array_size(args) != sig->n_args) {
        list_params(sig, params, sizeof params);
        return ph_error_set(PH_EARGS, "%s: takes %u argument%s (%s), got %zu", where, sig->n_args,
                            sig->n_args == 1 ? "" : "s", params, json_array_size(args));
    }
    for (uint32_t i = 0; i < sig->n_args; i++) {
        int rc = convert_arg(&sig->args[i], where, json_array_get(args, i), &vals[i]);
        if (rc)
            return rc;
    }
    return 0;
}

void ph_ffi_call(const ph_sig *sig, void (*fn)(void), ph_ctx *ctx, ph_value *vals, ph_value *ret)
{
    void *avalues[PH_MAX_ARGS + 1];
    avalues[0] = &ctx;
    for (uint32_t i = 0; i < sig->n_args; i++)
        avalues[i + 1] = &vals[i];
    memset(ret, 0, sizeof *ret);
    /* A method that ends its thread (pthread_exit) comes back here with its call failed. */
    ph_frame *f = ph_frame_current();
    sigjmp_buf back;
    if (f && !f->escape) {
        if (sigsetjmp(back, 0)) {
            memset(ret, 0, sizeof *ret);
            return;
        }
        f->escape = &back;
    }
    ffi_call((ffi_cif *)&sig->cif, fn, ret, avalues);
    if (f && f->escape == &back)
        f->escape = NULL;
}

int ph_ffi_result_to_json(const ph_sig *sig, ph_value *ret, json_t **out)
{
    json_t *v = NULL;
    switch (sig->ret) {
    case PH_VOID:
        v = json_null();
        break;
    case PH_BOOL:
        v = json_boolean((int)ret->r != 0);
        break;
    case PH_I64:
        v = json_integer(ret->i);
        break;
    case PH_F64:
        if (!isfinite(ret->d))
            return ph_error_set(PH_EPACKAGE, "the method returned %s, which JSON cannot represent",
                                isnan(ret->d) ? "NaN" : "an infinite number");
        v = json_real(ret->d);
        break;
    case PH_STR:
        errno = 0;
        v = ret->p ? json_string((const char *)ret->p) : json_null();
        if (ret->p && !v && errno != ENOMEM) {
            free((void *)ret->p);
            return ph_error_set(PH_EPACKAGE,
                                "the method returned a string that is not valid UTF-8");
        }
        free((void *)ret->p);
        break;
    case PH_JSON:
        /* The package's ph_json * is a json_t * the host gave it; we take it over. */
        v = ret->p ? (json_t *)ret->p : json_null();
        break;
    default:
        return ph_error_set(PH_EINTERNAL, "bad result type");
    }
    if (!v)
        return ph_error_set(PH_ENOMEM, "out of memory converting the result");
    *out = v;
    return 0;
}

void ph_ffi_result_discard(const ph_sig *sig, ph_value *ret)
{
    if (sig->ret == PH_STR)
        free((void *)ret->p);
    else if (sig->ret == PH_JSON && ret->p)
        json_decref((json_t *)ret->p);
}
