/* SPDX-License-Identifier: MIT */
/*
 * vhost_user.h: the back-end side of the vhost-user protocol (QEMU's
 * docs/interop/vhost-user.rst), as much of it as a vsock device needs.
 *
 * The front-end (QEMU) sends requests over a unix stream socket: a 12-byte
 * header {request, flags, size}, size bytes of payload and, as SCM_RIGHTS,
 * up to 8 fds. vhu_msg_read() frames one message, checking the size before
 * reading a byte of payload; vhu_handle() checks the payload against the
 * request's struct and runs its handler from a table indexed by request.
 * A message the back-end cannot act on is refused (fds closed, a failure
 * reply when the front-end asked for one); only a broken framing, which
 * leaves the stream unreadable, ends the connection.
 */
#ifndef HVSIM_VHOST_VHOST_USER_H
#define HVSIM_VHOST_VHOST_USER_H

#include <stddef.h>
#include <stdint.h>

#include "vring.h"

#define VHU_HDR_SIZE 12
#define VHU_MAX_FDS 8 /* per message, as libvhost-user */
#define VHU_MAX_PAYLOAD 4096 /* larger messages are a framing error */
#define VHU_CONFIG_MAX 256 /* config payload bytes, as libvhost-user */
#define VHU_NUM_QUEUES 3 /* rx, tx, and event (QEMU keeps event; tolerated, never processed) */
#define VHU_QUEUE_RX 0
#define VHU_QUEUE_TX 1

#define VHU_VERSION 0x1u
#define VHU_VERSION_MASK 0x3u
#define VHU_FLAG_REPLY (1u << 2)
#define VHU_FLAG_NEED_REPLY (1u << 3)

/* Requests, front-end to back-end (explicit numbers: they are wire values). */
enum vhu_request {
    VHU_NONE = 0,
    VHU_GET_FEATURES = 1,
    VHU_SET_FEATURES = 2,
    VHU_SET_OWNER = 3,
    VHU_RESET_OWNER = 4,
    VHU_SET_MEM_TABLE = 5,
    VHU_SET_LOG_BASE = 6,
    VHU_SET_LOG_FD = 7,
    VHU_SET_VRING_NUM = 8,
    VHU_SET_VRING_ADDR = 9,
    VHU_SET_VRING_BASE = 10,
    VHU_GET_VRING_BASE = 11,
    VHU_SET_VRING_KICK = 12,
    VHU_SET_VRING_CALL = 13,
    VHU_SET_VRING_ERR = 14,
    VHU_GET_PROTOCOL_FEATURES = 15,
    VHU_SET_PROTOCOL_FEATURES = 16,
    VHU_GET_QUEUE_NUM = 17,
    VHU_SET_VRING_ENABLE = 18,
    /* 19-23: RARP, MTU, backend channel, IOTLB, endianness: not offered */
    VHU_GET_CONFIG = 24,
    VHU_SET_CONFIG = 25,
    /* 26-33: crypto, postcopy, inflight, GPU: not offered */
    VHU_RESET_DEVICE = 34,
    /* 35-43: kick messages, memory slots, status, shared objects, state: not offered */
    VHU_REQUEST_MAX = 44,
};

/* Feature bits. */
#define VHU_F_PROTOCOL_FEATURES 30 /* VHOST_USER_F_PROTOCOL_FEATURES */
#define VHU_VIRTIO_F_VERSION_1 32
#define VHU_PROTOCOL_F_MQ 0
#define VHU_PROTOCOL_F_REPLY_ACK 3
#define VHU_PROTOCOL_F_CONFIG 9
#define VHU_PROTOCOL_F_RESET_DEVICE 13

#define VHU_VSOCK_F_SEQPACKET 1 /* VIRTIO_VSOCK_F_SEQPACKET: QEMU passes it through (seqpacket=auto) */

#define VHU_FEATURES                                                                                              \
    ((1ull << VHU_VIRTIO_F_VERSION_1) | (1ull << VHU_F_PROTOCOL_FEATURES) | (1ull << VHU_VSOCK_F_SEQPACKET))
#define VHU_PROTOCOL_FEATURES ((1ull << VHU_PROTOCOL_F_REPLY_ACK) | (1ull << VHU_PROTOCOL_F_CONFIG))

/* SET_VRING_KICK/CALL/ERR payload. */
#define VHU_VRING_IDX_MASK 0xffull
#define VHU_VRING_NOFD_MASK (1ull << 8)

/* Payload shapes (host byte order, as the protocol says). */
struct vhu_vring_state {
    uint32_t index;
    uint32_t num;
};

struct vhu_vring_addr {
    uint32_t index;
    uint32_t flags;
    uint64_t desc; /* front-end virtual addresses; note the order: desc, used, avail */
    uint64_t used;
    uint64_t avail;
    uint64_t log;
};

struct vhu_mem_region {
    uint64_t gpa;
    uint64_t size;
    uint64_t uva;
    uint64_t mmap_offset;
};

struct vhu_mem_table {
    uint32_t nregions;
    uint32_t padding;
    struct vhu_mem_region r[VRING_MEM_MAX_REGIONS];
};

struct vhu_config {
    uint32_t offset;
    uint32_t size;
    uint32_t flags;
    uint8_t payload[VHU_CONFIG_MAX];
};

#define VHU_CONFIG_HDR_SIZE 12

struct vhu_msg {
    uint32_t request;
    uint32_t flags;
    uint32_t size; /* payload bytes received */
    union {
        uint64_t u64;
        struct vhu_vring_state state;
        struct vhu_vring_addr addr;
        struct vhu_mem_table mem;
        struct vhu_config config;
        uint8_t raw[VHU_MAX_PAYLOAD];
    } p;
    int fds[VHU_MAX_FDS]; /* -1 once taken by a handler */
    unsigned nfds;
    int fds_truncated; /* more fds were sent than VHU_MAX_FDS (all closed) */
};

/* What the device behind the protocol is told. */
struct vhu_iface {
    /* A queue's kick eventfd changes: stop polling old_fd (about to be
     * closed) and start polling new_fd; -1 means none. */
    void (*kick_changed)(void *opaque, unsigned idx, int old_fd, int new_fd);
    /* The device was reset or a queue stopped: drop all connections. */
    void (*reset)(void *opaque);
    /* The front-end acknowledged these features (of VHU_FEATURES). May be NULL. */
    void (*features)(void *opaque, uint64_t features);
};

struct vhu_dev {
    int sock; /* the front-end connection */
    uint64_t guest_cid; /* config space */
    uint64_t features; /* acked by SET_FEATURES */
    uint64_t protocol_features; /* acked by SET_PROTOCOL_FEATURES */
    int owner;
    int dead; /* a reply could not be written: the connection must end */
    struct vring_mem mem;
    struct {
        void *base;
        size_t len;
    } map[VRING_MEM_MAX_REGIONS]; /* the mmap()s behind mem */
    struct vring vq[VHU_NUM_QUEUES];
    const struct vhu_iface *iface;
    void *opaque;
};

/** vhu_init: a device talking on sock (not owned). */
void vhu_init(struct vhu_dev *d, int sock, uint64_t guest_cid, const struct vhu_iface *iface, void *opaque);

/** vhu_fini: stop the rings, close their fds, unmap guest memory. */
void vhu_fini(struct vhu_dev *d);

/**
 * vhu_msg_read: read one message from fd.
 * Returns 1 (a message in m; the caller owns m->fds), 0 at end of stream,
 * -EPROTO (wrong version), -EMSGSIZE (payload over VHU_MAX_PAYLOAD),
 * -ECONNRESET (stream ended mid-message) or another -errno of recvmsg.
 * After a negative return the stream cannot be read further.
 */
int vhu_msg_read(int fd, struct vhu_msg *m);

/**
 * vhu_handle: act on one message, send its reply, and close every fd the
 * handler did not take. Returns 0, or -EPIPE when a reply could not be
 * written (d->dead is then set).
 */
int vhu_handle(struct vhu_dev *d, struct vhu_msg *m);

/**
 * vhu_dispatch: vhu_msg_read() then vhu_handle().
 * Returns 0, -ECONNRESET at end of stream, or another -errno after which
 * the connection must be closed.
 */
int vhu_dispatch(struct vhu_dev *d);

/** vhu_request_name: "SET_MEM_TABLE", or "UNKNOWN". */
const char *vhu_request_name(uint32_t request);

#endif /* HVSIM_VHOST_VHOST_USER_H */
