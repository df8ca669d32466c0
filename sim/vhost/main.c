/* SPDX-License-Identifier: MIT */
/*
 * main.c: hvsim-vhost, the vhost-user-vsock back-end that serves a Linux
 * guest's virtio-vsock device from the emulated Hyper-V host.
 *
 *   hvsim-vhost --socket PATH [--cid N] [--ready-fd N]
 *
 * One process per VM, attached to hvsimd as that VM's partition (HVSIM_DIR,
 * HVSIM_PARTITION=<vm>): guest connections to CID 2 become libhvsim AF_VSOCK
 * connects (Linux personality), so the daemon routes them and applies its
 * refusal rules. A guest's own listen() never shows on the device, so this
 * process listens once as the VM's gateway: the daemon offers it every host
 * connection to a port of the guest, the guest is asked with a REQUEST, and
 * its RESPONSE, RST or silence goes back to the daemon before the host
 * program's connect returns; an accepted stream then arrives at the gateway
 * listener and is joined to the guest connection. Seqpacket connections
 * (when the guest negotiated VIRTIO_VSOCK_F_SEQPACKET) take the same ways
 * with SOCK_SEQPACKET sockets and a second gateway listener.
 *
 * It creates the unix socket QEMU connects to (a stale one is replaced),
 * reports readiness by writing READY=1 to --ready-fd and closing it, serves
 * one QEMU connection with a single epoll loop (vhost-user socket, kick
 * eventfds, host sockets, signalfd) and exits 0 on SIGTERM/SIGINT or when
 * QEMU disconnects. It stays in the foreground and logs to stderr. Following
 * vhost-user.rst "Back-end program conventions", --socket-path, --fd and
 * --print-capabilities are accepted too.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hvsim/hvsim.h"
#include "gateway.h"
#include "hvproto/cli.h"
#include "hvsim_adapter.h" /* hvsim__attach_get (the CID hvsimd gave this VM), the gateway listens */
#include "vhost_user.h"
#include "vlog.h"
#include "vsock_conn.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_EVENTS 64

/* epoll tags in the low 3 bits of data.u64; connection cookies are
 * pointers (malloc alignment keeps those bits 0) and carry tag 0. */
#define TAG_CONN 0u
#define TAG_VHU 1u
#define TAG_UNIX_LISTEN 2u
#define TAG_SIGNAL 3u
#define TAG_KICK 4u
#define TAG_HOST_LISTEN 5u
#define TAG_GATEWAY 6u
#define TAG_MASK 7u
#define TAG(kind, index) (((uint64_t)(index) << 3) | (kind))

struct app {
    int epfd;
    int sigfd;
    int unix_listen; /* -1 once QEMU connected */
    int vhu_fd; /* the QEMU connection */
    const char *path;
    dev_t path_dev; /* identity of the socket file we created, checked before unlinking */
    ino_t path_ino;
    int gw_listen; /* the gateway listener: accepted offers' streams arrive here */
    int gw_listen_seq; /* ... and their seqpacket connections here; -1: none */
    int gw_chan; /* the daemon's offers; -1 once it closed the channel */
    struct vhu_dev vhu;
    struct vconn_dev *dev;
    int quit;
    int status;
};

static const char *const usage_text =
    "usage: hvsim-vhost --socket PATH [--cid N] [--ready-fd N]\n"
    "                   [--buf-size BYTES] [--max-conns N] [-v]...\n"
    "Serves the virtio-vsock device of one QEMU VM (-device vhost-user-vsock-pci)\n"
    "from the emulated Hyper-V host, as that VM's partition.\n"
    "  --socket PATH      the unix socket QEMU's -chardev socket,path=PATH connects to\n"
    "                     (also --socket-path; --fd N takes an already listening socket)\n"
    "  --cid N            the guest's CID (config space); default and only value: the one\n"
    "                     hvsimd gave the VM (hvsimctl vm list)\n"
    "  --ready-fd N       write READY=1 to fd N and close it once QEMU may connect\n"
    "  --buf-size BYTES   receive buffer advertised to the guest per connection (262144);\n"
    "                     also the largest seqpacket message the guest may send\n"
    "  --max-conns N      connections at once (1024)\n"
    "  -v, --verbose      more log (twice: every vhost-user message)\n"
    "  --print-capabilities  print the vhost-user capability JSON and exit\n"
    "  --version          print the version and exit\n"
    "  -h, --help         print this text and exit\n"
    "SIGUSR1 prints the counters (packets, descriptor layouts) to the log; so does the exit.\n"
    "Environment: HVSIM_DIR (the daemon's folder), HVSIM_PARTITION (this VM's name).\n";

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || *end != '\0' || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- host side: libhvsim sockets of the Linux personality ---------------------------- */

/* The device's end of a connection: virtio's rules whatever transport the
 * VM was declared with (hvsim__socket_backend). -1 with errno, as socket(). */
static int device_socket(int type)
{
    int fd = hvsim__socket_backend(type | SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0) {
        errno = -fd;
        return -1;
    }
    return fd;
}

static int h_connect(void *ctx, uint32_t port, uint32_t guest_port, unsigned type)
{
    struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_HOST };
    struct sockaddr_vm self = { .svm_family = AF_VSOCK, .svm_port = guest_port, .svm_cid = VMADDR_CID_ANY };
    int fd, err;

    (void)ctx;
    fd = device_socket(type == VPKT_TYPE_SEQPACKET ? SOCK_SEQPACKET : SOCK_STREAM);
    if (fd < 0)
        return -errno;
    /* The host must see the guest's own port (getpeername, reference 4.2).
     * The bind lasts as long as this connection. Two cases are left to the
     * daemon's choice of port: one it already holds for this VM (the
     * gateway's), and a port below 1024 when this process may not bind one. */
    if (hvsim_bind(fd, (struct sockaddr *)&self, sizeof(self)) < 0 && errno != EADDRINUSE && errno != EACCES) {
        err = errno;
        hvsim_close(fd);
        return -err;
    }
    /* Non-blocking, so a guest connect the daemon lets time out does not
     * stall the loop: success and failure both come back as EPOLLOUT. */
    if (hvsim_connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS)
        return fd;
    err = errno;
    hvsim_close(fd);
    return -err;
}

static int h_connect_result(void *ctx, int fd)
{
    struct sockaddr_vm sa;
    socklen_t len = sizeof(int);
    int e = 0;

    (void)ctx;
    if (hvsim_getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
        return -errno;
    if (e)
        return -e;
    len = sizeof(sa);
    return hvsim_getpeername(fd, (struct sockaddr *)&sa, &len) == 0 ? 0 : -EINPROGRESS;
}

static ssize_t h_send(void *ctx, int fd, const void *buf, size_t len)
{
    ssize_t r;

    (void)ctx;
    /* MSG_NOSIGNAL: the Linux personality raises SIGPIPE, as vsock does. */
    r = hvsim_send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    return r < 0 ? -errno : r;
}

static ssize_t h_recv(void *ctx, int fd, void *buf, size_t len)
{
    ssize_t r;

    (void)ctx;
    r = hvsim_recv(fd, buf, len, MSG_DONTWAIT);
    return r < 0 ? -errno : r;
}

/* The next message's length: MSG_TRUNC makes a peek report all of it. The
 * fd is an AF_UNIX seqpacket socket, asked with libc's recv: the back-end
 * needs the carrier's answer, not the emulated MSG_PEEK of the VM's kernel
 * (hvsim_recv would give 6.1's). A recv of 0 is an empty message or the
 * end of the stream; only the peer's shutdown (POLLRDHUP) makes it the end. */
static ssize_t h_msg_len(void *ctx, int fd)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };
        uint8_t b;
        ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);

        (void)ctx;
        if (r != 0)
            return r < 0 ? -errno : r;
        if (poll(&p, 1, 0) < 0)
            return -errno;
        if (p.revents & (POLLRDHUP | POLLHUP))
            return 0;
        /* An empty message: vsock has none to give the guest; drop it. */
        if (recv(fd, &b, 1, MSG_DONTWAIT) < 0)
            return -errno;
    }
}

/* One whole message; MSG_EOR is the library's to carry (a marker a plain
 * read of the host program never sees). */
static ssize_t h_send_msg(void *ctx, int fd, const void *buf, size_t len, int eor)
{
    struct iovec iov = { (void *)buf, len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t r;

    (void)ctx;
    r = hvsim_sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL | (eor ? MSG_EOR : 0));
    return r < 0 ? -errno : r;
}

static ssize_t h_recv_msg(void *ctx, int fd, void *buf, size_t len, int *eor)
{
    struct iovec iov = { buf, len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t r;

    (void)ctx;
    r = hvsim_recvmsg(fd, &m, MSG_DONTWAIT);
    *eor = r >= 0 && (m.msg_flags & MSG_EOR);
    return r < 0 ? -errno : r;
}

static int h_shutdown_wr(void *ctx, int fd)
{
    (void)ctx;
    return hvsim_shutdown(fd, SHUT_WR) < 0 ? -errno : 0;
}

/* An AF_UNIX stream reports POLLHUP once both directions are shut: the
 * peer closed (or shut down both ways; our own SHUT_WR is excluded by the
 * caller). After a mere shutdown(SHUT_WR) of the peer it is not set. */
static int h_peer_closed(void *ctx, int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };

    (void)ctx;
    if (poll(&p, 1, 0) < 0)
        return -errno;
    return (p.revents & (POLLHUP | POLLERR)) != 0;
}

/* The guest's SHUT_RD, passed on as a virtio socket of the simulator passes
 * its own (hvsim_shutdown: an AF_UNIX shutdown, whose peer's sends then fail
 * with EPIPE). */
static int h_shutdown_rd(void *ctx, int fd)
{
    (void)ctx;
    return hvsim_shutdown(fd, SHUT_RD) < 0 ? -errno : 0;
}

/* An empty send to the carrier fails with EPIPE once its peer shut down its
 * reading side, and sends nothing otherwise (unix_stream_sendmsg checks
 * SEND_SHUTDOWN before its loop). Our own SHUT_WR and the peer's close fail
 * it too: the caller excludes both. */
static int h_peer_shut_rd(void *ctx, int fd)
{
    (void)ctx;
    if (send(fd, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL) == 0)
        return 0;
    return errno == EPIPE ? 1 : errno == EAGAIN ? 0 : -errno;
}

static int h_watch(void *ctx, int fd, void *cookie)
{
    struct app *a = ctx;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                              .data.u64 = (uint64_t)(uintptr_t)cookie };

    if (((uintptr_t)cookie & TAG_MASK) != TAG_CONN)
        return -EINVAL;
    return epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void h_close(void *ctx, int fd)
{
    struct app *a = ctx;

    (void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, fd, NULL);
    hvsim_close(fd);
}

static uint64_t h_now_ms(void *ctx)
{
    (void)ctx;
    return mono_ms();
}

static void h_answer(void *ctx, uint64_t token, unsigned answer)
{
    struct app *a = ctx;
    int rc;

    if (a->gw_chan < 0)
        return;
    rc = hvsim__gateway_answer(a->gw_chan, token, answer);
    if (rc < 0)
        vlog(VLOG_ERR, "answering the daemon's offer %llu: %s", (unsigned long long)token, strerror(-rc));
}

static const struct vconn_host_ops host_ops = {
    .connect = h_connect,
    .connect_result = h_connect_result,
    .send = h_send,
    .recv = h_recv,
    .shutdown_wr = h_shutdown_wr,
    .msg_len = h_msg_len,
    .send_msg = h_send_msg,
    .recv_msg = h_recv_msg,
    .peer_closed = h_peer_closed,
    .shutdown_rd = h_shutdown_rd,
    .peer_shut_rd = h_peer_shut_rd,
    .watch = h_watch,
    .close = h_close,
    .now_ms = h_now_ms,
    .answer = h_answer,
};

/* ---- vhost-user side ------------------------------------------------------------------ */

static void kick_changed(void *opaque, unsigned idx, int old_fd, int new_fd)
{
    struct app *a = opaque;
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG(TAG_KICK, idx) };

    if (old_fd >= 0)
        (void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, old_fd, NULL);
    if (new_fd >= 0 && epoll_ctl(a->epfd, EPOLL_CTL_ADD, new_fd, &ev) < 0)
        vlog(VLOG_ERR, "cannot poll the kick fd of queue %u: %s", idx, strerror(errno));
}

static void device_reset(void *opaque)
{
    struct app *a = opaque;

    vconn_reset(a->dev);
}

static void device_features(void *opaque, uint64_t features)
{
    struct app *a = opaque;

    vconn_set_features(a->dev, features);
    vlog(VLOG_INFO, "the guest %s seqpacket sockets",
         (features >> VHU_VSOCK_F_SEQPACKET) & 1 ? "negotiated" : "did not negotiate");
}

static const struct vhu_iface vhu_iface = {
    .kick_changed = kick_changed,
    .reset = device_reset,
    .features = device_features,
};

/* ---- set-up ------------------------------------------------------------------------- */

static int epoll_add(struct app *a, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = { .events = events, .data.u64 = data };

    return epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int open_unix_socket(struct app *a)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int fd;

    if (strlen(a->path) >= sizeof(sa.sun_path)) {
        vlog(VLOG_ERR, "--socket %s: path too long (at most %zu bytes)", a->path, sizeof(sa.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, a->path, strlen(a->path));
    /* A stale socket from an earlier run races with QEMU's connect
     * (docs/reference/qemu-guests.md): replace it, but never delete anything else. */
    if (lstat(a->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            vlog(VLOG_ERR, "--socket %s exists and is not a socket: not replacing it", a->path);
            return -EEXIST;
        }
        if (unlink(a->path) < 0) {
            vlog(VLOG_ERR, "removing the stale socket %s: %s", a->path, strerror(errno));
            return -errno;
        }
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0 || stat(a->path, &st) < 0) {
        int err = errno;

        vlog(VLOG_ERR, "listening on %s: %s", a->path, strerror(err));
        close(fd);
        return -err;
    }
    a->path_dev = st.st_dev;
    a->path_ino = st.st_ino;
    a->unix_listen = fd;
    return 0;
}

static void remove_unix_socket(struct app *a)
{
    struct stat st;

    if (a->path && lstat(a->path, &st) == 0 && st.st_dev == a->path_dev && st.st_ino == a->path_ino)
        unlink(a->path);
}

/* The VM's seqpacket gateway: the listener at which accepted seqpacket
 * offers arrive (the offers come on the stream gateway's channel). Without
 * it host programs' seqpacket connects get ESOCKTNOSUPPORT and everything
 * else works. */
static void open_gateway_seq(struct app *a)
{
    struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = VMADDR_PORT_ANY, .svm_cid = VMADDR_CID_ANY };
    int fd, rc;

    fd = device_socket(SOCK_SEQPACKET);
    if (fd < 0 || hvsim_bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        rc = -errno;
    else
        rc = hvsim__listen_gateway_seq(fd, 128);
    if (rc == 0 && epoll_add(a, fd, EPOLLIN, TAG(TAG_HOST_LISTEN, 1)) < 0)
        rc = -errno;
    if (rc < 0) {
        vlog(VLOG_ERR, "listening as the VM's seqpacket gateway: %s (%s): host seqpacket connections to the guest "
                       "are refused", hvsim_err_name(-rc), hvsim_strerror(-rc));
        if (fd >= 0)
            hvsim_close(fd);
        return;
    }
    a->gw_listen_seq = fd;
}

/* The VM's gateway: an AF_VSOCK listener of this partition on a port the
 * daemon picks, plus the channel on which the daemon offers connections. */
static int open_gateway(struct app *a)
{
    struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = VMADDR_PORT_ANY, .svm_cid = VMADDR_CID_ANY };
    int fd = device_socket(SOCK_STREAM), chan = -1;

    if (fd < 0 || hvsim_bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        chan = -errno;
    } else {
        chan = hvsim__listen_gateway(fd, 128);
    }
    if (chan < 0) {
        vlog(VLOG_ERR, "listening as the VM's gateway: %s (%s)", hvsim_err_name(-chan), hvsim_strerror(-chan));
        if (fd >= 0)
            hvsim_close(fd);
        return chan;
    }
    a->gw_listen = fd;
    a->gw_chan = chan;
    if (fcntl(chan, F_SETFL, O_NONBLOCK) < 0 || epoll_add(a, chan, EPOLLIN, TAG(TAG_GATEWAY, 0)) < 0 ||
        epoll_add(a, fd, EPOLLIN, TAG(TAG_HOST_LISTEN, 0)) < 0)
        return -errno;
    open_gateway_seq(a);
    return 0;
}

static int signal_ready(int fd)
{
    static const char msg[] = "READY=1\n";
    int rc = 0;

    if (fd < 0)
        return 0;
    if (write(fd, msg, sizeof(msg) - 1) != (ssize_t)(sizeof(msg) - 1))
        rc = -errno;
    close(fd);
    return rc;
}

/* ---- events ------------------------------------------------------------------------- */

static void accept_qemu(struct app *a)
{
    int fd = accept4(a->unix_listen, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR)
            vlog(VLOG_ERR, "accepting QEMU's connection: %s", strerror(errno));
        return;
    }
    /* One front-end per process: stop listening (the file stays until exit). */
    (void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, a->unix_listen, NULL);
    close(a->unix_listen);
    a->unix_listen = -1;
    a->vhu_fd = fd;
    a->vhu.sock = fd;
    if (epoll_add(a, fd, EPOLLIN, TAG(TAG_VHU, 0)) < 0) {
        vlog(VLOG_ERR, "cannot poll QEMU's connection: %s", strerror(errno));
        a->quit = 1;
        a->status = EXIT_FAIL;
    }
    vlog(VLOG_INFO, "QEMU connected");
}

static void on_offers(struct app *a)
{
    for (;;) {
        struct hvsim_msg_offer o;
        unsigned answer, type;
        int rc = hvsim__gateway_recv(a->gw_chan, &o);

        if (rc == 0)
            return;
        if (rc < 0) {
            vlog(VLOG_ERR, "the daemon's gateway channel %s: host programs can no longer reach the guest",
                 rc == -ENETDOWN ? "closed" : "broke the protocol");
            (void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, a->gw_chan, NULL);
            close(a->gw_chan);
            a->gw_chan = -1;
            return;
        }
        /* A seqpacket offer needs the guest's feature and our listener. */
        type = (o.flags & HVSIM_SF_SEQPACKET) ? VPKT_TYPE_SEQPACKET : VPKT_TYPE_STREAM;
        rc = type == VPKT_TYPE_SEQPACKET && a->gw_listen_seq < 0
                 ? -EPROTONOSUPPORT
                 : vconn_host_offer(a->dev, o.id, o.peer_port, o.port, o.timeout_ms, type);
        if (rc == 0)
            continue; /* h_answer reports the guest's answer */
        /* A device that is not running answers nothing, as a guest without
         * its driver; a full table or a clash is the guest's RST; a type
         * the guest cannot take is vhost's ESOCKTNOSUPPORT (reference 9.1). */
        answer = rc == -ENETUNREACH       ? VCONN_ANSWER_SILENT
                 : rc == -EPROTONOSUPPORT ? VCONN_ANSWER_NO_SEQPACKET
                                          : VCONN_ANSWER_REFUSE;
        vlog(VLOG_INFO, "host connection from port %u to the guest's port %u not offered to the guest: %s",
             o.peer_port, o.port,
             rc == -ENETUNREACH       ? "the guest's vsock device is not running"
             : rc == -EPROTONOSUPPORT ? "seqpacket is not available (guest feature or back-end listener)"
                                      : strerror(-rc));
        h_answer(a, o.id, answer);
    }
}

static void accept_host(struct app *a, int lfd, unsigned type)
{
    for (;;) {
        struct sockaddr_vm peer, self;
        socklen_t len = sizeof(peer), slen = sizeof(self);
        int fd = hvsim_accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int rc;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                vlog(VLOG_ERR, "accepting on the gateway: %s", hvsim_err_name(errno));
            return;
        }
        rc = hvsim_getsockname(fd, (struct sockaddr *)&self, &slen) < 0 ? -errno : 0;
        if (rc == 0)
            rc = vconn_host_attach(a->dev, fd, peer.svm_port, self.svm_port, type);
        if (rc < 0) {
            /* The guest reset the connection meanwhile: the host program sees EOF. */
            vlog(VLOG_INFO, "host stream from port %u to the guest's port %u closed: %s", peer.svm_port,
                 self.svm_port, rc == -ENOENT ? "no accepted connection waits for it" : strerror(-rc));
            hvsim_close(fd);
        }
    }
}

static void drain_kick(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof(v)) > 0)
        ;
}

static void print_stats(struct app *a);

static void on_signal(struct app *a)
{
    struct signalfd_siginfo si;

    while (read(a->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            vlog(VLOG_INFO, "signal %u: exiting", si.ssi_signo);
            a->quit = 1;
        } else if (si.ssi_signo == SIGUSR1) {
            print_stats(a);
        }
    }
}

static unsigned conn_events(uint32_t ev)
{
    unsigned out = 0;

    if (ev & (EPOLLIN | EPOLLRDHUP))
        out |= VCONN_EV_IN;
    if (ev & EPOLLOUT)
        out |= VCONN_EV_OUT;
    if (ev & (EPOLLERR | EPOLLHUP))
        out |= VCONN_EV_ERR;
    return out;
}

static void dispatch(struct app *a, const struct epoll_event *ev)
{
    uint64_t data = ev->data.u64;
    unsigned idx = (unsigned)(data >> 3);
    int rc;

    switch (data & TAG_MASK) {
    case TAG_CONN:
        vconn_host_event(a->dev, (void *)(uintptr_t)data, conn_events(ev->events));
        break;
    case TAG_VHU:
        rc = vhu_dispatch(&a->vhu);
        if (rc == -ECONNRESET) {
            vlog(VLOG_INFO, "QEMU disconnected");
            a->quit = 1;
        } else if (rc < 0) {
            vlog(VLOG_ERR, "closing the connection to QEMU: %s", strerror(-rc));
            a->quit = 1;
            a->status = EXIT_FAIL;
        }
        break;
    case TAG_UNIX_LISTEN:
        accept_qemu(a);
        break;
    case TAG_SIGNAL:
        on_signal(a);
        break;
    case TAG_KICK:
        if (idx < VHU_NUM_QUEUES && a->vhu.vq[idx].kick_fd >= 0)
            drain_kick(a->vhu.vq[idx].kick_fd);
        break;
    case TAG_HOST_LISTEN:
        if (idx == 0)
            accept_host(a, a->gw_listen, VPKT_TYPE_STREAM);
        else
            accept_host(a, a->gw_listen_seq, VPKT_TYPE_SEQPACKET);
        break;
    case TAG_GATEWAY:
        if (a->gw_chan >= 0)
            on_offers(a);
        break;
    default:
        break;
    }
}

static int run(struct app *a)
{
    struct epoll_event ev[MAX_EVENTS];
    int more = 0;

    while (!a->quit) {
        int timeout = more ? 0 : vconn_next_timeout_ms(a->dev);
        int n = epoll_wait(a->epfd, ev, MAX_EVENTS, timeout), i;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            vlog(VLOG_ERR, "epoll_wait: %s", strerror(errno));
            return EXIT_FAIL;
        }
        for (i = 0; i < n && !a->quit; i++)
            dispatch(a, &ev[i]);
        /* The vhost-user dispatch may have unmapped memory or stopped rings;
         * vconn_run checks readiness itself. */
        more = vconn_run(a->dev);
    }
    return a->status;
}

/* ---- main --------------------------------------------------------------------------- */

static void print_stats(struct app *a)
{
    struct vconn_stats s;

    vconn_get_stats(a->dev, &s);
    vlog(VLOG_REPORT,
         "stats: from guest %llu packets / %llu bytes, to guest %llu packets / %llu bytes, %llu RST sent, "
         "%llu credit updates, %llu bad packets, %llu credit violations; seqpacket messages from guest %llu, "
         "to guest %llu, refused %llu",
         (unsigned long long)s.tx_pkts, (unsigned long long)s.tx_bytes, (unsigned long long)s.rx_pkts,
         (unsigned long long)s.rx_bytes, (unsigned long long)s.rst_sent, (unsigned long long)s.credit_updates_sent,
         (unsigned long long)s.bad_pkts, (unsigned long long)s.credit_violations, (unsigned long long)s.tx_msgs,
         (unsigned long long)s.rx_msgs, (unsigned long long)s.msg_violations);
    /* One line a test can parse: harness/qemu.py parse_layouts(). */
    vlog(VLOG_REPORT,
         "layouts: rx single=%llu split=%llu other=%llu; tx descs 1=%llu 2=%llu 3=%llu 4+=%llu; "
         "tx rw descs 1=%llu 2=%llu 3=%llu 4+=%llu",
         (unsigned long long)s.rx_layout_single, (unsigned long long)s.rx_layout_split,
         (unsigned long long)s.rx_layout_other, (unsigned long long)s.tx_descs[0],
         (unsigned long long)s.tx_descs[1], (unsigned long long)s.tx_descs[2], (unsigned long long)s.tx_descs[3],
         (unsigned long long)s.tx_rw_descs[0], (unsigned long long)s.tx_rw_descs[1],
         (unsigned long long)s.tx_rw_descs[2], (unsigned long long)s.tx_rw_descs[3]);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 's' },
        { "socket-path", required_argument, NULL, 's' },
        { "fd", required_argument, NULL, 'f' },
        { "cid", required_argument, NULL, 'c' },
        { "ready-fd", required_argument, NULL, 'r' },
        { "buf-size", required_argument, NULL, 'b' },
        { "max-conns", required_argument, NULL, 'm' },
        { "verbose", no_argument, NULL, 'v' },
        { "print-capabilities", no_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct app a = { .epfd = -1, .sigfd = -1, .unix_listen = -1, .vhu_fd = -1, .gw_listen = -1, .gw_listen_seq = -1,
                     .gw_chan = -1 };
    struct vconn_config cfg = { .buf_alloc = VCONN_DEFAULT_BUF_ALLOC, .max_conns = VCONN_DEFAULT_MAX_CONNS };
    uint64_t v, cid = 0;
    int ready_fd = -1, listen_fd = -1, c, rc;
    const char *part;
    char name[HVSIM_NAME_MAX];
    sigset_t mask;

    while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            a.path = optarg;
            break;
        case 'f':
            if (parse_u64(optarg, INT_MAX, &v) < 0 || v < 3) {
                fprintf(stderr, "hvsim-vhost: --fd: expected a file descriptor number, got '%s'\n", optarg);
                return EXIT_USAGE;
            }
            listen_fd = (int)v;
            break;
        case 'c':
            /* 5.10.4: 0, 1, 2 and 2^32-1 are reserved; the upper 32 bits too. */
            if (parse_u64(optarg, 0xfffffffeu, &cid) < 0 || cid < 3) {
                fprintf(stderr, "hvsim-vhost: --cid: expected a number from 3 to 4294967294, got '%s'\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'r':
            if (parse_u64(optarg, INT_MAX, &v) < 0) {
                fprintf(stderr, "hvsim-vhost: --ready-fd: expected a file descriptor number, got '%s'\n", optarg);
                return EXIT_USAGE;
            }
            ready_fd = (int)v;
            break;
        case 'b':
            if (parse_u64(optarg, 0x7fffffffu, &v) < 0 || v < 4096) {
                fprintf(stderr, "hvsim-vhost: --buf-size: expected bytes from 4096 to 2147483647, got '%s'\n",
                        optarg);
                return EXIT_USAGE;
            }
            cfg.buf_alloc = (uint32_t)v;
            break;
        case 'm':
            if (parse_u64(optarg, 1u << 20, &v) < 0 || v == 0) {
                fprintf(stderr, "hvsim-vhost: --max-conns: expected a number from 1 to 1048576, got '%s'\n", optarg);
                return EXIT_USAGE;
            }
            cfg.max_conns = (unsigned)v;
            break;
        case 'v':
            vlog_level++;
            break;
        case 'P':
            printf("{\n  \"type\": \"vsock\"\n}\n");
            return 0;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'V':
            return hvsim__cli_version("hvsim-vhost");
        default:
            fputs(usage_text, stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc || (a.path == NULL) == (listen_fd < 0)) {
        fprintf(stderr, "hvsim-vhost: %s\n%s",
                optind != argc                       ? "unexpected arguments"
                : a.path == NULL && listen_fd < 0    ? "missing --socket PATH"
                                                     : "--socket and --fd exclude each other",
                usage_text);
        return EXIT_USAGE;
    }

    /* Attached as the VM: the daemon must know us as a guest partition,
     * or guest connects would carry the host's personality. */
    part = getenv("HVSIM_PARTITION");
    if (part == NULL || *part == '\0' || strcmp(part, "host") == 0) {
        fprintf(stderr, "hvsim-vhost: set HVSIM_PARTITION to the VM's name (hvsimctl vm list): the back-end is "
                        "a guest-side client of hvsimd\n");
        return EXIT_FAIL;
    }
    rc = hvsim_self(NULL, name, sizeof(name));
    if (rc < 0) {
        fprintf(stderr, "hvsim-vhost: cannot attach to hvsimd as '%s' (HVSIM_DIR=%s): %s\n", part,
                getenv("HVSIM_DIR") ? getenv("HVSIM_DIR") : "(default)", hvsim_strerror(rc));
        return EXIT_FAIL;
    }
    /* The guest must read the CID the daemon routes by (host programs
     * connect by it, and getpeername reports it). */
    {
        struct hvsim__attach me;
        uint32_t dcid = hvsim__attach_get(&me) == 0 ? me.cid : 0;

        /* Not hvsim_get_local_cid: it answers as hv_sock does (VMADDR_CID_ANY). */
        if (dcid < 3 || dcid == VMADDR_CID_ANY) {
            fprintf(stderr, "hvsim-vhost: hvsimd gave VM '%s' no usable CID\n", name);
            return EXIT_FAIL;
        }
        if (cid != 0 && cid != dcid) {
            fprintf(stderr, "hvsim-vhost: --cid %llu: hvsimd gave VM '%s' CID %u; leave --cid out or give %u\n",
                    (unsigned long long)cid, name, dcid, dcid);
            return EXIT_USAGE;
        }
        cid = dcid;
    }
    cfg.guest_cid = cid;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGUSR1); /* print the counters (stats, layouts) to the log */
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return EXIT_FAIL;
    a.epfd = epoll_create1(EPOLL_CLOEXEC);
    a.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (a.epfd < 0 || a.sigfd < 0 || epoll_add(&a, a.sigfd, EPOLLIN, TAG(TAG_SIGNAL, 0)) < 0) {
        vlog(VLOG_ERR, "epoll/signalfd: %s", strerror(errno));
        return EXIT_FAIL;
    }
    rc = vconn_dev_new(&cfg, &host_ops, &a, &a.dev);
    if (rc < 0) {
        vlog(VLOG_ERR, "device: %s", strerror(-rc));
        return EXIT_FAIL;
    }
    /* The rings live in the vhost-user state, set up once QEMU connects;
     * until then the device has none and does nothing. */
    vhu_init(&a.vhu, -1, cid, &vhu_iface, &a);
    vconn_attach(a.dev, &a.vhu.vq[VHU_QUEUE_RX], &a.vhu.vq[VHU_QUEUE_TX], &a.vhu.mem);
    if (open_gateway(&a) < 0)
        return EXIT_FAIL;
    if (listen_fd >= 0) {
        if (fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK) < 0) {
            vlog(VLOG_ERR, "--fd %d: %s", listen_fd, strerror(errno));
            return EXIT_FAIL;
        }
        a.unix_listen = listen_fd;
    } else if (open_unix_socket(&a) < 0) {
        return EXIT_FAIL;
    }
    if (epoll_add(&a, a.unix_listen, EPOLLIN, TAG(TAG_UNIX_LISTEN, 0)) < 0)
        return EXIT_FAIL;
    vlog(VLOG_INFO, "serving VM '%s' (guest CID %llu) on %s", name, (unsigned long long)cid,
         a.path ? a.path : "the inherited socket");
    if (signal_ready(ready_fd) < 0)
        vlog(VLOG_ERR, "--ready-fd %d: %s", ready_fd, strerror(errno));

    rc = run(&a);

    print_stats(&a);
    vconn_dev_free(a.dev);
    vhu_fini(&a.vhu);
    if (a.vhu_fd >= 0)
        close(a.vhu_fd);
    if (a.gw_listen >= 0)
        hvsim_close(a.gw_listen);
    if (a.gw_listen_seq >= 0)
        hvsim_close(a.gw_listen_seq);
    if (a.gw_chan >= 0)
        close(a.gw_chan);
    if (a.unix_listen >= 0)
        close(a.unix_listen);
    remove_unix_socket(&a);
    close(a.sigfd);
    close(a.epfd);
    return rc;
}
