#include "path.h"

#include <stdlib.h>
#include <string.h>

char *ph_path_join(const char *dir, const char *name)
{
    size_t d = dir ? strlen(dir) : 0;
    while (d > 1 && dir[d - 1] == '/')
        d--;
    while (d && *name == '/')
        name++;
    size_t n = strlen(name);
    int sep = d && dir[d - 1] != '/'; /* "/" itself ends with one */
    char *p = malloc(d + (size_t)sep + n + 1);
    if (!p)
        return NULL;
    if (d)
        memcpy(p, dir, d); /* dir may be NULL when d is 0 */
    if (sep)
        p[d] = '/';
    memcpy(p + d + (size_t)sep, name, n + 1);
    return p;
}

char *ph_path_trim(char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        path[--n] = '\0';
    return path;
}
