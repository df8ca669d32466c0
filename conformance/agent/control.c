/* SPDX-License-Identifier: MIT */
/*
 * control.c: the agents' control channel (control.h) and the cases' view of it,
 * cf_ctl_writeln/expectln/write_u64/read_u64 of catalogue.h.
 *
 * It is plain TCP or AF_UNIX, with Winsock on Windows, where the host and the
 * VM agents talk over the network between a Hyper-V host and its guest. Reads
 * are buffered by the one process that reads the socket (the agent's parent;
 * a POSIX case child reads the lines its parent forwards down a pipe), so no
 * byte is ever read twice or lost across a fork.
 */
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../catalogue.h"
#include "control.h"

#ifdef _WIN32
typedef SOCKET sock_t;
#define BAD_SOCK INVALID_SOCKET
static int sock_err(void)
{
    return cf__errno_from_wsa(WSAGetLastError());
}
static void sock_close(sock_t s)
{
    closesocket(s);
}
static void sleep_ms(unsigned ms)
{
    Sleep(ms);
}
#else
typedef int sock_t;
#define BAD_SOCK (-1)
static int sock_err(void)
{
    return errno;
}
static void sock_close(sock_t s)
{
    close(s);
}
static void sleep_ms(unsigned ms)
{
    poll(NULL, 0, (int)ms);
}
#endif

#define S(c) ((sock_t)(c))

static void set_msg(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_msg(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

static void set_err(struct cf_control *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct cf_control *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

void cf_ctl_init(struct cf_control *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = CF_NO_SOCK;
    c->lfd = CF_NO_SOCK;
    c->in_fd = -1;
}

/* Wait until fd is readable (or writable) or deadline_ms: 1 ready, 0 timed out, -errno. */
static int wait_fd(sock_t fd, int for_write, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = cf_now_ms();
        int left = now >= deadline_ms ? 0 : (int)(deadline_ms - now > 60000 ? 60000 : deadline_ms - now);
        int rc;
#ifdef _WIN32
        fd_set set;
        struct timeval tv = { left / 1000, (left % 1000) * 1000 };

        FD_ZERO(&set);
        FD_SET(fd, &set);
        rc = select(0, for_write ? NULL : &set, for_write ? &set : NULL, NULL, &tv);
        if (rc == SOCKET_ERROR)
            return -sock_err();
#else
        struct pollfd p = { .fd = fd, .events = for_write ? POLLOUT : POLLIN };

        rc = poll(&p, 1, left);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
#endif
        if (rc > 0)
            return 1;
        if (cf_now_ms() >= deadline_ms)
            return 0;
    }
}

static void no_delay(sock_t s)
{
    int one = 1;

    /* Cases trade short lines back and forth: Nagle would hold the second of
     * two quick lines for a delayed ACK. */
    (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof(one));
}

/* ---- addresses ---------------------------------------------------------------------- */

struct addr {
    int is_unix;
    char host[200];
    char port[16];
    const char *path;
};

static int parse_addr(struct cf_control *c, const char *text, int listen, struct addr *a)
{
    const char *tcp = listen ? "tcp-listen:" : "tcp:", *unx = listen ? "unix-listen:" : "unix:";
    const char *rest, *colon;

    memset(a, 0, sizeof(*a));
    if (strncmp(text, tcp, strlen(tcp)) == 0) {
        rest = text + strlen(tcp);
        colon = strrchr(rest, ':');
        if (colon == NULL && listen) {
            snprintf(a->host, sizeof(a->host), "0.0.0.0");
            colon = rest - 1;
        } else if (colon == NULL || colon == rest || (size_t)(colon - rest) >= sizeof(a->host)) {
            set_err(c, "control address '%s': expected %sHOST:PORT", text, tcp);
            return -EINVAL;
        } else {
            memcpy(a->host, rest, (size_t)(colon - rest));
        }
        if (colon[1] == '\0' || strlen(colon + 1) >= sizeof(a->port) || strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
            set_err(c, "control address '%s': expected a port number after the last ':'", text);
            return -EINVAL;
        }
        snprintf(a->port, sizeof(a->port), "%s", colon + 1);
        return 0;
    }
    if (strncmp(text, unx, strlen(unx)) == 0) {
#ifdef _WIN32
        set_err(c, "control address '%s': unix sockets are for POSIX agents; use tcp%s", text,
                listen ? "-listen:PORT" : ":HOST:PORT");
        return -EAFNOSUPPORT;
#else
        a->is_unix = 1;
        a->path = text + strlen(unx);
        if (a->path[0] == '\0' || strlen(a->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            set_err(c, "control address '%s': expected a path of at most %zu bytes", text,
                    sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
            return -EINVAL;
        }
        return 0;
#endif
    }
    set_err(c, "control address '%s': expected %s or %s", text, listen ? "tcp-listen:[HOST:]PORT" : "tcp:HOST:PORT",
            listen ? "unix-listen:PATH" : "unix:PATH");
    return -EINVAL;
}

/* An IPv4 address for host. POSIX: numbers and "localhost" only, so the static
 * guest agent needs no resolver (static glibc cannot carry one). */
static int resolve(struct cf_control *c, const struct addr *a, struct sockaddr_in *sin)
{
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((unsigned short)atoi(a->port));
    if (strcmp(a->host, "localhost") == 0) {
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return 0;
    }
    if (inet_pton(AF_INET, a->host, &sin->sin_addr) == 1)
        return 0;
#ifdef _WIN32
    {
        struct addrinfo hints, *res = NULL;

        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(a->host, a->port, &hints, &res) == 0 && res != NULL) {
            memcpy(sin, res->ai_addr, sizeof(*sin));
            freeaddrinfo(res);
            return 0;
        }
    }
    set_err(c, "control host '%s': not an IPv4 address or a name this machine resolves", a->host);
#else
    set_err(c, "control host '%s': expected an IPv4 address or localhost", a->host);
#endif
    return -EINVAL;
}

/* ---- set-up -------------------------------------------------------------------------- */

int cf_ctl_listen(struct cf_control *c, const char *text)
{
    struct addr a;
    sock_t l;
    int rc, one = 1;

    rc = parse_addr(c, text, 1, &a);
    if (rc < 0)
        return rc;
#ifndef _WIN32
    if (a.is_unix) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };

        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", a.path);
        l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l < 0)
            return rc = -errno, set_err(c, "socket(AF_UNIX): %s", strerror(-rc)), rc;
        (void)unlink(a.path); /* a stale socket of an earlier run */
        if (bind(l, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(l, 4) < 0) {
            rc = -errno;
            set_err(c, "listen on %s: %s", a.path, strerror(-rc));
            close(l);
            return rc;
        }
        snprintf(c->path, sizeof(c->path), "%s", a.path);
        c->lfd = l;
        return 0;
    }
#endif
    {
        struct sockaddr_in sin;

        rc = resolve(c, &a, &sin);
        if (rc < 0)
            return rc;
#ifdef _WIN32
        l = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
#else
        l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
#endif
        if (l == BAD_SOCK)
            return rc = -sock_err(), set_err(c, "socket(AF_INET): %s", cf_errno_name(rc)), rc;
#ifndef _WIN32
        /* Windows' SO_REUSEADDR would let another program steal the port. */
        (void)setsockopt(l, SOL_SOCKET, SO_REUSEADDR, (const char *)&one, sizeof(one));
#else
        (void)one;
#endif
        if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(l, 4) != 0) {
            rc = -sock_err();
            set_err(c, "listen on %s:%s: %s", a.host, a.port, cf_errno_name(rc));
            sock_close(l);
            return rc;
        }
    }
    c->lfd = (cf_sock_t)l;
    return 0;
}

int cf_ctl_accept(struct cf_control *c, uint64_t deadline_ms)
{
    sock_t s;
    int rc;

    if (c->lfd == CF_NO_SOCK)
        return set_err(c, "not listening"), -EINVAL;
    cf_ctl_close(c);
    rc = wait_fd(S(c->lfd), 0, deadline_ms);
    if (rc < 0)
        return set_err(c, "waiting for the guest agent: %s", cf_errno_name(rc)), rc;
    if (rc == 0)
        return set_err(c, "no guest agent connected in time"), -ETIMEDOUT;
#ifdef _WIN32
    s = accept(S(c->lfd), NULL, NULL);
#else
    s = accept4(S(c->lfd), NULL, NULL, SOCK_CLOEXEC);
#endif
    if (s == BAD_SOCK)
        return rc = -sock_err(), set_err(c, "accept: %s", cf_errno_name(rc)), rc;
    if (c->path[0] == '\0')
        no_delay(s);
    c->fd = (cf_sock_t)s;
    c->len = 0;
    return 0;
}

int cf_ctl_connect(struct cf_control *c, const char *text, uint64_t deadline_ms)
{
    struct addr a;
    int rc;

    rc = parse_addr(c, text, 0, &a);
    if (rc < 0)
        return rc;
    cf_ctl_close(c);
    for (;;) {
        sock_t s;
        int transient;

#ifndef _WIN32
        if (a.is_unix) {
            struct sockaddr_un sun = { .sun_family = AF_UNIX };

            snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", a.path);
            s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (s < 0)
                return rc = -errno, set_err(c, "socket(AF_UNIX): %s", strerror(-rc)), rc;
            rc = connect(s, (struct sockaddr *)&sun, sizeof(sun)) == 0 ? 0 : -errno;
        } else
#endif
        {
            struct sockaddr_in sin;

            rc = resolve(c, &a, &sin);
            if (rc < 0)
                return rc;
#ifdef _WIN32
            s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
#else
            s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
#endif
            if (s == BAD_SOCK)
                return rc = -sock_err(), set_err(c, "socket(AF_INET): %s", cf_errno_name(rc)), rc;
            rc = connect(s, (struct sockaddr *)&sin, sizeof(sin)) == 0 ? 0 : -sock_err();
            if (rc == 0)
                no_delay(s);
        }
        if (rc == 0) {
            c->fd = (cf_sock_t)s;
            c->len = 0;
            return 0;
        }
        sock_close(s);
        /* The host agent is not listening yet: it may start after us. */
        transient = rc == -ECONNREFUSED || rc == -ENOENT || rc == -ETIMEDOUT || rc == -EAGAIN ||
                    rc == -ENETUNREACH || rc == -EHOSTUNREACH;
        if (!transient || cf_now_ms() >= deadline_ms) {
            set_err(c, "connect to %s: %s%s", text, cf_errno_name(rc), transient ? " (gave up waiting for the host agent)" : "");
            return rc;
        }
        sleep_ms(50);
    }
}

/* ---- lines ------------------------------------------------------------------------------ */

cf_sock_t cf_ctl_source(const struct cf_control *c)
{
    return c->in_fd >= 0 ? (cf_sock_t)c->in_fd : c->fd;
}

int cf_ctl_send(struct cf_control *c, const char *line)
{
    char buf[CF_CTL_LINE_MAX + 1];
    size_t n = strlen(line), off = 0, i;
    uint64_t deadline = cf_now_ms() + 10000;

    if (c->fd == CF_NO_SOCK)
        return set_err(c, "no control connection"), -ENOTCONN;
    if (n > CF_CTL_LINE_MAX - 1)
        n = CF_CTL_LINE_MAX - 1;
    for (i = 0; i < n; i++)
        buf[i] = line[i] == '\n' || line[i] == '\r' ? ' ' : line[i];
    buf[n++] = '\n';
    /* One send for the whole line: the two processes of a side may both
     * write (the agent's ABORT, the case's own lines), and a whole line per
     * call keeps them from interleaving inside a line. */
    while (off < n) {
#ifdef _WIN32
        int r = send(S(c->fd), buf + off, (int)(n - off), 0);
#else
        ssize_t r = send(S(c->fd), buf + off, n - off, MSG_NOSIGNAL);
#endif
        if (r > 0) {
            off += (size_t)r;
            continue;
        }
        {
            int e = sock_err();

            if (e == EINTR)
                continue;
            if (e == EAGAIN || e == EWOULDBLOCK) {
                int w = wait_fd(S(c->fd), 1, deadline);

                if (w > 0)
                    continue;
                e = w == 0 ? ETIMEDOUT : -w;
            }
            set_err(c, "control channel: send: %s", cf_errno_name(e));
            return -e;
        }
    }
    return 0;
}

int cf_ctl_take(struct cf_control *c, char *line, size_t cap)
{
    char *nl = memchr(c->buf, '\n', c->len);
    size_t n, keep;

    if (nl == NULL) {
        /* A line longer than the buffer: deliver what there is, cut. */
        if (c->len < sizeof(c->buf))
            return 0;
        nl = c->buf + c->len - 1;
    }
    n = (size_t)(nl - c->buf);
    keep = n + 1;
    if (n > 0 && c->buf[n - 1] == '\r')
        n--;
    if (cap > 0) {
        size_t k = n < cap - 1 ? n : cap - 1;

        memcpy(line, c->buf, k);
        line[k] = '\0';
    }
    memmove(c->buf, c->buf + keep, c->len - keep);
    c->len -= keep;
    return 1;
}

int cf_ctl_fill(struct cf_control *c)
{
    cf_sock_t src = cf_ctl_source(c);

    if (src == CF_NO_SOCK)
        return -ENOTCONN;
    if (c->len >= sizeof(c->buf))
        return -ENOBUFS;
    for (;;) {
#ifdef _WIN32
        int r = recv(S(src), c->buf + c->len, (int)(sizeof(c->buf) - c->len), 0);
#else
        ssize_t r = read((int)src, c->buf + c->len, sizeof(c->buf) - c->len);
#endif
        if (r > 0) {
            c->len += (size_t)r;
            return (int)r;
        }
        if (r == 0)
            return 0;
        if (sock_err() == EINTR)
            continue;
        return -sock_err();
    }
}

int cf_ctl_recv(struct cf_control *c, char *line, size_t cap, uint64_t deadline_ms)
{
    for (;;) {
        int rc;

        if (cf_ctl_take(c, line, cap))
            return 0;
        if (cf_ctl_source(c) == CF_NO_SOCK)
            return set_err(c, "no control connection"), -ENOTCONN;
        rc = wait_fd(S(cf_ctl_source(c)), 0, deadline_ms);
        if (rc < 0)
            return set_err(c, "control channel: %s", cf_errno_name(rc)), rc;
        if (rc == 0)
            return set_err(c, "control channel: nothing arrived in time"), -ETIMEDOUT;
        rc = cf_ctl_fill(c);
        if (rc == 0)
            return set_err(c, "control channel closed by the other agent"), -EPIPE;
        if (rc < 0)
            return set_err(c, "control channel: read: %s", cf_errno_name(rc)), rc;
    }
}

void cf_ctl_close(struct cf_control *c)
{
    if (c->fd != CF_NO_SOCK)
        sock_close(S(c->fd));
    c->fd = CF_NO_SOCK;
    c->len = 0;
}

void cf_ctl_shutdown(struct cf_control *c)
{
    cf_ctl_close(c);
    if (c->lfd != CF_NO_SOCK)
        sock_close(S(c->lfd));
    c->lfd = CF_NO_SOCK;
#ifndef _WIN32
    if (c->path[0])
        (void)unlink(c->path);
#endif
    c->path[0] = '\0';
}

int cf_ctl_is_framework_line(const char *line)
{
    return strncmp(line, "RESULT ", 7) == 0 || strncmp(line, "ABORT ", 6) == 0;
}

/* ---- the cases' calls (catalogue.h) ----------------------------------------------------- */

/* cf_fail without a file and line: those would name this file, not the case. */
static int ctl_fail(struct cf_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctl_fail(struct cf_ctx *ctx, const char *fmt, ...)
{
    char msg[sizeof(ctx->fail)];
    va_list ap;

    if (ctx->fail[0] != '\0')
        return -1;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ctx->where[0] != '\0')
        set_msg(ctx->fail, sizeof(ctx->fail), "%s, at %s", msg, ctx->where);
    else
        set_msg(ctx->fail, sizeof(ctx->fail), "%s", msg);
    return -1;
}

static const char *peer_name(const struct cf_ctx *ctx)
{
    return ctx->side == 0 ? "guest" : "host";
}

static uint64_t case_deadline(const struct cf_ctx *ctx)
{
    return ctx->ctl->deadline_ms ? ctx->ctl->deadline_ms : cf_now_ms() + 10000;
}

/* The next line of the case's own, or -1 with the failure recorded. */
static int read_case_line(struct cf_ctx *ctx, char *line, size_t cap, const char *wanted)
{
    uint64_t t0 = cf_now_ms();
    int rc;

    if (ctx->ctl == NULL)
        return ctl_fail(ctx, "expected %s from the %s side, but this case has no control channel", wanted,
                       peer_name(ctx));
    rc = cf_ctl_recv(ctx->ctl, line, cap, case_deadline(ctx));
    if (rc == -ETIMEDOUT)
        return ctl_fail(ctx, "expected %s from the %s side, got nothing within %llu ms", wanted, peer_name(ctx),
                       (unsigned long long)(cf_now_ms() - t0));
    if (rc < 0)
        return ctl_fail(ctx, "expected %s from the %s side, got %s", wanted, peer_name(ctx), ctx->ctl->err);
    if (cf_ctl_is_framework_line(line)) {
        /* The other side has finished (or given up) already: keep its verdict
         * for the agent, which reports it as the first failure. */
        snprintf(ctx->ctl->stash, sizeof(ctx->ctl->stash), "%s", line);
        return ctl_fail(ctx, "expected %s from the %s side, but it ended its part first ('%.200s')", wanted,
                       peer_name(ctx), line);
    }
    return 0;
}

int cf_ctl_writeln(struct cf_ctx *ctx, const char *line)
{
    int rc;

    if (ctx->ctl == NULL)
        return ctl_fail(ctx, "cf_ctl_writeln('%s'): this case has no control channel", line);
    rc = cf_ctl_send(ctx->ctl, line);
    if (rc < 0)
        return ctl_fail(ctx, "could not send '%s' to the %s side: %s", line, peer_name(ctx), ctx->ctl->err);
    return 0;
}

int cf_ctl_expectln(struct cf_ctx *ctx, const char *want)
{
    char line[CF_CTL_LINE_MAX], what[CF_CTL_LINE_MAX + 8];

    snprintf(what, sizeof(what), "'%s'", want);
    if (read_case_line(ctx, line, sizeof(line), what) < 0)
        return -1;
    if (strcmp(line, want) != 0)
        return ctl_fail(ctx, "expected '%s' from the %s side, got '%s'", want, peer_name(ctx), line);
    return 0;
}

int cf_ctl_write_u64(struct cf_ctx *ctx, uint64_t v)
{
    char line[32];

    snprintf(line, sizeof(line), "%llu", (unsigned long long)v);
    return cf_ctl_writeln(ctx, line);
}

int cf_ctl_read_u64(struct cf_ctx *ctx, uint64_t *v)
{
    char line[CF_CTL_LINE_MAX], *end;
    unsigned long long x;

    if (read_case_line(ctx, line, sizeof(line), "a number") < 0)
        return -1;
    errno = 0;
    x = strtoull(line, &end, 10);
    if (line[0] < '0' || line[0] > '9' || *end != '\0' || errno != 0)
        return ctl_fail(ctx, "expected a number from the %s side, got '%s'", peer_name(ctx), line);
    *v = x;
    return 0;
}
