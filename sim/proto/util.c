/* SPDX-License-Identifier: MIT */
/*
 * util.c: small things every part needs: the monotonic clock, random bytes,
 * the default run folder and the trust check of folders, the request
 * deadline, and SipHash-2-4 (128-bit output) for ticket MACs.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hvproto/util.h"

void hvsim__set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

uint64_t hvsim__now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int hvsim__random(void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t r = getrandom(p, len, 0);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

const char *hvsim__default_dir(char *buf, size_t len)
{
    const char *d = getenv("HVSIM_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");

    if (d && *d)
        snprintf(buf, len, "%s", d);
    else if (xdg && *xdg)
        snprintf(buf, len, "%s/hvsim", xdg);
    else
        snprintf(buf, len, "/tmp/hvsim-%u", (unsigned)getuid());
    return buf;
}

/* The complaint about a folder, with what to do: which path, what is wrong. */
static int untrusted(const char *dir, int rc, char *err, size_t errlen, const char *what)
{
    hvsim__set_err(err, errlen,
                   "%s: %s; refusing to use it (another user could plant sockets or redirect files there). "
                   "Use a folder of your own: remove it, or point HVSIM_DIR (hvsimd --dir/--state-dir) at a "
                   "new path, which hvsimd creates with mode 0700",
                   dir, what);
    return rc;
}

/* Why st is not a folder the caller may trust, or NULL. */
static const char *trust_problem(const struct stat *st, char *buf, size_t len)
{
    if (S_ISLNK(st->st_mode))
        return "is a symbolic link";
    if (!S_ISDIR(st->st_mode))
        return "is not a directory";
    /* Root's folders are trusted too (as sshd's StrictModes does): only root
     * could plant anything there, and root is trusted anyway. A VM's owner
     * (vm add --owner) reaches its socket through a root daemon's folder. */
    if (st->st_uid != geteuid() && st->st_uid != 0) {
        snprintf(buf, len, "is owned by uid %u, not by you (uid %u)", (unsigned)st->st_uid, (unsigned)geteuid());
        return buf;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(buf, len, "is writable by %s (mode %04o)", st->st_mode & S_IWOTH ? "everyone" : "its group",
                 (unsigned)(st->st_mode & 07777));
        return buf;
    }
    return NULL;
}

int hvsim__dir_open_trusted(const char *dir, int create, char *err, size_t errlen)
{
    char why[96];
    const char *problem;
    struct stat st;
    int fd;

    if (create && mkdir(dir, 0700) < 0 && errno != EEXIST) {
        int rc = -errno;

        hvsim__set_err(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
        return rc;
    }
    /* lstat only names the problem; the verdict is taken on the opened fd. */
    if (lstat(dir, &st) < 0) {
        int rc = -errno;

        hvsim__set_err(err, errlen, "%s: %s", dir, strerror(errno));
        return rc;
    }
    if ((problem = trust_problem(&st, why, sizeof(why))) != NULL)
        return untrusted(dir, -EPERM, err, errlen, problem);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    /* A VM's owner (vm add --owner) may only search a root daemon's 0711
     * folder: O_PATH is enough to reach its socket (/proc/self/fd/N). */
    if (fd < 0 && errno == EACCES)
        fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int rc = errno == ELOOP ? -EPERM : -errno;

        if (rc == -EPERM)
            return untrusted(dir, rc, err, errlen, "is a symbolic link");
        hvsim__set_err(err, errlen, "%s: %s", dir, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) < 0 || (problem = trust_problem(&st, why, sizeof(why))) != NULL) {
        close(fd);
        return untrusted(dir, -EPERM, err, errlen, problem ? problem : "cannot be checked");
    }
    return fd;
}

int hvsim__request_timeout_ms(void)
{
    const char *v = getenv("HVSIM_REQUEST_TIMEOUT_MS");
    char *end;
    long ms;

    if (v == NULL || *v == '\0')
        return HVSIM_REQUEST_TIMEOUT_DEFAULT_MS;
    errno = 0;
    ms = strtol(v, &end, 10);
    if (errno || *end || ms < 1 || ms > 3600000)
        return HVSIM_REQUEST_TIMEOUT_DEFAULT_MS;
    return (int)ms;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                         \
    do {                                                                 \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);        \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                           \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                           \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);        \
    } while (0)

/* Little-endian loads and stores as one move each: SipHash signs every
 * connection's ticket, so its cost is on the connection path. */
static uint64_t load64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

static void store64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, sizeof(v));
}

void hvsim__siphash128(const uint8_t key[16], const void *data, size_t len, uint8_t out[16])
{
    const uint8_t *in = data;
    uint64_t k0 = load64(key), k1 = load64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = (uint64_t)len << 56, m;
    size_t i, left = len & 7;
    int r;

    v1 ^= 0xee;
    for (i = 0; i + 8 <= len; i += 8) {
        m = load64(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (r = (int)left - 1; r >= 0; r--)
        b |= (uint64_t)in[i + (size_t)r] << (8 * r);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xee;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    store64(out, v0 ^ v1 ^ v2 ^ v3);
    v1 ^= 0xdd;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    store64(out + 8, v0 ^ v1 ^ v2 ^ v3);
}

int hvsim__wait_readable(int fd, uint64_t deadline_ns)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        uint64_t now = hvsim__now_ns();
        int r;

        if (now >= deadline_ns)
            return -ETIMEDOUT;
        r = poll(&p, 1, (int)((deadline_ns - now + 999999) / 1000000u));
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}
