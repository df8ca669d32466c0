/* SPDX-License-Identifier: MIT */
/*
 * socket.c: the Hyper-V socket calls of libhvsim, in two personalities.
 *
 * An emulated socket is an AF_UNIX stream socket the library created; its fd
 * never changes. bind/listen/connect ask the daemon (which partition may reach
 * which, with what error), then connect the fd straight to the accepting
 * process's AF_UNIX listener, so no stream byte passes through the daemon.
 * The connector writes the daemon's signed ticket first; accept() checks it
 * with the listener's key and learns the addresses both sides report.
 *
 * Where AF_UNIX would decide an outcome by accident, the library decides it on
 * purpose, per personality (README, "Emulation choices"): SHUT_RD stays local
 * on Windows and hv_sock and reaches a virtio peer (vsock-virtio.md 10.2);
 * close drains unread data so the peer sees EOF, not ECONNRESET; send after
 * SHUT_WR is WSAESHUTDOWN on Windows and EPIPE on Linux; MSG_PEEK is refused
 * as hv_sock refuses it.
 *
 * A Linux socket follows its partition's transport and kernel (from HELLO):
 * a virtio guest's, and the KVM-style host's (vhost-vsock), take MSG_PEEK,
 * SO_RCVLOWAT and SIOCOUTQ, and reach VMADDR_CID_LOCAL; the kernel version
 * decides SIGPIPE (6.7), SIOCOUTQ (6.11) and SIOCINQ (6.17)
 * (docs/reference/vsock-virtio.md 7).
 *
 * A SOCK_SEQPACKET socket (virtio and the KVM-style host) is an AF_UNIX
 * SOCK_SEQPACKET socket, one vsock message per AF_UNIX message; the library
 * makes up what AF_UNIX does otherwise: the peer's buffer size is the largest
 * message (EMSGSIZE above), an empty send sends nothing, one sendmsg is one
 * message whatever its iovecs, and MSG_EOR travels as a marker descriptor in
 * SCM_RIGHTS that recvmsg turns back into the flag (a plain read never sees
 * it: the kernel drops descriptors nobody asked for) (vsock-virtio.md 9).
 *
 * The table of sockets is indexed by fd, in chunks that never move, so the
 * send/recv path reads one atomic word and makes no extra system call.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "hvproto/proto.h"

#define CHUNK 1024
#define NCHUNKS 1024 /* fds up to 1M */
/* How long accept waits for the ticket of a connection whose bound name
 * already proved the daemon routed it: the connector writes it right after
 * connecting. A connection without that proof is never waited for. */
#define TICKET_WAIT_MS 1000

/* Bits of the hot word, read on every send and recv. */
#define HOT_USED 0x01u
#define HOT_LINUX 0x02u
#define HOT_SHUT_RD 0x04u
#define HOT_SHUT_WR 0x08u
#define HOT_BROKEN 0x10u /* reset, power-off, pause */
#define HOT_CONNECTED 0x20u
#define HOT_VIRTIO 0x40u /* a virtio (or vhost) socket: peek, SO_RCVLOWAT, SIOCOUTQ */
#define HOT_SIGPIPE 0x80u /* kernel 6.7 on: EPIPE raises SIGPIPE unless MSG_NOSIGNAL */
#define HOT_TRANSPORT (HOT_VIRTIO | HOT_SIGPIPE)
#define HOT_SEQPACKET 0x100u /* SOCK_SEQPACKET: message boundaries (vsock-virtio.md 9) */
/* The KVM-style host's socket whose VM went off or away: vhost_vsock_reset_orphans
 * put ECONNRESET on it (vsock-virtio.md 7.7). */
#define HOT_PEER_RESET 0x200u
#define HOT_LISTENING 0x400u /* s->lis is set: the helper may record revocations in it */

/* Kernel versions (hvsim.h enum hvsim_kernel: major * 100 + minor) that
 * brought a behaviour of the vsock core (docs/reference/vsock-virtio.md 7). */
#define K_SIGPIPE 607 /* vsock_connectible_sendmsg: sk_stream_error */
#define K_SIOCOUTQ 611 /* vsock_do_ioctl: SIOCOUTQ, transport->unsent_bytes */
#define K_SIOCINQ 617 /* vsock_do_ioctl: SIOCINQ */
/* virtio_transport_seqpacket_dequeue: 6.1 refuses MSG_PEEK (EOPNOTSUPP),
 * 6.12 peeks (virtio_transport_seqpacket_do_peek came in between; the
 * kernels the project boots need no closer date). */
#define K_SEQPACKET_PEEK 602
/* vsock_connectible_sendmsg turned every transport error into ENOMEM until
 * c43170b7e157 (net-next, late 2022: after 6.1); 6.12 passes EMSGSIZE on. */
#define K_SEND_ERRNO 602
/* SO_ZEROCOPY and MSG_ZEROCOPY on the connectible sockets (the series
 * "vsock: MSG_ZEROCOPY flag support", net-next, autumn 2023: 6.7,
 * vsock-virtio.md 10.3). Before it, sock_setsockopt refuses the option for
 * every family but INET and RDS. An accepted socket lacked the flag that
 * routes the option to vsock (SOCK_CUSTOM_SOCKOPT) until a fix after 6.12
 * that 7.2 has: the kernels the project boots need no closer date. */
#define K_ZEROCOPY 607
#define K_ZEROCOPY_ACCEPTED 613
/* The completion's control message (include/linux/socket.h, uapi
 * linux/vm_sockets.h), missing from older headers. */
#ifndef SOL_VSOCK
#define SOL_VSOCK 287
#endif
#ifndef VSOCK_RECVERR
#define VSOCK_RECVERR 1
#endif
/* The largest SEQPACKET message: the peer's buffer size, its
 * SO_VM_SOCKETS_BUFFER_SIZE, which the sender cannot see here; its default
 * (virtio_transport_seqpacket_enqueue: len > peer_buf_alloc is EMSGSIZE). */
#define SEQPACKET_MAX_MSG (256 * 1024)

enum sock_state {
    S_NEW = 0,
    S_BOUND,
    S_LISTENING,
    S_CONNECTING, /* non-blocking connect that will fail (limbo) */
    S_CONNECTED,
    S_FAILED, /* a connect failed and the fd is spent */
};

struct sock {
    _Atomic uint32_t hot;
    struct hvsim__owner *owner; /* the process the socket belongs to */
    uint32_t pers;
    _Atomic uint32_t state; /* atomic: the helper reads it after a daemon restart (hvsim__sock_reregister) */
    dev_t dev; /* identity of the open socket, checked before acting on events */
    ino_t ino;
    uint32_t flags; /* HVSIM_SF_* */
    uint32_t timeout_ms; /* 0: default */
    uint64_t bind_id;
    struct hvsim_endpoint local, peer; /* getsockname, getpeername (and who the peer is) */
    int async_err; /* what SO_ERROR reports once the failure is due */
    int reset_told; /* HOT_PEER_RESET: SO_ERROR has reported it (sock_error clears sk_err) */
    uint64_t due_ns;
    struct listener *lis; /* a listener's own state (listen_common), else NULL */
    uint64_t vsock_buf[3]; /* SO_VM_SOCKETS_BUFFER_SIZE, _MIN_, _MAX_ */
    uint32_t kernel; /* the partition's kernel (enum hvsim_kernel) */
    int accepted; /* made by accept (vsock_accept): see K_ZEROCOPY_ACCEPTED */
    /* MSG_ZEROCOPY (zc_lock): SO_ZEROCOPY, the next send's id (sk_zckey),
     * and the one completion waiting on the error queue, ids
     * [zc_lo, zc_lo + zc_count - 1] (every send copies, so each completes
     * at once and extends the waiting one, as skb_zerocopy_notify_extend
     * merges adjacent ranges). */
    int zc_on;
    uint32_t zc_next, zc_lo, zc_count;
};

static pthread_mutex_t zc_lock = PTHREAD_MUTEX_INITIALIZER;

/* What only a listener has: its key (from the daemon), its socket file's
 * name in HVSIM_DIR/l/, and the tickets it has taken (threads may accept
 * on one listener at once, hence the lock). */
/* Tickets revoked because their route stopped holding (a VM reset, off or
 * removed, a service removed or Disabled): those below id `below` whose
 * connector is in part (zero: any) and not in except (zero: none), for the
 * listener's service svc (zero: any). The helper thread records them from
 * the daemon's events; the record is dropped once every such ticket has
 * expired. An accept checks them without a system call. */
struct revoked {
    uint64_t below, until_ns;
    GUID part, except, svc;
};

#define REVOKED_MAX 8

struct listener {
    uint8_t key[16];
    char name[HVSIM_LISTENER_NAME_LEN + 1];
    int gateway; /* a VM back-end's gateway: its channel dies with the daemon */
    pthread_mutex_t lock;
    struct hvsim__ticketset taken;
    struct revoked rev[REVOKED_MAX]; /* under lock */
    unsigned nrev;
};

static void listener_free(struct listener *l)
{
    if (l == NULL)
        return;
    hvsim__ticketset_free(&l->taken);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static struct sock *_Atomic chunks[NCHUNKS];
static int fd_floor; /* hvsim__set_fd_floor */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
/* The helper thread's partition events against a slot's reuse: held while
 * an event is applied (hvsim__sock_event), while a slot is filled
 * (register_fd) and while one of our fds is closed (hvsim_close), so an
 * event never reads a slot being refilled, nor shuts down an fd number that
 * was closed and handed to a new connection after it was checked. */
static pthread_mutex_t event_lock = PTHREAD_MUTEX_INITIALIZER;

static struct sock *slot(int fd, int create)
{
    struct sock *c;

    if (fd < 0 || fd >= CHUNK * NCHUNKS)
        return NULL;
    c = atomic_load_explicit(&chunks[fd / CHUNK], memory_order_acquire);
    if (c == NULL && create) {
        pthread_mutex_lock(&table_lock);
        c = atomic_load_explicit(&chunks[fd / CHUNK], memory_order_acquire);
        if (c == NULL) {
            c = calloc(CHUNK, sizeof(*c));
            if (c)
                atomic_store_explicit(&chunks[fd / CHUNK], c, memory_order_release);
        }
        pthread_mutex_unlock(&table_lock);
    }
    return c ? &c[fd % CHUNK] : NULL;
}

/* The socket of fd, or NULL (ENOTSOCK) when fd is not one of ours. */
static struct sock *lookup(int fd)
{
    struct sock *s = slot(fd, 0);

    if (s == NULL || !(atomic_load_explicit(&s->hot, memory_order_acquire) & HOT_USED))
        return NULL;
    return s;
}

static void hot_set(struct sock *s, uint32_t bits)
{
    atomic_fetch_or_explicit(&s->hot, bits, memory_order_acq_rel);
}

/* The hot bits a Linux socket of this partition gets from its transport and
 * kernel: virtio for a virtio guest and for the host's AF_VSOCK (vhost). */
static uint32_t transport_bits(uint32_t pers, const struct hvsim__attach *me)
{
    uint32_t b = 0;

    if (pers == HVSIM_PERS_WINDOWS)
        return 0;
    if (pers == HVSIM_PERS_VSOCK_HOST || me->transport == HVSIM_TRANSPORT_VIRTIO)
        b |= HOT_VIRTIO;
    if (me->kernel >= K_SIGPIPE)
        b |= HOT_SIGPIPE;
    return b;
}

static int register_fd(int fd, uint32_t pers, struct hvsim__owner *owner, uint32_t tbits, uint32_t kernel)
{
    struct sock *s = slot(fd, 1);
    struct stat st;

    if (s == NULL)
        return -ENOMEM;
    if (fstat(fd, &st) < 0)
        return -errno;
    pthread_mutex_lock(&event_lock);
    atomic_store(&s->hot, 0);
    /* A listener's state lives until its slot is reused: freeing it at
     * close could pull it from under a thread still in accept(). */
    listener_free(s->lis);
    memset((char *)s + sizeof(s->hot), 0, sizeof(*s) - sizeof(s->hot));
    s->owner = owner;
    s->pers = pers;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->vsock_buf[0] = 256 * 1024;
    s->vsock_buf[1] = 128;
    s->vsock_buf[2] = 256 * 1024;
    s->kernel = kernel ? kernel : HVSIM_KERNEL_6_1;
    atomic_store(&s->hot,
                 HOT_USED | (pers == HVSIM_PERS_WINDOWS ? 0 : HOT_LINUX) | (tbits & (HOT_TRANSPORT | HOT_SEQPACKET)));
    pthread_mutex_unlock(&event_lock);
    return 0;
}

static void forget_fd(int fd)
{
    struct sock *s = slot(fd, 0);

    if (s)
        atomic_store(&s->hot, 0);
}

static int is_windows(const struct sock *s)
{
    return s->pers == HVSIM_PERS_WINDOWS;
}

static uint32_t vm_port(const GUID *g)
{
    return g->Data1;
}

void hvsim__set_fd_floor(int floor)
{
    fd_floor = floor > 0 ? floor : 0;
}

/* A new socket's fd, moved to fd_floor or above when one is set; where that
 * fails it stays, close-on-exec all the same. */
static int place_fd(int fd)
{
    int h;

    if (fd < 0 || fd_floor == 0)
        return fd;
    if (fd >= fd_floor) {
        (void)hvsim__libc.fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
    }
    h = hvsim__libc.fcntl(fd, F_DUPFD_CLOEXEC, fd_floor);
    if (h < 0) {
        (void)hvsim__libc.fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
    }
    hvsim__libc.close(fd);
    return h;
}

/* ---- addresses ------------------------------------------------------------------ */

/* Validate a caller's address and turn it into (vmid, svc). */
static int parse_addr(const struct sock *s, const struct sockaddr *addr, socklen_t len, GUID *vmid, GUID *svc,
                      uint32_t *cid, uint32_t *port)
{
    if (addr == NULL)
        return -EFAULT;
    if (is_windows(s)) {
        SOCKADDR_HV a;

        /* Winsock: a name shorter than the address is WSAEFAULT. */
        if (len < (socklen_t)sizeof(a))
            return HVSIM_MUTANT(ADDR_SHORT) ? -EINVAL : -EFAULT;
        memcpy(&a, addr, sizeof(a));
        if (a.Family != AF_HYPERV)
            return -EAFNOSUPPORT;
        if (a.Reserved != 0 && !HVSIM_MUTANT(ADDR_RESERVED))
            return -EINVAL;
        *vmid = a.VmId;
        *svc = a.ServiceId;
        return 0;
    } else {
        struct sockaddr_vm a;

        /* vsock_bind() and vsock_connect() turn every vsock_addr_cast()
         * failure (short, wrong family) into EINVAL. */
        if (len < (socklen_t)sizeof(a))
            return -EINVAL;
        memcpy(&a, addr, sizeof(a));
        if (a.svm_family != AF_VSOCK)
            return -EINVAL;
        if (a.svm_flags & ~VMADDR_FLAG_TO_HOST)
            return -EINVAL;
        *cid = a.svm_cid;
        *port = a.svm_port;
        *svc = hvsim_guid_from_port(a.svm_port);
        *vmid = HV_GUID_ZERO;
        return 0;
    }
}

/* sf: the endpoint's HVSIM_SF_* (0 for a local name): HVSIM_SF_TO_HOST puts
 * VMADDR_FLAG_TO_HOST into svm_flags, as an accepted sibling's peer has it. */
static int put_addr(const struct sock *s, const GUID *vmid, const GUID *svc, uint32_t cid, uint32_t sf,
                    struct sockaddr *addr, socklen_t *len)
{
    if (addr == NULL || len == NULL)
        return -EFAULT;
    if (is_windows(s)) {
        SOCKADDR_HV a = { .Family = AF_HYPERV, .VmId = *vmid, .ServiceId = *svc };

        if (*len < (socklen_t)sizeof(a))
            return -EFAULT;
        memcpy(addr, &a, sizeof(a));
        *len = sizeof(a);
    } else {
        struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_port = vm_port(svc), .svm_cid = cid,
                                 .svm_flags = (sf & HVSIM_SF_TO_HOST) ? VMADDR_FLAG_TO_HOST : 0 };

        /* POSIX: truncate to the caller's length and report the full one. */
        memcpy(addr, &a, *len < (socklen_t)sizeof(a) ? *len : sizeof(a));
        *len = sizeof(a);
    }
    return 0;
}

/* ---- socket, bind, listen --------------------------------------------------------- */

/* One round trip to the daemon: the transport's or the daemon's error as -errno. */
static int ask(struct hvsim__owner *o, unsigned type, const void *m, size_t mlen, unsigned want, void *r,
               size_t rlen)
{
    int32_t status;
    int rc = hvsim__request(o, type, m, mlen, want, r, rlen, &status);

    return rc < 0 ? rc : status;
}

/* An AF_UNIX SEQPACKET message must fit the sender's buffer whole
 * (unix_dgram_sendmsg: EMSGSIZE above sk_sndbuf - 32): room for the largest
 * vsock message. An accepted socket gets the system default, so accept sets
 * it too. Best effort: above net.core.wmem_max the kernel caps it, and the
 * doubled cap (425,984 bytes by default) still holds 256 KiB. */
static void seqpacket_carrier(int fd)
{
    int v = SEQPACKET_MAX_MSG + 4096;

    (void)hvsim__libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

/* hv_sock's rings (docs/reference/hyperv-sockets.md 3.4): a socket starts
 * with sk_sndbuf = sk_rcvbuf = 6 pages, and its connection's ring is its
 * send buffer clamped to 6..64 pages. The carrier's buffers are sized alike,
 * so getsockopt reports 24 KiB, and a writer whose reader is idle stops after
 * about a ring (AF_UNIX's accounting of a stream: one packet's overhead
 * either way). The kernel doubles what setsockopt gets, so half is asked. */
#define HVS_RING_MIN (6 * 4096)
#define HVS_RING_MAX (64 * 4096)
static void hv_sock_rings(int fd, int ring)
{
    int snd = (ring < HVS_RING_MIN ? HVS_RING_MIN : ring > HVS_RING_MAX ? HVS_RING_MAX : ring) / 2;
    int rcv = HVS_RING_MIN / 2;

    (void)hvsim__libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
    (void)hvsim__libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
}

/* virtio's credit window (vsock-virtio.md 1.5): a sender stops once the
 * peer's buf_alloc is in flight, 256 KiB (VSOCK_DEFAULT_BUFFER_SIZE) unless
 * the receiver set SO_VM_SOCKETS_BUFFER_SIZE. An AF_UNIX stream's sender
 * stops at its own send buffer instead, each write charged with its payload
 * and about 768 bytes of overhead: asked for half of 256 KiB (the kernel
 * doubles it), a writer whose reader is idle stops after 256 KiB in writes of
 * 16 KiB and more (one write more at most), and earlier in small ones (about
 * 216 KiB in 4 KiB writes, 114 KiB in 1 KiB, 33 KiB in 100 bytes), README
 * deviation 6. The receiver's setting lives in the other process, out of
 * reach of this end's carrier: the window is always the default's. Streams
 * only: a seqpacket carrier is sized for its largest message. */
#define VIRTIO_BUF_ALLOC (256 * 1024)
static void virtio_window(int fd)
{
    int snd = VIRTIO_BUF_ALLOC / 2;

    (void)hvsim__libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
}

static int is_virtio_stream(const struct sock *s)
{
    uint32_t hot = atomic_load_explicit(&s->hot, memory_order_acquire);

    return s->pers != HVSIM_PERS_WINDOWS && (hot & HOT_VIRTIO) && !(hot & HOT_SEQPACKET);
}

static int is_hv_sock(const struct sock *s)
{
    return s->pers == HVSIM_PERS_LINUX &&
           !(atomic_load_explicit(&s->hot, memory_order_acquire) & (HOT_VIRTIO | HOT_SEQPACKET));
}

static int is_seqpacket(const struct sock *s)
{
    return (atomic_load_explicit(&s->hot, memory_order_acquire) & HOT_SEQPACKET) != 0;
}

int hvsim_socket(int domain, int type, int protocol)
{
    return hvsim__socket_as(hvsim__self_owner(), domain, type, protocol);
}

static int socket_common(struct hvsim__owner *o, int domain, int type, int protocol, int backend);

int hvsim__socket_as(struct hvsim__owner *o, int domain, int type, int protocol)
{
    return socket_common(o, domain, type, protocol, 0);
}

int hvsim__socket_backend(int type)
{
    int fd = socket_common(hvsim__self_owner(), AF_VSOCK, type, 0, 1);

    return fd < 0 ? -errno : fd;
}

/* backend: the device's end of a VM back-end (hvsim__socket_backend). */
static int socket_common(struct hvsim__owner *o, int domain, int type, int protocol, int backend)
{
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    struct hvsim__attach me;
    uint32_t pers;
    int fd, rc;

    if (domain == AF_HYPERV) {
        if (base != SOCK_STREAM)
            return hvsim__fail(-ESOCKTNOSUPPORT);
        /* CPython's test: an unknown protocol is WSAEPROTOTYPE (reference 1.5). */
        if (protocol != HV_PROTOCOL_RAW)
            return hvsim__fail(HVSIM_MUTANT(SOCKET_PROTOCOL) ? -EPROTONOSUPPORT : -EPROTOTYPE);
        pers = HVSIM_PERS_WINDOWS;
    } else if (domain == AF_VSOCK) {
        /* A datagram socket needs a datagram transport, which hv_sock is not:
         * vsock_create() fails with ENODEV (kernels since 5.5). */
        if (base == SOCK_DGRAM)
            return hvsim__fail(-ENODEV);
        /* SEQPACKET is created on every transport (5.14 on); whether the
         * transport carries it is connect()'s question (route.c). */
        if (base != SOCK_STREAM && base != SOCK_SEQPACKET)
            return hvsim__fail(-ESOCKTNOSUPPORT);
        if (protocol != 0 && protocol != PF_VSOCK)
            return hvsim__fail(-EPROTONOSUPPORT);
        pers = HVSIM_PERS_LINUX;
    } else {
        return hvsim__fail(-EAFNOSUPPORT);
    }
    /* Without a host to talk to, socket() fails as it does on Windows without
     * Hyper-V: WSAENETDOWN (reference 4.4). */
    rc = hvsim__owner_attach(o, &me);
    if (rc < 0)
        return hvsim__fail(rc);
    if (pers == HVSIM_PERS_LINUX && me.is_host)
        pers = HVSIM_PERS_VSOCK_HOST;
    fd = place_fd(hvsim__libc.socket(AF_UNIX, base | (type & (SOCK_NONBLOCK | SOCK_CLOEXEC)), 0));
    if (fd < 0)
        return hvsim__fail(-errno);
    if (base == SOCK_SEQPACKET)
        seqpacket_carrier(fd);
    /* A back-end's socket is the device's end: the guest's kernel applies its
     * own transport's rules, so this end follows virtio's whatever the VM says. */
    rc = register_fd(fd, pers, o,
                     transport_bits(pers, &me) | (base == SOCK_SEQPACKET ? HOT_SEQPACKET : 0) | (backend ? HOT_VIRTIO : 0),
                     me.kernel);
    if (rc < 0) {
        hvsim__libc.close(fd);
        return hvsim__fail(rc);
    }
    if (pers == HVSIM_PERS_WINDOWS)
        return fd;
    if (base == SOCK_SEQPACKET)
        lookup(fd)->flags |= HVSIM_SF_SEQPACKET;
    else if (is_hv_sock(lookup(fd)) && !HVSIM_MUTANT(HV_SOCK_RINGS))
        hv_sock_rings(fd, HVS_RING_MIN);
    else if (is_virtio_stream(lookup(fd)))
        virtio_window(fd);
    return fd;
}

static int is_virtio(const struct sock *s)
{
    return (atomic_load_explicit(&s->hot, memory_order_acquire) & HOT_VIRTIO) != 0;
}

/* The CIDs a Linux socket may bind: VMADDR_CID_ANY; the host's CID on the
 * host; a virtio guest's own CID and VMADDR_CID_LOCAL (vsock_find_cid). */
static int bindable_cid(const struct sock *s, uint32_t cid)
{
    struct hvsim__attach me;

    if (cid == VMADDR_CID_ANY)
        return 1;
    if (s->pers == HVSIM_PERS_VSOCK_HOST)
        return cid == VMADDR_CID_HOST || cid == VMADDR_CID_LOCAL;
    if (!is_virtio(s))
        return 0;
    return cid == VMADDR_CID_LOCAL || (hvsim__owner_attach(s->owner, &me) == 0 && cid == me.cid);
}

int hvsim_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct sock *s = lookup(fd);
    struct hvsim_msg_bind m = { 0 };
    struct hvsim_msg_bind_reply r;
    uint32_t cid = 0, port = 0;
    int rc;

    if (s == NULL)
        return hvsim__fail(-ENOTSOCK);
    rc = parse_addr(s, addr, len, &m.vmid, &m.svc, &cid, &port);
    if (rc < 0)
        return hvsim__fail(rc);
    if (s->state != S_NEW)
        return hvsim__fail(-EINVAL);
    if (!is_windows(s)) {
        /* hv_sock's local CID is VMADDR_CID_ANY: it is the only CID a guest
         * socket may bind (reference 3.1). A host-side vsock socket binds ANY
         * or the host CID, a virtio guest also its own (bindable_cid). */
        if (!bindable_cid(s, cid))
            return hvsim__fail(-EADDRNOTAVAIL);
        if (port != VMADDR_PORT_ANY && port <= 1023 && !hvsim__owner_capable(s->owner, CAP_NET_BIND_SERVICE))
            return hvsim__fail(-EACCES);
        if (port == VMADDR_PORT_ANY)
            m.svc = HV_GUID_ZERO; /* the daemon picks a free port */
    }
    m.personality = s->pers;
    m.flags = s->flags;
    rc = ask(s->owner, HVSIM_MSG_BIND, &m, sizeof(m), HVSIM_MSG_BIND_REPLY, &r, sizeof(r));
    if (rc < 0)
        return hvsim__fail(rc);
    s->bind_id = r.bind_id;
    s->local.vmid = r.vmid;
    s->local.svc = r.svc;
    s->state = S_BOUND;
    return 0;
}

static int listen_common(int fd, int backlog, unsigned kind, int chan);

int hvsim_listen(int fd, int backlog)
{
    int rc = listen_common(fd, backlog, HVSIM_GW_NONE, -1);

    return rc < 0 ? hvsim__fail(rc) : 0;
}

int hvsim__listen_gateway(int fd, int backlog)
{
    int sv[2], rc;

    if (hvsim__libc.socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    rc = listen_common(fd, backlog, HVSIM_GW_STREAM, sv[1]);
    hvsim__libc.close(sv[1]);
    if (rc < 0) {
        hvsim__libc.close(sv[0]);
        return rc;
    }
    return sv[0];
}

int hvsim__listen_gateway_seq(int fd, int backlog)
{
    return listen_common(fd, backlog, HVSIM_GW_SEQPACKET, -1);
}

/* The path of a listener's socket file, HVSIM_DIR/l/<name>. */
static int listener_addr(const char *name, struct sockaddr_un *sa)
{
    char dir[sizeof(sa->sun_path)];

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    hvsim__default_dir(dir, sizeof(dir));
    if (snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s/%s", dir, HVSIM_LISTENER_DIR, name) >=
        (int)sizeof(sa->sun_path))
        return -ENAMETOOLONG; /* HVSIM_DIR is too long for a socket path: a shorter one is needed */
    return 0;
}

/* A new listener's state with a random name. */
static int listener_new(struct sock *s)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t rnd[HVSIM_LISTENER_NAME_LEN / 2];
    struct listener *l = s->lis;
    size_t i;
    int rc;

    if (l == NULL) {
        l = calloc(1, sizeof(*l));
        if (l == NULL)
            return -ENOMEM;
        pthread_mutex_init(&l->lock, NULL);
        s->lis = l;
    }
    rc = hvsim__ticketset_reserve(&l->taken);
    if (rc < 0)
        return rc;
    rc = hvsim__random(rnd, sizeof(rnd));
    if (rc < 0)
        return rc;
    for (i = 0; i < sizeof(rnd); i++) {
        l->name[2 * i] = hex[rnd[i] >> 4];
        l->name[2 * i + 1] = hex[rnd[i] & 0xf];
    }
    l->name[HVSIM_LISTENER_NAME_LEN] = '\0';
    return 0;
}

/* Returns 0 or -errno. kind: enum hvsim_gw_listen (a gateway's channel is chan). */
static int listen_common(int fd, int backlog, unsigned kind, int chan)
{
    struct sock *s = lookup(fd);
    struct hvsim_msg_listen m = { 0 };
    struct hvsim_msg_listen_reply r;
    struct sockaddr_un sa;
    int32_t status;
    int rc;

    if (s == NULL)
        return -ENOTSOCK;
    if (s->state == S_LISTENING)
        return kind != HVSIM_GW_NONE ? -EINVAL : hvsim__libc.listen(fd, backlog) < 0 ? -errno : 0;
    /* Winsock and vsock_listen() both refuse an unbound or connected socket with EINVAL. */
    if (s->state != S_BOUND)
        return -EINVAL;
    rc = listener_new(s);
    if (rc == 0)
        rc = listener_addr(s->lis->name, &sa);
    if (rc < 0)
        return rc;
    if (hvsim__libc.bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || hvsim__libc.listen(fd, backlog) < 0)
        return -errno;
    m.bind_id = s->bind_id;
    m.backlog = backlog < 0 ? 0 : (uint32_t)backlog;
    m.flags = s->flags;
    memcpy(m.uname, s->lis->name, sizeof(s->lis->name));
    m.gateway = kind;
    rc = hvsim__request_fd(s->owner, HVSIM_MSG_LISTEN, &m, sizeof(m), chan, HVSIM_MSG_LISTEN_REPLY, &r, sizeof(r),
                           &status, NULL);
    if (rc == 0)
        rc = status;
    if (rc < 0) {
        /* Nobody will route here: the file must not outlive the refusal. */
        unlink(sa.sun_path);
        return rc;
    }
    memcpy(s->lis->key, r.key, sizeof(s->lis->key));
    s->lis->gateway = kind != HVSIM_GW_NONE;
    s->state = S_LISTENING;
    hot_set(s, HOT_LISTENING);
    return 0;
}

/* ---- accept ----------------------------------------------------------------------- */

/* Read exactly one ticket from a new stream: the connector writes it right
 * after connecting, so it is almost always there already. */
static int read_ticket(int c, int seq, struct hvsim_ticket *t)
{
    size_t got = 0;
    uint64_t end = hvsim__now_ns() + (uint64_t)TICKET_WAIT_MS * 1000000u;

    while (got < sizeof(*t)) {
        /* On a SEQPACKET connection the ticket is one whole message. */
        ssize_t r = hvsim__libc.recv(c, (char *)t + got, sizeof(*t) - got, MSG_DONTWAIT | (seq ? MSG_TRUNC : 0));

        if (r > 0 && seq && r != (ssize_t)sizeof(*t))
            return -EPROTO;
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0)
            return -ECONNABORTED;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -errno;
        {
            uint64_t now = hvsim__now_ns();
            struct pollfd p = { .fd = c, .events = POLLIN };

            if (now >= end)
                return -ETIMEDOUT;
            if (poll(&p, 1, (int)((end - now) / 1000000u) + 1) < 0 && errno != EINTR)
                return -errno;
        }
    }
    return 0;
}

/* The ticket is good for this connection: signed with the listener's key,
 * for the id the connector's bound name proved, unexpired and never taken. */
/* 1 when one of l's revocations covers ticket t (l->lock held). */
static int revoked(const struct listener *l, const struct hvsim_ticket *t)
{
    unsigned i;

    for (i = 0; i < l->nrev; i++) {
        const struct revoked *r = &l->rev[i];

        if (t->conn_id < r->below && (hvsim_guid_equal(&r->part, &HV_GUID_ZERO) ||
                                      hvsim_guid_equal(&r->part, &t->peer.partition)) &&
            (hvsim_guid_equal(&r->except, &HV_GUID_ZERO) || !hvsim_guid_equal(&r->except, &t->peer.partition)) &&
            (hvsim_guid_equal(&r->svc, &HV_GUID_ZERO) || hvsim_guid_equal(&r->svc, &t->local.svc)))
            return 1;
    }
    return 0;
}

static int ticket_take(struct listener *l, const struct hvsim_ticket *t, uint64_t id, const uint8_t key[16])
{
    int rc = hvsim__ticket_verify(t, key);

    if (rc < 0)
        return rc;
    if (t->conn_id != id)
        return -EACCES;
    pthread_mutex_lock(&l->lock);
    if (l->nrev > 0 && revoked(l, t)) {
        pthread_mutex_unlock(&l->lock);
        return -EACCES;
    }
    rc = hvsim__ticketset_take(&l->taken, t->conn_id, t->expires_ns, hvsim__now_ns());
    pthread_mutex_unlock(&l->lock);
    return rc < 0 ? rc : rc == 0 ? -EACCES : 0;
}

/* The next connection the daemon routed to listener l, with its ticket;
 * anything else is dropped without a byte read, so it holds up nobody.
 * Returns the new fd or -errno (accept4's own, EAGAIN on a non-blocking
 * listener with nothing routed waiting). */
static int accept_routed(int fd, struct listener *l, int seq, int flags, struct hvsim_ticket *t)
{
    for (;;) {
        struct sockaddr_un peer;
        socklen_t plen = sizeof(peer);
        uint64_t id;
        uint8_t key[16];
        int c = place_fd(hvsim__libc.accept4(fd, (struct sockaddr *)&peer, &plen, flags)), rc;

        if (c < 0)
            return -errno;
        /* A copy: the helper thread gives the listener a new daemon's key
         * after a restart (reregister_one). */
        pthread_mutex_lock(&l->lock);
        memcpy(key, l->key, sizeof(key));
        pthread_mutex_unlock(&l->lock);
        rc = -EACCES;
        if (plen > offsetof(struct sockaddr_un, sun_path) + 1 && peer.sun_path[0] == '\0' &&
            hvsim__conn_name_check(peer.sun_path + 1, plen - offsetof(struct sockaddr_un, sun_path) - 1, key,
                                   &id)) {
            rc = read_ticket(c, seq, t);
            if (rc == 0)
                rc = ticket_take(l, t, id, key);
        }
        if (rc == 0)
            return c;
        /* Not a connection the daemon routed here, a replay, or one whose
         * connector went away: as if the kernel had never queued it. */
        if (HVSIM_DEBUG)
            fprintf(stderr, "hvsim: dropped an unauthorised connection: %s\n", hvsim_strerror(rc));
        hvsim__libc.close(c);
    }
}

int hvsim_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    struct sock *l = lookup(fd), *s;
    struct hvsim_ticket t;
    int c, rc;

    if (l == NULL)
        return hvsim__fail(-ENOTSOCK);
    if (l->state != S_LISTENING)
        return hvsim__fail(-EINVAL);
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
        return hvsim__fail(-EINVAL);
    if (addr != NULL && len == NULL)
        return hvsim__fail(-EFAULT);
    c = accept_routed(fd, l->lis, is_seqpacket(l), flags, &t);
    if (c < 0)
        return hvsim__fail(c);
    rc = register_fd(c, l->pers, l->owner, atomic_load(&l->hot), l->kernel);
    if (rc < 0) {
        hvsim__libc.close(c);
        return hvsim__fail(rc);
    }
    s = lookup(c);
    s->accepted = 1;
    if (is_seqpacket(l))
        seqpacket_carrier(c);
    if (is_hv_sock(l)) {
        /* The child's ring is sized from the listener's send buffer (hvs_open_connection). */
        int v = HVS_RING_MIN;
        socklen_t vl = sizeof(v);

        (void)hvsim__libc.getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &vl);
        hv_sock_rings(c, v);
    } else if (is_virtio_stream(l)) {
        virtio_window(c); /* AF_UNIX gives an accepted socket the system's default */
    }
    s->state = S_CONNECTED;
    s->flags = l->flags;
    s->timeout_ms = l->timeout_ms;
    s->local = t.local;
    s->peer = t.peer;
    hot_set(s, HOT_CONNECTED);
    if (addr != NULL) {
        rc = put_addr(s, &s->peer.vmid, &s->peer.svc, s->peer.cid, s->peer.flags, addr, len);
        if (rc < 0) {
            forget_fd(c);
            hvsim__libc.close(c);
            return hvsim__fail(rc);
        }
    }
    return c;
}

int hvsim_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    return hvsim_accept4(fd, addr, len, 0);
}

/* ---- connect ---------------------------------------------------------------------- */

static int wait_ms(uint32_t ms)
{
    uint64_t end = hvsim__now_ns() + (uint64_t)ms * 1000000u;

    for (;;) {
        uint64_t now = hvsim__now_ns();

        if (now >= end)
            return 0;
        /* A signal interrupts a blocking connect, as in vsock_connect(). */
        if (poll(NULL, 0, (int)((end - now + 999999) / 1000000u)) < 0 && errno == EINTR)
            return -EINTR;
    }
}

static int connect_fail(struct sock *s, int fd, int err, uint32_t after_ms, int nonblock)
{
    int rc;

    if (!nonblock) {
        if (after_ms) {
            rc = wait_ms(after_ms);
            if (rc < 0)
                return hvsim__fail(rc);
        }
        /* The socket stays unconnected: the caller may try again. */
        return hvsim__fail(err);
    }
    /* A non-blocking connect reports its failure the usual way: EINPROGRESS
     * now, then EPOLLOUT|EPOLLERR and SO_ERROR. */
    /* Due no later than the helper's timer, so SO_ERROR never says 0 after
     * the failure was reported. */
    s->due_ns = hvsim__now_ns() + (uint64_t)after_ms * 1000000u;
    rc = hvsim__limbo(s->owner, fd, after_ms);
    if (rc < 0)
        return hvsim__fail(rc);
    s->async_err = err;
    s->state = S_CONNECTING;
    return hvsim__fail(-EINPROGRESS);
}

/* Apply a failing outcome of the router (REFUSE: at once; NOANSWER: after
 * its wait). The daemon says which errno; nothing here infers one. */
static int connect_outcome(struct sock *s, int fd, const struct hvsim_outcome *o, int nonblock)
{
    if ((o->verdict != HVSIM_VERDICT_REFUSE && o->verdict != HVSIM_VERDICT_NOANSWER) || o->error >= 0)
        return hvsim__fail(-EPROTO);
    return connect_fail(s, fd, o->error, o->verdict == HVSIM_VERDICT_NOANSWER ? o->wait_ms : 0, nonblock);
}

/* A VM's gateway is asking its guest (HVSIM_VERDICT_PENDING): the real reply
 * comes on pend within timeout_ms, read here without the request lock. A
 * signal interrupts the wait, as it does vsock_connect(). Closes pend. */
static int await_verdict(int pend, uint32_t timeout_ms, struct hvsim_msg_connect_reply *r)
{
    char buf[sizeof(struct hvsim_msg_hdr) + sizeof(*r) + 256];
    uint64_t end = hvsim__now_ns() + ((uint64_t)timeout_ms + 5000u) * 1000000u; /* the daemon's deadline, and slack */
    struct hvsim_msg_hdr h;
    ssize_t n;

    for (;;) {
        struct pollfd p = { .fd = pend, .events = POLLIN };
        uint64_t now = hvsim__now_ns();
        int rc;

        if (now >= end) {
            hvsim__libc.close(pend);
            return -ETIMEDOUT;
        }
        rc = poll(&p, 1, (int)((end - now + 999999) / 1000000u));
        if (rc < 0 && errno == EINTR) {
            hvsim__libc.close(pend);
            return -EINTR;
        }
        if (rc > 0)
            break;
    }
    n = hvsim__msg_recv(pend, buf, sizeof(buf), NULL);
    hvsim__libc.close(pend);
    if (n <= 0)
        return -ENETDOWN; /* the daemon went away meanwhile */
    memcpy(&h, buf, sizeof(h));
    if (h.type != HVSIM_MSG_CONNECT_REPLY)
        return -EPROTO;
    if (h.status < 0)
        return h.status;
    memcpy(r, buf + sizeof(h), sizeof(*r));
    return 0;
}

/* What the socket's state says about a connect: 0 to go on, or -errno. */
static int connect_state(const struct sock *s)
{
    switch (atomic_load(&s->state)) {
    case S_CONNECTED:
        return -EISCONN;
    case S_CONNECTING:
        return -EALREADY;
    case S_LISTENING:
        return -EINVAL;
    case S_FAILED:
        /* The fd was spent by a failed non-blocking connect (a listed deviation). */
        return -EISCONN;
    default:
        return 0;
    }
}

/* The CONNECT request for the caller's address, per personality. Returns 0 or -errno. */
static int connect_request(const struct sock *s, const struct sockaddr *addr, socklen_t len,
                           struct hvsim_msg_connect *m)
{
    uint32_t cid = 0, port = 0;
    int rc = parse_addr(s, addr, len, &m->vmid, &m->svc, &cid, &port);

    if (rc < 0)
        return rc;
    if (s->pers == HVSIM_PERS_LINUX && cid == VMADDR_CID_LOCAL && is_virtio(s)) {
        /* The loopback transport, beside the guest's own (vsock_loopback.c). */
        m->vmid = HV_GUID_LOOPBACK;
    } else if (s->pers == HVSIM_PERS_LINUX && cid > VMADDR_CID_HOST && is_virtio(s)) {
        /* virtio's stream_allow() takes any CID: the host's back-end decides
         * (a VM sharing a sibling group, or nobody: route.c). */
        m->vmid = HV_GUID_ZERO;
        m->vmid.Data1 = cid;
    } else if (s->pers == HVSIM_PERS_LINUX) {
        /* hv_sock's stream_allow(): only the host, CID 2 (reference 3.1).
         * A SEQPACKET socket fails earlier, at vsock_assign_transport(),
         * which is the router's to say (route.c, seqpacket_refused). */
        if (cid != VMADDR_CID_HOST && !(s->flags & HVSIM_SF_SEQPACKET))
            return HVSIM_MUTANT(LINUX_CID_HOST_ONLY) ? -ECONNRESET : -ENETUNREACH;
        m->vmid = HV_GUID_PARENT;
    } else if (s->pers == HVSIM_PERS_VSOCK_HOST) {
        /* The daemon maps the CID to a VM. */
        m->vmid = HV_GUID_ZERO;
        m->vmid.Data1 = cid;
    }
    m->bind_id = s->bind_id;
    m->personality = s->pers;
    m->flags = s->flags;
    m->timeout_ms = s->timeout_ms;
    return 0;
}

/* The daemon's answer to a CONNECT: its reply and the spares that came with it. */
struct connect_answer {
    struct hvsim_msg_connect_reply r;
    struct hvsim_spare v[HVSIM_SPARES_MAX];
};

/* Ask the daemon to route m; a->r gets its reply (a VM gateway's verdict when
 * the daemon had to ask one). Returns 0 or -errno. */
static int connect_ask(struct sock *s, const struct hvsim_msg_connect *m, struct connect_answer *a)
{
    struct hvsim_msg_connect_reply *r = &a->r;
    int32_t status;
    int pend = -1;
    int rc = hvsim__request_fd(s->owner, HVSIM_MSG_CONNECT, m, sizeof(*m), -1, HVSIM_MSG_CONNECT_REPLY, a,
                               sizeof(*a), &status, &pend);

    if (rc == 0)
        rc = status;
    if (rc == 0 && r->outcome.verdict == HVSIM_VERDICT_PENDING)
        rc = pend >= 0 ? await_verdict(pend, r->outcome.wait_ms, r) : -EPROTO;
    else if (pend >= 0)
        hvsim__libc.close(pend);
    return rc;
}

/* Routed: connect fd to the listener the daemon named, hand it the ticket,
 * and take the addresses. Returns 0 or -1 with errno, as hvsim_connect. */
/* Bind fd to the connector's name for this ticket (its id and tag), which
 * the acceptor reads from accept() to know the daemon routed it. */
static int bind_conn_name(int fd, const struct hvsim_msg_connect_reply *r)
{
    struct sockaddr_un me = { .sun_family = AF_UNIX };

    hvsim__conn_name(r->ticket.conn_id, r->tag, me.sun_path + 1);
    if (hvsim__libc.bind(fd, (struct sockaddr *)&me,
                         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + HVSIM_CONN_NAME_LEN)) < 0)
        return -errno;
    return 0;
}

/* After a connect that reached nobody, fd is bound to a spent name: a
 * fresh socket of the same kind takes its place (same fd number, status
 * flags and buffer sizes), so the caller may try again as on a kernel socket. */
static int renew_socket(struct sock *s, int fd)
{
    int fl = hvsim__libc.fcntl(fd, F_GETFL), fdfl = hvsim__libc.fcntl(fd, F_GETFD), n, v;
    socklen_t l = sizeof(v);
    struct stat st;

    n = hvsim__libc.socket(AF_UNIX, is_seqpacket(s) ? SOCK_SEQPACKET : SOCK_STREAM, 0);
    if (n < 0)
        return -errno;
    if (hvsim__libc.getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &l) == 0)
        (void)hvsim__libc.setsockopt(n, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
    l = sizeof(v);
    if (hvsim__libc.getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &l) == 0)
        (void)hvsim__libc.setsockopt(n, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
    (void)hvsim__libc.fcntl(n, F_SETFL, fl < 0 ? 0 : fl);
    if (hvsim__libc.dup3(n, fd, fdfl > 0 && (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
        hvsim__libc.close(n);
        return -errno;
    }
    hvsim__libc.close(n);
    if (fstat(fd, &st) == 0) {
        s->dev = st.st_dev;
        s->ino = st.st_ino;
    }
    return 0;
}

/* spare: r came from a spare ticket (spares.c): a listener that is not there
 * means the spares are stale, and the caller asks the daemon (returns 1). */
static int connect_routed(struct sock *s, int fd, const struct hvsim_msg_connect_reply *r, int nonblock, int spare)
{
    struct sockaddr_un sa;
    size_t n = strnlen(r->uname, sizeof(r->uname));
    int rc;

    /* The daemon gives the path whole: nothing to look up per connect. */
    if (n == 0 || n >= sizeof(sa.sun_path) || r->uname[0] != '/')
        return hvsim__fail(-EPROTO);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, r->uname, n + 1);
    rc = bind_conn_name(fd, r);
    if (rc < 0)
        return hvsim__fail(rc);
    if (hvsim__libc.connect(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1)) <
        0) {
        /* The listener closed after the daemon routed to it, or its backlog is
         * full: the same as no listener, which the daemon described. */
        rc = renew_socket(s, fd);
        if (rc < 0)
            return hvsim__fail(rc);
        if (spare) {
            hvsim__spares_drop(hvsim__owner_spares(s->owner));
            return 1;
        }
        return connect_outcome(s, fd, &r->vanished, nonblock);
    }
    if (hvsim__libc.send(fd, &r->ticket, sizeof(r->ticket), MSG_NOSIGNAL | MSG_DONTWAIT) !=
        (ssize_t)sizeof(r->ticket))
        return hvsim__fail(-ECONNRESET);
    if (spare) {
        /* For the daemon's listing of connections; it answers nothing. */
        struct hvsim_msg_conn_used u = { .conn_id = r->ticket.conn_id };

        (void)hvsim__owner_notice(s->owner, HVSIM_MSG_CONN_USED, &u, sizeof(u));
    }
    s->state = S_CONNECTED;
    s->local = r->local;
    s->peer = r->peer;
    hot_set(s, HOT_CONNECTED);
    if (nonblock && !HVSIM_MUTANT(NONBLOCK_EINPROGRESS)) {
        /* POSIX says EINPROGRESS (Winsock WSAEWOULDBLOCK); the fd is
         * writable at once, as after a fast handshake. */
        return hvsim__fail(-EINPROGRESS);
    }
    return 0;
}

int hvsim_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct sock *s = lookup(fd);
    struct hvsim_msg_connect m = { 0 };
    struct connect_answer a;
    struct hvsim__spares *sp;
    int rc, nonblock;

    if (s == NULL)
        return hvsim__fail(-ENOTSOCK);
    rc = connect_state(s);
    if (rc < 0)
        return hvsim__fail(rc);
    rc = connect_request(s, addr, len, &m);
    if (rc < 0)
        return hvsim__fail(rc);
    /* SO_ZEROCOPY set before connect, when the transport was not known yet:
     * vsock_connect refuses a transport without zerocopy (hv_sock). */
    if (s->zc_on && !is_virtio(s) && !HVSIM_MUTANT(ZEROCOPY_REFUSED))
        return hvsim__fail(-EOPNOTSUPP);
    nonblock = (hvsim__libc.fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
    /* Only a blocking connect waits for a listener to appear (the daemon's
     * waiting.c); a non-blocking one keeps its EINPROGRESS and time-out. */
    m.blocking = !nonblock;
    /* The same address as the last connect, and nothing that routes has
     * changed since: the daemon's spare answers as it would (spares.c). */
    sp = hvsim__owner_spares(s->owner);
    if (hvsim__spares_take(sp, &m, &a.r) && hvsim__owner_alive(s->owner)) {
        rc = connect_routed(s, fd, &a.r, nonblock, 1);
        if (rc != 1)
            return rc;
    }
    m.spares = hvsim__spares_want(sp, &m);
    rc = connect_ask(s, &m, &a);
    if (rc < 0)
        return hvsim__fail(rc);
    hvsim__spares_store(sp, &m, &a.r, a.v, a.r.nspares);
    if (a.r.outcome.verdict != HVSIM_VERDICT_OK)
        return connect_outcome(s, fd, &a.r.outcome, nonblock);
    return connect_routed(s, fd, &a.r, nonblock, 0);
}

/* ---- data ------------------------------------------------------------------------- */

/* The checks every send and recv make are inlined into them: as calls they
 * cost a fifth of the library's instructions per message (make bench-ci). */
#define HOT_PATH inline __attribute__((always_inline))

/* Whether a send may go on, in vsock_connectible_sendmsg's order: 0 or -errno. */
static HOT_PATH int send_allowed(uint32_t hot, int flags)
{
    if (flags & MSG_OOB)
        return -EOPNOTSUPP;
    if (!(hot & HOT_CONNECTED))
        return -ENOTCONN;
    if (hot & HOT_SHUT_WR) {
        if (!(hot & HOT_LINUX) && !HVSIM_MUTANT(SEND_AFTER_SHUT_WR))
            return -ESHUTDOWN;
        /* Kernels since 6.7 signal it (sk_stream_error) unless MSG_NOSIGNAL. */
        if ((hot & HOT_SIGPIPE) && !(flags & MSG_NOSIGNAL))
            (void)raise(SIGPIPE);
        return -EPIPE;
    }
    if ((hot & HOT_BROKEN) && !(hot & HOT_LINUX))
        return HVSIM_MUTANT(BROKEN_WINDOWS_SEND) ? -EPIPE : -ECONNRESET;
    return 0;
}

/* The flags the carrier gets: Winsock has no SIGPIPE, nor has vsock before
 * 6.7; since, a Linux program gets one as from any stream, unless
 * MSG_NOSIGNAL. MSG_EOR is the library's to carry (seq_send). */
static HOT_PATH int carrier_flags(uint32_t hot, int flags)
{
    return (flags & ~(MSG_DONTROUTE | MSG_EOR | MSG_ZEROCOPY)) | ((hot & HOT_SIGPIPE) ? 0 : MSG_NOSIGNAL);
}

static HOT_PATH ssize_t sent(uint32_t hot, ssize_t r)
{
    int err;

    if (r >= 0)
        return r;
    err = errno;
    if (err == EPIPE && !(hot & HOT_LINUX))
        err = ECONNRESET;
    return hvsim__fail(-err);
}

/* One SEQPACKET message of len bytes from iov. MSG_EOR rides along as a
 * marker: a descriptor of /dev/null in SCM_RIGHTS, opened for this message
 * only (a cached one could be closed and its number reused by the program,
 * and the peer would get that file). */
static ssize_t seq_send(const struct sock *s, int fd, const struct iovec *iov, size_t niov, size_t len, int flags,
                        uint32_t hot)
{
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = niov };
    int marker = -1, e;
    ssize_t r;

    if (len > SEQPACKET_MAX_MSG && !HVSIM_MUTANT(SEQPACKET_EMSGSIZE))
        return hvsim__fail(s->kernel < K_SEND_ERRNO ? -ENOMEM : -EMSGSIZE);
    /* vsock_connectible_sendmsg's loop sends no packet for nothing; an
     * empty AF_UNIX message would read as end of file. */
    if (len == 0)
        return 0;
    if (flags & MSG_EOR) {
        marker = hvsim__libc.open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (marker < 0)
            return hvsim__fail(-errno);
        hvsim__msg_put_fd(&m, ctl.b, sizeof(ctl.b), marker);
    }
    r = hvsim__libc.sendmsg(fd, &m, carrier_flags(hot, flags));
    e = errno;
    if (marker >= 0)
        hvsim__libc.close(marker);
    errno = e;
    return sent(hot, r);
}

/* A MSG_ZEROCOPY send that went through: the data was copied (AF_UNIX), so
 * its completion is due at once, with the next id of the socket. Without
 * SO_ZEROCOPY the flag is dropped (virtio_transport_send_pkt_info) and
 * nothing is queued; a send that sent nothing takes no id. */
static ssize_t zc_sent(struct sock *s, int flags, ssize_t r)
{
    if (r <= 0 || !(flags & MSG_ZEROCOPY) || !s->zc_on || s->kernel < K_ZEROCOPY)
        return r;
    pthread_mutex_lock(&zc_lock);
    if (s->zc_count == 0 || HVSIM_MUTANT(ZEROCOPY_MERGE))
        s->zc_lo = s->zc_next, s->zc_count = 0;
    s->zc_count++;
    s->zc_next++;
    pthread_mutex_unlock(&zc_lock);
    return r;
}

/* recvmsg(MSG_ERRQUEUE) on a vsock socket from 6.7 (sock_recv_errqueue with
 * SOL_VSOCK, VSOCK_RECVERR): the waiting completion as a control message,
 * 0 bytes, MSG_ERRQUEUE in msg_flags; EAGAIN when none waits. m may be NULL
 * (recv: the completion is taken, its message lost). */
static ssize_t zc_errqueue(struct sock *s, struct msghdr *m)
{
    struct {
        struct sock_extended_err ee;
        struct sockaddr_in offender; /* zeroed: no offender */
    } e;
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(e))];
    } c;
    size_t room, used;

    memset(&e, 0, sizeof(e));
    pthread_mutex_lock(&zc_lock);
    if (s->zc_count == 0) {
        pthread_mutex_unlock(&zc_lock);
        return hvsim__fail(-EAGAIN);
    }
    e.ee.ee_origin = SO_EE_ORIGIN_ZEROCOPY;
    e.ee.ee_code = SO_EE_CODE_ZEROCOPY_COPIED;
    e.ee.ee_info = s->zc_lo;
    e.ee.ee_data = s->zc_lo + s->zc_count - 1;
    s->zc_count = 0;
    pthread_mutex_unlock(&zc_lock);
    if (m == NULL)
        return 0;
    m->msg_namelen = 0;
    m->msg_flags = MSG_ERRQUEUE;
    room = m->msg_control != NULL ? m->msg_controllen : 0;
    /* put_cmsg: what fits is copied, and MSG_CTRUNC says the rest is lost. */
    if (room < sizeof(struct cmsghdr)) {
        m->msg_flags |= MSG_CTRUNC;
        m->msg_controllen = 0;
        return 0;
    }
    /* A short buffer gets the header saying how much it holds (put_cmsg). */
    used = CMSG_LEN(sizeof(e));
    if (room < used) {
        m->msg_flags |= MSG_CTRUNC;
        used = room;
    } else {
        used = room < CMSG_SPACE(sizeof(e)) ? room : CMSG_SPACE(sizeof(e));
    }
    memset(&c, 0, sizeof(c));
    c.h.cmsg_level = SOL_VSOCK;
    c.h.cmsg_type = VSOCK_RECVERR;
    c.h.cmsg_len = used < CMSG_LEN(sizeof(e)) ? used : CMSG_LEN(sizeof(e));
    memcpy(CMSG_DATA(&c.h), &e, sizeof(e));
    memcpy(m->msg_control, c.b, used);
    m->msg_controllen = used;
    return 0;
}

/* Whether MSG_ERRQUEUE reaches the error queue: a Linux socket from 6.7 on;
 * elsewhere the flag stays refused (recv_allowed). */
static int zc_errqueue_call(const struct sock *s, int flags)
{
    return (flags & MSG_ERRQUEUE) && !is_windows(s) && s->kernel >= K_ZEROCOPY;
}

/* Before 6.7 vsock's receive path never looks at MSG_ERRQUEUE: the call is
 * an ordinary receive (the transports test MSG_PEEK alone). */
static int zc_errqueue_ignored(const struct sock *s, int flags)
{
    return is_windows(s) ? flags : flags & ~MSG_ERRQUEUE;
}

ssize_t hvsim_send(int fd, const void *buf, size_t len, int flags)
{
    struct sock *s = lookup(fd);
    uint32_t hot;
    int rc;

    if (s == NULL)
        return hvsim__fail(-ENOTSOCK);
    hot = atomic_load_explicit(&s->hot, memory_order_acquire);
    /* The common case first: a connected stream, nothing shut or broken, no
     * flag of the library's own. Everything else takes the checks below. */
    if (!(flags & (MSG_OOB | MSG_EOR | MSG_ZEROCOPY)) &&
        (hot & (HOT_CONNECTED | HOT_SHUT_WR | HOT_BROKEN | HOT_SEQPACKET)) == HOT_CONNECTED) {
        ssize_t r = hvsim__libc.send(fd, buf, len, carrier_flags(hot, flags));

        return r >= 0 ? r : sent(hot, r);
    }
    rc = send_allowed(hot, flags);
    if (rc < 0)
        return hvsim__fail(rc);
    if (hot & HOT_SEQPACKET) {
        struct iovec v = { .iov_base = (void *)buf, .iov_len = len };

        return zc_sent(s, flags, seq_send(s, fd, &v, 1, len, flags, hot));
    }
    return zc_sent(s, flags, sent(hot, hvsim__libc.send(fd, buf, len, carrier_flags(hot, flags))));
}

/* The checks of a receive, in vsock_connectible_recvmsg's order: 0 to go
 * on, 1 when the call returns 0 now, or -errno. */
static HOT_PATH int recv_allowed(uint32_t hot, int flags, size_t len)
{
    int seq = (hot & HOT_SEQPACKET) != 0;

    /* A stream has no MSG_TRUNC; a SEQPACKET socket reports the message's length with it. */
    if (flags & (MSG_OOB | MSG_ERRQUEUE | (seq ? 0 : MSG_TRUNC)))
        return -EOPNOTSUPP;
    /* hv_sock has no peek (reference 3.4); virtio has (vsock-virtio.md 7.1). */
    if ((flags & MSG_PEEK) && (hot & HOT_LINUX) && !(hot & HOT_VIRTIO) && !HVSIM_MUTANT(LINUX_PEEK_REFUSED))
        return -EOPNOTSUPP;
    if (!(hot & HOT_CONNECTED))
        return -ENOTCONN;
    if (hot & HOT_SHUT_RD) {
        /* vsock returns 0 after SHUT_RD; Winsock fails with WSAESHUTDOWN. */
        if ((hot & HOT_LINUX) || HVSIM_MUTANT(RECV_AFTER_SHUT_RD))
            return 1;
        return -ESHUTDOWN;
    }
    /* vsock returns 0 for an empty buffer; AF_UNIX SEQPACKET would take
     * (and cut to nothing) the next message. */
    if (seq && len == 0)
        return 1;
    return 0;
}

/* A kernel before K_SEQPACKET_PEEK refuses MSG_PEEK on a SEQPACKET socket
 * once a message is there: the transport's seqpacket_dequeue says
 * EOPNOTSUPP after the wait for data, and af_vsock.c turned every receive
 * error of a transport into ENOMEM until 2023, which is what 6.1 shows.
 * 0: go on; else the result. */
static ssize_t seq_peek_refused(const struct sock *s, int fd, int flags)
{
    char c;
    ssize_t r;

    if (!(flags & MSG_PEEK) || s->kernel >= K_SEQPACKET_PEEK)
        return 0;
    r = hvsim__libc.recv(fd, &c, 1, MSG_PEEK | (flags & MSG_DONTWAIT));
    if (r < 0)
        return hvsim__fail(-errno);
    if (r == 0) /* end of file: no message to refuse */
        return -2;
    return hvsim__fail(-ENOMEM);
}

/* A socket its VM's end left with ECONNRESET: what was queued before still
 * comes, then every read fails so (the error stays, as sk_err does). */
static ssize_t reset_recv(int fd, void *buf, size_t len, int flags)
{
    ssize_t r = hvsim__libc.recv(fd, buf, len, flags | MSG_DONTWAIT);

    if (r > 0)
        return r;
    return hvsim__fail(-ECONNRESET);
}

ssize_t hvsim_recv(int fd, void *buf, size_t len, int flags)
{
    struct sock *s = lookup(fd);
    uint32_t hot;
    ssize_t r;
    int rc;

    if (s == NULL)
        return hvsim__fail(-ENOTSOCK);
    hot = atomic_load_explicit(&s->hot, memory_order_acquire);
    /* The common case first, as in hvsim_send. */
    if (!(flags & (MSG_OOB | MSG_ERRQUEUE | MSG_TRUNC | MSG_PEEK)) &&
        (hot & (HOT_CONNECTED | HOT_SHUT_RD | HOT_SEQPACKET | HOT_PEER_RESET)) == HOT_CONNECTED) {
        r = hvsim__libc.recv(fd, buf, len, flags);
        if (r > 0)
            return r;
        goto ended;
    }
    if (zc_errqueue_call(s, flags))
        return zc_errqueue(s, NULL);
    flags = zc_errqueue_ignored(s, flags);
    rc = recv_allowed(hot, flags, len);
    if (rc != 0)
        return rc < 0 ? hvsim__fail(rc) : 0;
    if (hot & HOT_SEQPACKET) {
        r = seq_peek_refused(s, fd, flags);
        if (r != 0)
            return r == -2 ? 0 : r;
    }
    if (hot & HOT_PEER_RESET)
        return reset_recv(fd, buf, len, flags);
    r = hvsim__libc.recv(fd, buf, len, flags);
ended:
    if (r < 0)
        return hvsim__fail(-errno);
    /* The end came while the call waited: the event's kind says which end. */
    if (r == 0 && len > 0 && (atomic_load_explicit(&s->hot, memory_order_acquire) & HOT_PEER_RESET))
        return hvsim__fail(-ECONNRESET);
    return r;
}

/* ---- the send/receive family: sendto, recvfrom, sendmsg, recvmsg ------------------- */

/*
 * A destination on a connected stream: vsock refuses it (EISCONN when
 * connected, else EOPNOTSUPP, vsock_connectible_sendmsg); Winsock ignores
 * it for connection-oriented sockets.
 */
static int stream_dest_refused(const struct sock *s)
{
    if (is_windows(s))
        return 0;
    return s->state == S_CONNECTED ? -EISCONN : -EOPNOTSUPP;
}

ssize_t hvsim_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
{
    struct sock *s = lookup(fd);

    if (s == NULL)
        return hvsim__fail(-ENOTSOCK);
    if (to != NULL && tolen != 0) {
        int rc = stream_dest_refused(s);

        if (rc < 0)
            return hvsim__fail(rc);
    }
    return hvsim_send(fd, buf, len, flags);
}

ssize_t hvsim_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen)
{
    struct sock *s = lookup(fd);
    int vsock;
    ssize_t r;

    if (s == NULL)
        return hvsim__fail(-ENOTSOCK);
    vsock = !is_windows(s);
    r = hvsim_recv(fd, buf, len, flags & ~MSG_CMSG_CLOEXEC);
    /* A stream socket reports no source: the kernel sets the length to 0;
     * Winsock leaves the argument alone. */
    if (r >= 0 && from != NULL && fromlen != NULL && vsock)
        *fromlen = 0;
    return r;
}

/*
 * sendmsg: each iovec in turn, stopping at a short send, so the result is
 * what one stream sendmsg returns. Ancillary data is not carried: vsock
 * ignores msg_control, and on the emulated AF_UNIX stream SCM_RIGHTS would
 * really pass descriptors, which no Hyper-V socket can.
 */
ssize_t hvsim_sendmsg(int fd, const struct msghdr *m, int flags)
{
    struct sock *s = lookup(fd);
    ssize_t total = 0;
    size_t i;

    if (s == NULL)
        return hvsim__fail(-ENOTSOCK);
    if (m == NULL)
        return hvsim__fail(-EFAULT);
    if (m->msg_name != NULL && m->msg_namelen != 0) {
        int rc = stream_dest_refused(s);

        if (rc < 0)
            return hvsim__fail(rc);
    }
    if (is_seqpacket(s)) {
        /* One call, one message, whatever its iovecs. */
        uint32_t hot = atomic_load_explicit(&s->hot, memory_order_acquire);
        size_t len = 0;
        int rc = send_allowed(hot, flags);

        if (rc < 0)
            return hvsim__fail(rc);
        for (i = 0; i < m->msg_iovlen; i++) {
            if (m->msg_iov[i].iov_len > SIZE_MAX / 2 - len)
                return hvsim__fail(-EMSGSIZE);
            len += m->msg_iov[i].iov_len;
        }
        return zc_sent(s, flags, seq_send(s, fd, m->msg_iov, m->msg_iovlen, len, flags, hot));
    }
    if (m->msg_iovlen == 0)
        return hvsim_send(fd, "", 0, flags);
    /* One call, one zerocopy id, however many iovecs. */
    for (i = 0; i < m->msg_iovlen; i++) {
        const struct iovec *v = &m->msg_iov[i];
        ssize_t r;

        if (v->iov_len == 0)
            continue;
        r = hvsim_send(fd, v->iov_base, v->iov_len, flags & ~MSG_ZEROCOPY);
        if (r < 0)
            return total > 0 ? zc_sent(s, flags, total) : -1;
        total += r;
        if ((size_t)r < v->iov_len)
            break;
    }
    return zc_sent(s, flags, total);
}

/* recvmsg's iovecs: without MSG_WAITALL the first non-empty one is filled
 * as far as data allows; with it, each in turn. Sets *any when one had room. */
static ssize_t recv_iov(int fd, struct msghdr *m, int flags, int *any)
{
    ssize_t total = 0;
    size_t i;

    for (i = 0; i < m->msg_iovlen; i++) {
        struct iovec *v = &m->msg_iov[i];
        ssize_t r;

        if (v->iov_len == 0)
            continue;
        *any = 1;
        r = hvsim_recv(fd, v->iov_base, v->iov_len, flags);
        if (r < 0)
            return total > 0 ? total : -1;
        total += r;
        if (!(flags & MSG_WAITALL) || (size_t)r < v->iov_len)
            break;
    }
    return total;
}

/* The EOR markers of a received SEQPACKET message (seq_send): closed; 1 if there was one. */
static int seq_markers(struct msghdr *h)
{
    struct cmsghdr *c;
    int eor = 0;

    for (c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
        size_t n, i;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
            continue;
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < n; i++) {
            int mfd;

            memcpy(&mfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            hvsim__libc.close(mfd);
            eor = 1;
        }
    }
    return eor;
}

/* recvmsg on a SEQPACKET socket: one message across the caller's iovecs;
 * msg_flags says MSG_TRUNC when it did not fit and MSG_EOR when its sender
 * gave it (__vsock_seqpacket_recvmsg). */
static ssize_t seq_recvmsg(struct sock *s, int fd, struct msghdr *m, int flags)
{
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    struct msghdr h = { .msg_iov = m->msg_iov, .msg_iovlen = m->msg_iovlen, .msg_control = ctl.b,
                        .msg_controllen = sizeof(ctl.b) };
    uint32_t hot = atomic_load_explicit(&s->hot, memory_order_acquire);
    size_t len = 0, i;
    ssize_t r;
    int rc;

    for (i = 0; i < m->msg_iovlen; i++)
        len += m->msg_iov[i].iov_len;
    rc = recv_allowed(hot, flags, len);
    if (rc == 0) {
        r = seq_peek_refused(s, fd, flags);
        rc = r == 0 ? 0 : r == -2 ? 1 : -1;
    }
    m->msg_namelen = 0;
    m->msg_controllen = 0;
    m->msg_flags = 0;
    if (rc != 0)
        return rc == 1 ? 0 : rc == -1 ? -1 : hvsim__fail(rc);
    /* Its VM went off (reset_recv): the queued messages, then the error. */
    r = hvsim__libc.recvmsg(fd, &h, flags | MSG_CMSG_CLOEXEC | ((hot & HOT_PEER_RESET) ? MSG_DONTWAIT : 0));
    if (r < 0 && !(hot & HOT_PEER_RESET))
        return hvsim__fail(-errno);
    if (r <= 0 && len > 0 && (atomic_load_explicit(&s->hot, memory_order_acquire) & HOT_PEER_RESET))
        return hvsim__fail(-ECONNRESET);
    if (r < 0)
        return hvsim__fail(-errno);
    m->msg_flags = (h.msg_flags & MSG_TRUNC) | (seq_markers(&h) ? MSG_EOR : 0);
    return r;
}

/*
 * recvmsg: a stream may return less than asked (recv_iov). No source address
 * (vsock reports a name length of 0; Winsock leaves it) and no ancillary data.
 */
ssize_t hvsim_recvmsg(int fd, struct msghdr *m, int flags)
{
    struct sock *s = lookup(fd);
    int any = 0, vsock;
    ssize_t total;

    if (s == NULL)
        return hvsim__fail(-ENOTSOCK);
    if (m == NULL)
        return hvsim__fail(-EFAULT);
    vsock = !is_windows(s);
    flags &= ~MSG_CMSG_CLOEXEC;
    if (zc_errqueue_call(s, flags))
        return zc_errqueue(s, m);
    flags = zc_errqueue_ignored(s, flags);
    if (is_seqpacket(s))
        return seq_recvmsg(s, fd, m, flags);
    total = recv_iov(fd, m, flags, &any);
    if (total < 0)
        return -1;
    if (!any) {
        char c;

        /* Nothing to fill: still run the call's checks (ENOTCONN, MSG_PEEK...). */
        if (hvsim_recv(fd, &c, 0, flags) < 0)
            return -1;
    }
    if (vsock)
        m->msg_namelen = 0;
    m->msg_controllen = 0;
    m->msg_flags = 0;
    return total;
}

int hvsim_shutdown(int fd, int how)
{
    struct sock *s = lookup(fd);
    uint32_t hot;

    if (s == NULL)
        return hvsim__fail(-ENOTSOCK);
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
        return hvsim__fail(-EINVAL);
    hot = atomic_load(&s->hot);
    if (!(hot & HOT_CONNECTED))
        return hvsim__fail(-ENOTCONN);
    /* SHUT_RD stays local on hv_sock and Windows: hvs_shutdown sends
     * nothing for it, and a real AF_UNIX shutdown would make the peer's
     * writes fail. virtio tells the peer (virtio_transport_shutdown sends
     * SHUTDOWN with the RCV flag), whose sends then fail with EPIPE, which
     * is what the AF_UNIX shutdown gives it (vsock-virtio.md 10.2). */
    if (how == SHUT_RD || how == SHUT_RDWR) {
        int tell = (hot & HOT_LINUX) && (hot & HOT_VIRTIO) && !HVSIM_MUTANT(VIRTIO_SHUT_RD_TELLS);

        hot_set(s, HOT_SHUT_RD);
        if ((tell || HVSIM_MUTANT(SHUTDOWN_RD_LOCAL)) && hvsim__libc.shutdown(fd, SHUT_RD) < 0 && errno != ENOTCONN)
            return hvsim__fail(-errno);
    }
    if (how == SHUT_WR || how == SHUT_RDWR) {
        hot_set(s, HOT_SHUT_WR);
        /* FIN once; the peer reads its EOF after the buffered data. */
        if (hvsim__libc.shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
            return hvsim__fail(-errno);
    }
    return 0;
}

/* SO_LINGER is the socket layer's, stored on the AF_UNIX fd, and nothing
 * of it changes what the peer sees: vsock's release shuts the connection
 * down in order whatever the linger time, 0 included, where TCP would reset
 * (vsock-virtio.md 10.1). Only the mutant build lets linger {1, 0} abort. */
static int linger_aborts(int fd)
{
    struct linger l = { 0, 0 };
    socklen_t n = sizeof(l);

    if (!HVSIM_MUTANT(LINGER_ABORTS))
        return 0;
    return hvsim__libc.getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &n) == 0 && l.l_onoff && l.l_linger == 0;
}

int hvsim_close(int fd)
{
    struct sock *s = lookup(fd);
    int rc;

    if (s != NULL) {
        uint32_t hot = atomic_load(&s->hot);

        if (s->bind_id) {
            struct hvsim_msg_unbind u = { s->bind_id }, r;

            /* Synchronous: once close() returns, no connection is routed here.
             * A bound socket that connected (or failed to) holds its port
             * until now too. */
            if (hvsim__owner_attached(s->owner))
                (void)ask(s->owner, HVSIM_MSG_UNBIND, &u, sizeof(u), HVSIM_MSG_UNBIND, &r, sizeof(r));
        }
        if ((hot & HOT_CONNECTED) && !HVSIM_MUTANT(CLOSE_DRAIN) && !linger_aborts(fd)) {
            char sink[16384];

            /* Unread data in a closed AF_UNIX socket gives the peer
             * ECONNRESET; a vsock peer reads EOF. Discard it first. */
            while (hvsim__libc.recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
                ;
        }
        pthread_mutex_lock(&event_lock);
        forget_fd(fd);
        rc = hvsim__libc.close(fd) < 0 ? -errno : 0;
        pthread_mutex_unlock(&event_lock);
        return rc < 0 ? hvsim__fail(rc) : 0;
    }
    if (hvsim__libc.close(fd) < 0)
        return hvsim__fail(-errno);
    return 0;
}

/* ---- names and options ------------------------------------------------------------ */

int hvsim_getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    struct sock *s = lookup(fd);
    struct hvsim__attach me;
    int rc;

    if (s == NULL)
        return hvsim__fail(-ENOTSOCK);
    if (s->state == S_NEW || s->state == S_CONNECTING || s->state == S_FAILED) {
        /* Winsock: unbound is WSAEINVAL; vsock reports (ANY, ANY). */
        if (is_windows(s))
            return hvsim__fail(-EINVAL);
        {
            GUID any = hvsim_guid_from_port(VMADDR_PORT_ANY);

            rc = put_addr(s, &HV_GUID_ZERO, &any, VMADDR_CID_ANY, 0, addr, len);
        }
    } else {
        uint32_t cid = VMADDR_CID_ANY;

        /* A virtio guest's socket takes its CID when it connects (or is
         * accepted); bound to VMADDR_CID_ANY it reports ANY until then. */
        int conn = s->state == S_CONNECTED;

        if (conn && s->peer.cid == VMADDR_CID_LOCAL && !is_windows(s))
            cid = VMADDR_CID_LOCAL;
        else if ((s->pers == HVSIM_PERS_VSOCK_HOST || (conn && is_virtio(s))) &&
                 hvsim__owner_attach(s->owner, &me) == 0)
            cid = me.cid;
        rc = put_addr(s, &s->local.vmid, &s->local.svc, cid, 0, addr, len);
    }
    return rc < 0 ? hvsim__fail(rc) : 0;
}

int hvsim_getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    struct sock *s = lookup(fd);
    int rc;

    if (s == NULL)
        return hvsim__fail(-ENOTSOCK);
    if (s->state != S_CONNECTED)
        return hvsim__fail(-ENOTCONN);
    rc = put_addr(s, &s->peer.vmid, &s->peer.svc, s->peer.cid, s->peer.flags, addr, len);
    return rc < 0 ? hvsim__fail(rc) : 0;
}

/* SO_ERROR: the verdict of a failed non-blocking connect once it is due;
 * the kernel's own value (ECONNRESET from the parked stream) never shows. */
static int so_error(struct sock *s, int fd)
{
    int e = 0;
    socklen_t l = sizeof(e);

    if (s->state == S_CONNECTING) {
        /* The helper closing the parked end (ECONNRESET here) is the moment
         * the failure is due; the clock decides when the helper is late. */
        (void)hvsim__libc.getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
        if (e == 0 && hvsim__now_ns() < s->due_ns)
            return 0;
        e = -s->async_err;
        s->async_err = 0;
        s->state = S_FAILED;
        return e;
    }
    if ((atomic_load(&s->hot) & HOT_PEER_RESET) && !s->reset_told) {
        s->reset_told = 1;
        return ECONNRESET;
    }
    if (hvsim__libc.getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
        return 0;
    return e;
}

static int get_u32(void *val, socklen_t *len, uint32_t v)
{
    if (val == NULL || len == NULL || *len < (socklen_t)sizeof(uint32_t))
        return -EFAULT;
    memcpy(val, &v, sizeof(v));
    *len = sizeof(v);
    return 0;
}

/* The connect timeout a socket will use: its own, else the personality's
 * default, which only the daemon's settings know (sent at HELLO): the
 * library has no number of its own. -errno when the daemon is unreachable. */
static int effective_timeout(const struct sock *s, uint32_t *ms)
{
    struct hvsim__attach me;
    int rc;

    *ms = s->timeout_ms;
    if (*ms != 0)
        return 0;
    rc = hvsim__owner_attach(s->owner, &me);
    if (rc < 0)
        return rc;
    *ms = s->pers == HVSIM_PERS_WINDOWS ? me.win_timeout_ms : me.linux_timeout_ms;
    return 0;
}

/* getsockopt at level HV_PROTOCOL_RAW (AF_HYPERV). */
static int get_hv_raw(struct sock *s, int name, void *val, socklen_t *len)
{
    switch (name) {
    case HVSOCKET_CONNECT_TIMEOUT: {
        uint32_t v;
        int rc = effective_timeout(s, &v);

        return rc < 0 ? rc : get_u32(val, len, v);
    }
    case HVSOCKET_CONNECTED_SUSPEND:
        return get_u32(val, len, (s->flags & HVSIM_SF_SUSPEND) ? 1 : 0);
    case HVSOCKET_HIGH_VTL:
        return get_u32(val, len, (s->flags & HVSIM_SF_HIGH_VTL) ? 1 : 0);
    case HVSOCKET_CONTAINER_PASSTHRU:
        return get_u32(val, len, 0);
    default:
        return -ENOPROTOOPT;
    }
}

/* getsockopt at Winsock's SOL_SOCKET (AF_HYPERV). */
static int get_wsa_sol(struct sock *s, int fd, int name, void *val, socklen_t *len)
{
    switch (name) {
    case HVSIM_WSA_SO_ERROR:
        return get_u32(val, len, (uint32_t)hvsim_wsa_error(so_error(s, fd)));
    case HVSIM_WSA_SO_TYPE:
        return get_u32(val, len, SOCK_STREAM);
    case HVSIM_WSA_SO_SNDBUF:
    case HVSIM_WSA_SO_RCVBUF: {
        int v;
        socklen_t l = sizeof(v);

        return hvsim__libc.getsockopt(fd, SOL_SOCKET, name == HVSIM_WSA_SO_SNDBUF ? SO_SNDBUF : SO_RCVBUF, &v, &l) < 0
                   ? -errno
                   : get_u32(val, len, (uint32_t)v);
    }
    default:
        return -ENOPROTOOPT;
    }
}

/* getsockopt at level AF_VSOCK. */
static int get_vsock(struct sock *s, int name, void *val, socklen_t *len)
{
    switch (name) {
    case SO_VM_SOCKETS_BUFFER_SIZE:
    case SO_VM_SOCKETS_BUFFER_MIN_SIZE:
    case SO_VM_SOCKETS_BUFFER_MAX_SIZE:
        if (val == NULL || len == NULL || *len < (socklen_t)sizeof(uint64_t))
            return -EINVAL;
        memcpy(val, &s->vsock_buf[name], sizeof(uint64_t));
        *len = sizeof(uint64_t);
        return 0;
    case SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD:
    case SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW: {
        uint32_t ms;
        int rc = effective_timeout(s, &ms);
        struct timeval tv;

        if (rc < 0)
            return rc;
        tv = (struct timeval){ .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
        if (val == NULL || len == NULL || *len < (socklen_t)sizeof(tv))
            return -EINVAL;
        memcpy(val, &tv, sizeof(tv));
        *len = sizeof(tv);
        return 0;
    }
    default:
        return -ENOPROTOOPT;
    }
}

int hvsim_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    struct sock *s = lookup(fd);
    int rc;

    if (s == NULL)
        return hvsim__fail(-ENOTSOCK);
    if (is_windows(s) && level == HV_PROTOCOL_RAW)
        rc = get_hv_raw(s, name, val, len);
    else if (is_windows(s) && level == HVSIM_WSA_SOL_SOCKET)
        rc = get_wsa_sol(s, fd, name, val, len);
    else if (!is_windows(s) && level == AF_VSOCK)
        rc = get_vsock(s, name, val, len);
    else if (!is_windows(s) && level == SOL_SOCKET && name == SO_ERROR)
        rc = get_u32(val, len, (uint32_t)so_error(s, fd));
    else if (!is_windows(s) && level == SOL_SOCKET && name == SO_DOMAIN)
        rc = get_u32(val, len, AF_VSOCK);
    else if (!is_windows(s) && level == SOL_SOCKET && name == SO_ZEROCOPY)
        rc = get_u32(val, len, s->zc_on ? 1 : 0); /* sk_getsockopt: the flag, on every kernel */
    else if (!is_windows(s) && level == SOL_SOCKET)
        rc = hvsim__libc.getsockopt(fd, level, name, val, len) < 0 ? -errno : 0;
    else
        rc = -ENOPROTOOPT;
    return rc < 0 ? hvsim__fail(rc) : 0;
}

static int set_u32(const void *val, socklen_t len, uint32_t *out)
{
    if (val == NULL || len < (socklen_t)sizeof(uint32_t))
        return -EFAULT;
    memcpy(out, val, sizeof(*out));
    return 0;
}

/* The daemon's setting connect_timeout_above_max: clamp, or EINVAL. */
static int timeout_policy_clamp(struct hvsim__owner *o)
{
    struct hvsim__attach me;

    return hvsim__owner_attach(o, &me) == 0 && me.timeout_clamp;
}

/* setsockopt at level HV_PROTOCOL_RAW (AF_HYPERV). */
static int set_hv_raw(struct sock *s, int name, const void *val, socklen_t len)
{
    uint32_t v = 0;
    int rc = set_u32(val, len, &v);

    if (rc < 0)
        return rc;
    switch (name) {
    case HVSOCKET_CONNECT_TIMEOUT:
        if (v > HVSOCKET_CONNECT_TIMEOUT_MAX) {
            if (!timeout_policy_clamp(s->owner) && !HVSIM_MUTANT(TIMEOUT_ABOVE_MAX))
                return -EINVAL;
            v = HVSOCKET_CONNECT_TIMEOUT_MAX;
        }
        s->timeout_ms = v;
        return 0;
    case HVSOCKET_CONNECTED_SUSPEND:
        s->flags = v ? (s->flags | HVSIM_SF_SUSPEND) : (s->flags & ~HVSIM_SF_SUSPEND);
        return 0;
    case HVSOCKET_HIGH_VTL:
        s->flags = v ? (s->flags | HVSIM_SF_HIGH_VTL) : (s->flags & ~HVSIM_SF_HIGH_VTL);
        return 0;
    case HVSOCKET_CONTAINER_PASSTHRU:
        return 0;
    default:
        return -ENOPROTOOPT;
    }
}

/* setsockopt at Winsock's SOL_SOCKET (AF_HYPERV). */
static int set_wsa_sol(int fd, int name, const void *val, socklen_t len)
{
    uint32_t v = 0;
    int rc = set_u32(val, len, &v), iv;

    if (rc < 0)
        return rc;
    if (name != HVSIM_WSA_SO_SNDBUF && name != HVSIM_WSA_SO_RCVBUF)
        return -ENOPROTOOPT;
    iv = (int)v;
    return hvsim__libc.setsockopt(fd, SOL_SOCKET, name == HVSIM_WSA_SO_SNDBUF ? SO_SNDBUF : SO_RCVBUF, &iv,
                                  sizeof(iv)) < 0
               ? -errno
               : 0;
}

/* SO_VM_SOCKETS_CONNECT_TIMEOUT: a timeval, kept in ms. */
static int set_vsock_timeout(struct sock *s, const void *val, socklen_t len)
{
    struct timeval tv;
    uint64_t ms;

    if (val == NULL || len < (socklen_t)sizeof(tv))
        return -EINVAL;
    memcpy(&tv, val, sizeof(tv));
    /* vsock: a negative or out-of-range timeval is ERANGE-like EDOM. */
    if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1000000)
        return -EDOM;
    ms = (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
    s->timeout_ms = ms == 0 ? 1 : ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
    return 0;
}

/* SO_ZEROCOPY (vsock-virtio.md 10.3). */
static int set_zerocopy(struct sock *s, const void *val, socklen_t len)
{
    int v;

    if (val == NULL || len < (socklen_t)sizeof(int))
        return -EINVAL;
    /* Not vsock's before 6.7, nor an accepted socket's until the fix: the
     * generic handler takes it, which knows only INET and RDS. */
    if ((s->kernel < K_ZEROCOPY || (s->accepted && s->kernel < K_ZEROCOPY_ACCEPTED)) &&
        !HVSIM_MUTANT(ZEROCOPY_REFUSED))
        return -EOPNOTSUPP;
    memcpy(&v, val, sizeof(v));
    if (v < 0 || v > 1)
        return -EINVAL;
    /* Once a transport is assigned (connect, accept), it must allow it:
     * the virtio family does, hv_sock does not (msgzerocopy_allow). Before,
     * the option is only recorded, and connect checks it. */
    if (!is_virtio(s) && s->state != S_NEW && s->state != S_BOUND && s->state != S_LISTENING &&
        !HVSIM_MUTANT(ZEROCOPY_REFUSED))
        return -EOPNOTSUPP;
    s->zc_on = v;
    return 0;
}

/* setsockopt at level AF_VSOCK. */
static int set_vsock(struct sock *s, int name, const void *val, socklen_t len)
{
    uint64_t b;

    switch (name) {
    case SO_VM_SOCKETS_BUFFER_SIZE:
    case SO_VM_SOCKETS_BUFFER_MIN_SIZE:
    case SO_VM_SOCKETS_BUFFER_MAX_SIZE:
        if (val == NULL || len < (socklen_t)sizeof(b))
            return -EINVAL;
        memcpy(&b, val, sizeof(b));
        s->vsock_buf[name] = b;
        return 0;
    case SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD:
    case SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW:
        return set_vsock_timeout(s, val, len);
    default:
        return -ENOPROTOOPT;
    }
}

int hvsim_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    struct sock *s = lookup(fd);
    int rc;

    if (s == NULL)
        return hvsim__fail(-ENOTSOCK);
    if (is_windows(s) && level == HV_PROTOCOL_RAW)
        rc = set_hv_raw(s, name, val, len);
    else if (is_windows(s) && level == HVSIM_WSA_SOL_SOCKET)
        rc = set_wsa_sol(fd, name, val, len);
    else if (!is_windows(s) && level == AF_VSOCK)
        rc = set_vsock(s, name, val, len);
    else if (!is_windows(s) && level == SOL_SOCKET && name == SO_ZEROCOPY)
        rc = set_zerocopy(s, val, len);
    else if (!is_windows(s) && level == SOL_SOCKET && name == SO_RCVLOWAT && !is_virtio(s))
        rc = -EOPNOTSUPP; /* mainline hv_sock: notify_set_rcvlowat; virtio takes it (vsock-virtio.md 7.2) */
    else if (!is_windows(s) && level == SOL_SOCKET)
        rc = hvsim__libc.setsockopt(fd, level, name, val, len) < 0 ? -errno : 0;
    else
        rc = -ENOPROTOOPT;
    return rc < 0 ? hvsim__fail(rc) : 0;
}

int hvsim_get_local_cid(uint32_t *cid)
{
    struct hvsim__attach me;
    int rc = hvsim__owner_attach(hvsim__self_owner(), &me);

    if (rc < 0)
        return hvsim__fail(rc);
    /* hv_sock reports VMADDR_CID_ANY as a guest's own CID (reference 3.1);
     * virtio its CID (virtio_transport_get_local_cid). */
    if (!me.is_host && me.transport == HVSIM_TRANSPORT_VIRTIO)
        *cid = me.cid;
    else
        *cid = me.is_host ? VMADDR_CID_HOST : HVSIM_MUTANT(LINUX_LOCAL_CID_ANY) ? me.cid : VMADDR_CID_ANY;
    return 0;
}

int hvsim_self(GUID *vmid, char *name, size_t name_len)
{
    struct hvsim__attach me;
    int rc = hvsim__owner_attach(hvsim__self_owner(), &me);

    if (rc < 0)
        return rc;
    if (vmid)
        *vmid = me.self;
    if (name && name_len)
        snprintf(name, name_len, "%s", me.name);
    return 0;
}

/* ---- ioctl ------------------------------------------------------------------------ */

/* SIOCINQ and SIOCOUTQ as vsock_do_ioctl answers them, per kernel: before
 * 6.11 the socket has no ioctl at all (sock_no_ioctl: EOPNOTSUPP); 6.11
 * brought SIOCOUTQ, which only virtio's transports answer (the bytes the
 * transport holds unsent: none here, as the stream hands every byte to the
 * peer's buffer at once); 6.17 brought SIOCINQ, the bytes readable, for every
 * transport. A listener is EINVAL; a socket without a transport yet (not
 * connected) EOPNOTSUPP (docs/reference/vsock-virtio.md 7.3). */
static int vsock_queue_ioctl(struct sock *s, int fd, unsigned long req, int *out)
{
    if (s->kernel < K_SIOCOUTQ)
        return -EOPNOTSUPP;
    if (req == SIOCINQ && s->kernel < K_SIOCINQ)
        return -ENOTTY; /* ENOIOCTLCMD, as net/socket.c shows it */
    if (req == SIOCOUTQ && !is_virtio(s))
        return -EOPNOTSUPP; /* hv_sock has no unsent_bytes */
    if (s->state == S_LISTENING)
        return -EINVAL;
    if (s->state != S_CONNECTED)
        return -EOPNOTSUPP;
    if (req == SIOCOUTQ) {
        *out = 0;
        return 0;
    }
    return hvsim__libc.ioctl(fd, SIOCINQ, out) < 0 ? -errno : 0;
}

int hvsim_ioctl(int fd, unsigned long req, void *arg)
{
    struct sock *s = lookup(fd);
    int v = 0, rc;

    if (s == NULL)
        return hvsim__fail(-ENOTSOCK);
    if (req != SIOCINQ && req != SIOCOUTQ)
        return hvsim__libc.ioctl(fd, req, arg); /* FIONBIO and the like: the fd's own */
    if (is_windows(s))
        return hvsim__fail(-EOPNOTSUPP);
    rc = vsock_queue_ioctl(s, fd, req, &v);
    if (rc < 0)
        return hvsim__fail(rc);
    if (arg == NULL)
        return hvsim__fail(-EFAULT);
    memcpy(arg, &v, sizeof(v));
    return 0;
}

int hvsim_self_vsock(uint32_t *transport, uint32_t *kernel)
{
    struct hvsim__attach me;
    int rc = hvsim__owner_attach(hvsim__self_owner(), &me);

    if (rc < 0)
        return rc;
    if (transport)
        *transport = me.transport;
    if (kernel)
        *kernel = me.kernel;
    return 0;
}

/* ---- partition events (helper thread) ---------------------------------------------- */

static int still_ours(int fd, const struct sock *s)
{
    struct stat st;

    /* The program may have closed the fd with plain close() and the number
     * been reused: act only on the socket we registered. */
    return fstat(fd, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino;
}

/* Does event ev concern socket s (the VM's end or the host's end of one of
 * the VM's connections)? */
static int event_concerns(const struct sock *s, const struct hvsim_msg_event *ev, int in_vm)
{
    if (!in_vm && !hvsim_guid_equal(&s->peer.partition, &ev->vmid))
        return 0;
    /* A Disabled HCS service: only the connections of that service. */
    if (ev->event == HVSIM_EV_SERVICE_DISABLED)
        return hvsim_guid_equal(&s->local.svc, &ev->svc) || hvsim_guid_equal(&s->peer.svc, &ev->svc);
    return 1;
}

/* The revocation event ev makes for a listener of partition me (0: none). */
static int revocation_of(const struct hvsim_msg_event *ev, const struct hvsim__attach *me, struct revoked *r)
{
    int in_vm = hvsim_guid_equal(&me->self, &ev->vmid);

    memset(r, 0, sizeof(*r));
    r->below = ev->below;
    r->until_ns = hvsim__now_ns() + HVSIM_TICKET_LIFETIME_NS;
    switch (ev->event) {
    case HVSIM_EV_RESET:
    case HVSIM_EV_OFF:
    case HVSIM_EV_REMOVED:
        /* The VM's own listeners: every ticket; the host's: the VM's connectors'. */
        if (!in_vm)
            r->part = ev->vmid;
        return 1;
    case HVSIM_EV_SERVICE_DISABLED:
        if (!in_vm)
            r->part = ev->vmid;
        r->svc = ev->svc;
        return 1;
    case HVSIM_EV_SERVICE_REMOVED:
        /* Guests' tickets for the service (the host's own loopback needs no registration). */
        r->except = me->host;
        r->svc = ev->svc;
        return 1;
    }
    return 0;
}

/* Record r in l: expired records go first; when still full, the records
 * merge into one that covers every ticket below the highest mark (some
 * unused tickets refused too many, none accepted that must not be). */
static void revoke_add(struct listener *l, const struct revoked *r, uint64_t now)
{
    unsigned i, n = 0;

    pthread_mutex_lock(&l->lock);
    for (i = 0; i < l->nrev; i++)
        if (l->rev[i].until_ns > now)
            l->rev[n++] = l->rev[i];
    l->nrev = n;
    if (n == REVOKED_MAX) {
        struct revoked all = *r;

        memset(&all.part, 0, sizeof(all.part));
        memset(&all.except, 0, sizeof(all.except));
        memset(&all.svc, 0, sizeof(all.svc));
        for (i = 0; i < n; i++)
            all.below = l->rev[i].below > all.below ? l->rev[i].below : all.below;
        l->rev[0] = all;
        l->nrev = 1;
    } else {
        l->rev[l->nrev++] = *r;
    }
    pthread_mutex_unlock(&l->lock);
}

void hvsim__sock_event(struct hvsim__owner *o, const struct hvsim_msg_event *ev)
{
    const GUID *vmid = &ev->vmid;
    uint32_t event = ev->event;
    struct hvsim__attach me;
    struct revoked rev;
    int in_vm, has_rev, c, i;

    if (event == HVSIM_EV_RESUME || hvsim__owner_attach(o, &me) < 0)
        return;
    if ((event == HVSIM_EV_RESET || event == HVSIM_EV_OFF) && HVSIM_MUTANT(RESET_BREAKS))
        return;
    in_vm = hvsim_guid_equal(&me.self, vmid);
    has_rev = revocation_of(ev, &me, &rev);
    pthread_mutex_lock(&event_lock);
    for (c = 0; c < NCHUNKS; c++) {
        struct sock *chunk = atomic_load_explicit(&chunks[c], memory_order_acquire);

        if (chunk == NULL)
            continue;
        for (i = 0; i < CHUNK; i++) {
            struct sock *s = &chunk[i];
            uint32_t hot = atomic_load(&s->hot);
            int fd = c * CHUNK + i;

            /* A listener's state lives until its slot is reused, which
             * event_lock holds off (register_fd). */
            if (has_rev && (hot & HOT_USED) && (hot & HOT_LISTENING) && s->owner == o)
                revoke_add(s->lis, &rev, rev.until_ns - HVSIM_TICKET_LIFETIME_NS);
            if (ev->event == HVSIM_EV_SERVICE_REMOVED)
                continue; /* the registry is asked at connect time only: connections stay */
            if (!(hot & HOT_USED) || !(hot & HOT_CONNECTED) || (hot & HOT_BROKEN) || s->owner != o)
                continue;
            if (!event_concerns(s, ev, in_vm))
                continue;
            /* HVSOCKET_CONNECTED_SUSPEND on either end keeps the connection
             * through a pause (README: emulation choices). */
            if (event == HVSIM_EV_PAUSE && ((s->flags | s->peer.flags) & HVSIM_SF_SUSPEND) &&
                !HVSIM_MUTANT(PAUSE_CONNECTED_SUSPEND))
                continue;
            if (!still_ours(fd, s))
                continue;
            /* A VM that went off or away releases its vhost device: the
             * KVM host's sockets get ECONNRESET (vhost_vsock_reset_orphans);
             * a reset keeps the device, and the host sees the end as EOF. */
            hot_set(s, HOT_BROKEN | ((event == HVSIM_EV_OFF || event == HVSIM_EV_REMOVED) &&
                                             s->pers == HVSIM_PERS_VSOCK_HOST
                                         ? HOT_PEER_RESET
                                         : 0));
            /* shutdown() acts on the socket, so every holder (fork, dup) and
             * the peer see it: reads return EOF, writes fail. */
            (void)hvsim__libc.shutdown(fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&event_lock);
}

void hvsim__sock_atfork_child(void)
{
    pthread_mutex_init(&table_lock, NULL);
    pthread_mutex_init(&event_lock, NULL);
}

/* ---- a new daemon (helper thread) -------------------------------------------------- */

int hvsim__sock_has_binds(struct hvsim__owner *o)
{
    int c, i, any = 0;

    pthread_mutex_lock(&event_lock);
    for (c = 0; c < NCHUNKS && !any; c++) {
        struct sock *chunk = atomic_load_explicit(&chunks[c], memory_order_acquire);

        for (i = 0; chunk != NULL && i < CHUNK && !any; i++)
            any = (atomic_load(&chunk[i].hot) & HOT_USED) && chunk[i].owner == o &&
                  (chunk[i].state == S_BOUND || chunk[i].state == S_LISTENING);
    }
    pthread_mutex_unlock(&event_lock);
    return any;
}

/* Bind (and listen) again under a new daemon what this socket held under the
 * last one, at the address it reports; a listener keeps its socket file and
 * gets the new daemon's key (whose ticket ids start afresh). */
static int reregister_one(struct sock *s)
{
    struct hvsim_msg_bind b = { .personality = s->pers, .flags = s->flags, .vmid = s->local.vmid,
                                .svc = s->local.svc };
    struct hvsim_msg_bind_reply br;
    struct hvsim_msg_listen l = { .flags = s->flags };
    struct hvsim_msg_listen_reply lr;
    int rc = ask(s->owner, HVSIM_MSG_BIND, &b, sizeof(b), HVSIM_MSG_BIND_REPLY, &br, sizeof(br));

    if (rc < 0)
        return rc;
    s->bind_id = br.bind_id;
    if (s->state != S_LISTENING)
        return 0;
    l.bind_id = br.bind_id;
    memcpy(l.uname, s->lis->name, sizeof(s->lis->name));
    rc = ask(s->owner, HVSIM_MSG_LISTEN, &l, sizeof(l), HVSIM_MSG_LISTEN_REPLY, &lr, sizeof(lr));
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&s->lis->lock);
    memcpy(s->lis->key, lr.key, sizeof(lr.key));
    s->lis->nrev = 0; /* the new daemon's ids and the new key void the old tickets */
    hvsim__ticketset_free(&s->lis->taken);
    rc = hvsim__ticketset_reserve(&s->lis->taken);
    pthread_mutex_unlock(&s->lis->lock);
    return rc;
}

void hvsim__sock_reregister(struct hvsim__owner *o)
{
    int c, i;

    for (c = 0; c < NCHUNKS; c++) {
        struct sock *chunk = atomic_load_explicit(&chunks[c], memory_order_acquire);

        for (i = 0; chunk != NULL && i < CHUNK; i++) {
            struct sock *s = &chunk[i];
            int fd = c * CHUNK + i, rc;

            /* The lock is held through the round trips: a close and a new
             * socket on the same fd number would otherwise free the
             * listener state (register_fd) under reregister_one. Only a
             * daemon restart comes here, so new sockets wait for it rarely. */
            pthread_mutex_lock(&event_lock);
            rc = (atomic_load(&s->hot) & HOT_USED) && s->owner == o &&
                 (s->state == S_BOUND || (s->state == S_LISTENING && !s->lis->gateway)) && still_ours(fd, s);
            /* A socket that cannot come back stays as it is: its own calls
             * report the daemon's answer from now on. */
            if (rc)
                (void)reregister_one(s);
            pthread_mutex_unlock(&event_lock);
        }
    }
}
