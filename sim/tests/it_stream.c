/* SPDX-License-Identifier: MIT */
/*
 * it_stream.c: integration tests of established streams and of what happens
 * to them: half-close and close in both personalities, readiness with epoll
 * (non-blocking connect, listeners), peers that die, VM pause, reset and
 * power-off, sockets shared across fork(), and a daemon that dies.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "fixture.h"
#include "hvproto/proto.h"

static struct fx F;

static void setup(void)
{
    fx_start(&F, NULL);
}

static void teardown(void)
{
    fx_stop(&F);
}

TestSuite(stream, .init = setup, .fini = teardown, .timeout = 30);

struct pair {
    int pers; /* 0: Windows on both ends, 1: Linux guest connecting to a Windows host */
    int host_fd; /* accepted on the host */
    pid_t guest;
    struct fx_pipe go, done;
    GUID svc;
    GUID vm;
    int suspend;
};

typedef int (*guest_fn)(struct pair *p, int fd);

static guest_fn current_guest;

static int guest_main(void *arg)
{
    struct pair *p = arg;
    int s, rc;

    if (p->pers == 1) {
        struct sockaddr_vm a = fx_vsock(VMADDR_CID_HOST, p->svc.Data1);

        s = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);
        CHECK_OK(s);
        CHECK_OK(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)));
    } else {
        SOCKADDR_HV a = fx_hv(&HV_GUID_PARENT, &p->svc);

        s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
        CHECK_OK(s);
        if (p->suspend) {
            uint32_t one = 1;

            CHECK_OK(hvsim_setsockopt(s, HV_PROTOCOL_RAW, HVSOCKET_CONNECTED_SUSPEND, &one, sizeof(one)));
        }
        CHECK_OK(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)));
    }
    rc = current_guest(p, s);
    return rc;
}

/* A guest in vm1 connected to a host listener; the host side is p->host_fd. */
static void make_pair(struct pair *p, int pers, guest_fn fn)
{
    SOCKADDR_HV a;
    int l;

    p->pers = pers;
    p->svc = pers == 1 ? hvsim_guid_from_port(6000) : fx_svc(100);
    p->vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    fx_service(&F, &p->svc, "stream test");
    fx_pipe_init(&p->go);
    fx_pipe_init(&p->done);
    a = fx_hv(&HV_GUID_WILDCARD, &p->svc);
    l = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    cr_assert_geq(l, 0);
    if (p->suspend) {
        uint32_t one = 1;

        cr_assert_eq(hvsim_setsockopt(l, HV_PROTOCOL_RAW, HVSOCKET_CONNECTED_SUSPEND, &one, sizeof(one)), 0);
    }
    cr_assert_eq(hvsim_bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(hvsim_listen(l, 4), 0);
    current_guest = fn;
    p->guest = fx_spawn(&F, "vm1", guest_main, p);
    p->host_fd = hvsim_accept(l, NULL, NULL);
    cr_assert_geq(p->host_fd, 0, "accept: %s", hvsim_err_name(errno));
    hvsim_close(l);
}

static int readable_within(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    return poll(&p, 1, ms) == 1;
}

/* ---- half-close and close (reference 3.5, 4.1) ------------------------------------- */

static int guest_shut_wr(struct pair *p, int s)
{
    CHECK_EQ(hvsim_send(s, "abc", 3, 0), 3);
    CHECK_OK(hvsim_shutdown(s, SHUT_WR));
    /* Winsock: WSAESHUTDOWN; vsock: EPIPE. Shutting down again is fine. */
    CHECK_ERR(hvsim_send(s, "x", 1, MSG_NOSIGNAL), p->pers == 1 ? EPIPE : ESHUTDOWN);
    CHECK_OK(hvsim_shutdown(s, SHUT_WR));
    /* The other direction still works. */
    {
        char buf[8];

        CHECK_EQ(hvsim_recv(s, buf, 5, MSG_WAITALL), 5);
        CHECK(memcmp(buf, "reply", 5) == 0);
    }
    return 0;
}

static void shut_wr_case(int pers)
{
    struct pair p = { 0 };
    char buf[8];

    make_pair(&p, pers, guest_shut_wr);
    /* Data first, then EOF. */
    cr_assert_eq(hvsim_recv(p.host_fd, buf, 3, MSG_WAITALL), 3);
    cr_assert_eq(memcmp(buf, "abc", 3), 0);
    cr_assert_eq(hvsim_recv(p.host_fd, buf, sizeof(buf), 0), 0);
    cr_assert_eq(hvsim_send(p.host_fd, "reply", 5, 0), 5);
    cr_assert_eq(fx_wait(p.guest), 0);
}

Test(stream, shut_wr_windows)
{
    shut_wr_case(0);
}

Test(stream, shut_wr_linux)
{
    shut_wr_case(1);
}

static int guest_shut_rd(struct pair *p, int s)
{
    char buf[8];

    CHECK_OK(hvsim_shutdown(s, SHUT_RD));
    fx_signal(&p->go, 1);
    fx_await(&p->done);
    /* Winsock: recv after SD_RECEIVE is WSAESHUTDOWN; vsock returns 0. */
    if (p->pers == 1)
        CHECK_EQ(hvsim_recv(s, buf, sizeof(buf), 0), 0);
    else
        CHECK_ERR(hvsim_recv(s, buf, sizeof(buf), 0), ESHUTDOWN);
    /* Sending still works after SHUT_RD. */
    CHECK_EQ(hvsim_send(s, "ok", 2, 0), 2);
    return 0;
}

static void shut_rd_case(int pers)
{
    struct pair p = { 0 };
    char buf[4];

    make_pair(&p, pers, guest_shut_rd);
    fx_await(&p.go);
    /* hv_sock sends nothing on SHUT_RD: the peer's writes still succeed. */
    cr_assert_eq(hvsim_send(p.host_fd, "data", 4, 0), 4, "send: %s", hvsim_err_name(errno));
    fx_signal(&p.done, 1);
    cr_assert_eq(hvsim_recv(p.host_fd, buf, 2, MSG_WAITALL), 2);
    cr_assert_eq(fx_wait(p.guest), 0);
}

Test(stream, shut_rd_windows)
{
    shut_rd_case(0);
}

Test(stream, shut_rd_linux)
{
    shut_rd_case(1);
}

static int guest_close_unread(struct pair *p, int s)
{
    CHECK_EQ(hvsim_send(s, "last words", 10, 0), 10);
    fx_await(&p->go); /* the host has written data we never read */
    CHECK_OK(hvsim_close(s));
    return 0;
}

Test(stream, close_with_unread_data_gives_peer_eof_not_reset)
{
    struct pair p = { 0 };
    char buf[16];

    make_pair(&p, 0, guest_close_unread);
    cr_assert_eq(hvsim_send(p.host_fd, "unread", 6, 0), 6);
    fx_signal(&p.go, 1);
    cr_assert_eq(fx_wait(p.guest), 0);
    cr_assert_eq(hvsim_recv(p.host_fd, buf, 10, MSG_WAITALL), 10);
    cr_assert_eq(hvsim_recv(p.host_fd, buf, sizeof(buf), 0), 0, "expected EOF, got %s", hvsim_err_name(errno));
}

static int guest_peek(struct pair *p, int s)
{
    char c;

    fx_await(&p->go);
    /* hv_sock refuses MSG_PEEK (reference 3.4); Winsock peeks. */
    if (p->pers == 1) {
        CHECK_ERR(hvsim_recv(s, &c, 1, MSG_PEEK), EOPNOTSUPP);
    } else {
        CHECK_EQ(hvsim_recv(s, &c, 1, MSG_PEEK), 1);
        CHECK_EQ(c, 'p');
    }
    CHECK_EQ(hvsim_recv(s, &c, 1, 0), 1);
    CHECK_EQ(c, 'p');
    return 0;
}

Test(stream, msg_peek_per_personality)
{
    struct pair p = { 0 }, q = { 0 };

    make_pair(&p, 0, guest_peek);
    cr_assert_eq(hvsim_send(p.host_fd, "p", 1, 0), 1);
    fx_signal(&p.go, 1);
    cr_assert_eq(fx_wait(p.guest), 0);
    hvsim_close(p.host_fd);
    cr_assert_eq(hvsim_admin_vm_rm(F.admin, "vm1"), 0);
    make_pair(&q, 1, guest_peek);
    cr_assert_eq(hvsim_send(q.host_fd, "p", 1, 0), 1);
    fx_signal(&q.go, 1);
    cr_assert_eq(fx_wait(q.guest), 0);
}

/* ---- data integrity ---------------------------------------------------------------- */

#define BIG (8u << 20)

static int guest_checksum(struct pair *p, int s)
{
    char *buf = malloc(65536);
    uint32_t crc = 0, got = 0;
    size_t total = 0;
    ssize_t n;

    (void)p;
    CHECK(buf != NULL);
    while ((n = hvsim_recv(s, buf, 65536, 0)) > 0) {
        crc = fx_crc(buf, (size_t)n, crc);
        total += (size_t)n;
    }
    CHECK_EQ(n, 0);
    CHECK_EQ(total, BIG);
    CHECK_EQ(hvsim_send(s, &crc, sizeof(crc), 0), (ssize_t)sizeof(crc));
    (void)got;
    free(buf);
    return 0;
}

Test(stream, large_transfer_checksummed)
{
    struct pair p = { 0 };
    uint8_t *data = malloc(BIG);
    size_t off = 0, sizes[] = { 1, 7, 4088, 16384, 65536, 1 << 20 };
    uint32_t crc, remote = 0;
    int i = 0;

    cr_assert_not_null(data);
    fx_fill(data, BIG, 42);
    crc = fx_crc(data, BIG, 0);
    make_pair(&p, 0, guest_checksum);
    while (off < BIG) {
        size_t chunk = sizes[i++ % 6];
        ssize_t n;

        if (chunk > BIG - off)
            chunk = BIG - off;
        n = hvsim_send(p.host_fd, data + off, chunk, 0);
        cr_assert_gt(n, 0);
        off += (size_t)n;
    }
    cr_assert_eq(hvsim_shutdown(p.host_fd, SHUT_WR), 0);
    cr_assert_eq(hvsim_recv(p.host_fd, &remote, sizeof(remote), MSG_WAITALL), (ssize_t)sizeof(remote));
    cr_assert_eq(remote, crc, "crc %08x vs %08x", remote, crc);
    cr_assert_eq(fx_wait(p.guest), 0);
    free(data);
}

/* ---- readiness (design-notes section 1) -------------------------------------------------- */

static int wait_events(int ep, int ms, uint32_t *events)
{
    struct epoll_event ev;
    int n = epoll_wait(ep, &ev, 1, ms);

    *events = n == 1 ? ev.events : 0;
    return n;
}

Test(stream, epoll_nonblocking_connect_success_then_first_byte)
{
    GUID svc = fx_svc(101);
    SOCKADDR_HV a = fx_hv(&HV_GUID_LOOPBACK, &svc);
    int l = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM | SOCK_NONBLOCK, HV_PROTOCOL_RAW);
    int ep = epoll_create1(0), c;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT };
    struct epoll_event lev = { .events = EPOLLIN };
    uint32_t got, err = 99;
    socklen_t len = sizeof(err);

    cr_assert_eq(hvsim_bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(hvsim_listen(l, 4), 0);
    /* Both registered before anything happens; never registered again. */
    cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev), 0);
    lev.data.fd = l;
    {
        int lep = epoll_create1(0);

        cr_assert_eq(epoll_ctl(lep, EPOLL_CTL_ADD, l, &lev), 0);
        cr_assert_eq(wait_events(lep, 0, &got), 0);
        cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)), -1);
        cr_assert_eq(errno, EINPROGRESS);
        /* A listener with a pending connection reports EPOLLIN. */
        cr_assert_eq(wait_events(lep, 1000, &got), 1);
        cr_assert(got & EPOLLIN);
        close(lep);
    }
    cr_assert_eq(wait_events(ep, 1000, &got), 1);
    cr_assert(got & EPOLLOUT);
    cr_assert_not(got & (EPOLLERR | EPOLLIN), "events %x", got);
    cr_assert_eq(hvsim_getsockopt(s, HVSIM_WSA_SOL_SOCKET, HVSIM_WSA_SO_ERROR, &err, &len), 0);
    cr_assert_eq(err, 0);
    c = hvsim_accept(l, NULL, NULL);
    cr_assert_geq(c, 0);
    /* The first byte from the peer is EPOLLIN on the same registration. */
    cr_assert_eq(hvsim_send(c, "x", 1, 0), 1);
    cr_assert_eq(wait_events(ep, 1000, &got), 1);
    cr_assert(got & EPOLLIN);
    close(ep);
}

Test(stream, epoll_nonblocking_connect_refused)
{
    GUID svc = fx_svc(102);
    SOCKADDR_HV a = fx_hv(&HV_GUID_LOOPBACK, &svc);
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM | SOCK_NONBLOCK, HV_PROTOCOL_RAW);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT };
    uint32_t got, err = 0;
    socklen_t len = sizeof(err);

    cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev), 0);
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)), -1);
    cr_assert_eq(errno, EINPROGRESS);
    cr_assert_eq(wait_events(ep, 1000, &got), 1);
    cr_assert(got & EPOLLOUT);
    cr_assert(got & EPOLLERR, "events %x", got);
    cr_assert_eq(hvsim_getsockopt(s, HVSIM_WSA_SOL_SOCKET, HVSIM_WSA_SO_ERROR, &err, &len), 0);
    cr_assert_eq(err, 10061, "SO_ERROR %u", err);
    close(ep);
}

static int guest_nonblocking_timeout(void *v)
{
    struct sockaddr_vm a = fx_vsock(VMADDR_CID_HOST, 6100);
    int s = hvsim_socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int ep = epoll_create1(0), e = 0;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT };
    struct timeval tv = { 0, 300000 };
    socklen_t len = sizeof(e);
    uint32_t got;
    uint64_t t0;

    (void)v;
    CHECK_OK(s);
    CHECK_OK(hvsim_setsockopt(s, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv)));
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
    t0 = fx_now_ms();
    CHECK_ERR(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)), EINPROGRESS);
    /* Nothing while the connect is in progress... */
    CHECK_EQ(wait_events(ep, 150, &got), 0);
    CHECK_OK(hvsim_getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &len));
    CHECK_EQ(e, 0);
    /* ...then the failure, after the timeout. */
    CHECK_EQ(wait_events(ep, 2000, &got), 1);
    CHECK(got & EPOLLERR);
    CHECK(fx_now_ms() - t0 >= 300);
    CHECK_OK(hvsim_getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &len));
    CHECK_EQ(e, ETIMEDOUT);
    return 0;
}

Test(stream, epoll_nonblocking_connect_times_out_linux_guest)
{
    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", guest_nonblocking_timeout, NULL)), 0);
}

/* ---- peers that die, and the VM life cycle ------------------------------------------ */

static int guest_block(struct pair *p, int s)
{
    (void)s;
    fx_signal(&p->go, 1);
    for (;;)
        pause();
    return 0;
}

Test(stream, sigkill_of_peer_gives_eof_within_1s)
{
    struct pair p = { 0 };
    char c;

    make_pair(&p, 0, guest_block);
    fx_await(&p.go);
    kill(p.guest, SIGKILL);
    cr_assert(readable_within(p.host_fd, 1000));
    cr_assert_eq(hvsim_recv(p.host_fd, &c, 1, 0), 0);
    fx_wait(p.guest);
}

static int guest_read_until_broken(struct pair *p, int s)
{
    char c;
    ssize_t n;

    fx_signal(&p->go, 1);
    /* Plain read(): the program does not go through libhvsim here. */
    n = read(s, &c, 1);
    CHECK_EQ(n, 0);
    return 0;
}

static void break_case(const char *op)
{
    struct pair p = { 0 };
    uint64_t t0;
    char c;

    make_pair(&p, 0, guest_read_until_broken);
    fx_await(&p.go);
    t0 = fx_now_ms();
    fx_vm_op(&F, "vm1", op);
    /* Both ends unblock: the guest's read() returns 0, the host sees EOF. */
    cr_assert_eq(fx_wait(p.guest), 0);
    cr_assert(readable_within(p.host_fd, 1000));
    cr_assert_eq(read(p.host_fd, &c, 1), 0);
    cr_assert_lt(fx_now_ms() - t0, 1000);
    /* A broken Windows socket refuses to send. */
    cr_assert_eq(hvsim_send(p.host_fd, "x", 1, 0), -1);
    cr_assert_eq(errno, ECONNRESET, "got %s", hvsim_err_name(errno));
}

Test(stream, reset_breaks_connections)
{
    break_case("reset");
}

Test(stream, power_off_breaks_connections)
{
    break_case("off");
}

Test(stream, pause_without_connected_suspend_breaks)
{
    break_case("pause");
}

static int guest_survive_pause(struct pair *p, int s)
{
    char buf[5];

    fx_signal(&p->go, 1);
    CHECK_EQ(hvsim_recv(s, buf, 5, MSG_WAITALL), 5);
    CHECK(memcmp(buf, "after", 5) == 0);
    return 0;
}

Test(stream, connected_suspend_keeps_connection_through_pause)
{
    struct pair p = { .suspend = 1 };
    struct pollfd pf;

    make_pair(&p, 0, guest_survive_pause);
    fx_await(&p.go);
    fx_vm_op(&F, "vm1", "pause");
    /* Make sure the event was handled on both sides before looking: a round
     * trip through the daemon orders it after the broadcast. */
    fx_vm_op(&F, "vm1", "resume");
    pf = (struct pollfd){ .fd = p.host_fd, .events = POLLIN };
    cr_assert_eq(poll(&pf, 1, 200), 0, "the connection must not be broken");
    cr_assert_eq(hvsim_send(p.host_fd, "after", 5, 0), 5);
    cr_assert_eq(fx_wait(p.guest), 0);
}

Test(stream, connect_from_paused_vm_fails_and_to_it_times_out)
{
    GUID vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC), svc = fx_svc(103);
    SOCKADDR_HV a = fx_hv(&vm, &svc);
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    uint32_t ms = 200;
    uint64_t t0;

    fx_vm_op(&F, "vm1", "pause");
    cr_assert_eq(hvsim_setsockopt(s, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &ms, sizeof(ms)), 0);
    t0 = fx_now_ms();
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)), -1);
    cr_assert_eq(errno, ETIMEDOUT, "got %s", hvsim_err_name(errno));
    cr_assert_geq(fx_now_ms() - t0, 200);
}

/* ---- fork ------------------------------------------------------------------------------ */

static int guest_fork_share(struct pair *p, int s)
{
    pid_t child = fork();

    CHECK(child >= 0);
    if (child == 0) {
        fx_await(&p->go);
        /* The parent closed its copy; ours still works. */
        CHECK_EQ(hvsim_send(s, "child", 5, 0), 5);
        hvsim_close(s);
        _exit(0);
    }
    CHECK_OK(hvsim_close(s));
    fx_signal(&p->done, 1);
    CHECK_EQ(fx_wait(child), 0);
    return 0;
}

Test(stream, socket_shared_across_fork_lives_until_last_close)
{
    struct pair p = { 0 };
    char buf[8];

    make_pair(&p, 0, guest_fork_share);
    fx_await(&p.done);
    /* One holder closed: no EOF yet. */
    cr_assert_not(readable_within(p.host_fd, 100));
    fx_signal(&p.go, 1);
    cr_assert_eq(hvsim_recv(p.host_fd, buf, 5, MSG_WAITALL), 5);
    cr_assert_eq(hvsim_recv(p.host_fd, buf, sizeof(buf), 0), 0);
    cr_assert_eq(fx_wait(p.guest), 0);
}

/* ---- the daemon dies ----------------------------------------------------------------------- */

Test(stream, daemon_death_gives_clear_errors_not_hangs)
{
    GUID svc = fx_svc(104);
    SOCKADDR_HV a = fx_hv(&HV_GUID_LOOPBACK, &svc);
    int l = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW), s, c;
    uint64_t t0;

    cr_assert_eq(hvsim_bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(hvsim_listen(l, 4), 0);
    s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
    c = hvsim_accept(l, NULL, NULL);
    fx_kill_daemon(&F);
    /* Established streams carry on: no byte ever went through the daemon. */
    cr_assert_eq(hvsim_send(s, "z", 1, 0), 1);
    {
        char z;

        cr_assert_eq(hvsim_recv(c, &z, 1, 0), 1);
    }
    t0 = fx_now_ms();
    cr_assert_eq(hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW), -1);
    cr_assert_eq(errno, ENETDOWN, "got %s", hvsim_err_name(errno));
    cr_assert_eq(hvsim_get_last_error(), 10050);
    hvsim_close(s);
    s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    cr_assert_eq(s, -1);
    cr_assert_lt(fx_now_ms() - t0, 1000);
}

/* A new daemon numbers its binds apart from the last one's: closing a socket
 * bound under the old daemon must not remove the new daemon's bind that
 * happened to get the same id (both were the first of their daemon). */
Test(stream, old_bind_ids_never_name_a_new_daemons_binds)
{
    GUID s1 = fx_svc(106), s2 = fx_svc(107);
    SOCKADDR_HV a1 = fx_hv(&HV_GUID_LOOPBACK, &s1), a2 = fx_hv(&HV_GUID_LOOPBACK, &s2);
    int l1 = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW), l2, s, c;

    cr_assert_eq(hvsim_bind(l1, (struct sockaddr *)&a1, sizeof(a1)), 0);
    cr_assert_eq(hvsim_listen(l1, 4), 0);
    fx_kill_daemon(&F);
    fx_stop(&F);
    fx_start(&F, NULL);
    l2 = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    cr_assert_geq(l2, 0, "%s", hvsim_err_name(errno));
    cr_assert_eq(hvsim_bind(l2, (struct sockaddr *)&a2, sizeof(a2)), 0);
    cr_assert_eq(hvsim_listen(l2, 4), 0);
    hvsim_close(l1);
    s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&a2, sizeof(a2)), 0, "the new listener is gone: %s",
                 hvsim_err_name(errno));
    c = hvsim_accept(l2, NULL, NULL);
    cr_assert_geq(c, 0);
    hvsim_close(c);
    hvsim_close(s);
    hvsim_close(l2);
}

Test(stream, a_restarted_daemon_serves_the_next_request)
{
    GUID svc = fx_svc(105);
    SOCKADDR_HV a = fx_hv(&HV_GUID_LOOPBACK, &svc);
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW), s2;

    cr_assert_geq(s, 0);
    /* A new daemon (a new folder) while this process holds a socket: the
     * bind, the first call to reach the daemon, attaches again and is
     * served instead of failing once with ENETDOWN (the helper thread saw
     * the old connection close; a request that races it resends once). */
    fx_kill_daemon(&F);
    fx_stop(&F);
    fx_start(&F, NULL);
    cr_assert_eq(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)), 0, "bind after the restart: %s",
                 hvsim_err_name(errno));
    cr_assert_eq(hvsim_listen(s, 4), 0, "listen after the restart: %s", hvsim_err_name(errno));
    s2 = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    cr_assert_geq(s2, 0, "socket after the restart: %s", hvsim_err_name(errno));
    hvsim_close(s2);
    hvsim_close(s);
}

Test(stream, a_library_of_another_protocol_is_told_so)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct hvsim_msg_hello hello = { .version = HVSIM_PROTO_VERSION - 1 };
    char buf[512];
    struct hvsim_msg_hdr h;
    int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), ev[2];
    ssize_t n;

    cr_assert_lt(strlen(F.dir) + sizeof("/host.sock"), sizeof(sa.sun_path));
    memcpy(sa.sun_path, F.dir, strlen(F.dir));
    memcpy(sa.sun_path + strlen(F.dir), "/host.sock", sizeof("/host.sock"));
    cr_assert_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ev), 0);
    cr_assert_eq(hvsim__msg_send(c, HVSIM_MSG_HELLO, 0, 1, &hello, sizeof(hello), NULL, 0, ev[1]), 0);
    n = recv(c, buf, sizeof(buf) - 1, 0);
    cr_assert_geq(n, (ssize_t)sizeof(h));
    buf[n] = '\0';
    memcpy(&h, buf, sizeof(h));
    cr_assert_eq(h.status, -EPROTO);
    cr_assert(strstr(buf + sizeof(h), "this hvsimd speaks protocol") != NULL, "got '%s'", buf + sizeof(h));
    close(ev[0]);
    close(ev[1]);
    close(c);
}

/* ---- the literal settings: frozen and killed guests ------------------------------------------ */

static int guest_sleep(struct pair *p, int s)
{
    (void)s;
    fx_signal(&p->go, 1);
    for (;;)
        pause();
    return 0;
}

static char proc_state(pid_t pid)
{
    char path[64], buf[256], *c;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return '?';
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    c = strrchr(buf, ')');
    return c && c[1] == ' ' ? c[2] : '?';
}

Test(stream, pause_freezes_guests_setting)
{
    struct pair p = { .suspend = 1 };
    siginfo_t si;

    fx_set(&F, "pause_freezes_guests", "1");
    make_pair(&p, 0, guest_sleep);
    fx_await(&p.go);
    fx_vm_op(&F, "vm1", "pause");
    /* The guest process is stopped (the daemon signalled it before replying). */
    memset(&si, 0, sizeof(si));
    cr_assert_eq(waitid(P_PID, (id_t)p.guest, &si, WSTOPPED | WNOWAIT), 0);
    cr_assert_eq(si.si_code, CLD_STOPPED);
    fx_vm_op(&F, "vm1", "resume");
    memset(&si, 0, sizeof(si));
    cr_assert_eq(waitid(P_PID, (id_t)p.guest, &si, WCONTINUED | WNOWAIT), 0);
    cr_assert_neq(proc_state(p.guest), 'T');
    kill(p.guest, SIGKILL);
    fx_wait(p.guest);
}

Test(stream, events_reach_a_process_after_the_daemon_restarted)
{
    struct pair p = { 0 };
    siginfo_t si;
    int got, s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW); /* attached to the first daemon */

    cr_assert_geq(s, 0);
    hvsim_close(s);
    fx_kill_daemon(&F);
    fx_stop(&F);
    fx_start(&F, NULL);
    make_pair(&p, 0, guest_sleep);
    fx_await(&p.go);
    /* The guest cannot react, so only this process's own helper, listening
     * on its new attachment, can break the host end at the reset. */
    kill(p.guest, SIGSTOP);
    memset(&si, 0, sizeof(si));
    cr_assert_eq(waitid(P_PID, (id_t)p.guest, &si, WSTOPPED | WNOWAIT), 0);
    fx_vm_op(&F, "vm1", "reset");
    got = readable_within(p.host_fd, 1000);
    kill(p.guest, SIGKILL); /* before asserting: a stopped child must not outlive the test */
    fx_wait(p.guest);
    cr_assert(got, "the reset never reached this process");
}

Test(stream, reset_kills_guests_setting)
{
    struct pair p = { 0 };

    fx_set(&F, "reset_kills_guests", "1");
    make_pair(&p, 0, guest_sleep);
    fx_await(&p.go);
    fx_vm_op(&F, "vm1", "reset");
    cr_assert_eq(fx_wait(p.guest), 128 + SIGKILL);
}

/* ---- the send/receive family: sendto, recvfrom, sendmsg, recvmsg --------------------- */

/* The guest end of the family: a destination on the stream, the reported
 * source, gathered and scattered iovecs, ancillary data and flags. */
static int guest_family(struct pair *p, int s)
{
    struct sockaddr_vm to = fx_vsock(VMADDR_CID_HOST, p->svc.Data1);
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof(from);
    char a[4] = "", b[8] = "", c;
    struct iovec out[3] = { { "one", 3 }, { NULL, 0 }, { "two", 3 } };
    struct iovec in[2] = { { a, 3 }, { b, 3 } };
    struct msghdr m = { .msg_iov = out, .msg_iovlen = 3 };
    char ctl[64];

    if (p->pers == 1) {
        /* vsock: a destination on a connected stream is EISCONN. */
        CHECK_ERR(hvsim_sendto(s, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)), EISCONN);
        m.msg_name = &to;
        m.msg_namelen = sizeof(to);
        CHECK_ERR(hvsim_sendmsg(s, &m, 0), EISCONN);
        m.msg_name = NULL;
        m.msg_namelen = 0;
    } else {
        /* Winsock ignores the destination of a connected stream. */
        SOCKADDR_HV hv = fx_hv(&HV_GUID_PARENT, &p->svc);

        CHECK_EQ(hvsim_sendto(s, "<", 1, 0, (struct sockaddr *)&hv, sizeof(hv)), 1);
    }
    CHECK_EQ(hvsim_sendmsg(s, &m, 0), 6);
    CHECK_EQ(hvsim_sendto(s, ">", 1, 0, NULL, 0), 1);
    CHECK_ERR(hvsim_sendmsg(s, NULL, 0), EFAULT);
    /* The host sends "abcdefg!". */
    fx_await(&p->go);
    CHECK_EQ(hvsim_recvfrom(s, &c, 1, MSG_WAITALL, (struct sockaddr *)&from, &fromlen), 1);
    CHECK_EQ(c, 'a');
    /* vsock reports no source (length 0); Winsock leaves the argument alone. */
    CHECK_EQ(fromlen, p->pers == 1 ? 0 : (socklen_t)sizeof(from));
    m = (struct msghdr){ .msg_iov = in, .msg_iovlen = 2, .msg_name = &from, .msg_namelen = sizeof(from),
                         .msg_control = ctl, .msg_controllen = sizeof(ctl), .msg_flags = 0x7 };
    CHECK_EQ(hvsim_recvmsg(s, &m, MSG_WAITALL | MSG_CMSG_CLOEXEC), 6);
    CHECK(memcmp(a, "bcd", 3) == 0 && memcmp(b, "efg", 3) == 0);
    CHECK_EQ(m.msg_controllen, 0);
    CHECK_EQ(m.msg_flags, 0);
    CHECK_EQ(m.msg_namelen, p->pers == 1 ? 0 : (socklen_t)sizeof(from));
    /* No iovec with room: the call's checks still run. */
    m.msg_iovlen = 0;
    if (p->pers == 1)
        CHECK_ERR(hvsim_recvmsg(s, &m, MSG_PEEK), EOPNOTSUPP);
    else
        CHECK_EQ(hvsim_recvmsg(s, &m, MSG_PEEK), 0);
    CHECK_EQ(hvsim_recv(s, &c, 1, 0), 1);
    CHECK_EQ(c, '!');
    CHECK_OK(hvsim_shutdown(s, SHUT_WR));
    return 0;
}

static void family_case(int pers)
{
    struct pair p = { 0 };
    char buf[16] = "";
    const char *want = pers == 1 ? "onetwo>" : "<onetwo>";

    make_pair(&p, pers, guest_family);
    cr_assert_eq(hvsim_recv(p.host_fd, buf, strlen(want), MSG_WAITALL), (ssize_t)strlen(want));
    cr_assert_str_eq(buf, want);
    cr_assert_eq(hvsim_send(p.host_fd, "abcdefg!", 8, 0), 8);
    fx_signal(&p.go, 1);
    cr_assert_eq(fx_wait(p.guest), 0);
    cr_assert_eq(hvsim_recv(p.host_fd, buf, sizeof(buf), 0), 0, "expected EOF, got %s", hvsim_err_name(errno));
    hvsim_close(p.host_fd);
}

Test(stream, send_recv_family_windows)
{
    family_case(0);
}

Test(stream, send_recv_family_linux)
{
    family_case(1);
}

/* Before a connection: not one of ours, unconnected. */
Test(stream, send_recv_family_unconnected)
{
    int v = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0), w = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    struct sockaddr_vm to = fx_vsock(VMADDR_CID_HOST, 6000);
    struct msghdr m = { 0 };
    char c;

    cr_assert_geq(v, 0);
    cr_assert_geq(w, 0);
    /* vsock: a destination on an unconnected stream is EOPNOTSUPP (vsock_connectible_sendmsg). */
    cr_assert_eq(hvsim_sendto(v, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)), -1);
    cr_assert_eq(errno, EOPNOTSUPP);
    cr_assert_eq(hvsim_sendto(v, "x", 1, 0, NULL, 0), -1);
    cr_assert_eq(errno, ENOTCONN);
    cr_assert_eq(hvsim_sendto(w, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)), -1);
    cr_assert_eq(errno, ENOTCONN);
    cr_assert_eq(hvsim_recvfrom(w, &c, 1, 0, NULL, NULL), -1);
    cr_assert_eq(errno, ENOTCONN);
    cr_assert_eq(hvsim_recvmsg(v, &m, 0), -1);
    cr_assert_eq(errno, ENOTCONN);
    cr_assert_eq(hvsim_sendmsg(0, &m, 0), -1);
    cr_assert_eq(errno, ENOTSOCK);
    cr_assert_eq(hvsim_recvmsg(0, &m, 0), -1);
    cr_assert_eq(errno, ENOTSOCK);
    hvsim_close(v);
    hvsim_close(w);
}
