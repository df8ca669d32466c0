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
 * The relay copies bytes, one thread per direction, which the convention
 * requires (the unix client is not a Hyper-V socket); hvsim's own sockets
 * never copy. Half-close is carried through: EOF on one side becomes
 * shutdown(SHUT_WR) on the other.
 *
 * It is a host process of the simulator (HVSIM_PARTITION=host, whatever the
 * environment said) and, needing no vsock of its own, installs the same
 * seccomp filter as hvsim-run on itself.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "hvsim/hvsim.h"
#include "vsock_filter.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_FORWARDS 64
#define REQUEST_MAX (sizeof("CONNECT 00000000-facb-11e6-bd58-64006a7986d3\n") - 1)
#define CONNECT_TIMEOUT_MS 2000u /* OpenVMM's hybrid connect path */
#define PUMP_BUF (64 * 1024)

static const char *const usage_text =
    "usage: hvsim-hybrid --vm NAME|GUID --path PATH [--forward-port P]... [--forward-service GUID]...\n"
    "                    [--dir DIR] [--ready-fd N] [-v]\n"
    "A hybrid-vsock relay (Firecracker/OpenVMM convention) for one VM of the simulator.\n"
    "  --path PATH            host programs connect here and write \"CONNECT <port|GUID>\\n\";\n"
    "                         they read \"OK <id>\\n\", then the stream to the guest's listener\n"
    "  --forward-port P       relay the guest's connections to host port P to PATH_P\n"
    "  --forward-service GUID the same for a service GUID: PATH_<GUID>\n"
    "  --dir DIR              the daemon's folder (HVSIM_DIR)\n"
    "  --ready-fd N           write READY=1 and close fd N once every listener is up\n"
    "  -v                     one line per relayed connection\n";

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

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    char buf[512];
    int n;
    va_list ap;

    n = snprintf(buf, sizeof(buf), "hvsim-hybrid: ");
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    (void)!write(2, buf, (size_t)n);
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

static const char *err_text(int err, char *buf, size_t len)
{
    snprintf(buf, len, "%s (%s%s%s)", hvsim_strerror(err), hvsim_err_name(err), hvsim_wsa_name(err)[0] ? ", " : "",
             hvsim_wsa_name(err));
    return buf;
}

/* ---- relaying ------------------------------------------------------------------------- */

struct pump {
    int from, to;
    int from_hv, to_hv;
};

static int send_all(int fd, int hv, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = hv ? hvsim_send(fd, p, n, 0) : send(fd, p, n, MSG_NOSIGNAL);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One direction until EOF (passed on as a half-close) or an error (which
 * ends both directions: the other pump then reads EOF). */
static void pump(const struct pump *p)
{
    char *buf = malloc(PUMP_BUF);

    for (;;) {
        ssize_t n;

        if (buf == NULL)
            break;
        n = p->from_hv ? hvsim_recv(p->from, buf, PUMP_BUF, 0) : recv(p->from, buf, PUMP_BUF, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            if (p->to_hv)
                (void)hvsim_shutdown(p->to, SHUT_WR);
            else
                (void)shutdown(p->to, SHUT_WR);
            free(buf);
            return;
        }
        if (n < 0 || send_all(p->to, p->to_hv, buf, (size_t)n) < 0)
            break;
    }
    free(buf);
    /* Raw shutdowns: this is the error path, and both sides must wake. */
    (void)shutdown(p->from, SHUT_RDWR);
    (void)shutdown(p->to, SHUT_RDWR);
}

static void *pump_main(void *arg)
{
    pump(arg);
    return NULL;
}

/* Copy both ways until both directions ended, then close both. */
static void relay(int u, int h)
{
    struct pump up = { .from = u, .to = h, .from_hv = 0, .to_hv = 1 };
    struct pump down = { .from = h, .to = u, .from_hv = 1, .to_hv = 0 };
    pthread_t t;

    if (pthread_create(&t, NULL, pump_main, &down) != 0) {
        say("cannot start a relay thread: %s", strerror(errno));
    } else {
        pump(&up);
        pthread_join(t, NULL);
    }
    hvsim_close(h);
    close(u);
}

/* ---- host to guest: CONNECT requests --------------------------------------------------- */

/* Read exactly one request line, byte by byte, so the stream after it stays
 * in the socket for the guest. Returns 0, or -1 with a reason. */
static int read_request(int u, GUID *svc, int *by_guid, char *why, size_t why_len)
{
    char line[REQUEST_MAX + 1];
    size_t n = 0;
    const char *rest;

    for (;;) {
        ssize_t r;

        if (n == REQUEST_MAX) {
            snprintf(why, why_len, "the request does not fit in %zu bytes", REQUEST_MAX);
            return -1;
        }
        r = recv(u, line + n, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(why, why_len, "no request (%s)", r == 0 ? "EOF" : strerror(errno));
            return -1;
        }
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
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

static void *connect_main(void *arg)
{
    int u = (int)(intptr_t)arg, h = -1, by_guid = 0;
    GUID svc;
    char why[160], reply[64], svctext[HVSIM_GUID_STRLEN], e[200];
    SOCKADDR_HV a = { .Family = AF_HYPERV, .VmId = G.vmid };
    SOCKADDR_HV me;
    socklen_t mel = sizeof(me);
    ULONG timeout = CONNECT_TIMEOUT_MS;
    int n;

    if (read_request(u, &svc, &by_guid, why, sizeof(why)) < 0) {
        say("refused a host connection on %s: %s", G.path, why);
        close(u);
        return NULL;
    }
    hvsim_guid_format(&svc, svctext);
    a.ServiceId = svc;
    h = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    if (h < 0 || hvsim_setsockopt(h, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &timeout, sizeof(timeout)) < 0 ||
        hvsim_connect(h, (struct sockaddr *)&a, sizeof(a)) < 0) {
        say("CONNECT %s to %s failed: %s", svctext, G.vmname, err_text(errno, e, sizeof(e)));
        if (h >= 0)
            hvsim_close(h);
        close(u);
        return NULL;
    }
    if (hvsim_getsockname(h, (struct sockaddr *)&me, &mel) < 0)
        me.ServiceId = HV_GUID_ZERO;
    if (by_guid) {
        char id[HVSIM_GUID_STRLEN];

        n = snprintf(reply, sizeof(reply), "OK %s\n", hvsim_guid_format(&me.ServiceId, id));
    } else {
        n = snprintf(reply, sizeof(reply), "OK %u\n", me.ServiceId.Data1);
    }
    if (send_all(u, 0, reply, (size_t)n) < 0) {
        say("CONNECT %s: the host client left before the answer: %s", svctext, strerror(errno));
        hvsim_close(h);
        close(u);
        return NULL;
    }
    if (G.verbose)
        say("host -> %s service %s: connected", G.vmname, svctext);
    relay(u, h);
    return NULL;
}

/* ---- guest to host: forwarded ports ------------------------------------------------------ */

struct accepted {
    int h;
    GUID svc;
};

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

static void *forward_main(void *arg)
{
    struct accepted acc = *(struct accepted *)arg;
    char by_port[sizeof(((struct sockaddr_un *)0)->sun_path) + 16], by_guid[sizeof(by_port) + 40];
    char svctext[HVSIM_GUID_STRLEN];
    uint32_t port;
    int u = -1, err = ENOENT;

    free(arg);
    hvsim_guid_format(&acc.svc, svctext);
    by_port[0] = '\0';
    /* OpenVMM's order: PATH_<port> for a vsock service, then PATH_<GUID>. */
    if (hvsim_guid_to_port(&acc.svc, &port)) {
        snprintf(by_port, sizeof(by_port), "%s_%u", G.path, port);
        u = connect_unix(by_port);
        err = errno;
    }
    snprintf(by_guid, sizeof(by_guid), "%s_%s", G.path, svctext);
    if (u < 0) {
        u = connect_unix(by_guid);
        if (u < 0 && !by_port[0])
            err = errno;
    }
    if (u < 0) {
        say("a guest connection to service %s: nothing listens at %s%s%s (%s); closing it", svctext,
            by_port[0] ? by_port : "", by_port[0] ? " or " : "", by_guid, strerror(err));
        hvsim_close(acc.h);
        return NULL;
    }
    if (G.verbose)
        say("%s -> host service %s: relayed to the unix socket", G.vmname, svctext);
    relay(u, acc.h);
    return NULL;
}

static int start_forward(struct forward *f)
{
    SOCKADDR_HV a = { .Family = AF_HYPERV, .VmId = G.vmid, .ServiceId = f->svc };
    char svctext[HVSIM_GUID_STRLEN], e[200];

    f->fd = hvsim_socket(AF_HYPERV, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, HV_PROTOCOL_RAW);
    if (f->fd < 0 || hvsim_bind(f->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || hvsim_listen(f->fd, 64) < 0) {
        say("cannot listen for %s on service %s: %s", G.vmname, hvsim_guid_format(&f->svc, svctext),
            err_text(errno, e, sizeof(e)));
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

static void spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t attr;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, fn, arg) != 0)
        say("cannot start a thread for a connection: %s", strerror(errno));
    pthread_attr_destroy(&attr);
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
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *vm = NULL, *dir = NULL;
    struct pollfd p[1 + MAX_FORWARDS];
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
        case 'v':
            G.verbose = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
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

    find_vm(dir, vm);
    for (i = 0; i < G.nfwd; i++)
        if (start_forward(&G.fwd[i]) < 0)
            return EXIT_FAIL;
    l = listen_path(G.path);
    if (ready_fd >= 0) {
        (void)!write(ready_fd, "READY=1\n", 8);
        close(ready_fd);
    }
    p[0] = (struct pollfd){ .fd = l, .events = POLLIN };
    for (i = 0; i < G.nfwd; i++)
        p[1 + i] = (struct pollfd){ .fd = G.fwd[i].fd, .events = POLLIN };
    while (!stopping) {
        if (poll(p, (nfds_t)(1 + G.nfwd), -1) < 0) {
            if (errno == EINTR)
                continue;
            say("poll: %s", strerror(errno));
            break;
        }
        if (p[0].revents & POLLIN) {
            int u = accept4(l, NULL, NULL, SOCK_CLOEXEC);

            if (u >= 0)
                spawn(connect_main, (void *)(intptr_t)u);
        }
        for (i = 0; i < G.nfwd; i++) {
            if (p[1 + i].revents & POLLIN) {
                int h = hvsim_accept4(G.fwd[i].fd, NULL, NULL, SOCK_CLOEXEC);
                struct accepted *acc;

                if (h < 0)
                    continue;
                acc = malloc(sizeof(*acc));
                if (acc == NULL) {
                    hvsim_close(h);
                    continue;
                }
                *acc = (struct accepted){ .h = h, .svc = G.fwd[i].svc };
                spawn(forward_main, acc);
            }
        }
    }
    unlink(G.path);
    close(l);
    for (i = 0; i < G.nfwd; i++)
        hvsim_close(G.fwd[i].fd);
    return 0;
}
