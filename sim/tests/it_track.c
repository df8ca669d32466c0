/* SPDX-License-Identifier: MIT */
/*
 * it_track.c: integration tests of what hvsimctl lists of a partition (issue
 * 17): its listeners (address, personality, owner, backlog, gateway), and the
 * connections the daemon routed that it has not seen end, with both ends,
 * the rule that decided and what ends a record (sim/daemon/track.c): the
 * process of either end detaching, the VM reset, a pause unless an end set
 * CONNECTED_SUSPEND; not a listener closing. The
 * per-partition ceiling forgets the oldest record and counts it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "fixture.h"
#include "hvsim/hvsocket.h"

static struct fx F;

static void setup(void)
{
    fx_start(&F, NULL);
}

static void teardown(void)
{
    fx_stop(&F);
}

TestSuite(track, .init = setup, .fini = teardown, .timeout = 60);

struct args {
    GUID svc;
    int nconns; /* connects to make, each kept open */
    int suspend_last; /* the last one sets HVSOCKET_CONNECTED_SUSPEND */
    struct fx_pipe go, done;
};

/* A guest of vm1 connects NCONNS times to the host's svc, says so, and
 * holds its sockets until told to exit (which detaches it). */
static int guest_connects(void *v)
{
    struct args *a = v;
    SOCKADDR_HV to = fx_hv(&HV_GUID_PARENT, &a->svc);
    int i;

    for (i = 0; i < a->nconns; i++) {
        int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

        CHECK_OK(s);
        if (a->suspend_last && i == a->nconns - 1) {
            uint32_t one = 1;

            CHECK_OK(hvsim_setsockopt(s, HV_PROTOCOL_RAW, HVSOCKET_CONNECTED_SUSPEND, &one, sizeof(one)));
        }
        CHECK_OK(hvsim_connect(s, (struct sockaddr *)&to, sizeof(to)));
    }
    fx_signal(&a->done, 1);
    fx_await(&a->go);
    return 0;
}

static int host_listen(const GUID *svc, int backlog)
{
    SOCKADDR_HV a = fx_hv(&HV_GUID_WILDCARD, svc);
    int l = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

    cr_assert_geq(l, 0);
    cr_assert_eq(hvsim_bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(hvsim_listen(l, backlog), 0);
    return l;
}

static size_t conns(const char *vm, hvsim_conn_info_t **v, uint32_t *limit, uint64_t *forgotten)
{
    size_t n = 0;
    int rc = hvsim_admin_connections(F.admin, vm, v, &n, limit, forgotten);

    cr_assert_eq(rc, 0, "connections of %s: %s", vm, hvsim_admin_errmsg(F.admin));
    return n;
}

/* A process's exit reaches the daemon as its control socket's hang-up,
 * which it handles on its own time: wait (at most 5 s) until the listing
 * has WANT records. */
static size_t conns_settle(const char *vm, size_t want)
{
    uint64_t until = fx_now_ms() + 5000;
    hvsim_conn_info_t *v;
    size_t n;

    for (;;) {
        n = conns(vm, &v, NULL, NULL);
        free(v);
        if (n == want || fx_now_ms() > until)
            return n;
        usleep(2000);
    }
}

static pid_t start_guest(struct args *a, int nconns)
{
    pid_t g;

    a->nconns = nconns;
    fx_pipe_init(&a->go);
    fx_pipe_init(&a->done);
    g = fx_spawn(&F, "vm1", guest_connects, a);
    fx_await(&a->done);
    return g;
}

Test(track, listeners_are_listed_with_address_type_owner_and_backlog)
{
    GUID svc = fx_svc(1);
    hvsim_listener_info_t *v;
    size_t n;
    int l;

    fx_service(&F, &svc, "listed");
    l = host_listen(&svc, 7);
    cr_assert_eq(hvsim_admin_listeners(F.admin, "host", &v, &n, NULL, NULL), 0);
    cr_assert_eq(n, 1);
    cr_assert(hvsim_guid_equal(&v[0].vmid, &HV_GUID_WILDCARD));
    cr_assert(hvsim_guid_equal(&v[0].svc, &svc));
    cr_assert_eq(v[0].personality, 0); /* AF_HYPERV */
    cr_assert_eq(v[0].pid, (uint32_t)getpid());
    cr_assert_eq(v[0].backlog, 7);
    cr_assert_eq(v[0].gateway, 0);
    free(v);
    /* A closed listener leaves the list. */
    hvsim_close(l);
    cr_assert_eq(hvsim_admin_listeners(F.admin, "host", &v, &n, NULL, NULL), 0);
    cr_assert_eq(n, 0);
    free(v);
}

Test(track, an_unknown_vm_is_a_clear_error)
{
    hvsim_conn_info_t *v = NULL;
    size_t n;

    cr_assert_eq(hvsim_admin_connections(F.admin, "nosuchvm", &v, &n, NULL, NULL), -ENOENT);
    cr_assert_not_null(strstr(hvsim_admin_errmsg(F.admin), "nosuchvm"), "%s", hvsim_admin_errmsg(F.admin));
}

Test(track, a_connection_is_listed_with_both_ends_until_its_process_detaches)
{
    struct args a = { .svc = fx_svc(2) };
    GUID vm = fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    hvsim_conn_info_t *v;
    uint64_t forgotten = 1;
    uint32_t limit = 0;
    pid_t g;
    int l, c;

    fx_service(&F, &a.svc, "tracked");
    l = host_listen(&a.svc, 4);
    g = start_guest(&a, 1);
    c = hvsim_accept(l, NULL, NULL);
    cr_assert_geq(c, 0);
    cr_assert_eq(conns("vm1", &v, &limit, &forgotten), 1);
    cr_assert_eq(limit, 1024); /* max_tracked_connections' default */
    cr_assert_eq(forgotten, 0);
    cr_assert_str_eq(v[0].connector_name, "vm1");
    cr_assert_eq(v[0].connector_pid, (uint32_t)g);
    cr_assert(hvsim_guid_equal(&v[0].connector_partition, &vm));
    cr_assert_str_eq(v[0].acceptor_name, "host");
    cr_assert_eq(v[0].acceptor_pid, (uint32_t)getpid());
    cr_assert(hvsim_guid_equal(&v[0].acceptor_svc, &a.svc));
    cr_assert_str_eq(v[0].rule, "route.listener");
    cr_assert_gt(v[0].routed_ms, 0);
    free(v);
    /* The host's list has it too: it is the other end. */
    cr_assert_eq(conns("host", &v, NULL, NULL), 1);
    free(v);
    /* The listener closing ends nothing: the accepted stream lives on. */
    hvsim_close(l);
    cr_assert_eq(conns("vm1", &v, NULL, NULL), 1);
    free(v);
    /* The guest process detaches (exits): both records go. */
    fx_signal(&a.go, 1);
    cr_assert_eq(fx_wait(g), 0);
    cr_assert_eq(conns_settle("vm1", 0), 0);
    cr_assert_eq(conns("host", &v, NULL, NULL), 0);
    free(v);
    hvsim_close(c);
}

Test(track, a_reset_of_the_vm_ends_its_records)
{
    struct args a = { .svc = fx_svc(3) };
    hvsim_conn_info_t *v;
    pid_t g;
    int l, c;

    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    fx_service(&F, &a.svc, "reset");
    l = host_listen(&a.svc, 4);
    g = start_guest(&a, 1);
    c = hvsim_accept(l, NULL, NULL);
    cr_assert_geq(c, 0);
    cr_assert_eq(conns("vm1", &v, NULL, NULL), 1);
    free(v);
    /* The reset's reply comes after its event: no waiting. */
    fx_vm_op(&F, "vm1", "reset");
    cr_assert_eq(conns("vm1", &v, NULL, NULL), 0);
    free(v);
    cr_assert_eq(conns("host", &v, NULL, NULL), 0);
    free(v);
    fx_signal(&a.go, 1);
    cr_assert_eq(fx_wait(g), 0);
    hvsim_close(c);
    hvsim_close(l);
}

Test(track, past_the_ceiling_the_oldest_record_is_forgotten_and_counted)
{
    struct args a = { .svc = fx_svc(4) };
    hvsim_conn_info_t *v;
    uint64_t forgotten = 0;
    uint32_t limit = 0;
    pid_t g;
    int l, c[3], i;

    fx_set(&F, "max_tracked_connections", "2");
    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    fx_service(&F, &a.svc, "ceiling");
    l = host_listen(&a.svc, 4);
    g = start_guest(&a, 3);
    for (i = 0; i < 3; i++) {
        c[i] = hvsim_accept(l, NULL, NULL);
        cr_assert_geq(c[i], 0);
    }
    cr_assert_eq(conns("vm1", &v, &limit, &forgotten), 2);
    cr_assert_eq(limit, 2);
    cr_assert_eq(forgotten, 1);
    /* The newest two, oldest first. */
    cr_assert_lt(v[0].id, v[1].id);
    free(v);
    fx_signal(&a.go, 1);
    cr_assert_eq(fx_wait(g), 0);
    cr_assert_eq(conns_settle("vm1", 0), 0);
    for (i = 0; i < 3; i++)
        hvsim_close(c[i]);
    hvsim_close(l);
}

Test(track, a_pause_ends_the_records_without_connected_suspend)
{
    struct args a = { .svc = fx_svc(5), .suspend_last = 1 };
    hvsim_conn_info_t *v;
    uint64_t kept;
    pid_t g;
    int l, c[2], i;

    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    fx_service(&F, &a.svc, "pause");
    l = host_listen(&a.svc, 4);
    g = start_guest(&a, 2);
    for (i = 0; i < 2; i++) {
        c[i] = hvsim_accept(l, NULL, NULL);
        cr_assert_geq(c[i], 0);
    }
    cr_assert_eq(conns("vm1", &v, NULL, NULL), 2);
    kept = v[1].id; /* the second connect set CONNECTED_SUSPEND */
    free(v);
    fx_vm_op(&F, "vm1", "pause");
    cr_assert_eq(conns("vm1", &v, NULL, NULL), 1);
    cr_assert_eq(v[0].id, kept);
    free(v);
    fx_vm_op(&F, "vm1", "resume");
    fx_signal(&a.go, 1);
    cr_assert_eq(fx_wait(g), 0);
    for (i = 0; i < 2; i++)
        hvsim_close(c[i]);
    hvsim_close(l);
}
