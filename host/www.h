/*
 * Static files of a package: www/ and wiki/ beside its package.ini, served
 * read-only. Nothing outside the served directory can be opened: the path
 * arrives as already-decoded segments, every segment is checked again here
 * (no "", ".", "..", '/', '\\' or NUL), and the file is opened with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) relative to the directory,
 * so symlinks may point around inside it but never out of it. Where the
 * kernel lacks openat2 (before Linux 5.6) the path is walked one segment at a
 * time with O_NOFOLLOW, so no symlink is followed at all.
 */
#ifndef PH_HOST_WWW_H
#define PH_HOST_WWW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ph_www_file {
    int fd; /* open for reading; the caller closes it */
    uint64_t size;
    const char *content_type; /* static string */
    bool is_index;            /* the path named a directory; this is its index file */
    bool sandbox; /* a wiki file served as it is: sent with "Content-Security-Policy: sandbox" */
} ph_www_file;

/**
 * True if `seg` (NUL-terminated, `len` bytes before decoding checks) may be
 * one path segment of a served file.
 */
bool ph_www_segment_ok(const char *seg, size_t len);

/**
 * Opens segs[0]/.../segs[n-1] beneath `root` (an absolute directory path).
 * n == 0 means the root itself. A directory is served through the first
 * file of `index` (a NULL-terminated list of names, e.g. {"index.html",
 * "index.md", NULL} for a wiki; NULL means {"index.html", NULL}) that it
 * holds. Returns 0 and fills *out; PH_ENOTFOUND when there is no such
 * regular file beneath root (including paths that would leave it, and
 * symlinks pointing outside it); PH_EINVAL for a segment that is not
 * allowed; PH_EIO for other failures. Detail in ph_error_last().
 * Thread-safe.
 */
int ph_www_open(const char *root, char *const *segs, size_t n, const char *const *index,
                ph_www_file *out);

/**
 * What GET <mount>/wiki/<segs> serves, beneath `root` (the package's wiki/):
 *   - a directory: the first of `index` but "index.md" that it holds as a
 *     file (a package may ship its wiki rendered), else a page rendered
 *     now: index.md (if any) above a list of the directory's pages
 *     (*.md, titled by their first "# " heading) and subdirectories;
 *   - "NAME" where NAME.md exists: NAME.md rendered to HTML (CommonMark,
 *     cmark's safe mode: raw HTML is omitted, javascript: and similar
 *     links are dropped), with relative links to "other.md" pointing at
 *     the rendered "other", so pages link to each other under any mount;
 *   - any file as it is, e.g. "NAME.md" (the Markdown source) or images.
 * A rendered page comes in an anonymous memory file (out->fd, as for a
 * plain file; content type text/html). Errors as ph_www_open; PH_ETOOBIG
 * for a page over 4 MiB (its source is still served). Thread-safe.
 */
int ph_www_open_wiki(const char *root, char *const *segs, size_t n, const char *const *index,
                     ph_www_file *out);

/** ph_www_open_wiki when `sub` is "wiki", else ph_www_open (the HTTP layer's one call). */
int ph_www_open_in(const char *sub, const char *root, char *const *segs, size_t n,
                   const char *const *index, ph_www_file *out);

/** Content type for a file name by its extension ("application/octet-stream" if unknown). */
const char *ph_www_content_type(const char *name);

#endif
