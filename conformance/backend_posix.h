/* SPDX-License-Identifier: MIT */
/*
 * backend_posix.h: what the two backends whose sockets are Linux file
 * descriptors (backend_hvsim.c over libhvsim, backend_native.c over the
 * kernel's AF_VSOCK) share, from backend_posix.c: the mapping of backend.h's
 * flags and options to the POSIX ones and the errno convention. cf_poll and
 * cf_watch_* are backend_posix.c's whole.
 */
#ifndef HVSIM_CF_BACKEND_POSIX_H
#define HVSIM_CF_BACKEND_POSIX_H

#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "backend.h"

/* A call that returns -1 and sets errno, as backend.h's 0 or -errno. */
#define CF_ERR(call) ((call) < 0 ? -errno : 0)
/* The zerocopy completion's control message (include/linux/socket.h, uapi
 * linux/vm_sockets.h; older headers lack them). */
#define CF_SOL_VSOCK 287
#define CF_VSOCK_RECVERR 1

/* CF_MSG_* as MSG_*, CF_SHUT_* as SHUT_* (any other value as it is, for the
 * cases that pass a bad one). */
int cf__posix_msg_flags(int flags);
int cf__posix_shut_how(int how);

/* SO_VM_SOCKETS_CONNECT_TIMEOUT's struct timeval and milliseconds. */
struct timeval cf__posix_timeval(uint32_t ms);
uint32_t cf__posix_ms(const struct timeval *tv);

/* The send/receive family (cases/cases_msg.c) is one piece of code for both
 * backends: each passes its own calls (libhvsim's or the kernel's), which
 * have libc's shapes. */
struct cf__posix_msg_calls {
    ssize_t (*sendto)(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen);
    ssize_t (*recvfrom)(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen);
    ssize_t (*sendmsg)(int fd, const struct msghdr *m, int flags);
    ssize_t (*recvmsg)(int fd, struct msghdr *m, int flags);
};
long cf__posix_sendto(const struct cf__posix_msg_calls *c, cf_sock_t s, const void *buf, size_t len,
                      const struct sockaddr *to, socklen_t tolen);
long cf__posix_recvfrom(const struct cf__posix_msg_calls *c, cf_sock_t s, void *buf, size_t len, int flags,
                        int *addrlen);
long cf__posix_recv_flags(const struct cf__posix_msg_calls *c, cf_sock_t s, void *buf, size_t len, int flags,
                          int *out_flags);
long cf__posix_sendmsg(const struct cf__posix_msg_calls *c, cf_sock_t s, const cf_buf_t *bufs, int n, int flags);
long cf__posix_recvmsg(const struct cf__posix_msg_calls *c, cf_sock_t s, cf_buf_t *bufs, int n, int flags,
                       int *namelen, int *ctllen);

#endif /* HVSIM_CF_BACKEND_POSIX_H */
