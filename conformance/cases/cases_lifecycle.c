/* SPDX-License-Identifier: MIT */
/*
 * cases_lifecycle.c: the life-cycle area of the conformance catalogue: what a
 * partition's pause, reset, power-off and start do to its connections and to
 * new ones. Every check is made from the host, the side that is not paused or
 * reset: a paused guest runs nothing on real Hyper-V, so the guest side only
 * sets up its end and waits (hvsim does not freeze guests unless
 * pause_freezes_guests is set, which is why the guest agent can still answer
 * on the control channel). Each case puts the VM back the way it found it,
 * even when a check fails; the framework restarts it before every case too.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../catalogue.h"
#include "case_util.h"
#include "stream_pair.h"

/* Put the VM back after op; a failed case keeps its first message. */
static int restore(struct cf_ctx *ctx, int rc, const char *op)
{
    int r = cf_admin_vm_op(&ctx->vm_id, op);

    if (r < 0 && rc == 0) {
        char e[32];

        cf_fail(ctx, "expected to %s the VM afterwards, got %s", op, cf_expect_name(r, e, sizeof(e)));
        return -1;
    }
    return rc;
}

static int vm_op(struct cf_ctx *ctx, const char *op)
{
    cf_step(ctx, "host: VM %s", op);
    CF_CHECK(ctx, cf_admin_vm_op(&ctx->vm_id, op), 0, "cf_admin_vm_op");
    return 0;
}

/* After op, the host's blocked read ends with what the column expects (EOF
 * for a broken connection) within 1 s. */
static int read_after(struct cf_ctx *ctx, cf_sock_t s, const char *op)
{
    uint64_t t0;
    char c;

    t0 = cf_now_ms();
    if (vm_op(ctx, op) < 0)
        return -1;
    cf_step(ctx, "host waits up to 1 s for its read to end after the %s", op);
    if (sp_readable(ctx, s, 1000, "the connection broke") < 0)
        return -1;
    cf_step(ctx, "host reads after the %s (%llu ms)", op, (unsigned long long)(cf_now_ms() - t0));
    CF_CHECK(ctx, cf_recv(s, &c, 1, 0), ctx->expect, "recv");
    return 0;
}

/* The guest's part of every case that breaks a connection: make it, then
 * wait until the host is done (on real Hyper-V it may be frozen meanwhile). */
static int hold_guest(struct cf_ctx *ctx, enum sp_dir dir)
{
    cf_sock_t s;

    if (sp_pair(ctx, dir, 0, &s) < 0 || sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

/* ---- pause -------------------------------------------------------------------------- */

static int pause_breaks_host(struct cf_ctx *ctx)
{
    cf_sock_t s;
    int rc;

    if (sp_pair(ctx, SP_GUEST_DIALS, 0, &s) < 0)
        return -1;
    rc = read_after(ctx, s, "pause");
    rc = restore(ctx, rc, "resume");
    cf_close(s);
    return sp_writeln(ctx, "DONE") < 0 ? -1 : rc;
}

static int pause_breaks_guest(struct cf_ctx *ctx)
{
    return hold_guest(ctx, SP_GUEST_DIALS);
}

/* With HVSOCKET_CONNECTED_SUSPEND on one end, nothing reaches the host while
 * the VM is paused, and data flows both ways after the resume. */
static int survive_pause_host(struct cf_ctx *ctx, enum sp_suspend who)
{
    cf_sock_t s;
    int rc;

    if (sp_pair_ex(ctx, SP_EITHER_DIALS, 0, who, &s) < 0)
        return -1;
    rc = vm_op(ctx, "pause");
    if (rc == 0) {
        cf_step(ctx, "host watches the connection during the pause");
        rc = sp_quiet(ctx, s, 200, "HVSOCKET_CONNECTED_SUSPEND keeps the connection");
    }
    rc = restore(ctx, rc, "resume");
    if (rc < 0)
        return -1;
    cf_step(ctx, "host sends after the resume");
    CF_CHECK(ctx, cf_send(s, "after", 5, 0), ctx->expect, "send");
    if (sp_writeln(ctx, "SENT") < 0)
        return -1;
    cf_step(ctx, "host reads the guest's answer after the resume");
    if (sp_recv_text(ctx, s, "back") < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int survive_pause_guest(struct cf_ctx *ctx, enum sp_suspend who)
{
    cf_sock_t s;

    if (sp_pair_ex(ctx, SP_EITHER_DIALS, 0, who, &s) < 0 || sp_expectln(ctx, "SENT") < 0)
        return -1;
    cf_step(ctx, "guest reads what the host sent after the resume");
    if (sp_recv_text(ctx, s, "after") < 0)
        return -1;
    cf_step(ctx, "guest answers after the resume");
    if (sp_send_all(ctx, s, "back", 4) < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int suspend_host_end_host(struct cf_ctx *ctx)
{
    return survive_pause_host(ctx, SP_SUSPEND_HOST);
}

static int suspend_host_end_guest(struct cf_ctx *ctx)
{
    return survive_pause_guest(ctx, SP_SUSPEND_HOST);
}

static int suspend_guest_end_host(struct cf_ctx *ctx)
{
    return survive_pause_host(ctx, SP_SUSPEND_GUEST);
}

static int suspend_guest_end_guest(struct cf_ctx *ctx)
{
    return survive_pause_guest(ctx, SP_SUSPEND_GUEST);
}

/* A send on a connection the pause broke: Winsock reports the reset. */
static int broken_send_host(struct cf_ctx *ctx)
{
    cf_sock_t s;
    char c;
    int rc;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    rc = vm_op(ctx, "pause");
    if (rc == 0) {
        cf_step(ctx, "host waits for the pause to break the connection");
        rc = sp_readable(ctx, s, 1000, "the connection broke");
    }
    if (rc == 0) {
        cf_step(ctx, "host reads the broken connection");
        rc = cf_recv(s, &c, 1, 0) == 0 ? 0 : -1;
        if (rc < 0)
            cf_fail(ctx, "expected EOF on the broken connection, got data or an error");
    }
    if (rc == 0) {
        long n;

        cf_step(ctx, "host sends on the broken connection");
        n = cf_send(s, "x", 1, 0);
        rc = cf_check_at(ctx, __FILE__, __LINE__, n, ctx->expect, "send");
    }
    rc = restore(ctx, rc, "resume");
    cf_close(s);
    return sp_writeln(ctx, "DONE") < 0 ? -1 : rc;
}

static int hold_host_dials_guest(struct cf_ctx *ctx)
{
    return hold_guest(ctx, SP_EITHER_DIALS);
}

/* A paused guest runs nothing that could open the offered channel: the
 * host's connect times out although the guest listens, and succeeds after
 * the resume. */
static int paused_connect_host(struct cf_ctx *ctx)
{
    uint32_t timeout = ctx->short_timeout_ms;
    uint64_t t0, elapsed;
    cf_sock_t s, s2;
    int rc;

    if (sp_expectln(ctx, "LISTENING") < 0 || vm_op(ctx, "pause") < 0)
        return restore(ctx, -1, "resume");
    cf_step(ctx, "host connects to the paused VM's listener (timeout %u ms)", (unsigned)timeout);
    if (cf_socket(CF_AF_HYPERV, 0, &s) < 0 || cf_set_connect_timeout(s, timeout) < 0) {
        cf_fail(ctx, "expected a socket with a connect timeout, got an error");
        return restore(ctx, -1, "resume");
    }
    t0 = cf_now_ms();
    rc = cf_check_at(ctx, __FILE__, __LINE__, sp_host_connect(s, ctx, 0), ctx->expect, "connect");
    elapsed = cf_now_ms() - t0;
    if (rc == 0 && ctx->expect == -ETIMEDOUT && elapsed + timeout / 10 < timeout) {
        cf_fail(ctx, "expected the timeout after %u ms, got it after %llu ms", (unsigned)timeout,
                (unsigned long long)elapsed);
        rc = -1;
    }
    cf_close(s);
    rc = restore(ctx, rc, "resume");
    if (rc < 0)
        return -1;
    cf_step(ctx, "host connects to the same listener after the resume");
    CF_CHECK(ctx, cf_socket(CF_AF_HYPERV, 0, &s2), 0, "socket");
    CF_CHECK(ctx, sp_host_connect(s2, ctx, 0), 0, "connect");
    if (sp_expectln(ctx, "ACCEPTED") < 0)
        return -1;
    cf_close(s2);
    return 0;
}

/* The guest listens through the pause and accepts the one connection that
 * came after it. */
static int listen_through_guest(struct cf_ctx *ctx)
{
    cf_sock_t l, s;

    if (sp_guest_listen(ctx, 0, 4, 0, &l) < 0 || sp_writeln(ctx, "LISTENING") < 0)
        return -1;
    cf_step(ctx, "guest accepts the connection made after the resume");
    CF_CHECK(ctx, cf_accept(l, &s), 0, "accept");
    cf_close(s);
    cf_close(l);
    return sp_writeln(ctx, "ACCEPTED");
}

/* ---- reset, power-off, start ----------------------------------------------------------- */

static int reset_breaks_host(struct cf_ctx *ctx)
{
    cf_sock_t s;
    int rc;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    rc = read_after(ctx, s, "reset");
    cf_close(s);
    return sp_writeln(ctx, "DONE") < 0 ? -1 : rc;
}

static int off_breaks_host(struct cf_ctx *ctx)
{
    cf_sock_t s;
    int rc;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    rc = read_after(ctx, s, "off");
    rc = restore(ctx, rc, "start");
    cf_close(s);
    return sp_writeln(ctx, "DONE") < 0 ? -1 : rc;
}

/* A connect to a VM that is off fails at once with the configured error
 * (connect_to_off_vm), although the guest's listener was there before. */
static int off_connect_host(struct cf_ctx *ctx)
{
    uint32_t timeout = ctx->short_timeout_ms;
    uint64_t t0, elapsed;
    cf_sock_t s;
    int rc;

    if (sp_expectln(ctx, "LISTENING") < 0 || vm_op(ctx, "off") < 0)
        return restore(ctx, -1, "start");
    cf_step(ctx, "host connects to the VM that is off (timeout %u ms)", (unsigned)timeout);
    if (cf_socket(CF_AF_HYPERV, 0, &s) < 0 || cf_set_connect_timeout(s, timeout) < 0) {
        cf_fail(ctx, "expected a socket with a connect timeout, got an error");
        return restore(ctx, -1, "start");
    }
    t0 = cf_now_ms();
    rc = cf_check_at(ctx, __FILE__, __LINE__, sp_host_connect(s, ctx, 0), ctx->expect, "connect");
    elapsed = cf_now_ms() - t0;
    if (rc == 0 && ctx->expect != -ETIMEDOUT && elapsed > timeout / 10) {
        cf_fail(ctx, "expected the error at once (under %u ms), got it after %llu ms", (unsigned)timeout / 10,
                (unsigned long long)elapsed);
        rc = -1;
    }
    cf_close(s);
    rc = restore(ctx, rc, "start");
    return sp_writeln(ctx, "DONE") < 0 ? -1 : rc;
}

static int listen_until_done_guest(struct cf_ctx *ctx)
{
    cf_sock_t l;

    if (sp_guest_listen(ctx, 0, 4, 0, &l) < 0 || sp_writeln(ctx, "LISTENING") < 0 || sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(l);
    return 0;
}

/* Off, then start: the VM takes connections again. The guest listens only
 * after the start (hvsim keeps the guest agent running through power-off;
 * on a real VM it would be a new boot). */
static int start_host(struct cf_ctx *ctx)
{
    cf_sock_t s;
    int rc;

    rc = vm_op(ctx, "off");
    rc = restore(ctx, rc, "start");
    if (rc < 0 || sp_writeln(ctx, "STARTED") < 0)
        return -1;
    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "host sends on the new connection");
    CF_CHECK(ctx, cf_send(s, "x", 1, 0), ctx->expect, "send");
    if (sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int start_guest(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_expectln(ctx, "STARTED") < 0 || sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest reads on the connection made after the start");
    if (sp_recv_text(ctx, s, "x") < 0)
        return -1;
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* ---- the table ------------------------------------------------------------------------------ */

#define ALL(v) { v, v, v }
#define SRC_PAUSE "docs/reference/hyperv-sockets.md 4.6 [S1][S2c], 6 (item 5)"
#define SRC_RESET                                                                                                     \
    "docs/reference/hyperv-sockets.md 4.6 (UNCONFIRMED; INFERRED: reset rescinds every channel), 3.5 [S8]"

const struct cf_case cf_cases_lifecycle[] = {
    {
        .id = "lifecycle.pause-breaks-connections",
        .area = "lifecycle",
        .rule = "pausing the VM without HVSOCKET_CONNECTED_SUSPEND breaks its connections: the host reads EOF "
                "within 1 s",
        .source = SRC_PAUSE " (the option exists because pause drops connections)",
        .confidence = CF_INFERRED,
        .expect = ALL(CF_EOF),
        .needs = CF_NEED_ADMIN,
        .host = pause_breaks_host,
        .guest = pause_breaks_guest,
    },
    {
        .id = "lifecycle.connected-suspend-host-end",
        .area = "lifecycle",
        .rule = "with HVSOCKET_CONNECTED_SUSPEND on the host's socket the connection survives a pause and "
                "carries data both ways after the resume",
        .source = SRC_PAUSE,
        .confidence = CF_SOURCED,
        .expect = ALL(0),
        .needs = CF_NEED_ADMIN,
        .host = suspend_host_end_host,
        .guest = suspend_host_end_guest,
    },
    {
        /* AF_VSOCK has no such option: only a Windows guest can set it. */
        .id = "lifecycle.connected-suspend-guest-end",
        .area = "lifecycle",
        .rule = "with HVSOCKET_CONNECTED_SUSPEND on the guest's socket only, the connection survives a pause",
        .source = SRC_PAUSE " (either end: INFERRED, one connection is one channel)",
        .confidence = CF_INFERRED,
        .expect = { [CF_COL_WINDOWS] = 0, [CF_COL_HVSOCK] = CF_NA, [CF_COL_VIRTIO] = CF_NA },
        .needs = CF_NEED_ADMIN,
        .host = suspend_guest_end_host,
        .guest = suspend_guest_end_guest,
    },
    {
        .id = "lifecycle.broken-send-econnreset",
        .area = "lifecycle",
        .rule = "a send on a Windows socket whose connection a pause broke fails with WSAECONNRESET",
        .source = "docs/reference/hyperv-sockets.md 4.6 (the error on an open socket is UNCONFIRMED), 3.5 (no RST: a "
                  "rescind)",
        .confidence = CF_UNCONFIRMED,
        .expect = ALL(-ECONNRESET),
        .needs = CF_NEED_ADMIN,
        .host = broken_send_host,
        .guest = hold_host_dials_guest,
    },
    {
        .id = "lifecycle.connect-to-paused-vm-times-out",
        .area = "lifecycle",
        .rule = "a connect to a paused VM gets no answer (ETIMEDOUT after the timeout) although the guest "
                "listens; after the resume it connects",
        .source = "docs/reference/hyperv-sockets.md 3.2 [S8][S12] (the guest must open the offered channel), 4.6",
        .confidence = CF_INFERRED,
        .expect = ALL(-ETIMEDOUT),
        .needs = CF_NEED_ADMIN,
        .host = paused_connect_host,
        .guest = listen_through_guest,
    },
    {
        .id = "lifecycle.reset-breaks-connections",
        .area = "lifecycle",
        .rule = "resetting the VM breaks its connections: the host reads EOF within 1 s",
        .source = SRC_RESET,
        .confidence = CF_UNCONFIRMED,
        .expect = ALL(CF_EOF),
        .needs = CF_NEED_ADMIN,
        .host = reset_breaks_host,
        .guest = hold_host_dials_guest,
    },
    {
        .id = "lifecycle.off-breaks-connections",
        .area = "lifecycle",
        .rule = "powering the VM off breaks its connections: the host reads EOF within 1 s",
        .source = SRC_RESET,
        .confidence = CF_UNCONFIRMED,
        .expect = ALL(CF_EOF),
        .needs = CF_NEED_ADMIN,
        .host = off_breaks_host,
        .guest = hold_host_dials_guest,
    },
    {
        .id = "lifecycle.connect-to-off-vm",
        .area = "lifecycle",
        .rule = "a connect to a VM that is off fails at once with connect_to_off_vm (ENETUNREACH)",
        .source = "docs/reference/hyperv-sockets.md 7 (item 2), 4.4 [S53][S54]",
        .confidence = CF_INFERRED,
        .expect = ALL(-ENETUNREACH),
        .needs = CF_NEED_ADMIN,
        .host = off_connect_host,
        .guest = listen_until_done_guest,
    },
    {
        .id = "lifecycle.start-after-off-accepts-connections",
        .area = "lifecycle",
        .rule = "after power-off and start the VM takes new connections again",
        .source = "docs/reference/hyperv-sockets.md 4.6, 4.4 [S53] (a VM still booting may refuse)",
        .confidence = CF_INFERRED,
        .expect = ALL(0),
        .needs = CF_NEED_ADMIN,
        .host = start_host,
        .guest = start_guest,
    },
    { .id = NULL },
};
