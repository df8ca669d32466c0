/* SPDX-License-Identifier: MIT */
/*
 * it_spares.c: integration tests of spare tickets (hvproto/proto.h, "Spare
 * tickets"; sim/lib/spares.c, sim/daemon/spares.c): a process that connects
 * to one address again and again connects without a round trip to the
 * daemon, and only while nothing that routes has changed: a service removed
 * is refused at once, a forked child never replays its parent's tickets, and
 * the daemon's listing still shows every connection.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>

#include "fixture.h"
#include "hvsim/hvsocket.h"

static struct fx F;

static void setup(void)
{
    fx_start(&F, NULL);
    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
}

static void teardown(void)
{
    fx_stop(&F);
}

TestSuite(spares, .init = setup, .fini = teardown, .timeout = 60);

struct args {
    GUID svc;
    int first; /* connects before the step */
    int expect; /* the errno of the connect after it (0: it connects) */
    int keep; /* hold the connected sockets until told */
    int fork_after; /* fork once primed: the child connects too */
    struct fx_pipe primed, step, done;
};

/* One connect of vm1's guest to the host's svc: 0 and the socket in *out, or the errno. */
static int guest_connect(const GUID *svc, int *out)
{
    SOCKADDR_HV to = fx_hv(&HV_GUID_PARENT, svc);
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW), err = 0;

    CHECK_OK(s);
    if (hvsim_connect(s, (struct sockaddr *)&to, sizeof(to)) < 0) {
        err = errno;
        hvsim_close(s);
        s = -1;
    } else {
        CHECK_EQ(hvsim_send(s, "x", 1, 0), 1);
    }
    if (out)
        *out = s;
    else if (s >= 0)
        hvsim_close(s);
    return err;
}

/* Connect a->first times (spares come with the second), wait for the step,
 * then connect once more expecting a->expect. */
static int guest(void *v)
{
    struct args *a = v;
    int held[16], n = 0, s, i;
    pid_t child = -1;

    for (i = 0; i < a->first; i++) {
        CHECK_EQ(guest_connect(&a->svc, a->keep ? &held[n++] : NULL), 0);
    }
    if (a->fork_after) {
        child = fork();
        CHECK(child >= 0);
    }
    if (child <= 0) {
        fx_signal(&a->primed, 1);
        fx_await(&a->step);
    }
    /* Parent and child (if any) each connect twice: four tickets, none shared. */
    for (i = 0; i < (a->fork_after ? 2 : 1); i++) {
        CHECK_EQ(guest_connect(&a->svc, a->keep ? &s : NULL), a->expect);
        if (a->keep && s >= 0)
            held[n++] = s;
    }
    if (child == 0)
        _exit(0);
    if (child > 0)
        CHECK_EQ(fx_wait(child), 0);
    fx_signal(&a->done, 1);
    if (a->keep)
        fx_await(&a->step);
    for (i = 0; i < n; i++)
        hvsim_close(held[i]);
    return 0;
}

static int host_listen(const GUID *svc)
{
    SOCKADDR_HV a = fx_hv(&HV_GUID_WILDCARD, svc);
    int l = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

    cr_assert_geq(l, 0);
    cr_assert_eq(hvsim_bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(hvsim_listen(l, 64), 0);
    return l;
}

/* Accept one connection within 5 s and read its byte: 0, or -1 when none came. */
static int accept_one(int l)
{
    struct pollfd p = { .fd = l, .events = POLLIN };
    char ch;
    int c;

    if (poll(&p, 1, 5000) != 1)
        return -1;
    c = hvsim_accept(l, NULL, NULL);
    cr_assert_geq(c, 0, "accept: %s", strerror(errno));
    cr_assert_eq(hvsim_recv(c, &ch, 1, 0), 1);
    cr_assert_eq(ch, 'x');
    hvsim_close(c);
    return 0;
}

static pid_t start(struct args *a, int l)
{
    pid_t g;

    fx_service(&F, &a->svc, "spared");
    fx_pipe_init(&a->primed);
    fx_pipe_init(&a->step);
    fx_pipe_init(&a->done);
    g = fx_spawn(&F, "vm1", guest, a);
    for (int i = 0; i < a->first; i++)
        cr_assert_eq(accept_one(l), 0, "connection %d of %d never came", i + 1, a->first);
    fx_await(&a->primed);
    return g;
}

/* The connect after two to the same address costs no round trip: it
 * connects, and is accepted, while the daemon is stopped. */
Test(spares, a_repeated_connect_needs_no_round_trip)
{
    struct args a = { .svc = fx_svc(1), .first = 2 };
    int l = host_listen(&a.svc);
    pid_t g = start(&a, l);

    cr_assert_eq(kill(F.daemon, SIGSTOP), 0);
    fx_signal(&a.step, 1);
    fx_await(&a.done);
    cr_assert_eq(accept_one(l), 0, "the spare's connection never came");
    cr_assert_eq(kill(F.daemon, SIGCONT), 0);
    cr_assert_eq(fx_wait(g), 0);
}

/* A service removed moves the routing epoch: the spares left are not used,
 * and the connect after it is refused as without them. */
Test(spares, a_removed_service_is_refused_despite_spares)
{
    struct args a = { .svc = fx_svc(2), .first = 2, .expect = ECONNREFUSED };
    int l = host_listen(&a.svc);
    pid_t g = start(&a, l);

    cr_assert_eq(hvsim_admin_service_rm(F.admin, &a.svc), 0);
    fx_signal(&a.step, 1);
    cr_assert_eq(fx_wait(g), 0);
}

/* A forked child attaches anew and never replays the parent's spares: all
 * four connections after the fork are accepted. */
Test(spares, a_forked_child_does_not_share_its_parents_spares)
{
    struct args a = { .svc = fx_svc(3), .first = 2, .fork_after = 1 };
    int l = host_listen(&a.svc);
    pid_t g = start(&a, l);

    fx_signal(&a.step, 1);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(accept_one(l), 0, "connection %d of 4 after the fork never came", i + 1);
    cr_assert_eq(fx_wait(g), 0);
}

/* The daemon's listing shows the connections made with spares too
 * (CONN_USED), with the rule that routed them. */
Test(spares, connections_made_with_spares_are_listed)
{
    struct args a = { .svc = fx_svc(4), .first = 5, .keep = 1 };
    int l = host_listen(&a.svc);
    pid_t g = start(&a, l);
    uint64_t until = fx_now_ms() + 5000;
    hvsim_conn_info_t *v = NULL;
    size_t n = 0;

    fx_signal(&a.step, 1);
    cr_assert_eq(accept_one(l), 0);
    fx_await(&a.done);
    for (;;) {
        cr_assert_eq(hvsim_admin_connections(F.admin, "vm1", &v, &n, NULL, NULL), 0);
        if (n == 6 || fx_now_ms() > until)
            break;
        free(v);
        usleep(2000);
    }
    cr_assert_eq(n, 6, "listed %zu of 6", n);
    for (size_t i = 0; i < n; i++) {
        cr_assert(hvsim_guid_equal(&v[i].acceptor_svc, &a.svc));
        cr_assert_str_eq(v[i].acceptor_name, "host");
        cr_assert_str_eq(v[i].connector_name, "vm1");
        cr_assert_eq(v[i].acceptor_pid, (uint32_t)getpid());
        /* Each its own ticket, so no two records are one. */
        for (size_t j = 0; j < i; j++)
            cr_assert_neq(v[i].id, v[j].id);
    }
    free(v);
    fx_signal(&a.step, 1);
    cr_assert_eq(fx_wait(g), 0);
}
