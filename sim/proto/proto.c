/* SPDX-License-Identifier: MIT */
/*
 * proto.c: sending, receiving and validating the control messages of
 * proto.h, and signing the connection ticket. Shared by libhvsim and hvsimd,
 * so both ends check lengths the same way.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hvproto/util.h"
#include "hvproto/proto.h"

static const struct {
    const char *name;
    size_t size;
    int variable;
} msg_table[HVSIM_MSG_COUNT] = {
    [HVSIM_MSG_NONE] = { "NONE", 0, 0 },
#define X(name, type, var) [HVSIM_MSG_##name] = { #name, sizeof(type), var },
    HVSIM_MSG_MAP(X)
#undef X
};

size_t hvsim__msg_size(unsigned type)
{
    return type < HVSIM_MSG_COUNT ? msg_table[type].size : 0;
}

int hvsim__msg_variable(unsigned type)
{
    return type < HVSIM_MSG_COUNT ? msg_table[type].variable : 0;
}

const char *hvsim__msg_name(unsigned type)
{
    return type > HVSIM_MSG_NONE && type < HVSIM_MSG_COUNT ? msg_table[type].name : "UNKNOWN";
}

int hvsim__msg_check(const void *buf, size_t n)
{
    struct hvsim_msg_hdr h;
    size_t want;

    if (n < sizeof(h))
        return -EPROTO;
    memcpy(&h, buf, sizeof(h));
    if (h.type == HVSIM_MSG_NONE || h.type >= HVSIM_MSG_COUNT)
        return -EPROTO;
    if ((size_t)h.len != n - sizeof(h))
        return -EPROTO;
    /* A failed reply may be the header and an error text only. */
    if (h.status < 0)
        return 0;
    want = msg_table[h.type].size;
    if (msg_table[h.type].variable ? h.len < want : h.len != want)
        return -EPROTO;
    return 0;
}

static struct {
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    int (*close)(int);
} io = { sendmsg, recvmsg, close };

void hvsim__msg_io(ssize_t (*sendmsg_fn)(int, const struct msghdr *, int),
                   ssize_t (*recvmsg_fn)(int, struct msghdr *, int), int (*close_fn)(int))
{
    io.sendmsg = sendmsg_fn;
    io.recvmsg = recvmsg_fn;
    io.close = close_fn;
}

void hvsim__msg_put_fd(struct msghdr *m, void *ctl, size_t ctl_len, int fd)
{
    struct cmsghdr *c;

    memset(ctl, 0, ctl_len);
    m->msg_control = ctl;
    m->msg_controllen = ctl_len;
    c = CMSG_FIRSTHDR(m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
}

int hvsim__msg_send(int fd, unsigned type, int32_t status, uint32_t seq, const void *body, size_t blen,
                    const void *extra, size_t elen, int pass_fd)
{
    struct hvsim_msg_hdr h = { .type = (uint16_t)type, .status = status, .seq = seq };
    struct iovec iov[3];
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = 0 };
    ssize_t r;

    if (sizeof(h) + blen + elen > HVSIM_MSG_MAX)
        return -EMSGSIZE;
    h.len = (uint32_t)(blen + elen);
    iov[m.msg_iovlen++] = (struct iovec){ &h, sizeof(h) };
    if (blen)
        iov[m.msg_iovlen++] = (struct iovec){ (void *)body, blen };
    if (elen)
        iov[m.msg_iovlen++] = (struct iovec){ (void *)extra, elen };
    if (pass_fd >= 0)
        hvsim__msg_put_fd(&m, ctl.buf, sizeof(ctl.buf), pass_fd);
    do
        r = io.sendmsg(fd, &m, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    return 0;
}

ssize_t hvsim__msg_recv(int fd, void *buf, size_t cap, int *got_fd)
{
    struct iovec iov = { buf, cap };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } ctl;
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
    struct cmsghdr *c;
    ssize_t r;
    int rc;

    if (got_fd)
        *got_fd = -1;
    do
        r = io.recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    /* Keep at most one passed fd, and only where the caller asked for one:
     * anything else a peer sends is closed, never leaked. */
    for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k, nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

            for (k = 0; k < nfd; k++) {
                int pfd;

                memcpy(&pfd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
                if (got_fd && *got_fd < 0)
                    *got_fd = pfd;
                else
                    io.close(pfd);
            }
        }
    }
    if (r == 0) {
        /* EOF, or an empty packet that smuggled an fd: neither keeps it. */
        if (got_fd && *got_fd >= 0) {
            io.close(*got_fd);
            *got_fd = -1;
        }
        return 0;
    }
    rc = (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ? -EPROTO : hvsim__msg_check(buf, (size_t)r);
    if (rc < 0) {
        if (got_fd && *got_fd >= 0) {
            io.close(*got_fd);
            *got_fd = -1;
        }
        return rc;
    }
    return r;
}

void hvsim__ticket_sign(struct hvsim_ticket *t, const uint8_t key[16])
{
    hvsim__siphash128(key, t, offsetof(struct hvsim_ticket, mac), t->mac);
}

int hvsim__ticket_verify(const struct hvsim_ticket *t, const uint8_t key[16])
{
    uint8_t mac[16];
    uint8_t diff = 0;
    size_t i;

    if (t->magic != HVSIM_TICKET_MAGIC || t->version != HVSIM_PROTO_VERSION)
        return -EPROTO;
    hvsim__siphash128(key, t, offsetof(struct hvsim_ticket, mac), mac);
    for (i = 0; i < sizeof(mac); i++)
        diff |= (uint8_t)(mac[i] ^ t->mac[i]);
    return diff ? -EACCES : 0;
}

/* Domain separation: a tag is never a ticket MAC of something else. */
void hvsim__conn_tag(uint64_t conn_id, const uint8_t key[16], uint8_t tag[16])
{
    uint8_t msg[16] = { 'h', 'v', 's', 'i', 'm', '-', 't', 'a', 'g' };

    memcpy(msg + 8, &conn_id, sizeof(conn_id));
    hvsim__siphash128(key, msg, sizeof(msg), tag);
}

static const char hexdig[] = "0123456789abcdef";

/* Every connect formats a name and every accept parses one: a byte at a
 * time through tables, not through stdio. */
static void put_hex(char *out, const uint8_t *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hexdig[b[i] >> 4];
        out[2 * i + 1] = hexdig[b[i] & 0xf];
    }
}

void hvsim__conn_name(uint64_t conn_id, const uint8_t tag[16], char out[HVSIM_CONN_NAME_LEN + 1])
{
    size_t n = sizeof(HVSIM_CONN_NAME_PREFIX) - 1;
    uint8_t id[8];
    int i;

    for (i = 0; i < 8; i++)
        id[i] = (uint8_t)(conn_id >> (56 - 8 * i));
    memcpy(out, HVSIM_CONN_NAME_PREFIX, n);
    put_hex(out + n, id, sizeof(id));
    out[n + 16] = '-';
    put_hex(out + n + 17, tag, 16);
    out[HVSIM_CONN_NAME_LEN] = '\0';
}

/* 0-15 for a lower-case hex digit, 16 for anything else. */
static uint8_t hexval_table[256];

static void hexval_init(void)
{
    int i;

    memset(hexval_table, 16, sizeof(hexval_table));
    for (i = 0; i < 16; i++)
        hexval_table[(unsigned char)hexdig[i]] = (uint8_t)i;
}

static int get_hex(const char *in, uint8_t *out, size_t n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    unsigned bad = 0;
    size_t i;

    pthread_once(&once, hexval_init);
    for (i = 0; i < n; i++) {
        uint8_t hi = hexval_table[(unsigned char)in[2 * i]], lo = hexval_table[(unsigned char)in[2 * i + 1]];

        bad |= (unsigned)(hi | lo) & 16u;
        out[i] = (uint8_t)(hi << 4 | (lo & 0xf));
    }
    return bad == 0;
}

/* Parse the id and the tag of a connector's name; 0 when it is none. */
static int conn_name_parse(const char *name, size_t len, uint64_t *id, uint8_t tag[16])
{
    size_t n = sizeof(HVSIM_CONN_NAME_PREFIX) - 1;
    uint8_t b[8];
    int i;

    if (len != HVSIM_CONN_NAME_LEN || memcmp(name, HVSIM_CONN_NAME_PREFIX, n) != 0 || name[n + 16] != '-' ||
        !get_hex(name + n, b, sizeof(b)) || !get_hex(name + n + 17, tag, 16))
        return 0;
    *id = 0;
    for (i = 0; i < 8; i++)
        *id = *id << 8 | b[i];
    return 1;
}

int hvsim__conn_name_check(const char *name, size_t len, const uint8_t key[16], uint64_t *conn_id)
{
    uint8_t want[16], got[16], diff = 0;
    uint64_t id;
    size_t i;

    if (!conn_name_parse(name, len, &id, got))
        return 0;
    hvsim__conn_tag(id, key, want);
    for (i = 0; i < 16; i++) /* constant time, as for the ticket */
        diff |= (uint8_t)(want[i] ^ got[i]);
    if (diff != 0)
        return 0;
    *conn_id = id;
    return 1;
}

int hvsim__listener_name_ok(const char *name)
{
    uint8_t b[HVSIM_LISTENER_NAME_LEN / 2];

    return strnlen(name, HVSIM_LISTENER_NAME_LEN + 1) == HVSIM_LISTENER_NAME_LEN &&
           get_hex(name, b, sizeof(b));
}
