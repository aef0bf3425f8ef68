/* Helpers shared by the cmocka tests: temp dirs, files, running plughost. */
#ifndef PH_TESTUTIL_H
#define PH_TESTUTIL_H

#include <stddef.h>

/** Environment variable set by ctest (PH_SOURCE_DIR, PH_FIXTURES, PH_BIN...); aborts if unset. */
const char *tu_env(const char *name);
/** Creates a fresh temporary directory; returns a malloc'd path. */
char *tu_tmpdir(void);
/** Removes a directory tree (rm -rf). */
void tu_rmtree(const char *path);
/** Writes `text` to dir/name (creating parent directories); returns malloc'd full path. */
char *tu_write(const char *dir, const char *name, const char *text);
/** Reads a whole file; malloc'd, NUL-terminated, NULL if missing. */
char *tu_read(const char *path);
/** printf into a malloc'd string. */
char *tu_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/**
 * Runs a shell command, capturing stdout+stderr into *out (malloc'd).
 * Returns the exit status (or 128+signal).
 */
int tu_run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** A cmocka fixture that is just a fresh temporary directory. */
typedef struct tu_dir_fixture {
    char *dir;
} tu_dir_fixture;
/** cmocka setup/teardown for tu_dir_fixture: creates, then removes the directory. */
int tu_dir_setup(void **state);
int tu_dir_teardown(void **state);

/** True if `hay` contains `needle`; prints both when it does not. */
int tu_contains(const char *hay, const char *needle);

#endif
