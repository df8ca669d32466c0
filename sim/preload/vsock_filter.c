/* SPDX-License-Identifier: MIT */
/*
 * vsock_filter.c: builds hvsim's seccomp filters (vsock_filter.h says what
 * each does) with libseccomp, so the architecture's syscall numbers, its
 * AUDIT_ARCH value and the x32 check come from the library that knows them
 * for every architecture Debian builds, not from hand-written BPF.
 *
 * Every builder fails closed: a rule libseccomp cannot add is an error, and
 * the caller then refuses to run the program.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <linux/vhost.h>
#include <sys/socket.h> /* first: linux/vm_sockets.h needs struct sockaddr */
#include <linux/vm_sockets.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "vsock_filter.h"

/* The low 32 bits of argument i equal v: the kernel reads an int or an
 * unsigned int there, so garbage in the high half must not slip past. */
#define LO32_EQ(i, v) ((struct scmp_arg_cmp){ .arg = (i), .op = SCMP_CMP_MASKED_EQ, .datum_a = 0xffffffffu, .datum_b = (v) })
/* All 64 bits of argument i at least v (see vsock_filter.h for why 64). */
#define GE64(i, v) ((struct scmp_arg_cmp){ .arg = (i), .op = SCMP_CMP_GE, .datum_a = (v), .datum_b = 0 })

#define ADD(ctx, act, nr, ...)                                                                                     \
    do {                                                                                                           \
        int rc_ = seccomp_rule_add((ctx), (act), (nr), __VA_ARGS__);                                               \
        if (rc_ < 0)                                                                                               \
            return rc_;                                                                                            \
    } while (0)

/* The calls whose argument 0 is the socket's fd (supervisor.c serves them). */
static const int fd_calls[] = { SCMP_SYS(close),       SCMP_SYS(bind),        SCMP_SYS(listen),
                                SCMP_SYS(accept),      SCMP_SYS(accept4),     SCMP_SYS(connect),
                                SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(getsockopt),
                                SCMP_SYS(setsockopt),  SCMP_SYS(shutdown) };

/* io_uring can make sockets without the socket call; the vhost ioctls are
 * the host side of the machine's own vsock device. */
static int common_refusals(scmp_filter_ctx c)
{
    ADD(c, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(io_uring_setup), 0);
    ADD(c, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(io_uring_enter), 0);
    ADD(c, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(io_uring_register), 0);
    ADD(c, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, LO32_EQ(1, (unsigned)VHOST_VSOCK_SET_GUEST_CID));
    ADD(c, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, LO32_EQ(1, (unsigned)VHOST_VSOCK_SET_RUNNING));
    return 0;
}

static int rules_errno(scmp_filter_ctx c, const struct hvsim_filter_args *a)
{
    const unsigned fam[2] = { a->fam_a, a->fam_b };

    for (int i = 0; i < (fam[1] == fam[0] ? 1 : 2); i++) {
        ADD(c, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, LO32_EQ(0, fam[i]));
        ADD(c, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socketpair), 1, LO32_EQ(0, fam[i]));
    }
    ADD(c, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, LO32_EQ(1, IOCTL_VM_SOCKETS_GET_LOCAL_CID));
    return common_refusals(c);
}

static int rules_guard(scmp_filter_ctx c, const struct hvsim_filter_args *a)
{
    ADD(c, SCMP_ACT_TRACE(0), SCMP_SYS(socket), 1, LO32_EQ(0, a->fam_a));
    ADD(c, SCMP_ACT_TRACE(0), SCMP_SYS(socketpair), 1, LO32_EQ(0, a->fam_a));
    if (a->fam_b != a->fam_a) {
        ADD(c, SCMP_ACT_TRACE(0), SCMP_SYS(socket), 1, LO32_EQ(0, a->fam_b));
        ADD(c, SCMP_ACT_TRACE(0), SCMP_SYS(socketpair), 1, LO32_EQ(0, a->fam_b));
    }
    return 0;
}

/* socket(40 | 34) can only be notified or refused: no rule allows them.
 * socketpair is refused as the kernel refuses it (EOPNOTSUPP for vsock). */
static int rules_notify(scmp_filter_ctx c, const struct hvsim_filter_args *a)
{
    uint32_t vsock = a->standin ? SCMP_ACT_ERRNO(EAFNOSUPPORT) : SCMP_ACT_NOTIFY;

    ADD(c, vsock, SCMP_SYS(socket), 1, LO32_EQ(0, AF_VSOCK));
    ADD(c, vsock, SCMP_SYS(socket), 1, LO32_EQ(0, HVSIM_FILTER_AF_HYPERV));
    ADD(c, SCMP_ACT_ERRNO(EOPNOTSUPP), SCMP_SYS(socketpair), 1, LO32_EQ(0, AF_VSOCK));
    ADD(c, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socketpair), 1, LO32_EQ(0, HVSIM_FILTER_AF_HYPERV));
    if (a->standin) {
        ADD(c, SCMP_ACT_NOTIFY, SCMP_SYS(socket), 1, LO32_EQ(0, (unsigned)a->standin));
        ADD(c, SCMP_ACT_ERRNO(EOPNOTSUPP), SCMP_SYS(socketpair), 1, LO32_EQ(0, (unsigned)a->standin));
    }
    ADD(c, SCMP_ACT_NOTIFY, SCMP_SYS(ioctl), 1, LO32_EQ(1, IOCTL_VM_SOCKETS_GET_LOCAL_CID));
    for (size_t i = 0; i < sizeof(fd_calls) / sizeof(fd_calls[0]); i++)
        ADD(c, SCMP_ACT_NOTIFY, fd_calls[i], 1, GE64(0, a->fd_floor));
    /* The queue ioctls answer per personality and kernel; a copy made by
     * dup or F_DUPFD must land at a served number too (dup2/dup3 name their
     * number: the kernel's). Every other ioctl and fcntl stays the kernel's. */
    ADD(c, SCMP_ACT_NOTIFY, SCMP_SYS(ioctl), 2, GE64(0, a->fd_floor), LO32_EQ(1, SIOCINQ));
    ADD(c, SCMP_ACT_NOTIFY, SCMP_SYS(ioctl), 2, GE64(0, a->fd_floor), LO32_EQ(1, SIOCOUTQ));
    ADD(c, SCMP_ACT_NOTIFY, SCMP_SYS(dup), 1, GE64(0, a->fd_floor));
    ADD(c, SCMP_ACT_NOTIFY, SCMP_SYS(fcntl), 2, GE64(0, a->fd_floor), LO32_EQ(1, F_DUPFD));
    ADD(c, SCMP_ACT_NOTIFY, SCMP_SYS(fcntl), 2, GE64(0, a->fd_floor), LO32_EQ(1, F_DUPFD_CLOEXEC));
    return common_refusals(c);
}

/* The other ABIs of the native architecture, which the kernel also runs. */
static int rules_abi(scmp_filter_ctx c)
{
    int rc = seccomp_arch_remove(c, SCMP_ARCH_NATIVE);

    if (rc < 0)
        return rc;
    switch (seccomp_arch_native()) {
    case SCMP_ARCH_X86_64:
        return seccomp_arch_add(c, SCMP_ARCH_X86);
    case SCMP_ARCH_AARCH64:
        return seccomp_arch_add(c, SCMP_ARCH_ARM);
    default:
        return -EOPNOTSUPP; /* not known here: refuse rather than guess */
    }
}

/* A ready context, or NULL with *err set. The caller releases it. */
static scmp_filter_ctx build(enum hvsim_filter_kind kind, const struct hvsim_filter_args *a, int *err)
{
    /* ABI: everything of the other ABIs is killed, the native one allowed.
     * The others: the native ABI is filtered; x32 and any ABI the filter
     * was not built for take the bad-architecture action, ENOSYS. */
    scmp_filter_ctx c = seccomp_init(kind == HVSIM_FILTER_ABI ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_ALLOW);
    int rc;

    if (c == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    rc = seccomp_attr_set(c, SCMP_FLTATR_ACT_BADARCH,
                          kind == HVSIM_FILTER_ABI ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(ENOSYS));
    if (rc == 0) {
        switch (kind) {
        case HVSIM_FILTER_ABI:
            rc = rules_abi(c);
            break;
        case HVSIM_FILTER_ERRNO:
            rc = rules_errno(c, a);
            break;
        case HVSIM_FILTER_GUARD:
            rc = rules_guard(c, a);
            break;
        case HVSIM_FILTER_NOTIFY:
            rc = rules_notify(c, a);
            break;
        default:
            rc = -EINVAL;
        }
    }
    if (rc < 0) {
        seccomp_release(c);
        *err = rc;
        return NULL;
    }
    return c;
}

static const char *const kind_name[] = { "other-ABI", "errno", "guard", "notify" };

static int g_killable; /* the last notify filter loaded waits killably */

int hvsim_filter_notify_killable(void)
{
    return g_killable;
}

/* The notify filter is loaded by hand: libseccomp 2.5.4 (Debian 12) cannot
 * ask for SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19). With it, a
 * call the supervisor has received is no longer cut short by a signal: the
 * signal stays pending and the supervisor answers as the kernel would
 * (supervisor.c, "signals"). A kernel without the flag (EINVAL) gets the
 * filter without it. Returns the listener or -errno. */
static int load_notify(scmp_filter_ctx c)
{
    struct sock_filter insn[4096];
    struct sock_fprog prog = { 0, insn };
    int fd = memfd_create("hvsim-filter", MFD_CLOEXEC), err, l;
    ssize_t n;

    err = fd < 0 ? -errno : seccomp_export_bpf(c, fd);
    if (err == 0 && lseek(fd, 0, SEEK_SET) != 0)
        err = -errno;
    n = err == 0 ? read(fd, insn, sizeof(insn)) : -1;
    if (fd >= 0)
        close(fd);
    if (err < 0)
        return err;
    if (n <= 0 || n % (ssize_t)sizeof(insn[0]) != 0 || n == (ssize_t)sizeof(insn))
        return -E2BIG;
    prog.len = (unsigned short)(n / (ssize_t)sizeof(insn[0]));
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    g_killable = 1;
    l = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                     SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
    if (l < 0 && errno == EINVAL) {
        g_killable = 0;
        l = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    }
    return l < 0 ? -errno : l;
}

int hvsim_filter_load(enum hvsim_filter_kind kind, const struct hvsim_filter_args *a, int *listener, char *why,
                      size_t why_len)
{
    int err = 0;
    scmp_filter_ctx c = build(kind, a, &err);

    if (c == NULL) {
        snprintf(why, why_len, "building the %s seccomp filter with libseccomp: %s", kind_name[kind],
                 strerror(-err));
        return -1;
    }
    /* libseccomp sets no_new_privs itself (SCMP_FLTATR_CTL_NNP is on by
     * default) and asks for a listener when a rule notifies. */
    if (listener) {
        *listener = load_notify(c);
        err = *listener < 0 ? *listener : 0;
    } else {
        err = seccomp_load(c);
    }
    seccomp_release(c);
    if (err < 0) {
        snprintf(why, why_len, "installing the %s seccomp filter: %s (a kernel without CONFIG_SECCOMP_FILTER?)",
                 kind_name[kind], strerror(-err));
        return -1;
    }
    /* Trust nothing: read back that this thread is filtered now. */
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2 /* SECCOMP_MODE_FILTER */) {
        snprintf(why, why_len, "the %s seccomp filter did not take effect", kind_name[kind]);
        return -1;
    }
    return 0;
}

int hvsim_filter_export(enum hvsim_filter_kind kind, const struct hvsim_filter_args *a, FILE *out)
{
    struct sock_filter f;
    int err = 0, fd;
    scmp_filter_ctx c = build(kind, a, &err);

    if (c == NULL)
        return err;
    fd = memfd_create("hvsim-filter", MFD_CLOEXEC);
    err = fd < 0 ? -errno : seccomp_export_bpf(c, fd);
    seccomp_release(c);
    if (err == 0 && lseek(fd, 0, SEEK_SET) != 0)
        err = -errno;
    while (err == 0 && read(fd, &f, sizeof(f)) == (ssize_t)sizeof(f))
        fprintf(out, "%04x %u %u %08x\n", f.code, f.jt, f.jf, f.k);
    if (fd >= 0)
        close(fd);
    return err < 0 ? err : 0;
}

int hvsim_filter_install(char *why, size_t why_len)
{
    const struct hvsim_filter_args a = { .fam_a = AF_VSOCK, .fam_b = HVSIM_FILTER_AF_HYPERV };

    if (hvsim_filter_load(HVSIM_FILTER_ABI, &a, NULL, why, why_len) != 0 ||
        hvsim_filter_load(HVSIM_FILTER_ERRNO, &a, NULL, why, why_len) != 0)
        return -1;
    return 0;
}
