/* SPDX-License-Identifier: MIT */
/*
 * vsock_filter.h: the seccomp filters that keep a process tree away from the
 * machine's own vsock device (vsock_filter.c), built with libseccomp for
 * whatever architecture the program is compiled for. Used by hvsim-run (both
 * modes), the supervisor and hvsim-hybrid.
 *
 * A mode installs a stack of them; the kernel takes the strongest action any
 * filter of the stack returns (docs/supervisor.md):
 *
 *   HVSIM_FILTER_ABI     every system call of another ABI of this machine
 *                        (i386 on x86_64, 32-bit ARM on arm64): the process is
 *                        killed (its numbers mean other calls: 41 is not socket)
 *   HVSIM_FILTER_ERRNO   socket/socketpair(fam_a | fam_b) -> EAFNOSUPPORT,
 *                        io_uring_setup/enter/register -> ENOSYS,
 *                        ioctl IOCTL_VM_SOCKETS_GET_LOCAL_CID,
 *                        VHOST_VSOCK_SET_GUEST_CID/SET_RUNNING -> EPERM,
 *                        any x32 call -> ENOSYS
 *   HVSIM_FILTER_GUARD   socket/socketpair(fam_a | fam_b) -> SECCOMP_RET_TRACE
 *                        (loses to USER_NOTIF, ENOSYS when nothing traces)
 *   HVSIM_FILTER_NOTIFY  the supervisor's: socket(40 | 34 | stand-in),
 *                        ioctl GET_LOCAL_CID and the fd calls on fds >= the
 *                        floor -> USER_NOTIF; the refusals of ERRNO otherwise
 *
 * The family and the ioctl request are compared on the low 32 bits only (the
 * kernel reads an int); the fd floor on all 64 (garbage in the high half
 * only sends a call to the supervisor, which reads the int and passes it on).
 * Every x32 call gets ENOSYS through libseccomp's bad-architecture action on
 * x86_64, which is why the other ABIs are killed by a filter of their own.
 */
#ifndef HVSIM_PRELOAD_VSOCK_FILTER_H
#define HVSIM_PRELOAD_VSOCK_FILTER_H

#include <stddef.h>
#include <stdio.h>

#define HVSIM_FILTER_AF_HYPERV 34

enum hvsim_filter_kind { HVSIM_FILTER_ABI, HVSIM_FILTER_ERRNO, HVSIM_FILTER_GUARD, HVSIM_FILTER_NOTIFY };

struct hvsim_filter_args {
    unsigned fam_a, fam_b; /* ERRNO and GUARD: the families refused / guarded */
    int standin;           /* NOTIFY: 0, or the stand-in family served (40 and 34 then refused) */
    unsigned fd_floor;     /* NOTIFY: fd calls on numbers >= this are served */
};

/* Install one filter on the calling thread (and everything it execs or forks
 * from now on); sets no_new_privs. listener: NULL, or (NOTIFY) where the
 * user-notification fd goes. 0, or -1 with the reason in why. */
int hvsim_filter_load(enum hvsim_filter_kind kind, const struct hvsim_filter_args *a, int *listener, char *why,
                      size_t why_len);

/* 1 when the last NOTIFY filter this process loaded has
 * SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19 and later): a received
 * notification then waits out non-fatal signals. */
int hvsim_filter_notify_killable(void);

/* The filter as the kernel gets it, one classic BPF instruction a line
 * ("code jt jf k", hex code and k): 0 or -errno. For `hvsim-run
 * --print-filters` and the test that runs the filters on made-up calls. */
int hvsim_filter_export(enum hvsim_filter_kind kind, const struct hvsim_filter_args *a, FILE *out);

/* The wall of hvsim-run's interposer mode, the supervisor process and
 * hvsim-hybrid: ABI, then ERRNO for AF_VSOCK and 34. */
int hvsim_filter_install(char *why, size_t why_len);

#endif /* HVSIM_PRELOAD_VSOCK_FILTER_H */
