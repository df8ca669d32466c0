/* SPDX-License-Identifier: MIT */
/*
 * vhost_user.c: the vhost-user protocol, back-end side (reference 2.1-2.4;
 * QEMU's docs/interop/vhost-user.rst).
 *
 * Messages are framed by vhu_msg_read(), then vhu_handle() looks the request
 * up in a table giving its name, the payload sizes it accepts and its
 * handler. The table is the one place that decides which requests exist for
 * this device: everything not in it is refused without being trusted. Fds
 * arriving with a message belong to the message until a handler takes one,
 * and are closed afterwards, so a confused or hostile front-end cannot make
 * us leak them.
 *
 * Replies: GET_* requests always get their reply, even on failure (QEMU
 * waits for them; GET_VRING_BASE is also how it stops a ring at power-off).
 * Other requests get a u64 status only when REPLY_ACK was negotiated and the
 * front-end set NEED_REPLY.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhost_user.h"
#include "vlog.h"

/* A handler's result: done (the dispatcher acks if asked), replied itself,
 * or a -errno failure. */
#define H_OK 0
#define H_REPLIED 1

struct handler {
    const char *name;
    uint32_t min_size, max_size; /* accepted payload sizes */
    int must_reply; /* the front-end always waits for a reply */
    int (*fn)(struct vhu_dev *d, struct vhu_msg *m);
};

/* ---- replies ----------------------------------------------------------------------- */

static int send_all(int fd, const void *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t w = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -EPIPE;
        done += (size_t)w;
    }
    return 0;
}

static int reply(struct vhu_dev *d, const struct vhu_msg *m, const void *payload, uint32_t size)
{
    uint8_t buf[VHU_HDR_SIZE + sizeof(struct vhu_config)];
    uint32_t hdr[3] = { m->request, VHU_VERSION | VHU_FLAG_REPLY, size };

    if (size > sizeof(buf) - VHU_HDR_SIZE)
        return -EINVAL;
    memcpy(buf, hdr, VHU_HDR_SIZE);
    if (size)
        memcpy(buf + VHU_HDR_SIZE, payload, size);
    if (send_all(d->sock, buf, VHU_HDR_SIZE + size) < 0) {
        d->dead = 1;
        return -EPIPE;
    }
    return H_REPLIED;
}

static int reply_u64(struct vhu_dev *d, const struct vhu_msg *m, uint64_t v)
{
    return reply(d, m, &v, sizeof(v));
}

/* Take fd i of the message (the handler owns it from now on). */
static int take_fd(struct vhu_msg *m, unsigned i)
{
    int fd;

    if (i >= m->nfds)
        return -1;
    fd = m->fds[i];
    m->fds[i] = -1;
    return fd;
}

static void close_fds(struct vhu_msg *m)
{
    unsigned i;

    for (i = 0; i < m->nfds; i++) {
        if (m->fds[i] >= 0)
            close(m->fds[i]);
        m->fds[i] = -1;
    }
}

/* ---- rings ------------------------------------------------------------------------- */

static struct vring *ring(struct vhu_dev *d, uint32_t index)
{
    return index < VHU_NUM_QUEUES ? &d->vq[index] : NULL;
}

static void set_kick(struct vhu_dev *d, unsigned idx, int fd)
{
    struct vring *vq = &d->vq[idx];

    if (vq->kick_fd == fd)
        return;
    /* Unwatch before close: the front-end holds the same open file, so
     * closing our fd alone would leave it in the epoll set. */
    if (d->iface && d->iface->kick_changed)
        d->iface->kick_changed(d->opaque, idx, vq->kick_fd, fd);
    if (vq->kick_fd >= 0)
        close(vq->kick_fd);
    vq->kick_fd = fd;
}

static void device_reset(struct vhu_dev *d)
{
    if (d->iface && d->iface->reset)
        d->iface->reset(d->opaque);
}

/* Stop a ring (GET_VRING_BASE, reset): no more processing, no kicks. */
static void stop_ring(struct vhu_dev *d, unsigned idx)
{
    struct vring *vq = &d->vq[idx];

    vq->started = 0;
    set_kick(d, idx, -1);
    if (vq->call_fd >= 0)
        close(vq->call_fd);
    vq->call_fd = -1;
}

/* ---- handlers ---------------------------------------------------------------------- */

static int h_get_features(struct vhu_dev *d, struct vhu_msg *m)
{
    return reply_u64(d, m, VHU_FEATURES);
}

static int h_set_features(struct vhu_dev *d, struct vhu_msg *m)
{
    unsigned i;

    if (m->p.u64 & ~VHU_FEATURES)
        vlog_peer("front-end acked features we did not offer: %#llx", (unsigned long long)(m->p.u64 & ~VHU_FEATURES));
    d->features = m->p.u64 & VHU_FEATURES;
    if (d->iface && d->iface->features)
        d->iface->features(d->opaque, d->features);
    /* Without protocol features there is no SET_VRING_ENABLE: rings are
     * enabled from the start (vhost-user.rst, "Ring states"). */
    if (!(d->features & (1ull << VHU_F_PROTOCOL_FEATURES)))
        for (i = 0; i < VHU_NUM_QUEUES; i++)
            d->vq[i].enabled = 1;
    return H_OK;
}

static int h_set_owner(struct vhu_dev *d, struct vhu_msg *m)
{
    (void)m;
    d->owner = 1;
    return H_OK;
}

static int h_reset(struct vhu_dev *d, struct vhu_msg *m)
{
    unsigned i;

    (void)m;
    for (i = 0; i < VHU_NUM_QUEUES; i++) {
        stop_ring(d, i);
        d->vq[i].enabled = 0;
    }
    device_reset(d);
    return H_OK;
}

static void unmap_all(struct vhu_dev *d)
{
    unsigned i;

    for (i = 0; i < VHU_NUM_QUEUES; i++)
        vring_unmap(&d->vq[i]);
    for (i = 0; i < VRING_MEM_MAX_REGIONS; i++) {
        if (d->map[i].base)
            munmap(d->map[i].base, d->map[i].len);
        d->map[i].base = NULL;
        d->map[i].len = 0;
    }
    memset(&d->mem, 0, sizeof(d->mem));
}

static int h_set_mem_table(struct vhu_dev *d, struct vhu_msg *m)
{
    const struct vhu_mem_table *t = &m->p.mem;
    struct vring_mem mem = { 0 };
    void *base[VRING_MEM_MAX_REGIONS] = { 0 };
    size_t len[VRING_MEM_MAX_REGIONS] = { 0 };
    uint32_t n = t->nregions, i, j;
    int rc = 0;

    if (n == 0 || n > VRING_MEM_MAX_REGIONS || m->size < 8 + n * sizeof(struct vhu_mem_region) ||
        m->nfds != n) {
        vlog_peer("SET_MEM_TABLE: %u regions, %u payload bytes, %u fds: refused", n, m->size, m->nfds);
        return -EINVAL;
    }
    for (i = 0; i < n && rc == 0; i++) {
        const struct vhu_mem_region *r = &t->r[i];
        struct stat st;
        void *p;

        /* Every sum below must fit: the region is used as [x, x + size). */
        if (r->size == 0 || r->gpa + r->size < r->gpa || r->uva + r->size < r->uva ||
            r->mmap_offset + r->size < r->mmap_offset || r->mmap_offset + r->size > (uint64_t)SIZE_MAX) {
            rc = -EINVAL;
            break;
        }
        for (j = 0; j < i; j++) {
            const struct vhu_mem_region *o = &t->r[j];

            if (r->gpa < o->gpa + o->size && o->gpa < r->gpa + r->size) {
                rc = -EINVAL; /* overlapping guest-physical ranges */
                break;
            }
        }
        if (rc)
            break;
        /* A file shorter than the region would SIGBUS us on first touch. */
        if (fstat(m->fds[i], &st) < 0 || (S_ISREG(st.st_mode) && (uint64_t)st.st_size < r->mmap_offset + r->size)) {
            rc = -EINVAL;
            break;
        }
        p = mmap(NULL, (size_t)(r->mmap_offset + r->size), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                 m->fds[i], 0);
        if (p == MAP_FAILED) {
            rc = -errno;
            break;
        }
        base[i] = p;
        len[i] = (size_t)(r->mmap_offset + r->size);
        mem.r[i].gpa = r->gpa;
        mem.r[i].size = r->size;
        mem.r[i].uva = r->uva;
        mem.r[i].host = (uint8_t *)p + r->mmap_offset;
    }
    if (rc < 0) {
        vlog_peer("SET_MEM_TABLE: region %u unusable: %s", i, strerror(-rc));
        for (j = 0; j < n; j++)
            if (base[j])
                munmap(base[j], len[j]);
        return rc;
    }
    mem.n = n;
    /* The new table replaces the old one only once it is wholly usable. */
    unmap_all(d);
    d->mem = mem;
    for (i = 0; i < n; i++) {
        d->map[i].base = base[i];
        d->map[i].len = len[i];
    }
    for (i = 0; i < VHU_NUM_QUEUES; i++)
        if (d->vq[i].addr_set && d->vq[i].num)
            (void)vring_map(&d->vq[i], &d->mem);
    return H_OK;
}

static int h_set_vring_num(struct vhu_dev *d, struct vhu_msg *m)
{
    struct vring *vq = ring(d, m->p.state.index);

    if (vq == NULL)
        return -EINVAL;
    return vring_set_num(vq, m->p.state.num);
}

static int h_set_vring_addr(struct vhu_dev *d, struct vhu_msg *m)
{
    const struct vhu_vring_addr *a = &m->p.addr;
    struct vring *vq = ring(d, a->index);
    int rc;

    if (vq == NULL)
        return -EINVAL;
    rc = vring_set_addr(vq, &d->mem, a->desc, a->avail, a->used);
    if (rc < 0) {
        vlog_peer("SET_VRING_ADDR %u: ring outside guest memory", a->index);
        return rc;
    }
    if (vq->desc)
        (void)vring_sync_used(vq);
    return H_OK;
}

static int h_set_vring_base(struct vhu_dev *d, struct vhu_msg *m)
{
    struct vring *vq = ring(d, m->p.state.index);

    if (vq == NULL || m->p.state.num > 0xffff)
        return -EINVAL;
    vq->last_avail = (uint16_t)m->p.state.num;
    return H_OK;
}

static int h_get_vring_base(struct vhu_dev *d, struct vhu_msg *m)
{
    struct vhu_vring_state s = { 0, 0 };
    struct vring *vq;

    /* Always answered, whatever the payload: QEMU blocks until it is. */
    if (m->size >= sizeof(uint32_t))
        s.index = m->p.state.index;
    vq = ring(d, s.index);
    if (vq) {
        s.num = vq->last_avail;
        stop_ring(d, s.index);
        if (s.index == VHU_QUEUE_RX || s.index == VHU_QUEUE_TX)
            device_reset(d);
    }
    return reply(d, m, &s, sizeof(s));
}

/* The common part of SET_VRING_KICK/CALL/ERR: the ring and its new fd. */
static int vring_fd_arg(struct vhu_msg *m, unsigned *idx, int *fd)
{
    uint64_t v = m->p.u64;

    if (v & ~(VHU_VRING_IDX_MASK | VHU_VRING_NOFD_MASK))
        return -EINVAL;
    *idx = (unsigned)(v & VHU_VRING_IDX_MASK);
    if (*idx >= VHU_NUM_QUEUES)
        return -EINVAL;
    if (v & VHU_VRING_NOFD_MASK) {
        if (m->nfds != 0)
            return -EINVAL;
        *fd = -1;
        return 0;
    }
    if (m->nfds != 1)
        return -EINVAL;
    *fd = take_fd(m, 0);
    return 0;
}

static int h_set_vring_kick(struct vhu_dev *d, struct vhu_msg *m)
{
    struct vring *vq;
    unsigned idx;
    int fd, rc = vring_fd_arg(m, &idx, &fd);

    if (rc < 0)
        return rc;
    if (fd < 0)
        return -EOPNOTSUPP; /* polling mode: not offered */
    vq = &d->vq[idx];
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        close(fd);
        return -EBADF;
    }
    if (idx != VHU_QUEUE_RX && idx != VHU_QUEUE_TX) {
        /* The event queue stays with QEMU; never poll it. */
        close(fd);
        return H_OK;
    }
    set_kick(d, idx, fd);
    /* vhost-user.rst: the ring starts once it has a kick fd. */
    if (!vq->started) {
        if (vq->desc)
            (void)vring_sync_used(vq);
        vq->started = 1;
    }
    return H_OK;
}

static int h_set_vring_call(struct vhu_dev *d, struct vhu_msg *m)
{
    unsigned idx;
    int fd, rc = vring_fd_arg(m, &idx, &fd);

    if (rc < 0)
        return rc;
    if (d->vq[idx].call_fd >= 0)
        close(d->vq[idx].call_fd);
    d->vq[idx].call_fd = fd;
    return H_OK;
}

static int h_set_vring_err(struct vhu_dev *d, struct vhu_msg *m)
{
    unsigned idx;
    int fd, rc = vring_fd_arg(m, &idx, &fd);

    if (rc < 0)
        return rc;
    if (d->vq[idx].err_fd >= 0)
        close(d->vq[idx].err_fd);
    d->vq[idx].err_fd = fd;
    return H_OK;
}

static int h_get_protocol_features(struct vhu_dev *d, struct vhu_msg *m)
{
    return reply_u64(d, m, VHU_PROTOCOL_FEATURES);
}

static int h_set_protocol_features(struct vhu_dev *d, struct vhu_msg *m)
{
    if (m->p.u64 & ~VHU_PROTOCOL_FEATURES)
        vlog_peer("front-end acked protocol features we did not offer: %#llx",
                  (unsigned long long)(m->p.u64 & ~VHU_PROTOCOL_FEATURES));
    d->protocol_features = m->p.u64 & VHU_PROTOCOL_FEATURES;
    return H_OK;
}

static int h_get_queue_num(struct vhu_dev *d, struct vhu_msg *m)
{
    return reply_u64(d, m, 2); /* rx and tx reach the back-end */
}

static int h_set_vring_enable(struct vhu_dev *d, struct vhu_msg *m)
{
    struct vring *vq = ring(d, m->p.state.index);

    if (vq == NULL || m->p.state.num > 1)
        return -EINVAL;
    vq->enabled = (int)m->p.state.num;
    return H_OK;
}

static int h_get_config(struct vhu_dev *d, struct vhu_msg *m)
{
    struct vhu_config c = { 0 };
    uint8_t space[8];
    uint64_t cid = d->guest_cid;
    uint32_t off = m->p.config.offset, size = m->p.config.size, i;

    /* struct virtio_vsock_config: le64 guest_cid. */
    for (i = 0; i < 8; i++)
        space[i] = (uint8_t)(cid >> (8 * i));
    if (size > VHU_CONFIG_MAX || m->size != VHU_CONFIG_HDR_SIZE + size || off > sizeof(space) ||
        size > sizeof(space) - off) {
        vlog_peer("GET_CONFIG offset %u size %u (payload %u): refused", off, size, m->size);
        /* An empty reply is the protocol's failure answer. */
        return reply(d, m, NULL, 0);
    }
    c.offset = off;
    c.size = size;
    c.flags = m->p.config.flags;
    memcpy(c.payload, space + off, size);
    return reply(d, m, &c, VHU_CONFIG_HDR_SIZE + size);
}

static int h_set_config(struct vhu_dev *d, struct vhu_msg *m)
{
    (void)d;
    (void)m;
    return -EPERM; /* guest_cid is read-only */
}

static const struct handler handlers[VHU_REQUEST_MAX] = {
    [VHU_GET_FEATURES] = { "GET_FEATURES", 0, 8, 1, h_get_features },
    [VHU_SET_FEATURES] = { "SET_FEATURES", 8, 8, 0, h_set_features },
    [VHU_SET_OWNER] = { "SET_OWNER", 0, 0, 0, h_set_owner },
    [VHU_RESET_OWNER] = { "RESET_OWNER", 0, 8, 0, h_reset },
    [VHU_SET_MEM_TABLE] = { "SET_MEM_TABLE", 8, sizeof(struct vhu_mem_table), 0, h_set_mem_table },
    [VHU_SET_VRING_NUM] = { "SET_VRING_NUM", 8, 8, 0, h_set_vring_num },
    [VHU_SET_VRING_ADDR] = { "SET_VRING_ADDR", sizeof(struct vhu_vring_addr), sizeof(struct vhu_vring_addr), 0,
                             h_set_vring_addr },
    [VHU_SET_VRING_BASE] = { "SET_VRING_BASE", 8, 8, 0, h_set_vring_base },
    [VHU_GET_VRING_BASE] = { "GET_VRING_BASE", 0, VHU_MAX_PAYLOAD, 1, h_get_vring_base },
    [VHU_SET_VRING_KICK] = { "SET_VRING_KICK", 8, 8, 0, h_set_vring_kick },
    [VHU_SET_VRING_CALL] = { "SET_VRING_CALL", 8, 8, 0, h_set_vring_call },
    [VHU_SET_VRING_ERR] = { "SET_VRING_ERR", 8, 8, 0, h_set_vring_err },
    [VHU_GET_PROTOCOL_FEATURES] = { "GET_PROTOCOL_FEATURES", 0, 8, 1, h_get_protocol_features },
    [VHU_SET_PROTOCOL_FEATURES] = { "SET_PROTOCOL_FEATURES", 8, 8, 0, h_set_protocol_features },
    [VHU_GET_QUEUE_NUM] = { "GET_QUEUE_NUM", 0, 8, 1, h_get_queue_num },
    [VHU_SET_VRING_ENABLE] = { "SET_VRING_ENABLE", 8, 8, 0, h_set_vring_enable },
    [VHU_GET_CONFIG] = { "GET_CONFIG", VHU_CONFIG_HDR_SIZE, sizeof(struct vhu_config), 1, h_get_config },
    [VHU_SET_CONFIG] = { "SET_CONFIG", VHU_CONFIG_HDR_SIZE, sizeof(struct vhu_config), 0, h_set_config },
    [VHU_RESET_DEVICE] = { "RESET_DEVICE", 0, 0, 0, h_reset },
};

const char *vhu_request_name(uint32_t request)
{
    if (request < VHU_REQUEST_MAX && handlers[request].name)
        return handlers[request].name;
    return "UNKNOWN";
}

/* ---- framing ----------------------------------------------------------------------- */

/* recvmsg() exactly len bytes, collecting SCM_RIGHTS fds into m.
 * Returns 1, 0 (EOF before the first byte) or -errno. */
static int recv_exact(int fd, void *buf, size_t len, struct vhu_msg *m)
{
    size_t got = 0;

    while (got < len) {
        union {
            char buf[CMSG_SPACE(VHU_MAX_FDS * sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = { (char *)buf + got, len - got };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                             .msg_controllen = sizeof(ctl.buf) };
        struct cmsghdr *cm;
        ssize_t r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            size_t n, i;

            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len < CMSG_LEN(0))
                continue;
            n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (i = 0; i < n; i++) {
                int f;

                memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                if (m->nfds < VHU_MAX_FDS) {
                    m->fds[m->nfds++] = f;
                } else {
                    close(f);
                    m->fds_truncated = 1;
                }
            }
        }
        if (mh.msg_flags & MSG_CTRUNC)
            m->fds_truncated = 1; /* the kernel closed the ones that did not fit */
        if (r == 0)
            return got == 0 ? 0 : -ECONNRESET;
        got += (size_t)r;
    }
    return 1;
}

int vhu_msg_read(int fd, struct vhu_msg *m)
{
    uint32_t hdr[3];
    unsigned i;
    int rc;

    memset(m, 0, offsetof(struct vhu_msg, p));
    for (i = 0; i < VHU_MAX_FDS; i++)
        m->fds[i] = -1;
    m->nfds = 0;
    m->fds_truncated = 0;
    rc = recv_exact(fd, hdr, sizeof(hdr), m);
    if (rc <= 0)
        goto fail;
    m->request = hdr[0];
    m->flags = hdr[1];
    m->size = hdr[2];
    if ((m->flags & VHU_VERSION_MASK) != VHU_VERSION) {
        rc = -EPROTO;
        goto fail;
    }
    /* Checked before reading a byte of it: the size decides how much of
     * the stream belongs to this message. */
    if (m->size > VHU_MAX_PAYLOAD) {
        rc = -EMSGSIZE;
        goto fail;
    }
    memset(&m->p, 0, sizeof(m->p));
    if (m->size) {
        rc = recv_exact(fd, m->p.raw, m->size, m);
        if (rc == 0)
            rc = -ECONNRESET;
        if (rc < 0)
            goto fail;
    }
    return 1;
fail:
    close_fds(m);
    return rc;
}

int vhu_handle(struct vhu_dev *d, struct vhu_msg *m)
{
    const struct handler *h = m->request < VHU_REQUEST_MAX ? &handlers[m->request] : NULL;
    int need_ack = (m->flags & VHU_FLAG_NEED_REPLY) && (d->protocol_features & (1ull << VHU_PROTOCOL_F_REPLY_ACK));
    int rc;

    if (h && h->fn == NULL)
        h = NULL;
    vlog(VLOG_DEBUG, "vhost-user %s (%u), %u bytes, %u fds", vhu_request_name(m->request), m->request, m->size,
         m->nfds);
    if (h == NULL) {
        vlog_peer("vhost-user request %u is not supported: refused", m->request);
        rc = -EOPNOTSUPP;
    } else if (m->size < h->min_size || m->size > h->max_size) {
        vlog_peer("vhost-user %s with a %u-byte payload (expected %u to %u): refused", h->name, m->size, h->min_size,
                  h->max_size);
        rc = -EINVAL;
    } else if (m->fds_truncated) {
        vlog_peer("vhost-user %s carried more than %d fds: refused", h->name, VHU_MAX_FDS);
        rc = -EINVAL;
    } else {
        rc = h->fn(d, m);
    }
    close_fds(m);
    if (d->dead)
        return -EPIPE;
    if (rc == H_REPLIED)
        return 0;
    if (h && h->must_reply) {
        /* A GET the handler could not answer still gets its (empty, so
         * failed) reply, or the front-end would wait forever. */
        if (h->fn == h_get_vring_base) {
            struct vhu_vring_state s = { 0, 0 };

            rc = reply(d, m, &s, sizeof(s));
        } else {
            rc = reply(d, m, NULL, 0);
        }
        return rc < 0 ? rc : 0;
    }
    if (need_ack) {
        rc = reply_u64(d, m, rc < 0 ? 1 : 0);
        return rc < 0 ? rc : 0;
    }
    return 0;
}

int vhu_dispatch(struct vhu_dev *d)
{
    struct vhu_msg m;
    int rc = vhu_msg_read(d->sock, &m);

    if (rc == 0)
        return -ECONNRESET;
    if (rc < 0) {
        vlog(VLOG_ERR, "vhost-user stream unreadable: %s", strerror(-rc));
        return rc;
    }
    return vhu_handle(d, &m);
}

/* ---- life ---------------------------------------------------------------------------- */

void vhu_init(struct vhu_dev *d, int sock, uint64_t guest_cid, const struct vhu_iface *iface, void *opaque)
{
    unsigned i;

    memset(d, 0, sizeof(*d));
    d->sock = sock;
    d->guest_cid = guest_cid;
    d->iface = iface;
    d->opaque = opaque;
    for (i = 0; i < VHU_NUM_QUEUES; i++)
        vring_init(&d->vq[i]);
}

void vhu_fini(struct vhu_dev *d)
{
    unsigned i;

    for (i = 0; i < VHU_NUM_QUEUES; i++) {
        set_kick(d, i, -1);
        vring_free(&d->vq[i]);
    }
    unmap_all(d);
}
