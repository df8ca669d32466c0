/* SPDX-License-Identifier: MIT */
/*
 * fuzz_server.c: libFuzzer harness for hvsimd's client protocol: whatever a
 * process attached to the daemon can send on its control connection (every
 * handler of sim/daemon/handlers_*.c, with the routing and the model
 * behind them), and whatever a VM back-end can send on a gateway channel
 * (VERDICT).
 *
 * One daemon per fuzzing process (server_init in a fresh folder under /tmp,
 * no persistence), with a fixed host ID, a classic VM "a", an hcs VM "b" and
 * one registered service. The daemon's .c files are included here, so the
 * harness drives its static event handling exactly as server_run does: the
 * daemon's own epoll set says which client or gateway channel is readable,
 * serve_one or gateway_readable handles it (after the same "dropped earlier
 * in this batch" checks), and offers_sweep runs before every epoll_wait.
 *
 * The input is one byte choosing the partitions of four client slots (two
 * bits per slot, slot 0 lowest: 0 the host, 1 the first VM, 2 the last VM,
 * 3 the admin socket), then records {u8 flags, u16 len (le), len bytes}.
 * A record is one SEQPACKET message; its flags:
 *   bits 0-1  the slot. A slot without a live client gets one first, made as
 *             accept_client makes it but from a socketpair (the daemon's end
 *             becomes the proc's fd); at most 32 per input, so that inputs
 *             full of empty records (each one EOF, a drop) stay cheap.
 *   bit 2     pass one end of a new SEQPACKET pair with the message (SCM_RIGHTS);
 *             the slot keeps the other end as its newest channel (an event
 *             socket with HELLO, a gateway channel with LISTEN).
 *   bit 3     write into one of the slot's channels (the newest; with bit 7,
 *             the one before) instead of its control socket: the back-end's
 *             side of a gateway.
 *   bit 4     raw. Otherwise the header's len is set to the body's, and a
 *             known type's body is cut or zero-padded to its size, so that
 *             mutations reach the handlers rather than only the length check.
 *   bit 5     defer: the next record is written before the daemon runs, so one
 *             epoll batch holds several events.
 *   bit 6     hang up: close that end (client or channel) instead of writing.
 *   bit 7     without bit 3: with bit 2, the client also keeps a copy of the end
 *             it passed (a sloppy back-end); without bit 2, two fresh fds are
 *             passed, the first as with bit 2, the second for the daemon to close.
 * After the last record every end is closed, and the daemon runs until quiet.
 *
 * Checked besides sanitizer reports: everything the daemon sends is a
 * well-formed message (hvsim__msg_check) without fds; every OK connect
 * reply carries a ticket signed with a key the daemon gave a listener of
 * this input, and to a VM's process names its parent or itself as the peer
 * (never a sibling: route.c); the event loop settles (no event it keeps
 * being woken by and ignores: server_run would spin); once every client
 * has gone, the daemon has no procs, binds or offers left, and every
 * partition's counts against its ceilings are 0; and no fd leaks
 * (the count of open fds is the same before and after). Between inputs the
 * harness puts back the VMs, services and settings the admin socket may
 * have changed, and the ID counters, so an input replays the same way.
 *
 * With -DHVSIM_FUZZ_STANDALONE it builds with plain gcc into a program that
 * runs the target once on each file named on the command line. With
 * -DHVSIM_FUZZ_SEEDS it writes the seed corpus into the folder named on the
 * command line and runs each seed, checking that it gets as far as intended:
 *
 *   gcc -std=c11 -D_GNU_SOURCE -Isim/include -Isim/proto/include -Isim/lib/adapter -Isim/daemon \
 *       -DHVSIM_FUZZ_SEEDS \
 *       -o /tmp/fuzz-server-seeds sim/fuzz/fuzz_server.c sim/lib/[a-z]*.c sim/proto/[a-z]*.c -luuid -pthread
 *   /tmp/fuzz-server-seeds sim/fuzz/corpus/server
 *
 * The regress-* seeds are not generated: they are the reproducers of bugs
 * this target found (a gateway channel the back-end kept a copy of stayed in
 * epoll; a guest claiming the host's CID addressing reached a sibling), kept
 * as they were but for the protocol version in their HELLOs (moved to 4
 * with the paged lists, to 5 with the VMs' transports, to 7 with the
 * listings of listeners and connections, so that they still get past HELLO).
 *
 * The daemon logs every client it drops; that goes to /dev/null under
 * libFuzzer (HVSIM_FUZZ_LOG=1 keeps it) and to stderr in the other modes.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_count.h"

/* There is no FUZZ_EXTRA_server: the daemon comes in as one translation unit,
 * which also opens its static event handling to the harness. Its log lines
 * go to fz_log, and persist.c's valid_name is renamed (model.c has one). */
static FILE *fz_log;
#undef stderr
#define stderr fz_log
#include "../daemon/server.c"
#include "../daemon/handlers_part.c"
#include "../daemon/handlers_admin.c"
#include "../daemon/gateway.c"
#include "../daemon/listeners.c"
#include "../daemon/waiting.c"
#include "../daemon/state.c"
#include "../daemon/model.c"
#include "../daemon/route.c"
#include "../daemon/settings.c"
#include "../daemon/notify.c"
#include "../daemon/dlog.c"
#include "../daemon/track.c"
#include "../daemon/spares.c"
#define valid_name persist_valid_name
#include "../daemon/persist.c"
#undef valid_name
#undef stderr
#define stderr stderr

#define FZ_SLOTS 4
#define FZ_CHANS 2
#define FZ_KEYS 256
#define FZ_TICKETS 64
#define FZ_CLIENTS 32 /* per input: an input of empty records is a stream of reconnects */
#define FZ_REC_MAX (sizeof(struct hvsim_msg_hdr) + 65535 + 1024)

enum { FZ_HOST = 0, FZ_VM_FIRST = 1, FZ_VM_LAST = 2, FZ_ADMIN = 3 };

#define F_FD 0x04
#define F_CHAN 0x08
#define F_RAW 0x10
#define F_DEFER 0x20
#define F_HANGUP 0x40
#define F_EXTRA 0x80

/* The initial model; every input starts from it. */
static const struct {
    const char *name;
    GUID id;
    uint32_t kind;
} fz_vms[] = {
    { "a", HVSIM_GUID_INIT(0x0a0a0a0a, 0x0a0a, 0x4a0a, 0x8a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a), HVSIM_VM_CLASSIC },
    { "b", HVSIM_GUID_INIT(0x0b0b0b0b, 0x0b0b, 0x4b0b, 0x8b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b), HVSIM_VM_HCS },
};
#define FZ_NVMS (sizeof(fz_vms) / sizeof(fz_vms[0]))
static const GUID fz_host_id = HVSIM_GUID_INIT(0x05050505, 0x0505, 0x4505, 0x85, 0x05, 0x05, 0x05, 0x05, 0x05, 0x05, 0x05);
/* Registered, so a classic VM reaches host wildcard and children listeners on it. */
static const GUID fz_svc_reg = HVSIM_GUID_INIT(0x5e5e5e5e, 0x1111, 0x4222, 0x93, 0x33, 0x44, 0x44, 0x55, 0x55, 0x66, 0x66);

static struct server srv;
static char fz_dir[64];
static struct settings fz_set0;
static uint32_t fz_cid0[FZ_NVMS];
static uint32_t fz_port0;
static pid_t fz_pid;
static uid_t fz_uid;
static int fz_ready;
static int fz_nclients;

/* One client process as the harness plays it. */
struct fz_slot {
    struct proc *c; /* the daemon's proc, or NULL */
    int end; /* our end of its control socket; -1 once we hung up */
    int vm; /* attached as a VM (not the host, not admin) */
    GUID part; /* its partition's ID */
    int chan[FZ_CHANS]; /* kept channel ends, newest first */
    int nchan;
    int copy[FZ_CHANS]; /* copies of ends it passed (bit 7) */
    int ncopy;
};

static struct fz_slot fz_slots[FZ_SLOTS];
static uint8_t fz_keys[FZ_KEYS][16];
static size_t fz_nkeys;
static int fz_keys_lost;
static struct hvsim_ticket fz_tickets[FZ_TICKETS];
static size_t fz_ntickets;
static char fz_rbuf[HVSIM_MSG_MAX];
static uint8_t fz_wbuf[FZ_REC_MAX];

/* What the daemon said during one input (for the seed checks). */
static struct {
    unsigned replies, errors, connect_ok, offers, events, drops;
} fz_stats;

/* Remove the daemon's folder: its sockets, vm/ and itself. */
static void fz_rmdir(void)
{
    char path[sizeof(fz_dir) + 8];
    int pass;

    if (fz_dir[0] == '\0')
        return;
    snprintf(path, sizeof(path), "%s/vm", fz_dir);
    for (pass = 0; pass < 2; pass++) {
        const char *dir = pass == 0 ? path : fz_dir;
        DIR *d = opendir(dir);
        struct dirent *e;

        while (d != NULL && (e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                unlinkat(dirfd(d), e->d_name, 0);
        if (d != NULL)
            closedir(d);
        rmdir(dir);
    }
}

static void fz_fail(const char *what)
{
    fprintf(stderr, "fuzz_server: %s\n", what);
    fz_rmdir(); /* abort() skips atexit */
    abort();
}

/* ---- the daemon's set-up and its initial state ------------------------------------------ */

static void fz_cleanup(void)
{
    server_fini(&srv);
    fz_rmdir();
    if (fz_log != NULL && fz_log != stderr)
        fclose(fz_log);
}

static void fz_setup(void)
{
    char err[256] = "";
    sigset_t old;
    size_t i;

    fz_log = stderr;
#ifndef HVSIM_FUZZ_STANDALONE
#ifndef HVSIM_FUZZ_SEEDS
    if (getenv("HVSIM_FUZZ_LOG") == NULL && (fz_log = fopen("/dev/null", "we")) == NULL)
        abort();
#endif
#endif
    /* Short: a VM's socket is DIR/vm/<63 characters>.sock, within sun_path. */
    snprintf(fz_dir, sizeof(fz_dir), "/tmp/hvsim-fuzz-XXXXXX");
    if (mkdtemp(fz_dir) == NULL)
        abort();
    /* server_init blocks SIGINT and SIGTERM for its signalfd; libFuzzer wants
     * them (Ctrl-C, -max_total_time in fork mode), so the mask goes back. */
    pthread_sigmask(SIG_SETMASK, NULL, &old);
    if (server_init(&srv, fz_dir, "", NULL, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz_server: server_init: %s\n", err);
        abort();
    }
    /* The first input too numbers its binds from 1, as the reset after each
     * input does (hvsimd itself starts at a random place per run). */
    srv.m.next_bind_id = 1;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    atexit(fz_cleanup);
    srv.m.host.id = fz_host_id;
    for (i = 0; i < FZ_NVMS; i++) {
        struct part *p;

        if (model_vm_add(&srv.m, fz_vms[i].name, &fz_vms[i].id, fz_vms[i].kind, &p, err, sizeof(err)) < 0 ||
            open_part(&srv, p) < 0)
            fz_fail("cannot add the initial VMs");
        fz_cid0[i] = p->cid;
    }
    if (model_service_add(&srv.m, &fz_svc_reg, "hvsim fuzz service") < 0)
        abort();
    fz_set0 = srv.m.set;
    fz_port0 = srv.m.next_port;
    fz_pid = getpid();
    fz_uid = getuid();
    fz_ready = 1;
}

static int fz_initial_vm(const struct part *p)
{
    size_t i;

    for (i = 0; i < FZ_NVMS; i++)
        if (strcmp(p->name, fz_vms[i].name) == 0 && hvsim_guid_equal(&p->id, &fz_vms[i].id) &&
            p->kind == fz_vms[i].kind)
            return (int)i;
    return -1;
}

/* With every client gone, each partition's use of its ceilings is back to 0. */
static void fz_check_counts(void)
{
    size_t i;

    for (i = 0; i <= srv.m.nvms; i++) {
        const struct part *p = i < srv.m.nvms ? srv.m.vms[i] : &srv.m.host;

        if (p->nconns || p->nrefusing || p->nbinds || p->nqueued)
            fz_fail("a partition's counts of connections, binds or queued events did not come back to 0");
        if (p->trk.n)
            fz_fail("a connection's record outlived the processes of both its ends");
    }
}

/* Undo what the admin socket may have changed; the procs, binds and offers
 * must be gone by the daemon's own doing (checked before this runs). */
static void fz_restore(void)
{
    struct part *order[FZ_NVMS];
    char err[256];
    size_t i;

    for (i = 0; i < srv.m.nvms;) {
        struct part *p = srv.m.vms[i];

        if (fz_initial_vm(p) < 0) {
            close_part(&srv, p);
            model_vm_remove(&srv.m, p);
        } else {
            i++;
        }
    }
    for (i = 0; i < FZ_NVMS; i++) {
        struct part *p = model_vm_by_id(&srv.m, &fz_vms[i].id);

        if (p == NULL && (model_vm_add(&srv.m, fz_vms[i].name, &fz_vms[i].id, fz_vms[i].kind, &p, err,
                                       sizeof(err)) < 0 ||
                          open_part(&srv, p) < 0))
            fz_fail("cannot put an initial VM back");
        p->state = HVSIM_VM_RUNNING;
        p->cid = fz_cid0[i];
        free(p->hcs);
        p->hcs = NULL;
        p->nhcs = 0;
        if (p->listen_fd < 0)
            fz_fail("an initial VM lost its control socket");
        order[i] = p;
    }
    if (srv.m.nvms != FZ_NVMS)
        abort();
    memcpy(srv.m.vms, order, sizeof(order));
    if (srv.m.nservices != 1 || !hvsim_guid_equal(&srv.m.services[0].id, &fz_svc_reg)) {
        free(srv.m.services);
        srv.m.services = NULL;
        srv.m.nservices = 0;
        if (model_service_add(&srv.m, &fz_svc_reg, "hvsim fuzz service") < 0)
            abort();
    }
    snprintf(srv.m.services[0].element_name, sizeof(srv.m.services[0].element_name), "hvsim fuzz service");
    srv.m.set = fz_set0;
    /* IDs the client names in later messages (bind_id, VERDICT's id) must
     * come out the same on every run of an input. */
    srv.m.next_bind_id = 1;
    srv.m.next_conn_id = 1;
    srv.m.next_port = fz_port0;
    srv.m.gen = 0;
    srv.m.track_gen = 0;
    srv.m.host.trk.forgotten = 0;
    for (i = 0; i < srv.m.nvms; i++)
        srv.m.vms[i]->trk.forgotten = 0;
    srv.next_offer = 0;
    srv.stop = 0;
}

/* ---- the daemon's side: its event loop, one batch at a time ------------------------------- */

static void fz_drain_all(void);

/* Run the daemon until its epoll set reports nothing, batch by batch as
 * server_run does. */
static void fz_pump(void)
{
    struct epoll_event evs[64];
    void *skipped[64], *skipped_before[64];
    size_t nskipped = 0, nbefore = 0, k;
    int round, i, n;

    for (round = 0; round < 100000; round++) {
        size_t offers = srv.noffers;

        offers_sweep(&srv);
        n = epoll_wait(srv.ep, evs, 64, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (srv.noffers != offers)
                fz_drain_all(); /* the sweep answered someone */
            return;
        }
        memcpy(skipped_before, skipped, nskipped * sizeof(skipped[0]));
        nbefore = nskipped;
        nskipped = 0;
        for (i = 0; i < n; i++) {
            uint64_t d = evs[i].data.u64;
            unsigned kind = (unsigned)(d & W_MASK);
            void *obj = (void *)(uintptr_t)(d & ~(uint64_t)W_MASK);
            int served = 0;

            if (kind == 0) {
                struct signalfd_siginfo si;

                while (read(srv.sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                    ;
                served = 1;
            } else if (kind == W_GATEWAY) {
                struct bind *b = obj;
                size_t j;

                for (j = 0; j < srv.m.nbinds && srv.m.binds[j] != b; j++)
                    ;
                if (j < srv.m.nbinds && b->gateway && b->gw_fd >= 0) {
                    gateway_readable(&srv, b);
                    served = 1;
                }
            } else if (kind == W_PROC) {
                if (proc_alive(&srv, obj)) {
                    if (serve_one(&srv, obj) < 0)
                        drop_proc(&srv, obj);
                    served = 1;
                }
            } else if (kind == W_EVT) {
                if (proc_alive(&srv, obj) && ((struct proc *)obj)->evt_fd >= 0) {
                    evt_ready(&srv, obj, evs[i].events);
                    served = 1;
                }
            } else {
                fz_fail("a listening socket woke up, but nobody connects to them here");
            }
            if (!served) {
                /* Skipping an object dropped earlier in the same batch is
                 * right once; woken for it again, server_run would spin. */
                for (k = 0; k < nbefore; k++)
                    if (skipped_before[k] == obj)
                        fz_fail("epoll keeps reporting an fd the daemon no longer serves (server_run spins)");
                skipped[nskipped++] = obj;
            }
        }
        /* Replies are read at once, as a client would, so that the daemon's
         * non-blocking sends do not fail for want of room. */
        fz_drain_all();
    }
    fz_fail("the event loop does not settle");
}

/* ---- the clients' side ------------------------------------------------------------------------ */

static void fz_observe(const char *buf, const struct fz_slot *sl, int is_chan)
{
    struct hvsim_msg_hdr h;

    memcpy(&h, buf, sizeof(h));
    if (h.status < 0) {
        fz_stats.errors++;
        return;
    }
    if (is_chan) {
        fz_stats.offers += h.type == HVSIM_MSG_OFFER;
        fz_stats.events += h.type == HVSIM_MSG_EVENT;
        return;
    }
    fz_stats.replies++;
    if (h.type == HVSIM_MSG_LISTEN_REPLY) {
        if (fz_nkeys < FZ_KEYS)
            memcpy(fz_keys[fz_nkeys++], buf + sizeof(h), 16);
        else
            fz_keys_lost = 1;
    } else if (h.type == HVSIM_MSG_CONNECT_REPLY) {
        struct hvsim_msg_connect_reply r;

        memcpy(&r, buf + sizeof(h), sizeof(r));
        if (r.outcome.verdict != HVSIM_VERDICT_OK)
            return;
        fz_stats.connect_ok++;
        /* A guest reaches its parent or itself, never a sibling (route.c). */
        if (sl->vm && !hvsim_guid_equal(&r.peer.partition, &srv.m.host.id) &&
            !hvsim_guid_equal(&r.peer.partition, &sl->part))
            fz_fail("a VM's connect was routed to another VM");
        /* Checked once every end is drained: its LISTEN_REPLY may be in another. */
        if (fz_ntickets < FZ_TICKETS)
            fz_tickets[fz_ntickets++] = r.ticket;
    }
}

/* Our ends the daemon has closed its side of, by fd number, so that a drain
 * skips them (their EOF would wake every poll). Reset when an end is made. */
static unsigned char fz_eof[4096];
#define FZ_EOF(fd) ((unsigned)(fd) < sizeof(fz_eof) && fz_eof[fd])

static void fz_new_end(int fd)
{
    if ((unsigned)fd < sizeof(fz_eof))
        fz_eof[fd] = 0;
}

/* Sockets on which a connect waits for a gateway's verdict (a CONNECT_REPLY
 * with HVSIM_VERDICT_PENDING passes one), with the slot that connected. */
#define FZ_PEND 32
static int fz_pend[FZ_PEND];
static const struct fz_slot *fz_pend_owner[FZ_PEND];
static size_t fz_npend;

/* The fds the daemon may pass: the routing epoch's page with HELLO_REPLY (a
 * sealed memfd nobody may write through), and with a PENDING connect reply.
 * Returns 0 if the message carries one of those, or no fd at all. */
static int fz_take_fd(const struct msghdr *mh, const char *buf, const struct fz_slot *sl, int is_chan)
{
    struct cmsghdr *cm = CMSG_FIRSTHDR((struct msghdr *)mh);
    struct hvsim_msg_hdr h;
    struct hvsim_msg_connect_reply r;
    int fd;

    if (mh->msg_controllen == 0)
        return 0;
    if (cm == NULL || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
        cm->cmsg_len != CMSG_LEN(sizeof(int)) || CMSG_NXTHDR((struct msghdr *)mh, cm) != NULL)
        return -1;
    memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
    memcpy(&h, buf, sizeof(h));
    if (!is_chan && h.type == HVSIM_MSG_HELLO_REPLY && h.status == 0) {
        int seals = fcntl(fd, F_GET_SEALS);

        close(fd);
        return seals >= 0 && (seals & F_SEAL_FUTURE_WRITE) && (seals & F_SEAL_SEAL) ? 0 : -1;
    }
    if (is_chan || h.type != HVSIM_MSG_CONNECT_REPLY || h.status != 0 || h.len < sizeof(r)) {
        close(fd);
        return -1;
    }
    memcpy(&r, buf + sizeof(h), sizeof(r));
    if (r.outcome.verdict != HVSIM_VERDICT_PENDING) {
        close(fd);
        return -1;
    }
    if (fz_npend == FZ_PEND) {
        close(fd);
        return 0;
    }
    fz_new_end(fd);
    fz_pend[fz_npend] = fd;
    fz_pend_owner[fz_npend++] = sl;
    return 0;
}

/* Read and check everything waiting on one of our ends. */
static void fz_drain(int fd, const struct fz_slot *sl, int is_chan)
{
    for (;;) {
        union {
            char b[CMSG_SPACE(4 * sizeof(int))];
            struct cmsghdr al;
        } ctl;
        struct iovec iov = { fz_rbuf, sizeof(fz_rbuf) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

        if (n < 0 && (errno == EINTR || errno == ECONNRESET))
            continue; /* reported once; what the daemon sent before it closed is still there */
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            if ((unsigned)fd < sizeof(fz_eof))
                fz_eof[fd] = 1;
            return;
        }
        if (fz_take_fd(&mh, fz_rbuf, sl, is_chan) < 0)
            fz_fail("the daemon passed an fd other than a pending connect's"); /* someone's fd leaked here */
        if ((mh.msg_flags & MSG_TRUNC) || hvsim__msg_check(fz_rbuf, (size_t)n) < 0)
            fz_fail("the daemon sent a malformed message");
        fz_observe(fz_rbuf, sl, is_chan);
    }
}

static void fz_drain_all(void)
{
    struct pollfd pf[FZ_SLOTS * (1 + FZ_CHANS) + FZ_PEND];
    const struct fz_slot *owner[FZ_SLOTS * (1 + FZ_CHANS) + FZ_PEND];
    int is_chan[FZ_SLOTS * (1 + FZ_CHANS) + FZ_PEND];
    nfds_t npf = 0, q;
    size_t i, k;
    int j;

    for (i = 0; i < FZ_SLOTS; i++) {
        const struct fz_slot *sl = &fz_slots[i];

        for (j = -1; j < sl->nchan; j++) {
            int fd = j < 0 ? sl->end : sl->chan[j];

            if (fd < 0 || FZ_EOF(fd))
                continue;
            pf[npf] = (struct pollfd){ .fd = fd, .events = POLLIN };
            owner[npf] = sl;
            is_chan[npf++] = j >= 0;
        }
    }
    for (i = 0; i < fz_npend; i++) {
        if (FZ_EOF(fz_pend[i]))
            continue;
        pf[npf] = (struct pollfd){ .fd = fz_pend[i], .events = POLLIN };
        owner[npf] = fz_pend_owner[i];
        is_chan[npf++] = 0;
    }
    if (npf && poll(pf, npf, 0) > 0)
        for (q = 0; q < npf; q++)
            if (pf[q].revents)
                fz_drain(pf[q].fd, owner[q], is_chan[q]);
    for (i = 0; i < fz_ntickets && !fz_keys_lost; i++) {
        int ok = 0;

        if (fz_tickets[i].magic != HVSIM_TICKET_MAGIC)
            fz_fail("an OK connect reply without a ticket");
        for (k = 0; k < fz_nkeys && !ok; k++)
            ok = hvsim__ticket_verify(&fz_tickets[i], fz_keys[k]) == 0;
        if (!ok)
            fz_fail("an OK connect reply's ticket is signed with no listener's key");
    }
    fz_ntickets = 0;
}

static int fz_proc_alive(const struct proc *c)
{
    const struct proc *it;

    for (it = srv.m.procs; it && it != c; it = it->next)
        ;
    return it != NULL;
}

/* Forget the clients the daemon dropped (read what they were sent first). */
static void fz_reap(void)
{
    size_t i;

    for (i = 0; i < FZ_SLOTS; i++) {
        struct fz_slot *sl = &fz_slots[i];

        if (sl->c != NULL && !fz_proc_alive(sl->c)) {
            if (sl->end >= 0) {
                fz_stats.drops++;
                close(sl->end);
            }
            sl->c = NULL;
            sl->end = -1;
        }
    }
}

static void fz_run(void)
{
    fz_pump();
    fz_reap();
}

static int fz_connect(struct fz_slot *sl, unsigned code)
{
    struct part *p = NULL;
    struct proc *c;
    int sv[2];

    if (fz_nclients == FZ_CLIENTS)
        return -1;
    if (code == FZ_VM_FIRST || code == FZ_VM_LAST) {
        if (srv.m.nvms == 0)
            return -1;
        p = srv.m.vms[code == FZ_VM_FIRST ? 0 : srv.m.nvms - 1];
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    c = proc_new(&srv, sv[0], p ? p : &srv.m.host, code == FZ_ADMIN);
    if (c == NULL)
        abort();
    /* What SO_PEERCRED says of a socketpair: us. signal_vm skips its own pid,
     * so pause_freezes_guests and reset_kills_guests never signal anyone. */
    c->pid = fz_pid;
    c->uid = fz_uid;
    fz_nclients++;
    sl->c = c;
    sl->end = sv[1];
    fz_new_end(sv[1]);
    sl->vm = p != NULL;
    sl->part = c->part->id;
    return 0;
}

static void fz_keep(int *arr, int *n, int fd)
{
    if (*n == FZ_CHANS)
        close(arr[--*n]);
    memmove(arr + 1, arr, (size_t)*n * sizeof(*arr));
    arr[0] = fd;
    ++*n;
}

static void fz_forget(int *arr, int *n, int idx)
{
    close(arr[idx]);
    memmove(arr + idx, arr + idx + 1, (size_t)(*n - idx - 1) * sizeof(*arr));
    --*n;
}

/* Bit 4 off: make the framing right so the fuzzer spends its time on fields. */
static size_t fz_fixup(uint8_t *buf, size_t len)
{
    struct hvsim_msg_hdr h;
    size_t body, want;

    if (len < sizeof(h))
        return len;
    memcpy(&h, buf, sizeof(h));
    body = len - sizeof(h);
    if (h.type > HVSIM_MSG_NONE && h.type < HVSIM_MSG_COUNT && h.status >= 0) {
        want = hvsim__msg_size(h.type);
        if (hvsim__msg_variable(h.type) ? body < want : body != want) {
            if (want > body)
                memset(buf + len, 0, want - body);
            body = want;
        }
    }
    h.len = (uint32_t)body;
    memcpy(buf, &h, sizeof(h));
    return sizeof(h) + body;
}

/* One message with the fds the flags ask for; returns 0 or -errno. */
static int fz_sendmsg(int fd, const uint8_t *buf, size_t len, unsigned flags, struct fz_slot *sl)
{
    union {
        char b[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr al;
    } ctl;
    struct iovec iov = { (void *)buf, len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    int want = (flags & F_FD) ? 1 : (flags & (F_EXTRA | F_CHAN)) == F_EXTRA ? 2 : 0;
    int pass[2], keep[2] = { -1, -1 }, npass = 0, k, rc = 0;

    for (k = 0; k < want; k++) {
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
            abort();
        pass[npass++] = sv[0];
        keep[k] = sv[1];
    }
    if (npass) {
        struct cmsghdr *cm;

        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.b;
        mh.msg_controllen = CMSG_SPACE((size_t)npass * sizeof(int));
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN((size_t)npass * sizeof(int));
        memcpy(CMSG_DATA(cm), pass, (size_t)npass * sizeof(int));
    }
    if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        rc = -errno;
        if (rc == -EAGAIN) {
            /* Full: let the daemon read, as it would have meanwhile (our
             * ends stay open until the record is done). */
            fz_pump();
            rc = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 0;
        }
    }
    /* The fds on a gateway channel, and a second fd, are only for the daemon
     * to close; on a control socket the first one's far end is a channel. */
    if (rc == 0 && keep[0] >= 0 && !(flags & F_CHAN)) {
        fz_new_end(keep[0]);
        fz_keep(sl->chan, &sl->nchan, keep[0]);
        keep[0] = -1;
        if ((flags & F_FD) && (flags & F_EXTRA)) {
            fz_keep(sl->copy, &sl->ncopy, pass[0]);
            pass[0] = -1;
        }
    }
    for (k = 0; k < npass; k++) {
        if (pass[k] >= 0)
            close(pass[k]);
        if (keep[k] >= 0)
            close(keep[k]);
    }
    return rc;
}

static void fz_record(unsigned parts, unsigned flags, const uint8_t *data, size_t len)
{
    struct fz_slot *sl = &fz_slots[flags & 3];
    int target;

    if (flags & F_CHAN) {
        int idx = (flags & F_EXTRA) ? 1 : 0;

        if (idx >= sl->nchan)
            return;
        if (flags & F_HANGUP) {
            fz_forget(sl->chan, &sl->nchan, idx);
            goto run;
        }
        target = sl->chan[idx];
    } else {
        if (sl->c == NULL && fz_connect(sl, (parts >> (2 * (flags & 3))) & 3) < 0)
            return;
        if (sl->end < 0)
            return; /* hung up; the daemon has not noticed yet */
        if (flags & F_HANGUP) {
            close(sl->end);
            sl->end = -1;
            goto run;
        }
        target = sl->end;
    }
    memcpy(fz_wbuf, data, len);
    if (!(flags & F_RAW))
        len = fz_fixup(fz_wbuf, len);
    fz_sendmsg(target, fz_wbuf, len, flags, sl);
run:
    if (!(flags & F_DEFER))
        fz_run();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 1, i;
    int before;

    if (!fz_ready)
        fz_setup();
    if (size == 0)
        return 0;
    memset(&fz_stats, 0, sizeof(fz_stats));
    fz_nkeys = fz_ntickets = 0;
    fz_keys_lost = 0;
    fz_nclients = 0;
    for (i = 0; i < FZ_SLOTS; i++)
        fz_slots[i] = (struct fz_slot){ .c = NULL, .end = -1 };
    before = count_fds();
    while (off + 3 <= size) {
        unsigned flags = data[off];
        size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;

        off += 3;
        if (len > size - off)
            len = size - off;
        fz_record(data[0], flags, data + off, len);
        off += len;
    }
    /* Every client goes away: the daemon must forget them by itself. */
    fz_run();
    for (i = 0; i < FZ_SLOTS; i++) {
        struct fz_slot *sl = &fz_slots[i];

        if (sl->end >= 0)
            close(sl->end);
        sl->end = -1;
        while (sl->nchan)
            fz_forget(sl->chan, &sl->nchan, 0);
        while (sl->ncopy)
            fz_forget(sl->copy, &sl->ncopy, 0);
    }
    while (fz_npend)
        close(fz_pend[--fz_npend]);
    fz_run();
    if (srv.m.procs != NULL)
        fz_fail("a client that hung up is still attached");
    if (srv.m.nbinds != 0)
        fz_fail("a bind outlived its client");
    if (srv.noffers != 0)
        fz_fail("an offer outlived its connector");
    fz_check_counts();
    fz_restore();
    if (count_fds() != before)
        fz_fail("an fd leaked");
    return 0;
}

#if defined(HVSIM_FUZZ_SEEDS)
/* ---- the seed corpus ---------------------------------------------------------------------- */

#define PARTS(s0, s1, s2, s3) ((s0) | (s1) << 2 | (s2) << 4 | (s3) << 6)

struct seed {
    uint8_t b[8192];
    size_t n;
};

static void put(struct seed *s, const void *p, size_t n)
{
    if (s->n + n > sizeof(s->b))
        abort();
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

static void rec_raw(struct seed *s, unsigned flags, const void *bytes, size_t n)
{
    uint8_t h[3] = { (uint8_t)flags, (uint8_t)(n & 0xff), (uint8_t)(n >> 8) };

    put(s, h, 3);
    put(s, bytes, n);
}

static void rec(struct seed *s, unsigned flags, unsigned type, uint32_t seq, const void *body, size_t blen)
{
    struct hvsim_msg_hdr h = { .type = (uint16_t)type, .seq = seq, .len = (uint32_t)blen };
    uint8_t buf[sizeof(h) + 2048];

    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), body, blen);
    rec_raw(s, flags, buf, sizeof(h) + blen);
}

static void hello(struct seed *s, unsigned slot)
{
    struct hvsim_msg_hello m = { .version = HVSIM_PROTO_VERSION };

    rec(s, slot | F_FD, HVSIM_MSG_HELLO, 1, &m, sizeof(m));
}

static void bind_(struct seed *s, unsigned slot, uint32_t pers, const GUID *vmid, const GUID *svc)
{
    struct hvsim_msg_bind m = { .personality = pers, .vmid = *vmid, .svc = *svc };

    rec(s, slot, HVSIM_MSG_BIND, 2, &m, sizeof(m));
}

static void listen_(struct seed *s, unsigned flags, uint64_t id, int gateway, const char *uname)
{
    struct hvsim_msg_listen m = { .bind_id = id, .backlog = 16, .gateway = (uint32_t)gateway };

    snprintf(m.uname, sizeof(m.uname), "%s", uname);
    rec(s, flags, HVSIM_MSG_LISTEN, 3, &m, sizeof(m));
}

static void connect_(struct seed *s, unsigned flags, uint32_t pers, const GUID *vmid, const GUID *svc,
                     uint32_t timeout_ms)
{
    struct hvsim_msg_connect m = { .personality = pers, .timeout_ms = timeout_ms, .vmid = *vmid, .svc = *svc };

    rec(s, flags, HVSIM_MSG_CONNECT, 4, &m, sizeof(m));
}

static void verdict(struct seed *s, unsigned flags, uint64_t id, uint32_t answer)
{
    struct hvsim_msg_verdict m = { .id = id, .answer = answer };

    rec(s, flags | F_CHAN, HVSIM_MSG_VERDICT, 0, &m, sizeof(m));
}

static void setting(struct seed *s, unsigned slot, unsigned type, const char *name, const char *value)
{
    struct hvsim_msg_setting m = { .name = "" };

    snprintf(m.name, sizeof(m.name), "%s", name);
    snprintf(m.value, sizeof(m.value), "%s", value);
    rec(s, slot, type, 9, &m, sizeof(m));
}

static void vm_op(struct seed *s, unsigned slot, const char *vm, const char *op)
{
    struct hvsim_msg_vm_op m = { .ref = "" };

    snprintf(m.ref, sizeof(m.ref), "%s", vm);
    snprintf(m.op, sizeof(m.op), "%s", op);
    rec(s, slot, HVSIM_MSG_VM_OP, 10, &m, sizeof(m));
}

static void empty_req(struct seed *s, unsigned slot, unsigned type)
{
    struct hvsim_msg_empty m = { 0 };

    rec(s, slot, type, 11, &m, sizeof(m));
}

static void page_req(struct seed *s, unsigned slot, unsigned type, uint32_t cursor)
{
    struct hvsim_msg_page m = { .cursor = cursor };

    rec(s, slot, type, 11, &m, sizeof(m));
}

static void vm_page(struct seed *s, unsigned slot, unsigned type, const char *ref, uint32_t cursor)
{
    struct hvsim_msg_vm_page m = { .page.cursor = cursor };

    snprintf(m.ref, sizeof(m.ref), "%s", ref);
    rec(s, slot, type, 16, &m, sizeof(m));
}

/* Host and VM "a" attach, bind, listen and connect to each other (the admin
 * socket lists the host's listeners and both partitions' connections); the host
 * also tries VM "b" by CID (nobody listens: no answer) and unbinds. */
static void seed_connect(struct seed *s)
{
    GUID guest_svc = hvsim_guid_from_port(4000);

    s->b[s->n++] = PARTS(FZ_HOST, FZ_VM_FIRST, FZ_VM_LAST, FZ_ADMIN);
    hello(s, 0);
    hello(s, 1);
    bind_(s, 0, HVSIM_PERS_WINDOWS, &HV_GUID_CHILDREN, &fz_svc_reg); /* bind 1 */
    listen_(s, 0, 1, 0, "0000000000000000000f0057");
    bind_(s, 1, HVSIM_PERS_WINDOWS, &HV_GUID_PARENT, &guest_svc); /* bind 2 */
    listen_(s, 1, 2, 0, "000000000000000000000f0a");
    connect_(s, 0, HVSIM_PERS_WINDOWS, &fz_vms[0].id, &guest_svc, 0);
    connect_(s, 1, HVSIM_PERS_WINDOWS, &HV_GUID_PARENT, &fz_svc_reg, 0);
    {
        GUID cid = { .Data1 = fz_cid0[1] }, port = hvsim_guid_from_port(9);

        connect_(s, 0, HVSIM_PERS_VSOCK_HOST, &cid, &port, 1000);
    }
    vm_page(s, 3, HVSIM_MSG_VM_LISTENERS, "host", 0);
    vm_page(s, 3, HVSIM_MSG_VM_CONNS, "a", 0);
    vm_page(s, 3, HVSIM_MSG_VM_CONNS, "host", 1);
    vm_page(s, 3, HVSIM_MSG_VM_CONNS, "nosuchvm", 0);
    {
        struct hvsim_msg_unbind m = { .bind_id = 1 };

        rec(s, 0, HVSIM_MSG_UNBIND, 5, &m, sizeof(m));
    }
}

/* VM "a"'s back-end listens as the gateway; four host connections get
 * OFFERs, answered accept, refuse, silent, and the last by the channel
 * closing (after a verdict for an unknown id). */
static void seed_gateway(struct seed *s)
{
    GUID gw_svc = hvsim_guid_from_port(5000), asked = hvsim_guid_from_port(6000);
    uint64_t id;

    s->b[s->n++] = PARTS(FZ_HOST, FZ_VM_FIRST, FZ_HOST, FZ_ADMIN);
    hello(s, 1);
    bind_(s, 1, HVSIM_PERS_LINUX, &HV_GUID_ZERO, &gw_svc); /* bind 1 */
    listen_(s, 1 | F_FD, 1, 1, "0000000000000000006a7e00");
    hello(s, 0);
    for (id = 1; id <= 3; id++) {
        connect_(s, 0, HVSIM_PERS_WINDOWS, &fz_vms[0].id, &asked, 0);
        verdict(s, 1, id, (uint32_t)(id - 1));
    }
    connect_(s, 0, HVSIM_PERS_WINDOWS, &fz_vms[0].id, &gw_svc, 0);
    verdict(s, 1, 99, HVSIM_GW_ACCEPT);
    rec_raw(s, 1 | F_CHAN | F_HANGUP, NULL, 0);
}

/* The admin socket adds VM "c" (a client attaches as it), a service, a
 * setting and an HCS row, pauses and resumes c, lists everything, imports
 * services, and removes c (its client is disconnected). */
static void seed_admin(struct seed *s)
{
    static const GUID c_id = HVSIM_GUID_INIT(0x0c0c0c0c, 0x0c0c, 0x4c0c, 0x8c, 0x0c, 0x0c, 0x0c, 0x0c, 0x0c, 0x0c, 0x0c);
    static const GUID new_svc = HVSIM_GUID_INIT(0x5e5e5e5e, 0x2222, 0x4333, 0x94, 0x44, 0x55, 0x55, 0x66, 0x66, 0x77, 0x77);

    s->b[s->n++] = PARTS(FZ_ADMIN, FZ_VM_LAST, FZ_HOST, FZ_ADMIN);
    {
        struct hvsim_msg_vm_add m = { .id = c_id, .has_id = 1, .kind = HVSIM_VM_CLASSIC };

        snprintf(m.name, sizeof(m.name), "c");
        rec(s, 0, HVSIM_MSG_VM_ADD, 1, &m, sizeof(m));
    }
    hello(s, 1); /* attaches as the last VM: c */
    {
        hvsim_service_info_t m = { .id = new_svc };

        snprintf(m.element_name, sizeof(m.element_name), "fuzz seed service");
        rec(s, 0, HVSIM_MSG_SVC_ADD, 2, &m, sizeof(m));
    }
    setting(s, 0, HVSIM_MSG_SETTING_SET, "refusal_profile", "kvm");
    setting(s, 0, HVSIM_MSG_SETTING_GET, "refusal_profile", "");
    {
        struct hvsim_msg_hcs_set m = { .svc = { .id = hvsim_guid_from_port(7000), .allow_wildcard_binds = 1 } };

        snprintf(m.vm, sizeof(m.vm), "b");
        rec(s, 0, HVSIM_MSG_HCS_SET, 3, &m, sizeof(m));
    }
    vm_op(s, 0, "c", "pause");
    vm_op(s, 0, "c", "resume");
    page_req(s, 0, HVSIM_MSG_VM_LIST, 0);
    page_req(s, 0, HVSIM_MSG_SVC_LIST, 0);
    page_req(s, 0, HVSIM_MSG_SVC_LIST, 1);
    empty_req(s, 0, HVSIM_MSG_SETTING_LIST);
    {
        struct hvsim_msg_status m = { 0 };

        rec(s, 0, HVSIM_MSG_STATUS, 12, &m, sizeof(m));
    }
    {
        /* An import in two pages: the first held, the second commits both. */
        struct {
            struct hvsim_msg_import hdr;
            hvsim_service_info_t e[1];
        } m = { .hdr = { .count = 1, .flags = HVSIM_IMPORT_MORE } };

        m.e[0].id = hvsim_guid_from_port(8000);
        snprintf(m.e[0].element_name, sizeof(m.e[0].element_name), "imported one");
        rec(s, 0, HVSIM_MSG_SVC_IMPORT, 13, &m, sizeof(m));
        m.hdr.flags = 0;
        m.e[0].id = new_svc;
        snprintf(m.e[0].element_name, sizeof(m.e[0].element_name), "imported two");
        rec(s, 0, HVSIM_MSG_SVC_IMPORT, 13, &m, sizeof(m));
    }
    {
        struct hvsim_msg_guid m = { .id = new_svc };

        rec(s, 0, HVSIM_MSG_SVC_RM, 14, &m, sizeof(m));
    }
    {
        struct hvsim_msg_vm_ref m = { .ref = "" };

        snprintf(m.ref, sizeof(m.ref), "c");
        rec(s, 0, HVSIM_MSG_VM_RM, 15, &m, sizeof(m));
    }
}

/* Clients that break the protocol, each dropped: a length that lies, a
 * request before HELLO, a partition request on the admin socket, a runt, an
 * unknown type, a request with a status, an empty packet. HELLO without an
 * event socket is refused but not dropped. */
static void seed_malformed(struct seed *s)
{
    struct hvsim_msg_hello m = { .version = HVSIM_PROTO_VERSION };
    struct hvsim_msg_hdr h = { .type = HVSIM_MSG_HELLO, .len = 3 };
    uint8_t buf[sizeof(h) + sizeof(m)];

    s->b[s->n++] = PARTS(FZ_HOST, FZ_VM_FIRST, FZ_ADMIN, FZ_HOST);
    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), &m, sizeof(m));
    rec_raw(s, 0 | F_FD | F_RAW, buf, sizeof(buf));
    rec(s, 1, HVSIM_MSG_HELLO, 1, &m, sizeof(m));
    bind_(s, 1, HVSIM_PERS_WINDOWS, &HV_GUID_PARENT, &fz_svc_reg);
    hello(s, 2);
    rec_raw(s, 3 | F_RAW, "\x01\x00\x00\x00\x00", 5);
    h = (struct hvsim_msg_hdr){ .type = 200, .len = 0 };
    rec_raw(s, 0 | F_RAW, &h, sizeof(h));
    h = (struct hvsim_msg_hdr){ .type = HVSIM_MSG_HELLO, .status = -1, .len = sizeof(m) };
    memcpy(buf, &h, sizeof(h));
    rec_raw(s, 3 | F_FD | F_RAW, buf, sizeof(buf));
    rec_raw(s, 0, NULL, 0);
}

/* Several events in one batch: a connector hangs up while the gateway
 * answers its offer, a bind listens and goes in the same batch, and then the
 * VM is switched off under its clients. */
static void seed_batch(struct seed *s)
{
    GUID gw_svc = hvsim_guid_from_port(5000), asked = hvsim_guid_from_port(6001);

    s->b[s->n++] = PARTS(FZ_HOST, FZ_VM_FIRST, FZ_HOST, FZ_ADMIN);
    hello(s, 1);
    bind_(s, 1, HVSIM_PERS_LINUX, &HV_GUID_ZERO, &gw_svc); /* bind 1 */
    listen_(s, 1 | F_FD, 1, 1, "0000000000000000006a7e00");
    hello(s, 0);
    connect_(s, 0, HVSIM_PERS_LINUX, &fz_vms[0].id, &asked, 50); /* offer 1 */
    rec_raw(s, 0 | F_HANGUP | F_DEFER, NULL, 0);
    verdict(s, 1, 1, HVSIM_GW_ACCEPT);
    hello(s, 2);
    bind_(s, 2, HVSIM_PERS_WINDOWS, &HV_GUID_CHILDREN, &fz_svc_reg); /* bind 2 */
    listen_(s, 2 | F_DEFER, 2, 0, "0000000000000000000f0057");
    {
        struct hvsim_msg_unbind m = { .bind_id = 2 };

        rec(s, 2 | F_DEFER, HVSIM_MSG_UNBIND, 5, &m, sizeof(m));
    }
    connect_(s, 1, HVSIM_PERS_WINDOWS, &HV_GUID_PARENT, &fz_svc_reg, 0);
    vm_op(s, 3, "a", "off");
    connect_(s, 1, HVSIM_PERS_LINUX, &HV_GUID_PARENT, &fz_svc_reg, 0);
    vm_op(s, 3, "a", "start");
}

static const struct {
    const char *name;
    void (*make)(struct seed *s);
    unsigned connect_ok, offers, events, drops, errors; /* at least */
} seeds[] = {
    { "connect", seed_connect, 2, 0, 0, 0, 0 },
    { "gateway", seed_gateway, 1, 4, 0, 0, 0 },
    { "admin", seed_admin, 0, 0, 3, 1, 0 },
    { "malformed", seed_malformed, 0, 0, 0, 6, 1 },
    { "batch", seed_batch, 0, 1, 2, 0, 0 },
};

int main(int argc, char **argv)
{
    char path[4096];
    size_t i;
    int failed = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s FOLDER (writes the seed corpus of fuzz_server into it)\n", argv[0]);
        return 2;
    }
    if (mkdir(argv[1], 0755) < 0 && errno != EEXIST) {
        perror(argv[1]);
        return 1;
    }
    fz_setup(); /* the seeds name VM "b" by its CID */
    for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        static struct seed s;
        FILE *f;

        s.n = 0;
        seeds[i].make(&s);
        snprintf(path, sizeof(path), "%s/%s", argv[1], seeds[i].name);
        f = fopen(path, "wb");
        if (f == NULL || fwrite(s.b, 1, s.n, f) != s.n || fclose(f) != 0) {
            perror(path);
            return 1;
        }
        LLVMFuzzerTestOneInput(s.b, s.n);
        printf("%s: %zu bytes: %u replies, %u errors, %u connects OK, %u offers, %u events, %u drops\n", path,
               s.n, fz_stats.replies, fz_stats.errors, fz_stats.connect_ok, fz_stats.offers, fz_stats.events,
               fz_stats.drops);
        if (fz_stats.connect_ok < seeds[i].connect_ok || fz_stats.offers < seeds[i].offers ||
            fz_stats.events < seeds[i].events || fz_stats.drops < seeds[i].drops ||
            fz_stats.errors < seeds[i].errors) {
            fprintf(stderr, "%s: the seed does not get as far as intended\n", seeds[i].name);
            failed = 1;
        }
    }
    return failed;
}

#elif defined(HVSIM_FUZZ_STANDALONE)
#include "standalone.h"
#endif
