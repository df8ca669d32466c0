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

