/*
 * host/log.c: one event is one line. Text from a package or a request that
 * holds a newline, a carriage return or a terminal escape is escaped, so it
 * can neither forge a line of its own nor steer the terminal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "testutil.h"

/* Runs one ph_logf with stderr sent to a file; returns what was written (malloc'd). */
static char *logged(const char *who, const char *text)
{
    char *dir = tu_tmpdir();
    char *path = tu_fmt("%s/err", dir);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    dup2(fileno(f), STDERR_FILENO);
    ph_logf(PH_L_INFO, who, "said: %s", text);
    dup2(saved, STDERR_FILENO);
    close(saved);
    fclose(f);
    char *out = tu_read(path);
    tu_rmtree(dir);
    free(path);
    free(dir);
    return out;
}

static void test_newline_is_escaped(void **state)
{
    (void)state;
    char *out =
        logged("notes", "hi\n2026-01-01 00:00:00.000 error [pkgmgr] forged\r\x1b[31mred\x7f");
    assert_non_null(out);
    assert_true(tu_contains(out, " info  [notes] said: hi\\n2026-01-01 00:00:00.000 error [pkgmgr] "
                                 "forged\\r\\x1b[31mred\\x7f\n"));
    assert_non_null(strchr(out, '\n'));
    assert_string_equal(strchr(out, '\n'), "\n"); /* exactly one line */
    free(out);
}

static void test_who_is_escaped_and_text_kept(void **state)
{
    (void)state;
    char *out = logged("a\nb", "tab\there, UTF-8 \xc3\xa9 stays");
    assert_true(tu_contains(out, "[a\\nb] said: tab\\there, UTF-8 \xc3\xa9 stays\n"));
    assert_string_equal(strchr(out, '\n'), "\n");
    free(out);
}

/* C1 controls (U+0080..U+009F, e.g. NEL and CSI) as \u00XX; bytes that are not UTF-8 as \xHH */
static void test_c1_and_invalid_utf8_are_escaped(void **state)
{
    (void)state;
    char *out = logged("x", "nel\xc2\x85"
                            "csi\xc2\x9b[31m ok\xc2\xa0\xe2\x82\xac"
                            " bad\xff\xc3( over\xc0\xaf sur\xed\xa0\x80 cut\xe2\x82");
    assert_non_null(out);
    const char *want = "[x] said: nel\\u0085csi\\u009b[31m ok\xc2\xa0\xe2\x82\xac bad\\xff\\xc3( "
                       "over\\xc0\\xaf sur\\xed\\xa0\\x80 cut\\xe2\\x82\n";
    if (!tu_contains(out, want))
        fail_msg("logged: %s\nwanted: %s", out, want);
    assert_string_equal(strchr(out, '\n'), "\n");
    free(out);
}

/* --log-format journal with no journald to reach: one warning, then every line on stderr */
static void test_journal_falls_back_to_stderr(void **state)
{
    (void)state;
    if (access("/run/systemd/journal/socket", F_OK) == 0)
        skip(); /* journald runs here: the lines go to it */
    ph_log_set_format(PH_LOG_JOURNAL);
    char *out = logged("x", "one");
    char *out2 = logged("x", "two");
    ph_log_set_format(PH_LOG_TEXT);
    assert_non_null(out);
    if (!tu_contains(out, " warn  journald is not reachable (") ||
        !tu_contains(out, "): logging to stderr as text\n") ||
        !tu_contains(out, " info  [x] said: one\n"))
        fail_msg("logged: %s", out);
    assert_false(tu_contains(out2, "journald")); /* said once */
    assert_true(tu_contains(out2, " info  [x] said: two\n"));
    free(out);
    free(out2);
}

static void test_long_line_stays_one_line(void **state)
{
    (void)state;
    char *big = malloc(10000);
    memset(big, '\n', 9999);
    big[9999] = '\0';
    char *out = logged("x", big);
    assert_string_equal(strchr(out, '\n'), "\n");
    assert_true(strlen(out) <= PH_LOG_LINE);
    assert_true(tu_contains(out, " ... [cut]\n")); /* says it was cut */
    free(out);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_newline_is_escaped),
        cmocka_unit_test(test_who_is_escaped_and_text_kept),
        cmocka_unit_test(test_long_line_stays_one_line),
        cmocka_unit_test(test_c1_and_invalid_utf8_are_escaped),
        cmocka_unit_test(test_journal_falls_back_to_stderr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
