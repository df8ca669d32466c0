/* SPDX-License-Identifier: MIT */
/*
 * server.c: hvsimd's event loop and message handlers.
 *
 * One thread, one epoll set: the admin socket (hvsimctl), one control socket
 * per partition (DIR/host.sock, DIR/vm/<name>.sock, mode 0600, so the file
 * system decides who may act as which partition), the attached processes, and
 * a signalfd for SIGTERM. Every message from a client is checked by
 * proto.c before a handler sees it; a client that breaks the protocol is
 * dropped, never the daemon. Handlers are one table indexed by message type.
 * The daemon never sees stream data: it decides, and the processes connect
 * to each other.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "hvproto/util.h"
#include "persist.h"
#include "hvproto/regfile.h"
#include "server.h"

enum { W_ADMIN = 1, W_PART = 2, W_PROC = 3, W_GATEWAY = 4 }; /* low bits of epoll data */
#define W_MASK 7u
#define TICKET_LIFETIME_NS (10ull * 1000000000ull)

/* A connect waiting for a gateway's verdict (see "gateway" below). */
struct offer {
    uint64_t id;
    uint64_t bind_id; /* the gateway's bind */
    struct proc *c; /* the connector, only so that drop_proc can forget the offer */
    int reply_fd; /* where the connector waits for its CONNECT_REPLY (HVSIM_VERDICT_PENDING) */
    uint32_t seq;
    uint64_t deadline_ns;
    uint8_t key[16]; /* the gateway listener's, to sign the ticket on acceptance */
    struct hvsim_msg_connect_reply reply; /* the OK reply, ticket unsigned */
};

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("hvsimd: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int watch(struct server *s, int fd, void *obj, unsigned kind)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)(uintptr_t)obj | kind };

    return epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int part_sock_path(const struct server *s, const struct part *p, char *out, size_t len)
{
    int n = p->is_host ? snprintf(out, len, "%s/host.sock", s->dir) : snprintf(out, len, "%s/vm/%s.sock", s->dir, p->name);

    return n < 0 || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path) || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int listen_unix(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    mode_t old;
    int fd, rc;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    unlink(path);
    /* Only the owner may act as this partition: the mode is the identity check. */
    old = umask(077);
    rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || listen(fd, 128) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

static int open_part(struct server *s, struct part *p)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int rc = part_sock_path(s, p, path, sizeof(path));

    if (rc < 0)
        return rc;
    rc = listen_unix(path);
    if (rc < 0)
        return rc;
    p->listen_fd = rc;
    return watch(s, p->listen_fd, p, W_PART);
}

static void close_part(struct server *s, struct part *p)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];

    if (p->listen_fd >= 0) {
        close(p->listen_fd);
        p->listen_fd = -1;
        if (part_sock_path(s, p, path, sizeof(path)) == 0)
            unlink(path);
    }
}

/* ---- persistence -------------------------------------------------------------------- */

static int save_state(struct server *s, char *err, size_t errlen)
{
    persist_t p = { 0 };
    persist_setting_t *set = NULL;
    size_t i, n = settings_count();
    int rc;

    if (s->state_dir[0] == '\0')
        return 0;
    p.host_id = s->m.host.id;
    p.nvms = s->m.nvms;
    p.vms = calloc(p.nvms ? p.nvms : 1, sizeof(*p.vms));
    set = calloc(n, sizeof(*set));
    if (p.vms == NULL || set == NULL) {
        free(p.vms);
        free(set);
        return -ENOMEM;
    }
    for (i = 0; i < s->m.nvms; i++) {
        struct part *v = s->m.vms[i];

        p.vms[i].info.id = v->id;
        memcpy(p.vms[i].info.name, v->name, sizeof(v->name));
        p.vms[i].info.kind = v->kind;
        p.vms[i].info.state = v->state;
        p.vms[i].info.cid = v->cid;
        p.vms[i].hcs = v->hcs;
        p.vms[i].nhcs = v->nhcs;
    }
    p.services = s->m.services;
    p.nservices = s->m.nservices;
    for (i = 0; i < n; i++) {
        const char *name, *choices, *conf;

        settings_doc(i, &name, &choices, &conf);
        snprintf(set[i].name, sizeof(set[i].name), "%s", name);
        settings_get(&s->m.set, name, set[i].value, sizeof(set[i].value));
    }
    p.settings = set;
    p.nsettings = n;
    rc = persist_save(s->state_dir, &p, err, errlen);
    free(p.vms);
    free(set);
    return rc;
}

static int load_state(struct server *s, char *err, size_t errlen)
{
    persist_t p = { 0 };
    size_t i, j;
    int rc;

    if (s->state_dir[0] == '\0')
        return 0;
    rc = persist_load(s->state_dir, &p, err, errlen);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    if (!hvsim_guid_equal(&p.host_id, &HV_GUID_ZERO))
        s->m.host.id = p.host_id;
    for (i = 0; i < p.nsettings && rc == 0; i++)
        rc = settings_set(&s->m.set, p.settings[i].name, p.settings[i].value, err, errlen);
    for (i = 0; i < p.nservices && rc == 0; i++)
        rc = model_service_add(&s->m, &p.services[i].id, p.services[i].element_name);
    for (i = 0; i < p.nvms && rc == 0; i++) {
        struct part *v;

        rc = model_vm_add(&s->m, p.vms[i].info.name, &p.vms[i].info.id, p.vms[i].info.kind, &v, err, errlen);
        if (rc < 0)
            break;
        v->state = p.vms[i].info.state;
        v->cid = p.vms[i].info.cid;
        for (j = 0; j < p.vms[i].nhcs && rc == 0; j++)
            rc = model_hcs_set(v, &p.vms[i].hcs[j]);
    }
    persist_free(&p);
    return rc;
}

/* ---- processes ------------------------------------------------------------------------ */

static void bind_remove(struct server *s, struct bind *b);

static void drop_proc(struct server *s, struct proc *c)
{
    struct proc **pp;
    size_t i;

    for (i = 0; i < s->m.nbinds;) {
        if (s->m.binds[i]->owner == c)
            bind_remove(s, s->m.binds[i]);
        else
            i++;
    }
    /* Its waiting connects go with it: a new client may get this address,
     * and must never receive another's reply. */
    for (i = 0; i < s->noffers;) {
        if (s->offers[i].c == c) {
            close(s->offers[i].reply_fd);
            s->offers[i] = s->offers[--s->noffers];
        } else {
            i++;
        }
    }
    for (pp = &s->m.procs; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    close(c->fd);
    if (c->evt_fd >= 0)
        close(c->evt_fd);
    free(c);
}

static void accept_client(struct server *s, int lfd, struct part *p, int admin)
{
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    struct proc *c;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0)
        return;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->evt_fd = -1;
    c->admin = admin;
    c->part = admin ? &s->m.host : p;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
        c->pid = cred.pid;
        c->uid = cred.uid;
    }
    if (watch(s, fd, c, W_PROC) < 0) {
        close(fd);
        free(c);
        return;
    }
    c->next = s->m.procs;
    s->m.procs = c;
}

static void broadcast(struct server *s, const GUID *vmid, uint32_t event)
{
    struct hvsim_msg_event ev = { .vmid = *vmid, .event = event };
    struct proc *c;

    for (c = s->m.procs; c; c = c->next) {
        if (c->evt_fd < 0)
            continue;
        /* A process that does not read its events (stopped, say) loses this
         * one; its peers' processes break the same connections. */
        if (hvsim__msg_send(c->evt_fd, HVSIM_MSG_EVENT, 0, 0, &ev, sizeof(ev), NULL, 0, -1) < 0)
            logmsg("event to pid %d dropped", (int)c->pid);
    }
}

static void signal_vm(struct server *s, const struct part *p, int sig)
{
    struct proc *c;

    for (c = s->m.procs; c; c = c->next)
        if (c->part == p && !c->admin && c->pid > 0 && c->pid != getpid())
            kill(c->pid, sig);
}

/* ---- replies ---------------------------------------------------------------------------- */

static int reply(struct proc *c, unsigned type, uint32_t seq, const void *body, size_t len)
{
    return hvsim__msg_send(c->fd, type, 0, seq, body, len, NULL, 0, -1);
}

static int reply_extra(struct proc *c, unsigned type, uint32_t seq, const void *body, size_t len, const void *extra,
                       size_t elen)
{
    return hvsim__msg_send(c->fd, type, 0, seq, body, len, extra, elen, -1);
}

static int reply_err(struct proc *c, unsigned type, uint32_t seq, int err, const char *text)
{
    return hvsim__msg_send(c->fd, type, err, seq, NULL, 0, text, text ? strlen(text) : 0, -1);
}

/* ---- handlers ---------------------------------------------------------------------------- */

struct req {
    struct server *s;
    struct proc *c;
    struct hvsim_msg_hdr h;
    const char *body; /* h.len bytes, checked against the type's size */
    int fd; /* passed fd or -1; a handler that keeps it sets this to -1 */
};

typedef int handler_fn(struct req *r);

static int h_hello(struct req *r)
{
    struct hvsim_msg_hello_reply out = { 0 };
    struct part *p = r->c->part;

    struct hvsim_msg_hello m;

    memcpy(&m, r->body, sizeof(m));
    if (m.version != HVSIM_PROTO_VERSION) {
        char why[128];

        /* Said plainly, since the client library shows it to the user. */
        snprintf(why, sizeof(why), "this hvsimd speaks protocol %u, the program's libhvsim %u: use one build",
                 HVSIM_PROTO_VERSION, m.version);
        return reply_err(r->c, HVSIM_MSG_HELLO_REPLY, r->h.seq, -EPROTO, why);
    }
    if (r->c->admin || r->c->evt_fd >= 0 || r->fd < 0)
        return reply_err(r->c, HVSIM_MSG_HELLO_REPLY, r->h.seq, -EPROTO, "HELLO: once, with an event socket");
    r->c->evt_fd = r->fd;
    r->fd = -1;
    fcntl(r->c->evt_fd, F_SETFL, O_NONBLOCK);
    out.self = p->id;
    out.host = r->s->m.host.id;
    memcpy(out.name, p->name, sizeof(out.name));
    out.is_host = (uint32_t)p->is_host;
    out.cid = p->is_host ? VMADDR_CID_HOST : p->cid;
    out.instance = r->s->m.instance;
    out.win_timeout_ms = r->s->m.set.win_timeout_ms;
    out.linux_timeout_ms = r->s->m.set.linux_timeout_ms;
    out.timeout_clamp = r->s->m.set.timeout_clamp;
    if (r->s->m.mutant)
        snprintf(out.mutant, sizeof(out.mutant), "%s", r->s->m.mutant);
    return reply(r->c, HVSIM_MSG_HELLO_REPLY, r->h.seq, &out, sizeof(out));
}

static int h_bind(struct req *r)
{
    struct hvsim_msg_bind m;
    struct hvsim_msg_bind_reply out = { 0 };
    struct route_bind_req rq;
    struct bind *b;
    int rc, not_taken;

    memcpy(&m, r->body, sizeof(m));
    if (m.personality > HVSIM_PERS_VSOCK_HOST)
        return reply_err(r->c, HVSIM_MSG_BIND_REPLY, r->h.seq, -EINVAL, "unknown personality");
    rq = (struct route_bind_req){ r->c->part, m.personality, m.flags, m.vmid, m.svc };
    rc = route_bind(&r->s->m, &rq, &out.vmid, &out.svc, &not_taken);
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
    b->not_taken = not_taken;
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

static int h_unbind(struct req *r)
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

/* ---- gateway: a VM back-end asked about host connections (proto.h, OFFER) ------------ */


/* Returns 0 (the caller replies OK), 1 (an error reply was sent) or -1 (drop the client). */
static int gateway_open(struct req *r, struct bind *b)
{
    size_t i;
    int rc;

    if (r->c->part->is_host || b->pers != HVSIM_PERS_LINUX)
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EINVAL,
                         "a gateway serves a VM: listen from the VM's partition, on an AF_VSOCK socket") < 0 ? -1 : 1;
    if (r->fd < 0)
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EINVAL, "a gateway LISTEN carries its channel")
               < 0 ? -1 : 1;
    for (i = 0; i < r->s->m.nbinds; i++) {
        const struct bind *o = r->s->m.binds[i];

        if (o != b && o->gateway && o->gw_fd >= 0 && o->part == b->part)
            return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EADDRINUSE,
                             "this VM has a gateway already (one back-end per VM)") < 0 ? -1 : 1;
    }
    if (b->gateway)
        return 0;
    fcntl(r->fd, F_SETFL, O_NONBLOCK);
    rc = watch(r->s, r->fd, b, W_GATEWAY);
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, rc, NULL) < 0 ? -1 : 1;
    b->gateway = 1;
    b->gw_fd = r->fd;
    r->fd = -1;
    return 0;
}

/* Answer a waiting connector and forget the offer. A refusal is the guest's
 * RST: the KVM profile passes it on, the Hyper-V profile withholds it and the
 * connector times out (reference 3.3); silence always times out. */
static void offer_finish(struct server *s, size_t i, unsigned answer)
{
    struct offer o = s->offers[i];
    uint64_t now = hvsim__now_ns();

    s->offers[i] = s->offers[--s->noffers];
    if (answer == HVSIM_GW_ACCEPT) {
        o.reply.ticket.expires_ns = now + TICKET_LIFETIME_NS;
        hvsim__ticket_sign(&o.reply.ticket, o.key);
    } else {
        struct hvsim_msg_connect_reply fail = { 0 };

        if (answer == HVSIM_GW_REFUSE && s->m.set.profile == PROFILE_KVM) {
            fail.verdict = HVSIM_VERDICT_REFUSE;
            fail.error = -ECONNRESET;
        } else {
            fail.verdict = HVSIM_VERDICT_NOANSWER;
            fail.timeout_ms = o.deadline_ns > now ? (uint32_t)((o.deadline_ns - now + 999999) / 1000000u) : 0;
        }
        o.reply = fail;
    }
    /* A connector that gave up (a signal) has closed its end: nothing lost. */
    (void)hvsim__msg_send(o.reply_fd, HVSIM_MSG_CONNECT_REPLY, 0, o.seq, &o.reply, sizeof(o.reply), NULL, 0, -1);
    close(o.reply_fd);
}

static int offer_start(struct req *r, const struct bind *gw, const struct hvsim_msg_connect_reply *ok,
                       uint32_t timeout_ms)
{
    struct server *s = r->s;
    struct hvsim_msg_offer m = { 0 };
    struct hvsim_msg_connect_reply pending = { .verdict = HVSIM_VERDICT_PENDING, .timeout_ms = timeout_ms };
    struct offer *o;
    int sv[2];

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
    memcpy(o->key, gw->key, sizeof(o->key));
    o->reply = *ok;
    s->noffers++;
    m.id = o->id;
    m.svc = ok->ticket.local_svc;
    m.peer_svc = ok->ticket.peer_svc;
    m.peer_partition = r->c->part->id;
    /* The ports the gateway's accept will report: Data1, template or not. */
    m.port = m.svc.Data1;
    m.peer_port = m.peer_svc.Data1;
    m.timeout_ms = timeout_ms;
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

static void bind_remove(struct server *s, struct bind *b)
{
    gateway_close(s, b);
    model_bind_remove(&s->m, b);
}

static void gateway_readable(struct server *s, struct bind *b)
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
        if (v.answer > HVSIM_GW_SILENT) {
            logmsg("the gateway of VM %s sent verdict %u (expected 0-2): closed", b->part->name, v.answer);
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
static int offers_sweep(struct server *s)
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

static int h_listen(struct req *r)
{
    struct hvsim_msg_listen m;
    struct hvsim_msg_listen_reply out;
    struct bind *b;
    int rc;

    memcpy(&m, r->body, sizeof(m));
    b = own_bind(r, m.bind_id);
    if (b == NULL)
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EINVAL, "not bound");
    if (strnlen(m.uname, sizeof(m.uname)) == 0 || strnlen(m.uname, sizeof(m.uname)) >= sizeof(m.uname) - 1)
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, -EINVAL, "bad listener name");
    rc = route_listen(&r->s->m, b);
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, rc, NULL);
    if (m.gateway) {
        rc = gateway_open(r, b);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    memcpy(b->uname, m.uname, sizeof(b->uname));
    b->uname[sizeof(b->uname) - 1] = '\0';
    b->flags = m.flags;
    if (!b->listening)
        hvsim__random(b->key, sizeof(b->key));
    b->listening = 1;
    memcpy(out.key, b->key, sizeof(out.key));
    return reply(r->c, HVSIM_MSG_LISTEN_REPLY, r->h.seq, &out, sizeof(out));
}

static int h_connect(struct req *r)
{
    struct hvsim_msg_connect m;
    struct hvsim_msg_connect_reply out;
    struct route_conn_req rq;
    struct route_conn_res res;
    int rc;

    memcpy(&m, r->body, sizeof(m));
    memset(&out, 0, sizeof(out));
    if (m.personality > HVSIM_PERS_VSOCK_HOST)
        return reply_err(r->c, HVSIM_MSG_CONNECT_REPLY, r->h.seq, -EINVAL, "unknown personality");
    rq = (struct route_conn_req){ .from = r->c->part, .pers = m.personality, .flags = m.flags,
                                  .timeout_ms = m.timeout_ms, .vmid = m.vmid, .svc = m.svc };
    if (m.bind_id)
        rq.bound = own_bind(r, m.bind_id);
    rc = route_connect(&r->s->m, &rq, &res);
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_CONNECT_REPLY, r->h.seq, rc, NULL);
    out.verdict = res.verdict;
    out.timeout_ms = res.timeout_ms;
    out.error = res.error;
    if (res.verdict == HVSIM_VERDICT_OK) {
        struct hvsim_ticket *t = &out.ticket;

        out.local_vmid = res.local_vmid;
        out.local_svc = res.local_svc;
        out.peer_vmid = res.peer_vmid;
        out.peer_svc = res.peer_svc;
        out.peer_partition = res.to->id;
        out.peer_cid = res.peer_cid;
        out.peer_flags = res.listener->flags;
        memcpy(out.uname, res.listener->uname, sizeof(out.uname));
        t->magic = HVSIM_TICKET_MAGIC;
        t->version = HVSIM_PROTO_VERSION;
        t->conn_id = r->s->m.next_conn_id++;
        t->expires_ns = hvsim__now_ns() + TICKET_LIFETIME_NS;
        t->local_vmid = res.acc_local_vmid;
        t->local_svc = res.acc_local_svc;
        t->peer_vmid = res.acc_peer_vmid;
        t->peer_svc = res.acc_peer_svc;
        t->peer_partition = r->c->part->id;
        t->peer_cid = res.acc_peer_cid;
        t->peer_flags = m.flags;
        if (res.listener->gateway) {
            uint32_t def = m.personality == HVSIM_PERS_WINDOWS ? r->s->m.set.win_timeout_ms
                                                               : r->s->m.set.linux_timeout_ms;

            return offer_start(r, res.listener, &out, m.timeout_ms ? m.timeout_ms : def);
        }
        hvsim__ticket_sign(t, res.listener->key);
    }
    return reply(r->c, HVSIM_MSG_CONNECT_REPLY, r->h.seq, &out, sizeof(out));
}

/* ---- admin handlers ------------------------------------------------------------------------ */

static void vm_info(const struct model *m, const struct part *p, hvsim_vm_info_t *out)
{
    memset(out, 0, sizeof(*out));
    out->id = p->id;
    memcpy(out->name, p->name, sizeof(out->name));
    out->kind = p->kind;
    out->state = p->state;
    out->cid = p->cid;
    out->nprocs = model_vm_nprocs(m, p);
}

/* Every admin change is written to disk before the reply: a crash after the
 * reply loses nothing the user was told had happened. */
static int admin_commit(struct req *r, unsigned type, const void *body, size_t len)
{
    char err[256] = "";
    int rc = save_state(r->s, err, sizeof(err));

    if (rc < 0) {
        logmsg("saving state failed: %s", err);
        return reply_err(r->c, type, r->h.seq, rc, err);
    }
    return reply(r->c, type, r->h.seq, body, len);
}

static int h_vm_add(struct req *r)
{
    struct hvsim_msg_vm_add m;
    hvsim_vm_info_t info;
    struct part *p;
    char err[256] = "";
    int rc;

    memcpy(&m, r->body, sizeof(m));
    m.name[sizeof(m.name) - 1] = '\0';
    rc = model_vm_add(&r->s->m, m.name, m.has_id ? &m.id : NULL, m.kind, &p, err, sizeof(err));
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_VM_INFO, r->h.seq, rc, err);
    rc = open_part(r->s, p);
    if (rc < 0) {
        snprintf(err, sizeof(err), "cannot create the control socket of VM '%s': %s", p->name, strerror(-rc));
        close_part(r->s, p);
        model_vm_remove(&r->s->m, p);
        return reply_err(r->c, HVSIM_MSG_VM_INFO, r->h.seq, rc, err);
    }
    vm_info(&r->s->m, p, &info);
    return admin_commit(r, HVSIM_MSG_VM_INFO, &info, sizeof(info));
}

static struct part *vm_ref(struct req *r, const char *ref, unsigned type, int *replied)
{
    char text[HVSIM_NAME_MAX + 1], err[160];
    struct part *p;

    memcpy(text, ref, HVSIM_NAME_MAX);
    text[HVSIM_NAME_MAX] = '\0';
    p = model_vm_find(&r->s->m, text);
    if (p == NULL) {
        snprintf(err, sizeof(err), "no VM named or with ID '%s' (hvsimctl vm list)", text);
        *replied = reply_err(r->c, type, r->h.seq, -ENOENT, err);
    }
    return p;
}

static void disconnect_vm(struct server *s, struct part *p)
{
    struct proc *c = s->m.procs, *next;

    for (; c; c = next) {
        next = c->next;
        if (c->part == p && !c->admin)
            drop_proc(s, c);
    }
}

static int h_vm_rm(struct req *r)
{
    struct hvsim_msg_vm_ref m;
    struct part *p;
    GUID id;
    int rc = 0;

    memcpy(&m, r->body, sizeof(m));
    p = vm_ref(r, m.ref, HVSIM_MSG_VM_RM, &rc);
    if (p == NULL)
        return rc;
    id = p->id;
    broadcast(r->s, &id, HVSIM_EV_REMOVED);
    if (r->s->m.set.reset_kills)
        signal_vm(r->s, p, SIGKILL);
    disconnect_vm(r->s, p);
    close_part(r->s, p);
    model_vm_remove(&r->s->m, p);
    return admin_commit(r, HVSIM_MSG_VM_RM, &m, sizeof(m));
}

static int h_vm_op(struct req *r)
{
    struct hvsim_msg_vm_op m;
    hvsim_vm_info_t info;
    struct part *p;
    char err[160];
    int rc = 0;

    memcpy(&m, r->body, sizeof(m));
    m.op[sizeof(m.op) - 1] = '\0';
    p = vm_ref(r, m.ref, HVSIM_MSG_VM_INFO, &rc);
    if (p == NULL)
        return rc;
    if (strcmp(m.op, "start") == 0 || strcmp(m.op, "resume") == 0) {
        if (strcmp(m.op, "resume") == 0 && p->state != HVSIM_VM_PAUSED) {
            snprintf(err, sizeof(err), "VM '%s' is not paused", p->name);
            return reply_err(r->c, HVSIM_MSG_VM_INFO, r->h.seq, -EINVAL, err);
        }
        if (p->state == HVSIM_VM_PAUSED && r->s->m.set.pause_freezes)
            signal_vm(r->s, p, SIGCONT);
        if (p->state == HVSIM_VM_PAUSED)
            broadcast(r->s, &p->id, HVSIM_EV_RESUME);
        p->state = HVSIM_VM_RUNNING;
    } else if (strcmp(m.op, "pause") == 0) {
        if (p->state != HVSIM_VM_RUNNING) {
            snprintf(err, sizeof(err), "VM '%s' is not running", p->name);
            return reply_err(r->c, HVSIM_MSG_VM_INFO, r->h.seq, -EINVAL, err);
        }
        p->state = HVSIM_VM_PAUSED;
        broadcast(r->s, &p->id, HVSIM_EV_PAUSE);
        if (r->s->m.set.pause_freezes)
            signal_vm(r->s, p, SIGSTOP);
    } else if (strcmp(m.op, "reset") == 0 || strcmp(m.op, "off") == 0) {
        int off = m.op[0] == 'o';

        if (p->state == HVSIM_VM_PAUSED && r->s->m.set.pause_freezes)
            signal_vm(r->s, p, SIGCONT);
        p->state = off ? HVSIM_VM_OFF : HVSIM_VM_RUNNING;
        broadcast(r->s, &p->id, off ? HVSIM_EV_OFF : HVSIM_EV_RESET);
        if (r->s->m.set.reset_kills)
            signal_vm(r->s, p, SIGKILL);
    } else {
        snprintf(err, sizeof(err), "VM operation '%s': expected start, pause, resume, reset or off", m.op);
        return reply_err(r->c, HVSIM_MSG_VM_INFO, r->h.seq, -EINVAL, err);
    }
    vm_info(&r->s->m, p, &info);
    return admin_commit(r, HVSIM_MSG_VM_INFO, &info, sizeof(info));
}

static int h_vm_list(struct req *r)
{
    struct hvsim_msg_count cnt = { .count = (uint32_t)r->s->m.nvms };
    size_t i, max = (HVSIM_MSG_MAX - 64) / sizeof(hvsim_vm_info_t);
    hvsim_vm_info_t *v;
    int rc;

    if (r->s->m.nvms > max)
        cnt.count = (uint32_t)max;
    v = calloc(cnt.count ? cnt.count : 1, sizeof(*v));
    if (v == NULL)
        return reply_err(r->c, HVSIM_MSG_VM_LIST_REPLY, r->h.seq, -ENOMEM, NULL);
    for (i = 0; i < cnt.count; i++)
        vm_info(&r->s->m, r->s->m.vms[i], &v[i]);
    rc = reply_extra(r->c, HVSIM_MSG_VM_LIST_REPLY, r->h.seq, &cnt, sizeof(cnt), v, cnt.count * sizeof(*v));
    free(v);
    return rc;
}

static int element_name_ok(const char *s, size_t cap)
{
    size_t i, n = strnlen(s, cap);

    if (n >= cap)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int h_svc_add(struct req *r)
{
    hvsim_service_info_t m;
    int rc;

    memcpy(&m, r->body, sizeof(m));
    if (!element_name_ok(m.element_name, sizeof(m.element_name)))
        return reply_err(r->c, HVSIM_MSG_SVC_ADD, r->h.seq, -EINVAL,
                         "ElementName: expected at most 255 bytes without control characters");
    rc = model_service_add(&r->s->m, &m.id, m.element_name);
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_SVC_ADD, r->h.seq, rc, NULL);
    return admin_commit(r, HVSIM_MSG_SVC_ADD, &m, sizeof(m));
}

static int h_svc_rm(struct req *r)
{
    struct hvsim_msg_guid m;
    char text[HVSIM_GUID_STRLEN], err[128];

    memcpy(&m, r->body, sizeof(m));
    if (model_service_rm(&r->s->m, &m.id) < 0) {
        snprintf(err, sizeof(err), "service %s is not registered", hvsim_guid_format(&m.id, text));
        return reply_err(r->c, HVSIM_MSG_SVC_RM, r->h.seq, -ENOENT, err);
    }
    return admin_commit(r, HVSIM_MSG_SVC_RM, &m, sizeof(m));
}

static int h_svc_list(struct req *r)
{
    struct hvsim_msg_count cnt = { .count = (uint32_t)r->s->m.nservices };
    size_t max = (HVSIM_MSG_MAX - 64) / sizeof(hvsim_service_info_t);

    if (r->s->m.nservices > max)
        cnt.count = (uint32_t)max;
    return reply_extra(r->c, HVSIM_MSG_SVC_LIST_REPLY, r->h.seq, &cnt, sizeof(cnt), r->s->m.services,
                       cnt.count * sizeof(hvsim_service_info_t));
}

static int h_svc_import(struct req *r)
{
    struct hvsim_msg_count cnt;
    const hvsim_service_info_t *v;
    size_t i;
    int rc;

    memcpy(&cnt, r->body, sizeof(cnt));
    if ((size_t)r->h.len - sizeof(cnt) != (size_t)cnt.count * sizeof(hvsim_service_info_t))
        return reply_err(r->c, HVSIM_MSG_SVC_IMPORT, r->h.seq, -EPROTO, "import: count does not match the length");
    v = (const hvsim_service_info_t *)(r->body + sizeof(cnt));
    /* All or nothing: check every entry before changing anything. */
    for (i = 0; i < cnt.count; i++)
        if (!element_name_ok(v[i].element_name, sizeof(v[i].element_name)))
            return reply_err(r->c, HVSIM_MSG_SVC_IMPORT, r->h.seq, -EINVAL, "import: bad ElementName");
    for (i = 0; i < cnt.count; i++) {
        hvsim_service_info_t e;

        memcpy(&e, &v[i], sizeof(e));
        rc = model_service_add(&r->s->m, &e.id, e.element_name);
        if (rc < 0)
            return reply_err(r->c, HVSIM_MSG_SVC_IMPORT, r->h.seq, rc, NULL);
    }
    return admin_commit(r, HVSIM_MSG_SVC_IMPORT, &cnt, sizeof(cnt));
}

static int h_hcs_set(struct req *r)
{
    struct hvsim_msg_hcs_set m;
    struct part *p;
    int rc = 0;

    memcpy(&m, r->body, sizeof(m));
    p = vm_ref(r, m.vm, HVSIM_MSG_HCS_SET, &rc);
    if (p == NULL)
        return rc;
    if (p->kind != HVSIM_VM_HCS)
        return reply_err(r->c, HVSIM_MSG_HCS_SET, r->h.seq, -EINVAL,
                         "HvSocket service tables belong to hcs VMs (vm add --kind hcs)");
    rc = model_hcs_set(p, &m.svc);
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_HCS_SET, r->h.seq, rc, NULL);
    return admin_commit(r, HVSIM_MSG_HCS_SET, &m, sizeof(m));
}

static int h_setting_get(struct req *r)
{
    struct hvsim_msg_setting m;

    memcpy(&m, r->body, sizeof(m));
    m.name[sizeof(m.name) - 1] = '\0';
    if (settings_get(&r->s->m.set, m.name, m.value, sizeof(m.value)) < 0)
        return reply_err(r->c, HVSIM_MSG_SETTING_REPLY, r->h.seq, -ENOENT, "unknown setting");
    return reply(r->c, HVSIM_MSG_SETTING_REPLY, r->h.seq, &m, sizeof(m));
}

static int h_setting_set(struct req *r)
{
    struct hvsim_msg_setting m;
    char err[256];
    int rc;

    memcpy(&m, r->body, sizeof(m));
    m.name[sizeof(m.name) - 1] = '\0';
    m.value[sizeof(m.value) - 1] = '\0';
    rc = settings_set(&r->s->m.set, m.name, m.value, err, sizeof(err));
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_SETTING_REPLY, r->h.seq, rc, err);
    return admin_commit(r, HVSIM_MSG_SETTING_REPLY, &m, sizeof(m));
}

static int h_setting_list(struct req *r)
{
    struct hvsim_msg_setting m = { 0 };
    char *text = settings_list(&r->s->m.set);
    int rc;

    if (text == NULL)
        return reply_err(r->c, HVSIM_MSG_SETTING_REPLY, r->h.seq, -ENOMEM, NULL);
    rc = reply_extra(r->c, HVSIM_MSG_SETTING_REPLY, r->h.seq, &m, sizeof(m), text, strlen(text));
    free(text);
    return rc;
}

static int h_status(struct req *r)
{
    struct hvsim_msg_status st = { 0 };
    char text[2 * PATH_MAX + 128], id[HVSIM_GUID_STRLEN];
    struct proc *c;
    size_t i;

    st.nvms = (uint32_t)r->s->m.nvms;
    st.nservices = (uint32_t)r->s->m.nservices;
    for (c = r->s->m.procs; c; c = c->next)
        st.nprocs += !c->admin;
    for (i = 0; i < r->s->m.nbinds; i++)
        st.nlisteners += r->s->m.binds[i]->listening;
    snprintf(text, sizeof(text), "dir=%s\nstate_dir=%s\nhost_id=%s\npid=%d\n", r->s->dir,
             r->s->state_dir[0] ? r->s->state_dir : "(none)", hvsim_guid_format(&r->s->m.host.id, id), (int)getpid());
    return reply_extra(r->c, HVSIM_MSG_STATUS, r->h.seq, &st, sizeof(st), text, strlen(text));
}

static const struct {
    handler_fn *fn;
    int admin; /* 1: admin socket only; 0: partition sockets only */
} handlers[HVSIM_MSG_COUNT] = {
    [HVSIM_MSG_HELLO] = { h_hello, 0 },
    [HVSIM_MSG_BIND] = { h_bind, 0 },
    [HVSIM_MSG_UNBIND] = { h_unbind, 0 },
    [HVSIM_MSG_LISTEN] = { h_listen, 0 },
    [HVSIM_MSG_CONNECT] = { h_connect, 0 },
    [HVSIM_MSG_STATUS] = { h_status, 1 },
    [HVSIM_MSG_VM_ADD] = { h_vm_add, 1 },
    [HVSIM_MSG_VM_RM] = { h_vm_rm, 1 },
    [HVSIM_MSG_VM_OP] = { h_vm_op, 1 },
    [HVSIM_MSG_VM_LIST] = { h_vm_list, 1 },
    [HVSIM_MSG_SVC_ADD] = { h_svc_add, 1 },
    [HVSIM_MSG_SVC_RM] = { h_svc_rm, 1 },
    [HVSIM_MSG_SVC_LIST] = { h_svc_list, 1 },
    [HVSIM_MSG_SVC_IMPORT] = { h_svc_import, 1 },
    [HVSIM_MSG_HCS_SET] = { h_hcs_set, 1 },
    [HVSIM_MSG_SETTING_GET] = { h_setting_get, 1 },
    [HVSIM_MSG_SETTING_SET] = { h_setting_set, 1 },
    [HVSIM_MSG_SETTING_LIST] = { h_setting_list, 1 },
};

/* Returns -1 when the client must be dropped. */
static int serve_one(struct server *s, struct proc *c)
{
    struct req r = { .s = s, .c = c, .fd = -1 };
    ssize_t n = hvsim__msg_recv(c->fd, s->buf, HVSIM_MSG_MAX, &r.fd);
    int rc;

    if (n == -EAGAIN)
        return 0;
    if (n <= 0) {
        if (n < 0)
            logmsg("pid %d broke the protocol (%s): dropped", (int)c->pid, hvsim_err_name((int)n));
        return -1;
    }
    memcpy(&r.h, s->buf, sizeof(r.h));
    r.body = s->buf + sizeof(r.h);
    if (r.h.status != 0 || handlers[r.h.type].fn == NULL || handlers[r.h.type].admin != c->admin ||
        (!c->admin && r.h.type != HVSIM_MSG_HELLO && c->evt_fd < 0)) {
        logmsg("pid %d sent %s where it may not: dropped", (int)c->pid, hvsim__msg_name(r.h.type));
        rc = -1;
    } else {
        rc = handlers[r.h.type].fn(&r) < 0 ? -1 : 0;
    }
    if (r.fd >= 0)
        close(r.fd);
    return rc;
}

/* ---- life cycle ------------------------------------------------------------------------------ */

int server_init(struct server *s, const char *dir, const char *state_dir, const char *const *sets, size_t nsets,
                const char *mutant, char *err, size_t errlen)
{
    char path[PATH_MAX + 16];
    sigset_t mask;
    size_t i;
    int rc;

    memset(s, 0, sizeof(*s));
    s->ep = s->admin_fd = s->sig_fd = -1;
    model_init(&s->m);
    s->m.mutant = mutant;
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(s->state_dir, sizeof(s->state_dir), "%s", state_dir ? state_dir : "");
    s->buf = malloc(HVSIM_MSG_MAX);
    if (s->buf == NULL)
        return -ENOMEM;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "--dir %s: cannot create: %s", dir, strerror(errno));
        return rc;
    }
    snprintf(path, sizeof(path), "%s/vm", dir);
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        return rc;
    }
    if (s->state_dir[0] && mkdir(s->state_dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "--state-dir %s: cannot create: %s", s->state_dir, strerror(errno));
        return rc;
    }
    /* A live daemon already serving this folder must not lose its sockets. */
    snprintf(path, sizeof(path), "%s/admin.sock", dir);
    {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

        if (strlen(path) >= sizeof(sa.sun_path)) {
            snprintf(err, errlen, "--dir %s: too long for a socket path (at most %zu bytes)", dir,
                     sizeof(sa.sun_path) - 20);
            if (probe >= 0)
                close(probe);
            return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, path);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            close(probe);
            snprintf(err, errlen, "another hvsimd is serving %s", dir);
            return -EADDRINUSE;
        }
        if (probe >= 0)
            close(probe);
    }
    rc = load_state(s, err, errlen);
    if (rc < 0)
        return rc;
    for (i = 0; i < nsets; i++) {
        char name[64];
        const char *eqs = strchr(sets[i], '=');

        if (eqs == NULL || (size_t)(eqs - sets[i]) >= sizeof(name)) {
            snprintf(err, errlen, "--set %s: expected name=value", sets[i]);
            return -EINVAL;
        }
        memcpy(name, sets[i], (size_t)(eqs - sets[i]));
        name[eqs - sets[i]] = '\0';
        rc = settings_set(&s->m.set, name, eqs + 1, err, errlen);
        if (rc < 0)
            return rc;
    }
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    if (s->ep < 0)
        return -errno;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    s->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->sig_fd < 0 || watch(s, s->sig_fd, NULL, 0) < 0)
        return -errno;
    s->admin_fd = listen_unix(path);
    if (s->admin_fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(-s->admin_fd));
        return s->admin_fd;
    }
    rc = watch(s, s->admin_fd, NULL, W_ADMIN);
    if (rc == 0)
        rc = open_part(s, &s->m.host);
    for (i = 0; i < s->m.nvms && rc == 0; i++)
        rc = open_part(s, s->m.vms[i]);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the control sockets in %s: %s", dir, strerror(-rc));
        return rc;
    }
    return 0;
}

int server_run(struct server *s, int ready_fd)
{
    struct epoll_event evs[64];

    if (ready_fd >= 0) {
        /* s6-style readiness: a line, then EOF. */
        if (write(ready_fd, "READY=1\n", 8) < 0)
            logmsg("readiness fd %d: %s", ready_fd, strerror(errno));
        close(ready_fd);
    }
    while (!s->stop) {
        int i, n = epoll_wait(s->ep, evs, 64, offers_sweep(s));

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (i = 0; i < n; i++) {
            uint64_t d = evs[i].data.u64;
            unsigned kind = (unsigned)(d & W_MASK);
            void *obj = (void *)(uintptr_t)(d & ~(uint64_t)W_MASK);

            if (kind == 0) {
                struct signalfd_siginfo si;

                while (read(s->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                    s->stop = 1;
            } else if (kind == W_ADMIN) {
                accept_client(s, s->admin_fd, NULL, 1);
            } else if (kind == W_PART) {
                struct part *p = obj;

                accept_client(s, p->listen_fd, p, 0);
            } else if (kind == W_GATEWAY) {
                struct bind *b = obj;
                size_t j;

                /* The bind may have been removed by an earlier event of this batch. */
                for (j = 0; j < s->m.nbinds && s->m.binds[j] != b; j++)
                    ;
                if (j < s->m.nbinds && b->gateway && b->gw_fd >= 0)
                    gateway_readable(s, b);
            } else {
                struct proc *c = obj, *it;

                /* The proc may have been dropped by an earlier event of this batch. */
                for (it = s->m.procs; it && it != c; it = it->next)
                    ;
                if (it == NULL)
                    continue;
                if (serve_one(s, c) < 0)
                    drop_proc(s, c);
            }
        }
    }
    return 0;
}

void server_fini(struct server *s)
{
    char path[PATH_MAX + 16];
    size_t i;

    while (s->m.procs)
        drop_proc(s, s->m.procs);
    while (s->noffers)
        close(s->offers[--s->noffers].reply_fd);
    free(s->offers);
    close_part(s, &s->m.host);
    for (i = 0; i < s->m.nvms; i++)
        close_part(s, s->m.vms[i]);
    if (s->admin_fd >= 0) {
        close(s->admin_fd);
        snprintf(path, sizeof(path), "%s/admin.sock", s->dir);
        unlink(path);
    }
    if (s->sig_fd >= 0)
        close(s->sig_fd);
    if (s->ep >= 0)
        close(s->ep);
    model_free(&s->m);
    free(s->buf);
}
