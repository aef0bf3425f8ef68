/*
 * ffi_call.c: signatures prepared once, JSON -> C arguments by declared type
 * (errors name the parameter and the expected type), the libffi call, and
 * C result -> JSON with the host taking ownership of strings and JSON.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "ffi_call.h"
#include "testutil.h"

/* ---- functions called through libffi ---- */

static ph_ctx the_ctx;
static ph_ctx *seen_ctx;

static int64_t add(ph_ctx *ctx, int64_t a, int64_t b)
{
    seen_ctx = ctx;
    return a + b;
}

static int negate(ph_ctx *ctx, int v)
{
    (void)ctx;
    return !v;
}

static double half(ph_ctx *ctx, double d)
{
    (void)ctx;
    return d / 2;
}

static char *dup_upper(ph_ctx *ctx, const char *s)
{
    (void)ctx;
    char *out = strdup(s);
    for (char *p = out; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 32);
    return out;
}

static void *wrap(ph_ctx *ctx, const void *v)
{
    (void)ctx;
    json_t *o = json_object();
    json_object_set((json_t *)o, "got", (json_t *)v);
    return o;
}

static int void_calls;
static void nothing(ph_ctx *ctx)
{
    (void)ctx;
    void_calls++;
}

static double not_a_number(ph_ctx *ctx)
{
    (void)ctx;
    return NAN;
}

static double infinite(ph_ctx *ctx)
{
    (void)ctx;
    return INFINITY;
}

static char *null_string(ph_ctx *ctx)
{
    (void)ctx;
    return NULL;
}

static char *bad_utf8(ph_ctx *ctx)
{
    (void)ctx;
    return strdup("\xff\xfe");
}

/* More arguments than fit in registers, mixed types: the stack part must be right. */
static double mixed(ph_ctx *ctx, int64_t a, double b, int64_t c, double d, int64_t e, double f,
                    int64_t g, double h, int64_t i, double j, int64_t k, double l, int64_t m,
                    double n, int64_t o, double p, int64_t q, double r, int t, const char *s)
{
    (void)ctx;
    return (double)(a + c + e + g + i + k + m + o + q) + b + d + f + h + j + l + n + p + r +
           (t ? 1000 : 0) + (double)strlen(s) * 10000;
}

static const ph_arg add_args[] = {{"a", PH_I64}, {"b", PH_I64}};
static const ph_arg bool_args[] = {{"value", PH_BOOL}};
static const ph_arg f64_args[] = {{"d", PH_F64}};
static const ph_arg str_args[] = {{"text", PH_STR}};
static const ph_arg json_args[] = {{"value", PH_JSON}};

static json_t *jparse(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    assert_non_null(v);
    return v;
}

/* Calls fn with the JSON text as arguments, returns the result as compact JSON text. */
static char *call_json(const ph_arg *args, uint32_t n, ph_type ret, void (*fn)(void),
                       const char *in)
{
    ph_sig sig;
    ph_value vals[PH_MAX_ARGS], r;
    json_t *jin = in ? jparse(in) : NULL, *out = NULL;
    assert_int_equal(ph_ffi_prepare(&sig, args, n, ret), 0);
    int rc = ph_ffi_args_from_json(&sig, "t.a.m", jin, vals);
    if (rc) {
        json_decref(jin);
        return tu_fmt("error %d: %s", rc, ph_error_last());
    }
    ph_ffi_call(&sig, fn, &the_ctx, vals, &r);
    rc = ph_ffi_result_to_json(&sig, &r, &out);
    json_decref(jin);
    if (rc)
        return tu_fmt("error %d: %s", rc, ph_error_last());
    char *s = json_dumps(out, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(out);
    return s;
}

#define CHECK_CALL(args, n, ret, fn, in, want)                                                     \
    do {                                                                                           \
        char *got_ = call_json(args, n, ret, (void (*)(void))(fn), in);                            \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

static void test_int64(void **state)
{
    (void)state;
    seen_ctx = NULL;
    CHECK_CALL(add_args, 2, PH_I64, add, "{\"a\": 2, \"b\": 40}", "42");
    assert_ptr_equal(seen_ctx, &the_ctx); /* the ctx is the first argument */
    CHECK_CALL(add_args, 2, PH_I64, add, "[2, 40]", "42");
    CHECK_CALL(add_args, 2, PH_I64, add, "[9223372036854775807, 0]", "9223372036854775807");
    CHECK_CALL(add_args, 2, PH_I64, add, "[-9223372036854775807, -1]", "-9223372036854775808");
}

static void test_bool(void **state)
{
    (void)state;
    CHECK_CALL(bool_args, 1, PH_BOOL, negate, "{\"value\": true}", "false");
    CHECK_CALL(bool_args, 1, PH_BOOL, negate, "[false]", "true");
    CHECK_CALL(bool_args, 1, PH_BOOL, negate, "[1]",
               "error -13: t.a.m: parameter 'value' must be bool, got integer");
}

static void test_double(void **state)
{
    (void)state;
    CHECK_CALL(f64_args, 1, PH_F64, half, "[5]", "2.5"); /* integers are numbers too */
    CHECK_CALL(f64_args, 1, PH_F64, half, "{\"d\": -0.5}", "-0.25");
    CHECK_CALL(f64_args, 1, PH_F64, half, "[\"1\"]",
               "error -13: t.a.m: parameter 'd' must be double, got string");
    CHECK_CALL(NULL, 0, PH_F64, not_a_number, NULL,
               "error -11: the method returned NaN, which JSON cannot represent");
    CHECK_CALL(NULL, 0, PH_F64, infinite, NULL,
               "error -11: the method returned an infinite number, which JSON cannot represent");
}

static void test_string(void **state)
{
    (void)state;
    CHECK_CALL(str_args, 1, PH_STR, dup_upper, "{\"text\": \"h\\u00e9llo\"}", "\"H\xc3\xa9LLO\"");
    CHECK_CALL(str_args, 1, PH_STR, dup_upper, "[\"\"]", "\"\"");
    CHECK_CALL(str_args, 1, PH_STR, dup_upper, "[null]",
               "error -13: t.a.m: parameter 'text' must be string, got null");
    CHECK_CALL(str_args, 1, PH_STR, dup_upper, "[\"a\\u0000b\"]",
               "error -13: t.a.m: parameter 'text' contains a NUL character");
    CHECK_CALL(NULL, 0, PH_STR, null_string, NULL, "null");
    CHECK_CALL(NULL, 0, PH_STR, bad_utf8, NULL,
               "error -11: the method returned a string that is not valid UTF-8");
}

static void test_json(void **state)
{
    (void)state;
    CHECK_CALL(json_args, 1, PH_JSON, wrap, "{\"value\": {\"a\": [1, \"x\", null, true, 2.5]}}",
               "{\"got\":{\"a\":[1,\"x\",null,true,2.5]}}");
    /* JSON parameters take any value, null included. */
    CHECK_CALL(json_args, 1, PH_JSON, wrap, "[null]", "{\"got\":null}");
    CHECK_CALL(json_args, 1, PH_JSON, wrap, "[\"s\"]", "{\"got\":\"s\"}");
}

static void test_void(void **state)
{
    (void)state;
    void_calls = 0;
    CHECK_CALL(NULL, 0, PH_VOID, nothing, NULL, "null");
    CHECK_CALL(NULL, 0, PH_VOID, nothing, "[]", "null");
    CHECK_CALL(NULL, 0, PH_VOID, nothing, "{}", "null");
    CHECK_CALL(NULL, 0, PH_VOID, nothing, "null", "null");
    assert_int_equal(void_calls, 4);
    CHECK_CALL(NULL, 0, PH_VOID, nothing, "[1]",
               "error -13: t.a.m: takes 0 arguments (no parameters), got 1");
}

static void test_many_args(void **state)
{
    (void)state;
    static const ph_arg args[] = {
        {"a", PH_I64}, {"b", PH_F64}, {"c", PH_I64}, {"d", PH_F64},  {"e", PH_I64},
        {"f", PH_F64}, {"g", PH_I64}, {"h", PH_F64}, {"i", PH_I64},  {"j", PH_F64},
        {"k", PH_I64}, {"l", PH_F64}, {"m", PH_I64}, {"n", PH_F64},  {"o", PH_I64},
        {"p", PH_F64}, {"q", PH_I64}, {"r", PH_F64}, {"t", PH_BOOL}, {"s", PH_STR},
    };
    /* ints 1..9 sum to 45, doubles 0.5 * 9 = 4.5, true -> 1000, "abc" -> 30000 */
    CHECK_CALL(args, 20, PH_F64, mixed,
               "[1, 0.5, 2, 0.5, 3, 0.5, 4, 0.5, 5, 0.5, 6, 0.5, 7, 0.5, 8, 0.5, 9, 0.5, true, "
               "\"abc\"]",
               "31049.5");
}

static void test_argument_errors(void **state)
{
    (void)state;
    CHECK_CALL(add_args, 2, PH_I64, add, "[1]",
               "error -13: t.a.m: takes 2 arguments (int64 a, int64 b), got 1");
    CHECK_CALL(add_args, 2, PH_I64, add, "[1, 2, 3]",
               "error -13: t.a.m: takes 2 arguments (int64 a, int64 b), got 3");
    CHECK_CALL(bool_args, 1, PH_BOOL, negate, "[]",
               "error -13: t.a.m: takes 1 argument (bool value), got 0");
    CHECK_CALL(add_args, 2, PH_I64, add, "{\"a\": 1}",
               "error -13: t.a.m: missing parameter 'b' (int64)");
    CHECK_CALL(add_args, 2, PH_I64, add, NULL, "error -13: t.a.m: missing parameter 'a' (int64)");
    CHECK_CALL(add_args, 2, PH_I64, add, "{\"a\": 1, \"b\": 2, \"c\": 3}",
               "error -13: t.a.m: unknown parameter 'c'; it takes (int64 a, int64 b)");
    CHECK_CALL(add_args, 2, PH_I64, add, "{\"a\": 1.5, \"b\": 2}",
               "error -13: t.a.m: parameter 'a' must be int64, got number");
    CHECK_CALL(add_args, 2, PH_I64, add, "[1, {}]",
               "error -13: t.a.m: parameter 'b' must be int64, got object");
    CHECK_CALL(add_args, 2, PH_I64, add, "\"2, 40\"",
               "error -13: t.a.m: arguments must be a JSON object (by name) or array (by "
               "position), got string");
    CHECK_CALL(add_args, 2, PH_I64, add, "7",
               "error -13: t.a.m: arguments must be a JSON object (by name) or array (by "
               "position), got integer");
}

static void test_prepare_errors(void **state)
{
    (void)state;
    ph_sig sig;
    static const ph_arg void_arg[] = {{"x", PH_VOID}};
    static const ph_arg time_arg[] = {{"when", PH_TIME}};
    assert_int_equal(ph_ffi_prepare(&sig, void_arg, 1, PH_I64), PH_EINVAL);
    assert_string_equal(ph_error_last(), "parameter 'x' has type 0, which a method cannot take");
    assert_int_equal(ph_ffi_prepare(&sig, time_arg, 1, PH_I64), PH_EINVAL);
    assert_string_equal(ph_error_last(), "parameter 'when' has type 6, which a method cannot take");
    assert_int_equal(ph_ffi_prepare(&sig, NULL, 0, PH_REF), PH_EINVAL);
    assert_string_equal(ph_error_last(), "result type 7 is not a method result type");
    assert_int_equal(ph_ffi_prepare(&sig, add_args, 33, PH_I64), PH_EINVAL);
    assert_string_equal(ph_error_last(), "33 parameters declared; at most 32 are supported");
}

static void test_discard(void **state)
{
    (void)state;
    /* Failed methods' results are released without conversion (ASan checks the frees). */
    ph_sig sig;
    ph_value r;
    assert_int_equal(ph_ffi_prepare(&sig, NULL, 0, PH_STR), 0);
    r.p = strdup("dropped");
    ph_ffi_result_discard(&sig, &r);
    assert_int_equal(ph_ffi_prepare(&sig, NULL, 0, PH_JSON), 0);
    r.p = json_pack("{s:i}", "a", 1);
    ph_ffi_result_discard(&sig, &r);
    r.p = NULL;
    ph_ffi_result_discard(&sig, &r);
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(ph_type_name(PH_VOID), "void");
    assert_string_equal(ph_type_name(PH_BOOL), "bool");
    assert_string_equal(ph_type_name(PH_I64), "int64");
    assert_string_equal(ph_type_name(PH_F64), "double");
    assert_string_equal(ph_type_name(PH_STR), "string");
    assert_string_equal(ph_type_name(PH_JSON), "json");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int64),          cmocka_unit_test(test_bool),
        cmocka_unit_test(test_double),         cmocka_unit_test(test_string),
        cmocka_unit_test(test_json),           cmocka_unit_test(test_void),
        cmocka_unit_test(test_many_args),      cmocka_unit_test(test_argument_errors),
        cmocka_unit_test(test_prepare_errors), cmocka_unit_test(test_discard),
        cmocka_unit_test(test_type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
