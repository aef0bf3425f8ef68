/*
 * Host management, one implementation for every caller: the HTTP host
 * endpoints (/_/packages, POST /_/reload|unload|enable/<package>) and the
 * package manager plugin (through the host API's `manage`).
 */
#ifndef PH_HOST_MANAGE_H
#define PH_HOST_MANAGE_H

#include <jansson.h>

#include "host.h"

/**
 * Instances with package, version, state, dependencies, and for loaded ones
 * the reload bookkeeping: {"instances": [...]} (new reference, NULL on no
 * memory). Safe against concurrent reloads and configuration reloads.
 */
json_t *ph_manage_packages(ph_host *h);

/**
 * Runs a management operation:
 *   "packages"            -> as ph_manage_packages
 *   "info"    NAME        -> the package's manifest, instances and data
 *   "reload"  NAME        -> {"package", "swapped", "result"}
 *   "disable" NAME        -> stops the instance, or every instance of the package (data
 *                            kept; "unload" is the same)
 *   "enable"  NAME        -> loads NAME's build on disk and starts it (instance or package)
 *   "install" DIR         -> ph_install (check, copy into the package directory, load)
 *   "remove"  NAME        -> ph_uninstall (callbacks, disable, delete the directory; data
 *                            kept: "data" says where); NAME@VERSION removes one version
 *   "purge"   NAME        -> the same with purge: before_uninstall is told, and each
 *                            instance's data is deleted after a backup ("data")
 * The package manager page's operations take a JSON object as `name`:
 *   "packages" "detail"   -> {"instances": [as above, plus "parameters", "defaults",
 *                            "dependents", "data" (path, bytes, models: records),
 *                            "configured", "crashes", "quarantined"], "packages":
 *                            [installed: package, version, directory, instances,
 *                            parameters], "config": {path, writable}, "data_dir"}
 *   "upload"   {"filename": "NAME-VERSION.phpkg", "data": BASE64}
 *                         -> saved under <data_dir>/uploads (at most 64 MiB), then
 *                            ph_install; the file is deleted afterwards
 *   "uninstall" {"name", "purge": bool}
 *                         -> ph_uninstall, then each instance's data kept ("path")
 *                            or purged after a backup ("backup")
 *   "instance_new" {"instance", "package", "mount"?, "parameters"?}
 *   "instance_set" {"instance", "parameters": {key: value or null}}
 *                         -> written to host.ini (config_write.h), then applied as
 *                            SIGHUP does when the process is `plughost run`
 *                            ("applying": true); PH_ESTATE without a host.ini
 * Returns 0 with *out (caller owns it) or a negative PH_E* code with detail
 * in ph_error_last() (PH_EINVAL names the known operations).
 */
int ph_manage(ph_host *h, const char *op, const char *name, json_t **out);

#endif
