/*
 * The ELF reader: any bytes as a package's .so (ph_elf_check_image, and
 * ph_elf_dyn_read for what the loader stages). Under ASan and UBSan a read
 * outside the buffer, a wrapped offset or a misaligned access is a finding.
 * Invariants: refusals are PH_ELOAD and name the file; every string offset
 * the dynamic reader returns lies inside the input and holds that string
 * (the loader writes renamed library names there).
 */
#include <string.h>

#include "elfcheck.h"
#include "error.h"
#include "fuzz.h"

static void check_strings(const uint8_t *data, size_t size, const ph_elf_str *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(s[i].text);
        if (s[i].off > size || len >= size - s[i].off ||
            memcmp(data + s[i].off, s[i].text, len + 1) != 0)
            fz_fail("string '%s' is not at offset %zu of the input", s[i].text, s[i].off);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int rc = ph_elf_check_image(data, size, "fuzz.so");
    if (rc && (rc != PH_ELOAD || strncmp(ph_error_last(), "fuzz.so ", 8) != 0))
        fz_fail("refusal %d does not name the file: %s", rc, ph_error_last());
    ph_elf_dyn d;
    rc = ph_elf_dyn_read(data, size, "fuzz.so", &d);
    if (rc && rc != PH_ELOAD && rc != PH_ENOMEM)
        fz_fail("dynamic reader: code %d: %s", rc, ph_error_last());
    if (!rc) {
        check_strings(data, size, d.needed, d.n_needed);
        check_strings(data, size, d.verneed, d.n_verneed);
        for (size_t i = 0; i < d.n_strings; i++)
            if (d.strings[i] >= size)
                fz_fail("string offset %zu past the input (%zu bytes)", d.strings[i], size);
        ph_elf_dyn_free(&d);
    }
    return 0;
}
