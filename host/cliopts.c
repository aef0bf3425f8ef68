/* The options the CLI and the daemon share: the configuration they start from. */
#include "cliopts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "path.h"
#include "manage.h"

/* --log-level and --log-format, if given, into *level and *format (PH_ECONFIG: a bad value). */
static int parse_log_options(const ph_cli_opts *c, ph_level *level, int *format)
{
    ph_log_format f;
    if (c->log_level && ph_log_parse_level(c->log_level, level))
        return ph_error_set(PH_ECONFIG, "--log-level '%s': use error, warn, info or debug",
                            c->log_level);
    if (c->log_format && ph_log_parse_format(c->log_format, &f))
        return ph_error_set(PH_ECONFIG, "--log-format '%s': use text, json or journal",
                            c->log_format);
    if (c->log_format)
        *format = (int)f;
    return 0;
}

int ph_cli_check_values(const ph_cli_opts *c)
{
    ph_level level;
    int format = -1, rc = parse_log_options(c, &level, &format);
    if (rc || !c->listen)
        return rc;
    ph_config cfg;
    memset(&cfg, 0, sizeof cfg);
    rc = ph_config_set_listen(&cfg, c->listen);
    free(cfg.http.listen_addr);
    return rc;
}

/* Loads the config (or the embedded defaults) and applies command-line overrides. */
int ph_cli_load_config(const ph_cli_opts *c, ph_config *cfg)
{
    const char *path = c->config;
#ifdef PH_SYSTEM_CONFIG
    /* an installed host (the Debian package): its configuration, as the service reads it */
    if (!path && access(PH_SYSTEM_CONFIG, F_OK) == 0)
        path = PH_SYSTEM_CONFIG;
#endif
    int rc = path ? ph_config_load(path, cfg) : ph_config_defaults(cfg);
    if (rc)
        return rc;
    if (c->listen && (rc = ph_config_set_listen(cfg, c->listen)))
        goto fail;
    if (c->data_dir) {
        /* The token file follows the data directory unless it was set on its own. */
        char *old_token = NULL, *d = realpath(c->data_dir, NULL);
        if (!d && !(d = strdup(c->data_dir)))
            goto nomem;
        ph_path_trim(d); /* "data/" not made yet: joins add the '/' */
        if (asprintf(&old_token, "%s/admin.token", cfg->data_dir) < 0) {
            free(d);
            goto nomem;
        }
        if (cfg->auth.token_file && strcmp(cfg->auth.token_file, old_token) == 0) {
            free(cfg->auth.token_file);
            if (asprintf(&cfg->auth.token_file, "%s/admin.token", d) < 0)
                cfg->auth.token_file = NULL;
        }
        free(old_token);
        /* So does the local socket. */
        char *old_sock = NULL;
        if (asprintf(&old_sock, "%s/plughost.sock", cfg->data_dir) < 0) {
            free(d);
            goto nomem;
        }
        if (cfg->http.socket && strcmp(cfg->http.socket, old_sock) == 0) {
            free(cfg->http.socket);
            if (asprintf(&cfg->http.socket, "%s/plughost.sock", d) < 0)
                cfg->http.socket = NULL;
        }
        free(old_sock);
        free(cfg->data_dir);
        cfg->data_dir = d;
    }
    if ((rc = parse_log_options(c, &cfg->log_level, &cfg->log_format)))
        goto fail;
    if (c->strict)
        cfg->strict = true;
    if (c->n_package_dirs) {
        for (size_t i = 0; i < cfg->n_package_dirs; i++)
            free(cfg->package_dirs[i]);
        free(cfg->package_dirs);
        cfg->package_dirs = calloc(c->n_package_dirs, sizeof *cfg->package_dirs);
        cfg->n_package_dirs = 0;
        if (!cfg->package_dirs)
            goto nomem;
        for (size_t i = 0; i < c->n_package_dirs; i++) {
            char *d = realpath(c->package_dirs[i], NULL);
            if (!d) {
                rc = ph_error_set(PH_ECONFIG, "--packages %s: %s", c->package_dirs[i],
                                  ph_strerror(errno));
                goto fail;
            }
            cfg->package_dirs[cfg->n_package_dirs++] = d;
        }
    }
    ph_log_set_level(cfg->log_level);
    if (cfg->log_format >= 0)
        ph_log_set_format((ph_log_format)cfg->log_format);
    return 0;
nomem:
    rc = ph_error_set(PH_ENOMEM, "out of memory");
fail:
    ph_config_free(cfg);
    return rc;
}

static int manage_cb(void *ud, const char *op, const char *name, json_t **out)
{
    return ph_manage(ud, op, name, out);
}

int ph_cli_open_host(const ph_cli_opts *c, ph_host **out)
{
    ph_config cfg;
    memset(&cfg, 0, sizeof cfg);
    int rc = ph_cli_load_config(c, &cfg);
    if (rc)
        return rc;
    if ((rc = ph_host_open(&cfg, out)))
        return rc;
    /* The package manager plugin reaches the host's management through the router. */
    ph_router_set_manager((*out)->router, manage_cb, *out);
    return 0;
}

/*
 * Every instance holds files (its database, WAL and shared memory, its
 * library): the soft open-file limit is raised to the hard one before
 * anything is loaded, as a daemon that polls with epoll (never select) can
 * (systemd's advice for LimitNOFILE). Hundreds of packages then start under
 * a shell's usual soft limit of 1024.
 */
void ph_cli_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        ph_log_warn("cannot raise the open-file limit from %llu: %s", (unsigned long long)was,
                    ph_strerror(errno));
}
