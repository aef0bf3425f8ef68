/*
 * Semantic versions (https://semver.org/spec/v2.0.0.html) and npm-style ranges.
 *
 * A range is stored as an intersection of plain comparators: every sugar form
 * ("^1.2", "~1.2.3", "1.x", ">1.2") is lowered at parse time to at most two
 * comparators, so ph_range_satisfies() is a simple loop.
 */
#include "semver.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* A version as written in a range: any of major/minor/patch may be missing
 * or a wildcard ('x', 'X', '*'); `parts` counts the concrete ones. */
typedef struct partial {
    ph_semver v;
    int parts; /* 0 = "*", 1 = "1", 2 = "1.2", 3 = "1.2.3" */
} partial;

/* Where a parse error is reported: "invalid <kind> '<whole>': <detail>". */
typedef struct where {
    const char *kind;
    const char *whole;
} where;

static int fail(const where *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(const where *w, const char *fmt, ...)
{
    char *detail = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&detail, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ph_error_set(PH_ENOMEM, "out of memory while reporting an invalid %s", w->kind);
    ph_error_set(PH_EINVAL, "invalid %s '%s': %s", w->kind, w->whole, detail);
    free(detail);
    return PH_EINVAL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

static bool is_wildcard(const char *s, size_t len)
{
    return len == 1 && (*s == 'x' || *s == 'X' || *s == '*');
}

static const char *const part_names[] = {"major", "minor", "patch"};

/* Parses one numeric part of [s, s+len): digits, no leading zero, fits uint64_t. */
static int parse_number(const char *s, size_t len, int idx, uint64_t *out, const where *w)
{
    const char *name = part_names[idx];
    if (len == 0)
        return fail(w, "%s version is empty; expected MAJOR.MINOR.PATCH such as 1.2.3", name);
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]) && i > 0 && idx == 2) /* "3rc1": a pre-release without its '-' */
            return fail(w,
                        "%s version '%.*s' is not a number; a pre-release follows a '-': write "
                        "'%.*s-%.*s'",
                        name, (int)len, s, (int)i, s, (int)(len - i), s + i);
        if (!is_digit(s[i]))
            return fail(w, "%s version '%.*s' is not a number", name, (int)len, s);
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return fail(w, "%s version '%.*s' is too large", name, (int)len, s);
        v = v * 10 + d;
    }
    if (len > 1 && s[0] == '0')
        return fail(w, "%s version '%.*s' has a leading zero", name, (int)len, s);
    *out = v;
    return 0;
}

/*
 * Checks dot-separated identifiers of a pre-release (`numeric_rules`: numeric
 * identifiers may not have leading zeros) or of build metadata.
 */
static int check_identifiers(const char *s, size_t len, bool numeric_rules, const where *w)
{
    const char *what = numeric_rules ? "pre-release" : "build metadata";
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        const char *id = s + start;
        size_t n = i - start;
        if (n == 0)
            return fail(w, "%s has an empty identifier; identifiers are separated by single dots",
                        what);
        bool numeric = true;
        for (size_t k = 0; k < n; k++) {
            if (!is_ident_char(id[k]))
                return fail(w,
                            "%s identifier '%.*s' contains '%c'; only letters, digits and '-' "
                            "are allowed",
                            what, (int)n, id, id[k]);
            numeric = numeric && is_digit(id[k]);
        }
        if (numeric_rules && numeric && n > 1 && id[0] == '0')
            return fail(w, "%s identifier '%.*s' has a leading zero", what, (int)n, id);
        start = i + 1;
    }
    return 0;
}

/* Length of the MAJOR.MINOR.PATCH core: up to the first '-' or '+'. */
static size_t core_length(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && s[i] != '-' && s[i] != '+')
        i++;
    return i;
}

/* Parses "-pre" and "+build" suffixes of [s, s+len) into v->pre. */
static int parse_suffix(const char *s, size_t len, ph_semver *v, const where *w)
{
    size_t plus = 0;
    while (plus < len && s[plus] != '+')
        plus++;
    if (len > 0 && s[0] == '-') {
        size_t n = plus - 1;
        if (n == 0)
            return fail(w, "pre-release after '-' is empty");
        int rc = check_identifiers(s + 1, n, true, w);
        if (rc)
            return rc;
        if (n >= PH_SEMVER_PRE_MAX)
            return fail(w, "pre-release is %zu characters long; at most %d are supported", n,
                        PH_SEMVER_PRE_MAX - 1);
        memcpy(v->pre, s + 1, n);
        v->pre[n] = '\0';
    }
    if (plus < len) {
        if (plus + 1 == len)
            return fail(w, "build metadata after '+' is empty");
        return check_identifiers(s + plus + 1, len - plus - 1, false, w);
    }
    return 0;
}

/*
 * Parses [s, s+len) as a version. With `allow_partial`, trailing parts may be
 * missing or wildcards ("1", "1.2", "1.x", "*"); otherwise all three are required.
 */
static int parse_partial(const char *s, size_t len, bool allow_partial, partial *out,
                         const where *w)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return fail(w, "no version given; expected MAJOR.MINOR.PATCH such as 1.2.3");
    if (s[0] == 'v' || s[0] == 'V')
        return fail(w, "remove the leading '%c'; versions are written like 1.2.3", s[0]);
    size_t core = core_length(s, len);
    uint64_t *fields[3] = {&out->v.major, &out->v.minor, &out->v.patch};
    size_t pos = 0;
    int n = 0;
    bool wild = false;
    while (pos <= core) {
        size_t end = pos;
        while (end < core && s[end] != '.')
            end++;
        if (n == 3)
            return fail(w, "too many parts; expected MAJOR.MINOR.PATCH such as 1.2.3");
        if (allow_partial && is_wildcard(s + pos, end - pos)) {
            wild = true;
        } else if (wild) {
            return fail(w, "'%.*s' follows a wildcard; write e.g. 1.x or 1.2.x", (int)(end - pos),
                        s + pos);
        } else {
            int rc = parse_number(s + pos, end - pos, n, fields[n], w);
            if (rc)
                return rc;
            out->parts = n + 1;
        }
        n++;
        pos = end + 1;
    }
    if (n < 3 && !allow_partial)
        return fail(w, "expected MAJOR.MINOR.PATCH such as 1.2.3, found %d part%s", n,
                    n == 1 ? "" : "s");
    if (core < len && out->parts < 3)
        return fail(w, "a pre-release or build suffix needs a full MAJOR.MINOR.PATCH version");
    return parse_suffix(s + core, len - core, &out->v, w);
}

int ph_semver_parse(const char *text, ph_semver *out)
{
    if (!text || !out)
        return ph_error_set(PH_EINVAL, "ph_semver_parse: NULL argument");
    where w = {"version", text};
    partial p;
    int rc = parse_partial(text, strlen(text), false, &p, &w);
    if (rc)
        return rc;
    *out = p.v;
    return 0;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]))
            return false;
    return true;
}

/* Compares two pre-release identifiers by semver rules (numeric < alphanumeric). */
static int cmp_identifier(const char *a, size_t na, const char *b, size_t nb)
{
    bool da = all_digits(a, na), db = all_digits(b, nb);
    if (da && db) {
        /* No leading zeros, so the longer number is the larger one. */
        if (na != nb)
            return na < nb ? -1 : 1;
        return memcmp(a, b, na);
    }
    if (da != db)
        return da ? -1 : 1;
    int c = memcmp(a, b, na < nb ? na : nb);
    if (c)
        return c;
    return na == nb ? 0 : (na < nb ? -1 : 1);
}

static int cmp_prerelease(const char *a, const char *b)
{
    if (!*a || !*b)
        return (*a ? -1 : 0) + (*b ? 1 : 0); /* no pre-release ranks higher */
    while (*a && *b) {
        size_t na = strcspn(a, "."), nb = strcspn(b, ".");
        int c = cmp_identifier(a, na, b, nb);
        if (c)
            return c < 0 ? -1 : 1;
        a += na + (a[na] == '.');
        b += nb + (b[nb] == '.');
    }
    return (*a ? 1 : 0) - (*b ? 1 : 0); /* more identifiers rank higher */
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

int ph_semver_cmp(const ph_semver *a, const ph_semver *b)
{
    int c = cmp_u64(a->major, b->major);
    if (!c)
        c = cmp_u64(a->minor, b->minor);
    if (!c)
        c = cmp_u64(a->patch, b->patch);
    if (!c)
        c = cmp_prerelease(a->pre, b->pre);
    return c;
}

char *ph_semver_format(const ph_semver *v, char *buf, unsigned long size)
{
    if (!buf || size == 0)
        return buf;
    snprintf(buf, size, "%llu.%llu.%llu%s%s", (unsigned long long)v->major,
             (unsigned long long)v->minor, (unsigned long long)v->patch, v->pre[0] ? "-" : "",
             v->pre);
    return buf;
}

/* ---- ranges ---- */

static void set_version(ph_semver *v, uint64_t major, uint64_t minor, uint64_t patch)
{
    memset(v, 0, sizeof *v);
    v->major = major;
    v->minor = minor;
    v->patch = patch;
}

static int add_cmpr(ph_range *r, ph_semver_op op, const ph_semver *v)
{
    if (r->n >= PH_RANGE_MAX * 2)
        return -1;
    r->c[r->n].op = op;
    r->c[r->n].v = *v;
    r->c[r->n].floor = false;
    r->n++;
    return 0;
}

/* ">=v" lowered from a partial version: ">=v-0" for ph_range_covers. */
static int add_floor(ph_range *r, const ph_semver *v)
{
    if (add_cmpr(r, PH_OP_GE, v))
        return -1;
    r->c[r->n - 1].floor = true;
    return 0;
}

/*
 * The first version above everything `p` names with its concrete parts
 * ("1.2" -> 1.3.0, "1" -> 2.0.0). False when that would overflow, meaning
 * there is no upper bound.
 */
static bool bump(const partial *p, int parts, ph_semver *out)
{
    const ph_semver *v = &p->v;
    if (parts == 1) {
        if (v->major == UINT64_MAX)
            return false;
        set_version(out, v->major + 1, 0, 0);
    } else if (parts == 2) {
        if (v->minor == UINT64_MAX)
            return false;
        set_version(out, v->major, v->minor + 1, 0);
    } else {
        if (v->patch == UINT64_MAX)
            return false;
        set_version(out, v->major, v->minor, v->patch + 1);
    }
    return true;
}

/*
 * The upper bound of a sugar form, "<X.Y.Z-0" (npm): the lowest pre-release
 * of the bound, so that no pre-release of it ("2.0.0-beta" for "^1.2")
 * passes, even beside a comparator that admits that version's pre-releases.
 */
static int add_upper(ph_range *r, ph_semver *high)
{
    strcpy(high->pre, "0");
    return add_cmpr(r, PH_OP_LT, high);
}

/* Adds ">=low" and, unless unbounded, "<bump(p, parts)-0". */
static int add_span(ph_range *r, const partial *p, int parts)
{
    ph_semver high;
    if (p->parts < 3 ? add_floor(r, &p->v) : add_cmpr(r, PH_OP_GE, &p->v))
        return -1;
    if (bump(p, parts, &high) && add_upper(r, &high))
        return -1;
    return 0;
}

/* Lowers "^P": changes that do not modify the left-most non-zero part. */
static int lower_caret(ph_range *r, const partial *p)
{
    int parts = 1;
    if (p->v.major == 0 && p->parts >= 2)
        parts = (p->v.minor == 0 && p->parts == 3) ? 3 : 2;
    return add_span(r, p, parts);
}

/* Lowers "~P": patch-level changes if a minor is given, else minor-level ones. */
static int lower_tilde(ph_range *r, const partial *p)
{
    return add_span(r, p, p->parts >= 2 ? 2 : 1);
}

typedef enum { OP_NONE, OP_EQ, OP_LT, OP_LE, OP_GT, OP_GE, OP_CARET, OP_TILDE } range_op;

/* Lowers "<op>P" into comparators (npm's rules for partial versions). */
static int lower(ph_range *r, range_op op, const partial *p, const char *part, const where *w)
{
    ph_semver next;
    if (p->parts == 0) { /* "*", "x", ">=*": any version */
        if (op == OP_LT || op == OP_GT)
            return fail(w, "'%s' matches no version", part);
        return 0;
    }
    int rc = 0;
    switch (op) {
    case OP_NONE:
    case OP_EQ:
        rc = p->parts == 3 ? add_cmpr(r, PH_OP_EQ, &p->v) : add_span(r, p, p->parts);
        break;
    case OP_CARET:
        rc = lower_caret(r, p);
        break;
    case OP_TILDE:
        rc = lower_tilde(r, p);
        break;
    case OP_GE:
        rc = p->parts < 3 ? add_floor(r, &p->v) : add_cmpr(r, PH_OP_GE, &p->v);
        break;
    case OP_LT: /* "<2" means "<2.0.0-0" */
        next = p->v;
        rc = p->parts == 3 ? add_cmpr(r, PH_OP_LT, &p->v) : add_upper(r, &next);
        break;
    case OP_GT: /* ">1.2" means ">=1.3.0" */
        if (p->parts == 3)
            rc = add_cmpr(r, PH_OP_GT, &p->v);
        else if (!bump(p, p->parts, &next))
            return fail(w, "'%s' matches no version", part);
        else
            rc = add_floor(r, &next);
        break;
    case OP_LE: /* "<=1.2" means "<1.3.0-0" */
        if (p->parts == 3)
            rc = add_cmpr(r, PH_OP_LE, &p->v);
        else if (bump(p, p->parts, &next))
            rc = add_upper(r, &next);
        break;
    }
    if (rc)
        return fail(w, "more than %d comparators; simplify the range", PH_RANGE_MAX * 2);
    return 0;
}

/* Reads the operator at the start of `s`; returns its length. */
static size_t read_op(const char *s, range_op *op)
{
    static const struct {
        const char *text;
        range_op op;
    } ops[] = {{">=", OP_GE}, {"<=", OP_LE},   {">", OP_GT},   {"<", OP_LT},
               {"=", OP_EQ},  {"^", OP_CARET}, {"~", OP_TILDE}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t n = strlen(ops[i].text);
        if (strncmp(s, ops[i].text, n) == 0) {
            *op = ops[i].op;
            return n;
        }
    }
    *op = OP_NONE;
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* The text after `n` bytes of `s`, blanks skipped. */
static const char *after(const char *s, size_t n)
{
    s += n;
    while (is_space(*s))
        s++;
    return s;
}

/*
 * "~>1.2" (Ruby, also read by many Cargo users) and "~=1.2" (Python) mean
 * "at least 1.2, below the next release of the part before the last": the
 * plughost spelling of the same versions.
 */
static int pessimistic(const char *part, size_t op_len, const where *w)
{
    const char *ver = after(part, op_len);
    partial p;
    where quiet = {"version", ver};
    /* A probe: its own error is replaced by the answer below. */
    bool bad = parse_partial(ver, strlen(ver), true, &p, &quiet) || p.parts == 0 || *p.v.pre;
    const char *what =
        part[1] == '>' ? "Ruby's pessimistic operator" : "Python's compatible-release operator";
    if (bad)
        return fail(
            w, "'%.2s' is %s, which plughost does not read; write e.g. '~1.2.3' or '>=1.2, <2'",
            part, what);
    if (p.parts == 3)
        return fail(w,
                    "'%.2s' is %s, which plughost does not read; write '~%s' (the same versions)",
                    part, what, ver);
    return fail(w,
                "'%.2s' is %s, which plughost does not read; write '>=%s, <%llu' (the same "
                "versions)",
                part, what, ver, (unsigned long long)p.v.major + 1);
}

/* Operators of other tools, each answered with the plughost spelling. */
static int foreign_operator(const char *part, const where *w)
{
    if (!strncmp(part, "~>", 2) || !strncmp(part, "~=", 2))
        return pessimistic(part, 2, w);
    if (!strncmp(part, "===", 3)) /* npm's strict equality, pip's arbitrary equality */
        return fail(w, "'===' is not a plughost operator; write '=%s'", after(part, 3));
    if (!strncmp(part, ">>", 2)) /* Debian's strictly later */
        return fail(w, "'>>' (Debian's 'strictly later') is not a plughost operator; write '>%s'",
                    after(part, 2));
    if (!strncmp(part, "<<", 2))
        return fail(w, "'<<' (Debian's 'strictly earlier') is not a plughost operator; write '<%s'",
                    after(part, 2));
    if (!strncmp(part, "<>", 2))
        return fail(w,
                    "'<>' (every version but one) is not supported: a range is one interval; "
                    "write the versions you want, e.g. '<%s' or '>%s'",
                    after(part, 2), after(part, 2));
    if (!strncmp(part, "^=", 2))
        return fail(w, "'^=' is not a plughost operator; write '^%s'", after(part, 2));
    if (strlen(part) < 2) /* "1": no two-character operator, and nothing after one to read */
        return 0;
    const char *ver = after(part, 2);
    if (!strncmp(part, "==", 2))
        return fail(w, "'==' is not a plughost operator; write '=%s' (or just '%s')", ver, ver);
    if (!strncmp(part, "=>", 2))
        return fail(w, "'=>' is not a plughost operator; write '>=%s'", ver);
    if (!strncmp(part, "=<", 2))
        return fail(w, "'=<' is not a plughost operator; write '<=%s'", ver);
    if (!strncmp(part, "!=", 2))
        return fail(w,
                    "'!=' (every version but one) is not supported: a range is one interval; "
                    "write the versions you want, e.g. '<%s' or '>%s'",
                    ver, ver);
    return 0;
}

/* Parses one comma-separated part (already trimmed, NUL-terminated). */
static int parse_part(ph_range *r, const char *part, const where *w)
{
    if (!*part)
        return fail(w, "empty part between commas; write e.g. '>=1.0, <2'");
    if (strstr(part, "||"))
        return fail(w,
                    "'||' (either-or ranges) is not supported; use one range such as '>=1.0, <3'");
    if (strstr(part, " - "))
        return fail(w, "hyphen ranges are not supported; write '>=A, <=B' instead of 'A - B'");
    int rc = foreign_operator(part, w);
    if (rc)
        return rc;
    range_op op;
    size_t at = read_op(part, &op);
    while (is_space(part[at]))
        at++;
    const char *ver = part + at;
    size_t len = strlen(ver);
    for (size_t i = 0; i < len; i++) {
        if (is_space(ver[i]) || ver[i] == '<' || ver[i] == '>' || ver[i] == '=')
            return fail(w,
                        "'%s' is not one comparator; separate comparators with ',' as in "
                        "'>=1.0, <2'",
                        part);
    }
    partial p;
    rc = parse_partial(ver, len, true, &p, w);
    if (rc)
        return rc;
    if (p.parts == 0 && *p.v.pre)
        return fail(w, "'%s' has a pre-release but no version", part);
    return lower(r, op, &p, part, w);
}

/*
 * Interval notation (Maven, NuGet, OSGi): "[1.0,2.0)" is ">=1.0, <2.0".
 * Answers with the plughost spelling when the interval is well formed.
 */
/* "1.2" -> "1.2.0": an interval's bound is a whole version (Maven reads "1.0" as 1.0.0). */
static const char *whole(const char *v, int n, char *buf, size_t size)
{
    int dots = 0;
    for (int i = 0; i < n; i++)
        dots += v[i] == '.';
    snprintf(buf, size, "%.*s%s", n, v, dots == 0 ? ".0.0" : dots == 1 ? ".0" : "");
    return buf;
}

static int interval(const char *text, const where *w)
{
    size_t len = strlen(text);
    const char *comma = strchr(text, ',');
    char close = len ? text[len - 1] : '\0', lo_buf[64], hi_buf[64];
    if (!comma && text[0] == '[' && close == ']' && len > 2) { /* "[1.0]": exactly that version */
        const char *v = after(text, 1);
        int n = (int)(text + len - 1 - v);
        while (n > 0 && is_space(v[n - 1]))
            n--;
        return fail(w,
                    "interval notation (Maven, NuGet, OSGi) is not supported; write '=%s' "
                    "(the same version)",
                    whole(v, n, lo_buf, sizeof lo_buf));
    }
    if (!comma || (close != ')' && close != ']') || strchr(comma + 1, ','))
        return fail(w, "interval notation is not supported; write comparators such as "
                       "'>=1.0, <2.0'");
    const char *lo = after(text, 1), *lo_end = comma, *hi = after(comma, 1),
               *hi_end = text + len - 1;
    while (lo_end > lo && is_space(lo_end[-1]))
        lo_end--;
    while (hi_end > hi && is_space(hi_end[-1]))
        hi_end--;
    int n_lo = (int)(lo_end - lo), n_hi = (int)(hi_end - hi);
    /* whole versions: plughost reads ">1.0" as ">=1.1.0" and "<=2.0" as "<2.1.0-0" */
    return fail(w,
                "interval notation (Maven, NuGet, OSGi) is not supported; write '%s%s%s%s%s%s' "
                "(the same versions)",
                n_lo ? (text[0] == '[' ? ">=" : ">") : "", n_lo ? whole(lo, n_lo, lo_buf, 64) : "",
                n_lo && n_hi ? ", " : "", n_hi ? (close == ']' ? "<=" : "<") : "",
                n_hi ? whole(hi, n_hi, hi_buf, 64) : "", !n_lo && !n_hi ? "*" : "");
}

/* Spellings of the whole range that other tools use. */
static int foreign_range(const char *text, const where *w)
{
    size_t len = strlen(text);
    if (len >= 2 && (text[0] == '"' || text[0] == '\'') && text[len - 1] == text[0])
        return fail(w, "remove the quotes: write %.*s, not %s", (int)(len - 2), text + 1, text);
    if (text[0] == '(' && strchr("<>=", after(text, 1)[0]) && text[len - 1] == ')')
        return fail(w, "remove the parentheses (Debian's Depends spelling): write %.*s",
                    (int)(len - 2), text + 1);
    if (text[0] == '[' || text[0] == '(')
        return interval(text, w);
    if (strchr(text, '#'))
        return fail(w, "a range cannot hold a comment; put '; comment' on a line of its own");
    if (len >= 2 && text[len - 1] == '+' && text[len - 2] == '.')
        return fail(w, "'%s' is Gradle's dynamic version; write '%.*sx' (or '^%.*s0')", text,
                    (int)(len - 1), text, (int)(len - 1), text);
    if (!strcmp(text, "latest") || !strcmp(text, "next"))
        return fail(w,
                    "'%s' is a tag, not a range; write '*' for any version or a range such as "
                    "'^1.2'",
                    text);
    return 0;
}

int ph_range_parse(const char *text, ph_range *out)
{
    if (!text || !out)
        return ph_error_set(PH_EINVAL, "ph_range_parse: NULL argument");
    memset(out, 0, sizeof *out);
    where w = {"range", text};
    size_t len = strlen(text);
    if (len >= sizeof out->text)
        return fail(&w, "longer than %zu characters", sizeof out->text - 1);
    memcpy(out->text, text, len + 1);
    int rc = foreign_range(text, &w);
    if (rc)
        return rc;
    char part[sizeof out->text];
    int n_parts = 0;
    const char *s = text;
    for (;;) {
        size_t n = strcspn(s, ",");
        size_t b = 0, e = n;
        while (b < e && is_space(s[b]))
            b++;
        while (e > b && is_space(s[e - 1]))
            e--;
        if (b == e && n_parts == 0 && s[n] == '\0')
            return fail(&w, "empty; write '*' for any version");
        if (++n_parts > PH_RANGE_MAX)
            return fail(&w, "more than %d comma-separated parts", PH_RANGE_MAX);
        memcpy(part, s + b, e - b); /* fits: the whole text fits in out->text */
        part[e - b] = '\0';
        rc = parse_part(out, part, &w);
        if (rc)
            return rc;
        if (s[n] == '\0')
            break;
        s += n + 1;
    }
    return 0;
}

static bool cmpr_holds(const ph_semver_cmpr *c, const ph_semver *v)
{
    int d = ph_semver_cmp(v, &c->v);
    switch (c->op) {
    case PH_OP_EQ:
        return d == 0;
    case PH_OP_LT:
        return d < 0;
    case PH_OP_LE:
        return d <= 0;
    case PH_OP_GT:
        return d > 0;
    case PH_OP_GE:
        return d >= 0;
    }
    return false;
}

bool ph_range_satisfies(const ph_range *r, const ph_semver *v)
{
    bool pre_allowed = v->pre[0] == '\0';
    for (int i = 0; i < r->n; i++) {
        const ph_semver *cv = &r->c[i].v;
        if (!cmpr_holds(&r->c[i], v))
            return false;
        if (cv->pre[0] && cv->major == v->major && cv->minor == v->minor && cv->patch == v->patch)
            pre_allowed = true;
    }
    return pre_allowed;
}

bool ph_range_covers(const ph_range *r, const ph_semver *v)
{
    for (int i = 0; i < r->n; i++) {
        const ph_semver_cmpr *c = &r->c[i];
        bool floor_pre = c->floor && v->pre[0] && v->major == c->v.major &&
                         v->minor == c->v.minor && v->patch == c->v.patch;
        if (!floor_pre && !cmpr_holds(c, v))
            return false;
    }
    return true;
}
