/*
 * router.c: addresses, argument validation through the router, package
 * errors with code and message, package-to-package calls (only to declared
 * dependencies), per-instance state, typed calls without JSON.
 *
 * Instances are built here from the staged fixtures and examples with the
 * host's own pieces (manifest, loader, instance, router), without the config
 * or resolver.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "instance.h"
#include "loader.h"
#include "manifest.h"
#include "phfix.h"
#include "router.h"

#define MAX_INST 8

typedef struct fx {
    char *tmp;
    char *stage;
    ph_router *router;
    ph_manifest *manifests[MAX_INST];
    ph_instance *insts[MAX_INST];
    size_t n;
} fx;

/* Loads package `pkg` (fixture name or "ex:NAME") as instance `name`; starts it if `start`. */
static ph_instance *add(fx *f, const char *pkg, const char *name, int start)
{
    char *dir = fx_pkgdir(pkg);
    char *ini = tu_fmt("%s/package.ini", dir);
    ph_manifest *m = NULL;
    ph_module *mod = NULL;
    ph_instance *inst = NULL;
    ph_routes *t = NULL;
    assert_int_equal(ph_manifest_load(ini, &m), 0);
    f->manifests[f->n] = m;
    if (ph_module_open(m, f->stage, &mod))
        fail_msg("ph_module_open(%s): %s", pkg, ph_error_last());
    assert_int_equal(ph_instance_new(name, "/x", m, mod, m->params, m->n_params, &inst), 0);
    f->insts[f->n++] = inst;
    assert_int_equal(ph_routes_new(inst, &t), 0);
    if (ph_routes_add_package(t, inst->cur))
        fail_msg("ph_routes_add_package(%s): %s", pkg, ph_error_last());
    ph_router_publish(f->router, inst, t);
    assert_int_equal(ph_router_add_instance(f->router, inst), 0);
    if (start && ph_instance_start(inst))
        fail_msg("ph_instance_start(%s): %s", name, ph_error_last());
    free(ini);
    free(dir);
    return inst;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->tmp = tu_tmpdir();
    f->stage = tu_fmt("%s/stage", f->tmp);
    char *markers = tu_fmt("%s/markers", f->tmp);
    mkdir(markers, 0755);
    setenv("PH_TEST_MARKERS", markers, 1);
    free(markers);
    if (ph_router_new(&f->router))
        return -1;
    add(f, "ex:calc", "calc", 1);
    add(f, "core_good", "core_good", 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    for (size_t i = f->n; i-- > 0;)
        ph_instance_stop(f->insts[i]);
    ph_router_free(f->router);
    for (size_t i = 0; i < f->n; i++) {
        ph_instance_free(f->insts[i]);
        ph_manifest_free(f->manifests[i]);
    }
    tu_rmtree(f->tmp);
    free(f->stage);
    free(f->tmp);
    free(f);
    return 0;
}

/* Calls address with JSON text args (NULL: none); returns the result as text or "error WORD: MSG".
 */
static char *call_as(fx *f, ph_instance *caller, const char *address, const char *args)
{
    json_t *in = NULL, *out = NULL;
    if (args) {
        in = json_loads(args, JSON_DECODE_ANY, NULL);
        assert_non_null(in);
    }
    int rc = ph_router_call(f->router, caller, address, in, 0, &out);
    json_decref(in);
    if (rc) {
        assert_null(out);
        assert_int_equal(rc, ph_error_last_code());
        return tu_fmt("error %s: %s", ph_error_last_word(), ph_error_last());
    }
    char *s = json_dumps(out, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(out);
    return s;
}

#define CHECK(f, address, args, want)                                                              \
    do {                                                                                           \
        char *got_ = call_as(f, NULL, address, args);                                              \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

static void test_every_type_through_calc(void **state)
{
    fx *f = *state;
    CHECK(f, "calc.math.add", "{\"a\": 2, \"b\": 40}", "42");
    CHECK(f, "calc.math.add", "[2, 40]", "42");
    CHECK(f, "calc.math.divide", "{\"a\": 1, \"b\": 4}", "0.25");
    CHECK(f, "calc.math.negate", "{\"value\": true}", "false");
    CHECK(f, "calc.math.negate", "[false]", "true");
    CHECK(f, "calc.text.upper", "{\"text\": \"plug host\"}", "\"PLUG HOST\"");
    CHECK(f, "calc.math.stats", "{\"numbers\": [1, 2, 3]}",
          "{\"count\":3,\"sum\":6.0,\"min\":1.0,\"max\":3.0,\"mean\":2.0}");
    CHECK(f, "calc.text.echo", "{\"value\": {\"a\": [1, \"x\", null, true, {\"b\": 2.5}]}}",
          "{\"a\":[1,\"x\",null,true,{\"b\":2.5}]}");
    CHECK(f, "calc.text.echo", "[null]", "null");
    CHECK(f, "calc.text.nothing", NULL, "null");
    CHECK(f, "calc.text.nothing", "{}", "null");
}

static void test_package_error_code_and_message(void **state)
{
    fx *f = *state;
    CHECK(f, "calc.math.divide", "{\"a\": 1, \"b\": 0}",
          "error divide_by_zero: cannot divide 1 by zero");
    CHECK(f, "calc.math.stats", "{\"numbers\": [1, \"x\"]}",
          "error not_a_number: numbers[1] is not a number");
    CHECK(f, "core_good.probe.fail", "{\"code\": \"no_such_thing\", \"message\": \"it is gone\"}",
          "error no_such_thing: it is gone");
    /* Characters outside [A-Za-z0-9_.-] would break JSON/HTTP consumers of the code. */
    CHECK(f, "core_good.probe.fail", "{\"code\": \"bad code!\", \"message\": \"m\"}",
          "error bad_code_: m");
    json_t *in = json_pack("{s:s,s:s}", "code", "x", "message", "y"), *out = NULL;
    assert_int_equal(ph_router_call(f->router, NULL, "core_good.probe.fail", in, 0, &out),
                     PH_EPACKAGE);
    json_decref(in);
    /* After an error the next call succeeds normally. */
    CHECK(f, "calc.math.add", "[1, 1]", "2");
}

static void test_argument_errors_name_the_parameter(void **state)
{
    fx *f = *state;
    CHECK(f, "calc.math.add", "{\"a\": \"2\", \"b\": 40}",
          "error bad_args: calc.math.add: parameter 'a' must be int64, got string");
    CHECK(f, "calc.math.add", "[1]",
          "error bad_args: calc.math.add: takes 2 arguments (int64 a, int64 b), got 1");
    CHECK(f, "calc.math.add", "{\"a\": 1}",
          "error bad_args: calc.math.add: missing parameter 'b' (int64)");
    CHECK(f, "calc.math.add", NULL, "error bad_args: calc.math.add: missing parameter 'a' (int64)");
    CHECK(f, "calc.math.add", "{\"a\": 1, \"b\": 2, \"x\": 3}",
          "error bad_args: calc.math.add: unknown parameter 'x'; it takes (int64 a, int64 b)");
    CHECK(f, "calc.math.negate", "{\"value\": \"yes\"}",
          "error bad_args: calc.math.negate: parameter 'value' must be bool, got string");
    CHECK(f, "calc.text.upper", "[42]",
          "error bad_args: calc.text.upper: parameter 'text' must be string, got integer");
    CHECK(f, "calc.math.divide", "[\"1\", 2]",
          "error bad_args: calc.math.divide: parameter 'a' must be double, got string");
    CHECK(f, "calc.text.nothing", "[1]",
          "error bad_args: calc.text.nothing: takes 0 arguments (no parameters), got 1");
}

static void test_unknown_addresses(void **state)
{
    fx *f = *state;
    CHECK(f, "nope.math.add", "[]",
          "error not_found: no instance 'nope' (address 'nope.math.add'); instances: calc, "
          "core_good");
    char *got = call_as(f, NULL, "calc.math.nope", NULL);
    assert_true(tu_contains(got, "error not_found: instance 'calc' has no method 'math.nope' "
                                 "(address 'calc.math.nope'); methods: "));
    assert_true(tu_contains(got, "math.add"));
    assert_true(tu_contains(got, "text.upper"));
    free(got);
    CHECK(f, "calc", NULL, "error not_found: 'calc' is not an address; use instance.actor.method");
    CHECK(f, "calc.add", NULL,
          "error not_found: 'calc.add' is not an address; use instance.actor.method");
}

static void test_cross_package_calls(void **state)
{
    fx *f = *state;
    ph_instance *caller = add(f, "core_caller", "core_caller", 1);
    CHECK(f, "core_caller.caller.relay", NULL, "\"pong\"");
    /* The callee's error reaches the caller's caller with its code and message. */
    CHECK(f, "core_caller.caller.relay_error", NULL, "error callee_broke: deep trouble");
    /* A method that raises its own error after a failed call replaces it. */
    CHECK(f, "core_caller.caller.relay_replace", NULL,
          "error caller_gave_up: core_good failed (code -11)");
    /* A method that recovers with ph_error_reset returns its own result. */
    CHECK(f, "core_caller.caller.relay_recover", NULL, "\"recovered\"");
    /* A package calling through the router directly is checked the same way. */
    char *got = call_as(f, caller, "core_good.probe.ping", NULL);
    assert_string_equal(got, "\"pong\"");
    free(got);
    got = call_as(f, caller, "calc.math.add", "[1, 2]");
    assert_true(tu_contains(got, "error forbidden: package 'core_caller' may not call "
                                 "'calc.math.add': it does not depend on package 'calc'"));
    free(got);
}

/*
 * Instance `name` of fixture package `pkg` whose package.ini is `ini` (a
 * copy in the test's directory, using the fixture's library).
 */
static ph_instance *add_as(fx *f, const char *pkg, const char *name, const char *ini)
{
    char *dir = fx_pkgdir(pkg);
    char *text =
        tu_fmt("[package]\nname = %s\nversion = 1.0.0\nlibrary = %s/%s.so\n%s", pkg, dir, pkg, ini);
    char *rel = tu_fmt("as/%s/package.ini", name);
    char *path = tu_write(f->tmp, rel, text);
    ph_manifest *m = NULL;
    ph_module *mod = NULL;
    ph_instance *inst = NULL;
    ph_routes *t = NULL;
    if (ph_manifest_load(path, &m))
        fail_msg("%s: %s", path, ph_error_last());
    f->manifests[f->n] = m;
    if (ph_module_open(m, f->stage, &mod))
        fail_msg("ph_module_open(%s): %s", pkg, ph_error_last());
    assert_int_equal(ph_instance_new(name, "/x", m, mod, m->params, m->n_params, &inst), 0);
    f->insts[f->n++] = inst;
    assert_int_equal(ph_routes_new(inst, &t), 0);
    assert_int_equal(ph_routes_add_package(t, inst->cur), 0);
    ph_router_publish(f->router, inst, t);
    assert_int_equal(ph_router_add_instance(f->router, inst), 0);
    if (ph_instance_start(inst))
        fail_msg("ph_instance_start(%s): %s", name, ph_error_last());
    free(dir);
    free(text);
    free(rel);
    free(path);
    return inst;
}

/*
 * A package requiring a capability calls its provider through an address
 * naming the capability: the instance providing the highest version in its
 * range answers.
 */
static void test_call_through_a_capability(void **state)
{
    fx *f = *state;
    add_as(f, "core_good", "old_store", "[provides]\nprobe-api = 1.1.0\n");
    add_as(f, "core_good", "store", "[provides]\nprobe-api = 1.4.0\n");
    add_as(f, "core_good", "next_store", "[provides]\nprobe-api = 2.0.0\n");
    ph_instance *user = add_as(f, "core_caller", "user", "[requires]\nprobe-api = ^1\n");
    char *got = call_as(f, user, "probe-api.probe.ping", NULL);
    assert_string_equal(got, "\"pong\"");
    free(got);
    /* it reached 'store', and only it */
    CHECK(f, "store.probe.calls", NULL, "1");
    CHECK(f, "old_store.probe.calls", NULL, "0");
    CHECK(f, "next_store.probe.calls", NULL, "0");
    /* without the requirement the name is no address */
    got = call_as(f, NULL, "probe-api.probe.ping", NULL);
    assert_true(tu_contains(got, "error not_found: no instance 'probe-api' (address "
                                 "'probe-api.probe.ping'); instances: "));
    free(got);
    /* a range no provider meets */
    ph_instance *picky = add_as(f, "core_caller", "picky", "[requires]\nprobe-api = ^3\n");
    got = call_as(f, picky, "probe-api.probe.ping", NULL);
    assert_string_equal(got, "error not_found: package 'core_caller' requires probe-api ^3, but no "
                             "instance provides a version of it in range (instance 'old_store' of "
                             "core_good provides 1.1.0); address 'probe-api.probe.ping'");
    free(got);
}

static void test_undeclared_call_is_forbidden(void **state)
{
    fx *f = *state;
    ph_instance *intruder = add(f, "core_intruder", "core_intruder", 1);
    char *got = call_as(f, NULL, "core_intruder.intruder.poke", NULL);
    char *want = tu_fmt("error forbidden: package 'core_intruder' may not call "
                        "'core_good.probe.ping': it does not depend on package 'core_good'; add it "
                        "to [requires] or [optional] in %s",
                        intruder->manifest->path);
    assert_string_equal(got, want);
    free(want);
    free(got);
    /* The refused call never reached core_good. */
    CHECK(f, "core_good.probe.calls", NULL, "0");
}

static void test_self_call_allowed(void **state)
{
    fx *f = *state;
    CHECK(f, "core_good.probe.self_ping", NULL, "\"pong\"");
    CHECK(f, "core_good.probe.calls", NULL, "1");
}

static void test_instances_have_their_own_state(void **state)
{
    fx *f = *state;
    add(f, "core_good", "second", 1);
    CHECK(f, "core_good.probe.ping", NULL, "\"pong\"");
    CHECK(f, "core_good.probe.ping", NULL, "\"pong\"");
    CHECK(f, "second.probe.ping", NULL, "\"pong\"");
    CHECK(f, "core_good.probe.calls", NULL, "2");
    CHECK(f, "second.probe.calls", NULL, "1");
    /* Parameters: declared defaults; undeclared names are null. */
    CHECK(f, "second.probe.param", "[\"greeting\"]", "\"hi\"");
    CHECK(f, "second.probe.param", "[\"nope\"]", "null");
    /* Each instance's prepare ran once, under its own name. */
    assert_true(fx_marked(f->tmp, "core_good", "prepare"));
    assert_true(fx_marked(f->tmp, "second", "prepare"));
}

static void test_not_running(void **state)
{
    fx *f = *state;
    add(f, "core_good", "idle", 0);
    /* loaded, not yet started: on its way up, so "retry" (503), not a state error */
    CHECK(f, "idle.probe.ping", NULL,
          "error reloading: instance 'idle' is starting (loaded); retry in a moment (GET "
          "/_/health?ready answers 200 once every instance is up)");
    ph_instance *inst = add(f, "core_fail_prepare", "broken", 0);
    assert_int_equal(ph_instance_start(inst), PH_EPACKAGE);
    assert_string_equal(ph_error_last(),
                        "instance 'broken': prepare failed: cannot open the widget");
    assert_false(fx_marked(f->tmp, "broken", "start"));
    char *got = call_as(f, NULL, "broken.x.y", NULL);
    assert_string_equal(got, "error state: instance 'broken' is failed: prepare failed: cannot "
                             "open the widget");
    free(got);
}

static void test_typed_call_without_json(void **state)
{
    fx *f = *state;
    ph_value vals[2], ret;
    vals[0].i = 40;
    vals[1].i = 2;
    assert_int_equal(ph_router_call_values(f->router, "calc.math.add", vals, &ret), 0);
    assert_int_equal(ret.i, 42);
    vals[0].d = 1;
    vals[1].d = 0;
    assert_int_equal(ph_router_call_values(f->router, "calc.math.divide", vals, &ret), PH_EPACKAGE);
    assert_string_equal(ph_error_last_word(), "divide_by_zero");
    assert_int_equal(ph_router_call_values(f->router, "calc.math.nope", vals, &ret), PH_ENOTFOUND);
}

static void test_find_and_each(void **state)
{
    fx *f = *state;
    const ph_route *rt = ph_router_find(f->router, "calc.math.add");
    assert_non_null(rt);
    assert_string_equal(rt->actor, "math");
    assert_string_equal(rt->method, "add");
    assert_int_equal(rt->n_args, 2);
    assert_int_equal(rt->ret, PH_I64);
    assert_null(ph_router_find(f->router, "calc.math.nope"));
    assert_null(ph_router_find(f->router, "nope.math.add"));
    assert_ptr_equal(ph_router_instance(f->router, "calc"), f->insts[0]);
    assert_null(ph_router_instance(f->router, "cal"));
    /* Stats count calls and errors per route. */
    CHECK(f, "calc.math.add", "[1, 2]", "3");
    CHECK(f, "calc.math.add", "[1]",
          "error bad_args: calc.math.add: takes 2 arguments (int64 a, int64 b), got 1");
    assert_int_equal(atomic_load(&rt->stats->calls), 2);
    /* wrong arguments are the caller's mistake (400), not a fault */
    assert_int_equal(atomic_load(&rt->stats->client_errors), 1);
    assert_int_equal(atomic_load(&rt->stats->errors), 0);
}

static int native_noop(void *ud, ph_instance *inst, json_t *args, json_t **out)
{
    (void)ud;
    (void)inst;
    (void)args;
    *out = json_null();
    return 0;
}

static void check_cif(const ph_route *rt, void *ud)
{
    int *bad = ud;
    if (rt->fn && rt->sig.cif.arg_types != rt->sig.types)
        (*bad)++;
}

/*
 * A table that grows after package methods were prepared (the CRUD actors
 * come after them) must keep every prepared signature valid.
 */
static void test_growing_table_keeps_signatures(void **state)
{
    fx *f = *state;
    ph_instance *calc = ph_router_instance(f->router, "calc");
    ph_routes *t = NULL;
    assert_int_equal(ph_routes_new(calc, &t), 0);
    assert_int_equal(ph_routes_add_package(t, calc->cur), 0);
    char names[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "m%d", i);
        assert_int_equal(ph_routes_add_native(t, "extra", names[i], NULL, 0, PH_JSON, 0, NULL, NULL,
                                              native_noop, NULL),
                         0);
    }
    ph_router_publish(f->router, calc, t);
    int bad = 0;
    ph_router_each(f->router, check_cif, &bad);
    assert_int_equal(bad, 0);
    CHECK(f, "calc.math.add", "{\"a\":2,\"b\":40}", "42");
    CHECK(f, "calc.extra.m39", NULL, "null");
}

/* Host management is for the package manager only (manager = true in its manifest). */
static int fake_manage(void *ud, const char *op, const char *name, json_t **out)
{
    (void)ud;
    (void)name;
    *out = json_string(op);
    return 0;
}

static void test_manage_needs_manager_flag(void **state)
{
    fx *f = *state;
    ph_instance *calc = ph_router_instance(f->router, "calc");
    json_t *out = NULL;
    assert_int_equal(ph_router_manage(f->router, calc, "packages", NULL, &out), PH_EPERM);
    assert_null(out);
    assert_true(tu_contains(ph_error_last(), "package 'calc' may not manage the host; only a "
                                             "package with 'manager = true' in [package]"));
    ph_router_set_manager(f->router, fake_manage, NULL);
    ((ph_manifest *)calc->manifest)->manager = true;
    assert_int_equal(ph_router_manage(f->router, calc, "packages", NULL, &out), 0);
    assert_string_equal(json_string_value(out), "packages");
    json_decref(out);
    /* Changing the host needs a call chain that started with the admin token. */
    assert_false(ph_router_chain_admin());
    out = NULL;
    assert_int_equal(ph_router_manage(f->router, calc, "unload", "notes", &out), PH_EPERM);
    assert_null(out);
    assert_string_equal(ph_error_last(),
                        "package 'calc' asked the host to unload 'notes' for a caller without "
                        "the admin token; send the admin token with the request");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_every_type_through_calc),
        T(test_call_through_a_capability),
        T(test_package_error_code_and_message),
        T(test_argument_errors_name_the_parameter),
        T(test_unknown_addresses),
        T(test_cross_package_calls),
        T(test_undeclared_call_is_forbidden),
        T(test_self_call_allowed),
        T(test_instances_have_their_own_state),
        T(test_not_running),
        T(test_typed_call_without_json),
        T(test_find_and_each),
        T(test_growing_table_keeps_signatures),
        T(test_manage_needs_manager_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
