/* SPDX-License-Identifier: MIT */
/*
 * test_proto.c: unit tests of the wire format in sim/lib/proto.c: the
 * length and type checks every received packet passes (exact sizes, the
 * variable-length types, error replies with text, a header whose len field
 * lies), send and receive over a real AF_UNIX SOCK_SEQPACKET pair with and
 * without a passed fd (the fd arrives as a new descriptor of the same file;
 * on a malformed or truncated packet, or when the caller did not ask, it is
 * closed, never leaked), and the connection ticket's MAC: any flipped bit or
 * a wrong key is EACCES, a wrong magic or version EPROTO.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hvsim/hvsim.h"
#include "hvproto/util.h"
#include "hvproto/proto.h"

#define BUFSZ 4096

/* Header + a body of blen bytes (pattern-filled) into buf; returns the total. */
static size_t build(uint8_t *buf, unsigned type, int32_t status, uint32_t len_field, size_t blen)
{
    struct hvsim_msg_hdr h = { .type = (uint16_t)type, .status = status, .seq = 7, .len = len_field };
    size_t i;

    cr_assert_leq(sizeof(h) + blen, (size_t)BUFSZ, "test buffer too small for %zu", blen);
    memcpy(buf, &h, sizeof(h));
    for (i = 0; i < blen; i++)
        buf[sizeof(h) + i] = (uint8_t)(i * 13 + 5);
    return sizeof(h) + blen;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d, "opendir /proc/self/fd: %s", strerror(errno));
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void seqpacket_pair(int sv[2])
{
    int rc = socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);

    cr_assert_eq(rc, 0, "socketpair: %s", strerror(errno));
}

Test(proto, type_table, .timeout = 5)
{
    unsigned t;

    cr_assert_eq(hvsim__msg_size(HVSIM_MSG_BIND), sizeof(struct hvsim_msg_bind), "%zu vs %zu",
                 hvsim__msg_size(HVSIM_MSG_BIND), sizeof(struct hvsim_msg_bind));
    cr_assert_eq(hvsim__msg_size(HVSIM_MSG_CONNECT_REPLY), sizeof(struct hvsim_msg_connect_reply), "%zu vs %zu",
                 hvsim__msg_size(HVSIM_MSG_CONNECT_REPLY), sizeof(struct hvsim_msg_connect_reply));
    cr_assert_eq(hvsim__msg_size(HVSIM_MSG_COUNT), 0u, "%zu vs 0", hvsim__msg_size(HVSIM_MSG_COUNT));
    cr_assert_eq(hvsim__msg_variable(HVSIM_MSG_STATUS), 1, "%d vs 1", hvsim__msg_variable(HVSIM_MSG_STATUS));
    cr_assert_eq(hvsim__msg_variable(HVSIM_MSG_BIND), 0, "%d vs 0", hvsim__msg_variable(HVSIM_MSG_BIND));
    cr_assert_eq(hvsim__msg_variable(HVSIM_MSG_COUNT + 5), 0, "%d vs 0", hvsim__msg_variable(HVSIM_MSG_COUNT + 5));
    cr_assert_str_eq(hvsim__msg_name(HVSIM_MSG_CONNECT), "CONNECT", "%s vs CONNECT", hvsim__msg_name(HVSIM_MSG_CONNECT));
    cr_assert_str_eq(hvsim__msg_name(HVSIM_MSG_NONE), "UNKNOWN", "%s vs UNKNOWN", hvsim__msg_name(HVSIM_MSG_NONE));
    cr_assert_str_eq(hvsim__msg_name(HVSIM_MSG_COUNT), "UNKNOWN", "%s vs UNKNOWN", hvsim__msg_name(HVSIM_MSG_COUNT));
    for (t = 1; t < HVSIM_MSG_COUNT; t++) {
        cr_assert_gt(hvsim__msg_size(t), 0u, "type %u (%s) has size 0", t, hvsim__msg_name(t));
        cr_assert_lt(sizeof(struct hvsim_msg_hdr) + hvsim__msg_size(t), (size_t)HVSIM_MSG_MAX, "type %u too big", t);
    }
}

Test(proto, check_accepts_exact_sizes, .timeout = 5)
{
    uint8_t buf[BUFSZ];
    unsigned t;

    for (t = 1; t < HVSIM_MSG_COUNT; t++) {
        size_t sz = hvsim__msg_size(t), n = build(buf, t, 0, (uint32_t)sz, sz);
        int rc = hvsim__msg_check(buf, n);

        cr_assert_eq(rc, 0, "%s exact %zu bytes: %d vs 0", hvsim__msg_name(t), sz, rc);
    }
}

Test(proto, check_rejects_short_and_long_bodies, .timeout = 5)
{
    uint8_t buf[BUFSZ];
    unsigned t;

    for (t = 1; t < HVSIM_MSG_COUNT; t++) {
        size_t sz = hvsim__msg_size(t), n;
        int rc;

        n = build(buf, t, 0, (uint32_t)(sz - 1), sz - 1);
        rc = hvsim__msg_check(buf, n);
        cr_assert_eq(rc, -EPROTO, "%s short (%zu of %zu): %d vs %d", hvsim__msg_name(t), sz - 1, sz, rc, -EPROTO);
        n = build(buf, t, 0, 0, 0);
        rc = hvsim__msg_check(buf, n);
        cr_assert_eq(rc, -EPROTO, "%s header only: %d vs %d", hvsim__msg_name(t), rc, -EPROTO);
        n = build(buf, t, 0, (uint32_t)(sz + 1), sz + 1);
        rc = hvsim__msg_check(buf, n);
        if (hvsim__msg_variable(t))
            cr_assert_eq(rc, 0, "%s (variable) long: %d vs 0", hvsim__msg_name(t), rc);
        else
            cr_assert_eq(rc, -EPROTO, "%s long (%zu of %zu): %d vs %d", hvsim__msg_name(t), sz + 1, sz, rc, -EPROTO);
    }
}

Test(proto, check_variable_types_accept_more, .timeout = 5)
{
    static const unsigned var[] = { HVSIM_MSG_STATUS, HVSIM_MSG_VM_LIST_REPLY, HVSIM_MSG_SVC_LIST_REPLY,
                                    HVSIM_MSG_SVC_IMPORT, HVSIM_MSG_SETTING_REPLY };
    uint8_t buf[BUFSZ];
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(var); i++) {
        size_t sz = hvsim__msg_size(var[i]), extra, n;

        cr_assert_eq(hvsim__msg_variable(var[i]), 1, "%s: variable %d vs 1", hvsim__msg_name(var[i]),
                     hvsim__msg_variable(var[i]));
        for (extra = 0; extra < 1000; extra += 333) {
            int rc;

            n = build(buf, var[i], 0, (uint32_t)(sz + extra), sz + extra);
            rc = hvsim__msg_check(buf, n);
            cr_assert_eq(rc, 0, "%s + %zu: %d vs 0", hvsim__msg_name(var[i]), extra, rc);
        }
    }
}

Test(proto, check_rejects_bad_types, .timeout = 5)
{
    uint8_t buf[BUFSZ];
    static const unsigned bad[] = { HVSIM_MSG_NONE, HVSIM_MSG_COUNT, HVSIM_MSG_COUNT + 1, 0x7fff, 0xffff };
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(bad); i++) {
        size_t n;
        int rc;

        n = build(buf, bad[i], 0, 8, 8);
        rc = hvsim__msg_check(buf, n);
        cr_assert_eq(rc, -EPROTO, "type %u: %d vs %d", bad[i], rc, -EPROTO);
        n = build(buf, bad[i], -EINVAL, 8, 8); /* an "error reply" of an unknown type too */
        rc = hvsim__msg_check(buf, n);
        cr_assert_eq(rc, -EPROTO, "type %u with status<0: %d vs %d", bad[i], rc, -EPROTO);
        n = build(buf, bad[i], 0, 0, 0);
        rc = hvsim__msg_check(buf, n);
        cr_assert_eq(rc, -EPROTO, "type %u, empty: %d vs %d", bad[i], rc, -EPROTO);
    }
}

Test(proto, check_rejects_len_field_mismatch, .timeout = 5)
{
    uint8_t buf[BUFSZ];
    unsigned t;

    for (t = 1; t < HVSIM_MSG_COUNT; t++) {
        size_t sz = hvsim__msg_size(t), n;
        int rc;

        /* The packet holds sz bytes but the header claims one more or one less. */
        n = build(buf, t, 0, (uint32_t)(sz + 1), sz);
        rc = hvsim__msg_check(buf, n);
        cr_assert_eq(rc, -EPROTO, "%s len+1: %d vs %d", hvsim__msg_name(t), rc, -EPROTO);
        n = build(buf, t, 0, (uint32_t)(sz - 1), sz);
        rc = hvsim__msg_check(buf, n);
        cr_assert_eq(rc, -EPROTO, "%s len-1: %d vs %d", hvsim__msg_name(t), rc, -EPROTO);
        n = build(buf, t, 0, 0xffffffffu, sz);
        rc = hvsim__msg_check(buf, n);
        cr_assert_eq(rc, -EPROTO, "%s len=~0: %d vs %d", hvsim__msg_name(t), rc, -EPROTO);
        /* Error replies too: the length must be the packet's. */
        n = build(buf, t, -EINVAL, 20, 10);
        rc = hvsim__msg_check(buf, n);
        cr_assert_eq(rc, -EPROTO, "%s error reply len mismatch: %d vs %d", hvsim__msg_name(t), rc, -EPROTO);
    }
}

Test(proto, check_rejects_short_header, .timeout = 5)
{
    uint8_t buf[BUFSZ];
    size_t n;

    build(buf, HVSIM_MSG_HELLO, 0, 0, 0);
    for (n = 0; n < sizeof(struct hvsim_msg_hdr); n++) {
        int rc = hvsim__msg_check(buf, n);

        cr_assert_eq(rc, -EPROTO, "%zu header bytes: %d vs %d", n, rc, -EPROTO);
    }
}

Test(proto, check_accepts_error_replies_with_any_text, .timeout = 5)
{
    uint8_t buf[BUFSZ];
    static const size_t lens[] = { 0, 1, 17, 255, 1000 };
    unsigned t;
    size_t i;

    for (t = 1; t < HVSIM_MSG_COUNT; t++) {
        for (i = 0; i < HVSIM_ARRAY_SIZE(lens); i++) {
            size_t n = build(buf, t, -ENOENT, (uint32_t)lens[i], lens[i]);
            int rc = hvsim__msg_check(buf, n);

            cr_assert_eq(rc, 0, "%s status -ENOENT text %zu: %d vs 0", hvsim__msg_name(t), lens[i], rc);
        }
    }
}

Test(proto, send_recv_round_trip, .timeout = 5)
{
    struct hvsim_msg_connect c, *rc_body;
    struct hvsim_msg_hdr h;
    int sv[2], got_fd = 12345;
    uint8_t *buf = malloc(HVSIM_MSG_MAX);
    ssize_t n;
    int rc;

    cr_assert_not_null(buf);
    seqpacket_pair(sv);
    memset(&c, 0, sizeof(c));
    c.bind_id = 0x1122334455667788ull;
    c.personality = HVSIM_PERS_LINUX;
    c.flags = HVSIM_SF_SUSPEND;
    c.timeout_ms = 1234;
    c.vmid = HV_GUID_PARENT;
    c.svc = hvsim_guid_from_port(2761);
    rc = hvsim__msg_send(sv[0], HVSIM_MSG_CONNECT, 0, 42, &c, sizeof(c), NULL, 0, -1);
    cr_assert_eq(rc, 0, "send: %d vs 0", rc);
    n = hvsim__msg_recv(sv[1], buf, HVSIM_MSG_MAX, &got_fd);
    cr_assert_eq(n, (ssize_t)(sizeof(h) + sizeof(c)), "recv: %zd vs %zu", n, sizeof(h) + sizeof(c));
    cr_assert_eq(got_fd, -1, "no fd was passed, got %d", got_fd);
    memcpy(&h, buf, sizeof(h));
    cr_assert_eq(h.type, HVSIM_MSG_CONNECT, "type %u vs %u", h.type, HVSIM_MSG_CONNECT);
    cr_assert_eq(h.status, 0, "status %d vs 0", h.status);
    cr_assert_eq(h.seq, 42u, "seq %u vs 42", h.seq);
    cr_assert_eq(h.len, sizeof(c), "len %u vs %zu", h.len, sizeof(c));
    rc_body = (struct hvsim_msg_connect *)(buf + sizeof(h));
    cr_assert(memcmp(rc_body, &c, sizeof(c)) == 0, "body differs");

    /* A variable message with extra text, and an error reply with text only. */
    {
        struct hvsim_msg_setting s;
        static const char text[] = "a=1\nb=2\n";

        memset(&s, 0, sizeof(s));
        strcpy(s.name, "x");
        rc = hvsim__msg_send(sv[1], HVSIM_MSG_SETTING_REPLY, 0, 43, &s, sizeof(s), text, sizeof(text), -1);
        cr_assert_eq(rc, 0, "send: %d vs 0", rc);
        n = hvsim__msg_recv(sv[0], buf, HVSIM_MSG_MAX, NULL);
        cr_assert_eq(n, (ssize_t)(sizeof(h) + sizeof(s) + sizeof(text)), "recv: %zd vs %zu", n,
                     sizeof(h) + sizeof(s) + sizeof(text));
        cr_assert(memcmp(buf + sizeof(h) + sizeof(s), text, sizeof(text)) == 0, "extra text differs");

        rc = hvsim__msg_send(sv[1], HVSIM_MSG_BIND_REPLY, -EADDRINUSE, 44, NULL, 0, "in use", 7, -1);
        cr_assert_eq(rc, 0, "send: %d vs 0", rc);
        n = hvsim__msg_recv(sv[0], buf, HVSIM_MSG_MAX, NULL);
        cr_assert_eq(n, (ssize_t)(sizeof(h) + 7), "recv: %zd vs %zu", n, sizeof(h) + 7);
        memcpy(&h, buf, sizeof(h));
        cr_assert_eq(h.status, -EADDRINUSE, "status %d vs %d", h.status, -EADDRINUSE);
        cr_assert_str_eq((char *)buf + sizeof(h), "in use", "%s vs in use", (char *)buf + sizeof(h));
    }
    close(sv[0]);
    n = hvsim__msg_recv(sv[1], buf, HVSIM_MSG_MAX, &got_fd);
    cr_assert_eq(n, 0, "EOF: %zd vs 0", n);
    cr_assert_eq(got_fd, -1, "EOF fd %d vs -1", got_fd);
    close(sv[1]);
    free(buf);
}

Test(proto, send_rejects_oversize, .timeout = 5)
{
    int sv[2], rc;
    uint8_t *big = calloc(1, HVSIM_MSG_MAX);
    struct hvsim_msg_count cnt = { 0, 0 };

    cr_assert_not_null(big);
    seqpacket_pair(sv);
    rc = hvsim__msg_send(sv[0], HVSIM_MSG_SVC_IMPORT, 0, 1, &cnt, sizeof(cnt), big, HVSIM_MSG_MAX, -1);
    cr_assert_eq(rc, -EMSGSIZE, "%d vs %d", rc, -EMSGSIZE);
    close(sv[0]);
    close(sv[1]);
    free(big);
}

Test(proto, send_recv_passes_fd, .timeout = 5)
{
    struct hvsim_msg_empty e = { 0 };
    struct stat a, b;
    int sv[2], p[2], got_fd = -1, flags, before, after;
    uint8_t buf[BUFSZ];
    ssize_t n;
    int rc;

    seqpacket_pair(sv);
    cr_assert_eq(pipe(p), 0, "pipe: %s", strerror(errno));
    before = count_fds();
    rc = hvsim__msg_send(sv[0], HVSIM_MSG_SETTING_LIST, 0, 5, &e, sizeof(e), NULL, 0, p[0]);
    cr_assert_eq(rc, 0, "send: %d vs 0", rc);
    n = hvsim__msg_recv(sv[1], buf, sizeof(buf), &got_fd);
    cr_assert_eq(n, (ssize_t)(sizeof(struct hvsim_msg_hdr) + sizeof(e)), "recv: %zd vs %zu", n,
                 sizeof(struct hvsim_msg_hdr) + sizeof(e));
    cr_assert_geq(got_fd, 0, "no fd arrived: %d", got_fd);
    cr_assert_neq(got_fd, p[0], "received fd %d vs sent %d: must be a new descriptor", got_fd, p[0]);
    cr_assert_eq(fstat(p[0], &a), 0, "fstat: %s", strerror(errno));
    cr_assert_eq(fstat(got_fd, &b), 0, "fstat: %s", strerror(errno));
    cr_assert_eq(a.st_ino, b.st_ino, "st_ino %lu vs %lu", (unsigned long)a.st_ino, (unsigned long)b.st_ino);
    cr_assert_eq(a.st_dev, b.st_dev, "st_dev %lu vs %lu", (unsigned long)a.st_dev, (unsigned long)b.st_dev);
    flags = fcntl(got_fd, F_GETFD);
    cr_assert(flags >= 0 && (flags & FD_CLOEXEC), "received fd is not close-on-exec: %d", flags);
    after = count_fds();
    cr_assert_eq(after, before + 1, "fds: %d vs %d", after, before + 1);
    /* It is the same pipe: what is written to p[1] is read from got_fd. */
    cr_assert_eq(write(p[1], "z", 1), 1, "write: %s", strerror(errno));
    {
        char ch = 0;

        cr_assert_eq(read(got_fd, &ch, 1), 1, "read: %s", strerror(errno));
        cr_assert_eq(ch, 'z', "%c vs z", ch);
    }
    close(got_fd);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

/* Every way a passed fd must be dropped by the receiver, with no fd left behind. */
Test(proto, passed_fd_on_malformed_message_is_closed, .timeout = 5)
{
    struct hvsim_msg_bind bnd;
    int sv[2], p[2], got_fd, before, after;
    uint8_t buf[BUFSZ];
    ssize_t n;
    int rc;

    memset(&bnd, 0, sizeof(bnd));
    seqpacket_pair(sv);
    cr_assert_eq(pipe(p), 0, "pipe: %s", strerror(errno));
    before = count_fds();

    /* Unknown type. */
    rc = hvsim__msg_send(sv[0], HVSIM_MSG_NONE, 0, 1, &bnd, sizeof(bnd), NULL, 0, p[0]);
    cr_assert_eq(rc, 0, "send: %d vs 0", rc);
    got_fd = 777;
    n = hvsim__msg_recv(sv[1], buf, sizeof(buf), &got_fd);
    cr_assert_eq(n, -EPROTO, "type 0: %zd vs %d", n, -EPROTO);
    cr_assert_eq(got_fd, -1, "type 0: fd %d vs -1", got_fd);
    after = count_fds();
    cr_assert_eq(after, before, "type 0: fds %d vs %d (leaked)", after, before);

    /* Wrong body size. */
    rc = hvsim__msg_send(sv[0], HVSIM_MSG_BIND, 0, 2, &bnd, sizeof(bnd) - 1, NULL, 0, p[0]);
    cr_assert_eq(rc, 0, "send: %d vs 0", rc);
    n = hvsim__msg_recv(sv[1], buf, sizeof(buf), &got_fd);
    cr_assert_eq(n, -EPROTO, "short body: %zd vs %d", n, -EPROTO);
    cr_assert_eq(got_fd, -1, "short body: fd %d vs -1", got_fd);
    after = count_fds();
    cr_assert_eq(after, before, "short body: fds %d vs %d (leaked)", after, before);

    /* Truncated: the receiver's buffer is smaller than the packet. */
    rc = hvsim__msg_send(sv[0], HVSIM_MSG_BIND, 0, 3, &bnd, sizeof(bnd), NULL, 0, p[0]);
    cr_assert_eq(rc, 0, "send: %d vs 0", rc);
    n = hvsim__msg_recv(sv[1], buf, sizeof(struct hvsim_msg_hdr) + 4, &got_fd);
    cr_assert_eq(n, -EPROTO, "truncated: %zd vs %d", n, -EPROTO);
    cr_assert_eq(got_fd, -1, "truncated: fd %d vs -1", got_fd);
    after = count_fds();
    cr_assert_eq(after, before, "truncated: fds %d vs %d (leaked)", after, before);

    /* A good message, but the caller did not ask for an fd. */
    rc = hvsim__msg_send(sv[0], HVSIM_MSG_BIND, 0, 4, &bnd, sizeof(bnd), NULL, 0, p[0]);
    cr_assert_eq(rc, 0, "send: %d vs 0", rc);
    n = hvsim__msg_recv(sv[1], buf, sizeof(buf), NULL);
    cr_assert_eq(n, (ssize_t)(sizeof(struct hvsim_msg_hdr) + sizeof(bnd)), "unwanted fd: %zd", n);
    after = count_fds();
    cr_assert_eq(after, before, "unwanted fd: fds %d vs %d (leaked)", after, before);

    /* The sockets still work afterwards. */
    rc = hvsim__msg_send(sv[0], HVSIM_MSG_BIND, 0, 5, &bnd, sizeof(bnd), NULL, 0, -1);
    cr_assert_eq(rc, 0, "send: %d vs 0", rc);
    n = hvsim__msg_recv(sv[1], buf, sizeof(buf), &got_fd);
    cr_assert_eq(n, (ssize_t)(sizeof(struct hvsim_msg_hdr) + sizeof(bnd)), "after: %zd", n);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

Test(proto, extra_passed_fds_are_closed, .timeout = 5)
{
    struct hvsim_msg_empty e = { 0 };
    struct hvsim_msg_hdr h = { .type = HVSIM_MSG_SETTING_LIST, .seq = 9, .len = sizeof(e) };
    struct iovec iov[2] = { { &h, sizeof(h) }, { &e, sizeof(e) } };
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(3 * sizeof(int))];
    } ctl;
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
    struct cmsghdr *c;
    int sv[2], p[2], fds[3], got_fd = -1, before, after;
    uint8_t buf[BUFSZ];
    struct stat a, b;
    ssize_t n;

    seqpacket_pair(sv);
    cr_assert_eq(pipe(p), 0, "pipe: %s", strerror(errno));
    fds[0] = p[0];
    fds[1] = p[1];
    fds[2] = p[0];
    memset(&ctl, 0, sizeof(ctl));
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(fds));
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
    before = count_fds();
    cr_assert_eq(sendmsg(sv[0], &m, 0), (ssize_t)(sizeof(h) + sizeof(e)), "sendmsg: %s", strerror(errno));
    n = hvsim__msg_recv(sv[1], buf, sizeof(buf), &got_fd);
    cr_assert_eq(n, (ssize_t)(sizeof(h) + sizeof(e)), "recv: %zd", n);
    cr_assert_geq(got_fd, 0, "first fd kept: %d", got_fd);
    cr_assert_eq(fstat(p[0], &a), 0, "fstat");
    cr_assert_eq(fstat(got_fd, &b), 0, "fstat");
    cr_assert_eq(a.st_ino, b.st_ino, "kept the first fd: st_ino %lu vs %lu", (unsigned long)b.st_ino,
                 (unsigned long)a.st_ino);
    after = count_fds();
    cr_assert_eq(after, before + 1, "three fds passed, one kept: %d vs %d", after, before + 1);
    close(got_fd);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

/* ---- tickets ------------------------------------------------------------------------ */

static void sample_ticket(struct hvsim_ticket *t, uint8_t key[16])
{
    size_t i;

    memset(t, 0, sizeof(*t));
    t->magic = HVSIM_TICKET_MAGIC;
    t->version = HVSIM_PROTO_VERSION;
    t->conn_id = 0x0102030405060708ull;
    t->expires_ns = 0x1111222233334444ull;
    t->local.vmid = HV_GUID_CHILDREN;
    t->local.svc = hvsim_guid_from_port(2761);
    t->peer.vmid = HV_GUID_LOOPBACK;
    t->peer.svc = hvsim_guid_from_port(0x808);
    t->peer.partition = HV_GUID_PARENT;
    t->peer.cid = 3;
    t->peer.flags = HVSIM_SF_SUSPEND;
    for (i = 0; i < 16; i++)
        key[i] = (uint8_t)(0xa0 + i);
    hvsim__ticket_sign(t, key);
}

Test(proto, ticket_layout, .timeout = 5)
{
    cr_assert_eq(offsetof(struct hvsim_ticket, mac) + 16, sizeof(struct hvsim_ticket), "mac is not last: %zu vs %zu",
                 offsetof(struct hvsim_ticket, mac) + 16, sizeof(struct hvsim_ticket));
    cr_assert_eq(offsetof(struct hvsim_ticket, magic), 0u, "%zu", offsetof(struct hvsim_ticket, magic));
    cr_assert_eq(offsetof(struct hvsim_ticket, version), 4u, "%zu", offsetof(struct hvsim_ticket, version));
}

Test(proto, ticket_sign_verify, .timeout = 5)
{
    struct hvsim_ticket t, t2;
    uint8_t key[16], zero[16] = { 0 };
    int rc;

    sample_ticket(&t, key);
    cr_assert(memcmp(t.mac, zero, 16) != 0, "sign left the MAC zero");
    rc = hvsim__ticket_verify(&t, key);
    cr_assert_eq(rc, 0, "verify: %d vs 0", rc);
    /* Signing is deterministic. */
    t2 = t;
    memset(t2.mac, 0, sizeof(t2.mac));
    hvsim__ticket_sign(&t2, key);
    cr_assert(memcmp(t.mac, t2.mac, 16) == 0, "same ticket, different MACs");
}

Test(proto, ticket_any_flipped_bit_is_eacces, .timeout = 5)
{
    struct hvsim_ticket t, bad;
    uint8_t key[16];
    size_t byte, first = offsetof(struct hvsim_ticket, conn_id);
    int bit, rc;

    sample_ticket(&t, key);
    /* Every field after magic and version, and the MAC itself. */
    for (byte = first; byte < sizeof(t); byte++) {
        for (bit = 0; bit < 8; bit++) {
            bad = t;
            ((uint8_t *)&bad)[byte] ^= (uint8_t)(1u << bit);
            rc = hvsim__ticket_verify(&bad, key);
            cr_assert_eq(rc, -EACCES, "byte %zu bit %d flipped: %d vs %d", byte, bit, rc, -EACCES);
        }
    }
}

Test(proto, ticket_wrong_magic_or_version_is_eproto, .timeout = 5)
{
    struct hvsim_ticket t, bad;
    uint8_t key[16];
    size_t byte;
    int bit, rc;

    sample_ticket(&t, key);
    for (byte = 0; byte < offsetof(struct hvsim_ticket, conn_id); byte++) {
        for (bit = 0; bit < 8; bit++) {
            bad = t;
            ((uint8_t *)&bad)[byte] ^= (uint8_t)(1u << bit);
            rc = hvsim__ticket_verify(&bad, key);
            cr_assert_eq(rc, -EPROTO, "magic/version byte %zu bit %d: %d vs %d", byte, bit, rc, -EPROTO);
        }
    }
    /* Even re-signed with the right key, a wrong magic or version is EPROTO. */
    bad = t;
    bad.magic = 0x12345678;
    hvsim__ticket_sign(&bad, key);
    rc = hvsim__ticket_verify(&bad, key);
    cr_assert_eq(rc, -EPROTO, "wrong magic, signed: %d vs %d", rc, -EPROTO);
    bad = t;
    bad.version = HVSIM_PROTO_VERSION + 1;
    hvsim__ticket_sign(&bad, key);
    rc = hvsim__ticket_verify(&bad, key);
    cr_assert_eq(rc, -EPROTO, "wrong version, signed: %d vs %d", rc, -EPROTO);
}

Test(proto, ticket_wrong_key_is_eacces, .timeout = 5)
{
    struct hvsim_ticket t;
    uint8_t key[16], other[16];
    int bit, rc;

    sample_ticket(&t, key);
    for (bit = 0; bit < 128; bit++) {
        memcpy(other, key, 16);
        other[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        rc = hvsim__ticket_verify(&t, other);
        cr_assert_eq(rc, -EACCES, "key bit %d flipped: %d vs %d", bit, rc, -EACCES);
    }
    memset(other, 0, sizeof(other));
    rc = hvsim__ticket_verify(&t, other);
    cr_assert_eq(rc, -EACCES, "zero key: %d vs %d", rc, -EACCES);
}

/* Send a packet of len bytes (may be 0) carrying nfds copies of fd. */
static void send_with_fds(int sock, const void *data, size_t len, int fd, int nfds)
{
    char dummy = 0;
    struct iovec iov = { len ? (void *)data : &dummy, len };
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(16 * sizeof(int))];
    } ctl;
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                        .msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int)) };
    struct cmsghdr *c;
    int k;

    cr_assert_leq(nfds, 16, "too many fds");
    memset(&ctl, 0, sizeof(ctl));
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
    for (k = 0; k < nfds; k++)
        memcpy(CMSG_DATA(c) + (size_t)k * sizeof(int), &fd, sizeof(int));
    cr_assert_eq(sendmsg(sock, &m, 0), (ssize_t)len, "sendmsg: %s", strerror(errno));
}

/* An empty packet is not EOF when it carries an fd: it is a malformed
 * message, and the fd must not reach (or leak through) the caller. */
Test(proto, passed_fd_on_empty_message_is_closed, .timeout = 5)
{
    int sv[2], p[2], got_fd = 777, before, after;
    uint8_t buf[BUFSZ];
    ssize_t n;

    seqpacket_pair(sv);
    cr_assert_eq(pipe(p), 0, "pipe: %s", strerror(errno));
    before = count_fds();
    send_with_fds(sv[0], NULL, 0, p[0], 1);
    n = hvsim__msg_recv(sv[1], buf, sizeof(buf), &got_fd);
    after = count_fds();
    cr_assert(n == 0 || n == -EPROTO, "empty packet: %zd vs 0 or %d", n, -EPROTO);
    cr_assert_eq(got_fd, -1, "empty packet: fd %d handed to the caller vs -1", got_fd);
    cr_assert_eq(after, before, "empty packet with an fd: fds %d vs %d (leaked)", after, before);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

/* More fds than the receive control buffer holds: MSG_CTRUNC, EPROTO, none kept. */
Test(proto, too_many_passed_fds_are_closed, .timeout = 5)
{
    struct hvsim_msg_empty e = { 0 };
    uint8_t pkt[sizeof(struct hvsim_msg_hdr) + sizeof(struct hvsim_msg_empty)];
    struct hvsim_msg_hdr h = { .type = HVSIM_MSG_SETTING_LIST, .seq = 3, .len = sizeof(e) };
    int sv[2], p[2], got_fd = 777, before, after;
    uint8_t buf[BUFSZ];
    ssize_t n;

    memcpy(pkt, &h, sizeof(h));
    memcpy(pkt + sizeof(h), &e, sizeof(e));
    seqpacket_pair(sv);
    cr_assert_eq(pipe(p), 0, "pipe: %s", strerror(errno));
    before = count_fds();
    send_with_fds(sv[0], pkt, sizeof(pkt), p[0], 12);
    n = hvsim__msg_recv(sv[1], buf, sizeof(buf), &got_fd);
    after = count_fds();
    cr_assert_eq(n, -EPROTO, "12 fds: %zd vs %d", n, -EPROTO);
    cr_assert_eq(got_fd, -1, "12 fds: fd %d vs -1", got_fd);
    cr_assert_eq(after, before, "12 fds: fds %d vs %d (leaked)", after, before);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

/* Since protocol 4: lists and imports in pages (issue 11, finding 8). */
Test(proto, paged_lists_and_imports, .timeout = 5)
{
    cr_assert_geq(HVSIM_PROTO_VERSION, 4);
    cr_assert_eq(hvsim__msg_size(HVSIM_MSG_VM_LIST), sizeof(struct hvsim_msg_page));
    cr_assert_eq(hvsim__msg_size(HVSIM_MSG_SVC_LIST), sizeof(struct hvsim_msg_page));
    cr_assert_eq(hvsim__msg_size(HVSIM_MSG_SVC_LIST_REPLY), sizeof(struct hvsim_msg_list));
    cr_assert_eq(hvsim__msg_size(HVSIM_MSG_VM_LIST_REPLY), sizeof(struct hvsim_msg_list));
    cr_assert_eq(hvsim__msg_size(HVSIM_MSG_SVC_IMPORT), sizeof(struct hvsim_msg_import));
    cr_assert(hvsim__msg_variable(HVSIM_MSG_SVC_IMPORT));
    cr_assert_not(hvsim__msg_variable(HVSIM_MSG_SVC_LIST));
    /* A full page of either list, with its header, fits one message well under the default send buffer. */
    cr_assert_lt(sizeof(struct hvsim_msg_hdr) + sizeof(struct hvsim_msg_list) + HVSIM_PAGE_BYTES, 200u * 1024u);
    cr_assert_geq(HVSIM_PAGE_BYTES / sizeof(hvsim_service_info_t), 200u);
}

/* Protocol 6: an event names a service (SERVICE_DISABLED). */
Test(proto, events_carry_a_service, .timeout = 5)
{
    cr_assert_geq(HVSIM_PROTO_VERSION, 6);
    cr_assert_eq(hvsim__msg_size(HVSIM_MSG_EVENT), 2 * sizeof(GUID) + 2 * sizeof(uint32_t) + sizeof(uint64_t));
    cr_assert_eq(offsetof(struct hvsim_msg_event, svc), sizeof(GUID) + 2 * sizeof(uint32_t));
}

/* Protocol 9: an event carries the first ticket id issued after it (revocation). */
Test(proto, events_carry_a_ticket_mark, .timeout = 5)
{
    cr_assert_geq(HVSIM_PROTO_VERSION, 9);
    cr_assert_eq(offsetof(struct hvsim_msg_event, below), 2 * sizeof(GUID) + 2 * sizeof(uint32_t));
    cr_assert_eq(HVSIM_EV_SERVICE_REMOVED, 7);
}

/* Protocol 5: a VM's transport and kernel travel in VM_ADD, VM_INFO and the HELLO reply (issue 13). */
Test(proto, vm_transport_and_kernel, .timeout = 5)
{
    uint32_t v = 0;

    cr_assert_geq(HVSIM_PROTO_VERSION, 5);
    cr_assert_eq(hvsim__msg_size(HVSIM_MSG_VM_INFO), sizeof(hvsim_vm_info_t));
    cr_assert_str_eq(hvsim__transport_name(HVSIM_TRANSPORT_HV_SOCK), "hv_sock");
    cr_assert_str_eq(hvsim__transport_name(HVSIM_TRANSPORT_VIRTIO), "virtio");
    cr_assert_null(hvsim__transport_name(7));
    cr_assert_eq(hvsim__kernel_parse("6.12", &v), 0);
    cr_assert_eq(v, (uint32_t)HVSIM_KERNEL_6_12);
    cr_assert_eq(hvsim__kernel_parse("5.10", &v), -EINVAL);
    cr_assert_eq(hvsim__transport_parse("vmci", &v), -EINVAL);
    cr_assert_str_eq(hvsim__kernel_name(HVSIM_KERNEL_NEWEST), "newest");
}
