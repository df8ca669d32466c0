/* SPDX-License-Identifier: MIT */
/*
 * cases_shutdown.c: the shutdown area of the conformance catalogue: half-close
 * in each direction and what each personality reports after it (Winsock's
 * WSAESHUTDOWN where Linux gives EPIPE or 0), SHUT_RD staying local, close
 * with data still in flight either way (the peer drains, then reads EOF, never
 * a reset), and the calls that need a connection on a socket that has none.
 * The guest side does what is under test, so each column shows its own
 * personality; the host side is the Windows peer that watches.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../catalogue.h"
#include "case_util.h"
#include "stream_pair.h"

/* ---- SHUT_WR ------------------------------------------------------------------------- */

#define SHUT_WR_BYTES 3000u

/* The half-closing end: sends bytes of pattern seed, shuts down its sending
 * side and still reads the peer's reply. */
static int send_fin_read_reply(struct cf_ctx *ctx, cf_sock_t s, uint64_t seed, size_t bytes)
{
    const char *me = sp_side_name(ctx->side), *peer = sp_side_name(!ctx->side);

    cf_step(ctx, "%s sends %zu bytes", me, bytes);
    if (sp_send_pattern(ctx, s, seed, bytes, 1) < 0)
        return -1;
    cf_step(ctx, "%s shutdown(SHUT_WR)", me);
    CF_CHECK(ctx, cf_shutdown(s, CF_SHUT_WR), 0, "shutdown");
    cf_step(ctx, "%s reads the %s's reply after its own SHUT_WR", me, peer);
    return sp_recv_text(ctx, s, "reply");
}

/* The other end: reads the data in reads of chunk bytes, then what follows
 * it (ctx->expect), then replies on the half-closed connection. */
static int read_fin_reply(struct cf_ctx *ctx, cf_sock_t s, uint64_t seed, uint64_t bytes, size_t chunk)
{
    const char *me = sp_side_name(ctx->side), *peer = sp_side_name(!ctx->side);
    char c;

    cf_step(ctx, "%s reads %llu bytes before the %s's FIN", me, (unsigned long long)bytes, peer);
    if (sp_recv_pattern(ctx, s, seed, bytes, chunk) < 0)
        return -1;
    cf_step(ctx, "%s reads after the data (the %s shut down SHUT_WR)", me, peer);
    CF_CHECK(ctx, cf_recv(s, &c, 1, 0), ctx->expect, "recv");
    cf_step(ctx, "%s replies on the half-closed connection", me);
    return sp_send_all(ctx, s, "reply", 5);
}

/* Guest dials, sends, shuts down its sending side and still receives. */
static int shut_wr_host(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_GUEST_DIALS, 0, &s) < 0 || read_fin_reply(ctx, s, 51, SHUT_WR_BYTES, SHUT_WR_BYTES) < 0)
        return -1;
    return sp_expectln(ctx, "DONE");
}

static int shut_wr_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_GUEST_DIALS, 0, &s) < 0 || send_fin_read_reply(ctx, s, 51, SHUT_WR_BYTES) < 0)
        return -1;
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* The host sees the FIN and nothing after it: the refused send put nothing
 * on the wire. */
static int peer_reads_eof_host(struct cf_ctx *ctx)
{
    char c;
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_step(ctx, "host reads after the guest's SHUT_WR and send attempts");
    CF_CHECK(ctx, cf_recv(s, &c, 1, 0), CF_EOF, "recv");
    cf_close(s);
    return 0;
}

static int send_after_shut_wr_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest shutdown(SHUT_WR)");
    CF_CHECK(ctx, cf_shutdown(s, CF_SHUT_WR), 0, "shutdown");
    cf_step(ctx, "guest send after SHUT_WR");
    CF_CHECK(ctx, cf_send(s, "x", 1, 0), ctx->expect, "send");
    cf_step(ctx, "guest send after SHUT_WR, again");
    CF_CHECK(ctx, cf_send(s, "x", 1, 0), ctx->expect, "send");
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

static int repeat_shut_wr_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest shutdown(SHUT_WR), first");
    CF_CHECK(ctx, cf_shutdown(s, CF_SHUT_WR), 0, "shutdown");
    cf_step(ctx, "guest shutdown(SHUT_WR), second");
    CF_CHECK(ctx, cf_shutdown(s, CF_SHUT_WR), ctx->expect, "shutdown");
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* The reverse direction: the host (Windows) half-closes after 64 KiB, more
 * than one ring holds, so the FIN queues behind data still in flight; a Linux
 * reader once saw a premature EOF here (reference 4.5, virtsock #55). */
#define HOST_FIN_BYTES (64u * 1024u)

static int host_shut_wr_host(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || send_fin_read_reply(ctx, s, 52, HOST_FIN_BYTES) < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int host_shut_wr_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || read_fin_reply(ctx, s, 52, HOST_FIN_BYTES, 16384) < 0)
        return -1;
    cf_close(s);
    return 0;
}

/* ---- SHUT_RD ------------------------------------------------------------------------------ */

/* The guest shuts down reading; the host then sends. The guest's recv fails
 * (Winsock) or returns 0 (vsock), and its sending side still works. */
static int shut_rd_recv_host(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "SHUT") < 0)
        return -1;
    /* Only feeding the guest's receive queue matters here; whether the send
     * succeeds is the case shutdown.shut-rd-peer-writes-succeed. */
    cf_step(ctx, "host sends 4 bytes to the guest that shut down reading");
    (void)cf_send(s, "data", 4, 0);
    if (sp_writeln(ctx, "SENT") < 0)
        return -1;
    cf_step(ctx, "host reads the guest's \"ok\" sent after its SHUT_RD");
    if (sp_recv_text(ctx, s, "ok") < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int shut_rd_recv_guest(struct cf_ctx *ctx)
{
    char buf[8];
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest shutdown(SHUT_RD)");
    CF_CHECK(ctx, cf_shutdown(s, CF_SHUT_RD), 0, "shutdown");
    if (sp_writeln(ctx, "SHUT") < 0 || sp_expectln(ctx, "SENT") < 0)
        return -1;
    cf_step(ctx, "guest recv after SHUT_RD, with data sent to it");
    CF_CHECK(ctx, cf_recv(s, buf, sizeof(buf), 0), ctx->expect, "recv");
    cf_step(ctx, "guest sends after SHUT_RD");
    if (sp_send_all(ctx, s, "ok", 2) < 0)
        return -1;
    cf_close(s);
    return 0;
}

/* SHUT_RD puts nothing on the wire: the host sees no EOF and its writes keep
 * succeeding (an AF_UNIX shutdown would make them fail with EPIPE). */
static int shut_rd_peer_host(struct cf_ctx *ctx)
{
    cf_sock_t s;
    int i;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "SHUT") < 0)
        return -1;
    cf_step(ctx, "host looks for an EOF after the guest's SHUT_RD");
    if (sp_quiet(ctx, s, 50, "SHUT_RD sends nothing") < 0)
        return -1;
    for (i = 0; i < 3; i++) {
        cf_step(ctx, "host send %d after the guest's SHUT_RD", i + 1);
        CF_CHECK(ctx, cf_send(s, "data", 4, 0), ctx->expect, "send");
        if (sp_quiet(ctx, s, 20, "the guest sends nothing") < 0)
            return -1;
    }
    if (sp_writeln(ctx, "SENT") < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int shut_rd_peer_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest shutdown(SHUT_RD)");
    CF_CHECK(ctx, cf_shutdown(s, CF_SHUT_RD), 0, "shutdown");
    if (sp_writeln(ctx, "SHUT") < 0 || sp_expectln(ctx, "SENT") < 0)
        return -1;
    cf_close(s);
    return 0;
}

/* ---- SHUT_RDWR, and SHUT_WR at both ends ---------------------------------------------------------- */

/* What a send after its own SHUT_WR gives, per column. */
static int shut_send_want(const struct cf_ctx *ctx)
{
    return ctx->col == CF_COL_WINDOWS ? -ESHUTDOWN : -EPIPE;
}

/* The host watches the guest shut down both ways: EOF, then its own sends
 * still go through where SHUT_RD stays local (Windows, hv_sock); the virtio
 * column's host is the emulated Hyper-V one, whose answer to virtio's
 * SHUTDOWN(RCV) no reference gives, so it is not checked there. */
static int shut_rdwr_host(struct cf_ctx *ctx)
{
    cf_sock_t s;
    char c;
    long n;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "SHUT") < 0)
        return -1;
    cf_step(ctx, "host reads after the guest's SHUT_RDWR");
    if (sp_readable(ctx, s, 1000, "the guest shut down") < 0)
        return -1;
    CF_CHECK(ctx, cf_recv(s, &c, 1, 0), CF_EOF, "recv");
    cf_step(ctx, "host sends after the guest's SHUT_RDWR");
    n = cf_send(s, "data", 4, CF_MSG_NOSIGNAL);
    if (ctx->col != CF_COL_VIRTIO)
        CF_CHECK(ctx, n, 0, "send");
    if (sp_writeln(ctx, "SENT") < 0 || sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int shut_rdwr_guest(struct cf_ctx *ctx)
{
    char buf[8];
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest shutdown(SHUT_RDWR)");
    CF_CHECK(ctx, cf_shutdown(s, CF_SHUT_RDWR), 0, "shutdown");
    if (sp_writeln(ctx, "SHUT") < 0 || sp_expectln(ctx, "SENT") < 0)
        return -1;
    cf_step(ctx, "guest recv after SHUT_RDWR, with data sent to it");
    CF_CHECK(ctx, cf_recv(s, buf, sizeof(buf), CF_MSG_DONTWAIT), ctx->expect, "recv");
    cf_step(ctx, "guest send after SHUT_RDWR");
    CF_CHECK(ctx, cf_send(s, "x", 1, CF_MSG_NOSIGNAL), shut_send_want(ctx), "send");
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* Each end sends a byte and shuts down its sending side; each reads the
 * other's byte, then EOF, and its own later send fails. */
static int both_shut_wr_end(struct cf_ctx *ctx, cf_sock_t s, const char *mine, const char *theirs, int send_want)
{
    const char *me = sp_side_name(ctx->side);
    char c;

    cf_step(ctx, "%s sends \"%s\" and shutdown(SHUT_WR)", me, mine);
    if (sp_send_all(ctx, s, mine, 1) < 0)
        return -1;
    CF_CHECK(ctx, cf_shutdown(s, CF_SHUT_WR), 0, "shutdown");
    cf_step(ctx, "%s reads the peer's byte, sent before its SHUT_WR", me);
    if (sp_recv_text(ctx, s, theirs) < 0)
        return -1;
    cf_step(ctx, "%s reads after both ends shut down sending", me);
    CF_CHECK(ctx, cf_recv(s, &c, 1, 0), ctx->expect, "recv");
    cf_step(ctx, "%s sends after its own SHUT_WR", me);
    CF_CHECK(ctx, cf_send(s, "z", 1, CF_MSG_NOSIGNAL), send_want, "send");
    return 0;
}

static int both_shut_wr_host(struct cf_ctx *ctx)
{
    cf_sock_t s;

    /* The host is the Windows peer in every column. */
    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || both_shut_wr_end(ctx, s, "h", "g", -ESHUTDOWN) < 0 ||
        sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int both_shut_wr_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || both_shut_wr_end(ctx, s, "g", "h", shut_send_want(ctx)) < 0)
        return -1;
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* ---- close with data in flight ---------------------------------------------------------------- */

#define UNREAD_BYTES 6000u

/* The guest closes with the host's data unread in its queue; an AF_UNIX
 * close would reset the host's end, hv_sock's rescind lets it drain. */
static int close_unread_host(struct cf_ctx *ctx)
{
    char c;
    cf_sock_t s;
    static char junk[UNREAD_BYTES];

    if (sp_pair(ctx, SP_GUEST_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "host sends %u bytes the guest will not read", UNREAD_BYTES);
    memset(junk, 'u', sizeof(junk));
    if (sp_send_all(ctx, s, junk, sizeof(junk)) < 0 || sp_writeln(ctx, "SENT") < 0 || sp_expectln(ctx, "CLOSED") < 0)
        return -1;
    cf_step(ctx, "host reads the guest's last words after its close");
    if (sp_readable(ctx, s, 1000, "the guest closed") < 0 || sp_recv_text(ctx, s, "last words") < 0)
        return -1;
    cf_step(ctx, "host reads after the last words (the guest closed with unread data)");
    CF_CHECK(ctx, cf_recv(s, &c, 1, 0), ctx->expect, "recv");
    cf_close(s);
    return 0;
}

static int close_unread_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_GUEST_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest sends its last words");
    if (sp_send_all(ctx, s, "last words", 10) < 0 || sp_expectln(ctx, "SENT") < 0)
        return -1;
    /* Make sure the host's bytes are queued here, unread, before closing. */
    cf_step(ctx, "guest waits for the host's data to arrive");
    if (sp_readable(ctx, s, 1000, "the host sent data") < 0)
        return -1;
    cf_step(ctx, "guest close with unread data");
    CF_CHECK(ctx, cf_close(s), 0, "close");
    return sp_writeln(ctx, "CLOSED");
}

#define CLOSE_BYTES (256u * 1024u)

/* The guest sends more than the rings hold and closes at once, without
 * shutdown: the host must read every byte, then EOF. */
static int close_buffered_host(struct cf_ctx *ctx)
{
    char c;
    cf_sock_t s;

    if (sp_pair(ctx, SP_GUEST_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "host reads %u bytes sent just before the guest's close", CLOSE_BYTES);
    if (sp_recv_pattern(ctx, s, 53, CLOSE_BYTES, 65536) < 0)
        return -1;
    cf_step(ctx, "host reads after all the data (the guest closed)");
    CF_CHECK(ctx, cf_recv(s, &c, 1, 0), ctx->expect, "recv");
    cf_close(s);
    return 0;
}

static int close_buffered_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_GUEST_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest sends %u bytes", CLOSE_BYTES);
    if (sp_send_pattern(ctx, s, 53, 16384, CLOSE_BYTES / 16384) < 0)
        return -1;
    cf_step(ctx, "guest close right after sending");
    CF_CHECK(ctx, cf_close(s), 0, "close");
    return 0;
}

/* ---- calls that need a connection --------------------------------------------------------------- */

static int unconnected_shutdown_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_guest_socket(ctx, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest shutdown(SHUT_WR) on a socket never connected");
    CF_CHECK(ctx, cf_shutdown(s, CF_SHUT_WR), ctx->expect, "shutdown");
    cf_step(ctx, "guest shutdown(SHUT_RDWR) on a socket never connected");
    CF_CHECK(ctx, cf_shutdown(s, CF_SHUT_RDWR), ctx->expect, "shutdown");
    cf_close(s);
    return 0;
}

static int unconnected_send_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_guest_socket(ctx, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest send on a socket never connected");
    CF_CHECK(ctx, cf_send(s, "x", 1, 0), ctx->expect, "send");
    cf_close(s);
    return 0;
}

static int unconnected_recv_guest(struct cf_ctx *ctx)
{
    char c;
    cf_sock_t s;

    if (sp_guest_socket(ctx, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest recv on a socket never connected");
    CF_CHECK(ctx, cf_recv(s, &c, 1, CF_MSG_DONTWAIT), ctx->expect, "recv");
    cf_close(s);
    return 0;
}

/* ---- the table -------------------------------------------------------------------------------------- */

#define ALL(v) { v, v, v }

const struct cf_case cf_cases_shutdown[] = {
    {
        .id = "shutdown.shut-wr-peer-reads-data-then-eof",
        .area = "shutdown",
        .rule = "after the guest's SHUT_WR the host reads the buffered data, then EOF; the other way still works",
        .source = "docs/reference/hyperv-sockets.md 3.5 [S8], 4.1 [S7b], 6 (item 4)",
        .confidence = CF_SOURCED,
        .expect = ALL(CF_EOF),
        .needs = CF_NEED_ADMIN,
        .host = shut_wr_host,
        .guest = shut_wr_guest,
    },
    {
        .id = "shutdown.send-after-shut-wr",
        .area = "shutdown",
        .rule = "send after SHUT_WR fails: WSAESHUTDOWN on Windows, EPIPE on Linux; the peer reads only EOF",
        .source = "docs/reference/hyperv-sockets.md 4.1 [S7b], 6 (item 5, Windows), 3.5 [S8] (vsock core: "
                  "SEND_SHUTDOWN)",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = -ESHUTDOWN, [CF_COL_HVSOCK] = -EPIPE, [CF_COL_VIRTIO] = -EPIPE },
        .host = peer_reads_eof_host,
        .guest = send_after_shut_wr_guest,
    },
    {
        .id = "shutdown.repeat-shut-wr-ok",
        .area = "shutdown",
        .rule = "a second shutdown(SHUT_WR) succeeds and sends no second FIN",
        .source = "docs/reference/hyperv-sockets.md 4.1 [S7b], 3.5 [S8] (FIN only once, fin_sent)",
        .confidence = CF_SOURCED,
        .expect = ALL(0),
        .host = peer_reads_eof_host,
        .guest = repeat_shut_wr_guest,
    },
    {
        .id = "shutdown.host-shut-wr-guest-reads-data-then-eof",
        .area = "shutdown",
        .rule = "after the host's SHUT_WR the guest reads all 64 KiB in flight, then EOF, and can still reply",
        .source = "docs/reference/hyperv-sockets.md 3.5 [S8], 4.5 [S57][S58] (premature EOF seen by a Linux client), "
                  "6 (item 4)",
        .confidence = CF_SOURCED,
        .expect = ALL(CF_EOF),
        .host = host_shut_wr_host,
        .guest = host_shut_wr_guest,
    },
    {
        .id = "shutdown.shut-rd-recv",
        .area = "shutdown",
        .rule = "recv after SHUT_RD, with data sent to it: WSAESHUTDOWN on Windows, 0 on Linux; send still works",
        .source = "docs/reference/hyperv-sockets.md 4.1 [S7b], 6 (item 5, Windows), 3.5 [S8] (vsock core: "
                  "RCV_SHUTDOWN reads 0)",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = -ESHUTDOWN, [CF_COL_HVSOCK] = CF_EOF, [CF_COL_VIRTIO] = CF_EOF },
        .host = shut_rd_recv_host,
        .guest = shut_rd_recv_guest,
    },
    {
        /* virtio-vsock does send SHUTDOWN(RCV) to the peer, and what the
         * emulated host makes of it is hvsim's choice, not a rule any
         * reference gives: the rule is hv_sock's and Windows'. */
        .id = "shutdown.shut-rd-peer-writes-succeed",
        .area = "shutdown",
        .rule = "SHUT_RD sends nothing to the peer: the host sees no EOF and its writes still succeed",
        .source = "docs/reference/hyperv-sockets.md 3.5 [S8], 6 (item 4); docs/reference/design-notes.md 3",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = 0, [CF_COL_HVSOCK] = 0, [CF_COL_VIRTIO] = CF_NA },
        .host = shut_rd_peer_host,
        .guest = shut_rd_peer_guest,
    },
    {
        .id = "shutdown.shut-rdwr-local",
        .area = "shutdown",
        .rule = "after the guest's SHUT_RDWR: its recv gives WSAESHUTDOWN (Windows) or 0 (Linux), its send WSAESHUTDOWN "
                "or EPIPE; the host reads EOF and, where SHUT_RD stays local (Windows, hv_sock), may still send",
        .source = "docs/reference/vsock-virtio.md 10.2; docs/reference/hyperv-sockets.md 3.5 [S8], 4.1 [S7b]",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = -ESHUTDOWN, [CF_COL_HVSOCK] = CF_EOF, [CF_COL_VIRTIO] = CF_EOF },
        .host = shut_rdwr_host,
        .guest = shut_rdwr_guest,
    },
    {
        .id = "shutdown.both-ends-shut-wr",
        .area = "shutdown",
        .rule = "both ends send a byte and shut down sending: each reads the other's byte, then EOF, and its own "
                "later send fails (Windows WSAESHUTDOWN, Linux EPIPE)",
        .source = "docs/reference/vsock-virtio.md 10.2; docs/reference/hyperv-sockets.md 4.1 [S7b]",
        .confidence = CF_SOURCED,
        .expect = ALL(CF_EOF),
        .host = both_shut_wr_host,
        .guest = both_shut_wr_guest,
    },
    {
        .id = "shutdown.close-with-unread-data-peer-reads-eof",
        .area = "shutdown",
        .rule = "close with unread data: the peer reads the remaining data, then EOF (not ECONNRESET)",
        .source = "docs/reference/hyperv-sockets.md 3.5 [S8] (rescind: drain, then EOF), 4.5 [S60]; "
                  "docs/reference/design-notes.md 3",
        .confidence = CF_INFERRED,
        .expect = ALL(CF_EOF),
        .needs = CF_NEED_ADMIN,
        .host = close_unread_host,
        .guest = close_unread_guest,
    },
    {
        .id = "shutdown.close-delivers-buffered-data-then-eof",
        .area = "shutdown",
        .rule = "close right after sending 256 KiB: the peer reads every byte, and EOF only after them",
        .source = "docs/reference/hyperv-sockets.md 3.5 [S8], 4.5 [S60] (broken pipe instead of EOF, a WSL bug), 6 "
                  "(item 4)",
        .confidence = CF_INFERRED,
        .expect = ALL(CF_EOF),
        .needs = CF_NEED_ADMIN,
        .host = close_buffered_host,
        .guest = close_buffered_guest,
    },
    {
        .id = "shutdown.unconnected-shutdown-enotconn",
        .area = "shutdown",
        .rule = "shutdown on a socket never connected fails with ENOTCONN",
        .source = "docs/reference/hyperv-sockets.md 4.1 [S7b] (WSAENOTCONN after close); "
                  "docs/reference/platform-behaviour.md 5.1 (vsock core vsock_shutdown)",
        .confidence = CF_INFERRED,
        .expect = ALL(-ENOTCONN),
        .guest = unconnected_shutdown_guest,
    },
    {
        .id = "shutdown.unconnected-send-enotconn",
        .area = "shutdown",
        .rule = "send on a socket never connected fails with ENOTCONN",
        .source = "docs/reference/platform-behaviour.md 5.2 (Winsock send() and the vsock core's sendmsg: ENOTCONN)",
        .confidence = CF_INFERRED,
        .expect = ALL(-ENOTCONN),
        .guest = unconnected_send_guest,
    },
    {
        .id = "shutdown.unconnected-recv-enotconn",
        .area = "shutdown",
        .rule = "recv on a socket never connected fails with ENOTCONN",
        .source = "docs/reference/platform-behaviour.md 5.3 (Winsock recv() and the vsock core's recvmsg: ENOTCONN)",
        .confidence = CF_INFERRED,
        .expect = ALL(-ENOTCONN),
        .guest = unconnected_recv_guest,
    },
    { .id = NULL },
};
