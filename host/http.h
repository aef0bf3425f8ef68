/*
 * The HTTP gateway (handlers on the host's engine, httpd.h): every instance's
 * methods, models and static files, and the host's /_/ endpoints.
 *
 *   POST   <mount>/actors/<actor>/<method>   JSON object (by name) or array (by position) in,
 *                                            the method's JSON result out
 *   GET    <mount>/actors                    the instance's actors and signatures
 *   GET    <mount>/models/<model>            list (query: field=value filters, order, limit,
 * offset) POST   <mount>/models/<model>            new (201 + Location) GET|PATCH|DELETE
 * <mount>/models/<model>/<id> GET    <mount>/wiki/...                  files of the package's wiki/
 *   GET    <mount>/...                       files of the package's www/ (a directory: index.html)
 *   GET    /_/health                         liveness; "ready" says whether startup finished
 *                                            (?ready=1 answers 503 until it has)
 *   GET    /_/metrics                        Prometheus text
 *   GET    /_/openapi.json                   OpenAPI 3.1
 *   GET    /_/packages                       instances, packages, versions, states, dependencies
 *
 * Errors are {"error":{"code":"...","message":"..."}} with the status of the
 * PH_E* code (400 bad arguments/JSON, 401 token missing or wrong, 403, 404,
 * 405 (+Allow), 409, 413, 415, 500 package error with the package's own code,
 * 503 reloading (+Retry-After) or instance not running).
 *
 * Security (README "Security"): the request path is decoded exactly once,
 * segment by segment (an encoded '/' never becomes a separator); a Host
 * header naming neither an IP literal, localhost nor [http] server_names is
 * 421 (DNS rebinding); a state change (any method but GET, HEAD, OPTIONS)
 * whose Origin is neither the host's own nor in [http] allowed_origins is
 * 403, and one without a JSON Content-Type is 415, so a web page can never
 * write without a CORS preflight (which only allowed origins pass); a wrong
 * bearer token is always 401; admin methods need the admin token, also when
 * a package relays the call (the router's chain authority); [auth]
 * require_token protects every route except /_/health, and a listen address
 * beyond loopback protects every state change. Path and query over 8 KiB
 * are 414, headers over 32 KiB 431, more than one or a malformed
 * Content-Length 400; each malformed request is answered, then its
 * connection closed.
 * A request must arrive whole within [http] request_timeout; when the
 * server is 90% full of max_connections, the connection longest on an
 * unfinished request is closed to let a new client in.
 */
#ifndef PH_HOST_HTTP_H
#define PH_HOST_HTTP_H

#include "host.h"

typedef struct ph_http ph_http;

/**
 * Starts serving `host` (which must outlive the server) on
 * host->cfg.http.listen_addr:port with host->cfg.http's limits. Loads the
 * admin token with ph_host_load_token() if host->admin_token is NULL.
 * Serves the same on the local socket of [http] socket when set
 * (localsock.h: trusted peers are the admin; removed by ph_http_stop).
 * On success returns 0 and sets *out (stop it with ph_http_stop). Errors:
 * PH_EIO (cannot listen: the message names the address and what to change),
 * PH_ECONFLICT (another host runs on the local socket), PH_ECONFIG, PH_ENOMEM.
 */
int ph_http_start(ph_host *host, ph_http **out);

/** The TCP port the server listens on (useful with port 0). */
int ph_http_port(const ph_http *h);

/**
 * Serves connections accepted on one more listening socket `fd` (taken:
 * the server closes it). Requests of a `trusted` listener (a local socket
 * whose peers were checked) are marked so (ph_httpd_req.trusted).
 */
int ph_http_listen_fd(ph_http *h, int fd, bool trusted);

/**
 * Stops accepting connections, lets the requests in flight finish (up to
 * the connection timeout), then stops the server and frees it. Accepts NULL.
 */
void ph_http_stop(ph_http *h);

/* Who may use a route of the host. */
typedef enum ph_route_auth {
    PH_ROUTE_OPEN,  /* anyone, also under [auth] require_token (liveness) */
    PH_ROUTE_READ,  /* anyone, unless [auth] require_token */
    PH_ROUTE_ADMIN, /* the admin token */
} ph_route_auth;

struct ph_http_call;

/*
 * One route of the host's own (under /_/). The table of them is the one
 * definition dispatch, the 405 Allow header, the 404 hint and the OpenAPI
 * document (openapi.c) read: a new endpoint is one row and its handler.
 */
typedef struct ph_http_route {
    const char *methods; /* as the Allow header says them: "GET, HEAD", "POST" */
    const char *path;    /* "/_/health"; "{name}" stands for one segment */
    ph_route_auth auth;
    const char *id;      /* OpenAPI operationId, "host.<what>" */
    const char *summary; /* OpenAPI summary */
    const char *type;    /* media type of the 200 response */
    const char *schema;  /* JSON Schema of the 200 response, as JSON text */
    int (*handler)(struct ph_http_call *k, const struct ph_http_route *r, const char *arg);
} ph_http_route;

extern const ph_http_route ph_http_host_routes[];
extern const size_t ph_http_n_host_routes;

/** The HTTP status for a PH_E* code (e.g. PH_EARGS -> 400). */
unsigned ph_http_status_of(int code);

#endif
