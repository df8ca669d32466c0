/* SPDX-License-Identifier: MIT */
/*
 * client.c: how a process is attached to the emulated host.
 *
 * A process connects to its partition's control socket (HVSIM_DIR/host.sock,
 * or HVSIM_DIR/vm/<name>.sock for HVSIM_PARTITION=<name>); which socket it came
 * in on is its identity, never what it claims. It keeps two connections: a
 * request connection used under one lock for request/reply round trips, and
 * an event connection (passed to the daemon at HELLO) that a helper thread
 * reads. The helper applies partition events (pause, reset, power-off) to the
 * process's sockets while the program sits in read() or epoll_wait(), and it
 * ends failed non-blocking connects when their time is up.
 *
 * After fork() the child has neither connection nor helper: it attaches again
 * on its first call that needs the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "hvproto/proto.h"

#define LIMBO_FILL 2048

struct timer {
    int q; /* the far end of a failed connect */
    uint64_t deadline_ns;
};

/* The process a socket belongs to (internal.h): its attachment to the daemon
 * (who it is, the control session) and the helper that applies its events. */
struct hvsim__owner {
    pthread_mutex_t lock; /* the request connection and the attachment */
    int req_fd;
    int evt_fd; /* read by the helper */
    int wake_fd; /* eventfd: a new timer */
    pid_t pid; /* the process that attached; another pid means we were forked */
    uint32_t seq;
    int attached;
    struct hvsim__attach self;
    char error[256];
    char *rbuf; /* replies, HVSIM_MSG_MAX bytes, used under lock */
    pthread_t helper;
    int helper_started;
    /* A new daemon run: the helper attaches again by itself (lost) when the
     * owner holds binds, and binds and listens them there (reregister). */
    _Atomic int lost;
    _Atomic int reregister;

    pthread_mutex_t limbo_lock; /* limbo listener and timers; the hand-over of evt_fd */
    int evt_helper; /* the event connection the helper polls (it closes it when it moves on) */
    int limbo_l[2]; /* [0]: for stream sockets, [1]: SEQPACKET (AF_UNIX connects only a socket of its own type) */
    struct sockaddr_un limbo_sa[2];
    socklen_t limbo_salen[2];
    struct timer *timers;
    size_t ntimers, ctimers;

    struct hvsim__spares spares; /* its own lock */
};

/* This process: today the only owner. */
static struct hvsim__owner C = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .req_fd = -1,
    .evt_fd = -1,
    .wake_fd = -1,
    .limbo_lock = PTHREAD_MUTEX_INITIALIZER,
    .limbo_l = { -1, -1 },
    .evt_helper = -1,
    .spares = { .lock = PTHREAD_MUTEX_INITIALIZER },
};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_child(void)
{
    /* The child shares the parent's connections; using them would mix the two
     * processes' messages, so the child drops its copies and attaches anew. The
     * helper thread does not exist in the child. */
    pthread_mutex_init(&C.lock, NULL);
    pthread_mutex_init(&C.limbo_lock, NULL);
    if (C.req_fd >= 0)
        hvsim__libc.close(C.req_fd);
    if (C.evt_fd >= 0)
        hvsim__libc.close(C.evt_fd);
    if (C.wake_fd >= 0)
        hvsim__libc.close(C.wake_fd);
    for (int k = 0; k < 2; k++) {
        if (C.limbo_l[k] >= 0)
            hvsim__libc.close(C.limbo_l[k]);
        C.limbo_l[k] = -1;
    }
    C.req_fd = C.evt_fd = C.wake_fd = -1;
    C.evt_helper = -1; /* the parent's helper's; the child has none */
    C.attached = 0;
    C.helper_started = 0;
    atomic_store(&C.lost, 0);
    atomic_store(&C.reregister, 0);
    /* Pending failed connects stay with the parent's helper, which owns them. */
    C.timers = NULL;
    C.ntimers = C.ctimers = 0;
    hvsim__spares_atfork_child(&C.spares);
    hvsim__sock_atfork_child();
}

static void install_atfork(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

const char *hvsim__attach_error(void)
{
    return C.error[0] ? C.error : "not attached";
}

static void helper_timers(struct hvsim__owner *o)
{
    uint64_t now = hvsim__now_ns();
    size_t i = 0;

    pthread_mutex_lock(&o->limbo_lock);
    while (i < o->ntimers) {
        if (o->timers[i].deadline_ns <= now) {
            /* Closing the far end with unread bytes in it is what sets
             * ECONNRESET (EPOLLERR) on the caller's socket. */
            hvsim__libc.close(o->timers[i].q);
            o->timers[i] = o->timers[--o->ntimers];
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&o->limbo_lock);
}

static int helper_timeout_ms(struct hvsim__owner *o)
{
    uint64_t now = hvsim__now_ns(), first = UINT64_MAX;
    size_t i;

    pthread_mutex_lock(&o->limbo_lock);
    for (i = 0; i < o->ntimers; i++)
        if (o->timers[i].deadline_ns < first)
            first = o->timers[i].deadline_ns;
    pthread_mutex_unlock(&o->limbo_lock);
    if (first == UINT64_MAX)
        return -1;
    if (first <= now)
        return 0;
    return (int)((first - now + 999999) / 1000000);
}

/* How often the helper tries a new daemon after the last one went. */
#define REATTACH_MS 200

/* The daemon went: an owner with binds attaches again as soon as a daemon
 * answers, and after any attach to a new daemon run its binds and listeners
 * are registered there again. */
static void helper_comeback(struct hvsim__owner *o)
{
    if (atomic_load(&o->lost)) {
        if (!hvsim__sock_has_binds(o) || hvsim__owner_attach(o, NULL) == 0)
            atomic_store(&o->lost, 0);
    }
    if (atomic_exchange(&o->reregister, 0))
        hvsim__sock_reregister(o);
}

static void *helper_main(void *arg)
{
    struct hvsim__owner *o = arg;
    int evt = -1, wake = o->wake_fd;
    char *buf = malloc(HVSIM_MSG_MAX);
    struct pollfd p[2];

    if (buf == NULL)
        return NULL;
    p[0] = (struct pollfd){ .fd = -1, .events = POLLIN };
    p[1] = (struct pollfd){ .fd = wake, .events = POLLIN };
    for (;;) {
        int r;

        /* A new attachment (the daemon restarted): poll its event connection. */
        pthread_mutex_lock(&o->limbo_lock);
        if (o->evt_fd != evt) {
            if (evt >= 0)
                hvsim__libc.close(evt);
            evt = o->evt_fd;
            o->evt_helper = evt;
            p[0].fd = evt;
        }
        pthread_mutex_unlock(&o->limbo_lock);
        r = poll(p, 2, atomic_load(&o->lost) ? REATTACH_MS : helper_timeout_ms(o));

        if (r < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLIN) {
            uint64_t v;

            if (read(wake, &v, sizeof(v)) < 0 && errno != EAGAIN)
                break;
        }
        if (evt >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = hvsim__msg_recv(evt, buf, HVSIM_MSG_MAX, NULL);

            if (n <= 0 && n != -EAGAIN) {
                /* The daemon is gone. Streams keep working; new calls fail
                 * with ENETDOWN. Keep serving timers. */
                p[0].fd = -1;
                pthread_mutex_lock(&o->lock);
                /* Unless a new attachment has replaced this one already. */
                if (o->evt_fd == evt) {
                    o->attached = 0;
                    snprintf(o->error, sizeof(o->error), "the hvsim daemon closed the connection");
                }
                pthread_mutex_unlock(&o->lock);
                atomic_store(&o->lost, 1);
            } else if (n > 0) {
                struct hvsim_msg_hdr h;
                struct hvsim_msg_event ev;

                memcpy(&h, buf, sizeof(h));
                if (h.type == HVSIM_MSG_EVENT && h.status == 0) {
                    memcpy(&ev, buf + sizeof(h), sizeof(ev));
                    hvsim__sock_event(o, &ev);
                }
            }
        }
        helper_timers(o);
        helper_comeback(o);
    }
    free(buf);
    return NULL;
}

/* The partition's control socket, relative to the run folder. */
static int control_name(char *out, size_t len, const char **partition)
{
    const char *p = getenv("HVSIM_PARTITION");
    size_t i;

    if (p == NULL || *p == '\0' || strcmp(p, "host") == 0) {
        *partition = "host";
        return snprintf(out, len, "host.sock") < (int)len ? 0 : -ENAMETOOLONG;
    }
    for (i = 0; p[i]; i++)
        if (p[i] == '/')
            return -EINVAL;
    *partition = p;
    return snprintf(out, len, "vm/%s.sock", p) < (int)len ? 0 : -ENAMETOOLONG;
}

/* Out of descriptors or memory: the process's own trouble, named as itself,
 * never ENETDOWN ("is hvsimd running?"). */
static int resource_error(int rc)
{
    return rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM || rc == -ENOBUFS;
}

/* The generic failure of an attach: the message, and ENETDOWN for the caller
 * (the process's own resource errors as themselves). */
static int attach_failed(struct hvsim__owner *o, int rc)
{
    snprintf(o->error, sizeof(o->error), "attaching to the hvsim daemon failed: %s", strerror(-rc));
    return resource_error(rc) ? rc : -ENETDOWN;
}

/* Every request has a deadline (HVSIM_REQUEST_TIMEOUT_MS): a stopped daemon
 * is an error, never a hang. Sets o->error; returns -ENETDOWN. */
static int no_answer(struct hvsim__owner *o, int ms)
{
    snprintf(o->error, sizeof(o->error),
             "the hvsim daemon did not answer within %d ms (HVSIM_REQUEST_TIMEOUT_MS): is hvsimd stopped or "
             "overloaded?", ms);
    return -ENETDOWN;
}


/* 1 when the attachment holds. check_alive: also make sure the daemon is
 * still there, for calls that would otherwise not notice; a request notices
 * by itself. */
static int attach_holds(struct hvsim__owner *o, int check_alive)
{
    struct pollfd p = { .fd = o->req_fd, .events = POLLIN };

    /* A forked child is never attached (atfork_child), so no getpid() here. */
    if (!o->attached)
        return 0;
    if (!check_alive)
        return 1;
    /* Nothing arrives unasked on the request connection but the late reply
     * of a request that passed its deadline: drop those; EOF means the
     * daemon is gone, and the caller should hear so now. */
    for (;;) {
        int fd = -1;

        /* One poll in the usual case: nothing there, the daemon holds. */
        if (poll(&p, 1, 0) == 0)
            return 1;
        if (o->rbuf == NULL || hvsim__msg_recv(o->req_fd, o->rbuf, HVSIM_MSG_MAX, &fd) <= 0)
            break;
        if (fd >= 0)
            hvsim__libc.close(fd);
    }
    o->attached = 0;
    return 0;
}

/* The run folder, checked before anything is sent there: an fd of it, or
 * -ENETDOWN (or a resource error) with o->error saying why. */
static int open_run_dir(struct hvsim__owner *o, const char *dir, const char *partition)
{
    char why[sizeof(o->error) - 64];
    int dfd = hvsim__dir_open_trusted(dir, 0, why, sizeof(why));

    if (dfd >= 0)
        return dfd;
    if (dfd == -EPERM)
        snprintf(o->error, sizeof(o->error), "HVSIM_DIR %s", why);
    else
        snprintf(o->error, sizeof(o->error), "cannot reach the hvsim daemon in %s (partition %s): %s", dir,
                 partition, strerror(-dfd));
    return resource_error(dfd) ? dfd : -ENETDOWN;
}

/* The socket's address, reached through the checked folder's fd (so a folder
 * renamed or replaced since the check is never followed), else by path. */
static void control_addr(struct sockaddr_un *sa, int dfd, const char *dir, const char *name)
{
    char via[64];
    struct stat st;

    snprintf(via, sizeof(via), "/proc/self/fd/%d", dfd);
    if (stat(via, &st) == 0)
        snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", via, name);
    else
        snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, name);
}

/* The request connection to the partition's control socket: its fd, or
 * -ENETDOWN (a resource error as itself) with o->error saying why. */
static int control_connect(struct hvsim__owner *o, const char **partition)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char dir[200], name[HVSIM_NAME_MAX + 16];
    int ms = hvsim__request_timeout_ms();
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    int req, dfd, rc = control_name(name, sizeof(name), partition);

    hvsim__default_dir(dir, sizeof(dir));
    if (rc < 0 || strlen(dir) + strlen(name) + 2 > sizeof(sa.sun_path)) {
        snprintf(o->error, sizeof(o->error), "HVSIM_PARTITION/HVSIM_DIR: invalid partition name or folder too long");
        return -ENETDOWN;
    }
    dfd = open_run_dir(o, dir, *partition);
    if (dfd < 0)
        return dfd;
    control_addr(&sa, dfd, dir, name);
    req = hvsim__libc.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (req < 0) {
        rc = attach_failed(o, -errno);
        hvsim__libc.close(dfd);
        return rc;
    }
    /* The deadline of a connect to a full backlog, of every send and of
     * every reply: set once here, it costs a request no system call. */
    (void)hvsim__libc.setsockopt(req, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    (void)hvsim__libc.setsockopt(req, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    rc = hvsim__libc.connect(req, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
    hvsim__libc.close(dfd);
    if (rc < 0) {
        if (rc == -EAGAIN)
            no_answer(o, ms);
        else
            snprintf(o->error, sizeof(o->error), "cannot reach the hvsim daemon at %s/%s (partition %s): %s", dir,
                     name, *partition, strerror(-rc));
        hvsim__libc.close(req);
        return resource_error(rc) ? rc : -ENETDOWN;
    }
    return req;
}

static void take_hello_reply(struct hvsim__owner *o, const struct hvsim_msg_hello_reply *r)
{
    /* Another daemon run than the last one this owner knew: its binds and
     * listeners are unknown there. The helper registers them again (adopt
     * session wakes it), so a service keeps serving with no call of its own. */
    if (o->self.instance != 0 && o->self.instance != r->instance)
        atomic_store(&o->reregister, 1);
    o->self.self = r->self;
    o->self.host = r->host;
    memcpy(o->self.name, r->name, sizeof(o->self.name));
    o->self.name[sizeof(o->self.name) - 1] = '\0';
    o->self.is_host = (int)r->is_host;
    o->self.cid = r->cid;
    o->self.instance = r->instance;
    o->self.win_timeout_ms = r->win_timeout_ms;
    o->self.linux_timeout_ms = r->linux_timeout_ms;
    o->self.timeout_clamp = r->timeout_clamp;
    o->self.transport = r->transport;
    o->self.kernel = r->kernel;
}

/* HELLO on req, passing evt_far (the daemon's end of the event connection);
 * the reply says who the owner is. Returns 0 or -ENETDOWN (o->error says why). */
static int hello(struct hvsim__owner *o, int req, int evt_far, const char *partition)
{
    struct hvsim_msg_hello m = { .version = HVSIM_PROTO_VERSION };
    struct hvsim_msg_hello_reply r;
    struct hvsim_msg_hdr h;
    char *buf;
    ssize_t n;
    int ms = hvsim__request_timeout_ms(), page = -1;
    int rc = hvsim__msg_send(req, HVSIM_MSG_HELLO, 0, ++o->seq, &m, sizeof(m), NULL, 0, evt_far);

    if (rc == -EAGAIN)
        return no_answer(o, ms);
    if (rc < 0)
        return attach_failed(o, rc);
    buf = malloc(HVSIM_MSG_MAX);
    if (buf == NULL)
        return attach_failed(o, -ENOMEM);
    if (hvsim__wait_readable(req, hvsim__now_ns() + (uint64_t)ms * 1000000u) < 0) {
        free(buf);
        return no_answer(o, ms);
    }
    n = hvsim__msg_recv(req, buf, HVSIM_MSG_MAX, &page);
    if (n <= 0) {
        free(buf);
        if (page >= 0)
            hvsim__libc.close(page);
        return attach_failed(o, n == 0 ? -ENETDOWN : (int)n);
    }
    memcpy(&h, buf, sizeof(h));
    if (h.type != HVSIM_MSG_HELLO_REPLY || h.status < 0) {
        if (page >= 0)
            hvsim__libc.close(page);
        rc = h.status < 0 ? h.status : -EPROTO;
        snprintf(o->error, sizeof(o->error), "the hvsim daemon refused partition %s: %s", partition,
                 h.len ? buf + sizeof(h) : hvsim_strerror(rc));
        free(buf);
        return -ENETDOWN;
    }
    memcpy(&r, buf + sizeof(h), sizeof(r));
    free(buf);
    take_hello_reply(o, &r);
    /* A new session: the last one's spares are void (closes page). */
    hvsim__spares_session(&o->spares, page);
    return 0;
}

static void start_helper(struct hvsim__owner *o)
{
    pthread_attr_t attr;
    sigset_t all, old;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* The helper must never take the program's signals. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&o->helper, &attr, helper_main, o) == 0)
        o->helper_started = 1;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
}

/* The new session's connections become the owner's: req for requests, evt
 * for events (read by the helper, started on the first attach). */
static void adopt_session(struct hvsim__owner *o, int req, int evt)
{
    /* The helper may be polling the old event connection: it closes that
     * one itself when it moves on (closing it here could hand its number to
     * another socket under the helper's feet). */
    pthread_mutex_lock(&o->limbo_lock);
    if (o->evt_fd >= 0 && o->evt_fd != o->evt_helper)
        hvsim__libc.close(o->evt_fd);
    o->evt_fd = evt;
    pthread_mutex_unlock(&o->limbo_lock);
    if (o->wake_fd < 0)
        o->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    else if (o->helper_started) {
        uint64_t one = 1;

        if (write(o->wake_fd, &one, sizeof(one)) < 0)
            (void)0; /* a wake already pending does the same */
    }
    o->req_fd = req;
    o->pid = getpid();
    o->attached = 1;
    o->error[0] = '\0';
    if (!o->helper_started)
        start_helper(o);
}

/* Called with o->lock held: attach unless attached (see attach_holds). */
static int attach_locked(struct hvsim__owner *o, int check_alive)
{
    const char *partition = "host";
    int req, pair[2], rc;

    pthread_once(&atfork_once, install_atfork);
    if (attach_holds(o, check_alive))
        return 0;
    if (o->req_fd >= 0) {
        hvsim__libc.close(o->req_fd);
        o->req_fd = -1;
    }
    req = control_connect(o, &partition);
    if (req < 0)
        return req;
    if (hvsim__libc.socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        rc = attach_failed(o, -errno);
        hvsim__libc.close(req);
        return rc;
    }
    rc = hello(o, req, pair[1], partition);
    hvsim__libc.close(pair[1]);
    if (rc < 0) {
        hvsim__libc.close(req);
        hvsim__libc.close(pair[0]);
        return rc;
    }
    adopt_session(o, req, pair[0]);
    return 0;
}

struct hvsim__owner *hvsim__self_owner(void)
{
    return &C;
}

struct hvsim__owner *hvsim__owner_new(void)
{
    struct hvsim__owner *o = calloc(1, sizeof(*o));

    if (o == NULL)
        return NULL;
    pthread_mutex_init(&o->lock, NULL);
    pthread_mutex_init(&o->limbo_lock, NULL);
    pthread_mutex_init(&o->spares.lock, NULL);
    o->req_fd = o->evt_fd = o->wake_fd = o->limbo_l[0] = o->limbo_l[1] = o->evt_helper = -1;
    return o;
}

int hvsim__owner_attach(struct hvsim__owner *o, struct hvsim__attach *out)
{
    int rc;

    pthread_mutex_lock(&o->lock);
    rc = attach_locked(o, 1);
    if (rc == 0 && out)
        *out = o->self;
    pthread_mutex_unlock(&o->lock);
    return rc;
}

int hvsim__attach_get(struct hvsim__attach *out)
{
    return hvsim__owner_attach(&C, out);
}

int hvsim__owner_capable(struct hvsim__owner *o, int cap)
{
    /* pid 0: the calling thread, which is the owner while there is only one. */
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, o == &C ? 0 : (int)o->pid };
    struct __user_cap_data_struct d[2];

    if (syscall(SYS_capget, &h, d) < 0)
        return 0;
    return (d[cap / 32].effective >> (cap % 32)) & 1;
}

int hvsim__request(struct hvsim__owner *o, unsigned type, const void *body, size_t blen, unsigned want_type,
                   void *reply, size_t rlen, int32_t *status)
{
    return hvsim__request_fd(o, type, body, blen, -1, want_type, reply, rlen, status, NULL);
}

/* Send one request on the owner's session, attaching again if the daemon
 * was restarted before it read it. Called with o->lock held. */
static int send_request(struct hvsim__owner *o, unsigned type, const void *body, size_t blen, int pass_fd,
                        uint32_t *seq)
{
    int rc = attach_locked(o, 0);

    if (rc < 0)
        return rc;
    *seq = ++o->seq;
    rc = hvsim__msg_send(o->req_fd, type, 0, *seq, body, blen, NULL, 0, pass_fd);
    if (rc == -EPIPE || rc == -ECONNRESET || rc == -ENOTCONN) {
        /* The daemon went away (or was restarted) before it read this: it
         * never saw the request, so attach again and send it once more. */
        o->attached = 0;
        rc = attach_locked(o, 0);
        if (rc < 0)
            return rc;
        *seq = ++o->seq;
        rc = hvsim__msg_send(o->req_fd, type, 0, *seq, body, blen, NULL, 0, pass_fd);
    }
    if (rc == -EAGAIN) /* SO_SNDTIMEO: the daemon reads nothing */
        return no_answer(o, hvsim__request_timeout_ms());
    if (rc < 0 && !resource_error(rc)) {
        o->attached = 0;
        snprintf(o->error, sizeof(o->error), "the hvsim daemon is gone");
        return -ENETDOWN;
    }
    return rc;
}

/* The reply to request seq, by the deadline. Called with o->lock held. */
static int await_reply(struct hvsim__owner *o, uint32_t seq, unsigned want_type, void *reply, size_t rlen,
                       int32_t *status, int *got_fd)
{
    int ms = hvsim__request_timeout_ms();
    uint64_t deadline = hvsim__now_ns() + (uint64_t)ms * 1000000u;
    char *buf = o->rbuf;

    for (;;) {
        struct hvsim_msg_hdr h;
        int fd = -1;
        ssize_t n;

        /* SO_RCVTIMEO bounds the wait (EAGAIN); the session stays, and a
         * late reply is dropped by its seq. */
        n = hvsim__msg_recv(o->req_fd, buf, HVSIM_MSG_MAX, &fd);
        if (n == -EAGAIN || (n == -EINTR && hvsim__now_ns() >= deadline))
            return no_answer(o, ms);
        if (n == -EINTR)
            continue;
        /* Only the reply to this request may hand us an fd, and only if asked. */
        if (fd >= 0 && (n <= 0 || got_fd == NULL || ((struct hvsim_msg_hdr *)(void *)buf)->seq != seq)) {
            hvsim__libc.close(fd);
            fd = -1;
        }
        if (n <= 0) {
            o->attached = 0;
            snprintf(o->error, sizeof(o->error), "the hvsim daemon is gone");
            return -ENETDOWN;
        }
        memcpy(&h, buf, sizeof(h));
        if (h.seq != seq)
            continue; /* a late reply to an abandoned request */
        if (h.status == 0 && h.type != want_type) {
            if (fd >= 0)
                hvsim__libc.close(fd);
            return -EPROTO;
        }
        *status = h.status;
        if (got_fd)
            *got_fd = fd;
        if (reply) {
            memset(reply, 0, rlen);
            memcpy(reply, buf + sizeof(h), h.len < rlen ? h.len : rlen);
        }
        return 0;
    }
}

int hvsim__request_fd(struct hvsim__owner *o, unsigned type, const void *body, size_t blen, int pass_fd,
                      unsigned want_type, void *reply, size_t rlen, int32_t *status, int *got_fd)
{
    uint32_t seq;
    int rc;

    pthread_mutex_lock(&o->lock);
    /* One reply buffer for the process, used under o->lock. */
    if (o->rbuf == NULL && (o->rbuf = malloc(HVSIM_MSG_MAX)) == NULL)
        rc = -ENOMEM;
    else
        rc = send_request(o, type, body, blen, pass_fd, &seq);
    if (rc == 0)
        rc = await_reply(o, seq, want_type, reply, rlen, status, got_fd);
    pthread_mutex_unlock(&o->lock);
    return rc;
}

struct hvsim__spares *hvsim__owner_spares(struct hvsim__owner *o)
{
    return &o->spares;
}

int hvsim__owner_alive(struct hvsim__owner *o)
{
    int yes;

    pthread_mutex_lock(&o->lock);
    yes = attach_holds(o, 1);
    pthread_mutex_unlock(&o->lock);
    return yes;
}

int hvsim__owner_notice(struct hvsim__owner *o, unsigned type, const void *body, size_t blen)
{
    int rc = -ENETDOWN;

    pthread_mutex_lock(&o->lock);
    if (o->attached)
        rc = hvsim__msg_send(o->req_fd, type, 0, ++o->seq, body, blen, NULL, 0, -1);
    pthread_mutex_unlock(&o->lock);
    return rc;
}

int hvsim__owner_attached(struct hvsim__owner *o)
{
    int yes;

    pthread_mutex_lock(&o->lock);
    yes = o->attached;
    pthread_mutex_unlock(&o->lock);
    return yes;
}

/* Called with o->limbo_lock held: the process's private listener that failed
 * connects of type k (0: stream, 1: SEQPACKET) are parked on, created on first use. */
static int limbo_listener(struct hvsim__owner *o, int k)
{
    int len;

    if (o->limbo_l[k] >= 0)
        return 0;
    o->limbo_l[k] = hvsim__libc.socket(AF_UNIX, (k ? SOCK_SEQPACKET : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (o->limbo_l[k] < 0)
        return -errno;
    memset(&o->limbo_sa[k], 0, sizeof(o->limbo_sa[k]));
    o->limbo_sa[k].sun_family = AF_UNIX;
    /* Abstract name: it vanishes with the process, so a crash leaves nothing. */
    len = snprintf(o->limbo_sa[k].sun_path + 1, sizeof(o->limbo_sa[k].sun_path) - 1, "hvsim-limbo-%c-%016llx-%d",
                   k ? 'q' : 's', (unsigned long long)o->self.instance, (int)getpid());
    o->limbo_salen[k] = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
    if (hvsim__libc.bind(o->limbo_l[k], (struct sockaddr *)&o->limbo_sa[k], o->limbo_salen[k]) < 0 ||
        hvsim__libc.listen(o->limbo_l[k], 64) < 0) {
        int e = -errno;

        hvsim__libc.close(o->limbo_l[k]);
        o->limbo_l[k] = -1;
        return e;
    }
    return 0;
}

int hvsim__limbo(struct hvsim__owner *o, int fd, uint32_t after_ms)
{
    char fill[LIMBO_FILL];
    int rc, q = -1, one = 1, type = SOCK_STREAM, k;
    socklen_t tl = sizeof(type);

    memset(fill, 0, sizeof(fill));
    (void)hvsim__libc.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl);
    k = type == SOCK_SEQPACKET;
    pthread_mutex_lock(&o->limbo_lock);
    rc = limbo_listener(o, k);
    if (rc < 0)
        goto out;
    /* The lock keeps another thread's limbo connect from being the one we accept. */
    if (hvsim__libc.connect(fd, (struct sockaddr *)&o->limbo_sa[k], o->limbo_salen[k]) < 0) {
        rc = -errno;
        goto out;
    }
    q = hvsim__libc.accept4(o->limbo_l[k], NULL, NULL, SOCK_CLOEXEC);
    if (q < 0) {
        rc = -errno;
        goto out;
    }
    /* AF_UNIX charges queued bytes to the sender until the receiver reads
     * them: with the smallest send buffer and one unread packet in q, fd is
     * not writable, as a connect in progress should not be. */
    (void)hvsim__libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
    if (hvsim__libc.send(fd, fill, sizeof(fill), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        rc = -errno;
        goto out;
    }
    if (after_ms == 0) {
        hvsim__libc.close(q);
        q = -1;
        rc = 0;
        goto out;
    }
    if (o->ntimers == o->ctimers) {
        size_t nc = o->ctimers ? o->ctimers * 2 : 16;
        struct timer *t = realloc(o->timers, nc * sizeof(*t));

        if (t == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        o->timers = t;
        o->ctimers = nc;
    }
    o->timers[o->ntimers++] = (struct timer){ q, hvsim__now_ns() + (uint64_t)after_ms * 1000000u };
    q = -1;
    rc = 0;
    if (o->wake_fd >= 0) {
        uint64_t v = 1;

        if (write(o->wake_fd, &v, sizeof(v)) < 0)
            rc = 0; /* a wake already pending does the same */
    }
out:
    pthread_mutex_unlock(&o->limbo_lock);
    if (q >= 0)
        hvsim__libc.close(q);
    return rc;
}
