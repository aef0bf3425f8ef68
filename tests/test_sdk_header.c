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

/*
 * PH_METHOD checks the C function against its declared types when the
 * package compiles: each row is a function and a declaration that do not
 * match, and each must fail the build naming the function.
 */
typedef struct sig_case {
    const char *fn;   /* "RET f(ph_ctx *ctx, ...)" without the body */
    const char *decl; /* the ph_method row */
} sig_case;

static const sig_case wrong[] = {
    {"double f(ph_ctx *c, const char *x)", "PH_METHOD(f, PH_I64, PH_ARG(\"x\", PH_I64))"},
    {"int64_t f(ph_ctx *c, int64_t a)", "PH_METHOD(f, PH_F64, PH_ARG(\"a\", PH_I64))"},
    {"int64_t f(ph_ctx *c, int64_t a)", "PH_METHOD(f, PH_I64, PH_ARG(\"a\", PH_F64))"},
    {"int64_t f(ph_ctx *c, int64_t a)", "PH_METHOD(f, PH_I64, PH_ARG(\"a\", PH_STR))"},
    {"int64_t f(ph_ctx *c, int64_t a)", "PH_METHOD(f, PH_I64, PH_ARG(\"a\", PH_BOOL))"},
    {"int64_t f(ph_ctx *c, int64_t a)", "PH_METHOD(f, PH_I64, PH_ARG(\"a\", PH_JSON))"},
    {"int64_t f(ph_ctx *c, int64_t a)", "PH_METHOD(f, PH_I64, PH_ARG(\"a\", PH_I64), "
                                        "PH_ARG(\"b\", PH_I64))"},
    {"int64_t f(ph_ctx *c, int64_t a, int64_t b)", "PH_METHOD(f, PH_I64, PH_ARG(\"a\", PH_I64))"},
    {"int64_t f(ph_ctx *c, int64_t a)", "PH_METHOD0(f, PH_I64)"},
    {"int64_t f(ph_ctx *c)", "PH_METHOD(f, PH_I64, PH_ARG(\"a\", PH_I64))"},
    {"char *f(ph_ctx *c)", "PH_METHOD0(f, PH_JSON)"},
    {"ph_json *f(ph_ctx *c)", "PH_METHOD0(f, PH_STR)"},
    {"const char *f(ph_ctx *c)", "PH_METHOD0(f, PH_STR)"},
    {"void f(ph_ctx *c)", "PH_METHOD0(f, PH_I64)"},
    {"int64_t f(ph_ctx *c)", "PH_METHOD0(f, PH_VOID)"},
    {"int f(ph_ctx *c)", "PH_METHOD0(f, PH_I64)"},
    {"int64_t f(ph_ctx *c)", "PH_METHOD0(f, PH_BOOL)"},
    {"float f(ph_ctx *c)", "PH_METHOD0(f, PH_F64)"},
    {"int64_t f(ph_ctx *c, char *s)", "PH_METHOD(f, PH_I64, PH_ARG(\"s\", PH_STR))"},
    {"int64_t f(ph_ctx *c, ph_json *j)", "PH_METHOD(f, PH_I64, PH_ARG(\"j\", PH_JSON))"},
    {"int64_t f(ph_ctx *c, int32_t a)", "PH_METHOD(f, PH_I64, PH_ARG(\"a\", PH_I64))"},
    {"int64_t f(int64_t a)", "PH_METHOD(f, PH_I64, PH_ARG(\"a\", PH_I64))"},
    {"int64_t f(ph_ctx *c, const char *s, int64_t a)",
     "PH_METHOD_EX(\"g\", f, PH_I64, 0, \"doc\", PH_ARG(\"a\", PH_I64), PH_ARG(\"s\", PH_STR))"},
    {"int64_t f(ph_ctx *c, double d)", "PH_METHOD0_EX(\"g\", f, PH_I64, 0, \"doc\")"},
};

static const sig_case right[] = {
    {"int64_t f(ph_ctx *c, int64_t a, int64_t b)",
     "PH_METHOD(f, PH_INT, PH_ARG(\"a\", PH_I64), PH_ARG(\"b\", PH_INT))"},
    {"char *f(ph_ctx *c, const char *x, const ph_json *j, double d, int b)",
     "PH_METHOD(f, PH_STR, PH_ARG(\"x\", PH_STR), PH_ARG(\"j\", PH_JSON), "
     "PH_ARG(\"d\", PH_F64), PH_ARG(\"b\", PH_BOOL))"},
    {"void f(ph_ctx *c)", "PH_METHOD0(f, PH_VOID)"},
    {"ph_json *f(ph_ctx *c, const char *t)",
     "PH_METHOD_EX(\"g\", f, PH_JSON, PH_ADMIN, \"doc\", PH_ARG(\"t\", PH_TEXT))"},
};

static int sig_compiles(const char *cc, const sig_case *k, char **out)
{
    char *src = tu_fmt("#include <plughost/sdk.h>\n"
                       "static %s { (void)0; %s }\n"
                       "static const ph_method m[] = { %s };\n"
                       "PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR(\"a\", m)));\n",
                       k->fn, strncmp(k->fn, "void", 4) ? "return 0;" : "", k->decl);
    char *file = tu_write(tmp, "sig.c", src);
    int rc = tu_run(out,
                    "%s -std=c11 -Wall -Wno-unused-parameter -Werror -fsyntax-only "
                    "-DPH_PACKAGE_NAME='\"x\"' -DPH_PACKAGE_VERSION='\"1.0.0\"' "
                    "-I'%s/sdk/include' '%s' 2>&1",
                    cc, tu_env("PH_SOURCE_DIR"), file);
    free(src);
    free(file);
    return rc;
}

static void test_signature_checked_at_compile_time(void **state)
{
    (void)state;
    const char *ccs[] = {"cc", "clang"};
    for (size_t c = 0; c < 2; c++) {
        if (c && !have("clang"))
            continue;
        for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
            char *out = NULL;
            if (sig_compiles(ccs[c], &wrong[i], &out) == 0)
                fail_msg("%s accepted %s declared as %s", ccs[c], wrong[i].fn, wrong[i].decl);
            if (!strstr(out, "ph_signature_of_f_does_not_match_its_declared_types"))
                fail_msg("%s: the error for %s / %s does not name the method:\n%s", ccs[c],
                         wrong[i].fn, wrong[i].decl, out);
            free(out);
        }
        for (size_t i = 0; i < sizeof right / sizeof right[0]; i++) {
            char *out = NULL;
            if (sig_compiles(ccs[c], &right[i], &out) != 0)
                fail_msg("%s refused %s declared as %s:\n%s", ccs[c], right[i].fn, right[i].decl,
                         out);
            free(out);
        }
    }
}

/*
 * A K&R definition has no prototype, so the signature check above accepts
 * it under any declaration: the package build flags (plughost_add_package()
 * and pkg-config's package_cflags) refuse it instead.
 */
static const char kr_source[] =
    "#include <plughost/sdk.h>\n"
    "static int64_t half(ctx, x) ph_ctx *ctx; double x; { (void)ctx; return (int64_t)(x / 2); }\n"
    "static const ph_method m[] = { PH_METHOD(half, PH_I64, PH_ARG(\"x\", PH_I64)) };\n"
    "PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR(\"kr\", m)));\n";

static void test_old_style_definition_refused(void **state)
{
    (void)state;
    char *file = tu_write(tmp, "kr.c", kr_source), *out = NULL;
    const char *defs = "-DPH_PACKAGE_NAME='\"kr\"' -DPH_PACKAGE_VERSION='\"1.0.0\"'";
    /* without the package flags it compiles: the hole the flags close */
    int rc = tu_run(&out, "cc -std=c11 -fsyntax-only %s -I'%s/sdk/include' '%s' 2>&1", defs,
                    tu_env("PH_SOURCE_DIR"), file);
    if (rc != 0)
        fail_msg("the K&R package should compile without the package flags:\n%s", out);
    free(out);
    /* pkg-config's package_cflags */
    rc = tu_run(&out,
                "cc -std=c11 -fsyntax-only $(PKG_CONFIG_PATH='%s' pkg-config "
                "--variable=package_cflags plughost) %s -I'%s/sdk/include' '%s' 2>&1",
                tu_env("PH_BUILD_DIR"), defs, tu_env("PH_SOURCE_DIR"), file);
    if (rc == 0 || !strstr(out, "old-style function definition") ||
        !strstr(out, "-Werror=old-style-definition"))
        fail_msg("package_cflags accepted a K&R definition (exit %d):\n%s", rc, out);
    free(out);
    /* plughost_add_package() */
    char *proj = tu_fmt("%s/krproj", tmp);
    tu_run(NULL, "mkdir -p '%s'", proj);
    free(tu_write(proj, "kr.c", kr_source));
    free(tu_write(proj, "package.ini", "[package]\nname = kr\nversion = 1.0.0\n"));
    char *lists = tu_fmt("cmake_minimum_required(VERSION 3.16)\nproject(kr C)\n"
                         "set(PLUGHOST_NO_INSTALL ON)\n"
                         "include_directories(%s/sdk/include)\n"
                         "include(%s/cmake/PlughostPackage.cmake)\n"
                         "plughost_add_package(kr SOURCES kr.c)\n",
                         tu_env("PH_SOURCE_DIR"), tu_env("PH_SOURCE_DIR"));
    free(tu_write(proj, "CMakeLists.txt", lists));
    rc = tu_run(&out, "cd '%s' && cmake -S . -B b >/dev/null 2>&1 && cmake --build b 2>&1", proj);
    if (rc == 0 || !strstr(out, "old-style function definition"))
        fail_msg("plughost_add_package() built a K&R definition (exit %d):\n%s", rc, out);
    free(out);
    free(lists);
    free(proj);
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_alone_c),
        cmocka_unit_test(test_every_macro_c99),
        cmocka_unit_test(test_header_alone_cxx),
        cmocka_unit_test(test_every_macro_cxx),
        cmocka_unit_test(test_signature_checked_at_compile_time),
        cmocka_unit_test(test_old_style_definition_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
