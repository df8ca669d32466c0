/* SPDX-License-Identifier: MIT */
/*
 * cases_data.c: the data area of the conformance catalogue. Bytes arrive
 * whole and in order whatever the message size (across the 4088-byte guest
 * and 16 KiB host packet limits of hv_sock), in both directions, in full
 * duplex, in bulk, over 100 connections at once; MSG_PEEK per personality;
 * MSG_WAITALL. Every transfer is checked twice: the receiver compares each
 * byte with the sender's pattern (to say where it went wrong) and both sides
 * compare checksums over the control channel.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../catalogue.h"
#include "case_util.h"
#include "stream_pair.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* ---- integrity across message sizes ----------------------------------------------- */

/* One direction: the sender writes count messages of msg bytes; the receiver
 * reads them with a buffer of its own size and reports what it got. */
static int one_way(struct cf_ctx *ctx, cf_sock_t s, int sender, uint64_t seed, size_t msg, size_t count)
{
    struct sp_pattern p;
    struct sp_tally t;
    int rc;

    sp_tally_init(&t);
    if (sp_pattern_init(ctx, &p, seed, msg < 256 * KIB ? 256 * KIB : msg) < 0)
        return -1;
    if (ctx->side == sender) {
        cf_step(ctx, "%s sends %zu messages of %zu bytes", sp_side_name(sender), count, msg);
        rc = sp_send_msgs(ctx, s, &p, 0, msg, count, &t);
        if (rc == 0) {
            cf_step(ctx, "%s compares checksums of %zu x %zu bytes", sp_side_name(sender), count, msg);
            rc = sp_compare_tally(ctx, &t);
        }
    } else {
        cf_step(ctx, "%s receives %zu messages of %zu bytes", sp_side_name(!sender), count, msg);
        rc = sp_recv_bytes(ctx, s, &p, 0, (uint64_t)msg * count, 256 * KIB, &t);
        /* Report even a short stream, so the sender fails with the numbers
         * instead of waiting for them. */
        if (sp_report_tally(ctx, &t) < 0)
            rc = -1;
    }
    sp_pattern_free(&p);
    return rc;
}

static int integrity(struct cf_ctx *ctx, size_t msg, size_t count)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    if (one_way(ctx, s, SP_HOST, 1, msg, count) < 0 || one_way(ctx, s, SP_GUEST, 2, msg, count) < 0)
        return -1;
    cf_close(s);
    return 0;
}

/* Counts keep every case well under a second on the simulator. */
static int integrity_1(struct cf_ctx *ctx)
{
    return integrity(ctx, 1, 2000);
}

static int integrity_7(struct cf_ctx *ctx)
{
    return integrity(ctx, 7, 2000);
}

static int integrity_4088(struct cf_ctx *ctx)
{
    return integrity(ctx, 4088, 256);
}

static int integrity_4096(struct cf_ctx *ctx)
{
    return integrity(ctx, 4096, 256);
}

static int integrity_16k(struct cf_ctx *ctx)
{
    return integrity(ctx, 16 * KIB, 64);
}

static int integrity_64k(struct cf_ctx *ctx)
{
    return integrity(ctx, 64 * KIB, 32);
}

static int integrity_1m(struct cf_ctx *ctx)
{
    return integrity(ctx, MIB, 4);
}

/* ---- full duplex --------------------------------------------------------------------- */

#define DUPLEX_BYTES (8u * MIB)
#define DUPLEX_CHUNK (64u * KIB)
/* Small sends: a backend without MSG_DONTWAIT (Winsock) checks readiness and
 * then makes a blocking call, which must find room for all of it. */
#define DUPLEX_SEND (16u * KIB)

/* Both sides send and receive at once from one thread, never blocking: if
 * neither direction can move for a second, the stream has deadlocked (each
 * side's send waiting for a reader that is itself waiting to send). */
static int duplex(struct cf_ctx *ctx)
{
    struct sp_pattern out, in;
    struct sp_tally sent, got;
    uint64_t my_seed = ctx->side == SP_HOST ? 11 : 12, peer_seed = ctx->side == SP_HOST ? 12 : 11;
    uint8_t *buf = NULL;
    cf_sock_t s;
    int rc = -1;

    out.buf = in.buf = NULL;
    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    sp_tally_init(&sent);
    sp_tally_init(&got);
    buf = malloc(DUPLEX_CHUNK);
    if (buf == NULL || sp_pattern_init(ctx, &out, my_seed, DUPLEX_CHUNK) < 0 ||
        sp_pattern_init(ctx, &in, peer_seed, DUPLEX_CHUNK) < 0)
        goto out;
    while (sent.bytes < DUPLEX_BYTES || got.bytes < DUPLEX_BYTES) {
        int want = (sent.bytes < DUPLEX_BYTES ? CF_POLLOUT : 0) | (got.bytes < DUPLEX_BYTES ? CF_POLLIN : 0);
        int ev;

        cf_step(ctx, "%s duplex: sent %llu, received %llu of %u", sp_side_name(ctx->side),
                (unsigned long long)sent.bytes, (unsigned long long)got.bytes, DUPLEX_BYTES);
        ev = cf_poll(s, want, 1000);
        if (ev <= 0) {
            cf_fail(ctx, "expected progress within 1 s, got %s (a deadlock)", ev == 0 ? "none" : "an error");
            goto out;
        }
        if ((ev & (CF_POLLIN | CF_POLLHUP | CF_POLLERR)) && got.bytes < DUPLEX_BYTES) {
            uint64_t left = DUPLEX_BYTES - got.bytes;
            long n = cf_recv(s, buf, left < DUPLEX_CHUNK ? (size_t)left : DUPLEX_CHUNK, CF_MSG_DONTWAIT);

            if (n > 0) {
                sp_tally_recv(&got, &in, 0, buf, (size_t)n);
            } else if (n != -EAGAIN) {
                char e[32];

                cf_fail(ctx, "expected data, got %s", n == 0 ? "EOF" : cf_expect_name((int)n, e, sizeof(e)));
                goto out;
            }
        }
        if ((ev & CF_POLLOUT) && sent.bytes < DUPLEX_BYTES) {
            uint64_t left = DUPLEX_BYTES - sent.bytes;
            const uint8_t *b = sp_pattern_at(&out, sent.bytes);
            long n = cf_send(s, b, left < DUPLEX_SEND ? (size_t)left : DUPLEX_SEND, CF_MSG_DONTWAIT);

            if (n > 0) {
                sent.sum = sp_sum(sent.sum, b, (size_t)n);
                sent.bytes += (uint64_t)n;
            } else if (n != -EAGAIN) {
                char e[32];

                cf_fail(ctx, "expected to send, got %s", cf_expect_name((int)n, e, sizeof(e)));
                goto out;
            }
        }
    }
    cf_step(ctx, "%s exchanges duplex checksums", sp_side_name(ctx->side));
    /* Both report first, then both compare: the lines cross without waiting. */
    if (sp_report_tally(ctx, &got) < 0 || sp_compare_tally(ctx, &sent) < 0)
        goto out;
    rc = 0;
out:
    free(buf);
    sp_pattern_free(&out);
    sp_pattern_free(&in);
    cf_close(s);
    return rc;
}

/* ---- a large transfer ------------------------------------------------------------------ */

#define LARGE_BYTES (32u * MIB)

/* Guest to host: the direction hv_sock cuts into the smallest packets. */
static int large_host(struct cf_ctx *ctx)
{
    struct sp_pattern p;
    struct sp_tally t;
    cf_sock_t s;
    int rc;

    if (sp_pair(ctx, SP_GUEST_DIALS, 0, &s) < 0 || sp_pattern_init(ctx, &p, 21, 256 * KIB) < 0)
        return -1;
    sp_tally_init(&t);
    cf_step(ctx, "host receives 32 MiB");
    rc = sp_recv_bytes(ctx, s, &p, 0, LARGE_BYTES, 256 * KIB, &t);
    if (sp_report_tally(ctx, &t) < 0)
        rc = -1;
    sp_pattern_free(&p);
    cf_close(s);
    return rc;
}

static int large_guest(struct cf_ctx *ctx)
{
    struct sp_pattern p;
    struct sp_tally t;
    cf_sock_t s;
    int rc;

    if (sp_pair(ctx, SP_GUEST_DIALS, 0, &s) < 0 || sp_pattern_init(ctx, &p, 21, 256 * KIB) < 0)
        return -1;
    sp_tally_init(&t);
    cf_step(ctx, "guest sends 32 MiB");
    rc = sp_send_msgs(ctx, s, &p, 0, 256 * KIB, LARGE_BYTES / (256 * KIB), &t);
    if (rc == 0) {
        cf_step(ctx, "guest compares the checksum of 32 MiB");
        rc = sp_compare_tally(ctx, &t);
    }
    sp_pattern_free(&p);
    cf_close(s);
    return rc;
}

/* ---- 100 connections at once --------------------------------------------------------------- */

#define NCONN 100
#define CONN_BYTES (16u * KIB) /* fits an hv_sock ring (24 KiB) with nobody reading yet */
#define CONN_ROUNDS 4

/* Connection i carries its index, then CONN_BYTES of the pattern from offset
 * i * 977, so two connections never carry the same bytes. */
static uint64_t conn_start(uint32_t i)
{
    return (uint64_t)i * 977u;
}

/* The dialer opens all the connections, then sends on each; the acceptor
 * reads each and answers with the checksum of what it got. */
static int conns_dialer(struct cf_ctx *ctx)
{
    struct sp_pattern p;
    struct sp_tally t[NCONN];
    cf_sock_t s[NCONN];
    const char *me = sp_side_name(ctx->side);
    uint32_t i, r;
    int rc = -1;

    sp_no_sigpipe();
    for (i = 0; i < NCONN; i++)
        s[i] = CF_NO_SOCK;
    if (sp_pattern_init(ctx, &p, 31, CONN_BYTES) < 0 || sp_expectln(ctx, "LISTENING") < 0)
        goto out;
    for (i = 0; i < NCONN; i++) {
        cf_step(ctx, "%s connects connection %u of %u", me, i + 1, NCONN);
        if (ctx->side == SP_HOST) {
            CF_CHECK(ctx, cf_socket(CF_AF_HYPERV, 0, &s[i]), 0, "socket");
            CF_CHECK(ctx, sp_host_connect(s[i], ctx, 0), 0, "connect");
        } else {
            if (sp_guest_socket(ctx, 0, &s[i]) < 0)
                goto out;
            CF_CHECK(ctx, sp_guest_connect(s[i], ctx, 0), 0, "connect");
        }
        sp_tally_init(&t[i]);
    }
    if (sp_expectln(ctx, "ACCEPTED") < 0)
        goto out;
    /* Round-robin, so every connection has data in flight at the same time. */
    for (r = 0; r < CONN_ROUNDS; r++) {
        for (i = 0; i < NCONN; i++) {
            cf_step(ctx, "%s sends round %u on connection %u", me, r + 1, i + 1);
            if (r == 0 && sp_send_all(ctx, s[i], &i, sizeof(i)) < 0)
                goto out;
            if (sp_send_msgs(ctx, s[i], &p, conn_start(i), CONN_BYTES / CONN_ROUNDS, 1, &t[i]) < 0)
                goto out;
        }
    }
    for (i = 0; i < NCONN; i++) {
        uint64_t sum;

        cf_step(ctx, "%s reads the checksum back on connection %u", me, i + 1);
        if (sp_recv_exact(ctx, s[i], &sum, sizeof(sum)) < 0)
            goto out;
        if (sum != t[i].sum) {
            cf_fail(ctx, "expected checksum %016llx, got %016llx", (unsigned long long)t[i].sum,
                    (unsigned long long)sum);
            goto out;
        }
    }
    rc = 0;
out:
    for (i = 0; i < NCONN; i++)
        if (s[i] != CF_NO_SOCK)
            cf_close(s[i]);
    sp_pattern_free(&p);
    return rc;
}

static int conns_acceptor(struct cf_ctx *ctx)
{
    struct sp_pattern p;
    cf_sock_t l = CF_NO_SOCK, s[NCONN];
    unsigned char seen[NCONN];
    const char *me = sp_side_name(ctx->side);
    uint32_t i;
    int rc = -1;

    sp_no_sigpipe();
    memset(seen, 0, sizeof(seen));
    for (i = 0; i < NCONN; i++)
        s[i] = CF_NO_SOCK;
    if (sp_pattern_init(ctx, &p, 31, CONN_BYTES) < 0)
        goto out;
    if (ctx->side == SP_HOST ? sp_host_listen(ctx, 0, NCONN, 0, &l) : sp_guest_listen(ctx, 0, NCONN, 0, &l))
        goto out;
    if (sp_writeln(ctx, "LISTENING") < 0)
        goto out;
    for (i = 0; i < NCONN; i++) {
        cf_step(ctx, "%s accepts connection %u of %u", me, i + 1, NCONN);
        CF_CHECK(ctx, cf_accept(l, &s[i]), 0, "accept");
    }
    if (sp_writeln(ctx, "ACCEPTED") < 0)
        goto out;
    for (i = 0; i < NCONN; i++) {
        struct sp_tally t;
        uint32_t idx;

        sp_tally_init(&t);
        cf_step(ctx, "%s reads accepted connection %u", me, i + 1);
        if (sp_recv_exact(ctx, s[i], &idx, sizeof(idx)) < 0)
            goto out;
        if (idx >= NCONN || seen[idx]) {
            cf_fail(ctx, "expected a new connection index below %u, got %u", NCONN, idx);
            goto out;
        }
        seen[idx] = 1;
        cf_step(ctx, "%s reads connection index %u", me, idx);
        if (sp_recv_bytes(ctx, s[i], &p, conn_start(idx), CONN_BYTES, CONN_BYTES, &t) < 0 ||
            sp_tally_intact(ctx, &t) < 0 || sp_send_all(ctx, s[i], &t.sum, sizeof(t.sum)) < 0)
            goto out;
    }
    rc = 0;
out:
    for (i = 0; i < NCONN; i++)
        if (s[i] != CF_NO_SOCK)
            cf_close(s[i]);
    if (l != CF_NO_SOCK)
        cf_close(l);
    sp_pattern_free(&p);
    return rc;
}

/* Who dials as sp_pair's SP_EITHER_DIALS decides. */
static int conns(struct cf_ctx *ctx)
{
    int host_dials = sp_resolve(ctx, SP_EITHER_DIALS) == SP_HOST_DIALS;

    return (ctx->side == SP_HOST) == host_dials ? conns_dialer(ctx) : conns_acceptor(ctx);
}

/* ---- MSG_PEEK and MSG_WAITALL ------------------------------------------------------------------ */

static int peek_host(struct cf_ctx *ctx)
{
    cf_sock_t s;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0)
        return -1;
    cf_step(ctx, "host sends \"peek\"");
    if (sp_send_all(ctx, s, "peek", 4) < 0 || sp_writeln(ctx, "SENT") < 0 || sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

/* The guest peeks at data that has arrived, then reads it normally: a peek
 * leaves it in place, and a refused peek loses nothing. */
static int peek_guest(struct cf_ctx *ctx)
{
    char buf[4];
    cf_sock_t s;
    long n;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "SENT") < 0)
        return -1;
    cf_step(ctx, "guest waits for the data");
    if (sp_readable(ctx, s, 1000, "4 bytes sent") < 0)
        return -1;
    cf_step(ctx, "guest recv(MSG_PEEK)");
    n = cf_recv(s, buf, sizeof(buf), CF_MSG_PEEK);
    CF_CHECK(ctx, n, ctx->expect, "recv(MSG_PEEK)");
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

#define WAITALL_BYTES 10000u

/* The host sends in three parts with pauses between them, while the guest
 * sits in one recv(MSG_WAITALL) for the whole: it must return all of it. */
static int waitall_host(struct cf_ctx *ctx)
{
    static const size_t part[3] = { 1000, 3000, WAITALL_BYTES - 4000 };
    struct sp_pattern p;
    struct sp_tally t;
    cf_sock_t s;
    int i;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_expectln(ctx, "RECEIVING") < 0 ||
        sp_pattern_init(ctx, &p, 41, WAITALL_BYTES) < 0)
        return -1;
    sp_tally_init(&t);
    for (i = 0; i < 3; i++) {
        cf_step(ctx, "host sends part %d (%zu bytes)", i + 1, part[i]);
        if (sp_send_msgs(ctx, s, &p, 0, part[i], 1, &t) < 0)
            return -1;
        /* The pause that lets the guest's recv see a partial buffer; after
         * the last part the guest answers and closes, so stop looking. */
        if (i < 2 && sp_quiet(ctx, s, 50, "the guest sends nothing before it has it all") < 0)
            return -1;
    }
    sp_pattern_free(&p);
    cf_step(ctx, "host waits for the guest's verdict");
    if (sp_expectln(ctx, "DONE") < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int waitall_guest(struct cf_ctx *ctx)
{
    struct sp_pattern p;
    struct sp_tally t;
    uint8_t *buf;
    cf_sock_t s;
    long n;

    if (sp_pair(ctx, SP_EITHER_DIALS, 0, &s) < 0 || sp_pattern_init(ctx, &p, 41, WAITALL_BYTES) < 0)
        return -1;
    buf = malloc(WAITALL_BYTES);
    if (buf == NULL) {
        cf_fail(ctx, "expected %u bytes of memory, got none", WAITALL_BYTES);
        return -1;
    }
    if (sp_writeln(ctx, "RECEIVING") < 0)
        return -1;
    cf_step(ctx, "guest recv(%u, MSG_WAITALL)", WAITALL_BYTES);
    n = cf_recv(s, buf, WAITALL_BYTES, CF_MSG_WAITALL);
    CF_CHECK(ctx, n, ctx->expect, "recv(MSG_WAITALL)");
    if (n != (long)WAITALL_BYTES) {
        cf_fail(ctx, "expected one recv of %u bytes, got %ld", WAITALL_BYTES, n);
        return -1;
    }
    sp_tally_init(&t);
    sp_tally_recv(&t, &p, 0, buf, (size_t)n);
    if (sp_tally_intact(ctx, &t) < 0)
        return -1;
    free(buf);
    sp_pattern_free(&p);
    cf_close(s);
    return sp_writeln(ctx, "DONE");
}

/* ---- the table ------------------------------------------------------------------------------------- */

#define SRC_PACKETS "docs/reference/hyperv-sockets.md 3.4 [S8][S8b], 6 (item 4)"
#define ALL_OK { 0, 0, 0 }

#define INTEGRITY_ROW(ident, size_text, fn)                                                                     \
    {                                                                                                            \
        .id = ident, .area = "data",                                                                             \
        .rule = "messages of " size_text " arrive whole and in order in both directions (checksums compared)",  \
        .source = SRC_PACKETS, .confidence = CF_SOURCED, .expect = ALL_OK, .host = fn, .guest = fn,              \
    }

const struct cf_case cf_cases_data[] = {
    INTEGRITY_ROW("data.integrity-1-byte-messages", "1 byte", integrity_1),
    INTEGRITY_ROW("data.integrity-7-byte-messages", "7 bytes", integrity_7),
    /* 4088 = HVS_SEND_BUF_SIZE, the largest payload a Linux guest puts in one packet. */
    INTEGRITY_ROW("data.integrity-4088-byte-messages", "4088 bytes (a Linux guest's largest packet)",
                  integrity_4088),
    INTEGRITY_ROW("data.integrity-4096-byte-messages", "4096 bytes (just over a guest packet)", integrity_4096),
    /* 16 KiB = HVS_MTU_SIZE, the largest payload the host sends in one packet. */
    INTEGRITY_ROW("data.integrity-16k-messages", "16 KiB (the host's largest packet)", integrity_16k),
    INTEGRITY_ROW("data.integrity-64k-messages", "64 KiB", integrity_64k),
    INTEGRITY_ROW("data.integrity-1m-messages", "1 MiB", integrity_1m),
    {
        .id = "data.full-duplex",
        .area = "data",
        .rule = "both ends send and receive 8 MiB at the same time without deadlock",
        .source = "docs/reference/hyperv-sockets.md 0, 3.4 [S8] (two independent rings per connection)",
        .confidence = CF_SOURCED,
        .expect = ALL_OK,
        .host = duplex,
        .guest = duplex,
    },
    {
        .id = "data.large-transfer-32m",
        .area = "data",
        .rule = "32 MiB from guest to host arrive intact (checksums compared)",
        .source = SRC_PACKETS,
        .confidence = CF_SOURCED,
        .expect = ALL_OK,
        .needs = CF_NEED_ADMIN,
        .host = large_host,
        .guest = large_guest,
    },
    {
        .id = "data.concurrent-100-connections",
        .area = "data",
        .rule = "100 connections open at once each carry their own checksummed data",
        .source = "docs/reference/hyperv-sockets.md 0 (one VMBus channel per connection), 5 [S63]; "
                  "docs/reference/vsock-virtio.md 4.1 (sock_stress: 100 connections)",
        .confidence = CF_SOURCED,
        .expect = ALL_OK,
        .host = conns,
        .guest = conns,
    },
    {
        .id = "data.peek-linux",
        .area = "data",
        .rule = "MSG_PEEK: hv_sock refuses it (EOPNOTSUPP), virtio-vsock peeks; the data is still read after",
        .source = "docs/reference/hyperv-sockets.md 3.4 [S8][S8b], 6 (item 3); docs/reference/design-notes.md 3",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = CF_NA, [CF_COL_HVSOCK] = -EOPNOTSUPP, [CF_COL_VIRTIO] = 0 },
        .host = peek_host,
        .guest = peek_guest,
    },
    {
        .id = "data.peek-windows",
        .area = "data",
        .rule = "MSG_PEEK on AF_HYPERV returns the data and leaves it to be read",
        .source = "docs/reference/hyperv-sockets.md 7 (item 6: WSL peeks on Hyper-V sockets); "
                  "docs/reference/design-notes.md 3",
        .confidence = CF_SOURCED,
        .expect = { [CF_COL_WINDOWS] = 0, [CF_COL_HVSOCK] = CF_NA, [CF_COL_VIRTIO] = CF_NA },
        .host = peek_host,
        .guest = peek_guest,
    },
    {
        .id = "data.waitall",
        .area = "data",
        .rule = "recv(MSG_WAITALL) returns the whole length although the data arrives in three parts",
        .source = "docs/reference/hyperv-sockets.md 0 (a byte stream); docs/reference/platform-behaviour.md 6 "
                  "(MSG_WAITALL is the vsock core's and Winsock's)",
        .confidence = CF_INFERRED,
        .expect = ALL_OK,
        .host = waitall_host,
        .guest = waitall_guest,
    },
    { .id = NULL },
};
