/*
 * The scanner: looks at a package's code without running it in the calling
 * process. `plughost check` uses it; anything else that must read a
 * descriptor or rehearse a migration before trusting a build can too.
 *
 * ph_scan_package forks a child (ph_scan_packages one for many packages). The child copies the
 * package's .so to a private temporary path, dlopens it (RTLD_NOW | RTLD_LOCAL, like the loader),
 * validates the descriptor against the manifest (ph_module_open), compiles the declared models and,
 * for each instance asked for, rehearses the migration that loading would run: the instance
 * database is copied to a scratch file (VACUUM INTO from a read-only connection, so the real file
 * is not written) and ph_store_open_for migrates the copy exactly as a
 * start would (scripts, automatic steps, checks). The child writes its
 * findings to a pipe as one JSON document and exits; the parent never maps
 * the package. A child that crashes (a constructor, a bad ELF that the
 * dynamic linker trips over) or does not answer within the timeout (it is
 * then killed) is reported against the package and its build (the hash of
 * the .so, as in ph_module.hash).
 *
 * Temporary files live under $TMPDIR (default /tmp) in a directory the
 * parent creates before the child starts and removes after it ended (also
 * when it crashed).
 */
#ifndef PH_HOST_SCAN_H
#define PH_HOST_SCAN_H

#include <jansson.h>

#include "manifest.h"

/* Default bound for one package's scan; PLUGHOST_SCAN_TIMEOUT_MS overrides it. */
#define PH_SCAN_TIMEOUT_MS 20000

/**
 * Scans package `m` and rehearses the migrations of `instances` (n names;
 * their databases live under `data_dir`). timeout_ms <= 0 takes
 * PLUGHOST_SCAN_TIMEOUT_MS from the environment or PH_SCAN_TIMEOUT_MS.
 *
 * *out (caller owns) on return 0:
 *   {"package", "version", "library", "build" (hash or null),
 *    "interface": ph_interface_json of the descriptor (when it loaded),
 *    "ok": true|false, "error": text (when not ok: the load error, or
 *    "the scanner crashed with SIGSEGV reading package 'x' 1.0.0 (build
 *    HASH)" / "... did not answer within N ms ..."),
 *    "instances": [{"instance", "ok", "database": "copied"|"none",
 *                   "action", "scripts": [...], "changes": [...],
 *                   "error": text (the migration's message, naming the
 *                   script and line)}]}
 * Returns a negative code only when the scan could not be attempted (no
 * memory, fork or pipe failure). Not thread-safe with respect to fork in a
 * multi-threaded process: call it before starting threads. Package code
 * calling exit() in the child is reported as "the scanner called exit(N)".
 */
int ph_scan_package(const ph_manifest *m, const char *const *instances, size_t n,
                    const char *data_dir, int timeout_ms, json_t **out);

/* One package to scan and the instances whose migrations to rehearse (borrowed). */
typedef struct ph_scan_job {
    const ph_manifest *m;
    const char *const *instances;
    size_t n;
} ph_scan_job;

/**
 * Scans many packages as ph_scan_package scans one, with one child for all
 * of them instead of one each (a fork costs more than a small package's
 * scan): the child opens each in turn and answers for each as soon as it
 * has; a crash, an exit() or a hang (timeout_ms per package) is the verdict
 * of the package the child was on, and a new child takes the rest. outs[i]
 * (caller owns each) is the answer for jobs[i], in ph_scan_package's form.
 * Returns a negative code only when a scan could not be attempted (then
 * every outs[i] is NULL).
 */
int ph_scan_packages(const ph_scan_job *jobs, size_t n, const char *data_dir, int timeout_ms,
                     json_t **outs);

/* Default bound for one descriptor check; PLUGHOST_SCAN_TIMEOUT_MS overrides it too. */
#define PH_SCAN_DESCRIPTOR_TIMEOUT_MS 10000

/**
 * The gate before the host dlopens a build (loader.c): a forked child
 * dlopens `copy` (the staged private copy of m's library, the very file
 * the host loads next), finds the descriptor and validates it against `m`
 * (ph_loader_probe), and answers. `build` (the .so's hash) names the build
 * in messages. The child shares no descriptor with the host beyond its
 * answer pipe and is killed if the waiting thread dies.
 *
 * Returns 0 (accepted), the validation's error as the child reported it
 * (PH_EABI, PH_EMANIFEST, PH_ELOAD), or PH_ELOAD naming the package,
 * version, library, build and what happened:
 *   "... crashed with SIGSEGV while loading, in a scanner child: ..."
 *   "... called exit(3) while loading, ..."
 *   "... did not answer within 10 s (killed) while loading, ..."
 * timeout_ms <= 0 takes PLUGHOST_SCAN_TIMEOUT_MS or
 * PH_SCAN_DESCRIPTOR_TIMEOUT_MS. Callable from any thread (the child calls
 * only what glibc's fork keeps usable: malloc, dlopen, stdio).
 */
int ph_scan_descriptor(const ph_manifest *m, const char *copy, const char *build, int timeout_ms);

#endif
