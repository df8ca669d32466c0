/* SPDX-License-Identifier: MIT */
/*
 * it_gateway.c: integration tests of a VM's gateway (proto.h, OFFER), the
 * way host programs reach a guest that runs its own kernel (hvsim-vhost):
 * the daemon asks the back-end, and the host program's connect returns only
 * with the guest's answer. A child attached as the VM plays the back-end and
 * its guest; the host side is this process. Refusal follows the profile: the
 * guest's RST is withheld under Hyper-V (the caller times out, reference
 * 3.3) and passed on at once under KVM; silence always times out.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

#include "fixture.h"
#include "gateway.h" /* the back-end's end of the channel (sim/vhost) */
#include "hvproto/util.h"
#include "hvsim_adapter.h" /* hvsim__listen_gateway */
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

TestSuite(gateway, .init = setup, .fini = teardown, .timeout = 30);

#define PORT_ACCEPT 7001u
#define PORT_REFUSE 7002u
#define PORT_SILENT 7003u
#define PORT_DIE 7004u /* the back-end exits with the offer pending */

struct gw_args {
    struct fx_pipe ready, done, offered; /* offered: the child got an offer (PORT_SILENT) */
    GUID host;
    unsigned offers; /* how many offers to serve */
};

static int listen_any(void)
{
    struct sockaddr_vm sa = fx_vsock(VMADDR_CID_ANY, VMADDR_PORT_ANY);
    int l = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);

    CHECK_OK(l);
    CHECK_OK(hvsim_bind(l, (struct sockaddr *)&sa, sizeof(sa)));
    return l;
}

static int gateway_child(void *v)
{
    struct gw_args *a = v;
    int l = listen_any(), chan = hvsim__listen_gateway(l, 16);
    unsigned n;

    CHECK(chan >= 0);
    /* One back-end per VM. */
    CHECK_EQ(hvsim__listen_gateway(listen_any(), 16), -EADDRINUSE);
    fx_signal(&a->ready, 1);
    for (n = 0; n < a->offers; n++) {
        struct hvsim_msg_offer o;
        struct pollfd p = { .fd = chan, .events = POLLIN };

        CHECK_EQ(poll(&p, 1, 10000), 1);
        CHECK_EQ(hvsim__gateway_recv(chan, &o), 1);
        CHECK(hvsim_guid_equal(&o.peer_partition, &a->host));
        CHECK(o.timeout_ms > 0);
        if (o.port == PORT_ACCEPT) {
            struct sockaddr_vm peer, self;
            socklen_t len = sizeof(peer), slen = sizeof(self);
            char buf[64];
            ssize_t got;
            int c;

            CHECK_OK(hvsim__gateway_answer(chan, o.id, HVSIM_GW_ACCEPT));
            c = hvsim_accept(l, (struct sockaddr *)&peer, &len);
            CHECK_OK(c);
            /* The stream names the offer's ports: that is how it is joined. */
            CHECK_OK(hvsim_getsockname(c, (struct sockaddr *)&self, &slen));
            CHECK_EQ(self.svm_port, PORT_ACCEPT);
            CHECK_EQ(peer.svm_port, o.peer_port);
            got = hvsim_recv(c, buf, sizeof(buf), 0);
            CHECK(got > 0);
            CHECK_EQ(hvsim_send(c, buf, (size_t)got, 0), got);
            CHECK_OK(hvsim_close(c));
        } else if (o.port == PORT_REFUSE) {
            CHECK_OK(hvsim__gateway_answer(chan, o.id, HVSIM_GW_REFUSE));
        } else if (o.port == PORT_DIE) {
            _exit(0);
        } else {
            CHECK_EQ(o.port, PORT_SILENT); /* and say nothing */
            fx_signal(&a->offered, 1);
        }
    }
    fx_await(&a->done);
    return 0;
}

static pid_t start_gateway(struct gw_args *a, unsigned offers)
{
    pid_t g;

    memset(a, 0, sizeof(*a));
    fx_pipe_init(&a->ready);
    fx_pipe_init(&a->done);
    fx_pipe_init(&a->offered);
    a->offers = offers;
    cr_assert_eq(hvsim_self(&a->host, NULL, 0), 0);
    g = fx_spawn(&F, "vm1", gateway_child, a);
    fx_await(&a->ready);
    return g;
}

/* Connect from the host to {vm, port} with a connect timeout; the errno (0 on
 * success) and the time it took. */
static int host_connect(const GUID *vm, uint32_t port, uint32_t timeout_ms, uint64_t *ms, int *fd)
{
    GUID svc = hvsim_guid_from_port(port);
    SOCKADDR_HV a = fx_hv(vm, &svc);
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW), err;
    uint64_t t0;

    cr_assert_geq(s, 0);
    cr_assert_eq(hvsim_setsockopt(s, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &timeout_ms, sizeof(timeout_ms)), 0);
    t0 = fx_now_ms();
    err = hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : errno;
    *ms = fx_now_ms() - t0;
    if (fd)
        *fd = s;
    else
        hvsim_close(s);
    return err;
}

Test(gateway, accepted_offer_connects_and_carries_data)
{
    GUID vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    struct gw_args a;
    pid_t g = start_gateway(&a, 1);
    char buf[32];
    uint64_t ms;
    int s, err = host_connect(&vm, PORT_ACCEPT, 2000, &ms, &s);

    cr_assert_eq(err, 0, "connect: %s", hvsim_err_name(err));
    cr_assert_eq(hvsim_send(s, "through the gateway", 19, 0), 19);
    cr_assert_eq(hvsim_recv(s, buf, 19, MSG_WAITALL), 19);
    cr_assert_eq(memcmp(buf, "through the gateway", 19), 0);
    hvsim_close(s);
    fx_signal(&a.done, 1);
    cr_assert_eq(fx_wait(g), 0);
}

Test(gateway, guest_refusal_is_withheld_under_hyperv_profile)
{
    GUID vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    struct gw_args a;
    pid_t g = start_gateway(&a, 1);
    uint64_t ms;
    int err = host_connect(&vm, PORT_REFUSE, 300, &ms, NULL);

    cr_assert_eq(err, ETIMEDOUT, "got %s", hvsim_err_name(err));
    cr_assert_eq(hvsim_get_last_error(), 10060);
    cr_assert_geq(ms, 300, "the caller waits its whole connect timeout, took %llu ms", (unsigned long long)ms);
    fx_signal(&a.done, 1);
    cr_assert_eq(fx_wait(g), 0);
}

Test(gateway, guest_refusal_resets_at_once_under_kvm_profile)
{
    GUID vm;
    struct gw_args a;
    pid_t g;
    uint64_t ms;
    int err;

    fx_set(&F, "refusal_profile", "kvm");
    vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    g = start_gateway(&a, 1);
    err = host_connect(&vm, PORT_REFUSE, 5000, &ms, NULL);
    cr_assert_eq(err, ECONNRESET, "got %s", hvsim_err_name(err));
    cr_assert_lt(ms, 2000, "a refusal is not a timeout, took %llu ms", (unsigned long long)ms);
    fx_signal(&a.done, 1);
    cr_assert_eq(fx_wait(g), 0);
}

Test(gateway, silent_guest_times_out_in_both_profiles)
{
    const char *profiles[] = { "hyperv", "kvm" };
    GUID vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    unsigned i;

    for (i = 0; i < 2; i++) {
        struct gw_args a;
        pid_t g;
        uint64_t ms;
        int err;

        fx_set(&F, "refusal_profile", profiles[i]);
        g = start_gateway(&a, 1);
        err = host_connect(&vm, PORT_SILENT, 250, &ms, NULL);
        cr_assert_eq(err, ETIMEDOUT, "%s: got %s", profiles[i], hvsim_err_name(err));
        cr_assert_geq(ms, 250, "%s: took %llu ms", profiles[i], (unsigned long long)ms);
        fx_signal(&a.done, 1);
        cr_assert_eq(fx_wait(g), 0);
    }
}

Test(gateway, backend_gone_with_an_offer_pending_times_out)
{
    GUID vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    struct gw_args a;
    pid_t g = start_gateway(&a, 1);
    uint64_t ms;
    int err = host_connect(&vm, PORT_DIE, 400, &ms, NULL);

    cr_assert_eq(err, ETIMEDOUT, "got %s", hvsim_err_name(err));
    cr_assert_geq(ms, 400, "took %llu ms", (unsigned long long)ms);
    cr_assert_eq(fx_wait(g), 0);
    /* With no gateway the VM has no listener: the usual no-answer rule. */
    err = host_connect(&vm, PORT_ACCEPT, 200, &ms, NULL);
    cr_assert_eq(err, ETIMEDOUT, "got %s", hvsim_err_name(err));
}

struct connect_job {
    GUID vm;
    int err;
    uint64_t ms;
};

static void *connect_silent(void *v)
{
    struct connect_job *j = v;

    j->err = host_connect(&j->vm, PORT_SILENT, 1500, &j->ms, NULL);
    return NULL;
}

Test(gateway, a_waiting_connect_does_not_hold_up_other_calls)
{
    struct connect_job j = { .vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC) };
    struct gw_args a;
    pid_t g = start_gateway(&a, 1);
    pthread_t t;
    uint64_t t0, took;
    int s;

    cr_assert_eq(pthread_create(&t, NULL, connect_silent, &j), 0);
    fx_await(&a.offered); /* the connect now waits for a guest that says nothing */
    t0 = fx_now_ms();
    s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    took = fx_now_ms() - t0;
    cr_assert_geq(s, 0);
    hvsim_close(s);
    cr_assert_lt(took, 500, "another thread's socket() waited %llu ms behind the connect", (unsigned long long)took);
    pthread_join(t, NULL);
    cr_assert_eq(j.err, ETIMEDOUT, "got %s", hvsim_err_name(j.err));
    cr_assert_geq(j.ms, 1500);
    fx_signal(&a.done, 1);
    cr_assert_eq(fx_wait(g), 0);
}

static int host_gateway_refused(void *v)
{
    (void)v;
    CHECK_EQ(hvsim__listen_gateway(listen_any(), 16), -EINVAL);
    return 0;
}

Test(gateway, only_a_vm_partition_may_be_a_gateway)
{
    cr_assert_eq(fx_wait(fx_spawn(&F, "host", host_gateway_refused, NULL)), 0);
}
