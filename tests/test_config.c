/* config.c: host.ini defaults, parsing, validation and the shared INI reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "ini.h"
#include "text.h"
#include "testutil.h"

typedef tu_dir_fixture fixture;
#define setup tu_dir_setup
#define teardown tu_dir_teardown

/* Writes host.ini with `text`, loads it, and expects success. */
static void load_ok(fixture *f, const char *text, ph_config *c)
{
    char *path = tu_write(f->dir, "host.ini", text);
    if (ph_config_load(path, c) != 0)
        fail_msg("config should load: %s", ph_error_last());
    free(path);
}

/* Loads `text` and expects `code` with "<path>:<line>: ...<msg>..." (line 0: "<path>: ..."). */
static void load_bad(fixture *f, const char *text, int code, int line, const char *msg)
{
    char *path = tu_write(f->dir, "host.ini", text);
    ph_config c;
    memset(&c, 0xAB, sizeof c);
    ph_error_clear();
    assert_int_equal(ph_config_load(path, &c), code);
    /* The message starts with the location and contains `msg`. */
    char *want = line ? tu_fmt("%s:%d: ", path, line) : tu_fmt("%s: ", path);
    if (strncmp(ph_error_last(), want, strlen(want)) != 0)
        fail_msg("expected '%s' to start with '%s'", ph_error_last(), want);
    assert_true(tu_contains(ph_error_last(), msg));
    /* Left freed and zeroed: freeing again is harmless. */
    assert_null(c.path);
    assert_null(c.instances);
    ph_config_free(&c);
    free(want);
    free(path);
}

static void test_defaults(void **state)
{
    (void)state;
    ph_config c;
    assert_int_equal(ph_config_defaults(&c), 0);
    char *cwd = getcwd(NULL, 0);
    char *data = tu_fmt("%s/data", cwd), *pk = tu_fmt("%s/packages", cwd);
    char *tok = tu_fmt("%s/data/admin.token", cwd);
    assert_null(c.path);
    assert_string_equal(c.base_dir, cwd);
    assert_string_equal(c.data_dir, data);
    assert_int_equal(c.n_package_dirs, 1);
    assert_string_equal(c.package_dirs[0], pk);
    assert_int_equal(c.log_level, PH_L_INFO);
    assert_true(c.reload);
    assert_false(c.strict);
    assert_string_equal(c.http.listen_addr, "127.0.0.1");
    assert_int_equal(c.http.port, 8901);
    assert_int_equal(c.http.threads, 4);
    assert_int_equal(c.http.max_body, 1024 * 1024);
    assert_int_equal(c.http.max_json_depth, 64);
    assert_int_equal(c.http.connection_timeout, 15);
    assert_int_equal(c.http.max_connections_per_ip, 64);
    assert_null(c.auth.token);
    assert_string_equal(c.auth.token_file, tok);
    assert_false(c.auth.require_token);
    assert_int_equal(c.n_instances, 0);
    assert_null(ph_config_instance(&c, "x"));
    ph_config_free(&c);
    ph_config_free(&c); /* zeroed: a second free is harmless */
    free(cwd);
    free(data);
    free(pk);
    free(tok);
}

static void test_full_file(void **state)
{
    fixture *f = *state;
    ph_config c;
    load_ok(f,
            "; comment\n"
            "# another comment\n"
            "[host]\n"
            "data_dir = var/data\n"
            "package_dirs = pk1, /abs/pk2 ,./pk3\n"
            "log_level = DEBUG\n"
            "reload = off\n"
            "strict = yes\n"
            "\n"
            "[http]\n"
            "  listen = 0.0.0.0:9000   ; inline comment\n"
            "  threads = 8\n"
            "max_body = 2M\n"
            "max_json_depth = 32\n"
            "connection_timeout = 30\n"
            "max_connections_per_ip = 10\n"
            "[auth]\n"
            "token = s3cret;not-a-comment;0123456789abcdef\n"
            "require_token = TRUE\n"
            "[instance blog]\n"
            "package = notes\n"
            "mount = /my-blog\n"
            "page_size = 50\n"
            "title = My notes\n"
            "[ instance  wiki ]\n"
            "enabled = false\n",
            &c);
    char *base = tu_fmt("%s", f->dir);
    char *want = tu_fmt("%s/var/data", base);
    assert_string_equal(c.base_dir, base);
    assert_string_equal(c.data_dir, want);
    free(want);
    assert_int_equal(c.n_package_dirs, 3);
    want = tu_fmt("%s/pk1", base);
    assert_string_equal(c.package_dirs[0], want);
    free(want);
    assert_string_equal(c.package_dirs[1], "/abs/pk2");
    want = tu_fmt("%s/pk3", base);
    assert_string_equal(c.package_dirs[2], want);
    free(want);
    assert_int_equal(c.log_level, PH_L_DEBUG);
    assert_false(c.reload);
    assert_true(c.strict);
    assert_string_equal(c.http.listen_addr, "0.0.0.0");
    assert_int_equal(c.http.port, 9000);
    assert_int_equal(c.http.threads, 8);
    assert_int_equal(c.http.max_body, 2 * 1024 * 1024);
    assert_int_equal(c.http.max_json_depth, 32);
    assert_int_equal(c.http.connection_timeout, 30);
    assert_int_equal(c.http.max_connections_per_ip, 10);
    assert_string_equal(c.auth.token, "s3cret;not-a-comment;0123456789abcdef");
    assert_true(c.auth.require_token);
    /* token_file follows data_dir when not set. */
    want = tu_fmt("%s/var/data/admin.token", base);
    assert_string_equal(c.auth.token_file, want);
    free(want);

    assert_int_equal(c.n_instances, 2);
    const ph_instance_conf *blog = ph_config_instance(&c, "blog");
    assert_non_null(blog);
    assert_string_equal(blog->package, "notes");
    assert_string_equal(blog->mount, "/my-blog");
    assert_true(blog->enabled);
    assert_int_equal(blog->line, 20);
    assert_int_equal(blog->n_params, 2);
    assert_string_equal(blog->params[0].key, "page_size");
    assert_string_equal(blog->params[0].value, "50");
    assert_int_equal(blog->params[0].line, 23);
    assert_string_equal(blog->params[1].key, "title");
    assert_string_equal(blog->params[1].value, "My notes");
    assert_int_equal(blog->params[1].line, 24);
    const ph_instance_conf *wiki = ph_config_instance(&c, "wiki");
    assert_non_null(wiki);
    assert_string_equal(wiki->package, "wiki");
    assert_string_equal(wiki->mount, "/wiki");
    assert_false(wiki->enabled);
    assert_int_equal(wiki->line, 25);
    assert_null(ph_config_instance(&c, "nope"));
    free(base);
    ph_config_free(&c);
}

static void test_empty_file_and_quirks(void **state)
{
    fixture *f = *state;
    ph_config c;
    load_ok(f, "", &c);
    assert_int_equal(c.http.port, 8901);
    char *want = tu_fmt("%s/data", f->dir);
    assert_string_equal(c.data_dir, want);
    free(want);
    ph_config_free(&c);

    /* UTF-8 BOM, CRLF line ends, token_file set explicitly, empty instance section. */
    load_ok(f, "\xEF\xBB\xBF[auth]\r\ntoken_file = /etc/ph.token\r\n[instance solo]\r\n", &c);
    assert_string_equal(c.auth.token_file, "/etc/ph.token");
    assert_int_equal(c.n_instances, 1);
    assert_int_equal(c.instances[0].line, 3);
    ph_config_free(&c);

    /* Relative config path: paths still resolve against its directory. */
    char *cwd = getcwd(NULL, 0);
    char *path = tu_write(f->dir, "sub/host.ini", "[host]\ndata_dir = d\n");
    free(path);
    assert_int_equal(chdir(f->dir), 0);
    assert_int_equal(ph_config_load("sub/host.ini", &c), 0);
    want = tu_fmt("%s/sub/d", f->dir);
    assert_string_equal(c.data_dir, want);
    assert_string_equal(c.path, "sub/host.ini");
    free(want);
    ph_config_free(&c);
    assert_int_equal(chdir(cwd), 0);
    free(cwd);
}

static void test_unknown_keys_and_sections(void **state)
{
    fixture *f = *state;
    load_bad(f, "[http]\nlisten = 127.0.0.1:80\n\n\n\n\nlistne = x\n", PH_ECONFIG, 7,
             "unknown key 'listne' in [http]; known keys: listen, threads, max_body, "
             "max_json_depth, connection_timeout, max_connections_per_ip, rate_limit");
    load_bad(f, "[host]\ndatadir = x\n", PH_ECONFIG, 2,
             "unknown key 'datadir' in [host]; known keys: data_dir, package_dirs, log_level, "
             "log_format, reload, strict");
    load_bad(f, "[host]\nlog_format = xml\n", PH_ECONFIG, 2,
             "'log_format' in [host] must be one of text, json, journal, not 'xml'");
    load_bad(f, "[auth]\npassword = x\n", PH_ECONFIG, 2,
             "unknown key 'password' in [auth]; known keys: token, token_file, require_token");
    load_bad(f, "[host]\n[htpp]\n", PH_ECONFIG, 2,
             "unknown section [htpp]; known sections: [host], [http], [limits], [auth], [trust], "
             "[provides], [instance NAME]");
    load_bad(f, "[instances blog]\n", PH_ECONFIG, 1, "unknown section [instances blog]");
    load_bad(f, "threads = 4\n[http]\n", PH_ECONFIG, 1,
             "'threads' is outside any section; put it under one of [host], [http], [limits], "
             "[auth], [trust], [provides], [instance NAME]");
}

/* [limits]: defaults, values and the errors a user reads. */
static void test_limits(void **state)
{
    fixture *f = *state;
    ph_config c;
    load_ok(f, "[http]\nlisten = 127.0.0.1:8901\n", &c);
    assert_int_equal(c.limits.call_timeout_ms, 30000);
    assert_int_equal(c.limits.max_concurrent_calls, 16);
    assert_int_equal(c.limits.load_timeout_ms, 10000);
    ph_config_free(&c);
    load_ok(f, "[limits]\ncall_timeout = 2.5\nmax_concurrent_calls = 3\n", &c);
    assert_int_equal(c.limits.call_timeout_ms, 2500);
    assert_int_equal(c.limits.max_concurrent_calls, 3);
    ph_config_free(&c);
    load_bad(f, "[limits]\ncall_timeout = 0.0001\n", PH_ECONFIG, 2,
             "'call_timeout' in [limits] must be seconds from 0.001 to 86400 (such as 30 or 2.5), "
             "not '0.0001'");
    load_bad(f, "[limits]\ncall_timeout = 30s\n", PH_ECONFIG, 2, "not '30s'");
    load_bad(f, "[limits]\ncall_timeout = 86401\n", PH_ECONFIG, 2, "not '86401'");
    load_bad(f, "[limits]\nmax_concurrent_calls = 0\n", PH_ECONFIG, 2,
             "'max_concurrent_calls' in [limits] must be an integer from 1 to 100000, not '0'");
    load_bad(f, "[limits]\ntimeout = 3\n", PH_ECONFIG, 2,
             "unknown key 'timeout' in [limits]; known keys: call_timeout, load_timeout, "
             "max_concurrent_calls, stop_timeout");
    load_ok(f, "[limits]\nstop_timeout = 1.5\n", &c);
    assert_int_equal(c.limits.stop_timeout_ms, 1500);
    ph_config_free(&c);
    load_bad(f, "[limits]\nstop_timeout = never\n", PH_ECONFIG, 2,
             "'stop_timeout' in [limits] must be seconds from 0.001 to 86400 (such as 10 or 2.5), "
             "not 'never'");
    load_ok(f, "[limits]\nload_timeout = 2\n", &c);
    assert_int_equal(c.limits.load_timeout_ms, 2000);
    ph_config_free(&c);
    load_bad(f, "[limits]\nload_timeout = 0\n", PH_ECONFIG, 2,
             "'load_timeout' in [limits] must be seconds from 0.001 to 86400 (such as 10 or 2.5), "
             "not '0'");
}

static void test_bad_values(void **state)
{
    fixture *f = *state;
    load_bad(f, "[host]\nreload = maybe\n", PH_ECONFIG, 2,
             "'reload' in [host] must be true or false (or yes/no, on/off, 1/0), not 'maybe'");
    load_bad(f, "[host]\nstrict = 2\n", PH_ECONFIG, 2, "'strict' in [host] must be true or false");
    load_bad(f, "[auth]\nrequire_token = \n", PH_ECONFIG, 2,
             "'require_token' in [auth] must be true or false (or yes/no, on/off, 1/0), not ''");
    load_bad(f, "[http]\nthreads = many\n", PH_ECONFIG, 2,
             "'threads' in [http] must be an integer from 1 to 1024, not 'many'");
    load_bad(f, "[http]\nthreads = 0\n", PH_ECONFIG, 2,
             "'threads' in [http] must be an integer from 1 to 1024, not '0'");
    load_bad(f, "[http]\nthreads = 4x\n", PH_ECONFIG, 2, "not '4x'");
    load_bad(f, "[http]\nmax_json_depth = -1\n", PH_ECONFIG, 2,
             "'max_json_depth' in [http] must be an integer from 1 to 10000, not '-1'");
    load_bad(f, "[http]\nconnection_timeout = 99999999999999999999999\n", PH_ECONFIG, 2,
             "'connection_timeout' in [http] must be an integer from 1 to 86400");
    load_bad(f, "[http]\nmax_connections_per_ip = 1e3\n", PH_ECONFIG, 2,
             "'max_connections_per_ip' in [http] must be an integer from 1 to 1000000, not '1e3'");
    load_bad(f, "[http]\nmax_body = lots\n", PH_ECONFIG, 2,
             "'max_body' in [http] must be a size from 1 byte to 1024M, such as 1048576 or 1M, "
             "not 'lots'");
    load_bad(f, "[http]\nmax_body = 2G\n", PH_ECONFIG, 2, "not '2G'");
    load_bad(f, "[http]\nmax_body = 0\n", PH_ECONFIG, 2, "not '0'");
    load_bad(f, "[host]\nlog_level = verbose\n", PH_ECONFIG, 2,
             "'log_level' in [host] must be one of error, warn, info, debug, not 'verbose'");
    load_bad(f, "[http]\nlisten = 127.0.0.1:99999\n", PH_ECONFIG, 2,
             "invalid listen address '127.0.0.1:99999': the port must be a number from 1 to "
             "65535");
    load_bad(f, "[http]\nlisten = example.com:80\n", PH_ECONFIG, 2,
             "invalid listen address 'example.com:80': the address must be an IP address");
    load_bad(f, "[host]\ndata_dir =\n", PH_ECONFIG, 2,
             "'data_dir' in [host] is empty; give a directory");
    load_bad(f, "[host]\npackage_dirs = a,,b\n", PH_ECONFIG, 2,
             "'package_dirs' in [host] has an empty entry; write directories separated by commas");
    load_bad(f, "[auth]\ntoken =\n", PH_ECONFIG, 2, "'token' in [auth] is empty");
    load_bad(f, "[trust]\nbob = ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\n", PH_ECONFIG, 2,
             "'bob' in [trust] must be a public key line as plughost keygen prints it (NAME = "
             "ed25519: and 44 base64 characters), not 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5'");
    load_bad(f, "[trust]\nallow_unsigned = maybe\n", PH_ECONFIG, 2,
             "'allow_unsigned' in [trust] must be true or false");
    load_bad(f, "[auth]\ntoken_file = \n", PH_ECONFIG, 2, "'token_file' in [auth] is empty");
}

/* [http] allowed_origins, server_names, request_timeout, max_connections; token strength. */
static void test_http_security_keys(void **state)
{
    fixture *f = *state;
    ph_config c;
    load_ok(f, "[http]\nlisten = 127.0.0.1:8901\n", &c);
    assert_int_equal(c.http.request_timeout, 30);
    assert_int_equal(c.http.max_connections, 1000);
    assert_int_equal(c.http.n_allowed_origins, 0);
    assert_int_equal(c.http.n_server_names, 0);
    ph_config_free(&c);
    load_ok(f,
            "[http]\nallowed_origins = https://app.example, http://127.0.0.1:3000,\n"
            "server_names = plughost.example.com ,localhost\nrequest_timeout = 5\n"
            "max_connections = 200\n[auth]\ntoken = Zm9vYmFyYmF6cXV4cXV1eA\n",
            &c);
    assert_int_equal(c.http.n_allowed_origins, 2);
    assert_string_equal(c.http.allowed_origins[0], "https://app.example");
    assert_string_equal(c.http.allowed_origins[1], "http://127.0.0.1:3000");
    assert_int_equal(c.http.n_server_names, 2);
    assert_string_equal(c.http.server_names[0], "plughost.example.com");
    assert_string_equal(c.http.server_names[1], "localhost");
    assert_int_equal(c.http.request_timeout, 5);
    assert_int_equal(c.http.max_connections, 200);
    assert_string_equal(c.auth.token, "Zm9vYmFyYmF6cXV4cXV1eA"); /* 22 base64: 132 bits */
    ph_config_free(&c);

    load_bad(f, "[http]\nallowed_origins = https://ok.example, *\n", PH_ECONFIG, 2,
             "'allowed_origins' in [http]: '*' is not an origin; write scheme://host[:port] such "
             "as https://app.example.com or http://127.0.0.1:3000, without a path or a trailing "
             "'/'");
    load_bad(f, "[http]\nallowed_origins = https://app.example/\n", PH_ECONFIG, 2,
             "'https://app.example/' is not an origin");
    load_bad(f, "[http]\nallowed_origins = app.example\n", PH_ECONFIG, 2,
             "'app.example' is not an origin");
    load_bad(f, "[http]\nserver_names = http://x.example\n", PH_ECONFIG, 2,
             "'server_names' in [http]: 'http://x.example' is not a host name; write names such "
             "as plughost.example.com, without a scheme or port");
    load_bad(f, "[http]\nrequest_timeout = 0\n", PH_ECONFIG, 2,
             "'request_timeout' in [http] must be an integer from 1 to 86400, not '0'");
    load_bad(f, "[http]\nmax_connections = 10\n", PH_ECONFIG, 2,
             "'max_connections' in [http] must be an integer from 16 to 100000, not '10'");
    load_bad(f, "[auth]\ntoken = 0123456789abcdef0123456789abcde\n", PH_ECONFIG, 2,
             "'token' in [auth]: the admin token is too short (31 characters, about 124 bits); "
             "use at least 128 bits, i.e. 32 hex characters: make one with `openssl rand -hex "
             "32`");
    load_bad(f, "[auth]\ntoken = p\xc3\xa4ssw\xc3\xb6rd-long-enough-to-count-0123\n", PH_ECONFIG, 2,
             "'token' in [auth]: the admin token may hold only printable ASCII without blanks");
    assert_int_equal(ph_config_check_token("t", "0123456789abcdef0123456789abcdef"), 0);
}

static void test_instances_bad(void **state)
{
    fixture *f = *state;
    load_bad(f, "[instance blog]\npackage = notes\n[host]\n[instance blog]\n", PH_ECONFIG, 4,
             "[instance blog] is defined twice (first on line 1); merge the two sections or "
             "rename one");
    load_bad(f, "[instance]\n", PH_ECONFIG, 1, "[instance] needs a name: write [instance NAME]");
    load_bad(f, "[instance my.blog]\n", PH_ECONFIG, 1,
             "invalid instance name 'my.blog': '.' is not allowed; use lowercase letters, "
             "digits, '_' and '-', starting with a letter");
    load_bad(f, "[instance Blog]\n", PH_ECONFIG, 1,
             "invalid instance name 'Blog': it must start with a lowercase letter");
    load_bad(f, "[instance 1blog]\n", PH_ECONFIG, 1, "invalid instance name '1blog'");
    load_bad(f, "[instance blog]\npackage = No.tes\n", PH_ECONFIG, 2,
             "'package' in [instance blog]: invalid package name 'No.tes'");
    load_bad(f, "[instance blog]\nenabled = nah\n", PH_ECONFIG, 2,
             "'enabled' in [instance blog] must be true or false");
    load_bad(f, "[instance blog]\nmount = blog\n", PH_ECONFIG, 2,
             "invalid mount 'blog' for [instance blog]: it must start with '/' followed by a "
             "name, such as /blog");
    load_bad(f, "[instance blog]\nmount = /\n", PH_ECONFIG, 2, "invalid mount '/'");
    load_bad(f, "[instance blog]\nmount = /a b\n", PH_ECONFIG, 2,
             "invalid mount '/a b' for [instance blog]: only letters, digits");
    load_bad(f, "[instance blog]\nmount = /a//b\n", PH_ECONFIG, 2, "it has an empty segment");
    load_bad(f, "[instance blog]\nmount = /a/\n", PH_ECONFIG, 2, "it has an empty segment");
    load_bad(f, "[instance blog]\nmount = /a/../b\n", PH_ECONFIG, 2,
             "'.' and '..' segments are not allowed");
    load_bad(f, "[instance blog]\nmount = /a/..\n", PH_ECONFIG, 2,
             "'.' and '..' segments are not allowed");
    load_bad(f, "[instance blog]\nmount = /_/health\n", PH_ECONFIG, 2,
             "/_/ is reserved for the host's own endpoints");

    char *long_name = calloc(1, PH_NAME_MAX + 2);
    memset(long_name, 'a', PH_NAME_MAX + 1);
    char *text = tu_fmt("[instance %s]\n", long_name);
    char *msg =
        tu_fmt("invalid instance name '%s': longer than %d characters", long_name, PH_NAME_MAX);
    load_bad(f, text, PH_ECONFIG, 1, msg);
    free(long_name);
    free(text);
    free(msg);
}

static void test_format_errors(void **state)
{
    fixture *f = *state;
    load_bad(f, "[http]\nthreads = 2\nthreads = 3\n", PH_ECONFIG, 3,
             "'threads' is set twice in [http] (first on line 2); keep one");
    load_bad(f, "[http\n", PH_ECONFIG, 1, "section header has no closing ']'; write it as [name]");
    load_bad(f, "[http] junk\n", PH_ECONFIG, 1, "unexpected text after ']' of a section header");
    load_bad(f, "[http]\nthreads\n", PH_ECONFIG, 2, "expected 'key = value' or '[section]'");
    load_bad(f, "[http]\n= 4\n", PH_ECONFIG, 2, "no key before '='; write key = value");
    load_bad(f, "[host]\nreload ; = no\n", PH_ECONFIG, 2, "expected 'key = value' or '[section]'");
    /* An indented line is a key, never a continuation of the previous value. */
    ph_config c;
    load_ok(f, "[http]\nlisten = 127.0.0.1:1234\n    threads = 9\n", &c);
    assert_int_equal(c.http.port, 1234);
    assert_int_equal(c.http.threads, 9);
    ph_config_free(&c);
}

/*
 * Issue 9, failure 1: lines that the old two readers (ours and libinih)
 * disagreed on. Each is one clear error at its line, never a crash.
 */
static void test_hostile_lines(void **state)
{
    fixture *f = *state;
    static const char cr[] = "line contains a carriage return (CR) at column 1 that does not end "
                             "the line; save the file with LF or CRLF line ends";
    /* The 20-byte host.ini of the issue and its variants. */
    assert_int_equal(strlen("[host]\n\r[x=y]\nk = v\n"), 20);
    load_bad(f, "[host]\n\r[x=y]\nk = v\n", PH_ECONFIG, 2, cr);
    load_bad(f, "[host]\n\r[instance:x]\nk = v\n", PH_ECONFIG, 2, cr);
    load_bad(f, "[host]\n \xEF\xBB\xBF[a=b]\nk = v\n", PH_ECONFIG, 2,
             "line contains a byte order mark (U+FEFF) at column 2; it is allowed only at the "
             "very start of the file; remove it");
    load_bad(f, " \xEF\xBB\xBF[a=b]\nk = v\n", PH_ECONFIG, 1,
             "byte order mark (U+FEFF) at column 2");
    load_bad(f, "\xEF\xBB\xBF\xEF\xBB\xBF[host]\n", PH_ECONFIG, 1, "byte order mark (U+FEFF)");
    /* Old Mac line ends: one line with CRs inside. */
    load_bad(f, "[host]\rreload = no\r", PH_ECONFIG, 1,
             "carriage return (CR) at column 7 that does not end the line");
    load_bad(f, "[http]\nthreads = 4\x01\n", PH_ECONFIG, 2,
             "line contains the control character 0x01 at column 12; remove it");
    load_bad(f, "[http]\nthreads = 4\x7f\n", PH_ECONFIG, 2, "control character 0x7F at column 12");
    load_bad(f, "[auth]\ntoken = \xff\xfe\n", PH_ECONFIG, 2,
             "line is not valid UTF-8 (byte 0xFF at column 9); save the file as UTF-8");
    load_bad(f, "[auth]\ntoken = \xC0\xAF\n", PH_ECONFIG, 2, "not valid UTF-8 (byte 0xC0");
    load_bad(f, "[auth]\ntoken = \xED\xA0\x80\n", PH_ECONFIG, 2, "not valid UTF-8 (byte 0xED");
    /* Odd section names: refused by name, at their line. */
    load_bad(f, "[host]\n[x=y]\nk = v\n", PH_ECONFIG, 2,
             "unknown section [x=y]; known sections: [host], [http], [limits], [auth], [trust], "
             "[provides], [instance NAME]");
    load_bad(f, "[instance:x]\nk = v\n", PH_ECONFIG, 1, "unknown section [instance:x]");
    load_bad(f, "[instance x=y]\nk = v\n", PH_ECONFIG, 1,
             "invalid instance name 'x=y': '=' is not allowed");
    load_bad(f, "[ ]\n", PH_ECONFIG, 1, "the section name is empty; write it as [name]");
    load_bad(f, "[[host]]\n", PH_ECONFIG, 1, "unexpected text after ']' of a section header");
    /* Keys before any section. */
    load_bad(f, "k = v\n[host]\n", PH_ECONFIG, 1,
             "'k' is outside any section; put it under one of [host], [http], [limits], [auth], "
             "[trust], [provides], [instance NAME]");
    /* Continuation lines do not exist: the indented line says so. */
    load_bad(f, "[auth]\ntoken = 0123456789abcdef0123456789abcdef\n    def\n", PH_ECONFIG, 3,
             "expected 'key = value' or '[section]'; a value cannot go on over several lines: "
             "write it on one line");
    /* Defined meanings: CRLF, a BOM first, no final line end, tabs. */
    ph_config c;
    load_ok(f, "\xEF\xBB\xBF[http]\r\n\tthreads\t=\t7\t; seven\r\nmax_json_depth = 9", &c);
    assert_int_equal(c.http.threads, 7);
    assert_int_equal(c.http.max_json_depth, 9);
    ph_config_free(&c);
    /* Valid UTF-8 passes the reader; the name rule refuses it. */
    load_bad(f, "[instance caf\xC3\xA9]\n", PH_ECONFIG, 1, "invalid instance name 'caf\xC3\xA9'");
}

/* Not a config file at all: a directory, /dev/zero, a huge file. Clear errors, bounded reads. */
static void test_not_a_config(void **state)
{
    fixture *f = *state;
    ph_config c;
    assert_int_equal(ph_config_load(f->dir, &c), PH_EIO);
    char *want = tu_fmt("%s: cannot read: Is a directory", f->dir);
    assert_string_equal(ph_error_last(), want);
    free(want);
    assert_int_equal(ph_config_load("/dev/zero", &c), PH_ECONFIG);
    assert_string_equal(ph_error_last(), "/dev/zero: file is larger than 1048576 bytes; is it the "
                                         "right file?");
    char *big = malloc(PH_INI_MAX_FILE + 2);
    memset(big, '\n', PH_INI_MAX_FILE + 1);
    big[PH_INI_MAX_FILE + 1] = '\0';
    char *path = tu_write(f->dir, "host.ini", big);
    assert_int_equal(ph_config_load(path, &c), PH_ECONFIG);
    want = tu_fmt("%s: file is larger than 1048576 bytes; is it the right file?", path);
    assert_string_equal(ph_error_last(), want);
    free(want);
    free(path);
    /* Exactly the limit (blank lines) is fine. */
    big[PH_INI_MAX_FILE] = '\0';
    path = tu_write(f->dir, "host.ini", big);
    assert_int_equal(ph_config_load(path, &c), 0);
    ph_config_free(&c);
    free(path);
    free(big);
}

static void test_nul_byte(void **state)
{
    fixture *f = *state;
    char *path = tu_fmt("%s/host.ini", f->dir);
    FILE *fp = fopen(path, "wb");
    fwrite("[host]\nreload = n\0o\n", 1, 20, fp);
    fclose(fp);
    ph_config c;
    assert_int_equal(ph_config_load(path, &c), PH_ECONFIG);
    char *want = tu_fmt("%s:2: line contains a NUL byte; is this a text file?", path);
    assert_true(tu_contains(ph_error_last(), want));
    free(want);
    free(path);
}

static void test_long_lines(void **state)
{
    fixture *f = *state;
    size_t limit = PH_INI_MAX_LINE;
    char *value = calloc(1, limit + 2);
    /* "token = " + value: exactly at the limit is fine. */
    memset(value, 'v', limit - 8);
    char *text = tu_fmt("[auth]\ntoken = %s\nrequire_token = yes\n", value);
    ph_config c;
    load_ok(f, text, &c);
    assert_int_equal(strlen(c.auth.token), limit - 8);
    assert_true(c.auth.require_token); /* the next line is read as its own line */
    ph_config_free(&c);
    free(text);

    /* One more character: an error naming the line, not a silent split. */
    value[limit - 8] = 'v';
    text = tu_fmt("[auth]\n\ntoken = %s\nrequire_token = yes\n", value);
    char *msg = tu_fmt("line is %zu characters long, longer than the %zu allowed; shorten it",
                       limit + 1, limit);
    load_bad(f, text, PH_ECONFIG, 3, msg);
    free(msg);
    free(text);
    free(value);
}

static void test_missing_file(void **state)
{
    fixture *f = *state;
    char *path = tu_fmt("%s/nope.ini", f->dir);
    ph_config c;
    assert_int_equal(ph_config_load(path, &c), PH_EIO);
    char *want = tu_fmt("%s: cannot read: No such file or directory", path);
    assert_true(tu_contains(ph_error_last(), want));
    assert_null(c.path);
    free(want);
    free(path);
}

static void assert_listen(const char *text, const char *addr, int port)
{
    ph_config c;
    assert_int_equal(ph_config_defaults(&c), 0);
    if (ph_config_set_listen(&c, text) != 0)
        fail_msg("'%s' should be accepted: %s", text, ph_error_last());
    assert_string_equal(c.http.listen_addr, addr);
    assert_int_equal(c.http.port, port);
    ph_config_free(&c);
}

static void assert_listen_bad(const char *text, const char *why)
{
    ph_config c;
    assert_int_equal(ph_config_defaults(&c), 0);
    assert_int_equal(ph_config_set_listen(&c, text), PH_ECONFIG);
    char *want = tu_fmt("invalid listen address '%s': %s", text, why);
    assert_true(tu_contains(ph_error_last(), want));
    /* Unchanged on error. */
    assert_string_equal(c.http.listen_addr, "127.0.0.1");
    assert_int_equal(c.http.port, 8901);
    free(want);
    ph_config_free(&c);
}

/* package_dirs may repeat: each line appends, so no line has to be long. */
static void test_package_dirs_repeat(void **state)
{
    fixture *f = *state;
    ph_config c;
    load_ok(f, "[host]\npackage_dirs = a, b\npackage_dirs = /abs/c\n", &c);
    assert_int_equal(c.n_package_dirs, 3);
    char *a = tu_fmt("%s/a", f->dir), *b = tu_fmt("%s/b", f->dir);
    assert_string_equal(c.package_dirs[0], a);
    assert_string_equal(c.package_dirs[1], b);
    assert_string_equal(c.package_dirs[2], "/abs/c");
    free(a);
    free(b);
    ph_config_free(&c);
}

static void test_listen(void **state)
{
    (void)state;
    assert_listen("8080", "127.0.0.1", 8080);
    assert_listen(":8081", "127.0.0.1", 8081);
    assert_listen("0.0.0.0:80", "0.0.0.0", 80);
    assert_listen("localhost:1234", "127.0.0.1", 1234);
    assert_listen("[::1]:9000", "::1", 9000);
    assert_listen("[::]:65535", "::", 65535);
    assert_listen_bad("", "the port is missing; write ADDR:PORT such as 127.0.0.1:8901");
    assert_listen_bad("127.0.0.1", "the port is missing");
    assert_listen_bad("127.0.0.1:", "the port is missing");
    assert_listen_bad("127.0.0.1:0", "the port must be a number from 1 to 65535");
    assert_listen_bad("127.0.0.1:65536", "the port must be a number from 1 to 65535");
    assert_listen_bad(":-1", "the port must be a number from 1 to 65535");
    assert_listen_bad("::1:80", "write an IPv6 address in brackets, such as [::1]:8901");
    assert_listen_bad("[::1]80", "write an IPv6 address as [ADDR]:PORT");
    assert_listen_bad("[1.2.3.4]:80", "not an IPv6 address");
    assert_listen_bad("256.1.1.1:80", "the address must be an IP address");
}

static void test_check_name(void **state)
{
    (void)state;
    assert_int_equal(ph_config_check_name("package", "a", PH_EMANIFEST), 0);
    assert_int_equal(ph_config_check_name("package", "my_pkg-2", PH_EMANIFEST), 0);
    assert_int_equal(ph_config_check_name("package", "", PH_EMANIFEST), PH_EMANIFEST);
    assert_true(tu_contains(ph_error_last(), "the package name is empty"));
    assert_int_equal(ph_config_check_name("package", "a b", PH_EMANIFEST), PH_EMANIFEST);
    assert_true(tu_contains(ph_error_last(), "invalid package name 'a b': ' ' is not allowed"));
    assert_int_equal(ph_config_check_name("package", "_a", PH_ECONFIG), PH_ECONFIG);
}

/* One reader per scalar: every place a user types a boolean or a number accepts the same. */
static void test_scalar_readers(void **state)
{
    (void)state;
    static const char *const yes[] = {"true", "On", "YES", "1"}, *const no[] = {"false", "off",
                                                                                "No", "0"};
    for (size_t i = 0; i < 4; i++) {
        bool b = false;
        assert_int_equal(ph_parse_bool(yes[i], &b), 0);
        assert_true(b);
        assert_int_equal(ph_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    static const char *const not_bool[] = {"nope", "", " true", "true ", "2", "y"};
    for (size_t i = 0; i < sizeof not_bool / sizeof *not_bool; i++) {
        bool b = true;
        assert_int_equal(ph_parse_bool(not_bool[i], &b), PH_EINVAL);
        assert_true(b); /* untouched */
    }
    int64_t n = 0;
    assert_int_equal(ph_parse_i64("-9223372036854775808", &n), 0);
    assert_true(n == INT64_MIN);
    assert_int_equal(ph_parse_i64("42", &n), 0);
    assert_int_equal(n, 42);
    static const char *const not_int[] = {
        "", " 1", "+1", "1 ", "0x10", "1.0", "-", "9223372036854775808", "1e3"};
    for (size_t i = 0; i < sizeof not_int / sizeof *not_int; i++)
        assert_int_equal(ph_parse_i64(not_int[i], &n), PH_EINVAL);
    assert_int_equal(n, 42);
    double d = 0;
    assert_int_equal(ph_parse_f64("2.5e3", &d), 0);
    assert_true(d == 2500.0);
    static const char *const not_num[] = {"", " 1", "1e400", "nan", "inf", "1,5"};
    for (size_t i = 0; i < sizeof not_num / sizeof *not_num; i++)
        assert_int_equal(ph_parse_f64(not_num[i], &d), PH_EINVAL);
}

/* The reader reports sections (even empty ones) and keys with their lines. */
typedef struct events {
    char log[1024];
} events;

static int record(void *user, const char *section, const char *key, const char *value, int line)
{
    events *e = user;
    size_t n = strlen(e->log);
    snprintf(e->log + n, sizeof e->log - n, "%d[%s]%s=%s;", line, section, key ? key : "-",
             value ? value : "-");
    if (key && strcmp(key, "fail") == 0)
        return ph_error_set(PH_EMANIFEST, "the handler refused '%s'", value);
    return 0;
}

/* A call's dotted address: joined with '.', cut to fit and NUL-terminated, the full length
 * returned. */
static void test_dotted(void **state)
{
    (void)state;
    char buf[8];
    assert_int_equal(ph_dotted(buf, sizeof buf, "calc", "m", "add"), 10);
    assert_string_equal(buf, "calc.m."); /* cut: 7 bytes and the NUL */
    assert_int_equal(ph_dotted(buf, sizeof buf, "a", "b", NULL), 3);
    assert_string_equal(buf, "a.b");
    assert_int_equal(ph_dotted(buf, sizeof buf, "abcdefghij", NULL, NULL), 10);
    assert_string_equal(buf, "abcdefg");
    assert_int_equal(ph_dotted(buf, 1, "x", "y", "z"), 5);
    assert_string_equal(buf, "");
    /* in the caller's buffer when it fits, else on the heap, whole */
    char stack[8];
    char *a = ph_dotted_in(stack, sizeof stack, "i", "a", "m");
    assert_ptr_equal(a, stack);
    assert_string_equal(a, "i.a.m");
    ph_dotted_free(a, stack);
    a = ph_dotted_in(stack, sizeof stack, "instance", "actor", "method");
    assert_ptr_not_equal(a, stack);
    assert_string_equal(a, "instance.actor.method");
    ph_dotted_free(a, stack);
}

static void test_parse_ini_events(void **state)
{
    fixture *f = *state;
    const ph_ini_opts opts = {PH_EMANIFEST, NULL};
    char *path = tu_write(f->dir, "x.ini", "a = 1\n[empty]\n\n[ s ]\n  k = v\nk2 : v2\n");
    events e = {{0}};
    assert_int_equal(ph_ini_parse_file(path, &opts, record, &e), 0);
    assert_string_equal(e.log, "1[]a=1;2[empty]-=-;4[s]-=-;5[s]k=v;6[s]k2=v2;");
    free(path);

    path = tu_write(f->dir, "y.ini", "[s]\nok = 1\nfail = now\nlater = 2\n");
    memset(&e, 0, sizeof e);
    assert_int_equal(ph_ini_parse_file(path, &opts, record, &e), PH_EMANIFEST);
    char *want = tu_fmt("%s:3: the handler refused 'now'", path);
    assert_true(tu_contains(ph_error_last(), want));
    assert_null(strstr(e.log, "later")); /* stops at the first error */
    free(want);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_setup_teardown(test_full_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_and_quirks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys_and_sections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_security_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instances_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_package_dirs_repeat, setup, teardown),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_check_name),
        cmocka_unit_test(test_scalar_readers),
        cmocka_unit_test(test_dotted),
        cmocka_unit_test_setup_teardown(test_parse_ini_events, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
