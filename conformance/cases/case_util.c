/* SPDX-License-Identifier: MIT */
/*
 * case_util.c: the small steps the case files share (which family the guest
 * side speaks, skipping with a reason, GUID checks, sending and receiving a
 * short text, listening, dialing and timing a connect, the two halves of one
 * ping-pong connection), so each cases_<area>.c keeps only what is particular
 * to it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../catalogue.h"
#include "case_util.h"

int cfc_is_vsock(const struct cf_ctx *ctx)
{
    return ctx->col != CF_COL_WINDOWS;
}

/* Skip the case with a reason (catalogue.h: CF_NA with fail[] as the reason). */
int cfc_skip(struct cf_ctx *ctx, const char *why)
{
    snprintf(ctx->fail, sizeof(ctx->fail), "%s", why);
    return CF_NA;
}

int cfc_guid_is(struct cf_ctx *ctx, const cf_guid_t *got, const cf_guid_t *want, const char *what)
{
    char g[37], w[37];

    if (cf_guid_eq(got, want))
        return 0;
    cf_guid_format(want, w);
    cf_guid_format(got, g);
    return cf_fail(ctx, "%s: expected %s, got %s", what, w, g);
}

int cfc_send_all(struct cf_ctx *ctx, cf_sock_t s, const char *text)
{
    long n = cf_send(s, text, strlen(text), 0);

    CF_CHECK(ctx, n, 0, "send");
    if ((size_t)n != strlen(text))
        return cf_fail(ctx, "send: expected %lu bytes, got %ld", (unsigned long)strlen(text), n);
    return 0;
}

int cfc_recv_is(struct cf_ctx *ctx, cf_sock_t s, const char *text)
{
    char buf[16] = { 0 };
    size_t len = strlen(text);
    long n = cf_recv(s, buf, len, CF_MSG_WAITALL);

    CF_CHECK(ctx, n, 0, "recv");
    if ((size_t)n != len || memcmp(buf, text, len) != 0)
        return cf_fail(ctx, "recv: expected '%s', got %ld bytes '%.*s'", text, n, (int)(n > 0 ? n : 0), buf);
    return 0;
}

int cfc_open_sock(struct cf_ctx *ctx, enum cf_family fam, int nonblock, cf_sock_t *s)
{
    cf_step(ctx, "socket(%s%s)", fam == CF_AF_HYPERV ? "AF_HYPERV" : "AF_VSOCK", nonblock ? ", non-blocking" : "");
    CF_CHECK(ctx, cf_socket(fam, nonblock, s), 0, "socket");
    return 0;
}

const char *cfc_vm_text(const struct cf_ctx *ctx, const cf_guid_t *g, char buf[37])
{
    if (cf_guid_eq(g, &CF_GUID_ZERO))
        return "HV_GUID_WILDCARD";
    if (cf_guid_eq(g, &CF_GUID_CHILDREN))
        return "HV_GUID_CHILDREN";
    if (cf_guid_eq(g, &CF_GUID_BROADCAST))
        return "HV_GUID_BROADCAST";
    if (cf_guid_eq(g, &CF_GUID_LOOPBACK))
        return "HV_GUID_LOOPBACK";
    if (cf_guid_eq(g, &CF_GUID_PARENT))
        return "HV_GUID_PARENT";
    if (cf_guid_eq(g, &ctx->vm_id))
        return "the VM's id";
    if (cf_guid_eq(g, &ctx->vm2_id))
        return "the second VM's id";
    if (cf_guid_eq(g, &ctx->hcs_id))
        return "the HCS VM's id";
    cf_guid_format(g, buf);
    return buf;
}

int cfc_reg(struct cf_ctx *ctx, uint32_t port)
{
    cf_guid_t svc = cf_guid_port(port);
    int rc;

    cf_step(ctx, "register service %u-facb-... in GuestCommunicationServices", port);
    rc = cf_admin_service_add(&svc, "hvsim conformance");
    /* A target without administration (an unelevated Windows agent) relies on
     * registrations made by hand; one already there is fine. */
    if (rc == -ENOTSUP || rc == -EEXIST)
        return 0;
    CF_CHECK(ctx, rc, 0, "service add");
    return 0;
}

int cfc_host_listen(struct cf_ctx *ctx, const cf_guid_t *vm, uint32_t port, cf_sock_t *l)
{
    cf_guid_t svc = cf_guid_port(port);
    char b[37];

    if (cfc_open_sock(ctx, CF_AF_HYPERV, 0, l) < 0)
        return -1;
    cf_step(ctx, "host bind {%s, port %u}", cfc_vm_text(ctx, vm, b), port);
    CF_CHECK(ctx, cf_bind_hv(*l, vm, &svc), 0, "bind");
    cf_step(ctx, "host listen on {%s, port %u}", cfc_vm_text(ctx, vm, b), port);
    CF_CHECK(ctx, cf_listen(*l, 8), 0, "listen");
    return 0;
}

int cfc_accept_one(struct cf_ctx *ctx, cf_sock_t l, cf_sock_t *c)
{
    int ev;

    cf_step(ctx, "wait for the other side's connection");
    ev = cf_poll(l, CF_POLLIN, CFC_ARRIVE_MS);
    CF_CHECK(ctx, ev, 0, "poll");
    if (!(ev & CF_POLLIN))
        return cf_fail(ctx, "listener: expected a connection within %d ms, got none", CFC_ARRIVE_MS);
    cf_step(ctx, "accept");
    CF_CHECK(ctx, cf_accept(l, c), 0, "accept");
    return 0;
}

int cfc_ping(struct cf_ctx *ctx, cf_sock_t s)
{
    cf_step(ctx, "send 'ping' on the new connection");
    if (cfc_send_all(ctx, s, "ping") < 0)
        return -1;
    cf_step(ctx, "read 'pong' back");
    return cfc_recv_is(ctx, s, "pong");
}

int cfc_pong(struct cf_ctx *ctx, cf_sock_t c)
{
    cf_step(ctx, "read 'ping' on the accepted connection");
    if (cfc_recv_is(ctx, c, "ping") < 0)
        return -1;
    cf_step(ctx, "send 'pong'");
    return cfc_send_all(ctx, c, "pong");
}


int cfc_admin_ok(struct cf_ctx *ctx, int rc, const char *why, const char *what)
{
    if (rc == -ENOTSUP)
        return cfc_skip(ctx, why);
    CF_CHECK(ctx, rc, 0, what);
    return 0;
}

int cfc_hcs_entry(struct cf_ctx *ctx, uint32_t port, int bind_deny, int connect_deny, int allow_wildcard,
                  int disabled)
{
    cf_guid_t svc = cf_guid_port(port);

    cf_step(ctx, "HCS service entry for port %u (BindSecurityDescriptor deny %d, ConnectSecurityDescriptor deny %d, "
                 "AllowWildcardBinds %d, Disabled %d)",
            port, bind_deny, connect_deny, allow_wildcard, disabled);
    return cfc_admin_ok(ctx, cf_admin_hcs(&ctx->hcs_id, &svc, bind_deny, connect_deny, allow_wildcard, disabled),
                        "the target cannot configure HCS service tables", "hcs set");
}

int cfc_hv_name_is(struct cf_ctx *ctx, cf_sock_t s, int peer, const cf_guid_t *vm, const cf_guid_t *svc,
                   const char *who)
{
    char what[96];
    cf_guid_t gv, gs;

    cf_step(ctx, "%s of the %s", peer ? "getpeername" : "getsockname", who);
    CF_CHECK(ctx, cf_name_hv(s, peer, &gv, &gs), 0, peer ? "getpeername" : "getsockname");
    snprintf(what, sizeof(what), "%s %s VmId", who, peer ? "peer" : "local");
    if (vm && cfc_guid_is(ctx, &gv, vm, what) < 0)
        return -1;
    snprintf(what, sizeof(what), "%s %s ServiceId", who, peer ? "peer" : "local");
    if (svc && cfc_guid_is(ctx, &gs, svc, what) < 0)
        return -1;
    return 0;
}

int cfc_guest_listen(struct cf_ctx *ctx, uint32_t port, cf_sock_t *l)
{
    cf_guid_t svc = cf_guid_port(port);

    if (cfc_open_sock(ctx, cfc_is_vsock(ctx) ? CF_AF_VSOCK : CF_AF_HYPERV, 0, l) < 0)
        return -1;
    cf_step(ctx, "guest bind to port %u", port);
    if (cfc_is_vsock(ctx))
        CF_CHECK(ctx, cf_bind_vsock(*l, CF_VMADDR_CID_ANY, port), 0, "bind");
    else
        CF_CHECK(ctx, cf_bind_hv(*l, &CF_GUID_PARENT, &svc), 0, "bind");
    cf_step(ctx, "guest listen on port %u", port);
    CF_CHECK(ctx, cf_listen(*l, 8), 0, "listen");
    return 0;
}

/* ---- dials ---------------------------------------------------------------------------- */

int cfc_dial_prep(struct cf_ctx *ctx, enum cf_family fam, int nonblock, uint32_t timeout_ms, struct cfc_dial *d)
{
    memset(d, 0, sizeof(*d));
    if (cfc_open_sock(ctx, fam, nonblock, &d->s) < 0)
        return -1;
    d->timeout = timeout_ms ? timeout_ms : CFC_DEFAULT_TIMEOUT_MS;
    if (timeout_ms) {
        cf_step(ctx, "set the connect timeout to %u ms", timeout_ms);
        CF_CHECK(ctx, cf_set_connect_timeout(d->s, timeout_ms), 0, "set connect timeout");
    }
    return 0;
}

void cfc_dial_hv(struct cfc_dial *d, const cf_guid_t *vm, const cf_guid_t *svc)
{
    uint64_t t0 = cf_now_ms();

    d->rc = cf_connect_hv(d->s, vm, svc);
    d->ms = cf_now_ms() - t0;
}

void cfc_dial_vsock(struct cfc_dial *d, uint32_t cid, uint32_t port)
{
    uint64_t t0 = cf_now_ms();

    d->rc = cf_connect_vsock(d->s, cid, port);
    d->ms = cf_now_ms() - t0;
}

int cfc_host_dial(struct cf_ctx *ctx, const cf_guid_t *vm, uint32_t port, uint32_t timeout_ms, struct cfc_dial *d)
{
    cf_guid_t svc = cf_guid_port(port);
    char b[37];

    if (cfc_dial_prep(ctx, CF_AF_HYPERV, 0, timeout_ms, d) < 0)
        return -1;
    cf_step(ctx, "host connect to {%s, port %u}", cfc_vm_text(ctx, vm, b), port);
    cfc_dial_hv(d, vm, &svc);
    return 0;
}

int cfc_guest_dial(struct cf_ctx *ctx, uint32_t port, int nonblock, uint32_t timeout_ms, struct cfc_dial *d)
{
    cf_guid_t svc = cf_guid_port(port);

    if (cfc_dial_prep(ctx, cfc_is_vsock(ctx) ? CF_AF_VSOCK : CF_AF_HYPERV, nonblock, timeout_ms, d) < 0)
        return -1;
    if (cfc_is_vsock(ctx)) {
        cf_step(ctx, "guest connect to (CID 2, port %u)", port);
        cfc_dial_vsock(d, CF_VMADDR_CID_HOST, port);
    } else {
        cf_step(ctx, "guest connect to {HV_GUID_PARENT, port %u}", port);
        cfc_dial_hv(d, &CF_GUID_PARENT, &svc);
    }
    return 0;
}

int cfc_dial_is(struct cf_ctx *ctx, const struct cfc_dial *d)
{
    unsigned long long ms = (unsigned long long)d->ms;

    CF_CHECK(ctx, d->rc, ctx->expect, "connect");
    if (ctx->expect == -ETIMEDOUT) {
        if (d->ms + CFC_EARLY_MS < d->timeout)
            return cf_fail(ctx, "expected ETIMEDOUT after the %u ms connect timeout, got it after %llu ms",
                           d->timeout, ms);
        if (d->ms > d->timeout + CFC_LATE_MS)
            return cf_fail(ctx, "expected ETIMEDOUT %u ms after the connect, got it after %llu ms", d->timeout, ms);
    } else if (ctx->expect < 0 && d->ms * 10 >= d->timeout) {
        return cf_fail(ctx, "expected %s at once (under a tenth of the %u ms connect timeout), got it after %llu ms",
                       cf_errno_name(ctx->expect), d->timeout, ms);
    }
    return 0;
}

uint32_t cfc_timeout_for(const struct cf_ctx *ctx)
{
    return ctx->expect == -ETIMEDOUT ? ctx->short_timeout_ms : CFC_QUICK_MS;
}

int cfc_guest_dial_check(struct cf_ctx *ctx, uint32_t port, cf_sock_t *out)
{
    struct cfc_dial d;

    if (cfc_guest_dial(ctx, port, 0, cfc_timeout_for(ctx), &d) < 0 || cfc_dial_is(ctx, &d) < 0)
        return -1;
    if (out)
        *out = d.s;
    else
        cf_close(d.s);
    return 0;
}

/* ---- the two halves of one connection ----------------------------------------------- */

int cfc_host_accept(struct cf_ctx *ctx, const cf_guid_t *vm, cf_sock_t *l, cf_sock_t *c)
{
    if (cfc_host_listen(ctx, vm, ctx->port_base, l) < 0 || cf_ctl_writeln(ctx, "LISTENING") < 0)
        return -1;
    return cfc_accept_one(ctx, *l, c);
}

int cfc_guest_accept(struct cf_ctx *ctx, cf_sock_t *l, cf_sock_t *c)
{
    if (cfc_guest_listen(ctx, ctx->port_base, l) < 0 || cf_ctl_writeln(ctx, "LISTENING") < 0)
        return -1;
    return cfc_accept_one(ctx, *l, c);
}

int cfc_host_dial_listening(struct cf_ctx *ctx, struct cfc_dial *d)
{
    if (cf_ctl_expectln(ctx, "LISTENING") < 0 || cfc_host_dial(ctx, &ctx->vm_id, ctx->port_base, CFC_QUICK_MS, d) < 0)
        return -1;
    CF_CHECK(ctx, d->rc, ctx->expect, "connect");
    return 0;
}

int cfc_guest_dial_listening(struct cf_ctx *ctx, struct cfc_dial *d)
{
    if (cf_ctl_expectln(ctx, "LISTENING") < 0 || cfc_guest_dial(ctx, ctx->port_base, 0, CFC_QUICK_MS, d) < 0)
        return -1;
    CF_CHECK(ctx, d->rc, ctx->expect, "connect");
    return 0;
}

int cfc_serve_pong(struct cf_ctx *ctx, const cf_guid_t *vm)
{
    cf_sock_t l, c;

    if (cfc_reg(ctx, ctx->port_base) < 0 || cfc_host_accept(ctx, vm, &l, &c) < 0 || cfc_pong(ctx, c) < 0)
        return -1;
    cf_close(c);
    cf_close(l);
    return 0;
}

int cfc_dial_ping(struct cf_ctx *ctx)
{
    struct cfc_dial d;

    if (cfc_guest_dial_listening(ctx, &d) < 0 || cfc_ping(ctx, d.s) < 0)
        return -1;
    cf_close(d.s);
    return 0;
}

int cfc_vsock_dialer_names(struct cf_ctx *ctx, cf_sock_t s, uint32_t *cid, uint32_t *port)
{
    cf_step(ctx, "getpeername of the guest's connection");
    CF_CHECK(ctx, cf_name_vsock(s, 1, cid, port), 0, "getpeername");
    if (*cid != CF_VMADDR_CID_HOST || *port != ctx->port_base)
        return cf_fail(ctx, "peer: expected (CID 2, port %u), got (CID %u, port %u)", ctx->port_base, *cid, *port);
    cf_step(ctx, "getsockname of the guest's connection");
    CF_CHECK(ctx, cf_name_vsock(s, 0, cid, port), 0, "getsockname");
    if (*port <= 1023 || *port == CF_VMADDR_PORT_ANY)
        return cf_fail(ctx, "local port of a connect without bind: expected an auto-bound port above 1023, got %u",
                       *port);
    return 0;
}
