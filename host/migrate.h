/*
 * Schema migrations of an instance database.
 *
 * On every attach the declared models are compared with the database:
 *   - a fresh database gets its tables ("install");
 *   - added models, added fields (nullable, with a default, or on an empty
 *     table), added/removed indexes and unique constraints, and relaxed or
 *     newly required fields (when no record lacks a value) apply
 *     automatically;
 *   - anything else (a dropped, renamed or retyped field, a changed
 *     reference) needs upgrade scripts sql/upgrade-<from>-<to>.sql in the
 *     package directory.
 *
 * Upgrade rule (installed S -> target T, S < T): every shipped script whose
 * step lies within S..T (from >= S, to <= T, from < to) runs, in version
 * order, so skipping a release never skips its data script. Where scripts
 * overlap, the walk is greedy: from the current version take the script
 * with the lowest `from` >= current, and among those the highest `to` <= T
 * (a direct upgrade-1.0.0-1.2.0.sql is preferred over the chain through
 * 1.1.0); then continue from its `to`. Between scripts (before every script
 * after the first, and before the first when it starts above S) the host
 * adds the tables and the addable fields (nullable or with a default) of the
 * target declaration that are missing, so a later script can rely on fields
 * an earlier release added without a script, as it could when the releases
 * were installed one by one. A table or field that a script creates itself
 * (CREATE TABLE, ADD COLUMN, RENAME ... TO) is left to that script: when a
 * script fails because of one that was added in advance, the chain starts
 * again (same transaction, savepoint) without adding it early. At the end
 * the database is brought to the declaration of T (indexes, checks).
 * Two databases that reached T by different routes end with the same
 * tables, columns (name and type), indexes and rows (test_migrate.c proves
 * it on generated release histories); the column order within a table and
 * the SQL DEFAULT clause of a column may differ (records are always read and
 * written by name, and the CRUD layer fills declared defaults itself).
 *
 * Limits (documented in the README): only the target's declaration is known,
 * so (1) a script relying on a field that a skipped release added without a
 * script and that the target no longer declares (dropped or renamed later)
 * fails on the route that skips that release: ship a direct script for that
 * route; (2) rows existing when a field is added get the target's default,
 * so changing a field's default between releases makes routes differ.
 *
 * Downgrades (S > T) need an exact chain of scripts (the shortest, among
 * equally short ones the one through the lowest versions), except when the
 * schema did not change (no models, or the stored schemas are exactly the
 * declared ones) and no upgrade script ran since T (_ph_migrations): then
 * the package goes back without scripts, recorded as a downgrade, after a
 * backup.
 * When the version changes, a verified backup is written first (see
 * backup.h); then the scripts, the automatic changes and the new version
 * are applied in one BEGIN IMMEDIATE transaction, and the resulting tables
 * are checked against the declaration before COMMIT. Any failure rolls the
 * whole chain back: the database keeps the old schema and data, and the
 * error names the versions and the script (and line) or the missing script.
 */
#ifndef PH_HOST_MIGRATE_H
#define PH_HOST_MIGRATE_H

#include <jansson.h>
#include <sqlite3.h>

#include "manifest.h"
#include "store.h"

typedef struct ph_migrate_ctx {
    sqlite3 *db;                  /* open with the host's pragmas, not in a transaction */
    const ph_store_model *models; /* compiled declaration */
    size_t n_models;
    const ph_manifest *manifest; /* dir (for sql/), name, version_text */
    const char *instance;
    const char *backup_dir; /* where the pre-upgrade backup goes */
    int defer_commit;       /* leave the transaction open (see ph_store_open_uncommitted) */
    int fk_off;             /* out: foreign_keys is OFF until the deferred COMMIT */
} ph_migrate_ctx;

/**
 * Brings the database to the declared schema and version, as described
 * above. On success *report (caller owns) says what happened:
 * {"action": "none"|"install"|"update"|"upgrade"|"downgrade", "from", "to",
 *  "scripts": [...], "backup": path, "changes": [...]}.
 * On failure returns PH_EMIGRATION (or PH_EIO/PH_ESQL/PH_ENOMEM) and the
 * database is unchanged. With c->defer_commit the transaction is left open
 * on success ("pending": true in the report): the caller COMMITs (then sets
 * foreign_keys=ON again if c->fk_off) or rolls back.
 */
int ph_migrate_apply(ph_migrate_ctx *c, json_t **report);

/** A chain of upgrade scripts. */
typedef struct ph_migrate_chain {
    char **paths; /* full paths, in the order to run */
    char **names; /* "upgrade-1.0.0-1.1.0.sql" */
    size_t n;
    char **ignored; /* upgrade-*.sql files whose name does not parse */
    size_t n_ignored;
    char **to;        /* the version each script leads to, as text */
    int *auto_before; /* 1: automatic additive changes run before script i */
} ph_migrate_chain;

/**
 * Finds the shortest chain of scripts in `sql_dir` from version `from` to
 * `to` (semver strings). Returns 0 with *out filled (n may be 0 only when
 * from equals to), PH_ENOTFOUND when no chain exists (message names both
 * versions, the script that would be needed and the scripts found), or
 * PH_EINVAL for a version that is not semver. *out must be freed with
 * ph_migrate_chain_free in every case.
 */
int ph_migrate_find_chain(const char *sql_dir, const char *from, const char *to,
                          ph_migrate_chain *out);
void ph_migrate_chain_free(ph_migrate_chain *c);

/**
 * The scripts an upgrade from `from` to `to` (from < to) runs, by the
 * greedy rule above; n may be 0 (automatic changes only). auto_before says
 * where automatic changes run between scripts. Returns 0, or PH_EINVAL when
 * the versions are not semver or not an upgrade. *out must be freed with
 * ph_migrate_chain_free in every case.
 */
int ph_migrate_upgrade_chain(const char *sql_dir, const char *from, const char *to,
                             ph_migrate_chain *out);

/**
 * For `plughost check`: what attaching would do to instance `instance` of
 * package `m`, without running package code or changing anything.
 * *out (caller owns): {"instance", "package", "installed" (null if none),
 * "target", "action": "install"|"none"|"upgrade"|"downgrade",
 * "scripts": [names], "problem": text (only if loading would fail),
 * "note": text (optional)}. Returns 0, or an error reading the database.
 */
int ph_migrate_plan(const ph_manifest *m, const char *data_dir, const char *instance, json_t **out);

/**
 * One line for `check` from a plan: "notes: upgrade 1.0.0 -> 1.1.0 via
 * upgrade-1.0.0-1.1.0.sql (backup first)". Caller frees; NULL on no memory.
 */
char *ph_migrate_plan_text(const json_t *plan);

#endif
