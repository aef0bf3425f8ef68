/* ini.c: the one INI reader: what a line is, and each way a line is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ini.h"
#include "testutil.h"

typedef struct events {
    char log[2048];
} events;

static int record(void *user, const char *section, const char *key, const char *value, int line)
{
    events *e = user;
    size_t n = strlen(e->log);
    snprintf(e->log + n, sizeof e->log - n, "%d[%s]%s=%s;", line, section, key ? key : "-",
             value ? value : "-");
    return 0;
}

static const char *const repeatable[] = {"s.many", NULL};
static const ph_ini_opts opts = {PH_ECONFIG, repeatable};

/* Parses `len` bytes; returns the event log (static) and expects `rc`. */
static const char *parse(const char *text, size_t len, int rc)
{
    static events e;
    memset(&e, 0, sizeof e);
    ph_error_clear();
    int got = ph_ini_parse_text("t.ini", text, len, &opts, record, &e);
    if (got != rc)
        fail_msg("'%s': expected %d, got %d: %s", text, rc, got, ph_error_last());
    return e.log;
}

static void ok(const char *text, const char *log)
{
    assert_string_equal(parse(text, strlen(text), 0), log);
}

static void bad(const char *text, size_t len, const char *msg)
{
    parse(text, len, PH_ECONFIG);
    assert_string_equal(ph_error_last(), msg);
}

/* A literal with its exact length (it may hold NUL bytes). */
#define BAD(lit, msg) bad(lit, sizeof lit - 1, msg)

static void test_lines(void **state)
{
    (void)state;
    ok("", "");
    ok("a = 1\n[empty]\n\n[ s ]\n  k = v\nk2 : v2\n",
       "1[]a=1;2[empty]-=-;4[s]-=-;5[s]k=v;6[s]k2=v2;");
    /* CRLF, a BOM first, no final line end, tabs, comments. */
    ok("\xEF\xBB\xBF[s]\r\n\tk\t=\tv w\t; c\r\n; x\r\n# y\r\nurl = a;b",
       "1[s]-=-;2[s]k=v w;5[s]url=a;b;");
    /* The first '=' or ':' separates; an empty value is a value. */
    ok("[s]\nlisten = 1.2.3.4:80\nt: a=b\ne =\n",
       "1[s]-=-;2[s]listen=1.2.3.4:80;3[s]t=a=b;4[s]e=;");
    /* Repeatable keys repeat; UTF-8 passes through. */
    ok("[s]\nmany = 1\nmany = 2\nname = caf\xC3\xA9 \xF0\x9F\x98\x80\n",
       "1[s]-=-;2[s]many=1;3[s]many=2;4[s]name=caf\xC3\xA9 \xF0\x9F\x98\x80;");
}

static void test_refusals(void **state)
{
    (void)state;
    BAD("[s]\n\r[x=y]\nk = v\n",
        "t.ini:2: line contains a carriage return (CR) at column 1 that does not end the line; "
        "save the file with LF or CRLF line ends");
    BAD("[s]\n k\xEF\xBB\xBF = v\n",
        "t.ini:2: line contains a byte order mark (U+FEFF) at column 3; it is allowed only at the "
        "very start of the file; remove it");
    BAD("[s]\nk = a\0b\n", "t.ini:2: line contains a NUL byte; is this a text file?");
    BAD("[s]\nk = \x1b[31m\n",
        "t.ini:2: line contains the control character 0x1B at column 5; remove it");
    BAD("[s]\nk = \x80\n",
        "t.ini:2: line is not valid UTF-8 (byte 0x80 at column 5); save the file as UTF-8");
    BAD("[s]\nk = \xF4\x90\x80\x80\n",
        "t.ini:2: line is not valid UTF-8 (byte 0xF4 at column 5); save the file as UTF-8");
    BAD("[s]\nk = \xE2\x82\n",
        "t.ini:2: line is not valid UTF-8 (byte 0xE2 at column 5); save the file as UTF-8");
    BAD("[s\n", "t.ini:1: section header has no closing ']'; write it as [name]");
    BAD("[s] x\n",
        "t.ini:1: unexpected text after ']' of a section header; put a ';' before a comment");
    BAD("[]\n", "t.ini:1: the section name is empty; write it as [name]");
    BAD("[s]\nk\n", "t.ini:2: expected 'key = value' or '[section]'");
    BAD("[s]\nk ; = v\n", "t.ini:2: expected 'key = value' or '[section]'");
    BAD("[s]\n: v\n", "t.ini:2: no key before ':'; write key = value");
    BAD("[s]\nk = 1\n  more\n",
        "t.ini:3: expected 'key = value' or '[section]'; a value cannot go on over several lines: "
        "write it on one line");
    BAD("[s]\nk = 1\n[t]\n[s]\nk = 2\n",
        "t.ini:5: 'k' is set twice in [s] (first on line 2); keep one");
    BAD("k = 1\nk = 2\n",
        "t.ini:2: 'k' is set twice before any section (first on line 1); keep one");
}

static void test_limits(void **state)
{
    (void)state;
    char *line = malloc(PH_INI_MAX_LINE + 8);
    memset(line, 'v', PH_INI_MAX_LINE + 4);
    memcpy(line, "k = ", 4);
    line[PH_INI_MAX_LINE] = '\n';
    line[PH_INI_MAX_LINE + 1] = '\0';
    parse(line, PH_INI_MAX_LINE + 1, 0); /* exactly the limit */
    line[PH_INI_MAX_LINE] = 'v';
    line[PH_INI_MAX_LINE + 1] = '\r'; /* the CR of CRLF does not count */
    line[PH_INI_MAX_LINE + 2] = '\n';
    char *want = tu_fmt("t.ini:1: line is %d characters long, longer than the %d allowed; "
                        "shorten it",
                        PH_INI_MAX_LINE + 1, PH_INI_MAX_LINE);
    bad(line, PH_INI_MAX_LINE + 3, want);
    free(want);
    free(line);
    parse("", PH_INI_MAX_FILE + 1, PH_ECONFIG);
    assert_string_equal(ph_error_last(),
                        "t.ini: file is larger than 1048576 bytes; is it the right file?");
}

/* A handler's error gets the location; reading stops there. */
static int refuse(void *user, const char *section, const char *key, const char *value, int line)
{
    (void)user;
    (void)section;
    (void)line;
    if (key && strcmp(key, "fail") == 0)
        return ph_error_set(PH_EMANIFEST, "the handler refused '%s'", value);
    if (!key && strcmp(section, "bad") == 0)
        return ph_error_set(PH_EMANIFEST, "no [bad] here");
    return 0;
}

static void test_handler_errors(void **state)
{
    (void)state;
    assert_int_equal(ph_ini_parse_text("t.ini", "[s]\nfail = now\n", 15, &opts, refuse, NULL),
                     PH_EMANIFEST);
    assert_string_equal(ph_error_last(), "t.ini:2: the handler refused 'now'");
    assert_int_equal(ph_ini_parse_text("t.ini", "\n[bad]\n", 7, &opts, refuse, NULL), PH_EMANIFEST);
    assert_string_equal(ph_error_last(), "t.ini:2: no [bad] here");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_handler_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
