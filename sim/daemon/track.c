/* SPDX-License-Identifier: MIT */
/*
 * track.c: what hvsimctl lists of a partition (VM_LISTENERS, VM_CONNS): its
 * listeners, from the bind table, and the connections the daemon routed to
 * or from it that it has not seen end.
 *
 * Streams never pass through the daemon, so it cannot see a stream end. A
 * record is made where a connect is answered OK (h_connect, a gateway's
 * acceptance, a waiting connect's late listener) and ends only on what the
 * daemon does see: the process of either end detaching (its control
 * connection closes: it exited, or gave up the library), or an event that
 * breaks the connection in the library (the VM of either end reset, off or
 * removed; paused, unless either end set CONNECTED_SUSPEND; its HCS service
 * Disabled). A listener closing ends nothing: its accepted streams live on,
 * in both socket layers. Each partition keeps at most max_tracked_connections
 * records (a connection between two partitions is in both lists); past that
 * the oldest is forgotten and counted, and the connection is not touched.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dlog.h"
#include "server_int.h"

static struct track_rec *rec_at(const struct track *t, uint32_t k)
{
    return &t->v[(t->head + k) % t->cap];
}

/* Room for one more record within the ceiling: the oldest goes when full. */
static int track_room(struct track *t, uint32_t max)
{
    struct track_rec *v;
    uint32_t k, cap;

    while (t->n > 0 && t->n >= max) {
        t->head = (t->head + 1) % t->cap;
        t->n--;
        t->forgotten++;
    }
    if (t->n < t->cap)
        return 0;
    cap = t->cap ? t->cap * 2 : 16;
    if (cap > max)
        cap = max;
    v = malloc((size_t)cap * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    for (k = 0; k < t->n; k++)
        v[k] = *rec_at(t, k);
    free(t->v);
    t->v = v;
    t->head = 0;
    t->cap = cap;
    return 0;
}

static void track_put(struct server *s, struct part *p, const struct track_rec *r)
{
    struct track *t = &p->trk;

    if (track_room(t, s->m.set.max_tracked) < 0) {
        t->forgotten++; /* no memory: counted as forgotten, never silently */
        return;
    }
    *rec_at(t, t->n++) = *r;
    s->m.track_gen++;
}

void track_connect(struct server *s, const struct proc *c, uint32_t pers, const struct hvsim_msg_connect_reply *out,
                   const struct bind *listener)
{
    struct track_rec r = { .conn = c, .acc = listener ? listener->owner : NULL };
    hvsim_conn_info_t *i = &r.info;
    struct part *to = listener ? listener->part : NULL;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts); /* shown as a date, never used to time anything */
    i->id = out->ticket.conn_id;
    i->routed_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    i->connector_vmid = out->local.vmid;
    i->connector_svc = out->local.svc;
    i->connector_partition = c->part->id;
    i->acceptor_vmid = out->peer.vmid;
    i->acceptor_svc = out->peer.svc;
    i->acceptor_partition = out->peer.partition;
    memcpy(i->connector_name, c->part->name, sizeof(i->connector_name));
    if (to == NULL)
        to = hvsim_guid_equal(&out->peer.partition, &s->m.host.id) ? &s->m.host
                                                                     : model_vm_by_id(&s->m, &out->peer.partition);
    if (to)
        memcpy(i->acceptor_name, to->name, sizeof(i->acceptor_name));
    i->connector_pid = (uint32_t)c->pid;
    i->acceptor_pid = r.acc ? (uint32_t)r.acc->pid : 0;
    i->personality = pers;
    snprintf(i->rule, sizeof(i->rule), "%s", dlog_rule_name(out->outcome.rule));
    r.flags = out->local.flags | out->peer.flags;
    track_put(s, c->part, &r);
    if (to && to != c->part)
        track_put(s, to, &r);
}

typedef int track_pred(const struct track_rec *r, const void *arg);

/* Drop the records of every partition for which PRED holds, keeping the order. */
static void track_drop(struct server *s, track_pred *pred, const void *arg)
{
    size_t i;

    for (i = 0; i <= s->m.nvms; i++) {
        struct track *t = i == s->m.nvms ? &s->m.host.trk : &s->m.vms[i]->trk;
        uint32_t k, w = 0;

        for (k = 0; k < t->n; k++) {
            if (pred(rec_at(t, k), arg))
                continue;
            if (w != k)
                *rec_at(t, w) = *rec_at(t, k);
            w++;
        }
        if (w != t->n)
            s->m.track_gen++;
        t->n = w;
    }
}

static int of_proc(const struct track_rec *r, const void *c)
{
    return r->conn == c || r->acc == c;
}

void track_forget_proc(struct server *s, const struct proc *c)
{
    track_drop(s, of_proc, c);
}

/* The same test as the library's (socket.c, event_concerns and the pause
 * rule): which connections the event breaks. */
static int broken_by(const struct track_rec *r, const void *arg)
{
    const struct hvsim_msg_event *ev = arg;
    const hvsim_conn_info_t *i = &r->info;

    if (!hvsim_guid_equal(&i->connector_partition, &ev->vmid) && !hvsim_guid_equal(&i->acceptor_partition, &ev->vmid))
        return 0;
    switch (ev->event) {
    case HVSIM_EV_RESET:
    case HVSIM_EV_OFF:
    case HVSIM_EV_REMOVED:
        return 1;
    case HVSIM_EV_PAUSE:
        return !(r->flags & HVSIM_SF_SUSPEND);
    case HVSIM_EV_SERVICE_DISABLED:
        return hvsim_guid_equal(&i->connector_svc, &ev->svc) || hvsim_guid_equal(&i->acceptor_svc, &ev->svc);
    default:
        return 0;
    }
}

void track_event(struct server *s, const struct hvsim_msg_event *ev)
{
    track_drop(s, broken_by, ev);
}

void track_free(struct track *t)
{
    free(t->v);
    memset(t, 0, sizeof(*t));
}

/* ---- the listings (admin) ------------------------------------------------------------------ */

/* The partition a listing names ("host", a VM's name or GUID), or NULL after an error reply. */
static struct part *list_part(struct req *r, const struct hvsim_msg_vm_page *m, unsigned type, int *rc)
{
    char ref[HVSIM_NAME_MAX + 1], err[160];
    struct part *p;

    memcpy(ref, m->ref, HVSIM_NAME_MAX);
    ref[HVSIM_NAME_MAX] = '\0';
    p = strcmp(ref, "host") == 0 ? &r->s->m.host : model_vm_find(&r->s->m, ref);
    if (p == NULL) {
        snprintf(err, sizeof(err), "no VM named or with ID '%s' (hvsimctl vm list), and not \"host\"", ref);
        *rc = reply_err(r->c, type, r->h.seq, -ENOENT, err);
    }
    return p;
}

/* One page of N entries of ESIZE bytes (V) from the request's cursor. */
static int track_page(struct req *r, unsigned type, const struct hvsim_msg_vm_page *m, const char *v, size_t n,
                      size_t esize, uint32_t limit, uint64_t forgotten)
{
    struct hvsim_msg_track_list out = { .list = { .total = (uint32_t)n, .gen = r->s->m.track_gen },
                                        .limit = limit, .forgotten = forgotten };
    size_t per = HVSIM_PAGE_BYTES / esize, from = m->page.cursor < n ? m->page.cursor : n;

    out.list.count = (uint32_t)(n - from < per ? n - from : per);
    out.list.next = (uint32_t)(from + out.list.count);
    return reply_extra(r->c, type, r->h.seq, &out, sizeof(out), v + from * esize, out.list.count * esize);
}

int h_vm_listeners(struct req *r)
{
    struct hvsim_msg_vm_page m;
    hvsim_listener_info_t *v;
    struct part *p;
    size_t i, n = 0;
    int rc = 0;

    memcpy(&m, r->body, sizeof(m));
    p = list_part(r, &m, HVSIM_MSG_VM_LISTENERS_REPLY, &rc);
    if (p == NULL)
        return rc;
    v = calloc(p->nbinds + 1, sizeof(*v));
    if (v == NULL)
        return reply_err(r->c, HVSIM_MSG_VM_LISTENERS_REPLY, r->h.seq, -ENOMEM, NULL);
    for (i = 0; i < r->s->m.nbinds && n < p->nbinds; i++) {
        const struct bind *b = r->s->m.binds[i];

        if (b->part != p || !b->listening)
            continue;
        v[n++] = (hvsim_listener_info_t){ .vmid = b->vmid, .svc = b->svc, .personality = b->pers,
                                          .pid = (uint32_t)b->owner->pid, .backlog = b->backlog,
                                          .gateway = (uint32_t)b->gateway };
    }
    rc = track_page(r, HVSIM_MSG_VM_LISTENERS_REPLY, &m, (const char *)v, n, sizeof(*v), r->s->m.set.max_binds, 0);
    free(v);
    return rc;
}

int h_vm_conns(struct req *r)
{
    struct hvsim_msg_vm_page m;
    hvsim_conn_info_t *v;
    struct part *p;
    uint32_t k;
    int rc = 0;

    memcpy(&m, r->body, sizeof(m));
    p = list_part(r, &m, HVSIM_MSG_VM_CONNS_REPLY, &rc);
    if (p == NULL)
        return rc;
    v = calloc(p->trk.n + 1, sizeof(*v));
    if (v == NULL)
        return reply_err(r->c, HVSIM_MSG_VM_CONNS_REPLY, r->h.seq, -ENOMEM, NULL);
    for (k = 0; k < p->trk.n; k++)
        v[k] = rec_at(&p->trk, k)->info;
    rc = track_page(r, HVSIM_MSG_VM_CONNS_REPLY, &m, (const char *)v, p->trk.n, sizeof(*v), r->s->m.set.max_tracked,
                    p->trk.forgotten);
    free(v);
    return rc;
}
