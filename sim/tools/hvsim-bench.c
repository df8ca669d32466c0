/* SPDX-License-Identifier: MIT */
/*
 * hvsim-bench: measures the simulator's stream core beside the same figure for
 * the kernel transports underneath it, in one run, so that a ratio (not an
 * absolute time) says what the simulator costs on whatever machine runs it.
 *
 * Wall-clock figures, each the median of --rounds rounds with min and max. In
 * a round the transports take turns in short slices (hvsim, af_unix, tcp,
 * af_unix, tcp, hvsim, ...), so the other jobs of a shared machine land on
 * every transport of the round alike, and each transport does the same number
 * of operations, calibrated once on AF_UNIX to last --seconds:
 *   throughput  host->guest, guest->host and both at once, per message size;
 *   rtt         ping-pong round trip (1 B, 4 KiB): p50, p99, p99.9, max;
 *   connrate    connect + accept + first byte + close per second: a guest (vm1)
 *               connecting to a host listener, through the daemon;
 *   scale       1..1000 concurrent streams: aggregate throughput, and memory
 *               (smaps_rollup Pss_Anon) and file descriptors per connection in
 *               the two peers and in hvsimd;
 *   memcpy      single-thread memcpy of 4 MiB, the ceiling for throughput;
 *   flood       (not in `all`) the median of 1,000 connects of vm1, each timed,
 *               idle and then while another VM's processes hold every
 *               per-partition ceiling at once (issue 11): the ratio is what a
 *               flood costs a VM that does not flood.
 * The hvsim data path goes through hvsim_send/hvsim_recv, as a libhvsim
 * program's does. The AF_UNIX baseline of throughput and rtt is a socketpair
 * between two processes: the same kind of connected stream socket with the
 * same default buffers as hvsim's. TCP runs on 127.0.0.1 with TCP_NODELAY.
 *
 * `hvsim-bench count` does a fixed number of operations and nothing else, with
 * a fixed number of system calls per operation (MSG_WAITALL, no racing), so
 * that bench/run.py can count instructions (callgrind) and system calls
 * (strace) per message and per connection without a clock.
 *
 * --json FILE writes every round of every figure (schema hvsim-bench-raw/1);
 * bench/run.py turns that into the report. The tool starts its own hvsimd
 * (next to this binary) in a temporary folder. Timing uses CLOCK_MONOTONIC;
 * the processes synchronise through a control socket, never by sleeping.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hvsim/hvsim.h"
#include "hvproto/cli.h"
#include "hvproto/proto.h"

#define MAXR 64 /* rounds */
#define MAXMSG (1 << 20)
#define BACKLOG 2048 /* above the largest batch of connections left waiting */
#define CONN_BATCH 100
#define SPRAY_MSG 65536
#define WAIT_MS 120000 /* a bound for a hung peer, never a wait */
#define SERVICE_PORT 9000

static int rounds = 5;
static double seconds = 0.2;
static char dir[] = "/tmp/hvsim-bench-XXXXXX";
static int have_dir;
static pid_t daemon_pid;
static FILE *json;
static int nfig;

/* Message buffers: the sender's and the receiver's, touched once so that no
 * round pays for first-touch page faults. */
static char sbuf[MAXMSG], rbuf[MAXMSG];

/*
 * CPU placement: the host process runs on one CPU and every guest process on
 * another. Left to itself the scheduler may put one pair of processes on the
 * same CPU and another pair on two, and keeps such a choice for seconds: one
 * transport then measures at a third of its speed for a whole figure while the
 * others do not (seen on this 2-CPU VM). Pinned, every transport gets the same
 * placement. -1: not pinned (--no-pin, or a single CPU). hvsimd is not pinned.
 */
static int host_cpu = -1, guest_cpu = -1;

static void choose_cpus(void)
{
    cpu_set_t set;
    int found = 0;

    if (sched_getaffinity(0, sizeof(set), &set) < 0)
        return;
    for (int c = 0; c < CPU_SETSIZE && found < 2; c++) {
        if (!CPU_ISSET(c, &set))
            continue;
        if (found++ == 0)
            host_cpu = c;
        else
            guest_cpu = c;
    }
    if (found < 2)
        host_cpu = guest_cpu = -1;
}

static void pin(int cpu)
{
    cpu_set_t set;

    if (cpu < 0)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0)
        fprintf(stderr, "hvsim-bench: cannot pin to CPU %d: %s (measuring unpinned)\n", cpu, strerror(errno));
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "hvsim-bench[%d]: %s: %s\n", (int)getpid(), what, strerror(errno));
    exit(1);
}

static void fail(const char *what)
{
    fprintf(stderr, "hvsim-bench[%d]: %s\n", (int)getpid(), what);
    exit(1);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* atexit: only the process that made them removes the daemon and the folder. */
static pid_t owner_pid;

static void cleanup(void)
{
    if (getpid() != owner_pid)
        return;
    if (daemon_pid > 0) {
        kill(daemon_pid, SIGTERM);
        waitpid(daemon_pid, NULL, 0);
        daemon_pid = 0;
    }
    if (have_dir) {
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        have_dir = 0;
    }
}

/* Interrupted (Ctrl-C, a CI timeout): stop the daemon, which removes its own
 * sockets, and remove what is left, with async-signal-safe calls only. The
 * guests die with us (PR_SET_PDEATHSIG). */
static char unix_path[sizeof(dir) + 16], vm_path[sizeof(dir) + 8];

static void on_signal(int sig)
{
    if (getpid() == owner_pid) {
        if (daemon_pid > 0) {
            kill(daemon_pid, SIGTERM);
            waitpid(daemon_pid, NULL, 0);
        }
        unlink(unix_path);
        rmdir(vm_path);
        rmdir(dir);
    }
    _exit(128 + sig);
}

static void make_dir(void)
{
    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    have_dir = 1;
    owner_pid = getpid();
    snprintf(unix_path, sizeof(unix_path), "%s/unix.sock", dir);
    snprintf(vm_path, sizeof(vm_path), "%s/vm", dir);
    atexit(cleanup);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
}

static void start_daemon(void)
{
    char exe[PATH_MAX], self[PATH_MAX], fd[16], buf[16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    int p[2];
    hvsim_admin_t *a;
    hvsim_vm_info_t info;
    GUID svc = hvsim_guid_from_port(SERVICE_PORT);

    if (n < 0)
        die("readlink /proc/self/exe");
    self[n] = '\0';
    snprintf(exe, sizeof(exe), "%s/hvsimd", dirname(self));
    if (pipe2(p, O_CLOEXEC) < 0)
        die("pipe");
    snprintf(fd, sizeof(fd), "%d", p[1]);
    fflush(NULL);
    daemon_pid = fork();
    if (daemon_pid < 0)
        die("fork");
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
    setenv("HVSIM_DIR", dir, 1);
    setenv("HVSIM_PARTITION", "host", 1);
    if (hvsim_admin_open(dir, &a) < 0 || hvsim_admin_vm_add(a, "vm1", NULL, HVSIM_VM_CLASSIC, &info) < 0 ||
        hvsim_admin_service_add(a, &svc, "bench") < 0)
        fail("setting up the daemon (vm1, service 9000) failed");
    hvsim_admin_close(a);
}

/* ---- statistics and output -------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double s[MAXR];

    memcpy(s, v, (size_t)n * sizeof(*v));
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double vmin(const double *v, int n)
{
    double m = v[0];

    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static double vmax(const double *v, int n)
{
    double m = v[0];

    for (int i = 1; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *sorted, long long n, double p)
{
    double x = p * (double)n;
    long long k = (long long)x;

    k += (double)k < x; /* ceil without libm */

    return sorted[k < 1 ? 0 : k > n ? n - 1 : k - 1];
}

enum transport { T_HVSIM, T_UNIX, T_TCP, T_MEMCPY, NX };
#define NT 3 /* the socket transports */
static const char *const tname[NX] = { "hvsim", "af_unix", "tcp", "memcpy" };

/*
 * A round of a figure is cut into SLICES short slices, and the transports take
 * turns slice by slice, so that the other jobs of a shared machine, which come
 * and go on a scale of tens of milliseconds, land on every transport of a round
 * alike. ROUND_ROBIN(j, t) visits each transport once, starting with a
 * different one each slice: whoever runs first, or right after TCP, meets
 * other caches and scheduler state, and that must not always be the same one.
 */
#define SLICES 8
#define ROUND_ROBIN(j, t) for (int k_ = 0, t = (j) % NT; k_ < NT; k_++, t = (t + 1) % NT)

/* One figure: the rounds of every transport that measured it. */
struct fig {
    char name[64];
    const char *kind, *unit, *better;
    char params[160]; /* a JSON object */
    int n[NX];
    double v[NX][MAXR];
};

static void fig_init(struct fig *f, const char *kind, const char *unit, const char *better)
{
    memset(f, 0, sizeof(*f));
    f->kind = kind;
    f->unit = unit;
    f->better = better;
    snprintf(f->params, sizeof(f->params), "{}");
}

static void emit(const struct fig *f)
{
    int t, r;

    printf("%-28s %-7s", f->name, f->unit);
    for (t = 0; t < NX; t++) {
        if (f->n[t] == 0)
            continue;
        printf("  %s %.4g [%.4g..%.4g]", tname[t], median(f->v[t], f->n[t]), vmin(f->v[t], f->n[t]),
               vmax(f->v[t], f->n[t]));
    }
    if (f->n[T_HVSIM] && f->n[T_UNIX]) {
        double b = median(f->v[T_UNIX], f->n[T_UNIX]);

        if (b != 0)
            printf("  hvsim/af_unix %.3f", median(f->v[T_HVSIM], f->n[T_HVSIM]) / b);
    }
    printf("\n");
    fflush(stdout);
    if (json == NULL)
        return;
    fprintf(json, "%s\n  {\"name\": \"%s\", \"kind\": \"%s\", \"unit\": \"%s\", \"better\": \"%s\", \"params\": %s, "
                  "\"values\": {",
            nfig++ ? "," : "", f->name, f->kind, f->unit, f->better, f->params);
    for (t = 0, r = 0; t < NX; t++) {
        if (f->n[t] == 0)
            continue;
        fprintf(json, "%s\"%s\": [", r++ ? ", " : "", tname[t]);
        for (int i = 0; i < f->n[t]; i++)
            fprintf(json, "%s%.9g", i ? ", " : "", f->v[t][i]);
        fprintf(json, "]");
    }
    fprintf(json, "}}");
    fflush(json);
}

/* ---- transports ---------------------------------------------------------------------------- */

struct listener {
    int fd;
    struct sockaddr_storage addr;
    socklen_t alen;
};
static struct listener L[NT] = { { .fd = -1 }, { .fd = -1 }, { .fd = -1 } };

static void t_listen(enum transport t)
{
    struct listener *e = &L[t];
    int l, one = 1;

    switch (t) {
    case T_HVSIM: {
        SOCKADDR_HV a = { .Family = AF_HYPERV,
                          .VmId = HV_GUID_WILDCARD,
                          .ServiceId = hvsim_guid_from_port(SERVICE_PORT) };

        l = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
        if (l < 0 || hvsim_bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || hvsim_listen(l, BACKLOG) < 0)
            die("hvsim listen");
        break;
    }
    case T_UNIX: {
        struct sockaddr_un *a = (struct sockaddr_un *)&e->addr;

        memset(a, 0, sizeof(*a));
        a->sun_family = AF_UNIX;
        snprintf(a->sun_path, sizeof(a->sun_path), "%s", unix_path);
        unlink(a->sun_path);
        e->alen = sizeof(*a);
        l = socket(AF_UNIX, SOCK_STREAM, 0);
        if (l < 0 || bind(l, (struct sockaddr *)a, e->alen) < 0 || listen(l, BACKLOG) < 0)
            die("unix listen");
        break;
    }
    case T_TCP: {
        struct sockaddr_in *a = (struct sockaddr_in *)&e->addr;

        memset(a, 0, sizeof(*a));
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        e->alen = sizeof(*a);
        l = socket(AF_INET, SOCK_STREAM, 0);
        if (l < 0)
            die("tcp socket");
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(l, (struct sockaddr *)a, e->alen) < 0 || listen(l, BACKLOG) < 0 ||
            getsockname(l, (struct sockaddr *)a, &e->alen) < 0)
            die("tcp listen");
        break;
    }
    default:
        return;
    }
    e->fd = l;
}

/*
 * HVSIM_TEST_SLOWDOWN=message|connection adds one system call to every hvsim
 * message sent or received, or to every hvsim connect, so that
 * harness/test_bench.py can show that the regression gate (system calls per
 * operation) catches it. It lives here, in the benchmark, so the library's
 * data path carries no test switch.
 */
enum { SLOW_NONE = 0, SLOW_MESSAGE = 1, SLOW_CONNECTION = 2 };
static int slow_mode = -1;

static void slowdown(int kind)
{
    if (slow_mode < 0) {
        const char *e = getenv("HVSIM_TEST_SLOWDOWN");

        slow_mode = e && strcmp(e, "message") == 0 ? SLOW_MESSAGE
                    : e && strcmp(e, "connection") == 0 ? SLOW_CONNECTION
                                                         : SLOW_NONE;
    }
    if (slow_mode == kind)
        (void)syscall(SYS_getppid);
}

static int t_connect(enum transport t)
{
    int s, one = 1;

    if (t == T_HVSIM) {
        SOCKADDR_HV a = { .Family = AF_HYPERV,
                          .VmId = HV_GUID_PARENT,
                          .ServiceId = hvsim_guid_from_port(SERVICE_PORT) };

        s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
        slowdown(SLOW_CONNECTION);
        if (s < 0 || hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
            die("hvsim connect (a guest of vm1 to the host's service 9000)");
        return s;
    }
    s = socket(L[t].addr.ss_family, SOCK_STREAM, 0);
    if (s < 0)
        die("socket");
    if (t == T_TCP)
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(s, (struct sockaddr *)&L[t].addr, L[t].alen) < 0)
        die(t == T_TCP ? "tcp connect" : "unix connect");
    return s;
}

/* A peer that died must end the run, not hang it. */
static void wait_readable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    if (poll(&p, 1, WAIT_MS) != 1)
        fail("the other process stopped answering");
}

static int t_accept(enum transport t)
{
    int c, one = 1;

    wait_readable(L[t].fd);
    c = t == T_HVSIM ? hvsim_accept(L[t].fd, NULL, NULL) : accept(L[t].fd, NULL, NULL);
    if (c < 0)
        die("accept");
    if (t == T_TCP)
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return c;
}

static void t_close(enum transport t, int fd)
{
    if (t == T_HVSIM)
        hvsim_close(fd);
    else
        close(fd);
}

/* The data path: hvsim_send/hvsim_recv for hvsim, as a libhvsim program does. */
static ssize_t t_send(enum transport t, int fd, const void *b, size_t n, int flags)
{
    if (t != T_HVSIM)
        return send(fd, b, n, flags | MSG_NOSIGNAL);
    slowdown(SLOW_MESSAGE);
    return hvsim_send(fd, b, n, flags);
}

static ssize_t t_recv(enum transport t, int fd, void *b, size_t n, int flags)
{
    if (t != T_HVSIM)
        return recv(fd, b, n, flags);
    slowdown(SLOW_MESSAGE);
    return hvsim_recv(fd, b, n, flags);
}

static void send_all(enum transport t, int fd, const char *b, size_t n)
{
    while (n > 0) {
        ssize_t r = t_send(t, fd, b, n, 0);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die("send");
        b += r;
        n -= (size_t)r;
    }
}

/* Reads one message of n bytes, as a framed reader would: asks for what is
 * missing of it, never more. */
static void recv_all(enum transport t, int fd, char *b, size_t n, int flags)
{
    while (n > 0) {
        ssize_t r = t_recv(t, fd, b, n, flags);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die("recv");
        if (r == 0)
            fail("recv: the other process closed the stream early");
        b += r;
        n -= (size_t)r;
    }
}

/* ---- peers: a guest (vm1) process driven over a control socket ---------------------------- */

enum op { OP_EXIT, OP_SINK, OP_SOURCE, OP_BOTH, OP_ECHO, OP_CONN, OP_OPEN, OP_CLOSEALL, OP_SPRAY, OP_WARM, OP_CONNLAT,
          OP_LATMED };

struct cmd {
    int op;
    int size;
    int flags; /* recv flags (MSG_WAITALL for counting) */
    int pad;
    long long count;
};

struct peer {
    enum transport t;
    pid_t pid;
    int ctl; /* the parent's end of the control socket */
    int data; /* the parent's end of the data stream, -1 when none */
};

static void read_exact(int fd, void *b, size_t n)
{
    char *p = b;

    while (n > 0) {
        ssize_t r;

        wait_readable(fd);
        r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            fail("the other process is gone (control socket closed)");
        p += r;
        n -= (size_t)r;
    }
}

static void write_exact(int fd, const void *b, size_t n)
{
    if (write(fd, b, n) != (ssize_t)n)
        die("control socket");
}

static void cmd(const struct peer *p, int op, int size, long long count, int flags)
{
    struct cmd c = { .op = op, .size = size, .flags = flags, .count = count };

    write_exact(p->ctl, &c, sizeof(c));
}

static long long wait_ack(const struct peer *p)
{
    long long v;

    read_exact(p->ctl, &v, sizeof(v));
    return v;
}

struct pump {
    enum transport t;
    int fd, size;
    long long count;
};

static void send_msgs(enum transport t, int fd, int size, long long count)
{
    for (long long i = 0; i < count; i++)
        send_all(t, fd, sbuf, (size_t)size);
}

static void recv_msgs(enum transport t, int fd, int size, long long count, int flags)
{
    for (long long i = 0; i < count; i++)
        recv_all(t, fd, rbuf, (size_t)size, flags);
}

static void *pump_main(void *arg)
{
    const struct pump *p = arg;

    send_msgs(p->t, p->fd, p->size, p->count);
    return NULL;
}

/* Both directions at once (the host's side): a sender thread beside the
 * receiving caller. */
static void both(enum transport t, int fd, int size, long long count)
{
    struct pump p = { t, fd, size, count };
    pthread_t th;

    if ((errno = pthread_create(&th, NULL, pump_main, &p)) != 0)
        die("pthread_create");
    recv_msgs(t, fd, size, count, 0);
    pthread_join(th, NULL);
}

/* Sends count bytes on each of n non-blocking streams, whichever can take
 * data, until every one has had its share. */
static void spray(enum transport t, const int *fds, int n, long long each)
{
    long long *left = malloc((size_t)n * sizeof(*left));
    struct epoll_event ev[64];
    int ep = epoll_create1(EPOLL_CLOEXEC), active = n, i;

    if (left == NULL || ep < 0)
        die("spray");
    for (i = 0; i < n; i++) {
        struct epoll_event e = { .events = EPOLLOUT, .data.u32 = (uint32_t)i };

        left[i] = each;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e) < 0)
            die("epoll_ctl");
    }
    while (active > 0) {
        int k = epoll_wait(ep, ev, 64, WAIT_MS);

        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            fail("spray: the streams stopped taking data");
        }
        for (int j = 0; j < k; j++) {
            int s = (int)ev[j].data.u32;

            while (left[s] > 0) {
                size_t want = left[s] < SPRAY_MSG ? (size_t)left[s] : SPRAY_MSG;
                ssize_t r = t_send(t, fds[s], sbuf, want, MSG_DONTWAIT);

                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    break;
                if (r <= 0)
                    die("spray send");
                left[s] -= r;
            }
            if (left[s] == 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fds[s], NULL);
                active--;
            }
        }
    }
    close(ep);
    free(left);
}

/*
 * The guest's sending half for "both directions at once": a process of its own
 * that shares the data stream, started with the peer and driven over its own
 * control socket. A process rather than a thread, because a thread created in
 * the forked child of a threaded program is more than ThreadSanitizer can
 * follow (make test SANITIZE=thread runs this tool).
 */
static pid_t sender_pid;

static int peer_sender(enum transport t, int data)
{
    int sv[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair");
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        struct cmd c;
        long long done = 0;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(sv[0]);
        while (read(sv[1], &c, sizeof(c)) == (ssize_t)sizeof(c) && c.op == OP_SOURCE) {
            send_msgs(t, data, c.size, c.count);
            write_exact(sv[1], &done, sizeof(done));
        }
        _exit(0);
    }
    close(sv[1]);
    sender_pid = pid;
    return sv[0];
}

/* The sender must end on its own: killed (PR_SET_PDEATHSIG), it would leave
 * callgrind no time to write its counts. */
static void stop_sender(int sender_ctl)
{
    if (sender_ctl < 0)
        return;
    close(sender_ctl);
    waitpid(sender_pid, NULL, 0);
}

/* The guest's side of every figure. */
static void peer_main(enum transport t, int ctl, int data)
{
    int *open_fds = NULL, nopen = 0, sender_ctl = data >= 0 ? peer_sender(t, data) : -1;
    double *lat = NULL;
    long long nlat = 0;
    struct cmd c;

    for (;;) {
        long long done = 0;
        ssize_t r = read(ctl, &c, sizeof(c));

        if (r == 0 || (r == (ssize_t)sizeof(c) && c.op == OP_EXIT)) {
            stop_sender(sender_ctl);
            return;
        }
        if (r != (ssize_t)sizeof(c))
            die("peer: control socket");
        switch (c.op) {
        case OP_SINK:
            recv_msgs(t, data, c.size, c.count, c.flags);
            break;
        case OP_SOURCE:
            send_msgs(t, data, c.size, c.count);
            break;
        case OP_BOTH: {
            /* The sending half is the helper process (see peer_sender). */
            struct cmd src = { .op = OP_SOURCE, .size = c.size, .count = c.count };

            write_exact(sender_ctl, &src, sizeof(src));
            recv_msgs(t, data, c.size, c.count, 0);
            read_exact(sender_ctl, &done, sizeof(done));
            break;
        }
        case OP_ECHO:
            for (long long i = 0; i < c.count; i++) {
                recv_all(t, data, rbuf, (size_t)c.size, c.flags);
                send_all(t, data, rbuf, (size_t)c.size);
            }
            break;
        case OP_CONN:
            for (long long i = 0; i < c.count; i++) {
                int s = t_connect(t);

                send_all(t, s, "x", 1);
                t_close(t, s);
            }
            break;
        case OP_OPEN:
            /* Connect and hold; with size 1, write each stream's first byte, so
             * that the acceptor finds everything there (a fixed call count). */
            open_fds = realloc(open_fds, (size_t)(nopen + c.count) * sizeof(*open_fds));
            if (open_fds == NULL)
                die("realloc");
            for (long long i = 0; i < c.count; i++) {
                open_fds[nopen] = t_connect(t);
                if (c.size == 1)
                    send_all(t, open_fds[nopen], "x", 1);
                nopen++;
            }
            break;
        case OP_CLOSEALL:
            for (int i = 0; i < nopen; i++)
                t_close(t, open_fds[i]);
            nopen = 0;
            break;
        case OP_SPRAY:
            spray(t, open_fds, nopen, c.count);
            break;
        case OP_CONNLAT:
            /* As OP_CONN, each connect() timed (its daemon round trip and the ticket). */
            lat = realloc(lat, (size_t)(nlat + c.count) * sizeof(*lat));
            if (lat == NULL)
                die("realloc");
            for (long long i = 0; i < c.count; i++) {
                double t0 = now();
                int s = t_connect(t);

                lat[nlat++] = now() - t0;
                send_all(t, s, "x", 1);
                t_close(t, s);
            }
            break;
        case OP_LATMED:
            /* The median of the connects timed since the last OP_LATMED, in ns. */
            if (nlat > 0) {
                qsort(lat, (size_t)nlat, sizeof(*lat), cmp_double);
                done = (long long)(pct(lat, nlat, 0.5) * 1e9);
            }
            nlat = 0;
            break;
        case OP_WARM:
            /* Attach to the daemon now, so per-connection figures leave it out. */
            if (t == T_HVSIM) {
                int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

                if (s < 0)
                    die("hvsim_socket");
                hvsim_close(s);
            }
            break;
        default:
            fail("peer: unknown command");
        }
        write_exact(ctl, &done, sizeof(done));
    }
}

/* Closes every descriptor above 2 but a and b (-1: none). */
static void close_all_but(int a, int b)
{
    int keep[2] = { a < b ? a : b, a < b ? b : a };
    unsigned lo = 3;

    for (int i = 0; i < 2; i++) {
        if (keep[i] < 3)
            continue;
        if ((unsigned)keep[i] > lo)
            close_range(lo, (unsigned)keep[i] - 1, 0);
        lo = (unsigned)keep[i] + 1;
    }
    close_range(lo, ~0u, 0);
}

/* Forks the guest process of transport t. With data, it also opens the data
 * stream: a socketpair for AF_UNIX, a connection to the listener otherwise. */
static struct peer spawn_peer(enum transport t, int with_data)
{
    struct peer p = { .t = t, .data = -1 };
    int ctl[2], pair[2] = { -1, -1 };

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0)
        die("socketpair");
    if (with_data && t == T_UNIX && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
        die("socketpair");
    fflush(NULL);
    p.pid = fork();
    if (p.pid < 0)
        die("fork");
    if (p.pid == 0) {
        int data;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        pin(guest_cpu);
        /* Other peers' control sockets, the parent's data ends and the
         * listeners stay with the parent: a copy here would hide their EOF. */
        close_all_but(ctl[1], pair[1]);
        setenv("HVSIM_PARTITION", "vm1", 1);
        data = !with_data ? -1 : t == T_UNIX ? pair[1] : t_connect(t);
        peer_main(t, ctl[1], data);
        _exit(0);
    }
    close(ctl[1]);
    p.ctl = ctl[0];
    if (with_data) {
        if (t == T_UNIX) {
            close(pair[1]);
            p.data = pair[0];
        } else {
            p.data = t_accept(t);
        }
    }
    return p;
}

static void stop_peer(struct peer *p)
{
    int st;

    if (p->pid <= 0)
        return;
    cmd(p, OP_EXIT, 0, 0, 0);
    if (p->data >= 0)
        t_close(p->t, p->data);
    close(p->ctl);
    if (waitpid(p->pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail("a guest process failed");
    p->pid = 0;
}

/* The host end's kernel buffers of each data stream: the comparison is fair
 * only if hvsim's AF_UNIX stream has the socketpair's buffers. */
static void report_buffers(const struct peer *peers)
{
    printf("# socket buffers of the host end (SO_SNDBUF/SO_RCVBUF):");
    for (int t = 0; t < NT; t++) {
        int snd = 0, rcv = 0;
        socklen_t l1 = sizeof(snd), l2 = sizeof(rcv);

        getsockopt(peers[t].data, SOL_SOCKET, SO_SNDBUF, &snd, &l1);
        getsockopt(peers[t].data, SOL_SOCKET, SO_RCVBUF, &rcv, &l2);
        printf(" %s %d/%d", tname[t], snd, rcv);
        if (json)
            fprintf(json, "%s\"%s\": [%d, %d]", t ? ", " : "\"buffers\": {", tname[t], snd, rcv);
    }
    printf("\n");
    if (json)
        fprintf(json, "}, \"figures\": [");
}

/* ---- throughput ---------------------------------------------------------------------------- */

enum dir { D_H2G, D_G2H, D_BOTH };
static const char *const dname[] = { "h2g", "g2h", "both" };

/* One round: count messages of size each way asked for; returns seconds. */
static double tput_round(const struct peer *p, enum dir d, int size, long long count)
{
    double t0 = now();

    switch (d) {
    case D_H2G:
        cmd(p, OP_SINK, size, count, 0);
        send_msgs(p->t, p->data, size, count);
        break;
    case D_G2H:
        cmd(p, OP_SOURCE, size, count, 0);
        recv_msgs(p->t, p->data, size, count, 0);
        break;
    case D_BOTH:
        cmd(p, OP_BOTH, size, count, 0);
        both(p->t, p->data, size, count);
        break;
    }
    wait_ack(p);
    return now() - t0;
}

/* Grows count until a round is long enough to time, then scales it to --seconds. */
static long long calibrate(double (*round)(const struct peer *, long long, const void *), const struct peer *p,
                           const void *arg, long long count)
{
    for (;;) {
        double el = round(p, count, arg);

        if (el >= seconds / 8 || count >= (1LL << 40)) {
            double c = (double)count * seconds / (el > 1e-9 ? el : 1e-9);

            return c < 1 ? 1 : (long long)c;
        }
        count *= 4;
    }
}

struct tput_arg {
    enum dir d;
    int size;
};

static double tput_cal(const struct peer *p, long long count, const void *arg)
{
    const struct tput_arg *a = arg;

    return tput_round(p, a->d, a->size, count);
}

static int contains(const int *v, int n, int x)
{
    for (int i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

static void bench_throughput(struct peer *peers, const int *sizes, int nsizes, const int *dirs, int ndirs)
{
    for (int d = 0; d < 3; d++) {
        if (!contains(dirs, ndirs, d))
            continue;
        for (int i = 0; i < nsizes; i++) {
            struct tput_arg a = { (enum dir)d, sizes[i] };
            long long start = (4 << 20) / sizes[i], count, slice;
            double bytes;
            struct fig f;

            fig_init(&f, "throughput", "GB/s", "higher");
            snprintf(f.name, sizeof(f.name), "throughput.%s.%d", dname[d], sizes[i]);
            snprintf(f.params, sizeof(f.params), "{\"direction\": \"%s\", \"size\": %d}", dname[d], sizes[i]);
            count = calibrate(tput_cal, &peers[T_UNIX], &a, start > 16 ? start : 16);
            for (int t = 0; t < NT; t++) /* warm-up */
                if (t != T_UNIX)
                    tput_round(&peers[t], a.d, a.size, count / 4 + 1);
            slice = count / SLICES > 0 ? count / SLICES : 1;
            bytes = (double)slice * SLICES * sizes[i] * (d == D_BOTH ? 2 : 1);
            for (int r = 0; r < rounds; r++) {
                double el[NT] = { 0 };

                for (int j = 0; j < SLICES; j++)
                    ROUND_ROBIN(r + j, t)
                        el[t] += tput_round(&peers[t], a.d, a.size, slice);
                for (int t = 0; t < NT; t++)
                    f.v[t][f.n[t]++] = bytes / el[t] / 1e9;
            }
            emit(&f);
        }
    }
}

static void *(*volatile copy_fn)(void *, const void *, size_t) = memcpy;

static void bench_memcpy(void)
{
    size_t len = 4u << 20;
    char *a = malloc(len), *b = malloc(len);
    long long count = 16;
    struct fig f;

    if (a == NULL || b == NULL)
        die("malloc");
    memset(a, 1, len);
    memset(b, 2, len);
    fig_init(&f, "throughput", "GB/s", "higher");
    snprintf(f.name, sizeof(f.name), "memcpy");
    snprintf(f.params, sizeof(f.params), "{\"size\": %zu}", len);
    for (;;) {
        double t0 = now(), el;

        for (long long i = 0; i < count; i++)
            copy_fn(i & 1 ? a : b, i & 1 ? b : a, len);
        el = now() - t0;
        if (el >= seconds / 8) {
            count = (long long)((double)count * seconds / el) + 1;
            break;
        }
        count *= 4;
    }
    for (int r = 0; r < rounds; r++) {
        double t0 = now();

        for (long long i = 0; i < count; i++)
            copy_fn(i & 1 ? a : b, i & 1 ? b : a, len);
        f.v[T_MEMCPY][f.n[T_MEMCPY]++] = (double)count * (double)len / (now() - t0) / 1e9;
    }
    free(a);
    free(b);
    emit(&f);
}

/* ---- round trip ---------------------------------------------------------------------------- */

static double *samples[NT];

/* count round trips; each one's time (us) goes to out[]. */
static double rtt_round(const struct peer *p, int size, long long count, double *out)
{
    double t0 = now();

    cmd(p, OP_ECHO, size, count, 0);
    for (long long i = 0; i < count; i++) {
        double a = now();

        send_all(p->t, p->data, sbuf, (size_t)size);
        recv_all(p->t, p->data, rbuf, (size_t)size, 0);
        out[i] = (now() - a) * 1e6;
    }
    wait_ack(p);
    return now() - t0;
}

static double rtt_cal(const struct peer *p, long long count, const void *arg)
{
    return rtt_round(p, *(const int *)arg, count, samples[p->t]);
}

static void bench_rtt(struct peer *peers, const int *sizes, int nsizes)
{
    static const double ps[] = { 0.50, 0.99, 0.999, 1.0 };
    static const char *const pn[] = { "p50", "p99", "p99.9", "max" };

    for (int i = 0; i < nsizes; i++) {
        struct fig f[4];
        long long count, slice, cap = 1 << 21;

        for (int t = 0; t < NT; t++) {
            samples[t] = realloc(samples[t], (size_t)cap * sizeof(*samples[t]));
            if (samples[t] == NULL)
                die("malloc");
        }
        count = calibrate(rtt_cal, &peers[T_UNIX], &sizes[i], 1000);
        count = count > cap ? cap : count < 2000 ? 2000 : count; /* p99.9 needs samples */
        slice = count / SLICES;
        count = slice * SLICES;
        for (int k = 0; k < 4; k++) {
            fig_init(&f[k], "latency", "us", "lower");
            snprintf(f[k].name, sizeof(f[k].name), "rtt.%d.%s", sizes[i], pn[k]);
            snprintf(f[k].params, sizeof(f[k].params), "{\"size\": %d, \"percentile\": \"%s\", \"samples\": %lld}",
                     sizes[i], pn[k], count);
        }
        for (int t = 0; t < NT; t++)
            if (t != T_UNIX)
                rtt_round(&peers[t], sizes[i], count / 4 + 1, samples[t]);
        for (int r = 0; r < rounds; r++) {
            for (int j = 0; j < SLICES; j++)
                ROUND_ROBIN(r + j, t)
                    rtt_round(&peers[t], sizes[i], slice, samples[t] + j * slice);
            for (int t = 0; t < NT; t++) {
                qsort(samples[t], (size_t)count, sizeof(*samples[t]), cmp_double);
                for (int k = 0; k < 4; k++)
                    f[k].v[t][f[k].n[t]++] = pct(samples[t], count, ps[k]);
            }
        }
        for (int k = 0; k < 4; k++)
            emit(&f[k]);
    }
}

/* ---- connection rate ----------------------------------------------------------------------- */

/* The guest connects, writes one byte and closes; the host accepts, reads the
 * byte and closes. Batches keep the backlog short. */
static double conn_round(const struct peer *p, long long count, const void *arg)
{
    double t0 = now();

    (void)arg;
    while (count > 0) {
        long long b = count < CONN_BATCH ? count : CONN_BATCH;

        cmd(p, OP_CONN, 0, b, 0);
        for (long long i = 0; i < b; i++) {
            int c = t_accept(p->t);
            char ch;

            recv_all(p->t, c, &ch, 1, 0);
            t_close(p->t, c);
        }
        wait_ack(p);
        count -= b;
    }
    return now() - t0;
}

static void bench_conn(struct peer *peers)
{
    struct fig f;
    long long count = calibrate(conn_round, &peers[T_UNIX], NULL, 100), slice = count / SLICES + 1;

    fig_init(&f, "connrate", "conn/s", "higher");
    snprintf(f.name, sizeof(f.name), "connrate");
    snprintf(f.params, sizeof(f.params), "{\"connections\": %lld}", count);
    for (int t = 0; t < NT; t++)
        if (t != T_UNIX)
            conn_round(&peers[t], count / 4 + 1, NULL);
    for (int r = 0; r < rounds; r++) {
        double el[NT] = { 0 };

        for (int j = 0; j < SLICES; j++)
            ROUND_ROBIN(r + j, t)
                el[t] += conn_round(&peers[t], slice, NULL);
        for (int t = 0; t < NT; t++)
            f.v[t][f.n[t]++] = (double)(slice * SLICES) / el[t];
    }
    emit(&f);
}

/* ---- flood --------------------------------------------------------------------------------- */

/*
 * Another VM ("vmf") holds every per-partition ceiling of the daemon's
 * settings at once: its control connections (each a HELLO'd raw connection
 * whose event socket never drains), its binds, the host connects pending for
 * its guest (a raw gateway that never answers) and its queued events (VM
 * events until the queue is full). The raw client speaks hvproto/proto.h, as
 * a flooding process would.
 */
#define FLOOD_CONNECTS 1000
#define FLOOD_MAX 100000

struct flood {
    int ctl[FLOOD_MAX], evt[FLOOD_MAX], n;
    int host; /* the raw host session whose connects wait for vmf's guest */
    int chan; /* the never-answering gateway's channel */
    uint32_t seq;
};

static int flood_dial(const char *sock)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, sock);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("flood: connect to a control socket");
    return fd;
}

/* One request and its reply's status (the body into out); fd_back gets an fd the reply carried. */
static int flood_call(struct flood *fl, int fd, unsigned type, const void *body, size_t len, int pass_fd, void *out,
                      size_t outlen)
{
    static char buf[HVSIM_MSG_MAX];
    struct hvsim_msg_hdr h;
    int got = -1;

    if (hvsim__msg_send(fd, type, 0, ++fl->seq, body, len, NULL, 0, pass_fd) < 0)
        fail("flood: send");
    wait_readable(fd);
    if (hvsim__msg_recv(fd, buf, sizeof(buf), &got) < (ssize_t)sizeof(h))
        fail("flood: the daemon closed a control connection");
    if (got >= 0)
        close(got); /* a pending connect's reply socket: the connect keeps waiting */
    memcpy(&h, buf, sizeof(h));
    if (out && h.status == 0)
        memcpy(out, buf + sizeof(h), outlen < h.len ? outlen : h.len);
    return h.status;
}

/* A control connection of partition vmf, attached, its event socket never read
 * and the daemon's end of it as small as the kernel allows (so events queue
 * in hvsimd soon). */
static int flood_attach(struct flood *fl)
{
    struct hvsim_msg_hello m = { .version = HVSIM_PROTO_VERSION };
    int sv[2], one = 1, i = fl->n;

    fl->ctl[i] = flood_dial("vm/vmf.sock");
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        die("flood: socketpair");
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
    if (flood_call(fl, fl->ctl[i], HVSIM_MSG_HELLO, &m, sizeof(m), sv[1], NULL, 0) != 0)
        fail("flood: a HELLO under the ceiling was refused");
    close(sv[1]);
    fl->evt[i] = sv[0];
    fl->n++;
    return fl->ctl[i];
}

static unsigned setting_u(hvsim_admin_t *a, const char *name)
{
    char v[64];

    if (hvsim_admin_setting_get(a, name, v, sizeof(v)) < 0)
        fail("flood: reading a setting");
    return (unsigned)strtoul(v, NULL, 10);
}

/* vmf's use of one ceiling, from hvsimctl status ("usage.vmf=... events N/MAX"). */
static unsigned flood_use(hvsim_admin_t *a, const char *what)
{
    char *text = NULL, *p;
    unsigned v = 0;

    if (hvsim_admin_status(a, &text) < 0)
        fail("flood: status");
    p = strstr(text, "usage.vmf=");
    p = p ? strstr(p, what) : NULL;
    if (p)
        v = (unsigned)strtoul(p + strlen(what) + 1, NULL, 10);
    free(text);
    return v;
}

static void flood_start(struct flood *fl, hvsim_admin_t *a)
{
    unsigned conns = setting_u(a, "max_connections_per_partition"), binds = setting_u(a, "max_binds_per_partition"),
             pending = setting_u(a, "max_pending_connects"), events = setting_u(a, "max_queued_events");
    struct hvsim_msg_bind b = { .personality = HVSIM_PERS_LINUX, .svc = hvsim_guid_from_port(5000) };
    struct hvsim_msg_listen l = { .backlog = 16, .gateway = HVSIM_GW_STREAM };
    struct hvsim_msg_bind_reply br;
    struct hvsim_msg_connect c = { .personality = HVSIM_PERS_VSOCK_HOST, .svc = hvsim_guid_from_port(6000) };
    struct hvsim_msg_hello hello = { .version = HVSIM_PROTO_VERSION };
    hvsim_vm_info_t info;
    int sv[2], hs[2];

    if (conns > FLOOD_MAX || hvsim_admin_vm_add(a, "vmf", NULL, HVSIM_VM_CLASSIC, &info) < 0)
        fail("flood: adding vmf (or max_connections_per_partition above 100000)");
    while ((unsigned)fl->n < conns)
        flood_attach(fl);
    /* Its gateway (one bind), then the other binds. */
    if (flood_call(fl, fl->ctl[0], HVSIM_MSG_BIND, &b, sizeof(b), -1, &br, sizeof(br)) != 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        fail("flood: the gateway's bind");
    l.bind_id = br.bind_id;
    snprintf(l.uname, sizeof(l.uname), "%024x", (unsigned)getpid());
    if (flood_call(fl, fl->ctl[0], HVSIM_MSG_LISTEN, &l, sizeof(l), sv[1], NULL, 0) != 0)
        fail("flood: the gateway's listen");
    close(sv[1]);
    fl->chan = sv[0];
    b.personality = HVSIM_PERS_WINDOWS;
    b.svc = HV_GUID_ZERO; /* a random service each */
    for (unsigned i = 1; i < binds; i++)
        if (flood_call(fl, fl->ctl[i % (unsigned)fl->n], HVSIM_MSG_BIND, &b, sizeof(b), -1, NULL, 0) != 0)
            fail("flood: a bind under the ceiling was refused");
    /* The host's connects to vmf's guest wait for a gateway that never answers. */
    fl->host = flood_dial("host.sock");
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, hs) < 0 ||
        flood_call(fl, fl->host, HVSIM_MSG_HELLO, &hello, sizeof(hello), hs[1], NULL, 0) != 0)
        fail("flood: the host's raw session");
    close(hs[1]);
    fl->evt[fl->n] = hs[0]; /* closed with the rest */
    c.vmid.Data1 = info.cid;
    for (unsigned i = 0; i < pending; i++)
        flood_call(fl, fl->host, HVSIM_MSG_CONNECT, &c, sizeof(c), -1, NULL, 0);
    /* Events until vmf's queue is full: each pause and resume reaches every
     * one of its processes, whose event sockets fill first. */
    for (int i = 0; i < 10000 && flood_use(a, "events") + conns <= events; i++)
        if (hvsim_admin_vm_op(a, "vmf", i % 2 ? "resume" : "pause") < 0)
            fail("flood: vm pause/resume");
    printf("# flood: vmf holds connections %u/%u binds %u/%u pending %u/%u events %u/%u\n",
           flood_use(a, "connections"), conns, flood_use(a, "binds"), binds, flood_use(a, "pending"), pending,
           flood_use(a, "events"), events);
}

static void flood_stop(struct flood *fl)
{
    for (int i = 0; i < fl->n; i++) {
        close(fl->ctl[i]);
        close(fl->evt[i]);
    }
    close(fl->evt[fl->n]);
    close(fl->host);
    close(fl->chan);
    fl->n = 0;
}

/* The median time of FLOOD_CONNECTS connects of vm1 (seconds). */
static double flood_round(const struct peer *p)
{
    for (long long left = FLOOD_CONNECTS; left > 0; left -= CONN_BATCH) {
        long long b = left < CONN_BATCH ? left : CONN_BATCH;

        cmd(p, OP_CONNLAT, 0, b, 0);
        for (long long i = 0; i < b; i++) {
            int c = t_accept(p->t);
            char ch;

            recv_all(p->t, c, &ch, 1, 0);
            t_close(p->t, c);
        }
        wait_ack(p);
    }
    cmd(p, OP_LATMED, 0, 0, 0);
    return (double)wait_ack(p) / 1e9;
}

static void bench_flood(const struct peer *peers)
{
    static struct flood fl;
    struct fig idle, flooded;
    hvsim_admin_t *a;

    if (hvsim_admin_open(dir, &a) < 0)
        fail("flood: admin");
    fig_init(&idle, "flood", "us", "lower");
    fig_init(&flooded, "flood", "us", "lower");
    snprintf(idle.name, sizeof(idle.name), "flood.connect.p50.idle");
    snprintf(flooded.name, sizeof(flooded.name), "flood.connect.p50.flooded");
    snprintf(idle.params, sizeof(idle.params), "{\"connects\": %d}", FLOOD_CONNECTS);
    snprintf(flooded.params, sizeof(flooded.params), "{\"connects\": %d, \"vm\": \"vmf\"}", FLOOD_CONNECTS);
    flood_round(&peers[T_HVSIM]); /* warm-up */
    for (int r = 0; r < rounds; r++)
        idle.v[T_HVSIM][idle.n[T_HVSIM]++] = flood_round(&peers[T_HVSIM]) * 1e6;
    flood_start(&fl, a);
    for (int r = 0; r < rounds; r++)
        flooded.v[T_HVSIM][flooded.n[T_HVSIM]++] = flood_round(&peers[T_HVSIM]) * 1e6;
    flood_stop(&fl);
    hvsim_admin_close(a);
    emit(&idle);
    emit(&flooded);
    printf("# flood: vm1's connect median %.1f us idle, %.1f us while vmf floods: %.2fx\n",
           median(idle.v[T_HVSIM], idle.n[T_HVSIM]), median(flooded.v[T_HVSIM], flooded.n[T_HVSIM]),
           median(flooded.v[T_HVSIM], flooded.n[T_HVSIM]) / median(idle.v[T_HVSIM], idle.n[T_HVSIM]));
}

/* ---- scale --------------------------------------------------------------------------------- */

/* Anonymous proportional set size in KiB (smaps_rollup Pss_Anon): the heap
 * and stacks a process owns, pages shared with a fork sibling split between
 * them. Plain Pss would also move whenever any other process on the machine
 * maps or unmaps libc, since file pages are split among all their users. */
static long pss_kib(pid_t pid)
{
    char path[64], line[256];
    long v = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Pss_Anon: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

static long count_fds(pid_t pid)
{
    char path[64];
    struct dirent *e;
    long n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

struct usage {
    long pss[3], fds[3]; /* host process, guest process, hvsimd */
};

static struct usage usage_of(pid_t guest)
{
    pid_t who[3] = { getpid(), guest, daemon_pid };
    struct usage u;

    for (int i = 0; i < 3; i++) {
        u.pss[i] = who[i] > 0 ? pss_kib(who[i]) : 0;
        u.fds[i] = who[i] > 0 ? count_fds(who[i]) : 0;
    }
    return u;
}

struct scale_set {
    struct peer p;
    int *fds, n, ep;
};

/* Host side of a spray: reads everything from n streams, whichever has data. */
static void drain(struct scale_set *s, long long total)
{
    struct epoll_event ev[64];

    while (total > 0) {
        int k = epoll_wait(s->ep, ev, 64, WAIT_MS);

        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            fail("scale: the streams stopped delivering");
        }
        for (int j = 0; j < k; j++) {
            int fd = s->fds[ev[j].data.u32];

            for (;;) {
                ssize_t r = t_recv(s->p.t, fd, rbuf, MAXMSG, MSG_DONTWAIT);

                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    break;
                if (r <= 0)
                    fail("scale: a stream ended early");
                total -= r;
            }
        }
    }
}

static double scale_round(const struct peer *p, long long each, const void *arg)
{
    struct scale_set *s = (struct scale_set *)arg;
    double t0 = now();

    (void)p;
    cmd(&s->p, OP_SPRAY, 0, each, 0);
    drain(s, each * s->n);
    wait_ack(&s->p);
    return now() - t0;
}

static void scale_open(struct scale_set *s, enum transport t, int n, struct usage *before, struct usage *after)
{
    s->p = spawn_peer(t, 0);
    s->n = n;
    s->fds = malloc((size_t)n * sizeof(*s->fds));
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    if (s->fds == NULL || s->ep < 0)
        die("scale");
    cmd(&s->p, OP_WARM, 0, 0, 0);
    wait_ack(&s->p);
    *before = usage_of(s->p.pid);
    cmd(&s->p, OP_OPEN, 0, n, 0);
    for (int i = 0; i < n; i++) {
        struct epoll_event e = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

        s->fds[i] = t_accept(t);
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->fds[i], &e) < 0)
            die("epoll_ctl");
    }
    wait_ack(&s->p);
    *after = usage_of(s->p.pid);
}

static void scale_close(struct scale_set *s)
{
    for (int i = 0; i < s->n; i++)
        t_close(s->p.t, s->fds[i]);
    cmd(&s->p, OP_CLOSEALL, 0, 0, 0);
    wait_ack(&s->p);
    stop_peer(&s->p);
    close(s->ep);
    free(s->fds);
}

static void bench_scale(const int *streams, int nstreams)
{
    for (int i = 0; i < nstreams; i++) {
        int n = streams[i];
        struct scale_set s[NT];
        struct usage b[NT], a[NT];
        struct fig ft, fm[2], fd[2];
        long long each;
        static const char *const who[2] = { "client", "daemon" };

        fig_init(&ft, "scale", "GB/s", "higher");
        snprintf(ft.name, sizeof(ft.name), "scale.%d.throughput", n);
        snprintf(ft.params, sizeof(ft.params), "{\"streams\": %d, \"direction\": \"g2h\", \"write\": %d}", n,
                 SPRAY_MSG);
        for (int t = 0; t < NT; t++)
            scale_open(&s[t], (enum transport)t, n, &b[t], &a[t]);
        for (int k = 0; k < 2; k++) {
            fig_init(&fm[k], "memory", "B/conn", "lower");
            snprintf(fm[k].name, sizeof(fm[k].name), "scale.%d.%s_mem", n, who[k]);
            snprintf(fm[k].params, sizeof(fm[k].params),
                     "{\"streams\": %d, \"what\": \"%s\", \"source\": \"smaps_rollup Pss_Anon delta\"}", n,
                     k ? "hvsimd" : "host and guest processes");
            fig_init(&fd[k], "fds", "fd/conn", "lower");
            snprintf(fd[k].name, sizeof(fd[k].name), "scale.%d.%s_fds", n, who[k]);
            snprintf(fd[k].params, sizeof(fd[k].params), "{\"streams\": %d, \"what\": \"%s\"}", n,
                     k ? "hvsimd" : "host and guest processes");
        }
        for (int t = 0; t < NT; t++) {
            double mc = (double)(a[t].pss[0] + a[t].pss[1] - b[t].pss[0] - b[t].pss[1]) * 1024.0 / n;
            double fc = (double)(a[t].fds[0] + a[t].fds[1] - b[t].fds[0] - b[t].fds[1]) / n;

            fm[0].v[t][fm[0].n[t]++] = mc;
            fd[0].v[t][fd[0].n[t]++] = fc;
            if (t == T_HVSIM) {
                fm[1].v[t][fm[1].n[t]++] = (double)(a[t].pss[2] - b[t].pss[2]) * 1024.0 / n;
                fd[1].v[t][fd[1].n[t]++] = (double)(a[t].fds[2] - b[t].fds[2]) / n;
            }
        }
        each = calibrate(scale_round, NULL, &s[T_UNIX], ((8 << 20) / n) + 1);
        for (int t = 0; t < NT; t++)
            if (t != T_UNIX)
                scale_round(NULL, each / 4 + 1, &s[t]);
        /* Fewer, longer slices here: a slice re-arms epoll for every stream. */
        each = each / (SLICES / 2) + 1;
        for (int r = 0; r < rounds; r++) {
            double el[NT] = { 0 };

            for (int j = 0; j < SLICES / 2; j++)
                ROUND_ROBIN(r + j, t)
                    el[t] += scale_round(NULL, each, &s[t]);
            for (int t = 0; t < NT; t++)
                ft.v[t][ft.n[t]++] = (double)each * n * (SLICES / 2) / el[t] / 1e9;
        }
        for (int t = 0; t < NT; t++)
            scale_close(&s[t]);
        emit(&ft);
        for (int k = 0; k < 2; k++) {
            emit(&fm[k]);
            emit(&fd[k]);
        }
    }
}

/* ---- count: fixed work for callgrind and strace --------------------------------------------- */

static int count_main(const char *mode, enum transport t, long long ops, int size)
{
    struct peer p;

    if (t == T_HVSIM)
        start_daemon();
    if (strcmp(mode, "bytes") == 0) {
        if (t != T_UNIX)
            t_listen(t);
        p = spawn_peer(t, 1);
        /* ops messages each way; MSG_WAITALL makes each one exactly one send
         * and one recv, however the two processes are scheduled. */
        cmd(&p, OP_SINK, size, ops, MSG_WAITALL);
        send_msgs(t, p.data, size, ops);
        wait_ack(&p);
        cmd(&p, OP_SOURCE, size, ops, 0);
        recv_msgs(t, p.data, size, ops, MSG_WAITALL);
        wait_ack(&p);
    } else {
        t_listen(t);
        p = spawn_peer(t, 0);
        /* The guest opens a batch and writes each first byte before the host
         * accepts, so accept never waits for the daemon's ticket. */
        for (long long done = 0; done < ops; done += CONN_BATCH) {
            cmd(&p, OP_OPEN, 1, CONN_BATCH, 0);
            wait_ack(&p);
            for (int i = 0; i < CONN_BATCH; i++) {
                int c = t_accept(t);
                char ch;

                recv_all(t, c, &ch, 1, 0);
                t_close(t, c);
            }
            cmd(&p, OP_CLOSEALL, 0, 0, 0);
            wait_ack(&p);
        }
    }
    stop_peer(&p);
    return 0;
}

/* ---- command line --------------------------------------------------------------------------- */

static int parse_list(const char *s, int *out, int max, long lo, long hi)
{
    int n = 0;

    while (*s) {
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || v < lo || v > hi || n == max || (*end && *end != ','))
            return -1;
        out[n++] = (int)v;
        s = *end ? end + 1 : end;
    }
    return n;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hvsim-bench [OPTIONS] FIGURE...   FIGURE: throughput rtt connrate scale memcpy all flood\n"
            "       hvsim-bench count --mode bytes|conn --transport hvsim|af_unix|tcp --ops N [--size BYTES]\n"
            "  --rounds N       rounds per figure, 1..%d (default 5); figures report median, min, max\n"
            "  --seconds S      length of one round of one transport (default 0.2)\n"
            "  --json FILE      write every round (schema hvsim-bench-raw/1) for bench/run.py\n"
            "  --no-pin         leave CPU placement to the scheduler (default: host on one CPU, guests on another)\n"
            "  --sizes LIST     throughput message sizes (default 64,1024,4096,16384,65536,1048576)\n"
            "  --dirs LIST      throughput directions: h2g,g2h,both (default all three)\n"
            "  --rtt-sizes LIST round-trip message sizes (default 1,4096)\n"
            "  --streams LIST   scale: concurrent streams (default 1,10,100,1000)\n"
            "  --version        print the version and exit\n"
            "  -h, --help       print this text and exit\n",
            MAXR);
}

int main(int argc, char **argv)
{
    int sizes[16] = { 64, 1024, 4096, 16384, 65536, 1048576 }, nsizes = 6;
    int dirs[3] = { D_H2G, D_G2H, D_BOTH }, ndirs = 3;
    int rtt_sizes[8] = { 1, 4096 }, nrtt = 2;
    int streams[8] = { 1, 10, 100, 1000 }, nstreams = 4;
    int do_tput = 0, do_rtt = 0, do_conn = 0, do_scale = 0, do_memcpy = 0, do_flood = 0, any = 0;
    const char *json_path = NULL, *mode = NULL;
    long long ops = 0;
    int count_size = 4096, count_t = -1, no_pin = 0, i;
    struct peer peers[NT];
    struct rlimit rl;

    signal(SIGPIPE, SIG_IGN);
    /* 1000 streams need more descriptors than the usual soft limit. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (argc > 1 && strcmp(argv[1], "count") == 0) {
        for (i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
                mode = argv[++i];
            } else if (strcmp(argv[i], "--transport") == 0 && i + 1 < argc) {
                const char *n = argv[++i];

                for (int t = 0; t < NT; t++)
                    if (strcmp(n, tname[t]) == 0)
                        count_t = t;
            } else if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc) {
                ops = atoll(argv[++i]);
            } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
                count_size = atoi(argv[++i]);
            } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                usage(stdout);
                return 0;
            } else {
                fprintf(stderr, "hvsim-bench count: unknown or incomplete argument '%s'\n", argv[i]);
                usage(stderr);
                return 2;
            }
        }
        if (mode == NULL || (strcmp(mode, "bytes") != 0 && strcmp(mode, "conn") != 0) || count_t < 0) {
            fprintf(stderr, "hvsim-bench count: --mode bytes|conn and --transport hvsim|af_unix|tcp are required\n");
            return 2;
        }
        if (ops < 1 || (strcmp(mode, "conn") == 0 && ops % CONN_BATCH != 0)) {
            fprintf(stderr, "hvsim-bench count: --ops must be positive (a multiple of %d for conn)\n", CONN_BATCH);
            return 2;
        }
        if (count_size < 1 || count_size > MAXMSG) {
            fprintf(stderr, "hvsim-bench count: --size must be 1..%d\n", MAXMSG);
            return 2;
        }
        make_dir();
        return count_main(mode, (enum transport)count_t, ops, count_size);
    }
    /* Timed rounds only: counting leaves the buffers untouched, so that its
     * instructions are the stream's and not a 2 MiB memset. */
    memset(sbuf, 'b', sizeof(sbuf));
    memset(rbuf, 0, sizeof(rbuf));
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--rounds") == 0 && v) {
            rounds = atoi(argv[++i]);
            if (rounds < 1 || rounds > MAXR) {
                fprintf(stderr, "hvsim-bench: --rounds: expected 1..%d\n", MAXR);
                return 2;
            }
        } else if (strcmp(a, "--seconds") == 0 && v) {
            seconds = atof(argv[++i]);
            if (!(seconds > 0 && seconds <= 60)) {
                fprintf(stderr, "hvsim-bench: --seconds: expected a number of seconds in (0, 60]\n");
                return 2;
            }
        } else if (strcmp(a, "--no-pin") == 0) {
            no_pin = 1;
        } else if (strcmp(a, "--json") == 0 && v) {
            json_path = argv[++i];
        } else if (strcmp(a, "--sizes") == 0 && v) {
            nsizes = parse_list(argv[++i], sizes, 16, 1, MAXMSG);
            if (nsizes < 1) {
                fprintf(stderr, "hvsim-bench: --sizes: expected sizes 1..%d separated by commas\n", MAXMSG);
                return 2;
            }
        } else if (strcmp(a, "--rtt-sizes") == 0 && v) {
            nrtt = parse_list(argv[++i], rtt_sizes, 8, 1, MAXMSG);
            if (nrtt < 1) {
                fprintf(stderr, "hvsim-bench: --rtt-sizes: expected sizes 1..%d separated by commas\n", MAXMSG);
                return 2;
            }
        } else if (strcmp(a, "--streams") == 0 && v) {
            nstreams = parse_list(argv[++i], streams, 8, 1, 5000);
            if (nstreams < 1) {
                fprintf(stderr, "hvsim-bench: --streams: expected counts 1..5000 separated by commas\n");
                return 2;
            }
        } else if (strcmp(a, "--dirs") == 0 && v) {
            char buf[64], *tok, *save = NULL;

            snprintf(buf, sizeof(buf), "%s", argv[++i]);
            ndirs = 0;
            for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                int d = strcmp(tok, "h2g") == 0 ? D_H2G : strcmp(tok, "g2h") == 0 ? D_G2H
                                                     : strcmp(tok, "both") == 0  ? D_BOTH
                                                                                  : -1;

                if (d < 0 || ndirs == 3) {
                    fprintf(stderr, "hvsim-bench: --dirs: expected h2g, g2h, both separated by commas\n");
                    return 2;
                }
                dirs[ndirs++] = d;
            }
        } else if (strcmp(a, "throughput") == 0) {
            do_tput = any = 1;
        } else if (strcmp(a, "rtt") == 0) {
            do_rtt = any = 1;
        } else if (strcmp(a, "connrate") == 0) {
            do_conn = any = 1;
        } else if (strcmp(a, "scale") == 0) {
            do_scale = any = 1;
        } else if (strcmp(a, "memcpy") == 0) {
            do_memcpy = any = 1;
        } else if (strcmp(a, "flood") == 0) {
            do_flood = any = 1;
        } else if (strcmp(a, "all") == 0) {
            do_tput = do_rtt = do_conn = do_scale = do_memcpy = any = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            return hvsim__cli_version("hvsim-bench");
        } else {
            fprintf(stderr, "hvsim-bench: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!any)
        do_tput = do_rtt = do_conn = do_scale = do_memcpy = 1;
    if (json_path && (json = fopen(json_path, "w")) == NULL)
        die(json_path);
    make_dir();
    start_daemon(); /* before pinning: hvsimd stays free to run anywhere */
    if (!no_pin) {
        choose_cpus();
        pin(host_cpu);
    }
    if (json)
        fprintf(json,
                "{\"schema\": \"hvsim-bench-raw/1\", \"rounds\": %d, \"seconds\": %g, \"slices\": %d, "
                "\"host_cpu\": %d, \"guest_cpu\": %d, ",
                rounds, seconds, SLICES, host_cpu, guest_cpu);

    for (int t = 0; t < NT; t++)
        t_listen((enum transport)t);
    printf("# hvsim-bench: %d rounds of %.2f s per transport, in %d slices; host on CPU %d, guests on CPU %d "
           "(-1: not pinned); median [min..max]\n",
           rounds, seconds, SLICES, host_cpu, guest_cpu);
    if (do_tput || do_rtt || do_conn || do_flood) {
        for (int t = 0; t < NT; t++)
            peers[t] = spawn_peer((enum transport)t, 1);
        report_buffers(peers);
    } else if (json) {
        fprintf(json, "\"figures\": [");
    }
    if (do_memcpy)
        bench_memcpy();
    if (do_tput || do_rtt || do_conn || do_flood) {
        if (do_tput)
            bench_throughput(peers, sizes, nsizes, dirs, ndirs);
        if (do_rtt)
            bench_rtt(peers, rtt_sizes, nrtt);
        if (do_conn)
            bench_conn(peers);
        if (do_flood)
            bench_flood(peers);
        for (int t = 0; t < NT; t++)
            stop_peer(&peers[t]);
    }
    if (do_scale)
        bench_scale(streams, nstreams);
    if (json) {
        fprintf(json, "\n]}\n");
        if (fclose(json) != 0)
            die(json_path);
    }
    return 0;
}
