/* semver.c: parsing, precedence, formatting, ranges and their error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "semver.h"
#include "testutil.h"

static ph_semver V(const char *text)
{
    ph_semver v;
    if (ph_semver_parse(text, &v) != 0)
        fail_msg("'%s' should parse: %s", text, ph_error_last());
    return v;
}

static void assert_bad_version(const char *text, const char *why)
{
    ph_semver v;
    ph_error_clear();
    assert_int_equal(ph_semver_parse(text, &v), PH_EINVAL);
    char *want = tu_fmt("invalid version '%s': %s", text, why);
    assert_true(tu_contains(ph_error_last(), want));
    free(want);
}

static void test_parse_good(void **state)
{
    (void)state;
    ph_semver v = V("1.2.3");
    assert_int_equal(v.major, 1);
    assert_int_equal(v.minor, 2);
    assert_int_equal(v.patch, 3);
    assert_string_equal(v.pre, "");

    v = V("0.0.0");
    assert_int_equal(v.major + v.minor + v.patch, 0);

    v = V("10.20.30-rc.1+build.5");
    assert_int_equal(v.major, 10);
    assert_string_equal(v.pre, "rc.1");

    v = V("1.0.0+20130313144700");
    assert_string_equal(v.pre, "");

    v = V("1.0.0-alpha-a.b-c-somethinglong+build.1-aef.1-its-okay");
    assert_string_equal(v.pre, "alpha-a.b-c-somethinglong");

    v = V("1.0.0-0A.is.legal");
    assert_string_equal(v.pre, "0A.is.legal");

    v = V("18446744073709551615.0.0");
    assert_true(v.major == UINT64_MAX);

    v = V("1.0.0+001"); /* build identifiers may have leading zeros */
    assert_string_equal(v.pre, "");
}

static void test_parse_bad(void **state)
{
    (void)state;
    assert_bad_version("", "no version given; expected MAJOR.MINOR.PATCH such as 1.2.3");
    assert_bad_version("1", "expected MAJOR.MINOR.PATCH such as 1.2.3, found 1 part");
    assert_bad_version("1.2", "expected MAJOR.MINOR.PATCH such as 1.2.3, found 2 parts");
    assert_bad_version("1.2.3.4", "too many parts");
    assert_bad_version("01.2.3", "major version '01' has a leading zero");
    assert_bad_version("1.02.3", "minor version '02' has a leading zero");
    assert_bad_version("1.2.03", "patch version '03' has a leading zero");
    assert_bad_version("1..3", "minor version is empty");
    assert_bad_version("1.2.", "patch version is empty");
    assert_bad_version("a.2.3", "major version 'a' is not a number");
    assert_bad_version("1.2.x", "patch version 'x' is not a number");
    assert_bad_version("1.2.3 ", "patch version '3 ' is not a number");
    assert_bad_version("v1.2.3", "remove the leading 'v'");
    assert_bad_version("1.2.3-", "pre-release after '-' is empty");
    assert_bad_version("1.2.3-a..b", "pre-release has an empty identifier");
    assert_bad_version("1.2.3-rc.", "pre-release has an empty identifier");
    assert_bad_version("1.2.3-01", "pre-release identifier '01' has a leading zero");
    assert_bad_version("1.2.3-rc.01", "pre-release identifier '01' has a leading zero");
    assert_bad_version("1.2.3-a_b", "pre-release identifier 'a_b' contains '_'");
    assert_bad_version("1.2.3+", "build metadata after '+' is empty");
    assert_bad_version("1.2.3+a..b", "build metadata has an empty identifier");
    assert_bad_version("1.2.3+a+b", "build metadata identifier 'a+b' contains '+'");
    assert_bad_version("18446744073709551616.0.0",
                       "major version '18446744073709551616' is too large");
    assert_bad_version("-1.2.3", "major version is empty");

    char pre[PH_SEMVER_PRE_MAX + 8];
    memset(pre, 'a', sizeof pre - 1);
    pre[sizeof pre - 1] = '\0';
    char *text = tu_fmt("1.0.0-%s", pre);
    char *why = tu_fmt("pre-release is %zu characters long; at most %d are supported", strlen(pre),
                       PH_SEMVER_PRE_MAX - 1);
    assert_bad_version(text, why);
    free(text);
    free(why);

    /* The longest pre-release that fits is accepted. */
    pre[PH_SEMVER_PRE_MAX - 1] = '\0';
    text = tu_fmt("1.0.0-%s", pre);
    ph_semver v = V(text);
    assert_string_equal(v.pre, pre);
    free(text);
}

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

static void test_precedence(void **state)
{
    (void)state;
    /* The ordered example of semver.org section 11, plus numeric cases. */
    const char *order[] = {"1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                           "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",       "1.0.0",
                           "1.0.1",        "1.2.0",         "1.10.0",           "2.0.0",
                           "10.0.0"};
    size_t n = sizeof order / sizeof order[0];
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < n; k++) {
            ph_semver a = V(order[i]), b = V(order[k]);
            int want = i < k ? -1 : i > k;
            if (sign(ph_semver_cmp(&a, &b)) != want)
                fail_msg("cmp(%s, %s) should be %d", order[i], order[k], want);
        }
    }
    ph_semver a = V("1.0.0+a"), b = V("1.0.0+b");
    assert_int_equal(ph_semver_cmp(&a, &b), 0);
    a = V("1.0.0-2"), b = V("1.0.0-10");
    assert_true(ph_semver_cmp(&a, &b) < 0);
    a = V("1.0.0-a"), b = V("1.0.0-1");
    assert_true(ph_semver_cmp(&a, &b) > 0);
}

static void test_format(void **state)
{
    (void)state;
    char buf[96];
    ph_semver v = V("1.2.3-rc.1+build");
    assert_string_equal(ph_semver_format(&v, buf, sizeof buf), "1.2.3-rc.1");
    v = V("18446744073709551615.18446744073709551615.18446744073709551615");
    assert_string_equal(ph_semver_format(&v, buf, sizeof buf),
                        "18446744073709551615.18446744073709551615.18446744073709551615");
    char small[4];
    v = V("10.20.30");
    assert_string_equal(ph_semver_format(&v, small, sizeof small), "10.");
}

static ph_range R(const char *text)
{
    ph_range r;
    if (ph_range_parse(text, &r) != 0)
        fail_msg("range '%s' should parse: %s", text, ph_error_last());
    assert_string_equal(r.text, text);
    return r;
}

/* Checks `range` against "v1 v2 ..." expected to match and not to match. */
static void check_range(const char *range, const char *const *yes, const char *const *no)
{
    ph_range r = R(range);
    for (; yes && *yes; yes++) {
        ph_semver v = V(*yes);
        if (!ph_range_satisfies(&r, &v))
            fail_msg("%s should satisfy '%s'", *yes, range);
    }
    for (; no && *no; no++) {
        ph_semver v = V(*no);
        if (ph_range_satisfies(&r, &v))
            fail_msg("%s should not satisfy '%s'", *no, range);
    }
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_range_simple(void **state)
{
    (void)state;
    check_range("*", L("0.0.0", "1.2.3", "99.0.0"), L("1.0.0-rc.1"));
    check_range("x", L("0.0.0", "5.0.0"), NULL);
    check_range("1.2.3", L("1.2.3", "1.2.3+b"), L("1.2.4", "1.2.2", "1.2.3-rc.1"));
    check_range("=1.2.3", L("1.2.3"), L("1.2.4"));
    check_range("= 1.2.3", L("1.2.3"), L("1.2.4"));
    check_range(">1", L("2.0.0", "3.1.0"), L("1.9.9", "1.0.0"));
    check_range(">1.2", L("1.3.0"), L("1.2.9"));
    check_range(">1.2.3", L("1.2.4"), L("1.2.3"));
    check_range(">=1.0", L("1.0.0", "7.0.0"), L("0.9.9", "1.0.0-rc.1"));
    check_range(">= 1.0", L("1.0.0"), L("0.9.0"));
    check_range("<2", L("1.9.9", "0.0.1"), L("2.0.0", "2.0.0-rc.1"));
    check_range("<2.1", L("2.0.9"), L("2.1.0"));
    check_range("<=2.1", L("2.1.0", "2.1.99"), L("2.2.0"));
    check_range("<=2", L("2.99.0"), L("3.0.0"));
    check_range("<=2.1.3", L("2.1.3"), L("2.1.4"));
    check_range("1", L("1.0.0", "1.99.99"), L("2.0.0", "0.9.0"));
    check_range("1.x", L("1.0.0", "1.5.0"), L("2.0.0"));
    check_range("1.2", L("1.2.0", "1.2.99"), L("1.3.0", "1.1.9"));
    check_range("1.2.x", L("1.2.7"), L("1.3.0"));
    check_range("1.*.*", L("1.2.7"), L("2.0.0"));
}

static void test_range_caret_tilde(void **state)
{
    (void)state;
    check_range("^1.2", L("1.2.0", "1.9.0"), L("1.1.9", "2.0.0", "2.0.0-rc.1"));
    check_range("^1.2.3", L("1.2.3", "1.99.0"), L("1.2.2", "2.0.0"));
    check_range("^1", L("1.0.0", "1.9.9"), L("2.0.0", "0.9.9"));
    check_range("^0.2.3", L("0.2.3", "0.2.9"), L("0.3.0", "0.2.2"));
    check_range("^0.2", L("0.2.0", "0.2.9"), L("0.3.0"));
    check_range("^0.0.3", L("0.0.3"), L("0.0.4", "0.0.2"));
    check_range("^0.0", L("0.0.0", "0.0.9"), L("0.1.0"));
    check_range("^0", L("0.0.0", "0.9.9"), L("1.0.0"));
    check_range("^0.x", L("0.5.0"), L("1.0.0"));
    check_range("^*", L("3.0.0"), NULL);
    check_range("^1.2.3-beta.2", L("1.2.3-beta.2", "1.2.3-beta.4", "1.2.3", "1.5.0"),
                L("1.2.3-beta.1", "1.2.4-beta.9", "2.0.0"));
    check_range("~1.2.3", L("1.2.3", "1.2.9"), L("1.3.0", "1.2.2"));
    check_range("~1.2", L("1.2.0", "1.2.9"), L("1.3.0"));
    check_range("~1", L("1.0.0", "1.9.0"), L("2.0.0"));
    check_range("~0.2.3", L("0.2.5"), L("0.3.0"));
    check_range("~1.2.3-rc.1", L("1.2.3-rc.2", "1.2.5"), L("1.2.3-beta", "1.3.0"));
    /* No upper bound overflows. */
    check_range("^18446744073709551615", L("18446744073709551615.7.0"), L("1.0.0"));
}

static void test_range_lists(void **state)
{
    (void)state;
    check_range(">=1.0, <2", L("1.0.0", "1.9.9"), L("0.9.9", "2.0.0", "1.5.0-rc.1"));
    check_range(">=1.0,<2", L("1.5.0"), L("2.0.0"));
    check_range("  >=1.2.0 ,  <1.4  ", L("1.3.0"), L("1.4.0", "1.1.0"));
    check_range("^1.2, <1.3", L("1.2.5"), L("1.3.0", "1.1.0"));
    /* npm's pre-release rule: only when a comparator names the same M.m.p. */
    check_range(">=2.0.0-rc.1, <3", L("2.0.0-rc.1", "2.0.0-rc.2", "2.0.0", "2.5.0"),
                L("2.5.0-rc.1", "2.0.0-beta"));
    check_range(">1.0.0-alpha", L("1.0.0-beta", "1.0.0"), L("1.0.1-rc.1"));
}

static void assert_bad_range(const char *text, const char *why)
{
    ph_range r;
    ph_error_clear();
    assert_int_equal(ph_range_parse(text, &r), PH_EINVAL);
    char *want = tu_fmt("invalid range '%s': %s", text, why);
    assert_true(tu_contains(ph_error_last(), want));
    free(want);
}

static void test_range_bad(void **state)
{
    (void)state;
    assert_bad_range("", "empty; write '*' for any version");
    assert_bad_range("   ", "empty; write '*' for any version");
    assert_bad_range(">=1.0,", "empty part between commas");
    assert_bad_range(",<2", "empty part between commas");
    assert_bad_range(">=1.0 <2", "'>=1.0 <2' is not one comparator; separate comparators with ','");
    assert_bad_range("1.2.3 - 2.0.0", "hyphen ranges are not supported; write '>=A, <=B'");
    assert_bad_range("^1 || ^2", "'||' (either-or ranges) is not supported");
    assert_bad_range(">=", "no version given");
    assert_bad_range("^01.2", "major version '01' has a leading zero");
    assert_bad_range(">=1.0, <2.x.3", "'3' follows a wildcard");
    assert_bad_range("~1.2.3.4", "too many parts");
    assert_bad_range("1.x-rc.1", "a pre-release or build suffix needs a full MAJOR.MINOR.PATCH");
    assert_bad_range(">*", "'>*' matches no version");
    assert_bad_range("<x", "'<x' matches no version");
    assert_bad_range("^1.2.3-", "pre-release after '-' is empty");
    assert_bad_range("foo", "major version 'foo' is not a number");
    assert_bad_range("=>1.0", "'=>' is not a plughost operator; write '>=1.0'");
    assert_bad_range("1,2,3,4,5,6,7,8,9", "more than 8 comma-separated parts");

    char long_text[200];
    memset(long_text, '1', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    assert_bad_range(long_text, "longer than 127 characters");
}

/* Issue 13, item 2: a sugar upper bound is "<X.Y.Z-0", so no pre-release of
 * the bound gets in beside a comparator that admits that version's pre-releases. */
static void test_sugar_bounds_keep_prereleases_out(void **state)
{
    (void)state;
    check_range("<2, >=2.0.0-alpha", NULL, L("2.0.0-beta", "2.0.0-alpha", "2.0.0"));
    check_range("^1.2, <2.0.0-rc.1", L("1.9.0"), L("2.0.0-beta", "2.0.0-rc.0"));
    check_range("~1.1, 1.2.0-rc.1", NULL, L("1.2.0-rc.1"));
    check_range("1.x, >=2.0.0-alpha", NULL, L("2.0.0-beta"));
    check_range("~1.2.3, >=1.3.0-alpha", NULL, L("1.3.0-beta"));
    check_range("<=1.2, >=1.3.0-alpha", NULL, L("1.3.0-beta"));
    /* A full version as the bound stays as written: 2.0.0-beta is below 2.0.0. */
    check_range("<2.0.0, >=2.0.0-alpha", L("2.0.0-beta"), L("2.0.0"));
    ph_range r = R("^1.2");
    assert_int_equal(r.n, 2);
    assert_string_equal(r.c[1].v.pre, "0");
}

/* Issue 13, item 1: what a range covers for [conflicts], pre-releases included. */
static void test_range_covers(void **state)
{
    (void)state;
    ph_range any = R("*"), below2 = R("<2"), caret = R("^1.0");
    ph_semver beta = V("2.0.0-beta.1"), rc = V("1.5.0-rc.1"), two = V("2.0.0");
    assert_true(ph_range_covers(&any, &beta));
    assert_false(ph_range_satisfies(&any, &beta));
    assert_true(ph_range_covers(&below2, &rc));
    assert_false(ph_range_covers(&below2, &beta));
    assert_false(ph_range_covers(&below2, &two));
    assert_true(ph_range_covers(&caret, &rc));
    assert_false(ph_range_covers(&caret, &beta));
    /* node-semver's includePrerelease: a lower bound from a partial version is ">=X.Y.Z-0",
       one from a full version keeps its own pre-releases out */
    static const struct {
        const char *range, *version;
        bool covered;
    } cases[] = {
        {">=2", "2.0.0-beta.1", true},    {"^1", "1.0.0-rc.1", true},
        {"1", "1.0.0-alpha", true},       {"1.x", "1.0.0-alpha", true},
        {"~1.2", "1.2.0-rc.1", true},     {"1.2", "1.2.0-x", true},
        {">1", "2.0.0-beta", true},       {">=1.2", "1.2.0-beta", true},
        {">=1.2.3", "1.2.3-beta", false}, {"^1.2.3", "1.2.3-beta", false},
        {"~1.2.3", "1.2.3-rc.1", false},  {">=2", "1.9.9", false},
        {">=2, <3", "3.0.0-rc.1", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ph_range r = R(cases[i].range);
        ph_semver v = V(cases[i].version);
        if (ph_range_covers(&r, &v) != cases[i].covered)
            fail_msg("'%s' %s %s", cases[i].range,
                     cases[i].covered ? "must cover" : "must not cover", cases[i].version);
    }
}

/* Issue 13, item 6: other tools' spellings, each with the plughost spelling. */
static void test_foreign_spellings(void **state)
{
    (void)state;
    assert_bad_range("~>1.2", "'~>' is Ruby's pessimistic operator, which plughost does not read; "
                              "write '>=1.2, <2' (the same versions)");
    assert_bad_range("~> 1.2.3", "'~>' is Ruby's pessimistic operator, which plughost does not "
                                 "read; write '~1.2.3' (the same versions)");
    assert_bad_range("~=1.2", "'~=' is Python's compatible-release operator, which plughost "
                              "does not read; write '>=1.2, <2' (the same versions)");
    assert_bad_range("==1.2", "'==' is not a plughost operator; write '=1.2' (or just '1.2')");
    assert_bad_range("!=1.2", "'!=' (every version but one) is not supported: a range is one "
                              "interval; write the versions you want, e.g. '<1.2' or '>1.2'");
    assert_bad_range(">=1.0, !=1.5.0", "'!=' (every version but one) is not supported: a range "
                                       "is one interval; write the versions you want, e.g. "
                                       "'<1.5.0' or '>1.5.0'");
    assert_bad_range("\"^1.2\"", "remove the quotes: write ^1.2, not \"^1.2\"");
    assert_bad_range("'~1.2'", "remove the quotes: write ~1.2, not '~1.2'");
    assert_bad_range("[1.0,2.0)", "interval notation (Maven, NuGet, OSGi) is not supported; "
                                  "write '>=1.0.0, <2.0.0' (the same versions)");
    assert_bad_range("(1.0, 2.0]", "interval notation (Maven, NuGet, OSGi) is not supported; "
                                   "write '>1.0.0, <=2.0.0' (the same versions)");
    /* the advice is a whole version: ">1.0" would mean ">=1.1.0" in plughost */
    assert_bad_range("(1.0,2)", "interval notation (Maven, NuGet, OSGi) is not supported; "
                                "write '>1.0.0, <2.0.0' (the same versions)");
    assert_bad_range("[1.0]", "interval notation (Maven, NuGet, OSGi) is not supported; "
                              "write '=1.0.0' (the same version)");
    assert_bad_range("===1.2", "'===' is not a plughost operator; write '=1.2'");
    assert_bad_range(">>1.2", "'>>' (Debian's 'strictly later') is not a plughost operator; "
                              "write '>1.2'");
    assert_bad_range("<<2", "'<<' (Debian's 'strictly earlier') is not a plughost operator; "
                            "write '<2'");
    assert_bad_range("<>1.2", "'<>' (every version but one) is not supported");
    assert_bad_range("^=1.2", "'^=' is not a plughost operator; write '^1.2'");
    assert_bad_range("(>= 1.2)",
                     "remove the parentheses (Debian's Depends spelling): write >= 1.2");
    assert_bad_range("^1.2 # note", "a range cannot hold a comment");
    assert_bad_range("1.+", "'1.+' is Gradle's dynamic version; write '1.x' (or '^1.0')");
    assert_bad_range("latest", "'latest' is a tag, not a range; write '*' for any version");
    assert_bad_range("1.2.3rc1", "patch version '3rc1' is not a number; a pre-release follows a "
                                 "'-': write '3-rc1'");
    assert_bad_range("[1.0,)", "interval notation (Maven, NuGet, OSGi) is not supported; "
                               "write '>=1.0.0' (the same versions)");
    assert_bad_range("[1.0", "interval notation is not supported; write comparators such as "
                             "'>=1.0, <2.0'");
    assert_bad_range("~>foo", "'~>' is Ruby's pessimistic operator, which plughost does not read; "
                              "write e.g. '~1.2.3' or '>=1.2, <2'");
}

/*
 * Deliberate differences from node-semver (also listed in the README with
 * why): pairs of the corpus where plughost answers otherwise on purpose.
 */
static const struct {
    const char *range, *version;
} deliberate[] = {
    {NULL, NULL},
};

static bool is_deliberate(const char *range, const char *version)
{
    for (size_t i = 0; deliberate[i].range; i++)
        if (!strcmp(deliberate[i].range, range) && !strcmp(deliberate[i].version, version))
            return true;
    return false;
}

/* Splits `line` at blanks into at most `max` words (the line is modified). */
static size_t split_words(char *line, char **words, size_t max)
{
    size_t n = 0;
    for (char *w = strtok(line, " \n"); w && n < max; w = strtok(NULL, " \n"))
        words[n++] = w;
    return n;
}

/*
 * Acceptance 2 of issue 13: node-semver's answers for tests/data/semver_corpus.txt
 * (made by tests/tools/gen_semver_corpus.js), every pair checked.
 */
static void test_node_semver_corpus(void **state)
{
    (void)state;
    enum { MAX_VERSIONS = 512 };
    char *path = tu_fmt("%s/tests/data/semver_corpus.txt", tu_env("PH_SOURCE_DIR"));
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    free(path);
    char *line = NULL, *words[MAX_VERSIONS];
    ph_semver versions[MAX_VERSIONS];
    size_t cap = 0, n_versions = 0, pairs = 0, differ = 0, undocumented = 0;
    char *header = NULL;
    while (getline(&line, &cap, f) > 0) {
        if (line[0] == '#')
            continue;
        if (!strncmp(line, "versions ", 9)) {
            header = strdup(line + 9);
            n_versions = split_words(header, words, MAX_VERSIONS);
            for (size_t i = 0; i < n_versions; i++)
                versions[i] = V(words[i]);
            continue;
        }
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = '\0';
        char *range = tab + 1;
        range[strcspn(range, "\n")] = '\0';
        assert_int_equal(strlen(line), n_versions);
        ph_range r = R(range);
        for (size_t i = 0; i < n_versions; i++, pairs++) {
            bool node = line[i] == '1', ours = ph_range_satisfies(&r, &versions[i]);
            if (node == ours)
                continue;
            differ++;
            if (is_deliberate(range, words[i]))
                continue;
            undocumented++;
            fprintf(stderr, "differs from node-semver: for '%s', node-semver %s %s, plughost %s\n",
                    range, node ? "admits" : "refuses", words[i], ours ? "admits it" : "does not");
        }
    }
    free(line);
    free(header);
    fclose(f);
    fprintf(stderr, "node-semver corpus: %zu pairs, %zu deliberate differences\n", pairs, differ);
    assert_true(pairs >= 10000);
    assert_int_equal(undocumented, 0);
}

static void test_null_args(void **state)
{
    (void)state;
    ph_semver v;
    ph_range r;
    assert_int_equal(ph_semver_parse(NULL, &v), PH_EINVAL);
    assert_int_equal(ph_range_parse(NULL, &r), PH_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_range_simple),
        cmocka_unit_test(test_range_caret_tilde),
        cmocka_unit_test(test_range_lists),
        cmocka_unit_test(test_range_bad),
        cmocka_unit_test(test_null_args),
        cmocka_unit_test(test_sugar_bounds_keep_prereleases_out),
        cmocka_unit_test(test_range_covers),
        cmocka_unit_test(test_foreign_spellings),
        cmocka_unit_test(test_node_semver_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
