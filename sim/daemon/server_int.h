/* SPDX-License-Identifier: MIT */
/*
 * server_int.h: what the files of hvsimd's event loop share, and nobody else
 * (main.c and the tests see server.h only).
 *
 * server.c          the event loop, clients coming and going, the dispatch table, start-up
 * handlers_part.c   what a partition's processes ask (HELLO, BIND, UNBIND, LISTEN, CONNECT)
 * handlers_admin.c  what hvsimctl asks on the admin socket (VM_*, SVC_*, HCS_SET, SETTING_*, STATUS)
 * gateway.c         connects to a VM back-end's gateway, waiting for its verdict (OFFER/VERDICT)
 * state.c           the model to and from persist.h's state file
 * track.c           the listings of a partition's listeners and routed connections (VM_LISTENERS, VM_CONNS)
 *
 * The names are unprefixed because they were one file's statics; they stay
 * inside hvsimd (and fuzz_server.c, which includes the .c files as one unit).
 */
#ifndef HVSIM_SERVER_INT_H
#define HVSIM_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "daemon.h"
#include "hvproto/util.h"
#include "server.h"

/* The low bits of an epoll event's data say what the rest points to. */
enum { W_ADMIN = 1, W_PART = 2, W_PROC = 3, W_GATEWAY = 4, W_EVT = 5 };
#define W_MASK 7u
/* How long the ticket of an OK connect is good for. */
#define TICKET_LIFETIME_NS HVSIM_TICKET_LIFETIME_NS

/* A connect waiting for a gateway's verdict (gateway.c). */
struct offer {
    uint64_t id;
    uint64_t bind_id; /* the gateway's bind */
    struct proc *c; /* the connector, only so that drop_proc can forget the offer */
    int reply_fd; /* where the connector waits for its CONNECT_REPLY (HVSIM_VERDICT_PENDING) */
    uint32_t seq;
    uint64_t deadline_ns;
    uint8_t key[16]; /* the gateway listener's, to sign the ticket on acceptance */
    struct hvsim_msg_connect_reply reply; /* the OK reply, ticket unsigned */
    struct hvsim_msg_connect req; /* the connector's request, for the decision log */
    char to[HVSIM_NAME_MAX]; /* the VM asked */
};

/* One message from a client, as a handler sees it. */
struct req {
    struct server *s;
    struct proc *c;
    struct hvsim_msg_hdr h;
    const char *body; /* h.len bytes, checked against the type's size */
    int fd; /* passed fd or -1; a handler that keeps it sets this to -1 */
};

/* A handler replies itself; it returns < 0 only when the client must be dropped. */
typedef int handler_fn(struct req *r);

/* ---- server.c ---------------------------------------------------------------------------------- */

void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int watch(struct server *s, int fd, void *obj, unsigned kind);
/* A new client on FD (accepted, or a socketpair end in the fuzz target), counted against P's ceiling. */
struct proc *proc_new(struct server *s, int fd, struct part *p, int admin);
/* At HELLO: the event socket (watched for the queue, server.c) and a pidfd of the peer. */
int proc_attach(struct server *s, struct proc *c, int evt_fd);
/* A partition's control socket: created and watched, or closed and unlinked. */
int open_part(struct server *s, struct part *p);
void close_part(struct server *s, struct part *p);
/* Forget a client with its binds and waiting connects, and close it. */
void drop_proc(struct server *s, struct proc *c);
/* An event to the processes of the VM it concerns and to the host's (never another VM's),
 * and a signal (through pidfds) to every process of a VM. */
void broadcast(struct server *s, const GUID *vmid, uint32_t event);
/* An HCS service of the VM turned Disabled: its connections break. */
void broadcast_service(struct server *s, const GUID *vmid, const GUID *svc);
/* service rm: the host's listeners refuse the unused tickets guests got for svc. */
void broadcast_service_removed(struct server *s, const GUID *svc);
void signal_vm(struct server *s, const struct part *p, int sig);
int reply(struct proc *c, unsigned type, uint32_t seq, const void *body, size_t len);
int reply_extra(struct proc *c, unsigned type, uint32_t seq, const void *body, size_t len, const void *extra,
                size_t elen);
int reply_err(struct proc *c, unsigned type, uint32_t seq, int err, const char *text);

/* ---- handlers_part.c --------------------------------------------------------------------------- */

int h_hello(struct req *r);
int h_bind(struct req *r);
int h_unbind(struct req *r);
int h_listen(struct req *r);
int h_connect(struct req *r);

/* ---- handlers_admin.c -------------------------------------------------------------------------- */

int h_status(struct req *r);
int h_vm_add(struct req *r);
int h_vm_rm(struct req *r);
int h_vm_op(struct req *r);
int h_vm_list(struct req *r);
int h_svc_add(struct req *r);
int h_svc_rm(struct req *r);
int h_svc_list(struct req *r);
int h_svc_import(struct req *r);
int h_hcs_set(struct req *r);
int h_setting_get(struct req *r);
int h_setting_set(struct req *r);
int h_setting_list(struct req *r);

/* ---- gateway.c --------------------------------------------------------------------------------- */

/* A LISTEN with m.gateway: returns 0 (the caller replies OK), 1 (an error
 * reply was sent) or -1 (drop the client). */
int gateway_open(struct req *r, struct bind *b, unsigned kind);
/* Ask the gateway GW about a PENDING connect (ok->outcome.wait_ms: the
 * connector's deadline); the connector gets PENDING now, the rest later. */
int offer_start(struct req *r, const struct bind *gw, const struct hvsim_msg_connect_reply *ok);
/* waiting.c: a blocking host connect to a guest nobody listens on waits for
 * a listener (0: PENDING sent; 1: answer as usual; -1: drop the client);
 * a new listener of vm routes the waiting connects again; the epoll timeout
 * until the next deadline (-1: none); forget a client's (or a VM's) waits. */
int waiting_start(struct req *r, const struct route_conn_req *rq, struct part *to, uint32_t wait_ms);
void waiting_retry(struct server *s, const struct part *vm);
int waiting_sweep(struct server *s);
void waiting_forget(struct server *s, const struct proc *c, const struct part *vm);
void waiting_free(struct server *s);
/* The CONNECT reply for a routed connect: outcome, endpoints, the listener's
 * path, the ticket and its tag (signed unless PENDING). */
void connect_reply_fill(struct server *s, const struct route_conn_res *res, struct hvsim_msg_connect_reply *out);
/* listeners.c: create HVSIM_DIR/l/ and sweep it of dead listeners' files
 * (0 or -errno with a message), and remove a bind's file. */
int listeners_open(struct server *s, char *err, size_t errlen);
void listener_file_remove(const struct server *s, const struct bind *b);
/* Remove a bind, closing its gateway channel first. */
void bind_remove(struct server *s, struct bind *b);
/* The gateway channel of B has something to read (VERDICTs). */
void gateway_readable(struct server *s, struct bind *b);
/* Answer the offers that are due; the epoll timeout until the next (-1: none). */
int offers_sweep(struct server *s);
/* A connector went: forget its offers, unanswered. */
void offers_forget(struct server *s, const struct proc *c);
/* At exit: close every waiting connector's socket, free the table. */
void offers_free(struct server *s);

/* ---- track.c ----------------------------------------------------------------------------------- */

/* A connect answered OK (out: the connector's reply, ticket filled; listener:
 * the bind that takes it, NULL when gone): a record, kept by the connector's partition. */
void track_connect(struct server *s, const struct proc *c, uint32_t pers, const struct hvsim_msg_connect_reply *out,
                   const struct bind *listener);
/* What ends records: a process detaching, an event that breaks connections. */
void track_forget_proc(struct server *s, const struct proc *c);
void track_event(struct server *s, const struct hvsim_msg_event *ev);
void track_free(struct track *t);
int h_vm_listeners(struct req *r);
int h_vm_conns(struct req *r);

/* ---- spares.c ---------------------------------------------------------------------------------- */

/* The routing epoch's page (no page: nobody gets spares). */
void epoch_init(struct server *s);
void epoch_fini(struct server *s);
uint64_t epoch_now(const struct server *s);
/* Before answering anything that may change a route. */
void epoch_bump(struct server *s);
/* Up to want more tickets for rq's route, routed as first was; returns how many. */
unsigned spares_issue(struct req *r, const struct route_conn_req *rq, const struct hvsim_msg_connect *m,
                      const struct route_conn_res *first, struct hvsim_spare *out, unsigned want);
void spares_forget_proc(struct proc *c);
int h_conn_used(struct req *r);

/* ---- state.c ----------------------------------------------------------------------------------- */

/* Both do nothing without a state folder. err gets the reason on failure. */
int save_state(struct server *s, char *err, size_t errlen);
int load_state(struct server *s, char *err, size_t errlen);

#endif /* HVSIM_SERVER_INT_H */
