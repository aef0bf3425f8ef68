/*
 * Distribution archives (dist.h): libarchive reads and writes the tar,
 * libsodium hashes (SHA-256) and signs (Ed25519). Installing reads the
 * archive twice: once to check everything without writing, once to write
 * into a staging directory, hashing again, so an archive changed between
 * the two reads is refused too.
 */
#include "dist.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfcheck.h"
#include "error.h"
#include "manifest.h"

#define FILES_MEMBER ".plughost/files"
#define SIG_MEMBER ".plughost/signature"
#define LIST_MAX (4u << 20)                  /* bytes of the signed file list */
#define FILES_MAX 100000u                    /* files in one archive */
#define TOTAL_MAX ((uint64_t)2 << 30)        /* bytes unpacked from one archive */
#define KEPT_MAX ((size_t)PH_ELF_MAX_SIZE)   /* bytes of libraries held for the ELF check */
#define PATH_MAX_LEN 1024u                   /* bytes of one member path */
#define SECRET_TAG "plughost-ed25519-secret" /* first word of a secret key file */
#define B64 sodium_base64_VARIANT_ORIGINAL

typedef struct member {
    char *path;
    char sha[crypto_hash_sha256_BYTES * 2 + 1];
    uint64_t size;
    unsigned mode; /* 0644 or 0755 */
    bool seen;
} member;

typedef struct listing {
    char *name, *version;
    member *m;
    size_t n;
} listing;

static void listing_free(listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->m[i].path);
    free(l->m);
    free(l->name);
    free(l->version);
    memset(l, 0, sizeof *l);
}

static int init_sodium(void)
{
    if (sodium_init() < 0)
        return ph_error_set(PH_EINTERNAL, "libsodium could not be initialised");
    return 0;
}

static bool key_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
            !(s[i] >= '0' && s[i] <= '9') && !strchr("._-", s[i]))
            return false;
    return true;
}

static void hex_of(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- keys ---- */

/*
 * The directory `keygen --output` or `pack --output` writes into must exist:
 * it is not made (as ssh-keygen -f does not), so a typo does not scatter
 * keys. PH_ENOTFOUND or PH_EINVAL saying what to do.
 */
static int check_out_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0 && errno == ENOENT)
        return ph_error_set(PH_ENOTFOUND,
                            "the output directory %s does not exist; create it first "
                            "(mkdir -p %s) or give another --output",
                            dir, dir);
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return ph_error_set(PH_EINVAL, "the output %s is not a directory; give a directory", dir);
    return 0;
}

static int write_new_file(const char *path, mode_t mode, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return ph_error_set(PH_EIO, "cannot create %s: %s%s", path, ph_strerror(errno),
                            errno == EEXIST ? " (keys are never overwritten; choose another name "
                                              "or move the old one away)"
                                            : "");
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int e = errno;
    if (close(fd) || w != (ssize_t)n) {
        unlink(path);
        return ph_error_set(PH_EIO, "cannot write %s: %s", path, ph_strerror(w < 0 ? e : EIO));
    }
    return 0;
}

int ph_dist_keygen(const char *name, const char *dir, char **pub_line)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    char pk64[sodium_base64_ENCODED_LEN(sizeof pk, B64)];
    char sk64[sodium_base64_ENCODED_LEN(sizeof sk, B64)];
    char *sec_path = NULL, *pub_path = NULL, *sec_text = NULL, *line = NULL;
    int rc = PH_ENOMEM;
    *pub_line = NULL;
    if (!key_name_ok(name))
        return ph_error_set(PH_EINVAL,
                            "key name '%s' must be 1 to 64 letters, digits, '.', '_' or '-'", name);
    if ((rc = init_sodium()) || (rc = check_out_dir(dir)))
        return rc;
    crypto_sign_keypair(pk, sk);
    sodium_bin2base64(pk64, sizeof pk64, pk, sizeof pk, B64);
    sodium_bin2base64(sk64, sizeof sk64, sk, sizeof sk, B64);
    sodium_memzero(sk, sizeof sk);
    rc = PH_ENOMEM;
    if (asprintf(&sec_path, "%s/%s.secret", dir, name) < 0 ||
        asprintf(&pub_path, "%s/%s.pub", dir, name) < 0 ||
        asprintf(&sec_text, "%s %s %s\n", SECRET_TAG, name, sk64) < 0 ||
        asprintf(&line, "%s = ed25519:%s", name, pk64) < 0) {
        sec_path = pub_path = sec_text = line = NULL;
        ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = write_new_file(sec_path, 0600, sec_text)))
        goto cleanup;
    char *pub_text = NULL;
    if (asprintf(&pub_text, "%s\n", line) < 0) {
        unlink(sec_path);
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = write_new_file(pub_path, 0644, pub_text);
    free(pub_text);
    if (rc) {
        unlink(sec_path);
        goto cleanup;
    }
    *pub_line = line;
    line = NULL;
cleanup:
    sodium_memzero(sk64, sizeof sk64);
    if (sec_text)
        sodium_memzero(sec_text, strlen(sec_text));
    free(sec_path);
    free(pub_path);
    free(sec_text);
    free(line);
    return rc;
}

/* What the group and others may do with a secret key file ("read and changed"). */
static const char *key_access(mode_t m)
{
    static const char *const what[] = {"used", "used", "changed",          "changed",
                                       "read", "read", "read and changed", "read and changed"};
    return what[((m >> 3) | m) & 7];
}

/* Who besides its owner may: its group, everyone else, or both. */
static const char *key_accessors(mode_t m)
{
    return (m & 070) && (m & 07) ? "its group and others" : (m & 070) ? "its group" : "others";
}

/* Reads the secret key file: its name and the 64-byte libsodium secret key. */
static int read_secret(const char *path, char name[65],
                       unsigned char sk[crypto_sign_SECRETKEYBYTES])
{
    char buf[512], tag[32], b64[256];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ph_error_set(PH_EIO, "cannot open the key %s: %s", path, ph_strerror(errno));
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return ph_error_set(PH_EIO, "the key %s is not a regular file", path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return ph_error_set(PH_EPERM,
                            "the secret key %s can be %s by %s (mode %04o); run chmod 600 %s (a "
                            "secret key must be yours alone, as ssh requires)",
                            path, key_access(st.st_mode), key_accessors(st.st_mode),
                            (unsigned)(st.st_mode & 07777), path);
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return ph_error_set(PH_EIO, "cannot read the key %s", path);
    buf[n] = '\0';
    size_t bin_len = 0;
    int ok = sscanf(buf, "%31s %64s %255s", tag, name, b64) == 3 && !strcmp(tag, SECRET_TAG) &&
             sodium_base642bin(sk, crypto_sign_SECRETKEYBYTES, b64, strlen(b64), NULL, &bin_len,
                               NULL, B64) == 0 &&
             bin_len == crypto_sign_SECRETKEYBYTES;
    sodium_memzero(buf, sizeof buf);
    sodium_memzero(b64, sizeof b64);
    if (!ok)
        return ph_error_set(PH_EINVAL,
                            "%s is not a plughost secret key (make one with plughost keygen NAME)",
                            path);
    return 0;
}

/* ---- pack ---- */

typedef struct collect {
    member *m;
    size_t n, cap;
    uint64_t total;
} collect;

static void collect_free(collect *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->m[i].path);
    free(c->m);
}

static int sha256_file(const char *path, char out[65], uint64_t *size)
{
    crypto_hash_sha256_state st;
    unsigned char buf[65536], d[crypto_hash_sha256_BYTES];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return ph_error_set(PH_EIO, "cannot read %s: %s", path, ph_strerror(errno));
    crypto_hash_sha256_init(&st);
    uint64_t total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
        total += (uint64_t)n;
    }
    int e = errno;
    close(fd);
    if (n < 0)
        return ph_error_set(PH_EIO, "cannot read %s: %s", path, ph_strerror(e));
    crypto_hash_sha256_final(&st, d);
    hex_of(d, sizeof d, out);
    *size = total;
    return 0;
}

static bool path_text_ok(const char *rel)
{
    for (const unsigned char *p = (const unsigned char *)rel; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static int add_file(collect *c, const char *root, const char *rel)
{
    char *full = NULL;
    struct stat st;
    if (asprintf(&full, "%s/%s", root, rel) < 0)
        return ph_error_set(PH_ENOMEM, "out of memory");
    int rc = 0;
    if (lstat(full, &st)) {
        rc = ph_error_set(PH_EIO, "cannot read %s: %s", full, ph_strerror(errno));
    } else if (S_ISLNK(st.st_mode)) {
        rc = ph_error_set(PH_EINVAL,
                          "%s is a symbolic link; an archive holds regular files only "
                          "(copy the file in its place)",
                          full);
    } else if (!S_ISREG(st.st_mode)) {
        rc = ph_error_set(PH_EINVAL,
                          "%s is not a regular file; an archive holds regular files "
                          "only",
                          full);
    } else if (!path_text_ok(rel)) {
        rc = ph_error_set(PH_EINVAL,
                          "%s: its name holds a control character, which an archive member's "
                          "name may not; rename the file",
                          full);
    } else if (strlen(rel) > PATH_MAX_LEN) {
        rc = ph_error_set(PH_EINVAL,
                          "%s: its path in the package is %zu bytes, longer than the %u bytes "
                          "an archive member's name may be; shorten it",
                          full, strlen(rel), PATH_MAX_LEN);
    } else if (c->n >= FILES_MAX) {
        rc = ph_error_set(PH_ETOOBIG, "%s holds more than %u files", root, FILES_MAX);
    }
    if (rc)
        goto cleanup;
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->m[i].path, rel))
            goto cleanup; /* the library may also lie in lib/ */
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        member *m = realloc(c->m, cap * sizeof *m);
        if (!m) {
            rc = ph_error_set(PH_ENOMEM, "out of memory");
            goto cleanup;
        }
        c->m = m;
        c->cap = cap;
    }
    member *m = &c->m[c->n];
    memset(m, 0, sizeof *m);
    if ((rc = sha256_file(full, m->sha, &m->size)))
        goto cleanup;
    if (!(m->path = strdup(rel))) {
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    m->mode = (st.st_mode & 0111) ? 0755 : 0644;
    c->total += m->size;
    c->n++;
    if (c->total > TOTAL_MAX)
        rc = ph_error_set(PH_ETOOBIG, "%s holds more than %llu bytes", root,
                          (unsigned long long)TOTAL_MAX);
cleanup:
    free(full);
    return rc;
}

/* Adds every regular file under root/rel (a directory that may be missing). */
static int add_tree(collect *c, const char *root, const char *rel, int depth)
{
    char *full = NULL;
    if (asprintf(&full, "%s/%s", root, rel) < 0)
        return ph_error_set(PH_ENOMEM, "out of memory");
    DIR *d = opendir(full);
    int rc = 0;
    if (!d) {
        if (errno != ENOENT)
            rc = ph_error_set(PH_EIO, "cannot read %s: %s", full, ph_strerror(errno));
        free(full);
        return rc;
    }
    if (depth > 32)
        rc = ph_error_set(PH_EINVAL, "%s is nested more than 32 directories deep", full);
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        char *sub = NULL;
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (asprintf(&sub, "%s/%s", rel, e->d_name) < 0) {
            rc = ph_error_set(PH_ENOMEM, "out of memory");
            break;
        }
        char *sub_full = NULL;
        if (asprintf(&sub_full, "%s/%s", root, sub) < 0)
            rc = ph_error_set(PH_ENOMEM, "out of memory");
        else if (!lstat(sub_full, &st) && S_ISDIR(st.st_mode))
            rc = add_tree(c, root, sub, depth + 1);
        else
            rc = add_file(c, root, sub);
        free(sub_full);
        free(sub);
    }
    closedir(d);
    free(full);
    return rc;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const member *)a)->path, ((const member *)b)->path);
}

/* The signed list's text for `c` (sorted). Caller frees. */
static char *list_text(const char *name, const char *version, const collect *c)
{
    size_t cap = 64 + strlen(name) + strlen(version), len = 0;
    for (size_t i = 0; i < c->n; i++)
        cap += strlen(c->m[i].path) + 100;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    len +=
        (size_t)snprintf(s + len, cap - len, "plughost-archive 1\npackage %s %s\n", name, version);
    for (size_t i = 0; i < c->n; i++)
        len += (size_t)snprintf(s + len, cap - len, "file %s %llu %o %s\n", c->m[i].sha,
                                (unsigned long long)c->m[i].size, c->m[i].mode, c->m[i].path);
    return s;
}

static int write_entry(struct archive *a, const char *path, const void *data, size_t size,
                       unsigned mode)
{
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return ph_error_set(PH_ENOMEM, "out of memory");
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, mode);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_uname(e, "root");
    archive_entry_set_gname(e, "root");
    int rc = 0;
    if (archive_write_header(a, e) != ARCHIVE_OK ||
        (size && archive_write_data(a, data, size) != (la_ssize_t)size))
        rc = ph_error_set(PH_EIO, "cannot write the archive: %s", archive_error_string(a));
    archive_entry_free(e);
    return rc;
}

/* Streams root/m->path into the archive, refusing a file that changed since it was hashed. */
static int write_file(struct archive *a, const char *root, const member *m)
{
    char *full = NULL;
    unsigned char buf[65536], d[crypto_hash_sha256_BYTES];
    char hex[65];
    crypto_hash_sha256_state st;
    if (asprintf(&full, "%s/%s", root, m->path) < 0)
        return ph_error_set(PH_ENOMEM, "out of memory");
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc = 0;
    struct archive_entry *e = archive_entry_new();
    if (fd < 0 || !e) {
        rc = e ? ph_error_set(PH_EIO, "cannot read %s: %s", full, ph_strerror(errno))
               : ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    archive_entry_set_pathname(e, m->path);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, m->mode);
    archive_entry_set_size(e, (la_int64_t)m->size);
    archive_entry_set_uname(e, "root");
    archive_entry_set_gname(e, "root");
    if (archive_write_header(a, e) != ARCHIVE_OK) {
        rc = ph_error_set(PH_EIO, "cannot write the archive: %s", archive_error_string(a));
        goto cleanup;
    }
    crypto_hash_sha256_init(&st);
    uint64_t left = m->size;
    while (left) {
        ssize_t n = read(fd, buf, left < sizeof buf ? (size_t)left : sizeof buf);
        if (n <= 0)
            break;
        crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
        if (archive_write_data(a, buf, (size_t)n) != n) {
            rc = ph_error_set(PH_EIO, "cannot write the archive: %s", archive_error_string(a));
            goto cleanup;
        }
        left -= (uint64_t)n;
    }
    crypto_hash_sha256_final(&st, d);
    hex_of(d, sizeof d, hex);
    if (left || read(fd, buf, 1) != 0 || strcmp(hex, m->sha))
        rc = ph_error_set(PH_EIO, "%s changed while it was being packed; pack again", full);
cleanup:
    if (fd >= 0)
        close(fd);
    archive_entry_free(e);
    free(full);
    return rc;
}

/* The library's path relative to the package directory; refused when outside it. */
static int library_rel(const ph_manifest *m, char **out)
{
    char *lib = realpath(m->library, NULL);
    *out = NULL;
    if (!lib)
        return ph_error_set(PH_EIO,
                            "package '%s': its library %s cannot be read: %s; build the package "
                            "first",
                            m->name, m->library, ph_strerror(errno));
    size_t n = strlen(m->dir);
    int rc = 0;
    if (strncmp(lib, m->dir, n) || lib[n] != '/')
        rc = ph_error_set(PH_EINVAL,
                          "package '%s': its library %s lies outside the package directory %s; "
                          "an archive holds the package directory only (install the package "
                          "with cmake --install, then pack the installed directory)",
                          m->name, lib, m->dir);
    else if (!(*out = strdup(lib + n + 1)))
        rc = ph_error_set(PH_ENOMEM, "out of memory");
    free(lib);
    return rc;
}

static int collect_package(const ph_manifest *m, collect *c)
{
    static const char *const trees[] = {"sql", "www", "wiki", "lib"};
    char *lib = NULL;
    int rc = add_file(c, m->dir, "package.ini");
    if (!rc)
        rc = library_rel(m, &lib);
    if (!rc)
        rc = add_file(c, m->dir, lib);
    for (size_t i = 0; !rc && i < sizeof trees / sizeof trees[0]; i++)
        rc = add_tree(c, m->dir, trees[i], 0);
    free(lib);
    if (!rc)
        qsort(c->m, c->n, sizeof *c->m, by_path);
    return rc;
}

static int sign_list(const char *key_path, const char *list, char **sig_text)
{
    unsigned char sk[crypto_sign_SECRETKEYBYTES], sig[crypto_sign_BYTES];
    char name[65], sig64[sodium_base64_ENCODED_LEN(sizeof sig, B64)];
    int rc = read_secret(key_path, name, sk);
    if (rc)
        return rc;
    crypto_sign_detached(sig, NULL, (const unsigned char *)list, strlen(list), sk);
    sodium_memzero(sk, sizeof sk);
    sodium_bin2base64(sig64, sizeof sig64, sig, sizeof sig, B64);
    if (asprintf(sig_text, "ed25519 %s %s\n", name, sig64) < 0) {
        *sig_text = NULL;
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    return 0;
}

static int write_archive(const char *tmp, const char *root, const collect *c, const char *list,
                         const char *sig)
{
    struct archive *a = archive_write_new();
    int rc = 0;
    if (!a)
        return ph_error_set(PH_ENOMEM, "out of memory");
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
        archive_write_open_filename(a, tmp) != ARCHIVE_OK) {
        rc = ph_error_set(PH_EIO, "cannot write %s: %s", tmp, archive_error_string(a));
        goto cleanup;
    }
    rc = write_entry(a, FILES_MEMBER, list, strlen(list), 0644);
    if (!rc && sig)
        rc = write_entry(a, SIG_MEMBER, sig, strlen(sig), 0644);
    for (size_t i = 0; !rc && i < c->n; i++)
        rc = write_file(a, root, &c->m[i]);
    if (!rc && archive_write_close(a) != ARCHIVE_OK)
        rc = ph_error_set(PH_EIO, "cannot write %s: %s", tmp, archive_error_string(a));
cleanup:
    archive_write_free(a);
    return rc;
}

int ph_dist_pack(const char *pkg_dir, const char *out_dir, const char *secret_key, char **out_path)
{
    ph_manifest *m = NULL;
    collect c = {0};
    char *ini = NULL, *list = NULL, *sig = NULL, *path = NULL, *tmp = NULL;
    int rc;
    *out_path = NULL;
    if ((rc = init_sodium()) || (rc = check_out_dir(out_dir)))
        return rc;
    if (asprintf(&ini, "%s/package.ini", pkg_dir) < 0) {
        ini = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = ph_manifest_load(ini, &m)) || (rc = collect_package(m, &c)))
        goto cleanup;
    if (!(list = list_text(m->name, m->version_text, &c))) {
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (strlen(list) > LIST_MAX) { /* install reads no longer list */
        rc = ph_error_set(PH_ETOOBIG,
                          "%s: its file list (%zu files, %zu bytes) is larger than the %u bytes "
                          "an archive may hold, so no host would install it; ship fewer files "
                          "or shorter names (an archive of them, say)",
                          pkg_dir, c.n, strlen(list), LIST_MAX);
        goto cleanup;
    }
    if (secret_key && (rc = sign_list(secret_key, list, &sig)))
        goto cleanup;
    if (asprintf(&path, "%s/%s-%s%s", out_dir, m->name, m->version_text, PH_DIST_SUFFIX) < 0 ||
        asprintf(&tmp, "%s.part", path) < 0) {
        path = tmp = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = write_archive(tmp, m->dir, &c, list, sig)))
        goto cleanup;
    if (rename(tmp, path)) {
        rc = ph_error_set(PH_EIO, "cannot write %s: %s", path, ph_strerror(errno));
        goto cleanup;
    }
    *out_path = path;
    path = NULL;
cleanup:
    if (tmp)
        unlink(tmp);
    ph_manifest_free(m);
    collect_free(&c);
    free(ini);
    free(list);
    free(sig);
    free(path);
    free(tmp);
    return rc;
}

/* ---- install: check ---- */

bool ph_dist_is(const char *path)
{
    size_t n = strlen(path), k = strlen(PH_DIST_SUFFIX);
    return n > k && !strcmp(path + n - k, PH_DIST_SUFFIX);
}

/* A member path the archive may hold: relative, no '.', '..' or empty segment. */
static bool member_path_ok(const char *p)
{
    if (!*p || *p == '/' || !path_text_ok(p) || strlen(p) > PATH_MAX_LEN)
        return false;
    const char *s = p;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        if (!e)
            break;
        s = e + 1;
        if (!*s)
            return false; /* trailing '/' */
    }
    return strncmp(p, ".plughost/", 10) != 0;
}

/* Parses the signed list into *l. */
static int parse_list(const char *shown, char *text, listing *l)
{
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    size_t cap = 0;
    if (!line || strcmp(line, "plughost-archive 1"))
        return ph_error_set(PH_EPERM,
                            "%s: not a plughost archive of a version this host reads "
                            "(its file list does not begin 'plughost-archive 1')",
                            shown);
    line = strtok_r(NULL, "\n", &save);
    char name[256], version[256];
    if (!line || sscanf(line, "package %255s %255s", name, version) != 2)
        return ph_error_set(PH_EPERM, "%s: the file list names no package", shown);
    if (!(l->name = strdup(name)) || !(l->version = strdup(version)))
        return ph_error_set(PH_ENOMEM, "out of memory");
    while ((line = strtok_r(NULL, "\n", &save))) {
        char sha[65];
        unsigned long long size;
        unsigned mode;
        int off = 0;
        if (sscanf(line, "file %64s %llu %o %n", sha, &size, &mode, &off) != 3 || off == 0 ||
            strlen(sha) != 64 || (mode != 0644 && mode != 0755))
            return ph_error_set(PH_EPERM, "%s: the file list has a malformed line: %.80s", shown,
                                line);
        const char *p = line + off;
        if (strlen(p) > PATH_MAX_LEN)
            return ph_error_set(PH_EPERM,
                                "%s: refused: the path '%.80s...' is %zu bytes, longer than the "
                                "%u bytes an archive member's name may be",
                                shown, p, strlen(p), PATH_MAX_LEN);
        if (!member_path_ok(p))
            return ph_error_set(PH_EPERM,
                                "%s: refused: the path '%.200s' could write outside the package "
                                "(absolute, '..', '.', an empty segment or control characters)",
                                shown, p);
        if (l->n >= FILES_MAX)
            return ph_error_set(PH_ETOOBIG, "%s lists more than %u files", shown, FILES_MAX);
        for (size_t i = 0; i < l->n; i++)
            if (!strcmp(l->m[i].path, p))
                return ph_error_set(PH_EPERM, "%s: the file list names '%s' twice", shown, p);
        if (l->n == cap) {
            cap = cap ? cap * 2 : 16;
            member *m = realloc(l->m, cap * sizeof *m);
            if (!m)
                return ph_error_set(PH_ENOMEM, "out of memory");
            l->m = m;
        }
        member *m = &l->m[l->n];
        memset(m, 0, sizeof *m);
        memcpy(m->sha, sha, 65);
        m->size = size;
        m->mode = mode;
        if (!(m->path = strdup(p)))
            return ph_error_set(PH_ENOMEM, "out of memory");
        l->n++;
    }
    return 0;
}

/* Checks the signature text over `list` against cfg's [trust]. */
static int check_signature(const ph_config *cfg, const char *shown, const char *list,
                           const char *sig)
{
    if (!sig) {
        if (cfg->trust.allow_unsigned)
            return 0;
        return ph_error_set(PH_EPERM,
                            "%s is not signed; refused (sign it with plughost pack --sign KEY, "
                            "or set allow_unsigned = yes in [trust] of host.ini to accept "
                            "unsigned archives)",
                            shown);
    }
    char algo[16], name[65], b64[128];
    unsigned char raw[crypto_sign_BYTES], pk[crypto_sign_PUBLICKEYBYTES];
    size_t len = 0;
    if (sscanf(sig, "%15s %64s %127s", algo, name, b64) != 3 || strcmp(algo, "ed25519") ||
        sodium_base642bin(raw, sizeof raw, b64, strlen(b64), NULL, &len, NULL, B64) ||
        len != sizeof raw)
        return ph_error_set(PH_EPERM, "%s: its signature is malformed; refused", shown);
    const char *key = NULL;
    for (size_t i = 0; i < cfg->trust.n_keys; i++)
        if (!strcmp(cfg->trust.keys[i].key, name))
            key = cfg->trust.keys[i].value;
    if (!key)
        return ph_error_set(PH_EPERM,
                            "%s is signed by key '%s', which host.ini does not trust; refused "
                            "(if you trust its author, add their public key line `%s = "
                            "ed25519:...` to [trust])",
                            shown, name, name);
    if (sodium_base642bin(pk, sizeof pk, key + 8, strlen(key + 8), NULL, &len, NULL, B64) ||
        len != sizeof pk)
        return ph_error_set(PH_ECONFIG, "[trust] key '%s' is not an ed25519 public key", name);
    if (crypto_sign_verify_detached(raw, (const unsigned char *)list, strlen(list), pk))
        return ph_error_set(PH_EPERM,
                            "%s: the signature by '%s' does not verify: the archive was changed "
                            "after it was signed, or signed with another key of that name; "
                            "refused",
                            shown, name);
    return 0;
}

static const char *type_name(mode_t t)
{
    switch (t) {
    case AE_IFLNK:
        return "a symbolic link";
    case AE_IFCHR:
        return "a character device";
    case AE_IFBLK:
        return "a block device";
    case AE_IFIFO:
        return "a FIFO";
    case AE_IFSOCK:
        return "a socket";
    default:
        return "not a regular file";
    }
}

static member *find_member(listing *l, const char *p)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->m[i].path, p))
            return &l->m[i];
    return NULL;
}

static bool is_library(const char *p)
{
    size_t n = strlen(p);
    return (n > 3 && !strcmp(p + n - 3, ".so")) || strstr(p, ".so.");
}

typedef struct reader {
    const char *shown;
    listing *l;
    int out_dir;    /* -1: check only; else the staging directory to write into */
    uint64_t total; /* bytes of files so far */
    size_t kept;    /* bytes of libraries held for the ELF check */
} reader;

static int open_archive(const char *path, struct archive **out)
{
    struct archive *a = archive_read_new();
    *out = NULL;
    if (!a)
        return ph_error_set(PH_ENOMEM, "out of memory");
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        int e = fd < 0 ? errno : 0;
        if (fd >= 0)
            close(fd);
        archive_read_free(a);
        return ph_error_set(PH_EIO, "cannot read %s: %s", path,
                            e ? ph_strerror(e) : "not a regular file");
    }
    if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
        int rc = ph_error_set(PH_EPERM, "%s is not a plughost archive: %s", path,
                              archive_error_string(a));
        archive_read_free(a);
        close(fd);
        return rc;
    }
    /* libarchive does not close a descriptor it was given: the caller does */
    *out = a;
    return fd;
}

/* Reads one small member wholly (at most max bytes) into a NUL-terminated buffer. */
static int read_small(struct archive *a, struct archive_entry *e, const char *shown,
                      const char *what, size_t max, char **out)
{
    la_int64_t size = archive_entry_size(e);
    *out = NULL;
    if (archive_entry_filetype(e) != AE_IFREG || size < 0)
        return ph_error_set(PH_EPERM, "%s: its %s is not a regular file", shown, what);
    if ((uint64_t)size > max)
        return ph_error_set(PH_EPERM,
                            "%s: its %s is too large: %lld bytes, more than the %zu "
                            "bytes an archive may hold",
                            shown, what, (long long)size, max);
    char *buf = malloc((size_t)size + 1);
    if (!buf)
        return ph_error_set(PH_ENOMEM, "out of memory");
    la_ssize_t n = archive_read_data(a, buf, (size_t)size);
    if (n != size) {
        free(buf);
        return ph_error_set(PH_EPERM, "%s: its %s is truncated", shown, what);
    }
    buf[size] = '\0';
    if (memchr(buf, '\0', (size_t)size)) {
        free(buf);
        return ph_error_set(PH_EPERM, "%s: its %s holds a NUL byte", shown, what);
    }
    *out = buf;
    return 0;
}

static int make_parents(int dir, const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return ph_error_set(PH_ENOMEM, "out of memory");
    int rc = 0;
    for (char *s = strchr(copy, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdirat(dir, copy, 0755) && errno != EEXIST)
            rc = ph_error_set(PH_EIO, "cannot create %s: %s", copy, ph_strerror(errno));
        *s = '/';
        if (rc)
            break;
    }
    free(copy);
    return rc;
}

/* Reads one listed file's data: hashes it, checks its size and hash, keeps a library's
 * bytes for the ELF check (*kept) and, when writing, writes it into the staging directory. */
static int read_member(struct archive *a, reader *r, member *m, unsigned char **kept)
{
    unsigned char buf[65536], d[crypto_hash_sha256_BYTES];
    char hex[65];
    crypto_hash_sha256_state st;
    uint64_t got = 0;
    int fd = -1, rc = 0;
    bool keep = kept && is_library(m->path) && m->size <= KEPT_MAX - r->kept;
    if (keep && !(*kept = malloc(m->size ? (size_t)m->size : 1)))
        return ph_error_set(PH_ENOMEM, "out of memory");
    if (r->out_dir >= 0) {
        if ((rc = make_parents(r->out_dir, m->path)))
            return rc;
        fd = openat(r->out_dir, m->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                    m->mode);
        if (fd < 0)
            return ph_error_set(PH_EIO, "cannot unpack %s: %s", m->path, ph_strerror(errno));
    }
    crypto_hash_sha256_init(&st);
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) {
        if (got + (uint64_t)n > m->size) {
            rc = ph_error_set(PH_EPERM,
                              "%s: refused: '%s' is larger than the %llu bytes its signed list "
                              "gives (tampered or corrupt)",
                              r->shown, m->path, (unsigned long long)m->size);
            goto cleanup;
        }
        crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
        if (keep)
            memcpy(*kept + got, buf, (size_t)n);
        if (fd >= 0 && write(fd, buf, (size_t)n) != n) {
            rc = ph_error_set(PH_EIO, "cannot unpack %s: %s", m->path, ph_strerror(errno));
            goto cleanup;
        }
        got += (uint64_t)n;
    }
    if (n < 0) {
        rc = ph_error_set(PH_EPERM, "%s: '%s' cannot be read: %s", r->shown, m->path,
                          archive_error_string(a));
        goto cleanup;
    }
    crypto_hash_sha256_final(&st, d);
    hex_of(d, sizeof d, hex);
    if (got != m->size || strcmp(hex, m->sha))
        rc = ph_error_set(PH_EPERM,
                          "%s: refused: '%s' does not match its signed SHA-256 (the file was "
                          "changed after packing: tampered or corrupt)",
                          r->shown, m->path);
    r->total += got;
    if (keep)
        r->kept += (size_t)m->size;
cleanup:
    if (fd >= 0 && close(fd) && !rc)
        rc = ph_error_set(PH_EIO, "cannot unpack %s: %s", m->path, ph_strerror(errno));
    return rc;
}

/* The ELF check of a library's bytes: an object for this machine, safe to load. */
static int check_library(const reader *r, const member *m, const unsigned char *p)
{
    char *shown = NULL;
    if (asprintf(&shown, "%s: %s", r->shown, m->path) < 0)
        return ph_error_set(PH_ENOMEM, "out of memory");
    int rc = ph_elf_check_image(p, (size_t)m->size, shown);
    free(shown);
    if (rc == PH_ELOAD) { /* a refusal of the archive, as its other checks (403, not 500) */
        char *why = strdup(ph_error_last());
        rc = ph_error_set(PH_EPERM, "%s", why ? why : "a library cannot be loaded; refused");
        free(why);
    }
    return rc;
}

/* One entry after the list and signature. */
static int read_entry(struct archive *a, struct archive_entry *e, reader *r)
{
    const char *p = archive_entry_pathname(e);
    mode_t type = archive_entry_filetype(e);
    if (!p)
        return ph_error_set(PH_EPERM, "%s: a member has no readable name", r->shown);
    if (archive_entry_hardlink(e))
        return ph_error_set(PH_EPERM,
                            "%s: refused: '%s' is a hard link; archives hold regular "
                            "files only",
                            r->shown, p);
    if (type == AE_IFDIR) {
        char *copy = strdup(p);
        if (!copy)
            return ph_error_set(PH_ENOMEM, "out of memory");
        size_t n = strlen(copy);
        while (n > 1 && copy[n - 1] == '/')
            copy[--n] = '\0';
        bool ok = member_path_ok(copy);
        free(copy);
        if (!ok && strlen(p) > PATH_MAX_LEN)
            return ph_error_set(PH_EPERM,
                                "%s: refused: the directory '%.80s...' is %zu bytes, longer than "
                                "the %u bytes an archive member's name may be",
                                r->shown, p, strlen(p), PATH_MAX_LEN);
        return ok ? 0
                  : ph_error_set(PH_EPERM,
                                 "%s: refused: the directory '%.200s' lies outside the "
                                 "package ('..', '.' or an absolute path)",
                                 r->shown, p);
    }
    if (type != AE_IFREG)
        return ph_error_set(PH_EPERM,
                            "%s: refused: '%.200s' is %s; archives hold regular files "
                            "only",
                            r->shown, p, type_name(type));
    member *m = find_member(r->l, p);
    if (!m)
        return ph_error_set(PH_EPERM, "%s: refused: '%.200s' is not in its signed file list",
                            r->shown, p);
    if (m->seen)
        return ph_error_set(PH_EPERM, "%s: refused: '%s' appears twice", r->shown, p);
    m->seen = true;
    if (r->total + m->size > TOTAL_MAX)
        return ph_error_set(PH_ETOOBIG, "%s unpacks to more than %llu bytes; refused", r->shown,
                            (unsigned long long)TOTAL_MAX);
    unsigned char *kept = NULL;
    int rc = read_member(a, r, m, r->out_dir < 0 ? &kept : NULL);
    if (!rc && kept)
        rc = check_library(r, m, kept);
    free(kept);
    return rc;
}

/* One pass over the archive: check (out_dir -1) or write into out_dir. */
static int pass(const ph_config *cfg, const char *path, const char *shown, listing *l, int out_dir)
{
    struct archive *a = NULL;
    struct archive_entry *e;
    char *list = NULL, *sig = NULL;
    reader r = {shown, l, out_dir, 0, 0};
    int fd = open_archive(path, &a), rc = 0;
    if (fd < 0)
        return fd;
    int st = archive_read_next_header(a, &e);
    if (st != ARCHIVE_OK || strcmp(archive_entry_pathname(e), FILES_MEMBER)) {
        rc = ph_error_set(PH_EPERM,
                          "%s is not a plughost archive (it does not begin with "
                          "%s; make archives with plughost pack)",
                          shown, FILES_MEMBER);
        goto cleanup;
    }
    if ((rc = read_small(a, e, shown, "file list", LIST_MAX, &list)))
        goto cleanup;
    st = archive_read_next_header(a, &e);
    if (st == ARCHIVE_OK && !strcmp(archive_entry_pathname(e), SIG_MEMBER)) {
        if ((rc = read_small(a, e, shown, "signature", 4096, &sig)))
            goto cleanup;
        st = archive_read_next_header(a, &e);
    }
    if ((rc = check_signature(cfg, shown, list, sig)))
        goto cleanup;
    if (out_dir < 0 && (rc = parse_list(shown, list, l)))
        goto cleanup;
    for (; st == ARCHIVE_OK && !rc; st = archive_read_next_header(a, &e))
        rc = read_entry(a, e, &r);
    if (!rc && st != ARCHIVE_EOF)
        rc = ph_error_set(PH_EPERM, "%s is damaged: %s", shown, archive_error_string(a));
    for (size_t i = 0; !rc && i < l->n; i++)
        if (!l->m[i].seen)
            rc = ph_error_set(PH_EPERM,
                              "%s: refused: '%s' is in its signed file list but not in "
                              "the archive",
                              shown, l->m[i].path);
cleanup:
    archive_read_free(a);
    close(fd);
    free(list);
    free(sig);
    return rc;
}

static int remove_tree(int dir, const char *name)
{
    int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return unlinkat(dir, name, 0);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            remove_tree(dirfd(d), e->d_name);
    closedir(d);
    return unlinkat(dir, name, AT_REMOVEDIR);
}

void ph_dist_discard(const char *staging)
{
    if (staging)
        remove_tree(AT_FDCWD, staging);
}

/*
 * The library package.ini names must be a file the archive carried: a `library` key
 * pointing outside the package (an absolute path, or ../) would have the host load code
 * the signature never covered.
 */
static int check_library_inside(const char *dir, const char *shown, const ph_manifest *m)
{
    size_t n = strlen(dir);
    /* named as the package.ini wrote it, not by the staging directory's path */
    const char *named =
        strncmp(m->library, dir, n) == 0 && m->library[n] == '/' ? m->library + n + 1 : m->library;
    char *real_dir = realpath(dir, NULL), *real_lib = realpath(m->library, NULL);
    size_t rn = real_dir ? strlen(real_dir) : 0;
    int rc = 0;
    if (!real_dir)
        rc = ph_error_set(PH_EIO, "%s: cannot read the unpacked package: %s", shown,
                          ph_strerror(errno));
    else if (!real_lib || strncmp(real_lib, real_dir, rn) || real_lib[rn] != '/')
        rc = ph_error_set(PH_EPERM,
                          "%s: refused: its package.ini names the library '%s', which is not a "
                          "file of the archive; an archive carries its own library (pack the "
                          "package directory with its library in it)",
                          shown, named);
    free(real_dir);
    free(real_lib);
    return rc;
}

/* The unpacked manifest must be the package the signed list names. */
static int check_manifest(const char *dir, const char *shown, const listing *l)
{
    char *ini = NULL;
    ph_manifest *m = NULL;
    if (asprintf(&ini, "%s/package.ini", dir) < 0)
        return ph_error_set(PH_ENOMEM, "out of memory");
    int rc = ph_manifest_load(ini, &m);
    if (rc)
        rc = ph_error_set(PH_EMANIFEST, "%s: its package.ini cannot be read: %s", shown,
                          ph_error_last());
    else if (strcmp(m->name, l->name) || strcmp(m->version_text, l->version))
        rc = ph_error_set(PH_EPERM,
                          "%s: refused: its signed list names %s %s but its package.ini is %s "
                          "%s",
                          shown, l->name, l->version, m->name, m->version_text);
    else
        rc = check_library_inside(dir, shown, m);
    ph_manifest_free(m);
    free(ini);
    return rc;
}

int ph_dist_unpack(const ph_config *cfg, const char *path, char **staging, char **name,
                   char **version)
{
    listing l = {0};
    char *dir = NULL;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    int rc = init_sodium(), out = -1;
    *staging = NULL;
    if (rc || (rc = pass(cfg, path, base, &l, -1)))
        goto cleanup;
    for (size_t i = 0; i < l.n; i++)
        l.m[i].seen = false;
    if (mkdir(cfg->data_dir, 0755) && errno != EEXIST) {
        rc = ph_error_set(PH_EIO, "cannot create %s: %s", cfg->data_dir, ph_strerror(errno));
        goto cleanup;
    }
    if (asprintf(&dir, "%s/.unpack-XXXXXX", cfg->data_dir) < 0) {
        dir = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (!mkdtemp(dir) || (out = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = ph_error_set(PH_EIO, "cannot create a staging directory in %s: %s", cfg->data_dir,
                          ph_strerror(errno));
        goto cleanup;
    }
    if ((rc = pass(cfg, path, base, &l, out)) || (rc = check_manifest(dir, base, &l))) {
        ph_dist_discard(dir);
        goto cleanup;
    }
    *staging = dir;
    dir = NULL;
    if (name)
        *name = l.name, l.name = NULL;
    if (version)
        *version = l.version, l.version = NULL;
cleanup:
    if (out >= 0)
        close(out);
    free(dir);
    listing_free(&l);
    return rc;
}
