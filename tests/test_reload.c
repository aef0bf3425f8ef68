/*
 * reload.c: hot reload of a package while it serves calls.
 *
 * In-process: a host over copies of the reload_fx / reload_dep fixtures in
 * a temp directory; new builds are made with the real compiler and linker
 * (bfd, gold, lld), then written over the package's .so the way tools do
 * (linker output straight into place, cp over the same inode, install, mv)
 * and picked up by the watcher, or swapped directly with ph_reload_package.
 * Every failure case checks that the old build keeps serving with its
 * in-memory state and that the reason is recorded for status outputs.
 *
 * The load test runs the real plughost binary over HTTP on 127.0.0.1: 20
 * reloads of examples/counter under concurrent clients, zero failures, and
 * the handed-over count equals the successful increments.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "error.h"
#include "host.h"
#include "log.h"
#include "phfix.h"
#include "reload.h"
#include "store.h"

/* Watcher timing used by these tests (the defaults are 250 ms / 10 s). */
#define SETTLE_MS 150
/* Upper bound for "the new build serves" after a write. */
#define SERVE_WAIT_MS 6000

typedef struct fx {
    char *tmp;
    char *pk;  /* package_dirs entry: copies of the fixtures */
    char *lib; /* <pk>/reload_fx/reload_fx.so, the watched file */
    ph_host *h;
    ph_reloader *w;
    int builds;
    pid_t run_pid; /* a `plughost run` child still running, killed by teardown if a check failed */
} fx;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->tmp = tu_tmpdir();
    f->pk = tu_fmt("%s/pk", f->tmp);
    f->lib = tu_fmt("%s/reload_fx/reload_fx.so", f->pk);
    mkdir(f->pk, 0755);
    ph_log_set_level(PH_L_ERROR);
    ph_reload_set_drain_ms(10000);
    /* A deadlock fails the test instead of hanging the suite. */
    alarm(60);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    alarm(0);
    if (f->run_pid > 0) { /* a failed check left its host running: never outlive the test */
        kill(f->run_pid, SIGKILL);
        waitpid(f->run_pid, NULL, 0);
    }
    ph_reloader_stop(f->w);
    if (f->h)
        ph_host_stop(f->h);
    ph_host_free(f->h);
    ph_reload_set_drain_ms(10000);
    tu_rmtree(f->tmp);
    free(f->tmp);
    free(f->pk);
    free(f->lib);
    free(f);
    return 0;
}

/* Copies the staged fixtures `names` (NULL-terminated) into f->pk and starts a host over them. */
static ph_host *start_host(fx *f, const char *const *names)
{
    for (size_t i = 0; names[i]; i++) {
        char *src = fx_pkgdir(names[i]), *out = NULL;
        if (tu_run(&out, "cp -r '%s' '%s/'", src, f->pk) != 0)
            fail_msg("cannot copy %s: %s", src, out);
        free(out);
        free(src);
    }
    ph_config cfg;
    if (ph_config_defaults(&cfg))
        fail_msg("ph_config_defaults: %s", ph_error_last());
    for (size_t i = 0; i < cfg.n_package_dirs; i++)
        free(cfg.package_dirs[i]);
    cfg.package_dirs[0] = strdup(f->pk);
    cfg.n_package_dirs = 1;
    free(cfg.data_dir);
    cfg.data_dir = tu_fmt("%s/data", f->tmp);
    if (ph_host_open(&cfg, &f->h) || ph_host_start(f->h))
        fail_msg("cannot start the host: %s", ph_error_last());
    return f->h;
}

static void start_watcher(fx *f)
{
    ph_reload_opts o = {.settle_ms = SETTLE_MS};
    if (ph_reloader_start(f->h, &o, &f->w))
        fail_msg("ph_reloader_start: %s", ph_error_last());
}

static ph_instance *inst_of(fx *f, const char *name)
{
    ph_instance *inst = ph_router_instance(f->h->router, name);
    assert_non_null(inst);
    return inst;
}

/*
 * Compiles a package source with the real toolchain into `out` (a path), as
 * the CMake helper would. `src` is relative to PH_SOURCE_DIR; `flags` adds
 * -D... and linker choices.
 */
static void compile_to(const char *src, const char *name, const char *version, const char *flags,
                       const char *out)
{
    char *log = NULL;
    int rc = tu_run(&log,
                    "cc -shared -fPIC -fvisibility=hidden -I'%s/sdk/include' "
                    "-DPH_PACKAGE_NAME='\"%s\"' -DPH_PACKAGE_VERSION='\"%s\"' %s -o '%s' '%s/%s'",
                    tu_env("PH_SOURCE_DIR"), name, version, flags ? flags : "", out,
                    tu_env("PH_SOURCE_DIR"), src);
    if (rc != 0)
        fail_msg("compile of %s failed: %s", src, log);
    free(log);
}

/* A reload_fx build (version 1.0.0 unless given) in the temp dir; returns its path. */
static char *fx_build(fx *f, const char *version, const char *flags)
{
    char *out = tu_fmt("%s/build-%d.so", f->tmp, f->builds++);
    compile_to("tests/packages/reload_fx/reload_fx.c", "reload_fx", version ? version : "1.0.0",
               flags, out);
    return out;
}

static void sh(const char *fmt, const char *a, const char *b)
{
    char *out = NULL;
    char *cmd = tu_fmt(fmt, a, b);
    if (tu_run(&out, "%s", cmd) != 0)
        fail_msg("`%s` failed: %s", cmd, out);
    free(cmd);
    free(out);
}

/* What `cp src dst` does to an existing dst: truncate and rewrite the same inode. In-process, fast.
 */
static void cp_inplace(const char *src, const char *dst)
{
    char *data = NULL;
    size_t len = 0;
    FILE *in = fopen(src, "rb");
    assert_non_null(in);
    fseek(in, 0, SEEK_END);
    len = (size_t)ftell(in);
    rewind(in);
    data = malloc(len);
    assert_int_equal(fread(data, 1, len, in), len);
    fclose(in);
    FILE *out = fopen(dst, "r+b");
    if (!out)
        out = fopen(dst, "wb");
    assert_non_null(out);
    assert_int_equal(ftruncate(fileno(out), 0), 0);
    assert_int_equal(fwrite(data, 1, len, out), len);
    assert_int_equal(fclose(out), 0);
    free(data);
}

/* Calls address with JSON args (text or NULL); the integer result, or INT64_MIN with *rc set. */
static int64_t call_i64(ph_host *h, const char *address, const char *args_text, int *rc_out)
{
    json_t *args = args_text ? json_loads(args_text, 0, NULL) : NULL, *out = NULL;
    int rc = ph_router_call(h->router, NULL, address, args, 0, &out);
    int64_t v = rc ? INT64_MIN : json_integer_value(out);
    json_decref(out);
    json_decref(args);
    if (rc_out)
        *rc_out = rc;
    return v;
}

static int64_t tag_of(fx *f)
{
    int rc = 0;
    int64_t v = call_i64(f->h, "reload_fx.fx.tag", NULL, &rc);
    if (rc)
        fail_msg("reload_fx.fx.tag failed during/after a reload: %s", ph_error_last());
    return v;
}

/* Polls until reload_fx.fx.tag returns `want`; every call on the way must succeed. */
static double wait_tag(fx *f, int64_t want)
{
    double t0 = now_ms();
    while (now_ms() - t0 < SERVE_WAIT_MS) {
        if (tag_of(f) == want)
            return now_ms() - t0;
        sleep_ms(5);
    }
    fail_msg("build %lld never served within %d ms (still %lld; reload error: %s)", (long long)want,
             SERVE_WAIT_MS, (long long)tag_of(f),
             inst_of(f, "reload_fx")->reload_error ? inst_of(f, "reload_fx")->reload_error
                                                   : "none");
    return -1;
}

static ph_reload_info info_of(fx *f, const char *name)
{
    ph_reload_info ri;
    assert_int_equal(ph_reload_info_get(inst_of(f, name), &ri), 0);
    return ri;
}

static unsigned reloads_of(fx *f)
{
    ph_reload_info ri = info_of(f, "reload_fx");
    free(ri.error);
    return ri.reloads;
}

static unsigned failures_of(fx *f, const char *name)
{
    ph_reload_info ri = info_of(f, name);
    free(ri.error);
    return ri.failures;
}

/* Fails the test if the instance records a reload error. */
static void assert_no_error(fx *f, const char *name)
{
    ph_reload_info ri = info_of(f, name);
    if (ri.error)
        fail_msg("%s records a reload error: %s", name, ri.error);
}

static unsigned reloads_of_dep(fx *f)
{
    ph_reload_info ri = info_of(f, "reload_dep");
    free(ri.error);
    return ri.reloads;
}

static void incr_n(fx *f, int n)
{
    for (int i = 0; i < n; i++) {
        int rc = 0;
        call_i64(f->h, "reload_fx.fx.incr", NULL, &rc);
        assert_int_equal(rc, 0);
    }
}

static int64_t count_of(fx *f)
{
    return call_i64(f->h, "reload_fx.fx.count", NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Writers: the ways a new build lands on disk                          */
/* ------------------------------------------------------------------ */

/* The linker writes the output itself (bfd: unlink+create; gold; lld: temp + rename). */
static void linker_into_place(void **state, const char *ld, int tag)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    start_watcher(f);
    incr_n(f, 5);
    char *flags = tu_fmt("-fuse-ld=%s -DRELOAD_TAG=%d", ld, tag);
    compile_to("tests/packages/reload_fx/reload_fx.c", "reload_fx", "1.0.0", flags, f->lib);
    free(flags);
    wait_tag(f, tag);
    sleep_ms(SETTLE_MS + 400); /* any trailing event (bfd's chmod) must not reload again */
    assert_int_equal(reloads_of(f), 1);
    assert_int_equal(count_of(f), 5);
    assert_no_error(f, "reload_fx");
}

static void test_rebuild_bfd(void **state)
{
    linker_into_place(state, "bfd", 2);
}
static void test_rebuild_gold(void **state)
{
    linker_into_place(state, "gold", 3);
}
static void test_rebuild_lld(void **state)
{
    linker_into_place(state, "lld", 4);
}

static void test_cp_over_same_inode(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    start_watcher(f);
    incr_n(f, 2);
    char *b = fx_build(f, NULL, "-DRELOAD_TAG=7");
    struct stat before, after;
    assert_int_equal(stat(f->lib, &before), 0);
    sh("cp '%s' '%s'", b, f->lib);
    assert_int_equal(stat(f->lib, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino); /* the loaded file rewritten in place */
    wait_tag(f, 7);
    sleep_ms(SETTLE_MS + 300);
    assert_int_equal(reloads_of(f), 1);
    assert_int_equal(count_of(f), 2);
    free(b);
}

static void test_install(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    start_watcher(f);
    char *b = fx_build(f, NULL, "-DRELOAD_TAG=8");
    sh("install -m 0755 '%s' '%s'", b, f->lib);
    wait_tag(f, 8);
    sleep_ms(SETTLE_MS + 300);
    assert_int_equal(reloads_of(f), 1);
    free(b);
}

static void test_mv(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    start_watcher(f);
    char *b = fx_build(f, NULL, "-DRELOAD_TAG=9");
    sh("mv '%s' '%s'", b, f->lib);
    wait_tag(f, 9);
    sleep_ms(SETTLE_MS + 300);
    assert_int_equal(reloads_of(f), 1);
    free(b);
}

/* Ten writes within a second: at most two reloads, and the last content serves. */
static void test_burst_of_writes(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    char *b[10];
    for (int i = 0; i < 10; i++) {
        char *flags = tu_fmt("-DRELOAD_TAG=%d", 20 + i);
        b[i] = fx_build(f, NULL, flags);
        free(flags);
    }
    start_watcher(f);
    double last = now_ms(), widest = 0;
    for (int i = 0; i < 10; i++) {
        cp_inplace(b[i], f->lib);
        double now = now_ms();
        widest = i && now - last > widest ? now - last : widest;
        last = now;
        sleep_ms(60);
    }
    wait_tag(f, 29);
    sleep_ms(SETTLE_MS + 400);
    unsigned n = reloads_of(f);
    assert_int_equal(tag_of(f), 29);
    /* Coalescing is promised for writes closer than the settle time; a loaded machine
       can stretch a 60 ms pause past it, and then each write may be its own change. */
    if (widest < SETTLE_MS)
        assert_in_range(n, 1, 2);
    else
        fprintf(stderr,
                "NOTE: a pause between writes took %.0f ms (settle %d ms): not a burst "
                "on this machine now, %u reloads not checked\n",
                widest, SETTLE_MS, n);
    for (int i = 0; i < 10; i++)
        free(b[i]);
}

/* A rebuild with the same bytes, or a touch, reloads nothing. */
static void test_identical_rebuild(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    start_watcher(f);
    char *a = fx_build(f, NULL, "-DRELOAD_TAG=5");
    char *b = fx_build(f, NULL, "-DRELOAD_TAG=5");
    char *out = NULL;
    if (tu_run(&out, "cmp '%s' '%s'", a, b) != 0)
        fail_msg("the compiler is not deterministic here: %s", out);
    free(out);
    sh("cp '%s' '%s'", a, f->lib);
    wait_tag(f, 5);
    sleep_ms(SETTLE_MS + 300);
    assert_int_equal(reloads_of(f), 1);
    /* The same build again, through the linker path and a touch. */
    sh("mv '%s' '%s'", b, f->lib);
    sleep_ms(SETTLE_MS + 500);
    sh("touch '%s'%s", f->lib, "");
    sleep_ms(SETTLE_MS + 500);
    assert_int_equal(reloads_of(f), 1);
    assert_int_equal(failures_of(f, "reload_fx"), 0);
    int swapped = -1;
    assert_int_equal(ph_reload_package(f->h, "reload_fx", &swapped), 0);
    assert_int_equal(swapped, 0);
    free(a);
    free(b);
}

/* Deleting the file keeps the package serving; recreating it reloads. */
static void test_delete_then_recreate(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    start_watcher(f);
    incr_n(f, 3);
    assert_int_equal(unlink(f->lib), 0);
    sleep_ms(SETTLE_MS + 500);
    assert_int_equal(tag_of(f), 1);
    assert_int_equal(count_of(f), 3);
    assert_int_equal(reloads_of(f), 0);
    compile_to("tests/packages/reload_fx/reload_fx.c", "reload_fx", "1.0.0", "-DRELOAD_TAG=6",
               f->lib);
    wait_tag(f, 6);
    assert_int_equal(count_of(f), 3);
    assert_int_equal(reloads_of(f), 1);
}

/* ------------------------------------------------------------------ */
/* Bad builds: the old version keeps serving with its state             */
/* ------------------------------------------------------------------ */

/*
 * Puts `bad` in place, reloads directly, and checks: refused with `code`,
 * the reason (containing `why`) recorded, the old build and its count
 * still serving, and the same bad build not retried.
 */
static void refuse(fx *f, const char *bad, int code, const char *why)
{
    unsigned reloads = reloads_of(f), failures = failures_of(f, "reload_fx");
    int64_t tag = tag_of(f), count = count_of(f);
    sh("cp '%s' '%s'", bad, f->lib);
    int swapped = -1;
    int rc = ph_reload_package(f->h, "reload_fx", &swapped);
    assert_int_equal(rc, code);
    assert_int_equal(swapped, 0);
    assert_true(tu_contains(ph_error_last(), why));
    ph_reload_info ri = info_of(f, "reload_fx");
    assert_non_null(ri.error);
    assert_true(tu_contains(ri.error, why));
    assert_int_equal(ri.reloads, reloads);
    assert_int_equal(ri.failures, failures + 1);
    free(ri.error);
    assert_int_equal(atomic_load(&inst_of(f, "reload_fx")->state), PH_INST_RUNNING);
    assert_int_equal(tag_of(f), tag);
    assert_int_equal(count_of(f), count);
    incr_n(f, 1);
    assert_int_equal(count_of(f), count + 1);
    /* Remembered as bad: a change without a name (the watcher) does not try it again... */
    assert_int_equal(ph_host_reconcile(f->h, NULL, NULL, NULL), 0);
    assert_int_equal(failures_of(f, "reload_fx"), failures + 1);
    /* ...while `plughost reload NAME` does, and says again why it fails. */
    assert_int_equal(ph_reload_package(f->h, "reload_fx", &swapped), code);
    assert_true(tu_contains(ph_error_last(), why));
    assert_int_equal(failures_of(f, "reload_fx"), failures + 2);
}

static void set_version(fx *f, const char *version);
static int reconfigure_same(fx *f);

static void test_bad_builds_keep_old(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    incr_n(f, 4);
    char *good = fx_build(f, NULL, "-DRELOAD_TAG=2");
    struct stat st;
    assert_int_equal(stat(good, &st), 0);

    /* Truncated: the first half of a good build (a linker still writing). */
    char *half = tu_fmt("%s/half.so", f->tmp);
    char *cmd = tu_fmt("head -c %lld '%%s' > '%%s'", (long long)st.st_size / 2);
    sh(cmd, good, half);
    free(cmd);
    refuse(f, half, PH_ELOAD, "is truncated");

    char *junk = tu_write(f->tmp, "junk.so", "this is not a shared object, just text\n");
    refuse(f, junk, PH_ELOAD, "is not a 64-bit ELF shared object");

    char *abi = fx_build(f, NULL, "-DRELOAD_TAG=3 -DWRONG_ABI");
    refuse(f, abi, PH_EABI, "built against SDK ABI 99 but this host supports ABI 1");

    char *prep = fx_build(f, NULL, "-DRELOAD_TAG=4 -DFAIL_PREPARE");
    refuse(f, prep, PH_EPACKAGE, "prepare failed: prepare of build 4 refuses");

    char *start = fx_build(f, NULL, "-DRELOAD_TAG=5 -DFAIL_START");
    refuse(f, start, PH_EPACKAGE, "start failed: start of build 5 refuses");

    /* The manifest disagrees with the .so: refused; fixing package.ini makes the same .so load. */
    char *v11 = fx_build(f, "1.1.0", "-DRELOAD_TAG=11");
    refuse(f, v11, PH_EMANIFEST, "the .so is version 1.1.0 but");
    char *ini = tu_fmt("%s/reload_fx/package.ini", f->pk);
    sh("sed -i 's/^version = 1.0.0/version = 1.1.0/' '%s'%s", ini, "");
    int swapped = 0;
    assert_int_equal(ph_reload_package(f->h, "reload_fx", &swapped), 0);
    assert_int_equal(swapped, 1);
    assert_int_equal(tag_of(f), 11);

    /* A good build after all that: swapped, count handed over, error cleared. */
    int64_t count = count_of(f);
    char *good11 = fx_build(f, "1.1.0", "-DRELOAD_TAG=2");
    sh("cp '%s' '%s'", good11, f->lib);
    free(good11);
    assert_int_equal(ph_reload_package(f->h, "reload_fx", &swapped), 0);
    assert_int_equal(swapped, 1);
    assert_int_equal(tag_of(f), 2);
    assert_int_equal(count_of(f), count);
    ph_reload_info ri = info_of(f, "reload_fx");
    assert_null(ri.error);
    assert_int_equal(ri.reloads, 2);
    assert_int_equal(ri.failures, 12); /* each bad build: its reload, then one explicit retry */
    free(ini);
    free(half);
    free(junk);
    free(abi);
    free(prep);
    free(start);
    free(v11);
    free(good);
}

/* The watcher path reports a bad build too, and the next good one loads. */
static void test_watcher_bad_then_good(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    start_watcher(f);
    incr_n(f, 2);
    char *bad = fx_build(f, NULL, "-DRELOAD_TAG=3 -DFAIL_START");
    char *good = fx_build(f, NULL, "-DRELOAD_TAG=4");
    sh("mv '%s' '%s'", bad, f->lib);
    double t0 = now_ms();
    while (failures_of(f, "reload_fx") == 0 && now_ms() - t0 < SERVE_WAIT_MS)
        sleep_ms(10);
    ph_reload_info ri = info_of(f, "reload_fx");
    assert_int_equal(ri.failures, 1);
    assert_true(tu_contains(ri.error, "start of build 3 refuses"));
    free(ri.error);
    assert_int_equal(tag_of(f), 1);
    assert_int_equal(count_of(f), 2);
    sh("mv '%s' '%s'", good, f->lib);
    wait_tag(f, 4);
    assert_int_equal(count_of(f), 2);
    assert_no_error(f, "reload_fx");
    free(bad);
    free(good);
}

/* A build with an STB_GNU_UNIQUE symbol (g++ default for inline statics) is refused with a fix. */
static void test_gnu_unique_refused(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    /* reload_fx.c plus one C++ inline function-local static, default visibility. */
    char *cpp = tu_write(f->tmp, "uniq.cpp",
                         "inline int &shared_counter() { static int c; return c; }\n"
                         "extern \"C\" int bump() { return ++shared_counter(); }\n");
    char *uo = tu_fmt("%s/uniq.o", f->tmp), *out = NULL, *so = tu_fmt("%s/uniq.so", f->tmp);
    if (tu_run(&out, "g++ -c -fPIC -o '%s' '%s'", uo, cpp) != 0)
        fail_msg("g++: %s", out);
    free(out);
    char *flags = tu_fmt("-DRELOAD_TAG=2 '%s' -lstdc++", uo);
    compile_to("tests/packages/reload_fx/reload_fx.c", "reload_fx", "1.0.0", flags, so);
    free(flags);
    refuse(f, so, PH_ELOAD, "defines the STB_GNU_UNIQUE symbol '_ZZ14shared_countervE1c'");
    ph_reload_info ri = info_of(f, "reload_fx");
    assert_true(tu_contains(ri.error, "-fno-gnu-unique"));
    free(ri.error);
    /* Built as advised, the same code reloads. */
    if (tu_run(&out, "g++ -c -fPIC -fno-gnu-unique -o '%s' '%s'", uo, cpp) != 0)
        fail_msg("g++: %s", out);
    free(out);
    flags = tu_fmt("-DRELOAD_TAG=3 '%s' -lstdc++", uo);
    compile_to("tests/packages/reload_fx/reload_fx.c", "reload_fx", "1.0.0", flags, f->lib);
    free(flags);
    int swapped = 0;
    if (ph_reload_package(f->h, "reload_fx", &swapped))
        fail_msg("the -fno-gnu-unique build was refused: %s", ph_error_last());
    assert_int_equal(swapped, 1);
    assert_int_equal(tag_of(f), 3);
    /* -z nodelete is refused too. */
    compile_to("tests/packages/reload_fx/reload_fx.c", "reload_fx", "1.0.0",
               "-DRELOAD_TAG=4 -Wl,-z,nodelete", so);
    refuse(f, so, PH_ELOAD, "is marked NODELETE (linked with -z nodelete)");
    free(cpp);
    free(uo);
    free(so);
}

/* A failing upgrade script: the old version keeps serving with its state and its data. */
static void test_failing_migration_keeps_old(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    char *m1 = fx_build(f, NULL, "-DRELOAD_TAG=2 -DWITH_MODEL");
    sh("cp '%s' '%s'", m1, f->lib);
    int swapped = 0;
    if (ph_reload_package(f->h, "reload_fx", &swapped))
        fail_msg("adding a model failed: %s", ph_error_last());
    assert_int_equal(swapped, 1);
    incr_n(f, 3);
    int rc = 0;
    call_i64(f->h, "reload_fx.item.new", "{\"name\":\"kept\"}", &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(call_i64(f->h, "reload_fx.item.count", NULL, NULL), 1);
    /* 1.1.0 with an upgrade script that cannot run. */
    char *sql = tu_fmt("%s/reload_fx/sql", f->pk);
    free(tu_write(sql, "upgrade-1.0.0-1.1.0.sql", "ALTER TABLE no_such_table ADD COLUMN x;\n"));
    char *m2 = fx_build(f, "1.1.0", "-DRELOAD_TAG=3 -DWITH_MODEL");
    set_version(f, "1.1.0");
    refuse(f, m2, PH_EMIGRATION, "no_such_table");
    assert_int_equal(call_i64(f->h, "reload_fx.item.count", NULL, NULL), 1);
    assert_string_equal(inst_of(f, "reload_fx")->manifest->version_text, "1.0.0");
    free(sql);
    free(m1);
    free(m2);
}

/*
 * A new version whose migration succeeds but whose start fails: the
 * migration is rolled back with the code, so the old version serves the old
 * data under the old schema version.
 */
static void test_start_failure_rolls_back_migration(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    char *m1 = fx_build(f, NULL, "-DRELOAD_TAG=2 -DWITH_MODEL");
    sh("cp '%s' '%s'", m1, f->lib);
    int swapped = 0;
    if (ph_reload_package(f->h, "reload_fx", &swapped))
        fail_msg("adding a model failed: %s", ph_error_last());
    int rc = 0;
    call_i64(f->h, "reload_fx.item.new", "{\"name\":\"kept\"}", &rc);
    assert_int_equal(rc, 0);
    char *sql = tu_fmt("%s/reload_fx/sql", f->pk);
    free(tu_write(sql, "upgrade-1.0.0-1.1.0.sql", "UPDATE item SET name = name || '-migrated';\n"));
    char *m2 = fx_build(f, "1.1.0", "-DRELOAD_TAG=3 -DWITH_MODEL -DFAIL_START");
    set_version(f, "1.1.0");
    refuse(f, m2, PH_EPACKAGE, "start failed");
    json_t *args = json_pack("{s:i}", "id", 1), *out = NULL;
    assert_int_equal(ph_router_call(f->h->router, NULL, "reload_fx.item.get", args, 0, &out), 0);
    assert_string_equal(json_string_value(json_object_get(out, "name")), "kept");
    json_decref(out);
    json_decref(args);
    char *installed = NULL;
    assert_int_equal(ph_store_installed_version(f->h->cfg.data_dir, "reload_fx", &installed), 0);
    assert_string_equal(installed, "1.0.0");
    free(installed);
    free(sql);
    free(m1);
    free(m2);
}

/* ------------------------------------------------------------------ */
/* Calls during a swap                                                  */
/* ------------------------------------------------------------------ */

typedef struct bg_call {
    ph_host *h;
    const char *address;
    char args[64];
    int delay_ms;      /* before calling */
    atomic_int *after; /* or, when set: once this flag (a gate's `closed`) is set (at most 10 s) */
    int rc;
    int64_t value;
    char err[512];
    pthread_t t;
} bg_call;

static void *bg_run(void *arg)
{
    bg_call *c = arg;
    if (c->delay_ms)
        sleep_ms(c->delay_ms);
    for (int i = 0; c->after && !atomic_load(c->after) && i < 10000; i++)
        sleep_ms(1);
    c->value = call_i64(c->h, c->address, c->args[0] ? c->args : NULL, &c->rc);
    snprintf(c->err, sizeof c->err, "%s", c->rc ? ph_error_last() : "");
    return NULL;
}

static void bg_start_after(bg_call *c, ph_host *h, const char *address, const char *args,
                           int delay_ms, atomic_int *after)
{
    memset(c, 0, sizeof *c);
    c->h = h;
    c->address = address;
    snprintf(c->args, sizeof c->args, "%s", args ? args : "");
    c->delay_ms = delay_ms;
    c->after = after;
    assert_int_equal(pthread_create(&c->t, NULL, bg_run, c), 0);
}

static void bg_start(bg_call *c, ph_host *h, const char *address, const char *args, int delay_ms)
{
    bg_start_after(c, h, address, args, delay_ms, NULL);
}

static void bg_join(bg_call *c)
{
    pthread_join(c->t, NULL);
    if (c->rc)
        fail_msg("%s failed during a reload: %s", c->address, c->err);
}

/* A call that outlives the drain bound aborts the reload, not the call. */
static void test_stuck_call_drain_timeout(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    incr_n(f, 3);
    ph_reload_set_drain_ms(200);
    char *b = fx_build(f, NULL, "-DRELOAD_TAG=2");
    sh("cp '%s' '%s'", b, f->lib);
    bg_call c;
    /* 4 s: the new build is scanned in a child before the drain, which on a loaded machine
     * under a sanitizer takes a while; the call must still run when the drain times out */
    bg_start(&c, f->h, "reload_fx.fx.slow", "{\"ms\":4000}", 0);
    sleep_ms(150); /* the call is in flight */
    double t0 = now_ms();
    int swapped = -1;
    int rc = ph_reload_package(f->h, "reload_fx", &swapped);
    double took = now_ms() - t0;
    assert_int_equal(rc, PH_EBUSY);
    assert_int_equal(swapped, 0);
    assert_true(took >= 190 && took < 3000); /* gave up at the drain bound, not the call's end */
    assert_true(tu_contains(ph_error_last(), "the drain timed out, reload abandoned"));
    assert_true(tu_contains(ph_error_last(), "1 call(s) still running after 200 ms"));
    ph_reload_info ri = info_of(f, "reload_fx");
    assert_true(tu_contains(ri.error, "the drain timed out"));
    free(ri.error);
    /* The gate is open again: the old build serves while the stuck call goes on. */
    assert_int_equal(tag_of(f), 1);
    assert_int_equal(count_of(f), 3);
    bg_join(&c);
    assert_int_equal(c.value, 1);
    /* Not the build's fault: the same file is tried again and swaps now. */
    assert_int_equal(ph_reload_package(f->h, "reload_fx", &swapped), 0);
    assert_int_equal(swapped, 1);
    assert_int_equal(tag_of(f), 2);
    assert_int_equal(count_of(f), 3);
    free(b);
}

/*
 * A call that arrives while a long call drains is queued for the whole
 * drain, past its own hold time, and served by the new build: a reload
 * waiting for one slow call does not refuse every new call meanwhile.
 */
static void test_call_held_through_long_drain(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    ph_router_set_hold_ms(f->h->router, 200);
    ph_reload_set_drain_ms(5000);
    char *b = fx_build(f, NULL, "-DRELOAD_TAG=2");
    sh("cp '%s' '%s'", b, f->lib);
    bg_call slow, late;
    /* the slow call outlasts the new build's scan (slow on a loaded machine) by far; the late
     * one comes once the gate is closed and is held ~1-2 s, past its hold of 200 ms */
    bg_start(&slow, f->h, "reload_fx.fx.slow", "{\"ms\":3000}", 0);
    bg_start_after(&late, f->h, "reload_fx.fx.tag", NULL, 0, &inst_of(f, "reload_fx")->gate.closed);
    sleep_ms(100);
    int swapped = 0;
    if (ph_reload_package(f->h, "reload_fx", &swapped))
        fail_msg("reload failed: %s", ph_error_last());
    assert_int_equal(swapped, 1);
    bg_join(&slow);
    bg_join(&late); /* fails with "is being reloaded" if it was refused after 200 ms */
    assert_int_equal(slow.value, 1);
    assert_int_equal(late.value, 2);
    free(b);
}

/* A change the watcher had to abandon for a stuck call is applied once the call ends. */
static void test_abandoned_change_retried(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    incr_n(f, 2);
    ph_reload_set_drain_ms(200);
    start_watcher(f);
    /* built before the call starts: compiling on a loaded machine can outlast the call */
    char *b = fx_build(f, NULL, "-DRELOAD_TAG=2");
    bg_call c;
    bg_start(&c, f->h, "reload_fx.fx.slow", "{\"ms\":3000}", 0);
    sleep_ms(100);
    sh("cp '%s' '%s'", b, f->lib);
    bg_join(&c); /* meanwhile the watcher's swap timed out at the drain */
    /* Tried once, not again while the call still ran (each try holds new calls at the gate). */
    assert_int_equal(failures_of(f, "reload_fx"), 1);
    wait_tag(f, 2); /* no new file event: the abandoned change is retried once idle */
    assert_int_equal(count_of(f), 2);
    free(b);
}

/*
 * save() of the running build or restore() of the new one failing refuses
 * the reload: the old build serves again with its state (no cold start).
 */
static void test_state_handover_failure_keeps_old(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    char *nosave = fx_build(f, NULL, "-DRELOAD_TAG=7 -DFAIL_SAVE");
    sh("cp '%s' '%s'", nosave, f->lib);
    int swapped = 0;
    assert_int_equal(ph_reload_package(f->h, "reload_fx", &swapped), 0);
    assert_int_equal(tag_of(f), 7);
    incr_n(f, 3);
    char *good = fx_build(f, NULL, "-DRELOAD_TAG=8");
    sh("cp '%s' '%s'", good, f->lib);
    assert_int_equal(ph_reload_package(f->h, "reload_fx", &swapped), PH_EPACKAGE);
    assert_true(tu_contains(ph_error_last(), "instance 'reload_fx': the running build's save() "
                                             "failed (save of build 7 refuses), so its state "
                                             "could not be handed over; "
                                             "reload refused, the old build keeps serving "
                                             "(`plughost disable reload_fx` then `plughost "
                                             "enable reload_fx` starts the new build without "
                                             "the state)"));
    assert_int_equal(tag_of(f), 7);
    assert_int_equal(count_of(f), 3);
    assert_int_equal(atomic_load(&inst_of(f, "reload_fx")->state), PH_INST_RUNNING);
    /* As the message says: disable and enable start the build on disk cold. */
    char *saves = fx_build(f, NULL, "-DRELOAD_TAG=9");
    sh("cp '%s' '%s'", saves, f->lib);
    int n = 0;
    assert_int_equal(ph_host_unload(f->h, "reload_fx", &n), 0);
    assert_int_equal(ph_host_enable(f->h, "reload_fx", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(tag_of(f), 9);
    incr_n(f, 1);
    assert_int_equal(count_of(f), 1);
    /* Now from a build that saves to one whose restore fails. */
    char *norestore = fx_build(f, NULL, "-DRELOAD_TAG=10 -DFAIL_RESTORE");
    sh("cp '%s' '%s'", norestore, f->lib);
    assert_int_equal(ph_reload_package(f->h, "reload_fx", &swapped), PH_EPACKAGE);
    assert_true(tu_contains(ph_error_last(), "restore() of the new build failed on state version "
                                             "1 (restore of build 10 refuses); reload refused, "
                                             "the old build keeps serving with its state"));
    assert_int_equal(tag_of(f), 9);
    assert_int_equal(count_of(f), 1);
    free(nosave);
    free(good);
    free(saves);
    free(norestore);
}

/*
 * Semver is held to the highest version of the major that ran: going back a
 * version (allowed) and then forward again cannot drop what it had.
 */
static void test_semver_after_going_back(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    int swapped = 0;
    char *v12 = fx_build(f, "1.2.0", "-DRELOAD_TAG=2");
    sh("cp '%s' '%s'", v12, f->lib);
    set_version(f, "1.2.0");
    assert_int_equal(ph_reload_package(f->h, "reload_fx", &swapped), 0);
    char *v11 = fx_build(f, "1.1.0", "-DRELOAD_TAG=3 -DNO_SLOW");
    sh("cp '%s' '%s'", v11, f->lib);
    set_version(f, "1.1.0");
    assert_int_equal(ph_reload_package(f->h, "reload_fx", &swapped), 0); /* going back */
    assert_int_equal(tag_of(f), 3);
    char *v13 = fx_build(f, "1.3.0", "-DRELOAD_TAG=4 -DNO_SLOW");
    sh("cp '%s' '%s'", v13, f->lib);
    set_version(f, "1.3.0");
    assert_int_equal(ph_reload_package(f->h, "reload_fx", &swapped), PH_EABI);
    assert_true(tu_contains(ph_error_last(), "the new build of reload_fx 1.2.0 -> 1.3.0 breaks "
                                             "its declared interface without a new major "
                                             "version (semver): removed method 'fx.slow'"));
    assert_int_equal(tag_of(f), 3);
    free(v12);
    free(v11);
    free(v13);
}

/* A version bump applied by SIGHUP is a hot swap: the state is handed over. */
static void test_sighup_version_bump_keeps_state(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    incr_n(f, 4);
    char *b = fx_build(f, "1.1.0", "-DRELOAD_TAG=3");
    sh("cp '%s' '%s'", b, f->lib);
    set_version(f, "1.1.0");
    if (reconfigure_same(f))
        fail_msg("reconfigure: %s", ph_error_last());
    assert_int_equal(tag_of(f), 3);
    assert_int_equal(count_of(f), 4);
    assert_string_equal(inst_of(f, "reload_fx")->manifest->version_text, "1.1.0");
    free(b);
}

/*
 * Calls in flight during a swap call back into the same package (fx ->
 * fx) and across packages (dep -> fx -> fx); calls arriving while the gate
 * is closed wait and are served by the new build. No deadlock, no failure.
 */
static void test_nested_and_cross_calls(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", "reload_dep", NULL};
    start_host(f, pk);
    char *b = fx_build(f, NULL, "-DRELOAD_TAG=2");
    sh("cp '%s' '%s'", b, f->lib);
    bg_call self, cross, late_fx, late_dep;
    bg_start(&self, f->h, "reload_fx.fx.nested", "{\"ms\":400}", 0);
    bg_start(&cross, f->h, "reload_dep.dep.roundtrip", "{\"ms\":400}", 0);
    /* These arrive while the reload waits for the two above to drain. */
    bg_start(&late_fx, f->h, "reload_fx.fx.tag", NULL, 250);
    bg_start(&late_dep, f->h, "reload_dep.dep.relay", "{\"ms\":0}", 250);
    sleep_ms(100);
    double t0 = now_ms();
    int swapped = 0;
    int rc = ph_reload_package(f->h, "reload_fx", &swapped);
    double took = now_ms() - t0;
    if (rc)
        fail_msg("reload failed: %s", ph_error_last());
    assert_int_equal(swapped, 1);
    assert_true(took >= 200 && took < 3000); /* it waited for the drain, then went on */
    bg_join(&self);
    bg_join(&cross);
    bg_join(&late_fx);
    bg_join(&late_dep);
    /* The inner calls ran while the gate was closed, on the build that was inside. */
    assert_int_equal(self.value, 1);
    assert_int_equal(cross.value, 1);
    /* Held at the gate, then served by the new build. */
    assert_int_equal(late_fx.value, 2);
    assert_int_equal(late_dep.value, 2);
    free(b);
}

/* A reload requested from inside a call of the same instance is refused at once. */
static void test_reload_from_inside_refused(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    ph_instance *inst = inst_of(f, "reload_fx");
    char *b = fx_build(f, NULL, "-DRELOAD_TAG=2");
    sh("cp '%s' '%s'", b, f->lib);
    ph_frame fr;
    ph_frame_push(&fr, inst);
    int swapped = 0;
    int rc = ph_reload_package(f->h, "reload_fx", &swapped);
    ph_frame_pop(&fr);
    assert_int_equal(rc, PH_ESTATE);
    assert_true(
        tu_contains(ph_error_last(), "cannot be reloaded from inside one of its own calls"));
    assert_int_equal(ph_reload_package(f->h, "reload_fx", &swapped), 0);
    assert_int_equal(swapped, 1);
    free(b);
}

/* Builds the host's configuration again, as SIGHUP does, over the same package directory. */
static int reconfigure_same(fx *f)
{
    ph_config cfg;
    if (ph_config_defaults(&cfg))
        fail_msg("ph_config_defaults: %s", ph_error_last());
    for (size_t i = 0; i < cfg.n_package_dirs; i++)
        free(cfg.package_dirs[i]);
    cfg.package_dirs[0] = strdup(f->pk);
    cfg.n_package_dirs = 1;
    free(cfg.data_dir);
    cfg.data_dir = tu_fmt("%s/data", f->tmp);
    return ph_host_reconfigure(f->h, &cfg);
}

/*
 * A configuration reload after a hot reload keeps the reloaded instance as
 * it is (same build, state and count), and it finds a package installed
 * since the start.
 */
static void test_sighup_after_reload_keeps_instance(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    incr_n(f, 3);
    char *b2 = fx_build(f, "1.1.0", "-DRELOAD_TAG=2");
    set_version(f, "1.1.0");
    sh("cp '%s' '%s'", b2, f->lib);
    int swapped = 0;
    if (ph_reload_package(f->h, "reload_fx", &swapped))
        fail_msg("reload: %s", ph_error_last());
    assert_int_equal(swapped, 1);
    ph_instance *before = inst_of(f, "reload_fx");
    char *dep = fx_pkgdir("reload_dep"), *out = NULL;
    if (tu_run(&out, "cp -r '%s' '%s/'", dep, f->pk) != 0)
        fail_msg("cannot copy %s: %s", dep, out);
    free(out);
    free(dep);
    if (reconfigure_same(f))
        fail_msg("reconfigure: %s", ph_error_last());
    assert_ptr_equal(inst_of(f, "reload_fx"), before);
    assert_int_equal(tag_of(f), 2);
    assert_int_equal(count_of(f), 3);
    assert_string_equal(inst_of(f, "reload_fx")->manifest->version_text, "1.1.0");
    /* the package copied in since the start now runs */
    assert_int_equal(atomic_load(&inst_of(f, "reload_dep")->state), PH_INST_RUNNING);
    free(b2);
}

/* Unloading an instance with a call inside waits, then refuses; the call finishes intact. */
static void test_unload_busy_refused(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    f->h->drain_ms = 200;
    bg_call c;
    bg_start(&c, f->h, "reload_fx.fx.slow", "{\"ms\":1500}", 0);
    usleep(200 * 1000);
    int n = 0;
    assert_int_equal(ph_host_unload(f->h, "reload_fx", &n), PH_EBUSY);
    assert_true(
        tu_contains(ph_error_last(), "instance 'reload_fx' is still busy; nothing was changed"));
    assert_int_equal(atomic_load(&inst_of(f, "reload_fx")->state), PH_INST_RUNNING);
    bg_join(&c);
    assert_int_equal(c.rc, 0);
    assert_int_equal(ph_host_unload(f->h, "reload_fx", &n), 0);
    assert_int_equal(n, 1);
}

/* A package disabled by management stays off across a configuration reload. */
static void test_disable_survives_reconfigure(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    int n = 0, swapped = 0;
    assert_int_equal(ph_host_unload(f->h, "reload_fx", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ph_reload_package(f->h, "reload_fx", &swapped), PH_ESTATE);
    assert_true(tu_contains(ph_error_last(), "instance 'reload_fx' is disabled; `plughost enable "
                                             "reload_fx` loads the build on disk and starts it"));
    if (reconfigure_same(f))
        fail_msg("reconfigure: %s", ph_error_last());
    ph_instance *inst = NULL;
    for (size_t i = 0; i < f->h->plan.n; i++)
        if (f->h->insts[i] && strcmp(f->h->insts[i]->name, "reload_fx") == 0)
            inst = f->h->insts[i];
    assert_non_null(inst);
    assert_int_equal(atomic_load(&inst->state), PH_INST_STOPPED);
    assert_null(ph_router_instance(f->h->router, "reload_fx"));
    assert_int_equal(ph_host_enable(f->h, "reload_fx", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(atomic_load(&inst_of(f, "reload_fx")->state), PH_INST_RUNNING);
    assert_int_equal(count_of(f), 0);
}

/* Package code run by a change (prepare/start/stop) cannot start another: it would deadlock. */
static void test_change_inside_a_change_refused(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    int n = 0;
    assert_int_equal(ph_host_lock_changes(f->h), 0);
    assert_int_equal(ph_host_unload(f->h, "reload_fx", &n), PH_ESTATE);
    assert_true(tu_contains(ph_error_last(), "packages cannot be reloaded, unloaded or enabled "
                                             "from prepare, start or stop"));
    assert_int_equal(ph_reload_package(f->h, "reload_fx", &n), PH_ESTATE);
    assert_int_equal(ph_host_enable(f->h, "reload_fx", &n), PH_ESTATE);
    ph_host_unlock_changes(f->h);
    assert_int_equal(ph_host_unload(f->h, "reload_fx", &n), 0);
}

/* ------------------------------------------------------------------ */
/* Dependencies                                                         */
/* ------------------------------------------------------------------ */

static void set_version(fx *f, const char *version)
{
    char *ini = tu_fmt("%s/reload_fx/package.ini", f->pk);
    char *expr = tu_fmt("s/^version = .*/version = %s/", version);
    sh("sed -i '%s' '%s'", expr, ini);
    free(expr);
    free(ini);
}

static void test_dependency_compatible(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", "reload_dep", NULL};
    start_host(f, pk);
    incr_n(f, 2);
    assert_int_equal(call_i64(f->h, "reload_dep.dep.relay", "{\"ms\":0}", NULL), 1);
    char *b = fx_build(f, "1.1.0", "-DRELOAD_TAG=5");
    sh("cp '%s' '%s'", b, f->lib);
    set_version(f, "1.1.0");
    int swapped = 0;
    if (ph_reload_package(f->h, "reload_fx", &swapped))
        fail_msg("compatible reload refused: %s", ph_error_last());
    assert_int_equal(swapped, 1);
    /* The dependent was not touched and reaches the new version. */
    assert_int_equal(reloads_of_dep(f), 0);
    assert_int_equal(call_i64(f->h, "reload_dep.dep.relay", "{\"ms\":0}", NULL), 5);
    assert_string_equal(inst_of(f, "reload_fx")->manifest->version_text, "1.1.0");
    assert_int_equal(count_of(f), 2);
    free(b);
}

static void test_dependency_incompatible(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", "reload_dep", NULL};
    start_host(f, pk);
    incr_n(f, 2);
    char *b = fx_build(f, "2.0.0", "-DRELOAD_TAG=6");
    sh("cp '%s' '%s'", b, f->lib);
    set_version(f, "2.0.0");
    int swapped = 0;
    int rc = ph_reload_package(f->h, "reload_fx", &swapped);
    assert_int_equal(rc, PH_EDEPENDENCY);
    assert_int_equal(swapped, 0);
    const char *want = "package 'reload_fx' 2.0.0 would break 'reload_dep', which requires "
                       "reload_fx ^1.0; not reloaded, nothing was changed. To upgrade both "
                       "together, put a version of 'reload_dep' whose range accepts "
                       "reload_fx 2.0.0 in place as well, then run `plughost reload reload_fx`";
    assert_true(tu_contains(ph_error_last(), want));
    ph_reload_info ri = info_of(f, "reload_fx");
    assert_true(tu_contains(ri.error, want));
    free(ri.error);
    assert_int_equal(tag_of(f), 1);
    assert_int_equal(count_of(f), 2);
    assert_int_equal(call_i64(f->h, "reload_dep.dep.relay", "{\"ms\":0}", NULL), 1);
    assert_string_equal(inst_of(f, "reload_fx")->manifest->version_text, "1.0.0");
    free(b);
}

/* ------------------------------------------------------------------ */
/* State hand-over under concurrent calls (in-process)                  */
/* ------------------------------------------------------------------ */

typedef struct hammer {
    ph_host *h;
    atomic_int *stop;
    long ok, failed;
    char err[256];
    pthread_t t;
} hammer;

static void *hammer_run(void *arg)
{
    hammer *m = arg;
    while (!atomic_load(m->stop)) {
        int rc = 0;
        call_i64(m->h, "reload_fx.fx.incr", NULL, &rc);
        if (rc) {
            m->failed++;
            snprintf(m->err, sizeof m->err, "%s", ph_error_last());
        } else {
            m->ok++;
        }
    }
    return NULL;
}

static void test_state_handover_under_calls(void **state)
{
    fx *f = *state;
    static const char *const pk[] = {"reload_fx", NULL};
    start_host(f, pk);
    char *b[2] = {fx_build(f, NULL, "-DRELOAD_TAG=2"), fx_build(f, NULL, "-DRELOAD_TAG=3")};
    atomic_int stop = 0;
    hammer m[4];
    for (int i = 0; i < 4; i++) {
        memset(&m[i], 0, sizeof m[i]);
        m[i].h = f->h;
        m[i].stop = &stop;
        pthread_create(&m[i].t, NULL, hammer_run, &m[i]);
    }
    for (int i = 0; i < 10; i++) {
        sleep_ms(50);
        sh("cp '%s' '%s'", b[i % 2], f->lib);
        int swapped = 0;
        if (ph_reload_package(f->h, "reload_fx", &swapped))
            fail_msg("reload %d failed: %s", i, ph_error_last());
        assert_int_equal(swapped, 1);
    }
    sleep_ms(50);
    atomic_store(&stop, 1);
    long ok = 0, failed = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(m[i].t, NULL);
        ok += m[i].ok;
        failed += m[i].failed;
        if (m[i].failed)
            print_error("thread %d: %s\n", i, m[i].err);
    }
    assert_int_equal(failed, 0);
    assert_true(ok > 100);
    assert_int_equal(count_of(f), ok);
    assert_int_equal(reloads_of(f), 10);
    ph_reload_info ri = info_of(f, "reload_fx");
    assert_true(ri.last_hold_ms > 0 && ri.last_hold_ms < 1000);
    print_message("handed over %ld increments across 10 reloads; last gate hold %.3f ms\n", ok,
                  ri.last_hold_ms);
    free(b[0]);
    free(b[1]);
}

/* A failed instance is started by its next good build. */
static void test_failed_instance_revived(void **state)
{
    fx *f = *state;
    /* Stage reload_fx with a build whose start fails. */
    char *src = fx_pkgdir("reload_fx"), *out = NULL;
    if (tu_run(&out, "cp -r '%s' '%s/'", src, f->pk) != 0)
        fail_msg("cp: %s", out);
    free(out);
    free(src);
    char *bad = fx_build(f, NULL, "-DRELOAD_TAG=2 -DFAIL_START");
    sh("cp '%s' '%s'", bad, f->lib);
    static const char *const none[] = {NULL};
    start_host(f, none);
    ph_instance *inst = inst_of(f, "reload_fx");
    assert_int_equal(atomic_load(&inst->state), PH_INST_FAILED);
    int rc = 0;
    call_i64(f->h, "reload_fx.fx.tag", NULL, &rc);
    assert_int_equal(rc, PH_ESTATE);
    char *good = fx_build(f, NULL, "-DRELOAD_TAG=3");
    sh("cp '%s' '%s'", good, f->lib);
    int swapped = 0;
    if (ph_reload_package(f->h, "reload_fx", &swapped))
        fail_msg("revive failed: %s", ph_error_last());
    assert_int_equal(swapped, 1);
    inst = inst_of(f, "reload_fx"); /* a failed instance is replaced by a fresh one */
    assert_int_equal(atomic_load(&inst->state), PH_INST_RUNNING);
    assert_int_equal(tag_of(f), 3);
    free(bad);
    free(good);
}

/* ------------------------------------------------------------------ */
/* Memory over many reloads (issue: every swapped-in manifest was kept)  */
/* ------------------------------------------------------------------ */

typedef struct usage {
    long rss_kib;
    int fds;
    int maps;
} usage;

static int lines_of_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    int n = 0, c;
    while (fp && (c = fgetc(fp)) != EOF)
        n += c == '\n';
    if (fp)
        fclose(fp);
    return n;
}

static usage usage_now(void)
{
    usage u = {0, 0, 0};
    long pages = 0, resident = 0;
    FILE *fp = fopen("/proc/self/statm", "r");
    if (fp && fscanf(fp, "%ld %ld", &pages, &resident) == 2)
        u.rss_kib = resident * (sysconf(_SC_PAGESIZE) / 1024);
    if (fp)
        fclose(fp);
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)))
        u.fds += e->d_name[0] != '.';
    if (d)
        closedir(d);
    u.maps = lines_of_file("/proc/self/maps");
    return u;
}

/*
 * Host RSS, descriptors and mappings stay flat from reload 100 to the last
 * of a package with a 10 KB package.ini (sanitizer builds keep freed
 * memory in quarantine and shadow, so there only descriptors and mappings
 * are compared, over fewer reloads).
 */
static void test_memory_flat_over_reloads(void **state)
{
    fx *f = *state;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    const int total = 300, check_rss = 0;
#else
    const int total = 1000, check_rss = 1;
#endif
    static const char *const pk[] = {"reload_fx", NULL};
    alarm(600);
    start_host(f, pk);
    char *ini = tu_fmt("%s/reload_fx/package.ini", f->pk);
    FILE *fp = fopen(ini, "a");
    assert_non_null(fp);
    for (int i = 0; i < 100; i++)
        fprintf(fp,
                "; %03d padding that makes this manifest about ten kilobytes long: "
                "0123456789abcdef\n",
                i);
    fclose(fp);
    char *b[2] = {fx_build(f, NULL, "-DRELOAD_TAG=1"), fx_build(f, NULL, "-DRELOAD_TAG=2")};
    usage at100 = {0, 0, 0};
    for (int i = 1; i <= total; i++) {
        int swapped = 0;
        cp_inplace(b[i % 2], f->lib);
        if (ph_reload_package(f->h, "reload_fx", &swapped))
            fail_msg("reload %d: %s", i, ph_error_last());
        assert_int_equal(swapped, 1);
        if (i == 100)
            at100 = usage_now();
    }
    assert_int_equal(tag_of(f), total % 2 ? 2 : 1);
    usage end = usage_now();
    print_message("reloads 100 -> %d: RSS %ld -> %ld KiB (%+ld), fds %d -> %d, maps %d -> %d\n",
                  total, at100.rss_kib, end.rss_kib, end.rss_kib - at100.rss_kib, at100.fds,
                  end.fds, at100.maps, end.maps);
    if (check_rss)
        assert_true(end.rss_kib - at100.rss_kib <= 1024);
    assert_int_equal(end.fds, at100.fds);
    /* A build kept mapped adds ~5 mappings: 200 of them would add 1,000. The allocator (ASan's
     * above all) maps and unmaps a few regions of its own, in either direction. */
    assert_true(end.maps <= at100.maps + 4);
    free(ini);
    free(b[0]);
    free(b[1]);
}

/* ------------------------------------------------------------------ */
/* Load test: real binary, real HTTP (acceptance 1)                     */
/* ------------------------------------------------------------------ */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        abort();
    close(fd);
    return ntohs(a.sin_port);
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * One HTTP/1.1 request on a kept-alive connection (*fd, opened if < 0).
 * Returns the status (body into buf), or -1 on a transport error (the
 * connection is closed then).
 */
static int http_post(int port, int *fd, const char *path, const char *body, char *buf, size_t size)
{
    char req[512], resp[8192];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, strlen(body), body);
    if (*fd < 0 && (*fd = tcp_connect(port)) < 0)
        return -1;
    /* The test's own children (sh) send SIGCHLD: an interrupted call is retried. */
    ssize_t w;
    while ((w = send(*fd, req, (size_t)n, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (w != n)
        goto broken;
    size_t got = 0;
    char *end = NULL;
    long clen = -1;
    while (!end || got < (size_t)(end + 4 - resp) + (size_t)clen) {
        if (got >= sizeof resp - 1)
            goto broken;
        ssize_t r = recv(*fd, resp + got, sizeof resp - 1 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto broken;
        got += (size_t)r;
        resp[got] = 0;
        if (!end && (end = strstr(resp, "\r\n\r\n"))) {
            const char *cl = strcasestr(resp, "content-length:");
            if (!cl || cl > end)
                goto broken;
            clen = strtol(cl + 15, NULL, 10);
        }
    }
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        goto broken;
    snprintf(buf, size, "%.*s", (int)clen, end + 4);
    return status;
broken:
    close(*fd);
    *fd = -1;
    return -1;
}

typedef struct client {
    int port;
    atomic_int *stop;
    long ok, non2xx, failed;
    char last_err[256];
    pthread_t t;
} client;

static void *client_run(void *arg)
{
    client *c = arg;
    int fd = -1;
    char body[1024];
    while (!atomic_load(c->stop)) {
        int st = http_post(c->port, &fd, "/counter/actors/counter/increment", "{\"by\":1}", body,
                           sizeof body);
        if (st < 0) {
            c->failed++;
            snprintf(c->last_err, sizeof c->last_err, "transport: %s", strerror(errno));
        } else if (st / 100 != 2) {
            c->non2xx++;
            snprintf(c->last_err, sizeof c->last_err, "%d %.200s", st, body);
        } else {
            c->ok++;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int count_lines(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_http_load_20_reloads(void **state)
{
    fx *f = *state;
    alarm(120);
    char *out = NULL;
    if (tu_run(&out, "cp -r '%s/counter' '%s/'", tu_env("PH_EXAMPLES"), f->pk) != 0)
        fail_msg("cp: %s", out);
    free(out);
    int port = free_port();
    char *text = tu_fmt("[host]\npackage_dirs = pk\ndata_dir = data\nlog_level = info\n"
                        "reload = true\n\n[http]\nlisten = 127.0.0.1:%d\n",
                        port);
    char *ini = tu_write(f->tmp, "host.ini", text);
    free(text);
    /* Two builds that differ (their build id) so that every write is a new build. */
    char *b[2];
    for (int i = 0; i < 2; i++) {
        b[i] = tu_fmt("%s/counter-%d.so", f->tmp, i);
        char *flags = tu_fmt("-Wl,--build-id=0x%08x", 0xc0de0000u + (unsigned)i);
        compile_to("examples/counter/counter.c", "counter", "1.0.0", flags, b[i]);
        free(flags);
    }
    pid_t pid = fx_start_run(f->tmp, ini, "serving", 20);
    f->run_pid = pid;
    if (pid < 0) {
        char *log = tu_fmt("%s/run.log", f->tmp), *t = tu_read(log);
        fail_msg("plughost run did not start: %s", t ? t : "(no log)");
    }
    atomic_int stop = 0;
    client c[4];
    for (int i = 0; i < 4; i++) {
        memset(&c[i], 0, sizeof c[i]);
        c[i].port = port;
        c[i].stop = &stop;
        pthread_create(&c[i].t, NULL, client_run, &c[i]);
    }
    char *lib = tu_fmt("%s/counter/counter.so", f->pk);
    char *tmpso = tu_fmt("%s/counter/.counter.so.tmp", f->pk);
    char *logp = tu_fmt("%s/run.log", f->tmp);
    double t0 = now_ms(), serve_ms[20];
    char *pini = tu_fmt("%s/counter/package.ini", f->pk);
    char *sqldir = tu_fmt("%s/counter/sql", f->pk);
    mkdir(sqldir, 0755);
    for (int i = 0; i < 20; i++) {
        sleep_ms(100);
        if (i % 4 == 2) {
            /* A manifest-only change (a comment, as an editor saves it) is a new build. */
            char *line = tu_fmt("; change %d", i);
            sh("printf '%%s\n' '%s' >> '%s'", line, pini);
            free(line);
        } else if (i % 4 == 3) {
            /* So is an sql/-only change. */
            char *note = tu_fmt("%s/notes-%d.txt", sqldir, i);
            sh("printf 'reload %%s\n' '%s' > '%s'", note, note);
            free(note);
        } else {
            /* Like lld: write a temp file beside it, then rename over. */
            sh("cp '%s' '%s'", b[(i % 4) % 2], tmpso);
            sh("mv '%s' '%s'", tmpso, lib);
        }
        /* Wait (bounded) until the host logs this swap, so no write hides another. */
        double tw = now_ms();
        for (;;) {
            char *log = tu_read(logp);
            int n = count_lines(log, "reloaded counter 1.0.0 -> counter 1.0.0");
            free(log);
            if (n > i)
                break;
            /* bounded, not timed: a loaded 2-core machine can take seconds */
            if (now_ms() - tw > 20000) {
                /* the host's own account of the write it did not apply, for the next look */
                char *tail = tu_read(logp);
                size_t len = tail ? strlen(tail) : 0;
                fail_msg("reload %d did not happen within 20 s; the host's log ends:\n%s", i + 1,
                         tail ? tail + (len > 3000 ? len - 3000 : 0) : "(no log)");
            }
            sleep_ms(10);
        }
        serve_ms[i] = now_ms() - tw;
    }
    sleep_ms(300);
    atomic_store(&stop, 1);
    long ok = 0, non2xx = 0, failed = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(c[i].t, NULL);
        ok += c[i].ok;
        non2xx += c[i].non2xx;
        failed += c[i].failed;
        if (c[i].non2xx || c[i].failed)
            print_error("client %d: %ld non-2xx, %ld failed; last: %s\n", i, c[i].non2xx,
                        c[i].failed, c[i].last_err);
    }
    double secs = (now_ms() - t0) / 1e3;
    int fd = -1;
    char body[1024];
    int st = http_post(port, &fd, "/counter/actors/counter/get", "{}", body, sizeof body);
    if (fd >= 0)
        close(fd);
    int status = fx_stop_run(pid, SIGTERM, 20);
    f->run_pid = 0;
    char *log = tu_read(logp);
    int reloads = count_lines(log, "reloaded counter 1.0.0 -> counter 1.0.0");
    int failures = count_lines(log, "reload failed");
    double worst = 0;
    for (int i = 0; i < 20; i++)
        worst = serve_ms[i] > worst ? serve_ms[i] : worst;
    print_message("load test: %.1f s, %ld increments over HTTP (%.0f/s), %d reloads (10 .so, 5 "
                  "package.ini-only, 5 sql/-only), %ld non-2xx, "
                  "%ld failed; write -> swap logged: worst %.0f ms\n",
                  secs, ok, (double)ok / secs, reloads, non2xx, failed, worst);
    assert_int_equal(failed, 0);
    assert_int_equal(non2xx, 0);
    assert_int_equal(failures, 0);
    assert_int_equal(reloads, 20);
    assert_true(ok > 1000);
    assert_int_equal(st, 200);
    assert_int_equal(strtoll(body, NULL, 10), ok);
    assert_int_equal(status, 0);
    free(pini);
    free(sqldir);
    free(log);
    free(logp);
    free(lib);
    free(tmpso);
    free(ini);
    free(b[0]);
    free(b[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rebuild_bfd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_gold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_lld, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cp_over_same_inode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_install, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_of_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identical_rebuild, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_then_recreate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_builds_keep_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watcher_bad_then_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gnu_unique_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_migration_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_failure_rolls_back_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sighup_after_reload_keeps_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unload_busy_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_survives_reconfigure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_inside_a_change_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stuck_call_drain_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_and_cross_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_held_through_long_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_from_inside_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dependency_compatible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dependency_incompatible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_handover_under_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_instance_revived, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_flat_over_reloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abandoned_change_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_handover_failure_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sighup_version_bump_keeps_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_semver_after_going_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_load_20_reloads, setup, teardown),
    };
    if (getenv("PH_TEST_FILTER"))
        cmocka_set_test_filter(getenv("PH_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
