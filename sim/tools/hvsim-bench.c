/* SPDX-License-Identifier: MIT */
/*
 * hvsim-bench: measures the emulated stream core beside the same figure for
 * plain AF_UNIX (and TCP on 127.0.0.1 for connection rate), in one run, so
 * the ratio does not depend on the machine.
 *
 *   connrate: connect + accept + first byte + close per second, a guest (vm1)
 *             connecting to a host listener through the daemon;
 *   rtt:      1-byte ping-pong round trip between host and guest processes;
 *
 * Each figure is the median of --rounds rounds, with the spread (min..max).
 * The tool starts its own hvsimd (next to this binary) in a temporary folder.
 * Timing uses CLOCK_MONOTONIC.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hvsim/hvsim.h"

static int rounds = 5;
static double seconds = 0.5;
static char dir[] = "/tmp/hvsim-bench-XXXXXX";
static pid_t daemon_pid;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "hvsim-bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void stop_daemon(void)
{
    if (daemon_pid > 0) {
        kill(daemon_pid, SIGTERM);
        waitpid(daemon_pid, NULL, 0);
        daemon_pid = 0;
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static void start_daemon(void)
{
    char exe[PATH_MAX], self[PATH_MAX], fd[16], buf[16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    int p[2];
    hvsim_admin_t *a;
    hvsim_vm_info_t info;
    GUID svc = hvsim_guid_from_port(9000);

    if (n < 0)
        die("readlink /proc/self/exe");
    self[n] = '\0';
    snprintf(exe, sizeof(exe), "%s/hvsimd", dirname(self));
    if (mkdtemp(dir) == NULL || pipe2(p, O_CLOEXEC) < 0)
        die("mkdtemp");
    snprintf(fd, sizeof(fd), "%d", p[1]);
    daemon_pid = fork();
    if (daemon_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        fcntl(p[1], F_SETFD, 0);
        execl(exe, exe, "--dir", dir, "--state-dir", "", "--ready-fd", fd, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    if (read(p[0], buf, sizeof(buf)) <= 0) {
        fprintf(stderr, "hvsim-bench: %s did not start\n", exe);
        exit(1);
    }
    close(p[0]);
    atexit(stop_daemon);
    setenv("HVSIM_DIR", dir, 1);
    setenv("HVSIM_PARTITION", "host", 1);
    if (hvsim_admin_open(dir, &a) < 0 || hvsim_admin_vm_add(a, "vm1", NULL, HVSIM_VM_CLASSIC, &info) < 0 ||
        hvsim_admin_service_add(a, &svc, "bench") < 0) {
        fprintf(stderr, "hvsim-bench: setting up the daemon failed\n");
        exit(1);
    }
    hvsim_admin_close(a);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

struct stat3 {
    double median, min, max;
};

static struct stat3 summarize(double *v, int n)
{
    struct stat3 s;

    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    s.min = v[0];
    s.max = v[n - 1];
    return s;
}

/* ---- transports: a listener and a connector for each ---------------------------------- */

enum transport { T_HVSIM, T_UNIX, T_TCP };
static const char *tname[] = { "hvsim", "af_unix", "tcp" };

struct ep {
    enum transport t;
    struct sockaddr_storage addr;
    socklen_t alen;
};

static int t_listen(struct ep *e)
{
    int l, one = 1;

    switch (e->t) {
    case T_HVSIM: {
        SOCKADDR_HV a = { .Family = AF_HYPERV, .VmId = HV_GUID_WILDCARD, .ServiceId = hvsim_guid_from_port(9000) };

        l = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
        if (l < 0 || hvsim_bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || hvsim_listen(l, 128) < 0)
            die("hvsim listen");
        return l;
    }
    case T_UNIX: {
        struct sockaddr_un *a = (struct sockaddr_un *)&e->addr;

        memset(a, 0, sizeof(*a));
        a->sun_family = AF_UNIX;
        snprintf(a->sun_path, sizeof(a->sun_path), "%s/unix.sock", dir);
        unlink(a->sun_path);
        e->alen = sizeof(*a);
        l = socket(AF_UNIX, SOCK_STREAM, 0);
        if (l < 0 || bind(l, (struct sockaddr *)a, e->alen) < 0 || listen(l, 128) < 0)
            die("unix listen");
        return l;
    }
    case T_TCP: {
        struct sockaddr_in *a = (struct sockaddr_in *)&e->addr;

        memset(a, 0, sizeof(*a));
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        e->alen = sizeof(*a);
        l = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (l < 0 || bind(l, (struct sockaddr *)a, e->alen) < 0 || listen(l, 128) < 0 ||
            getsockname(l, (struct sockaddr *)a, &e->alen) < 0)
            die("tcp listen");
        return l;
    }
    }
    return -1;
}

static int t_connect(struct ep *e)
{
    int s, one = 1;

    if (e->t == T_HVSIM) {
        SOCKADDR_HV a = { .Family = AF_HYPERV, .VmId = HV_GUID_PARENT, .ServiceId = hvsim_guid_from_port(9000) };

        s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
        if (s < 0 || hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
            die("hvsim connect");
        return s;
    }
    s = socket(e->addr.ss_family, SOCK_STREAM, 0);
    if (e->t == T_TCP)
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (s < 0 || connect(s, (struct sockaddr *)&e->addr, e->alen) < 0)
        die("connect");
    return s;
}

/* A peer that died must end the run, not hang it. */
static void wait_readable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    if (poll(&p, 1, 10000) != 1) {
        fprintf(stderr, "hvsim-bench: the other process stopped answering\n");
        exit(1);
    }
}

static int t_accept(struct ep *e, int l)
{
    int c, one = 1;

    wait_readable(l);
    c = e->t == T_HVSIM ? hvsim_accept(l, NULL, NULL) : accept(l, NULL, NULL);
    if (c < 0)
        die("accept");
    if (e->t == T_TCP)
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return c;
}

static void t_close(struct ep *e, int fd)
{
    if (e->t == T_HVSIM)
        hvsim_close(fd);
    else
        close(fd);
}

/* The client side runs in a child, attached as vm1 for hvsim. */
static pid_t spawn_client(void (*fn)(struct ep *, int), struct ep *e, int ctl, int parent_end)
{
    pid_t pid;

    fflush(stdout);
    pid = fork();

    if (pid < 0)
        die("fork");
    if (pid == 0) {
        /* Our copy of the parent's end would hide its EOF from us. */
        if (parent_end >= 0)
            close(parent_end);
        setenv("HVSIM_PARTITION", "vm1", 1);
        fn(e, ctl);
        _exit(0);
    }
    return pid;
}

/* ---- connection rate ------------------------------------------------------------------------ */

static void conn_client(struct ep *e, int ctl)
{
    int n;

    /* ctl tells how many connections to make; 0 ends. */
    while (read(ctl, &n, sizeof(n)) == (ssize_t)sizeof(n) && n > 0) {
        while (n--) {
            int s = t_connect(e);
            char c = 'x';

            if (write(s, &c, 1) != 1)
                die("write");
            t_close(e, s);
        }
    }
}

static double conn_round(struct ep *e, int l, int ctl)
{
    double t0 = now(), t;
    int n = 0, batch = 200;

    do {
        int i;

        if (write(ctl, &batch, sizeof(batch)) != (ssize_t)sizeof(batch))
            die("ctl");
        for (i = 0; i < batch; i++) {
            int c = t_accept(e, l);
            char ch;

            wait_readable(c);
            if (read(c, &ch, 1) != 1)
                die("first byte");
            t_close(e, c);
        }
        n += batch;
        t = now() - t0;
    } while (t < seconds);
    return n / t;
}

static struct stat3 bench_conn(enum transport t)
{
    struct ep e = { .t = t };
    double v[64];
    int l = t_listen(&e), ctl[2], r, zero = 0;
    pid_t pid;

    if (pipe(ctl) < 0)
        die("pipe");
    pid = spawn_client(conn_client, &e, ctl[0], ctl[1]);
    close(ctl[0]);
    conn_round(&e, l, ctl[1]); /* warm-up */
    for (r = 0; r < rounds; r++)
        v[r] = conn_round(&e, l, ctl[1]);
    if (write(ctl[1], &zero, sizeof(zero)) < 0)
        die("ctl");
    close(ctl[1]);
    waitpid(pid, NULL, 0);
    t_close(&e, l);
    return summarize(v, rounds);
}

/* ---- round trip ---------------------------------------------------------------------------------- */

static void echo_client(struct ep *e, int ctl)
{
    int s = e->t == T_UNIX ? ctl : t_connect(e);
    char c;

    while (read(s, &c, 1) == 1)
        if (write(s, &c, 1) != 1)
            break;
}

static double rtt_round(int s)
{
    double t0 = now(), t;
    long n = 0;
    char c = 'p';

    do {
        int i;

        for (i = 0; i < 1000; i++) {
            if (write(s, &c, 1) != 1 || read(s, &c, 1) != 1)
                die("ping-pong");
        }
        n += 1000;
        t = now() - t0;
    } while (t < seconds);
    return t / (double)n * 1e6;
}

static struct stat3 bench_rtt(enum transport t)
{
    struct ep e = { .t = t };
    double v[64];
    int s, r, pair[2];
    pid_t pid;

    if (t == T_UNIX) {
        /* The baseline: a connected AF_UNIX socketpair between two processes. */
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) < 0)
            die("socketpair");
        pid = spawn_client(echo_client, &e, pair[1], pair[0]);
        close(pair[1]);
        s = pair[0];
    } else {
        int l = t_listen(&e);

        pid = spawn_client(echo_client, &e, -1, -1);
        s = t_accept(&e, l);
        t_close(&e, l);
    }
    rtt_round(s);
    for (r = 0; r < rounds; r++)
        v[r] = rtt_round(s);
    t_close(&e, s);
    waitpid(pid, NULL, 0);
    return summarize(v, rounds);
}

static void print_row(const char *figure, const char *unit, enum transport t, struct stat3 s, struct stat3 base)
{
    printf("%-10s %-8s %12.1f %s  (min %.1f, max %.1f)  ratio %.2f\n", figure, tname[t], s.median, unit, s.min,
           s.max, s.median / base.median);
}

int main(int argc, char **argv)
{
    int i, do_conn = 0, do_rtt = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            if (rounds < 1 || rounds > 64) {
                fprintf(stderr, "hvsim-bench: --rounds: expected 1..64\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
            if (seconds <= 0 || seconds > 60) {
                fprintf(stderr, "hvsim-bench: --seconds: expected a number of seconds in (0, 60]\n");
                return 2;
            }
        } else if (strcmp(argv[i], "connrate") == 0) {
            do_conn = 1;
        } else if (strcmp(argv[i], "rtt") == 0) {
            do_rtt = 1;
        } else if (strcmp(argv[i], "all") == 0) {
            do_conn = do_rtt = 1;
        } else {
            fprintf(stderr, "usage: hvsim-bench [--rounds N] [--seconds S] connrate|rtt|all\n");
            return 2;
        }
    }
    if (!do_conn && !do_rtt)
        do_conn = do_rtt = 1;
    signal(SIGPIPE, SIG_IGN);
    start_daemon();
    printf("figure     transport      median          spread               vs baseline (rounds=%d, %.1fs each)\n",
           rounds, seconds);
    if (do_conn) {
        struct stat3 u = bench_conn(T_UNIX), tcp = bench_conn(T_TCP), h = bench_conn(T_HVSIM);

        print_row("connrate", "conn/s", T_UNIX, u, u);
        print_row("connrate", "conn/s", T_TCP, tcp, u);
        print_row("connrate", "conn/s", T_HVSIM, h, u);
        printf("connrate   hvsim/tcp ratio %.2f\n", h.median / tcp.median);
    }
    if (do_rtt) {
        struct stat3 u = bench_rtt(T_UNIX), h = bench_rtt(T_HVSIM);

        print_row("rtt-1B", "us", T_UNIX, u, u);
        print_row("rtt-1B", "us", T_HVSIM, h, u);
    }
    return 0;
}
