/* SPDX-License-Identifier: MIT */
/*
 * vring.h: guest memory and split virtqueues for the vhost-user-vsock backend.
 *
 * The guest's RAM arrives as up to 8 regions (SET_MEM_TABLE); struct
 * vring_mem translates guest-physical addresses (descriptor buffers) and the
 * front-end's virtual addresses (ring addresses from SET_VRING_ADDR) into
 * local pointers, and only for ranges that lie wholly inside one region.
 *
 * struct vring is one split virtqueue (virtio 1.x, 2.7): the three parts in
 * guest memory, our private indices, and the eventfds. Everything the guest
 * wrote is read once into a local copy and checked before use, so a hostile
 * or broken guest can make vring_pop() fail but never read or write outside
 * the mapped regions. VIRTIO_F_EVENT_IDX and indirect descriptors are not
 * offered, so neither is implemented; a guest that uses them anyway is broken.
 */
#ifndef HVSIM_VHOST_VRING_H
#define HVSIM_VHOST_VRING_H

#include <stddef.h>
#include <stdint.h>

#define VRING_MAX_NUM 32768u /* virtio 1.x: Queue Size is at most 32768 */
#define VRING_MEM_MAX_REGIONS 8 /* VHOST_MEMORY_BASELINE_NREGIONS */

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1

/* One region of guest RAM, mapped here. */
struct vring_mem_region {
    uint64_t gpa; /* guest-physical address of the first byte */
    uint64_t size; /* bytes */
    uint64_t uva; /* the front-end's (QEMU's) virtual address of the first byte */
    uint8_t *host; /* our address of the first byte */
};

struct vring_mem {
    unsigned n;
    struct vring_mem_region r[VRING_MEM_MAX_REGIONS];
};

/* The split ring's parts as they lie in guest memory (little-endian). */
struct vring_desc_raw {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vring_avail_raw {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[]; /* num entries */
};

struct vring_used_elem_raw {
    uint32_t id;
    uint32_t len;
};

struct vring_used_raw {
    uint16_t flags;
    uint16_t idx;
    struct vring_used_elem_raw ring[]; /* num entries */
};

/* One contiguous piece of a buffer, in our address space. */
struct vring_iov {
    uint8_t *base;
    size_t len;
};

/* A popped descriptor chain. iov[0, nout) are driver-readable (the device
 * reads them), iov[nout, nout + nin) device-writable; zero-length
 * descriptors are left out. iov points into the ring's own array, so it is
 * valid until the next vring_pop() on the same ring. */
struct vring_chain {
    uint16_t head;
    unsigned nout, nin;
    uint64_t out_len, in_len; /* total bytes of each part */
    struct vring_iov *iov;
};

struct vring {
    unsigned num; /* queue size; 0 until SET_VRING_NUM */
    int addr_set; /* SET_VRING_ADDR seen: desc_uva.. are valid */
    uint64_t desc_uva, avail_uva, used_uva; /* as the front-end gave them */
    struct vring_desc_raw *desc; /* NULL while not mapped */
    struct vring_avail_raw *avail;
    struct vring_used_raw *used;
    uint16_t last_avail; /* next avail entry we pop (SET/GET_VRING_BASE) */
    uint16_t used_idx; /* next used entry we fill: our copy of used->idx */
    uint16_t signalled_used; /* used_idx at the last call eventfd write */
    int kick_fd, call_fd, err_fd; /* -1: none */
    int started; /* kicked into life by SET_VRING_KICK, stopped by GET_VRING_BASE */
    int enabled; /* SET_VRING_ENABLE */
    struct vring_iov *iov; /* num entries: one popped chain at a time */
};

/**
 * vring_mem_gpa: translate a guest-physical range.
 * @m: the memory table
 * @gpa: first byte
 * @len: length in bytes (0 is allowed and needs gpa inside a region)
 *
 * Returns our pointer to gpa when [gpa, gpa + len) lies wholly inside one
 * region (without wrapping), else NULL.
 */
void *vring_mem_gpa(const struct vring_mem *m, uint64_t gpa, uint64_t len);

/**
 * vring_mem_uva: vring_mem_gpa() for the front-end's virtual addresses.
 */
void *vring_mem_uva(const struct vring_mem *m, uint64_t uva, uint64_t len);

/** vring_init: an unconfigured ring with no fds. */
void vring_init(struct vring *vq);

/**
 * vring_set_num: SET_VRING_NUM.
 * Returns 0, -EINVAL unless num is a power of two in [1, 32768], -ENOMEM.
 */
int vring_set_num(struct vring *vq, unsigned num);

/**
 * vring_set_addr: SET_VRING_ADDR, then vring_map().
 * Returns 0 or -EFAULT when the parts are not inside guest memory (the
 * addresses are kept: a later SET_MEM_TABLE may make them valid).
 */
int vring_set_addr(struct vring *vq, const struct vring_mem *m, uint64_t desc, uint64_t avail, uint64_t used);

/**
 * vring_map: (re)translate the ring's parts after a memory table change.
 * Checks that each part, sized for num, lies inside one region and is
 * aligned (desc 16, avail 2, used 4). Returns 0, -EINVAL (no num or
 * address yet) or -EFAULT; on failure the ring is unmapped.
 */
int vring_map(struct vring *vq, const struct vring_mem *m);

/** vring_unmap: forget the local pointers (memory table about to go). */
void vring_unmap(struct vring *vq);

/**
 * vring_sync_used: take used->idx from guest memory as our used index, as a
 * ring (re)starts after SET_VRING_BASE. Returns 0 or -EINVAL when unmapped.
 */
int vring_sync_used(struct vring *vq);

/** vring_ready: mapped, started and enabled: may be processed. */
int vring_ready(const struct vring *vq);

/**
 * vring_pop: take the next available chain.
 * @vq: a ready ring
 * @m: the memory table the chain's buffers are translated through
 * @c: filled on success
 *
 * Every guest-supplied value is checked: the avail index may move by at most
 * num, the head and every next index must be < num, a chain has at most num
 * descriptors (no loops), every buffer lies inside one region, no readable
 * descriptor follows a writable one, and indirect descriptors (not
 * negotiated) are refused.
 *
 * Returns 1 (a chain), 0 (ring empty) or a negative errno when the guest
 * broke the ring (-EPROTO, -EFAULT); the ring state is then unchanged and
 * the caller marks the device broken.
 */
int vring_pop(struct vring *vq, const struct vring_mem *m, struct vring_chain *c);

/** vring_unpop: give back the chain popped last (not yet pushed). */
void vring_unpop(struct vring *vq);

/**
 * vring_push: mark a chain used with @written bytes written by the device
 * and publish the used index. No notification: see vring_notify().
 */
void vring_push(struct vring *vq, uint16_t head, uint32_t written);

/**
 * vring_notify: signal the call eventfd if entries were pushed since the
 * last signal and the driver did not set VRING_AVAIL_F_NO_INTERRUPT.
 * Returns 1 when signalled, 0 when not needed, or -errno of the write.
 */
int vring_notify(struct vring *vq);

/** vring_avail_pending: entries the guest made available and we did not pop
 * yet, or -EPROTO when its index moved by more than num. */
int vring_avail_pending(const struct vring *vq);

/** vring_close_fds: close kick, call and err eventfds. */
void vring_close_fds(struct vring *vq);

/** vring_free: release the ring's memory and fds (vring_init() state). */
void vring_free(struct vring *vq);

#endif /* HVSIM_VHOST_VRING_H */
