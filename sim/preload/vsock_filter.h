/* SPDX-License-Identifier: MIT */
/*
 * vsock_filter.h: the seccomp-BPF filter that keeps a process tree away from
 * the machine's own vsock device, shared by hvsim-run (which installs it
 * before exec'ing the program) and hvsim-hybrid (which installs it on itself).
 *
 * The emulated sockets are AF_UNIX streams made by libhvsim, so a process
 * attached to the simulator never needs the kernel's AF_VSOCK or family 34.
 * The filter makes sure it never gets them, whatever path a call takes: the
 * interposer, a raw syscall(), a static binary or a program that bypasses
 * LD_PRELOAD. It answers, in the kernel and before any socket code runs:
 *
 *   socket(AF_VSOCK | 34, ...), socketpair(AF_VSOCK | 34, ...) -> EAFNOSUPPORT
 *   io_uring_setup/enter/register   -> ENOSYS (IORING_OP_SOCKET would create
 *                                      sockets without the socket syscall)
 *   ioctl IOCTL_VM_SOCKETS_GET_LOCAL_CID, VHOST_VSOCK_SET_GUEST_CID,
 *         VHOST_VSOCK_SET_RUNNING   -> EPERM (the machine's CID and its
 *                                      host-side vhost-vsock device)
 *   any x32 system call             -> ENOSYS (another numbering of socket)
 *   a system call of another ABI    -> the process is killed (int 0x80 on
 *                                      x86_64 has i386 numbers, where 41 is
 *                                      not socket: numbers cannot be trusted)
 *
 * SECCOMP_RET_ERRNO keeps the program alive with an ordinary error, so a
 * program that probes for vsock gets a clean "not supported" instead of a
 * signal. The filter is inherited by every child and survives execve; it
 * cannot be removed. This guards against accidents, not an adversary: a root
 * process can still reach an unfiltered process (ptrace, for one).
 *
 * The family is compared on the low 32 bits of the argument only, because
 * the kernel reads `int family` and ignores the high half: comparing all 64
 * bits would let garbage in the high half slip past.
 */
#ifndef HVSIM_PRELOAD_VSOCK_FILTER_H
#define HVSIM_PRELOAD_VSOCK_FILTER_H

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/vhost.h>
#include <linux/vm_sockets.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "vsock_filter.h: only x86_64 is written and tested (add its AUDIT_ARCH and syscall rules for another)"
#endif

#define HVSIM_FILTER_ARCH AUDIT_ARCH_X86_64
#define HVSIM_FILTER_X32_BIT 0x40000000u /* __X32_SYSCALL_BIT */
#define HVSIM_FILTER_AF_HYPERV 34

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif

#define HVSIM_FILTER_ERRNO(e) (SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))
/* Offsets in struct seccomp_data; x86_64 is little-endian, so the low word of
 * a 64-bit argument comes first. */
#define HVSIM_FILTER_NR offsetof(struct seccomp_data, nr)
#define HVSIM_FILTER_ARCH_OFF offsetof(struct seccomp_data, arch)
#define HVSIM_FILTER_ARG_LO(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(__u64))

/* Where each block starts: the jumps below are computed from these, so the
 * layout is written once. hvsim_filter_build() checks every label. */
enum {
    HVF_L_NOSYS = 13,
    HVF_L_FAMILY = 14,
    HVF_L_AFNOSUPPORT = 18,
    HVF_L_IOCTL = 19,
    HVF_L_EPERM = 24,
    HVF_LEN = 25,
};

/*
 * Build the program for two forbidden families (AF_VSOCK and 34 in use).
 * Taking the families as arguments lets a harmless pair (AF_INET, AF_INET6)
 * exercise the very same program in a scratch check that never names vsock.
 * f must hold HVF_LEN instructions. Returns the count, or 0 if the layout and
 * the labels disagree (the caller then refuses to run: fail closed).
 */
static inline unsigned short hvsim_filter_build(struct sock_filter *f, unsigned fam_a, unsigned fam_b)
{
    unsigned short n = 0;
    int bad = 0;

#define HVF_STMT(code, k) (f[n] = (struct sock_filter)BPF_STMT((code), (k)), n++)
    /* A conditional jump to label L when true, falling through when false. */
#define HVF_JEQ_TO(k, L) (f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), \
                                                              (unsigned char)((L) - (n + 1)), 0), n++)
#define HVF_AT(L) (bad |= (n != (L)))
    /* 0-2: the ABI first; syscall numbers mean nothing under another one. */
    HVF_STMT(BPF_LD | BPF_W | BPF_ABS, HVSIM_FILTER_ARCH_OFF);
    f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, HVSIM_FILTER_ARCH, 1, 0), n++;
    HVF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    /* 3-5: x32 system calls share the arch value and set bit 30 of nr. */
    HVF_STMT(BPF_LD | BPF_W | BPF_ABS, HVSIM_FILTER_NR);
    f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, HVSIM_FILTER_X32_BIT, 0, 1), n++;
    HVF_STMT(BPF_RET | BPF_K, HVSIM_FILTER_ERRNO(ENOSYS));
    /* 6-12: dispatch on the number; everything else is allowed. */
    HVF_JEQ_TO(__NR_socket, HVF_L_FAMILY);
    HVF_JEQ_TO(__NR_socketpair, HVF_L_FAMILY);
    HVF_JEQ_TO(__NR_ioctl, HVF_L_IOCTL);
    HVF_JEQ_TO(__NR_io_uring_setup, HVF_L_NOSYS);
    HVF_JEQ_TO(__NR_io_uring_enter, HVF_L_NOSYS);
    HVF_JEQ_TO(__NR_io_uring_register, HVF_L_NOSYS);
    HVF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    HVF_AT(HVF_L_NOSYS);
    HVF_STMT(BPF_RET | BPF_K, HVSIM_FILTER_ERRNO(ENOSYS));
    /* socket/socketpair: the family is argument 0, an int. */
    HVF_AT(HVF_L_FAMILY);
    HVF_STMT(BPF_LD | BPF_W | BPF_ABS, HVSIM_FILTER_ARG_LO(0));
    HVF_JEQ_TO(fam_a, HVF_L_AFNOSUPPORT);
    HVF_JEQ_TO(fam_b, HVF_L_AFNOSUPPORT);
    HVF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    HVF_AT(HVF_L_AFNOSUPPORT);
    HVF_STMT(BPF_RET | BPF_K, HVSIM_FILTER_ERRNO(EAFNOSUPPORT));
    /* ioctl: the request is argument 1, an unsigned int. */
    HVF_AT(HVF_L_IOCTL);
    HVF_STMT(BPF_LD | BPF_W | BPF_ABS, HVSIM_FILTER_ARG_LO(1));
    HVF_JEQ_TO(IOCTL_VM_SOCKETS_GET_LOCAL_CID, HVF_L_EPERM);
    HVF_JEQ_TO((unsigned)VHOST_VSOCK_SET_GUEST_CID, HVF_L_EPERM);
    HVF_JEQ_TO((unsigned)VHOST_VSOCK_SET_RUNNING, HVF_L_EPERM);
    HVF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    HVF_AT(HVF_L_EPERM);
    HVF_STMT(BPF_RET | BPF_K, HVSIM_FILTER_ERRNO(EPERM));
    HVF_AT(HVF_LEN);
#undef HVF_STMT
#undef HVF_JEQ_TO
#undef HVF_AT
    return bad ? 0 : n;
}

/*
 * Install the filter on the calling thread (and so on everything it execs or
 * forks from now on). Sets PR_SET_NO_NEW_PRIVS, which an unprivileged
 * process needs for seccomp and which keeps set-uid programs from gaining
 * privileges around it. Returns 0, or -1 with the reason in why.
 */
static inline int hvsim_filter_install_families(unsigned fam_a, unsigned fam_b, char *why, size_t why_len)
{
    struct sock_filter f[HVF_LEN];
    struct sock_fprog prog = { .len = hvsim_filter_build(f, fam_a, fam_b), .filter = f };

    if (prog.len == 0) {
        snprintf(why, why_len, "the seccomp program's labels do not match its layout (a build bug)");
        return -1;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(why, why_len, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
        return -1;
    }
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0 &&
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
        snprintf(why, why_len, "installing the seccomp filter: %s (a kernel without CONFIG_SECCOMP_FILTER?)",
                 strerror(errno));
        return -1;
    }
    /* Trust nothing: read back that this thread is filtered now. */
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != SECCOMP_MODE_FILTER) {
        snprintf(why, why_len, "the seccomp filter did not take effect (PR_GET_SECCOMP says %d)",
                 prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
        return -1;
    }
    return 0;
}

/* The filter hvsim uses: AF_VSOCK and AF_HYPERV (34). */
static inline int hvsim_filter_install(char *why, size_t why_len)
{
    return hvsim_filter_install_families(AF_VSOCK, HVSIM_FILTER_AF_HYPERV, why, why_len);
}

#endif /* HVSIM_PRELOAD_VSOCK_FILTER_H */
