/* SPDX-License-Identifier: MIT */
/*
 * catalogue.h: the conformance catalogue's shape, shared by the cases, the
 * agent and its backends.
 *
 * A case is a row: a stable string id, the one-line rule, its source and
 * confidence, the expected outcome per column (Windows AF_HYPERV, Linux guest
 * over hv_sock, Linux guest over virtio-vsock), and two functions: the host
 * side and the guest side, run by two agents that meet at a barrier before
 * every case (the pattern of Linux's tools/testing/vsock). Cases reach the
 * socket API only through backend.h, so the same row runs on the simulator
 * (libhvsim), in a QEMU guest (the kernel's AF_VSOCK) and on Windows (Winsock).
 */
#ifndef HVSIM_CF_CATALOGUE_H
#define HVSIM_CF_CATALOGUE_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* Columns of the matrix: how the guest side speaks. The host side always
 * speaks AF_HYPERV (it is a Hyper-V host, emulated or real). */
enum cf_column {
    CF_COL_WINDOWS = 0, /* guest: Windows, AF_HYPERV */
    CF_COL_HVSOCK = 1, /* guest: Linux, AF_VSOCK over hv_sock */
    CF_COL_VIRTIO = 2, /* guest: Linux, AF_VSOCK over virtio-vsock (QEMU + hvsim-vhost) */
    CF_COL_COUNT
};

/* An expected outcome: 0 = success, -E = that errno, or one of these. */
#define CF_NA 1 /* the case does not apply to this column: skipped */
#define CF_EOF 2 /* a read returns 0 */

enum cf_confidence { CF_SOURCED = 0, CF_INFERRED = 1, CF_UNCONFIRMED = 2 };

/* What a case needs from the target; a target that lacks it skips the case
 * with the reason, never fails it. */
#define CF_NEED_ADMIN 0x1 /* register services, change VM state (cf_admin_*) */
#define CF_NEED_SETTINGS 0x2 /* change hvsim settings (simulator only) */
#define CF_NEED_HCS 0x4 /* an HCS-kind VM */
#define CF_NEED_TWO_VMS 0x8

struct cf_ctx;
typedef int (*cf_fn)(struct cf_ctx *ctx);

struct cf_case {
    const char *id; /* "area.what-happens", stable: never renumbered */
    const char *area; /* addressing, binding, connecting, data, shutdown, readiness, lifecycle, registry */
    const char *rule; /* one line */
    const char *source; /* "docs/reference/hyperv-sockets.md 4.1 [S7b]" */
    enum cf_confidence confidence;
    int expect[CF_COL_COUNT];
    const char *diverge[CF_COL_COUNT]; /* non-NULL: a known divergence on this column, with the reason */
    unsigned needs;
    cf_fn host; /* may be NULL: one-sided case */
    cf_fn guest;
};

/* Everything a case function gets. */
struct cf_ctx {
    const struct cf_case *c;
    enum cf_column col;
    int side; /* 0 host, 1 guest */
    int expect; /* c->expect[col] */
    uint32_t short_timeout_ms; /* for cases that wait for a timeout: <= 500 */
    struct cf_control *ctl;
    cf_guid_t vm_id; /* the VM under test */
    cf_guid_t vm2_id; /* a second VM, or zero */
    cf_guid_t hcs_id; /* an HCS VM, or zero */
    uint32_t port_base; /* a fresh port range per case: port_base + 0..99 */
    char where[160]; /* the last step, for failure messages */
    char fail[512]; /* set by cf_fail */
};

/* Failure reporting: "expected X, got Y, at STEP (file:line)". The case
 * function returns -1 after cf_fail, 0 on success, CF_NA to skip with fail[] as
 * the reason. */
int cf_fail_at(struct cf_ctx *ctx, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define cf_fail(ctx, ...) cf_fail_at((ctx), __FILE__, __LINE__, __VA_ARGS__)
#define cf_step(ctx, ...) snprintf((ctx)->where, sizeof((ctx)->where), __VA_ARGS__)

/* Check a call's result (>= 0 or -errno) against an expectation (0 = any
 * success, -E, CF_EOF); on mismatch record "expected ..., got ..." and return -1. */
int cf_check_at(struct cf_ctx *ctx, const char *file, int line, long got, int want, const char *what);
#define CF_CHECK(ctx, got, want, what)                                    \
    do {                                                                  \
        if (cf_check_at((ctx), __FILE__, __LINE__, (long)(got), (want), (what)) < 0) \
            return -1;                                                    \
    } while (0)

/* Control channel between the two sides (control.c). Lines of text. */
int cf_ctl_writeln(struct cf_ctx *ctx, const char *line);
int cf_ctl_expectln(struct cf_ctx *ctx, const char *line); /* -1 on mismatch/timeout */
int cf_ctl_write_u64(struct cf_ctx *ctx, uint64_t v);
int cf_ctl_read_u64(struct cf_ctx *ctx, uint64_t *v);

/* Names for reports. */
const char *cf_column_name(enum cf_column col);
const char *cf_confidence_name(enum cf_confidence c);
const char *cf_expect_name(int e, char *buf, size_t len); /* "ok", "ECONNREFUSED", "EOF", "n/a" */

/* The catalogue: each cases/cases_<area>.c defines one array, ended by an
 * element whose id is NULL; cases.c (agent core) walks the eight in order. */
extern const struct cf_case cf_cases_addressing[], cf_cases_binding[], cf_cases_connecting[], cf_cases_registry[],
    cf_cases_data[], cf_cases_shutdown[], cf_cases_readiness[], cf_cases_lifecycle[];
/* Appended after the eight, so the numbers of the cases before it never change:
 * the send/receive family (cases_msg.c, area "data"). */
extern const struct cf_case cf_cases_msg[];
/* Appended after it: what a Linux guest's transport and kernel decide (cases_vsock.c). */
extern const struct cf_case cf_cases_vsock[];
/* Appended after it: SOCK_SEQPACKET over vsock (cases_seqpacket.c). */
extern const struct cf_case cf_cases_seqpacket[];
size_t cf_catalogue_size(void);
const struct cf_case *cf_catalogue_at(size_t i);

#endif /* HVSIM_CF_CATALOGUE_H */
