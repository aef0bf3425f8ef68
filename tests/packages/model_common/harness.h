/*
 * Test harness shared by test_store.c, test_crud.c and test_migrate.c: an
 * instance built around a descriptor defined in the test (no .so), with its
 * database in a temporary data directory and its routes in a router, so
 * the tests exercise the same code paths as the host. Not a package (no
 * CMakeLists.txt here).
 */
#ifndef PH_TEST_MODEL_HARNESS_H
#define PH_TEST_MODEL_HARNESS_H

#include <stdlib.h>
#include <string.h>

#include "crud.h"
#include "error.h"
#include "instance.h"
#include "manifest.h"
#include "router.h"
#include "semver.h"
#include "store.h"
#include "testutil.h"

typedef struct mh {
    char *tmp;    /* temp root */
    char *data;   /* data_dir */
    char *pkgdir; /* the package directory (sql/ lives here) */
    ph_manifest man;
    ph_instance *inst;
    ph_router *router;
} mh;

/* A descriptor with `models` at `version`. */
#define MH_DESC(version_, models_)                                                                 \
    {                                                                                              \
        .abi = PH_ABI_VERSION, .size = (uint32_t)sizeof(ph_package), .name = "t",                  \
        .version = (version_), .models = (models_),                                                \
        .n_models = (uint32_t)(sizeof(models_) / sizeof((models_)[0]))                             \
    }

static inline void mh_init(mh *h)
{
    memset(h, 0, sizeof *h);
    h->tmp = tu_tmpdir();
    h->data = tu_fmt("%s/data", h->tmp);
    h->pkgdir = tu_fmt("%s/pkg", h->tmp);
    free(tu_write(h->pkgdir, "package.ini", "[package]\nname = t\nversion = 0.0.0\n"));
}

/* Builds instance "t" of `desc` with manifest version `version` (no attach). */
static inline void mh_instance(mh *h, const ph_package *desc)
{
    ph_module *mod = calloc(1, sizeof *mod);
    mod->desc = desc;
    free(h->man.version_text);
    free(h->man.name);
    free(h->man.dir);
    free(h->man.path);
    h->man.name = strdup("t");
    h->man.version_text = strdup(desc->version);
    ph_semver_parse(desc->version, &h->man.version);
    h->man.dir = strdup(h->pkgdir);
    h->man.path = tu_fmt("%s/package.ini", h->pkgdir);
    if (ph_instance_new("t", "/t", &h->man, mod, NULL, 0, &h->inst))
        abort();
}

/* Attaches the database; returns the ph_store_attach result. */
static inline int mh_attach(mh *h)
{
    return ph_store_attach(h->inst, h->data);
}

/* Publishes the CRUD routes and marks the instance running. */
static inline void mh_route(mh *h)
{
    ph_routes *t = NULL;
    if (ph_router_new(&h->router) || ph_router_add_instance(h->router, h->inst) ||
        ph_routes_new(h->inst, &t) || ph_crud_add_routes(t, h->inst))
        abort();
    ph_router_publish(h->router, h->inst, t);
    atomic_store(&h->inst->state, PH_INST_RUNNING);
}

/* Opens instance + database + routes; aborts on failure. */
static inline void mh_open(mh *h, const ph_package *desc)
{
    mh_instance(h, desc);
    if (mh_attach(h)) {
        fprintf(stderr, "attach failed: %s\n", ph_error_last());
        abort();
    }
    mh_route(h);
}

/* Closes the instance (keeps the files). */
static inline void mh_close_instance(mh *h)
{
    if (h->router)
        ph_router_free(h->router);
    h->router = NULL;
    if (h->inst) {
        ph_store_detach(h->inst);
        ph_instance_free(h->inst);
    }
    h->inst = NULL;
}

static inline void mh_done(mh *h)
{
    mh_close_instance(h);
    tu_rmtree(h->tmp);
    free(h->tmp);
    free(h->data);
    free(h->pkgdir);
    free(h->man.version_text);
    free(h->man.name);
    free(h->man.dir);
    free(h->man.path);
}

/* Calls "t.<addr>" with args parsed from JSON text; returns the code, *out the result. */
static inline int mh_call(mh *h, const char *addr, const char *args_json, json_t **out)
{
    json_t *args = args_json ? json_loads(args_json, JSON_DECODE_ANY, NULL) : NULL;
    char *full = tu_fmt("t.%s", addr);
    json_t *res = NULL;
    if (args_json && !args)
        abort();
    ph_error_clear();
    int rc = ph_router_call(h->router, NULL, full, args, 0, &res);
    free(full);
    json_decref(args);
    if (out)
        *out = res;
    else
        json_decref(res);
    return rc;
}

/* Result as compact JSON text (malloc'd). */
static inline char *mh_dump(json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Path of the instance database (malloc'd). */
static inline char *mh_db_path(mh *h)
{
    return tu_fmt("%s/t/t.db", h->data);
}

/* Runs SQL on the database file with a fresh connection; first column of first row as text. */
static inline char *mh_sql1(const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *out = NULL;
    sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_text(st, 0))
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out ? out : strdup("(none)");
}

/* mh_sql1 on the harness instance's database. */
static inline char *mh_q(mh *h, const char *sql)
{
    char *db = mh_db_path(h);
    char *v = mh_sql1(db, sql);
    free(db);
    return v;
}

/* Asserts what `sql` answers on the instance's database (printing both on a mismatch). */
static inline void mh_expect_q(mh *h, const char *sql, const char *want)
{
    char *v = mh_q(h, sql);
    if (strcmp(v, want))
        fprintf(stderr, "%s -> %s (want %s)\n", sql, v, want);
    assert_string_equal(v, want);
    free(v);
}

#endif
