/*
 * package.ini: any bytes as a manifest through ph_manifest_load (the INI
 * reader, names, semver versions and ranges). Invariant: an error names the
 * file; a loaded manifest has name, version and library.
 */
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "manifest.h"

static char *path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    path = fz_path("pkg/package.ini");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ph_manifest *m = NULL;
    fz_write(path, data, size);
    int rc = ph_manifest_load(path, &m);
    if (rc == 0) {
        if (!m->name || !m->version_text || !m->library)
            fz_fail("a loaded manifest lacks name, version or library");
        ph_manifest_free(m);
    } else if (m) {
        fz_fail("an error left a manifest behind");
    } else if (rc == PH_EMANIFEST && !strstr(ph_error_last(), "package.ini")) {
        fz_fail("the error does not name the file: %s", ph_error_last());
    }
    return 0;
}
