/*
 * Joining file paths: the one place that puts a directory and a name
 * together, so a directory given with a trailing '/' (host.ini
 * package_dirs = pk/) never shows up as "pk//x/package.ini" in a message.
 */
#ifndef PH_HOST_PATH_H
#define PH_HOST_PATH_H

/**
 * "dir/name": one '/' between them however many `dir` ends with (and
 * however many `name` starts with); "name" when dir is "" or NULL, "/name"
 * when dir is "/". Returns a malloc'd string (caller frees) or NULL without
 * memory. Thread-safe.
 */
char *ph_path_join(const char *dir, const char *name);

/**
 * Drops the trailing '/'s of `path` in place ("/" stays "/"); returns path.
 */
char *ph_path_trim(char *path);

#endif
