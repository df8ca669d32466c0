/* SPDX-License-Identifier: MIT */
/*
 * dlog.h: hvsimd's decision log (hvsimd --log FILE --log-format text|json):
 * one record per bind, listen and connect decision, written where the
 * decision is applied: who asked (partition, pid), the addresses, the verdict
 * and the rule or setting that decided it (hvproto/rules.h), whose id names a
 * row of the README's tables.
 */
#ifndef HVSIM_DLOG_H
#define HVSIM_DLOG_H

#include <stddef.h>

#include "daemon.h"

/* Open (append) path; json: one JSON object a line. 0 or -errno (and err). */
int dlog_open(const char *path, int json, char *err, size_t errlen);
void dlog_close(void);

/* A bind: what was asked, what was given (on success) and route_bind's rc. */
void dlog_bind(const struct proc *c, uint32_t pers, const GUID *vmid, const GUID *svc, int rc);
/* A listen on bind b: route_listen's rc. */
void dlog_listen(const struct proc *c, const struct bind *b, int rc);
/* A connect's outcome as it is applied: the router's, the gateway ceiling's
 * or the guest's answer (to: the name of the partition it reaches, NULL when none;
 * vanished: what the connector applies itself if the listener is gone). */
void dlog_connect(const struct proc *c, uint32_t pers, const GUID *vmid, const GUID *svc, const char *to,
                  const struct hvsim_outcome *o, const struct hvsim_outcome *vanished);

/* A rule id's name (hvproto/rules.h), as the log and hvsimctl show it. */
const char *dlog_rule_name(uint32_t rule);

#endif
