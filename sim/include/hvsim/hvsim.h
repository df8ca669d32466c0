/* SPDX-License-Identifier: MIT */
/*
 * hvsim.h: the one public header of libhvsim, the client library of the
 * emulated Hyper-V host.
 *
 * A process becomes a partition of the emulated host through its environment
 * (HVSIM_DIR: the daemon's run folder; HVSIM_PARTITION: "host" or a VM's name)
 * and then uses Hyper-V sockets through the calls below. They have the shape of
 * the POSIX socket calls (return -1 and set errno), take SOCKADDR_HV
 * (AF_HYPERV, the Windows personality) or struct sockaddr_vm (AF_VSOCK, the
 * Linux-guest personality), and every socket is a real file descriptor: read,
 * write, poll and epoll work on it directly.
 *
 * Errors are POSIX errno values; HVSIM_ERRNO_MAP gives each its Winsock code
 * and message, so a program can print what a Windows build would have seen.
 */
#ifndef HVSIM_HVSIM_H
#define HVSIM_HVSIM_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <linux/vm_sockets.h>

#include "hvsocket.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HVSIM_EXTERN __attribute__((visibility("default")))

/* The one version number of hvsim: the library's SONAME (libhvsim.so.MAJOR),
 * hvsim.pc and every binary's --version come from these three lines. */
#define HVSIM_VERSION_MAJOR 0
#define HVSIM_VERSION_MINOR 2
#define HVSIM_VERSION_PATCH 0

/* The error table (errno, Winsock code and name, message): HVSIM_ERRNO_MAP in
 * errmap.h. HVSIM_EDAEMON-style failures use ENETDOWN, which is also what
 * socket() gives on a Windows machine without Hyper-V (reference 4.4). */
#include "errmap.h"

/* Winsock code a Windows program would have seen for this errno (0: none). */
HVSIM_EXTERN int hvsim_wsa_error(int err);
/* The Winsock-style message for an errno value (either sign). */
HVSIM_EXTERN const char *hvsim_strerror(int err);
/* The errno's symbolic name, e.g. "ECONNREFUSED", or "UNKNOWN". */
HVSIM_EXTERN const char *hvsim_err_name(int err);
/* The Winsock name of the code, e.g. "WSAECONNREFUSED", or "" when none. */
HVSIM_EXTERN const char *hvsim_wsa_name(int err);
/* WSAGetLastError(): the Winsock code of this thread's last failing hvsim call. */
HVSIM_EXTERN int hvsim_get_last_error(void);

/* ---- GUIDs ----------------------------------------------------------------------- */

#define HVSIM_GUID_STRLEN 37 /* 36 characters and the NUL */

/* Parse "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (optionally in braces) into
 * Windows byte order. Returns 0 or -EINVAL. */
HVSIM_EXTERN int hvsim_guid_parse(const char *text, GUID *out);
/* Format in lower case, without braces. out must hold HVSIM_GUID_STRLEN bytes. */
HVSIM_EXTERN char *hvsim_guid_format(const GUID *g, char *out);
HVSIM_EXTERN int hvsim_guid_equal(const GUID *a, const GUID *b);
/* The service GUID of a Linux AF_VSOCK port: <port>-facb-11e6-bd58-64006a7986d3. */
HVSIM_EXTERN GUID hvsim_guid_from_port(uint32_t port);
/* 1 and the port if the GUID follows the VSOCK template, 0 otherwise. */
HVSIM_EXTERN int hvsim_guid_to_port(const GUID *g, uint32_t *port);
/* Parse a VmId as a user writes it: a GUID or one of the names zero, wildcard,
 * broadcast, children, loopback, parent, silohost. Returns 0 or -EINVAL. */
HVSIM_EXTERN int hvsim_vmid_parse_name(const char *text, GUID *out);

/* ---- Sockets: the POSIX-shaped calls (-1 and errno on failure) -------------------- */

HVSIM_EXTERN int hvsim_socket(int domain, int type, int protocol);
HVSIM_EXTERN int hvsim_bind(int fd, const struct sockaddr *addr, socklen_t len);
HVSIM_EXTERN int hvsim_listen(int fd, int backlog);
HVSIM_EXTERN int hvsim_accept(int fd, struct sockaddr *addr, socklen_t *len);
HVSIM_EXTERN int hvsim_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
HVSIM_EXTERN int hvsim_connect(int fd, const struct sockaddr *addr, socklen_t len);
HVSIM_EXTERN ssize_t hvsim_send(int fd, const void *buf, size_t len, int flags);
HVSIM_EXTERN ssize_t hvsim_recv(int fd, void *buf, size_t len, int flags);
/* The rest of the family, with each personality's rules: a destination on a
 * stream (AF_VSOCK: EISCONN when connected, else EOPNOTSUPP; AF_HYPERV:
 * ignored); no source address (AF_VSOCK: the length becomes 0; AF_HYPERV: left
 * alone); the iovecs of one message as one stream call; ancillary data never
 * carried (msg_controllen becomes 0). Flags as send and recv. */
HVSIM_EXTERN ssize_t hvsim_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
                                  socklen_t tolen);
HVSIM_EXTERN ssize_t hvsim_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
                                    socklen_t *fromlen);
HVSIM_EXTERN ssize_t hvsim_sendmsg(int fd, const struct msghdr *msg, int flags);
HVSIM_EXTERN ssize_t hvsim_recvmsg(int fd, struct msghdr *msg, int flags);
HVSIM_EXTERN int hvsim_shutdown(int fd, int how);
HVSIM_EXTERN int hvsim_close(int fd);
HVSIM_EXTERN int hvsim_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
HVSIM_EXTERN int hvsim_getpeername(int fd, struct sockaddr *addr, socklen_t *len);
HVSIM_EXTERN int hvsim_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
HVSIM_EXTERN int hvsim_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
/* ioctl(IOCTL_VM_SOCKETS_GET_LOCAL_CID) of the Linux personality. */
HVSIM_EXTERN int hvsim_get_local_cid(uint32_t *cid);
/* ioctl on an emulated AF_VSOCK socket: SIOCINQ (bytes readable) and SIOCOUTQ
 * (bytes not yet sent), answered as the partition's transport and kernel
 * version answer them (README, "Transports and kernel versions"); arg points
 * to an int. Other requests: ENOTTY, as the vsock core's ENOIOCTLCMD. */
HVSIM_EXTERN int hvsim_ioctl(int fd, unsigned long request, void *arg);

/* Which partition this process is attached as (after the first call that
 * needed the daemon): its VM ID and name. Returns 0 or -errno. */
HVSIM_EXTERN int hvsim_self(GUID *vmid, char *name, size_t name_len);
/* This process's partition's vsock transport (enum hvsim_vm_transport; the
 * host: virtio, as vhost-vsock) and Linux kernel (enum hvsim_kernel), which
 * decide its AF_VSOCK sockets' options and flags. Returns 0 or -errno. */
HVSIM_EXTERN int hvsim_self_vsock(uint32_t *transport, uint32_t *kernel);

/* ---- Administration (hvsimctl uses these; the host partition's admin socket) --- */

enum hvsim_vm_state { HVSIM_VM_RUNNING = 0, HVSIM_VM_PAUSED = 1, HVSIM_VM_OFF = 2 };
enum hvsim_vm_kind { HVSIM_VM_CLASSIC = 0, HVSIM_VM_HCS = 1 };
/* A VM's Linux vsock transport: hv_sock (a Linux guest on Hyper-V, the
 * default) or virtio (a KVM, QEMU or Firecracker guest). */
enum hvsim_vm_transport { HVSIM_TRANSPORT_HV_SOCK = 0, HVSIM_TRANSPORT_VIRTIO = 1 };
/* The guest's Linux kernel, as major * 100 + minor: the three kernels the
 * project boots. NEWEST is the latest release (at least 6.17). */
enum hvsim_kernel { HVSIM_KERNEL_6_1 = 601, HVSIM_KERNEL_6_12 = 612, HVSIM_KERNEL_NEWEST = 9999 };

#define HVSIM_NAME_MAX 64 /* VM names, including the NUL */
#define HVSIM_ELEMENT_NAME_MAX 256
/* A virtio VM's sibling groups (vm add --group): NAME[+NAME...], at most
 * HVSIM_GROUPS_COUNT names of 1 to HVSIM_GROUP_NAME_MAX characters from
 * [A-Za-z0-9._-]; the text with its NUL fits HVSIM_GROUPS_MAX. */
#define HVSIM_GROUPS_MAX 128
#define HVSIM_GROUPS_COUNT 8
#define HVSIM_GROUP_NAME_MAX 31

/* A VM's own user (vm add --owner UID[:GID]), as Firecracker's jailer gives
 * each microVM its own uid: its control socket is owned by uid (and gid) with
 * mode 0600 (0660 with a gid), so only that user's processes (and root) can
 * attach as it; the host's socket stays the daemon user's alone. */
typedef struct hvsim_vm_owner {
    uint32_t set; /* 0: no owner of its own */
    uint32_t uid;
    uint32_t has_gid;
    uint32_t gid;
} hvsim_vm_owner_t;

typedef struct hvsim_vm_info {
    GUID id;
    char name[HVSIM_NAME_MAX];
    uint32_t kind; /* enum hvsim_vm_kind */
    uint32_t state; /* enum hvsim_vm_state */
    uint32_t cid; /* the VM's vsock CID (KVM-style addressing) */
    uint32_t nprocs; /* processes attached as this VM */
    uint32_t transport; /* enum hvsim_vm_transport */
    uint32_t kernel; /* enum hvsim_kernel */
    hvsim_vm_owner_t owner; /* who may attach as it (vm add --owner); set 0: the daemon's user */
    /* Its sibling groups (virtio VMs only; "" none): a guest reaches another
     * VM by CID when the two share one (vm add --group). */
    char groups[HVSIM_GROUPS_MAX];
} hvsim_vm_info_t;

typedef struct hvsim_service_info {
    GUID id;
    char element_name[HVSIM_ELEMENT_NAME_MAX];
} hvsim_service_info_t;

/* Per-VM HvSocket service configuration of an HCS VM (reference 2.4). */
typedef struct hvsim_hcs_service {
    GUID id;
    uint8_t bind_deny; /* BindSecurityDescriptor denies host binds */
    uint8_t connect_deny; /* ConnectSecurityDescriptor denies host connects */
    uint8_t allow_wildcard_binds;
    uint8_t disabled;
} hvsim_hcs_service_t;

/* A listener of a partition (hvsim_admin_listeners): its address as its
 * getsockname reports it, and who holds it. */
typedef struct hvsim_listener_info {
    GUID vmid;
    GUID svc; /* an AF_VSOCK port is Data1 of its template service */
    uint32_t personality; /* 0: AF_HYPERV, 1: AF_VSOCK in a VM, 2: AF_VSOCK on the host */
    uint32_t pid; /* the process that listens */
    uint32_t backlog; /* as listen() was given it */
    uint32_t gateway; /* 1: a QEMU guest's back-end (hvsim-vhost), listening for the whole VM; 2: its SEQPACKET listener */
    uint32_t seqpacket; /* 1: a SOCK_SEQPACKET socket */
} hvsim_listener_info_t;

/* A connection the daemon routed and has not seen end (hvsim_admin_connections).
 * The streams never pass through the daemon: this is what it decided, not
 * what flows (README, "Listeners and connections"). */
#define HVSIM_RULE_NAME_MAX 48
typedef struct hvsim_conn_info {
    uint64_t id; /* the ticket's id */
    uint64_t routed_ms; /* when it was routed: ms since the Unix epoch (CLOCK_REALTIME) */
    /* Both ends as the connector's getsockname and getpeername report them. */
    GUID connector_vmid, connector_svc, connector_partition;
    GUID acceptor_vmid, acceptor_svc, acceptor_partition;
    char connector_name[HVSIM_NAME_MAX]; /* the partitions' names ("host" or a VM's) */
    char acceptor_name[HVSIM_NAME_MAX];
    uint32_t connector_pid;
    uint32_t acceptor_pid; /* the listener's process */
    uint32_t personality; /* the connector's, as in hvsim_listener_info_t */
    uint32_t pad;
    char rule[HVSIM_RULE_NAME_MAX]; /* the id of the rule that decided (a row of the README's tables) */
} hvsim_conn_info_t;

typedef struct hvsim_admin hvsim_admin_t;

/* Connect to the daemon's admin socket in dir (NULL: $HVSIM_DIR or the default). */
HVSIM_EXTERN int hvsim_admin_open(const char *dir, hvsim_admin_t **out);
HVSIM_EXTERN void hvsim_admin_close(hvsim_admin_t *a);
/* The last error text the daemon gave (which argument, what was expected). */
HVSIM_EXTERN const char *hvsim_admin_errmsg(hvsim_admin_t *a);

HVSIM_EXTERN int hvsim_admin_vm_add(hvsim_admin_t *a, const char *name, const GUID *id /* NULL: random */,
                                    uint32_t kind, hvsim_vm_info_t *out);
/* The same with the VM's transport (enum hvsim_vm_transport) and kernel
 * (enum hvsim_kernel; 0: 6.1). */
HVSIM_EXTERN int hvsim_admin_vm_add_ex(hvsim_admin_t *a, const char *name, const GUID *id, uint32_t kind,
                                       uint32_t transport, uint32_t kernel, hvsim_vm_info_t *out);
/* The same with an owner (NULL: none); hvsimd must be able to chown (root)
 * to give a VM a user other than its own. */
HVSIM_EXTERN int hvsim_admin_vm_add_owned(hvsim_admin_t *a, const char *name, const GUID *id, uint32_t kind,
                                          uint32_t transport, uint32_t kernel, const hvsim_vm_owner_t *owner,
                                          hvsim_vm_info_t *out);
/* The same with sibling groups, NAME[+NAME...] (NULL or "": none); only a
 * virtio VM may have them: an hv_sock VM with groups is refused (EINVAL). */
HVSIM_EXTERN int hvsim_admin_vm_add_grouped(hvsim_admin_t *a, const char *name, const GUID *id, uint32_t kind,
                                            uint32_t transport, uint32_t kernel, const hvsim_vm_owner_t *owner,
                                            const char *groups, hvsim_vm_info_t *out);
HVSIM_EXTERN int hvsim_admin_vm_rm(hvsim_admin_t *a, const char *name_or_id);
HVSIM_EXTERN int hvsim_admin_vm_list(hvsim_admin_t *a, hvsim_vm_info_t **out, size_t *n);
/* op: "start", "pause", "resume", "reset", "off". */
HVSIM_EXTERN int hvsim_admin_vm_op(hvsim_admin_t *a, const char *name_or_id, const char *op);
HVSIM_EXTERN int hvsim_admin_service_add(hvsim_admin_t *a, const GUID *id, const char *element_name);
HVSIM_EXTERN int hvsim_admin_service_rm(hvsim_admin_t *a, const GUID *id);
HVSIM_EXTERN int hvsim_admin_service_list(hvsim_admin_t *a, hvsim_service_info_t **out, size_t *n);
/* Import a Windows `reg export` file of GuestCommunicationServices; *added gets the count. */
HVSIM_EXTERN int hvsim_admin_service_import(hvsim_admin_t *a, const char *path, size_t *added);
HVSIM_EXTERN int hvsim_admin_hcs_set(hvsim_admin_t *a, const char *vm, const hvsim_hcs_service_t *svc);
/* Counts and paths, as "key=value" lines. Caller frees *text. */
HVSIM_EXTERN int hvsim_admin_status(hvsim_admin_t *a, char **text);
/* Settings (the emulation choices of the README): get or set one by name. */
HVSIM_EXTERN int hvsim_admin_setting_get(hvsim_admin_t *a, const char *name, char *value, size_t len);
HVSIM_EXTERN int hvsim_admin_setting_set(hvsim_admin_t *a, const char *name, const char *value);
/* All settings as "name=value\n" lines. Caller frees *out. */
HVSIM_EXTERN int hvsim_admin_setting_list(hvsim_admin_t *a, char **out);
/* The listeners of a partition (a VM's name or GUID, or "host"), and the
 * connections the daemon routed to or from it that it has not seen end. The
 * caller frees *out. *limit (may be NULL) gets the partition's ceiling of
 * records, *forgotten (may be NULL) how many records of its own connects it
 * dropped at that ceiling. */
HVSIM_EXTERN int hvsim_admin_listeners(hvsim_admin_t *a, const char *vm, hvsim_listener_info_t **out, size_t *n,
                                       uint32_t *limit, uint64_t *forgotten);
HVSIM_EXTERN int hvsim_admin_connections(hvsim_admin_t *a, const char *vm, hvsim_conn_info_t **out, size_t *n,
                                         uint32_t *limit, uint64_t *forgotten);

#ifdef __cplusplus
}
#endif
#endif /* HVSIM_HVSIM_H */
