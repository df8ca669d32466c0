/* SPDX-License-Identifier: MIT */
/*
 * it_seqpacket.c: integration tests of SOCK_SEQPACKET over vsock (issue 15):
 * message boundaries from 1 byte to the largest message and EMSGSIZE above
 * it, MSG_TRUNC both ways, MSG_EOR, MSG_PEEK per kernel version, an empty
 * send, shutdown, the type rule (a request of the other type is reset), and
 * the transports without SEQPACKET (hv_sock, a CID with no virtio device):
 * ESOCKTNOSUPPORT at connect. docs/reference/vsock-virtio.md 9 has the
 * sources.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
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

TestSuite(seqpacket, .init = setup, .fini = teardown, .timeout = 60);

#define MAX_MSG (256 * 1024) /* the peer's default SO_VM_SOCKETS_BUFFER_SIZE */

static const size_t sizes[] = { 1, 2, 7, 100, 4095, 4096, 4097, 65535, 65536, MAX_MSG };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void vm_with(const char *name, uint32_t transport, uint32_t kernel)
{
    hvsim_vm_info_t info;
    int rc = hvsim_admin_vm_add_ex(F.admin, name, NULL, HVSIM_VM_CLASSIC, transport, kernel, &info);

    cr_assert_eq(rc, 0, "vm add %s: %s", name, hvsim_admin_errmsg(F.admin));
}

struct args {
    uint32_t port;
    int type; /* the guest's socket type */
    uint32_t kernel;
    struct fx_pipe ready;
};

/* A host AF_VSOCK listener of TYPE on PORT (the KVM-style host side). */
static int host_listener(int type, uint32_t port)
{
    struct sockaddr_vm a = fx_vsock(VMADDR_CID_ANY, port);
    GUID svc = hvsim_guid_from_port(port);
    int l = hvsim_socket(AF_VSOCK, type, 0);

    cr_assert_geq(l, 0, "%s", hvsim_err_name(errno));
    fx_service(&F, &svc, "seqpacket test");
    cr_assert_eq(hvsim_bind(l, (struct sockaddr *)&a, sizeof(a)), 0, "%s", hvsim_err_name(errno));
    cr_assert_eq(hvsim_listen(l, 4), 0);
    return l;
}

/* vm1 (virtio, KERNEL) running FN as its guest, and the host's SEQPACKET
 * listener on a->port: returns the accepted connection; the guest in *g,
 * the listener in *l. */
static int start(struct args *a, uint32_t kernel, int (*fn)(void *), pid_t *g, int *l)
{
    int c;

    vm_with("vm1", HVSIM_TRANSPORT_VIRTIO, kernel);
    *l = host_listener(SOCK_SEQPACKET, a->port);
    fx_pipe_init(&a->ready);
    *g = fx_spawn(&F, "vm1", fn, a);
    c = hvsim_accept(*l, NULL, NULL);
    cr_assert_geq(c, 0, "%s", hvsim_err_name(errno));
    return c;
}

static int dial(int type, uint32_t cid, uint32_t port)
{
    struct sockaddr_vm a = fx_vsock(cid, port);
    int s = hvsim_socket(AF_VSOCK, type, 0);

    if (s < 0 || hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    return s;
}

/* Send each size once (seeded by its index), then expect each back whole. */
static int exchange(int s, int sender_first)
{
    static char buf[MAX_MSG + 16], want[MAX_MSG];
    size_t i, pass;

    for (pass = 0; pass < 2; pass++) {
        int sending = (pass == 0) == sender_first;

        for (i = 0; i < NSIZES; i++) {
            fx_fill(want, sizes[i], (uint32_t)i);
            if (sending) {
                if (hvsim_send(s, want, sizes[i], 0) != (ssize_t)sizes[i])
                    return (int)(100 + i);
            } else {
                ssize_t r = hvsim_recv(s, buf, sizeof(buf), 0);

                if (r != (ssize_t)sizes[i] || memcmp(buf, want, sizes[i]) != 0)
                    return (int)(200 + i);
            }
        }
    }
    return 0;
}

/* ---- boundaries and the largest message ----------------------------------------- */

static int guest_exchange(void *v)
{
    struct args *a = v;
    static char big[MAX_MSG + 1];
    int s = dial(SOCK_SEQPACKET, VMADDR_CID_HOST, a->port), type = 0;
    socklen_t tl = sizeof(type);

    CHECK_OK(s);
    CHECK_OK(hvsim_getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &tl));
    CHECK_EQ(type, SOCK_SEQPACKET);
    /* Above the peer's buffer size: refused whole, the connection goes on. */
    CHECK_ERR(hvsim_send(s, big, sizeof(big), 0), EMSGSIZE);
    CHECK_EQ(exchange(s, 1), 0);
    hvsim_close(s);
    return 0;
}

Test(seqpacket, virtio_guest_and_host_keep_every_boundary)
{
    struct args a = { .port = 7100 };
    pid_t g;
    int l, c, rc;

    c = start(&a, HVSIM_KERNEL_6_12, guest_exchange, &g, &l);
    rc = exchange(c, 0);
    cr_assert_eq(rc, 0, "message %d (1xx: send, 2xx: receive) of the host's exchange", rc);
    cr_assert_eq(fx_wait(g), 0);
    hvsim_close(c);
    hvsim_close(l);
}

/* sendmsg's iovecs make one message; recvmsg fills several from one. */
static int guest_iov(void *v)
{
    struct args *a = v;
    int s = dial(SOCK_SEQPACKET, VMADDR_CID_HOST, a->port);
    struct iovec out[3] = { { "ab", 2 }, { "", 0 }, { "cde", 3 } };
    struct msghdr m = { .msg_iov = out, .msg_iovlen = 3 };

    CHECK_OK(s);
    CHECK_EQ(hvsim_sendmsg(s, &m, 0), 5);
    CHECK_EQ(hvsim_send(s, "f", 1, 0), 1);
    fx_await(&a->ready);
    return 0;
}

Test(seqpacket, sendmsg_is_one_message_and_recvmsg_spans_iovecs)
{
    struct args a = { .port = 7101 };
    char p1[3] = "", p2[8] = "";
    struct iovec in[2] = { { p1, sizeof(p1) }, { p2, sizeof(p2) } };
    struct msghdr m = { .msg_iov = in, .msg_iovlen = 2 };
    pid_t g;
    int l, c;

    c = start(&a, HVSIM_KERNEL_6_12, guest_iov, &g, &l);
    cr_assert_eq(hvsim_recvmsg(c, &m, 0), 5);
    cr_assert_eq(memcmp(p1, "abc", 3), 0);
    cr_assert_eq(memcmp(p2, "de", 2), 0);
    cr_assert_eq(m.msg_flags, 0);
    cr_assert_eq(hvsim_recv(c, p2, sizeof(p2), 0), 1);
    cr_assert_eq(p2[0], 'f');
    fx_signal(&a.ready, 1);
    cr_assert_eq(fx_wait(g), 0);
}

/* ---- MSG_TRUNC, MSG_EOR ------------------------------------------------------------ */

static int guest_trunc_eor(void *v)
{
    struct args *a = v;
    int s = dial(SOCK_SEQPACKET, VMADDR_CID_HOST, a->port);
    char buf[16] = "";
    struct iovec io = { buf, 4 };
    struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1 };

    CHECK_OK(s);
    fx_await(&a->ready); /* the host sent its messages */
    /* A short buffer takes the head; the rest of that message is gone. */
    CHECK_EQ(hvsim_recv(s, buf, 4, 0), 4);
    CHECK_EQ(memcmp(buf, "0123", 4), 0);
    /* MSG_TRUNC in: the message's real length; MSG_TRUNC out: it was cut. */
    CHECK_EQ(hvsim_recv(s, buf, 4, MSG_TRUNC), 10);
    CHECK_EQ(hvsim_recvmsg(s, &m, 0), 4);
    CHECK_EQ(m.msg_flags, MSG_TRUNC);
    /* MSG_EOR as its sender gave it. */
    io.iov_len = sizeof(buf);
    CHECK_EQ(hvsim_recvmsg(s, &m, 0), 2);
    CHECK_EQ(m.msg_flags, MSG_EOR);
    CHECK_EQ(memcmp(buf, "e1", 2), 0);
    CHECK_EQ(hvsim_recvmsg(s, &m, 0), 2);
    CHECK_EQ(m.msg_flags, 0);
    CHECK_EQ(memcmp(buf, "n1", 2), 0);
    /* A plain read of an EOR message shows its bytes only. */
    CHECK_EQ(read(s, buf, sizeof(buf)), 2);
    CHECK_EQ(memcmp(buf, "e2", 2), 0);
    hvsim_close(s);
    return 0;
}

Test(seqpacket, trunc_and_eor_as_the_kernel_reports_them)
{
    struct args a = { .port = 7102 };
    pid_t g;
    int l, c, i;

    c = start(&a, HVSIM_KERNEL_6_12, guest_trunc_eor, &g, &l);
    for (i = 0; i < 3; i++)
        cr_assert_eq(hvsim_send(c, "0123456789", 10, 0), 10);
    cr_assert_eq(hvsim_send(c, "e1", 2, MSG_EOR), 2, "%s", hvsim_err_name(errno));
    cr_assert_eq(hvsim_send(c, "n1", 2, 0), 2);
    cr_assert_eq(hvsim_send(c, "e2", 2, MSG_EOR), 2);
    fx_signal(&a.ready, 1);
    cr_assert_eq(fx_wait(g), 0);
}

/* ---- MSG_PEEK per kernel ------------------------------------------------------------ */

static int guest_peek(void *v)
{
    struct args *a = v;
    int s = dial(SOCK_SEQPACKET, VMADDR_CID_HOST, a->port);
    char buf[8] = "";

    CHECK_OK(s);
    fx_await(&a->ready);
    if (a->kernel < HVSIM_KERNEL_6_12) {
        /* EOPNOTSUPP from the transport, which af_vsock.c showed as ENOMEM. */
        CHECK_ERR(hvsim_recv(s, buf, sizeof(buf), MSG_PEEK), ENOMEM);
    } else {
        CHECK_EQ(hvsim_recv(s, buf, 1, MSG_PEEK | MSG_TRUNC), 2);
        CHECK_EQ(buf[0], 'p');
    }
    CHECK_EQ(hvsim_recv(s, buf, sizeof(buf), 0), 2);
    CHECK_EQ(memcmp(buf, "pk", 2), 0);
    return 0;
}

static void peek_case(uint32_t kernel)
{
    struct args a = { .port = 7103, .kernel = kernel };
    pid_t g;
    int l, c;

    c = start(&a, kernel, guest_peek, &g, &l);
    cr_assert_eq(hvsim_send(c, "pk", 2, 0), 2);
    fx_signal(&a.ready, 1);
    cr_assert_eq(fx_wait(g), 0);
}

Test(seqpacket, kernel_6_1_refuses_peek)
{
    peek_case(HVSIM_KERNEL_6_1);
}

Test(seqpacket, kernel_6_12_peeks)
{
    peek_case(HVSIM_KERNEL_6_12);
}

/* ---- an empty send, shutdown, close ------------------------------------------------- */

static int guest_empty_then_shut(void *v)
{
    struct args *a = v;
    int s = dial(SOCK_SEQPACKET, VMADDR_CID_HOST, a->port);

    CHECK_OK(s);
    /* Nothing sent: the peer must not read an end of file. */
    CHECK_EQ(hvsim_send(s, "", 0, 0), 0);
    CHECK_EQ(hvsim_send(s, "x", 1, 0), 1);
    CHECK_OK(hvsim_shutdown(s, SHUT_WR));
    CHECK_ERR(hvsim_send(s, "y", 1, MSG_NOSIGNAL), EPIPE);
    fx_await(&a->ready);
    hvsim_close(s);
    return 0;
}

Test(seqpacket, empty_send_sends_nothing_and_shut_wr_is_eof)
{
    struct args a = { .port = 7104 };
    char buf[4];
    pid_t g;
    int l, c;

    c = start(&a, HVSIM_KERNEL_6_12, guest_empty_then_shut, &g, &l);
    cr_assert_eq(hvsim_recv(c, buf, sizeof(buf), 0), 1);
    cr_assert_eq(buf[0], 'x');
    cr_assert_eq(hvsim_recv(c, buf, sizeof(buf), 0), 0);
    /* The other direction stays open. */
    cr_assert_eq(hvsim_send(c, "z", 1, 0), 1);
    fx_signal(&a.ready, 1);
    cr_assert_eq(fx_wait(g), 0);
}

/* ---- the type rule --------------------------------------------------------------- */

static int guest_wrong_type(void *v)
{
    struct args *a = v;
    struct sockaddr_vm to = fx_vsock(VMADDR_CID_HOST, a->port);
    int s = hvsim_socket(AF_VSOCK, a->type, 0);

    CHECK_OK(s);
    CHECK_ERR(hvsim_connect(s, (struct sockaddr *)&to, sizeof(to)), ECONNRESET);
    return 0;
}

Test(seqpacket, a_listener_of_the_other_type_resets_the_request)
{
    struct args st = { .port = 7105, .type = SOCK_SEQPACKET }, sq = { .port = 7106, .type = SOCK_STREAM };
    struct sockaddr_vm lo = fx_vsock(VMADDR_CID_LOCAL, 7105);
    int l1, l2, s;

    vm_with("vm1", HVSIM_TRANSPORT_VIRTIO, HVSIM_KERNEL_6_12);
    l1 = host_listener(SOCK_STREAM, st.port);
    l2 = host_listener(SOCK_SEQPACKET, sq.port);
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", guest_wrong_type, &st)), 0);
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", guest_wrong_type, &sq)), 0);
    /* The same over the host's loopback (vsock_loopback is virtio's code). */
    s = hvsim_socket(AF_VSOCK, SOCK_SEQPACKET, 0);
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&lo, sizeof(lo)), -1);
    cr_assert_eq(errno, ECONNRESET, "%s", hvsim_err_name(errno));
    hvsim_close(s);
    /* One port space for both types (vsock_bind_table): EADDRINUSE. */
    s = hvsim_socket(AF_VSOCK, SOCK_SEQPACKET, 0);
    {
        struct sockaddr_vm a = fx_vsock(VMADDR_CID_ANY, st.port);

        cr_assert_eq(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)), -1);
        cr_assert_eq(errno, EADDRINUSE);
    }
    hvsim_close(s);
    hvsim_close(l1);
    hvsim_close(l2);
}

Test(seqpacket, host_loopback_carries_messages)
{
    struct sockaddr_vm lo = fx_vsock(VMADDR_CID_LOCAL, 7107);
    char buf[8];
    int l = host_listener(SOCK_SEQPACKET, 7107), s = hvsim_socket(AF_VSOCK, SOCK_SEQPACKET, 0), c;

    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&lo, sizeof(lo)), 0, "%s", hvsim_err_name(errno));
    c = hvsim_accept(l, NULL, NULL);
    cr_assert_geq(c, 0);
    cr_assert_eq(hvsim_send(s, "ab", 2, 0), 2);
    cr_assert_eq(hvsim_send(s, "c", 1, 0), 1);
    cr_assert_eq(hvsim_recv(c, buf, sizeof(buf), 0), 2);
    cr_assert_eq(hvsim_recv(c, buf, sizeof(buf), 0), 1);
    hvsim_close(c);
    hvsim_close(s);
    hvsim_close(l);
}

/* ---- transports without SEQPACKET ------------------------------------------------------ */

static int guest_hv_sock(void *v)
{
    struct args *a = v;
    struct sockaddr_vm host = fx_vsock(VMADDR_CID_HOST, a->port), other = fx_vsock(7, a->port);
    int s = hvsim_socket(AF_VSOCK, SOCK_SEQPACKET, 0);

    /* The kernel creates it; the transport is chosen at connect. */
    CHECK_OK(s);
    CHECK_ERR(hvsim_connect(s, (struct sockaddr *)&host, sizeof(host)), ESOCKTNOSUPPORT);
    /* Before hv_sock's stream_allow (ENETUNREACH for a CID but 2). */
    CHECK_ERR(hvsim_connect(s, (struct sockaddr *)&other, sizeof(other)), ESOCKTNOSUPPORT);
    /* The socket stays unconnected, as the kernel's. */
    CHECK_ERR(hvsim_connect(s, (struct sockaddr *)&host, sizeof(host)), ESOCKTNOSUPPORT);
    return 0;
}

Test(seqpacket, hv_sock_creates_and_refuses_at_connect)
{
    struct args a = { .port = 7108 };
    int l;

    vm_with("vm1", HVSIM_TRANSPORT_HV_SOCK, HVSIM_KERNEL_6_12);
    l = host_listener(SOCK_SEQPACKET, a.port);
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", guest_hv_sock, &a)), 0);
    hvsim_close(l);
}

Test(seqpacket, host_reaches_only_virtio_devices)
{
    hvsim_vm_info_t hv;
    struct sockaddr_vm to;
    int s;

    cr_assert_eq(hvsim_admin_vm_add_ex(F.admin, "hv1", NULL, HVSIM_VM_CLASSIC, HVSIM_TRANSPORT_HV_SOCK,
                                       HVSIM_KERNEL_6_12, &hv),
                 0);
    /* An hv_sock VM: vhost_transport_seqpacket_allow finds no device. */
    to = fx_vsock(hv.cid, 7109);
    s = hvsim_socket(AF_VSOCK, SOCK_SEQPACKET, 0);
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&to, sizeof(to)), -1);
    cr_assert_eq(errno, ESOCKTNOSUPPORT, "%s", hvsim_err_name(errno));
    /* A CID nobody has: the same, where a stream gets the RST. */
    to = fx_vsock(4242, 7109);
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&to, sizeof(to)), -1);
    cr_assert_eq(errno, ESOCKTNOSUPPORT, "%s", hvsim_err_name(errno));
    hvsim_close(s);
    s = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&to, sizeof(to)), -1);
    cr_assert_eq(errno, ECONNRESET, "%s", hvsim_err_name(errno));
    hvsim_close(s);
}

Test(seqpacket, windows_has_no_such_type)
{
    cr_assert_eq(hvsim_socket(AF_HYPERV, SOCK_SEQPACKET, HV_PROTOCOL_RAW), -1);
    cr_assert_eq(errno, ESOCKTNOSUPPORT);
    cr_assert_eq(hvsim_get_last_error(), 10044); /* WSAESOCKTNOSUPPORT */
}

/* ---- a non-blocking connect nobody answers ---------------------------------------------- */

Test(seqpacket, nonblocking_connect_to_a_paused_vm_times_out)
{
    hvsim_vm_info_t vm;
    struct sockaddr_vm to;
    struct timeval tv = { 0, 300 * 1000 };
    struct pollfd p;
    int s, e = 0;
    socklen_t el = sizeof(e);
    uint64_t t0;

    cr_assert_eq(hvsim_admin_vm_add_ex(F.admin, "vm1", NULL, HVSIM_VM_CLASSIC, HVSIM_TRANSPORT_VIRTIO,
                                       HVSIM_KERNEL_6_12, &vm),
                 0);
    fx_vm_op(&F, "vm1", "pause");
    to = fx_vsock(vm.cid, 7110);
    s = hvsim_socket(AF_VSOCK, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
    cr_assert_geq(s, 0);
    cr_assert_eq(hvsim_setsockopt(s, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv)), 0);
    t0 = fx_now_ms();
    cr_assert_eq(hvsim_connect(s, (struct sockaddr *)&to, sizeof(to)), -1);
    cr_assert_eq(errno, EINPROGRESS, "%s", hvsim_err_name(errno));
    p = (struct pollfd){ .fd = s, .events = POLLOUT };
    cr_assert_eq(poll(&p, 1, 0), 0, "a connect in progress is not writable");
    cr_assert_eq(poll(&p, 1, 5000), 1);
    cr_assert_geq(fx_now_ms() - t0, 250);
    cr_assert_eq(hvsim_getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el), 0);
    cr_assert_eq(e, ETIMEDOUT, "%s", hvsim_err_name(e));
    hvsim_close(s);
}

/* ---- deviations of the plain fd (README, SOCK_SEQPACKET) --------------------------------- */

static void loop_pair(uint32_t port, int *l, int *s, int *c)
{
    struct sockaddr_vm lo = fx_vsock(VMADDR_CID_LOCAL, port);

    *l = host_listener(SOCK_SEQPACKET, port);
    *s = hvsim_socket(AF_VSOCK, SOCK_SEQPACKET, 0);
    cr_assert_eq(hvsim_connect(*s, (struct sockaddr *)&lo, sizeof(lo)), 0, "%s", hvsim_err_name(errno));
    *c = hvsim_accept(*l, NULL, NULL);
    cr_assert_geq(*c, 0);
}

/* Deviation 1: write() of nothing is an empty AF_UNIX message, read as 0. */
Test(seqpacket, deviation_plain_write_of_nothing_reads_as_end_of_file)
{
    char buf[4];
    int l, s, c;

    loop_pair(7111, &l, &s, &c);
    cr_assert_eq(write(s, "", 0), 0);
    cr_assert_eq(hvsim_send(s, "a", 1, 0), 1);
    cr_assert_eq(read(c, buf, sizeof(buf)), 0, "the kernel's vsock would send nothing");
    cr_assert_eq(read(c, buf, sizeof(buf)), 1);
    hvsim_close(c);
    hvsim_close(s);
    hvsim_close(l);
}

/* Deviation 2: a plain recvmsg with a control buffer gets the EOR marker's descriptor. */
Test(seqpacket, deviation_plain_recvmsg_gets_the_eor_marker)
{
    char buf[4], ctl[CMSG_SPACE(sizeof(int))];
    struct iovec io = { buf, sizeof(buf) };
    struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
    struct cmsghdr *h;
    int l, s, c, fd;

    loop_pair(7112, &l, &s, &c);
    cr_assert_eq(hvsim_send(s, "e", 1, MSG_EOR), 1);
    cr_assert_eq(recvmsg(c, &m, 0), 1);
    cr_assert_eq(m.msg_flags & MSG_EOR, 0, "AF_UNIX has no per-message MSG_EOR");
    h = CMSG_FIRSTHDR(&m);
    cr_assert_not_null(h);
    cr_assert_eq(h->cmsg_type, SCM_RIGHTS);
    memcpy(&fd, CMSG_DATA(h), sizeof(fd));
    cr_assert_geq(fd, 0);
    close(fd);
    hvsim_close(c);
    hvsim_close(s);
    hvsim_close(l);
}

/* Before c43170b7e157 (after 6.1) vsock reported a transport's send error as ENOMEM. */
static int guest_too_big_6_1(void *v)
{
    struct args *a = v;
    static char big[MAX_MSG + 1];
    int s = dial(SOCK_SEQPACKET, VMADDR_CID_HOST, a->port);

    CHECK_OK(s);
    CHECK_ERR(hvsim_send(s, big, sizeof(big), 0), ENOMEM);
    CHECK_EQ(hvsim_send(s, "ok", 2, 0), 2);
    fx_await(&a->ready);
    return 0;
}

Test(seqpacket, kernel_6_1_says_enomem_for_a_message_too_big)
{
    struct args a = { .port = 7113 };
    char buf[4];
    pid_t g;
    int l, c;

    c = start(&a, HVSIM_KERNEL_6_1, guest_too_big_6_1, &g, &l);
    cr_assert_eq(hvsim_recv(c, buf, sizeof(buf), 0), 2, "nothing of the refused message arrived");
    fx_signal(&a.ready, 1);
    cr_assert_eq(fx_wait(g), 0);
}

/* hvsimctl vm listeners names the type. */
Test(seqpacket, the_listener_listing_names_the_type)
{
    hvsim_listener_info_t *v;
    size_t n, i, seq = 0, st = 0;
    int l1 = host_listener(SOCK_SEQPACKET, 7114), l2 = host_listener(SOCK_STREAM, 7115);

    cr_assert_eq(hvsim_admin_listeners(F.admin, "host", &v, &n, NULL, NULL), 0, "%s", hvsim_admin_errmsg(F.admin));
    for (i = 0; i < n; i++) {
        if (v[i].svc.Data1 == 7114)
            seq += v[i].seqpacket == 1;
        if (v[i].svc.Data1 == 7115)
            st += v[i].seqpacket == 0;
    }
    free(v);
    cr_assert_eq(seq, 1);
    cr_assert_eq(st, 1);
    hvsim_close(l1);
    hvsim_close(l2);
}
