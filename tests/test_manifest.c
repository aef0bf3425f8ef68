/* manifest.c: package.ini parsing, its error messages, and discovery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "ini.h"
#include "manifest.h"
#include "testutil.h"

typedef tu_dir_fixture fixture;
#define setup tu_dir_setup
#define teardown tu_dir_teardown

static ph_manifest *load_ok(fixture *f, const char *text)
{
    char *path = tu_write(f->dir, "pkg/package.ini", text);
    ph_manifest *m = NULL;
    if (ph_manifest_load(path, &m) != 0)
        fail_msg("manifest should load: %s", ph_error_last());
    free(path);
    return m;
}

/* Expects `code` and a message starting "<path>:<line>: " (or "<path>: ") containing `msg`. */
static void load_bad(fixture *f, const char *text, int code, int line, const char *msg)
{
    char *path = tu_write(f->dir, "pkg/package.ini", text);
    ph_manifest *m = (ph_manifest *)1;
    ph_error_clear();
    assert_int_equal(ph_manifest_load(path, &m), code);
    assert_null(m);
    char *want = line ? tu_fmt("%s:%d: ", path, line) : tu_fmt("%s: ", path);
    if (strncmp(ph_error_last(), want, strlen(want)) != 0)
        fail_msg("expected '%s' to start with '%s'", ph_error_last(), want);
    assert_true(tu_contains(ph_error_last(), msg));
    free(want);
    free(path);
}

static void test_minimal(void **state)
{
    fixture *f = *state;
    ph_manifest *m = load_ok(f, "[package]\nname = notes\nversion = 1.2.0\n");
    char *dir = realpath(f->dir, NULL);
    char *want = tu_fmt("%s/pkg", dir);
    assert_string_equal(m->dir, want);
    free(want);
    want = tu_fmt("%s/pkg/package.ini", dir);
    assert_string_equal(m->path, want);
    free(want);
    want = tu_fmt("%s/pkg/notes.so", dir);
    assert_string_equal(m->library, want);
    free(want);
    assert_string_equal(m->name, "notes");
    assert_string_equal(m->version_text, "1.2.0");
    assert_int_equal(m->version.major, 1);
    assert_int_equal(m->version.minor, 2);
    assert_null(m->description);
    assert_int_equal(m->abi, 1);
    assert_false(m->disable_crud);
    assert_int_equal(m->n_requires + m->n_optional + m->n_conflicts + m->n_params, 0);
    assert_false(ph_manifest_depends_on(m, "auth"));
    ph_manifest_free(m);
    ph_manifest_free(NULL);
    free(dir);
}

static void test_full(void **state)
{
    fixture *f = *state;
    ph_manifest *m = load_ok(f, "; a package\n"
                                "[package]\n"
                                "name = blog-2\n"
                                "version = 2.0.0-rc.1+build.7\n"
                                "description = Keeps short; notes ; really\n"
                                "abi = 1\n"
                                "library = lib/libblog.so\n"
                                "disable_crud = yes\n"
                                "[requires]\n"
                                "auth = ^1.0\n"
                                "db_tools = >=1.0, <2\n"
                                "[optional]\n"
                                "search = *\n"
                                "[conflicts]\n"
                                "oldblog = <3\n"
                                "[parameters]\n"
                                "page_size = 20\n"
                                "title =\n");
    char *dir = realpath(f->dir, NULL);
    char *want = tu_fmt("%s/pkg/lib/libblog.so", dir);
    assert_string_equal(m->library, want);
    free(want);
    free(dir);
    assert_string_equal(m->name, "blog-2");
    assert_string_equal(m->version_text, "2.0.0-rc.1+build.7");
    assert_string_equal(m->version.pre, "rc.1");
    assert_string_equal(m->description, "Keeps short; notes");
    assert_true(m->disable_crud);
    assert_int_equal(m->n_requires, 2);
    assert_string_equal(m->requires[0].name, "auth");
    assert_string_equal(m->requires[0].range.text, "^1.0");
    assert_int_equal(m->requires[0].line, 10);
    assert_string_equal(m->requires[1].name, "db_tools");
    assert_int_equal(m->requires[1].line, 11);
    assert_int_equal(m->requires[1].range.n, 2);
    assert_int_equal(m->n_optional, 1);
    assert_string_equal(m->optional[0].name, "search");
    assert_int_equal(m->optional[0].range.n, 0);
    assert_int_equal(m->n_conflicts, 1);
    assert_string_equal(m->conflicts[0].name, "oldblog");
    assert_int_equal(m->conflicts[0].line, 15);
    assert_int_equal(m->n_params, 2);
    assert_string_equal(m->params[0].key, "page_size");
    assert_string_equal(m->params[0].value, "20");
    assert_int_equal(m->params[0].line, 17);
    assert_string_equal(m->params[1].key, "title");
    assert_string_equal(m->params[1].value, "");
    assert_true(ph_manifest_depends_on(m, "auth"));
    assert_true(ph_manifest_depends_on(m, "search"));
    assert_false(ph_manifest_depends_on(m, "oldblog"));
    assert_false(ph_manifest_depends_on(m, "nobody"));
    ph_manifest_free(m);

    m = load_ok(f, "[package]\nname = x\nversion = 0.1.0\nlibrary = /opt/x.so\nabi = 3\n");
    assert_string_equal(m->library, "/opt/x.so");
    assert_int_equal(m->abi, 3); /* checked against the host by the resolver */
    ph_manifest_free(m);
}

static void test_required_fields(void **state)
{
    fixture *f = *state;
    load_bad(f, "[package]\nversion = 1.0.0\n", PH_EMANIFEST, 0,
             "[package] has no 'name'; add name = <package name>");
    load_bad(f, "[package]\nname = x\n", PH_EMANIFEST, 0,
             "[package] has no 'version'; add a semantic version such as version = 1.0.0");
    load_bad(f, "", PH_EMANIFEST, 0, "[package] has no 'name'");
}

static void test_bad_fields(void **state)
{
    fixture *f = *state;
    load_bad(f, "[package]\nname = my.pkg\nversion = 1.0.0\n", PH_EMANIFEST, 2,
             "'name' in [package]: invalid package name 'my.pkg': '.' is not allowed; use "
             "lowercase letters, digits, '_' and '-', starting with a letter (names are used in "
             "URLs and addresses)");
    load_bad(f, "[package]\nname = Notes\n", PH_EMANIFEST, 2,
             "'name' in [package]: invalid package name 'Notes': it must start with a lowercase "
             "letter");
    load_bad(f, "[package]\nname =\n", PH_EMANIFEST, 2,
             "'name' in [package]: the package name is empty");
    load_bad(f, "[package]\nname = x\nversion = 1.0\n", PH_EMANIFEST, 3,
             "'version' in [package]: invalid version '1.0': expected MAJOR.MINOR.PATCH such as "
             "1.2.3, found 2 parts");
    load_bad(f, "[package]\nname = x\nversion = 1.0.01\n", PH_EMANIFEST, 3,
             "'version' in [package]: invalid version '1.0.01': patch version '01' has a leading "
             "zero");
    load_bad(f, "[package]\nname = x\nversion = 1.0.0\nabi = two\n", PH_EMANIFEST, 4,
             "'abi' in [package] must be a positive integer such as 1, not 'two'");
    load_bad(f, "[package]\nabi = 0\n", PH_EMANIFEST, 2, "not '0'");
    load_bad(f, "[package]\nabi = +1\n", PH_EMANIFEST, 2, "not '+1'");
    load_bad(f, "[package]\nabi = 99999999999\n", PH_EMANIFEST, 2, "not '99999999999'");
    load_bad(f, "[package]\nlibrary =\n", PH_EMANIFEST, 2,
             "'library' in [package] is empty; remove the line to use <name>.so, or name the file");
    load_bad(f, "[package]\ndisable_crud = perhaps\n", PH_EMANIFEST, 2,
             "'disable_crud' in [package] must be true or false, not 'perhaps'");
    load_bad(f, "[package]\nname = x\nvesion = 1.0.0\n", PH_EMANIFEST, 3,
             "unknown key 'vesion' in [package]; known keys: name, version, description, abi, "
             "library, disable_crud");
    load_bad(f, "[package]\nname = x\n[dependencies]\n", PH_EMANIFEST, 3,
             "unknown section [dependencies]; known sections: [package], [requires], "
             "[optional], [conflicts], [provides], [parameters], [limits]");
    load_bad(f, "name = x\n", PH_EMANIFEST, 1,
             "'name' is outside any section; put it under one of [package], [requires]");
    load_bad(f, "[package]\nname = x\nname = y\n", PH_EMANIFEST, 3,
             "'name' is set twice in [package] (first on line 2); keep one");
}

/* [package] metadata (issue 14 item 6): kept as written, checked for shape. */
static void test_metadata(void **state)
{
    fixture *f = *state;
    ph_manifest *m = load_ok(f, "[package]\nname = x\nversion = 1.0.0\n");
    assert_string_equal(m->kind, "application");
    assert_null(m->author);
    assert_null(m->license);
    ph_manifest_free(m);
    m = load_ok(f, "[package]\nname = x\nversion = 1.0.0\nauthor = Ada Lovelace\n"
                   "url = https://example.org/x\nlicense = (MIT OR Apache-2.0) AND "
                   "GPL-2.0-or-later WITH Classpath-exception-2.0\nsummary = Does x\n"
                   "kind = service\n");
    assert_string_equal(m->author, "Ada Lovelace");
    assert_string_equal(m->url, "https://example.org/x");
    assert_string_equal(m->license,
                        "(MIT OR Apache-2.0) AND GPL-2.0-or-later WITH Classpath-exception-2.0");
    assert_string_equal(m->summary, "Does x");
    assert_string_equal(m->kind, "service");
    ph_manifest_free(m);
    m = load_ok(f, "[package]\nname = x\nversion = 1.0.0\nlicense = LicenseRef-mine\n");
    ph_manifest_free(m);
    m = load_ok(f, "[package]\nname = x\nversion = 1.0.0\nlicense = GPL-2.0+\n");
    ph_manifest_free(m);
    load_bad(f, "[package]\nname = x\nversion = 1.0.0\nkind = library\n", PH_EMANIFEST, 4,
             "'kind' in [package] must be application (mounted, used by people) or service "
             "(used by other packages), not 'library'");
    load_bad(f, "[package]\nname = x\nlicense = MIT or BSD-3-Clause\n", PH_EMANIFEST, 3,
             "'license' in [package] must be an SPDX license expression such as MIT or "
             "'Apache-2.0 OR MIT', not 'MIT or BSD-3-Clause': identifiers are joined by AND, OR "
             "or WITH (upper case)");
    load_bad(f, "[package]\nlicense = (MIT OR Apache-2.0\n", PH_EMANIFEST, 2,
             "not '(MIT OR Apache-2.0': a '(' is not closed");
    load_bad(f, "[package]\nlicense = MIT AND\n", PH_EMANIFEST, 2,
             "not 'MIT AND': a license identifier is missing");
    load_bad(f, "[package]\nlicense = GPL/MIT\n", PH_EMANIFEST, 2, "not 'GPL/MIT'");
    load_bad(f, "[package]\nurl = example.org\n", PH_EMANIFEST, 2,
             "'url' in [package] must be an http:// or https:// address such as "
             "https://example.org/notes, not 'example.org'");
    load_bad(f, "[package]\nurl = https://\n", PH_EMANIFEST, 2, "not 'https://'");
    load_bad(f, "[package]\nauthor =\n", PH_EMANIFEST, 2,
             "'author' in [package] is empty; remove the line or fill it");
    char *text = tu_fmt("[package]\nsummary = %0130d\n", 0);
    load_bad(f, text, PH_EMANIFEST, 2,
             "'summary' in [package] is 130 characters; keep it to one line of at most 120");
    free(text);
    load_bad(f, "[package]\nlicence = MIT\n", PH_EMANIFEST, 2,
             "unknown key 'licence' in [package]; known keys: name, version, description, abi, "
             "library, disable_crud, manager, author, url, license, summary, kind");
}

/* [endpoint NAME] declarations and [hook ENDPOINT [ITEM]] contributions (issue 14 item 3). */
static void test_extension_points(void **state)
{
    fixture *f = *state;
    ph_manifest *m = load_ok(f, "[package]\nname = x\nversion = 1.0.0\n[endpoint menu]\n"
                                "label = string\norder = int64?\n[hook menu]\nlabel = Home\n"
                                "[hook menu  second ]\nlabel = Two\norder = 2\n");
    assert_int_equal(m->n_endpoints, 1);
    const ph_endpoint *e = ph_manifest_endpoint(m, "menu");
    assert_non_null(e);
    assert_int_equal(e->line, 4);
    assert_int_equal(e->n_params, 2);
    assert_string_equal(e->params[1].key, "order");
    assert_string_equal(e->params[1].value, "int64?");
    assert_null(ph_manifest_endpoint(m, "footer"));
    assert_int_equal(m->n_hooks, 2);
    assert_null(m->hooks[0].item);
    assert_int_equal(m->hooks[0].line, 7);
    assert_string_equal(m->hooks[1].item, "second");
    assert_int_equal(m->hooks[1].n_values, 2);
    assert_int_equal(m->hooks[1].values[1].line, 11);
    ph_manifest_free(m);
    load_bad(f, "[package]\nname = x\n[endpoint menu]\norder = integer\n", PH_EMANIFEST, 4,
             "'order' in [endpoint menu] has type 'integer'; the types are string, int64, "
             "double and bool, with '?' after one for an optional parameter (order = int64?)");
    load_bad(f, "[package]\n[endpoint menu]\nlabel = ?\n", PH_EMANIFEST, 3, "has type '?'");
    load_bad(f, "[package]\n[endpoint]\n", PH_EMANIFEST, 2,
             "[endpoint] is not a section; write [endpoint NAME]");
    load_bad(f, "[package]\n[endpoint a b]\n", PH_EMANIFEST, 2,
             "[endpoint a b] is not a section; write [endpoint NAME]");
    load_bad(f, "[package]\n[hook menu a b]\n", PH_EMANIFEST, 2,
             "[hook menu a b] is not a section; write [hook ENDPOINT] or [hook ENDPOINT ITEM]");
    load_bad(f, "[package]\n[hook Menu]\n", PH_EMANIFEST, 2,
             "[hook Menu]: invalid endpoint name 'Menu'");
    load_bad(f, "[package]\n[endpoint menu]\n[endpoint menu]\n", PH_EMANIFEST, 3,
             "[endpoint menu] is declared twice (first on line 2)");
    load_bad(f, "[package]\n[hook menu]\nlabel = a\n[hook menu]\n", PH_EMANIFEST, 4,
             "[hook menu] is given twice (first on line 2); give each item its own name: "
             "[hook menu ITEM]");
    load_bad(f, "[package]\n[endpoint menu]\nLabel = string\n", PH_EMANIFEST, 3,
             "[endpoint menu]: invalid parameter name 'Label'");
}

static void test_bad_dependencies(void **state)
{
    fixture *f = *state;
    load_bad(f, "[package]\nname = x\nversion = 1.0.0\n[requires]\nauth = ^1.x.2\n", PH_EMANIFEST,
             5, "'auth' in [requires]: invalid range '^1.x.2': '2' follows a wildcard");
    load_bad(f, "[package]\nname = x\nversion = 1.0.0\n[optional]\nauth =\n", PH_EMANIFEST, 5,
             "'auth' in [optional]: invalid range '': empty; write '*' for any version");
    load_bad(f, "[conflicts]\nOld.Pkg = *\n", PH_EMANIFEST, 2,
             "[conflicts]: invalid package name 'Old.Pkg'");
    load_bad(f, "[package]\nname = x\nversion = 1.0.0\n[requires]\nx = *\n", PH_EMANIFEST, 5,
             "'x' in [requires] names the package itself; remove it");
    load_bad(f,
             "[package]\nname = x\nversion = 1.0.0\n[requires]\nauth = ^1\n[optional]\n"
             "auth = ^1\n",
             PH_EMANIFEST, 7, "'auth' is in both [requires] (line 5) and [optional]; keep one");
    load_bad(f,
             "[package]\nname = x\nversion = 1.0.0\n[optional]\nauth = ^1\n[conflicts]\n"
             "auth = <1\n",
             PH_EMANIFEST, 7, "'auth' is in both [optional] (line 5) and [conflicts]; keep one");
    load_bad(f, "[requires]\nauth = ^1\n[requires]\nauth = ^2\n", PH_EMANIFEST, 4,
             "'auth' is set twice in [requires] (first on line 2); keep one");
}

/* [provides]: a capability with the version provided; never the package's own name. */
static void test_provides(void **state)
{
    fixture *f = *state;
    ph_manifest *m = load_ok(f, "[package]\nname = sqlite_store\nversion = 1.0.0\n[provides]\n"
                                "sql-store = 1.4.0\n");
    assert_int_equal(m->n_provides, 1);
    assert_string_equal(m->provides[0].name, "sql-store");
    assert_string_equal(m->provides[0].version_text, "1.4.0");
    assert_int_equal(m->provides[0].version.minor, 4);
    assert_ptr_equal(ph_manifest_provides(m, "sql-store"), &m->provides[0]);
    assert_null(ph_manifest_provides(m, "sqlite_store"));
    ph_manifest_free(m);
    load_bad(f, "[package]\nname = x\nversion = 1.0.0\n[provides]\nx = 1.0.0\n", PH_EMANIFEST, 5,
             "'x' in [provides] is the package's own name; a package is required by its name "
             "already: remove the line");
    load_bad(f, "[package]\nname = x\nversion = 1.0.0\n[provides]\nstore = ^1\n", PH_EMANIFEST, 5,
             "'store' in [provides] (the version of store it provides): invalid version '^1'");
    load_bad(f,
             "[package]\nname = x\nversion = 1.0.0\n[provides]\nstore = 1.0.0\n[conflicts]\n"
             "store = *\n",
             PH_EMANIFEST, 7,
             "'store' is in both [provides] (line 5) and [conflicts]; a package cannot conflict "
             "with what it provides: keep one");
    load_bad(f, "[package]\nname = x\nversion = 1.0.0\n[provides]\nBad.Name = 1.0.0\n",
             PH_EMANIFEST, 5, "[provides]: invalid capability name 'Bad.Name'");
}

/* Issue 9, failure 1: the package.ini variants; one reader, one clear error each. */
static void test_hostile_lines(void **state)
{
    fixture *f = *state;
    load_bad(f, "[package]\nname = a\n\r[x=y]\nversion = 1.0.0\n", PH_EMANIFEST, 3,
             "line contains a carriage return (CR) at column 1 that does not end the line; save "
             "the file with LF or CRLF line ends");
    load_bad(f, "[package]\nversion = 1.0.0\n\r[package]\nversion = 1.0.1\n", PH_EMANIFEST, 3,
             "carriage return (CR) at column 1");
    load_bad(f, " \xEF\xBB\xBF[package]\nname = a\nversion = 1.0.0\n", PH_EMANIFEST, 1,
             "line contains a byte order mark (U+FEFF) at column 2; it is allowed only at the "
             "very start of the file; remove it");
    load_bad(f, "[package]\nname = a\n\xEF\xBB\xBF[requires]\n", PH_EMANIFEST, 3,
             "byte order mark (U+FEFF) at column 1");
    load_bad(f, "name = a\n[package]\nversion = 1.0.0\n", PH_EMANIFEST, 1,
             "'name' is outside any section; put it under one of [package], [requires], "
             "[optional], [conflicts], [provides], [parameters], [limits]");
    load_bad(f, "[package]\nname = a\n[x=y]\nversion = 1.0.0\n", PH_EMANIFEST, 3,
             "unknown section [x=y]");
    load_bad(f,
             "[package]\nname = a\nversion = 1.0.0\n[requires]\nb = ^1\n  c = ^1\n[package]\n"
             "version = 2.0.0\n",
             PH_EMANIFEST, 8, "'version' is set twice in [package] (first on line 3); keep one");
    load_bad(f, "[package]\nname = a\ndescription = caf\xC3\n", PH_EMANIFEST, 3,
             "line is not valid UTF-8 (byte 0xC3 at column 18)");
    /* A BOM first and CRLF line ends are fine. */
    ph_manifest *m = load_ok(f, "\xEF\xBB\xBF[package]\r\nname = a\r\nversion = 1.0.0\r\n");
    assert_string_equal(m->name, "a");
    assert_string_equal(m->version_text, "1.0.0");
    ph_manifest_free(m);
}

static void test_format_errors(void **state)
{
    fixture *f = *state;
    char *longv = calloc(1, PH_INI_MAX_LINE + 1);
    memset(longv, 'd', PH_INI_MAX_LINE);
    char *text = tu_fmt("[package]\nname = x\nversion = 1.0.0\ndescription = %s\n", longv);
    char *msg = tu_fmt("line is %d characters long, longer than the %d allowed",
                       PH_INI_MAX_LINE + 14, PH_INI_MAX_LINE);
    load_bad(f, text, PH_EMANIFEST, 4, msg);
    free(msg);
    free(text);
    free(longv);
    load_bad(f, "[package\n", PH_EMANIFEST, 1, "section header has no closing ']'");
    load_bad(f, "[package]\nname\n", PH_EMANIFEST, 2, "expected 'key = value' or '[section]'");

    char *path = tu_fmt("%s/none/package.ini", f->dir);
    ph_manifest *m = NULL;
    assert_int_equal(ph_manifest_load(path, &m), PH_EIO);
    assert_true(tu_contains(ph_error_last(), "cannot read: No such file or directory"));
    assert_null(m);
    free(path);
}

/* [limits]: a time limit for every method of the package and one per method. */
static void test_limits(void **state)
{
    fixture *f = *state;
    ph_manifest *m = load_ok(f, "[package]\nname = r\nversion = 1.0.0\n[limits]\n"
                                "call_timeout = 5\nreport.build = 120\nreport.peek = 0.25\n");
    assert_int_equal(ph_manifest_call_timeout(m, "report", "build"), 120000);
    assert_int_equal(ph_manifest_call_timeout(m, "report", "peek"), 250);
    assert_int_equal(ph_manifest_call_timeout(m, "report", "other"), 5000);
    assert_int_equal(ph_manifest_call_timeout(m, "rep", "ort.build"), 5000);
    ph_manifest_free(m);
    m = load_ok(f, "[package]\nname = r\nversion = 1.0.0\n");
    assert_int_equal(ph_manifest_call_timeout(m, "report", "build"), 0);
    ph_manifest_free(m);
    load_bad(f, "[package]\nname = r\nversion = 1.0.0\n[limits]\nbuild = 3\n", PH_EMANIFEST, 5,
             "unknown key 'build' in [limits]; known keys: call_timeout (every method), "
             "ACTOR.METHOD (one method) and stop_timeout (stop())");
    load_bad(f, "[package]\nname = r\nversion = 1.0.0\n[limits]\nreport.build = soon\n",
             PH_EMANIFEST, 5,
             "'report.build' in [limits] must be seconds from 0.001 to 86400 (such as 30 or "
             "2.5), not 'soon'");
    load_bad(f, "[package]\nname = r\nversion = 1.0.0\n[limits]\ncall_timeout = 0\n", PH_EMANIFEST,
             5, "not '0'");
}

static void write_pkg(const char *dir, const char *sub, const char *name, const char *version)
{
    char *file = tu_fmt("%s/package.ini", sub);
    char *text = tu_fmt("[package]\nname = %s\nversion = %s\n", name, version);
    free(tu_write(dir, file, text));
    free(text);
    free(file);
}

static void test_discover(void **state)
{
    fixture *f = *state;
    char *a = tu_fmt("%s/a", f->dir), *b = tu_fmt("%s/b", f->dir);
    char *missing = tu_fmt("%s/missing", f->dir);
    write_pkg(a, "zeta", "zeta", "1.0.0");
    write_pkg(a, "alpha", "alpha", "1.0.0");
    write_pkg(a, "Mid", "mid", "2.0.0"); /* sorted bytewise: "Mid" < "alpha" */
    write_pkg(a, ".hidden", "hidden", "1.0.0");
    free(tu_write(a, "notpkg/readme.txt", "just a directory\n"));
    free(tu_write(a, "broken/package.ini", "[package]\nname = broken\nversion = one\n"));
    free(tu_write(a, "file.txt", "not a directory\n"));
    write_pkg(b, ".", "rootpkg", "0.1.0");   /* the directory itself is a package */
    write_pkg(b, "alpha", "alpha", "1.1.0"); /* same name as a/alpha: kept, resolver refuses */

    char *dirs[] = {a, b, missing, a /* repeated: read once */};
    ph_manifest_set set;
    assert_int_equal(ph_manifest_discover(dirs, 4, &set), 0);
    assert_int_equal(set.n, 5);
    assert_string_equal(set.items[0]->name, "mid");
    assert_string_equal(set.items[1]->name, "alpha");
    assert_string_equal(set.items[1]->version_text, "1.0.0");
    assert_string_equal(set.items[2]->name, "zeta");
    assert_string_equal(set.items[3]->name, "rootpkg");
    assert_string_equal(set.items[4]->name, "alpha");
    assert_string_equal(set.items[4]->version_text, "1.1.0");
    assert_int_equal(set.n_problems, 2);
    char *want =
        tu_fmt("%s/broken/package.ini:3: 'version' in [package]: invalid version 'one'", a);
    assert_true(tu_contains(set.problems[0], want));
    free(want);
    want = tu_fmt("package directory '%s' does not exist; create it or fix package_dirs in the "
                  "configuration",
                  missing);
    assert_true(tu_contains(set.problems[1], want));
    free(want);
    ph_manifest_set_free(&set);
    ph_manifest_set_free(&set); /* zeroed: harmless */

    /* A file given as a directory, and no directories at all. */
    char *file = tu_fmt("%s/file.txt", a);
    char *dirs2[] = {file};
    assert_int_equal(ph_manifest_discover(dirs2, 1, &set), 0);
    assert_int_equal(set.n, 0);
    assert_int_equal(set.n_problems, 1);
    want = tu_fmt("package directory '%s' is not a directory", file);
    assert_true(tu_contains(set.problems[0], want));
    free(want);
    ph_manifest_set_free(&set);
    assert_int_equal(ph_manifest_discover(NULL, 0, &set), 0);
    assert_int_equal(set.n + set.n_problems, 0);
    ph_manifest_set_free(&set);

    free(file);
    free(a);
    free(b);
    free(missing);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_minimal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_required_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extension_points, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_dependencies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discover, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
