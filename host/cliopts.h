/*
 * What the `plughost` CLI and the `plughostd` daemon share: the options
 * that choose the configuration (-c, --listen, --data-dir, --log-level,
 * --log-format, --packages, --strict) and how they apply to it.
 */
#ifndef PH_HOST_CLIOPTS_H
#define PH_HOST_CLIOPTS_H

#include <stddef.h>

#include "config.h"
#include "host.h"

typedef struct ph_cli_opts {
    const char *config; /* -c host.ini, or NULL: the embedded defaults */
    const char *listen;
    const char *data_dir;
    const char *log_level;
    const char *log_format;
    int strict;
    char **package_dirs; /* --packages (repeatable; replaces package_dirs) */
    size_t n_package_dirs;
} ph_cli_opts;

/**
 * Loads the config (or the embedded defaults) and applies the command-line
 * overrides; the token file and the local socket follow --data-dir unless
 * they were set on their own. Sets the log level and format. 0, or the
 * config's error (cfg freed).
 */
int ph_cli_load_config(const ph_cli_opts *o, ph_config *cfg);

/**
 * Checks the values given on the command line that need no file to judge
 * (--log-level, --log-format, --listen): 0, or PH_ECONFIG/PH_EINVAL with
 * the message naming the option. A bad value is a usage error (exit 2).
 */
int ph_cli_check_values(const ph_cli_opts *o);

/** ph_cli_load_config, then ph_host_open with the package manager wired in. */
int ph_cli_open_host(const ph_cli_opts *o, ph_host **out);

/** Raises the soft open-file limit to the hard one (run and call --local load every package). */
void ph_cli_raise_fd_limit(void);

#endif
