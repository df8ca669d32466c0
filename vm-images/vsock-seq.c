// SPDX-License-Identifier: MIT
// vsock-seq: an unmodified SOCK_SEQPACKET program over AF_VSOCK (plain socket
// API, nothing of hvsim's), for the seqpacket tests of issue 15. One side
// listens, the other connects, and both run the same exchange:
//
//   vsock-seq listen PORT [MAX]        accept one connection on PORT
//   vsock-seq connect CID PORT [MAX]   connect to CID:PORT (a VM's name is not taken: a number)
//
//   1. the connector sends one message of each size of SIZES (1 byte to
//      64 KiB); the acceptor receives each into a larger buffer and checks
//      its length, its bytes and that MSG_TRUNC is clear; 2. the same the
//      other way;
//   3. truncation, connector to acceptor: a 100-byte message read into 10
//      bytes gives 10 and MSG_TRUNC in msg_flags; one read with the MSG_TRUNC
//      flag gives the real length (100); the next message (7 bytes) comes
//      whole, so the cut-off rest of the first was dropped; 4. the other way;
//   5. each side sends one message of MAX + 1 bytes (MAX: the peer's buffer,
//      default 262144, vsock's default buffer size): it must fail, and the
//      errno is printed ("SEQ info too-big EMSGSIZE") for the caller to
//      check: 6.1 turns the transport's EMSGSIZE into ENOMEM (reference 9.2);
//   6. one message sent with MSG_EOR each way: whether MSG_EOR came with it
//      is printed ("SEQ info recv-eor MSG_EOR" or "... none") for the caller
//      to check (docs/reference/vsock-virtio.md 1.9 and 9.2);
//   7. "bye" each way, then close.
//
// Each check prints "SEQ <name> ok" or "SEQ <name> FAIL <why>"; the last
// line is "SEQ PASS" or "SEQ FAIL <count>", and the exit status 0 or 1.
//
// SAFETY: it opens AF_VSOCK sockets, so it refuses to run except inside the
// project's QEMU test guest (hvsim.guest=1 on the kernel command line) or
// under hvsim-run (a seccomp filter installed and HVSIM_PARTITION set), where
// its sockets are hvsim's and never the machine's own vsock.
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#ifndef SOCK_SEQPACKET
#define SOCK_SEQPACKET 5
#endif

#define TIMEOUT_MS 30000
#define BIG (64 * 1024)

static const size_t SIZES[] = { 1, 2, 7, 100, 4095, 4096, 4097, 16384, 65535, 65536 };
#define NSIZES (sizeof(SIZES) / sizeof(SIZES[0]))

static int failures;

static int file_has(const char *path, const char *needle)
{
    char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static int allowed(void)
{
    if (file_has("/proc/cmdline", "hvsim.guest=1"))
        return 1;
    return file_has("/proc/self/status", "Seccomp:\t2") && getenv("HVSIM_PARTITION") != NULL;
}

__attribute__((format(printf, 3, 4))) static void check(const char *name, int ok, const char *fmt, ...)
{
    va_list ap;

    if (ok) {
        printf("SEQ %s ok\n", name);
    } else {
        printf("SEQ %s FAIL ", name);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        failures++;
    }
    fflush(stdout);
}

static void pattern(unsigned char *p, size_t n, unsigned seed)
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31 + n + seed + (i >> 9));
}

static int wait_in(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r;

    do
        r = poll(&p, 1, TIMEOUT_MS);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        errno = ETIMEDOUT;
    return r > 0 ? 0 : -1;
}

/* One recvmsg into cap bytes: the result, and msg_flags in *flags. */
static ssize_t recv_one(int fd, void *buf, size_t cap, int in_flags, int *flags)
{
    struct iovec iov = { buf, cap };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t r;

    if (wait_in(fd) < 0)
        return -1;
    do
        r = recvmsg(fd, &mh, in_flags);
    while (r < 0 && errno == EINTR);
    *flags = mh.msg_flags;
    return r;
}

static ssize_t send_one(int fd, const void *buf, size_t len, int flags)
{
    ssize_t r;

    do
        r = send(fd, buf, len, flags | MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r;
}

static void send_sizes(int fd, unsigned seed)
{
    static unsigned char buf[BIG];
    size_t i;
    char name[64];

    for (i = 0; i < NSIZES; i++) {
        ssize_t r;

        pattern(buf, SIZES[i], seed);
        r = send_one(fd, buf, SIZES[i], 0);
        snprintf(name, sizeof(name), "send-%zu", SIZES[i]);
        check(name, r == (ssize_t)SIZES[i], "sent %zd (%s)", r, r < 0 ? strerror(errno) : "short");
    }
}

static void recv_sizes(int fd, unsigned seed)
{
    static unsigned char buf[BIG + 64], want[BIG];
    size_t i;
    char name[64];

    for (i = 0; i < NSIZES; i++) {
        int flags = 0;
        ssize_t r = recv_one(fd, buf, sizeof(buf), 0, &flags);

        pattern(want, SIZES[i], seed);
        snprintf(name, sizeof(name), "recv-%zu", SIZES[i]);
        if (r != (ssize_t)SIZES[i])
            check(name, 0, "got %zd (%s)", r, r < 0 ? strerror(errno) : "another length");
        else if (flags & MSG_TRUNC)
            check(name, 0, "MSG_TRUNC set on a whole message (msg_flags %#x)", (unsigned)flags);
        else
            check(name, memcmp(buf, want, SIZES[i]) == 0, "the bytes differ");
    }
}

static void send_trunc(int fd)
{
    unsigned char buf[100];

    pattern(buf, sizeof(buf), 3);
    check("send-trunc-a", send_one(fd, buf, 100, 0) == 100, "%s", strerror(errno));
    check("send-trunc-b", send_one(fd, buf, 100, 0) == 100, "%s", strerror(errno));
    check("send-trunc-c", send_one(fd, "seventh", 7, 0) == 7, "%s", strerror(errno));
}

static void recv_trunc(int fd)
{
    unsigned char buf[64], want[100];
    int flags = 0;
    ssize_t r;

    pattern(want, sizeof(want), 3);
    r = recv_one(fd, buf, 10, 0, &flags);
    check("trunc-out-flag", r == 10 && (flags & MSG_TRUNC) && memcmp(buf, want, 10) == 0,
          "got %zd, msg_flags %#x", r, (unsigned)flags);
    r = recv_one(fd, buf, 10, MSG_TRUNC, &flags);
    check("trunc-in-flag-real-length", r == 100 && memcmp(buf, want, 10) == 0, "got %zd, msg_flags %#x", r,
          (unsigned)flags);
    r = recv_one(fd, buf, sizeof(buf), 0, &flags);
    check("trunc-rest-dropped", r == 7 && memcmp(buf, "seventh", 7) == 0 && !(flags & MSG_TRUNC),
          "got %zd, msg_flags %#x", r, (unsigned)flags);
}

static void too_big(int fd, size_t max)
{
    unsigned char *buf = calloc(1, max + 1);
    ssize_t r;

    if (buf == NULL) {
        check("too-big-refused", 0, "out of memory");
        return;
    }
    r = send_one(fd, buf, max + 1, MSG_DONTWAIT);
    check("too-big-refused", r < 0, "sent %zd of a message beyond the peer's buffer", r);
    if (r < 0)
        printf("SEQ info too-big %s\n", errno == EMSGSIZE ? "EMSGSIZE" : errno == ENOMEM ? "ENOMEM"
                                       : errno == EAGAIN ? "EAGAIN" : strerror(errno));
    free(buf);
}

static void send_eor(int fd)
{
    ssize_t r = send_one(fd, "record", 6, MSG_EOR);

    if (r == 6)
        printf("SEQ info send-eor ok\n");
    else
        printf("SEQ info send-eor errno %d (%s)\n", errno, strerror(errno));
    if (r != 6) /* the peer still expects a message */
        send_one(fd, "record", 6, 0);
}

static void recv_eor(int fd)
{
    char buf[16];
    int flags = 0;
    ssize_t r = recv_one(fd, buf, sizeof(buf), 0, &flags);

    check("recv-record", r == 6 && memcmp(buf, "record", 6) == 0, "got %zd, msg_flags %#x", r, (unsigned)flags);
    printf("SEQ info recv-eor %s\n", (flags & MSG_EOR) ? "MSG_EOR" : "none");
}

static void bye(int fd, int first)
{
    char buf[16];
    int flags = 0, i;

    for (i = 0; i < 2; i++) {
        if ((i == 0) == first) {
            check("send-bye", send_one(fd, "bye", 3, 0) == 3, "%s", strerror(errno));
        } else {
            ssize_t r = recv_one(fd, buf, sizeof(buf), 0, &flags);

            check("recv-bye", r == 3 && memcmp(buf, "bye", 3) == 0, "got %zd (%s)", r,
                  r < 0 ? strerror(errno) : "another message");
        }
    }
}

static int run(int fd, int connector, size_t max)
{
    if (connector) {
        send_sizes(fd, 1);
        recv_sizes(fd, 2);
        send_trunc(fd);
        recv_trunc(fd);
    } else {
        recv_sizes(fd, 1);
        send_sizes(fd, 2);
        recv_trunc(fd);
        send_trunc(fd);
    }
    too_big(fd, max);
    if (connector) {
        send_eor(fd);
        recv_eor(fd);
    } else {
        recv_eor(fd);
        send_eor(fd);
    }
    bye(fd, connector);
    close(fd);
    if (failures)
        printf("SEQ FAIL %d\n", failures);
    else
        printf("SEQ PASS\n");
    return failures ? 1 : 0;
}

static int parse(const char *s, unsigned long max, unsigned long *out)
{
    char *end;

    errno = 0;
    *out = strtoul(s, &end, 0);
    return errno == 0 && *s && *end == '\0' && *out <= max ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct sockaddr_vm sa = { .svm_family = AF_VSOCK };
    unsigned long cid = 0, port = 0, max = 262144;
    int connector, fd, c;

    setvbuf(stdout, NULL, _IOLBF, 0);
    connector = argc >= 2 && strcmp(argv[1], "connect") == 0;
    if (argc < 3 || (!connector && strcmp(argv[1], "listen") != 0) ||
        (connector ? argc < 4 || argc > 5 || parse(argv[2], 0xffffffffUL, &cid) || parse(argv[3], 0xffffffffUL, &port)
                   : argc > 4 || parse(argv[2], 0xffffffffUL, &port)) ||
        (argc == (connector ? 5 : 4) && parse(argv[argc - 1], 1UL << 30, &max))) {
        fprintf(stderr, "usage: vsock-seq listen PORT [MAX] | vsock-seq connect CID PORT [MAX]\n");
        return 2;
    }
    if (!allowed()) {
        fprintf(stderr, "vsock-seq: refusing to open AF_VSOCK sockets outside the test guest (hvsim.guest=1) "
                        "or hvsim-run\n");
        return 2;
    }
    fd = socket(AF_VSOCK, SOCK_SEQPACKET, 0);
    if (fd < 0) {
        printf("SEQ socket FAIL %s\nSEQ FAIL 1\n", strerror(errno));
        return 1;
    }
    sa.svm_port = (unsigned)port;
    if (connector) {
        sa.svm_cid = (unsigned)cid;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            printf("SEQ connect FAIL %s\nSEQ FAIL 1\n", strerror(errno));
            return 1;
        }
        printf("SEQ connected\n");
        return run(fd, 1, max);
    }
    sa.svm_cid = VMADDR_CID_ANY;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
        printf("SEQ listen FAIL %s\nSEQ FAIL 1\n", strerror(errno));
        return 1;
    }
    printf("SEQ listening %lu\n", port);
    if (wait_in(fd) < 0 || (c = accept(fd, NULL, NULL)) < 0) {
        printf("SEQ accept FAIL %s\nSEQ FAIL 1\n", strerror(errno));
        return 1;
    }
    close(fd);
    printf("SEQ accepted\n");
    return run(c, 0, max);
}
