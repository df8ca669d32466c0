/* SPDX-License-Identifier: MIT */
/*
 * internal.h: what the files of libhvsim share but do not export. Only
 * sim/lib includes it: the daemon and the tools share libhvsim-proto
 * (sim/proto), the adapters hvsim_adapter.h. Internal functions return 0 or a negative
 * errno; only the POSIX-shaped calls of hvsim.h use -1 and errno.
 */
#ifndef HVSIM_INTERNAL_H
#define HVSIM_INTERNAL_H

#include <stdint.h>
#include <time.h>

#include "hvsim/hvsim.h"
#include "hvproto/mutants.h"
#include "hvproto/proto.h"
#include "hvproto/util.h"
#include "hvsim_adapter.h"

#define HVSIM_DEBUG 0

/* ---- libc.c: the one table through which the library reaches libc -------------- */

/* Every libc call of the library that an interposer may also export. In a
 * normal link the entries are libc's functions; inside the interposer,
 * hvsim__libc_use_next() (hvsim_adapter.h) sets them to the next definitions
 * with dlsym(RTLD_NEXT), so the library never lands on the interposer's
 * wrappers. Never called through anything else in sim/lib. */
#define HVSIM__LIBC_FUNCS(X)                                                  \
    X(socket, int, (int, int, int))                                           \
    X(socketpair, int, (int, int, int, int *))                                \
    X(bind, int, (int, const struct sockaddr *, socklen_t))                   \
    X(connect, int, (int, const struct sockaddr *, socklen_t))                \
    X(listen, int, (int, int))                                                \
    X(accept4, int, (int, struct sockaddr *, socklen_t *, int))               \
    X(getsockopt, int, (int, int, int, void *, socklen_t *))                  \
    X(setsockopt, int, (int, int, int, const void *, socklen_t))              \
    X(shutdown, int, (int, int))                                              \
    X(send, ssize_t, (int, const void *, size_t, int))                        \
    X(recv, ssize_t, (int, void *, size_t, int))                              \
    X(sendmsg, ssize_t, (int, const struct msghdr *, int))                    \
    X(recvmsg, ssize_t, (int, struct msghdr *, int))                          \
    X(close, int, (int))                                                      \
    X(fcntl, int, (int, int, ...))                                            \
    X(open, int, (const char *, int, ...))

struct hvsim__libc {
#define X(name, ret, args) ret(*name) args;
    HVSIM__LIBC_FUNCS(X)
#undef X
};

extern struct hvsim__libc hvsim__libc;

/* Set errno and the thread's Winsock code from a negative errno; returns -1. */
int hvsim__fail(int negerr);

/* ---- client.c: this process's attachment to the daemon ----------------------- */

/* One request/reply round trip on the control connection. Returns 0 when a
 * reply of want_type (or an error reply) arrived, with its status in *status;
 * else -errno of the transport (-ENETDOWN: daemon gone). */
int hvsim__request(unsigned type, const void *body, size_t blen, unsigned want_type, void *reply, size_t rlen,
                   int32_t *status);
/* The same, passing pass_fd (>= 0) with the request; got_fd (if not NULL)
 * gets an fd the reply carried, or -1. */
int hvsim__request_fd(unsigned type, const void *body, size_t blen, int pass_fd, unsigned want_type, void *reply,
                      size_t rlen, int32_t *status, int *got_fd);
/* 1 when this process (not a forked child) holds a live attachment. */
int hvsim__attached(void);
/* Make fd a failed connect: it reports nothing until after_ms passed, then
 * EPOLLOUT|EPOLLERR|EPOLLHUP (design-notes section 1). Returns 0 or -errno. */
int hvsim__limbo(int fd, uint32_t after_ms);

/* ---- socket.c ------------------------------------------------------------------- */

/* Apply a partition event from the daemon to this process's sockets. */
void hvsim__sock_event(const GUID *vmid, uint32_t event);
void hvsim__sock_atfork_child(void);

#endif /* HVSIM_INTERNAL_H */
