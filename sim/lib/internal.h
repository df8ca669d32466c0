/* SPDX-License-Identifier: MIT */
/*
 * internal.h: what the files of libhvsim share but do not export. Only
 * sim/lib includes it: the daemon and the tools share libhvsim-proto
 * (sim/proto), the adapters hvsim_adapter.h. Internal functions return 0 or a negative
 * errno; only the POSIX-shaped calls of hvsim.h use -1 and errno.
 */
#ifndef HVSIM_INTERNAL_H
#define HVSIM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "hvsim/hvsim.h"
#include "hvproto/mutants.h"
#include "hvproto/proto.h"
#include "hvproto/util.h"
#include "hvsim_adapter.h"

#define HVSIM_DEBUG 0

/* ---- libc.c: the one table through which the library reaches libc -------------- */

/* Every libc call of the library that an interposer may also export. In a
 * normal link the entries are libc's functions; inside the interposer,
 * hvsim__libc_use_next() (hvsim_adapter.h) sets them to the next definitions
 * with dlsym(RTLD_NEXT), so the library never lands on the interposer's
 * wrappers. Never called through anything else in sim/lib. */
#define HVSIM__LIBC_FUNCS(X)                                                  \
    X(socket, int, (int, int, int))                                           \
    X(socketpair, int, (int, int, int, int *))                                \
    X(bind, int, (int, const struct sockaddr *, socklen_t))                   \
    X(connect, int, (int, const struct sockaddr *, socklen_t))                \
    X(listen, int, (int, int))                                                \
    X(accept4, int, (int, struct sockaddr *, socklen_t *, int))               \
    X(getsockopt, int, (int, int, int, void *, socklen_t *))                  \
    X(setsockopt, int, (int, int, int, const void *, socklen_t))              \
    X(shutdown, int, (int, int))                                              \
    X(send, ssize_t, (int, const void *, size_t, int))                        \
    X(recv, ssize_t, (int, void *, size_t, int))                              \
    X(sendmsg, ssize_t, (int, const struct msghdr *, int))                    \
    X(recvmsg, ssize_t, (int, struct msghdr *, int))                          \
    X(close, int, (int))                                                      \
    X(dup3, int, (int, int, int))                                             \
    X(fcntl, int, (int, int, ...))                                            \
    X(ioctl, int, (int, unsigned long, ...))                                  \
    X(open, int, (const char *, int, ...))

struct hvsim__libc {
#define X(name, ret, args) ret(*name) args;
    HVSIM__LIBC_FUNCS(X)
#undef X
};

extern struct hvsim__libc hvsim__libc;

/* Set errno and the thread's Winsock code from a negative errno; returns -1. */
int hvsim__fail(int negerr);

/* ---- client.c: owners, and their attachment to the daemon --------------------- */

/*
 * The process a socket belongs to: whose partition it speaks as, the control
 * session its requests go through, the helper that applies its partition
 * events and ends its failed connects, and whose privileges decide (a bind
 * below port 1024). The socket calls take it from the socket (set when the
 * socket is made) and never assume the calling process. Today there is one,
 * this process (hvsim__self_owner()), which the public API uses; a supervisor
 * acting for another process would make one per served process.
 */
struct hvsim__owner;

struct hvsim__owner *hvsim__self_owner(void);
/* Attach (once, again after fork or a daemon restart) and report who the
 * owner is. Returns 0 or -ENETDOWN. */
int hvsim__owner_attach(struct hvsim__owner *o, struct hvsim__attach *out);
/* 1 when the owner holds a live attachment (a forked child does not). */
int hvsim__owner_attached(struct hvsim__owner *o);
/* 1 when the owner has capability cap (linux/capability.h) in effect. */
int hvsim__owner_capable(struct hvsim__owner *o, int cap);
/* One request/reply round trip on the owner's control connection. Returns 0
 * when a reply of want_type (or an error reply) arrived, with its status in
 * *status; else -errno of the transport (-ENETDOWN: daemon gone). */
int hvsim__request(struct hvsim__owner *o, unsigned type, const void *body, size_t blen, unsigned want_type,
                   void *reply, size_t rlen, int32_t *status);
/* The same, passing pass_fd (>= 0) with the request; got_fd (if not NULL)
 * gets an fd the reply carried, or -1. */
int hvsim__request_fd(struct hvsim__owner *o, unsigned type, const void *body, size_t blen, int pass_fd,
                      unsigned want_type, void *reply, size_t rlen, int32_t *status, int *got_fd);
/* Make fd a failed connect of the owner's: it reports nothing until after_ms
 * passed, then EPOLLOUT|EPOLLERR|EPOLLHUP (design-notes section 1). Returns 0
 * or -errno. */
int hvsim__limbo(struct hvsim__owner *o, int fd, uint32_t after_ms);

/* The owner's spare tickets (spares.c). */
struct hvsim__spares *hvsim__owner_spares(struct hvsim__owner *o);
/* 1 when the owner's session holds (one poll: the daemon has not gone). */
int hvsim__owner_alive(struct hvsim__owner *o);
/* A message that gets no reply, on the owner's session if it holds. Returns 0 or -errno. */
int hvsim__owner_notice(struct hvsim__owner *o, unsigned type, const void *body, size_t blen);

/* ---- spares.c: connects without a round trip (hvproto/proto.h, "Spare tickets") ---- */

struct hvsim__spares {
    pthread_mutex_t lock;
    const _Atomic uint64_t *epoch; /* the daemon's page, read-only; NULL: no spares */
    size_t page_len;
    struct hvsim_msg_connect key; /* the last request routed, as spares_key makes it */
    int have_key;
    struct hvsim_msg_connect_reply base; /* the batch's reply: outcome, listener, its epoch */
    uint64_t fresh_until_ns;
    unsigned n, next;
    struct hvsim_spare v[HVSIM_SPARES_MAX];
};

/* A new session (HELLO): its page (fd of the memfd, or -1; closed here), no spares. */
void hvsim__spares_session(struct hvsim__spares *sp, int page_fd);
/* After fork: the child's copy of the lock and of the parent's spares go. */
void hvsim__spares_atfork_child(struct hvsim__spares *sp);
/* How many spares to ask for with connect request m (0: none). */
unsigned hvsim__spares_want(struct hvsim__spares *sp, const struct hvsim_msg_connect *m);
/* The daemon's answer r to m, and the n spares that came with it. */
void hvsim__spares_store(struct hvsim__spares *sp, const struct hvsim_msg_connect *m,
                         const struct hvsim_msg_connect_reply *r, const struct hvsim_spare *v, unsigned n);
/* 1 and *r as the daemon would answer m now, from a spare; 0 when none holds. */
int hvsim__spares_take(struct hvsim__spares *sp, const struct hvsim_msg_connect *m, struct hvsim_msg_connect_reply *r);
/* The listener was not there: ask the daemon next time. */
void hvsim__spares_drop(struct hvsim__spares *sp);

/* ---- ticketset.c: the tickets a listener has taken -------------------------------- */

/* How many of the latest ticket ids a listener remembers (a multiple of 64):
 * an id this far behind the newest it took is refused. */
#define HVSIM__TICKET_WINDOW 65536u

struct hvsim__ticketset {
    uint64_t base; /* the id of bit 0 */
    uint64_t *bits; /* HVSIM__TICKET_WINDOW bits: taken */
};

/* 1 when the ticket id is new (now taken), 0 when it was taken before, has
 * expired or is older than the window, -ENOMEM. */
int hvsim__ticketset_take(struct hvsim__ticketset *t, uint64_t id, uint64_t expires_ns, uint64_t now);
/* The table, at listen(), so a listener does not pay for it in the middle of
 * its first connections. */
int hvsim__ticketset_reserve(struct hvsim__ticketset *t);
void hvsim__ticketset_free(struct hvsim__ticketset *t);

/* ---- socket.c ------------------------------------------------------------------- */

/* 1 when owner o holds bound or listening sockets, which a new daemon must
 * learn about; hvsim__sock_reregister binds and listens them again there
 * (helper thread, after an attach to a new daemon run). */
int hvsim__sock_has_binds(struct hvsim__owner *o);
void hvsim__sock_reregister(struct hvsim__owner *o);

/* socket() on behalf of owner o (hvsim_socket: the calling process). */
int hvsim__socket_as(struct hvsim__owner *o, int domain, int type, int protocol);
/* Apply a partition event from the daemon to owner o's sockets. */
void hvsim__sock_event(struct hvsim__owner *o, const struct hvsim_msg_event *ev);
void hvsim__sock_atfork_child(void);

#endif /* HVSIM_INTERNAL_H */
