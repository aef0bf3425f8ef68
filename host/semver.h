/*
 * Semantic versions (semver 2.0.0) and version ranges.
 *
 * Ranges: "*", "1.2.3", "=1.2.3", ">1", ">=1.0", "<2", "<=2.1", "^1.2",
 * "~1.2.3", partial versions ("1", "1.2" meaning 1.x / 1.2.x), and
 * comma-separated intersections (">=1.0, <2"). Pre-release versions only
 * satisfy a comparator whose own version has a pre-release on the same
 * major.minor.patch (npm's rule), so "^1.0" never picks 2.0.0-rc.1.
 *
 * Sugar is lowered at parse time (npm semantics): "1.2" = ">=1.2.0, <1.3.0-0";
 * ">1.2" = ">=1.3.0"; "<=1.2" = "<1.3.0-0"; "^1.2.3" = ">=1.2.3, <2.0.0-0";
 * "^0.2.3" = "<0.3.0-0"; "^0.0.3" = "<0.0.4-0"; "~1.2.3" and "~1.2" =
 * "<1.3.0-0"; "~1" = "<2.0.0-0"; "<2" = "<2.0.0-0". Every upper bound of a
 * sugar form is the bound's lowest pre-release ("-0"), as node-semver writes
 * it, so "^1.2, >=2.0.0-alpha" does not admit 2.0.0-beta. 'x', 'X' and '*' are wildcards ("1.x").
 * Not supported, with a message saying so: "||", hyphen ranges "A - B", space-separated
 * comparators. Other tools' spellings get the plughost spelling to write
 * instead: "~>1.2" (Ruby), "~=1.2" (Python), "==1.2", "!=1.2", "=>1.2",
 * a quoted "\"^1.2\"" and intervals "[1.0,2.0)".
 *
 * Errors (PH_EINVAL) read "invalid version 'TEXT': why" or
 * "invalid range 'TEXT': why", e.g. "invalid version '1.02.3': minor version
 * '02' has a leading zero". All functions are reentrant and thread-safe.
 */
#ifndef PH_HOST_SEMVER_H
#define PH_HOST_SEMVER_H

#include <stdbool.h>
#include <stdint.h>

#define PH_SEMVER_PRE_MAX 64

typedef struct ph_semver {
    uint64_t major, minor, patch;
    char pre[PH_SEMVER_PRE_MAX]; /* pre-release without '-', "" if none; build metadata dropped */
} ph_semver;

/**
 * Parses a full version "1.2.3[-pre][+build]" strictly by semver 2.0.0 (no
 * leading zeros, no empty identifiers, no 'v' prefix, no spaces). A
 * pre-release longer than PH_SEMVER_PRE_MAX - 1 characters is refused.
 * 0 or PH_EINVAL (message says why); *out is written only on success.
 */
int ph_semver_parse(const char *text, ph_semver *out);
/** <0, 0, >0 by semver precedence (build metadata ignored). */
int ph_semver_cmp(const ph_semver *a, const ph_semver *b);
/**
 * Writes "1.2.3[-pre]" into buf; 96 bytes always suffice, a smaller buffer
 * gets a truncated, NUL-terminated text. Returns buf.
 */
char *ph_semver_format(const ph_semver *v, char *buf, unsigned long size);

typedef enum { PH_OP_EQ, PH_OP_LT, PH_OP_LE, PH_OP_GT, PH_OP_GE } ph_semver_op;
typedef struct ph_semver_cmpr {
    ph_semver_op op;
    ph_semver v;
    /*
     * A lower bound lowered from a partial version (">=2", "^1.2", "1.x"):
     * node-semver's includePrerelease reads it as ">=X.Y.Z-0", so the
     * bound's own pre-releases are covered (ph_range_covers).
     */
    bool floor;
} ph_semver_cmpr;

#define PH_RANGE_MAX 8
typedef struct ph_range {
    int n; /* 0 = any version ("*") */
    ph_semver_cmpr c[PH_RANGE_MAX * 2];
    char text[128]; /* the range as written, for messages */
} ph_range;

/**
 * Parses a range (at most PH_RANGE_MAX comma-separated parts and 127
 * characters); 0 or PH_EINVAL with a message naming the bad part. An empty
 * text is an error: "*" means any version.
 */
int ph_range_parse(const char *text, ph_range *out);
/**
 * True if `v` satisfies every comparator of `r` and, when `v` is a
 * pre-release, some comparator names a pre-release of the same
 * MAJOR.MINOR.PATCH (what a requirement accepts).
 */
bool ph_range_satisfies(const ph_range *r, const ph_semver *v);
/**
 * True if `v` lies inside `r`, pre-releases included (node-semver's
 * includePrerelease): what a [conflicts] range keeps out, so that
 * "x = <2" conflicts with 1.5.0-rc.1, "x = *" with 2.0.0-beta.1 and
 * "x = >=2" with 2.0.0-beta.1 (a partial lower bound is ">=2.0.0-0" there).
 */
bool ph_range_covers(const ph_range *r, const ph_semver *v);

#endif
