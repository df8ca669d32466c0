/* SPDX-License-Identifier: MIT */
/*
 * cli.c: the version line and the personality's error words shared by every
 * hvsim binary (hvproto/cli.h).
 */
#include <stdio.h>
#include <string.h>

#include "hvsim/hvsim.h"
#include "hvproto/cli.h"

#define STR_(x) #x
#define STR(x) STR_(x)

int hvsim__cli_version(const char *prog)
{
    printf("%s (hvsim) " STR(HVSIM_VERSION_MAJOR) "." STR(HVSIM_VERSION_MINOR) "." STR(HVSIM_VERSION_PATCH) "\n",
           prog);
    return 0;
}

const char *hvsim__cli_errtext(int err, enum hvsim_cli_personality p, char *buf, size_t len)
{
    const char *name;

    if (err < 0)
        err = -err;
    if (p == HVSIM_CLI_WINDOWS && hvsim_wsa_error(err)) {
        snprintf(buf, len, "%s %d: %s", hvsim_wsa_name(err), hvsim_wsa_error(err), hvsim_strerror(err));
        return buf;
    }
    name = strerrorname_np(err);
    snprintf(buf, len, "%s: %s", name ? name : hvsim_err_name(err), strerror(err));
    return buf;
}
