/* SPDX-License-Identifier: MIT */
/*
 * it_limits.c: integration tests of hvsimd under floods and faults (issue 11,
 * findings 4 and 10): descriptors running out (EMFILE) without the loop
 * spinning, the per-partition ceilings and the error each gives, the HELLO
 * deadline, events reaching only the processes of the VM they concern, and
 * signals going through pidfds.
 *
 * Most of these speak the control protocol raw (proto.h), as a flooding or
 * hostile process would, so that what the daemon answers is seen as it is.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "fixture.h"
#include "hvproto/proto.h"

static struct fx F;

static void teardown(void)
{
    fx_stop(&F);
}

TestSuite(limits, .fini = teardown, .timeout = 60);

/* ---- a raw control connection ------------------------------------------------------------------- */

struct raw {
    int fd; /* control connection */
    int evt; /* our end of the event socket */
    uint32_t seq;
    int got_fd; /* an fd that came with the last reply */
    char buf[HVSIM_MSG_MAX];
};

static int raw_open(const char *partition, int nonblock)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);

    cr_assert_geq(fd, 0);
    char path[PATH_MAX + 64];

    if (strcmp(partition, "host") == 0)
        snprintf(path, sizeof(path), "%s/host.sock", F.dir);
    else
        snprintf(path, sizeof(path), "%s/vm/%s.sock", F.dir, partition);
    cr_assert_lt(strlen(path), sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;

        close(fd);
        return -e;
    }
    return fd;
}

/* One request and its reply (skipping events: they come on evt). Returns the reply's status. */
static int raw_call(struct raw *r, unsigned type, const void *body, size_t len, int pass_fd, void *out, size_t outlen)
{
    struct hvsim_msg_hdr h;
    struct pollfd p = { .fd = r->fd, .events = POLLIN };
    ssize_t n;

    r->got_fd = -1;
    if (hvsim__msg_send(r->fd, type, 0, ++r->seq, body, len, NULL, 0, pass_fd) < 0)
        return -EPIPE;
    if (poll(&p, 1, 5000) != 1)
        return -ETIMEDOUT;
    n = hvsim__msg_recv(r->fd, r->buf, sizeof(r->buf), &r->got_fd);
    if (n <= 0)
        return n == 0 ? -ECONNRESET : (int)n;
    memcpy(&h, r->buf, sizeof(h));
    if (out && h.status == 0)
        memcpy(out, r->buf + sizeof(h), outlen < h.len ? outlen : h.len);
    return h.status;
}

/* Attach as PARTITION; returns the HELLO's status. */
static int raw_hello(struct raw *r, const char *partition)
{
    struct hvsim_msg_hello m = { .version = HVSIM_PROTO_VERSION };
    struct hvsim_msg_hello_reply out;
    int sv[2], rc;

    memset(r, 0, sizeof(*r));
    r->evt = -1;
    r->fd = raw_open(partition, 0);
    if (r->fd < 0)
        return r->fd;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    rc = raw_call(r, HVSIM_MSG_HELLO, &m, sizeof(m), sv[1], &out, sizeof(out));
    close(sv[1]);
    r->evt = sv[0];
    return rc;
}

static void raw_close(struct raw *r)
{
    if (r->fd >= 0)
        close(r->fd);
    if (r->evt >= 0)
        close(r->evt);
    r->fd = r->evt = -1;
}

/* The next event within MS, or 0 for none. */
static uint32_t raw_event(struct raw *r, int ms)
{
    struct pollfd p = { .fd = r->evt, .events = POLLIN };
    struct hvsim_msg_event ev;
    struct hvsim_msg_hdr h;
    ssize_t n;

    if (poll(&p, 1, ms) != 1)
        return 0;
    n = hvsim__msg_recv(r->evt, r->buf, sizeof(r->buf), NULL);
    if (n <= 0)
        return 0;
    memcpy(&h, r->buf, sizeof(h));
    cr_assert_eq(h.type, HVSIM_MSG_EVENT);
    memcpy(&ev, r->buf + sizeof(h), sizeof(ev));
    return ev.event;
}

/* Whether the daemon closed R's control connection within MS. */
static int raw_dropped(struct raw *r, int ms)
{
    struct pollfd p = { .fd = r->fd, .events = POLLIN };
    char b[64];

    if (poll(&p, 1, ms) != 1)
        return 0;
    return recv(r->fd, b, sizeof(b), MSG_DONTWAIT) == 0;
}

static hvsim_vm_info_t add_vm(const char *name)
{
    hvsim_vm_info_t info;

    cr_assert_eq(hvsim_admin_vm_add(F.admin, name, NULL, HVSIM_VM_CLASSIC, &info), 0, "vm add %s: %s", name,
                 hvsim_admin_errmsg(F.admin));
    return info;
}

/* ---- finding 10: events and signals ----------------------------------------------------------- */

Test(limits, events_reach_only_the_vm_they_concern_and_the_host)
{
    struct raw h, a, b;

    fx_start(&F, NULL);
    add_vm("vm1");
    add_vm("vm2");
    cr_assert_eq(raw_hello(&h, "host"), 0);
    cr_assert_eq(raw_hello(&a, "vm1"), 0);
    cr_assert_eq(raw_hello(&b, "vm2"), 0);
    fx_vm_op(&F, "vm1", "pause");
    cr_assert_eq(raw_event(&a, 2000), HVSIM_EV_PAUSE, "vm1's process hears of its own pause");
    cr_assert_eq(raw_event(&h, 2000), HVSIM_EV_PAUSE, "the host's process hears of it");
    cr_assert_eq(raw_event(&b, 300), 0, "vm2's process must not hear of vm1's pause");
    fx_vm_op(&F, "vm1", "reset");
    cr_assert_eq(raw_event(&a, 2000), HVSIM_EV_RESET);
    cr_assert_eq(raw_event(&b, 300), 0, "nor of its reset");
    /* Positive control: vm2's own event reaches it. */
    fx_vm_op(&F, "vm2", "off");
    cr_assert_eq(raw_event(&b, 2000), HVSIM_EV_OFF);
    cr_assert_eq(raw_event(&a, 300), 0, "vm1's process must not hear of vm2's");
    cr_assert_eq(hvsim_admin_vm_rm(F.admin, "vm2"), 0);
    cr_assert_eq(raw_event(&a, 300), 0, "nor of vm2's removal");
    raw_close(&h);
    raw_close(&a);
    raw_close(&b);
}

static pid_t clone_with_pid(pid_t want)
{
    pid_t tid = want;
    struct clone_args ca = { .exit_signal = SIGCHLD, .set_tid = (uint64_t)(uintptr_t)&tid, .set_tid_size = 1 };

    return (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
}

/* A process attaches as vm1 and exits, leaving its connection to a child;
 * an innocent process is then given its pid. A reset with
 * reset_kills_guests must not kill the innocent one (the pid was reused),
 * and must kill a process still attached (the positive control). */
Test(limits, reset_kills_through_pidfds_never_a_reused_pid)
{
    static const char *const sets[] = { "reset_kills_guests=1", NULL };
    struct fx_pipe ready;
    pid_t a, innocent, guest, holder;
    int st;

    fx_start(&F, sets);
    add_vm("vm1");
    fx_pipe_init(&ready);
    a = fork();
    cr_assert_geq(a, 0);
    if (a == 0) {
        struct raw r;

        CHECK_EQ(raw_hello(&r, "vm1"), 0);
        /* The connection outlives its first process in a grandchild. */
        if (fork() == 0) {
            fx_signal(&ready, (uint32_t)getpid());
            pause();
            _exit(0);
        }
        _exit(0);
    }
    cr_assert_eq(waitpid(a, &st, 0), a);
    holder = (pid_t)fx_await(&ready);
    innocent = clone_with_pid(a);
    if (innocent < 0 && errno == EEXIST)
        cr_skip_test("pid %d was taken again before the test could", (int)a);
    cr_assert_geq(innocent, 0, "clone3 with set_tid: %s", strerror(errno));
    if (innocent == 0) {
        pause();
        _exit(0);
    }
    cr_assert_eq(innocent, a);
    guest = fork();
    cr_assert_geq(guest, 0);
    if (guest == 0) {
        struct raw r;

        CHECK_EQ(raw_hello(&r, "vm1"), 0);
        fx_signal(&ready, 2);
        pause();
        _exit(0);
    }
    cr_assert_eq(fx_await(&ready), 2);
    fx_vm_op(&F, "vm1", "reset");
    cr_assert_eq(waitpid(guest, &st, 0), guest);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the attached guest is killed");
    usleep(200 * 1000);
    cr_assert_eq(waitpid(innocent, &st, WNOHANG), 0, "the process that got the reused pid must live");
    kill(innocent, SIGKILL);
    waitpid(innocent, &st, 0);
    kill(holder, SIGKILL);
}

/* ---- finding 4: descriptors, ceilings, deadlines ------------------------------------------------ */

static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, stt = 0;
    FILE *f;
    int i;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    p = strrchr(buf, ')');
    cr_assert_not_null(p);
    /* Fields after the name: state is 3; utime 14, stime 15. */
    for (i = 2; i < 14 && p; i++)
        p = strchr(p + 1, ' ');
    cr_assert_not_null(p);
    cr_assert_eq(sscanf(p + 1, "%lu %lu", &ut, &stt), 2);
    return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

Test(limits, out_of_descriptors_the_daemon_neither_spins_nor_stops_serving)
{
    static const char *const sets[] = { "hello_timeout_ms=60000", NULL };
    struct fx_opts o = { .nofile = 48 };
    int fds[400], n = 0, i, refused = 0, shed = 0;
    double t0, t1;
    struct raw r;

    fx_start_opts(&F, sets, &o);
    add_vm("vm1");
    for (i = 0; i < 400; i++) {
        int fd = raw_open("vm1", 1);

        if (fd < 0) {
            refused++;
            continue;
        }
        fds[n++] = fd;
    }
    usleep(300 * 1000);
    /* It was out of descriptors: the connections past them were closed. */
    for (i = 0; i < n; i++) {
        char b;

        shed += recv(fds[i], &b, 1, MSG_DONTWAIT) == 0;
    }
    cr_assert_gt(shed, 0, "hvsimd should have run out of descriptors (RLIMIT_NOFILE %ld)", o.nofile);
    t0 = cpu_seconds(F.daemon);
    usleep(1000 * 1000);
    t1 = cpu_seconds(F.daemon);
    cr_log_info("%d connections made (%d closed by hvsimd for want of descriptors), %d refused; hvsimd used %.2f s "
                "of CPU in 1 s idle",
                n, shed, refused, t1 - t0);
    cr_assert_lt(t1 - t0, 0.2, "hvsimd used %.2f s of CPU in 1 s with nothing to do (spinning on EMFILE)", t1 - t0);
    for (i = 0; i < n; i++)
        close(fds[i]);
    usleep(300 * 1000);
    /* It serves again: a process attaches, the admin socket answers. */
    cr_assert_eq(raw_hello(&r, "vm1"), 0);
    raw_close(&r);
    {
        char *text = NULL;

        cr_assert_eq(hvsim_admin_status(F.admin, &text), 0);
        free(text);
    }
}

Test(limits, a_connection_without_hello_is_dropped_at_the_deadline)
{
    static const char *const sets[] = { "hello_timeout_ms=200", NULL };
    struct raw idle = { .evt = -1 }, ok;

    fx_start(&F, sets);
    add_vm("vm1");
    idle.fd = raw_open("vm1", 0);
    cr_assert_geq(idle.fd, 0);
    cr_assert_eq(raw_hello(&ok, "vm1"), 0);
    cr_assert(raw_dropped(&idle, 2000), "a connection that never said HELLO is closed");
    cr_assert_not(raw_dropped(&ok, 300), "an attached one stays");
    raw_close(&idle);
    raw_close(&ok);
}

Test(limits, control_connections_ceiling_gives_emfile_and_spares_other_vms)
{
    static const char *const sets[] = { "max_connections_per_partition=4", NULL };
    struct raw r[5], other;
    char *text = NULL;
    int i;

    fx_start(&F, sets);
    add_vm("vm1");
    add_vm("vm2");
    for (i = 0; i < 4; i++)
        cr_assert_eq(raw_hello(&r[i], "vm1"), 0, "connection %d of 4", i + 1);
    cr_assert_eq(raw_hello(&r[4], "vm1"), -EMFILE, "the fifth is over the ceiling");
    cr_assert(raw_dropped(&r[4], 2000));
    cr_assert_eq(raw_hello(&other, "vm2"), 0, "another VM is not affected");
    cr_assert_eq(hvsim_admin_status(F.admin, &text), 0);
    cr_assert_not_null(strstr(text, "usage.vm1=connections 4/4"), "status shows the use: %s", text);
    cr_assert_not_null(strstr(text, "usage.vm2=connections 1/4"), "%s", text);
    free(text);
    /* One goes: room for another. */
    raw_close(&r[0]);
    usleep(100 * 1000);
    raw_close(&r[4]);
    cr_assert_eq(raw_hello(&r[4], "vm1"), 0);
    for (i = 1; i < 5; i++)
        raw_close(&r[i]);
    raw_close(&other);
}

static int binder(void *arg)
{
    int pers = *(int *)arg, i, s;

    for (i = 0; i < 4; i++) {
        s = pers ? hvsim_socket(AF_VSOCK, SOCK_STREAM, 0) : hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
        CHECK_OK(s);
        if (pers) {
            struct sockaddr_vm a = fx_vsock(VMADDR_CID_ANY, 5000 + (uint32_t)i);

            if (i < 3)
                CHECK_OK(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)));
            else
                CHECK_ERR(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)), ENOBUFS);
        } else {
            GUID svc = fx_svc(900 + (uint32_t)i);
            SOCKADDR_HV a = fx_hv(&HV_GUID_ZERO, &svc);

            if (i < 3)
                CHECK_OK(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)));
            else
                CHECK_ERR(hvsim_bind(s, (struct sockaddr *)&a, sizeof(a)), ENOBUFS);
        }
    }
    if (!pers)
        CHECK_EQ(hvsim_get_last_error(), 10055); /* WSAENOBUFS */
    return 0;
}

Test(limits, binds_ceiling_gives_enobufs_per_partition)
{
    static const char *const sets[] = { "max_binds_per_partition=3", NULL };
    int win = 0, lin = 1;

    fx_start(&F, sets);
    add_vm("vm1");
    add_vm("vm2");
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", binder, &win)), 0, "Windows guest");
    /* The first process's binds went with it: a Linux guest of another VM,
     * and of the same VM again, each get their three. */
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm2", binder, &lin)), 0, "Linux guest of vm2");
    cr_assert_eq(fx_wait(fx_spawn(&F, "vm1", binder, &lin)), 0, "Linux guest of vm1");
}

/* A VM's back-end, raw: listens as the gateway and never answers its offers. */
static void raw_gateway(struct raw *g, const char *vm, int *chan)
{
    struct hvsim_msg_bind b = { .personality = HVSIM_PERS_LINUX, .svc = hvsim_guid_from_port(5000) };
    struct hvsim_msg_bind_reply br;
    struct hvsim_msg_listen l = { .backlog = 16, .gateway = 1 };
    struct hvsim_msg_listen_reply lr;
    int sv[2];

    cr_assert_eq(raw_hello(g, vm), 0);
    cr_assert_eq(raw_call(g, HVSIM_MSG_BIND, &b, sizeof(b), -1, &br, sizeof(br)), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    l.bind_id = br.bind_id;
    /* A listener's name: hex digits (the gateway's stream socket is never reached here). */
    snprintf(l.uname, sizeof(l.uname), "%016x%08x", (unsigned)getpid(), (unsigned)vm[strlen(vm) - 1]);
    cr_assert_eq(raw_call(g, HVSIM_MSG_LISTEN, &l, sizeof(l), sv[1], &lr, sizeof(lr)), 0);
    close(sv[1]);
    *chan = sv[0];
}

static struct hvsim_msg_connect_reply host_connect(struct raw *h, uint32_t pers, const hvsim_vm_info_t *vm)
{
    struct hvsim_msg_connect c = { .personality = pers, .svc = hvsim_guid_from_port(6000) };
    struct hvsim_msg_connect_reply out;

    memset(&out, 0, sizeof(out));
    if (pers == HVSIM_PERS_VSOCK_HOST)
        c.vmid.Data1 = vm->cid;
    else
        c.vmid = vm->id;
    cr_assert_eq(raw_call(h, HVSIM_MSG_CONNECT, &c, sizeof(c), -1, &out, sizeof(out)), 0);
    if (h->got_fd >= 0)
        close(h->got_fd); /* a pending connect's reply socket: let it wait */
    return out;
}

Test(limits, pending_connects_ceiling_resets_and_spares_other_vms)
{
    static const char *const sets[] = { "max_pending_connects=2", NULL };
    hvsim_vm_info_t v1, v2;
    struct raw g1, g2, h;
    struct hvsim_msg_connect_reply out;
    int c1, c2;
    char *text = NULL;

    fx_start(&F, sets);
    v1 = add_vm("vm1");
    v2 = add_vm("vm2");
    raw_gateway(&g1, "vm1", &c1);
    raw_gateway(&g2, "vm2", &c2);
    cr_assert_eq(raw_hello(&h, "host"), 0);
    cr_assert_eq(host_connect(&h, HVSIM_PERS_VSOCK_HOST, &v1).outcome.verdict, HVSIM_VERDICT_PENDING);
    cr_assert_eq(host_connect(&h, HVSIM_PERS_WINDOWS, &v1).outcome.verdict, HVSIM_VERDICT_PENDING);
    cr_assert_eq(hvsim_admin_status(F.admin, &text), 0);
    cr_assert_not_null(strstr(text, "pending 2/2"), "%s", text);
    free(text);
    out = host_connect(&h, HVSIM_PERS_VSOCK_HOST, &v1);
    cr_assert_eq(out.outcome.verdict, HVSIM_VERDICT_REFUSE);
    cr_assert_eq(out.outcome.error, -ECONNRESET, "a full virtio backlog resets: got %s",
                 hvsim_err_name(out.outcome.error));
    out = host_connect(&h, HVSIM_PERS_WINDOWS, &v1);
    cr_assert_eq(out.outcome.verdict, HVSIM_VERDICT_REFUSE);
    cr_assert_eq(out.outcome.error, -ENOBUFS, "Winsock: WSAENOBUFS, got %s", hvsim_err_name(out.outcome.error));
    /* Another VM's guest is still asked. */
    cr_assert_eq(host_connect(&h, HVSIM_PERS_VSOCK_HOST, &v2).outcome.verdict, HVSIM_VERDICT_PENDING);
    raw_close(&h);
    raw_close(&g1);
    raw_close(&g2);
    close(c1);
    close(c2);
}

Test(limits, queued_events_ceiling_detaches_the_process_that_does_not_read)
{
    static const char *const sets[] = { "max_queued_events=3", NULL };
    struct raw deaf, other;
    int i, got = 0;

    fx_start(&F, sets);
    add_vm("vm1");
    add_vm("vm2");
    cr_assert_eq(raw_hello(&deaf, "vm1"), 0);
    cr_assert_eq(raw_hello(&other, "vm2"), 0);
    for (i = 0; i < 100 && !raw_dropped(&deaf, 0); i++) {
        fx_vm_op(&F, "vm1", "pause");
        fx_vm_op(&F, "vm1", "resume");
    }
    cr_assert(raw_dropped(&deaf, 1000), "a process whose events pile up past the ceiling is detached");
    cr_log_info("detached after %d pause/resume pairs", i);
    /* Another VM's process still hears its own events. */
    fx_vm_op(&F, "vm2", "pause");
    cr_assert_eq(raw_event(&other, 2000), HVSIM_EV_PAUSE);
    cr_assert_not(raw_dropped(&other, 0));
    /* And the ceiling is the partition's, not forever: a new process of vm1 that reads is served. */
    raw_close(&deaf);
    cr_assert_eq(raw_hello(&deaf, "vm1"), 0);
    for (i = 0; i < 20; i++) {
        fx_vm_op(&F, "vm1", i % 2 ? "resume" : "pause");
        got += raw_event(&deaf, 2000) != 0;
    }
    cr_assert_eq(got, 20);
    cr_assert_not(raw_dropped(&deaf, 0));
    raw_close(&deaf);
    raw_close(&other);
}
