// SPDX-License-Identifier: MIT
// vsock-try: one AF_VSOCK stream socket driven step by step from the command
// line, for the QEMU tests of closes, resets and retried connects
// (harness/test_qemu_vsock.py). Each argument is one step; each step prints
// one line "TRY <step> <result>", the result being "ok", data, "eof" or the
// errno's name:
//
//   socket            a new socket (the steps below make one when none is open)
//   bind:PORT         bind to VMADDR_CID_ANY:PORT
//   timeout:MS        SO_VM_SOCKETS_CONNECT_TIMEOUT
//   connect:CID:PORT  connect (blocking)
//   retry:CID:PORT:N  connect on the same socket until it succeeds, at most N
//                     tries, retrying after ETIMEDOUT only; prints the last
//                     result and the number of tries
//   listen:PORT       a listening socket on PORT; accept takes one connection
//   accept            the accepted connection becomes the socket
//   send:TEXT         one send (MSG_NOSIGNAL)
//   recv              one read (up to 20 s): the bytes, "eof" or an error
//   recveof           read until end of stream (up to 20 s): the bytes, then "eof"
//   shut:rd|wr|rdwr   shutdown(SHUT_RD, SHUT_WR or SHUT_RDWR)
//   cid               the local CID (IOCTL_VM_SOCKETS_GET_LOCAL_CID)
//   sleep:MS          pause
//   say:TEXT          print TEXT (a marker the host waits for)
//   close             close the socket
//
// Built static by vm-images/build.sh for the test guest only. Like
// hvsim-guest-bench it refuses to run without hvsim.guest=1 on the kernel
// command line, so it never opens a vsock socket on the machine that builds it.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int fd = -1, lfd = -1;

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

static const char *ename(int e)
{
    static char buf[32];

    switch (e) {
    case EPIPE: return "EPIPE";
    case ECONNRESET: return "ECONNRESET";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOTCONN: return "ENOTCONN";
    case EADDRINUSE: return "EADDRINUSE";
    case EINVAL: return "EINVAL";
    case EAGAIN: return "EAGAIN";
    case EISCONN: return "EISCONN";
    case ENETUNREACH: return "ENETUNREACH";
    case ENODEV: return "ENODEV";
    case EPROTO: return "EPROTO";
    case EALREADY: return "EALREADY";
    default:
        snprintf(buf, sizeof(buf), "errno%d", e);
        return buf;
    }
}

static void say(const char *step, const char *fmt, const char *arg)
{
    printf("TRY %s ", step);
    printf(fmt, arg);
    printf("\n");
    fflush(stdout);
}

static int need_socket(void)
{
    if (fd < 0)
        fd = socket(AF_VSOCK, SOCK_STREAM, 0);
    return fd;
}

static int sa(unsigned cid, unsigned port, struct sockaddr_vm *a)
{
    memset(a, 0, sizeof(*a));
    a->svm_family = AF_VSOCK;
    a->svm_cid = cid;
    a->svm_port = port;
    return 0;
}

/* Wait up to 20 s for the socket to be readable: 0 ready, -1 not. */
static int wait_in(void)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    return poll(&p, 1, 20000) == 1 ? 0 : -1;
}

static void do_recv(const char *step, int until_eof)
{
    char buf[4096];
    ssize_t r;

    for (;;) {
        if (wait_in() < 0) {
            say(step, "%s", "timeout");
            return;
        }
        r = read(fd, buf, sizeof(buf) - 1);
        if (r < 0) {
            say(step, "%s", ename(errno));
            return;
        }
        if (r == 0) {
            say(step, "%s", "eof");
            return;
        }
        buf[r] = 0;
        say(step, "data %s", buf);
        if (!until_eof)
            return;
    }
}

static void step(const char *s)
{
    unsigned a1 = 0, a2 = 0, a3 = 0;
    struct sockaddr_vm addr;
    char buf[64];

    if (strcmp(s, "socket") == 0) {
        fd = socket(AF_VSOCK, SOCK_STREAM, 0);
        say(s, "%s", fd < 0 ? ename(errno) : "ok");
    } else if (sscanf(s, "bind:%u", &a1) == 1) {
        sa(VMADDR_CID_ANY, a1, &addr);
        say(s, "%s", need_socket() < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ? ename(errno) : "ok");
    } else if (sscanf(s, "timeout:%u", &a1) == 1) {
        struct timeval tv = { .tv_sec = a1 / 1000, .tv_usec = (a1 % 1000) * 1000 };

        say(s, "%s", need_socket() < 0 ||
                         setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv)) < 0
                     ? ename(errno)
                     : "ok");
    } else if (sscanf(s, "retry:%u:%u:%u", &a1, &a2, &a3) == 3) {
        unsigned n = 0;
        int rc;

        sa(a1, a2, &addr);
        if (need_socket() < 0) {
            say(s, "%s", ename(errno));
            return;
        }
        do {
            n++;
            rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
        } while (rc < 0 && errno == ETIMEDOUT && n < a3);
        snprintf(buf, sizeof(buf), "%s tries=%u", rc < 0 ? ename(errno) : "ok", n);
        say(s, "%s", buf);
    } else if (sscanf(s, "connect:%u:%u", &a1, &a2) == 2) {
        sa(a1, a2, &addr);
        say(s, "%s", need_socket() < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ? ename(errno)
                                                                                                  : "ok");
    } else if (sscanf(s, "listen:%u", &a1) == 1) {
        sa(VMADDR_CID_ANY, a1, &addr);
        lfd = socket(AF_VSOCK, SOCK_STREAM, 0);
        say(s, "%s", lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 4) < 0
                         ? ename(errno)
                         : "ok");
    } else if (strcmp(s, "accept") == 0) {
        fd = accept(lfd, NULL, NULL);
        say(s, "%s", fd < 0 ? ename(errno) : "ok");
    } else if (strncmp(s, "send:", 5) == 0) {
        ssize_t w = send(fd, s + 5, strlen(s + 5), MSG_NOSIGNAL);

        say("send", "%s", w < 0 ? ename(errno) : "ok");
    } else if (strcmp(s, "recv") == 0) {
        do_recv(s, 0);
    } else if (strcmp(s, "recveof") == 0) {
        do_recv(s, 1);
    } else if (strncmp(s, "shut:", 5) == 0) {
        int how = strcmp(s + 5, "rd") == 0 ? SHUT_RD : strcmp(s + 5, "wr") == 0 ? SHUT_WR
                : strcmp(s + 5, "rdwr") == 0 ? SHUT_RDWR : -1;

        if (how < 0) {
            fprintf(stderr, "vsock-try: '%s': expected shut:rd, shut:wr or shut:rdwr\n", s);
            exit(2);
        }
        say(s, "%s", shutdown(fd, how) < 0 ? ename(errno) : "ok");
    } else if (strcmp(s, "cid") == 0) {
        int d = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
        unsigned cid = 0;

        if (d < 0 || ioctl(d, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0) {
            say(s, "%s", ename(errno));
        } else {
            snprintf(buf, sizeof(buf), "%u", cid);
            say(s, "%s", buf);
        }
        if (d >= 0)
            close(d);
    } else if (sscanf(s, "sleep:%u", &a1) == 1) {
        struct timespec ts = { .tv_sec = a1 / 1000, .tv_nsec = (long)(a1 % 1000) * 1000000L };

        nanosleep(&ts, NULL);
        say(s, "%s", "ok");
    } else if (strncmp(s, "say:", 4) == 0) {
        printf("%s\n", s + 4);
        fflush(stdout);
    } else if (strcmp(s, "close") == 0) {
        say(s, "%s", close(fd) < 0 ? ename(errno) : "ok");
        fd = -1;
    } else {
        fprintf(stderr, "vsock-try: unknown step '%s'\n", s);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    int i;

    if (!in_test_guest()) {
        fprintf(stderr, "vsock-try: runs only in the hvsim test guest (hvsim.guest=1 on the kernel command line)\n");
        return 2;
    }
    for (i = 1; i < argc; i++)
        step(argv[i]);
    return 0;
}
