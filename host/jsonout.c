#include "jsonout.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int ph_json_buf_add(const char *s, size_t n, void *ud)
{
    ph_json_buf *b = ud;
    if (b->failed || n > SIZE_MAX - b->len - 2)
        goto fail;
    if (b->len + n + 2 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 2)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 2 : cap * 2;
        char *p = realloc(b->p, cap);
        if (!p)
            goto fail;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
fail:
    b->failed = 1; /* jansson may go on writing after a failure it ignored */
    return -1;
}

char *ph_json_dumps(const json_t *v, size_t flags)
{
    ph_json_buf b = {0};
    if (!v || json_dump_callback(v, ph_json_buf_add, &b, flags) != 0 || b.failed || !b.p) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
