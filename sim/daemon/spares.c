/* SPDX-License-Identifier: MIT */
/*
 * spares.c: the routing epoch and spare tickets (hvproto/proto.h, "Spare
 * tickets"): connects to an address a process uses again and again cost it
 * no round trip to the daemon, while every route stays the daemon's to make.
 *
 * The epoch is a counter in a page of a sealed memfd: the daemon writes it
 * through its own mapping, and every attached process maps it read-only (the
 * seal forbids any new writable mapping, so no process can hold another's
 * spares valid). The daemon moves it before it answers any request that may
 * change a route, so a process that learns of a change and then connects
 * reads the new value and asks the daemon.
 *
 * A spare is routed when it is issued, exactly as the CONNECT it comes with;
 * the daemon keeps the last ones it issued to each process (their decision
 * and addresses), so that CONN_USED, which carries only a ticket id, makes
 * the same record and decision-log line a routed connect makes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dlog.h"
#include "server_int.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010 /* Linux 5.1 */
#endif

/* A process's issued spares: more than one batch, so that a batch asked for
 * while the last one is still in use leaves the records of both. */
#define SPARE_RECS (2 * HVSIM_SPARES_MAX)

struct spare_rec {
    uint64_t conn_id; /* 0: free or used */
    uint64_t listener_id; /* the listener's bind id */
    uint32_t pers;
    struct hvsim_msg_connect req; /* for the decision log */
    struct hvsim_msg_connect_reply out; /* what a routed connect would have answered */
};

void epoch_init(struct server *s)
{
    int fd = memfd_create("hvsim-routing-epoch", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    void *p;

    s->epoch_fd = -1;
    s->epoch = NULL;
    /* Without it nobody gets spares: every connect asks, as before. */
    if (fd < 0)
        return;
    if (ftruncate(fd, sysconf(_SC_PAGESIZE)) < 0) {
        close(fd);
        return;
    }
    p = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0) {
        munmap(p, (size_t)sysconf(_SC_PAGESIZE));
        close(fd);
        return;
    }
    s->epoch = p;
    atomic_store_explicit(s->epoch, 1, memory_order_release);
    s->epoch_fd = fd;
}

void epoch_fini(struct server *s)
{
    if (s->epoch != NULL)
        munmap((void *)s->epoch, (size_t)sysconf(_SC_PAGESIZE));
    if (s->epoch_fd >= 0)
        close(s->epoch_fd);
    s->epoch = NULL;
    s->epoch_fd = -1;
}

uint64_t epoch_now(const struct server *s)
{
    return s->epoch != NULL ? atomic_load_explicit(s->epoch, memory_order_relaxed) : 0;
}

void epoch_bump(struct server *s)
{
    if (s->epoch != NULL)
        atomic_fetch_add_explicit(s->epoch, 1, memory_order_release);
}

void spares_forget_proc(struct proc *c)
{
    free(c->spares);
    c->spares = NULL;
}

/* Route rq again up to want times for the same listener as first: each a port
 * and a ticket of its own. Returns how many went to out. */
unsigned spares_issue(struct req *r, const struct route_conn_req *rq, const struct hvsim_msg_connect *m,
                      const struct route_conn_res *first, struct hvsim_spare *out, unsigned want)
{
    unsigned n = 0;

    if (r->s->epoch == NULL || want == 0 || rq->bound != NULL || first->listener == NULL ||
        first->outcome.verdict != HVSIM_VERDICT_OK)
        return 0;
    if (want > HVSIM_SPARES_MAX)
        want = HVSIM_SPARES_MAX;
    if (r->c->spares == NULL && (r->c->spares = calloc(SPARE_RECS, sizeof(*r->c->spares))) == NULL)
        return 0;
    while (n < want) {
        struct route_conn_res res;
        struct spare_rec *rec = &r->c->spares[r->c->spare_next];

        if (route_connect(&r->s->m, rq, &res) < 0 || res.listener != first->listener ||
            res.outcome.verdict != HVSIM_VERDICT_OK)
            break;
        rec->listener_id = res.listener->id;
        rec->pers = m->personality;
        rec->req = *m;
        connect_reply_fill(r->s, &res, &rec->out);
        rec->conn_id = rec->out.ticket.conn_id;
        out[n].local = rec->out.local;
        memcpy(out[n].tag, rec->out.tag, sizeof(out[n].tag));
        out[n].ticket = rec->out.ticket;
        r->c->spare_next = (r->c->spare_next + 1) % SPARE_RECS;
        n++;
    }
    return n;
}

static struct bind *bind_by_id(const struct model *m, uint64_t id)
{
    for (size_t i = 0; i < m->nbinds; i++)
        if (m->binds[i]->id == id)
            return m->binds[i];
    return NULL;
}

/* CONN_USED: no reply. A spare the daemon did not issue to this process, or
 * one already reported, is ignored (only its own listing could suffer). */
int h_conn_used(struct req *r)
{
    struct hvsim_msg_conn_used m;
    struct spare_rec *rec = NULL;
    struct bind *b;
    unsigned i;

    memcpy(&m, r->body, sizeof(m));
    for (i = 0; r->c->spares != NULL && i < SPARE_RECS; i++)
        if (m.conn_id != 0 && r->c->spares[i].conn_id == m.conn_id)
            rec = &r->c->spares[i];
    if (rec == NULL)
        return 0;
    rec->conn_id = 0;
    b = bind_by_id(&r->s->m, rec->listener_id);
    dlog_connect(r->c, rec->pers, &rec->req.vmid, &rec->req.svc, b ? b->part->name : NULL, &rec->out.outcome,
                 &rec->out.vanished);
    track_connect(r->s, r->c, rec->pers, &rec->out, b);
    return 0;
}
