/* SPDX-License-Identifier: MIT */
/*
 * vlog.h: logging of the vhost-user-vsock backend, to stderr (the backend
 * runs in the foreground and never daemonizes; whoever started it keeps the
 * log). Messages caused by the guest or the front-end are rate-limited, so a
 * hostile guest cannot flood the log.
 */
#ifndef HVSIM_VHOST_VLOG_H
#define HVSIM_VHOST_VLOG_H

#define VLOG_ERR 0
#define VLOG_INFO 1
#define VLOG_DEBUG 2
/* Not an error, but printed at the default level too: the counters at exit
 * and on SIGUSR1 (tests read them from the log). */
#define VLOG_REPORT VLOG_ERR

/* Messages above this level are dropped; -1 silences everything (tests). */
extern int vlog_level;

/* One line "hvsim-vhost: <message>" when level <= vlog_level. */
__attribute__((format(printf, 2, 3))) void vlog(int level, const char *fmt, ...);

/* vlog(VLOG_ERR, ...) for something a peer did: the first VLOG_PEER_BURST
 * lines are printed, then one in every 1000. */
#define VLOG_PEER_BURST 32
__attribute__((format(printf, 1, 2))) void vlog_peer(const char *fmt, ...);

#endif /* HVSIM_VHOST_VLOG_H */
