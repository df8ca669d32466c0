/* SPDX-License-Identifier: MIT */
/*
 * fuzz_vhost_ring.c: libFuzzer harness for the guest-facing half of the
 * vhost-user-vsock back-end: split rings (sim/vhost/vring.c), packet parsing
 * and building (vsock_pkt.c) and the connection and credit logic
 * (vsock_conn.c), all fed from hostile guest memory.
 *
 * The input is an 8-byte control block followed by an image of guest memory
 * (64 KiB, zero-filled past the input). The rx and tx rings sit at fixed
 * places in that memory, so descriptor tables, avail rings, used indices,
 * packet headers and payloads are all the fuzzer's. A fake host accepts or
 * refuses connects, takes or refuses bytes and supplies data, all steered by
 * the control block; the device runs several rounds with host events and
 * timer expiries in between, and (unless control bit 6 is set) the tx
 * entries the image makes available are revealed one per round, so that
 * later packets meet connections the host has accepted meanwhile. Besides sanitizer reports (guest memory is an
 * exact-size heap block, so any access outside it is caught), the harness
 * checks that the device only uses host fds it owns and that a reset closes
 * every one of them. Buffers may overlap the rings, as a hostile guest's
 * may: what the device writes there is the guest's problem, not a crash.
 *
 * Control byte 7 steers seqpacket: bit 0 the guest negotiated it (else its
 * seqpacket packets meet RST), bit 1 the host program's offered connection
 * is a seqpacket one, bit 2 host sockets take messages of at most 1000
 * bytes (EMSGSIZE beyond), bit 3 host messages are larger than any guest
 * buffer. A seqpacket host socket checks that every send is one whole
 * message the guest ended with EOM (of at most the 8192 bytes advertised).
 *
 * Control byte 6 bits 2 and 3: host programs have shut their reading side
 * (sends fail with EPIPE, the device's probe says so), and they have hung up
 * (peer_closed says 1). The host sockets check that the device passes the
 * guest's SHUT_RD on at most once and never probes a seqpacket socket or
 * one it shut for writing.
 *
 * With -DHVSIM_FUZZ_STANDALONE it builds with plain gcc into a program that
 * runs the target once on each file named on the command line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../vhost/vlog.h"
#include "../vhost/vring.h"
#include "../vhost/vsock_conn.h"
#include "../vhost/vsock_pkt.h"

#define MEM_SIZE 65536u
#define GPA_BASE 0x10000ull
#define CTL 8
#define NSOCK 8
#define FD_BASE 1000

/* Ring placement inside the memory image (room for num <= 128). */
#define TX_DESC 0x0000u
#define TX_AVAIL 0x0800u
#define TX_USED 0x0a00u
#define RX_DESC 0x1000u
#define RX_AVAIL 0x1800u
#define RX_USED 0x1a00u

struct fsock {
    int open;
    void *cookie;
    uint32_t to_read; /* host bytes still to hand out */
    uint32_t send_room;
    unsigned type; /* VPKT_TYPE_* */
    int shut_wr, shut_rd; /* what the device did to it */
};

struct fuzz_host {
    uint8_t flags; /* control byte 1: 1 refuse, 2 small send room, 4 connects fail, 8 host connects,
                    * 16 room grows, 32 avail runs on, 64 no staging */
    uint8_t mode; /* control byte 6: 1 streams never end, 2 streams end in errors, 4 readers shut, 8 hung up */
    uint8_t seq; /* control byte 7: see the top */
    struct fsock s[NSOCK];
    uint64_t now;
    int answered; /* the offer's answer + 1, 0: none yet */
    int attached;
};

static int f_connect(void *ctx, uint32_t port, uint32_t guest_port, unsigned type)
{
    struct fuzz_host *h = ctx;
    int i;

    (void)guest_port;
    if (type != VPKT_TYPE_STREAM && (type != VPKT_TYPE_SEQPACKET || !(h->seq & 1)))
        abort(); /* a type the guest could not have negotiated */
    if ((h->flags & 1) || port == 0)
        return -ECONNREFUSED;
    /* The last socket is kept for the host program's offered connection. */
    for (i = 0; i < ((h->flags & 8) ? NSOCK - 1 : NSOCK); i++) {
        if (!h->s[i].open) {
            memset(&h->s[i], 0, sizeof(h->s[i]));
            h->s[i].open = 1;
            h->s[i].to_read = (port * 2654435761u) % 100000u;
            h->s[i].send_room = (h->flags & 2) ? 100 : 1u << 20;
            h->s[i].type = type;
            return FD_BASE + i;
        }
    }
    return -EMFILE;
}

static struct fsock *sock_of(struct fuzz_host *h, int fd)
{
    if (fd < FD_BASE || fd >= FD_BASE + NSOCK || !h->s[fd - FD_BASE].open)
        abort(); /* the device used an fd it does not own */
    return &h->s[fd - FD_BASE];
}

static int f_connect_result(void *ctx, int fd)
{
    struct fuzz_host *h = ctx;

    sock_of(h, fd);
    return (h->flags & 4) ? -ETIMEDOUT : 0;
}

static ssize_t f_send(void *ctx, int fd, const void *buf, size_t len)
{
    struct fsock *s = sock_of(ctx, fd);
    volatile uint8_t sink = 0;
    size_t i;

    if (s->type != VPKT_TYPE_STREAM)
        abort(); /* messages go through send_msg */
    if (((struct fuzz_host *)ctx)->mode & 4)
        return -EPIPE;
    if (s->send_room == 0)
        return (((struct fuzz_host *)ctx)->mode & 2) ? -EPIPE : -EAGAIN;
    if (len > s->send_room)
        len = s->send_room;
    for (i = 0; i < len; i++) /* touch every byte: ASan checks the source */
        sink ^= ((const uint8_t *)buf)[i];
    (void)sink;
    s->send_room -= (uint32_t)len;
    return (ssize_t)len;
}

/* Seqpacket host messages: 1 to 3000 bytes (bit 3: 100000), the last one
 * what is left. */
static uint32_t next_msg(struct fuzz_host *h, struct fsock *s)
{
    uint32_t m = (h->seq & 8) ? 100000u : 1 + s->to_read % 3000u;

    return m < s->to_read ? m : s->to_read;
}

static ssize_t f_recv(void *ctx, int fd, void *buf, size_t len)
{
    struct fsock *s = sock_of(ctx, fd);

    if (s->to_read == 0 && (((struct fuzz_host *)ctx)->mode & 1))
        return -EAGAIN; /* a host program that never ends its stream */

    if (s->to_read == 0)
        return (((struct fuzz_host *)ctx)->mode & 2) ? -ECONNRESET : 0;
    if (s->type != VPKT_TYPE_STREAM)
        abort(); /* messages go through recv_msg */
    if (len > s->to_read)
        len = s->to_read;
    memset(buf, 0x5a, len);
    s->to_read -= (uint32_t)len;
    return (ssize_t)len;
}

static ssize_t f_send_msg(void *ctx, int fd, const void *buf, size_t len, int eor)
{
    struct fuzz_host *h = ctx;
    struct fsock *s = sock_of(h, fd);
    volatile uint8_t sink = 0;
    size_t i;

    (void)eor;
    /* A whole message of at most the credit we advertised, or nothing. */
    if (s->type != VPKT_TYPE_SEQPACKET || len == 0 || len > 8192)
        abort();
    if ((h->seq & 4) && len > 1000)
        return -EMSGSIZE;
    if (len > s->send_room)
        return (h->mode & 2) ? -EPIPE : -EAGAIN;
    for (i = 0; i < len; i++)
        sink ^= ((const uint8_t *)buf)[i];
    (void)sink;
    s->send_room -= (uint32_t)len;
    return (ssize_t)len;
}

static ssize_t f_recv_msg(void *ctx, int fd, void *buf, size_t len, int *eor)
{
    struct fuzz_host *h = ctx;
    struct fsock *s = sock_of(h, fd);
    uint32_t m;

    if (s->type != VPKT_TYPE_SEQPACKET)
        abort();
    if (s->to_read == 0)
        return (h->mode & 2) ? -ECONNRESET : 0;
    m = next_msg(h, s);
    if (len < m)
        abort(); /* the device sizes its buffer from msg_len */
    memset(buf, 0x5a, m);
    s->to_read -= m;
    *eor = (s->to_read & 1) != 0;
    return (ssize_t)m;
}

static ssize_t f_msg_len(void *ctx, int fd)
{
    struct fuzz_host *h = ctx;
    struct fsock *s = sock_of(h, fd);

    if (s->type != VPKT_TYPE_SEQPACKET)
        abort();
    if (s->to_read == 0)
        return (h->mode & 1) ? -EAGAIN : (h->mode & 2) ? -ECONNRESET : 0;
    return next_msg(h, s);
}

static int f_shutdown_wr(void *ctx, int fd)
{
    sock_of(ctx, fd)->shut_wr = 1;
    return 0;
}

static int f_shutdown_rd(void *ctx, int fd)
{
    struct fsock *s = sock_of(ctx, fd);

    if (s->shut_rd)
        abort(); /* the guest's SHUT_RD is passed on once */
    s->shut_rd = 1;
    return 0;
}

static int f_peer_shut_rd(void *ctx, int fd)
{
    struct fsock *s = sock_of(ctx, fd);

    if (s->type != VPKT_TYPE_STREAM || s->shut_wr)
        abort(); /* an empty message, or an EPIPE of our own making */
    return (((struct fuzz_host *)ctx)->mode & 4) != 0;
}

static int f_peer_closed(void *ctx, int fd)
{
    sock_of(ctx, fd);
    return (((struct fuzz_host *)ctx)->mode & 8) != 0;
}

static int f_watch(void *ctx, int fd, void *cookie)
{
    sock_of(ctx, fd)->cookie = cookie;
    return 0;
}

static void f_close(void *ctx, int fd)
{
    sock_of(ctx, fd)->open = 0;
}

static uint64_t f_now(void *ctx)
{
    return ((struct fuzz_host *)ctx)->now;
}

static void f_answer(void *ctx, uint64_t token, unsigned answer)
{
    struct fuzz_host *h = ctx;

    if (token != 77 || h->answered)
        abort(); /* one answer per offer, with its token */
    h->answered = (int)answer + 1;
}

static const struct vconn_host_ops ops = {
    .connect = f_connect,
    .connect_result = f_connect_result,
    .send = f_send,
    .recv = f_recv,
    .shutdown_wr = f_shutdown_wr,
    .shutdown_rd = f_shutdown_rd,
    .peer_shut_rd = f_peer_shut_rd,
    .peer_closed = f_peer_closed,
    .watch = f_watch,
    .close = f_close,
    .now_ms = f_now,
    .answer = f_answer,
    .msg_len = f_msg_len,
    .send_msg = f_send_msg,
    .recv_msg = f_recv_msg,
};

static void ring_at(struct vring *vq, const struct vring_mem *m, unsigned num, uint32_t d, uint32_t a, uint32_t u)
{
    vring_init(vq);
    if (vring_set_num(vq, num) < 0)
        abort();
    (void)vring_set_addr(vq, m, GPA_BASE + d, GPA_BASE + a, GPA_BASE + u);
    (void)vring_sync_used(vq);
    vq->started = vq->enabled = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_host host;
    uint8_t *mem;
    struct vring_mem m;
    struct vring rx, tx;
    struct vconn_dev *d;
    struct vconn_config cfg = { .guest_cid = 3, .buf_alloc = 8192, .max_conns = 4 };
    unsigned num, rounds, r, i;
    uint16_t tx_total = 0;
    int staged;

    if (size < CTL)
        return 0;
    vlog_level = -1;
    memset(&host, 0, sizeof(host));
    host.flags = data[1];
    host.mode = data[6];
    host.seq = data[7];
    num = 1u << (data[0] % 8);
    rounds = 1 + data[2] % 16;
    staged = !(data[1] & 64);
    /* Exactly MEM_SIZE bytes on the heap: ASan flags any access past it. */
    mem = calloc(1, MEM_SIZE);
    if (mem == NULL)
        return 0;
    memcpy(mem, data + CTL, size - CTL < MEM_SIZE ? size - CTL : MEM_SIZE);
    m.n = 1;
    m.r[0].gpa = GPA_BASE;
    m.r[0].uva = GPA_BASE;
    m.r[0].size = MEM_SIZE;
    m.r[0].host = mem;
    ring_at(&rx, &m, num, RX_DESC, RX_AVAIL, RX_USED);
    ring_at(&tx, &m, num, TX_DESC, TX_AVAIL, TX_USED);
    if (staged) {
        /* Reveal the guest's tx entries one per round, as a guest that
         * waits for answers would: later packets then meet connections
         * that the host side has accepted in between. */
        tx_total = (uint16_t)(tx.avail->idx - tx.last_avail);
        tx.avail->idx = tx.last_avail;
    }
    if (vconn_dev_new(&cfg, &ops, &host, &d) < 0)
        abort();
    vconn_attach(d, &rx, &tx, &m);
    vconn_set_features(d, (host.seq & 1) ? 1ull << VPKT_F_SEQPACKET : 0);
    if (host.flags & 8) {
        /* A host program connecting to the guest, too: offered, and its
         * stream attached once the guest accepts. */
        if (vconn_host_offer(d, 77, 0x80000000u | data[3], data[4], (uint32_t)data[5] * 40u,
                             (host.seq & 2) ? VPKT_TYPE_SEQPACKET : VPKT_TYPE_STREAM) < 0)
            host.answered = -1;
    }
    for (r = 0; r < rounds; r++) {
        if (host.answered == 1 + VCONN_ANSWER_ACCEPT && !host.attached) {
            host.attached = 1;
            host.s[NSOCK - 1].open = 1;
            host.s[NSOCK - 1].to_read = 5000;
            host.s[NSOCK - 1].send_room = 1u << 20;
            host.s[NSOCK - 1].type = (host.seq & 2) ? VPKT_TYPE_SEQPACKET : VPKT_TYPE_STREAM;
            if (vconn_host_attach(d, FD_BASE + NSOCK - 1, 0x80000000u | data[3], data[4],
                                  host.s[NSOCK - 1].type) < 0)
                host.s[NSOCK - 1].open = 0;
        }
        if (staged && tx_total) {
            tx.avail->idx = (uint16_t)(tx.avail->idx + 1);
            tx_total--;
        }
        vconn_run(d);
        for (i = 0; i < NSOCK; i++) {
            if (host.s[i].open && host.s[i].cookie) {
                if (host.flags & 16)
                    host.s[i].send_room += 4096;
                vconn_host_event(d, host.s[i].cookie, VCONN_EV_IN | VCONN_EV_OUT);
            }
        }
        vconn_run(d);
        /* Let the guest "post" more: replay the avail index forward. */
        if (host.flags & 32) {
            rx.avail->idx = (uint16_t)(rx.avail->idx + 1);
            tx.avail->idx = (uint16_t)(tx.avail->idx + 1);
        }
        host.now += (data[5] & 1) ? VCONN_TIMEOUT_MS : 10;
        (void)vconn_next_timeout_ms(d);
    }
    vconn_run(d);
    vconn_reset(d);
    for (i = 0; i < NSOCK; i++)
        if (host.s[i].open && host.s[i].cookie)
            abort(); /* reset must close every host socket */
    vconn_dev_free(d);
    vring_free(&rx);
    vring_free(&tx);
    free(mem);
    return 0;
}

#ifdef HVSIM_FUZZ_STANDALONE
#include "standalone.h"
#endif
