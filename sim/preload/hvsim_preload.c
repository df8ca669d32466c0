/* SPDX-License-Identifier: MIT */
/*
 * hvsim_preload.c: libhvsim-preload.so, the LD_PRELOAD interposer that runs
 * unmodified programs (socat, ncat, python3, your agent) on the simulator.
 *
 * It takes over the libc socket calls for two families, AF_VSOCK (40) and
 * AF_HYPERV (34), and hands them to libhvsim (linked into this object), so
 * the program gets libhvsim's personalities: a Linux guest's hv_sock in a VM,
 * KVM-style host vsock (VMs by CID) on the host, and Winsock's AF_HYPERV for
 * family 34. Every other family passes through to libc untouched.
 *
 * Fail closed. Nothing here ever passes family 34 or 40 to the kernel: when
 * the daemon cannot be reached, or a call is one the emulation does not
 * support, the call fails with an errno and one line on stderr that names the
 * cause. The seccomp filter of hvsim-run is the second wall, for what does
 * not come through here (raw syscalls, static binaries).
 *
 * Identity is the socket, not the fd number. libhvsim keeps its state in a
 * table indexed by fd, so each emulated socket has one private "anchor" fd
 * (close-on-exec, high numbered, never shown to the program) that libhvsim
 * knows, and every fd the program holds is a dup of it, found by inode
 * (st_dev, st_ino). The program may dup, dup2, fcntl(F_DUPFD), close the
 * original, fork: each of its fds still reaches the same emulated socket, and
 * the socket is released (libhvsim's close: unbind, drain) when the
 * process's last fd for it closes. read/write/poll/epoll need nothing: the
 * program's fd is the real stream.
 *
 * The interposer is thin: each wrapper maps one libc call to one libhvsim
 * call (hvsim_sendmsg for sendmsg, and so on), and the rules of the
 * personalities live in libhvsim. libhvsim's own libc calls (socket(AF_UNIX),
 * bind, send, close... on the anchors and its control connection) never
 * reach the wrappers here: init points the library's libc table at libc
 * (hvsim__libc_use_next) before anything else runs.
 */
#undef _FORTIFY_SOURCE /* this file defines open(), __open_2() and friends itself */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h> /* before linux/vm_sockets.h, which needs struct sockaddr (arm64's headers pull it in later) */
#include <linux/vm_sockets.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hvsim/hvsim.h"
#include "hvsim_adapter.h" /* hvsim__attach_error: why the daemon could not be reached, for messages */

#define EXPORT __attribute__((visibility("default")))
#define HASH_BUCKETS 256
#define ANCHOR_BASE 1024 /* anchors are the lowest free fds from here (or 3/4 of a small RLIMIT_NOFILE) */
#define HVSIM_TABLE_FDS (1024 * 1024) /* socket.c: CHUNK * NCHUNKS */
#define MSG_MAX 512

/* fortify's entry points, which glibc declares only under _FORTIFY_SOURCE */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

extern char **environ;

/* ---- the real functions ------------------------------------------------------------ */

#define REAL_FUNCS(X)                                                                                        \
    X(socket, int, (int, int, int))                                                                          \
    X(socketpair, int, (int, int, int, int *))                                                               \
    X(bind, int, (int, const struct sockaddr *, socklen_t))                                                  \
    X(connect, int, (int, const struct sockaddr *, socklen_t))                                               \
    X(listen, int, (int, int))                                                                               \
    X(accept, int, (int, struct sockaddr *, socklen_t *))                                                    \
    X(accept4, int, (int, struct sockaddr *, socklen_t *, int))                                              \
    X(getsockname, int, (int, struct sockaddr *, socklen_t *))                                               \
    X(getpeername, int, (int, struct sockaddr *, socklen_t *))                                               \
    X(getsockopt, int, (int, int, int, void *, socklen_t *))                                                 \
    X(setsockopt, int, (int, int, int, const void *, socklen_t))                                             \
    X(shutdown, int, (int, int))                                                                             \
    X(close, int, (int))                                                                                     \
    X(close_range, int, (unsigned, unsigned, int))                                                           \
    X(closefrom, void, (int))                                                                                \
    X(fclose, int, (FILE *))                                                                                 \
    X(fopen, FILE *, (const char *, const char *))                                                           \
    X(fopen64, FILE *, (const char *, const char *))                                                         \
    X(send, ssize_t, (int, const void *, size_t, int))                                                       \
    X(recv, ssize_t, (int, void *, size_t, int))                                                             \
    X(sendto, ssize_t, (int, const void *, size_t, int, const struct sockaddr *, socklen_t))                 \
    X(recvfrom, ssize_t, (int, void *, size_t, int, struct sockaddr *, socklen_t *))                         \
    X(sendmsg, ssize_t, (int, const struct msghdr *, int))                                                   \
    X(recvmsg, ssize_t, (int, struct msghdr *, int))                                                         \
    X(dup, int, (int))                                                                                       \
    X(dup2, int, (int, int))                                                                                 \
    X(dup3, int, (int, int, int))                                                                            \
    X(fcntl, int, (int, int, ...))                                                                           \
    X(fcntl64, int, (int, int, ...))                                                                         \
    X(ioctl, int, (int, unsigned long, ...))                                                                 \
    X(open, int, (const char *, int, ...))                                                                   \
    X(open64, int, (const char *, int, ...))                                                                 \
    X(openat, int, (int, const char *, int, ...))                                                            \
    X(openat64, int, (int, const char *, int, ...))                                                          \
    X(__open_2, int, (const char *, int))                                                                    \
    X(__open64_2, int, (const char *, int))                                                                  \
    X(__openat_2, int, (int, const char *, int))                                                             \
    X(__openat64_2, int, (int, const char *, int))                                                           \
    X(execve, int, (const char *, char *const[], char *const[]))                                             \
    X(execvpe, int, (const char *, char *const[], char *const[]))                                            \
    X(fexecve, int, (int, char *const[], char *const[]))                                                     \
    X(posix_spawn, int,                                                                                      \
      (pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *, char *const[], \
       char *const[]))                                                                                       \
    X(posix_spawnp, int,                                                                                     \
      (pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *, char *const[], \
       char *const[]))

static struct {
#define X(name, ret, args) ret(*name) args;
    REAL_FUNCS(X)
#undef X
} R;

/* ---- state ------------------------------------------------------------------------- */

enum kind { K_SOCK = 1, K_PLACEHOLDER = 2 /* an fd the program got for /dev/vsock */ };

/* One emulated socket (or /dev/vsock placeholder), shared by every fd of this
 * process that refers to it. */
struct ent {
    struct ent *next; /* hash chain */
    dev_t dev;
    ino_t ino;
    int kind;
    int domain; /* AF_VSOCK or AF_HYPERV */
    int anchor; /* the fd libhvsim knows; -1 for a placeholder */
    int nfds; /* the program's fds for it in this process */
    int shared; /* it existed at a fork(): another process may hold it too */
    pid_t creator;
    _Atomic int ref; /* the table's, plus one per call in progress */
};

#define FD_MAPPED 0x1u
#define FD_ANCHOR 0x2u

static struct {
    pthread_mutex_t lock;
    struct ent *hash[HASH_BUCKETS];
    struct ent **fdmap; /* program fd -> its socket */
    unsigned char *fdflag; /* FD_* */
    size_t fdcap;
    _Atomic int nents; /* 0: the process has no emulated socket, skip every lookup */
    pid_t owner; /* getpid() as of the last fork we saw; another value means vfork/clone */
    int anchor_base;
    int lib_ok; /* libhvsim's libc table points at libc (hvsim__libc_use_next) */
    dev_t vsock_rdev; /* /dev/vsock, if the machine has one */
    int have_vsock_dev;
    char *lib_path; /* this object, for LD_PRELOAD in the environment of execs */
    char *env_partition, *env_dir, *env_log;
} T = { .lock = PTHREAD_MUTEX_INITIALIZER };

static atomic_int ready;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* ---- messages ------------------------------------------------------------------------ */

static void log_line(const char *line, size_t n)
{
    int fd;

    if (T.env_log == NULL || *T.env_log == '\0')
        return;
    if (strcmp(T.env_log, "stderr") == 0) {
        (void)!write(2, line, n);
        return;
    }
    fd = R.open ? R.open(T.env_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
    if (fd >= 0) {
        (void)!write(fd, line, n);
        R.close(fd);
    }
}

/* One line on stderr (and in the log), written at once so lines of several
 * processes do not interleave. Keeps errno. */
__attribute__((format(printf, 1, 2))) static void complain(const char *fmt, ...)
{
    char buf[MSG_MAX];
    int saved = errno, n;
    va_list ap;

    n = snprintf(buf, sizeof(buf), "hvsim-preload[%d]: ", (int)getpid());
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    (void)!write(2, buf, (size_t)n);
    if (T.env_log && strcmp(T.env_log, "stderr") != 0)
        log_line(buf, (size_t)n);
    errno = saved;
}

/* A line for the log only (--log): what was emulated. */
__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...)
{
    char buf[MSG_MAX];
    int saved = errno, n;
    va_list ap;

    if (T.env_log == NULL)
        return;
    n = snprintf(buf, sizeof(buf), "hvsim-preload[%d]: ", (int)getpid());
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    log_line(buf, (size_t)n);
    errno = saved;
}

static const char *family_name(int domain)
{
    return domain == AF_VSOCK ? "AF_VSOCK" : domain == AF_HYPERV ? "AF_HYPERV" : "?";
}

/* ---- initialisation ------------------------------------------------------------------ */

static char *dup_env(const char *name)
{
    const char *v = getenv(name);

    return v ? strdup(v) : NULL;
}

static void atfork_prepare(void);
static void atfork_parent(void);
static void atfork_child(void);

static void init_slow(void)
{
    struct rlimit rl;
    struct stat st;
    Dl_info di;
    long lim;

#define X(name, ret, args) R.name = (ret(*) args)dlsym(RTLD_NEXT, #name);
    REAL_FUNCS(X)
#undef X
    /* Before any libhvsim call: the library reaches libc, never the wrappers. */
    T.lib_ok = hvsim__libc_use_next() == 0;
    if (dladdr((void *)&init_slow, &di) && di.dli_fname) {
        char abs[PATH_MAX];

        T.lib_path = realpath(di.dli_fname, abs) ? strdup(abs) : strdup(di.dli_fname);
    }
    T.env_partition = dup_env("HVSIM_PARTITION");
    T.env_dir = dup_env("HVSIM_DIR");
    T.env_log = dup_env("HVSIM_PRELOAD_LOG");
    lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur : 1024;
    if (lim > HVSIM_TABLE_FDS)
        lim = HVSIM_TABLE_FDS;
    /* Above the fds select() can watch and the small numbers programs dup2()
     * onto, but low enough that the fd map stays small. */
    T.anchor_base = (int)(lim >= 2 * ANCHOR_BASE ? ANCHOR_BASE : lim * 3 / 4);
    /* Under hvsim-run's default mode the supervisor's filter sends socket
     * calls on fds from its floor up to the supervisor: one round trip each,
     * which it only passes back for anchors. Anchors below that floor keep
     * this process's vsock calls in-process (a program with more emulated
     * sockets than fit below it stays correct, only slower). A scrubbed
     * environment loses this, never correctness. */
    {
        const char *f = getenv("HVSIM_SV_FD_FLOOR");
        char *end = NULL;
        long floor = f ? strtol(f, &end, 10) : 0;

        if (f && *end == '\0' && floor >= 64 && floor <= HVSIM_TABLE_FDS && T.anchor_base >= floor)
            T.anchor_base = (int)(floor * 2 / 3);
    }
    /* New emulated sockets become anchors: above the program's fds, close-on-exec. */
    hvsim__set_fd_floor(T.anchor_base);
    if (stat("/dev/vsock", &st) == 0 && S_ISCHR(st.st_mode)) {
        T.vsock_rdev = st.st_rdev;
        T.have_vsock_dev = 1;
    }
    T.owner = getpid();
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    atomic_store_explicit(&ready, 1, memory_order_release);
}

#define INIT()                                                           \
    do {                                                                 \
        if (!atomic_load_explicit(&ready, memory_order_acquire))         \
            pthread_once(&init_once, init_slow);                         \
    } while (0)

__attribute__((constructor)) static void preload_ctor(void)
{
    pthread_once(&init_once, init_slow);
}

#define NEED(name)                                                       \
    do {                                                                 \
        if (R.name == NULL) {                                            \
            complain("libc has no %s(); failing with ENOSYS", #name);    \
            errno = ENOSYS;                                              \
            return -1;                                                   \
        }                                                                \
    } while (0)

/* ---- the table ------------------------------------------------------------------------- */

static unsigned bucket(dev_t dev, ino_t ino)
{
    return (unsigned)((ino ^ (ino >> 17) ^ dev) % HASH_BUCKETS);
}

/* With T.lock held. */
static int fd_room(int fd)
{
    size_t want, n;

    if (fd < 0)
        return -1;
    if ((size_t)fd < T.fdcap)
        return 0;
    want = T.fdcap ? T.fdcap : 64;
    while (want <= (size_t)fd)
        want *= 2;
    {
        struct ent **m = realloc(T.fdmap, want * sizeof(*m));
        unsigned char *f;

        if (m == NULL)
            return -1;
        T.fdmap = m;
        f = realloc(T.fdflag, want);
        if (f == NULL)
            return -1;
        T.fdflag = f;
    }
    for (n = T.fdcap; n < want; n++) {
        T.fdmap[n] = NULL;
        T.fdflag[n] = 0;
    }
    T.fdcap = want;
    return 0;
}

static struct ent *find_locked(dev_t dev, ino_t ino)
{
    struct ent *e;

    for (e = T.hash[bucket(dev, ino)]; e; e = e->next)
        if (e->dev == dev && e->ino == ino)
            return e;
    return NULL;
}

static void unhash_locked(struct ent *e)
{
    struct ent **pp = &T.hash[bucket(e->dev, e->ino)];

    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    atomic_fetch_sub(&T.nents, 1);
}

static void ent_put(struct ent *e)
{
    if (e && atomic_fetch_sub(&e->ref, 1) == 1) {
        int saved = errno;

        free(e);
        errno = saved;
    }
}

/* With T.lock held: fd no longer refers to its socket. Returns the entry when
 * that was the process's last fd for it (unhashed; the caller releases it). */
static struct ent *unmap_locked(int fd)
{
    struct ent *e;

    if (fd < 0 || (size_t)fd >= T.fdcap || !(T.fdflag[fd] & FD_MAPPED))
        return NULL;
    e = T.fdmap[fd];
    T.fdmap[fd] = NULL;
    T.fdflag[fd] &= (unsigned char)~FD_MAPPED;
    if (e && --e->nfds == 0) {
        unhash_locked(e);
        return e;
    }
    return NULL;
}

/* With T.lock held. */
static int map_locked(int fd, struct ent *e)
{
    if (fd_room(fd) < 0)
        return -ENOMEM;
    T.fdmap[fd] = e;
    T.fdflag[fd] |= FD_MAPPED;
    e->nfds++;
    return 0;
}

static int is_anchor(int fd)
{
    int r;

    if (atomic_load(&T.nents) == 0 || fd < 0)
        return 0;
    pthread_mutex_lock(&T.lock);
    r = (size_t)fd < T.fdcap && (T.fdflag[fd] & FD_ANCHOR);
    pthread_mutex_unlock(&T.lock);
    return r;
}

/*
 * The process's last fd for a socket is gone: let libhvsim close it. A socket
 * another process may also hold (it was open at a fork) is not drained or
 * unbound, since the other holder still reads from it: only its listener's
 * creator unbinds it, as libhvsim owns listeners by creating process.
 */
static void release(struct ent *e)
{
    int saved = errno;

    if (e == NULL)
        return;
    if (e->kind == K_SOCK && e->anchor >= 0) {
        int a = e->anchor, full = 1;

        if (e->shared) {
            struct sockaddr_storage ss;
            socklen_t l = sizeof(ss);

            full = getpid() == e->creator && hvsim_getpeername(a, (struct sockaddr *)&ss, &l) != 0;
        }
        pthread_mutex_lock(&T.lock);
        if ((size_t)a < T.fdcap)
            T.fdflag[a] &= (unsigned char)~FD_ANCHOR;
        pthread_mutex_unlock(&T.lock);
        if (full)
            (void)hvsim_close(a);
        else
            (void)R.close(a);
    }
    ent_put(e);
    errno = saved;
}

/*
 * The emulated socket (or placeholder) behind a program fd, with a reference
 * the caller drops with ent_put(); NULL when fd is none of ours. The fd's
 * inode decides, so a dup made behind our back (a raw syscall, SCM_RIGHTS)
 * is found too, and a number whose socket was closed behind our back (fclose
 * of an fdopen()ed socket, say) is noticed and let go.
 */
static struct ent *ent_get(int fd, int want_kind)
{
    struct stat st;
    struct ent *e, *gone = NULL;
    int ok;

    if (fd < 0 || atomic_load_explicit(&T.nents, memory_order_acquire) == 0)
        return NULL;
    ok = fstat(fd, &st) == 0;
    pthread_mutex_lock(&T.lock);
    e = (size_t)fd < T.fdcap && (T.fdflag[fd] & FD_MAPPED) ? T.fdmap[fd] : NULL;
    if (e && (!ok || e->dev != st.st_dev || e->ino != st.st_ino)) {
        gone = unmap_locked(fd);
        e = NULL;
    }
    if (e == NULL && ok && !((size_t)fd < T.fdcap && (T.fdflag[fd] & FD_ANCHOR))) {
        e = find_locked(st.st_dev, st.st_ino);
        if (e && map_locked(fd, e) < 0)
            e = NULL;
    }
    if (e && want_kind && e->kind != want_kind)
        e = NULL;
    if (e)
        atomic_fetch_add(&e->ref, 1);
    pthread_mutex_unlock(&T.lock);
    release(gone);
    return e;
}

/*
 * The emulated socket behind fd for a data call (send/recv family), as
 * ent_get but without its fstat when fd is mapped: that fstat was a tenth of
 * a 64 KiB send's cost. A mapping goes stale only when the program closed
 * the number past the interposer (a raw close system call) and the number
 * came back. A stale mapping would send and receive on the old socket with
 * its rules (its peer, its shutdown state), so every call the interposer
 * sees hand out a number drops what the number meant before (fd_fresh):
 * socket, socketpair, accept, dup, F_DUPFD and SCM_RIGHTS in recvmsg. The
 * calls that change a socket (bind, connect, listen, close, options, names)
 * still check the inode. An unmapped fd takes ent_get's path, which finds a
 * copy made behind our back by its inode.
 */
static struct ent *ent_get_data(int fd)
{
    struct ent *e = NULL;
    int mapped = 0;

    if (fd < 0 || atomic_load_explicit(&T.nents, memory_order_acquire) == 0)
        return NULL;
    pthread_mutex_lock(&T.lock);
    if ((size_t)fd < T.fdcap && (T.fdflag[fd] & FD_MAPPED)) {
        mapped = 1;
        e = T.fdmap[fd];
        if (e && e->kind == K_SOCK)
            atomic_fetch_add(&e->ref, 1);
        else
            e = NULL;
    }
    pthread_mutex_unlock(&T.lock);
    return mapped ? e : ent_get(fd, K_SOCK);
}

static int foreign_process(void);

/* A call the interposer passed to libc gave the program fd: whatever the
 * number was mapped to was closed behind our back. */
static void fd_fresh(int fd)
{
    struct ent *gone;

    if (fd < 0 || atomic_load_explicit(&T.nents, memory_order_acquire) == 0 || foreign_process())
        return;
    pthread_mutex_lock(&T.lock);
    gone = unmap_locked(fd);
    pthread_mutex_unlock(&T.lock);
    release(gone);
}

/* The descriptors an SCM_RIGHTS message gave the program are fresh numbers. */
static void fds_fresh_in(const struct msghdr *m)
{
    struct cmsghdr *h;

    if (m == NULL || m->msg_control == NULL || atomic_load_explicit(&T.nents, memory_order_acquire) == 0)
        return;
    for (h = CMSG_FIRSTHDR((struct msghdr *)m); h; h = CMSG_NXTHDR((struct msghdr *)m, h)) {
        size_t n;

        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS || h->cmsg_len < CMSG_LEN(0))
            continue;
        n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        /* Never past the caller's buffer, whatever cmsg_len says. */
        if ((const char *)CMSG_DATA(h) + n * sizeof(int) > (const char *)m->msg_control + m->msg_controllen)
            break;
        for (size_t i = 0; i < n; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(fd));
            fd_fresh(fd);
        }
    }
}

/* A new socket or placeholder whose first program fd is fd. */
static int ent_add(int fd, int kind, int domain, int anchor)
{
    struct stat st;
    struct ent *e, *gone;
    int rc;

    if (fstat(anchor >= 0 ? anchor : fd, &st) < 0)
        return -errno;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->kind = kind;
    e->domain = domain;
    e->anchor = anchor;
    e->creator = getpid();
    atomic_store(&e->ref, 1);
    pthread_mutex_lock(&T.lock);
    /* fd may still be mapped to a socket the program closed behind our back */
    gone = unmap_locked(fd);
    rc = map_locked(fd, e);
    if (rc == 0 && anchor >= 0) {
        rc = fd_room(anchor) < 0 ? -ENOMEM : 0;
        if (rc == 0)
            T.fdflag[anchor] |= FD_ANCHOR;
    }
    if (rc == 0) {
        unsigned b = bucket(e->dev, e->ino);

        e->next = T.hash[b];
        T.hash[b] = e;
        atomic_fetch_add(&T.nents, 1);
    } else {
        T.fdmap[fd] = NULL;
        T.fdflag[fd] &= (unsigned char)~FD_MAPPED;
    }
    pthread_mutex_unlock(&T.lock);
    release(gone);
    if (rc < 0)
        free(e);
    return rc;
}

/* fd (a program fd) now also refers to what e is. */
static void ent_alias(int fd, struct ent *e)
{
    struct ent *gone;

    pthread_mutex_lock(&T.lock);
    gone = unmap_locked(fd);
    if (e)
        (void)map_locked(fd, e);
    pthread_mutex_unlock(&T.lock);
    release(gone);
}

/* fd was closed (or replaced) by the program. */
static void ent_forget(int fd)
{
    struct ent *gone;

    if (atomic_load_explicit(&T.nents, memory_order_acquire) == 0)
        return;
    pthread_mutex_lock(&T.lock);
    gone = unmap_locked(fd);
    pthread_mutex_unlock(&T.lock);
    release(gone);
}

/* A vfork() child shares our memory with its parent; posix_spawn and raw
 * clone() children skip the atfork handlers. Such a process must leave the
 * table alone: it runs the plain libc calls. */
static int foreign_process(void)
{
    return getpid() != T.owner;
}

static void atfork_prepare(void)
{
    int b;

    pthread_mutex_lock(&T.lock);
    for (b = 0; b < HASH_BUCKETS; b++) {
        struct ent *e;

        for (e = T.hash[b]; e; e = e->next)
            e->shared = 1;
    }
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&T.lock);
}

static void atfork_child(void)
{
    pthread_mutex_init(&T.lock, NULL);
    T.owner = getpid();
}

/* ---- socket, socketpair ---------------------------------------------------------------- */

static int emulated_family(int domain)
{
    return domain == AF_VSOCK || domain == AF_HYPERV;
}

static int emu_socket(int domain, int type, int protocol)
{
    int a, p, err, rc;
    char name[HVSIM_NAME_MAX] = "?";

    if (foreign_process()) {
        complain("socket(%s) in a vfork()/clone() child, which shares the parent's memory: not emulated; "
                 "failing with EAFNOSUPPORT",
                 family_name(domain));
        errno = EAFNOSUPPORT;
        return -1;
    }
    if (!T.lib_ok) {
        /* libhvsim would reach these wrappers instead of libc: refuse. */
        complain("socket(%s): libc lacks a call libhvsim needs; failing with ENETDOWN", family_name(domain));
        errno = ENETDOWN;
        return -1;
    }
    a = hvsim_socket(domain, type, protocol);
    err = errno;
    if (a < 0) {
        if (err == ENETDOWN)
            complain("socket(%s): %s; failing with ENETDOWN (the machine's own vsock is never used)",
                     family_name(domain), hvsim__attach_error());
        else if (err == ESOCKTNOSUPPORT || err == EPROTONOSUPPORT || err == EPROTOTYPE || err == ENODEV ||
                 err == EAFNOSUPPORT)
            complain("socket(%s, type %d, protocol %d): not supported by the emulated transport: %s (%s)",
                     family_name(domain), type, protocol, strerror(err), hvsim_err_name(err));
        else
            complain("socket(%s): %s (%s)", family_name(domain), strerror(err), hvsim_err_name(err));
        errno = err;
        return -1;
    }
    p = R.fcntl(a, (type & SOCK_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
    if (p < 0) {
        err = errno;
        hvsim_close(a);
        errno = err;
        return -1;
    }
    rc = ent_add(p, K_SOCK, domain, a);
    if (rc < 0) {
        R.close(p);
        hvsim_close(a);
        complain("socket(%s): cannot track the new socket: %s", family_name(domain), strerror(-rc));
        errno = -rc;
        return -1;
    }
    (void)hvsim_self(NULL, name, sizeof(name));
    note("socket(%s) -> fd %d (emulated by hvsim, partition %s)", family_name(domain), p, name);
    return p;
}

EXPORT int socket(int domain, int type, int protocol)
{
    INIT();
    NEED(socket);
    if (!emulated_family(domain)) {
        int r = R.socket(domain, type, protocol);

        fd_fresh(r);
        return r;
    }
    return emu_socket(domain, type, protocol);
}

EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
    INIT();
    NEED(socketpair);
    if (emulated_family(domain)) {
        /* vsock has no socketpair (sock_no_socketpair), nor has Winsock. */
        complain("socketpair(%s): vsock and Hyper-V sockets have no socket pairs; failing with EOPNOTSUPP",
                 family_name(domain));
        errno = EOPNOTSUPP;
        return -1;
    }
    if (R.socketpair(domain, type, protocol, sv) < 0)
        return -1;
    fd_fresh(sv[0]);
    fd_fresh(sv[1]);
    return 0;
}

/* ---- calls on an emulated socket --------------------------------------------------------- */

/* The body of a call that takes the program's fd first: pass through unless
 * fd is an emulated socket (found by GET: ent_get_data for the data calls,
 * else the inode check), else run EMU with `a` the anchor and `e` the
 * socket, keeping errno across the reference drop. */
#define ON_SOCKET(fd, passthrough, EMU) ON_SOCKET_BY(ent_get((fd), K_SOCK), passthrough, EMU)
#define ON_DATA(fd, passthrough, EMU) ON_SOCKET_BY(ent_get_data(fd), passthrough, EMU)
#define ON_SOCKET_BY(GET, passthrough, EMU)                              \
    do {                                                                 \
        struct ent *e;                                                   \
        INIT();                                                          \
        if ((e = (GET)) == NULL)                                         \
            return passthrough;                                          \
        {                                                                \
            int a = e->anchor;                                           \
            __typeof__(passthrough) r_;                                  \
            int saved_;                                                  \
            (void)a;                                                     \
            r_ = (EMU);                                                  \
            saved_ = errno;                                              \
            ent_put(e);                                                  \
            errno = saved_;                                              \
            return r_;                                                   \
        }                                                                \
    } while (0)

EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    ON_SOCKET(fd, R.bind(fd, addr, len), hvsim_bind(a, addr, len));
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    ON_SOCKET(fd, R.connect(fd, addr, len), hvsim_connect(a, addr, len));
}

EXPORT int listen(int fd, int backlog)
{
    ON_SOCKET(fd, R.listen(fd, backlog), hvsim_listen(a, backlog));
}

EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    ON_SOCKET(fd, R.getsockname(fd, addr, len), hvsim_getsockname(a, addr, len));
}

EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    ON_SOCKET(fd, R.getpeername(fd, addr, len), hvsim_getpeername(a, addr, len));
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    ON_SOCKET(fd, R.getsockopt(fd, level, name, val, len), hvsim_getsockopt(a, level, name, val, len));
}

EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    ON_SOCKET(fd, R.setsockopt(fd, level, name, val, len), hvsim_setsockopt(a, level, name, val, len));
}

EXPORT int shutdown(int fd, int how)
{
    ON_SOCKET(fd, R.shutdown(fd, how), hvsim_shutdown(a, how));
}

EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    ON_DATA(fd, R.send(fd, buf, len, flags), hvsim_send(a, buf, len, flags));
}

EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    ON_DATA(fd, R.recv(fd, buf, len, flags), hvsim_recv(a, buf, len, flags & ~MSG_CMSG_CLOEXEC));
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
{
    ON_DATA(fd, R.sendto(fd, buf, len, flags, to, tolen), hvsim_sendto(a, buf, len, flags, to, tolen));
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen)
{
    ON_DATA(fd, R.recvfrom(fd, buf, len, flags, from, fromlen), hvsim_recvfrom(a, buf, len, flags, from, fromlen));
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
    ON_DATA(fd, R.sendmsg(fd, m, flags), hvsim_sendmsg(a, m, flags));
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
    struct ent *e;
    ssize_t r;
    int saved;

    INIT();
    if ((e = ent_get_data(fd)) == NULL) {
        r = R.recvmsg(fd, m, flags);
        if (r >= 0)
            fds_fresh_in(m);
        return r;
    }
    r = hvsim_recvmsg(e->anchor, m, flags);
    saved = errno;
    if (r >= 0)
        fds_fresh_in(m);
    ent_put(e);
    errno = saved;
    return r;
}

/* ---- accept -------------------------------------------------------------------------- */

static int emu_accept(const struct ent *l, int a, struct sockaddr *addr, socklen_t *len, int flags)
{
    int c, p, err, rc;

    if (foreign_process()) {
        complain("accept on an emulated socket in a vfork()/clone() child: not emulated; failing with EOPNOTSUPP");
        errno = EOPNOTSUPP;
        return -1;
    }
    c = hvsim_accept4(a, addr, len, flags);
    err = errno;
    if (c < 0) {
        errno = err;
        return -1;
    }
    p = R.fcntl(c, (flags & SOCK_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
    if (p < 0) {
        err = errno;
        hvsim_close(c);
        errno = err;
        return -1;
    }
    rc = ent_add(p, K_SOCK, l->domain, c);
    if (rc < 0) {
        R.close(p);
        hvsim_close(c);
        complain("accept: cannot track the new connection: %s", strerror(-rc));
        errno = -rc;
        return -1;
    }
    return p;
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    struct ent *e;

    INIT();
    NEED(accept4);
    if ((e = ent_get(fd, K_SOCK)) == NULL) {
        int r = R.accept4(fd, addr, len, flags);

        fd_fresh(r);
        return r;
    }
    {
        int r = emu_accept(e, e->anchor, addr, len, flags), saved = errno;

        ent_put(e);
        errno = saved;
        return r;
    }
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    struct ent *e;

    INIT();
    NEED(accept);
    if ((e = ent_get(fd, K_SOCK)) == NULL) {
        int r = R.accept(fd, addr, len);

        fd_fresh(r);
        return r;
    }
    {
        int r = emu_accept(e, e->anchor, addr, len, 0), saved = errno;

        ent_put(e);
        errno = saved;
        return r;
    }
}

/* ---- close, dup ------------------------------------------------------------------------ */

EXPORT int close(int fd)
{
    int r;

    INIT();
    NEED(close);
    if (atomic_load_explicit(&T.nents, memory_order_acquire) == 0 || foreign_process())
        return R.close(fd);
    /* A number the program never had (it walks /proc/self/fd, say): an
     * anchor stays, and the program sees its close succeed. */
    if (is_anchor(fd))
        return 0;
    r = R.close(fd);
    ent_forget(fd);
    return r;
}

EXPORT int fclose(FILE *f)
{
    int fd, r;

    INIT();
    NEED(fclose);
    if (f == NULL || atomic_load_explicit(&T.nents, memory_order_acquire) == 0 || foreign_process())
        return R.fclose(f);
    /* fclose() closes through libc's internal close, past close() above. */
    fd = fileno(f);
    r = R.fclose(f);
    if (fd >= 0)
        ent_forget(fd);
    return r;
}

/*
 * close_range/closefrom: the program's fds in the range are closed and let
 * go; anchors in it are skipped (the program never had them), by closing the
 * gaps between them.
 */
static int close_gaps(unsigned first, unsigned last, int flags)
{
    unsigned lo = first;
    size_t fd;
    int r = 0;

    if (flags & CLOSE_RANGE_CLOEXEC) /* harmless on anchors, which have it */
        return (int)syscall(SYS_close_range, first, last, flags);
    pthread_mutex_lock(&T.lock);
    for (fd = first; fd < T.fdcap && fd <= last; fd++) {
        if (T.fdflag[fd] & FD_ANCHOR) {
            if (fd > lo)
                r |= (int)syscall(SYS_close_range, lo, (unsigned)fd - 1, flags);
            lo = (unsigned)fd + 1;
        }
    }
    pthread_mutex_unlock(&T.lock);
    if (lo <= last && lo >= first)
        r |= (int)syscall(SYS_close_range, lo, last, flags);
    return r < 0 ? -1 : 0;
}

static int emu_close_range(unsigned first, unsigned last, int flags)
{
    struct ent **gone = NULL;
    size_t ngone = 0, cap = 0, fd, i;
    int r;

    r = close_gaps(first, last, flags);
    if (r < 0 || (flags & CLOSE_RANGE_CLOEXEC))
        return r;
    pthread_mutex_lock(&T.lock);
    for (fd = first; fd < T.fdcap && fd <= last; fd++) {
        struct ent *e;

        if (!(T.fdflag[fd] & FD_MAPPED) || (e = unmap_locked((int)fd)) == NULL)
            continue;
        if (ngone == cap) {
            struct ent **g = realloc(gone, (cap ? cap * 2 : 8) * sizeof(*g));

            if (g == NULL)
                continue; /* the socket stays open until the process ends */
            gone = g;
            cap = cap ? cap * 2 : 8;
        }
        gone[ngone++] = e;
    }
    pthread_mutex_unlock(&T.lock);
    for (i = 0; i < ngone; i++)
        release(gone[i]);
    free(gone);
    return 0;
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    INIT();
    if (atomic_load_explicit(&T.nents, memory_order_acquire) == 0 || foreign_process()) {
        NEED(close_range);
        return R.close_range(first, last, flags);
    }
    if (first > last) {
        errno = EINVAL;
        return -1;
    }
    return emu_close_range(first, last, flags);
}

EXPORT void closefrom(int lowfd)
{
    INIT();
    if (atomic_load_explicit(&T.nents, memory_order_acquire) == 0 || foreign_process()) {
        if (R.closefrom)
            R.closefrom(lowfd);
        return;
    }
    (void)emu_close_range(lowfd < 0 ? 0u : (unsigned)lowfd, ~0u, 0);
}

/* newfd of dup2/dup3 is an anchor: the program asks for a number it cannot
 * know is taken. Refuse rather than lose the socket. */
static int anchor_target(int newfd, const char *call)
{
    if (!is_anchor(newfd))
        return 0;
    complain("%s onto fd %d, which the interposer holds for an emulated socket; failing with EBUSY", call, newfd);
    errno = EBUSY;
    return 1;
}

EXPORT int dup(int fd)
{
    struct ent *e;
    int r;

    INIT();
    NEED(dup);
    if (foreign_process())
        return R.dup(fd);
    if ((e = ent_get(fd, 0)) == NULL) {
        r = R.dup(fd);
        fd_fresh(r);
        return r;
    }
    r = R.dup(fd);
    if (r >= 0)
        ent_alias(r, e);
    ent_put(e);
    return r;
}

static int emu_dup23(int oldfd, int newfd, int flags, int three)
{
    struct ent *e;
    int r, saved;

    if (anchor_target(newfd, three ? "dup3" : "dup2"))
        return -1;
    e = ent_get(oldfd, 0);
    r = three ? R.dup3(oldfd, newfd, flags) : R.dup2(oldfd, newfd);
    saved = errno;
    if (r >= 0 && oldfd != newfd)
        ent_alias(newfd, e); /* also lets go of what newfd was */
    ent_put(e);
    errno = saved;
    return r;
}

EXPORT int dup2(int oldfd, int newfd)
{
    INIT();
    NEED(dup2);
    if (atomic_load_explicit(&T.nents, memory_order_acquire) == 0 || foreign_process())
        return R.dup2(oldfd, newfd);
    return emu_dup23(oldfd, newfd, 0, 0);
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
    INIT();
    NEED(dup3);
    if (atomic_load_explicit(&T.nents, memory_order_acquire) == 0 || foreign_process())
        return R.dup3(oldfd, newfd, flags);
    return emu_dup23(oldfd, newfd, flags, 1);
}

/* fcntl's third argument is read as glibc does: one pointer-sized word. */
static int emu_fcntl(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
    struct ent *e;
    int r;

    if ((cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC) || foreign_process())
        return real(fd, cmd, arg);
    if ((e = ent_get(fd, 0)) == NULL) {
        r = real(fd, cmd, arg);
        fd_fresh(r);
        return r;
    }
    r = real(fd, cmd, arg);
    if (r >= 0)
        ent_alias(r, e);
    ent_put(e);
    return r;
}

EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    void *arg;

    va_start(ap, cmd);
    arg = va_arg(ap, void *);
    va_end(ap);
    INIT();
    NEED(fcntl);
    return emu_fcntl(R.fcntl, fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    void *arg;

    va_start(ap, cmd);
    arg = va_arg(ap, void *);
    va_end(ap);
    INIT();
    NEED(fcntl64);
    return emu_fcntl(R.fcntl64, fd, cmd, arg);
}

/* ---- /dev/vsock ------------------------------------------------------------------------ */

static int is_dev_vsock(int dirfd, const char *path)
{
    struct stat st;

    if (path == NULL || strstr(path, "vsock") == NULL)
        return 0;
    if (strcmp(path, "/dev/vsock") == 0)
        return 1;
    return T.have_vsock_dev && fstatat(dirfd, path, &st, 0) == 0 && S_ISCHR(st.st_mode) &&
           st.st_rdev == T.vsock_rdev;
}

/*
 * /dev/vsock is only ever asked IOCTL_VM_SOCKETS_GET_LOCAL_CID (socat logs
 * the CID). The program gets an empty memfd in its place, and the ioctl is
 * answered from libhvsim; the machine's device is never opened.
 */
static int open_placeholder(int flags)
{
    int fd = (int)syscall(SYS_memfd_create, "hvsim-dev-vsock", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
    int rc;

    if (fd < 0)
        fd = R.open("/dev/null", O_RDONLY | (flags & O_CLOEXEC));
    if (fd < 0)
        return -1;
    rc = ent_add(fd, K_PLACEHOLDER, AF_VSOCK, -1);
    if (rc < 0) {
        R.close(fd);
        complain("open(/dev/vsock): cannot track the placeholder: %s", strerror(-rc));
        errno = -rc;
        return -1;
    }
    note("open(/dev/vsock) -> fd %d (a placeholder; IOCTL_VM_SOCKETS_GET_LOCAL_CID answered by hvsim)", fd);
    return fd;
}

static int open_needs_mode(int flags)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

#define OPEN_WRAPPER(name, dirarg, dirval, ...)                                  \
    EXPORT int name(__VA_ARGS__)                                                 \
    {                                                                            \
        int mode = 0;                                                            \
        if (open_needs_mode(flags)) {                                            \
            va_list ap;                                                          \
            va_start(ap, flags);                                                 \
            mode = va_arg(ap, int);                                              \
            va_end(ap);                                                          \
        }                                                                        \
        INIT();                                                                  \
        NEED(name);                                                              \
        if (is_dev_vsock(dirval, path) && !foreign_process())                    \
            return open_placeholder(flags);                                      \
        return R.name(dirarg path, flags, mode);                                 \
    }

#define NO_DIR
#define COMMA ,
OPEN_WRAPPER(open, NO_DIR, AT_FDCWD, const char *path, int flags, ...)
OPEN_WRAPPER(open64, NO_DIR, AT_FDCWD, const char *path, int flags, ...)
OPEN_WRAPPER(openat, dirfd COMMA, dirfd, int dirfd, const char *path, int flags, ...)
OPEN_WRAPPER(openat64, dirfd COMMA, dirfd, int dirfd, const char *path, int flags, ...)

#define FORTIFY_WRAPPER(name, dirarg, dirval, ...)                               \
    EXPORT int name(__VA_ARGS__)                                                 \
    {                                                                            \
        INIT();                                                                  \
        NEED(name);                                                              \
        if (is_dev_vsock(dirval, path) && !foreign_process())                    \
            return open_placeholder(flags);                                      \
        return R.name(dirarg path, flags);                                       \
    }

FORTIFY_WRAPPER(__open_2, NO_DIR, AT_FDCWD, const char *path, int flags)
FORTIFY_WRAPPER(__open64_2, NO_DIR, AT_FDCWD, const char *path, int flags)
FORTIFY_WRAPPER(__openat_2, dirfd COMMA, dirfd, int dirfd, const char *path, int flags)
FORTIFY_WRAPPER(__openat64_2, dirfd COMMA, dirfd, int dirfd, const char *path, int flags)

/* stdio opens past open(): the same placeholder, as a FILE. */
static FILE *emu_fopen(FILE *(*real)(const char *, const char *), const char *path, const char *mode)
{
    FILE *f;
    int fd;

    if (real == NULL) {
        errno = ENOSYS;
        return NULL;
    }
    if (!is_dev_vsock(AT_FDCWD, path) || foreign_process())
        return real(path, mode);
    fd = open_placeholder(strchr(mode, 'e') ? O_CLOEXEC : 0);
    if (fd < 0)
        return NULL;
    f = fdopen(fd, mode);
    if (f == NULL) {
        int err = errno;

        R.close(fd);
        ent_forget(fd);
        errno = err;
    }
    return f;
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
    INIT();
    return emu_fopen(R.fopen, path, mode);
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
    INIT();
    return emu_fopen(R.fopen64, path, mode);
}

/* SIOCINQ, SIOCOUTQ: the transport's and kernel's answer (hvsim_ioctl). */
static int queue_ioctl(int fd, unsigned long req, void *arg)
{
    ON_SOCKET(fd, R.ioctl(fd, req, arg), hvsim_ioctl(a, req, arg));
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
    struct ent *e;
    va_list ap;
    void *arg;

    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);
    INIT();
    NEED(ioctl);
    if (req == SIOCINQ || req == SIOCOUTQ)
        return queue_ioctl(fd, req, arg);
    if (req != IOCTL_VM_SOCKETS_GET_LOCAL_CID)
        return R.ioctl(fd, req, arg);
    if ((e = ent_get(fd, K_PLACEHOLDER)) == NULL) {
        /* Not the /dev/vsock this process opened: the kernel would say EBADF
         * or ENOTTY, and never gets the chance to answer with the machine's
         * CID (the filter would refuse it with EPERM). */
        errno = R.fcntl(fd, F_GETFD) < 0 ? EBADF : ENOTTY;
        return -1;
    }
    ent_put(e);
    {
        uint32_t cid;

        if (hvsim_get_local_cid(&cid) < 0) {
            int err = errno;

            complain("ioctl(IOCTL_VM_SOCKETS_GET_LOCAL_CID): %s; failing with %s",
                     err == ENETDOWN ? hvsim__attach_error() : strerror(err), hvsim_err_name(err));
            errno = err;
            return -1;
        }
        if (arg == NULL) {
            errno = EFAULT;
            return -1;
        }
        memcpy(arg, &cid, sizeof(cid));
        return 0;
    }
}

/* ---- exec: keep the partition's environment --------------------------------------------- */

/*
 * A program that builds its children's environment (env -i, a service
 * manager's scrub, execve(..., {})) would otherwise start them outside the
 * partition, where the inherited seccomp filter makes their vsock calls fail.
 * Each exec and posix_spawn gets LD_PRELOAD (with this object) and HVSIM_*
 * back when the given environment lacks them; values the program set itself
 * are kept. The new array lives in mmap()ed memory, as the call may run in a
 * vfork() child where malloc is not safe.
 */
static int env_has(char *const envp[], const char *name, const char **value)
{
    size_t n = strlen(name), i;

    for (i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=') {
            *value = envp[i] + n + 1;
            return 1;
        }
    return 0;
}

static char *const *fix_env(char *const envp[])
{
    const char *v = NULL;
    const char *want_dir = T.env_dir, *want_part = T.env_partition, *want_log = T.env_log;
    int need_pre = 0, need_dir = 0, need_part = 0, need_log = 0;
    size_t n = 0, i, bytes;
    char **out, *p;
    void *mem;

    if (T.lib_path == NULL)
        return envp;
    if (!env_has(envp, "LD_PRELOAD", &v) || strstr(v, T.lib_path) == NULL)
        need_pre = 1;
    need_dir = want_dir && !env_has(envp, "HVSIM_DIR", &v);
    need_part = want_part && !env_has(envp, "HVSIM_PARTITION", &v);
    need_log = want_log && !env_has(envp, "HVSIM_PRELOAD_LOG", &v);
    if (!need_pre && !need_dir && !need_part && !need_log)
        return envp;
    while (envp && envp[n])
        n++;
    bytes = (n + 5) * sizeof(char *) + strlen(T.lib_path) + 32 + (want_dir ? strlen(want_dir) : 0) +
            (want_part ? strlen(want_part) : 0) + (want_log ? strlen(want_log) : 0) + 64;
    if (need_pre && env_has(envp, "LD_PRELOAD", &v))
        bytes += strlen(v) + 2;
    mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return envp;
    out = mem;
    p = (char *)(out + n + 5);
    for (i = 0; i < n; i++)
        out[i] = envp[i];
    if (need_pre) {
        const char *old = NULL;
        size_t k;

        if (env_has(envp, "LD_PRELOAD", &old)) {
            for (k = 0; k < n; k++)
                if (strncmp(envp[k], "LD_PRELOAD=", 11) == 0)
                    break;
            out[k] = p;
            p += sprintf(p, "LD_PRELOAD=%s%s%s", T.lib_path, *old ? ":" : "", old) + 1;
        } else {
            out[n++] = p;
            p += sprintf(p, "LD_PRELOAD=%s", T.lib_path) + 1;
        }
    }
    if (need_dir) {
        out[n++] = p;
        p += sprintf(p, "HVSIM_DIR=%s", want_dir) + 1;
    }
    if (need_part) {
        out[n++] = p;
        p += sprintf(p, "HVSIM_PARTITION=%s", want_part) + 1;
    }
    if (need_log) {
        out[n++] = p;
        p += sprintf(p, "HVSIM_PRELOAD_LOG=%s", want_log) + 1;
    }
    out[n] = NULL;
    return out;
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    INIT();
    NEED(execve);
    return R.execve(path, argv, fix_env(envp));
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    INIT();
    NEED(execvpe);
    return R.execvpe(file, argv, fix_env(envp));
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    INIT();
    NEED(fexecve);
    return R.fexecve(fd, argv, fix_env(envp));
}

EXPORT int execv(const char *path, char *const argv[])
{
    INIT();
    NEED(execve);
    return R.execve(path, argv, fix_env(environ));
}

EXPORT int execvp(const char *file, char *const argv[])
{
    INIT();
    NEED(execvpe);
    return R.execvpe(file, argv, fix_env(environ));
}

/* execl, execlp, execle: the list becomes an argv on the stack, as glibc does. */
#define LIST_TO_ARGV(first, last_arg, argv_name, envp_out)                       \
    size_t n_ = 1;                                                               \
    va_list ap_;                                                                 \
    va_start(ap_, last_arg);                                                     \
    while (va_arg(ap_, const char *) != NULL)                                    \
        n_++;                                                                    \
    va_end(ap_);                                                                 \
    const char *argv_name[n_ + 1];                                               \
    va_start(ap_, last_arg);                                                     \
    argv_name[0] = (first);                                                      \
    for (size_t i_ = 1; i_ <= n_; i_++)                                          \
        argv_name[i_] = va_arg(ap_, const char *);                               \
    envp_out;                                                                    \
    va_end(ap_)

EXPORT int execl(const char *path, const char *arg, ...)
{
    INIT();
    NEED(execve);
    LIST_TO_ARGV(arg, arg, av, (void)0);
    return R.execve(path, (char *const *)av, fix_env(environ));
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
    INIT();
    NEED(execvpe);
    LIST_TO_ARGV(arg, arg, av, (void)0);
    return R.execvpe(file, (char *const *)av, fix_env(environ));
}

EXPORT int execle(const char *path, const char *arg, ...)
{
    char *const *envp;

    INIT();
    NEED(execve);
    LIST_TO_ARGV(arg, arg, av, envp = va_arg(ap_, char *const *));
    return R.execve(path, (char *const *)av, fix_env(envp));
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    INIT();
    if (R.posix_spawn == NULL)
        return ENOSYS;
    return R.posix_spawn(pid, path, fa, attr, argv, fix_env(envp));
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    INIT();
    if (R.posix_spawnp == NULL)
        return ENOSYS;
    return R.posix_spawnp(pid, file, fa, attr, argv, fix_env(envp));
}
