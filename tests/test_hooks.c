/*
 * hooks.c: contributions to extension points checked against the
 * declaration, from manifests alone (no package code), and their order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hooks.h"
#include "manifest.h"
#include "testutil.h"

typedef tu_dir_fixture fixture;
#define setup tu_dir_setup
#define teardown tu_dir_teardown

static const char menu_ini[] = "[package]\nname = shell\nversion = 1.0.0\n"
                               "[endpoint menu]\n"
                               "label = string\n"
                               "url = string\n"
                               "order = int64?\n"
                               "wide = bool?\n";

static void discover(fixture *f, ph_manifest_set *set)
{
    char *dirs[1] = {f->dir};
    assert_int_equal(ph_manifest_discover(dirs, 1, set), 0);
    assert_int_equal(set->n_problems, 0);
}

/* The text of problem k, which must start with the path of package.ini of `pkg` and `line`. */
static void assert_problem(fixture *f, json_t *problems, size_t k, const char *pkg, int line,
                           const char *text)
{
    const char *got = json_string_value(json_array_get(problems, k));
    assert_non_null(got);
    char *real = realpath(f->dir, NULL);
    char *want = tu_fmt("%s/%s/package.ini:%d: %s", real, pkg, line, text);
    if (strcmp(got, want) != 0)
        fail_msg("problem %zu:\n  got  %s\n  want %s", k, got, want);
    free(want);
    free(real);
}

static void write_pkgs(fixture *f)
{
    free(tu_write(f->dir, "shell/package.ini", menu_ini));
    free(tu_write(f->dir, "notes/package.ini",
                  "[package]\nname = notes\nversion = 1.0.0\n"
                  "[hook menu]\nlabel = Notes\nurl = /notes/\norder = 20\n"
                  "[hook menu archive]\nlabel = Archive\nurl = /notes/archive\nwide = yes\n"));
    free(tu_write(f->dir, "blog/package.ini",
                  "[package]\nname = blog\nversion = 1.0.0\n"
                  "[hook menu]\nlabel = Blog\nurl = /blog/\norder = 5\n"
                  "[hook menu bad]\nlabel = Bad\n"                         /* 8: no url */
                  "[hook menu typo]\nlabel = T\nurl = /t\norder = ten\n"   /* 13: ten */
                  "[hook menu extra]\nlabel = E\nurl = /e\ncolour = red\n" /* 17 */
                  "[hook footer]\ntext = x\n"));                           /* 18 */
}

static void test_collect(void **state)
{
    fixture *f = *state;
    ph_manifest_set set;
    write_pkgs(f);
    discover(f, &set);
    json_t *out = NULL;
    assert_int_equal(ph_hooks_collect(&set, "menu", NULL, NULL, &out), 0);
    assert_string_equal(json_string_value(json_object_get(out, "declared_by")), "shell");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(out, "parameters"), "order")), "int64?");
    json_t *items = json_object_get(out, "items");
    char *text = json_dumps(items, JSON_COMPACT);
    /* by order (blog 5, notes 20), then the items without one (by package, item) */
    assert_string_equal(
        text, "[{\"package\":\"blog\",\"item\":\"blog\",\"label\":\"Blog\",\"url\":\"/blog/\","
              "\"order\":5},{\"package\":\"notes\",\"item\":\"notes\",\"label\":\"Notes\","
              "\"url\":\"/notes/\",\"order\":20},{\"package\":\"notes\",\"item\":\"archive\","
              "\"label\":\"Archive\",\"url\":\"/notes/archive\",\"wide\":true}]");
    free(text);
    json_t *problems = json_object_get(out, "problems");
    assert_int_equal(json_array_size(problems), 3); /* bad, typo, extra: texts below */
    json_decref(out);
    ph_manifest_set_free(&set);
}

/* assert_problem compares whole texts: the declaration's place is part of them. */
static void test_problem_texts(void **state)
{
    fixture *f = *state;
    ph_manifest_set set;
    write_pkgs(f);
    discover(f, &set);
    char *real = realpath(f->dir, NULL);
    json_t *problems = ph_hooks_problems(&set);
    assert_int_equal(json_array_size(problems), 4);
    char *want = tu_fmt("%s/blog/package.ini:8: [hook menu bad] gives no 'url' (string), which "
                        "endpoint 'menu' of shell requires (%s/shell/package.ini:6); the "
                        "contribution is left out",
                        real, real);
    assert_string_equal(json_string_value(json_array_get(problems, 0)), want);
    free(want);
    want = tu_fmt("%s/blog/package.ini:13: 'order' in [hook menu typo] must be int64 (endpoint "
                  "'menu' of shell), not 'ten'; the contribution is left out",
                  real);
    assert_string_equal(json_string_value(json_array_get(problems, 1)), want);
    free(want);
    want = tu_fmt("%s/blog/package.ini:17: 'colour' in [hook menu extra] is not a parameter of "
                  "endpoint 'menu' (declared by shell in %s/shell/package.ini:4); the "
                  "contribution is left out",
                  real, real);
    assert_string_equal(json_string_value(json_array_get(problems, 2)), want);
    free(want);
    assert_problem(f, problems, 3, "blog", 18,
                   "[hook footer] contributes to endpoint 'footer', which no installed package "
                   "declares ([endpoint footer]); the contribution is left out");
    json_decref(problems);
    free(real);
    ph_manifest_set_free(&set);
}

/* Only kept packages contribute (a running host keeps those with a running instance). */
static int not_notes(void *ud, const ph_manifest *m)
{
    (void)ud;
    return strcmp(m->name, "notes") != 0;
}

static void test_keep_and_unknown(void **state)
{
    fixture *f = *state;
    ph_manifest_set set;
    write_pkgs(f);
    discover(f, &set);
    json_t *out = NULL;
    assert_int_equal(ph_hooks_collect(&set, "menu", not_notes, NULL, &out), 0);
    assert_int_equal(json_array_size(json_object_get(out, "items")), 1);
    json_decref(out);
    out = (json_t *)1;
    assert_int_equal(ph_hooks_collect(&set, "footer", NULL, NULL, &out), PH_ENOTFOUND);
    assert_null(out);
    assert_string_equal(ph_error_last(),
                        "no installed package declares the endpoint 'footer'; a package "
                        "declares one with [endpoint footer] in its package.ini");
    ph_manifest_set_free(&set);
}

/* A second declaration of an endpoint takes nothing: the first by name keeps it, both named. */
static void test_declared_twice(void **state)
{
    fixture *f = *state;
    ph_manifest_set set;
    write_pkgs(f);
    free(tu_write(f->dir, "zzz/package.ini",
                  "[package]\nname = zzz\nversion = 1.0.0\n"
                  "[endpoint menu]\nlabel = string\n"));
    discover(f, &set);
    json_t *out = NULL;
    assert_int_equal(ph_hooks_collect(&set, "menu", NULL, NULL, &out), 0);
    assert_string_equal(json_string_value(json_object_get(out, "declared_by")), "shell");
    assert_int_equal(json_array_size(json_object_get(out, "items")), 3);
    char *real = realpath(f->dir, NULL);
    char *want = tu_fmt("%s/zzz/package.ini:4: [endpoint menu] is declared by package 'shell' too "
                        "(%s/shell/package.ini:4); an endpoint belongs to one package: the "
                        "contributions go to 'shell', the first by name",
                        real, real);
    json_t *problems = json_object_get(out, "problems");
    assert_int_equal(json_array_size(problems), 4);
    assert_string_equal(json_string_value(json_array_get(problems, 0)), want);
    json_t *all = ph_hooks_problems(&set);
    assert_int_equal(json_array_size(all), 5);
    assert_string_equal(json_string_value(json_array_get(all, 0)), want);
    json_decref(all);
    json_decref(out);
    free(want);
    ph_manifest_set_free(&set);
    /* whatever the directory order: "aaa" before "shell" is the first by name */
    free(tu_write(f->dir, "aaa/package.ini",
                  "[package]\nname = aaa\nversion = 1.0.0\n"
                  "[endpoint menu]\nlabel = string\nurl = string\n"));
    discover(f, &set);
    assert_int_equal(ph_hooks_collect(&set, "menu", NULL, NULL, &out), 0);
    assert_string_equal(json_string_value(json_object_get(out, "declared_by")), "aaa");
    json_decref(out);
    free(real);
    ph_manifest_set_free(&set);
}

/* A url a page would link to: relative or http(s) only; javascript: and //host are left out. */
static void test_url_schemes(void **state)
{
    fixture *f = *state;
    ph_manifest_set set;
    free(tu_write(f->dir, "shell/package.ini", menu_ini));
    free(tu_write(f->dir, "evil/package.ini",
                  "[package]\nname = evil\nversion = 1.0.0\n"
                  "[hook menu a]\nlabel = A\nurl = javascript:alert(1)\n"   /* 6 */
                  "[hook menu b]\nlabel = B\nurl = //evil.example/\n"       /* 9 */
                  "[hook menu c]\nlabel = C\nurl = JavaScript:alert(1)\n"   /* 12 */
                  "[hook menu d]\nlabel = D\nurl = data:text/html,x\n"      /* 15 */
                  "[hook menu e]\nlabel = E\nurl = https://example.org/x\n" /* ok */
                  "[hook menu f]\nlabel = F\nurl = notes/a:b\n"             /* ok */
                  "[hook menu g]\nlabel = G\nurl = /evil/\n"));             /* ok */
    discover(f, &set);
    json_t *out = NULL;
    assert_int_equal(ph_hooks_collect(&set, "menu", NULL, NULL, &out), 0);
    assert_int_equal(json_array_size(json_object_get(out, "items")), 3);
    json_t *problems = json_object_get(out, "problems");
    assert_int_equal(json_array_size(problems), 4);
    assert_problem(f, problems, 0, "evil", 6,
                   "'url' in [hook menu a] must be a relative path or an http(s) URL, not "
                   "'javascript:alert(1)'; the contribution is left out");
    assert_problem(f, problems, 1, "evil", 9,
                   "'url' in [hook menu b] must be a relative path or an http(s) URL, not "
                   "'//evil.example/'; the contribution is left out");
    json_decref(out);
    ph_manifest_set_free(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_collect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_problem_texts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_and_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_declared_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_schemes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
