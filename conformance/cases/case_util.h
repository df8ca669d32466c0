/* SPDX-License-Identifier: MIT */
/*
 * case_util.h: steps shared by the case files (case_util.c).
 */
#ifndef HVSIM_CF_CASE_UTIL_H
#define HVSIM_CF_CASE_UTIL_H

#include "../catalogue.h"
#include "../cf_const.h"

/* The timing the cases share. */
#define CFC_QUICK_MS 1000u /* a connect that must not wait: an answer comes long before this */
#define CFC_ARRIVE_MS 3000 /* how long a side waits for the connection the other side makes */
#define CFC_DEFAULT_TIMEOUT_MS 2000u /* VSOCK_DEFAULT_CONNECT_TIMEOUT; windows_connect_timeout_ms */
#define CFC_EARLY_MS 20u /* a jiffy-based timer may fire this much before the wall clock says */
#define CFC_LATE_MS 1000u /* scheduling and sanitizer slack after a timeout */

int cfc_is_vsock(const struct cf_ctx *ctx);
int cfc_skip(struct cf_ctx *ctx, const char *why);
int cfc_guid_is(struct cf_ctx *ctx, const cf_guid_t *got, const cf_guid_t *want, const char *what);
int cfc_send_all(struct cf_ctx *ctx, cf_sock_t s, const char *text);
int cfc_recv_is(struct cf_ctx *ctx, cf_sock_t s, const char *text);

int cfc_open_sock(struct cf_ctx *ctx, enum cf_family fam, int nonblock, cf_sock_t *s);
const char *cfc_vm_text(const struct cf_ctx *ctx, const cf_guid_t *g, char buf[37]);
int cfc_reg(struct cf_ctx *ctx, uint32_t port);
/* An administration call's result: 0, CF_NA with why as the reason when the
 * target cannot do it (-ENOTSUP), else a failure of what. */
int cfc_admin_ok(struct cf_ctx *ctx, int rc, const char *why, const char *what);
/* The HCS VM's service table entry for port (skipped where it cannot be set). */
int cfc_hcs_entry(struct cf_ctx *ctx, uint32_t port, int bind_deny, int connect_deny, int allow_wildcard,
                  int disabled);
/* One name of an AF_HYPERV socket (vm, svc NULL: not checked); who names it in the step. */
int cfc_hv_name_is(struct cf_ctx *ctx, cf_sock_t s, int peer, const cf_guid_t *vm, const cf_guid_t *svc,
                   const char *who);

/* Listeners: the host's on {vm, port}; the guest's on {HV_GUID_PARENT, port}
 * (Windows) or (VMADDR_CID_ANY, port) (Linux, 4.2, 3.1). */
int cfc_host_listen(struct cf_ctx *ctx, const cf_guid_t *vm, uint32_t port, cf_sock_t *l);
int cfc_guest_listen(struct cf_ctx *ctx, uint32_t port, cf_sock_t *l);
int cfc_accept_one(struct cf_ctx *ctx, cf_sock_t l, cf_sock_t *c);
int cfc_ping(struct cf_ctx *ctx, cf_sock_t s);
int cfc_pong(struct cf_ctx *ctx, cf_sock_t c);

/* A connect and how long it took. */
struct cfc_dial {
    cf_sock_t s;
    int rc; /* connect's own result */
    uint64_t ms;
    uint32_t timeout; /* what the socket had: the set value, or the default */
};

/* A socket for a dial; timeout_ms 0 leaves the socket's default. */
int cfc_dial_prep(struct cf_ctx *ctx, enum cf_family fam, int nonblock, uint32_t timeout_ms, struct cfc_dial *d);
/* The timed connect of a prepared dial (the caller names the step). */
void cfc_dial_hv(struct cfc_dial *d, const cf_guid_t *vm, const cf_guid_t *svc);
void cfc_dial_vsock(struct cfc_dial *d, uint32_t cid, uint32_t port);
/* The host's connect to {vm, port}; the guest's to the host's service port
 * in its column's personality. */
int cfc_host_dial(struct cf_ctx *ctx, const cf_guid_t *vm, uint32_t port, uint32_t timeout_ms, struct cfc_dial *d);
int cfc_guest_dial(struct cf_ctx *ctx, uint32_t port, int nonblock, uint32_t timeout_ms, struct cfc_dial *d);
/* The connect's result is ctx->expect, and it came when it should: ETIMEDOUT
 * after the timeout, any other refusal at once (under a tenth of it). */
int cfc_dial_is(struct cf_ctx *ctx, const struct cfc_dial *d);
/* The timeout a refusal case sets: a short one when the expected outcome is
 * the timeout itself, else CFC_QUICK_MS so that "at once" has room to be measured. */
uint32_t cfc_timeout_for(const struct cf_ctx *ctx);
/* The guest's connect to the host's service port, checked with cfc_dial_is
 * under cfc_timeout_for; the socket goes to *out, or is closed when out is NULL. */
int cfc_guest_dial_check(struct cf_ctx *ctx, uint32_t port, cf_sock_t *out);

/* The two halves of one connection on port_base, announced over the control
 * channel: a side listens (host: on {vm, port}; guest: its usual listener),
 * says LISTENING and accepts; the other waits for LISTENING and dials with
 * CFC_QUICK_MS, expecting ctx->expect (the host dials the VM under test). */
int cfc_host_accept(struct cf_ctx *ctx, const cf_guid_t *vm, cf_sock_t *l, cf_sock_t *c);
int cfc_guest_accept(struct cf_ctx *ctx, cf_sock_t *l, cf_sock_t *c);
int cfc_host_dial_listening(struct cf_ctx *ctx, struct cfc_dial *d);
int cfc_guest_dial_listening(struct cf_ctx *ctx, struct cfc_dial *d);
/* Host: register port_base, accept on {vm, port_base}, answer a ping. Guest:
 * dial it and ping. */
int cfc_serve_pong(struct cf_ctx *ctx, const cf_guid_t *vm);
int cfc_dial_ping(struct cf_ctx *ctx);
/* A Linux guest's connection to the host's port_base: the peer is (CID 2,
 * port_base), the local port auto-bound above 1023; *cid and *port are the local name. */
int cfc_vsock_dialer_names(struct cf_ctx *ctx, cf_sock_t s, uint32_t *cid, uint32_t *port);

#endif /* HVSIM_CF_CASE_UTIL_H */
