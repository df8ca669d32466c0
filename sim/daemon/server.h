/* SPDX-License-Identifier: MIT */
/*
 * server.h: hvsimd's event loop (server.c), driven by main.c and by tests.
 * What its files share among themselves is in server_int.h.
 */
#ifndef HVSIM_SERVER_H
#define HVSIM_SERVER_H

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>

#include "daemon.h"

struct server {
    struct model m;
    char dir[PATH_MAX];
    char state_dir[PATH_MAX];
    int ep;
    int admin_fd;
    int sig_fd;
    int stop;
    char *buf; /* one received message */
    /* Connects waiting for a gateway's verdict (gateway.c). */
    struct offer *offers;
    size_t noffers, coffers;
    uint64_t next_offer;
    /* Kept for the moment accept() fails for want of descriptors (server.c, shed_connection). */
    int reserve_fd;
    uint64_t accept_paused_until_ns; /* 0: accepting */
    uint64_t hello_next_ns; /* the earliest HELLO deadline (0: none) */
    int l_fd; /* HVSIM_DIR/l/, the listeners' socket files (listeners.c) */
    /* Host connects waiting for a guest listener (waiting.c). */
    struct waiter *waiters;
    size_t nwaiters, cwaiters;
    int stopping; /* server_fini: the listeners live on, their files stay */
    /* The routing epoch (spares.c): its page, and the sealed memfd every process maps. */
    _Atomic uint64_t *epoch;
    int epoch_fd;
};

/* Set up DIR (sockets) and STATE_DIR (persistence, "" or NULL: none), apply
 * "name=value" settings. Returns 0 or -errno with a message in err. */
int server_init(struct server *s, const char *dir, const char *state_dir, const char *const *sets, size_t nsets,
                char *err, size_t errlen);
/* Serve until SIGTERM/SIGINT. Writes a line to ready_fd (if >= 0) and closes it first. */
int server_run(struct server *s, int ready_fd);
void server_fini(struct server *s);
/* sd_notify(3) by hand (notify.c): send state ("READY=1\n...") to
 * $NOTIFY_SOCKET. 0 when it is unset, 1 when sent, -errno (and err) else. */
int notify_systemd(const char *state, char *err, size_t errlen);

#endif /* HVSIM_SERVER_H */
