/* SPDX-License-Identifier: MIT */
/*
 * cli.h: what every hvsim binary says the same way: its version line
 * (--version) and a socket error in the words of the personality that saw it.
 * One copy, in libhvsim-proto, linked by the daemon, the tools, the back-end
 * and the interposer's launchers.
 */
#ifndef HVPROTO_CLI_H
#define HVPROTO_CLI_H

#include <stddef.h>

/* Print "PROG (hvsim) X.Y.Z" (HVSIM_VERSION_* of hvsim.h) to stdout; 0. */
int hvsim__cli_version(const char *prog);

enum hvsim_cli_personality {
    HVSIM_CLI_LINUX,   /* errno's name and strerror: "ECONNREFUSED: Connection refused" */
    HVSIM_CLI_WINDOWS, /* Winsock's: "WSAECONNREFUSED 10061: No connection could be made ..." */
};

/* err (either sign) as the personality reports it, into buf; returns buf. */
const char *hvsim__cli_errtext(int err, enum hvsim_cli_personality p, char *buf, size_t len);

#endif
