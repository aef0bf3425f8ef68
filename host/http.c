#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
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

#include "crash.h"
#include "error.h"
#include "text.h"
#include "ffi_call.h"
#include "hooks.h"
#include "jsonflat.h"
#include "jsonout.h"
#include "localsock.h"
#include "log.h"
#include "manage.h"
#include "metrics.h"
#include "reload.h"
#include "openapi.h"
#include "httpd.h"
#include "www.h"

struct ph_http {
    ph_host *host;
    ph_httpd *srv;
    int port;
    size_t max_body;
    int max_depth;
    int timeout_s;
    bool require_token; /* [auth] settings are read once: they need a restart */
    bool public_bind;   /* listening beyond loopback: every change needs the token */
    char **origins;     /* [http] allowed_origins, copied: settings are read once */
    size_t n_origins;
    char **names; /* [http] server_names */
    size_t n_names;

    /*
     * A package call runs on the engine thread that read its request; the
     * engine starts another thread when none is left waiting, so a call that
     * blocks never holds a thread another connection needs (the host's /_/
     * endpoints above all). The watcher answers a call past its time limit
     * with 504 on the connection itself and abandons it.
     */
    int call_timeout_ms; /* [limits] call_timeout: the default time limit */
    int max_calls;       /* [limits] max_concurrent_calls, per instance */
    pthread_mutex_t job_mu;
    pthread_cond_t job_cv;
    struct job *jobs; /* package calls running (the watcher's list) */
    bool watcher_running, watcher_stop;
    pthread_t watcher;

    atomic_bool stopping;
    char *local_path; /* [http] socket: the local CLI's Unix socket (localsock.h), or NULL */
};

/*
 * How long a status read (/_/packages, a mount lookup) waits for an
 * instance's gate while a reload holds it closed; the calls themselves wait
 * the router's hold time.
 */
#define PH_HTTP_GATE_WAIT_MS 2000

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

/*
 * The request headers the handler reads, each the first of its name, found
 * in one pass over the headers (refuse_head) rather than one search each.
 */
typedef struct known_headers {
    const char *host, *origin, *authorization, *content_type, *acr_method;
    int types; /* how many Content-Type headers came (the engine refuses a second Host) */
} known_headers;

/* What a request is about, gathered before it is served. */
typedef struct ph_http_call {
    ph_http *h;
    const ph_httpd_req *rq;
    ph_httpd_resp *rs;
    const char *url; /* the path, raw (not unescaped) */
    const char *method;
    bool admin;         /* a valid admin token came with the request */
    const char *origin; /* an allowed cross origin to answer with CORS headers, or NULL */
    known_headers hd;   /* found by refuse_head, before anything else reads them */
} call;

/* ------------------------------------------------------------------ */
/* Responses                                                            */
/* ------------------------------------------------------------------ */

unsigned ph_http_status_of(int code)
{
    return ph_error_http_status(code);
}

/* Sets the status and the CORS headers of an allowed cross origin; the engine sends. */
static int respond(call *k, unsigned status)
{
    ph_httpd_resp *rs = k->rs;
    rs->status = status;
    if (k->origin) {
        ph_httpd_resp_header(rs, "Access-Control-Allow-Origin", k->origin);
        ph_httpd_resp_header(rs, "Vary", "Origin");
        ph_httpd_resp_header(rs, "Access-Control-Expose-Headers", "Location, Retry-After");
    }
    return rs->failed ? -1 : 0;
}

/* An integer's decimal text and a newline into out (at least 23 bytes: NUL-terminated, as
 * ph_json_buf keeps its text); returns the length without the NUL. */
static size_t integer_line(json_int_t v, char *out)
{
    char digits[24];
    size_t n = 0, len = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        digits[n++] = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = digits[--n];
    out[len++] = '\n';
    out[len] = '\0';
    return len;
}

/* The body: `v` (any JSON value, borrowed) with a trailing newline. */
static int set_json(call *k, const json_t *v)
{
    ph_json_buf b = {0};      /* not json_dumps: see jsonout.h */
    if (json_is_integer(v)) { /* the commonest result, as jansson would write it, without printf */
        if (!(b.p = malloc(24)))
            return -1;
        b.len = integer_line(json_integer_value(v), b.p);
    } else if (json_dump_callback(v, ph_json_buf_add, &b, JSON_COMPACT | JSON_ENCODE_ANY) != 0 ||
               ph_json_buf_add("\n", 1, &b) != 0) {
        free(b.p);
        return -1;
    }
    free(k->rs->body);
    k->rs->body = b.p;
    k->rs->body_len = b.len;
    ph_httpd_resp_header(k->rs, "Content-Type", "application/json");
    return 0;
}

static int send_json(call *k, unsigned status, const json_t *v)
{
    return set_json(k, v) ? -1 : respond(k, status);
}

/* Sends the error body for `code` with `word` and `message`. */
static int send_error_word(call *k, unsigned status, const char *word, const char *message)
{
    ph_httpd_resp *rs = k->rs;
    free(rs->body);
    rs->body = ph_httpd_error_body(word, message, &rs->body_len);
    if (!rs->body)
        return -1;
    ph_httpd_resp_header(rs, "Content-Type", "application/json");
    if (status == 401)
        ph_httpd_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"plughost\"");
    if (status == 503 || status == 429)
        ph_httpd_resp_header(rs, "Retry-After", "1");
    return respond(k, status);
}

static int send_error(call *k, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int send_error(call *k, int code, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    int ret = send_error_word(k, ph_http_status_of(code), ph_error_word(code), msg);
    free(msg);
    return ret;
}

/* A failed operation's status: the package's choice while its error is still the last one. */
static unsigned status_of_failure(int rc)
{
    return ph_error_last_code() == rc ? ph_error_last_http_status() : ph_http_status_of(rc);
}

static int send_last_error(call *k, int rc)
{
    const char *msg = ph_error_last();
    const char *word = ph_error_last_word();
    return send_error_word(k, status_of_failure(rc), word && *word ? word : ph_error_word(rc),
                           msg && *msg ? msg : ph_error_text(rc));
}

static int send_405(call *k, const char *allow)
{
    char *msg = NULL;
    if (asprintf(&msg, "this path does not take that method; use %s", allow) < 0)
        return -1;
    ph_httpd_resp_header(k->rs, "Allow", allow);
    int ret = send_error_word(k, 405, "method_not_allowed", msg);
    free(msg);
    return ret;
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
    const char *a = k->hd.authorization;
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
    const char *host = k->hd.host;
    return host && strncasecmp(origin, "http://", 7) == 0 && strcasecmp(origin + 7, host) == 0;
}

static bool origin_listed(const ph_http *h, const char *origin)
{
    return in_list(h->origins, h->n_origins, origin, strlen(origin));
}

/* Answers a CORS preflight (OPTIONS with Access-Control-Request-Method). */
static int preflight(call *k, const char *origin)
{
    if (!origin_listed(k->h, origin))
        return send_error_word(k, 403, "origin_not_allowed",
                               "this origin may not call the host from a browser; add it to "
                               "[http] allowed_origins in host.ini to allow it");
    k->origin = origin;
    ph_httpd_resp_header(k->rs, "Access-Control-Allow-Methods", "GET, HEAD, POST, PATCH, DELETE");
    ph_httpd_resp_header(k->rs, "Access-Control-Allow-Headers", "Content-Type, Authorization");
    ph_httpd_resp_header(k->rs, "Access-Control-Max-Age", "600");
    return respond(k, 204);
}

/*
 * The checks every request passes before it is routed, against requests a
 * web page makes on behalf of someone else (cross-site request forgery, DNS
 * rebinding). Returns true when a response was sent (*ret).
 */
static bool refuse_foreign(call *k, int *ret)
{
    const char *host = k->hd.host;
    const char *origin = k->hd.origin;
    /* the local socket's peers were checked by uid: no name can rebind to a Unix socket */
    if (!k->rq->trusted && !host_allowed(k->h, host)) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "this host does not answer to the name in the Host header; use its address "
                 "(such as %s:%d) or add the name to [http] server_names in host.ini",
                 k->h->host->cfg.http.listen_addr, ph_http_port(k->h));
        *ret = send_error_word(k, 421, "misdirected_request", msg);
        return true;
    }
    if (origin && strcmp(k->method, "OPTIONS") == 0 && k->hd.acr_method) {
        *ret = preflight(k, origin);
        return true;
    }
    if (origin && origin_listed(k->h, origin))
        k->origin = origin;
    else if (origin && changes_state(k->method) && !same_origin(k, origin)) {
        *ret = send_error_word(k, 403, "origin_not_allowed",
                               "a page from another origin may not change anything on this "
                               "host; add the origin to [http] allowed_origins in host.ini to "
                               "allow it");
        return true;
    }
    return false;
}

/* State changes need a JSON body type, so a browser must ask (preflight) before it sends one. */
static bool refuse_untyped(call *k, int *ret)
{
    if (!changes_state(k->method))
        return false;
    const char *ct = k->hd.content_type;
    if (json_typed(ct))
        return false;
    /* the one error body builder: it masks bytes a client sent that are not UTF-8 (json_pack
     * refused them, and the connection closed with no answer) */
    char *msg = NULL;
    if (asprintf(&msg,
                 "%s requests must be sent with Content-Type: application/json (got %s), even "
                 "without a body",
                 k->method, ct ? ct : "none") < 0) {
        *ret = -1;
        return true;
    }
    *ret = send_error_word(k, 415, "unsupported_media_type", msg);
    free(msg);
    return true;
}

/*
 * Parses the body into *args (NULL for an empty body). On failure a
 * response was sent (400/413/415) and -1 is returned with *ret set.
 */
static int read_body(call *k, json_t **args, int *ret)
{
    *args = NULL;
    if (!k->rq->body_len)
        return 0;
    if (!depth_ok(k->rq->body, k->rq->body_len, k->h->max_depth)) {
        *ret = send_error(k, PH_EARGS,
                          "the JSON body nests deeper than %d levels; flatten it or "
                          "raise [http] max_json_depth in host.ini",
                          k->h->max_depth);
        return -1;
    }
    json_error_t err;
    *args = ph_json_load_body(k->rq->body, k->rq->body_len, &err);
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
    /* a reload swaps inst->manifest while the gate is closed; a request arriving during its
     * drain waits for the new build (held), as calls through the router do */
    if (ph_gate_enter_held(&inst->gate, PH_HTTP_GATE_WAIT_MS)) {
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
static int send_result(call *k, int rc, const char *word, const char *msg, json_t *out, unsigned ok,
                       const char *location_base)
{
    if (rc)
        return send_error_word(k, status_of_failure(rc), word && *word ? word : ph_error_word(rc),
                               msg && *msg ? msg : ph_error_text(rc));
    json_t *id = location_base ? json_object_get(out, "id") : NULL;
    if (!json_is_integer(id))
        return send_json(k, ok, out ? out : json_null());
    char *loc = NULL;
    if (asprintf(&loc, "%s/%" JSON_INTEGER_FORMAT, location_base, json_integer_value(id)) < 0)
        return -1;
    ph_httpd_resp_header(k->rs, "Location", loc);
    free(loc);
    return send_json(k, ok, out);
}

static double mono_now(void);

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
/*
 * Runs `address` with `args` (taken) and answers with its result (`ok`) or
 * its error. With `text` the result is written as JSON text straight into
 * the body (ph_router_call_text: a CRUD get serialises from the statement's
 * columns, without building jansson values).
 */
static int answer_call_as(call *k, const char *address, json_t *args, unsigned ok,
                          const char *location_base, bool text)
{
    ph_http *h = k->h;
    char name[PH_NAME_MAX + 1];
    ph_inst_load *ld = load_of_address(h, address, name);
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
    if (!ld) { /* no such instance: the router says so at once, with the list */
        rc = ph_router_call(h->host->router, NULL, address, args, flags, &out);
    } else {
        job j = {.address = address,
                 .instance = name,
                 .origin = k->origin,
                 .head = is(k->method, "HEAD"),
                 .fd = k->rq->fd,
                 .started = mono_now(),
                 .load = ld};
        ph_json_buf b = {0};
        jobs_add(h, &j);
        if (text)
            rc = ph_router_call_text(h->host->router, address, args, flags, &j.w, &b);
        else
            rc = ph_router_call_watched(h->host->router, address, args, flags, &j.w, &out);
        atomic_fetch_sub(&ld->running, 1); /* only now: a late call counts until it returns */
        if (jobs_remove(h, &j)) {
            free(b.p);
            json_decref(out);
            json_decref(args);
            return -1; /* answered 504 already: close the connection */
        }
        if (text && !rc) {
            json_decref(args);
            if (b.failed || ph_json_buf_add("\n", 1, &b) != 0) {
                free(b.p);
                return -1;
            }
            free(k->rs->body);
            k->rs->body = b.p;
            k->rs->body_len = b.len;
            ph_httpd_resp_header(k->rs, "Content-Type", "application/json");
            return respond(k, ok);
        }
        free(b.p);
    }
    json_decref(args);
    int ret = send_result(k, rc, ph_error_last_word(), ph_error_last(), out, ok, location_base);
    json_decref(out);
    return ret;
}

static int answer_call(call *k, const char *address, json_t *args, unsigned ok,
                       const char *location_base)
{
    return answer_call_as(k, address, args, ok, location_base, false);
}

static int post_actor(call *k, const char *inst, const char *actor, const char *method)
{
    int ret;
    json_t *args;
    if (read_body(k, &args, &ret))
        return ret;
    if (args && !json_is_object(args) && !json_is_array(args) && !json_is_null(args)) {
        json_decref(args);
        return send_error(k, PH_EARGS,
                          "the body must be a JSON object (arguments by name) or "
                          "array (by position), not a bare value");
    }
    char stack[128], *address = ph_dotted_in(stack, sizeof stack, inst, actor, method);
    if (!address) {
        json_decref(args);
        return -1;
    }
    ret = answer_call(k, address, args, 200, NULL);
    ph_dotted_free(address, stack);
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

static int get_actors(call *k, const char *inst)
{
    actors_list al = {inst, json_object()};
    if (!al.actors)
        return -1;
    ph_router_each(k->h->host->router, visit_actor, &al);
    json_t *body = json_pack("{s:s,s:o}", "instance", inst, "actors", al.actors);
    int ret = body ? send_json(k, 200, body) : -1;
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

/*
 * Calls fn for each "key=value" of the raw query (value NULL without '='),
 * '+' read as a space as in HTML forms; the %-escapes are left for fn.
 * Stops at the first non-zero return. -1: out of memory.
 */
static int query_each(const char *query, int (*fn)(void *, const char *, const char *), void *ud)
{
    if (!query || !*query)
        return 0;
    char *copy = strdup(query);
    if (!copy)
        return -1;
    for (char *s = copy; *s; s++)
        if (*s == '+')
            *s = ' ';
    int rc = 0;
    for (char *item = copy, *next; item && !rc; item = next) {
        next = strchr(item, '&');
        if (next)
            *next++ = '\0';
        if (!*item)
            continue;
        char *eq = strchr(item, '=');
        if (eq)
            *eq = '\0';
        rc = fn(ud, item, eq ? eq + 1 : NULL);
    }
    free(copy);
    return rc;
}

static int collect_arg(void *cls, const char *key, const char *value)
{
    query *q = cls;
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
    return 0;
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

static int model_call(call *k, const char *inst, const char *model, const char *op, json_t *args,
                      unsigned ok, const char *location_base)
{
    char stack[128], *address = ph_dotted_in(stack, sizeof stack, inst, model, op);
    if (!address) {
        json_decref(args);
        return -1;
    }
    int ret = answer_call(k, address, args, ok, location_base);
    ph_dotted_free(address, stack);
    return ret;
}

static int models_collection(call *k, const char *inst, const char *model)
{
    int ret;
    json_t *args = NULL;
    if (is(k->method, "GET") || is(k->method, "HEAD")) {
        query q = {json_object(), NULL};
        if (!q.raw)
            return -1;
        if (query_each(k->rq->query, collect_arg, &q))
            query_refuse(&q, "", "could not be read (out of memory)");
        if (!q.bad_msg)
            args = list_args(k, inst, model, &q);
        if (q.bad_msg)
            ret = send_error(k, PH_EARGS, "%s", q.bad_msg);
        else
            ret = args ? model_call(k, inst, model, "list", args, 200, NULL) : -1;
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
        return -1;
    }
    size_t bl = strlen(base);
    while (bl > 1 && base[bl - 1] == '/')
        base[--bl] = '\0';
    /* new takes the record as its argument object */
    ret = model_call(k, inst, model, "new", args, 201, base);
    free(base);
    return ret;
}

static int models_item(call *k, const char *inst, const char *model, const char *id_text)
{
    int ret;
    int64_t id;
    bool get = is(k->method, "GET") || is(k->method, "HEAD");
    if (!get && !is(k->method, "PATCH") && !is(k->method, "DELETE"))
        return send_405(k, "GET, PATCH, DELETE");
    if (ph_parse_i64(id_text, &id) || id < 0)
        return send_error(k, PH_ENOTFOUND,
                          "'%s' is not a record id; ids are positive integers, "
                          "as returned by POST or listed by GET on the model",
                          id_text);
    if (get) { /* the record as text straight from its row */
        char stack[128], *address = ph_dotted_in(stack, sizeof stack, inst, model, "get");
        if (!address)
            return -1;
        int r = answer_call_as(k, address, json_pack("{s:I}", "id", id), 200, NULL, true);
        ph_dotted_free(address, stack);
        return r;
    }
    if (is(k->method, "DELETE"))
        return model_call(k, inst, model, "delete", json_pack("{s:I}", "id", id), 200, NULL);
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
    return model_call(k, inst, model, "set", args, 200, NULL);
}

/* ------------------------------------------------------------------ */
/* Static files                                                         */
/* ------------------------------------------------------------------ */

static int serve_file(call *k, const char *pkg_dir, const char *sub, char *const *segs, size_t n,
                      bool trailing_slash)
{
    /* a wiki is written in Markdown; a package may still ship it rendered */
    static const char *const wiki_index[] = {"index.html", "index.md", NULL};
    if (!is(k->method, "GET") && !is(k->method, "HEAD"))
        return send_405(k, "GET, HEAD");
    char *root = NULL;
    if (asprintf(&root, "%s/%s", pkg_dir, sub) < 0)
        return -1;
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
            return -1;
        ph_httpd_resp_header(k->rs, "Location", loc);
        free(loc);
        return respond(k, 301);
    }
    k->rs->file_fd = f.fd; /* the engine sends it and closes it */
    k->rs->file_len = (uint64_t)f.size;
    ph_httpd_resp_header(k->rs, "Content-Type", f.content_type);
    ph_httpd_resp_header(k->rs, "X-Content-Type-Options", "nosniff");
    if (f.sandbox) /* a wiki's raw files run no script in the host's origin */
        ph_httpd_resp_header(k->rs, "Content-Security-Policy", "sandbox");
    return respond(k, 200);
}

/* ------------------------------------------------------------------ */
/* Host routes under /_/                                                */
/* ------------------------------------------------------------------ */

static bool state_settled(const char *s)
{
    return s && (is(s, "running") || is(s, "failed") || is(s, "skipped") || is(s, "declined") ||
                 is(s, "stopped"));
}

static int find_ready(void *ud, const char *key, const char *value)
{
    (void)ud;
    (void)value;
    return strcmp(key, "ready") == 0;
}

static int get_health(call *k)
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
    bool want_ready = query_each(k->rq->query, find_ready, NULL) == 1;
    unsigned st = want_ready && !ready ? 503 : 200;
    int ret = body ? send_json(k, st, body) : -1;
    json_decref(body);
    return ret;
}

static int get_packages(call *k)
{
    json_t *body = ph_manage_packages(k->h->host);
    int ret = body ? send_json(k, 200, body) : -1;
    json_decref(body);
    return ret;
}

static int get_metrics(call *k)
{
    char *extra = NULL, *text = NULL;
    size_t len = 0;
    ph_http *h = k->h;
    ph_httpd_stats st;
    ph_httpd_stats_get(h->srv, &st);
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
                 st.by_class[2], st.by_class[3], st.by_class[4], st.by_class[5], st.inflight,
                 st.cut_deadline, st.cut_room) < 0)
        return -1;
    int rc = ph_metrics_render(h->host, extra, &text, &len);
    free(extra);
    if (rc)
        return send_last_error(k, rc);
    k->rs->body = text;
    k->rs->body_len = len;
    ph_httpd_resp_header(k->rs, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return respond(k, 200);
}

static int get_openapi(call *k)
{
    json_t *doc = NULL;
    int rc = ph_openapi_build(k->h->host, &doc);
    if (rc)
        return send_last_error(k, rc);
    int ret = send_json(k, 200, doc);
    json_decref(doc);
    return ret;
}

/*
 * Management: POST /_/reload/<package> (the same transaction as a file
 * change), /_/unload/<package> (stop, data kept) and /_/enable/<package>.
 * Admin only (the table says so; dispatch checks).
 */
static int post_manage(call *k, const ph_http_route *r, const char *pkg)
{
    const char *op = r->id + strlen("host.");
    json_t *body = NULL;
    int rc = ph_manage(k->h->host, op, pkg, &body);
    if (rc == PH_EDEPENDENCY)
        return send_error(k, PH_ECONFLICT, "%s", ph_error_last());
    if (rc)
        return send_last_error(k, rc);
    int ret = send_json(k, 200, body);
    json_decref(body);
    /*
     * A reload frees the old build's memory in the arena of whichever HTTP
     * thread ran it; give the free pages back, or each long-lived thread's
     * arena keeps its own high-water mark of reload garbage. At most once a
     * second: a trim walks every arena (tens of milliseconds).
     */
    static atomic_long last_trim;
    long now = (long)mono_now();
    long was = atomic_load(&last_trim);
    if (now != was && atomic_compare_exchange_strong(&last_trim, &was, now))
        malloc_trim(0);
    return ret;
}

static int host_health(call *k, const ph_http_route *r, const char *arg)
{
    (void)r, (void)arg;
    return get_health(k);
}

static int host_metrics(call *k, const ph_http_route *r, const char *arg)
{
    (void)r, (void)arg;
    return get_metrics(k);
}

static int host_openapi(call *k, const ph_http_route *r, const char *arg)
{
    (void)r, (void)arg;
    return get_openapi(k);
}

static int host_packages(call *k, const ph_http_route *r, const char *arg)
{
    (void)r, (void)arg;
    return get_packages(k);
}

/* GET /_/hooks/{endpoint}: the contributions to an extension point (hooks.h). */
static int host_hooks(call *k, const ph_http_route *r, const char *arg)
{
    json_t *body = NULL;
    (void)r;
    int rc = ph_hooks_list(k->h->host, arg, &body);
    if (rc)
        return send_last_error(k, rc);
    int ret = send_json(k, 200, body);
    json_decref(body);
    return ret;
}

#define PH_MANAGE_SCHEMA                                                                           \
    "{\"type\":\"object\",\"properties\":{\"package\":{\"type\":\"string\"},"                      \
    "\"operation\":{\"type\":\"string\"},\"instances\":{\"type\":\"integer\",\"minimum\":0},"      \
    "\"result\":{\"type\":\"string\"}},\"required\":[\"package\",\"operation\",\"result\"]}"
#define PH_MANAGE(op, summary)                                                                     \
    {                                                                                              \
        "POST", "/_/" op "/{name}", PH_ROUTE_ADMIN, "host." op, summary, "application/json",       \
            PH_MANAGE_SCHEMA, post_manage                                                          \
    }

const ph_http_route ph_http_host_routes[] = {
    {"GET, HEAD", "/_/health", PH_ROUTE_OPEN, "host.health",
     "Liveness (always 200 while serving) and readiness (the ready member; ?ready answers 503 "
     "until every instance has settled)",
     "application/json",
     "{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"string\"},\"ready\":{\"type\":"
     "\"boolean\"},\"instances\":{\"type\":\"object\",\"additionalProperties\":{\"type\":"
     "\"string\"}}},\"required\":[\"status\",\"ready\",\"instances\"]}",
     host_health},
    {"GET, HEAD", "/_/metrics", PH_ROUTE_READ, "host.metrics", "Prometheus text exposition format",
     "text/plain", "{\"type\":\"string\"}", host_metrics},
    {"GET, HEAD", "/_/openapi.json", PH_ROUTE_READ, "host.openapi", "This document (OpenAPI 3.1)",
     "application/json", "{\"type\":\"object\"}", host_openapi},
    {"GET, HEAD", "/_/packages", PH_ROUTE_READ, "host.packages",
     "Instances with package, version, state and dependencies", "application/json",
     "{\"type\":\"object\",\"properties\":{\"instances\":{\"type\":\"array\",\"items\":{\"type\":"
     "\"object\",\"properties\":{\"instance\":{\"type\":\"string\"},\"package\":{\"type\":"
     "\"string\"},\"version\":{\"type\":[\"string\",\"null\"]},\"mount\":{\"type\":\"string\"},"
     "\"state\":{\"type\":\"string\"},\"dependencies\":{\"type\":\"array\",\"items\":{\"type\":"
     "\"string\"}}},\"required\":[\"instance\",\"package\",\"state\"]}}},\"required\":["
     "\"instances\"]}",
     host_packages},
    {"GET, HEAD", "/_/hooks/{endpoint}", PH_ROUTE_READ, "host.hooks",
     "The contributions of running packages to an extension point, checked and ordered",
     "application/json",
     "{\"type\":\"object\",\"properties\":{\"endpoint\":{\"type\":\"string\"},"
     "\"declared_by\":{\"type\":\"string\"},\"parameters\":{\"type\":\"object\"},"
     "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}},\"problems\":{"
     "\"type\":\"array\",\"items\":{\"type\":\"string\"}}},\"required\":[\"endpoint\","
     "\"items\"]}",
     host_hooks},
    PH_MANAGE("reload", "Reloads a package's or instance's build now"),
    PH_MANAGE("disable", "Stops an instance (or every instance of a package) and keeps it off "
                         "across changes; data kept"),
    PH_MANAGE("unload", "The same as disable"),
    PH_MANAGE("enable", "Starts a disabled instance (or package) again"),
    PH_MANAGE("remove", "Stops and forgets an installed package (NAME@VERSION: one of its "
                        "versions); data kept"),
    PH_MANAGE("purge", "Removes an installed package as remove does and deletes its data after "
                       "a backup"),
};
const size_t ph_http_n_host_routes = sizeof ph_http_host_routes / sizeof ph_http_host_routes[0];

/*
 * Whether path segments p->segs match a route's pattern; *arg is the
 * segment a "{...}" stood for.
 */
static bool route_match(const ph_http_route *r, const path *p, const char **arg)
{
    const char *m = r->path + 1;
    size_t i = 0;
    *arg = NULL;
    while (*m) {
        size_t l = strcspn(m, "/");
        if (i >= p->n)
            return false;
        if (m[0] == '{')
            *arg = p->segs[i];
        else if (strlen(p->segs[i]) != l || memcmp(p->segs[i], m, l) != 0)
            return false;
        i++;
        m += l + (m[l] == '/');
    }
    return i == p->n;
}

static const ph_http_route *host_route_of(const path *p, const char **arg)
{
    for (size_t i = 0; i < ph_http_n_host_routes; i++)
        if (route_match(&ph_http_host_routes[i], p, arg))
            return &ph_http_host_routes[i];
    return NULL;
}

/* Whether `method` is one of a route's "GET, HEAD" list. */
static bool method_in(const char *list, const char *method)
{
    size_t ml = strlen(method);
    for (const char *s = list; *s;) {
        size_t l = strcspn(s, ", ");
        if (l == ml && memcmp(s, method, l) == 0)
            return true;
        s += l;
        s += strspn(s, ", ");
    }
    return false;
}

static int host_route(call *k, const path *p)
{
    const char *arg;
    const ph_http_route *r = host_route_of(p, &arg);
    if (!r) {
        char hint[512];
        size_t o = 0;
        for (size_t i = 0; i < ph_http_n_host_routes && o < sizeof hint; i++)
            o += (size_t)snprintf(hint + o, sizeof hint - o, "%s%.*s %s", i ? ", " : "",
                                  (int)strcspn(ph_http_host_routes[i].methods, ","),
                                  ph_http_host_routes[i].methods, ph_http_host_routes[i].path);
        return send_error(k, PH_ENOTFOUND, "no host endpoint '%s'; the host serves %s", k->url,
                          hint);
    }
    if (!method_in(r->methods, k->method))
        return send_405(k, r->methods);
    if (r->auth == PH_ROUTE_ADMIN && !k->admin)
        return send_error(k, PH_EAUTH,
                          "'%s' needs the admin token: send "
                          "'Authorization: Bearer <token>'",
                          r->id + strlen("host."));
    return r->handler(k, r, arg);
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                             */
/* ------------------------------------------------------------------ */

static int instance_route(call *k, const path *p, const char *inst, const char *dir, size_t at,
                          bool trailing_slash)
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

/* A route anyone may use, also under [auth] require_token (/_/health). */
static bool open_route(const path *p)
{
    const char *arg;
    const ph_http_route *r = p->n >= 1 && is(p->segs[0], "_") ? host_route_of(p, &arg) : NULL;
    return r && r->auth == PH_ROUTE_OPEN;
}

static int dispatch(call *k)
{
    int ret;
    path p;
    if (k->url[0] != '/') {
        k->rs->close = true; /* malformed input: the connection ends after the answer */
        return send_error(k, PH_EINVAL,
                          "the request target must be an absolute path such as "
                          "/calc/actors/math/add");
    }
    if (path_split(k->url, &p)) {
        path_free(&p);
        return -1;
    }
    size_t ul = strlen(k->url);
    bool trailing = ul > 1 && k->url[ul - 1] == '/';
    int tok = check_token(k);
    /* the local socket (a trusted listener): its peers are checked by uid (SO_PEERCRED), and
     * root and the host's own user carry the admin token */
    long peer = -1;
    bool peer_refused = k->rq->trusted && !ph_localsock_peer_trusted(k->rq->fd, &peer);
    k->admin = tok == 1 || (tok == 0 && k->rq->trusted && !peer_refused);
    if (peer_refused) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "uid %ld may not use this host's local socket: only root and the host's own "
                 "user may; use the TCP address with the admin token",
                 peer);
        ret = send_error_word(k, 403, "forbidden", msg);
    } else if (refuse_foreign(k, &ret)) {
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
    } else if (k->h->require_token && !k->admin && !open_route(&p)) {
        ret = send_error(k, PH_EAUTH,
                         "this host requires the admin token on every request "
                         "([auth] require_token); send 'Authorization: Bearer <token>'");
    } else if (k->h->public_bind && !k->admin && changes_state(k->method)) {
        ret = send_error(k, PH_EAUTH,
                         "this host listens beyond loopback, so every change needs the admin "
                         "token; send 'Authorization: Bearer <token>'");
    } else if (refuse_untyped(k, &ret)) {
        /* answered: 415 */
    } else if (strstr(k->url, "//")) {
        /* not normalised: a doubled '/' is a mistake worth showing, and www paths stay exact */
        ret = send_error(k, PH_ENOTFOUND,
                         "the path %s has an empty segment ('//'); write each '/' once, as in "
                         "/notes/models/note",
                         k->url);
    } else if (p.n >= 1 && is(p.segs[0], "_")) {
        ret = host_route(k, &p);
    } else {
        mount_match mm = {.p = &p, .busy = -1};
        ph_router_each_instance(k->h->host->router, visit_mount, &mm);
        if (mm.oom)
            ret = -1;
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
/* The engine's handler                                                 */
/* ------------------------------------------------------------------ */

/* What the request's headers must satisfy before anything else; true if answered. */
static void find_headers(const ph_httpd_req *rq, known_headers *hd)
{
    for (size_t i = 0; i < rq->n_headers; i++) {
        const char *name = rq->headers[i].name, *value = rq->headers[i].value;
        const char **slot = NULL;
        switch (name[0] | 0x20) { /* ASCII lower case: one comparison for most headers */
        case 'h':
            if (strcasecmp(name, "Host") == 0)
                slot = &hd->host;
            break;
        case 'o':
            if (strcasecmp(name, "Origin") == 0)
                slot = &hd->origin;
            break;
        case 'a':
            if (strcasecmp(name, "Authorization") == 0)
                slot = &hd->authorization;
            else if (strcasecmp(name, "Access-Control-Request-Method") == 0)
                slot = &hd->acr_method;
            break;
        case 'c':
            if (strcasecmp(name, "Content-Type") == 0)
                slot = &hd->content_type, hd->types++;
            break;
        default:
            break;
        }
        if (slot && !*slot)
            *slot = value;
    }
}

static bool refuse_head(call *k, int *ret)
{
    find_headers(k->rq, &k->hd);
    if (k->hd.types > 1)
        *ret = send_error(k, PH_EINVAL, "the request has %d Content-Type headers; send one",
                          k->hd.types);
    else
        return false;
    k->rs->close = true; /* malformed input: the connection ends after the answer */
    return true;
}

static int on_request(void *ud, const ph_httpd_req *rq, ph_httpd_resp *rs)
{
    ph_http *h = ud;
    call k = {.h = h, .rq = rq, .rs = rs, .url = rq->path, .method = rq->method};
    int ret;
    if (refuse_head(&k, &ret))
        return ret;
    return dispatch(&k);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
    ph_httpd_count(h->srv, 504);
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
    free(h->local_path);
    pthread_mutex_destroy(&h->job_mu);
    pthread_cond_destroy(&h->job_cv);
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

/* The listening socket of [http] listen; its port in *port. */
static int open_listener(const ph_http_conf *hc, const struct sockaddr_storage *ss, int *port)
{
    socklen_t sl =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    /* SO_REUSEADDR only (TIME_WAIT): SO_REUSEPORT would let a second host share the port */
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (const struct sockaddr *)ss, sl) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        /* Only a taken address is about the port; the rest say their own cause. */
        const char *hint = e == EADDRINUSE || e == EACCES
                               ? "; another process may hold the port, or it needs privileges: "
                                 "change [http] listen in host.ini or pass --listen"
                           : e == EMFILE || e == ENFILE ? "" /* ph_strerror says it */
                                                        : "; check [http] listen in host.ini";
        return ph_error_set(PH_EIO, "cannot listen on %s:%d: %s%s",
                            hc->listen_addr ? hc->listen_addr : "127.0.0.1", hc->port,
                            ph_strerror(e), hint);
    }
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    *port = hc->port;
    if (getsockname(fd, (struct sockaddr *)&got, &gl) == 0)
        *port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                : ((struct sockaddr_in *)&got)->sin_port);
    return fd;
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
    if (!h->origins || !h->names) {
        http_free(h);
        return ph_error_set(PH_ENOMEM, "out of memory starting the HTTP server");
    }
    ph_router_set_rate_limit(host->router, hc->rate_limit);
    h->max_depth = hc->max_json_depth > 0 ? hc->max_json_depth : 64;
    h->timeout_s = hc->connection_timeout > 0 ? hc->connection_timeout : 15;
    ph_httpd_conf ec = {
        .max_body = h->max_body,
        .request_timeout = hc->request_timeout > 0 ? hc->request_timeout : 30,
        .idle_timeout = h->timeout_s,
        .max_conns = fit_fd_limit(hc->max_connections >= 16 ? (size_t)hc->max_connections : 1000),
        .max_per_ip = hc->max_connections_per_ip > 0 ? hc->max_connections_per_ip : 0,
        .min_threads = hc->threads > 0 ? hc->threads : 4,
        .max_threads = hc->max_threads > 0 ? hc->max_threads : 256,
    };
    int fd = -1;
    if ((rc = ph_httpd_new(&ec, on_request, h, &h->srv))) {
        http_free(h);
        return rc;
    }
    if ((fd = open_listener(hc, &ss, &h->port)) < 0 ||
        (rc = ph_httpd_listen_fd(h->srv, fd, false)) || (rc = ph_httpd_start(h->srv))) {
        rc = fd < 0 ? fd : rc;
        ph_httpd_free(h->srv, 0);
        http_free(h);
        return rc;
    }
    /* after the TCP listener, so that a taken port is reported first */
    if (hc->socket && *hc->socket) {
        int lfd = -1;
        if (!(h->local_path = strdup(hc->socket)))
            rc = ph_error_set(PH_ENOMEM, "out of memory starting the HTTP server");
        else if (!(rc = ph_localsock_open(h->local_path, &lfd)))
            rc = ph_httpd_listen_fd(h->srv, lfd, true); /* owns lfd, also on failure */
        if (rc) {
            ph_localsock_close(lfd >= 0 ? h->local_path : NULL, -1);
            ph_httpd_free(h->srv, 0);
            http_free(h);
            return rc;
        }
        ph_log_info("local socket %s (mode 0600): the plughost CLI of root and of this user",
                    h->local_path);
    }
    if (pthread_create(&h->watcher, NULL, watcher_main, h) == 0)
        h->watcher_running = true;
    else
        ph_log_warn("no time limit on package calls: cannot start its thread");
    if (h->public_bind)
        ph_log_warn("listening on %s:%d, which other machines can reach: every change needs the "
                    "admin token, and nothing is encrypted; prefer 127.0.0.1 behind a TLS proxy",
                    hc->listen_addr, hc->port);
    *out = h;
    return 0;
}

int ph_http_port(const ph_http *h)
{
    return h->port;
}

int ph_http_listen_fd(ph_http *h, int fd, bool trusted)
{
    return ph_httpd_listen_fd(h->srv, fd, trusted);
}

void ph_http_stop(ph_http *h)
{
    if (!h)
        return;
    atomic_store(&h->stopping, true);
    /* the local socket goes at once, so a CLI finds no host from here on */
    ph_localsock_close(h->local_path, -1);
    /* Let the requests inside finish; bounded by the connection timeout. */
    if (!ph_httpd_free(h->srv, h->timeout_s * 1000)) {
        /* Joining the threads would wait for package code that does not return. */
        ph_log_error("HTTP request(s) still running after %d s; not waiting for them",
                     h->timeout_s);
        return;
    }
    if (h->watcher_running) {
        pthread_mutex_lock(&h->job_mu);
        h->watcher_stop = true;
        pthread_cond_signal(&h->job_cv);
        pthread_mutex_unlock(&h->job_mu);
        pthread_join(h->watcher, NULL);
    }
    http_free(h);
}
