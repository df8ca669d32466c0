/* SPDX-License-Identifier: MIT */
/*
 * backend_winsock.c: backend.h over Winsock's AF_HYPERV, for a real Hyper-V
 * host (the host side) or a Windows VM (the guest side of the column
 * windows). Built with mingw-w64; its hvsocket.h has the SDK's constants and
 * SOCKADDR_HV, and AF_HYPERV (34) is defined here where ws2def.h stops at 33.
 *
 * Errors are WSAE* codes mapped to POSIX errnos by the one table in
 * backend_common.c (libhvsim's codes), and nothing else: what Winsock says is
 * what the case sees, so a non-blocking connect under way is WSAEWOULDBLOCK,
 * EAGAIN, as on Windows (where POSIX would say EINPROGRESS). MSG_DONTWAIT,
 * which Winsock lacks, is a zero-time readiness check before the call.
 *
 * Administration: only service registration, by writing the host's registry
 * (GuestCommunicationServices\<GUID>, value ElementName, reference 2.2); that
 * needs an elevated agent. VM operations and settings are ENOTSUP here
 * (backend_noadmin.c).
 *
 * There is no fork on Windows: the agent runs a case inline, and its watchdog
 * ends a case stuck in a blocking call by closing every socket the case holds
 * (cf__backend_abort_case), which is also how the agent cleans up after a case.
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <hvsocket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

#ifndef AF_HYPERV
#define AF_HYPERV 34
#endif
#ifndef HVSOCKET_CONNECTED_SUSPEND
#define HVSOCKET_CONNECTED_SUSPEND 0x04
#endif

_Static_assert(sizeof(SOCKADDR_HV) == 36, "SOCKADDR_HV is 36 bytes");
_Static_assert(sizeof(cf_guid_t) == sizeof(GUID), "cf_guid_t and GUID share a layout");

#define AF_VSOCK_LINUX 40 /* only ever handed to socket() for its refusal */

static int wsa_err(void)
{
    return -cf__errno_from_wsa(WSAGetLastError());
}

const char *cf_backend_name(void)
{
    return "winsock";
}

/* ---- the case's sockets, for the watchdog ----------------------------------------- */

#define TRACK_MAX 1024
static CRITICAL_SECTION track_lock;
static SOCKET live[TRACK_MAX], dead[TRACK_MAX];
static size_t nlive, ndead;

static void drop(SOCKET *list, size_t *n, SOCKET s)
{
    size_t i;

    for (i = 0; i < *n; i++) {
        if (list[i] == s) {
            list[i] = list[--*n];
            return;
        }
    }
}

static int contains(const SOCKET *list, size_t n, SOCKET s)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (list[i] == s)
            return 1;
    return 0;
}

static void track(SOCKET s)
{
    EnterCriticalSection(&track_lock);
    /* A handle the watchdog closed may be handed out again. */
    drop(dead, &ndead, s);
    if (nlive < TRACK_MAX)
        live[nlive++] = s;
    LeaveCriticalSection(&track_lock);
}

void cf__backend_abort_case(void)
{
    size_t i;

    EnterCriticalSection(&track_lock);
    for (i = 0; i < nlive; i++) {
        closesocket(live[i]);
        if (ndead == TRACK_MAX)
            ndead = 0; /* forget the oldest: they were closed long ago */
        dead[ndead++] = live[i];
    }
    nlive = 0;
    LeaveCriticalSection(&track_lock);
}

int cf_backend_init(void)
{
    WSADATA d;
    int rc;

    InitializeCriticalSection(&track_lock);
    rc = WSAStartup(MAKEWORD(2, 2), &d);
    if (rc != 0) {
        fprintf(stderr, "hvsim-agent: WSAStartup failed with %d\n", rc);
        return -cf__errno_from_wsa(rc);
    }
    return 0;
}

/* ---- sockets ---------------------------------------------------------------------- */

static int make(int family, int type, int protocol, int nonblock, cf_sock_t *out)
{
    SOCKET s = socket(family, type, protocol);

    if (s == INVALID_SOCKET)
        return wsa_err();
    if (nonblock) {
        u_long one = 1;

        if (ioctlsocket(s, FIONBIO, &one) != 0) {
            int e = wsa_err();

            closesocket(s);
            return e;
        }
    }
    track(s);
    *out = (cf_sock_t)s;
    return 0;
}

int cf_socket(enum cf_family fam, int nonblock, cf_sock_t *out)
{
    if (fam != CF_AF_HYPERV)
        return -EAFNOSUPPORT; /* no AF_VSOCK on Windows */
    return make(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW, nonblock, out);
}

/* family: CF_AF_HYPERV or AF_HYPERV (34); CF_AF_VSOCK goes to socket() as
 * Linux's AF_VSOCK (40), for Winsock's own refusal; anything else as it is. */
int cf_socket_raw(int family, int type, int protocol, cf_sock_t *out)
{
    if (family == CF_AF_HYPERV)
        family = AF_HYPERV;
    else if (family == CF_AF_VSOCK)
        family = AF_VSOCK_LINUX;
    return make(family, type, protocol, 0, out);
}

int cf_close(cf_sock_t s)
{
    int was_dead;

    EnterCriticalSection(&track_lock);
    was_dead = !contains(live, nlive, (SOCKET)s) && contains(dead, ndead, (SOCKET)s);
    drop(live, &nlive, (SOCKET)s);
    drop(dead, &ndead, (SOCKET)s);
    LeaveCriticalSection(&track_lock);
    if (was_dead)
        return -ENOTSOCK; /* the watchdog closed it already */
    return closesocket((SOCKET)s) == 0 ? 0 : wsa_err();
}

static SOCKADDR_HV hv_addr(const cf_guid_t *vm, const cf_guid_t *svc)
{
    SOCKADDR_HV a;

    memset(&a, 0, sizeof(a));
    a.Family = AF_HYPERV;
    memcpy(&a.VmId, vm, sizeof(a.VmId));
    memcpy(&a.ServiceId, svc, sizeof(a.ServiceId));
    return a;
}

int cf_bind_hv(cf_sock_t s, const cf_guid_t *vm, const cf_guid_t *svc)
{
    SOCKADDR_HV a = hv_addr(vm, svc);

    return bind((SOCKET)s, (const struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : wsa_err();
}

static int connect_result(int rc)
{
    return rc == 0 ? 0 : wsa_err();
}

int cf_connect_hv(cf_sock_t s, const cf_guid_t *vm, const cf_guid_t *svc)
{
    SOCKADDR_HV a = hv_addr(vm, svc);

    return connect_result(connect((SOCKET)s, (const struct sockaddr *)&a, sizeof(a)));
}

int cf_bind_raw(cf_sock_t s, const void *addr, int len)
{
    return bind((SOCKET)s, (const struct sockaddr *)addr, len) == 0 ? 0 : wsa_err();
}

int cf_connect_raw(cf_sock_t s, const void *addr, int len)
{
    return connect_result(connect((SOCKET)s, (const struct sockaddr *)addr, len));
}

int cf_bind_vsock(cf_sock_t s, uint32_t cid, uint32_t port)
{
    (void)s;
    (void)cid;
    (void)port;
    return -EAFNOSUPPORT;
}

int cf_connect_vsock(cf_sock_t s, uint32_t cid, uint32_t port)
{
    (void)s;
    (void)cid;
    (void)port;
    return -EAFNOSUPPORT;
}

int cf_name_vsock(cf_sock_t s, int peer, uint32_t *cid, uint32_t *port)
{
    (void)s;
    (void)peer;
    (void)cid;
    (void)port;
    return -EAFNOSUPPORT;
}

int cf_vsock_queue(cf_sock_t s, int outq, int *bytes)
{
    (void)s;
    (void)outq;
    (void)bytes;
    return -EAFNOSUPPORT;
}

int cf_set_rcvlowat(cf_sock_t s, int bytes)
{
    (void)s;
    (void)bytes;
    return -EAFNOSUPPORT;
}

/* The Linux option only: the Windows column has its own closes. */
int cf_set_linger(cf_sock_t s, int on, int secs)
{
    (void)s;
    (void)on;
    (void)secs;
    return -EAFNOSUPPORT;
}

int cf_get_linger(cf_sock_t s, int *on, int *secs)
{
    (void)s;
    *on = *secs = 0;
    return -EAFNOSUPPORT;
}

/* MSG_ZEROCOPY is Linux's. */
int cf_set_zerocopy(cf_sock_t s, int on)
{
    (void)s;
    (void)on;
    return -EAFNOSUPPORT;
}

int cf_get_zerocopy(cf_sock_t s, int *on)
{
    (void)s;
    *on = 0;
    return -EAFNOSUPPORT;
}

long cf_send_zerocopy(cf_sock_t s, const void *buf, size_t len)
{
    (void)s;
    (void)buf;
    (void)len;
    return -EAFNOSUPPORT;
}

int cf_zerocopy_completion(cf_sock_t s, uint32_t *lo, uint32_t *hi, int *copied)
{
    (void)s;
    *lo = *hi = 0;
    *copied = 0;
    return -EAFNOSUPPORT;
}

unsigned cf_kernel_version(void)
{
    return 0;
}

int cf_local_cid(uint32_t *cid)
{
    (void)cid;
    return -EAFNOSUPPORT;
}

int cf_listen(cf_sock_t s, int backlog)
{
    return listen((SOCKET)s, backlog) == 0 ? 0 : wsa_err();
}

int cf_accept(cf_sock_t l, cf_sock_t *out)
{
    SOCKET s = accept((SOCKET)l, NULL, NULL);

    if (s == INVALID_SOCKET)
        return wsa_err();
    track(s);
    *out = (cf_sock_t)s;
    return 0;
}

/* Winsock has no MSG_DONTWAIT: 1 when a call would not block now. */
static int ready_now(SOCKET s, int write)
{
    fd_set set;
    struct timeval tv = { 0, 0 };

    FD_ZERO(&set);
    FD_SET(s, &set);
    return select(0, write ? NULL : &set, write ? &set : NULL, NULL, &tv) > 0;
}

static int msg_flags(int flags)
{
    return ((flags & CF_MSG_PEEK) ? MSG_PEEK : 0) | ((flags & CF_MSG_WAITALL) ? MSG_WAITALL : 0);
}

long cf_send(cf_sock_t s, const void *buf, size_t len, int flags)
{
    int r;

    if ((flags & CF_MSG_DONTWAIT) && !ready_now((SOCKET)s, 1))
        return -EAGAIN;
    r = send((SOCKET)s, (const char *)buf, len > 0x7fffffff ? 0x7fffffff : (int)len, msg_flags(flags) & ~MSG_WAITALL);
    return r == SOCKET_ERROR ? wsa_err() : (long)r;
}

long cf_recv(cf_sock_t s, void *buf, size_t len, int flags)
{
    int r;

    if ((flags & CF_MSG_DONTWAIT) && !ready_now((SOCKET)s, 0))
        return -EAGAIN;
    r = recv((SOCKET)s, (char *)buf, len > 0x7fffffff ? 0x7fffffff : (int)len, msg_flags(flags));
    return r == SOCKET_ERROR ? wsa_err() : (long)r;
}

int cf_shutdown(cf_sock_t s, int how)
{
    int h = how == CF_SHUT_RD ? SD_RECEIVE : how == CF_SHUT_WR ? SD_SEND : how == CF_SHUT_RDWR ? SD_BOTH : how;

    return shutdown((SOCKET)s, h) == 0 ? 0 : wsa_err();
}

int cf_name_hv(cf_sock_t s, int peer, cf_guid_t *vm, cf_guid_t *svc)
{
    SOCKADDR_HV a;
    int len = sizeof(a), rc;

    memset(&a, 0, sizeof(a));
    rc = peer ? getpeername((SOCKET)s, (struct sockaddr *)&a, &len) : getsockname((SOCKET)s, (struct sockaddr *)&a, &len);
    if (rc != 0)
        return wsa_err();
    if (vm)
        memcpy(vm, &a.VmId, sizeof(*vm));
    if (svc)
        memcpy(svc, &a.ServiceId, sizeof(*svc));
    return 0;
}

/* ---- options and readiness --------------------------------------------------------- */

static int set_ulong(cf_sock_t s, int name, ULONG v)
{
    return setsockopt((SOCKET)s, HV_PROTOCOL_RAW, name, (const char *)&v, sizeof(v)) == 0 ? 0 : wsa_err();
}

int cf_set_connect_timeout(cf_sock_t s, uint32_t ms)
{
    return set_ulong(s, HVSOCKET_CONNECT_TIMEOUT, ms);
}

int cf_get_connect_timeout(cf_sock_t s, uint32_t *ms)
{
    ULONG v = 0;
    int len = sizeof(v);

    if (getsockopt((SOCKET)s, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, (char *)&v, &len) != 0)
        return wsa_err();
    *ms = v;
    return 0;
}

int cf_set_connected_suspend(cf_sock_t s, int on)
{
    return set_ulong(s, HVSOCKET_CONNECTED_SUSPEND, on ? 1 : 0);
}

int cf_so_error(cf_sock_t s)
{
    int v = 0, len = sizeof(v);

    if (getsockopt((SOCKET)s, SOL_SOCKET, SO_ERROR, (char *)&v, &len) != 0)
        return wsa_err();
    return -cf__errno_from_wsa(v);
}

static short to_wsapoll(int ev)
{
    /* WSAPoll refuses POLLERR/POLLHUP in events: they are always reported. */
    return (short)(((ev & CF_POLLIN) ? POLLRDNORM : 0) | ((ev & CF_POLLOUT) ? POLLWRNORM : 0));
}

static int poll_one(SOCKET s, short events, int timeout_ms)
{
    WSAPOLLFD p;
    int rc;

    memset(&p, 0, sizeof(p));
    p.fd = s;
    p.events = events;
    rc = WSAPoll(&p, 1, timeout_ms);
    if (rc == SOCKET_ERROR)
        return wsa_err();
    if (rc == 0)
        return 0;
    if (p.revents & POLLNVAL)
        return -EBADF;
    return ((p.revents & (POLLRDNORM | POLLRDBAND)) ? CF_POLLIN : 0) | ((p.revents & POLLWRNORM) ? CF_POLLOUT : 0) |
           ((p.revents & POLLERR) ? CF_POLLERR : 0) | ((p.revents & POLLHUP) ? CF_POLLHUP : 0);
}

int cf_poll(cf_sock_t s, int events, int timeout_ms)
{
    return poll_one((SOCKET)s, to_wsapoll(events), timeout_ms);
}

struct watch {
    SOCKET s;
    short events;
};

int cf_watch_create(cf_sock_t s, int events, intptr_t *watch)
{
    struct watch *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return -ENOMEM;
    w->s = (SOCKET)s;
    w->events = to_wsapoll(events);
    *watch = (intptr_t)w;
    return 0;
}

int cf_watch_wait(intptr_t watch, int timeout_ms)
{
    const struct watch *w = (const struct watch *)watch;

    return poll_one(w->s, w->events, timeout_ms);
}

void cf_watch_close(intptr_t watch)
{
    free((void *)watch);
}

/* ---- administration: the host's registry --------------------------------------------- */

#define GCS_KEY L"SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Virtualization\\GuestCommunicationServices\\"

static int reg_err(LONG rc)
{
    return rc == ERROR_ACCESS_DENIED ? -EACCES : rc == ERROR_FILE_NOT_FOUND ? -ENOENT : -EIO;
}

/* GuestCommunicationServices\<GUID>, upper case as the in-box entries are. */
static void service_key(const cf_guid_t *svc, wchar_t *out, size_t cap)
{
    char g[37];
    size_t i, n = wcslen(GCS_KEY);

    cf_guid_format(svc, g);
    wcsncpy(out, GCS_KEY, cap);
    for (i = 0; g[i] && n + i + 1 < cap; i++)
        out[n + i] = (wchar_t)(g[i] >= 'a' && g[i] <= 'f' ? g[i] - 'a' + 'A' : g[i]);
    out[n + i] = L'\0';
}

/* The ElementName of a registered service (UTF-8): 1, or 0 when none. */
static int element_name(const wchar_t *key, char *out, size_t cap)
{
    wchar_t w[300];
    DWORD type = 0, bytes = sizeof(w) - sizeof(wchar_t);
    HKEY k;
    LONG rc;

    out[0] = '\0';
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, key, 0, KEY_QUERY_VALUE, &k) != ERROR_SUCCESS)
        return 0;
    memset(w, 0, sizeof(w));
    rc = RegQueryValueExW(k, L"ElementName", NULL, &type, (BYTE *)w, &bytes);
    RegCloseKey(k);
    if (rc == ERROR_SUCCESS && type == REG_SZ)
        WideCharToMultiByte(CP_UTF8, 0, w, -1, out, (int)cap, NULL, NULL);
    return 1;
}

int cf_admin_service_add(const cf_guid_t *svc, const char *name)
{
    wchar_t key[200], wname[300];
    char old[600];
    HKEY k;
    DWORD disp = 0;
    LONG rc;
    int existed, err = cf__admin_allowed();

    if (err < 0)
        return err;
    service_key(svc, key, sizeof(key) / sizeof(key[0]));
    existed = element_name(key, old, sizeof(old));
    if (MultiByteToWideChar(CP_UTF8, 0, name ? name : "hvsim conformance", -1, wname,
                            (int)(sizeof(wname) / sizeof(wname[0]))) == 0)
        return -EINVAL;
    rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, key, 0, NULL, REG_OPTION_NON_VOLATILE, KEY_SET_VALUE, NULL, &k, &disp);
    if (rc != ERROR_SUCCESS) {
        /* Not elevated: the target cannot register services, so the cases
         * that need one skip (with this line in the log) instead of failing. */
        if (rc == ERROR_ACCESS_DENIED) {
            fprintf(stderr, "hvsim-agent: registering a service needs an elevated agent (Run as administrator)\n");
            return -ENOTSUP;
        }
        return reg_err(rc);
    }
    rc = RegSetValueExW(k, L"ElementName", 0, REG_SZ, (const BYTE *)wname,
                        (DWORD)((wcslen(wname) + 1) * sizeof(wchar_t)));
    RegCloseKey(k);
    if (rc != ERROR_SUCCESS)
        return reg_err(rc);
    /* Writing over a registered service renames it: the undo writes the old name. */
    cf__note_admin(existed ? CF_NOTE_SERVICE_RM : CF_NOTE_SERVICE_ADD, svc, NULL, existed ? old : NULL);
    return 0;
}

int cf_admin_service_rm(const cf_guid_t *svc)
{
    wchar_t key[200];
    char old[600];
    LONG rc;
    int err = cf__admin_allowed();

    if (err < 0)
        return err;
    service_key(svc, key, sizeof(key) / sizeof(key[0]));
    (void)element_name(key, old, sizeof(old));
    rc = RegDeleteKeyW(HKEY_LOCAL_MACHINE, key);
    if (rc != ERROR_SUCCESS)
        return reg_err(rc);
    cf__note_admin(CF_NOTE_SERVICE_RM, svc, NULL, old);
    return 0;
}

/* ---- The send/receive family (cases/cases_msg.c) ----------------------------------- */

#define CF_MSG_ROOM 128

/* Winsock ignores the destination of a connection-oriented socket's sendto. */
long cf_sendto_hv(cf_sock_t s, const void *buf, size_t len, const cf_guid_t *vm, const cf_guid_t *svc)
{
    SOCKADDR_HV a = hv_addr(vm, svc);
    int r = sendto((SOCKET)s, (const char *)buf, len > 0x7fffffff ? 0x7fffffff : (int)len, 0,
                   (const struct sockaddr *)&a, sizeof(a));

    return r == SOCKET_ERROR ? wsa_err() : (long)r;
}

long cf_sendto_vsock(cf_sock_t s, const void *buf, size_t len, uint32_t cid, uint32_t port)
{
    (void)s;
    (void)buf;
    (void)len;
    (void)cid;
    (void)port;
    return -EAFNOSUPPORT;
}

/* Winsock ignores from and fromlen on a connection-oriented socket. */
long cf_recvfrom(cf_sock_t s, void *buf, size_t len, int flags, int *addrlen)
{
    char from[CF_MSG_ROOM];
    int l = *addrlen < 0 || *addrlen > CF_MSG_ROOM ? CF_MSG_ROOM : *addrlen;
    int r;

    if ((flags & CF_MSG_DONTWAIT) && !ready_now((SOCKET)s, 0))
        return -EAGAIN;
    r = recvfrom((SOCKET)s, (char *)buf, len > 0x7fffffff ? 0x7fffffff : (int)len, msg_flags(flags),
                 (struct sockaddr *)from, &l);
    if (r == SOCKET_ERROR)
        return wsa_err();
    *addrlen = l;
    return (long)r;
}

/* WSASend: the buffers are gathered into the stream in order. */
long cf_sendmsg(cf_sock_t s, const cf_buf_t *bufs, int n, int flags)
{
    WSABUF wb[16];
    DWORD sent = 0;
    int i;

    if (n < 0 || n > 16)
        return -EINVAL;
    if ((flags & CF_MSG_DONTWAIT) && !ready_now((SOCKET)s, 1))
        return -EAGAIN;
    for (i = 0; i < n; i++) {
        wb[i].buf = (char *)bufs[i].base;
        wb[i].len = bufs[i].len > 0x7fffffff ? 0x7fffffff : (ULONG)bufs[i].len;
    }
    if (WSASend((SOCKET)s, wb, (DWORD)n, &sent, (DWORD)(msg_flags(flags) & ~MSG_WAITALL), NULL, NULL) != 0)
        return wsa_err();
    return (long)sent;
}

/* WSARecv: the stream is scattered over the buffers in order. There is no
 * name or control space in this call. */
long cf_recvmsg(cf_sock_t s, cf_buf_t *bufs, int n, int flags, int *namelen, int *ctllen)
{
    WSABUF wb[16];
    DWORD got = 0, f;
    int i;

    if (n < 0 || n > 16)
        return -EINVAL;
    if ((flags & CF_MSG_DONTWAIT) && !ready_now((SOCKET)s, 0))
        return -EAGAIN;
    for (i = 0; i < n; i++) {
        wb[i].buf = (char *)bufs[i].base;
        wb[i].len = bufs[i].len > 0x7fffffff ? 0x7fffffff : (ULONG)bufs[i].len;
    }
    f = (DWORD)msg_flags(flags);
    if (WSARecv((SOCKET)s, wb, (DWORD)n, &got, &f, NULL, NULL) != 0)
        return wsa_err();
    *namelen = -1;
    *ctllen = -1;
    return (long)got;
}

/* Winsock's AF_HYPERV has no message sockets (cases_seqpacket.c is n/a there). */
long cf_recv_flags(cf_sock_t s, void *buf, size_t len, int flags, int *out_flags)
{
    (void)s;
    (void)buf;
    (void)len;
    (void)flags;
    *out_flags = 0;
    return -EOPNOTSUPP;
}

int cf_get_sock_buf(cf_sock_t s, int rcv, int *bytes)
{
    int l = sizeof(*bytes);

    if (getsockopt((SOCKET)s, SOL_SOCKET, rcv ? SO_RCVBUF : SO_SNDBUF, (char *)bytes, &l) != 0)
        return wsa_err();
    return 0;
}
