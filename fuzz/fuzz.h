/*
 * What every harness shares: the libFuzzer entry points and a private
 * scratch directory. A harness is built two ways: with libFuzzer
 * (cmake -DPH_FUZZ=ON, clang; `make fuzz`) and with replay.c, which runs it
 * once over each file of its checked-in corpus (ctest: fuzz_<name>).
 */
#ifndef PH_FUZZ_H
#define PH_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/**
 * A directory private to this process, created on first use and removed at
 * exit: on /dev/shm when it exists (writes and fsyncs cost nothing there).
 * Borrowed; never NULL (aborts when it cannot be created).
 */
const char *fz_dir(void);

/** "<fz_dir>/<rel>" (caller frees); parent directories of rel are created. */
char *fz_path(const char *rel);

/** Writes data to path (truncating); aborts on failure. */
void fz_write(const char *path, const void *data, size_t size);

/** A NUL-terminated copy of data (caller frees); aborts without memory. */
char *fz_str(const uint8_t *data, size_t size);

/** Aborts with a message: a broken invariant is a finding. */
void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
