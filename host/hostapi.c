/*
 * The host API table packages reach through ctx->api. A ph_json * is a
 * jansson json_t *; the cast is the whole boundary.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "instance.h"
#include "jsonout.h"
#include "log.h"
#include "router.h"
#include "store.h"

#define J(v) ((json_t *)(v))

static void api_logv(ph_ctx *ctx, ph_log_level level, const char *fmt, va_list ap)
{
    /* the ctx is its version's first member (instance.h): the build logging */
    const ph_version *v = ph_version_of(ctx);
    ph_log_buildv((ph_level)level, ph_instance_of(ctx)->name, v->build[0] ? v->build : NULL, fmt,
                  ap);
}

static const char *api_param(ph_ctx *ctx, const char *name)
{
    return ph_version_param(ph_version_of(ctx), name); /* its own copy: see ph_version_set_params */
}

/* Marks the innermost frame failed: the method's result will be discarded. */
static void mark_failed(void)
{
    ph_frame *f = ph_frame_current();
    if (f)
        f->failed = 1;
}

/*
 * A host allocation for the package that fails (NULL with errno ENOMEM)
 * fails the package's call with "out of memory": a NULL string result would
 * otherwise pass for JSON null, and a missing member for a smaller result.
 */
static void *nomem_fails_call(void *p)
{
    if (!p && errno == ENOMEM) {
        ph_error_set(PH_ENOMEM, "out of memory");
        mark_failed();
    }
    return p;
}
#define CHECKED(expr) (errno = 0, nomem_fails_call(expr))

/* The SDK's codes are the host's (sdk.h names the ones host services return). */
_Static_assert(PH_E_NOMEM == PH_ENOMEM && PH_E_INVAL == PH_EINVAL &&
                   PH_E_NOTFOUND == PH_ENOTFOUND && PH_E_PERM == PH_EPERM &&
                   PH_E_ARGS == PH_EARGS && PH_E_PACKAGE == PH_EPACKAGE &&
                   PH_E_CONFLICT == PH_ECONFLICT && PH_E_BUSY == PH_EBUSY &&
                   PH_E_AUTH == PH_EAUTH && PH_E_SQL == PH_ESQL && PH_E_STATE == PH_ESTATE &&
                   PH_E_RATE == PH_ERATE,
               "sdk.h's PH_E_* codes must equal host/error.h's");

static int api_errorv_status(ph_ctx *ctx, int status, const char *code, const char *fmt,
                             va_list ap);

static int api_errorv(ph_ctx *ctx, const char *code, const char *fmt, va_list ap)
{
    return api_errorv_status(ctx, 0, code, fmt, ap);
}

static int api_errorv_status(ph_ctx *ctx, int status, const char *code, const char *fmt, va_list ap)
{
    (void)ctx;
    char word[64];
    size_t n = 0;
    /* The word travels in JSON and HTTP bodies: keep it to [A-Za-z0-9_.-]. */
    for (const char *p = code ? code : "error"; *p && n < sizeof word - 1; p++)
        word[n++] = (strchr("_.-", *p) || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= 'A' && *p <= 'Z'))
                        ? *p
                        : '_';
    word[n] = 0;
    ph_error_set_wordv(PH_EPACKAGE, n ? word : "error", fmt, ap);
    /* a host word with a 4xx status means what it means for the host ("not_found": 404) */
    int known = ph_error_code_of_word(word);
    unsigned by_word = known ? ph_error_http_status(known) : 0;
    if (status >= 400 && status <= 599)
        ph_error_set_http_status((unsigned)status);
    else if (status == 0 && by_word >= 400 && by_word < 500)
        ph_error_set_http_status(by_word);
    mark_failed();
    return PH_FAIL;
}

static int api_call(ph_ctx *ctx, const char *address, const ph_json *args, ph_json **out)
{
    ph_instance *inst = ph_instance_of(ctx);
    json_t *res = NULL;
    *out = NULL;
    ph_frame *f = ph_frame_current();
    if (f && f->failed && ph_error_last_code() == PH_ENOMEM)
        return PH_ENOMEM; /* an allocation failed in this call: `args` may be incomplete */
    int rc = ph_router_call(inst->router, inst, address, J(args), 0, &res);
    if (rc) {
        mark_failed();
        return rc;
    }
    *out = (ph_json *)res;
    return 0;
}

static void *api_alloc(size_t size)
{
    return CHECKED(malloc(size ? size : 1));
}
static void api_free(void *p)
{
    free(p);
}
static void *api_instance(ph_ctx *ctx)
{
    return ph_version_of(ctx)->mem;
}
static const char *api_instance_name(ph_ctx *ctx)
{
    return ph_instance_of(ctx)->name;
}

static ph_json_kind api_json_kind(const ph_json *v)
{
    switch (json_typeof(J(v))) {
    case JSON_TRUE:
    case JSON_FALSE:
        return PH_JSON_BOOL;
    case JSON_INTEGER:
        return PH_JSON_INT;
    case JSON_REAL:
        return PH_JSON_REAL;
    case JSON_STRING:
        return PH_JSON_STRING;
    case JSON_ARRAY:
        return PH_JSON_ARRAY;
    case JSON_OBJECT:
        return PH_JSON_OBJECT;
    default:
        return PH_JSON_NULL;
    }
}

static const ph_json *api_json_get(const ph_json *o, const char *key)
{
    return (const ph_json *)json_object_get(J(o), key);
}
static const ph_json *api_json_at(const ph_json *a, size_t i)
{
    return (const ph_json *)json_array_get(J(a), i);
}
static size_t api_json_len(const ph_json *v)
{
    if (json_is_array(J(v)))
        return json_array_size(J(v));
    if (json_is_object(J(v)))
        return json_object_size(J(v));
    if (json_is_string(J(v)))
        return json_string_length(J(v));
    return 0;
}
static int64_t api_json_i64(const ph_json *v)
{
    return json_is_real(J(v)) ? (int64_t)json_real_value(J(v)) : json_integer_value(J(v));
}
static double api_json_f64(const ph_json *v)
{
    return json_number_value(J(v));
}
static const char *api_json_str(const ph_json *v)
{
    return json_string_value(J(v));
}
static int api_json_bool(const ph_json *v)
{
    return json_is_true(J(v));
}

static ph_json *api_json_new(ph_json_kind kind)
{
    switch (kind) {
    case PH_JSON_OBJECT:
        return CHECKED(json_object());
    case PH_JSON_ARRAY:
        return CHECKED(json_array());
    case PH_JSON_BOOL:
        return (ph_json *)json_false();
    case PH_JSON_INT:
        return CHECKED(json_integer(0));
    case PH_JSON_REAL:
        return CHECKED(json_real(0));
    case PH_JSON_STRING:
        return CHECKED(json_string(""));
    default:
        return (ph_json *)json_null();
    }
}
static ph_json *api_json_new_i64(int64_t v)
{
    return CHECKED(json_integer(v));
}
static ph_json *api_json_new_f64(double v)
{
    return CHECKED(json_real(v));
}
static ph_json *api_json_new_str(const char *v)
{
    return CHECKED(json_string(v ? v : ""));
}
static ph_json *api_json_new_bool(int v)
{
    return (ph_json *)json_boolean(v);
}
static int api_json_set(ph_json *o, const char *key, ph_json *v)
{
    errno = 0;
    if (!json_object_set_new(J(o), key, J(v)))
        return 0;
    nomem_fails_call(NULL);
    return PH_E_INVAL;
}
static int api_json_push(ph_json *a, ph_json *v)
{
    errno = 0;
    if (!json_array_append_new(J(a), J(v)))
        return 0;
    nomem_fails_call(NULL);
    return PH_E_INVAL;
}
static ph_json *api_json_parse(const char *text)
{
    return CHECKED(json_loads(text, JSON_DECODE_ANY, NULL));
}
static char *api_json_dump(const ph_json *v)
{
    return CHECKED(ph_json_dumps(J(v), JSON_COMPACT | JSON_ENCODE_ANY));
}
static ph_json *api_json_copy(const ph_json *v)
{
    return CHECKED(json_deep_copy(J(v)));
}
static void api_json_free(ph_json *v)
{
    json_decref(J(v));
}

static int api_db_query(ph_ctx *ctx, const char *sql, const ph_json *params, ph_json **rows)
{
    ph_instance *inst = ph_instance_of(ctx);
    json_t *res = NULL;
    if (rows)
        *rows = NULL;
    if (ph_router_abandoned()) { /* its caller was told 504: nothing may change after that */
        mark_failed();
        return ph_router_refuse_abandoned("the database query");
    }
    if (!inst->store) {
        mark_failed();
        return ph_error_set(PH_ESTATE, "instance '%s' has no database", inst->name);
    }
    int rc = ph_store_query(inst->store, sql, J(params), rows ? &res : NULL);
    if (rc) {
        mark_failed();
        return rc;
    }
    if (rows)
        *rows = (ph_json *)res;
    return 0;
}

static void api_error_reset(ph_ctx *ctx)
{
    (void)ctx;
    ph_frame *f = ph_frame_current();
    if (f)
        f->failed = 0;
    ph_error_clear();
}

static int api_manage(ph_ctx *ctx, const char *op, const char *name, ph_json **out)
{
    ph_instance *inst = ph_instance_of(ctx);
    json_t *res = NULL;
    *out = NULL;
    int rc = ph_router_manage(inst->router, inst, op ? op : "", name, &res);
    if (rc) {
        mark_failed();
        return rc;
    }
    *out = (ph_json *)res;
    return 0;
}

const ph_host_api ph_host_api_v1 = {
    .abi = PH_ABI_VERSION,
    .size = sizeof(ph_host_api),
    .logv = api_logv,
    .param = api_param,
    .errorv = api_errorv,
    .call = api_call,
    .alloc = api_alloc,
    .free = api_free,
    .instance = api_instance,
    .instance_name = api_instance_name,
    .json_kind = api_json_kind,
    .json_get = api_json_get,
    .json_at = api_json_at,
    .json_len = api_json_len,
    .json_i64 = api_json_i64,
    .json_f64 = api_json_f64,
    .json_str = api_json_str,
    .json_bool = api_json_bool,
    .json_new = api_json_new,
    .json_new_i64 = api_json_new_i64,
    .json_new_f64 = api_json_new_f64,
    .json_new_str = api_json_new_str,
    .json_new_bool = api_json_new_bool,
    .json_set = api_json_set,
    .json_push = api_json_push,
    .json_parse = api_json_parse,
    .json_dump = api_json_dump,
    .json_copy = api_json_copy,
    .json_free = api_json_free,
    .db_query = api_db_query,
    .error_reset = api_error_reset,
    .manage = api_manage,
    .errorv_status = api_errorv_status,
};
