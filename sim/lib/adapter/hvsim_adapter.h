/* SPDX-License-Identifier: MIT */
/*
 * hvsim_adapter.h: the library's door for the project's own adapters (the
 * interposer, the VM back-end, the tools), which need a little more than
 * <hvsim/hvsim.h> offers users: who this process is attached as, why an
 * attach failed, and a VM gateway's listen. Nothing else of the library's
 * internals is visible outside sim/lib. Not installed.
 */
#ifndef HVSIM_ADAPTER_H
#define HVSIM_ADAPTER_H

#include <stdint.h>

#include "hvsim/hvsim.h"

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
    uint32_t transport; /* enum hvsim_vm_transport */
    uint32_t kernel; /* enum hvsim_kernel */
};

/* Attach (once per process, again after fork) and report who we are.
 * Returns 0 or -ENETDOWN when the daemon cannot be reached. */
int hvsim__attach_get(struct hvsim__attach *out);
/* Why the last attach failed, for messages. */
const char *hvsim__attach_error(void);

/* Listen on a bound AF_VSOCK socket of a VM partition as the VM's gateway
 * (hvproto/proto.h, OFFER). Returns the channel fd (offers arrive on it) or
 * -errno. */
int hvsim__listen_gateway(int fd, int backlog);
/* The gateway's SEQPACKET listener: fd is a bound AF_VSOCK SOCK_SEQPACKET
 * socket of the same process, which listened as the gateway first; the
 * guest's accepted SEQPACKET connections arrive on it. 0 or -errno. */
int hvsim__listen_gateway_seq(int fd, int backlog);
/* A VM back-end's own AF_VSOCK socket of TYPE (SOCK_STREAM or SOCK_SEQPACKET,
 * with SOCK_NONBLOCK/SOCK_CLOEXEC): the device's end, which follows virtio's
 * rules whatever transport the VM was declared with (the guest's kernel
 * applies its own). Returns the fd or -errno. */
int hvsim__socket_backend(int type);

/* For an interposer, which exports libc's socket names itself: point the
 * library's libc table (sim/lib/libc.c) at the next definitions, libc's, with
 * dlsym(RTLD_NEXT). Call once, before any other hvsim call. Returns 0, or
 * -ENOSYS when libc lacks one (the table is then left as it was). */
int hvsim__libc_use_next(void);

/* Move the fd of each new emulated socket (hvsim_socket, hvsim_accept4) to
 * the lowest free number >= floor, close-on-exec: the interposer's anchors,
 * out of the range programs use. 0, the default: left where libc put it. */
void hvsim__set_fd_floor(int floor);

/* For a supervisor that serves the socket calls of other processes
 * (sim/preload/supervisor.c): a new owner, with its own control session to
 * the daemon (attached on first use, in the partition of HVSIM_PARTITION),
 * and socket() on its behalf. The socket's other calls take the fd the
 * supervisor holds and act for the socket's owner. NULL: out of memory. */
struct hvsim__owner;
struct hvsim__owner *hvsim__owner_new(void);
int hvsim__socket_as(struct hvsim__owner *o, int domain, int type, int protocol);

#endif /* HVSIM_ADAPTER_H */
