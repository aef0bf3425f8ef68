/*
 * The SDK header stands alone: <plughost/sdk.h> compiles by itself as strict
 * C99 and C11 (-pedantic -Werror -Wall -Wextra), and so does a package using
 * every macro and helper (tests/sdk/uses_every_macro.c). It also compiles as
 * C++ (the header alone with -pedantic; a package using the macros with GNU
 * C++, since the macros use C99 compound literals and designated
 * initializers that ISO C++ lacks or restricts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

static char *tmp;
static char *only_c;

static int setup(void **state)
{
    (void)state;
    tmp = tu_tmpdir();
    only_c = tu_write(tmp, "only.c", "#include <plughost/sdk.h>\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(tmp);
    free(tmp);
    free(only_c);
    return 0;
}

static int have(const char *tool)
{
    return tu_run(NULL, "command -v %s", tool) == 0;
}

/* Compiles `file` with `cmd` and `flags`; fails the test with the compiler output. */
static void compiles(const char *cmd, const char *flags, const char *file)
{
    char *out = NULL;
    int rc = tu_run(&out, "%s %s -fsyntax-only -I'%s/sdk/include' '%s'", cmd, flags,
                    tu_env("PH_SOURCE_DIR"), file);
    if (rc != 0)
        fail_msg("%s %s %s failed (exit %d):\n%s", cmd, flags, file, rc, out);
    free(out);
}

static char *example(void)
{
    return tu_fmt("%s/tests/sdk/uses_every_macro.c", tu_env("PH_SOURCE_DIR"));
}

static void test_header_alone_c(void **state)
{
    (void)state;
    const char *stds[] = {"c99", "c11", "gnu99"};
    for (size_t i = 0; i < 3; i++) {
        char *flags = tu_fmt("-std=%s -pedantic -Werror -Wall -Wextra", stds[i]);
        compiles("cc", flags, only_c);
        if (have("clang"))
            compiles("clang", flags, only_c);
        free(flags);
    }
}

static void test_every_macro_c99(void **state)
{
    (void)state;
    char *file = example();
    const char *flags = "-std=c99 -pedantic -Werror -Wall -Wextra -Wshadow -Wstrict-prototypes "
                        "-Wconversion";
    compiles("cc", flags, file);
    if (have("clang"))
        compiles("clang", flags, file);
    free(file);
}

static void test_header_alone_cxx(void **state)
{
    (void)state;
    if (!have("c++"))
        skip();
    compiles("c++", "-x c++ -std=c++11 -pedantic -Werror -Wall -Wextra", only_c);
    compiles("c++", "-x c++ -std=c++17 -pedantic -Werror -Wall -Wextra", only_c);
}

static void test_every_macro_cxx(void **state)
{
    (void)state;
    if (!have("c++"))
        skip();
    char *file = example();
    /* GNU C++ accepts compound literals; designators must follow declaration order. */
    compiles("c++", "-x c++ -std=gnu++20 -Werror -Wall", file);
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_alone_c),
        cmocka_unit_test(test_every_macro_c99),
        cmocka_unit_test(test_header_alone_cxx),
        cmocka_unit_test(test_every_macro_cxx),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
