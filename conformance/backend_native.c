/* SPDX-License-Identifier: MIT */
/*
 * backend_native.c: backend.h over the Linux kernel's own AF_VSOCK, for the
 * guest agent inside a QEMU test guest (the column virtio, served by hvsim's
 * vhost-user backend). It is linked statically so the guest image needs no
 * libraries.
 *
 * Safety: this file creates real kernel vsock sockets, which must never
 * happen on the build machine. cf_backend_init refuses to start unless the
 * kernel command line carries hvsim.guest=1 (set only by the test guest's
 * QEMU command line), and every call that could reach the kernel's vsock
 * checks that the guard passed, so a caller that skipped init cannot open one
 * either. There is no AF_HYPERV in a Linux guest (EAFNOSUPPORT) and nothing to
 * administer from it (ENOTSUP; backend_noadmin.c has the rest of the
 * cf_admin_* calls). Readiness is backend_posix.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <linux/vm_sockets.h>

#include "backend.h"
#include "backend_posix.h"

static int guard_ok;

const char *cf_backend_name(void)
{
    return "linux-vsock";
}

/* 1 when /proc/cmdline has the word hvsim.guest=1. */
static int in_test_guest(void)
{
    char buf[4096];
    const char *p;
    ssize_t n;
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    for (p = buf; (p = strstr(p, "hvsim.guest=1")) != NULL; p++) {
        char after = p[strlen("hvsim.guest=1")];

        if ((p == buf || p[-1] == ' ' || p[-1] == '\t') && (after == '\0' || after == ' ' || after == '\n' || after == '\t'))
            return 1;
    }
    return 0;
}

int cf_backend_init(void)
{
    if (!in_test_guest()) {
        fprintf(stderr, "hvsim-agent (linux-vsock backend): refusing to start: /proc/cmdline has no hvsim.guest=1. "
                        "This build opens real AF_VSOCK sockets and runs only inside an hvsim QEMU test guest.\n");
        return -EPERM;
    }
    guard_ok = 1;
    return 0;
}

void cf__backend_abort_case(void)
{
}

static int guard(void)
{
    if (guard_ok)
        return 0;
    fprintf(stderr, "hvsim-agent (linux-vsock backend): vsock call before the hvsim.guest=1 check passed: refused\n");
    return -EPERM;
}

/* ---- sockets ---------------------------------------------------------------------- */

int cf_socket(enum cf_family fam, int nonblock, cf_sock_t *out)
{
    int rc = guard(), fd;

    if (rc < 0)
        return rc;
    if (fam != CF_AF_VSOCK)
        return -EAFNOSUPPORT;
    fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -errno;
    *out = fd;
    return 0;
}

/* family: CF_AF_VSOCK or AF_VSOCK (40); CF_AF_HYPERV or 34 is EAFNOSUPPORT, as
 * a Linux guest has no AF_HYPERV; any other number goes to socket() as it is. */
int cf_socket_raw(int family, int type, int protocol, cf_sock_t *out)
{
    int rc = guard(), fd;

    if (rc < 0)
        return rc;
    if (family == CF_AF_HYPERV || family == 34)
        return -EAFNOSUPPORT;
    if (family == CF_AF_VSOCK)
        family = AF_VSOCK;
    fd = socket(family, type, protocol);
    if (fd < 0)
        return -errno;
    *out = fd;
    return 0;
}

int cf_close(cf_sock_t s)
{
    return CF_ERR(close((int)s));
}

int cf_bind_hv(cf_sock_t s, const cf_guid_t *vm, const cf_guid_t *svc)
{
    (void)s;
    (void)vm;
    (void)svc;
    return -EAFNOSUPPORT;
}

int cf_connect_hv(cf_sock_t s, const cf_guid_t *vm, const cf_guid_t *svc)
{
    (void)s;
    (void)vm;
    (void)svc;
    return -EAFNOSUPPORT;
}

int cf_name_hv(cf_sock_t s, int peer, cf_guid_t *vm, cf_guid_t *svc)
{
    (void)s;
    (void)peer;
    (void)vm;
    (void)svc;
    return -EAFNOSUPPORT;
}

static struct sockaddr_vm vs_addr(uint32_t cid, uint32_t port)
{
    struct sockaddr_vm a;

    memset(&a, 0, sizeof(a));
    a.svm_family = AF_VSOCK;
    a.svm_cid = cid;
    a.svm_port = port;
    return a;
}

int cf_bind_vsock(cf_sock_t s, uint32_t cid, uint32_t port)
{
    struct sockaddr_vm a = vs_addr(cid, port);

    return CF_ERR(bind((int)s, (struct sockaddr *)&a, sizeof(a)));
}

int cf_connect_vsock(cf_sock_t s, uint32_t cid, uint32_t port)
{
    struct sockaddr_vm a = vs_addr(cid, port);

    return CF_ERR(connect((int)s, (struct sockaddr *)&a, sizeof(a)));
}

int cf_bind_raw(cf_sock_t s, const void *addr, int len)
{
    return CF_ERR(bind((int)s, (const struct sockaddr *)addr, (socklen_t)len));
}

int cf_connect_raw(cf_sock_t s, const void *addr, int len)
{
    return CF_ERR(connect((int)s, (const struct sockaddr *)addr, (socklen_t)len));
}

int cf_listen(cf_sock_t s, int backlog)
{
    return CF_ERR(listen((int)s, backlog));
}

int cf_accept(cf_sock_t l, cf_sock_t *out)
{
    int fd = accept4((int)l, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0)
        return -errno;
    *out = fd;
    return 0;
}

long cf_send(cf_sock_t s, const void *buf, size_t len, int flags)
{
    ssize_t r = send((int)s, buf, len, cf__posix_msg_flags(flags));

    return r < 0 ? -errno : (long)r;
}

long cf_recv(cf_sock_t s, void *buf, size_t len, int flags)
{
    ssize_t r = recv((int)s, buf, len, cf__posix_msg_flags(flags));

    return r < 0 ? -errno : (long)r;
}

int cf_shutdown(cf_sock_t s, int how)
{
    return CF_ERR(shutdown((int)s, cf__posix_shut_how(how)));
}

int cf_name_vsock(cf_sock_t s, int peer, uint32_t *cid, uint32_t *port)
{
    struct sockaddr_vm a;
    socklen_t len = sizeof(a);
    int rc;

    memset(&a, 0, sizeof(a));
    rc = peer ? getpeername((int)s, (struct sockaddr *)&a, &len) : getsockname((int)s, (struct sockaddr *)&a, &len);
    if (rc < 0)
        return -errno;
    if (cid)
        *cid = a.svm_cid;
    if (port)
        *port = a.svm_port;
    return 0;
}

int cf_vsock_queue(cf_sock_t s, int outq, int *bytes)
{
    return CF_ERR(ioctl((int)s, outq ? SIOCOUTQ : SIOCINQ, bytes));
}

int cf_set_rcvlowat(cf_sock_t s, int bytes)
{
    return CF_ERR(setsockopt((int)s, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof(bytes)));
}

int cf_set_linger(cf_sock_t s, int on, int secs)
{
    struct linger l = { .l_onoff = on, .l_linger = secs };

    return CF_ERR(setsockopt((int)s, SOL_SOCKET, SO_LINGER, &l, sizeof(l)));
}

int cf_get_linger(cf_sock_t s, int *on, int *secs)
{
    struct linger l = { 0, 0 };
    socklen_t n = sizeof(l);
    int rc = CF_ERR(getsockopt((int)s, SOL_SOCKET, SO_LINGER, &l, &n));

    *on = l.l_onoff;
    *secs = l.l_linger;
    return rc;
}

int cf_set_zerocopy(cf_sock_t s, int on)
{
    return CF_ERR(setsockopt((int)s, SOL_SOCKET, SO_ZEROCOPY, &on, sizeof(on)));
}

int cf_get_zerocopy(cf_sock_t s, int *on)
{
    socklen_t n = sizeof(*on);

    *on = -1;
    return CF_ERR(getsockopt((int)s, SOL_SOCKET, SO_ZEROCOPY, on, &n));
}

long cf_send_zerocopy(cf_sock_t s, const void *buf, size_t len)
{
    ssize_t r = send((int)s, buf, len, MSG_ZEROCOPY | MSG_NOSIGNAL);

    return r < 0 ? -errno : (long)r;
}

int cf_zerocopy_completion(cf_sock_t s, uint32_t *lo, uint32_t *hi, int *copied)
{
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in))];
    } c;
    struct msghdr m = { .msg_control = c.b, .msg_controllen = sizeof(c.b) };
    struct sock_extended_err ee;
    struct cmsghdr *h;

    if (recvmsg((int)s, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
        return -errno;
    h = CMSG_FIRSTHDR(&m);
    if (h == NULL || h->cmsg_level != CF_SOL_VSOCK || h->cmsg_type != CF_VSOCK_RECVERR ||
        h->cmsg_len < CMSG_LEN(sizeof(ee)))
        return -EBADMSG;
    memcpy(&ee, CMSG_DATA(h), sizeof(ee));
    if (ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY || ee.ee_errno != 0)
        return -EBADMSG;
    *lo = ee.ee_info;
    *hi = ee.ee_data;
    *copied = (ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED) != 0;
    return 0;
}

unsigned cf_kernel_version(void)
{
    struct utsname u;
    unsigned major = 0, minor = 0;

    if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2)
        return 0;
    return major * 100 + minor;
}

int cf_local_cid(uint32_t *cid)
{
    int rc = guard(), fd;
    unsigned int v = 0;

    if (rc < 0)
        return rc;
    fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    rc = ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &v) < 0 ? -errno : 0;
    close(fd);
    if (rc == 0)
        *cid = v;
    return rc;
}

/* ---- options --------------------------------------------------------- */

int cf_set_connect_timeout(cf_sock_t s, uint32_t ms)
{
    struct timeval tv = cf__posix_timeval(ms);

    return CF_ERR(setsockopt((int)s, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv)));
}

int cf_get_connect_timeout(cf_sock_t s, uint32_t *ms)
{
    struct timeval tv;
    socklen_t l = sizeof(tv);

    if (getsockopt((int)s, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, &l) < 0)
        return -errno;
    *ms = cf__posix_ms(&tv);
    return 0;
}

int cf_set_connected_suspend(cf_sock_t s, int on)
{
    (void)s;
    (void)on;
    return -ENOPROTOOPT; /* an AF_HYPERV option: vsock has no such level */
}

int cf_so_error(cf_sock_t s)
{
    int v = 0;
    socklen_t l = sizeof(v);

    if (getsockopt((int)s, SOL_SOCKET, SO_ERROR, &v, &l) < 0)
        return -errno;
    return -v;
}

/* ---- administration: none from inside a guest (the rest: backend_noadmin.c) ------------ */

int cf_admin_service_add(const cf_guid_t *svc, const char *element_name)
{
    (void)svc;
    (void)element_name;
    return -ENOTSUP;
}

int cf_admin_service_rm(const cf_guid_t *svc)
{
    (void)svc;
    return -ENOTSUP;
}

/* ---- The send/receive family (cases/cases_msg.c): backend_posix.c's, with the kernel's calls ---- */

/* glibc declares sendto and recvfrom with transparent-union address types. */
static ssize_t k_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
{
    return sendto(fd, buf, len, flags, to, tolen);
}

static ssize_t k_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen)
{
    return recvfrom(fd, buf, len, flags, from, fromlen);
}

static const struct cf__posix_msg_calls calls = {
    .sendto = k_sendto, .recvfrom = k_recvfrom, .sendmsg = sendmsg, .recvmsg = recvmsg
};

long cf_sendto_hv(cf_sock_t s, const void *buf, size_t len, const cf_guid_t *vm, const cf_guid_t *svc)
{
    (void)s;
    (void)buf;
    (void)len;
    (void)vm;
    (void)svc;
    return -EAFNOSUPPORT;
}

long cf_sendto_vsock(cf_sock_t s, const void *buf, size_t len, uint32_t cid, uint32_t port)
{
    struct sockaddr_vm a = vs_addr(cid, port);

    return cf__posix_sendto(&calls, s, buf, len, (struct sockaddr *)&a, sizeof(a));
}

long cf_recvfrom(cf_sock_t s, void *buf, size_t len, int flags, int *addrlen)
{
    return cf__posix_recvfrom(&calls, s, buf, len, flags, addrlen);
}

long cf_sendmsg(cf_sock_t s, const cf_buf_t *bufs, int n, int flags)
{
    return cf__posix_sendmsg(&calls, s, bufs, n, flags);
}

long cf_recvmsg(cf_sock_t s, cf_buf_t *bufs, int n, int flags, int *namelen, int *ctllen)
{
    return cf__posix_recvmsg(&calls, s, bufs, n, flags, namelen, ctllen);
}

long cf_recv_flags(cf_sock_t s, void *buf, size_t len, int flags, int *out_flags)
{
    return cf__posix_recv_flags(&calls, s, buf, len, flags, out_flags);
}

int cf_get_sock_buf(cf_sock_t s, int rcv, int *bytes)
{
    socklen_t l = sizeof(*bytes);

    return getsockopt((int)s, SOL_SOCKET, rcv ? SO_RCVBUF : SO_SNDBUF, bytes, &l) < 0 ? -errno : 0;
}
