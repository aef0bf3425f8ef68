/*
 * The plughost command line, end to end: the real binary over the staged
 * examples and fixture packages, asserting exit codes and the exact text
 * users read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "phfix.h"

typedef struct fx {
    char *tmp;
    char *ini;
    char *out;
    char *err;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->tmp = tu_tmpdir();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    tu_rmtree(f->tmp);
    free(f->tmp);
    free(f->ini);
    free(f->out);
    free(f->err);
    free(f);
    return 0;
}

static void use(fx *f, const char *const *names)
{
    free(f->ini);
    f->ini = fx_host_ini(f->tmp, names, NULL);
}

/* Runs plughost with printf-style arguments; stdout in f->out, stderr in f->err. */
static int ph(fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ph(fx *f, const char *fmt, ...)
{
    va_list ap;
    char *args = NULL;
    va_start(ap, fmt);
    assert_true(vasprintf(&args, fmt, ap) >= 0);
    va_end(ap);
    free(f->out);
    free(f->err);
    int rc = fx_plughost(f->tmp, &f->out, &f->err, args);
    free(args);
    return rc;
}

/* `call --local` of the examples: stdout must be exactly `want` + newline. */
static void check_call(fx *f, const char *args, const char *want)
{
    int rc = ph(f, "call --local -c '%s' %s", f->ini, args);
    char *line = tu_fmt("%s\n", want);
    if (rc != 0 || strcmp(f->out, line) != 0)
        fail_msg("plughost call %s: exit %d\nstdout: %s\nstderr: %s\nwanted: %s", args, rc, f->out,
                 f->err, want);
    free(line);
}

/* `call --local` that must fail with exit 1 and `want` in stderr, nothing on stdout. */
static void check_call_fails(fx *f, const char *args, const char *want)
{
    int rc = ph(f, "call --local -c '%s' %s", f->ini, args);
    if (rc != 1 || f->out[0] || !strstr(f->err, want))
        fail_msg("plughost call %s: exit %d\nstdout: %s\nstderr: %s\nwanted in stderr: %s", args,
                 rc, f->out, f->err, want);
}

/* ---- call: acceptance 2 ---- */

static void test_call_add(void **state)
{
    fx *f = *state;
    const char *names[] = {"ex:hello", "ex:calc", NULL};
    use(f, names);
    check_call(f, "calc.math.add a=2 b=40", "42");
    /* Logs go to stderr, never into the result. */
    assert_true(tu_contains(f->err, "calc is running"));
    check_call(f, "calc.math.add '{\"a\": 2, \"b\": 40}'", "42");
    check_call(f, "calc.math.add '[2, 40]'", "42");
    check_call(f, "calc.math.add a=-9223372036854775807 b=-1", "-9223372036854775808");
}

static void test_call_every_type(void **state)
{
    fx *f = *state;
    const char *names[] = {"ex:calc", NULL};
    use(f, names);
    check_call(f, "calc.math.divide a=1 b=4", "0.25");
    check_call(f, "calc.math.divide a=7.5 b=2.5", "3.0");
    check_call(f, "calc.math.negate value=true", "false");
    check_call(f, "calc.math.negate value=no", "true");
    check_call(f, "calc.text.upper text='plug host'", "\"PLUG HOST\"");
    check_call(f, "calc.text.upper text=42", "\"42\""); /* a string parameter keeps text as text */
    check_call(f, "calc.math.stats 'numbers=[1, 2, 3]'",
               "{\"count\":3,\"sum\":6.0,\"min\":1.0,\"max\":3.0,\"mean\":2.0}");
    check_call(f, "calc.text.echo 'value={\"a\": [1, \"x\", null, true, {\"b\": 2.5}]}'",
               "{\"a\":[1,\"x\",null,true,{\"b\":2.5}]}");
    check_call(f, "calc.text.echo '{\"value\": [\"nested\", {\"deep\": [[]]}]}'",
               "[\"nested\",{\"deep\":[[]]}]");
    check_call(f, "calc.text.nothing", "null");
}

/* A CRUD method's name=value pairs convert by the model's field types (README). */
static void test_call_crud_typed(void **state)
{
    fx *f = *state;
    const char *names[] = {"ex:notes", NULL};
    use(f, names);
    int rc = ph(f, "call --local -c '%s' notes.note.new title=1984 pinned=yes owner=007", f->ini);
    if (rc != 0 || !tu_contains(f->out, "\"title\":\"1984\"") ||
        !tu_contains(f->out, "\"pinned\":true") || !tu_contains(f->out, "\"owner\":\"007\""))
        fail_msg("typed CRUD fields: exit %d\nstdout: %s\nstderr: %s", rc, f->out, f->err);
    check_call_fails(f, "notes.note.new title=x pinned=maybe",
                     "pinned=maybe: 'pinned' takes true or false");
}

static void test_call_errors(void **state)
{
    fx *f = *state;
    const char *names[] = {"ex:calc", NULL};
    use(f, names);
    /* An error the package raises: its code and message. */
    check_call_fails(f, "calc.math.divide a=1 b=0",
                     "plughost: divide_by_zero: cannot divide 1 by zero\n");
    /* A sum past int64 was undefined behaviour in calc (UBSan aborts on it in build-asan). */
    check_call_fails(f, "calc.math.add a=9223372036854775807 b=1",
                     "plughost: overflow: 9223372036854775807 + 1 does not fit in a 64-bit "
                     "integer\n");
    check_call_fails(f, "calc.math.stats 'numbers=\"x\"'",
                     "plughost: not_an_array: numbers must be an array of numbers\n");
    /* Wrong types and counts name the parameter and the expected type. */
    check_call_fails(f, "calc.math.add a=x b=1", "plughost: a=x: 'a' takes an integer\n");
    check_call_fails(
        f, "calc.math.add '{\"a\": \"2\", \"b\": 40}'",
        "plughost: bad_args: calc.math.add: parameter 'a' must be int64, got string\n");
    check_call_fails(
        f, "calc.math.add '[1]'",
        "plughost: bad_args: calc.math.add: takes 2 arguments (int64 a, int64 b), got 1\n");
    check_call_fails(f, "calc.math.add a=1",
                     "plughost: bad_args: calc.math.add: missing parameter 'b' (int64)\n");
    check_call_fails(f, "calc.math.add a=1 b=2 c=3",
                     "plughost: bad_args: calc.math.add: unknown parameter 'c'; it takes (int64 a, "
                     "int64 b)\n");
    check_call_fails(f, "calc.math.negate value=maybe",
                     "plughost: value=maybe: 'value' takes true or false\n");
    check_call_fails(f, "calc.math.nope",
                     "plughost: not_found: instance 'calc' has no method "
                     "'math.nope' (address 'calc.math.nope'); methods: ");
    check_call_fails(f, "nope.math.add",
                     "plughost: not_found: no instance 'nope' (address "
                     "'nope.math.add'); instances: calc\n");
    check_call_fails(f, "calc.math.add '{\"a\": 1,'", "plughost: arguments are not valid JSON: ");
    /*
     * Without --local, call goes to a running host: through its local socket,
     * else its TCP address; none runs here.
     */
    int rc = ph(f, "call -c '%s' calc.math.add a=1 b=2", f->ini);
    assert_int_equal(rc, 3); /* documented: no host is running */
    char *want = tu_fmt("plughost: unreachable: no host is running (no socket at %s/data/"
                        "plughost.sock); start one with plughost run\n",
                        f->tmp);
    assert_string_equal(f->err, want);
    free(want);
    /* --listen names the TCP address: what it says when nothing listens there */
    rc = ph(f, "call -c '%s' --listen 127.0.0.1:1 calc.math.add a=1 b=2", f->ini);
    if (rc != 3)
        fail_msg("call --listen 127.0.0.1:1 exited %d, not 3: %s", rc, f->err);
    assert_true(tu_contains(f->err, "cannot connect to http://127.0.0.1:1: "));
    assert_true(tu_contains(f->err, "is `plughost run` up?"));
    rc = ph(f, "call --local -c '%s'", f->ini);
    assert_int_equal(rc, 2);
    assert_true(tu_contains(f->err, "plughost call: which method?"));
}

static void test_call_between_packages(void **state)
{
    fx *f = *state;
    const char *names[] = {"core_good", "core_caller", "core_intruder", NULL};
    use(f, names);
    check_call(f, "core_caller.caller.relay", "\"pong\"");
    check_call_fails(f, "core_caller.caller.relay_error", "plughost: callee_broke: deep trouble\n");
    char *want = tu_fmt("plughost: forbidden: package 'core_intruder' may not call "
                        "'core_good.probe.ping': it does not depend on package 'core_good'; add it "
                        "to [requires] or [optional] in %s/core_intruder/package.ini\n",
                        tu_env("PH_FIXTURES"));
    check_call_fails(f, "core_intruder.intruder.poke", want);
    free(want);
}

static void test_call_examples_pair(void **state)
{
    fx *f = *state;
    const char *names[] = {"ex:hello", "ex:greeter", NULL};
    use(f, names);
    check_call(f, "greeter.greeter.welcome name=Ada", "\"Hello, Ada! Welcome to plughost.\"");
    check_call(f, "greeter.greeter.welcome_all 'names=[\"Ada\", \"Linus\"]'",
               "[\"Hello, Ada! Welcome to plughost.\",\"Hello, Linus! Welcome to plughost.\"]");
    check_call_fails(f, "greeter.greeter.welcome_all 'names=[\"Ada\", 7]'",
                     "plughost: not_a_string: names[1] is not a string\n");
    /* The greeting comes from hello's parameter, overridable per instance in host.ini. */
    char *text = tu_read(f->ini);
    char *more = tu_fmt("%s\n[instance hello]\ngreeting = Welcome back\n", text);
    free(tu_write(f->tmp, "host.ini", more));
    check_call(f, "greeter.greeter.welcome name=Ada",
               "\"Welcome back, Ada! Welcome to plughost.\"");
    free(more);
    free(text);
    /* Without hello the greeter cannot load, and says why. */
    const char *alone[] = {"ex:greeter", NULL};
    use(f, alone);
    int rc = ph(f, "check -c '%s'", f->ini);
    assert_int_equal(rc, 1);
    assert_true(tu_contains(f->out, "requires package 'hello' (^1.0), which is not installed"));
}

/* ---- check: acceptance 3 ---- */

static void test_check_ok(void **state)
{
    fx *f = *state;
    const char *names[] = {"core_caller", "core_good", "ex:calc", NULL};
    use(f, names);
    int rc = ph(f, "check -c '%s'", f->ini);
    assert_int_equal(rc, 0);
    assert_true(tu_contains(f->out, "load order (3 instances):"));
    assert_true(tu_contains(f->out, "no problems"));
    long good = fx_pos(f->out, " core_good "), caller = fx_pos(f->out, " core_caller ");
    assert_true(good >= 0 && caller > good); /* the dependency comes first */
    assert_true(tu_contains(f->out, "core_caller 1.0.0  needs core_good  [ok]"));
    /* check runs no package code */
    assert_false(fx_marked(f->tmp, "core_good", "prepare"));
}

static void test_check_cycle(void **state)
{
    fx *f = *state;
    const char *names[] = {"core_cycle_a", "core_cycle_b", "core_cycle_c", "core_good", NULL};
    use(f, names);
    int rc = ph(f, "check -c '%s'", f->ini);
    assert_int_equal(rc, 1);
    assert_true(tu_contains(f->out, "problems ("));
    assert_true(tu_contains(f->out,
                            "dependency cycle: core_cycle_a -> core_cycle_b -> core_cycle_c "
                            "-> core_cycle_a"));
    assert_true(tu_contains(f->out, "core_good 1.0.0  [ok]"));
    for (const char *const *n = names; *n; n++)
        assert_false(fx_marked(f->tmp, *n, "prepare"));
}

static void test_check_missing_and_range(void **state)
{
    fx *f = *state;
    const char *names[] = {"core_missing_dep", "core_range", "core_good", NULL};
    use(f, names);
    int rc = ph(f, "check -c '%s'", f->ini);
    assert_int_equal(rc, 1);
    /* Missing: names the package, what it requires and the range. */
    assert_true(tu_contains(f->out,
                            "instance 'core_missing_dep' (package core_missing_dep 1.0.0) "
                            "requires package 'core_absent' (^1.0), which is not installed"));
    /* Unsatisfied: names the package, the range and the version found. */
    char *want = tu_fmt("package 'core_range' 1.0.0 requires core_good ^2.0 but core_good 1.0.0 is "
                        "installed; install a matching version of core_good or change the range in "
                        "%s/core_range/package.ini:",
                        tu_env("PH_FIXTURES"));
    assert_true(tu_contains(f->out, want));
    free(want);
}

static void test_check_conflict(void **state)
{
    fx *f = *state;
    const char *names[] = {"core_conflict", "core_good", NULL};
    use(f, names);
    int rc = ph(f, "check -c '%s'", f->ini);
    assert_int_equal(rc, 1);
    assert_true(
        tu_contains(f->out, "package 'core_conflict' 1.0.0 conflicts with core_good 1.0.0"));
}

/* ---- failures while starting: acceptance 4 and 5 ---- */

static void test_refused_descriptors(void **state)
{
    fx *f = *state;
    const char *names[] = {"core_bad_abi", "core_bad_name", "core_bad_version",
                           "core_no_desc", "core_good",     NULL};
    use(f, names);
    check_call(f, "core_good.probe.ping", "\"pong\"");
    assert_true(tu_contains(f->err, "package 'core_bad_abi': the .so was built against SDK ABI 2 "
                                    "but this host supports ABI 1; rebuild it against this SDK"));
    assert_true(tu_contains(f->err, "package 'core_bad_name': the .so says its name is "
                                    "'core_impostor' but "));
    assert_true(tu_contains(f->err, "package 'core_bad_version': the .so is version 2.0.0 but "));
    assert_true(tu_contains(f->err, "says version 1.0.0; rebuild the package so both agree"));
    assert_true(tu_contains(f->err, "package 'core_no_desc': "));
    assert_true(tu_contains(f->err, "exports no 'plughost_package_v1'"));
    /* No code of a refused package ran; the good one did (the marker mechanism works). */
    assert_true(fx_marked(f->tmp, "core_good", "prepare"));
    for (size_t i = 0; i < 4; i++) {
        assert_false(fx_marked(f->tmp, names[i], "prepare"));
        assert_false(fx_marked(f->tmp, names[i], "start"));
    }
    /* With --strict the same set is fatal. */
    int rc = ph(f, "call --local --strict -c '%s' core_good.probe.ping", f->ini);
    assert_int_equal(rc, 1);
    assert_true(tu_contains(f->err, "strict mode is on"));
}

static void test_failing_prepare(void **state)
{
    fx *f = *state;
    const char *names[] = {"core_fail_prepare", "core_needs_failed", "core_good",
                           "core_caller",       "ex:calc",           NULL};
    use(f, names);
    check_call(f, "core_caller.caller.relay", "\"pong\"");
    assert_true(tu_contains(f->err, "core_fail_prepare: instance 'core_fail_prepare': prepare "
                                    "failed: cannot open the widget"));
    assert_true(tu_contains(f->err, "core_needs_failed: skipped: depends on 'core_fail_prepare', "
                                    "which is not running"));
    assert_false(fx_marked(f->tmp, "core_needs_failed", "prepare"));
    /* Calling the failed instance says why it is not there. */
    check_call_fails(f, "core_fail_prepare.x.y",
                     "plughost: state: instance 'core_fail_prepare' is failed: prepare failed: "
                     "cannot open the widget\n");
    check_call_fails(f, "core_needs_failed.x.y", "instance 'core_needs_failed'");
}

/* ---- run: acceptance 1 ---- */

static void run_and_stop(fx *f, int sig, const char *signame)
{
    const char *names[] = {"core_caller", "core_good", "ex:hello", "ex:calc", "ex:notes", NULL};
    use(f, names);
    pid_t pid = fx_start_run(f->tmp, f->ini, "Ctrl-C stops", 30);
    char *log = tu_fmt("%s/run.log", f->tmp);
    if (pid <= 0) {
        char *text = tu_read(log);
        fail_msg("plughost run did not get ready:\n%s", text ? text : "(no log)");
    }
    assert_true(fx_marked(f->tmp, "core_good", "start"));
    assert_false(fx_marked(f->tmp, "core_good", "stop"));
    /* While it runs it serves calls: `call` without --local goes to it over HTTP. */
    int rc = ph(f, "call -c '%s' calc.math.add a=2 b=40", f->ini);
    if (rc != 0 || strcmp(f->out, "42\n") != 0)
        fail_msg("call to the running host: exit %d\nstdout: %s\nstderr: %s", rc, f->out, f->err);
    rc = ph(f, "call -c '%s' core_caller.caller.relay", f->ini);
    if (rc != 0)
        fail_msg("call core_caller.caller.relay: exit %d\nstdout: %s\nstderr: %s", rc, f->out,
                 f->err);
    assert_string_equal(f->out, "\"pong\"\n");
    /* over HTTP too, the model's field types convert name=value pairs */
    rc = ph(f, "call -c '%s' notes.note.new title=1984", f->ini);
    if (rc != 0 || !tu_contains(f->out, "\"title\":\"1984\""))
        fail_msg("typed CRUD over HTTP: exit %d\nstdout: %s\nstderr: %s", rc, f->out, f->err);
    rc = fx_stop_run(pid, sig, 30);
    char *text = tu_read(log);
    if (rc != 0)
        fail_msg("plughost run exited %d after %s:\n%s", rc, signame, text);
    char *received = tu_fmt("%s received: stopping", signame);
    long got = fx_pos(text, received);
    long caller = fx_pos(text, "core_caller stopped");
    long good_stop = fx_pos(text, "[core_good] stop called");
    long good = fx_pos(text, "core_good stopped");
    long hello = fx_pos(text, "hello stopped");
    long calc = fx_pos(text, "calc stopped");
    long clean = fx_pos(text, "stopped cleanly");
    assert_true(got > 0 && caller > got && good_stop > caller && good > good_stop);
    assert_true(hello > got && calc > got && clean > good && clean > hello && clean > calc);
    /* Reverse of the start order: the dependent stops before its dependency. */
    long start_good = fx_pos(text, "core_good is running");
    long start_caller = fx_pos(text, "core_caller is running");
    assert_true(start_good >= 0 && start_caller > start_good);
    assert_true(tu_contains(text, "[hello] stopped after 0 greeting(s)"));
    assert_true(fx_marked(f->tmp, "core_good", "stop"));
    assert_true(fx_marked(f->tmp, "core_caller", "stop"));
    free(received);
    free(text);
    free(log);
}

static void test_run_sigterm(void **state)
{
    run_and_stop(*state, SIGTERM, "SIGTERM");
}
static void test_run_sigint(void **state)
{
    run_and_stop(*state, SIGINT, "SIGINT");
}

static void test_run_keeps_going_after_failures(void **state)
{
    fx *f = *state;
    const char *names[] = {"core_fail_prepare", "core_needs_failed", "core_bad_abi", "core_good",
                           NULL};
    use(f, names);
    pid_t pid = fx_start_run(f->tmp, f->ini, "Ctrl-C stops", 30);
    assert_true(pid > 0);
    assert_int_equal(fx_stop_run(pid, SIGTERM, 30), 0);
    char *log = tu_fmt("%s/run.log", f->tmp);
    char *text = tu_read(log);
    assert_true(tu_contains(text, "prepare failed: cannot open the widget"));
    assert_true(tu_contains(text, "core_needs_failed: skipped: depends on 'core_fail_prepare'"));
    assert_true(tu_contains(text, "core_good is running"));
    assert_true(tu_contains(text, "core_good stopped"));
    free(text);
    free(log);
}

/* ---- help, version, usage errors ---- */

/* The longest line of `text`, in bytes (the help is ASCII). */
static int max_width(const char *text)
{
    int best = 0;
    for (const char *p = text; *p;) {
        int n = (int)strcspn(p, "\n");
        best = n > best ? n : best;
        p += n + (p[n] == '\n');
    }
    return best;
}

static void test_help_and_version(void **state)
{
    fx *f = *state;
    assert_int_equal(ph(f, "--version"), 0);
    assert_true(tu_contains(f->out, "plughost "));
    assert_true(tu_contains(f->out, "(SDK ABI 1)"));
    assert_int_equal(ph(f, "--help"), 0);
    assert_true(tu_contains(f->out, "Usage: plughost [--version] COMMAND [options] [args]"));
    /* the sections plughost(1) has too (`plughost help --man`, from the same table) */
    assert_true(tu_contains(f->out, "\nExit status:\n  0   success\n"));
    assert_true(tu_contains(f->out, "\nEnvironment:\n"));
    assert_true(tu_contains(f->out, "  2   a usage error, said in one line"));
    assert_true(tu_contains(f->out, "\nFiles:\n"));
    assert_true(tu_contains(f->out, "\nExamples:\n"));
    assert_true(tu_contains(f->out, "  75  the running host asks to retry later"));
    assert_int_equal(max_width(f->out), 80);
    const char *cmds[] = {"run",    "check",   "call",    "list",   "status", "reload", "backup",
                          "enable", "disable", "install", "remove", "new",    "help"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        assert_int_equal(ph(f, "%s --help", cmds[i]), 0);
        char *want = tu_fmt("Usage: plughost %s", cmds[i]);
        if (!tu_contains(f->out, want) || max_width(f->out) > 80)
            fail_msg("plughost %s --help: not its usage in 80 columns:\n%s", cmds[i], f->out);
        free(want);
        assert_int_equal(ph(f, "help %s", cmds[i]), 0);
        assert_true(tu_contains(f->out, cmds[i]));
        assert_true(max_width(f->out) <= 80);
    }
    assert_int_equal(ph(f, "frobnicate"), 2);
    assert_string_equal(f->err, "plughost: unknown command 'frobnicate'; see plughost --help\n");
    assert_int_equal(ph(f, "%s", ""), 2);
    assert_string_equal(f->err, "plughost: no command; see plughost --help\n");
    /* an unknown option: one line with the hint, not getopt's line nor the whole help */
    assert_int_equal(ph(f, "--frobnicate"), 2);
    assert_string_equal(f->err, "plughost: unknown option '--frobnicate'; see plughost --help\n");
    assert_int_equal(ph(f, "status --frobnicate"), 2);
    assert_string_equal(f->err,
                        "plughost status: unknown option '--frobnicate'; see plughost status "
                        "--help\n");
    assert_int_equal(ph(f, "help nothing"), 2);
    assert_string_equal(f->err,
                        "plughost help: unknown command 'nothing'; see plughost help --help\n");
    /* the daemon's help fits 80 columns too; its usage errors are one line, exit 2 */
    char *out = NULL;
    assert_int_equal(tu_run(&out, "'%s' --help", tu_env("PH_DAEMON")), 0);
    assert_true(tu_contains(out, "Usage: plughostd [run]"));
    if (max_width(out) > 80)
        fail_msg("plughostd --help is %d columns wide:\n%s", max_width(out), out);
    free(out);
    assert_int_equal(tu_run(&out, "'%s' --log-level loud 2>&1", tu_env("PH_DAEMON")), 2);
    assert_string_equal(out, "plughostd: --log-level 'loud': use error, warn, info or debug; see "
                             "plughostd --help\n");
    free(out);
}

static void test_list(void **state)
{
    fx *f = *state;
    const char *names[] = {"ex:hello", "ex:calc", NULL};
    use(f, names);
    assert_int_equal(ph(f, "list -c '%s'", f->ini), 0);
    assert_true(tu_contains(f->out, "hello"));
    assert_true(tu_contains(f->out, "Greets whoever calls it"));
    assert_true(tu_contains(f->out, "calc"));
    assert_true(tu_contains(f->out, "1.0.0"));
    /* a manifest that cannot be read is said, not passed over */
    char *bad = tu_fmt("%s/bad/broken", f->tmp);
    assert_int_equal(tu_run(NULL, "mkdir -p '%s'", bad), 0);
    free(tu_write(bad, "package.ini", "[package]\nname = broken\nversion = 1.0\n"));
    assert_int_equal(ph(f, "list -c '%s' --packages '%s/bad'", f->ini, f->tmp), 1);
    if (!tu_contains(f->err, "plughost: not listed: ") ||
        !tu_contains(f->err, "broken/package.ini:3: 'version' in [package]"))
        fail_msg("list with a broken manifest: %s", f->err);
    free(bad);
}

static void test_bad_config(void **state)
{
    fx *f = *state;
    char *ini = tu_write(f->tmp, "bad.ini", "[host]\nlog_level = loud\n");
    int rc = ph(f, "check -c '%s'", ini);
    assert_int_equal(rc, 1);
    char *want = tu_fmt("plughost: %s:2:", ini);
    assert_true(tu_contains(f->err, want));
    free(want);
    free(ini);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_call_add),
        T(test_call_every_type),
        T(test_call_crud_typed),
        T(test_call_errors),
        T(test_call_between_packages),
        T(test_call_examples_pair),
        T(test_check_ok),
        T(test_check_cycle),
        T(test_check_missing_and_range),
        T(test_check_conflict),
        T(test_refused_descriptors),
        T(test_failing_prepare),
        T(test_run_sigterm),
        T(test_run_sigint),
        T(test_run_keeps_going_after_failures),
        T(test_help_and_version),
        T(test_list),
        T(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
