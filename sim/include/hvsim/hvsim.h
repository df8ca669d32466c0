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
#include <linux/vm_sockets.h>

#include "hvsocket.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HVSIM_EXTERN __attribute__((visibility("default")))

#define HVSIM_VERSION_MAJOR 0
#define HVSIM_VERSION_MINOR 1

/*
 * The error table: (NAME, errno, Winsock code, message). The messages are the
 * Winsock ones where Winsock has the code, so a log line reads the same as on
 * Windows. HVSIM_EDAEMON-style failures use ENETDOWN, which is also what
 * socket() gives on a Windows machine without Hyper-V (reference 4.4).
 */
#define HVSIM_ERRNO_MAP(XX)                                                                     \
    XX(EINTR, EINTR, 10004, "A blocking operation was interrupted by a call to WSACancelBlockingCall.") \
    XX(EBADF, EBADF, 10009, "The file handle supplied is not valid.")                           \
    XX(EACCES, EACCES, 10013, "An attempt was made to access a socket in a way forbidden by its access permissions.") \
    XX(EFAULT, EFAULT, 10014, "The system detected an invalid pointer address in attempting to use a pointer argument in a call.") \
    XX(EINVAL, EINVAL, 10022, "An invalid argument was supplied.")                              \
    XX(EMFILE, EMFILE, 10024, "Too many open sockets.")                                         \
    XX(EWOULDBLOCK, EAGAIN, 10035, "A non-blocking socket operation could not be completed immediately.") \
    XX(EINPROGRESS, EINPROGRESS, 10036, "A blocking operation is currently executing.")        \
    XX(EALREADY, EALREADY, 10037, "An operation was attempted on a non-blocking socket that already had an operation in progress.") \
    XX(ENOTSOCK, ENOTSOCK, 10038, "An operation was attempted on something that is not a socket.") \
    XX(EDESTADDRREQ, EDESTADDRREQ, 10039, "A required address was omitted from an operation on a socket.") \
    XX(EMSGSIZE, EMSGSIZE, 10040, "A message sent on a datagram socket was larger than the internal message buffer or some other network limit.") \
    XX(EPROTOTYPE, EPROTOTYPE, 10041, "A protocol was specified in the socket function call that does not support the semantics of the socket type requested.") \
    XX(ENOPROTOOPT, ENOPROTOOPT, 10042, "An unknown, invalid, or unsupported option or level was specified in a getsockopt or setsockopt call.") \
    XX(EPROTONOSUPPORT, EPROTONOSUPPORT, 10043, "The requested protocol has not been configured into the system, or no implementation for it exists.") \
    XX(ESOCKTNOSUPPORT, ESOCKTNOSUPPORT, 10044, "The support for the specified socket type does not exist in this address family.") \
    XX(EOPNOTSUPP, EOPNOTSUPP, 10045, "The attempted operation is not supported for the type of object referenced.") \
    XX(EAFNOSUPPORT, EAFNOSUPPORT, 10047, "An address incompatible with the requested protocol was used.") \
    XX(EADDRINUSE, EADDRINUSE, 10048, "Only one usage of each socket address (protocol/network address/port) is normally permitted.") \
    XX(EADDRNOTAVAIL, EADDRNOTAVAIL, 10049, "The requested address is not valid in its context.") \
    XX(ENETDOWN, ENETDOWN, 10050, "A socket operation encountered a dead network.")            \
    XX(ENETUNREACH, ENETUNREACH, 10051, "A socket operation was attempted to an unreachable network.") \
    XX(ECONNABORTED, ECONNABORTED, 10053, "An established connection was aborted by the software in your host machine.") \
    XX(ECONNRESET, ECONNRESET, 10054, "An existing connection was forcibly closed by the remote host.") \
    XX(ENOBUFS, ENOBUFS, 10055, "An operation on a socket could not be performed because the system lacked sufficient buffer space or because a queue was full.") \
    XX(EISCONN, EISCONN, 10056, "A connect request was made on an already connected socket.")  \
    XX(ENOTCONN, ENOTCONN, 10057, "A request to send or receive data was disallowed because the socket is not connected and (when sending on a datagram socket using a sendto call) no address was supplied.") \
    XX(ESHUTDOWN, ESHUTDOWN, 10058, "A request to send or receive data was disallowed because the socket had already been shut down in that direction with a previous shutdown call.") \
    XX(EPIPE, EPIPE, 10058, "Broken pipe: the socket was shut down for sending.")             \
    XX(ETIMEDOUT, ETIMEDOUT, 10060, "A connection attempt failed because the connected party did not properly respond after a period of time, or established connection failed because connected host has failed to respond.") \
    XX(ECONNREFUSED, ECONNREFUSED, 10061, "No connection could be made because the target machine actively refused it.") \
    XX(EHOSTDOWN, EHOSTDOWN, 10064, "A socket operation failed because the destination host was down.") \
    XX(EHOSTUNREACH, EHOSTUNREACH, 10065, "A socket operation was attempted to an unreachable host.") \
    XX(ENOENT, ENOENT, 0, "No such object (VM, service or file).")                              \
    XX(ENODEV, ENODEV, 0, "No such device: the transport does not offer this socket type.")     \
    XX(EEXIST, EEXIST, 0, "The object already exists.")                                         \
    XX(EPROTO, EPROTO, 0, "The emulated host sent a message this library does not understand.") \
    XX(ENOMEM, ENOMEM, 10055, "Out of memory.")

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
HVSIM_EXTERN int hvsim_shutdown(int fd, int how);
HVSIM_EXTERN int hvsim_close(int fd);
HVSIM_EXTERN int hvsim_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
HVSIM_EXTERN int hvsim_getpeername(int fd, struct sockaddr *addr, socklen_t *len);
HVSIM_EXTERN int hvsim_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
HVSIM_EXTERN int hvsim_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
/* ioctl(IOCTL_VM_SOCKETS_GET_LOCAL_CID) of the Linux personality. */
HVSIM_EXTERN int hvsim_get_local_cid(uint32_t *cid);

/* Which partition this process is attached as (after the first call that
 * needed the daemon): its VM ID and name. Returns 0 or -errno. */
HVSIM_EXTERN int hvsim_self(GUID *vmid, char *name, size_t name_len);

/* ---- Administration (hvsimctl uses these; the host partition's admin socket) --- */

enum hvsim_vm_state { HVSIM_VM_RUNNING = 0, HVSIM_VM_PAUSED = 1, HVSIM_VM_OFF = 2 };
enum hvsim_vm_kind { HVSIM_VM_CLASSIC = 0, HVSIM_VM_HCS = 1 };

#define HVSIM_NAME_MAX 64 /* VM names, including the NUL */
#define HVSIM_ELEMENT_NAME_MAX 256

typedef struct hvsim_vm_info {
    GUID id;
    char name[HVSIM_NAME_MAX];
    uint32_t kind; /* enum hvsim_vm_kind */
    uint32_t state; /* enum hvsim_vm_state */
    uint32_t cid; /* the VM's vsock CID (KVM-style addressing) */
    uint32_t nprocs; /* processes attached as this VM */
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

typedef struct hvsim_admin hvsim_admin_t;

/* Connect to the daemon's admin socket in dir (NULL: $HVSIM_DIR or the default). */
HVSIM_EXTERN int hvsim_admin_open(const char *dir, hvsim_admin_t **out);
HVSIM_EXTERN void hvsim_admin_close(hvsim_admin_t *a);
/* The last error text the daemon gave (which argument, what was expected). */
HVSIM_EXTERN const char *hvsim_admin_errmsg(hvsim_admin_t *a);

HVSIM_EXTERN int hvsim_admin_vm_add(hvsim_admin_t *a, const char *name, const GUID *id /* NULL: random */,
                                    uint32_t kind, hvsim_vm_info_t *out);
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

#ifdef __cplusplus
}
#endif
#endif /* HVSIM_HVSIM_H */
