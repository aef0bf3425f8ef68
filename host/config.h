/*
 * host.ini: the host's configuration (read with the INI reader, ini.h).
 *
 *   [host]      data_dir, package_dirs (comma list), log_level, log_format, reload, strict
 *   [http]      listen (ADDR:PORT), threads, max_body, max_json_depth,
 *               connection_timeout, max_connections_per_ip, rate_limit,
 *               request_timeout, max_connections, allowed_origins (comma list of
 *               scheme://host[:port]), server_names (comma list of host names),
 *               socket (the CLI's local socket; empty: none)
 *   [limits]    call_timeout (seconds, decimals allowed), max_concurrent_calls, stop_timeout,
 *               load_timeout (seconds: a build's ELF constructors in the host's dlopen)
 *               (per instance)
 *   [auth]      token, token_file, require_token
 *   [trust]     allow_unsigned (bool, default no), and NAME = ed25519:BASE64 for each
 *               key whose signed archives `plughost install` accepts (dist.h)
 *   [instance NAME]  package, mount, enabled, version (a range pinning the
 *               package's version when several are installed; the operator's
 *               rollback), and any other key overrides the
 *               package parameter of that name (checked against the manifest
 *               by the resolver, which reports the file:line kept here)
 *
 * Relative paths are resolved against the directory of the config file.
 * What a line is (comments, CRLF, BOM, over-long lines...) is ini.h's rule.
 * Unknown sections/keys, keys outside a section and bad values are errors
 * naming file:line. Every field has an embedded default (ph_config_defaults).
 *
 * Values: booleans true/false, yes/no, on/off, 1/0; max_body a byte count
 * with an optional K/M/G suffix (1 byte to 1 GiB); threads 1-1024,
 * max_json_depth 1-10000, connection_timeout 1-86400 s,
 * max_connections_per_ip 1-1000000; log_level error|warn|info|debug. An
 * instance name follows ph_config_check_name; a mount is "/seg[/seg]" of
 * URL-safe characters, outside the reserved "/_/". A key set twice in one
 * section and a repeated [instance NAME] are errors. Messages look like
 *   host.ini:7: unknown key 'listne' in [http]; known keys: listen, threads, ...
 *   host.ini:3: 'threads' in [http] must be an integer from 1 to 1024, not 'many'
 *   host.ini:12: [instance blog] is defined twice (first on line 4); merge ...
 */
#ifndef PH_HOST_CONFIG_H
#define PH_HOST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

typedef struct ph_kv {
    char *key;
    char *value;
    int line; /* line in the file it came from; 0 for defaults */
} ph_kv;

/** Appends a copy of key/value to a list (realloc'd). 0 or PH_ENOMEM. */
int ph_kv_append(ph_kv **list, size_t *n, const char *key, const char *value, int line);

typedef struct ph_instance_conf {
    char *name;
    char *package; /* defaults to the instance name */
    char *mount;   /* URL prefix, defaults to "/<name>" */
    bool enabled;  /* default true; false leaves it (and the package's default one) out */
    char *version; /* a range pinning the package's version ("1.0.0", "^1"), or NULL */
    int version_line;
    ph_kv *params; /* every other key: parameter overrides, in file order */
    size_t n_params;
    int line; /* line of the [instance NAME] header */
} ph_instance_conf;

typedef struct ph_http_conf {
    char *listen_addr;          /* default "127.0.0.1" */
    int port;                   /* default 8901 */
    int threads;                /* HTTP threads kept waiting, default 4 */
    int max_threads;            /* HTTP threads at most (blocked calls hold one each), 256 */
    size_t max_body;            /* default 1 MiB */
    int max_json_depth;         /* default 64 */
    int connection_timeout;     /* seconds, default 15 */
    int max_connections_per_ip; /* default 64 */
    int rate_limit;             /* calls per second per method, 0 (default): no limit */
    int request_timeout;    /* seconds to receive a whole request (headers and body), default 30 */
    int max_connections;    /* connections served at once, default 1000 */
    char **allowed_origins; /* origins ("https://app.example:8443") allowed cross-origin (CORS) */
    size_t n_allowed_origins;
    char **server_names; /* Host header names accepted besides the listen address and
                            localhost (DNS rebinding) */
    size_t n_server_names;
    char *socket; /* the local (Unix) socket the CLI talks to, default "<data_dir>/plughost.sock";
                     "" (socket = with no value): none */
} ph_http_conf;

/* [limits]: how much of the host one instance's calls may take. */
typedef struct ph_limits_conf {
    int call_timeout_ms;      /* a call's time limit before its caller gets 504, default 30 s */
    int max_concurrent_calls; /* calls of one instance running at once, default 16 */
    int stop_timeout_ms;      /* stop()'s time limit (shutdown, reload, disable), default 10 s */
    int load_timeout_ms;      /* the host's dlopen of a build (its constructors), default 10 s */
} ph_limits_conf;

typedef struct ph_auth_conf {
    char *token;      /* NULL: read/generate token_file */
    char *token_file; /* default "<data_dir>/admin.token" */
    bool require_token;
} ph_auth_conf;

/* [trust]: who may sign the distribution archives this host installs (dist.h). */
typedef struct ph_trust_conf {
    bool allow_unsigned; /* default false: an unsigned archive is refused */
    ph_kv *keys;         /* key = the key's name, value = "ed25519:" + base64 of 32 bytes */
    size_t n_keys;
} ph_trust_conf;

typedef struct ph_config {
    char *path;     /* the file read, NULL for pure defaults */
    char *base_dir; /* directory relative paths are resolved against */
    char *data_dir; /* default "<base_dir>/data" */
    char **package_dirs;
    size_t n_package_dirs; /* default: "<base_dir>/packages" */
    ph_level log_level;
    int log_format; /* ph_log_format; -1 (default): journal when stderr is the journal, else text */
    bool reload;    /* default true */
    bool strict;    /* default false */
    ph_http_conf http;
    ph_limits_conf limits;
    ph_auth_conf auth;
    ph_trust_conf trust;
    ph_kv *provides; /* [provides] CAPABILITY = PACKAGE: the provider pinned (resolver.h) */
    size_t n_provides;
    ph_instance_conf *instances;
    size_t n_instances;
} ph_config;

/**
 * Fills *out (overwritten, not freed) with the embedded defaults, relative to
 * the current directory: data_dir "<cwd>/data", package_dirs "<cwd>/packages",
 * log level info, reload on, strict off, http 127.0.0.1:8901, token_file
 * "<data_dir>/admin.token", require_token off, no instances. 0 or PH_ENOMEM /
 * PH_EIO. Free with ph_config_free.
 */
int ph_config_defaults(ph_config *out);
/**
 * Fills *out (overwritten, not freed) with the defaults relative to the
 * directory of `path`, then the settings read from `path`. Instance mounts
 * default to "/<name>" and token_file follows data_dir unless set. On error
 * returns PH_ECONFIG (or PH_EIO, PH_ENOMEM) with "path:line: what is wrong;
 * what to do" as the last error, and leaves *out freed (zeroed).
 */
int ph_config_load(const char *path, ph_config *out);
/** Finds an instance section by name; borrowed or NULL. */
const ph_instance_conf *ph_config_instance(const ph_config *c, const char *name);
/** Frees everything *c owns; accepts a zeroed or half-built config. */
void ph_config_free(ph_config *c);
/**
 * Parses "ADDR:PORT", "[IPV6]:PORT", ":PORT" or "PORT" into c->http; the last
 * two change only the port. ADDR is an IPv4 or bracketed IPv6 literal or
 * "localhost" (stored as 127.0.0.1). 0, or PH_ECONFIG with "invalid listen
 * address 'TEXT': why" (c unchanged), or PH_ENOMEM.
 */
int ph_config_set_listen(ph_config *c, const char *text);

/**
 * Parses a duration in seconds: digits with up to 3 decimals ("30", "0.5"),
 * from 0.001 to 86400. Sets *ms. 0, or PH_EINVAL without setting the last
 * error (the caller knows the context).
 */
int ph_config_parse_seconds(const char *text, int *ms);

/** Fewest bits of secret an admin token must carry (32 hex characters). */
#define PH_TOKEN_MIN_BITS 128
/**
 * Checks an admin token: printable ASCII without blanks, carrying at least
 * PH_TOKEN_MIN_BITS (4 bits per character of an all-hex token, 6 otherwise:
 * 32 hex or 22 base64 characters). `where` names its source for the
 * message ("'token' in [auth]", a file name). 0, or PH_ECONFIG with
 * "WHERE ...; make one with `openssl rand -hex 32`".
 */
int ph_config_check_token(const char *where, const char *token);

#define PH_NAME_MAX 64
/**
 * Checks a package or instance name: 1 to PH_NAME_MAX characters, lowercase
 * letters, digits, '_' and '-', starting with a letter (names become URL
 * segments and the first part of addresses, so no dots). `what` is "package"
 * or "instance", used in the message. 0, or `code` (PH_ECONFIG, PH_EMANIFEST...)
 * with "invalid WHAT name 'NAME': why; use lowercase letters, ...".
 */
int ph_config_check_name(const char *what, const char *name, int code);

#endif
