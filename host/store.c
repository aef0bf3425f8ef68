#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup.h"
#include "error.h"
#include "text.h"
#include "jsonout.h"
#include "log.h"
#include "migrate.h"

struct ph_store {
    sqlite3 *db;
    char *path;
    pthread_mutex_t mu; /* recursive: hooks may re-enter on the same thread */
    ph_store_model *models;
    size_t n_models;
    int pending; /* a migration waits for ph_store_commit */
    int fk_off;  /* foreign_keys to turn back on at that commit */
    int depth;   /* how often the holder of `mu` holds it (it is recursive) */
    /* group commit (ph_store_write), under mu */
    pthread_cond_t gc_cv;
    int gc_open;       /* a batch's transaction is open: other users wait */
    int gc_committing; /* its leader is committing: writers wait for the next batch */
    /* writers that want to join a batch and have not yet: counted before they take mu,
       so that a leader sees the writers queued on it */
    atomic_int gc_waiting;
    unsigned long gc_joined;  /* writers that have joined a batch, ever */
    unsigned long gc_batches; /* batches committed, ever */
    struct gc_member *gc_members;
    sqlite3_stmt *gc_st[5]; /* BEGIN IMMEDIATE, SAVEPOINT, RELEASE, ROLLBACK TO, COMMIT */
};

/* ------------------------------------------------------------------ */
/* Types and values                                                     */
/* ------------------------------------------------------------------ */

const char *ph_store_sql_type(ph_type t)
{
    switch (t) {
    case PH_F64:
        return "REAL";
    case PH_STR:
    case PH_JSON:
        return "TEXT";
    default:
        return "INTEGER";
    }
}

const char *ph_store_type_name(ph_type t)
{
    switch (t) {
    case PH_BOOL:
        return "bool";
    case PH_I64:
        return "int";
    case PH_F64:
        return "float";
    case PH_STR:
        return "text";
    case PH_JSON:
        return "json";
    case PH_TIME:
        return "time";
    case PH_REF:
        return "ref";
    default:
        return "invalid";
    }
}

static const char *expected_text(ph_type t)
{
    switch (t) {
    case PH_BOOL:
        return "a boolean (true or false)";
    case PH_I64:
        return "an integer";
    case PH_F64:
        return "a number";
    case PH_STR:
        return "a string";
    case PH_TIME:
        return "a time (RFC 3339 such as 2024-05-01T12:00:00Z or 2024-05-01T14:00:00+02:00, or "
               "Unix milliseconds)";
    case PH_REF:
        return "a record id (an integer)";
    default:
        return "a JSON value";
    }
}

static const char *json_kind_text(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

int64_t ph_store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads exactly n digits. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return -1;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int mo)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return mo == 2 ? 28 + leap : days[mo - 1];
}

/* Why the last time text was refused (parse_rfc3339), for the error message. */
static _Thread_local char time_why[96];

/* The zone designator: Z, +HH:MM or +HHMM (RFC 3339 and ISO 8601's basic form) -> minutes. */
static int parse_offset(const char **p, int *off)
{
    if (**p == 'Z' || **p == 'z') {
        (*p)++;
        *off = 0;
        return 0;
    }
    int sign = **p == '-' ? -1 : 1, oh, om;
    (*p)++;
    if (digits(p, 2, &oh))
        return -1;
    if (**p == ':')
        (*p)++;
    if (digits(p, 2, &om))
        return -1;
    if (oh > 23 || om > 59) {
        snprintf(time_why, sizeof time_why, "the offset %02d:%02d does not exist", oh, om);
        return -1;
    }
    *off = sign * (oh * 60 + om);
    return 0;
}

/*
 * RFC 3339 (and the ISO 8601 forms people type): YYYY-MM-DD[(T|t| )HH:MM
 * [:SS[.fff...]]][Z|+HH:MM|+HHMM] -> Unix ms, UTC when no zone is given.
 * Dates that do not exist (2023-02-29, 2024-04-31) are refused, never
 * moved to the next month; :60 is accepted as a leap second only at :59.
 */
static int parse_rfc3339(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off = 0;
    const char *p = s;
    time_why[0] = 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec))
                return -1;
            if (*p == '.') {
                int n = 0, v = 0;
                for (p++; *p >= '0' && *p <= '9'; p++, n++)
                    if (n < 3)
                        v = v * 10 + (*p - '0');
                if (!n)
                    return -1;
                for (; n < 3; n++)
                    v *= 10;
                ms = v;
            }
        }
        if ((*p == 'Z' || *p == 'z' || *p == '+' || *p == '-') && parse_offset(&p, &off))
            return -1;
    }
    if (*p)
        return -1;
    if (mo < 1 || mo > 12)
        snprintf(time_why, sizeof time_why, "month %02d does not exist", mo);
    else if (d < 1 || d > days_in_month(y, mo))
        snprintf(time_why, sizeof time_why, "day %02d does not exist in %04d-%02d (it has %d days)",
                 d, y, mo, days_in_month(y, mo));
    else if (h > 23 || mi > 59 || sec > 60 || (sec == 60 && mi != 59))
        snprintf(time_why, sizeof time_why, "the time %02d:%02d:%02d does not exist", h, mi, sec);
    if (time_why[0])
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    *out = ((int64_t)t - (int64_t)off * 60) * 1000 + ms;
    return 0;
}

static json_t *coerce_string(ph_type t, const char *s)
{
    int64_t i;
    double d;
    bool b;
    switch (t) {
    case PH_BOOL:
        return ph_parse_bool(s, &b) ? NULL : json_boolean(b);
    case PH_I64:
    case PH_REF:
        return ph_parse_i64(s, &i) ? NULL : json_integer(i);
    case PH_F64:
        return ph_parse_f64(s, &d) ? NULL : json_real(d);
    case PH_TIME:
        if (!ph_parse_i64(s, &i) || !parse_rfc3339(s, &i))
            return json_integer(i);
        return NULL;
    default:
        return NULL;
    }
}

static json_t *coerce_value(ph_type t, json_t *in)
{
    if (json_is_string(in) && t != PH_STR && t != PH_JSON)
        return coerce_string(t, json_string_value(in));
    switch (t) {
    case PH_BOOL:
        if (json_is_boolean(in))
            return json_incref(in);
        if (json_is_integer(in) && (json_integer_value(in) == 0 || json_integer_value(in) == 1))
            return json_boolean(json_integer_value(in));
        return NULL;
    case PH_I64:
    case PH_REF:
    case PH_TIME:
        return json_is_integer(in) ? json_incref(in) : NULL;
    case PH_F64:
        return json_is_number(in) ? json_real(json_number_value(in)) : NULL;
    case PH_STR:
        return json_is_string(in) ? json_incref(in) : NULL;
    default:
        return json_incref(in);
    }
}

int ph_store_coerce(const ph_store_field *f, const char *where, json_t *in, json_t **out)
{
    *out = NULL;
    if (!in || json_is_null(in)) {
        if (f->flags & PH_REQUIRED)
            return ph_error_set(PH_EARGS, "%s%sfield '%s' is required; give it a value",
                                where ? where : "", where ? ": " : "", f->name);
        *out = json_null();
        return 0;
    }
    json_t *v = coerce_value(f->type, in);
    if (!v && f->type == PH_TIME && json_is_string(in))
        return ph_error_set(PH_EARGS, "%s%sfield '%s' must be %s, got '%.64s'%s%s",
                            where ? where : "", where ? ": " : "", f->name, expected_text(f->type),
                            json_string_value(in), time_why[0] ? ": " : "", time_why);
    if (!v)
        return ph_error_set(PH_EARGS, "%s%sfield '%s' must be %s, got %s", where ? where : "",
                            where ? ": " : "", f->name, expected_text(f->type), json_kind_text(in));
    *out = v;
    return 0;
}

static void free_text(void *p)
{
    free(p);
}

int ph_store_bind(sqlite3_stmt *st, int i, const ph_store_field *f, json_t *v)
{
    if (!v || json_is_null(v))
        return sqlite3_bind_null(st, i);
    switch (f->type) {
    case PH_BOOL:
        return sqlite3_bind_int(st, i, json_is_true(v));
    case PH_I64:
    case PH_REF:
    case PH_TIME:
        return sqlite3_bind_int64(st, i, json_integer_value(v));
    case PH_F64:
        return sqlite3_bind_double(st, i, json_number_value(v));
    case PH_STR:
        return sqlite3_bind_text(st, i, json_string_value(v), (int)json_string_length(v),
                                 SQLITE_TRANSIENT);
    default: {
        char *text = ph_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text)
            return SQLITE_NOMEM;
        return sqlite3_bind_text(st, i, text, -1, free_text);
    }
    }
}

static int is_ascii(const char *s, size_t len)
{
    unsigned char acc = 0;
    for (size_t i = 0; i < len; i++)
        acc |= (unsigned char)s[i];
    return s && acc < 0x80;
}

json_t *ph_store_column(sqlite3_stmt *st, int c, const ph_store_field *f)
{
    if (sqlite3_column_type(st, c) == SQLITE_NULL)
        return json_null();
    switch (f->type) {
    case PH_BOOL:
        return json_boolean(sqlite3_column_int64(st, c) != 0);
    case PH_I64:
    case PH_REF:
    case PH_TIME:
        return json_integer(sqlite3_column_int64(st, c));
    case PH_F64:
        return json_real(sqlite3_column_double(st, c));
    default: {
        const char *text = (const char *)sqlite3_column_text(st, c);
        size_t len = (size_t)sqlite3_column_bytes(st, c);
        json_t *v = NULL;
        if (!text && sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM)
            return NULL; /* out of memory, not an empty value */
        errno = 0;
        if (f->type == PH_JSON)
            v = json_loadb(text, len, JSON_DECODE_ANY, NULL);
        else if (is_ascii(text, len))
            v = json_stringn_nocheck(text, len); /* ASCII is valid UTF-8: skip the slow check */
        if (!v && errno != ENOMEM)
            v = json_stringn(text, len);
        if (!v && errno == ENOMEM)
            return NULL;            /* out of memory: the caller fails, rather than read a null */
        return v ? v : json_null(); /* invalid UTF-8 written by raw SQL reads as null */
    }
    }
}

/* Length of s if it is ASCII with nothing to escape in JSON, else (size_t)-1. */
static size_t plain_ascii(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] >= 0x80 || s[i] == '"' || s[i] == '\\')
            return (size_t)-1;
    return len;
}

int ph_store_column_text(ph_json_buf *b, sqlite3_stmt *st, int c, const ph_store_field *f)
{
    /* the value API: one lookup of the column, no per-call mutex as sqlite3_column_* take */
    sqlite3_value *v = sqlite3_column_value(st, c);
    char *p;
    if (sqlite3_value_type(v) == SQLITE_NULL)
        return ph_json_buf_put(b, "null", 4);
    switch (f->type) {
    case PH_BOOL:
        return sqlite3_value_int64(v) ? ph_json_buf_put(b, "true", 4)
                                      : ph_json_buf_put(b, "false", 5);
    case PH_I64:
    case PH_REF:
    case PH_TIME:
        if (!(p = ph_json_buf_reserve(b, 21)))
            return -1;
        b->len += ph_json_int_text(p, (long long)sqlite3_value_int64(v));
        b->p[b->len] = 0;
        return 0;
    case PH_F64:
    case PH_JSON:
        break; /* jansson's number format and its parse of stored JSON: through jansson */
    default: {
        const unsigned char *text = sqlite3_value_text(v);
        size_t len = (size_t)sqlite3_value_bytes(v);
        if (text && plain_ascii(text, len) == len) {
            if (!(p = ph_json_buf_reserve(b, len + 2)))
                return -1;
            p[0] = '"';
            memcpy(p + 1, text, len);
            p[len + 1] = '"';
            b->len += len + 2;
            b->p[b->len] = 0;
            return 0;
        }
        if (text && is_ascii((const char *)text, len))
            return ph_json_buf_string(b, (const char *)text, len);
        break; /* UTF-8 to check, or out of memory: as ph_store_column decides */
    }
    }
    json_t *j = ph_store_column(st, c, f);
    int rc = j && json_dump_callback(j, ph_json_buf_add, b, JSON_COMPACT | JSON_ENCODE_ANY) == 0 &&
                     !b->failed
                 ? 0
                 : -1;
    json_decref(j);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Compiling the declared models                                        */
/* ------------------------------------------------------------------ */

static int valid_ident(const char *s)
{
    size_t n = 0;
    if (!s || !(*s >= 'a' && *s <= 'z'))
        return 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
            return 0;
    return n <= 63 && strncmp(s, "sqlite_", 7) != 0;
}

static int reserved_field(const char *s)
{
    static const char *const names[] = {"id",    "created", "updated", "order",
                                        "limit", "offset",  "rowid",   "oid"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i]))
            return 1;
    return 0;
}

static char *quote_ident(const char *name)
{
    char *q = sqlite3_mprintf("\"%w\"", name);
    char *copy = q ? strdup(q) : NULL;
    sqlite3_free(q);
    return copy;
}

static void free_cols(ph_store_field *cols, size_t n)
{
    for (size_t i = 0; cols && i < n; i++) {
        free(cols[i].qname);
        json_decref(cols[i].def);
    }
    free(cols);
}

void ph_store_models_free(ph_store_model *models, size_t n)
{
    for (size_t i = 0; models && i < n; i++) {
        ph_store_model *m = &models[i];
        sqlite3_finalize(m->st_insert);
        sqlite3_finalize(m->st_get);
        sqlite3_finalize(m->st_update);
        sqlite3_finalize(m->st_delete);
        free_cols(m->cols, m->n_cols);
        free(m->qname);
        free(m->select_cols);
    }
    free(models);
}

static int compile_default(const ph_package *d, const ph_model *mo, ph_store_field *f,
                           const ph_field *fd)
{
    if (!(fd->flags & PH_HAS_DEFAULT))
        return 0;
    if (!fd->def)
        return ph_error_set(PH_ELOAD,
                            "package %s %s: model '%s', field '%s': PH_HAS_DEFAULT "
                            "without a default text; use PH_DEFAULT(\"...\")",
                            d->name, d->version, mo->name, fd->name);
    if (fd->type == PH_TIME && !strcmp(fd->def, "now")) {
        f->def_now = 1;
        return 0;
    }
    if (fd->type == PH_JSON)
        f->def = json_loads(fd->def, JSON_DECODE_ANY, NULL);
    else if (fd->type == PH_STR)
        f->def = json_string(fd->def);
    else
        f->def = coerce_string(fd->type, fd->def);
    if (!f->def)
        return ph_error_set(PH_ELOAD,
                            "package %s %s: model '%s', field '%s': default '%s' is not "
                            "%s",
                            d->name, d->version, mo->name, fd->name, fd->def,
                            fd->type == PH_JSON ? "valid JSON" : expected_text(fd->type));
    return 0;
}

static int find_model(const ph_package *d, const char *name)
{
    for (uint32_t i = 0; name && i < d->n_models; i++)
        if (d->models[i].name && !strcmp(d->models[i].name, name))
            return (int)i;
    return -1;
}

static int compile_field(const ph_package *d, const ph_model *mo, const ph_field *fd,
                         ph_store_field *f)
{
    const uint32_t known = PH_REQUIRED | PH_UNIQUE | PH_INDEXED | PH_HAS_DEFAULT;
    if (!valid_ident(fd->name))
        return ph_error_set(PH_ELOAD,
                            "package %s %s: model '%s': field name '%s' is not valid; "
                            "use lower-case letters, digits and _ (at most 63, starting "
                            "with a letter)",
                            d->name, d->version, mo->name, fd->name ? fd->name : "(null)");
    if (reserved_field(fd->name))
        return ph_error_set(PH_ELOAD,
                            "package %s %s: model '%s': field name '%s' is reserved "
                            "(id, created, updated are kept by the host; order, limit, "
                            "offset are list options); rename the field",
                            d->name, d->version, mo->name, fd->name);
    if (fd->type < PH_BOOL || fd->type > PH_REF)
        return ph_error_set(PH_ELOAD, "package %s %s: model '%s', field '%s': unknown type %d",
                            d->name, d->version, mo->name, fd->name, (int)fd->type);
    if (fd->flags & ~known)
        return ph_error_set(PH_ELOAD, "package %s %s: model '%s', field '%s': unknown flags 0x%x",
                            d->name, d->version, mo->name, fd->name, fd->flags & ~known);
    f->name = fd->name;
    f->type = fd->type;
    f->flags = fd->flags;
    f->ref = -1;
    if (fd->type == PH_REF && (f->ref = find_model(d, fd->ref)) < 0)
        return ph_error_set(PH_ELOAD,
                            "package %s %s: model '%s', field '%s' refers to model "
                            "'%s', which the package does not declare",
                            d->name, d->version, mo->name, fd->name, fd->ref ? fd->ref : "(null)");
    if (!(f->qname = quote_ident(fd->name)))
        return ph_error_set(PH_ENOMEM, "out of memory");
    return compile_default(d, mo, f, fd);
}

static int compile_model(const ph_package *d, const ph_model *mo, ph_store_model *m)
{
    static const char *const host_names[PH_STORE_HOST_COLS] = {"id", "created", "updated"};
    static const ph_type host_types[PH_STORE_HOST_COLS] = {PH_I64, PH_TIME, PH_TIME};
    if (!valid_ident(mo->name) || !strncmp(mo->name, "_ph_", 4))
        return ph_error_set(PH_ELOAD,
                            "package %s %s: model name '%s' is not valid; use "
                            "lower-case letters, digits and _ (at most 63, starting "
                            "with a letter)",
                            d->name, d->version, mo->name ? mo->name : "(null)");
    if (mo->n_fields && !mo->fields)
        return ph_error_set(PH_ELOAD, "package %s %s: model '%s' has n_fields %u but no fields",
                            d->name, d->version, mo->name, mo->n_fields);
    m->decl = mo;
    m->name = mo->name;
    m->n_cols = PH_STORE_HOST_COLS + mo->n_fields;
    if (!(m->qname = quote_ident(mo->name)) || !(m->cols = calloc(m->n_cols, sizeof *m->cols)))
        return ph_error_set(PH_ENOMEM, "out of memory");
    for (size_t i = 0; i < PH_STORE_HOST_COLS; i++) {
        m->cols[i] =
            (ph_store_field){.name = host_names[i], .type = host_types[i], .ref = -1, .host = 1};
        if (!(m->cols[i].qname = quote_ident(host_names[i])))
            return ph_error_set(PH_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < mo->n_fields; i++) {
        int rc = compile_field(d, mo, &mo->fields[i], &m->cols[PH_STORE_HOST_COLS + i]);
        if (rc)
            return rc;
        for (uint32_t k = 0; k < i; k++)
            if (!strcmp(mo->fields[k].name, mo->fields[i].name))
                return ph_error_set(PH_ELOAD,
                                    "package %s %s: model '%s' declares field '%s' "
                                    "twice",
                                    d->name, d->version, mo->name, mo->fields[i].name);
    }
    sqlite3_str *s = sqlite3_str_new(NULL);
    for (size_t i = 0; i < m->n_cols; i++)
        sqlite3_str_appendf(s, "%s%s", i ? "," : "", m->cols[i].qname);
    char *sel = sqlite3_str_finish(s);
    m->select_cols = sel ? strdup(sel) : NULL;
    sqlite3_free(sel);
    return m->select_cols ? 0 : ph_error_set(PH_ENOMEM, "out of memory");
}

int ph_store_models_compile(const ph_package *desc, ph_store_model **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!desc->n_models)
        return 0;
    if (!desc->models)
        return ph_error_set(PH_ELOAD, "package %s %s: n_models is %u but models is NULL",
                            desc->name, desc->version, desc->n_models);
    ph_store_model *models = calloc(desc->n_models, sizeof *models);
    if (!models)
        return ph_error_set(PH_ENOMEM, "out of memory");
    int rc = 0;
    for (uint32_t i = 0; i < desc->n_models && !rc; i++) {
        rc = compile_model(desc, &desc->models[i], &models[i]);
        for (uint32_t k = 0; !rc && k < i; k++)
            if (!strcmp(desc->models[k].name, desc->models[i].name))
                rc = ph_error_set(PH_ELOAD, "package %s %s declares model '%s' twice", desc->name,
                                  desc->version, desc->models[i].name);
    }
    if (rc) {
        ph_store_models_free(models, desc->n_models);
        return rc;
    }
    *out = models;
    *n_out = desc->n_models;
    return 0;
}

const ph_store_field *ph_store_model_col(const ph_store_model *m, const char *name)
{
    for (size_t i = 0; i < m->n_cols; i++)
        if (!strcmp(m->cols[i].name, name))
            return &m->cols[i];
    return NULL;
}

json_t *ph_store_model_schema(const ph_store_model *m)
{
    json_t *fields = json_array();
    for (size_t i = PH_STORE_HOST_COLS; fields && i < m->n_cols; i++) {
        const ph_store_field *f = &m->cols[i];
        json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:b}", "name", f->name, "type",
                              ph_store_type_name(f->type), "required",
                              (f->flags & PH_REQUIRED) != 0, "unique", (f->flags & PH_UNIQUE) != 0,
                              "indexed", (f->flags & PH_INDEXED) != 0);
        if (o && f->ref >= 0)
            json_object_set_new(o, "ref", json_string(m->decl->fields[i - PH_STORE_HOST_COLS].ref));
        if (o && (f->def || f->def_now))
            json_object_set_new(o, "default",
                                f->def_now ? json_string("now") : json_incref(f->def));
        json_array_append_new(fields, o);
    }
    return json_pack("{s:s, s:o}", "model", m->name, "fields", fields);
}

/* ------------------------------------------------------------------ */
/* Guarding SQL written by packages                                     */
/* ------------------------------------------------------------------ */

static int host_table(const char *name)
{
    return name && !strncmp(name, "_ph_", 4);
}

/* Pragmas whose argument names what to read (a table, an index), not a new setting. */
static int readonly_pragma(const char *name)
{
    static const char *const names[] = {
        "table_info",       "table_xinfo",       "index_list",      "index_info",  "index_xinfo",
        "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check", "table_list"};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(name, names[i]))
            return 1;
    return 0;
}

static int guard_cb(void *ud, int action, const char *a1, const char *a2, const char *db,
                    const char *trigger)
{
    ph_sql_guard *g = ud;
    (void)db;
    (void)trigger;
    switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
        g->denied = "ATTACH and DETACH are not allowed";
        return SQLITE_DENY;
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
        g->denied = "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT) is not allowed: the "
                    "host runs each query, and each chain of upgrade scripts, in one transaction";
        return SQLITE_DENY;
    case SQLITE_PRAGMA:
        if (a2 && !readonly_pragma(a1)) {
            g->denied = "setting pragmas is not allowed: the host owns the database settings";
            return SQLITE_DENY;
        }
        return SQLITE_OK;
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
    case SQLITE_CREATE_TABLE:
    case SQLITE_DROP_TABLE:
    case SQLITE_CREATE_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_ALTER_TABLE:
        if (host_table(a1) || host_table(a2)) {
            g->denied = "the host's _ph_ tables and indexes can only be changed by the host";
            return SQLITE_DENY;
        }
        return SQLITE_OK;
    default:
        return SQLITE_OK;
    }
}

void ph_store_guard_on(sqlite3 *db, ph_sql_guard *g)
{
    g->denied = NULL;
    sqlite3_set_authorizer(db, guard_cb, g);
}

void ph_store_guard_off(sqlite3 *db)
{
    sqlite3_set_authorizer(db, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Opening, querying                                                    */
/* ------------------------------------------------------------------ */

static int exec_pragmas(sqlite3 *db, const char *path)
{
    static const char *const pragmas = "PRAGMA journal_mode=WAL;"
                                       "PRAGMA synchronous=FULL;"
                                       "PRAGMA foreign_keys=ON;"
                                       "PRAGMA trusted_schema=OFF;";
    char *msg = NULL;
    if (sqlite3_exec(db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = ph_error_set(PH_ESQL,
                              "%s: cannot configure database: %s; is it a SQLite "
                              "database and is its directory writable?",
                              path, msg ? msg : "?");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

int ph_store_open(const char *path, ph_store **out)
{
    *out = NULL;
    ph_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return ph_error_set(PH_ENOMEM, "out of memory opening %s", path);
    }
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&s->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    pthread_cond_init(&s->gc_cv, NULL);
    /* The store's own mutex serialises the connection; SQLite's would be a second lock. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        int rc = ph_store_out_of_files(s->db)
                     ? ph_error_set(PH_EIO, "%s: cannot open database: %s", path, PH_EMFILE_HINT)
                     : ph_error_set(PH_ESQL, "%s: cannot open database: %s", path,
                                    s->db ? sqlite3_errmsg(s->db) : "out of memory");
        ph_store_close(s);
        return rc;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    int rc = exec_pragmas(s->db, path);
    if (rc) {
        ph_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void ph_store_close(ph_store *s)
{
    if (!s)
        return;
    ph_store_models_free(s->models, s->n_models);
    if (s->pending) /* never committed: the migration is undone */
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < 5; i++)
        sqlite3_finalize(s->gc_st[i]);
    sqlite3_close_v2(s->db);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->gc_cv);
    free(s->path);
    free(s);
}

sqlite3 *ph_store_db(ph_store *s)
{
    return s->db;
}
const char *ph_store_path(const ph_store *s)
{
    return s->path;
}
void ph_store_lock(ph_store *s)
{
    pthread_mutex_lock(&s->mu);
    /* Not inside a batch that has not committed: it would read or write through it. */
    while (!s->depth && s->gc_open)
        pthread_cond_wait(&s->gc_cv, &s->mu);
    s->depth++;
}
void ph_store_unlock(ph_store *s)
{
    s->depth--;
    pthread_mutex_unlock(&s->mu);
}

/* ---- group commit ---- */

/* A writer in the batch being filled: its leader fills in the commit's outcome. */
typedef struct gc_member {
    int done;
    int rc; /* 0, or PH_ESQL with `msg` */
    char msg[256];
    struct gc_member *next;
} gc_member;

enum { GC_BEGIN, GC_SAVEPOINT, GC_RELEASE, GC_ROLLBACK_TO, GC_COMMIT };

/* Runs one of the batch statements (prepared once: they run for every write). */
static int gc_exec(ph_store *s, int which)
{
    static const char *const sql[] = {"BEGIN IMMEDIATE", "SAVEPOINT ph_write", "RELEASE ph_write",
                                      "ROLLBACK TO ph_write", "COMMIT"};
    if (!s->gc_st[which] &&
        sqlite3_prepare_v2(s->db, sql[which], -1, &s->gc_st[which], NULL) != SQLITE_OK)
        return sqlite3_extended_errcode(s->db);
    int rc = sqlite3_step(s->gc_st[which]);
    sqlite3_reset(s->gc_st[which]);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* fn inside a savepoint: its failure undoes only its own changes. */
static int gc_run(ph_store *s, ph_store_write_fn fn, void *ud)
{
    int rc = gc_exec(s, GC_SAVEPOINT);
    if (rc != SQLITE_OK)
        return ph_error_set(PH_ESQL, "%s: cannot start a write: %s", s->path, sqlite3_errstr(rc));
    rc = fn(s, ud);
    if (rc) {
        gc_exec(s, GC_ROLLBACK_TO);
        gc_exec(s, GC_RELEASE);
        return rc;
    }
    int r = gc_exec(s, GC_RELEASE);
    if (r != SQLITE_OK) {
        gc_exec(s, GC_ROLLBACK_TO);
        gc_exec(s, GC_RELEASE);
        return ph_error_set(PH_ESQL, "%s: cannot finish a write: %s", s->path, sqlite3_errstr(r));
    }
    return 0;
}

/* The leader: lets the writers already waiting join, commits once for all, tells them. */
static void gc_commit(ph_store *s)
{
    /* Only those waiting now: a steady stream of new writers must not hold the commit back. */
    unsigned long target = s->gc_joined + (unsigned long)atomic_load(&s->gc_waiting);
    while (s->gc_joined < target && atomic_load(&s->gc_waiting) > 0)
        pthread_cond_wait(&s->gc_cv, &s->mu);
    s->gc_committing = 1;
    s->gc_batches++;
    int rc = gc_exec(s, GC_COMMIT);
    char msg[256] = "";
    if (rc != SQLITE_OK) {
        snprintf(msg, sizeof msg, "%s: the write could not be committed: %s", s->path,
                 sqlite3_errstr(rc));
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    for (gc_member *m = s->gc_members; m; m = m->next) {
        m->rc = rc == SQLITE_OK ? 0 : PH_ESQL;
        snprintf(m->msg, sizeof m->msg, "%s", msg);
        m->done = 1;
    }
    s->gc_members = NULL;
    s->gc_open = 0;
    s->gc_committing = 0;
    pthread_cond_broadcast(&s->gc_cv);
}

void ph_store_write_counts(ph_store *s, unsigned long *writes, unsigned long *batches)
{
    pthread_mutex_lock(&s->mu);
    *writes = s->gc_joined;
    *batches = s->gc_batches;
    pthread_mutex_unlock(&s->mu);
}

int ph_store_write(ph_store *s, ph_store_write_fn fn, void *ud)
{
    atomic_fetch_add(&s->gc_waiting, 1);
    pthread_mutex_lock(&s->mu);
    if (s->depth) { /* inside this thread's own use of the store: its transaction holds this */
        atomic_fetch_sub(&s->gc_waiting, 1);
        s->depth++;
        int rc = gc_run(s, fn, ud);
        s->depth--;
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    while (s->gc_committing) /* that batch is closed: this one joins the next */
        pthread_cond_wait(&s->gc_cv, &s->mu);
    int leader = !s->gc_open, rc = 0;
    if (leader) {
        if (s->pending) /* an uncommitted migration */
            rc = ph_error_set(PH_EBUSY, "%s: a migration holds the database", s->path);
        else if (!sqlite3_get_autocommit(s->db) && /* left open by a rollback that failed */
                 sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
            rc = ph_error_set(PH_ESQL, "%s: cannot start a write: %s", s->path,
                              sqlite3_errmsg(s->db));
        else if ((rc = gc_exec(s, GC_BEGIN)) != SQLITE_OK)
            rc = ph_error_set(PH_ESQL, "%s: cannot start a write: %s", s->path, sqlite3_errstr(rc));
        s->gc_open = rc == 0;
    }
    gc_member me = {0};
    s->depth++;
    if (!rc && !(rc = gc_run(s, fn, ud))) {
        me.next = s->gc_members; /* waits for the commit */
        s->gc_members = &me;
    }
    s->depth--;
    atomic_fetch_sub(&s->gc_waiting, 1);
    s->gc_joined++;
    pthread_cond_broadcast(&s->gc_cv); /* the leader counts who has joined */
    if (leader && s->gc_open)
        gc_commit(s);
    while (!rc && !me.done)
        pthread_cond_wait(&s->gc_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (!rc && me.rc)
        rc = ph_error_set(me.rc, "%s", me.msg);
    return rc;
}

ph_store_model *ph_store_models(ph_store *s, size_t *n)
{
    *n = s->n_models;
    return s->models;
}

static int bind_param(sqlite3_stmt *st, int i, json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        return sqlite3_bind_null(st, i);
    case JSON_TRUE:
        return sqlite3_bind_int(st, i, 1);
    case JSON_FALSE:
        return sqlite3_bind_int(st, i, 0);
    case JSON_INTEGER:
        return sqlite3_bind_int64(st, i, json_integer_value(v));
    case JSON_REAL:
        return sqlite3_bind_double(st, i, json_real_value(v));
    case JSON_STRING:
        return sqlite3_bind_text(st, i, json_string_value(v), (int)json_string_length(v),
                                 SQLITE_TRANSIENT);
    default: {
        char *text = ph_json_dumps(v, JSON_COMPACT);
        if (!text)
            return SQLITE_NOMEM;
        return sqlite3_bind_text(st, i, text, -1, free_text);
    }
    }
}

static json_t *column_value(sqlite3_stmt *st, int c)
{
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_INTEGER:
        return json_integer(sqlite3_column_int64(st, c));
    case SQLITE_FLOAT:
        return json_real(sqlite3_column_double(st, c));
    case SQLITE_NULL:
        return json_null();
    default: {
        json_t *v = json_stringn((const char *)sqlite3_column_text(st, c),
                                 (size_t)sqlite3_column_bytes(st, c));
        return v ? v : json_null();
    }
    }
}

/* Prepares exactly one statement of package SQL under the guard. */
static int prepare_guarded(ph_store *s, const char *sql, sqlite3_stmt **out)
{
    ph_sql_guard g;
    const char *tail = NULL;
    *out = NULL;
    ph_store_guard_on(s->db, &g);
    int prc = sqlite3_prepare_v2(s->db, sql, -1, out, &tail);
    ph_store_guard_off(s->db);
    if (prc != SQLITE_OK) {
        if (g.denied)
            return ph_error_set(PH_EPERM, "query refused: %s", g.denied);
        return ph_error_set(PH_ESQL, "SQL error: %s", sqlite3_errmsg(s->db));
    }
    if (!*out)
        return ph_error_set(PH_EARGS, "the query is empty; pass one SQL statement");
    sqlite3_stmt *next = NULL;
    while (tail && *tail == ' ')
        tail++;
    if (tail && *tail && sqlite3_prepare_v2(s->db, tail, -1, &next, NULL) == SQLITE_OK && next) {
        sqlite3_finalize(next);
        sqlite3_finalize(*out);
        *out = NULL;
        return ph_error_set(PH_EARGS,
                            "a query runs one statement; split '%.60s...' into "
                            "separate queries",
                            sql);
    }
    return 0;
}

int ph_store_query(ph_store *s, const char *sql, json_t *params, json_t **rows)
{
    sqlite3_stmt *st = NULL;
    json_t *result = NULL;
    int rc = 0;
    if (rows)
        *rows = NULL;
    ph_store_lock(s);
    if ((rc = prepare_guarded(s, sql, &st)))
        goto cleanup;
    if (params && !json_is_array(params)) {
        rc = ph_error_set(PH_EARGS, "SQL parameters must be a JSON array");
        goto cleanup;
    }
    size_t n = params ? json_array_size(params) : 0;
    if ((int)n != sqlite3_bind_parameter_count(st)) {
        rc = ph_error_set(PH_EARGS, "SQL statement takes %d parameters, %zu given",
                          sqlite3_bind_parameter_count(st), n);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        if (bind_param(st, (int)i + 1, json_array_get(params, i)) != SQLITE_OK) {
            rc = ph_error_set(PH_ESQL, "cannot bind parameter %zu: %s", i + 1,
                              sqlite3_errmsg(s->db));
            goto cleanup;
        }
    }
    result = json_array();
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = json_object();
        for (int c = 0; c < sqlite3_column_count(st); c++)
            json_object_set_new(row, sqlite3_column_name(st, c), column_value(st, c));
        json_array_append_new(result, row);
    }
    if (step != SQLITE_DONE) {
        rc = ph_error_set((step & 0xff) == SQLITE_CONSTRAINT ? PH_ECONFLICT : PH_ESQL,
                          "SQL error: %s", sqlite3_errmsg(s->db));
        goto cleanup;
    }
    if (rows) {
        *rows = result;
        result = NULL;
    }
cleanup:
    json_decref(result);
    sqlite3_finalize(st);
    ph_store_unlock(s);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Attaching an instance                                                */
/* ------------------------------------------------------------------ */

static int prepare_one(sqlite3 *db, sqlite3_str *s, sqlite3_stmt **out)
{
    char *sql = sqlite3_str_finish(s);
    int rc = 0;
    if (!sql)
        return ph_error_set(PH_ENOMEM, "out of memory");
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
        rc = ph_error_set(PH_ESQL, "cannot prepare %s: %s", sql, sqlite3_errmsg(db));
    sqlite3_free(sql);
    return rc;
}

/* The cached statements of a model; parameters are numbered like the columns (id = ?1). */
static int prepare_model(sqlite3 *db, ph_store_model *m)
{
    sqlite3_str *s = sqlite3_str_new(db);
    sqlite3_str_appendf(s, "INSERT INTO %s(", m->qname);
    for (size_t i = 1; i < m->n_cols; i++)
        sqlite3_str_appendf(s, "%s%s", i > 1 ? "," : "", m->cols[i].qname);
    sqlite3_str_appendall(s, ") VALUES(");
    for (size_t i = 1; i < m->n_cols; i++)
        sqlite3_str_appendf(s, "%s?%d", i > 1 ? "," : "", (int)i + 1);
    sqlite3_str_appendall(s, ")");
    int rc = prepare_one(db, s, &m->st_insert);
    if (rc)
        return rc;
    s = sqlite3_str_new(db);
    sqlite3_str_appendf(s, "SELECT %s FROM %s WHERE id=?1", m->select_cols, m->qname);
    if ((rc = prepare_one(db, s, &m->st_get)))
        return rc;
    s = sqlite3_str_new(db);
    sqlite3_str_appendf(s, "UPDATE %s SET ", m->qname);
    for (size_t i = 2; i < m->n_cols; i++)
        sqlite3_str_appendf(s, "%s%s=?%d", i > 2 ? "," : "", m->cols[i].qname, (int)i + 1);
    sqlite3_str_appendall(s, " WHERE id=?1");
    if ((rc = prepare_one(db, s, &m->st_update)))
        return rc;
    s = sqlite3_str_new(db);
    sqlite3_str_appendf(s, "DELETE FROM %s WHERE id=?1", m->qname);
    return prepare_one(db, s, &m->st_delete);
}

int ph_store_db_path(const char *data_dir, const char *instance, char **out)
{
    if (asprintf(out, "%s/%s/%s.db", data_dir, instance, instance) < 0) {
        *out = NULL;
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    return 0;
}

int ph_store_backup_dir(const char *data_dir, const char *instance, char **out)
{
    if (asprintf(out, "%s/backups/%s", data_dir, instance) < 0) {
        *out = NULL;
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    return 0;
}

int ph_store_out_of_files(sqlite3 *db)
{
    int e = db ? sqlite3_system_errno(db) : 0;
    return e == EMFILE || e == ENFILE;
}

/* One log line when the schema changed: what, from which version, the scripts, the backup. */
static void log_report(const char *instance, json_t *report)
{
    const char *action = json_string_value(json_object_get(report, "action"));
    json_t *changes = json_object_get(report, "changes");
    json_t *scripts = json_object_get(report, "scripts");
    if (!action || !json_array_size(changes))
        return;
    char *ch = ph_json_dumps(changes, JSON_COMPACT);
    char *sc = ph_json_dumps(scripts, JSON_COMPACT);
    const char *from = json_string_value(json_object_get(report, "from"));
    const char *backup = json_string_value(json_object_get(report, "backup"));
    ph_logf(PH_L_INFO, instance, "database %s%s%s -> %s: scripts %s, changes %s%s%s", action,
            from ? " " : "", from ? from : "", json_string_value(json_object_get(report, "to")),
            sc ? sc : "[]", ch ? ch : "[]", backup ? "; backup at " : "", backup ? backup : "");
    free(ch);
    free(sc);
}

static int open_migrated(const char *data_dir, const char *instance, const ph_manifest *m,
                         const ph_package *desc, int defer, ph_store **out)
{
    char *dir = NULL, *path = NULL, *bdir = NULL;
    ph_store *s = NULL;
    ph_store_model *models = NULL;
    size_t n_models = 0;
    json_t *report = NULL;
    int rc;
    *out = NULL;
    if ((rc = ph_store_models_compile(desc, &models, &n_models)))
        goto cleanup;
    if (asprintf(&dir, "%s/%s", data_dir, instance) < 0) {
        dir = NULL;
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = ph_store_db_path(data_dir, instance, &path)) ||
        (rc = ph_store_backup_dir(data_dir, instance, &bdir)) || (rc = ph_backup_mkdirs(dir)) ||
        (rc = ph_store_open(path, &s)))
        goto cleanup;
    ph_migrate_ctx mc = {.db = s->db,
                         .models = models,
                         .n_models = n_models,
                         .manifest = m,
                         .instance = instance,
                         .backup_dir = bdir,
                         .defer_commit = defer};
    if ((rc = ph_migrate_apply(&mc, &report)))
        goto cleanup;
    s->pending = defer;
    s->fk_off = mc.fk_off;
    for (size_t i = 0; i < n_models && !rc; i++)
        rc = prepare_model(s->db, &models[i]);
    if (rc)
        goto cleanup;
    log_report(instance, report);
    s->models = models;
    s->n_models = n_models;
    models = NULL;
    *out = s;
    s = NULL;
cleanup:
    ph_store_models_free(models, n_models);
    ph_store_close(s);
    json_decref(report);
    free(dir);
    free(path);
    free(bdir);
    return rc;
}

int ph_store_open_for(const char *data_dir, const char *instance, const ph_manifest *m,
                      const ph_package *desc, ph_store **out)
{
    return open_migrated(data_dir, instance, m, desc, 0, out);
}

int ph_store_open_uncommitted(const char *data_dir, const char *instance, const ph_manifest *m,
                              const ph_package *desc, ph_store **out)
{
    return open_migrated(data_dir, instance, m, desc, 1, out);
}

int ph_store_commit(ph_store *s)
{
    int rc = 0;
    ph_store_lock(s);
    if (s->pending && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = ph_error_set(PH_ESQL, "%s: cannot commit the schema migration: %s", s->path,
                          sqlite3_errmsg(s->db));
    if (!rc) {
        s->pending = 0;
        if (s->fk_off)
            sqlite3_exec(s->db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
        s->fk_off = 0;
    }
    ph_store_unlock(s);
    return rc;
}

int ph_store_attach(ph_instance *inst, const char *data_dir)
{
    return ph_store_open_for(data_dir, inst->name, inst->manifest, inst->module->desc,
                             &inst->store);
}

void ph_store_detach(ph_instance *inst)
{
    ph_store_close(inst->store);
    inst->store = NULL;
}

/* ------------------------------------------------------------------ */
/* Backup, purge, installed version                                     */
/* ------------------------------------------------------------------ */

/* Opens an existing instance database without creating or configuring it. */
static int open_existing(const char *data_dir, const char *instance, int flags, sqlite3 **db,
                         char **path)
{
    int rc;
    *db = NULL;
    if ((rc = ph_store_db_path(data_dir, instance, path)))
        return rc;
    if (access(*path, F_OK) != 0)
        return ph_error_set(PH_ENOTFOUND, "instance '%s' has no database at %s", instance, *path);
    if (sqlite3_open_v2(*path, db, flags, NULL) != SQLITE_OK) {
        rc = ph_error_set(PH_ESQL, "cannot open %s: %s", *path,
                          *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return rc;
    }
    sqlite3_busy_timeout(*db, 5000);
    return 0;
}

static int backup_kind(const char *data_dir, const char *instance, const char *kind, char **out)
{
    sqlite3 *db = NULL;
    char *path = NULL, *bdir = NULL;
    int rc = open_existing(data_dir, instance, SQLITE_OPEN_READWRITE, &db, &path);
    if (!rc && !(rc = ph_store_backup_dir(data_dir, instance, &bdir)))
        rc = ph_backup_write(db, bdir, instance, kind, out);
    sqlite3_close(db);
    free(path);
    free(bdir);
    return rc;
}

int ph_store_backup(const char *data_dir, const char *instance, char **out_path)
{
    *out_path = NULL;
    int rc = backup_kind(data_dir, instance, "manual", out_path);
    if (rc == PH_ENOTFOUND)
        ph_error_wrap("nothing to back up (the instance never ran with this data_dir)");
    return rc;
}

int ph_store_purge(const char *data_dir, const char *instance, char **out_backup)
{
    char *path = NULL, *dir = NULL;
    int rc;
    *out_backup = NULL;
    if ((rc = backup_kind(data_dir, instance, "purge", out_backup))) {
        if (rc == PH_ENOTFOUND)
            ph_error_wrap("nothing to purge");
        else
            ph_error_wrap("purge of instance '%s' stopped before deleting anything", instance);
        return rc;
    }
    if ((rc = ph_store_db_path(data_dir, instance, &path)))
        return rc;
    static const char *const suffixes[] = {"-wal", "-shm", ""};
    for (size_t i = 0; i < 3 && !rc; i++) {
        char *p = NULL;
        if (asprintf(&p, "%s%s", path, suffixes[i]) < 0)
            return ph_error_set(PH_ENOMEM, "out of memory");
        if (unlink(p) != 0 && errno != ENOENT)
            rc = ph_error_set(PH_EIO, "cannot delete %s: %s (the backup is at %s)", p,
                              ph_strerror(errno), *out_backup);
        free(p);
    }
    if (!rc && asprintf(&dir, "%s/%s", data_dir, instance) >= 0)
        rmdir(dir); /* kept if the package left other files there */
    free(dir);
    free(path);
    return rc;
}

int ph_store_installed_version(const char *data_dir, const char *instance, char **out)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *path = NULL;
    *out = NULL;
    int rc = open_existing(data_dir, instance, SQLITE_OPEN_READONLY, &db, &path);
    if (rc == PH_ENOTFOUND) {
        ph_error_clear();
        rc = 0;
        goto cleanup;
    }
    if (rc)
        goto cleanup;
    if (sqlite3_prepare_v2(db, "SELECT value FROM _ph_meta WHERE key='version'", -1, &st, NULL) !=
        SQLITE_OK)
        goto cleanup; /* no metadata: never installed */
    if (sqlite3_step(st) == SQLITE_ROW &&
        !(*out = strdup((const char *)sqlite3_column_text(st, 0))))
        rc = ph_error_set(PH_ENOMEM, "out of memory");
cleanup:
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    return rc;
}

static long long file_size(const char *path, const char *suffix)
{
    char *p = NULL;
    struct stat st;
    long long n = 0;
    if (asprintf(&p, "%s%s", path, suffix) >= 0 && stat(p, &st) == 0)
        n = (long long)st.st_size;
    free(p);
    return n;
}

/* {model: records} for every model recorded in _ph_models. */
static json_t *model_counts(sqlite3 *db)
{
    json_t *models = json_object();
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT name FROM _ph_models ORDER BY name", -1, &st, NULL) !=
        SQLITE_OK)
        return models; /* never installed: no models */
    while (models && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        char *sql = sqlite3_mprintf("SELECT count(*) FROM \"%w\"", name);
        sqlite3_stmt *c = NULL;
        if (sql && sqlite3_prepare_v2(db, sql, -1, &c, NULL) == SQLITE_OK &&
            sqlite3_step(c) == SQLITE_ROW)
            json_object_set_new(models, name, json_integer(sqlite3_column_int64(c, 0)));
        sqlite3_finalize(c);
        sqlite3_free(sql);
    }
    sqlite3_finalize(st);
    return models;
}

int ph_store_describe(const char *data_dir, const char *instance, json_t **out)
{
    sqlite3 *db = NULL;
    char *path = NULL, *version = NULL;
    *out = NULL;
    int rc = open_existing(data_dir, instance, SQLITE_OPEN_READONLY, &db, &path);
    if (!rc)
        rc = ph_store_installed_version(data_dir, instance, &version);
    if (!rc) {
        *out = json_pack("{s:s, s:s, s:I, s:s?, s:o}", "instance", instance, "path", path, "bytes",
                         (json_int_t)(file_size(path, "") + file_size(path, "-wal")), "version",
                         version, "models", model_counts(db));
        if (!*out)
            rc = ph_error_set(PH_ENOMEM, "out of memory");
    }
    sqlite3_close(db);
    free(path);
    free(version);
    return rc;
}
