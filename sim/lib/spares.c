/* SPDX-License-Identifier: MIT */
/*
 * spares.c: a process's spare tickets (hvproto/proto.h, "Spare tickets"), so
 * that its next connects to the address it connected to last cost no round
 * trip to the daemon, while nothing that routes has changed.
 *
 * One batch is kept, for one request: the common case this serves is a
 * client connecting to one service again and again. A spare is used only
 * while the daemon's routing epoch is the one the batch was routed in, and
 * only in its first second (its ticket is good for ten, and the acceptor
 * checks it when it accepts, which may come later).
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define SPARE_FRESH_NS 1000000000ull

/* What makes two connects the same route: where to, as what, with which
 * flags. A bound socket's connect is never served from a spare. */
static void spares_key(const struct hvsim_msg_connect *m, struct hvsim_msg_connect *k)
{
    memset(k, 0, sizeof(*k));
    k->personality = m->personality;
    k->flags = m->flags;
    k->timeout_ms = m->timeout_ms;
    k->vmid = m->vmid;
    k->svc = m->svc;
}

static void forget(struct hvsim__spares *sp)
{
    sp->have_key = 0;
    sp->n = sp->next = 0;
}

void hvsim__spares_session(struct hvsim__spares *sp, int page_fd)
{
    const _Atomic uint64_t *page = NULL;
    size_t len = 0;
    struct stat st;

    if (page_fd >= 0) {
        if (fstat(page_fd, &st) == 0 && st.st_size >= (off_t)sizeof(uint64_t)) {
            void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, page_fd, 0);

            if (p != MAP_FAILED) {
                page = p;
                len = (size_t)st.st_size;
            }
        }
        close(page_fd);
    }
    pthread_mutex_lock(&sp->lock);
    if (sp->epoch != NULL)
        munmap((void *)sp->epoch, sp->page_len);
    sp->epoch = page;
    sp->page_len = len;
    forget(sp);
    pthread_mutex_unlock(&sp->lock);
}

void hvsim__spares_atfork_child(struct hvsim__spares *sp)
{
    /* The page stays mapped (the new session replaces it); the tickets were
     * the parent's session's. */
    pthread_mutex_init(&sp->lock, NULL);
    forget(sp);
}

unsigned hvsim__spares_want(struct hvsim__spares *sp, const struct hvsim_msg_connect *m)
{
    struct hvsim_msg_connect k;
    unsigned want;

    if (m->bind_id != 0)
        return 0;
    spares_key(m, &k);
    pthread_mutex_lock(&sp->lock);
    /* The second connect to one address asks: a one-off connect costs the
     * daemon no spares. */
    want = sp->epoch != NULL && sp->have_key && memcmp(&k, &sp->key, sizeof(k)) == 0 ? HVSIM_SPARES_MAX : 0;
    pthread_mutex_unlock(&sp->lock);
    return want;
}

void hvsim__spares_store(struct hvsim__spares *sp, const struct hvsim_msg_connect *m,
                         const struct hvsim_msg_connect_reply *r, const struct hvsim_spare *v, unsigned n)
{
    if (m->bind_id != 0)
        return;
    if (n > HVSIM_SPARES_MAX)
        n = HVSIM_SPARES_MAX;
    /* Only what the reply carried whole (the rest of the buffer is zeros). */
    for (unsigned i = 0; i < n; i++)
        if (v[i].ticket.magic != HVSIM_TICKET_MAGIC || v[i].ticket.conn_id == 0) {
            n = i;
            break;
        }
    pthread_mutex_lock(&sp->lock);
    spares_key(m, &sp->key);
    sp->have_key = 1;
    sp->base = *r;
    memcpy(sp->v, v, n * sizeof(*v));
    sp->n = r->outcome.verdict == HVSIM_VERDICT_OK ? n : 0;
    sp->next = 0;
    sp->fresh_until_ns = hvsim__now_ns() + SPARE_FRESH_NS;
    pthread_mutex_unlock(&sp->lock);
}

int hvsim__spares_take(struct hvsim__spares *sp, const struct hvsim_msg_connect *m, struct hvsim_msg_connect_reply *r)
{
    struct hvsim_msg_connect k;
    int ok = 0;

    if (m->bind_id != 0)
        return 0;
    spares_key(m, &k);
    pthread_mutex_lock(&sp->lock);
    if (sp->next < sp->n && sp->epoch != NULL && memcmp(&k, &sp->key, sizeof(k)) == 0) {
        if (atomic_load_explicit(sp->epoch, memory_order_acquire) != sp->base.epoch ||
            hvsim__now_ns() >= sp->fresh_until_ns) {
            sp->n = sp->next = 0; /* stale: the next connect asks, and asks for more */
        } else {
            const struct hvsim_spare *s = &sp->v[sp->next++];

            *r = sp->base;
            r->local = s->local;
            memcpy(r->tag, s->tag, sizeof(r->tag));
            r->ticket = s->ticket;
            r->nspares = 0;
            ok = 1;
        }
    }
    pthread_mutex_unlock(&sp->lock);
    return ok;
}

void hvsim__spares_drop(struct hvsim__spares *sp)
{
    pthread_mutex_lock(&sp->lock);
    sp->n = sp->next = 0;
    pthread_mutex_unlock(&sp->lock);
}
