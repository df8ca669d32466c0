/* SPDX-License-Identifier: MIT */
/*
 * admin.c: the administration calls of hvsim.h (VMs, services, settings), over
 * the daemon's admin socket. hvsimctl is a thin shell around these; tests use
 * them directly. They return 0 or a negative errno, and keep the daemon's
 * explanation for hvsim_admin_errmsg().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "hvproto/proto.h"
#include "hvproto/regfile.h"

struct hvsim_admin {
    int fd;
    uint32_t seq;
    char *buf;
    char err[512];
};

/* The admin socket of a checked folder (hvsim__dir_open_trusted), reached
 * through the folder's fd where /proc allows it. */
static int admin_addr(struct sockaddr_un *sa, const char *dir)
{
    char via[64];
    struct stat st;
    int dfd = hvsim__dir_open_trusted(dir, 0, NULL, 0), n;

    if (dfd < 0)
        return dfd == -EPERM || dfd == -EMFILE || dfd == -ENFILE || dfd == -ENOMEM ? dfd : -ENETDOWN;
    snprintf(via, sizeof(via), "/proc/self/fd/%d", dfd);
    if (stat(via, &st) == 0)
        n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/admin.sock", via);
    else
        n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/admin.sock", dir);
    if (n < 0 || (size_t)n >= sizeof(sa->sun_path)) {
        hvsim__libc.close(dfd);
        return -ENAMETOOLONG;
    }
    return dfd;
}

int hvsim_admin_open(const char *dir, hvsim_admin_t **out)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char d[200];
    hvsim_admin_t *a;
    int ms = hvsim__request_timeout_ms(), dfd, rc;
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

    if (dir == NULL)
        dir = hvsim__default_dir(d, sizeof(d));
    if (strlen(dir) + sizeof("/admin.sock") > sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    /* An untrusted folder (-EPERM) is never spoken to: hvsimctl says why. */
    dfd = admin_addr(&sa, dir);
    if (dfd < 0)
        return dfd;
    a = calloc(1, sizeof(*a));
    if (a == NULL || (a->buf = malloc(HVSIM_MSG_MAX)) == NULL ||
        (a->fd = hvsim__libc.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0) {
        rc = a && a->buf ? -errno : -ENOMEM;
        if (a)
            a->fd = -1;
        hvsim_admin_close(a);
        hvsim__libc.close(dfd);
        return rc;
    }
    /* Deadlines: connect to a full backlog and every send (SO_SNDTIMEO). */
    (void)hvsim__libc.setsockopt(a->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    rc = hvsim__libc.connect(a->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
    hvsim__libc.close(dfd);
    if (rc < 0) {
        hvsim_admin_close(a);
        return rc == -EAGAIN ? -ETIMEDOUT : -ENETDOWN;
    }
    *out = a;
    return 0;
}

void hvsim_admin_close(hvsim_admin_t *a)
{
    if (a == NULL)
        return;
    if (a->fd >= 0)
        hvsim__libc.close(a->fd);
    free(a->buf);
    free(a);
}

const char *hvsim_admin_errmsg(hvsim_admin_t *a)
{
    return a->err;
}

/* A stopped daemon is an error by the deadline (HVSIM_REQUEST_TIMEOUT_MS), never a hang. */
static int no_answer(hvsim_admin_t *a)
{
    snprintf(a->err, sizeof(a->err),
             "the hvsim daemon did not answer within %d ms (HVSIM_REQUEST_TIMEOUT_MS): is hvsimd stopped or "
             "overloaded?", hvsim__request_timeout_ms());
    return -ETIMEDOUT;
}


/* One round trip. On success *body points into a->buf and *blen is its size. */
static int call(hvsim_admin_t *a, unsigned type, const void *req, size_t rlen, const void *extra, size_t elen,
                const char **body, size_t *blen)
{
    struct hvsim_msg_hdr h;
    uint32_t seq = ++a->seq;
    uint64_t deadline = hvsim__now_ns() + (uint64_t)hvsim__request_timeout_ms() * 1000000u;
    ssize_t n;
    int rc;

    a->err[0] = '\0';
    if (sizeof(h) + rlen + elen > HVSIM_MSG_MAX) {
        snprintf(a->err, sizeof(a->err), "%s: a request of %zu bytes, more than the protocol's %d",
                 hvsim__msg_name(type), sizeof(h) + rlen + elen, HVSIM_MSG_MAX);
        return -EMSGSIZE;
    }
    rc = hvsim__msg_send(a->fd, type, 0, seq, req, rlen, extra, elen, -1);
    if (rc == -EAGAIN)
        return no_answer(a);
    if (rc == -EMSGSIZE || rc == -ENOBUFS) {
        snprintf(a->err, sizeof(a->err), "%s: a request of %zu bytes is more than the control socket takes (%s)",
                 hvsim__msg_name(type), sizeof(h) + rlen + elen, hvsim_err_name(rc));
        return rc;
    }
    if (rc < 0) {
        snprintf(a->err, sizeof(a->err), "the hvsim daemon is gone");
        return -ENETDOWN;
    }
    do {
        if (hvsim__wait_readable(a->fd, deadline) < 0)
            return no_answer(a);
        n = hvsim__msg_recv(a->fd, a->buf, HVSIM_MSG_MAX, NULL);
        if (n <= 0) {
            snprintf(a->err, sizeof(a->err), "%s", n == 0 ? "the hvsim daemon closed the connection"
                                                           : "the hvsim daemon sent a malformed reply");
            return n == 0 ? -ENETDOWN : (int)n;
        }
        memcpy(&h, a->buf, sizeof(h));
    } while (h.seq != seq);
    if (h.status < 0) {
        size_t tl = h.len < sizeof(a->err) - 1 ? h.len : sizeof(a->err) - 1;

        memcpy(a->err, a->buf + sizeof(h), tl);
        a->err[tl] = '\0';
        if (a->err[0] == '\0')
            snprintf(a->err, sizeof(a->err), "%s", hvsim_strerror(h.status));
        return h.status;
    }
    if (body)
        *body = a->buf + sizeof(h);
    if (blen)
        *blen = h.len;
    return 0;
}

static int copy_ref(char *dst, size_t cap, const char *src)
{
    if (src == NULL || strlen(src) >= cap)
        return -EINVAL;
    memset(dst, 0, cap);
    memcpy(dst, src, strlen(src));
    return 0;
}

int hvsim_admin_vm_add(hvsim_admin_t *a, const char *name, const GUID *id, uint32_t kind, hvsim_vm_info_t *out)
{
    return hvsim_admin_vm_add_ex(a, name, id, kind, HVSIM_TRANSPORT_HV_SOCK, HVSIM_KERNEL_6_1, out);
}

int hvsim_admin_vm_add_ex(hvsim_admin_t *a, const char *name, const GUID *id, uint32_t kind, uint32_t transport,
                          uint32_t kernel, hvsim_vm_info_t *out)
{
    return hvsim_admin_vm_add_owned(a, name, id, kind, transport, kernel, NULL, out);
}

int hvsim_admin_vm_add_owned(hvsim_admin_t *a, const char *name, const GUID *id, uint32_t kind, uint32_t transport,
                             uint32_t kernel, const hvsim_vm_owner_t *owner, hvsim_vm_info_t *out)
{
    return hvsim_admin_vm_add_grouped(a, name, id, kind, transport, kernel, owner, NULL, out);
}

int hvsim_admin_vm_add_grouped(hvsim_admin_t *a, const char *name, const GUID *id, uint32_t kind, uint32_t transport,
                               uint32_t kernel, const hvsim_vm_owner_t *owner, const char *groups,
                               hvsim_vm_info_t *out)
{
    struct hvsim_msg_vm_add m = { .kind = kind, .transport = transport, .kernel = kernel };
    const char *body;
    int rc;

    if (copy_ref(m.name, sizeof(m.name), name) < 0) {
        snprintf(a->err, sizeof(a->err), "VM name: expected 1-%d characters", HVSIM_NAME_MAX - 1);
        return -EINVAL;
    }
    if (id) {
        m.id = *id;
        m.has_id = 1;
    }
    if (owner && owner->set)
        m.owner = *owner;
    /* The daemon checks the names (groups.c); only the length is ours. */
    if (groups && snprintf(m.groups, sizeof(m.groups), "%s", groups) >= (int)sizeof(m.groups)) {
        snprintf(a->err, sizeof(a->err), "VM groups (--group): expected at most %d characters in all",
                 HVSIM_GROUPS_MAX - 1);
        return -EINVAL;
    }
    rc = call(a, HVSIM_MSG_VM_ADD, &m, sizeof(m), NULL, 0, &body, NULL);
    if (rc == 0 && out)
        memcpy(out, body, sizeof(*out));
    return rc;
}

int hvsim_admin_vm_rm(hvsim_admin_t *a, const char *ref)
{
    struct hvsim_msg_vm_ref m;

    if (copy_ref(m.ref, sizeof(m.ref), ref) < 0) {
        snprintf(a->err, sizeof(a->err), "VM: expected a name or a GUID");
        return -EINVAL;
    }
    return call(a, HVSIM_MSG_VM_RM, &m, sizeof(m), NULL, 0, NULL, NULL);
}

int hvsim_admin_vm_op(hvsim_admin_t *a, const char *ref, const char *op)
{
    struct hvsim_msg_vm_op m;

    if (copy_ref(m.ref, sizeof(m.ref), ref) < 0 || copy_ref(m.op, sizeof(m.op), op) < 0) {
        snprintf(a->err, sizeof(a->err), "VM operation: expected a VM name or GUID and an operation");
        return -EINVAL;
    }
    return call(a, HVSIM_MSG_VM_OP, &m, sizeof(m), NULL, 0, NULL, NULL);
}

/* What a paged list asks for (REF: a partition's listing, NULL: a whole
 * list) and what its replies carry besides the page (the header of
 * VM_LISTENERS and VM_CONNS replies: ceiling and forgotten records). */
struct list_req {
    unsigned type;
    size_t esize;
    const char *ref;
    struct hvsim_msg_track_list head; /* from the first page */
};

/* One page from CURSOR into *v (grown to the list's total on the first
 * page). Returns 1 for another page, 0 at the end, -EAGAIN when the list
 * changed under the reader (start again), or -errno. */
static int list_page(hvsim_admin_t *a, struct list_req *q, uint32_t *cursor, char **v)
{
    struct hvsim_msg_vm_page pg = { .page.cursor = *cursor };
    size_t hlen = q->ref ? sizeof(struct hvsim_msg_track_list) : sizeof(struct hvsim_msg_list);
    struct hvsim_msg_track_list t = { 0 };
    struct hvsim_msg_list l;
    const char *body;
    size_t blen;
    int rc;

    if (q->ref)
        memcpy(pg.ref, q->ref, strlen(q->ref));
    rc = call(a, q->type, &pg, q->ref ? sizeof(pg) : sizeof(pg.page), NULL, 0, &body, &blen);
    if (rc < 0)
        return rc;
    if (blen < hlen) {
        snprintf(a->err, sizeof(a->err), "the hvsim daemon sent a malformed list");
        return -EPROTO;
    }
    memcpy(&t, body, hlen);
    l = t.list;
    if (blen - hlen != (size_t)l.count * q->esize || l.next != *cursor + l.count || l.next > l.total) {
        snprintf(a->err, sizeof(a->err), "the hvsim daemon sent a malformed list");
        return -EPROTO;
    }
    if (*cursor == 0) {
        q->head = t;
        free(*v);
        *v = calloc(l.total ? l.total : 1, q->esize);
        if (*v == NULL)
            return -ENOMEM;
    } else if (l.gen != q->head.list.gen || l.total != q->head.list.total) {
        return -EAGAIN;
    }
    memcpy(*v + (size_t)*cursor * q->esize, body + hlen, (size_t)l.count * q->esize);
    *cursor = l.next;
    return l.next < l.total && l.count > 0 ? 1 : 0;
}

/* A whole list, page by page; read again from the start when it changed
 * between pages, so it is never cut or mixed. */
static int list_all(hvsim_admin_t *a, struct list_req *q, void **out, size_t *n)
{
    char *v = NULL;
    int tries, rc = -EAGAIN;

    for (tries = 0; tries < 16 && rc == -EAGAIN; tries++) {
        uint32_t cursor = 0;

        while ((rc = list_page(a, q, &cursor, &v)) == 1)
            ;
    }
    if (rc == -EAGAIN)
        snprintf(a->err, sizeof(a->err), "the list kept changing while it was read: try again");
    if (rc < 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = q->head.list.total;
    return 0;
}

static int list(hvsim_admin_t *a, unsigned type, size_t esize, void **out, size_t *n)
{
    struct list_req q = { .type = type, .esize = esize };

    return list_all(a, &q, out, n);
}

/* A partition's listing (VM_LISTENERS, VM_CONNS). */
static int vm_listing(hvsim_admin_t *a, unsigned type, size_t esize, const char *vm, void **out, size_t *n,
                      uint32_t *limit, uint64_t *forgotten)
{
    struct list_req q = { .type = type, .esize = esize, .ref = vm };
    int rc;

    if (vm == NULL || vm[0] == '\0' || strlen(vm) >= HVSIM_NAME_MAX) {
        snprintf(a->err, sizeof(a->err), "VM: expected a name, a GUID or \"host\"");
        return -EINVAL;
    }
    rc = list_all(a, &q, out, n);
    if (rc == 0 && limit)
        *limit = q.head.limit;
    if (rc == 0 && forgotten)
        *forgotten = q.head.forgotten;
    return rc;
}

int hvsim_admin_listeners(hvsim_admin_t *a, const char *vm, hvsim_listener_info_t **out, size_t *n, uint32_t *limit,
                          uint64_t *forgotten)
{
    return vm_listing(a, HVSIM_MSG_VM_LISTENERS, sizeof(**out), vm, (void **)out, n, limit, forgotten);
}

int hvsim_admin_connections(hvsim_admin_t *a, const char *vm, hvsim_conn_info_t **out, size_t *n, uint32_t *limit,
                            uint64_t *forgotten)
{
    return vm_listing(a, HVSIM_MSG_VM_CONNS, sizeof(**out), vm, (void **)out, n, limit, forgotten);
}

int hvsim_admin_vm_list(hvsim_admin_t *a, hvsim_vm_info_t **out, size_t *n)
{
    return list(a, HVSIM_MSG_VM_LIST, sizeof(**out), (void **)out, n);
}

int hvsim_admin_service_list(hvsim_admin_t *a, hvsim_service_info_t **out, size_t *n)
{
    return list(a, HVSIM_MSG_SVC_LIST, sizeof(**out), (void **)out, n);
}

int hvsim_admin_service_add(hvsim_admin_t *a, const GUID *id, const char *element_name)
{
    hvsim_service_info_t m;

    memset(&m, 0, sizeof(m));
    m.id = *id;
    if (copy_ref(m.element_name, sizeof(m.element_name), element_name) < 0) {
        snprintf(a->err, sizeof(a->err), "ElementName: expected at most %d bytes", HVSIM_ELEMENT_NAME_MAX - 1);
        return -EINVAL;
    }
    return call(a, HVSIM_MSG_SVC_ADD, &m, sizeof(m), NULL, 0, NULL, NULL);
}

int hvsim_admin_service_rm(hvsim_admin_t *a, const GUID *id)
{
    struct hvsim_msg_guid m = { *id };

    return call(a, HVSIM_MSG_SVC_RM, &m, sizeof(m), NULL, 0, NULL, NULL);
}

/* Pages of at most HVSIM_PAGE_BYTES, each but the last marked MORE: the
 * daemon adds them all with the last, or none. */
static int import_pages(hvsim_admin_t *a, const hvsim_service_info_t *v, size_t n)
{
    size_t per = HVSIM_PAGE_BYTES / sizeof(*v), done = 0;
    int rc;

    do {
        struct hvsim_msg_import m = { .count = (uint32_t)(n - done < per ? n - done : per) };

        if (done + m.count < n)
            m.flags = HVSIM_IMPORT_MORE;
        rc = call(a, HVSIM_MSG_SVC_IMPORT, &m, sizeof(m), v + done, m.count * sizeof(*v), NULL, NULL);
        done += m.count;
    } while (rc == 0 && done < n);
    return rc;
}

int hvsim_admin_service_import(hvsim_admin_t *a, const char *path, size_t *added)
{
    hvsim_regfile_t reg = { 0 };
    struct stat st;
    uint8_t *data = NULL;
    char perr[256] = "";
    size_t got = 0;
    int fd, rc;

    fd = hvsim__libc.open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(a->err, sizeof(a->err), "%s: %s", path, strerror(errno));
        if (fd >= 0)
            hvsim__libc.close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > 16 * 1024 * 1024) {
        hvsim__libc.close(fd);
        snprintf(a->err, sizeof(a->err), "%s: expected a .reg file of at most 16 MiB", path);
        return -EINVAL;
    }
    data = malloc((size_t)st.st_size + 1);
    if (data == NULL) {
        hvsim__libc.close(fd);
        return -ENOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, data + got, (size_t)st.st_size - got);

        if (r <= 0)
            break;
        got += (size_t)r;
    }
    hvsim__libc.close(fd);
    rc = hvsim__regfile_parse(data, got, &reg, perr, sizeof(perr));
    free(data);
    if (rc < 0) {
        snprintf(a->err, sizeof(a->err), "%s: %s", path, perr);
        return rc;
    }
    if (reg.n > HVSIM_IMPORT_MAX) {
        hvsim__regfile_free(&reg);
        snprintf(a->err, sizeof(a->err), "%s: %zu services, more than one import takes (%d)", path, reg.n,
                 HVSIM_IMPORT_MAX);
        return -E2BIG;
    }
    rc = import_pages(a, reg.v, reg.n);
    if (rc == 0 && added)
        *added = reg.n;
    hvsim__regfile_free(&reg);
    return rc;
}

int hvsim_admin_hcs_set(hvsim_admin_t *a, const char *vm, const hvsim_hcs_service_t *svc)
{
    struct hvsim_msg_hcs_set m;

    if (copy_ref(m.vm, sizeof(m.vm), vm) < 0) {
        snprintf(a->err, sizeof(a->err), "VM: expected a name or a GUID");
        return -EINVAL;
    }
    m.svc = *svc;
    return call(a, HVSIM_MSG_HCS_SET, &m, sizeof(m), NULL, 0, NULL, NULL);
}

int hvsim_admin_setting_get(hvsim_admin_t *a, const char *name, char *value, size_t len)
{
    struct hvsim_msg_setting m;
    const char *body;
    int rc;

    memset(&m, 0, sizeof(m));
    if (copy_ref(m.name, sizeof(m.name), name) < 0)
        return -EINVAL;
    rc = call(a, HVSIM_MSG_SETTING_GET, &m, sizeof(m), NULL, 0, &body, NULL);
    if (rc < 0)
        return rc;
    memcpy(&m, body, sizeof(m));
    m.value[sizeof(m.value) - 1] = '\0';
    snprintf(value, len, "%s", m.value);
    return 0;
}

int hvsim_admin_setting_set(hvsim_admin_t *a, const char *name, const char *value)
{
    struct hvsim_msg_setting m;

    memset(&m, 0, sizeof(m));
    if (copy_ref(m.name, sizeof(m.name), name) < 0 || copy_ref(m.value, sizeof(m.value), value) < 0) {
        snprintf(a->err, sizeof(a->err), "setting: name or value too long");
        return -EINVAL;
    }
    return call(a, HVSIM_MSG_SETTING_SET, &m, sizeof(m), NULL, 0, NULL, NULL);
}

int hvsim_admin_setting_list(hvsim_admin_t *a, char **out)
{
    struct hvsim_msg_empty e = { 0 };
    const char *body;
    size_t blen;
    int rc = call(a, HVSIM_MSG_SETTING_LIST, &e, sizeof(e), NULL, 0, &body, &blen);

    if (rc < 0)
        return rc;
    *out = strndup(body + sizeof(struct hvsim_msg_setting), blen - sizeof(struct hvsim_msg_setting));
    return *out ? 0 : -ENOMEM;
}

int hvsim_admin_status(hvsim_admin_t *a, char **text)
{
    struct hvsim_msg_status e = { 0 };
    struct hvsim_msg_status st;
    const char *body;
    size_t blen;
    int rc = call(a, HVSIM_MSG_STATUS, &e, sizeof(e), NULL, 0, &body, &blen);

    if (rc < 0)
        return rc;
    memcpy(&st, body, sizeof(st));
    if (asprintf(text, "vms=%u\nservices=%u\nprocesses=%u\nlisteners=%u\n%.*s", st.nvms, st.nservices, st.nprocs,
                 st.nlisteners, (int)(blen - sizeof(st)), body + sizeof(st)) < 0)
        return -ENOMEM;
    return 0;
}
