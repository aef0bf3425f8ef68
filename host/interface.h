/*
 * A package's declared interface (actors, methods with their parameter and
 * result types, models with their fields) compared between two builds, so
 * the host can enforce semantic versioning (semver.org, rule 8): removing
 * or changing anything a caller or a stored record relies on needs a new
 * major version (a new minor version below 1.0.0, as npm's ^0.y reads).
 */
#ifndef PH_HOST_INTERFACE_H
#define PH_HOST_INTERFACE_H

#include <jansson.h>
#include <plughost/sdk.h>

#include "semver.h"

/**
 * Lists what `newer` removes or changes of `older`'s interface: removed
 * actors, methods, models and fields; a method whose parameters (count,
 * names, types), result type or admin flag changed; a field whose type
 * changed or that became required. Additions are compatible. Returns the
 * number of breaking differences (0: compatible) and, when there are any
 * and `text` is not NULL, *text (caller frees) as "removed actor 'math';
 * method 'math.add': parameter 'b' is now string (was int64)". Negative
 * PH_ENOMEM on allocation failure. Both descriptors must be validated.
 */
int ph_interface_diff(const ph_package *older, const ph_package *newer, char **text);

/**
 * The declared interface of a validated descriptor as JSON (new reference,
 * NULL on no memory): {"actors": {ACTOR: {METHOD: {"result", "params":
 * [[name, type]...], "admin"}}}, "models": {MODEL: {"crud", "fields":
 * {FIELD: {"type", "required"}}}}}. Kept with a build (build.h) and sent by
 * the scanner (scan.h), so builds can be compared without loading both.
 */
json_t *ph_interface_json(const ph_package *d);

/**
 * ph_interface_diff over two ph_interface_json documents; without
 * `with_models`, only the calling interface (actors and methods) counts.
 */
int ph_interface_diff_json(const json_t *older, const json_t *newer, int with_models, char **text);

/**
 * True if going from version `older` to `newer` must keep the interface:
 * an upgrade or a rebuild within the same major version (the same minor
 * below 1.0.0). Going back a version is left to the dependents' ranges.
 */
int ph_interface_must_keep(const ph_semver *older, const ph_semver *newer);

#endif
