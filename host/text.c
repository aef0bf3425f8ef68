#include "text.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"

int ph_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; s && i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return PH_EINVAL;
}

int ph_parse_i64(const char *s, int64_t *out)
{
    if (!s || !(*s == '-' || (*s >= '0' && *s <= '9')))
        return PH_EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || (*s == '-' && end == s + 1))
        return PH_EINVAL;
    *out = v;
    return 0;
}

int ph_parse_f64(const char *s, double *out)
{
    if (!s || !*s || *s == ' ' || *s == '\t' || *s == '\n')
        return PH_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return PH_EINVAL;
    *out = v;
    return 0;
}

size_t ph_dotted(char *buf, size_t size, const char *a, const char *b, const char *c)
{
    const char *parts[3] = {a, b, c};
    size_t need = 0, at = 0;
    for (int i = 0; i < 3 && parts[i]; i++) {
        size_t n = strlen(parts[i]);
        if (i) {
            if (at + 1 < size)
                buf[at++] = '.';
            need++;
        }
        size_t room = size - 1 - at;
        memcpy(buf + at, parts[i], n < room ? n : room);
        at += n < room ? n : room;
        need += n;
    }
    buf[at] = '\0';
    return need;
}

char *ph_dotted_in(char *stack, size_t size, const char *a, const char *b, const char *c)
{
    size_t need = ph_dotted(stack, size, a, b, c);
    if (need < size)
        return stack;
    char *heap = malloc(need + 1);
    if (heap)
        ph_dotted(heap, need + 1, a, b, c);
    return heap;
}

void ph_dotted_free(char *address, char *stack)
{
    if (address != stack)
        free(address);
}
