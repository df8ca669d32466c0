/* SPDX-License-Identifier: MIT */
/*
 * waiting.c: host connects that wait for a guest listener. On Hyper-V a
 * host's connect to a guest service nobody listens on is not refused: when a
 * guest listener shows up before the connect timeout runs out, it completes
 * the pending connect (Microsoft's openvmm relies on it to dial an agent that
 * is still booting; docs/reference/hyperv-sockets.md 7, item 1).
 *
 * When the router says nobody answers a blocking host connect to a VM
 * (rule NO_ANSWER), the caller gets PENDING with a socket of its own, as for
 * a VM gateway (gateway.c), and the connect waits here. Every new listener of
 * that VM routes the waiting connects again; the first that routes OK is
 * answered with its ticket. At the deadline the caller is told to time out
 * at once (it has waited already).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_int.h"

struct waiter {
    struct proc *c;
    uint32_t seq;
    int reply_fd; /* the caller reads its answer here */
    uint64_t deadline_ns;
    struct part *to;
    struct route_conn_req rq; /* rq.bound is looked up again by bound_id */
    uint64_t bound_id;
};

/* At most this many connects wait at once, all VMs together. */
#define MAX_WAITERS 1024

int waiting_start(struct req *r, const struct route_conn_req *rq, struct part *to, uint32_t wait_ms)
{
    struct server *s = r->s;
    struct hvsim_msg_connect_reply pending = { .outcome = { .verdict = HVSIM_VERDICT_PENDING, .wait_ms = wait_ms,
                                                            .rule = HVSIM_RULE_WAIT_LISTENER } };
    struct waiter *w;
    int sv[2];

    if (s->nwaiters >= MAX_WAITERS)
        return 1; /* answer as before: nobody answers */
    if (s->nwaiters == s->cwaiters) {
        size_t nc = s->cwaiters ? s->cwaiters * 2 : 16;
        struct waiter *t = realloc(s->waiters, nc * sizeof(*t));

        if (t == NULL)
            return 1;
        s->waiters = t;
        s->cwaiters = nc;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
        return 1;
    if (hvsim__msg_send(r->c->fd, HVSIM_MSG_CONNECT_REPLY, 0, r->h.seq, &pending, sizeof(pending), NULL, 0, sv[1]) <
        0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    close(sv[1]);
    w = &s->waiters[s->nwaiters++];
    *w = (struct waiter){ .c = r->c, .seq = r->h.seq, .reply_fd = sv[0], .to = to, .rq = *rq,
                          .deadline_ns = hvsim__now_ns() + (uint64_t)wait_ms * 1000000u,
                          .bound_id = rq->bound ? rq->bound->id : 0 };
    w->rq.bound = NULL;
    return 0;
}

/* Answer waiter i and forget it. A caller that gave up (a signal) has
 * closed its end: nothing is lost. */
static int waiter_finish(struct server *s, size_t i, const struct hvsim_msg_connect_reply *rep)
{
    struct waiter w = s->waiters[i];
    int rc;

    s->waiters[i] = s->waiters[--s->nwaiters];
    rc = hvsim__msg_send(w.reply_fd, HVSIM_MSG_CONNECT_REPLY, 0, w.seq, rep, sizeof(*rep), NULL, 0, -1);
    close(w.reply_fd);
    return rc;
}

void waiting_retry(struct server *s, const struct part *vm)
{
    size_t i = 0;

    while (i < s->nwaiters) {
        struct waiter *w = &s->waiters[i];
        struct route_conn_res res;
        struct hvsim_msg_connect_reply out;
        struct proc *c = w->c;
        uint32_t pers = w->rq.pers;

        if (w->to != vm) {
            i++;
            continue;
        }
        w->rq.bound = w->bound_id ? model_bind_find(&s->m, w->bound_id) : NULL;
        if (route_connect(&s->m, &w->rq, &res) < 0 || res.outcome.verdict != HVSIM_VERDICT_OK) {
            i++;
            continue;
        }
        connect_reply_fill(s, &res, &out);
        if (waiter_finish(s, i, &out) == 0)
            track_connect(s, c, pers, &out, res.listener);
    }
}

int waiting_sweep(struct server *s)
{
    uint64_t now = hvsim__now_ns(), next = 0;
    size_t i = 0;

    while (i < s->nwaiters) {
        struct waiter *w = &s->waiters[i];

        if (now >= w->deadline_ns) {
            struct hvsim_msg_connect_reply out = {
                .outcome = { .verdict = HVSIM_VERDICT_NOANSWER, .error = -ETIMEDOUT, .rule = HVSIM_RULE_NO_ANSWER }
            };

            (void)waiter_finish(s, i, &out);
            continue;
        }
        if (next == 0 || w->deadline_ns < next)
            next = w->deadline_ns;
        i++;
    }
    return next == 0 ? -1 : (int)((next - now + 999999) / 1000000u);
}

void waiting_forget(struct server *s, const struct proc *c, const struct part *vm)
{
    size_t i = 0;

    while (i < s->nwaiters) {
        if (s->waiters[i].c == c || (vm && s->waiters[i].to == vm)) {
            close(s->waiters[i].reply_fd);
            s->waiters[i] = s->waiters[--s->nwaiters];
        } else {
            i++;
        }
    }
}

void waiting_free(struct server *s)
{
    waiting_forget(s, NULL, NULL);
    while (s->nwaiters) {
        close(s->waiters[s->nwaiters - 1].reply_fd);
        s->nwaiters--;
    }
    free(s->waiters);
    s->waiters = NULL;
    s->cwaiters = 0;
}
