/* SPDX-License-Identifier: MIT */
/*
 * cases_seqpacket.c: SOCK_SEQPACKET over vsock (issue 15): which transports
 * carry it, message boundaries from 1 byte to 64 KiB both ways and EMSGSIZE
 * above the largest message, MSG_TRUNC, MSG_EOR, MSG_PEEK per kernel, an
 * empty send and shutdown, and the reset a request of the other type gets.
 *
 * Only the virtio column has message sockets: the host side is then the
 * KVM-style host (AF_VSOCK by CID), which every target with that column has
 * (it runs hvsimd). The Windows column asks only for the socket, which
 * Winsock refuses; the hv_sock column gets its socket and the connect's
 * refusal. Sources: docs/reference/vsock-virtio.md section 9.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../catalogue.h"
#include "../cf_const.h"
#include "case_util.h"
#include "stream_pair.h"

#define RAW_AF_HYPERV 34
#define RAW_AF_VSOCK 40
#define RAW_SOCK_STREAM 1
#define RAW_SOCK_SEQPACKET 5
#define RAW_HV_PROTOCOL_RAW 1

#define K_SEQPACKET_PEEK 602u /* 6.1 refuses MSG_PEEK on SEQPACKET, 6.12 peeks (vsock-virtio.md 9.3) */
#define K_SEND_ERRNO 602u /* 6.1 reports a transport's send error as ENOMEM, 6.12 as it is (9.2) */
#define MAX_MSG (256u * 1024u) /* the peer's default buffer size */

static const size_t sizes[] = { 1, 2, 7, 100, 4095, 4096, 4097, 65535, 65536 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* A call that must return exactly n (CF_CHECK's positive values name outcomes, not counts). */
static int expect_n(struct cf_ctx *ctx, long got, long n, const char *what)
{
    if (got == n)
        return 0;
    if (got < 0)
        cf_fail(ctx, "%s: expected %ld, got %s", what, n, cf_errno_name((int)got));
    else
        cf_fail(ctx, "%s: expected %ld, got %ld", what, n, got);
    return -1;
}
#define CF_CHECK_N(ctx, got, n, what)                  \
    do {                                               \
        if (expect_n((ctx), (long)(got), (long)(n), (what)) < 0) \
            return -1;                                 \
    } while (0)

/* An AF_VSOCK socket of TYPE on this side (the host's is the KVM-style host's). */
static int vsock_socket(struct cf_ctx *ctx, int type, cf_sock_t *s)
{
    cf_step(ctx, "%s socket(AF_VSOCK, %s)", sp_side_name(ctx->side),
            type == RAW_SOCK_SEQPACKET ? "SOCK_SEQPACKET" : "SOCK_STREAM");
    CF_CHECK(ctx, cf_socket_raw(RAW_AF_VSOCK, type, 0, s), 0, "socket");
    return 0;
}

/* A listener of TYPE on port k of this side, reachable by the other. */
static int seq_listen(struct cf_ctx *ctx, int type, uint32_t k, cf_sock_t *l)
{
    if (ctx->side == SP_HOST && sp_host_register(ctx, k) < 0)
        return -1;
    if (vsock_socket(ctx, type, l) < 0)
        return -1;
    cf_step(ctx, "%s bind port %u", sp_side_name(ctx->side), (unsigned)sp_port(ctx, k));
    CF_CHECK(ctx, cf_bind_vsock(*l, CF_VMADDR_CID_ANY, sp_port(ctx, k)), 0, "bind");
    CF_CHECK(ctx, cf_listen(*l, 4), 0, "listen");
    return 0;
}

/*
 * A connected SEQPACKET pair: the guest dials the host (host_dials 0) or the
 * host dials the guest by its CID (1). The guest sends its CID first, so the
 * host knows where to dial.
 */
static int seq_pair(struct cf_ctx *ctx, int host_dials, uint32_t k, cf_sock_t *s)
{
    int dialer = host_dials ? SP_HOST : SP_GUEST;
    cf_sock_t l;
    uint64_t cid;

    sp_no_sigpipe();
    *s = CF_NO_SOCK;
    if (ctx->side == SP_GUEST) {
        uint32_t mine = 0;

        cf_step(ctx, "guest IOCTL_VM_SOCKETS_GET_LOCAL_CID");
        CF_CHECK(ctx, cf_local_cid(&mine), 0, "local CID");
        if (cf_ctl_write_u64(ctx, mine) < 0)
            return -1;
    } else if (cf_ctl_read_u64(ctx, &cid) < 0) {
        return -1;
    }
    if (ctx->side == dialer) {
        if (sp_expectln(ctx, "LISTENING") < 0 || vsock_socket(ctx, RAW_SOCK_SEQPACKET, s) < 0)
            return -1;
        cf_step(ctx, "%s connect to port %u", sp_side_name(ctx->side), (unsigned)sp_port(ctx, k));
        CF_CHECK(ctx,
                 cf_connect_vsock(*s, ctx->side == SP_GUEST ? CF_VMADDR_CID_HOST : (uint32_t)cid, sp_port(ctx, k)),
                 0, "connect");
        return sp_expectln(ctx, "ACCEPTED");
    }
    if (seq_listen(ctx, RAW_SOCK_SEQPACKET, k, &l) < 0 || sp_writeln(ctx, "LISTENING") < 0)
        return -1;
    cf_step(ctx, "%s accept", sp_side_name(ctx->side));
    CF_CHECK(ctx, cf_accept(l, s), 0, "accept");
    cf_close(l);
    return sp_writeln(ctx, "ACCEPTED");
}

/* Message i of an exchange: its size, bytes seeded by i. */
static void fill(uint8_t *buf, size_t len, size_t i)
{
    size_t o;

    for (o = 0; o < len; o++)
        buf[o] = (uint8_t)(o * 7u + i * 13u + 1u);
}

static int send_all_sizes(struct cf_ctx *ctx, cf_sock_t s, uint8_t *buf)
{
    size_t i;

    for (i = 0; i < NSIZES; i++) {
        fill(buf, sizes[i], i);
        cf_step(ctx, "%s sends a message of %zu bytes", sp_side_name(ctx->side), sizes[i]);
        CF_CHECK_N(ctx, cf_send(s, buf, sizes[i], 0), (int)sizes[i], "send");
    }
    return 0;
}

/* Each message arrives whole, in one receive, with nothing of the next. */
static int recv_all_sizes(struct cf_ctx *ctx, cf_sock_t s, uint8_t *buf, uint8_t *want)
{
    size_t i;

    for (i = 0; i < NSIZES; i++) {
        long n;
        int fl = -1;

        fill(want, sizes[i], i);
        cf_step(ctx, "%s receives the message of %zu bytes", sp_side_name(ctx->side), sizes[i]);
        n = cf_recv_flags(s, buf, MAX_MSG, 0, &fl);
        if (n != (long)sizes[i] || memcmp(buf, want, sizes[i]) != 0 || fl != 0) {
            cf_fail(ctx, "expected one message of %zu bytes, got %ld (flags %#x, %s)", sizes[i], n, (unsigned)fl,
                    n == (long)sizes[i] ? "other bytes" : "boundary lost");
            return -1;
        }
    }
    return 0;
}

/* ---- seqpacket.transport --------------------------------------------------------- */

static int transport_host(struct cf_ctx *ctx)
{
    cf_sock_t l, s;

    if (ctx->col != CF_COL_VIRTIO)
        return 0;
    if (seq_listen(ctx, RAW_SOCK_SEQPACKET, 0, &l) < 0 || sp_writeln(ctx, "LISTENING") < 0)
        return -1;
    CF_CHECK(ctx, cf_accept(l, &s), 0, "accept");
    cf_close(s);
    cf_close(l);
    return sp_expectln(ctx, "DONE");
}

static int transport_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;
    int rc;

    if (ctx->col == CF_COL_WINDOWS) {
        cf_step(ctx, "guest socket(AF_HYPERV, SOCK_SEQPACKET, HV_PROTOCOL_RAW)");
        rc = cf_socket_raw(RAW_AF_HYPERV, RAW_SOCK_SEQPACKET, RAW_HV_PROTOCOL_RAW, &s);
        if (rc == 0)
            cf_close(s);
        CF_CHECK(ctx, rc, ctx->expect, "socket");
        return 0;
    }
    if (ctx->col == CF_COL_VIRTIO && sp_expectln(ctx, "LISTENING") < 0)
        return -1;
    /* Every transport makes the socket; connect asks the transport. */
    if (vsock_socket(ctx, RAW_SOCK_SEQPACKET, &s) < 0)
        return -1;
    cf_step(ctx, "guest connect to CID 2 port %u", (unsigned)sp_port(ctx, 0));
    rc = cf_connect_vsock(s, CF_VMADDR_CID_HOST, sp_port(ctx, 0));
    cf_close(s);
    CF_CHECK(ctx, rc, ctx->expect, "connect");
    return ctx->col == CF_COL_VIRTIO ? sp_writeln(ctx, "DONE") : 0;
}

/* ---- seqpacket.boundaries ----------------------------------------------------------- */

/* Both dial directions; in each, the guest sends every size, then the host;
 * then the guest tries one message above the largest. */
static int boundaries_side(struct cf_ctx *ctx)
{
    uint8_t *buf = malloc(MAX_MSG + 1), *want = malloc(MAX_MSG);
    int host_dials, rc = -1;

    if (buf == NULL || want == NULL) {
        cf_fail(ctx, "out of memory");
        goto out;
    }
    for (host_dials = 0; host_dials < 2; host_dials++) {
        cf_sock_t s;

        if (seq_pair(ctx, host_dials, (uint32_t)host_dials, &s) < 0)
            goto out;
        if (ctx->side == SP_GUEST) {
            if (send_all_sizes(ctx, s, buf) < 0 || recv_all_sizes(ctx, s, buf, want) < 0)
                goto out;
            unsigned k = cf_kernel_version();
            int big_err = k != 0 && k < K_SEND_ERRNO ? -ENOMEM : -EMSGSIZE;
            long r;

            cf_step(ctx, "guest sends a message of %u bytes, above the largest (kernel %u)", MAX_MSG + 1, k);
            memset(buf, 'z', MAX_MSG + 1);
            r = cf_send(s, buf, MAX_MSG + 1, 0);
            if (r != big_err) {
                cf_fail(ctx, "expected %s for a message of %u bytes, got %ld (%s)", cf_errno_name(big_err), MAX_MSG + 1,
                        r, r < 0 ? cf_errno_name((int)r) : "sent");
                goto out;
            }
            cf_step(ctx, "guest sends a last message after the refusal");
            CF_CHECK_N(ctx, cf_send(s, "end", 3, 0), 3, "send");
        } else {
            if (recv_all_sizes(ctx, s, buf, want) < 0 || send_all_sizes(ctx, s, buf) < 0)
                goto out;
            cf_step(ctx, "host receives the message after the refused one");
            if (sp_recv_text(ctx, s, "end") < 0)
                goto out;
        }
        cf_close(s);
    }
    rc = 0;
out:
    free(buf);
    free(want);
    return rc;
}

/* ---- seqpacket.trunc-and-eor ---------------------------------------------------------- */

static int trunc_eor_host(struct cf_ctx *ctx)
{
    cf_sock_t s;
    int i;

    if (seq_pair(ctx, 0, 0, &s) < 0)
        return -1;
    for (i = 0; i < 3; i++) {
        cf_step(ctx, "host sends \"0123456789\" (%d)", i + 1);
        CF_CHECK_N(ctx, cf_send(s, "0123456789", 10, 0), 10, "send");
    }
    cf_step(ctx, "host sends \"e1\" with MSG_EOR, then \"n1\" without");
    CF_CHECK_N(ctx, cf_send(s, "e1", 2, CF_MSG_EOR), 2, "send");
    CF_CHECK_N(ctx, cf_send(s, "n1", 2, 0), 2, "send");
    if (sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int trunc_eor_guest(struct cf_ctx *ctx)
{
    char buf[16];
    cf_sock_t s;
    int fl = -1;
    long n;

    if (seq_pair(ctx, 0, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest receives 4 bytes of a 10-byte message");
    n = cf_recv_flags(s, buf, 4, 0, &fl);
    if (n != 4 || memcmp(buf, "0123", 4) != 0 || fl != CF_MSG_TRUNC) {
        cf_fail(ctx, "expected 4 bytes and MSG_TRUNC, got %ld (flags %#x)", n, (unsigned)fl);
        return -1;
    }
    cf_step(ctx, "guest receives with MSG_TRUNC into 4 bytes: the real length");
    CF_CHECK_N(ctx, cf_recv(s, buf, 4, CF_MSG_TRUNC), 10, "recv(MSG_TRUNC)");
    cf_step(ctx, "guest receives the third whole (the rest of the first two is gone)");
    n = cf_recv_flags(s, buf, sizeof(buf), 0, &fl);
    if (n != 10 || fl != 0) {
        cf_fail(ctx, "expected the third message whole, got %ld (flags %#x)", n, (unsigned)fl);
        return -1;
    }
    cf_step(ctx, "guest receives \"e1\", sent with MSG_EOR");
    n = cf_recv_flags(s, buf, sizeof(buf), 0, &fl);
    if (n != 2 || memcmp(buf, "e1", 2) != 0 || fl != CF_MSG_EOR) {
        cf_fail(ctx, "expected \"e1\" with MSG_EOR, got %ld (flags %#x)", n, (unsigned)fl);
        return -1;
    }
    cf_step(ctx, "guest receives \"n1\", sent without");
    n = cf_recv_flags(s, buf, sizeof(buf), 0, &fl);
    if (n != 2 || memcmp(buf, "n1", 2) != 0 || fl != 0) {
        cf_fail(ctx, "expected \"n1\" without flags, got %ld (flags %#x)", n, (unsigned)fl);
        return -1;
    }
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* ---- seqpacket.peek ---------------------------------------------------------------------- */

static int peek_host(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (seq_pair(ctx, 0, 0, &s) < 0)
        return -1;
    cf_step(ctx, "host sends \"pk\"");
    CF_CHECK_N(ctx, cf_send(s, "pk", 2, 0), 2, "send");
    if (sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int peek_guest(struct cf_ctx *ctx)
{
    unsigned k = cf_kernel_version();
    char buf[8];
    cf_sock_t s;

    if (seq_pair(ctx, 0, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest recv(MSG_PEEK | MSG_TRUNC) into 1 byte on kernel %u", k);
    if (k != 0 && k < K_SEQPACKET_PEEK) {
        CF_CHECK(ctx, cf_recv(s, buf, 1, CF_MSG_PEEK | CF_MSG_TRUNC), -ENOMEM, "recv(MSG_PEEK)");
    } else {
        CF_CHECK_N(ctx, cf_recv(s, buf, 1, CF_MSG_PEEK | CF_MSG_TRUNC), 2, "recv(MSG_PEEK)");
    }
    cf_step(ctx, "guest receives the message, still queued");
    if (sp_recv_text(ctx, s, "pk") < 0)
        return -1;
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* ---- seqpacket.empty-send-and-shutdown ----------------------------------------------------- */

static int empty_host(struct cf_ctx *ctx)
{
    char buf[4];
    cf_sock_t s;

    if (seq_pair(ctx, 0, 0, &s) < 0)
        return -1;
    cf_step(ctx, "host receives \"x\" (the empty send before it sent nothing)");
    CF_CHECK_N(ctx, cf_recv(s, buf, sizeof(buf), 0), 1, "recv");
    cf_step(ctx, "host reads the end after the guest's SHUT_WR");
    CF_CHECK(ctx, cf_recv(s, buf, sizeof(buf), 0), CF_EOF, "recv");
    cf_step(ctx, "host sends \"back\" the other way, still open");
    CF_CHECK_N(ctx, cf_send(s, "back", 4, 0), 4, "send");
    cf_close(s);
    return 0;
}

static int empty_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (seq_pair(ctx, 0, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest sends 0 bytes");
    CF_CHECK(ctx, cf_send(s, "", 0, 0), 0, "send");
    CF_CHECK_N(ctx, cf_send(s, "x", 1, 0), 1, "send");
    cf_step(ctx, "guest shutdown(SHUT_WR)");
    CF_CHECK(ctx, cf_shutdown(s, CF_SHUT_WR), 0, "shutdown");
    cf_step(ctx, "guest receives \"back\"");
    if (sp_recv_text(ctx, s, "back") < 0)
        return -1;
    cf_close(s);
    return 0;
}

/* ---- seqpacket.other-type-reset -------------------------------------------------------------- */

/* The host listens with a stream on port 0 and SEQPACKET on port 1; the
 * guest dials each with the other type. */
static int other_type_host(struct cf_ctx *ctx)
{
    cf_sock_t l0, l1;

    if (seq_listen(ctx, RAW_SOCK_STREAM, 0, &l0) < 0 || seq_listen(ctx, RAW_SOCK_SEQPACKET, 1, &l1) < 0)
        return -1;
    if (sp_writeln(ctx, "LISTENING") < 0 || sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(l0);
    cf_close(l1);
    return 0;
}

static int other_type_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;
    int k, rc;

    if (sp_expectln(ctx, "LISTENING") < 0)
        return -1;
    for (k = 0; k < 2; k++) {
        int type = k == 0 ? RAW_SOCK_SEQPACKET : RAW_SOCK_STREAM;

        if (vsock_socket(ctx, type, &s) < 0)
            return -1;
        cf_step(ctx, "guest connects a %s to the host's %s listener", k == 0 ? "SEQPACKET" : "stream",
                k == 0 ? "stream" : "SEQPACKET");
        rc = cf_connect_vsock(s, CF_VMADDR_CID_HOST, sp_port(ctx, (uint32_t)k));
        cf_close(s);
        CF_CHECK(ctx, rc, ctx->expect, "connect");
    }
    return sp_writeln(ctx, "DONE");
}

const struct cf_case cf_cases_seqpacket[] = {
    {
        .id = "seqpacket.transport",
        .area = "connecting",
        .rule = "SOCK_SEQPACKET: Winsock has no such type (socket fails); hv_sock makes the socket and refuses the "
                "connect (ESOCKTNOSUPPORT); virtio connects",
        .source = "docs/reference/vsock-virtio.md 9.1 [S3]",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = -ESOCKTNOSUPPORT, [CF_COL_HVSOCK] = -ESOCKTNOSUPPORT, [CF_COL_VIRTIO] = 0 },
        .needs = CF_NEED_ADMIN,
        .host = transport_host,
        .guest = transport_guest,
    },
    {
        .id = "seqpacket.boundaries",
        .area = "data",
        .rule = "SOCK_SEQPACKET keeps every message whole, 1 byte to 64 KiB, both ways and both dial directions; a "
                "message above the peer's buffer fails (EMSGSIZE; ENOMEM on 6.1) and the connection goes on",
        .source = "docs/reference/vsock-virtio.md 9.2 [S3]",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = CF_NA, [CF_COL_VIRTIO] = 0 },
        .needs = CF_NEED_ADMIN,
        .host = boundaries_side,
        .guest = boundaries_side,
    },
    {
        .id = "seqpacket.trunc-and-eor",
        .area = "data",
        .rule = "A short buffer takes the head of a message and MSG_TRUNC, MSG_TRUNC in the flags returns the real "
                "length, and MSG_EOR reaches the receiver as its sender gave it",
        .source = "docs/reference/vsock-virtio.md 9.2 [S3]",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = CF_NA, [CF_COL_VIRTIO] = 0 },
        .needs = CF_NEED_ADMIN,
        .host = trunc_eor_host,
        .guest = trunc_eor_guest,
    },
    {
        .id = "seqpacket.peek",
        .area = "data",
        .rule = "MSG_PEEK on SOCK_SEQPACKET: 6.1 refuses it (ENOMEM, the transport's EOPNOTSUPP as af_vsock.c showed "
                "it) once a message is there; 6.12 on peeks, "
                "and MSG_TRUNC gives the message's length",
        .source = "docs/reference/vsock-virtio.md 9.3 [S3]",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = CF_NA, [CF_COL_VIRTIO] = 0 },
        .needs = CF_NEED_ADMIN,
        .host = peek_host,
        .guest = peek_guest,
    },
    {
        .id = "seqpacket.empty-send-and-shutdown",
        .area = "shutdown",
        .rule = "An empty send sends nothing (the peer reads no end); after SHUT_WR the peer reads 0 and may still "
                "send",
        .source = "docs/reference/vsock-virtio.md 9.2 [S3]",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = CF_NA, [CF_COL_VIRTIO] = 0 },
        .needs = CF_NEED_ADMIN,
        .host = empty_host,
        .guest = empty_guest,
    },
    {
        .id = "seqpacket.other-type-reset",
        .area = "connecting",
        .rule = "A request of one type to a listener of the other is reset (ECONNRESET): SEQPACKET to a stream "
                "listener and the reverse",
        .source = "docs/reference/vsock-virtio.md 9.1 [S3]",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = CF_NA, [CF_COL_VIRTIO] = -ECONNRESET },
        .needs = CF_NEED_ADMIN,
        .host = other_type_host,
        .guest = other_type_guest,
    },
    { .id = NULL },
};
