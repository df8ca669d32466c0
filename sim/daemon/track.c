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
 * in both socket layers. A record is kept once, by the partition whose
 * process connected, which holds at most max_tracked_connections of them;
 * past that its oldest is forgotten and counted, and the connection is not
 * touched. A partition's listing shows every record with either end in it.
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

/* Room for one more record within the ceiling: the oldest goes when full.
 * The ring is allocated at the ceiling at once (a large malloc is mapped
 * lazily: pages cost memory only once records fill them), so a routed
 * connect never pays for moving it; only a raised ceiling moves its two runs. */
static int track_room(struct track *t, uint32_t max)
{
    struct track_rec *v;
    uint32_t cap, first;

    while (t->n > 0 && t->n >= max) {
        t->head = (t->head + 1) % t->cap;
        t->n--;
        t->forgotten++;
    }
    if (t->n < t->cap)
        return 0;
    cap = max;
    v = malloc((size_t)cap * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    first = t->cap - t->head < t->n ? t->cap - t->head : t->n;
    if (t->n) {
        memcpy(v, t->v + t->head, (size_t)first * sizeof(*v));
        memcpy(v + first, t->v, (size_t)(t->n - first) * sizeof(*v));
    }
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
    /* memcpy, not an assignment: gcc copies a struct this size with rep
     * movs, whose every step the benchmark's instruction count sees. */
    memcpy(rec_at(t, t->n++), r, sizeof(*r));
    s->m.track_gen++;
}

/* Every routed connect makes one: only copies here (the benchmark's count
 * of instructions per connection includes hvsimd's). */
void track_connect(struct server *s, const struct proc *c, uint32_t pers, const struct hvsim_msg_connect_reply *out,
                   const struct bind *listener)
{
    struct part *to = listener ? listener->part : NULL;
    struct track_rec r;

    /* Field by field, not zeroed whole first (see track_put). */
    r.id = out->ticket.conn_id;
    memcpy(&r.conn_ep, &out->local, sizeof(r.conn_ep));
    memcpy(&r.acc_ep, &out->peer, sizeof(r.acc_ep));
    r.conn = c;
    r.acc = NULL;
    r.cpart = c->part;
    r.conn_pid = (uint32_t)c->pid;
    r.acc_pid = 0;
    r.pers = pers;
    r.rule = out->outcome.rule;
    /* When: the ticket's own clock reading (its expiry less its lifetime),
     * so no clock is read again here; turned into a date when listed. */
    r.routed_ns = out->ticket.expires_ns - TICKET_LIFETIME_NS;
    if (listener) {
        r.acc = listener->owner;
        r.acc_pid = (uint32_t)listener->owner->pid;
    }
    if (to == NULL)
        to = hvsim_guid_equal(&out->peer.partition, &s->m.host.id) ? &s->m.host
                                                                     : model_vm_by_id(&s->m, &out->peer.partition);
    r.apart = to;
    track_put(s, c->part, &r);
}

/* The same test as the library's (socket.c, event_concerns and the pause
 * rule): does the event break this connection? */
static int broken_by(const struct track_rec *r, const struct hvsim_msg_event *ev)
{
    if (!hvsim_guid_equal(&r->cpart->id, &ev->vmid) &&
        !hvsim_guid_equal(r->apart ? &r->apart->id : &r->acc_ep.partition, &ev->vmid))
        return 0;
    switch (ev->event) {
    case HVSIM_EV_RESET:
    case HVSIM_EV_OFF:
    case HVSIM_EV_REMOVED:
        return 1;
    case HVSIM_EV_PAUSE:
        return !((r->conn_ep.flags | r->acc_ep.flags) & HVSIM_SF_SUSPEND);
    case HVSIM_EV_SERVICE_DISABLED:
        return hvsim_guid_equal(&r->conn_ep.svc, &ev->svc) || hvsim_guid_equal(&r->acc_ep.svc, &ev->svc);
    default:
        return 0;
    }
}

/* Drop, keeping the order, every partition's records of process C (when
 * not NULL) or broken by EV (when not NULL). */
static void track_drop(struct server *s, const struct proc *c, const struct hvsim_msg_event *ev)
{
    size_t i;

    for (i = 0; i <= s->m.nvms; i++) {
        struct track *t = i == s->m.nvms ? &s->m.host.trk : &s->m.vms[i]->trk;
        uint32_t k, w = 0;

        for (k = 0; k < t->n; k++) {
            const struct track_rec *r = rec_at(t, k);

            if ((c && (r->conn == c || r->acc == c)) || (ev && broken_by(r, ev)))
                continue;
            if (w != k)
                memcpy(rec_at(t, w), r, sizeof(*r));
            w++;
        }
        if (w != t->n)
            s->m.track_gen++;
        t->n = w;
    }
}

void track_forget_proc(struct server *s, const struct proc *c)
{
    track_drop(s, c, NULL);
}

void track_event(struct server *s, const struct hvsim_msg_event *ev)
{
    track_drop(s, NULL, ev);
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
                                          .gateway = (uint32_t)b->gateway,
                                          .seqpacket = (b->flags & HVSIM_SF_SEQPACKET) != 0 };
    }
    rc = track_page(r, HVSIM_MSG_VM_LISTENERS_REPLY, &m, (const char *)v, n, sizeof(*v), r->s->m.set.max_binds, 0);
    free(v);
    return rc;
}

/* A CLOCK_MONOTONIC reading as ms since the Unix epoch (shown only). */
static uint64_t routed_ms(uint64_t mono_ns)
{
    uint64_t now = hvsim__now_ns(), ago = now > mono_ns ? now - mono_ns : 0;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec - ago) / 1000000u;
}

/* A record as hvsimctl sees it. */
static void conn_info(const struct track_rec *r, hvsim_conn_info_t *i)
{
    *i = (hvsim_conn_info_t){ .id = r->id, .routed_ms = routed_ms(r->routed_ns), .connector_vmid = r->conn_ep.vmid,
                              .connector_svc = r->conn_ep.svc, .connector_partition = r->cpart->id,
                              .acceptor_vmid = r->acc_ep.vmid, .acceptor_svc = r->acc_ep.svc,
                              .acceptor_partition = r->apart ? r->apart->id : r->acc_ep.partition,
                              .connector_pid = r->conn_pid, .acceptor_pid = r->acc_pid, .personality = r->pers };
    memcpy(i->connector_name, r->cpart->name, sizeof(i->connector_name));
    if (r->apart)
        memcpy(i->acceptor_name, r->apart->name, sizeof(i->acceptor_name));
    snprintf(i->rule, sizeof(i->rule), "%s", dlog_rule_name(r->rule));
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = ((const hvsim_conn_info_t *)a)->id, y = ((const hvsim_conn_info_t *)b)->id;

    return x < y ? -1 : x > y;
}

/* Does record R have an end in P? */
static int has_end(const struct track_rec *r, const struct part *p)
{
    return r->cpart == p || r->apart == p || (r->apart == NULL && hvsim_guid_equal(&r->acc_ep.partition, &p->id));
}

int h_vm_conns(struct req *r)
{
    struct hvsim_msg_vm_page m;
    hvsim_conn_info_t *v;
    struct part *p;
    size_t i, n = 0, cap = 0;
    uint32_t k;
    int rc = 0;

    memcpy(&m, r->body, sizeof(m));
    p = list_part(r, &m, HVSIM_MSG_VM_CONNS_REPLY, &rc);
    if (p == NULL)
        return rc;
    for (i = 0; i <= r->s->m.nvms; i++)
        cap += (i == r->s->m.nvms ? &r->s->m.host : r->s->m.vms[i])->trk.n;
    v = calloc(cap + 1, sizeof(*v));
    if (v == NULL)
        return reply_err(r->c, HVSIM_MSG_VM_CONNS_REPLY, r->h.seq, -ENOMEM, NULL);
    for (i = 0; i <= r->s->m.nvms; i++) {
        const struct track *t = i == r->s->m.nvms ? &r->s->m.host.trk : &r->s->m.vms[i]->trk;

        for (k = 0; k < t->n; k++)
            if (has_end(rec_at(t, k), p))
                conn_info(rec_at(t, k), &v[n++]);
    }
    /* Oldest first: ticket ids grow with time. */
    qsort(v, n, sizeof(*v), by_id);
    rc = track_page(r, HVSIM_MSG_VM_CONNS_REPLY, &m, (const char *)v, n, sizeof(*v), r->s->m.set.max_tracked,
                    p->trk.forgotten);
    free(v);
    return rc;
}
