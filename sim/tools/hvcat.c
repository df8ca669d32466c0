/* SPDX-License-Identifier: MIT */
/*
 * hvcat.c: netcat for Hyper-V sockets, for shell pipelines and quick checks.
 * It connects to (or, with -l, accepts one connection on) a Hyper-V socket
 * address, then copies stdin to the socket and the socket to stdout until both
 * directions have ended.
 *
 * By default it is a Windows program (AF_HYPERV, SOCKADDR_HV, VMID:SERVICE);
 * with --vsock it is a Linux guest program (AF_VSOCK, CID:PORT). All socket
 * calls go through libhvsim's hvsim_* calls, so each personality's rules
 * apply: shutdown, errors and timeouts behave as the real program would see
 * them, and errors are printed with their Winsock names as well.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "hvsim/hvsim.h"
#include "hvproto/cli.h"
#include "hvproto/util.h" /* hvsim__default_dir: the folder the library and hvsimd use */

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define BUF_SIZE (64 * 1024)
#define ADDR_TEXT 96

struct address {
    int vsock;
    union {
        SOCKADDR_HV hv;
        struct sockaddr_vm vm;
    } u;
    socklen_t len;
};

static const char *const usage_text =
    "usage: hvcat [-l] [-v] [-c] [-t MS] ADDRESS\n"
    "       hvcat --vsock [-l] [-v] [-c] [-t MS] CID:PORT|PORT\n"
    "       hvcat [-v] [-c] [-t MS] VSOCK-CONNECT:CID:PORT | VSOCK-LISTEN:PORT\n"
    "Copies stdin to a Hyper-V socket and the socket to stdout until both directions end.\n"
    "  ADDRESS     VMID:SERVICE. VMID is a GUID, parent, children, loopback, wildcard, zero,\n"
    "              broadcast, silohost or a VM's name; SERVICE is a GUID or a port number\n"
    "              (its VSOCK template GUID <port>-facb-11e6-bd58-64006a7986d3)\n"
    "  --vsock     be a Linux program (AF_VSOCK): connect to CID:PORT, or listen on PORT;\n"
    "              CID is a number (2: the host) or a VM's name\n"
    "  VSOCK-CONNECT:CID:PORT, VSOCK-LISTEN:PORT\n"
    "              socat's forms: the same as --vsock CID:PORT and --vsock -l PORT\n"
    "  -l, --listen   listen on ADDRESS and accept one connection\n"
    "  -t, --timeout MS  connect timeout in milliseconds (HVSOCKET_CONNECT_TIMEOUT,\n"
    "              SO_VM_SOCKETS_CONNECT_TIMEOUT with --vsock)\n"
    "  -v, --verbose  print the local and peer addresses once connected\n"
    "  -c, --close    at the end of stdin close the socket at once (a full close, as a\n"
    "              program that exits) instead of shutdown(SHUT_WR) and reading on\n"
    "  --shut-rd   once connected, shutdown(SHUT_RD) and only send (a virtio peer's\n"
    "              sends then fail with EPIPE; Hyper-V and hv_sock keep it local)\n"
    "  --version   print the version and exit\n"
    "  -h, --help  print this text and exit\n"
    "Errors are printed in the personality's words: Winsock's (WSAECONNREFUSED 10061: ...)\n"
    "for AF_HYPERV, errno's name and strerror (ECONNREFUSED: Connection refused) for AF_VSOCK.\n"
    "The partition comes from the environment: HVSIM_DIR (the daemon's folder) and\n"
    "HVSIM_PARTITION (host, the default, or a VM's name).\n";

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
    va_list ap;

    fputs("hvcat: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAIL;
}

/* The personality this hvcat plays: its errors are printed in its own words
 * (Winsock's for AF_HYPERV, errno names and strerror for AF_VSOCK). */
static enum hvsim_cli_personality personality = HVSIM_CLI_WINDOWS;

/* A socket call failed: name the error as the personality's program would. */
__attribute__((format(printf, 2, 3))) static int sock_fail(int err, const char *fmt, ...)
{
    char words[320];
    va_list ap;

    fputs("hvcat: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", hvsim__cli_errtext(err, personality, words, sizeof(words)));
    return EXIT_FAIL;
}

/* ---- addresses ------------------------------------------------------------------ */

static int parse_u32(const char *s, uint32_t *out)
{
    const char *digits = s;
    unsigned long long v;
    int base = 10;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        digits = s + 2;
        base = 16;
    }
    /* strtoull alone would take blanks, signs and a second "0x". */
    if (*digits == '\0' || strspn(digits, base == 16 ? "0123456789abcdefABCDEF" : "0123456789") != strlen(digits))
        return -EINVAL;
    errno = 0;
    v = strtoull(digits, NULL, base);
    if (errno || v > UINT32_MAX)
        return -ERANGE;
    *out = (uint32_t)v;
    return 0;
}

/* A VM's name, through the admin socket: only reached when the text is
 * neither a GUID nor a well-known name (nor, for --vsock, a number), so a VM
 * called "parent" cannot shadow HV_GUID_PARENT. Gives its ID and CID. */
static int resolve_vm_name(const char *name, GUID *id, uint32_t *cid)
{
    char dir[PATH_MAX];
    hvsim_admin_t *a;
    hvsim_vm_info_t *v;
    size_t n, i;
    int rc, found = 0;

    rc = hvsim_admin_open(NULL, &a);
    if (rc < 0)
        return fail("'%s' is not %s, and VM names cannot be looked up: no hvsim daemon answers in %s", name,
                    cid ? "a CID" : "a GUID or a well-known VM ID", hvsim__default_dir(dir, sizeof(dir)));
    rc = hvsim_admin_vm_list(a, &v, &n);
    if (rc < 0) {
        fail("looking up VM '%s': %s", name, hvsim_admin_errmsg(a)[0] ? hvsim_admin_errmsg(a) : strerror(-rc));
        hvsim_admin_close(a);
        return EXIT_FAIL;
    }
    for (i = 0; i < n && !found; i++) {
        if (strcmp(v[i].name, name) == 0) {
            if (id)
                *id = v[i].id;
            if (cid)
                *cid = v[i].cid;
            found = 1;
        }
    }
    free(v);
    hvsim_admin_close(a);
    if (!found && cid)
        return fail("CID '%s' is not a number from 0 to 4294967295 or a VM's name (hvsimctl vm list)", name);
    if (!found)
        return fail("VMID '%s' is not a GUID, a well-known VM ID (parent, children, loopback, wildcard, zero, "
                    "broadcast, silohost) or a VM's name (hvsimctl vm list)",
                    name);
    return 0;
}

static int parse_hv(const char *text, struct address *out)
{
    const char *colon = strchr(text, ':');
    char vm[HVSIM_NAME_MAX + 40];
    const char *svc;
    uint32_t port;
    int rc;

    if (colon == NULL || colon == text || colon[1] == '\0')
        return fail("address '%s': expected VMID:SERVICE, e.g. parent:5000 or wildcard:{GUID}", text);
    if ((size_t)(colon - text) >= sizeof(vm))
        return fail("address '%s': the VMID is too long", text);
    memcpy(vm, text, (size_t)(colon - text));
    vm[colon - text] = '\0';
    svc = colon + 1;
    memset(&out->u.hv, 0, sizeof(out->u.hv));
    out->u.hv.Family = AF_HYPERV;
    out->len = sizeof(out->u.hv);
    if (hvsim_vmid_parse_name(vm, &out->u.hv.VmId) < 0 && (rc = resolve_vm_name(vm, &out->u.hv.VmId, NULL)) != 0)
        return rc;
    if (hvsim_guid_parse(svc, &out->u.hv.ServiceId) == 0)
        return 0;
    rc = parse_u32(svc, &port);
    if (rc == -ERANGE)
        return fail("service '%s': port out of range (expected 0 to 4294967295)", svc);
    if (rc < 0)
        return fail("service '%s': expected a GUID or a port number", svc);
    out->u.hv.ServiceId = hvsim_guid_from_port(port);
    return 0;
}

static int parse_vsock(const char *text, int listening, struct address *out)
{
    const char *colon = strchr(text, ':');
    char cid[HVSIM_NAME_MAX + 8];
    uint32_t c = VMADDR_CID_ANY, port;
    int rc;

    memset(&out->u.vm, 0, sizeof(out->u.vm));
    out->u.vm.svm_family = AF_VSOCK;
    out->len = sizeof(out->u.vm);
    if (colon == NULL && !listening)
        return fail("address '%s': expected CID:PORT, e.g. 2:5000 for the host or vm1:5000 for a VM", text);
    if (colon) {
        if ((size_t)(colon - text) >= sizeof(cid))
            return fail("address '%s': CID '%.*s' is too long", text, (int)(colon - text), text);
        memcpy(cid, text, (size_t)(colon - text));
        cid[colon - text] = '\0';
        /* A number is a CID; anything else a VM's name, as for VMIDs. */
        if (parse_u32(cid, &c) < 0 && (rc = resolve_vm_name(cid, NULL, &c)) != 0)
            return rc;
        text = colon + 1;
    }
    if (parse_u32(text, &port) < 0)
        return fail("address: port '%s' is not a number from 0 to 4294967295", text);
    out->u.vm.svm_cid = c;
    out->u.vm.svm_port = port;
    return 0;
}

/* socat's address forms, VSOCK-CONNECT:CID:PORT and VSOCK-LISTEN:PORT (any
 * case, as socat takes them): they choose --vsock, and -l for LISTEN. Returns
 * the rest of the address, or NULL when text is not one of them. */
static const char *socat_form(const char *text, int *vsock, int *listening)
{
    static const char conn[] = "VSOCK-CONNECT:", lis[] = "VSOCK-LISTEN:";

    if (strncasecmp(text, conn, sizeof(conn) - 1) == 0) {
        *vsock = 1;
        return text + sizeof(conn) - 1;
    }
    if (strncasecmp(text, lis, sizeof(lis) - 1) == 0) {
        *vsock = 1;
        *listening = 1;
        return text + sizeof(lis) - 1;
    }
    return NULL;
}

static const char *addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char vm[HVSIM_GUID_STRLEN], svc[HVSIM_GUID_STRLEN];

    if (sa->sa_family == AF_HYPERV) {
        SOCKADDR_HV a;

        memcpy(&a, sa, sizeof(a));
        snprintf(buf, len, "{%s}:{%s}", hvsim_guid_format(&a.VmId, vm), hvsim_guid_format(&a.ServiceId, svc));
    } else {
        struct sockaddr_vm a;

        memcpy(&a, sa, sizeof(a));
        snprintf(buf, len, "%u:%u", a.svm_cid, a.svm_port);
    }
    return buf;
}

static void print_names(int fd, const char *what)
{
    struct sockaddr_storage l, p;
    socklen_t ll = sizeof(l), pl = sizeof(p);
    char lt[ADDR_TEXT], pt[ADDR_TEXT];

    if (hvsim_getsockname(fd, (struct sockaddr *)&l, &ll) < 0) {
        sock_fail(errno, "getsockname");
        return;
    }
    if (hvsim_getpeername(fd, (struct sockaddr *)&p, &pl) < 0) {
        sock_fail(errno, "getpeername");
        return;
    }
    fprintf(stderr, "hvcat: %s: local %s, peer %s\n", what, addr_text((struct sockaddr *)&l, lt, sizeof(lt)),
            addr_text((struct sockaddr *)&p, pt, sizeof(pt)));
}

/* ---- the copy loop -------------------------------------------------------------- */

struct half {
    char buf[BUF_SIZE];
    size_t off, len;
    int eof; /* the source ended */
    int done; /* ... and everything read was delivered */
};

static struct half up; /* stdin -> socket */
static struct half down; /* socket -> stdout */
static int close_at_eof; /* -c */

static int write_stdout(void)
{
    ssize_t w = write(STDOUT_FILENO, down.buf + down.off, down.len - down.off);

    if (w < 0 && errno != EINTR && errno != EAGAIN)
        return fail("writing to stdout: %s", strerror(errno));
    if (w > 0)
        down.off += (size_t)w;
    return 0;
}

/*
 * Both directions at once, never blocking on the socket: two hvcats sending
 * to each other would otherwise both sit in send() with full buffers. stdin
 * and stdout stay blocking (making them non-blocking would change them for
 * every process that shares them, a terminal for one); poll says when a read
 * will not wait.
 */
static int pump(int fd)
{
    if (fcntl(STDIN_FILENO, F_GETFD) < 0)
        up.eof = 1; /* no stdin at all: nothing to send */
    while (!up.done || !down.done) {
        struct pollfd p[3];
        int n = 0, in_i = -1, out_i = -1, s_i = -1;
        short sev = 0;

        if (!up.done && up.eof && up.off == up.len && close_at_eof)
            return 0; /* -c: main() closes the socket with the peer's data unread */
        if (!up.done && up.eof && up.off == up.len) {
            /* Everything sent: the peer reads EOF after our data. */
            if (hvsim_shutdown(fd, SHUT_WR) < 0)
                return sock_fail(errno, "shutdown(SHUT_WR)");
            up.done = 1;
        }
        if (!down.done && down.eof && down.off == down.len)
            down.done = 1;
        if (up.done && down.done)
            break;
        if (!up.done && up.off == up.len) {
            in_i = n;
            p[n++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
        } else if (!up.done) {
            sev |= POLLOUT;
        }
        if (!down.done && down.off == down.len) {
            sev |= POLLIN;
        } else if (!down.done) {
            out_i = n;
            p[n++] = (struct pollfd){ .fd = STDOUT_FILENO, .events = POLLOUT };
        }
        /* With no interest the socket still reports POLLHUP; leaving it out
         * keeps poll from spinning while only stdin or stdout matters. */
        if (sev) {
            s_i = n;
            p[n++] = (struct pollfd){ .fd = fd, .events = sev };
        }
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            return fail("poll: %s", strerror(errno));
        }
        if (in_i >= 0 && p[in_i].revents) {
            ssize_t r = (p[in_i].revents & POLLNVAL) ? 0 : read(STDIN_FILENO, up.buf, sizeof(up.buf));

            if (r < 0 && errno != EINTR && errno != EAGAIN)
                return fail("reading stdin: %s", strerror(errno));
            if (r == 0)
                up.eof = 1;
            if (r > 0) {
                up.off = 0;
                up.len = (size_t)r;
            }
        }
        if (s_i >= 0 && (p[s_i].revents & (POLLOUT | POLLERR | POLLHUP)) && up.off < up.len) {
            /* MSG_NOSIGNAL: a peer that went away is an error to report, not
             * a SIGPIPE that ends us silently. */
            ssize_t w = hvsim_send(fd, up.buf + up.off, up.len - up.off, MSG_DONTWAIT | MSG_NOSIGNAL);

            if (w < 0 && errno != EAGAIN && errno != EINTR)
                return sock_fail(errno, "send");
            if (w > 0)
                up.off += (size_t)w;
        }
        if (s_i >= 0 && (p[s_i].revents & (POLLIN | POLLERR | POLLHUP)) && down.off == down.len && !down.eof) {
            ssize_t r = hvsim_recv(fd, down.buf, sizeof(down.buf), MSG_DONTWAIT);

            if (r < 0 && errno != EAGAIN && errno != EINTR)
                return sock_fail(errno, "recv");
            if (r == 0)
                down.eof = 1;
            if (r > 0) {
                down.off = 0;
                down.len = (size_t)r;
                /* Usually stdout takes it at once; no need for another poll round. */
                if (write_stdout() != 0)
                    return EXIT_FAIL;
            }
        }
        if (out_i >= 0 && p[out_i].revents) {
            if (p[out_i].revents & (POLLERR | POLLNVAL))
                return fail("writing to stdout: %s", (p[out_i].revents & POLLNVAL) ? "stdout is closed" : "error");
            if (write_stdout() != 0)
                return EXIT_FAIL;
        }
    }
    return 0;
}

/* ---- main ----------------------------------------------------------------------- */

static int set_timeout(int fd, int vsock, uint32_t ms)
{
    if (vsock) {
        struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

        return hvsim_setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv));
    }
    return hvsim_setsockopt(fd, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &(ULONG){ ms }, sizeof(ULONG));
}

static int attach_hint(int err)
{
    char dir[PATH_MAX];
    const char *part = getenv("HVSIM_PARTITION");

    /* ENETDOWN from socket() is "no Hyper-V here"; here that means no daemon
     * or a partition it does not know. */
    if (err == ENETDOWN)
        fprintf(stderr, "hvcat: is hvsimd running in %s, and is HVSIM_PARTITION ('%s') the host or a VM's name?\n",
                hvsim__default_dir(dir, sizeof(dir)), part && *part ? part : "host");
    return EXIT_FAIL;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "listen", no_argument, NULL, 'l' },  { "vsock", no_argument, NULL, 'V' },
        { "timeout", required_argument, NULL, 't' }, { "verbose", no_argument, NULL, 'v' },
        { "close", no_argument, NULL, 'c' },   { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'R' }, { "shut-rd", no_argument, NULL, 'S' },
        { NULL, 0, NULL, 0 },
    };
    struct address addr = { 0 };
    char text[ADDR_TEXT];
    const char *timeout_text = NULL, *target;
    int listening = 0, vsock = 0, verbose = 0, shut_rd = 0, c, fd, rc;
    uint32_t timeout = 0;

    while ((c = getopt_long(argc, argv, "lt:vch", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            close_at_eof = 1;
            break;
        case 'l':
            listening = 1;
            break;
        case 'V':
            vsock = 1;
            break;
        case 't':
            timeout_text = optarg;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'R':
            return hvsim__cli_version("hvcat");
        case 'S':
            shut_rd = 1;
            break;
        default:
            fputs(usage_text, stderr);
            return EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "hvcat: %s\n%s", optind == argc ? "missing the ADDRESS" : "more than one ADDRESS",
                usage_text);
        return EXIT_USAGE;
    }
    target = socat_form(argv[optind], &vsock, &listening);
    if (target == NULL)
        target = argv[optind];
    if (timeout_text && listening) {
        fprintf(stderr, "hvcat: -t is the connect timeout; it does not apply to -l\n%s", usage_text);
        return EXIT_USAGE;
    }
    if (timeout_text && parse_u32(timeout_text, &timeout) < 0)
        return fail("-t '%s': expected milliseconds, a number from 0 to 4294967295", timeout_text);
    addr.vsock = vsock;
    personality = vsock ? HVSIM_CLI_LINUX : HVSIM_CLI_WINDOWS;
    rc = vsock ? parse_vsock(target, listening, &addr) : parse_hv(target, &addr);
    if (rc != 0)
        return rc;
    addr_text((struct sockaddr *)&addr.u, text, sizeof(text));

    fd = hvsim_socket(vsock ? AF_VSOCK : AF_HYPERV, SOCK_STREAM | SOCK_CLOEXEC, vsock ? 0 : HV_PROTOCOL_RAW);
    if (fd < 0) {
        int err = errno;

        sock_fail(err, "socket(%s)", vsock ? "AF_VSOCK" : "AF_HYPERV");
        return attach_hint(err);
    }
    if (listening) {
        int conn;

        if (hvsim_bind(fd, (struct sockaddr *)&addr.u, addr.len) < 0)
            return sock_fail(errno, "bind to %s", text);
        if (hvsim_listen(fd, 1) < 0)
            return sock_fail(errno, "listen on %s", text);
        if (verbose) {
            struct sockaddr_storage l;
            socklen_t ll = sizeof(l);
            char lt[ADDR_TEXT];

            if (hvsim_getsockname(fd, (struct sockaddr *)&l, &ll) == 0)
                fprintf(stderr, "hvcat: listening on %s\n", addr_text((struct sockaddr *)&l, lt, sizeof(lt)));
        }
        do
            conn = hvsim_accept(fd, NULL, NULL);
        while (conn < 0 && errno == EINTR);
        if (conn < 0)
            return sock_fail(errno, "accept on %s", text);
        /* One connection only: with the listener gone, later connectors see
         * what they would see with nobody listening. */
        hvsim_close(fd);
        fd = conn;
        if (verbose)
            print_names(fd, "accepted");
    } else {
        if (timeout_text && set_timeout(fd, vsock, timeout) < 0)
            return sock_fail(errno, "connect timeout %s ms", timeout_text);
        if (hvsim_connect(fd, (struct sockaddr *)&addr.u, addr.len) < 0)
            return sock_fail(errno, "connect to %s", text);
        if (verbose)
            print_names(fd, "connected");
    }
    if (shut_rd) {
        if (hvsim_shutdown(fd, SHUT_RD) < 0)
            return sock_fail(errno, "shutdown(SHUT_RD)");
        down.eof = down.done = 1;
    }
    rc = pump(fd);
    if (hvsim_close(fd) < 0 && rc == 0)
        rc = sock_fail(errno, "close");
    return rc;
}
