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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
