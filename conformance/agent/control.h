/* SPDX-License-Identifier: MIT */
/*
 * control.h: the agents' control channel, a stream of text lines over TCP or
 * a Unix socket (never a Hyper-V or vsock socket: it must work when those are
 * the thing under test). The host side listens, the guest side connects.
 *
 * The framework's own lines (agent.c): guest "HELLO <column> <backend>", host
 * "CONFIG ...", "CASE <id> <port_base>", guest "READY <id>" or "SKIP <id>
 * <reason>", either side "ABORT <id> <why>" when its part failed first, guest
 * "RESULT <id> pass|fail|skip <message>", host "DONE". Everything else is the
 * cases' own (cf_ctl_writeln/cf_ctl_expectln), so a case's line must not begin
 * with one of those words.
 *
 * Every read has a deadline, so a peer that died or hangs fails one wait, never
 * the whole run; an end of stream is reported as -EPIPE.
 */
#ifndef HVSIM_CF_CONTROL_H
#define HVSIM_CF_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "../backend.h"

#define CF_CTL_LINE_MAX 1024

struct cf_control {
    cf_sock_t fd; /* the connection, or CF_NO_SOCK */
    cf_sock_t lfd; /* host side: the listener, kept for a guest that reconnects */
    int in_fd; /* POSIX case child: the lines its parent forwards (a pipe), else -1 */
    uint64_t deadline_ms; /* inside a case: cf_ctl_* reads give up at this time (0: 10 s) */
    char stash[CF_CTL_LINE_MAX]; /* a framework line a case read instead of its own */
    char err[256]; /* what the last failing call saw */
    char path[256]; /* unix-listen: the path to remove at the end */
    size_t len;
    char buf[8192];
};

void cf_ctl_init(struct cf_control *c);
/* Host: listen on tcp-listen:[HOST:]PORT or unix-listen:PATH. 0 or -errno (c->err). */
int cf_ctl_listen(struct cf_control *c, const char *addr);
/* Host: take the next guest connection before deadline_ms (cf_now_ms time). */
int cf_ctl_accept(struct cf_control *c, uint64_t deadline_ms);
/* Guest: connect to tcp:HOST:PORT or unix:PATH, retrying until deadline_ms while
 * nobody listens yet (the two agents start in either order). */
int cf_ctl_connect(struct cf_control *c, const char *addr, uint64_t deadline_ms);

/* Send one line; newlines inside it become spaces. 0 or -errno. */
int cf_ctl_send(struct cf_control *c, const char *line);
/* The next line, without its newline: 0, -ETIMEDOUT at deadline_ms, -EPIPE at
 * the end of the stream, or -errno. */
int cf_ctl_recv(struct cf_control *c, char *line, size_t cap, uint64_t deadline_ms);
/* A complete line already read, if there is one (1), else 0: no I/O. */
int cf_ctl_take(struct cf_control *c, char *line, size_t cap);
/* One read into the buffer: >0 bytes, 0 at the end of the stream, -errno. */
int cf_ctl_fill(struct cf_control *c);
/* The descriptor reads come from (for the agent's poll loop). */
cf_sock_t cf_ctl_source(const struct cf_control *c);

/* Drop the connection (the listener stays). */
void cf_ctl_close(struct cf_control *c);
/* Drop everything, and remove a unix-listen path. */
void cf_ctl_shutdown(struct cf_control *c);

/* A framework line that arrives during a case (1 for "RESULT ..." and "ABORT ..."). */
int cf_ctl_is_framework_line(const char *line);

#endif /* HVSIM_CF_CONTROL_H */
