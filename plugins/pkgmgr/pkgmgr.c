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
    return manage(ctx, "unload", name);
}
static ph_json *enable(ph_ctx *ctx, const char *name)
{
    return manage(ctx, "enable", name);
}

static const ph_method package_methods[] = {
    PH_METHOD0_EX("list", list, PH_JSON, 0, "Every instance: package, version, state, reloads."),
    PH_METHOD_EX("info", info, PH_JSON, 0, "A package's manifest, instances and stored data.",
                 PH_ARG("name", PH_STR)),
    PH_METHOD_EX("reload", reload, PH_JSON, PH_ADMIN, "Reloads a package from disk now.",
                 PH_ARG("name", PH_STR)),
    PH_METHOD_EX("disable", disable, PH_JSON, PH_ADMIN,
                 "Stops a package's instances; their data is kept.", PH_ARG("name", PH_STR)),
    PH_METHOD_EX("enable", enable, PH_JSON, PH_ADMIN, "Starts a disabled package again.",
                 PH_ARG("name", PH_STR)),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("packages", package_methods)));
