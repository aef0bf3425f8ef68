/* Scanner fixture: a library a package ships beside its .so (or in lib/). */
#ifndef HELPER_VALUE
#define HELPER_VALUE 1
#endif

__attribute__((visibility("default"))) long pkghelper_value(void)
{
    return HELPER_VALUE;
}
