#include "interface.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ffi_call.h"

/* ---- the interface as data ---- */

/*
 * Every builder returns NULL when any part could not be allocated: an
 * interface with a part missing would read as a breaking change.
 */
static json_t *method_json(const ph_method *m)
{
    json_t *args = json_array();
    for (uint32_t i = 0; args && i < m->n_args; i++)
        if (json_array_append_new(
                args, json_pack("[ss]", m->args[i].name, ph_type_name(m->args[i].type)))) {
            json_decref(args);
            args = NULL;
        }
    return args ? json_pack("{s:s, s:o, s:b}", "result", ph_type_name(m->ret), "params", args,
                            "admin", (m->flags & PH_ADMIN) != 0)
                : NULL;
}

static json_t *model_json(const ph_model *m)
{
    json_t *fields = json_object();
    for (uint32_t i = 0; fields && i < m->n_fields; i++)
        if (json_object_set_new(fields, m->fields[i].name,
                                json_pack("{s:s, s:b}", "type", ph_type_name(m->fields[i].type),
                                          "required", (m->fields[i].flags & PH_REQUIRED) != 0))) {
            json_decref(fields);
            fields = NULL;
        }
    return fields ? json_pack("{s:o, s:b}", "fields", fields, "crud", !(m->flags & PH_NO_CRUD))
                  : NULL;
}

static json_t *actor_json(const ph_actor *a)
{
    json_t *methods = json_object();
    for (uint32_t k = 0; methods && k < a->n_methods; k++)
        if (json_object_set_new(methods, a->methods[k].name, method_json(&a->methods[k]))) {
            json_decref(methods);
            methods = NULL;
        }
    return methods;
}

json_t *ph_interface_json(const ph_package *d)
{
    json_t *actors = json_object(), *models = json_object();
    int bad = !actors || !models;
    for (uint32_t i = 0; !bad && i < d->n_actors; i++)
        bad = json_object_set_new(actors, d->actors[i].name, actor_json(&d->actors[i])) != 0;
    for (uint32_t i = 0; !bad && i < d->n_models; i++)
        bad = json_object_set_new(models, d->models[i].name, model_json(&d->models[i])) != 0;
    if (bad) {
        json_decref(actors);
        json_decref(models);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "actors", actors, "models", models);
}

/* ---- comparing two ---- */

typedef struct diff {
    sqlite3_str *s;
    int n;
} diff;

static void add(diff *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(diff *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (d->n++)
        sqlite3_str_appendall(d->s, "; ");
    sqlite3_str_vappendf(d->s, fmt, ap);
    va_end(ap);
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "?";
}

static void diff_method(diff *d, const char *actor, const char *name, const json_t *o,
                        const json_t *n)
{
    if (strcmp(str(o, "result"), str(n, "result")) != 0)
        add(d, "method '%s.%s' now returns %s (was %s)", actor, name, str(n, "result"),
            str(o, "result"));
    if (json_is_true(json_object_get(n, "admin")) && !json_is_true(json_object_get(o, "admin")))
        add(d, "method '%s.%s' now needs the admin token", actor, name);
    const json_t *op = json_object_get(o, "params"), *np = json_object_get(n, "params");
    if (json_array_size(op) != json_array_size(np)) {
        add(d, "method '%s.%s' now takes %lld parameter(s) (was %lld)", actor, name,
            (long long)json_array_size(np), (long long)json_array_size(op));
        return;
    }
    for (size_t i = 0; i < json_array_size(op); i++) {
        const char *on = json_string_value(json_array_get(json_array_get(op, i), 0));
        const char *ot = json_string_value(json_array_get(json_array_get(op, i), 1));
        const char *nn = json_string_value(json_array_get(json_array_get(np, i), 0));
        const char *nt = json_string_value(json_array_get(json_array_get(np, i), 1));
        if (!on || !ot || !nn || !nt)
            continue;
        if (strcmp(on, nn) != 0)
            add(d, "method '%s.%s': parameter %lld is now '%s' (was '%s')", actor, name,
                (long long)i + 1, nn, on);
        else if (strcmp(ot, nt) != 0)
            add(d, "method '%s.%s': parameter '%s' is now %s (was %s)", actor, name, on, nt, ot);
    }
}

static void diff_actors(diff *d, const json_t *o, const json_t *n)
{
    const char *actor, *method;
    json_t *om, *ometh;
    json_object_foreach((json_t *)o, actor, om)
    {
        const json_t *nm = json_object_get(n, actor);
        if (!nm) {
            add(d, "removed actor '%s'", actor);
            continue;
        }
        json_object_foreach(om, method, ometh)
        {
            const json_t *nmeth = json_object_get(nm, method);
            if (!nmeth)
                add(d, "removed method '%s.%s'", actor, method);
            else
                diff_method(d, actor, method, ometh, nmeth);
        }
    }
}

static void diff_models(diff *d, const json_t *o, const json_t *n)
{
    const char *model, *field;
    json_t *om, *of;
    json_object_foreach((json_t *)o, model, om)
    {
        const json_t *nm = json_object_get(n, model);
        if (!nm) {
            add(d, "removed model '%s'", model);
            continue;
        }
        if (json_is_true(json_object_get(om, "crud")) && !json_is_true(json_object_get(nm, "crud")))
            add(d, "model '%s' no longer has its CRUD actor", model);
        const json_t *nfields = json_object_get(nm, "fields");
        json_object_foreach(json_object_get(om, "fields"), field, of)
        {
            const json_t *nf = json_object_get(nfields, field);
            if (!nf)
                add(d, "removed field '%s.%s'", model, field);
            else if (strcmp(str(of, "type"), str(nf, "type")) != 0)
                add(d, "field '%s.%s' is now %s (was %s)", model, field, str(nf, "type"),
                    str(of, "type"));
            else if (json_is_true(json_object_get(nf, "required")) &&
                     !json_is_true(json_object_get(of, "required")))
                add(d, "field '%s.%s' is now required", model, field);
        }
    }
}

int ph_interface_diff_json(const json_t *older, const json_t *newer, int with_models, char **text)
{
    diff d = {sqlite3_str_new(NULL), 0};
    if (text)
        *text = NULL;
    diff_actors(&d, json_object_get(older, "actors"), json_object_get(newer, "actors"));
    if (with_models)
        diff_models(&d, json_object_get(older, "models"), json_object_get(newer, "models"));
    char *t = sqlite3_str_finish(d.s);
    if (d.n && !t)
        return ph_error_set(PH_ENOMEM, "out of memory");
    if (d.n && text && !(*text = strdup(t))) {
        sqlite3_free(t);
        return ph_error_set(PH_ENOMEM, "out of memory");
    }
    sqlite3_free(t);
    return d.n;
}

int ph_interface_diff(const ph_package *older, const ph_package *newer, char **text)
{
    json_t *o = ph_interface_json(older), *n = ph_interface_json(newer);
    int rc =
        o && n ? ph_interface_diff_json(o, n, 1, text) : ph_error_set(PH_ENOMEM, "out of memory");
    json_decref(o);
    json_decref(n);
    return rc;
}

int ph_interface_must_keep(const ph_semver *older, const ph_semver *newer)
{
    if (ph_semver_cmp(newer, older) < 0)
        return 0; /* going back: the ranges of dependents decide */
    if (older->major != newer->major)
        return 0;
    return !(older->major == 0 && older->minor != newer->minor);
}
