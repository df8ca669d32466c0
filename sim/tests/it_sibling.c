/* SPDX-License-Identifier: MIT */
/*
 * it_sibling.c: integration tests of sibling groups (issue 13; vm add
 * --group): guests of two virtio VMs that share a group connect to each other
 * by CID, in both directions, exchange bytes both ways, and see the addresses
 * a real sibling connection shows (each end's peer is the other VM's CID, its
 * local CID its own); a virtio VM outside the group is dropped (its connect
 * times out) and an hv_sock guest keeps ENETUNREACH.
 * docs/reference/vsock-virtio.md 7.8 has the sources.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

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

TestSuite(sibling, .init = setup, .fini = teardown, .timeout = 30);

static uint32_t vm_grouped(const char *name, uint32_t transport, const char *groups)
{
    hvsim_vm_info_t info;
    int rc = hvsim_admin_vm_add_grouped(F.admin, name, NULL, HVSIM_VM_CLASSIC, transport, HVSIM_KERNEL_6_12, NULL,
                                        groups, &info);

    cr_assert_eq(rc, 0, "vm add %s: %s", name, hvsim_admin_errmsg(F.admin));
    cr_assert_str_eq(info.groups, groups ? groups : "");
    return info.cid;
}

struct pair {
    uint32_t port; /* the listener's */
    uint32_t lcid, ccid; /* the listener's VM's CID, the connector's */
    struct fx_pipe ready; /* the listener listens */
    struct fx_pipe cport; /* the connector's local port, as its getsockname says */
};

/* One name of s; svm_flags is VMADDR_FLAG_TO_HOST on an accepted sibling's
 * peer (vsock_assign_transport), 0 everywhere else here. */
static void addr_is(int s, int peer, uint32_t cid, uint32_t port, uint8_t flags)
{
    struct sockaddr_vm a;
    socklen_t len = sizeof(a);

    memset(&a, 0xa5, sizeof(a));
    CHECK_OK(peer ? hvsim_getpeername(s, (struct sockaddr *)&a, &len) : hvsim_getsockname(s, (struct sockaddr *)&a, &len));
    CHECK_EQ(len, sizeof(a));
    CHECK_EQ(a.svm_family, AF_VSOCK);
    CHECK_EQ(a.svm_cid, cid);
    if (port != VMADDR_PORT_ANY)
        CHECK_EQ(a.svm_port, port);
    CHECK_EQ(a.svm_flags, flags);
}

static int sib_listener(void *v)
{
    struct pair *p = v;
    struct sockaddr_vm a = fx_vsock(VMADDR_CID_ANY, p->port), from;
    socklen_t len = sizeof(from);
    int l = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0), c;
    uint32_t cport;
    char buf[16];

    CHECK_OK(l);
    CHECK_OK(hvsim_bind(l, (struct sockaddr *)&a, sizeof(a)));
    CHECK_OK(hvsim_listen(l, 4));
    fx_signal(&p->ready, 1);
    c = hvsim_accept(l, (struct sockaddr *)&from, &len);
    CHECK_OK(c);
    cport = fx_await(&p->cport);
    /* accept's address and getpeername: the connector's CID and port. */
    CHECK_EQ(from.svm_cid, p->ccid);
    CHECK_EQ(from.svm_port, cport);
    CHECK_EQ(from.svm_flags, VMADDR_FLAG_TO_HOST);
    addr_is(c, 1, p->ccid, cport, VMADDR_FLAG_TO_HOST);
    addr_is(c, 0, p->lcid, p->port, 0);
    CHECK_EQ(hvsim_recv(c, buf, 4, MSG_WAITALL), 4);
    CHECK_EQ(memcmp(buf, "ping", 4), 0);
    CHECK_EQ(hvsim_send(c, "pong!", 5, 0), 5);
    CHECK_EQ(hvsim_recv(c, buf, sizeof(buf), 0), 0);
    hvsim_close(c);
    hvsim_close(l);
    return 0;
}

static int sib_connector(void *v)
{
    struct pair *p = v;
    struct sockaddr_vm a = fx_vsock(p->lcid, p->port), me;
    socklen_t len = sizeof(me);
    int s;
    char buf[16];

    fx_await(&p->ready);
    s = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);
    CHECK_OK(s);
    CHECK_OK(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)));
    addr_is(s, 1, p->lcid, p->port, 0);
    CHECK_OK(hvsim_getsockname(s, (struct sockaddr *)&me, &len));
    CHECK_EQ(me.svm_cid, p->ccid);
    CHECK(me.svm_port != VMADDR_PORT_ANY);
    fx_signal(&p->cport, me.svm_port);
    CHECK_EQ(hvsim_send(s, "ping", 4, 0), 4);
    CHECK_EQ(hvsim_recv(s, buf, 5, MSG_WAITALL), 5);
    CHECK_EQ(memcmp(buf, "pong!", 5), 0);
    hvsim_close(s);
    return 0;
}

/* The listener in VM lvm, the connector in VM cvm. */
static void pair_case(const char *lvm, uint32_t lcid, const char *cvm, uint32_t ccid, uint32_t port)
{
    struct pair p = { .port = port, .lcid = lcid, .ccid = ccid };
    pid_t l, c;

    fx_pipe_init(&p.ready);
    fx_pipe_init(&p.cport);
    l = fx_spawn(&F, lvm, sib_listener, &p);
    c = fx_spawn(&F, cvm, sib_connector, &p);
    if (fx_wait(c) != 0) {
        /* Its listener would wait in accept for good. */
        kill(l, SIGKILL);
        fx_wait(l);
        cr_assert_fail("the connector in %s failed", cvm);
    }
    cr_assert_eq(fx_wait(l), 0, "the listener in %s failed", lvm);
}

Test(sibling, guests_sharing_a_group_connect_by_cid_both_ways)
{
    uint32_t a = vm_grouped("kvm-a", HVSIM_TRANSPORT_VIRTIO, "lab");
    uint32_t b = vm_grouped("kvm-b", HVSIM_TRANSPORT_VIRTIO, "ci+lab");

    pair_case("kvm-b", b, "kvm-a", a, 7100);
    pair_case("kvm-a", a, "kvm-b", b, 7101);
}

struct outsider {
    uint32_t cid, port;
    int want; /* errno */
    uint32_t timeout_ms; /* 0: the error comes at once */
};

static int outsider_dial(void *v)
{
    struct outsider *o = v;
    struct sockaddr_vm a = fx_vsock(o->cid, o->port);
    struct timeval tv = { .tv_sec = 0, .tv_usec = 300 * 1000 };
    int s = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);
    uint64_t t0;

    CHECK_OK(s);
    CHECK_OK(hvsim_setsockopt(s, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv)));
    t0 = fx_now_ms();
    CHECK_ERR(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)), o->want);
    if (o->timeout_ms)
        CHECK(fx_now_ms() - t0 >= o->timeout_ms - 50);
    else
        CHECK(fx_now_ms() - t0 < 250);
    hvsim_close(s);
    return 0;
}

/* A listener in kvm-b; kvm-c (virtio, another group) and kvm-d (virtio, no
 * group) are dropped: their connects time out after their own 300 ms; hv1
 * (hv_sock) is refused at once, ENETUNREACH (stream_allow). */
Test(sibling, guests_outside_the_group_are_refused_as_their_transport_says)
{
    uint32_t b = vm_grouped("kvm-b", HVSIM_TRANSPORT_VIRTIO, "lab");
    struct outsider drop = { .cid = b, .port = 7102, .want = ETIMEDOUT, .timeout_ms = 300 };
    struct outsider hv = { .cid = b, .port = 7102, .want = ENETUNREACH };
    struct pair p = { .port = 7102, .lcid = b };
    pid_t l;

    vm_grouped("kvm-c", HVSIM_TRANSPORT_VIRTIO, "other");
    vm_grouped("kvm-d", HVSIM_TRANSPORT_VIRTIO, NULL);
    vm_grouped("hv1", HVSIM_TRANSPORT_HV_SOCK, NULL);
    fx_pipe_init(&p.ready);
    fx_pipe_init(&p.cport);
    /* The listener would take the connection if anything reached it; it is
     * killed at the end. */
    l = fx_spawn(&F, "kvm-b", sib_listener, &p);
    fx_await(&p.ready);
    cr_assert_eq(fx_wait(fx_spawn(&F, "kvm-c", outsider_dial, &drop)), 0);
    cr_assert_eq(fx_wait(fx_spawn(&F, "kvm-d", outsider_dial, &drop)), 0);
    cr_assert_eq(fx_wait(fx_spawn(&F, "hv1", outsider_dial, &hv)), 0);
    kill(l, SIGKILL);
    fx_wait(l);
}
