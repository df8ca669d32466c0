/* SPDX-License-Identifier: MIT */
/*
 * cases_vsock.c: what a Linux guest's vsock transport and kernel version
 * decide (issue 13): SO_RCVLOWAT, SIOCOUTQ and SIOCINQ, SIGPIPE after
 * shutdown, and the loopback CID. hv_sock and virtio differ on the first
 * three; the kernel version decides the ioctls (6.11, 6.17) and SIGPIPE
 * (6.7), so those cases compute their answer from the guest's kernel
 * (cf_kernel_version) and their rule says which versions give what.
 * SO_ZEROCOPY and MSG_ZEROCOPY (6.7, virtio only), SO_LINGER and the shutdowns of both ends (through the loopback transport,
 * so a QEMU guest's kernel answers for both) follow section 10.
 * Sources: docs/reference/vsock-virtio.md sections 7 and 10.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../catalogue.h"
#include "case_util.h"
#include "stream_pair.h"

/* Kernel versions (major * 100 + minor) that brought a behaviour. */
#define K_SIGPIPE 607u
#define K_SIOCOUTQ 611u
#define K_SIOCINQ 617u

/* The host end of a pair that sends TEXT when the guest says GO, and waits
 * for DONE. */
static int pair_sender(struct cf_ctx *ctx, const char *first, const char *rest)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "GO") < 0)
        return -1;
    cf_step(ctx, "host sends \"%s\"", first);
    if (sp_send_all(ctx, s, first, strlen(first)) < 0)
        return -1;
    if (rest != NULL) {
        if (sp_quiet(ctx, s, 100, "a pause between the sends") < 0)
            return -1;
        cf_step(ctx, "host sends \"%s\" 100 ms later", rest);
        if (sp_send_all(ctx, s, rest, strlen(rest)) < 0)
            return -1;
    }
    if (sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

/* ---- SO_RCVLOWAT ---------------------------------------------------------------- */

static int rcvlowat_host(struct cf_ctx *ctx)
{
    return pair_sender(ctx, "a", "bc");
}

/* virtio: a read waits for the low-water mark, so the two sends come back as
 * one read of 3; hv_sock refuses the option and the bytes arrive all the same. */
static int rcvlowat_guest(struct cf_ctx *ctx)
{
    char buf[8];
    cf_sock_t s;
    int rc;
    long n;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest setsockopt(SO_RCVLOWAT, 3)");
    rc = cf_set_rcvlowat(s, 3);
    CF_CHECK(ctx, rc, ctx->expect, "setsockopt(SO_RCVLOWAT)");
    if (sp_writeln(ctx, "GO") < 0)
        return -1;
    if (rc == 0) {
        cf_step(ctx, "guest recv with the mark at 3 (\"a\", then \"bc\" 100 ms later)");
        n = cf_recv(s, buf, sizeof(buf), 0);
        if (n != 3 || memcmp(buf, "abc", 3) != 0) {
            cf_fail(ctx, "expected one read of \"abc\", got %ld bytes", n);
            return -1;
        }
    } else if (sp_recv_text(ctx, s, "abc") < 0) {
        return -1;
    }
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* ---- SIOCOUTQ, SIOCINQ ------------------------------------------------------------ */

static int outq_host(struct cf_ctx *ctx)
{
    char c;
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "host reads the guest's byte");
    if (sp_recv_exact(ctx, s, &c, 1) < 0 || sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

/* What SIOCOUTQ gives on this guest: before 6.11 no vsock ioctl at all;
 * then only the virtio transports answer. */
static int outq_want(const struct cf_ctx *ctx, unsigned k)
{
    if (k != 0 && k < K_SIOCOUTQ)
        return -EOPNOTSUPP;
    return ctx->expect;
}

static int outq_guest(struct cf_ctx *ctx)
{
    unsigned k = cf_kernel_version();
    int want = outq_want(ctx, k), n = -1, rc;
    uint64_t until;
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_send_all(ctx, s, "q", 1) < 0)
        return -1;
    cf_step(ctx, "guest ioctl(SIOCOUTQ) after sending 1 byte (kernel %u.%u)", k / 100, k % 100);
    until = cf_now_ms() + 1000;
    /* The transport hands the byte on at once; allow it a moment, as the
     * kernel's own test does. */
    while ((rc = cf_vsock_queue(s, 1, &n)) == 0 && n != 0 && cf_now_ms() < until)
        (void)cf_poll(s, 0, 10); /* a 10 ms pause */
    CF_CHECK(ctx, rc, want, "ioctl(SIOCOUTQ)");
    if (rc == 0 && n != 0) {
        cf_fail(ctx, "expected 0 bytes unsent, got %d", n);
        return -1;
    }
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

static int inq_host(struct cf_ctx *ctx)
{
    return pair_sender(ctx, "xyz", NULL);
}

static int inq_want(unsigned k)
{
    if (k != 0 && k < K_SIOCOUTQ)
        return -EOPNOTSUPP;
    if (k != 0 && k < K_SIOCINQ)
        return -ENOTTY;
    return 0;
}

static int inq_guest(struct cf_ctx *ctx)
{
    unsigned k = cf_kernel_version();
    int want = inq_want(k), n = -1, rc;
    uint64_t until;
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_writeln(ctx, "GO") < 0)
        return -1;
    if (sp_readable(ctx, s, 1000, "3 bytes sent") < 0)
        return -1;
    cf_step(ctx, "guest ioctl(SIOCINQ) with \"xyz\" arrived (kernel %u.%u)", k / 100, k % 100);
    until = cf_now_ms() + 1000;
    while ((rc = cf_vsock_queue(s, 0, &n)) == 0 && n < 3 && cf_now_ms() < until)
        (void)cf_poll(s, CF_POLLIN, 10);
    CF_CHECK(ctx, rc, want, "ioctl(SIOCINQ)");
    if (rc == 0 && n != 3) {
        cf_fail(ctx, "expected 3 bytes readable, got %d", n);
        return -1;
    }
    if (sp_recv_text(ctx, s, "xyz") < 0)
        return -1;
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* ---- SIGPIPE after SHUT_WR ---------------------------------------------------------- */

static int waiting_host(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

#ifdef SIGPIPE
static volatile sig_atomic_t pipes;

static void count_pipe(int sig)
{
    (void)sig;
    pipes++;
}
#endif

static int sigpipe_guest(struct cf_ctx *ctx)
{
#ifdef SIGPIPE
    unsigned k = cf_kernel_version();
    int signalled = k == 0 || k >= K_SIGPIPE;
    cf_sock_t s;
    long n;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    pipes = 0;
    signal(SIGPIPE, count_pipe);
    cf_step(ctx, "guest shutdown(SHUT_WR), then send with MSG_NOSIGNAL");
    n = cf_shutdown(s, CF_SHUT_WR) < 0 ? -1 : cf_send(s, "x", 1, CF_MSG_NOSIGNAL);
    if (n == -1 || pipes != 0) {
        signal(SIGPIPE, SIG_IGN);
        cf_fail(ctx, "expected EPIPE and no signal, got %ld and %d SIGPIPE", n, (int)pipes);
        return -1;
    }
    cf_step(ctx, "guest send without MSG_NOSIGNAL (kernel %u.%u: %s)", k / 100, k % 100,
            signalled ? "SIGPIPE" : "no signal");
    n = cf_send(s, "x", 1, 0);
    signal(SIGPIPE, SIG_IGN);
    CF_CHECK(ctx, n, ctx->expect, "send after SHUT_WR");
    if (pipes != (signalled ? 1 : 0)) {
        cf_fail(ctx, "expected %d SIGPIPE, got %d", signalled ? 1 : 0, (int)pipes);
        return -1;
    }
    cf_close(s);
    return sp_writeln(ctx, "DONE");
#else
    snprintf(ctx->fail, sizeof(ctx->fail), "no SIGPIPE on this platform");
    return CF_NA;
#endif
}

/* ---- VMADDR_CID_LOCAL ------------------------------------------------------------------ */

/* One-sided: the guest listens on CID_ANY and dials CID 1 on the same port. */
static int cid_local_guest(struct cf_ctx *ctx)
{
    uint32_t port = sp_port(ctx, 0), cid = 0, p = 0;
    cf_sock_t l, s, a;
    int rc;

    cf_step(ctx, "guest listens on (CID_ANY, %u)", port);
    if (cf_socket(CF_AF_VSOCK, 0, &l) < 0 || cf_bind_vsock(l, CF_VMADDR_CID_ANY, port) < 0 || cf_listen(l, 2) < 0) {
        cf_fail(ctx, "expected a vsock listener on port %u", port);
        return -1;
    }
    if (cf_socket(CF_AF_VSOCK, 0, &s) < 0) {
        cf_fail(ctx, "expected a vsock socket");
        return -1;
    }
    cf_step(ctx, "guest connects to (VMADDR_CID_LOCAL, %u)", port);
    rc = cf_connect_vsock(s, 1u, port);
    CF_CHECK(ctx, rc, ctx->expect, "connect to CID 1");
    if (rc == 0) {
        cf_step(ctx, "guest accepts the loopback connection");
        if (cf_accept(l, &a) < 0 || cf_name_vsock(s, 1, &cid, &p) < 0 || cid != 1u || p != port) {
            cf_fail(ctx, "expected an accepted connection whose peer is (1, %u), got (%u, %u)", port, cid, p);
            return -1;
        }
        cf_close(a);
    }
    cf_close(s);
    cf_close(l);
    return 0;
}

/* ---- sibling VMs ----------------------------------------------------------------------- */

/* One-sided: the guest dials another VM's CID (3, or 4 when its own is 3),
 * a VM it shares no sibling group with: hv_sock refuses the CID itself;
 * virtio sends the request, and the host's back-end drops it. */
static int sibling_no_group_guest(struct cf_ctx *ctx)
{
    uint32_t me = 0, other;
    struct cfc_dial d;

    (void)cf_local_cid(&me);
    other = me == 3u ? 4u : 3u;
    if (cfc_dial_prep(ctx, CF_AF_VSOCK, 0, cfc_timeout_for(ctx), &d) < 0)
        return -1;
    cf_step(ctx, "guest (CID %u) connects to another VM's CID %u, port %u", me, other, ctx->port_base);
    cfc_dial_vsock(&d, other, ctx->port_base);
    if (cfc_dial_is(ctx, &d) < 0)
        return -1;
    cf_close(d.s);
    return 0;
}

/* ---- hv_sock's rings ------------------------------------------------------------- */

static int window_host(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

/* hv_sock: buffers of 6 pages and a window of about one ring while the
 * host reads nothing; virtio: the peer's credit, 256 KiB and more. */
static int window_guest(struct cf_ctx *ctx)
{
    char chunk[1024];
    int snd = 0, rcv = 0;
    long total = 0, r;
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest getsockopt(SO_SNDBUF, SO_RCVBUF)");
    CF_CHECK(ctx, cf_get_sock_buf(s, 0, &snd), 0, "getsockopt(SO_SNDBUF)");
    CF_CHECK(ctx, cf_get_sock_buf(s, 1, &rcv), 0, "getsockopt(SO_RCVBUF)");
    memset(chunk, 'w', sizeof(chunk));
    cf_step(ctx, "guest sends 1 KiB at a time without waiting until EAGAIN, the host reading nothing");
    for (;;) {
        r = cf_send(s, chunk, sizeof(chunk), CF_MSG_DONTWAIT);
        if (r == -EAGAIN)
            break;
        CF_CHECK(ctx, r, 0, "send");
        total += r;
        if (total > 64L * 1024 * 1024) {
            cf_fail(ctx, "no EAGAIN after 64 MiB");
            return -1;
        }
    }
    if (ctx->col == CF_COL_HVSOCK && (snd != 24576 || rcv != 24576 || total < 8 * 1024 || total > 32 * 1024)) {
        cf_fail(ctx, "expected 6-page buffers (24576) and a window of 8-32 KiB, got SO_SNDBUF %d, SO_RCVBUF %d, %ld bytes",
                snd, rcv, total);
        return -1;
    }
    if (ctx->col == CF_COL_VIRTIO && total < 64 * 1024) {
        cf_fail(ctx, "expected a window of 64 KiB or more (the peer's credit), got %ld bytes", total);
        return -1;
    }
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* ---- shutdown on both ends, through the loopback transport ------------------------------- */

/* Both ends of a CID 1 connection are the guest's own sockets, so every
 * result below is its kernel's (in QEMU) or the library's (the simulator),
 * with no host in between. Index 0 is "no shutdown". */
static const int shut_how[4] = { -1, CF_SHUT_RD, CF_SHUT_WR, CF_SHUT_RDWR };
static const char *const shut_name[4] = { "nothing", "SHUT_RD", "SHUT_WR", "SHUT_RDWR" };
#define SHUT_HAS_RD(i) ((i) == 1 || (i) == 3)
#define SHUT_HAS_WR(i) ((i) == 2 || (i) == 3)

/* One end's send after the shutdowns: EPIPE when it shut its sending side
 * or the peer shut its receiving side (virtio_transport_shutdown told it:
 * peer_shutdown & RCV_SHUTDOWN in vsock_connectible_sendmsg), else sent. */
static int loop_send(struct cf_ctx *ctx, cf_sock_t s, const char *who, int me, int peer, char c)
{
    long n = cf_send(s, &c, 1, CF_MSG_NOSIGNAL | CF_MSG_DONTWAIT);

    cf_step(ctx, "%s sends after %s here and %s at the peer", who, shut_name[me], shut_name[peer]);
    if (SHUT_HAS_WR(me) || SHUT_HAS_RD(peer)) {
        CF_CHECK(ctx, n, -EPIPE, "send");
        return 0;
    }
    if (n != 1) {
        cf_fail(ctx, "%s: expected the byte sent, got %ld", ctx->where, n);
        return -1;
    }
    return 0;
}

/* One end's receive: 0 after its own SHUT_RD (vsock_connectible_recvmsg)
 * or the peer's SHUT_WR, else the peer's byte. */
static int loop_recv(struct cf_ctx *ctx, cf_sock_t s, const char *who, int me, int peer, char want)
{
    char c = 0;
    long n;

    cf_step(ctx, "%s receives after %s here and %s at the peer", who, shut_name[me], shut_name[peer]);
    (void)cf_poll(s, CF_POLLIN, 1000); /* data, EOF or the shutdown: readable either way */
    n = cf_recv(s, &c, 1, CF_MSG_DONTWAIT);
    if (SHUT_HAS_RD(me) || SHUT_HAS_WR(peer)) {
        CF_CHECK(ctx, n, CF_EOF, "recv");
        return 0;
    }
    if (n != 1 || c != want) {
        cf_fail(ctx, "%s: expected '%c', got %ld bytes ('%c')", ctx->where, want, n, n == 1 ? c : '?');
        return -1;
    }
    return 0;
}

static int loop_shut(struct cf_ctx *ctx, cf_sock_t s, const char *who, int how)
{
    if (how == 0)
        return 0;
    cf_step(ctx, "%s shutdown(%s)", who, shut_name[how]);
    CF_CHECK(ctx, cf_shutdown(s, shut_how[how]), 0, "shutdown");
    return 0;
}

/* One connection, end a shut with i and end b with j. The end that shuts
 * both ways goes last: vsock_shutdown clears SOCK_DONE, so an end that the
 * peer's full shutdown had already closed (RST) would then read ENOTCONN,
 * which only the order of the packets decides. For the same reason, with
 * both ends at SHUT_RDWR only the sends of the second are checked. */
static int loop_pair(struct cf_ctx *ctx, cf_sock_t l, uint32_t port, int i, int j)
{
    cf_sock_t a, b;
    int rc = -1, a_last = i == 3 && j != 3;

    if (cf_socket(CF_AF_VSOCK, 0, &a) < 0 || cf_connect_vsock(a, 1u, port) < 0 || cf_accept(l, &b) < 0) {
        cf_fail(ctx, "expected a loopback connection to (1, %u)", port);
        return -1;
    }
    if (a_last ? loop_shut(ctx, b, "accepted end", j) < 0 || loop_shut(ctx, a, "connecting end", i) < 0
               : loop_shut(ctx, a, "connecting end", i) < 0 || loop_shut(ctx, b, "accepted end", j) < 0)
        goto out;
    (void)cf_poll(l, CF_POLLIN, 100); /* 100 ms for the SHUTDOWN packets to arrive */
    if (loop_send(ctx, a, "connecting end", i, j, 'a') < 0 || loop_send(ctx, b, "accepted end", j, i, 'b') < 0)
        goto out;
    if (loop_recv(ctx, a, "connecting end", i, j, 'b') < 0)
        goto out;
    if (!(i == 3 && j == 3) && loop_recv(ctx, b, "accepted end", j, i, 'a') < 0)
        goto out;
    rc = 0;
out:
    cf_close(a);
    cf_close(b);
    return rc;
}

/* One-sided: the guest listens on CID_ANY and dials CID 1 once per pair of
 * shutdowns (none, SHUT_RD, SHUT_WR, SHUT_RDWR at either end: 16). */
static int loop_shutdown_guest(struct cf_ctx *ctx)
{
    uint32_t port = sp_port(ctx, 0);
    cf_sock_t l, s;
    int i, j, rc;

    cf_step(ctx, "guest listens on (CID_ANY, %u)", port);
    if (cf_socket(CF_AF_VSOCK, 0, &l) < 0 || cf_bind_vsock(l, CF_VMADDR_CID_ANY, port) < 0 || cf_listen(l, 4) < 0) {
        cf_fail(ctx, "expected a vsock listener on port %u", port);
        return -1;
    }
    if (cf_socket(CF_AF_VSOCK, 0, &s) < 0) {
        cf_fail(ctx, "expected a vsock socket");
        return -1;
    }
    cf_step(ctx, "guest connects to (VMADDR_CID_LOCAL, %u)", port);
    rc = cf_connect_vsock(s, 1u, port);
    CF_CHECK(ctx, rc, ctx->expect, "connect to CID 1");
    if (rc == 0) {
        cf_sock_t a;

        if (cf_accept(l, &a) == 0)
            cf_close(a);
    }
    cf_close(s);
    if (rc != 0) { /* refused as expected: no pair to shut down */
        cf_close(l);
        return 0;
    }
    for (i = 0; rc == 0 && i < 4; i++)
        for (j = 0; rc == 0 && j < 4; j++)
            rc = loop_pair(ctx, l, port, i, j);
    cf_close(l);
    return rc;
}

/* ---- SO_LINGER ----------------------------------------------------------------------------- */

#define LINGER_JUNK 4000u

/* The host reads the guest's last words, then sends bytes the guest will
 * leave unread, and reads after the guest's lingering close. */
static int linger_host(struct cf_ctx *ctx)
{
    static char junk[LINGER_JUNK];
    int round;
    cf_sock_t s;
    char c;

    memset(junk, 'j', sizeof(junk));
    for (round = 0; round < 2; round++) {
        if (sp_pair(ctx, SP_EITHER_DIALS, (uint32_t)round, &s) < 0)
            return -1;
        cf_step(ctx, "host reads the guest's last words (round %d)", round + 1);
        if (sp_recv_text(ctx, s, "last words") < 0)
            return -1;
        cf_step(ctx, "host sends %u bytes the guest leaves unread", LINGER_JUNK);
        if (sp_send_all(ctx, s, junk, sizeof(junk)) < 0 || sp_writeln(ctx, "SENT") < 0 || sp_expectln(ctx, "CLOSED") < 0)
            return -1;
        cf_step(ctx, "host reads after the guest's close with SO_LINGER (round %d)", round + 1);
        if (sp_readable(ctx, s, 1000, "the guest closed") < 0)
            return -1;
        CF_CHECK(ctx, cf_recv(s, &c, 1, 0), ctx->expect, "recv");
        cf_close(s);
    }
    return 0;
}

/* Round 1: SO_LINGER {1, 0}, where TCP would reset; round 2: {1, 2}, with
 * the host having read everything, so no kernel has anything to wait for
 * (6.1/6.12 wait for the peer's RST, which comes at once; later kernels for
 * unsent bytes, none). */
static int linger_guest(struct cf_ctx *ctx)
{
    static const int secs[2] = { 0, 2 };
    int round, on = 0, got = -1;
    uint64_t t0, took;
    cf_sock_t s;

    for (round = 0; round < 2; round++) {
        if (sp_pair(ctx, SP_EITHER_DIALS, (uint32_t)round, &s) < 0)
            return -1;
        if (sp_send_all(ctx, s, "last words", 10) < 0 || sp_expectln(ctx, "SENT") < 0)
            return -1;
        cf_step(ctx, "guest waits for the host's bytes to arrive");
        if (sp_readable(ctx, s, 1000, "the host sent data") < 0)
            return -1;
        cf_step(ctx, "guest setsockopt(SO_LINGER, {1, %d}) and reads it back", secs[round]);
        CF_CHECK(ctx, cf_set_linger(s, 1, secs[round]), 0, "setsockopt(SO_LINGER)");
        CF_CHECK(ctx, cf_get_linger(s, &on, &got), 0, "getsockopt(SO_LINGER)");
        if (on != 1 || got != secs[round]) {
            cf_fail(ctx, "%s: expected {1, %d}, got {%d, %d}", ctx->where, secs[round], on, got);
            return -1;
        }
        cf_step(ctx, "guest close with unread data and SO_LINGER {1, %d}", secs[round]);
        t0 = cf_now_ms();
        CF_CHECK(ctx, cf_close(s), 0, "close");
        took = cf_now_ms() - t0;
        if (took > 1000) {
            cf_fail(ctx, "%s: expected close to return at once (the peer has read everything), took %llu ms",
                    ctx->where, (unsigned long long)took);
            return -1;
        }
        if (sp_writeln(ctx, "CLOSED") < 0)
            return -1;
    }
    return 0;
}

/* ---- SO_ZEROCOPY and MSG_ZEROCOPY ------------------------------------------------------------ */

#define K_ZEROCOPY 607u
#define ZC_CHUNK 4096u
#define ZC_TAIL 100u

static int zerocopy_host(struct cf_ctx *ctx)
{
    static char buf[2 * ZC_CHUNK + ZC_TAIL];
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "SENT") < 0)
        return -1;
    cf_step(ctx, "host reads the guest's two MSG_ZEROCOPY sends and its plain one");
    if (sp_recv_exact(ctx, s, buf, sizeof(buf)) < 0 || sp_writeln(ctx, "READ") < 0 || sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

/* The completions of ids 0 and 1, in one range or two in order (a real
 * transport completes each when the device has used it; the kernel merges
 * adjacent ones still waiting), then nothing for the plain send. */
static int zerocopy_completions(struct cf_ctx *ctx, cf_sock_t s)
{
    uint32_t lo = 0, hi = 0, want = 0;
    uint64_t until = cf_now_ms() + 1000;
    int copied = 0, rc;

    while (want < 2) {
        cf_step(ctx, "guest recvmsg(MSG_ERRQUEUE) for the completion of id %u", want);
        rc = cf_zerocopy_completion(s, &lo, &hi, &copied);
        if (rc == -EAGAIN && cf_now_ms() < until) {
            (void)cf_poll(s, CF_POLLERR, 10);
            continue;
        }
        CF_CHECK(ctx, rc, 0, "recvmsg(MSG_ERRQUEUE)");
        if (lo != want || hi < lo || hi > 1) {
            cf_fail(ctx, "%s: expected a range starting at %u and ending at most at 1, got [%u, %u]", ctx->where, want,
                    lo, hi);
            return -1;
        }
        want = hi + 1;
    }
    cf_step(ctx, "guest recvmsg(MSG_ERRQUEUE) after the plain send");
    CF_CHECK(ctx, cf_zerocopy_completion(s, &lo, &hi, &copied), -EAGAIN, "recvmsg(MSG_ERRQUEUE)");
    return 0;
}

static int zerocopy_guest(struct cf_ctx *ctx)
{
    static char buf[ZC_CHUNK];
    unsigned k = cf_kernel_version();
    int want = k != 0 && k < K_ZEROCOPY ? -EOPNOTSUPP : ctx->expect, rc, on = -1, i;
    uint32_t lo, hi;
    int copied;
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest setsockopt(SO_ZEROCOPY, 1) on its connected socket (kernel %u.%u)", k / 100, k % 100);
    rc = cf_set_zerocopy(s, 1);
    CF_CHECK(ctx, rc, want, "setsockopt(SO_ZEROCOPY)");
    cf_step(ctx, "guest getsockopt(SO_ZEROCOPY)");
    CF_CHECK(ctx, cf_get_zerocopy(s, &on), 0, "getsockopt(SO_ZEROCOPY)");
    if (on != (rc == 0)) {
        cf_fail(ctx, "%s: expected %d, got %d", ctx->where, rc == 0, on);
        return -1;
    }
    memset(buf, 'z', sizeof(buf));
    for (i = 0; i < 2; i++) {
        cf_step(ctx, "guest send %d of %u bytes with MSG_ZEROCOPY", i + 1, ZC_CHUNK);
        if (cf_send_zerocopy(s, buf, ZC_CHUNK) != (long)ZC_CHUNK) {
            cf_fail(ctx, "%s: expected all %u bytes sent", ctx->where, ZC_CHUNK);
            return -1;
        }
    }
    cf_step(ctx, "guest sends %u bytes without the flag", ZC_TAIL);
    if (sp_send_all(ctx, s, buf, ZC_TAIL) < 0 || sp_writeln(ctx, "SENT") < 0 || sp_expectln(ctx, "READ") < 0)
        return -1;
    if (rc == 0) {
        if (zerocopy_completions(ctx, s) < 0)
            return -1;
    } else {
        /* No option, no completion: the error queue is empty from 6.7 on;
         * before, vsock ignores the flag and the call is an empty read. */
        cf_step(ctx, "guest recvmsg(MSG_ERRQUEUE) without SO_ZEROCOPY");
        CF_CHECK(ctx, cf_zerocopy_completion(s, &lo, &hi, &copied), -EAGAIN, "recvmsg(MSG_ERRQUEUE)");
    }
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

const struct cf_case cf_cases_vsock[] = {
    {
        .id = "vsock.rcvlowat",
        .area = "data",
        .rule = "SO_RCVLOWAT: hv_sock refuses it (EOPNOTSUPP); virtio takes it and a read waits for the mark",
        .source = "docs/reference/vsock-virtio.md 7.2 [S3]",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = -EOPNOTSUPP, [CF_COL_VIRTIO] = 0 },
        .host = rcvlowat_host,
        .guest = rcvlowat_guest,
    },
    {
        .id = "vsock.siocoutq",
        .area = "data",
        .rule = "SIOCOUTQ: EOPNOTSUPP before 6.11; from 6.11 virtio reports the unsent bytes (0 once handed on), "
                "hv_sock EOPNOTSUPP",
        .source = "docs/reference/vsock-virtio.md 7.3 [S51]",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = -EOPNOTSUPP, [CF_COL_VIRTIO] = 0 },
        .host = outq_host,
        .guest = outq_guest,
    },
    {
        .id = "vsock.siocinq",
        .area = "data",
        .rule = "SIOCINQ: EOPNOTSUPP before 6.11, ENOTTY on 6.11 to 6.16, the readable bytes from 6.17 on either "
                "transport",
        .source = "docs/reference/vsock-virtio.md 7.3 [S51][S52]",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = 0, [CF_COL_VIRTIO] = 0 },
        .host = inq_host,
        .guest = inq_guest,
    },
    {
        .id = "vsock.sigpipe-after-shut-wr",
        .area = "shutdown",
        .rule = "Send after SHUT_WR: EPIPE; from 6.7 also SIGPIPE unless MSG_NOSIGNAL, on either transport",
        .source = "docs/reference/vsock-virtio.md 7.4 [S50]",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = -EPIPE, [CF_COL_VIRTIO] = -EPIPE },
        .host = waiting_host,
        .guest = sigpipe_guest,
    },
    {
        .id = "vsock.hv-sock-ring-window",
        .area = "data",
        .rule = "hv_sock sockets start with 6-page buffers (SO_SNDBUF = SO_RCVBUF = 24576) and a writer whose reader "
                "is idle stops after about one ring; virtio's window is the peer's credit (256 KiB)",
        .source = "docs/reference/hyperv-sockets.md 3.4 [S8] (virtio: vsock-virtio.md 1.5)",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = 0, [CF_COL_VIRTIO] = 0 },
        .needs = CF_NEED_ADMIN,
        .host = window_host,
        .guest = window_guest,
    },
    {
        .id = "vsock.cid-local-loopback",
        .area = "addressing",
        .rule = "VMADDR_CID_LOCAL: a virtio guest reaches its own listener through the loopback transport; "
                "hvsim's hv_sock guest reaches CID 2 only (ENETUNREACH)",
        .source = "docs/reference/vsock-virtio.md 7.5 [S53], 1.8",
        .confidence = CF_INFERRED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = -ENETUNREACH, [CF_COL_VIRTIO] = 0 },
        .host = NULL,
        .guest = cid_local_guest,
    },
    {
        .id = "vsock.sibling-no-shared-group",
        .area = "connecting",
        .rule = "a guest's connect to another VM's CID with no sibling group in common: hv_sock refuses it at once "
                "(ENETUNREACH, stream_allow); virtio sends it and the back-end drops it (kernel vhost-vsock always, "
                "vhost-device-vsock without a shared group), so the connect times out (ETIMEDOUT)",
        .source = "docs/reference/vsock-virtio.md 7.8 [S20][S60][S61], 1.8",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = -ENETUNREACH, [CF_COL_VIRTIO] = -ETIMEDOUT },
        .host = NULL,
        .guest = sibling_no_group_guest,
    },
    {
        .id = "vsock.shutdown-both-ends-loopback",
        .area = "shutdown",
        .rule = "Every pair of shutdowns (none, SHUT_RD, SHUT_WR, SHUT_RDWR) at the two ends of a CID 1 connection: "
                "a send fails with EPIPE after its own SHUT_WR or the peer's SHUT_RD, a recv returns 0 after its own "
                "SHUT_RD or the peer's SHUT_WR, else the byte passes (virtio tells the peer of SHUT_RD)",
        .source = "docs/reference/vsock-virtio.md 10.2, 7.5 [S3][S53]",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = -ENETUNREACH, [CF_COL_VIRTIO] = 0 },
        .host = NULL,
        .guest = loop_shutdown_guest,
    },
    {
        .id = "vsock.linger-close-peer-reads-eof",
        .area = "shutdown",
        .rule = "SO_LINGER {1, 0} and {1, 2} are kept and read back; a close with unread data returns at once when "
                "the peer has read everything, and the peer reads EOF, never ECONNRESET (no abortive close on vsock)",
        .source = "docs/reference/vsock-virtio.md 10.1 [S3][S9][S58]",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = CF_EOF, [CF_COL_VIRTIO] = CF_EOF },
        .host = linger_host,
        .guest = linger_guest,
    },
    {
        .id = "vsock.msg-zerocopy",
        .area = "data",
        .rule = "SO_ZEROCOPY: EOPNOTSUPP before 6.7 and on hv_sock; from 6.7 virtio takes it, each MSG_ZEROCOPY send "
                "gets the socket's next id (from 0) and a completion on the error queue (SOL_VSOCK, VSOCK_RECVERR, "
                "SO_EE_ORIGIN_ZEROCOPY, ids in ee_info..ee_data, adjacent ones merged); a plain send gets none",
        .source = "docs/reference/vsock-virtio.md 10.3 [S59]",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = -EOPNOTSUPP, [CF_COL_VIRTIO] = 0 },
        .host = zerocopy_host,
        .guest = zerocopy_guest,
    },
    { .id = NULL },
};
