/* SPDX-License-Identifier: MIT */
/*
 * proto.h: the wire format between libhvsim and hvsimd, defined once for both.
 *
 * Every control connection is an AF_UNIX SOCK_SEQPACKET socket, so one packet
 * is one message: a fixed header and a fixed body per type (HVSIM_MSG_MAP).
 * Both ends run on one machine, so fields are in native byte order. A body's
 * length must equal its type's size exactly, except the types marked
 * variable, which carry an array or text after a fixed part; the receiver
 * checks every length before it reads a field (proto_check).
 *
 * The ticket is the other wire object: the first bytes a connecting process
 * writes on a new stream, so the accepting process can check, with the key
 * the daemon gave its listener, that the daemon authorised this connection
 * and which addresses each side reports (docs/reference/design-notes.md 6).
 * Before it connects, the connector binds its socket to a name made of the
 * ticket's id and a tag (hvsim__conn_tag): the acceptor reads that name from
 * accept() itself, so a connection the daemon did not route is dropped before
 * a byte is read, and never holds up the next one.
 *
 * Listeners are socket files in HVSIM_DIR/l/ (HVSIM_LISTENER_DIR), which
 * only the daemon's user can reach: no listener address exists in the
 * abstract namespace, where any user could see, squat or flood it.
 */
#ifndef HVSIM_PROTO_H
#define HVSIM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "hvsim/hvsim.h"

#define HVSIM_PROTO_VERSION 11 /* 2: the VM gateway (OFFER, VERDICT, PENDING); 3: one endpoint, one outcome, no test fields;
                                * 4: lists in pages (a cursor), imports in pages;
                                * 5: a VM's transport and kernel (VM_ADD, VM_INFO, HELLO_REPLY);
                                * 6: the service-disabled event (EVENT carries a service);
                                * 7: SOCK_SEQPACKET (HVSIM_SF_SEQPACKET, OFFER flags, the gateway's SEQPACKET listener);
                                * 8: a partition's listeners and routed connections (VM_LISTENERS, VM_CONNS);
                                * 9: a VM's owner (VM_ADD, VM_INFO); ticket revocation (EVENT below, SERVICE_REMOVED);
                                * 10: spare tickets (CONNECT spares, CONNECT_REPLY epoch and spares, CONN_USED, the
                                *     routing epoch's page passed with HELLO_REPLY);
                                * 11: a virtio VM's sibling groups (VM_ADD, VM_INFO), a guest's CONNECT by CID */
#define HVSIM_MSG_MAX (256 * 1024)
#define HVSIM_UNAME_MAX 108 /* sizeof(sun_path) */
/* The most a list reply's or an import request's entries take: well under a
 * SEQPACKET socket's default send buffer (~208 KiB), so that a long registry
 * goes in pages and never meets EMSGSIZE. */
#define HVSIM_PAGE_BYTES (60 * 1024)
/* The most services one import may carry, over all its pages. */
#define HVSIM_IMPORT_MAX 100000
#define HVSIM_LISTENER_DIR "l" /* HVSIM_DIR/l/<name>: the listeners' socket files */
#define HVSIM_LISTENER_NAME_LEN 24 /* hex digits of a listener's random name */
/* The connector's bound (abstract) name: this prefix, 16 hex digits of the
 * ticket's id, a '-', 32 hex digits of its tag. */
#define HVSIM_CONN_NAME_PREFIX "hvsim-c-"
#define HVSIM_CONN_NAME_LEN (sizeof(HVSIM_CONN_NAME_PREFIX) - 1 + 16 + 1 + 32)

/* X(name, body struct, variable-length) */
#define HVSIM_MSG_MAP(X)                              \
    X(HELLO, struct hvsim_msg_hello, 0)               \
    X(HELLO_REPLY, struct hvsim_msg_hello_reply, 0)   \
    X(BIND, struct hvsim_msg_bind, 0)                 \
    X(BIND_REPLY, struct hvsim_msg_bind_reply, 0)     \
    X(UNBIND, struct hvsim_msg_unbind, 0)             \
    X(LISTEN, struct hvsim_msg_listen, 0)             \
    X(LISTEN_REPLY, struct hvsim_msg_listen_reply, 0) \
    X(CONNECT, struct hvsim_msg_connect, 0)           \
    X(CONNECT_REPLY, struct hvsim_msg_connect_reply, 1) \
    X(EVENT, struct hvsim_msg_event, 0)               \
    X(STATUS, struct hvsim_msg_status, 1)             \
    X(VM_ADD, struct hvsim_msg_vm_add, 0)             \
    X(VM_RM, struct hvsim_msg_vm_ref, 0)              \
    X(VM_OP, struct hvsim_msg_vm_op, 0)               \
    X(VM_LIST, struct hvsim_msg_page, 0)              \
    X(VM_LIST_REPLY, struct hvsim_msg_list, 1)        \
    X(VM_INFO, hvsim_vm_info_t, 0)                    \
    X(SVC_ADD, hvsim_service_info_t, 0)               \
    X(SVC_RM, struct hvsim_msg_guid, 0)               \
    X(SVC_LIST, struct hvsim_msg_page, 0)             \
    X(SVC_LIST_REPLY, struct hvsim_msg_list, 1)       \
    X(SVC_IMPORT, struct hvsim_msg_import, 1)         \
    X(HCS_SET, struct hvsim_msg_hcs_set, 0)           \
    X(SETTING_GET, struct hvsim_msg_setting, 0)       \
    X(SETTING_SET, struct hvsim_msg_setting, 0)       \
    X(SETTING_LIST, struct hvsim_msg_empty, 0)        \
    X(SETTING_REPLY, struct hvsim_msg_setting, 1)     \
    X(OFFER, struct hvsim_msg_offer, 0)               \
    X(VERDICT, struct hvsim_msg_verdict, 0)           \
    X(VM_LISTENERS, struct hvsim_msg_vm_page, 0)      \
    X(VM_LISTENERS_REPLY, struct hvsim_msg_track_list, 1) \
    X(VM_CONNS, struct hvsim_msg_vm_page, 0)          \
    X(VM_CONNS_REPLY, struct hvsim_msg_track_list, 1) \
    X(CONN_USED, struct hvsim_msg_conn_used, 0)

enum hvsim_msg_type {
    HVSIM_MSG_NONE = 0,
#define X(name, type, var) HVSIM_MSG_##name,
    HVSIM_MSG_MAP(X)
#undef X
    HVSIM_MSG_COUNT
};

struct hvsim_msg_hdr {
    uint16_t type;
    uint16_t flags;
    int32_t status; /* replies: 0 or -errno */
    uint32_t seq; /* a reply echoes its request's */
    uint32_t len; /* body bytes after the header */
};

/* Personalities: how a socket speaks (hvsim_socket's domain decides). */
enum hvsim_personality {
    HVSIM_PERS_WINDOWS = 0, /* AF_HYPERV */
    HVSIM_PERS_LINUX = 1, /* AF_VSOCK in a VM: a Linux guest over hv_sock */
    HVSIM_PERS_VSOCK_HOST = 2, /* AF_VSOCK on the host: KVM-style, VMs by CID */
};

/* Socket flags carried to the daemon and to the peer. */
#define HVSIM_SF_SUSPEND 0x1 /* HVSOCKET_CONNECTED_SUSPEND */
#define HVSIM_SF_HIGH_VTL 0x2
#define HVSIM_SF_PRIVILEGED 0x4 /* the process may bind vsock ports <= 1023 */
#define HVSIM_SF_SEQPACKET 0x8 /* a SOCK_SEQPACKET socket: only a listener of its type takes it */
/* Of an address, not a socket: the acceptor's view of a sibling VM's connector
 * carries VMADDR_FLAG_TO_HOST in svm_flags, which vsock_assign_transport sets
 * on a child whose local and remote CIDs are both above 2 (vsock-virtio.md 7.8). */
#define HVSIM_SF_TO_HOST 0x10

struct hvsim_msg_empty {
    uint32_t unused;
};

struct hvsim_msg_hello {
    uint32_t version;
    uint32_t pad;
};

struct hvsim_msg_hello_reply {
    GUID self; /* this process's partition */
    GUID host; /* the host partition's id */
    char name[HVSIM_NAME_MAX];
    uint32_t is_host;
    uint32_t cid; /* the partition's vsock CID (2 for the host) */
    uint64_t instance; /* random per daemon run; names listeners */
    uint32_t win_timeout_ms; /* HVSOCKET_CONNECT_TIMEOUT default */
    uint32_t linux_timeout_ms; /* SO_VM_SOCKETS_CONNECT_TIMEOUT default */
    uint32_t timeout_clamp; /* 1: values above the maximum are clamped, 0: EINVAL */
    uint32_t transport; /* enum hvsim_vm_transport of the partition (the host: virtio, as vhost-vsock) */
    uint32_t kernel; /* enum hvsim_kernel of the partition */
    uint32_t pad;
};

struct hvsim_msg_bind {
    uint32_t personality;
    uint32_t flags;
    GUID vmid;
    GUID svc;
};

struct hvsim_msg_bind_reply {
    uint64_t bind_id;
    GUID vmid; /* as getsockname reports it */
    GUID svc;
};

struct hvsim_msg_unbind {
    uint64_t bind_id;
};

struct hvsim_msg_listen {
    uint64_t bind_id;
    uint32_t backlog;
    uint32_t flags;
    uint32_t gateway; /* enum hvsim_gw_listen */
    uint32_t pad;
    char uname[HVSIM_UNAME_MAX]; /* the socket file's name in HVSIM_DIR/l/ */
};

struct hvsim_msg_listen_reply {
    uint8_t key[16];
};

struct hvsim_msg_connect {
    uint64_t bind_id; /* 0: not bound */
    uint32_t personality;
    uint32_t flags;
    uint32_t timeout_ms; /* 0: the personality's default */
    uint32_t blocking; /* 1: a blocking connect, which may wait for a listener to appear (waiting.c) */
    GUID vmid;
    GUID svc;
    uint32_t spares; /* how many spare tickets the caller wants besides (at most HVSIM_SPARES_MAX; unbound only) */
    uint32_t pad;
};

/*
 * One end of a connection: the address a socket reports (getsockname or
 * getpeername) and, for a peer, what the other side may know of its owner.
 * Every message and the library's sockets carry endpoints whole, so an
 * address is never copied field by field.
 */
struct hvsim_endpoint {
    GUID vmid;
    GUID svc; /* a vsock port is Data1 of the template service */
    GUID partition; /* the partition the socket belongs to */
    uint32_t cid; /* that partition's vsock CID, as the other side reports it */
    uint32_t flags; /* its HVSIM_SF_* */
};

enum hvsim_verdict {
    HVSIM_VERDICT_OK = 0,
    HVSIM_VERDICT_REFUSE = 1, /* fail now with status */
    HVSIM_VERDICT_NOANSWER = 2, /* nobody answers: fail with ETIMEDOUT after timeout_ms */
    HVSIM_VERDICT_PENDING = 3, /* a VM's gateway is asking its guest: the real reply comes, within
                                * timeout_ms, on the fd passed with this one (read it without the
                                * request lock, so the process's other calls go on) */
};

/*
 * A routing decision, as the daemon, the gateway and the library all apply
 * it; only the router (sim/daemon/route.c) makes one. Nothing is inferred:
 * the errno the caller gets and when are both here.
 */
struct hvsim_outcome {
    uint32_t verdict; /* enum hvsim_verdict */
    int32_t error; /* REFUSE and NOANSWER: the -errno the caller gets; OK, PENDING: 0 */
    uint32_t wait_ms; /* NOANSWER: after this long; PENDING: the gateway's deadline */
    uint32_t rule; /* enum hvsim_rule (hvproto/rules.h): the rule or setting that decided */
};

/* The ticket the connector writes first on a new stream (see the top of the file). */
#define HVSIM_TICKET_MAGIC 0x6b746876u /* "vhtk" */
struct hvsim_ticket {
    uint32_t magic;
    uint32_t version;
    uint64_t conn_id;
    uint64_t expires_ns; /* CLOCK_MONOTONIC */
    struct hvsim_endpoint local; /* the acceptor's getsockname */
    struct hvsim_endpoint peer; /* the connector: the acceptor's getpeername, its partition, CID, flags */
    uint8_t mac[16]; /* SipHash-2-4-128 of the fields above, keyed by the listener's key */
};

struct hvsim_msg_connect_reply {
    struct hvsim_outcome outcome;
    struct hvsim_outcome vanished; /* OK: the outcome when the listener is gone (or full) at connect time */
    struct hvsim_endpoint local; /* the connector's getsockname */
    struct hvsim_endpoint peer; /* the listener: getpeername, its partition, CID, flags */
    char uname[HVSIM_UNAME_MAX]; /* the path of the listener's socket file, HVSIM_DIR/l/<name> */
    uint8_t tag[16]; /* hvsim__conn_tag of the ticket's id: the connector binds to it */
    struct hvsim_ticket ticket;
    /* The routing epoch this answer holds for (the page passed with
     * HELLO_REPLY), and how many struct hvsim_spare follow the body. */
    uint64_t epoch;
    uint32_t nspares;
    uint32_t pad;
};

/*
 * Spare tickets. A process that connects to one address again and again asks
 * for up to HVSIM_SPARES_MAX more tickets with its CONNECT: the same route,
 * made again for each (a port and a ticket of its own), which the library
 * uses for its next connects to that address without a round trip, while
 * nothing that routes has changed. That is what the routing epoch says: a
 * counter in a page the daemon shares read-only with every attached process
 * (a sealed memfd, passed with HELLO_REPLY), which it moves before it answers
 * any request that may change a route (a bind, a listener, a VM, a service, a
 * setting, a process gone). A spare whose epoch is not the page's is dropped;
 * so a connect uses one only where the daemon, asked now, would answer the
 * same. A spare's ticket is the same as any: single-use, bound to its tag
 * (which only the session that asked knows), revoked by the events after it.
 * The library tells the daemon which spare it used (CONN_USED, no reply), for
 * the daemon's listing of connections.
 */
#define HVSIM_SPARES_MAX 16
struct hvsim_spare {
    struct hvsim_endpoint local; /* the connector's getsockname */
    uint8_t tag[16];
    struct hvsim_ticket ticket;
};

struct hvsim_msg_conn_used {
    uint64_t conn_id; /* the spare's ticket id */
};

enum hvsim_event {
    HVSIM_EV_PAUSE = 1,
    HVSIM_EV_RESUME = 2,
    HVSIM_EV_RESET = 3, /* connections of the VM break */
    HVSIM_EV_OFF = 4, /* connections of the VM break */
    HVSIM_EV_REMOVED = 5,
    HVSIM_EV_SERVICE_DISABLED = 6, /* an HCS service turned Disabled: the VM's connections of svc break */
    HVSIM_EV_SERVICE_REMOVED = 7, /* to the host's processes: svc left the registry (service rm) */
};

/* How long a ticket is good for after the daemon issues it (CLOCK_MONOTONIC). */
#define HVSIM_TICKET_LIFETIME_NS (10ull * 1000000000ull)

struct hvsim_msg_event {
    GUID vmid;
    uint32_t event;
    uint32_t pad;
    GUID svc; /* SERVICE_DISABLED, SERVICE_REMOVED: the service */
    /* The first ticket id not issued yet when the event was sent: the route
     * stopped holding, so a listener refuses the unused tickets below it
     * that the event concerns (socket.c, revocation_of). */
    uint64_t below;
};

/*
 * The gateway channel (a SEQPACKET pair: one end passed with LISTEN, the other
 * kept by the back-end). A VM whose guest runs its own kernel (a QEMU guest)
 * has no listener the daemon can see: its back-end listens once as the
 * gateway, and the daemon asks it, with OFFER, about every host connection to
 * a template service of the VM that no other listener takes. The back-end
 * asks the guest and answers with VERDICT; only then does the connector's
 * connect return (accepted: the stream then arrives at the gateway listener).
 */
/* What a LISTEN is: a plain listener, a back-end's gateway (the message
 * carries its channel fd), or the gateway's SEQPACKET listener, where the
 * guest's accepted SEQPACKET connections arrive (the offers of both come on
 * the gateway's one channel). */
enum hvsim_gw_listen {
    HVSIM_GW_NONE = 0,
    HVSIM_GW_STREAM = 1,
    HVSIM_GW_SEQPACKET = 2,
};

enum hvsim_gw_answer {
    HVSIM_GW_ACCEPT = 0, /* the guest accepted: the stream follows */
    HVSIM_GW_REFUSE = 1, /* the guest reset the request (no listener) */
    HVSIM_GW_SILENT = 2, /* the guest did not answer */
    HVSIM_GW_NO_SEQPACKET = 3, /* a SEQPACKET offer, and the guest's driver did not take VIRTIO_VSOCK_F_SEQPACKET */
};

struct hvsim_msg_offer {
    uint64_t id;
    uint32_t port; /* the guest port: the service's Data1 */
    uint32_t peer_port; /* the connector's port (its service's Data1) */
    GUID svc; /* the service asked for */
    GUID peer_svc; /* the connector's service */
    GUID peer_partition;
    uint32_t timeout_ms; /* how long the connector waits for the verdict */
    uint32_t flags; /* the connector's HVSIM_SF_*: HVSIM_SF_SEQPACKET asks for a SEQPACKET connection */
};

struct hvsim_msg_verdict {
    uint64_t id;
    uint32_t answer; /* enum hvsim_gw_answer */
    uint32_t pad;
};

struct hvsim_msg_status {
    uint32_t nvms;
    uint32_t nservices;
    uint32_t nprocs;
    uint32_t nlisteners;
    /* followed by free text */
};

struct hvsim_msg_vm_add {
    char name[HVSIM_NAME_MAX];
    GUID id;
    uint32_t has_id;
    uint32_t kind;
    uint32_t transport; /* enum hvsim_vm_transport */
    uint32_t kernel; /* enum hvsim_kernel; 0: 6.1 */
    hvsim_vm_owner_t owner;
    char groups[HVSIM_GROUPS_MAX]; /* sibling groups, NAME[+NAME...]; "": none (virtio VMs only) */
};

struct hvsim_msg_vm_ref {
    char ref[HVSIM_NAME_MAX]; /* name or GUID text */
};

struct hvsim_msg_vm_op {
    char ref[HVSIM_NAME_MAX];
    char op[16];
};

struct hvsim_msg_count {
    uint32_t count;
    uint32_t pad;
    /* followed by count entries */
};

/* VM_LIST, SVC_LIST: one page, from entry CURSOR on. */
struct hvsim_msg_page {
    uint32_t cursor;
    uint32_t pad;
};

/* A page of a list: COUNT entries (at most HVSIM_PAGE_BYTES) from the
 * request's cursor follow; NEXT is the next page's cursor (TOTAL: the end).
 * GEN changes whenever the list does: a reader whose pages disagree on it
 * starts again, so no list is ever cut or mixed silently. */
struct hvsim_msg_list {
    uint32_t count;
    uint32_t total;
    uint32_t next;
    uint32_t gen;
};

/* VM_LISTENERS, VM_CONNS: one page of what REF (a VM's name or GUID, or
 * "host") holds, from entry CURSOR on. */
struct hvsim_msg_vm_page {
    struct hvsim_msg_page page;
    char ref[HVSIM_NAME_MAX];
};

/* Their replies: a page as for VM_LIST (hvsim_listener_info_t or
 * hvsim_conn_info_t entries follow), the partition's ceiling of records
 * (max_binds_per_partition, max_tracked_connections) and how many records
 * of its own connects it has forgotten at that ceiling since it was made. */
struct hvsim_msg_track_list {
    struct hvsim_msg_list list;
    uint32_t limit;
    uint32_t pad;
    uint64_t forgotten;
};

/* SVC_IMPORT: COUNT entries follow (at most HVSIM_PAGE_BYTES). With
 * HVSIM_IMPORT_MORE the daemon keeps them and waits for the next page; the
 * page without it commits the whole import, all or nothing. The reply
 * echoes COUNT as the number of entries held so far (all, when committed). */
#define HVSIM_IMPORT_MORE 0x1u
struct hvsim_msg_import {
    uint32_t count;
    uint32_t flags;
};

struct hvsim_msg_guid {
    GUID id;
};

struct hvsim_msg_hcs_set {
    char vm[HVSIM_NAME_MAX];
    hvsim_hcs_service_t svc;
};

struct hvsim_msg_setting {
    char name[64];
    char value[192];
    /* SETTING_REPLY to SETTING_LIST: followed by "name=value\n" text */
};

/* Body size of a type, and whether more may follow. */
size_t hvsim__msg_size(unsigned type);
int hvsim__msg_variable(unsigned type);
const char *hvsim__msg_name(unsigned type);
/* Validate a received packet: header, known type, exact or minimum length.
 * Returns 0 or -EPROTO; a reply's error text (status < 0) may follow any body. */
int hvsim__msg_check(const void *buf, size_t n);

/* Send one message (header + body [+ extra]) with an optional fd. Returns 0 or -errno. */
int hvsim__msg_send(int fd, unsigned type, int32_t status, uint32_t seq, const void *body, size_t blen,
                    const void *extra, size_t elen, int pass_fd);
/* Put fd in m's control data as SCM_RIGHTS: ctl is CMSG_SPACE(sizeof(int))
 * bytes, aligned for a struct cmsghdr, and lives as long as m is sent. */
void hvsim__msg_put_fd(struct msghdr *m, void *ctl, size_t ctl_len, int fd);
/* Receive one message into buf (HVSIM_MSG_MAX bytes); *got_fd gets a passed fd or -1.
 * Returns the packet length, 0 on EOF, or -errno (-EPROTO when malformed). */
ssize_t hvsim__msg_recv(int fd, void *buf, size_t cap, int *got_fd);
/* The calls the two above make: libc's, unless libhvsim points them at its
 * libc table (sim/lib/libc.c), as it does inside the interposer. */
void hvsim__msg_io(ssize_t (*sendmsg_fn)(int, const struct msghdr *, int),
                   ssize_t (*recvmsg_fn)(int, struct msghdr *, int), int (*close_fn)(int));

/* Ticket MAC. */
void hvsim__ticket_sign(struct hvsim_ticket *t, const uint8_t key[16]);
int hvsim__ticket_verify(const struct hvsim_ticket *t, const uint8_t key[16]);
/* The tag of a connection id under a listener's key (what the connector's
 * bound name carries), and the name itself: out gets HVSIM_CONN_NAME_LEN
 * characters and a NUL. */
void hvsim__conn_tag(uint64_t conn_id, const uint8_t key[16], uint8_t tag[16]);
void hvsim__conn_name(uint64_t conn_id, const uint8_t tag[16], char out[HVSIM_CONN_NAME_LEN + 1]);
/* 1 when name (len bytes, no NUL) is a connector's name with a valid tag
 * under key; *conn_id gets its id. */
int hvsim__conn_name_check(const char *name, size_t len, const uint8_t key[16], uint64_t *conn_id);
/* 1 when name is a listener file name as the library makes them. */
int hvsim__listener_name_ok(const char *name);

/* The HELLO reply carries no test field: a test build's choices travel
 * outside the protocol (docs/architecture.md, "Test hooks"). */
_Static_assert(sizeof(struct hvsim_msg_hello_reply) ==
                   2 * sizeof(GUID) + HVSIM_NAME_MAX + 2 * sizeof(uint32_t) + sizeof(uint64_t) + 6 * sizeof(uint32_t),
               "HELLO_REPLY: the fields above, nothing more");

#endif /* HVSIM_PROTO_H */
