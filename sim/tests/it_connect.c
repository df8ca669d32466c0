/* SPDX-License-Identifier: MIT */
/*
 * it_connect.c: integration tests, with real processes, of connection set-up:
 * guest to host and host to guest in both personalities, loopback, the
 * registry, listener precedence, and every refusal of the reference's
 * sections 4.1, 4.2 and 4.4 with its errno and Winsock code.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "fixture.h"

static struct fx F;

static void setup(void)
{
    fx_start(&F, NULL);
}

static void teardown(void)
{
    fx_stop(&F);
}

TestSuite(connect, .init = setup, .fini = teardown, .timeout = 30);

/* ---- helpers -------------------------------------------------------------------- */

static int hv_listen(const GUID *vm, const GUID *svc)
{
    SOCKADDR_HV a = fx_hv(vm, svc);
    int l = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

    CHECK_OK(l);
    CHECK_OK(hvsim_bind(l, (struct sockaddr *)&a, sizeof(a)));
    CHECK_OK(hvsim_listen(l, 16));
    return l;
}

static int vs_listen(uint32_t port)
{
    struct sockaddr_vm a = fx_vsock(VMADDR_CID_ANY, port);
    int l = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);

    CHECK_OK(l);
    CHECK_OK(hvsim_bind(l, (struct sockaddr *)&a, sizeof(a)));
    CHECK_OK(hvsim_listen(l, 16));
    return l;
}

static int hv_connect(const GUID *vm, const GUID *svc, int *err)
{
    SOCKADDR_HV a = fx_hv(vm, svc);
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

    CHECK_OK(s);
    *err = hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : errno;
    return s;
}

static void set_timeout(int s, uint32_t ms)
{
    CHECK_OK(hvsim_setsockopt(s, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &ms, sizeof(ms)));
}

static void set_vs_timeout(int s, uint32_t ms)
{
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

    CHECK_OK(hvsim_setsockopt(s, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv)));
}

static void echo_once(int c)
{
    char buf[256];
    ssize_t n = hvsim_recv(c, buf, sizeof(buf), 0);

    CHECK(n > 0);
    CHECK_EQ(hvsim_send(c, buf, (size_t)n, 0), n);
}

static void ping(int s, const char *text)
{
    char buf[256];
    size_t n = strlen(text);

    CHECK_EQ(hvsim_send(s, text, n, 0), (ssize_t)n);
    CHECK_EQ(hvsim_recv(s, buf, n, MSG_WAITALL), (ssize_t)n);
    CHECK(memcmp(buf, text, n) == 0);
}

static void check_hv_name(int s, int peer, const GUID *vm, const GUID *svc)
{
    SOCKADDR_HV a;
    socklen_t len = sizeof(a);

    memset(&a, 0xee, sizeof(a));
    CHECK_OK(peer ? hvsim_getpeername(s, (struct sockaddr *)&a, &len) : hvsim_getsockname(s, (struct sockaddr *)&a, &len));
    CHECK_EQ(len, 36);
    CHECK_EQ(a.Family, AF_HYPERV);
    CHECK_EQ(a.Reserved, 0);
    if (vm)
        CHECK(hvsim_guid_equal(&a.VmId, vm));
    if (svc)
        CHECK(hvsim_guid_equal(&a.ServiceId, svc));
}

struct args {
    struct fx_pipe p, q;
    GUID vm, svc, svc2;
    uint32_t port;
    int expect;
    uint32_t timeout;
};

/* ---- guest to host ---------------------------------------------------------------- */

static int guest_win_connect(void *v)
{
    struct args *a = v;
    int err, s;
    GUID self;

    fx_await(&a->p);
    s = hv_connect(&HV_GUID_PARENT, &a->svc, &err);
    CHECK_EQ(err, 0);
    ping(s, "hello from the guest");
    /* The guest dials {PARENT, svc} (reference 4.2). */
    CHECK_OK(hvsim_self(&self, NULL, 0));
    check_hv_name(s, 1, &HV_GUID_PARENT, &a->svc);
    check_hv_name(s, 0, &self, NULL);
    CHECK_OK(hvsim_close(s));
    return 0;
}

Test(connect, windows_guest_to_host_wildcard_listener)
{
    struct args a = { .svc = fx_svc(1) };
    int l, c;
    pid_t g;

    a.vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    fx_service(&F, &a.svc, "test service");
    fx_pipe_init(&a.p);
    l = hv_listen(&HV_GUID_WILDCARD, &a.svc);
    g = fx_spawn(&F, "vm1", guest_win_connect, &a);
    fx_signal(&a.p, 1);
    c = hvsim_accept(l, NULL, NULL);
    cr_assert_geq(c, 0, "accept: %s", strerror(errno));
    echo_once(c);
    /* Host-accepted connection: local {VM id, svc}, peer {VM id, guest svc} (4.2). */
    check_hv_name(c, 0, &a.vm, &a.svc);
    check_hv_name(c, 1, &a.vm, NULL);
    cr_assert_eq(fx_wait(g), 0);
    hvsim_close(c);
    hvsim_close(l);
}

static int guest_expect_refused(void *v)
{
    struct args *a = v;
    uint64_t t0 = fx_now_ms();
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    SOCKADDR_HV addr = fx_hv(&HV_GUID_PARENT, &a->svc);

    CHECK_OK(s);
    set_timeout(s, 2000);
    CHECK_ERR(hvsim_connect(s, (struct sockaddr *)&addr, sizeof(addr)), a->expect);
    /* "Immediate": well under a tenth of the configured timeout. */
    CHECK(fx_now_ms() - t0 < 200);
    return 0;
}

Test(connect, windows_guest_unregistered_service_refused)
{
    struct args a = { .svc = fx_svc(2), .expect = ECONNREFUSED };
    int l;

    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    l = hv_listen(&HV_GUID_WILDCARD, &a.svc);
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", guest_expect_refused, &a)), 0);
    hvsim_close(l);
}

Test(connect, windows_guest_no_listener_refused)
{
    struct args a = { .svc = fx_svc(3), .expect = ECONNREFUSED };

    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    fx_service(&F, &a.svc, "registered, nobody listens");
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", guest_expect_refused, &a)), 0);
}

static int linux_guest_expect(void *v)
{
    struct args *a = v;
    struct sockaddr_vm addr = fx_vsock(VMADDR_CID_HOST, a->port);
    int s = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);
    uint64_t t0, dt;

    CHECK_OK(s);
    if (a->timeout)
        set_vs_timeout(s, a->timeout);
    t0 = fx_now_ms();
    if (a->expect == 0) {
        CHECK_OK(hvsim_connect(s, (struct sockaddr *)&addr, sizeof(addr)));
        ping(s, "linux guest");
        {
            struct sockaddr_vm peer, self;
            socklen_t len = sizeof(peer);

            CHECK_OK(hvsim_getpeername(s, (struct sockaddr *)&peer, &len));
            CHECK_EQ(peer.svm_cid, VMADDR_CID_HOST);
            CHECK_EQ(peer.svm_port, a->port);
            len = sizeof(self);
            CHECK_OK(hvsim_getsockname(s, (struct sockaddr *)&self, &len));
            /* hv_sock's local CID is VMADDR_CID_ANY (reference 3.1). */
            CHECK_EQ(self.svm_cid, VMADDR_CID_ANY);
            CHECK(self.svm_port > 1023);
        }
        return 0;
    }
    CHECK_ERR(hvsim_connect(s, (struct sockaddr *)&addr, sizeof(addr)), a->expect);
    dt = fx_now_ms() - t0;
    if (a->expect == ETIMEDOUT) {
        CHECK(dt >= a->timeout);
        CHECK(dt < a->timeout + 1000);
    } else {
        CHECK(dt < 200);
    }
    return 0;
}

Test(connect, linux_guest_to_host_registered)
{
    struct args a = { .port = 5000, .expect = 0 };
    GUID svc = hvsim_guid_from_port(5000);
    int l, c;
    pid_t g;

    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    fx_service(&F, &svc, "port 5000");
    l = hv_listen(&HV_GUID_WILDCARD, &svc);
    g = fx_spawn(&F, "vm1", linux_guest_expect, &a);
    c = hvsim_accept(l, NULL, NULL);
    cr_assert_geq(c, 0);
    echo_once(c);
    cr_assert_eq(fx_wait(g), 0);
}

/* A guest binds its port, connects (once accepted, once unanswered) and
 * closes: each close gives the port back, so the same bind works again. */
static int linux_guest_rebinds(void *v)
{
    struct args *a = v;
    uint32_t targets[2] = { a->port, a->port + 1 }; /* registered and listened on; unregistered */
    int round;

    for (round = 0; round < 3; round++) {
        struct sockaddr_vm me = fx_vsock(VMADDR_CID_ANY, 5555), host = fx_vsock(VMADDR_CID_HOST, targets[round & 1]);
        int s = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);

        CHECK_OK(s);
        CHECK_OK(hvsim_bind(s, (struct sockaddr *)&me, sizeof(me)));
        set_vs_timeout(s, 100);
        if (round & 1) {
            CHECK_ERR(hvsim_connect(s, (struct sockaddr *)&host, sizeof(host)), ETIMEDOUT);
        } else {
            CHECK_OK(hvsim_connect(s, (struct sockaddr *)&host, sizeof(host)));
            ping(s, "from port 5555");
        }
        CHECK_OK(hvsim_close(s));
    }
    return 0;
}

Test(connect, linux_guest_port_is_free_again_after_close)
{
    struct args a = { .port = 5010 };
    GUID svc = hvsim_guid_from_port(5010);
    int l, i;
    pid_t g;

    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    fx_service(&F, &svc, "port 5010");
    l = hv_listen(&HV_GUID_WILDCARD, &svc);
    g = fx_spawn(&F, "vm1", linux_guest_rebinds, &a);
    for (i = 0; i < 2; i++) {
        SOCKADDR_HV peer;
        socklen_t len = sizeof(peer);
        int c = hvsim_accept(l, (struct sockaddr *)&peer, &len);
        uint32_t port = 0;

        cr_assert_geq(c, 0);
        cr_assert(hvsim_guid_to_port(&peer.ServiceId, &port) && port == 5555, "the guest's own port, got %u", port);
        echo_once(c);
        hvsim_close(c);
    }
    cr_assert_eq(fx_wait(g), 0);
    hvsim_close(l);
}

Test(connect, linux_guest_unregistered_times_out)
{
    struct args a = { .port = 5001, .expect = ETIMEDOUT, .timeout = 300 };
    GUID svc = hvsim_guid_from_port(5001);
    int l = hv_listen(&HV_GUID_WILDCARD, &svc);

    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", linux_guest_expect, &a)), 0);
    hvsim_close(l);
}

Test(connect, linux_guest_no_listener_kvm_profile_resets)
{
    struct args a = { .port = 5002, .expect = ECONNRESET, .timeout = 2000 };
    GUID svc = hvsim_guid_from_port(5002);

    fx_set(&F, "refusal_profile", "kvm");
    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    fx_service(&F, &svc, "registered");
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", linux_guest_expect, &a)), 0);
}

/*
 * A listener that is gone by the time the connector reaches it (closed after
 * the daemon routed to it) must give what no listener gives. Closing the fd
 * with plain close() leaves the daemon's record of it, so every connect is
 * routed to a listener that has vanished: deterministic, no race to win.
 */
static void vanished_listener(uint32_t port, const char *profile, int expect, uint32_t timeout)
{
    struct args a = { .port = port, .expect = expect, .timeout = timeout };
    GUID svc = hvsim_guid_from_port(port);
    int l;

    fx_set(&F, "refusal_profile", profile);
    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    fx_service(&F, &svc, "registered");
    l = hv_listen(&HV_GUID_WILDCARD, &svc);
    cr_assert_eq(close(l), 0);
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", linux_guest_expect, &a)), 0);
}

/* The kernel's virtio transport answers a request nobody takes with RST:
 * ECONNRESET, whether the listener was missing before routing (above) or
 * vanished after it. */
Test(connect, linux_guest_vanished_listener_kvm_profile_resets)
{
    vanished_listener(5005, "kvm", ECONNRESET, 2000);
}

Test(connect, linux_guest_vanished_listener_hyperv_profile_times_out)
{
    vanished_listener(5006, "hyperv", ETIMEDOUT, 300);
}

static int linux_guest_cid(void *v)
{
    struct args *a = v;
    struct sockaddr_vm addr = fx_vsock(a->port, 5003);
    int s = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);
    uint32_t cid = 0;

    CHECK_OK(s);
    /* Only CID 2 is reachable from hv_sock: ENETUNREACH (reference 3.1, 3.3). */
    CHECK_ERR(hvsim_connect(s, (struct sockaddr *)&addr, sizeof(addr)), ENETUNREACH);
    CHECK_OK(hvsim_get_local_cid(&cid));
    CHECK_EQ(cid, VMADDR_CID_ANY);
    return 0;
}

Test(connect, linux_guest_cid_other_than_host_unreachable)
{
    struct args a = { .port = VMADDR_CID_LOCAL };

    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", linux_guest_cid, &a)), 0);
    a.port = 3;
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", linux_guest_cid, &a)), 0);
}

/* ---- host to guest ---------------------------------------------------------------- */

static int guest_linux_listener(void *v)
{
    struct args *a = v;
    struct sockaddr_vm peer;
    socklen_t len = sizeof(peer);
    int l = vs_listen(a->port), c;

    fx_signal(&a->p, 1);
    c = hvsim_accept(l, (struct sockaddr *)&peer, &len);
    CHECK_OK(c);
    CHECK_EQ(len, sizeof(peer));
    CHECK_EQ(peer.svm_cid, VMADDR_CID_HOST);
    echo_once(c);
    return 0;
}

Test(connect, host_to_linux_guest_by_vmid_and_port)
{
    struct args a = { .port = 7000 };
    GUID svc = hvsim_guid_from_port(7000);
    int err, s;
    pid_t g;

    fx_pipe_init(&a.p);
    a.vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    g = fx_spawn(&F, "vm1", guest_linux_listener, &a);
    fx_await(&a.p);
    /* No registration is needed when the guest listens (reference 2.2). */
    s = hv_connect(&a.vm, &svc, &err);
    cr_assert_eq(err, 0, "connect: %s", hvsim_err_name(err));
    ping(s, "host to guest");
    check_hv_name(s, 1, &a.vm, &svc);
    cr_assert_eq(fx_wait(g), 0);
}

/* A guest that starts listening 300 ms after the host asked: no earlier. */
static int late_guest_listener(void *v)
{
    struct args *a = v;
    int l, c;

    fx_await(&a->p); /* the host is about to connect */
    usleep(300 * 1000);
    l = vs_listen(a->port);
    c = hvsim_accept(l, NULL, NULL);
    CHECK_OK(c);
    echo_once(c);
    return 0;
}

/* hyperv-sockets.md 7 (item 1, openvmm PR 2485): a host's blocking connect
 * to a guest service nobody listens on waits; a listener that appears before
 * the timeout completes it. A non-blocking one still times out. */
Test(connect, host_connect_waits_for_a_late_guest_listener)
{
    struct args a = { .port = 7100 };
    GUID svc = hvsim_guid_from_port(7100);
    SOCKADDR_HV sa;
    uint32_t ms = 2000;
    uint64_t t0, dt;
    pid_t g;
    int s;

    fx_pipe_init(&a.p);
    a.vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    g = fx_spawn(&F, "vm1", late_guest_listener, &a);
    s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    cr_assert_eq(hvsim_setsockopt(s, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &ms, sizeof(ms)), 0);
    sa = fx_hv(&a.vm, &svc);
    fx_signal(&a.p, 1);
    t0 = fx_now_ms();
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s", hvsim_err_name(errno));
    dt = fx_now_ms() - t0;
    cr_assert_geq(dt, 250, "it did not wait for the listener (%llu ms)", (unsigned long long)dt);
    cr_assert_lt(dt, 1500, "it waited past the listener (%llu ms)", (unsigned long long)dt);
    ping(s, "late listener");
    cr_assert_eq(fx_wait(g), 0);
    hvsim_close(s);
}

Test(connect, host_to_guest_no_listener_times_out)
{
    GUID vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC), svc = fx_svc(4);
    SOCKADDR_HV a = fx_hv(&vm, &svc);
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    uint32_t ms = 250;
    uint64_t t0;

    cr_assert_geq(s, 0);
    cr_assert_eq(hvsim_setsockopt(s, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &ms, sizeof(ms)), 0);
    t0 = fx_now_ms();
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)), -1);
    cr_assert_eq(errno, ETIMEDOUT, "got %s", hvsim_err_name(errno));
    cr_assert_eq(hvsim_get_last_error(), 10060);
    cr_assert_geq(fx_now_ms() - t0, 250);
    cr_assert_lt(fx_now_ms() - t0, 1250);
}

Test(connect, host_to_guest_no_listener_kvm_profile_resets)
{
    GUID vm, svc = fx_svc(5);
    SOCKADDR_HV a;
    int s;
    uint64_t t0;

    fx_set(&F, "refusal_profile", "kvm");
    vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    a = fx_hv(&vm, &svc);
    s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    t0 = fx_now_ms();
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)), -1);
    cr_assert_eq(errno, ECONNRESET, "got %s", hvsim_err_name(errno));
    cr_assert_lt(fx_now_ms() - t0, 200);
}

Test(connect, host_to_wildcard_children_broadcast_not_a_destination)
{
    const GUID *targets[] = { &HV_GUID_WILDCARD, &HV_GUID_CHILDREN, &HV_GUID_BROADCAST };
    GUID svc = fx_svc(6);
    size_t i;

    for (i = 0; i < 3; i++) {
        SOCKADDR_HV a = fx_hv(targets[i], &svc);
        int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

        cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)), -1);
        cr_assert_eq(errno, EADDRNOTAVAIL, "target %zu: %s", i, hvsim_err_name(errno));
        cr_assert_eq(hvsim_get_last_error(), 10049);
        hvsim_close(s);
    }
}

Test(connect, host_to_unknown_and_off_vm)
{
    GUID vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC), unknown = fx_svc(99), svc = fx_svc(7);
    SOCKADDR_HV a = fx_hv(&unknown, &svc);
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)), -1);
    cr_assert_eq(errno, ENETUNREACH, "got %s", hvsim_err_name(errno));
    fx_vm_op(&F, "vm1", "off");
    a = fx_hv(&vm, &svc);
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)), -1);
    cr_assert_eq(errno, ENETUNREACH, "got %s", hvsim_err_name(errno));
    cr_assert_eq(hvsim_get_last_error(), 10051);
}

/* ---- loopback (reference 4.1) ------------------------------------------------------ */

Test(connect, loopback_no_listener_refused_immediately)
{
    GUID svc = fx_svc(8);
    uint64_t t0 = fx_now_ms();
    int err, s = hv_connect(&HV_GUID_LOOPBACK, &svc, &err);

    cr_assert_eq(err, ECONNREFUSED, "got %s", hvsim_err_name(err));
    cr_assert_eq(hvsim_get_last_error(), 10061);
    cr_assert_lt(fx_now_ms() - t0, 200);
    hvsim_close(s);
}

Test(connect, loopback_addresses)
{
    GUID svc = fx_svc(9);
    int l = hv_listen(&HV_GUID_LOOPBACK, &svc), err, s, c;
    SOCKADDR_HV client;
    socklen_t len = sizeof(client);

    s = hv_connect(&HV_GUID_LOOPBACK, &svc, &err);
    cr_assert_eq(err, 0);
    c = hvsim_accept(l, NULL, NULL);
    cr_assert_geq(c, 0);
    /* go-winio: client {CHILDREN, its svc}, peer = dialed; server {CHILDREN, svc}, peer {LOOPBACK, client svc}. */
    cr_assert_eq(hvsim_getsockname(s, (struct sockaddr *)&client, &len), 0);
    cr_assert(hvsim_guid_equal(&client.VmId, &HV_GUID_CHILDREN));
    check_hv_name(s, 1, &HV_GUID_LOOPBACK, &svc);
    check_hv_name(c, 0, &HV_GUID_CHILDREN, &svc);
    check_hv_name(c, 1, &HV_GUID_LOOPBACK, &client.ServiceId);
}

Test(connect, duplicate_listener_addrinuse)
{
    GUID svc = fx_svc(10);
    SOCKADDR_HV a = fx_hv(&HV_GUID_WILDCARD, &svc);
    int l = hv_listen(&HV_GUID_WILDCARD, &svc);
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

    cr_assert_eq(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)), -1);
    cr_assert_eq(errno, EADDRINUSE);
    cr_assert_eq(hvsim_get_last_error(), 10048);
    /* Closing the first frees the address. */
    hvsim_close(l);
    cr_assert_eq(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)), 0, "%s", hvsim_err_name(errno));
}

/* ---- precedence, siblings, zero GUID ------------------------------------------------ */

static int guest_win_expect_which(void *v)
{
    struct args *a = v;
    int err, s = hv_connect(&HV_GUID_PARENT, &a->svc, &err);
    char which = 0;

    CHECK_EQ(err, 0);
    CHECK_EQ(hvsim_recv(s, &which, 1, 0), 1);
    return which;
}

static int accept_and_tell(int l, char which)
{
    int c = hvsim_accept4(l, NULL, NULL, SOCK_NONBLOCK);

    if (c < 0)
        return -1;
    hvsim_send(c, &which, 1, 0);
    hvsim_close(c);
    return 0;
}

Test(connect, exact_vmid_beats_children_beats_wildcard)
{
    struct args a = { .svc = fx_svc(11) };
    GUID vm;
    int lw, lc, le;
    pid_t g;

    vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    fx_service(&F, &a.svc, "precedence");
    lw = hv_listen(&HV_GUID_WILDCARD, &a.svc);
    lc = hv_listen(&HV_GUID_CHILDREN, &a.svc);
    le = hv_listen(&vm, &a.svc);
    g = fx_spawn(&F, "vm1", guest_win_expect_which, &a);
    cr_assert_eq(accept_and_tell(le, 'e'), 0);
    cr_assert_eq(fx_wait(g), 'e');
    hvsim_close(le);
    g = fx_spawn(&F, "vm1", guest_win_expect_which, &a);
    cr_assert_eq(accept_and_tell(lc, 'c'), 0);
    cr_assert_eq(fx_wait(g), 'c');
    hvsim_close(lc);
    g = fx_spawn(&F, "vm1", guest_win_expect_which, &a);
    cr_assert_eq(accept_and_tell(lw, 'w'), 0);
    cr_assert_eq(fx_wait(g), 'w');
}

static int guest_to_sibling(void *v)
{
    struct args *a = v;
    int err, s = hv_connect(&a->vm, &a->svc, &err);

    CHECK_EQ(err, ENETUNREACH);
    CHECK_EQ(hvsim_get_last_error(), 10051);
    hvsim_close(s);
    /* CHILDREN and the wildcard are no destination from a guest either. */
    s = hv_connect(&HV_GUID_CHILDREN, &a->svc, &err);
    CHECK_EQ(err, EADDRNOTAVAIL);
    return 0;
}

Test(connect, guest_cannot_reach_sibling)
{
    struct args a = { .svc = fx_svc(12) };

    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    a.vm = fx_vm(&F, "vm2", HVSIM_VM_CLASSIC);
    fx_pipe_init(&a.p);
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", guest_to_sibling, &a)), 0);
}

static int guest_zero(void *v)
{
    struct args *a = v;
    int err, s = hv_connect(&HV_GUID_ZERO, &a->svc, &err);

    CHECK_EQ(err, a->expect);
    if (err == 0)
        ping(s, "zero");
    return 0;
}

Test(connect, guest_zero_vmid_reaches_host_by_default)
{
    struct args a = { .svc = fx_svc(13), .expect = 0 };
    int l = hv_listen(&HV_GUID_WILDCARD, &a.svc), c;
    pid_t g;

    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    fx_service(&F, &a.svc, "zero");
    g = fx_spawn(&F, "vm1", guest_zero, &a);
    c = hvsim_accept(l, NULL, NULL);
    cr_assert_geq(c, 0);
    echo_once(c);
    cr_assert_eq(fx_wait(g), 0);
    fx_set(&F, "guest_zero_vmid_reaches_host", "0");
    a.expect = EADDRNOTAVAIL;
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", guest_zero, &a)), 0);
}

/* ---- registry ------------------------------------------------------------------------ */

Test(connect, registration_removed_refuses_new_connections)
{
    struct args a = { .svc = fx_svc(14), .expect = ECONNREFUSED };
    int l = hv_listen(&HV_GUID_WILDCARD, &a.svc), c;
    pid_t g;

    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    fx_service(&F, &a.svc, "soon gone");
    fx_pipe_init(&a.p);
    g = fx_spawn(&F, "vm1", guest_win_connect, &a);
    fx_signal(&a.p, 1);
    c = hvsim_accept(l, NULL, NULL);
    cr_assert_geq(c, 0);
    echo_once(c);
    cr_assert_eq(fx_wait(g), 0);
    cr_assert_eq(hvsim_admin_service_rm(F.admin, &a.svc), 0);
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", guest_expect_refused, &a)), 0);
}

/* ---- HCS VMs (reference 2.4, 4.2) ------------------------------------------------------ */

Test(connect, hcs_wildcard_listener_needs_allow_wildcard_binds)
{
    struct args a = { .svc = fx_svc(15), .expect = ECONNREFUSED };
    hvsim_hcs_service_t h = { .id = fx_svc(15), .allow_wildcard_binds = 1 };
    int l = hv_listen(&HV_GUID_WILDCARD, &a.svc), c;
    pid_t g;

    fx_vm(&F, "wsl", HVSIM_VM_HCS);
    /* The registry is not consulted for HCS VMs: registering changes nothing. */
    fx_service(&F, &a.svc, "registered but irrelevant");
    cr_assert_eq(fx_wait(fx_spawn(&F, "wsl", guest_expect_refused, &a)), 0);
    cr_assert_eq(hvsim_admin_hcs_set(F.admin, "wsl", &h), 0, "%s", hvsim_admin_errmsg(F.admin));
    fx_pipe_init(&a.p);
    g = fx_spawn(&F, "wsl", guest_win_connect, &a);
    fx_signal(&a.p, 1);
    c = hvsim_accept(l, NULL, NULL);
    cr_assert_geq(c, 0);
    echo_once(c);
    cr_assert_eq(fx_wait(g), 0);
}

Test(connect, hcs_exact_listener_without_registration)
{
    struct args a = { .svc = fx_svc(16) };
    GUID vm = fx_vm(&F, "wsl", HVSIM_VM_HCS);
    int l = hv_listen(&vm, &a.svc), c;
    pid_t g;

    fx_pipe_init(&a.p);
    g = fx_spawn(&F, "wsl", guest_win_connect, &a);
    fx_signal(&a.p, 1);
    c = hvsim_accept(l, NULL, NULL);
    cr_assert_geq(c, 0);
    echo_once(c);
    cr_assert_eq(fx_wait(g), 0);
}

Test(connect, hcs_bind_deny_disabled_connect_deny)
{
    GUID vm = fx_vm(&F, "wsl", HVSIM_VM_HCS), s1 = fx_svc(17), s2 = fx_svc(18), s3 = fx_svc(19), s4 = fx_svc(20);
    hvsim_hcs_service_t deny = { .id = s1, .bind_deny = 1 }, dis = { .id = s2, .disabled = 1 };
    hvsim_hcs_service_t cdeny = { .id = s3, .connect_deny = 1 }, cdis = { .id = s4, .disabled = 1 };
    SOCKADDR_HV a;
    int s, err;

    cr_assert_eq(hvsim_admin_hcs_set(F.admin, "wsl", &deny), 0);
    cr_assert_eq(hvsim_admin_hcs_set(F.admin, "wsl", &dis), 0);
    cr_assert_eq(hvsim_admin_hcs_set(F.admin, "wsl", &cdeny), 0);
    cr_assert_eq(hvsim_admin_hcs_set(F.admin, "wsl", &cdis), 0);
    s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    a = fx_hv(&vm, &s1);
    /* A denying BindSecurityDescriptor: the bind goes through, the listen
     * fails with WSAEACCES (hyperv-sockets.md 7, item 4). */
    cr_assert_eq(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(hvsim_listen(s, 4), -1);
    cr_assert_eq(errno, EACCES);
    cr_assert_eq(hvsim_get_last_error(), 10013);
    hvsim_close(s);
    s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    /* Disabled: the bind "succeeds", listen() says WSAEINVAL. */
    a = fx_hv(&vm, &s2);
    cr_assert_eq(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(hvsim_listen(s, 4), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(hvsim_get_last_error(), 10022);
    hvsim_close(s);
    s = hv_connect(&vm, &s3, &err);
    cr_assert_eq(err, EACCES, "got %s", hvsim_err_name(err));
    hvsim_close(s);
    s = hv_connect(&vm, &s4, &err);
    cr_assert_eq(err, EINVAL, "got %s", hvsim_err_name(err));
}

/* The guest of an HCS VM: listens on two services and echoes on each
 * connection until it ends. */
static int hcs_two_services_guest(void *v)
{
    struct args *a = v;
    int l1 = hv_listen(&HV_GUID_PARENT, &a->svc), l2 = hv_listen(&HV_GUID_PARENT, &a->svc2), c1, c2;

    fx_signal(&a->p, 1);
    c1 = hvsim_accept(l1, NULL, NULL);
    c2 = hvsim_accept(l2, NULL, NULL);
    CHECK_OK(c1);
    CHECK_OK(c2);
    echo_once(c1);
    echo_once(c2);
    echo_once(c2);
    fx_await(&a->q);
    return 0;
}

/* hyperv-sockets.md 7 (item 4, the HCS schema's comment): turning a service
 * Disabled also cancels its established connections; another service's
 * connection carries on. */
Test(connect, hcs_disabled_cancels_established_connections)
{
    struct args a = { .svc = fx_svc(30), .svc2 = fx_svc(31) };
    hvsim_hcs_service_t dis = { .id = a.svc, .disabled = 1 };
    int s1, s2, err;
    char c = 0;
    pid_t g;

    fx_pipe_init(&a.p);
    fx_pipe_init(&a.q);
    a.vm = fx_vm(&F, "wsl", HVSIM_VM_HCS);
    g = fx_spawn(&F, "wsl", hcs_two_services_guest, &a);
    fx_await(&a.p);
    s1 = hv_connect(&a.vm, &a.svc, &err);
    cr_assert_eq(err, 0, "%s", hvsim_err_name(err));
    s2 = hv_connect(&a.vm, &a.svc2, &err);
    cr_assert_eq(err, 0, "%s", hvsim_err_name(err));
    ping(s1, "before");
    ping(s2, "before");
    cr_assert_eq(hvsim_admin_hcs_set(F.admin, "wsl", &dis), 0);
    {
        struct pollfd p = { .fd = s1, .events = POLLIN };

        cr_assert_eq(poll(&p, 1, 2000), 1, "the disabled service's connection did not end");
    }
    cr_assert_leq(hvsim_recv(s1, &c, 1, 0), 0, "the disabled service's connection still carries data");
    ping(s2, "after");
    fx_signal(&a.q, 1);
    cr_assert_eq(fx_wait(g), 0);
    hvsim_close(s1);
    hvsim_close(s2);
}

/* ---- addresses and options ---------------------------------------------------------------- */

Test(connect, malformed_addresses)
{
    GUID svc = fx_svc(21);
    SOCKADDR_HV a = fx_hv(&HV_GUID_WILDCARD, &svc);
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

    cr_assert_eq(hvsim_bind(s, (struct sockaddr *)&a, 35), -1);
    cr_assert_eq(errno, EFAULT);
    cr_assert_eq(hvsim_get_last_error(), 10014);
    a.Family = AF_INET;
    cr_assert_eq(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)), -1);
    cr_assert_eq(errno, EAFNOSUPPORT);
    cr_assert_eq(hvsim_get_last_error(), 10047);
    a.Family = AF_HYPERV;
    a.Reserved = 1;
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)), -1);
    cr_assert_eq(errno, EINVAL);
    /* Nothing was bound by the failed calls. */
    a.Reserved = 0;
    cr_assert_eq(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)), -1);
    cr_assert_eq(errno, EINVAL);
}

Test(connect, socket_arguments)
{
    cr_assert_eq(hvsim_socket(AF_HYPERV, SOCK_STREAM, 0), -1);
    cr_assert_eq(errno, EPROTOTYPE);
    cr_assert_eq(hvsim_get_last_error(), 10041);
    cr_assert_eq(hvsim_socket(AF_HYPERV, SOCK_DGRAM, HV_PROTOCOL_RAW), -1);
    cr_assert_eq(errno, ESOCKTNOSUPPORT);
    cr_assert_eq(hvsim_socket(AF_INET, SOCK_STREAM, 0), -1);
    cr_assert_eq(errno, EAFNOSUPPORT);
    cr_assert_eq(hvsim_socket(AF_VSOCK, SOCK_DGRAM, 0), -1);
    cr_assert_eq(errno, ENODEV);
}

Test(connect, connect_timeout_option_limits)
{
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    uint32_t v = HVSOCKET_CONNECT_TIMEOUT_MAX + 1, got = 0;
    socklen_t len = sizeof(got);

    cr_assert_eq(hvsim_getsockopt(s, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &got, &len), 0);
    cr_assert_eq(got, 2000, "default %u", got);
    cr_assert_eq(hvsim_setsockopt(s, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &v, sizeof(v)), -1);
    cr_assert_eq(errno, EINVAL);
    v = HVSOCKET_CONNECT_TIMEOUT_MAX;
    cr_assert_eq(hvsim_setsockopt(s, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &v, sizeof(v)), 0);
    cr_assert_eq(hvsim_getsockopt(s, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &got, &len), 0);
    cr_assert_eq(got, HVSOCKET_CONNECT_TIMEOUT_MAX);
    cr_assert_eq(hvsim_setsockopt(s, HV_PROTOCOL_RAW, 0x77, &v, sizeof(v)), -1);
    cr_assert_eq(errno, ENOPROTOOPT);
    hvsim_close(s);
}

/* The default a socket reports is the daemon's setting, whatever it is: the
 * library keeps no default of its own. */
Test(connect, default_timeouts_come_from_the_daemon)
{
    struct timeval tv = { 0 };
    socklen_t len = sizeof(tv);
    uint32_t got = 0;
    int v, h;

    fx_set(&F, "linux_connect_timeout_ms", "1500");
    fx_set(&F, "windows_connect_timeout_ms", "2500");
    v = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);
    h = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    cr_assert_geq(v, 0);
    cr_assert_geq(h, 0);
    cr_assert_eq(hvsim_getsockopt(v, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW, &tv, &len), 0);
    cr_assert(tv.tv_sec == 1 && tv.tv_usec == 500000, "%ld.%06ld s vs 1.5 s", (long)tv.tv_sec, (long)tv.tv_usec);
    len = sizeof(got);
    cr_assert_eq(hvsim_getsockopt(h, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &got, &len), 0);
    cr_assert_eq(got, 2500, "%u vs 2500", got);
    /* With the daemon gone there is no default to report: an error, not a
     * number made up on the spot (the library once answered 2 s). */
    fx_kill_daemon(&F);
    len = sizeof(tv);
    cr_assert_eq(hvsim_getsockopt(v, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW, &tv, &len), -1);
    cr_assert_eq(errno, ENETDOWN, "%s", hvsim_err_name(errno));
    hvsim_close(v);
    hvsim_close(h);
}

Test(connect, connect_timeout_clamp_setting)
{
    int s;
    uint32_t v = 400000, got = 0;
    socklen_t len = sizeof(got);

    fx_set(&F, "connect_timeout_above_max", "clamp");
    /* The setting reaches a process when it attaches: use a fresh one. */
    s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    cr_assert_eq(hvsim_setsockopt(s, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &v, sizeof(v)), 0);
    cr_assert_eq(hvsim_getsockopt(s, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &got, &len), 0);
    cr_assert_eq(got, HVSOCKET_CONNECT_TIMEOUT_MAX);
}

/* ---- the Linux personality's bind rules (reference 3.1) --------------------------------- */

#include <linux/capability.h>
#include <sys/syscall.h>

static int guest_linux_bind_rules(void *v)
{
    struct sockaddr_vm a;
    int s = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0), s2;
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];

    (void)v;
    CHECK_OK(s);
    /* hv_sock's local CID is VMADDR_CID_ANY: binding anything else fails. */
    a = fx_vsock(VMADDR_CID_HOST, 4000);
    CHECK_ERR(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)), EADDRNOTAVAIL);
    a = fx_vsock(VMADDR_CID_ANY, 4000);
    CHECK_ERR(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a) - 1), EINVAL);
    CHECK_OK(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)));
    /* One port namespace per partition. */
    s2 = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);
    CHECK_ERR(hvsim_bind(s2, (struct sockaddr *)&a, sizeof(a)), EADDRINUSE);
    /* VMADDR_PORT_ANY picks a port above the reserved range. */
    a = fx_vsock(VMADDR_CID_ANY, VMADDR_PORT_ANY);
    CHECK_OK(hvsim_bind(s2, (struct sockaddr *)&a, sizeof(a)));
    {
        socklen_t len = sizeof(a);

        CHECK_OK(hvsim_getsockname(s2, (struct sockaddr *)&a, &len));
        CHECK(a.svm_port > 1023 && a.svm_port != VMADDR_PORT_ANY);
        CHECK_EQ(a.svm_cid, VMADDR_CID_ANY);
    }
    /* Ports <= 1023 need CAP_NET_BIND_SERVICE: drop it and see EACCES. */
    CHECK(syscall(SYS_capget, &h, d) == 0);
    d[0].effective &= ~(1u << CAP_NET_BIND_SERVICE);
    CHECK(syscall(SYS_capset, &h, d) == 0);
    s = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);
    a = fx_vsock(VMADDR_CID_ANY, 80);
    CHECK_ERR(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)), EACCES);
    a = fx_vsock(VMADDR_CID_ANY, 1024);
    CHECK_OK(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)));
    return 0;
}

Test(connect, linux_guest_bind_rules)
{
    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", guest_linux_bind_rules, NULL)), 0);
}

/* ---- the KVM world: a host process reaches a VM by its CID --------------------------------- */

Test(connect, host_vsock_reaches_linux_guest_by_cid)
{
    struct args a = { .port = 7100 };
    hvsim_vm_info_t *vms;
    size_t n;
    struct sockaddr_vm to;
    int s;
    pid_t g;

    fx_pipe_init(&a.p);
    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    cr_assert_eq(hvsim_admin_vm_list(F.admin, &vms, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_geq(vms[0].cid, 3);
    g = fx_spawn(&F, "vm1", guest_linux_listener, &a);
    fx_await(&a.p);
    s = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);
    cr_assert_geq(s, 0);
    to = fx_vsock(vms[0].cid, 7100);
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&to, sizeof(to)), 0, "%s", hvsim_err_name(errno));
    ping(s, "kvm style");
    {
        struct sockaddr_vm peer;
        socklen_t len = sizeof(peer);

        cr_assert_eq(hvsim_getpeername(s, (struct sockaddr *)&peer, &len), 0);
        cr_assert_eq(peer.svm_cid, vms[0].cid);
        cr_assert_eq(peer.svm_port, 7100);
    }
    cr_assert_eq(fx_wait(g), 0);
    /* An unknown CID is answered with RST, as vhost-vsock does. */
    hvsim_close(s);
    s = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);
    to = fx_vsock(vms[0].cid + 100, 7100);
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&to, sizeof(to)), -1);
    cr_assert_eq(errno, ECONNRESET, "got %s", hvsim_err_name(errno));
    free(vms);
}
