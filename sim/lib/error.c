/* SPDX-License-Identifier: MIT */
/*
 * error.c: the per-thread last error that stands in for WSAGetLastError(),
 * and the one way the library's calls fail (hvsim__fail). The table itself
 * is libhvsim-proto's (sim/proto/errmap.c).
 */
#include <errno.h>

#include "internal.h"

static __thread int last_wsa_error;

int hvsim_get_last_error(void)
{
    return last_wsa_error;
}

int hvsim__fail(int negerr)
{
    int err = negerr < 0 ? -negerr : negerr;

    last_wsa_error = hvsim_wsa_error(err);
    errno = err;
    return -1;
}
