/*
 * host.ini: any bytes as a configuration file through ph_config_load (the
 * INI reader and every key's parser). Invariant: a format or value error
 * names the file and line.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "fuzz.h"

static char *path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    path = fz_path("host.ini");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ph_config c;
    fz_write(path, data, size);
    int rc = ph_config_load(path, &c);
    if (rc == 0) {
        if (!c.data_dir || !c.n_package_dirs || !c.http.listen_addr)
            fz_fail("a loaded config lacks its defaults");
        for (size_t i = 0; i < c.n_instances; i++)
            if (!c.instances[i].name || !c.instances[i].package || !c.instances[i].mount)
                fz_fail("instance %zu is half-built", i);
        ph_config_free(&c);
    } else if (rc == PH_ECONFIG && strncmp(ph_error_last(), path, strlen(path)) != 0) {
        fz_fail("the error does not name the file: %s", ph_error_last());
    }
    return 0;
}
