#include "httpd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>
#include <jansson.h>

#include "error.h"
#include "jsonout.h"
#include "log.h"

/* What an epoll event points at: the first member of each kind. */
enum { K_LISTEN = 1, K_WAKE, K_KICK, K_CONN };

typedef struct listener {
    int kind;
    int fd;
    bool trusted;
    bool busy, closed; /* under s->mu */
    struct listener *next;
} listener;

/* Where a connection is (read by the reaper without the owner's lock). */
enum {
    C_IDLE,      /* waiting for the first byte of a request */
    C_RECEIVING, /* a request is arriving */
    C_BUSY,      /* in the handler: never cut */
    C_WRITING,   /* a response waits for the client to read */
    C_DRAINING,  /* refused: reading what is left before closing */
};

/* Where the scan of a request's bytes is (see scan()). */
enum {
    S_HEAD,    /* the request line and headers */
    S_PARSER,  /* the head is whole: the parser decides how the body is framed */
    S_BODY,    /* a Content-Length body, or none: the parser counts it */
    S_SIZE,    /* a chunk's size (hex digits) */
    S_EXT,     /* the rest of a chunk's size line: its extensions */
    S_SIZE_LF, /* the LF that ends a chunk's size line */
    S_DATA,    /* chunk_left bytes of a chunk's data */
    S_DATA_CR, /* the CRLF after a chunk's data */
    S_DATA_LF,
    S_TRAILERS, /* after the last chunk: trailer lines up to a blank line */
    S_END,      /* the request is whole: the rest is the next request's */
};

/* A request being read; strings are NUL-terminated copies in `sb`. */
typedef struct reading {
    char *sb; /* target, then name, value, name, value ... */
    size_t sb_len, sb_cap;
    size_t target_len;
    size_t *hoff; /* offsets in sb: name, value pairs */
    size_t n_h, cap_h;
    int last_cb; /* 0: target, 1: a header name, 2: a header value */
    size_t head_bytes;
    int n_length;     /* Content-Length headers */
    int n_te;         /* Transfer-Encoding headers */
    bool in_trailers; /* the head is over: fields now are a chunked body's trailers */
    char *body;
    size_t body_len, body_cap;
    bool done, keep_alive;
    /* a refusal decided by a callback */
    unsigned refuse;
    const char *refuse_word;
    char *refuse_msg;
} reading;

typedef struct conn {
    int kind;
    int fd;
    bool trusted;
    ph_httpd *s;
    int family;
    unsigned char ip[16];

    char *in; /* received, not yet parsed: [in_off, in_len) */
    size_t in_off, in_len, in_cap;
    http_parser p;
    reading rd;
    /* the current request, checked byte by byte before the parser sees it (scan) */
    int scan; /* S_* */
    unsigned char prev;
    size_t line_len, lines; /* of the head or the trailers */
    size_t digits, ext_len; /* of a chunk's size line */
    bool ext_semi;          /* the size line's extensions began (';') */
    uint64_t chunk_left;    /* a chunk's size, then what is left of its data */
    uint64_t chunked_total; /* the sizes of a chunked body's chunks so far */

    /* the response being written */
    char *out;
    size_t out_len, out_off;
    char *obody;
    size_t obody_len, obody_off;
    int ofile;
    off_t ofile_off;
    uint64_t ofile_left;
    bool close_after;
    bool more; /* the last read filled the buffer: more may be waiting */

#if defined(__SANITIZE_THREAD__)
    pthread_mutex_t handoff; /* see PH_HANDOFF_LOCK */
#endif
    atomic_int state;
    atomic_llong since_ms;   /* first byte of the current request (or accept, idle) */
    atomic_llong last_io_ms; /* last progress */
    bool cut;                /* under s->mu */
    struct conn *prev_c, *next_c;
} conn;

typedef struct worker {
    pthread_t t;
    int state; /* 0 free, 1 running, 2 ended (to join); under s->mu */
    ph_httpd *s;
    atomic_llong busy_since; /* when it took its current event (ms), 0 while waiting */
    atomic_int tid;
} worker;

struct ph_httpd {
    ph_httpd_conf cf;
    ph_httpd_handler fn;
    void *ud;
    int ep;
    struct {
        int kind;
        int fd;
    } wake, kick; /* stop every thread; wake one for the ready list */
    pthread_mutex_t rq_mu;
    void **rq; /* the ready list: a ring of rq_cap */
    size_t rq_head, rq_n, rq_cap;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    listener *listeners;
    conn *conns;
    size_t n_conns;
    worker *workers; /* cf.max_threads slots */
    int n_threads;
    bool started, threads_stop;
    atomic_int idle; /* threads in epoll_wait */
    pthread_t reaper;
    bool reaper_running, reaper_stop;

    atomic_bool stopping;
    atomic_long inflight;
    atomic_ulong by_class[6];
    atomic_ulong cut_deadline, cut_room;
};

static http_parser_settings settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Responses                                                            */
/* ------------------------------------------------------------------ */

const char *ph_httpd_reason(unsigned status)
{
    switch (status) {
#define PH_REASON(num, name, text)                                                                 \
    case num:                                                                                      \
        return #text;
        HTTP_STATUS_MAP(PH_REASON)
#undef PH_REASON
    default:
        return "Unknown";
    }
}

char *ph_httpd_error_body(const char *word, const char *message, size_t *len)
{
    json_t *e = json_pack("{s:{s:s,s:s}}", "error", "code", word, "message", message);
    if (!e) { /* not UTF-8 (a message quoting raw request bytes): mask what is not ASCII */
        char *m = strdup(message);
        for (char *c = m; c && *c; c++)
            if ((unsigned char)*c >= 0x80)
                *c = '?';
        e = m ? json_pack("{s:{s:s,s:s}}", "error", "code", word, "message", m) : NULL;
        free(m);
    }
    ph_json_buf b = {0}; /* not json_dumps: see jsonout.h */
    if (!e || json_dump_callback(e, ph_json_buf_add, &b, JSON_COMPACT) != 0 ||
        ph_json_buf_add("\n", 1, &b) != 0) {
        json_decref(e);
        free(b.p);
        return NULL;
    }
    json_decref(e);
    *len = b.len;
    return b.p;
}

void ph_httpd_resp_init(ph_httpd_resp *rs)
{
    memset(rs, 0, sizeof *rs);
    rs->status = 200;
    rs->file_fd = -1;
}

void ph_httpd_resp_reset(ph_httpd_resp *rs)
{
    free(rs->head);
    free(rs->body);
    if (rs->file_fd >= 0)
        close(rs->file_fd);
    ph_httpd_resp_init(rs);
}

void ph_httpd_resp_header(ph_httpd_resp *rs, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value), need = rs->head_len + nl + vl + 5;
    if (need > rs->head_cap) {
        size_t cap = rs->head_cap ? rs->head_cap * 2 : 256;
        while (cap < need)
            cap *= 2;
        char *h = realloc(rs->head, cap);
        if (!h) {
            rs->failed = true;
            return;
        }
        rs->head = h;
        rs->head_cap = cap;
    }
    char *o = rs->head + rs->head_len;
    memcpy(o, name, nl);
    o[nl] = ':';
    o[nl + 1] = ' ';
    memcpy(o + nl + 2, value, vl);
    o[nl + 2 + vl] = '\r';
    o[nl + 3 + vl] = '\n';
    rs->head_len += nl + vl + 4;
}

const char *ph_httpd_header_get(const ph_httpd_req *rq, const char *name)
{
    for (size_t i = 0; i < rq->n_headers; i++)
        if (strcasecmp(rq->headers[i].name, name) == 0)
            return rq->headers[i].value;
    return NULL;
}

void ph_httpd_count(ph_httpd *s, unsigned status)
{
    unsigned cls = status / 100;
    if (cls >= 1 && cls <= 5)
        atomic_fetch_add_explicit(&s->by_class[cls], 1, memory_order_relaxed);
}

/* Appends decimal v at o; returns the end. */
static char *put_u64(char *o, uint64_t v)
{
    char t[24];
    int n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *o++ = t[--n];
    return o;
}

/*
 * Queues `rs` on the connection (takes what it holds). keep: whether the
 * client may send another request. HEAD: the length without the body.
 */
static int queue_response(conn *c, ph_httpd_resp *rs, bool head_only, bool keep, bool http10)
{
    ph_httpd *s = c->s;
    const char *reason = ph_httpd_reason(rs->status);
    size_t rl = strlen(reason);
    uint64_t blen = rs->file_fd >= 0 ? rs->file_len : rs->body_len;
    bool close_it = !keep || rs->close || atomic_load_explicit(&s->stopping, memory_order_relaxed);
    size_t cap = 64 + rl + rs->head_len + 64;
    char *h = malloc(cap);
    if (!h)
        return -1;
    char *o = h;
    memcpy(o, "HTTP/1.1 ", 9);
    o += 9;
    o = put_u64(o, rs->status);
    *o++ = ' ';
    memcpy(o, reason, rl);
    o += rl;
    *o++ = '\r';
    *o++ = '\n';
    /* RFC 9110 8.6: no Content-Length (and no body) on 1xx, 204 and 304 */
    bool bodiless = rs->status < 200 || rs->status == 204 || rs->status == 304;
    if (bodiless) {
        head_only = true;
    } else {
        static const char cl[] = "Content-Length: ";
        memcpy(o, cl, sizeof cl - 1);
        o += sizeof cl - 1;
        o = put_u64(o, blen);
        *o++ = '\r';
        *o++ = '\n';
    }
    if (close_it) {
        static const char cc[] = "Connection: close\r\n";
        memcpy(o, cc, sizeof cc - 1);
        o += sizeof cc - 1;
    } else if (http10) {
        static const char ka[] = "Connection: keep-alive\r\n";
        memcpy(o, ka, sizeof ka - 1);
        o += sizeof ka - 1;
    }
    if (rs->head_len)
        memcpy(o, rs->head, rs->head_len);
    o += rs->head_len;
    *o++ = '\r';
    *o++ = '\n';
    c->out = h;
    c->out_len = (size_t)(o - h);
    c->out_off = 0;
    if (head_only) {
        free(rs->body);
        if (rs->file_fd >= 0)
            close(rs->file_fd);
    } else if (rs->file_fd >= 0) {
        c->ofile = rs->file_fd;
        c->ofile_off = 0;
        c->ofile_left = rs->file_len;
    } else {
        c->obody = rs->body;
        c->obody_len = rs->body_len;
        c->obody_off = 0;
    }
    rs->body = NULL;
    rs->file_fd = -1;
    free(rs->head);
    rs->head = NULL;
    c->close_after = close_it;
    ph_httpd_count(s, rs->status);
    return 0;
}

static bool out_pending(const conn *c)
{
    return c->out || c->ofile >= 0;
}

static void out_clear(conn *c)
{
    free(c->out);
    free(c->obody);
    c->out = c->obody = NULL;
    c->out_len = c->out_off = c->obody_len = c->obody_off = 0;
    if (c->ofile >= 0)
        close(c->ofile);
    c->ofile = -1;
    c->ofile_left = 0;
}

/* Writes what is queued: 1 all written, 0 the socket is full, -1 the connection failed. */
static int flush_out(conn *c)
{
    while (c->out) {
        struct iovec iov[2] = {{c->out + c->out_off, c->out_len - c->out_off}, {NULL, 0}};
        int n_iov = 1;
        if (c->obody && c->obody_off < c->obody_len) { /* no arithmetic on a NULL body */
            iov[1] = (struct iovec){c->obody + c->obody_off, c->obody_len - c->obody_off};
            n_iov = 2;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        atomic_store_explicit(&c->last_io_ms, now_ms(), memory_order_relaxed);
        size_t hw = (size_t)w < c->out_len - c->out_off ? (size_t)w : c->out_len - c->out_off;
        c->out_off += hw;
        c->obody_off += (size_t)w - hw;
        if (c->out_off == c->out_len && (!c->obody || c->obody_off == c->obody_len)) {
            free(c->out);
            free(c->obody);
            c->out = c->obody = NULL;
        }
    }
    while (c->ofile >= 0) {
        if (!c->ofile_left) {
            close(c->ofile);
            c->ofile = -1;
            break;
        }
        size_t chunk = c->ofile_left > (1u << 20) ? (1u << 20) : (size_t)c->ofile_left;
        ssize_t w = sendfile(c->fd, c->ofile, &c->ofile_off, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        if (w == 0) /* the file shrank: the length sent cannot be kept */
            return -1;
        atomic_store_explicit(&c->last_io_ms, now_ms(), memory_order_relaxed);
        c->ofile_left -= (uint64_t)w;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Reading a request                                                    */
/* ------------------------------------------------------------------ */

static void reading_reset(reading *r)
{
    /* keep the buffers: the next request on the connection reuses them */
    r->sb_len = r->target_len = r->n_h = r->head_bytes = r->body_len = 0;
    r->last_cb = 0;
    r->n_length = 0;
    r->done = r->keep_alive = r->in_trailers = false;
    r->n_te = 0;
    r->refuse = 0;
    r->refuse_word = NULL;
    free(r->refuse_msg);
    r->refuse_msg = NULL;
}

static void reading_free(reading *r)
{
    free(r->sb);
    free(r->hoff);
    free(r->body);
    free(r->refuse_msg);
}

static int refuse(reading *r, unsigned status, const char *word, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(reading *r, unsigned status, const char *word, const char *fmt, ...)
{
    if (r->refuse)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&r->refuse_msg, fmt, ap) < 0)
        r->refuse_msg = NULL;
    va_end(ap);
    r->refuse = status;
    r->refuse_word = word;
    return -1;
}

static int sb_add(reading *r, const char *p, size_t n)
{
    if (r->sb_len + n + 1 > r->sb_cap) {
        size_t cap = r->sb_cap ? r->sb_cap * 2 : 512;
        while (cap < r->sb_len + n + 1)
            cap *= 2;
        char *b = realloc(r->sb, cap);
        if (!b)
            return -1;
        r->sb = b;
        r->sb_cap = cap;
    }
    memcpy(r->sb + r->sb_len, p, n);
    r->sb_len += n;
    return 0;
}

static int sb_end(reading *r)
{
    if (sb_add(r, "", 0))
        return -1;
    r->sb[r->sb_len++] = '\0';
    return 0;
}

/* Ends a header value without its trailing whitespace (RFC 9110 5.5: OWS is not part of a
 * field value; the parser already skipped the leading one). */
static int value_end(reading *r)
{
    size_t start = r->hoff[r->n_h - 1];
    while (r->sb_len > start && (r->sb[r->sb_len - 1] == ' ' || r->sb[r->sb_len - 1] == '\t'))
        r->sb_len--;
    return sb_end(r);
}

static int push_off(reading *r)
{
    if (r->n_h == r->cap_h) {
        size_t cap = r->cap_h ? r->cap_h * 2 : 32;
        size_t *h = realloc(r->hoff, cap * sizeof *h);
        if (!h)
            return -1;
        r->hoff = h;
        r->cap_h = cap;
    }
    r->hoff[r->n_h++] = r->sb_len;
    return 0;
}

static int oom(reading *r)
{
    return refuse(r, 503, ph_error_word(PH_ENOMEM), "out of memory reading the request; retry");
}

static int too_many_headers(reading *r)
{
    if (r->in_trailers)
        return refuse(r, 431, "headers_too_large",
                      "the chunked body's trailers are larger than %u bytes; send fewer or "
                      "shorter trailers",
                      PH_HTTPD_MAX_HEADERS);
    return refuse(r, 431, "headers_too_large",
                  "the request's headers are larger than %u bytes; send fewer or shorter headers",
                  PH_HTTPD_MAX_HEADERS);
}

static int uri_too_long(reading *r)
{
    return refuse(r, 414, "uri_too_long",
                  "the request's path and query are longer than %u bytes; send the data in a "
                  "JSON body instead",
                  PH_HTTPD_MAX_TARGET);
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    reading *r = &((conn *)p->data)->rd;
    r->target_len += n;
    if (r->target_len > PH_HTTPD_MAX_TARGET)
        return uri_too_long(r);
    return sb_add(r, at, n) ? oom(r) : 0;
}

/* RFC 9110 5.6.2: the characters of a token (a header name), one lookup each. */
static const bool tchar[256] = {
    ['0' ... '9'] = true, ['A' ... 'Z'] = true, ['a' ... 'z'] = true, ['!'] = true,  ['#'] = true,
    ['$'] = true,         ['%'] = true,         ['&'] = true,         ['\''] = true, ['*'] = true,
    ['+'] = true,         ['-'] = true,         ['.'] = true,         ['^'] = true,  ['_'] = true,
    ['`'] = true,         ['|'] = true,         ['~'] = true,
};

/* A chunked body's trailer bytes: counted against the head's limit and dropped (RFC 9112
 * 7.1.2), never merged into the request's headers. */
static int trailer_bytes(reading *r, size_t n)
{
    r->head_bytes += n;
    return r->head_bytes > PH_HTTPD_MAX_HEADERS ? too_many_headers(r) : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    reading *r = &((conn *)p->data)->rd;
    for (size_t i = 0; i < n; i++)
        if (!tchar[(unsigned char)at[i]])
            return refuse(r, 400, ph_error_word(PH_EINVAL),
                          "%s holds a space or a character names cannot hold; send 'Name: "
                          "value' lines, the name a token",
                          r->in_trailers ? "a trailer name of the chunked body" : "a header name");
    if (r->in_trailers)
        return trailer_bytes(r, n);
    if (r->last_cb != 1) { /* a new header: end the target or the previous value */
        if ((r->last_cb == 2 ? value_end(r) : sb_end(r)) || push_off(r))
            return oom(r);
        r->last_cb = 1;
        r->head_bytes += 4;
    }
    r->head_bytes += n;
    if (r->head_bytes > PH_HTTPD_MAX_HEADERS)
        return too_many_headers(r);
    return sb_add(r, at, n) ? oom(r) : 0;
}

/* Whether header name i (0, 2, 4, ...: ended) is `name` of length n, ASCII case aside. */
static bool name_is(const reading *r, size_t i, const char *name, size_t n)
{
    return r->hoff[i + 1] - r->hoff[i] == n + 1 && strncasecmp(r->sb + r->hoff[i], name, n) == 0;
}

/* A header name just ended (its value begins): counts the ones framing the body. */
static void name_done(reading *r)
{
    size_t i = r->n_h - 1, n = r->sb_len - 1 - r->hoff[i]; /* the name and its NUL */
    const char *name = r->sb + r->hoff[i];
    if (n == 14 && strcasecmp(name, "Content-Length") == 0)
        r->n_length++;
    else if (n == 17 && strcasecmp(name, "Transfer-Encoding") == 0)
        r->n_te++;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    reading *r = &((conn *)p->data)->rd;
    if (r->in_trailers)
        return trailer_bytes(r, n);
    if (r->last_cb != 2) {
        if (sb_end(r))
            return oom(r);
        name_done(r); /* the name is the last offset pushed: before the value's own */
        if (push_off(r))
            return oom(r);
        r->last_cb = 2;
    }
    r->head_bytes += n;
    if (r->head_bytes > PH_HTTPD_MAX_HEADERS)
        return too_many_headers(r);
    return sb_add(r, at, n) ? oom(r) : 0;
}

static const char *rd_header(const reading *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i + 1 < r->n_h; i += 2)
        if (name_is(r, i, name, n))
            return r->sb + r->hoff[i + 1];
    return NULL;
}

static int refuse_te(reading *r, const char *te, bool with_length)
{
    return refuse(r, 501, "not_implemented",
                  "the request's Transfer-Encoding is not chunked (it is '%.64s'%s); this host "
                  "reads only Transfer-Encoding: chunked; send the body with Content-Length alone "
                  "or chunked",
                  te, with_length ? ", beside a Content-Length" : "");
}

static int hex_digit(unsigned char b)
{
    if (b >= '0' && b <= '9')
        return b - '0';
    if ((b | 0x20) >= 'a' && (b | 0x20) <= 'f')
        return (b | 0x20) - 'a' + 10;
    return -1;
}

/* Ends the last string of the head (the target, a name or a value); once, at its end. */
static int fields_end(reading *r)
{
    if (r->last_cb == 1) { /* a name without a value: "X-A" then the blank line */
        if (sb_end(r))
            return -1;
        name_done(r); /* the name is the last offset pushed: before the (empty) value's own */
        if (push_off(r))
            return -1;
    }
    bool value = r->last_cb == 2;
    r->last_cb = 3; /* ended */
    return value ? value_end(r) : sb_end(r);
}

/* RFC 3986 3.2.2 (RFC 9110 7.2): uri-host [":" port], trailing whitespace aside. */
static bool host_valid(const char *h)
{
    static const char other[] = "-._~!$&'()*+,;="; /* unreserved and sub-delims */
    size_t n = strlen(h), i = 0;
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    if (!n)
        return false; /* an empty Host names nothing */
    bool literal = n && h[0] == '[';
    for (i = literal; i < n && h[i] != (literal ? ']' : ':'); i++) {
        unsigned char ch = (unsigned char)h[i];
        if (ch == '%' && !literal && i + 2 < n && hex_digit((unsigned char)h[i + 1]) >= 0 &&
            hex_digit((unsigned char)h[i + 2]) >= 0)
            i += 2;
        else if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || (ch && strchr(other, ch)) || (literal && ch == ':')))
            return false;
    }
    if (literal && (i == n || i++ == 1))
        return false; /* no ']', or "[]" */
    if (i < n && h[i] == ':')
        for (size_t d = ++i; i < n; i++)
            if (h[i] < '0' || h[i] > '9' || i - d >= 5)
                return false;
    return i == n;
}

/* RFC 9112 3.2: one Host header, a valid one; an HTTP/1.1 request must have it. */
static int check_host(reading *r, const http_parser *p)
{
    const char *inval = ph_error_word(PH_EINVAL), *host = NULL;
    int n = 0;
    for (size_t i = 0; i + 1 < r->n_h; i += 2)
        if (name_is(r, i, "Host", 4)) {
            host = r->sb + r->hoff[i + 1];
            n++;
        }
    if (n > 1) /* which host is meant? */
        return refuse(r, 400, inval, "the request has %d Host headers; send one", n);
    if (!host && p->http_minor >= 1)
        return refuse(r, 400, inval,
                      "the request is HTTP/1.1 but has no Host header; send Host: with the "
                      "name or address and port the host was reached by (RFC 9112 3.2)");
    if (host && !host_valid(host))
        return refuse(r, 400, inval,
                      "the request's Host header '%.100s' is not a host name or address with "
                      "an optional port; send Host: name[:port]",
                      host);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    reading *r = &c->rd;
    r->in_trailers = true; /* what follows a chunked body's last chunk is trailers */
    c->scan = p->flags & F_CHUNKED ? S_SIZE : S_BODY;
    if (fields_end(r))
        return oom(r);
    if (r->n_te > 1)
        return refuse(r, 400, ph_error_word(PH_EINVAL),
                      "the request has %d Transfer-Encoding headers; send one, "
                      "Transfer-Encoding: chunked",
                      r->n_te);
    const char *te = r->n_te ? rd_header(r, "Transfer-Encoding") : NULL;
    if (te && strcasecmp(te, "chunked") != 0)
        return refuse_te(r, te, false);
    if (p->http_major != 1)
        return refuse(r, 505, "version_not_supported",
                      "the request's HTTP version is not one this host speaks; send HTTP/1.1");
    if (check_host(r, p))
        return -1;
    if (p->upgrade || p->method == HTTP_CONNECT)
        return refuse(r, 501, "not_implemented",
                      "this host does not switch protocols (Upgrade) or tunnel (CONNECT)");
    bool has_body = (p->flags & F_CHUNKED) || p->content_length > 0;
    if (!(p->flags & F_CHUNKED) && (p->flags & F_CONTENTLENGTH) &&
        p->content_length > c->s->cf.max_body)
        return refuse(r, 413, ph_error_word(PH_ETOOBIG),
                      "the request body (%" PRIu64 " bytes) is larger than the limit of %zu "
                      "bytes; send less or raise [http] max_body in host.ini",
                      (uint64_t)p->content_length, c->s->cf.max_body);
    const char *expect = rd_header(r, "Expect");
    if (expect && has_body && p->http_major == 1 && p->http_minor >= 1 &&
        strcasecmp(expect, "100-continue") == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        /* small: fits any socket buffer; a client that reads nothing sends the body anyway */
        if (send(c->fd, cont, sizeof cont - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
            return refuse(r, 400, ph_error_word(PH_EINVAL), "the connection failed");
    }
    return 0;
}

static int too_big(conn *c)
{
    return refuse(&c->rd, 413, ph_error_word(PH_ETOOBIG),
                  "the request body is larger than the limit of %zu bytes; send less or raise "
                  "[http] max_body in host.ini",
                  c->s->cf.max_body);
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    conn *c = p->data;
    reading *r = &c->rd;
    if (n > c->s->cf.max_body - r->body_len)
        return too_big(c);
    if (r->body_len + n > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        if (p->content_length != ULLONG_MAX && !(p->flags & F_CHUNKED) &&
            r->body_len + n + p->content_length > cap)
            cap = r->body_len + n + (size_t)p->content_length; /* known: one allocation */
        while (cap < r->body_len + n)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return oom(r);
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    c->rd.done = true;
    c->rd.keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* one request at a time: the rest waits in the buffer */
    return 0;
}

static void settings_init(void)
{
    http_parser_settings_init(&settings);
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
}

/* ------------------------------------------------------------------ */
/* The parser's refusals                                                */
/* ------------------------------------------------------------------ */

/*
 * Content-Length and Transfer-Encoding that frame the body two ways, as
 * the client sent them: a Transfer-Encoding other than chunked is named
 * first (whatever else came with it), then both headers, then two lengths.
 */
static void refuse_framing(conn *c)
{
    reading *r = &c->rd;
    const char *inval = ph_error_word(PH_EINVAL);
    if (!c->p.uses_transfer_encoding) {
        refuse(r, 400, inval,
               "the request has %d Content-Length headers; send one (Content-Length headers "
               "that disagree would frame the body two ways)",
               r->n_length > 1 ? r->n_length : 2);
        return;
    }
    if (fields_end(r)) {
        oom(r);
        return;
    }
    const char *te = rd_header(r, "Transfer-Encoding");
    if (r->n_te == 1 && te && strcasecmp(te, "chunked") != 0)
        refuse_te(r, te, c->p.flags & F_CONTENTLENGTH || r->n_length > 0);
    else
        refuse(r, 400, inval,
               "the request has both Content-Length and Transfer-Encoding; send one of them");
}

static void refuse_overflow(conn *c)
{
    too_many_headers(&c->rd);
}

/*
 * What each of http-parser's errors means for a request: status, code
 * (NULL: PH_EINVAL's word) and message; `body` is the message when the
 * error arose after the head (a chunk's size line or the trailers), NULL
 * when the head's is true there too. A row with `fn` needs facts of the
 * request. An error not listed (the callbacks', which always refuse first;
 * the URL parser's; a response's) reads as a malformed request.
 */
typedef struct parse_refusal {
    enum http_errno e;
    unsigned status;
    const char *code;
    const char *head, *body;
    void (*fn)(conn *c);
} parse_refusal;

static const parse_refusal parse_refusals[] = {
    {HPE_INVALID_CONTENT_LENGTH, 400, NULL,
     "the request's Content-Length is not one decimal number of bytes; send one "
     "Content-Length header with one number",
     "a chunk size of the chunked body is not a hex number that fits in 64 bits; send each "
     "chunk's size in hex",
     NULL},
    {HPE_UNEXPECTED_CONTENT_LENGTH, 400, NULL, NULL, NULL, refuse_framing},
    {HPE_INVALID_TRANSFER_ENCODING, 501, NULL, NULL, NULL, refuse_framing},
    {HPE_HEADER_OVERFLOW, 431, NULL, NULL, NULL, refuse_overflow},
    {HPE_INVALID_METHOD, 501, "not_implemented",
     "the request method is not one this host knows; use GET, HEAD, POST, PATCH, DELETE or "
     "OPTIONS",
     NULL, NULL},
    {HPE_INVALID_VERSION, 505, "version_not_supported",
     "the request's HTTP version is not one this host speaks; send HTTP/1.1", NULL, NULL},
    {HPE_INVALID_CONSTANT, 400, NULL,
     "the request line does not end in an HTTP version; send 'METHOD /path HTTP/1.1'", NULL, NULL},
    {HPE_INVALID_URL, 400, NULL,
     "the request target is not a valid path; send an absolute path such as "
     "/calc/actors/math/add, with bytes outside ASCII %-encoded",
     NULL, NULL},
    {HPE_INVALID_HEADER_TOKEN, 400, NULL,
     "a header line is malformed: a header name holds a space or a character names cannot "
     "hold, or a value holds a control character; send 'Name: value' lines",
     "a trailer line of the chunked body is malformed: a name holds a space or a character "
     "names cannot hold, or a value holds a control character; send 'Name: value' lines",
     NULL},
    {HPE_LF_EXPECTED, 400, NULL, "the request has a CR not followed by LF; end lines with CRLF",
     NULL, NULL},
    {HPE_INVALID_CHUNK_SIZE, 400, NULL,
     "a chunk size line of the chunked body is malformed; send the size in hex, then CRLF", NULL,
     NULL},
    {HPE_CLOSED_CONNECTION, 400, NULL,
     "the request came after one that closed the connection (Connection: close); send it on "
     "a new connection",
     NULL, NULL},
    {HPE_INVALID_EOF_STATE, 400, NULL, "the connection ended in the middle of the request", NULL,
     NULL},
};

/* The parser's refusal in the host's words (parse_refusals). */
static void refuse_parse(conn *c, enum http_errno e)
{
    for (size_t i = 0; i < sizeof parse_refusals / sizeof parse_refusals[0]; i++) {
        const parse_refusal *row = &parse_refusals[i];
        if (row->e != e)
            continue;
        if (row->fn) {
            row->fn(c);
            return;
        }
        bool body = c->scan != S_HEAD && c->scan != S_PARSER && row->body;
        refuse(&c->rd, row->status, row->code ? row->code : ph_error_word(PH_EINVAL), "%s",
               body ? row->body : row->head);
        return;
    }
    refuse(&c->rd, 400, ph_error_word(PH_EINVAL), "the request is malformed (%s); send HTTP/1.1",
           http_errno_description(e));
}

/* ------------------------------------------------------------------ */
/* Checking the bytes before the parser sees them                       */
/* ------------------------------------------------------------------ */

/*
 * The line rules of the head, which a chunked body's size lines and
 * trailers follow too: lines end in CRLF (a bare LF or CR is refused: two
 * readers must not disagree on where a line ends), no NUL, no obs-fold
 * continuation line. Messages by [rule][where].
 */
enum { L_CR, L_LF, L_NUL, L_FOLD };
enum { W_HEAD, W_SIZE, W_TRAILER };
static const char *const line_msgs[][3] = {
    [L_CR] = {"the request has a CR not followed by LF; end lines with CRLF",
              "a chunk size line of the chunked body has a CR not followed by LF; end lines "
              "with CRLF",
              "a trailer line of the chunked body has a CR not followed by LF; end lines with "
              "CRLF"},
    [L_LF] = {"the request has a line ending in a bare LF; end lines with CRLF",
              "a chunk size line of the chunked body ends in a bare LF; end lines with CRLF",
              "a trailer line of the chunked body ends in a bare LF; end lines with CRLF"},
    [L_NUL] = {"the request line or a header holds a NUL byte; send text",
               "a chunk size line of the chunked body holds a NUL byte; send text",
               "a trailer line of the chunked body holds a NUL byte; send text"},
    [L_FOLD] = {"a header line begins with a space or tab (an obsolete folded header); send "
                "each header on one line",
                NULL,
                "a trailer line of the chunked body begins with a space or tab (an obsolete "
                "folded field); send each trailer on one line"},
};

static int line_refused(conn *c, int rule)
{
    int where = c->scan == S_HEAD ? W_HEAD : c->scan == S_TRAILERS ? W_TRAILER : W_SIZE;
    return refuse(&c->rd, 400, ph_error_word(PH_EINVAL), "%s", line_msgs[rule][where]);
}

/*
 * How many of the n bytes at p come before the first CR, LF or NUL (the
 * bytes scan_line_byte looks at one by one; a run of any others is taken at
 * once): three memchr, which libc scans 32 bytes at a time.
 */
static size_t line_run(const char *p, size_t n)
{
    const char *e = memchr(p, '\r', n);
    if (e)
        n = (size_t)(e - p);
    if ((e = memchr(p, '\n', n)))
        n = (size_t)(e - p);
    if ((e = memchr(p, '\0', n)))
        n = (size_t)(e - p);
    return n;
}

/* The line read so far is past its limit (the request line's, or a header's): -1, refused. */
static int line_too_long(conn *c)
{
    if (c->lines == 0 && c->line_len > PH_HTTPD_MAX_TARGET + 64)
        return uri_too_long(&c->rd);
    if (c->lines > 0 && c->line_len > PH_HTTPD_MAX_HEADERS + 64)
        return too_many_headers(&c->rd);
    return 0;
}

/* One byte of the head or the trailers: 1 the blank line ended them, 0 go on, -1 refused. */
static int scan_line_byte(conn *c, unsigned char b)
{
    unsigned char prev = c->prev;
    c->prev = b;
    if (prev == '\r' && b != '\n')
        return line_refused(c, L_CR);
    if (b == '\n') {
        if (prev != '\r')
            return line_refused(c, L_LF);
        bool blank = c->line_len == 0 && c->lines > 0;
        if (c->line_len)
            c->lines++;
        c->line_len = 0;
        return blank;
    }
    if (b == '\0')
        return line_refused(c, L_NUL);
    if (b == '\r')
        return 0;
    if (c->line_len == 0 && c->lines > 0 && (b == ' ' || b == '\t'))
        return line_refused(c, L_FOLD);
    c->line_len++;
    return line_too_long(c);
}

static int bad_size_line(conn *c)
{
    return refuse(&c->rd, 400, ph_error_word(PH_EINVAL),
                  "a chunk size line of the chunked body is malformed; send the size in hex, "
                  "then optional ';name=value' extensions, then CRLF");
}

/* A digit of a chunk's size, accumulated in chunk_left. */
static int size_digit(conn *c, int v)
{
    reading *r = &c->rd;
    if (c->chunk_left > (UINT64_MAX >> 4))
        return refuse(r, 400, ph_error_word(PH_EINVAL),
                      "a chunk size of the chunked body is too large to be a number of bytes "
                      "(more than 64 bits); send chunks of at most %zu bytes, the body limit",
                      c->s->cf.max_body);
    if (++c->digits > 64)
        return refuse(r, 400, ph_error_word(PH_EINVAL),
                      "a chunk size of the chunked body has more than 64 digits; send the size "
                      "in hex without leading zeros");
    c->chunk_left = c->chunk_left << 4 | (uint64_t)v;
    /* over the body limit already: 413 now, however the line is split across reads (the
     * parser, which would see the digits before the line's end, has a lower 64-bit bound) */
    if (c->chunk_left > c->s->cf.max_body - c->chunked_total)
        return too_big(c);
    return 0;
}

/* A chunk's size line ended (CRLF): its data, or the trailers after the last chunk. */
static int size_line_done(conn *c)
{
    if (c->chunk_left > c->s->cf.max_body - c->chunked_total)
        return too_big(c);
    c->chunked_total += c->chunk_left;
    c->digits = c->ext_len = 0;
    c->ext_semi = false;
    if (c->chunk_left)
        c->scan = S_DATA;
    else { /* the last chunk: trailer lines follow, under the head's rules */
        c->scan = S_TRAILERS;
        c->lines = 1;
        c->line_len = 0;
        c->prev = '\n';
    }
    return 0;
}

/* One byte of a chunk's size line (RFC 9112 7.1: size [BWS ";" ext ...] CRLF). */
static int scan_size_byte(conn *c, unsigned char b)
{
    if (c->scan == S_SIZE_LF)
        return b == '\n' ? size_line_done(c) : line_refused(c, L_CR);
    if (b == '\n')
        return line_refused(c, L_LF);
    if (b == '\0')
        return line_refused(c, L_NUL);
    if (c->scan == S_SIZE) {
        int v = hex_digit(b);
        if (v >= 0)
            return size_digit(c, v);
        if (!c->digits)
            return bad_size_line(c);
        c->scan = S_EXT;
    }
    if (b == '\r') {
        if (c->ext_len && !c->ext_semi) /* whitespace after the size, then no ';' */
            return bad_size_line(c);
        c->scan = S_SIZE_LF;
        return 0;
    }
    if (++c->ext_len > PH_HTTPD_MAX_CHUNK_EXT)
        return refuse(&c->rd, 431, "chunk_extension_too_long",
                      "a chunk extension of the chunked body is longer than %u bytes; send "
                      "chunks without extensions or with shorter ones",
                      PH_HTTPD_MAX_CHUNK_EXT);
    if (!c->ext_semi && b == ';')
        c->ext_semi = true;
    else if ((!c->ext_semi && b != ' ' && b != '\t') || (b < 0x20 && b != '\t') || b == 0x7f)
        return bad_size_line(c);
    return 0;
}

static int chunk_overrun(conn *c)
{
    return refuse(&c->rd, 400, ph_error_word(PH_EINVAL),
                  "a chunk of the chunked body is not followed by CRLF (it is longer than its "
                  "size says); send exactly the bytes each size declares, then CRLF");
}

/*
 * Checks what arrived before the parser sees it: the head and a chunked
 * body's framing, by the rules above, and the limits on both. *end: where
 * the parser may read up to (the end of the head: the parser then decides
 * how the body is framed; the end of the request; or all there is).
 * Returns -1 when refused.
 */
static int scan(conn *c, size_t *end)
{
    size_t i = c->in_off;
    while (i < c->in_len) {
        if (c->scan == S_PARSER || c->scan == S_END)
            break;
        if (c->scan == S_BODY) {
            i = c->in_len;
            break;
        }
        if (c->scan == S_DATA) {
            size_t take = c->in_len - i;
            if (take > c->chunk_left)
                take = (size_t)c->chunk_left;
            i += take;
            c->chunk_left -= take;
            if (!c->chunk_left)
                c->scan = S_DATA_CR;
            continue;
        }
        if ((c->scan == S_HEAD || c->scan == S_TRAILERS) && c->line_len && c->prev != '\r') {
            /* inside a line: a run of bytes other than CR, LF and NUL only lengthens it */
            size_t j = i + line_run(c->in + i, c->in_len - i);
            if (j > i) {
                c->line_len += j - i;
                c->prev = (unsigned char)c->in[j - 1];
                i = j;
                if (line_too_long(c))
                    return -1;
                continue;
            }
        }
        unsigned char b = (unsigned char)c->in[i++];
        if (c->scan == S_HEAD || c->scan == S_TRAILERS) {
            int l = scan_line_byte(c, b);
            if (l < 0)
                return -1;
            if (l)
                c->scan = c->scan == S_HEAD ? S_PARSER : S_END;
        } else if (c->scan == S_DATA_CR || c->scan == S_DATA_LF) {
            if (b != (c->scan == S_DATA_CR ? '\r' : '\n'))
                return chunk_overrun(c);
            c->scan = c->scan == S_DATA_CR ? S_DATA_LF : S_SIZE;
        } else if (scan_size_byte(c, b)) {
            return -1;
        }
    }
    *end = i;
    return 0;
}

static void request_begin(conn *c)
{
    http_parser_init(&c->p, HTTP_REQUEST);
    c->p.data = c;
    reading_reset(&c->rd);
    c->scan = S_HEAD;
    c->prev = 0;
    c->line_len = c->lines = c->digits = c->ext_len = 0;
    c->ext_semi = false;
    c->chunk_left = c->chunked_total = 0;
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */
/* ------------------------------------------------------------------ */

/*
 * The kernel orders a connection's hand-off from the thread that re-arms it
 * (epoll_ctl) to the one that takes its next event (epoll_wait), but
 * ThreadSanitizer's runtime (GCC 12) models only EPOLL_CTL_ADD: under TSan
 * the re-arm holds a lock of the connection that its next owner takes too.
 */
#if defined(__SANITIZE_THREAD__)
#define PH_HANDOFF_LOCK(c) pthread_mutex_lock(&(c)->handoff)
#define PH_HANDOFF_UNLOCK(c) pthread_mutex_unlock(&(c)->handoff)
#else
#define PH_HANDOFF_LOCK(c) ((void)0)
#define PH_HANDOFF_UNLOCK(c) ((void)0)
#endif

static void arm(conn *c, uint32_t what)
{
    struct epoll_event ev = {.events = what | EPOLLONESHOT | EPOLLRDHUP, .data.ptr = c};
    PH_HANDOFF_LOCK(c);
    if (epoll_ctl(c->s->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        shutdown(c->fd, SHUT_RDWR); /* cannot happen with a valid fd; the next event closes */
    PH_HANDOFF_UNLOCK(c);           /* the next owner may free c once this returns */
}

static void conn_close(ph_httpd *s, conn *c)
{
    pthread_mutex_lock(&s->mu);
    if (c->prev_c)
        c->prev_c->next_c = c->next_c;
    else
        s->conns = c->next_c;
    if (c->next_c)
        c->next_c->prev_c = c->prev_c;
    s->n_conns--;
    pthread_mutex_unlock(&s->mu);
    close(c->fd);
    out_clear(c);
    reading_free(&c->rd);
    free(c->in);
#if defined(__SANITIZE_THREAD__)
    pthread_mutex_destroy(&c->handoff);
#endif
    free(c);
}

/* Under s->mu: shuts the socket down; its owner closes it at its next event. */
static void conn_cut(conn *c)
{
    if (!c->cut)
        shutdown(c->fd, SHUT_RDWR);
    c->cut = true;
}

/* Queues the refusal a callback or the scan decided; the connection closes after it. */
static int queue_refusal(conn *c)
{
    reading *r = &c->rd;
    ph_httpd_resp rs;
    ph_httpd_resp_init(&rs);
    rs.status = r->refuse;
    rs.close = true;
    rs.body = ph_httpd_error_body(r->refuse_word, r->refuse_msg ? r->refuse_msg : "refused",
                                  &rs.body_len);
    if (!rs.body)
        return -1;
    ph_httpd_resp_header(&rs, "Content-Type", "application/json");
    if (rs.failed || queue_response(c, &rs, false, false, false)) {
        ph_httpd_resp_reset(&rs);
        return -1;
    }
    c->in_off = c->in_len = 0;
    return 0;
}

/* Runs the handler on the whole request and queues its response. */
static int serve(ph_httpd *s, conn *c)
{
    reading *r = &c->rd;
    ph_httpd_header hs[64], *hv = hs;
    size_t nh = r->n_h / 2;
    if (nh > sizeof hs / sizeof hs[0] && !(hv = malloc(nh * sizeof *hv)))
        return -1;
    for (size_t i = 0; i < nh; i++) {
        hv[i].name = r->sb + r->hoff[2 * i];
        hv[i].value = r->sb + r->hoff[2 * i + 1];
    }
    char *target = r->sb;
    char *q = memchr(target, '?', r->target_len);
    char *path = target;
    char pathbuf[256], *pathdyn = NULL;
    if (q) { /* the path as its own string; the target stays whole */
        size_t pl = (size_t)(q - target);
        path = pl < sizeof pathbuf ? pathbuf : (pathdyn = malloc(pl + 1));
        if (!path) {
            if (hv != hs)
                free(hv);
            return -1;
        }
        memcpy(path, target, pl);
        path[pl] = '\0';
    }
    ph_httpd_req rq = {.method = http_method_str((enum http_method)c->p.method),
                       .target = target,
                       .path = path,
                       .query = q ? q + 1 : NULL,
                       .body = r->body_len ? r->body : NULL,
                       .body_len = r->body_len,
                       .head = c->p.method == HTTP_HEAD,
                       .trusted = c->trusted,
                       .fd = c->fd,
                       .headers = hv,
                       .n_headers = nh};
    ph_httpd_resp rs;
    ph_httpd_resp_init(&rs);
    atomic_store_explicit(&c->state, C_BUSY, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->inflight, 1, memory_order_relaxed);
    int rc = s->fn(s->ud, &rq, &rs);
    atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_relaxed);
    bool http10 = c->p.http_major == 1 && c->p.http_minor == 0;
    if (rc == 0 && !rs.failed)
        rc = queue_response(c, &rs, rq.head, r->keep_alive, http10);
    else
        rc = -1;
    ph_httpd_resp_reset(&rs);
    free(pathdyn);
    if (hv != hs)
        free(hv);
    return rc;
}

/*
 * Parses what is buffered: 1 a whole request is ready, 0 more input is
 * needed, -1 refused (a response is queued), -2 the connection must close.
 */
static int parse(conn *c)
{
    if (c->in_off == c->in_len)
        return 0;
    if (atomic_load_explicit(&c->state, memory_order_relaxed) == C_IDLE) {
        long long t = now_ms();
        atomic_store_explicit(&c->since_ms, t, memory_order_relaxed);
        atomic_store_explicit(&c->state, C_RECEIVING, memory_order_relaxed);
    }
    /* the parser reads what the scan checked: the head first, then (its framing known) the body */
    while (c->in_off < c->in_len) {
        size_t end = c->in_off;
        if (scan(c, &end))
            return queue_refusal(c) ? -2 : -1;
        if (end == c->in_off)
            break; /* cannot happen: the parser ends the head and the request where the scan does */
        size_t n = http_parser_execute(&c->p, &settings, c->in + c->in_off, end - c->in_off);
        c->in_off += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
        if (c->rd.refuse)
            return queue_refusal(c) ? -2 : -1;
        if (e == HPE_PAUSED && c->rd.done)
            break;
        if (e != HPE_OK) {
            refuse_parse(c, e);
            return queue_refusal(c) ? -2 : -1;
        }
    }
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    return c->rd.done ? 1 : 0;
}

/* Reads and drops what a refused client still sends; true when it is done (close). */
static bool drain(conn *c)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
}

/* The owner's turn on a connection: write, parse, serve, read, until it must wait. */
static void conn_run(ph_httpd *s, conn *c)
{
    PH_HANDOFF_LOCK(c);
    PH_HANDOFF_UNLOCK(c);
    c->more = true; /* woken: something is waiting */
    for (;;) {
        if (out_pending(c)) {
            int w = flush_out(c);
            if (w < 0)
                break;
            if (w == 0) {
                atomic_store_explicit(&c->state, C_WRITING, memory_order_relaxed);
                arm(c, EPOLLOUT);
                return;
            }
            /* closing (refused, or Connection: close): a lingering close (RFC 9112 9.6), so
             * that bytes the client sent after its request do not turn the close into a
             * reset that destroys the answer before the client read it */
            if (c->close_after) {
                shutdown(c->fd, SHUT_WR);
                atomic_store_explicit(&c->since_ms, now_ms(), memory_order_relaxed);
                atomic_store_explicit(&c->state, C_DRAINING, memory_order_relaxed);
                c->close_after = false;
            } else {
                request_begin(c);
                atomic_store_explicit(&c->since_ms, now_ms(), memory_order_relaxed);
                atomic_store_explicit(&c->state, C_IDLE, memory_order_relaxed);
            }
        }
        if (atomic_load_explicit(&c->state, memory_order_relaxed) == C_DRAINING) {
            if (drain(c))
                break;
            arm(c, EPOLLIN);
            return;
        }
        int p = parse(c);
        if (p == -2)
            break;
        if (p == 1) {
            if (serve(s, c))
                break;
            continue;
        }
        if (p == -1)
            continue;
        /* more input: a short read emptied the socket, so wait rather than read again */
        if (!c->more) {
            arm(c, EPOLLIN);
            return;
        }
        if (c->in_len == c->in_cap) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 2048;
            if (cap > 65536)
                cap = 65536;
            if (c->in_len == cap) /* cannot happen: the parser takes all it is given */
                break;
            char *b = realloc(c->in, cap);
            if (!b)
                break;
            c->in = b;
            c->in_cap = cap;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            atomic_store_explicit(&c->last_io_ms, now_ms(), memory_order_relaxed);
            c->more = c->in_len == c->in_cap;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (atomic_load_explicit(&s->stopping, memory_order_relaxed) &&
                atomic_load_explicit(&c->state, memory_order_relaxed) == C_IDLE)
                break;
            arm(c, EPOLLIN);
            return;
        }
        break; /* closed by the client, or failed */
    }
    conn_close(s, c);
}

static bool same_ip(const conn *a, int family, const unsigned char *ip)
{
    size_t n = family == AF_INET ? 4 : 16;
    return a->family == family && memcmp(a->ip, ip, n) == 0;
}

/* A new connection: admitted (registered) or closed at once. */
static void conn_add(ph_httpd *s, int fd, bool trusted, const struct sockaddr_storage *ss)
{
    int family = ss->ss_family;
    unsigned char ip[16] = {0};
    if (family == AF_INET)
        memcpy(ip, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    else if (family == AF_INET6)
        memcpy(ip, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->kind = K_CONN;
    c->fd = fd;
    c->trusted = trusted;
    c->s = s;
    c->family = family;
    memcpy(c->ip, ip, sizeof ip);
    c->ofile = -1;
#if defined(__SANITIZE_THREAD__)
    pthread_mutex_init(&c->handoff, NULL);
#endif
    request_begin(c);
    long long t = now_ms();
    atomic_init(&c->state, C_IDLE);
    atomic_init(&c->since_ms, t);
    atomic_init(&c->last_io_ms, t);
    if (family == AF_INET || family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }

    pthread_mutex_lock(&s->mu);
    bool admit = s->n_conns < s->cf.max_conns;
    if (admit && s->cf.max_per_ip > 0 && !trusted && (family == AF_INET || family == AF_INET6)) {
        int same = 0;
        for (conn *o = s->conns; o; o = o->next_c)
            same += same_ip(o, family, ip);
        admit = same < s->cf.max_per_ip;
    }
    if (admit && s->n_conns + 1 >= s->cf.max_conns - s->cf.max_conns / 10) {
        /* nearly full: the slowest unfinished request makes room */
        conn *oldest = NULL;
        long long oldest_t = 0;
        for (conn *o = s->conns; o; o = o->next_c) {
            int st = atomic_load_explicit(&o->state, memory_order_relaxed);
            long long since = atomic_load_explicit(&o->since_ms, memory_order_relaxed);
            if ((st == C_IDLE || st == C_RECEIVING || st == C_DRAINING) && !o->cut &&
                (!oldest || since < oldest_t)) {
                oldest = o;
                oldest_t = since;
            }
        }
        if (oldest) {
            conn_cut(oldest);
            atomic_fetch_add_explicit(&s->cut_room, 1, memory_order_relaxed);
        }
    }
    if (admit) {
        c->next_c = s->conns;
        if (s->conns)
            s->conns->prev_c = c;
        s->conns = c;
        s->n_conns++;
    }
    pthread_mutex_unlock(&s->mu);
    if (!admit) {
        close(fd);
        reading_free(&c->rd);
#if defined(__SANITIZE_THREAD__)
        pthread_mutex_destroy(&c->handoff);
#endif
        free(c);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        conn_close(s, c);
}

static void accept_all(ph_httpd *s, listener *l)
{
    pthread_mutex_lock(&s->mu);
    bool closed = l->closed;
    l->busy = !closed;
    pthread_mutex_unlock(&s->mu);
    if (closed)
        return;
    for (int i = 0; i < 256; i++) { /* then re-arm: other events get their turn */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                ph_log_warn("cannot accept a connection: %s; raise the open-file limit or "
                            "lower [http] max_connections",
                            ph_strerror(errno));
            break;
        }
        if (sl == 0 || l->trusted)
            ss.ss_family = AF_UNIX;
        conn_add(s, fd, l->trusted, &ss);
    }
    pthread_mutex_lock(&s->mu);
    l->busy = false;
    if (l->closed) {
        close(l->fd);
        l->fd = -1;
    } else {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = l};
        epoll_ctl(s->ep, EPOLL_CTL_MOD, l->fd, &ev);
    }
    pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------------ */
/* Threads                                                              */
/* ------------------------------------------------------------------ */

static void *worker_main(void *arg);

/* Under s->mu: one more thread, unless at the cap. */
static void spawn(ph_httpd *s)
{
    if (s->threads_stop || s->n_threads >= s->cf.max_threads)
        return;
    worker *free_slot = NULL;
    for (int i = 0; i < s->cf.max_threads; i++) {
        worker *w = &s->workers[i];
        if (w->state == 2) { /* ended: collect it */
            pthread_join(w->t, NULL);
            w->state = 0;
        }
        if (w->state == 0 && !free_slot)
            free_slot = w;
        if (free_slot && i >= s->n_threads)
            break;
    }
    if (!free_slot)
        return;
    free_slot->s = s;
    if (pthread_create(&free_slot->t, NULL, worker_main, free_slot) != 0)
        return;
    free_slot->state = 1;
    s->n_threads++;
}

/* Under s->mu: this thread ends. */
static void *worker_leave(ph_httpd *s, worker *w)
{
    s->n_threads--;
    w->state = 2;
    pthread_cond_broadcast(&s->cv);
    return NULL;
}

/*
 * The events one epoll_wait returned beyond the one its thread serves wait
 * here for the next free thread (each is a one-shot event: its connection
 * is owned by whoever takes it). A thread takes from here before it waits.
 */
static void *ready_pop(ph_httpd *s)
{
    void *p = NULL;
    pthread_mutex_lock(&s->rq_mu);
    if (s->rq_n) {
        p = s->rq[s->rq_head];
        s->rq_head = (s->rq_head + 1) % s->rq_cap;
        s->rq_n--;
    }
    pthread_mutex_unlock(&s->rq_mu);
    return p;
}

static void ready_push(ph_httpd *s, struct epoll_event *evs, int n)
{
    pthread_mutex_lock(&s->rq_mu);
    for (int i = 0; i < n; i++) {
        /* each connection and listener is in at most once: the ring never fills */
        s->rq[(s->rq_head + s->rq_n) % s->rq_cap] = evs[i].data.ptr;
        s->rq_n++;
    }
    pthread_mutex_unlock(&s->rq_mu);
}

/* Wakes one waiting thread to take from the ready list (one-shot: one thread wakes). */
static void kick(ph_httpd *s)
{
    uint64_t one = 1;
    if (write(s->kick.fd, &one, sizeof one) < 0)
        ph_log_debug("waking an HTTP thread: %s", ph_strerror(errno));
}

#define PH_HTTPD_BATCH 8

static void *worker_main(void *arg)
{
    worker *w = arg;
    ph_httpd *s = w->s;
    /* sendfile(2) has no MSG_NOSIGNAL: a client gone mid-file is EPIPE on this thread, never a
     * SIGPIPE ending the process (whatever the process's own disposition of SIGPIPE) */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    atomic_store_explicit(&w->tid, (int)gettid(), memory_order_relaxed);
    for (;;) {
        void *item = ready_pop(s);
        if (!item) {
            struct epoll_event evs[PH_HTTPD_BATCH];
            atomic_fetch_add_explicit(&s->idle, 1, memory_order_relaxed);
            int n = epoll_wait(s->ep, evs, PH_HTTPD_BATCH, 5000);
            int idle = atomic_fetch_sub_explicit(&s->idle, 1, memory_order_relaxed) - 1;
            if (n < 0 && errno != EINTR)
                break;
            if (n <= 0) {
                pthread_mutex_lock(&s->mu);
                bool leave = s->threads_stop || (n == 0 && s->n_threads > s->cf.min_threads);
                void *r = leave ? worker_leave(s, w) : s;
                pthread_mutex_unlock(&s->mu);
                if (!r)
                    return NULL;
                continue;
            }
            /* the stop signal is level-triggered: seen by every thread, never queued */
            int m = 0;
            bool stop = false;
            for (int i = 0; i < n; i++)
                if (*(int *)evs[i].data.ptr == K_WAKE)
                    stop = true;
                else
                    evs[m++] = evs[i];
            if (stop) {
                ready_push(s, evs, m);
                pthread_mutex_lock(&s->mu);
                void *r = s->threads_stop ? worker_leave(s, w) : s;
                pthread_mutex_unlock(&s->mu);
                if (!r)
                    return NULL;
                continue;
            }
            if (m == 0)
                continue;
            if (m > 1) {
                ready_push(s, evs + 1, m - 1);
                if (idle > 0) /* a waiting thread can take them now */
                    kick(s);
            }
            item = evs[0].data.ptr;
        }
        int kind = *(int *)item;
        if (kind == K_KICK) {
            uint64_t v;
            if (read(s->kick.fd, &v, sizeof v) < 0 && errno != EAGAIN)
                ph_log_debug("HTTP kick: %s", ph_strerror(errno));
            struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = &s->kick};
            epoll_ctl(s->ep, EPOLL_CTL_MOD, s->kick.fd, &ev);
            continue;
        }
        atomic_store_explicit(&w->busy_since, now_ms(), memory_order_relaxed);
        if (kind == K_LISTEN)
            accept_all(s, item);
        else
            conn_run(s, item);
        atomic_store_explicit(&w->busy_since, 0, memory_order_relaxed);
    }
    pthread_mutex_lock(&s->mu);
    worker_leave(s, w);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/*
 * Under s->mu: when no thread is waiting and some have been on their event
 * for more than PH_HTTPD_BLOCKED_MS asleep in the kernel (a handler blocked
 * in a package call; a thread that only waits for a CPU does not count),
 * starts as many threads as are blocked, so that the connections behind
 * them, /_/ above all, are served within a few tens of milliseconds.
 */
#define PH_HTTPD_BLOCKED_MS 25

/* Whether the thread sleeps in the kernel (blocked), not merely waits for a CPU. */
static bool sleeping(int tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true; /* cannot tell: count it as blocked */
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return true;
    buf[n] = '\0';
    const char *e = strrchr(buf, ')'); /* the name may hold anything but ends there */
    return !e || e[1] != ' ' || e[2] != 'R';
}

static void grow(ph_httpd *s)
{
    if (atomic_load_explicit(&s->idle, memory_order_relaxed) > 0)
        return;
    long long t = now_ms();
    int blocked = 0;
    for (int i = 0; i < s->cf.max_threads; i++) {
        long long b = s->workers[i].state == 1
                          ? atomic_load_explicit(&s->workers[i].busy_since, memory_order_relaxed)
                          : 0;
        blocked += b && t - b > PH_HTTPD_BLOCKED_MS &&
                   sleeping(atomic_load_explicit(&s->workers[i].tid, memory_order_relaxed));
    }
    for (int i = 0; i < blocked; i++)
        spawn(s);
}

/*
 * Every 5 ms: grow(). Every 250 ms: cuts connections past their request
 * deadline, idle past the idle timeout, or refused and still sending after 2 s.
 */
static void *reaper_main(void *arg)
{
    ph_httpd *s = arg;
    long long req_ms = (long long)s->cf.request_timeout * 1000;
    long long idle_ms = (long long)s->cf.idle_timeout * 1000;
    unsigned tick = 0;
    pthread_mutex_lock(&s->mu);
    while (!s->reaper_stop) {
        long long t = now_ms();
        grow(s);
        for (conn *c = tick++ % 50 ? NULL : s->conns; c; c = c->next_c) {
            int st = atomic_load_explicit(&c->state, memory_order_relaxed);
            long long since = atomic_load_explicit(&c->since_ms, memory_order_relaxed);
            long long io = atomic_load_explicit(&c->last_io_ms, memory_order_relaxed);
            if (c->cut || st == C_BUSY)
                continue;
            if (st == C_RECEIVING && t - since > req_ms) {
                conn_cut(c);
                atomic_fetch_add_explicit(&s->cut_deadline, 1, memory_order_relaxed);
            } else if (st == C_DRAINING ? t - since > 2000 : t - io > idle_ms) {
                conn_cut(c);
            }
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 5 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->cv, &s->mu, &until);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The server                                                           */
/* ------------------------------------------------------------------ */

int ph_httpd_new(const ph_httpd_conf *conf, ph_httpd_handler fn, void *ud, ph_httpd **out)
{
    pthread_once(&settings_once, settings_init);
    *out = NULL;
    ph_httpd *s = calloc(1, sizeof *s);
    if (!s)
        return ph_error_set(PH_ENOMEM, "out of memory starting the HTTP server");
    s->cf = *conf;
    if (s->cf.min_threads < 1)
        s->cf.min_threads = 1;
    if (s->cf.max_threads < s->cf.min_threads + 1)
        s->cf.max_threads = s->cf.min_threads + 1;
    if (s->cf.max_conns < 16)
        s->cf.max_conns = 16;
    s->fn = fn;
    s->ud = ud;
    s->ep = -1;
    s->wake.fd = -1;
    s->wake.kind = K_WAKE;
    s->kick.fd = -1;
    s->kick.kind = K_KICK;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->rq_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->workers = calloc((size_t)s->cf.max_threads, sizeof *s->workers);
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->kick.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->rq_cap = s->cf.max_conns + 64; /* connections and listeners, each at most once */
    s->rq = calloc(s->rq_cap, sizeof *s->rq);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->wake};
    struct epoll_event kev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = &s->kick};
    if (!s->workers || !s->rq || s->ep < 0 || s->wake.fd < 0 || s->kick.fd < 0 ||
        epoll_ctl(s->ep, EPOLL_CTL_ADD, s->wake.fd, &ev) != 0 ||
        epoll_ctl(s->ep, EPOLL_CTL_ADD, s->kick.fd, &kev) != 0) {
        int e = errno;
        ph_httpd_free(s, 0);
        return ph_error_set(PH_EIO, "cannot start the HTTP server: %s", ph_strerror(e));
    }
    *out = s;
    return 0;
}

int ph_httpd_listen_fd(ph_httpd *s, int fd, bool trusted)
{
    listener *l = calloc(1, sizeof *l);
    if (!l) {
        close(fd);
        return ph_error_set(PH_ENOMEM, "out of memory starting the HTTP server");
    }
    l->kind = K_LISTEN;
    l->fd = fd;
    l->trusted = trusted;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        free(l);
        return ph_error_set(PH_EIO, "cannot use the listening socket: %s", ph_strerror(e));
    }
    pthread_mutex_lock(&s->mu);
    l->next = s->listeners;
    s->listeners = l;
    pthread_mutex_unlock(&s->mu);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = l};
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        return ph_error_set(PH_EIO, "cannot watch the listening socket: %s", ph_strerror(errno));
    return 0;
}

int ph_httpd_start(ph_httpd *s)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->cf.min_threads; i++)
        spawn(s);
    int n = s->n_threads;
    s->started = true;
    pthread_mutex_unlock(&s->mu);
    if (n == 0)
        return ph_error_set(PH_EIO, "cannot start the HTTP server's threads");
    if (pthread_create(&s->reaper, NULL, reaper_main, s) == 0)
        s->reaper_running = true;
    else
        ph_log_warn("no request deadline or idle timeout: cannot start its thread");
    return 0;
}

void ph_httpd_quiesce(ph_httpd *s)
{
    atomic_store(&s->stopping, true);
    pthread_mutex_lock(&s->mu);
    for (listener *l = s->listeners; l; l = l->next) {
        if (l->closed)
            continue;
        l->closed = true;
        epoll_ctl(s->ep, EPOLL_CTL_DEL, l->fd, NULL);
        if (!l->busy) {
            close(l->fd);
            l->fd = -1;
        }
    }
    for (conn *c = s->conns; c; c = c->next_c)
        if (atomic_load_explicit(&c->state, memory_order_relaxed) == C_IDLE)
            conn_cut(c);
    pthread_mutex_unlock(&s->mu);
}

bool ph_httpd_free(ph_httpd *s, int wait_ms)
{
    if (!s)
        return true;
    if (s->started) {
        ph_httpd_quiesce(s);
        for (long waited = 0; atomic_load(&s->inflight) > 0 && waited < wait_ms; waited += 10) {
            struct timespec step = {0, 10 * 1000 * 1000};
            nanosleep(&step, NULL);
        }
        if (atomic_load(&s->inflight) > 0)
            return false; /* their threads still use it */
        pthread_mutex_lock(&s->mu);
        s->threads_stop = true;
        s->reaper_stop = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        uint64_t one = 1;
        if (write(s->wake.fd, &one, sizeof one) < 0)
            ph_log_debug("waking the HTTP threads: %s", ph_strerror(errno));
        if (s->reaper_running)
            pthread_join(s->reaper, NULL);
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < s->cf.max_threads; i++) {
            worker *w = &s->workers[i];
            if (w->state == 0)
                continue;
            pthread_t t = w->t;
            pthread_mutex_unlock(&s->mu);
            pthread_join(t, NULL);
            pthread_mutex_lock(&s->mu);
            w->state = 0;
        }
        pthread_mutex_unlock(&s->mu);
    }
    while (s->conns) {
        conn *c = s->conns;
        conn_close(s, c);
    }
    while (s->listeners) {
        listener *l = s->listeners;
        s->listeners = l->next;
        if (l->fd >= 0)
            close(l->fd);
        free(l);
    }
    if (s->ep >= 0)
        close(s->ep);
    if (s->wake.fd >= 0)
        close(s->wake.fd);
    if (s->kick.fd >= 0)
        close(s->kick.fd);
    free(s->rq);
    pthread_mutex_destroy(&s->rq_mu);
    free(s->workers);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    return true;
}

void ph_httpd_stats_get(ph_httpd *s, ph_httpd_stats *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < 6; i++)
        out->by_class[i] = atomic_load_explicit(&s->by_class[i], memory_order_relaxed);
    out->cut_deadline = atomic_load_explicit(&s->cut_deadline, memory_order_relaxed);
    out->cut_room = atomic_load_explicit(&s->cut_room, memory_order_relaxed);
    out->inflight = atomic_load_explicit(&s->inflight, memory_order_relaxed);
    pthread_mutex_lock(&s->mu);
    out->threads = s->n_threads;
    pthread_mutex_unlock(&s->mu);
}
