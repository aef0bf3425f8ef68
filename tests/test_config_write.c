/* host/config_write.c: the host.ini writer of the package manager page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "config_write.h"
#include "error.h"
#include "testutil.h"

static const char original[] = "; host of the tests\n"
                               "[host]\n"
                               "data_dir = data ; kept here\n"
                               "\n"
                               "# greeter says hello\n"
                               "[instance  greeter]\n"
                               "package = greeter\n"
                               "  greeting = hi\n"
                               "; last comment of greeter\n"
                               "\n"
                               "[http]\n"
                               "listen = 127.0.0.1:8080";

static char *write_and_read(const char *dir, const char *text, const char *inst, const ph_kv *kv,
                            size_t n, int create, int *rc)
{
    char *path = tu_write(dir, "host.ini", text);
    *rc = ph_config_write_instance(path, inst, kv, n, create);
    char *out = tu_read(path);
    free(path);
    return out;
}

/* A key is replaced where it is, a new one follows the section's last key, the rest stays. */
static void test_replace_and_add(void **state)
{
    tu_dir_fixture *f = *state;
    ph_kv kv[] = {{"greeting", "hello there", 0}, {"max", "3", 0}};
    int rc;
    char *out = write_and_read(f->dir, original, "greeter", kv, 2, 0, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "; host of the tests\n"
                             "[host]\n"
                             "data_dir = data ; kept here\n"
                             "\n"
                             "# greeter says hello\n"
                             "[instance  greeter]\n"
                             "package = greeter\n"
                             "greeting = hello there\n"
                             "max = 3\n"
                             "; last comment of greeter\n"
                             "\n"
                             "[http]\n"
                             "listen = 127.0.0.1:8080");
    free(out);
}

/* NULL deletes the key's line; a missing section is appended (with create) or refused. */
static void test_delete_and_create(void **state)
{
    tu_dir_fixture *f = *state;
    ph_kv del[] = {{"greeting", NULL, 0}};
    int rc;
    char *out = write_and_read(f->dir, original, "greeter", del, 1, 0, &rc);
    assert_int_equal(rc, 0);
    assert_null(strstr(out, "greeting"));
    assert_non_null(strstr(out, "package = greeter\n; last comment of greeter\n"));
    free(out);

    ph_kv add[] = {{"package", "notes", 0}, {"mount", "/memo", 0}};
    out = write_and_read(f->dir, original, "memo", add, 2, 0, &rc);
    assert_int_equal(rc, PH_ENOTFOUND);
    assert_string_equal(ph_error_last(), "host.ini has no [instance memo] section");
    assert_string_equal(out, original); /* nothing changed */
    free(out);
    out = write_and_read(f->dir, original, "memo", add, 2, 1, &rc);
    assert_int_equal(rc, 0);
    assert_true(tu_contains(out, "listen = 127.0.0.1:8080\n\n[instance memo]\npackage = notes\n"
                                 "mount = /memo\n"));
    assert_int_equal(strncmp(out, original, sizeof original - 1), 0);
    free(out);

    /* the result is a host.ini the host reads */
    char *path = tu_fmt("%s/host.ini", f->dir);
    ph_config cfg;
    memset(&cfg, 0, sizeof cfg);
    int loaded = ph_config_load(path, &cfg);
    if (loaded)
        fprintf(stderr, "%s\n", ph_error_last());
    assert_int_equal(loaded, 0);
    const ph_instance_conf *memo = ph_config_instance(&cfg, "memo");
    assert_non_null(memo);
    assert_string_equal(memo->package, "notes");
    assert_string_equal(memo->mount, "/memo");
    ph_config_free(&cfg);
    free(path);
}

/* CRLF files stay CRLF. */
static void test_crlf(void **state)
{
    tu_dir_fixture *f = *state;
    ph_kv kv[] = {{"size", "10", 0}};
    int rc;
    char *out = write_and_read(f->dir, "[instance a]\r\npackage = a\r\n", "a", kv, 1, 0, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "[instance a]\r\npackage = a\r\nsize = 10\r\n");
    free(out);
}

/* Refusals name what is wrong; the file is left as it was. */
static void test_refusals(void **state)
{
    tu_dir_fixture *f = *state;
    int rc;
    ph_kv newline[] = {{"greeting", "a\nb", 0}};
    char *out = write_and_read(f->dir, original, "greeter", newline, 1, 0, &rc);
    assert_int_equal(rc, PH_EINVAL);
    assert_true(tu_contains(ph_error_last(), "the value of 'greeting' holds a line break"));
    assert_string_equal(out, original);
    free(out);
    ph_kv comment[] = {{"greeting", "hi ; there", 0}};
    out = write_and_read(f->dir, original, "greeter", comment, 1, 0, &rc);
    assert_int_equal(rc, PH_EINVAL);
    free(out);
    ph_kv key[] = {{"a b", "1", 0}};
    out = write_and_read(f->dir, original, "greeter", key, 1, 0, &rc);
    assert_int_equal(rc, PH_EINVAL);
    assert_string_equal(ph_error_last(), "parameter name 'a b' is not allowed; use letters, "
                                         "digits, '_', '.' and '-'");
    free(out);
    ph_kv ok[] = {{"greeting", "x", 0}};
    out = write_and_read(f->dir, original, "../x", ok, 1, 1, &rc);
    assert_int_equal(rc, PH_EINVAL);
    free(out);

    char *path = tu_fmt("%s/host.ini", f->dir);
    chmod(path, 0444);
    rc = ph_config_write_instance(path, "greeter", ok, 1, 0);
    assert_int_equal(rc, PH_EPERM);
    char *want = tu_fmt("%s is not writable by the host (the file); nothing was changed", path);
    assert_true(tu_contains(ph_error_last(), want));
    out = tu_read(path);
    assert_string_equal(out, original);
    free(out);
    free(want);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replace_and_add, tu_dir_setup, tu_dir_teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_create, tu_dir_setup, tu_dir_teardown),
        cmocka_unit_test_setup_teardown(test_crlf, tu_dir_setup, tu_dir_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, tu_dir_setup, tu_dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
