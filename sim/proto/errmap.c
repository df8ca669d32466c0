/* SPDX-License-Identifier: MIT */
/*
 * errmap.c: lookups in the one table that maps each errno to its Winsock
 * code, name and message (HVSIM_ERRNO_MAP in hvsim/errmap.h). Part of
 * libhvsim's public API, and shared by the daemon and the tools for their
 * messages.
 */
#include <string.h>

#include "hvsim/hvsim.h"

#define ROW(name, err, wsa, wsa_name, msg) { err, wsa, #name, #wsa_name, msg },
static const struct {
    int err;
    int wsa;
    const char *name;
    const char *wsa_name;
    const char *msg;
} table[] = { HVSIM_ERRNO_MAP(ROW) };
#undef ROW

static int find(int err)
{
    size_t i;

    if (err < 0)
        err = -err;
    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (table[i].err == err)
            return (int)i;
    return -1;
}

int hvsim_wsa_error(int err)
{
    int i = find(err);

    return i < 0 ? 0 : table[i].wsa;
}

const char *hvsim_strerror(int err)
{
    int i = find(err);

    return i < 0 ? strerror(err < 0 ? -err : err) : table[i].msg;
}

const char *hvsim_err_name(int err)
{
    int i = find(err);

    return i < 0 ? "UNKNOWN" : table[i].name;
}

const char *hvsim_wsa_name(int err)
{
    int i = find(err);

    if (i < 0 || table[i].wsa == 0)
        return "";
    return table[i].wsa_name;
}

