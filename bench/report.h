/*
 * One line per figure that has a target: the value, the target and the
 * verdict (ok / MISS), the same line in every benchmark, so a figure cannot
 * drift from the claim it is measured against. When PH_BENCH_RESULTS names a
 * file, the figure is also appended there (tab-separated: name, value, unit,
 * comparison, target, verdict); bench/run.sh prints the summary table from
 * it and fails on a MISS under STRICT=1. bench/lib.sh is the shell twin.
 */
#ifndef PH_BENCH_REPORT_H
#define PH_BENCH_REPORT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/**
 * Prints and records one figure. `cmp` is "<=" or ">="; returns 1 when the
 * target is met, 0 on a MISS.
 */
static inline int ph_bench_figure(const char *name, double value, const char *unit, const char *cmp,
                                  double target)
{
    int ok = strcmp(cmp, "<=") == 0 ? value <= target : value >= target;
    printf("  %-46s %9.3f%-3s target %s %g%s  %s\n", name, value, unit, cmp, target, unit,
           ok ? "ok" : "MISS");
    const char *path = getenv("PH_BENCH_RESULTS");
    FILE *f = path && *path ? fopen(path, "a") : NULL;
    if (f) {
        fprintf(f, "%s\t%.3f\t%s\t%s\t%g\t%s\n", name, value, unit, cmp, target,
                ok ? "ok" : "MISS");
        fclose(f);
    }
    fflush(stdout);
    return ok;
}

#endif
