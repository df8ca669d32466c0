/* SPDX-License-Identifier: MIT */
/*
 * cases_msg.c: the send/receive family beyond send and recv, in the data
 * area: sendto with a destination (on a connected and on an unconnected
 * stream), recvfrom's reported source, sendmsg gathering buffers, recvmsg
 * scattering them (no name, no ancillary data on vsock), recvmsg's MSG_PEEK.
 * On Windows the backend uses sendto/recvfrom and WSASend/WSARecv, whose
 * stream semantics are the same gathering and scattering.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../catalogue.h"
#include "../cf_const.h"
#include "case_util.h"
#include "stream_pair.h"

/* The guest's destination for sendto: the host service of port 0 of the
 * case, in the guest's own kind of address. */
static long guest_sendto(struct cf_ctx *ctx, cf_sock_t s, const char *byte)
{
    cf_guid_t svc = sp_svc(ctx, 0);

    if (cfc_is_vsock(ctx))
        return cf_sendto_vsock(s, byte, 1, CF_VMADDR_CID_HOST, sp_port(ctx, 0));
    return cf_sendto_hv(s, byte, 1, &CF_GUID_PARENT, &svc);
}

/* ---- sendto with a destination ------------------------------------------------------ */

/* The host reads what arrived: "x" then "y" when the destination was ignored,
 * only "y" when the sendto was refused (it sent nothing). */
static int dest_host(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "SENT") < 0)
        return -1;
    cf_step(ctx, "host reads what the guest's sendto and send carried");
    if (ctx->expect == 0 && sp_recv_text(ctx, s, "x") < 0)
        return -1;
    if (sp_recv_text(ctx, s, "y") < 0)
        return -1;
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

static int dest_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest sendto(\"x\") with a destination on the connected stream");
    CF_CHECK(ctx, guest_sendto(ctx, s, "x"), ctx->expect, "sendto");
    cf_step(ctx, "guest send(\"y\")");
    if (sp_send_all(ctx, s, "y", 1) < 0 || sp_writeln(ctx, "SENT") < 0 || sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int dest_unconnected_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_guest_socket(ctx, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest sendto with a destination on an unconnected stream");
    CF_CHECK(ctx, guest_sendto(ctx, s, "x"), ctx->expect, "sendto");
    cf_close(s);
    return 0;
}

/* ---- sendmsg and recvmsg over several buffers ---------------------------------------- */

static int gather_host(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "host reads the guest's gathered message");
    if (sp_recv_text(ctx, s, "abcde") < 0 || sp_writeln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int gather_guest(struct cf_ctx *ctx)
{
    char a[] = "ab", e[] = "", c[] = "cde";
    cf_buf_t b[3] = { { a, 2 }, { e, 0 }, { c, 3 } };
    cf_sock_t s;
    long n;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest sendmsg of \"ab\", \"\" and \"cde\"");
    n = cf_sendmsg(s, b, 3, 0);
    CF_CHECK(ctx, n, ctx->expect, "sendmsg");
    if (n != 5) {
        cf_fail(ctx, "expected sendmsg to send 5 bytes, got %ld", n);
        return -1;
    }
    if (sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

/* The host's side of the receive cases: it sends text, then waits for the guest. */
static int send_then_wait(struct cf_ctx *ctx, const char *text)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "host sends \"%s\"", text);
    if (sp_send_all(ctx, s, text, strlen(text)) < 0 || sp_writeln(ctx, "SENT") < 0 || sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int scatter_host(struct cf_ctx *ctx)
{
    return send_then_wait(ctx, "abcdef");
}

static int scatter_guest(struct cf_ctx *ctx)
{
    char a[3], c[3];
    cf_buf_t b[2] = { { a, 3 }, { c, 3 } };
    int namelen = -2, ctllen = -2;
    cf_sock_t s;
    long n;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "SENT") < 0)
        return -1;
    cf_step(ctx, "guest recvmsg(MSG_WAITALL) into two buffers of 3 bytes");
    n = cf_recvmsg(s, b, 2, CF_MSG_WAITALL, &namelen, &ctllen);
    CF_CHECK(ctx, n, ctx->expect, "recvmsg");
    if (n != 6 || memcmp(a, "abc", 3) != 0 || memcmp(c, "def", 3) != 0) {
        cf_fail(ctx, "expected 6 bytes as \"abc\" + \"def\", got %ld as \"%.3s\" + \"%.3s\"", n, a, c);
        return -1;
    }
    /* vsock reports no source and no ancillary data (WSARecv has neither: -1). */
    if (cfc_is_vsock(ctx) && (namelen != 0 || ctllen != 0)) {
        cf_fail(ctx, "expected msg_namelen 0 and msg_controllen 0, got %d and %d", namelen, ctllen);
        return -1;
    }
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* ---- recvfrom's source, recvmsg's MSG_PEEK -------------------------------------------- */

static int source_host(struct cf_ctx *ctx)
{
    return send_then_wait(ctx, "z");
}

static int source_guest(struct cf_ctx *ctx)
{
    int addrlen = 128;
    cf_sock_t s;
    char c = 0;
    long n;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "SENT") < 0)
        return -1;
    cf_step(ctx, "guest recvfrom offering 128 bytes for the source");
    n = cf_recvfrom(s, &c, 1, 0, &addrlen);
    CF_CHECK(ctx, n, ctx->expect, "recvfrom");
    if (n != 1 || c != 'z') {
        cf_fail(ctx, "expected \"z\", got %ld bytes", n);
        return -1;
    }
    /* vsock: a stream reports no source, length 0; Winsock ignores the argument. */
    if (addrlen != (cfc_is_vsock(ctx) ? 0 : 128)) {
        cf_fail(ctx, "expected the source length %d, got %d", cfc_is_vsock(ctx) ? 0 : 128, addrlen);
        return -1;
    }
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

static int peek_host(struct cf_ctx *ctx)
{
    return send_then_wait(ctx, "peek");
}

/* A refused peek loses nothing: the data is read normally after it. */
static int peek_guest(struct cf_ctx *ctx)
{
    char buf[4];
    cf_buf_t b[1] = { { buf, sizeof(buf) } };
    int namelen, ctllen;
    cf_sock_t s;
    long n;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "SENT") < 0)
        return -1;
    cf_step(ctx, "guest waits for the data");
    if (sp_readable(ctx, s, 1000, "4 bytes sent") < 0)
        return -1;
    cf_step(ctx, "guest recvmsg(MSG_PEEK)");
    n = cf_recvmsg(s, b, 1, CF_MSG_PEEK, &namelen, &ctllen);
    CF_CHECK(ctx, n, ctx->expect, "recvmsg(MSG_PEEK)");
    if (n > 0 && memcmp(buf, "peek", (size_t)n) != 0) {
        cf_fail(ctx, "expected to peek \"peek\", got \"%.*s\"", (int)n, buf);
        return -1;
    }
    cf_step(ctx, "guest recv after the peek");
    if (sp_recv_text(ctx, s, "peek") < 0)
        return -1;
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* ---- the rows -------------------------------------------------------------------------- */

#define SRC_STREAM "docs/reference/hyperv-sockets.md 0 (a byte stream); docs/reference/vsock-virtio.md 1.4"

const struct cf_case cf_cases_msg[] = {
    {
        .id = "data.sendto-destination-on-connected-stream",
        .area = "data",
        .rule = "sendto with a destination on a connected stream: vsock refuses it (EISCONN) and sends nothing; "
                "Winsock ignores the destination and sends",
        .source = SRC_STREAM "; docs/reference/hyperv-sockets.md 4.1 (plain Winsock)",
        .confidence = CF_INFERRED,
        .expect = { [CF_COL_WINDOWS] = 0, [CF_COL_HVSOCK] = -EISCONN, [CF_COL_VIRTIO] = -EISCONN },
        .host = dest_host,
        .guest = dest_guest,
    },
    {
        .id = "data.sendto-destination-unconnected",
        .area = "data",
        .rule = "sendto with a destination on an unconnected stream: vsock EOPNOTSUPP (streams take no "
                "destination), Winsock WSAENOTCONN",
        .source = SRC_STREAM "; docs/reference/hyperv-sockets.md 4.1 (plain Winsock)",
        .confidence = CF_INFERRED,
        .expect = { [CF_COL_WINDOWS] = -ENOTCONN, [CF_COL_HVSOCK] = -EOPNOTSUPP, [CF_COL_VIRTIO] = -EOPNOTSUPP },
        .guest = dest_unconnected_guest,
    },
    {
        .id = "data.sendmsg-gathers-buffers",
        .area = "data",
        .rule = "sendmsg (WSASend) of several buffers, one of them empty, sends them in order as one stream call",
        .source = SRC_STREAM,
        .confidence = CF_INFERRED,
        .expect = { 0, 0, 0 },
        .host = gather_host,
        .guest = gather_guest,
    },
    {
        .id = "data.recvmsg-scatters-buffers",
        .area = "data",
        .rule = "recvmsg (WSARecv) with MSG_WAITALL fills several buffers in order; vsock reports no source "
                "(msg_namelen 0) and no ancillary data (msg_controllen 0)",
        .source = SRC_STREAM "; docs/reference/design-notes.md 3 (ancillary data not carried)",
        .confidence = CF_INFERRED,
        .expect = { 0, 0, 0 },
        .host = scatter_host,
        .guest = scatter_guest,
    },
    {
        .id = "data.recvfrom-reports-no-source",
        .area = "data",
        .rule = "recvfrom on a stream: vsock sets the source length to 0; Winsock leaves the argument alone",
        .source = SRC_STREAM "; docs/reference/hyperv-sockets.md 4.1 (plain Winsock)",
        .confidence = CF_INFERRED,
        .expect = { 0, 0, 0 },
        .host = source_host,
        .guest = source_guest,
    },
    {
        .id = "data.recvmsg-peek-linux",
        .area = "data",
        .rule = "recvmsg(MSG_PEEK): hv_sock refuses it (EOPNOTSUPP), virtio-vsock peeks; the data is still read "
                "after",
        .source = "docs/reference/hyperv-sockets.md 3.4 [S8][S8b], 7; docs/reference/design-notes.md 3",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = -EOPNOTSUPP, [CF_COL_VIRTIO] = 0 },
        .host = peek_host,
        .guest = peek_guest,
    },
    { .id = NULL },
};
