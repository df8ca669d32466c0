/* SPDX-License-Identifier: MIT */
/*
 * cases_registry.c: who may reach a host listener (docs/reference/hyperv-sockets.md 2.2,
 * 2.4, 4.2, 4.7, 6.6): a classic VM reaches a host service only through its
 * GuestCommunicationServices registration (checked per connect: removing it
 * refuses new connections while open ones go on), the registration's
 * ElementName, and the host-side rules of HCS VMs' HvSocket service tables
 * (BindSecurityDescriptor deny, Disabled, listeners that bind anyway).
 *
 * The guest agent runs in the classic VM under test. The cases about what an
 * HCS guest's connections reach (AllowWildcardBinds, Disabled hiding a service)
 * move their guest side into the HCS VM with cf_join_vm, which only the
 * simulator can do; elsewhere they skip.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../catalogue.h"
#include "case_util.h"

/* issue 13: a virtio VM refuses with RST; see cases_vsock.c and the README. */
#define VIRTIO_RST_DIVERGENCE                                                                          \
    "the simulator's virtio VM refuses as its transport does (RST: ECONNRESET at once, README "         \
    "\"Transports and kernel versions\"); the QEMU column's guest sits behind the emulated Hyper-V "     \
    "host, whose refusal_profile=hyperv withholds it"

/* ---- helpers -------------------------------------------------------------------------- */

/* The listener heard nothing: the refused connect never reached it. */
static int nothing_pending(struct cf_ctx *ctx, cf_sock_t l)
{
    int ev;

    cf_step(ctx, "check that the listener got no connection");
    ev = cf_poll(l, CF_POLLIN, 0);
    CF_CHECK(ctx, ev, 0, "poll");
    if (ev & CF_POLLIN)
        return cf_fail(ctx, "listener: expected no connection from the refused guest, got one");
    return 0;
}

static int add_service(struct cf_ctx *ctx, uint32_t port, const char *element_name)
{
    cf_guid_t svc = cf_guid_port(port);

    cf_step(ctx, "register service %u-facb-... with ElementName '%s'", port, element_name);
    return cfc_admin_ok(ctx, cf_admin_service_add(&svc, element_name), "the target cannot register services",
                        "service add");
}

/* ---- classic VMs: registration ---------------------------------------------------------- */

static int unregistered_host(struct cf_ctx *ctx, const cf_guid_t *vm)
{
    cf_sock_t l;

    /* Deliberately no cf_admin_service_add: the listener is there, the
     * registration is not. */
    if (cfc_host_listen(ctx, vm, ctx->port_base, &l) < 0 || cf_ctl_writeln(ctx, "GO") < 0)
        return -1;
    if (cf_ctl_expectln(ctx, "TRIED") < 0 || nothing_pending(ctx, l) < 0)
        return -1;
    cf_close(l);
    return 0;
}

static int unregistered_wildcard_host(struct cf_ctx *ctx)
{
    return unregistered_host(ctx, &CF_GUID_ZERO);
}

static int unregistered_vmid_host(struct cf_ctx *ctx)
{
    return unregistered_host(ctx, &ctx->vm_id);
}

static int refused_guest(struct cf_ctx *ctx)
{
    if (cf_ctl_expectln(ctx, "GO") < 0 || cfc_guest_dial_check(ctx, ctx->port_base, NULL) < 0)
        return -1;
    return cf_ctl_writeln(ctx, "TRIED");
}

static int removal_host(struct cf_ctx *ctx)
{
    cf_guid_t svc = cf_guid_port(ctx->port_base);
    cf_sock_t l, c;
    int rc;

    if ((rc = add_service(ctx, ctx->port_base, "hvsim conformance: removed during the case")) != 0)
        return rc;
    if (cfc_host_accept(ctx, &CF_GUID_ZERO, &l, &c) < 0 || cfc_pong(ctx, c) < 0)
        return -1;
    cf_step(ctx, "remove the registration");
    CF_CHECK(ctx, cf_admin_service_rm(&svc), 0, "service rm");
    if (cf_ctl_writeln(ctx, "REMOVED") < 0)
        return -1;
    /* The connection made before the removal goes on. */
    if (cfc_pong(ctx, c) < 0)
        return -1;
    if (cf_ctl_expectln(ctx, "TRIED") < 0 || nothing_pending(ctx, l) < 0)
        return -1;
    cf_close(c);
    cf_close(l);
    return 0;
}

static int removal_guest(struct cf_ctx *ctx)
{
    int expect = ctx->expect;
    cf_sock_t s;

    if (cf_ctl_expectln(ctx, "LISTENING") < 0)
        return -1;
    /* While registered, the connect works. */
    ctx->expect = 0;
    if (cfc_guest_dial_check(ctx, ctx->port_base, &s) < 0 || cfc_ping(ctx, s) < 0)
        return -1;
    ctx->expect = expect;
    if (cf_ctl_expectln(ctx, "REMOVED") < 0)
        return -1;
    cf_step(ctx, "use the open connection after the removal");
    if (cfc_ping(ctx, s) < 0)
        return -1;
    cf_step(ctx, "a new connect after the removal");
    if (cfc_guest_dial_check(ctx, ctx->port_base, NULL) < 0)
        return -1;
    cf_close(s);
    return cf_ctl_writeln(ctx, "TRIED");
}

/* A friendly name outside ASCII: the registry value is REG_SZ, UTF-16 on
 * Windows (2.2), so a target must carry it whole. */
#define UNICODE_NAME "Prüfdienst für Konformität — テスト ✓"

static int element_name_host(struct cf_ctx *ctx)
{
    cf_sock_t l, c;
    int rc;

    if ((rc = add_service(ctx, ctx->port_base, UNICODE_NAME)) != 0)
        return rc;
    if (cfc_host_accept(ctx, &CF_GUID_ZERO, &l, &c) < 0 || cfc_pong(ctx, c) < 0)
        return -1;
    cf_close(c);
    cf_close(l);
    return 0;
}

/* ---- HCS VMs: the host side of the service table --------------------------------------- */

static int hcs_bind_deny_host(struct cf_ctx *ctx)
{
    cf_guid_t svc = cf_guid_port(ctx->port_base);
    cf_sock_t s;
    int rc;

    if ((rc = cfc_hcs_entry(ctx, ctx->port_base, 1, 0, 0, 0)) != 0)
        return rc;
    if (cfc_open_sock(ctx, CF_AF_HYPERV, 0, &s) < 0)
        return -1;
    cf_step(ctx, "host bind {the HCS VM's id, port %u}: it goes through", ctx->port_base);
    CF_CHECK(ctx, cf_bind_hv(s, &ctx->hcs_id, &svc), 0, "bind");
    cf_step(ctx, "host listen: the BindSecurityDescriptor denies it");
    CF_CHECK(ctx, cf_listen(s, 4), ctx->expect, "listen");
    cf_close(s);
    return 0;
}

static int hcs_disabled_listen_host(struct cf_ctx *ctx)
{
    cf_guid_t svc = cf_guid_port(ctx->port_base);
    cf_sock_t s;
    int rc;

    if ((rc = cfc_hcs_entry(ctx, ctx->port_base, 0, 0, 0, 1)) != 0)
        return rc;
    if (cfc_open_sock(ctx, CF_AF_HYPERV, 0, &s) < 0)
        return -1;
    /* hcsshim: "the bind silently didn't take"; listen() says WSAEINVAL. */
    cf_step(ctx, "host bind {the HCS VM's id, port %u}", ctx->port_base);
    CF_CHECK(ctx, cf_bind_hv(s, &ctx->hcs_id, &svc), 0, "bind");
    cf_step(ctx, "listen on the Disabled service");
    CF_CHECK(ctx, cf_listen(s, 4), ctx->expect, "listen");
    cf_close(s);
    return 0;
}

static int hcs_listen_ok_host(struct cf_ctx *ctx)
{
    cf_sock_t l[4];
    int rc, i;

    /* The rows of 4.2 whose "host listen result" is OK: the VM id with no
     * entry, wildcard and children without AllowWildcardBinds, the wildcard
     * on a Disabled service. */
    if ((rc = cfc_hcs_entry(ctx, ctx->port_base + 1, 0, 0, 0, 0)) != 0 ||
        (rc = cfc_hcs_entry(ctx, ctx->port_base + 2, 0, 0, 0, 1)) != 0)
        return rc;
    if (cfc_host_listen(ctx, &ctx->hcs_id, ctx->port_base, &l[0]) < 0 ||
        cfc_host_listen(ctx, &CF_GUID_ZERO, ctx->port_base + 1, &l[1]) < 0 ||
        cfc_host_listen(ctx, &CF_GUID_CHILDREN, ctx->port_base + 1, &l[2]) < 0 ||
        cfc_host_listen(ctx, &CF_GUID_ZERO, ctx->port_base + 2, &l[3]) < 0)
        return -1;
    for (i = 0; i < 4; i++)
        cf_close(l[i]);
    return 0;
}

/* ---- HCS VMs: what the guest reaches --------------------------------------------------------- */

/* Wildcard listeners on two services: the first without an HCS entry, the
 * second with AllowWildcardBinds. An HCS guest reaches only the second. */
static int hcs_wildcard_host(struct cf_ctx *ctx)
{
    cf_sock_t l[2], c;
    int rc;

    if ((rc = cfc_hcs_entry(ctx, ctx->port_base + 1, 0, 0, 1, 0)) != 0)
        return rc;
    /* Registered too: the registry must not matter for an HCS VM. */
    if ((rc = add_service(ctx, ctx->port_base, "hcs wildcard")) != 0)
        return rc;
    if (cfc_host_listen(ctx, &CF_GUID_ZERO, ctx->port_base, &l[0]) < 0 ||
        cfc_host_listen(ctx, &CF_GUID_ZERO, ctx->port_base + 1, &l[1]) < 0)
        return -1;
    if (cf_ctl_writeln(ctx, "LISTENING") < 0 || cfc_accept_one(ctx, l[1], &c) < 0 || cfc_pong(ctx, c) < 0)
        return -1;
    if (nothing_pending(ctx, l[0]) < 0)
        return -1;
    cf_close(c);
    cf_close(l[0]);
    cf_close(l[1]);
    return 0;
}

static int join_hcs(struct cf_ctx *ctx)
{
    cf_step(ctx, "become a process of the HCS VM");
    return cfc_admin_ok(ctx, cf_join_vm(&ctx->hcs_id), "only the simulator can run a guest side inside the HCS VM",
                        "join the HCS VM");
}

static int hcs_wildcard_guest(struct cf_ctx *ctx)
{
    int rc, expect = ctx->expect;
    cf_sock_t s;

    if ((rc = join_hcs(ctx)) != 0)
        return rc;
    if (cf_ctl_expectln(ctx, "LISTENING") < 0 || cfc_guest_dial_check(ctx, ctx->port_base, NULL) < 0)
        return -1;
    ctx->expect = 0;
    rc = cfc_guest_dial_check(ctx, ctx->port_base + 1, &s);
    ctx->expect = expect;
    if (rc < 0 || cfc_ping(ctx, s) < 0)
        return -1;
    cf_close(s);
    return 0;
}

/* A Disabled service stays hidden even from a wildcard listener that
 * AllowWildcardBinds would otherwise let hear the HCS guest. */
static int hcs_disabled_host(struct cf_ctx *ctx)
{
    cf_sock_t l;
    int rc;

    if ((rc = cfc_hcs_entry(ctx, ctx->port_base, 0, 0, 1, 1)) != 0)
        return rc;
    if (cfc_host_listen(ctx, &CF_GUID_ZERO, ctx->port_base, &l) < 0 || cf_ctl_writeln(ctx, "LISTENING") < 0)
        return -1;
    if (cf_ctl_expectln(ctx, "DIALED") < 0 || nothing_pending(ctx, l) < 0)
        return -1;
    cf_close(l);
    return 0;
}

static int hcs_disabled_guest(struct cf_ctx *ctx)
{
    int rc;

    if ((rc = join_hcs(ctx)) != 0)
        return rc;
    if (cf_ctl_expectln(ctx, "LISTENING") < 0 || cfc_guest_dial_check(ctx, ctx->port_base, NULL) < 0)
        return -1;
    return cf_ctl_writeln(ctx, "DIALED");
}

/* Turning a service Disabled also cancels its established connections
 * (hyperv-sockets.md 7, item 4): the guest's connection ends. */
static int hcs_cancel_host(struct cf_ctx *ctx)
{
    cf_sock_t l, c;
    int rc;

    if ((rc = cfc_hcs_entry(ctx, ctx->port_base, 0, 0, 0, 0)) != 0)
        return rc;
    if (cfc_host_listen(ctx, &ctx->hcs_id, ctx->port_base, &l) < 0 || cf_ctl_writeln(ctx, "LISTENING") < 0 ||
        cfc_accept_one(ctx, l, &c) < 0 || cfc_pong(ctx, c) < 0)
        return -1;
    cf_step(ctx, "host turns the service Disabled");
    if ((rc = cfc_hcs_entry(ctx, ctx->port_base, 0, 0, 0, 1)) != 0)
        return rc;
    if (cf_ctl_writeln(ctx, "DISABLED") < 0 || cf_ctl_expectln(ctx, "ENDED") < 0)
        return -1;
    cf_close(c);
    cf_close(l);
    return 0;
}

static int hcs_cancel_guest(struct cf_ctx *ctx)
{
    int rc, expect = ctx->expect, ev;
    char b;
    long n;
    cf_sock_t s;

    if ((rc = join_hcs(ctx)) != 0)
        return rc;
    if (cf_ctl_expectln(ctx, "LISTENING") < 0)
        return -1;
    ctx->expect = 0;
    rc = cfc_guest_dial_check(ctx, ctx->port_base, &s);
    ctx->expect = expect;
    if (rc < 0 || cfc_ping(ctx, s) < 0 || cf_ctl_expectln(ctx, "DISABLED") < 0)
        return -1;
    cf_step(ctx, "guest waits up to 2 s for the connection to end");
    ev = cf_poll(s, CF_POLLIN, 2000);
    if (ev <= 0) {
        cf_fail(ctx, "the Disabled service's connection did not end (poll %d)", ev);
        return -1;
    }
    n = cf_recv(s, &b, 1, CF_MSG_DONTWAIT);
    if (n > 0) {
        cf_fail(ctx, "the Disabled service's connection still carries data");
        return -1;
    }
    cf_close(s);
    return cf_ctl_writeln(ctx, "ENDED");
}

/* ---- the table ----------------------------------------------------------------------------- */

const struct cf_case cf_cases_registry[] = {
    {
        .id = "registry.unregistered-wildcard-listener",
        .area = "registry",
        .rule = "a classic VM's connect to a host wildcard listener whose service is not in "
                "GuestCommunicationServices does not reach it: a Windows guest gets WSAECONNREFUSED at once, a "
                "Linux guest ETIMEDOUT after its timeout",
        .source = "docs/reference/hyperv-sockets.md 2.2 (check and error UNCONFIRMED) [S2][S6], 4.7 [S34][S44], 3.3",
        .confidence = CF_UNCONFIRMED,
        .expect = { -ECONNREFUSED, -ETIMEDOUT, -ETIMEDOUT },
        .diverge = { [CF_COL_VIRTIO] = "sim: " VIRTIO_RST_DIVERGENCE },
        .host = unregistered_wildcard_host,
        .guest = refused_guest,
    },
    {
        .id = "registry.unregistered-vmid-listener",
        .area = "registry",
        .rule = "a host listener on the classic VM's own id also needs the registration: unregistered, the "
                "guest is refused as for the wildcard",
        .source = "docs/reference/hyperv-sockets.md 2.2 (needed for a host listener, classic VMs) [S6][S33], 6 (item "
                  "6)",
        .confidence = CF_UNCONFIRMED,
        .expect = { -ECONNREFUSED, -ETIMEDOUT, -ETIMEDOUT },
        .diverge = { [CF_COL_VIRTIO] = "sim: " VIRTIO_RST_DIVERGENCE },
        .host = unregistered_vmid_host,
        .guest = refused_guest,
    },
    {
        .id = "registry.removal-refuses-new-keeps-open",
        .area = "registry",
        .rule = "removing a registration refuses the guest's new connections (as unregistered) while a "
                "connection made before goes on carrying data",
        .source = "docs/reference/hyperv-sockets.md 2.2 (when the host checks: UNCONFIRMED) [S2]",
        .confidence = CF_UNCONFIRMED,
        .expect = { -ECONNREFUSED, -ETIMEDOUT, -ETIMEDOUT },
        .diverge = { [CF_COL_VIRTIO] = "sim: " VIRTIO_RST_DIVERGENCE },
        .needs = CF_NEED_ADMIN,
        .host = removal_host,
        .guest = removal_guest,
    },
    {
        .id = "registry.element-name-unicode",
        .area = "registry",
        .rule = "a registration whose ElementName is not ASCII is accepted and lets the guest connect",
        .source = "docs/reference/hyperv-sockets.md 2.2 (ElementName, REG_SZ) [S2]",
        .confidence = CF_SOURCED,
        .expect = { 0, 0, 0 },
        .needs = CF_NEED_ADMIN,
        .host = element_name_host,
        .guest = cfc_dial_ping,
    },
    {
        .id = "registry.hcs-bind-deny-eacces",
        .area = "registry",
        .rule = "for a service whose BindSecurityDescriptor denies, the host's bind to the HCS VM's id goes "
                "through and its listen fails with WSAEACCES (host side only)",
        .source = "docs/reference/hyperv-sockets.md 2.4 [S38], 4.2 [S36], 7 (item 4)",
        .confidence = CF_SOURCED,
        .expect = { -EACCES, -EACCES, -EACCES },
        .needs = CF_NEED_ADMIN | CF_NEED_HCS,
        .host = hcs_bind_deny_host,
    },
    {
        .id = "registry.hcs-disabled-listen-einval",
        .area = "registry",
        .rule = "the host binding an HCS VM's id for a Disabled service succeeds but listen() fails with "
                "WSAEINVAL (host side only)",
        .source = "docs/reference/hyperv-sockets.md 2.4 [S39], 4.2 [S36]",
        .confidence = CF_SOURCED,
        .expect = { -EINVAL, -EINVAL, -EINVAL },
        .needs = CF_NEED_ADMIN | CF_NEED_HCS,
        .host = hcs_disabled_listen_host,
    },
    {
        .id = "registry.hcs-host-listen-ok",
        .area = "registry",
        .rule = "for an HCS VM the host may listen, with no registration, on the VM's id (no entry), on the "
                "wildcard and children without AllowWildcardBinds, and on the wildcard of a Disabled service; "
                "whether the HCS guest is heard is covered by sim/tests/it_connect.c (no agent in the HCS VM)",
        .source = "docs/reference/hyperv-sockets.md 4.2 (host listen result column) [S36], 2.2 [S35]",
        .confidence = CF_SOURCED,
        .expect = { 0, 0, 0 },
        .needs = CF_NEED_ADMIN | CF_NEED_HCS,
        .host = hcs_listen_ok_host,
    },
    {
        .id = "registry.hcs-guest-wildcard-needs-allow",
        .area = "registry",
        .rule = "an HCS VM's guest does not reach a host wildcard listener (registered or not) unless the "
                "service's AllowWildcardBinds is set; with it, it does",
        .source = "docs/reference/hyperv-sockets.md 2.4 [S38], 4.2 [S36] (Windows guest), 4.7 [S64], 3.3 (Linux "
                  "guest outcome INFERRED)",
        .confidence = CF_INFERRED,
        .expect = { -ECONNREFUSED, -ETIMEDOUT, CF_NA },
        .needs = CF_NEED_ADMIN | CF_NEED_HCS,
        .host = hcs_wildcard_host,
        .guest = hcs_wildcard_guest,
    },
    {
        .id = "registry.hcs-guest-disabled-hides-service",
        .area = "registry",
        .rule = "a Disabled service of an HCS VM is not reached by its guest even through a wildcard listener "
                "that AllowWildcardBinds admits",
        .source = "docs/reference/hyperv-sockets.md 2.4 [S39], 4.2 (wildcard, Disabled=true: guest WSAECONNREFUSED) "
                  "[S36]",
        .confidence = CF_INFERRED,
        .expect = { -ECONNREFUSED, -ETIMEDOUT, CF_NA },
        .needs = CF_NEED_ADMIN | CF_NEED_HCS,
        .host = hcs_disabled_host,
        .guest = hcs_disabled_guest,
    },
    {
        .id = "registry.hcs-disabled-cancels-connections",
        .area = "registry",
        .rule = "turning an HCS VM's service Disabled also ends the connections it already has (a read returns "
                "the end or an error)",
        .source = "docs/reference/hyperv-sockets.md 7 (item 4: the HCS schema's comment on Disabled)",
        .confidence = CF_INFERRED,
        .expect = { 0, 0, CF_NA },
        .needs = CF_NEED_ADMIN | CF_NEED_HCS,
        .host = hcs_cancel_host,
        .guest = hcs_cancel_guest,
    },
    { .id = NULL },
};
