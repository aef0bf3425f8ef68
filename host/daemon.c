/*
 * plughostd: the daemon. `plughost run` execs it (so does plughost.service,
 * through `plughost run`): it serves the packages until SIGINT/SIGTERM.
 * It is a binary of its own so that the process that serves links no HTTP
 * client (host/client.c, libcurl: the CLI's). Its options are those of
 * `plughost run`:
 *
 *   plughostd [run] [-c host.ini] [--listen ADDR:PORT] [--data-dir DIR]
 *             [--packages DIR]... [--log-level L] [--log-format F] [--strict]
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cliopts.h"
#include "crash.h"
#include "error.h"
#include "host.h"
#include "http.h"
#include "loader.h"
#include "log.h"
#include "notify.h"
#include "reload.h"
#include "router.h"

static void print_error(const char *what)
{
    fprintf(stderr, "plughost: %s%s%s\n", what ? what : "", what ? ": " : "", ph_error_last());
}

/*
 * SIGHUP: re-read host.ini and apply it; a bad file changes nothing.
 * Returns 0, or -1 with the reason in ph_error_last().
 */
static int reconfigure(const ph_cli_opts *c, ph_host *h, ph_reloader **watcher)
{
    ph_config cfg;
    memset(&cfg, 0, sizeof cfg);
    ph_log_info("SIGHUP: re-reading %s", c->config ? c->config : "the embedded defaults");
    if (ph_cli_load_config(c, &cfg) || ph_host_reconfigure(h, &cfg)) {
        ph_log_error("configuration not reloaded, the running one stays: %s", ph_error_last());
        return -1;
    }
    /*
     * The watcher follows every change by itself (and keeps the events it
     * has not applied yet): only `reload` switched on or off starts or
     * stops it.
     */
    if (!h->cfg.reload && *watcher) {
        ph_reloader_stop(*watcher);
        *watcher = NULL;
    } else if (h->cfg.reload && !*watcher && ph_reloader_start(h, NULL, watcher)) {
        ph_log_warn("hot reload is off: %s", ph_error_last());
    }
    return 0;
}

/* SIGTERM or SIGINT waiting (blocked in every thread): the start-up ends between instances. */
static bool stop_pending(void)
{
    sigset_t pending;
    return ph_watch_stop_requested() || /* taken by the watch of a start that may hang */
           (sigpending(&pending) == 0 &&
            (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1));
}

static int run(const ph_cli_opts *c)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    /* Every thread started from here on inherits the mask; main waits for them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* A log pipe whose reader went away (`run | head`) is EPIPE on the write, not the end of
     * the host without stopping anything (systemd's IgnoreSIGPIPE=yes does the same). */
    signal(SIGPIPE, SIG_IGN);

    ph_host *h = NULL;
    int rc = ph_cli_open_host(c, &h);
    if (rc) {
        print_error(NULL);
        return 1;
    }
    for (size_t i = 0; i < h->set.n_problems; i++)
        ph_log_error("%s", h->set.problems[i]);
    if (h->cfg.strict && h->set.n_problems) {
        ph_log_error("strict mode: not starting with bad manifests");
        ph_host_free(h);
        return 1;
    }
    ph_http *http = NULL;
    ph_reloader *watcher = NULL;
    int status = 1;
    if ((rc = ph_host_load_token(h))) {
        print_error("admin token");
        goto cleanup;
    }
    char *journal = NULL;
    if (asprintf(&journal, "%s/crashes.log", h->cfg.data_dir) < 0 || ph_crash_install(journal))
        ph_log_warn("no crash journal: %s", ph_error_last());
    free(journal);
    /*
     * The listener comes first: its port is taken (or the reason it cannot
     * be) before hundreds of packages take descriptors, and health answers
     * "not ready" while they start.
     */
    if ((rc = ph_http_start(h, &http))) {
        print_error("cannot serve HTTP");
        goto cleanup;
    }
    ph_log_info("listening on http://%s:%d/; starting %zu instance(s)", h->cfg.http.listen_addr,
                ph_http_port(http), h->plan.n);
    if (ph_notify_start(h))
        ph_log_warn("no watchdog: %s", ph_error_last());
    h->start_cancelled = stop_pending;
    if ((rc = ph_host_start(h))) {
        print_error("cannot start");
        ph_http_stop(http);
        goto stop;
    }
    if (stop_pending()) /* never READY=1 for a start-up cut short: straight to the stop */
        goto wait;
    if (h->cfg.reload && ph_reloader_start(h, NULL, &watcher))
        ph_log_warn("hot reload is off: %s", ph_error_last());
    pthread_rwlock_rdlock(&h->lock); /* requests may already be changing the plan */
    size_t n_instances = h->plan.n, n_running = 0;
    for (size_t i = 0; i < n_instances; i++)
        n_running += strcmp(ph_host_item_state(h, i, NULL), "running") == 0;
    pthread_rwlock_unlock(&h->lock);
    ph_notify_ready(n_running, h->cfg.http.listen_addr, ph_http_port(http), NULL);
    if (n_running < n_instances) /* never "serving 1000" when 326 run */
        ph_log_warn("%zu of %zu instance(s) are not running; `plughost status` says why",
                    n_instances - n_running, n_instances);
    ph_log_info("plughost %s serving %zu instance(s) on http://%s:%d/ (config: %s); Ctrl-C stops",
                PH_HOST_VERSION, n_running, h->cfg.http.listen_addr, ph_http_port(http),
                c->config ? c->config : "embedded defaults");
    if (ph_router_instance(h->router, "calc")) /* the example, when it runs */
        ph_log_info("try: curl -s -X POST -H 'Content-Type: application/json' "
                    "http://%s:%d/calc/actors/math/add -d '{\"a\":2,\"b\":40}'"
                    "   |   curl -s http://%s:%d/_/packages",
                    h->cfg.http.listen_addr, ph_http_port(http), h->cfg.http.listen_addr,
                    ph_http_port(http));
    else
        ph_log_info("try: curl -s http://%s:%d/_/packages (the instances and their mounts)",
                    h->cfg.http.listen_addr, ph_http_port(http));
    ph_instance *pm = ph_router_instance(h->router, "pkgmgr");
    if (pm && atomic_load(&pm->state) == PH_INST_RUNNING)
        ph_log_info("package manager: open http://%s:%d%s/ in a browser", h->cfg.http.listen_addr,
                    ph_http_port(http), pm->mount);
wait:;
    int sig = 0;
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            ph_notify_reloading();
            int failed = reconfigure(c, h, &watcher);
            pthread_rwlock_rdlock(&h->lock);
            size_t n = h->plan.n;
            pthread_rwlock_unlock(&h->lock);
            ph_notify_ready(n, h->cfg.http.listen_addr, ph_http_port(http),
                            failed ? ph_error_last() : NULL);
            continue;
        }
        break;
    }
    ph_log_info("%s received: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    ph_notify_stopping();
    if (ph_host_exit_on_second_signal(&set))
        ph_log_warn("%s", ph_error_last());
    status = 0;
    ph_reloader_stop(watcher);
    ph_http_stop(http);
stop:
    ph_host_stop(h);
    if (status == 0 && ph_host_stop_incomplete(h)) /* logged: a stop() or a call did not end */
        status = 1;
cleanup:
    ph_notify_stop(); /* the watchdog reads h */
    ph_host_free(h);
    if (status == 0)
        ph_log_info("stopped cleanly");
    return status;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},   {"listen", required_argument, NULL, 'l'},
        {"data-dir", required_argument, NULL, 'd'}, {"log-level", required_argument, NULL, 'L'},
        {"packages", required_argument, NULL, 'p'}, {"log-format", required_argument, NULL, 'F'},
        {"strict", no_argument, NULL, 's'},         {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},        {NULL, 0, NULL, 0},
    };
    ph_cli_opts o;
    memset(&o, 0, sizeof o);
    int opt, status = 2;
    char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
    if (!dirs)
        return 1;
    o.package_dirs = dirs;
    opterr = 0; /* one line of ours instead */
    while ((opt = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            o.config = optarg;
            break;
        case 'l':
            o.listen = optarg;
            break;
        case 'd':
            o.data_dir = optarg;
            break;
        case 'L':
            o.log_level = optarg;
            break;
        case 'F':
            o.log_format = optarg;
            break;
        case 'p':
            dirs[o.n_package_dirs++] = optarg;
            break;
        case 's':
            o.strict = 1;
            break;
        case 'h':
            printf("Usage: plughostd [run] [-c host.ini] [--listen ADDR:PORT] [--data-dir DIR]\n"
                   "                 [--packages DIR]... [--log-level LEVEL]\n"
                   "                 [--log-format FORMAT] [--strict]\n"
                   "The plughost daemon: what `plughost run` starts. See plughost(1).\n"
                   "Exit status: 0 stopped cleanly by SIGTERM or SIGINT (also during start-up),\n"
                   "1 it could not start or an instance did not stop, 2 a usage error.\n");
            status = 0;
            goto done;
        case 'V':
            printf("plughostd %s (SDK ABI %d)\n", PH_HOST_VERSION, PH_ABI_VERSION);
            status = 0;
            goto done;
        case ':':
            fprintf(stderr, "plughostd: option '%s' needs a value; see plughostd --help\n",
                    argv[optind - 1]);
            goto done;
        default:
            if (optopt)
                fprintf(stderr, "plughostd: unknown option '-%c'; see plughostd --help\n", optopt);
            else
                fprintf(stderr, "plughostd: unknown option '%s'; see plughostd --help\n",
                        argv[optind - 1]);
            goto done;
        }
    }
    if (optind < argc && strcmp(argv[optind], "run") == 0)
        optind++;
    if (optind < argc) {
        fprintf(stderr,
                "plughostd: unexpected argument '%s'; it only runs the host; see plughostd "
                "--help\n",
                argv[optind]);
        goto done;
    }
    if (ph_cli_check_values(&o)) {
        fprintf(stderr, "plughostd: %s; see plughostd --help\n", ph_error_last());
        goto done;
    }
    ph_cli_raise_fd_limit();
    status = run(&o);
done:
    free(dirs);
    return status;
}
