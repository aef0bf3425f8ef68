/*
 * The one INI reader of the host (host.ini and package.ini). It alone decides
 * what a line is; no other code looks at the raw text.
 *
 * What a file is:
 *   - UTF-8 text. Lines end with LF or CRLF. A UTF-8 byte order mark is
 *     allowed only as the first three bytes of the file.
 *   - After the line end is removed and leading blanks (space, tab) skipped,
 *     a line is empty, a comment (';' or '#' first), a section header
 *     "[name]" (blanks around the name ignored; after ']' only blanks or a
 *     comment), or "key = value" (the first '=' or ':' separates; blanks
 *     around key and value are removed; " ;" or "\t;" starts a comment in
 *     the value).
 *   - An indented line is a line like any other, never the continuation of
 *     the previous value.
 *   - A key before any section header is reported with section "" (the
 *     handler decides; host.ini and package.ini refuse it).
 * Errors, each "path:line: what; what to do": a line longer than
 * PH_INI_MAX_LINE bytes, a NUL byte, a CR not followed by LF, any other
 * control character except tab, a byte order mark after the start of the
 * file, invalid UTF-8, a header without ']' or with text after it, an empty
 * section name, a line that is neither, a key set twice in one section
 * (unless listed as repeatable), and a file over PH_INI_MAX_FILE bytes.
 */
#ifndef PH_HOST_INI_H
#define PH_HOST_INI_H

#include <stdbool.h>
#include <stddef.h>

/* Longest line in bytes, without its line end. */
#define PH_INI_MAX_LINE 1024
/* Configs and manifests are small; anything larger is the wrong file. */
#define PH_INI_MAX_FILE (1024u * 1024u)

/**
 * One event of the reader: a section header (key and value NULL) or a
 * "key = value" line. `section` and `key` are trimmed; `line` is 1-based.
 * Strings are borrowed for the call. Returns 0, or a negative PH_E* code after
 * ph_error_set("what is wrong; what to do") without location: the reader
 * prefixes "path:line: ".
 */
typedef int (*ph_ini_handler)(void *user, const char *section, const char *key, const char *value,
                              int line);

/** How a file is read: the error code for format errors and the keys that may repeat. */
typedef struct ph_ini_opts {
    int code;                      /* PH_ECONFIG, PH_EMANIFEST... */
    const char *const *repeatable; /* "section.key" entries, NULL-terminated; may be NULL */
} ph_ini_opts;

/**
 * Reads the INI file at `path` and reports its events in order; stops at the
 * first error (a format error, or the handler's). Returns 0, opts->code with
 * "path:line: ..." as the last error, PH_EIO ("path: cannot read: reason",
 * also for a directory), or PH_ENOMEM. Thread-safe.
 */
/** True for the blanks the INI syntax trims around names and values: space and tab. */
bool ph_ini_is_blank(char c);

/**
 * A new string (caller frees) of [s, s+n) without the blanks around it, as
 * the reader trims keys and values (and config lists trim their items);
 * NULL on no memory.
 */
char *ph_ini_trimmed(const char *s, size_t n);

int ph_ini_parse_file(const char *path, const ph_ini_opts *opts, ph_ini_handler handler,
                      void *user);

/**
 * The same over `len` bytes of `text` (which may hold NUL bytes: they are a
 * format error), naming the source `name` in messages. Thread-safe.
 */
int ph_ini_parse_text(const char *name, const char *text, size_t len, const ph_ini_opts *opts,
                      ph_ini_handler handler, void *user);

#endif
