/*
 * plughost SDK, ABI version 1.
 *
 * The one header a package includes. A package is a shared object that
 * exports exactly one symbol, its descriptor (see PH_PACKAGE below), made of
 * plain `static const` tables. The host validates the descriptor against the
 * package's manifest (package.ini) before it calls any code of the package.
 *
 * Stability rules (as in sqlite3ext.h):
 *   - ph_package and ph_host_api begin with an ABI version and their size;
 *     new fields are only ever appended.
 *   - Enum values and PH_E* codes are appended, never renumbered.
 *
 * Ownership rules, valid for every function below unless it says otherwise:
 *   - `const char *` / `const ph_json *` parameters are borrowed: the callee
 *     does not keep them past the call.
 *   - A pointer returned through `T **out` or as a PH_STR / PH_JSON method
 *     result belongs to the receiver. Packages allocate such results with
 *     ph_alloc()/ph_strdup()/the ph_json_new_* builders, never with malloc
 *     directly, so host and package agree on the allocator.
 *
 * Threading: methods of one instance may be called from several host threads
 * at once; lifecycle callbacks (prepare/start/stop/save/restore) are never
 * concurrent with each other or with method calls of the same instance.
 *
 * Rules a package must follow so that it can be stopped, unloaded and
 * reloaded safely (see README "Hot reload"):
 *   - No threads, timers, signal handlers, atexit() handlers,
 *     pthread_key_create() or non-trivial thread_local objects that outlive
 *     `stop`. No package code may run after `stop` returns.
 *   - `prepare` and `start` must work again after `stop` (a reload that
 *     rolls back prepares and starts the old version again; the package
 *     manager's disable/enable does the same).
 *   - Export only the descriptor: build with -fvisibility=hidden (the CMake
 *     helper does). C++ packages also need -fno-gnu-unique and the shared
 *     libstdc++ (no -static-libstdc++); a package with STB_GNU_UNIQUE symbols
 *     is refused because glibc can never unload it.
 *   - No private copy of SQLite: use the instance database through ph_db_*.
 */
#ifndef PLUGHOST_SDK_H
#define PLUGHOST_SDK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Hand-formatted: clang-format would spread every declaration macro over
 * several lines and make the tables below hard to read.
 */
/* clang-format off */

/** ABI version of the descriptor and host API this header describes. */
#define PH_ABI_VERSION 1

/** Name of the one symbol a package exports. */
#define PH_DESCRIPTOR_SYMBOL "plughost_package_v1"

/* ------------------------------------------------------------------ */
/* Types                                                                */
/* ------------------------------------------------------------------ */

/**
 * Value types of method parameters/results and model fields, with the C type
 * a method sees:
 *   PH_VOID  (results only)  void
 *   PH_BOOL                  int (0 or 1)
 *   PH_I64                   int64_t
 *   PH_F64                   double
 *   PH_STR   parameter: const char * (borrowed, UTF-8, never NULL)
 *            result:    char * allocated with ph_alloc/ph_strdup, or NULL
 *   PH_JSON  parameter: const ph_json * (borrowed, never NULL; JSON null is
 *                       a value)
 *            result:    ph_json * from the ph_json_new_* builders, or NULL
 *   PH_TIME  (fields only)   stored as int64 Unix milliseconds
 *   PH_REF   (fields only)   int64 id of a record of another model
 * A method that reports an error with ph_error() may return anything; the
 * host discards the result (and frees a PH_STR/PH_JSON one).
 */
typedef enum ph_type {
    PH_VOID = 0,
    PH_BOOL = 1,
    PH_I64 = 2,
    PH_F64 = 3,
    PH_STR = 4,
    PH_JSON = 5,
    PH_TIME = 6,
    PH_REF = 7
} ph_type;

/* Field-type spellings used in model declarations. */
#define PH_INT PH_I64
#define PH_FLOAT PH_F64
#define PH_TEXT PH_STR

/** Results of prepare/start. */
typedef enum ph_status {
    PH_FAIL = -1,   /* the instance failed; it and its dependents are skipped */
    PH_OK = 0,      /* go on */
    PH_DECLINE = 1  /* skip this instance (and dependents); not an error */
} ph_status;

/** Log levels. */
typedef enum ph_log_level {
    PH_LOG_ERROR = 0,
    PH_LOG_WARN = 1,
    PH_LOG_INFO = 2,
    PH_LOG_DEBUG = 3
} ph_log_level;

/** A JSON value owned by the host. Opaque; use the ph_json_* helpers. */
typedef struct ph_json ph_json;

/** JSON value kinds returned by ph_json_kind(). */
typedef enum ph_json_kind {
    PH_JSON_NULL = 0,
    PH_JSON_BOOL = 1,
    PH_JSON_INT = 2,
    PH_JSON_REAL = 3,
    PH_JSON_STRING = 4,
    PH_JSON_ARRAY = 5,
    PH_JSON_OBJECT = 6
} ph_json_kind;

typedef struct ph_host_api ph_host_api;

/**
 * Per-instance context handed to every callback and method. The host owns
 * it; it stays valid from prepare until stop returns. Only `api` is public.
 */
typedef struct ph_ctx {
    const ph_host_api *api;
} ph_ctx;

/* ------------------------------------------------------------------ */
/* Declarations: actors and methods                                     */
/* ------------------------------------------------------------------ */

/** One parameter of a method. */
typedef struct ph_arg {
    const char *name;
    ph_type type;
} ph_arg;

/** Method flags. */
#define PH_ADMIN 0x1u /* callable over HTTP only with the admin token */

/**
 * One method: `RET fn(ph_ctx *ctx, A1 a1, A2 a2, ...)`.
 * `fn` is stored as a generic function pointer; the host calls it through
 * libffi with the declared types, so the declaration must match the C
 * signature exactly.
 */
typedef struct ph_method {
    const char *name;
    void (*fn)(void);
    ph_type ret;
    uint32_t n_args;
    const ph_arg *args;
    uint32_t flags;
    const char *doc;
} ph_method;

/** A named group of methods. */
typedef struct ph_actor {
    const char *name;
    const ph_method *methods;
    uint32_t n_methods;
} ph_actor;

/**
 * One parameter of PH_METHOD/PH_METHOD_EX: its name and declared type. It
 * expands to a (name, type) pair that those macros unpack, so it is only
 * meant inside them.
 */
#define PH_ARG(name, type) (name, type)

/* Up to 16 parameters: applies m to each (m(a), m(b), ...), with or without commas. */
#define PH_CAT_(a, b) PH_CAT_I_(a, b)
#define PH_CAT_I_(a, b) a##b
#define PH_NARG_(...) PH_NARG_I_(__VA_ARGS__, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define PH_NARG_I_(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, n, ...) n
#define PH_MAP_(m, ...) PH_CAT_(PH_MAP_, PH_NARG_(__VA_ARGS__))(m, __VA_ARGS__)
#define PH_MAP_1(m, a) m(a)
#define PH_MAP_2(m, a, ...) m(a) PH_MAP_1(m, __VA_ARGS__)
#define PH_MAP_3(m, a, ...) m(a) PH_MAP_2(m, __VA_ARGS__)
#define PH_MAP_4(m, a, ...) m(a) PH_MAP_3(m, __VA_ARGS__)
#define PH_MAP_5(m, a, ...) m(a) PH_MAP_4(m, __VA_ARGS__)
#define PH_MAP_6(m, a, ...) m(a) PH_MAP_5(m, __VA_ARGS__)
#define PH_MAP_7(m, a, ...) m(a) PH_MAP_6(m, __VA_ARGS__)
#define PH_MAP_8(m, a, ...) m(a) PH_MAP_7(m, __VA_ARGS__)
#define PH_MAP_9(m, a, ...) m(a) PH_MAP_8(m, __VA_ARGS__)
#define PH_MAP_10(m, a, ...) m(a) PH_MAP_9(m, __VA_ARGS__)
#define PH_MAP_11(m, a, ...) m(a) PH_MAP_10(m, __VA_ARGS__)
#define PH_MAP_12(m, a, ...) m(a) PH_MAP_11(m, __VA_ARGS__)
#define PH_MAP_13(m, a, ...) m(a) PH_MAP_12(m, __VA_ARGS__)
#define PH_MAP_14(m, a, ...) m(a) PH_MAP_13(m, __VA_ARGS__)
#define PH_MAP_15(m, a, ...) m(a) PH_MAP_14(m, __VA_ARGS__)
#define PH_MAP_16(m, a, ...) m(a) PH_MAP_15(m, __VA_ARGS__)

#define PH_ARG_INIT_(name, type) { (name), (type) },
#define PH_ARG_INIT_P_(pair) PH_ARG_INIT_ pair
#define PH_ARGS_(...) (const ph_arg[]){ PH_MAP_(PH_ARG_INIT_P_, __VA_ARGS__) }
#define PH_NARGS_(...) ((uint32_t)PH_NARG_(__VA_ARGS__))

/*
 * The C type a method must have for its declared types (see ph_type above),
 * checked when the package is compiled: a mismatch fails the build with
 * "negative width in bit-field 'ph_signature_of_<function>_...'". GCC and
 * Clang, C only (C++ packages get no check yet).
 * A K&R (old-style) definition, `static int64_t half(ctx, x) ph_ctx *ctx;
 * double x; {...}`, has no prototype, so its type is compatible with every
 * declaration and this check cannot see it: build packages with
 * -Werror=old-style-definition, as plughost_add_package() and the
 * package_cflags of `pkg-config plughost` do, and such a definition fails
 * the build ("old-style function definition").
 */
#define PH_RTYPE_PH_VOID void
#define PH_RTYPE_PH_BOOL int
#define PH_RTYPE_PH_I64 int64_t
#define PH_RTYPE_PH_INT int64_t
#define PH_RTYPE_PH_F64 double
#define PH_RTYPE_PH_FLOAT double
#define PH_RTYPE_PH_STR char *
#define PH_RTYPE_PH_TEXT char *
#define PH_RTYPE_PH_JSON ph_json *
#define PH_PTYPE_PH_BOOL int
#define PH_PTYPE_PH_I64 int64_t
#define PH_PTYPE_PH_INT int64_t
#define PH_PTYPE_PH_F64 double
#define PH_PTYPE_PH_FLOAT double
#define PH_PTYPE_PH_STR const char *
#define PH_PTYPE_PH_TEXT const char *
#define PH_PTYPE_PH_JSON const ph_json *
#define PH_PTYPE_I_(name, type) , PH_PTYPE_##type
#define PH_PTYPE_P_(pair) PH_PTYPE_I_ pair
#define PH_RTYPE_(ret) PH_RTYPE_I_(ret)
#define PH_RTYPE_I_(ret) PH_RTYPE_##ret
#if defined(__GNUC__) && !defined(__cplusplus)
#define PH_SIGCHECK_(fn, type)                                                                    \
    (0 * sizeof(struct {                                                                         \
         int ph_signature_of_##fn##_does_not_match_its_declared_types                             \
             : __builtin_types_compatible_p(__typeof__(&(fn)), type) ? 1 : -1;                   \
     }))
#else
#define PH_SIGCHECK_(fn, type) 0
#endif
#define PH_FNTYPE_(ret, ...) PH_RTYPE_(ret) (*)(ph_ctx * PH_MAP_(PH_PTYPE_P_, __VA_ARGS__))
#define PH_FNTYPE0_(ret) PH_RTYPE_(ret) (*)(ph_ctx *)

/** A method named after its C function, with one or more parameters. */
#define PH_METHOD(fn, ret, ...) \
    { #fn, (void (*)(void))(fn), (ret), \
      (uint32_t)(PH_NARGS_(__VA_ARGS__) + PH_SIGCHECK_(fn, PH_FNTYPE_(ret, __VA_ARGS__))), \
      PH_ARGS_(__VA_ARGS__), 0, NULL }
/** A method without parameters (besides ctx). */
#define PH_METHOD0(fn, ret) \
    { #fn, (void (*)(void))(fn), (ret), (uint32_t)PH_SIGCHECK_(fn, PH_FNTYPE0_(ret)), NULL, 0, NULL }
/** Full form: public name, function, result, flags, doc, parameters. */
#define PH_METHOD_EX(name, fn, ret, flags, doc, ...) \
    { (name), (void (*)(void))(fn), (ret), \
      (uint32_t)(PH_NARGS_(__VA_ARGS__) + PH_SIGCHECK_(fn, PH_FNTYPE_(ret, __VA_ARGS__))), \
      PH_ARGS_(__VA_ARGS__), (flags), (doc) }
#define PH_METHOD0_EX(name, fn, ret, flags, doc) \
    { (name), (void (*)(void))(fn), (ret), (uint32_t)PH_SIGCHECK_(fn, PH_FNTYPE0_(ret)), NULL, \
      (flags), (doc) }

#define PH_ACTOR(name, methods) \
    { (name), (methods), (uint32_t)(sizeof(methods) / sizeof((methods)[0])) }

/* ------------------------------------------------------------------ */
/* Declarations: models                                                 */
/* ------------------------------------------------------------------ */

/** Field flags. */
#define PH_REQUIRED 0x1u
#define PH_UNIQUE 0x2u
#define PH_INDEXED 0x4u
#define PH_HAS_DEFAULT 0x8u
/** Use inside the flags of PH_FIELD: PH_FIELD("n", PH_INT, PH_DEFAULT("0")). */
#define PH_DEFAULT(text) PH_HAS_DEFAULT, .def = (text)

/**
 * One field of a model. `def` is the default as text ("false", "0", "1.5",
 * "hello", "{}"), parsed by the host according to `type`. `ref` names the
 * model a PH_REF field points to (same package).
 */
typedef struct ph_field {
    const char *name;
    ph_type type;
    uint32_t flags;
    const char *def;
    const char *ref;
} ph_field;

#define PH_FIELD(name_, type_, flags_) { .name = (name_), .type = (type_), .flags = flags_ }
#define PH_FIELD_REF(name_, model_, flags_) \
    { .name = (name_), .type = PH_REF, .flags = flags_, .ref = (model_) }

/** Model flags. */
#define PH_NO_CRUD 0x1u /* do not generate the CRUD actor for this model */

/**
 * Model hooks. `op` is "new", "set" or "delete"; `record` is the full record
 * as it will be (validate) or was (after_write) stored, borrowed.
 * validate returns 0 to accept, or the result of ph_error() to refuse: the
 * write is not done and the caller gets that error.
 */
typedef int (*ph_validate_fn)(ph_ctx *ctx, const char *op, const ph_json *record);
typedef void (*ph_after_write_fn)(ph_ctx *ctx, const char *op, const ph_json *record);

typedef struct ph_model {
    const char *name;
    const ph_field *fields;
    uint32_t n_fields;
    uint32_t flags;
    ph_validate_fn validate;
    ph_after_write_fn after_write;
} ph_model;

#define PH_MODEL(name, fields) \
    { (name), (fields), (uint32_t)(sizeof(fields) / sizeof((fields)[0])), 0, NULL, NULL }
#define PH_MODEL_EX(name, fields, flags, validate, after_write) \
    { (name), (fields), (uint32_t)(sizeof(fields) / sizeof((fields)[0])), (flags), (validate), \
      (after_write) }

/* ------------------------------------------------------------------ */
/* The descriptor                                                       */
/* ------------------------------------------------------------------ */

typedef int (*ph_lifecycle_fn)(ph_ctx *ctx);

/**
 * State hand-over across a reload. `save` runs on the old version after its
 * `stop`; it sets *out (ph_alloc'd, the host frees it), *len and *version.
 * `restore` runs on the new version before its `start` with those bytes;
 * it returns PH_OK, or PH_DECLINE to start cold (unknown version).
 */
typedef int (*ph_save_fn)(ph_ctx *ctx, uint32_t *version, void **out, size_t *len);
typedef int (*ph_restore_fn)(ph_ctx *ctx, uint32_t version, const void *data, size_t len);

/** before_upgrade/after_upgrade: `from` and `to` are the versions (borrowed). */
typedef int (*ph_upgrade_fn)(ph_ctx *ctx, const char *from, const char *to);
/** before_uninstall: `purge` is 1 when the package's data is deleted as well. */
typedef int (*ph_uninstall_fn)(ph_ctx *ctx, int purge);
/** after_mount: `mount` is the URL prefix the instance serves under, e.g. "/notes". */
typedef int (*ph_mount_fn)(ph_ctx *ctx, const char *mount);

typedef struct ph_package {
    uint32_t abi;          /* PH_ABI_VERSION the package was built against */
    uint32_t size;         /* sizeof(ph_package) the package was built with */
    const char *name;      /* must equal package.ini [package] name */
    const char *version;   /* must equal package.ini [package] version */
    size_t instance_size;  /* bytes of zeroed per-instance memory, see ph_instance_data() */
    ph_lifecycle_fn prepare;  /* may be NULL */
    ph_lifecycle_fn start;    /* may be NULL */
    void (*stop)(ph_ctx *ctx); /* may be NULL; runs once for every successful prepare:
                                  after the instance ran, right after a failed or declined
                                  start, or when a prepared reload build is discarded, so
                                  it must cope with a half-started instance */
    const ph_actor *actors;
    uint32_t n_actors;
    const ph_model *models;
    uint32_t n_models;
    ph_save_fn save;       /* may be NULL */
    ph_restore_fn restore; /* may be NULL */
    /*
     * Lifecycle callbacks (APM's), appended: each may be NULL, and a package
     * built before they existed has none. Each runs with no call of the
     * instance in flight; its failure (PH_FAIL or ph_error()) has the effect
     * written beside it. README "Lifecycle callbacks" has the details.
     */
    ph_lifecycle_fn after_install;    /* after `plughost install` of a package that was not
                                         installed, once, on its first running instance; failure:
                                         the package's instances are disabled and the install
                                         reports it */
    ph_upgrade_fn before_upgrade;     /* on the old version, from -> to, when a build of another
                                         version is about to replace it; failure: the upgrade is
                                         refused and the old version keeps serving */
    ph_upgrade_fn after_upgrade;      /* on the new version after its start, before its first
                                         call and before the migration commits; failure: rolled
                                         back, the old version serves again */
    ph_uninstall_fn before_uninstall; /* before a running host removes the package (purge: 1 if
                                         its data goes too); failure: the removal is refused */
    ph_lifecycle_fn after_instantiate; /* after the first start of a new instance (one with no
                                          earlier start on this data directory); failure: the
                                          instance is stopped and failed, retried next start */
    ph_lifecycle_fn before_delete;    /* before a running instance is deleted for good (its
                                         package removed, or its [instance] section dropped from
                                         host.ini); failure: logged, the deletion goes on */
    ph_mount_fn after_mount;          /* after start, once its routes are published under
                                         `mount`, before its first call; failure: the instance is
                                         stopped and failed */
} ph_package;

#define PH_ACTORS(...) \
    (const ph_actor[]){ __VA_ARGS__ }, \
    .n_actors = (uint32_t)(sizeof((const ph_actor[]){ __VA_ARGS__ }) / sizeof(ph_actor))
#define PH_MODELS(...) \
    (const ph_model[]){ __VA_ARGS__ }, \
    .n_models = (uint32_t)(sizeof((const ph_model[]){ __VA_ARGS__ }) / sizeof(ph_model))

#if defined(_WIN32)
#define PH_EXPORT __declspec(dllexport)
#else
#define PH_EXPORT __attribute__((visibility("default")))
#endif

/*
 * Name and version come from package.ini through the build
 * (plughost_add_package() defines them); they are written once.
 */
#ifndef PH_PACKAGE_NAME
#define PH_PACKAGE_NAME "unnamed"
#endif
#ifndef PH_PACKAGE_VERSION
#define PH_PACKAGE_VERSION "0.0.0"
#endif

#ifdef __cplusplus
#define PH_EXTERN_ extern "C"
#else
#define PH_EXTERN_ extern
#endif

/** Defines the package's descriptor. Use once per package. */
#define PH_PACKAGE(...) \
    PH_EXTERN_ PH_EXPORT const ph_package plughost_package_v1; \
    const ph_package plughost_package_v1 = { .abi = PH_ABI_VERSION, \
                                             .size = (uint32_t)sizeof(ph_package), \
                                             .name = PH_PACKAGE_NAME, \
                                             .version = PH_PACKAGE_VERSION, \
                                             __VA_ARGS__ }

/* ------------------------------------------------------------------ */
/* Host services                                                        */
/* ------------------------------------------------------------------ */

/* Error codes returned by host services (0 = success). Appended only. */
#define PH_E_NOMEM (-1)
#define PH_E_INVAL (-2)
#define PH_E_NOTFOUND (-3)
#define PH_E_PERM (-12)
#define PH_E_ARGS (-13)
#define PH_E_PACKAGE (-11)
#define PH_E_CONFLICT (-14) /* ph_call: a unique field already holds that value */
#define PH_E_BUSY (-15)     /* ph_call: the callee is reloading or starting; retry */
#define PH_E_AUTH (-18)     /* ph_call: the callee is PH_ADMIN and the request has no token */
#define PH_E_SQL (-19)      /* db_query or a CRUD call: the database refused */
#define PH_E_STATE (-20)    /* ph_call: the callee is not running */
#define PH_E_RATE (-23)     /* ph_call: the callee's rate limit was reached */

/**
 * The host's function table. Reached through ctx->api; call the inline
 * helpers below rather than the table directly.
 */
struct ph_host_api {
    uint32_t abi;
    uint32_t size;
    void (*logv)(ph_ctx *ctx, ph_log_level level, const char *fmt, va_list ap);
    const char *(*param)(ph_ctx *ctx, const char *name);
    int (*errorv)(ph_ctx *ctx, const char *code, const char *fmt, va_list ap);
    int (*call)(ph_ctx *ctx, const char *address, const ph_json *args, ph_json **out);
    void *(*alloc)(size_t size);
    void (*free)(void *ptr);
    void *(*instance)(ph_ctx *ctx);
    const char *(*instance_name)(ph_ctx *ctx);
    /* JSON access */
    ph_json_kind (*json_kind)(const ph_json *v);
    const ph_json *(*json_get)(const ph_json *obj, const char *key);
    const ph_json *(*json_at)(const ph_json *arr, size_t index);
    size_t (*json_len)(const ph_json *v);
    int64_t (*json_i64)(const ph_json *v);
    double (*json_f64)(const ph_json *v);
    const char *(*json_str)(const ph_json *v);
    int (*json_bool)(const ph_json *v);
    /* JSON builders: every ph_json * returned is owned by the caller */
    ph_json *(*json_new)(ph_json_kind kind);
    ph_json *(*json_new_i64)(int64_t v);
    ph_json *(*json_new_f64)(double v);
    ph_json *(*json_new_str)(const char *v);
    ph_json *(*json_new_bool)(int v);
    int (*json_set)(ph_json *obj, const char *key, ph_json *value);
    int (*json_push)(ph_json *arr, ph_json *value);
    ph_json *(*json_parse)(const char *text);
    char *(*json_dump)(const ph_json *v);
    ph_json *(*json_copy)(const ph_json *v);
    void (*json_free)(ph_json *v);
    /* The instance database */
    int (*db_query)(ph_ctx *ctx, const char *sql, const ph_json *params, ph_json **rows);
    void (*error_reset)(ph_ctx *ctx);
    int (*manage)(ph_ctx *ctx, const char *op, const char *name, ph_json **out);
    int (*errorv_status)(ph_ctx *ctx, int status, const char *code, const char *fmt, va_list ap);
    int (*hooks)(ph_ctx *ctx, const char *endpoint, ph_json **out);
};

/**
 * True if the host provides `service` (a member of ph_host_api): services
 * are appended, so a package built against a newer SDK can ask before it
 * calls one an older host lacks, e.g. `if (ph_host_has(ctx, manage)) ...`.
 */
#define ph_host_has(ctx, service) \
    ((ctx)->api->size >= offsetof(ph_host_api, service) + sizeof((ctx)->api->service))


/* ---- inline helpers ---- */

#if defined(__GNUC__)
#define PH_PRINTF_(fmt, first) __attribute__((format(printf, fmt, first)))
#else
#define PH_PRINTF_(fmt, first)
#endif

/** Logs a line tagged with the instance name. Thread-safe. */
static inline void ph_log(ph_ctx *ctx, ph_log_level level, const char *fmt, ...) PH_PRINTF_(3, 4);
static inline void ph_log(ph_ctx *ctx, ph_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctx->api->logv(ctx, level, fmt, ap);
    va_end(ap);
}

/**
 * The instance parameter `name` ([parameters] of package.ini, overridden by
 * host.ini's [instance NAME]); NULL if undeclared. Borrowed, valid until stop.
 */
static inline const char *ph_param(ph_ctx *ctx, const char *name)
{
    return ctx->api->param(ctx, name);
}

/**
 * Raises an error from the current method or callback: `code` is a short
 * machine-readable word ("not_found", "divide_by_zero"), the message is for
 * people. Returns PH_FAIL so callbacks can `return ph_error(...)`. A method
 * that raised an error has its result discarded; the caller receives the
 * code and message.
 */
static inline int ph_error(ph_ctx *ctx, const char *code, const char *fmt, ...) PH_PRINTF_(3, 4);
static inline int ph_error(ph_ctx *ctx, const char *code, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = ctx->api->errorv(ctx, code, fmt, ap);
    va_end(ap);
    return rc;
}

/**
 * ph_error with the HTTP status the caller receives (RFC 9110): 4xx for what
 * the caller got wrong (400 bad input, 404 no such thing, 409 conflict, 422
 * a valid request the package refuses), 5xx for the package's own faults.
 * Without it a method's error answers 500, unless its code is one of the
 * host's words with a 4xx status ("bad_args" 400, "not_found" 404,
 * "forbidden" 403, "conflict" 409), and a validate hook's refusal answers
 * 422. A status outside 400-599 counts as 500. On a host older than this
 * SDK it is ph_error.
 */
static inline int ph_error_status(ph_ctx *ctx, int status, const char *code, const char *fmt, ...)
    PH_PRINTF_(4, 5);
static inline int ph_error_status(ph_ctx *ctx, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = ph_host_has(ctx, errorv_status) ? ctx->api->errorv_status(ctx, status, code, fmt, ap)
                                         : ctx->api->errorv(ctx, code, fmt, ap);
    va_end(ap);
    return rc;
}

/**
 * Calls `address` ("instance.actor.method") through the host router. Only
 * instances of packages this package declares in [requires] or [optional]
 * may be called (the package's own instance as well). `args` is an object
 * (by name) or array (by position), borrowed; NULL means no arguments.
 * On success returns 0 and sets *out to the result (caller owns it, free with
 * ph_json_free). On failure returns a negative PH_E_* code, sets *out to
 * NULL and records the callee's error (code and message) as the current
 * call's error: a method that just returns passes it on to its caller; one
 * that calls ph_error() afterwards replaces it with its own.
 */
static inline int ph_call(ph_ctx *ctx, const char *address, const ph_json *args, ph_json **out)
{
    return ctx->api->call(ctx, address, args, out);
}

/**
 * Forgets the error of the current call (for example after a failed ph_call
 * the method recovers from), so the method's own result counts again.
 */
static inline void ph_error_reset(ph_ctx *ctx) { ctx->api->error_reset(ctx); }

/**
 * Host management for the package manager: `op` is "packages" (name NULL),
 * "info", "reload", "unload" or "enable" with a package name. Only a package
 * whose package.ini says `manager = true` in [package] may call it (others
 * get PH_E_PERM); its methods that do so should be flagged PH_ADMIN. On
 * success returns 0 and sets *out (caller frees with ph_json_free).
 */
static inline int ph_manage_host(ph_ctx *ctx, const char *op, const char *name, ph_json **out)
{
    return ctx->api->manage(ctx, op, name, out);
}

/**
 * The contributions to extension point `endpoint` that a package declares
 * with [endpoint NAME] in its package.ini (README "Extension points"):
 * on success returns 0 and sets *out (caller frees with ph_json_free) to
 * {"endpoint", "declared_by", "items": [...], "problems": [...]}, each item
 * an object with "package", "item" and the checked values in their declared
 * types, in order ("order" when given, then package, then item). Only
 * packages with a running instance contribute. PH_E_NOTFOUND when no
 * installed package declares the endpoint; PH_E_STATE on a host older than
 * this SDK.
 */
static inline int ph_hooks(ph_ctx *ctx, const char *endpoint, ph_json **out)
{
    if (!ph_host_has(ctx, hooks)) {
        *out = NULL;
        return PH_E_STATE;
    }
    return ctx->api->hooks(ctx, endpoint, out);
}

/** Allocates memory the host may free (results, saved state). */
static inline void *ph_alloc(ph_ctx *ctx, size_t size) { return ctx->api->alloc(size); }
static inline void ph_free(ph_ctx *ctx, void *ptr) { ctx->api->free(ptr); }
/** Copies `s` into host-freeable memory; NULL on allocation failure. */
static inline char *ph_strdup(ph_ctx *ctx, const char *s)
{
    size_t n = 0;
    char *p;
    while (s[n])
        n++;
    p = (char *)ctx->api->alloc(n + 1);
    if (p) {
        size_t i;
        for (i = 0; i <= n; i++)
            p[i] = s[i];
    }
    return p;
}

/** The zeroed per-instance memory of descriptor.instance_size bytes. */
static inline void *ph_instance_data(ph_ctx *ctx) { return ctx->api->instance(ctx); }
/** The instance name (borrowed). */
static inline const char *ph_instance_name(ph_ctx *ctx) { return ctx->api->instance_name(ctx); }

/* JSON readers. All take borrowed values and return borrowed values. */
static inline ph_json_kind ph_json_kind_of(ph_ctx *ctx, const ph_json *v) { return ctx->api->json_kind(v); }
/** Member `key` of an object, or NULL. */
static inline const ph_json *ph_json_get(ph_ctx *ctx, const ph_json *o, const char *key)
{
    return ctx->api->json_get(o, key);
}
/** Element `i` of an array, or NULL. */
static inline const ph_json *ph_json_at(ph_ctx *ctx, const ph_json *a, size_t i) { return ctx->api->json_at(a, i); }
/** Number of elements (array), members (object) or bytes (string). */
static inline size_t ph_json_len(ph_ctx *ctx, const ph_json *v) { return ctx->api->json_len(v); }
static inline int64_t ph_json_i64(ph_ctx *ctx, const ph_json *v) { return ctx->api->json_i64(v); }
static inline double ph_json_f64(ph_ctx *ctx, const ph_json *v) { return ctx->api->json_f64(v); }
/** The string of a string value, or NULL. Borrowed from `v`. */
static inline const char *ph_json_str(ph_ctx *ctx, const ph_json *v) { return ctx->api->json_str(v); }
static inline int ph_json_bool(ph_ctx *ctx, const ph_json *v) { return ctx->api->json_bool(v); }

/* JSON builders. Every returned value is owned by the caller until it is
 * given away (set/push/returned as a PH_JSON result). */
static inline ph_json *ph_json_object(ph_ctx *ctx) { return ctx->api->json_new(PH_JSON_OBJECT); }
static inline ph_json *ph_json_array(ph_ctx *ctx) { return ctx->api->json_new(PH_JSON_ARRAY); }
static inline ph_json *ph_json_null(ph_ctx *ctx) { return ctx->api->json_new(PH_JSON_NULL); }
static inline ph_json *ph_json_new_i64(ph_ctx *ctx, int64_t v) { return ctx->api->json_new_i64(v); }
static inline ph_json *ph_json_new_f64(ph_ctx *ctx, double v) { return ctx->api->json_new_f64(v); }
static inline ph_json *ph_json_new_str(ph_ctx *ctx, const char *v) { return ctx->api->json_new_str(v); }
static inline ph_json *ph_json_new_bool(ph_ctx *ctx, int v) { return ctx->api->json_new_bool(v); }
/** Sets obj[key] = value; takes ownership of `value` (even on failure). */
static inline int ph_json_set(ph_ctx *ctx, ph_json *obj, const char *key, ph_json *value)
{
    return ctx->api->json_set(obj, key, value);
}
/** Appends value to arr; takes ownership of `value` (even on failure). */
static inline int ph_json_push(ph_ctx *ctx, ph_json *arr, ph_json *value) { return ctx->api->json_push(arr, value); }
/** Parses text; NULL on invalid JSON. Caller owns the result. */
static inline ph_json *ph_json_parse(ph_ctx *ctx, const char *text) { return ctx->api->json_parse(text); }
/** Serialises compactly; caller frees with ph_free. */
static inline char *ph_json_dump(ph_ctx *ctx, const ph_json *v) { return ctx->api->json_dump(v); }
/** Deep copy; caller owns it. */
static inline ph_json *ph_json_copy(ph_ctx *ctx, const ph_json *v) { return ctx->api->json_copy(v); }
/** Frees a value the caller owns; NULL is fine. */
static inline void ph_json_free(ph_ctx *ctx, ph_json *v) { ctx->api->json_free(v); }

/**
 * Runs one SQL statement on the instance database with `params` (array,
 * bound positionally to ?1..?n; NULL for none). On success returns 0 and, if
 * `rows` is not NULL, sets *rows to an array of objects (caller owns it).
 * Errors return a negative code with the SQLite message recorded as the
 * call's error. Tables of declared models may be read; write them through
 * their CRUD actor so validation and hooks run.
 */
static inline int ph_db_query(ph_ctx *ctx, const char *sql, const ph_json *params, ph_json **rows)
{
    return ctx->api->db_query(ctx, sql, params, rows);
}

/* clang-format on */

#ifdef __cplusplus
}
#endif

#endif /* PLUGHOST_SDK_H */
