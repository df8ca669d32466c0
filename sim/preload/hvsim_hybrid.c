/* SPDX-License-Identifier: MIT */
/*
 * hvsim_hybrid.c: hvsim-hybrid, the "hybrid vsock" relay of Firecracker,
 * Cloud Hypervisor and OpenVMM, for one VM of the simulator.
 *
 *   hvsim-hybrid --vm vm1 --path /run/vm1.vsock [--forward-port 5002]...
 *
 * Host to guest: a host program connects to the unix socket PATH, writes
 * "CONNECT <port>\n" (or "CONNECT <service GUID>\n", OpenVMM's extension),
 * reads "OK <id>\n", and the stream to the guest's listener begins. As in
 * OpenVMM's relay (reference section 5): the "CONNECT " prefix is
 * case-insensitive, the request may be at most
 * len("CONNECT 00000000-facb-11e6-bd58-64006a7986d3\n") = 45 bytes, a port
 * means the service <port>-facb-11e6-bd58-64006a7986d3, and the answer names
 * the host end's identity in the form the client used: the port of its
 * (random) service GUID, or the GUID itself. A request the relay cannot serve
 * (malformed, no such listener in the guest, a refusal) closes the unix
 * connection without an answer, as both relays do. The connect waits 2 s,
 * OpenVMM's timeout for the guest to accept.
 *
 * Guest to host: a guest's connections to port P arrive at the host listener
 * this relay holds on {the VM's ID, template(P)} (so a classic VM needs the
 * service registered, as for any host listener), and are relayed to the unix
 * socket PATH_P, or else PATH_<service GUID>, as OpenVMM tries them. Which
 * ports to serve is given up front (--forward-port P, --forward-service
 * GUID): unlike a VMM, the relay does not see the guest's connect requests,
 * only its own listeners' connections. When nothing listens at PATH_P the
 * guest's connection is closed right after it was accepted (the guest reads
 * EOF), where a VMM would have refused it.
 *
 * The relay copies bytes, which the convention requires (the unix client is
 * not a Hyper-V socket; hvsim's own sockets never copy), in one event loop;
 * a small pool of threads makes the connects, which block. Half-close is carried through: EOF on one side becomes
 * shutdown(SHUT_WR) on the other.
 *
 * It is a host process of the simulator (HVSIM_PARTITION=host, whatever the
 * environment said) and, needing no vsock of its own, installs the same
 * seccomp filter as hvsim-run on itself.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "hvsim/hvsim.h"
#include "hvproto/cli.h"
#include "vsock_filter.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_FORWARDS 64
#define REQUEST_MAX (sizeof("CONNECT 00000000-facb-11e6-bd58-64006a7986d3\n") - 1)
#define CONNECT_TIMEOUT_MS 2000u /* OpenVMM's hybrid connect path */
#define PUMP_BUF (64 * 1024)
#define REQUEST_TIMEOUT_MS 5000ul /* a host connection's CONNECT line by then (--request-timeout-ms) */
#define POOL_MAX 16 /* threads for the steps that block: connects */
#define QUEUE_MAX 1024 /* connections waiting for one of them */

static const char *const usage_text =
    "usage: hvsim-hybrid --vm NAME|GUID --path PATH [--forward-port P]... [--forward-service GUID]...\n"
    "                    [--dir DIR] [--ready-fd N] [--request-timeout-ms N] [-v]\n"
    "A hybrid-vsock relay (Firecracker/OpenVMM convention) for one VM of the simulator.\n"
    "  --path PATH            host programs connect here and write \"CONNECT <port|GUID>\\n\";\n"
    "                         they read \"OK <id>\\n\", then the stream to the guest's listener\n"
    "  --forward-port P       relay the guest's connections to host port P to PATH_P\n"
    "  --forward-service GUID the same for a service GUID: PATH_<GUID>\n"
    "  --dir DIR              the daemon's folder (HVSIM_DIR)\n"
    "  --ready-fd N           write READY=1 and close fd N once every listener is up\n"
    "  --request-timeout-ms N drop a host connection that sends no CONNECT line in N ms (5000)\n"
    "  -v, --verbose          one line per relayed connection\n"
    "  --version              print the version and exit\n"
    "  -h, --help             print this text and exit\n";

struct forward {
    GUID svc;
    int fd; /* the hvsim listener */
};

static struct {
    const char *path;
    GUID vmid;
    char vmname[HVSIM_NAME_MAX];
    struct forward fwd[MAX_FORWARDS];
    int nfwd;
    int verbose;
} G;

static volatile sig_atomic_t stopping;

/* One line on stderr, whole whatever its length (a Winsock text alone is
 * near 200 characters), in one write so the threads' lines never mix. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    static const char prefix[] = "hvsim-hybrid: ";
    const size_t plen = sizeof(prefix) - 1;
    char small[512], *buf = small;
    size_t len;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    len = plen + (size_t)n + 1; /* and the newline */
    if (len + 1 > sizeof(small))
        buf = malloc(len + 1);
    va_start(ap, fmt);
    if (buf == NULL) {
        /* No memory for the line: still whole, if perhaps in several writes. */
        dprintf(2, "%s", prefix);
        vdprintf(2, fmt, ap);
        dprintf(2, "\n");
    } else {
        memcpy(buf, prefix, plen);
        vsnprintf(buf + plen, (size_t)n + 1, fmt, ap);
        buf[len - 1] = '\n';
        (void)!write(2, buf, len);
    }
    va_end(ap);
    if (buf != small)
        free(buf);
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;

    fputs("hvsim-hybrid: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_FAIL);
}

/* An error as say() shows it: its text, then its errno and Winsock names.
 * Arguments, not a buffer, so no text is ever cut to a buffer's size. */
#define ERR_FMT "%s (%s%s%s)"
#define ERR_ARGS(err) hvsim_strerror(err), hvsim_err_name(err), hvsim_wsa_name(err)[0] ? ", " : "", hvsim_wsa_name(err)

/* ---- the connections ------------------------------------------------------------------------
 *
 * One event loop (epoll) holds every connection: it reads each CONNECT line
 * (dropping a connection that sends none within --request-timeout-ms) and
 * copies the bytes of every established pair without blocking. Only the
 * steps that may block (a connect to the guest waits up to 2 s for its
 * answer; a connect to PATH_P) run in a pool of at most POOL_MAX threads,
 * with at most QUEUE_MAX connections waiting for one. So 2,000 idle
 * connections are 2,000 entries, not 2,000 threads.
 */

enum kind { K_LISTEN, K_FORWARD, K_WAKE, K_U, K_H };
enum cstate { C_REQUEST, C_CONNECT, C_FORWARD, C_RELAY };

struct ep {
    enum kind kind;
    struct conn *c; /* K_U, K_H */
    struct forward *f; /* K_FORWARD */
    uint32_t mask; /* registered events; 0 = not in the epoll set */
};

/* Bytes read from one side, not yet written to the other. */
struct half {
    char *buf;
    size_t len, off;
    int eof, shut;
};

struct conn {
    int u, h; /* the unix side; the hvsim side (-1 until connected) */
    enum cstate state;
    int failed;
    uint64_t deadline; /* C_REQUEST: the CONNECT line by then */
    char line[REQUEST_MAX + 1];
    size_t n;
    GUID svc;
    int by_guid;
    struct half up, down; /* u -> h, h -> u */
    struct ep eu, eh;
    struct conn *prev, *next; /* the C_REQUEST list (deadline order) or a work queue */
    int dead; /* closed; freed after the current batch of events */
    struct conn *grave;
};

struct queue {
    struct conn *head, *tail;
    size_t n;
};

static struct {
    int ep, wake;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct queue work, done; /* under lock */
    int threads, idle; /* under lock */
    struct conn *req_head, *req_tail; /* main thread only */
    struct conn *grave; /* ended during this batch of events */
    uint64_t request_ns;
    size_t open; /* connections, for -v */
} L = { .ep = -1, .wake = -1, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void q_push(struct queue *q, struct conn *c)
{
    c->next = NULL;
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
    q->n++;
}

static struct conn *q_pop(struct queue *q)
{
    struct conn *c = q->head;

    if (c) {
        q->head = c->next;
        if (q->head == NULL)
            q->tail = NULL;
        q->n--;
    }
    return c;
}

/* Register, change or remove fd's events; an fd with nothing wanted is out
 * of the set, so a hung-up side we are not waiting on never spins the loop. */
static void interest(int fd, struct ep *e, uint32_t want)
{
    struct epoll_event ev = { .events = want, .data.ptr = e };

    if (want == e->mask)
        return;
    if (want == 0)
        epoll_ctl(L.ep, EPOLL_CTL_DEL, fd, NULL);
    else if (epoll_ctl(L.ep, e->mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0)
        say("epoll_ctl: %s", strerror(errno));
    e->mask = want;
}

static void req_unlink(struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        L.req_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        L.req_tail = c->prev;
    c->prev = c->next = NULL;
}

/* End a connection: its fds now, its memory after the batch (bury), since
 * later events of the same epoll_wait may still name it. */
static void conn_free(struct conn *c)
{
    if (c->u >= 0) {
        interest(c->u, &c->eu, 0);
        close(c->u);
        c->u = -1;
    }
    if (c->h >= 0) {
        interest(c->h, &c->eh, 0);
        hvsim_close(c->h);
        c->h = -1;
    }
    c->dead = 1;
    c->grave = L.grave;
    L.grave = c;
    L.open--;
}

static void bury(void)
{
    while (L.grave) {
        struct conn *c = L.grave;

        L.grave = c->grave;
        free(c->up.buf);
        free(c->down.buf);
        free(c);
    }
}

static struct conn *conn_new(int u, int h, enum cstate state)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        say("out of memory: a connection dropped");
        if (u >= 0)
            close(u);
        if (h >= 0)
            hvsim_close(h);
        return NULL;
    }
    c->u = u;
    c->h = h;
    c->state = state;
    c->eu = (struct ep){ .kind = K_U, .c = c };
    c->eh = (struct ep){ .kind = K_H, .c = c };
    L.open++;
    return c;
}

/* ---- the blocking steps, in the pool ------------------------------------------------------- */

static void *worker_main(void *arg);

/* Hand c to the pool (main thread). Refused when QUEUE_MAX wait already. */
static void submit(struct conn *c)
{
    pthread_t t;
    pthread_attr_t attr;
    sigset_t all, old;

    pthread_mutex_lock(&L.lock);
    if (L.work.n >= QUEUE_MAX) {
        pthread_mutex_unlock(&L.lock);
        say("%zu connections already wait for a connect: one dropped", (size_t)QUEUE_MAX);
        conn_free(c);
        return;
    }
    q_push(&L.work, c);
    if (L.idle == 0 && L.threads < POOL_MAX) {
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old); /* signals stay with the loop */
        if (pthread_create(&t, &attr, worker_main, NULL) == 0)
            L.threads++;
        else if (L.threads == 0)
            say("cannot start a connect thread: %s", strerror(errno));
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
    }
    pthread_cond_signal(&L.cond);
    pthread_mutex_unlock(&L.lock);
}

/* Host to guest: connect to the guest's listener, answer OK <id>. */
static void do_connect(struct conn *c)
{
    SOCKADDR_HV a = { .Family = AF_HYPERV, .VmId = G.vmid, .ServiceId = c->svc };
    SOCKADDR_HV me;
    socklen_t mel = sizeof(me);
    ULONG timeout = CONNECT_TIMEOUT_MS;
    char reply[64], svctext[HVSIM_GUID_STRLEN], id[HVSIM_GUID_STRLEN];
    int n, err;

    hvsim_guid_format(&c->svc, svctext);
    c->h = hvsim_socket(AF_HYPERV, SOCK_STREAM | SOCK_CLOEXEC, HV_PROTOCOL_RAW);
    if (c->h < 0 || hvsim_setsockopt(c->h, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &timeout, sizeof(timeout)) < 0 ||
        hvsim_connect(c->h, (struct sockaddr *)&a, sizeof(a)) < 0) {
        err = errno;
        say("CONNECT %s to %s failed: " ERR_FMT, svctext, G.vmname, ERR_ARGS(err));
        c->failed = 1;
        return;
    }
    if (hvsim_getsockname(c->h, (struct sockaddr *)&me, &mel) < 0)
        me.ServiceId = HV_GUID_ZERO;
    if (c->by_guid)
        n = snprintf(reply, sizeof(reply), "OK %s\n", hvsim_guid_format(&me.ServiceId, id));
    else
        n = snprintf(reply, sizeof(reply), "OK %u\n", me.ServiceId.Data1);
    /* A fresh socket's buffer takes these few bytes at once. */
    if (send(c->u, reply, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
        say("CONNECT %s: the host client left before the answer: %s", svctext, strerror(errno));
        c->failed = 1;
        return;
    }
    if (G.verbose)
        say("host -> %s service %s: connected", G.vmname, svctext);
}

static int connect_unix(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int u;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, path);
    u = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (u < 0)
        return -1;
    if (connect(u, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = errno;

        close(u);
        errno = err;
        return -1;
    }
    return u;
}


/* Guest to host: deliver an accepted guest connection to PATH_P or PATH_<GUID>. */
static void do_forward(struct conn *c)
{
    char by_port[sizeof(((struct sockaddr_un *)0)->sun_path) + 16], by_guid[sizeof(by_port) + 40];
    char svctext[HVSIM_GUID_STRLEN];
    uint32_t port;
    int err = ENOENT;

    hvsim_guid_format(&c->svc, svctext);
    by_port[0] = '\0';
    /* OpenVMM's order: PATH_<port> for a vsock service, then PATH_<GUID>. */
    if (hvsim_guid_to_port(&c->svc, &port)) {
        snprintf(by_port, sizeof(by_port), "%s_%u", G.path, port);
        c->u = connect_unix(by_port);
        err = errno;
    }
    snprintf(by_guid, sizeof(by_guid), "%s_%s", G.path, svctext);
    if (c->u < 0) {
        c->u = connect_unix(by_guid);
        if (c->u < 0 && !by_port[0])
            err = errno;
    }
    if (c->u < 0) {
        say("a guest connection to service %s: nothing listens at %s%s%s (%s); closing it", svctext,
            by_port[0] ? by_port : "", by_port[0] ? " or " : "", by_guid, strerror(err));
        c->failed = 1;
        return;
    }
    if (G.verbose)
        say("%s -> host service %s: relayed to the unix socket", G.vmname, svctext);
}

static void *worker_main(void *arg)
{
    uint64_t one = 1;

    (void)arg;
    pthread_mutex_lock(&L.lock);
    for (;;) {
        struct conn *c;

        L.idle++;
        while (L.work.head == NULL)
            pthread_cond_wait(&L.cond, &L.lock);
        L.idle--;
        c = q_pop(&L.work);
        pthread_mutex_unlock(&L.lock);
        if (c->state == C_CONNECT)
            do_connect(c);
        else
            do_forward(c);
        pthread_mutex_lock(&L.lock);
        q_push(&L.done, c);
        if (write(L.wake, &one, sizeof(one)) < 0)
            (void)0; /* a wake already pending does the same */
    }
    return NULL;
}

/* ---- the loop's side ------------------------------------------------------------------------ */

/* Parse one request line. Returns 0, or -1 with a reason. */
static int parse_request(const char *line, GUID *svc, int *by_guid, char *why, size_t why_len)
{
    const char *rest;

    if (strncasecmp(line, "CONNECT ", 8) != 0) {
        snprintf(why, why_len, "'%s' is not CONNECT <port|service GUID>", line);
        return -1;
    }
    rest = line + 8;
    if (*rest != '\0' && strspn(rest, "0123456789") == strlen(rest) && strlen(rest) <= 10) {
        unsigned long long port = strtoull(rest, NULL, 10);

        if (port <= UINT32_MAX) {
            *svc = hvsim_guid_from_port((uint32_t)port);
            *by_guid = 0;
            return 0;
        }
    }
    if (hvsim_guid_parse(rest, svc) == 0) {
        *by_guid = 1;
        return 0;
    }
    snprintf(why, why_len, "'%s' is neither a port (0..4294967295) nor a service GUID", rest);
    return -1;
}

/* Read what there is of the request line, byte by byte, so the stream after
 * it stays in the socket for the guest. */
static void on_request(struct conn *c)
{
    char why[160];

    for (;;) {
        ssize_t r;

        if (c->n == REQUEST_MAX) {
            snprintf(why, sizeof(why), "the request does not fit in %zu bytes", REQUEST_MAX);
            break;
        }
        r = recv(c->u, c->line + c->n, 1, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            snprintf(why, sizeof(why), "no request (%s)", r == 0 ? "EOF" : strerror(errno));
            break;
        }
        if (c->line[c->n] != '\n') {
            c->n++;
            continue;
        }
        c->line[c->n] = '\0';
        if (parse_request(c->line, &c->svc, &c->by_guid, why, sizeof(why)) < 0)
            break;
        req_unlink(c);
        interest(c->u, &c->eu, 0);
        c->state = C_CONNECT;
        submit(c);
        return;
    }
    say("refused a host connection on %s: %s", G.path, why);
    req_unlink(c);
    conn_free(c);
}

/* Move what one half holds and can read: 0, or -1 when the pair must end. */
static int pump(struct half *hf, int from, int from_hv, int to, int to_hv)
{
    int rounds;

    for (rounds = 0; rounds < 16; rounds++) {
        ssize_t r;

        if (hf->off < hf->len) {
            r = to_hv ? hvsim_send(to, hf->buf + hf->off, hf->len - hf->off, 0)
                      : send(to, hf->buf + hf->off, hf->len - hf->off, MSG_NOSIGNAL);
            if (r < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
            hf->off += (size_t)r;
            continue;
        }
        free(hf->buf); /* an idle pair holds no buffer */
        hf->buf = NULL;
        hf->len = hf->off = 0;
        if (hf->eof) {
            if (!hf->shut)
                (void)(to_hv ? hvsim_shutdown(to, SHUT_WR) : shutdown(to, SHUT_WR));
            hf->shut = 1;
            return 0;
        }
        if ((hf->buf = malloc(PUMP_BUF)) == NULL)
            return -1;
        r = from_hv ? hvsim_recv(from, hf->buf, PUMP_BUF, 0) : recv(from, hf->buf, PUMP_BUF, 0);
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        if (r == 0)
            hf->eof = 1;
        hf->len = (size_t)r;
    }
    return 0;
}

static void relay_interest(struct conn *c)
{
    uint32_t wu = 0, wh = 0;

    if (!c->up.eof && c->up.off >= c->up.len)
        wu |= EPOLLIN;
    if (c->down.off < c->down.len)
        wu |= EPOLLOUT;
    if (!c->down.eof && c->down.off >= c->down.len)
        wh |= EPOLLIN;
    if (c->up.off < c->up.len)
        wh |= EPOLLOUT;
    interest(c->u, &c->eu, wu);
    interest(c->h, &c->eh, wh);
}

/* Copy both ways; EOF passes on as a half-close; an error, or both
 * directions done, ends the pair (closing both wakes both peers). */
static void on_relay(struct conn *c)
{
    if (pump(&c->up, c->u, 0, c->h, 1) < 0 || pump(&c->down, c->h, 1, c->u, 0) < 0 ||
        (c->up.shut && c->down.shut)) {
        conn_free(c);
        return;
    }
    relay_interest(c);
}

/* Connections the pool is done with: relay them, or drop the failed. */
static void on_wake(void)
{
    uint64_t v;
    struct conn *c;

    if (read(L.wake, &v, sizeof(v)) < 0 && errno != EAGAIN)
        say("eventfd: %s", strerror(errno));
    for (;;) {
        pthread_mutex_lock(&L.lock);
        c = q_pop(&L.done);
        pthread_mutex_unlock(&L.lock);
        if (c == NULL)
            return;
        if (c->failed) {
            conn_free(c);
            continue;
        }
        if (fcntl(c->u, F_SETFL, fcntl(c->u, F_GETFL) | O_NONBLOCK) < 0 ||
            fcntl(c->h, F_SETFL, fcntl(c->h, F_GETFL) | O_NONBLOCK) < 0) {
            conn_free(c);
            continue;
        }
        c->state = C_RELAY;
        on_relay(c);
    }
}

/* New host connections: each waits for its CONNECT line, in deadline order. */
static int on_listen(int l)
{
    int i;

    for (i = 0; i < 64; i++) {
        int u = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        struct conn *c;

        if (u < 0)
            return errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM ? -1 : 0;
        c = conn_new(u, -1, C_REQUEST);
        if (c == NULL)
            continue;
        c->deadline = now_ns() + L.request_ns;
        c->prev = L.req_tail;
        if (L.req_tail)
            L.req_tail->next = c;
        else
            L.req_head = c;
        L.req_tail = c;
        interest(u, &c->eu, EPOLLIN);
    }
    return 0;
}

static void on_forward(struct forward *f)
{
    int i;

    for (i = 0; i < 64; i++) {
        int h = hvsim_accept4(f->fd, NULL, NULL, SOCK_CLOEXEC);
        struct conn *c;

        if (h < 0)
            return;
        c = conn_new(-1, h, C_FORWARD);
        if (c == NULL)
            continue;
        c->svc = f->svc;
        submit(c);
    }
}

/* Drop the connections whose CONNECT line did not come in time; the wait
 * until the next deadline (ms, -1 for none). */
static int sweep(void)
{
    uint64_t now = now_ns();

    while (L.req_head && L.req_head->deadline <= now) {
        struct conn *c = L.req_head;

        say("dropped a host connection on %s: no CONNECT line within %llu ms", G.path,
            (unsigned long long)(L.request_ns / 1000000u));
        req_unlink(c);
        conn_free(c);
    }
    if (L.req_head == NULL)
        return -1;
    return (int)((L.req_head->deadline - now + 999999) / 1000000u);
}

static int start_forward(struct forward *f)
{
    SOCKADDR_HV a = { .Family = AF_HYPERV, .VmId = G.vmid, .ServiceId = f->svc };
    char svctext[HVSIM_GUID_STRLEN];
    int err;

    f->fd = hvsim_socket(AF_HYPERV, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, HV_PROTOCOL_RAW);
    if (f->fd < 0 || hvsim_bind(f->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || hvsim_listen(f->fd, 64) < 0) {
        err = errno;
        say("cannot listen for %s on service %s: " ERR_FMT, G.vmname, hvsim_guid_format(&f->svc, svctext),
            ERR_ARGS(err));
        return -1;
    }
    return 0;
}

/* ---- setup -------------------------------------------------------------------------------- */

static void find_vm(const char *dir, const char *which)
{
    hvsim_admin_t *adm = NULL;
    hvsim_vm_info_t *vms = NULL;
    size_t n = 0, i;
    GUID want;
    int by_id = hvsim_guid_parse(which, &want) == 0, rc;

    rc = hvsim_admin_open(dir, &adm);
    if (rc < 0)
        die("cannot reach the hvsim daemon (%s): %s", dir ? dir : "$HVSIM_DIR or the default folder",
            hvsim_strerror(rc));
    rc = hvsim_admin_vm_list(adm, &vms, &n);
    if (rc < 0)
        die("listing the VMs: %s", hvsim_admin_errmsg(adm));
    for (i = 0; i < n; i++) {
        if (by_id ? hvsim_guid_equal(&vms[i].id, &want) : strcmp(vms[i].name, which) == 0) {
            G.vmid = vms[i].id;
            snprintf(G.vmname, sizeof(G.vmname), "%s", vms[i].name);
            free(vms);
            hvsim_admin_close(adm);
            return;
        }
    }
    die("no VM '%s' (hvsimctl vm list shows %zu VM%s)", which, n, n == 1 ? "" : "s");
}

/* A socket file left by a relay that died is replaced; a live one is not. */
static int listen_path(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int l;

    if (strlen(path) >= sizeof(sa.sun_path))
        die("--path %s: longer than a unix socket path may be (%zu bytes)", path, sizeof(sa.sun_path) - 1);
    strcpy(sa.sun_path, path);
    if (lstat(path, &st) == 0) {
        int probe;

        if (!S_ISSOCK(st.st_mode))
            die("--path %s exists and is not a socket", path);
        probe = connect_unix(path);
        if (probe >= 0) {
            close(probe);
            die("--path %s: another program listens there", path);
        }
        if (errno == ECONNREFUSED)
            unlink(path);
    }
    l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 128) < 0)
        die("cannot listen on %s: %s", path, strerror(errno));
    return l;
}

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* The loop: until SIGTERM/SIGINT. */
static void serve(int l)
{
    struct ep el = { .kind = K_LISTEN }, ew = { .kind = K_WAKE }, ef[MAX_FORWARDS];
    struct epoll_event evs[64];
    uint64_t resume = 0; /* out of descriptors: accept again after this */
    int i, n;

    interest(l, &el, EPOLLIN);
    interest(L.wake, &ew, EPOLLIN);
    for (i = 0; i < G.nfwd; i++) {
        ef[i] = (struct ep){ .kind = K_FORWARD, .f = &G.fwd[i] };
        interest(G.fwd[i].fd, &ef[i], EPOLLIN);
    }
    while (!stopping) {
        int wait = sweep();

        if (resume && now_ns() >= resume) {
            resume = 0;
            interest(l, &el, EPOLLIN);
        }
        if (resume && (wait < 0 || wait > 100))
            wait = 100;
        n = epoll_wait(L.ep, evs, 64, wait);
        if (n < 0 && errno != EINTR) {
            say("epoll_wait: %s", strerror(errno));
            break;
        }
        for (i = 0; i < n; i++) {
            struct ep *e = evs[i].data.ptr;

            if (e->kind == K_LISTEN) {
                if (on_listen(l) == 0)
                    continue;
                /* EMFILE: pause accepting rather than spin on the ready listener. */
                say("accept: %s; pausing new host connections for 100 ms", strerror(errno));
                interest(l, &el, 0);
                resume = now_ns() + 100000000u;
            } else if (e->kind == K_FORWARD) {
                on_forward(e->f);
            } else if (e->kind == K_WAKE) {
                on_wake();
            } else if (e->c->dead) {
                continue; /* ended earlier in this batch; freed below */
            } else if (e->c->state == C_REQUEST) {
                on_request(e->c);
            } else if (e->c->state == C_RELAY) {
                on_relay(e->c);
            }
        }
        bury();
    }
}

/* As many descriptors as allowed: a relay holds two per pair. */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "vm", required_argument, NULL, 'm' },
        { "path", required_argument, NULL, 'p' },
        { "forward-port", required_argument, NULL, 'f' },
        { "forward-service", required_argument, NULL, 's' },
        { "dir", required_argument, NULL, 'd' },
        { "ready-fd", required_argument, NULL, 'r' },
        { "request-timeout-ms", required_argument, NULL, 't' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *vm = NULL, *dir = NULL;
    unsigned long request_ms = REQUEST_TIMEOUT_MS;
    struct sigaction sa = { .sa_handler = on_signal };
    char why[256];
    int ready_fd = -1, c, l, i;

    while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            vm = optarg;
            break;
        case 'p':
            G.path = optarg;
            break;
        case 'f':
        case 's': {
            GUID svc;
            char *end;
            unsigned long v;

            if (G.nfwd == MAX_FORWARDS)
                die("at most %d forwards", MAX_FORWARDS);
            if (c == 'f') {
                errno = 0;
                v = strtoul(optarg, &end, 10);
                if (errno || *end || end == optarg || v > UINT32_MAX)
                    die("--forward-port %s: not a port (0..4294967295)", optarg);
                svc = hvsim_guid_from_port((uint32_t)v);
            } else if (hvsim_guid_parse(optarg, &svc) != 0) {
                die("--forward-service %s: not a GUID", optarg);
            }
            G.fwd[G.nfwd++] = (struct forward){ .svc = svc, .fd = -1 };
            break;
        }
        case 'd':
            dir = optarg;
            break;
        case 'r':
            ready_fd = atoi(optarg);
            break;
        case 't': {
            char *end;

            errno = 0;
            request_ms = strtoul(optarg, &end, 10);
            if (errno || *end || end == optarg || request_ms < 1 || request_ms > 3600000)
                die("--request-timeout-ms %s: expected 1..3600000", optarg);
            break;
        }
        case 'v':
            G.verbose = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'V':
            return hvsim__cli_version("hvsim-hybrid");
        default:
            fputs(usage_text, stderr);
            return EXIT_USAGE;
        }
    }
    if (vm == NULL || G.path == NULL || optind != argc) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    /* The relay is the host's, whatever partition the caller was in. */
    if (setenv("HVSIM_PARTITION", "host", 1) != 0 || (dir && setenv("HVSIM_DIR", dir, 1) != 0))
        die("setenv: %s", strerror(errno));
    if (hvsim_filter_install(why, sizeof(why)) != 0)
        die("%s", why);
    signal(SIGPIPE, SIG_IGN);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    raise_nofile();
    L.request_ns = (uint64_t)request_ms * 1000000u;
    L.ep = epoll_create1(EPOLL_CLOEXEC);
    L.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (L.ep < 0 || L.wake < 0)
        die("epoll/eventfd: %s", strerror(errno));
    find_vm(dir, vm);
    for (i = 0; i < G.nfwd; i++)
        if (start_forward(&G.fwd[i]) < 0)
            return EXIT_FAIL;
    l = listen_path(G.path);
    if (ready_fd >= 0) {
        (void)!write(ready_fd, "READY=1\n", 8);
        close(ready_fd);
    }
    serve(l);
    unlink(G.path);
    close(l);
    for (i = 0; i < G.nfwd; i++)
        hvsim_close(G.fwd[i].fd);
    return 0;
}
