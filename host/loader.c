#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "elfcheck.h"
#include "error.h"
#include "log.h"
#include "path.h"
#include "residue.h"
#include "scan.h"

/* ---- private copies ---- */

static atomic_uint copy_counter;

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

/* ---- staging: the private copy of a build ---- */

/*
 * A load's private copy is a directory, <stage_dir>/<name>.<pid>.<n>/,
 * mirroring the package directory: the .so at its place, and every library
 * it (or such a library) needs through a $ORIGIN-relative RUNPATH/RPATH at
 * its place, so the dynamic linker finds them as it would beside the
 * original. glibc reuses an already loaded object whose name matches a
 * DT_NEEDED entry (RTLD_LOCAL or not), so the old build's helper would
 * serve the new build after a hot reload: each staged helper gets a name of
 * the same length that is new in this process, written into the DT_NEEDED
 * (and version-need) strings of the staged copies.
 */

#define PH_STAGE_MAX_LIBS 32
#define PH_STAGE_MAX_NAMES 8 /* symbols named in one message */

static atomic_uint mangle_counter;

typedef struct stage_lib {
    char *needed; /* the DT_NEEDED name */
    char *staged; /* same length, new in this process */
    char *src;    /* the file in the package */
    char *rel;    /* its staged path, relative to the stage root */
    char *name;   /* its path in the package, relative to the mirrored directory */
} stage_lib;

typedef struct stage {
    const ph_manifest *m;
    char *base;   /* the directory mirrored: the package's, or the .so's when it lies elsewhere */
    char *so_rel; /* the .so relative to base */
    char *root;   /* this load's directory; NULL when only hashing */
    stage_lib libs[PH_STAGE_MAX_LIBS];
    size_t n_libs;
    char **made; /* files and directories created under root, in creation order */
    size_t n_made;
    uint64_t libs_hash;
    char so_hash[17];
    char *warning; /* exports besides the descriptor, for the log */
    char *clash;   /* exports the host's global scope has: the refusal */
    int clash_code;
} stage;

static uint64_t fnv_mix(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* "dir/name", or "name" in the root; NULL without memory. */
static char *path_in(const char *dir, const char *name)
{
    return ph_path_join(dir, name);
}

static void stage_free(stage *st)
{
    if (st->root) { /* the mapping stays valid; the names are not needed */
        for (size_t i = st->n_made; i-- > 0;) {
            char *path = path_in(st->root, st->made[i]);
            if (path)
                remove(path);
            free(path);
        }
        rmdir(st->root);
    }
    for (size_t i = 0; i < st->n_made; i++)
        free(st->made[i]);
    for (size_t i = 0; i < st->n_libs; i++) {
        free(st->libs[i].needed);
        free(st->libs[i].staged);
        free(st->libs[i].src);
        free(st->libs[i].rel);
        free(st->libs[i].name);
    }
    free(st->made);
    free(st->base);
    free(st->so_rel);
    free(st->root);
    free(st->warning);
    free(st->clash);
    memset(st, 0, sizeof *st);
}

static int nomem(void)
{
    return ph_error_set(PH_ENOMEM, "out of memory");
}

/*
 * `dir` joined with `sub` lexically ("." and ".." resolved), relative to the
 * stage root; *out "" for the root itself. 1 if it leaves the root.
 */
static int join_rel(const char *dir, const char *sub, char **out)
{
    char *all = NULL, *res = NULL;
    size_t used = 0;
    int rc = 0;
    *out = NULL;
    if (!(all = path_in(dir, sub)) || !(res = calloc(1, strlen(all) + 2))) {
        free(all);
        return nomem();
    }
    for (char *save = NULL, *c = strtok_r(all, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            if (!used) {
                rc = 1;
                break;
            }
            while (used && res[used - 1] != '/')
                used--;
            if (used)
                used--;
            res[used] = 0;
            continue;
        }
        used += (size_t)sprintf(res + used, "%s%s", used ? "/" : "", c);
    }
    free(all);
    if (rc)
        free(res);
    else
        *out = res;
    return rc;
}

/* The directory part of a relative path ("" for a name in the root). */
static char *rel_dir(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    return slash ? strndup(rel, (size_t)(slash - rel)) : strdup("");
}

/* A name as long as `name`, new in this process: its first characters become a counter. */
static char *mangle(const char *name)
{
    char *s = strdup(name);
    size_t len = strlen(name), k = len < 5 ? len : 5;
    unsigned n = atomic_fetch_add(&mangle_counter, 1);
    for (size_t i = k; s && i-- > 0; n /= 36)
        s[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[n % 36];
    return s;
}

/* "$ORIGIN/x" or "${ORIGIN}/x" -> "x" ("" for $ORIGIN alone); NULL if not $ORIGIN-relative. */
static const char *origin_rest(const char *entry)
{
    const char *rest = strncmp(entry, "$ORIGIN", 7) == 0     ? entry + 7
                       : strncmp(entry, "${ORIGIN}", 9) == 0 ? entry + 9
                                                             : NULL;
    if (!rest || (*rest && *rest != '/'))
        return NULL;
    return *rest ? rest + 1 : rest;
}

/*
 * Finds `needed` where the $ORIGIN search path of the object at `obj_rel`
 * (its path in the package, relative to the mirrored directory) points.
 * *idx: its index in st->libs, or -1 when the dynamic linker looks for it
 * elsewhere (the system's libraries).
 */
static int resolve_lib(stage *st, const char *obj_rel, const ph_elf_dyn *d, const char *needed,
                       int *idx)
{
    *idx = -1;
    if (strchr(needed, '/'))
        return 0;
    for (size_t i = 0; i < st->n_libs; i++)
        if (strcmp(st->libs[i].needed, needed) == 0)
            return *idx = (int)i, 0;
    char *dir = rel_dir(obj_rel);
    int rc = dir ? 0 : nomem();
    for (size_t i = 0; !rc && i < d->n_search && *idx < 0; i++) {
        const char *rest = origin_rest(d->search[i]);
        char *abs = NULL, *rel = NULL;
        struct stat sb;
        if (!rest)
            continue;
        if (asprintf(&abs, "%s%s%s/%s/%s", st->base, *dir ? "/" : "", dir, rest, needed) < 0) {
            rc = nomem();
            break;
        }
        if (stat(abs, &sb) == 0 && S_ISREG(sb.st_mode)) {
            int out = join_rel(dir, rest, &rel);
            if (out == 1)
                rc = ph_error_set(PH_ELOAD,
                                  "package '%s': %s needs %s from %s, outside the package "
                                  "directory %s; ship the library inside the package directory",
                                  st->m->name, obj_rel, needed, abs, st->base);
            else if (out == 0 && st->n_libs == PH_STAGE_MAX_LIBS)
                rc = ph_error_set(PH_ELOAD,
                                  "package '%s': more than %d libraries of its own to load; "
                                  "link them into fewer",
                                  st->m->name, PH_STAGE_MAX_LIBS);
            else if (out == 0) {
                stage_lib *l = &st->libs[st->n_libs];
                l->needed = strdup(needed);
                l->staged = mangle(needed);
                l->src = abs;
                abs = NULL;
                l->rel = l->staged ? path_in(rel, l->staged) : NULL;
                l->name = path_in(rel, needed);
                if (!l->needed || !l->rel || !l->name)
                    rc = nomem();
                *idx = (int)st->n_libs++;
            } else {
                rc = out;
            }
        }
        free(abs);
        free(rel);
    }
    free(dir);
    return rc;
}

/* True if [a, a+an) and [b, b+bn) overlap without being the same string. */
static int overlaps(size_t a, size_t an, size_t b, size_t bn)
{
    return !(a == b && an == bn) && a < b + bn && b < a + an;
}

/*
 * Writes `staged` over every copy of `needed` in the image's DT_NEEDED and
 * version-need strings. The static linker may store a string as the tail
 * of another: a string sharing bytes with one being renamed is refused.
 */
static int rename_needed(stage *st, unsigned char *p, const ph_elf_dyn *d, const char *obj,
                         const stage_lib *l)
{
    size_t n = strlen(l->needed);
    const ph_elf_str *lists[2] = {d->needed, d->verneed};
    size_t counts[2] = {d->n_needed, d->n_verneed};
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; i < counts[w]; i++) {
            if (strcmp(lists[w][i].text, l->needed) != 0)
                continue;
            size_t at = lists[w][i].off;
            for (int v = 0; v < 3; v++) {
                size_t cnt = v == 0 ? d->n_needed : v == 1 ? d->n_verneed : d->n_strings;
                for (size_t k = 0; k < cnt; k++) {
                    size_t o = v == 0   ? d->needed[k].off
                               : v == 1 ? d->verneed[k].off
                                        : d->strings[k];
                    size_t on = strlen((const char *)p + o);
                    if (strcmp((const char *)p + o, (const char *)p + at) != 0 &&
                        overlaps(at, n, o, on))
                        return ph_error_set(PH_ELOAD,
                                            "package '%s': %s stores the name %s inside another "
                                            "string, so its private copy cannot be made; link "
                                            "it without string merging",
                                            st->m->name, obj, l->needed);
                }
            }
        }
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; i < counts[w]; i++)
            if (strcmp(lists[w][i].text, l->needed) == 0)
                memcpy(p + lists[w][i].off, l->staged, n);
    return 0;
}

/* "a, b, c and 4 more" from up to PH_STAGE_MAX_NAMES names. */
static char *name_list(char **names, size_t n)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return NULL;
    for (size_t i = 0; i < n && i < PH_STAGE_MAX_NAMES; i++)
        fprintf(f, "%s%s", i ? ", " : "", names[i]);
    if (n > PH_STAGE_MAX_NAMES)
        fprintf(f, " and %zu more", n - PH_STAGE_MAX_NAMES);
    fclose(f);
    return out;
}

/*
 * Exported symbols: one the host's global scope already has (the plughost
 * executable, jansson, SQLite, libffi, libmicrohttpd, libc...) would bind
 * the package's own calls to the host's copy (the lookup scope of an
 * RTLD_LOCAL object starts with the global one): refused. Others are
 * allowed with a warning (the main .so only: a helper exports its API).
 */
static int check_exports(stage *st, const ph_elf_dyn *d, const char *obj, int is_main)
{
    char **clash = calloc(d->n_exports + 1, sizeof *clash),
         **extra = calloc(d->n_exports + 1, sizeof *extra);
    size_t n_clash = 0, n_extra = 0;
    int rc = 0;
    if (!clash || !extra) {
        rc = nomem();
        goto cleanup;
    }
    for (size_t i = 0; i < d->n_exports; i++) {
        const char *name = d->exports[i];
        if (is_main && strcmp(name, PH_DESCRIPTOR_SYMBOL) == 0)
            continue;
        if (dlsym(RTLD_DEFAULT, name))
            clash[n_clash++] = d->exports[i];
        else
            extra[n_extra++] = d->exports[i];
    }
    dlerror();
    if (n_clash) {
        char *names = name_list(clash, n_clash);
        rc = ph_error_set(PH_ELOAD,
                          "package '%s': %s exports %zu symbol%s the host already has (%s): the "
                          "package's own calls to %s would run the host's copy; build it with "
                          "-fvisibility=hidden (plughost_add_package does) or make %s static",
                          st->m->name, obj, n_clash, n_clash == 1 ? "" : "s", names ? names : "?",
                          n_clash == 1 ? "it" : "them", n_clash == 1 ? "it" : "them");
        free(names);
    } else if (is_main && n_extra) {
        char *names = name_list(extra, n_extra);
        free(st->warning);
        if (asprintf(&st->warning,
                     "package '%s': %s exports %zu symbol%s besides its descriptor (%s); build it "
                     "with -fvisibility=hidden (plughost_add_package does) or make %s static: a "
                     "name the host also has would be refused",
                     st->m->name, obj, n_extra, n_extra == 1 ? "" : "s", names ? names : "?",
                     n_extra == 1 ? "it" : "them") < 0)
            st->warning = NULL;
        free(names);
    }
cleanup:
    free(clash);
    free(extra);
    return rc;
}

/* Creates every directory of `rel` under the root, remembering them for removal. */
static int make_dirs(stage *st, const char *rel)
{
    char *dir = rel_dir(rel);
    int rc = dir ? 0 : nomem();
    for (char *s = dir; !rc && s && *s; s++) {
        if (*s != '/' && s[1] != 0)
            continue;
        char keep = s[1] == 0 ? 0 : '/', *path = NULL;
        if (keep)
            *s = 0;
        struct stat sb;
        if (!(path = path_in(st->root, dir)))
            rc = nomem();
        else if (stat(path, &sb) != 0) {
            char *copy = strdup(dir);
            char **made = realloc(st->made, (st->n_made + 1) * sizeof *made);
            if (made)
                st->made = made;
            if (!copy || !made || mkdir(path, 0700) != 0) {
                rc = copy && made
                         ? ph_error_set(PH_EIO, "cannot create %s: %s", path, ph_strerror(errno))
                         : nomem();
                free(copy);
            } else {
                st->made[st->n_made++] = copy;
            }
        }
        free(path);
        if (keep)
            *s = keep;
    }
    free(dir);
    return rc;
}

/* Writes the (renamed) image as root/rel: a fresh inode (O_EXCL), never an existing file. */
static int write_copy(stage *st, const char *rel, const unsigned char *p, size_t len)
{
    char *path = NULL, *name = NULL;
    int rc = make_dirs(st, rel), fd = -1;
    if (rc)
        return rc;
    char **made = realloc(st->made, (st->n_made + 1) * sizeof *made);
    if (made)
        st->made = made;
    if (!made || !(name = strdup(rel)) || !(path = path_in(st->root, rel))) {
        rc = nomem();
        goto cleanup;
    }
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700)) < 0) {
        rc = ph_error_set(PH_EIO, "cannot create %s: %s", path, ph_strerror(errno));
        goto cleanup;
    }
    st->made[st->n_made++] = name; /* removed by stage_free */
    name = NULL;
    for (size_t off = 0; off < len && !rc;) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            rc = ph_error_set(PH_EIO, "cannot write %s: %s", path, ph_strerror(errno));
        else
            off += (size_t)w;
    }
    if (close(fd) != 0 && !rc)
        rc = ph_error_set(PH_EIO, "cannot write %s: %s", path, ph_strerror(errno));
cleanup:
    free(name);
    free(path);
    return rc;
}

/* One object of the build: checked, its libraries found, renamed and written. */
static int stage_object(stage *st, const char *src, const char *rel, const char *name, int is_main)
{
    unsigned char *p = NULL;
    size_t len = 0;
    ph_elf_dyn d = {0};
    char hash[17];
    int rc = ph_elf_read(src, st->m->name, &p, &len);
    /* A half-written file, or one glibc could never unload, never reaches dlopen. */
    if (!rc)
        rc = ph_elf_check_image(p, len, is_main ? st->m->library : src);
    if (!rc)
        rc = ph_elf_dyn_read(p, len, src, &d);
    if (rc)
        goto cleanup;
    snprintf(hash, sizeof hash, "%016llx",
             (unsigned long long)fnv_mix(1469598103934665603ULL, p, len));
    if (is_main)
        memcpy(st->so_hash, hash, sizeof hash);
    else
        st->libs_hash = fnv_mix(fnv_mix(st->libs_hash, name, strlen(name) + 1), hash, sizeof hash);
    /* Refused after the scanner child's verdict, before the host's dlopen (see ph_module_open). */
    if (st->root && !st->clash &&
        (rc = check_exports(st, &d, is_main ? st->m->library : src, is_main)) && rc != PH_ENOMEM) {
        st->clash_code = rc;
        rc = (st->clash = strdup(ph_error_last())) ? 0 : nomem();
        if (!rc)
            ph_error_clear();
    }
    if (rc)
        goto cleanup;
    for (size_t i = 0; !rc && i < d.n_needed; i++) {
        int idx;
        if (!(rc = resolve_lib(st, name, &d, d.needed[i].text, &idx)) && idx >= 0 && st->root)
            rc = rename_needed(st, p, &d, is_main ? st->m->library : src, &st->libs[idx]);
    }
    if (!rc && st->root)
        rc = write_copy(st, rel, p, len);
cleanup:
    ph_elf_dyn_free(&d);
    free(p);
    return rc;
}

static int stage_build(stage *st, const ph_manifest *m, const char *root)
{
    size_t dl = strlen(m->dir);
    memset(st, 0, sizeof *st);
    st->m = m;
    st->libs_hash = 1469598103934665603ULL;
    int inside = strncmp(m->library, m->dir, dl) == 0 && m->library[dl] == '/';
    const char *slash = strrchr(m->library, '/');
    st->base = inside  ? strdup(m->dir)
               : slash ? strndup(m->library, (size_t)(slash - m->library))
                       : strdup(".");
    st->so_rel = strdup(inside ? m->library + dl + 1 : slash ? slash + 1 : m->library);
    if (!st->base || !st->so_rel)
        return nomem();
    if (root && mkdir(root, 0700) != 0)
        return ph_error_set(PH_EIO, "cannot create %s: %s", root, ph_strerror(errno));
    if (root && !(st->root = strdup(root))) {
        rmdir(root);
        return nomem();
    }
    /* Helper libraries (renamed) are named by their staged paths; their sources are read. */
    int rc = stage_object(st, m->library, st->so_rel, st->so_rel, 1);
    for (size_t i = 0; !rc && i < st->n_libs; i++)
        rc = stage_object(st, st->libs[i].src, st->libs[i].rel, st->libs[i].name, 0);
    return rc;
}

int ph_module_libs_hash(const ph_manifest *m, char out[17])
{
    stage st;
    int rc = stage_build(&st, m, NULL);
    out[0] = 0;
    if (!rc && st.n_libs)
        snprintf(out, 17, "%016llx", (unsigned long long)st.libs_hash);
    stage_free(&st);
    return rc;
}

/* ---- the scanner gate ---- */

static int in_scanner;

void ph_loader_in_scanner(void)
{
    in_scanner = 1;
}

int ph_loader_probe(const ph_manifest *m, const char *copy)
{
    void *handle = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
    if (!handle)
        return ph_error_set(PH_ELOAD, "package '%s': cannot load %s: %s", m->name, m->library,
                            dlerror());
    const ph_package *desc = dlsym(handle, PH_DESCRIPTOR_SYMBOL);
    if (!desc)
        return ph_error_set(PH_ELOAD,
                            "package '%s': %s exports no '%s'; declare the package with "
                            "PH_PACKAGE(...) from <plughost/sdk.h>",
                            m->name, m->library, PH_DESCRIPTOR_SYMBOL);
    return ph_loader_validate(desc, m); /* the caller is a child that exits */
}

/*
 * The verdict depends on the code (the .so and its libraries), the name and
 * version it is checked against and this host's rules: accepted builds are
 * marked under <stage_dir>.accepted/, so a restart does not fork once per
 * package.
 */
static char *verdict_path(const char *stage_dir, const ph_manifest *m, const stage *st)
{
    uint64_t h = 1469598103934665603ULL;
    const char *parts[] = {PH_HOST_VERSION, m->name, m->version_text, st->so_hash};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        h = fnv_mix(h, parts[i], strlen(parts[i]) + 1);
    h = fnv_mix(h, &st->libs_hash, sizeof st->libs_hash);
    h = fnv_mix(h, (const int[]){PH_ABI_VERSION, (int)sizeof(ph_package)}, 2 * sizeof(int));
    char *p = NULL;
    return asprintf(&p, "%s.accepted/%s-%016llx", stage_dir, st->so_hash, (unsigned long long)h) < 0
               ? NULL
               : p;
}

/*
 * Refusals are remembered by this process (not on disk: a restart asks
 * again): a build whose constructor hangs would otherwise cost the scan's
 * time bound at every change the watcher applies.
 */
#define PH_REFUSALS_KEPT 64
static pthread_mutex_t refusals_lock = PTHREAD_MUTEX_INITIALIZER;
static struct refusal {
    char *mark;
    char *message;
    int code;
} refusals[PH_REFUSALS_KEPT];
static unsigned refusals_next;

static int refused_before(const char *mark)
{
    int rc = 0;
    pthread_mutex_lock(&refusals_lock);
    for (size_t i = 0; i < PH_REFUSALS_KEPT && !rc; i++)
        if (refusals[i].mark && strcmp(refusals[i].mark, mark) == 0)
            rc = ph_error_set(refusals[i].code, "%s", refusals[i].message);
    pthread_mutex_unlock(&refusals_lock);
    return rc;
}

static void remember_refusal(const char *mark, int code)
{
    if (code == PH_ENOMEM || code == PH_EIO) /* the machine's state, not the build's */
        return;
    char *mk = strdup(mark), *msg = strdup(ph_error_last());
    if (!mk || !msg) {
        free(mk);
        free(msg);
        return;
    }
    pthread_mutex_lock(&refusals_lock);
    struct refusal *r = &refusals[refusals_next++ % PH_REFUSALS_KEPT];
    free(r->mark);
    free(r->message);
    *r = (struct refusal){mk, msg, code};
    pthread_mutex_unlock(&refusals_lock);
}

static int scan_gate(const char *stage_dir, const ph_manifest *m, const stage *st, const char *copy)
{
    char *mark = verdict_path(stage_dir, m, st), *dir = NULL;
    struct stat sb;
    int rc = 0;
    if (!mark)
        return nomem();
    if (stat(mark, &sb) == 0)
        goto cleanup; /* accepted before */
    if ((rc = refused_before(mark)))
        goto cleanup;
    if ((rc = ph_scan_descriptor(m, copy, st->so_hash, 0))) {
        remember_refusal(mark, rc);
        goto cleanup;
    }
    if (asprintf(&dir, "%s.accepted", stage_dir) < 0)
        dir = NULL;
    else if ((mkdir(dir, 0700) == 0 || errno == EEXIST)) {
        int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
    }
cleanup:
    free(mark);
    free(dir);
    return rc;
}

/* ---- the host's dlopen under a time limit ---- */

static atomic_int load_limit_ms = PH_LOAD_TIMEOUT_MS;

void ph_loader_set_load_timeout_ms(int ms)
{
    atomic_store(&load_limit_ms, ms > 0 ? ms : PH_LOAD_TIMEOUT_MS);
}

/*
 * A watch: a thread that, while the host does something that may hang
 * (start-up, a dlopen), takes SIGTERM and SIGINT (when the calling thread
 * blocks them, as the daemon's do) and, with a limit, ends the host past
 * it. The first stop request is logged and handed back to the process's
 * own signal loop once the work is done; a second one (200 ms later: one
 * request can arrive twice at once, see host.c) ends the host at once.
 * Watches nest (a dlopen during start-up): they share the request.
 */
struct ph_watch {
    atomic_int done; /* the work is over: the watch thread frees this and leaves */
    char what[160], until[160];
    int ms;    /* 0: no limit */
    int depth; /* only the innermost watch takes the signals (it says best what hangs) */
    void (*on_limit)(const struct ph_watch *);
    char pkg[64], version[32], build[17]; /* a dlopen's */
    sigset_t sigs;
};

static atomic_int stop_request;  /* the first SIGTERM/SIGINT a watch took, not yet handed back */
static atomic_llong stop_at_ms;  /* when it came */
static atomic_int watches_alive; /* watches not ended; the last to end hands it back */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *stop_signal_name(int sig)
{
    return sig == SIGINT ? "SIGINT" : "SIGTERM";
}

static void *watch_thread(void *p)
{
    ph_watch *w = p;
    long long started = mono_ms(), deadline = started + w->ms;
    while (!atomic_load(&w->done)) {
        long long left = w->ms ? deadline - mono_ms() : 50;
        if (left <= 0) {
            w->on_limit(w);
            _exit(PH_LOAD_HUNG_STATUS);
        }
        struct timespec slice = {0, (left < 50 ? left : 50) * 1000000L};
        int sig = sigisemptyset(&w->sigs) || w->depth != atomic_load(&watches_alive)
                      ? (nanosleep(&slice, NULL), 0)
                      : sigtimedwait(&w->sigs, NULL, &slice);
        if (sig <= 0)
            continue;
        if (atomic_load(&w->done)) { /* taken after the work ended: not this watch's */
            kill(getpid(), sig);
            break;
        }
        int expected = 0;
        if (atomic_compare_exchange_strong(&stop_request, &expected, sig)) {
            atomic_store(&stop_at_ms, mono_ms());
            ph_log_warn("%s received while %s: stopping once %s; a second %s exits at once",
                        stop_signal_name(sig), w->what, w->until, stop_signal_name(sig));
        } else if (mono_ms() - atomic_load(&stop_at_ms) >= 200) {
            ph_log_error("%s received again while %s (for %.1f s): exiting now, exit status 1",
                         stop_signal_name(sig), w->what, (mono_ms() - started) / 1000.0);
            _exit(1);
        }
    }
    free(w);
    return NULL;
}

static ph_watch *watch_new(int ms)
{
    ph_watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->ms = ms;
    sigset_t blocked;
    sigemptyset(&w->sigs);
    pthread_sigmask(SIG_BLOCK, NULL, &blocked);
    for (int sig = SIGINT; sig; sig = sig == SIGINT ? SIGTERM : 0)
        if (sigismember(&blocked, sig))
            sigaddset(&w->sigs, sig);
    return w;
}

static ph_watch *watch_run(ph_watch *w)
{
    pthread_t t;
    w->depth = atomic_fetch_add(&watches_alive, 1) + 1;
    if (pthread_create(&t, NULL, watch_thread, w) != 0) {
        atomic_fetch_sub(&watches_alive, 1);
        ph_log_warn("no thread to watch while %s: no time limit, and SIGTERM waits for it",
                    w->what);
        free(w);
        return NULL;
    }
    pthread_detach(t);
    return w;
}

ph_watch *ph_watch_start(const char *what, const char *until)
{
    ph_watch *w = watch_new(0);
    if (!w)
        return NULL;
    if (sigisemptyset(&w->sigs)) { /* nothing to take: no thread needed */
        free(w);
        return NULL;
    }
    snprintf(w->what, sizeof w->what, "%s", what);
    snprintf(w->until, sizeof w->until, "%s", until);
    return watch_run(w);
}

bool ph_watch_stop_requested(void)
{
    return atomic_load(&stop_request) != 0;
}

void ph_watch_end(ph_watch *w)
{
    if (!w)
        return;
    atomic_store(&w->done, 1);
    if (atomic_fetch_sub(&watches_alive, 1) == 1) {
        int sig = atomic_exchange(&stop_request, 0);
        if (sig) /* the stop request belongs to the process's own signal loop */
            kill(getpid(), sig);
    }
}

static void load_hung(const ph_watch *w)
{
    ph_crash_load_hung(w->pkg, w->version, w->build, w->ms, PH_LOAD_HUNG_STATUS);
}

/*
 * The watch of one dlopen: past [limits] load_timeout the host ends
 * (load_hung). Only where stop signals are blocked (the daemon, whose
 * signal loop would never see a stop while the loader's lock is held): a
 * foreground process (`call --local`, the tests) ends with Ctrl-C as ever,
 * and starts no thread per load.
 */
static ph_watch *watch_load(const ph_manifest *m, const char *build)
{
    ph_watch *w = watch_new(atomic_load(&load_limit_ms));
    if (w && sigisemptyset(&w->sigs)) {
        free(w);
        return NULL;
    }
    if (!w)
        return NULL;
    snprintf(w->pkg, sizeof w->pkg, "%s", m->name);
    snprintf(w->version, sizeof w->version, "%s", m->version_text);
    snprintf(w->build, sizeof w->build, "%s", build);
    snprintf(w->what, sizeof w->what, "package '%s' build %s is loading", m->name, build);
    snprintf(w->until, sizeof w->until,
             "its constructor returns (within [limits] load_timeout, %g s)", w->ms / 1000.0);
    w->on_limit = load_hung;
    return watch_run(w);
}

/* ---- opening ---- */

int ph_module_open(const ph_manifest *m, const char *stage_dir, ph_module **out)
{
    int rc = 0;
    stage st;
    char *root = NULL;
    memset(&st, 0, sizeof st);
    *out = NULL;
    ph_module *mod = calloc(1, sizeof *mod);
    if (!mod || !(mod->source = strdup(m->library)))
        goto nomem;
    mod->residue = -1;
    if (mkdir(stage_dir, 0700) != 0 && errno != EEXIST) {
        rc = ph_error_set(PH_EIO, "cannot create %s: %s", stage_dir, ph_strerror(errno));
        goto fail;
    }
    if (asprintf(&root, "%s/%s.%d.%u", stage_dir, m->name, (int)getpid(),
                 atomic_fetch_add(&copy_counter, 1)) < 0) {
        root = NULL;
        goto nomem;
    }
    if ((rc = stage_build(&st, m, root)))
        goto fail;
    memcpy(mod->hash, st.so_hash, sizeof mod->hash);
    if (!(mod->copy = ph_path_join(root, st.so_rel))) {
        goto nomem;
    }
    /* No code of a build runs in the host before a scanner child accepted its descriptor. */
    if (!in_scanner && (rc = scan_gate(stage_dir, m, &st, mod->copy)))
        goto fail;
    if (st.clash) {
        rc = ph_error_set(st.clash_code, "%s", st.clash);
        goto fail;
    }
    /* Its constructors run in the host now: a build they crashed before is not loaded again,
       and a crash or exit in them names the package and build. */
    if (!in_scanner && (rc = ph_crash_quarantined(m->name, st.so_hash)))
        goto fail;
    ph_residue_doing(m->name, m->version_text, st.so_hash,
                     PH_WHILE_LOADING "; a package must not have constructors that can fail");
    ph_watch *watch = in_scanner ? NULL : watch_load(m, st.so_hash);
    int loading = in_scanner ? -1 : ph_residue_loading(m->name, m->version_text, st.so_hash);
    errno = 0;
    mod->handle = dlopen(mod->copy, RTLD_NOW | RTLD_LOCAL);
    int saved = errno;
    ph_watch_end(watch);
    ph_residue_doing(NULL, NULL, NULL, NULL);
    errno = saved;
    if (!mod->handle)
        ph_residue_loading_failed(loading);
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
    if (st.warning && !in_scanner)
        ph_log_warn("%s", st.warning);
    stage_free(&st); /* the mapping stays valid; the names are not needed any more */
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
    free(root);
    *out = mod;
    return 0;
nomem:
    rc = ph_error_set(PH_ENOMEM, "out of memory loading %s", m->name);
fail:
    stage_free(&st);
    free(root);
    ph_module_close(mod);
    return rc;
}

void ph_module_close(ph_module *mod)
{
    if (!mod)
        return;
    /* Never unmap code that may still run: such a build stays mapped (its handle is kept). */
    if (mod->handle && !ph_residue_before_unmap(mod)) {
        ph_residue_doing_module(mod, "in its destructor, while the host unloaded it (dlclose)");
        dlclose(mod->handle);
        ph_residue_doing(NULL, NULL, NULL, NULL);
        ph_residue_after_unmap(mod);
    }
    if (mod->copy)
        unlink(mod->copy);
    free(mod->copy);
    free(mod->source);
    free(mod);
}
