#include "interface.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ffi_call.h"

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

static const ph_actor *find_actor(const ph_package *p, const char *name)
{
    for (uint32_t i = 0; i < p->n_actors; i++)
        if (strcmp(p->actors[i].name, name) == 0)
            return &p->actors[i];
    return NULL;
}

static const ph_method *find_method(const ph_actor *a, const char *name)
{
    for (uint32_t i = 0; i < a->n_methods; i++)
        if (strcmp(a->methods[i].name, name) == 0)
            return &a->methods[i];
    return NULL;
}

static const ph_model *find_model(const ph_package *p, const char *name)
{
    for (uint32_t i = 0; i < p->n_models; i++)
        if (strcmp(p->models[i].name, name) == 0)
            return &p->models[i];
    return NULL;
}

static const ph_field *find_field(const ph_model *m, const char *name)
{
    for (uint32_t i = 0; i < m->n_fields; i++)
        if (strcmp(m->fields[i].name, name) == 0)
            return &m->fields[i];
    return NULL;
}

static void diff_method(diff *d, const char *actor, const ph_method *o, const ph_method *n)
{
    if (o->ret != n->ret)
        add(d, "method '%s.%s' now returns %s (was %s)", actor, o->name, ph_type_name(n->ret),
            ph_type_name(o->ret));
    if ((n->flags & PH_ADMIN) && !(o->flags & PH_ADMIN))
        add(d, "method '%s.%s' now needs the admin token", actor, o->name);
    if (o->n_args != n->n_args) {
        add(d, "method '%s.%s' now takes %u parameter(s) (was %u)", actor, o->name, n->n_args,
            o->n_args);
        return;
    }
    for (uint32_t i = 0; i < o->n_args; i++) {
        if (strcmp(o->args[i].name, n->args[i].name) != 0)
            add(d, "method '%s.%s': parameter %u is now '%s' (was '%s')", actor, o->name, i + 1,
                n->args[i].name, o->args[i].name);
        else if (o->args[i].type != n->args[i].type)
            add(d, "method '%s.%s': parameter '%s' is now %s (was %s)", actor, o->name,
                o->args[i].name, ph_type_name(n->args[i].type), ph_type_name(o->args[i].type));
    }
}

static void diff_actors(diff *d, const ph_package *o, const ph_package *n)
{
    for (uint32_t i = 0; i < o->n_actors; i++) {
        const ph_actor *oa = &o->actors[i], *na = find_actor(n, oa->name);
        if (!na) {
            add(d, "removed actor '%s'", oa->name);
            continue;
        }
        for (uint32_t k = 0; k < oa->n_methods; k++) {
            const ph_method *nm = find_method(na, oa->methods[k].name);
            if (!nm)
                add(d, "removed method '%s.%s'", oa->name, oa->methods[k].name);
            else
                diff_method(d, oa->name, &oa->methods[k], nm);
        }
    }
}

static void diff_models(diff *d, const ph_package *o, const ph_package *n)
{
    for (uint32_t i = 0; i < o->n_models; i++) {
        const ph_model *om = &o->models[i], *nm = find_model(n, om->name);
        if (!nm) {
            add(d, "removed model '%s'", om->name);
            continue;
        }
        if (!(om->flags & PH_NO_CRUD) && (nm->flags & PH_NO_CRUD))
            add(d, "model '%s' no longer has its CRUD actor", om->name);
        for (uint32_t k = 0; k < om->n_fields; k++) {
            const ph_field *of = &om->fields[k], *nf = find_field(nm, of->name);
            if (!nf)
                add(d, "removed field '%s.%s'", om->name, of->name);
            else if (nf->type != of->type)
                add(d, "field '%s.%s' is now %s (was %s)", om->name, of->name,
                    ph_type_name(nf->type), ph_type_name(of->type));
            else if ((nf->flags & PH_REQUIRED) && !(of->flags & PH_REQUIRED))
                add(d, "field '%s.%s' is now required", om->name, of->name);
        }
    }
}

int ph_interface_diff(const ph_package *older, const ph_package *newer, char **text)
{
    diff d = {sqlite3_str_new(NULL), 0};
    if (text)
        *text = NULL;
    diff_actors(&d, older, newer);
    diff_models(&d, older, newer);
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
