/*
 * The ELF reader: any bytes as a package's .so (ph_elf_check_image). Under
 * ASan and UBSan a read outside the buffer, a wrapped offset or a misaligned
 * access is a finding. Invariant: refusals are PH_ELOAD and name the file.
 */
#include <string.h>

#include "elfcheck.h"
#include "error.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int rc = ph_elf_check_image(data, size, "fuzz.so");
    if (rc && (rc != PH_ELOAD || strncmp(ph_error_last(), "fuzz.so ", 8) != 0))
        fz_fail("refusal %d does not name the file: %s", rc, ph_error_last());
    return 0;
}
