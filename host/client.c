#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "error.h"
#include "jsonout.h"

#define MAX_RESPONSE (256u * 1024 * 1024)
#define IO_TIMEOUT_S 60

typedef struct endpoint {
    char *host;
    char *port;
    char *prefix; /* the URL's path without its trailing '/': "" or "/plughost" */
} endpoint;

static void endpoint_free(endpoint *e)
{
    free(e->host);
    free(e->port);
    free(e->prefix);
}

static int parse_url(const char *url, endpoint *out)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(url, "http://", 7) != 0)
        return ph_error_set(PH_EINVAL,
                            "URL '%s' is not supported; use http://HOST:PORT (the "
                            "host's [http] listen address)",
                            url);
    const char *h = url + 7, *end = h + strcspn(h, "/?#"), *colon;
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
    out->host = strndup(hs, (size_t)(he - hs));
    out->port = colon ? strndup(colon + 1, (size_t)(end - colon - 1)) : strdup("80");
    out->prefix = strndup(end, pl);
    if (!out->host || !out->port || !out->prefix) {
        endpoint_free(out);
        return ph_error_set(PH_ENOMEM, "out of memory parsing a URL");
    }
    return 0;
}

static int connect_to(const endpoint *e, const char *url, int *fd_out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(e->host, e->port, &hints, &res);
    if (rc)
        return ph_error_set(PH_EIO, "cannot resolve %s: %s; check the URL", url, gai_strerror(rc));
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        struct timeval tv = {IO_TIMEOUT_S, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return ph_error_set(err == ECONNREFUSED ? PH_EUNREACHABLE : PH_EIO,
                            "cannot connect to %s: %s; is `plughost run` up? Start it, "
                            "or pass --url with the address it listens on",
                            url, strerror(err));
    *fd_out = fd;
    return 0;
}

static int send_all(int fd, const char *p, size_t n, const char *url)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return ph_error_set(PH_EIO, "sending to %s failed: %s", url, strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int recv_all(int fd, char **out, size_t *len, const char *url)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return ph_error_set(PH_ENOMEM, "out of memory reading a response");
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_RESPONSE) {
                free(buf);
                return ph_error_set(PH_ETOOBIG, "the response from %s is larger than %u bytes", url,
                                    MAX_RESPONSE);
            }
            char *b = realloc(buf, cap * 2 + 1);
            if (!b) {
                free(buf);
                return ph_error_set(PH_ENOMEM, "out of memory reading a response");
            }
            buf = b;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return ph_error_set(PH_EIO, "reading from %s failed: %s%s", url, strerror(e),
                                e == EAGAIN ? " (no answer within 60 s)" : "");
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* Value of header `name` in the header block [h, end), or NULL; *vlen its length. */
static const char *header(const char *h, const char *end, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *l = h; l < end;) {
        const char *eol = memmem(l, (size_t)(end - l), "\r\n", 2);
        if (!eol)
            eol = end;
        if ((size_t)(eol - l) > nl && strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        l = eol + 2;
    }
    return NULL;
}

/* Decodes a chunked body in place; -1 if malformed. */
static long dechunk(char *p, size_t n)
{
    size_t r = 0, w = 0;
    for (;;) {
        char *end;
        if (r >= n)
            return -1;
        errno = 0;
        unsigned long sz = strtoul(p + r, &end, 16);
        char *crlf = memmem(p + r, n - r, "\r\n", 2);
        if (errno || end == p + r || !crlf)
            return -1;
        r = (size_t)(crlf - p) + 2;
        if (sz == 0)
            return (long)w;
        if (sz > n - r)
            return -1;
        memmove(p + w, p + r, sz);
        w += sz;
        r += sz + 2;
    }
}

static int parse_response(char *raw, size_t n, const char *url, ph_client_response *out)
{
    char *hend = memmem(raw, n, "\r\n\r\n", 4);
    int status = 0;
    if (!hend || sscanf(raw, "HTTP/1.%*d %d", &status) != 1 || status < 100 || status > 599)
        return ph_error_set(PH_EIO,
                            "%s did not answer with HTTP; is the URL the plughost's "
                            "[http] listen address?",
                            url);
    char *body = hend + 4;
    size_t blen = n - (size_t)(body - raw), vlen;
    const char *te = header(raw, hend + 2, "Transfer-Encoding", &vlen);
    const char *cl = header(raw, hend + 2, "Content-Length", &vlen);
    if (te && vlen >= 7 && strncasecmp(te, "chunked", 7) == 0) {
        long d = dechunk(body, blen);
        if (d < 0)
            return ph_error_set(PH_EIO, "malformed chunked response from %s", url);
        blen = (size_t)d;
    } else if (cl) {
        unsigned long long want = strtoull(cl, NULL, 10);
        if (want > blen)
            return ph_error_set(PH_EIO, "the response from %s ended early (%zu of %llu bytes)", url,
                                blen, want);
        blen = (size_t)want;
    }
    out->body = malloc(blen + 1);
    if (!out->body)
        return ph_error_set(PH_ENOMEM, "out of memory reading a response");
    memcpy(out->body, body, blen);
    out->body[blen] = '\0';
    out->len = blen;
    out->status = status;
    return 0;
}

int ph_client_request(const char *url, const char *token, const char *method, const char *path,
                      const char *body, size_t body_len, ph_client_response *out)
{
    endpoint e;
    int fd = -1, rc;
    char *head = NULL, *raw = NULL;
    size_t raw_len = 0;

    memset(out, 0, sizeof(*out));
    if ((rc = parse_url(url, &e)))
        return rc;
    int n = asprintf(&head,
                     "%s %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\nConnection: close\r\n"
                     "Accept: application/json\r\n%s%s%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     method, e.prefix, path, strchr(e.host, ':') ? "[" : "", e.host,
                     strchr(e.host, ':') ? "]" : "", e.port, token ? "Authorization: Bearer " : "",
                     token ? token : "", token ? "\r\n" : "", body ? body_len : 0);
    if (n < 0) {
        rc = ph_error_set(PH_ENOMEM, "out of memory building a request");
        goto cleanup;
    }
    if ((rc = connect_to(&e, url, &fd)) || (rc = send_all(fd, head, (size_t)n, url)) ||
        (body && (rc = send_all(fd, body, body_len, url))) ||
        (rc = recv_all(fd, &raw, &raw_len, url)))
        goto cleanup;
    rc = parse_response(raw, raw_len, url, out);
cleanup:
    if (fd >= 0)
        close(fd);
    free(head);
    free(raw);
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
    r->body = NULL;
}

static int code_of_status(int status)
{
    switch (status) {
    case 400:
    case 405:
    case 415:
        return PH_EARGS;
    case 401:
        return PH_EAUTH;
    case 403:
        return PH_EPERM;
    case 404:
        return PH_ENOTFOUND;
    case 409:
        return PH_ECONFLICT;
    case 413:
        return PH_ETOOBIG;
    case 503:
        return PH_EBUSY;
    case 504:
        return PH_ETIMEOUT;
    default:
        return PH_EPACKAGE;
    }
}

/* Turns a response into JSON or into the server's error. Frees the response. */
static int response_json(ph_client_response *r, const char *url, json_t **out)
{
    json_error_t err;
    json_t *j = json_loadb(r->body, r->len, JSON_DECODE_ANY, &err);
    int rc = 0;
    if (r->status >= 300) {
        json_t *e = json_object_get(j, "error");
        const char *word = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        rc = ph_error_set_word(code_of_status(r->status), word, "%s (HTTP %d)",
                               msg ? msg : "the host answered with an error", r->status);
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
