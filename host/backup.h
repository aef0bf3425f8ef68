/*
 * Verified database backups: a consistent snapshot (VACUUM INTO) written to
 * a temporary name, fsynced, checked with PRAGMA integrity_check, then
 * renamed into place and the directory fsynced, so a backup that exists is
 * complete (VACUUM INTO alone neither syncs nor survives a power loss).
 */
#ifndef PH_HOST_BACKUP_H
#define PH_HOST_BACKUP_H

#include <sqlite3.h>

/** Upgrade backups kept per instance (older ones are pruned). */
#define PH_BACKUP_KEEP 5
/**
 * A temporary backup file older than this (seconds) was left by a process
 * killed while writing it; the next backup of the instance removes it.
 */
#define PH_BACKUP_STALE_S 3600

/** Creates `path` and its parents (0700). 0 or PH_EIO naming the directory. */
int ph_backup_mkdirs(const char *path);

/**
 * Writes a verified snapshot of the main database of `db` to
 * <dir>/<instance>-<UTC time>-<kind>.db (dir created if needed). `kind` is a
 * file-name-safe word ("manual", "purge", "upgrade-1.0.0-to-1.1.0").
 * Must not be called inside a transaction of `db`. *out_path (caller frees)
 * is the final path. Errors (PH_EIO, PH_ESQL) name the instance and path and
 * leave no partial file.
 */
int ph_backup_write(sqlite3 *db, const char *dir, const char *instance, const char *kind,
                    char **out_path);

/**
 * Deletes all but the newest `keep` backups of `instance` in `dir` whose kind
 * starts with `kind_prefix` ("upgrade"). Manual and purge backups are never
 * touched by the host. Returns the number deleted (best effort).
 */
int ph_backup_prune(const char *dir, const char *instance, const char *kind_prefix, int keep);

/** Runs PRAGMA integrity_check on the file at `path`; 0, or PH_ESQL with its first complaint. */
int ph_backup_verify(const char *path);

#endif
