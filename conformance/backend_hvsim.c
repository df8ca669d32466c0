/* SPDX-License-Identifier: MIT */
/*
 * backend_hvsim.c: backend.h over libhvsim, for the simulator. Both agents
 * are libhvsim processes: the host side attached as the host partition, the
 * guest side as the VM under test (HVSIM_DIR, HVSIM_PARTITION), speaking
 * AF_HYPERV or AF_VSOCK as the column asks. Administration goes to the
 * daemon's admin socket from the host side; every change is reported to the
 * agent (cf__note_admin) so the framework can undo it after the case.
 *
 * Only the forked case children attach to the daemon: the agents' own
 * processes never do, so a case that resets the VM under test with
 * reset_kills_guests=1 ends that case's child, never the guest agent.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "backend_posix.h"
#include "hvsim/hvsim.h"

_Static_assert(sizeof(cf_guid_t) == sizeof(GUID), "cf_guid_t and GUID share a layout");

/* Which family each fd was made with: the options and names differ. */
#define FAM_NONE 0
#define FAM_HV 1
#define FAM_VS 2
#define FAM_SLOTS 65536
static unsigned char fam_of[FAM_SLOTS];

static int family(cf_sock_t s)
{
    int v = 0;
    socklen_t l = sizeof(v);

    if (s >= 0 && s < FAM_SLOTS && fam_of[s] != FAM_NONE)
        return fam_of[s];
    /* Not one we made (a case's own raw fd): level 1 is SOL_SOCKET for the
     * vsock personality, which knows SO_DOMAIN; the Windows one does not. */
    if (hvsim_getsockopt((int)s, SOL_SOCKET, SO_DOMAIN, &v, &l) == 0 && v == AF_VSOCK)
        return FAM_VS;
    return FAM_HV;
}

static void remember(cf_sock_t s, int fam)
{
    if (s >= 0 && s < FAM_SLOTS)
        fam_of[s] = (unsigned char)fam;
}

static GUID to_guid(const cf_guid_t *g)
{
    GUID r;

    memcpy(&r, g, sizeof(r));
    return r;
}

static cf_guid_t from_guid(const GUID *g)
{
    cf_guid_t r;

    memcpy(&r, g, sizeof(r));
    return r;
}

const char *cf_backend_name(void)
{
    return "hvsim";
}

int cf_backend_init(void)
{
    const char *dir = getenv("HVSIM_DIR"), *part = getenv("HVSIM_PARTITION");
    int pipefd[2], st = 0;
    char msg[256] = "";
    pid_t pid;
    ssize_t n;

    /* Attach once in a throwaway child, so a wrong HVSIM_DIR or partition is
     * one clear message now rather than a failure in every case. */
    if (pipe(pipefd) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -errno;
    }
    if (pid == 0) {
        GUID id;
        char name[HVSIM_NAME_MAX];
        int rc;

        close(pipefd[0]);
        rc = hvsim_self(&id, name, sizeof(name));
        if (rc < 0) {
            snprintf(msg, sizeof(msg), "%s (%s)", hvsim_err_name(rc), hvsim_strerror(rc));
            (void)!write(pipefd[1], msg, strlen(msg));
        }
        _exit(rc < 0 ? 1 : 0);
    }
    close(pipefd[1]);
    n = read(pipefd[0], msg, sizeof(msg) - 1);
    close(pipefd[0]);
    msg[n > 0 ? n : 0] = '\0';
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "hvsim-agent: cannot attach to hvsimd as partition '%s' (HVSIM_DIR=%s): %s\n",
                part && *part ? part : "host", dir && *dir ? dir : "(default)", msg[0] ? msg : "the probe failed");
        return -ENETDOWN;
    }
    return 0;
}

void cf__backend_abort_case(void)
{
}

/* ---- sockets ---------------------------------------------------------------------- */

static int make(int domain, int type, int protocol, int fam, cf_sock_t *out)
{
    int fd = hvsim_socket(domain, type, protocol);

    if (fd < 0)
        return -errno;
    remember(fd, fam);
    *out = fd;
    return 0;
}

int cf_socket(enum cf_family fam, int nonblock, cf_sock_t *out)
{
    int type = SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0);

    if (fam == CF_AF_HYPERV)
        return make(AF_HYPERV, type, HV_PROTOCOL_RAW, FAM_HV, out);
    if (fam == CF_AF_VSOCK)
        return make(AF_VSOCK, type, 0, FAM_VS, out);
    return -EAFNOSUPPORT;
}

/* family: CF_AF_HYPERV or AF_HYPERV (34), CF_AF_VSOCK or AF_VSOCK (40); any
 * other number goes to socket() as it is, for the bad-family cases. */
int cf_socket_raw(int family_, int type, int protocol, cf_sock_t *out)
{
    if (family_ == CF_AF_HYPERV || family_ == AF_HYPERV)
        return make(AF_HYPERV, type, protocol, FAM_HV, out);
    if (family_ == CF_AF_VSOCK || family_ == AF_VSOCK)
        return make(AF_VSOCK, type, protocol, FAM_VS, out);
    return make(family_, type, protocol, FAM_NONE, out);
}

int cf_close(cf_sock_t s)
{
    if (s >= 0 && s < FAM_SLOTS)
        fam_of[s] = FAM_NONE;
    return CF_ERR(hvsim_close((int)s));
}

static SOCKADDR_HV hv_addr(const cf_guid_t *vm, const cf_guid_t *svc)
{
    SOCKADDR_HV a;

    memset(&a, 0, sizeof(a));
    a.Family = AF_HYPERV;
    a.VmId = to_guid(vm);
    a.ServiceId = to_guid(svc);
    return a;
}

static struct sockaddr_vm vs_addr(uint32_t cid, uint32_t port)
{
    struct sockaddr_vm a;

    memset(&a, 0, sizeof(a));
    a.svm_family = AF_VSOCK;
    a.svm_cid = cid;
    a.svm_port = port;
    return a;
}

int cf_bind_hv(cf_sock_t s, const cf_guid_t *vm, const cf_guid_t *svc)
{
    SOCKADDR_HV a = hv_addr(vm, svc);

    return CF_ERR(hvsim_bind((int)s, (struct sockaddr *)&a, sizeof(a)));
}

int cf_bind_vsock(cf_sock_t s, uint32_t cid, uint32_t port)
{
    struct sockaddr_vm a = vs_addr(cid, port);

    return CF_ERR(hvsim_bind((int)s, (struct sockaddr *)&a, sizeof(a)));
}

int cf_bind_raw(cf_sock_t s, const void *addr, int len)
{
    return CF_ERR(hvsim_bind((int)s, (const struct sockaddr *)addr, (socklen_t)len));
}

int cf_connect_raw(cf_sock_t s, const void *addr, int len)
{
    return CF_ERR(hvsim_connect((int)s, (const struct sockaddr *)addr, (socklen_t)len));
}

int cf_listen(cf_sock_t s, int backlog)
{
    return CF_ERR(hvsim_listen((int)s, backlog));
}

int cf_accept(cf_sock_t l, cf_sock_t *out)
{
    int fd = hvsim_accept((int)l, NULL, NULL);

    if (fd < 0)
        return -errno;
    remember(fd, family(l));
    *out = fd;
    return 0;
}

int cf_connect_hv(cf_sock_t s, const cf_guid_t *vm, const cf_guid_t *svc)
{
    SOCKADDR_HV a = hv_addr(vm, svc);

    return CF_ERR(hvsim_connect((int)s, (struct sockaddr *)&a, sizeof(a)));
}

int cf_connect_vsock(cf_sock_t s, uint32_t cid, uint32_t port)
{
    struct sockaddr_vm a = vs_addr(cid, port);

    return CF_ERR(hvsim_connect((int)s, (struct sockaddr *)&a, sizeof(a)));
}

long cf_send(cf_sock_t s, const void *buf, size_t len, int flags)
{
    ssize_t r = hvsim_send((int)s, buf, len, cf__posix_msg_flags(flags));

    return r < 0 ? -errno : (long)r;
}

long cf_recv(cf_sock_t s, void *buf, size_t len, int flags)
{
    ssize_t r = hvsim_recv((int)s, buf, len, cf__posix_msg_flags(flags));

    return r < 0 ? -errno : (long)r;
}

int cf_shutdown(cf_sock_t s, int how)
{
    return CF_ERR(hvsim_shutdown((int)s, cf__posix_shut_how(how)));
}

/* getpeername or getsockname into a (zeroed first), as 0 or -errno. */
static int get_name(cf_sock_t s, int peer, void *a, socklen_t len)
{
    memset(a, 0, len);
    return CF_ERR(peer ? hvsim_getpeername((int)s, (struct sockaddr *)a, &len)
                       : hvsim_getsockname((int)s, (struct sockaddr *)a, &len));
}

int cf_name_hv(cf_sock_t s, int peer, cf_guid_t *vm, cf_guid_t *svc)
{
    SOCKADDR_HV a;
    int rc;

    if (family(s) != FAM_HV)
        return -EAFNOSUPPORT;
    if ((rc = get_name(s, peer, &a, sizeof(a))) < 0)
        return rc;
    if (vm)
        *vm = from_guid(&a.VmId);
    if (svc)
        *svc = from_guid(&a.ServiceId);
    return 0;
}

int cf_name_vsock(cf_sock_t s, int peer, uint32_t *cid, uint32_t *port)
{
    struct sockaddr_vm a;
    int rc;

    if (family(s) != FAM_VS)
        return -EAFNOSUPPORT;
    if ((rc = get_name(s, peer, &a, sizeof(a))) < 0)
        return rc;
    if (cid)
        *cid = a.svm_cid;
    if (port)
        *port = a.svm_port;
    return 0;
}

int cf_local_cid(uint32_t *cid)
{
    return CF_ERR(hvsim_get_local_cid(cid));
}

int cf_vsock_queue(cf_sock_t s, int outq, int *bytes)
{
    return CF_ERR(hvsim_ioctl((int)s, outq ? SIOCOUTQ : SIOCINQ, bytes));
}

int cf_set_rcvlowat(cf_sock_t s, int bytes)
{
    return CF_ERR(hvsim_setsockopt((int)s, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof(bytes)));
}

int cf_set_linger(cf_sock_t s, int on, int secs)
{
    struct linger l = { .l_onoff = on, .l_linger = secs };

    return CF_ERR(hvsim_setsockopt((int)s, SOL_SOCKET, SO_LINGER, &l, sizeof(l)));
}

int cf_get_linger(cf_sock_t s, int *on, int *secs)
{
    struct linger l = { 0, 0 };
    socklen_t n = sizeof(l);
    int rc = CF_ERR(hvsim_getsockopt((int)s, SOL_SOCKET, SO_LINGER, &l, &n));

    *on = l.l_onoff;
    *secs = l.l_linger;
    return rc;
}

int cf_set_zerocopy(cf_sock_t s, int on)
{
    return CF_ERR(hvsim_setsockopt((int)s, SOL_SOCKET, SO_ZEROCOPY, &on, sizeof(on)));
}

int cf_get_zerocopy(cf_sock_t s, int *on)
{
    socklen_t n = sizeof(*on);

    *on = -1;
    return CF_ERR(hvsim_getsockopt((int)s, SOL_SOCKET, SO_ZEROCOPY, on, &n));
}

long cf_send_zerocopy(cf_sock_t s, const void *buf, size_t len)
{
    ssize_t r = hvsim_send((int)s, buf, len, MSG_ZEROCOPY | MSG_NOSIGNAL);

    return r < 0 ? -errno : (long)r;
}

int cf_zerocopy_completion(cf_sock_t s, uint32_t *lo, uint32_t *hi, int *copied)
{
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in))];
    } c;
    struct msghdr m = { .msg_control = c.b, .msg_controllen = sizeof(c.b) };
    struct sock_extended_err ee;
    struct cmsghdr *h;

    if (hvsim_recvmsg((int)s, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
        return -errno;
    h = CMSG_FIRSTHDR(&m);
    if (h == NULL || h->cmsg_level != CF_SOL_VSOCK || h->cmsg_type != CF_VSOCK_RECVERR ||
        h->cmsg_len < CMSG_LEN(sizeof(ee)))
        return -EBADMSG;
    memcpy(&ee, CMSG_DATA(h), sizeof(ee));
    if (ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY || ee.ee_errno != 0)
        return -EBADMSG;
    *lo = ee.ee_info;
    *hi = ee.ee_data;
    *copied = (ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED) != 0;
    return 0;
}

unsigned cf_kernel_version(void)
{
    uint32_t t = 0, k = 0;

    return hvsim_self_vsock(&t, &k) == 0 ? k : 0;
}

/* ---- options (readiness: backend_posix.c) --------------------------------------------------------- */

int cf_set_connect_timeout(cf_sock_t s, uint32_t ms)
{
    if (family(s) == FAM_HV) {
        ULONG v = ms;

        return CF_ERR(hvsim_setsockopt((int)s, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &v, sizeof(v)));
    } else {
        struct timeval tv = cf__posix_timeval(ms);

        return CF_ERR(hvsim_setsockopt((int)s, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv)));
    }
}

int cf_get_connect_timeout(cf_sock_t s, uint32_t *ms)
{
    if (family(s) == FAM_HV) {
        ULONG v = 0;
        socklen_t l = sizeof(v);

        if (hvsim_getsockopt((int)s, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, &v, &l) < 0)
            return -errno;
        *ms = v;
    } else {
        struct timeval tv;
        socklen_t l = sizeof(tv);

        if (hvsim_getsockopt((int)s, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, &l) < 0)
            return -errno;
        *ms = cf__posix_ms(&tv);
    }
    return 0;
}

int cf_set_connected_suspend(cf_sock_t s, int on)
{
    ULONG v = on ? 1 : 0;

    if (family(s) != FAM_HV)
        return -ENOPROTOOPT; /* an AF_HYPERV option: vsock has no such level */
    return CF_ERR(hvsim_setsockopt((int)s, HV_PROTOCOL_RAW, HVSOCKET_CONNECTED_SUSPEND, &v, sizeof(v)));
}

int cf_so_error(cf_sock_t s)
{
    uint32_t v = 0;
    socklen_t l = sizeof(v);

    if (family(s) == FAM_HV) {
        /* Winsock's SO_ERROR is a WSAE* code: map it back as Windows' would be. */
        if (hvsim_getsockopt((int)s, HVSIM_WSA_SOL_SOCKET, HVSIM_WSA_SO_ERROR, &v, &l) < 0)
            return -errno;
        return -cf__errno_from_wsa((int)v);
    }
    if (hvsim_getsockopt((int)s, SOL_SOCKET, SO_ERROR, &v, &l) < 0)
        return -errno;
    return -(int)v;
}

/* ---- administration ------------------------------------------------------------------ */

/* A fresh admin connection per call: cheap, and nothing is shared across the
 * agent's forks. */
static int admin_open(hvsim_admin_t **a)
{
    int rc = cf__admin_allowed();

    if (rc < 0)
        return rc;
    rc = hvsim_admin_open(NULL, a);
    if (rc < 0)
        fprintf(stderr, "hvsim-agent: cannot reach hvsimd's admin socket (HVSIM_DIR=%s): %s\n",
                getenv("HVSIM_DIR") ? getenv("HVSIM_DIR") : "(default)", hvsim_err_name(rc));
    return rc;
}

static int admin_done(hvsim_admin_t *a, int rc, const char *what)
{
    /* The daemon's reason goes to stderr: a case only sees the errno. */
    if (rc < 0 && what != NULL)
        fprintf(stderr, "hvsim-agent: %s: %s (%s)\n", what, hvsim_err_name(rc), hvsim_admin_errmsg(a));
    hvsim_admin_close(a);
    return rc;
}

/* The element name of a registered service: 1, or 0 when it is not registered. */
static int service_name(hvsim_admin_t *a, const GUID *g, char name[HVSIM_ELEMENT_NAME_MAX])
{
    hvsim_service_info_t *list = NULL;
    size_t n = 0, i;
    int found = 0;

    name[0] = '\0';
    if (hvsim_admin_service_list(a, &list, &n) < 0)
        return 0;
    for (i = 0; i < n; i++) {
        if (hvsim_guid_equal(&list[i].id, g)) {
            snprintf(name, HVSIM_ELEMENT_NAME_MAX, "%s", list[i].element_name);
            found = 1;
        }
    }
    free(list);
    return found;
}

int cf_admin_service_add(const cf_guid_t *svc, const char *element_name)
{
    hvsim_admin_t *a;
    char old[HVSIM_ELEMENT_NAME_MAX];
    GUID g = to_guid(svc);
    int rc = admin_open(&a), existed;

    if (rc < 0)
        return rc;
    existed = service_name(a, &g, old);
    rc = hvsim_admin_service_add(a, &g, element_name ? element_name : "hvsim conformance");
    /* Adding a registered service renames it (as writing the registry value
     * does): the undo is to write the old name back, not to remove it. */
    if (rc == 0)
        cf__note_admin(existed ? CF_NOTE_SERVICE_RM : CF_NOTE_SERVICE_ADD, svc, NULL, existed ? old : NULL);
    return admin_done(a, rc, "service add");
}

int cf_admin_service_rm(const cf_guid_t *svc)
{
    hvsim_admin_t *a;
    char name[HVSIM_ELEMENT_NAME_MAX];
    GUID g = to_guid(svc);
    int rc = admin_open(&a);

    if (rc < 0)
        return rc;
    /* Keep the element name, to register the service again afterwards. */
    (void)service_name(a, &g, name);
    rc = hvsim_admin_service_rm(a, &g);
    if (rc == 0)
        cf__note_admin(CF_NOTE_SERVICE_RM, svc, NULL, name);
    return admin_done(a, rc, rc == -ENOENT ? NULL : "service rm");
}

int cf_admin_vm_op(const cf_guid_t *vm, const char *op)
{
    hvsim_admin_t *a;
    char id[37];
    int rc = admin_open(&a);

    if (rc < 0)
        return rc;
    cf_guid_format(vm, id);
    rc = hvsim_admin_vm_op(a, id, op);
    if (rc == 0)
        cf__note_admin(CF_NOTE_VM_OP, vm, NULL, op);
    return admin_done(a, rc, "vm op");
}

int cf_admin_set(const char *setting, const char *value)
{
    hvsim_admin_t *a;
    char old[256], note[320];
    int rc = admin_open(&a);

    if (rc < 0)
        return rc;
    rc = hvsim_admin_setting_get(a, setting, old, sizeof(old));
    if (rc < 0)
        return admin_done(a, rc, "setting get");
    /* Noted before the change: a case killed right after it still has it undone. */
    snprintf(note, sizeof(note), "%s=%s", setting, old);
    cf__note_admin(CF_NOTE_SET, NULL, NULL, note);
    rc = hvsim_admin_setting_set(a, setting, value);
    return admin_done(a, rc, "setting set");
}

int cf_admin_hcs(const cf_guid_t *vm, const cf_guid_t *svc, int bind_deny, int connect_deny, int allow_wildcard,
                 int disabled)
{
    hvsim_admin_t *a;
    hvsim_hcs_service_t h;
    char id[37];
    int rc = admin_open(&a);

    if (rc < 0)
        return rc;
    memset(&h, 0, sizeof(h));
    h.id = to_guid(svc);
    h.bind_deny = bind_deny != 0;
    h.connect_deny = connect_deny != 0;
    h.allow_wildcard_binds = allow_wildcard != 0;
    h.disabled = disabled != 0;
    cf_guid_format(vm, id);
    rc = hvsim_admin_hcs_set(a, id, &h);
    if (rc == 0 && (bind_deny || connect_deny || allow_wildcard || disabled))
        cf__note_admin(CF_NOTE_HCS, vm, svc, NULL);
    return admin_done(a, rc, "hcs set");
}

int cf__admin_vm_restore(const cf_guid_t *vm)
{
    hvsim_admin_t *a;
    hvsim_vm_info_t *list = NULL;
    GUID g = to_guid(vm);
    size_t n = 0, i;
    int rc = admin_open(&a), state = -1;
    char id[37];

    if (rc < 0)
        return rc;
    rc = hvsim_admin_vm_list(a, &list, &n);
    if (rc < 0)
        return admin_done(a, rc, "vm list");
    for (i = 0; i < n; i++)
        if (hvsim_guid_equal(&list[i].id, &g))
            state = (int)list[i].state;
    free(list);
    cf_guid_format(vm, id);
    if (state < 0)
        rc = -ENOENT;
    else if (state == HVSIM_VM_PAUSED)
        rc = hvsim_admin_vm_op(a, id, "resume");
    else if (state == HVSIM_VM_OFF)
        rc = hvsim_admin_vm_op(a, id, "start");
    return admin_done(a, rc, rc == -ENOENT ? NULL : "vm restore");
}

int cf_join_vm(const cf_guid_t *vm)
{
    hvsim_vm_info_t *list = NULL;
    hvsim_admin_t *a;
    size_t i, n = 0;
    GUID want;
    int rc;

    /* The partition is chosen when the process first attaches, which in the
     * agent is inside the case's own child: setting it now is in time. The
     * admin socket only maps the id to the VM's name. */
    rc = hvsim_admin_open(NULL, &a);
    if (rc < 0)
        return rc;
    rc = hvsim_admin_vm_list(a, &list, &n);
    hvsim_admin_close(a);
    if (rc < 0)
        return rc;
    memcpy(&want, vm, sizeof(want));
    rc = -ENOENT;
    for (i = 0; i < n; i++) {
        if (hvsim_guid_equal(&list[i].id, &want)) {
            setenv("HVSIM_PARTITION", list[i].name, 1);
            rc = 0;
        }
    }
    free(list);
    return rc;
}

/* ---- The send/receive family (cases/cases_msg.c): backend_posix.c's, with libhvsim's calls ---- */

static const struct cf__posix_msg_calls calls = {
    .sendto = hvsim_sendto, .recvfrom = hvsim_recvfrom, .sendmsg = hvsim_sendmsg, .recvmsg = hvsim_recvmsg
};

long cf_sendto_hv(cf_sock_t s, const void *buf, size_t len, const cf_guid_t *vm, const cf_guid_t *svc)
{
    SOCKADDR_HV a = hv_addr(vm, svc);

    return cf__posix_sendto(&calls, s, buf, len, (struct sockaddr *)&a, sizeof(a));
}

long cf_sendto_vsock(cf_sock_t s, const void *buf, size_t len, uint32_t cid, uint32_t port)
{
    struct sockaddr_vm a = vs_addr(cid, port);

    return cf__posix_sendto(&calls, s, buf, len, (struct sockaddr *)&a, sizeof(a));
}

long cf_recvfrom(cf_sock_t s, void *buf, size_t len, int flags, int *addrlen)
{
    return cf__posix_recvfrom(&calls, s, buf, len, flags, addrlen);
}

long cf_sendmsg(cf_sock_t s, const cf_buf_t *bufs, int n, int flags)
{
    return cf__posix_sendmsg(&calls, s, bufs, n, flags);
}

long cf_recvmsg(cf_sock_t s, cf_buf_t *bufs, int n, int flags, int *namelen, int *ctllen)
{
    return cf__posix_recvmsg(&calls, s, bufs, n, flags, namelen, ctllen);
}

long cf_recv_flags(cf_sock_t s, void *buf, size_t len, int flags, int *out_flags)
{
    return cf__posix_recv_flags(&calls, s, buf, len, flags, out_flags);
}

int cf_get_sock_buf(cf_sock_t s, int rcv, int *bytes)
{
    socklen_t l = sizeof(*bytes);

    return hvsim_getsockopt((int)s, SOL_SOCKET, rcv ? SO_RCVBUF : SO_SNDBUF, bytes, &l) < 0 ? -errno : 0;
}
