/* SPDX-License-Identifier: MIT */
/*
 * fuzz_persist.c: libFuzzer harness for the daemon's state-file parser
 * (persist_parse) and its formatter.
 *
 * The property checked is the one the daemon relies on across restarts:
 * whatever the parser accepts, persist_format can write, and that text parses
 * back into a state that formats to the very same text.
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
#include "../daemon/persist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    persist_t p, q;
    char err[256];
    char *text = NULL, *again = NULL;
    int rc;

    err[0] = '\0';
    rc = persist_parse((const char *)data, size, &p, err, sizeof(err));
    if (rc != 0) {
        if (rc != -EINVAL && rc != -ENOMEM)
            abort();
        if (p.vms != NULL || p.nvms != 0 || p.services != NULL || p.settings != NULL)
            abort();
        if (rc == -EINVAL && strncmp(err, "state line ", 11) != 0)
            abort();
        return 0;
    }
    if (persist_format(&p, &text) != 0)
        abort(); /* an accepted state must be writable */
    if (persist_parse(text, strlen(text), &q, err, sizeof(err)) != 0) {
        fprintf(stderr, "formatted state does not parse: %s\n%s", err, text);
        abort();
    }
    if (persist_format(&q, &again) != 0 || strcmp(text, again) != 0) {
        fprintf(stderr, "round trip differs:\n%s---\n%s", text, again ? again : "(null)\n");
        abort();
    }
    free(text);
    free(again);
    persist_free(&p);
    persist_free(&q);
    return 0;
}

#ifdef HVSIM_FUZZ_STANDALONE
#include "standalone.h"
#endif
