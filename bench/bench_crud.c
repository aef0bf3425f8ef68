/*
 * CRUD `new` and `get` through the router against raw sqlite3 prepared
 * statements on the same table, with the same pragmas (WAL,
 * synchronous=FULL, foreign_keys, busy timeout), in the same process.
 * Rounds interleave the two sides; the reported ratio is the median of the
 * per-round rate ratios (CRUD rate / raw rate; 1.0 = as fast as raw).
 *
 *   bench_crud [rounds] [new ops per round] [get ops per round]
 *
 * The raw side does what a hand-written C program would: bind the values,
 * step, read every column, reset. For `get` two baselines are reported:
 * "columns" only reads the columns (the pointers die at reset), "row" also
 * copies the row into a struct with its own strings, as a program that
 * keeps or returns the record must. The CRUD side is what HTTP gets: JSON
 * arguments in, the record out as JSON text in the caller's buffer
 * (ph_router_call_text, reused between calls as a connection's output
 * buffer is), with validation, the router's gate and statistics. A fourth
 * side (no target) is a caller that wants a jansson record (ph_router_call).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crud.h"
#include "error.h"
#include "instance.h"
#include "report.h"
#include "router.h"
#include "store.h"

static const ph_field note_fields[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED),
    PH_FIELD("body", PH_TEXT, 0),
    PH_FIELD("pinned", PH_BOOL, PH_DEFAULT("false")),
    PH_FIELD("n", PH_INT, 0),
};
static const ph_model models[] = {PH_MODEL("note", note_fields)};
static const ph_package desc = {.abi = PH_ABI_VERSION,
                                .size = sizeof(ph_package),
                                .name = "b",
                                .version = "1.0.0",
                                .models = models,
                                .n_models = 1};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_crud: %s: %s\n", what, ph_error_last());
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- raw sqlite3 ---- */

typedef struct raw {
    sqlite3 *db;
    sqlite3_stmt *ins, *get;
} raw;

static void raw_open(raw *r, const char *path)
{
    /* the same table the host creates for the model, and the same settings */
    static const char *const setup =
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
        "CREATE TABLE IF NOT EXISTS note(id INTEGER PRIMARY KEY AUTOINCREMENT, created INTEGER NOT "
        "NULL, "
        "updated INTEGER NOT NULL, title TEXT, body TEXT, pinned INTEGER, n INTEGER) STRICT;";
    if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) ||
        sqlite3_busy_timeout(r->db, 5000) || sqlite3_exec(r->db, setup, NULL, NULL, NULL) ||
        sqlite3_prepare_v2(r->db,
                           "INSERT INTO note(created, updated, title, body, pinned, n) "
                           "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &r->ins, NULL) ||
        sqlite3_prepare_v2(r->db,
                           "SELECT id, created, updated, title, body, pinned, n FROM note "
                           "WHERE id=?1",
                           -1, &r->get, NULL)) {
        fprintf(stderr, "bench_crud: raw setup: %s\n", sqlite3_errmsg(r->db));
        exit(1);
    }
}

static void raw_close(raw *r)
{
    sqlite3_finalize(r->ins);
    sqlite3_finalize(r->get);
    sqlite3_close(r->db);
}

static volatile int64_t sink;

static void raw_new(raw *r, int i)
{
    int64_t now = ph_store_now_ms();
    sqlite3_bind_int64(r->ins, 1, now);
    sqlite3_bind_int64(r->ins, 2, now);
    sqlite3_bind_text(r->ins, 3, "a title", -1, SQLITE_STATIC);
    sqlite3_bind_text(r->ins, 4, "some body text of a note", -1, SQLITE_STATIC);
    sqlite3_bind_int(r->ins, 5, 0);
    sqlite3_bind_int64(r->ins, 6, i);
    if (sqlite3_step(r->ins) != SQLITE_DONE)
        die("raw insert");
    sqlite3_reset(r->ins);
    sink += sqlite3_last_insert_rowid(r->db);
}

static void raw_get(raw *r, int64_t id)
{
    sqlite3_bind_int64(r->get, 1, id);
    if (sqlite3_step(r->get) != SQLITE_ROW)
        die("raw get");
    int64_t acc = sqlite3_column_int64(r->get, 0) + sqlite3_column_int64(r->get, 1) +
                  sqlite3_column_int64(r->get, 2) + sqlite3_column_int64(r->get, 5) +
                  sqlite3_column_int64(r->get, 6);
    acc += sqlite3_column_bytes(r->get, 3) + sqlite3_column_bytes(r->get, 4);
    acc += *sqlite3_column_text(r->get, 3) + *sqlite3_column_text(r->get, 4);
    sqlite3_reset(r->get);
    sink += acc;
}

typedef struct note_row {
    int64_t id, created, updated, n;
    int pinned;
    char *title, *body;
} note_row;

/* Reads record id into a struct the caller owns, as a hand-written `get` would. */
static void raw_get_row(raw *r, int64_t id)
{
    note_row row;
    sqlite3_bind_int64(r->get, 1, id);
    if (sqlite3_step(r->get) != SQLITE_ROW)
        die("raw get");
    row.id = sqlite3_column_int64(r->get, 0);
    row.created = sqlite3_column_int64(r->get, 1);
    row.updated = sqlite3_column_int64(r->get, 2);
    row.title = strndup((const char *)sqlite3_column_text(r->get, 3),
                        (size_t)sqlite3_column_bytes(r->get, 3));
    row.body = strndup((const char *)sqlite3_column_text(r->get, 4),
                       (size_t)sqlite3_column_bytes(r->get, 4));
    row.pinned = sqlite3_column_int(r->get, 5);
    row.n = sqlite3_column_int64(r->get, 6);
    sqlite3_reset(r->get);
    sink += row.id + row.created + row.updated + row.n + row.pinned + *row.title + *row.body;
    free(row.title);
    free(row.body);
}

/* ---- CRUD through the router ---- */

typedef struct crud {
    ph_manifest man;
    ph_instance *inst;
    ph_router *router;
    json_t *new_args, *get_args;
    ph_json_buf text;
} crud;

static void crud_open(crud *c, const char *dir)
{
    memset(c, 0, sizeof *c);
    ph_module *mod = calloc(1, sizeof *mod);
    ph_routes *t = NULL;
    mod->desc = &desc;
    c->man.name = "b";
    c->man.version_text = "1.0.0";
    c->man.dir = (char *)dir;
    if (ph_instance_new("b", "/b", &c->man, mod, NULL, 0, &c->inst) ||
        ph_store_attach(c->inst, dir) || ph_router_new(&c->router) ||
        ph_router_add_instance(c->router, c->inst) || ph_routes_new(c->inst, &t) ||
        ph_crud_add_routes(t, c->inst))
        die("crud setup");
    ph_router_publish(c->router, c->inst, t);
    atomic_store(&c->inst->state, PH_INST_RUNNING);
    c->new_args = json_pack("{s:s, s:s, s:b, s:i}", "title", "a title", "body",
                            "some body text of a note", "pinned", 0, "n", 0);
    c->get_args = json_pack("{s:i}", "id", 1);
}

static void crud_close(crud *c)
{
    json_decref(c->new_args);
    json_decref(c->get_args);
    free(c->text.p);
    ph_router_free(c->router);
    ph_store_detach(c->inst);
    ph_instance_free(c->inst);
}

static void crud_new(crud *c, int i)
{
    json_t *out = NULL;
    json_integer_set(json_object_get(c->new_args, "n"), i);
    if (ph_router_call(c->router, NULL, "b.note.new", c->new_args, 0, &out))
        die("crud new");
    sink += json_integer_value(json_object_get(out, "id"));
    json_decref(out);
}

static void crud_get_text(crud *c, int64_t id)
{
    c->text.len = 0;
    json_integer_set(json_object_get(c->get_args, "id"), id);
    if (ph_router_call_text(c->router, "b.note.get", c->get_args, 0, NULL, &c->text))
        die("crud get");
    sink += (int64_t)c->text.len;
}

static void crud_get(crud *c, int64_t id)
{
    json_t *out = NULL;
    json_integer_set(json_object_get(c->get_args, "id"), id);
    if (ph_router_call(c->router, NULL, "b.note.get", c->get_args, 0, &out))
        die("crud get");
    sink += json_integer_value(json_object_get(out, "n"));
    json_decref(out);
}

/* ---- concurrent writers: group commit vs raw autocommit, one connection per raw writer ---- */

#define WRITERS 8

typedef struct writer {
    pthread_t t;
    const char *raw_path; /* raw side: its own connection, as a hand-written program has */
    crud *c;              /* crud side */
    int n;
} writer;

static void *raw_writer(void *arg)
{
    writer *w = arg;
    raw r;
    raw_open(&r, w->raw_path);
    for (int i = 0; i < w->n; i++)
        raw_new(&r, i);
    raw_close(&r);
    return NULL;
}

static void *crud_writer(void *arg)
{
    writer *w = arg;
    json_t *args = json_pack("{s:s, s:s, s:b, s:i}", "title", "a title", "body",
                             "some body text of a note", "pinned", 0, "n", 0);
    for (int i = 0; i < w->n; i++) {
        json_t *out = NULL;
        if (ph_router_call(w->c->router, NULL, "b.note.new", args, 0, &out))
            die("crud new (concurrent)");
        json_decref(out);
    }
    json_decref(args);
    return NULL;
}

/* Seconds for WRITERS threads to insert n rows each. */
static double concurrent(void *(*fn)(void *), const char *raw_path, crud *c, int n)
{
    writer w[WRITERS];
    double t0 = now_s();
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (writer){.raw_path = raw_path, .c = c, .n = n};
        pthread_create(&w[i].t, NULL, fn, &w[i]);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(w[i].t, NULL);
    return now_s() - t0;
}

/* ---- rounds ---- */

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 9;
    int n_new = argc > 2 ? atoi(argv[2]) : 200;
    int n_get = argc > 3 ? atoi(argv[3]) : 50000;
    if (rounds < 1 || n_new < 1 || n_get < 1) {
        fprintf(stderr, "usage: bench_crud [rounds] [new ops per round] [get ops per round]\n");
        return 2;
    }
    char tmpl[] = "/tmp/bench_crud.XXXXXX";
    const char *base = getenv("PH_BENCH_DIR"); /* put it on the disk you care about */
    char *dir = NULL;
    if (base) {
        if (asprintf(&dir, "%s/bench_crud.%d", base, (int)getpid()) < 0 || mkdir(dir, 0700))
            return 1;
    } else if (!(dir = strdup(mkdtemp(tmpl)))) {
        return 1;
    }
    char *raw_path = NULL;
    if (asprintf(&raw_path, "%s/raw.db", dir) < 0)
        return 1;
    raw r;
    crud c;
    raw_open(&r, raw_path);
    crud_open(&c, dir);
    double *rn = calloc((size_t)rounds, sizeof *rn), *rg = calloc((size_t)rounds, sizeof *rg);
    double *rr = calloc((size_t)rounds, sizeof *rr);
    double *rv = calloc((size_t)rounds, sizeof *rv), *rw = calloc((size_t)rounds, sizeof *rw);
    double tw[2] = {0, 0};
    int n_each = n_new / WRITERS > 0 ? n_new / WRITERS : 1;
    unsigned long gc_writes = 0, gc_batches = 0;
    double tn[2] = {0, 0}, tg[4] = {0, 0, 0, 0};
    int64_t rows = 0;
    for (int k = 0; k < rounds; k++) {
        double t0 = now_s();
        for (int i = 0; i < n_new; i++)
            raw_new(&r, i);
        double t1 = now_s();
        for (int i = 0; i < n_new; i++)
            crud_new(&c, i);
        double t2 = now_s();
        rows += n_new;
        /* WRITERS concurrent writers, the side that goes first alternating */
        double wr = 0, wc = 0;
        unsigned long gc_w0, gc_b0;
        ph_store_write_counts(c.inst->store, &gc_w0, &gc_b0);
        if (k % 2) {
            wr = concurrent(raw_writer, raw_path, NULL, n_each);
            wc = concurrent(crud_writer, NULL, &c, n_each);
        } else {
            wc = concurrent(crud_writer, NULL, &c, n_each);
            wr = concurrent(raw_writer, raw_path, NULL, n_each);
        }
        rows += (int64_t)n_each * WRITERS;
        unsigned long w1, b1;
        ph_store_write_counts(c.inst->store, &w1, &b1);
        gc_writes += w1 - gc_w0, gc_batches += b1 - gc_b0;
        rw[k] = wr / wc;
        tw[0] += wr, tw[1] += wc;
        /* get: sides in A B C D D C B A order, half the ops each time, so drift cancels */
        static const int order[8] = {0, 1, 2, 3, 3, 2, 1, 0};
        double tgk[4] = {0, 0, 0, 0};
        for (int step = 0; step < 8; step++) {
            int side = order[step];
            uint64_t x = 88172645463325252ULL + (uint64_t)step / 4; /* same ids per pass */
            double s0 = now_s();
            for (int i = 0; i < n_get / 2; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                int64_t id = (int64_t)(x % (uint64_t)rows) + 1;
                if (side == 0)
                    raw_get(&r, id);
                else if (side == 1)
                    raw_get_row(&r, id);
                else if (side == 2)
                    crud_get_text(&c, id);
                else
                    crud_get(&c, id);
            }
            tgk[side] += now_s() - s0;
        }
        for (int side = 0; side < 4; side++)
            tg[side] += tgk[side];
        rv[k] = tgk[0] / tgk[3];
        rn[k] = (t1 - t0) / (t2 - t1); /* rate ratio = raw time / crud time */
        rg[k] = tgk[0] / tgk[2];
        rr[k] = tgk[1] / tgk[2];
        tn[0] += t1 - t0, tn[1] += t2 - t1;
    }
    double total_new = (double)n_new * rounds, total_get = (double)(n_get / 2 * 2) * rounds;
    printf("bench_crud: %d interleaved rounds, %d new + %d get each, WAL + synchronous=FULL, %s\n",
           rounds, n_new, n_get, dir);
    printf("  new: raw %9.0f ops/s   crud %9.0f ops/s   ratio %.2fx (median of rounds)\n",
           total_new / tn[0], total_new / tn[1], median(rn, rounds));
    double total_w = (double)n_each * WRITERS * rounds;
    printf("  new, %d concurrent writers: raw autocommit %9.0f ops/s   crud (group commit) %9.0f "
           "ops/s   ratio %.2fx\n",
           WRITERS, total_w / tw[0], total_w / tw[1], median(rw, rounds));
    printf("    group commit: %lu writes in %lu commits (%.1f per fsync)\n", gc_writes, gc_batches,
           gc_batches ? (double)gc_writes / (double)gc_batches : 0.0);
    printf("  get: raw %9.0f ops/s   crud %9.0f ops/s   ratio %.2fx vs raw reading columns\n",
           total_get / tg[0], total_get / tg[2], median(rg, rounds));
    printf("  get: raw %9.0f ops/s   crud %9.0f ops/s   ratio %.2fx vs raw copying the row\n",
           total_get / tg[1], total_get / tg[2], median(rr, rounds));
    printf("  get as a jansson record (ph_router_call): %9.0f ops/s, %.2fx raw reading columns "
           "(no target)\n",
           total_get / tg[3], median(rv, rounds));
    ph_bench_figure("crud: new / raw autocommit insert, 1 writer", median(rn, rounds), "x",
                    ">=", 1.0);
    ph_bench_figure("crud: new / raw autocommit, 8 concurrent writers", median(rw, rounds), "x",
                    ">=", 3.0);
    ph_bench_figure("crud: get (JSON text) / raw reading the columns", median(rg, rounds), "x",
                    ">=", 0.9);
    crud_close(&c);
    raw_close(&r);
    char *cmd = NULL;
    if (asprintf(&cmd, "rm -rf '%s'", dir) >= 0 && system(cmd) != 0)
        fprintf(stderr, "bench_crud: could not remove %s\n", dir);
    free(cmd);
    free(rn);
    free(rg);
    free(rr);
    free(rv);
    free(rw);
    free(raw_path);
    free(dir);
    return 0;
}
