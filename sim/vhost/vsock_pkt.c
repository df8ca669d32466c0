/* SPDX-License-Identifier: MIT */
/*
 * vsock_pkt.c: the virtio-vsock packet header and the byte cursor that reads
 * packets out of transmit chains and writes them into receive chains, however
 * the guest split its buffers (reference 1.3 and 1.6).
 *
 * The header is decoded field by field from a local copy: guest memory is
 * shared and may change under us, and the struct is packed, so it is never
 * accessed in place.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vsock_pkt.h"

static uint16_t get16(const uint8_t *p)
{
    uint16_t v;

    memcpy(&v, p, sizeof(v));
    return le16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

static void put16(uint8_t *p, uint16_t v)
{
    v = htole16(v);
    memcpy(p, &v, sizeof(v));
}

static void put32(uint8_t *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, sizeof(v));
}

void vpkt_hdr_decode(const uint8_t raw[VPKT_HDR_LEN], struct vpkt_hdr *h)
{
    h->src_cid = get64(raw + 0);
    h->dst_cid = get64(raw + 8);
    h->src_port = get32(raw + 16);
    h->dst_port = get32(raw + 20);
    h->len = get32(raw + 24);
    h->type = get16(raw + 28);
    h->op = get16(raw + 30);
    h->flags = get32(raw + 32);
    h->buf_alloc = get32(raw + 36);
    h->fwd_cnt = get32(raw + 40);
}

void vpkt_hdr_encode(const struct vpkt_hdr *h, uint8_t raw[VPKT_HDR_LEN])
{
    put64(raw + 0, h->src_cid);
    put64(raw + 8, h->dst_cid);
    put32(raw + 16, h->src_port);
    put32(raw + 20, h->dst_port);
    put32(raw + 24, h->len);
    put16(raw + 28, h->type);
    put16(raw + 30, h->op);
    put32(raw + 32, h->flags);
    put32(raw + 36, h->buf_alloc);
    put32(raw + 40, h->fwd_cnt);
}

const char *vpkt_op_name(unsigned op, char *buf, size_t len)
{
    static const char *const names[] = {
        [VPKT_OP_INVALID] = "INVALID",
        [VPKT_OP_REQUEST] = "REQUEST",
        [VPKT_OP_RESPONSE] = "RESPONSE",
        [VPKT_OP_RST] = "RST",
        [VPKT_OP_SHUTDOWN] = "SHUTDOWN",
        [VPKT_OP_RW] = "RW",
        [VPKT_OP_CREDIT_UPDATE] = "CREDIT_UPDATE",
        [VPKT_OP_CREDIT_REQUEST] = "CREDIT_REQUEST",
    };

    if (op < sizeof(names) / sizeof(names[0]))
        return names[op];
    snprintf(buf, len, "op %u", op);
    return buf;
}

/* ---- cursor ------------------------------------------------------------------ */

/* Step over exhausted (and empty) segments. */
static void settle(struct vpkt_cursor *c)
{
    while (c->i < c->n && c->off >= c->iov[c->i].len) {
        c->i++;
        c->off = 0;
    }
}

void vpkt_cursor_init(struct vpkt_cursor *c, const struct vring_iov *iov, unsigned n, uint64_t limit)
{
    c->iov = iov;
    c->n = n;
    c->i = 0;
    c->off = 0;
    c->left = limit;
    settle(c);
}

size_t vpkt_cursor_peek(const struct vpkt_cursor *c, uint8_t **p, size_t max)
{
    size_t avail;

    if (c->i >= c->n || c->left == 0)
        return 0;
    avail = c->iov[c->i].len - c->off;
    if (avail > c->left)
        avail = (size_t)c->left;
    if (avail > max)
        avail = max;
    *p = c->iov[c->i].base + c->off;
    return avail;
}

size_t vpkt_cursor_skip(struct vpkt_cursor *c, size_t len)
{
    size_t done = 0;

    while (done < len) {
        uint8_t *p;
        size_t k = vpkt_cursor_peek(c, &p, len - done);

        if (k == 0)
            break;
        c->off += k;
        c->left -= k;
        done += k;
        settle(c);
    }
    return done;
}

size_t vpkt_cursor_read(struct vpkt_cursor *c, void *dst, size_t len)
{
    size_t done = 0;

    while (done < len) {
        uint8_t *p;
        size_t k = vpkt_cursor_peek(c, &p, len - done);

        if (k == 0)
            break;
        memcpy((uint8_t *)dst + done, p, k);
        c->off += k;
        c->left -= k;
        done += k;
        settle(c);
    }
    return done;
}

size_t vpkt_cursor_write(struct vpkt_cursor *c, const void *src, size_t len)
{
    size_t done = 0;

    while (done < len) {
        uint8_t *p;
        size_t k = vpkt_cursor_peek(c, &p, len - done);

        if (k == 0)
            break;
        memcpy(p, (const uint8_t *)src + done, k);
        c->off += k;
        c->left -= k;
        done += k;
        settle(c);
    }
    return done;
}

/* ---- packets --------------------------------------------------------------------- */

int vpkt_tx_parse(const struct vring_chain *c, struct vpkt_tx *out)
{
    uint8_t raw[VPKT_HDR_LEN];
    struct vpkt_cursor cur;

    memset(out, 0, sizeof(*out));
    vpkt_cursor_init(&cur, c->iov, c->nout, c->out_len);
    /* The header may be split across descriptors anywhere (even mid-field):
     * copy it out first, then decode the copy. */
    if (vpkt_cursor_read(&cur, raw, sizeof(raw)) != sizeof(raw))
        return -EBADMSG;
    vpkt_hdr_decode(raw, &out->hdr);
    if (out->hdr.len > VPKT_MAX_PAYLOAD || out->hdr.len > c->out_len - VPKT_HDR_LEN)
        return -EMSGSIZE;
    /* The driver may supply more bytes than len: only len are meaningful. */
    out->payload = cur;
    out->payload.left = out->hdr.len;
    return 0;
}

int64_t vpkt_rx_begin(const struct vring_chain *c, struct vpkt_cursor *payload)
{
    uint64_t room;

    if (c->in_len < VPKT_HDR_LEN)
        return -ENOBUFS;
    room = c->in_len - VPKT_HDR_LEN;
    if (room > VPKT_MAX_PAYLOAD)
        room = VPKT_MAX_PAYLOAD;
    vpkt_cursor_init(payload, c->iov + c->nout, c->nin, VPKT_HDR_LEN + room);
    vpkt_cursor_skip(payload, VPKT_HDR_LEN);
    return (int64_t)room;
}

uint32_t vpkt_rx_finish(const struct vring_chain *c, const struct vpkt_hdr *h)
{
    uint8_t raw[VPKT_HDR_LEN];
    struct vpkt_cursor cur;

    vpkt_hdr_encode(h, raw);
    vpkt_cursor_init(&cur, c->iov + c->nout, c->nin, VPKT_HDR_LEN);
    vpkt_cursor_write(&cur, raw, sizeof(raw));
    return VPKT_HDR_LEN + h->len;
}
