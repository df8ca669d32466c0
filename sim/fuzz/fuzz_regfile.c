/* SPDX-License-Identifier: MIT */
/*
 * fuzz_regfile.c: libFuzzer harness for the `reg export` reader
 * (hvsim__regfile_parse), which reads files a user hands to the daemon.
 *
 * Besides crashes and sanitizer reports it checks the promises of regfile.h:
 * a success yields bounded, control-free element names; a failure leaves the
 * result empty and names the line (or the file) in its message.
 *
 * With -DHVSIM_FUZZ_STANDALONE it builds with plain gcc into a program that
 * runs the target once on each file named on the command line (or on standard
 * input), for a smoke run over the corpus where libFuzzer is not available.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvsim/hvsim.h"
#include "hvproto/regfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hvsim_regfile_t r;
    char err[256];
    size_t i, j;
    int rc;

    err[0] = '\0';
    rc = hvsim__regfile_parse(data, size, &r, err, sizeof(err));
    if (rc != 0) {
        if (rc != -EINVAL && rc != -ENOMEM)
            abort();
        if (r.v != NULL || r.n != 0)
            abort();
        if (rc == -EINVAL && strncmp(err, "line ", 5) != 0 && strncmp(err, "file: ", 6) != 0)
            abort();
        return 0;
    }
    for (i = 0; i < r.n; i++) {
        const char *name = r.v[i].element_name;
        size_t n = strnlen(name, sizeof(r.v[i].element_name));

        if (n == sizeof(r.v[i].element_name))
            abort();
        for (j = 0; j < n; j++)
            if ((unsigned char)name[j] < 0x20 || name[j] == 0x7F)
                abort();
        /* One entry per GUID: duplicate keys merge. */
        for (j = 0; j < i; j++)
            if (hvsim_guid_equal(&r.v[i].id, &r.v[j].id))
                abort();
    }
    hvsim__regfile_free(&r);
    return 0;
}

#ifdef HVSIM_FUZZ_STANDALONE
#include "standalone.h"
#endif
