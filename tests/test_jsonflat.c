/*
 * The request-body reader: the flat-object fast path takes the common call
 * bodies and gives what jansson gives; everything else is jansson's, error
 * text included (fuzz_json_flat checks the equality on random input).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jsonflat.h"

static json_t *jansson(const char *text)
{
    json_error_t err;
    return json_loadb(text, strlen(text), JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
}

static void test_takes_flat_objects(void **state)
{
    (void)state;
    static const char *const taken[] = {
        "{\"a\":2,\"b\":40}",
        " {\t\"title\" : \"bench\",\r\n \"pinned\": true, \"owner\": null, \"off\": false } \n",
        "{}",
        "{\"n\":-0,\"m\":-123456789012345678,\"z\":0}",
        "{\"\":\"\"}",
    };
    for (size_t i = 0; i < sizeof taken / sizeof *taken; i++) {
        json_t *fast = ph_json_flat_object(taken[i], strlen(taken[i])), *ref = jansson(taken[i]);
        if (!fast)
            fail_msg("the fast path declined %s", taken[i]);
        assert_non_null(ref);
        assert_true(json_equal(fast, ref));
        json_decref(fast);
        json_decref(ref);
    }
    /* the length given is the body: no NUL needed after it */
    json_t *v = ph_json_flat_object("{\"a\":7}garbage", 7);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "a")), 7);
    json_decref(v);
}

static void test_declines_the_rest(void **state)
{
    (void)state;
    static const char *const declined[] = {
        "{\"a\":1,\"a\":2}",           /* jansson names the duplicate */
        "{\"a\":1234567890123456789}", /* 19 digits: jansson checks the range */
        "{\"a\":01}",
        "{\"a\":1.5}",
        "{\"a\":1e3}",
        "{\"a\":\"x\\\"y\"}",
        "{\"a\":\"\xc3\xa9\"}",
        "{\"a\":{\"b\":1}}",
        "{\"a\":[1]}",
        "{\"a\":tru}",
        "{\"a\":1}x",
        "{\"a\":1,}",
        "{\"a\":-}",
        "[1,2]",
        "42",
        "",
        "{\"a\":1",
        "{\"a\"\x01:1}",
    };
    for (size_t i = 0; i < sizeof declined / sizeof *declined; i++)
        if (ph_json_flat_object(declined[i], strlen(declined[i])))
            fail_msg("the fast path took %s", declined[i]);
}

static void test_load_body_is_jansson(void **state)
{
    (void)state;
    json_error_t err;
    json_t *v = ph_json_load_body("{\"a\":1,\"a\":2}", 13, &err);
    assert_null(v);
    assert_string_equal(err.text, "duplicate object key near '\"a\"'");
    /* jansson alone would take these, skipping the NUL: a client's stray byte must not write */
    static const char nul1[] = "{\"title\":\"t\",\"pinned\":1\0}";
    assert_null(ph_json_load_body(nul1, sizeof nul1 - 1, &err));
    assert_string_equal(err.text, "a NUL byte (JSON text cannot hold one)");
    assert_int_equal(err.line, 1);
    assert_int_equal(err.column, 24);
    static const char nul2[] = "{\"value\":\n[1\0]}";
    assert_null(ph_json_load_body(nul2, sizeof nul2 - 1, &err));
    assert_int_equal(err.line, 2);
    assert_int_equal(err.column, 3);
    v = ph_json_load_body("[1, {\"x\": 2.5}]", 15, &err);
    assert_true(json_is_array(v));
    assert_true(json_real_value(json_object_get(json_array_get(v, 1), "x")) == 2.5);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_takes_flat_objects),
        cmocka_unit_test(test_declines_the_rest),
        cmocka_unit_test(test_load_body_is_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
