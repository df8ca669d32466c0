/* SPDX-License-Identifier: MIT */
/*
 * vring.c: split virtqueues in guest memory, for the vhost-user-vsock backend
 * (virtio 1.x section 2.7, "Split Virtqueues").
 *
 * The guest shares these pages with us and may change them at any moment, so
 * every field is loaded exactly once (through __atomic loads, which the
 * compiler may not repeat) into a local variable, checked, and only then
 * used. Ring fields are little-endian on the wire; le*toh keeps that explicit
 * even though the hosts we run on are little-endian.
 *
 * One chain per ring is outstanding at a time: the caller pops, handles and
 * pushes (or unpops) before popping again, which is all the vsock device
 * needs and keeps the iovec storage a fixed array of num entries.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vring.h"

static uint16_t rd16(const uint16_t *p)
{
    return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static uint32_t rd32(const uint32_t *p)
{
    return le32toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static uint64_t rd64(const uint64_t *p)
{
    return le64toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static void *translate(const struct vring_mem *m, uint64_t addr, uint64_t len, int by_uva)
{
    unsigned i;

    for (i = 0; i < m->n && i < VRING_MEM_MAX_REGIONS; i++) {
        const struct vring_mem_region *r = &m->r[i];
        uint64_t base = by_uva ? r->uva : r->gpa;
        uint64_t off;

        if (addr < base)
            continue;
        off = addr - base;
        /* Written as subtractions so that no sum can wrap around. */
        if (off >= r->size || len > r->size - off)
            continue;
        return r->host + off;
    }
    return NULL;
}

void *vring_mem_gpa(const struct vring_mem *m, uint64_t gpa, uint64_t len)
{
    return translate(m, gpa, len, 0);
}

void *vring_mem_uva(const struct vring_mem *m, uint64_t uva, uint64_t len)
{
    return translate(m, uva, len, 1);
}

void vring_init(struct vring *vq)
{
    memset(vq, 0, sizeof(*vq));
    vq->kick_fd = vq->call_fd = vq->err_fd = -1;
}

int vring_set_num(struct vring *vq, unsigned num)
{
    struct vring_iov *iov;

    if (num == 0 || num > VRING_MAX_NUM || (num & (num - 1)) != 0)
        return -EINVAL;
    if (num != vq->num || vq->iov == NULL) {
        iov = calloc(num, sizeof(*iov));
        if (iov == NULL)
            return -ENOMEM;
        free(vq->iov);
        vq->iov = iov;
    }
    /* The sizes of the parts depend on num: map again on SET_VRING_ADDR. */
    vq->num = num;
    vring_unmap(vq);
    return 0;
}

void vring_unmap(struct vring *vq)
{
    vq->desc = NULL;
    vq->avail = NULL;
    vq->used = NULL;
}

int vring_map(struct vring *vq, const struct vring_mem *m)
{
    uint64_t n = vq->num;
    void *d, *a, *u;

    vring_unmap(vq);
    if (n == 0 || !vq->addr_set)
        return -EINVAL;
    /* Sizes from virtio 1.x 2.7: the trailing used_event/avail_event words
     * are only there with EVENT_IDX, which we never negotiate. */
    d = vring_mem_uva(m, vq->desc_uva, 16 * n);
    a = vring_mem_uva(m, vq->avail_uva, 4 + 2 * n);
    u = vring_mem_uva(m, vq->used_uva, 4 + 8 * n);
    if (d == NULL || a == NULL || u == NULL)
        return -EFAULT;
    /* Misaligned parts would make our 16/32-bit atomic accesses undefined. */
    if (((uintptr_t)d & 15) || ((uintptr_t)a & 1) || ((uintptr_t)u & 3))
        return -EFAULT;
    vq->desc = d;
    vq->avail = a;
    vq->used = u;
    return 0;
}

int vring_set_addr(struct vring *vq, const struct vring_mem *m, uint64_t desc, uint64_t avail, uint64_t used)
{
    vq->desc_uva = desc;
    vq->avail_uva = avail;
    vq->used_uva = used;
    vq->addr_set = 1;
    return vring_map(vq, m) == -EFAULT ? -EFAULT : 0;
}

int vring_sync_used(struct vring *vq)
{
    if (vq->used == NULL)
        return -EINVAL;
    vq->used_idx = rd16(&vq->used->idx);
    vq->signalled_used = vq->used_idx;
    return 0;
}

int vring_ready(const struct vring *vq)
{
    return vq->started && vq->enabled && vq->desc != NULL && vq->iov != NULL;
}

int vring_avail_pending(const struct vring *vq)
{
    uint16_t idx, pending;

    if (vq->avail == NULL)
        return 0;
    idx = le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));
    pending = (uint16_t)(idx - vq->last_avail);
    /* The driver can have at most num buffers outstanding (libvhost-user's
     * "Guest moved used index from %u to %u" check). */
    if (pending > vq->num)
        return -EPROTO;
    return pending;
}

int vring_pop(struct vring *vq, const struct vring_mem *m, struct vring_chain *c)
{
    uint16_t idx, pending, head, i;
    unsigned count = 0, niov = 0, nout = 0;
    uint64_t out_len = 0, in_len = 0;
    int seen_write = 0;

    if (!vring_ready(vq))
        return 0;
    /* Load-acquire: the ring entries and descriptors read below were
     * written before the driver published this index (smp_rmb pairing with
     * the driver's smp_wmb before its avail->idx store). */
    idx = le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));
    pending = (uint16_t)(idx - vq->last_avail);
    if (pending == 0)
        return 0;
    if (pending > vq->num)
        return -EPROTO;
    head = rd16(&vq->avail->ring[vq->last_avail & (vq->num - 1)]);
    if (head >= vq->num)
        return -EPROTO;
    i = head;
    for (;;) {
        const struct vring_desc_raw *dp = &vq->desc[i];
        uint64_t addr = rd64(&dp->addr);
        uint32_t len = rd32(&dp->len);
        uint16_t flags = rd16(&dp->flags);
        uint16_t next = rd16(&dp->next);
        uint8_t *p;

        /* A chain longer than the ring must contain a loop. */
        if (++count > vq->num)
            return -EPROTO;
        if (flags & VRING_DESC_F_INDIRECT)
            return -EPROTO; /* VIRTIO_F_INDIRECT_DESC was not negotiated */
        if (flags & VRING_DESC_F_WRITE)
            seen_write = 1;
        else if (seen_write)
            return -EPROTO; /* 2.7.4.2: readable descriptors come first */
        if (len > 0) {
            p = vring_mem_gpa(m, addr, len);
            if (p == NULL)
                return -EFAULT;
            /* count <= num bounds niov by the array size. */
            vq->iov[niov].base = p;
            vq->iov[niov].len = len;
            niov++;
            if (flags & VRING_DESC_F_WRITE) {
                in_len += len;
            } else {
                out_len += len;
                nout++;
            }
        }
        if (!(flags & VRING_DESC_F_NEXT))
            break;
        if (next >= vq->num)
            return -EPROTO;
        i = next;
    }
    c->head = head;
    c->nout = nout;
    c->nin = niov - nout;
    c->out_len = out_len;
    c->in_len = in_len;
    c->iov = vq->iov;
    vq->last_avail++;
    return 1;
}

void vring_unpop(struct vring *vq)
{
    vq->last_avail--;
}

void vring_push(struct vring *vq, uint16_t head, uint32_t written)
{
    struct vring_used_elem_raw *e;

    if (vq->used == NULL)
        return;
    e = &vq->used->ring[vq->used_idx & (vq->num - 1)];
    __atomic_store_n(&e->id, htole32(head), __ATOMIC_RELAXED);
    __atomic_store_n(&e->len, htole32(written), __ATOMIC_RELAXED);
    vq->used_idx++;
    /* Store-release (smp_wmb): the element, and the buffer contents written
     * before it, are visible before the driver can see the new index. */
    __atomic_store_n(&vq->used->idx, htole16(vq->used_idx), __ATOMIC_RELEASE);
}

int vring_notify(struct vring *vq)
{
    uint64_t one = 1;
    uint16_t flags;

    if (vq->used == NULL || vq->avail == NULL || vq->used_idx == vq->signalled_used)
        return 0;
    /* Full barrier (smp_mb): the used->idx store above must be visible
     * before we read the driver's flags, or a driver that clears
     * NO_INTERRUPT and then checks used->idx could miss both our store and
     * our interrupt. A sequentially consistent read-modify-write of the
     * index (adding nothing) and a sequentially consistent load of the flags
     * give that order (a locked instruction on x86), and ThreadSanitizer
     * understands them, where it cannot model a bare fence (-Wtsan). */
    (void)__atomic_fetch_add(&vq->used->idx, 0, __ATOMIC_SEQ_CST);
    flags = le16toh(__atomic_load_n(&vq->avail->flags, __ATOMIC_SEQ_CST));
    vq->signalled_used = vq->used_idx;
    if ((flags & VRING_AVAIL_F_NO_INTERRUPT) || vq->call_fd < 0)
        return 0;
    if (write(vq->call_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        return -errno;
    return 1;
}

void vring_close_fds(struct vring *vq)
{
    if (vq->kick_fd >= 0)
        close(vq->kick_fd);
    if (vq->call_fd >= 0)
        close(vq->call_fd);
    if (vq->err_fd >= 0)
        close(vq->err_fd);
    vq->kick_fd = vq->call_fd = vq->err_fd = -1;
}

void vring_free(struct vring *vq)
{
    vring_close_fds(vq);
    free(vq->iov);
    vring_init(vq);
}
