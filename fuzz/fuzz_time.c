/*
 * The ISO 8601 / RFC 3339 timestamp parser of model fields (PH_TIME), as
 * CRUD and URL filters reach it: a string through ph_store_coerce.
 * Invariants: an accepted time is an integer of Unix milliseconds, and a
 * well-formed UTC time "YYYY-MM-DDTHH:MM:SSZ" means what timegm says.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "fuzz.h"
#include "store.h"

static void check_utc(const char *s, json_int_t got)
{
    struct tm tm;
    char z;
    memset(&tm, 0, sizeof tm);
    if (strlen(s) != 20 ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &z) != 7 ||
        z != 'Z')
        return;
    for (int i = 0; i < 20; i++)
        if ((i == 4 || i == 7)     ? s[i] != '-'
            : i == 10              ? s[i] != 'T'
            : (i == 13 || i == 16) ? s[i] != ':'
            : i == 19              ? 0
                                   : (s[i] < '0' || s[i] > '9'))
            return;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    json_int_t want = (json_int_t)timegm(&tm) * 1000;
    if (want != got)
        fz_fail("'%s' gave %lld, timegm says %lld", s, (long long)got, (long long)want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *in = json_stringn((const char *)data, size);
    if (!in)
        return 0; /* not UTF-8 or holds NUL: JSON never carries it */
    ph_store_field f = {.name = "when", .type = PH_TIME, .ref = -1};
    json_t *out = NULL;
    int rc = ph_store_coerce(&f, NULL, in, &out);
    if (rc == 0) {
        if (!json_is_integer(out))
            fz_fail("a time is not an integer");
        check_utc(json_string_value(in), json_integer_value(out));
    } else if (rc != PH_EARGS || !strstr(ph_error_last(), "field 'when' must be a time")) {
        fz_fail("refusal %d: %s", rc, ph_error_last());
    }
    json_decref(out);
    json_decref(in);
    return 0;
}
