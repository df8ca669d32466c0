/* SPDX-License-Identifier: MIT */
/*
 * it_client.c: integration tests of a process's attachment under faults and
 * attack (issue 11): a run folder another user could have planted sockets in
 * is never spoken to (finding 3), every daemon request has a deadline, so a
 * stopped daemon is an error and never a hang (finding 5), and the process's
 * own resource errors are named as themselves, never ENETDOWN (finding 12).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "fixture.h"

static struct fx F;

static void setup(void)
{
    fx_start(&F, NULL);
}

static void teardown(void)
{
    kill(F.daemon, SIGCONT); /* a failed test must not leave it stopped */
    fx_stop(&F);
}

TestSuite(client, .init = setup, .fini = teardown, .timeout = 30);

/* ---- finding 5: deadlines ------------------------------------------------------------- */

#define DEADLINE_MS 400

struct stopped {
    struct fx_pipe ready, go;
};

static int connect_while_stopped(void *arg)
{
    struct stopped *st = arg;
    GUID svc = fx_svc(77);
    SOCKADDR_HV a = fx_hv(&HV_GUID_LOOPBACK, &svc);
    uint64_t t0;
    int s;

    setenv("HVSIM_REQUEST_TIMEOUT_MS", "400", 1);
    s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    CHECK_OK(s);
    fx_signal(&st->ready, 1);
    fx_await(&st->go); /* the daemon is stopped now */
    t0 = fx_now_ms();
    CHECK_ERR(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)), ENETDOWN);
    CHECK(fx_now_ms() - t0 >= DEADLINE_MS - 50);
    CHECK(fx_now_ms() - t0 < DEADLINE_MS + 1500);
    return 0;
}

/* A process that attaches while the daemon is stopped: its HELLO is never
 * answered, so socket() fails by the deadline. */
static int socket_while_stopped(void *arg)
{
    uint64_t t0 = fx_now_ms();

    (void)arg;
    setenv("HVSIM_REQUEST_TIMEOUT_MS", "400", 1);
    CHECK_ERR(hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW), ENETDOWN);
    CHECK(fx_now_ms() - t0 >= DEADLINE_MS - 50);
    CHECK_ERR(hvsim_socket(AF_VSOCK, SOCK_STREAM, 0), ENETDOWN);
    CHECK(fx_now_ms() - t0 < 2 * DEADLINE_MS + 1500);
    return 0;
}

Test(client, stopped_daemon_socket_and_connect_fail_by_the_deadline)
{
    struct stopped st;
    hvsim_vm_info_t *vms = NULL;
    size_t n = 0;
    uint64_t t0;
    pid_t p;
    int rc;

    fx_pipe_init(&st.ready);
    fx_pipe_init(&st.go);
    p = fx_spawn(&F, "host", connect_while_stopped, &st);
    fx_await(&st.ready);
    cr_assert_eq(kill(F.daemon, SIGSTOP), 0);
    fx_signal(&st.go, 1);
    cr_assert_eq(fx_wait(p), 0, "connect() must fail with ENETDOWN within the deadline");
    p = fx_spawn(&F, "host", socket_while_stopped, NULL);
    cr_assert_eq(fx_wait(p), 0, "socket() must fail with ENETDOWN within the deadline");
    /* The admin path: the same deadline, its own message. */
    setenv("HVSIM_REQUEST_TIMEOUT_MS", "400", 1);
    t0 = fx_now_ms();
    rc = hvsim_admin_vm_list(F.admin, &vms, &n);
    unsetenv("HVSIM_REQUEST_TIMEOUT_MS");
    cr_assert_eq(rc, -ETIMEDOUT, "vm list while stopped: %d", rc);
    cr_assert_lt(fx_now_ms() - t0, DEADLINE_MS + 1500);
    cr_assert(strstr(hvsim_admin_errmsg(F.admin), "did not answer within 400 ms"), "%s",
              hvsim_admin_errmsg(F.admin));
    cr_assert_eq(kill(F.daemon, SIGCONT), 0);
    /* Positive control: the daemon answers again (a late reply is dropped). */
    cr_assert_eq(hvsim_admin_vm_list(F.admin, &vms, &n), 0, "%s", hvsim_admin_errmsg(F.admin));
    free(vms);
}

/* ---- finding 12: resource errors as themselves -------------------------------------- */

/* Fill the descriptor table (under a low RLIMIT_NOFILE); returns how many were taken. */
static int fill_fds(int *held, int cap)
{
    int n = 0, fd;

    while (n < cap && (fd = dup(0)) >= 0)
        held[n++] = fd;
    CHECK_EQ(errno, EMFILE);
    return n;
}

static int emfile_child(void *arg)
{
    struct rlimit rl = { 64, 64 };
    int held[64], n, i, s;

    (void)arg;
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &rl));
    /* Not attached yet (a forked child): the attach itself runs out. */
    n = fill_fds(held, 64);
    CHECK_ERR(hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW), EMFILE);
    CHECK_ERR(hvsim_socket(AF_VSOCK, SOCK_STREAM, 0), EMFILE);
    for (i = 0; i < n; i++)
        close(held[i]);
    /* Positive control: with descriptors to spare the same call works ... */
    s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    CHECK_OK(s);
    hvsim_close(s);
    /* ... and attached, out of descriptors again, it is EMFILE too. */
    n = fill_fds(held, 64);
    CHECK_ERR(hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW), EMFILE);
    for (i = 0; i < n; i++)
        close(held[i]);
    return 0;
}

Test(client, emfile_is_reported_as_emfile_not_enetdown)
{
    cr_assert_eq(fx_wait(fx_spawn(&F, "host", emfile_child, NULL)), 0);
}

/* ---- finding 3: a run folder that is not ours is never spoken to ----------------------- */

/* A listener planted at dir/host.sock, as another user would. */
static int plant(const char *dir)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    cr_assert_geq(l, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/host.sock", dir);
    cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s: %s", sa.sun_path, strerror(errno));
    cr_assert_eq(listen(l, 8), 0);
    return l;
}

static int refused_child(void *arg)
{
    (void)arg;
    CHECK_ERR(hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW), ENETDOWN);
    return 0;
}

static int works_child(void *arg)
{
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

    (void)arg;
    CHECK_OK(s);
    hvsim_close(s);
    return 0;
}

/* A client with HVSIM_DIR=dir: socket() fails and the planted listener
 * never sees a connection (no HELLO, no event fd handed over). */
static void expect_refused(const char *dir, int planted, const char *what)
{
    struct fx other = F;
    struct pollfd p = { .fd = planted, .events = POLLIN };

    snprintf(other.dir, sizeof(other.dir), "%s", dir);
    cr_assert_eq(fx_wait(fx_spawn(&other, "host", refused_child, NULL)), 0, "%s: socket() not refused", what);
    cr_assert_eq(poll(&p, 1, 0), 0, "%s: the client connected to the planted socket", what);
}

Test(client, untrusted_run_folder_is_refused_before_any_connect)
{
    char open_dir[] = "/tmp/hvsim-planted-XXXXXX", link[64], theirs[] = "/tmp/hvsim-theirs-XXXXXX";
    int l;

    cr_assert_not_null(mkdtemp(open_dir));
    l = plant(open_dir);
    /* World-writable (another user could have put host.sock there). */
    cr_assert_eq(chmod(open_dir, 0777), 0);
    expect_refused(open_dir, l, "mode 0777");
    cr_assert_eq(chmod(open_dir, 0770), 0);
    expect_refused(open_dir, l, "mode 0770");
    close(l);
    /* Owned by another user (uid 65534), even if private to them. */
    cr_assert_not_null(mkdtemp(theirs));
    l = plant(theirs);
    cr_assert_eq(chown(theirs, 65534, 65534), 0);
    expect_refused(theirs, l, "owned by 65534");
    close(l);
    /* A symbolic link, even to the daemon's own folder. */
    snprintf(link, sizeof(link), "%s-link", open_dir);
    cr_assert_eq(symlink(F.dir, link), 0);
    {
        struct fx other = F;

        snprintf(other.dir, sizeof(other.dir), "%s", link);
        cr_assert_eq(fx_wait(fx_spawn(&other, "host", refused_child, NULL)), 0, "symlink: socket() not refused");
    }
    /* Positive control: the daemon's own folder (0700, ours) works. */
    cr_assert_eq(fx_wait(fx_spawn(&F, "host", works_child, NULL)), 0);
    /* The admin path refuses the same folders. */
    {
        hvsim_admin_t *a = NULL;

        cr_assert_eq(hvsim_admin_open(open_dir, &a), -EPERM);
        cr_assert_eq(hvsim_admin_open(theirs, &a), -EPERM);
        cr_assert_eq(hvsim_admin_open(link, &a), -EPERM);
    }
    unlink(link);
    chmod(open_dir, 0700);
    {
        char sock[128];

        snprintf(sock, sizeof(sock), "%s/host.sock", open_dir);
        unlink(sock);
        snprintf(sock, sizeof(sock), "%s/host.sock", theirs);
        unlink(sock);
    }
    rmdir(open_dir);
    rmdir(theirs);
}

/* ---- finding 9: a VM's events against connections being accepted ---------------------- */

#define CHURN 300

struct churn {
    GUID vm2, svc;
    struct fx_pipe ready;
};

/* The host: accept, answer one byte, close, again (fd numbers are reused). */
static int churn_host(void *arg)
{
    struct churn *ch = arg;
    SOCKADDR_HV a = fx_hv(&HV_GUID_WILDCARD, &ch->svc);
    int l = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW), i;

    CHECK_OK(l);
    CHECK_OK(hvsim_bind(l, (struct sockaddr *)&a, sizeof(a)));
    CHECK_OK(hvsim_listen(l, 16));
    fx_signal(&ch->ready, 1);
    for (i = 0; i < CHURN; i++) {
        char b;
        int c = hvsim_accept(l, NULL, NULL);

        CHECK_OK(c);
        CHECK_EQ(hvsim_recv(c, &b, 1, 0), 1);
        CHECK_EQ(hvsim_send(c, &b, 1, 0), 1);
        hvsim_close(c);
    }
    return 0;
}

/* vm2's guest: CHURN connections, each must get its byte back. */
static int churn_guest(void *arg)
{
    struct churn *ch = arg;
    SOCKADDR_HV a = fx_hv(&HV_GUID_PARENT, &ch->svc);
    int i;

    for (i = 0; i < CHURN; i++) {
        char b = (char)i, r = 0;
        int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

        CHECK_OK(s);
        CHECK_OK(hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)));
        CHECK_EQ(hvsim_send(s, &b, 1, 0), 1);
        CHECK_EQ(hvsim_recv(s, &r, 1, 0), 1);
        CHECK_EQ(r, b);
        hvsim_close(s);
    }
    return 0;
}

/* vm1's pauses and resumes reach every attached process (the helper scans
 * its sockets each time) while the host accepts and closes vm2's
 * connections: none of vm2's may break. A stress, not a proof: the race it
 * guards (an event acting on a slot being refilled by accept) has a window
 * of a few instructions; ThreadSanitizer (make test SANITIZE=thread) is the
 * sharper check. */
Test(client, vm_events_never_break_another_vms_connections_being_accepted)
{
    struct churn ch;
    pid_t host, guest;
    int i, status = -1;

    fx_vm(&F, "vm1", HVSIM_VM_CLASSIC);
    ch.vm2 = fx_vm(&F, "vm2", HVSIM_VM_CLASSIC);
    ch.svc = fx_svc(9);
    fx_service(&F, &ch.svc, "churn");
    fx_pipe_init(&ch.ready);
    host = fx_spawn(&F, "host", churn_host, &ch);
    fx_await(&ch.ready);
    guest = fx_spawn(&F, "vm2", churn_guest, &ch);
    for (i = 0; i < 2000 && waitpid(guest, &status, WNOHANG) == 0; i++) {
        fx_vm_op(&F, "vm1", "pause");
        fx_vm_op(&F, "vm1", "resume");
    }
    if (i == 2000 || status == -1)
        status = fx_wait(guest) << 8;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "vm2's guest: a connection broke (status %d)", status);
    cr_assert_eq(fx_wait(host), 0);
}
