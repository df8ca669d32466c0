/* SPDX-License-Identifier: MIT */
/*
 * internal.h: what the files of libhvsim (and hvsimd, which links the same
 * objects) share but do not export. Internal functions return 0 or a negative
 * errno; only the POSIX-shaped calls of hvsim.h use -1 and errno.
 */
#ifndef HVSIM_INTERNAL_H
#define HVSIM_INTERNAL_H

#include <stdint.h>
#include <time.h>

#include "hvsim/hvsim.h"

#define HVSIM_DEBUG 0
#define HVSIM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Set errno and the thread's Winsock code from a negative errno; returns -1. */
int hvsim__fail(int negerr);

const char *hvsim__vmid_name(const GUID *g);
int hvsim__guid_random(GUID *out);
int hvsim__random(void *buf, size_t len);

/* The daemon's run folder: $HVSIM_DIR, else $XDG_RUNTIME_DIR/hvsim, else /tmp/hvsim-<uid>. */
const char *hvsim__default_dir(char *buf, size_t len);

uint64_t hvsim__now_ns(void); /* CLOCK_MONOTONIC */

/* snprintf into a caller's error buffer, which may be NULL. */
void hvsim__set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* SipHash-2-4 with a 128-bit output. */
void hvsim__siphash128(const uint8_t key[16], const void *data, size_t len, uint8_t out[16]);

/* ---- client.c: this process's attachment to the daemon ----------------------- */

struct hvsim__attach {
    GUID self; /* this process's partition */
    GUID host;
    char name[HVSIM_NAME_MAX];
    int is_host;
    uint32_t cid;
    uint64_t instance;
    uint32_t win_timeout_ms;
    uint32_t linux_timeout_ms;
    uint32_t timeout_clamp;
};

/* Test only: 1 when the daemon runs with `--mutant rule` (mutants.h). */
int hvsim__mutant(const char *rule);

/* Attach (once per process, again after fork) and report who we are.
 * Returns 0 or -ENETDOWN when the daemon cannot be reached. */
int hvsim__attach_get(struct hvsim__attach *out);
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
/* Why the last attach failed, for messages. */
const char *hvsim__attach_error(void);

/* ---- socket.c ------------------------------------------------------------------- */

/* Apply a partition event from the daemon to this process's sockets. */
void hvsim__sock_event(const GUID *vmid, uint32_t event);
void hvsim__sock_atfork_child(void);

/* ---- gateway.c: a VM back-end's gateway (proto.h, OFFER) ------------------------ */

struct hvsim_msg_offer;
/* Listen on a bound AF_VSOCK socket of a VM partition as the VM's gateway.
 * Returns the channel fd (offers arrive on it) or -errno. (socket.c) */
int hvsim__listen_gateway(int fd, int backlog);
/* 1 and an offer, 0 when none is waiting, -ENETDOWN when the daemon closed
 * the channel, -EPROTO for anything but an OFFER. */
int hvsim__gateway_recv(int chan, struct hvsim_msg_offer *out);
/* answer: enum hvsim_gw_answer. Returns 0 or -errno. */
int hvsim__gateway_answer(int chan, uint64_t id, unsigned answer);

#endif /* HVSIM_INTERNAL_H */
