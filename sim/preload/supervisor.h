/* SPDX-License-Identifier: MIT */
/*
 * supervisor.h: hvsim-run's supervisor mode (supervisor.c). The program runs
 * under a seccomp user-notification filter and its emulated sockets' calls
 * are served by the launcher, which stays as the program's parent.
 */
#ifndef HVSIM_PRELOAD_SUPERVISOR_H
#define HVSIM_PRELOAD_SUPERVISOR_H

#include <stdio.h>

/* Served sockets live at fd numbers >= this in the program; the filter
 * sends the fd-taking calls to the supervisor only for these numbers. */
#define HVSIM_SV_FD_FLOOR 768

struct hvsim_sv_opts {
    /* 0: serve AF_VSOCK (40) and AF_HYPERV (34). Else a stand-in family
     * number served as AF_VSOCK, for tests: 40 and 34 are then refused by the
     * filter, and the launcher puts the errno guard of vsock_filter.h on the
     * supervisor and the program both before anything else. */
    int standin;
    const char *stats; /* NULL, or a file for the per-call counters at exit */
};

/* Checks, forks the program (argv) under the filter and serves it until
 * every filtered process is gone. Returns the exit status for hvsim-run
 * (the program's; 125 when the supervisor could not be set up). */
int hvsim_supervise(char **argv, const struct hvsim_sv_opts *o);

/* The filters a supervised program gets (standin: 0 or the stand-in), in
 * order, each as "filter NAME" and its instructions (hvsim_filter_export),
 * for hvsim-run --print-filters. 0 or -errno. */
int hvsim_sv_export_filters(int standin, FILE *out);

#endif
