/*
 * loader.c: private copies, ELF checks, dlopen, the descriptor symbol and
 * its validation against the manifest -- before any package code runs.
 */
#include <dirent.h>
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "elfcheck.h"
#include "error.h"
#include "loader.h"
#include "manifest.h"
#include "phfix.h"

typedef struct fx {
    char *tmp;
    char *stage;
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

static ph_manifest *load_manifest(fx *f, const char *dir)
{
    char *path = tu_fmt("%s/package.ini", dir);
    int rc = ph_manifest_load(path, &f->m);
    if (rc)
        fprintf(stderr, "ph_manifest_load(%s): %s\n", path, ph_error_last());
    assert_int_equal(rc, 0);
    free(path);
    return f->m;
}

static ph_manifest *fixture_manifest(fx *f, const char *name)
{
    char *dir = fx_pkgdir(name);
    load_manifest(f, dir);
    free(dir);
    return f->m;
}

/* Number of entries (besides . and ..) in a directory; -1 if it does not exist. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static int no_markers(fx *f)
{
    char *dir = tu_fmt("%s/markers", f->tmp);
    int n = count_entries(dir);
    free(dir);
    return n == 0;
}

/* ---- ph_module_open on real fixtures ---- */

static void test_open_good(void **state)
{
    fx *f = *state;
    ph_manifest *m = fixture_manifest(f, "core_good");
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), 0);
    assert_non_null(f->mod);
    assert_non_null(f->mod->handle);
    assert_string_equal(f->mod->desc->name, "core_good");
    assert_string_equal(f->mod->desc->version, "1.0.0");
    assert_int_equal(f->mod->desc->abi, PH_ABI_VERSION);
    assert_int_equal(f->mod->desc->n_actors, 1);
    assert_string_equal(f->mod->desc->actors[0].name, "probe");
    assert_string_equal(f->mod->source, m->library);
    assert_int_equal(strlen(f->mod->hash), 16);
    /* The hash identifies the build: it is the hash of the original file. */
    char hash[17];
    assert_int_equal(ph_file_hash(m->library, hash), 0);
    assert_string_equal(hash, f->mod->hash);
    /* The private copy is unlinked once mapped; no package code ran. */
    assert_int_equal(count_entries(f->stage), 0);
    assert_true(no_markers(f));
}

static void test_private_copies_are_distinct(void **state)
{
    fx *f = *state;
    ph_manifest *m = fixture_manifest(f, "core_good");
    ph_module *second = NULL;
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), 0);
    assert_int_equal(ph_module_open(m, f->stage, &second), 0);
    /* Each open maps its own copy: its own handle and its own descriptor. */
    assert_ptr_not_equal(f->mod->handle, second->handle);
    assert_ptr_not_equal(f->mod->desc, second->desc);
    assert_string_not_equal(f->mod->copy, second->copy);
    ph_module_close(second);
    assert_int_equal(count_entries(f->stage), 0);
}

static void test_bad_abi_refused(void **state)
{
    fx *f = *state;
    ph_manifest *m = fixture_manifest(f, "core_bad_abi");
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), PH_EABI);
    assert_null(f->mod);
    assert_string_equal(ph_error_last(),
                        "package 'core_bad_abi': the .so was built against SDK ABI 2 but this host "
                        "supports ABI 1; rebuild it against this SDK");
    assert_true(no_markers(f));
    assert_int_equal(count_entries(f->stage), 0); /* the copy is removed again */
}

static void test_missing_descriptor(void **state)
{
    fx *f = *state;
    ph_manifest *m = fixture_manifest(f, "core_no_desc");
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), PH_ELOAD);
    assert_null(f->mod);
    char *want = tu_fmt("package 'core_no_desc': %s exports no 'plughost_package_v1'; declare the "
                        "package with PH_PACKAGE(...) from <plughost/sdk.h>",
                        m->library);
    assert_string_equal(ph_error_last(), want);
    free(want);
    assert_true(no_markers(f));
}

static void test_name_mismatch(void **state)
{
    fx *f = *state;
    ph_manifest *m = fixture_manifest(f, "core_bad_name");
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), PH_EMANIFEST);
    char *want =
        tu_fmt("package 'core_bad_name': the .so says its name is 'core_impostor' but %s "
               "says 'core_bad_name'; rebuild the package (its name comes from package.ini)",
               m->path);
    assert_string_equal(ph_error_last(), want);
    free(want);
    assert_true(no_markers(f));
}

static void test_version_mismatch(void **state)
{
    fx *f = *state;
    ph_manifest *m = fixture_manifest(f, "core_bad_version");
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), PH_EMANIFEST);
    char *want = tu_fmt("package 'core_bad_version': the .so is version 2.0.0 but %s says version "
                        "1.0.0; rebuild the package so both agree",
                        m->path);
    assert_string_equal(ph_error_last(), want);
    free(want);
    assert_true(no_markers(f));
}

/* A package directory in tmp with core_good's manifest and `so_bytes` as its .so. */
static ph_manifest *fake_package(fx *f, const void *so_bytes, size_t len)
{
    char *good = fx_pkgdir("core_good");
    char *ini_src = tu_fmt("%s/package.ini", good);
    char *ini = tu_read(ini_src);
    assert_non_null(ini);
    char *dir = tu_fmt("%s/pkg", f->tmp);
    free(tu_write(dir, "package.ini", ini));
    char *so = tu_fmt("%s/core_good.so", dir);
    FILE *fp = fopen(so, "wb");
    assert_non_null(fp);
    if (len)
        assert_int_equal(fwrite(so_bytes, 1, len, fp), len);
    fclose(fp);
    load_manifest(f, dir);
    assert_string_equal(f->m->library, so);
    free(so);
    free(dir);
    free(ini);
    free(ini_src);
    free(good);
    return f->m;
}

static void test_missing_library(void **state)
{
    fx *f = *state;
    char *dir = tu_fmt("%s/pkg", f->tmp);
    free(tu_write(dir, "package.ini", "[package]\nname = ghost\nversion = 1.0.0\n"));
    load_manifest(f, dir);
    assert_int_equal(ph_module_open(f->m, f->stage, &f->mod), PH_ELOAD);
    char *want =
        tu_fmt("cannot open %s/ghost.so: No such file or directory; build the package first", dir);
    assert_string_equal(ph_error_last(), want);
    free(want);
    free(dir);
}

static void test_tiny_file(void **state)
{
    fx *f = *state;
    ph_manifest *m = fake_package(f, "\177ELF12345", 9);
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), PH_ELOAD);
    char *want =
        tu_fmt("%s is not a shared object (only 9 bytes); is it still being written?", m->library);
    assert_string_equal(ph_error_last(), want);
    free(want);
    assert_int_equal(count_entries(f->stage), 0);
}

static void test_not_elf(void **state)
{
    fx *f = *state;
    char text[200];
    memset(text, 'x', sizeof text);
    ph_manifest *m = fake_package(f, text, sizeof text);
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), PH_ELOAD);
    char *want = tu_fmt("%s is not a 64-bit ELF shared object", m->library);
    assert_string_equal(ph_error_last(), want);
    free(want);
}

static void test_truncated_so(void **state)
{
    fx *f = *state;
    char *good = fx_pkgdir("core_good");
    char *so = tu_fmt("%s/core_good.so", good);
    FILE *fp = fopen(so, "rb");
    assert_non_null(fp);
    unsigned char head[1024];
    assert_int_equal(fread(head, 1, sizeof head, fp), sizeof head);
    fclose(fp);
    ph_manifest *m = fake_package(f, head, sizeof head);
    /* A half-written .so must be refused, not dlopened (that can SIGBUS the host). */
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), PH_ELOAD);
    assert_true(tu_contains(ph_error_last(), m->library));
    assert_true(tu_contains(ph_error_last(), "is truncated"));
    assert_true(tu_contains(ph_error_last(), "wait for the build to finish"));
    free(so);
    free(good);
}

static void test_dlopen_error(void **state)
{
    fx *f = *state;
    /* A position-independent executable passes the ELF checks, but dlopen refuses it. */
    char *bin = tu_read(tu_env("PH_BIN"));
    assert_non_null(bin);
    struct stat st;
    assert_int_equal(stat(tu_env("PH_BIN"), &st), 0);
    ph_manifest *m = fake_package(f, bin, (size_t)st.st_size);
    free(bin);
    int rc = ph_module_open(m, f->stage, &f->mod);
    assert_int_equal(rc, PH_ELOAD);
    char *want = tu_fmt("package 'core_good': cannot load %s: ", m->library);
    assert_true(tu_contains(ph_error_last(), want));
    free(want);
    assert_int_equal(count_entries(f->stage), 0);
}

/* ---- hostile files (issue 9, failures 2 and 9) ---- */

#if defined(__aarch64__)
#define TEST_MACHINE EM_AARCH64
#else
#define TEST_MACHINE EM_X86_64
#endif

/* 584 bytes: an ELF64 shared-object header for this machine, one program header at 64. */
#define HOSTILE_SIZE 584
static void hostile_elf(unsigned char buf[HOSTILE_SIZE], uint64_t phoff)
{
    Elf64_Ehdr eh;
    memset(buf, 0, HOSTILE_SIZE);
    memset(&eh, 0, sizeof eh);
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_DYN;
    eh.e_machine = TEST_MACHINE;
    eh.e_version = EV_CURRENT;
    eh.e_ehsize = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 1;
    eh.e_phoff = phoff;
    memcpy(buf, &eh, sizeof eh);
}

/* Writes one program header at 64. */
static void hostile_phdr(unsigned char *buf, uint32_t type, uint64_t off, uint64_t filesz)
{
    Elf64_Phdr ph;
    memset(&ph, 0, sizeof ph);
    ph.p_type = type;
    ph.p_offset = off;
    ph.p_filesz = filesz;
    memcpy(buf + sizeof(Elf64_Ehdr), &ph, sizeof ph);
}

/* Expects ph_module_open to refuse the fake package with exactly `msg` after the library path. */
static void refuse_so(fx *f, const unsigned char *so, size_t len, const char *msg)
{
    ph_manifest *m = fake_package(f, so, len);
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), PH_ELOAD);
    char *want = tu_fmt("%s %s", m->library, msg);
    assert_string_equal(ph_error_last(), want);
    free(want);
    assert_int_equal(count_entries(f->stage), 0);
    ph_manifest_free(f->m);
    f->m = NULL;
}

/* The program-header offset near 2^64 wrapped the old bounds check: SIGSEGV at start-up. */
static void test_hostile_elf_offsets(void **state)
{
    fx *f = *state;
    unsigned char so[HOSTILE_SIZE];
    hostile_elf(so, UINT64_MAX - 15);
    refuse_so(f, so, sizeof so,
              "is truncated: its program headers lie past the end of the file (584 bytes); "
              "wait for the build to finish");
    hostile_elf(so, 64);
    Elf64_Ehdr eh;
    memcpy(&eh, so, sizeof eh);
    eh.e_shoff = UINT64_MAX - 63;
    eh.e_shnum = 2;
    eh.e_shentsize = sizeof(Elf64_Shdr);
    memcpy(so, &eh, sizeof eh);
    refuse_so(f, so, sizeof so,
              "is truncated: its section headers lie past the end of the file (584 bytes); "
              "wait for the build to finish");
    hostile_elf(so, 64);
    hostile_phdr(so, PT_LOAD, UINT64_MAX - 7, 16);
    refuse_so(f, so, sizeof so,
              "is truncated: a loadable segment ends past the end of the file; wait for the "
              "build to finish");
    hostile_phdr(so, PT_DYNAMIC, 512, UINT64_MAX - 500);
    refuse_so(f, so, sizeof so,
              "is truncated: a dynamic segment ends past the end of the file; wait for the "
              "build to finish");
}

/* A dynamic section at an odd offset is read (memcpy), not dereferenced misaligned. */
static void test_hostile_elf_misaligned(void **state)
{
    fx *f = *state;
    unsigned char so[HOSTILE_SIZE];
    hostile_elf(so, 64);
    hostile_phdr(so, PT_DYNAMIC, 201, 2 * sizeof(Elf64_Dyn));
    Elf64_Dyn d[2] = {{.d_tag = DT_FLAGS_1, .d_un.d_val = DF_1_NODELETE}, {.d_tag = DT_NULL}};
    memcpy(so + 201, d, sizeof d);
    refuse_so(f, so, sizeof so,
              "is marked NODELETE (linked with -z nodelete): it could never be unloaded, so it "
              "cannot be reloaded; build it without -Wl,-z,nodelete");
    /* The same through the reader alone, at every odd offset of a misaligned buffer. */
    unsigned char *shifted = malloc(HOSTILE_SIZE + 1);
    memcpy(shifted + 1, so, sizeof so);
    assert_int_equal(ph_elf_check_image(shifted + 1, sizeof so, "x.so"), PH_ELOAD);
    assert_string_equal(ph_error_last(), "x.so is marked NODELETE (linked with -z nodelete): it "
                                         "could never be unloaded, so it cannot be reloaded; "
                                         "build it without -Wl,-z,nodelete");
    free(shifted);
}

/* Initial-exec TLS (DF_STATIC_TLS) is refused at load, saying how to rebuild. */
static void test_static_tls_refused(void **state)
{
    fx *f = *state;
    unsigned char so[HOSTILE_SIZE];
    hostile_elf(so, 64);
    hostile_phdr(so, PT_DYNAMIC, 256, 2 * sizeof(Elf64_Dyn));
    Elf64_Dyn d[2] = {{.d_tag = DT_FLAGS, .d_un.d_val = DF_STATIC_TLS}, {.d_tag = DT_NULL}};
    memcpy(so + 256, d, sizeof d);
    refuse_so(f, so, sizeof so,
              "uses static TLS (DF_STATIC_TLS: thread-local variables built with "
              "-ftls-model=initial-exec): glibc cannot give its space back, so reloading it "
              "would fail after a few builds; rebuild it with -fPIC and the default "
              "global-dynamic TLS model (drop -ftls-model=initial-exec and "
              "tls_model(\"initial-exec\"))");
}

/* A package whose library is `kind`; expects the one message naming package and file. */
static void refuse_library(fx *f, const char *kind, const char *what)
{
    ph_manifest *m = fake_package(f, "", 0);
    assert_int_equal(unlink(m->library), 0);
    if (strcmp(kind, "fifo") == 0)
        assert_int_equal(mkfifo(m->library, 0644), 0);
    else if (strcmp(kind, "dir") == 0)
        assert_int_equal(mkdir(m->library, 0755), 0);
    else
        assert_int_equal(symlink(kind, m->library), 0);
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), PH_ELOAD);
    char *want = tu_fmt("package 'core_good': library %s is not a regular file (it is %s); point "
                        "'library' in package.ini at the built .so",
                        m->library, what);
    assert_string_equal(ph_error_last(), want);
    /* The reload path reads the original file too: the same refusal, no hash, no wait. */
    char hash[17] = "x";
    assert_int_equal(ph_elf_check(m->library, "core_good", m->library, hash), PH_ELOAD);
    assert_string_equal(ph_error_last(), want);
    assert_string_equal(hash, "");
    free(want);
    assert_int_equal(count_entries(f->stage), 0);
    if (strcmp(kind, "dir") == 0)
        rmdir(m->library);
    else
        unlink(m->library);
    ph_manifest_free(f->m);
    f->m = NULL;
}

/* Issue 9, failure 9: /dev/zero was copied without end; a FIFO hung start-up. */
static void test_library_not_regular(void **state)
{
    fx *f = *state;
    refuse_library(f, "/dev/zero", "a character device");
    refuse_library(f, "fifo", "a FIFO");
    refuse_library(f, "dir", "a directory");
}

/* A regular file past PH_ELF_MAX_SIZE is refused before a byte is copied (sparse: no disk used). */
static void test_library_too_big(void **state)
{
    fx *f = *state;
    ph_manifest *m = fake_package(f, "", 0);
    assert_int_equal(truncate(m->library, (off_t)PH_ELF_MAX_SIZE + 1), 0);
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), PH_ELOAD);
    char *want = tu_fmt("package 'core_good': library %s is %lld bytes, more than the %u a "
                        "library may have; is it the right file?",
                        m->library, (long long)PH_ELF_MAX_SIZE + 1, PH_ELF_MAX_SIZE);
    assert_string_equal(ph_error_last(), want);
    free(want);
    assert_int_equal(count_entries(f->stage), 0);
}

/* ---- ph_loader_validate on hand-built descriptors ---- */

static int64_t fn_add(ph_ctx *ctx, int64_t a, int64_t b)
{
    (void)ctx;
    return a + b;
}

static const ph_arg two_args[] = {{"a", PH_I64}, {"b", PH_I64}};
static const ph_arg dup_args[] = {{"a", PH_I64}, {"a", PH_I64}};
static const ph_arg void_arg[] = {{"a", PH_VOID}};
static const ph_arg time_arg[] = {{"a", PH_TIME}};

typedef struct vfx {
    ph_manifest m;
    ph_package d;
    ph_actor actor;
    ph_method methods[2];
} vfx;

static void make_valid(vfx *v)
{
    memset(v, 0, sizeof *v);
    v->m.name = "pkg";
    v->m.version_text = "1.2.3";
    v->m.path = "/x/pkg/package.ini";
    v->methods[0] = (ph_method){"add", (void (*)(void))fn_add, PH_I64, 2, two_args, 0, NULL};
    v->methods[1] = (ph_method){"sub", (void (*)(void))fn_add, PH_I64, 2, two_args, 0, NULL};
    v->actor = (ph_actor){"math", v->methods, 2};
    v->d = (ph_package){.abi = PH_ABI_VERSION,
                        .size = sizeof(ph_package),
                        .name = "pkg",
                        .version = "1.2.3",
                        .actors = &v->actor,
                        .n_actors = 1};
}

static void test_validate_ok(void **state)
{
    (void)state;
    vfx v;
    make_valid(&v);
    assert_int_equal(ph_loader_validate(&v.d, &v.m), 0);
    /* A descriptor from an older ABI-1 SDK without the appended save/restore fields is fine. */
    v.d.size = (uint32_t)offsetof(ph_package, save);
    assert_int_equal(ph_loader_validate(&v.d, &v.m), 0);
}

static void test_validate_abi_first(void **state)
{
    (void)state;
    vfx v;
    make_valid(&v);
    v.d.abi = 7;
    v.d.name = "other"; /* the ABI is checked before anything else is read */
    v.d.size = 3;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);
    assert_string_equal(ph_error_last(), "package 'pkg': the .so was built against SDK ABI 7 but "
                                         "this host supports ABI 1; rebuild it against this SDK");
}

static void test_validate_size(void **state)
{
    (void)state;
    vfx v;
    make_valid(&v);
    v.d.size = 16;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);
    char *want = tu_fmt("package 'pkg': descriptor size 16 is smaller than the ABI 1 minimum %zu; "
                        "rebuild it against this SDK",
                        offsetof(ph_package, save));
    assert_string_equal(ph_error_last(), want);
    free(want);
}

static void test_validate_name_version(void **state)
{
    (void)state;
    vfx v;
    make_valid(&v);
    v.d.name = NULL;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EMANIFEST);
    assert_true(tu_contains(ph_error_last(), "the .so says its name is '(none)' but "
                                             "/x/pkg/package.ini says 'pkg'"));
    make_valid(&v);
    v.d.version = "1.2.4";
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EMANIFEST);
    assert_true(tu_contains(ph_error_last(), "the .so is version 1.2.4 but /x/pkg/package.ini says "
                                             "version 1.2.3"));
}

static void test_validate_tables(void **state)
{
    (void)state;
    vfx v;

    make_valid(&v);
    v.actor.name = "bad name";
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);
    assert_true(tu_contains(ph_error_last(), "package 'pkg': actor #1 has an invalid name"));

    make_valid(&v);
    v.methods[1].fn = NULL;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);
    assert_string_equal(ph_error_last(), "package 'pkg': method math.sub has no function");

    make_valid(&v);
    v.methods[0].ret = PH_TIME;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);
    assert_true(tu_contains(ph_error_last(), "method math.add has result type 6"));

    make_valid(&v);
    v.methods[0].args = dup_args;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);
    assert_true(tu_contains(ph_error_last(), "method math.add declares parameter 'a' twice"));

    make_valid(&v);
    v.methods[0].args = void_arg;
    v.methods[0].n_args = 1;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);
    assert_true(
        tu_contains(ph_error_last(), "method math.add parameter #1 needs a name and a type"));

    make_valid(&v);
    v.methods[0].args = time_arg;
    v.methods[0].n_args = 1;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);

    make_valid(&v);
    v.methods[0].n_args = 33;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);
    assert_true(tu_contains(ph_error_last(), "declares 33 parameters (at most 32)"));

    make_valid(&v);
    v.methods[1].name = "add";
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);
    assert_string_equal(ph_error_last(), "package 'pkg': actor 'math' declares method 'add' twice");

    make_valid(&v);
    v.d.actors = NULL;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);
    assert_true(
        tu_contains(ph_error_last(), "descriptor counts actors/models it does not provide"));

    make_valid(&v);
    ph_actor twice[2] = {v.actor, v.actor};
    v.d.actors = twice;
    v.d.n_actors = 2;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);
    assert_string_equal(ph_error_last(), "package 'pkg': actor 'math' declared twice");
}

static void test_validate_models(void **state)
{
    (void)state;
    vfx v;
    static const ph_field ok_fields[] = {{"title", PH_STR, PH_REQUIRED, NULL, NULL},
                                         {"owner", PH_REF, 0, NULL, "user"}};
    static const ph_field ref_fields[] = {{"owner", PH_REF, 0, NULL, NULL}};
    static const ph_field def_fields[] = {{"n", PH_I64, PH_HAS_DEFAULT, NULL, NULL}};
    static const ph_field dup_fields[] = {{"n", PH_I64, 0, NULL, NULL},
                                          {"n", PH_STR, 0, NULL, NULL}};
    ph_model model = {"note", ok_fields, 2, 0, NULL, NULL};

    make_valid(&v);
    v.d.models = &model;
    v.d.n_models = 1;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), 0);

    model.fields = ref_fields;
    model.n_fields = 1;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);
    assert_string_equal(ph_error_last(), "package 'pkg': model 'note' field 'owner' is a reference "
                                         "but names no model");
    model.fields = def_fields;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);
    assert_string_equal(ph_error_last(),
                        "package 'pkg': model 'note' field 'n' has a NULL default");
    model.fields = dup_fields;
    model.n_fields = 2;
    assert_int_equal(ph_loader_validate(&v.d, &v.m), PH_EABI);
    assert_string_equal(ph_error_last(), "package 'pkg': model 'note' declares field 'n' twice");
}

/* ---- the scanner gate, $ORIGIN and exports (issue 10, items 7 and 8) ---- */

/* A constructor runs in the scanner child only; the host refuses the descriptor unmapped. */
static void test_constructor_not_in_host(void **state)
{
    fx *f = *state;
    ph_manifest *m = fixture_manifest(f, "core_ctor");
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), PH_EMANIFEST);
    char *want = tu_fmt("package 'core_ctor': the .so is version 9.9.9 but %s says version 1.0.0; "
                        "rebuild the package so both agree",
                        m->path);
    assert_string_equal(ph_error_last(), want);
    free(want);
    char *markers = tu_fmt("%s/markers", f->tmp);
    char *mine = tu_fmt("%s/core_ctor.ctor.%d", markers, (int)getpid());
    assert_int_equal(count_entries(markers), 1); /* the scanner child's */
    assert_int_not_equal(access(mine, F_OK), 0); /* never this process's */
    assert_int_equal(count_entries(f->stage), 0);
    free(markers);
    free(mine);
}

/* An accepted build is not scanned again: its verdict is kept beside the stage directory. */
static void test_accepted_build_not_rescanned(void **state)
{
    fx *f = *state;
    ph_manifest *m = fixture_manifest(f, "core_good");
    char *kept = tu_fmt("%s.accepted", f->stage);
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), 0);
    assert_int_equal(count_entries(kept), 1);
    ph_module_close(f->mod);
    f->mod = NULL;
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), 0);
    assert_int_equal(count_entries(kept), 1);
    free(kept);
}

static void test_export_clash_refused(void **state)
{
    fx *f = *state;
    ph_manifest *m = fixture_manifest(f, "core_exports");
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), PH_ELOAD);
    char *want = tu_fmt("package 'core_exports': %s exports 1 symbol the host already has "
                        "(json_loads): the package's own calls to it would run the host's copy; "
                        "build it with -fvisibility=hidden (plughost_add_package does) or make it "
                        "static",
                        m->library);
    assert_string_equal(ph_error_last(), want);
    free(want);
    assert_null(f->mod);
    assert_int_equal(count_entries(f->stage), 0);
}

static int has_name(char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* The ELF reader's exports: defined, global, default visibility; not the linker's own. */
static void test_elf_exports(void **state)
{
    fx *f = *state;
    unsigned char *p = NULL;
    size_t len = 0;
    ph_elf_dyn d;
    ph_manifest *m = fixture_manifest(f, "core_exports");
    assert_int_equal(ph_elf_read(m->library, "core_exports", &p, &len), 0);
    assert_int_equal(ph_elf_dyn_read(p, len, m->library, &d), 0);
    assert_int_equal(d.n_exports, 3);
    assert_true(has_name(d.exports, d.n_exports, "json_loads"));
    assert_true(has_name(d.exports, d.n_exports, "extra_one"));
    assert_true(has_name(d.exports, d.n_exports, PH_DESCRIPTOR_SYMBOL));
    assert_int_equal(d.n_search, 0);
    ph_elf_dyn_free(&d);
    /* Every prefix of the file: an error or a result, never a fault (ASan watches). */
    for (size_t cut = 0; cut < len; cut += 97) {
        if (ph_elf_dyn_read(p, cut, m->library, &d) == 0)
            ph_elf_dyn_free(&d);
    }
    free(p);
    ph_manifest_free(f->m);
    f->m = NULL;
    m = fixture_manifest(f, "core_good");
    assert_int_equal(ph_elf_read(m->library, "core_good", &p, &len), 0);
    assert_int_equal(ph_elf_dyn_read(p, len, m->library, &d), 0);
    assert_int_equal(d.n_exports, 1);
    assert_string_equal(d.exports[0], PH_DESCRIPTOR_SYMBOL);
    ph_elf_dyn_free(&d);
    free(p);
}

/*
 * A package with its own library through $ORIGIN and $ORIGIN/lib (the same
 * soname twice): both load, each with its own library, and a library
 * changed under a loaded one is loaded anew (not the mapped old one).
 */
static ph_manifest *origin_package(fx *f, const char *name, const char *sub, int value)
{
    char *out = NULL, *dir = tu_fmt("%s/%s", f->tmp, name);
    char *libdir = tu_fmt("%s%s%s", dir, *sub ? "/" : "", sub);
    const char *src = tu_env("PH_SOURCE_DIR");
    int rc = tu_run(&out,
                    "mkdir -p %s && cc -shared -fPIC -DHELPER_VALUE=%d -Wl,-soname,libpkghelper.so "
                    "-o %s/libpkghelper.so.tmp %s/tests/scanload/pkghelper.c && mv "
                    "%s/libpkghelper.so.tmp %s/libpkghelper.so && cc -std=c11 -shared -fPIC "
                    "-fvisibility=hidden -I%s/sdk/include -DPH_PACKAGE_NAME='\"%s\"' "
                    "-DPH_PACKAGE_VERSION='\"1.0.0\"' -o %s/%s.so %s/tests/scanload/origin.c "
                    "-L%s -lpkghelper -Wl,-rpath,'$ORIGIN%s%s' && printf "
                    "'[package]\\nname = %s\\nversion = 1.0.0\\n' >%s/package.ini",
                    libdir, value, libdir, src, libdir, libdir, src, name, dir, name, src, libdir,
                    *sub ? "/" : "", sub, name, dir);
    if (rc)
        fail_msg("building %s: %s", name, out);
    free(out);
    char *ini = tu_fmt("%s/package.ini", dir);
    ph_manifest *m = NULL;
    assert_int_equal(ph_manifest_load(ini, &m), 0);
    free(ini);
    free(libdir);
    free(dir);
    return m;
}

static int64_t call_value(ph_module *mod)
{
    int64_t (*fn)(ph_ctx *) = (int64_t(*)(ph_ctx *))mod->desc->actors[0].methods[0].fn;
    return fn(NULL);
}

static void test_origin_libraries(void **state)
{
    fx *f = *state;
    ph_manifest *a = origin_package(f, "origin", "", 1);
    ph_manifest *b = origin_package(f, "originlib", "lib", 10);
    ph_module *ma = NULL, *mb = NULL, *ma2 = NULL;
    char before[17], after[17];
    /* what the ELF reader sees: the needed library and the $ORIGIN search path */
    unsigned char *p = NULL;
    size_t len = 0;
    ph_elf_dyn d;
    assert_int_equal(ph_elf_read(b->library, "originlib", &p, &len), 0);
    assert_int_equal(ph_elf_dyn_read(p, len, b->library, &d), 0);
    int found = 0;
    for (size_t i = 0; i < d.n_needed; i++)
        found |= strcmp(d.needed[i].text, "libpkghelper.so") == 0;
    assert_true(found);
    assert_int_equal(d.n_search, 1);
    assert_string_equal(d.search[0], "$ORIGIN/lib");
    ph_elf_dyn_free(&d);
    free(p);
    assert_int_equal(ph_module_libs_hash(a, before), 0);
    assert_int_equal(strlen(before), 16);
    assert_int_equal(ph_module_open(a, f->stage, &ma), 0);
    assert_int_equal(ph_module_open(b, f->stage, &mb), 0);
    assert_int_equal(call_value(ma), 1);
    assert_int_equal(call_value(mb), 10);
    /* a new helper beside the loaded one: a new build, loaded with its own helper */
    ph_manifest_free(origin_package(f, "origin", "", 2));
    assert_int_equal(ph_module_libs_hash(a, after), 0);
    assert_string_not_equal(before, after);
    assert_int_equal(ph_module_open(a, f->stage, &ma2), 0);
    assert_int_equal(call_value(ma2), 2);
    assert_int_equal(call_value(ma), 1);
    assert_int_equal(count_entries(f->stage), 0);
    ph_module_close(ma2);
    ph_module_close(mb);
    ph_module_close(ma);
    ph_manifest_free(a);
    ph_manifest_free(b);
    /* the core fixtures need no library of their own: no part in their identity */
    ph_manifest *m = fixture_manifest(f, "core_good");
    assert_int_equal(ph_module_libs_hash(m, before), 0);
    assert_string_equal(before, "");
}

/* A library found through $ORIGIN outside the package directory is refused, naming it. */
static void test_origin_outside_refused(void **state)
{
    fx *f = *state;
    ph_manifest *m = origin_package(f, "outside", "", 1);
    char *out = NULL;
    assert_int_equal(tu_run(&out,
                            "mkdir -p %s/shared && mv %s/outside/libpkghelper.so %s/shared/ && "
                            "cc -std=c11 -shared -fPIC -fvisibility=hidden -I%s/sdk/include "
                            "-DPH_PACKAGE_NAME='\"outside\"' -DPH_PACKAGE_VERSION='\"1.0.0\"' -o "
                            "%s/outside/outside.so %s/tests/scanload/origin.c -L%s/shared "
                            "-lpkghelper -Wl,-rpath,'$ORIGIN/../shared'",
                            f->tmp, f->tmp, f->tmp, tu_env("PH_SOURCE_DIR"), f->tmp,
                            tu_env("PH_SOURCE_DIR"), f->tmp),
                     0);
    free(out);
    assert_int_equal(ph_module_open(m, f->stage, &f->mod), PH_ELOAD);
    char *want =
        tu_fmt("package 'outside': outside.so needs libpkghelper.so from %s/outside/../shared/"
               "libpkghelper.so, outside the package directory %s/outside; ship the "
               "library inside the package directory",
               f->tmp, f->tmp);
    assert_string_equal(ph_error_last(), want);
    free(want);
    ph_manifest_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_private_copies_are_distinct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_abi_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_descriptor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_library, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tiny_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_elf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_so, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlopen_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_elf_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_elf_misaligned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_tls_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_library_not_regular, setup, teardown),
        cmocka_unit_test_setup_teardown(test_library_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_constructor_not_in_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accepted_build_not_rescanned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_clash_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elf_exports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_origin_libraries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_origin_outside_refused, setup, teardown),
        cmocka_unit_test(test_validate_ok),
        cmocka_unit_test(test_validate_abi_first),
        cmocka_unit_test(test_validate_size),
        cmocka_unit_test(test_validate_name_version),
        cmocka_unit_test(test_validate_tables),
        cmocka_unit_test(test_validate_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
