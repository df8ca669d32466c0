/* SPDX-License-Identifier: MIT */
/*
 * supervisor.c: hvsim-run --supervise. Programs that bypass libc (Go, static
 * binaries, raw syscall()) never meet the LD_PRELOAD interposer; here the
 * program runs under a seccomp filter that returns SECCOMP_RET_USER_NOTIF for
 * the calls of the emulated families, and the launcher, left behind as the
 * program's parent, serves them with libhvsim (one control session, an
 * hvsim__owner, per served process):
 *
 *   socket(40 | 34)     the library makes the socket (an AF_UNIX stream) and
 *                       it is put into the program with
 *                       SECCOMP_IOCTL_NOTIF_ADDFD (+SEND) at a number >=
 *                       HVSIM_SV_FD_FLOOR. The handler has no CONTINUE path.
 *   bind listen accept accept4 connect getsockname getpeername getsockopt
 *   setsockopt shutdown close   only when the fd argument is >= the floor;
 *                       the supervisor identifies the socket by its inode
 *                       (pidfd_getfd + fstat) and acts on its own copy of
 *                       the same open file description; any other fd is
 *                       left to the kernel (CONTINUE), unless it is a
 *                       kernel vsock socket (refused: EAFNOSUPPORT).
 *   ioctl IOCTL_VM_SOCKETS_GET_LOCAL_CID   answered with the emulated CID.
 *   ioctl SIOCINQ/SIOCOUTQ, dup, fcntl F_DUPFD[_CLOEXEC]   only on fds >= the
 *                       floor: the library's answer; a copy at a served number.
 *
 * The filters themselves are built in vsock_filter.c.
 *
 * read/write/poll/sendmsg/recvmsg are never intercepted: the fd is a real
 * connected socket. connect and accept, which may block, run on worker threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <linux/vhost.h>
#include <sys/socket.h> /* first: linux/vm_sockets.h needs struct sockaddr */
#include <linux/vm_sockets.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>

#include "hvsim/hvsim.h"
#include "hvsim_adapter.h"
#include "supervisor.h"
#include "vsock_filter.h"

#define EXIT_LAUNCHER 125
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#define SV_NR_MAX 512

static int g_standin; /* 0 or the stand-in family */
static int g_nfd = -1;
static pid_t g_child; /* the program: the root of the served tree */
static int g_child_sig; /* the signal that ended the program, or 0 */
static _Atomic unsigned long g_count[SV_NR_MAX];

/* ---- served processes and sockets ------------------------------------------------- */

struct proc {
    pid_t tgid;
    struct hvsim__owner *owner;
};

struct entry {
    dev_t dev;
    ino_t ino;
    int svfd; /* the supervisor's copy; -1: free */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* the tables and fd placement */
static struct proc *g_procs;
static size_t g_nprocs;
static struct entry *g_ents;
static size_t g_nents;

static pid_t tgid_of(pid_t tid)
{
    char path[64], line[128];
    FILE *f;
    pid_t t = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Tgid: %d", &t) == 1)
            break;
    fclose(f);
    return t;
}

static struct hvsim__owner *owner_for(pid_t tid)
{
    pid_t tgid = tgid_of(tid);
    struct hvsim__owner *o = NULL;
    size_t i;

    if (tgid < 0)
        return NULL;
    pthread_mutex_lock(&g_lock);
    for (i = 0; i < g_nprocs; i++)
        if (g_procs[i].tgid == tgid)
            o = g_procs[i].owner;
    if (o == NULL) {
        struct proc *p = realloc(g_procs, (g_nprocs + 1) * sizeof(*p));

        if (p) {
            g_procs = p;
            o = hvsim__owner_new();
            if (o)
                g_procs[g_nprocs++] = (struct proc){ tgid, o };
        }
    }
    pthread_mutex_unlock(&g_lock);
    return o;
}

static int ent_add(int svfd)
{
    struct stat st;
    size_t i;
    int rc = -ENOMEM;

    if (fstat(svfd, &st) < 0)
        return -errno;
    pthread_mutex_lock(&g_lock);
    for (i = 0; i < g_nents && g_ents[i].svfd >= 0; i++)
        ;
    if (i == g_nents) {
        struct entry *e = realloc(g_ents, (g_nents + 16) * sizeof(*e));

        if (e) {
            g_ents = e;
            for (size_t j = g_nents; j < g_nents + 16; j++)
                g_ents[j].svfd = -1;
            g_nents += 16;
        }
    }
    if (i < g_nents) {
        g_ents[i] = (struct entry){ st.st_dev, st.st_ino, svfd };
        rc = 0;
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

/* The supervisor's fd of the socket (dev, ino), or -1; take: forget it. */
static int ent_find(dev_t dev, ino_t ino, int take)
{
    int fd = -1;

    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_nents; i++)
        if (g_ents[i].svfd >= 0 && g_ents[i].dev == dev && g_ents[i].ino == ino) {
            fd = g_ents[i].svfd;
            if (take)
                g_ents[i].svfd = -1;
            break;
        }
    pthread_mutex_unlock(&g_lock);
    return fd;
}

static void ent_rekey(int svfd)
{
    struct stat st;

    if (fstat(svfd, &st) < 0)
        return;
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_nents; i++)
        if (g_ents[i].svfd == svfd) {
            g_ents[i].dev = st.st_dev;
            g_ents[i].ino = st.st_ino;
        }
    pthread_mutex_unlock(&g_lock);
}

/* ---- talking to the program --------------------------------------------------------- */

static int pidfd_of(pid_t tid)
{
    int p = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);

    if (p < 0) {
        pid_t t = tgid_of(tid);

        p = t < 0 ? -1 : (int)syscall(SYS_pidfd_open, t, 0);
    }
    return p;
}

static int id_valid(uint64_t id)
{
    return ioctl(g_nfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

static int mem_read(const struct seccomp_notif *r, uint64_t addr, void *buf, size_t len)
{
    struct iovec l = { buf, len }, rv = { (void *)(uintptr_t)addr, len };

    if (len == 0)
        return 0;
    if (process_vm_readv(r->pid, &l, 1, &rv, 1, 0) != (ssize_t)len)
        return -EFAULT;
    /* The pid may have died and been reused between receiving and reading. */
    return id_valid(r->id) ? 0 : -ENOENT;
}

static int mem_write(const struct seccomp_notif *r, uint64_t addr, const void *buf, size_t len)
{
    struct iovec l = { (void *)buf, len }, rv = { (void *)(uintptr_t)addr, len };

    if (len == 0)
        return 0;
    return process_vm_writev(r->pid, &l, 1, &rv, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

/* The kernel orders an answer before whatever the program does next, and
 * so before the notification of its next call, which another thread of the
 * supervisor may serve (a worker's connect, then the main thread's close of
 * the same socket). A thread sanitizer cannot see that order through the
 * notification fd; this lock, taken before every answer and after every
 * receipt, states it. */
static pthread_mutex_t g_order = PTHREAD_MUTEX_INITIALIZER;

static void ordered(void)
{
    pthread_mutex_lock(&g_order);
    pthread_mutex_unlock(&g_order);
}

static void respond(const struct seccomp_notif *r, int64_t val, int negerr)
{
    struct seccomp_notif_resp s = { .id = r->id, .val = negerr ? 0 : val, .error = negerr };

    ordered();
    (void)ioctl(g_nfd, SECCOMP_IOCTL_NOTIF_SEND, &s);
}

/* Let the kernel run the call: only ever for fd calls on fds that are not
 * served sockets and not kernel vsock sockets (checked by the caller). */
static void pass(const struct seccomp_notif *r)
{
    struct seccomp_notif_resp s = { .id = r->id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };

    ordered();
    (void)ioctl(g_nfd, SECCOMP_IOCTL_NOTIF_SEND, &s);
}

/* ---- signals during a blocking call ------------------------------------------------
 * The program's notify filter waits killably once a call is received
 * (vsock_filter.c): a signal for the calling thread then stays pending, and
 * the supervisor answers as the kernel would have. A connect and an accept
 * that block (on workers) are watched every WATCH_MS: when the thread has a
 * signal pending that it does not block, or the call is gone (the thread was
 * killed, or, on a kernel without the flag, interrupted), the worker is
 * kicked with SV_KICK, whose poll (in the library or do_accept) then fails
 * with EINTR, and the call is withdrawn:
 *   connect  EINTR, with or without SA_RESTART (vsock_connect's wait has a
 *            time-out: sock_intr_errno gives EINTR); the socket stays
 *            unconnected, the daemon's waiting entry goes with its socket.
 *   accept   ERESTARTSYS, which the kernel turns into EINTR or a restart
 *            as it does for an accept's own wait (no time-out). */
#define HVSIM_ERESTARTSYS 512 /* include/linux/errno.h, not exported */
#define SV_KICK SIGUSR2
#define WATCH_MS 20

enum { W_WAITING, W_SIGNAL, W_GONE };

struct watch {
    pthread_t worker;
    pid_t tid;
    uint64_t id;
    _Atomic int why; /* set by the watcher, read by the worker as it polls */
    struct watch *next;
};

static int g_killable; /* the program's filter waits killably */
static pthread_mutex_t w_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t w_cond = PTHREAD_COND_INITIALIZER;
static struct watch *w_head;
static int w_running;

/* Whether thread tid has a signal pending that it does not block (its own
 * or its process's): what would have cut a kernel wait short. */
static int signal_waits(pid_t tid)
{
    unsigned long long pnd = 0, shd = 0, blk = 0;
    char path[64], line[128];
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    /* SigPnd, ShdPnd, then SigBlk, in that order. */
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "SigPnd: %llx", &pnd) == 1 || sscanf(line, "ShdPnd: %llx", &shd) == 1)
            continue;
        if (sscanf(line, "SigBlk: %llx", &blk) == 1)
            break;
    }
    fclose(f);
    return ((pnd | shd) & ~blk) != 0;
}

static void *watcher(void *arg)
{
    struct timespec tick = { 0, WATCH_MS * 1000000L };

    (void)arg;
    pthread_mutex_lock(&w_lock);
    for (;;) {
        while (w_head == NULL)
            pthread_cond_wait(&w_cond, &w_lock);
        /* A tick first: a call done within it (a connect to a listener)
         * never costs a look at /proc. */
        pthread_mutex_unlock(&w_lock);
        clock_nanosleep(CLOCK_MONOTONIC, 0, &tick, NULL);
        pthread_mutex_lock(&w_lock);
        for (struct watch *w = w_head; w; w = w->next) {
            if (w->why == W_WAITING && !id_valid(w->id))
                w->why = W_GONE;
            else if (w->why == W_WAITING && g_killable && signal_waits(w->tid))
                w->why = W_SIGNAL;
            /* Again on every tick until the worker is out: a kick that
             * came before it entered its poll is not lost. */
            if (w->why != W_WAITING)
                pthread_kill(w->worker, SV_KICK);
        }
    }
    return NULL;
}

static void kick_mask(int how)
{
    sigset_t k;

    sigemptyset(&k);
    sigaddset(&k, SV_KICK);
    pthread_sigmask(how, &k, NULL);
}

/* The calling worker is about to block for call r: watch it, and let the
 * kick in. */
static void watch_begin(struct watch *w, const struct seccomp_notif *r)
{
    w->worker = pthread_self();
    w->tid = (pid_t)r->pid;
    w->id = r->id;
    atomic_init(&w->why, W_WAITING);
    pthread_mutex_lock(&w_lock);
    w->next = w_head;
    w_head = w;
    if (!w_running) {
        pthread_attr_t at;
        pthread_t t;

        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        w_running = pthread_create(&t, &at, watcher, NULL) == 0;
        pthread_attr_destroy(&at);
    }
    pthread_cond_signal(&w_cond);
    pthread_mutex_unlock(&w_lock);
    kick_mask(SIG_UNBLOCK);
}

/* Done blocking: no more kicks, none left pending. Returns why the watch
 * ended (W_WAITING: nothing happened). */
static int watch_end(struct watch *w)
{
    const struct timespec now = { 0, 0 };
    struct watch **p;
    sigset_t k;

    kick_mask(SIG_BLOCK);
    pthread_mutex_lock(&w_lock);
    for (p = &w_head; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    pthread_mutex_unlock(&w_lock);
    sigemptyset(&k);
    sigaddset(&k, SV_KICK);
    while (sigtimedwait(&k, NULL, &now) == SV_KICK)
        ;
    return w->why;
}

static void on_kick(int sig)
{
    (void)sig; /* its only work: the worker's poll fails with EINTR */
}

/* A free fd number >= the floor in the program (probed with pidfd_getfd;
 * g_lock held, so two installs never pick the same one). */
static int free_number(int pidfd, int from)
{
    for (int n = from; n < from + 65536; n++) {
        int t = (int)syscall(SYS_pidfd_getfd, pidfd, n, 0);

        if (t < 0 && errno == EBADF)
            return n;
        if (t >= 0)
            close(t);
        else
            return -errno;
    }
    return -EMFILE;
}

/* Put svfd into the program at a free number >= the floor and answer the
 * call with it (ADDFD_FLAG_SEND). Returns the number or -errno (the call is
 * then still to be answered). */
static int install_from(const struct seccomp_notif *r, int svfd, int cloexec, int from)
{
    struct seccomp_notif_addfd a = { .id = r->id, .flags = SECCOMP_ADDFD_FLAG_SETFD | SECCOMP_ADDFD_FLAG_SEND,
                                     .srcfd = (uint32_t)svfd, .newfd_flags = cloexec ? O_CLOEXEC : 0 };
    int pidfd = pidfd_of(r->pid), n, rc;

    if (pidfd < 0)
        return -ESRCH;
    pthread_mutex_lock(&g_lock);
    n = free_number(pidfd, from < HVSIM_SV_FD_FLOOR ? HVSIM_SV_FD_FLOOR : from);
    if (n >= 0) {
        a.newfd = (uint32_t)n;
        ordered(); /* ADDFD with SEND answers the call */
        rc = ioctl(g_nfd, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
        n = rc < 0 ? -errno : rc;
    }
    pthread_mutex_unlock(&g_lock);
    close(pidfd);
    return n;
}

static int install(const struct seccomp_notif *r, int svfd, int cloexec)
{
    return install_from(r, svfd, cloexec, HVSIM_SV_FD_FLOOR);
}

/* still_open: 1 when a process of the tree, other than by fd `except` of
 * `tid`, still has the socket open at a number >= the floor: the closing fd
 * was a copy (dup, F_DUPFD, dup2, fork), and the supervisor must keep
 * serving the others. fd_in looks in one process's fd table. */
static int fd_in(pid_t pid, ino_t ino, int except)
{
    char path[64], link[64], want[64];
    struct dirent *e;
    DIR *d;
    int found = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    snprintf(want, sizeof(want), "socket:[%lu]", (unsigned long)ino);
    d = opendir(path);
    if (d == NULL)
        return 0;
    while (!found && (e = readdir(d)) != NULL) {
        int n = atoi(e->d_name);
        ssize_t l;

        if (n < HVSIM_SV_FD_FLOOR || n == except)
            continue;
        l = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
        if (l > 0) {
            link[l] = '\0';
            found = strcmp(link, want) == 0;
        }
    }
    closedir(d);
    return found;
}

/* The processes of the tree below pid (read from its threads' children
 * files), appended to out[n..max); the new count. */
static size_t tree_below(pid_t pid, pid_t *out, size_t n, size_t max, int depth)
{
    char path[96];
    struct dirent *e;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    d = depth < 32 ? opendir(path) : NULL;
    while (d && (e = readdir(d)) != NULL) {
        FILE *f;
        int c;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%.32s/children", (int)pid, e->d_name);
        f = fopen(path, "re");
        while (f && n < max && fscanf(f, "%d", &c) == 1) {
            out[n++] = c;
            n = tree_below(c, out, n, max, depth + 1);
        }
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

static int still_open(pid_t tid, ino_t ino, int except)
{
    pid_t me = tgid_of(tid), all[256];
    size_t n = 0;
    int found = fd_in(tid, ino, except);

    /* The program, its descendants (a forked child holding a copy), and the
     * served processes that left the tree (orphans are reparented). */
    if (!found) {
        all[n++] = g_child;
        n = tree_below(g_child, all, n, sizeof(all) / sizeof(all[0]) - 64, 0);
        pthread_mutex_lock(&g_lock);
        for (size_t i = 0; i < g_nprocs && n < sizeof(all) / sizeof(all[0]); i++)
            all[n++] = g_procs[i].tgid;
        pthread_mutex_unlock(&g_lock);
    }
    for (size_t i = 0; i < n && !found; i++)
        if (all[i] != me)
            found = fd_in(all[i], ino, -1);
    return found;
}

/* The served socket behind the program's fd argument 0: the supervisor's
 * fd, or -1 when it is none of ours (*vsock set when it is a kernel vsock
 * socket, which must never be passed on). */
static int served_fd(const struct seccomp_notif *r, int *vsock)
{
    int pidfd = pidfd_of(r->pid), t, fd = -1, dom = 0;
    socklen_t dl = sizeof(dom);
    struct stat st;

    *vsock = 0;
    if (pidfd < 0)
        return -1;
    t = (int)syscall(SYS_pidfd_getfd, pidfd, (int)r->data.args[0], 0);
    close(pidfd);
    if (t < 0)
        return -1;
    if (fstat(t, &st) == 0)
        fd = ent_find(st.st_dev, st.st_ino, 0);
    if (fd < 0 && getsockopt(t, SOL_SOCKET, SO_DOMAIN, &dom, &dl) == 0 &&
        (dom == AF_VSOCK || dom == HVSIM_FILTER_AF_HYPERV))
        *vsock = 1;
    close(t);
    return fd;
}

/* Stand-in family: the program's number <-> AF_VSOCK for the library. */
static void addr_in(struct sockaddr_storage *ss)
{
    if (g_standin && ss->ss_family == g_standin)
        ss->ss_family = AF_VSOCK;
}

static void addr_out(struct sockaddr_storage *ss)
{
    if (g_standin && ss->ss_family == AF_VSOCK)
        ss->ss_family = (sa_family_t)g_standin;
}

static int lib_family(int fam)
{
    if (g_standin)
        return fam == g_standin ? AF_VSOCK : -1;
    return fam == AF_VSOCK || fam == HVSIM_FILTER_AF_HYPERV ? fam : -1;
}

/* ---- the calls ------------------------------------------------------------------------ */

/* socket(): every answer is a served socket or an error, never CONTINUE. */
static void on_socket(const struct seccomp_notif *r)
{
    int fam = lib_family((int)(uint32_t)r->data.args[0]), type = (int)r->data.args[1];
    struct hvsim__owner *o;
    int fd, n;

    if (fam < 0) {
        respond(r, 0, -EAFNOSUPPORT);
        return;
    }
    o = owner_for(r->pid);
    if (o == NULL) {
        respond(r, 0, -ENOMEM);
        return;
    }
    fd = hvsim__socket_as(o, fam, type, (int)r->data.args[2] == g_standin ? 0 : (int)r->data.args[2]);
    if (fd < 0) {
        respond(r, 0, -errno);
        return;
    }
    n = ent_add(fd);
    if (n == 0)
        n = install(r, fd, type & SOCK_CLOEXEC);
    if (n < 0) {
        struct stat st;

        respond(r, 0, n);
        if (fstat(fd, &st) == 0)
            (void)ent_find(st.st_dev, st.st_ino, 1);
        hvsim_close(fd);
    }
}

static int read_addr(const struct seccomp_notif *r, uint64_t p, uint64_t len, struct sockaddr_storage *ss)
{
    int rc;

    memset(ss, 0, sizeof(*ss));
    if (len > sizeof(*ss))
        return -EINVAL;
    rc = mem_read(r, p, ss, (size_t)len);
    if (rc == 0)
        addr_in(ss);
    return rc;
}

/* Write an address and its length back to (addr, lenp), as the kernel does:
 * at most the caller's length, the full length in *lenp. */
static int write_addr(const struct seccomp_notif *r, uint64_t addr, uint64_t lenp, struct sockaddr_storage *ss,
                      socklen_t have, socklen_t full)
{
    int rc;

    if (addr == 0)
        return 0;
    addr_out(ss);
    rc = mem_write(r, addr, ss, have < full ? have : full);
    return rc < 0 ? rc : mem_write(r, lenp, &full, sizeof(full));
}

static int get_len(const struct seccomp_notif *r, uint64_t lenp, socklen_t *len)
{
    if (lenp == 0)
        return -EFAULT;
    return mem_read(r, lenp, len, sizeof(*len));
}

static int do_names(const struct seccomp_notif *r, int svfd, int peer)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t ulen, len = sizeof(ss);
    int rc = get_len(r, r->data.args[2], &ulen);

    if (rc < 0)
        return rc;
    if ((peer ? hvsim_getpeername : hvsim_getsockname)(svfd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    return write_addr(r, r->data.args[1], r->data.args[2], &ss, ulen, len);
}

static int do_sockopt(const struct seccomp_notif *r, int svfd, int set)
{
    unsigned char buf[256];
    int level = (int)r->data.args[1], name = (int)r->data.args[2], rc;
    socklen_t len;

    if (g_standin && level == g_standin)
        level = AF_VSOCK;
    if (set) {
        if (r->data.args[4] > sizeof(buf))
            return -EINVAL;
        len = (socklen_t)r->data.args[4];
        rc = mem_read(r, r->data.args[3], buf, len);
        if (rc < 0)
            return rc;
        return hvsim_setsockopt(svfd, level, name, buf, len) < 0 ? -errno : 0;
    }
    rc = get_len(r, r->data.args[4], &len);
    if (rc < 0)
        return rc;
    if (len > sizeof(buf))
        len = sizeof(buf);
    if (hvsim_getsockopt(svfd, level, name, buf, &len) < 0)
        return -errno;
    if (g_standin && level == SOL_SOCKET && name == SO_DOMAIN && len >= sizeof(int)) {
        int d = g_standin;

        memcpy(buf, &d, sizeof(d));
    }
    rc = mem_write(r, r->data.args[3], buf, len);
    return rc < 0 ? rc : mem_write(r, r->data.args[4], &len, sizeof(len));
}

static int do_connect(const struct seccomp_notif *r, int svfd)
{
    struct sockaddr_storage ss;
    struct stat before, after;
    int rc = read_addr(r, r->data.args[1], r->data.args[2], &ss);

    if (rc < 0)
        return rc;
    fstat(svfd, &before);
    if (fcntl(svfd, F_GETFL) & O_NONBLOCK) {
        rc = hvsim_connect(svfd, (struct sockaddr *)&ss, (socklen_t)r->data.args[2]) < 0 ? -errno : 0;
    } else {
        struct watch w;

        /* The library's waits fail with EINTR at the kick and leave the
         * socket unconnected, as vsock_connect() does. */
        watch_begin(&w, r);
        rc = hvsim_connect(svfd, (struct sockaddr *)&ss, (socklen_t)r->data.args[2]) < 0 ? -errno : 0;
        (void)watch_end(&w);
    }
    /* A vanished listener: the library put a fresh socket in the fd's place;
     * the program's fd must follow (replaced in place, as dup2 does). */
    if (fstat(svfd, &after) == 0 && after.st_ino != before.st_ino) {
        struct seccomp_notif_addfd a = { .id = r->id, .flags = SECCOMP_ADDFD_FLAG_SETFD, .srcfd = (uint32_t)svfd,
                                         .newfd = (uint32_t)r->data.args[0] };

        ent_rekey(svfd);
        (void)ioctl(g_nfd, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
    }
    return rc;
}

static void do_accept(const struct seccomp_notif *r, int svfd)
{
    int flags = r->data.nr == __NR_accept4 ? (int)r->data.args[3] : 0;
    struct sockaddr_storage ss = { 0 };
    socklen_t ulen = 0, len = sizeof(ss);
    uint64_t addr = r->data.args[1];
    int c, rc = 0;

    if (addr && (rc = get_len(r, r->data.args[2], &ulen)) < 0) {
        respond(r, 0, rc);
        return;
    }
    /* A blocking accept waits here, not in the library, so that a caller
     * interrupted by a signal (the kernel then drops the notification, and
     * a restart comes as a new one) never has a connection taken for it. */
    if (!(fcntl(svfd, F_GETFL) & O_NONBLOCK)) {
        struct pollfd p = { .fd = svfd, .events = POLLIN };
        struct watch w;
        int why;

        watch_begin(&w, r);
        while ((rc = poll(&p, 1, -1)) == 0 || (rc > 0 && !(p.revents & (POLLIN | POLLERR | POLLHUP))) ||
               (rc < 0 && errno == EINTR && atomic_load(&w.why) == W_WAITING))
            ;
        why = watch_end(&w);
        if (why == W_SIGNAL)
            respond(r, 0, -HVSIM_ERESTARTSYS);
        if (why != W_WAITING || !id_valid(r->id))
            return;
        rc = 0;
    }
    c = hvsim_accept4(svfd, (struct sockaddr *)&ss, &len, flags);
    if (c < 0) {
        respond(r, 0, -errno);
        return;
    }
    rc = ent_add(c);
    if (rc == 0)
        rc = write_addr(r, addr, r->data.args[2], &ss, ulen, len);
    if (rc == 0)
        rc = install(r, c, flags & SOCK_CLOEXEC);
    if (rc < 0) {
        struct stat st;

        /* The caller is gone (a signal) or its buffer is bad: the
         * connection is closed (left: hand it to the next accept). */
        if (fstat(c, &st) == 0)
            (void)ent_find(st.st_dev, st.st_ino, 1);
        hvsim_close(c);
        respond(r, 0, rc);
    }
}

/* close of a served socket: the supervisor's copy goes first, so that the
 * program's close is the last one and the peer sees the end, unless another
 * fd of the tree still has the socket. */
static void do_close(const struct seccomp_notif *r, int svfd)
{
    struct stat st;

    if (fstat(svfd, &st) == 0 && !still_open(r->pid, st.st_ino, (int)r->data.args[0])) {
        (void)ent_find(st.st_dev, st.st_ino, 1);
        hvsim_close(svfd);
    }
    pass(r);
}

/* dup and fcntl(F_DUPFD[_CLOEXEC], from): the copy at a served number. */
static void do_dup(const struct seccomp_notif *r, int svfd)
{
    int from = 0, cloexec = 0, n;

    if (r->data.nr == __NR_fcntl) {
        if ((int)r->data.args[2] < 0) {
            respond(r, 0, -EINVAL);
            return;
        }
        from = (int)r->data.args[2];
        cloexec = (int)r->data.args[1] == F_DUPFD_CLOEXEC;
    }
    n = install_from(r, svfd, cloexec, from);
    if (n < 0)
        respond(r, 0, n);
}

/* SIOCINQ and SIOCOUTQ, as the personality and kernel answer them. */
static int do_queue_ioctl(const struct seccomp_notif *r, int svfd)
{
    int v = 0;

    if (hvsim_ioctl(svfd, (unsigned long)(uint32_t)r->data.args[1], &v) < 0)
        return -errno;
    return mem_write(r, r->data.args[2], &v, sizeof(v));
}

static void serve_fd_call(const struct seccomp_notif *r)
{
    int vsock;
    int svfd = served_fd(r, &vsock), rc = 0;

    if (svfd < 0) {
        if (vsock)
            respond(r, 0, -EAFNOSUPPORT);
        else
            pass(r);
        return;
    }
    switch (r->data.nr) {
    case __NR_close:
        do_close(r, svfd);
        return;
    case __NR_dup:
    case __NR_fcntl:
        do_dup(r, svfd);
        return;
    case __NR_ioctl:
        rc = do_queue_ioctl(r, svfd);
        break;
    case __NR_bind: {
        struct sockaddr_storage ss;

        rc = read_addr(r, r->data.args[1], r->data.args[2], &ss);
        if (rc == 0 && hvsim_bind(svfd, (struct sockaddr *)&ss, (socklen_t)r->data.args[2]) < 0)
            rc = -errno;
        break;
    }
    case __NR_listen:
        rc = hvsim_listen(svfd, (int)r->data.args[1]) < 0 ? -errno : 0;
        break;
    case __NR_connect:
        rc = do_connect(r, svfd);
        break;
    case __NR_accept:
    case __NR_accept4:
        do_accept(r, svfd);
        return;
    case __NR_getsockname:
    case __NR_getpeername:
        rc = do_names(r, svfd, r->data.nr == __NR_getpeername);
        break;
    case __NR_getsockopt:
    case __NR_setsockopt:
        rc = do_sockopt(r, svfd, r->data.nr == __NR_setsockopt);
        break;
    case __NR_shutdown:
        rc = hvsim_shutdown(svfd, (int)r->data.args[1]) < 0 ? -errno : 0;
        break;
    default:
        rc = -ENOSYS;
    }
    respond(r, 0, rc);
}

static void serve(const struct seccomp_notif *r)
{
    if (r->data.nr < SV_NR_MAX)
        atomic_fetch_add(&g_count[r->data.nr], 1);
    if (r->data.nr == __NR_socket) {
        on_socket(r);
    } else if (r->data.nr == __NR_ioctl && (uint32_t)r->data.args[1] != IOCTL_VM_SOCKETS_GET_LOCAL_CID) {
        serve_fd_call(r); /* SIOCINQ, SIOCOUTQ: the filter lets no other through */
    } else if (r->data.nr == __NR_ioctl) {
        uint32_t cid;

        if (hvsim_get_local_cid(&cid) < 0)
            respond(r, 0, -errno);
        else
            respond(r, 0, mem_write(r, r->data.args[2], &cid, sizeof(cid)));
    } else {
        serve_fd_call(r);
    }
}

/* connect and accept may block: they run on workers, kept for the next such
 * call (a thread per call cost a third of a connection's time). A call is
 * handed to an idle worker, or a new one is started when none is idle, so a
 * blocking call never waits for another; a worker leaves when enough others
 * are idle. */
#define POOL_KEEP 4

struct job {
    struct seccomp_notif r;
    struct job *next;
};

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct job *q_head, *q_tail;
static int q_idle, q_pending;

static void *worker(void *arg)
{
    sigset_t fwd;

    (void)arg;
    /* The signals the launcher forwards to the program are the main
     * thread's: one landing here would fail the library's wait with EINTR. */
    sigemptyset(&fwd);
    sigaddset(&fwd, SIGINT);
    sigaddset(&fwd, SIGTERM);
    sigaddset(&fwd, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &fwd, NULL);
    pthread_mutex_lock(&q_lock);
    for (;;) {
        struct job *j;

        while (q_head == NULL) {
            if (q_idle >= POOL_KEEP) {
                pthread_mutex_unlock(&q_lock);
                return NULL;
            }
            q_idle++;
            pthread_cond_wait(&q_cond, &q_lock);
            q_idle--;
        }
        j = q_head;
        q_head = j->next;
        if (q_head == NULL)
            q_tail = NULL;
        q_pending--;
        pthread_mutex_unlock(&q_lock);
        serve(&j->r);
        free(j);
        pthread_mutex_lock(&q_lock);
    }
}

static void dispatch(const struct seccomp_notif *r)
{
    int nr = r->data.nr, spawn;
    struct job *j;
    pthread_attr_t at;
    pthread_t t;

    if (nr != __NR_connect && nr != __NR_accept && nr != __NR_accept4) {
        serve(r);
        return;
    }
    j = malloc(sizeof(*j));
    if (j == NULL) {
        respond(r, 0, -EAGAIN);
        return;
    }
    *j = (struct job){ .r = *r };
    pthread_mutex_lock(&q_lock);
    if (q_tail)
        q_tail->next = j;
    else
        q_head = j;
    q_tail = j;
    q_pending++;
    spawn = q_pending > q_idle;
    pthread_cond_signal(&q_cond);
    pthread_mutex_unlock(&q_lock);
    if (!spawn)
        return;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, worker, NULL) != 0) {
        /* No new worker: the call waits for a busy one to finish, unless
         * there is none at all, in which case it is refused. */
        pthread_mutex_lock(&q_lock);
        if (q_idle == 0 && q_pending == 1 && q_head == j) {
            q_head = q_tail = NULL;
            q_pending = 0;
            pthread_mutex_unlock(&q_lock);
            respond(&j->r, 0, -EAGAIN);
            free(j);
        } else {
            pthread_mutex_unlock(&q_lock);
        }
    }
    pthread_attr_destroy(&at);
}

/* ---- launching ------------------------------------------------------------------------ */

static int refuse(const char *fmt, const char *arg)
{
    fputs("hvsim-run: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return EXIT_LAUNCHER;
}

/* A tracer that watches seccomp events (strace --seccomp-bpf) would turn the
 * filter's answers into the tracer's: refuse to serve under one. */
static int traced(void)
{
    char line[128];
    FILE *f = fopen("/proc/self/status", "re");
    int pid = 0;

    if (f == NULL)
        return 1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "TracerPid: %d", &pid) == 1)
            break;
    fclose(f);
    return pid != 0;
}

/* An inherited kernel vsock socket would be out of the supervisor's reach. */
static int inherited_vsock(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int found = 0;

    if (d == NULL)
        return 1;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name), dom = 0;
        socklen_t l = sizeof(dom);

        if (e->d_name[0] != '.' && getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 &&
            (dom == AF_VSOCK || dom == HVSIM_FILTER_AF_HYPERV))
            found = 1;
    }
    closedir(d);
    return found;
}

static int send_fd(int sock, int fd, char c)
{
    char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
    struct iovec iov = { &c, 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);

    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &fd, sizeof(fd));
    return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock, char *cp)
{
    char c = 0, cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { &c, 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *h;
    int fd = -1;

    if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1)
        return -1;
    h = CMSG_FIRSTHDR(&m);
    if (h && h->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(h), sizeof(fd));
    *cp = c;
    return fd;
}

/* The filters on a supervised program, in the order they are installed.
 * inherited: installed by the launcher on itself before the fork (the
 * stand-in's errno wall), so the child has them already. */
struct filter_step {
    enum hvsim_filter_kind kind;
    int inherited;
};

static int program_filters(int standin, struct filter_step *s, struct hvsim_filter_args *a)
{
    *a = (struct hvsim_filter_args){
        .fam_a = standin ? (unsigned)standin : AF_VSOCK,
        .fam_b = standin ? (unsigned)standin : HVSIM_FILTER_AF_HYPERV,
        .standin = standin,
        .fd_floor = HVSIM_SV_FD_FLOOR,
    };
    s[0] = (struct filter_step){ HVSIM_FILTER_ABI, standin != 0 };
    if (!standin) {
        s[1] = (struct filter_step){ HVSIM_FILTER_GUARD, 0 };
        s[2] = (struct filter_step){ HVSIM_FILTER_NOTIFY, 0 };
        return 3;
    }
    /* With a stand-in, the guard covers the stand-in, so the tests run the
     * same stack of filters; 40 and 34 meet the errno filter first. */
    s[1] = (struct filter_step){ HVSIM_FILTER_ERRNO, 1 };
    s[2] = (struct filter_step){ HVSIM_FILTER_GUARD, 0 };
    s[3] = (struct filter_step){ HVSIM_FILTER_NOTIFY, 0 };
    return 4;
}

int hvsim_sv_export_filters(int standin, FILE *out)
{
    static const char *const name[] = { "other-abi", "errno", "guard", "notify" };
    const struct hvsim_filter_args wall = { .fam_a = AF_VSOCK, .fam_b = HVSIM_FILTER_AF_HYPERV };
    struct filter_step s[4];
    struct hvsim_filter_args a;
    int n = program_filters(standin, s, &a);

    for (int i = 0; i < n; i++) {
        int rc;

        fprintf(out, "filter %s\n", name[s[i].kind]);
        rc = hvsim_filter_export(s[i].kind, s[i].kind == HVSIM_FILTER_ERRNO ? &wall : &a, out);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* In the forked child: the filters, the listener to the parent, exec. */
__attribute__((noreturn)) static void child(char **argv, int sock)
{
    struct filter_step s[4];
    struct hvsim_filter_args a;
    int n = program_filters(g_standin, s, &a), nfd = -1, e;
    char why[256];

    for (int i = 0; i < n; i++)
        if (!s[i].inherited &&
            hvsim_filter_load(s[i].kind, &a, s[i].kind == HVSIM_FILTER_NOTIFY ? &nfd : NULL, why, sizeof(why)) != 0) {
            fprintf(stderr, "hvsim-run: %s\n", why);
            _exit(EXIT_LAUNCHER);
        }
    /* The byte says whether the filter waits killably (supervisor: signals). */
    if (nfd < 0 || send_fd(sock, nfd, (char)hvsim_filter_notify_killable()) != 0)
        _exit(EXIT_LAUNCHER);
    close(nfd);
    close(sock);
    execvp(argv[0], argv);
    e = errno;
    fprintf(stderr, "hvsim-run: cannot run %s: %s\n", argv[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}


static void forward(int sig)
{
    if (g_child > 0)
        kill(g_child, sig);
}

static void write_stats(const char *path)
{
    FILE *f = fopen(path, "we");

    if (f == NULL)
        return;
    for (int i = 0; i < SV_NR_MAX; i++)
        if (atomic_load(&g_count[i]))
            fprintf(f, "%d %lu\n", i, atomic_load(&g_count[i]));
    fclose(f);
}

static int serve_loop(int pidfd)
{
    struct pollfd p[2] = { { g_nfd, POLLIN, 0 }, { pidfd, POLLIN, 0 } };
    int status = -1;

    for (;;) {
        struct seccomp_notif r;

        if (poll(p, status < 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (status < 0 && (p[1].revents & POLLIN)) {
            int st;

            if (waitpid(g_child, &st, 0) == g_child) {
                status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                g_child_sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
            }
        }
        if (p[0].revents & POLLIN) {
            memset(&r, 0, sizeof(r));
            if (ioctl(g_nfd, SECCOMP_IOCTL_NOTIF_RECV, &r) == 0) {
                ordered();
                dispatch(&r);
            }
            continue;
        }
        if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))
            break; /* every filtered process is gone */
    }
    if (status < 0) {
        int st;

        if (waitpid(g_child, &st, 0) != g_child)
            status = EXIT_LAUNCHER;
        else if (WIFEXITED(st))
            status = WEXITSTATUS(st);
        else {
            status = 128 + WTERMSIG(st);
            g_child_sig = WTERMSIG(st);
        }
    }
    return status;
}

/* The program died of sig: so does its launcher, as an exec in place would
 * have, so a caller that looks at the signal (a shell's 128+N, Python's
 * -N, timeout(1)) sees the program's end. No core of the supervisor's own.
 * Returns only when the signal's default action is not to terminate. */
static void die_as_child(int sig)
{
    struct rlimit none = { 0, 0 };
    sigset_t one;

    (void)setrlimit(RLIMIT_CORE, &none);
    signal(sig, SIG_DFL);
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
}

int hvsim_supervise(char **argv, const struct hvsim_sv_opts *o)
{
    struct rlimit rl;
    struct sigaction kick = { .sa_handler = on_kick, .sa_flags = SA_RESTART };
    char why[256], killable = 0;
    int sp[2], pidfd;

    g_standin = o->standin;
    if (traced())
        return refuse("%s: refusing to serve under a tracer (TracerPid in /proc/self/status): a tracer of "
                      "seccomp events would let socket(AF_VSOCK) reach the kernel (--interpose runs dynamic "
                      "programs without the supervisor)",
                      "the supervisor");
    if (inherited_vsock())
        return refuse("%s: an inherited file descriptor is a kernel vsock socket; close it first",
                      "the supervisor");
    if (g_standin && hvsim_filter_install(why, sizeof(why)) != 0)
        return refuse("%s", why);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0)
        return refuse("socketpair: %s", strerror(errno));
    fflush(NULL);
    g_child = fork();
    if (g_child < 0)
        return refuse("fork: %s", strerror(errno));
    if (g_child == 0) {
        close(sp[0]);
        child(argv, sp[1]);
    }
    close(sp[1]);
    g_nfd = recv_fd(sp[0], &killable);
    g_killable = killable == 1;
    close(sp[0]);
    pidfd = (int)syscall(SYS_pidfd_open, g_child, 0);
    if (g_nfd < 0 || pidfd < 0) {
        int st;

        waitpid(g_child, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : EXIT_LAUNCHER;
    }
    /* The supervisor itself never reaches the kernel's vsock either. */
    if (!g_standin && hvsim_filter_install(why, sizeof(why)) != 0) {
        kill(g_child, SIGKILL);
        return refuse("%s", why);
    }
    signal(SIGINT, forward);
    signal(SIGTERM, forward);
    signal(SIGHUP, forward);
    signal(SIGPIPE, SIG_IGN);
    /* The kick reaches only a watched worker: blocked here, so every thread
     * started from now on has it blocked too. SA_RESTART: the library's
     * reads and writes go on; only a poll fails (it never restarts). */
    sigaction(SV_KICK, &kick, NULL);
    kick_mask(SIG_BLOCK);
    {
        int status = serve_loop(pidfd);

        if (o->stats)
            write_stats(o->stats);
        if (g_child_sig)
            die_as_child(g_child_sig);
        return status;
    }
}
