/*
 * The instance database: one SQLite file per instance,
 * <data_dir>/<instance>/<instance>.db (WAL, synchronous=FULL, busy timeout,
 * foreign keys on), opened and owned by the host. Packages reach it only
 * through the host API (ph_db_query) and the generated CRUD actors.
 *
 * Besides the model tables the database holds the host's metadata
 * (tables starting with "_ph_", which packages cannot write):
 *   _ph_meta(key, value)          package, version (the installed one), ...
 *   _ph_models(name, schema, version)  each model's declared schema as JSON
 *   _ph_migrations(...)           one row per schema change applied
 *
 * A model "note" lives in table "note": id INTEGER PRIMARY KEY, created and
 * updated (Unix milliseconds), then one column per declared field. Tables
 * are STRICT; indexes are named _ph_ix_<model>__<field> (unique: _ph_ux_).
 *
 * Threading: one connection per instance, guarded by a recursive mutex held
 * for a whole CRUD operation or package query, so model hooks may read the
 * database and call their own CRUD actor on the same thread.
 */
#ifndef PH_HOST_STORE_H
#define PH_HOST_STORE_H

#include <jansson.h>
#include <sqlite3.h>

#include "instance.h"
#include "jsonout.h"

typedef struct ph_store ph_store;

/* ---- compiled schema (shared with crud.c and migrate.c) ---- */

/** One column of a model table: the host's id/created/updated or a declared field. */
typedef struct ph_store_field {
    const char *name; /* borrowed from the descriptor (or a literal for host columns) */
    char *qname;      /* quoted SQL identifier, "name" */
    ph_type type;     /* PH_BOOL, PH_I64, PH_F64, PH_STR, PH_JSON, PH_TIME, PH_REF */
    uint32_t flags;   /* PH_REQUIRED, PH_UNIQUE, PH_INDEXED, PH_HAS_DEFAULT */
    json_t *def;      /* the parsed default (owned), NULL if none */
    int def_now;      /* PH_TIME default "now": the time of the write */
    int ref;          /* PH_REF: index of the referenced model, else -1 */
    int host;         /* 1 for id, created, updated (set by the host only) */
} ph_store_field;

#define PH_STORE_HOST_COLS 3 /* id, created, updated come first in every model */

typedef struct ph_store_model {
    const ph_model *decl; /* borrowed from the descriptor */
    const char *name;
    char *qname;
    ph_store_field *cols; /* host columns then declared fields, in table order */
    size_t n_cols;
    char *select_cols; /* "id","created",... for SELECT lists */
    /* cached statements, used under the store lock */
    sqlite3_stmt *st_insert, *st_get, *st_update, *st_delete;
} ph_store_model;

/**
 * Compiles the models of a descriptor: checks names (lower-case SQL-safe
 * identifiers, no reserved names), types, defaults and references.
 * Errors (PH_ELOAD) name the package, model and field. *out owned by the
 * caller: ph_store_models_free(*out, *n_out).
 */
int ph_store_models_compile(const ph_package *desc, ph_store_model **out, size_t *n_out);
void ph_store_models_free(ph_store_model *models, size_t n);
/** The column of `m` called `name`, or NULL. */
const ph_store_field *ph_store_model_col(const ph_store_model *m, const char *name);
/** SQL type of a field type in STRICT tables: "INTEGER", "REAL" or "TEXT". */
const char *ph_store_sql_type(ph_type t);
/** Field type name for messages ("boolean", "integer", ...). */
const char *ph_store_type_name(ph_type t);
/** The schema of a model as JSON (what _ph_models stores). New reference. */
json_t *ph_store_model_schema(const ph_store_model *m);

/**
 * Converts a caller's value for field `f` into the field's canonical JSON
 * (booleans as true/false, integers, reals, strings, any JSON, times as
 * Unix milliseconds). Strings are accepted for non-text types when they
 * parse completely ("true", "42", "1.5", "2024-05-01T12:00:00Z"), so CLI and
 * URL query values work. JSON null gives null. `where` (may be NULL) prefixes the
 * error ("notes.note.new"). Returns 0 with *out (new reference) or PH_EARGS naming the
 * field and the expected type.
 */
int ph_store_coerce(const ph_store_field *f, const char *where, json_t *in, json_t **out);
/** Binds the canonical value `v` of field `f` at parameter i. SQLite result code. */
int ph_store_bind(sqlite3_stmt *st, int i, const ph_store_field *f, json_t *v);
/** Reads column c as field `f`'s JSON value (new reference, NULL on no memory). */
json_t *ph_store_column(sqlite3_stmt *st, int c, const ph_store_field *f);
/**
 * Appends column c as field `f`'s value in JSON text, the same text as
 * dumping ph_store_column's value (JSON_COMPACT), without building it for
 * the common types. 0, or -1 when memory runs out.
 */
int ph_store_column_text(ph_json_buf *b, sqlite3_stmt *st, int c, const ph_store_field *f);
/** Current time in Unix milliseconds. */
int64_t ph_store_now_ms(void);

/* ---- guarding SQL that is not the host's ---- */

/**
 * An authorizer for SQL written by packages (queries, upgrade scripts):
 * refuses ATTACH/DETACH, transaction control (the host owns transactions),
 * setting pragmas, and any write to the host's _ph_ tables. After a refused
 * prepare, `denied` says what was refused and why.
 */
typedef struct ph_sql_guard {
    const char *denied; /* static text, NULL if nothing was refused */
} ph_sql_guard;
void ph_store_guard_on(sqlite3 *db, ph_sql_guard *g);
void ph_store_guard_off(sqlite3 *db);

/* ---- the database ---- */

/** Opens (creating) a database with the host's pragmas. *out: ph_store_close. */
int ph_store_open(const char *path, ph_store **out);
/** Finalizes cached statements and closes; accepts NULL. */
void ph_store_close(ph_store *s);
/** The connection (borrowed). Use under ph_store_lock when the store is shared. */
sqlite3 *ph_store_db(ph_store *s);
/** The database file's path (borrowed). */
const char *ph_store_path(const ph_store *s);
/** Serialises use of the connection (recursive: a hook may re-enter). */
void ph_store_lock(ph_store *s);
void ph_store_unlock(ph_store *s);
/** A write run by ph_store_write: 0, or a PH_E* code with ph_error_set detail. */
typedef int (*ph_store_write_fn)(ph_store *s, void *ud);
/**
 * Group commit: runs `fn` (on this thread, holding the store) in a
 * transaction that writers calling at the same time share, each in its own
 * savepoint, and returns once that transaction is committed: one fsync for
 * the batch, and every caller answered only after its own write is durable
 * (synchronous=FULL). A failing `fn` undoes only its own changes and gets
 * its own error; a failed commit fails every writer of the batch (PH_ESQL).
 * Readers (ph_store_lock) wait while a batch is open, so nobody reads what
 * is not committed. Called while this thread already holds the store (a
 * hook inside a write), `fn` runs in a savepoint of the transaction open.
 */
int ph_store_write(ph_store *s, ph_store_write_fn fn, void *ud);
/** Writes that went through ph_store_write, and the batches (commits) that carried them. */
void ph_store_write_counts(ph_store *s, unsigned long *writes, unsigned long *batches);
/** The compiled models of an attached store (borrowed), and their number. */
ph_store_model *ph_store_models(ph_store *s, size_t *n);

/**
 * Runs one statement for a package (ph_db_query) with positional params
 * (JSON array, borrowed, may be NULL); rows as an array of objects into
 * *rows if not NULL (caller owns it). Refused with PH_EPERM: more than one
 * statement, transaction control (the host manages transactions), ATTACH,
 * setting pragmas, and writes to the host's _ph_ tables. Constraint
 * violations give PH_ECONFLICT. Thread-safe.
 */
int ph_store_query(ph_store *s, const char *sql, json_t *params, json_t **rows);

/**
 * Opens the instance's database under data_dir and brings the tables of its
 * declared models up to date (creating them, adding fields and indexes,
 * running upgrade scripts after a verified backup; see migrate.h). On
 * failure nothing stored changes, inst->store stays NULL and the instance
 * must not run; the error names the instance, versions and script.
 */
int ph_store_attach(ph_instance *inst, const char *data_dir);
/**
 * What ph_store_attach does, without touching an instance: opens and
 * migrates the database of instance `instance` for package `m` with the
 * models of `desc`. For hot reload: the new version's store is opened (and
 * migrated) beside the old one, then swapped into inst->store together with
 * the routes; the compiled models point into `desc`, so a store must be
 * closed before the module holding its descriptor is unloaded.
 */
int ph_store_open_for(const char *data_dir, const char *instance, const ph_manifest *m,
                      const ph_package *desc, ph_store **out);
/**
 * Like ph_store_open_for, but a migration is left uncommitted (the write
 * transaction stays open on this connection): run the new version's
 * prepare/start, then ph_store_commit to keep the new schema, or
 * ph_store_close to roll it back, so a version that fails to start leaves
 * the old schema for the old code. Package code using this store (its
 * queries, CRUD) runs inside that transaction. Other connections to the
 * database wait (busy timeout) until the commit: use it while the old
 * version's gate is closed.
 */
int ph_store_open_uncommitted(const char *data_dir, const char *instance, const ph_manifest *m,
                              const ph_package *desc, ph_store **out);
/** Commits a migration left open by ph_store_open_uncommitted; no-op otherwise. */
int ph_store_commit(ph_store *s);
/** Closes the instance's database; accepts an instance without one. */
void ph_store_detach(ph_instance *inst);

/* ---- paths, backup, purge (for the CLI) ---- */

/** "<data_dir>/<instance>/<instance>.db" into *out (caller frees). 0 or PH_ENOMEM. */
int ph_store_db_path(const char *data_dir, const char *instance, char **out);
/** "<data_dir>/backups/<instance>" into *out (caller frees). */
int ph_store_backup_dir(const char *data_dir, const char *instance, char **out);

/**
 * `plughost backup INSTANCE`: writes a consistent, fsynced and
 * integrity-checked copy of the instance's database to
 * <data_dir>/backups/<instance>/<instance>-manual-<UTC time>.db. Works while
 * a host is running the instance (it reads a snapshot). *out_path (caller
 * frees) says where. PH_ENOTFOUND if the instance has no database.
 */
int ph_store_backup(const char *data_dir, const char *instance, char **out_path);

/**
 * `plughost remove NAME --purge`: writes a verified backup
 * (<instance>-purge-<time>.db, never pruned) and only then deletes the
 * instance's database files and directory. *out_backup (caller frees) says
 * where the backup is. PH_ENOTFOUND if there is no data. The instance must
 * not be running in any process.
 */
int ph_store_purge(const char *data_dir, const char *instance, char **out_backup);

/**
 * The package version recorded in the instance's database, or NULL in *out
 * if there is no database or it was never installed (caller frees).
 * Opens read-only; changes nothing.
 */
int ph_store_installed_version(const char *data_dir, const char *instance, char **out);

/**
 * What an instance's data is, for `remove` (which keeps it: "data kept at
 * PATH, 12 note records; reinstalling finds it; --purge deletes it after a
 * backup") and `status`: *out (caller owns) is {"instance", "path",
 * "bytes", "version" (null if never installed), "models": {name: records}}.
 * PH_ENOTFOUND if the instance has no database. Opens read-only.
 */
int ph_store_describe(const char *data_dir, const char *instance, json_t **out);

/** True if the last failure on `db` (may be NULL) was the process or system out of files. */
int ph_store_out_of_files(sqlite3 *db);

#endif
