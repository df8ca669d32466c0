/* SPDX-License-Identifier: MIT */
/*
 * test_route.c: unit tests of sim/daemon/route.c, driven directly on a
 * struct model (no daemon, no sockets): every bind rule (which VmIds a
 * partition may bind, conflicts, the one vsock port namespace, random and
 * ephemeral services, HCS bind security) and every connect rule (listener
 * precedence, the registry for classic VMs, HCS wildcard and service-table
 * rules, wildcard targets, parent, unknown, off and paused VMs, siblings,
 * the guest zero GUID, loopback, CIDs for the KVM-style host personality,
 * the refusal profiles), the addresses each side reports, and two mutants
 * that must change an outcome. Expected values follow docs/reference/hyperv-sockets.md
 * (sections cited per test) and the rules listed at the top of route.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hvsim/hvsim.h"
#include "hvproto/mutants.h"
#include "hvproto/util.h"
#include "../daemon/daemon.h"

static struct model m;
static struct part *vm1, *vm2, *wsl; /* two classic VMs and an HCS one */
static GUID S_REG; /* registered in GuestCommunicationServices */
static GUID S_REG2;
static GUID S_UNREG;

static GUID G(const char *text)
{
    GUID g;

    cr_assert_eq(hvsim_guid_parse(text, &g), 0, "bad test GUID %s", text);
    return g;
}

/* Port p's service GUID, as a Linux guest binds it. */
static GUID T(uint32_t port)
{
    return hvsim_guid_from_port(port);
}

/* The VmId the library sends for an AF_VSOCK connect on the host: Data1 = CID. */
static GUID CID(uint32_t cid)
{
    GUID g = HV_GUID_ZERO;

    g.Data1 = cid;
    return g;
}

static void setup(void)
{
    char err[256];
    int rc;

    model_init(&m);
    rc = model_vm_add(&m, "vm1", NULL, HVSIM_VM_CLASSIC, &vm1, err, sizeof(err));
    cr_assert_eq(rc, 0, "vm1: %d (%s)", rc, err);
    rc = model_vm_add(&m, "vm2", NULL, HVSIM_VM_CLASSIC, &vm2, err, sizeof(err));
    cr_assert_eq(rc, 0, "vm2: %d (%s)", rc, err);
    rc = model_vm_add(&m, "wsl", NULL, HVSIM_VM_HCS, &wsl, err, sizeof(err));
    cr_assert_eq(rc, 0, "wsl: %d (%s)", rc, err);
    cr_assert_neq(vm1->cid, vm2->cid, "two VMs share CID %u", vm1->cid);
    S_REG = G("999e53d4-3d5c-4c3e-8779-bed06ec056e1");
    S_REG2 = G("6c09bb55-d683-4da0-8931-c9bf705f6480");
    S_UNREG = G("c0ffee00-0000-4000-8000-00000000beef");
    cr_assert_eq(model_service_add(&m, &S_REG, "VM Session Service"), 0, "service_add");
    cr_assert_eq(model_service_add(&m, &S_REG2, "Second"), 0, "service_add");
}

static void teardown(void)
{
    model_free(&m);
}

TestSuite(route, .init = setup, .fini = teardown);

/* ---- helpers ---------------------------------------------------------------------- */

static struct bind *add_bind(struct part *p, uint32_t pers, GUID vmid, GUID svc, int listening)
{
    struct bind *b = calloc(1, sizeof(*b));

    cr_assert_not_null(b);
    b->part = p;
    b->pers = pers;
    b->vmid = vmid;
    b->svc = svc;
    b->listening = listening;
    cr_assert_eq(model_bind_add(&m, b), 0, "model_bind_add");
    return b;
}

static struct bind *listen_on(struct part *p, uint32_t pers, GUID vmid, GUID svc)
{
    return add_bind(p, pers, vmid, svc, 1);
}

static int do_bind(struct part *p, uint32_t pers, GUID vmid, GUID svc, GUID *ovmid, GUID *osvc, int *not_taken)
{
    struct route_bind_req rq = { .from = p, .pers = pers, .flags = 0, .vmid = vmid, .svc = svc };
    GUID v, s;
    int nt = -1;
    int rc = route_bind(&m, &rq, ovmid ? ovmid : &v, osvc ? osvc : &s, not_taken ? not_taken : &nt);

    return rc;
}

static struct route_conn_res conn_full(struct part *from, uint32_t pers, GUID vmid, GUID svc, uint32_t timeout_ms,
                                       const struct bind *bound)
{
    struct route_conn_req rq = { .from = from, .pers = pers, .timeout_ms = timeout_ms, .vmid = vmid, .svc = svc,
                                 .bound = bound };
    struct route_conn_res r;
    int rc = route_connect(&m, &rq, &r);

    cr_assert_eq(rc, 0, "route_connect returned %d", rc);
    return r;
}

static struct route_conn_res conn(struct part *from, uint32_t pers, GUID vmid, GUID svc)
{
    return conn_full(from, pers, vmid, svc, 0, NULL);
}

static void register_port(uint32_t port)
{
    GUID g = T(port);

    cr_assert_eq(model_service_add(&m, &g, "a Linux port"), 0, "service_add");
}

/* An errno's name for messages, "0" for success. */
static const char *ename(int e)
{
    return e == 0 ? "0" : hvsim_err_name(e);
}

static void set(const char *name, const char *value)
{
    char err[256];
    int rc = settings_set(&m.set, name, value, err, sizeof(err));

    cr_assert_eq(rc, 0, "settings_set %s=%s: %d (%s)", name, value, rc, err);
}

static const char *vname(uint32_t v)
{
    switch (v) {
    case HVSIM_VERDICT_OK:
        return "OK";
    case HVSIM_VERDICT_REFUSE:
        return "REFUSE";
    case HVSIM_VERDICT_NOANSWER:
        return "NOANSWER";
    case HVSIM_VERDICT_PENDING:
        return "PENDING";
    }
    return "?";
}

static unsigned long long bid(const struct bind *b)
{
    return b ? (unsigned long long)b->id : 0ull;
}

#define assert_ok(r, l)                                                                                \
    do {                                                                                               \
        struct route_conn_res r_ = (r);                                                                \
        cr_assert_eq(r_.outcome.verdict, HVSIM_VERDICT_OK, "verdict %s (error %s, timeout %u) vs OK", vname(r_.outcome.verdict), \
                     hvsim_err_name(r_.outcome.error), r_.outcome.wait_ms);                                         \
        cr_assert_eq(r_.listener, (l), "listener #%llu vs #%llu", bid(r_.listener), bid(l));           \
    } while (0)

#define assert_refuse(r, e)                                                                                \
    do {                                                                                                   \
        struct route_conn_res r_ = (r);                                                                    \
        cr_assert_eq(r_.outcome.verdict, HVSIM_VERDICT_REFUSE, "verdict %s (listener #%llu, timeout %u) vs REFUSE %s", \
                     vname(r_.outcome.verdict), bid(r_.listener), r_.outcome.wait_ms, hvsim_err_name(e));               \
        cr_assert_eq(r_.outcome.error, (e), "error %s (%d) vs %s (%d)", hvsim_err_name(r_.outcome.error), r_.outcome.error,        \
                     hvsim_err_name(e), (e));                                                              \
    } while (0)

#define assert_noanswer(r, t)                                                                              \
    do {                                                                                                   \
        struct route_conn_res r_ = (r);                                                                    \
        cr_assert_eq(r_.outcome.verdict, HVSIM_VERDICT_NOANSWER, "verdict %s (error %s, listener #%llu) vs NOANSWER", \
                     vname(r_.outcome.verdict), hvsim_err_name(r_.outcome.error), bid(r_.listener));                       \
        cr_assert_eq(r_.outcome.wait_ms, (uint32_t)(t), "timeout %u vs %u", r_.outcome.wait_ms, (uint32_t)(t));      \
    } while (0)

#define assert_guid_eq(a, b)                                                                       \
    do {                                                                                           \
        GUID ga_ = (a), gb_ = (b);                                                                 \
        char ta_[HVSIM_GUID_STRLEN], tb_[HVSIM_GUID_STRLEN];                                       \
        cr_assert(hvsim_guid_equal(&ga_, &gb_), "%s: %s vs %s", #a, hvsim_guid_format(&ga_, ta_),  \
                  hvsim_guid_format(&gb_, tb_));                                                   \
    } while (0)

#define assert_rc(expr, want)                                                                    \
    do {                                                                                         \
        int rc_ = (expr);                                                                        \
        cr_assert_eq(rc_, (want), "%s: %s (%d) vs %s (%d)", #expr, ename(rc_), rc_, ename(want), \
                     (want));                                              \
    } while (0)

/* ---- bind ------------------------------------------------------------------------ */

/* Reference 1.4: PARENT "on a physical host is not supported"; BROADCAST and
 * SILOHOST are no address of the host's own either. */
Test(route, host_bind_parent_broadcast_silohost_unavailable, .timeout = 5)
{
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG, NULL, NULL, NULL), -EADDRNOTAVAIL);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_BROADCAST, S_REG, NULL, NULL, NULL), -EADDRNOTAVAIL);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_SILOHOST, S_REG, NULL, NULL, NULL), -EADDRNOTAVAIL);
    /* What the host may bind. */
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG, NULL, NULL, NULL), 0);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_CHILDREN, S_REG, NULL, NULL, NULL), 0);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG, NULL, NULL, NULL), 0);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG, NULL, NULL, NULL), 0);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, wsl->id, S_REG, NULL, NULL, NULL), 0);
}

Test(route, bind_reports_requested_address, .timeout = 5)
{
    GUID v, s;
    int nt = -1;

    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG, &v, &s, &nt), 0);
    assert_guid_eq(v, vm1->id);
    assert_guid_eq(s, S_REG);
    cr_assert_eq(nt, 0, "listen_err %d vs 0", nt);
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG, &v, &s, &nt), 0);
    assert_guid_eq(v, HV_GUID_PARENT);
    assert_guid_eq(s, S_REG);
}

/* Reference 1.3-1.4, 2.3: a guest binds its parent, the wildcard, loopback or its own ID. */
Test(route, guest_bind_children_or_other_vm_unavailable, .timeout = 5)
{
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, HV_GUID_CHILDREN, S_REG, NULL, NULL, NULL), -EADDRNOTAVAIL);
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, vm2->id, S_REG, NULL, NULL, NULL), -EADDRNOTAVAIL);
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, wsl->id, S_REG, NULL, NULL, NULL), -EADDRNOTAVAIL);
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, m.host.id, S_REG, NULL, NULL, NULL), -EADDRNOTAVAIL);
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, HV_GUID_BROADCAST, S_REG, NULL, NULL, NULL), -EADDRNOTAVAIL);
    assert_rc(do_bind(wsl, HVSIM_PERS_WINDOWS, HV_GUID_CHILDREN, S_REG, NULL, NULL, NULL), -EADDRNOTAVAIL);
    /* What a guest may bind. */
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG, NULL, NULL, NULL), 0);
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG, NULL, NULL, NULL), 0);
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG, NULL, NULL, NULL), 0);
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, vm1->id, S_REG, NULL, NULL, NULL), 0);
}

/* Reference 4.1: a second listener on the same address is WSAEADDRINUSE. */
Test(route, duplicate_bind_is_addrinuse, .timeout = 5)
{
    listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG);
    listen_on(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG);
    listen_on(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG);
    add_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG2, 0); /* bound, not listening */

    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG, NULL, NULL, NULL), -EADDRINUSE);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG, NULL, NULL, NULL), -EADDRINUSE);
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG, NULL, NULL, NULL), -EADDRINUSE);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG2, NULL, NULL, NULL), -EADDRINUSE);
}

Test(route, wildcard_children_and_exact_binds_coexist, .timeout = 5)
{
    listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_CHILDREN, S_REG, NULL, NULL, NULL), 0);
    listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_CHILDREN, S_REG);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG, NULL, NULL, NULL), 0);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, vm2->id, S_REG, NULL, NULL, NULL), 0);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG, NULL, NULL, NULL), 0);
    /* The same VmId with another service is another address. */
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG2, NULL, NULL, NULL), 0);
}

Test(route, partitions_bind_the_same_address, .timeout = 5)
{
    listen_on(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG);
    listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(5000));
    assert_rc(do_bind(vm2, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG, NULL, NULL, NULL), 0);
    assert_rc(do_bind(wsl, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG, NULL, NULL, NULL), 0);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG, NULL, NULL, NULL), 0);
    assert_rc(do_bind(vm2, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(5000), NULL, NULL, NULL), 0);
}

/* Reference 3.1 and 6.3: a Linux port is the template service; the ports of a
 * VM are one namespace whichever socket family or VmId names them. */
Test(route, vsock_ports_are_one_namespace, .timeout = 5)
{
    GUID v;

    listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(5000));
    assert_rc(do_bind(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(5000), NULL, NULL, NULL), -EADDRINUSE);
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, T(5000), NULL, NULL, NULL), -EADDRINUSE);
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, T(5000), NULL, NULL, NULL), -EADDRINUSE);
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, vm1->id, T(5000), NULL, NULL, NULL), -EADDRINUSE);
    assert_rc(do_bind(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(5001), &v, NULL, NULL), 0);
    assert_guid_eq(v, HV_GUID_ZERO);
    /* A vsock bind has no VmId: whatever comes in, the bind reports CID_ANY's zero GUID. */
    assert_rc(do_bind(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(5002), &v, NULL, NULL), 0);
    assert_guid_eq(v, HV_GUID_ZERO);
    assert_rc(do_bind(vm2, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, T(5000), NULL, NULL, NULL), 0);

    /* And the other way round: a Windows bind of template(P) holds port P. */
    listen_on(vm2, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, T(6000));
    assert_rc(do_bind(vm2, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(6000), NULL, NULL, NULL), -EADDRINUSE);
    assert_rc(do_bind(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(6000), NULL, NULL, NULL), 0);
}

Test(route, zero_service_gets_random_guid, .timeout = 5)
{
    GUID v, s1, s2, s3;
    uint32_t port;

    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, HV_GUID_ZERO, &v, &s1, NULL), 0);
    assert_guid_eq(v, HV_GUID_ZERO);
    cr_assert(!hvsim_guid_equal(&s1, &HV_GUID_ZERO), "host: service still zero");
    cr_assert_eq(hvsim_guid_to_port(&s1, &port), 0, "a random service looks like a vsock port %u", port);
    listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, s1);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, HV_GUID_ZERO, NULL, &s2, NULL), 0);
    cr_assert(!hvsim_guid_equal(&s1, &s2), "two zero-service binds got the same service");
    assert_rc(do_bind(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, HV_GUID_ZERO, &v, &s3, NULL), 0);
    assert_guid_eq(v, HV_GUID_PARENT);
    cr_assert(!hvsim_guid_equal(&s3, &HV_GUID_ZERO), "guest: service still zero");
}

/* Reference 3.1: auto-bind picks a port above 1023 (LAST_RESERVED_PORT). */
Test(route, vsock_port_any_gets_ephemeral_port, .timeout = 5)
{
    GUID v, s;
    uint32_t port = 0, p2 = 0;
    int k;

    for (k = 0; k < 50; k++) {
        assert_rc(do_bind(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, HV_GUID_ZERO, &v, &s, NULL), 0);
        assert_guid_eq(v, HV_GUID_ZERO);
        cr_assert_eq(hvsim_guid_to_port(&s, &port), 1, "auto-bound service is not a template GUID");
        cr_assert_gt(port, 1023u, "auto-bound port %u vs > 1023", port);
        cr_assert_neq(port, VMADDR_PORT_ANY, "auto-bound port is VMADDR_PORT_ANY");
        listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, s);
    }
    /* A taken port is skipped. */
    m.next_port = 7000;
    listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(7000));
    assert_rc(do_bind(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, HV_GUID_ZERO, NULL, &s, NULL), 0);
    hvsim_guid_to_port(&s, &port);
    cr_assert_neq(port, 7000u, "auto-bind gave the taken port %u", port);
    cr_assert_gt(port, 1023u, "%u vs > 1023", port);
    /* Also at the top of the range: never a reserved port after wrapping. */
    m.next_port = 0x7ffffffe;
    assert_rc(do_bind(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, HV_GUID_ZERO, NULL, &s, NULL), 0);
    hvsim_guid_to_port(&s, &port);
    listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, s);
    assert_rc(do_bind(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, HV_GUID_ZERO, NULL, &s, NULL), 0);
    hvsim_guid_to_port(&s, &p2);
    cr_assert_gt(port, 1023u, "%u vs > 1023", port);
    cr_assert_gt(p2, 1023u, "after wrap: %u vs > 1023", p2);
    cr_assert_neq(port, p2, "same port twice: %u vs %u", port, p2);
    /* The KVM-style host personality too. */
    assert_rc(do_bind(&m.host, HVSIM_PERS_VSOCK_HOST, HV_GUID_ZERO, HV_GUID_ZERO, NULL, &s, NULL), 0);
    cr_assert_eq(hvsim_guid_to_port(&s, &port), 1, "host auto-bind is not a template GUID");
    cr_assert_gt(port, 1023u, "host auto-bind: %u vs > 1023", port);
}

/* hyperv-sockets.md 2.4, 4.2, 7 (item 4): a denying BindSecurityDescriptor
 * makes the host's listen on the VM id fail with WSAEACCES; the bind itself
 * goes through. */
Test(route, hcs_bind_deny_fails_the_listen_with_eacces, .timeout = 5)
{
    hvsim_hcs_service_t h = { .id = S_REG, .bind_deny = 1 };
    struct bind *b;
    int le = 1;

    cr_assert_eq(model_hcs_set(wsl, &h), 0, "hcs_set");
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, wsl->id, S_REG, NULL, NULL, &le), 0);
    cr_assert_eq(le, -EACCES, "listen_err %d vs -EACCES", le);
    b = add_bind(&m.host, HVSIM_PERS_WINDOWS, wsl->id, S_REG, 0);
    b->listen_err = le;
    assert_rc(route_listen(&m, b), -EACCES);
    /* Only that VM and that service: wildcard binds are not checked against it. */
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, wsl->id, S_REG2, NULL, NULL, NULL), 0);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG, NULL, NULL, NULL), 0);
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG, NULL, NULL, NULL), 0);
}

/* Reference 4.2: VM id, Disabled=true: the bind silently does not take and
 * listen() is WSAEINVAL; a wildcard bind of a disabled service is OK. */
Test(route, hcs_disabled_bind_not_taken, .timeout = 5)
{
    hvsim_hcs_service_t h = { .id = S_REG, .disabled = 1 };
    struct bind *b;
    int nt = -1;

    cr_assert_eq(model_hcs_set(wsl, &h), 0, "hcs_set");
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, wsl->id, S_REG, NULL, NULL, &nt), 0);
    cr_assert_eq(nt, -EINVAL, "listen_err %d vs -EINVAL", nt);
    b = add_bind(&m.host, HVSIM_PERS_WINDOWS, wsl->id, S_REG, 0);
    b->listen_err = nt;
    assert_rc(route_listen(&m, b), -EINVAL);

    nt = -1;
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG, NULL, NULL, &nt), 0);
    cr_assert_eq(nt, 0, "wildcard bind: listen_err %d vs 0", nt);
    b = add_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG, 0);
    b->listen_err = nt;
    assert_rc(route_listen(&m, b), 0);
    nt = -1;
    assert_rc(do_bind(&m.host, HVSIM_PERS_WINDOWS, wsl->id, S_REG2, NULL, NULL, &nt), 0);
    cr_assert_eq(nt, 0, "another service: listen_err %d vs 0", nt);
}

/* ---- connect: guest to host -------------------------------------------------------- */

/* Route.c's rule: exact VM ID listener, then children, then wildcard. */
Test(route, guest_to_host_listener_precedence, .timeout = 5)
{
    struct bind *lw, *lc, *le, *lo;

    /* Added in an order that is not the precedence order. */
    lw = listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG);
    le = listen_on(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG);
    lo = listen_on(&m.host, HVSIM_PERS_WINDOWS, vm2->id, S_REG);
    lc = listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_CHILDREN, S_REG);
    add_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG, 0);

    assert_ok(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), le);
    assert_ok(conn(vm2, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), lo);
    model_bind_remove(&m, le);
    assert_ok(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), lc);
    model_bind_remove(&m, lc);
    assert_ok(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), lw);
    assert_ok(conn(vm2, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), lo);
    /* A listener of another service never answers. */
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG2), -ECONNREFUSED);
}

Test(route, bound_but_not_listening_does_not_answer, .timeout = 5)
{
    add_bind(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG, 0);
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), -ECONNREFUSED);
    set("windows_connect_timeout_ms", "30000");
    assert_noanswer(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, S_REG), 2000);
}

/* Reference 2.2, 3.3, 4.4, 4.7: an unregistered service on a classic VM. */
Test(route, classic_guest_unregistered_service, .timeout = 5)
{
    listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_UNREG);
    listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_CHILDREN, S_UNREG);
    listen_on(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_UNREG);
    listen_on(&m.host, HVSIM_PERS_WINDOWS, vm1->id, T(4000)); /* not registered either */
    /* Make the two defaults differ, to see which one a Linux guest gets. */
    set("windows_connect_timeout_ms", "30000");

    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_UNREG), -ECONNREFUSED);
    assert_noanswer(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(4000)), 2000);
    assert_noanswer(conn_full(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(4000), 750, NULL), 750);
    set("linux_connect_timeout_ms", "4321");
    assert_noanswer(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(4000)), 4321);

    m.set.profile = PROFILE_KVM;
    assert_refuse(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(4000)), -ECONNRESET);
    /* A Windows guest is refused under either profile (the host sends TL_CONNECT_RESULT). */
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_UNREG), -ECONNREFUSED);
}

Test(route, classic_guest_registered_service, .timeout = 5)
{
    struct bind *l;

    /* Registered, nobody listens. */
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), -ECONNREFUSED);
    register_port(4000);
    assert_noanswer(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(4000)), 2000);
    /* Registered and listened: a Linux guest reaches a host wildcard listener. */
    l = listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, T(4000));
    assert_ok(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(4000)), l);
    l = listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG);
    assert_ok(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), l);
}

/* ---- connect: HCS VMs (reference 2.4, 4.2, 4.7) ---------------------------------------- */

Test(route, hcs_guest_ignores_wildcard_listeners, .timeout = 5)
{
    struct bind *lw, *lc;
    hvsim_hcs_service_t h = { .id = S_REG, .allow_wildcard_binds = 0 };

    /* S_REG is even registered: the registry does not matter for HCS VMs. */
    lw = listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG);
    assert_refuse(conn(wsl, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), -ECONNREFUSED);
    assert_noanswer(conn(wsl, HVSIM_PERS_LINUX, HV_GUID_PARENT, S_REG), 2000);
    lc = listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_CHILDREN, S_REG);
    assert_refuse(conn(wsl, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), -ECONNREFUSED);
    /* An explicit AllowWildcardBinds=false entry: still refused. */
    cr_assert_eq(model_hcs_set(wsl, &h), 0, "hcs_set");
    assert_refuse(conn(wsl, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), -ECONNREFUSED);
    /* The classic VM hears the same listeners. */
    assert_ok(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), lc);

    /* AllowWildcardBinds=true: children, then wildcard. */
    h.allow_wildcard_binds = 1;
    cr_assert_eq(model_hcs_set(wsl, &h), 0, "hcs_set");
    assert_ok(conn(wsl, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), lc);
    model_bind_remove(&m, lc);
    assert_ok(conn(wsl, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), lw);
}

Test(route, hcs_guest_needs_no_registry, .timeout = 5)
{
    struct bind *le = listen_on(&m.host, HVSIM_PERS_WINDOWS, wsl->id, S_UNREG);
    struct bind *lp = listen_on(&m.host, HVSIM_PERS_WINDOWS, wsl->id, T(5555));

    listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_UNREG);
    assert_ok(conn(wsl, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_UNREG), le);
    assert_ok(conn(wsl, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(5555)), lp);
    /* The same unregistered service from a classic VM is refused. */
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_UNREG), -ECONNREFUSED);
}

Test(route, hcs_disabled_hides_every_listener, .timeout = 5)
{
    hvsim_hcs_service_t h = { .id = S_UNREG, .disabled = 1, .allow_wildcard_binds = 1 };

    cr_assert_eq(model_hcs_set(wsl, &h), 0, "hcs_set");
    listen_on(&m.host, HVSIM_PERS_WINDOWS, wsl->id, S_UNREG);
    listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_UNREG);
    assert_refuse(conn(wsl, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_UNREG), -ECONNREFUSED);
    assert_noanswer(conn(wsl, HVSIM_PERS_LINUX, HV_GUID_PARENT, S_UNREG), 2000);
}

Test(route, host_to_hcs_vm_connect_deny_and_disabled, .timeout = 5)
{
    hvsim_hcs_service_t h = { .id = S_UNREG, .connect_deny = 1 };
    struct bind *l = listen_on(wsl, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_UNREG);
    struct bind *l2 = listen_on(wsl, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG2);

    assert_ok(conn(&m.host, HVSIM_PERS_WINDOWS, wsl->id, S_UNREG), l);
    cr_assert_eq(model_hcs_set(wsl, &h), 0, "hcs_set");
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, wsl->id, S_UNREG), -EACCES);
    assert_ok(conn(&m.host, HVSIM_PERS_WINDOWS, wsl->id, S_REG2), l2);
    h.connect_deny = 0;
    h.disabled = 1;
    cr_assert_eq(model_hcs_set(wsl, &h), 0, "hcs_set");
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, wsl->id, S_UNREG), -EINVAL);
    /* Table entries of an HCS VM do not apply to a classic VM's listeners. */
    l = listen_on(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_UNREG);
    assert_ok(conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_UNREG), l);
}

/* ---- connect: from the host ----------------------------------------------------------- */

/* Reference 4.2: a wildcard as the target is WSAEADDRNOTAVAIL, whatever listens. */
Test(route, host_to_wildcard_targets_unavailable, .timeout = 5)
{
    listen_on(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG);
    listen_on(vm1, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG2);
    listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG);
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG), -EADDRNOTAVAIL);
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_CHILDREN, S_REG), -EADDRNOTAVAIL);
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_BROADCAST, S_REG), -EADDRNOTAVAIL);
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG2), -EADDRNOTAVAIL);
}

Test(route, host_to_parent_unreachable, .timeout = 5)
{
    listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG);
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), -ENETUNREACH);
}

Test(route, host_to_unknown_vm, .timeout = 5)
{
    GUID nobody = G("0badf00d-1111-4222-8333-444455556666");

    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, nobody, S_REG), -ENETUNREACH);
    set("connect_to_unknown_vm", "timeout");
    set("windows_connect_timeout_ms", "30000");
    assert_noanswer(conn(&m.host, HVSIM_PERS_WINDOWS, nobody, S_REG), 30000);
    assert_noanswer(conn_full(&m.host, HVSIM_PERS_WINDOWS, nobody, S_REG, 500, NULL), 500);
    set("connect_to_unknown_vm", "ECONNREFUSED");
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, nobody, S_REG), -ECONNREFUSED);
}

/* hyperv-sockets.md 7 (item 2): host -> an off VM, WSAENETUNREACH by default
 * ("not started" to Microsoft's client code; a setting). */
Test(route, host_to_off_vm, .timeout = 5)
{
    listen_on(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG);
    vm1->state = HVSIM_VM_OFF;
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG), -ENETUNREACH);
    set("connect_to_off_vm", "EADDRNOTAVAIL");
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG), -EADDRNOTAVAIL);
    set("connect_to_off_vm", "EINVAL");
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG), -EINVAL);
    set("connect_to_off_vm", "timeout");
    assert_noanswer(conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG), 2000);
}

Test(route, host_to_paused_vm_no_answer, .timeout = 5)
{
    listen_on(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG);
    vm1->state = HVSIM_VM_PAUSED;
    set("windows_connect_timeout_ms", "30000");
    assert_noanswer(conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG), 30000);
    assert_noanswer(conn_full(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG, 1500, NULL), 1500);
    vm1->state = HVSIM_VM_RUNNING;
    cr_assert_eq(conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG).outcome.verdict, HVSIM_VERDICT_OK, "after resume");
}

Test(route, guest_of_stopped_vm_cannot_connect, .timeout = 5)
{
    listen_on(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG);
    listen_on(&m.host, HVSIM_PERS_WINDOWS, vm1->id, T(4000));
    listen_on(vm1, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG2);
    register_port(4000);
    vm1->state = HVSIM_VM_PAUSED;
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), -ENETDOWN);
    assert_refuse(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(4000)), -ENETDOWN);
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG2), -ENETDOWN);
    vm1->state = HVSIM_VM_OFF;
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG), -ENETDOWN);
    assert_refuse(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(4000)), -ENETDOWN);
}

/* Reference 3.1 and 4.4: guests cannot reach siblings (ENETUNREACH, a setting). */
Test(route, guest_to_sibling_unreachable, .timeout = 5)
{
    listen_on(vm2, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG);
    listen_on(vm2, HVSIM_PERS_WINDOWS, vm2->id, S_REG);
    listen_on(wsl, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG);
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, vm2->id, S_REG), -ENETUNREACH);
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, wsl->id, S_REG), -ENETUNREACH);
    set("guest_to_other_vm", "timeout");
    assert_noanswer(conn(vm1, HVSIM_PERS_WINDOWS, vm2->id, S_REG), 2000);
}

/* Reference 2.3: the 2015 guide's zero GUID from a guest reaches the host. */
Test(route, guest_zero_vmid, .timeout = 5)
{
    struct bind *l = listen_on(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG);
    struct route_conn_res r;

    r = conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG);
    assert_ok(r, l);
    cr_assert_eq(r.to, &m.host, "zero GUID did not go to the host");
    set("guest_zero_vmid_reaches_host", "0");
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG), -EADDRNOTAVAIL);
    m.set.zero_reaches_parent = 1;
    assert_ok(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG), l);
}

/* ---- loopback (reference 4.1) -------------------------------------------------------- */

Test(route, loopback_without_listener_refused, .timeout = 5)
{
    listen_on(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG); /* hears vm1 only, not loopback */
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG), -ECONNREFUSED);
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, m.host.id, S_REG), -ECONNREFUSED);
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG), -ECONNREFUSED);
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, vm1->id, S_REG), -ECONNREFUSED);
    /* Refused at once under the KVM profile too; never a timeout. */
    m.set.profile = PROFILE_KVM;
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG), -ECONNREFUSED);
}

Test(route, loopback_listeners, .timeout = 5)
{
    struct bind *lw = listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_UNREG);
    struct bind *ll = listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_UNREG);
    struct bind *g = listen_on(vm1, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_UNREG);

    /* No registry for loopback; LOOPBACK beats the wildcard, which hears every partition. */
    assert_ok(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_UNREG), ll);
    assert_ok(conn(&m.host, HVSIM_PERS_WINDOWS, m.host.id, S_UNREG), ll);
    assert_ok(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_UNREG), g);
    model_bind_remove(&m, ll);
    assert_ok(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_UNREG), lw);
    /* A guest's loopback stays in the guest. */
    model_bind_remove(&m, g);
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_UNREG), -ECONNREFUSED);
}

/* Route.c's (INFERRED) loopback precedence on the host: LOOPBACK, the host's
 * own id, then CHILDREN (go-winio reports CHILDREN as both ends' local VmId),
 * then the wildcard; an exact VM-id listener never hears loopback. */
Test(route, loopback_precedence_on_host, .timeout = 5)
{
    struct bind *lw = listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG);
    struct bind *lc = listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_CHILDREN, S_REG);
    struct bind *lh = listen_on(&m.host, HVSIM_PERS_WINDOWS, m.host.id, S_REG);
    struct bind *ll = listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG);

    listen_on(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG);
    assert_ok(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG), ll);
    model_bind_remove(&m, ll);
    assert_ok(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG), lh);
    model_bind_remove(&m, lh);
    assert_ok(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG), lc);
    model_bind_remove(&m, lc);
    assert_ok(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG), lw);
}

Test(route, loopback_addresses, .timeout = 5)
{
    struct bind *l = listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG);
    struct bind *mine;
    struct route_conn_res r;
    GUID mysvc = G("12345678-9abc-4def-8123-456789abcdef");

    r = conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG);
    assert_ok(r, l);
    cr_assert_eq(r.to, &m.host, "loopback went elsewhere");
    assert_guid_eq(r.conn_local.vmid, HV_GUID_CHILDREN);
    cr_assert(!hvsim_guid_equal(&r.conn_local.svc, &HV_GUID_ZERO), "connector's service is zero");
    cr_assert(!hvsim_guid_equal(&r.conn_local.svc, &S_REG), "connector's service is the listener's");
    assert_guid_eq(r.conn_peer.vmid, HV_GUID_LOOPBACK);
    assert_guid_eq(r.conn_peer.svc, S_REG);
    assert_guid_eq(r.acc_local.vmid, HV_GUID_CHILDREN);
    assert_guid_eq(r.acc_local.svc, S_REG);
    assert_guid_eq(r.acc_peer.vmid, HV_GUID_LOOPBACK);
    assert_guid_eq(r.acc_peer.svc, r.conn_local.svc);

    /* A bound connector reports its own service on both sides. */
    mine = add_bind(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, mysvc, 0);
    r = conn_full(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG, 0, mine);
    assert_ok(r, l);
    assert_guid_eq(r.conn_local.svc, mysvc);
    assert_guid_eq(r.acc_peer.svc, mysvc);
}

/* ---- addresses across partitions (reference 4.2) ---------------------------------------- */

Test(route, guest_to_host_addresses, .timeout = 5)
{
    struct bind *le = listen_on(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG);
    struct route_conn_res r;

    r = conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG);
    assert_ok(r, le);
    cr_assert_eq(r.to, &m.host, "went elsewhere");
    assert_guid_eq(r.conn_peer.vmid, HV_GUID_PARENT);
    assert_guid_eq(r.conn_peer.svc, S_REG);
    assert_guid_eq(r.acc_local.vmid, vm1->id);
    assert_guid_eq(r.acc_local.svc, S_REG);
    assert_guid_eq(r.acc_peer.vmid, vm1->id);
    assert_guid_eq(r.acc_peer.svc, r.conn_local.svc);
    cr_assert_eq(r.conn_peer.cid, (uint32_t)VMADDR_CID_HOST, "peer_cid %u vs %u", r.conn_peer.cid, VMADDR_CID_HOST);
    cr_assert_eq(r.acc_peer.cid, vm1->cid, "acc_peer_cid %u vs %u", r.acc_peer.cid, vm1->cid);

    /* Through a wildcard listener the accepted side still reports the VM's id. */
    model_bind_remove(&m, le);
    le = listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG);
    r = conn(vm2, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG);
    assert_ok(r, le);
    assert_guid_eq(r.acc_local.vmid, vm2->id);
    assert_guid_eq(r.acc_local.svc, S_REG);
    assert_guid_eq(r.acc_peer.vmid, vm2->id);
    assert_guid_eq(r.conn_peer.vmid, HV_GUID_PARENT);
}

Test(route, host_to_guest_addresses, .timeout = 5)
{
    /* No registry needed when the guest listens and the host connects (reference 2.2). */
    struct bind *l = listen_on(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_UNREG);
    struct route_conn_res r;

    r = conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_UNREG);
    assert_ok(r, l);
    cr_assert_eq(r.to, vm1, "went elsewhere");
    assert_guid_eq(r.conn_peer.vmid, vm1->id);
    assert_guid_eq(r.conn_peer.svc, S_UNREG);
    assert_guid_eq(r.acc_local.vmid, HV_GUID_PARENT);
    assert_guid_eq(r.acc_local.svc, S_UNREG);
    assert_guid_eq(r.acc_peer.svc, r.conn_local.svc);
    cr_assert_eq(r.conn_peer.cid, vm1->cid, "peer_cid %u vs %u", r.conn_peer.cid, vm1->cid);
    cr_assert_eq(r.acc_peer.cid, (uint32_t)VMADDR_CID_HOST, "acc_peer_cid %u vs %u", r.acc_peer.cid,
                 VMADDR_CID_HOST);
    /* A guest wildcard listener hears the host too; only vm1's listeners answer for vm1. */
    l = listen_on(vm2, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_UNREG);
    assert_ok(conn(&m.host, HVSIM_PERS_WINDOWS, vm2->id, S_UNREG), l);
}

Test(route, host_to_guest_without_listener, .timeout = 5)
{
    listen_on(vm2, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG); /* another VM's */
    set("windows_connect_timeout_ms", "30000");
    assert_noanswer(conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG), 30000);
    assert_noanswer(conn_full(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG, 900, NULL), 900);
    m.set.profile = PROFILE_KVM;
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG), -ECONNRESET);
}

/* ---- the KVM-style host personality and Linux guests (reference 3.1, 3.2) ---------------- */

Test(route, vsock_host_reaches_vm_by_cid, .timeout = 5)
{
    struct bind *l1 = listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(5000));
    struct bind *l2 = listen_on(vm2, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(5000));
    struct route_conn_res r;

    r = conn(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm1->cid), T(5000));
    assert_ok(r, l1);
    cr_assert_eq(r.to, vm1, "went elsewhere");
    cr_assert_eq(r.conn_peer.cid, vm1->cid, "peer_cid %u vs %u", r.conn_peer.cid, vm1->cid);
    cr_assert_eq(r.acc_peer.cid, (uint32_t)VMADDR_CID_HOST, "acc_peer_cid %u vs %u", r.acc_peer.cid,
                 VMADDR_CID_HOST);
    cr_assert_eq(hvsim_guid_to_port(&r.conn_local.svc, NULL), 1, "connector's local service is not a port");
    assert_guid_eq(r.acc_peer.svc, r.conn_local.svc);
    assert_ok(conn(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm2->cid), T(5000)), l2);
    /* No listener on that port of a known CID. */
    assert_noanswer(conn(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm1->cid), T(5001)), 2000);
    m.set.profile = PROFILE_KVM;
    assert_refuse(conn(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm1->cid), T(5001)), -ECONNRESET);
}

Test(route, vsock_host_unknown_cid_reset, .timeout = 5)
{
    listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(5000));
    assert_refuse(conn(&m.host, HVSIM_PERS_VSOCK_HOST, CID(9999), T(5000)), -ECONNRESET);
    assert_refuse(conn(&m.host, HVSIM_PERS_VSOCK_HOST, CID(VMADDR_CID_ANY), T(5000)), -ECONNRESET);
}

Test(route, vsock_host_local_cid_is_loopback, .timeout = 5)
{
    struct bind *l = listen_on(&m.host, HVSIM_PERS_VSOCK_HOST, HV_GUID_ZERO, T(5000));
    struct route_conn_res r;

    r = conn(&m.host, HVSIM_PERS_VSOCK_HOST, CID(VMADDR_CID_LOCAL), T(5000));
    assert_ok(r, l);
    cr_assert_eq(r.to, &m.host, "went elsewhere");
    cr_assert_eq(r.conn_peer.cid, (uint32_t)VMADDR_CID_LOCAL, "peer_cid %u vs %u", r.conn_peer.cid, VMADDR_CID_LOCAL);
    cr_assert_eq(r.acc_peer.cid, (uint32_t)VMADDR_CID_LOCAL, "acc_peer_cid %u vs %u", r.acc_peer.cid,
                 VMADDR_CID_LOCAL);
}

/* Reference 3.2, 6.2: a Linux guest hears only template service IDs. */
Test(route, host_to_linux_guest_needs_template_service, .timeout = 5)
{
    struct bind *l = listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(5000));
    GUID almost = T(5000);

    /* A Windows host process dials the template GUID of the port: the listener answers. */
    assert_ok(conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, T(5000)), l);
    /* Same Data1, but not the template: no listener, the guest ignores the offer. */
    almost.Data4[7] ^= 0x01;
    assert_noanswer(conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, almost), 2000);
    assert_noanswer(conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_UNREG), 2000);
}

/* ---- mutants: each rule, broken on purpose, changes an outcome ---------------------------- */
/* Only a mutant build (make MUTANTS=1) can break a rule; make conformance-mutants runs these. */
#ifdef HVSIM_MUTANTS

Test(route, mutant_registry_required, .timeout = 5)
{
    struct bind *l = listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_UNREG);

    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_UNREG), -ECONNREFUSED);
    hvsim__mutant_select("registry.required");
    assert_ok(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_UNREG), l);
    cr_assert_eq(hvsim__mutant_select("some.other-rule"), -EINVAL, "an unknown mutant is refused");
    hvsim__mutant_select(NULL);
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_UNREG), -ECONNREFUSED);
    hvsim__mutant_select(NULL);
}

Test(route, mutant_loopback_refused, .timeout = 5)
{
    assert_refuse(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG), -ECONNREFUSED);
    hvsim__mutant_select("loopback.times-out");
    assert_noanswer(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG), 2000);
    hvsim__mutant_select(NULL);
}
#endif

/* ---- the gateway of a VM whose guest runs its own kernel (QEMU) ------------------- */

static struct bind *gateway_of(struct part *p)
{
    struct bind *b = listen_on(p, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(0x7ffff000u));

    b->gateway = 1;
    b->gw_fd = -1; /* no channel: a gateway whose back-end is gone */
    return b;
}

Test(route, gateway_hears_template_services_of_its_vm_only)
{
    struct bind *gw = gateway_of(vm1);
    struct route_conn_res r;
    GUID want = T(5001);

    gw->gw_fd = 1000; /* an open-looking channel: route.c does no I/O */
    r = conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, T(5001));
    cr_assert_eq(r.outcome.verdict, HVSIM_VERDICT_PENDING, "the back-end asks the guest");
    cr_assert_eq(r.outcome.wait_ms, 2000u, "within the connector's default timeout: %u", r.outcome.wait_ms);
    cr_assert_eq(r.listener, gw);
    /* The guest's accept reports the port asked for, not the gateway's own. */
    cr_assert(hvsim_guid_equal(&r.acc_local.svc, &want));
    /* By CID from a KVM-style host program, too. */
    r = conn(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm1->cid), T(5002));
    cr_assert_eq(r.listener, gw);
    /* A service that is no port: Linux guests never hear it (3.1). */
    r = conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, S_REG);
    cr_assert_neq(r.outcome.verdict, HVSIM_VERDICT_OK);
    /* Another VM's connections are not its business. */
    r = conn(&m.host, HVSIM_PERS_WINDOWS, vm2->id, T(5001));
    cr_assert_neq(r.outcome.verdict, HVSIM_VERDICT_OK);
    gw->gw_fd = -1; /* model_free must not close a made-up fd */
}

Test(route, gateway_yields_to_a_listener_and_needs_its_channel)
{
    struct bind *gw = gateway_of(vm1);
    struct bind *l = listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(5001));
    struct route_conn_res r;

    gw->gw_fd = 1000;
    r = conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, T(5001));
    cr_assert_eq(r.listener, l, "a listener the daemon sees wins over asking the guest");
    gw->gw_fd = -1;
    r = conn(&m.host, HVSIM_PERS_WINDOWS, vm1->id, T(5002));
    cr_assert_eq(r.outcome.verdict, HVSIM_VERDICT_NOANSWER, "a gateway whose back-end left is no listener");
}

Test(route, cid_addressing_is_the_hosts_alone)
{
    struct route_conn_req rq = { .from = vm1, .pers = HVSIM_PERS_VSOCK_HOST, .vmid = CID(vm2->cid), .svc = T(5000) };
    struct route_bind_req bq = { .from = vm1, .pers = HVSIM_PERS_VSOCK_HOST, .vmid = HV_GUID_ZERO, .svc = T(5000) };
    struct route_conn_res r;
    GUID v, s;
    int nt;

    listen_on(vm2, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(5000));
    /* A guest claiming the host's KVM personality would reach its sibling by CID. */
    cr_assert_eq(route_connect(&m, &rq, &r), -EINVAL);
    cr_assert_eq(route_bind(&m, &bq, &v, &s, &nt), -EINVAL);
    rq.from = &m.host;
    cr_assert_eq(route_connect(&m, &rq, &r), 0);
    cr_assert_eq(r.outcome.verdict, HVSIM_VERDICT_OK, "the host reaches vm2 by its CID");
}

/* ---- one outcome: what a routed connect gets when its listener is gone ----------- */

#define assert_outcome(o, v, e, w, rl)                                                                       \
    do {                                                                                                     \
        struct hvsim_outcome o_ = (o);                                                                       \
        cr_assert_eq(o_.verdict, (uint32_t)(v), "%s: verdict %s vs %s", #o, vname(o_.verdict), vname(v));   \
        cr_assert_eq(o_.error, (e), "%s: error %s vs %s", #o, ename(o_.error), ename(e));                   \
        cr_assert_eq(o_.wait_ms, (uint32_t)(w), "%s: wait %u vs %u", #o, o_.wait_ms, (uint32_t)(w));        \
        cr_assert_eq(o_.rule, (uint32_t)(rl), "%s: rule %u vs %u", #o, o_.rule, (uint32_t)(rl));           \
    } while (0)

Test(route, vanished_listener_is_no_listener_in_every_profile)
{
    listen_on(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, S_REG);
    /* Hyper-V profile: a Linux guest's request goes unanswered. */
    assert_outcome(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, S_REG).vanished, HVSIM_VERDICT_NOANSWER, -ETIMEDOUT,
                   2000, HVSIM_RULE_NO_ANSWER);
    assert_outcome(conn_full(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, S_REG, 300, NULL).vanished,
                   HVSIM_VERDICT_NOANSWER, -ETIMEDOUT, 300, HVSIM_RULE_NO_ANSWER);
    /* A Windows guest and loopback are told at once. */
    assert_outcome(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_REG).vanished, HVSIM_VERDICT_REFUSE,
                   -ECONNREFUSED, 0, HVSIM_RULE_WINDOWS_GUEST_REFUSED);
    assert_outcome(conn(&m.host, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, S_REG).vanished, HVSIM_VERDICT_REFUSE,
                   -ECONNREFUSED, 0, HVSIM_RULE_LOOPBACK_REFUSED);
    /* KVM profile: the transport's RST, as when nobody listened at all. */
    set("refusal_profile", "kvm");
    assert_outcome(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, S_REG).vanished, HVSIM_VERDICT_REFUSE, -ECONNRESET, 0,
                   HVSIM_RULE_KVM_RST);
    assert_outcome(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, S_UNREG).outcome, HVSIM_VERDICT_REFUSE, -ECONNRESET,
                   0, HVSIM_RULE_KVM_RST);
    assert_outcome(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, S_REG).outcome, HVSIM_VERDICT_OK, 0, 0,
                   HVSIM_RULE_LISTENER);
}

Test(route, guest_answer_follows_the_profile)
{
    assert_outcome(route_guest_answer(&m, HVSIM_GW_ACCEPT, 500), HVSIM_VERDICT_OK, 0, 0, HVSIM_RULE_GUEST_ACCEPTED);
    /* Hyper-V withholds the guest kernel's RST: the connector waits out its time. */
    assert_outcome(route_guest_answer(&m, HVSIM_GW_REFUSE, 500), HVSIM_VERDICT_NOANSWER, -ETIMEDOUT, 500,
                   HVSIM_RULE_NO_ANSWER);
    assert_outcome(route_guest_answer(&m, HVSIM_GW_SILENT, 70), HVSIM_VERDICT_NOANSWER, -ETIMEDOUT, 70,
                   HVSIM_RULE_GUEST_SILENT);
    set("refusal_profile", "kvm");
    assert_outcome(route_guest_answer(&m, HVSIM_GW_REFUSE, 500), HVSIM_VERDICT_REFUSE, -ECONNRESET, 0,
                   HVSIM_RULE_GUEST_RST);
    assert_outcome(route_guest_answer(&m, HVSIM_GW_SILENT, 70), HVSIM_VERDICT_NOANSWER, -ETIMEDOUT, 70,
                   HVSIM_RULE_GUEST_SILENT);
}

/* ---- ceilings (issue 11) --------------------------------------------------------------------- */

/* A partition at max_binds_per_partition gets ENOBUFS; another partition,
 * and the same one after a bind goes, are not held back. */
Test(route, binds_ceiling_is_per_partition)
{
    struct bind *b[3];
    int i;

    m.set.max_binds = 3;
    for (i = 0; i < 3; i++) {
        cr_assert_eq(do_bind(vm1, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, hvsim_guid_from_port(100 + (uint32_t)i), NULL,
                             NULL, NULL),
                     0);
        b[i] = add_bind(vm1, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, hvsim_guid_from_port(100 + (uint32_t)i), 0);
    }
    cr_assert_eq(vm1->nbinds, 3u);
    cr_assert_eq(do_bind(vm1, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, hvsim_guid_from_port(200), NULL, NULL, NULL),
                 -ENOBUFS);
    cr_assert_eq(do_bind(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, hvsim_guid_from_port(200), NULL, NULL, NULL), -ENOBUFS);
    cr_assert_eq(do_bind(vm2, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, hvsim_guid_from_port(200), NULL, NULL, NULL), 0);
    model_bind_remove(&m, b[0]);
    cr_assert_eq(vm1->nbinds, 2u);
    cr_assert_eq(do_bind(vm1, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, hvsim_guid_from_port(200), NULL, NULL, NULL), 0);
}

/* A removal saved before it happens (handlers_admin.c): the VM leaves the
 * list and comes back in its place, and every change moves the generation
 * that paged lists compare. */
Test(route, vm_detach_and_reattach_keep_the_order)
{
    uint32_t gen = m.gen;
    size_t at = model_vm_detach(&m, vm2);

    cr_assert_eq(at, 1);
    cr_assert_eq(m.nvms, 2);
    cr_assert_null(model_vm_find(&m, "vm2"));
    cr_assert_neq(m.gen, gen);
    gen = m.gen;
    model_vm_reattach(&m, vm2, at);
    cr_assert_eq(m.nvms, 3);
    cr_assert_eq(m.vms[0], vm1);
    cr_assert_eq(m.vms[1], vm2);
    cr_assert_eq(m.vms[2], wsl);
    cr_assert_neq(m.gen, gen);
    gen = m.gen;
    cr_assert_eq(model_service_rm(&m, &S_REG2), 0);
    cr_assert_neq(m.gen, gen);
}

/* ---- a VM's transport (issue 13) --------------------------------------------------- */

/* A virtio VM's refusals are KVM's whatever refusal_profile says: its kernel
 * (or vhost-vsock on the host) answers a request nobody takes with RST; an
 * hv_sock VM keeps following the setting. */
Test(route, virtio_vm_refuses_with_rst_whatever_the_profile)
{
    char err[128];

    cr_assert_eq(model_vm_set_transport(vm2, HVSIM_TRANSPORT_VIRTIO, HVSIM_KERNEL_6_12, err, sizeof(err)), 0, "%s",
                 err);
    /* refusal_profile=hyperv (the default) */
    assert_refuse(conn(vm2, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(5000)), -ECONNRESET);
    assert_refuse(conn(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm2->cid), T(5000)), -ECONNRESET);
    assert_noanswer(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(5000)), 2000);
    assert_noanswer(conn(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm1->cid), T(5000)), 2000);
    /* A vanished listener is the same refusal. */
    listen_on(&m.host, HVSIM_PERS_VSOCK_HOST, HV_GUID_ZERO, T(5001));
    register_port(5001);
    assert_outcome(conn(vm2, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(5001)).vanished, HVSIM_VERDICT_REFUSE, -ECONNRESET,
                   0, HVSIM_RULE_KVM_RST);
    /* Windows guests are told ECONNREFUSED as before. */
    assert_refuse(conn(vm2, HVSIM_PERS_WINDOWS, HV_GUID_PARENT, S_UNREG), -ECONNREFUSED);
}

Test(route, transport_and_kernel_are_checked)
{
    char err[128] = "";

    cr_assert_eq(vm1->transport, (uint32_t)HVSIM_TRANSPORT_HV_SOCK);
    cr_assert_eq(vm1->kernel, (uint32_t)HVSIM_KERNEL_6_1);
    cr_assert_eq(model_vm_set_transport(vm1, 9, 0, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "hv_sock or virtio") != NULL, "%s", err);
    cr_assert_eq(model_vm_set_transport(vm1, HVSIM_TRANSPORT_VIRTIO, 510, err, sizeof(err)), -EINVAL);
    cr_assert_eq(vm1->transport, (uint32_t)HVSIM_TRANSPORT_HV_SOCK, "a refused change changes nothing");
    cr_assert_eq(model_vm_set_transport(vm1, HVSIM_TRANSPORT_VIRTIO, 0, err, sizeof(err)), 0);
    cr_assert_eq(vm1->kernel, (uint32_t)HVSIM_KERNEL_6_1, "kernel 0 is 6.1");
}

/* VMADDR_CID_LOCAL is the vsock_loopback transport, virtio's code: nobody
 * listening is its RST, for the host and for a (virtio) guest. */
Test(route, vsock_loopback_nobody_listens_is_rst)
{
    struct bind *l;
    struct route_conn_res r;

    assert_refuse(conn(&m.host, HVSIM_PERS_VSOCK_HOST, CID(VMADDR_CID_LOCAL), T(5000)), -ECONNRESET);
    assert_refuse(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_LOOPBACK, T(5000)), -ECONNRESET);
    l = listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(5000));
    r = conn(vm1, HVSIM_PERS_LINUX, HV_GUID_LOOPBACK, T(5000));
    assert_ok(r, l);
    cr_assert_eq(r.conn_peer.cid, (uint32_t)VMADDR_CID_LOCAL);
    cr_assert_eq(r.acc_peer.cid, (uint32_t)VMADDR_CID_LOCAL);
    /* Windows loopback keeps go-winio's WSAECONNREFUSED. */
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, HV_GUID_LOOPBACK, T(5001)), -ECONNREFUSED);
}

/* ---- SOCK_SEQPACKET (issue 15; vsock-virtio.md 9) ------------------------------------ */

static struct route_conn_res conn_seq(struct part *from, uint32_t pers, GUID vmid, GUID svc)
{
    struct route_conn_req rq = { .from = from, .pers = pers, .flags = HVSIM_SF_SEQPACKET, .vmid = vmid, .svc = svc };
    struct route_conn_res r;

    cr_assert_eq(route_connect(&m, &rq, &r), 0);
    return r;
}

static void make_virtio(struct part *p)
{
    char err[128];

    cr_assert_eq(model_vm_set_transport(p, HVSIM_TRANSPORT_VIRTIO, HVSIM_KERNEL_6_12, err, sizeof(err)), 0, "%s", err);
}

/* Only a listener of the connector's type takes it; the other type's is as
 * if nobody listened: the transport's RST. */
Test(route, seqpacket_takes_only_a_listener_of_its_type)
{
    struct bind *st = listen_on(&m.host, HVSIM_PERS_VSOCK_HOST, HV_GUID_ZERO, T(6000));
    struct bind *sq = listen_on(&m.host, HVSIM_PERS_VSOCK_HOST, HV_GUID_ZERO, T(6001));

    sq->flags = HVSIM_SF_SEQPACKET;
    register_port(6000);
    register_port(6001);
    make_virtio(vm1);
    assert_ok(conn_seq(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(6001)), sq);
    assert_ok(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(6000)), st);
    assert_refuse(conn_seq(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(6000)), -ECONNRESET);
    assert_refuse(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(6001)), -ECONNRESET);
    /* The host's loopback: vsock_loopback, virtio's code. */
    assert_ok(conn_seq(&m.host, HVSIM_PERS_VSOCK_HOST, CID(VMADDR_CID_LOCAL), T(6001)), sq);
    assert_refuse(conn_seq(&m.host, HVSIM_PERS_VSOCK_HOST, CID(VMADDR_CID_LOCAL), T(6000)), -ECONNRESET);
}

/* vsock_assign_transport: ESOCKTNOSUPPORT first, before the address is looked at. */
Test(route, seqpacket_needs_a_transport_that_has_it)
{
    struct route_conn_res r;

    listen_on(&m.host, HVSIM_PERS_VSOCK_HOST, HV_GUID_ZERO, T(6002))->flags = HVSIM_SF_SEQPACKET;
    register_port(6002);
    /* hv_sock guest (vm1's default): refused, even for a listener of its type. */
    r = conn_seq(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(6002));
    assert_refuse(r, -ESOCKTNOSUPPORT);
    cr_assert_eq(r.outcome.rule, (uint32_t)HVSIM_RULE_SEQPACKET_TRANSPORT);
    /* The host to an hv_sock VM, to a CID nobody has, to a virtio VM that is off. */
    assert_refuse(conn_seq(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm1->cid), T(6003)), -ESOCKTNOSUPPORT);
    assert_refuse(conn_seq(&m.host, HVSIM_PERS_VSOCK_HOST, CID(4242), T(6003)), -ESOCKTNOSUPPORT);
    make_virtio(vm2);
    vm2->state = HVSIM_VM_OFF;
    assert_refuse(conn_seq(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm2->cid), T(6003)), -ESOCKTNOSUPPORT);
    /* Paused, its device is there: the usual silence of a paused guest. */
    vm2->state = HVSIM_VM_PAUSED;
    r = conn_seq(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm2->cid), T(6003));
    cr_assert_eq(r.outcome.verdict, HVSIM_VERDICT_NOANSWER);
    /* An hv_sock guest's loopback is vsock_loopback's, which has it. */
    listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(6004))->flags = HVSIM_SF_SEQPACKET;
    cr_assert_eq(conn_seq(vm1, HVSIM_PERS_LINUX, HV_GUID_LOOPBACK, T(6004)).outcome.verdict, HVSIM_VERDICT_OK);
}

/* A QEMU guest: SEQPACKET connects go to the gateway's SEQPACKET listener,
 * and only while the gateway's channel is there; a guest driver without
 * VIRTIO_VSOCK_F_SEQPACKET is ESOCKTNOSUPPORT. */
Test(route, seqpacket_goes_to_the_gateways_seqpacket_listener)
{
    struct bind *gw = gateway_of(vm1);
    struct bind *gs = listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(0x7ffff001u));
    struct route_conn_res r;

    make_virtio(vm1);
    gs->gateway = HVSIM_GW_SEQPACKET;
    gs->flags = HVSIM_SF_SEQPACKET;
    gs->gw_fd = -1;
    gw->gw_fd = 1000;
    cr_assert_eq(route_gateway(&m, vm1), gw);
    r = conn_seq(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm1->cid), T(5001));
    cr_assert_eq(r.outcome.verdict, HVSIM_VERDICT_PENDING);
    cr_assert_eq(r.listener, gs);
    r = conn(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm1->cid), T(5001));
    cr_assert_eq(r.listener, gw, "a stream still goes to the gateway itself");
    /* Its port is never a listener of its own. */
    r = conn_seq(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm1->cid), T(0x7ffff001u));
    cr_assert_eq(r.listener, gs, "through the gateway, not as a plain listener");
    assert_outcome(route_guest_answer(&m, HVSIM_GW_NO_SEQPACKET, 100), HVSIM_VERDICT_REFUSE, -ESOCKTNOSUPPORT, 0,
                   HVSIM_RULE_SEQPACKET_TRANSPORT);
    gw->gw_fd = -1;
    cr_assert_null(route_gateway(&m, vm1));
    r = conn_seq(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm1->cid), T(5001));
    assert_refuse(r, -ECONNRESET);
}

/* A VM a back-end serves carries SEQPACKET even when it was declared hv_sock
 * (the catalogue's QEMU target does so, for Hyper-V's refusals): its guest's
 * kernel is virtio. Without the back-end, hv_sock refuses. */
Test(route, a_back_end_makes_its_vm_carry_seqpacket)
{
    struct bind *gw = gateway_of(vm1);
    struct bind *gs = listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(0x7ffff001u));
    struct bind *hl = listen_on(&m.host, HVSIM_PERS_VSOCK_HOST, HV_GUID_ZERO, T(6010));

    gs->gateway = HVSIM_GW_SEQPACKET;
    gs->flags = hl->flags = HVSIM_SF_SEQPACKET;
    gs->gw_fd = -1;
    register_port(6010);
    cr_assert_eq(vm1->transport, (uint32_t)HVSIM_TRANSPORT_HV_SOCK);
    assert_refuse(conn_seq(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(6010)), -ESOCKTNOSUPPORT);
    gw->gw_fd = 1000;
    assert_ok(conn_seq(vm1, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(6010)), hl);
    cr_assert_eq(conn_seq(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm1->cid), T(5001)).listener, gs);
    gw->gw_fd = -1;
}

/* The other type's listener is vsock's reset under either profile: an hv_sock
 * guest's stream to a host SEQPACKET listener is reset, not left unanswered. */
Test(route, the_other_type_is_reset_under_the_hyperv_profile)
{
    struct bind *sq = listen_on(&m.host, HVSIM_PERS_VSOCK_HOST, HV_GUID_ZERO, T(6020));
    struct route_conn_res r;

    sq->flags = HVSIM_SF_SEQPACKET;
    register_port(6020);
    r = conn(vm2, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(6020));
    assert_refuse(r, -ECONNRESET);
    cr_assert_eq(r.outcome.rule, (uint32_t)HVSIM_RULE_OTHER_TYPE);
    /* Nobody at all: the profile's silence, as before. */
    cr_assert_eq(conn(vm2, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(6021)).outcome.verdict, HVSIM_VERDICT_NOANSWER);
}

/* ---- sibling groups (issue 13; vsock-virtio.md 7.8) --------------------------------- */

/* vm1 and vm2 virtio, both in group "lab" (vm2 also in "ci"); wsl stays hv_sock. */
static void group_up(void)
{
    char err[256];

    make_virtio(vm1);
    make_virtio(vm2);
    cr_assert_eq(model_vm_set_groups(vm1, "lab", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(model_vm_set_groups(vm2, "ci+lab", err, sizeof(err)), 0, "%s", err);
}

/* Shared group: the sibling's AF_VSOCK listener takes it, and each end names
 * the other by its CID (the request's source and destination). */
Test(route, sibling_in_a_shared_group_is_reached_by_cid)
{
    struct bind *win, *l;
    struct route_conn_res r;

    group_up();
    win = listen_on(vm2, HVSIM_PERS_WINDOWS, HV_GUID_ZERO, T(7000));
    (void)win;
    l = listen_on(vm2, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(7000));
    r = conn(vm1, HVSIM_PERS_LINUX, CID(vm2->cid), T(7000));
    assert_ok(r, l);
    cr_assert_eq(r.outcome.rule, (uint32_t)HVSIM_RULE_LISTENER);
    cr_assert_eq(r.to, vm2);
    cr_assert_eq(r.conn_peer.cid, vm2->cid, "the connector's peer is the sibling's CID");
    cr_assert_eq(r.acc_peer.cid, vm1->cid, "the acceptor's peer is the connector's CID");
    cr_assert_eq(r.acc_peer.flags & HVSIM_SF_TO_HOST, (uint32_t)HVSIM_SF_TO_HOST, "the child's peer has TO_HOST");
    cr_assert_eq(r.conn_peer.flags & HVSIM_SF_TO_HOST, 0u, "the connector's peer does not");
    assert_guid_eq(r.acc_peer.partition, vm1->id);
    assert_guid_eq(r.conn_peer.partition, vm2->id);
    cr_assert_eq(r.acc_local.svc.Data1, 7000u);
    /* And back the other way. */
    l = listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(7001));
    r = conn(vm2, HVSIM_PERS_LINUX, CID(vm1->cid), T(7001));
    assert_ok(r, l);
    cr_assert_eq(r.acc_peer.cid, vm2->cid);
}

/* Shared group, nobody listens: the sibling's kernel answers with RST. */
Test(route, sibling_without_listener_resets)
{
    group_up();
    assert_refuse(conn(vm1, HVSIM_PERS_LINUX, CID(vm2->cid), T(7002)), -ECONNRESET);
}

/* No shared group, or no VM at that CID: the back-end drops the request,
 * the connect times out (virtio_guest_to_other_vm). */
Test(route, sibling_without_a_shared_group_is_dropped)
{
    char err[256];
    struct route_conn_res r;

    make_virtio(vm1);
    make_virtio(vm2);
    listen_on(vm2, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(7003));
    /* Neither has a group: kernel vhost-vsock's "no sibling". */
    r = conn(vm1, HVSIM_PERS_LINUX, CID(vm2->cid), T(7003));
    assert_noanswer(r, 2000);
    cr_assert_eq(r.outcome.rule, (uint32_t)HVSIM_RULE_VIRTIO_NO_SIBLING);
    cr_assert_eq(model_vm_set_groups(vm1, "a+b", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(model_vm_set_groups(vm2, "c", err, sizeof(err)), 0, "%s", err);
    assert_noanswer(conn(vm1, HVSIM_PERS_LINUX, CID(vm2->cid), T(7003)), 2000);
    assert_noanswer(conn_full(vm1, HVSIM_PERS_LINUX, CID(vm2->cid), T(7003), 300, NULL), 300);
    /* A CID no VM has. */
    assert_noanswer(conn(vm1, HVSIM_PERS_LINUX, CID(4000), T(7003)), 2000);
    /* The setting's other choices. */
    set("virtio_guest_to_other_vm", "ENETUNREACH");
    assert_refuse(conn(vm1, HVSIM_PERS_LINUX, CID(vm2->cid), T(7003)), -ENETUNREACH);
    /* One group in common is enough. */
    cr_assert_eq(model_vm_set_groups(vm2, "c+b", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(conn(vm1, HVSIM_PERS_LINUX, CID(vm2->cid), T(7003)).outcome.verdict, HVSIM_VERDICT_OK);
}

/* An hv_sock VM keeps Hyper-V's "no sibling" (guest_to_other_vm), even when
 * its target is a virtio VM with groups; and it cannot have groups at all. */
Test(route, hv_sock_vm_has_no_sibling)
{
    char err[256] = "";

    group_up();
    listen_on(vm2, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(7004));
    cr_assert_eq(wsl->transport, (uint32_t)HVSIM_TRANSPORT_HV_SOCK);
    cr_assert_eq(model_vm_set_groups(wsl, "lab", err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "--group") && strstr(err, "virtio"), "%s", err);
    cr_assert_eq(wsl->groups[0], '\0', "a refused change changes nothing");
    assert_refuse(conn(wsl, HVSIM_PERS_LINUX, CID(vm2->cid), T(7004)), -ENETUNREACH);
    cr_assert_eq(conn(wsl, HVSIM_PERS_LINUX, CID(vm2->cid), T(7004)).outcome.rule, (uint32_t)HVSIM_RULE_NO_SIBLING);
    /* Nor does a Windows socket in a virtio VM reach a sibling by VM ID. */
    assert_refuse(conn(vm1, HVSIM_PERS_WINDOWS, vm2->id, S_REG), -ENETUNREACH);
}

/* A sibling that is off or paused: nobody takes the request. */
Test(route, sibling_off_or_paused)
{
    struct route_conn_res r;

    group_up();
    listen_on(vm2, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(7005));
    vm2->state = HVSIM_VM_OFF;
    r = conn(vm1, HVSIM_PERS_LINUX, CID(vm2->cid), T(7005));
    assert_noanswer(r, 2000);
    cr_assert_eq(r.outcome.rule, (uint32_t)HVSIM_RULE_VM_OFF);
    vm2->state = HVSIM_VM_PAUSED;
    assert_noanswer(conn(vm1, HVSIM_PERS_LINUX, CID(vm2->cid), T(7005)), 2000);
    /* The caller's own VM stopped: ENETDOWN first. */
    vm2->state = HVSIM_VM_RUNNING;
    vm1->state = HVSIM_VM_PAUSED;
    assert_refuse(conn(vm1, HVSIM_PERS_LINUX, CID(vm2->cid), T(7005)), -ENETDOWN);
}

/* A guest naming its own CID goes to the loopback transport; the host's
 * CID addressing and CID 1 are untouched by groups. */
Test(route, own_cid_is_loopback_and_host_paths_unchanged)
{
    struct bind *l, *h;
    struct route_conn_res r;

    group_up();
    l = listen_on(vm1, HVSIM_PERS_LINUX, HV_GUID_ZERO, T(7006));
    r = conn(vm1, HVSIM_PERS_LINUX, CID(vm1->cid), T(7006));
    assert_ok(r, l);
    cr_assert_eq(r.conn_peer.cid, vm1->cid, "the connector's peer is the CID it named");
    cr_assert_eq(r.acc_peer.cid, (uint32_t)VMADDR_CID_LOCAL, "vsock_loopback's requests come from CID 1");
    cr_assert_eq(r.acc_peer.flags & HVSIM_SF_TO_HOST, 0u, "CID 1 is not above 2: no TO_HOST");
    assert_ok(conn(&m.host, HVSIM_PERS_VSOCK_HOST, CID(vm1->cid), T(7006)), l);
    assert_ok(conn(vm1, HVSIM_PERS_LINUX, HV_GUID_LOOPBACK, T(7006)), l);
    h = listen_on(&m.host, HVSIM_PERS_VSOCK_HOST, HV_GUID_ZERO, T(7007));
    register_port(7007);
    assert_ok(conn(vm2, HVSIM_PERS_LINUX, HV_GUID_PARENT, T(7007)), h);
}

/* The names: groups.c's rule, as the daemon applies it. */
Test(route, group_names_are_checked)
{
    static const struct {
        const char *text, *why;
    } bad[] = {
        { "+a", "group 1 is empty" },
        { "a+", "group 2 is empty" },
        { "a++b", "group 2 is empty" },
        { "a b", "character ' '" },
        { "lab+LAB+lab", "'lab' is named twice" },
        { "0123456789012345678901234567890123", "34 characters" },
        { "a+b+c+d+e+f+g+h+i", "at most 8 groups" },
    };
    char err[256];
    size_t i;

    make_virtio(vm1);
    for (i = 0; i < HVSIM_ARRAY_SIZE(bad); i++) {
        err[0] = '\0';
        cr_assert_eq(model_vm_set_groups(vm1, bad[i].text, err, sizeof(err)), -EINVAL, "'%s' taken", bad[i].text);
        cr_assert(strstr(err, bad[i].why) != NULL, "'%s': %s", bad[i].text, err);
        cr_assert(strstr(err, "--group") != NULL, "'%s': %s", bad[i].text, err);
    }
    cr_assert_eq(model_vm_set_groups(vm1, "a.b_c-1+Z", err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(vm1->groups, "a.b_c-1+Z");
    cr_assert_eq(model_vm_set_groups(vm1, "", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(hvsim__groups_share("a+b", "c+b"), 1);
    cr_assert_eq(hvsim__groups_share("ab", "a+b"), 0, "names match whole");
    cr_assert_eq(hvsim__groups_share("", ""), 0, "no group shares nothing");
}
