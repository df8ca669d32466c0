/* SPDX-License-Identifier: MIT */
/*
 * vsock_conn.h: the virtio-vsock device of the backend: its connection table
 * and the stream protocol between the guest's rx/tx virtqueues and host-side
 * sockets (reference 1.4 and 1.5).
 *
 * The host side is reached only through struct vconn_host_ops, so the whole
 * protocol, credit accounting included, runs in unit tests and fuzzers
 * against a fake host; main.c implements the ops with libhvsim sockets.
 *
 * Flow control both ways:
 *  - host -> guest: a host socket is read only into a posted rx buffer and
 *    never beyond the guest's credit (peer_buf_alloc - (tx_cnt -
 *    peer_fwd_cnt)); with no credit or no buffer the bytes stay in the host
 *    socket, whose sender then blocks.
 *  - guest -> host: guest data goes straight to the host socket; what the
 *    socket does not take waits in a per-connection buffer that can never
 *    exceed the buf_alloc we advertised, because fwd_cnt only advances when
 *    bytes reach the host socket. So the tx queue is always drained (the
 *    virtio deadlock rule) and a guest exceeding its credit is reset.
 *
 * Seqpacket connections (once the guest negotiated VPKT_F_SEQPACKET) keep
 * message boundaries: the guest's packets are gathered until the one with
 * EOM and the whole message goes to the host socket in one send; a host
 * message is taken whole from its socket and cut into packets within the
 * guest's credit, EOM on the last (docs/reference/vsock-virtio.md 1.9).
 */
#ifndef HVSIM_VHOST_VSOCK_CONN_H
#define HVSIM_VHOST_VSOCK_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vring.h"
#include "vsock_pkt.h"

/* Host-side readiness, as reported to vconn_host_event(). */
#define VCONN_EV_IN 1u
#define VCONN_EV_OUT 2u
#define VCONN_EV_ERR 4u /* error or hang-up: both directions should be tried */

#define VCONN_DEFAULT_BUF_ALLOC (256u * 1024u) /* VSOCK_DEFAULT_BUFFER_SIZE */
#define VCONN_DEFAULT_MAX_CONNS 1024u
#define VCONN_TIMEOUT_MS 8000u /* VSOCK_CLOSE_TIMEOUT; also the guest's time to answer a REQUEST */
/* The largest host message held for the guest, whatever buffer the guest
 * advertises (it may claim up to 4 GiB): a bound on our memory per
 * connection. Larger messages reset the connection. */
#define VCONN_SEQ_MSG_MAX (4u << 20)

/*
 * The host side. Every fd is non-blocking; readiness is edge-triggered: after
 * watch(), the owner calls vconn_host_event() each time the fd becomes
 * readable or writable (and once at once if it already is).
 */
struct vconn_host_ops {
    /* Connect to host port @port for guest port @guest_port with a socket
     * of @type (VPKT_TYPE_STREAM or VPKT_TYPE_SEQPACKET). Returns an fd
     * whose writability reports the outcome (see connect_result), or -errno
     * for a refusal known at once. */
    int (*connect)(void *ctx, uint32_t port, uint32_t guest_port, unsigned type);
    /* After an event on a connecting fd: 0 connected, -EINPROGRESS not yet,
     * else the -errno of the failure. */
    int (*connect_result)(void *ctx, int fd);
    /* Bytes written (maybe short), or -errno; -EAGAIN when full. Streams only. */
    ssize_t (*send)(void *ctx, int fd, const void *buf, size_t len);
    /* Bytes read, 0 at end of stream, or -errno; -EAGAIN when empty. Streams only. */
    ssize_t (*recv)(void *ctx, int fd, void *buf, size_t len);
    /* Half-close: the peer reads EOF after the data written so far. */
    int (*shutdown_wr)(void *ctx, int fd);
    /* Start reporting events of fd with @cookie. Returns 0 or -errno. */
    int (*watch)(void *ctx, int fd, void *cookie);
    /* Stop watching fd and close it. */
    void (*close)(void *ctx, int fd);
    /* A monotonic clock in milliseconds. */
    uint64_t (*now_ms)(void *ctx);
    /* What the guest said to an offered connection (vconn_host_offer):
     * VCONN_ANSWER_*. Called once per offer; may be NULL. */
    void (*answer)(void *ctx, uint64_t token, unsigned answer);
    /* Seqpacket fds only (may be NULL when none is made). msg_len: the
     * length (>= 1) of the next message, which stays queued; 0 at end of
     * stream; -EAGAIN when none waits; else -errno. Empty messages (a vsock
     * sender cannot make one) are the implementation's to skip.
     * send_msg: one whole message, with MSG_EOR when eor; len or -errno
     * (-EAGAIN: nothing was sent). recv_msg: the next message into buf
     * (sized by msg_len), *eor set when its sender gave MSG_EOR; its
     * length or -errno. */
    ssize_t (*msg_len)(void *ctx, int fd);
    ssize_t (*send_msg)(void *ctx, int fd, const void *buf, size_t len, int eor);
    ssize_t (*recv_msg)(void *ctx, int fd, void *buf, size_t len, int *eor);
    /* After EOF: 1 when the host program closed its socket (or shut down
     * both ways), 0 when it only shut down its sending side. May be NULL
     * (every EOF is then a half-close). */
    int (*peer_closed)(void *ctx, int fd);
    /* Half-close the other way: the host program's sends fail with EPIPE
     * from now on (the guest's SHUTDOWN(RCV), vsock-virtio.md 10.2). May be
     * NULL (the guest's SHUT_RD then stays with the device). */
    int (*shutdown_rd)(void *ctx, int fd);
    /* 1 when the host program shut down its reading side (our sends to it
     * fail with EPIPE although it has not closed), 0 when not, or -errno.
     * Never asked after our own shutdown_wr, nor of seqpacket fds. May be
     * NULL (the host's SHUT_RD is then seen only by a failing send). */
    int (*peer_shut_rd)(void *ctx, int fd);
};

/* The values of enum hvsim_gw_answer (proto.h). */
#define VCONN_ANSWER_ACCEPT 0u
#define VCONN_ANSWER_REFUSE 1u
#define VCONN_ANSWER_SILENT 2u
#define VCONN_ANSWER_NO_SEQPACKET 3u /* a seqpacket offer the guest's driver cannot take */

struct vconn_config {
    uint64_t guest_cid; /* the CID the guest reads from config space */
    uint32_t buf_alloc; /* our receive buffer per connection, advertised in every header */
    unsigned max_conns; /* connections beyond this are refused with RST */
};

#define VCONN_TX_DESC_BUCKETS 4

struct vconn_stats {
    uint64_t tx_pkts, rx_pkts; /* packets from / to the guest */
    uint64_t tx_bytes, rx_bytes; /* payload bytes from / to the guest */
    uint64_t rst_sent, credit_updates_sent, credit_requests_sent;
    uint64_t credit_violations; /* guest sent beyond the credit we gave */
    uint64_t bad_pkts; /* refused packets (bad header, type, address) */
    uint64_t tx_msgs, rx_msgs; /* seqpacket messages from / to the guest */
    uint64_t msg_violations; /* seqpacket messages refused: too large, bad flags, wrong type */
    uint64_t stray_dropped; /* RST replies dropped because the queue was full */
    /* Descriptor layouts the guest used (reference 1.6): its rx buffers
     * filled, by how many device-writable descriptors they had (one holding
     * header and payload: Linux >= 6.2 and Debian 12's 6.1; a 44-byte header descriptor and the
     * payload's: older guests; anything else), and its tx packets by their
     * number of driver-readable descriptors ([0] one ... [3] four or more). */
    uint64_t rx_layout_single, rx_layout_split, rx_layout_other;
    uint64_t tx_descs[VCONN_TX_DESC_BUCKETS];
    uint64_t tx_rw_descs[VCONN_TX_DESC_BUCKETS]; /* the same for RW packets only */
    unsigned conns; /* open now */
};

struct vconn_dev;

/**
 * vconn_dev_new: a device with no rings attached.
 * Returns 0 or -ENOMEM / -EINVAL (reserved guest CID, buf_alloc 0).
 */
int vconn_dev_new(const struct vconn_config *cfg, const struct vconn_host_ops *ops, void *ctx,
                  struct vconn_dev **out);
/** vconn_dev_free: close every host socket and free the device. */
void vconn_dev_free(struct vconn_dev *d);

/**
 * vconn_set_features: the virtio features the guest acknowledged
 * (SET_FEATURES). Seqpacket packets and offers are refused unless they
 * include VPKT_F_SEQPACKET.
 */
void vconn_set_features(struct vconn_dev *d, uint64_t features);

/** vconn_attach: the rings (rx = queue 0, tx = queue 1) and the memory the
 * chains are translated through. They are processed only while ready. */
void vconn_attach(struct vconn_dev *d, struct vring *rx, struct vring *tx, const struct vring_mem *mem);

/**
 * vconn_run: do all pending work: expire timers, drain tx, fill rx with
 * queued packets and host data, signal the guest, free closed connections.
 * Call it after each batch of events (kicks, host events, accepts).
 * Returns 1 when work remains (a budget ran out; call again soon), else 0.
 */
int vconn_run(struct vconn_dev *d);

/**
 * vconn_host_event: readiness of a host fd, identified by the cookie given
 * to ops->watch. Safe for connections closed earlier in the same batch:
 * they are freed only at the end of vconn_run().
 */
void vconn_host_event(struct vconn_dev *d, void *cookie, unsigned events);

/**
 * vconn_host_offer: the daemon asks whether the guest takes a host
 * connection of @type (VPKT_TYPE_*) from @host_port to guest port
 * @guest_port (a gateway OFFER).
 * The device sends the guest a REQUEST and reports the guest's RESPONSE, RST
 * or silence (within @timeout_ms, the host program's connect timeout, at
 * most VCONN_TIMEOUT_MS; 0: that) through ops->answer with @token; on
 * silence the guest gets an RST, so a late RESPONSE opens nothing. After an
 * acceptance the guest may send at once: its bytes wait (within the credit
 * we gave) until vconn_host_attach brings the host socket.
 * Returns 0; -ENETUNREACH when the device is not running or broken;
 * -ENOBUFS at max_conns; -EADDRINUSE when the tuple is in use;
 * -EPROTONOSUPPORT for a seqpacket offer the guest did not negotiate.
 */
int vconn_host_offer(struct vconn_dev *d, uint64_t token, uint32_t host_port, uint32_t guest_port,
                     uint32_t timeout_ms, unsigned type);

/**
 * vconn_host_attach: the host socket of an accepted offer arrived, of
 * @type (VPKT_TYPE_*: which gateway listener it came from). On success
 * the device owns fd. Returns 0, -ENOENT when no accepted offer of that
 * type waits for that tuple (the guest reset it meanwhile, or it timed
 * out), or -errno of ops->watch; the caller closes fd then.
 */
int vconn_host_attach(struct vconn_dev *d, int fd, uint32_t host_port, uint32_t guest_port, unsigned type);

/**
 * vconn_reset: the device was reset (rings stopped, front-end gone): drop
 * every connection (host sockets closed, nothing sent to the guest) and
 * clear the broken state.
 */
void vconn_reset(struct vconn_dev *d);

/** vconn_broken: the guest broke a ring; queues are no longer processed. */
int vconn_broken(const struct vconn_dev *d);

/** vconn_next_timeout_ms: ms until the next timer (-1: none). */
int vconn_next_timeout_ms(struct vconn_dev *d);

/** vconn_get_stats: counters since creation. */
void vconn_get_stats(const struct vconn_dev *d, struct vconn_stats *out);

#endif /* HVSIM_VHOST_VSOCK_CONN_H */
