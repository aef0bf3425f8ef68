/* resolver.c: instances, load order, and every reason an instance fails or is skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "resolver.h"
#include "testutil.h"

typedef struct fixture {
    char *dir;  /* temp root */
    char *pkgs; /* root/packages */
    ph_config cfg;
    ph_manifest_set set;
    ph_plan plan;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    f->pkgs = tu_fmt("%s/packages", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ph_plan_free(&f->plan);
    ph_manifest_set_free(&f->set);
    ph_config_free(&f->cfg);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->pkgs);
    free(f);
    return 0;
}

/* packages/<name>/package.ini with name, version and `extra` lines. */
static void pkg(fixture *f, const char *name, const char *version, const char *extra)
{
    char *file = tu_fmt("%s/package.ini", name);
    char *text = tu_fmt("[package]\nname = %s\nversion = %s\n%s", name, version, extra);
    free(tu_write(f->pkgs, file, text));
    free(text);
    free(file);
}

/* Forgets the last resolution (the packages on disk stay) to resolve again. */
static void reset(fixture *f)
{
    ph_plan_free(&f->plan);
    ph_manifest_set_free(&f->set);
    ph_config_free(&f->cfg);
}

/* Loads host.ini (`config`, may be NULL for none), discovers, resolves. */
static void resolve(fixture *f, const char *config)
{
    if (config) {
        char *path = tu_write(f->dir, "host.ini", config);
        if (ph_config_load(path, &f->cfg) != 0)
            fail_msg("config: %s", ph_error_last());
        free(path);
    } else {
        assert_int_equal(ph_config_defaults(&f->cfg), 0);
    }
    char *dirs[] = {f->pkgs};
    assert_int_equal(ph_manifest_discover(dirs, 1, &f->set), 0);
    assert_int_equal(f->set.n_problems, 0);
    assert_int_equal(ph_resolve(&f->cfg, &f->set, &f->plan), 0);
}

/* "a b c": the instance names of the plan, in order. */
static void assert_order(const ph_plan *p, const char *want)
{
    char buf[1024] = "";
    for (size_t i = 0; i < p->n; i++) {
        strcat(buf, i ? " " : "");
        strcat(buf, p->items[i].instance);
    }
    assert_string_equal(buf, want);
}

static const ph_plan_item *item(const ph_plan *p, const char *instance)
{
    long i = ph_plan_find(p, instance);
    if (i < 0)
        fail_msg("no instance '%s' in the plan", instance);
    return &p->items[i];
}

static void assert_ok(const ph_plan *p, const char *instance)
{
    const ph_plan_item *it = item(p, instance);
    if (it->state != PH_PLAN_OK)
        fail_msg("instance '%s' should be ok: %s", instance, it->reason);
    assert_null(it->reason);
}

static void assert_state(const ph_plan *p, const char *instance, ph_plan_state st,
                         const char *reason)
{
    const ph_plan_item *it = item(p, instance);
    assert_int_equal(it->state, st);
    assert_non_null(it->reason);
    assert_true(tu_contains(it->reason, reason));
}

/* True if `instance` lists `dep` among its deps. */
static bool needs(const ph_plan *p, const char *instance, const char *dep)
{
    const ph_plan_item *it = item(p, instance);
    for (size_t i = 0; i < it->n_deps; i++)
        if (strcmp(p->items[it->deps[i]].instance, dep) == 0)
            return true;
    return false;
}

static bool has_problem(const ph_plan *p, const char *text)
{
    for (size_t i = 0; i < p->n_problems; i++)
        if (strstr(p->problems[i], text))
            return true;
    fprintf(stderr, "no problem contains '%s'; problems:\n", text);
    for (size_t i = 0; i < p->n_problems; i++)
        fprintf(stderr, "  %s\n", p->problems[i]);
    return false;
}

static void test_chain_order_and_params(void **state)
{
    fixture *f = *state;
    pkg(f, "app", "1.0.0", "[requires]\nauth = ^1.0\n[parameters]\ntitle = App\n");
    pkg(f, "auth", "1.4.0", "[requires]\ndb = >=0.1, <1\n[parameters]\nttl = 60\nrealm = x\n");
    pkg(f, "db", "0.3.0", "");
    pkg(f, "zz", "1.0.0", "");
    resolve(f, "[instance auth]\nrealm = corp\n");
    assert_order(&f->plan, "db auth app zz");
    assert_int_equal(f->plan.n_problems, 0);
    for (size_t i = 0; i < f->plan.n; i++)
        assert_int_equal(f->plan.items[i].state, PH_PLAN_OK);
    assert_true(needs(&f->plan, "app", "auth"));
    assert_true(needs(&f->plan, "auth", "db"));
    assert_int_equal(item(&f->plan, "db")->n_deps, 0);
    /* Every dependency comes before its dependents. */
    for (size_t i = 0; i < f->plan.n; i++)
        for (size_t k = 0; k < f->plan.items[i].n_deps; k++)
            assert_true(f->plan.items[i].deps[k] < i);

    const ph_plan_item *auth = item(&f->plan, "auth");
    assert_non_null(auth->conf);
    assert_string_equal(auth->manifest->name, "auth");
    assert_string_equal(auth->mount, "/auth");
    assert_int_equal(auth->n_params, 2);
    assert_string_equal(auth->params[0].key, "ttl");
    assert_string_equal(auth->params[0].value, "60");
    assert_int_equal(auth->params[0].line, 7); /* line in package.ini */
    assert_string_equal(auth->params[1].key, "realm");
    assert_string_equal(auth->params[1].value, "corp");
    assert_int_equal(auth->params[1].line, 2); /* line in host.ini */
    const ph_plan_item *app = item(&f->plan, "app");
    assert_null(app->conf);
    assert_int_equal(app->n_params, 1);
    assert_string_equal(app->params[0].value, "App");
    assert_int_equal(ph_plan_find(&f->plan, "nope"), -1);
}

static void test_stable_order(void **state)
{
    fixture *f = *state;
    pkg(f, "a", "1.0.0", "");
    pkg(f, "b", "1.0.0", "[requires]\nd = *\n");
    pkg(f, "c", "1.0.0", "");
    pkg(f, "d", "1.0.0", "[optional]\nc = ^1\n");
    resolve(f, NULL);
    /* b waits for d, which waits for c (optional deps order too). */
    assert_order(&f->plan, "a c d b");
    assert_true(needs(&f->plan, "d", "c"));
}

static void test_missing_dependency(void **state)
{
    fixture *f = *state;
    pkg(f, "app", "1.0.0", "[requires]\nauth = ^1.0\n");
    pkg(f, "web", "2.0.0", "[requires]\napp = 1\n");
    pkg(f, "site", "1.0.0", "[requires]\nweb = *\n");
    pkg(f, "extra", "1.0.0", "[optional]\nmissing_one = ^3\n");
    resolve(f, NULL);
    assert_state(&f->plan, "app", PH_PLAN_FAILED,
                 "instance 'app' (package app 1.0.0) requires package 'auth' (^1.0), which is not "
                 "installed; add it to a package directory or remove the requirement");
    assert_state(&f->plan, "web", PH_PLAN_SKIPPED, "skipped: depends on 'app', which failed");
    assert_state(&f->plan, "site", PH_PLAN_SKIPPED,
                 "skipped: depends on 'web', which is skipped because 'app' failed");
    assert_ok(&f->plan, "extra"); /* a missing optional package is fine */
    assert_int_equal(f->plan.n_problems, 3);
    assert_true(has_problem(&f->plan, "instance 'app' (package app 1.0.0) requires package "
                                      "'auth' (^1.0), which is not installed"));
    assert_true(has_problem(&f->plan, "instance 'web': skipped: depends on 'app', which failed"));
}

static void test_version_mismatch(void **state)
{
    fixture *f = *state;
    pkg(f, "app", "1.0.0", "[requires]\nauth = ^2.0\n");
    pkg(f, "auth", "1.4.0", "");
    pkg(f, "beta_user", "1.0.0", "[requires]\nlib = ^2.0\n");
    pkg(f, "lib", "2.0.0-rc.1", "");
    pkg(f, "opt", "1.0.0", "[optional]\nauth = >=3\n");
    resolve(f, NULL);
    char *path = tu_fmt("%s/app/package.ini", f->pkgs);
    char *want = tu_fmt("package 'app' 1.0.0 requires auth ^2.0 but auth 1.4.0 is installed; "
                        "install a matching version of auth or change the range in %s:5",
                        path);
    assert_state(&f->plan, "app", PH_PLAN_FAILED, want);
    free(want);
    free(path);
    assert_ok(&f->plan, "auth");
    assert_state(&f->plan, "beta_user", PH_PLAN_FAILED,
                 "package 'beta_user' 1.0.0 requires lib ^2.0 but lib 2.0.0-rc.1 is installed (a "
                 "pre-release only matches a range naming a pre-release of the same version");
    /* An optional dependency is never why a package fails (issue 13, item 7). */
    assert_ok(&f->plan, "opt");
    assert_false(needs(&f->plan, "opt", "auth"));
    char *opt_path = tu_fmt("%s/opt/package.ini", f->pkgs);
    char *note = tu_fmt("instance 'opt': package 'opt' 1.0.0 optionally uses auth >=3 but auth "
                        "1.4.0 is installed; running without it (change the range in %s:5 to "
                        "use it)",
                        opt_path);
    assert_int_equal(f->plan.n_notes, 1);
    assert_string_equal(f->plan.notes[0], note);
    assert_non_null(item(&f->plan, "opt")->note);
    free(note);
    free(opt_path);
    assert_true(has_problem(&f->plan, "instance 'app': package 'app' 1.0.0 requires auth ^2.0"));
}

static void test_abi(void **state)
{
    fixture *f = *state;
    pkg(f, "x", "1.0.0", "abi = 2\n");
    pkg(f, "y", "1.0.0", "[requires]\nx = *\n");
    resolve(f, NULL);
    assert_state(&f->plan, "x", PH_PLAN_FAILED,
                 "package 'x' declares abi 2 but this host supports abi 1; rebuild it against "
                 "this host's SDK");
    assert_state(&f->plan, "y", PH_PLAN_SKIPPED, "skipped: depends on 'x', which failed");
}

static void test_cycle(void **state)
{
    fixture *f = *state;
    pkg(f, "a", "1.0.0", "[requires]\nb = *\n");
    pkg(f, "b", "1.0.0", "[requires]\nc = *\n");
    pkg(f, "c", "1.0.0", "[requires]\na = *\n");
    pkg(f, "d", "1.0.0", "[requires]\na = *\n");
    pkg(f, "e", "1.0.0", "");
    pkg(f, "p", "1.0.0", "[optional]\nq = *\n");
    pkg(f, "q", "1.0.0", "[requires]\np = *\n");
    resolve(f, NULL);
    assert_state(&f->plan, "a", PH_PLAN_FAILED,
                 "dependency cycle: a -> b -> c -> a; remove one of these requirements");
    /* The path is stated once; the other members point to it (issue 13, item 3). */
    assert_state(&f->plan, "b", PH_PLAN_FAILED,
                 "on the dependency cycle stated for instance 'a'; remove one of its requirements");
    assert_state(&f->plan, "c", PH_PLAN_FAILED, "on the dependency cycle stated for instance 'a'");
    assert_state(&f->plan, "d", PH_PLAN_SKIPPED, "skipped: depends on 'a', which failed");
    /* An [optional] back-edge is dropped from the order, not a cycle (item 7). */
    assert_ok(&f->plan, "p");
    assert_ok(&f->plan, "q");
    assert_true(needs(&f->plan, "q", "p"));
    assert_false(needs(&f->plan, "p", "q"));
    assert_true(ph_plan_find(&f->plan, "p") < ph_plan_find(&f->plan, "q"));
    assert_int_equal(f->plan.n_notes, 1);
    assert_string_equal(f->plan.notes[0],
                        "instance 'p': its optional dependency on 'q' would close a dependency "
                        "cycle ('q' needs 'p'); 'p' is loaded without waiting for it");
    assert_ok(&f->plan, "e");
    assert_true(has_problem(&f->plan, "instance 'a': dependency cycle: a -> b -> c -> a"));
    /* d still comes after a. */
    assert_true(ph_plan_find(&f->plan, "d") > ph_plan_find(&f->plan, "a"));
}

static void test_duplicate_package(void **state)
{
    fixture *f = *state;
    pkg(f, "auth", "1.0.0", "");
    free(tu_write(f->pkgs, "auth-copy/package.ini", "[package]\nname = auth\nversion = 1.0.0\n"));
    pkg(f, "app", "1.0.0", "[requires]\nauth = ^1\n");
    resolve(f, NULL);
    assert_order(&f->plan, "auth app"); /* one item for both copies */
    char *want = tu_fmt("package 'auth' 1.0.0 is installed 2 times: %s/auth/package.ini and "
                        "%s/auth-copy/package.ini; remove all but one",
                        f->pkgs, f->pkgs);
    assert_state(&f->plan, "auth", PH_PLAN_FAILED, want);
    free(want);
    assert_state(&f->plan, "app", PH_PLAN_SKIPPED, "skipped: depends on 'auth', which failed");
}

static void test_conflicts(void **state)
{
    fixture *f = *state;
    pkg(f, "x", "1.0.0", "[conflicts]\ny = >=2\nz = *\n");
    pkg(f, "y", "2.1.0", "");
    resolve(f, NULL);
    char *want = tu_fmt("package 'x' 1.0.0 conflicts with y 2.1.0 (%s/x/package.ini:5: y = >=2); "
                        "remove or disable one of them",
                        f->pkgs);
    assert_state(&f->plan, "x", PH_PLAN_FAILED, want);
    free(want);
    assert_ok(&f->plan, "y");
}

static void test_conflict_disabled_or_outside_range(void **state)
{
    fixture *f = *state;
    pkg(f, "x", "1.0.0", "[conflicts]\ny = >=2\nw = <1\n");
    pkg(f, "y", "2.1.0", "");
    pkg(f, "w", "1.0.0", "");
    resolve(f, "[instance y]\nenabled = false\n");
    assert_order(&f->plan, "w x");
    assert_ok(&f->plan, "x");
    assert_int_equal(f->plan.n_problems, 0);
}

/* Issue 13, item 1: a conflict names versions to keep out, pre-releases too. */
static void test_conflicts_with_prereleases(void **state)
{
    fixture *f = *state;
    pkg(f, "x", "1.0.0", "[conflicts]\ny = *\n");
    pkg(f, "y", "2.0.0-beta.1", "");
    pkg(f, "v", "1.0.0", "[conflicts]\nz = <2\n");
    pkg(f, "z", "1.5.0-rc.1", "");
    pkg(f, "u", "1.0.0", "[conflicts]\nt = <2\n");
    pkg(f, "t", "2.0.0-rc.1", ""); /* above <2.0.0-0: no conflict */
    resolve(f, NULL);
    char *want = tu_fmt("package 'x' 1.0.0 conflicts with y 2.0.0-beta.1 (%s/x/package.ini:5: "
                        "y = *); remove or disable one of them",
                        f->pkgs);
    assert_state(&f->plan, "x", PH_PLAN_FAILED, want);
    free(want);
    want = tu_fmt("package 'v' 1.0.0 conflicts with z 1.5.0-rc.1 (%s/v/package.ini:5: z = <2); "
                  "remove or disable one of them",
                  f->pkgs);
    assert_state(&f->plan, "v", PH_PLAN_FAILED, want);
    free(want);
    assert_ok(&f->plan, "u");
}

/* Issue 13, item 5: a dependency whose manifest is invalid is not "not installed". */
static void test_dependency_with_invalid_manifest(void **state)
{
    fixture *f = *state;
    pkg(f, "app", "1.0.0", "[requires]\nauth = ^1.0\n");
    pkg(f, "auth", "1.0", "");
    assert_int_equal(ph_config_defaults(&f->cfg), 0);
    char *dirs[] = {f->pkgs};
    assert_int_equal(ph_manifest_discover(dirs, 1, &f->set), 0);
    assert_int_equal(f->set.n_problems, 1);
    assert_string_equal(f->set.problem_names[0], "auth");
    assert_int_equal(ph_resolve(&f->cfg, &f->set, &f->plan), 0);
    char *want = tu_fmt("instance 'app' (package app 1.0.0) requires package 'auth' (^1.0), which "
                        "is installed but its manifest is invalid: %s/auth/package.ini:3: "
                        "'version' in [package]: invalid version '1.0': expected "
                        "MAJOR.MINOR.PATCH such as 1.2.3, found 2 parts",
                        f->pkgs);
    assert_state(&f->plan, "app", PH_PLAN_FAILED, want);
    free(want);
    assert_false(tu_contains(item(&f->plan, "app")->reason, "not installed"));
}

/* An invalid manifest beside a valid version is named too: it may be the version wanted. */
static void test_dependency_with_invalid_manifest_beside_valid(void **state)
{
    fixture *f = *state;
    pkg(f, "app", "1.0.0", "[requires]\nauth = ^2\n");
    free(tu_write(f->pkgs, "auth-1/package.ini", "[package]\nname = auth\nversion = 1.0.0\n"));
    free(tu_write(f->pkgs, "auth-2/package.ini", "[package]\nname = auth\nversion = 2.0\n"));
    assert_int_equal(ph_config_defaults(&f->cfg), 0);
    char *dirs[] = {f->pkgs};
    assert_int_equal(ph_manifest_discover(dirs, 1, &f->set), 0);
    assert_int_equal(ph_resolve(&f->cfg, &f->set, &f->plan), 0);
    char *want = tu_fmt("another manifest of it could not be read: %s/auth-2/package.ini:3: "
                        "'version' in [package]: invalid version '2.0'",
                        f->pkgs);
    assert_state(&f->plan, "app", PH_PLAN_FAILED, want);
    free(want);
}

static size_t problem_bytes(const ph_plan *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_problems; i++)
        n += strlen(p->problems[i]) + 1;
    return n;
}

/* Issue 13, item 3: 200 chained packages with the last one missing. */
static void test_long_chain_output_is_linear(void **state)
{
    fixture *f = *state;
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        char name[16], extra[64];
        snprintf(name, sizeof name, "p%03d", i);
        snprintf(extra, sizeof extra, "[requires]\np%03d = ^1\n", i + 1);
        pkg(f, name, "1.0.0", extra);
    }
    resolve(f, NULL);
    assert_int_equal(f->plan.n_problems, N);
    assert_state(&f->plan, "p199", PH_PLAN_FAILED,
                 "requires package 'p200' (^1), which is not "
                 "installed");
    assert_state(&f->plan, "p198", PH_PLAN_SKIPPED, "skipped: depends on 'p199', which failed");
    assert_state(&f->plan, "p000", PH_PLAN_SKIPPED,
                 "skipped: depends on 'p001', which is skipped because 'p199' failed");
    size_t bytes = problem_bytes(&f->plan);
    fprintf(stderr, "chain of %d, last missing: %zu bytes of problems\n", N, bytes);
    assert_true(bytes < (size_t)N * 200);
}

/* Issue 13, item 3: a cycle of 200 packages states its path once. */
static void test_long_cycle_output_is_linear(void **state)
{
    fixture *f = *state;
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        char name[16], extra[64];
        snprintf(name, sizeof name, "c%03d", i);
        snprintf(extra, sizeof extra, "[requires]\nc%03d = *\n", (i + 1) % N);
        pkg(f, name, "1.0.0", extra);
    }
    resolve(f, NULL);
    assert_int_equal(f->plan.n_problems, N);
    assert_state(&f->plan, "c000", PH_PLAN_FAILED, "dependency cycle: c000 -> c001 -> c002 -> ");
    assert_true(tu_contains(item(&f->plan, "c000")->reason, "c199 -> c000; remove one of"));
    assert_state(&f->plan, "c123", PH_PLAN_FAILED,
                 "on the dependency cycle stated for instance 'c000'");
    size_t bytes = problem_bytes(&f->plan);
    fprintf(stderr, "cycle of %d: %zu bytes of problems\n", N, bytes);
    assert_true(bytes < (size_t)N * 200);
}

/* Issue 13, item 4: a diamond names every requirer with its range. */
static void test_diamond_names_every_requirer(void **state)
{
    fixture *f = *state;
    pkg(f, "left", "1.0.0", "[requires]\nbase = ^1.0\n");
    pkg(f, "right", "1.0.0", "[requires]\nbase = ^2.0\n");
    pkg(f, "base", "1.5.0", "");
    pkg(f, "top", "1.0.0", "[requires]\nleft = *\nright = *\n");
    resolve(f, NULL);
    assert_ok(&f->plan, "left");
    char *want = tu_fmt("package 'right' 1.0.0 requires base ^2.0 but base 1.5.0 is installed; "
                        "`plughost check` lists the requirers of base and the versions each "
                        "accepts; or change the range in %s/right/package.ini:5",
                        f->pkgs);
    assert_state(&f->plan, "right", PH_PLAN_FAILED, want);
    free(want);
    assert_state(&f->plan, "top", PH_PLAN_SKIPPED, "skipped: depends on 'right', which failed");
    assert_string_equal(f->plan.problems[f->plan.n_problems - 1],
                        "package 'base' (installed: 1.5.0) is required by left 1.0.0 (^1.0 "
                        "accepts 1.5.0) and right 1.0.0 (^2.0 accepts no installed version); no "
                        "version satisfies all of them: change one of the ranges");
}

/* The same, when some version would satisfy every requirer. */
static void test_diamond_names_satisfying_versions(void **state)
{
    fixture *f = *state;
    pkg(f, "left", "1.0.0", "[requires]\nbase = ^1.0\n");
    pkg(f, "mid", "1.0.0", "[requires]\nbase = >=1.2, <1.8\n");
    pkg(f, "right", "1.0.0", "[requires]\nbase = ~1.6\n");
    pkg(f, "base", "1.5.0", "");
    resolve(f, NULL);
    assert_ok(&f->plan, "left");
    assert_ok(&f->plan, "mid");
    assert_state(&f->plan, "right", PH_PLAN_FAILED, "`plughost check` lists the requirers of base");
    assert_string_equal(f->plan.problems[f->plan.n_problems - 1],
                        "package 'base' (installed: 1.5.0) is required by left 1.0.0 (^1.0 "
                        "accepts 1.5.0), mid 1.0.0 (>=1.2, <1.8 accepts 1.5.0) and right 1.0.0 "
                        "(~1.6 accepts no installed version); versions >=1.6.0, <1.7.0 satisfy "
                        "all of them: install one of those");
}

/* Between a pre-release floor and its release only pre-releases lie: met only if all admit them. */
static void test_diamond_prerelease_span(void **state)
{
    fixture *f = *state;
    pkg(f, "left", "1.0.0", "[requires]\nbase = >=1.5.0-rc.1\n");
    pkg(f, "right", "1.0.0", "[requires]\nbase = <1.5.0\n");
    pkg(f, "base", "1.4.0", "");
    resolve(f, NULL);
    const char *last = f->plan.problems[f->plan.n_problems - 1];
    if (!tu_contains(last, "no version satisfies all of them: change one of the ranges"))
        fail_msg("%s", last);
}

/* packages/<dir>/package.ini: one of several versions of a package. */
static void pkgv(fixture *f, const char *name, const char *version, const char *extra)
{
    char *file = tu_fmt("%s-%s/package.ini", name, version);
    char *text = tu_fmt("[package]\nname = %s\nversion = %s\n%s", name, version, extra);
    free(tu_write(f->pkgs, file, text));
    free(text);
    free(file);
}

static const char *chosen(const ph_plan *p, const char *instance)
{
    const ph_plan_item *it = item(p, instance);
    assert_non_null(it->manifest);
    return it->manifest->version_text;
}

/* Issue 13, acceptance 3: the highest version every requirer accepts. */
static void test_several_versions_highest_for_all(void **state)
{
    fixture *f = *state;
    pkgv(f, "base", "1.0.0", "");
    pkgv(f, "base", "1.1.0", "");
    pkgv(f, "base", "2.0.0", "");
    pkgv(f, "base", "2.1.0-rc.1", "");
    pkg(f, "a", "1.0.0", "[requires]\nbase = ^1.0\n");
    pkg(f, "b", "1.0.0", "[requires]\nbase = >=1.1\n");
    resolve(f, NULL);
    assert_string_equal(chosen(&f->plan, "base"), "1.1.0");
    assert_ok(&f->plan, "base");
    assert_ok(&f->plan, "a");
    assert_ok(&f->plan, "b");
    assert_int_equal(f->plan.n_problems, 0);
    assert_int_equal(f->plan.n_notes, 1);
    assert_string_equal(f->plan.notes[0],
                        "package 'base': 1.1.0 chosen; not 2.0.0: outside ^1.0 of a 1.0.0; not "
                        "1.0.0: outside >=1.1 of b 1.0.0; not 2.1.0-rc.1: outside ^1.0 of a "
                        "1.0.0");
}

/* A requirer decides before what it requires: no search through every other package. */
static void test_several_versions_requirer_first(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 20; i++) {
        char name[8];
        snprintf(name, sizeof name, "a%02d", i);
        pkgv(f, name, "1.0.0", "");
        pkgv(f, name, "2.0.0", "");
    }
    pkgv(f, "zz", "1.0.0", "[requires]\na00 = ^1\n");
    pkgv(f, "zz", "2.0.0", "[requires]\na00 = ^1\n");
    resolve(f, NULL);
    assert_int_equal(f->plan.n_problems, 0);
    assert_string_equal(chosen(&f->plan, "zz"), "2.0.0");
    assert_string_equal(chosen(&f->plan, "a00"), "1.0.0");
    assert_string_equal(chosen(&f->plan, "a19"), "2.0.0");
}

/* Many versions and many requirers: messages stay a line, the lists say how many more. */
static void test_several_versions_lists_stay_short(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 60; i++) {
        char v[16], name[16], req[32];
        snprintf(v, sizeof v, "1.%d.0", i);
        pkgv(f, "base", v, "");
        snprintf(name, sizeof name, "r%02d", i);
        snprintf(req, sizeof req, "[requires]\nbase = %s\n", i ? "^1" : "^2");
        pkg(f, name, "1.0.0", req);
    }
    resolve(f, NULL);
    size_t longest = 0, total = 0;
    for (size_t i = 0; i < f->plan.n_problems; i++) {
        size_t n = strlen(f->plan.problems[i]);
        longest = n > longest ? n : longest;
        total += n;
    }
    for (size_t i = 0; i < f->plan.n_notes; i++)
        longest = strlen(f->plan.notes[i]) > longest ? strlen(f->plan.notes[i]) : longest;
    if (longest > 2000 || total > 60 * 300)
        fail_msg("longest message %zu bytes, problems %zu bytes in all", longest, total);
    bool said_more = false;
    for (size_t i = 0; i < f->plan.n_problems; i++)
        said_more = said_more || strstr(f->plan.problems[i], " and 54 more") != NULL;
    assert_true(said_more);
}

/* An optional user's range steers the choice among versions that work. */
static void test_several_versions_optional_steers(void **state)
{
    fixture *f = *state;
    pkgv(f, "x", "1.0.0", "");
    pkgv(f, "x", "2.0.0", "");
    pkg(f, "app", "1.0.0", "[optional]\nx = ^1\n");
    resolve(f, NULL);
    assert_string_equal(chosen(&f->plan, "x"), "1.0.0");
    assert_ok(&f->plan, "app");
    assert_null(item(&f->plan, "app")->note);
    assert_string_equal(f->plan.notes[0], "package 'x': 1.0.0 chosen; not 2.0.0: outside ^1 of app "
                                          "1.0.0 ([optional])");
}

/* A higher version that could never run does not displace a lower one that can. */
static void test_several_versions_one_cannot_run(void **state)
{
    fixture *f = *state;
    pkgv(f, "a", "1.0.0", "");
    pkgv(f, "a", "2.0.0", "[requires]\nnewdep = ^1\n");
    pkg(f, "u", "1.0.0", "[requires]\na = >=1\n");
    pkgv(f, "x", "1.0.0", "");
    pkgv(f, "x", "2.0.0", "[conflicts]\nu = *\n");
    resolve(f, NULL);
    assert_string_equal(chosen(&f->plan, "a"), "1.0.0");
    assert_string_equal(chosen(&f->plan, "x"), "1.0.0");
    assert_ok(&f->plan, "a");
    assert_ok(&f->plan, "u");
    assert_int_equal(f->plan.n_problems, 0);
    assert_string_equal(f->plan.notes[0], "package 'a': 1.0.0 chosen; not 2.0.0: it cannot run: "
                                          "requires newdep, which is not installed (^1)");
    assert_string_equal(f->plan.notes[1], "package 'x': 1.0.0 chosen; not 2.0.0: it cannot run: "
                                          "conflicts with the installed u (*)");
}

/* Without requirers: the highest release, not a pre-release nobody asked for. */
static void test_several_versions_no_requirer(void **state)
{
    fixture *f = *state;
    pkgv(f, "base", "1.0.0", "");
    pkgv(f, "base", "1.2.0", "");
    pkgv(f, "base", "2.0.0-rc.1", "");
    resolve(f, NULL);
    assert_string_equal(chosen(&f->plan, "base"), "1.2.0");
    assert_string_equal(f->plan.notes[0], "package 'base': 1.2.0 chosen; not 1.0.0: lower; not "
                                          "2.0.0-rc.1: a pre-release, not asked for");
}

/* host.ini pins a version: the operator's rollback. */
static void test_several_versions_pinned(void **state)
{
    fixture *f = *state;
    pkgv(f, "base", "1.0.0", "");
    pkgv(f, "base", "1.1.0", "");
    pkgv(f, "base", "2.0.0", "");
    pkg(f, "a", "1.0.0", "[requires]\nbase = ^1.0\n");
    resolve(f, "[instance base]\nversion = 1.0.0\n");
    assert_string_equal(chosen(&f->plan, "base"), "1.0.0");
    assert_ok(&f->plan, "base");
    assert_ok(&f->plan, "a");
    char *want = tu_fmt("package 'base': 1.0.0 chosen (pinned to 1.0.0 in %s/host.ini:2); not "
                        "2.0.0: outside the pin 1.0.0 (%s/host.ini:2); not 1.1.0: outside the pin "
                        "1.0.0 (%s/host.ini:2)",
                        f->dir, f->dir, f->dir);
    assert_string_equal(f->plan.notes[0], want);
    free(want);
}

/* A requirer the pin leaves out is told that the pin chose the version, and where. */
static void test_several_versions_pin_named(void **state)
{
    fixture *f = *state;
    pkgv(f, "base", "1.0.0", "");
    pkgv(f, "base", "1.1.0", "");
    pkgv(f, "base", "2.0.0", "");
    pkg(f, "r2", "1.0.0", "[requires]\nbase = >=1.1\n");
    resolve(f, "[instance base]\nversion = 1.0.0\n");
    char *want = tu_fmt("package 'r2' 1.0.0 requires base >=1.1 but base 1.0.0 is the version "
                        "chosen (installed: 2.0.0, 1.1.0 and 1.0.0; pinned to 1.0.0 in "
                        "%s/host.ini:2); install a matching version of base or change the range",
                        f->dir);
    assert_state(&f->plan, "r2", PH_PLAN_FAILED, want);
    free(want);
}

/* Two instances of one package pinned apart: one version runs; the other pin is told so. */
static void test_several_versions_pins_disagree(void **state)
{
    fixture *f = *state;
    pkgv(f, "base", "1.0.0", "");
    pkgv(f, "base", "2.0.0", "");
    resolve(f, "[instance a]\npackage = base\nversion = 1.0.0\n"
               "[instance b]\npackage = base\nversion = 2.0.0\n");
    assert_ok(&f->plan, "a");
    char *want = tu_fmt("%s/host.ini:6: instance 'b' pins package 'base' to 2.0.0, but instance "
                        "'a' pins it to 1.0.0 (%s/host.ini:3), and every instance of a package "
                        "runs one version; pin them alike",
                        f->dir, f->dir);
    assert_state(&f->plan, "b", PH_PLAN_FAILED, want);
    free(want);
}

static void test_several_versions_pin_matches_none(void **state)
{
    fixture *f = *state;
    pkgv(f, "base", "1.0.0", "");
    pkgv(f, "base", "2.0.0", "");
    resolve(f, "[instance base]\nversion = ^3\n");
    char *want = tu_fmt("%s/host.ini:2: instance 'base' pins package 'base' to ^3, but the "
                        "installed versions are 2.0.0 and 1.0.0; install a matching version or "
                        "change the pin",
                        f->dir);
    assert_state(&f->plan, "base", PH_PLAN_FAILED, want);
    free(want);
}

/* A third requirer no version satisfies with the others: all three named. */
static void test_several_versions_no_common_version(void **state)
{
    fixture *f = *state;
    pkgv(f, "base", "1.0.0", "");
    pkgv(f, "base", "1.1.0", "");
    pkgv(f, "base", "2.0.0", "");
    pkg(f, "a", "1.0.0", "[requires]\nbase = ^1.0\n");
    pkg(f, "b", "1.0.0", "[requires]\nbase = >=1.1\n");
    pkg(f, "c", "1.0.0", "[requires]\nbase = ^2\n");
    resolve(f, NULL);
    assert_state(&f->plan, "a", PH_PLAN_FAILED, "`plughost check` lists the requirers of base");
    assert_string_equal(f->plan.problems[f->plan.n_problems - 1],
                        "package 'base' (installed: 2.0.0, 1.1.0 and 1.0.0) is required by a "
                        "1.0.0 (^1.0 accepts 1.1.0, 1.0.0), b 1.0.0 (>=1.1 accepts 2.0.0, 1.1.0) "
                        "and c 1.0.0 (^2 accepts 2.0.0); no version satisfies all of them: change "
                        "one of the ranges");
}

/* The highest a forces a b that nothing satisfies; a lower a works. */
static void test_several_versions_backtracking(void **state)
{
    fixture *f = *state;
    pkgv(f, "a", "1.0.0", "[requires]\nb = ^1\n");
    pkgv(f, "a", "2.0.0", "[requires]\nb = ^2\n");
    pkgv(f, "b", "1.0.0", "[requires]\nx = ^1\n");
    pkgv(f, "b", "2.0.0", "[requires]\nx = ^2\n");
    pkg(f, "x", "1.0.0", "");
    pkg(f, "app", "1.0.0", "[requires]\na = *\n");
    resolve(f, NULL);
    assert_string_equal(chosen(&f->plan, "a"), "1.0.0");
    assert_string_equal(chosen(&f->plan, "b"), "1.0.0");
    assert_ok(&f->plan, "app");
    assert_ok(&f->plan, "a");
    assert_ok(&f->plan, "b");
    assert_int_equal(f->plan.n_problems, 0);
    assert_string_equal(f->plan.notes[0],
                        "package 'a': 1.0.0 chosen; not 2.0.0: its own requirements do not "
                        "agree with the versions chosen");
    assert_string_equal(f->plan.notes[1], "package 'b': 1.0.0 chosen; not 2.0.0: outside ^1 of a "
                                          "1.0.0");
}

/*
 * Backjumping: the highest aa makes zb impossible, and 20 packages in two
 * versions each are decided in between. Undoing them one by one (2^20
 * combinations) ran out of tries and fell back to a greedy choice that
 * failed zfinal; the dead end's cause is aa, so the search goes straight back
 * to it.
 */
static void test_several_versions_backjumping(void **state)
{
    fixture *f = *state;
    pkgv(f, "aa", "1.0.0", "[requires]\nzb = ^1\n");
    pkgv(f, "aa", "2.0.0", "[requires]\nzb = ^2\n");
    for (int i = 0; i < 20; i++) {
        char *name = tu_fmt("ind%02d", i);
        pkgv(f, name, "1.0.0", "");
        pkgv(f, name, "1.1.0", "");
        free(name);
    }
    pkgv(f, "zb", "1.0.0", "");
    pkgv(f, "zb", "2.0.0", "");
    pkg(f, "zfinal", "1.0.0", "[requires]\nzb = ^1\n");
    resolve(f, NULL);
    assert_int_equal(f->plan.n_problems, 0);
    assert_ok(&f->plan, "zfinal");
    assert_string_equal(chosen(&f->plan, "aa"), "1.0.0");
    assert_string_equal(chosen(&f->plan, "ind07"), "1.1.0");
    assert_string_equal(f->plan.notes[0],
                        "package 'aa': 1.0.0 chosen; not 2.0.0: its own requirements do not "
                        "agree with the versions chosen");
}

/*
 * A dead end that only packages installed once cause ends the search at
 * once: 300 packages in three versions, and a base no version of which suits
 * both them and zodd. The message lists every requirer, as without the
 * packages in between.
 */
static void test_several_versions_unsolvable_is_quick(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 300; i++) {
        char *name = tu_fmt("un%03d", i);
        pkgv(f, name, "1.0.0", "[requires]\nbase = >=1.0\n");
        pkgv(f, name, "1.1.0", "[requires]\nbase = >=1.0\n");
        pkgv(f, name, "2.0.0", "[requires]\nbase = >=1.0\n");
        free(name);
    }
    pkgv(f, "base", "1.0.0", "");
    pkgv(f, "base", "1.2.0", "");
    pkg(f, "zodd", "1.0.0", "[requires]\nbase = ^2\n");
    resolve(f, NULL);
    assert_state(&f->plan, "zodd", PH_PLAN_FAILED,
                 "package 'zodd' 1.0.0 requires base ^2 but base 1.2.0 is the version chosen "
                 "(installed: 1.2.0 and 1.0.0)");
    assert_string_equal(chosen(&f->plan, "un123"), "2.0.0");
}

/*
 * [provides]: each requirement naming a capability gets the running provider
 * with the highest version of it in range (as a call through the router).
 */
static void test_provides_takes_a_provider(void **state)
{
    fixture *f = *state;
    pkg(f, "pg_store", "2.0.0", "[provides]\nsql-store = 2.1.0\n");
    pkg(f, "sqlite_store", "1.0.0", "[provides]\nsql-store = 1.4.0\n");
    pkg(f, "old_store", "1.0.0", "[provides]\nsql-store = 1.2.0\n");
    pkg(f, "app", "1.0.0", "[requires]\nsql-store = ^1\n");
    pkg(f, "cli", "1.0.0", "[optional]\nsql-store = ~1.4\n");
    pkg(f, "web", "1.0.0", "[requires]\nsql-store = >=1\n");
    resolve(f, NULL);
    assert_int_equal(f->plan.n_problems, 0);
    assert_ok(&f->plan, "app");
    assert_true(needs(&f->plan, "web", "pg_store"));
    assert_true(needs(&f->plan, "cli", "sqlite_store"));
    assert_true(needs(&f->plan, "app", "sqlite_store"));
    assert_false(needs(&f->plan, "app", "pg_store"));
    assert_true(ph_plan_find(&f->plan, "sqlite_store") < ph_plan_find(&f->plan, "app"));
    assert_string_equal(f->plan.notes[0],
                        "capability 'sql-store': pg_store 2.0.0 provides 2.1.0, used by web 1.0.0; "
                        "sqlite_store 1.0.0 provides 1.4.0, used by app 1.0.0, cli 1.0.0; "
                        "old_store 1.0.0 provides 1.2.0, unused");
}

/* No provider in range: the capability, each provider with its version and why not. */
static void test_provides_none_suits(void **state)
{
    fixture *f = *state;
    pkg(f, "pg_store", "2.0.0", "[provides]\nsql-store = 2.1.0\n");
    pkg(f, "sqlite_store", "1.0.0", "[provides]\nsql-store = 1.4.0\n");
    pkg(f, "app", "1.0.0", "[requires]\nsql-store = ^3\n");
    pkg(f, "web", "1.0.0", "[requires]\napp = *\n");
    resolve(f, NULL);
    char *want = tu_fmt("package 'app' 1.0.0 requires sql-store ^3, a capability no running "
                        "provider suits: pg_store 2.0.0 provides sql-store 2.1.0 (outside ^3), "
                        "sqlite_store 1.0.0 provides sql-store 1.4.0 (outside ^3); install a "
                        "provider of a matching version or change the range in "
                        "%s/app/package.ini:5",
                        f->pkgs);
    assert_state(&f->plan, "app", PH_PLAN_FAILED, want);
    assert_state(&f->plan, "web", PH_PLAN_SKIPPED, "skipped: depends on 'app', which failed");
    assert_ok(&f->plan, "pg_store");
    free(want);
    /* an [optional] use of it: the package runs without it, and says so */
    ph_plan_free(&f->plan);
    ph_manifest_set_free(&f->set);
    ph_config_free(&f->cfg);
    pkg(f, "app", "1.0.0", "[optional]\nsql-store = ^3\n");
    resolve(f, NULL);
    assert_ok(&f->plan, "app");
    assert_ok(&f->plan, "web");
    assert_true(tu_contains(item(&f->plan, "app")->note,
                            "package 'app' 1.0.0 optionally uses sql-store ^3 (a capability), but "
                            "no provider suits: pg_store 2.0.0 provides sql-store 2.1.0 (outside "
                            "^3)"));
}

/*
 * host.ini [provides] CAPABILITY = PACKAGE: the pinned provider serves every
 * requirement, the others stay unused; a pin naming no installed package, a
 * package that does not provide it, or one outside a requirer's range is
 * a message naming host.ini:line.
 */
static void test_provides_pinned_provider(void **state)
{
    fixture *f = *state;
    pkg(f, "pg_store", "2.0.0", "[provides]\nsql-store = 2.1.0\n");
    pkg(f, "sqlite_store", "1.0.0", "[provides]\nsql-store = 1.4.0\n");
    pkg(f, "other", "1.0.0", "");
    pkg(f, "web", "1.0.0", "[requires]\nsql-store = >=1\n");
    resolve(f, "[provides]\nsql-store = sqlite_store\n");
    assert_int_equal(f->plan.n_problems, 0);
    assert_true(needs(&f->plan, "web", "sqlite_store"));
    assert_false(needs(&f->plan, "web", "pg_store"));
    char *want = tu_fmt("capability 'sql-store': sqlite_store 1.0.0 provides 1.4.0, used by web "
                        "1.0.0 (pinned in %s/host.ini:2)",
                        f->dir);
    assert_string_equal(f->plan.notes[0], want);
    free(want);
    const struct {
        const char *config, *problem, *reason;
    } bad[] = {
        {"[provides]\nsql-store = nosuch\n",
         "%s/host.ini:2: [provides] sql-store = nosuch: no package 'nosuch' is installed; the "
         "providers of sql-store are pg_store, sqlite_store",
         "package 'web' 1.0.0 requires sql-store >=1, a capability no running provider suits: "
         "%s/host.ini:2 pins sql-store to nosuch ([provides]); install a provider"},
        {"[provides]\nsql-store = other\n",
         "%s/host.ini:2: [provides] sql-store = other: package 'other' does not provide "
         "sql-store (no [provides] sql-store in its package.ini); the providers of sql-store are "
         "pg_store, sqlite_store",
         NULL},
        {"[provides]\nkv-store = pg_store\n",
         "%s/host.ini:2: [provides] kv-store = pg_store: no installed package provides "
         "'kv-store'; remove the line or install a provider",
         NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        reset(f);
        resolve(f, bad[i].config);
        char *problem = tu_fmt(bad[i].problem, f->dir);
        if (!has_problem(&f->plan, problem))
            fail_msg("want problem '%s'; got '%s'", problem,
                     f->plan.n_problems ? f->plan.problems[0] : "(none)");
        free(problem);
        if (bad[i].reason) {
            char *reason = tu_fmt(bad[i].reason, f->dir);
            assert_true(tu_contains(item(&f->plan, "web")->reason, reason));
            free(reason);
        }
    }
    /* the pinned provider's version outside a requirer's range: both named, and the pin */
    reset(f);
    pkg(f, "web", "1.0.0", "[requires]\nsql-store = ^2\n");
    resolve(f, "[host]\n[provides]\nsql-store = sqlite_store\n");
    want = tu_fmt("package 'web' 1.0.0 requires sql-store ^2, a capability no running provider "
                  "suits: sqlite_store 1.0.0 provides sql-store 1.4.0 (outside ^2); "
                  "%s/host.ini:3 pins sql-store to sqlite_store ([provides]); install a provider "
                  "of a matching version or change the range in %s/web/package.ini:5",
                  f->dir, f->pkgs);
    assert_state(&f->plan, "web", PH_PLAN_FAILED, want);
    free(want);
}

/* [conflicts] on a capability: every running provider in range counts. */
static void test_provides_conflicts(void **state)
{
    fixture *f = *state;
    pkg(f, "sqlite_store", "1.0.0", "[provides]\nsql-store = 1.4.0\n");
    pkg(f, "legacy", "1.0.0", "[conflicts]\nsql-store = <2\n");
    resolve(f, NULL);
    char *want = tu_fmt("package 'legacy' 1.0.0 conflicts with sql-store 1.4.0, which sqlite_store "
                        "1.0.0 provides (%s/legacy/package.ini:5: sql-store = <2); remove or "
                        "disable one of them",
                        f->pkgs);
    assert_state(&f->plan, "legacy", PH_PLAN_FAILED, want);
    free(want);
}

/* A capability named like an installed package: the package is what requirers get. */
static void test_provides_shadowed_by_a_package(void **state)
{
    fixture *f = *state;
    pkg(f, "auth", "1.0.0", "");
    pkg(f, "fake_auth", "1.0.0", "[provides]\nauth = 9.0.0\n");
    pkg(f, "app", "1.0.0", "[requires]\nauth = ^1\n");
    resolve(f, NULL);
    assert_ok(&f->plan, "app");
    assert_true(needs(&f->plan, "app", "auth"));
    assert_false(needs(&f->plan, "app", "fake_auth"));
    char *want = tu_fmt("package 'fake_auth' 1.0.0 provides 'auth' (%s/fake_auth/package.ini:5), "
                        "but a package named 'auth' is installed: requirements on 'auth' get that "
                        "package; rename the capability",
                        f->pkgs);
    assert_string_equal(f->plan.notes[0], want);
    free(want);
}

static void test_parameters(void **state)
{
    fixture *f = *state;
    pkg(f, "notes", "1.0.0", "[parameters]\npage_size = 20\ntitle = Notes\n");
    pkg(f, "bare", "1.0.0", "");
    resolve(f, "[instance blog]\npackage = notes\n\npage_sise = 50\n"
               "[instance bare]\ncolour = red\n");
    char *want = tu_fmt("%s/host.ini:4: instance 'blog' sets parameter 'page_sise', which package "
                        "'notes' does not declare; declared parameters: page_size, title",
                        f->dir);
    assert_state(&f->plan, "blog", PH_PLAN_FAILED, want);
    /* The reason names the instance, so the problem is the reason as is. */
    assert_true(has_problem(&f->plan, want));
    for (size_t i = 0; i < f->plan.n_problems; i++)
        assert_null(strstr(f->plan.problems[i], "instance 'blog': "));
    free(want);
    want = tu_fmt("%s/host.ini:6: instance 'bare' sets parameter 'colour', but package 'bare' "
                  "declares no parameters; remove the line",
                  f->dir);
    assert_state(&f->plan, "bare", PH_PLAN_FAILED, want);
    free(want);
}

static void test_instances(void **state)
{
    fixture *f = *state;
    pkg(f, "notes", "1.0.0", "[parameters]\ntitle = Notes\n");
    pkg(f, "off", "1.0.0", "");
    pkg(f, "reader", "1.0.0", "[requires]\nnotes = ^1\n");
    resolve(f, "[instance work]\npackage = notes\nmount = /w\ntitle = Work\n"
               "[instance home]\npackage = notes\n"
               "[instance off]\nenabled = no\n"
               "[instance ghost]\npackage = nothere\n");
    /* Configured instances replace the default one; disabled ones are left out. */
    assert_order(&f->plan, "work home reader ghost");
    assert_ok(&f->plan, "work");
    assert_string_equal(item(&f->plan, "work")->mount, "/w");
    assert_string_equal(item(&f->plan, "work")->params[0].value, "Work");
    assert_string_equal(item(&f->plan, "home")->mount, "/home");
    assert_string_equal(item(&f->plan, "home")->params[0].value, "Notes");
    assert_int_equal(ph_plan_find(&f->plan, "notes"), -1);
    assert_int_equal(ph_plan_find(&f->plan, "off"), -1);
    /* A dependent needs every instance of the package. */
    assert_true(needs(&f->plan, "reader", "work"));
    assert_true(needs(&f->plan, "reader", "home"));
    char *want = tu_fmt("instance 'ghost' (%s/host.ini:9): package 'nothere' is not installed; "
                        "check the name or add the package to a package directory",
                        f->dir);
    assert_state(&f->plan, "ghost", PH_PLAN_FAILED, want);
    assert_null(item(&f->plan, "ghost")->manifest);
    free(want);
}

static void test_disabled_requirement(void **state)
{
    fixture *f = *state;
    pkg(f, "auth", "1.0.0", "");
    pkg(f, "app", "1.0.0", "[requires]\nauth = *\n");
    resolve(f, "[instance auth]\nenabled = false\n");
    char *want = tu_fmt("package 'app' 1.0.0 requires auth, but every instance of auth is "
                        "disabled in %s/host.ini; enable one",
                        f->dir);
    assert_state(&f->plan, "app", PH_PLAN_FAILED, want);
    free(want);
}

static void test_name_and_mount_clashes(void **state)
{
    fixture *f = *state;
    pkg(f, "auth", "1.0.0", "");
    pkg(f, "other", "1.0.0", "");
    pkg(f, "web", "1.0.0", "");
    resolve(f, "[instance auth]\npackage = other\n[instance site]\npackage = web\nmount = /auth\n");
    /* Package auth's default instance name is taken: no instance, a problem. */
    char *want = tu_fmt("package 'auth' (%s/auth/package.ini) gets no default instance: "
                        "%s/host.ini:1 uses the name for package 'other'; add an [instance NAME] "
                        "section with package = auth",
                        f->pkgs, f->dir);
    assert_true(has_problem(&f->plan, want));
    free(want);
    assert_order(&f->plan, "auth site");
    assert_string_equal(item(&f->plan, "auth")->manifest->name, "other");
    assert_state(&f->plan, "site", PH_PLAN_FAILED,
                 "instance 'site' has mount '/auth', which instance 'auth' already uses; set "
                 "another mount in [instance site]");
}

static void test_optional_failed(void **state)
{
    fixture *f = *state;
    pkg(f, "app", "1.0.0", "[optional]\nsearch = ^1\n");
    pkg(f, "search", "1.0.0", "abi = 9\n");
    resolve(f, NULL);
    assert_state(&f->plan, "search", PH_PLAN_FAILED, "declares abi 9");
    assert_ok(&f->plan, "app");
    /* It will not run, so app does not need it. */
    assert_int_equal(item(&f->plan, "app")->n_deps, 0);
    assert_order(&f->plan, "search app");
}

static void test_empty_inputs(void **state)
{
    (void)state;
    ph_plan p;
    assert_int_equal(ph_resolve(NULL, NULL, &p), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.n_problems, 0);
    assert_int_equal(ph_plan_find(&p, "x"), -1);
    ph_plan_free(&p);
    ph_plan_free(&p);
    ph_plan_free(NULL);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_chain_order_and_params),
        T(test_stable_order),
        T(test_missing_dependency),
        T(test_version_mismatch),
        T(test_abi),
        T(test_cycle),
        T(test_duplicate_package),
        T(test_conflicts),
        T(test_conflict_disabled_or_outside_range),
        T(test_parameters),
        T(test_instances),
        T(test_disabled_requirement),
        T(test_name_and_mount_clashes),
        T(test_optional_failed),
        T(test_conflicts_with_prereleases),
        T(test_dependency_with_invalid_manifest),
        T(test_long_chain_output_is_linear),
        T(test_long_cycle_output_is_linear),
        T(test_diamond_names_every_requirer),
        T(test_diamond_names_satisfying_versions),
        T(test_several_versions_highest_for_all),
        T(test_several_versions_no_requirer),
        T(test_several_versions_one_cannot_run),
        T(test_several_versions_optional_steers),
        T(test_diamond_prerelease_span),
        T(test_dependency_with_invalid_manifest_beside_valid),
        T(test_several_versions_pin_named),
        T(test_several_versions_pins_disagree),
        T(test_several_versions_lists_stay_short),
        T(test_several_versions_requirer_first),
        T(test_several_versions_pinned),
        T(test_several_versions_pin_matches_none),
        T(test_several_versions_no_common_version),
        T(test_several_versions_backtracking),
        T(test_several_versions_backjumping),
        T(test_provides_takes_a_provider),
        T(test_provides_none_suits),
        T(test_provides_pinned_provider),
        T(test_provides_conflicts),
        T(test_provides_shadowed_by_a_package),
        T(test_several_versions_unsolvable_is_quick),
        cmocka_unit_test(test_empty_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
