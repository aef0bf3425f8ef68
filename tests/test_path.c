/* ph_path_join and ph_path_trim: one '/' between a directory and a name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "path.h"

static void joins(const char *dir, const char *name, const char *want)
{
    char *p = ph_path_join(dir, name);
    assert_non_null(p);
    assert_string_equal(p, want);
    free(p);
}

static void test_join(void **state)
{
    (void)state;
    joins("/srv/pk", "x/package.ini", "/srv/pk/x/package.ini");
    joins("/srv/pk/", "x/package.ini", "/srv/pk/x/package.ini");
    joins("/srv/pk//", "/x", "/srv/pk/x");
    joins("/", "etc", "/etc");
    joins("", "rel", "rel");
    joins(NULL, "rel", "rel");
    joins("pk", "", "pk/");
}

static void test_trim(void **state)
{
    (void)state;
    char a[] = "/srv/data//", b[] = "/", c[] = "data";
    assert_string_equal(ph_path_trim(a), "/srv/data");
    assert_string_equal(ph_path_trim(b), "/");
    assert_string_equal(ph_path_trim(c), "data");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_trim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
