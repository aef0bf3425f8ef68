/*
 * The HTTP gateway (libmicrohttpd, thread pool + epoll): every instance's
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
 * Security: the request path is decoded exactly once, segment by segment (an
 * encoded '/' never becomes a separator); a wrong bearer token is always 401;
 * admin methods need the admin token; [auth] require_token protects every
 * route except /_/health. JSON bodies must be application/json (or carry no
 * type). A body typed application/x-www-form-urlencoded — what `curl -d`
 * sends — is read as JSON only when the request has no Origin header, so a
 * web page in a browser cannot post to the loopback host without a CORS
 * preflight (cross-site request forgery).
 */
#ifndef PH_HOST_HTTP_H
#define PH_HOST_HTTP_H

#include "host.h"

typedef struct ph_http ph_http;

/**
 * Starts serving `host` (which must outlive the server) on
 * host->cfg.http.listen_addr:port with host->cfg.http's limits. Loads the
 * admin token with ph_host_load_token() if host->admin_token is NULL.
 * On success returns 0 and sets *out (stop it with ph_http_stop). Errors:
 * PH_EIO (cannot listen: the message names the address and what to change),
 * PH_ECONFIG, PH_ENOMEM.
 */
int ph_http_start(ph_host *host, ph_http **out);

/** The TCP port the server listens on (useful with port 0). */
int ph_http_port(const ph_http *h);

/**
 * Stops accepting connections, lets the requests in flight finish (up to
 * the connection timeout), then stops the server and frees it. Accepts NULL.
 */
void ph_http_stop(ph_http *h);

/** The HTTP status for a PH_E* code (e.g. PH_EARGS -> 400). */
unsigned ph_http_status_of(int code);

#endif
