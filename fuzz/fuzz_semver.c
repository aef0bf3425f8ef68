/*
 * Semantic versions and ranges: "VERSION\nRANGE". Invariants: a parsed
 * version formats back to a text that parses to the same version; a
 * version equals itself; satisfies() is total and implies covers().
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "semver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_str(data, size);
    char *nl = strchr(text, '\n');
    const char *range_text = nl ? nl + 1 : text;
    if (nl)
        *nl = '\0';
    ph_semver v, again;
    ph_range r;
    int v_ok = ph_semver_parse(text, &v) == 0;
    int r_ok = ph_range_parse(range_text, &r) == 0;
    if (v_ok) {
        char buf[96];
        ph_semver_format(&v, buf, sizeof buf);
        if (ph_semver_parse(buf, &again) != 0 || ph_semver_cmp(&v, &again) != 0)
            fz_fail("'%s' formats as '%s', which does not parse back", text, buf);
        if (ph_semver_cmp(&v, &v) != 0)
            fz_fail("'%s' is not equal to itself", text);
    }
    /* What a requirement accepts, a conflict with the same range keeps out. */
    if (r_ok && v_ok && ph_range_satisfies(&r, &v) && !ph_range_covers(&r, &v))
        fz_fail("'%s' satisfies '%s' but the range does not cover it", text, range_text);
    free(text);
    return 0;
}
