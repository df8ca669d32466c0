/* SPDX-License-Identifier: MIT */
/*
 * libc.c: the one way libhvsim reaches the libc calls an interposer may
 * export itself (socket, connect, send, close ...).
 *
 * In a normal link the table points straight at libc's functions. Inside the
 * interposer (libhvsim-preload.so), those names are the interposer's own
 * exported wrappers, so the interposer calls hvsim__libc_use_next() first
 * thing, and the table then holds the next definitions (libc's), found with
 * dlsym(RTLD_NEXT). Either way the library's own AF_UNIX sockets, control
 * connection and anchors never pass through a wrapper meant for the program.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

struct hvsim__libc hvsim__libc = {
#define X(name, ret, args) .name = name,
    HVSIM__LIBC_FUNCS(X)
#undef X
};

int hvsim__libc_use_next(void)
{
    struct hvsim__libc next;
    int missing = 0;

#define X(name, ret, args)                                    \
    next.name = (ret(*) args)dlsym(RTLD_NEXT, #name);         \
    if (next.name == NULL)                                    \
        missing = 1;
    HVSIM__LIBC_FUNCS(X)
#undef X
    if (missing)
        return -ENOSYS;
    hvsim__libc = next;
    hvsim__msg_io(next.sendmsg, next.recvmsg, next.close);
    return 0;
}
