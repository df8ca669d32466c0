/* SPDX-License-Identifier: MIT */
/*
 * fuzz_vhost_msg.c: libFuzzer harness for the vhost-user side of the
 * back-end (sim/vhost/vhost_user.c): framing, payload checks, fd handling,
 * memory tables and ring set-up, with the vsock device attached so that
 * rings the front-end sets up are really processed.
 *
 * The input is a sequence of records {u8 fdspec, u16 len (le), len bytes}.
 * The bytes of all records are written, in order, to one end of a unix
 * stream socketpair, each record's bytes carrying SCM_RIGHTS fds chosen by
 * fdspec: low nibble the count (0-12: beyond 8 exercises truncation), high
 * nibble which of them are eventfds (the others are 64 KiB memfds whose
 * contents come from the input, so rings in guest memory are the fuzzer's
 * too). The back-end then dispatches until the stream ends or breaks,
 * running the device after every message.
 *
 * Checked besides sanitizer reports: vhu_dispatch never returns anything
 * but 0 or the documented errors, and no fd leaks (the count of open fds
 * is the same before and after).
 *
 * With -DHVSIM_FUZZ_STANDALONE it builds with plain gcc into a program that
 * runs the target once on each file named on the command line.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../vhost/vhost_user.h"
#include "../vhost/vlog.h"
#include "../vhost/vsock_conn.h"
#include "fd_count.h"

#define MEMFD_SIZE 65536
#define MAX_REC_FDS 12

/* ---- a host that refuses everything: the rings are what is fuzzed here ---- */

static int f_connect(void *ctx, uint32_t port, uint32_t guest_port, unsigned type)
{
    (void)ctx;
    (void)port;
    (void)guest_port;
    (void)type;
    return -ECONNREFUSED;
}

static int f_connect_result(void *ctx, int fd)
{
    (void)ctx;
    (void)fd;
    abort();
}

static ssize_t f_send(void *ctx, int fd, const void *buf, size_t len)
{
    (void)ctx;
    (void)fd;
    (void)buf;
    (void)len;
    abort();
}

static ssize_t f_recv(void *ctx, int fd, void *buf, size_t len)
{
    (void)ctx;
    (void)fd;
    (void)buf;
    (void)len;
    abort();
}

static int f_shutdown_wr(void *ctx, int fd)
{
    (void)ctx;
    (void)fd;
    abort();
}

static int f_watch(void *ctx, int fd, void *cookie)
{
    (void)ctx;
    (void)fd;
    (void)cookie;
    abort();
}

static void f_close(void *ctx, int fd)
{
    (void)ctx;
    (void)fd;
    abort();
}

static uint64_t f_now(void *ctx)
{
    (void)ctx;
    return 0;
}

/* No offers and no SEQPACKET here (the features callback below is NULL, so
 * the device never takes it; fuzz_vhost_ring covers both). */
static const struct vconn_host_ops ops = {
    .connect = f_connect,
    .connect_result = f_connect_result,
    .send = f_send,
    .recv = f_recv,
    .shutdown_wr = f_shutdown_wr,
    .watch = f_watch,
    .close = f_close,
    .now_ms = f_now,
};

struct ctx {
    struct vconn_dev *dev;
    int kicks;
};

static void kick_changed(void *opaque, unsigned idx, int old_fd, int new_fd)
{
    struct ctx *c = opaque;

    (void)idx;
    if (old_fd >= 0)
        c->kicks--;
    if (new_fd >= 0)
        c->kicks++;
}

static void reset(void *opaque)
{
    vconn_reset(((struct ctx *)opaque)->dev);
}

static const struct vhu_iface iface = { .kick_changed = kick_changed, .reset = reset, .features = NULL };

static int make_fd(int eventfd_kind, const uint8_t *fill, size_t fill_len)
{
    int fd;

    if (eventfd_kind)
        return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    fd = memfd_create("fuzz-guest", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (ftruncate(fd, MEMFD_SIZE) < 0 ||
        (fill_len && pwrite(fd, fill, fill_len < MEMFD_SIZE ? fill_len : MEMFD_SIZE, 0) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Write one record; returns 0, or -1 when the socket is full. */
static int send_record(int sock, const uint8_t *bytes, size_t len, unsigned fdspec, const uint8_t *fill,
                       size_t fill_len)
{
    unsigned nfds = fdspec & 0x0f, i;
    int fds[MAX_REC_FDS];
    union {
        char b[CMSG_SPACE(MAX_REC_FDS * sizeof(int))];
        struct cmsghdr al;
    } ctl;
    struct iovec iov = { (void *)bytes, len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t w;

    if (nfds > MAX_REC_FDS)
        nfds = MAX_REC_FDS;
    if (len == 0)
        nfds = 0; /* fds need at least one byte to ride on */
    for (i = 0; i < nfds; i++) {
        fds[i] = make_fd((fdspec >> (4 + i % 4)) & 1, fill, fill_len);
        if (fds[i] < 0)
            abort();
    }
    if (nfds) {
        struct cmsghdr *cm;

        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.b;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
    }
    w = len ? sendmsg(sock, &mh, MSG_DONTWAIT) : 0;
    /* The receiver holds its own copies now; ours go. */
    for (i = 0; i < nfds; i++)
        close(fds[i]);
    return w < 0 || (size_t)w < len ? -1 : 0;
}

static void drain(int fd)
{
    char buf[4096];

    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vconn_config cfg = { .guest_cid = 3, .buf_alloc = 65536, .max_conns = 4 };
    struct ctx c = { 0 };
    struct vhu_dev d;
    size_t off = 0;
    int sv[2], before, rc, guard;

    vlog_level = -1;
    before = count_fds();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    while (off + 3 <= size) {
        unsigned fdspec = data[off];
        size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;

        off += 3;
        if (len > size - off)
            len = size - off;
        /* The memfds are filled with what follows the record: the next
         * records double as guest memory. */
        if (send_record(sv[0], data + off, len, fdspec, data + off + len, size - off - len) < 0)
            break;
        off += len;
    }
    shutdown(sv[0], SHUT_WR);
    if (vconn_dev_new(&cfg, &ops, NULL, &c.dev) < 0)
        abort();
    vhu_init(&d, sv[1], 3, &iface, &c);
    vconn_attach(c.dev, &d.vq[VHU_QUEUE_RX], &d.vq[VHU_QUEUE_TX], &d.mem);
    for (guard = 0; guard < 100000; guard++) {
        rc = vhu_dispatch(&d);
        drain(sv[0]);
        if (rc < 0) {
            if (rc != -ECONNRESET && rc != -EPROTO && rc != -EMSGSIZE && rc != -EPIPE)
                abort();
            break;
        }
        vconn_run(c.dev);
    }
    vconn_dev_free(c.dev);
    vhu_fini(&d);
    if (c.kicks != 0)
        abort(); /* every kick fd given to the loop was taken back */
    close(sv[0]);
    close(sv[1]);
    if (count_fds() != before)
        abort(); /* an fd leaked */
    return 0;
}

#ifdef HVSIM_FUZZ_STANDALONE
#include "standalone.h"
#endif
