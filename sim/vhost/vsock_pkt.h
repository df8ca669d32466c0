/* SPDX-License-Identifier: MIT */
/*
 * vsock_pkt.h: virtio-vsock packets (virtio 1.x section 5.10, "Socket
 * Device") over descriptor chains.
 *
 * A packet is the 44-byte packed little-endian struct virtio_vsock_hdr and
 * `len` bytes of payload. Neither the header nor the payload may be assumed
 * to sit in one descriptor: Linux >= 6.2 posts receive buffers of one
 * descriptor holding both, older guests two, and since 2025 a transmitted
 * payload can span many descriptors. So packets are read and written through
 * a byte cursor over the chain's iovec, which splits anything anywhere.
 */
#ifndef HVSIM_VHOST_VSOCK_PKT_H
#define HVSIM_VHOST_VSOCK_PKT_H

#include <stddef.h>
#include <stdint.h>

#include "vring.h"

#define VPKT_HDR_LEN 44
#define VPKT_MAX_PAYLOAD (64u * 1024u) /* VIRTIO_VSOCK_MAX_PKT_BUF_SIZE */

#define VPKT_TYPE_STREAM 1
#define VPKT_TYPE_SEQPACKET 2 /* only once VPKT_F_SEQPACKET was negotiated */

/* Device feature bit: the seqpacket type is available (virtio 5.10.3). */
#define VPKT_F_SEQPACKET 1

/* RW flags of a seqpacket packet (Linux's enum virtio_vsock_rw, >= 5.16). */
#define VPKT_SEQ_EOM 1u /* the last packet of a message (of one sendmsg) */
#define VPKT_SEQ_EOR 2u /* ... and its sender gave MSG_EOR */

enum vpkt_op {
    VPKT_OP_INVALID = 0,
    VPKT_OP_REQUEST = 1,
    VPKT_OP_RESPONSE = 2,
    VPKT_OP_RST = 3,
    VPKT_OP_SHUTDOWN = 4,
    VPKT_OP_RW = 5,
    VPKT_OP_CREDIT_UPDATE = 6,
    VPKT_OP_CREDIT_REQUEST = 7,
};

/* SHUTDOWN flags, as Linux's mask values (the spec's bits 0 and 1). */
#define VPKT_SHUTDOWN_RCV 1u /* the sender will receive no more */
#define VPKT_SHUTDOWN_SEND 2u /* the sender will send no more */

#define VPKT_CID_HOST 2u

/* The header in host byte order. */
struct vpkt_hdr {
    uint64_t src_cid;
    uint64_t dst_cid;
    uint32_t src_port;
    uint32_t dst_port;
    uint32_t len;
    uint16_t type;
    uint16_t op;
    uint32_t flags;
    uint32_t buf_alloc;
    uint32_t fwd_cnt;
};

/* Parse / build the wire form (exactly VPKT_HDR_LEN bytes). */
void vpkt_hdr_decode(const uint8_t raw[VPKT_HDR_LEN], struct vpkt_hdr *h);
void vpkt_hdr_encode(const struct vpkt_hdr *h, uint8_t raw[VPKT_HDR_LEN]);

/* The name of an op, for logs ("RW", "op 9"). buf holds at least 16 bytes. */
const char *vpkt_op_name(unsigned op, char *buf, size_t len);

/*
 * A byte cursor over an iovec, with an optional limit: reads and writes stop
 * at the end of the iovec or after `left` bytes, whichever comes first.
 */
struct vpkt_cursor {
    const struct vring_iov *iov;
    unsigned n; /* segments */
    unsigned i; /* current segment */
    size_t off; /* offset inside it */
    uint64_t left; /* bytes still allowed */
};

void vpkt_cursor_init(struct vpkt_cursor *c, const struct vring_iov *iov, unsigned n, uint64_t limit);
/* Copy up to len bytes out of (read) or into (write) the buffer; returns the count. */
size_t vpkt_cursor_read(struct vpkt_cursor *c, void *dst, size_t len);
size_t vpkt_cursor_write(struct vpkt_cursor *c, const void *src, size_t len);
size_t vpkt_cursor_skip(struct vpkt_cursor *c, size_t len);
/* The current contiguous piece (at most max bytes) without consuming it;
 * returns its length, 0 at the end. */
size_t vpkt_cursor_peek(const struct vpkt_cursor *c, uint8_t **p, size_t max);

/* A transmitted packet (guest -> device) viewed in place. */
struct vpkt_tx {
    struct vpkt_hdr hdr;
    struct vpkt_cursor payload; /* exactly hdr.len bytes */
};

/**
 * vpkt_tx_parse: read the header of a tx chain and bound its payload.
 * @c: a popped chain; only its driver-readable part is used
 * @out: header and a payload cursor over the next hdr.len bytes
 *
 * Returns 0; -EBADMSG when the chain is shorter than a header (nothing to
 * answer); -EMSGSIZE when the header is intact but hdr.len exceeds 64 KiB
 * or the bytes the chain carries after the header (out->hdr is valid and
 * the packet can be refused with an RST).
 */
int vpkt_tx_parse(const struct vring_chain *c, struct vpkt_tx *out);

/**
 * vpkt_rx_begin: prepare a receive chain for one packet.
 * @c: a popped chain; only its device-writable part is used
 * @payload: a cursor at the first payload byte, limited to the room
 *
 * Returns the payload room (0 is possible: header-only packets fit), or
 * -ENOBUFS when the writable part cannot even hold the header.
 */
int64_t vpkt_rx_begin(const struct vring_chain *c, struct vpkt_cursor *payload);

/**
 * vpkt_rx_finish: write the header at the start of the chain's writable
 * part. h->len must be the payload bytes already written after it.
 * Returns the used length for vring_push(): VPKT_HDR_LEN + h->len.
 */
uint32_t vpkt_rx_finish(const struct vring_chain *c, const struct vpkt_hdr *h);

#endif /* HVSIM_VHOST_VSOCK_PKT_H */
