/*
 * End-to-end tests of the HTTP gateway: the real plughost binary ($PH_BIN
 * run -c host.ini) serving the http_fx fixture (and the calc example) on a
 * free port of 127.0.0.1, spoken to with a raw-socket HTTP client so that
 * paths go out byte for byte (traversal corpus) and connections can be held
 * half-open (slow clients, per-client limits).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "client.h"
#include "error.h"
#include "testutil.h"

/* ------------------------------------------------------------------ */
/* A running host                                                       */
/* ------------------------------------------------------------------ */

typedef struct server {
    char *dir;
    int port;
    pid_t pid;
    char *token;
    char *log;
} server;

static server S; /* the shared host of most tests */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &l))
        abort();
    close(fd);
    return ntohs(a.sin_port);
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

typedef struct resp {
    int status;
    char *head; /* status line + headers */
    char *body;
    json_t *json; /* body parsed, if JSON */
} resp;

static void resp_free(resp *r)
{
    free(r->head);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* Reads until EOF; 0 on success. */
static int read_all(int fd, char **out, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *b = malloc(cap + 1);
    for (;;) {
        if (n == cap)
            b = realloc(b, (cap *= 2) + 1);
        ssize_t r = recv(fd, b + n, cap - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            b[n] = 0;
            *out = b;
            *len = n;
            return r < 0 && n == 0 ? -1 : 0;
        }
        n += (size_t)r;
    }
}

static void parse(const char *raw, size_t n, resp *r)
{
    const char *e = strstr(raw, "\r\n\r\n");
    memset(r, 0, sizeof(*r));
    if (!e || sscanf(raw, "HTTP/1.%*d %d", &r->status) != 1) {
        r->status = -1;
        r->head = strdup(raw);
        r->body = strdup("");
        return;
    }
    r->head = strndup(raw, (size_t)(e - raw) + 2);
    r->body = strndup(e + 4, n - (size_t)(e + 4 - raw));
    r->json = json_loads(r->body, JSON_DECODE_ANY, NULL);
}

/*
 * Sends `raw` (a whole request) to port and reads the answer; r->status is
 * -1 if there was none. Asserts nothing: callable from any thread.
 */
static int raw_request_try(int port, const char *raw, size_t len, resp *r)
{
    int fd = tcp_connect(port);
    if (fd < 0) {
        int e = errno;
        memset(r, 0, sizeof(*r));
        r->status = -1;
        r->head = tu_fmt("connect: %s", strerror(e));
        r->body = strdup("");
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, raw + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server may answer (413) and close before the body is sent */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    char *buf;
    size_t n;
    read_all(fd, &buf, &n);
    close(fd);
    parse(buf, n, r);
    free(buf);
    return 0;
}

/* raw_request_try, asserting that the connection was made (main thread only). */
static void raw_request(int port, const char *raw, size_t len, resp *r)
{
    int rc = raw_request_try(port, raw, len, r);
    if (rc)
        fail_msg("cannot connect to 127.0.0.1:%d: %s", port, r->head);
}

/* State changes go out as JSON (the host refuses them otherwise), as the CLI sends them. */
static char *request_text(const char *method, const char *path, const char *headers,
                          const char *body)
{
    bool change = strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "OPTIONS");
    return tu_fmt("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s"
                  "Content-Length: %zu\r\n\r\n%s",
                  method, path, headers ? headers : "",
                  (body || change) && !(headers && strstr(headers, "Content-Type"))
                      ? "Content-Type: application/json\r\n"
                      : "",
                  body ? strlen(body) : 0, body ? body : "");
}

/* A request with a body (or none) and extra header lines; asserts it connected. */
static void req_on(int port, const char *method, const char *path, const char *headers,
                   const char *body, resp *r)
{
    char *raw = request_text(method, path, headers, body);
    raw_request(port, raw, strlen(raw), r);
    free(raw);
}

/* req_on for other threads: asserts nothing. */
static void req_try(int port, const char *method, const char *path, const char *headers,
                    const char *body, resp *r)
{
    char *raw = request_text(method, path, headers, body);
    raw_request_try(port, raw, strlen(raw), r);
    free(raw);
}

static void req(const char *method, const char *path, const char *headers, const char *body,
                resp *r)
{
    req_on(S.port, method, path, headers, body, r);
}

static char *auth_header(const char *token)
{
    return tu_fmt("Authorization: Bearer %s\r\n", token);
}

/* Asserts the status and, for errors, the body {"error":{"code":code,"message":~msg}}. */
static void expect_error(const resp *r, int status, const char *code, const char *msg_part)
{
    if (r->status != status)
        fprintf(stderr, "expected %d, got %d:\n%s\n%s\n", status, r->status, r->head, r->body);
    assert_int_equal(r->status, status);
    json_t *e = json_object_get(r->json, "error");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    assert_true(tu_contains(json_string_value(json_object_get(e, "message")), msg_part));
}

static void write_ini(server *s, const char *extra)
{
    const char *ex = getenv("PH_EXAMPLES");
    char *ini =
        tu_fmt("[host]\npackage_dirs = %s/pkgs%s%s\ndata_dir = %s/data\nlog_level = warn\n"
               "reload = false\n"
               "[http]\nlisten = 127.0.0.1:%d\nthreads = 4\nmax_body = 65536\n"
               "max_json_depth = 16\nconnection_timeout = 2\nmax_connections_per_ip = 32\n%s",
               s->dir, ex ? ", " : "", ex ? ex : "", s->dir, s->port, extra ? extra : "");
    free(tu_write(s->dir, "host.ini", ini));
    free(ini);
}

/* Copies the fixture, plants symlinks and a secret outside www/, starts the host. */
static int server_start(server *s, const char *extra_ini)
{
    char *out = NULL;
    memset(s, 0, sizeof(*s));
    s->dir = tu_tmpdir();
    s->port = free_port();
    free(tu_write(s->dir, "secret.txt", "TOPSECRET\n"));
    int rc =
        tu_run(&out,
               "mkdir -p '%1$s/pkgs' && cp -r '%2$s/http_fx' '%2$s/core_decline' '%1$s/pkgs/' && "
               "rm -rf '%1$s/pkgs/http_fx/CMakeFiles' && "
               "ln -s '%1$s/secret.txt' '%1$s/pkgs/http_fx/www/escape.txt' && "
               "ln -s '%1$s' '%1$s/pkgs/http_fx/www/outside' && "
               "ln -s ../package.ini '%1$s/pkgs/http_fx/www/manifest.ini' && "
               "ln -s css/site.css '%1$s/pkgs/http_fx/www/alias.css'",
               s->dir, tu_env("PH_FIXTURES"));
    if (rc) {
        fprintf(stderr, "fixture copy failed: %s\n", out);
        free(out);
        return -1;
    }
    free(out);
    write_ini(s, extra_ini);
    s->log = tu_fmt("%s/host.log", s->dir);
    s->pid = fork();
    if (s->pid == 0) {
        char *ini = tu_fmt("%s/host.ini", s->dir);
        if (!freopen(s->log, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(127);
        execl(tu_env("PH_BIN"), "plughost", "run", "-c", ini, (char *)NULL);
        _exit(127);
    }
    /* ready: /_/health?ready=1 answers 200 (bounded: 15 s) */
    for (int i = 0; i < 300; i++) {
        int fd = tcp_connect(s->port);
        if (fd >= 0) {
            close(fd);
            resp r;
            const char *tok = extra_ini && strstr(extra_ini, "token =") ? "" : NULL;
            (void)tok;
            req_on(s->port, "GET", "/_/health?ready=1", NULL, NULL, &r);
            int st = r.status;
            resp_free(&r);
            if (st == 200)
                break;
        }
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            char *log = tu_read(s->log);
            fprintf(stderr, "plughost exited early:\n%s\n", log ? log : "");
            free(log);
            s->pid = 0;
            return -1;
        }
        usleep(50 * 1000);
    }
    char *tp = tu_fmt("%s/data/admin.token", s->dir);
    s->token = tu_read(tp);
    free(tp);
    if (s->token)
        s->token[strcspn(s->token, "\r\n")] = 0;
    return 0;
}

/* SIGTERM, then wait (bounded); returns the exit status or -1. */
static int server_stop(server *s)
{
    int status = -1;
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        for (int i = 0; i < 200; i++) {
            if (waitpid(s->pid, &status, WNOHANG) == s->pid)
                break;
            usleep(50 * 1000);
            if (i == 199) {
                kill(s->pid, SIGKILL);
                waitpid(s->pid, &status, 0);
            }
        }
        s->pid = 0;
    }
    if (getenv("PH_KEEP_TMP") == NULL)
        tu_rmtree(s->dir);
    free(s->dir);
    free(s->token);
    free(s->log);
    s->dir = s->token = s->log = NULL;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return server_start(&S, NULL);
}

/* The host of an "own host" test; stopped by own_teardown even when the test fails. */
static server O;

static int own_teardown(void **state)
{
    (void)state;
    if (O.dir)
        server_stop(&O);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    server_stop(&S);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Actors                                                               */
/* ------------------------------------------------------------------ */

static void test_call_named_and_positional(void **state)
{
    (void)state;
    resp r;
    req("POST", "/http_fx/actors/fx/add", NULL, "{\"a\":2,\"b\":40}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "42\n");
    assert_true(tu_contains(r.head, "Content-Type: application/json"));
    resp_free(&r);
    req("POST", "/http_fx/actors/fx/greet", NULL, "[\"bob\"]", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(r.json), "hello bob");
    resp_free(&r);
    req("POST", "/http_fx/actors/fx/echo", NULL, "{\"value\":{\"k\":[1,2,{\"z\":null}]}}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"k\":[1,2,{\"z\":null}]}\n");
    resp_free(&r);
}

static void test_call_like_curl_d(void **state)
{
    (void)state;
    resp r;
    /*
     * What `curl -d` sends without -H: the form type a web page can also send
     * without asking (CSRF shape), so it is refused; with the JSON type it works.
     */
    req("POST", "/http_fx/actors/fx/add", "Content-Type: application/x-www-form-urlencoded\r\n",
        "{\"a\":1,\"b\":2}", &r);
    expect_error(&r, 415, "unsupported_media_type",
                 "POST requests must be sent with Content-Type: application/json (got "
                 "application/x-www-form-urlencoded)");
    resp_free(&r);
    req("POST", "/http_fx/actors/fx/add", NULL, "{\"a\":1,\"b\":2}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "3\n");
    resp_free(&r);
    if (getenv("PH_EXAMPLES")) { /* acceptance 1: calc.math.add */
        req("POST", "/calc/actors/math/add", NULL, "{\"a\":2,\"b\":40}", &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "42\n");
        resp_free(&r);
    }
}

static void test_list_actors(void **state)
{
    (void)state;
    resp r;
    req("GET", "/http_fx/actors", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *fx = json_object_get(json_object_get(r.json, "actors"), "fx");
    assert_non_null(fx);
    json_t *add = json_object_get(fx, "add");
    assert_string_equal(json_string_value(json_object_get(add, "returns")), "int64");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(add, "args"), 1), "name")),
        "b");
    assert_true(json_is_true(json_object_get(json_object_get(fx, "secret"), "admin")));
    resp_free(&r);
    req("POST", "/http_fx/actors", NULL, "{}", &r);
    expect_error(&r, 405, "method_not_allowed", "GET");
    resp_free(&r);
}

/* ------------------------------------------------------------------ */
/* Every error status                                                   */
/* ------------------------------------------------------------------ */

static void test_error_400(void **state)
{
    (void)state;
    resp r;
    req("POST", "/http_fx/actors/fx/add", NULL, "{\"a\":\"x\",\"b\":2}", &r);
    expect_error(&r, 400, "bad_args", "parameter 'a'");
    resp_free(&r);
    req("POST", "/http_fx/actors/fx/add", NULL, "{\"a\":1,", &r);
    expect_error(&r, 400, "bad_args", "not valid JSON");
    resp_free(&r);
    req("POST", "/http_fx/actors/fx/add", NULL, "{\"a\":1,\"a\":2}", &r);
    expect_error(&r, 400, "bad_args", "duplicate");
    resp_free(&r);
    req("POST", "/http_fx/actors/fx/add", NULL, "7", &r);
    expect_error(&r, 400, "bad_args", "object (arguments by name) or array");
    resp_free(&r);
    req("GET", "/http_fx/bad%zzescape", NULL, NULL, &r);
    expect_error(&r, 400, "invalid", "%XX");
    resp_free(&r);
}

static void test_error_400_depth(void **state)
{
    (void)state;
    resp r;
    /* max_json_depth = 16 in the test config: 15 nested arrays inside the object pass */
    char ok[128] = "{\"value\":", deep[128] = "{\"value\":";
    for (int i = 0; i < 15; i++)
        strcat(ok, "[");
    for (int i = 0; i < 15; i++)
        strcat(ok, "]");
    strcat(ok, "}");
    for (int i = 0; i < 16; i++)
        strcat(deep, "[");
    for (int i = 0; i < 16; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    req("POST", "/http_fx/actors/fx/echo", NULL, ok, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    req("POST", "/http_fx/actors/fx/echo", NULL, deep, &r);
    expect_error(&r, 400, "bad_args", "nests deeper than 16 levels");
    resp_free(&r);
    /* brackets inside strings do not count */
    req("POST", "/http_fx/actors/fx/echo", NULL,
        "{\"value\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[[\"}", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* 100000 '[' (CVE-2016-4425 shape) is refused before jansson sees it */
    size_t n = 100000;
    char *huge = malloc(n + 1);
    memset(huge, '[', n);
    huge[n] = 0;
    req("POST", "/http_fx/actors/fx/echo", NULL, huge, &r);
    free(huge);
    expect_error(&r, 413, "too_large", "max_body");
    resp_free(&r);
}

static void test_error_401_403(void **state)
{
    (void)state;
    resp r;
    req("POST", "/http_fx/actors/fx/secret", NULL, "{}", &r);
    expect_error(&r, 401, "unauthorized", "admin method");
    assert_true(tu_contains(r.head, "WWW-Authenticate: Bearer"));
    resp_free(&r);
    req("POST", "/http_fx/actors/fx/secret", "Authorization: Bearer not-the-token\r\n", "{}", &r);
    expect_error(&r, 401, "unauthorized", "token is wrong");
    resp_free(&r);
    /* a wrong token is refused even where no token is needed */
    req("POST", "/http_fx/actors/fx/add", "Authorization: Basic Zm9vOmJhcg==\r\n", "[1,2]", &r);
    expect_error(&r, 401, "unauthorized", "token is wrong");
    resp_free(&r);
    assert_non_null(S.token);
    char *h = auth_header(S.token);
    req("POST", "/http_fx/actors/fx/secret", h, "{}", &r);
    free(h);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(r.json), "s3cret");
    resp_free(&r);
    /* the token file is private */
    char *tp = tu_fmt("%s/data/admin.token", S.dir);
    struct stat st;
    assert_int_equal(stat(tp, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(tp);
}

static void test_error_404(void **state)
{
    (void)state;
    resp r;
    req("POST", "/http_fx/actors/fx/nope", NULL, "{}", &r);
    expect_error(&r, 404, "not_found", "no method 'fx.nope'");
    resp_free(&r);
    req("POST", "/nobody/actors/fx/add", NULL, "{}", &r);
    expect_error(&r, 404, "not_found", "nothing is mounted at /nobody");
    resp_free(&r);
    req("GET", "/_/nope", NULL, NULL, &r);
    expect_error(&r, 404, "not_found", "/_/health");
    resp_free(&r);
    req("GET", "/http_fx/missing.html", NULL, NULL, &r);
    expect_error(&r, 404, "not_found", "no such file");
    resp_free(&r);
}

static void test_error_405(void **state)
{
    (void)state;
    resp r;
    req("GET", "/http_fx/actors/fx/add", NULL, NULL, &r);
    expect_error(&r, 405, "method_not_allowed", "POST");
    assert_true(tu_contains(r.head, "Allow: POST"));
    resp_free(&r);
    req("DELETE", "/_/health", NULL, NULL, &r);
    expect_error(&r, 405, "method_not_allowed", "GET");
    resp_free(&r);
    req("PUT", "/http_fx/index.html", NULL, "{}", &r);
    expect_error(&r, 405, "method_not_allowed", "GET, HEAD");
    resp_free(&r);
}

static void test_error_413(void **state)
{
    (void)state;
    resp r;
    /* decided from Content-Length, before the body is read */
    const char *raw =
        "POST /http_fx/actors/fx/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{";
    raw_request(S.port, raw, strlen(raw), &r);
    expect_error(&r, 413, "too_large", "99999999999 bytes");
    resp_free(&r);
    /* chunked: counted while it arrives */
    size_t n = 70000;
    char *big = malloc(n + 64);
    int k = sprintf(big, "%zx\r\n", n);
    memset(big + k, 'x', n);
    strcpy(big + k + n, "\r\n0\r\n\r\n");
    char *head =
        tu_fmt("POST /http_fx/actors/fx/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%s",
               big);
    raw_request(S.port, head, strlen(head), &r);
    expect_error(&r, 413, "too_large", "65536 bytes");
    resp_free(&r);
    free(head);
    free(big);
}

static void test_error_415(void **state)
{
    (void)state;
    resp r;
    req("POST", "/http_fx/actors/fx/add", "Content-Type: text/plain\r\n", "{\"a\":1,\"b\":2}", &r);
    expect_error(&r, 415, "unsupported_media_type", "application/json");
    resp_free(&r);
    /* a browser form post (CSRF shape) is refused: first for its origin */
    req("POST", "/http_fx/actors/fx/add",
        "Content-Type: application/x-www-form-urlencoded\r\nOrigin: http://evil.example\r\n",
        "{\"a\":1,\"b\":2}", &r);
    expect_error(&r, 403, "origin_not_allowed", "a page from another origin may not change");
    resp_free(&r);
    /* no type at all (fetch with mode no-cors and a Blob body), with or without a body */
    const char *untyped[] = {
        "POST /http_fx/actors/fx/add HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Length: 13\r\n\r\n{\"a\":1,\"b\":2}",
        "POST /http_fx/actors/fx/add HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Length: 0\r\n\r\n",
        "DELETE /http_fx/models/item/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "\r\n"};
    for (size_t i = 0; i < sizeof untyped / sizeof untyped[0]; i++) {
        raw_request(S.port, untyped[i], strlen(untyped[i]), &r);
        expect_error(&r, 415, "unsupported_media_type",
                     "Content-Type: application/json (got none)");
        resp_free(&r);
    }
    req("POST", "/http_fx/actors/fx/add", "Content-Type: application/json; charset=utf-8\r\n",
        "{\"a\":1,\"b\":2}", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_error_500_package(void **state)
{
    (void)state;
    resp r;
    req("POST", "/http_fx/actors/fx/fail", NULL, "{}", &r);
    expect_error(&r, 500, "fixture_broke", "the fixture failed on purpose");
    resp_free(&r);
}

static void test_error_503_not_running(void **state)
{
    (void)state;
    resp r;
    req("POST", "/core_decline/actors/any/method", NULL, "{}", &r);
    expect_error(&r, 503, "state", "core_decline");
    assert_true(tu_contains(r.head, "Retry-After: 1"));
    resp_free(&r);
}

/* ------------------------------------------------------------------ */
/* Models over REST                                                     */
/* ------------------------------------------------------------------ */

static bool have_crud(void)
{
    resp r;
    req("GET", "/http_fx/actors", NULL, NULL, &r);
    bool yes = json_object_get(json_object_get(r.json, "actors"), "item") != NULL;
    resp_free(&r);
    return yes;
}

/*
 * GET /http_fx/models/item<query>: asserts the page's total, that `has`
 * (or NULL) is among the items and `lacks` (or NULL) is not.
 */
static void list_expect(const char *query, json_int_t total, const char *has, const char *lacks)
{
    resp r;
    char *path = tu_fmt("/http_fx/models/item%s", query);
    req("GET", path, NULL, NULL, &r);
    if (r.status != 200)
        fail_msg("GET %s: %d %s", path, r.status, r.body);
    json_t *items = json_object_get(r.json, "items");
    assert_true(json_is_array(items));
    if (json_integer_value(json_object_get(r.json, "total")) != total)
        fail_msg("GET %s: total %" JSON_INTEGER_FORMAT ", expected %" JSON_INTEGER_FORMAT ": %s",
                 path, json_integer_value(json_object_get(r.json, "total")), total, r.body);
    bool saw_has = false, saw_lacks = false;
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *t = json_string_value(json_object_get(it, "title"));
        saw_has |= has && t && !strcmp(t, has);
        saw_lacks |= lacks && t && !strcmp(t, lacks);
    }
    if ((has && !saw_has) || saw_lacks)
        fail_msg("GET %s: expected %s and not %s among the items: %s", path, has ? has : "-",
                 lacks ? lacks : "-", r.body);
    free(path);
    resp_free(&r);
}

static void test_models_rest(void **state)
{
    (void)state;
    if (!have_crud()) {
        fprintf(stderr, "CRUD actors not generated by this build: model routes not tested\n");
        skip();
    }
    resp r;
    req("POST", "/http_fx/models/item", NULL, "{\"title\":\"first\",\"qty\":3}", &r);
    assert_int_equal(r.status, 201);
    json_int_t id = json_integer_value(json_object_get(r.json, "id"));
    assert_true(id > 0);
    char *loc = tu_fmt("Location: /http_fx/models/item/%" JSON_INTEGER_FORMAT, id);
    assert_true(tu_contains(r.head, loc));
    free(loc);
    resp_free(&r);
    req("POST", "/http_fx/models/item", NULL, "{\"title\":\"second\",\"qty\":7,\"done\":true}", &r);
    assert_int_equal(r.status, 201);
    resp_free(&r);

    char *item = tu_fmt("/http_fx/models/item/%" JSON_INTEGER_FORMAT, id);
    req("GET", item, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "title")), "first");
    resp_free(&r);
    req("PATCH", item, NULL, "{\"qty\":4}", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    req("GET", item, NULL, NULL, &r);
    assert_int_equal(json_integer_value(json_object_get(r.json, "qty")), 4);
    resp_free(&r);
    req("PATCH", item, NULL, "{\"id\":999999,\"qty\":4}", &r);
    expect_error(&r, 400, "bad_args", "differs from the id in the path");
    resp_free(&r);

    /* list with a typed filter (qty is an int in the query string) */
    req("GET", "/http_fx/models/item?qty=7", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(tu_contains(r.body, "second"));
    assert_null(strstr(r.body, "first"));
    resp_free(&r);
    req("GET", "/http_fx/models/item?limit=1&offset=0&order=title", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(tu_contains(r.body, "first"));
    resp_free(&r);
    req("GET", "/http_fx/models/item?qty=1&qty=2", NULL, NULL, &r);
    expect_error(&r, 400, "bad_args", "given twice");
    resp_free(&r);
    list_expect("?qty=7", 1, "second", "first");
    list_expect("?qty=4&done=false", 1, "first", "second");
    list_expect("?done=true", 1, "second", "first");
    list_expect("?qty.gt=4", 1, "second", "first");  /* operators, CRUD spelling */
    list_expect("?qty__le=4", 1, "first", "second"); /* and the field__op spelling */
    list_expect("?title.like=sec%25", 1, "second", "first");
    list_expect("?qty.ge=0&order=-qty&limit=1", 2, "second", "first"); /* total 2, page of 1 */
    list_expect("?order=title&limit=1&offset=1", 2, "second", "first");
    char *by_id = tu_fmt("?id=%" JSON_INTEGER_FORMAT, id);
    list_expect(by_id, 1, "first", "second");
    free(by_id);
    list_expect("?created.gt=0", 2, "first", NULL);
    list_expect("?title=nobody", 0, NULL, "first");
    /* what the CRUD layer refuses comes back as 400 naming the culprit */
    req("GET", "/http_fx/models/item?colour=red", NULL, NULL, &r);
    expect_error(&r, 400, "bad_args", "unknown field 'colour'");
    resp_free(&r);
    req("GET", "/http_fx/models/item?qty=many", NULL, NULL, &r);
    expect_error(&r, 400, "bad_args", "qty");
    resp_free(&r);
    req("GET", "/http_fx/models/item?qty.near=3", NULL, NULL, &r);
    expect_error(&r, 400, "bad_args", "unknown filter operator 'near'");
    resp_free(&r);
    req("GET", "/http_fx/models/item?order=colour", NULL, NULL, &r);
    expect_error(&r, 400, "bad_args", "colour");
    resp_free(&r);
    req("GET", "/http_fx/models/item?limit=5000", NULL, NULL, &r);
    expect_error(&r, 400, "bad_args", "'limit'");
    resp_free(&r);
    req("GET", "/http_fx/models/item?offset=-1", NULL, NULL, &r);
    expect_error(&r, 400, "bad_args", "'offset'");
    resp_free(&r);

    /* 409: title is unique, on new and on a change */
    req("POST", "/http_fx/models/item", NULL, "{\"title\":\"first\"}", &r);
    expect_error(&r, 409, "conflict", "'title' must be unique");
    resp_free(&r);
    req("PATCH", item, NULL, "{\"title\":\"second\"}", &r);
    expect_error(&r, 409, "conflict", "'title' must be unique");
    resp_free(&r);
    req("GET", item, NULL, NULL, &r); /* the refused change left the record as it was */
    assert_string_equal(json_string_value(json_object_get(r.json, "title")), "first");
    resp_free(&r);
    req("PATCH", item, NULL, "{\"qty\":\"lots\"}", &r);
    expect_error(&r, 400, "bad_args", "qty");
    resp_free(&r);
    req("PATCH", "/http_fx/models/item/999999", NULL, "{\"qty\":1}", &r);
    expect_error(&r, 404, "not_found", "999999");
    resp_free(&r);
    /* 400: missing required field / unknown field (the CRUD layer names it) */
    req("POST", "/http_fx/models/item", NULL, "{\"qty\":1}", &r);
    assert_int_equal(r.status, 400);
    assert_true(tu_contains(r.body, "title"));
    resp_free(&r);
    req("POST", "/http_fx/models/item", NULL, "[1]", &r);
    expect_error(&r, 400, "bad_args", "JSON object");
    resp_free(&r);

    req("DELETE", item, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    req("GET", item, NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    free(item);

    req("GET", "/http_fx/models/item/abc", NULL, NULL, &r);
    expect_error(&r, 404, "not_found", "not a record id");
    resp_free(&r);
    req("PUT", "/http_fx/models/item/1", NULL, "{}", &r);
    expect_error(&r, 405, "method_not_allowed", "PATCH");
    resp_free(&r);
    req("DELETE", "/http_fx/models/item", NULL, NULL, &r);
    expect_error(&r, 405, "method_not_allowed", "GET, POST");
    resp_free(&r);
    req("GET", "/http_fx/models/nomodel", NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
}

/* ------------------------------------------------------------------ */
/* Host endpoints                                                       */
/* ------------------------------------------------------------------ */

static void test_health_and_packages(void **state)
{
    (void)state;
    resp r;
    req("GET", "/_/health", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "ready")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "instances"), "http_fx")),
        "running");
    resp_free(&r);
    req("GET", "/_/packages", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    size_t i;
    json_t *it, *fx = NULL;
    json_array_foreach(
        json_object_get(r.json, "instances"), i,
        it) if (strcmp(json_string_value(json_object_get(it, "instance")), "http_fx") == 0) fx = it;
    assert_non_null(fx);
    assert_string_equal(json_string_value(json_object_get(fx, "version")), "1.0.0");
    assert_string_equal(json_string_value(json_object_get(fx, "mount")), "/http_fx");
    assert_string_equal(json_string_value(json_object_get(fx, "state")), "running");
    assert_true(json_is_array(json_object_get(fx, "dependencies")));
    resp_free(&r);
}

/*
 * Parses the exposition with the reference parser (Debian's
 * python3-prometheus-client, under the system python: pyenv's has no
 * Debian packages) and checks types, labels and histogram consistency.
 */
static const char prom_check[] =
    "import sys\n"
    "from prometheus_client.parser import text_string_to_metric_families as parse\n"
    "fams = {f.name: f for f in parse(open(sys.argv[1]).read())}\n"
    "want = {'plughost_calls': 'counter', 'plughost_call_errors': 'counter',\n"
    "        'plughost_call_client_errors': 'counter', 'process_cpu_seconds': 'counter',\n"
    "        'process_open_fds': 'gauge', 'process_max_fds': 'gauge',\n"
    "        'process_resident_memory_bytes': 'gauge', 'process_virtual_memory_bytes': 'gauge',\n"
    "        'process_start_time_seconds': 'gauge', 'plughost_build_info': 'gauge',\n"
    "        'plughost_call_duration_seconds': 'histogram', 'plughost_instance_up': 'gauge',\n"
    "        'plughost_instance_state': 'gauge', 'plughost_http_responses': 'counter',\n"
    "        'plughost_http_requests_in_flight': 'gauge'}\n"
    "for n, t in want.items():\n"
    "    assert n in fams, 'family %s missing; have %s' % (n, sorted(fams))\n"
    "    assert fams[n].type == t, '%s is %s, not %s' % (n, fams[n].type, t)\n"
    "add = {'instance': 'http_fx', 'actor': 'fx', 'method': 'add'}\n"
    "calls = [s.value for s in fams['plughost_calls'].samples\n"
    "         if s.name == 'plughost_calls_total' and s.labels == add]\n"
    "assert calls and calls[0] >= 1, 'no plughost_calls_total for http_fx.fx.add: %r' % calls\n"
    "h = [s for s in fams['plughost_call_duration_seconds'].samples if\n"
    "     all(s.labels.get(k) == v for k, v in add.items())]\n"
    "b = [s.value for s in h if s.name.endswith('_bucket')]\n"
    "assert len(b) > 2 and b == sorted(b), 'buckets not cumulative: %r' % b\n"
    "inf = [s.value for s in h if s.name.endswith('_bucket') and s.labels['le'] == '+Inf']\n"
    "cnt = [s.value for s in h if s.name.endswith('_count')]\n"
    "assert inf == cnt and cnt[0] >= 1, '+Inf %r != count %r' % (inf, cnt)\n"
    "up = {s.labels['instance']: s.value for s in fams['plughost_instance_up'].samples}\n"
    "assert up.get('http_fx') == 1 and up.get('core_decline') == 0, up\n"
    "rss = fams['process_resident_memory_bytes'].samples[0].value\n"
    "assert 1e6 < rss < 1e10, 'process_resident_memory_bytes %r' % rss\n"
    "fds = fams['process_open_fds'].samples[0].value\n"
    "assert 3 < fds <= fams['process_max_fds'].samples[0].value, 'process_open_fds %r' % fds\n"
    "import time\n"
    "st = fams['process_start_time_seconds'].samples[0].value\n"
    "assert time.time() - 3600 < st <= time.time() + 5, 'process_start_time_seconds %r' % st\n"
    "bi = fams['plughost_build_info'].samples[0]\n"
    "assert bi.value == 1 and bi.labels.get('version'), bi\n"
    "print('prometheus ok: %d families' % len(fams))\n";

static void prometheus_parse(const char *text)
{
    const char *py = "/usr/bin/python3";
    if (tu_run(NULL, "%s -c 'import prometheus_client.parser'", py) != 0) {
        fprintf(stderr,
                "NOTE: %s has no prometheus_client (Debian package "
                "python3-prometheus-client): /_/metrics NOT checked with the reference "
                "parser\n",
                py);
        return;
    }
    char *file = tu_write(S.dir, "metrics.txt", text);
    char *script = tu_write(S.dir, "prom_check.py", prom_check);
    char *out = NULL;
    if (tu_run(&out, "timeout 60 %s '%s' '%s'", py, script, file) != 0)
        fail_msg("/_/metrics is not valid Prometheus text:\n%s", out);
    assert_true(tu_contains(out, "prometheus ok"));
    free(out);
    free(script);
    free(file);
}

/* Every sample line is `name{labels} value` or `name value`; every name has a TYPE. */
static void test_metrics(void **state)
{
    (void)state;
    resp r;
    req("POST", "/http_fx/actors/fx/add", NULL, "[1,1]", &r);
    resp_free(&r);
    req("GET", "/_/metrics", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(tu_contains(r.head, "text/plain; version=0.0.4"));
    assert_true(tu_contains(r.body, "# TYPE plughost_call_duration_seconds histogram"));
    assert_true(tu_contains(
        r.body, "plughost_calls_total{instance=\"http_fx\",actor=\"fx\",method=\"add\"} "));
    assert_true(tu_contains(r.body, "le=\"+Inf\"}"));
    assert_true(tu_contains(r.body, "plughost_instance_up{instance=\"http_fx\"} 1"));
    assert_true(tu_contains(
        r.body, "plughost_instance_state{instance=\"core_decline\",state=\"declined\"} 1"));
    prometheus_parse(r.body);
    char *save = NULL;
    for (char *line = strtok_r(r.body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *sp = strrchr(line, ' ');
        assert_non_null(sp);
        char *end;
        strtod(sp + 1, &end);
        if (*end)
            fail_msg("metric value is not a number: %s", line);
        size_t nl =
            strspn(line, "abcdefghijklmnopqrstuvwxyz_:ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
        assert_true(nl > 0 && (line[nl] == '{' || line[nl] == ' '));
    }
    resp_free(&r);
}

/*
 * The OpenAPI 3.1 validator (npm @seriousme/openapi-schema-validator),
 * installed on first use into $PH_BUILD_DIR/tools by
 * tests/tools/install-openapi-validator.sh. NULL, with the reason printed,
 * when npm or the registry is unavailable.
 */
static char *openapi_validator(void)
{
    const char *build = getenv("PH_BUILD_DIR");
    char *dir = tu_fmt("%s/tools", build && *build ? build : S.dir);
    char *bin = tu_fmt("%s/node_modules/.bin/validate-api", dir);
    char *out = NULL;
    if (access(bin, X_OK) != 0)
        tu_run(&out, "sh '%s/tests/tools/install-openapi-validator.sh' '%s' >/dev/null",
               tu_env("PH_SOURCE_DIR"), dir);
    if (access(bin, X_OK) != 0 || tu_run(NULL, "command -v node >/dev/null") != 0) {
        fprintf(stderr,
                "NOTE: OpenAPI 3.1 validator not available, /_/openapi.json NOT validated: "
                "%s(install npm and run tests/tools/install-openapi-validator.sh %s)\n",
                out ? out : "", dir);
        free(bin);
        bin = NULL;
    }
    free(out);
    free(dir);
    return bin;
}

static void test_openapi(void **state)
{
    (void)state;
    resp r;
    req("GET", "/_/openapi.json", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "openapi")), "3.1.0");
    json_t *paths = json_object_get(r.json, "paths");
    json_t *add = json_object_get(json_object_get(paths, "/http_fx/actors/fx/add"), "post");
    assert_non_null(add);
    assert_string_equal(json_string_value(json_object_get(add, "operationId")), "http_fx.fx.add");
    assert_non_null(json_object_get(json_object_get(paths, "/http_fx/actors/fx/secret"), "post"));
    assert_non_null(json_object_get(
        json_object_get(json_object_get(paths, "/http_fx/actors/fx/secret"), "post"), "security"));
    /* REST list answers one page, as the document says */
    json_t *list = json_object_get(json_object_get(paths, "/http_fx/models/item"), "get");
    json_t *page = json_object_get(
        json_object_get(
            json_object_get(
                json_object_get(json_object_get(json_object_get(list, "responses"), "200"),
                                "content"),
                "application/json"),
            "schema"),
        "properties");
    assert_non_null(json_object_get(page, "items"));
    assert_non_null(json_object_get(page, "total"));

    /* and a standard OpenAPI 3.1 validator accepts it */
    char *validator = openapi_validator();
    if (!validator) {
        resp_free(&r);
        skip();
    }
    char *file = tu_write(S.dir, "openapi.json", r.body);
    char *out = NULL;
    int rc = tu_run(&out, "timeout 60 '%s' '%s'", validator, file);
    if (rc != 0)
        fail_msg("/_/openapi.json does not validate as OpenAPI 3.1 (%s):\n%s", validator, out);
    assert_true(tu_contains(out, "\"valid\": true"));
    /* the validator is not a rubber stamp: a broken document fails */
    char *broken =
        tu_write(S.dir, "broken.json", "{\"openapi\":\"3.1.0\",\"info\":{},\"paths\":{}}");
    free(out);
    assert_int_not_equal(tu_run(&out, "timeout 60 '%s' '%s'", validator, broken), 0);
    free(out);
    free(broken);
    free(file);
    free(validator);
    resp_free(&r);
}

/* ------------------------------------------------------------------ */
/* Static files and traversal                                           */
/* ------------------------------------------------------------------ */

static void test_static_files(void **state)
{
    (void)state;
    static const struct {
        const char *path, *type, *part;
    } ok[] = {
        {"/http_fx/", "text/html", "fixture index"},
        {"/http_fx/index.html", "text/html", "fixture index"},
        {"/http_fx/css/site.css", "text/css", "color"},
        {"/http_fx/data.json", "application/json", "static"},
        {"/http_fx/sub/", "text/html", "sub index"},
        {"/http_fx/alias.css", "text/css", "color"}, /* a symlink that stays inside www/ */
        {"/http_fx/wiki/page.md", "text/markdown", "A wiki page"},
        {"/http_fx/wiki/", "text/html", "Hello from the wiki"}, /* wiki/index.md, rendered */
        {"/http_fx/wiki/page", "text/html", "A wiki page"},     /* page.md, rendered */
        {"/http_fx/css/%73ite.css", "text/css", "color"},       /* escapes are decoded once */
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        resp r;
        req("GET", ok[i].path, NULL, NULL, &r);
        if (r.status != 200)
            fail_msg("%s: %d %s", ok[i].path, r.status, r.body);
        assert_true(tu_contains(r.head, ok[i].type));
        assert_true(tu_contains(r.body, ok[i].part));
        assert_true(tu_contains(r.head, "X-Content-Type-Options: nosniff"));
        resp_free(&r);
    }
    resp r;
    req("GET", "/http_fx/sub", NULL, NULL, &r);
    assert_int_equal(r.status, 301);
    assert_true(tu_contains(r.head, "Location: /http_fx/sub/"));
    resp_free(&r);
    req("GET", "/http_fx/wiki", NULL, NULL, &r);
    assert_int_equal(r.status, 301);
    assert_true(tu_contains(r.head, "Location: /http_fx/wiki/"));
    resp_free(&r);
    req("HEAD", "/http_fx/css/site.css", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "");
    resp_free(&r);
}

static void test_traversal_corpus(void **state)
{
    (void)state;
    static const char *const corpus[] = {
        "/http_fx/../package.ini",
        "/http_fx/..%2fpackage.ini",
        "/http_fx/..%2Fpackage.ini",
        "/http_fx/%2e%2e/package.ini",
        "/http_fx/%2e%2e%2fpackage.ini",
        "/http_fx/.%2e/package.ini",
        "/http_fx/css/../../package.ini",
        "/http_fx/css/..%2f..%2fpackage.ini",
        "/http_fx/css/..%5c..%5cpackage.ini",
        "/http_fx/..\\package.ini",
        "/http_fx/%5c..%5cpackage.ini",
        "/http_fx/%2fetc%2fpasswd",
        "/http_fx//etc/passwd",
        "/http_fx/index.html%00.css",
        "/http_fx/%00",
        "/http_fx/%252e%252e/package.ini", /* double encoding stays literal */
        "/http_fx/wiki/../www/../package.ini",
        "/http_fx/wiki/..%2f..%2fpackage.ini",
        "/http_fx/escape.txt",         /* symlink to a file outside */
        "/http_fx/outside/secret.txt", /* symlink to a directory outside */
        "/http_fx/manifest.ini",       /* symlink to ../package.ini */
        "/http_fx/./index.html/..",
        "/http_fx/%",
        "/http_fx/%2",
        "/http_fx/%g0",
    };
    for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
        resp r;
        req("GET", corpus[i], NULL, NULL, &r);
        if (r.status != 400 && r.status != 404)
            fail_msg("%s: expected 400 or 404, got %d: %s", corpus[i], r.status, r.body);
        if (strstr(r.body, "TOPSECRET") || strstr(r.body, "[package]") || strstr(r.body, "root:"))
            fail_msg("%s leaked a file outside www/: %s", corpus[i], r.body);
        assert_non_null(json_object_get(r.json, "error"));
        resp_free(&r);
    }
    /* an absolute-form or relative request target never reaches a file */
    resp r;
    const char *raw =
        "GET ../../package.ini HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    raw_request(S.port, raw, strlen(raw), &r);
    assert_true(r.status == 400 || r.status == 404 || r.status == -1);
    assert_null(strstr(r.body ? r.body : "", "[package]"));
    resp_free(&r);
}

/* ------------------------------------------------------------------ */
/* Slow and many clients                                                */
/* ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_slow_client(void **state)
{
    (void)state;
    /* a client that sends half a request and stalls */
    int slow = tcp_connect(S.port);
    assert_true(slow >= 0);
    const char *part =
        "POST /http_fx/actors/fx/add HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{";
    assert_true(send(slow, part, strlen(part), MSG_NOSIGNAL) > 0);
    /* others are served meanwhile */
    double t0 = now_s();
    for (int i = 0; i < 20; i++) {
        resp r;
        req("POST", "/http_fx/actors/fx/add", NULL, "[1,2]", &r);
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
    assert_true(now_s() - t0 < 2.0);
    /* and the stalled connection is closed by the timeout (2 s in the config) */
    struct pollfd p = {slow, POLLIN, 0};
    int rc = poll(&p, 1, 6000);
    assert_int_equal(rc, 1);
    char buf[512];
    ssize_t n = recv(slow, buf, sizeof(buf), 0);
    assert_true(n <= 0 || n > 0); /* closed (0/-1) or an error answer: both end the stall */
    double held = now_s() - t0;
    assert_true(held < 6.0);
    close(slow);
}

/* True if the server has not closed fd (no EOF or error waiting on it). */
static bool still_open(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
}

static void test_per_client_limit(void **state)
{
    (void)state;
    /*
     * The idle connections are closed by the 2 s connection timeout; on a
     * loaded machine that can happen before the 33rd is tried, which then
     * rightly gets in. Such a round proves nothing and is tried again.
     */
    int status = 0;
    bool valid = false;
    for (int attempt = 0; attempt < 3 && !valid; attempt++) {
        int fds[32], opened = 0;
        for (int i = 0; i < 32; i++) /* max_connections_per_ip = 32 */
            if ((fds[i] = tcp_connect(S.port)) >= 0)
                opened++;
        usleep(300 * 1000);
        /* the 33rd is accepted by the kernel, then dropped by the server without an answer */
        resp r;
        const char *raw = "GET /_/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        raw_request(S.port, raw, strlen(raw), &r);
        status = r.status;
        resp_free(&r);
        valid = opened == 32;
        for (int i = 0; i < 32; i++) {
            valid = valid && fds[i] >= 0 && still_open(fds[i]);
            if (fds[i] >= 0)
                close(fds[i]);
        }
        if (!valid)
            fprintf(stderr,
                    "per-client limit: round %d inconclusive (a held connection timed "
                    "out first); again\n",
                    attempt + 1);
        usleep(300 * 1000);
    }
    assert_true(valid);
    assert_int_equal(status, -1);
    resp r;
    req("GET", "/_/health", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

typedef struct worker {
    int id, ok;
} worker;

static void *hammer(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 50; i++) {
        char body[64];
        snprintf(body, sizeof(body), "[%d,%d]", w->id, i);
        resp r;
        req_try(S.port, "POST", "/http_fx/actors/fx/add", NULL, body, &r);
        if (r.status == 200 && json_integer_value(r.json) == w->id + i)
            w->ok++;
        resp_free(&r);
    }
    return NULL;
}

static void *napper(void *arg)
{
    resp r;
    req_try(S.port, "POST", "/http_fx/actors/fx/nap", NULL, "[800]", &r);
    *(int *)arg = r.status;
    resp_free(&r);
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    (void)state;
    pthread_t slow_t, t[8];
    worker w[8];
    int nap_status = 0;
    pthread_create(&slow_t, NULL, napper, &nap_status);
    usleep(50 * 1000);
    double t0 = now_s();
    for (int i = 0; i < 8; i++) {
        w[i] = (worker){i * 1000, 0};
        pthread_create(&t[i], NULL, hammer, &w[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].ok, 50);
    }
    double took = now_s() - t0;
    pthread_join(slow_t, NULL);
    assert_int_equal(nap_status, 200);
    fprintf(stderr, "400 requests from 8 clients in %.3f s beside a 0.8 s call\n", took);
}

/* ------------------------------------------------------------------ */
/* The CLI client (host/client.c) against the same host                 */
/* ------------------------------------------------------------------ */

static void test_client(void **state)
{
    (void)state;
    char *url = tu_fmt("http://127.0.0.1:%d", S.port);
    json_t *out = NULL, *args = json_pack("{s:i,s:i}", "a", 20, "b", 22);
    assert_int_equal(ph_client_call(url, NULL, "http_fx.fx.add", args, &out), 0);
    assert_int_equal(json_integer_value(out), 42);
    json_decref(out);
    json_decref(args);

    assert_int_equal(ph_client_call(url, NULL, "http_fx.fx.fail", NULL, &out), PH_EPACKAGE);
    assert_string_equal(ph_error_last_word(), "fixture_broke");
    assert_true(tu_contains(ph_error_last(), "failed on purpose"));
    assert_int_equal(ph_client_call(url, NULL, "http_fx.fx.secret", NULL, &out), PH_EAUTH);
    assert_int_equal(ph_client_call(url, S.token, "http_fx.fx.secret", NULL, &out), 0);
    assert_string_equal(json_string_value(out), "s3cret");
    json_decref(out);
    /* the local socket: the host's own user needs no token, even for an admin method */
    char *local = tu_fmt(PH_CLIENT_LOCAL "%s/data/plughost.sock", S.dir);
    assert_int_equal(ph_client_call(local, NULL, "http_fx.fx.secret", NULL, &out), 0);
    assert_string_equal(json_string_value(out), "s3cret");
    json_decref(out);
    free(local);
    local = tu_fmt(PH_CLIENT_LOCAL "%s/data/none.sock", S.dir);
    assert_int_equal(ph_client_call(local, NULL, "http_fx.fx.add", NULL, &out), PH_EUNREACHABLE);
    char *msg = tu_fmt("no host is running (no socket at %s/data/none.sock); start one with "
                       "plughost run",
                       S.dir);
    assert_string_equal(ph_error_last(), msg);
    free(msg);
    free(local);
    assert_int_equal(ph_client_call(url, NULL, "nobody.x.y", NULL, &out), PH_ENOTFOUND);
    assert_int_equal(ph_client_call(url, NULL, "not-an-address", NULL, &out), PH_EINVAL);
    assert_true(tu_contains(ph_error_last(), "instance.actor.method"));
    assert_int_equal(ph_client_get_json(url, NULL, "/_/packages", &out), 0);
    assert_true(json_is_array(json_object_get(out, "instances")));
    json_decref(out);
    free(url);

    url = tu_fmt("http://127.0.0.1:%d", free_port());
    assert_int_equal(ph_client_call(url, NULL, "http_fx.fx.add", NULL, &out),
                     PH_EUNREACHABLE); /* nothing listens there */
    assert_true(tu_contains(ph_error_last(), "is `plughost run` up?"));
    free(url);
    /* https is the client's (libcurl) for a TLS proxy in front; other schemes are refused */
    assert_int_equal(ph_client_call("ftp://x", NULL, "a.b.c", NULL, &out), PH_EINVAL);
    assert_true(
        tu_contains(ph_error_last(), "URL 'ftp://x' is not supported; use http://HOST:PORT"));
}

/* ------------------------------------------------------------------ */
/* Separate hosts: require_token, graceful shutdown                     */
/* ------------------------------------------------------------------ */

static void test_require_token(void **state)
{
    (void)state;
    assert_int_equal(
        server_start(
            &O, "[auth]\nrequire_token = true\ntoken = tok-0123456789abcdef0123456789abcdef\n"),
        0);
    resp r;
    req_on(O.port, "POST", "/http_fx/actors/fx/add", NULL, "[1,2]", &r);
    expect_error(&r, 401, "unauthorized", "require_token");
    resp_free(&r);
    req_on(O.port, "GET", "/_/packages", NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    req_on(O.port, "GET", "/http_fx/index.html", NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    req_on(O.port, "GET", "/_/health", NULL, NULL, &r); /* liveness stays open */
    assert_int_equal(r.status, 200);
    resp_free(&r);
    req_on(O.port, "POST", "/http_fx/actors/fx/add",
           "Authorization: Bearer tok-0123456789abcdef0123456789abcdef\r\n", "[1,2]", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    req_on(O.port, "POST", "/http_fx/actors/fx/add", "Authorization: Bearer tok-124\r\n", "[1,2]",
           &r);
    expect_error(&r, 401, "unauthorized", "token is wrong");
    resp_free(&r);
    assert_int_equal(server_stop(&O), 0);
}

typedef struct inflight {
    int port, status;
    char *body;
} inflight;

static void *long_call(void *arg)
{
    inflight *f = arg;
    resp r;
    req_try(f->port, "POST", "/http_fx/actors/fx/nap", NULL, "[1000]", &r);
    f->status = r.status;
    f->body = strdup(r.body ? r.body : "");
    resp_free(&r);
    return NULL;
}

static void test_graceful_shutdown(void **state)
{
    (void)state;
    assert_int_equal(server_start(&O, NULL), 0);
    inflight f = {O.port, 0, NULL};
    pthread_t t;
    pthread_create(&t, NULL, long_call, &f);
    usleep(300 * 1000);
    double t0 = now_s();
    kill(O.pid, SIGTERM);
    pthread_join(t, NULL);
    assert_int_equal(f.status, 200); /* the request in flight finished */
    assert_string_equal(f.body, "1000\n");
    free(f.body);
    int status;
    waitpid(O.pid, &status, 0);
    O.pid = 0;
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(now_s() - t0 < 5.0);
    /* and nothing listens any more */
    assert_true(tcp_connect(O.port) < 0);
    server_stop(&O);
}

/* ------------------------------------------------------------------ */
/* Status endpoints while hot reloads swap an instance                 */
/* ------------------------------------------------------------------ */

typedef struct reader {
    int port;
    const char *method, *path, *body;
    atomic_bool *stop;
    int ok, bad;
    char *first_bad;
} reader;

static void *read_loop(void *arg)
{
    reader *rd = arg;
    /* paced: one connection per request, so TIME_WAIT must not eat the ephemeral ports */
    struct timespec pace = {0, 2 * 1000 * 1000};
    while (!atomic_load(rd->stop)) {
        resp r;
        nanosleep(&pace, NULL);
        req_try(rd->port, rd->method, rd->path, NULL, rd->body, &r);
        bool good = r.status == 200 &&
                    (strstr(rd->path, "metrics") ? tu_contains(r.body, "# TYPE") : r.json != NULL);
        if (good) {
            rd->ok++;
        } else {
            if (!rd->first_bad)
                rd->first_bad = tu_fmt("%s %s: %d %s", rd->method, rd->path, r.status, r.body);
            rd->bad++;
        }
        resp_free(&r);
    }
    return NULL;
}

/* A build of the http_fx fixture whose fx.build method returns `tag`. */
static char *fx_variant(const server *s, int tag)
{
    char *out = tu_fmt("%s/http_fx-%d.so", s->dir, tag);
    char *log = NULL;
    int rc = tu_run(&log,
                    "cc -shared -fPIC -fvisibility=hidden -I'%1$s/sdk/include' "
                    "-DPH_PACKAGE_NAME='\"http_fx\"' -DPH_PACKAGE_VERSION='\"1.0.0\"' "
                    "-DHTTP_FX_BUILD=%2$d -o '%3$s' '%1$s/tests/packages/http_fx/http_fx.c'",
                    tu_env("PH_SOURCE_DIR"), tag, out);
    if (rc != 0)
        fail_msg("compiling the http_fx variant failed: %s", log);
    free(log);
    return out;
}

static void test_status_during_reload(void **state)
{
    (void)state;
    assert_int_equal(server_start(&O, NULL), 0);
    char *b[2] = {fx_variant(&O, 2), fx_variant(&O, 3)};
    char *lib = tu_fmt("%s/pkgs/http_fx/http_fx.so", O.dir);
    char *auth = auth_header(O.token);
    atomic_bool stop = false;
    reader rd[] = {
        {O.port, "GET", "/_/health", NULL, &stop, 0, 0, NULL},
        {O.port, "GET", "/_/packages", NULL, &stop, 0, 0, NULL},
        {O.port, "GET", "/_/metrics", NULL, &stop, 0, 0, NULL},
        {O.port, "GET", "/http_fx/data.json", NULL, &stop, 0, 0, NULL}, /* mount lookup */
        {O.port, "POST", "/http_fx/actors/fx/add", "[1,2]", &stop, 0, 0, NULL},
    };
    enum { NR = sizeof(rd) / sizeof(rd[0]) };
    pthread_t t[NR];
    for (int i = 0; i < NR; i++)
        pthread_create(&t[i], NULL, read_loop, &rd[i]);
    const int swaps = 6;
    char *failure = NULL;
    for (int i = 0; i < swaps && !failure; i++) {
        int tag = 2 + i % 2;
        char *out = NULL;
        if (tu_run(&out, "cp '%s' '%s'", b[i % 2], lib) != 0)
            failure = tu_fmt("cp: %s", out);
        free(out);
        resp r;
        req_try(O.port, "POST", "/_/reload/http_fx", auth, NULL, &r);
        if (!failure &&
            (r.status != 200 || json_integer_value(json_object_get(r.json, "instances")) != 1))
            failure = tu_fmt("reload %d: %d %s%s", i, r.status, r.head, r.body);
        resp_free(&r);
        req_try(O.port, "POST", "/http_fx/actors/fx/build", NULL, NULL, &r);
        if (!failure && (r.status != 200 || json_integer_value(r.json) != tag))
            failure = tu_fmt("after reload %d fx.build answered %d %s (want %d)", i, r.status,
                             r.body, tag);
        resp_free(&r);
        usleep(50 * 1000);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < NR; i++)
        pthread_join(t[i], NULL);
    int wst;
    if (waitpid(O.pid, &wst, WNOHANG) == O.pid) {
        char *log = tu_read(O.log);
        O.pid = 0;
        fail_msg("plughost died during the reloads (%s %d); its log:\n%s",
                 WIFSIGNALED(wst) ? "signal" : "exit status",
                 WIFSIGNALED(wst) ? WTERMSIG(wst) : WEXITSTATUS(wst), log ? log : "");
    }
    if (failure)
        fail_msg("%s", failure);
    for (int i = 0; i < NR; i++) {
        if (rd[i].bad)
            fail_msg("%d of %d requests failed during reloads, first: %s", rd[i].bad,
                     rd[i].bad + rd[i].ok, rd[i].first_bad);
        assert_true(rd[i].ok > 0);
        fprintf(stderr, "%-5s %-24s %4d answers during %d reloads\n", rd[i].method, rd[i].path,
                rd[i].ok, swaps);
    }
    /* /_/packages reports the swaps and the build that serves now */
    resp r;
    req_on(O.port, "GET", "/_/packages", NULL, NULL, &r);
    json_t *fx = NULL, *it;
    size_t i;
    json_array_foreach(
        json_object_get(r.json, "instances"), i,
        it) if (!strcmp(json_string_value(json_object_get(it, "instance")), "http_fx")) fx = it;
    assert_non_null(fx);
    assert_int_equal(json_integer_value(json_object_get(fx, "reloads")), swaps);
    assert_int_equal(json_integer_value(json_object_get(fx, "reload_failures")), 0);
    assert_string_equal(json_string_value(json_object_get(fx, "state")), "running");
    assert_non_null(json_object_get(fx, "build"));
    resp_free(&r);
    free(auth);
    free(lib);
    free(b[0]);
    free(b[1]);
    assert_int_equal(server_stop(&O), 0);
}

int main(void)
{
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_call_named_and_positional),
        cmocka_unit_test(test_call_like_curl_d),
        cmocka_unit_test(test_list_actors),
        cmocka_unit_test(test_error_400),
        cmocka_unit_test(test_error_400_depth),
        cmocka_unit_test(test_error_401_403),
        cmocka_unit_test(test_error_404),
        cmocka_unit_test(test_error_405),
        cmocka_unit_test(test_error_413),
        cmocka_unit_test(test_error_415),
        cmocka_unit_test(test_error_500_package),
        cmocka_unit_test(test_error_503_not_running),
        cmocka_unit_test(test_models_rest),
        cmocka_unit_test(test_health_and_packages),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_openapi),
        cmocka_unit_test(test_static_files),
        cmocka_unit_test(test_traversal_corpus),
        cmocka_unit_test(test_slow_client),
        cmocka_unit_test(test_per_client_limit),
        cmocka_unit_test(test_concurrent_clients),
        cmocka_unit_test(test_client),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test_teardown(test_require_token, own_teardown),
        cmocka_unit_test_teardown(test_graceful_shutdown, own_teardown),
        cmocka_unit_test_teardown(test_status_during_reload, own_teardown),
    };
    int failed =
        cmocka_run_group_tests_name("http (shared host)", shared, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("http (own host)", own, NULL, NULL);
    return failed;
}
