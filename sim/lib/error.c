/* SPDX-License-Identifier: MIT */
/*
 * error.c: the one table that maps each errno to its Winsock code, name and
 * message (HVSIM_ERRNO_MAP in hvsim.h), and the per-thread last error that
 * stands in for WSAGetLastError().
 */
#include <string.h>

#include "hvsim/hvsim.h"
#include "internal.h"

static __thread int last_wsa_error;

#define ROW(name, err, wsa, msg) { err, wsa, #name, "WSA" #name, msg },
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
    /* EPIPE has no Winsock name of its own: Winsock reports WSAESHUTDOWN. */
    if (table[i].err == EPIPE)
        return "WSAESHUTDOWN";
    if (table[i].err == ENOMEM)
        return "WSAENOBUFS";
    return table[i].wsa_name;
}

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
