/* SPDX-License-Identifier: MIT */
/*
 * stream_pair.c: the connected pair, the byte pattern and the checks the
 * stream cases share (stream_pair.h says what each does).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../catalogue.h"
#include "../cf_const.h"
#include "case_util.h"
#include "stream_pair.h"

const char *sp_side_name(int side)
{
    return side == SP_HOST ? "host" : "guest";
}

enum sp_dir sp_resolve(const struct cf_ctx *ctx, enum sp_dir dir)
{
    if (dir != SP_EITHER_DIALS)
        return dir;
    return ctx->col == CF_COL_VIRTIO ? SP_GUEST_DIALS : SP_HOST_DIALS;
}

uint32_t sp_port(const struct cf_ctx *ctx, uint32_t k)
{
    return ctx->port_base + k;
}

cf_guid_t sp_svc(const struct cf_ctx *ctx, uint32_t k)
{
    return cf_guid_port(sp_port(ctx, k));
}

void sp_no_sigpipe(void)
{
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN);
#endif
}

int sp_writeln(struct cf_ctx *ctx, const char *line)
{
    if (cf_ctl_writeln(ctx, line) >= 0)
        return 0;
    cf_fail(ctx, "expected to send control line \"%s\", got an error", line);
    return -1;
}

int sp_expectln(struct cf_ctx *ctx, const char *line)
{
    if (cf_ctl_expectln(ctx, line) >= 0)
        return 0;
    cf_fail(ctx, "expected control line \"%s\" from the other side, got another line or none", line);
    return -1;
}

int sp_write_u64(struct cf_ctx *ctx, uint64_t v)
{
    if (cf_ctl_write_u64(ctx, v) >= 0)
        return 0;
    cf_fail(ctx, "expected to send a number on the control channel, got an error");
    return -1;
}

int sp_read_u64(struct cf_ctx *ctx, uint64_t *v)
{
    if (cf_ctl_read_u64(ctx, v) >= 0)
        return 0;
    cf_fail(ctx, "expected a number from the other side on the control channel, got none");
    return -1;
}

int sp_guest_socket(struct cf_ctx *ctx, int nonblock, cf_sock_t *s)
{
    sp_no_sigpipe();
    cf_step(ctx, "guest socket(%s)", cfc_is_vsock(ctx) ? "AF_VSOCK" : "AF_HYPERV");
    CF_CHECK(ctx, cf_socket(cfc_is_vsock(ctx) ? CF_AF_VSOCK : CF_AF_HYPERV, nonblock, s), 0, "socket");
    return 0;
}

int sp_guest_connect(cf_sock_t s, const struct cf_ctx *ctx, uint32_t k)
{
    cf_guid_t svc = sp_svc(ctx, k);

    if (cfc_is_vsock(ctx))
        return cf_connect_vsock(s, CF_VMADDR_CID_HOST, sp_port(ctx, k));
    return cf_connect_hv(s, &CF_GUID_PARENT, &svc);
}

int sp_guest_listen(struct cf_ctx *ctx, uint32_t k, int backlog, int suspend, cf_sock_t *l)
{
    cf_guid_t svc = sp_svc(ctx, k);

    if (sp_guest_socket(ctx, 0, l) < 0)
        return -1;
    if (suspend) {
        cf_step(ctx, "guest setsockopt(HVSOCKET_CONNECTED_SUSPEND) on the listener");
        CF_CHECK(ctx, cf_set_connected_suspend(*l, 1), 0, "setsockopt");
    }
    cf_step(ctx, "guest bind port %u", (unsigned)sp_port(ctx, k));
    if (cfc_is_vsock(ctx))
        CF_CHECK(ctx, cf_bind_vsock(*l, CF_VMADDR_CID_ANY, sp_port(ctx, k)), 0, "bind");
    else
        CF_CHECK(ctx, cf_bind_hv(*l, &CF_GUID_ZERO, &svc), 0, "bind");
    cf_step(ctx, "guest listen port %u", (unsigned)sp_port(ctx, k));
    CF_CHECK(ctx, cf_listen(*l, backlog), 0, "listen");
    return 0;
}

int sp_host_register(struct cf_ctx *ctx, uint32_t k)
{
    cf_guid_t svc = sp_svc(ctx, k);

    cf_step(ctx, "host registers service port %u", (unsigned)sp_port(ctx, k));
    CF_CHECK(ctx, cf_admin_service_add(&svc, "hvsim conformance"), 0, "cf_admin_service_add");
    return 0;
}

int sp_host_listen(struct cf_ctx *ctx, uint32_t k, int backlog, int suspend, cf_sock_t *l)
{
    cf_guid_t svc = sp_svc(ctx, k);

    if (sp_host_register(ctx, k) < 0)
        return -1;
    cf_step(ctx, "host socket(AF_HYPERV)");
    CF_CHECK(ctx, cf_socket(CF_AF_HYPERV, 0, l), 0, "socket");
    if (suspend) {
        cf_step(ctx, "host setsockopt(HVSOCKET_CONNECTED_SUSPEND) on the listener");
        CF_CHECK(ctx, cf_set_connected_suspend(*l, 1), 0, "setsockopt");
    }
    cf_step(ctx, "host bind {vm, port %u}", (unsigned)sp_port(ctx, k));
    CF_CHECK(ctx, cf_bind_hv(*l, &ctx->vm_id, &svc), 0, "bind");
    cf_step(ctx, "host listen port %u", (unsigned)sp_port(ctx, k));
    CF_CHECK(ctx, cf_listen(*l, backlog), 0, "listen");
    return 0;
}

int sp_host_connect(cf_sock_t s, const struct cf_ctx *ctx, uint32_t k)
{
    cf_guid_t svc = sp_svc(ctx, k);

    return cf_connect_hv(s, &ctx->vm_id, &svc);
}

int sp_pair_ex(struct cf_ctx *ctx, enum sp_dir dir, uint32_t k, enum sp_suspend suspend, cf_sock_t *s)
{
    int dialer = sp_resolve(ctx, dir) == SP_GUEST_DIALS ? SP_GUEST : SP_HOST;
    int mine = (int)suspend == ctx->side;
    cf_sock_t l;

    sp_no_sigpipe();
    *s = CF_NO_SOCK;
    if (ctx->side == dialer) {
        if (sp_expectln(ctx, "LISTENING") < 0)
            return -1;
        if (ctx->side == SP_GUEST) {
            if (sp_guest_socket(ctx, 0, s) < 0)
                return -1;
        } else {
            cf_step(ctx, "host socket(AF_HYPERV)");
            CF_CHECK(ctx, cf_socket(CF_AF_HYPERV, 0, s), 0, "socket");
        }
        if (mine) {
            cf_step(ctx, "%s setsockopt(HVSOCKET_CONNECTED_SUSPEND)", sp_side_name(ctx->side));
            CF_CHECK(ctx, cf_set_connected_suspend(*s, 1), 0, "setsockopt");
        }
        cf_step(ctx, "%s connect to port %u", sp_side_name(ctx->side), (unsigned)sp_port(ctx, k));
        CF_CHECK(ctx, ctx->side == SP_GUEST ? sp_guest_connect(*s, ctx, k) : sp_host_connect(*s, ctx, k), 0,
                 "connect");
        return sp_expectln(ctx, "ACCEPTED");
    }
    if (ctx->side == SP_HOST ? sp_host_listen(ctx, k, 4, mine, &l) : sp_guest_listen(ctx, k, 4, mine, &l))
        return -1;
    if (sp_writeln(ctx, "LISTENING") < 0)
        return -1;
    cf_step(ctx, "%s accept on port %u", sp_side_name(ctx->side), (unsigned)sp_port(ctx, k));
    CF_CHECK(ctx, cf_accept(l, s), 0, "accept");
    cf_close(l);
    return sp_writeln(ctx, "ACCEPTED");
}

int sp_pair(struct cf_ctx *ctx, enum sp_dir dir, uint32_t k, cf_sock_t *s)
{
    return sp_pair_ex(ctx, dir, k, SP_SUSPEND_NONE, s);
}

const char *sp_events(int ev, char *buf, size_t len)
{
    if (ev < 0)
        return cf_expect_name(ev, buf, len);
    snprintf(buf, len, "%s%s%s%s%s", ev == 0 ? "no events" : "", ev & CF_POLLIN ? "IN " : "",
             ev & CF_POLLOUT ? "OUT " : "", ev & CF_POLLERR ? "ERR " : "", ev & CF_POLLHUP ? "HUP" : "");
    return buf;
}

int sp_quiet(struct cf_ctx *ctx, cf_sock_t s, int ms, const char *why)
{
    int ev = cf_poll(s, CF_POLLIN, ms);
    char e[40];

    if (ev != 0) {
        cf_fail(ctx, "expected nothing readable for %d ms (%s), got %s", ms, why, sp_events(ev, e, sizeof(e)));
        return -1;
    }
    return 0;
}

int sp_readable(struct cf_ctx *ctx, cf_sock_t s, int ms, const char *why)
{
    int ev = cf_poll(s, CF_POLLIN, ms);
    char e[40];

    if (ev < 0 || !(ev & (CF_POLLIN | CF_POLLHUP | CF_POLLERR))) {
        cf_fail(ctx, "expected the socket readable within %d ms (%s), got %s", ms, why, sp_events(ev, e, sizeof(e)));
        return -1;
    }
    return 0;
}

int sp_recv_exact(struct cf_ctx *ctx, cf_sock_t s, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        long n = cf_recv(s, (char *)buf + got, len - got, 0);

        if (n <= 0) {
            char e[32];

            cf_fail(ctx, "expected %zu bytes, got %s after %zu", len,
                    n == 0 ? "EOF" : cf_expect_name((int)n, e, sizeof(e)), got);
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

int sp_send_all(struct cf_ctx *ctx, cf_sock_t s, const void *buf, size_t len)
{
    size_t off = 0;

    while (off < len) {
        long n = cf_send(s, (const char *)buf + off, len - off, 0);

        if (n <= 0) {
            char e[32];

            cf_fail(ctx, "expected to send %zu bytes, got %s after %zu", len,
                    cf_expect_name((int)n, e, sizeof(e)), off);
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

int sp_recv_text(struct cf_ctx *ctx, cf_sock_t s, const char *want)
{
    char buf[64];
    size_t len = strlen(want);

    if (len > sizeof(buf) || sp_recv_exact(ctx, s, buf, len) < 0)
        return -1;
    if (memcmp(buf, want, len) != 0) {
        cf_fail(ctx, "expected \"%s\", got \"%.*s\"", want, (int)len, buf);
        return -1;
    }
    return 0;
}

int sp_pattern_init(struct cf_ctx *ctx, struct sp_pattern *p, uint64_t seed, size_t max)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    size_t i;

    p->max = max;
    p->buf = malloc(SP_PERIOD + max);
    if (p->buf == NULL) {
        cf_fail(ctx, "expected %zu bytes of memory for the pattern, got none", (size_t)SP_PERIOD + max);
        return -1;
    }
    for (i = 0; i < SP_PERIOD; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        p->buf[i] = (uint8_t)(x >> 56);
    }
    for (; i < SP_PERIOD + max; i++)
        p->buf[i] = p->buf[i - SP_PERIOD];
    return 0;
}

void sp_pattern_free(struct sp_pattern *p)
{
    free(p->buf);
    p->buf = NULL;
}

const uint8_t *sp_pattern_at(const struct sp_pattern *p, uint64_t off)
{
    return p->buf + off % SP_PERIOD;
}

uint64_t sp_sum(uint64_t h, const void *buf, size_t len)
{
    const uint8_t *b = buf;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void sp_tally_init(struct sp_tally *t)
{
    t->bytes = 0;
    t->sum = SP_SUM_INIT;
    t->first_bad = -1;
}

void sp_tally_recv(struct sp_tally *t, const struct sp_pattern *p, uint64_t start, const void *buf, size_t n)
{
    const uint8_t *want = sp_pattern_at(p, start + t->bytes);

    if (t->first_bad < 0 && memcmp(want, buf, n) != 0) {
        size_t i = 0;

        while (((const uint8_t *)buf)[i] == want[i])
            i++;
        t->first_bad = (int64_t)(t->bytes + i);
    }
    t->sum = sp_sum(t->sum, buf, n);
    t->bytes += n;
}

int sp_send_msgs(struct cf_ctx *ctx, cf_sock_t s, const struct sp_pattern *p, uint64_t start,
                 size_t msg, size_t count, struct sp_tally *t)
{
    size_t i;

    for (i = 0; i < count; i++) {
        const uint8_t *b = sp_pattern_at(p, start + t->bytes);
        size_t off = 0;

        while (off < msg) {
            long n = cf_send(s, b + off, msg - off, 0);

            if (n <= 0) {
                char e[32];

                cf_fail(ctx, "expected to send message %zu of %zu (%zu bytes), got %s", i + 1, count, msg,
                        cf_expect_name((int)n, e, sizeof(e)));
                return -1;
            }
            off += (size_t)n;
        }
        t->sum = sp_sum(t->sum, b, msg);
        t->bytes += msg;
    }
    return 0;
}

int sp_recv_bytes(struct cf_ctx *ctx, cf_sock_t s, const struct sp_pattern *p, uint64_t start,
                  uint64_t total, size_t chunk, struct sp_tally *t)
{
    uint8_t *buf = malloc(chunk);

    if (buf == NULL) {
        cf_fail(ctx, "expected %zu bytes of memory, got none", chunk);
        return -1;
    }
    while (t->bytes < total) {
        size_t want = total - t->bytes < chunk ? (size_t)(total - t->bytes) : chunk;
        long n = cf_recv(s, buf, want, 0);

        if (n <= 0) {
            char e[32];

            cf_fail(ctx, "expected %llu bytes, got %s after %llu", (unsigned long long)total,
                    n == 0 ? "EOF" : cf_expect_name((int)n, e, sizeof(e)), (unsigned long long)t->bytes);
            free(buf);
            return -1;
        }
        sp_tally_recv(t, p, start, buf, (size_t)n);
    }
    free(buf);
    return 0;
}

int sp_tally_intact(struct cf_ctx *ctx, const struct sp_tally *t)
{
    if (t->first_bad < 0)
        return 0;
    cf_fail(ctx, "expected the pattern, got a different byte at offset %lld", (long long)t->first_bad);
    return -1;
}

int sp_send_pattern(struct cf_ctx *ctx, cf_sock_t s, uint64_t seed, size_t msg, size_t count)
{
    struct sp_pattern p;
    struct sp_tally t;
    int rc;

    if (sp_pattern_init(ctx, &p, seed, msg) < 0)
        return -1;
    sp_tally_init(&t);
    rc = sp_send_msgs(ctx, s, &p, 0, msg, count, &t);
    sp_pattern_free(&p);
    return rc;
}

int sp_recv_pattern(struct cf_ctx *ctx, cf_sock_t s, uint64_t seed, uint64_t total, size_t chunk)
{
    struct sp_pattern p;
    struct sp_tally t;
    int rc;

    if (sp_pattern_init(ctx, &p, seed, chunk) < 0)
        return -1;
    sp_tally_init(&t);
    rc = sp_recv_bytes(ctx, s, &p, 0, total, chunk, &t);
    if (rc == 0)
        rc = sp_tally_intact(ctx, &t);
    sp_pattern_free(&p);
    return rc;
}

int sp_report_tally(struct cf_ctx *ctx, const struct sp_tally *t)
{
    if (sp_write_u64(ctx, t->bytes) < 0 || sp_write_u64(ctx, t->sum) < 0)
        return -1;
    if (t->first_bad >= 0) {
        cf_fail(ctx, "expected the pattern, got a different byte at offset %lld of %llu",
                (long long)t->first_bad, (unsigned long long)t->bytes);
        return -1;
    }
    return 0;
}

int sp_compare_tally(struct cf_ctx *ctx, const struct sp_tally *sent)
{
    uint64_t bytes, sum;

    if (sp_read_u64(ctx, &bytes) < 0 || sp_read_u64(ctx, &sum) < 0)
        return -1;
    if (bytes != sent->bytes || sum != sent->sum) {
        cf_fail(ctx, "expected the peer to receive %llu bytes with checksum %016llx, got %llu bytes with %016llx",
                (unsigned long long)sent->bytes, (unsigned long long)sent->sum, (unsigned long long)bytes,
                (unsigned long long)sum);
        return -1;
    }
    return 0;
}
