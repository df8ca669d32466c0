/* SPDX-License-Identifier: MIT */
/*
 * handlers_part.c: what a partition's processes ask of hvsimd on their
 * control connection (HELLO, BIND, UNBIND, LISTEN, CONNECT). route.c makes
 * every decision; these turn messages into its requests and its answers into
 * replies, and keep the bind table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlog.h"
#include "hvproto/mutants.h"
#include "server_int.h"

/* A connection over its partition's ceiling: told so, as a full descriptor
 * table tells socket() (EMFILE), and dropped. */
static int refuse_hello(struct req *r)
{
    char why[160];

    snprintf(why, sizeof(why), "partition %s has %u control connections, its ceiling (max_connections_per_partition)",
             r->c->part->name, r->c->part->nconns);
    (void)reply_err(r->c, HVSIM_MSG_HELLO_REPLY, r->h.seq, -EMFILE, why);
    return -1;
}

int h_hello(struct req *r)
{
    struct hvsim_msg_hello_reply out = { 0 };
    struct part *p = r->c->part;
    struct hvsim_msg_hello m;
    int rc;

    memcpy(&m, r->body, sizeof(m));
    if (m.version != HVSIM_PROTO_VERSION) {
        char why[128];

        /* Said plainly, since the client library shows it to the user. */
        snprintf(why, sizeof(why), "this hvsimd speaks protocol %u, the program's libhvsim %u: use one build",
                 HVSIM_PROTO_VERSION, m.version);
        return reply_err(r->c, HVSIM_MSG_HELLO_REPLY, r->h.seq, -EPROTO, why);
    }
    if (r->c->refuse)
        return refuse_hello(r);
    if (r->c->admin || r->c->evt_fd >= 0 || r->fd < 0)
        return reply_err(r->c, HVSIM_MSG_HELLO_REPLY, r->h.seq, -EPROTO, "HELLO: once, with an event socket");
    rc = proc_attach(r->s, r->c, r->fd);
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_HELLO_REPLY, r->h.seq, rc, NULL);
    r->fd = -1;
    out.self = p->id;
    out.host = r->s->m.host.id;
    memcpy(out.name, p->name, sizeof(out.name));
    out.is_host = (uint32_t)p->is_host;
    out.cid = p->is_host ? VMADDR_CID_HOST : p->cid;
    out.instance = r->s->m.instance;
    out.win_timeout_ms = r->s->m.set.win_timeout_ms;
    out.linux_timeout_ms = r->s->m.set.linux_timeout_ms;
    out.timeout_clamp = r->s->m.set.timeout_clamp;
    out.transport = p->transport;
    out.kernel = p->kernel;
    /* With the routing epoch's page (spares.c), when there is one. */
    return hvsim__msg_send(r->c->fd, HVSIM_MSG_HELLO_REPLY, 0, r->h.seq, &out, sizeof(out), NULL, 0,
                           r->s->epoch_fd);
}

int h_bind(struct req *r)
{
    struct hvsim_msg_bind m;
    struct hvsim_msg_bind_reply out = { 0 };
    struct route_bind_req rq;
    struct bind *b;
    int rc, listen_err;

    memcpy(&m, r->body, sizeof(m));
    if (m.personality > HVSIM_PERS_VSOCK_HOST)
        return reply_err(r->c, HVSIM_MSG_BIND_REPLY, r->h.seq, -EINVAL, "unknown personality");
    rq = (struct route_bind_req){ r->c->part, m.personality, m.flags, m.vmid, m.svc };
    rc = route_bind(&r->s->m, &rq, &out.vmid, &out.svc, &listen_err);
    dlog_bind(r->c, m.personality, rc < 0 ? &m.vmid : &out.vmid, rc < 0 ? &m.svc : &out.svc, rc);
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_BIND_REPLY, r->h.seq, rc, NULL);
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return reply_err(r->c, HVSIM_MSG_BIND_REPLY, r->h.seq, -ENOMEM, NULL);
    b->owner = r->c;
    b->part = r->c->part;
    b->pers = m.personality;
    b->flags = m.flags;
    b->vmid = out.vmid;
    b->svc = out.svc;
    b->listen_err = listen_err;
    b->gw_fd = -1;
    if (model_bind_add(&r->s->m, b) < 0) {
        free(b);
        return reply_err(r->c, HVSIM_MSG_BIND_REPLY, r->h.seq, -ENOMEM, NULL);
    }
    out.bind_id = b->id;
    return reply(r->c, HVSIM_MSG_BIND_REPLY, r->h.seq, &out, sizeof(out));
}

static struct bind *own_bind(struct req *r, uint64_t id)
{
    struct bind *b = model_bind_find(&r->s->m, id);

    return b && b->owner == r->c ? b : NULL;
}

int h_unbind(struct req *r)
{
    struct hvsim_msg_unbind m;
    struct bind *b;

    memcpy(&m, r->body, sizeof(m));
    b = own_bind(r, m.bind_id);
    if (b)
        bind_remove(r->s, b);
    /* The closer waits for this: a peer told "closed" afterwards must not be
     * routed to the dead listener. */
    return reply(r->c, HVSIM_MSG_UNBIND, r->h.seq, &m, sizeof(m));
}

/* A listener's file is its own: any process that connects learns a
 * listener's file name from its CONNECT reply, and a bind that took that name
 * as its own would be routed there and, when closed, remove the other's file
 * (listener_file_remove). 1 when another bind holds name. */
static int uname_held(const struct model *m, const struct bind *b, const char *name)
{
    size_t i;

    for (i = 0; i < m->nbinds; i++) {
        const struct bind *o = m->binds[i];

        if (o != b && o->listening && strcmp(o->uname, name) == 0)
            return 1;
    }
    return 0;
}

int h_listen(struct req *r)
{
    struct hvsim_msg_listen m;
    struct hvsim_msg_listen_reply out;
    struct bind *b;
    int rc;

    memcpy(&m, r->body, sizeof(m));
    b = own_bind(r, m.bind_id);
    if (b == NULL)
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EINVAL, "not bound");
    m.uname[sizeof(m.uname) - 1] = '\0';
    if (!hvsim__listener_name_ok(m.uname))
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EINVAL,
                         "bad listener name: expected the name of a socket file in HVSIM_DIR/l/");
    if (uname_held(&r->s->m, b, m.uname))
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EADDRINUSE,
                         "listener name in use: that socket file is another listener's");
    rc = route_listen(&r->s->m, b);
    dlog_listen(r->c, b, rc);
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, rc, NULL);
    if (m.gateway) {
        rc = gateway_open(r, b, m.gateway);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    memcpy(b->uname, m.uname, sizeof(b->uname));
    b->uname[sizeof(b->uname) - 1] = '\0';
    /* listeners_open made sure every such path fits. */
    if (snprintf(b->path, sizeof(b->path), "%.*s/" HVSIM_LISTENER_DIR "/%s", (int)(sizeof(b->path) - 28), r->s->dir,
                 b->uname) >= (int)sizeof(b->path))
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -ENAMETOOLONG, "HVSIM_DIR too long for listeners");
    /* The socket's type is the bind's: a LISTEN cannot change it. */
    b->flags = (m.flags & ~HVSIM_SF_SEQPACKET) | (b->flags & HVSIM_SF_SEQPACKET);
    b->backlog = m.backlog;
    r->s->m.track_gen++;
    if (!b->listening)
        hvsim__random(b->key, sizeof(b->key));
    b->listening = 1;
    memcpy(out.key, b->key, sizeof(out.key));
    rc = reply(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, &out, sizeof(out));
    /* After the reply: the listener knows its key before a connection comes. */
    if (rc >= 0 && !b->part->is_host)
        waiting_retry(r->s, b->part);
    return rc;
}

void connect_reply_fill(struct server *s, const struct route_conn_res *res, struct hvsim_msg_connect_reply *out)
{
    struct hvsim_ticket *t = &out->ticket;

    memset(out, 0, sizeof(*out));
    out->outcome = res->outcome;
    if (res->listener == NULL)
        return;
    out->vanished = res->vanished;
    out->local = res->conn_local;
    out->peer = res->conn_peer;
    memcpy(out->uname, res->listener->path, sizeof(out->uname));
    t->magic = HVSIM_TICKET_MAGIC;
    t->version = HVSIM_PROTO_VERSION;
    t->conn_id = s->m.next_conn_id++;
    t->expires_ns = hvsim__now_ns() + TICKET_LIFETIME_NS;
    t->local = res->acc_local;
    t->peer = res->acc_peer;
    hvsim__conn_tag(t->conn_id, res->listener->key, out->tag);
    if (res->outcome.verdict != HVSIM_VERDICT_PENDING)
        hvsim__ticket_sign(t, res->listener->key);
}

/* A blocking host connect to a guest nobody listens on waits for a
 * listener (waiting.c, hyperv-sockets.md 7 item 1). */
static int waits(const struct hvsim_msg_connect *m, const struct route_conn_res *res)
{
    return m->blocking && res->outcome.verdict == HVSIM_VERDICT_NOANSWER && res->outcome.rule == HVSIM_RULE_NO_ANSWER &&
           res->to != NULL && !res->to->is_host && !HVSIM_MUTANT(CONNECT_HOST_WAITS);
}

int h_connect(struct req *r)
{
    struct hvsim_msg_connect m;
    struct hvsim_msg_connect_reply out;
    struct hvsim_spare spares[HVSIM_SPARES_MAX];
    struct route_conn_req rq;
    struct route_conn_res res;
    int rc;

    memcpy(&m, r->body, sizeof(m));
    if (m.personality > HVSIM_PERS_VSOCK_HOST)
        return reply_err(r->c, HVSIM_MSG_CONNECT_REPLY, r->h.seq, -EINVAL, "unknown personality");
    rq = (struct route_conn_req){ .from = r->c->part, .pers = m.personality, .flags = m.flags,
                                  .timeout_ms = m.timeout_ms, .vmid = m.vmid, .svc = m.svc };
    if (m.bind_id)
        rq.bound = own_bind(r, m.bind_id);
    rc = route_connect(&r->s->m, &rq, &res);
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_CONNECT_REPLY, r->h.seq, rc, NULL);
    if (r->c->part->is_host && waits(&m, &res)) {
        struct hvsim_outcome wait = { .verdict = HVSIM_VERDICT_PENDING, .wait_ms = res.outcome.wait_ms,
                                      .rule = HVSIM_RULE_WAIT_LISTENER };

        dlog_connect(r->c, m.personality, &m.vmid, &m.svc, res.to->name, &wait, NULL);
        rc = waiting_start(r, &rq, res.to, res.outcome.wait_ms);
        if (rc <= 0)
            return rc;
    } else {
        dlog_connect(r->c, m.personality, &m.vmid, &m.svc, res.to ? res.to->name : NULL, &res.outcome,
                     res.listener ? &res.vanished : NULL);
    }
    connect_reply_fill(r->s, &res, &out);
    if (res.outcome.verdict == HVSIM_VERDICT_PENDING)
        return offer_start(r, res.listener, &out);
    out.epoch = epoch_now(r->s);
    out.nspares = spares_issue(r, &rq, &m, &res, spares, m.spares);
    rc = reply_extra(r->c, HVSIM_MSG_CONNECT_REPLY, r->h.seq, &out, sizeof(out), spares,
                     out.nspares * sizeof(spares[0]));
    if (rc >= 0 && res.outcome.verdict == HVSIM_VERDICT_OK)
        track_connect(r->s, r->c, m.personality, &out, res.listener);
    return rc;
}
