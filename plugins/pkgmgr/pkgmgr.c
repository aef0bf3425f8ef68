/*
 * pkgmgr: the package manager, written as an ordinary package against the
 * SDK. Reading is open to everyone; changing the host is admin-only
 * (PH_ADMIN: HTTP callers need the admin token). The web page in www/ uses
 * these methods and nothing else.
 */
#include <plughost/sdk.h>
#include <stdarg.h>

/* Runs a management operation and hands its JSON answer to the caller. */
static ph_json *manage(ph_ctx *ctx, const char *op, const char *name)
{
    ph_json *out = NULL;
    if (ph_manage_host(ctx, op, name, &out) != 0)
        return NULL; /* the host's error (code and message) reaches the caller */
    return out;
}

static ph_json *list(ph_ctx *ctx)
{
    return manage(ctx, "packages", NULL);
}
static ph_json *info(ph_ctx *ctx, const char *name)
{
    return manage(ctx, "info", name);
}
static ph_json *reload(ph_ctx *ctx, const char *name)
{
    return manage(ctx, "reload", name);
}
static ph_json *disable(ph_ctx *ctx, const char *name)
{
    return manage(ctx, "disable", name);
}
static ph_json *enable(ph_ctx *ctx, const char *name)
{
    return manage(ctx, "enable", name);
}
static ph_json *install(ph_ctx *ctx, const char *path)
{
    return manage(ctx, "install", path);
}
static ph_json *uninstall(ph_ctx *ctx, const char *name)
{
    return manage(ctx, "remove", name);
}

/*
 * The page's menu (README "Extension points"): the contributions to the
 * `menu` endpoint this package declares in its package.ini, checked and
 * ordered by the host.
 */
static ph_json *menu(ph_ctx *ctx)
{
    ph_json *out = NULL;
    if (ph_hooks(ctx, "menu", &out) != 0)
        return NULL; /* the host's error reaches the caller */
    return out;
}

/* ---- the administrator's page: operations whose arguments travel as one JSON object ---- */

/* Runs management operation `op` with `args` (taken) as its JSON text. */
static ph_json *manage_json(ph_ctx *ctx, const char *op, ph_json *args)
{
    char *text = args ? ph_json_dump(ctx, args) : NULL;
    ph_json_free(ctx, args);
    if (!text) {
        ph_error(ctx, "no_memory", "out of memory");
        return NULL;
    }
    ph_json *out = manage(ctx, op, text);
    ph_free(ctx, text);
    return out;
}

/* An object of string members: key1, value1, ..., NULL. Values may be NULL (left out). */
static ph_json *strings(ph_ctx *ctx, const char *key, ...)
{
    ph_json *o = ph_json_object(ctx);
    va_list ap;
    va_start(ap, key);
    for (; o && key; key = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        if (v)
            ph_json_set(ctx, o, key, ph_json_new_str(ctx, v));
    }
    va_end(ap);
    return o;
}

static ph_json *overview(ph_ctx *ctx)
{
    return manage(ctx, "packages", "detail");
}

static ph_json *upload(ph_ctx *ctx, const char *filename, const char *data)
{
    return manage_json(ctx, "upload", strings(ctx, "filename", filename, "data", data, NULL));
}

static ph_json *uninstall_data(ph_ctx *ctx, const char *name, int purge)
{
    ph_json *args = strings(ctx, "name", name, NULL);
    if (args)
        ph_json_set(ctx, args, "purge", ph_json_new_bool(ctx, purge));
    return manage_json(ctx, "uninstall", args);
}

static ph_json *with_parameters(ph_ctx *ctx, ph_json *args, const ph_json *params)
{
    if (args && params && ph_json_kind_of(ctx, params) != PH_JSON_NULL)
        ph_json_set(ctx, args, "parameters", ph_json_copy(ctx, params));
    return args;
}

static ph_json *instance_new(ph_ctx *ctx, const char *instance, const char *package,
                             const char *mount, const ph_json *parameters)
{
    ph_json *args = strings(ctx, "instance", instance, "package", package, "mount",
                            mount && *mount ? mount : NULL, NULL);
    return manage_json(ctx, "instance_new", with_parameters(ctx, args, parameters));
}

static ph_json *instance_set(ph_ctx *ctx, const char *instance, const ph_json *parameters)
{
    ph_json *args = strings(ctx, "instance", instance, NULL);
    return manage_json(ctx, "instance_set", with_parameters(ctx, args, parameters));
}

static const ph_method package_methods[] = {
    PH_METHOD0_EX("list", list, PH_JSON, 0, "Every instance: package, version, state, reloads."),
    PH_METHOD_EX("info", info, PH_JSON, 0, "A package's manifest, instances and stored data.",
                 PH_ARG("name", PH_STR)),
    PH_METHOD_EX("reload", reload, PH_JSON, PH_ADMIN, "Reloads a package from disk now.",
                 PH_ARG("name", PH_STR)),
    PH_METHOD_EX("disable", disable, PH_JSON, PH_ADMIN,
                 "Stops an instance, or every instance of a package; data is kept.",
                 PH_ARG("name", PH_STR)),
    PH_METHOD_EX("enable", enable, PH_JSON, PH_ADMIN,
                 "Loads the build on disk of an instance (or a package's instances) and starts "
                 "it.",
                 PH_ARG("name", PH_STR)),
    PH_METHOD_EX("install", install, PH_JSON, PH_ADMIN,
                 "Checks the package directory at path, copies it into the package directory "
                 "and loads it.",
                 PH_ARG("path", PH_STR)),
    PH_METHOD_EX("remove", uninstall, PH_JSON, PH_ADMIN,
                 "Disables a package and deletes its directory; its data is kept.",
                 PH_ARG("name", PH_STR)),
    PH_METHOD0_EX("menu", menu, PH_JSON, 0,
                  "The page's menu: the items packages contribute to the menu endpoint."),
    PH_METHOD0_EX("overview", overview, PH_JSON, 0,
                  "Every instance with its parameters, dependents, data and crashes; the "
                  "installed packages; whether host.ini can be written."),
    PH_METHOD_EX("upload", upload, PH_JSON, PH_ADMIN,
                 "Installs an uploaded distribution archive (NAME-VERSION.phpkg, base64; "
                 "verified against host.ini's [trust]).",
                 PH_ARG("filename", PH_STR), PH_ARG("data", PH_STR)),
    PH_METHOD_EX("uninstall", uninstall_data, PH_JSON, PH_ADMIN,
                 "Removes a package; its data is kept, or with purge deleted after a backup "
                 "(the answer names it).",
                 PH_ARG("name", PH_STR), PH_ARG("purge", PH_BOOL)),
    PH_METHOD_EX("instance_new", instance_new, PH_JSON, PH_ADMIN,
                 "Adds an instance of a package with its own mount and parameters to host.ini "
                 "and applies it.",
                 PH_ARG("instance", PH_STR), PH_ARG("package", PH_STR), PH_ARG("mount", PH_STR),
                 PH_ARG("parameters", PH_JSON)),
    PH_METHOD_EX("instance_set", instance_set, PH_JSON, PH_ADMIN,
                 "Sets an instance's parameters in host.ini (null: the package's default) and "
                 "applies them.",
                 PH_ARG("instance", PH_STR), PH_ARG("parameters", PH_JSON)),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("packages", package_methods)));
