#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfcheck.h"
#include "error.h"
#include "log.h"
#include "residue.h"

/* ---- private copies ---- */

static atomic_uint copy_counter;

/* Copies the library: only a regular file, and never more than PH_ELF_MAX_SIZE bytes. */
static int copy_file(const char *src, const char *dst, const char *package)
{
    int in = -1, out = -1, rc = 0;
    char buf[65536];
    size_t size = 0, total = 0;
    if ((rc = ph_elf_open(src, package, &in, &size)))
        goto cleanup;
    /* O_EXCL: a fresh inode, never an existing (possibly mapped) file. */
    if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700)) < 0) {
        rc = ph_error_set(PH_EIO, "cannot create %s: %s", dst, ph_strerror(errno));
        goto cleanup;
    }
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ph_error_set(PH_EIO, "cannot read %s: %s", src, ph_strerror(errno));
            goto cleanup;
        }
        if (n == 0)
            break;
        if ((total += (size_t)n) > PH_ELF_MAX_SIZE) { /* grew since it was opened */
            rc = ph_error_set(PH_ELOAD,
                              "package '%s': library %s grew past %u bytes while "
                              "being copied; is it the right file?",
                              package, src, PH_ELF_MAX_SIZE);
            goto cleanup;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = ph_error_set(PH_EIO, "cannot write %s: %s", dst, ph_strerror(errno));
                goto cleanup;
            }
            off += w;
        }
    }
cleanup:
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0 && !rc)
        rc = ph_error_set(PH_EIO, "cannot write %s: %s", dst, ph_strerror(errno));
    if (rc && out >= 0)
        unlink(dst);
    return rc;
}

int ph_file_hash(const char *path, char out[17])
{
    /* Only a regular file of a sane size: a FIFO or /dev/zero must not hang or spin. */
    int fd = -1;
    size_t size = 0, total = 0;
    out[0] = 0;
    if (ph_elf_open(path, NULL, &fd, &size))
        return ph_error_last_code();
    uint64_t h = 1469598103934665603ULL;
    unsigned char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 && (total += (size_t)n) <= PH_ELF_MAX_SIZE)
        for (ssize_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211ULL;
    close(fd);
    if (total > PH_ELF_MAX_SIZE)
        return ph_error_set(PH_EIO, "%s grew past %u bytes while it was read", path,
                            PH_ELF_MAX_SIZE);
    if (n < 0)
        return ph_error_set(PH_EIO, "cannot read %s", path);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return 0;
}

/* ---- descriptor validation ---- */

static int valid_name(const char *s)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return 0;
    return 1;
}

static int method_type_ok(ph_type t, int is_result)
{
    return (t >= PH_BOOL && t <= PH_JSON) || (is_result && t == PH_VOID);
}

static int validate_actor(const ph_package *d, const ph_actor *a, uint32_t index)
{
    if (!valid_name(a->name))
        return ph_error_set(PH_EABI,
                            "package '%s': actor #%u has an invalid name; use letters, "
                            "digits, '_' and '-'",
                            d->name, index);
    if (!a->methods && a->n_methods)
        return ph_error_set(PH_EABI, "package '%s': actor '%s' has no method table", d->name,
                            a->name);
    for (uint32_t i = 0; i < a->n_methods; i++) {
        const ph_method *m = &a->methods[i];
        if (!valid_name(m->name))
            return ph_error_set(PH_EABI, "package '%s': actor '%s' method #%u has an invalid name",
                                d->name, a->name, i);
        if (!m->fn)
            return ph_error_set(PH_EABI, "package '%s': method %s.%s has no function", d->name,
                                a->name, m->name);
        if (!method_type_ok(m->ret, 1))
            return ph_error_set(PH_EABI,
                                "package '%s': method %s.%s has result type %d; use "
                                "PH_VOID, PH_BOOL, PH_I64, PH_F64, PH_STR or PH_JSON",
                                d->name, a->name, m->name, (int)m->ret);
        if (m->n_args > 32 || (m->n_args && !m->args))
            return ph_error_set(PH_EABI,
                                "package '%s': method %s.%s declares %u parameters "
                                "(at most 32)",
                                d->name, a->name, m->name, m->n_args);
        for (uint32_t j = 0; j < m->n_args; j++) {
            if (!valid_name(m->args[j].name) || !method_type_ok(m->args[j].type, 0))
                return ph_error_set(PH_EABI,
                                    "package '%s': method %s.%s parameter #%u needs a "
                                    "name and a type (PH_BOOL, PH_I64, PH_F64, PH_STR, PH_JSON)",
                                    d->name, a->name, m->name, j + 1);
            for (uint32_t k = 0; k < j; k++)
                if (strcmp(m->args[j].name, m->args[k].name) == 0)
                    return ph_error_set(PH_EABI,
                                        "package '%s': method %s.%s declares parameter "
                                        "'%s' twice",
                                        d->name, a->name, m->name, m->args[j].name);
        }
        for (uint32_t k = 0; k < i; k++)
            if (strcmp(m->name, a->methods[k].name) == 0)
                return ph_error_set(PH_EABI, "package '%s': actor '%s' declares method '%s' twice",
                                    d->name, a->name, m->name);
    }
    return 0;
}

static int validate_model(const ph_package *d, const ph_model *mo)
{
    if (!valid_name(mo->name) || (!mo->fields && mo->n_fields))
        return ph_error_set(PH_EABI, "package '%s': a model needs a name and a field table",
                            d->name);
    for (uint32_t i = 0; i < mo->n_fields; i++) {
        const ph_field *f = &mo->fields[i];
        if (!valid_name(f->name) || f->type < PH_BOOL || f->type > PH_REF)
            return ph_error_set(PH_EABI,
                                "package '%s': model '%s' field #%u needs a name and a "
                                "field type",
                                d->name, mo->name, i + 1);
        if (f->type == PH_REF && (!f->ref || !*f->ref))
            return ph_error_set(PH_EABI,
                                "package '%s': model '%s' field '%s' is a reference but "
                                "names no model",
                                d->name, mo->name, f->name);
        if ((f->flags & PH_HAS_DEFAULT) && !f->def)
            return ph_error_set(PH_EABI, "package '%s': model '%s' field '%s' has a NULL default",
                                d->name, mo->name, f->name);
        for (uint32_t k = 0; k < i; k++)
            if (strcmp(f->name, mo->fields[k].name) == 0)
                return ph_error_set(PH_EABI, "package '%s': model '%s' declares field '%s' twice",
                                    d->name, mo->name, f->name);
    }
    return 0;
}

/*
 * A descriptor longer than this host's (built against a newer SDK of the
 * same ABI) loads only if every field this host does not know is zero:
 * otherwise the package relies on something this host would ignore.
 */
static int check_newer_sdk(const ph_package *d, const ph_manifest *m)
{
    if (d->size <= sizeof *d)
        return 0;
    if (d->size > PH_DESCRIPTOR_MAX)
        return ph_error_set(PH_EABI,
                            "package '%s': descriptor size %u is implausible (at most %d "
                            "bytes); the .so is damaged or not built with <plughost/sdk.h>",
                            m->name, d->size, PH_DESCRIPTOR_MAX);
    const unsigned char *extra = (const unsigned char *)d + sizeof *d;
    for (size_t i = 0; i < d->size - sizeof *d; i++)
        if (extra[i])
            return ph_error_set(PH_EABI,
                                "package '%s': built against a newer SDK (descriptor %u bytes, "
                                "this host knows %zu) and it uses what this host does not "
                                "know; upgrade the host or rebuild the package against this "
                                "host's SDK",
                                m->name, d->size, sizeof *d);
    return 0;
}

int ph_loader_validate(const ph_package *d, const ph_manifest *m)
{
    int rc;
    if (d->abi != PH_ABI_VERSION)
        return ph_error_set(PH_EABI,
                            "package '%s': the .so was built against SDK ABI %u but this "
                            "host supports ABI %d; rebuild it against this SDK",
                            m->name, d->abi, PH_ABI_VERSION);
    if (d->size < offsetof(ph_package, save))
        return ph_error_set(PH_EABI,
                            "package '%s': descriptor size %u is smaller than the ABI %d "
                            "minimum %zu; rebuild it against this SDK",
                            m->name, d->size, PH_ABI_VERSION, offsetof(ph_package, save));
    if ((rc = check_newer_sdk(d, m)))
        return rc;
    if (!d->name || strcmp(d->name, m->name) != 0)
        return ph_error_set(PH_EMANIFEST,
                            "package '%s': the .so says its name is '%s' but %s says "
                            "'%s'; rebuild the package (its name comes from package.ini)",
                            m->name, d->name ? d->name : "(none)", m->path, m->name);
    if (!d->version || strcmp(d->version, m->version_text) != 0)
        return ph_error_set(PH_EMANIFEST,
                            "package '%s': the .so is version %s but %s says version "
                            "%s; rebuild the package so both agree",
                            m->name, d->version ? d->version : "(none)", m->path, m->version_text);
    if ((d->n_actors && !d->actors) || (d->n_models && !d->models))
        return ph_error_set(PH_EABI,
                            "package '%s': descriptor counts actors/models it does not "
                            "provide",
                            m->name);
    for (uint32_t i = 0; i < d->n_actors; i++) {
        if ((rc = validate_actor(d, &d->actors[i], i + 1)))
            return rc;
        for (uint32_t k = 0; k < i; k++)
            if (strcmp(d->actors[i].name, d->actors[k].name) == 0)
                return ph_error_set(PH_EABI, "package '%s': actor '%s' declared twice", m->name,
                                    d->actors[i].name);
    }
    for (uint32_t i = 0; i < d->n_models; i++)
        if ((rc = validate_model(d, &d->models[i])))
            return rc;
    return 0;
}

/* ---- opening ---- */

int ph_module_open(const ph_manifest *m, const char *stage_dir, ph_module **out)
{
    int rc = 0;
    *out = NULL;
    ph_module *mod = calloc(1, sizeof *mod);
    if (!mod || !(mod->source = strdup(m->library)))
        goto nomem;
    mod->residue = -1;
    if (mkdir(stage_dir, 0700) != 0 && errno != EEXIST) {
        rc = ph_error_set(PH_EIO, "cannot create %s: %s", stage_dir, ph_strerror(errno));
        goto fail;
    }
    if (asprintf(&mod->copy, "%s/%s.%d.%u.so", stage_dir, m->name, (int)getpid(),
                 atomic_fetch_add(&copy_counter, 1)) < 0) {
        mod->copy = NULL;
        goto nomem;
    }
    if ((rc = copy_file(m->library, mod->copy, m->name)))
        goto fail;
    /* A half-written file, or one glibc could never unload, never reaches dlopen. */
    if ((rc = ph_elf_check(mod->copy, m->name, m->library, NULL)))
        goto fail;
    if ((rc = ph_file_hash(mod->copy, mod->hash)))
        goto fail;
    errno = 0;
    mod->handle = dlopen(mod->copy, RTLD_NOW | RTLD_LOCAL);
    if (!mod->handle) {
        /* glibc's words for a failed allocation ("cannot create shared object descriptor") */
        int nomem = errno == ENOMEM;
        rc = ph_error_set(nomem ? PH_ENOMEM : PH_ELOAD, "package '%s': cannot load %s: %s%s",
                          m->name, m->library, dlerror(), nomem ? " (out of memory)" : "");
        goto fail;
    }
    /* Its range, before any of its code runs: threads and keys it creates are counted. */
    if (ph_residue_track(mod, m->name, m->version_text))
        ph_log_warn("%s", ph_error_last());
    /* The mapping stays valid; the name is not needed any more. */
    unlink(mod->copy);
    dlerror();
    mod->desc = dlsym(mod->handle, PH_DESCRIPTOR_SYMBOL);
    if (!mod->desc) {
        rc = ph_error_set(PH_ELOAD,
                          "package '%s': %s exports no '%s'; declare the package with "
                          "PH_PACKAGE(...) from <plughost/sdk.h>",
                          m->name, m->library, PH_DESCRIPTOR_SYMBOL);
        goto fail;
    }
    if ((rc = ph_loader_validate(mod->desc, m)))
        goto fail;
    *out = mod;
    return 0;
nomem:
    rc = ph_error_set(PH_ENOMEM, "out of memory loading %s", m->name);
fail:
    ph_module_close(mod);
    return rc;
}

void ph_module_close(ph_module *mod)
{
    if (!mod)
        return;
    /* Never unmap code that may still run: such a build stays mapped (its handle is kept). */
    if (mod->handle && !ph_residue_before_unmap(mod)) {
        dlclose(mod->handle);
        ph_residue_after_unmap(mod);
    }
    if (mod->copy)
        unlink(mod->copy);
    free(mod->copy);
    free(mod->source);
    free(mod);
}
