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
