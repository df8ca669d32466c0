/* SPDX-License-Identifier: MIT */
/*
 * backend.h: the one socket API the conformance cases use, with three
 * implementations chosen at build time (the wireguard-tools ipc.h pattern):
 *
 *   backend_hvsim.c   libhvsim: the simulator (both sides, any column);
 *   backend_native.c  the Linux kernel's AF_VSOCK, static, for QEMU guests
 *                     only: it refuses to start unless the kernel command line
 *                     carries hvsim.guest=1 (never the build machine's vsock);
 *   backend_winsock.c Winsock AF_HYPERV, for a real Hyper-V host or a Windows VM.
 *
 * Every call returns 0 (or a count) on success and a negative POSIX errno on
 * failure; the Winsock backend maps WSAE* codes to the POSIX values with the
 * same table as libhvsim, so one expectation serves every target.
 */
#ifndef HVSIM_CF_BACKEND_H
#define HVSIM_CF_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct cf_guid {
    uint32_t d1;
    uint16_t d2, d3;
    uint8_t d4[8];
} cf_guid_t; /* Windows byte order, as in SOCKADDR_HV */

typedef intptr_t cf_sock_t; /* an fd, or a Winsock SOCKET */
#define CF_NO_SOCK ((cf_sock_t)-1)

enum cf_family { CF_AF_HYPERV = 0, CF_AF_VSOCK = 1 };

#define CF_SHUT_RD 0
#define CF_SHUT_WR 1
#define CF_SHUT_RDWR 2

#define CF_MSG_PEEK 0x1
#define CF_MSG_WAITALL 0x2
#define CF_MSG_DONTWAIT 0x4
#define CF_MSG_NOSIGNAL 0x8
#define CF_MSG_TRUNC 0x10 /* SOCK_SEQPACKET: return the message's real length */
#define CF_MSG_EOR 0x20 /* SOCK_SEQPACKET: this message ends a record */

#define CF_POLLIN 0x1
#define CF_POLLOUT 0x2
#define CF_POLLERR 0x4
#define CF_POLLHUP 0x8

/* Well-known VmIds (docs/reference/hyperv-sockets.md 1.3). */
extern const cf_guid_t CF_GUID_ZERO, CF_GUID_BROADCAST, CF_GUID_CHILDREN, CF_GUID_LOOPBACK, CF_GUID_PARENT,
    CF_GUID_SILOHOST;
cf_guid_t cf_guid_port(uint32_t port); /* <port>-facb-11e6-bd58-64006a7986d3 */
cf_guid_t cf_guid_test(uint32_t n); /* a non-template service id for tests */
int cf_guid_parse(const char *text, cf_guid_t *out); /* 0 or -EINVAL */
void cf_guid_format(const cf_guid_t *g, char out[37]);
int cf_guid_eq(const cf_guid_t *a, const cf_guid_t *b);

/* Name of the backend ("hvsim", "linux-vsock", "winsock") and of an errno. */
const char *cf_backend_name(void);
const char *cf_errno_name(int err); /* "ECONNREFUSED" for ECONNREFUSED (either sign) */
int cf_backend_init(void); /* 0, or -errno with a message on stderr */

int cf_socket(enum cf_family fam, int nonblock, cf_sock_t *out);
/* Any protocol number: for the protocol-argument cases. */
int cf_socket_raw(int family, int type, int protocol, cf_sock_t *out);
int cf_close(cf_sock_t s);

int cf_bind_hv(cf_sock_t s, const cf_guid_t *vm, const cf_guid_t *svc);
int cf_bind_vsock(cf_sock_t s, uint32_t cid, uint32_t port);
/* Bind/connect with the caller's own bytes and length (malformed-address cases). */
int cf_bind_raw(cf_sock_t s, const void *addr, int len);
int cf_connect_raw(cf_sock_t s, const void *addr, int len);
int cf_listen(cf_sock_t s, int backlog);
int cf_accept(cf_sock_t l, cf_sock_t *out);
int cf_connect_hv(cf_sock_t s, const cf_guid_t *vm, const cf_guid_t *svc);
int cf_connect_vsock(cf_sock_t s, uint32_t cid, uint32_t port);

long cf_send(cf_sock_t s, const void *buf, size_t len, int flags);
long cf_recv(cf_sock_t s, void *buf, size_t len, int flags);
int cf_shutdown(cf_sock_t s, int how);

int cf_name_hv(cf_sock_t s, int peer, cf_guid_t *vm, cf_guid_t *svc);
int cf_name_vsock(cf_sock_t s, int peer, uint32_t *cid, uint32_t *port);
int cf_local_cid(uint32_t *cid); /* IOCTL_VM_SOCKETS_GET_LOCAL_CID */
/* Issue 13 (cases_vsock.c): SIOCOUTQ (outq) or SIOCINQ into *bytes, SO_RCVLOWAT,
 * and the guest's Linux kernel as major * 100 + minor (0: not Linux; the
 * simulator's "newest" is 9999). 0 or -errno. */
int cf_vsock_queue(cf_sock_t s, int outq, int *bytes);
int cf_set_rcvlowat(cf_sock_t s, int bytes);
/* SO_SNDBUF (rcv 0) or SO_RCVBUF (rcv 1) as getsockopt reports it. 0 or -errno. */
int cf_get_sock_buf(cf_sock_t s, int rcv, int *bytes);
unsigned cf_kernel_version(void);
/* SO_LINGER {on, seconds}: set, and read back into *on and *secs (Linux
 * sockets; elsewhere -EAFNOSUPPORT). 0 or -errno. */
int cf_set_linger(cf_sock_t s, int on, int secs);
int cf_get_linger(cf_sock_t s, int *on, int *secs);
/* SO_ZEROCOPY set and read back; a send with MSG_ZEROCOPY (and
 * MSG_NOSIGNAL); one completion from the error queue (recvmsg with
 * MSG_ERRQUEUE, never waiting): its id range and whether the data was
 * copied. -EBADMSG when what came is not a vsock zerocopy completion
 * (level SOL_VSOCK, type VSOCK_RECVERR, origin SO_EE_ORIGIN_ZEROCOPY,
 * errno 0). Linux sockets; elsewhere -EAFNOSUPPORT. 0 or -errno. */
int cf_set_zerocopy(cf_sock_t s, int on);
int cf_get_zerocopy(cf_sock_t s, int *on);
long cf_send_zerocopy(cf_sock_t s, const void *buf, size_t len);
int cf_zerocopy_completion(cf_sock_t s, uint32_t *lo, uint32_t *hi, int *copied);

/* HVSOCKET_CONNECT_TIMEOUT (AF_HYPERV) or SO_VM_SOCKETS_CONNECT_TIMEOUT (AF_VSOCK), in ms. */
int cf_set_connect_timeout(cf_sock_t s, uint32_t ms);
int cf_get_connect_timeout(cf_sock_t s, uint32_t *ms);
int cf_set_connected_suspend(cf_sock_t s, int on);
int cf_so_error(cf_sock_t s); /* the pending error as -errno, 0 when none */
/* Readiness: CF_POLL* bits that are set within timeout_ms (0 when none), or -errno. */
int cf_poll(cf_sock_t s, int events, int timeout_ms);
/* A persistent readiness registration made once, before a connect (epoll on
 * Linux, WSAPoll-equivalent elsewhere): create, then wait repeatedly. */
int cf_watch_create(cf_sock_t s, int events, intptr_t *watch);
int cf_watch_wait(intptr_t watch, int timeout_ms); /* CF_POLL* bits, 0 on timeout */
void cf_watch_close(intptr_t watch);

/* Host-side administration of the target. Targets without it (a real
 * Hyper-V host run by hand) return -ENOTSUP and the case is skipped. */
int cf_admin_service_add(const cf_guid_t *svc, const char *element_name);
int cf_admin_service_rm(const cf_guid_t *svc);
int cf_admin_vm_op(const cf_guid_t *vm, const char *op); /* pause resume reset off start */
int cf_admin_set(const char *setting, const char *value);
int cf_admin_hcs(const cf_guid_t *vm, const cf_guid_t *svc, int bind_deny, int connect_deny, int allow_wildcard,
                 int disabled);

/* Guest side, simulator only: make this case's process a process of another
 * VM (e.g. the HCS VM), before its first socket call. -ENOTSUP elsewhere: a
 * real guest cannot move, and the case is skipped. */
int cf_join_vm(const cf_guid_t *vm);

uint64_t cf_now_ms(void); /* monotonic */

/* ---- Portability, for every file that includes this one ---------------------------- */

/* mingw-w64's GCC checks format(printf) against msvcrt's printf (no %zu),
 * although the agent prints through mingw's C99 stdio (-std=c11 turns on
 * __USE_MINGW_ANSI_STDIO), where %zu works. The Linux builds check every
 * format of the same sources with the right rules, so the Windows build does
 * not repeat the check with the wrong ones. */
#if defined(__MINGW32__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat"
#pragma GCC diagnostic ignored "-Wformat-extra-args"
#endif

/* Winsock's errno.h lacks a few POSIX socket errors; the Winsock backend maps
 * WSAESHUTDOWN and friends to these, so case tables name them on every target. */
#include <errno.h>
#ifndef ESHUTDOWN
#define ESHUTDOWN 201
#endif
#ifndef EHOSTDOWN
#define EHOSTDOWN 202
#endif
#ifndef ESOCKTNOSUPPORT
#define ESOCKTNOSUPPORT 203
#endif
#ifndef EPFNOSUPPORT
#define EPFNOSUPPORT 204
#endif
#ifndef ETOOMANYREFS
#define ETOOMANYREFS 205
#endif

/* ---- Framework internals: the agent core and the backends only, never cases ---- */

/* What a backend's cf_admin_* changed, reported to the agent (util.c) so that it
 * can undo the change after the case: a setting and its old value (text:
 * "name=old"), a service added (a), a service removed or renamed (a; text: the
 * element name it had), a VM operation (a; text: the op), an HCS service entry
 * set (a: the VM, b: the service). */
enum cf_note_kind { CF_NOTE_SET = 1, CF_NOTE_SERVICE_ADD, CF_NOTE_SERVICE_RM, CF_NOTE_VM_OP, CF_NOTE_HCS };
void cf__note_admin(enum cf_note_kind kind, const cf_guid_t *a, const cf_guid_t *b, const char *text);
/* 0 when this process may administer the target (the host side), else -EPERM
 * with a message on stderr: the backends' cf_admin_* call it first. */
int cf__admin_allowed(void);
/* Backend: bring a VM back to running from paused or off (0, -ENOTSUP, -errno). */
int cf__admin_vm_restore(const cf_guid_t *vm);
/* The POSIX errno of a WSAE* code, from the one errno table (backend_common.c). */
int cf__errno_from_wsa(int wsa);
/* Winsock backend: close every socket the running case holds, so that a case
 * blocked in a call returns (the watchdog's first resort); elsewhere a no-op. */
void cf__backend_abort_case(void);

/* ---- The send/receive family (cases/cases_msg.c) ----------------------------------- */

/* One buffer of a gathered send or a scattered receive. */
typedef struct cf_buf {
    void *base;
    size_t len;
} cf_buf_t;

/* sendto with a destination of the socket's own kind: {vm, svc} on AF_HYPERV,
 * (cid, port) on AF_VSOCK (Winsock: sendto). */
long cf_sendto_hv(cf_sock_t s, const void *buf, size_t len, const cf_guid_t *vm, const cf_guid_t *svc);
long cf_sendto_vsock(cf_sock_t s, const void *buf, size_t len, uint32_t cid, uint32_t port);
/* recvfrom offering an address buffer of *addrlen bytes (at most 128); *addrlen
 * gets the length the call left there (Winsock: recvfrom). */
long cf_recvfrom(cf_sock_t s, void *buf, size_t len, int flags, int *addrlen);
/* sendmsg and recvmsg over n buffers (Winsock: WSASend and WSARecv). recvmsg
 * offers 128 bytes each of name and control space; *namelen and *ctllen get
 * msg_namelen and msg_controllen as the call left them, -1 where the API has
 * neither (Winsock). */
long cf_sendmsg(cf_sock_t s, const cf_buf_t *bufs, int n, int flags);
long cf_recvmsg(cf_sock_t s, cf_buf_t *bufs, int n, int flags, int *namelen, int *ctllen);
/* One receive into buf with recvmsg; *out_flags gets CF_MSG_TRUNC and CF_MSG_EOR
 * from msg_flags (SOCK_SEQPACKET, cases_seqpacket.c). Winsock: -EOPNOTSUPP. */
long cf_recv_flags(cf_sock_t s, void *buf, size_t len, int flags, int *out_flags);

#endif /* HVSIM_CF_BACKEND_H */
