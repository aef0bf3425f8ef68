#include "crud.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "log.h"
#include "store.h"

/* One CRUD call: the instance, its store, the model and the method name. */
typedef struct op {
    ph_instance *inst;
    ph_store *s;
    ph_store_model *m;
    const char *method;
} op;

static int op_init(op *o, void *ud, ph_instance *inst, const char *method)
{
    size_t n = 0;
    o->inst = inst;
    o->method = method;
    o->s = inst->store;
    o->m = NULL;
    if (!o->s)
        return ph_error_set(PH_ESTATE, "instance '%s' has no open database; is it running?",
                            inst->name);
    ph_store_model *models = ph_store_models(o->s, &n);
    size_t i = (size_t)(uintptr_t)ud;
    if (i >= n)
        return ph_error_set(PH_EINTERNAL,
                            "instance '%s': CRUD route for model #%zu, but the "
                            "database has %zu models",
                            inst->name, i, n);
    o->m = &models[i];
    return 0;
}

/* Prefixes the current error with the address "inst.model.method". */
static int wrap(const op *o, int rc)
{
    ph_error_wrap("%s.%s.%s", o->inst->name, o->m->name, o->method);
    return rc;
}

static int fail(const op *o, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(const op *o, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    ph_error_set(code, "%s.%s.%s: %s", o->inst->name, o->m->name, o->method,
                 msg ? msg : "out of memory");
    sqlite3_free(msg);
    return code;
}

static char *field_list(const ph_store_model *m)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    for (size_t i = 0; i < m->n_cols; i++)
        sqlite3_str_appendf(s, "%s%s", i ? ", " : "", m->cols[i].name);
    return sqlite3_str_finish(s);
}

static int unknown_field(const op *o, const char *what, const char *name)
{
    char *fields = field_list(o->m);
    int rc = fail(o, PH_EARGS, "unknown field '%s'%s; model '%s' has: %s", name, what, o->m->name,
                  fields ? fields : "?");
    sqlite3_free(fields);
    return rc;
}

/* ---- SQLite errors ---- */

/* "comment.note, tag.item": the fields of any model that refer to o->m. */
static char *referencing_fields(const op *o)
{
    size_t n = 0;
    ph_store_model *models = ph_store_models(o->s, &n);
    sqlite3_str *s = sqlite3_str_new(NULL);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < models[i].n_cols; k++)
            if (models[i].cols[k].ref >= 0 && &models[models[i].cols[k].ref] == o->m)
                sqlite3_str_appendf(s, "%s%s.%s", sqlite3_str_length(s) ? ", " : "", models[i].name,
                                    models[i].cols[k].name);
    return sqlite3_str_finish(s);
}

static int sql_error(const op *o, sqlite3 *db, int rc)
{
    const char *msg = sqlite3_errmsg(db);
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        const char *dot = strrchr(msg, '.');
        const ph_store_field *f = dot ? ph_store_model_col(o->m, dot + 1) : NULL;
        if (f)
            return fail(o, PH_ECONFLICT,
                        "field '%s' must be unique: another %s already has this "
                        "value",
                        f->name, o->m->name);
        return fail(o, PH_ECONFLICT, "%s", msg);
    }
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        char *refs = referencing_fields(o);
        int code = fail(o, PH_ECONFLICT,
                        "the %s is still referenced by other records (%s); "
                        "delete or change them first",
                        o->m->name, refs ? refs : "?");
        sqlite3_free(refs);
        return code;
    }
    if ((rc & 0xff) == SQLITE_BUSY)
        return fail(o, PH_EBUSY, "the database is locked by another process; retry");
    if ((rc & 0xff) == SQLITE_NOMEM)
        return fail(o, PH_ENOMEM, "out of memory");
    return fail(o, PH_ESQL, "storage error: %s", msg);
}

/* ---- transactions (nest when a hook calls back into the store) ---- */

static int tx_begin(sqlite3 *db, int *outer)
{
    *outer = sqlite3_get_autocommit(db);
    return sqlite3_exec(db, *outer ? "BEGIN IMMEDIATE" : "SAVEPOINT ph_crud", NULL, NULL, NULL);
}

static int tx_end(sqlite3 *db, int outer, int commit)
{
    if (commit)
        return sqlite3_exec(db, outer ? "COMMIT" : "RELEASE ph_crud", NULL, NULL, NULL);
    sqlite3_exec(db, outer ? "ROLLBACK" : "ROLLBACK TO ph_crud; RELEASE ph_crud", NULL, NULL, NULL);
    return SQLITE_OK;
}

/* ---- records ---- */

/* A record from the row under `st`, or NULL when memory runs out. */
static json_t *row_to_record(const ph_store_model *m, sqlite3_stmt *st)
{
    json_t *rec = json_object();
    /* keys are declared identifiers, checked at load: no need to re-validate them */
    for (size_t i = 0; rec && i < m->n_cols; i++) {
        if (json_object_set_new_nocheck(rec, m->cols[i].name,
                                        ph_store_column(st, (int)i, &m->cols[i]))) {
            json_decref(rec); /* a record missing a field would pass for a null field */
            return NULL;
        }
    }
    return rec;
}

/* The record under `st` as JSON text, key for key what dumping row_to_record's gives; 0 or -1. */
static int row_to_text(const ph_store_model *m, sqlite3_stmt *st, ph_json_buf *b)
{
    for (size_t i = 0; i < m->n_cols; i++) {
        const char *name = m->cols[i].name; /* a declared identifier: nothing to escape */
        size_t n = strlen(name);
        char *p = ph_json_buf_reserve(b, n + 4);
        if (!p)
            return -1;
        p[0] = i ? ',' : '{';
        p[1] = '"';
        memcpy(p + 2, name, n);
        p[n + 2] = '"';
        p[n + 3] = ':';
        b->len += n + 4;
        if (ph_store_column_text(b, st, (int)i, &m->cols[i]))
            return -1;
    }
    return ph_json_buf_put(b, m->n_cols ? "}" : "{}", m->n_cols ? 1 : 2);
}

/* json_object_set_new, a failure (out of memory) reported: a record missing a field is wrong. */
static int set_member(json_t *rec, const char *key, json_t *v)
{
    return json_object_set_new(rec, key, v) ? ph_error_set(PH_ENOMEM, "out of memory") : 0;
}

/* Reads record `id` into *out (NULL if it does not exist). Store locked. */
static int read_record(const op *o, int64_t id, json_t **out)
{
    sqlite3 *db = ph_store_db(o->s);
    sqlite3_stmt *st = o->m->st_get;
    *out = NULL;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = row_to_record(o->m, st);
    else if (rc != SQLITE_DONE)
        rc = sql_error(o, db, sqlite3_extended_errcode(db));
    sqlite3_reset(st);
    if (rc == SQLITE_ROW && !*out)
        return ph_error_set(PH_ENOMEM, "out of memory");
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : rc;
}

static int not_found(const op *o, int64_t id)
{
    return fail(o, PH_ENOTFOUND, "%s %lld does not exist; %s.%s.list shows the records", o->m->name,
                (long long)id, o->inst->name, o->m->name);
}

/* The id argument: {"id": N}, [N], or a bare number. */
static int get_id(const op *o, json_t *args, int64_t *id)
{
    json_t *v = json_is_object(args)  ? json_object_get(args, "id")
                : json_is_array(args) ? json_array_get(args, 0)
                                      : args;
    json_t *c = NULL;
    if (!v)
        return fail(o, PH_EARGS, "missing 'id'; pass the id of the %s", o->m->name);
    if (json_is_integer(v)) {
        *id = json_integer_value(v);
        return 0;
    }
    if (ph_store_coerce(&o->m->cols[0], NULL, v, &c) || !json_is_integer(c)) {
        json_decref(c);
        return fail(o, PH_EARGS, "'id' must be an integer");
    }
    *id = json_integer_value(c);
    json_decref(c);
    return 0;
}

/* Checks that every key of args is a settable declared field (besides `allow`). */
static int check_keys(const op *o, json_t *args, const char *allow)
{
    const char *key;
    json_t *v;
    json_object_foreach(args, key, v)
    {
        if (allow && !strcmp(key, allow))
            continue;
        const ph_store_field *f = ph_store_model_col(o->m, key);
        if (!f)
            return unknown_field(o, "", key);
        if (f->host)
            return fail(o, PH_EARGS, "field '%s' is kept by the host and cannot be set", key);
    }
    return 0;
}

/* Checks that a PH_REF value points to an existing record. Store locked. */
static int check_ref(const op *o, const ph_store_field *f, json_t *v)
{
    size_t n = 0;
    ph_store_model *models = ph_store_models(o->s, &n);
    if (f->ref < 0 || json_is_null(v))
        return 0;
    sqlite3 *db = ph_store_db(o->s);
    sqlite3_stmt *st = NULL;
    char *sql = sqlite3_mprintf("SELECT 1 FROM %s WHERE id=?1", models[f->ref].qname);
    int found = 0;
    if (sql && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, json_integer_value(v));
        found = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    sqlite3_free(sql);
    if (!found)
        return fail(o, PH_EARGS, "field '%s' refers to %s %lld, which does not exist", f->name,
                    models[f->ref].name, (long long)json_integer_value(v));
    return 0;
}

/* ---- hooks (package code) ---- */

static int run_validate(const op *o, const char *what, json_t *rec)
{
    if (!o->m->decl->validate)
        return 0;
    ph_error_clear();
    int rc = o->m->decl->validate(ph_instance_ctx(o->inst), what, (const ph_json *)rec);
    if (rc == 0)
        return 0;
    if (ph_error_last_code() == 0)
        fail(o, PH_EPACKAGE,
             "the %s was refused by the package's validate hook (it gave "
             "no reason)",
             o->m->name);
    /* A refusal is about the client's data (422, RFC 9110), unless the hook chose a status. */
    if (ph_error_last_code() == PH_EPACKAGE && !ph_error_chosen_http_status())
        ph_error_set_http_status(422);
    return ph_error_last_code();
}

static void run_after_write(const op *o, const char *what, json_t *rec)
{
    if (!o->m->decl->after_write)
        return;
    ph_error_clear();
    o->m->decl->after_write(ph_instance_ctx(o->inst), what, (const ph_json *)rec);
    ph_frame *f = ph_frame_current();
    if (ph_error_last_code() != 0) {
        /* The write is done; the caller still gets its record. */
        ph_logf(PH_L_WARN, o->inst->name, "%s.%s: after_write hook (%s) reported: %s", o->m->name,
                o->method, what, ph_error_last());
        ph_error_clear();
    }
    if (f && f->inst == o->inst)
        f->failed = 0;
}

/* ---- new ---- */

/* Builds the record to insert from args and defaults (no id yet). */
static int build_new(const op *o, json_t *args, int64_t now, json_t **out)
{
    json_t *rec = json_object();
    int rc = 0;
    *out = NULL;
    if (!rec)
        return ph_error_set(PH_ENOMEM, "out of memory");
    if ((rc = set_member(rec, "created", json_integer(now))) == 0)
        rc = set_member(rec, "updated", json_integer(now));
    for (size_t i = PH_STORE_HOST_COLS; i < o->m->n_cols && !rc; i++) {
        const ph_store_field *f = &o->m->cols[i];
        json_t *in = json_object_get(args, f->name), *v = NULL;
        if (!in && f->def_now)
            v = json_integer(now);
        else if (!in && f->def)
            v = json_incref(f->def);
        else if ((rc = ph_store_coerce(f, NULL, in, &v)))
            rc = wrap(o, rc);
        if (!rc)
            rc = set_member(rec, f->name, v);
    }
    if (rc) {
        json_decref(rec);
        return rc;
    }
    *out = rec;
    return 0;
}

static int bind_record(const op *o, sqlite3_stmt *st, json_t *rec, size_t first)
{
    for (size_t i = first; i < o->m->n_cols; i++) {
        const ph_store_field *f = &o->m->cols[i];
        if (ph_store_bind(st, (int)i + 1, f, json_object_get(rec, f->name)) != SQLITE_OK)
            return fail(o, PH_ENOMEM, "out of memory binding field '%s'", f->name);
    }
    return 0;
}

static int refs_ok(const op *o, json_t *rec)
{
    for (size_t i = PH_STORE_HOST_COLS; i < o->m->n_cols; i++) {
        int rc = check_ref(o, &o->m->cols[i], json_object_get(rec, o->m->cols[i].name));
        if (rc)
            return rc;
    }
    return 0;
}

static int insert(const op *o, json_t *rec)
{
    sqlite3 *db = ph_store_db(o->s);
    sqlite3_stmt *st = o->m->st_insert;
    int rc = refs_ok(o, rec);
    if (!rc)
        rc = bind_record(o, st, rec, 1);
    if (!rc) {
        int step = sqlite3_step(st);
        if (step != SQLITE_DONE)
            rc = sql_error(o, db, sqlite3_extended_errcode(db));
        else
            rc = set_member(rec, "id", json_integer(sqlite3_last_insert_rowid(db)));
    }
    sqlite3_reset(st);
    return rc;
}

typedef struct insert_job {
    const op *o;
    json_t *rec;
} insert_job;

static int insert_write(ph_store *s, void *ud)
{
    (void)s;
    insert_job *j = ud;
    return insert(j->o, j->rec);
}

static int crud_new(void *ud, ph_instance *inst, json_t *args, json_t **out)
{
    op o;
    json_t *rec = NULL;
    int rc = op_init(&o, ud, inst, "new");
    *out = NULL;
    if (rc)
        return rc;
    if (args && !json_is_object(args) && !json_is_null(args))
        return fail(&o, PH_EARGS, "pass the fields by name (a JSON object)");
    if ((rc = check_keys(&o, args, NULL)) || (rc = build_new(&o, args, ph_store_now_ms(), &rec)))
        return rc;
    if ((rc = run_validate(&o, "new", rec)))
        goto cleanup;
    /* group commit: concurrent new calls share one transaction and one fsync */
    insert_job job = {&o, rec};
    if ((rc = ph_store_write(o.s, insert_write, &job)))
        goto cleanup;
    /* Key order: id first, as get returns it. */
    json_t *ordered = json_object();
    for (size_t i = 0; ordered && i < o.m->n_cols && !rc; i++)
        rc = set_member(ordered, o.m->cols[i].name,
                        json_incref(json_object_get(rec, o.m->cols[i].name)));
    json_decref(rec);
    rec = ordered;
    if (!rc && !rec)
        rc = ph_error_set(PH_ENOMEM, "out of memory");
    if (rc)
        goto cleanup;
    run_after_write(&o, "new", rec);
    *out = rec;
    rec = NULL;
cleanup:
    json_decref(rec);
    return rc;
}

/* ---- get ---- */

static int crud_get(void *ud, ph_instance *inst, json_t *args, json_t **out)
{
    op o;
    int64_t id;
    int rc = op_init(&o, ud, inst, "get");
    *out = NULL;
    if (rc || (rc = get_id(&o, args, &id)))
        return rc;
    ph_store_lock(o.s);
    rc = read_record(&o, id, out);
    ph_store_unlock(o.s);
    if (!rc && !*out)
        rc = not_found(&o, id);
    return rc;
}

/* get for a caller that wants JSON text (HTTP): straight from the columns, no record built. */
static int crud_get_text(void *ud, ph_instance *inst, json_t *args, ph_json_buf *out)
{
    op o;
    int64_t id;
    int rc = op_init(&o, ud, inst, "get");
    if (rc || (rc = get_id(&o, args, &id)))
        return rc;
    size_t start = out->len;
    ph_store_lock(o.s);
    sqlite3 *db = ph_store_db(o.s);
    sqlite3_stmt *st = o.m->st_get;
    sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = row_to_text(o.m, st, out) ? ph_error_set(PH_ENOMEM, "out of memory") : 0;
    else if (step == SQLITE_DONE)
        rc = not_found(&o, id);
    else
        rc = sql_error(&o, db, sqlite3_extended_errcode(db));
    sqlite3_reset(st);
    ph_store_unlock(o.s);
    if (rc && !out->failed && out->p) {
        out->len = start; /* no half record */
        out->p[start] = 0;
    }
    return rc;
}

/* ---- set ---- */

static int merge(const op *o, json_t *rec, json_t *args)
{
    const char *key;
    json_t *in;
    json_object_foreach(args, key, in)
    {
        if (!strcmp(key, "id"))
            continue;
        const ph_store_field *f = ph_store_model_col(o->m, key);
        json_t *v = NULL;
        int rc = ph_store_coerce(f, NULL, in, &v);
        if (rc)
            return wrap(o, rc);
        if ((rc = set_member(rec, key, v)))
            return rc;
    }
    return 0;
}

/* Read-merge-validate-write of set, inside the transaction. */
static int set_locked(const op *o, int64_t id, json_t *args, json_t **out)
{
    sqlite3 *db = ph_store_db(o->s);
    json_t *rec = NULL;
    int rc = read_record(o, id, &rec);
    if (!rc && !rec)
        rc = not_found(o, id);
    if (!rc)
        rc = merge(o, rec, args);
    if (rc)
        goto cleanup;
    if ((rc = set_member(rec, "updated", json_integer(ph_store_now_ms()))) ||
        (rc = refs_ok(o, rec)) || (rc = run_validate(o, "set", rec)))
        goto cleanup;
    sqlite3_stmt *st = o->m->st_update;
    sqlite3_bind_int64(st, 1, id);
    if (!(rc = bind_record(o, st, rec, 2)) && sqlite3_step(st) != SQLITE_DONE)
        rc = sql_error(o, db, sqlite3_extended_errcode(db));
    sqlite3_reset(st);
cleanup:
    if (rc)
        json_decref(rec);
    else
        *out = rec;
    return rc;
}

/*
 * Runs a read-modify-write of one record (set, delete) in one transaction
 * under the store lock, then the after_write hook outside it.
 */
typedef int (*locked_write_fn)(const op *o, int64_t id, json_t *args, json_t **out);

static int write_in_tx(op *o, const char *what, locked_write_fn fn, int64_t id, json_t *args,
                       json_t **out)
{
    int outer, rc;
    ph_store_lock(o->s);
    sqlite3 *db = ph_store_db(o->s);
    if (tx_begin(db, &outer) != SQLITE_OK) {
        rc = sql_error(o, db, sqlite3_extended_errcode(db));
        goto unlock;
    }
    rc = fn(o, id, args, out);
    if (tx_end(db, outer, rc == 0) != SQLITE_OK) {
        rc = sql_error(o, db, sqlite3_extended_errcode(db));
        tx_end(db, outer, 0);
        json_decref(*out);
        *out = NULL;
    }
unlock:
    ph_store_unlock(o->s);
    if (!rc)
        run_after_write(o, what, *out);
    return rc;
}

static int crud_set(void *ud, ph_instance *inst, json_t *args, json_t **out)
{
    op o;
    int64_t id;
    int rc = op_init(&o, ud, inst, "set");
    *out = NULL;
    if (rc)
        return rc;
    if (!json_is_object(args))
        return fail(&o, PH_EARGS, "pass the id and the fields to change by name (a JSON object)");
    if ((rc = get_id(&o, args, &id)) || (rc = check_keys(&o, args, "id")))
        return rc;
    return write_in_tx(&o, "set", set_locked, id, args, out);
}

/* ---- delete ---- */

static int delete_locked(const op *o, int64_t id, json_t *args, json_t **out)
{
    (void)args;
    sqlite3 *db = ph_store_db(o->s);
    json_t *rec = NULL;
    int rc = read_record(o, id, &rec);
    if (!rc && !rec)
        rc = not_found(o, id);
    if (!rc)
        rc = run_validate(o, "delete", rec);
    if (!rc) {
        sqlite3_stmt *st = o->m->st_delete;
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sql_error(o, db, sqlite3_extended_errcode(db));
        sqlite3_reset(st);
    }
    if (rc)
        json_decref(rec);
    else
        *out = rec;
    return rc;
}

static int crud_delete(void *ud, ph_instance *inst, json_t *args, json_t **out)
{
    op o;
    int64_t id;
    int rc = op_init(&o, ud, inst, "delete");
    *out = NULL;
    if (rc || (rc = get_id(&o, args, &id)))
        return rc;
    return write_in_tx(&o, "delete", delete_locked, id, args, out);
}

/* ---- list and count ---- */

typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_LIKE } filter_op;

static const struct {
    const char *name;
    filter_op op;
} op_names[] = {{"eq", OP_EQ}, {"ne", OP_NE}, {"lt", OP_LT},  {"le", OP_LE},    {"lte", OP_LE},
                {"gt", OP_GT}, {"ge", OP_GE}, {"gte", OP_GE}, {"like", OP_LIKE}};
static const char *const op_sql[] = {"=", "<>", "<", "<=", ">", ">=", "LIKE"};

typedef struct query {
    sqlite3_str *where; /* " WHERE ..." or empty */
    sqlite3_str *order;
    json_t *binds; /* array of [field index, value] */
    int64_t limit, offset;
    int n_order; /* terms in order */
} query;

static int parse_op(const op *o, const char *field, const char *name, filter_op *out)
{
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
        if (!strcmp(op_names[i].name, name)) {
            *out = op_names[i].op;
            return 0;
        }
    return fail(o, PH_EARGS,
                "unknown filter operator '%s' for field '%s'; use eq, ne, lt, le, "
                "gt, ge or like",
                name, field);
}

static int add_cond(const op *o, query *q, const ph_store_field *f, filter_op fop, json_t *in)
{
    if (f->type == PH_JSON)
        return fail(o, PH_EARGS, "field '%s' holds JSON and cannot be filtered", f->name);
    if (fop == OP_LIKE && f->type != PH_STR)
        return fail(o, PH_EARGS, "'like' needs a text field; '%s' is %s", f->name,
                    ph_store_type_name(f->type));
    const char *joiner = sqlite3_str_length(q->where) ? " AND " : " WHERE ";
    if (json_is_null(in)) {
        if (fop != OP_EQ && fop != OP_NE)
            return fail(o, PH_EARGS, "field '%s': null can only be compared with eq or ne",
                        f->name);
        sqlite3_str_appendf(q->where, "%s%s IS %s", joiner, f->qname, fop == OP_EQ ? "" : "NOT");
        sqlite3_str_appendall(q->where, " NULL");
        return 0;
    }
    json_t *v = NULL;
    /* a filter value need not satisfy `required`; it only has to have the type */
    ph_store_field loose = *f;
    loose.flags &= ~PH_REQUIRED;
    if (fop == OP_LIKE ? !json_is_string(in) : ph_store_coerce(&loose, NULL, in, &v) != 0) {
        if (!v && fop == OP_LIKE)
            return fail(o, PH_EARGS, "filter on field '%s': 'like' takes a string pattern",
                        f->name);
        return wrap(o, PH_EARGS);
    }
    if (!v)
        v = json_incref(in);
    if (json_array_append_new(q->binds, json_pack("[I, o]", (json_int_t)(f - o->m->cols), v)))
        return ph_error_set(PH_ENOMEM, "out of memory");
    sqlite3_str_appendf(q->where, "%s%s %s ?%d", joiner, f->qname, op_sql[fop],
                        (int)json_array_size(q->binds));
    return 0;
}

/* "title", "title.gt", or "title": {"gt": ...}. */
static int add_filter(const op *o, query *q, const char *key, json_t *val)
{
    const char *dot = strchr(key, '.');
    char *name = dot ? strndup(key, (size_t)(dot - key)) : strdup(key);
    filter_op fop = OP_EQ;
    int rc = 0;
    if (!name)
        return ph_error_set(PH_ENOMEM, "out of memory");
    const ph_store_field *f = ph_store_model_col(o->m, name);
    if (!f)
        rc = unknown_field(o, " in filter", name);
    else if (dot)
        rc = parse_op(o, name, dot + 1, &fop) ? ph_error_last_code() : add_cond(o, q, f, fop, val);
    else if (json_is_object(val)) {
        const char *k;
        json_t *v;
        json_object_foreach(val, k, v)
        {
            if ((rc = parse_op(o, name, k, &fop)) || (rc = add_cond(o, q, f, fop, v)))
                break;
        }
    } else
        rc = add_cond(o, q, f, OP_EQ, val);
    free(name);
    return rc;
}

/* More terms than any model has columns cannot order better; SQLite's own cap is 2000. */
#define PH_CRUD_MAX_ORDER 64

static int add_order_item(const op *o, query *q, const char *item, size_t len)
{
    if (++q->n_order > PH_CRUD_MAX_ORDER)
        return fail(o, PH_EARGS, "'order' has more than %d terms; order by at most %d fields",
                    PH_CRUD_MAX_ORDER, PH_CRUD_MAX_ORDER);
    while (len && (*item == ' '))
        item++, len--;
    while (len && item[len - 1] == ' ')
        len--;
    int desc = 0;
    if (len && *item == '-') {
        desc = 1;
        item++, len--;
    }
    const char *sp = memchr(item, ' ', len);
    size_t nlen = sp ? (size_t)(sp - item) : len;
    char *name = strndup(item, nlen);
    if (!name)
        return ph_error_set(PH_ENOMEM, "out of memory");
    const ph_store_field *f = ph_store_model_col(o->m, name);
    int rc = f ? 0 : unknown_field(o, " in order", name);
    free(name);
    if (rc)
        return rc;
    if (sp) {
        const char *dir = sp;
        while (*dir == ' ')
            dir++;
        size_t dlen = len - (size_t)(dir - item);
        if (dlen == 4 && !strncasecmp(dir, "desc", 4))
            desc = !desc;
        else if (!(dlen == 3 && !strncasecmp(dir, "asc", 3)))
            return fail(o, PH_EARGS, "order direction must be asc or desc, got '%.*s'", (int)dlen,
                        dir);
    }
    sqlite3_str_appendf(q->order, "%s%s %s", sqlite3_str_length(q->order) ? ", " : " ORDER BY ",
                        f->qname, desc ? "DESC" : "ASC");
    return 0;
}

static int parse_order(const op *o, query *q, json_t *v)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *it;
        json_array_foreach(v, i, it)
        {
            if (!json_is_string(it))
                return fail(o, PH_EARGS, "'order' items must be strings like \"-created\"");
            int rc = parse_order(o, q, it);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (!json_is_string(v))
        return fail(o, PH_EARGS,
                    "'order' must be a field name such as \"title\", \"-created\" or "
                    "\"created desc\"");
    const char *s = json_string_value(v);
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        int rc = add_order_item(o, q, s, len);
        if (rc)
            return rc;
        if (!comma)
            return 0;
        s = comma + 1;
    }
}

static int parse_count(const op *o, const char *name, json_t *v, int64_t max, int64_t *out)
{
    ph_store_field f = {.name = name, .type = PH_I64, .ref = -1};
    json_t *c = NULL;
    int bad = ph_store_coerce(&f, NULL, v, &c) != 0 || !json_is_integer(c) ||
              json_integer_value(c) < 0 || json_integer_value(c) > max;
    if (!bad)
        *out = json_integer_value(c);
    json_decref(c);
    if (bad)
        return fail(o, PH_EARGS, "'%s' must be an integer from 0 to %lld", name, (long long)max);
    return 0;
}

static int parse_query(const op *o, json_t *args, int paging, query *q)
{
    const char *key;
    json_t *v;
    q->limit = PH_CRUD_DEFAULT_LIMIT;
    q->offset = 0;
    if (args && !json_is_object(args) && !json_is_null(args))
        return fail(o, PH_EARGS, "pass filters and options by name (a JSON object)");
    json_object_foreach(args, key, v)
    {
        int rc = 0;
        int option = !strcmp(key, "order") || !strcmp(key, "limit") || !strcmp(key, "offset");
        if (option && !paging)
            rc = fail(o, PH_EARGS, "'%s' is a list option; count takes filters only", key);
        else if (!strcmp(key, "order"))
            rc = parse_order(o, q, v);
        else if (!strcmp(key, "limit"))
            rc = parse_count(o, "limit", v, PH_CRUD_MAX_LIMIT, &q->limit);
        else if (!strcmp(key, "offset"))
            rc = parse_count(o, "offset", v, INT64_MAX, &q->offset);
        else
            rc = add_filter(o, q, key, v);
        if (rc)
            return rc;
    }
    return 0;
}

static int bind_query(const op *o, sqlite3_stmt *st, const query *q)
{
    size_t i;
    json_t *b;
    json_array_foreach(q->binds, i, b)
    {
        const ph_store_field *f = &o->m->cols[json_integer_value(json_array_get(b, 0))];
        json_t *v = json_array_get(b, 1);
        int rc = json_is_string(v) && f->type == PH_STR
                     ? sqlite3_bind_text(st, (int)i + 1, json_string_value(v), -1, SQLITE_STATIC)
                     : ph_store_bind(st, (int)i + 1, f, v);
        if (rc != SQLITE_OK)
            return fail(o, PH_ENOMEM, "out of memory binding the filter on '%s'", f->name);
    }
    return 0;
}

static int run_count(const op *o, const query *q, int64_t *total)
{
    sqlite3 *db = ph_store_db(o->s);
    sqlite3_stmt *st = NULL;
    char *sql = sqlite3_mprintf("SELECT count(*) FROM %s%s", o->m->qname,
                                sqlite3_str_value(q->where) ? sqlite3_str_value(q->where) : "");
    int rc = 0;
    if (!sql)
        rc = ph_error_set(PH_ENOMEM, "out of memory");
    else if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        rc = sql_error(o, db, sqlite3_extended_errcode(db));
    else if (!(rc = bind_query(o, st, q))) {
        if (sqlite3_step(st) == SQLITE_ROW)
            *total = sqlite3_column_int64(st, 0);
        else
            rc = sql_error(o, db, sqlite3_extended_errcode(db));
    }
    sqlite3_finalize(st);
    sqlite3_free(sql);
    return rc;
}

static int run_select(const op *o, const query *q, json_t *items)
{
    sqlite3 *db = ph_store_db(o->s);
    sqlite3_stmt *st = NULL;
    const char *order = sqlite3_str_value(q->order);
    char *sql = sqlite3_mprintf(
        "SELECT %s FROM %s%s%s%s id ASC LIMIT %lld OFFSET %lld", o->m->select_cols, o->m->qname,
        sqlite3_str_value(q->where) ? sqlite3_str_value(q->where) : "", order ? order : " ORDER BY",
        order ? "," : "", (long long)q->limit, (long long)q->offset);
    int rc = 0, step;
    if (!sql) {
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = sql_error(o, db, sqlite3_extended_errcode(db));
        goto cleanup;
    }
    if ((rc = bind_query(o, st, q)))
        goto cleanup;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (json_array_append_new(items, row_to_record(o->m, st))) {
            rc = ph_error_set(PH_ENOMEM, "out of memory");
            goto cleanup;
        }
    }
    if (step != SQLITE_DONE)
        rc = sql_error(o, db, sqlite3_extended_errcode(db));
cleanup:
    sqlite3_finalize(st);
    sqlite3_free(sql);
    return rc;
}

static void query_free(query *q)
{
    sqlite3_free(sqlite3_str_finish(q->where));
    sqlite3_free(sqlite3_str_finish(q->order));
    json_decref(q->binds);
}

/* list (paging = 1) and count (paging = 0). */
static int list_or_count(void *ud, ph_instance *inst, json_t *args, json_t **out, int paging)
{
    op o;
    query q = {sqlite3_str_new(NULL), sqlite3_str_new(NULL), json_array(), 0, 0, 0};
    json_t *items = json_array();
    int64_t total = 0;
    int outer = 0, began = 0;
    int rc = op_init(&o, ud, inst, paging ? "list" : "count");
    *out = NULL;
    if (rc || (rc = parse_query(&o, args, paging, &q)))
        goto cleanup;
    /* A builder that ran out of memory must not drop a filter (list everything) or a bind. */
    if (!items || !q.binds || sqlite3_str_errcode(q.where) || sqlite3_str_errcode(q.order)) {
        rc = ph_error_set(PH_ENOMEM, "out of memory");
        goto cleanup;
    }
    ph_store_lock(o.s);
    sqlite3 *db = ph_store_db(o.s);
    /* one read transaction, so items and total agree */
    if (paging && (outer = sqlite3_get_autocommit(db)))
        began = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    rc = run_count(&o, &q, &total);
    if (!rc && paging && q.limit > 0)
        rc = run_select(&o, &q, items);
    if (began)
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    ph_store_unlock(o.s);
    if (rc)
        goto cleanup;
    *out = paging ? json_pack("{s:O, s:I, s:I, s:I}", "items", items, "total", (json_int_t)total,
                              "limit", (json_int_t)q.limit, "offset", (json_int_t)q.offset)
                  : json_integer(total);
    if (!*out)
        rc = ph_error_set(PH_ENOMEM, "out of memory");
cleanup:
    json_decref(items);
    query_free(&q);
    return rc;
}

static int crud_list(void *ud, ph_instance *inst, json_t *args, json_t **out)
{
    return list_or_count(ud, inst, args, out, 1);
}

static int crud_count(void *ud, ph_instance *inst, json_t *args, json_t **out)
{
    return list_or_count(ud, inst, args, out, 0);
}

/* ---- routes ---- */

static const ph_arg id_args[] = {{"id", PH_I64}};
static const ph_arg list_args[] = {{"order", PH_STR}, {"limit", PH_I64}, {"offset", PH_I64}};

static const struct {
    const char *name;
    ph_native_fn fn;
    const ph_arg *args;
    uint32_t n_args;
    ph_type ret;
    const char *doc;
} methods[] = {
    {"new", crud_new, NULL, 0, PH_JSON,
     "Creates a record from its fields; returns it with its id."},
    {"get", crud_get, id_args, 1, PH_JSON, "Returns the record with this id."},
    {"set", crud_set, id_args, 1, PH_JSON,
     "Changes the given fields of the record with this id; returns the record."},
    {"delete", crud_delete, id_args, 1, PH_JSON,
     "Deletes the record with this id; returns it as it was."},
    {"list", crud_list, list_args, 3, PH_JSON,
     "Records matching the filters (field=value, field.op=value with op eq ne lt le gt ge "
     "like), ordered and paged: {items, total, limit, offset}."},
    {"count", crud_count, NULL, 0, PH_I64, "Number of records matching the filters."},
};

int ph_crud_add_routes(ph_routes *t, ph_instance *inst)
{
    const ph_package *d = inst->module->desc;
    if (inst->manifest && inst->manifest->disable_crud)
        return 0;
    for (uint32_t i = 0; i < d->n_models; i++) {
        const ph_model *m = &d->models[i];
        if (m->flags & PH_NO_CRUD)
            continue;
        for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
            int rc = ph_routes_add_native(t, m->name, methods[k].name, methods[k].args,
                                          methods[k].n_args, methods[k].ret, 0, methods[k].doc, m,
                                          methods[k].fn, (void *)(uintptr_t)i);
            if (rc)
                return rc;
        }
        int rc = ph_routes_set_text(t, m->name, "get", crud_get_text);
        if (rc)
            return rc;
    }
    return 0;
}

int ph_crud_call(ph_instance *inst, const char *model, const char *method, json_t *args,
                 json_t **out)
{
    const ph_package *d = inst->module->desc;
    *out = NULL;
    for (uint32_t i = 0; i < d->n_models; i++) {
        if (strcmp(d->models[i].name, model) != 0)
            continue;
        for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
            if (strcmp(methods[k].name, method) != 0)
                continue;
            ph_frame f;
            ph_frame_push(&f, inst);
            int rc = methods[k].fn((void *)(uintptr_t)i, inst, args, out);
            ph_frame_pop(&f);
            return rc;
        }
        return ph_error_set(PH_ENOTFOUND,
                            "model '%s' has no method '%s'; use new, get, set, "
                            "delete, list or count",
                            model, method);
    }
    return ph_error_set(PH_ENOTFOUND, "instance '%s' has no model '%s'", inst->name, model);
}
