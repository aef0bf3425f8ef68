/*
 * URL routing over real HTTP in process: the example packages and the
 * package manager served by ph_http_start on 127.0.0.1; each input is a
 * request: the first byte picks the method, the text up to the first
 * newline is the path (bytes a request line cannot hold are %-escaped) and
 * the rest is a JSON body. This reaches path splitting and decoding, route
 * dispatch, static files, CRUD over REST and the error bodies.
 * Invariant: every request gets a complete HTTP response (no hang, no
 * dropped connection, no crash).
 *
 * Raw mode (the first byte's high bit set, seeds named raw-*): the rest is
 * sent as it is, bytes the HTTP engine itself must read (host/httpd.c:
 * request line, headers, Content-Length, chunked bodies, pipelining). Its
 * invariant: no crash, no hang, and whatever comes back is HTTP/1.1
 * responses, each head once, never a truncated head.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "fuzz.h"
#include "host.h"
#include "http.h"
#include "log.h"

#ifndef PH_FUZZ_PACKAGES
#error "PH_FUZZ_PACKAGES: the directory of the built example packages"
#endif

static ph_host *host;
static ph_http *http;
static int port;

static void stop_all(void)
{
    ph_http_stop(http);
    ph_host_stop(host);
    ph_host_free(host);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &l))
        fz_fail("no free port");
    close(fd);
    return ntohs(a.sin_port);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char *const pkgs[] = {"calc", "hello", "greeter", "counter", "notes", "pkgmgr"};
    char *ini = fz_path("http/host.ini"), *text = NULL, *dirs = strdup("");
    for (size_t i = 0; i < sizeof pkgs / sizeof pkgs[0]; i++) {
        char *more = NULL;
        if (asprintf(&more, "%spackage_dirs = %s/%s\n", dirs, PH_FUZZ_PACKAGES, pkgs[i]) < 0)
            fz_fail("out of memory");
        free(dirs);
        dirs = more;
    }
    if (asprintf(&text,
                 "[host]\n%sdata_dir = %s/http/data\nlog_level = error\nreload = no\n"
                 "[http]\nlisten = 127.0.0.1:%d\nthreads = 2\nmax_connections_per_ip = 1000000\n",
                 dirs, fz_dir(), free_port()) < 0)
        fz_fail("out of memory");
    fz_write(ini, text, strlen(text));
    ph_config cfg;
    ph_log_set_level(getenv("PH_FUZZ_VERBOSE") ? PH_L_INFO : PH_L_ERROR);
    if (ph_config_load(ini, &cfg) != 0 || ph_host_open(&cfg, &host) != 0 ||
        ph_host_start(host) != 0 || ph_http_start(host, &http) != 0)
        fz_fail("cannot serve: %s", ph_error_last());
    port = ph_http_port(http);
    atexit(stop_all);
    free(ini);
    free(text);
    free(dirs);
    return 0;
}

/* A connection to the host; waits out a moment without free local ports. */
static int connect_host(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 10};
    for (int tries = 0; tries < 500; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
            fz_fail("no socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            return fd;
        int e = errno;
        close(fd);
        if (e != EADDRNOTAVAIL && e != EAGAIN && e != EINTR)
            fz_fail("cannot connect to the host: %s", strerror(e));
        usleep(10000);
    }
    fz_fail("cannot connect to the host: no local port for 5 s");
}

/* The request: method, escaped target, headers, body. Caller frees. */
static char *request(const uint8_t *data, size_t size, size_t *len)
{
    static const char *const methods[] = {"GET", "POST", "PATCH", "DELETE", "PUT", "HEAD"};
    const char *method = methods[data[0] % (sizeof methods / sizeof methods[0])];
    const uint8_t *p = data + 1, *end = data + size;
    const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
    const uint8_t *path_end = nl ? nl : end;
    size_t path_len = (size_t)(path_end - p), body_len = nl ? (size_t)(end - nl - 1) : 0;
    char *target = malloc(path_len * 3 + 2), *t = target;
    if (!target)
        fz_fail("out of memory");
    if (path_len == 0 || *p != '/')
        *t++ = '/';
    for (; p < path_end; p++) {
        if (*p <= 0x20 || *p >= 0x7F)
            t += sprintf(t, "%%%02X", *p);
        else
            *t++ = (char)*p;
    }
    *t = '\0';
    char *head = NULL;
    int n = asprintf(&head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     method, target, port, body_len);
    free(target);
    if (n < 0)
        fz_fail("out of memory");
    char *req = malloc((size_t)n + body_len + 1);
    if (!req)
        fz_fail("out of memory");
    memcpy(req, head, (size_t)n);
    if (body_len)
        memcpy(req + n, nl + 1, body_len);
    *len = (size_t)n + body_len;
    free(head);
    return req;
}

/* Raw mode's check of what came back: HTTP/1.1 responses only, each head whole. */
static void check_raw_answer(const char *got, size_t n, const char *req)
{
    if (n == 0)
        return;
    const char *p = got, *end = got + n;
    while (p < end) {
        if ((size_t)(end - p) < 9 || memcmp(p, "HTTP/1.1 ", 9) != 0)
            fz_fail("not an HTTP/1.1 response at byte %zu of the answer to %.200s",
                    (size_t)(p - got), req);
        const char *eoh = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!eoh)
            fz_fail("a response head without its end to %.200s", req);
        const char *cl = memmem(p, (size_t)(eoh - p), "\r\nContent-Length: ", 18);
        size_t body = cl ? strtoul(cl + 18, NULL, 10) : 0;
        /* the answer to a HEAD (or a 100 Continue) has no body: which request of a pipeline
         * this was is not known here, so the next response may start after the head */
        const char *with = eoh + 4 + body, *without = eoh + 4;
        bool next_ok =
            with <= end &&
            (with == end || ((size_t)(end - with) >= 9 && memcmp(with, "HTTP/1.1 ", 9) == 0));
        p = next_ok ? with : without;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t len = 0;
    bool raw = data[0] & 0x80;
    char *req = raw ? fz_str(data + 1, size - 1) : request(data, size, &len);
    if (raw)
        len = size - 1;
    int fd = connect_host();
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* it may answer (413) and close before the body is sent */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    char head[13] = {0};
    size_t got = 0;
    char buf[4096], *all = NULL;
    ssize_t r;
    /* libFuzzer's timer (SIGALRM) interrupts a waiting recv: go on waiting. */
    while ((r = recv(fd, buf, sizeof buf, 0)) > 0 || (r < 0 && errno == EINTR)) {
        if (r < 0)
            continue;
        if (got < sizeof head - 1)
            memcpy(head + got, buf,
                   (size_t)r < sizeof head - 1 - got ? (size_t)r : sizeof head - 1 - got);
        if (raw && got < (1u << 20)) {
            char *more = realloc(all, got + (size_t)r);
            if (!more)
                fz_fail("out of memory");
            all = more;
            memcpy(all + got, buf, (size_t)r);
        }
        got += (size_t)r;
    }
    /* A reset, not a FIN: thousands of requests a second leave no TIME_WAIT behind. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    if (r < 0)
        fz_fail("no complete response (%s) to %.200s", strerror(errno), req);
    if (raw) { /* an incomplete request may end without an answer */
        if (got < (1u << 20))
            check_raw_answer(all, got, req);
        free(all);
        free(req);
        return 0;
    }
    if (strncmp(head, "HTTP/1.1 ", 9) != 0)
        fz_fail("no HTTP response to %.200s", req);
    if (getenv("PH_FUZZ_VERBOSE"))
        fprintf(stderr, "%.*s -> %s\n", (int)strcspn(req, "\r"), req, head);
    free(req);
    return 0;
}
