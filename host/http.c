#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "crash.h"
#include "error.h"
#include "text.h"
#include "ffi_call.h"
#include "jsonout.h"
#include "log.h"
#include "manage.h"
#include "metrics.h"
#include "reload.h"
#include "openapi.h"
#include "www.h"

/* A connection, known from accept to close, for the whole-request deadline. */
typedef struct conn {
    int fd;
    bool receiving; /* a request is being read (not yet handed to dispatch) */
    bool cut;       /* shut down by the deadline or to make room */
    double since;   /* when the current request began to arrive (monotonic seconds) */
    struct conn *prev, *next;
} conn;

struct ph_http {
    ph_host *host;
    struct MHD_Daemon *d;
    size_t max_body;
    int max_depth;
    int timeout_s;
    bool require_token; /* [auth] settings are read once: they need a restart */
    bool public_bind;   /* listening beyond loopback: every change needs the token */
    char **origins;     /* [http] allowed_origins, copied: settings are read once */
    size_t n_origins;
    char **names; /* [http] server_names */
    size_t n_names;

    /* whole-request deadline and room for new clients */
    int request_timeout_s;
    size_t max_conns;
    pthread_mutex_t conn_mu;
    pthread_cond_t conn_cv;
    conn *conns; /* accept order */
    size_t n_conns;
    bool reaper_running, reaper_stop;
    pthread_t reaper;
    atomic_ulong cut_deadline, cut_room;

    /*
     * Each connection has a thread of its own, which runs its package calls:
     * no package call ever holds a thread another connection needs (the
     * host's /_/ endpoints above all). The watcher answers a call past its
     * time limit with 504 on the connection itself and abandons it.
     */
    int call_timeout_ms; /* [limits] call_timeout: the default time limit */
    int max_calls;       /* [limits] max_concurrent_calls, per instance */
    pthread_mutex_t job_mu;
    pthread_cond_t job_cv;
    struct job *jobs; /* package calls running (the watcher's list) */
    bool watcher_running, watcher_stop;
    pthread_t watcher;

    atomic_long inflight;
    atomic_bool stopping;
    atomic_ulong by_class[6]; /* responses by status class: [1] 1xx ... [5] 5xx */
};

/*
 * How long a status read (/_/packages, a mount lookup) waits for an
 * instance's gate while a reload holds it closed; the calls themselves wait
 * the router's hold time.
 */
#define PH_HTTP_GATE_WAIT_MS 2000

/* One request: the body as it arrives. */
typedef struct req {
    char *body;
    size_t len, cap;
    bool too_big; /* the body passed max_body; the rest is discarded */
} req;

/*
 * A package call running on its connection's thread, on the stack of
 * answer_call. Under job_mu the watcher may answer it (504) on the
 * connection's socket once it runs past its time limit; the thread then
 * closes the connection when the call returns.
 */
typedef struct job {
    const char *address;
    const char *instance;
    const char *origin; /* the allowed cross origin to answer with, or NULL */
    bool head;          /* HEAD: the 504 has no body */
    int fd;             /* the connection's socket */
    double started;     /* monotonic seconds */
    ph_inst_load *load;
    ph_call_watch w;
    bool answered; /* the watcher answered 504 (under job_mu) */
    struct job *prev, *next;
} job;

/* The request path split into decoded segments. */
typedef struct path {
    char *buf; /* decoded copy of the path, segments NUL-separated */
    char **segs;
    size_t n;
    bool bad; /* a segment had a bad %-escape or decoded to NUL */
} path;

/* What a request is about, gathered before it is served. */
typedef struct call {
    ph_http *h;
    struct MHD_Connection *c;
    const char *url; /* raw (not unescaped) */
    const char *method;
    req *rq;
    bool admin;         /* a valid admin token came with the request */
    const char *origin; /* an allowed cross origin to answer with CORS headers, or NULL */
} call;

/* ------------------------------------------------------------------ */
/* Responses                                                            */
/* ------------------------------------------------------------------ */

unsigned ph_http_status_of(int code)
{
    return ph_error_http_status(code);
}

static enum MHD_Result send_response(call *k, unsigned status, struct MHD_Response *r)
{
    if (!r)
        return MHD_NO;
    if (atomic_load_explicit(&k->h->stopping, memory_order_relaxed))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (k->origin) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, k->origin);
        MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
        MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_EXPOSE_HEADERS,
                                "Location, Retry-After");
    }
    enum MHD_Result ret = MHD_queue_response(k->c, status, r);
    MHD_destroy_response(r);
    unsigned cls = status / 100;
    if (cls >= 1 && cls <= 5)
        atomic_fetch_add_explicit(&k->h->by_class[cls], 1, memory_order_relaxed);
    return ret;
}

/* Sends `v` (any JSON value, borrowed) with a trailing newline. */
static enum MHD_Result send_json(call *k, unsigned status, const json_t *v,
                                 struct MHD_Response **keep)
{
    ph_json_buf b = {0}; /* not json_dumps: see jsonout.h */
    if (json_dump_callback(v, ph_json_buf_add, &b, JSON_COMPACT | JSON_ENCODE_ANY) != 0 ||
        ph_json_buf_add("\n", 1, &b) != 0) {
        free(b.p);
        return MHD_NO;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(b.p);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (keep) { /* the caller adds headers and sends */
        *keep = r;
        return MHD_YES;
    }
    return send_response(k, status, r);
}

/* Sends the error body for `code` with `word` and `message`. */
static enum MHD_Result send_error_word(call *k, unsigned status, const char *word,
                                       const char *message)
{
    json_t *e = json_pack("{s:{s:s,s:s}}", "error", "code", word, "message", message);
    if (!e) { /* not UTF-8 (a message quoting raw request bytes): mask what is not ASCII */
        char *m = strdup(message);
        for (char *s = m; s && *s; s++)
            if ((unsigned char)*s >= 0x80)
                *s = '?';
        e = m ? json_pack("{s:{s:s,s:s}}", "error", "code", word, "message", m) : NULL;
        free(m);
    }
    struct MHD_Response *r = NULL;
    enum MHD_Result ret = e ? send_json(k, status, e, &r) : MHD_NO;
    json_decref(e);
    if (!r)
        return MHD_NO;
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"plughost\"");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE || status == MHD_HTTP_TOO_MANY_REQUESTS)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    (void)ret;
    return send_response(k, status, r);
}

static enum MHD_Result send_error(call *k, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result send_error(call *k, int code, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return MHD_NO;
    enum MHD_Result ret = send_error_word(k, ph_http_status_of(code), ph_error_word(code), msg);
    free(msg);
    return ret;
}

/* The error recorded by the failed operation (code, package word, message). */
/* A failed operation's status: the package's choice while its error is still the last one. */
static unsigned status_of_failure(int rc)
{
    return ph_error_last_code() == rc ? ph_error_last_http_status() : ph_http_status_of(rc);
}

static enum MHD_Result send_last_error(call *k, int rc)
{
    const char *msg = ph_error_last();
    const char *word = ph_error_last_word();
    return send_error_word(k, status_of_failure(rc), word && *word ? word : ph_error_word(rc),
                           msg && *msg ? msg : ph_error_text(rc));
}

static enum MHD_Result send_405(call *k, const char *allow)
{
    json_t *e = json_pack("{s:{s:s,s:s+}}", "error", "code", "method_not_allowed", "message",
                          "this path does not take that method; use ", allow);
    struct MHD_Response *r = NULL;
    if (e)
        send_json(k, MHD_HTTP_METHOD_NOT_ALLOWED, e, &r);
    json_decref(e);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    return send_response(k, MHD_HTTP_METHOD_NOT_ALLOWED, r);
}

/* ------------------------------------------------------------------ */
/* Request parsing                                                      */
/* ------------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Decodes %XX in place over [s, s+n); returns the new length, or -1 for a
 * malformed escape or an encoded NUL. Decoding only ever shrinks.
 */
static long pct_decode(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            s[o++] = s[i];
            continue;
        }
        if (i + 2 >= n)
            return -1;
        int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return -1;
        s[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    s[o] = '\0';
    return (long)o;
}

static void path_free(path *p)
{
    free(p->buf);
    free(p->segs);
}

/*
 * Splits the raw path on '/' first and decodes each segment after, so an
 * encoded slash stays inside its segment (where www rejects it) instead of
 * becoming a separator. "/a/b/" gives {"a", "b"}; inner empty segments stay.
 */
static int path_split(const char *url, path *out)
{
    memset(out, 0, sizeof(*out));
    size_t len = strlen(url);
    if (len == SIZE_MAX || !(out->buf = malloc(len + 1)))
        return PH_ENOMEM;
    memcpy(out->buf, url, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += url[i] == '/';
    if (!(out->segs = calloc(n + 1, sizeof(char *))))
        return PH_ENOMEM;
    char *s = out->buf + (len && url[0] == '/');
    char *end = out->buf + len;
    while (s < end) {
        char *slash = memchr(s, '/', (size_t)(end - s));
        size_t sl = slash ? (size_t)(slash - s) : (size_t)(end - s);
        if (!slash && sl == 0)
            break;
        s[sl] = '\0';
        if (pct_decode(s, sl) < 0)
            out->bad = true;
        out->segs[out->n++] = s;
        if (!slash)
            break;
        s = slash + 1;
        if (s == end) /* trailing slash */
            break;
    }
    return 0;
}

/* Constant time in the content of the secret `want`. */
static bool token_equal(const char *got, size_t got_len, const char *want)
{
    size_t n = strlen(want);
    unsigned char d = (unsigned char)(got_len != n);
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)((unsigned char)(i < got_len ? got[i] : 0) ^ (unsigned char)want[i]);
    return d == 0;
}

/* 0: no token sent; 1: the right token; -1: a token that is wrong or malformed. */
static int check_token(call *k)
{
    const char *a =
        MHD_lookup_connection_value(k->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!a)
        return 0;
    if (strncasecmp(a, "Bearer ", 7) != 0)
        return -1;
    a += 7;
    while (*a == ' ')
        a++;
    size_t n = strlen(a);
    while (n && a[n - 1] == ' ')
        n--;
    const char *want = k->h->host->admin_token;
    return want && *want && token_equal(a, n, want) ? 1 : -1;
}

/* Deepest nesting of arrays/objects in a JSON text, counted without parsing. */
static bool depth_ok(const char *p, size_t n, int max)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return false;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return true;
}

static bool media_is(const char *ct, const char *type)
{
    size_t n = strlen(type);
    if (strncasecmp(ct, type, n) != 0)
        return false;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* A JSON media type: application/json or application/<x>+json, parameters allowed. */
static bool json_typed(const char *ct)
{
    if (!ct)
        return false;
    if (media_is(ct, "application/json"))
        return true;
    size_t tl = strcspn(ct, "; ");
    return tl >= 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + tl - 5, "+json", 5) == 0;
}

/* Methods that may change something; GET, HEAD and OPTIONS only read. */
static bool changes_state(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
           strcmp(method, "OPTIONS") != 0;
}

static bool in_list(char *const *list, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && strncasecmp(list[i], s, len) == 0)
            return true;
    return false;
}

/*
 * Whether the Host header names this host (DNS rebinding: a page on
 * evil.example whose name later resolves to 127.0.0.1 sends
 * "Host: evil.example"). IP literals and localhost are accepted (a page
 * whose origin is an IP literal is that host's own origin), other names
 * only from [http] server_names.
 */
static bool host_allowed(const ph_http *h, const char *host)
{
    if (!host)
        return true; /* HTTP/1.0 without Host: not a browser */
    size_t n = strlen(host);
    if (n && host[0] == '[')
        return memchr(host, ']', n) != NULL;
    const char *colon = strrchr(host, ':');
    if (colon && strspn(colon + 1, "0123456789") == strlen(colon + 1))
        n = (size_t)(colon - host);
    if (n && host[n - 1] == '.')
        n--;
    char ip[INET_ADDRSTRLEN];
    unsigned char bin[4];
    if (n && n < sizeof ip) {
        memcpy(ip, host, n);
        ip[n] = '\0';
        if (inet_pton(AF_INET, ip, bin) == 1)
            return true;
    }
    if (n == 9 && strncasecmp(host, "localhost", 9) == 0)
        return true;
    return in_list(h->names, h->n_names, host, n);
}

/* The Origin is this host's own ("http://" + Host) or one of [http] allowed_origins. */
static bool same_origin(call *k, const char *origin)
{
    const char *host = MHD_lookup_connection_value(k->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    return host && strncasecmp(origin, "http://", 7) == 0 && strcasecmp(origin + 7, host) == 0;
}

static bool origin_listed(const ph_http *h, const char *origin)
{
    return in_list(h->origins, h->n_origins, origin, strlen(origin));
}

/* Answers a CORS preflight (OPTIONS with Access-Control-Request-Method). */
static enum MHD_Result preflight(call *k, const char *origin)
{
    if (!origin_listed(k->h, origin))
        return send_error_word(k, MHD_HTTP_FORBIDDEN, "origin_not_allowed",
                               "this origin may not call the host from a browser; add it to "
                               "[http] allowed_origins in host.ini to allow it");
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    k->origin = origin;
    MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_METHODS,
                            "GET, HEAD, POST, PATCH, DELETE");
    MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_HEADERS,
                            "Content-Type, Authorization");
    MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_MAX_AGE, "600");
    return send_response(k, MHD_HTTP_NO_CONTENT, r);
}

/*
 * The checks every request passes before it is routed, against requests a
 * web page makes on behalf of someone else (cross-site request forgery, DNS
 * rebinding). Returns true when a response was sent (*ret).
 */
static bool refuse_foreign(call *k, enum MHD_Result *ret)
{
    const char *host = MHD_lookup_connection_value(k->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    const char *origin = MHD_lookup_connection_value(k->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN);
    if (!host_allowed(k->h, host)) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "this host does not answer to the name in the Host header; use its address "
                 "(such as %s:%d) or add the name to [http] server_names in host.ini",
                 k->h->host->cfg.http.listen_addr, ph_http_port(k->h));
        *ret = send_error_word(k, MHD_HTTP_MISDIRECTED_REQUEST, "misdirected_request", msg);
        return true;
    }
    if (origin && strcmp(k->method, "OPTIONS") == 0 &&
        MHD_lookup_connection_value(k->c, MHD_HEADER_KIND,
                                    MHD_HTTP_HEADER_ACCESS_CONTROL_REQUEST_METHOD)) {
        *ret = preflight(k, origin);
        return true;
    }
    if (origin && origin_listed(k->h, origin))
        k->origin = origin;
    else if (origin && changes_state(k->method) && !same_origin(k, origin)) {
        *ret = send_error_word(k, MHD_HTTP_FORBIDDEN, "origin_not_allowed",
                               "a page from another origin may not change anything on this "
                               "host; add the origin to [http] allowed_origins in host.ini to "
                               "allow it");
        return true;
    }
    return false;
}

/* State changes need a JSON body type, so a browser must ask (preflight) before it sends one. */
static bool refuse_untyped(call *k, enum MHD_Result *ret)
{
    if (!changes_state(k->method))
        return false;
    const char *ct =
        MHD_lookup_connection_value(k->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (json_typed(ct))
        return false;
    json_t *e =
        json_pack("{s:{s:s,s:s+++}}", "error", "code", "unsupported_media_type", "message",
                  k->method, " requests must be sent with Content-Type: application/json (got ",
                  ct ? ct : "none", "), even without a body");
    struct MHD_Response *r = NULL;
    if (e)
        send_json(k, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, e, &r);
    json_decref(e);
    *ret = r ? send_response(k, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, r) : MHD_NO;
    return true;
}

/*
 * Parses the body into *args (NULL for an empty body). On failure a
 * response was sent (400/413/415) and -1 is returned with *ret set.
 */
static int read_body(call *k, json_t **args, enum MHD_Result *ret)
{
    *args = NULL;
    if (k->rq->too_big) {
        *ret = send_error(k, PH_ETOOBIG,
                          "the request body is larger than the limit of %zu bytes; "
                          "send less or raise [http] max_body in host.ini",
                          k->h->max_body);
        return -1;
    }
    if (!k->rq->len)
        return 0;
    if (!depth_ok(k->rq->body, k->rq->len, k->h->max_depth)) {
        *ret = send_error(k, PH_EARGS,
                          "the JSON body nests deeper than %d levels; flatten it or "
                          "raise [http] max_json_depth in host.ini",
                          k->h->max_depth);
        return -1;
    }
    json_error_t err;
    *args = json_loadb(k->rq->body, k->rq->len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    if (!*args) {
        *ret = send_error(k, PH_EARGS,
                          "the body is not valid JSON: %s at line %d column %d; send "
                          "a JSON object (arguments by name) or array (by position)",
                          err.text, err.line, err.column);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Which instance a path belongs to                                     */
/* ------------------------------------------------------------------ */

typedef struct mount_match {
    const path *p;
    size_t best; /* segments of the best mount so far */
    bool found;
    char *name; /* copies: the instance may be replaced after the lock is released */
    char *dir;
    bool oom;
    long busy; /* segments of a match held by a reload past PH_HTTP_GATE_WAIT_MS, or -1 */
} mount_match;

/* Number of path segments `mount` spans if it prefixes p, else -1. */
static long mount_prefix(const char *mount, const path *p)
{
    size_t i = 0;
    const char *m = mount;
    while (*m == '/')
        m++;
    while (*m) {
        const char *e = strchr(m, '/');
        size_t l = e ? (size_t)(e - m) : strlen(m);
        if (i >= p->n || strlen(p->segs[i]) != l || memcmp(p->segs[i], m, l) != 0)
            return -1;
        i++;
        m += l;
        while (*m == '/')
            m++;
    }
    return (long)i;
}

static void visit_mount(ph_instance *inst, void *ud)
{
    mount_match *mm = ud;
    long n = mount_prefix(inst->mount ? inst->mount : inst->name, mm->p);
    if (n < 0 || (mm->found && (size_t)n <= mm->best))
        return;
    /* a reload swaps inst->manifest while the gate is closed */
    if (ph_gate_enter(&inst->gate, PH_HTTP_GATE_WAIT_MS)) {
        if (n > mm->busy)
            mm->busy = n;
        return;
    }
    char *name = strdup(inst->name);
    /* ...and a change repoints an unchanged build at its new manifest without it */
    const ph_manifest *m = __atomic_load_n(&inst->manifest, __ATOMIC_ACQUIRE);
    char *dir = m && m->dir ? strdup(m->dir) : strdup("");
    ph_gate_leave(&inst->gate);
    if (!name || !dir) {
        free(name);
        free(dir);
        mm->oom = true;
        return;
    }
    free(mm->name);
    free(mm->dir);
    mm->name = name;
    mm->dir = dir;
    mm->best = (size_t)n;
    mm->found = true;
}

/* ------------------------------------------------------------------ */
/* Instance routes                                                      */
/* ------------------------------------------------------------------ */

static bool is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* Answers with a call's result `out` (borrowed) or its error (rc, word, msg). */
static enum MHD_Result send_result(call *k, int rc, const char *word, const char *msg, json_t *out,
                                   unsigned ok, const char *location_base)
{
    if (rc)
        return send_error_word(k, status_of_failure(rc), word && *word ? word : ph_error_word(rc),
                               msg && *msg ? msg : ph_error_text(rc));
    json_t *id = location_base ? json_object_get(out, "id") : NULL;
    if (!json_is_integer(id))
        return send_json(k, ok, out ? out : json_null(), NULL);
    struct MHD_Response *r = NULL;
    char *loc = NULL;
    send_json(k, ok, out ? out : json_null(), &r);
    if (r && asprintf(&loc, "%s/%" JSON_INTEGER_FORMAT, location_base, json_integer_value(id)) >= 0)
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, loc);
    free(loc);
    return r ? send_response(k, ok, r) : MHD_NO;
}

/* The running calls of the instance an address names, or NULL for an unknown instance. */
static ph_inst_load *load_of_address(ph_http *h, const char *address, char *name)
{
    size_t n = strcspn(address, ".");
    if (n > PH_NAME_MAX)
        return NULL;
    memcpy(name, address, n);
    name[n] = '\0';
    ph_instance *inst = ph_router_instance(h->host->router, name);
    return inst ? inst->load : NULL;
}

static double mono_now(void);
static conn *conn_of(struct MHD_Connection *c);

static void jobs_add(ph_http *h, job *j)
{
    pthread_mutex_lock(&h->job_mu);
    j->prev = NULL;
    j->next = h->jobs;
    if (h->jobs)
        h->jobs->prev = j;
    h->jobs = j;
    pthread_mutex_unlock(&h->job_mu);
}

/* Takes the job off the watcher's list; true if the watcher already answered it. */
static bool jobs_remove(ph_http *h, job *j)
{
    pthread_mutex_lock(&h->job_mu);
    if (j->prev)
        j->prev->next = j->next;
    else
        h->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    bool answered = j->answered;
    pthread_mutex_unlock(&h->job_mu);
    return answered;
}

/*
 * Calls `address` on this connection's thread and answers with its result
 * (or error). Takes `args`. A call past its time limit has been answered
 * 504 by the watcher meanwhile: the connection is then closed.
 */
static enum MHD_Result answer_call(call *k, const char *address, json_t *args, unsigned ok,
                                   const char *location_base)
{
    ph_http *h = k->h;
    char name[PH_NAME_MAX + 1];
    ph_inst_load *ld = load_of_address(h, address, name);
    conn *cn = conn_of(k->c);
    if (ld && atomic_fetch_add(&ld->running, 1) >= h->max_calls) {
        atomic_fetch_sub(&ld->running, 1);
        atomic_fetch_add_explicit(&ld->refused, 1, memory_order_relaxed);
        json_decref(args);
        return send_error(k, PH_ELIMIT,
                          "instance '%s' is already running %d calls, its limit ([limits] "
                          "max_concurrent_calls in host.ini); retry later, or raise the limit",
                          name, h->max_calls);
    }
    json_t *out = NULL;
    ph_error_clear();
    unsigned flags = PH_CALL_LIMITED | (k->admin ? PH_CALL_ADMIN : 0);
    int rc;
    if (!ld || !cn) { /* no such instance: the router says so at once, with the list */
        rc = ph_router_call(h->host->router, NULL, address, args, flags, &out);
    } else {
        job j = {.address = address,
                 .instance = name,
                 .origin = k->origin,
                 .head = is(k->method, "HEAD"),
                 .fd = cn->fd,
                 .started = mono_now(),
                 .load = ld};
        jobs_add(h, &j);
        rc = ph_router_call_watched(h->host->router, address, args, flags, &j.w, &out);
        atomic_fetch_sub(&ld->running, 1); /* only now: a late call counts until it returns */
        if (jobs_remove(h, &j)) {
            json_decref(out);
            json_decref(args);
            return MHD_NO; /* answered 504 already: close the connection */
        }
    }
    json_decref(args);
    enum MHD_Result ret =
        send_result(k, rc, ph_error_last_word(), ph_error_last(), out, ok, location_base);
    json_decref(out);
    return ret;
}

static enum MHD_Result post_actor(call *k, const char *inst, const char *actor, const char *method)
{
    enum MHD_Result ret;
    json_t *args;
    if (read_body(k, &args, &ret))
        return ret;
    if (args && !json_is_object(args) && !json_is_array(args) && !json_is_null(args)) {
        json_decref(args);
        return send_error(k, PH_EARGS,
                          "the body must be a JSON object (arguments by name) or "
                          "array (by position), not a bare value");
    }
    char *address = NULL;
    if (asprintf(&address, "%s.%s.%s", inst, actor, method) < 0) {
        json_decref(args);
        return MHD_NO;
    }
    ret = answer_call(k, address, args, MHD_HTTP_OK, NULL);
    free(address);
    return ret;
}

typedef struct actors_list {
    const char *inst;
    json_t *actors;
} actors_list;

static void visit_actor(const ph_route *r, void *ud)
{
    actors_list *al = ud;
    if (!r->inst || !is(r->inst->name, al->inst))
        return;
    json_t *actor = json_object_get(al->actors, r->actor);
    if (!actor) {
        json_object_set_new(al->actors, r->actor, json_object());
        actor = json_object_get(al->actors, r->actor);
        if (!actor)
            return;
    }
    json_t *args = json_array();
    for (uint32_t i = 0; i < r->n_args; i++)
        json_array_append_new(args, json_pack("{s:s,s:s}", "name", r->args[i].name, "type",
                                              ph_type_name(r->args[i].type)));
    json_t *m = json_pack("{s:o,s:s,s:b}", "args", args, "returns", ph_type_name(r->ret), "admin",
                          (r->flags & PH_ADMIN) != 0);
    if (m && r->doc)
        json_object_set_new(m, "doc", json_string(r->doc));
    if (m && r->model) {
        /* CRUD methods take the model's fields by name: their types let clients convert */
        json_t *fields = json_array();
        for (uint32_t i = 0; fields && i < r->model->n_fields; i++)
            json_array_append_new(fields,
                                  json_pack("{s:s,s:s}", "name", r->model->fields[i].name, "type",
                                            ph_type_name(r->model->fields[i].type)));
        json_object_set_new(m, "model", json_string(r->model->name));
        json_object_set_new(m, "fields", fields);
    }
    json_object_set_new(actor, r->method, m);
}

static enum MHD_Result get_actors(call *k, const char *inst)
{
    actors_list al = {inst, json_object()};
    if (!al.actors)
        return MHD_NO;
    ph_router_each(k->h->host->router, visit_actor, &al);
    json_t *body = json_pack("{s:s,s:o}", "instance", inst, "actors", al.actors);
    enum MHD_Result ret = body ? send_json(k, MHD_HTTP_OK, body, NULL) : MHD_NO;
    json_decref(body);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Model routes: REST onto the CRUD actor "<inst>.<model>.<op>"         */
/* ------------------------------------------------------------------ */

typedef struct query {
    json_t *raw;   /* name -> decoded string */
    char *bad_msg; /* the first parameter that cannot be used, and why */
} query;

static void query_refuse(query *q, const char *raw_name, const char *why)
{
    if (!q->bad_msg && asprintf(&q->bad_msg, "query parameter '%s' %s", raw_name, why) < 0)
        q->bad_msg = NULL;
}

/* jansson refuses strings that are not UTF-8: the one validator in the host. */
static bool utf8_ok(const char *s)
{
    json_t *j = json_string(s);
    bool ok = j != NULL;
    json_decref(j);
    return ok;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    query *q = cls;
    (void)kind;
    char *k = strdup(key), *v = strdup(value ? value : "");
    json_t *js = NULL;
    if (!k || !v)
        query_refuse(q, key, "could not be read (out of memory)");
    else if (pct_decode(k, strlen(k)) < 0 || pct_decode(v, strlen(v)) < 0)
        query_refuse(q, key, "has a malformed or NUL %-escape; encode bytes as %XX");
    else if (!utf8_ok(k) || !(js = json_string(v)))
        query_refuse(q, key, "is not UTF-8 text once %-decoded; send UTF-8, %-encoded");
    else if (json_object_get(q->raw, k))
        query_refuse(q, key, "is given twice; give each filter once");
    else if (json_object_set(q->raw, k, js))
        query_refuse(q, key, "could not be read (out of memory)");
    json_decref(js);
    free(k);
    free(v);
    return MHD_YES;
}

/*
 * A query string value as the JSON type its field declares (text the type
 * does not parse stays text, for the CRUD layer to name). NULL with *bad
 * set for a number JSON cannot hold (1e400, nan, inf); NULL alone: no memory.
 */
static json_t *typed_value(const char *s, ph_type t, bool *bad)
{
    int64_t i;
    bool b;
    switch (t) {
    case PH_I64:
    case PH_TIME:
    case PH_REF:
        return ph_parse_i64(s, &i) == 0 ? json_integer(i) : json_string(s);
    case PH_F64: {
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (!*s || *end)
            return json_string(s);
        if (!isfinite(d) || errno == ERANGE) {
            *bad = true;
            return NULL;
        }
        return json_real(d);
    }
    case PH_BOOL:
        return ph_parse_bool(s, &b) == 0 ? json_boolean(b) : json_string(s);
    default:
        return json_string(s);
    }
}

typedef struct list_conv {
    const char *inst, *model;
    json_t *raw;  /* query values, strings */
    json_t *args; /* the list arguments being built */
    bool seen;
    bool oom;
    char *bad_msg; /* a value no field can take */
} list_conv;

/*
 * The field a filter name refers to: the name itself, or the part before an
 * operator suffix ("price.gte" -> price). The CRUD layer decides what the
 * suffix means and rejects what it does not know.
 */
static const ph_field *filter_field(const ph_model *m, const char *key)
{
    size_t kl = strcspn(key, ".");
    for (uint32_t i = 0; i < m->n_fields; i++)
        if (strlen(m->fields[i].name) == kl && memcmp(m->fields[i].name, key, kl) == 0)
            return &m->fields[i];
    return NULL;
}

/*
 * "price__gte" (the spelling of Django and of many REST clients) as the
 * CRUD layer's "price.gte"; other keys unchanged. Field names are C
 * identifiers, so the first "__" after a leading character ends the name.
 * Returns a malloc'd key or NULL (out of memory).
 */
static char *filter_key(const char *key)
{
    char *k = strdup(key);
    char *dd = k && k[0] ? strstr(k + 1, "__") : NULL;
    if (dd && !strchr(dd + 2, '.') && dd[2]) {
        dd[0] = '.';
        memmove(dd + 1, dd + 2, strlen(dd + 2) + 1);
    }
    return k;
}

/* Runs inside ph_router_each, where the model's declaration is safe to read. */
static void visit_list(const ph_route *r, void *ud)
{
    list_conv *lc = ud;
    if (lc->seen || !r->model || !r->inst || !is(r->inst->name, lc->inst) ||
        !is(r->actor, lc->model))
        return;
    lc->seen = true;
    json_t *filters = lc->args; /* the CRUD list takes filters beside order/limit/offset */
    const char *key;
    json_t *v;
    json_object_foreach(lc->raw, key, v)
    {
        if (is(key, "order") || is(key, "limit") || is(key, "offset"))
            continue;
        char *name = filter_key(key);
        if (!name) {
            lc->oom = true;
            return;
        }
        /* id, created and updated are the host's integer columns */
        size_t nl = strcspn(name, ".");
        bool host_col = (nl == 2 && !strncmp(name, "id", 2)) ||
                        (nl == 7 && (!strncmp(name, "created", 7) || !strncmp(name, "updated", 7)));
        const ph_field *f = host_col ? NULL : filter_field(r->model, name);
        bool bad = false;
        json_t *val = typed_value(json_string_value(v),
                                  f          ? f->type
                                  : host_col ? PH_I64
                                             : PH_STR,
                                  &bad);
        if (bad && !lc->bad_msg &&
            asprintf(&lc->bad_msg,
                     "query parameter '%s' must be a finite number that fits a double, "
                     "not '%s'",
                     key, json_string_value(v)) < 0)
            lc->bad_msg = NULL;
        if (!bad && json_object_set_new(filters, name, val))
            lc->oom = true;
        free(name);
        if (bad)
            return;
    }
}

/*
 * Maps ?field=value&order=-field&limit=10&offset=20 onto the list
 * arguments. NULL: no memory, or q->bad_msg says which value is unusable.
 */
static json_t *list_args(call *k, const char *inst, const char *model, query *q)
{
    list_conv lc = {inst, model, q->raw, json_object(), false, false, NULL};
    if (!lc.args)
        return NULL;
    static const char *const paging[] = {"limit", "offset"};
    bool bad = false;
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(q->raw, paging[i]);
        if (v)
            json_object_set_new(lc.args, paging[i],
                                typed_value(json_string_value(v), PH_I64, &bad));
    }
    json_t *order = json_object_get(q->raw, "order");
    if (order)
        json_object_set(lc.args, "order", order);
    ph_router_each(k->h->host->router, visit_list, &lc);
    if (!lc.seen) /* no such model: the call reports it; keep the filters as sent */
        json_object_update_missing(lc.args, q->raw);
    if (lc.oom || lc.bad_msg) {
        q->bad_msg = lc.bad_msg;
        json_decref(lc.args);
        return NULL;
    }
    return lc.args;
}

static enum MHD_Result model_call(call *k, const char *inst, const char *model, const char *op,
                                  json_t *args, unsigned ok, const char *location_base)
{
    char *address = NULL;
    if (asprintf(&address, "%s.%s.%s", inst, model, op) < 0) {
        json_decref(args);
        return MHD_NO;
    }
    enum MHD_Result ret = answer_call(k, address, args, ok, location_base);
    free(address);
    return ret;
}

static enum MHD_Result models_collection(call *k, const char *inst, const char *model)
{
    enum MHD_Result ret;
    json_t *args = NULL;
    if (is(k->method, "GET") || is(k->method, "HEAD")) {
        query q = {json_object(), NULL};
        if (!q.raw)
            return MHD_NO;
        MHD_get_connection_values(k->c, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
        if (!q.bad_msg)
            args = list_args(k, inst, model, &q);
        if (q.bad_msg)
            ret = send_error(k, PH_EARGS, "%s", q.bad_msg);
        else
            ret = args ? model_call(k, inst, model, "list", args, MHD_HTTP_OK, NULL) : MHD_NO;
        free(q.bad_msg);
        json_decref(q.raw);
        return ret;
    }
    if (!is(k->method, "POST"))
        return send_405(k, "GET, POST");
    if (read_body(k, &args, &ret))
        return ret;
    if (!json_is_object(args)) {
        json_decref(args);
        return send_error(k, PH_EARGS,
                          "POST to a model takes the new record as a JSON object, "
                          "e.g. {\"title\": \"hello\"}");
    }
    char *base = NULL;
    if (asprintf(&base, "%s", k->url) < 0) {
        json_decref(args);
        return MHD_NO;
    }
    size_t bl = strlen(base);
    while (bl > 1 && base[bl - 1] == '/')
        base[--bl] = '\0';
    /* new takes the record as its argument object */
    ret = model_call(k, inst, model, "new", args, MHD_HTTP_CREATED, base);
    free(base);
    return ret;
}

static enum MHD_Result models_item(call *k, const char *inst, const char *model,
                                   const char *id_text)
{
    enum MHD_Result ret;
    int64_t id;
    bool get = is(k->method, "GET") || is(k->method, "HEAD");
    if (!get && !is(k->method, "PATCH") && !is(k->method, "DELETE"))
        return send_405(k, "GET, PATCH, DELETE");
    if (ph_parse_i64(id_text, &id) || id < 0)
        return send_error(k, PH_ENOTFOUND,
                          "'%s' is not a record id; ids are positive integers, "
                          "as returned by POST or listed by GET on the model",
                          id_text);
    if (get || is(k->method, "DELETE"))
        return model_call(k, inst, model, get ? "get" : "delete", json_pack("{s:I}", "id", id),
                          MHD_HTTP_OK, NULL);
    json_t *args;
    if (read_body(k, &args, &ret))
        return ret;
    if (!json_is_object(args)) {
        json_decref(args);
        return send_error(k, PH_EARGS,
                          "PATCH takes the fields to change as a JSON object, e.g. "
                          "{\"title\": \"new\"}");
    }
    json_t *given = json_object_get(args, "id");
    if (given && !(json_is_integer(given) && json_integer_value(given) == id)) {
        json_decref(args);
        return send_error(k, PH_EARGS,
                          "the body's \"id\" differs from the id in the path; ids "
                          "cannot be changed, leave \"id\" out of the body");
    }
    json_object_set_new(args, "id", json_integer(id));
    return model_call(k, inst, model, "set", args, MHD_HTTP_OK, NULL);
}

/* ------------------------------------------------------------------ */
/* Static files                                                         */
/* ------------------------------------------------------------------ */

static enum MHD_Result serve_file(call *k, const char *pkg_dir, const char *sub, char *const *segs,
                                  size_t n, bool trailing_slash)
{
    /* a wiki is written in Markdown; a package may still ship it rendered */
    static const char *const wiki_index[] = {"index.html", "index.md", NULL};
    if (!is(k->method, "GET") && !is(k->method, "HEAD"))
        return send_405(k, "GET, HEAD");
    char *root = NULL;
    if (asprintf(&root, "%s/%s", pkg_dir, sub) < 0)
        return MHD_NO;
    ph_www_file f;
    ph_error_clear();
    int rc = ph_www_open_in(sub, root, segs, n, is(sub, "wiki") ? wiki_index : NULL, &f);
    free(root);
    if (rc)
        return send_last_error(k, rc);
    if (f.is_index && !trailing_slash && k->url[0] == '/' && k->url[1] != '/') {
        /* relative links in index.html need the directory's slash */
        close(f.fd);
        char *loc = NULL;
        if (asprintf(&loc, "%s/", k->url) < 0)
            return MHD_NO;
        struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (r)
            MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, loc);
        free(loc);
        return send_response(k, MHD_HTTP_MOVED_PERMANENTLY, r);
    }
    struct MHD_Response *r = MHD_create_response_from_fd64(f.size, f.fd);
    if (!r) {
        close(f.fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, f.content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_X_CONTENT_TYPE_OPTIONS, "nosniff");
    return send_response(k, MHD_HTTP_OK, r);
}

/* ------------------------------------------------------------------ */
/* Host routes under /_/                                                */
/* ------------------------------------------------------------------ */

static bool state_settled(const char *s)
{
    return s && (is(s, "running") || is(s, "failed") || is(s, "skipped") || is(s, "declined") ||
                 is(s, "stopped"));
}

static enum MHD_Result get_health(call *k)
{
    ph_host *host = k->h->host;
    json_t *insts = json_object();
    bool ready = !atomic_load(&k->h->stopping) && !atomic_load(&host->starting);
    pthread_rwlock_rdlock(&host->lock); /* a configuration reload replaces the plan */
    for (size_t i = 0; insts && i < host->plan.n; i++) {
        const char *s = ph_host_item_state(host, i, NULL); /* atomics only: races no reload */
        ready = ready && state_settled(s);
        json_object_set_new(insts, host->plan.items[i].instance, json_string(s));
    }
    pthread_rwlock_unlock(&host->lock);
    json_t *body = json_pack("{s:s,s:b,s:o}", "status", "ok", "ready", ready, "instances", insts);
    /* `?ready` (the documented form, no value) or `?ready=1`: readiness, 503 until ready */
    const char *v = NULL;
    size_t vlen = 0;
    bool want_ready = MHD_lookup_connection_value_n(k->c, MHD_GET_ARGUMENT_KIND, "ready", 5, &v,
                                                    &vlen) == MHD_YES;
    unsigned st = want_ready && !ready ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK;
    enum MHD_Result ret = body ? send_json(k, st, body, NULL) : MHD_NO;
    json_decref(body);
    return ret;
}

static enum MHD_Result get_packages(call *k)
{
    json_t *body = ph_manage_packages(k->h->host);
    enum MHD_Result ret = body ? send_json(k, MHD_HTTP_OK, body, NULL) : MHD_NO;
    json_decref(body);
    return ret;
}

static enum MHD_Result get_metrics(call *k)
{
    char *extra = NULL, *text = NULL;
    size_t len = 0;
    ph_http *h = k->h;
    if (asprintf(&extra,
                 "# HELP plughost_http_responses_total HTTP responses by status class.\n"
                 "# TYPE plughost_http_responses_total counter\n"
                 "plughost_http_responses_total{code=\"2xx\"} %lu\n"
                 "plughost_http_responses_total{code=\"3xx\"} %lu\n"
                 "plughost_http_responses_total{code=\"4xx\"} %lu\n"
                 "plughost_http_responses_total{code=\"5xx\"} %lu\n"
                 "# HELP plughost_http_requests_in_flight Requests being served.\n"
                 "# TYPE plughost_http_requests_in_flight gauge\n"
                 "plughost_http_requests_in_flight %ld\n"
                 "# HELP plughost_http_connections_cut_total Connections closed by the host: a "
                 "request past [http] request_timeout, or the slowest one to make room.\n"
                 "# TYPE plughost_http_connections_cut_total counter\n"
                 "plughost_http_connections_cut_total{reason=\"deadline\"} %lu\n"
                 "plughost_http_connections_cut_total{reason=\"room\"} %lu\n",
                 atomic_load(&h->by_class[2]), atomic_load(&h->by_class[3]),
                 atomic_load(&h->by_class[4]), atomic_load(&h->by_class[5]),
                 atomic_load(&h->inflight), atomic_load(&h->cut_deadline),
                 atomic_load(&h->cut_room)) < 0)
        return MHD_NO;
    int rc = ph_metrics_render(h->host, extra, &text, &len);
    free(extra);
    if (rc)
        return send_last_error(k, rc);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    return send_response(k, MHD_HTTP_OK, r);
}

static enum MHD_Result get_openapi(call *k)
{
    json_t *doc = NULL;
    int rc = ph_openapi_build(k->h->host, &doc);
    if (rc)
        return send_last_error(k, rc);
    enum MHD_Result ret = send_json(k, MHD_HTTP_OK, doc, NULL);
    json_decref(doc);
    return ret;
}

/*
 * Management: POST /_/reload/<package> (the same transaction as a file
 * change), /_/unload/<package> (stop, data kept) and /_/enable/<package>.
 * Admin only.
 */
static enum MHD_Result post_manage(call *k, const char *op, const char *pkg)
{
    if (!is(k->method, "POST"))
        return send_405(k, "POST");
    if (!k->admin)
        return send_error(k, PH_EAUTH,
                          "'%s' needs the admin token: send "
                          "'Authorization: Bearer <token>'",
                          op);
    json_t *body = NULL;
    int rc = ph_manage(k->h->host, op, pkg, &body);
    if (rc == PH_EDEPENDENCY)
        return send_error(k, PH_ECONFLICT, "%s", ph_error_last());
    if (rc)
        return send_last_error(k, rc);
    enum MHD_Result ret = send_json(k, MHD_HTTP_OK, body, NULL);
    json_decref(body);
    return ret;
}

static enum MHD_Result host_route(call *k, const path *p)
{
    if (p->n == 3 &&
        (is(p->segs[1], "reload") || is(p->segs[1], "unload") || is(p->segs[1], "disable") ||
         is(p->segs[1], "enable") || is(p->segs[1], "remove")))
        return post_manage(k, p->segs[1], p->segs[2]);
    const char *what = p->n == 2 ? p->segs[1] : "";
    enum MHD_Result (*fn)(call *) = is(what, "health")         ? get_health
                                    : is(what, "metrics")      ? get_metrics
                                    : is(what, "openapi.json") ? get_openapi
                                    : is(what, "packages")     ? get_packages
                                                               : NULL;
    if (!fn)
        return send_error(k, PH_ENOTFOUND,
                          "no host endpoint '%s'; the host serves /_/health, "
                          "/_/metrics, /_/openapi.json, /_/packages, "
                          "POST /_/reload|disable|enable|remove/<name>",
                          k->url);
    if (!is(k->method, "GET") && !is(k->method, "HEAD"))
        return send_405(k, "GET, HEAD");
    return fn(k);
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                             */
/* ------------------------------------------------------------------ */

static enum MHD_Result instance_route(call *k, const path *p, const char *inst, const char *dir,
                                      size_t at, bool trailing_slash)
{
    char *const *s = p->segs + at;
    size_t n = p->n - at;
    if (n >= 1 && is(s[0], "actors")) {
        if (n == 1)
            return is(k->method, "GET") || is(k->method, "HEAD") ? get_actors(k, inst)
                                                                 : send_405(k, "GET, HEAD");
        if (n == 3)
            return is(k->method, "POST") ? post_actor(k, inst, s[1], s[2]) : send_405(k, "POST");
        return send_error(k, PH_ENOTFOUND,
                          "no route %s; methods are called with POST "
                          "<mount>/actors/<actor>/<method>",
                          k->url);
    }
    if (n >= 1 && is(s[0], "models")) {
        if (n == 2)
            return models_collection(k, inst, s[1]);
        if (n == 3)
            return models_item(k, inst, s[1], s[2]);
        return send_error(k, PH_ENOTFOUND,
                          "no route %s; models are at <mount>/models/<model> and "
                          "<mount>/models/<model>/<id>",
                          k->url);
    }
    if (n >= 1 && is(s[0], "wiki"))
        return serve_file(k, dir, "wiki", s + 1, n - 1, trailing_slash);
    return serve_file(k, dir, "www", s, n, trailing_slash);
}

static enum MHD_Result dispatch(call *k)
{
    enum MHD_Result ret;
    path p;
    if (k->url[0] != '/')
        return send_error(k, PH_EINVAL,
                          "the request target must be an absolute path such as "
                          "/calc/actors/math/add");
    if (path_split(k->url, &p)) {
        path_free(&p);
        return MHD_NO;
    }
    size_t ul = strlen(k->url);
    bool trailing = ul > 1 && k->url[ul - 1] == '/';
    int tok = check_token(k);
    k->admin = tok == 1;
    if (refuse_foreign(k, &ret)) {
        /* answered: Host, Origin or preflight */
    } else if (p.bad) {
        ret = send_error(k, PH_EINVAL,
                         "the path has a malformed or NUL %%-escape; encode bytes as "
                         "%%XX with two hex digits");
    } else if (tok < 0) {
        ret = send_error(k, PH_EAUTH,
                         "the bearer token is wrong; send 'Authorization: Bearer "
                         "<token>' with the admin token (in the file set by [auth] "
                         "token_file of host.ini)");
    } else if (k->h->require_token && !k->admin &&
               !(p.n == 2 && is(p.segs[0], "_") && is(p.segs[1], "health"))) {
        ret = send_error(k, PH_EAUTH,
                         "this host requires the admin token on every request "
                         "([auth] require_token); send 'Authorization: Bearer <token>'");
    } else if (k->h->public_bind && !k->admin && changes_state(k->method)) {
        ret = send_error(k, PH_EAUTH,
                         "this host listens beyond loopback, so every change needs the admin "
                         "token; send 'Authorization: Bearer <token>'");
    } else if (refuse_untyped(k, &ret)) {
        /* answered: 415 */
    } else if (p.n >= 1 && is(p.segs[0], "_")) {
        ret = host_route(k, &p);
    } else {
        mount_match mm = {.p = &p, .busy = -1};
        ph_router_each_instance(k->h->host->router, visit_mount, &mm);
        if (mm.oom)
            ret = MHD_NO;
        else if (mm.busy >= 0 && (!mm.found || (size_t)mm.busy > mm.best))
            ret = send_error(k, PH_EBUSY, "the instance mounted at %s is being reloaded; retry",
                             k->url);
        else if (!mm.found && atomic_load(&k->h->host->starting))
            ret = send_error(k, PH_EBUSY,
                             "the host is still starting its packages (%zu to go); retry when "
                             "GET /_/health?ready answers 200",
                             atomic_load(&k->h->host->starting));
        else if (!mm.found)
            ret = send_error(k, PH_ENOTFOUND,
                             "nothing is mounted at %s; GET /_/packages lists "
                             "the instances and their mounts",
                             k->url);
        else
            ret = instance_route(k, &p, mm.name, mm.dir, mm.best, trailing);
        free(mm.name);
        free(mm.dir);
    }
    path_free(&p);
    return ret;
}

/* ------------------------------------------------------------------ */
/* libmicrohttpd glue                                                   */
/* ------------------------------------------------------------------ */

/* Parses Content-Length strictly; false if malformed. */
static bool parse_length(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

/* Limits on what comes before the body; past them the answer is 414 or 431 in JSON. */
#define PH_HTTP_MAX_TARGET (8u * 1024)   /* path and query */
#define PH_HTTP_MAX_HEADERS (32u * 1024) /* all header lines */
/* libmicrohttpd's own per-connection buffer, kept well above both (its own refusal is HTML). */
#define PH_HTTP_CONN_MEMORY (256u * 1024)

typedef struct head_sizes {
    size_t bytes;
    const char *length; /* the first Content-Length */
    bool lengths_differ;
    int hosts, types, chunked; /* Host and Content-Type headers; a Transfer-Encoding */
} head_sizes;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    head_sizes *hs = cls;
    (void)kind;
    hs->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;
    if (value && strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (!hs->length)
            hs->length = value;
        else if (strcmp(hs->length, value) != 0)
            hs->lengths_differ = true;
    }
    hs->hosts += strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0;
    hs->types += strcasecmp(key, MHD_HTTP_HEADER_CONTENT_TYPE) == 0;
    hs->chunked += strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0;
    return MHD_YES;
}

/* What the request line and headers must satisfy before anything else; true if answered. */
static bool refuse_head(call *k, enum MHD_Result *ret)
{
    head_sizes target = {strlen(k->url), NULL, false, 0, 0, 0}, head = {0, NULL, false, 0, 0, 0};
    MHD_get_connection_values(k->c, MHD_GET_ARGUMENT_KIND, count_header, &target);
    MHD_get_connection_values(k->c, MHD_HEADER_KIND, count_header, &head);
    if (target.bytes > PH_HTTP_MAX_TARGET)
        *ret = send_error_word(k, MHD_HTTP_URI_TOO_LONG, "uri_too_long",
                               "the request's path and query are longer than 8192 bytes; "
                               "send the data in a JSON body instead");
    else if (head.bytes > PH_HTTP_MAX_HEADERS)
        *ret = send_error_word(k, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large",
                               "the request's headers are larger than 32768 bytes; send fewer "
                               "or shorter headers");
    else if (head.lengths_differ) /* which one frames the body? (request smuggling) */
        *ret = send_error(k, PH_EINVAL,
                          "the request has Content-Length headers that disagree; send one");
    else if (head.length && head.chunked) /* RFC 9112 6.3: ambiguous framing */
        *ret = send_error(k, PH_EINVAL,
                          "the request has both Content-Length and Transfer-Encoding; send "
                          "one of them");
    else if (head.hosts > 1) /* RFC 9112 3.2: which host is meant? */
        *ret = send_error(k, PH_EINVAL, "the request has %d Host headers; send one", head.hosts);
    else if (head.types > 1)
        *ret = send_error(k, PH_EINVAL, "the request has %d Content-Type headers; send one",
                          head.types);
    else
        return false;
    return true;
}

/* The connection's deadline record (NULL if the server was started without it). */
static conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Marks the connection's request as fully received (false) or a new one as arriving (true). */
static void conn_receiving(ph_http *h, struct MHD_Connection *c, bool receiving)
{
    conn *cn = conn_of(c);
    if (!cn)
        return;
    pthread_mutex_lock(&h->conn_mu);
    cn->receiving = receiving;
    if (receiving)
        cn->since = mono_now();
    pthread_mutex_unlock(&h->conn_mu);
}

/* Under conn_mu. shutdown() wakes libmicrohttpd, which closes the connection itself. */
static void conn_cut(conn *cn)
{
    if (!cn->cut)
        shutdown(cn->fd, SHUT_RDWR);
    cn->cut = true;
}

/*
 * Accept/close bookkeeping. When the server is nearly full (80%), the
 * connection that has spent longest on an unfinished request is cut, so slow
 * clients cannot hold every place and a new client always gets in. The
 * margin is wide because a cut connection's place comes free only once its
 * thread has ended and libmicrohttpd has collected it.
 */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode what)
{
    ph_http *h = cls;
    if (what == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn *cn = ci ? calloc(1, sizeof *cn) : NULL;
        if (!cn)
            return;
        cn->fd = ci->connect_fd;
        cn->receiving = true;
        cn->since = mono_now();
        pthread_mutex_lock(&h->conn_mu);
        if (h->n_conns + 1 >= h->max_conns - h->max_conns / 5) {
            conn *oldest = NULL;
            for (conn *o = h->conns; o; o = o->next)
                if (o->receiving && !o->cut && (!oldest || o->since < oldest->since))
                    oldest = o;
            if (oldest) {
                conn_cut(oldest);
                atomic_fetch_add_explicit(&h->cut_room, 1, memory_order_relaxed);
            }
        }
        cn->next = h->conns;
        if (h->conns)
            h->conns->prev = cn;
        h->conns = cn;
        h->n_conns++;
        pthread_mutex_unlock(&h->conn_mu);
        *socket_context = cn;
    } else if (what == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        conn *cn = *socket_context; /* called before libmicrohttpd closes the fd */
        pthread_mutex_lock(&h->conn_mu);
        if (cn->prev)
            cn->prev->next = cn->next;
        else
            h->conns = cn->next;
        if (cn->next)
            cn->next->prev = cn->prev;
        h->n_conns--;
        pthread_mutex_unlock(&h->conn_mu);
        free(cn);
        *socket_context = NULL;
    }
}

/* Cuts every connection whose current request has taken longer than request_timeout. */
static void *reaper_main(void *arg)
{
    ph_http *h = arg;
    pthread_mutex_lock(&h->conn_mu);
    while (!h->reaper_stop) {
        double now = mono_now();
        for (conn *cn = h->conns; cn; cn = cn->next)
            if (cn->receiving && !cn->cut && now - cn->since > h->request_timeout_s) {
                conn_cut(cn);
                atomic_fetch_add_explicit(&h->cut_deadline, 1, memory_order_relaxed);
            }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->conn_cv, &h->conn_mu, &until);
    }
    pthread_mutex_unlock(&h->conn_mu);
    return NULL;
}

/*
 * Under job_mu: answers a call past its time limit with 504 on its socket
 * (libmicrohttpd cannot: the connection's thread is inside the call) and
 * abandons it: it leaves its instance's gate and keeps counting against the
 * instance's limit until it returns.
 */
static void expire(ph_http *h, job *j, int limit_ms)
{
    j->answered = true;
    bool running = ph_router_abandon(&j->w);
    atomic_fetch_add_explicit(&j->load->timed_out, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->by_class[5], 1, memory_order_relaxed);
    char *msg = NULL, *resp = NULL;
    ph_json_buf b = {0};
    if (asprintf(&msg,
                 "%s ran past its time limit of %g s and is no longer waited for; it keeps "
                 "counting against instance '%s''s limit of calls until it returns. Make the "
                 "method return sooner, or raise its limit: [limits] call_timeout in host.ini, "
                 "or '%s = SECONDS' under [limits] in the package's package.ini",
                 j->address, limit_ms / 1000.0, j->instance, strchr(j->address, '.') + 1) < 0)
        msg = NULL;
    json_t *e = msg ? json_pack("{s:{s:s,s:s}}", "error", "code", "timeout", "message", msg) : NULL;
    if (e && json_dump_callback(e, ph_json_buf_add, &b, JSON_COMPACT) == 0 &&
        ph_json_buf_add("\n", 1, &b) == 0 &&
        asprintf(&resp,
                 "HTTP/1.1 504 Gateway Timeout\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n%s%s%s\r\n%.*s",
                 b.len, j->origin ? "Access-Control-Allow-Origin: " : "",
                 j->origin ? j->origin : "", j->origin ? "\r\nVary: Origin\r\n" : "",
                 j->head ? 0 : (int)b.len, b.p) >= 0) {
        /* small enough for the socket's buffer; a client that reads nothing loses it */
        if (send(j->fd, resp, strlen(resp), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
            ph_log_debug("could not answer 504 for %s: %s", j->address, ph_strerror(errno));
    }
    shutdown(j->fd, SHUT_WR);
    if (running)
        ph_logf(PH_L_WARN, j->instance,
                "%s ran past its time limit of %g s: answered 504, the call goes on until it "
                "returns",
                j->address, limit_ms / 1000.0);
    json_decref(e);
    free(b.p);
    free(resp);
    free(msg);
}

/*
 * Checks the running calls' time limits every 50 ms, and about once a
 * second that no package replaced the host's crash handlers during a call
 * (after prepare/start/stop residue.c checks at once).
 */
static void *watcher_main(void *arg)
{
    ph_http *h = arg;
    double last_reclaim = mono_now();
    pthread_mutex_lock(&h->job_mu);
    while (!h->watcher_stop) {
        double now = mono_now();
        char names[64];
        if (now - last_reclaim >= 1.0) {
            last_reclaim = now;
            if (ph_crash_reclaim(names, sizeof names) > 0)
                ph_log_warn("package code replaced the host's crash handler (%s) during a call; "
                            "put back, so crashes are reported and journaled again: a package "
                            "must not install handlers for fatal signals",
                            names);
        }
        for (job *j = h->jobs; j; j = j->next) {
            int limit = atomic_load(&j->w.limit_ms);
            if (!limit)
                limit = h->call_timeout_ms;
            if (!j->answered && (now - j->started) * 1000.0 >= limit)
                expire(h, j, limit);
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 50 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->job_cv, &h->job_mu, &until);
    }
    pthread_mutex_unlock(&h->job_mu);
    return NULL;
}

static int body_append(ph_http *h, req *rq, const char *data, size_t n)
{
    if (rq->too_big || n > h->max_body - rq->len) {
        rq->too_big = true;
        free(rq->body);
        rq->body = NULL;
        rq->len = rq->cap = 0;
        return 0;
    }
    if (rq->len + n > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 1024;
        while (cap < rq->len + n)
            cap *= 2; /* bounded by max_body, far below SIZE_MAX / 2 */
        char *b = realloc(rq->body, cap);
        if (!b)
            return -1;
        rq->body = b;
        rq->cap = cap;
    }
    memcpy(rq->body + rq->len, data, n);
    rq->len += n;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    ph_http *h = cls;
    req *rq = *con_cls;
    call k = {h, c, url, method, rq, false, NULL};
    (void)version;
    if (!rq) {
        if (!(rq = calloc(1, sizeof(*rq))))
            return MHD_NO;
        *con_cls = rq;
        atomic_fetch_add_explicit(&h->inflight, 1, memory_order_relaxed);
        k.rq = rq;
        enum MHD_Result ret;
        if (refuse_head(&k, &ret))
            return ret;
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t len;
        if (cl && !parse_length(cl, &len))
            return send_error(&k, PH_EINVAL, "Content-Length is not a number");
        if (cl && len > h->max_body) /* refuse before reading a byte of it */
            return send_error(&k, PH_ETOOBIG,
                              "the request body (%" PRIu64 " bytes) is larger "
                              "than the limit of %zu bytes; send less or raise "
                              "[http] max_body in host.ini",
                              len, h->max_body);
        return MHD_YES;
    }
    if (*upload_size) {
        if (body_append(h, rq, upload, *upload_size))
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    conn_receiving(h, c, false); /* the whole request is in: no deadline while it is served */
    return dispatch(&k);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    ph_http *h = cls;
    req *rq = *con_cls;
    (void)toe;
    conn_receiving(h, c, true); /* a kept-alive connection waits for its next request */
    if (!rq)
        return;
    free(rq->body);
    free(rq);
    *con_cls = NULL;
    atomic_fetch_sub_explicit(&h->inflight, 1, memory_order_relaxed);
}

/* Keeps the path exactly as sent; dispatch decodes each segment once. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static void mhd_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void mhd_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ph_logv(PH_L_WARN, "http", fmt, ap);
    va_end(ap);
}

/* libmicrohttpd's messages end in a newline: one log line each, without it. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    mhd_line("%s", line);
}

static int resolve_listen(const ph_http_conf *hc, struct sockaddr_storage *ss, bool *v6)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[16];
    if (hc->port < 0 || hc->port > 65535)
        return ph_error_set(PH_ECONFIG,
                            "[http] port %d is out of range; use 1-65535 (0 picks a "
                            "free port)",
                            hc->port);
    snprintf(port, sizeof(port), "%d", hc->port);
    const char *addr = hc->listen_addr && *hc->listen_addr ? hc->listen_addr : "127.0.0.1";
    int rc = getaddrinfo(addr, port, &hints, &res);
    if (rc || !res) {
        if (res)
            freeaddrinfo(res);
        return ph_error_set(PH_ECONFIG,
                            "cannot use listen address '%s': %s; set [http] listen "
                            "in host.ini (e.g. 127.0.0.1:8901) or pass --listen",
                            addr, gai_strerror(rc));
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return 0;
}

static char **copy_strv(char *const *v, size_t n)
{
    char **c = calloc(n + 1, sizeof *c);
    for (size_t i = 0; c && i < n; i++)
        if (!(c[i] = strdup(v[i]))) {
            while (i--)
                free(c[i]);
            free(c);
            return NULL;
        }
    return c;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void http_free(ph_http *h)
{
    if (!h)
        return;
    free_strv(h->origins, h->n_origins);
    free_strv(h->names, h->n_names);
    pthread_mutex_destroy(&h->conn_mu);
    pthread_cond_destroy(&h->conn_cv);

    free(h);
}

/* 127.0.0.0/8 and ::1 (also as ::ffff:127.x): reachable from this machine only. */
static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

/*
 * Every connection is a file descriptor: raises the soft RLIMIT_NOFILE so
 * max_connections fit (with room for databases and packages), or serves
 * fewer connections than configured and says so.
 */
static size_t fit_fd_limit(size_t want)
{
    enum { SPARE = 128 };
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur >= want + SPARE)
        return want;
    rlim_t need = want + SPARE;
    if (rl.rlim_max != RLIM_INFINITY && need > rl.rlim_max)
        need = rl.rlim_max;
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && need >= want + SPARE)
        return want;
    getrlimit(RLIMIT_NOFILE, &rl);
    size_t fit = rl.rlim_cur > SPARE + 16 ? (size_t)rl.rlim_cur - SPARE : 16;
    ph_log_warn("[http] max_connections = %zu does not fit the open-file limit (%llu); serving "
                "at most %zu connections: raise it (ulimit -n, LimitNOFILE=)",
                want, (unsigned long long)rl.rlim_cur, fit);
    return fit;
}

int ph_http_start(ph_host *host, ph_http **out)
{
    const ph_http_conf *hc = &host->cfg.http;
    struct sockaddr_storage ss;
    bool v6 = false;
    int rc;

    *out = NULL;
    if (!host->admin_token && (rc = ph_host_load_token(host)))
        return rc;
    if ((rc = resolve_listen(hc, &ss, &v6)))
        return rc;
    ph_http *h = calloc(1, sizeof(*h));
    if (!h)
        return ph_error_set(PH_ENOMEM, "out of memory starting the HTTP server");
    h->host = host;
    pthread_mutex_init(&h->conn_mu, NULL);
    pthread_cond_init(&h->conn_cv, NULL);
    pthread_mutex_init(&h->job_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->job_cv, &ca);
    pthread_condattr_destroy(&ca);
    const ph_limits_conf *lc = &host->cfg.limits;
    h->call_timeout_ms = lc->call_timeout_ms > 0 ? lc->call_timeout_ms : 30000;
    h->max_calls = lc->max_concurrent_calls > 0 ? lc->max_concurrent_calls : 16;
    h->max_body = hc->max_body ? hc->max_body : 1024 * 1024;
    h->require_token = host->cfg.auth.require_token;
    h->public_bind = !is_loopback(&ss);
    h->n_origins = hc->n_allowed_origins;
    h->n_names = hc->n_server_names;
    h->origins = copy_strv(hc->allowed_origins, hc->n_allowed_origins);
    h->names = copy_strv(hc->server_names, hc->n_server_names);
    h->request_timeout_s = hc->request_timeout > 0 ? hc->request_timeout : 30;
    h->max_conns = fit_fd_limit(hc->max_connections >= 16 ? (size_t)hc->max_connections : 1000);
    if (!h->origins || !h->names) {
        http_free(h);
        return ph_error_set(PH_ENOMEM, "out of memory starting the HTTP server");
    }
    ph_router_set_rate_limit(host->router, hc->rate_limit);
    h->max_depth = hc->max_json_depth > 0 ? hc->max_json_depth : 64;
    h->timeout_s = hc->connection_timeout > 0 ? hc->connection_timeout : 15;
    /*
     * A thread per connection: a package call's connection waits for its
     * worker without holding a thread any other connection needs. (A shared
     * pool would have to suspend the connection instead, and libmicrohttpd
     * 0.9.75 then closes a connection whose client half-closed it, before
     * the answer, on resume.) [http] threads no longer applies.
     */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)h->timeout_s, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)(hc->max_connections_per_ip > 0 ? hc->max_connections_per_ip : 0),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped,
        NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)h->max_conns, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)PH_HTTP_CONN_MEMORY,
        MHD_OPTION_END); /* no LISTENING_ADDRESS_REUSE: SO_REUSEPORT would let a second
                                  host share the port instead of failing to start */
    if (!h->d) {
        int e = errno;
        http_free(h);
        /* Only a taken address is about the port; the rest say their own cause. */
        const char *hint = e == EADDRINUSE || e == EACCES
                               ? "; another process may hold the port, or it needs privileges: "
                                 "change [http] listen in host.ini or pass --listen"
                           : e == EMFILE || e == ENFILE ? "" /* ph_strerror says it */
                                                        : "; check [http] listen in host.ini";
        return ph_error_set(PH_EIO, "cannot listen on %s:%d: %s%s",
                            hc->listen_addr ? hc->listen_addr : "127.0.0.1", hc->port,
                            e ? ph_strerror(e) : "libmicrohttpd refused the settings", hint);
    }
    if (pthread_create(&h->watcher, NULL, watcher_main, h) == 0)
        h->watcher_running = true;
    else
        ph_log_warn("no time limit on package calls: cannot start its thread");
    if (pthread_create(&h->reaper, NULL, reaper_main, h) == 0)
        h->reaper_running = true;
    else
        ph_log_warn("no whole-request deadline: cannot start its thread");
    if (h->public_bind)
        ph_log_warn("listening on %s:%d, which other machines can reach: every change needs the "
                    "admin token, and nothing is encrypted; prefer 127.0.0.1 behind a TLS proxy",
                    hc->listen_addr, hc->port);
    *out = h;
    return 0;
}

int ph_http_port(const ph_http *h)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : -1;
}

void ph_http_stop(ph_http *h)
{
    if (!h)
        return;
    atomic_store(&h->stopping, true);
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);

    /* Let the requests inside finish; bounded by the connection timeout. */
    struct timespec step = {0, 10 * 1000 * 1000};
    for (long waited = 0; atomic_load(&h->inflight) > 0 && waited < (long)h->timeout_s * 100;
         waited++)
        nanosleep(&step, NULL);
    if (atomic_load(&h->inflight) > 0) {
        /* Joining the pool would wait for package code that does not return. */
        ph_log_error("%ld HTTP request(s) still running after %d s; not waiting for them",
                     (long)atomic_load(&h->inflight), h->timeout_s);
        return;
    }
    MHD_stop_daemon(h->d);
    if (h->watcher_running) {
        pthread_mutex_lock(&h->job_mu);
        h->watcher_stop = true;
        pthread_cond_signal(&h->job_cv);
        pthread_mutex_unlock(&h->job_mu);
        pthread_join(h->watcher, NULL);
    }
    if (h->reaper_running) {
        pthread_mutex_lock(&h->conn_mu);
        h->reaper_stop = true;
        pthread_cond_signal(&h->conn_cv);
        pthread_mutex_unlock(&h->conn_mu);
        pthread_join(h->reaper, NULL);
    }
    http_free(h);
}
