/*
 * The router and generated CRUD in process: a host running the example
 * packages (calc, hello, greeter, counter, notes) on a scratch data
 * directory; each input is "ADDRESS\nJSON ARGS" called as the CLI and HTTP
 * do (no caller, no admin flag). Invariants: every failure has a known code
 * and a message; admin-only and unknown addresses fail cleanly.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "fuzz.h"
#include "jsonflat.h"
#include "host.h"
#include "log.h"
#include "router.h"

#ifndef PH_FUZZ_PACKAGES
#error "PH_FUZZ_PACKAGES: the directory of the built example packages"
#endif

static ph_host *host;

static void stop_host(void)
{
    ph_host_stop(host);
    ph_host_free(host);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char *const pkgs[] = {"calc", "hello", "greeter", "counter", "notes"};
    char *ini = fz_path("host.ini"), *text = NULL, *dirs = strdup("");
    for (size_t i = 0; i < sizeof pkgs / sizeof pkgs[0]; i++) {
        char *more = NULL;
        if (asprintf(&more, "%spackage_dirs = %s/%s\n", dirs, PH_FUZZ_PACKAGES, pkgs[i]) < 0)
            fz_fail("out of memory");
        free(dirs);
        dirs = more;
    }
    if (asprintf(&text, "[host]\n%sdata_dir = %s/data\nlog_level = error\nreload = no\n", dirs,
                 fz_dir()) < 0)
        fz_fail("out of memory");
    fz_write(ini, text, strlen(text));
    ph_config cfg;
    ph_log_set_level(getenv("PH_FUZZ_VERBOSE") ? PH_L_INFO : PH_L_ERROR);
    if (ph_config_load(ini, &cfg) != 0 || ph_host_open(&cfg, &host) != 0 ||
        ph_host_start(host) != 0)
        fz_fail("cannot start the host: %s", ph_error_last());
    if (host->plan.n_problems)
        fz_fail("the plan has problems: %s", host->plan.problems[0]);
    atexit(stop_host);
    free(ini);
    free(text);
    free(dirs);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_str(data, size);
    char *nl = strchr(text, '\n');
    json_t *args = NULL;
    if (nl) {
        *nl = '\0';
        json_error_t err;
        args = ph_json_load_body(nl + 1, size - (size_t)(nl + 1 - text), &err);
        if (!args) {
            free(text);
            return 0;
        }
    }
    json_t *out = NULL;
    int rc = ph_router_call(host->router, NULL, text, args, 0, &out);
    if (rc == 0) {
        char *s = json_dumps(out, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!s)
            fz_fail("a result cannot be encoded");
        if (getenv("PH_FUZZ_VERBOSE"))
            fprintf(stderr, "%s -> %s\n", text, s);
        free(s);
        json_decref(out);
    } else if (getenv("PH_FUZZ_VERBOSE")) {
        fprintf(stderr, "%s -> error %d: %s\n", text, rc, ph_error_last());
    }
    if (rc && (!*ph_error_last() || !strcmp(ph_error_word(rc), "unknown"))) {
        fz_fail("call '%s' failed with code %d and message '%s'", text, rc, ph_error_last());
    }
    json_decref(args);
    free(text);
    return 0;
}
