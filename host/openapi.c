#include "openapi.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "http.h"

json_t *ph_openapi_type_schema(ph_type t)
{
    switch (t) {
    case PH_VOID:
        return json_pack("{s:s}", "type", "null");
    case PH_BOOL:
        return json_pack("{s:s}", "type", "boolean");
    case PH_I64:
        return json_pack("{s:s,s:s}", "type", "integer", "format", "int64");
    case PH_F64:
        return json_pack("{s:s,s:s}", "type", "number", "format", "double");
    case PH_STR:
        return json_pack("{s:s}", "type", "string");
    case PH_TIME:
        return json_pack("{s:s,s:s,s:s}", "type", "integer", "format", "int64", "description",
                         "Unix time in milliseconds");
    case PH_REF:
        return json_pack("{s:s,s:s,s:s}", "type", "integer", "format", "int64", "description",
                         "id of a record of another model");
    case PH_JSON:
    default:
        return json_object(); /* any JSON value */
    }
}

typedef struct build {
    ph_host *host;
    json_t *paths;
    json_t *schemas;
    bool oom;
} build;

static void check(build *b, int rc)
{
    if (rc)
        b->oom = true;
}

/* The operation object at paths[path][verb], created on first use (borrowed). */
static json_t *operation(build *b, const char *path, const char *verb)
{
    json_t *item = json_object_get(b->paths, path);
    if (!item) {
        item = json_object();
        check(b, json_object_set_new(b->paths, path, item));
        if (!json_object_get(b->paths, path))
            return NULL;
    }
    json_t *op = json_object();
    check(b, json_object_set_new(item, verb, op));
    return json_object_get(item, verb);
}

static json_t *ref(const char *fmt, const char *a, const char *c)
{
    char *s = NULL;
    if (asprintf(&s, fmt, a, c) < 0)
        return NULL;
    json_t *j = json_pack("{s:s}", "$ref", s);
    free(s);
    return j;
}

static json_t *args_schema(const ph_arg *args, uint32_t n)
{
    json_t *props = json_object(), *req = json_array();
    for (uint32_t i = 0; i < n; i++) {
        json_object_set_new(props, args[i].name, ph_openapi_type_schema(args[i].type));
        json_array_append_new(req, json_string(args[i].name));
    }
    return json_pack("{s:s,s:o,s:o,s:b}", "type", "object", "properties", props, "required", req,
                     "additionalProperties", 0);
}

/* `s` that also admits null (JSON Schema 2020-12, as OpenAPI 3.1 uses it). */
static json_t *nullable(json_t *s)
{
    json_t *type = json_object_get(s, "type"), *one = json_object_get(s, "oneOf");
    if (json_is_string(type))
        json_object_set_new(s, "type", json_pack("[s,s]", json_string_value(type), "null"));
    else if (json_is_array(one))
        json_array_append_new(one, json_pack("{s:s}", "type", "null"));
    return s; /* neither: any value, null included */
}

/* What a client may send for a field: a time also as RFC 3339 text. */
static json_t *input_schema(ph_type t)
{
    if (t != PH_TIME)
        return ph_openapi_type_schema(t);
    return json_pack("{s:[o,{s:s,s:s}]}", "oneOf", ph_openapi_type_schema(PH_TIME), "type",
                     "string", "format", "date-time");
}

/*
 * Record schema of a model. A record carries every field, null where it has
 * no value; `input` is what a client sends to create (no host columns, null
 * or absent for an optional field); `all_optional` what it sends to change.
 */
static json_t *model_schema(const ph_model *m, bool input, bool all_optional)
{
    json_t *props = json_object(), *req = json_array();
    if (!input) { /* the columns the host keeps */
        json_object_set_new(props, "id", ph_openapi_type_schema(PH_I64));
        json_object_set_new(props, "created", ph_openapi_type_schema(PH_TIME));
        json_object_set_new(props, "updated", ph_openapi_type_schema(PH_TIME));
        json_array_append_new(req, json_string("id"));
        json_array_append_new(req, json_string("created"));
        json_array_append_new(req, json_string("updated"));
    }
    for (uint32_t i = 0; i < m->n_fields; i++) {
        const ph_field *f = &m->fields[i];
        bool required = (f->flags & PH_REQUIRED) != 0;
        json_t *s = input ? input_schema(f->type) : ph_openapi_type_schema(f->type);
        if (!required)
            s = nullable(s);
        if (f->flags & PH_UNIQUE)
            json_object_set_new(s, "x-unique", json_true());
        json_object_set_new(props, f->name, s);
        if (!input || (!all_optional && required && !(f->flags & PH_HAS_DEFAULT)))
            json_array_append_new(req, json_string(f->name));
    }
    return json_pack("{s:s,s:o,s:o,s:b}", "type", "object", "properties", props, "required", req,
                     "additionalProperties", !input);
}

static json_t *json_content(json_t *schema)
{
    return json_pack("{s:{s:o}}", "application/json", "schema", schema);
}

static json_t *responses(json_t *ok_schema, const char *ok_status)
{
    return json_pack("{s:{s:s,s:o},s:{s:s}}", ok_status, "description", "success", "content",
                     json_content(ok_schema), "default", "$ref", "#/components/responses/Error");
}

static void fill_op(build *b, json_t *op, const ph_route *r, const char *id_suffix, json_t *req,
                    json_t *ok, const char *ok_status)
{
    char *opid = NULL;
    if (!op || asprintf(&opid, "%s.%s.%s%s", r->inst->name, r->actor, r->method, id_suffix) < 0) {
        b->oom = true;
        json_decref(req);
        json_decref(ok);
        return;
    }
    check(b, json_object_set_new(op, "operationId", json_string(opid)));
    free(opid);
    check(b, json_object_set_new(op, "tags", json_pack("[s]", r->inst->name)));
    if (r->doc)
        check(b, json_object_set_new(op, "summary", json_string(r->doc)));
    if (req)
        check(b, json_object_set_new(
                     op, "requestBody",
                     json_pack("{s:b,s:o}", "required", 1, "content", json_content(req))));
    check(b, json_object_set_new(op, "responses", responses(ok, ok_status)));
    if (r->flags & PH_ADMIN)
        check(b, json_object_set_new(op, "security", json_pack("[{s:[]}]", "bearer")));
}

static json_t *id_param(void)
{
    return json_pack("[{s:s,s:s,s:b,s:o}]", "name", "id", "in", "path", "required", 1, "schema",
                     ph_openapi_type_schema(PH_I64));
}

/* What list returns: one page of records. */
static json_t *page_schema(const char *rec_ref)
{
    json_t *count = json_pack("{s:s,s:i}", "type", "integer", "minimum", 0);
    return json_pack("{s:s,s:{s:{s:s,s:o},s:o,s:O,s:O},s:[s,s,s,s]}", "type", "object",
                     "properties", "items", "type", "array", "items", ref("%s%s", rec_ref, ""),
                     "total", count, "limit", count, "offset", count, "required", "items", "total",
                     "limit", "offset");
}

/* list/count called as actors: filters by field name beside order/limit/offset. */
static json_t *query_schema(bool paging)
{
    json_t *props = json_object();
    if (paging) {
        json_object_set_new(props, "order",
                            json_pack("{s:[{s:s},{s:s,s:{s:s}}],s:s}", "oneOf", "type", "string",
                                      "type", "array", "items", "type", "string", "description",
                                      "field, -field or \"field desc\"; a comma list or array "
                                      "of them"));
        json_object_set_new(
            props, "limit",
            json_pack("{s:s,s:i,s:i}", "type", "integer", "minimum", 0, "maximum", 1000));
        json_object_set_new(props, "offset",
                            json_pack("{s:s,s:i}", "type", "integer", "minimum", 0));
    }
    return json_pack("{s:s,s:o,s:s}", "type", "object", "properties", props, "description",
                     "filters: \"field\": value (equality, null for IS NULL), \"field.op\": "
                     "value or \"field\": {\"op\": value} with op eq ne lt le gt ge like");
}

static const char filter_doc[] =
    "equality filter; field.op=value (also field__op=value) compares with op eq ne lt le gt ge "
    "like";

static json_t *list_params(const ph_model *m)
{
    json_t *ps = json_array();
    for (uint32_t i = 0; i < m->n_fields; i++)
        json_array_append_new(ps, json_pack("{s:s,s:s,s:s,s:o}", "name", m->fields[i].name, "in",
                                            "query", "description", filter_doc, "schema",
                                            ph_openapi_type_schema(m->fields[i].type)));
    json_array_append_new(ps, json_pack("{s:s,s:s,s:s,s:{s:s}}", "name", "order", "in", "query",
                                        "description", "field to order by; prefix - for descending",
                                        "schema", "type", "string"));
    json_array_append_new(ps,
                          json_pack("{s:s,s:s,s:{s:s,s:i,s:i}}", "name", "limit", "in", "query",
                                    "schema", "type", "integer", "minimum", 0, "maximum", 1000));
    json_array_append_new(ps, json_pack("{s:s,s:s,s:{s:s,s:i}}", "name", "offset", "in", "query",
                                        "schema", "type", "integer", "minimum", 0));
    return ps;
}

/* The REST operation of a CRUD method, if it has one. */
static void add_rest(build *b, const ph_route *r, const char *rec_ref, const char *in_ref)
{
    const char *m = r->method, *mount = r->inst->mount ? r->inst->mount : "";
    char *coll = NULL, *item = NULL;
    if (asprintf(&coll, "%s/models/%s", strcmp(mount, "/") ? mount : "", r->actor) < 0 ||
        asprintf(&item, "%s/{id}", coll) < 0) {
        b->oom = true;
        free(coll);
        return;
    }
    json_t *op;
    if (!strcmp(m, "list")) {
        op = operation(b, coll, "get");
        fill_op(b, op, r, ".rest", NULL, page_schema(rec_ref), "200");
        if (op)
            check(b, json_object_set_new(op, "parameters", list_params(r->model)));
    } else if (!strcmp(m, "new")) {
        op = operation(b, coll, "post");
        fill_op(b, op, r, ".rest", ref("%s%s", in_ref, ""), ref("%s%s", rec_ref, ""), "201");
    } else if (!strcmp(m, "get") || !strcmp(m, "set") || !strcmp(m, "delete")) {
        const char *verb = m[0] == 'g' ? "get" : m[0] == 's' ? "patch" : "delete";
        op = operation(b, item, verb);
        json_t *req = m[0] == 's' ? ref("%s%s", in_ref, ".patch") : NULL;
        fill_op(b, op, r, ".rest", req, m[0] == 'd' ? json_object() : ref("%s%s", rec_ref, ""),
                "200");
        if (op)
            check(b, json_object_set_new(op, "parameters", id_param()));
    }
    free(coll);
    free(item);
}

static void add_model_schemas(build *b, const ph_route *r)
{
    char *name = NULL;
    if (asprintf(&name, "%s.%s", r->inst->name, r->model->name) < 0) {
        b->oom = true;
        return;
    }
    if (!json_object_get(b->schemas, name)) {
        char *in = NULL, *patch = NULL;
        check(b, json_object_set_new(b->schemas, name, model_schema(r->model, false, false)));
        if (asprintf(&in, "%s.input", name) >= 0 && asprintf(&patch, "%s.input.patch", name) >= 0) {
            check(b, json_object_set_new(b->schemas, in, model_schema(r->model, true, false)));
            check(b, json_object_set_new(b->schemas, patch, model_schema(r->model, true, true)));
        } else {
            b->oom = true;
        }
        free(in);
        free(patch);
    }
    free(name);
}

/* Request/response schemas of a CRUD method called as an actor. */
static void crud_schemas(const ph_route *r, const char *rec_ref, const char *in_ref, json_t **req,
                         json_t **ok)
{
    const char *m = r->method;
    if (!strcmp(m, "new")) {
        *req = ref("%s%s", in_ref, "");
        *ok = ref("%s%s", rec_ref, "");
    } else if (!strcmp(m, "get") || !strcmp(m, "delete")) {
        *req = json_pack("{s:s,s:{s:o},s:[s]}", "type", "object", "properties", "id",
                         ph_openapi_type_schema(PH_I64), "required", "id");
        *ok = m[0] == 'g' ? ref("%s%s", rec_ref, "") : json_object();
    } else if (!strcmp(m, "set")) {
        /* the changed fields and the id beside them (allOf would meet the patch schema's
           additionalProperties: false, and no request could satisfy both) */
        *req = model_schema(r->model, true, true);
        json_object_set_new(json_object_get(*req, "properties"), "id",
                            ph_openapi_type_schema(PH_I64));
        json_array_append_new(json_object_get(*req, "required"), json_string("id"));
        *ok = ref("%s%s", rec_ref, "");
    } else if (!strcmp(m, "list") || !strcmp(m, "count")) {
        *req = query_schema(m[0] == 'l');
        *ok = m[0] == 'l' ? page_schema(rec_ref) : ph_openapi_type_schema(PH_I64);
    } else {
        *req = r->n_args ? args_schema(r->args, r->n_args) : json_pack("{s:s}", "type", "object");
        *ok = ph_openapi_type_schema(r->ret);
    }
}

static void visit(const ph_route *r, void *ud)
{
    build *b = ud;
    const char *mount = r->inst->mount ? r->inst->mount : "";
    char *path = NULL, *rec_ref = NULL, *in_ref = NULL;
    if (asprintf(&path, "%s/actors/%s/%s", strcmp(mount, "/") ? mount : "", r->actor, r->method) <
        0) {
        b->oom = true;
        return;
    }
    json_t *req = NULL, *ok = NULL;
    if (r->model) {
        add_model_schemas(b, r);
        if (asprintf(&rec_ref, "#/components/schemas/%s.%s", r->inst->name, r->model->name) < 0 ||
            asprintf(&in_ref, "%s.input", rec_ref) < 0) {
            b->oom = true;
            goto cleanup;
        }
        crud_schemas(r, rec_ref, in_ref, &req, &ok);
        add_rest(b, r, rec_ref, in_ref);
    } else {
        req = args_schema(r->args, r->n_args);
        ok = ph_openapi_type_schema(r->ret);
    }
    fill_op(b, operation(b, path, "post"), r, "", req, ok, "200");
cleanup:
    free(path);
    free(rec_ref);
    free(in_ref);
}

/* One route of the host's table (http.h): its operation for each method but HEAD. */
static int host_route_op(json_t *paths, const ph_http_route *r)
{
    json_t *item = json_object();
    json_t *schema = json_loads(r->schema, 0, NULL);
    int rc = item && schema ? 0 : -1;
    for (const char *m = r->methods; !rc && *m;) {
        size_t l = strcspn(m, ", ");
        char verb[16];
        snprintf(verb, sizeof verb, "%.*s", (int)(l < sizeof verb ? l : sizeof verb - 1), m);
        for (char *c = verb; *c; c++)
            *c = (char)(*c - 'A' + 'a');
        m += l;
        m += strspn(m, ", ");
        if (strcmp(verb, "head") == 0) /* the GET's head: not an operation of its own */
            continue;
        json_t *ok = json_pack("{s:s,s:{s:{s:O}}}", "description", r->summary, "content", r->type,
                               "schema", schema);
        json_t *op = json_pack("{s:s,s:s,s:[s],s:{s:o,s:{s:s}}}", "operationId", r->id, "summary",
                               r->summary, "tags", "host", "responses", "200", ok, "default",
                               "$ref", "#/components/responses/Error");
        if (op && strstr(r->path, "{name}"))
            json_object_set_new(op, "parameters",
                                json_pack("[{s:s,s:s,s:b,s:s,s:{s:s}}]", "name", "name", "in",
                                          "path", "required", 1, "description",
                                          "a package or an instance name", "schema", "type",
                                          "string"));
        if (op && r->auth == PH_ROUTE_ADMIN)
            json_object_set_new(op, "security", json_pack("[{s:[]}]", "bearer"));
        rc = op ? json_object_set_new(item, verb, op) : -1;
    }
    json_decref(schema);
    if (rc) {
        json_decref(item);
        return -1;
    }
    return json_object_set_new(paths, r->path, item);
}

/* The host's own routes, from the one table dispatch reads too. */
static json_t *host_paths(void)
{
    json_t *paths = json_object();
    for (size_t i = 0; paths && i < ph_http_n_host_routes; i++)
        if (host_route_op(paths, &ph_http_host_routes[i])) {
            json_decref(paths);
            return NULL;
        }
    return paths;
}

static json_t *components(json_t *schemas)
{
    json_t *err =
        json_pack("{s:s,s:{s:{s:s,s:{s:{s:s},s:{s:s}},s:[s,s]}},s:[s]}", "type", "object",
                  "properties", "error", "type", "object", "properties", "code", "type", "string",
                  "message", "type", "string", "required", "code", "message", "required", "error");
    if (!err || json_object_set_new(schemas, "Error", err))
        return NULL;
    return json_pack("{s:O,s:{s:{s:s,s:{s:{s:{s:s}}}}},s:{s:{s:s,s:s}}}", "schemas", schemas,
                     "responses", "Error", "description",
                     "error: code is a machine-readable word, message says what to do", "content",
                     "application/json", "schema", "$ref", "#/components/schemas/Error",
                     "securitySchemes", "bearer", "type", "http", "scheme", "bearer");
}

int ph_openapi_build(ph_host *host, json_t **out)
{
    build b = {host, host_paths(), json_object(), false};
    json_t *doc = NULL, *comp = NULL;
    if (!b.paths || !b.schemas)
        goto oom;
    ph_router_each(host->router, visit, &b);
    if (b.oom || !(comp = components(b.schemas)))
        goto oom;
    doc = json_pack("{s:s,s:{s:s,s:s,s:s},s:o,s:o}", "openapi", "3.1.0", "info", "title",
                    "plughost", "version", PH_HOST_VERSION, "description",
                    "Methods and models of the packages this host runs. POST bodies are JSON "
                    "objects (arguments by name) or arrays (by position).",
                    "paths", b.paths, "components", comp);
    b.paths = NULL;
    comp = NULL;
    if (!doc)
        goto oom;
    if (host->cfg.auth.require_token &&
        json_object_set_new(doc, "security", json_pack("[{s:[]}]", "bearer")))
        goto oom;
    json_decref(b.schemas);
    *out = doc;
    return 0;
oom:
    json_decref(b.paths);
    json_decref(b.schemas);
    json_decref(comp);
    json_decref(doc);
    return ph_error_set(PH_ENOMEM, "out of memory building the OpenAPI document");
}
