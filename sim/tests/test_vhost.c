/* SPDX-License-Identifier: MIT */
/*
 * test_vhost.c: unit tests of the vhost-user-vsock back-end (sim/vhost), with
 * no daemon and no QEMU: guest memory is a malloc'ed (or memfd) region
 * registered as the memory table, the test plays the guest driver on
 * hand-built split rings, and a fake host (struct vconn_host_ops over
 * in-memory buffers) stands in for the libhvsim sockets.
 *
 * Covered: receive buffers with header and payload in one descriptor, split
 * after the header, and split mid-header (20 + 24); transmit packets in 1, 2
 * and many descriptors; hostile rings (head >= num, loops, addresses outside
 * memory, addr + len wrapping, avail index jumps, indirect and misordered
 * descriptors) mark the device broken without a crash; hostile packets
 * (len beyond the chain or 64 KiB, unknown op or type, wrong CIDs) are
 * refused with RST; exact credit accounting both ways; the connection life
 * cycle (connect, refusal, half-close, close, reset, host-initiated); and the
 * vhost-user framing and handlers with truncated, oversized and malformed
 * messages, including fd hygiene.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../vhost/vhost_user.h"
#include "../vhost/vlog.h"
#include "../vhost/vring.h"
#include "../vhost/vsock_conn.h"
#include "../vhost/vsock_pkt.h"

/* Checks for helpers and loops: Criterion reports every passing cr_assert to
 * its runner, and thousands of those slow a run down (and, with parallel
 * jobs under ASan, trip a 48-byte leak inside the runner); these report
 * failures only. */
#define REQUIRE(cond, ...)                                                                                       \
    do {                                                                                                         \
        if (!(cond))                                                                                             \
            cr_assert_fail(__VA_ARGS__);                                                                         \
    } while (0)
#define REQUIRE_OK(cond) REQUIRE(cond, "%s:%d: %s", __FILE__, __LINE__, #cond)

#define GPA_BASE 0x100000ull
#define UVA_BASE 0x7f1200000000ull
#define MEM_SIZE (16u << 20)
#define GUEST_CID 5u
#define RXBUF (VPKT_HDR_LEN + 4096u)
#define MAX_SEGS 16

/* ---- guest memory and a guest-side driver for split rings ----------------------------- */

/* What a test allocated, released after it (Criterion runs each test in its
 * own process; freeing keeps LeakSanitizer meaningful). */
static void *kept[16];
static unsigned nkept;
static struct vconn_dev *kept_dev[4];
static unsigned nkept_dev;
static struct vhu_dev *kept_vhu[2];
static unsigned nkept_vhu;
static struct vring *kept_vq[8];
static unsigned nkept_vq;

static void *keep(void *p)
{
    REQUIRE_OK(p != NULL);
    REQUIRE_OK(nkept < 16);
    kept[nkept++] = p;
    return p;
}

static void cleanup(void)
{
    while (nkept_dev)
        vconn_dev_free(kept_dev[--nkept_dev]);
    while (nkept_vhu)
        vhu_fini(kept_vhu[--nkept_vhu]);
    while (nkept_vq)
        vring_free(kept_vq[--nkept_vq]);
    while (nkept)
        free(kept[--nkept]);
}

TestSuite(vhost, .fini = cleanup);


struct guest {
    uint8_t *mem;
    size_t size;
    uint64_t brk;
    struct vring_mem vm;
};

struct seg {
    uint64_t gpa;
    uint32_t len;
    int write;
};

struct gq {
    struct vring vq; /* the device's view */
    unsigned num;
    struct vring_desc_raw *desc; /* the driver's view */
    struct vring_avail_raw *avail;
    struct vring_used_raw *used;
    uint16_t next_desc, avail_idx, last_used;
    struct {
        struct seg s[MAX_SEGS];
        unsigned n;
    } chain[VRING_MAX_NUM]; /* by head */
};

static void guest_init(struct guest *g, uint8_t *mem, size_t size)
{
    memset(g, 0, sizeof(*g));
    g->mem = mem;
    g->size = size;
    g->vm.n = 1;
    g->vm.r[0].gpa = GPA_BASE;
    g->vm.r[0].size = size;
    g->vm.r[0].uva = UVA_BASE;
    g->vm.r[0].host = mem;
}

static uint64_t g_alloc(struct guest *g, size_t size, size_t align)
{
    uint64_t off = (g->brk + align - 1) & ~(uint64_t)(align - 1);

    REQUIRE(off + size <= g->size, "guest memory exhausted");
    g->brk = off + size;
    return GPA_BASE + off;
}

static void *g_ptr(struct guest *g, uint64_t gpa)
{
    return g->mem + (gpa - GPA_BASE);
}

static uint64_t g_uva(uint64_t gpa)
{
    return gpa - GPA_BASE + UVA_BASE;
}

static void gq_init(struct guest *g, struct gq *q, unsigned num)
{
    uint64_t d = g_alloc(g, 16 * num, 16), a = g_alloc(g, 6 + 2 * num, 2), u = g_alloc(g, 6 + 8 * num, 4);

    memset(q, 0, sizeof(*q));
    q->num = num;
    q->desc = g_ptr(g, d);
    q->avail = g_ptr(g, a);
    q->used = g_ptr(g, u);
    memset(q->desc, 0, 16 * num);
    memset(q->avail, 0, 6 + 2 * num);
    memset(q->used, 0, 6 + 8 * num);
    vring_init(&q->vq);
    cr_assert_eq(vring_set_num(&q->vq, num), 0);
    cr_assert_eq(vring_set_addr(&q->vq, &g->vm, g_uva(d), g_uva(a), g_uva(u)), 0);
    cr_assert_eq(vring_sync_used(&q->vq), 0);
    q->vq.started = q->vq.enabled = 1;
    cr_assert_lt(nkept_vq, 8);
    kept_vq[nkept_vq++] = &q->vq;
}

static void gq_publish(struct gq *q, uint16_t head)
{
    q->avail->ring[q->avail_idx % q->num] = head;
    q->avail_idx++;
    __atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
}

/* Write a chain into the descriptor table and make it available. */
static uint16_t gq_add(struct gq *q, const struct seg *s, unsigned n)
{
    uint16_t head = q->next_desc;
    unsigned i;

    REQUIRE_OK(n >= 1 && n <= MAX_SEGS);
    for (i = 0; i < n; i++) {
        struct vring_desc_raw *d = &q->desc[(head + i) % q->num];

        d->addr = s[i].gpa;
        d->len = s[i].len;
        d->flags = (uint16_t)((s[i].write ? VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VRING_DESC_F_NEXT : 0));
        d->next = (uint16_t)((head + i + 1) % q->num);
        q->chain[head].s[i] = s[i];
    }
    q->chain[head].n = n;
    q->next_desc = (uint16_t)((head + n) % q->num);
    gq_publish(q, head);
    return head;
}

static int gq_get_used(struct gq *q, uint32_t *id, uint32_t *len)
{
    uint16_t idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
    struct vring_used_elem_raw *e;

    if (idx == q->last_used)
        return 0;
    e = &q->used->ring[q->last_used % q->num];
    *id = e->id;
    *len = e->len;
    q->last_used++;
    return 1;
}

/* ---- the fake host ------------------------------------------------------------------ */

#define FH_MAX 16
#define FD_BASE 100

struct fsock {
    int used, closed, connecting;
    int connect_err; /* connect_result() answer */
    uint32_t port, guest_port;
    void *cookie;
    uint8_t in[1 << 17]; /* host -> guest bytes, read by recv() */
    size_t in_len, in_off;
    int in_eof;
    int peer_gone; /* the host program closed (peer_closed() says 1) */
    int peer_rd_shut; /* the host program shut its reading side: sends fail with EPIPE */
    int shut_rd; /* the device shut our reading side (the guest's SHUT_RD) */
    unsigned probes; /* peer_shut_rd() calls */
    int recv_err, send_err;
    uint8_t out[1 << 19]; /* guest -> host bytes, written by send() */
    size_t out_len, out_cap;
    int shut_wr;
    /* seqpacket sockets: one send / recv is one message */
    unsigned type;
    uint32_t in_msg[64]; /* lengths of the messages in in[] */
    int in_eor[64]; /* ... sent with MSG_EOR */
    unsigned in_first, in_count;
    uint32_t out_msg[64]; /* lengths of the messages in out[] */
    int out_eor[64]; /* ... sent with MSG_EOR */
    unsigned out_count;
    size_t msg_max; /* larger sends fail with EMSGSIZE; 0: no limit */
};

struct fhost {
    struct fsock s[FH_MAX];
    int refuse; /* connect() result when nonzero */
    int connect_err; /* for new sockets */
    uint64_t now;
    struct {
        uint64_t token;
        unsigned answer;
    } answers[8]; /* ops->answer calls */
    unsigned nanswers;
};

static struct fsock *fs(struct fhost *h, int fd)
{
    REQUIRE(fd >= FD_BASE && fd < FD_BASE + FH_MAX, "fd %d is not a fake socket", fd);
    return &h->s[fd - FD_BASE];
}

static int f_connect(void *ctx, uint32_t port, uint32_t guest_port, unsigned type)
{
    struct fhost *h = ctx;
    int i;

    if (h->refuse)
        return h->refuse;
    for (i = 0; i < FH_MAX; i++) {
        if (!h->s[i].used) {
            memset(&h->s[i], 0, sizeof(h->s[i]));
            h->s[i].used = 1;
            h->s[i].connecting = 1;
            h->s[i].connect_err = h->connect_err;
            h->s[i].port = port;
            h->s[i].guest_port = guest_port;
            h->s[i].out_cap = sizeof(h->s[i].out);
            h->s[i].type = type;
            return FD_BASE + i;
        }
    }
    return -EMFILE;
}

static int f_connect_result(void *ctx, int fd)
{
    struct fsock *s = fs(ctx, fd);

    s->connecting = 0;
    return s->connect_err;
}

static ssize_t f_send(void *ctx, int fd, const void *buf, size_t len)
{
    struct fsock *s = fs(ctx, fd);
    size_t n;

    REQUIRE(!s->closed, "send on a closed socket");
    REQUIRE(!s->shut_wr, "send after shutdown(SHUT_WR)");
    REQUIRE(s->type != VPKT_TYPE_SEQPACKET, "a stream send on a seqpacket socket");
    if (s->send_err)
        return s->send_err;
    if (s->peer_rd_shut || s->peer_gone)
        return -EPIPE;
    n = s->out_cap - s->out_len;
    if (n == 0)
        return -EAGAIN;
    if (n > len)
        n = len;
    memcpy(s->out + s->out_len, buf, n);
    s->out_len += n;
    return (ssize_t)n;
}

static ssize_t f_recv(void *ctx, int fd, void *buf, size_t len)
{
    struct fsock *s = fs(ctx, fd);
    size_t n = s->in_len - s->in_off;

    REQUIRE(!s->closed, "recv on a closed socket");
    if (s->recv_err)
        return s->recv_err;
    if (n == 0)
        return s->in_eof ? 0 : -EAGAIN;
    REQUIRE(s->type != VPKT_TYPE_SEQPACKET, "a stream recv on a seqpacket socket");
    if (n > len)
        n = len;
    memcpy(buf, s->in + s->in_off, n);
    s->in_off += n;
    return (ssize_t)n;
}

/* A message goes whole, or not at all. */
static ssize_t f_send_msg(void *ctx, int fd, const void *buf, size_t len, int eor)
{
    struct fsock *s = fs(ctx, fd);

    REQUIRE(!s->closed, "send on a closed socket");
    REQUIRE(!s->shut_wr, "send after shutdown(SHUT_WR)");
    REQUIRE(s->type == VPKT_TYPE_SEQPACKET, "a message sent on a stream socket");
    if (s->send_err)
        return s->send_err;
    if (s->msg_max && len > s->msg_max)
        return -EMSGSIZE;
    if (s->out_cap - s->out_len < len)
        return -EAGAIN;
    REQUIRE_OK(s->out_count < 64);
    memcpy(s->out + s->out_len, buf, len);
    s->out_len += len;
    s->out_eor[s->out_count] = eor;
    s->out_msg[s->out_count++] = (uint32_t)len;
    return (ssize_t)len;
}

/* One message; the part beyond len would be lost, as AF_UNIX's MSG_TRUNC. */
static ssize_t f_recv_msg(void *ctx, int fd, void *buf, size_t len, int *eor)
{
    struct fsock *s = fs(ctx, fd);
    uint32_t m;
    size_t n;

    REQUIRE(!s->closed, "recv on a closed socket");
    REQUIRE(s->type == VPKT_TYPE_SEQPACKET, "a message read from a stream socket");
    if (s->recv_err)
        return s->recv_err;
    if (s->in_count == 0)
        return s->in_eof ? 0 : -EAGAIN;
    m = s->in_msg[s->in_first];
    *eor = s->in_eor[s->in_first];
    s->in_first = (s->in_first + 1) % 64;
    s->in_count--;
    n = m < len ? m : len;
    memcpy(buf, s->in + s->in_off, n);
    s->in_off += m;
    return (ssize_t)n;
}

static ssize_t f_msg_len(void *ctx, int fd)
{
    struct fsock *s = fs(ctx, fd);

    REQUIRE(s->type == VPKT_TYPE_SEQPACKET, "msg_len on a stream socket");
    REQUIRE(!s->closed, "msg_len on a closed socket");
    if (s->recv_err)
        return s->recv_err;
    if (s->in_count == 0)
        return s->in_eof ? 0 : -EAGAIN;
    return s->in_msg[s->in_first];
}

static int f_shutdown_wr(void *ctx, int fd)
{
    fs(ctx, fd)->shut_wr = 1;
    return 0;
}

static int f_peer_closed(void *ctx, int fd)
{
    return fs(ctx, fd)->peer_gone;
}

static int f_shutdown_rd(void *ctx, int fd)
{
    struct fsock *s = fs(ctx, fd);

    REQUIRE(!s->closed, "shutdown on a closed socket");
    s->shut_rd = 1;
    return 0;
}

/* As the empty send of main.c: EPIPE after the peer's SHUT_RD or close. */
static int f_peer_shut_rd(void *ctx, int fd)
{
    struct fsock *s = fs(ctx, fd);

    REQUIRE(!s->closed, "probe of a closed socket");
    REQUIRE(!s->shut_wr, "probe after our own SHUT_WR (it would fail with EPIPE whatever the peer did)");
    REQUIRE(s->type == VPKT_TYPE_STREAM, "probe of a seqpacket socket (an empty message)");
    s->probes++;
    return s->peer_rd_shut || s->peer_gone;
}

static int f_watch(void *ctx, int fd, void *cookie)
{
    fs(ctx, fd)->cookie = cookie;
    return 0;
}

static void f_close(void *ctx, int fd)
{
    struct fsock *s = fs(ctx, fd);

    REQUIRE(!s->closed, "fd %d closed twice", fd);
    s->closed = 1;
}

static uint64_t f_now(void *ctx)
{
    return ((struct fhost *)ctx)->now;
}

static void f_answer(void *ctx, uint64_t token, unsigned answer)
{
    struct fhost *h = ctx;

    REQUIRE(h->nanswers < 8, "too many answers");
    h->answers[h->nanswers].token = token;
    h->answers[h->nanswers].answer = answer;
    h->nanswers++;
}

static const struct vconn_host_ops fake_ops = {
    .connect = f_connect,
    .connect_result = f_connect_result,
    .send = f_send,
    .recv = f_recv,
    .shutdown_wr = f_shutdown_wr,
    .msg_len = f_msg_len,
    .send_msg = f_send_msg,
    .recv_msg = f_recv_msg,
    .peer_closed = f_peer_closed,
    .shutdown_rd = f_shutdown_rd,
    .peer_shut_rd = f_peer_shut_rd,
    .watch = f_watch,
    .close = f_close,
    .now_ms = f_now,
    .answer = f_answer,
};

/* ---- a device between a test guest and the fake host ----------------------------------- */


struct env {
    struct guest g;
    struct gq rx, tx;
    struct fhost fh;
    struct vconn_dev *d;
};

static struct env *env_new(unsigned num, uint32_t buf_alloc)
{
    struct env *e = keep(calloc(1, sizeof(*e)));
    struct vconn_config cfg = { .guest_cid = GUEST_CID, .buf_alloc = buf_alloc, .max_conns = 8 };
    uint8_t *mem = keep(aligned_alloc(4096, MEM_SIZE));

    memset(mem, 0xA5, MEM_SIZE);
    vlog_level = -1;
    guest_init(&e->g, mem, MEM_SIZE);
    gq_init(&e->g, &e->rx, num);
    gq_init(&e->g, &e->tx, num);
    cr_assert_eq(vconn_dev_new(&cfg, &fake_ops, &e->fh, &e->d), 0);
    kept_dev[nkept_dev++] = e->d;
    vconn_attach(e->d, &e->rx.vq, &e->tx.vq, &e->g.vm);
    return e;
}

static struct vpkt_hdr hdr(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t len)
{
    struct vpkt_hdr h = { .src_cid = GUEST_CID, .dst_cid = VPKT_CID_HOST, .src_port = src_port,
                          .dst_port = dst_port, .len = len, .type = VPKT_TYPE_STREAM, .op = op,
                          .buf_alloc = 65536, .fwd_cnt = 0 };
    return h;
}

/* Send one packet from the guest, split into descriptors of the given
 * sizes (the last one takes the rest); splits == NULL: one descriptor. */
static void g_send_split(struct env *e, const struct vpkt_hdr *h, const void *payload, uint32_t plen,
                         const uint32_t *splits, unsigned nsplits)
{
    uint8_t pkt[VPKT_HDR_LEN + 70000];
    struct seg s[MAX_SEGS];
    uint32_t total = VPKT_HDR_LEN + plen, off = 0;
    unsigned n = 0;

    REQUIRE_OK(total <= sizeof(pkt));
    vpkt_hdr_encode(h, pkt);
    if (plen)
        memcpy(pkt + VPKT_HDR_LEN, payload, plen);
    while (off < total) {
        uint32_t len = (splits && n < nsplits) ? splits[n] : total - off;

        if (len > total - off)
            len = total - off;
        s[n].gpa = g_alloc(&e->g, len, 8);
        s[n].len = len;
        s[n].write = 0;
        memcpy(g_ptr(&e->g, s[n].gpa), pkt + off, len);
        off += len;
        n++;
        REQUIRE_OK(n <= MAX_SEGS);
    }
    gq_add(&e->tx, s, n);
    vconn_run(e->d);
}

static void g_send(struct env *e, const struct vpkt_hdr *h, const void *payload, uint32_t plen)
{
    g_send_split(e, h, payload, plen, NULL, 0);
}

/* Post an rx buffer split into descriptors of the given sizes. */
static void g_post_rx_split(struct env *e, const uint32_t *splits, unsigned n)
{
    struct seg s[MAX_SEGS];
    unsigned i;

    for (i = 0; i < n; i++) {
        s[i].gpa = g_alloc(&e->g, splits[i], 8);
        s[i].len = splits[i];
        s[i].write = 1;
    }
    gq_add(&e->rx, s, n);
}

static void g_post_rx(struct env *e, unsigned count, uint32_t size)
{
    while (count--)
        g_post_rx_split(e, &size, 1);
}

/* Take one received packet: 1 with header and payload, 0 if none. */
static int g_recv(struct env *e, struct vpkt_hdr *h, uint8_t *payload, uint32_t cap)
{
    uint8_t pkt[VPKT_HDR_LEN + 70000];
    uint32_t id, len, off = 0;
    unsigned i;

    if (!gq_get_used(&e->rx, &id, &len))
        return 0;
    REQUIRE_OK(id < e->rx.num);
    REQUIRE(len >= VPKT_HDR_LEN, "used length %u is shorter than a header", len);
    for (i = 0; i < e->rx.chain[id].n && off < len; i++) {
        uint32_t k = e->rx.chain[id].s[i].len;

        if (k > len - off)
            k = len - off;
        memcpy(pkt + off, g_ptr(&e->g, e->rx.chain[id].s[i].gpa), k);
        off += k;
    }
    REQUIRE_OK(off == len);
    vpkt_hdr_decode(pkt, h);
    REQUIRE(h->len == len - VPKT_HDR_LEN, "header len %u, used len %u", h->len, len);
    REQUIRE_OK(h->len <= cap);
    if (h->len)
        memcpy(payload, pkt + VPKT_HDR_LEN, h->len);
    return 1;
}

static struct vpkt_hdr g_expect(struct env *e, uint16_t op)
{
    static uint8_t buf[70000];
    struct vpkt_hdr h;
    char b1[16], b2[16];

    REQUIRE(g_recv(e, &h, buf, sizeof(buf)), "expected a %s packet, got none", vpkt_op_name(op, b1, sizeof(b1)));
    REQUIRE(h.op == op, "expected %s, got %s", vpkt_op_name(op, b1, sizeof(b1)), vpkt_op_name(h.op, b2, sizeof(b2)));
    return h;
}

static void g_expect_none(struct env *e)
{
    struct vpkt_hdr h;
    uint8_t buf[70000];
    char b[16];

    if (g_recv(e, &h, buf, sizeof(buf)))
        cr_assert_fail("unexpected %s packet", vpkt_op_name(h.op, b, sizeof(b)));
}

static int tx_used_count(struct env *e)
{
    uint32_t id, len;
    int n = 0;

    while (gq_get_used(&e->tx, &id, &len)) {
        REQUIRE(len == 0, "the device wrote into a tx buffer");
        n++;
    }
    return n;
}

/* Guest connects its port gport to host port hport; returns the fake socket. */
static struct fsock *g_connect(struct env *e, uint32_t gport, uint32_t hport)
{
    struct vpkt_hdr h = hdr(VPKT_OP_REQUEST, gport, hport, 0);
    struct fsock *s;
    int i;

    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    for (i = 0; i < FH_MAX; i++)
        if (e->fh.s[i].used && !e->fh.s[i].closed && e->fh.s[i].guest_port == gport && e->fh.s[i].port == hport)
            break;
    REQUIRE(i < FH_MAX, "no host connect for %u -> %u", gport, hport);
    s = &e->fh.s[i];
    REQUIRE_OK(s->cookie != NULL);
    vconn_host_event(e->d, s->cookie, VCONN_EV_OUT);
    vconn_run(e->d);
    h = g_expect(e, VPKT_OP_RESPONSE);
    REQUIRE_OK(h.src_port == hport);
    REQUIRE_OK(h.dst_port == gport);
    cr_assert_eq(h.dst_cid, GUEST_CID);
    return s;
}

static void host_data(struct env *e, struct fsock *s, const void *data, size_t len)
{
    cr_assert_leq(s->in_len + len, sizeof(s->in));
    memcpy(s->in + s->in_len, data, len);
    s->in_len += len;
    vconn_host_event(e->d, s->cookie, VCONN_EV_IN);
    vconn_run(e->d);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + seed + (i >> 8));
}

/* ---- packets and cursors ---------------------------------------------------------------- */

Test(vhost, header_layout_is_packed_little_endian, .timeout = 10)
{
    struct vpkt_hdr h = { 0x1122334455667788ull, 2, 0xaabbccdd, 0x01020304, 0x11, 1, 5, 3, 0x40000, 0x1234 }, o;
    uint8_t raw[VPKT_HDR_LEN];

    vpkt_hdr_encode(&h, raw);
    cr_assert_eq(raw[0], 0x88);
    cr_assert_eq(raw[7], 0x11);
    cr_assert_eq(raw[8], 2);
    cr_assert_eq(raw[16], 0xdd);
    cr_assert_eq(raw[20], 0x04);
    cr_assert_eq(raw[24], 0x11);
    cr_assert_eq(raw[28], 1);
    cr_assert_eq(raw[30], 5);
    cr_assert_eq(raw[32], 3);
    cr_assert_eq(raw[38], 0x04);
    cr_assert_eq(raw[40], 0x34);
    cr_assert_eq(raw[41], 0x12);
    memset(&o, 0, sizeof(o));
    vpkt_hdr_decode(raw, &o);
    cr_assert_eq(o.src_cid, h.src_cid);
    cr_assert_eq(o.dst_cid, h.dst_cid);
    cr_assert_eq(o.src_port, h.src_port);
    cr_assert_eq(o.dst_port, h.dst_port);
    cr_assert_eq(o.len, h.len);
    cr_assert_eq(o.type, h.type);
    cr_assert_eq(o.op, h.op);
    cr_assert_eq(o.flags, h.flags);
    cr_assert_eq(o.buf_alloc, h.buf_alloc);
    cr_assert_eq(o.fwd_cnt, h.fwd_cnt);
}

Test(vhost, cursor_crosses_segments_and_honours_limit, .timeout = 10)
{
    uint8_t a[3], b[1], c[10], out[20];
    struct vring_iov iov[4] = { { a, 3 }, { b, 0 }, { b, 1 }, { c, 10 } };
    struct vpkt_cursor cur;

    vpkt_cursor_init(&cur, iov, 4, 9);
    cr_assert_eq(vpkt_cursor_write(&cur, "abcdefghijk", 11), 9);
    cr_assert_eq(memcmp(a, "abc", 3), 0);
    cr_assert_eq(b[0], 'd');
    cr_assert_eq(memcmp(c, "efghi", 5), 0);
    vpkt_cursor_init(&cur, iov, 4, 100);
    cr_assert_eq(vpkt_cursor_skip(&cur, 2), 2);
    cr_assert_eq(vpkt_cursor_read(&cur, out, 20), 12);
    cr_assert_eq(memcmp(out, "cdefghi", 7), 0);
}

Test(vhost, mem_translation_is_bounded, .timeout = 10)
{
    static uint8_t m1[4096], m2[4096];
    struct vring_mem vm = { 2, { { 0x1000, 4096, 0x50000, m1 }, { 0x3000, 4096, 0x90000, m2 } } };

    cr_assert_eq(vring_mem_gpa(&vm, 0x1000, 4096), m1);
    cr_assert_eq(vring_mem_gpa(&vm, 0x1ff0, 16), m1 + 0xff0);
    cr_assert_null(vring_mem_gpa(&vm, 0x1ff0, 17), "crosses the region end");
    cr_assert_null(vring_mem_gpa(&vm, 0x2000, 1), "in the hole");
    cr_assert_null(vring_mem_gpa(&vm, 0x1fff, 0x1002), "spans two regions with a hole");
    cr_assert_null(vring_mem_gpa(&vm, 0xfff, 2), "starts before the region");
    cr_assert_null(vring_mem_gpa(&vm, 0x1800, UINT64_MAX), "length wraps");
    cr_assert_null(vring_mem_gpa(&vm, UINT64_MAX, 2), "address wraps");
    cr_assert_eq(vring_mem_gpa(&vm, 0x3800, 0x800), m2 + 0x800);
    cr_assert_eq(vring_mem_uva(&vm, 0x90010, 4), m2 + 0x10);
    cr_assert_null(vring_mem_uva(&vm, 0x3800, 4), "a GPA is not a UVA");
}

Test(vhost, ring_size_must_be_power_of_two, .timeout = 10)
{
    struct vring vq;

    vring_init(&vq);
    cr_assert_eq(vring_set_num(&vq, 0), -EINVAL);
    cr_assert_eq(vring_set_num(&vq, 3), -EINVAL);
    cr_assert_eq(vring_set_num(&vq, 65536), -EINVAL);
    cr_assert_eq(vring_set_num(&vq, 32768), 0);
    cr_assert_eq(vring_set_num(&vq, 1), 0);
    vring_free(&vq);
}

/* ---- rx layouts --------------------------------------------------------------------------- */

static void rx_layout(const uint32_t *splits, unsigned n, uint32_t payload_len)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    static uint8_t data[8192], got[70000];
    struct vpkt_hdr h;

    fill(data, sizeof(data), 3);
    g_post_rx_split(e, splits, n);
    host_data(e, s, data, payload_len);
    cr_assert(g_recv(e, &h, got, sizeof(got)));
    cr_assert_eq(h.op, VPKT_OP_RW);
    cr_assert_eq(h.src_port, 1234);
    cr_assert_eq(h.dst_port, 1000);
    cr_assert_eq(h.buf_alloc, 65536);
    cr_assert_eq(h.len, payload_len);
    cr_assert_eq(memcmp(got, data, payload_len), 0);
}

Test(vhost, rx_header_and_payload_in_one_descriptor, .timeout = 10)
{
    uint32_t s[] = { RXBUF };

    rx_layout(s, 1, 4096);
}

Test(vhost, rx_header_and_payload_split, .timeout = 10)
{
    uint32_t s[] = { VPKT_HDR_LEN, 4096 };

    rx_layout(s, 2, 4096);
}

Test(vhost, rx_header_split_mid_way, .timeout = 10)
{
    uint32_t s[] = { 20, 24, 1000, 3096 };

    rx_layout(s, 4, 3000);
}

Test(vhost, rx_header_split_mid_field_with_payload_in_last, .timeout = 10)
{
    uint32_t s[] = { 7, 30, 7 + 100, 1 };

    rx_layout(s, 4, 101);
}

Test(vhost, rx_data_split_to_buffer_size, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    static uint8_t data[10000], got[10000 + 4096];
    struct vpkt_hdr h;
    uint32_t off = 0;

    fill(data, sizeof(data), 9);
    g_post_rx(e, 8, VPKT_HDR_LEN + 3000);
    host_data(e, s, data, sizeof(data));
    while (g_recv(e, &h, got + off, sizeof(got) - off)) {
        REQUIRE_OK(h.op == VPKT_OP_RW);
        REQUIRE_OK(h.len <= 3000);
        off += h.len;
    }
    cr_assert_eq(off, sizeof(data));
    cr_assert_eq(memcmp(got, data, sizeof(data)), 0);
}

Test(vhost, rx_buffer_too_small_for_a_header_is_returned_empty, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 7, 8, 0); /* unknown flow: needs an RST reply */
    uint32_t id, len;

    g_post_rx(e, 1, 20);
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    cr_assert(gq_get_used(&e->rx, &id, &len));
    cr_assert_eq(len, 0);
    h = g_expect(e, VPKT_OP_RST);
    cr_assert_eq(h.dst_port, 7);
    cr_assert_not(vconn_broken(e->d));
}

/* ---- tx layouts --------------------------------------------------------------------------- */

static void tx_layout(const uint32_t *splits, unsigned n, uint32_t plen)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    static uint8_t data[65536];
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 1000, 1234, plen);

    fill(data, sizeof(data), 5);
    g_send_split(e, &h, data, plen, splits, n);
    cr_assert_eq(s->out_len, plen);
    cr_assert_eq(memcmp(s->out, data, plen), 0);
    cr_assert_eq(tx_used_count(e), 2);
    cr_assert_not(vconn_broken(e->d));
}

Test(vhost, tx_in_one_descriptor, .timeout = 10)
{
    tx_layout(NULL, 0, 1000);
}

Test(vhost, tx_header_and_payload_in_two_descriptors, .timeout = 10)
{
    uint32_t s[] = { VPKT_HDR_LEN };

    tx_layout(s, 1, 4000);
}

Test(vhost, tx_in_many_descriptors_header_split, .timeout = 10)
{
    uint32_t s[] = { 10, 34, 1, 100, 4096, 7, 30000, 3 };

    tx_layout(s, 8, 65536);
}

Test(vhost, tx_header_split_inside_a_field, .timeout = 10)
{
    uint32_t s[] = { 25, 3, 16, 2 };

    tx_layout(s, 4, 50);
}

/* ---- hostile rings -------------------------------------------------------------------------- */

static struct env *hostile_env(void)
{
    struct env *e = env_new(16, 65536);

    g_post_rx(e, 2, RXBUF);
    return e;
}

static void expect_broken(struct env *e)
{
    vconn_run(e->d);
    cr_assert(vconn_broken(e->d), "the device should be marked broken");
    /* Broken stays broken and quiet: more kicks do nothing. */
    vconn_run(e->d);
    cr_assert(vconn_broken(e->d));
}

Test(vhost, hostile_head_out_of_range, .timeout = 10)
{
    struct env *e = hostile_env();

    gq_publish(&e->tx, 16);
    expect_broken(e);
}

Test(vhost, hostile_next_out_of_range, .timeout = 10)
{
    struct env *e = hostile_env();
    struct seg s[2] = { { g_alloc(&e->g, 44, 8), 20, 0 }, { GPA_BASE, 24, 0 } };
    uint16_t head = gq_add(&e->tx, s, 2);

    e->tx.desc[head].next = 999;
    expect_broken(e);
}

Test(vhost, hostile_descriptor_loop, .timeout = 10)
{
    struct env *e = hostile_env();
    uint64_t a = g_alloc(&e->g, 64, 8);
    struct seg s[3] = { { a, 10, 0 }, { a, 10, 0 }, { a, 10, 0 } };
    uint16_t head = gq_add(&e->tx, s, 3);

    e->tx.desc[(head + 2) % 16].flags |= VRING_DESC_F_NEXT;
    e->tx.desc[(head + 2) % 16].next = head;
    expect_broken(e);
}

Test(vhost, hostile_self_loop, .timeout = 10)
{
    struct env *e = hostile_env();
    struct seg s = { g_alloc(&e->g, 64, 8), 64, 0 };
    uint16_t head = gq_add(&e->tx, &s, 1);

    e->tx.desc[head].flags |= VRING_DESC_F_NEXT;
    e->tx.desc[head].next = head;
    expect_broken(e);
}

Test(vhost, hostile_address_outside_memory, .timeout = 10)
{
    struct env *e = hostile_env();
    struct seg s = { GPA_BASE + MEM_SIZE - 10, 64, 0 };

    gq_add(&e->tx, &s, 1);
    expect_broken(e);
}

Test(vhost, hostile_address_below_memory, .timeout = 10)
{
    struct env *e = hostile_env();
    struct seg s = { 0x1000, 64, 0 };

    gq_add(&e->tx, &s, 1);
    expect_broken(e);
}

Test(vhost, hostile_addr_plus_len_wraps, .timeout = 10)
{
    struct env *e = hostile_env();
    struct seg s = { UINT64_MAX - 10, 100, 0 };

    gq_add(&e->tx, &s, 1);
    expect_broken(e);
}

Test(vhost, hostile_len_overflows_region, .timeout = 10)
{
    struct env *e = hostile_env();
    struct seg s = { GPA_BASE + 4096, UINT32_MAX, 0 };

    gq_add(&e->tx, &s, 1);
    expect_broken(e);
}

Test(vhost, hostile_avail_idx_jumps_beyond_num, .timeout = 10)
{
    struct env *e = hostile_env();

    __atomic_store_n(&e->tx.avail->idx, (uint16_t)17, __ATOMIC_RELEASE);
    expect_broken(e);
}

Test(vhost, hostile_rx_ring_broken_too, .timeout = 10)
{
    struct env *e = env_new(16, 65536);
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 1, 2, 0);

    gq_publish(&e->rx, 40000);
    g_send(e, &h, NULL, 0); /* needs an RST: pops rx */
    expect_broken(e);
}

Test(vhost, hostile_indirect_descriptor, .timeout = 10)
{
    struct env *e = hostile_env();
    struct seg s = { g_alloc(&e->g, 64, 16), 64, 0 };
    uint16_t head = gq_add(&e->tx, &s, 1);

    e->tx.desc[head].flags |= VRING_DESC_F_INDIRECT;
    expect_broken(e);
}

Test(vhost, hostile_readable_after_writable, .timeout = 10)
{
    struct env *e = env_new(16, 65536);
    uint64_t a = g_alloc(&e->g, 200, 8);
    struct seg s[2] = { { a, 100, 1 }, { a + 100, 100, 0 } };

    gq_add(&e->rx, s, 2);
    e->rx.vq.started = 1;
    {
        struct vpkt_hdr h = hdr(VPKT_OP_RW, 1, 2, 0);

        g_send(e, &h, NULL, 0);
    }
    expect_broken(e);
}

Test(vhost, broken_device_closes_host_side_and_reset_recovers, .timeout = 10)
{
    struct env *e = env_new(16, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);

    gq_publish(&e->tx, 99);
    expect_broken(e);
    cr_assert(s->closed, "the host socket should be closed when the guest breaks its device");
    vconn_reset(e->d);
    cr_assert_not(vconn_broken(e->d));
}

Test(vhost, ring_not_ready_is_not_processed, .timeout = 10)
{
    struct env *e = env_new(16, 65536);
    struct vpkt_hdr h = hdr(VPKT_OP_REQUEST, 1000, 1234, 0);

    e->tx.vq.enabled = 0;
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    cr_assert_eq(tx_used_count(e), 0);
    e->tx.vq.enabled = 1;
    vconn_run(e->d);
    cr_assert_eq(tx_used_count(e), 1);
}

/* ---- hostile packets ------------------------------------------------------------------------ */

Test(vhost, packet_len_beyond_chain_is_refused, .timeout = 10)
{
    struct env *e = hostile_env();
    struct vpkt_hdr h = hdr(VPKT_OP_REQUEST, 1000, 1234, 500);
    struct seg s = { g_alloc(&e->g, 100, 8), 100, 0 };
    uint8_t raw[VPKT_HDR_LEN];

    vpkt_hdr_encode(&h, raw);
    memcpy(g_ptr(&e->g, s.gpa), raw, sizeof(raw));
    gq_add(&e->tx, &s, 1);
    vconn_run(e->d);
    cr_assert_not(vconn_broken(e->d));
    h = g_expect(e, VPKT_OP_RST);
    cr_assert_eq(h.dst_port, 1000);
    cr_assert_eq(h.src_port, 1234);
    cr_assert_not(e->fh.s[0].used, "no host connect for a refused packet");
}

Test(vhost, packet_len_over_64k_is_refused, .timeout = 10)
{
    struct env *e = hostile_env();
    static uint8_t big[VPKT_MAX_PAYLOAD + 1];
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 1000, 1234, sizeof(big));

    g_send(e, &h, big, sizeof(big));
    cr_assert_not(vconn_broken(e->d));
    g_expect(e, VPKT_OP_RST);
}

Test(vhost, chain_shorter_than_header_is_dropped, .timeout = 10)
{
    struct env *e = hostile_env();
    struct seg s = { g_alloc(&e->g, 43, 8), 43, 0 };

    gq_add(&e->tx, &s, 1);
    vconn_run(e->d);
    cr_assert_not(vconn_broken(e->d));
    cr_assert_eq(tx_used_count(e), 1);
    g_expect_none(e);
}

Test(vhost, writable_only_tx_chain_is_dropped, .timeout = 10)
{
    struct env *e = hostile_env();
    struct seg s = { g_alloc(&e->g, 100, 8), 100, 1 };

    gq_add(&e->tx, &s, 1);
    vconn_run(e->d);
    cr_assert_not(vconn_broken(e->d));
    cr_assert_eq(tx_used_count(e), 1);
}

Test(vhost, unknown_type_gets_rst, .timeout = 10)
{
    struct env *e = hostile_env();
    struct vpkt_hdr h = hdr(VPKT_OP_REQUEST, 1000, 1234, 0);

    h.type = VPKT_TYPE_SEQPACKET;
    g_send(e, &h, NULL, 0);
    h = g_expect(e, VPKT_OP_RST);
    cr_assert_eq(h.type, VPKT_TYPE_SEQPACKET);
    h = hdr(VPKT_OP_REQUEST, 1000, 1234, 0);
    h.type = 77;
    g_send(e, &h, NULL, 0);
    g_expect(e, VPKT_OP_RST);
    cr_assert_not(e->fh.s[0].used);
}

Test(vhost, unknown_op_resets_the_connection, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h = hdr(42, 1000, 1234, 0);

    g_post_rx(e, 2, RXBUF);
    g_send(e, &h, NULL, 0);
    g_expect(e, VPKT_OP_RST);
    cr_assert(s->closed);
    h = hdr(0, 1001, 1234, 0); /* INVALID on an unknown flow: RST as well */
    g_send(e, &h, NULL, 0);
    g_expect(e, VPKT_OP_RST);
}

/* Kernel vhost-vsock frees a packet that is not from the guest's CID to the
 * host's, with no answer (vhost_vsock_handle_tx_kick): the guest's connect
 * to a sibling times out. */
Test(vhost, wrong_cids_are_dropped_without_an_answer, .timeout = 10)
{
    struct env *e = hostile_env();
    struct vpkt_hdr h = hdr(VPKT_OP_REQUEST, 1000, 1234, 0);

    h.dst_cid = 7; /* a sibling VM: not reachable */
    g_send(e, &h, NULL, 0);
    g_expect_none(e);
    h = hdr(VPKT_OP_REQUEST, 1000, 1234, 0);
    h.src_cid = 9; /* not the guest's CID */
    g_send(e, &h, NULL, 0);
    g_expect_none(e);
    cr_assert_not(e->fh.s[0].used);
}

Test(vhost, rst_is_never_answered_with_rst, .timeout = 10)
{
    struct env *e = hostile_env();
    struct vpkt_hdr h = hdr(VPKT_OP_RST, 1000, 1234, 0);

    g_send(e, &h, NULL, 0);
    g_expect_none(e);
}

Test(vhost, stray_rst_queue_is_bounded, .timeout = 10)
{
    struct env *e = env_new(256, 65536);
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 0, 1234, 0);
    struct vconn_stats st;
    int i, n = 0;

    for (i = 0; i < 200; i++) {
        h.src_port = (uint32_t)i;
        g_send(e, &h, NULL, 0);
        tx_used_count(e);
    }
    vconn_get_stats(e->d, &st);
    cr_assert_gt(st.stray_dropped, 0);
    g_post_rx(e, 200, RXBUF);
    vconn_run(e->d);
    while (1) {
        struct vpkt_hdr r;
        uint8_t b[8];

        if (!g_recv(e, &r, b, sizeof(b)))
            break;
        REQUIRE_OK(r.op == VPKT_OP_RST);
        n++;
    }
    cr_assert_eq((uint64_t)n + st.stray_dropped, 200);
}

/* ---- connections ----------------------------------------------------------------------------- */

Test(vhost, connect_refused_by_host_gets_rst, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct vpkt_hdr h = hdr(VPKT_OP_REQUEST, 1000, 1234, 0);

    e->fh.refuse = -ECONNREFUSED;
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    h = g_expect(e, VPKT_OP_RST);
    cr_assert_eq(h.src_port, 1234);
    cr_assert_eq(h.dst_port, 1000);
    cr_assert_eq(h.dst_cid, GUEST_CID);
}

Test(vhost, connect_failing_later_gets_rst, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct vpkt_hdr h = hdr(VPKT_OP_REQUEST, 1000, 1234, 0);

    e->fh.connect_err = -ECONNRESET;
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    g_expect_none(e);
    vconn_host_event(e->d, e->fh.s[0].cookie, VCONN_EV_OUT | VCONN_EV_ERR);
    vconn_run(e->d);
    g_expect(e, VPKT_OP_RST);
    cr_assert(e->fh.s[0].closed);
}

/* Nobody answered the host connect (the Hyper-V refusal profile): the guest
 * hears nothing, its own timeout decides, and its retry on the same port
 * (a new REQUEST on the tuple) is served, never hit by a stale RST. */
Test(vhost, connect_timing_out_is_forgotten_and_a_retry_works, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct vpkt_hdr h = hdr(VPKT_OP_REQUEST, 1000, 1234, 0);
    struct fsock *s;

    e->fh.connect_err = -ETIMEDOUT;
    g_post_rx(e, 2, RXBUF);
    g_send(e, &h, NULL, 0);
    vconn_host_event(e->d, e->fh.s[0].cookie, VCONN_EV_OUT | VCONN_EV_ERR);
    vconn_run(e->d);
    g_expect_none(e);
    cr_assert(e->fh.s[0].closed);
    cr_assert_eq(vconn_next_timeout_ms(e->d), -1, "nothing of the old request may stay pending");
    e->fh.connect_err = 0;
    s = g_connect(e, 1000, 1234);
    cr_assert_not(s->closed);
    g_expect_none(e);
}

/* The retry comes while the first host connect is still pending: the old
 * one is dropped, and its late failure sends nothing. */
Test(vhost, retry_during_a_pending_connect_replaces_it, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct vpkt_hdr h = hdr(VPKT_OP_REQUEST, 1000, 1234, 0);
    struct fsock *old, *s;

    g_post_rx(e, 2, RXBUF);
    g_send(e, &h, NULL, 0);
    old = &e->fh.s[0];
    cr_assert(old->connecting);
    s = g_connect(e, 1000, 1234);
    cr_assert(old->closed);
    cr_assert_not(s->closed);
    g_expect_none(e);
}

Test(vhost, connect_limit_refuses_with_rst, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct vpkt_hdr h;
    int i;

    for (i = 0; i < 8; i++)
        g_connect(e, 2000 + (uint32_t)i, 80);
    h = hdr(VPKT_OP_REQUEST, 3000, 80, 0);
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    g_expect(e, VPKT_OP_RST);
}

Test(vhost, replies_wait_for_rx_buffers, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct vpkt_hdr h = hdr(VPKT_OP_REQUEST, 1000, 1234, 0);

    g_send(e, &h, NULL, 0);
    vconn_host_event(e->d, e->fh.s[0].cookie, VCONN_EV_OUT);
    vconn_run(e->d);
    /* tx is still drained although rx has no buffer (virtio deadlock rule). */
    cr_assert_eq(tx_used_count(e), 1);
    g_expect_none(e);
    g_post_rx(e, 1, RXBUF);
    vconn_run(e->d);
    g_expect(e, VPKT_OP_RESPONSE);
}

Test(vhost, guest_data_reaches_host_in_order, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    uint8_t data[3000];
    struct vpkt_hdr h;
    int i;

    fill(data, sizeof(data), 1);
    for (i = 0; i < 3; i++) {
        h = hdr(VPKT_OP_RW, 1000, 1234, 1000);
        g_send(e, &h, data + i * 1000, 1000);
    }
    cr_assert_eq(s->out_len, 3000);
    cr_assert_eq(memcmp(s->out, data, 3000), 0);
}

Test(vhost, guest_shutdown_send_half_closes_host, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h = hdr(VPKT_OP_SHUTDOWN, 1000, 1234, 0);
    uint8_t buf[16];

    h.flags = VPKT_SHUTDOWN_SEND;
    g_send(e, &h, NULL, 0);
    cr_assert(s->shut_wr);
    cr_assert_not(s->closed);
    /* The other direction still works. */
    g_post_rx(e, 1, RXBUF);
    host_data(e, s, "hello", 5);
    cr_assert(g_recv(e, &h, buf, sizeof(buf)));
    cr_assert_eq(h.op, VPKT_OP_RW);
    cr_assert_eq(memcmp(buf, "hello", 5), 0);
    /* Host EOF too: SHUTDOWN(SEND), then RST, then the host side is closed. */
    g_post_rx(e, 2, RXBUF);
    s->in_eof = 1;
    vconn_host_event(e->d, s->cookie, VCONN_EV_IN);
    vconn_run(e->d);
    h = g_expect(e, VPKT_OP_SHUTDOWN);
    cr_assert_eq(h.flags, VPKT_SHUTDOWN_SEND);
    g_expect(e, VPKT_OP_RST);
    cr_assert(s->closed);
}

Test(vhost, guest_shutdown_waits_for_buffered_data, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    uint8_t data[5000];
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 1000, 1234, sizeof(data));

    fill(data, sizeof(data), 2);
    s->out_cap = 1000;
    g_send(e, &h, data, sizeof(data));
    cr_assert_eq(s->out_len, 1000);
    h = hdr(VPKT_OP_SHUTDOWN, 1000, 1234, 0);
    h.flags = VPKT_SHUTDOWN_SEND | VPKT_SHUTDOWN_RCV;
    g_post_rx(e, 2, RXBUF);
    g_send(e, &h, NULL, 0);
    cr_assert_not(s->shut_wr, "shutdown before the buffered data was written");
    cr_assert_not(s->closed);
    g_expect_none(e);
    s->out_cap = sizeof(s->out);
    vconn_host_event(e->d, s->cookie, VCONN_EV_OUT);
    vconn_run(e->d);
    cr_assert_eq(s->out_len, sizeof(data));
    cr_assert_eq(memcmp(s->out, data, sizeof(data)), 0);
    cr_assert(s->shut_wr);
    cr_assert(s->closed);
    g_expect(e, VPKT_OP_RST);
}

Test(vhost, closing_guest_times_out_if_host_never_drains, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    uint8_t data[100] = { 0 };
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 1000, 1234, sizeof(data));

    s->out_cap = 0;
    g_send(e, &h, data, sizeof(data));
    h = hdr(VPKT_OP_SHUTDOWN, 1000, 1234, 0);
    h.flags = VPKT_SHUTDOWN_SEND | VPKT_SHUTDOWN_RCV;
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    g_expect_none(e);
    cr_assert_geq(vconn_next_timeout_ms(e->d), 0);
    e->fh.now += VCONN_TIMEOUT_MS;
    vconn_run(e->d);
    g_expect(e, VPKT_OP_RST);
    cr_assert(s->closed);
}

Test(vhost, guest_rst_closes_host, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h = hdr(VPKT_OP_RST, 1000, 1234, 0);

    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    cr_assert(s->closed);
    g_expect_none(e);
    /* Late packets of the closed connection get no RST for a while... */
    h = hdr(VPKT_OP_CREDIT_UPDATE, 1000, 1234, 0);
    g_send(e, &h, NULL, 0);
    g_expect_none(e);
    /* ... then they do. */
    e->fh.now += VCONN_TIMEOUT_MS;
    g_send(e, &h, NULL, 0);
    g_expect(e, VPKT_OP_RST);
}

Test(vhost, host_send_error_resets, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 1000, 1234, 3);

    s->send_err = -EPIPE;
    s->peer_gone = 1; /* EPIPE from a closed peer, not its SHUT_RD */
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, "abc", 3);
    g_expect(e, VPKT_OP_RST);
    cr_assert(s->closed);
}

/* The host program closes: the guest hears its data, then SHUTDOWN with both
 * flags (its sends now fail with EPIPE), answers with RST, and the tuple is
 * free for a new connection at once. */
Test(vhost, host_close_is_a_full_shutdown_answered_by_the_guests_rst, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h;
    uint8_t buf[16];

    g_post_rx(e, 4, RXBUF);
    s->in_eof = 1;
    s->peer_gone = 1;
    host_data(e, s, "bye", 3);
    cr_assert(g_recv(e, &h, buf, sizeof(buf)));
    cr_assert_eq(h.op, VPKT_OP_RW);
    cr_assert_eq(memcmp(buf, "bye", 3), 0);
    h = g_expect(e, VPKT_OP_SHUTDOWN);
    cr_assert_eq(h.flags, VPKT_SHUTDOWN_RCV | VPKT_SHUTDOWN_SEND);
    cr_assert(s->closed);
    g_expect_none(e);
    /* Data the guest sent before it heard: dropped, no RST. */
    h = hdr(VPKT_OP_RW, 1000, 1234, 3);
    g_send(e, &h, "abc", 3);
    g_expect_none(e);
    /* The guest's RST ends it; no RST answers it. */
    h = hdr(VPKT_OP_RST, 1000, 1234, 0);
    g_send(e, &h, NULL, 0);
    g_expect_none(e);
    e->fh.now += VCONN_TIMEOUT_MS; /* no timer of it is left: no RST later */
    vconn_run(e->d);
    g_expect_none(e);
    s = g_connect(e, 1000, 1234);
    cr_assert_not(s->closed);
}

/* The guest does not answer (a program that never reads nor closes): our RST
 * after the close timeout, as the kernel's virtio_transport_close_timeout. */
Test(vhost, host_close_unanswered_ends_with_our_rst_after_the_timeout, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h;

    g_post_rx(e, 2, RXBUF);
    s->in_eof = 1;
    s->peer_gone = 1;
    vconn_host_event(e->d, s->cookie, VCONN_EV_IN | VCONN_EV_ERR);
    vconn_run(e->d);
    h = g_expect(e, VPKT_OP_SHUTDOWN);
    cr_assert_eq(h.flags, VPKT_SHUTDOWN_RCV | VPKT_SHUTDOWN_SEND);
    g_expect_none(e);
    e->fh.now += VCONN_TIMEOUT_MS - 1;
    vconn_run(e->d);
    g_expect_none(e);
    e->fh.now += 1;
    vconn_run(e->d);
    g_expect(e, VPKT_OP_RST);
}

/* Both close at once: the guest's full SHUTDOWN crosses ours; it is answered
 * with RST, as the kernel answers a full SHUTDOWN when nothing is unread. */
Test(vhost, crossing_full_shutdowns_end_with_rst, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h;

    g_post_rx(e, 2, RXBUF);
    s->in_eof = 1;
    s->peer_gone = 1;
    vconn_host_event(e->d, s->cookie, VCONN_EV_IN | VCONN_EV_ERR);
    vconn_run(e->d);
    g_expect(e, VPKT_OP_SHUTDOWN);
    h = hdr(VPKT_OP_SHUTDOWN, 1000, 1234, 0);
    h.flags = VPKT_SHUTDOWN_RCV | VPKT_SHUTDOWN_SEND;
    g_send(e, &h, NULL, 0);
    g_expect(e, VPKT_OP_RST);
    g_post_rx(e, 1, RXBUF);
    e->fh.now += VCONN_TIMEOUT_MS;
    vconn_run(e->d);
    g_expect_none(e);
}

/* shutdown(SHUT_WR) by the host program is a half-close (SHUTDOWN SEND, the
 * guest may still send); its close afterwards makes it full. */
Test(vhost, host_half_close_then_close, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h;

    g_post_rx(e, 3, RXBUF);
    s->in_eof = 1;
    vconn_host_event(e->d, s->cookie, VCONN_EV_IN);
    vconn_run(e->d);
    h = g_expect(e, VPKT_OP_SHUTDOWN);
    cr_assert_eq(h.flags, VPKT_SHUTDOWN_SEND);
    cr_assert_not(s->closed);
    h = hdr(VPKT_OP_RW, 1000, 1234, 2);
    g_send(e, &h, "hi", 2);
    cr_assert_eq(s->out_len, 2);
    s->peer_gone = 1;
    vconn_host_event(e->d, s->cookie, VCONN_EV_ERR);
    vconn_run(e->d);
    h = g_expect(e, VPKT_OP_SHUTDOWN);
    cr_assert_eq(h.flags, VPKT_SHUTDOWN_RCV | VPKT_SHUTDOWN_SEND);
    cr_assert(s->closed);
}

/* shutdown(SHUT_RD) in the guest: SHUTDOWN(RCV) alone. The host program's
 * sends must now fail with EPIPE (the kernel's peer_shutdown check), so the
 * host socket is shut for reading; the connection stays up the other way,
 * and the device stops reading the host (nobody would read it). */
Test(vhost, guest_shutdown_rcv_shuts_the_host_socket_for_reading, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h = hdr(VPKT_OP_SHUTDOWN, 1000, 1234, 0);

    h.flags = VPKT_SHUTDOWN_RCV;
    g_post_rx(e, 2, RXBUF);
    g_send(e, &h, NULL, 0);
    cr_assert(s->shut_rd, "the guest's SHUT_RD did not reach the host socket");
    cr_assert_not(s->shut_wr);
    cr_assert_not(s->closed);
    g_expect_none(e);
    host_data(e, s, "unread", 6);
    g_expect_none(e);
    cr_assert_eq(s->in_off, 0, "the device read the host after the guest shut its reading side");
    h = hdr(VPKT_OP_RW, 1000, 1234, 2);
    g_send(e, &h, "hi", 2);
    cr_assert_eq(s->out_len, 2);
    cr_assert_eq(memcmp(s->out, "hi", 2), 0);
    /* A second SHUTDOWN(RCV) is accepted and passed on once only. */
    s->shut_rd = 0;
    h = hdr(VPKT_OP_SHUTDOWN, 1000, 1234, 0);
    h.flags = VPKT_SHUTDOWN_RCV;
    g_send(e, &h, NULL, 0);
    cr_assert_not(s->shut_rd);
    g_expect_none(e);
}

/* shutdown(SHUT_RD) by the host program: the guest hears SHUTDOWN(RCV)
 * alone at the socket's next wake-up, so its sends fail with EPIPE; bytes it
 * sent before it heard are dropped without an RST; the host's data still
 * reaches it; its close then ends the connection with our RST. */
Test(vhost, host_shut_rd_is_a_shutdown_rcv_for_the_guest, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h;
    uint8_t buf[16];

    g_post_rx(e, 4, RXBUF);
    vconn_host_event(e->d, s->cookie, VCONN_EV_OUT);
    vconn_run(e->d);
    g_expect_none(e);
    cr_assert_gt(s->probes, 0);
    s->peer_rd_shut = 1;
    vconn_host_event(e->d, s->cookie, VCONN_EV_OUT);
    vconn_run(e->d);
    h = g_expect(e, VPKT_OP_SHUTDOWN);
    cr_assert_eq(h.flags, VPKT_SHUTDOWN_RCV);
    cr_assert_not(s->closed);
    h = hdr(VPKT_OP_RW, 1000, 1234, 3);
    g_send(e, &h, "abc", 3);
    g_expect_none(e);
    cr_assert_eq(s->out_len, 0);
    host_data(e, s, "still", 5);
    cr_assert(g_recv(e, &h, buf, sizeof(buf)));
    cr_assert_eq(h.op, VPKT_OP_RW);
    cr_assert_eq(memcmp(buf, "still", 5), 0);
    h = hdr(VPKT_OP_SHUTDOWN, 1000, 1234, 0);
    h.flags = VPKT_SHUTDOWN_RCV | VPKT_SHUTDOWN_SEND;
    g_send(e, &h, NULL, 0);
    g_expect(e, VPKT_OP_RST);
    cr_assert(s->closed);
}

/* The accepting host program shuts its reading side at once: the guest
 * hears RESPONSE, then SHUTDOWN(RCV). */
Test(vhost, host_shut_rd_at_accept_follows_the_response, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct vpkt_hdr h = hdr(VPKT_OP_REQUEST, 1000, 1234, 0);
    struct fsock *s = &e->fh.s[0];

    g_post_rx(e, 2, RXBUF);
    g_send(e, &h, NULL, 0);
    cr_assert(s->used && s->cookie != NULL);
    s->peer_rd_shut = 1;
    vconn_host_event(e->d, s->cookie, VCONN_EV_OUT);
    vconn_run(e->d);
    g_expect(e, VPKT_OP_RESPONSE);
    h = g_expect(e, VPKT_OP_SHUTDOWN);
    cr_assert_eq(h.flags, VPKT_SHUTDOWN_RCV);
}

/* SHUT_RD, then a send, read before their wake-up is handled: the guest
 * hears SHUTDOWN(RCV) before the bytes, in the order they were made. */
Test(vhost, host_shut_rd_goes_before_bytes_sent_after_it, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h;
    uint8_t buf[16];

    s->peer_rd_shut = 1;
    memcpy(s->in, "late", 4);
    s->in_len = 4;
    g_post_rx(e, 2, RXBUF);
    vconn_run(e->d);
    h = g_expect(e, VPKT_OP_SHUTDOWN);
    cr_assert_eq(h.flags, VPKT_SHUTDOWN_RCV);
    cr_assert(g_recv(e, &h, buf, sizeof(buf)));
    cr_assert_eq(h.op, VPKT_OP_RW);
    cr_assert_eq(memcmp(buf, "late", 4), 0);
}

/* Without a wake-up in between (the guest's bytes cross the host's SHUT_RD),
 * the failing send tells: SHUTDOWN(RCV), not a reset. */
Test(vhost, host_shut_rd_seen_by_a_failing_send, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 1000, 1234, 3);

    g_post_rx(e, 2, RXBUF);
    s->peer_rd_shut = 1;
    g_send(e, &h, "abc", 3);
    h = g_expect(e, VPKT_OP_SHUTDOWN);
    cr_assert_eq(h.flags, VPKT_SHUTDOWN_RCV);
    cr_assert_not(s->closed);
    g_expect_none(e);
}

/* The guest closes: its full SHUTDOWN is flushed to the host, whose socket
 * is then closed (the host program's sends fail with EPIPE), and RST ends it. */
Test(vhost, guest_close_closes_the_host_socket, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h = hdr(VPKT_OP_SHUTDOWN, 1000, 1234, 0);

    h.flags = VPKT_SHUTDOWN_RCV | VPKT_SHUTDOWN_SEND;
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    cr_assert(s->shut_wr);
    cr_assert(s->closed);
    g_expect(e, VPKT_OP_RST);
}

/* ---- descriptor layout counters ---------------------------------------------------------------- */

Test(vhost, layout_counters, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234); /* REQUEST: 1 descriptor; RESPONSE: one rx buffer */
    static uint8_t data[8192];
    uint32_t split[] = { VPKT_HDR_LEN, 4096 }, odd[] = { 20, 4000 }, tx3[] = { VPKT_HDR_LEN, 100 };
    struct vconn_stats st;
    struct vpkt_hdr h;
    uint8_t got[8192];

    g_post_rx_split(e, split, 2);
    g_post_rx_split(e, odd, 2);
    host_data(e, s, data, 200);
    cr_assert(g_recv(e, &h, got, sizeof(got)));
    host_data(e, s, data, 200);
    cr_assert(g_recv(e, &h, got, sizeof(got)));
    h = hdr(VPKT_OP_RW, 1000, 1234, 1000);
    g_send_split(e, &h, data, 1000, tx3, 2); /* header, 100, the rest: 3 */
    h = hdr(VPKT_OP_RW, 1000, 1234, 1000);
    g_send_split(e, &h, data, 1000, split, 1); /* header, payload: 2 */
    vconn_get_stats(e->d, &st);
    cr_assert_eq(st.rx_layout_single, 1);
    cr_assert_eq(st.rx_layout_split, 1);
    cr_assert_eq(st.rx_layout_other, 1);
    cr_assert_eq(st.tx_descs[0], 1);
    cr_assert_eq(st.tx_descs[1], 1);
    cr_assert_eq(st.tx_descs[2], 1);
    cr_assert_eq(st.tx_rw_descs[0], 0);
    cr_assert_eq(st.tx_rw_descs[1], 1);
    cr_assert_eq(st.tx_rw_descs[2], 1);
}

Test(vhost, request_reusing_a_dead_tuple_drops_the_old_rst, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 1000, 1234, 3);

    s->send_err = -EPIPE;
    s->peer_gone = 1;
    g_send(e, &h, "abc", 3); /* RST owed, no rx buffer yet */
    cr_assert(s->closed);
    s = g_connect(e, 1000, 1234); /* the guest reuses the port */
    g_expect_none(e);
    cr_assert_not(s->closed);
}

/* A host program's connection offered by the daemon's gateway: the guest
 * answers before the host's stream exists. */
static void offer(struct env *e, uint64_t token, uint32_t hport, uint32_t gport)
{
    cr_assert_eq(vconn_host_offer(e->d, token, hport, gport, 0, VPKT_TYPE_STREAM), 0);
    g_post_rx(e, 2, RXBUF);
    vconn_run(e->d);
}

static struct fsock *host_stream(struct env *e, unsigned i)
{
    struct fsock *s = &e->fh.s[i];

    memset(s, 0, sizeof(*s));
    s->used = 1;
    s->out_cap = sizeof(s->out);
    s->type = VPKT_TYPE_STREAM;
    return s;
}

Test(vhost, offer_accepted_then_stream_attached, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s;
    struct vpkt_hdr h;
    uint8_t buf[64];

    offer(e, 42, 0x80000001u, 5000);
    h = g_expect(e, VPKT_OP_REQUEST);
    cr_assert_eq(h.src_port, 0x80000001u);
    cr_assert_eq(h.dst_port, 5000);
    cr_assert_eq(h.dst_cid, GUEST_CID);
    cr_assert_eq(e->fh.nanswers, 0, "no answer before the guest's");
    h = hdr(VPKT_OP_RESPONSE, 5000, 0x80000001u, 0);
    g_send(e, &h, NULL, 0);
    cr_assert_eq(e->fh.nanswers, 1);
    cr_assert_eq(e->fh.answers[0].token, 42);
    cr_assert_eq(e->fh.answers[0].answer, VCONN_ANSWER_ACCEPT);
    /* The guest talks first; its bytes wait for the host's stream. */
    h = hdr(VPKT_OP_RW, 5000, 0x80000001u, 5);
    g_send(e, &h, "hello", 5);
    s = host_stream(e, 0);
    memcpy(s->in, "early", 5);
    s->in_len = 5;
    cr_assert_eq(vconn_host_attach(e->d, FD_BASE, 0x80000001u, 5000, VPKT_TYPE_STREAM), 0);
    vconn_run(e->d);
    cr_assert_eq(s->out_len, 5);
    cr_assert_eq(memcmp(s->out, "hello", 5), 0);
    g_post_rx(e, 1, RXBUF);
    vconn_run(e->d);
    cr_assert(g_recv(e, &h, buf, sizeof(buf)));
    cr_assert_eq(h.op, VPKT_OP_RW);
    cr_assert_eq(h.len, 5);
    cr_assert_eq(memcmp(buf, "early", 5), 0);
    cr_assert_eq(e->fh.nanswers, 1, "one answer per offer");
}

/* The guest's SHUT_RD comes before the host's stream of an accepted offer:
 * it is passed on when the stream attaches. */
Test(vhost, guest_shutdown_rcv_waits_for_the_offered_stream, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct vpkt_hdr h;
    struct fsock *s;

    offer(e, 7, 0x80000001u, 5000);
    g_expect(e, VPKT_OP_REQUEST);
    h = hdr(VPKT_OP_RESPONSE, 5000, 0x80000001u, 0);
    g_send(e, &h, NULL, 0);
    h = hdr(VPKT_OP_SHUTDOWN, 5000, 0x80000001u, 0);
    h.flags = VPKT_SHUTDOWN_RCV;
    g_send(e, &h, NULL, 0);
    s = host_stream(e, 0);
    cr_assert_eq(vconn_host_attach(e->d, FD_BASE, 0x80000001u, 5000, VPKT_TYPE_STREAM), 0);
    cr_assert(s->shut_rd, "the guest's SHUT_RD did not reach the attached stream");
    cr_assert_not(s->closed);
}

Test(vhost, offer_refused_by_guest_rst, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct vpkt_hdr h;

    offer(e, 7, 9, 5000);
    g_expect(e, VPKT_OP_REQUEST);
    h = hdr(VPKT_OP_RST, 5000, 9, 0);
    g_send(e, &h, NULL, 0);
    cr_assert_eq(e->fh.nanswers, 1);
    cr_assert_eq(e->fh.answers[0].answer, VCONN_ANSWER_REFUSE);
    host_stream(e, 0);
    cr_assert_eq(vconn_host_attach(e->d, FD_BASE, 9, 5000, VPKT_TYPE_STREAM), -ENOENT);
    g_expect_none(e); /* an RST is never answered */
}

Test(vhost, offer_unanswered_is_silence_and_cancelled, .timeout = 10)
{
    struct env *e = env_new(64, 65536);

    offer(e, 8, 9, 5000);
    g_expect(e, VPKT_OP_REQUEST);
    e->fh.now += VCONN_TIMEOUT_MS;
    vconn_run(e->d);
    cr_assert_eq(e->fh.nanswers, 1);
    cr_assert_eq(e->fh.answers[0].answer, VCONN_ANSWER_SILENT);
    /* A late RESPONSE must not open a connection nobody waits for. */
    g_expect(e, VPKT_OP_RST);
}

Test(vhost, offer_stream_that_never_comes_resets_the_guest, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct vpkt_hdr h;

    offer(e, 9, 9, 5000);
    g_expect(e, VPKT_OP_REQUEST);
    h = hdr(VPKT_OP_RESPONSE, 5000, 9, 0);
    g_send(e, &h, NULL, 0);
    e->fh.now += VCONN_TIMEOUT_MS;
    vconn_run(e->d);
    g_expect(e, VPKT_OP_RST);
    cr_assert_eq(e->fh.nanswers, 1);
    cr_assert_eq(e->fh.answers[0].answer, VCONN_ANSWER_ACCEPT);
}

Test(vhost, offer_clash_and_device_down, .timeout = 10)
{
    struct env *e = env_new(64, 65536);

    offer(e, 1, 9, 5000);
    cr_assert_eq(vconn_host_offer(e->d, 2, 9, 5000, 0, VPKT_TYPE_STREAM), -EADDRINUSE);
    cr_assert_eq(vconn_host_offer(e->d, 3, 10, 5000, 0, VPKT_TYPE_STREAM), 0, "another host port is another connection");
    cr_assert_eq(vconn_host_attach(e->d, FD_BASE, 9, 5000, VPKT_TYPE_STREAM), -ENOENT, "not accepted yet");
    e->rx.vq.started = 0;
    cr_assert_eq(vconn_host_offer(e->d, 4, 11, 5000, 0, VPKT_TYPE_STREAM), -ENETUNREACH);
}

Test(vhost, offer_waits_no_longer_than_the_host_program, .timeout = 10)
{
    struct env *e = env_new(64, 65536);

    cr_assert_eq(vconn_host_offer(e->d, 6, 9, 5000, 300, VPKT_TYPE_STREAM), 0);
    g_post_rx(e, 2, RXBUF);
    vconn_run(e->d);
    g_expect(e, VPKT_OP_REQUEST);
    e->fh.now += 299;
    vconn_run(e->d);
    cr_assert_eq(e->fh.nanswers, 0, "answered before the host program's timeout");
    e->fh.now += 1;
    vconn_run(e->d);
    cr_assert_eq(e->fh.nanswers, 1);
    cr_assert_eq(e->fh.answers[0].answer, VCONN_ANSWER_SILENT);
    g_expect(e, VPKT_OP_RST); /* the guest forgets the request: a retry may reuse the tuple */
    cr_assert_eq(vconn_host_offer(e->d, 7, 9, 5000, 300, VPKT_TYPE_STREAM), 0, "the tuple is free again");
}

Test(vhost, reset_answers_pending_offers, .timeout = 10)
{
    struct env *e = env_new(64, 65536);

    offer(e, 5, 9, 5000);
    vconn_reset(e->d);
    cr_assert_eq(e->fh.nanswers, 1);
    cr_assert_eq(e->fh.answers[0].token, 5);
    cr_assert_eq(e->fh.answers[0].answer, VCONN_ANSWER_SILENT);
}

Test(vhost, reset_closes_everything, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *a = g_connect(e, 1000, 1234), *b = g_connect(e, 1001, 1234);
    struct vconn_stats st;

    vconn_reset(e->d);
    cr_assert(a->closed);
    cr_assert(b->closed);
    /* Events collected in the same batch for connections that are gone are
     * ignored (they are freed only at the end of vconn_run). */
    vconn_host_event(e->d, a->cookie, VCONN_EV_IN | VCONN_EV_OUT | VCONN_EV_ERR);
    vconn_run(e->d);
    vconn_get_stats(e->d, &st);
    cr_assert_eq(st.conns, 0);
}

/* ---- credit ----------------------------------------------------------------------------------- */

Test(vhost, sending_never_exceeds_peer_credit, .timeout = 10)
{
    struct env *e = env_new(256, 65536);
    struct vpkt_hdr h = hdr(VPKT_OP_REQUEST, 1000, 1234, 0);
    static uint8_t data[20000], got[20000];
    uint32_t total = 0, fwd = 0;
    struct fsock *s;
    int requests = 0;

    fill(data, sizeof(data), 4);
    h.buf_alloc = 3000;
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    s = &e->fh.s[0];
    vconn_host_event(e->d, s->cookie, VCONN_EV_OUT);
    vconn_run(e->d);
    g_expect(e, VPKT_OP_RESPONSE);
    g_post_rx(e, 50, RXBUF);
    host_data(e, s, data, sizeof(data));
    while (total < sizeof(data)) {
        struct vpkt_hdr r;
        int progressed = 0;

        while (g_recv(e, &r, got + total, sizeof(got) - total)) {
            if (r.op == VPKT_OP_CREDIT_REQUEST) {
                requests++;
                continue;
            }
            REQUIRE_OK(r.op == VPKT_OP_RW);
            total += r.len;
            /* Never more in flight than the guest allowed. */
            REQUIRE(total - fwd <= 3000, "%u bytes in flight with 3000 of credit", total - fwd);
            progressed = 1;
        }
        REQUIRE(progressed || total == fwd, "stalled with credit left");
        /* The guest reads everything and tells the device. */
        fwd = total;
        h = hdr(VPKT_OP_CREDIT_UPDATE, 1000, 1234, 0);
        h.buf_alloc = 3000;
        h.fwd_cnt = fwd;
        g_post_rx(e, 4, RXBUF);
        g_send(e, &h, NULL, 0);
    }
    cr_assert_eq(total, sizeof(data));
    cr_assert_eq(memcmp(got, data, sizeof(data)), 0);
    cr_assert_geq(requests, 1, "a shut window should produce a CREDIT_REQUEST");
}

Test(vhost, shrinking_peer_buffer_stops_sending, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h = hdr(VPKT_OP_CREDIT_UPDATE, 1000, 1234, 0);
    uint8_t data[100] = { 1 };

    g_post_rx(e, 1, RXBUF);
    host_data(e, s, data, 50);
    g_expect(e, VPKT_OP_RW); /* 50 in flight */
    h.buf_alloc = 40; /* now less than what is in flight */
    g_post_rx(e, 2, RXBUF);
    g_send(e, &h, NULL, 0);
    host_data(e, s, data, 50);
    h = g_expect(e, VPKT_OP_CREDIT_REQUEST);
    g_expect_none(e);
}

Test(vhost, credit_update_after_consumption, .timeout = 10)
{
    struct env *e = env_new(64, 16384);
    struct fsock *s = g_connect(e, 1000, 1234);
    static uint8_t data[16384];
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 1000, 1234, 4096);
    int i;

    fill(data, sizeof(data), 8);
    s->out_cap = 0; /* the host program reads nothing yet */
    for (i = 0; i < 4; i++)
        g_send(e, &h, data + i * 4096, 4096);
    g_post_rx(e, 4, RXBUF);
    vconn_run(e->d);
    g_expect_none(e); /* nothing consumed: nothing to tell */
    /* A fifth packet would exceed the window: the guest may not send it. */
    s->out_cap = 6000;
    vconn_host_event(e->d, s->cookie, VCONN_EV_OUT);
    vconn_run(e->d);
    h = g_expect(e, VPKT_OP_CREDIT_UPDATE);
    cr_assert_eq(h.fwd_cnt, 6000);
    cr_assert_eq(h.buf_alloc, 16384);
    s->out_cap = sizeof(s->out);
    vconn_host_event(e->d, s->cookie, VCONN_EV_OUT);
    vconn_run(e->d);
    h = g_expect(e, VPKT_OP_CREDIT_UPDATE);
    cr_assert_eq(h.fwd_cnt, 16384);
    cr_assert_eq(s->out_len, 16384);
    cr_assert_eq(memcmp(s->out, data, sizeof(data)), 0);
}

Test(vhost, small_consumption_is_not_reported_each_time, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 1000, 1234, 10);
    struct vconn_stats st;
    int i;

    g_post_rx(e, 8, RXBUF);
    for (i = 0; i < 100; i++)
        g_send(e, &h, "0123456789", 10);
    cr_assert_eq(s->out_len, 1000);
    vconn_get_stats(e->d, &st);
    cr_assert_eq(st.credit_updates_sent, 0);
}

Test(vhost, credit_request_is_answered, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 1000, 1234, 10);

    g_send(e, &h, "0123456789", 10);
    cr_assert_eq(s->out_len, 10);
    h = hdr(VPKT_OP_CREDIT_REQUEST, 1000, 1234, 0);
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    h = g_expect(e, VPKT_OP_CREDIT_UPDATE);
    cr_assert_eq(h.fwd_cnt, 10);
    cr_assert_eq(h.buf_alloc, 65536);
}

Test(vhost, guest_exceeding_credit_is_reset, .timeout = 10)
{
    struct env *e = env_new(64, 8192);
    struct fsock *s = g_connect(e, 1000, 1234);
    static uint8_t data[8192];
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 1000, 1234, 8192);
    struct vconn_stats st;

    s->out_cap = 0;
    g_send(e, &h, data, 8192);
    h.len = 1;
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, data, 1);
    g_expect(e, VPKT_OP_RST);
    cr_assert(s->closed);
    vconn_get_stats(e->d, &st);
    cr_assert_eq(st.credit_violations, 1);
}

Test(vhost, every_packet_carries_current_credit, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct fsock *s = g_connect(e, 1000, 1234);
    struct vpkt_hdr h = hdr(VPKT_OP_RW, 1000, 1234, 5);

    g_send(e, &h, "hello", 5);
    g_post_rx(e, 1, RXBUF);
    host_data(e, s, "x", 1);
    h = g_expect(e, VPKT_OP_RW);
    cr_assert_eq(h.fwd_cnt, 5);
    cr_assert_eq(h.buf_alloc, 65536);
}

/* ---- seqpacket (reference 1.9) -------------------------------------------------------------- */

static struct env *env_seq(uint32_t buf_alloc)
{
    struct env *e = env_new(64, buf_alloc);

    vconn_set_features(e->d, 1ull << VPKT_F_SEQPACKET);
    return e;
}

static struct vpkt_hdr seq_hdr(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t len, uint32_t flags)
{
    struct vpkt_hdr h = hdr(op, src_port, dst_port, len);

    h.type = VPKT_TYPE_SEQPACKET;
    h.flags = flags;
    return h;
}

/* The guest's seqpacket connect, its buffer peer_buf bytes. */
static struct fsock *g_connect_seq(struct env *e, uint32_t gport, uint32_t hport, uint32_t peer_buf)
{
    struct vpkt_hdr h = seq_hdr(VPKT_OP_REQUEST, gport, hport, 0, 0);
    struct fsock *s = NULL;
    int i;

    h.buf_alloc = peer_buf;
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    for (i = 0; i < FH_MAX && s == NULL; i++)
        if (e->fh.s[i].used && !e->fh.s[i].closed && e->fh.s[i].guest_port == gport && e->fh.s[i].port == hport)
            s = &e->fh.s[i];
    REQUIRE(s != NULL, "no host connect for %u -> %u", gport, hport);
    REQUIRE(s->type == VPKT_TYPE_SEQPACKET, "the host socket is of type %u", s->type);
    vconn_host_event(e->d, s->cookie, VCONN_EV_OUT);
    vconn_run(e->d);
    h = g_expect(e, VPKT_OP_RESPONSE);
    REQUIRE(h.type == VPKT_TYPE_SEQPACKET, "RESPONSE of type %u", h.type);
    return s;
}

/* The host program sends one message (with MSG_EOR when eor). */
static void host_msg_eor(struct env *e, struct fsock *s, const void *data, uint32_t len, int eor)
{
    REQUIRE_OK(s->in_count < 64);
    s->in_eor[(s->in_first + s->in_count) % 64] = eor;
    s->in_msg[(s->in_first + s->in_count++) % 64] = len;
    host_data(e, s, data, len);
}

static void host_msg(struct env *e, struct fsock *s, const void *data, uint32_t len)
{
    host_msg_eor(e, s, data, len, 0);
}

static uint32_t pkt_flags[64]; /* of each packet seq_received() took */
static struct vpkt_hdr seq_other; /* the packet that ended it, if not RW (op 0: none) */

/* The RW packets the guest got, up to the first other packet (kept in
 * seq_other): their payload bytes; flags of the last. */
static uint32_t seq_received(struct env *e, uint8_t *out, uint32_t cap, uint32_t *flags_of_last, unsigned *npkts)
{
    static uint8_t got[70000];
    struct vpkt_hdr h;
    uint32_t n = 0;

    *npkts = 0;
    memset(&seq_other, 0, sizeof(seq_other));
    while (g_recv(e, &h, got, sizeof(got))) {
        if (h.op != VPKT_OP_RW) {
            seq_other = h;
            break;
        }
        REQUIRE(h.type == VPKT_TYPE_SEQPACKET, "RW of type %u", h.type);
        REQUIRE_OK(n + h.len <= cap && *npkts < 64);
        memcpy(out + n, got, h.len);
        n += h.len;
        *flags_of_last = h.flags;
        pkt_flags[(*npkts)++] = h.flags;
    }
    return n;
}

Test(vhost, seq_not_negotiated_is_refused_with_rst, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct vpkt_hdr h = seq_hdr(VPKT_OP_REQUEST, 1000, 1234, 0, 0);
    struct vconn_stats st;

    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    h = g_expect(e, VPKT_OP_RST);
    cr_assert_eq(h.type, VPKT_TYPE_SEQPACKET, "the RST answers the packet's type");
    cr_assert_eq(h.dst_port, 1000);
    cr_assert_not(e->fh.s[0].used, "no host socket for a type the guest did not negotiate");
    vconn_get_stats(e->d, &st);
    cr_assert_eq(st.bad_pkts, 1);
    /* Negotiated later (a new SET_FEATURES), the same request connects. */
    vconn_set_features(e->d, 1ull << VPKT_F_SEQPACKET);
    g_connect_seq(e, 1000, 1234, 65536);
    vconn_set_features(e->d, 0);
    h = seq_hdr(VPKT_OP_REQUEST, 1001, 1234, 0, 0);
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    g_expect(e, VPKT_OP_RST);
}

Test(vhost, seq_guest_message_is_gathered_across_packets_and_descriptors, .timeout = 10)
{
    struct env *e = env_seq(65536);
    struct fsock *s = g_connect_seq(e, 1000, 1234, 65536);
    static uint8_t data[3500];
    uint32_t splits[] = { 20, 30, 700, 1 };
    struct vpkt_hdr h;

    fill(data, sizeof(data), 11);
    h = seq_hdr(VPKT_OP_RW, 1000, 1234, 1000, 0);
    g_send_split(e, &h, data, 1000, splits, 4);
    h = seq_hdr(VPKT_OP_RW, 1000, 1234, 2000, 0);
    g_send_split(e, &h, data + 1000, 2000, splits + 2, 2);
    cr_assert_eq(s->out_len, 0, "nothing reaches the host before the message's end");
    cr_assert_eq(s->out_count, 0);
    h = seq_hdr(VPKT_OP_RW, 1000, 1234, 500, VPKT_SEQ_EOM);
    g_send(e, &h, data + 3000, 500);
    cr_assert_eq(s->out_count, 1, "one send for the whole message");
    cr_assert_eq(s->out_msg[0], 3500);
    cr_assert_eq(memcmp(s->out, data, 3500), 0);
    /* Two single-packet messages, the second with EOR: two more sends. */
    h = seq_hdr(VPKT_OP_RW, 1000, 1234, 7, VPKT_SEQ_EOM);
    g_send(e, &h, "message", 7);
    h = seq_hdr(VPKT_OP_RW, 1000, 1234, 1, VPKT_SEQ_EOM | VPKT_SEQ_EOR);
    g_send(e, &h, "!", 1);
    cr_assert_eq(s->out_count, 3);
    cr_assert_eq(s->out_msg[1], 7);
    cr_assert_eq(s->out_msg[2], 1);
    cr_assert_eq(memcmp(s->out + 3500, "message!", 8), 0);
    cr_assert_eq(s->out_eor[0], 0);
    cr_assert_eq(s->out_eor[1], 0);
    cr_assert_eq(s->out_eor[2], 1, "the guest's EOR reaches the host program as MSG_EOR");
    /* Credit counts message bytes, as for streams. */
    h = seq_hdr(VPKT_OP_CREDIT_REQUEST, 1000, 1234, 0, 0);
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, NULL, 0);
    h = g_expect(e, VPKT_OP_CREDIT_UPDATE);
    cr_assert_eq(h.type, VPKT_TYPE_SEQPACKET);
    cr_assert_eq(h.fwd_cnt, 3508);
}

Test(vhost, seq_messages_wait_whole_while_the_host_is_full, .timeout = 10)
{
    struct env *e = env_seq(65536);
    struct fsock *s = g_connect_seq(e, 1000, 1234, 65536);
    struct vpkt_hdr h;

    s->out_cap = 5; /* room for the first message only */
    h = seq_hdr(VPKT_OP_RW, 1000, 1234, 5, VPKT_SEQ_EOM);
    g_send(e, &h, "first", 5);
    h = seq_hdr(VPKT_OP_RW, 1000, 1234, 6, VPKT_SEQ_EOM);
    g_send(e, &h, "second", 6);
    h = seq_hdr(VPKT_OP_RW, 1000, 1234, 5, VPKT_SEQ_EOM);
    g_send(e, &h, "third", 5);
    cr_assert_eq(s->out_count, 1);
    cr_assert_eq(s->out_len, 5);
    s->out_cap = 5 + 6 + 4; /* "second" fits, "third" does not: never a part of it */
    vconn_host_event(e->d, s->cookie, VCONN_EV_OUT);
    vconn_run(e->d);
    cr_assert_eq(s->out_count, 2);
    cr_assert_eq(s->out_len, 11);
    s->out_cap = sizeof(s->out);
    vconn_host_event(e->d, s->cookie, VCONN_EV_OUT);
    vconn_run(e->d);
    cr_assert_eq(s->out_count, 3);
    cr_assert_eq(s->out_msg[2], 5);
    cr_assert_eq(memcmp(s->out, "firstsecondthird", 16), 0);
}

Test(vhost, seq_guest_message_larger_than_our_buffer_is_reset, .timeout = 10)
{
    struct env *e = env_seq(8192);
    struct fsock *s = g_connect_seq(e, 1000, 1234, 65536);
    static uint8_t data[4096];
    struct vpkt_hdr h = seq_hdr(VPKT_OP_RW, 1000, 1234, 4096, 0);
    struct vconn_stats st;

    g_send(e, &h, data, 4096);
    g_send(e, &h, data, 4096); /* 8192: still within the buffer */
    cr_assert_not(s->closed);
    h.len = 1;
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, data, 1);
    h = g_expect(e, VPKT_OP_RST);
    cr_assert_eq(h.type, VPKT_TYPE_SEQPACKET);
    cr_assert(s->closed);
    cr_assert_eq(s->out_count, 0, "no part of it reached the host");
    vconn_get_stats(e->d, &st);
    cr_assert_eq(st.msg_violations, 1);
}

Test(vhost, seq_unknown_rw_flags_are_reset, .timeout = 10)
{
    struct env *e = env_seq(65536);
    struct fsock *s = g_connect_seq(e, 1000, 1234, 65536);
    struct vpkt_hdr h = seq_hdr(VPKT_OP_RW, 1000, 1234, 3, VPKT_SEQ_EOM | 4u);

    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, "abc", 3);
    g_expect(e, VPKT_OP_RST);
    cr_assert(s->closed);
    cr_assert_eq(s->out_count, 0);
}

Test(vhost, seq_type_mismatch_resets_the_connection, .timeout = 10)
{
    struct env *e = env_seq(65536);
    struct fsock *st = g_connect(e, 1000, 1234), *sq = g_connect_seq(e, 1001, 1234, 65536);
    struct vpkt_hdr h = seq_hdr(VPKT_OP_RW, 1000, 1234, 3, VPKT_SEQ_EOM);

    g_post_rx(e, 2, RXBUF);
    g_send(e, &h, "abc", 3); /* seqpacket data on the stream connection */
    h = g_expect(e, VPKT_OP_RST);
    cr_assert_eq(h.dst_port, 1000);
    cr_assert(st->closed);
    cr_assert_eq(st->out_len, 0);
    h = hdr(VPKT_OP_RW, 1001, 1234, 3); /* stream data on the seqpacket one */
    g_send(e, &h, "abc", 3);
    h = g_expect(e, VPKT_OP_RST);
    cr_assert_eq(h.dst_port, 1001);
    cr_assert(sq->closed);
    cr_assert_eq(sq->out_len, 0);
}

Test(vhost, seq_host_message_is_split_to_the_buffers_with_eom_on_the_last, .timeout = 10)
{
    struct env *e = env_seq(65536);
    struct fsock *s = g_connect_seq(e, 1000, 1234, 65536);
    static uint8_t data[10000], got[10000];
    uint32_t flags = 0, n;
    unsigned npkts;

    fill(data, sizeof(data), 5);
    g_post_rx(e, 4, RXBUF);
    host_msg(e, s, data, 10000);
    n = seq_received(e, got, sizeof(got), &flags, &npkts);
    cr_assert_eq(n, 10000);
    cr_assert_eq(npkts, 3, "4096 + 4096 + 1808");
    cr_assert_eq(pkt_flags[0], 0);
    cr_assert_eq(pkt_flags[1], 0);
    cr_assert_eq(pkt_flags[2], VPKT_SEQ_EOM);
    cr_assert_eq(memcmp(got, data, 10000), 0);
    /* Two messages queued: each ends with its own EOM, never merged. */
    host_msg(e, s, "x", 1);
    host_msg(e, s, "yz", 2);
    g_post_rx(e, 4, RXBUF);
    vconn_run(e->d);
    n = seq_received(e, got, sizeof(got), &flags, &npkts);
    cr_assert_eq(n, 3);
    cr_assert_eq(npkts, 2);
    cr_assert_eq(pkt_flags[0], VPKT_SEQ_EOM);
    cr_assert_eq(pkt_flags[1], VPKT_SEQ_EOM);
    cr_assert_eq(memcmp(got, "xyz", 3), 0);
    {
        struct vconn_stats st;

        vconn_get_stats(e->d, &st);
        cr_assert_eq(st.rx_msgs, 3);
    }
}

Test(vhost, seq_eor_crosses_both_ways_on_the_last_packet_only, .timeout = 10)
{
    struct env *e = env_seq(65536);
    struct fsock *s = g_connect_seq(e, 1000, 1234, 65536);
    static uint8_t data[6000], got[6000];
    struct vpkt_hdr h;
    uint32_t flags = 0;
    unsigned npkts;

    /* Guest -> host: a mark on an earlier packet still counts for its message. */
    h = seq_hdr(VPKT_OP_RW, 1000, 1234, 3, VPKT_SEQ_EOR);
    g_send(e, &h, "rec", 3);
    h = seq_hdr(VPKT_OP_RW, 1000, 1234, 3, VPKT_SEQ_EOM);
    g_send(e, &h, "ord", 3);
    h = seq_hdr(VPKT_OP_RW, 1000, 1234, 5, VPKT_SEQ_EOM);
    g_send(e, &h, "plain", 5);
    cr_assert_eq(s->out_count, 2);
    cr_assert_eq(s->out_eor[0], 1);
    cr_assert_eq(s->out_eor[1], 0, "EOR belongs to one message only");
    /* Host -> guest: MSG_EOR marks the last packet, beside EOM. */
    fill(data, sizeof(data), 2);
    g_post_rx(e, 4, RXBUF);
    host_msg_eor(e, s, data, 6000, 1);
    cr_assert_eq(seq_received(e, got, sizeof(got), &flags, &npkts), 6000);
    cr_assert_eq(npkts, 2);
    cr_assert_eq(pkt_flags[0], 0);
    cr_assert_eq(pkt_flags[1], VPKT_SEQ_EOM | VPKT_SEQ_EOR);
    host_msg(e, s, "x", 1);
    cr_assert_eq(seq_received(e, got, sizeof(got), &flags, &npkts), 1);
    cr_assert_eq(flags, VPKT_SEQ_EOM);
}

Test(vhost, seq_host_message_waits_for_credit_and_is_held_whole, .timeout = 10)
{
    struct env *e = env_seq(65536);
    struct fsock *s = g_connect_seq(e, 1000, 1234, 6000);
    static uint8_t data[10000], got[10000];
    struct vpkt_hdr h;
    uint32_t flags = 0, n;
    unsigned npkts;

    fill(data, sizeof(data), 9);
    g_post_rx(e, 8, RXBUF);
    host_msg(e, s, data, 5000);
    host_msg(e, s, data + 5000, 5000);
    n = seq_received(e, got, sizeof(got), &flags, &npkts);
    /* The first message whole, then 1000 bytes of the second (the credit
     * left), without EOM, and a CREDIT_REQUEST. */
    cr_assert_eq(n, 5000 + 1000);
    cr_assert_eq(pkt_flags[npkts - 1], 0, "the second message is not finished");
    cr_assert_eq(pkt_flags[1], VPKT_SEQ_EOM, "4096 + 904 bytes, then the first message ends");
    cr_assert_eq(s->in_count, 0, "the second message left the host socket whole");
    cr_assert_eq(seq_other.op, VPKT_OP_CREDIT_REQUEST);
    cr_assert_eq(seq_other.type, VPKT_TYPE_SEQPACKET);
    h = seq_hdr(VPKT_OP_CREDIT_UPDATE, 1000, 1234, 0, 0);
    h.buf_alloc = 6000;
    h.fwd_cnt = 5000; /* the guest read the first message */
    g_send(e, &h, NULL, 0);
    n = seq_received(e, got + 6000, sizeof(got) - 6000, &flags, &npkts);
    cr_assert_eq(n, 4000);
    cr_assert_eq(flags, VPKT_SEQ_EOM);
    cr_assert_eq(memcmp(got, data, 10000), 0);
}

Test(vhost, seq_host_message_larger_than_the_guest_buffer_is_reset, .timeout = 10)
{
    struct env *e = env_seq(65536);
    struct fsock *s = g_connect_seq(e, 1000, 1234, 6000);
    static uint8_t data[6001];
    struct vpkt_hdr h;
    struct vconn_stats st;

    g_post_rx(e, 4, RXBUF);
    host_msg(e, s, data, 6001);
    h = g_expect(e, VPKT_OP_RST);
    cr_assert_eq(h.type, VPKT_TYPE_SEQPACKET);
    g_expect_none(e);
    cr_assert(s->closed);
    vconn_get_stats(e->d, &st);
    cr_assert_eq(st.msg_violations, 1);
}

Test(vhost, seq_message_the_host_refuses_as_too_large_resets, .timeout = 10)
{
    struct env *e = env_seq(65536);
    struct fsock *s = g_connect_seq(e, 1000, 1234, 65536);
    static uint8_t data[200];
    struct vpkt_hdr h = seq_hdr(VPKT_OP_RW, 1000, 1234, 100, VPKT_SEQ_EOM);

    s->msg_max = 100;
    g_send(e, &h, data, 100);
    cr_assert_eq(s->out_count, 1);
    h.len = 200;
    g_post_rx(e, 1, RXBUF);
    g_send(e, &h, data, 200);
    g_expect(e, VPKT_OP_RST);
    cr_assert(s->closed);
    cr_assert_eq(s->out_count, 1);
}

Test(vhost, seq_shutdown_drops_an_unfinished_message, .timeout = 10)
{
    struct env *e = env_seq(65536);
    struct fsock *s = g_connect_seq(e, 1000, 1234, 65536);
    struct vpkt_hdr h = seq_hdr(VPKT_OP_RW, 1000, 1234, 4, VPKT_SEQ_EOM);

    g_send(e, &h, "done", 4);
    h = seq_hdr(VPKT_OP_RW, 1000, 1234, 4, 0);
    g_send(e, &h, "half", 4);
    h = seq_hdr(VPKT_OP_SHUTDOWN, 1000, 1234, 0, VPKT_SHUTDOWN_SEND);
    g_send(e, &h, NULL, 0);
    cr_assert(s->shut_wr, "the guest's half-close reaches the host");
    cr_assert_eq(s->out_count, 1);
    cr_assert_eq(s->out_len, 4);
    cr_assert_not(s->closed);
}

Test(vhost, seq_host_eof_after_its_messages_is_a_shutdown, .timeout = 10)
{
    struct env *e = env_seq(65536);
    struct fsock *s = g_connect_seq(e, 1000, 1234, 65536);
    uint8_t got[16];
    uint32_t flags = 0;
    unsigned npkts;
    struct vpkt_hdr h;

    g_post_rx(e, 1, RXBUF);
    s->in_eof = 1;
    host_msg(e, s, "last", 4);
    cr_assert_eq(seq_received(e, got, sizeof(got), &flags, &npkts), 4);
    cr_assert_eq(flags, VPKT_SEQ_EOM);
    g_post_rx(e, 1, RXBUF);
    vconn_run(e->d);
    h = g_expect(e, VPKT_OP_SHUTDOWN);
    cr_assert_eq(h.type, VPKT_TYPE_SEQPACKET);
    cr_assert_eq(h.flags, VPKT_SHUTDOWN_SEND, "the host's half-close, after its last message");
}

Test(vhost, seq_offer_needs_the_feature_and_carries_the_type, .timeout = 10)
{
    struct env *e = env_new(64, 65536);
    struct vpkt_hdr h;
    struct fsock *s;
    uint8_t got[16];
    uint32_t flags = 0;
    unsigned npkts;

    cr_assert_eq(vconn_host_offer(e->d, 1, 0x80000001u, 5000, 0, VPKT_TYPE_SEQPACKET), -EPROTONOSUPPORT);
    cr_assert_eq(e->fh.nanswers, 0, "the caller answers a refusal it was told of");
    vconn_set_features(e->d, 1ull << VPKT_F_SEQPACKET);
    cr_assert_eq(vconn_host_offer(e->d, 2, 0x80000001u, 5000, 0, VPKT_TYPE_SEQPACKET), 0);
    g_post_rx(e, 4, RXBUF);
    vconn_run(e->d);
    h = g_expect(e, VPKT_OP_REQUEST);
    cr_assert_eq(h.type, VPKT_TYPE_SEQPACKET);
    h = seq_hdr(VPKT_OP_RESPONSE, 5000, 0x80000001u, 0, 0);
    g_send(e, &h, NULL, 0);
    cr_assert_eq(e->fh.nanswers, 1);
    cr_assert_eq(e->fh.answers[0].answer, VCONN_ANSWER_ACCEPT);
    h = seq_hdr(VPKT_OP_RW, 5000, 0x80000001u, 2, VPKT_SEQ_EOM);
    g_send(e, &h, "hi", 2); /* before the host socket is there: it waits */
    s = host_stream(e, 0);
    s->type = VPKT_TYPE_SEQPACKET;
    s->in_msg[0] = 3;
    s->in_count = 1;
    memcpy(s->in, "hey", 3);
    s->in_len = 3;
    cr_assert_eq(vconn_host_attach(e->d, FD_BASE, 0x80000001u, 5000, VPKT_TYPE_STREAM), -ENOENT,
                 "a stream socket cannot carry a seqpacket connection");
    cr_assert_eq(vconn_host_attach(e->d, FD_BASE, 0x80000001u, 5000, VPKT_TYPE_SEQPACKET), 0);
    vconn_run(e->d);
    cr_assert_eq(s->out_count, 1);
    cr_assert_eq(memcmp(s->out, "hi", 2), 0);
    cr_assert_eq(seq_received(e, got, sizeof(got), &flags, &npkts), 3);
    cr_assert_eq(flags, VPKT_SEQ_EOM);
}

/* ---- a full ring round trip through vhost-user over a memfd ------------------------------------ */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;

    cr_assert_not_null(d);
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

struct iface_log {
    int resets, kicks_added, kicks_removed;
    int features_calls;
    uint64_t features; /* the last features callback's */
};

static void t_kick_changed(void *opaque, unsigned idx, int old_fd, int new_fd)
{
    struct iface_log *l = opaque;

    (void)idx;
    if (old_fd >= 0)
        l->kicks_removed++;
    if (new_fd >= 0)
        l->kicks_added++;
}

static void t_reset(void *opaque)
{
    ((struct iface_log *)opaque)->resets++;
}

static void t_features(void *opaque, uint64_t features)
{
    ((struct iface_log *)opaque)->features_calls++;
    ((struct iface_log *)opaque)->features = features;
}

static const struct vhu_iface t_iface = { t_kick_changed, t_reset, t_features };

static void send_msg(int fd, uint32_t req, uint32_t flags, const void *payload, uint32_t size, const int *fds,
                     unsigned nfds)
{
    uint8_t buf[VHU_HDR_SIZE + VHU_MAX_PAYLOAD + 64];
    uint32_t h[3] = { req, flags, size };
    union {
        char b[CMSG_SPACE(16 * sizeof(int))];
        struct cmsghdr al;
    } ctl;
    struct iovec iov = { buf, VHU_HDR_SIZE + size };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

    cr_assert_leq(size, sizeof(buf) - VHU_HDR_SIZE);
    memcpy(buf, h, VHU_HDR_SIZE);
    if (size)
        memcpy(buf + VHU_HDR_SIZE, payload, size);
    if (nfds) {
        struct cmsghdr *cm;

        mh.msg_control = ctl.b;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
    }
    cr_assert_eq(sendmsg(fd, &mh, 0), (ssize_t)(VHU_HDR_SIZE + size));
}

/* Read a reply: its payload size, or -1 when none came within 200 ms. */
static int read_reply(int fd, uint32_t req, void *payload, size_t cap)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    uint32_t h[3];

    if (poll(&p, 1, 200) <= 0)
        return -1;
    cr_assert_eq(recv(fd, h, sizeof(h), MSG_WAITALL), (ssize_t)sizeof(h));
    cr_assert_eq(h[0], req, "reply to request %u, expected %u", h[0], req);
    cr_assert_eq(h[1], VHU_VERSION | VHU_FLAG_REPLY);
    cr_assert_leq(h[2], cap);
    if (h[2])
        cr_assert_eq(recv(fd, payload, h[2], MSG_WAITALL), (ssize_t)h[2]);
    return (int)h[2];
}

struct vhu_env {
    int sv[2];
    struct vhu_dev d;
    struct iface_log log;
};

static struct vhu_env *vhu_env_new(void)
{
    struct vhu_env *v = keep(calloc(1, sizeof(*v)));

    vlog_level = -1;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, v->sv), 0);
    vhu_init(&v->d, v->sv[1], GUEST_CID, &t_iface, &v->log);
    kept_vhu[nkept_vhu++] = &v->d;
    return v;
}

/* Send, dispatch, and return vhu_dispatch's result. */
static int exchange(struct vhu_env *v, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
                    const int *fds, unsigned nfds)
{
    send_msg(v->sv[0], req, flags, payload, size, fds, nfds);
    return vhu_dispatch(&v->d);
}

static uint64_t ack(struct vhu_env *v, uint32_t req)
{
    uint64_t r = 99;

    cr_assert_eq(read_reply(v->sv[0], req, &r, sizeof(r)), 8, "no REPLY_ACK for request %u", req);
    return r;
}

static void negotiate(struct vhu_env *v)
{
    uint64_t f, pf;

    cr_assert_eq(exchange(v, VHU_GET_FEATURES, VHU_VERSION, NULL, 0, NULL, 0), 0);
    cr_assert_eq(read_reply(v->sv[0], VHU_GET_FEATURES, &f, sizeof(f)), 8);
    /* VERSION_1, PROTOCOL_FEATURES and the device's VIRTIO_VSOCK_F_SEQPACKET. */
    cr_assert_eq(f, (1ull << 32) | (1ull << 30) | (1ull << 1));
    cr_assert_eq(exchange(v, VHU_GET_PROTOCOL_FEATURES, VHU_VERSION, NULL, 0, NULL, 0), 0);
    cr_assert_eq(read_reply(v->sv[0], VHU_GET_PROTOCOL_FEATURES, &pf, sizeof(pf)), 8);
    cr_assert(pf & (1ull << VHU_PROTOCOL_F_CONFIG));
    cr_assert(pf & (1ull << VHU_PROTOCOL_F_REPLY_ACK));
    cr_assert_eq(exchange(v, VHU_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0), 0);
    cr_assert_eq(exchange(v, VHU_SET_OWNER, VHU_VERSION | VHU_FLAG_NEED_REPLY, NULL, 0, NULL, 0), 0);
    cr_assert_eq(ack(v, VHU_SET_OWNER), 0);
    cr_assert_eq(exchange(v, VHU_SET_FEATURES, VHU_VERSION, &f, 8, NULL, 0), 0);
    cr_assert_eq(v->log.features_calls, 1);
    cr_assert_eq(v->log.features, f, "the device hears what the front-end acknowledged");
}

Test(vhost, vhost_user_full_ring_round_trip_over_memfd, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();
    size_t size = 4u << 20;
    int mfd = memfd_create("guest", MFD_CLOEXEC), kick = eventfd(0, EFD_CLOEXEC), call = eventfd(0, EFD_CLOEXEC);
    struct vhu_mem_table t = { .nregions = 1, .r = { { GPA_BASE, size, UVA_BASE, 0 } } };
    struct guest g;
    struct gq *rx = keep(calloc(1, sizeof(*rx))), *tx = keep(calloc(1, sizeof(*tx)));
    struct vconn_config cfg = { GUEST_CID, 65536, 8 };
    struct fhost *fh = keep(calloc(1, sizeof(*fh)));
    struct vconn_dev *dev;
    uint8_t *mem;
    unsigned q;
    uint64_t cnt;
    int fds_before;

    cr_assert_geq(mfd, 0);
    cr_assert_eq(ftruncate(mfd, (off_t)size), 0);
    mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    cr_assert_neq(mem, MAP_FAILED);
    guest_init(&g, mem, size);
    negotiate(v);
    cr_assert_eq(exchange(v, VHU_SET_MEM_TABLE, VHU_VERSION | VHU_FLAG_NEED_REPLY, &t, 8 + 32, &mfd, 1), 0);
    cr_assert_eq(ack(v, VHU_SET_MEM_TABLE), 0);
    cr_assert_eq(v->d.mem.n, 1);
    /* The test's own rings, then told to the back-end the way QEMU does. */
    gq_init(&g, rx, 64);
    gq_init(&g, tx, 64);
    for (q = 0; q < 2; q++) {
        struct gq *gq = q == 0 ? rx : tx;
        struct vhu_vring_state st = { q, 64 };
        struct vhu_vring_addr a = { q, 0, g_uva((uint64_t)((uint8_t *)gq->desc - mem) + GPA_BASE),
                                    g_uva((uint64_t)((uint8_t *)gq->used - mem) + GPA_BASE),
                                    g_uva((uint64_t)((uint8_t *)gq->avail - mem) + GPA_BASE), 0 };
        uint64_t kick_arg = q, call_arg = q;
        struct vhu_vring_state base = { q, 0 }, en = { q, 1 };

        cr_assert_eq(exchange(v, VHU_SET_VRING_NUM, VHU_VERSION, &st, 8, NULL, 0), 0);
        cr_assert_eq(exchange(v, VHU_SET_VRING_BASE, VHU_VERSION, &base, 8, NULL, 0), 0);
        cr_assert_eq(exchange(v, VHU_SET_VRING_ADDR, VHU_VERSION | VHU_FLAG_NEED_REPLY, &a, sizeof(a), NULL, 0),
                     0);
        cr_assert_eq(ack(v, VHU_SET_VRING_ADDR), 0);
        cr_assert_eq(exchange(v, VHU_SET_VRING_KICK, VHU_VERSION, &kick_arg, 8, &kick, 1), 0);
        cr_assert_eq(exchange(v, VHU_SET_VRING_CALL, VHU_VERSION, &call_arg, 8, &call, 1), 0);
        cr_assert_eq(exchange(v, VHU_SET_VRING_ENABLE, VHU_VERSION, &en, 8, NULL, 0), 0);
        cr_assert(vring_ready(&v->d.vq[q]), "queue %u not ready", q);
    }
    cr_assert_eq(v->log.kicks_added, 2);
    /* Drive a REQUEST through the back-end's mapping of the same memory. */
    cr_assert_eq(vconn_dev_new(&cfg, &fake_ops, fh, &dev), 0);
    kept_dev[nkept_dev++] = dev;
    vconn_attach(dev, &v->d.vq[0], &v->d.vq[1], &v->d.mem);
    {
        uint32_t rxs = RXBUF;
        struct seg s = { g_alloc(&g, rxs, 8), rxs, 1 };
        struct vpkt_hdr h = hdr(VPKT_OP_REQUEST, 1000, 1234, 0);
        struct seg ts = { g_alloc(&g, VPKT_HDR_LEN, 8), VPKT_HDR_LEN, 0 };
        uint32_t id, len;
        struct vpkt_hdr r;

        gq_add(rx, &s, 1);
        vpkt_hdr_encode(&h, g_ptr(&g, ts.gpa));
        gq_add(tx, &ts, 1);
        vconn_run(dev);
        vconn_host_event(dev, fh->s[0].cookie, VCONN_EV_OUT);
        vconn_run(dev);
        cr_assert(gq_get_used(rx, &id, &len));
        cr_assert_eq(len, VPKT_HDR_LEN);
        vpkt_hdr_decode(g_ptr(&g, s.gpa), &r);
        cr_assert_eq(r.op, VPKT_OP_RESPONSE);
        cr_assert_eq(read(call, &cnt, sizeof(cnt)), 8, "the call eventfd was not signalled");
    }
    /* Power-off: GET_VRING_BASE answers with the next avail index and stops. */
    fds_before = count_fds();
    for (q = 0; q < 2; q++) {
        struct vhu_vring_state st = { q, 0 }, r;

        cr_assert_eq(exchange(v, VHU_GET_VRING_BASE, VHU_VERSION, &st, 8, NULL, 0), 0);
        cr_assert_eq(read_reply(v->sv[0], VHU_GET_VRING_BASE, &r, sizeof(r)), 8);
        cr_assert_eq(r.index, q);
        cr_assert_eq(r.num, 1);
        cr_assert_not(vring_ready(&v->d.vq[q]));
    }
    cr_assert_eq(count_fds(), fds_before - 4, "kick and call fds of both queues should be closed");
    cr_assert_eq(v->log.kicks_removed, 2);
    cr_assert_geq(v->log.resets, 1);
    munmap(mem, size);
}

/* ---- vhost-user framing and hostile messages --------------------------------------------------- */

Test(vhost, vhu_truncated_header_is_end_of_stream, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();
    uint32_t part[1] = { VHU_GET_FEATURES };

    cr_assert_eq(send(v->sv[0], part, 4, 0), 4);
    shutdown(v->sv[0], SHUT_WR);
    cr_assert_eq(vhu_dispatch(&v->d), -ECONNRESET);
}

Test(vhost, vhu_truncated_payload_is_end_of_stream, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();
    uint32_t h[4] = { VHU_SET_FEATURES, VHU_VERSION, 8, 0 };

    cr_assert_eq(send(v->sv[0], h, sizeof(h), 0), (ssize_t)sizeof(h));
    shutdown(v->sv[0], SHUT_WR);
    cr_assert_eq(vhu_dispatch(&v->d), -ECONNRESET);
}

Test(vhost, vhu_clean_eof, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();

    shutdown(v->sv[0], SHUT_WR);
    cr_assert_eq(vhu_dispatch(&v->d), -ECONNRESET);
}

Test(vhost, vhu_oversized_message_is_a_framing_error, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();
    uint32_t h[3] = { VHU_SET_MEM_TABLE, VHU_VERSION, 0x7fffffff };
    int fds_before = count_fds(), efd = eventfd(0, 0);
    struct vhu_msg m;
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr al;
    } ctl;
    struct iovec iov = { h, sizeof(h) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &efd, sizeof(int));
    cr_assert_eq(sendmsg(v->sv[0], &mh, 0), (ssize_t)sizeof(h));
    close(efd);
    cr_assert_eq(vhu_msg_read(v->sv[1], &m), -EMSGSIZE);
    cr_assert_eq(count_fds(), fds_before, "the passed fd leaked");
}

Test(vhost, vhu_wrong_version_is_a_framing_error, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();

    cr_assert_eq(exchange(v, VHU_GET_FEATURES, 2, NULL, 0, NULL, 0), -EPROTO);
}

Test(vhost, vhu_wrong_payload_size_is_refused_not_fatal, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();
    uint64_t pf = 1ull << VHU_PROTOCOL_F_REPLY_ACK, f = 0;
    uint8_t junk[12] = { 0 };

    cr_assert_eq(exchange(v, VHU_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0), 0);
    cr_assert_eq(exchange(v, VHU_SET_FEATURES, VHU_VERSION | VHU_FLAG_NEED_REPLY, junk, 4, NULL, 0), 0);
    cr_assert_neq(ack(v, VHU_SET_FEATURES), 0);
    cr_assert_eq(exchange(v, VHU_SET_VRING_ADDR, VHU_VERSION | VHU_FLAG_NEED_REPLY, junk, 12, NULL, 0), 0);
    cr_assert_neq(ack(v, VHU_SET_VRING_ADDR), 0);
    /* A GET with a bad payload still gets a (failed, empty) reply. */
    cr_assert_eq(exchange(v, VHU_GET_CONFIG, VHU_VERSION, junk, 4, NULL, 0), 0);
    cr_assert_eq(read_reply(v->sv[0], VHU_GET_CONFIG, junk, sizeof(junk)), 0);
    /* And the stream is still in step. */
    cr_assert_eq(exchange(v, VHU_GET_FEATURES, VHU_VERSION, NULL, 0, NULL, 0), 0);
    cr_assert_eq(read_reply(v->sv[0], VHU_GET_FEATURES, &f, sizeof(f)), 8);
}

Test(vhost, vhu_unknown_request_closes_fds_and_nacks, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();
    uint64_t pf = 1ull << VHU_PROTOCOL_F_REPLY_ACK;
    int fds_before, e1 = eventfd(0, 0), e2 = eventfd(0, 0), fds[2] = { e1, e2 };

    cr_assert_eq(exchange(v, VHU_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0), 0);
    fds_before = count_fds();
    cr_assert_eq(exchange(v, 31 /* GET_INFLIGHT_FD */, VHU_VERSION | VHU_FLAG_NEED_REPLY, &pf, 8, fds, 2), 0);
    cr_assert_neq(ack(v, 31), 0);
    cr_assert_eq(exchange(v, 9999, VHU_VERSION | VHU_FLAG_NEED_REPLY, NULL, 0, fds, 2), 0);
    cr_assert_neq(ack(v, 9999), 0);
    cr_assert_eq(exchange(v, VHU_SET_LOG_FD, VHU_VERSION, NULL, 0, fds, 1), 0);
    cr_assert_eq(read_reply(v->sv[0], VHU_SET_LOG_FD, &pf, sizeof(pf)), -1, "no ack was asked for");
    cr_assert_eq(count_fds(), fds_before, "fds of refused messages leaked");
}

Test(vhost, vhu_too_many_fds_are_closed, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();
    int fds[12], i, fds_before;
    uint64_t arg = 0;

    for (i = 0; i < 12; i++)
        fds[i] = eventfd(0, 0);
    fds_before = count_fds();
    cr_assert_eq(exchange(v, VHU_SET_VRING_CALL, VHU_VERSION, &arg, 8, fds, 12), 0);
    cr_assert_eq(v->d.vq[0].call_fd, -1, "a message with too many fds must be refused");
    cr_assert_eq(count_fds(), fds_before);
}

Test(vhost, vhu_get_config_honours_bounds, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();
    struct vhu_config c = { 0, 8, 0, { 0 } }, r;

    v->d.guest_cid = 0x1122334455ull;
    cr_assert_eq(exchange(v, VHU_GET_CONFIG, VHU_VERSION, &c, VHU_CONFIG_HDR_SIZE + 8, NULL, 0), 0);
    cr_assert_eq(read_reply(v->sv[0], VHU_GET_CONFIG, &r, sizeof(r)), VHU_CONFIG_HDR_SIZE + 8);
    cr_assert_eq(r.size, 8);
    cr_assert_eq(r.payload[0], 0x55);
    cr_assert_eq(r.payload[4], 0x11);
    cr_assert_eq(r.payload[7], 0);
    c.offset = 4;
    c.size = 4;
    cr_assert_eq(exchange(v, VHU_GET_CONFIG, VHU_VERSION, &c, VHU_CONFIG_HDR_SIZE + 4, NULL, 0), 0);
    cr_assert_eq(read_reply(v->sv[0], VHU_GET_CONFIG, &r, sizeof(r)), VHU_CONFIG_HDR_SIZE + 4);
    cr_assert_eq(r.payload[0], 0x11);
    c.offset = 6;
    c.size = 4; /* past the 8-byte config space */
    cr_assert_eq(exchange(v, VHU_GET_CONFIG, VHU_VERSION, &c, VHU_CONFIG_HDR_SIZE + 4, NULL, 0), 0);
    cr_assert_eq(read_reply(v->sv[0], VHU_GET_CONFIG, &r, sizeof(r)), 0);
    c.offset = 0xfffffffc;
    c.size = 8; /* offset + size wraps */
    cr_assert_eq(exchange(v, VHU_GET_CONFIG, VHU_VERSION, &c, VHU_CONFIG_HDR_SIZE + 8, NULL, 0), 0);
    cr_assert_eq(read_reply(v->sv[0], VHU_GET_CONFIG, &r, sizeof(r)), 0);
    c.offset = 0;
    c.size = 200; /* size disagrees with the message */
    cr_assert_eq(exchange(v, VHU_GET_CONFIG, VHU_VERSION, &c, VHU_CONFIG_HDR_SIZE + 8, NULL, 0), 0);
    cr_assert_eq(read_reply(v->sv[0], VHU_GET_CONFIG, &r, sizeof(r)), 0);
}

Test(vhost, vhu_set_config_is_refused, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();
    uint64_t pf = 1ull << VHU_PROTOCOL_F_REPLY_ACK;
    struct vhu_config c = { 0, 8, 0, { 9 } };

    cr_assert_eq(exchange(v, VHU_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0), 0);
    cr_assert_eq(exchange(v, VHU_SET_CONFIG, VHU_VERSION | VHU_FLAG_NEED_REPLY, &c, VHU_CONFIG_HDR_SIZE + 8, NULL, 0),
                 0);
    cr_assert_neq(ack(v, VHU_SET_CONFIG), 0);
    cr_assert_eq(v->d.guest_cid, GUEST_CID);
}

Test(vhost, vhu_get_vring_base_is_always_answered, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();
    struct vhu_vring_state st = { 77, 0 }, r = { 1, 1 };

    cr_assert_eq(exchange(v, VHU_GET_VRING_BASE, VHU_VERSION, &st, 8, NULL, 0), 0);
    cr_assert_eq(read_reply(v->sv[0], VHU_GET_VRING_BASE, &r, sizeof(r)), 8);
    cr_assert_eq(r.index, 77);
    cr_assert_eq(r.num, 0);
    cr_assert_eq(exchange(v, VHU_GET_VRING_BASE, VHU_VERSION, NULL, 0, NULL, 0), 0);
    cr_assert_eq(read_reply(v->sv[0], VHU_GET_VRING_BASE, &r, sizeof(r)), 8);
}

Test(vhost, vhu_mem_table_is_validated, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();
    uint64_t pf = 1ull << VHU_PROTOCOL_F_REPLY_ACK;
    int mfd = memfd_create("g", MFD_CLOEXEC), fds[9], i, fds_before;
    struct vhu_mem_table t = { 0 };
    uint8_t big[8 + 9 * 32] = { 0 };

    cr_assert_eq(ftruncate(mfd, 65536), 0);
    cr_assert_eq(exchange(v, VHU_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0), 0);
    fds_before = count_fds();
    /* More than 8 regions. */
    for (i = 0; i < 9; i++)
        fds[i] = mfd;
    big[0] = 9;
    cr_assert_eq(exchange(v, VHU_SET_MEM_TABLE, VHU_VERSION | VHU_FLAG_NEED_REPLY, big, 8 + 8 * 32, fds, 8), 0);
    cr_assert_neq(ack(v, VHU_SET_MEM_TABLE), 0);
    /* Region count and fd count disagree. */
    t.nregions = 2;
    t.r[0] = (struct vhu_mem_region){ 0, 4096, 0x10000, 0 };
    t.r[1] = (struct vhu_mem_region){ 8192, 4096, 0x20000, 0 };
    cr_assert_eq(exchange(v, VHU_SET_MEM_TABLE, VHU_VERSION | VHU_FLAG_NEED_REPLY, &t, 8 + 64, fds, 1), 0);
    cr_assert_neq(ack(v, VHU_SET_MEM_TABLE), 0);
    /* Payload shorter than the regions it announces. */
    cr_assert_eq(exchange(v, VHU_SET_MEM_TABLE, VHU_VERSION | VHU_FLAG_NEED_REPLY, &t, 8 + 32, fds, 2), 0);
    cr_assert_neq(ack(v, VHU_SET_MEM_TABLE), 0);
    /* Region beyond the end of the file (would SIGBUS). */
    t.nregions = 1;
    t.r[0] = (struct vhu_mem_region){ 0, 1 << 20, 0x10000, 0 };
    cr_assert_eq(exchange(v, VHU_SET_MEM_TABLE, VHU_VERSION | VHU_FLAG_NEED_REPLY, &t, 8 + 32, fds, 1), 0);
    cr_assert_neq(ack(v, VHU_SET_MEM_TABLE), 0);
    /* Sums that wrap. */
    t.r[0] = (struct vhu_mem_region){ UINT64_MAX - 100, 4096, 0x10000, 0 };
    cr_assert_eq(exchange(v, VHU_SET_MEM_TABLE, VHU_VERSION | VHU_FLAG_NEED_REPLY, &t, 8 + 32, fds, 1), 0);
    cr_assert_neq(ack(v, VHU_SET_MEM_TABLE), 0);
    t.r[0] = (struct vhu_mem_region){ 0, 4096, 0x10000, UINT64_MAX - 10 };
    cr_assert_eq(exchange(v, VHU_SET_MEM_TABLE, VHU_VERSION | VHU_FLAG_NEED_REPLY, &t, 8 + 32, fds, 1), 0);
    cr_assert_neq(ack(v, VHU_SET_MEM_TABLE), 0);
    /* Overlapping regions. */
    t.nregions = 2;
    t.r[0] = (struct vhu_mem_region){ 0, 8192, 0x10000, 0 };
    t.r[1] = (struct vhu_mem_region){ 4096, 4096, 0x20000, 0 };
    cr_assert_eq(exchange(v, VHU_SET_MEM_TABLE, VHU_VERSION | VHU_FLAG_NEED_REPLY, &t, 8 + 64, fds, 2), 0);
    cr_assert_neq(ack(v, VHU_SET_MEM_TABLE), 0);
    cr_assert_eq(v->d.mem.n, 0);
    /* A good one, with an offset. */
    t.nregions = 1;
    t.r[0] = (struct vhu_mem_region){ 0x100000, 32768, 0x7000000, 32768 };
    cr_assert_eq(exchange(v, VHU_SET_MEM_TABLE, VHU_VERSION | VHU_FLAG_NEED_REPLY, &t, 8 + 32, fds, 1), 0);
    cr_assert_eq(ack(v, VHU_SET_MEM_TABLE), 0);
    cr_assert_eq(v->d.mem.n, 1);
    cr_assert_not_null(vring_mem_gpa(&v->d.mem, 0x100000 + 32767, 1));
    cr_assert_null(vring_mem_gpa(&v->d.mem, 0x100000 + 32767, 2));
    cr_assert_eq(count_fds(), fds_before, "fds leaked");
    close(mfd);
}

Test(vhost, vhu_ring_messages_validate_index_and_size, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();
    uint64_t pf = 1ull << VHU_PROTOCOL_F_REPLY_ACK, arg;
    struct vhu_vring_state st;
    struct vhu_vring_addr a = { 0, 0, 0x1000, 0x2000, 0x3000, 0 };
    int efd = eventfd(0, 0);

    cr_assert_eq(exchange(v, VHU_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0), 0);
    st = (struct vhu_vring_state){ 0, 100 };
    cr_assert_eq(exchange(v, VHU_SET_VRING_NUM, VHU_VERSION | VHU_FLAG_NEED_REPLY, &st, 8, NULL, 0), 0);
    cr_assert_neq(ack(v, VHU_SET_VRING_NUM), 0, "num 100 is not a power of two");
    st = (struct vhu_vring_state){ 5, 64 };
    cr_assert_eq(exchange(v, VHU_SET_VRING_NUM, VHU_VERSION | VHU_FLAG_NEED_REPLY, &st, 8, NULL, 0), 0);
    cr_assert_neq(ack(v, VHU_SET_VRING_NUM), 0, "queue 5 does not exist");
    st = (struct vhu_vring_state){ 0, 64 };
    cr_assert_eq(exchange(v, VHU_SET_VRING_NUM, VHU_VERSION | VHU_FLAG_NEED_REPLY, &st, 8, NULL, 0), 0);
    cr_assert_eq(ack(v, VHU_SET_VRING_NUM), 0);
    /* Addresses with no memory table behind them. */
    cr_assert_eq(exchange(v, VHU_SET_VRING_ADDR, VHU_VERSION | VHU_FLAG_NEED_REPLY, &a, sizeof(a), NULL, 0), 0);
    cr_assert_neq(ack(v, VHU_SET_VRING_ADDR), 0);
    /* Kick with a bad index, with garbage bits, without an fd. */
    arg = 7;
    cr_assert_eq(exchange(v, VHU_SET_VRING_KICK, VHU_VERSION | VHU_FLAG_NEED_REPLY, &arg, 8, &efd, 1), 0);
    cr_assert_neq(ack(v, VHU_SET_VRING_KICK), 0);
    arg = 0x10000;
    cr_assert_eq(exchange(v, VHU_SET_VRING_KICK, VHU_VERSION | VHU_FLAG_NEED_REPLY, &arg, 8, &efd, 1), 0);
    cr_assert_neq(ack(v, VHU_SET_VRING_KICK), 0);
    arg = 0;
    cr_assert_eq(exchange(v, VHU_SET_VRING_KICK, VHU_VERSION | VHU_FLAG_NEED_REPLY, &arg, 8, NULL, 0), 0);
    cr_assert_neq(ack(v, VHU_SET_VRING_KICK), 0);
    arg = VHU_VRING_NOFD_MASK;
    cr_assert_eq(exchange(v, VHU_SET_VRING_KICK, VHU_VERSION | VHU_FLAG_NEED_REPLY, &arg, 8, NULL, 0), 0);
    cr_assert_neq(ack(v, VHU_SET_VRING_KICK), 0, "polling mode is not offered");
    /* Kick of the event queue (index 2) is tolerated and never polled. */
    arg = 2;
    cr_assert_eq(exchange(v, VHU_SET_VRING_KICK, VHU_VERSION | VHU_FLAG_NEED_REPLY, &arg, 8, &efd, 1), 0);
    cr_assert_eq(ack(v, VHU_SET_VRING_KICK), 0);
    cr_assert_eq(v->log.kicks_added, 0);
    st = (struct vhu_vring_state){ 0, 2 };
    cr_assert_eq(exchange(v, VHU_SET_VRING_ENABLE, VHU_VERSION | VHU_FLAG_NEED_REPLY, &st, 8, NULL, 0), 0);
    cr_assert_neq(ack(v, VHU_SET_VRING_ENABLE), 0);
    st = (struct vhu_vring_state){ 0, 0x10000 };
    cr_assert_eq(exchange(v, VHU_SET_VRING_BASE, VHU_VERSION | VHU_FLAG_NEED_REPLY, &st, 8, NULL, 0), 0);
    cr_assert_neq(ack(v, VHU_SET_VRING_BASE), 0);
    close(efd);
}

Test(vhost, vhu_features_without_protocol_enable_rings, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();
    uint64_t f = 1ull << 32;

    cr_assert_eq(exchange(v, VHU_SET_FEATURES, VHU_VERSION, &f, 8, NULL, 0), 0);
    cr_assert(v->d.vq[0].enabled);
    cr_assert(v->d.vq[1].enabled);
}

Test(vhost, vhu_reply_ack_only_when_negotiated, .timeout = 10)
{
    struct vhu_env *v = vhu_env_new();
    uint64_t r;

    cr_assert_eq(exchange(v, VHU_SET_OWNER, VHU_VERSION | VHU_FLAG_NEED_REPLY, NULL, 0, NULL, 0), 0);
    cr_assert_eq(read_reply(v->sv[0], VHU_SET_OWNER, &r, sizeof(r)), -1);
}

Test(vhost, vring_notify_respects_no_interrupt, .timeout = 10)
{
    struct env *e = env_new(16, 65536);
    int call = eventfd(0, EFD_NONBLOCK);
    uint64_t cnt;

    e->tx.vq.call_fd = call;
    g_connect(e, 1000, 1234);
    cr_assert_eq(read(call, &cnt, sizeof(cnt)), 8);
    e->tx.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
    {
        struct vpkt_hdr h = hdr(VPKT_OP_CREDIT_UPDATE, 1000, 1234, 0);

        g_send(e, &h, NULL, 0);
    }
    cr_assert_eq(read(call, &cnt, sizeof(cnt)), -1, "signalled despite VRING_AVAIL_F_NO_INTERRUPT");
    cr_assert_eq(tx_used_count(e), 2);
}
