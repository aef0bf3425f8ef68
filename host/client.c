#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>

#include "error.h"
#include "jsonout.h"
#include "localsock.h"

#define MAX_RESPONSE (256u * 1024 * 1024)
#define IO_TIMEOUT_S 60

typedef struct endpoint {
    char *scheme; /* "http" or "https"; NULL for the local socket */
    char *host;
    char *port;
    char *prefix; /* the URL's path without its trailing '/': "" or "/plughost" */
    char *socket; /* the local socket's path (a "unix:PATH" target) */
} endpoint;

static void endpoint_free(endpoint *e)
{
    free(e->scheme);
    free(e->host);
    free(e->port);
    free(e->prefix);
    free(e->socket);
}

static int parse_url(const char *url, endpoint *out)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(url, PH_CLIENT_LOCAL, strlen(PH_CLIENT_LOCAL)) == 0) {
        out->socket = strdup(url + strlen(PH_CLIENT_LOCAL));
        out->prefix = strdup("");
        if (!out->socket || !out->prefix) {
            endpoint_free(out);
            return ph_error_set(PH_ENOMEM, "out of memory parsing a URL");
        }
        return 0;
    }
    bool tls = strncmp(url, "https://", 8) == 0;
    if (!tls && strncmp(url, "http://", 7) != 0)
        return ph_error_set(PH_EINVAL,
                            "URL '%s' is not supported; use http://HOST:PORT (the "
                            "host's [http] listen address) or https://HOST/PATH (a TLS proxy "
                            "in front of it)",
                            url);
    const char *h = url + (tls ? 8 : 7), *end = h + strcspn(h, "/?#"), *colon;
    if (memchr(h, '@', (size_t)(end - h))) /* user:password@ would read as a port */
        return ph_error_set(PH_EINVAL,     /* not echoed: it holds a password */
                            "the URL carries credentials (USER:PASSWORD@), which plughost does "
                            "not send; give it without them, and the admin token with --token "
                            "TOKEN or PLUGHOST_TOKEN");
    const char *hs = h, *he;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb)
            return ph_error_set(PH_EINVAL, "URL '%s' has an unclosed '[' around its IPv6 address",
                                url);
        hs = h + 1;
        he = rb;
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        he = colon ? colon : end;
    }
    if (he == hs)
        return ph_error_set(PH_EINVAL, "URL '%s' has no host; use http://HOST:PORT", url);
    if (strpbrk(end, "?#"))
        return ph_error_set(PH_EINVAL,
                            "URL '%s' has a query or fragment, which plughost cannot use; give "
                            "http://HOST:PORT, optionally with the path a proxy serves the host "
                            "under (http://HOST/plughost)",
                            url);
    size_t pl = strlen(end);
    while (pl && end[pl - 1] == '/')
        pl--;
    out->scheme = strdup(tls ? "https" : "http");
    out->host = strndup(hs, (size_t)(he - hs));
    out->port = colon ? strndup(colon + 1, (size_t)(end - colon - 1)) : strdup(tls ? "443" : "80");
    out->prefix = strndup(end, pl);
    if (!out->scheme || !out->host || !out->port || !out->prefix) {
        endpoint_free(out);
        return ph_error_set(PH_ENOMEM, "out of memory parsing a URL");
    }
    if (!*out->port || strspn(out->port, "0123456789") != strlen(out->port)) {
        endpoint_free(out);
        return ph_error_set(PH_EINVAL, "URL '%s' has a bad port; use http://HOST:PORT", url);
    }
    return 0;
}

int ph_client_check_url(const char *url)
{
    endpoint e;
    int rc = parse_url(url, &e);
    if (!rc)
        endpoint_free(&e);
    return rc;
}

/* The CA bundle that https:// URLs are checked against, or "" for the system's. */
static char cacert[PATH_MAX];

void ph_client_set_cacert(const char *file)
{
    snprintf(cacert, sizeof cacert, "%s", file ? file : "");
}

/* What the messages call the target: the URL, or "the local socket PATH". */
static void target_name(const endpoint *e, const char *url, char *buf, size_t n)
{
    if (e->socket)
        snprintf(buf, n, "the local socket %s", e->socket);
    else
        snprintf(buf, n, "%s", url);
}

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The response body as it arrives, bounded by MAX_RESPONSE. */
typedef struct sink {
    char *buf;
    size_t len, cap;
    bool too_big;
} sink;

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    sink *s = ud;
    size_t n = size * nmemb;
    if (n > MAX_RESPONSE - s->len) {
        s->too_big = true;
        return 0;
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return 0;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return n;
}

/* A loopback name: the proxy of the environment is never for it. */
static bool loopback_name(const char *h);

/* Turns a failed transfer into the error users read. */
static int transfer_error(CURLcode cc, long os_errno, const endpoint *e, const char *url,
                          const char *detail)
{
    char who[PATH_MAX + 32];
    target_name(e, url, who, sizeof who);
    const char *why = detail && *detail ? detail : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
        if (e->socket && (os_errno == ECONNREFUSED || os_errno == ENOENT))
            return ph_error_set(PH_EUNREACHABLE,
                                "no host is running (the socket at %s is left from a host that "
                                "stopped); start one with plughost run",
                                e->socket);
        if (e->socket && (os_errno == EACCES || os_errno == EPERM))
            return ph_error_set(PH_EPERM,
                                "cannot use %s: %s; it is the host's own: run the command as "
                                "root or as the host's user, or pass --url with the host's "
                                "address (the admin token is needed then)",
                                who, ph_strerror((int)os_errno));
        return ph_error_set(os_errno == ECONNREFUSED ? PH_EUNREACHABLE : PH_EIO,
                            "cannot connect to %s: %s; is `plughost run` up? Start it, "
                            "or pass --url with the address it listens on",
                            who, os_errno ? ph_strerror((int)os_errno) : why);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return ph_error_set(PH_EIO, "cannot resolve %s: %s; check the URL", who, why);
    case CURLE_OPERATION_TIMEDOUT:
        return ph_error_set(PH_EIO, "reading from %s failed: %s (no answer within %d s)", who, why,
                            IO_TIMEOUT_S);
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return ph_error_set(PH_EIO,
                            "%s did not answer with HTTP; is the URL the plughost's "
                            "[http] listen address?",
                            who);
    case CURLE_SSL_CONNECT_ERROR:
        return ph_error_set(PH_EIO,
                            "no TLS at %s (%s): the host itself speaks plain HTTP; use "
                            "http:// for it, https:// only for a TLS proxy in front of it",
                            who, why);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return ph_error_set(PH_EIO,
                            "the certificate of %s is not trusted: %s; for a private CA pass "
                            "--cacert FILE or set PLUGHOST_CACERT",
                            who, why);
    case CURLE_FILESIZE_EXCEEDED:
        return ph_error_set(PH_ETOOBIG, "the response from %s is larger than %u bytes", who,
                            MAX_RESPONSE);
    case CURLE_OUT_OF_MEMORY:
        return ph_error_set(PH_ENOMEM, "out of memory talking to %s", who);
    default:
        return ph_error_set(PH_EIO, "talking to %s failed: %s", who, why);
    }
}

int ph_client_request(const char *url, const char *token, const char *method, const char *path,
                      const char *body, size_t body_len, ph_client_response *out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    endpoint e;
    CURL *cu = NULL;
    struct curl_slist *hdrs = NULL;
    char *full = NULL, *auth = NULL, errbuf[CURL_ERROR_SIZE] = "";
    char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int dirfd = -1, rc;
    sink s = {0};

    memset(out, 0, sizeof(*out));
    if ((rc = parse_url(url, &e)))
        return rc;
    pthread_once(&once, curl_init_once);
    if (e.socket) {
        struct stat st;
        if (lstat(e.socket, &st) != 0 && errno == ENOENT) {
            rc = ph_error_set(PH_EUNREACHABLE,
                              "no host is running (no socket at %s); start one with plughost run",
                              e.socket);
            goto cleanup;
        }
        if ((rc = ph_localsock_name(e.socket, sock, sizeof sock, &dirfd)))
            goto cleanup;
    }
    bool v6 = e.host && strchr(e.host, ':');
    int n = e.socket ? asprintf(&full, "http://localhost%s", path)
                     : asprintf(&full, "%s://%s%s%s:%s%s%s", e.scheme, v6 ? "[" : "", e.host,
                                v6 ? "]" : "", e.port, e.prefix, path);
    if (n < 0 || (token && asprintf(&auth, "Authorization: Bearer %s", token) < 0)) {
        full = auth = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory building a request");
        goto cleanup;
    }
    if (!(cu = curl_easy_init())) {
        rc = ph_error_set(PH_ENOMEM, "out of memory building a request");
        goto cleanup;
    }
    struct curl_slist *h1 = curl_slist_append(NULL, "Accept: application/json");
    hdrs = h1;
    if (hdrs && strcmp(method, "GET") != 0) /* the host wants it on a POST, even without a body */
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (hdrs) /* no 100-continue round trip before a large body */
        hdrs = curl_slist_append(hdrs, "Expect:");
    if (hdrs && auth)
        hdrs = curl_slist_append(hdrs, auth);
    if (!hdrs) {
        curl_slist_free_all(h1);
        rc = ph_error_set(PH_ENOMEM, "out of memory building a request");
        goto cleanup;
    }
    curl_easy_setopt(cu, CURLOPT_URL, full);
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(cu, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hdrs);
    if (cacert[0])
        curl_easy_setopt(cu, CURLOPT_CAINFO, cacert);
    curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(cu, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_RESPONSE);
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT, (long)IO_TIMEOUT_S);
    /* a call may run long; a host that sends nothing for IO_TIMEOUT_S is given up */
    curl_easy_setopt(cu, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(cu, CURLOPT_LOW_SPEED_TIME, (long)IO_TIMEOUT_S);
    /*
     * Redirects are followed only without credentials: the admin token goes
     * to the URL it was given for, never to where a redirect points.
     */
    curl_easy_setopt(cu, CURLOPT_FOLLOWLOCATION, token ? 0L : 1L);
    curl_easy_setopt(cu, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(cu, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
    /* proxies come from the environment (http_proxy, https_proxy, no_proxy), never for loopback */
    if (e.socket) {
        curl_easy_setopt(cu, CURLOPT_UNIX_SOCKET_PATH, sock);
        curl_easy_setopt(cu, CURLOPT_PROXY, "");
    } else if (loopback_name(e.host)) {
        curl_easy_setopt(cu, CURLOPT_PROXY, "");
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(cu, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, method);
        if (body || strcmp(method, "POST") == 0) {
            curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
            curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body ? body : "");
        }
    }
    CURLcode cc = curl_easy_perform(cu);
    if (cc != CURLE_OK) {
        long os_errno = 0;
        curl_easy_getinfo(cu, CURLINFO_OS_ERRNO, &os_errno);
        rc = s.too_big ? transfer_error(CURLE_FILESIZE_EXCEEDED, 0, &e, url, NULL)
                       : transfer_error(cc, os_errno, &e, url, errbuf);
        goto cleanup;
    }
    long status = 0;
    char *location = NULL;
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(cu, CURLINFO_REDIRECT_URL, &location);
    if (!s.buf && !(s.buf = malloc(1))) {
        rc = ph_error_set(PH_ENOMEM, "out of memory reading a response");
        goto cleanup;
    }
    s.buf[s.len] = '\0';
    out->status = (int)status;
    out->body = s.buf;
    out->len = s.len;
    s.buf = NULL;
    if (location && !(out->location = strdup(location))) {
        ph_client_response_free(out);
        rc = ph_error_set(PH_ENOMEM, "out of memory reading a response");
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (cu)
        curl_easy_cleanup(cu);
    curl_slist_free_all(hdrs);
    if (dirfd >= 0)
        close(dirfd);
    if (auth) { /* the secret does not stay in freed memory */
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    free(full);
    free(s.buf);
    endpoint_free(&e);
    return rc;
}

int ph_client_request_auth(const char *url, const char *token, const char *method, const char *path,
                           const char *body, size_t body_len, ph_client_response *out)
{
    int rc = ph_client_request(url, NULL, method, path, body, body_len, out);
    if (rc || out->status != 401 || !token)
        return rc;
    /* Refused before anything ran: the same request again, with the token. */
    ph_client_response_free(out);
    return ph_client_request(url, token, method, path, body, body_len, out);
}

/* "localhost", 127.x.y.z or ::1. */
static bool loopback_name(const char *h)
{
    unsigned char b[16];
    if (strcmp(h, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, h, b) == 1)
        return b[0] == 127;
    return inet_pton(AF_INET6, h, b) == 1 && IN6_IS_ADDR_LOOPBACK((struct in6_addr *)b);
}

bool ph_client_token_belongs(const ph_config *cfg, const char *url)
{
    endpoint e;
    if (parse_url(url, &e))
        return false;
    if (e.socket || strcmp(e.scheme, "http") != 0) { /* the host itself speaks plain HTTP */
        endpoint_free(&e);
        return false;
    }
    const char *a =
        cfg->http.listen_addr && *cfg->http.listen_addr ? cfg->http.listen_addr : "127.0.0.1";
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->http.port);
    bool wildcard = strcmp(a, "0.0.0.0") == 0 || strcmp(a, "::") == 0;
    bool host_ok =
        strcasecmp(e.host, a) == 0 || ((wildcard || loopback_name(a)) && loopback_name(e.host));
    bool ok = host_ok && strcmp(e.port, port) == 0;
    endpoint_free(&e);
    return ok;
}

void ph_client_response_free(ph_client_response *r)
{
    if (!r)
        return;
    free(r->body);
    free(r->location);
    r->body = r->location = NULL;
}

/* Turns a response into JSON or into the server's error. Frees the response. */
static int response_json(ph_client_response *r, const char *url, json_t **out)
{
    json_error_t err;
    json_t *j = json_loadb(r->body, r->len, JSON_DECODE_ANY, &err);
    int rc = 0;
    if (r->status >= 300 && r->status < 400) {
        rc = ph_error_set(PH_EIO,
                          "%s answered with a redirect (HTTP %d) to %s, which is not followed "
                          "with the admin token; pass --url with the address it names",
                          url, r->status, r->location ? r->location : "nowhere");
        json_decref(j);
    } else if (r->status >= 300) {
        json_t *e = json_object_get(j, "error");
        const char *word = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        endpoint ep;
        bool parsed = r->status == 404 && parse_url(url, &ep) == 0;
        bool prefixed = parsed && *ep.prefix;
        rc = ph_error_set_word(ph_error_code_of_http((unsigned)r->status, word), word,
                               "%s (HTTP %d)%s%s%s", msg ? msg : "the host answered with an error",
                               r->status, prefixed ? "; is the host served under " : "",
                               prefixed ? ep.prefix : "",
                               prefixed ? "/? check the path of the URL (--url)" : "");
        if (parsed)
            endpoint_free(&ep);
        json_decref(j);
    } else if (!j) {
        rc = ph_error_set(PH_EIO, "%s answered with invalid JSON: %s", url, err.text);
    } else {
        *out = j;
    }
    ph_client_response_free(r);
    return rc;
}

int ph_client_get_json(const char *url, const char *token, const char *path, json_t **out)
{
    ph_client_response r;
    *out = NULL;
    int rc = ph_client_request_auth(url, token, "GET", path, NULL, 0, &r);
    return rc ? rc : response_json(&r, url, out);
}

/* The mount of `instance` from /_/packages ("/<instance>" if it is not listed). */
static int find_mount(const char *url, const char *token, const char *instance, char **out)
{
    json_t *pk = NULL;
    int rc = ph_client_get_json(url, token, "/_/packages", &pk);
    if (rc)
        return rc;
    const char *mount = NULL;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(pk, "instances"), i, it)
    {
        if (json_is_string(json_object_get(it, "instance")) &&
            strcmp(json_string_value(json_object_get(it, "instance")), instance) == 0)
            mount = json_string_value(json_object_get(it, "mount"));
    }
    if (mount)
        *out = strdup(strcmp(mount, "/") == 0 ? "" : mount);
    else if (asprintf(out, "/%s", instance) < 0)
        *out = NULL;
    json_decref(pk);
    return *out ? 0 : ph_error_set(PH_ENOMEM, "out of memory");
}

/* s[0..n) with every byte but the unreserved ones %-encoded; malloc'd or NULL. */
static char *encode(const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    char *b = malloc(n * 3 + 1), *o = b;
    for (size_t i = 0; b && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    if (b)
        *o = '\0';
    return b;
}

int ph_client_call(const char *url, const char *token, const char *address, json_t *args,
                   json_t **out)
{
    const char *d1 = strchr(address, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    char *mount = NULL, *inst = NULL, *path = NULL, *body = NULL, *actor = NULL, *method = NULL;
    ph_client_response r;
    int rc;

    *out = NULL;
    if (!d1 || !d2 || d1 == address || d2 == d1 + 1 || !d2[1] || strchr(d2 + 1, '.'))
        return ph_error_set(PH_EINVAL,
                            "'%s' is not an address; use instance.actor.method, "
                            "e.g. calc.math.add",
                            address);
    if (!(inst = strndup(address, (size_t)(d1 - address))))
        return ph_error_set(PH_ENOMEM, "out of memory");
    if ((rc = find_mount(url, token, inst, &mount)))
        goto cleanup;
    actor = encode(d1 + 1, (size_t)(d2 - d1 - 1));
    method = encode(d2 + 1, strlen(d2 + 1));
    if (!actor || !method || asprintf(&path, "%s/actors/%s/%s", mount, actor, method) < 0) {
        path = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    body = args ? ph_json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (args && !body) {
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = ph_client_request_auth(url, token, "POST", path, body, body ? strlen(body) : 0, &r);
    if (!rc)
        rc = response_json(&r, url, out);
cleanup:
    free(inst);
    free(mount);
    free(actor);
    free(method);
    free(path);
    free(body);
    return rc;
}

char *ph_client_url_from_config(const ph_config *cfg)
{
    const char *a =
        cfg->http.listen_addr && *cfg->http.listen_addr ? cfg->http.listen_addr : "127.0.0.1";
    char *url = NULL;
    if (strcmp(a, "0.0.0.0") == 0)
        a = "127.0.0.1";
    else if (strcmp(a, "::") == 0)
        a = "::1";
    bool v6 = strchr(a, ':') != NULL;
    if (asprintf(&url, "http://%s%s%s:%d", v6 ? "[" : "", a, v6 ? "]" : "", cfg->http.port) < 0)
        return NULL;
    return url;
}
