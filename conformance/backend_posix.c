/* SPDX-License-Identifier: MIT */
/*
 * backend_posix.c: the readiness registration of backend.h (cf_watch_*) for
 * the two backends whose sockets are Linux file descriptors (libhvsim and the
 * kernel's AF_VSOCK): one epoll set per watch, made once before a connect and
 * never registered again, as an event loop does.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "backend.h"

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
