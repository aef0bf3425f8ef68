#include "www.h"

#include <cmark.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "error.h"

bool ph_www_segment_ok(const char *seg, size_t len)
{
    if (len == 0 || strlen(seg) != len) /* empty, or a NUL inside */
        return false;
    if (strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0)
        return false;
    return strpbrk(seg, "/\\") == NULL;
}

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/vnd.microsoft.icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"xml", "application/xml"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
};

const char *ph_www_content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && !strchr(dot, '/')) {
        for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++)
            if (strcasecmp(dot + 1, content_types[i].ext) == 0)
                return content_types[i].type;
    }
    return "application/octet-stream";
}

/* Joins segments with '/'; NULL on overflow or allocation failure. */
static char *join_segments(char *const *segs, size_t n, const char *tail)
{
    size_t len = tail ? strlen(tail) + 1 : 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(segs[i]) + 1;
        if (len > SIZE_MAX - l)
            return NULL;
        len += l;
    }
    char *p = malloc(len + 2); /* room for "." when there are no segments */
    if (!p)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(segs[i]);
        if (at)
            p[at++] = '/';
        memcpy(p + at, segs[i], l);
        at += l;
    }
    if (tail) {
        if (at)
            p[at++] = '/';
        memcpy(p + at, tail, strlen(tail));
        at += strlen(tail);
    }
    p[at] = '\0';
    if (at == 0)
        strcpy(p, ".");
    return p;
}

/* -1 with errno ENOSYS when the kernel has no openat2. */
static int open_beneath(int dirfd, const char *rel)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
}

/* Fallback: one segment at a time, never following a symlink. */
static int open_walk(int dirfd, char *const *segs, size_t n, const char *tail)
{
    int fd = dup(dirfd);
    if (fd < 0)
        return -1;
    for (size_t i = 0; i < n + (tail ? 1 : 0); i++) {
        const char *name = i < n ? segs[i] : tail;
        int next = openat(fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
        int saved = errno;
        close(fd);
        if (next < 0) {
            errno = saved == ELOOP ? ENOENT : saved;
            return -1;
        }
        fd = next;
    }
    return fd;
}

static bool have_openat2 = true; /* cleared once on ENOSYS; racy writes are idempotent */

static int open_path(int rootfd, char *const *segs, size_t n, const char *tail)
{
    if (__atomic_load_n(&have_openat2, __ATOMIC_RELAXED)) {
        char *rel = join_segments(segs, n, tail);
        if (!rel) {
            errno = ENOMEM;
            return -1;
        }
        int fd = open_beneath(rootfd, rel);
        int saved = errno;
        free(rel);
        if (fd >= 0 || saved != ENOSYS) {
            errno = saved;
            return fd;
        }
        __atomic_store_n(&have_openat2, false, __ATOMIC_RELAXED);
    }
    return open_walk(rootfd, segs, n, tail);
}

static int not_found(void)
{
    return ph_error_set(PH_ENOTFOUND, "no such file; check the path (files are served from the "
                                      "package's www/ and wiki/ directories only)");
}

/* Opens the first of `index` (NULL-terminated) that is a regular file in the directory. */
static int open_index(int rootfd, char *const *segs, size_t n, const char *const *index,
                      struct stat *st, const char **name)
{
    for (; *index; index++) {
        int fd = open_path(rootfd, segs, n, *index);
        if (fd < 0)
            continue;
        if (fstat(fd, st) == 0 && S_ISREG(st->st_mode)) {
            *name = *index;
            return fd;
        }
        close(fd);
    }
    return -1;
}

int ph_www_open(const char *root, char *const *segs, size_t n, const char *const *index,
                ph_www_file *out)
{
    static const char *const default_index[] = {"index.html", NULL};
    const char *index_name = NULL;
    int rc = 0, rootfd = -1, fd = -1;
    struct stat st;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    for (size_t i = 0; i < n; i++)
        if (!ph_www_segment_ok(segs[i], strlen(segs[i])))
            return ph_error_set(PH_EINVAL,
                                "path segment %zu is not allowed (empty, '.', '..', or "
                                "holding '/', '\\' or NUL); request a plain file path",
                                i + 1);
    rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        rc = not_found();
        goto cleanup;
    }
    fd = open_path(rootfd, segs, n, NULL);
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = errno == ENOMEM ? ph_error_set(PH_ENOMEM, "out of memory opening a static file")
                             : not_found();
        goto cleanup;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        fd = open_index(rootfd, segs, n, index ? index : default_index, &st, &index_name);
        if (fd < 0) {
            rc = not_found();
            goto cleanup;
        }
        out->is_index = true;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = not_found();
        goto cleanup;
    }
    out->fd = fd;
    fd = -1;
    out->size = (uint64_t)st.st_size;
    out->content_type = ph_www_content_type(index_name ? index_name : n ? segs[n - 1] : "");
cleanup:
    if (fd >= 0)
        close(fd);
    if (rootfd >= 0)
        close(rootfd);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Wiki: Markdown rendered to HTML (cmark, safe mode)                   */
/* ------------------------------------------------------------------ */

/* A page's Markdown is read whole; past this it is served as source only. */
#define PH_WIKI_MAX_BYTES (4u << 20)

typedef struct wbuf {
    char *p;
    size_t len, cap;
    bool failed;
} wbuf;

static void wb_add(wbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n > SIZE_MAX - b->len - 1) {
        b->failed = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void wb_str(wbuf *b, const char *s)
{
    wb_add(b, s, strlen(s));
}

/* Text into HTML (element content or a quoted attribute). */
static void wb_esc(wbuf *b, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '&'    ? "&amp;"
                        : *s == '<'  ? "&lt;"
                        : *s == '>'  ? "&gt;"
                        : *s == '"'  ? "&quot;"
                        : *s == '\'' ? "&#39;"
                                     : NULL;
        if (e)
            wb_str(b, e);
        else
            wb_add(b, s, 1);
    }
}

/* A path (relative link) into an href: unreserved characters and '/' as they are. */
static void wb_url(wbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~/", c)) {
            wb_add(b, s, 1);
        } else {
            char pct[3] = {'%', hex[c >> 4], hex[c & 15]};
            wb_add(b, pct, 3);
        }
    }
}

static const char wiki_style[] =
    "<style>:root{color-scheme:light dark;--fg:#1d2330;--muted:#5b6475;--bg:#fff;--line:#e3e6ec;"
    "--accent:#2557d6}@media(prefers-color-scheme:dark){:root{--fg:#e6e8ee;--muted:#9aa3b5;"
    "--bg:#14171d;--line:#2b303a;--accent:#7ea2ff}}body{margin:0;background:var(--bg);color:var("
    "--fg);font:16px/1.6 system-ui,-apple-system,'Segoe UI',sans-serif}nav{display:flex;gap:1em;"
    "padding:.7em 1.2em;border-bottom:1px solid var(--line);font-size:.9em}nav a{color:var(--"
    "muted)}main{max-width:46em;margin:0 auto;padding:1em 1.2em 3em}a{color:var(--accent)}pre,"
    "code{font:.9em ui-monospace,monospace;background:rgba(127,127,127,.12);border-radius:4px}"
    "pre{padding:.8em;overflow:auto}code{padding:.1em .3em}pre code{padding:0;background:none}"
    "table{border-collapse:collapse}td,th{border:1px solid var(--line);padding:.3em .6em}img{max-"
    "width:100%}ul.pages{padding-left:1.2em}</style>";

/* The page around rendered HTML: `source` (may be NULL) is the Markdown file's name. */
static void wiki_head(wbuf *b, const char *title, const char *source)
{
    wb_str(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
    wb_esc(b, title);
    wb_str(b, "</title>");
    wb_str(b, wiki_style);
    wb_str(b, "</head><body><nav><a href=\"./\">wiki index</a>");
    if (source) {
        wb_str(b, "<a href=\"");
        wb_url(b, source);
        wb_str(b, "\">markdown source</a>");
    }
    wb_str(b, "</nav><main>\n");
}

static bool is_md(const char *name)
{
    size_t l = strlen(name);
    return l >= 3 && strcasecmp(name + l - 3, ".md") == 0;
}

/* A link written for the Markdown files ("setup.md#x") made to point at the rendered page. */
static void relink(cmark_node *link)
{
    const char *url = cmark_node_get_url(link);
    if (!url || !*url || url[0] == '/' || url[0] == '#')
        return;
    size_t plen = strcspn(url, "?#");
    if (memchr(url, ':', plen)) /* a scheme: another site, mailto:, ... */
        return;
    if (plen <= 3 || strncasecmp(url + plen - 3, ".md", 3) != 0)
        return;
    char *u = strdup(url);
    if (!u)
        return;
    memmove(u + plen - 3, u + plen, strlen(u + plen) + 1);
    cmark_node_set_url(link, u);
    free(u);
}

/* The text of the first heading, or NULL (caller frees). */
static char *first_heading(cmark_node *doc)
{
    cmark_iter *it = cmark_iter_new(doc);
    wbuf t = {0};
    int depth = 0;
    bool done = false;
    cmark_event_type ev;
    while (!done && it && (ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
        cmark_node *n = cmark_iter_get_node(it);
        cmark_node_type ty = cmark_node_get_type(n);
        if (ty == CMARK_NODE_HEADING) {
            depth += ev == CMARK_EVENT_ENTER ? 1 : -1;
            done = ev == CMARK_EVENT_EXIT;
        } else if (depth && (ty == CMARK_NODE_TEXT || ty == CMARK_NODE_CODE)) {
            wb_str(&t, cmark_node_get_literal(n) ? cmark_node_get_literal(n) : "");
        }
    }
    cmark_iter_free(it);
    if (t.failed || !t.p) {
        free(t.p);
        return NULL;
    }
    return t.p;
}

/* Renders Markdown `md` into `b` (the body only); *title (caller frees) its first heading. */
static int wiki_render(const char *md, size_t len, wbuf *b, char **title)
{
    /* CMARK_OPT_DEFAULT is safe: raw HTML is omitted and javascript: links dropped */
    cmark_node *doc = cmark_parse_document(md, len, CMARK_OPT_DEFAULT);
    if (!doc)
        return ph_error_set(PH_ENOMEM, "out of memory rendering a wiki page");
    cmark_iter *it = cmark_iter_new(doc);
    cmark_event_type ev;
    while (it && (ev = cmark_iter_next(it)) != CMARK_EVENT_DONE)
        if (ev == CMARK_EVENT_ENTER &&
            cmark_node_get_type(cmark_iter_get_node(it)) == CMARK_NODE_LINK)
            relink(cmark_iter_get_node(it));
    cmark_iter_free(it);
    *title = first_heading(doc);
    char *html = cmark_render_html(doc, CMARK_OPT_DEFAULT);
    cmark_node_free(doc);
    if (!html)
        return ph_error_set(PH_ENOMEM, "out of memory rendering a wiki page");
    wb_str(b, html);
    free(html);
    return 0;
}

/* Reads a whole regular file (at most PH_WIKI_MAX_BYTES); takes fd. */
static int read_all(int fd, char **out, size_t *len)
{
    struct stat st;
    *out = NULL;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = not_found();
        goto cleanup;
    }
    if ((uint64_t)st.st_size > PH_WIKI_MAX_BYTES) {
        rc = ph_error_set(PH_ETOOBIG,
                          "the wiki page is %lld bytes, more than the %u rendered; its "
                          "Markdown source is served with the .md suffix",
                          (long long)st.st_size, PH_WIKI_MAX_BYTES);
        goto cleanup;
    }
    char *p = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (p && got < (size_t)st.st_size) {
        ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (!p) {
        rc = ph_error_set(PH_ENOMEM, "out of memory reading a wiki page");
        goto cleanup;
    }
    p[got] = 0;
    *out = p;
    *len = got;
cleanup:
    close(fd);
    return rc;
}

/* Hands the finished page to the caller as a file (what the HTTP layer serves). */
static int wiki_finish(wbuf *b, ph_www_file *out)
{
    if (b->failed)
        return ph_error_set(PH_ENOMEM, "out of memory rendering a wiki page");
    int fd = memfd_create("plughost-wiki", MFD_CLOEXEC);
    if (fd < 0)
        return ph_error_set(PH_EIO, "cannot hold a rendered wiki page: %s", strerror(errno));
    size_t at = 0;
    while (at < b->len) {
        ssize_t w = write(fd, b->p + at, b->len - at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return ph_error_set(PH_EIO, "cannot hold a rendered wiki page: %s", strerror(errno));
        }
        at += (size_t)w;
    }
    lseek(fd, 0, SEEK_SET);
    out->fd = fd;
    out->size = b->len;
    out->content_type = "text/html; charset=utf-8";
    return 0;
}

static int wiki_page(int fd, const char *stem, ph_www_file *out)
{
    char *md = NULL, *title = NULL, *source = NULL;
    size_t len = 0;
    wbuf b = {0}, body = {0};
    int rc = read_all(fd, &md, &len);
    if (rc)
        return rc;
    if ((rc = wiki_render(md, len, &body, &title)))
        goto cleanup;
    if (asprintf(&source, "%s.md", stem) < 0) {
        source = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    wiki_head(&b, title ? title : stem, source);
    wb_add(&b, body.p ? body.p : "", body.len);
    wb_str(&b, "</main></body></html>\n");
    rc = wiki_finish(&b, out);
cleanup:
    free(md);
    free(title);
    free(source);
    free(b.p);
    free(body.p);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The title of a Markdown file: its first "# " line, else NULL (caller frees). */
static char *file_title(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    char buf[2048];
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return NULL;
    buf[n] = 0;
    for (char *line = buf; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = 0;
        if (line[0] == '#' && line[1] == ' ') {
            char *t = line + 2;
            size_t l = strlen(t);
            while (l && (t[l - 1] == '\r' || t[l - 1] == ' ' || t[l - 1] == '#'))
                t[--l] = 0;
            return l ? strdup(t) : NULL;
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

/* The pages (*.md but index.md) and subdirectories of a wiki directory, as links. */
static void wiki_list(wbuf *b, int dirfd)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((e = readdir(d)) && n < 10000) {
        size_t l = strlen(e->d_name);
        bool page = l > 3 && is_md(e->d_name) && strcasecmp(e->d_name, "index.md") != 0;
        struct stat st;
        bool dir = e->d_name[0] != '.' &&
                   fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        if ((!page && !dir) || e->d_name[0] == '.')
            continue;
        char **more = realloc(names, (n + 1) * sizeof *names);
        char *copy = NULL;
        if (more)
            names = more;
        if (!more || asprintf(&copy, "%s%s", e->d_name, dir ? "/" : "") < 0) {
            b->failed = true;
            break;
        }
        names[n++] = copy;
    }
    closedir(d);
    if (b->failed) {
        while (n)
            free(names[--n]);
    }
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    wb_str(b, "<h2>Pages</h2>\n<ul class=\"pages\">\n");
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        bool dir = names[i][l - 1] == '/';
        char *title = NULL;
        if (!dir) {
            title = file_title(dirfd, names[i]);
            names[i][l - 3] = 0; /* the rendered page: no .md */
        }
        wb_str(b, "<li><a href=\"");
        wb_url(b, names[i]);
        wb_str(b, "\">");
        wb_esc(b, title ? title : names[i]);
        wb_str(b, "</a></li>\n");
        free(title);
        free(names[i]);
    }
    if (!n)
        wb_str(b, "<li>no pages yet</li>\n");
    wb_str(b, "</ul>\n");
    free(names);
}

/* A directory: index.html as shipped, else index.md rendered above the list of pages. */
static int wiki_index(int dirfd, const char *const *index, ph_www_file *out)
{
    for (; index && *index; index++) {
        if (strcmp(*index, "index.md") == 0)
            continue;
        int fd = openat(dirfd, *index, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            out->fd = fd;
            out->size = (uint64_t)st.st_size;
            out->content_type = ph_www_content_type(*index);
            out->sandbox = true; /* shipped HTML: no script in the host's origin */
            return 0;
        }
        if (fd >= 0)
            close(fd);
    }
    char *md = NULL, *title = NULL;
    size_t len = 0;
    wbuf b = {0}, body = {0};
    int rc = 0, fd = openat(dirfd, "index.md", O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd >= 0 && (rc = read_all(fd, &md, &len)) == 0)
        rc = wiki_render(md, len, &body, &title);
    if (rc)
        goto cleanup;
    wiki_head(&b, title ? title : "Wiki", md ? "index.md" : NULL);
    if (!md)
        wb_str(&b, "<h1>Wiki</h1>\n");
    wb_add(&b, body.p ? body.p : "", body.len);
    wiki_list(&b, dirfd);
    wb_str(&b, "</main></body></html>\n");
    rc = wiki_finish(&b, out);
cleanup:
    free(md);
    free(title);
    free(b.p);
    free(body.p);
    return rc;
}

int ph_www_open_wiki(const char *root, char *const *segs, size_t n, const char *const *index,
                     ph_www_file *out)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    for (size_t i = 0; i < n; i++)
        if (!ph_www_segment_ok(segs[i], strlen(segs[i])))
            return ph_www_open(root, segs, n, index, out); /* its refusal */
    int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;
    if (rootfd < 0)
        return not_found();
    int fd = open_path(rootfd, segs, n, NULL);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        out->is_index = true;
        rc = wiki_index(fd, index, out);
        close(fd);
    } else if (fd >= 0) {
        /* a file as it is: page.md (the source), images, shipped HTML */
        close(fd);
        rc = ph_www_open(root, segs, n, index, out);
        out->sandbox = true; /* its HTML or SVG must not run script in the host's origin */
    } else if (n > 0 && !is_md(segs[n - 1])) {
        /* "setup" is setup.md rendered */
        char *md = NULL;
        if (asprintf(&md, "%s.md", segs[n - 1]) < 0) {
            rc = ph_error_set(PH_ENOMEM, "out of memory");
        } else {
            fd = open_path(rootfd, segs, n - 1, md);
            rc = fd >= 0 ? wiki_page(fd, segs[n - 1], out) : not_found();
        }
        free(md);
    } else {
        rc = not_found();
    }
    close(rootfd);
    return rc;
}

int ph_www_open_in(const char *sub, const char *root, char *const *segs, size_t n,
                   const char *const *index, ph_www_file *out)
{
    return strcmp(sub, "wiki") == 0 ? ph_www_open_wiki(root, segs, n, index, out)
                                    : ph_www_open(root, segs, n, index, out);
}
