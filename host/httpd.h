/*
 * The host's HTTP/1.1 engine: listeners, connections, request parsing
 * (Debian's libhttp-parser), limits, deadlines and writing. What a request
 * means is the handler's business (http.c); the engine hands it one whole
 * request at a time and writes the response it fills in.
 *
 * Threads (leader/followers): a few threads wait on one epoll descriptor;
 * every connection is registered one-shot, so the thread that wakes owns the
 * connection until it re-arms it: it reads, parses, runs the handler inline
 * (a package call runs right there), writes and re-arms. A handler that
 * blocks holds only its own thread: when no thread is left waiting, another
 * is started (up to max_threads); threads beyond min_threads that stay idle
 * for a few seconds end.
 *
 * Each request must arrive whole within request_timeout seconds of its
 * first byte; a connection that sends or takes nothing for idle_timeout
 * seconds is closed; when 90% of max_conns are open, the connection that
 * has waited longest on an unfinished request is closed to let a new client
 * in. Every refusal of the engine itself (malformed request 400, 413, 414,
 * 431, 501) is the JSON error body of ph_httpd_error_body, and the
 * connection is closed after it (the rest of the client's data is read and
 * dropped for a moment first, so that the answer is not lost to a reset).
 *
 * Keep-alive, pipelining (requests in one read are answered in order),
 * HTTP/1.0, Expect: 100-continue, chunked request bodies and HEAD are
 * handled here; responses always carry Content-Length.
 *
 * Before the parser sees a byte, the engine checks it: the head's lines end
 * in CRLF (no bare LF or CR, no NUL, no obs-fold), and so do a chunked
 * body's size lines (hex size, at most PH_HTTPD_MAX_CHUNK_EXT bytes of
 * extensions), chunk data (exactly CRLF after it) and trailer lines (the
 * head's rules and limit; then dropped). An HTTP/1.1 request needs exactly
 * one valid Host header (RFC 9112 3.2); HTTP/1.0 may omit it.
 */
#ifndef PH_HOST_HTTPD_H
#define PH_HOST_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ph_httpd ph_httpd;

/* Limits on what comes before the body (the error bodies name them). */
#define PH_HTTPD_MAX_TARGET (8u * 1024)   /* path and query */
#define PH_HTTPD_MAX_HEADERS (32u * 1024) /* all header lines (and a chunked body's trailers) */
#define PH_HTTPD_MAX_CHUNK_EXT 4096u      /* what follows a chunk's size on its line */

/* One header of a request, as sent (names keep their case). */
typedef struct ph_httpd_header {
    const char *name, *value;
} ph_httpd_header;

/* One whole request, valid during the handler call. */
typedef struct ph_httpd_req {
    const char *method; /* "GET", "POST", ... */
    const char *target; /* the request target as sent (not decoded) */
    const char *path;   /* the target up to '?', not decoded */
    const char *query;  /* after '?' (not decoded), or NULL */
    const char *body;   /* the body (dechunked), or NULL */
    size_t body_len;
    bool head;    /* HEAD: the response is sent without its body */
    bool trusted; /* came through a trusted (local) listener */
    int fd;       /* the connection's socket: to answer out of band (see http.c's watcher) */
    const ph_httpd_header *headers;
    size_t n_headers;
} ph_httpd_req;

/* What the handler answers. Start from ph_httpd_resp_init's state. */
typedef struct ph_httpd_resp {
    unsigned status;
    char *head; /* extra header lines, "Name: value\r\n" each (malloc'd) */
    size_t head_len, head_cap;
    char *body; /* malloc'd, owned by the response */
    size_t body_len;
    int file_fd;       /* >= 0: the body is file_len bytes of this file (owned) */
    uint64_t file_len; /* of file_fd */
    bool close;        /* close the connection after this response */
    bool failed;       /* out of memory while building: the connection is closed */
} ph_httpd_resp;

/*
 * Fills in `rs` for `rq`. Returns 0 to send rs, -1 to close the connection
 * without (further) answer (e.g. it was answered out of band).
 */
typedef int (*ph_httpd_handler)(void *ud, const ph_httpd_req *rq, ph_httpd_resp *rs);

typedef struct ph_httpd_conf {
    size_t max_body;     /* bytes; a larger body is 413 */
    int request_timeout; /* seconds from a request's first byte to its last */
    int idle_timeout;    /* seconds without any progress on a connection */
    size_t max_conns;    /* connections open at once */
    int max_per_ip;      /* connections from one address (0: no limit) */
    int min_threads;     /* threads kept waiting */
    int max_threads;     /* cap on threads (each blocked handler holds one) */
} ph_httpd_conf;

/* Counters of the engine, for metrics. */
typedef struct ph_httpd_stats {
    unsigned long by_class[6]; /* responses written by status class ([2] = 2xx ...) */
    unsigned long cut_deadline, cut_room;
    long inflight; /* requests inside the handler */
    int threads;
} ph_httpd_stats;

/* A new engine (not yet serving). Errors: PH_ENOMEM, PH_EIO (epoll). */
int ph_httpd_new(const ph_httpd_conf *conf, ph_httpd_handler fn, void *ud, ph_httpd **out);

/*
 * Serves connections accepted on `fd` (a listening stream socket; the
 * engine owns it from now on and closes it). A connection of a `trusted`
 * listener says so in its requests (ph_httpd_req.trusted), e.g. a Unix
 * socket whose peer was checked. May be called before or after start.
 */
int ph_httpd_listen_fd(ph_httpd *s, int fd, bool trusted);

/* Starts the threads. Errors: PH_EIO. */
int ph_httpd_start(ph_httpd *s);

/*
 * Stops accepting (closes the listeners), closes idle connections and lets
 * the requests in flight finish: later responses carry Connection: close.
 */
void ph_httpd_quiesce(ph_httpd *s);

/*
 * Ends the threads and closes every connection, then frees. Requests still
 * inside their handler make it give up after wait_ms: then nothing is freed
 * (their threads still use it) and false is returned. Accepts NULL.
 */
bool ph_httpd_free(ph_httpd *s, int wait_ms);

void ph_httpd_stats_get(ph_httpd *s, ph_httpd_stats *out);

/* Counts a response written out of band (the watcher's 504) in the metrics. */
void ph_httpd_count(ph_httpd *s, unsigned status);

void ph_httpd_resp_init(ph_httpd_resp *rs);
void ph_httpd_resp_reset(ph_httpd_resp *rs); /* frees what it holds, back to init */
/* Adds "name: value\r\n" (sets rs->failed when out of memory). */
void ph_httpd_resp_header(ph_httpd_resp *rs, const char *name, const char *value);

/* The first value of header `name` (case-insensitive), or NULL. */
const char *ph_httpd_header_get(const ph_httpd_req *rq, const char *name);

/*
 * The error body every refusal uses, {"error":{"code":word,"message":msg}}
 * and a newline (bytes of msg that are not UTF-8 become '?'). Returns a
 * malloc'd string and its length in *len, or NULL.
 */
char *ph_httpd_error_body(const char *word, const char *message, size_t *len);

/* The reason phrase of an HTTP status ("Not Found"). */
const char *ph_httpd_reason(unsigned status);

#endif
