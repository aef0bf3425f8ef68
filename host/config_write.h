/*
 * The one writer of host.ini: the package manager page creates instances
 * and edits their parameters through it. It changes only the lines it is
 * asked to change: comments, blank lines, the order of sections and keys
 * and every other byte stay as they were. The new text is written to a
 * temporary file beside host.ini, synced and renamed over it, so a reader
 * (SIGHUP, a crash in between) sees the old file or the new one, never half.
 */
#ifndef PH_HOST_CONFIG_WRITE_H
#define PH_HOST_CONFIG_WRITE_H

#include <stddef.h>

#include "config.h"

/**
 * Sets keys of section [instance NAME] of the host.ini at `path`: for each
 * of `kv` (n), a line "key = value" replaces the section's line for that
 * key where it is, or is added after the section's last key; a NULL value
 * deletes the key's line (the parameter falls back to the package's
 * default). Without the section, `create` appends it at the end of the
 * file (else PH_ENOTFOUND). Keys are [A-Za-z0-9_.-]; values one line
 * without control characters or " ;" (which would start a comment).
 * Returns 0, or PH_EINVAL (a key or value, named), PH_EPERM (the file or
 * its directory is not writable: the message names it and says what to
 * do), PH_EIO, PH_ENOMEM. Not thread-safe against another writer of the
 * same file (callers hold the host's change lock).
 */
int ph_config_write_instance(const char *path, const char *instance, const ph_kv *kv, size_t n,
                             int create);

#endif
