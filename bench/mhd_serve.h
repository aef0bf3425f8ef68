/*
 * The libmicrohttpd set-up both baseline servers of bench/bench_http.sh share,
 * so that they differ only in what they do per request: 127.0.0.1:port, an
 * internal pool of `threads` threads over epoll, a 15 s connection timeout,
 * no per-address limit -- the settings of plughost's gateway.
 */
#ifndef PH_BENCH_MHD_SERVE_H
#define PH_BENCH_MHD_SERVE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include <microhttpd.h>

/**
 * Serves with `handler` (and `completed`, may be NULL) until SIGINT or
 * SIGTERM. `name` prefixes the error message. Returns the exit status: 0
 * after a signal, 1 when the port cannot be listened on.
 */
static inline int ph_bench_mhd_serve(const char *name, unsigned port, unsigned threads,
                                     MHD_AccessHandlerCallback handler,
                                     MHD_RequestCompletedCallback completed)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL,
        handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE,
        threads, MHD_OPTION_CONNECTION_TIMEOUT, 15u, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "%s: cannot listen on port %u\n", name, port);
        return 1;
    }
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}

#endif
