/* plughost: the command line. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build.h"
#include "cliopts.h"
#include "client.h"
#include "config.h"
#include "crash.h"
#include "elfcheck.h"
#include "error.h"
#include "text.h"
#include "jsonout.h"
#include "ffi_call.h"
#include "host.h"
#include "http.h"
#include "install.h"
#include "dist.h"
#include "log.h"
#include "notify.h"
#include "manage.h"
#include "migrate.h"
#include "reload.h"
#include "scan.h"
#include "store.h"

typedef struct cli {
    ph_cli_opts o; /* the options that choose the configuration */
    const char *url;
    int local;
    int purge;
    int json;             /* --json: machine-readable output (status, list) */
    int man;              /* help --man: plughost(1) in roff */
    const char *sign;     /* --sign KEY: the secret key file pack signs with */
    const char *output;   /* --output DIR: where pack writes, where keygen writes */
    const char *token;    /* --token TOKEN or PLUGHOST_TOKEN: the admin token to send */
    const char *cacert;   /* --cacert FILE or PLUGHOST_CACERT: CA certificates for https:// */
    unsigned given;       /* O_* of the options on the command line */
    char token_note[512]; /* why the admin token was not sent, shown if the host asks for it */
    char missing_socket[PATH_MAX]; /* the local socket looked for and not found, or "" */
} cli;

/* PH_EUNREACHABLE over TCP after the local socket was not found: no host runs; says where. */
static int unreachable(const cli *c)
{
    if (ph_error_last_code() != PH_EUNREACHABLE)
        return 0;
    if (c->missing_socket[0])
        ph_error_set(PH_EUNREACHABLE,
                     "no host is running (no socket at %s); start one with plughost run",
                     c->missing_socket);
    return 1;
}

/*
 * The exit status of a command that talked to a host and failed with
 * `code` (a PH_E* code): 3 when no host runs there, 75 (EX_TEMPFAIL) when
 * the host asks to retry (starting, reloading, busy, rate-limited), else 1.
 * The same for every command that talks to a host (plughost --help).
 */
static int host_exit(int code)
{
    switch (code) {
    case PH_EUNREACHABLE:
        return 3;
    case PH_EBUSY:
    case PH_ERATE:
    case PH_ELIMIT:
    case PH_ESTATE:
        return 75;
    default:
        return 1;
    }
}

/* host_exit for an HTTP error response of the host. */
static int http_exit(int status)
{
    return status == 429 || status == 503 ? 75 : 1;
}

/* After a refusal for want of the token: says why it was not sent, if it was withheld. */
static void token_hint(const cli *c)
{
    if (c->token_note[0])
        fprintf(stderr, "plughost: %s\n", c->token_note);
}

typedef int (*command_fn)(cli *c, int argc, char **argv);

/* The options a command takes (command.opts); any other is a usage error. */
enum {
    O_CONFIG = 1 << 0,
    O_LISTEN = 1 << 1,
    O_DATA_DIR = 1 << 2,
    O_LOG = 1 << 3, /* --log-level, --log-format */
    O_PACKAGES = 1 << 4,
    O_URL = 1 << 5,
    O_STRICT = 1 << 6,
    O_LOCAL = 1 << 7,
    O_PURGE = 1 << 8,
    O_JSON = 1 << 9,
    O_SIGN = 1 << 10,
    O_OUTPUT = 1 << 11,
    O_MAN = 1 << 12,
    /* the common options (the configuration: every command but new and help reads it) */
    O_HOST = O_CONFIG | O_DATA_DIR | O_LOG | O_PACKAGES,
    O_REMOTE = O_HOST | O_LISTEN | O_URL, /* talks to the running host */
};

/*
 * One row per command: what --help, plughost(1) and the usage checks all
 * read. Any option outside `opts`, fewer than min_args or more than
 * max_args arguments (-1: no limit) is a usage error (exit 2), said in one
 * line before the command runs.
 */
typedef struct command {
    const char *name;
    command_fn fn;
    const char *usage;
    const char *help;
    unsigned opts; /* O_* it accepts */
    int min_args, max_args;
    const char *missing; /* what the usage error says when an argument is missing */
} command;

static int cmd_help(cli *c, int argc, char **argv);
static int print_json(json_t *v);

/* Messages may quote what a package, a request or an archive holds: escaped like the log. */
static void print_error(const char *what)
{
    char msg[8192];
    ph_log_escape(msg, sizeof msg, ph_error_last());
    fprintf(stderr, "plughost: %s%s%s\n", what ? what : "", what ? ": " : "", msg);
}

/* ---- configuration ---- */

static int add_package_dir(cli *c, const char *dir)
{
    char **p = realloc(c->o.package_dirs, (c->o.n_package_dirs + 1) * sizeof *p);
    if (!p)
        return PH_ENOMEM;
    c->o.package_dirs = p;
    c->o.package_dirs[c->o.n_package_dirs++] = (char *)dir;
    return 0;
}

/* ---- check / list ---- */

static void add_problem(json_t *problems, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_problem(json_t *problems, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *t = NULL;
    if (vasprintf(&t, fmt, ap) >= 0)
        json_array_append_new(problems, json_string(t));
    va_end(ap);
    free(t);
}

/*
 * Opens every package that would load, in a forked scanner child (scan.h),
 * and rehearses each of its instances' migrations on a scratch copy of the
 * database: no package code runs in this process. *scans: {package: scan}.
 */
static int scan_packages(ph_host *h, json_t *scans)
{
    ph_scan_job *jobs = calloc(h->plan.n + 1, sizeof *jobs);
    const char **names = calloc(h->plan.n + 1, sizeof *names);
    json_t **outs = calloc(h->plan.n + 1, sizeof *outs);
    size_t n_jobs = 0, n_names = 0;
    int rc = 0;
    if (!jobs || !names || !outs) {
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < h->plan.n; i++) {
        const ph_plan_item *it = &h->plan.items[i];
        bool seen = false;
        for (size_t j = 0; j < n_jobs && !seen; j++)
            seen = jobs[j].m == it->manifest;
        if (it->state != PH_PLAN_OK || !it->manifest || seen)
            continue;
        ph_scan_job *job = &jobs[n_jobs++];
        *job = (ph_scan_job){it->manifest, &names[n_names], 0};
        for (size_t k = i; k < h->plan.n; k++)
            if (h->plan.items[k].state == PH_PLAN_OK && h->plan.items[k].manifest == it->manifest)
                names[n_names + job->n++] = h->plan.items[k].instance;
        n_names += job->n;
    }
    /* one scanner child for them all (a new one after a crash) */
    if ((rc = ph_scan_packages(jobs, n_jobs, h->cfg.data_dir, 0, outs)))
        goto cleanup;
    for (size_t j = 0; j < n_jobs; j++)
        json_object_set_new(scans, jobs[j].m->name, outs[j]);
cleanup:
    free(jobs);
    free(names);
    free(outs);
    return rc;
}

/* The scan of item i's package, if it was scanned. */
static json_t *scan_of(ph_host *h, json_t *scans, size_t i)
{
    const ph_plan_item *it = &h->plan.items[i];
    return it->state == PH_PLAN_OK && it->manifest ? json_object_get(scans, it->manifest->name)
                                                   : NULL;
}

/* The dry run of one instance inside a scan, or NULL. */
static json_t *rehearsal_of(json_t *scan, const char *instance)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(scan, "instances"), i, r)
    {
        if (!strcmp(json_string_value(json_object_get(r, "instance")) ?: "", instance))
            return r;
    }
    return NULL;
}

/* The load order with each instance's state; a package that cannot be opened is failed. */
/* 1 if item i's package could not be opened, 2 if a dependency of it failed (filled in order). */
static void mark_unloadable(ph_host *h, json_t *scans, char *bad)
{
    for (size_t i = 0; i < h->plan.n; i++) {
        json_t *scan = scan_of(h, scans, i);
        if (scan && !json_is_true(json_object_get(scan, "ok")))
            bad[i] = 1;
        for (size_t k = 0; !bad[i] && scan && k < h->plan.items[i].n_deps; k++)
            if (bad[h->plan.items[i].deps[k]])
                bad[i] = 2;
    }
}

static void print_plan(FILE *out, ph_host *h, json_t *scans, const char *bad, json_t *problems)
{
    fprintf(out, "load order (%zu instance%s):\n", h->plan.n, h->plan.n == 1 ? "" : "s");
    for (size_t i = 0; i < h->plan.n; i++) {
        const ph_plan_item *it = &h->plan.items[i];
        json_t *scan = scan_of(h, scans, i);
        const char *state = ph_host_item_state(h, i, NULL);
        const char *error = json_string_value(json_object_get(scan, "error"));
        if (scan)
            state = bad[i] == 1 ? "failed" : bad[i] == 2 ? "skipped" : "ok";
        fprintf(out, "  %2zu. %-16s %s %s", i + 1, it->instance,
                it->manifest ? it->manifest->name : "-",
                it->manifest ? it->manifest->version_text : "");
        if (it->n_deps) {
            fprintf(out, "  needs");
            for (size_t k = 0; k < it->n_deps; k++)
                fprintf(out, "%s %s", k ? "," : "", h->plan.items[it->deps[k]].instance);
        }
        const char *build = json_string_value(json_object_get(scan, "build"));
        fprintf(out, "  [%s]%s%s\n", state, build ? " build " : "", build ? build : "");
        if (it->manifest && it->manifest->n_provides) {
            fprintf(out, "        provides ");
            ph_manifest_provides_print(out, it->manifest);
            fprintf(out, "\n");
        }
        if (scan && error) {
            fprintf(out, "        %s\n", error);
            add_problem(problems, "instance '%s': %s", it->instance, error);
        }
        for (size_t k = 0; bad[i] == 2 && k < it->n_deps; k++)
            if (bad[it->deps[k]]) {
                const char *dep = h->plan.items[it->deps[k]].instance;
                fprintf(out, "        skipped: depends on '%s', which cannot be loaded\n", dep);
                add_problem(problems,
                            "instance '%s': skipped: depends on '%s', which cannot be loaded",
                            it->instance, dep);
                break;
            }
    }
}

static void print_changes(FILE *out, json_t *changes)
{
    size_t i;
    json_t *v;
    json_array_foreach(changes, i, v)
    {
        fprintf(out, "%s%s", i ? "; " : " (", json_string_value(v));
    }
    fprintf(out, "%s\n", json_array_size(changes) ? ")" : "");
}

/*
 * Per instance: the chain loading would run (scripts and automatic steps)
 * and the result of its dry run on a scratch copy of the database.
 */
static void print_migrations(FILE *out, ph_host *h, json_t *scans, const char *bad,
                             json_t *problems)
{
    int header = 0;
    for (size_t i = 0; i < h->plan.n; i++) {
        const ph_plan_item *it = &h->plan.items[i];
        json_t *plan = NULL, *scan = scan_of(h, scans, i);
        if (it->state != PH_PLAN_OK || !it->manifest || bad[i] == 2 ||
            ph_migrate_plan(it->manifest, h->cfg.data_dir, it->instance, &plan)) {
            ph_error_clear();
            continue;
        }
        json_t *dry =
            json_is_true(json_object_get(scan, "ok")) ? rehearsal_of(scan, it->instance) : NULL;
        const char *action = json_string_value(json_object_get(plan, "action")) ?: "";
        const char *problem = json_string_value(json_object_get(plan, "problem"));
        int dry_ok = dry && json_is_true(json_object_get(dry, "ok"));
        json_t *changes = json_object_get(dry, "changes");
        if (!strcmp(action, "install") && (!dry || dry_ok) && !problem) {
            json_decref(plan);
            continue;
        }
        if (!strcmp(action, "none") && !problem &&
            (!dry || (dry_ok && !json_array_size(changes)))) {
            json_decref(plan);
            continue;
        }
        if (dry) /* the dry run's verdict replaces the guess made without the declaration */
            json_object_del(plan, "problem");
        if (dry_ok) /* and a hint about what would need a script is moot */
            json_object_del(plan, "note");
        char *line = ph_migrate_plan_text(plan);
        if (!header++)
            fprintf(out, "migrations:\n");
        fprintf(out, "  %s\n", line ? line : it->instance);
        free(line);
        if (dry_ok) {
            fprintf(out, "    dry run on a copy of the database: ok");
            print_changes(out, changes);
        } else if (dry) {
            const char *err = json_string_value(json_object_get(dry, "error")) ?: "?";
            fprintf(out, "    dry run on a copy of the database: FAILED: %s\n", err);
            add_problem(problems, "instance '%s': the migration would fail: %s", it->instance, err);
        } else if (problem) {
            add_problem(problems, "instance '%s': %s", it->instance, problem);
        }
        json_decref(plan);
    }
}

/*
 * check --json (dist/schemas/check.schema.json): the load order with each
 * instance's state, build and dependencies, the notes, the problems, and
 * "ok". Exits 1 when there are problems, as the text form does.
 */
static int print_check_json(ph_host *h, json_t *scans, const char *bad, json_t *problems)
{
    json_t *insts = json_array(), *notes = json_array();
    for (size_t i = 0; insts && i < h->plan.n; i++) {
        const ph_plan_item *it = &h->plan.items[i];
        json_t *scan = scan_of(h, scans, i), *needs = json_array();
        const char *state = ph_host_item_state(h, i, NULL), *why = it->reason;
        if (scan)
            state = bad[i] == 1 ? "failed" : bad[i] == 2 ? "skipped" : "ok";
        if (scan && json_string_value(json_object_get(scan, "error")))
            why = json_string_value(json_object_get(scan, "error"));
        for (size_t k = 0; needs && k < it->n_deps; k++)
            json_array_append_new(needs, json_string(h->plan.items[it->deps[k]].instance));
        json_t *e = json_pack("{s:s,s:s?,s:s?,s:s,s:o,s:s*,s:s*,s:s*}", "instance", it->instance,
                              "package", it->manifest ? it->manifest->name : NULL, "version",
                              it->manifest ? it->manifest->version_text : NULL, "state", state,
                              "needs", needs ? needs : json_array(), "build",
                              json_string_value(json_object_get(scan, "build")), "reason",
                              strcmp(state, "ok") ? why : NULL, "note", it->note);
        if (e && it->manifest)
            json_object_set_new(e, "provides", ph_manifest_provides_json(it->manifest));
        json_array_append_new(insts, e);
    }
    for (size_t i = 0; notes && i < h->plan.n_notes; i++)
        json_array_append_new(notes, json_string(h->plan.notes[i]));
    json_t *doc = json_pack("{s:b,s:o,s:o,s:O}", "ok", json_array_size(problems) == 0, "instances",
                            insts, "notes", notes, "problems", problems);
    int rc = doc ? print_json(doc) : 1;
    json_decref(doc);
    return rc ? rc : json_array_size(problems) ? 1 : 0;
}

static int cmd_check(cli *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    ph_host *h = NULL;
    json_t *scans = json_object(), *problems = json_array();
    int rc = ph_cli_open_host(&c->o, &h);
    if (rc || (rc = scan_packages(h, scans))) {
        print_error(NULL);
        json_decref(scans);
        json_decref(problems);
        ph_host_free(h);
        return 1;
    }
    for (size_t i = 0; i < h->set.n_problems; i++)
        add_problem(problems, "%s", h->set.problems[i]);
    for (size_t i = 0; i < h->plan.n_problems; i++)
        add_problem(problems, "%s", h->plan.problems[i]);
    char *bad = calloc(h->plan.n + 1, 1);
    if (!bad) {
        fprintf(stderr, "plughost: out of memory\n");
        json_decref(scans);
        json_decref(problems);
        ph_host_free(h);
        return 1;
    }
    mark_unloadable(h, scans, bad);
    FILE *out =
        c->json ? fopen("/dev/null", "w") : stdout; /* --json: the same checks, told as JSON */
    if (!out)
        out = stdout;
    print_plan(out, h, scans, bad, problems);
    print_migrations(out, h, scans, bad, problems);
    if (out != stdout)
        fclose(out);
    if (c->json) {
        int rc = print_check_json(h, scans, bad, problems);
        free(bad);
        json_decref(scans);
        json_decref(problems);
        ph_host_free(h);
        return rc;
    }
    free(bad);
    if (h->plan.n_notes)
        printf("notes (%zu):\n", h->plan.n_notes);
    for (size_t i = 0; i < h->plan.n_notes; i++)
        printf("  - %s\n", h->plan.notes[i]);
    size_t n = json_array_size(problems);
    if (n) {
        size_t i;
        json_t *v;
        printf("problems (%zu):\n", n);
        json_array_foreach(problems, i, v)
        {
            printf("  - %s\n", json_string_value(v));
        }
    } else {
        printf("no problems\n");
    }
    json_decref(scans);
    json_decref(problems);
    ph_host_free(h);
    return n ? 1 : 0;
}

/* The instances the plan runs `m` in: ["shop"] (new reference). */
static json_t *runs_of(const ph_host *h, const ph_manifest *m)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < h->plan.n; i++)
        if (h->plan.items[i].manifest == m && h->plan.items[i].state == PH_PLAN_OK)
            json_array_append_new(arr, json_string(h->plan.items[i].instance));
    return arr;
}

/* How many versions of package `name` are installed. */
static size_t versions_of(const ph_host *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->set.n; i++)
        n += strcmp(h->set.items[i]->name, name) == 0;
    return n;
}

static int cmd_list(cli *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    ph_host *h = NULL;
    if (ph_cli_open_host(&c->o, &h)) {
        print_error(NULL);
        return 1;
    }
    if (c->json) { /* dist/schemas/list.schema.json */
        json_t *out = json_pack("{s:[],s:[]}", "packages", "problems");
        for (size_t i = 0; out && i < h->set.n; i++) {
            const ph_manifest *m = h->set.items[i];
            json_t *e =
                json_pack("{s:s,s:s,s:s?,s:s,s:s,s:s,s:s*,s:s*,s:s*,s:s*,s:o,s:o}", "name", m->name,
                          "version", m->version_text, "description", m->description, "directory",
                          m->dir, "library", m->library, "kind", m->kind, "summary", m->summary,
                          "author", m->author, "url", m->url, "license", m->license, "provides",
                          ph_manifest_provides_json(m), "runs", runs_of(h, m));
            json_array_append_new(json_object_get(out, "packages"), e);
        }
        for (size_t i = 0; out && i < h->set.n_problems; i++)
            json_array_append_new(json_object_get(out, "problems"),
                                  json_string(h->set.problems[i]));
        int rc = out ? print_json(out) : 1;
        json_decref(out);
        rc = rc ? rc : h->set.n_problems ? 1 : 0; /* as without --json */
        ph_host_free(h);
        return rc;
    }
    for (size_t i = 0; i < h->set.n; i++) {
        const ph_manifest *m = h->set.items[i];
        const char *about = m->summary ? m->summary : m->description ? m->description : "";
        printf("%-16s %-10s %-11s %s\n", m->name, m->version_text, m->kind, about);
        if (m->author || m->license || m->url)
            printf("%-16s %-10s %-11s %s%s%s%s%s\n", "", "", "", m->author ? m->author : "",
                   m->author && (m->license || m->url) ? ", " : "", m->license ? m->license : "",
                   m->license && m->url ? ", " : "", m->url ? m->url : "");
        if (m->n_provides) {
            printf("%-16s %-10s %-11s provides ", "", "", "");
            ph_manifest_provides_print(stdout, m);
            printf("\n");
        }
        if (versions_of(h, m->name) > 1) { /* which of the versions side by side runs */
            json_t *runs = runs_of(h, m);
            size_t k;
            json_t *v;
            printf("%-16s %-10s %-11s %s", "", "", "",
                   json_array_size(runs) ? "runs as"
                                         : "installed beside other versions; no instance runs it");
            json_array_foreach(runs, k, v)
                printf("%s instance '%s'", k ? "," : "", json_string_value(v));
            printf("\n");
            json_decref(runs);
        }
    }
    /* a manifest that could not be read is no package, but it is never passed over in silence */
    for (size_t i = 0; i < h->set.n_problems; i++)
        fprintf(stderr, "plughost: not listed: %s\n", h->set.problems[i]);
    int rc = h->set.n_problems ? 1 : 0;
    ph_host_free(h);
    return rc;
}

/* ---- run: the daemon serves ---- */

/*
 * Where plughostd is: beside this binary (the build tree), else at
 * PH_DAEMON_RELPATH from its directory (installed: /usr/libexec/plughost/).
 * malloc'd; NULL with the places looked at in *tried.
 */
static char *daemon_path(char *tried, size_t n)
{
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        snprintf(tried, n, "/proc/self/exe: %s", ph_strerror(errno));
        return NULL;
    }
    self[len] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0';
    const char *cands[] = {"plughostd", PH_DAEMON_RELPATH};
    size_t used = 0;
    tried[0] = '\0';
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        char *path = NULL;
        if (asprintf(&path, "%s/%s", self, cands[i]) < 0)
            return NULL;
        if (access(path, X_OK) == 0)
            return path;
        int w = snprintf(tried + used, n - used, "%s%s", i ? ", " : "", path);
        if (w > 0 && (size_t)w < n - used)
            used += (size_t)w;
        free(path);
    }
    return NULL;
}

/*
 * Execs the daemon with the options given here (already checked): the
 * process keeps its pid, so systemd's Type=notify, signals and the exit
 * status are the daemon's own.
 */
static int cmd_run(cli *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char tried[2 * PATH_MAX + 8];
    char *path = daemon_path(tried, sizeof tried);
    if (!path) {
        fprintf(stderr,
                "plughost: cannot find the daemon plughostd (looked for %s); reinstall "
                "plughost or rebuild it\n",
                tried);
        return 1;
    }
    const ph_cli_opts *o = &c->o;
    char **args = calloc(16 + 2 * o->n_package_dirs, sizeof *args);
    if (!args) {
        free(path);
        fprintf(stderr, "plughost: out of memory\n");
        return 1;
    }
    size_t n = 0;
    args[n++] = path;
    args[n++] = "run";
#define PH_ARG_(flag, value)                                                                       \
    do {                                                                                           \
        if (value) {                                                                               \
            args[n++] = flag;                                                                      \
            args[n++] = (char *)(value);                                                           \
        }                                                                                          \
    } while (0)
    PH_ARG_("--config", o->config);
    PH_ARG_("--listen", o->listen);
    PH_ARG_("--data-dir", o->data_dir);
    PH_ARG_("--log-level", o->log_level);
    PH_ARG_("--log-format", o->log_format);
    for (size_t i = 0; i < o->n_package_dirs; i++)
        PH_ARG_("--packages", o->package_dirs[i]);
#undef PH_ARG_
    if (o->strict)
        args[n++] = "--strict";
    args[n] = NULL;
    fflush(NULL);
    execv(path, args);
    fprintf(stderr, "plughost: cannot start the daemon %s: %s\n", path, ph_strerror(errno));
    free(args);
    free(path);
    return 1;
}

/* ---- call ---- */

/* Converts "v" for a parameter of type t (t < 0: unknown, guess from the text). */
static json_t *cli_value(const char *key, const char *v, int t)
{
    switch (t) {
    case PH_I64: {
        int64_t n;
        if (ph_parse_i64(v, &n) == 0)
            return json_integer(n);
        ph_error_set(PH_EARGS, "%s=%s: '%s' takes an integer", key, v, key);
        return NULL;
    }
    case PH_F64: {
        double d;
        if (ph_parse_f64(v, &d) == 0)
            return json_real(d);
        ph_error_set(PH_EARGS, "%s=%s: '%s' takes a finite number", key, v, key);
        return NULL;
    }
    case PH_BOOL: {
        bool b;
        if (ph_parse_bool(v, &b) == 0)
            return json_boolean(b);
        ph_error_set(PH_EARGS, "%s=%s: '%s' takes true or false", key, v, key);
        return NULL;
    }
    case PH_STR:
        break;
    default: {
        json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
        if (j)
            return j;
    }
    }
    json_t *text = json_string(v);
    if (!text)
        ph_error_set(PH_EARGS, "%s: the value is not valid UTF-8 text", key);
    return text;
}

/* The declared type of `key`: a method's parameter, or a CRUD method's model field. */
static int param_type(const ph_route *rt, const char *key)
{
    for (uint32_t i = 0; rt && i < rt->n_args; i++)
        if (strcmp(rt->args[i].name, key) == 0)
            return (int)rt->args[i].type;
    for (uint32_t i = 0; rt && rt->model && i < rt->model->n_fields; i++)
        if (strcmp(rt->model->fields[i].name, key) == 0)
            return (int)rt->model->fields[i].type;
    return -1;
}

/* Builds JSON arguments from "k=v ..." or one JSON text. */
static int cli_args(const ph_route *rt, int argc, char **argv, json_t **out)
{
    *out = NULL;
    if (argc == 0)
        return 0;
    if (argc == 1 && (argv[0][0] == '{' || argv[0][0] == '[')) {
        json_error_t err;
        *out = json_loads(argv[0], 0, &err);
        if (!*out)
            return ph_error_set(PH_EARGS, "arguments are not valid JSON: %s (column %d)", err.text,
                                err.column);
        return 0;
    }
    json_t *obj = json_object();
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i]) {
            json_decref(obj);
            return ph_error_set(PH_EARGS,
                                "'%s': arguments are name=value pairs or one JSON "
                                "object/array",
                                argv[i]);
        }
        *eq = 0;
        if (json_object_get(obj, argv[i])) {
            json_decref(obj);
            return ph_error_set(PH_EARGS, "'%s' is given twice; give each argument once", argv[i]);
        }
        json_t *v = cli_value(argv[i], eq + 1, param_type(rt, argv[i]));
        if (!v) {
            json_decref(obj);
            return PH_EARGS;
        }
        json_object_set_new(obj, argv[i], v);
    }
    *out = obj;
    return 0;
}

static int print_json(json_t *v)
{
    char *s = ph_json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!s)
        return 1;
    printf("%s\n", s);
    free(s);
    return 0;
}

/* ---- talking to a running host ---- */

/*
 * Where the running host is and the admin token for it. Without --url or
 * --listen: its local socket when the socket exists (root and the host's
 * user need no token there), else its TCP address from the config. With
 * them: that address. The token goes only to the configured host.
 */
static int remote_target(cli *c, char **url, char **token)
{
    ph_config cfg;
    struct stat st;
    memset(&cfg, 0, sizeof cfg);
    *url = *token = NULL;
    c->missing_socket[0] = '\0';
    int rc = ph_cli_load_config(&c->o, &cfg);
    if (rc)
        return rc;
    const char *sock = cfg.http.socket;
    if (!c->url && !c->o.listen && sock && *sock) {
        if (lstat(sock, &st) == 0) {
            if (asprintf(url, PH_CLIENT_LOCAL "%s", sock) < 0)
                *url = NULL;
            ph_config_free(&cfg);
            return *url ? 0 : ph_error_set(PH_ENOMEM, "out of memory");
        }
        /* no socket: a host without one may still listen on TCP (said if none does) */
        snprintf(c->missing_socket, sizeof c->missing_socket, "%s", sock);
    }
    *url = c->url ? strdup(c->url) : ph_client_url_from_config(&cfg);
    if (c->token) { /* given for this request: sent where it was told to go */
        *token = strdup(c->token);
    } else if (*url && !ph_client_token_belongs(&cfg, *url)) {
        /* The token is the configured host's; --url may name any other server. */
        char *home = ph_client_url_from_config(&cfg);
        snprintf(c->token_note, sizeof c->token_note,
                 "the admin token was not sent to %s: it belongs to the host at %s; to use it, "
                 "name that host with -c host.ini or --listen ADDR:PORT",
                 *url, home ? home : "the configured address");
        free(home);
    } else if (cfg.auth.token) {
        *token = strdup(cfg.auth.token);
    } else if (cfg.auth.token_file) {
        FILE *f = fopen(cfg.auth.token_file, "r");
        char buf[256];
        if (f && fgets(buf, sizeof buf, f)) {
            buf[strcspn(buf, "\r\n")] = 0;
            *token = strdup(buf);
        }
        if (f)
            fclose(f);
    }
    ph_config_free(&cfg);
    return *url ? 0 : ph_error_set(PH_ENOMEM, "out of memory");
}

static int type_from_name(const char *name)
{
    static const struct {
        const char *n;
        ph_type t;
    } map[] = {{"bool", PH_BOOL}, {"int64", PH_I64},      {"double", PH_F64},   {"string", PH_STR},
               {"json", PH_JSON}, {"timestamp", PH_TIME}, {"reference", PH_REF}};
    for (size_t i = 0; name && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].n, name) == 0)
            return (int)map[i].t;
    return -1;
}

/* A model description (fields and types) from a CRUD method's "fields"; *fields owned. */
static void remote_model(json_t *list, ph_model *model, ph_field **fields)
{
    memset(model, 0, sizeof *model);
    model->fields = *fields = calloc(json_array_size(list) + 1, sizeof **fields);
    for (size_t i = 0; *fields && i < json_array_size(list); i++) {
        json_t *f = json_array_get(list, i);
        int t = type_from_name(json_string_value(json_object_get(f, "type")));
        ph_field *d = &(*fields)[model->n_fields];
        *d = (ph_field){.name = json_string_value(json_object_get(f, "name")),
                        .type = t < 0 ? PH_JSON : (ph_type)t};
        model->n_fields += d->name != NULL;
    }
}

/* Builds a route description from GET /<instance>/actors, so k=v values convert by type. */
static int remote_route(const char *url, const char *token, const char *address, ph_route *rt,
                        ph_arg *args, ph_model *model, ph_field **fields, json_t **keep)
{
    char inst[256], actor[256], method[256];
    *keep = NULL;
    if (sscanf(address, "%255[^.].%255[^.].%255s", inst, actor, method) != 3)
        return -1;
    char *path = NULL;
    if (asprintf(&path, "/%s/actors", inst) < 0)
        return -1;
    json_t *desc = NULL;
    int rc = ph_client_get_json(url, token, path, &desc);
    free(path);
    if (rc)
        return rc;
    json_t *m = json_object_get(json_object_get(json_object_get(desc, "actors"), actor), method);
    json_t *list = json_object_get(m, "args");
    memset(rt, 0, sizeof *rt);
    for (size_t i = 0; i < json_array_size(list) && i < PH_MAX_ARGS; i++) {
        json_t *a = json_array_get(list, i);
        args[i].name = json_string_value(json_object_get(a, "name"));
        int t = type_from_name(json_string_value(json_object_get(a, "type")));
        args[i].type = t < 0 ? PH_JSON : (ph_type)t;
        rt->n_args++;
    }
    rt->args = args;
    if (json_is_array(json_object_get(m, "fields"))) {
        remote_model(json_object_get(m, "fields"), model, fields);
        rt->model = model;
    }
    *keep = desc;
    return 0;
}

static int cmd_call_remote(cli *c, int argc, char **argv)
{
    char *url = NULL, *token = NULL;
    json_t *args = NULL, *out = NULL, *desc = NULL;
    ph_route rt;
    ph_arg targs[PH_MAX_ARGS];
    ph_model model;
    ph_field *fields = NULL;
    int status = 1;
    if (remote_target(c, &url, &token)) {
        print_error(NULL);
        return 1;
    }
    int found = remote_route(url, token, argv[0], &rt, targs, &model, &fields, &desc) == 0;
    if (cli_args(found ? &rt : NULL, argc - 1, argv + 1, &args)) {
        print_error(NULL);
        goto cleanup;
    }
    if (ph_client_call(url, token, argv[0], args, &out)) {
        unreachable(c);
        fprintf(stderr, "plughost: %s: %s\n", ph_error_last_word(), ph_error_last());
        if (ph_error_last_code() == PH_EAUTH)
            token_hint(c);
        status = host_exit(ph_error_last_code());
        goto cleanup;
    }
    status = print_json(out);
cleanup:
    json_decref(desc);
    free(fields);
    json_decref(args);
    json_decref(out);
    free(url);
    free(token);
    return status;
}

static int cmd_status(cli *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char *url = NULL, *token = NULL;
    json_t *pk = NULL;
    if (remote_target(c, &url, &token) || ph_client_get_json(url, token, "/_/packages", &pk)) {
        unreachable(c);
        print_error("status");
        if (ph_error_last_code() == PH_EAUTH)
            token_hint(c);
        free(url);
        free(token);
        return host_exit(ph_error_last_code());
    }
    if (c->json) { /* /_/packages' body: dist/schemas/status.schema.json */
        int rc = print_json(pk);
        json_decref(pk);
        free(url);
        free(token);
        return rc;
    }
    /* the columns as wide as their longest entry: a long instance name shifts, never skews */
    static const char *const cols[] = {"instance", "package", "version", "state"};
    static const char *const heads[] = {"INSTANCE", "PACKAGE", "VERSION", "STATE"};
    int w[4];
    size_t i;
    json_t *it;
    for (size_t k = 0; k < 4; k++) {
        w[k] = (int)strlen(heads[k]);
        json_array_foreach(json_object_get(pk, "instances"), i, it)
        {
            int n = (int)strlen(json_string_value(json_object_get(it, cols[k])) ?: "-");
            w[k] = n > w[k] ? n : w[k];
        }
    }
    printf("%-*s %-*s %-*s %-*s DETAIL\n", w[0], heads[0], w[1], heads[1], w[2], heads[2], w[3],
           heads[3]);
    json_array_foreach(json_object_get(pk, "instances"), i, it)
    {
        const char *reason = json_string_value(json_object_get(it, "reason"));
        if (!reason)
            reason = json_string_value(json_object_get(it, "note"));
        const char *rerr = json_string_value(json_object_get(it, "reload_error"));
        for (size_t k = 0; k < 4; k++)
            printf("%-*s ", w[k], json_string_value(json_object_get(it, cols[k])) ?: "-");
        printf("%s%s%s\n", reason ? reason : "", rerr ? "last reload failed: " : "",
               rerr ? rerr : "");
    }
    json_t *left = json_object_get(pk, "outlived");
    if (json_array_size(left))
        printf("\ncode that outlived stop():\n");
    json_array_foreach(left, i, it) printf("  %s\n", json_string_value(it));
    json_decref(pk);
    free(url);
    free(token);
    return 0;
}

/*
 * POSTs management operation `op` for `pkg` (/_/<op>/<pkg>) to the running
 * host with the admin token. Returns the client's code (PH_EUNREACHABLE:
 * nothing listens); *url (caller frees) names the host for messages.
 */
static int manage_remote(cli *c, const char *op, const char *pkg, ph_client_response *r, char **url)
{
    char *token = NULL, *path = NULL;
    int rc = remote_target(c, url, &token);
    if (!rc && asprintf(&path, "/_/%s/%s", op, pkg) < 0)
        rc = ph_error_set(PH_ENOMEM, "out of memory");
    if (!rc)
        rc = ph_client_request(*url, token, "POST", path, "{}", 2, r);
    if (!rc && r->status == 401)
        token_hint(c);
    free(path);
    free(token);
    return rc;
}

/*
 * The message of an error response ({"error":{"code","message"}}), its raw
 * body, or what happened when it has neither (a redirect, an empty answer).
 * Returns the exit status (http_exit).
 */
static int print_remote_error(const char *who, const ph_client_response *r)
{
    json_t *body = json_loads(r->body ? r->body : "", 0, NULL);
    json_t *err = json_object_get(body, "error");
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (msg || (r->body && r->body[0] && r->status / 100 != 3)) {
        char text[8192];
        ph_log_escape(text, sizeof text, msg ?: r->body);
        fprintf(stderr, "%s: %s: %s\n", who,
                json_string_value(json_object_get(err, "code")) ?: "error", text);
    } else if (r->status / 100 == 3)
        fprintf(stderr,
                "%s: redirect: the host answered HTTP %d to %s, which is not followed with the "
                "admin token; pass --url with the address it names\n",
                who, r->status, r->location ? r->location : "nowhere");
    else
        fprintf(stderr, "%s: error: the host answered HTTP %d with no message\n", who, r->status);
    json_decref(body);
    return http_exit(r->status);
}

/* reload, enable and disable: one management request to the running host. */
static int manage_command(cli *c, const char *op, int argc, char **argv)
{
    (void)argc; /* the command table checked the count */
    char *url = NULL;
    ph_client_response r = {0};
    int status = 1;
    if (manage_remote(c, op, argv[0], &r, &url)) {
        unreachable(c);
        print_error(op);
        status = host_exit(ph_error_last_code());
    } else if (r.status / 100 == 2) {
        printf("%s\n", r.body);
        status = 0;
    } else {
        status = print_remote_error("plughost", &r);
    }
    ph_client_response_free(&r);
    free(url);
    return status;
}

static int cmd_reload(cli *c, int argc, char **argv)
{
    return manage_command(c, "reload", argc, argv);
}

static int cmd_enable(cli *c, int argc, char **argv)
{
    return manage_command(c, "enable", argc, argv);
}

static int cmd_disable(cli *c, int argc, char **argv)
{
    return manage_command(c, "disable", argc, argv);
}

static int cmd_backup(cli *c, int argc, char **argv)
{
    (void)argc; /* the command table checked the count */
    ph_config cfg;
    memset(&cfg, 0, sizeof cfg);
    char *path = NULL;
    if (ph_cli_load_config(&c->o, &cfg)) {
        print_error(NULL);
        return 1;
    }
    int rc = ph_store_backup(cfg.data_dir, argv[0], &path);
    ph_config_free(&cfg);
    if (rc) {
        print_error("backup");
        return 1;
    }
    printf("backup of %s written to %s\n", argv[0], path);
    free(path);
    return 0;
}

/* ---- install: check a package directory, copy it in, have the host load it ---- */

/* A running host lets go of a package whose directory is gone or put back (`who` says so). */
static void forget_remote(cli *c, const char *pkg, const char *who)
{
    char *url = NULL, *said = NULL;
    ph_client_response r = {0};
    if (manage_remote(c, "reload", pkg, &r, &url) == 0 && r.status / 100 != 2 && r.status != 404 &&
        asprintf(&said, "plughost %s: the running host", who) >= 0)
        print_remote_error(said, &r);
    ph_client_response_free(&r);
    free(said);
    free(url);
}

/* "no host is running (no socket at S)" or "no host is running at URL". */
static void say_no_host(cli *c, const char *url, const char *then)
{
    if (c->missing_socket[0])
        printf("no host is running (no socket at %s): %s\n", c->missing_socket, then);
    else
        printf("no host is running at %s: %s\n", url ? url : "?", then);
}

/*
 * Has the running host load what was installed; says so when no host runs.
 * 0 loaded (or no host), 1 an error, 2 the host refused the change and kept
 * what ran (the install is undone), 75 the same but the host asks to retry
 * later (starting, reloading, busy).
 */
static int install_notify(cli *c, const char *name)
{
    char *url = NULL, *then = NULL;
    ph_client_response r = {0};
    int status = 0;
    int rc = manage_remote(c, "reload", name, &r, &url);
    if (rc == PH_EUNREACHABLE) {
        if (asprintf(&then, "it loads %s when it starts", name) < 0)
            then = NULL;
        say_no_host(c, url, then ? then : name);
    } else if (rc) {
        print_error("install");
        status = host_exit(rc);
    } else if (r.status / 100 == 2) {
        printf("the running host at %s loaded %s: %s\n", url, name, r.body);
    } else {
        /* "state": a new package that failed to start stays, failed, as status says */
        json_t *body = json_loads(r.body ? r.body : "", 0, NULL);
        const char *code =
            json_string_value(json_object_get(json_object_get(body, "error"), "code"));
        bool kept = code && strcmp(code, "state") == 0;
        int exit =
            print_remote_error(kept ? "plughost install: installed, but the running host"
                                    : "plughost install: the running host refused the change",
                               &r);
        /* refused: 2, or 75 when it asks to retry later (starting, reloading, busy) */
        status = kept ? 1 : exit == 75 ? 75 : 2;
        json_decref(body);
    }
    ph_client_response_free(&r);
    free(then);
    free(url);
    return status;
}

/* Unpacks each archive among `argv` (dist.h: checked before anything is written) into a
 * staging directory: dirs[k] is argv[k] or its staging directory (staged[k], to discard). */
static int stage_archives(const ph_config *cfg, int argc, char **argv, char **dirs, char **staged)
{
    for (int k = 0; k < argc; k++) {
        dirs[k] = argv[k];
        if (!ph_dist_is(argv[k]))
            continue;
        if (ph_dist_unpack(cfg, argv[k], &staged[k], NULL, NULL))
            return -1;
        printf("verified %s\n", argv[k]);
        dirs[k] = staged[k];
    }
    return 0;
}

static int cmd_install(cli *c, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "plughost install: which package directory or archive? usage: plughost "
                        "install DIR|ARCHIVE [...]\n");
        return 2;
    }
    ph_manifest **ms = NULL;
    json_t *report = NULL;
    ph_host *h = NULL;
    int status = 1, undo = 0;
    size_t i;
    json_t *v;
    char **dirs = calloc((size_t)argc, sizeof *dirs),
         **staged = calloc((size_t)argc, sizeof *staged);
    ph_install_copied *copied = calloc((size_t)argc, sizeof *copied);
    if (!dirs || !staged || !copied || ph_cli_open_host(&c->o, &h)) {
        print_error(NULL);
        goto cleanup;
    }
    if (stage_archives(&h->cfg, argc, argv, dirs, staged) ||
        ph_install_check(&h->cfg, &h->set, dirs, (size_t)argc, &ms, &report)) {
        print_error("install");
        goto cleanup;
    }
    for (int k = 0; k < argc; k++)
        printf("installing %s %s from %s\n", ms[k]->name, ms[k]->version_text, argv[k]);
    json_array_foreach(json_object_get(report, "migrations"), i, v)
        printf("  %s\n", json_string_value(v));
    json_array_foreach(json_object_get(report, "notes"), i, v)
        printf("  note: %s\n", json_string_value(v));
    json_array_foreach(json_object_get(report, "problems"), i, v)
        fprintf(stderr, "plughost install: %s\n", json_string_value(v));
    if (!json_is_true(json_object_get(report, "ok"))) {
        for (int k = 0; k < argc; k++)
            fprintf(stderr, "plughost install: %s %s was not installed; nothing was changed\n",
                    ms[k]->name, ms[k]->version_text);
        goto cleanup;
    }
    for (int k = 0; k < argc; k++) {
        if (ph_install_copy(&h->cfg, &h->set, ms[k], &copied[k])) {
            print_error("install");
            undo = 1;
            goto cleanup;
        }
        printf("installed %s %s in %s\n", ms[k]->name, ms[k]->version_text, copied[k].target);
    }
    status = 0;
    for (int k = 0; k < argc && undo == 0; k++) { /* the first request applies them all */
        int said = install_notify(c, ms[k]->name);
        undo = said == 2 || said == 75;
        status = said == 75 ? 75 : status ? status : said ? 1 : 0;
    }
    if (undo) { /* the host runs what it ran: the package directory goes back to match it */
        for (int k = 0; k < argc; k++) {
            ph_install_settle(&copied[k], 1);
            fprintf(stderr,
                    "plughost install: %s %s was not installed; the package directory is as it "
                    "was\n",
                    ms[k]->name, ms[k]->version_text);
        }
        for (int k = 0; k < argc; k++)
            forget_remote(c, ms[k]->name, "install");
    }
cleanup:
    for (int k = 0; copied && k < argc; k++)
        ph_install_settle(&copied[k], undo);
    free(copied);
    json_decref(report);
    ph_host_free(h);
    ph_install_free(ms, (size_t)argc);
    for (int k = 0; staged && k < argc; k++) {
        ph_dist_discard(staged[k]);
        free(staged[k]);
    }
    free(staged);
    free(dirs);
    return status;
}

/* ---- pack, keygen: distribution archives (dist.h) ---- */

static int cmd_pack(cli *c, int argc, char **argv)
{
    (void)argc; /* the command table checked the count */
    char *path = NULL;
    if (ph_dist_pack(argv[0], c->output ? c->output : ".", c->sign, &path)) {
        print_error("pack");
        return 1;
    }
    printf("wrote %s (%s)\n", path, c->sign ? "signed" : "unsigned");
    free(path);
    return 0;
}

static int cmd_keygen(cli *c, int argc, char **argv)
{
    (void)argc; /* the command table checked the count */
    const char *dir = c->output ? c->output : ".";
    char *line = NULL;
    if (ph_dist_keygen(argv[0], dir, &line)) {
        print_error("keygen");
        return 1;
    }
    printf("wrote %s/%s.secret (keep it private: it signs archives) and %s/%s.pub\n"
           "hosts that trust this key have in host.ini:\n[trust]\n%s\n",
           dir, argv[0], dir, argv[0], line);
    free(line);
    return 0;
}

/* ---- remove: uninstall a package, keep (or purge) its data ---- */

/* Keeps or purges the data of one instance and says where it is. */
static int instance_data(const char *data_dir, const char *inst, int purge)
{
    if (purge) {
        char *backup = NULL;
        int rc = ph_store_purge(data_dir, inst, &backup);
        if (rc == PH_ENOTFOUND) {
            printf("%s: no data to purge\n", inst);
            return 0;
        }
        if (rc) {
            print_error("purge");
            return 1;
        }
        printf("%s: data deleted; a backup was written first: %s\n", inst, backup);
        free(backup);
        return 0;
    }
    json_t *d = NULL;
    if (ph_store_describe(data_dir, inst, &d) == 0 && d) {
        printf("%s: data kept in %s (reinstalling finds it; `plughost remove --purge` deletes "
               "it after a backup)\n",
               inst, json_string_value(json_object_get(d, "path")) ?: data_dir);
        json_decref(d);
    }
    return 0;
}

/*
 * The running host removes `spec` (its callbacks run: before_uninstall,
 * before_delete) and keeps or purges the data: 0 done, 1 refused, 3 no
 * host runs or it does not know the package (the CLI removes it).
 */
static int remove_remote(cli *c, const char *spec)
{
    char *url = NULL;
    ph_client_response r = {0};
    int status = 0;
    int rc = manage_remote(c, c->purge ? "purge" : "remove", spec, &r, &url);
    json_t *body = rc ? NULL : json_loads(r.body ? r.body : "", 0, NULL), *d;
    size_t i;
    if (rc == PH_EUNREACHABLE) {
        say_no_host(c, url,
                    "the package's before_uninstall and before_delete callbacks do not run "
                    "(they run only in a running host)");
        status = 3;
    } else if (rc) {
        fprintf(stderr, "plughost remove: cannot tell whether the host at %s still runs %s: %s\n",
                url ? url : "(no address)", spec, ph_error_last());
        status = 1;
    } else if (r.status == 404) {
        status = 3; /* the host does not know it */
    } else if (r.status / 100 != 2) {
        status = print_remote_error("plughost remove: the running host refused", &r);
    } else {
        const char *pkg = json_string_value(json_object_get(body, "package")) ?: spec;
        const char *result = json_string_value(json_object_get(body, "result")) ?: "?";
        if (strncmp(result, "version removed", 15) == 0) /* one of several; none ran it */
            printf("the running host at %s removed %s: %s\n", url, spec, result);
        else if (json_array_size(json_object_get(body, "outlived")))
            printf("the running host at %s stopped %s, but its code still runs:\n", url, pkg);
        else
            printf("the running host at %s unloaded %s and removed it\n", url, pkg);
        json_array_foreach(json_object_get(body, "outlived"), i, d)
            printf("  %s\n", json_string_value(d));
        printf("removed package %s %s (%s)\n", pkg,
               json_string_value(json_object_get(body, "version")) ?: "?",
               json_string_value(json_object_get(body, "directory")) ?: "?");
        json_array_foreach(json_object_get(body, "data"), i, d)
        {
            const char *inst = json_string_value(json_object_get(d, "instance")) ?: "?";
            const char *backup = json_string_value(json_object_get(d, "backup"));
            const char *path = json_string_value(json_object_get(d, "path"));
            const char *err = json_string_value(json_object_get(d, "error"));
            if (backup)
                printf("%s: data deleted; a backup was written first: %s\n", inst, backup);
            else if (path)
                printf("%s: data kept in %s (reinstalling finds it; `plughost remove --purge` "
                       "deletes it after a backup)\n",
                       inst, path);
            else if (err)
                fprintf(stderr, "plughost remove: %s: %s\n", inst, err);
        }
    }
    json_decref(body);
    ph_client_response_free(&r);
    free(url);
    return status;
}

/* A package that requires `pkg` (an optional one does not block the removal), or NULL. */
static const ph_manifest *required_by(const ph_host *h, const char *pkg)
{
    for (size_t i = 0; i < h->set.n; i++) {
        const ph_manifest *o = h->set.items[i];
        for (size_t k = 0; strcmp(o->name, pkg) && k < o->n_requires; k++)
            if (strcmp(o->requires[k].name, pkg) == 0)
                return o;
    }
    return NULL;
}

static int cmd_remove(cli *c, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "plughost remove: which package? usage: plughost remove [--purge] "
                        "NAME[@VERSION]\n");
        return 2;
    }
    const char *spec = argv[0];
    ph_host *h = NULL;
    const ph_manifest *m = NULL, *o;
    int status = 1, only = 1;
    /* The name becomes a path component of the data directory: it must be a plain name. */
    char *pkg = strndup(spec, strcspn(spec, "@"));
    if (!pkg || ph_config_check_name("package", pkg, PH_EINVAL)) {
        print_error("remove");
        free(pkg);
        return 2;
    }
    if (ph_cli_open_host(&c->o, &h)) {
        print_error(NULL);
        goto cleanup;
    }
    if (ph_install_pick(&h->set, &h->plan, spec, &m, &only) &&
        (ph_error_last_code() != PH_ENOTFOUND || !c->purge || strchr(spec, '@'))) {
        print_error("remove");
        goto cleanup;
    }
    only = only || !m; /* --purge of a package no longer installed: its data goes */
    if (only && (o = required_by(h, pkg))) {
        fprintf(stderr, "plughost remove: package '%s' requires '%s'; remove '%s' first\n", o->name,
                pkg, o->name);
        goto cleanup;
    }
    if (m && ph_uninstall_dir(&h->cfg, m, 1)) {
        print_error("remove");
        goto cleanup;
    }
    if ((status = remove_remote(c, spec)) != 3)
        goto cleanup;
    if (m) {
        if (ph_uninstall_dir(&h->cfg, m, 0)) {
            print_error("remove");
            status = 1;
            goto cleanup;
        }
        printf("removed package %s %s (%s)\n", m->name, m->version_text, m->dir);
        forget_remote(c, pkg, "remove");
    }
    status = 0;
    int any = 0;
    for (size_t i = 0; only && i < h->plan.n; i++) {
        const ph_plan_item *it = &h->plan.items[i];
        if (it->manifest && strcmp(it->manifest->name, pkg) == 0) {
            any = 1;
            status |= instance_data(h->cfg.data_dir, it->instance, c->purge);
        }
    }
    if (only && !any)
        status |= instance_data(h->cfg.data_dir, pkg, c->purge);
cleanup:
    free(pkg);
    ph_host_free(h);
    return status;
}

/* ---- new: scaffold a package that builds out of tree ---- */

static int write_new_file(const char *dir, const char *name, const char *text)
{
    char *path = NULL;
    if (asprintf(&path, "%s/%s", dir, name) < 0)
        return PH_ENOMEM;
    FILE *f = fopen(path, "wx");
    int rc = 0;
    if (!f || fputs(text, f) < 0)
        rc = ph_error_set(PH_EIO, "cannot write %s: %s", path, ph_strerror(errno));
    if (f && fclose(f) != 0 && !rc)
        rc = ph_error_set(PH_EIO, "cannot write %s", path);
    free(path);
    return rc;
}

static int cmd_new(cli *c, int argc, char **argv)
{
    (void)argc; /* the command table checked the count */
    (void)c;
    const char *name = argv[0];
    if (ph_config_check_name("package", name, PH_EINVAL)) {
        print_error("new");
        return 2;
    }
    if (mkdir(name, 0755) != 0) {
        fprintf(stderr, "plughost new: cannot create ./%s: %s\n", name, ph_strerror(errno));
        return 1;
    }
    char *ini = NULL, *src = NULL, *cm = NULL, *file = NULL;
    int rc =
        asprintf(&ini,
                 "[package]\nname = %s\nversion = 0.1.0\ndescription = TODO: what %s does\n"
                 "\n[parameters]\ngreeting = Hello\n",
                 name, name) < 0 ||
        asprintf(&src,
                 "/* %s: a plughost package. */\n#include <plughost/sdk.h>\n\n"
                 "static char *hello(ph_ctx *ctx, const char *who)\n{\n"
                 "    const char *greeting = ph_param(ctx, \"greeting\");\n"
                 "    size_t n = 0, m = 0;\n    while (greeting[n])\n        n++;\n"
                 "    while (who[m])\n        m++;\n"
                 "    char *out = ph_alloc(ctx, n + m + 3);\n    if (!out)\n        return NULL;\n"
                 "    for (size_t i = 0; i < n; i++)\n        out[i] = greeting[i];\n"
                 "    out[n] = ',';\n    out[n + 1] = ' ';\n"
                 "    for (size_t i = 0; i <= m; i++)\n        out[n + 2 + i] = who[i];\n"
                 "    return out;\n}\n\n"
                 "static const ph_method %s_methods[] = {\n"
                 "    PH_METHOD(hello, PH_STR, PH_ARG(\"who\", PH_STR)),\n};\n\n"
                 "PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR(\"%s\", %s_methods)));\n",
                 name, name, name, name) < 0 ||
        asprintf(&cm,
                 "cmake_minimum_required(VERSION 3.20)\nproject(%s C)\n"
                 "find_package(plughost REQUIRED)\n"
                 "# Stages build/packages/%s/ (the .so and package.ini): point a host's\n"
                 "# package_dirs at build/packages.\n"
                 "plughost_add_package(%s SOURCES %s.c)\n",
                 name, name, name, name) < 0 ||
        asprintf(&file, "%s.c", name) < 0;
    if (rc)
        rc = PH_ENOMEM;
    if (!rc && !(rc = write_new_file(name, "package.ini", ini)) &&
        !(rc = write_new_file(name, file, src)))
        rc = write_new_file(name, "CMakeLists.txt", cm);
    free(ini);
    free(src);
    free(cm);
    free(file);
    if (rc) {
        print_error("new");
        return 1;
    }
    printf("created ./%s/ (package.ini, %s.c, CMakeLists.txt)\n"
           "build:  cmake -S %s -B %s/build && cmake --build %s/build\n"
           "run:    plughost run --packages %s/build/packages\n"
           "call:   plughost call %s.%s.hello who=world\n",
           name, name, name, name, name, name, name, name);
    return 0;
}

static int cmd_call(cli *c, int argc, char **argv)
{
    if (!c->local)
        return cmd_call_remote(c, argc, argv);
    ph_host *h = NULL;
    json_t *args = NULL, *out = NULL;
    int status = 1;
    if (ph_cli_open_host(&c->o, &h)) {
        print_error(NULL);
        return 1;
    }
    ph_crash_install(NULL); /* a crash in package code names the package */
    if (ph_host_start(h)) {
        print_error("cannot start");
        goto cleanup;
    }
    if (cli_args(ph_router_find(h->router, argv[0]), argc - 1, argv + 1, &args)) {
        print_error(NULL);
        goto stop;
    }
    if (ph_router_call(h->router, NULL, argv[0], args, PH_CALL_ADMIN, &out)) {
        fprintf(stderr, "plughost: %s: %s\n", ph_error_last_word(), ph_error_last());
        goto stop;
    }
    status = print_json(out);
stop:
    ph_host_stop(h);
cleanup:
    json_decref(args);
    json_decref(out);
    ph_host_free(h);
    return status;
}

/* ---- dispatch ---- */

static const command commands[] = {
    {"run", cmd_run, "run [-c host.ini] [--listen ADDR:PORT] [--strict]",
     "Loads every package and serves it until SIGINT/SIGTERM, then stops each instance in "
     "reverse order. The daemon, plughostd, does it in this process; the CLI of root and of "
     "its user reaches it through its local socket, without a token.",
     O_HOST | O_LISTEN | O_STRICT, 0, 0, NULL},
    {"check", cmd_check, "check [-c host.ini] [--json]",
     "Prints the plan (instances, versions, load order) and every problem without running "
     "package code. Exits 1 when there are problems.",
     O_HOST | O_STRICT | O_JSON, 0, 0, NULL},
    {"call", cmd_call,
     "call [--local] [-c host.ini] [--url URL] INSTANCE.ACTOR.METHOD [name=value ...|JSON]",
     "Calls a method and prints its JSON result. By default it asks the running host (its "
     "local socket, else its address from host.ini; or --url); --local loads and starts the "
     "packages in this process, "
     "calls, and stops them.",
     O_HOST | O_REMOTE | O_LOCAL | O_STRICT, 1, -1, "which method? give INSTANCE.ACTOR.METHOD"},
    {"list", cmd_list, "list [-c host.ini] [--json]",
     "Lists the packages found in the package directories: every installed version, the "
     "instance that runs it when several are installed, and what each provides. Exits 1 when "
     "a manifest cannot be read (with or without --json).",
     O_HOST | O_JSON, 0, 0, NULL},
    {"status", cmd_status, "status [-c host.ini] [--url URL] [--json]",
     "Shows every instance of the running host: package, version, state, and why it is not "
     "running or why its last reload failed.",
     O_REMOTE | O_JSON, 0, 0, NULL},
    {"reload", cmd_reload, "reload [-c host.ini] [--url URL] NAME",
     "Asks the running host to reload package NAME from disk now (admin token from the data "
     "directory). The old version keeps serving if anything fails.",
     O_REMOTE, 1, 1, "which package or instance? give NAME"},
    {"backup", cmd_backup, "backup [-c host.ini] INSTANCE",
     "Writes a consistent, verified copy of the instance's database under "
     "<data_dir>/backups/INSTANCE/ and prints where.",
     O_HOST, 1, 1, "which instance? give INSTANCE"},
    {"enable", cmd_enable, "enable [-c host.ini] [--url URL] NAME",
     "Loads the build on disk of instance NAME (or of every instance of package NAME) into the "
     "running host and starts it: after disable, or after a failure you fixed.",
     O_REMOTE, 1, 1, "which package or instance? give NAME"},
    {"disable", cmd_disable, "disable [-c host.ini] [--url URL] NAME",
     "Stops instance NAME (or every instance of package NAME) in the running host and keeps it "
     "off across reloads and SIGHUP until enable; its data is kept.",
     O_REMOTE, 1, 1, "which package or instance? give NAME"},
    {"install", cmd_install, "install [-c host.ini] [--url URL] DIR|ARCHIVE [...]",
     "Checks the packages in DIR... (manifest, library, dependencies against what is installed, "
     "the declared interface against the installed build, each migration rehearsed on a copy "
     "of the database), copies them into the first package directory (beside the other "
     "versions: NAME, then NAME-VERSION) and has the running host load them together; a change "
     "the host refuses is undone, the package directory left as it was. An ARCHIVE "
     "(NAME-VERSION.phpkg) "
     "is verified first: signed by a key in [trust] of host.ini, every file as listed, no "
     "path outside the package, a library for this machine; nothing is unpacked otherwise.",
     O_HOST | O_REMOTE, 1, -1, "which package directory or archive? give DIR or ARCHIVE"},
    {"pack", cmd_pack, "pack [--sign KEY] [--output DIR] DIR",
     "Writes the package in DIR (package.ini, library, sql/, www/, wiki/, lib/) as the "
     "distribution archive NAME-VERSION.phpkg, with the SHA-256 of every file, signed with "
     "the secret key file KEY (Ed25519) when given.",
     O_SIGN | O_OUTPUT, 1, 1, "which package directory? give DIR"},
    {"keygen", cmd_keygen, "keygen [--output DIR] NAME",
     "Makes an Ed25519 key pair for signing archives: NAME.secret (mode 0600) and NAME.pub, "
     "and prints the line hosts that trust it add to [trust] in host.ini.",
     O_OUTPUT, 1, 1, "which key name? give NAME"},
    {"remove", cmd_remove, "remove [-c host.ini] [--purge] NAME[@VERSION]",
     "Uninstalls package NAME: the running host runs its before_uninstall and before_delete "
     "callbacks, unloads it and deletes its directory (with no host running, the CLI deletes it "
     "and no callback runs); its data is kept, so reinstalling finds every row. --purge also "
     "deletes the data, after writing a backup, and says where the backup is. NAME@VERSION "
     "removes one of several installed versions, one no instance runs.",
     O_HOST | O_REMOTE | O_PURGE, 1, 1, "which package? give NAME or NAME@VERSION"},
    {"new", cmd_new, "new NAME",
     "Creates ./NAME/ with package.ini, NAME.c and a CMakeLists.txt that builds out of tree "
     "against the installed SDK (find_package(plughost)).",
     0, 1, 1, "which name? give NAME (it creates ./NAME/)"},
    {"help", cmd_help, "help [--man] [COMMAND]",
     "Shows help for a command; --man prints the manual page plughost(1) in roff.", O_MAN, 0, 1,
     NULL},
};

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/*
 * Prints `text` from column `indent` on, wrapped at 80 columns, the first
 * line after `lead` (padded to `indent`; a longer lead puts the text on the
 * next line).
 */
static void wrap(FILE *f, int indent, const char *lead, const char *text)
{
    enum { WIDTH = 80 };
    int col = fprintf(f, "%-*s", indent, lead);
    if (col > indent) {
        fprintf(f, "\n%*s", indent, "");
        col = indent;
    }
    for (const char *p = text; *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (!n)
            break;
        if (col > indent && col + 1 + (int)n > WIDTH) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        }
        col += fprintf(f, "%s%.*s", col > indent ? " " : "", (int)n, p);
        p += n;
    }
    fputc('\n', f);
}

/* The sections of the help after the commands: one table for --help and plughost(1). */
typedef struct help_item {
    const char *lead, *text;
} help_item;

static const help_item help_options[] = {
    {"-c, --config FILE", "host.ini to read (default: /etc/plughost/host.ini when installed, "
                          "else the embedded defaults)"},
    {"--packages DIR", "a package directory (repeatable; replaces package_dirs)"},
    {"--data-dir DIR", "where databases and state live"},
    {"--listen ADDR:PORT", "the HTTP listen address"},
    {"--log-level LEVEL", "error, warn, info or debug"},
    {"--log-format FORMAT", "text, json or journal (default: journal when stderr is the "
                            "journal, else text)"},
    {"--strict", "any failing package is fatal"},
    {"--url URL", "(call, status, reload, enable, disable, install, remove) the running host "
                  "over TCP instead of its local socket: http:// or https://, a path is a "
                  "prefix; no credentials in it"},
    {"--token TOKEN", "(with --url) the admin token to send (default: PLUGHOST_TOKEN, else the "
                      "data directory's when the URL is the configured host)"},
    {"--cacert FILE", "(with --url) CA certificates to verify an https:// proxy with, as "
                      "curl's (default: PLUGHOST_CACERT, else the system's)"},
    {"--local", "(call) run the packages in this process"},
    {"--purge", "(remove) delete the data too, after a backup"},
    {"--json", "(status, list, check) machine-readable output (dist/schemas/)"},
    {"--sign KEY", "(pack) sign with this secret key file (plughost keygen)"},
    {"--output DIR", "(pack, keygen) where to write (default: .)"},
    {"--man", "(help) the manual page plughost(1), in roff"},
    {"-h, --help", "this text; `plughost COMMAND --help` shows a command's usage"},
    {"--version", "the version and SDK ABI"},
};
static const help_item help_status[] = {
    {"0", "success"},
    {"1", "the command failed (the message says why and what to do); check and list: a "
          "problem was found (also with --json)"},
    {"2", "a usage error, said in one line: an unknown command or option, an option of another "
          "command, a bad option value, a missing or an extra argument"},
    {"3", "no host is running: no local socket, nothing at the address (every command that "
          "talks to a host: call, status, reload, enable, disable; install and remove go on "
          "without one)"},
    {"75", "the running host asks to retry later: it is starting, reloading or busy (HTTP 429 "
           "or 503; EX_TEMPFAIL), for every command that talks to a host"},
};
static const help_item help_files[] = {
    {"/etc/plughost/host.ini", "the installed host's configuration, read without -c"},
    {"DATA_DIR/admin.token", "the admin token for management and PH_ADMIN methods (0600)"},
    {"DATA_DIR/plughost.sock", "the running host's local socket ([http] socket): root and "
                               "the host's user need no token on it (0600)"},
    {"/usr/libexec/plughost/plughostd", "the daemon `plughost run` starts"},
    {"DATA_DIR/INSTANCE.db", "an instance's SQLite database"},
    {"DATA_DIR/crashes.log", "a line per crash: package, build, signal (for quarantine)"},
};
static const help_item help_env[] = {
    {"PLUGHOST_TOKEN", "the admin token to send with --url (--token wins)"},
    {"PLUGHOST_CACERT", "CA certificates for https:// URLs (--cacert wins)"},
    {"http_proxy, https_proxy, no_proxy", "the proxy for --url (never for loopback)"},
    {"NOTIFY_SOCKET, WATCHDOG_USEC", "(run) systemd's readiness and watchdog protocol"},
    {"JOURNAL_STREAM", "(run) stderr is the journal: the journal log format"},
};
static const char *const help_examples[] = {
    "plughost run -c examples/host.ini",
    "plughost call calc.math.add a=2 b=40",
    "plughost call --local --packages build/packages notes.note.new title=hi",
    "plughost status",
    "plughost install ./shout/build/packages/shout",
};
static const struct {
    const char *title, *man;
    const help_item *items;
    size_t n;
} help_sections[] = {
    {"Options", "OPTIONS", help_options, sizeof help_options / sizeof help_options[0]},
    {"Exit status", "EXIT STATUS", help_status, sizeof help_status / sizeof help_status[0]},
    {"Files", "FILES", help_files, sizeof help_files / sizeof help_files[0]},
    {"Environment", "ENVIRONMENT", help_env, sizeof help_env / sizeof help_env[0]},
};
static const char help_about[] =
    "An application host for packages written in C: it loads them, serves their methods and "
    "models over HTTP and the command line, and hot-reloads them.";

/* The whole help: what `--help` prints (80 columns). */
static void usage(FILE *f)
{
    fprintf(f, "Usage: plughost [--version] COMMAND [options] [args]\n");
    wrap(f, 0, "", help_about);
    fprintf(f, "\nCommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char lead[16];
        snprintf(lead, sizeof lead, "  %s", commands[i].name);
        wrap(f, 10, lead, commands[i].help);
    }
    for (size_t k = 0; k < sizeof help_sections / sizeof help_sections[0]; k++) {
        /* options and variables: the text from column 26; statuses and files: 6 */
        int indent = k == 0 ? 26 : k == 3 ? 20 : 6;
        fprintf(f, "\n%s:\n", help_sections[k].title);
        for (size_t i = 0; i < help_sections[k].n; i++) {
            const char *lead = help_sections[k].items[i].lead;
            char pad[64];
            snprintf(pad, sizeof pad, "%s%s", k == 0 && lead[1] != '-' ? "  " : "      ", lead);
            wrap(f, indent, k == 0 ? pad : pad + 4, help_sections[k].items[i].text);
        }
    }
    fprintf(f, "\nExamples:\n");
    for (size_t i = 0; i < sizeof help_examples / sizeof help_examples[0]; i++)
        fprintf(f, "  %s\n", help_examples[i]);
}

/* `text` as roff: backslashes and minus signs escaped, a leading '.' or '\'' made text. */
static void roff(FILE *f, const char *text)
{
    if (*text == '.' || *text == '\'')
        fputs("\\&", f);
    for (const char *p = text; *p; p++) {
        if (*p == '\\')
            fputs("\\e", f);
        else if (*p == '-')
            fputs("\\-", f);
        else
            fputc(*p, f);
    }
}

/* plughost(1) in roff, from the same tables as --help (`plughost help --man`). */
static void man_page(FILE *f)
{
    fprintf(f,
            ".TH PLUGHOST 1 \"\" \"plughost %s\" \"User Commands\"\n"
            ".SH NAME\nplughost \\- application host for C packages\n"
            ".SH SYNOPSIS\n.B plughost\n[\\fB\\-\\-version\\fR] \\fICOMMAND\\fR "
            "[\\fIoptions\\fR] [\\fIargs\\fR]\n.SH DESCRIPTION\n",
            PH_HOST_VERSION);
    roff(f, help_about);
    fprintf(f, "\n.SH COMMANDS\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        fprintf(f, ".TP\n.B plughost ");
        roff(f, commands[i].usage);
        fputc('\n', f);
        roff(f, commands[i].help);
        fputc('\n', f);
    }
    for (size_t k = 0; k < sizeof help_sections / sizeof help_sections[0]; k++) {
        fprintf(f, ".SH %s\n", help_sections[k].man);
        for (size_t i = 0; i < help_sections[k].n; i++) {
            fprintf(f, ".TP\n.B ");
            roff(f, help_sections[k].items[i].lead);
            fputc('\n', f);
            roff(f, help_sections[k].items[i].text);
            fputc('\n', f);
        }
    }
    fprintf(f, ".SH EXAMPLES\n");
    for (size_t i = 0; i < sizeof help_examples / sizeof help_examples[0]; i++) {
        fprintf(f, ".PP\n.nf\n");
        roff(f, help_examples[i]);
        fprintf(f, "\n.fi\n");
    }
    fprintf(f, ".SH SEE ALSO\n.BR systemctl (1),\n.BR journalctl (1),\n.BR curl (1),\n"
               ".BR systemd.service (5)\n");
}

/*
 * A usage error: one line, "plughost CMD: WHAT; see plughost CMD --help"
 * (without a command: "plughost: WHAT; see plughost --help"). Returns 2.
 */
static int usage_error(const command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(const command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "plughost%s%s: ", cmd ? " " : "", cmd ? cmd->name : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "; see plughost%s%s --help\n", cmd ? " " : "", cmd ? cmd->name : "");
    va_end(ap);
    return 2;
}

static int cmd_help(cli *c, int argc, char **argv)
{
    const command *cmd = argc > 0 ? find_command(argv[0]) : NULL;
    if (argc > 0 && !cmd)
        return usage_error(find_command("help"), "unknown command '%s'", argv[0]);
    if (c->man) {
        man_page(stdout);
        return 0;
    }
    if (!cmd) {
        usage(stdout);
        return 0;
    }
    wrap(stdout, 16, "Usage: plughost", cmd->usage);
    putchar('\n');
    wrap(stdout, 0, "", cmd->help);
    return 0;
}

/* The command line, parsed and run; `c` holds what it allocates (freed by main). */
static int run_cli(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"data-dir", required_argument, NULL, 'd'},
        {"log-level", required_argument, NULL, 'L'},
        {"packages", required_argument, NULL, 'p'},
        {"url", required_argument, NULL, 'u'},
        {"strict", no_argument, NULL, 's'},
        {"local", no_argument, NULL, 'o'},
        {"purge", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"log-format", required_argument, NULL, 'F'},
        {"json", no_argument, NULL, 'J'},
        {"sign", required_argument, NULL, 'S'},
        {"output", required_argument, NULL, 'O'},
        {"token", required_argument, NULL, 't'},
        {"cacert", required_argument, NULL, 'C'},
        {"man", no_argument, NULL, 'M'},
        {NULL, 0, NULL, 0},
    };
    /* the O_* bit of each option, by its getopt value */
    static const struct {
        int opt;
        unsigned bit;
        const char *name;
    } bits[] = {
        {'c', O_CONFIG, "--config"}, {'l', O_LISTEN, "--listen"},  {'d', O_DATA_DIR, "--data-dir"},
        {'L', O_LOG, "--log-level"}, {'F', O_LOG, "--log-format"}, {'p', O_PACKAGES, "--packages"},
        {'u', O_URL, "--url"},       {'s', O_STRICT, "--strict"},  {'o', O_LOCAL, "--local"},
        {'P', O_PURGE, "--purge"},   {'J', O_JSON, "--json"},      {'S', O_SIGN, "--sign"},
        {'O', O_OUTPUT, "--output"}, {'t', O_URL, "--token"},      {'C', O_URL, "--cacert"},
        {'M', O_MAN, "--man"}};
    const char *given_name[sizeof bits / sizeof bits[0]] = {0};
    char bad[160] = ""; /* the first option getopt refused, said once the command is known */
    int want_help = 0, o;
    ph_cli_raise_fd_limit(); /* run and call --local load every package */
    opterr = 0;              /* its message is ours, in one line */
    /* Options may come before and after the command word (getopt moves the words last). */
    while ((o = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
        for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
            if (bits[i].opt == o) {
                c->given |= bits[i].bit;
                given_name[i] = bits[i].name;
            }
        switch (o) {
        case 'c':
            c->o.config = optarg;
            break;
        case 'l':
            c->o.listen = optarg;
            break;
        case 'd':
            c->o.data_dir = optarg;
            break;
        case 'L':
            c->o.log_level = optarg;
            break;
        case 'F':
            c->o.log_format = optarg;
            break;
        case 'u':
            c->url = optarg;
            break;
        case 't':
            c->token = optarg;
            break;
        case 'C':
            c->cacert = optarg;
            break;
        case 's':
            c->o.strict = 1;
            break;
        case 'o':
            c->local = 1;
            break;
        case 'P':
            c->purge = 1;
            break;
        case 'J':
            c->json = 1;
            break;
        case 'M':
            c->man = 1;
            break;
        case 'S':
            c->sign = optarg;
            break;
        case 'O':
            c->output = optarg;
            break;
        case 'p':
            if (add_package_dir(c, optarg))
                return 1;
            break;
        case 'h':
            want_help = 1;
            break;
        case 'V':
            printf("plughost %s (SDK ABI %d)\n", PH_HOST_VERSION, PH_ABI_VERSION);
            return 0;
        case ':':
            if (!bad[0])
                snprintf(bad, sizeof bad, "option '%s' needs a value", argv[optind - 1]);
            break;
        default: /* an unknown option, or --flag=VALUE of one that takes none */
            if (!bad[0] && strncmp(argv[optind - 1], "--", 2) == 0)
                snprintf(bad, sizeof bad,
                         optopt ? "option '%.*s' takes no value" : "unknown option '%.*s'",
                         (int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
            else if (!bad[0])
                snprintf(bad, sizeof bad, "unknown option '-%c'", optopt);
            break;
        }
    }
    if (optind >= argc && want_help && !bad[0]) {
        usage(stdout);
        return 0;
    }
    const command *cmd = optind < argc ? find_command(argv[optind]) : NULL;
    if (optind < argc && !cmd)
        return usage_error(NULL, "unknown command '%s'", argv[optind]);
    if (bad[0])
        return usage_error(cmd, "%s", bad);
    if (!cmd)
        return usage_error(NULL, "no command");
    if (want_help)
        return cmd_help(c, 1, (char *[]){(char *)cmd->name});
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if (given_name[i] && !(bits[i].bit & cmd->opts))
            return usage_error(cmd, "%s is not an option of '%s'", given_name[i], cmd->name);
    int n = argc - optind - 1;
    if (n < cmd->min_args)
        return usage_error(cmd, "%s", cmd->missing);
    if (cmd->max_args >= 0 && n > cmd->max_args)
        return usage_error(cmd, "unexpected argument '%s'", argv[optind + 1 + cmd->max_args]);
    if (ph_cli_check_values(&c->o))
        return usage_error(cmd, "%s", ph_error_last());
    if (c->url && ph_client_check_url(c->url))
        return usage_error(cmd, "--url: %s", ph_error_last());
    if (!c->token)
        c->token = getenv("PLUGHOST_TOKEN");
    if (!c->cacert)
        c->cacert = getenv("PLUGHOST_CACERT");
    ph_client_set_cacert(c->cacert);
    return cmd->fn(c, n, argv + optind + 1);
}

int main(int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof c);
    int rc = run_cli(&c, argc, argv);
    free(c.o.package_dirs); /* whichever way run_cli returned */
    return rc;
}
