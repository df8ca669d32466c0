/* SPDX-License-Identifier: MIT */
/*
 * it_listener.c: who can reach a listener, and what a ticket is good for
 * (issue "the emulated host holds under attack", findings 1 and 2).
 *
 *   - a listener is a socket file in HVSIM_DIR/l/, never an abstract name
 *     any user of the machine could see, squat or flood;
 *   - connections that present nothing (a process that is not attached, or
 *     another user) are dropped at accept without a byte read: a
 *     non-blocking accept never waits for them and they delay nobody;
 *   - a ticket is good for one connection, from a connector bound to the
 *     name the daemon tagged, however many connections come after it.
 *
 * The raw client here speaks the control protocol itself (hvproto/proto.h),
 * as a misbehaving process would.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <grp.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "hvproto/proto.h"
#include "hvproto/util.h"

static struct fx F;

static void setup(void)
{
    fx_start(&F, NULL);
}

static void teardown(void)
{
    fx_stop(&F);
}

TestSuite(listener, .init = setup, .fini = teardown, .timeout = 30);

/* A host listener on {loopback, svc}; its socket file's path in *path. */
static int loopback_listener(const GUID *svc, int nonblock, char *path, size_t plen)
{
    SOCKADDR_HV a = fx_hv(&HV_GUID_LOOPBACK, svc);
    int l = hvsim_socket(AF_HYPERV, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), HV_PROTOCOL_RAW);
    char dir[PATH_MAX + 8];
    struct dirent *e;
    DIR *d;

    cr_assert_geq(l, 0);
    cr_assert_eq(hvsim_bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(hvsim_listen(l, 64), 0);
    snprintf(dir, sizeof(dir), "%s/l", F.dir);
    d = opendir(dir);
    cr_assert_not_null(d, "%s: %s (listeners must be socket files there)", dir, strerror(errno));
    path[0] = '\0';
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            snprintf(path, plen, "%s/%s", dir, e->d_name);
    closedir(d);
    cr_assert_neq(path[0], '\0', "no socket file in %s", dir);
    return l;
}

static int raw_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(c, 0);
    cr_assert_lt(strlen(path), sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect %s: %s", path, strerror(errno));
    return c;
}

/* The kernel's own table of unix sockets (/proc/net/unix, which every user
 * can read) shows this listener by its socket's inode: at its file in
 * HVSIM_DIR/l/, never under an abstract name. */
Test(listener, no_listener_in_the_abstract_namespace)
{
    GUID svc = fx_svc(40);
    char path[PATH_MAX + 300], line[512], where[300] = "";
    int l = loopback_listener(&svc, 0, path, sizeof(path));
    FILE *f = fopen("/proc/net/unix", "r");
    struct stat st;

    cr_assert_eq(fstat(l, &st), 0);
    cr_assert_not_null(f);
    /* Num RefCount Protocol Flags Type St Inode Path */
    while (fgets(line, sizeof(line), f)) {
        unsigned long flags = 0, ino = 0;
        char p[300] = "";

        if (sscanf(line, "%*s %*s %*s %lx %*s %*s %lu %299s", &flags, &ino, p) >= 2 && ino == st.st_ino &&
            (flags & 0x10000))
            snprintf(where, sizeof(where), "%s", p);
    }
    fclose(f);
    cr_assert_neq(where[0], '\0', "the listener (inode %lu) is not in /proc/net/unix", (unsigned long)st.st_ino);
    cr_assert_neq(where[0], '@', "the listener is in the abstract namespace: %s", where);
    cr_assert_str_eq(where, path);
    hvsim_close(l);
}

struct dial {
    GUID svc;
    struct fx_pipe p;
};

static int host_dialer(void *v)
{
    struct dial *d = v;
    SOCKADDR_HV a = fx_hv(&HV_GUID_LOOPBACK, &d->svc);
    int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

    if (s < 0 || hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
        return 1;
    if (hvsim_send(s, "!", 1, 0) != 1)
        return 2;
    fx_await(&d->p); /* keep the connection until the acceptor has it */
    hvsim_close(s);
    return 0;
}

/* 40 connections that send nothing, then a genuine one: a non-blocking
 * accept says EAGAIN at once while only the silent ones wait, and takes the
 * genuine one as soon as it comes (each silent one cost up to 1 s before). */
Test(listener, silent_connections_delay_nobody)
{
    struct dial d = { .svc = fx_svc(41) };
    char path[PATH_MAX + 300], c1;
    int l = loopback_listener(&d.svc, 1, path, sizeof(path)), silent[40], i, c;
    uint64_t t0;
    pid_t g;

    for (i = 0; i < 40; i++)
        silent[i] = raw_connect(path);
    t0 = fx_now_ms();
    cr_assert_eq(hvsim_accept(l, NULL, NULL), -1);
    cr_assert_eq(errno, EAGAIN, "%s", hvsim_err_name(errno));
    cr_assert_lt(fx_now_ms() - t0, 100, "a non-blocking accept waited %llu ms",
                 (unsigned long long)(fx_now_ms() - t0));
    fx_pipe_init(&d.p);
    g = fx_spawn(&F, "host", host_dialer, &d);
    t0 = fx_now_ms();
    for (;;) {
        struct pollfd p = { .fd = l, .events = POLLIN };

        cr_assert_lt(fx_now_ms() - t0, 2000, "the genuine connection never came");
        poll(&p, 1, 100);
        c = hvsim_accept(l, NULL, NULL);
        if (c >= 0)
            break;
        cr_assert_eq(errno, EAGAIN, "%s", hvsim_err_name(errno));
    }
    cr_assert_eq(hvsim_recv(c, &c1, 1, MSG_WAITALL), 1);
    cr_assert_eq(c1, '!');
    fx_signal(&d.p, 1);
    cr_assert_eq(fx_wait(g), 0);
    for (i = 0; i < 40; i++)
        close(silent[i]);
    hvsim_close(c);
    hvsim_close(l);
}

/* ---- tickets, as a raw client gets and presents them -------------------------------- */

struct raw {
    int req, evt[2];
    uint32_t seq;
};

static void raw_attach(struct raw *r)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct hvsim_msg_hello hello = { .version = HVSIM_PROTO_VERSION };
    char buf[1024];
    struct hvsim_msg_hdr h;

    r->req = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    cr_assert_lt(strlen(F.dir) + sizeof("/host.sock"), sizeof(sa.sun_path));
    memcpy(sa.sun_path, F.dir, strlen(F.dir));
    memcpy(sa.sun_path + strlen(F.dir), "/host.sock", sizeof("/host.sock"));
    cr_assert_eq(connect(r->req, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, r->evt), 0);
    cr_assert_eq(hvsim__msg_send(r->req, HVSIM_MSG_HELLO, 0, ++r->seq, &hello, sizeof(hello), NULL, 0, r->evt[1]), 0);
    cr_assert_geq(hvsim__msg_recv(r->req, buf, sizeof(buf), NULL), (ssize_t)sizeof(h));
    memcpy(&h, buf, sizeof(h));
    cr_assert_eq(h.status, 0);
}

static void raw_route(struct raw *r, const GUID *svc, struct hvsim_msg_connect_reply *out)
{
    struct hvsim_msg_connect m = { .personality = HVSIM_PERS_WINDOWS, .vmid = HV_GUID_LOOPBACK, .svc = *svc };
    static char buf[HVSIM_MSG_MAX];
    struct hvsim_msg_hdr h;

    cr_assert_eq(hvsim__msg_send(r->req, HVSIM_MSG_CONNECT, 0, ++r->seq, &m, sizeof(m), NULL, 0, -1), 0);
    cr_assert_geq(hvsim__msg_recv(r->req, buf, sizeof(buf), NULL), (ssize_t)(sizeof(h) + sizeof(*out)));
    memcpy(&h, buf, sizeof(h));
    cr_assert_eq(h.status, 0);
    memcpy(out, buf + sizeof(h), sizeof(*out));
    cr_assert_eq(out->outcome.verdict, HVSIM_VERDICT_OK);
}

/* Present a ticket: bound to its tagged name (or not), connected, written. */
static int present(const char *path, const struct hvsim_msg_connect_reply *rep, int bind_name)
{
    struct sockaddr_un me = { .sun_family = AF_UNIX }, sa = { .sun_family = AF_UNIX };
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(c, 0);
    if (bind_name) {
        hvsim__conn_name(rep->ticket.conn_id, rep->tag, me.sun_path + 1);
        cr_assert_eq(bind(c, (struct sockaddr *)&me,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + HVSIM_CONN_NAME_LEN)),
                     0, "%s", strerror(errno));
    }
    cr_assert_lt(strlen(path), sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(write(c, &rep->ticket, sizeof(rep->ticket)), (ssize_t)sizeof(rep->ticket));
    return c;
}

/* 1 when a non-blocking accept takes a connection now (closing it), 0 on EAGAIN. */
static int taken(int l)
{
    struct pollfd p = { .fd = l, .events = POLLIN };
    int c;

    poll(&p, 1, 200);
    c = hvsim_accept(l, NULL, NULL);
    if (c < 0) {
        cr_assert_eq(errno, EAGAIN, "%s", hvsim_err_name(errno));
        return 0;
    }
    hvsim_close(c);
    return 1;
}

Test(listener, a_ticket_is_good_once)
{
    GUID svc = fx_svc(42);
    char path[PATH_MAX + 300];
    int l = loopback_listener(&svc, 1, path, sizeof(path)), c, i, others[100];
    struct hvsim_msg_connect_reply first, other;
    struct raw r = { 0 };

    raw_attach(&r);
    raw_route(&r, &svc, &first);
    /* Positive control: the rightful use is accepted. */
    c = present(path, &first, 1);
    cr_assert_eq(taken(l), 1, "the ticket's first use was refused");
    close(c);
    /* The same ticket again, at once and after 100 other connections. */
    c = present(path, &first, 1);
    cr_assert_eq(taken(l), 0, "a replayed ticket was accepted");
    close(c);
    for (i = 0; i < 100; i++) {
        raw_route(&r, &svc, &other);
        others[i] = present(path, &other, 1);
        cr_assert_eq(taken(l), 1, "connection %d refused", i);
    }
    c = present(path, &first, 1);
    cr_assert_eq(taken(l), 0, "a ticket replayed after 100 others was accepted");
    close(c);
    /* A fresh ticket from a connector not bound to its tagged name. */
    raw_route(&r, &svc, &other);
    c = present(path, &other, 0);
    cr_assert_eq(taken(l), 0, "a ticket presented without its name was accepted");
    close(c);
    for (i = 0; i < 100; i++)
        close(others[i]);
    close(r.req);
    close(r.evt[0]);
    close(r.evt[1]);
    hvsim_close(l);
}

/* Another user cannot even reach the listener's file (HVSIM_DIR is 0700);
 * positive control: this user can. */
Test(listener, another_user_cannot_reach_a_listener)
{
    GUID svc = fx_svc(43);
    char path[PATH_MAX + 300];
    int l = loopback_listener(&svc, 1, path, sizeof(path)), status = -1, c;
    pid_t pid;

    if (geteuid() != 0)
        cr_skip_test("needs root to become another user (CI runs as root)");
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int s;

        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
            _exit(3);
        s = socket(AF_UNIX, SOCK_STREAM, 0);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            _exit(1);
        _exit(errno == EACCES ? 0 : 2);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "uid 65534: status %d (1: it connected)", status);
    c = raw_connect(path);
    close(c);
    hvsim_close(l);
}

struct redial {
    GUID svc;
};

/* Dial until a listener answers (the service comes back after a restart),
 * for at most 5 s; then send one byte. */
static int redialer(void *v)
{
    struct redial *d = v;
    SOCKADDR_HV a = fx_hv(&HV_GUID_LOOPBACK, &d->svc);
    uint64_t t0 = fx_now_ms();

    while (fx_now_ms() - t0 < 5000) {
        int s = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

        if (s >= 0 && hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)) == 0) {
            int ok = hvsim_send(s, "!", 1, 0) == 1;

            hvsim_close(s);
            return ok ? 0 : 2;
        }
        if (s >= 0)
            hvsim_close(s);
        usleep(20 * 1000);
    }
    return 1;
}

/* Finding 6: the daemon is killed and another starts on the same folder; a
 * service that makes no call of its own (it sits in accept) is registered
 * there again by the library and keeps serving. */
Test(listener, a_service_keeps_serving_across_a_daemon_restart)
{
    struct redial d = { .svc = fx_svc(44) };
    char path[PATH_MAX + 300], c1 = 0;
    int l = loopback_listener(&d.svc, 1, path, sizeof(path)), c = -1;
    uint64_t t0;
    pid_t g;

    fx_restart(&F, NULL, NULL);
    g = fx_spawn(&F, "host", redialer, &d);
    t0 = fx_now_ms();
    while (c < 0 && fx_now_ms() - t0 < 6000) {
        struct pollfd p = { .fd = l, .events = POLLIN };

        poll(&p, 1, 100);
        c = hvsim_accept(l, NULL, NULL);
    }
    cr_assert_geq(c, 0, "the service got no connection after the restart: %s", hvsim_err_name(errno));
    cr_assert_eq(hvsim_recv(c, &c1, 1, MSG_WAITALL), 1);
    cr_assert_eq(c1, '!');
    cr_assert_eq(fx_wait(g), 0, "the dialer never got through");
    hvsim_close(c);
    hvsim_close(l);
}
