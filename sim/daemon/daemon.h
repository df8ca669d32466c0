/* SPDX-License-Identifier: MIT */
/*
 * daemon.h: the emulated Hyper-V host's model, shared by the files of hvsimd.
 *
 * model.c holds the partitions (the host and its VMs), the service registry,
 * the bind table and the attached processes; route.c decides, from that model
 * alone, every bind and connect (which listener, or which error); settings.c
 * is the table of emulation choices; server.c is the event loop that speaks
 * proto.h to clients, with its handlers and gateways beside it (server_int.h).
 * route.c does no I/O, so unit tests drive it directly.
 */
#ifndef HVSIM_DAEMON_H
#define HVSIM_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hvsim/hvsim.h"
#include "hvproto/proto.h"
#include "hvproto/rules.h"

/* ---- settings.c ------------------------------------------------------------------ */

enum refusal_profile { PROFILE_HYPERV = 0, PROFILE_KVM = 1 };

struct settings {
    uint32_t win_timeout_ms; /* windows_connect_timeout_ms */
    uint32_t linux_timeout_ms; /* linux_connect_timeout_ms */
    uint32_t timeout_clamp; /* connect_timeout_above_max: 0 reject, 1 clamp */
    uint32_t zero_reaches_parent; /* guest_zero_vmid_reaches_host */
    uint32_t profile; /* refusal_profile */
    int32_t off_vm_error; /* connect_to_off_vm: -errno, or 1 = no answer */
    int32_t unknown_vm_error; /* connect_to_unknown_vm */
    int32_t sibling_error; /* guest_to_other_vm */
    int32_t virtio_sibling_error; /* virtio_guest_to_other_vm */
    uint32_t pause_freezes; /* pause_freezes_guests */
    uint32_t reset_kills; /* reset_kills_guests */
    /* Ceilings per partition (the README's limits table). */
    uint32_t max_conns; /* max_connections_per_partition: control connections, with HELLO or not */
    uint32_t max_binds; /* max_binds_per_partition */
    uint32_t max_pending; /* max_pending_connects: connects waiting for one VM's gateway */
    uint32_t max_events; /* max_queued_events: events waiting for the partition's processes to read */
    uint32_t hello_ms; /* hello_timeout_ms: a connection that has not sent HELLO by then is dropped */
    uint32_t max_tracked; /* max_tracked_connections: records of one partition's routed connects (track.c) */
};

void settings_defaults(struct settings *s);
/* Set by name from text; err gets "setting X: expected ..., got ..." on failure. */
int settings_set(struct settings *s, const char *name, const char *value, char *err, size_t errlen);
int settings_get(const struct settings *s, const char *name, char *value, size_t len);
/* "name=value\n" for every setting; malloc'ed. */
char *settings_list(const struct settings *s);
/* For the README and hvsimctl: name, choices, default, confidence, one line of why. */
size_t settings_count(void);
const char *settings_doc(size_t i, const char **name, const char **choices, const char **confidence);

/* ---- model.c --------------------------------------------------------------------- */

struct proc;

/* A connection the daemon routed and has not seen end (track.c): what
 * hvsimctl lists of it, kept small (it is copied on every routed connect);
 * names and texts are looked up when listed (a record never outlives either
 * partition: removing a VM ends its records first). */
struct track_rec {
    uint64_t id; /* the ticket's */
    uint64_t routed_ns; /* CLOCK_MONOTONIC: only shown (as a date) */
    struct hvsim_endpoint conn_ep, acc_ep; /* as the connector's getsockname and getpeername report them */
    const struct proc *conn, *acc; /* the connector's process, the listener's (NULL: gone already) */
    const struct part *cpart, *apart; /* their partitions (apart NULL: not known) */
    uint32_t conn_pid, acc_pid;
    uint32_t pers; /* the connector's personality */
    uint32_t rule; /* enum hvsim_rule */
};

/* A partition's records, oldest first, in a ring of at most max_tracked. */
struct track {
    struct track_rec *v;
    uint32_t head, n, cap;
    uint64_t forgotten; /* records dropped at the ceiling (the oldest goes) */
};

struct part {
    GUID id;
    char name[HVSIM_NAME_MAX];
    int is_host;
    uint32_t kind; /* enum hvsim_vm_kind */
    uint32_t state; /* enum hvsim_vm_state */
    uint32_t cid;
    /* Its Linux vsock transport and kernel (hvsim.h): they decide the
     * refusal a Linux guest meets (route.c) and, through HELLO, the options
     * and flags libhvsim gives its sockets. The host: virtio (vhost-vsock). */
    uint32_t transport; /* enum hvsim_vm_transport */
    uint32_t kernel; /* enum hvsim_kernel */
    /* Its own user (vm add --owner): its control socket is theirs (server.c). */
    hvsim_vm_owner_t owner;
    /* Its sibling groups, NAME[+NAME...] ("" none; virtio VMs only): its
     * guests reach a VM sharing one by CID (route.c, vsock-virtio.md 7.8). */
    char groups[HVSIM_GROUPS_MAX];
    hvsim_hcs_service_t *hcs;
    size_t nhcs;
    int listen_fd; /* its control socket */
    /* What it holds against its ceilings (settings); kept by server.c and model.c. */
    uint32_t nconns; /* control connections (admin ones are not counted) */
    uint32_t nrefusing; /* connections over the ceiling, held only to answer their HELLO */
    uint32_t nbinds;
    uint32_t nqueued; /* events queued in hvsimd for its processes */
    struct track trk; /* the connections its processes made (track.c) */
};

struct bind {
    uint64_t id;
    struct proc *owner;
    struct part *part;
    uint32_t pers;
    uint32_t flags;
    GUID vmid;
    GUID svc;
    int listening;
    int listen_err; /* HCS table: the bind "succeeded" but listen() fails with this -errno (hyperv-sockets.md 4.2, 7) */
    char uname[HVSIM_UNAME_MAX]; /* the listener's socket file name in HVSIM_DIR/l/ */
    char path[HVSIM_UNAME_MAX]; /* and its path, as connectors get it */
    uint8_t key[16];
    uint32_t backlog; /* as listen() gave it: only shown (the socket's own queue is the library's) */
    unsigned gateway; /* enum hvsim_gw_listen: a VM back-end's gateway listener (proto.h, OFFER), or its SEQPACKET one */
    int gw_fd; /* the channel of a HVSIM_GW_STREAM gateway; closed with the bind */
};

struct proc {
    int fd; /* request connection */
    int evt_fd; /* -1 until HELLO */
    int admin; /* came in on the admin socket */
    struct part *part;
    pid_t pid;
    uid_t uid;
    int pidfd; /* the peer process, from HELLO on (-1: none); signals go through it, never the pid */
    int refuse; /* over the partition's ceiling: its HELLO gets EMFILE, then it is dropped */
    uint64_t hello_deadline_ns; /* not admin, no HELLO yet: dropped at this time */
    struct hvsim_msg_event *evq; /* events its event socket could not take yet (server.c) */
    uint32_t nevq;
    hvsim_service_info_t *staged; /* admin: an import's pages before the last (handlers_admin.c) */
    size_t nstaged;
    struct spare_rec *spares; /* the spare tickets issued to it last (spares.c) */
    unsigned spare_next;
    struct proc *next;
};

struct model {
    struct settings set;
    struct part host;
    struct part **vms;
    size_t nvms;
    hvsim_service_info_t *services;
    size_t nservices;
    struct bind **binds;
    size_t nbinds;
    struct proc *procs;
    uint64_t next_bind_id;
    uint64_t next_conn_id;
    uint32_t next_port; /* ephemeral vsock ports */
    uint64_t instance;
    uint32_t gen; /* changes with every change to the VMs or the registry: a paged list restarts */
    uint32_t track_gen; /* the same for the listings of listeners and connections */
};

void model_init(struct model *m);
void model_free(struct model *m);
struct part *model_vm_find(const struct model *m, const char *name_or_id);
struct part *model_vm_by_id(const struct model *m, const GUID *id);
struct part *model_vm_by_cid(const struct model *m, uint32_t cid);
int model_vm_add(struct model *m, const char *name, const GUID *id, uint32_t kind, struct part **out, char *err,
                 size_t errlen);
void model_vm_remove(struct model *m, struct part *p);
/* Set a VM's transport and kernel (kernel 0: 6.1). 0, or -EINVAL with err. */
int model_vm_set_transport(struct part *p, uint32_t transport, uint32_t kernel, char *err, size_t errlen);
/* Set a VM's sibling groups (NULL or "": none), after its transport: only a
 * virtio VM may have any. 0, or -EINVAL with err naming the option. */
int model_vm_set_groups(struct part *p, const char *groups, char *err, size_t errlen);
/* owner->set 0: none. Before open_part, which gives the owner the socket. */
int model_vm_set_owner(struct part *p, const hvsim_vm_owner_t *owner, char *err, size_t errlen);
/* Take P out of the VM list without freeing it (returns where it was), and
 * put it back there: a removal that must be saved before it happens. */
size_t model_vm_detach(struct model *m, struct part *p);
void model_vm_reattach(struct model *m, struct part *p, size_t at);
const hvsim_service_info_t *model_service_find(const struct model *m, const GUID *id);
int model_service_add(struct model *m, const GUID *id, const char *element_name);
int model_service_rm(struct model *m, const GUID *id);
const hvsim_hcs_service_t *model_hcs_find(const struct part *p, const GUID *svc);
int model_hcs_set(struct part *p, const hvsim_hcs_service_t *svc);
struct bind *model_bind_find(const struct model *m, uint64_t id);
int model_bind_add(struct model *m, struct bind *b);
void model_bind_remove(struct model *m, struct bind *b);
uint32_t model_vm_nprocs(const struct model *m, const struct part *p);

/* ---- route.c --------------------------------------------------------------------- */

struct route_bind_req {
    struct part *from;
    uint32_t pers;
    uint32_t flags;
    GUID vmid;
    GUID svc;
};

/* Decide a bind: 0 with the reported address (svc filled in when it was zero
 * or VMADDR_PORT_ANY) and the -errno a later listen() gets (0: none), or -errno. */
int route_bind(struct model *m, const struct route_bind_req *rq, GUID *vmid, GUID *svc, int *listen_err);
/* Decide a listen on a bind: 0 or -errno. */
int route_listen(const struct model *m, const struct bind *b);

struct route_conn_req {
    struct part *from;
    uint32_t pers;
    uint32_t flags;
    uint32_t timeout_ms; /* 0: default */
    GUID vmid; /* for HVSIM_PERS_VSOCK_HOST: Data1 is the CID */
    GUID svc;
    const struct bind *bound; /* the connecting socket's own bind, or NULL */
};

struct route_conn_res {
    /* OK: a listener takes it; PENDING: a VM's gateway asks its guest (wait_ms:
     * the connector's deadline); REFUSE, NOANSWER: the caller's result. */
    struct hvsim_outcome outcome;
    /* OK and PENDING: the outcome when the listener is gone or full by the
     * time the caller connects to it: the same as if there had been none. */
    struct hvsim_outcome vanished;
    const struct bind *listener; /* a gateway (PENDING): the verdict is the back-end's (gateway.c) */
    struct part *to;
    struct hvsim_endpoint conn_local, conn_peer; /* the connector's view */
    struct hvsim_endpoint acc_local, acc_peer; /* the acceptor's view (the ticket) */
};

/* Decide a connect: 0 with the outcome and, when OK or PENDING, both views
 * of the connection; -errno for a request no client may make. */
int route_connect(struct model *m, const struct route_conn_req *rq, struct route_conn_res *out);
/* The VM's gateway with its channel (the one a SEQPACKET offer goes through too), or NULL. */
const struct bind *route_gateway(const struct model *m, const struct part *vm);
/* What the connector of a gateway offer gets for the guest's answer
 * (enum hvsim_gw_answer), with remaining_ms left of its wait. */
struct hvsim_outcome route_guest_answer(const struct model *m, unsigned answer, uint32_t remaining_ms);

#endif /* HVSIM_DAEMON_H */
