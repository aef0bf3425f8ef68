/*
 * host.ini: defaults, parsing and validation (the lines themselves are read
 * by ini.c, the reader shared with manifest.c).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "error.h"
#include "semver.h"
#include "text.h"
#include "ini.h"
#include "path.h"

/* ------------------------------------------------------------------- values */

int ph_config_check_name(const char *what, const char *name, int code)
{
    static const char rule[] = "use lowercase letters, digits, '_' and '-', starting with a letter "
                               "(names are used in URLs and addresses)";
    size_t n = strlen(name);
    if (n == 0)
        return ph_error_set(code, "the %s name is empty; %s", what, rule);
    if (n > PH_NAME_MAX)
        return ph_error_set(code, "invalid %s name '%s': longer than %d characters", what, name,
                            PH_NAME_MAX);
    if (!(name[0] >= 'a' && name[0] <= 'z'))
        return ph_error_set(code,
                            "invalid %s name '%s': it must start with a lowercase "
                            "letter; %s",
                            what, name, rule);
    for (size_t i = 1; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return ph_error_set(code, "invalid %s name '%s': '%c' is not allowed; %s", what, name,
                                c, rule);
    }
    return 0;
}

/* base + "/" + rel, or rel itself when absolute, without trailing '/'s (every later join
 * adds exactly one). NULL on allocation failure. */
static char *resolve_path(const char *base, const char *rel)
{
    char *out = NULL;
    if (rel[0] == '/')
        out = strdup(rel);
    else {
        while (rel[0] == '.' && rel[1] == '/')
            rel += 2;
        out = strcmp(rel, ".") == 0 || !*rel ? strdup(base) : ph_path_join(base, rel);
    }
    return out ? ph_path_trim(out) : NULL;
}

static int replace_str(char **slot, const char *value)
{
    char *s = strdup(value);
    if (!s)
        return ph_error_set(PH_ENOMEM, "out of memory");
    free(*slot);
    *slot = s;
    return 0;
}

static int parse_bool(const char *section, const char *key, const char *v, bool *out)
{
    if (ph_parse_bool(v, out) == 0)
        return 0;
    return ph_error_set(PH_ECONFIG,
                        "'%s' in [%s] must be true or false (or yes/no, on/off, 1/0), "
                        "not '%s'",
                        key, section, v);
}

/* Parses a decimal integer in [min, max]; nothing but digits (and a leading '-'). */
static int parse_int(const char *section, const char *key, const char *v, long long min,
                     long long max, long long *out)
{
    const char *p = v + (*v == '-');
    bool ok = *p != '\0';
    long long n = 0;
    for (; ok && *p; p++) {
        if (*p < '0' || *p > '9' || n > (LLONG_MAX - (*p - '0')) / 10)
            ok = false;
        else
            n = n * 10 + (*p - '0');
    }
    if (*v == '-')
        n = -n;
    if (!ok || n < min || n > max)
        return ph_error_set(PH_ECONFIG,
                            "'%s' in [%s] must be an integer from %lld to %lld, not '%s'", key,
                            section, min, max, v);
    *out = n;
    return 0;
}

static int set_int(const char *section, const char *key, const char *v, long long min,
                   long long max, int *out)
{
    long long n = 0;
    int rc = parse_int(section, key, v, min, max, &n);
    if (!rc)
        *out = (int)n;
    return rc;
}

/* A byte count with an optional K, M or G suffix (powers of 1024). */
static int parse_size(const char *section, const char *key, const char *v, size_t max, size_t *out)
{
    size_t n = 0, len = strlen(v), mult = 1;
    int shift = 0;
    if (len && strchr("kKmMgG", v[len - 1])) {
        shift = strchr("kK", v[len - 1]) ? 10 : strchr("mM", v[len - 1]) ? 20 : 30;
        len--;
    }
    mult <<= shift;
    bool ok = len > 0;
    for (size_t i = 0; ok && i < len; i++) {
        if (v[i] < '0' || v[i] > '9' || n > (SIZE_MAX - (size_t)(v[i] - '0')) / 10)
            ok = false;
        else
            n = n * 10 + (size_t)(v[i] - '0');
    }
    if (!ok || n == 0 || n > max / mult)
        return ph_error_set(PH_ECONFIG,
                            "'%s' in [%s] must be a size from 1 byte to %zuM, such as "
                            "1048576 or 1M, not '%s'",
                            key, section, max >> 20, v);
    *out = n * mult;
    return 0;
}

static int unknown_key(const char *section, const char *key, const char *known)
{
    return ph_error_set(PH_ECONFIG, "unknown key '%s' in [%s]; known keys: %s", key, section,
                        known);
}

/* ------------------------------------------------------------------ listen */

static int listen_fail(const char *text, const char *why)
{
    return ph_error_set(PH_ECONFIG, "invalid listen address '%s': %s", text, why);
}

static int parse_port(const char *text, const char *p, int *out)
{
    long n = 0;
    if (!*p)
        return listen_fail(text, "the port is missing; write ADDR:PORT such as 127.0.0.1:8901");
    for (const char *q = p; *q; q++) {
        if (*q < '0' || *q > '9' || (n = n * 10 + (*q - '0')) > 65535)
            return listen_fail(text, "the port must be a number from 1 to 65535");
    }
    if (n < 1)
        return listen_fail(text, "the port must be a number from 1 to 65535");
    *out = (int)n;
    return 0;
}

/* Splits TEXT into a newly allocated address (NULL: keep the current one) and a port. */
static int split_listen(const char *text, char **addr, const char **port)
{
    const char *colon = strrchr(text, ':');
    *addr = NULL;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return listen_fail(text, "write an IPv6 address as [ADDR]:PORT such as [::1]:8901");
        *addr = strndup(text + 1, (size_t)(close - text - 1));
        *port = close + 2;
    } else if (!colon) {
        bool digits = *text && strspn(text, "0123456789") == strlen(text);
        if (!digits)
            return listen_fail(text, "the port is missing; write ADDR:PORT such as "
                                     "127.0.0.1:8901");
        *port = text;
        return 0;
    } else {
        if (colon != strchr(text, ':'))
            return listen_fail(text, "write an IPv6 address in brackets, such as [::1]:8901");
        *port = colon + 1;
        if (colon == text)
            return 0;
        *addr = strndup(text, (size_t)(colon - text));
    }
    return *addr ? 0 : ph_error_set(PH_ENOMEM, "out of memory");
}

static int check_addr(const char *text, char **addr)
{
    unsigned char bin[16];
    bool v6 = text[0] == '[';
    if (!v6 && strcmp(*addr, "localhost") == 0) {
        char *s = strdup("127.0.0.1");
        if (!s)
            return ph_error_set(PH_ENOMEM, "out of memory");
        free(*addr);
        *addr = s;
        return 0;
    }
    if (inet_pton(v6 ? AF_INET6 : AF_INET, *addr, bin) != 1)
        return listen_fail(text, v6 ? "not an IPv6 address"
                                    : "the address must be an IP address such as 127.0.0.1 or "
                                      "0.0.0.0, [::1] or localhost");
    return 0;
}

int ph_config_set_listen(ph_config *c, const char *text)
{
    char *addr = NULL;
    const char *port_text = NULL;
    int port = 0;
    int rc = split_listen(text, &addr, &port_text);
    if (!rc && addr)
        rc = check_addr(text, &addr);
    if (!rc)
        rc = parse_port(text, port_text, &port);
    if (rc)
        goto cleanup;
    if (addr) {
        free(c->http.listen_addr);
        c->http.listen_addr = addr;
        addr = NULL;
    }
    c->http.port = port;
cleanup:
    free(addr);
    return rc;
}

/* ----------------------------------------------------------------- defaults */

static int set_defaults(ph_config *c, const char *base_dir)
{
    memset(c, 0, sizeof *c);
    c->base_dir = strdup(base_dir);
    c->data_dir = resolve_path(base_dir, "data");
    c->package_dirs = calloc(1, sizeof *c->package_dirs);
    if (c->package_dirs) {
        c->package_dirs[0] = resolve_path(base_dir, "packages");
        c->n_package_dirs = c->package_dirs[0] ? 1 : 0;
    }
    c->log_level = PH_L_INFO;
    c->log_format = -1;
    c->reload = true;
    c->strict = false;
    c->http.listen_addr = strdup("127.0.0.1");
    c->http.port = 8901;
    c->http.threads = 4;
    c->http.max_threads = 256;
    c->http.max_body = 1024 * 1024;
    c->http.max_json_depth = 64;
    c->http.connection_timeout = 15;
    c->http.max_connections_per_ip = 64;
    c->http.request_timeout = 30;
    c->http.max_connections = 1000;
    c->limits.call_timeout_ms = 30000;
    c->limits.stop_timeout_ms = 10000;
    c->limits.load_timeout_ms = 10000;
    c->limits.max_concurrent_calls = 16;
    c->auth.token_file = c->data_dir ? resolve_path(c->data_dir, "admin.token") : NULL;
    c->auth.require_token = false;
    c->http.socket = c->data_dir ? resolve_path(c->data_dir, "plughost.sock") : NULL;
    if (!c->base_dir || !c->data_dir || !c->n_package_dirs || !c->http.listen_addr ||
        !c->auth.token_file || !c->http.socket) {
        ph_config_free(c);
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    return 0;
}

int ph_config_defaults(ph_config *out)
{
    char *cwd = getcwd(NULL, 0);
    if (!cwd) {
        memset(out, 0, sizeof *out);
        return ph_error_set(PH_EIO, "cannot determine the current directory: %s",
                            ph_strerror(errno));
    }
    int rc = set_defaults(out, cwd);
    free(cwd);
    return rc;
}

/* ------------------------------------------------------------------ loading */

typedef struct load_ctx {
    ph_config *c;
    long cur; /* index of the current [instance] section, -1 if none */
    bool token_file_set;
    bool socket_set;
    bool package_dirs_set; /* later package_dirs lines append to the first */
} load_ctx;

static int set_dir(load_ctx *x, char **slot, const char *section, const char *key, const char *v)
{
    if (!*v)
        return ph_error_set(PH_ECONFIG, "'%s' in [%s] is empty; give a directory", key, section);
    char *p = resolve_path(x->c->base_dir, v);
    if (!p)
        return ph_error_set(PH_ENOMEM, "out of memory");
    free(*slot);
    *slot = p;
    return 0;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static int set_package_dirs(load_ctx *x, const char *v)
{
    int rc = 0;
    size_t n = 0, cap = 1;
    for (const char *p = v; *p; p++)
        cap += *p == ',';
    char **dirs = calloc(cap, sizeof *dirs);
    if (!dirs)
        return ph_error_set(PH_ENOMEM, "out of memory");
    for (const char *p = v;; p++) {
        size_t len = strcspn(p, ",");
        char *item = ph_ini_trimmed(p, len);
        if (!item) {
            rc = ph_error_set(PH_ENOMEM, "out of memory");
            goto cleanup;
        }
        if (!*item) {
            free(item);
            rc = ph_error_set(PH_ECONFIG, "'package_dirs' in [host] has an empty entry; write "
                                          "directories separated by commas");
            goto cleanup;
        }
        dirs[n] = resolve_path(x->c->base_dir, item);
        free(item);
        if (!dirs[n++]) {
            rc = ph_error_set(PH_ENOMEM, "out of memory");
            goto cleanup;
        }
        p += len;
        if (!*p)
            break;
    }
    if (x->package_dirs_set) {
        /* Repeated lines append, so long lists need no over-long line. */
        char **all = reallocarray(x->c->package_dirs, x->c->n_package_dirs + n, sizeof *all);
        if (!all) {
            rc = ph_error_set(PH_ENOMEM, "out of memory");
            goto cleanup;
        }
        memcpy(all + x->c->n_package_dirs, dirs, n * sizeof *dirs);
        x->c->package_dirs = all;
        x->c->n_package_dirs += n;
        free(dirs);
    } else {
        free_strv(x->c->package_dirs, x->c->n_package_dirs);
        x->c->package_dirs = dirs;
        x->c->n_package_dirs = n;
    }
    x->package_dirs_set = true;
    dirs = NULL;
    n = 0;
cleanup:
    free_strv(dirs, n);
    return rc;
}

static int set_host(load_ctx *x, const char *key, const char *v)
{
    ph_config *c = x->c;
    if (strcmp(key, "data_dir") == 0)
        return set_dir(x, &c->data_dir, "host", key, v);
    if (strcmp(key, "package_dirs") == 0)
        return set_package_dirs(x, v);
    if (strcmp(key, "log_level") == 0) {
        if (ph_log_parse_level(v, &c->log_level) != 0)
            return ph_error_set(PH_ECONFIG,
                                "'log_level' in [host] must be one of error, warn, "
                                "info, debug, not '%s'",
                                v);
        return 0;
    }
    if (strcmp(key, "log_format") == 0) {
        ph_log_format f;
        if (ph_log_parse_format(v, &f) != 0)
            return ph_error_set(PH_ECONFIG,
                                "'log_format' in [host] must be one of text, json, journal, "
                                "not '%s'",
                                v);
        c->log_format = (int)f;
        return 0;
    }
    if (strcmp(key, "reload") == 0)
        return parse_bool("host", key, v, &c->reload);
    if (strcmp(key, "strict") == 0)
        return parse_bool("host", key, v, &c->strict);
    return unknown_key("host", key,
                       "data_dir, package_dirs, log_level, log_format, reload, strict");
}

/* An origin as browsers send it: "http://host[:port]" or "https://...", no path. */
static int check_origin(const char *key, const char *v)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.:[]";
    const char *rest = !strncmp(v, "http://", 7)    ? v + 7
                       : !strncmp(v, "https://", 8) ? v + 8
                                                    : NULL;
    if (!rest || !*rest || strspn(rest, ok) != strlen(rest))
        return ph_error_set(PH_ECONFIG,
                            "'%s' in [http]: '%s' is not an origin; write scheme://host[:port] "
                            "such as https://app.example.com or http://127.0.0.1:3000, without "
                            "a path or a trailing '/'",
                            key, v);
    return 0;
}

/* A DNS name (or IP literal) the Host header may carry. */
static int check_server_name(const char *key, const char *v)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.:[]";
    if (!*v || strspn(v, ok) != strlen(v) || strchr(v, ':') != strrchr(v, ':'))
        return ph_error_set(PH_ECONFIG,
                            "'%s' in [http]: '%s' is not a host name; write names such as "
                            "plughost.example.com, without a scheme or port",
                            key, v);
    return 0;
}

/* A comma list whose items pass `check`; replaces *list. */
static int set_list(const char *key, const char *v, int (*check)(const char *, const char *),
                    char ***list, size_t *n_list)
{
    int rc = 0;
    size_t n = 0, cap = 1;
    for (const char *p = v; *p; p++)
        cap += *p == ',';
    char **items = calloc(cap, sizeof *items);
    if (!items)
        return ph_error_set(PH_ENOMEM, "out of memory");
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        char *item = ph_ini_trimmed(p, len);
        if (!item) {
            rc = ph_error_set(PH_ENOMEM, "out of memory");
            goto cleanup;
        }
        items[n++] = item;
        if (*item && (rc = check(key, item)))
            goto cleanup;
        if (!*item)
            free(items[--n]);
        p += len + (p[len] == ',');
    }
    free_strv(*list, *n_list);
    *list = items;
    *n_list = n;
    items = NULL;
    n = 0;
cleanup:
    free_strv(items, n);
    return rc;
}

int ph_config_check_token(const char *where, const char *token)
{
    size_t n = strlen(token);
    bool hex = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)token[i];
        if (c <= ' ' || c >= 0x7f)
            return ph_error_set(PH_ECONFIG,
                                "%s: the admin token may hold only printable ASCII without "
                                "blanks; make one with `openssl rand -hex 32`",
                                where);
        hex = hex && strchr("0123456789abcdefABCDEF", c);
    }
    size_t bits = n * (hex ? 4 : 6);
    if (bits < PH_TOKEN_MIN_BITS)
        return ph_error_set(PH_ECONFIG,
                            "%s: the admin token is too short (%zu characters, about %zu bits); "
                            "use at least %d bits, i.e. %d hex characters: make one with "
                            "`openssl rand -hex 32`",
                            where, n, bits, PH_TOKEN_MIN_BITS, PH_TOKEN_MIN_BITS / 4);
    return 0;
}

int ph_config_parse_seconds(const char *text, int *ms)
{
    long long whole = 0, frac = 0;
    int digits = 0, frac_digits = 0;
    const char *p = text;
    for (; *p >= '0' && *p <= '9' && whole <= 86400; p++, digits++)
        whole = whole * 10 + (*p - '0');
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9' && frac_digits < 3; p++, frac_digits++)
            frac = frac * 10 + (*p - '0');
    for (int i = frac_digits; i < 3; i++)
        frac *= 10;
    long long total = whole * 1000 + frac;
    if (!digits || *p || total < 1 || total > 86400LL * 1000)
        return PH_EINVAL;
    *ms = (int)total;
    return 0;
}

/* A time limit in seconds ("30", "2.5"); `example` goes into the message. */
static int set_seconds(const char *key, const char *v, const char *example, int *ms)
{
    if (ph_config_parse_seconds(v, ms))
        return ph_error_set(PH_ECONFIG,
                            "'%s' in [limits] must be seconds from 0.001 to 86400 (such as %s "
                            "or 2.5), not '%s'",
                            key, example, v);
    return 0;
}

static int set_limits(load_ctx *x, const char *key, const char *v)
{
    ph_limits_conf *l = &x->c->limits;
    if (strcmp(key, "call_timeout") == 0)
        return set_seconds(key, v, "30", &l->call_timeout_ms);
    if (strcmp(key, "stop_timeout") == 0)
        return set_seconds(key, v, "10", &l->stop_timeout_ms);
    if (strcmp(key, "load_timeout") == 0)
        return set_seconds(key, v, "10", &l->load_timeout_ms);
    if (strcmp(key, "max_concurrent_calls") == 0)
        return set_int("limits", key, v, 1, 100000, &l->max_concurrent_calls);
    return unknown_key("limits", key,
                       "call_timeout, load_timeout, max_concurrent_calls, stop_timeout");
}

static int set_http(load_ctx *x, const char *key, const char *v)
{
    ph_http_conf *h = &x->c->http;
    if (strcmp(key, "listen") == 0)
        return ph_config_set_listen(x->c, v);
    if (strcmp(key, "threads") == 0)
        return set_int("http", key, v, 1, 1024, &h->threads);
    if (strcmp(key, "max_threads") == 0)
        return set_int("http", key, v, 2, 4096, &h->max_threads);
    if (strcmp(key, "max_body") == 0)
        return parse_size("http", key, v, (size_t)1 << 30, &h->max_body);
    if (strcmp(key, "max_json_depth") == 0)
        return set_int("http", key, v, 1, 10000, &h->max_json_depth);
    if (strcmp(key, "connection_timeout") == 0)
        return set_int("http", key, v, 1, 86400, &h->connection_timeout);
    if (strcmp(key, "max_connections_per_ip") == 0)
        return set_int("http", key, v, 1, 1000000, &h->max_connections_per_ip);
    if (strcmp(key, "rate_limit") == 0)
        return set_int("http", key, v, 0, 1000000, &h->rate_limit);
    if (strcmp(key, "request_timeout") == 0)
        return set_int("http", key, v, 1, 86400, &h->request_timeout);
    if (strcmp(key, "max_connections") == 0)
        return set_int("http", key, v, 16, 100000, &h->max_connections);
    if (strcmp(key, "allowed_origins") == 0)
        return set_list(key, v, check_origin, &h->allowed_origins, &h->n_allowed_origins);
    if (strcmp(key, "server_names") == 0)
        return set_list(key, v, check_server_name, &h->server_names, &h->n_server_names);
    if (strcmp(key, "socket") == 0) { /* empty: no local socket */
        char *p = *v ? resolve_path(x->c->base_dir, v) : strdup("");
        if (!p)
            return ph_error_set(PH_ENOMEM, "out of memory");
        free(h->socket);
        h->socket = p;
        x->socket_set = true;
        return 0;
    }
    return unknown_key("http", key,
                       "listen, threads, max_body, max_json_depth, "
                       "connection_timeout, max_connections_per_ip, rate_limit, "
                       "request_timeout, max_connections, allowed_origins, server_names, "
                       "max_threads, socket");
}

static int set_auth(load_ctx *x, const char *key, const char *v)
{
    ph_auth_conf *a = &x->c->auth;
    if (strcmp(key, "token") == 0) {
        if (!*v)
            return ph_error_set(PH_ECONFIG, "'token' in [auth] is empty; remove the line to use "
                                            "token_file, or give a token");
        int rc = ph_config_check_token("'token' in [auth]", v);
        return rc ? rc : replace_str(&a->token, v);
    }
    if (strcmp(key, "token_file") == 0) {
        x->token_file_set = true;
        return set_dir(x, &a->token_file, "auth", key, v);
    }
    if (strcmp(key, "require_token") == 0)
        return parse_bool("auth", key, v, &a->require_token);
    return unknown_key("auth", key, "token, token_file, require_token");
}

/* [trust] NAME = ed25519:BASE64: a public key of 32 bytes, RFC 4648 base64 with padding. */
static int set_trust(load_ctx *x, const char *key, const char *v, int line)
{
    ph_trust_conf *t = &x->c->trust;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (strcmp(key, "allow_unsigned") == 0)
        return parse_bool("trust", key, v, &t->allow_unsigned);
    size_t n = strlen(v);
    if (strncmp(v, "ed25519:", 8) || n != 8 + 44 || v[n - 1] != '=' || strspn(v + 8, b64) != 43)
        return ph_error_set(PH_ECONFIG,
                            "'%s' in [trust] must be a public key line as plughost keygen "
                            "prints it (NAME = ed25519: and 44 base64 characters), not '%s'",
                            key, v);
    return ph_kv_append(&t->keys, &t->n_keys, key, v, line);
}

/*
 * [provides] CAPABILITY = PACKAGE: which package serves a capability
 * several provide (the resolver checks that it is installed and provides it).
 */
static int set_provides(load_ctx *x, const char *key, const char *v, int line)
{
    ph_config *c = x->c;
    if (ph_config_check_name("capability", key, PH_ECONFIG) ||
        ph_config_check_name("package", v, PH_ECONFIG))
        return ph_error_last_code();
    return ph_kv_append(&c->provides, &c->n_provides, key, v, line);
}

/* A mount is a URL path prefix: "/seg[/seg...]" of URL-safe characters. */
static int check_mount(const char *inst, const char *v)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/";
    const char *why = NULL;
    if (v[0] != '/' || v[1] == '\0')
        why = "it must start with '/' followed by a name, such as /blog";
    else if (strspn(v, ok) != strlen(v))
        why = "only letters, digits, '-', '.', '_', '~' and '/' are allowed";
    else if (strstr(v, "//") || v[strlen(v) - 1] == '/')
        why = "it has an empty segment (a doubled or trailing '/')";
    else if (strstr(v, "/./") || strstr(v, "/../") || !strcmp(strrchr(v, '/'), "/.") ||
             !strcmp(strrchr(v, '/'), "/.."))
        why = "'.' and '..' segments are not allowed";
    else if (strcmp(v, "/_") == 0 || strncmp(v, "/_/", 3) == 0)
        why = "/_/ is reserved for the host's own endpoints";
    if (why)
        return ph_error_set(PH_ECONFIG, "invalid mount '%s' for [instance %s]: %s", v, inst, why);
    return 0;
}

int ph_kv_append(ph_kv **list, size_t *n, const char *key, const char *value, int line)
{
    ph_kv *np = reallocarray(*list, *n + 1, sizeof *np);
    if (!np)
        return ph_error_set(PH_ENOMEM, "out of memory");
    *list = np;
    ph_kv *kv = &np[*n];
    kv->key = strdup(key);
    kv->value = strdup(value);
    kv->line = line;
    if (!kv->key || !kv->value) {
        free(kv->key);
        free(kv->value);
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    (*n)++;
    return 0;
}

static int add_param(ph_instance_conf *ic, const char *key, const char *v, int line)
{
    return ph_kv_append(&ic->params, &ic->n_params, key, v, line);
}

static int set_instance(load_ctx *x, const char *key, const char *v, int line)
{
    /* on_section refuses every other section, so a key here has its instance. */
    if (x->cur < 0 || (size_t)x->cur >= x->c->n_instances)
        return ph_error_set(PH_EINTERNAL, "'%s' has no [instance NAME] section", key);
    ph_instance_conf *ic = &x->c->instances[x->cur];
    if (strcmp(key, "package") == 0) {
        int rc = ph_config_check_name("package", v, PH_ECONFIG);
        if (rc) {
            ph_error_wrap("'package' in [instance %s]", ic->name);
            return rc;
        }
        return replace_str(&ic->package, v);
    }
    if (strcmp(key, "mount") == 0) {
        int rc = check_mount(ic->name, v);
        return rc ? rc : replace_str(&ic->mount, v);
    }
    if (strcmp(key, "version") == 0) { /* a pin: checked here, applied by the resolver */
        ph_range pin;
        if (ph_range_parse(v, &pin)) {
            ph_error_wrap("'version' in [instance %s]", ic->name);
            return PH_ECONFIG;
        }
        ic->version_line = line;
        return replace_str(&ic->version, v);
    }
    if (strcmp(key, "enabled") == 0) {
        char *section = NULL;
        if (asprintf(&section, "instance %s", ic->name) < 0)
            return ph_error_set(PH_ENOMEM, "out of memory");
        int rc = parse_bool(section, key, v, &ic->enabled);
        free(section);
        return rc;
    }
    return add_param(ic, key, v, line);
}

static void free_instance(ph_instance_conf *ic)
{
    free(ic->name);
    free(ic->package);
    free(ic->mount);
    free(ic->version);
    for (size_t i = 0; i < ic->n_params; i++) {
        free(ic->params[i].key);
        free(ic->params[i].value);
    }
    free(ic->params);
}

/* "[instance NAME]": starts a new instance section. */
static int begin_instance(load_ctx *x, const char *rest, int line)
{
    ph_config *c = x->c;
    while (ph_ini_is_blank(*rest))
        rest++;
    if (!*rest)
        return ph_error_set(PH_ECONFIG, "[instance] needs a name: write [instance NAME]");
    int rc = ph_config_check_name("instance", rest, PH_ECONFIG);
    if (rc)
        return rc;
    const ph_instance_conf *prev = ph_config_instance(c, rest);
    if (prev)
        return ph_error_set(PH_ECONFIG,
                            "[instance %s] is defined twice (first on line %d); merge "
                            "the two sections or rename one",
                            rest, prev->line);
    ph_instance_conf *ni = reallocarray(c->instances, c->n_instances + 1, sizeof *ni);
    if (!ni)
        return ph_error_set(PH_ENOMEM, "out of memory");
    c->instances = ni;
    ph_instance_conf *ic = &ni[c->n_instances];
    memset(ic, 0, sizeof *ic);
    ic->name = strdup(rest);
    ic->package = strdup(rest);
    ic->enabled = true;
    ic->line = line;
    if (!ic->name || !ic->package) {
        free_instance(ic);
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    x->cur = (long)c->n_instances++;
    return 0;
}

static bool is_instance_section(const char *section, const char **rest)
{
    if (strncmp(section, "instance", 8) != 0 || (section[8] && !ph_ini_is_blank(section[8])))
        return false;
    *rest = section + 8;
    return true;
}

static const char known_sections[] =
    "[host], [http], [limits], [auth], [trust], [provides], [instance NAME]";

static int on_section(load_ctx *x, const char *section, int line)
{
    const char *rest;
    x->cur = -1;
    if (is_instance_section(section, &rest))
        return begin_instance(x, rest, line);
    if (strcmp(section, "host") && strcmp(section, "http") && strcmp(section, "limits") &&
        strcmp(section, "auth") && strcmp(section, "trust") && strcmp(section, "provides"))
        return ph_error_set(PH_ECONFIG, "unknown section [%s]; known sections: %s", section,
                            known_sections);
    return 0;
}

static int on_config_event(void *user, const char *section, const char *key, const char *value,
                           int line)
{
    load_ctx *x = user;
    if (!key)
        return on_section(x, section, line);
    if (!*section)
        return ph_error_set(PH_ECONFIG, "'%s' is outside any section; put it under one of %s", key,
                            known_sections);
    if (strcmp(section, "host") == 0)
        return set_host(x, key, value);
    if (strcmp(section, "http") == 0)
        return set_http(x, key, value);
    if (strcmp(section, "auth") == 0)
        return set_auth(x, key, value);
    if (strcmp(section, "limits") == 0)
        return set_limits(x, key, value);
    if (strcmp(section, "trust") == 0)
        return set_trust(x, key, value, line);
    if (strcmp(section, "provides") == 0)
        return set_provides(x, key, value, line);
    return set_instance(x, key, value, line);
}

/* Mounts, token_file and socket default from other settings once all are read. */
static int finish(load_ctx *x)
{
    ph_config *c = x->c;
    if (!x->token_file_set) {
        char *tf = resolve_path(c->data_dir, "admin.token");
        if (!tf)
            return ph_error_set(PH_ENOMEM, "out of memory");
        free(c->auth.token_file);
        c->auth.token_file = tf;
    }
    if (!x->socket_set) {
        char *so = resolve_path(c->data_dir, "plughost.sock");
        if (!so)
            return ph_error_set(PH_ENOMEM, "out of memory");
        free(c->http.socket);
        c->http.socket = so;
    }
    for (size_t i = 0; i < c->n_instances; i++) {
        ph_instance_conf *ic = &c->instances[i];
        if (!ic->mount && asprintf(&ic->mount, "/%s", ic->name) < 0) {
            ic->mount = NULL;
            return ph_error_set(PH_ENOMEM, "out of memory");
        }
    }
    return 0;
}

/* The absolute directory holding `path` (not resolving symlinks). */
static char *dir_of(const char *path)
{
    char *abs = NULL, *cwd = NULL;
    if (path[0] == '/') {
        abs = strdup(path);
    } else {
        cwd = getcwd(NULL, 0);
        if (cwd)
            abs = resolve_path(cwd, path);
    }
    free(cwd);
    if (!abs)
        return NULL;
    char *slash = strrchr(abs, '/');
    if (slash == abs)
        slash[1] = '\0';
    else
        *slash = '\0';
    return abs;
}

/* Each package_dirs line adds directories, so long lists need no long line. */
static const char *const repeatable[] = {"host.package_dirs", NULL};
static const ph_ini_opts config_ini = {PH_ECONFIG, repeatable};

int ph_config_load(const char *path, ph_config *out)
{
    load_ctx x = {.c = out, .cur = -1};
    char *base = dir_of(path);
    memset(out, 0, sizeof *out);
    if (!base)
        return ph_error_set(PH_EIO, "%s: cannot determine its directory: %s", path,
                            ph_strerror(errno));
    int rc = set_defaults(out, base);
    free(base);
    if (rc)
        return rc;
    out->path = strdup(path);
    if (!out->path)
        rc = ph_error_set(PH_ENOMEM, "out of memory");
    if (!rc)
        rc = ph_ini_parse_file(path, &config_ini, on_config_event, &x);
    if (!rc)
        rc = finish(&x);
    if (rc)
        ph_config_free(out);
    return rc;
}

const ph_instance_conf *ph_config_instance(const ph_config *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->n_instances; i++) {
        if (strcmp(c->instances[i].name, name) == 0)
            return &c->instances[i];
    }
    return NULL;
}

void ph_config_free(ph_config *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->base_dir);
    free(c->data_dir);
    free_strv(c->package_dirs, c->n_package_dirs);
    free(c->http.listen_addr);
    free_strv(c->http.allowed_origins, c->http.n_allowed_origins);
    free_strv(c->http.server_names, c->http.n_server_names);
    free(c->http.socket);
    free(c->auth.token);
    free(c->auth.token_file);
    for (size_t i = 0; i < c->trust.n_keys; i++) {
        free(c->trust.keys[i].key);
        free(c->trust.keys[i].value);
    }
    free(c->trust.keys);
    for (size_t i = 0; i < c->n_provides; i++) {
        free(c->provides[i].key);
        free(c->provides[i].value);
    }
    free(c->provides);
    for (size_t i = 0; i < c->n_instances; i++)
        free_instance(&c->instances[i]);
    free(c->instances);
    memset(c, 0, sizeof *c);
}
