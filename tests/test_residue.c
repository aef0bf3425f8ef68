/*
 * residue.c: what a stopped build leaves behind (threads, keys) keeps it
 * mapped and is said in one sentence naming package and build; a crash at
 * an address of a build, serving or already unloaded, is blamed on it.
 * (The counting itself is interposed in the plughost binary only:
 * tests/e2e_outlive.sh runs it; here the hooks are called directly.)
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "loader.h"
#include "manifest.h"
#include "phfix.h"
#include "residue.h"

typedef struct fx {
    char *tmp, *stage;
    ph_manifest *m;
    ph_module *mod;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->tmp = tu_tmpdir();
    f->stage = tu_fmt("%s/stage", f->tmp);
    char *markers = tu_fmt("%s/markers", f->tmp);
    mkdir(markers, 0755);
    setenv("PH_TEST_MARKERS", markers, 1);
    free(markers);
    char *dir = fx_pkgdir("core_good");
    char *path = tu_fmt("%s/package.ini", dir);
    assert_int_equal(ph_manifest_load(path, &f->m), 0);
    free(path);
    free(dir);
    assert_int_equal(ph_module_open(f->m, f->stage, &f->mod), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ph_module_close(f->mod);
    ph_manifest_free(f->m);
    tu_rmtree(f->tmp);
    free(f->stage);
    free(f->tmp);
    free(f);
    return 0;
}

/* A crash in a build's range names it, and still does once the build is unloaded. */
static void test_blame_serving_and_former(void **state)
{
    fx *f = *state;
    uintptr_t code = (uintptr_t)f->mod->desc->prepare; /* code inside the mapping */
    assert_true(ph_residue_slot_of((const void *)code) >= 0);
    const char *pkg, *version, *build, *how;
    assert_int_equal(ph_residue_blame(code, 0, &pkg, &version, &build, &how), 1);
    assert_string_equal(pkg, "core_good");
    assert_string_equal(version, f->m->version_text);
    assert_string_equal(build, f->mod->hash);
    assert_string_equal(how, "in its code, outside any call");
    char hash[17];
    memcpy(hash, f->mod->hash, sizeof hash);
    ph_module_close(f->mod);
    f->mod = NULL;
    assert_int_equal(ph_residue_slot_of((const void *)code), -1);
    assert_int_equal(ph_residue_blame(code, 0, &pkg, &version, &build, &how), 1);
    assert_string_equal(pkg, "core_good");
    assert_string_equal(build, hash);
    assert_string_equal(how, "in code of a build that was unloaded");
    /* an address only it held, touched from elsewhere */
    assert_int_equal(ph_residue_blame(0, code, &pkg, &version, &build, &how), 1);
    assert_string_equal(how, "touching the range of a build that was unloaded");
    /* nothing of a package there: the host's own crash */
    assert_int_equal(ph_residue_blame((uintptr_t)&setup, 0, &pkg, &version, &build, &how), 0);
}

/* A thread of a stopped build keeps it mapped and is said; once it ends, nothing is said. */
static void test_thread_keeps_build_mapped(void **state)
{
    fx *f = *state;
    const void *code = (const void *)(uintptr_t)f->mod->desc->prepare;
    int slot = ph_residue_slot_of(code);
    assert_true(slot >= 0);
    ph_residue_thread_count(slot, +1);
    assert_null(ph_residue_text("core_good")); /* serving: its threads are its business */
    ph_residue_after_step(f->mod, "stop");
    char *want = tu_fmt("package 'core_good' build %s: 1 thread started by the package is still "
                        "running after stop(); its code stays mapped; join your threads in stop()",
                        f->mod->hash);
    char *text = ph_residue_text("core_good");
    assert_non_null(text);
    assert_string_equal(text, want);
    free(text);
    assert_null(ph_residue_text("core_other"));
    assert_int_equal(ph_residue_threads("core_good"), 1);
    ph_module_close(f->mod); /* refused: the code stays mapped */
    f->mod = NULL;
    assert_int_equal(ph_residue_slot_of(code), slot);
    text = ph_residue_text(NULL);
    assert_string_equal(text, want);
    free(text);
    ph_residue_thread_count(slot, -1);
    assert_null(ph_residue_text("core_good"));
    free(want);
}

/* A key with its destructor in the package, never deleted, is said until it is deleted. */
static void test_key_never_deleted(void **state)
{
    fx *f = *state;
    int slot = ph_residue_slot_of((const void *)(uintptr_t)f->mod->desc->prepare);
    pthread_key_t key;
    assert_int_equal(pthread_key_create(&key, NULL), 0);
    ph_residue_key_created(slot, key);
    ph_residue_after_step(f->mod, "stop");
    char *want = tu_fmt("package 'core_good' build %s: 1 pthread key with a destructor in the "
                        "package was never deleted; its code stays mapped; call "
                        "pthread_key_delete() in stop()",
                        f->mod->hash);
    char *text = ph_residue_text("core_good");
    assert_string_equal(text, want);
    free(text);
    free(want);
    ph_residue_key_deleted(key);
    pthread_key_delete(key);
    assert_null(ph_residue_text("core_good"));
    ph_residue_after_step(f->mod, "start");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_blame_serving_and_former, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_keeps_build_mapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_never_deleted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
