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
#include <sys/time.h>

#include "backend.h"

/* A call that returns -1 and sets errno, as backend.h's 0 or -errno. */
#define CF_ERR(call) ((call) < 0 ? -errno : 0)

/* CF_MSG_* as MSG_*, CF_SHUT_* as SHUT_* (any other value as it is, for the
 * cases that pass a bad one). */
int cf__posix_msg_flags(int flags);
int cf__posix_shut_how(int how);

/* SO_VM_SOCKETS_CONNECT_TIMEOUT's struct timeval and milliseconds. */
struct timeval cf__posix_timeval(uint32_t ms);
uint32_t cf__posix_ms(const struct timeval *tv);

#endif /* HVSIM_CF_BACKEND_POSIX_H */
