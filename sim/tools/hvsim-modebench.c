/* SPDX-License-Identifier: MIT */
/*
 * hvsim-modebench: one guest program measured under each way hvsim reaches a
 * program (libhvsim called directly, the LD_PRELOAD interposer, the seccomp
 * supervisor), each figure beside AF_UNIX measured by the same process in the
 * same run, and the tax each mode puts on sockets it has nothing to do with.
 * bench/modes.py runs it; `make bench` reports what it prints.
 *
 *   hvsim-modebench serve --port P --unix PATH
 *       the host side, on libhvsim (HVSIM_DIR, HVSIM_PARTITION=host): an
 *       AF_VSOCK listener on port P and an AF_UNIX one at PATH, served one
 *       connection at a time by the same code; prints "ready" when both listen.
 *   hvsim-modebench guest --api lib|socket --family F --port P --unix PATH
 *                         [--conns N] [--pings N] [--bytes N] [--slices N]
 *                         [--io send|write] [--match-buffers]
 *       the guest: connection rate, 1-byte round trip and 64 KiB throughput
 *       over vsock (hvsim_* calls with --api lib; plain socket calls with
 *       --api socket, which is what the interposer and the supervisor serve;
 *       F is 40, or the supervisor's stand-in family in tests and benchmarks)
 *       and the same over AF_UNIX; one JSON object on stdout. With
 *       --match-buffers its AF_UNIX sockets get the send buffer of a vsock
 *       socket made the same way (a virtio VM's window, 256 KiB), so a ratio
 *       compares like with like; without it, the system's.
 *   hvsim-modebench tcp [--conns N] [--fd-floor N]
 *       TCP connect + accept + 1 byte each way + close on 127.0.0.1, in one
 *       process, per second. --fd-floor N first fills the fd numbers below N,
 *       so the sockets get numbers >= N (the supervisor serves the fd calls
 *       of numbers >= 768: its worst case for an unrelated socket).
 *
 * Each connection starts with one command byte: 'c' (the host answers one
 * byte and closes), 'r' (echo each byte until EOF), 't' (read to EOF, then
 * answer the byte count and the host socket's SO_RCVBUF and SO_SNDBUF).
 * Timing uses CLOCK_MONOTONIC.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "hvsim/hvsim.h"
#include "hvproto/cli.h"

#define CHUNK 65536
#define MAXPINGS 1000000

static const char *const usage_text =
    "usage: hvsim-modebench serve --port P --unix PATH\n"
    "       hvsim-modebench guest --api lib|socket --family F --port P --unix PATH [--conns N] [--pings N]\n"
    "                             [--bytes N] [--slices N] [--io send|write] [--match-buffers]\n"
    "       hvsim-modebench tcp [--conns N] [--fd-floor N]\n"
    "Measures one guest program under libhvsim, the interposer or the supervisor beside AF_UNIX,\n"
    "and the TCP connect rate on 127.0.0.1 (bench/modes.py runs it; see bench/README.md).\n";

static void die(const char *what)
{
    fprintf(stderr, "hvsim-modebench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- one transport's calls: libhvsim's, or the plain ones ---------------------------- */

struct ops {
    int lib; /* 1: hvsim_* calls */
    int family;
};

/* --io write: the plain data path uses write()/read(), which the
 * interposer does not wrap, instead of send()/recv(), which it does. */
static int g_rw;

static ssize_t o_send(const struct ops *o, int fd, const void *b, size_t n)
{
    return o->lib ? hvsim_send(fd, b, n, 0) : g_rw ? write(fd, b, n) : send(fd, b, n, 0);
}

static ssize_t o_recv(const struct ops *o, int fd, void *b, size_t n)
{
    return o->lib ? hvsim_recv(fd, b, n, 0) : g_rw ? read(fd, b, n) : recv(fd, b, n, 0);
}

static void o_close(const struct ops *o, int fd)
{
    if (o->lib)
        hvsim_close(fd);
    else
        close(fd);
}

static void send_all(const struct ops *o, int fd, const void *b, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = o_send(o, fd, (const char *)b + off, n - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("send");
        off += (size_t)w;
    }
}

static void recv_all(const struct ops *o, int fd, void *b, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t r = o_recv(o, fd, (char *)b + off, n - off);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            errno = r == 0 ? EPIPE : errno;
            die("recv");
        }
        off += (size_t)r;
    }
}

/* ---- the host --------------------------------------------------------------------------- */

static void serve_conn(const struct ops *o, int c)
{
    static char buf[CHUNK];
    char cmd = 0;
    ssize_t n;

    if (o_recv(o, c, &cmd, 1) != 1)
        return;
    if (cmd == 'c') {
        (void)o_send(o, c, "k", 1);
    } else if (cmd == 'r') {
        while (o_recv(o, c, buf, 1) == 1)
            if (o_send(o, c, buf, 1) != 1)
                break;
    } else if (cmd == 't') {
        uint64_t total = 0;
        int32_t bufs[2] = { -1, -1 };
        socklen_t l = sizeof(bufs[0]);
        char ack[16];

        while ((n = o_recv(o, c, buf, sizeof(buf))) > 0)
            total += (uint64_t)n;
        /* The kernel's view of the real socket under both transports. */
        (void)getsockopt(c, SOL_SOCKET, SO_RCVBUF, &bufs[0], &l);
        l = sizeof(bufs[1]);
        (void)getsockopt(c, SOL_SOCKET, SO_SNDBUF, &bufs[1], &l);
        memcpy(ack, &total, 8);
        memcpy(ack + 8, bufs, 8);
        (void)o_send(o, c, ack, sizeof(ack));
    }
}

/* The AF_UNIX baseline's send buffer: 0 keeps the system's, else the vsock
 * carrier's (SO_SNDBUF as getsockopt reports it; the kernel doubles what
 * setsockopt asks, so half is asked). */
static int unix_sndbuf;

static void match_buffers(int fd)
{
    int v = unix_sndbuf / 2;

    if (unix_sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)) < 0)
        die("AF_UNIX SO_SNDBUF");
}

/* What a vsock socket's carrier has (hvsim_getsockopt passes SOL_SOCKET
 * through to it). */
static int vsock_sndbuf(int s)
{
    int v = 0;
    socklen_t l = sizeof(v);

    if (s < 0 || getsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, &l) < 0 || v <= 0)
        die("SO_SNDBUF of a vsock socket");
    return v;
}

static int listen_unix(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (strlen(path) >= sizeof(a.sun_path)) {
        errno = ENAMETOOLONG;
        die(path);
    }
    strcpy(a.sun_path, path);
    unlink(path);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 128) < 0)
        die("AF_UNIX listener");
    return s;
}

__attribute__((noreturn)) static void serve_main(unsigned port, const char *path)
{
    struct ops lib = { 1, AF_VSOCK }, plain = { 0, AF_UNIX };
    struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
    int v = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0), u = listen_unix(path);

    if (v < 0 || hvsim_bind(v, (struct sockaddr *)&a, sizeof(a)) < 0 || hvsim_listen(v, 128) < 0)
        die("vsock listener (is hvsimd running, HVSIM_DIR and HVSIM_PARTITION=host set?)");
    /* The host side is the KVM-style host's, virtio in every mode: its
     * accepted sockets get the listener's window. */
    unix_sndbuf = vsock_sndbuf(v);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        struct pollfd p[2] = { { v, POLLIN, 0 }, { u, POLLIN, 0 } };

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (p[0].revents & POLLIN) {
            int c = hvsim_accept(v, NULL, NULL);

            if (c >= 0) {
                serve_conn(&lib, c);
                hvsim_close(c);
            }
        }
        if (p[1].revents & POLLIN) {
            int c = accept4(u, NULL, NULL, SOCK_CLOEXEC);

            if (c >= 0) {
                match_buffers(c);
                serve_conn(&plain, c);
                close(c);
            }
        }
    }
}

/* ---- the guest -------------------------------------------------------------------------- */

static const char *g_path;
static unsigned g_port;

static int g_connect(const struct ops *o)
{
    if (o->family == AF_UNIX) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        snprintf(a.sun_path, sizeof(a.sun_path), "%s", g_path);
        if (s >= 0)
            match_buffers(s);
        if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
            die("AF_UNIX connect");
        return s;
    }
    struct sockaddr_vm a = { .svm_family = (sa_family_t)o->family, .svm_cid = VMADDR_CID_HOST, .svm_port = g_port };
    int s = o->lib ? hvsim_socket(AF_VSOCK, SOCK_STREAM, 0) : socket(o->family, SOCK_STREAM, 0);

    if (s < 0)
        die("vsock socket");
    if ((o->lib ? hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)) : connect(s, (struct sockaddr *)&a, sizeof(a))) <
        0)
        die("vsock connect");
    return s;
}

/* Connections per second: connect, command, the host's byte, close. */
static double g_connrate(const struct ops *o, long n)
{
    double t0 = now();

    for (long i = 0; i < n; i++) {
        int s = g_connect(o);
        char c;

        send_all(o, s, "c", 1);
        recv_all(o, s, &c, 1);
        o_close(o, s);
    }
    return (double)n / (now() - t0);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* 1-byte round trip: the median and the 99th percentile, microseconds. */
static void g_rtt(const struct ops *o, long n, double *p50, double *p99)
{
    double *v = calloc((size_t)n, sizeof(*v));
    int s = g_connect(o);
    char c = 'x';

    if (v == NULL)
        die("calloc");
    send_all(o, s, "r", 1);
    for (long i = 0; i < n; i++) {
        double t0 = now();

        send_all(o, s, &c, 1);
        recv_all(o, s, &c, 1);
        v[i] = (now() - t0) * 1e6;
    }
    o_close(o, s);
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    *p50 = v[n / 2];
    *p99 = v[(n * 99) / 100];
    free(v);
}

/* 64 KiB writes, guest to host, up to the host's count of the bytes: the
 * seconds it took. */
static double g_tput(const struct ops *o, long long bytes, int32_t bufs[2])
{
    static char buf[CHUNK];
    char ack[16];
    int s = g_connect(o);
    double t0;
    uint64_t got;

    memset(buf, 'b', sizeof(buf));
    send_all(o, s, "t", 1);
    t0 = now();
    for (long long off = 0; off < bytes; off += CHUNK)
        send_all(o, s, buf, CHUNK);
    if ((o->lib ? hvsim_shutdown(s, SHUT_WR) : shutdown(s, SHUT_WR)) < 0)
        die("shutdown");
    recv_all(o, s, ack, sizeof(ack));
    t0 = now() - t0;
    memcpy(&got, ack, 8);
    memcpy(bufs, ack + 8, 8);
    o_close(o, s);
    if (got != (uint64_t)bytes) {
        fprintf(stderr, "hvsim-modebench: the host counted %llu bytes of %lld\n", (unsigned long long)got, bytes);
        exit(1);
    }
    return t0;
}

struct result {
    double connrate, p50, p99, mib_s;
    int32_t bufs[2];
};

#define MAXSLICES 1000

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Both transports figure by figure, in g_slices slices taken in turn
 * (ABBA), so that what the rest of a shared machine does lands on both
 * alike. Besides each transport's totals, the vsock / AF_UNIX ratio of each
 * slice pair is kept, and their median reported: a burst of other work
 * spoils one pair, not the figure. */
static int g_slices = 8;
static double g_ratio_conn, g_ratio_tput;

static void g_measure(const struct ops *t[2], long conns, long pings, long long bytes, struct result r[2])
{
    static double rc[MAXSLICES], rt[MAXSLICES];
    long long slice = (bytes / g_slices + CHUNK - 1) / CHUNK * CHUNK;
    long cs = (conns + g_slices - 1) / g_slices;
    double secs[2] = { 0, 0 }, inv[2] = { 0, 0 };

    for (int i = 0; i < g_slices; i++) {
        double ci[2], ti[2];

        for (int k = 0; k < 2; k++) {
            int x = (i & 1) ? 1 - k : k;

            ci[x] = 1.0 / g_connrate(t[x], cs);
            ti[x] = g_tput(t[x], slice, r[x].bufs);
            inv[x] += ci[x];
            secs[x] += ti[x];
        }
        rc[i] = ci[0] / ci[1];
        rt[i] = ti[0] / ti[1];
    }
    for (int x = 0; x < 2; x++) {
        r[x].connrate = g_slices / inv[x];
        r[x].mib_s = (double)slice * g_slices / secs[x] / (1024.0 * 1024.0);
    }
    g_ratio_conn = median_of(rc, g_slices);
    g_ratio_tput = median_of(rt, g_slices);
    g_rtt(t[0], pings, &r[0].p50, &r[0].p99);
    g_rtt(t[1], pings, &r[1].p50, &r[1].p99);
}

static void g_print(const char *name, const struct result *r)
{
    printf("  \"%s\": {\"connrate\": %.6g, \"rtt1_p50_us\": %.6g, \"rtt1_p99_us\": %.6g, \"tput64k_mib_s\": %.6g, "
           "\"host_rcvbuf\": %d, \"host_sndbuf\": %d},\n",
           name, r->connrate, r->p50, r->p99, r->mib_s, (int)r->bufs[0], (int)r->bufs[1]);
}

/* 1 when this process runs under a seccomp filter (Seccomp: 2). */
static int filtered(void)
{
    char line[128];
    FILE *f = fopen("/proc/self/status", "re");
    int mode = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Seccomp: %d", &mode) == 1)
            break;
    fclose(f);
    return mode == 2;
}

static int guest_main(int lib, int family, long conns, long pings, long long bytes, int match)
{
    struct ops v = { lib, family }, u = { 0, AF_UNIX };

    /* Plain socket calls of a vsock family must meet hvsim-run's interposer
     * or supervisor, both of which come with a seccomp filter: never the
     * machine's own vsock. */
    if (!lib && !filtered()) {
        fprintf(stderr, "hvsim-modebench: --api socket runs only under hvsim-run (no seccomp filter here); "
                        "refusing to call socket(%d)\n", family);
        return 2;
    }
    const struct ops *t[2] = { &u, &v };
    struct result r[2];

    if (match) {
        int s = lib ? hvsim_socket(AF_VSOCK, SOCK_STREAM, 0) : socket(family, SOCK_STREAM, 0);

        unix_sndbuf = vsock_sndbuf(s);
        o_close(&v, s);
    }
    g_measure(t, conns, pings, bytes, r);
    printf("{\n");
    g_print("af_unix", &r[0]);
    g_print("vsock", &r[1]);
    printf("  \"slice_ratio\": {\"connrate\": %.6g, \"tput64k_mib_s\": %.6g}\n}\n", g_ratio_conn, g_ratio_tput);
    return 0;
}

/* ---- TCP beside it ------------------------------------------------------------------------ */

static int tcp_main(long conns, int floor)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    int l, one = 1;
    double t0;

    for (int fd = open("/dev/null", O_RDONLY | O_CLOEXEC); fd >= 0 && fd < floor;)
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0 || l < floor || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 128) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) < 0)
        die("TCP listener (or the fd floor could not be reached: ulimit -n)");
    t0 = now();
    for (long i = 0; i < conns; i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c;
        char b = 'x';

        if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
            die("TCP connect");
        c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0 || setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 || write(s, &b, 1) != 1 ||
            read(c, &b, 1) != 1 || write(c, &b, 1) != 1 || read(s, &b, 1) != 1)
            die("TCP exchange");
        close(c);
        close(s);
    }
    printf("{\"tcp_connrate\": %.6g, \"fd\": %d}\n", (double)conns / (now() - t0), l);
    close(l);
    return 0;
}

/* ---- arguments ---------------------------------------------------------------------------- */

static long num(const char *opt, const char *v, long lo, long hi)
{
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;

    if (v == NULL || *end != '\0' || n < lo || n > hi) {
        fprintf(stderr, "hvsim-modebench: %s wants a number from %ld to %ld\n", opt, lo, hi);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *role = argc > 1 ? argv[1] : "", *api = "socket", *path = NULL;
    long conns = 2000, pings = 20000, family = AF_VSOCK, floor = 0, port = 5000;
    int match = 0;
    long long bytes = 256LL << 20;

    if (strcmp(role, "--help") == 0 || strcmp(role, "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(role, "--version") == 0)
        return hvsim__cli_version("hvsim-modebench");
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--api") == 0 && v)
            api = argv[++i];
        else if (strcmp(a, "--unix") == 0 && v)
            path = argv[++i];
        else if (strcmp(a, "--family") == 0)
            family = num(a, (i++, v), 1, 255);
        else if (strcmp(a, "--port") == 0)
            port = num(a, (i++, v), 1, 0x7fffffff);
        else if (strcmp(a, "--conns") == 0)
            conns = num(a, (i++, v), 1, 10000000);
        else if (strcmp(a, "--pings") == 0)
            pings = num(a, (i++, v), 1, MAXPINGS);
        else if (strcmp(a, "--bytes") == 0)
            bytes = (long long)num(a, (i++, v), 1, 1L << 40);
        else if (strcmp(a, "--io") == 0 && v && (strcmp(v, "send") == 0 || strcmp(v, "write") == 0))
            g_rw = strcmp(argv[++i], "write") == 0;
        else if (strcmp(a, "--slices") == 0)
            g_slices = (int)num(a, (i++, v), 1, MAXSLICES);
        else if (strcmp(a, "--match-buffers") == 0)
            match = 1;
        else if (strcmp(a, "--fd-floor") == 0)
            floor = num(a, (i++, v), 0, 60000);
        else {
            fprintf(stderr, "hvsim-modebench: unknown or incomplete argument '%s'\n%s", a, usage_text);
            return 2;
        }
    }
    bytes = (bytes + CHUNK - 1) / CHUNK * CHUNK;
    g_path = path;
    g_port = (unsigned)port;
    if (strcmp(role, "tcp") == 0)
        return tcp_main(conns, (int)floor);
    if (path == NULL) {
        fprintf(stderr, "hvsim-modebench: %s needs --unix PATH\n%s", role, usage_text);
        return 2;
    }
    if (strcmp(role, "serve") == 0)
        serve_main((unsigned)port, path);
    if (strcmp(role, "guest") == 0 && (strcmp(api, "lib") == 0 || strcmp(api, "socket") == 0))
        return guest_main(strcmp(api, "lib") == 0, (int)family, conns, pings, bytes, match);
    fprintf(stderr, "hvsim-modebench: say serve, guest (--api lib|socket) or tcp\n%s", usage_text);
    return 2;
}
