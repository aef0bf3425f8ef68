/*
 * For containment fixtures whose constructor misbehaves only in the host:
 * true in the scanner child, a child of the plughost process.
 */
#ifndef PH_TEST_IN_SCANNER_H
#define PH_TEST_IN_SCANNER_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int in_scanner(void)
{
    char path[64], comm[64] = "";
    snprintf(path, sizeof path, "/proc/%d/comm", (int)getppid());
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (!fgets(comm, sizeof comm, f))
        comm[0] = 0;
    fclose(f);
    return strncmp(comm, "plughost", 8) == 0;
}

#endif
