/*
 * APM's lifecycle callbacks of the descriptor (sdk.h: after_install,
 * before_upgrade, after_upgrade, before_uninstall, after_instantiate,
 * before_delete, after_mount): one table of their names, one runner that
 * reads a field only when the package's descriptor is long enough to hold
 * it (a package built before they existed has none). The call sites (host.c,
 * install.c, reload.c, instance.c) decide what a failure does; README
 * "Lifecycle callbacks" lists it.
 */
#ifndef PH_HOST_CALLBACKS_H
#define PH_HOST_CALLBACKS_H

#include "instance.h"

#define PH_CALLBACKS(X)                                                                            \
    X(PH_CB_AFTER_INSTALL, "after_install")                                                        \
    X(PH_CB_BEFORE_UPGRADE, "before_upgrade")                                                      \
    X(PH_CB_AFTER_UPGRADE, "after_upgrade")                                                        \
    X(PH_CB_BEFORE_UNINSTALL, "before_uninstall")                                                  \
    X(PH_CB_AFTER_INSTANTIATE, "after_instantiate")                                                \
    X(PH_CB_BEFORE_DELETE, "before_delete")                                                        \
    X(PH_CB_AFTER_MOUNT, "after_mount")

typedef enum ph_callback {
#define PH_CB_ENUM_(id, name) id,
    PH_CALLBACKS(PH_CB_ENUM_)
#undef PH_CB_ENUM_
} ph_callback;

/** What a callback is given: versions (upgrades), purge (uninstall), mount. */
typedef struct ph_callback_args {
    const char *from, *to;
    int purge;
    const char *mount;
} ph_callback_args;

/** The callback's name as the descriptor field ("after_install"). */
const char *ph_callback_name(ph_callback cb);

/** True if version v's package has callback `cb` (descriptor long enough, not NULL). */
int ph_callback_has(const ph_version *v, ph_callback cb);

/**
 * Runs callback `cb` of version v (as ph_version_step runs prepare): PH_OK
 * (also when the package has none) or PH_FAIL with *reason (malloc'd)
 * "NAME failed: <the package's message>". The caller makes sure no call
 * of the instance runs meanwhile. The callback runs within the instance's
 * stop() time limit (ph_instance_stop_timeout_ms, [limits] stop_timeout):
 * past it the host stops waiting, logs and gives PH_FAIL with *reason
 * "package 'P' build B: NAME() did not return within N s; ...", and the
 * build stays mapped (pinned) until the callback returns.
 */
int ph_callback_run(ph_version *v, ph_callback cb, const ph_callback_args *a, char **reason);

/**
 * The same on a running instance's serving version, with its gate closed
 * (calls in flight finish first, new ones wait; at most drain_ms).
 * PH_EBUSY with *reason when the calls did not finish in time (the
 * callback did not run).
 */
int ph_callback_run_live(ph_instance *inst, ph_callback cb, const ph_callback_args *a, int drain_ms,
                         char **reason);

/*
 * after_install runs once per package and data directory: the first time
 * one of its instances starts after the package was installed (by
 * `plughost install`, the package manager, or copied into a package
 * directory). <data_dir>/.installed/<package> records that it ran (its
 * content is the version); a removal by the running host forgets it.
 */
/** True if after_install of `package` ran on this data directory (or need not run). */
int ph_callback_installed(const char *data_dir, const char *package);
/** Records that after_install of `package` ran. 0 or PH_EIO naming the file. */
int ph_callback_mark_installed(const char *data_dir, const char *package, const char *version);
/** Forgets it (the package was removed): a later install runs after_install again. */
void ph_callback_forget_installed(const char *data_dir, const char *package);

#endif
