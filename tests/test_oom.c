/*
 * Allocation-failure injection (SQLite's OOM tests, curl's torture tests):
 * for N = 1, 2, ... the Nth allocation of an operation fails (and, in the
 * persistent pass, every one after it), until a run completes with no
 * allocation failed; N - 1 is then the number of injection points of that
 * path, printed as "oom: PATH MODE: K injection points ...".
 *
 * Each run must end without a crash and either cleanly — a negative PH_E*
 * code with a non-empty ph_error_last() — or with the right result (the
 * failure was recoverable). Under the ASan build (make test runs this test
 * there too, with detect_leaks=1) each path ends with a leak check, so a
 * leak is pinned to the path that caused it.
 *
 * Paths: JSON text out; host.ini parsing; package.ini parsing; discovery +
 * resolution (ph_host_open); loading (ph_host_start: private copy and
 * dlopen of a real package, descriptor validation, model compilation, store
 * open and table creation, prepare/start), again over existing data, and as
 * an upgrade (notes 1.0.0 -> 2.0.0: verified backup, upgrade script, version
 * bump; after every run the database must be whole, old or new, with its
 * rows); calls through the router (JSON arguments -> typed values -> libffi
 * -> JSON result, package-to-package); and the generated CRUD actor (new,
 * get, set, list, count, delete), results checked field by field.
 *
 * The upgrade path is sampled (every 10th N) unless PH_OOM_FULL=1; all the
 * others try every N. For work on one path: PH_OOM_ONLY=test_upgrade,
 * PH_OOM_FROM=N, PH_OOM_COUNT=1 (only count).
 *
 * The allocator is interposed by tests/support/failmalloc.c (see there for
 * what it covers and why).
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "config.h"
#include "error.h"
#include "failmalloc.h"
#include "host.h"
#include "jsonout.h"
#include "log.h"
#include "manifest.h"
#include "phfix.h"

/* Bounds: no path comes near them; they keep a runaway loop finite. */
#define OOM_MAX_N 200000
#define OOM_MAX_SECONDS 240

typedef struct fx {
    char *tmp;
    char *ini;           /* host.ini over the example packages */
    char *one_ini;       /* host.ini over notes alone (loading: ~1000 allocations per package) */
    char *v1_ini;        /* host.ini over notes 1.0.0 (tests/packages/model_notes_v1) */
    char *seed;          /* a data_dir written by notes 1.0.0, copied before each upgrade run */
    const char *use_ini; /* the one load_cfg reads */
    char *mf;            /* a package.ini */
    char *data;          /* the hosts' data_dir (on tmpfs when there is one: SQLite syncs) */
    ph_host *h;          /* started host for the call paths */
    ph_config cfg;       /* loaded before a run that takes ownership of it */
} fx;

static int persistent_run; /* the sweep in progress fails every allocation from N on */
static long current_n;     /* its N */

/* One operation under test: 0 with a checked result, or a negative PH_E* code. */
typedef int (*oom_run_fn)(fx *f);

typedef struct oom_stats {
    long points;    /* allocations of a run that failed nothing */
    long errors;    /* runs that ended with a clean error */
    long nomem;     /* ... whose message says the memory ran out */
    long recovered; /* runs that succeeded although an allocation failed */
} oom_stats;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int says_nomem(const char *msg)
{
    return strstr(msg, "out of memory") || strstr(msg, "Cannot allocate memory");
}

static void leak_check(const char *what)
{
#ifdef __SANITIZE_ADDRESS__
    if (__lsan_do_recoverable_leak_check())
        fail_msg("%s leaked (LeakSanitizer's report above)", what);
#else
    (void)what;
#endif
}

/*
 * Runs `run` with allocation N failing, for N = 1, 2, ... until a run fails
 * no allocation. `prepare` (may be NULL) runs before each run, unarmed.
 */
static oom_stats sweep(fx *f, const char *what, oom_run_fn prepare, oom_run_fn run,
                       oom_run_fn cleanup, int persistent, long stride)
{
    oom_stats s = {0};
    double t0 = now_s();
    char *shown = NULL; /* distinct messages not about memory, printed once */
    ph_level level = ph_log_get_level();
    ph_log_set_level((ph_level)-1); /* failing loads log each failure: keep the output short */
    if (getenv("PH_OOM_COUNT")) {   /* only count (while working on a path) */
        if (prepare && prepare(f))
            fail_msg("%s: preparing: %s", what, ph_error_last());
        fm_arm(0, 0);
        int rc = run(f);
        long count = fm_disarm();
        if (cleanup)
            cleanup(f);
        print_message("oom: %s: %ld allocations, rc %d %s\n", what, count, rc, ph_error_last());
        ph_log_set_level(level);
        return (oom_stats){.points = count};
    }
    /* PH_OOM_FROM=N starts there (while working on a path) */
    for (long n = getenv("PH_OOM_FROM") ? atol(getenv("PH_OOM_FROM")) : 1;; n += stride) {
        current_n = n;
        if (n > OOM_MAX_N || now_s() - t0 > OOM_MAX_SECONDS)
            fail_msg("%s: still failing allocations at N = %ld after %.0f s", what, n,
                     now_s() - t0);
        if (prepare && prepare(f))
            fail_msg("%s: preparing run %ld: %s", what, n, ph_error_last());
        ph_error_clear();
        persistent_run = persistent;
        fm_arm(n, persistent);
        int rc = run(f);
        long count = fm_disarm();
        long failed = fm_failures();
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", ph_error_last());
        if (cleanup)
            cleanup(f);
        if (!failed) {
            if (rc)
                fail_msg("%s: failed with no allocation failing (N = %ld): %d %s", what, n, rc,
                         msg);
            s.points = count;
            break;
        }
        if (rc == 0) {
            s.recovered++;
            continue;
        }
        if (rc >= 0 || !strcmp(ph_error_word(rc), "unknown") || !msg[0])
            fail_msg("%s: N = %ld: not a clean error: rc %d, message '%s'", what, n, rc, msg);
        s.errors++;
        if (says_nomem(msg)) {
            s.nomem++;
        } else if ((!shown || !strstr(shown, msg)) && (!shown || strlen(shown) < 6000)) {
            char *more = tu_fmt("%sN = %ld: %s\n", shown ? shown : "", n, msg);
            free(shown);
            shown = more;
        }
    }
    ph_log_set_level(level);
    char sampled[64] = "";
    if (stride > 1)
        snprintf(sampled, sizeof sampled, " (every %ldth tried)", stride);
    print_message("oom: %s %s: %ld injection points%s; %ld clean errors (%ld say out of "
                  "memory), %ld recovered; %.1f s\n",
                  what, persistent ? "persistent" : "once", s.points, sampled, s.errors, s.nomem,
                  s.recovered, now_s() - t0);
    for (char *line = shown, *end; line && *line; line = end + 1) { /* one line per print */
        end = strchr(line, '\n');
        *end = 0;
        print_message("oom: %s: error not naming memory: %s\n", what, line);
    }
    free(shown);
    leak_check(what);
    return s;
}

/*
 * Both passes over every injection point; a path whose runs are slow can be
 * sampled (every `stride`th N, curl's --shallow) unless PH_OOM_FULL=1.
 */
static void sweep_sampled(fx *f, const char *what, oom_run_fn prepare, oom_run_fn run,
                          oom_run_fn cleanup, long stride)
{
    if (getenv("PH_OOM_FULL"))
        stride = 1;
    oom_stats once = sweep(f, what, prepare, run, cleanup, 0, stride);
    oom_stats pers = sweep(f, what, prepare, run, cleanup, 1, stride);
    /* (the counts may differ by a few: caches and stored rows change between passes) */
    assert_true(once.points > 0 && pers.points > 0);
}

static void sweep_both(fx *f, const char *what, oom_run_fn prepare, oom_run_fn run,
                       oom_run_fn cleanup)
{
    sweep_sampled(f, what, prepare, run, cleanup, 1);
}

/* ---- fixture ---- */

static const char *const packages[] = {"ex:calc", "ex:hello", "ex:greeter", "ex:notes", NULL};

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes the data directory (without a shell: loading removes it after every run). */
static int rm_data(fx *f)
{
    if (f->data)
        nftw(f->data, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->tmp = tu_tmpdir();
    const char *notes_only[] = {"ex:notes", NULL};
    char *ini = fx_host_ini(f->tmp, notes_only, NULL);
    f->one_ini = tu_fmt("%s/one.ini", f->tmp);
    if (rename(ini, f->one_ini))
        return -1;
    free(ini);
    char *v1 = tu_fmt("%s/model_notes_v1/notes", tu_env("PH_FIXTURES"));
    char *link = tu_fmt("%s/p/notes_v1", f->tmp);
    if (symlink(v1, link))
        return -1;
    free(v1);
    free(link);
    f->v1_ini = tu_write(f->tmp, "v1.ini", "[host]\npackage_dirs = p/notes_v1\n");
    f->ini = fx_host_ini(f->tmp, packages,
                         "\n[auth]\nrequire_token = false\n\n"
                         "[instance hello]\ngreeting = Hi\n\n"
                         "[instance notes]\nmax_title = 50\n");
    char *markers = tu_fmt("%s/markers", f->tmp);
    setenv("PH_TEST_MARKERS", markers, 1);
    free(markers);
    ph_log_set_level(PH_L_ERROR);
    struct stat st;
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
        f->data = tu_fmt("/dev/shm/phoom.%d", (int)getpid());
    else
        f->data = tu_fmt("%s/data", f->tmp);
    free(malloc(1)); /* resolves the real allocator */
    assert_true(fm_active());
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->h) {
        ph_host_stop(f->h);
        ph_host_free(f->h);
    }
    ph_config_free(&f->cfg);
    tu_rmtree(f->tmp);
    free(f->tmp);
    free(f->ini);
    free(f->one_ini);
    free(f->v1_ini);
    if (f->seed)
        tu_rmtree(f->seed);
    free(f->seed);
    free(f->mf);
    rm_data(f);
    free(f->data);
    free(f);
    return 0;
}

/* The interposed allocator sees the host's, libc's, jansson's and SQLite's allocations. */
static void test_allocator_is_interposed(void **state)
{
    (void)state;
    fm_arm(0, 0);
    void *p = malloc(16);
    char *s = strdup("x");
    json_t *j = json_pack("{s:i}", "a", 1);
    char *a = NULL;
    int n = asprintf(&a, "%d", 42);
    long counted = fm_disarm();
    assert_true(p && s && j && n == 2);
    free(p);
    free(s);
    free(a);
    json_decref(j);
    assert_true(counted >= 4);
    fm_arm(1, 0);
    p = malloc(16);
    fm_disarm();
    assert_null(p);
    assert_int_equal(fm_failures(), 1);
}

/*
 * JSON text is whole or nothing: jansson's json_dumps returns {"a:1,"bb":2}
 * when an allocation fails while it writes a key (HTTP bodies, stored JSON
 * fields and schemas were written that way); ph_json_dumps returns NULL.
 */
static void test_json_text_is_whole_or_nothing(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:i, s:[s, {s:s}], s:s}", "a", 1, "bb", "x", "key", "value", "long",
                          "a string long enough to make the buffer grow more than once........"
                          "..................................................................."
                          "...................................................................");
    char *want = ph_json_dumps(v, JSON_COMPACT);
    assert_non_null(want);
    long points = 0;
    for (long n = 1; n < 1000; n++) {
        fm_arm(n, 0);
        char *got = ph_json_dumps(v, JSON_COMPACT);
        fm_disarm();
        if (got && strcmp(got, want))
            fail_msg("failing allocation %ld gave partial JSON text: %s", n, got);
        free(got);
        if (!fm_failures()) {
            points = n - 1;
            break;
        }
    }
    print_message("oom: JSON text: %ld injection points, never partial\n", points);
    assert_true(points > 0);
    free(want);
    json_decref(v);
}

/* ---- config and manifest parsing ---- */

static int run_config(fx *f)
{
    ph_config c;
    int rc = ph_config_load(f->ini, &c);
    if (rc)
        return rc;
    const ph_instance_conf *ic = ph_config_instance(&c, "hello");
    if (c.n_package_dirs != 4 || !ic || ic->n_params != 1 || strcmp(ic->params[0].value, "Hi") ||
        strcmp(ic->mount, "/hello"))
        fail_msg("config read wrongly after a recovered allocation failure");
    ph_config_free(&c);
    return 0;
}

static void test_config(void **state)
{
    sweep_both(*state, "host.ini", NULL, run_config, NULL);
}

static int run_manifest(fx *f)
{
    ph_manifest *m = NULL;
    int rc = ph_manifest_load(f->mf, &m);
    if (rc)
        return rc;
    if (strcmp(m->name, "shop") || m->n_requires != 2 || m->n_optional != 1 ||
        m->n_conflicts != 1 || m->n_params != 2 || strcmp(m->params[1].value, "EUR"))
        fail_msg("manifest read wrongly after a recovered allocation failure");
    ph_manifest_free(m);
    return 0;
}

static void test_manifest(void **state)
{
    fx *f = *state;
    f->mf = tu_write(f->tmp, "mf/package.ini",
                     "; a manifest with every section\n"
                     "[package]\nname = shop\nversion = 2.1.0-rc.1+build.5\n"
                     "description = Sells things\nabi = 1\nlibrary = lib/shop.so\n\n"
                     "[requires]\nauth = ^1.2\nnotes = >=1.0, <2\n\n"
                     "[optional]\nmail = ~1.4.0\n\n"
                     "[conflicts]\nlegacy = *\n\n"
                     "[parameters]\npage_size = 20\ncurrency = EUR\n");
    sweep_both(f, "package.ini", NULL, run_manifest, NULL);
}

/* ---- discovery and resolution ---- */

static int load_cfg(fx *f)
{
    ph_config_free(&f->cfg);
    return ph_config_load(f->use_ini ? f->use_ini : f->ini, &f->cfg);
}

static int run_open(fx *f)
{
    ph_host *h = NULL;
    int rc = ph_host_open(&f->cfg, &h); /* takes f->cfg */
    if (rc)
        return rc;
    if (h->plan.n != 4 || h->plan.n_problems || h->set.n_problems)
        fail_msg("plan built wrongly after a recovered allocation failure: %zu instances, "
                 "problems: %s",
                 h->plan.n,
                 h->plan.n_problems  ? h->plan.problems[0]
                 : h->set.n_problems ? h->set.problems[0]
                                     : "none");
    ph_host_free(h);
    return 0;
}

static void test_discovery_and_resolution(void **state)
{
    sweep_both(*state, "discovery+resolution", load_cfg, run_open, NULL);
}

/* ---- loading ---- */

/* An opened host over f->data, not started. */
static int open_host(fx *f)
{
    int rc = load_cfg(f);
    if (rc)
        return rc;
    free(f->cfg.data_dir);
    f->cfg.data_dir = strdup(f->data);
    free(f->cfg.auth.token_file);
    f->cfg.auth.token_file = NULL;
    return ph_host_open(&f->cfg, &f->h);
}

/* An opened host over a data directory that does not exist yet. */
static int open_fresh(fx *f)
{
    rm_data(f);
    return open_host(f);
}

/*
 * 0 if every instance runs; else the first one that does not, as a clean
 * error carrying its recorded reason (a failing instance takes down only
 * itself and its dependents: that is how loading reports errors).
 */
static int run_start(fx *f)
{
    int rc = ph_host_start(f->h);
    if (rc)
        return rc;
    for (size_t i = 0; i < f->h->plan.n; i++) {
        const char *reason = NULL;
        const char *st = ph_host_item_state(f->h, i, &reason);
        if (strcmp(st, "running")) {
            if (strcmp(st, "failed") && strcmp(st, "skipped"))
                fail_msg("instance %s is %s", f->h->plan.items[i].instance, st);
            /* with every allocation failing, even the reason cannot be copied */
            if ((!reason || !*reason) && !persistent_run)
                fail_msg("instance %s is %s without a reason", f->h->plan.items[i].instance, st);
            return ph_error_set(PH_ELOAD, "%s %s: %s", f->h->plan.items[i].instance, st,
                                reason ? reason : "(no memory for the reason)");
        }
    }
    return 0;
}

static int stop_free(fx *f)
{
    if (f->h) {
        ph_host_stop(f->h);
        ph_host_free(f->h);
        f->h = NULL;
    }
    return 0;
}

static int stop_free_rm(fx *f)
{
    stop_free(f);
    return rm_data(f);
}

/*
 * The scanner's verdicts (<data_dir>/.modules.accepted/) of a first,
 * unarmed start: the loading sweeps start from them, as a host does after
 * its first start. Otherwise every run forks a scanner child (~15 ms under
 * ASan, thousands of runs); the gate's own paths are swept in
 * test_scan_gate.
 */
static char **accepted;
static size_t n_accepted;

static void keep_verdicts(fx *f)
{
    char *dir = tu_fmt("%s/.modules.accepted", f->data);
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        if (list[i]->d_name[0] != '.') {
            accepted = realloc(accepted, (n_accepted + 1) * sizeof *accepted);
            accepted[n_accepted++] = strdup(list[i]->d_name);
        }
        free(list[i]);
    }
    free(list);
    free(dir);
    if (!n_accepted)
        fail_msg("no scanner verdict under %s/.modules.accepted", f->data);
}

static void free_verdicts(void)
{
    for (size_t i = 0; i < n_accepted; i++)
        free(accepted[i]);
    free(accepted);
    accepted = NULL;
    n_accepted = 0;
}

/* A host over a data directory that holds only the scanner's verdicts. */
static int open_fresh_accepted(fx *f)
{
    rm_data(f);
    char *dir = tu_fmt("%s/.modules.accepted", f->data);
    int rc = mkdir(f->data, 0700) || mkdir(dir, 0700) ? PH_EIO : 0;
    for (size_t i = 0; !rc && i < n_accepted; i++) {
        char *path = tu_fmt("%s/%s", dir, accepted[i]);
        int fd = open(path, O_WRONLY | O_CREAT, 0600);
        rc = fd < 0 ? PH_EIO : close(fd);
        free(path);
    }
    free(dir);
    return rc ? rc : open_host(f);
}

/* A first start: private copies, databases and tables created. */
static void test_loading(void **state)
{
    fx *f = *state;
    f->use_ini = f->one_ini;
    if (open_fresh(f) || run_start(f))
        fail_msg("first start: %s", ph_error_last());
    stop_free(f);
    keep_verdicts(f);
    sweep_both(f, "loading", open_fresh_accepted, run_start, stop_free_rm);
    free_verdicts();
}

/* ---- the scanner gate before dlopen (loader.c, scan.c): a child per run ---- */

static ph_manifest *gate_manifest;
static char *gate_stage;

static int gate_fresh(fx *f)
{
    rm_data(f);
    return mkdir(f->data, 0700) ? PH_EIO : 0;
}

static int gate_open(fx *f)
{
    (void)f;
    ph_module *mod = NULL;
    int rc = ph_module_open(gate_manifest, gate_stage, &mod);
    ph_module_close(mod);
    return rc;
}

/* No verdict yet: the stage, the ELF reads, the child's answer, the verdict mark. */
static void test_scan_gate(void **state)
{
    fx *f = *state;
    char *ini = tu_fmt("%s/notes/package.ini", tu_env("PH_EXAMPLES"));
    assert_int_equal(ph_manifest_load(ini, &gate_manifest), 0);
    free(ini);
    mkdir(f->data, 0700);
    gate_stage = tu_fmt("%s/stage", f->data);
    sweep_both(f, "scanner gate", gate_fresh, gate_open, gate_fresh);
    ph_manifest_free(gate_manifest);
    gate_manifest = NULL;
    free(gate_stage);
    gate_stage = NULL;
}

/* A restart over the data of a previous start: the stored schemas are read and compared. */
static void test_loading_again(void **state)
{
    fx *f = *state;
    f->use_ini = f->one_ini;
    if (open_fresh(f) || run_start(f))
        fail_msg("first start: %s", ph_error_last());
    stop_free(f);
    sweep_both(f, "loading over existing data", open_host, run_start, stop_free);
}

/* ---- calls ---- */

static int call_expect(fx *f, const char *address, const char *args, const char *want)
{
    json_error_t jerr;
    json_t *in = json_loads(args, JSON_DECODE_ANY, &jerr), *out = NULL;
    if (!in)
        return ph_error_set(PH_ENOMEM, "out of memory (test arguments)");
    int rc = ph_router_call(f->h->router, NULL, address, in, 0, &out);
    json_decref(in);
    if (rc)
        return rc;
    char *got = ph_json_dumps(out, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(out);
    if (!got)
        return ph_error_set(PH_ENOMEM, "out of memory (test result)");
    if (want && strcmp(got, want))
        fail_msg("%s(%s) returned %s, not %s", address, args, got, want);
    free(got);
    return 0;
}

static int run_calls(fx *f)
{
    int rc;
    if ((rc = call_expect(f, "calc.math.add", "{\"a\":2,\"b\":40}", "42")) ||
        (rc = call_expect(f, "calc.math.divide", "[1, 4]", "0.25")) ||
        (rc = call_expect(f, "calc.math.negate", "{\"value\":true}", "false")) ||
        (rc = call_expect(f, "calc.text.upper", "{\"text\":\"shout\"}", "\"SHOUT\"")) ||
        (rc = call_expect(f, "calc.text.echo", "{\"value\":{\"k\":[1,\"x\",null]}}",
                          "{\"k\":[1,\"x\",null]}")) ||
        (rc = call_expect(f, "calc.math.stats", "{\"numbers\":[1,2,3]}",
                          "{\"count\":3,\"sum\":6.0,\"min\":1.0,\"max\":3.0,\"mean\":2.0}")) ||
        (rc = call_expect(f, "greeter.greeter.welcome", "{\"name\":\"Ada\"}",
                          "\"Hi, Ada! Welcome to plughost.\"")) ||
        (rc = call_expect(f, "greeter.greeter.welcome_all", "{\"names\":[\"A\",\"B\"]}",
                          "[\"Hi, A! Welcome to plughost.\",\"Hi, B! Welcome to plughost.\"]")))
        return rc;
    return 0;
}

static void start_host(fx *f)
{
    if (open_fresh(f))
        fail_msg("open: %s", ph_error_last());
    if (run_start(f))
        fail_msg("start: %s", ph_error_last());
}

static void test_calls(void **state)
{
    fx *f = *state;
    start_host(f);
    sweep_both(f, "router calls", NULL, run_calls, NULL);
    stop_free(f);
}

/* ---- CRUD ---- */

/* Calls a CRUD method; *out (may be NULL) receives the result. */
static int crud(fx *f, const char *address, json_t *args, json_t **out)
{
    json_t *res = NULL;
    int rc = ph_router_call(f->h->router, NULL, address, args, 0, &res);
    json_decref(args);
    if (!rc && out)
        *out = res;
    else
        json_decref(res);
    return rc;
}

static json_int_t int_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("no integer '%s' in the result", key);
    return json_integer_value(v);
}

/* A whole note of ada's: every field present (a missing one would read as null). */
static void check_note(json_t *rec, json_int_t id, int pinned)
{
    static const char *const keys[] = {"id",      "created", "updated", "title",
                                       "content", "pinned",  "owner"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!json_object_get(rec, keys[i]))
            fail_msg("a note lacks '%s': %s", keys[i], json_dumps(rec, JSON_COMPACT));
    if ((id && int_at(rec, "id") != id) ||
        strcmp(json_string_value(json_object_get(rec, "owner")) ?: "", "ada") ||
        (pinned >= 0 && json_is_true(json_object_get(rec, "pinned")) != pinned))
        fail_msg("a wrong note: %s", json_dumps(rec, JSON_COMPACT));
}

static int run_crud(fx *f)
{
    json_t *rec = NULL, *res = NULL;
    int rc;
    /* arguments built before the calls fail only the test's own allocations: checked */
    json_t *a = json_pack("{s:s, s:s, s:s}", "title", "hello", "owner", "ada", "content", "x");
    if (!a)
        return ph_error_set(PH_ENOMEM, "out of memory (test arguments)");
    if ((rc = crud(f, "notes.note.new", a, &rec)))
        return rc;
    json_int_t id = int_at(rec, "id");
    check_note(rec, 0, 0);
    if (strcmp(json_string_value(json_object_get(rec, "title")), "hello"))
        fail_msg("note.new stored a wrong title");
    json_decref(rec);
    rc = PH_ENOMEM;
    if (!(a = json_pack("{s:I}", "id", id)) || (rc = crud(f, "notes.note.get", a, &res)))
        goto done;
    check_note(res, id, 0);
    json_decref(res);
    res = NULL;
    rc = PH_ENOMEM;
    if (!(a = json_pack("{s:I, s:b}", "id", id, "pinned", 1)) ||
        (rc = crud(f, "notes.note.set", a, &res)))
        goto done;
    check_note(res, id, 1);
    json_decref(res);
    res = NULL;
    rc = PH_ENOMEM;
    if (!(a = json_pack("{s:s, s:s, s:i}", "owner", "ada", "order", "-created,title", "limit",
                        5)) ||
        (rc = crud(f, "notes.note.list", a, &res)))
        goto done;
    /* only ada's notes (bob's is there too: a filter lost to a failed allocation shows) */
    json_t *items = json_object_get(res, "items");
    if (int_at(res, "total") < 1 || !json_array_size(items) || json_array_size(items) > 5)
        fail_msg("note.list found nothing: %s", json_dumps(res, JSON_COMPACT));
    for (size_t i = 0; i < json_array_size(items); i++)
        check_note(json_array_get(items, i), 0, -1);
    json_decref(res);
    res = NULL;
    rc = PH_ENOMEM;
    if (!(a = json_pack("{s:b, s:s}", "pinned", 0, "owner", "bob")) ||
        (rc = crud(f, "notes.note.count", a, &res)))
        goto done;
    if (!json_is_integer(res) || json_integer_value(res) != 1)
        fail_msg("note.count of bob's notes answered %s", json_dumps(res, JSON_ENCODE_ANY));
    json_decref(res);
    res = NULL;
    rc = PH_ENOMEM;
    if (!(a = json_pack("{s:I}", "id", id)) || (rc = crud(f, "notes.note.delete", a, NULL)))
        goto done;
    rc = 0;
done:
    if (rc == PH_ENOMEM && !ph_error_last()[0])
        ph_error_set(PH_ENOMEM, "out of memory (test arguments)");
    json_decref(res);
    return rc;
}

static void test_crud(void **state)
{
    fx *f = *state;
    start_host(f);
    json_t *bob = json_pack("{s:s, s:s}", "title", "bob's", "owner", "bob");
    assert_int_equal(crud(f, "notes.note.new", bob, NULL), 0);
    sweep_both(f, "crud", NULL, run_crud, NULL);
    stop_free(f);
}

/* ---- upgrade: notes 1.0.0 -> 2.0.0 (verified backup, upgrade script, version bump) ---- */

static int copy_seed(fx *f)
{
    rm_data(f);
    f->use_ini = f->one_ini;
    return tu_run(NULL, "cp -a '%s' '%s'", f->seed, f->data) ? PH_EIO : open_host(f);
}

/* A text answer of one SQL query on the notes database, or NULL. */
static char *query_notes(fx *f, const char *sql)
{
    char *path = tu_fmt("%s/notes/notes.db", f->data), *out = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    return out;
}

/*
 * After every run, failed or not, the database is whole and either still
 * 1.0.0 (field body) or 2.0.0 (field content), with both notes.
 */
static int stop_check_data(fx *f)
{
    stop_free(f);
    char *ok = query_notes(f, "PRAGMA integrity_check");
    char *version = query_notes(f, "SELECT value FROM _ph_meta WHERE key='version'");
    char *text = version && !strcmp(version, "2.0.0")
                     ? query_notes(f, "SELECT group_concat(content, '|') FROM note")
                     : query_notes(f, "SELECT group_concat(body, '|') FROM note");
    if (!ok || strcmp(ok, "ok") || !version ||
        (strcmp(version, "1.0.0") && strcmp(version, "2.0.0")) || !text ||
        strcmp(text, "first|second"))
        fail_msg("N = %ld: after the upgrade: integrity %s, version %s, notes %s; %s", current_n,
                 ok ? ok : "?", version ? version : "?", text ? text : "?", ph_error_last());
    free(ok);
    free(version);
    free(text);
    return 0;
}

static void test_upgrade(void **state)
{
    fx *f = *state;
    rm_data(f);
    f->use_ini = f->v1_ini;
    if (open_host(f) || run_start(f))
        fail_msg("notes 1.0.0: %s", ph_error_last());
    const char *texts[] = {"first", "second"};
    for (int i = 0; i < 2; i++) {
        json_t *a =
            json_pack("{s:s, s:s, s:s}", "title", texts[i], "body", texts[i], "owner", "ada");
        assert_int_equal(crud(f, "notes.note.new", a, NULL), 0);
    }
    stop_free(f);
    f->seed = tu_fmt("%s.seed", f->data);
    assert_int_equal(tu_run(NULL, "rm -rf '%s' && cp -a '%s' '%s'", f->seed, f->data, f->seed), 0);
    /* ~7000 points at ~15 ms a run (backup, script, four checks): every 10th by default */
    sweep_sampled(f, "upgrade 1.0.0 -> 2.0.0", copy_seed, run_start, stop_check_data, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_allocator_is_interposed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_text_is_whole_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery_and_resolution, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loading_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_gate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crud, setup, teardown),
    };
    /* PH_OOM_ONLY=test_loading runs one test (while working on a path) */
    if (getenv("PH_OOM_ONLY"))
        cmocka_set_test_filter(getenv("PH_OOM_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
