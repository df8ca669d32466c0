/* SPDX-License-Identifier: MIT */
/*
 * cases_binding.c: which addresses each side may bind and listen on, and who
 * reaches them (docs/reference/hyperv-sockets.md 1.3-1.4, 2.3, 3.1, 4.1-4.2, 6): host
 * listeners on the wildcard, HV_GUID_CHILDREN, a VM's id and loopback; guest
 * listeners on HV_GUID_PARENT or VMADDR_CID_ANY; the port <-> service GUID
 * mapping of Linux guests in both directions; and the bind refusals (PARENT on
 * the host, duplicates, binding twice, listen before bind, vsock CIDs).
 *
 * Services are the VSOCK template of ctx->port_base + k, so every column
 * (Windows or Linux guest) can reach the same host listener, and a host
 * listener that a guest must reach is registered first (classic VMs, 2.2).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../catalogue.h"
#include "case_util.h"

/* ---- a guest reaches host listeners, the host reaches a guest listener ------------------ */

static int wildcard_host(struct cf_ctx *ctx)
{
    return cfc_serve_pong(ctx, &CF_GUID_ZERO);
}

static int children_host(struct cf_ctx *ctx)
{
    return cfc_serve_pong(ctx, &CF_GUID_CHILDREN);
}

static int vmid_host(struct cf_ctx *ctx)
{
    return cfc_serve_pong(ctx, &ctx->vm_id);
}

static int guest_listener_guest(struct cf_ctx *ctx)
{
    cf_sock_t l, c;

    if (cfc_guest_accept(ctx, &l, &c) < 0 || cfc_pong(ctx, c) < 0)
        return -1;
    cf_close(c);
    cf_close(l);
    return 0;
}

static int guest_listener_host(struct cf_ctx *ctx)
{
    struct cfc_dial d;

    /* No registration: the host connects, the guest listens (2.2, Ookii). */
    if (cfc_host_dial_listening(ctx, &d) < 0 || cfc_ping(ctx, d.s) < 0)
        return -1;
    cf_close(d.s);
    return 0;
}

/* ---- bind.template-port-mapping: a host listener on P-facb-... is CID 2 port P ----------- */

static int template_host(struct cf_ctx *ctx)
{
    cf_guid_t vm, svc, want;
    uint64_t gport = 0;
    cf_sock_t l, c;

    if (cfc_reg(ctx, ctx->port_base) < 0 || cfc_host_accept(ctx, &CF_GUID_ZERO, &l, &c) < 0 || cfc_pong(ctx, c) < 0)
        return -1;
    cf_step(ctx, "read the guest's local port");
    if (cf_ctl_read_u64(ctx, &gport) < 0)
        return -1;
    cf_step(ctx, "getsockname of the accepted connection");
    CF_CHECK(ctx, cf_name_hv(c, 0, &vm, &svc), 0, "getsockname");
    want = cf_guid_port(ctx->port_base);
    if (cfc_guid_is(ctx, &svc, &want, "accepted local ServiceId (port P's template GUID)") < 0)
        return -1;
    /* The guest's endpoint is the template of its own port (3.1, 3.2). */
    cf_step(ctx, "getpeername of the accepted connection");
    CF_CHECK(ctx, cf_name_hv(c, 1, &vm, &svc), 0, "getpeername");
    want = cf_guid_port((uint32_t)gport);
    if (cfc_guid_is(ctx, &svc, &want, "accepted peer ServiceId (the guest's local port as a template GUID)") < 0)
        return -1;
    cf_close(c);
    cf_close(l);
    return 0;
}

static int template_guest(struct cf_ctx *ctx)
{
    uint32_t cid = 0, port = 0;
    struct cfc_dial d;

    if (cfc_guest_dial_listening(ctx, &d) < 0 || cfc_ping(ctx, d.s) < 0)
        return -1;
    if (cfc_vsock_dialer_names(ctx, d.s, &cid, &port) < 0 || cf_ctl_write_u64(ctx, port) < 0)
        return -1;
    cf_close(d.s);
    return 0;
}

/* ---- bind.host-loopback ------------------------------------------------------------------- */

static int loopback_host(struct cf_ctx *ctx)
{
    struct cfc_dial d;
    cf_sock_t l, c;

    if (cfc_host_listen(ctx, &CF_GUID_LOOPBACK, ctx->port_base, &l) < 0)
        return -1;
    if (cfc_host_dial(ctx, &CF_GUID_LOOPBACK, ctx->port_base, CFC_QUICK_MS, &d) < 0)
        return -1;
    CF_CHECK(ctx, d.rc, ctx->expect, "connect");
    if (cfc_accept_one(ctx, l, &c) < 0)
        return -1;
    cf_step(ctx, "send 'ping' over loopback");
    if (cfc_send_all(ctx, d.s, "ping") < 0 || cfc_pong(ctx, c) < 0)
        return -1;
    cf_step(ctx, "read 'pong' over loopback");
    if (cfc_recv_is(ctx, d.s, "pong") < 0)
        return -1;
    cf_close(c);
    cf_close(d.s);
    cf_close(l);
    return 0;
}

/* ---- refusals ----------------------------------------------------------------------------- */

static int host_parent_host(struct cf_ctx *ctx)
{
    cf_guid_t svc = cf_guid_port(ctx->port_base);
    cf_sock_t s;

    if (cfc_open_sock(ctx, CF_AF_HYPERV, 0, &s) < 0)
        return -1;
    cf_step(ctx, "host bind {HV_GUID_PARENT, port %u}", ctx->port_base);
    CF_CHECK(ctx, cf_bind_hv(s, &CF_GUID_PARENT, &svc), ctx->expect, "bind");
    cf_close(s);
    return 0;
}

/* Bind this side's usual listening address for port: host {WILDCARD, svc},
 * a Windows guest {PARENT, svc}, a Linux guest (CID_ANY, port). */
static int bind_usual(struct cf_ctx *ctx, cf_sock_t s, uint32_t port)
{
    cf_guid_t svc = cf_guid_port(port);

    if (ctx->side == 0)
        return cf_bind_hv(s, &CF_GUID_ZERO, &svc);
    if (cfc_is_vsock(ctx))
        return cf_bind_vsock(s, CF_VMADDR_CID_ANY, port);
    return cf_bind_hv(s, &CF_GUID_PARENT, &svc);
}

static enum cf_family side_family(const struct cf_ctx *ctx)
{
    return ctx->side == 1 && cfc_is_vsock(ctx) ? CF_AF_VSOCK : CF_AF_HYPERV;
}

static int duplicate_either(struct cf_ctx *ctx)
{
    cf_sock_t l, s;

    if (cfc_open_sock(ctx, side_family(ctx), 0, &l) < 0)
        return -1;
    cf_step(ctx, "first bind to port %u", ctx->port_base);
    CF_CHECK(ctx, bind_usual(ctx, l, ctx->port_base), 0, "bind");
    cf_step(ctx, "first socket listens");
    CF_CHECK(ctx, cf_listen(l, 4), 0, "listen");
    if (cfc_open_sock(ctx, side_family(ctx), 0, &s) < 0)
        return -1;
    cf_step(ctx, "a second socket binds the same address");
    CF_CHECK(ctx, bind_usual(ctx, s, ctx->port_base), ctx->expect, "bind");
    cf_close(s);
    cf_close(l);
    return 0;
}

static int bind_twice_either(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (cfc_open_sock(ctx, side_family(ctx), 0, &s) < 0)
        return -1;
    cf_step(ctx, "bind to port %u", ctx->port_base);
    CF_CHECK(ctx, bind_usual(ctx, s, ctx->port_base), 0, "bind");
    cf_step(ctx, "bind the same socket again, to port %u", ctx->port_base + 1);
    CF_CHECK(ctx, bind_usual(ctx, s, ctx->port_base + 1), ctx->expect, "second bind");
    cf_close(s);
    return 0;
}

static int listen_unbound_either(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (cfc_open_sock(ctx, side_family(ctx), 0, &s) < 0)
        return -1;
    cf_step(ctx, "listen on a socket that was never bound");
    CF_CHECK(ctx, cf_listen(s, 4), ctx->expect, "listen");
    cf_close(s);
    return 0;
}

static int close_frees_either(struct cf_ctx *ctx)
{
    cf_sock_t l, s;

    if (cfc_open_sock(ctx, side_family(ctx), 0, &l) < 0)
        return -1;
    cf_step(ctx, "bind to port %u", ctx->port_base);
    CF_CHECK(ctx, bind_usual(ctx, l, ctx->port_base), 0, "bind");
    CF_CHECK(ctx, cf_listen(l, 4), 0, "listen");
    cf_step(ctx, "close the listener");
    CF_CHECK(ctx, cf_close(l), 0, "close");
    if (cfc_open_sock(ctx, side_family(ctx), 0, &s) < 0)
        return -1;
    cf_step(ctx, "a new socket binds the address the closed listener had");
    CF_CHECK(ctx, bind_usual(ctx, s, ctx->port_base), ctx->expect, "bind");
    cf_step(ctx, "and listens");
    CF_CHECK(ctx, cf_listen(s, 4), 0, "listen");
    cf_close(s);
    return 0;
}

/* ---- Linux guests: CIDs and ports -------------------------------------------------------- */

static int vsock_cid_guest(struct cf_ctx *ctx)
{
    /* CID 2 is the host's, and a CID far above any VM's is nobody's; never
     * CID 3, which may be this very guest under QEMU. */
    static const uint32_t cids[] = { CF_VMADDR_CID_HOST, 0x7fff0001u };
    cf_sock_t s;
    size_t i;

    if (cfc_open_sock(ctx, CF_AF_VSOCK, 0, &s) < 0)
        return -1;
    for (i = 0; i < sizeof(cids) / sizeof(cids[0]); i++) {
        cf_step(ctx, "bind to (CID %u, port %u)", cids[i], ctx->port_base);
        CF_CHECK(ctx, cf_bind_vsock(s, cids[i], ctx->port_base), ctx->expect, "bind");
    }
    cf_step(ctx, "bind to (VMADDR_CID_ANY, port %u) after the refusals", ctx->port_base);
    CF_CHECK(ctx, cf_bind_vsock(s, CF_VMADDR_CID_ANY, ctx->port_base), 0, "bind");
    cf_close(s);
    return 0;
}

static int port_any_guest(struct cf_ctx *ctx)
{
    uint32_t cid = 0, port = 0;
    cf_sock_t s;

    if (cfc_open_sock(ctx, CF_AF_VSOCK, 0, &s) < 0)
        return -1;
    cf_step(ctx, "bind to (VMADDR_CID_ANY, VMADDR_PORT_ANY)");
    CF_CHECK(ctx, cf_bind_vsock(s, CF_VMADDR_CID_ANY, CF_VMADDR_PORT_ANY), ctx->expect, "bind");
    cf_step(ctx, "getsockname after binding port ANY");
    CF_CHECK(ctx, cf_name_vsock(s, 0, &cid, &port), 0, "getsockname");
    if (port <= 1023 || port == CF_VMADDR_PORT_ANY)
        return cf_fail(ctx, "auto-bound port: expected above 1023 (and not VMADDR_PORT_ANY), got %u", port);
    cf_step(ctx, "listen on the auto-bound port");
    CF_CHECK(ctx, cf_listen(s, 4), 0, "listen");
    cf_close(s);
    return 0;
}

static int local_cid_guest(struct cf_ctx *ctx)
{
    uint32_t cid = 0;

    cf_step(ctx, "IOCTL_VM_SOCKETS_GET_LOCAL_CID");
    CF_CHECK(ctx, cf_local_cid(&cid), ctx->expect, "get local CID");
    if (ctx->col == CF_COL_HVSOCK && cid != CF_VMADDR_CID_ANY)
        return cf_fail(ctx, "hv_sock local CID: expected VMADDR_CID_ANY (%u), got %u", CF_VMADDR_CID_ANY, cid);
    /* virtio-vsock reports the CID QEMU gave the guest: 3 or above. */
    if (ctx->col == CF_COL_VIRTIO && (cid <= CF_VMADDR_CID_HOST || cid == CF_VMADDR_CID_ANY))
        return cf_fail(ctx, "virtio local CID: expected the guest's own CID (above 2), got %u", cid);
    return 0;
}

/* ---- the table ----------------------------------------------------------------------------- */

const struct cf_case cf_cases_binding[] = {
    {
        .id = "bind.host-wildcard-reached-by-guest",
        .area = "binding",
        .rule = "a host listener on {HV_GUID_WILDCARD, svc} (registered) accepts the guest's connection",
        .source = "docs/reference/hyperv-sockets.md 1.3, 2.3 [S1][S2], 2.2 [S2]",
        .confidence = CF_SOURCED,
        .expect = { 0, 0, 0 },
        .host = wildcard_host,
        .guest = cfc_dial_ping,
    },
    {
        .id = "bind.host-children-reached-by-guest",
        .area = "binding",
        .rule = "a host listener on {HV_GUID_CHILDREN, svc} (registered) accepts a child VM's connection",
        .source = "docs/reference/hyperv-sockets.md 1.3, 2.3 [S1][S2]",
        .confidence = CF_SOURCED,
        .expect = { 0, 0, 0 },
        .host = children_host,
        .guest = cfc_dial_ping,
    },
    {
        .id = "bind.host-vmid-reached-by-guest",
        .area = "binding",
        .rule = "a host listener on {the VM's id, svc} (registered) accepts that VM's connection",
        .source = "docs/reference/hyperv-sockets.md 4.2 (VM runtime id, default: OK) [S36], 2.3 [S2]",
        .confidence = CF_SOURCED,
        .expect = { 0, 0, 0 },
        .host = vmid_host,
        .guest = cfc_dial_ping,
    },
    {
        .id = "bind.guest-listener-reached-by-vmid",
        .area = "binding",
        .rule = "a guest listener on {HV_GUID_PARENT, svc} (Windows) or (VMADDR_CID_ANY, P) (Linux) is reached "
                "by the host at {VM id, svc} / {VM id, P-facb-11e6-bd58-64006a7986d3}, with no registration",
        .source = "docs/reference/hyperv-sockets.md 4.2 [S36], 3.1, 3.2 [S8], 2.2 (Ookii: not required) [S6]",
        .confidence = CF_SOURCED,
        .expect = { 0, 0, 0 },
        .host = guest_listener_host,
        .guest = guest_listener_guest,
    },
    {
        .id = "bind.template-port-mapping",
        .area = "binding",
        .rule = "a host listener on P-facb-11e6-bd58-64006a7986d3 is a Linux guest's (CID 2, port P); the "
                "host sees the guest's endpoint as the template GUID of the guest's auto-bound port (> 1023)",
        .source = "docs/reference/hyperv-sockets.md 3.1, 3.2 [S8][S2], 3.1 (auto-bind above 1023) [S43]",
        .confidence = CF_SOURCED,
        .expect = { CF_NA, 0, 0 },
        .host = template_host,
        .guest = template_guest,
    },
    {
        .id = "bind.host-loopback",
        .area = "binding",
        .rule = "a host listener on {HV_GUID_LOOPBACK, svc} accepts a connect to {HV_GUID_LOOPBACK, svc} from "
                "the same partition, and data flows both ways",
        .source = "docs/reference/hyperv-sockets.md 4.1 [S7b], 1.3 [S1]",
        .confidence = CF_SOURCED,
        .expect = { 0, 0, 0 },
        .host = loopback_host,
    },
    {
        .id = "bind.host-parent-eaddrnotavail",
        .area = "binding",
        .rule = "the host binding {HV_GUID_PARENT, svc} fails with WSAEADDRNOTAVAIL: on a physical host "
                "PARENT is not supported",
        .source = "docs/reference/hyperv-sockets.md 1.4 [S1][S1b]",
        .confidence = CF_INFERRED,
        .expect = { -EADDRNOTAVAIL, -EADDRNOTAVAIL, -EADDRNOTAVAIL },
        .host = host_parent_host,
    },
    {
        .id = "bind.duplicate-eaddrinuse",
        .area = "binding",
        .rule = "binding a second socket to an address a listener holds fails with EADDRINUSE (host wildcard, "
                "Windows guest PARENT, Linux guest port)",
        .source = "docs/reference/hyperv-sockets.md 4.1 [S7b], 3.1 [S43], 6 (items 3 and 5)",
        .confidence = CF_SOURCED,
        .expect = { -EADDRINUSE, -EADDRINUSE, -EADDRINUSE },
        .host = duplicate_either,
        .guest = duplicate_either,
    },
    {
        .id = "bind.twice-einval",
        .area = "binding",
        .rule = "binding a socket that is already bound fails with EINVAL (WSAEINVAL; vsock __vsock_bind)",
        .source = "docs/reference/hyperv-sockets.md 3.1 [S43]; docs/reference/platform-behaviour.md 4.1 (Winsock "
                  "bind: WSAEINVAL when already bound)",
        .confidence = CF_INFERRED,
        .expect = { -EINVAL, -EINVAL, -EINVAL },
        .host = bind_twice_either,
        .guest = bind_twice_either,
    },
    {
        .id = "bind.listen-before-bind-einval",
        .area = "binding",
        .rule = "listen on a socket that was never bound fails with EINVAL (WSAEINVAL; vsock_listen)",
        .source = "docs/reference/hyperv-sockets.md 2.3 (bind before listen) [S2]; "
                  "docs/reference/platform-behaviour.md 4.2 (Winsock listen, vsock_listen)",
        .confidence = CF_INFERRED,
        .expect = { -EINVAL, -EINVAL, -EINVAL },
        .host = listen_unbound_either,
        .guest = listen_unbound_either,
    },
    {
        .id = "bind.close-frees-address",
        .area = "binding",
        .rule = "closing a listener frees its address at once: a new socket binds and listens on it",
        .source = "docs/reference/hyperv-sockets.md 4.1 [S7b], 3.1 [S43]",
        .confidence = CF_INFERRED,
        .expect = { 0, 0, 0 },
        .host = close_frees_either,
        .guest = close_frees_either,
    },
    {
        .id = "bind.vsock-cid-not-any-eaddrnotavail",
        .area = "binding",
        .rule = "a Linux guest binding a CID other than VMADDR_CID_ANY (the host's 2, nobody's) fails with "
                "EADDRNOTAVAIL; listeners bind VMADDR_CID_ANY",
        .source = "docs/reference/hyperv-sockets.md 3.1 [S8], 6 (item 3); docs/reference/vsock-virtio.md 1.7 "
                  "(__vsock_bind, vsock_find_cid: a CID that is not local) [S6b]",
        .confidence = CF_INFERRED,
        .expect = { CF_NA, -EADDRNOTAVAIL, -EADDRNOTAVAIL },
        .guest = vsock_cid_guest,
    },
    {
        .id = "bind.vsock-port-any-autobinds",
        .area = "binding",
        .rule = "a Linux guest binding VMADDR_PORT_ANY gets a port above 1023 (LAST_RESERVED_PORT)",
        .source = "docs/reference/hyperv-sockets.md 3.1 (reserved ports, auto-bind) [S43][S8]",
        .confidence = CF_SOURCED,
        .expect = { CF_NA, 0, 0 },
        .guest = port_any_guest,
    },
    {
        .id = "bind.vsock-local-cid",
        .area = "binding",
        .rule = "IOCTL_VM_SOCKETS_GET_LOCAL_CID: hv_sock reports VMADDR_CID_ANY (-1U); virtio-vsock reports the "
                "guest's real CID",
        .source = "docs/reference/hyperv-sockets.md 3.1 [S8][S40], 4.7 [S40]",
        .confidence = CF_SOURCED,
        .expect = { CF_NA, 0, 0 },
        .guest = local_cid_guest,
    },
    { .id = NULL },
};
