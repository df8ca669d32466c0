/* SPDX-License-Identifier: MIT */
/*
 * hvsim-qemu-bench: the host half of `make bench TARGET=qemu`. It measures
 * one QEMU guest (running hvsim-guest-bench, vm-images/guest-bench.c) over
 * two transports in the same run: vsock through hvsim (a host program's
 * AF_HYPERV connect to {vm, port} as a Windows host service makes it, the
 * guest's virtio-vsock device served by hvsim-vhost) and TCP through QEMU's
 * user-mode network (a hostfwd port on 127.0.0.1, TCP_NODELAY).
 *
 *   hvsim-qemu-bench --vm GUID --vsock-port P --tcp-port HP [--rounds N]
 *                    [--bytes N] [--size N] [--pings N] [--json FILE] [--quit]
 *
 * Per round and transport (the order alternates between rounds, so a noisy
 * moment of a shared machine hits both): host->guest throughput (the host
 * writes --bytes in --size writes, the guest acknowledges the last byte),
 * guest->host throughput (the guest writes, the host reads to EOF) and the
 * 1-byte round trip (--pings ping-pongs; p50 and p99 of each). Connection
 * set-up is outside every timed span. Timing uses CLOCK_MONOTONIC. --json
 * writes every round (schema hvsim-qemu-bench/1); bench/run.py reports the
 * medians. --quit asks the guest's server to exit afterwards.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hvsim/hvsim.h"
#include "hvproto/cli.h"

enum { T_VSOCK, T_TCP, NT };
static const char *const tname[NT] = { "vsock", "tcp" };

static struct {
    GUID vm;
    uint32_t vport, tport;
    unsigned rounds;
    uint64_t bytes;
    uint32_t size;
    unsigned pings;
    const char *json;
    int quit;
} O = { .rounds = 5, .bytes = 32u << 20, .size = 64u << 10, .pings = 2000 };

struct round {
    double h2g_mbps[NT], g2h_mbps[NT], rtt_p50_us[NT], rtt_p99_us[NT];
};

static uint8_t buf[1 << 20];

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "hvsim-qemu-bench: %s: %s (%s)\n", what, hvsim_err_name(err), hvsim_strerror(err));
    exit(1);
}

/* The two transports differ only in socket, connect, send and recv. */
static int t_connect(int t)
{
    int fd;

    if (t == T_VSOCK) {
        SOCKADDR_HV a = { .Family = AF_HYPERV, .VmId = O.vm, .ServiceId = hvsim_guid_from_port(O.vport) };
        uint32_t ms = 10000;

        fd = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
        if (fd < 0)
            die("socket(AF_HYPERV)", errno);
        if (hvsim_setsockopt(fd, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &ms, sizeof(ms)) < 0 ||
            hvsim_connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
            die("connect to the guest over vsock", errno);
    } else {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)O.tport),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int one = 1;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket(AF_INET)", errno);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
            die("connect to the guest over QEMU's user network", errno);
    }
    return fd;
}

static ssize_t t_send(int t, int fd, const void *p, size_t n)
{
    return t == T_VSOCK ? hvsim_send(fd, p, n, 0) : send(fd, p, n, MSG_NOSIGNAL);
}

static ssize_t t_recv(int t, int fd, void *p, size_t n)
{
    return t == T_VSOCK ? hvsim_recv(fd, p, n, 0) : recv(fd, p, n, 0);
}

static void t_close(int t, int fd)
{
    if (t == T_VSOCK)
        hvsim_close(fd);
    else
        close(fd);
}

static void send_all(int t, int fd, const void *p, size_t n, const char *what)
{
    size_t done = 0;

    while (done < n) {
        ssize_t r = t_send(t, fd, (const char *)p + done, n - done);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die(what, r < 0 ? errno : EPIPE);
        done += (size_t)r;
    }
}

static void recv_all(int t, int fd, void *p, size_t n, const char *what)
{
    size_t done = 0;

    while (done < n) {
        ssize_t r = t_recv(t, fd, (char *)p + done, n - done);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die(what, r < 0 ? errno : ECONNRESET);
        done += (size_t)r;
    }
}

static int request(int t, char op, uint32_t size, uint64_t count)
{
    uint8_t rq[16] = { (uint8_t)op };
    int fd = t_connect(t), i;

    for (i = 0; i < 4; i++)
        rq[4 + i] = (uint8_t)(size >> (8 * i));
    for (i = 0; i < 8; i++)
        rq[8 + i] = (uint8_t)(count >> (8 * i));
    send_all(t, fd, rq, sizeof(rq), "sending a request");
    return fd;
}

static double h2g(int t)
{
    uint64_t left = O.bytes;
    int fd = request(t, 'R', O.size, O.bytes);
    double t0 = now_s(), t1;
    char ack;

    while (left > 0) {
        size_t n = left < O.size ? (size_t)left : O.size;

        send_all(t, fd, buf, n, "host->guest data");
        left -= n;
    }
    recv_all(t, fd, &ack, 1, "the guest's acknowledgement");
    t1 = now_s();
    t_close(t, fd);
    return (double)O.bytes / (t1 - t0) / 1e6;
}

static double g2h(int t)
{
    uint64_t got = 0;
    int fd = request(t, 'W', O.size, O.bytes);
    double t0 = now_s(), t1;

    for (;;) {
        ssize_t r = t_recv(t, fd, buf, sizeof(buf));

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die("guest->host data", errno);
        if (r == 0)
            break;
        got += (uint64_t)r;
    }
    t1 = now_s();
    t_close(t, fd);
    if (got != O.bytes) {
        fprintf(stderr, "hvsim-qemu-bench: %s guest->host: expected %llu bytes, got %llu\n", tname[t],
                (unsigned long long)O.bytes, (unsigned long long)got);
        exit(1);
    }
    return (double)got / (t1 - t0) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void rtt(int t, double *p50, double *p99)
{
    unsigned warm = O.pings / 20, n = O.pings, i;
    double *us = calloc(n, sizeof(*us));
    int fd = request(t, 'P', 1, (uint64_t)n + warm);
    char b = 'x';

    if (us == NULL)
        die("memory", ENOMEM);
    for (i = 0; i < warm + n; i++) {
        double t0 = now_s();

        send_all(t, fd, &b, 1, "ping");
        recv_all(t, fd, &b, 1, "pong");
        if (i >= warm)
            us[i - warm] = (now_s() - t0) * 1e6;
    }
    t_close(t, fd);
    qsort(us, n, sizeof(*us), cmp_double);
    *p50 = us[n / 2];
    *p99 = us[(size_t)((double)n * 0.99)];
    free(us);
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (*s == '\0' || *s == '-')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static const char *const usage_text =
    "usage: hvsim-qemu-bench --vm GUID --vsock-port P --tcp-port HP [--rounds N] [--bytes N]\n"
    "                        [--size N] [--pings N] [--json FILE] [--quit]\n"
    "The host half of `make bench TARGET=qemu`: one QEMU guest over vsock (through hvsim) and TCP.\n"
    "  --vm GUID        the guest's VM ID\n"
    "  --vsock-port P   the guest bench server's vsock port\n"
    "  --tcp-port HP    the host port QEMU forwards to the guest's TCP server (127.0.0.1)\n"
    "  --rounds N       rounds, 1..1000\n"
    "  --bytes N        bytes per throughput run\n"
    "  --size N         bytes per write, 1..1048576\n"
    "  --pings N        1-byte round trips per round, 20..10000000\n"
    "  --json FILE      write every round (schema hvsim-qemu-bench/1)\n"
    "  --quit           ask the guest's server to exit afterwards\n"
    "  --version        print the version and exit\n"
    "  -h, --help       print this text and exit\n";

static void usage_fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "hvsim-qemu-bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage_text);
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "vm", required_argument, NULL, 'm' },       { "vsock-port", required_argument, NULL, 'v' },
        { "tcp-port", required_argument, NULL, 't' }, { "rounds", required_argument, NULL, 'r' },
        { "bytes", required_argument, NULL, 'b' },    { "size", required_argument, NULL, 's' },
        { "pings", required_argument, NULL, 'p' },    { "json", required_argument, NULL, 'j' },
        { "quit", no_argument, NULL, 'q' },           { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },        { NULL, 0, NULL, 0 },
    };
    struct round *rs;
    uint64_t v;
    int c, have_vm = 0, have_v = 0, have_t = 0;
    unsigned r, k;
    FILE *j = NULL;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'V':
            return hvsim__cli_version("hvsim-qemu-bench");
        case 'm':
            if (hvsim_guid_parse(optarg, &O.vm) < 0)
                usage_fail("--vm: expected a VM ID GUID, got '%s'", optarg);
            have_vm = 1;
            break;
        case 'v':
            if (parse_u64(optarg, 0, 0x7fffffffu, &v) < 0)
                usage_fail("--vsock-port: expected a port from 0 to 2147483647, got '%s'", optarg);
            O.vport = (uint32_t)v;
            have_v = 1;
            break;
        case 't':
            if (parse_u64(optarg, 1, 65535, &v) < 0)
                usage_fail("--tcp-port: expected 1 to 65535, got '%s'", optarg);
            O.tport = (uint32_t)v;
            have_t = 1;
            break;
        case 'r':
            if (parse_u64(optarg, 1, 1000, &v) < 0)
                usage_fail("--rounds: expected 1 to 1000, got '%s'", optarg);
            O.rounds = (unsigned)v;
            break;
        case 'b':
            if (parse_u64(optarg, 1, 1ull << 40, &v) < 0)
                usage_fail("--bytes: expected 1 to 2^40, got '%s'", optarg);
            O.bytes = v;
            break;
        case 's':
            if (parse_u64(optarg, 1, sizeof(buf), &v) < 0)
                usage_fail("--size: expected 1 to 1048576, got '%s'", optarg);
            O.size = (uint32_t)v;
            break;
        case 'p':
            if (parse_u64(optarg, 20, 10000000, &v) < 0)
                usage_fail("--pings: expected 20 to 10000000, got '%s'", optarg);
            O.pings = (unsigned)v;
            break;
        case 'j':
            O.json = optarg;
            break;
        case 'q':
            O.quit = 1;
            break;
        default:
            usage_fail("%s", "unknown option");
        }
    }
    if (optind != argc || !have_vm || !have_v || !have_t)
        usage_fail("%s", optind != argc ? "unexpected arguments" : "--vm, --vsock-port and --tcp-port are required");
    if (O.json && (j = fopen(O.json, "w")) == NULL)
        usage_fail("--json %s: cannot create it", O.json);
    rs = calloc(O.rounds, sizeof(*rs));
    if (rs == NULL)
        die("memory", ENOMEM);
    memset(buf, 0xa5, sizeof(buf));
    for (r = 0; r < O.rounds; r++) {
        for (k = 0; k < NT; k++) {
            int t = (r & 1) ? NT - 1 - (int)k : (int)k;

            rs[r].h2g_mbps[t] = h2g(t);
            rs[r].g2h_mbps[t] = g2h(t);
            rtt(t, &rs[r].rtt_p50_us[t], &rs[r].rtt_p99_us[t]);
        }
        printf("round %u:", r + 1);
        for (k = 0; k < NT; k++)
            printf("  %s h2g %.1f MB/s g2h %.1f MB/s rtt p50 %.1f us", tname[k], rs[r].h2g_mbps[k],
                   rs[r].g2h_mbps[k], rs[r].rtt_p50_us[k]);
        printf("\n");
        fflush(stdout);
    }
    if (O.quit) {
        char q;
        int fd = request(T_VSOCK, 'Q', 0, 0);

        recv_all(T_VSOCK, fd, &q, 1, "the guest's goodbye");
        t_close(T_VSOCK, fd);
    }
    if (j) {
        fprintf(j, "{\"schema\": \"hvsim-qemu-bench/1\", \"bytes\": %llu, \"size\": %u, \"pings\": %u, \"rounds\": [",
                (unsigned long long)O.bytes, O.size, O.pings);
        for (r = 0; r < O.rounds; r++) {
            fprintf(j, "%s{", r ? ", " : "");
            for (k = 0; k < NT; k++)
                fprintf(j, "%s\"%s\": {\"h2g_MBps\": %.3f, \"g2h_MBps\": %.3f, \"rtt_p50_us\": %.2f, "
                           "\"rtt_p99_us\": %.2f}",
                        k ? ", " : "", tname[k], rs[r].h2g_mbps[k], rs[r].g2h_mbps[k], rs[r].rtt_p50_us[k],
                        rs[r].rtt_p99_us[k]);
            fprintf(j, "}");
        }
        fprintf(j, "]}\n");
        if (fclose(j) != 0)
            die("writing --json", errno);
    }
    free(rs);
    return 0;
}
