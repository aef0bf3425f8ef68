/*
 * host.c: loading and starting a plan in order, containing failures (a
 * failing package takes down only itself and its dependents), --strict,
 * refusing mismatched descriptors before any of their code runs, and
 * stopping in reverse order.
 *
 * In-process, through ph_config_load/ph_host_open/ph_host_start, over host.ini
 * files listing exact staged fixture directories. (test_cli.c runs the same
 * scenarios through the real binary.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "host.h"
#include "log.h"
#include "phfix.h"

typedef struct fx {
    char *tmp;
    ph_host *h;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->tmp = tu_tmpdir();
    char *markers = tu_fmt("%s/markers", f->tmp);
    setenv("PH_TEST_MARKERS", markers, 1);
    free(markers);
    ph_log_set_level(PH_L_ERROR);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->h)
        ph_host_stop(f->h);
    ph_host_free(f->h);
    tu_rmtree(f->tmp);
    free(f->tmp);
    free(f);
    return 0;
}

/* Opens a host over exactly these packages (plus `extra` ini text); does not start it. */
static ph_host *open_host(fx *f, const char *const *names, const char *extra)
{
    char *ini = fx_host_ini(f->tmp, names, extra);
    ph_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (ph_config_load(ini, &cfg))
        fail_msg("ph_config_load: %s", ph_error_last());
    if (ph_host_open(&cfg, &f->h))
        fail_msg("ph_host_open: %s", ph_error_last());
    free(ini);
    return f->h;
}

/* State name of an instance, and its reason in *reason (may be NULL). */
static const char *state_of(ph_host *h, const char *instance, const char **reason)
{
    long i = ph_plan_find(&h->plan, instance);
    if (i < 0)
        fail_msg("instance %s is not in the plan", instance);
    const char *r = NULL;
    const char *s = ph_host_item_state(h, (size_t)i, &r);
    if (reason)
        *reason = r;
    return s;
}

static char *call(ph_host *h, const char *address, const char *args)
{
    json_t *in = args ? json_loads(args, 0, NULL) : NULL, *out = NULL;
    int rc = ph_router_call(h->router, NULL, address, in, 0, &out);
    json_decref(in);
    if (rc)
        return tu_fmt("error %s: %s", ph_error_last_word(), ph_error_last());
    char *s = json_dumps(out, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(out);
    return s;
}

static void assert_call(ph_host *h, const char *address, const char *args, const char *want)
{
    char *got = call(h, address, args);
    assert_string_equal(got, want);
    free(got);
}

static void test_good_set_starts_in_order(void **state)
{
    fx *f = *state;
    const char *names[] = {"core_caller", "core_good", "ex:calc", NULL};
    ph_host *h = open_host(f, names, NULL);
    assert_int_equal(h->plan.n_problems, 0);
    /* Dependencies load first, whatever order the directories are listed in. */
    assert_true(ph_plan_find(&h->plan, "core_good") < ph_plan_find(&h->plan, "core_caller"));
    assert_false(fx_marked(f->tmp, "core_good", "prepare")); /* open runs no package code */
    assert_int_equal(ph_host_start(h), 0);
    assert_string_equal(state_of(h, "core_good", NULL), "running");
    assert_string_equal(state_of(h, "core_caller", NULL), "running");
    assert_string_equal(state_of(h, "calc", NULL), "running");
    assert_true(fx_marked(f->tmp, "core_good", "prepare"));
    assert_true(fx_marked(f->tmp, "core_good", "start"));
    assert_call(h, "core_caller.caller.relay", NULL, "\"pong\"");
    assert_call(h, "calc.math.add", "{\"a\":2,\"b\":40}", "42");
    ph_host_stop(h);
    assert_true(fx_marked(f->tmp, "core_good", "stop"));
    assert_true(fx_marked(f->tmp, "core_caller", "stop"));
    assert_string_equal(state_of(h, "core_good", NULL), "stopped");
    /* Stopped instances take no calls. */
    assert_call(h, "core_good.probe.ping", NULL, "error state: instance 'core_good' is stopped");
}

static void test_failing_prepare_is_contained(void **state)
{
    fx *f = *state;
    const char *names[] = {"core_fail_prepare", "core_needs_failed", "core_good", "core_caller",
                           NULL};
    ph_host *h = open_host(f, names, NULL);
    assert_int_equal(ph_host_start(h), 0); /* not strict: the host keeps going */
    const char *reason;
    assert_string_equal(state_of(h, "core_fail_prepare", &reason), "failed");
    assert_true(tu_contains(reason, "prepare failed: cannot open the widget"));
    assert_string_equal(state_of(h, "core_needs_failed", &reason), "skipped");
    assert_true(tu_contains(reason, "depends on 'core_fail_prepare'"));
    /* Unrelated packages run. */
    assert_string_equal(state_of(h, "core_good", NULL), "running");
    assert_string_equal(state_of(h, "core_caller", NULL), "running");
    assert_call(h, "core_caller.caller.relay", NULL, "\"pong\"");
    /* Which code ran: the failing prepare, nothing after it, nothing of the dependent. */
    assert_true(fx_marked(f->tmp, "core_fail_prepare", "prepare"));
    assert_false(fx_marked(f->tmp, "core_fail_prepare", "start"));
    assert_false(fx_marked(f->tmp, "core_needs_failed", "prepare"));
    ph_host_stop(h);
    assert_false(fx_marked(f->tmp, "core_fail_prepare", "stop"));
    assert_true(fx_marked(f->tmp, "core_good", "stop"));
}

static void test_strict_makes_failure_fatal(void **state)
{
    fx *f = *state;
    const char *names[] = {"core_good", "core_fail_prepare", NULL};
    ph_host *h = open_host(f, names, NULL);
    h->cfg.strict = true; /* what --strict sets */
    assert_int_equal(ph_host_start(h), PH_ELOAD);
    assert_string_equal(ph_error_last(), "1 instance(s) could not start and strict mode is on");
    /* What had started is stopped again. */
    assert_true(fx_marked(f->tmp, "core_good", "start"));
    assert_true(fx_marked(f->tmp, "core_good", "stop"));
}

static void test_decline_skips_dependents(void **state)
{
    fx *f = *state;
    const char *names[] = {"core_decline", "core_needs_declined", "core_good", NULL};
    ph_host *h = open_host(f, names, NULL);
    assert_int_equal(ph_host_start(h), 0);
    const char *reason;
    assert_string_equal(state_of(h, "core_decline", &reason), "declined");
    assert_string_equal(reason, "start declined");
    assert_string_equal(state_of(h, "core_needs_declined", &reason), "skipped");
    assert_true(tu_contains(reason, "depends on 'core_decline'"));
    assert_false(fx_marked(f->tmp, "core_needs_declined", "prepare"));
    assert_string_equal(state_of(h, "core_good", NULL), "running");
    ph_host_stop(h);
    /* stop ran right after the declined start, releasing what prepare acquired */
    assert_true(fx_marked(f->tmp, "core_decline", "stop"));
}

static void test_failing_start(void **state)
{
    fx *f = *state;
    const char *names[] = {"core_fail_start", "core_good", NULL};
    ph_host *h = open_host(f, names, NULL);
    assert_int_equal(ph_host_start(h), 0);
    const char *reason;
    assert_string_equal(state_of(h, "core_fail_start", &reason), "failed");
    assert_true(
        tu_contains(reason, "start failed: the package returned an error without a message"));
    assert_true(fx_marked(f->tmp, "core_fail_start", "start"));
    /* stop ran right after the failed start, releasing what prepare acquired */
    assert_true(fx_marked(f->tmp, "core_fail_start", "stop"));
    assert_string_equal(state_of(h, "core_good", NULL), "running");
    ph_host_stop(h);
}

/* A refused descriptor: failed with the message, and none of its code ran. */
static void check_refused(fx *f, const char *pkg, const char *want)
{
    const char *names[] = {pkg, "core_good", NULL};
    ph_host *h = open_host(f, names, NULL);
    assert_int_equal(ph_host_start(h), 0);
    const char *reason;
    assert_string_equal(state_of(h, pkg, &reason), "failed");
    assert_true(tu_contains(reason, want));
    assert_false(fx_marked(f->tmp, pkg, "prepare"));
    assert_false(fx_marked(f->tmp, pkg, "start"));
    assert_string_equal(state_of(h, "core_good", NULL), "running");
    /* The control: the same marker mechanism does see core_good's prepare. */
    assert_true(fx_marked(f->tmp, "core_good", "prepare"));
}

static void test_bad_abi_runs_no_code(void **state)
{
    check_refused(*state, "core_bad_abi",
                  "the .so was built against SDK ABI 2 but this host supports ABI 1");
}

static void test_name_mismatch_runs_no_code(void **state)
{
    check_refused(*state, "core_bad_name", "the .so says its name is 'core_impostor' but");
}

static void test_version_mismatch_runs_no_code(void **state)
{
    check_refused(*state, "core_bad_version", "the .so is version 2.0.0 but");
}

static void test_missing_descriptor_runs_no_code(void **state)
{
    check_refused(*state, "core_no_desc", "exports no 'plughost_package_v1'");
}

static void test_resolver_failures_are_contained(void **state)
{
    fx *f = *state;
    const char *names[] = {
        "core_missing_dep", "core_range", "core_cycle_a", "core_cycle_b", "core_cycle_c",
        "core_good",        NULL};
    ph_host *h = open_host(f, names, NULL);
    assert_true(h->plan.n_problems >= 5);
    assert_int_equal(ph_host_start(h), 0);
    assert_string_equal(state_of(h, "core_missing_dep", NULL), "failed");
    assert_string_equal(state_of(h, "core_range", NULL), "failed");
    assert_string_equal(state_of(h, "core_cycle_a", NULL), "failed");
    assert_string_equal(state_of(h, "core_good", NULL), "running");
    assert_false(fx_marked(f->tmp, "core_missing_dep", "prepare"));
    assert_false(fx_marked(f->tmp, "core_cycle_a", "prepare"));
    assert_false(fx_marked(f->tmp, "core_range", "prepare"));
}

static void test_instances_and_overrides(void **state)
{
    fx *f = *state;
    const char *names[] = {"core_good", NULL};
    ph_host *h = open_host(f, names,
                           "\n[instance one]\npackage = core_good\ngreeting = hello one\n"
                           "\n[instance two]\npackage = core_good\n");
    assert_int_equal(ph_host_start(h), 0);
    assert_string_equal(state_of(h, "one", NULL), "running");
    assert_string_equal(state_of(h, "two", NULL), "running");
    assert_call(h, "one.probe.param", "[\"greeting\"]", "\"hello one\"");
    assert_call(h, "two.probe.param", "[\"greeting\"]", "\"hi\"");
    assert_call(h, "one.probe.ping", NULL, "\"pong\"");
    assert_call(h, "one.probe.calls", NULL, "1");
    assert_call(h, "two.probe.calls", NULL, "0");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_good_set_starts_in_order),
        T(test_failing_prepare_is_contained),
        T(test_strict_makes_failure_fatal),
        T(test_decline_skips_dependents),
        T(test_failing_start),
        T(test_bad_abi_runs_no_code),
        T(test_name_mismatch_runs_no_code),
        T(test_version_mismatch_runs_no_code),
        T(test_missing_descriptor_runs_no_code),
        T(test_resolver_failures_are_contained),
        T(test_instances_and_overrides),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
