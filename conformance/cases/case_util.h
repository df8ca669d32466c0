/* SPDX-License-Identifier: MIT */
/*
 * case_util.h: steps shared by the case files (case_util.c).
 */
#ifndef HVSIM_CF_CASE_UTIL_H
#define HVSIM_CF_CASE_UTIL_H

#include "../catalogue.h"
#include "../cf_const.h"

int cfc_is_vsock(const struct cf_ctx *ctx);
int cfc_skip(struct cf_ctx *ctx, const char *why);
int cfc_guid_is(struct cf_ctx *ctx, const cf_guid_t *got, const cf_guid_t *want, const char *what);
int cfc_send_all(struct cf_ctx *ctx, cf_sock_t s, const char *text);
int cfc_recv_is(struct cf_ctx *ctx, cf_sock_t s, const char *text);

int cfc_open_sock(struct cf_ctx *ctx, enum cf_family fam, int nonblock, cf_sock_t *s);
const char *cfc_vm_text(const struct cf_ctx *ctx, const cf_guid_t *g, char buf[37]);
int cfc_reg(struct cf_ctx *ctx, uint32_t port);
int cfc_host_listen(struct cf_ctx *ctx, const cf_guid_t *vm, uint32_t port, cf_sock_t *l);
int cfc_accept_one(struct cf_ctx *ctx, cf_sock_t l, cf_sock_t *c);
int cfc_ping(struct cf_ctx *ctx, cf_sock_t s);
int cfc_pong(struct cf_ctx *ctx, cf_sock_t c);

#endif /* HVSIM_CF_CASE_UTIL_H */
