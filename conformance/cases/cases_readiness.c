/* SPDX-License-Identifier: MIT */
/*
 * cases_readiness.c: the readiness area of the conformance catalogue: what
 * poll (and a registration kept from before the connect, as event loops do)
 * reports for listeners, streams and non-blocking connects that succeed, are
 * refused or time out. These are the outcomes an emulation built on other
 * sockets gets wrong first (docs/reference/design-notes.md 1): a connect reported complete
 * before the peer accepted, a failure with no error event, a registration
 * that stops seeing the socket once it is connected.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../catalogue.h"
#include "case_util.h"
#include "stream_pair.h"

/* issue 13: a virtio VM refuses with RST; see cases_vsock.c and the README. */
#define VIRTIO_RST_DIVERGENCE                                                                          \
    "the simulator's virtio VM refuses as its transport does (RST: ECONNRESET at once, README "         \
    "\"Transports and kernel versions\"); the QEMU column's guest sits behind the emulated Hyper-V "     \
    "host, whose refusal_profile=hyperv withholds it"

/* A connect under way says EINPROGRESS (the Winsock backend turns
 * connect()'s WSAEWOULDBLOCK into it, backend_winsock.c). The cases about
 * what follows the connect check it here; the case
 * readiness.nonblocking-connect-einprogress makes it its outcome. */
static int check_in_progress(struct cf_ctx *ctx, long rc)
{
    CF_CHECK(ctx, rc, -EINPROGRESS, "connect");
    return 0;
}

/* ---- listeners and streams --------------------------------------------------------- */

static int listener_guest(struct cf_ctx *ctx)
{
    cf_sock_t l, s;
    char e[40];
    int ev;

    if (sp_guest_listen(ctx, 0, 4, 0, &l) < 0)
        return -1;
    cf_step(ctx, "guest polls its listener before any connection");
    ev = cf_poll(l, CF_POLLIN, 0);
    if (ev != 0) {
        cf_fail(ctx, "expected no events, got %s", sp_events(ev, e, sizeof(e)));
        return -1;
    }
    if (sp_writeln(ctx, "LISTENING") < 0 || sp_expectln(ctx, "CONNECTED") < 0)
        return -1;
    cf_step(ctx, "guest polls its listener with a connection pending");
    ev = cf_poll(l, CF_POLLIN, 1000);
    if (ev < 0 || !(ev & CF_POLLIN)) {
        cf_fail(ctx, "expected IN within 1 s, got %s", sp_events(ev, e, sizeof(e)));
        return -1;
    }
    cf_step(ctx, "guest accepts the pending connection");
    CF_CHECK(ctx, cf_accept(l, &s), ctx->expect, "accept");
    cf_close(s);
    cf_close(l);
    return sp_writeln(ctx, "ACCEPTED");
}

static int listener_host(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_expectln(ctx, "LISTENING") < 0)
        return -1;
    cf_step(ctx, "host socket and connect to the guest listener");
    CF_CHECK(ctx, cf_socket(CF_AF_HYPERV, 0, &s), 0, "socket");
    CF_CHECK(ctx, sp_host_connect(s, ctx, 0), 0, "connect");
    if (sp_writeln(ctx, "CONNECTED") < 0 || sp_expectln(ctx, "ACCEPTED") < 0)
        return -1;
    cf_close(s);
    return 0;
}

/* The host sends one byte (data) or shuts down its sending side (eof) once
 * the guest has seen the stream quiet. */
static int stream_host(struct cf_ctx *ctx, int eof)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "QUIET") < 0)
        return -1;
    if (eof) {
        cf_step(ctx, "host shutdown(SHUT_WR)");
        CF_CHECK(ctx, cf_shutdown(s, CF_SHUT_WR), 0, "shutdown");
    } else {
        cf_step(ctx, "host sends one byte");
        if (sp_send_all(ctx, s, "x", 1) < 0)
            return -1;
    }
    if (sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int stream_guest(struct cf_ctx *ctx)
{
    char c, e[40];
    cf_sock_t s;
    int ev;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "guest polls a connected stream with nothing sent");
    ev = cf_poll(s, CF_POLLIN, 0);
    if (ev != 0) {
        cf_fail(ctx, "expected no events, got %s", sp_events(ev, e, sizeof(e)));
        return -1;
    }
    if (sp_writeln(ctx, "QUIET") < 0)
        return -1;
    cf_step(ctx, "guest polls for what the host sent");
    ev = cf_poll(s, CF_POLLIN, 1000);
    if (ev < 0 || !(ev & (CF_POLLIN | CF_POLLHUP))) {
        cf_fail(ctx, "expected IN within 1 s, got %s", sp_events(ev, e, sizeof(e)));
        return -1;
    }
    cf_step(ctx, "guest reads once readable");
    CF_CHECK(ctx, cf_recv(s, &c, 1, CF_MSG_DONTWAIT), ctx->expect, "recv");
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

static int data_host(struct cf_ctx *ctx)
{
    return stream_host(ctx, 0);
}

static int eof_host(struct cf_ctx *ctx)
{
    return stream_host(ctx, 1);
}

/* ---- non-blocking connects ---------------------------------------------------------- */

/* The host listens and accepts one connection, then sends "x" for the guest
 * to see on the same registration. */
static int accept_and_send_host(struct cf_ctx *ctx)
{
    cf_sock_t l, s;

    if (sp_host_listen(ctx, 0, 4, 0, &l) < 0 || sp_writeln(ctx, "LISTENING") < 0)
        return -1;
    cf_step(ctx, "host accepts the guest's non-blocking connect");
    CF_CHECK(ctx, cf_accept(l, &s), 0, "accept");
    if (sp_expectln(ctx, "CONNECTED") < 0)
        return -1;
    cf_step(ctx, "host sends the first byte");
    if (sp_send_all(ctx, s, "x", 1) < 0 || sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    cf_close(l);
    return 0;
}

static int einprogress_guest(struct cf_ctx *ctx)
{
    char c, e[40];
    cf_sock_t s;
    int ev;

    if (sp_expectln(ctx, "LISTENING") < 0 || sp_guest_socket(ctx, 1, &s) < 0)
        return -1;
    cf_step(ctx, "guest non-blocking connect to a listening host");
    CF_CHECK(ctx, sp_guest_connect(s, ctx, 0), ctx->expect, "connect");
    cf_step(ctx, "guest polls for the connect to complete");
    ev = cf_poll(s, CF_POLLOUT, 1000);
    if (ev < 0 || !(ev & CF_POLLOUT) || (ev & CF_POLLERR)) {
        cf_fail(ctx, "expected OUT without ERR within 1 s, got %s", sp_events(ev, e, sizeof(e)));
        return -1;
    }
    cf_step(ctx, "guest SO_ERROR after the connect completed");
    CF_CHECK(ctx, cf_so_error(s), 0, "SO_ERROR");
    if (sp_writeln(ctx, "CONNECTED") < 0)
        return -1;
    cf_step(ctx, "guest reads the host's byte");
    if (sp_readable(ctx, s, 1000, "the host sent a byte") < 0)
        return -1;
    CF_CHECK(ctx, cf_recv(s, &c, 1, 0), 0, "recv");
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* One registration, made before the connect, sees the completion (OUT) and
 * later the first byte (IN): an emulation that swaps the descriptor under
 * the program loses the second. */
static int watch_guest(struct cf_ctx *ctx)
{
    char c, e[40];
    intptr_t w;
    cf_sock_t s;
    uint64_t end;
    int ev = 0;

    if (sp_expectln(ctx, "LISTENING") < 0 || sp_guest_socket(ctx, 1, &s) < 0)
        return -1;
    cf_step(ctx, "guest registers IN|OUT before connecting");
    CF_CHECK(ctx, cf_watch_create(s, CF_POLLIN | CF_POLLOUT, &w), 0, "cf_watch_create");
    cf_step(ctx, "guest non-blocking connect");
    if (check_in_progress(ctx, sp_guest_connect(s, ctx, 0)) < 0)
        return -1;
    cf_step(ctx, "guest waits on the registration for the connect to complete");
    ev = cf_watch_wait(w, 1000);
    if (ev < 0 || !(ev & CF_POLLOUT) || (ev & (CF_POLLERR | CF_POLLIN))) {
        cf_fail(ctx, "expected OUT only within 1 s, got %s", sp_events(ev, e, sizeof(e)));
        return -1;
    }
    CF_CHECK(ctx, cf_so_error(s), 0, "SO_ERROR");
    if (sp_writeln(ctx, "CONNECTED") < 0)
        return -1;
    /* OUT stays set on a writable stream: wait until IN joins it. */
    cf_step(ctx, "guest waits on the same registration for the first byte");
    end = cf_now_ms() + 1000;
    do {
        ev = cf_watch_wait(w, 100);
    } while (ev >= 0 && !(ev & CF_POLLIN) && cf_now_ms() < end);
    if (ev < 0 || !(ev & CF_POLLIN)) {
        cf_fail(ctx, "expected IN within 1 s, got %s", sp_events(ev, e, sizeof(e)));
        return -1;
    }
    CF_CHECK(ctx, cf_recv(s, &c, 1, 0), ctx->expect, "recv");
    cf_watch_close(w);
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* Wait for a non-blocking connect to fail and check how and when. A timeout
 * must show nothing before it is due; a refusal must come at once (within a
 * tenth of the configured timeout). */
static int await_failure(struct cf_ctx *ctx, cf_sock_t s, uint64_t t0, uint32_t timeout_ms, int need_out)
{
    uint64_t elapsed;
    char e[40];
    int ev;

    if (ctx->expect == -ETIMEDOUT) {
        cf_step(ctx, "poll during the first half of the %u ms timeout", (unsigned)timeout_ms);
        ev = cf_poll(s, CF_POLLIN | CF_POLLOUT, (int)timeout_ms / 2);
        if (ev != 0) {
            cf_fail(ctx, "expected no events before the timeout, got %s", sp_events(ev, e, sizeof(e)));
            return -1;
        }
        cf_step(ctx, "SO_ERROR while the connect is pending");
        CF_CHECK(ctx, cf_so_error(s), 0, "SO_ERROR");
    }
    cf_step(ctx, "poll for the connect's failure");
    ev = cf_poll(s, CF_POLLIN | CF_POLLOUT, (int)timeout_ms + 1000);
    elapsed = cf_now_ms() - t0;
    /* Linux marks a failed connect writable and in error (vsock_poll); the
     * error is what every target must show. */
    if (ev < 0 || !(ev & CF_POLLERR) || (need_out && !(ev & CF_POLLOUT))) {
        cf_fail(ctx, "expected %s, got %s after %llu ms", need_out ? "OUT and ERR" : "ERR",
                sp_events(ev, e, sizeof(e)), (unsigned long long)elapsed);
        return -1;
    }
    cf_step(ctx, "SO_ERROR after the failure (%llu ms)", (unsigned long long)elapsed);
    CF_CHECK(ctx, cf_so_error(s), ctx->expect, "SO_ERROR");
    if (ctx->expect == -ETIMEDOUT && elapsed + timeout_ms / 10 < timeout_ms) {
        cf_fail(ctx, "expected the timeout after %u ms, got it after %llu ms", (unsigned)timeout_ms,
                (unsigned long long)elapsed);
        return -1;
    }
    if (ctx->expect != -ETIMEDOUT && elapsed > timeout_ms / 10) {
        cf_fail(ctx, "expected the refusal at once (under %u ms), got it after %llu ms",
                (unsigned)timeout_ms / 10, (unsigned long long)elapsed);
        return -1;
    }
    return 0;
}

/* The host registers the service and listens on nothing. */
static int no_listener_host(struct cf_ctx *ctx)
{
    if (sp_host_register(ctx, 0) < 0 || sp_writeln(ctx, "READY") < 0)
        return -1;
    return sp_expectln(ctx, "DONE");
}

/* A guest's non-blocking connect to a registered host service nobody listens
 * on: a Windows guest is refused at once, a Linux guest waits for the
 * timeout (reference 3.3, 4.4). */
static int guest_fails_guest(struct cf_ctx *ctx)
{
    uint32_t timeout = ctx->short_timeout_ms;
    uint64_t t0;
    cf_sock_t s;

    if (sp_expectln(ctx, "READY") < 0 || sp_guest_socket(ctx, 1, &s) < 0)
        return -1;
    cf_step(ctx, "guest sets a %u ms connect timeout", (unsigned)timeout);
    CF_CHECK(ctx, cf_set_connect_timeout(s, timeout), 0, "set connect timeout");
    cf_step(ctx, "guest non-blocking connect to a service nobody listens on");
    t0 = cf_now_ms();
    if (check_in_progress(ctx, sp_guest_connect(s, ctx, 0)) < 0)
        return -1;
    if (await_failure(ctx, s, t0, timeout, cfc_is_vsock(ctx)) < 0)
        return -1;
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* The host's non-blocking connect to a guest port nobody listens on. */
static int host_fails_host(struct cf_ctx *ctx)
{
    uint32_t timeout = ctx->short_timeout_ms;
    uint64_t t0;
    cf_sock_t s;

    cf_step(ctx, "host non-blocking socket with a %u ms connect timeout", (unsigned)timeout);
    CF_CHECK(ctx, cf_socket(CF_AF_HYPERV, 1, &s), 0, "socket");
    CF_CHECK(ctx, cf_set_connect_timeout(s, timeout), 0, "set connect timeout");
    cf_step(ctx, "host non-blocking connect to a guest port nobody listens on");
    t0 = cf_now_ms();
    if (check_in_progress(ctx, sp_host_connect(s, ctx, 0)) < 0)
        return -1;
    if (await_failure(ctx, s, t0, timeout, 0) < 0)
        return -1;
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

static int host_fails_guest(struct cf_ctx *ctx)
{
    return sp_expectln(ctx, "DONE");
}

/* ---- the table ------------------------------------------------------------------------- */

#define ALL(v) { v, v, v }

const struct cf_case cf_cases_readiness[] = {
    {
        .id = "readiness.listener-readable-on-pending-connection",
        .area = "readiness",
        .rule = "a listener polls readable when a connection is pending, and not before",
        .source = "docs/reference/design-notes.md 1, 6 (a listener fd: EPOLLIN on a pending connection)",
        .confidence = CF_INFERRED,
        .expect = ALL(0),
        .host = listener_host,
        .guest = listener_guest,
    },
    {
        .id = "readiness.stream-readable-on-data",
        .area = "readiness",
        .rule = "a connected stream polls readable when data arrives, and not before",
        .source = "docs/reference/design-notes.md 1",
        .confidence = CF_INFERRED,
        .expect = ALL(0),
        .host = data_host,
        .guest = stream_guest,
    },
    {
        .id = "readiness.stream-readable-on-eof",
        .area = "readiness",
        .rule = "a connected stream polls readable when the peer shuts down sending, and reads EOF",
        .source = "docs/reference/hyperv-sockets.md 3.5 [S8] (FIN sets peer_shutdown); "
                  "docs/reference/design-notes.md 1",
        .confidence = CF_SOURCED,
        .expect = ALL(CF_EOF),
        .host = eof_host,
        .guest = stream_guest,
    },
    {
        .id = "readiness.nonblocking-connect-einprogress",
        .area = "readiness",
        .rule = "a non-blocking connect reports in progress, then writable with SO_ERROR 0",
        .source = "docs/reference/hyperv-sockets.md 3.3 [S18] (EINPROGRESS); docs/reference/design-notes.md 1",
        .confidence = CF_SOURCED,
        /* Winsock's WSAEWOULDBLOCK from connect() is EINPROGRESS in every
         * backend (backend_winsock.c), as in libhvsim. */
        .expect = ALL(-EINPROGRESS),
        .needs = CF_NEED_ADMIN,
        .host = accept_and_send_host,
        .guest = einprogress_guest,
    },
    {
        .id = "readiness.watch-before-connect",
        .area = "readiness",
        .rule = "a registration made before a non-blocking connect sees its completion (OUT) and the first "
                "byte (IN)",
        .source = "docs/reference/design-notes.md 1 (a socket's fd keeps its identity from socket() to close())",
        .confidence = CF_INFERRED,
        .expect = ALL(0),
        .needs = CF_NEED_ADMIN,
        .host = accept_and_send_host,
        .guest = watch_guest,
    },
    {
        .id = "readiness.nonblocking-connect-refused",
        .area = "readiness",
        .rule = "a refused non-blocking connect polls in error at once, SO_ERROR = ECONNREFUSED",
        .source = "docs/reference/hyperv-sockets.md 3.3, 4.2 [S36], 4.4 (a Windows guest is refused); "
                  "docs/reference/design-notes.md 1",
        .confidence = CF_SOURCED,
        /* A Linux guest is never refused (reference 3.3): see
         * readiness.nonblocking-connect-timeout. */
        .expect = { [CF_COL_WINDOWS] = -ECONNREFUSED, [CF_COL_HVSOCK] = CF_NA, [CF_COL_VIRTIO] = CF_NA },
        .needs = CF_NEED_ADMIN,
        .host = no_listener_host,
        .guest = guest_fails_guest,
    },
    {
        /* virtio: the emulated host answers as the Hyper-V profile does (no
         * answer); a KVM host would reset it (ECONNRESET). */
        .id = "readiness.nonblocking-connect-timeout",
        .area = "readiness",
        .rule = "a Linux guest's non-blocking connect nobody answers: no events until the timeout, then ERR "
                "and SO_ERROR = ETIMEDOUT",
        .source = "docs/reference/hyperv-sockets.md 3.3 [S15][S16][S18], 4.4 (INFERRED)",
        .confidence = CF_INFERRED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = -ETIMEDOUT, [CF_COL_VIRTIO] = -ETIMEDOUT },
        .diverge = { [CF_COL_VIRTIO] = "sim: " VIRTIO_RST_DIVERGENCE },
        .needs = CF_NEED_ADMIN,
        .host = no_listener_host,
        .guest = guest_fails_guest,
    },
    {
        /* virtio: the guest kernel resets the request
         * (virtio_transport_reset_no_sock); the emulated host withholds that
         * RST under its default Hyper-V profile, as a Windows host ignores a
         * guest that does not answer, so the host times out. A KVM host (the
         * KVM profile) would report ECONNRESET at once. */
        .id = "readiness.host-nonblocking-connect-timeout",
        .area = "readiness",
        .rule = "the host's non-blocking connect to a guest port with no listener: no events until the "
                "timeout, then ERR and SO_ERROR = ETIMEDOUT",
        .source = "docs/reference/hyperv-sockets.md 3.2 [S8] (the guest ignores the offer), 4.4 [S35][S47][S51], "
                  "7 (item 1: Windows guests too)",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = -ETIMEDOUT, [CF_COL_HVSOCK] = -ETIMEDOUT, [CF_COL_VIRTIO] = -ETIMEDOUT },
        .diverge = { [CF_COL_VIRTIO] = "sim: " VIRTIO_RST_DIVERGENCE },
        .host = host_fails_host,
        .guest = host_fails_guest,
    },
    { .id = NULL },
};
