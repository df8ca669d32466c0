/* SPDX-License-Identifier: MIT */
/*
 * backend_posix.c: what the two backends whose sockets are Linux file
 * descriptors (libhvsim and the kernel's AF_VSOCK) share: readiness (cf_poll,
 * and cf_watch_*: one epoll set per watch, made once before a connect and
 * never registered again, as an event loop does) and the mapping of
 * backend.h's flags and options to the POSIX ones (backend_posix.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "backend.h"
#include "backend_posix.h"

int cf__posix_msg_flags(int flags)
{
    return ((flags & CF_MSG_PEEK) ? MSG_PEEK : 0) | ((flags & CF_MSG_WAITALL) ? MSG_WAITALL : 0) |
           ((flags & CF_MSG_DONTWAIT) ? MSG_DONTWAIT : 0) | ((flags & CF_MSG_NOSIGNAL) ? MSG_NOSIGNAL : 0) |
           ((flags & CF_MSG_TRUNC) ? MSG_TRUNC : 0) | ((flags & CF_MSG_EOR) ? MSG_EOR : 0);
}

int cf__posix_shut_how(int how)
{
    return how == CF_SHUT_RD ? SHUT_RD : how == CF_SHUT_WR ? SHUT_WR : how == CF_SHUT_RDWR ? SHUT_RDWR : how;
}

struct timeval cf__posix_timeval(uint32_t ms)
{
    struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

    return tv;
}

uint32_t cf__posix_ms(const struct timeval *tv)
{
    return (uint32_t)((uint64_t)tv->tv_sec * 1000u + (uint64_t)tv->tv_usec / 1000u);
}

static int to_poll(int ev)
{
    return ((ev & CF_POLLIN) ? POLLIN : 0) | ((ev & CF_POLLOUT) ? POLLOUT : 0);
}

static int from_poll(int rev)
{
    return ((rev & POLLIN) ? CF_POLLIN : 0) | ((rev & POLLOUT) ? CF_POLLOUT : 0) |
           ((rev & POLLERR) ? CF_POLLERR : 0) | ((rev & POLLHUP) ? CF_POLLHUP : 0);
}

/* libhvsim's sockets are real fds too: poll() sees them as the kernel's. */
int cf_poll(cf_sock_t s, int events, int timeout_ms)
{
    struct pollfd p = { .fd = (int)s, .events = (short)to_poll(events) };
    uint64_t end = cf_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);

    for (;;) {
        uint64_t now = cf_now_ms();
        int left = timeout_ms < 0 ? -1 : now >= end ? 0 : (int)(end - now);
        int rc = poll(&p, 1, left);

        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -errno;
        if (rc == 0)
            return 0;
        if (p.revents & POLLNVAL)
            return -EBADF;
        return from_poll(p.revents);
    }
}

int cf_watch_create(cf_sock_t s, int events, intptr_t *watch)
{
    struct epoll_event ev = { 0 };
    int ep = epoll_create1(EPOLL_CLOEXEC);

    if (ep < 0)
        return -errno;
    ev.events = ((events & CF_POLLIN) ? EPOLLIN : 0) | ((events & CF_POLLOUT) ? EPOLLOUT : 0);
    ev.data.fd = (int)s;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, (int)s, &ev) < 0) {
        int e = errno;

        close(ep);
        return -e;
    }
    *watch = ep;
    return 0;
}

int cf_watch_wait(intptr_t watch, int timeout_ms)
{
    struct epoll_event ev;
    int rc;

    do
        rc = epoll_wait((int)watch, &ev, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    if (rc == 0)
        return 0;
    return ((ev.events & EPOLLIN) ? CF_POLLIN : 0) | ((ev.events & EPOLLOUT) ? CF_POLLOUT : 0) |
           ((ev.events & EPOLLERR) ? CF_POLLERR : 0) | ((ev.events & EPOLLHUP) ? CF_POLLHUP : 0);
}

void cf_watch_close(intptr_t watch)
{
    if (watch >= 0)
        close((int)watch);
}

/* ---- The send/receive family (cases/cases_msg.c), for both fd backends ------------- */

#define CF_MSG_ROOM 128 /* room for a name or ancillary data the call should not report */
#define CF_MSG_IOV 16

long cf__posix_sendto(const struct cf__posix_msg_calls *c, cf_sock_t s, const void *buf, size_t len,
                      const struct sockaddr *to, socklen_t tolen)
{
    ssize_t r = c->sendto((int)s, buf, len, 0, to, tolen);

    return r < 0 ? -errno : (long)r;
}

long cf__posix_recvfrom(const struct cf__posix_msg_calls *c, cf_sock_t s, void *buf, size_t len, int flags,
                        int *addrlen)
{
    char from[CF_MSG_ROOM];
    socklen_t l = *addrlen < 0 || *addrlen > CF_MSG_ROOM ? CF_MSG_ROOM : (socklen_t)*addrlen;
    ssize_t r = c->recvfrom((int)s, buf, len, cf__posix_msg_flags(flags), (struct sockaddr *)from, &l);

    if (r < 0)
        return -errno;
    *addrlen = (int)l;
    return (long)r;
}

/* bufs as an iovec array; 0 or -EINVAL for a count the cases never pass. */
static int to_iov(const cf_buf_t *bufs, int n, struct iovec *iov)
{
    int i;

    if (n < 0 || n > CF_MSG_IOV)
        return -EINVAL;
    for (i = 0; i < n; i++)
        iov[i] = (struct iovec){ bufs[i].base, bufs[i].len };
    return 0;
}

long cf__posix_sendmsg(const struct cf__posix_msg_calls *c, cf_sock_t s, const cf_buf_t *bufs, int n, int flags)
{
    struct iovec iov[CF_MSG_IOV];
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)(n > 0 ? n : 0) };
    ssize_t r;

    if (to_iov(bufs, n, iov) < 0)
        return -EINVAL;
    r = c->sendmsg((int)s, &m, cf__posix_msg_flags(flags));
    return r < 0 ? -errno : (long)r;
}

long cf__posix_recvmsg(const struct cf__posix_msg_calls *c, cf_sock_t s, cf_buf_t *bufs, int n, int flags,
                       int *namelen, int *ctllen)
{
    char name[CF_MSG_ROOM], ctl[CF_MSG_ROOM];
    struct iovec iov[CF_MSG_IOV];
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)(n > 0 ? n : 0), .msg_name = name,
                        .msg_namelen = sizeof(name), .msg_control = ctl, .msg_controllen = sizeof(ctl) };
    ssize_t r;

    if (to_iov(bufs, n, iov) < 0)
        return -EINVAL;
    r = c->recvmsg((int)s, &m, cf__posix_msg_flags(flags));
    if (r < 0)
        return -errno;
    *namelen = (int)m.msg_namelen;
    *ctllen = (int)m.msg_controllen;
    return (long)r;
}

long cf__posix_recv_flags(const struct cf__posix_msg_calls *c, cf_sock_t s, void *buf, size_t len, int flags,
                          int *out_flags)
{
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t r = c->recvmsg((int)s, &m, cf__posix_msg_flags(flags));

    if (r < 0)
        return -errno;
    *out_flags = ((m.msg_flags & MSG_TRUNC) ? CF_MSG_TRUNC : 0) | ((m.msg_flags & MSG_EOR) ? CF_MSG_EOR : 0);
    return (long)r;
}
