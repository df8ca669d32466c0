/* SPDX-License-Identifier: MIT */
/*
 * vsock_conn.c: the connection table and stream protocol of the virtio-vsock
 * device (reference 1.4 connection life cycle, 1.5 credit, 1.6 queue use).
 *
 * A connection is keyed by (guest port, host port) and pairs one guest
 * stream with one host socket. Its life:
 *
 *   guest REQUEST -> HOST_CONNECTING -(host connect ok)-> ESTABLISHED, RESPONSE
 *                                     -(refused)-> RST
 *   host offer    -> GUEST_CONNECTING, REQUEST -(RESPONSE)-> accept answered,
 *                    ESTABLISHED without a host socket until vconn_host_attach
 *                                               -(RST)-> refuse answered
 *                                               -(timeout)-> silence answered
 *   ESTABLISHED   -(guest SHUTDOWN RCV|SEND)-> CLOSING: flush to host, RST
 *                 -(guest done sending and host EOF)-> RST
 *                 -(host program closed)-> HOST_CLOSED: SHUTDOWN(RCV|SEND) to
 *                    the guest, host socket closed; the guest's RST ends it
 *                    (its own close, or at once when it has nothing unread),
 *                    or ours after VCONN_TIMEOUT_MS (virtio_transport_close)
 *   any           -(error)-> DEAD: host closed, RST queued for the guest
 *   HOST_CONNECTING -(host connect timed out: nobody answered)-> freed with no
 *                    packet: the guest's own connect timeout decides, and a
 *                    late RST could only hit the guest's retry on the tuple
 *
 * Packets for the guest (control ops and data) are produced only when the
 * guest has posted an rx buffer: a connection with something to say sits on
 * the rx list, and rx_run() serves the list round-robin, one packet per
 * buffer. Replies to packets of unknown connections (RST) wait in a small
 * bounded queue. Connections are freed only at the end of vconn_run(), so
 * host events already collected for them in the same batch stay harmless.
 *
 * A seqpacket connection lives the same life; only its data differs
 * (reference 1.9). Guest -> host: buf holds whole messages (their lengths
 * in mlen) and then the one being gathered; every byte counts against the
 * credit we gave, so a message can never outgrow buf_alloc. Host -> guest:
 * one message at a time is taken whole from the host socket into hold and
 * sent in packets within the guest's credit, EOM on the last.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vlog.h"
#include "vsock_conn.h"

#define NBUCKETS 256
#define MAX_STRAY 64 /* RST replies for unknown flows waiting for rx buffers */
#define MAX_RECENT 64 /* connections closed lately, whose late packets need no RST */
#define TX_BUDGET 256 /* chains per vconn_run, so host sockets are not starved */
#define RX_BUDGET 256
#define MIN_BUF_CAP 4096

enum cstate {
    CS_HOST_CONNECTING, /* guest asked; host connect in progress */
    CS_GUEST_CONNECTING, /* host connected; REQUEST for the guest, waiting for RESPONSE */
    CS_ESTABLISHED,
    CS_CLOSING, /* guest shut down both ways: flushing its data, then RST */
    CS_HOST_CLOSED, /* host program closed: SHUTDOWN(RCV|SEND) owed or sent, waiting for the guest's RST */
    CS_DEAD, /* host side closed; an RST for the guest is pending */
    CS_FREED, /* out of the table, waiting in the graveyard */
};

/* Packets a connection owes the guest (besides data). */
#define P_REQUEST 0x01u
#define P_RESPONSE 0x02u
#define P_RST 0x04u
#define P_CREDIT_UPDATE 0x08u
#define P_CREDIT_REQUEST 0x10u
#define P_SHUTDOWN_FULL 0x20u /* SHUTDOWN(RCV|SEND): the host side is gone */
#define P_SHUTDOWN_RCV 0x40u /* SHUTDOWN(RCV): the host program stopped reading */

struct vconn {
    struct vconn *hnext; /* hash chain; graveyard link once freed */
    struct vconn *rx_prev, *rx_next;
    int on_rx;
    uint32_t guest_port, host_port;
    int fd; /* host socket, -1 once closed */
    enum cstate state;
    unsigned pend; /* P_* */
    uint64_t deadline; /* ms; 0: none */
    /* host -> guest: the guest's receive window */
    uint32_t peer_buf_alloc, peer_fwd_cnt; /* from the guest's latest header */
    uint32_t tx_cnt; /* payload bytes we sent the guest */
    /* guest -> host: our receive window */
    uint32_t buf_alloc; /* what we advertise */
    uint32_t rx_cnt; /* payload bytes the guest sent us */
    uint32_t fwd_cnt; /* ... of which written to the host socket */
    uint32_t last_fwd_sent; /* fwd_cnt in the last header the guest got */
    uint8_t *buf; /* guest bytes the host socket did not take yet */
    size_t boff, blen, bcap;
    unsigned readable : 1; /* host socket may have data (edge seen, no EAGAIN since) */
    unsigned writable : 1;
    unsigned host_eof : 1; /* read EOF; SHUTDOWN(SEND) sent to the guest */
    unsigned host_err : 1; /* read failed after data was delivered: reset next */
    unsigned host_shut_wr : 1; /* we half-closed the host socket */
    unsigned host_shut_rd : 1; /* we shut its reading side (the guest's SHUTDOWN(RCV) passed on) */
    unsigned host_rd_gone : 1; /* the host program shut its reading side: guest bytes are dropped */
    unsigned guest_shut_send : 1; /* sticky SHUTDOWN flags from the guest */
    unsigned guest_shut_rcv : 1;
    unsigned credit_req_sent : 1; /* one CREDIT_REQUEST per exhausted window */
    unsigned offered : 1; /* a host connection offered by the daemon (vconn_host_offer) */
    unsigned answered : 1; /* ... and ops->answer was called */
    uint64_t token; /* the offer's, for ops->answer */
    uint16_t type; /* VPKT_TYPE_*: every packet of the connection must carry it */
    /* seqpacket, guest -> host: the whole messages at the start of buf */
    struct vmsg {
        uint32_t len;
        int eor; /* the guest's sender gave MSG_EOR */
    } *mlen;
    unsigned mfirst, mcount, mcap;
    size_t partial; /* bytes of the message still being gathered, at the end of buf */
    unsigned partial_eor : 1; /* ... and a packet of it had SEQ_EOR */
    unsigned hold_eor : 1; /* the held message came with MSG_EOR */
    /* seqpacket, host -> guest: the message being sent, held whole */
    uint8_t *hold;
    uint32_t hold_len, hold_off;
};

struct vconn_dev {
    struct vconn_config cfg;
    const struct vconn_host_ops *ops;
    void *ctx;
    struct vring *rx, *tx;
    const struct vring_mem *mem;
    struct vconn *bucket[NBUCKETS];
    unsigned nconns;
    struct vconn *rx_head, *rx_tail;
    struct vconn *graveyard;
    struct vpkt_hdr stray[MAX_STRAY];
    unsigned stray_first, nstray;
    struct {
        uint32_t guest_port, host_port;
        uint64_t until; /* ms */
    } recent[MAX_RECENT];
    unsigned recent_next;
    uint64_t next_deadline; /* earliest connection deadline, 0: none */
    int broken;
    int seqpacket; /* the guest negotiated VPKT_F_SEQPACKET */
    struct vconn_stats stats;
};

static uint64_t now_ms(struct vconn_dev *d)
{
    return d->ops->now_ms(d->ctx);
}

/* ---- table and rx list ------------------------------------------------------------ */

static unsigned hash(uint32_t guest_port, uint32_t host_port)
{
    uint32_t h = guest_port * 0x9e3779b1u ^ host_port * 0x85ebca6bu;

    return (h ^ (h >> 16)) % NBUCKETS;
}

static struct vconn *conn_find(struct vconn_dev *d, uint32_t guest_port, uint32_t host_port)
{
    struct vconn *c;

    for (c = d->bucket[hash(guest_port, host_port)]; c; c = c->hnext)
        if (c->guest_port == guest_port && c->host_port == host_port)
            return c;
    return NULL;
}

static void rx_list_remove(struct vconn_dev *d, struct vconn *c)
{
    if (!c->on_rx)
        return;
    if (c->rx_prev)
        c->rx_prev->rx_next = c->rx_next;
    else
        d->rx_head = c->rx_next;
    if (c->rx_next)
        c->rx_next->rx_prev = c->rx_prev;
    else
        d->rx_tail = c->rx_prev;
    c->rx_prev = c->rx_next = NULL;
    c->on_rx = 0;
}

static void rx_list_append(struct vconn_dev *d, struct vconn *c)
{
    if (c->on_rx)
        return;
    c->rx_prev = d->rx_tail;
    c->rx_next = NULL;
    if (d->rx_tail)
        d->rx_tail->rx_next = c;
    else
        d->rx_head = c;
    d->rx_tail = c;
    c->on_rx = 1;
}

static void set_deadline(struct vconn_dev *d, struct vconn *c, uint64_t ms)
{
    c->deadline = now_ms(d) + ms;
    if (c->deadline == 0)
        c->deadline = 1;
    if (d->next_deadline == 0 || c->deadline < d->next_deadline)
        d->next_deadline = c->deadline;
}

static struct vconn *conn_new(struct vconn_dev *d, uint32_t guest_port, uint32_t host_port, int fd,
                              enum cstate state, uint16_t type)
{
    struct vconn *c = calloc(1, sizeof(*c));
    unsigned b = hash(guest_port, host_port);

    if (c == NULL)
        return NULL;
    c->guest_port = guest_port;
    c->host_port = host_port;
    c->fd = fd;
    c->state = state;
    c->type = type;
    c->buf_alloc = d->cfg.buf_alloc;
    /* Optimistic: a wrong guess costs one EAGAIN, which clears it. */
    c->readable = 1;
    c->writable = 1;
    c->hnext = d->bucket[b];
    d->bucket[b] = c;
    d->nconns++;
    return c;
}

/* Tell the daemon's gateway what became of an offered connection, once. */
static void settle(struct vconn_dev *d, struct vconn *c, unsigned answer)
{
    if (!c->offered || c->answered)
        return;
    c->answered = 1;
    if (d->ops->answer)
        d->ops->answer(d->ctx, c->token, answer);
}

/* What the guest sent and the host did not take yet. */
static void drop_guest_data(struct vconn *c)
{
    free(c->buf);
    c->buf = NULL;
    c->blen = c->bcap = c->boff = 0;
    free(c->mlen);
    c->mlen = NULL;
    c->mfirst = c->mcount = c->mcap = 0;
    c->partial = 0;
    c->partial_eor = 0;
}

/* Whatever waits in either direction is lost with the host side. */
static void drop_data(struct vconn *c)
{
    drop_guest_data(c);
    free(c->hold);
    c->hold = NULL;
    c->hold_len = c->hold_off = 0;
}

static void close_host(struct vconn_dev *d, struct vconn *c)
{
    if (c->fd >= 0)
        d->ops->close(d->ctx, c->fd);
    c->fd = -1;
}

/* Forget a connection at once: nothing more is sent to the guest. */
static void conn_free(struct vconn_dev *d, struct vconn *c)
{
    struct vconn **pp;

    if (c->state == CS_FREED)
        return;
    settle(d, c, VCONN_ANSWER_SILENT);
    /* The guest may still send a packet or two for this connection (a
     * credit update after reading, its own RST on close): they need no
     * RST back, and one could hit a new connection reusing the tuple. */
    d->recent[d->recent_next].guest_port = c->guest_port;
    d->recent[d->recent_next].host_port = c->host_port;
    d->recent[d->recent_next].until = now_ms(d) + VCONN_TIMEOUT_MS;
    d->recent_next = (d->recent_next + 1) % MAX_RECENT;
    for (pp = &d->bucket[hash(c->guest_port, c->host_port)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            break;
        }
    }
    rx_list_remove(d, c);
    close_host(d, c);
    drop_data(c);
    c->state = CS_FREED;
    c->hnext = d->graveyard;
    d->graveyard = c;
    d->nconns--;
}

static uint32_t peer_free(const struct vconn *c)
{
    /* Unsigned arithmetic on free-running counters, as the spec's formula;
     * a guest that claims more consumed than we sent gets no credit. */
    uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

    return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Host data for the guest may wait: in the socket, or a message held. */
static int host_pending(const struct vconn *c)
{
    return c->state == CS_ESTABLISHED && c->fd >= 0 && (c->readable || c->hold != NULL) && !c->host_eof &&
           !c->guest_shut_rcv;
}

static int can_read(const struct vconn *c)
{
    return host_pending(c) && !c->host_err && peer_free(c) > 0;
}

static int wants_rx(const struct vconn *c)
{
    return c->pend != 0 || can_read(c) || (c->state == CS_ESTABLISHED && c->host_err);
}

/* Put c on the rx list if it has anything for the guest. */
static void want(struct vconn_dev *d, struct vconn *c)
{
    if (c->state == CS_FREED)
        return;
    /* Data waits and the window is shut: ask once for an update (the
     * guest also sends one on its own once it reads). */
    if (host_pending(c) && peer_free(c) == 0 && !c->credit_req_sent) {
        c->pend |= P_CREDIT_REQUEST;
        c->credit_req_sent = 1;
    }
    if (wants_rx(c))
        rx_list_append(d, c);
}

/* The host side ends (or never worked): close it and owe the guest an RST. */
static void conn_reset(struct vconn_dev *d, struct vconn *c)
{
    if (c->state == CS_DEAD || c->state == CS_FREED)
        return;
    settle(d, c, VCONN_ANSWER_SILENT);
    close_host(d, c);
    drop_data(c);
    c->state = CS_DEAD;
    c->pend = P_RST;
    /* If the guest never posts an rx buffer again, give up on the RST. */
    set_deadline(d, c, VCONN_TIMEOUT_MS);
    want(d, c);
}

/* The host program closed its socket (EOF and hang-up): a full close as the
 * guest kernel's transport knows it. The guest hears SHUTDOWN(RCV|SEND), so
 * its reads end after the data already sent and its sends fail with EPIPE;
 * it answers with RST (at once if it has nothing unread, else when it
 * closes). Guest bytes the host never took are dropped: nobody can read them. */
static void host_closed(struct vconn_dev *d, struct vconn *c)
{
    if (c->state != CS_ESTABLISHED)
        return;
    close_host(d, c);
    drop_data(c);
    c->state = CS_HOST_CLOSED;
    c->host_eof = 1;
    c->pend = (c->pend & P_RST) | P_SHUTDOWN_FULL;
    set_deadline(d, c, VCONN_TIMEOUT_MS);
    want(d, c);
}

/* The host program shut down its reading side (a virtio-style socket's
 * shutdown(SHUT_RD) is an AF_UNIX shutdown, which makes our sends to it fail
 * with EPIPE). The guest hears SHUTDOWN(RCV): its kernel records it in
 * peer_shutdown (virtio_transport_recv_connected) and fails its sends with
 * EPIPE from then on (vsock_connectible_sendmsg), as under vhost-vsock.
 * Guest bytes the host never took, and those already on their way, are
 * dropped: the host's kernel would queue them for nobody. The other
 * direction goes on. */
static void host_rd_shut(struct vconn_dev *d, struct vconn *c)
{
    if (c->state != CS_ESTABLISHED || c->host_rd_gone)
        return;
    c->host_rd_gone = 1;
    drop_guest_data(c);
    c->pend |= P_SHUTDOWN_RCV;
    want(d, c);
}

/* Ask whether the host program shut its reading side; if so the guest is
 * told (host_rd_shut). Its SHUT_RD raises no event of its own on our end,
 * only the wake-up that any change of its socket brings, so this is asked
 * at each event, when a connect completes or a stream attaches, and before
 * each read of its data (a SHUT_RD followed by a send must reach the guest
 * before those bytes, as the kernel queues them in that order). A hang-up
 * we cannot explain by our own SHUT_RD is its close, which the read path
 * handles. Streams only: a seqpacket carrier's probe would be an empty
 * message; its SHUT_RD shows at the next send. Returns 1 when it did. */
static int probe_host_rd(struct vconn_dev *d, struct vconn *c)
{
    if (c->state != CS_ESTABLISHED || c->type != VPKT_TYPE_STREAM || c->fd < 0 || c->host_rd_gone ||
        c->host_shut_wr || d->ops->peer_shut_rd == NULL || d->ops->peer_closed == NULL)
        return 0;
    if (d->ops->peer_shut_rd(d->ctx, c->fd) <= 0 ||
        !(c->host_shut_rd || d->ops->peer_closed(d->ctx, c->fd) == 0))
        return 0;
    host_rd_shut(d, c);
    return 1;
}

/* A send to the host socket failed. EPIPE while the host program still has
 * it open (no hang-up) and we did not shut it for writing is its SHUT_RD;
 * anything else ends the connection. */
static void host_send_failed(struct vconn_dev *d, struct vconn *c, int err)
{
    if (err == -EPIPE && c->state == CS_ESTABLISHED && !c->host_shut_wr && d->ops->peer_closed &&
        (c->host_shut_rd || d->ops->peer_closed(d->ctx, c->fd) == 0)) {
        host_rd_shut(d, c);
        return;
    }
    conn_reset(d, c);
}

static void free_all(struct vconn_dev *d)
{
    unsigned b;

    for (b = 0; b < NBUCKETS; b++)
        while (d->bucket[b])
            conn_free(d, d->bucket[b]);
    d->nstray = 0;
    d->stray_first = 0;
    d->next_deadline = 0;
}

static void set_broken(struct vconn_dev *d, const char *queue, int err)
{
    if (d->broken)
        return;
    d->broken = 1;
    vlog(VLOG_ERR, "the guest broke the %s queue (%s): device stopped until it is reset", queue,
         err == -EFAULT ? "buffer outside guest memory" : "bad index, loop or flags");
    /* Nothing can reach the guest any more: let the host programs see EOF. */
    free_all(d);
}

/* ---- packets of unknown flows ------------------------------------------------------ */

/* Answer a packet that has no connection with RST (never an RST itself). */
static void reply_rst(struct vconn_dev *d, const struct vpkt_hdr *in)
{
    struct vpkt_hdr *h;

    if (in->op == VPKT_OP_RST)
        return;
    if (d->nstray == MAX_STRAY) {
        d->stats.stray_dropped++;
        return;
    }
    h = &d->stray[(d->stray_first + d->nstray) % MAX_STRAY];
    d->nstray++;
    memset(h, 0, sizeof(*h));
    /* From the address the guest used, so its socket lookup matches. */
    h->src_cid = in->dst_cid;
    h->src_port = in->dst_port;
    h->dst_cid = in->src_cid;
    h->dst_port = in->src_port;
    h->type = in->type;
    h->op = VPKT_OP_RST;
}

static int recently_closed(struct vconn_dev *d, uint32_t guest_port, uint32_t host_port)
{
    uint64_t now = now_ms(d);
    unsigned i;

    for (i = 0; i < MAX_RECENT; i++)
        if (d->recent[i].until > now && d->recent[i].guest_port == guest_port && d->recent[i].host_port == host_port)
            return 1;
    return 0;
}

/* A new connection for this tuple: an older RST for it would kill it. */
static void stray_purge(struct vconn_dev *d, uint32_t guest_port, uint32_t host_port)
{
    unsigned i, kept = 0;
    struct vpkt_hdr keep[MAX_STRAY];

    for (i = 0; i < d->nstray; i++) {
        const struct vpkt_hdr *h = &d->stray[(d->stray_first + i) % MAX_STRAY];

        if (!(h->dst_port == guest_port && h->src_port == host_port))
            keep[kept++] = *h;
    }
    if (kept == d->nstray)
        return;
    memcpy(d->stray, keep, kept * sizeof(keep[0]));
    d->stray_first = 0;
    d->nstray = kept;
}

/* ---- guest -> host ----------------------------------------------------------------- */

/* Write to the host socket until done or EAGAIN. Returns bytes written or
 * -errno of a hard failure; fwd_cnt counts what the host socket took. */
static ssize_t host_write(struct vconn_dev *d, struct vconn *c, const uint8_t *p, size_t n)
{
    size_t done = 0;

    while (done < n && c->writable && c->fd >= 0) {
        ssize_t r = d->ops->send(d->ctx, c->fd, p + done, n - done);

        if (r == -EINTR)
            continue;
        if (r == -EAGAIN || r == 0) {
            c->writable = 0;
            break;
        }
        if (r < 0)
            return r;
        done += (size_t)r;
    }
    c->fwd_cnt += (uint32_t)done;
    return (ssize_t)done;
}

/* Tell the guest about freed buffer space when it matters: once its view of
 * the window is below half and a quarter of it was consumed since we last
 * told it, or whenever its view is nearly shut (so a guest waiting on a
 * full window always hears of any progress). Every other packet we send
 * carries the credit too. */
static void credit_check(struct vconn_dev *d, struct vconn *c)
{
    uint32_t unacked = c->fwd_cnt - c->last_fwd_sent;
    uint32_t used_view = c->rx_cnt - c->last_fwd_sent;
    uint32_t free_view = used_view >= c->buf_alloc ? 0 : c->buf_alloc - used_view;

    if (c->state != CS_ESTABLISHED || c->guest_shut_send || unacked == 0)
        return;
    if ((unacked >= c->buf_alloc / 4 && free_view < c->buf_alloc / 2) || free_view < c->buf_alloc / 8) {
        c->pend |= P_CREDIT_UPDATE;
        want(d, c);
    }
}

/* Both directions finished: RST ends it (reference 1.4, "clean close"). */
static void check_done(struct vconn_dev *d, struct vconn *c)
{
    if (c->state != CS_ESTABLISHED && c->state != CS_CLOSING)
        return;
    if (c->blen != 0 || !c->guest_shut_send)
        return;
    if (c->guest_shut_rcv || c->host_eof)
        conn_reset(d, c);
}

/* Whole messages to the host socket, one send each, while it takes them.
 * Returns 0 or -errno of a failed send. */
static int host_write_msgs(struct vconn_dev *d, struct vconn *c)
{
    while (c->mcount > 0 && c->writable) {
        uint32_t n = c->mlen[c->mfirst].len;
        ssize_t r = d->ops->send_msg(d->ctx, c->fd, c->buf + c->boff, n, c->mlen[c->mfirst].eor);

        if (r == -EINTR)
            continue;
        if (r == -EAGAIN) {
            c->writable = 0;
            break;
        }
        if (r < 0)
            vlog(VLOG_INFO, "the host program did not take a guest message of %u bytes on %u:%u (%s): reset", n,
                 c->guest_port, c->host_port, strerror((int)-r));
        if (r != (ssize_t)n)
            return r < 0 ? (int)r : -EPROTO; /* a message is sent whole or not at all */
        c->boff += n;
        c->blen -= n;
        c->fwd_cnt += n;
        c->mfirst++;
        c->mcount--;
    }
    if (c->mcount == 0)
        c->mfirst = 0;
    if (c->blen == 0)
        c->boff = 0;
    return 0;
}

static void flush(struct vconn_dev *d, struct vconn *c)
{
    int rc;

    if (c->fd < 0 || (c->state != CS_ESTABLISHED && c->state != CS_CLOSING))
        return;
    /* The guest's SHUTDOWN(RCV) reaches the host program at once: its sends
     * fail with EPIPE from now on, as the kernel's check of peer_shutdown
     * makes them (vsock-virtio.md 10.2). Our end stops reading it anyway
     * (host_pending), so its own EOF means nothing to us. */
    if (c->guest_shut_rcv && !c->host_shut_rd && d->ops->shutdown_rd) {
        c->host_shut_rd = 1;
        rc = d->ops->shutdown_rd(d->ctx, c->fd);
        if (rc < 0) {
            vlog(VLOG_INFO, "passing the guest's SHUT_RD on %u:%u failed (%s): reset", c->guest_port, c->host_port,
                 strerror(-rc));
            conn_reset(d, c);
            return;
        }
    }
    if (c->host_rd_gone) {
        /* nobody reads what the guest sends (host_rd_shut dropped it) */
    } else if (c->type == VPKT_TYPE_SEQPACKET) {
        rc = host_write_msgs(d, c);
        if (rc < 0) {
            host_send_failed(d, c, rc);
            return;
        }
    } else if (c->blen > 0 && c->writable) {
        ssize_t r = host_write(d, c, c->buf + c->boff, c->blen);

        if (r < 0) {
            host_send_failed(d, c, (int)r);
            return;
        }
        c->boff += (size_t)r;
        c->blen -= (size_t)r;
        if (c->blen == 0)
            c->boff = 0;
    }
    /* The guest's SHUTDOWN(SEND) reaches the host after its last byte. */
    if (c->blen == 0 && c->guest_shut_send && !c->host_shut_wr) {
        c->host_shut_wr = 1;
        if (d->ops->shutdown_wr(d->ctx, c->fd) < 0) {
            conn_reset(d, c);
            return;
        }
    }
    credit_check(d, c);
    check_done(d, c);
}

static int buf_reserve(struct vconn *c, size_t n)
{
    size_t cap;
    uint8_t *nb;

    if (c->boff + c->blen + n <= c->bcap)
        return 0;
    if (c->boff) {
        memmove(c->buf, c->buf + c->boff, c->blen);
        c->boff = 0;
    }
    if (c->blen + n <= c->bcap)
        return 0;
    /* Grow by doubling; the credit check bounds blen + n by buf_alloc. */
    cap = c->bcap ? c->bcap : MIN_BUF_CAP;
    while (cap < c->blen + n)
        cap *= 2;
    if (cap > c->buf_alloc)
        cap = c->buf_alloc;
    nb = realloc(c->buf, cap);
    if (nb == NULL)
        return -ENOMEM;
    c->buf = nb;
    c->bcap = cap;
    return 0;
}

static void guest_rw(struct vconn_dev *d, struct vconn *c, struct vpkt_tx *p)
{
    uint32_t len = p->hdr.len;
    struct vpkt_cursor *cur = &p->payload;

    if (len == 0 || c->state == CS_HOST_CLOSED || (c->state == CS_ESTABLISHED && c->host_rd_gone))
        return; /* sent before our SHUTDOWN reached the guest: nobody reads it */
    if (c->state != CS_ESTABLISHED || c->guest_shut_send) {
        vlog_peer("guest sent data on %u:%u after its shutdown or before the connection was up", c->guest_port,
                  c->host_port);
        conn_reset(d, c);
        return;
    }
    /* What waits for the host can never exceed the window we advertised. */
    if ((uint64_t)c->blen + len > c->buf_alloc) {
        d->stats.credit_violations++;
        vlog_peer("guest exceeded its credit on %u:%u (%zu buffered + %u > %u)", c->guest_port, c->host_port,
                  c->blen, len, c->buf_alloc);
        conn_reset(d, c);
        return;
    }
    c->rx_cnt += len;
    d->stats.tx_bytes += len;
    if (c->blen == 0) {
        uint8_t *seg;
        size_t k;

        while (c->writable && (k = vpkt_cursor_peek(cur, &seg, SIZE_MAX)) > 0) {
            ssize_t r = host_write(d, c, seg, k);

            if (r < 0) {
                host_send_failed(d, c, (int)r);
                return;
            }
            vpkt_cursor_skip(cur, (size_t)r);
            if ((size_t)r < k)
                break;
        }
    }
    if (cur->left > 0) {
        size_t n = (size_t)cur->left;

        if (buf_reserve(c, n) < 0) {
            vlog(VLOG_ERR, "out of memory buffering %zu bytes for %u:%u", n, c->guest_port, c->host_port);
            conn_reset(d, c);
            return;
        }
        c->blen += vpkt_cursor_read(cur, c->buf + c->boff + c->blen, n);
    }
    credit_check(d, c);
}

/* Room for one more message. */
static int mlen_push(struct vconn *c, uint32_t n, int eor)
{
    if (c->mfirst + c->mcount == c->mcap) {
        if (c->mfirst > 0) {
            memmove(c->mlen, c->mlen + c->mfirst, c->mcount * sizeof(c->mlen[0]));
            c->mfirst = 0;
        } else {
            /* At most one entry per byte within buf_alloc: bounded by it. */
            unsigned cap = c->mcap ? c->mcap * 2 : 16;
            struct vmsg *nm = realloc(c->mlen, cap * sizeof(nm[0]));

            if (nm == NULL)
                return -ENOMEM;
            c->mlen = nm;
            c->mcap = cap;
        }
    }
    c->mlen[c->mfirst + c->mcount].len = n;
    c->mlen[c->mfirst + c->mcount].eor = eor;
    c->mcount++;
    return 0;
}

/* A seqpacket RW: gather until EOM, then one send of the whole message. */
static void guest_seq_rw(struct vconn_dev *d, struct vconn *c, struct vpkt_tx *p)
{
    uint32_t len = p->hdr.len, flags = p->hdr.flags;

    if (c->state == CS_HOST_CLOSED || (c->state == CS_ESTABLISHED && c->host_rd_gone))
        return;
    if (c->state != CS_ESTABLISHED || c->guest_shut_send) {
        vlog_peer("guest sent data on %u:%u after its shutdown or before the connection was up", c->guest_port,
                  c->host_port);
        conn_reset(d, c);
        return;
    }
    if (flags & ~(VPKT_SEQ_EOM | VPKT_SEQ_EOR)) {
        d->stats.msg_violations++;
        vlog_peer("seqpacket RW on %u:%u with unknown flags %#x: reset", c->guest_port, c->host_port, flags);
        conn_reset(d, c);
        return;
    }
    /* A message can never outgrow the buffer we advertised: Linux refuses a
     * larger send with EMSGSIZE before a byte leaves (reference 1.9). */
    if ((uint64_t)c->partial + len > c->buf_alloc) {
        d->stats.msg_violations++;
        vlog_peer("guest message on %u:%u grows beyond %u bytes: reset", c->guest_port, c->host_port, c->buf_alloc);
        conn_reset(d, c);
        return;
    }
    if ((uint64_t)c->blen + len > c->buf_alloc) {
        d->stats.credit_violations++;
        vlog_peer("guest exceeded its credit on %u:%u (%zu buffered + %u > %u)", c->guest_port, c->host_port,
                  c->blen, len, c->buf_alloc);
        conn_reset(d, c);
        return;
    }
    if (len > 0) {
        if (buf_reserve(c, len) < 0) {
            vlog(VLOG_ERR, "out of memory buffering %u bytes for %u:%u", len, c->guest_port, c->host_port);
            conn_reset(d, c);
            return;
        }
        c->blen += vpkt_cursor_read(&p->payload, c->buf + c->boff + c->blen, len);
        c->partial += len;
        c->rx_cnt += len;
        d->stats.tx_bytes += len;
    }
    /* Linux marks EOR on the message's last packet; a mark anywhere counts. */
    if (flags & VPKT_SEQ_EOR)
        c->partial_eor = 1;
    /* An empty message (no vsock sender makes one) delivers nothing. */
    if ((flags & VPKT_SEQ_EOM) && c->partial > 0) {
        if (mlen_push(c, (uint32_t)c->partial, c->partial_eor) < 0) {
            vlog(VLOG_ERR, "out of memory queueing a message for %u:%u", c->guest_port, c->host_port);
            conn_reset(d, c);
            return;
        }
        c->partial = 0;
        c->partial_eor = 0;
        d->stats.tx_msgs++;
        flush(d, c);
        if (c->state != CS_ESTABLISHED)
            return;
    }
    credit_check(d, c);
}

static void guest_shutdown(struct vconn_dev *d, struct vconn *c, uint32_t flags)
{
    if (c->state == CS_HOST_CLOSED) {
        /* Both sides closed: the one that hears the other's full SHUTDOWN
         * answers with RST (virtio_transport_recv_connected). */
        if (flags & VPKT_SHUTDOWN_SEND)
            c->guest_shut_send = 1;
        if (flags & VPKT_SHUTDOWN_RCV)
            c->guest_shut_rcv = 1;
        if (c->guest_shut_send && c->guest_shut_rcv)
            conn_reset(d, c);
        return;
    }
    if (c->state != CS_ESTABLISHED && c->state != CS_CLOSING) {
        conn_reset(d, c);
        return;
    }
    /* The flags are sticky hints: a later packet cannot clear them. A
     * message the guest never finished is never delivered. */
    if ((flags & VPKT_SHUTDOWN_SEND) && c->partial > 0) {
        c->blen -= c->partial;
        c->partial = 0;
        c->partial_eor = 0;
    }
    if (flags & VPKT_SHUTDOWN_SEND)
        c->guest_shut_send = 1;
    if (flags & VPKT_SHUTDOWN_RCV)
        c->guest_shut_rcv = 1;
    if (c->guest_shut_send && c->guest_shut_rcv && c->state == CS_ESTABLISHED) {
        /* close() in the guest: flush what it sent, then RST; if the host
         * never takes it, give up after the close timeout. */
        c->state = CS_CLOSING;
        c->pend &= ~(P_CREDIT_UPDATE | P_CREDIT_REQUEST);
        set_deadline(d, c, VCONN_TIMEOUT_MS);
    }
    flush(d, c);
}

static void guest_request(struct vconn_dev *d, const struct vpkt_hdr *h)
{
    struct vconn *c;
    int fd;

    if (d->nconns >= d->cfg.max_conns) {
        vlog_peer("connection limit (%u) reached: refusing %u -> host port %u", d->cfg.max_conns, h->src_port,
                  h->dst_port);
        reply_rst(d, h);
        return;
    }
    fd = d->ops->connect(d->ctx, h->dst_port, h->src_port, h->type);
    if (fd < 0) {
        vlog(VLOG_DEBUG, "guest port %u -> host port %u refused: %s", h->src_port, h->dst_port, strerror(-fd));
        reply_rst(d, h);
        return;
    }
    c = conn_new(d, h->src_port, h->dst_port, fd, CS_HOST_CONNECTING, h->type);
    if (c == NULL) {
        d->ops->close(d->ctx, fd);
        reply_rst(d, h);
        return;
    }
    c->writable = 0;
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    stray_purge(d, h->src_port, h->dst_port);
    if (d->ops->watch(d->ctx, fd, c) < 0)
        conn_reset(d, c);
}

static void tx_packet(struct vconn_dev *d, struct vpkt_tx *p)
{
    const struct vpkt_hdr *h = &p->hdr;
    struct vconn *c;
    char opbuf[16];

    d->stats.tx_pkts++;
    if (vlog_level >= VLOG_DEBUG)
        vlog(VLOG_DEBUG, "guest %s %llu:%u -> %llu:%u len %u flags %#x credit %u/%u",
             vpkt_op_name(h->op, opbuf, sizeof(opbuf)), (unsigned long long)h->src_cid, h->src_port,
             (unsigned long long)h->dst_cid, h->dst_port, h->len, h->flags, h->fwd_cnt, h->buf_alloc);
    if (h->type != VPKT_TYPE_STREAM && !(h->type == VPKT_TYPE_SEQPACKET && d->seqpacket)) {
        /* 5.10.6.5: unknown type -> RST; SEQPACKET only once negotiated. */
        d->stats.bad_pkts++;
        reply_rst(d, h);
        return;
    }
    if (h->src_cid != d->cfg.guest_cid || h->dst_cid != VPKT_CID_HOST) {
        /* Only the host is reachable, and only from the guest's own CID.
         * Anything else is dropped without an answer, as kernel vhost-vsock
         * frees a packet not "correctly addressed" (vhost_vsock_handle_tx_kick)
         * and vhost-device-vsock drops one for a CID outside its groups: a
         * guest's connect to a sibling times out (vsock-virtio.md 7.8). */
        d->stats.bad_pkts++;
        vlog(VLOG_DEBUG, "dropped %s from %llu:%u to %llu:%u", vpkt_op_name(h->op, opbuf, sizeof(opbuf)),
             (unsigned long long)h->src_cid, h->src_port, (unsigned long long)h->dst_cid, h->dst_port);
        return;
    }
    c = conn_find(d, h->src_port, h->dst_port);
    if (c && c->state == CS_DEAD) {
        /* An RST is on its way. A new REQUEST on the tuple means the guest
         * has forgotten the old connection: that RST would now kill the new
         * one, so drop it. */
        if (h->op != VPKT_OP_REQUEST)
            return;
        conn_free(d, c);
        c = NULL;
    }
    if (c == NULL) {
        if (h->op == VPKT_OP_REQUEST)
            guest_request(d, h);
        else if (!recently_closed(d, h->src_port, h->dst_port))
            reply_rst(d, h);
        return;
    }
    if (h->type != c->type && h->op != VPKT_OP_REQUEST) {
        /* Linux answers a packet of the other type with RST, which ends the
         * guest's connection on that tuple: ours ends with it. */
        d->stats.bad_pkts++;
        d->stats.msg_violations++;
        vlog_peer("%s of type %u on %u:%u, a connection of type %u: reset", vpkt_op_name(h->op, opbuf, sizeof(opbuf)),
                  h->type, c->guest_port, c->host_port, c->type);
        if (h->op == VPKT_OP_RST)
            conn_free(d, c);
        else
            conn_reset(d, c);
        return;
    }
    /* Every packet of a flow carries the sender's current credit. */
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    if (peer_free(c) > 0)
        c->credit_req_sent = 0;
    switch (h->op) {
    case VPKT_OP_REQUEST:
        /* The guest reused a tuple we still hold: it is done with the old one. */
        conn_free(d, c);
        guest_request(d, h);
        return;
    case VPKT_OP_RESPONSE:
        if (c->state == CS_GUEST_CONNECTING) {
            c->state = CS_ESTABLISHED;
            c->deadline = 0;
            if (c->offered) {
                settle(d, c, VCONN_ANSWER_ACCEPT);
                /* The host's stream follows the daemon's reply; not forever. */
                if (c->fd < 0)
                    set_deadline(d, c, VCONN_TIMEOUT_MS);
            }
        } else if (c->state == CS_HOST_CONNECTING) {
            conn_reset(d, c);
        }
        break;
    case VPKT_OP_RST:
        if (c->state == CS_GUEST_CONNECTING)
            settle(d, c, VCONN_ANSWER_REFUSE);
        conn_free(d, c);
        return;
    case VPKT_OP_SHUTDOWN:
        guest_shutdown(d, c, h->flags);
        break;
    case VPKT_OP_RW:
        if (c->type == VPKT_TYPE_SEQPACKET)
            guest_seq_rw(d, c, p);
        else
            guest_rw(d, c, p);
        break;
    case VPKT_OP_CREDIT_UPDATE:
        break;
    case VPKT_OP_CREDIT_REQUEST:
        if (c->state == CS_ESTABLISHED || c->state == CS_CLOSING)
            c->pend |= P_CREDIT_UPDATE;
        break;
    default:
        d->stats.bad_pkts++;
        vlog_peer("unknown op %u on %u:%u: reset", h->op, c->guest_port, c->host_port);
        conn_reset(d, c);
        break;
    }
    want(d, c);
}

static int tx_run(struct vconn_dev *d)
{
    struct vring_chain ch;
    struct vpkt_tx p;
    int budget, r, rc;

    if (d->tx == NULL || !vring_ready(d->tx))
        return 0;
    for (budget = TX_BUDGET; budget > 0; budget--) {
        r = vring_pop(d->tx, d->mem, &ch);
        if (r < 0) {
            set_broken(d, "tx", r);
            return 0;
        }
        if (r == 0)
            return 0;
        rc = vpkt_tx_parse(&ch, &p);
        if (rc == -EBADMSG) {
            d->stats.bad_pkts++;
            vlog_peer("tx chain of %llu bytes is shorter than a packet header", (unsigned long long)ch.out_len);
        } else if (rc < 0) {
            struct vconn *c = conn_find(d, p.hdr.src_port, p.hdr.dst_port);

            d->stats.bad_pkts++;
            vlog_peer("tx packet claims %u payload bytes, chain holds %llu: refused", p.hdr.len,
                      (unsigned long long)(ch.out_len - VPKT_HDR_LEN));
            if (c && p.hdr.src_cid == d->cfg.guest_cid && p.hdr.dst_cid == VPKT_CID_HOST)
                conn_reset(d, c);
            else
                reply_rst(d, &p.hdr);
        } else {
            unsigned k = (ch.nout < VCONN_TX_DESC_BUCKETS ? ch.nout : VCONN_TX_DESC_BUCKETS) - 1;

            d->stats.tx_descs[k]++;
            if (p.hdr.op == VPKT_OP_RW)
                d->stats.tx_rw_descs[k]++;
            tx_packet(d, &p);
        }
        /* The device writes nothing into tx buffers. */
        vring_push(d->tx, ch.head, 0);
    }
    return 1;
}

/* ---- host -> guest ----------------------------------------------------------------- */

/* Read host data straight into the guest's buffer, within the guest's
 * credit. Returns 1 with *n bytes, 0 at EOF, -EAGAIN when there is nothing
 * (or no room), else -errno. */
static int rx_data(struct vconn_dev *d, struct vconn *c, struct vpkt_cursor *pay, uint32_t room, uint32_t *n)
{
    uint32_t credit = peer_free(c), max = room < credit ? room : credit;
    int eof = 0, err = 0;

    *n = 0;
    while (*n < max) {
        uint8_t *seg;
        size_t k = vpkt_cursor_peek(pay, &seg, max - *n);
        ssize_t r;

        if (k == 0)
            break;
        r = d->ops->recv(d->ctx, c->fd, seg, k);
        if (r == -EINTR)
            continue;
        if (r < 0) {
            err = (int)r;
            break;
        }
        if (r == 0) {
            eof = 1;
            break;
        }
        *n += (uint32_t)r;
        vpkt_cursor_skip(pay, (size_t)r);
        /* Short: the socket is (nearly) empty. The next read finds EAGAIN
         * and clears readable; reading on now would only cost a syscall. */
        if ((size_t)r < k)
            break;
    }
    if (err == -EAGAIN)
        c->readable = 0;
    if (*n > 0) {
        /* EOF repeats on the next read; a hard error might not. */
        if (err && err != -EAGAIN)
            c->host_err = 1;
        return 1;
    }
    if (eof)
        return 0;
    return err ? err : -EAGAIN;
}

/* Take the next host message whole into c->hold. Returns 1, 0 at EOF,
 * -EAGAIN when none waits, else -errno (the connection is then reset). */
static int hold_message(struct vconn_dev *d, struct vconn *c)
{
    ssize_t m, r;
    int eor = 0;

    do
        m = d->ops->msg_len ? d->ops->msg_len(d->ctx, c->fd) : -EOPNOTSUPP;
    while (m == -EINTR);
    if (m == -EAGAIN)
        c->readable = 0;
    if (m <= 0)
        return (int)m;
    /* The guest takes a message only whole, so one larger than its whole
     * buffer could never be read (and a vsock sender would have had
     * EMSGSIZE): nothing better than a reset is left. */
    if ((uint64_t)m > c->peer_buf_alloc || m > VCONN_SEQ_MSG_MAX) {
        d->stats.msg_violations++;
        vlog(VLOG_INFO, "host message of %zd bytes on %u:%u exceeds the guest's buffer (%u): reset", m,
             c->guest_port, c->host_port, c->peer_buf_alloc);
        return -EMSGSIZE;
    }
    c->hold = malloc((size_t)m);
    if (c->hold == NULL)
        return -ENOMEM;
    do
        r = d->ops->recv_msg(d->ctx, c->fd, c->hold, (size_t)m, &eor);
    while (r == -EINTR);
    if (r != m) {
        free(c->hold);
        c->hold = NULL;
        return r < 0 ? (int)r : -EPROTO;
    }
    c->hold_len = (uint32_t)m;
    c->hold_off = 0;
    c->hold_eor = eor != 0;
    return 1;
}

/* The next piece of the held message, within the room and the guest's
 * credit; *flags its RW flags (EOM, and EOR, on the last piece). Returns
 * as rx_data. */
static int rx_seq_data(struct vconn_dev *d, struct vconn *c, struct vpkt_cursor *pay, uint32_t room, uint32_t *n,
                       uint32_t *flags)
{
    uint32_t credit = peer_free(c), max = room < credit ? room : credit;
    int r;

    *n = 0;
    *flags = 0;
    if (c->hold == NULL && (r = hold_message(d, c)) <= 0)
        return r;
    if (max > c->hold_len - c->hold_off)
        max = c->hold_len - c->hold_off;
    *n = (uint32_t)vpkt_cursor_write(pay, c->hold + c->hold_off, max);
    c->hold_off += *n;
    if (c->hold_off == c->hold_len) {
        *flags = VPKT_SEQ_EOM | (c->hold_eor ? VPKT_SEQ_EOR : 0);
        free(c->hold);
        c->hold = NULL;
        c->hold_len = c->hold_off = 0;
        d->stats.rx_msgs++;
    }
    return 1;
}

static void base_hdr(const struct vconn_dev *d, const struct vconn *c, struct vpkt_hdr *h)
{
    memset(h, 0, sizeof(*h));
    h->src_cid = VPKT_CID_HOST;
    h->src_port = c->host_port;
    h->dst_cid = d->cfg.guest_cid;
    h->dst_port = c->guest_port;
    h->type = c->type;
}

/* One packet of c into the rx chain. Returns the used length, 0 if c had
 * nothing to send after all. */
static uint32_t rx_produce(struct vconn_dev *d, struct vconn *c, const struct vring_chain *ch,
                           struct vpkt_cursor *pay, uint32_t room)
{
    struct vpkt_hdr h;
    uint32_t used, n, rwflags = 0;
    int r;

    if (c->state == CS_ESTABLISHED && c->host_err)
        conn_reset(d, c);
    base_hdr(d, c, &h);
    if (c->pend & P_RST) {
        h.op = VPKT_OP_RST;
    } else if (c->pend & P_REQUEST) {
        h.op = VPKT_OP_REQUEST;
        c->pend &= ~P_REQUEST;
    } else if (c->pend & P_RESPONSE) {
        h.op = VPKT_OP_RESPONSE;
        c->pend &= ~P_RESPONSE;
    } else if (c->pend & P_SHUTDOWN_FULL) {
        h.op = VPKT_OP_SHUTDOWN;
        h.flags = VPKT_SHUTDOWN_RCV | VPKT_SHUTDOWN_SEND;
        c->pend &= ~P_SHUTDOWN_FULL;
    } else if (c->pend & P_SHUTDOWN_RCV) {
        h.op = VPKT_OP_SHUTDOWN;
        h.flags = VPKT_SHUTDOWN_RCV;
        c->pend &= ~P_SHUTDOWN_RCV;
    } else if (c->state == CS_HOST_CLOSED) {
        return 0;
    } else {
        if (!can_read(c) || room == 0)
            r = -EAGAIN;
        else if (c->type == VPKT_TYPE_SEQPACKET)
            r = rx_seq_data(d, c, pay, room, &n, &rwflags);
        else if (probe_host_rd(d, c))
            r = 2; /* its SHUT_RD goes before any byte still to read */
        else
            r = rx_data(d, c, pay, room, &n);
        if (r == 2) {
            h.op = VPKT_OP_SHUTDOWN;
            h.flags = VPKT_SHUTDOWN_RCV;
            c->pend &= ~P_SHUTDOWN_RCV;
        } else if (r == 1) {
            h.op = VPKT_OP_RW;
            h.len = n;
            h.flags = rwflags;
            c->tx_cnt += n;
            d->stats.rx_bytes += n;
        } else if (r == 0 && !c->host_shut_wr && d->ops->peer_closed && d->ops->peer_closed(d->ctx, c->fd) > 0) {
            /* The host program closed its socket: a full close. */
            host_closed(d, c);
            c->pend &= ~P_SHUTDOWN_FULL;
            h.op = VPKT_OP_SHUTDOWN;
            h.flags = VPKT_SHUTDOWN_RCV | VPKT_SHUTDOWN_SEND;
        } else if (r == 0) {
            /* The host program shut down its sending side only. */
            c->host_eof = 1;
            h.op = VPKT_OP_SHUTDOWN;
            h.flags = VPKT_SHUTDOWN_SEND;
        } else if (r != -EAGAIN) {
            conn_reset(d, c);
            h.op = VPKT_OP_RST;
        } else if (c->pend & P_CREDIT_REQUEST) {
            h.op = VPKT_OP_CREDIT_REQUEST;
            c->pend &= ~P_CREDIT_REQUEST;
            d->stats.credit_requests_sent++;
        } else if ((c->pend & P_CREDIT_UPDATE) ||
                   (room == 0 && can_read(c))) {
            /* A header-only buffer cannot carry data; a credit update is
             * always a valid use for it. */
            h.op = VPKT_OP_CREDIT_UPDATE;
            d->stats.credit_updates_sent++;
        } else {
            return 0;
        }
    }
    /* Every packet carries our current credit (5.10.6.3). */
    h.buf_alloc = c->buf_alloc;
    h.fwd_cnt = c->fwd_cnt;
    c->last_fwd_sent = c->fwd_cnt;
    c->pend &= ~P_CREDIT_UPDATE;
    used = vpkt_rx_finish(ch, &h);
    d->stats.rx_pkts++;
    if (vlog_level >= VLOG_DEBUG) {
        char opbuf[16];

        vlog(VLOG_DEBUG, "to guest %s %u -> %u len %u flags %#x credit %u/%u", vpkt_op_name(h.op, opbuf, sizeof(opbuf)),
             h.src_port, h.dst_port, h.len, h.flags, h.fwd_cnt, h.buf_alloc);
    }
    if (h.op == VPKT_OP_RST) {
        d->stats.rst_sent++;
        conn_free(d, c);
    } else if (h.op == VPKT_OP_SHUTDOWN) {
        check_done(d, c);
    }
    return used;
}

/* Which layout the guest gave a receive buffer we filled. */
static void count_rx_layout(struct vconn_dev *d, const struct vring_chain *ch)
{
    const struct vring_iov *w = ch->iov + ch->nout;

    if (ch->nin == 1)
        d->stats.rx_layout_single++;
    else if (ch->nin >= 2 && w[0].len == VPKT_HDR_LEN)
        d->stats.rx_layout_split++;
    else
        d->stats.rx_layout_other++;
}

static int rx_run(struct vconn_dev *d)
{
    struct vring_chain ch;
    struct vpkt_cursor pay;
    int budget, r;

    if (d->rx == NULL || !vring_ready(d->rx))
        return 0;
    for (budget = RX_BUDGET; budget > 0; budget--) {
        struct vconn *c;
        int64_t room;
        uint32_t used;

        if (d->nstray == 0 && d->rx_head == NULL)
            return 0;
        r = vring_pop(d->rx, d->mem, &ch);
        if (r < 0) {
            set_broken(d, "rx", r);
            return 0;
        }
        if (r == 0)
            return 0; /* no buffers: the guest kicks rx when it posts some */
        room = vpkt_rx_begin(&ch, &pay);
        if (room < 0) {
            /* Unusable, and the guest drops completions shorter than a
             * header (reference 1.6): hand it back empty. */
            vlog_peer("rx buffer of %llu writable bytes cannot hold a header", (unsigned long long)ch.in_len);
            vring_push(d->rx, ch.head, 0);
            continue;
        }
        if (d->nstray > 0) {
            vlog(VLOG_DEBUG, "to guest RST %u -> %u (no such connection)", d->stray[d->stray_first].src_port,
                 d->stray[d->stray_first].dst_port);
            used = vpkt_rx_finish(&ch, &d->stray[d->stray_first]);
            d->stray_first = (d->stray_first + 1) % MAX_STRAY;
            d->nstray--;
            d->stats.rx_pkts++;
            d->stats.rst_sent++;
            count_rx_layout(d, &ch);
            vring_push(d->rx, ch.head, used);
            continue;
        }
        c = d->rx_head;
        rx_list_remove(d, c);
        used = rx_produce(d, c, &ch, &pay, (uint32_t)room);
        if (used == 0) {
            vring_unpop(d->rx);
        } else {
            count_rx_layout(d, &ch);
            vring_push(d->rx, ch.head, used);
        }
        want(d, c);
    }
    return 1;
}

/* ---- timers ------------------------------------------------------------------------ */

static void run_timers(struct vconn_dev *d)
{
    uint64_t now, next = 0;
    unsigned b;

    if (d->next_deadline == 0)
        return;
    now = now_ms(d);
    if (now < d->next_deadline)
        return;
    for (b = 0; b < NBUCKETS; b++) {
        struct vconn *c = d->bucket[b], *cn;

        for (; c; c = cn) {
            cn = c->hnext;
            if (c->deadline == 0)
                continue;
            if (now >= c->deadline) {
                c->deadline = 0;
                if (c->state == CS_DEAD) {
                    conn_free(d, c); /* the guest never took its RST */
                    continue;
                }
                if (c->state == CS_GUEST_CONNECTING)
                    vlog(VLOG_INFO, "guest did not answer a connection to port %u: closing the host side",
                         c->guest_port);
                else if (c->offered && c->fd < 0)
                    vlog(VLOG_INFO, "the host's stream for guest port %u never came: resetting", c->guest_port);
                conn_reset(d, c); /* sets a new deadline */
            }
            if (c->state != CS_FREED && c->deadline && (next == 0 || c->deadline < next))
                next = c->deadline;
        }
    }
    d->next_deadline = next;
}

int vconn_next_timeout_ms(struct vconn_dev *d)
{
    uint64_t now;

    if (d->next_deadline == 0)
        return -1;
    now = now_ms(d);
    if (now >= d->next_deadline)
        return 0;
    return d->next_deadline - now > 60000 ? 60000 : (int)(d->next_deadline - now);
}

/* ---- public ------------------------------------------------------------------------ */

int vconn_dev_new(const struct vconn_config *cfg, const struct vconn_host_ops *ops, void *ctx,
                  struct vconn_dev **out)
{
    struct vconn_dev *d;

    /* 5.10.4: 0, 1, 2, 2^32-1 and 2^64-1 are reserved; the upper 32 bits
     * are reserved too. */
    if (cfg->guest_cid <= VPKT_CID_HOST || cfg->guest_cid >= 0xffffffffu || cfg->buf_alloc == 0 ||
        cfg->max_conns == 0)
        return -EINVAL;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    d->cfg = *cfg;
    d->ops = ops;
    d->ctx = ctx;
    *out = d;
    return 0;
}

static void bury(struct vconn_dev *d)
{
    while (d->graveyard) {
        struct vconn *c = d->graveyard;

        d->graveyard = c->hnext;
        free(c);
    }
}

void vconn_dev_free(struct vconn_dev *d)
{
    if (d == NULL)
        return;
    free_all(d);
    bury(d);
    free(d);
}

void vconn_set_features(struct vconn_dev *d, uint64_t features)
{
    d->seqpacket = (features >> VPKT_F_SEQPACKET) & 1;
}

void vconn_attach(struct vconn_dev *d, struct vring *rx, struct vring *tx, const struct vring_mem *mem)
{
    d->rx = rx;
    d->tx = tx;
    d->mem = mem;
}

int vconn_run(struct vconn_dev *d)
{
    int more = 0;

    run_timers(d);
    if (!d->broken)
        more |= tx_run(d);
    if (!d->broken)
        more |= rx_run(d);
    if (d->rx)
        (void)vring_notify(d->rx);
    if (d->tx)
        (void)vring_notify(d->tx);
    bury(d);
    return more;
}

void vconn_host_event(struct vconn_dev *d, void *cookie, unsigned events)
{
    struct vconn *c = cookie;
    int r;

    if (c->state == CS_FREED || c->fd < 0)
        return;
    if (c->state == CS_HOST_CONNECTING) {
        r = d->ops->connect_result(d->ctx, c->fd);
        if (r == -EINPROGRESS)
            return;
        if (r == 0) {
            c->state = CS_ESTABLISHED;
            c->pend |= P_RESPONSE;
            c->readable = c->writable = 1;
            (void)probe_host_rd(d, c); /* the accepting program may have shut it at once */
        } else if (r == -ETIMEDOUT) {
            /* Nobody answered (the Hyper-V refusal profile): the guest's
             * own connect timeout tells it. No RST: by now the guest may
             * be retrying on the same port, and this one would reset that. */
            vlog(VLOG_DEBUG, "guest port %u -> host port %u: no answer; forgotten", c->guest_port,
                 c->host_port);
            conn_free(d, c);
            return;
        } else {
            vlog(VLOG_DEBUG, "guest port %u -> host port %u failed: %s", c->guest_port, c->host_port,
                 strerror(-r));
            conn_reset(d, c);
        }
        want(d, c);
        return;
    }
    /* Hang-up after the host's half-close was passed on: now it closed. */
    if ((events & VCONN_EV_ERR) && c->state == CS_ESTABLISHED && c->host_eof && !c->host_shut_wr &&
        d->ops->peer_closed && d->ops->peer_closed(d->ctx, c->fd) > 0) {
        host_closed(d, c);
        return;
    }
    (void)probe_host_rd(d, c);
    if (events & (VCONN_EV_IN | VCONN_EV_ERR))
        c->readable = 1;
    if (events & (VCONN_EV_OUT | VCONN_EV_ERR)) {
        c->writable = 1;
        flush(d, c);
    }
    want(d, c);
}

int vconn_host_offer(struct vconn_dev *d, uint64_t token, uint32_t host_port, uint32_t guest_port,
                     uint32_t timeout_ms, unsigned type)
{
    struct vconn *c;

    if (d->broken || d->rx == NULL || d->tx == NULL || !vring_ready(d->rx) || !vring_ready(d->tx))
        return -ENETUNREACH;
    if (type != VPKT_TYPE_STREAM && !(type == VPKT_TYPE_SEQPACKET && d->seqpacket))
        return -EPROTONOSUPPORT;
    if (d->nconns >= d->cfg.max_conns)
        return -ENOBUFS;
    /* The daemon's port names the connection on both sides: no renaming. */
    c = conn_find(d, guest_port, host_port);
    if (c != NULL && c->state != CS_DEAD)
        return -EADDRINUSE;
    if (c != NULL)
        conn_free(d, c);
    c = conn_new(d, guest_port, host_port, -1, CS_GUEST_CONNECTING, (uint16_t)type);
    if (c == NULL)
        return -ENOMEM;
    c->offered = 1;
    c->token = token;
    stray_purge(d, guest_port, host_port);
    c->pend = P_REQUEST;
    /* No longer than the host program waits: a RESPONSE after that would
     * open a connection nobody takes, and block the tuple for a retry. */
    set_deadline(d, c, timeout_ms && timeout_ms < VCONN_TIMEOUT_MS ? timeout_ms : VCONN_TIMEOUT_MS);
    want(d, c);
    return 0;
}

int vconn_host_attach(struct vconn_dev *d, int fd, uint32_t host_port, uint32_t guest_port, unsigned type)
{
    struct vconn *c = conn_find(d, guest_port, host_port);
    int rc;

    /* A socket of the other type would break the message boundaries. */
    if (c == NULL || !c->offered || c->fd >= 0 || (c->state != CS_ESTABLISHED && c->state != CS_CLOSING) ||
        c->type != type)
        return -ENOENT;
    rc = d->ops->watch(d->ctx, fd, c);
    if (rc < 0)
        return rc;
    c->fd = fd;
    c->readable = 1;
    c->writable = 1;
    if (c->state == CS_ESTABLISHED)
        c->deadline = 0;
    /* What the guest sent meanwhile waits in c->buf. */
    flush(d, c);
    (void)probe_host_rd(d, c);
    want(d, c);
    return 0;
}

void vconn_reset(struct vconn_dev *d)
{
    free_all(d);
    /* A reset guest has forgotten every connection: no late packets. */
    memset(d->recent, 0, sizeof(d->recent));
    d->broken = 0;
}

int vconn_broken(const struct vconn_dev *d)
{
    return d->broken;
}

void vconn_get_stats(const struct vconn_dev *d, struct vconn_stats *out)
{
    *out = d->stats;
    out->conns = d->nconns;
}
