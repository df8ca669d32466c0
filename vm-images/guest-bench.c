// SPDX-License-Identifier: MIT
// hvsim-guest-bench: the guest half of `make bench TARGET=qemu`. It serves
// the same small protocol on an AF_VSOCK port and on a TCP port (QEMU's
// user-mode network), so the host tool (sim/tools/hvsim-qemu-bench.c) can
// measure both transports of one guest in one run:
//
//   hvsim-guest-bench serve VSOCK_PORT TCP_PORT
//
// Each connection starts with a 16-byte request, little endian:
//   u8 op, u8 pad[3], u32 size, u64 count
//   'R'  read count bytes (host -> guest), then write one byte
//   'W'  write count bytes in writes of size bytes (guest -> host), then close
//   'P'  count times: read size bytes, write them back (round trip)
//   'Q'  reply one byte and exit 0
// Connections are served one at a time: a benchmark measures one stream.
// Built static by vm-images/build.sh for the test guest only. It refuses to
// run without hvsim.guest=1 on the kernel command line, so it never opens a
// vsock socket on the machine that builds it.
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define CHUNK (1 << 20)

static uint8_t buf[CHUNK];

static int in_test_guest(void)
{
    char line[4096];
    FILE *f = fopen("/proc/cmdline", "r");
    int yes = 0;

    if (f == NULL)
        return 0;
    if (fgets(line, sizeof(line), f))
        yes = strstr(line, "hvsim.guest=1") != NULL;
    fclose(f);
    return yes;
}

static int read_full(int fd, void *p, size_t n)
{
    size_t done = 0;

    while (done < n) {
        ssize_t r = read(fd, (char *)p + done, n - done);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *p, size_t n)
{
    size_t done = 0;

    while (done < n) {
        ssize_t r = write(fd, (const char *)p + done, n - done);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Returns 1 when the host asked us to quit. */
static int serve(int c)
{
    uint8_t rq[16];
    uint32_t size;
    uint64_t count, i;

    if (read_full(c, rq, sizeof(rq)) < 0)
        return 0;
    size = le32(rq + 4);
    count = (uint64_t)le32(rq + 8) | (uint64_t)le32(rq + 12) << 32;
    if (size == 0 || size > CHUNK)
        size = CHUNK;
    switch (rq[0]) {
    case 'R':
        while (count > 0) {
            ssize_t r = read(c, buf, count < CHUNK ? count : CHUNK);

            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return 0;
            count -= (uint64_t)r;
        }
        (void)write_full(c, "k", 1);
        return 0;
    case 'W':
        while (count > 0) {
            uint32_t n = count < size ? (uint32_t)count : size;

            if (write_full(c, buf, n) < 0)
                return 0;
            count -= n;
        }
        return 0;
    case 'P':
        for (i = 0; i < count; i++)
            if (read_full(c, buf, size) < 0 || write_full(c, buf, size) < 0)
                return 0;
        return 0;
    case 'Q':
        (void)write_full(c, "q", 1);
        return 1;
    default:
        fprintf(stderr, "hvsim-guest-bench: unknown op 0x%02x\n", rq[0]);
        return 0;
    }
}

static int listener(int family, uint32_t port)
{
    int one = 1, fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (family == AF_VSOCK) {
        struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY };

        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
            return -1;
    } else {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
            return -1;
    }
    return listen(fd, 16) < 0 ? -1 : fd;
}

int main(int argc, char **argv)
{
    struct pollfd p[2];
    char *end;
    unsigned long vport, tport;

    if (argc != 4 || strcmp(argv[1], "serve") != 0) {
        fprintf(stderr, "usage: hvsim-guest-bench serve VSOCK_PORT TCP_PORT\n");
        return 2;
    }
    vport = strtoul(argv[2], &end, 10);
    if (*end || vport > 0xfffffffeul) {
        fprintf(stderr, "hvsim-guest-bench: VSOCK_PORT: expected a port number, got '%s'\n", argv[2]);
        return 2;
    }
    tport = strtoul(argv[3], &end, 10);
    if (*end || tport == 0 || tport > 65535) {
        fprintf(stderr, "hvsim-guest-bench: TCP_PORT: expected 1 to 65535, got '%s'\n", argv[3]);
        return 2;
    }
    if (!in_test_guest()) {
        fprintf(stderr, "hvsim-guest-bench: runs only in hvsim's test guest (hvsim.guest=1 on the kernel "
                        "command line)\n");
        return 2;
    }
    p[0].fd = listener(AF_VSOCK, (uint32_t)vport);
    p[1].fd = listener(AF_INET, (uint32_t)tport);
    if (p[0].fd < 0 || p[1].fd < 0) {
        perror("hvsim-guest-bench: listen");
        return 1;
    }
    p[0].events = p[1].events = POLLIN;
    printf("HVSIM-BENCH-LISTENING vsock %lu tcp %lu\n", vport, tport);
    fflush(stdout);
    for (;;) {
        int i, one = 1;

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("hvsim-guest-bench: poll");
            return 1;
        }
        for (i = 0; i < 2; i++) {
            int c, quit;

            if (!(p[i].revents & POLLIN))
                continue;
            c = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            if (i == 1)
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            quit = serve(c);
            close(c);
            if (quit)
                return 0;
        }
    }
}
