/* SPDX-License-Identifier: MIT */
/*
 * case_util.c: the small steps the case files share (which family the guest
 * side speaks, skipping with a reason, GUID checks, sending and receiving a
 * short text), so each cases_<area>.c keeps only what is particular to it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../catalogue.h"
#include "case_util.h"

#define ARRIVE_MS 3000 /* how long a side waits for the connection the other side makes */

int cfc_is_vsock(const struct cf_ctx *ctx)
{
    return ctx->col != CF_COL_WINDOWS;
}


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

/* Skip the case with a reason (catalogue.h: CF_NA with fail[] as the reason). */
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
    ev = cf_poll(l, CF_POLLIN, ARRIVE_MS);
    CF_CHECK(ctx, ev, 0, "poll");
    if (!(ev & CF_POLLIN))
        return cf_fail(ctx, "listener: expected a connection within %d ms, got none", ARRIVE_MS);
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
