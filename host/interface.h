/*
 * A package's declared interface (actors, methods with their parameter and
 * result types, models with their fields) compared between two builds, so
 * the host can enforce semantic versioning (semver.org, rule 8): removing
 * or changing anything a caller or a stored record relies on needs a new
 * major version (a new minor version below 1.0.0, as npm's ^0.y reads).
 */
#ifndef PH_HOST_INTERFACE_H
#define PH_HOST_INTERFACE_H

#include <plughost/sdk.h>

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

#endif
