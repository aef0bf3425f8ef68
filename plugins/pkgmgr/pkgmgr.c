/*
 * pkgmgr: the package manager, written as an ordinary package against the
 * SDK. Reading is open to everyone; changing the host is admin-only
 * (PH_ADMIN: HTTP callers need the admin token).
 */
#include <plughost/sdk.h>

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
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("packages", package_methods)));
