/* SPDX-License-Identifier: MIT */
/*
 * gateway.c: hvsimd's side of a VM back-end's gateway (proto.h, OFFER and
 * VERDICT): a host connect to a VM that has one waits for the guest's answer.
 *
 * A back-end (hvsim-vhost) LISTENs from its VM's partition with a channel;
 * route.c sends connects for that VM to it; the connector gets PENDING and a
 * socket of its own to wait on, the back-end an OFFER, and the verdict (or the
 * deadline, or the channel going) decides the CONNECT_REPLY on that socket.
 * The waiting connects are s->offers; nothing else touches them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dlog.h"
#include "server_int.h"

/* A gateway's SEQPACKET listener: the same back-end's, beside its channel. */
static int gateway_open_seqpacket(struct req *r, struct bind *b)
{
    const struct bind *gw = route_gateway(&r->s->m, b->part);
    size_t i;

    if (!(b->flags & HVSIM_SF_SEQPACKET) || r->fd >= 0)
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EINVAL,
                         "a gateway's SEQPACKET listener is a SEQPACKET socket and carries no channel") < 0 ? -1 : 1;
    if (gw == NULL || gw->owner != b->owner)
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EINVAL,
                         "listen as the VM's gateway first: a SEQPACKET listener joins its own process's gateway")
               < 0 ? -1 : 1;
    for (i = 0; i < r->s->m.nbinds; i++) {
        const struct bind *o = r->s->m.binds[i];

        if (o != b && o->gateway == HVSIM_GW_SEQPACKET && o->part == b->part)
            return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EADDRINUSE,
                             "this VM's gateway has a SEQPACKET listener already") < 0 ? -1 : 1;
    }
    b->gateway = HVSIM_GW_SEQPACKET;
    return 0;
}

/* Returns 0 (the caller replies OK), 1 (an error reply was sent) or -1 (drop the client). */
int gateway_open(struct req *r, struct bind *b, unsigned kind)
{
    size_t i;
    int rc;

    if (r->c->part->is_host || b->pers != HVSIM_PERS_LINUX)
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EINVAL,
                         "a gateway serves a VM: listen from the VM's partition, on an AF_VSOCK socket") < 0 ? -1 : 1;
    if (kind == HVSIM_GW_SEQPACKET)
        return b->gateway == kind ? 0 : gateway_open_seqpacket(r, b);
    if (kind != HVSIM_GW_STREAM || (b->flags & HVSIM_SF_SEQPACKET))
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EINVAL,
                         "bad gateway kind: expected 1 (a stream socket, with its channel) or 2 (SEQPACKET)") < 0 ? -1
                                                                                                                : 1;
    if (r->fd < 0)
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EINVAL, "a gateway LISTEN carries its channel")
               < 0 ? -1 : 1;
    for (i = 0; i < r->s->m.nbinds; i++) {
        const struct bind *o = r->s->m.binds[i];

        if (o != b && o->gateway == HVSIM_GW_STREAM && o->gw_fd >= 0 && o->part == b->part)
            return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EADDRINUSE,
                             "this VM has a gateway already (one back-end per VM)") < 0 ? -1 : 1;
    }
    if (b->gateway)
        return 0;
    fcntl(r->fd, F_SETFL, O_NONBLOCK);
    rc = watch(r->s, r->fd, b, W_GATEWAY);
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, rc, NULL) < 0 ? -1 : 1;
    b->gateway = HVSIM_GW_STREAM;
    b->gw_fd = r->fd;
    r->fd = -1;
    return 0;
}

/* Answer a waiting connector and forget the offer; the router says what
 * the guest's answer means for the connector (route_guest_answer). */
static void offer_finish(struct server *s, size_t i, unsigned answer)
{
    struct offer o = s->offers[i];
    uint64_t now = hvsim__now_ns();
    uint32_t left = o.deadline_ns > now ? (uint32_t)((o.deadline_ns - now + 999999) / 1000000u) : 0;
    struct hvsim_outcome out = route_guest_answer(&s->m, answer, left);

    s->offers[i] = s->offers[--s->noffers];
    if (out.verdict == HVSIM_VERDICT_OK) {
        o.reply.ticket.expires_ns = now + TICKET_LIFETIME_NS;
        hvsim__ticket_sign(&o.reply.ticket, o.key);
    } else {
        memset(&o.reply, 0, sizeof(o.reply));
    }
    o.reply.outcome = out;
    dlog_connect(o.c, o.req.personality, &o.req.vmid, &o.req.svc, o.to, &out, NULL);
    /* A connector that gave up (a signal) has closed its end: nothing lost. */
    if (hvsim__msg_send(o.reply_fd, HVSIM_MSG_CONNECT_REPLY, 0, o.seq, &o.reply, sizeof(o.reply), NULL, 0, -1) == 0 &&
        out.verdict == HVSIM_VERDICT_OK)
        track_connect(s, o.c, o.req.personality, &o.reply, model_bind_find(&s->m, o.bind_id));
    close(o.reply_fd);
}

/* The VM's gateway already has max_pending_connects waiting: as a full
 * virtio-vsock backlog, the request is reset at once (ECONNRESET); Winsock
 * names a resource limit WSAENOBUFS. Returns 1 when it replied so. */
static int offer_over_ceiling(struct req *r, const struct bind *gw, const struct hvsim_msg_connect *creq)
{
    uint32_t pers = creq->personality;
    struct hvsim_msg_connect_reply out;
    uint32_t n = 0;
    size_t i;

    for (i = 0; i < r->s->noffers; i++)
        n += r->s->offers[i].bind_id == gw->id;
    if (n < r->s->m.set.max_pending)
        return 0;
    memset(&out, 0, sizeof(out));
    out.outcome.verdict = HVSIM_VERDICT_REFUSE;
    out.outcome.error = pers == HVSIM_PERS_WINDOWS ? -ENOBUFS : -ECONNRESET;
    out.outcome.rule = HVSIM_RULE_LIMIT_PENDING;
    dlog_connect(r->c, pers, &creq->vmid, &creq->svc, gw->part->name, &out.outcome, NULL);
    return reply(r->c, HVSIM_MSG_CONNECT_REPLY, r->h.seq, &out, sizeof(out)) < 0 ? -1 : 1;
}

int offer_start(struct req *r, const struct bind *lis, const struct hvsim_msg_connect_reply *ok)
{
    struct server *s = r->s;
    /* Offers of both kinds go through the gateway's one channel. */
    const struct bind *gw = lis->gateway == HVSIM_GW_SEQPACKET ? route_gateway(&s->m, lis->part) : lis;
    struct hvsim_msg_offer m = { 0 };
    struct hvsim_msg_connect_reply pending = { .outcome = ok->outcome };
    uint32_t timeout_ms = ok->outcome.wait_ms;
    struct offer *o;
    int sv[2], rc;
    struct hvsim_msg_connect creq;

    memcpy(&creq, r->body, sizeof(creq));
    if (gw == NULL) /* the router found it in this same turn of the loop */
        return reply_err(r->c, HVSIM_MSG_CONNECT_REPLY, r->h.seq, -ECONNRESET, "the VM's gateway is gone");
    rc = offer_over_ceiling(r, gw, &creq);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (s->noffers == s->coffers) {
        size_t nc = s->coffers ? s->coffers * 2 : 16;
        struct offer *t = realloc(s->offers, nc * sizeof(*t));

        if (t == NULL)
            return reply_err(r->c, HVSIM_MSG_CONNECT_REPLY, r->h.seq, -ENOMEM, NULL);
        s->offers = t;
        s->coffers = nc;
    }
    /* The connector waits on its own socket, not the request connection,
     * so its process's other calls are not held up by the guest. */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
        return reply_err(r->c, HVSIM_MSG_CONNECT_REPLY, r->h.seq, -errno, NULL);
    if (hvsim__msg_send(r->c->fd, HVSIM_MSG_CONNECT_REPLY, 0, r->h.seq, &pending, sizeof(pending), NULL, 0, sv[1]) <
        0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    close(sv[1]);
    o = &s->offers[s->noffers];
    memset(o, 0, sizeof(*o));
    o->reply_fd = sv[0];
    o->id = ++s->next_offer;
    o->bind_id = gw->id;
    o->c = r->c;
    o->seq = r->h.seq;
    o->deadline_ns = hvsim__now_ns() + (uint64_t)timeout_ms * 1000000u;
    memcpy(o->key, lis->key, sizeof(o->key));
    o->reply = *ok;
    o->req = creq;
    snprintf(o->to, sizeof(o->to), "%s", gw->part->name);
    s->noffers++;
    m.id = o->id;
    m.svc = ok->ticket.local.svc;
    m.peer_svc = ok->ticket.peer.svc;
    m.peer_partition = r->c->part->id;
    /* The ports the gateway's accept will report: Data1, template or not. */
    m.port = m.svc.Data1;
    m.peer_port = m.peer_svc.Data1;
    m.timeout_ms = timeout_ms;
    m.flags = creq.flags & HVSIM_SF_SEQPACKET;
    /* A back-end that cannot take the question is a guest that does not answer. */
    if (hvsim__msg_send(gw->gw_fd, HVSIM_MSG_OFFER, 0, 0, &m, sizeof(m), NULL, 0, -1) < 0)
        offer_finish(s, s->noffers - 1, HVSIM_GW_SILENT);
    return 0;
}

/* The channel fd came from the back-end, which may keep a copy of it: epoll
 * watches the open file, not the fd, so close() alone would leave it
 * reporting forever. */
static void gateway_close(struct server *s, struct bind *b)
{
    if (b->gateway && b->gw_fd >= 0) {
        (void)epoll_ctl(s->ep, EPOLL_CTL_DEL, b->gw_fd, NULL);
        close(b->gw_fd);
        b->gw_fd = -1;
    }
}

void bind_remove(struct server *s, struct bind *b)
{
    gateway_close(s, b);
    listener_file_remove(s, b);
    model_bind_remove(&s->m, b);
}

void gateway_readable(struct server *s, struct bind *b)
{
    for (;;) {
        struct hvsim_msg_hdr h;
        struct hvsim_msg_verdict v;
        ssize_t n = hvsim__msg_recv(b->gw_fd, s->buf, HVSIM_MSG_MAX, NULL);
        size_t i;

        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            if (n < 0)
                logmsg("the gateway of VM %s broke the protocol (%s): closed", b->part->name,
                       hvsim_err_name((int)n));
            gateway_close(s, b);
            return;
        }
        memcpy(&h, s->buf, sizeof(h));
        if (h.type != HVSIM_MSG_VERDICT || h.status != 0) {
            logmsg("the gateway of VM %s sent %s where only VERDICT may come: closed", b->part->name,
                   hvsim__msg_name(h.type));
            gateway_close(s, b);
            return;
        }
        memcpy(&v, s->buf + sizeof(h), sizeof(v));
        if (v.answer > HVSIM_GW_NO_SEQPACKET) {
            logmsg("the gateway of VM %s sent verdict %u (expected 0-3): closed", b->part->name, v.answer);
            gateway_close(s, b);
            return;
        }
        /* An unknown id is a verdict that came after the deadline: ignored. */
        for (i = 0; i < s->noffers; i++) {
            if (s->offers[i].id == v.id && s->offers[i].bind_id == b->id) {
                offer_finish(s, i, v.answer);
                break;
            }
        }
    }
}

/* After every batch of events: offers whose gateway is gone or whose time is
 * up are answered (drop_proc already forgot those whose connector left). Returns the
 * epoll timeout until the next deadline (-1: none). */
int offers_sweep(struct server *s)
{
    uint64_t now = hvsim__now_ns(), next = 0;
    size_t i = 0;

    while (i < s->noffers) {
        struct offer *o = &s->offers[i];
        struct bind *b = model_bind_find(&s->m, o->bind_id);

        if (b == NULL || b->gw_fd < 0 || now >= o->deadline_ns) {
            offer_finish(s, i, HVSIM_GW_SILENT);
            continue;
        }
        if (next == 0 || o->deadline_ns < next)
            next = o->deadline_ns;
        i++;
    }
    if (next == 0)
        return -1;
    return (int)((next - now + 999999) / 1000000u);
}

void offers_forget(struct server *s, const struct proc *c)
{
    size_t i;

    /* A new client may get this address, and must never receive another's reply. */
    for (i = 0; i < s->noffers;) {
        if (s->offers[i].c == c) {
            close(s->offers[i].reply_fd);
            s->offers[i] = s->offers[--s->noffers];
        } else {
            i++;
        }
    }
}

void offers_free(struct server *s)
{
    while (s->noffers)
        close(s->offers[--s->noffers].reply_fd);
    free(s->offers);
    s->offers = NULL;
    s->coffers = 0;
}
