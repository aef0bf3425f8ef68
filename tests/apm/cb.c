/*
 * Lifecycle-callback fixture (e2e_apm.sh): every callback appends
 * "INSTANCE VERSION NAME DETAIL" to <dir>/calls.log, where dir is the
 * parameter `dir`, and fails with a message when <dir>/fail-NAME exists;
 * the callbacks named by the parameter `hang` hang (below).
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <plughost/sdk.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * A callback named in the parameter `hang` (comma-separated) does not
 * return for a long time: until <dir>/release exists, at most 120 s (the
 * test ends the host before).
 */
static void hang(ph_ctx *ctx, const char *what)
{
    const char *names = ph_param(ctx, "hang"), *dir = ph_param(ctx, "dir");
    size_t n = strlen(what);
    const char *p = names;
    while (p && (p = strstr(p, what)) != NULL) {
        if ((p == names || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            break;
        p += n;
    }
    if (!p)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/release", dir ? dir : ".");
    struct timespec tenth = {0, 100000000L};
    for (int i = 0; i < 1200 && access(path, F_OK) != 0; i++)
        nanosleep(&tenth, NULL);
}

static int record(ph_ctx *ctx, const char *what, const char *detail)
{
    const char *dir = ph_param(ctx, "dir");
    char path[4096];
    snprintf(path, sizeof path, "%s/calls.log", dir ? dir : ".");
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "%s %s %s%s%s\n", ph_instance_name(ctx), PH_PACKAGE_VERSION, what,
                detail ? " " : "", detail ? detail : "");
        fclose(f);
    }
    hang(ctx, what);
    snprintf(path, sizeof path, "%s/fail-%s", dir ? dir : ".", what);
    if (access(path, F_OK) == 0)
        return ph_error(ctx, "refused", "%s says no (test)", what);
    return PH_OK;
}

static int prepare(ph_ctx *ctx)
{
    return record(ctx, "prepare", NULL);
}
static int start(ph_ctx *ctx)
{
    return record(ctx, "start", NULL);
}
static void stop(ph_ctx *ctx)
{
    record(ctx, "stop", NULL);
}
static int after_install(ph_ctx *ctx)
{
    return record(ctx, "after_install", NULL);
}
static int after_instantiate(ph_ctx *ctx)
{
    return record(ctx, "after_instantiate", NULL);
}
static int before_delete(ph_ctx *ctx)
{
    return record(ctx, "before_delete", NULL);
}

static int upgrade(ph_ctx *ctx, const char *what, const char *from, const char *to)
{
    char detail[256];
    snprintf(detail, sizeof detail, "%s->%s", from, to);
    return record(ctx, what, detail);
}
static int before_upgrade(ph_ctx *ctx, const char *from, const char *to)
{
    return upgrade(ctx, "before_upgrade", from, to);
}
static int after_upgrade(ph_ctx *ctx, const char *from, const char *to)
{
    return upgrade(ctx, "after_upgrade", from, to);
}
static int before_uninstall(ph_ctx *ctx, int purge)
{
    return record(ctx, "before_uninstall", purge ? "purge" : "keep");
}
static int after_mount(ph_ctx *ctx, const char *mount)
{
    return record(ctx, "after_mount", mount);
}

static char *version(ph_ctx *ctx)
{
    return ph_strdup(ctx, PH_PACKAGE_VERSION);
}

static const ph_method cb_methods[] = {
    PH_METHOD0(version, PH_STR),
};

/*
 * -DOLD_DESCRIPTOR: a package built before the callbacks existed, whose
 * descriptor ends before them; the host must not read (or call) them.
 */
#ifdef OLD_DESCRIPTOR
#define CB_SIZE offsetof(ph_package, after_install)
#else
#define CB_SIZE sizeof(ph_package)
#endif

PH_EXTERN_ PH_EXPORT const ph_package plughost_package_v1;
const ph_package plughost_package_v1 = {
    .abi = PH_ABI_VERSION,
    .size = (uint32_t)CB_SIZE,
    .name = PH_PACKAGE_NAME,
    .version = PH_PACKAGE_VERSION,
    .prepare = prepare,
    .start = start,
    .stop = stop,
    .actors = PH_ACTORS(PH_ACTOR("cb", cb_methods)),
    .after_install = after_install,
    .before_upgrade = before_upgrade,
    .after_upgrade = after_upgrade,
    .before_uninstall = before_uninstall,
    .after_instantiate = after_instantiate,
    .before_delete = before_delete,
    .after_mount = after_mount,
};
