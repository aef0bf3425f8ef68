/*
 * The CLI's side of the HTTP gateway, with libcurl: `plughost call`,
 * `status`, `reload`... talk to a running host through it. Only the CLI
 * binary links it (and libcurl); the daemon, plughostd, has neither.
 *
 * A target is "http[s]://HOST[:PORT][/PATH]" (HOST a name, an IPv4 address
 * or a bracketed IPv6 address; PORT defaults to 80/443; PATH, if any, is
 * where a reverse proxy serves the host and prefixes every request; a query,
 * a fragment or credentials are refused) or PH_CLIENT_LOCAL "PATH": the
 * host's local socket (localsock.h), where the CLI needs no token. Proxies
 * come from the environment (http_proxy, https_proxy, no_proxy) except for
 * loopback addresses; redirects are followed (5 at most) only by requests
 * without the token; nothing for IO_TIMEOUT_S (60 s) gives up.
 */
#ifndef PH_HOST_CLIENT_H
#define PH_HOST_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "config.h"

/* The prefix of a local-socket target: PH_CLIENT_LOCAL "/var/lib/plughost/plughost.sock". */
#define PH_CLIENT_LOCAL "unix:"

typedef struct ph_client_response {
    int status;
    char *body; /* NUL-terminated (binary bodies may hold NULs: use len) */
    size_t len;
    char *location; /* a redirect not followed (3xx): where it points, or NULL */
} ph_client_response;

/**
 * Sends one request (Connection: close) and reads the whole response.
 * `token` (may be NULL) goes out as "Authorization: Bearer"; `body` (may be
 * NULL) as application/json. On success returns 0 and fills *out (free with
 * ph_client_response_free) whatever the status. Errors: PH_EINVAL (bad URL),
 * PH_EUNREACHABLE (nothing listens: "cannot connect to URL: ...; is
 * `plughost run` up?", or for the local socket "no host is running (no
 * socket at PATH); start one with plughost run"), PH_EPERM (the local socket
 * is another user's), PH_EIO (cannot resolve, timeout, TLS, malformed
 * response; the message names the URL and what to check), PH_ETOOBIG
 * (response over 256 MiB).
 * Thread-safe.
 */
int ph_client_request(const char *url, const char *token, const char *method, const char *path,
                      const char *body, size_t body_len, ph_client_response *out);
void ph_client_response_free(ph_client_response *r);

/** Whether `url` is a target ph_client_request takes: 0, or PH_EINVAL saying what is wrong. */
int ph_client_check_url(const char *url);

/**
 * The file of CA certificates that https:// targets are verified against
 * (curl's --cacert), for a TLS proxy with a private CA; NULL or "": the
 * system's. Set once, before any request.
 */
void ph_client_set_cacert(const char *file);

/**
 * ph_client_request without credentials first; only if the host answers 401
 * (it refused before running anything) the same request again with `token`
 * (may be NULL: no retry). So the token goes only to requests that need it.
 */
int ph_client_request_auth(const char *url, const char *token, const char *method, const char *path,
                           const char *body, size_t body_len, ph_client_response *out);

/**
 * Whether `url` is the host that `cfg`'s admin token belongs to: the
 * configured listen address and port (a loopback or wildcard listen address
 * also matches localhost, 127.x and ::1). The CLI sends the token nowhere else.
 */
bool ph_client_token_belongs(const ph_config *cfg, const char *url);

/**
 * GETs `path` and parses the JSON body into *out (caller owns it). An error
 * status becomes a negative PH_E* code (from the status: 400 PH_EARGS, 401
 * PH_EAUTH, 403 PH_EPERM, 404 PH_ENOTFOUND, 409 PH_ECONFLICT, 413
 * PH_ETOOBIG, 503 PH_EBUSY, other PH_EPACKAGE) with the server's error code
 * word and message as the last error (ph_error_last_word / ph_error_last).
 * `token` (may be NULL) is sent only if the host asks for it (401).
 */
int ph_client_get_json(const char *url, const char *token, const char *path, json_t **out);

/**
 * Calls `address` ("instance.actor.method") on the host at `url` with
 * `args` (object, array or NULL; borrowed): looks the instance's mount up in
 * /_/packages, then POSTs to <mount>/actors/<actor>/<method>. On success
 * returns 0 and sets *out to the result (caller owns it). Errors as
 * ph_client_get_json.
 */
int ph_client_call(const char *url, const char *token, const char *address, json_t *args,
                   json_t **out);

/**
 * The URL of the host configured by `cfg` ("http://127.0.0.1:8901"; a
 * wildcard listen address becomes loopback). malloc'd; NULL on allocation
 * failure.
 */
char *ph_client_url_from_config(const ph_config *cfg);

#endif
