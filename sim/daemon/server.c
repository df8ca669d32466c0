/* SPDX-License-Identifier: MIT */
/*
 * server.c: hvsimd's event loop: clients coming and going, the dispatch of
 * their messages to the handlers, start-up and shut-down.
 *
 * One thread, one epoll set: the admin socket (hvsimctl), one control socket
 * per partition (DIR/host.sock, DIR/vm/<name>.sock, mode 0600, so the file
 * system decides who may act as which partition), the attached processes,
 * the gateways' channels (gateway.c) and a signalfd for SIGTERM. Every
 * message from a client is checked by proto.c before a handler sees it; a
 * client that breaks the protocol is dropped, never the daemon. Handlers
 * (handlers_part.c, handlers_admin.c) are one table indexed by message type.
 * The daemon never sees stream data: it decides, and the processes connect
 * to each other. server_int.h says which file does what.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "server_int.h"

/* ---- sockets --------------------------------------------------------------------------------- */

void logmsg(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("hvsimd: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int watch(struct server *s, int fd, void *obj, unsigned kind)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)(uintptr_t)obj | kind };

    return epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int part_sock_path(const struct server *s, const struct part *p, char *out, size_t len)
{
    int n = p->is_host ? snprintf(out, len, "%s/host.sock", s->dir) : snprintf(out, len, "%s/vm/%s.sock", s->dir, p->name);

    return n < 0 || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path) || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int listen_unix(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    mode_t old;
    int fd, rc;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    unlink(path);
    /* Only the owner may act as this partition: the mode is the identity check. */
    old = umask(077);
    rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || listen(fd, 128) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* A VM with an owner (vm add --owner), as Firecracker's jailer gives each
 * microVM a uid: its control socket becomes its owner's, mode 0600 (0660
 * with a group), so that user's processes (and root) attach as it and
 * nobody else does; the host's socket and other VMs' stay the daemon user's.
 * To reach the socket its user must pass through DIR and DIR/vm, so those
 * get search permission for others (0711): no one else may list or write
 * there, so nothing can be planted or squatted, and the trust check
 * (hvsim__dir_open_trusted) still holds. */
static int give_to_owner(const struct server *s, const struct part *p, const char *path)
{
    char vmdir[PATH_MAX + 16];
    const char *dirs[2] = { s->dir, vmdir };
    struct stat st;
    int i;

    snprintf(vmdir, sizeof(vmdir), "%s/vm", s->dir);
    for (i = 0; i < 2; i++) {
        if (lstat(dirs[i], &st) < 0 || !S_ISDIR(st.st_mode))
            return -ENOTDIR;
        if ((st.st_mode & 0011) != 0011 && chmod(dirs[i], (st.st_mode & 07777) | 0011) < 0)
            return -errno;
    }
    if (chown(path, (uid_t)p->owner.uid, p->owner.has_gid ? (gid_t)p->owner.gid : (gid_t)-1) < 0 ||
        chmod(path, p->owner.has_gid ? 0660 : 0600) < 0)
        return -errno;
    return 0;
}

int open_part(struct server *s, struct part *p)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int rc = part_sock_path(s, p, path, sizeof(path));

    if (rc < 0)
        return rc;
    rc = listen_unix(path);
    if (rc < 0)
        return rc;
    p->listen_fd = rc;
    if (p->owner.set && (rc = give_to_owner(s, p, path)) < 0)
        return rc; /* the caller's close_part closes and removes it */
    return watch(s, p->listen_fd, p, W_PART);
}

void close_part(struct server *s, struct part *p)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];

    waiting_forget(s, NULL, p); /* a VM that goes takes the connects waiting for it */
    if (p->listen_fd >= 0) {
        close(p->listen_fd);
        p->listen_fd = -1;
        if (part_sock_path(s, p, path, sizeof(path)) == 0)
            unlink(path);
    }
}

/* ---- clients --------------------------------------------------------------------------------- */

/* Connections over a partition's ceiling that are held to answer their
 * HELLO with EMFILE; past these, one is closed at once. */
#define REFUSING_MAX 16u

static uint64_t ms_to_ns(uint32_t ms)
{
    return (uint64_t)ms * 1000000u;
}

static int ns_to_timeout(uint64_t when, uint64_t now)
{
    uint64_t ms = when > now ? (when - now + 999999) / 1000000u : 0;

    return ms > 60000 ? 60000 : (int)ms;
}

void drop_proc(struct server *s, struct proc *c)
{
    struct proc **pp;
    size_t i;

    /* Its binds go: a route may change. */
    epoch_bump(s);
    track_forget_proc(s, c);
    spares_forget_proc(c);
    for (i = 0; i < s->m.nbinds;) {
        if (s->m.binds[i]->owner == c)
            bind_remove(s, s->m.binds[i]);
        else
            i++;
    }
    /* Its waiting connects go with it. */
    offers_forget(s, c);
    waiting_forget(s, c, NULL);
    for (pp = &s->m.procs; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    if (!c->admin) {
        if (c->refuse)
            c->part->nrefusing--;
        else
            c->part->nconns--;
    }
    c->part->nqueued -= c->nevq;
    close(c->fd);
    if (c->evt_fd >= 0) {
        /* The client may hold a copy of the file (it passed it): leave epoll first. */
        (void)epoll_ctl(s->ep, EPOLL_CTL_DEL, c->evt_fd, NULL);
        close(c->evt_fd);
    }
    if (c->pidfd >= 0)
        close(c->pidfd);
    free(c->evq);
    free(c->staged);
    free(c);
}

struct proc *proc_new(struct server *s, int fd, struct part *p, int admin)
{
    struct proc *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->fd = fd;
    c->evt_fd = -1;
    c->pidfd = -1;
    c->admin = admin;
    c->part = admin ? &s->m.host : p;
    if (watch(s, fd, c, W_PROC) < 0) {
        free(c);
        return NULL;
    }
    if (!admin) {
        if (c->part->nconns >= s->m.set.max_conns) {
            c->refuse = 1;
            c->part->nrefusing++;
        } else {
            c->part->nconns++;
        }
        c->hello_deadline_ns = hvsim__now_ns() + ms_to_ns(s->m.set.hello_ms);
        if (s->hello_next_ns == 0 || c->hello_deadline_ns < s->hello_next_ns)
            s->hello_next_ns = c->hello_deadline_ns;
    }
    c->next = s->m.procs;
    s->m.procs = c;
    return c;
}

/* Stop (or start again) watching every socket that accepts. */
static void accepting(struct server *s, int on)
{
    struct epoll_event ev = { .events = on ? EPOLLIN : 0 };
    size_t i;

    ev.data.u64 = W_ADMIN;
    (void)epoll_ctl(s->ep, EPOLL_CTL_MOD, s->admin_fd, &ev);
    ev.data.u64 = (uint64_t)(uintptr_t)&s->m.host | W_PART;
    (void)epoll_ctl(s->ep, EPOLL_CTL_MOD, s->m.host.listen_fd, &ev);
    for (i = 0; i < s->m.nvms; i++) {
        ev.data.u64 = (uint64_t)(uintptr_t)s->m.vms[i] | W_PART;
        if (s->m.vms[i]->listen_fd >= 0)
            (void)epoll_ctl(s->ep, EPOLL_CTL_MOD, s->m.vms[i]->listen_fd, &ev);
    }
}

/* accept() failed for want of descriptors. The waiting connection would keep
 * the level-triggered listener reporting forever (the loop would spin), so
 * the reserve descriptor is given up for a moment to take it off the queue
 * and close it; if even that fails, accepting pauses for 100 ms. */
static void shed_connection(struct server *s, int lfd, int err)
{
    static uint64_t last_log;
    uint64_t now = hvsim__now_ns();
    int fd = -1;

    if (s->reserve_fd >= 0) {
        close(s->reserve_fd);
        s->reserve_fd = -1;
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            close(fd);
        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0 || s->reserve_fd < 0) {
        accepting(s, 0);
        s->accept_paused_until_ns = now + ms_to_ns(100);
    }
    if (now - last_log > 1000000000ull) {
        last_log = now;
        logmsg("out of descriptors (%s): new connections are closed until some go", hvsim_err_name(-err));
    }
}

static void accept_client(struct server *s, int lfd, struct part *p, int admin)
{
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    struct proc *c;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            shed_connection(s, lfd, -errno);
        return;
    }
    /* Over the ceiling, a few are held to be told why; the rest are closed. */
    if (!admin && p->nconns >= s->m.set.max_conns && p->nrefusing >= REFUSING_MAX) {
        close(fd);
        return;
    }
    c = proc_new(s, fd, p, admin);
    if (c == NULL) {
        close(fd);
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
        c->pid = cred.pid;
        c->uid = cred.uid;
    }
}

/* Drop the connections that have not sent HELLO in time. Returns the epoll
 * timeout until the next deadline (-1: none). */
static int hello_sweep(struct server *s)
{
    uint64_t now = hvsim__now_ns(), next = 0;
    struct proc *c, *nx;

    if (s->hello_next_ns == 0)
        return -1;
    if (now < s->hello_next_ns)
        return ns_to_timeout(s->hello_next_ns, now);
    for (c = s->m.procs; c; c = nx) {
        nx = c->next;
        if (c->admin || c->evt_fd >= 0)
            continue;
        if (now >= c->hello_deadline_ns) {
            logmsg("pid %d sent no HELLO within %u ms: dropped", (int)c->pid, s->m.set.hello_ms);
            drop_proc(s, c);
        } else if (next == 0 || c->hello_deadline_ns < next) {
            next = c->hello_deadline_ns;
        }
    }
    s->hello_next_ns = next;
    return next ? ns_to_timeout(next, now) : -1;
}

/* ---- events ---------------------------------------------------------------------------------- */

#define EVT_SNDBUF 8192

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* The peer process as a pidfd: the one that connected (SO_PEERPIDFD), else
 * the pid's process now, while it talks to us (pidfd_open). A pidfd names
 * one process for good, so a reused pid is never signalled. */
static int peer_pidfd(const struct proc *c)
{
    int fd = -1;
    socklen_t len = sizeof(fd);

    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) == 0 && fd >= 0)
        return fd;
    if (c->pid <= 0)
        return -1;
    fd = (int)syscall(SYS_pidfd_open, c->pid, 0);
    return fd < 0 ? -1 : fd;
}

int proc_attach(struct server *s, struct proc *c, int evt_fd)
{
    struct epoll_event ev = { .events = 0, .data.u64 = (uint64_t)(uintptr_t)c | W_EVT };
    int sndbuf = EVT_SNDBUF;

    fcntl(evt_fd, F_SETFL, O_NONBLOCK);
    /* A small kernel buffer (a few dozen events), so that max_queued_events,
     * counted in hvsimd's own queue behind it, is what bounds a process that
     * does not read. */
    (void)setsockopt(evt_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    /* Watched only while events wait in c->evq (EPOLLOUT). */
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, evt_fd, &ev) < 0)
        return -errno;
    c->evt_fd = evt_fd;
    c->pidfd = peer_pidfd(c);
    return 0;
}

static void evt_watch(struct server *s, struct proc *c, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)(uintptr_t)c | W_EVT };

    (void)epoll_ctl(s->ep, EPOLL_CTL_MOD, c->evt_fd, &ev);
}

/* Send what waits; stop watching once nothing does. */
static void evt_flush(struct server *s, struct proc *c)
{
    uint32_t i = 0;

    while (i < c->nevq &&
           hvsim__msg_send(c->evt_fd, HVSIM_MSG_EVENT, 0, 0, &c->evq[i], sizeof(c->evq[i]), NULL, 0, -1) == 0)
        i++;
    memmove(c->evq, c->evq + i, (c->nevq - i) * sizeof(*c->evq));
    c->nevq -= i;
    c->part->nqueued -= i;
    if (c->nevq == 0)
        evt_watch(s, c, 0);
}

/* The event socket is writable again, or gone. */
static void evt_ready(struct server *s, struct proc *c, uint32_t events)
{
    if (events & (EPOLLHUP | EPOLLERR)) {
        /* Nobody reads it any more: stop watching, forget what waits. */
        (void)epoll_ctl(s->ep, EPOLL_CTL_DEL, c->evt_fd, NULL);
        c->part->nqueued -= c->nevq;
        c->nevq = 0;
        return;
    }
    evt_flush(s, c);
}

/* Returns -1 when C must be detached: its partition's queue is full. */
static int event_to(struct server *s, struct proc *c, const struct hvsim_msg_event *ev)
{
    struct hvsim_msg_event *q;
    int rc;

    if (c->nevq == 0) {
        rc = hvsim__msg_send(c->evt_fd, HVSIM_MSG_EVENT, 0, 0, ev, sizeof(*ev), NULL, 0, -1);
        if (rc != -EAGAIN)
            return 0; /* sent, or its reader is gone */
    }
    if (c->part->nqueued >= s->m.set.max_events) {
        logmsg("pid %d does not read its events (%s holds %u, max_queued_events): detached", (int)c->pid,
               c->part->name, c->part->nqueued);
        return -1;
    }
    q = realloc(c->evq, (c->nevq + 1) * sizeof(*q));
    if (q == NULL)
        return -1;
    c->evq = q;
    c->evq[c->nevq++] = *ev;
    c->part->nqueued++;
    evt_watch(s, c, EPOLLOUT);
    return 0;
}

static void broadcast_ev(struct server *s, const struct hvsim_msg_event *e)
{
    struct hvsim_msg_event ev = *e;
    const GUID *vmid = &ev.vmid;
    struct proc *c, *nx;

    /* Every event of a route that stops holding revokes the tickets issued
     * before it (the listeners apply it: hvproto/proto.h). */
    ev.below = s->m.next_conn_id;
    track_event(s, &ev);
    for (c = s->m.procs; c; c = nx) {
        nx = c->next;
        if (c->evt_fd < 0)
            continue;
        /* Only the VM's own processes and the host's (which hold its
         * connections) hear of it, never another VM's. */
        if (!c->part->is_host && !hvsim_guid_equal(&c->part->id, vmid))
            continue;
        if (event_to(s, c, &ev) < 0)
            drop_proc(s, c);
    }
}

void broadcast(struct server *s, const GUID *vmid, uint32_t event)
{
    struct hvsim_msg_event ev = { .vmid = *vmid, .event = event };

    broadcast_ev(s, &ev);
}

void broadcast_service(struct server *s, const GUID *vmid, const GUID *svc)
{
    struct hvsim_msg_event ev = { .vmid = *vmid, .event = HVSIM_EV_SERVICE_DISABLED, .svc = *svc };

    broadcast_ev(s, &ev);
}

void broadcast_service_removed(struct server *s, const GUID *svc)
{
    /* The zero VM ID reaches the host's processes only: theirs are the
     * listeners a registered service leads guests to. */
    struct hvsim_msg_event ev = { .vmid = HV_GUID_ZERO, .event = HVSIM_EV_SERVICE_REMOVED, .svc = *svc };

    broadcast_ev(s, &ev);
}

void signal_vm(struct server *s, const struct part *p, int sig)
{
    struct proc *c;

    for (c = s->m.procs; c; c = c->next)
        if (c->part == p && !c->admin && c->pidfd >= 0 && c->pid != getpid())
            (void)syscall(SYS_pidfd_send_signal, c->pidfd, sig, NULL, 0);
}

/* ---- replies --------------------------------------------------------------------------------- */

int reply(struct proc *c, unsigned type, uint32_t seq, const void *body, size_t len)
{
    return hvsim__msg_send(c->fd, type, 0, seq, body, len, NULL, 0, -1);
}

int reply_extra(struct proc *c, unsigned type, uint32_t seq, const void *body, size_t len, const void *extra,
                size_t elen)
{
    return hvsim__msg_send(c->fd, type, 0, seq, body, len, extra, elen, -1);
}

int reply_err(struct proc *c, unsigned type, uint32_t seq, int err, const char *text)
{
    return hvsim__msg_send(c->fd, type, err, seq, NULL, 0, text, text ? strlen(text) : 0, -1);
}

/* ---- dispatch -------------------------------------------------------------------------------- */

/* Every message type a client may send, its handler (handlers_part.c,
 * handlers_admin.c), and which socket it may come on (the admin socket, or
 * a partition's control socket). */
static const struct {
    handler_fn *fn;
    int admin; /* 1: admin socket only; 0: partition sockets only */
    int keeps_routes; /* 1: changes no route, so the routing epoch stays (spares.c) */
} handlers[HVSIM_MSG_COUNT] = {
    [HVSIM_MSG_HELLO] = { h_hello, 0, 1 },
    [HVSIM_MSG_BIND] = { h_bind, 0, 0 },
    [HVSIM_MSG_UNBIND] = { h_unbind, 0, 0 },
    [HVSIM_MSG_LISTEN] = { h_listen, 0, 0 },
    [HVSIM_MSG_CONNECT] = { h_connect, 0, 1 },
    [HVSIM_MSG_CONN_USED] = { h_conn_used, 0, 1 },
    [HVSIM_MSG_STATUS] = { h_status, 1, 1 },
    [HVSIM_MSG_VM_ADD] = { h_vm_add, 1, 0 },
    [HVSIM_MSG_VM_RM] = { h_vm_rm, 1, 0 },
    [HVSIM_MSG_VM_OP] = { h_vm_op, 1, 0 },
    [HVSIM_MSG_VM_LIST] = { h_vm_list, 1, 1 },
    [HVSIM_MSG_SVC_ADD] = { h_svc_add, 1, 0 },
    [HVSIM_MSG_SVC_RM] = { h_svc_rm, 1, 0 },
    [HVSIM_MSG_SVC_LIST] = { h_svc_list, 1, 1 },
    [HVSIM_MSG_SVC_IMPORT] = { h_svc_import, 1, 0 },
    [HVSIM_MSG_HCS_SET] = { h_hcs_set, 1, 0 },
    [HVSIM_MSG_SETTING_GET] = { h_setting_get, 1, 1 },
    [HVSIM_MSG_SETTING_SET] = { h_setting_set, 1, 0 },
    [HVSIM_MSG_SETTING_LIST] = { h_setting_list, 1, 1 },
    [HVSIM_MSG_VM_LISTENERS] = { h_vm_listeners, 1, 1 },
    [HVSIM_MSG_VM_CONNS] = { h_vm_conns, 1, 1 },
};

/* Returns -1 when the client must be dropped. */
static int serve_one(struct server *s, struct proc *c)
{
    struct req r = { .s = s, .c = c, .fd = -1 };
    ssize_t n = hvsim__msg_recv(c->fd, s->buf, HVSIM_MSG_MAX, &r.fd);
    int rc;

    if (n == -EAGAIN)
        return 0;
    if (n <= 0) {
        if (n < 0)
            logmsg("pid %d broke the protocol (%s): dropped", (int)c->pid, hvsim_err_name((int)n));
        return -1;
    }
    memcpy(&r.h, s->buf, sizeof(r.h));
    r.body = s->buf + sizeof(r.h);
    if (r.h.status != 0 || handlers[r.h.type].fn == NULL || handlers[r.h.type].admin != c->admin ||
        (!c->admin && r.h.type != HVSIM_MSG_HELLO && c->evt_fd < 0)) {
        logmsg("pid %d sent %s where it may not: dropped", (int)c->pid, hvsim__msg_name(r.h.type));
        rc = -1;
    } else {
        /* Moved before the reply: whoever hears of a change and connects
         * then finds its spares stale. */
        if (!handlers[r.h.type].keeps_routes)
            epoch_bump(s);
        rc = handlers[r.h.type].fn(&r) < 0 ? -1 : 0;
    }
    if (r.fd >= 0)
        close(r.fd);
    return rc;
}

/* ---- life cycle ------------------------------------------------------------------------------ */

/* DIR (the sockets), DIR/vm and the state folder, made 0700 when missing;
 * an existing one must be trusted (hvsim__dir_open_trusted: ours, no link,
 * writable by nobody else), or hvsimd refuses to start. */
static int make_dirs(struct server *s, const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX + 16];
    const char *dirs[3] = { dir, path, s->state_dir };
    int i, fd;

    snprintf(path, sizeof(path), "%s/vm", dir);
    for (i = 0; i < 3; i++) {
        if (dirs[i][0] == '\0')
            continue;
        fd = hvsim__dir_open_trusted(dirs[i], 1, err, errlen);
        if (fd < 0)
            return fd;
        close(fd);
    }
    return 0;
}

/* A live daemon already serving this folder must not lose its sockets:
 * PATH (DIR/admin.sock) must not answer a connect. */
static int check_not_served(const char *dir, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "--dir %s: too long for a socket path (at most %zu bytes)", dir,
                 sizeof(sa.sun_path) - 20);
        if (probe >= 0)
            close(probe);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(probe);
        snprintf(err, errlen, "another hvsimd is serving %s", dir);
        return -EADDRINUSE;
    }
    if (probe >= 0)
        close(probe);
    return 0;
}

/* --set name=value, after the saved settings so that the command line wins. */
static int apply_sets(struct server *s, const char *const *sets, size_t nsets, char *err, size_t errlen)
{
    size_t i;
    int rc;

    for (i = 0; i < nsets; i++) {
        char name[64];
        const char *eqs = strchr(sets[i], '=');

        if (eqs == NULL || (size_t)(eqs - sets[i]) >= sizeof(name)) {
            snprintf(err, errlen, "--set %s: expected name=value", sets[i]);
            return -EINVAL;
        }
        memcpy(name, sets[i], (size_t)(eqs - sets[i]));
        name[eqs - sets[i]] = '\0';
        rc = settings_set(&s->m.set, name, eqs + 1, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The epoll set with the signalfd, the admin socket (at PATH) and every
 * partition's control socket in it. */
static int open_sockets(struct server *s, const char *dir, const char *path, char *err, size_t errlen)
{
    sigset_t mask;
    size_t i;
    int rc;

    s->ep = epoll_create1(EPOLL_CLOEXEC);
    if (s->ep < 0)
        return -errno;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    s->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->sig_fd < 0 || watch(s, s->sig_fd, NULL, 0) < 0)
        return -errno;
    s->admin_fd = listen_unix(path);
    if (s->admin_fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(-s->admin_fd));
        return s->admin_fd;
    }
    rc = watch(s, s->admin_fd, NULL, W_ADMIN);
    if (rc == 0)
        rc = open_part(s, &s->m.host);
    for (i = 0; i < s->m.nvms && rc == 0; i++)
        rc = open_part(s, s->m.vms[i]);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the control sockets in %s: %s", dir, strerror(-rc));
        return rc;
    }
    return 0;
}

int server_init(struct server *s, const char *dir, const char *state_dir, const char *const *sets, size_t nsets,
                char *err, size_t errlen)
{
    char path[PATH_MAX + 16];
    int rc;

    memset(s, 0, sizeof(*s));
    s->ep = s->admin_fd = s->sig_fd = s->l_fd = s->epoch_fd = -1;
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    model_init(&s->m);
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(s->state_dir, sizeof(s->state_dir), "%s", state_dir ? state_dir : "");
    s->buf = malloc(HVSIM_MSG_MAX);
    if (s->buf == NULL)
        return -ENOMEM;
    epoch_init(s);
    rc = make_dirs(s, dir, err, errlen);
    if (rc < 0)
        return rc;
    rc = listeners_open(s, err, errlen);
    if (rc < 0)
        return rc;
    snprintf(path, sizeof(path), "%s/admin.sock", dir);
    rc = check_not_served(dir, path, err, errlen);
    if (rc < 0)
        return rc;
    rc = load_state(s, err, errlen);
    if (rc < 0)
        return rc;
    rc = apply_sets(s, sets, nsets, err, errlen);
    if (rc < 0)
        return rc;
    return open_sockets(s, dir, path, err, errlen);
}

/* The epoll timeout: the earliest of the offers' and HELLOs' deadlines and
 * the end of an accept pause. */
static int next_timeout(struct server *s)
{
    int t = offers_sweep(s), h = hello_sweep(s), w = waiting_sweep(s);

    if (w >= 0 && (t < 0 || w < t))
        t = w;

    if (s->accept_paused_until_ns) {
        uint64_t now = hvsim__now_ns();
        int a;

        if (now >= s->accept_paused_until_ns) {
            s->accept_paused_until_ns = 0;
            accepting(s, 1);
        }
        a = s->accept_paused_until_ns ? ns_to_timeout(s->accept_paused_until_ns, now) : -1;
        if (a >= 0 && (t < 0 || a < t))
            t = a;
    }
    return h >= 0 && (t < 0 || h < t) ? h : t;
}

static int proc_alive(const struct server *s, const struct proc *c)
{
    const struct proc *it;

    /* The proc may have been dropped by an earlier event of this batch. */
    for (it = s->m.procs; it && it != c; it = it->next)
        ;
    return it != NULL;
}

static void dispatch(struct server *s, const struct epoll_event *e)
{
    uint64_t d = e->data.u64;
    unsigned kind = (unsigned)(d & W_MASK);
    void *obj = (void *)(uintptr_t)(d & ~(uint64_t)W_MASK);

    if (kind == 0) {
        struct signalfd_siginfo si;

        while (read(s->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
            s->stop = 1;
    } else if (kind == W_ADMIN) {
        accept_client(s, s->admin_fd, NULL, 1);
    } else if (kind == W_PART) {
        struct part *p = obj;

        accept_client(s, p->listen_fd, p, 0);
    } else if (kind == W_GATEWAY) {
        struct bind *b = obj;
        size_t j;

        /* The bind may have been removed by an earlier event of this batch. */
        for (j = 0; j < s->m.nbinds && s->m.binds[j] != b; j++)
            ;
        if (j < s->m.nbinds && b->gateway && b->gw_fd >= 0)
            gateway_readable(s, b);
    } else if (kind == W_EVT) {
        if (proc_alive(s, obj) && ((struct proc *)obj)->evt_fd >= 0)
            evt_ready(s, obj, e->events);
    } else if (proc_alive(s, obj) && serve_one(s, obj) < 0) {
        drop_proc(s, obj);
    }
}

int server_run(struct server *s, int ready_fd)
{
    struct epoll_event evs[64];

    char status[PATH_MAX + 64], err[PATH_MAX + 128];

    if (ready_fd >= 0) {
        /* s6-style readiness: a line, then EOF. */
        if (write(ready_fd, "READY=1\n", 8) < 0)
            logmsg("readiness fd %d: %s", ready_fd, strerror(errno));
        close(ready_fd);
    }
    /* systemd's (Type=notify): a datagram to $NOTIFY_SOCKET, beside --ready-fd. */
    snprintf(status, sizeof(status), "READY=1\nSTATUS=serving %s\nMAINPID=%ld\n", s->dir, (long)getpid());
    if (notify_systemd(status, err, sizeof(err)) < 0)
        logmsg("readiness: %s", err);
    while (!s->stop) {
        int i, n = epoll_wait(s->ep, evs, 64, next_timeout(s));

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (i = 0; i < n; i++)
            dispatch(s, &evs[i]);
    }
    if (notify_systemd("STOPPING=1\n", err, sizeof(err)) < 0)
        logmsg("stopping: %s", err);
    return 0;
}

void server_fini(struct server *s)
{
    char path[PATH_MAX + 16];
    size_t i;

    s->stopping = 1;
    while (s->m.procs)
        drop_proc(s, s->m.procs);
    offers_free(s);
    waiting_free(s);
    close_part(s, &s->m.host);
    for (i = 0; i < s->m.nvms; i++)
        close_part(s, s->m.vms[i]);
    if (s->admin_fd >= 0) {
        close(s->admin_fd);
        snprintf(path, sizeof(path), "%s/admin.sock", s->dir);
        unlink(path);
    }
    if (s->sig_fd >= 0)
        close(s->sig_fd);
    if (s->reserve_fd >= 0)
        close(s->reserve_fd);
    if (s->l_fd >= 0)
        close(s->l_fd);
    if (s->ep >= 0)
        close(s->ep);
    model_free(&s->m);
    epoch_fini(s);
    free(s->buf);
}
