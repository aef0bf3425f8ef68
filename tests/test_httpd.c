/*
 * httpd.c, the HTTP/1.1 engine, in process with a handler of the test's
 * own: the request as the handler sees it, trusted and ordinary listeners,
 * threads started when handlers block (a blocked handler must not delay a
 * request on another connection), and an orderly stop.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "httpd.h"
#include "testutil.h"

static atomic_bool release; /* lets the blocked handlers return */
static atomic_int blocked;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Answers "METHOD target query trusted=N body" as text; /block waits for `release`. */
static int handler(void *ud, const ph_httpd_req *rq, ph_httpd_resp *rs)
{
    (void)ud;
    if (strcmp(rq->path, "/block") == 0) {
        atomic_fetch_add(&blocked, 1);
        for (int i = 0; i < 3000 && !atomic_load(&release); i++) /* at most 30 s */
            usleep(10 * 1000);
        atomic_fetch_sub(&blocked, 1);
    }
    const char *x = ph_httpd_header_get(rq, "x-test");
    if (asprintf(&rs->body, "%s %s %s trusted=%d x=%s body=%.*s", rq->method, rq->path,
                 rq->query ? rq->query : "-", rq->trusted, x ? x : "-", (int)rq->body_len,
                 rq->body ? rq->body : "") < 0)
        return -1;
    rs->body_len = strlen(rs->body);
    ph_httpd_resp_header(rs, "Content-Type", "text/plain");
    return 0;
}

static int tcp_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Sends `req` on fd and reads one response, waiting at most `ms`; returns it (malloc'd). */
static char *exchange_within(int fd, const char *req, double ms)
{
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    char *buf = calloc(1, 65536);
    size_t n = 0;
    double end = now_ms() + ms;
    while (n < 65535 && now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = recv(fd, buf + n, 65535 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        char *e = strstr(buf, "\r\n\r\n");
        char *cl = strstr(buf, "Content-Length: ");
        if (e && cl && n >= (size_t)(e + 4 - buf) + strtoul(cl + 16, NULL, 10))
            break;
    }
    return buf;
}

static char *exchange(int fd, const char *req)
{
    return exchange_within(fd, req, 30000); /* ends once the answer is whole */
}

static ph_httpd *start(int min_threads, int *port, const char *unix_path)
{
    ph_httpd_conf c = {.max_body = 1024,
                       .request_timeout = 10,
                       .idle_timeout = 10,
                       .max_conns = 64,
                       .max_per_ip = 0,
                       .min_threads = min_threads,
                       .max_threads = 32};
    ph_httpd *s = NULL;
    assert_int_equal(ph_httpd_new(&c, handler, NULL, &s), 0);
    assert_int_equal(ph_httpd_listen_fd(s, tcp_listener(port), false), 0);
    if (unix_path) {
        int u = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", unix_path);
        assert_int_equal(bind(u, (struct sockaddr *)&a, sizeof a), 0);
        assert_int_equal(listen(u, 16), 0);
        assert_int_equal(ph_httpd_listen_fd(s, u, true), 0);
    }
    assert_int_equal(ph_httpd_start(s), 0);
    return s;
}

static void test_request_and_listeners(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *sock = tu_fmt("%s/s", dir);
    int port;
    ph_httpd *s = start(2, &port, sock);
    int fd = tcp_connect(port);
    char *r = exchange(fd, "POST /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\nX-Test: yes\r\n"
                           "Content-Length: 5\r\n\r\nhello");
    assert_true(tu_contains(r, "HTTP/1.1 200 OK\r\n"));
    assert_true(tu_contains(r, "\r\n\r\nPOST /a/b x=1&y=2 trusted=0 x=yes body=hello"));
    free(r);
    /* keep-alive: the same connection serves the next request */
    r = exchange(fd, "GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_true(tu_contains(r, "GET /c - trusted=0 x=- body="));
    free(r);
    close(fd);
    /* the trusted listener marks its requests */
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
    assert_int_equal(connect(u, (struct sockaddr *)&a, sizeof a), 0);
    r = exchange(u, "GET /d HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_true(tu_contains(r, "GET /d - trusted=1"));
    free(r);
    close(u);
    /* a refusal of the engine: JSON, then closed */
    fd = tcp_connect(port);
    r = exchange(fd, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2000\r\n\r\n");
    assert_true(tu_contains(r, "HTTP/1.1 413 Payload Too Large\r\n"));
    assert_true(tu_contains(r, "{\"error\":{\"code\":\"too_large\",\"message\":\"the request body "
                               "(2000 bytes) is larger than the limit of 1024 bytes"));
    char c;
    assert_true(recv(fd, &c, 1, 0) <= 0);
    free(r);
    close(fd);
    assert_true(ph_httpd_free(s, 1000));
    tu_rmtree(dir);
    free(sock);
    free(dir);
}

typedef struct client {
    int port;
    char *resp;
} client;

static void *blocked_client(void *arg)
{
    client *c = arg;
    int fd = tcp_connect(c->port);
    /* longer than the handler blocks: the answer comes once the test releases it, however
     * slow a sanitizer build on a busy machine is in between */
    c->resp = exchange_within(fd, "GET /block HTTP/1.1\r\nHost: h\r\n\r\n", 40000);
    close(fd);
    return NULL;
}

static void test_blocked_handlers_do_not_stall_others(void **state)
{
    (void)state;
    int port;
    ph_httpd *s = start(2, &port, NULL);
    atomic_store(&release, false);
    enum { N = 6 }; /* three times the threads there are at first */
    pthread_t t[N];
    client c[N];
    for (int i = 0; i < N; i++) {
        c[i] = (client){port, NULL};
        pthread_create(&t[i], NULL, blocked_client, &c[i]);
    }
    for (int i = 0; i < 500 && atomic_load(&blocked) < N; i++)
        usleep(10 * 1000);
    assert_int_equal(atomic_load(&blocked), N); /* each got a thread of its own */
    ph_httpd_stats st;
    ph_httpd_stats_get(s, &st);
    assert_true(st.threads >= N); /* the next one is started once they have been blocked a while */
    assert_int_equal(st.inflight, N);
    /* and another connection is answered at once (the best of 3: the machine may be busy) */
    double took = 1e9;
    for (int i = 0; i < 3; i++) {
        double t0 = now_ms();
        int fd = tcp_connect(port);
        char *r = exchange(fd, "GET /quick HTTP/1.1\r\nHost: h\r\n\r\n");
        double t = now_ms() - t0;
        assert_true(tu_contains(r, "GET /quick - trusted=0"));
        free(r);
        close(fd);
        took = t < took ? t : took;
    }
    if (took >= 100)
        fprintf(stderr, "a quick request beside %d blocked ones took %.0f ms\n", N, took);
    assert_true(took < 100);
    atomic_store(&release, true);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_true(tu_contains(c[i].resp, "GET /block - trusted=0"));
        free(c[i].resp);
    }
    assert_true(ph_httpd_free(s, 1000));
}

/* Sends `req` a byte at a time (a pause between): the engine reads it in many pieces. */
static char *exchange_bytewise(int port, const char *req)
{
    int fd = tcp_connect(port), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (const char *p = req; *p; p++) {
        if (send(fd, p, 1, MSG_NOSIGNAL) != 1)
            break; /* refused and closed before the rest: the answer is read below */
        usleep(500);
    }
    char *r = exchange_within(fd, "", 30000);
    char c;
    if (!tu_contains(r, "Connection: close\r\n") || recv(fd, &c, 1, 0) > 0)
        r[0] = '!'; /* a refusal must close the connection */
    close(fd);
    return r;
}

/* The checks before the parser keep their place across reads of any size. */
static void test_request_in_pieces(void **state)
{
    (void)state;
    int port;
    ph_httpd *s = start(2, &port, NULL);
    char *r =
        exchange_bytewise(port, "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                                "Connection: close\r\n\r\n5 ;a=b\r\nhello\r\n6;c\r\n "
                                "world\r\n0\r\nX-T: 1\r\n\r\n");
    assert_true(tu_contains(r, "HTTP/1.1 200 OK\r\n"));
    assert_true(tu_contains(r, "\r\n\r\nPOST /a - trusted=0 x=- body=hello world"));
    free(r);
    static const struct {
        const char *req, *status, *message;
    } refused[] = {
        {"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
         "413 Payload Too Large", "the request body is larger than the limit of 1024 bytes"},
        {"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff0\r\n",
         "413 Payload Too Large", "the request body is larger than the limit of 1024 bytes"},
        {"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n"
         "X-A: b\n\r\n",
         "400 Bad Request", "a trailer line of the chunked body ends in a bare LF"},
        {"GET /a HTTP/1.1\r\nX-A: b\r\n\r\n", "400 Bad Request",
         "the request is HTTP/1.1 but has no Host header"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        r = exchange_bytewise(port, refused[i].req);
        if (!tu_contains(r, refused[i].status) || !tu_contains(r, refused[i].message))
            fail_msg("%s: got %s", refused[i].req, r);
        free(r);
    }
    /* HTTP/1.0 may leave Host out */
    r = exchange_bytewise(port, "GET /old HTTP/1.0\r\n\r\n");
    assert_true(tu_contains(r, "GET /old - trusted=0"));
    free(r);
    assert_true(ph_httpd_free(s, 1000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_and_listeners),
        cmocka_unit_test(test_blocked_handlers_do_not_stall_others),
        cmocka_unit_test(test_request_in_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
