/*
 * Baseline for bench/bench_http.sh: the least a libmicrohttpd server can do per
 * request with the same threading settings as plughost's gateway (internal
 * thread pool + epoll, same pool size, same timeout): read the body, answer
 * a fixed JSON body. plughost's figures are reported as ratios to this.
 *
 *   bench_mhd_baseline PORT [THREADS]     runs until SIGINT/SIGTERM
 *
 * Listens on 127.0.0.1 only, like plughost's default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "mhd_serve.h"

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    static int started;
    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    if (!*con_cls) {
        *con_cls = &started;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    static const char body[] = "42\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [THREADS]\n", argv[0]);
        return 2;
    }
    unsigned port = (unsigned)atoi(argv[1]), threads = argc > 2 ? (unsigned)atoi(argv[2]) : 4;
    return ph_bench_mhd_serve("bench_mhd_baseline", port, threads, on_request, NULL);
}
