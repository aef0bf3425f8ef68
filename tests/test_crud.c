/* Generated CRUD actors: every method and every error a caller can hit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include <cmocka.h>

#include "packages/model_common/harness.h"

static int validate_calls, after_calls;
static char last_after_op[16];

static int item_validate(ph_ctx *ctx, const char *op, const ph_json *rec)
{
    validate_calls++;
    const char *name = ph_json_str(ctx, ph_json_get(ctx, rec, "name"));
    if (name && !strcmp(name, "forbidden"))
        return ph_error(ctx, "forbidden_name", "the name 'forbidden' is not allowed");
    if (name && !strcmp(name, "silent"))
        return -1;
    (void)op;
    return 0;
}

static void item_after(ph_ctx *ctx, const char *op, const ph_json *rec)
{
    (void)ctx;
    (void)rec;
    after_calls++;
    snprintf(last_after_op, sizeof last_after_op, "%s", op);
}

static const ph_field item_fields[] = {
    PH_FIELD("name", PH_TEXT, PH_REQUIRED | PH_UNIQUE),
    PH_FIELD("qty", PH_INT, PH_DEFAULT("1")),
    PH_FIELD("price", PH_FLOAT, 0),
    PH_FIELD("active", PH_BOOL, PH_INDEXED | PH_DEFAULT("true")),
    PH_FIELD("meta", PH_JSON, PH_DEFAULT("{\"k\":[1]}")),
    PH_FIELD("due", PH_TIME, 0),
};
static const ph_field tag_fields[] = {
    PH_FIELD("label", PH_TEXT, PH_REQUIRED),
    PH_FIELD_REF("item", "item", 0),
};
static const ph_field hidden_fields[] = {PH_FIELD("x", PH_INT, 0)};
static const ph_model models[] = {
    PH_MODEL_EX("item", item_fields, 0, item_validate, item_after),
    PH_MODEL("tag", tag_fields),
    PH_MODEL_EX("hidden", hidden_fields, PH_NO_CRUD, NULL, NULL),
};
static const ph_package desc = MH_DESC("1.0.0", models);

static int setup(void **state)
{
    mh *h = calloc(1, sizeof *h);
    mh_init(h);
    mh_open(h, &desc);
    validate_calls = after_calls = 0;
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    mh_done(*state);
    free(*state);
    return 0;
}

/* Calls and expects success; returns the result as JSON text (caller frees). */
static char *ok(mh *h, const char *addr, const char *args)
{
    json_t *out = NULL;
    int rc = mh_call(h, addr, args, &out);
    if (rc)
        fprintf(stderr, "%s %s failed: %s\n", addr, args ? args : "", ph_error_last());
    assert_int_equal(rc, 0);
    char *s = mh_dump(out);
    json_decref(out);
    return s;
}

/* Calls and expects error `code` whose message contains `text`. */
static void err(mh *h, const char *addr, const char *args, int code, const char *text)
{
    json_t *out = NULL;
    int rc = mh_call(h, addr, args, &out);
    assert_null(out);
    if (rc != code)
        fprintf(stderr, "%s: expected %d, got %d: %s\n", addr, code, rc, ph_error_last());
    assert_int_equal(rc, code);
    assert_true(tu_contains(ph_error_last(), text));
}

static json_t *call_json(mh *h, const char *addr, const char *args)
{
    json_t *out = NULL;
    assert_int_equal(mh_call(h, addr, args, &out), 0);
    return out;
}

static void test_new_get_defaults(void **state)
{
    mh *h = *state;
    json_t *r = call_json(h, "item.new",
                          "{\"name\":\"apple\",\"price\":\"1.5\",\"due\":"
                          "\"2024-05-01T12:00:00Z\"}");
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
    assert_int_equal(json_integer_value(json_object_get(r, "qty")), 1);
    assert_true(json_is_true(json_object_get(r, "active")));
    assert_true(json_real_value(json_object_get(r, "price")) == 1.5);
    assert_int_equal(json_integer_value(json_object_get(r, "due")), 1714564800000LL);

    assert_true(json_integer_value(json_object_get(r, "created")) > 1600000000000LL);
    char *created = mh_dump(r);
    json_decref(r);
    char *got = ok(h, "item.get", "{\"id\":1}");
    assert_string_equal(got, created);
    assert_true(tu_contains(got, "\"meta\":{\"k\":[1]}"));
    free(got);
    got = ok(h, "item.get", "[\"1\"]"); /* positional, id as text (CLI) */
    assert_string_equal(got, created);
    free(got);
    free(created);
    assert_int_equal(validate_calls, 1);
    assert_int_equal(after_calls, 1);
    assert_string_equal(last_after_op, "new");
}

/* get through ph_router_call_text: the text HTTP sends, byte for byte the dumped record. */
static char *get_text(mh *h, const char *args, int want_rc)
{
    json_t *a = json_loads(args, JSON_DECODE_ANY, NULL);
    ph_json_buf b = {0};
    assert_int_equal(ph_json_buf_put(&b, "prefix|", 7), 0);
    int rc = ph_router_call_text(h->router, "t.item.get", a, 0, NULL, &b);
    json_decref(a);
    assert_int_equal(rc, want_rc);
    assert_true(b.p && !strncmp(b.p, "prefix|", 7)); /* appended to what was there */
    char *s = strdup(b.p + 7);
    free(b.p);
    return s;
}

static void test_get_text_is_the_dumped_record(void **state)
{
    mh *h = *state;
    static const char *const items[] = {
        "{\"name\":\"plain\",\"price\":1.5,\"qty\":-9223372036854775807}",
        "{\"name\":\"q\\\"b\\\\s\\/n\\nt\\tc\\u0001\\u001f\\b\\f\\r\\u007f\",\"price\":0.1}",
        "{\"name\":\"caf\\u00e9 \\u65e5\\u672c \\ud83d\\ude00\",\"price\":1e300,\"active\":false}",
        "{\"name\":\"\",\"price\":3,\"meta\":{\"a\":[1,2.5,\"x\\n\",null,true]},\"due\":0}",
        "{\"name\":\"n\",\"qty\":null,\"meta\":null,\"price\":-0.0}",
    };
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        free(ok(h, "item.new", items[i]));
    /* text written by raw SQL that is not UTF-8 reads as null, as the record says */
    assert_int_equal(sqlite3_exec(ph_store_db(h->inst->store),
                                  "UPDATE item SET name = CAST(x'ff41' AS TEXT) WHERE id = 5", NULL,
                                  NULL, NULL),
                     SQLITE_OK);
    for (int id = 1; id <= 5; id++) {
        char args[32];
        snprintf(args, sizeof args, "{\"id\":%d}", id);
        char *want = ok(h, "item.get", args), *got = get_text(h, args, 0);
        assert_string_equal(got, want);
        free(got);
        free(want);
    }
    char *none = get_text(h, "{\"id\":99}", PH_ENOTFOUND);
    assert_string_equal(none, ""); /* nothing half-written */
    free(none);
    assert_true(tu_contains(ph_error_last(), "t.item.get: item 99 does not exist"));
    /* a method without a text writer: its value dumped */
    json_t *a = json_loads("{\"name\":\"plain\"}", 0, NULL);
    ph_json_buf b = {0};
    assert_int_equal(ph_router_call_text(h->router, "t.item.count", a, 0, NULL, &b), 0);
    assert_string_equal(b.p, "1");
    free(b.p);
    json_decref(a);
}

static void test_new_errors(void **state)
{
    mh *h = *state;
    err(h, "item.new", "{\"qty\":2}", PH_EARGS,
        "t.item.new: field 'name' is required; give it a value");
    err(h, "item.new", "{\"name\":null}", PH_EARGS, "field 'name' is required");
    err(h, "item.new", "{\"name\":\"a\",\"colour\":\"red\"}", PH_EARGS,
        "t.item.new: unknown field 'colour'; model 'item' has: id, created, updated, name, qty, "
        "price, active, meta, due");
    err(h, "item.new", "{\"name\":\"a\",\"qty\":\"many\"}", PH_EARGS,
        "t.item.new: field 'qty' must be an integer, got a string");
    err(h, "item.new", "{\"name\":\"a\",\"qty\":1.5}", PH_EARGS,
        "field 'qty' must be an integer, got a number");
    err(h, "item.new", "{\"name\":\"a\",\"active\":\"maybe\"}", PH_EARGS,
        "field 'active' must be a boolean (true or false), got a string");
    err(h, "item.new", "{\"name\":7}", PH_EARGS, "field 'name' must be a string, got an integer");
    err(h, "item.new", "{\"name\":\"a\",\"due\":\"yesterday\"}", PH_EARGS,
        "t.item.new: field 'due' must be a time (RFC 3339 such as 2024-05-01T12:00:00Z or "
        "2024-05-01T14:00:00+02:00, or Unix milliseconds), got 'yesterday'");
    /* dates that do not exist are refused, never moved into the next month */
    err(h, "item.new", "{\"name\":\"a\",\"due\":\"2024-02-30T12:00:00Z\"}", PH_EARGS,
        "got '2024-02-30T12:00:00Z': day 30 does not exist in 2024-02 (it has 29 days)");
    err(h, "item.new", "{\"name\":\"a\",\"due\":\"2023-02-29\"}", PH_EARGS,
        "got '2023-02-29': day 29 does not exist in 2023-02 (it has 28 days)");
    err(h, "item.new", "{\"name\":\"a\",\"due\":\"2024-04-31T00:00:00Z\"}", PH_EARGS,
        "day 31 does not exist in 2024-04 (it has 30 days)");
    err(h, "item.new", "{\"name\":\"a\",\"due\":\"2024-13-01\"}", PH_EARGS,
        "got '2024-13-01': month 13 does not exist");
    err(h, "item.new", "{\"name\":\"a\",\"due\":\"2024-05-01T24:00:00Z\"}", PH_EARGS,
        "the time 24:00:00 does not exist");
    err(h, "item.new", "{\"name\":\"a\",\"due\":\"2024-05-01T12:00:00+25:00\"}", PH_EARGS,
        "the offset 25:00 does not exist");
    err(h, "item.new", "{\"name\":\"a\",\"id\":5}", PH_EARGS,
        "field 'id' is kept by the host and cannot be set");
    err(h, "item.new", "[1,2]", PH_EARGS, "t.item.new: pass the fields by name (a JSON object)");
    char *n = ok(h, "item.count", NULL);
    assert_string_equal(n, "0");
    free(n);
}

/* RFC 3339's forms and ISO 8601's basic offset all name the same instant. */
static void test_time_forms(void **state)
{
    mh *h = *state;
    static const char *const same[] = {
        "2024-05-01T12:00:00Z", "2024-05-01T14:00:00+02:00", "2024-05-01T14:00:00+0200",
        "2024-05-01t12:00:00z", "2024-05-01T07:30:00-04:30", "2024-05-01 12:00:00.000Z",
        "1714564800000"};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        char *args = tu_fmt("{\"name\":\"t%zu\",\"due\":\"%s\"}", i, same[i]);
        json_t *t = call_json(h, "item.new", args);
        assert_int_equal(json_integer_value(json_object_get(t, "due")), 1714564800000LL);
        json_decref(t);
        free(args);
    }
    json_t *leap = call_json(h, "item.new", "{\"name\":\"leap\",\"due\":\"2024-02-29\"}");
    assert_int_equal(json_integer_value(json_object_get(leap, "due")), 1709164800000LL);
    json_decref(leap);
}

static void test_unique_conflict(void **state)
{
    mh *h = *state;
    free(ok(h, "item.new", "{\"name\":\"pear\"}"));
    err(h, "item.new", "{\"name\":\"pear\"}", PH_ECONFLICT,
        "t.item.new: field 'name' must be unique: another item already has this value");
    free(ok(h, "item.new", "{\"name\":\"plum\"}"));
    err(h, "item.set", "{\"id\":2,\"name\":\"pear\"}", PH_ECONFLICT, "field 'name' must be unique");
    char *got = ok(h, "item.get", "{\"id\":2}");
    assert_true(tu_contains(got, "\"name\":\"plum\""));
    free(got);
}

static void test_set_partial(void **state)
{
    mh *h = *state;
    free(ok(h, "item.new", "{\"name\":\"fig\",\"qty\":3,\"price\":2}"));
    json_t *r = call_json(h, "item.set", "{\"id\":1,\"qty\":\"7\"}");
    assert_int_equal(json_integer_value(json_object_get(r, "qty")), 7);
    assert_true(json_real_value(json_object_get(r, "price")) == 2.0);
    assert_string_equal(json_string_value(json_object_get(r, "name")), "fig");
    assert_true(json_integer_value(json_object_get(r, "updated")) >=
                json_integer_value(json_object_get(r, "created")));
    json_decref(r);
    free(ok(h, "item.set", "{\"id\":1,\"price\":null}"));
    char *got = ok(h, "item.get", "{\"id\":1}");
    assert_true(tu_contains(got, "\"price\":null"));
    assert_true(tu_contains(got, "\"qty\":7"));
    free(got);
    assert_string_equal(last_after_op, "set");
    err(h, "item.set", "{\"id\":1,\"name\":null}", PH_EARGS,
        "t.item.set: field 'name' is required");
    err(h, "item.set", "{\"id\":1,\"size\":3}", PH_EARGS, "t.item.set: unknown field 'size'");
    err(h, "item.set", "{\"id\":1,\"created\":3}", PH_EARGS, "field 'created' is kept by the host");
    err(h, "item.set", "{\"id\":42,\"qty\":1}", PH_ENOTFOUND,
        "t.item.set: item 42 does not exist; t.item.list shows the records");
    err(h, "item.set", "{\"qty\":1}", PH_EARGS, "t.item.set: missing 'id'");
    err(h, "item.get", "{\"id\":\"one\"}", PH_EARGS, "t.item.get: 'id' must be an integer");
}

static void test_delete_and_refs(void **state)
{
    mh *h = *state;
    free(ok(h, "item.new", "{\"name\":\"kiwi\"}"));
    free(ok(h, "item.new", "{\"name\":\"lime\"}"));
    free(ok(h, "tag.new", "{\"label\":\"green\",\"item\":2}"));
    err(h, "tag.new", "{\"label\":\"x\",\"item\":99}", PH_EARGS,
        "t.tag.new: field 'item' refers to item 99, which does not exist");
    err(h, "item.delete", "{\"id\":2}", PH_ECONFLICT,
        "t.item.delete: the item is still referenced by other records (tag.item); delete or "
        "change them first");
    char *got = ok(h, "item.delete", "{\"id\":1}");
    assert_true(tu_contains(got, "\"name\":\"kiwi\""));
    free(got);
    assert_string_equal(last_after_op, "delete");
    err(h, "item.get", "{\"id\":1}", PH_ENOTFOUND, "t.item.get: item 1 does not exist");
    err(h, "item.delete", "{\"id\":1}", PH_ENOTFOUND, "t.item.delete: item 1 does not exist");
    /* ids are never reused */
    json_t *r = call_json(h, "item.new", "{\"name\":\"kiwi\"}");
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 3);
    json_decref(r);
}

static void fill(mh *h)
{
    static const char *const rows[] = {
        "{\"name\":\"a\",\"qty\":5,\"active\":true,\"price\":1}",
        "{\"name\":\"b\",\"qty\":1,\"active\":false,\"price\":2}",
        "{\"name\":\"c\",\"qty\":3,\"active\":true}",
        "{\"name\":\"d\",\"qty\":9,\"active\":true,\"price\":4}",
        "{\"name\":\"e\",\"qty\":7,\"active\":false,\"price\":5}",
    };
    for (size_t i = 0; i < 5; i++)
        free(ok(h, "item.new", rows[i]));
}

static char *names(json_t *list)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(list, "items"), i, it)
    {
        sqlite3_str_appendall(s, json_string_value(json_object_get(it, "name")));
    }
    char *t = sqlite3_str_finish(s);
    char *copy = strdup(t ? t : "");
    sqlite3_free(t);
    return copy;
}

static void expect_list(mh *h, const char *args, const char *want, int total)
{
    json_t *l = call_json(h, "item.list", args);
    char *got = names(l);
    if (strcmp(got, want))
        fprintf(stderr, "list %s: got %s, want %s\n", args, got, want);
    assert_string_equal(got, want);
    assert_int_equal(json_integer_value(json_object_get(l, "total")), total);
    free(got);
    json_decref(l);
}

static void test_list_filters_order_paging(void **state)
{
    mh *h = *state;
    fill(h);
    expect_list(h, NULL, "abcde", 5);
    expect_list(h, "{\"active\":true}", "acd", 3);
    expect_list(h, "{\"active\":\"false\"}", "be", 2);
    expect_list(h, "{\"qty.gt\":3}", "ade", 3);
    expect_list(h, "{\"qty\":{\"ge\":3,\"lt\":9}}", "ace", 3);
    expect_list(h, "{\"qty.ne\":\"5\",\"active\":true}", "cd", 2);
    expect_list(h, "{\"order\":\"-qty\"}", "deacb", 5);
    expect_list(h, "{\"order\":\"active desc, qty\"}", "cadbe", 5);
    expect_list(h, "{\"order\":[\"-active\",\"-name\"]}", "dcaeb", 5);
    expect_list(h, "{\"order\":\"qty\",\"limit\":2,\"offset\":1}", "ca", 5);
    expect_list(h, "{\"order\":\"qty\",\"limit\":\"2\",\"offset\":\"4\"}", "d", 5);
    expect_list(h, "{\"price\":null}", "c", 1);
    expect_list(h, "{\"price.ne\":null,\"price.le\":2}", "ab", 2);
    expect_list(h, "{\"name.like\":\"%d%\"}", "d", 1);
    expect_list(h, "{\"limit\":0}", "", 5);
    json_t *l = call_json(h, "item.list", "{\"limit\":2}");
    assert_int_equal(json_integer_value(json_object_get(l, "limit")), 2);
    assert_int_equal(json_integer_value(json_object_get(l, "offset")), 0);
    json_decref(l);
    char *n = ok(h, "item.count", "{\"active\":true,\"qty.lt\":9}");
    assert_string_equal(n, "2");
    free(n);
}

static void test_list_errors(void **state)
{
    mh *h = *state;
    fill(h);
    err(h, "item.list", "{\"colour\":1}", PH_EARGS,
        "t.item.list: unknown field 'colour' in filter; model 'item' has: id, created, updated, "
        "name, qty, price, active, meta, due");
    err(h, "item.list", "{\"qty.between\":1}", PH_EARGS,
        "t.item.list: unknown filter operator 'between' for field 'qty'; use eq, ne, lt, le, gt, "
        "ge or like");
    err(h, "item.list", "{\"qty.gt\":\"x\"}", PH_EARGS,
        "t.item.list: field 'qty' must be an integer, got a string");
    err(h, "item.list", "{\"meta\":1}", PH_EARGS, "field 'meta' holds JSON and cannot be filtered");
    err(h, "item.list", "{\"qty.like\":\"1\"}", PH_EARGS,
        "'like' needs a text field; 'qty' is int");
    err(h, "item.list", "{\"qty.gt\":null}", PH_EARGS, "null can only be compared with eq or ne");
    err(h, "item.list", "{\"order\":\"size\"}", PH_EARGS,
        "t.item.list: unknown field 'size' in order");
    err(h, "item.list", "{\"order\":\"qty sideways\"}", PH_EARGS,
        "order direction must be asc or desc, got 'sideways'");
    err(h, "item.list", "{\"order\":5}", PH_EARGS, "'order' must be a field name");
    err(h, "item.list", "{\"limit\":1001}", PH_EARGS, "'limit' must be an integer from 0 to 1000");
    err(h, "item.list", "{\"offset\":-1}", PH_EARGS, "'offset' must be an integer from 0");
    err(h, "item.count", "{\"order\":\"qty\"}", PH_EARGS,
        "t.item.count: 'order' is a list option; count takes filters only");
}

static void test_injection_changes_nothing(void **state)
{
    mh *h = *state;
    fill(h);
    err(h, "item.list", "{\"name; DROP TABLE item; --\":1}", PH_EARGS,
        "unknown field 'name; DROP TABLE item; --' in filter");
    err(h, "item.list", "{\"qty) OR (1=1\":1}", PH_EARGS, "unknown field 'qty) OR (1=1' in filter");
    err(h, "item.list", "{\"order\":\"name; DROP TABLE item\"}", PH_EARGS,
        "unknown field 'name;' in order");
    err(h, "item.list", "{\"order\":\"(SELECT 1)\"}", PH_EARGS, "unknown field '(SELECT' in order");
    err(h, "item.list", "{\"order\":\"qty desc; DELETE FROM item\"}", PH_EARGS,
        "order direction must be asc or desc");
    err(h, "item.new", "{\"name\":\"x\",\"qty\":\"1; DROP TABLE item\"}", PH_EARGS,
        "field 'qty' must be an integer");
    expect_list(h, "{\"name\":\"' OR 1=1 --\"}", "", 0);
    expect_list(h, "{\"name.like\":\"%' OR '1'='1\"}", "", 0);
    free(ok(h, "item.new", "{\"name\":\"Robert'); DROP TABLE item;--\"}"));
    expect_list(h, "{\"name\":\"Robert'); DROP TABLE item;--\"}", "Robert'); DROP TABLE item;--",
                1);
    char *n = ok(h, "item.count", NULL);
    assert_string_equal(n, "6");
    free(n);
}

static void test_hooks_refuse(void **state)
{
    mh *h = *state;
    free(ok(h, "item.new", "{\"name\":\"ok\"}"));
    json_t *out = NULL;
    assert_int_equal(mh_call(h, "item.new", "{\"name\":\"forbidden\"}", &out), PH_EPACKAGE);
    assert_string_equal(ph_error_last_word(), "forbidden_name");
    assert_string_equal(ph_error_last(), "the name 'forbidden' is not allowed");
    err(h, "item.set", "{\"id\":1,\"name\":\"forbidden\"}", PH_EPACKAGE, "is not allowed");
    err(h, "item.new", "{\"name\":\"silent\"}", PH_EPACKAGE,
        "t.item.new: the item was refused by the package's validate hook (it gave no reason)");
    char *got = ok(h, "item.get", "{\"id\":1}");
    assert_true(tu_contains(got, "\"name\":\"ok\""));
    free(got);
    char *n = ok(h, "item.count", NULL);
    assert_string_equal(n, "1");
    free(n);
    assert_int_equal(after_calls, 1);
}

static void test_routes(void **state)
{
    mh *h = *state;
    err(h, "hidden.new", "{}", PH_ENOTFOUND, "instance 't' has no method 'hidden.new'");
    err(h, "item.upsert", "{}", PH_ENOTFOUND, "has no method 'item.upsert'");
    const ph_route *rt = ph_router_find(h->router, "t.item.list");
    assert_non_null(rt);
    assert_ptr_equal(rt->model, &models[0]);
    assert_int_equal(rt->ret, PH_JSON);
    rt = ph_router_find(h->router, "t.tag.count");
    assert_non_null(rt);
    assert_int_equal(rt->ret, PH_I64);
}

static void test_disable_crud(void **state)
{
    mh *h = *state;
    mh_close_instance(h);
    h->man.disable_crud = true;
    mh_open(h, &desc);
    err(h, "item.new", "{\"name\":\"a\"}", PH_ENOTFOUND, "instance 't' has no method 'item.new'");
    h->man.disable_crud = false;
}

static void test_data_survives_reopen(void **state)
{
    mh *h = *state;
    fill(h);
    free(ok(h, "item.set", "{\"id\":2,\"meta\":[1,{\"x\":null}]}"));
    char *before = ok(h, "item.list", NULL);
    mh_close_instance(h);
    mh_open(h, &desc);
    char *after = ok(h, "item.list", NULL);
    assert_string_equal(before, after);
    assert_true(tu_contains(after, "\"meta\":[1,{\"x\":null}]"));
    free(before);
    free(after);
}

static void test_package_query_guard(void **state)
{
    mh *h = *state;
    ph_store *s = h->inst->store;
    json_t *rows = NULL;
    fill(h);
    json_t *params = json_pack("[i]", 4);
    assert_int_equal(
        ph_store_query(s, "SELECT name FROM item WHERE qty > ?1 ORDER BY id", params, &rows), 0);
    json_decref(params);
    char *t = mh_dump(rows);
    assert_string_equal(t, "[{\"name\":\"a\"},{\"name\":\"d\"},{\"name\":\"e\"}]");
    free(t);
    json_decref(rows);
    assert_int_equal(ph_store_query(s, "BEGIN", NULL, NULL), PH_EPERM);
    assert_true(tu_contains(ph_error_last(), "query refused: transaction control"));
    assert_int_equal(ph_store_query(s, "UPDATE _ph_meta SET value='9.9.9'", NULL, NULL), PH_EPERM);
    assert_true(tu_contains(ph_error_last(), "the host's _ph_ tables"));
    assert_int_equal(ph_store_query(s, "PRAGMA synchronous=OFF", NULL, NULL), PH_EPERM);
    assert_true(tu_contains(ph_error_last(), "setting pragmas is not allowed"));
    assert_int_equal(ph_store_query(s, "PRAGMA user_version=7", NULL, NULL), PH_EPERM);
    assert_int_equal(ph_store_query(s, "PRAGMA table_info(item)", NULL, &rows), 0);
    assert_int_equal(json_array_size(rows), 9);
    json_decref(rows);
    assert_int_equal(ph_store_query(s, "PRAGMA user_version", NULL, NULL), 0);
    assert_int_equal(ph_store_query(s, "ATTACH 'x.db' AS x", NULL, NULL), PH_EPERM);
    assert_int_equal(ph_store_query(s, "SELECT 1; DELETE FROM item", NULL, NULL), PH_EARGS);
    assert_true(tu_contains(ph_error_last(), "a query runs one statement"));
    assert_int_equal(ph_store_query(s, "SELECT ?1", NULL, NULL), PH_EARGS);
    assert_true(tu_contains(ph_error_last(), "SQL statement takes 1 parameters, 0 given"));
    char *n = ok(h, "item.count", NULL);
    assert_string_equal(n, "5");
    free(n);
}

typedef struct worker {
    mh *h;
    int id, failures;
    pthread_t t;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 50; i++) {
        char *args = tu_fmt("{\"name\":\"w%d-%d\",\"qty\":%d}", w->id, i, i);
        json_t *r = NULL;
        json_t *a = json_loads(args, 0, NULL);
        if (ph_router_call(w->h->router, NULL, "t.item.new", a, 0, &r) != 0)
            w->failures++;
        json_t *q = json_pack("{s:O}", "id", json_object_get(r, "id"));
        json_t *g = NULL;
        if (!r || ph_router_call(w->h->router, NULL, "t.item.get", q, 0, &g) != 0 ||
            !json_equal(g, r))
            w->failures++;
        json_decref(a);
        json_decref(q);
        json_decref(g);
        json_decref(r);
        free(args);
    }
    return NULL;
}

static void test_concurrent_calls(void **state)
{
    mh *h = *state;
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.h = h, .id = i};
        pthread_create(&w[i].t, NULL, work, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(w[i].t, NULL);
        assert_int_equal(w[i].failures, 0);
    }
    char *n = ok(h, "item.count", NULL);
    assert_string_equal(n, "200");
    free(n);
    n = ok(h, "item.count", "{\"qty.ge\":49}");
    assert_string_equal(n, "4");
    free(n);
}

/* Group commit: writers at the same time share commits; a refused write fails only its caller. */
typedef struct gc_writer {
    mh *h;
    int id, ok, refused, wrong;
    pthread_t t;
} gc_writer;

static void *gc_write(void *arg)
{
    gc_writer *w = arg;
    for (int i = 0; i < 20; i++) {
        /* every 4th name is taken already ("taken"): that insert fails inside its batch */
        char *args = i % 4 == 3 ? tu_fmt("{\"name\":\"taken\",\"qty\":%d}", 1000 + w->id)
                                : tu_fmt("{\"name\":\"g%d-%d\"}", w->id, i);
        json_t *a = json_loads(args, 0, NULL), *r = NULL;
        int rc = ph_router_call(w->h->router, NULL, "t.item.new", a, 0, &r);
        if (i % 4 == 3) {
            w->refused += rc == PH_ECONFLICT;
            w->wrong += rc != PH_ECONFLICT ||
                        !tu_contains(ph_error_last(), "t.item.new: field 'name' must be unique: "
                                                      "another item already has this value");
        } else {
            w->ok += rc == 0 && r;
            w->wrong += rc != 0;
        }
        json_decref(a);
        json_decref(r);
        free(args);
    }
    return NULL;
}

static void test_group_commit_writers(void **state)
{
    mh *h = *state;
    free(ok(h, "item.new", "{\"name\":\"taken\"}"));
    unsigned long w0, b0, w1, b1;
    ph_store_write_counts(h->inst->store, &w0, &b0);
    gc_writer w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (gc_writer){.h = h, .id = i};
        pthread_create(&w[i].t, NULL, gc_write, &w[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(w[i].t, NULL);
        assert_int_equal(w[i].wrong, 0);
        assert_int_equal(w[i].ok, 15);
        assert_int_equal(w[i].refused, 5);
    }
    ph_store_write_counts(h->inst->store, &w1, &b1);
    assert_int_equal(w1 - w0, 160);
    assert_true(b1 - b0 < 160); /* some commits carried several writes */
    /* every acknowledged row is there, no refused one */
    char *n = ok(h, "item.count", NULL);
    assert_string_equal(n, "121");
    free(n);
    n = ok(h, "item.count", "{\"qty.ge\":1000}");
    assert_string_equal(n, "0");
    free(n);
}

/* Acceptance: the notes example through the real binary, one process per call (a restart each). */
static int notes(char **out, const char *tmp, const char *args)
{
    return tu_run(out, "'%s' call --local -c '%s/host.ini' --log-level warn %s", tu_env("PH_BIN"),
                  tmp, args);
}

static void test_notes_example_end_to_end(void **state)
{
    mh *h = *state;
    char *out = NULL;
    char *ini = tu_fmt("[host]\npackage_dirs = %s/pk\ndata_dir = %s\n", h->tmp, h->data);
    free(tu_write(h->tmp, "host.ini", ini));
    free(ini);
    tu_run(NULL, "mkdir -p '%s/pk' && cp -r '%s/notes' '%s/pk/'", h->tmp, tu_env("PH_EXAMPLES"),
           h->tmp);
    assert_int_equal(notes(&out, h->tmp, "notes.note.new title=hello content=first owner=ann"), 0);
    assert_true(tu_contains(out, "{\"id\":1,\"created\":"));
    assert_true(tu_contains(out, "\"title\":\"hello\",\"content\":\"first\",\"pinned\":false"));
    free(out);
    notes(NULL, h->tmp, "notes.note.new title=two owner=bob pinned=true");
    notes(NULL, h->tmp, "notes.note.new title=three owner=ann");
    assert_int_equal(notes(&out, h->tmp, "notes.note.set id=3 content=changed"), 0);
    assert_true(tu_contains(out, "\"title\":\"three\",\"content\":\"changed\""));
    free(out);
    assert_int_equal(notes(&out, h->tmp, "notes.note.list owner=ann order=-id limit=1 offset=1"),
                     0);
    assert_true(tu_contains(out, "{\"items\":[{\"id\":1,"));
    assert_true(tu_contains(out, "\"total\":2,\"limit\":1,\"offset\":1}"));
    free(out);
    assert_int_equal(notes(&out, h->tmp, "notes.board.pin id=1"), 0);
    assert_true(tu_contains(out, "\"pinned\":true"));
    free(out);
    assert_int_equal(notes(&out, h->tmp, "notes.board.summary"), 0);
    assert_true(tu_contains(out, "{\"notes\":3,\"pinned\":2,\"owners\":2}"));
    free(out);
    assert_int_not_equal(notes(&out, h->tmp, "notes.note.new title=' '"), 0);
    assert_true(tu_contains(out, "a note needs a title that is not blank"));
    free(out);
    assert_int_not_equal(notes(&out, h->tmp, "notes.note.list titel=x"), 0);
    assert_true(tu_contains(out, "notes.note.list: unknown field 'titel' in filter"));
    free(out);
    assert_int_equal(notes(&out, h->tmp, "notes.comment.new note=2 text=nice"), 0);
    free(out);
    assert_int_not_equal(notes(&out, h->tmp, "notes.note.delete id=2"), 0);
    assert_true(tu_contains(out, "still referenced by other records (comment.note)"));
    free(out);
    assert_int_equal(notes(&out, h->tmp, "notes.note.delete id=3"), 0);
    free(out);
    assert_int_not_equal(notes(&out, h->tmp, "notes.note.get id=3"), 0);
    assert_true(tu_contains(out, "notes.note.get: note 3 does not exist"));
    free(out);
    assert_int_equal(notes(&out, h->tmp, "notes.note.count"), 0);
    assert_true(tu_contains(out, "2"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_get_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_text_is_the_dumped_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_refs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters_order_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_injection_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hooks_refuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_package_query_guard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notes_example_end_to_end, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
