/* SPDX-License-Identifier: MIT */
/*
 * agent.c: hvsim-agent, one of the two programs that run the conformance
 * catalogue (the pattern of Linux's tools/testing/vsock): the host side, which
 * is the control server, chooses the cases and writes TAP and the JSON-lines
 * report; the guest side connects, runs its half of each case and reports
 * back. See conformance/README.md for the command line and control.h for the
 * line protocol.
 *
 * Each side runs its function for a case in a forked child with a deadline,
 * so a case that crashes or hangs fails alone; the parent stays the only
 * reader of the control connection and forwards the case's lines to the child
 * through a pipe, keeping the framework's own lines (a peer's RESULT or ABORT)
 * for itself. Windows has no fork: there the case runs inline under a
 * watchdog thread that first closes the case's sockets to unblock it and, if
 * that does not end it, ends the process with a clear message.
 *
 * After every case the host side puts the target back: what cf_admin_* changed
 * is undone (util.c) and the VMs under test are running again.
 */
#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>
#include <fcntl.h>
#include <io.h>
#else
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../catalogue.h"
#include "agent.h"
#include "control.h"

#define CASE_MS 20000u /* a case's deadline at --timeout-scale 1 */
#define SHORT_MS 300u /* ctx->short_timeout_ms at scale 1 (at most 500) */
#define PORT_BASE 50000u /* case i gets PORT_BASE + 100 * i .. + 99 */
#define PEER_GRACE_MS 100u /* after the other side failed, time to finish alone */
#define HELLO_MS 120000u /* the guest agent may boot a VM first */
#define RECONNECT_MS 30000u
#define READY_MS 10000u
#define RESULT_GRACE_MS 5000u /* after the deadline, for the guest's RESULT */
#define WIN_ABORT_MS 3000u /* Windows watchdog: from closing the sockets to giving up */

enum verdict { V_NONE = 0, V_PASS, V_FAIL, V_SKIP, V_ABORTED };

static const char *verdict_word(enum verdict v)
{
    return v == V_PASS || v == V_NONE ? "pass" : v == V_SKIP ? "skip" : "fail";
}

struct outcome {
    enum verdict v;
    char msg[768];
    uint64_t end_ms;
};

/* What the other side said (or that it vanished) while this side ran. */
struct peer_state {
    int done; /* its RESULT (host) or ABORT (guest) arrived */
    enum verdict v;
    char msg[768];
    uint64_t at_ms;
    int lost; /* the control connection ended */
};

static struct {
    int side; /* 0 host, 1 guest, -1 unset */
    const char *control;
    int column; /* -1: the host learns it from HELLO */
    int list;
    const char **pick, **skip;
    size_t npick, nskip;
    const char *report;
    const char *target;
    cf_guid_t vm, vm2, hcs;
    int have_vm;
    double scale;
} O = { .side = -1, .column = -1, .target = "sim", .scale = 1.0 };

static FILE *report_f;
static char guest_backend[64] = "";

/* ---- small helpers ---------------------------------------------------------------- */

/* The one version (HVSIM_VERSION_* of hvsim.h), passed by the Makefile to
 * every build of the agent, the Windows one included. */
#ifndef HVSIM_VERSION_TEXT
#define HVSIM_VERSION_TEXT "unknown"
#endif

static const char *const usage_text =
    "usage: hvsim-agent --side host|guest --control ADDR [--column windows|hvsock|virtio] [--list]\n"
    "         [--pick ID]... [--skip ID]... [--report FILE] [--target sim|qemu|hyperv]\n"
    "         [--vm GUID] [--vm2 GUID] [--hcs GUID] [--timeout-scale N]\n"
    "One side of the conformance catalogue's paired agent (conformance/README.md).\n"
    "  --side host|guest     which half of each case this agent plays\n"
    "  --control ADDR        the channel to the other side: tcp-listen:[HOST:]PORT, tcp:HOST:PORT,\n"
    "                        unix-listen:PATH, unix:PATH\n"
    "  --column COLUMN       the guest personality: windows, hvsock or virtio\n"
    "  --list                print the catalogue and exit\n"
    "  --pick ID, --skip ID  run only / leave out these cases\n"
    "  --report FILE         write one JSON line per case\n"
    "  --target TARGET       sim, qemu or hyperv\n"
    "  --vm GUID             the VM under test (host side); --vm2 GUID a second VM; --hcs GUID an hcs VM\n"
    "  --timeout-scale N     multiply every wait by N\n"
    "  --version             print the version and exit\n"
    "  -h, --help            print this text and exit\n";

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "hvsim-agent: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage_text);
    exit(2);
}

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fatal(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "hvsim-agent (%s): ", O.side == 0 ? "host" : O.side == 1 ? "guest" : "?");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static void set_msg(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_msg(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

/* One line of text: TAP, the protocol and the report all want it flat. */
static void flatten(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t')
            *s = ' ';
}

static uint32_t scaled(uint32_t ms)
{
    double v = (double)ms * O.scale;

    return v > 4e9 ? 4000000000u : (uint32_t)v;
}

static int column_by_name(const char *s)
{
    int c;

    for (c = 0; c < CF_COL_COUNT; c++)
        if (strcmp(s, cf_column_name((enum cf_column)c)) == 0)
            return c;
    return -1;
}

static const struct cf_case *find_case(const char *id, size_t *ordinal)
{
    size_t i, n = cf_catalogue_size();

    for (i = 0; i < n; i++) {
        const struct cf_case *c = cf_catalogue_at(i);

        if (strcmp(c->id, id) == 0) {
            if (ordinal)
                *ordinal = i;
            return c;
        }
    }
    return NULL;
}

/* '*' and '?' globbing, enough for --pick 'data.*'. */
static int glob_match(const char *p, const char *s)
{
    if (*p == '\0')
        return *s == '\0';
    if (*p == '*')
        return glob_match(p + 1, s) || (*s != '\0' && glob_match(p, s + 1));
    if (*s != '\0' && (*p == '?' || *p == *s))
        return glob_match(p + 1, s + 1);
    return 0;
}

/* A case matches its exact id, a glob over ids, or its area's name. */
static int pattern_matches(const char *pat, const struct cf_case *c)
{
    return glob_match(pat, c->id) || strcmp(pat, c->area) == 0;
}

/* ---- options ------------------------------------------------------------------------- */

static void parse_guid_opt(const char *opt, const char *v, cf_guid_t *out)
{
    if (cf_guid_parse(v, out) < 0)
        die_usage("%s: expected a GUID like 01234567-89ab-cdef-0123-456789abcdef, got '%s'", opt, v);
}

static void add_list(const char ***list, size_t *n, const char *v)
{
    const char **l = realloc((void *)*list, (*n + 1) * sizeof(*l));

    if (l == NULL)
        fatal("out of memory");
    l[(*n)++] = v;
    *list = l;
}

static void parse_args(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--list") == 0) {
            O.list = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (strcmp(a, "--version") == 0) {
            printf("hvsim-agent (hvsim) %s\n", HVSIM_VERSION_TEXT);
            exit(0);
        }
        if (v == NULL)
            die_usage("%s needs a value", a);
        i++;
        if (strcmp(a, "--side") == 0) {
            if (strcmp(v, "host") == 0)
                O.side = 0;
            else if (strcmp(v, "guest") == 0)
                O.side = 1;
            else
                die_usage("--side: expected host or guest, got '%s'", v);
        } else if (strcmp(a, "--control") == 0) {
            O.control = v;
        } else if (strcmp(a, "--column") == 0) {
            O.column = column_by_name(v);
            if (O.column < 0)
                die_usage("--column: expected windows, hvsock or virtio, got '%s'", v);
        } else if (strcmp(a, "--pick") == 0) {
            add_list(&O.pick, &O.npick, v);
        } else if (strcmp(a, "--skip") == 0) {
            add_list(&O.skip, &O.nskip, v);
        } else if (strcmp(a, "--report") == 0) {
            O.report = v;
        } else if (strcmp(a, "--target") == 0) {
            if (strcmp(v, "sim") != 0 && strcmp(v, "qemu") != 0 && strcmp(v, "hyperv") != 0)
                die_usage("--target: expected sim, qemu or hyperv, got '%s'", v);
            O.target = v;
        } else if (strcmp(a, "--vm") == 0) {
            parse_guid_opt(a, v, &O.vm);
            O.have_vm = 1;
        } else if (strcmp(a, "--vm2") == 0) {
            parse_guid_opt(a, v, &O.vm2);
        } else if (strcmp(a, "--hcs") == 0) {
            parse_guid_opt(a, v, &O.hcs);
        } else if (strcmp(a, "--timeout-scale") == 0) {
            char *end;

            O.scale = strtod(v, &end);
            if (*end != '\0' || !(O.scale > 0) || O.scale > 1000)
                die_usage("--timeout-scale: expected a number above 0, got '%s'", v);
        } else {
            die_usage("unknown option '%s'", a);
        }
    }
    if (O.list)
        return;
    if (O.side < 0)
        die_usage("--side host|guest is required");
    if (O.control == NULL)
        die_usage("--control ADDR is required");
    if (O.side == 0 && !O.have_vm)
        die_usage("the host side needs --vm GUID: the VM under test, where the guest agent runs");
    if (O.side == 1 && O.column < 0)
        O.column = CF_COL_WINDOWS;
}

static void list_cases(void)
{
    size_t i, n = cf_catalogue_size();

    for (i = 0; i < n; i++) {
        const struct cf_case *c = cf_catalogue_at(i);

        printf("%s\t%s\t%s\t%s\n", c->id, c->area, cf_confidence_name(c->confidence), c->rule);
    }
}

/* ---- running one side of a case ------------------------------------------------------ */

#ifndef _WIN32
static const char *peer_of(int side)
{
    return side == 0 ? "guest" : "host";
}
#endif

/* A framework line that arrived during the case: 1 if it was one (consumed). */
static int frame_line(int side, const char *id, const char *line, struct peer_state *ps)
{
    size_t idl = strlen(id);

    if (!cf_ctl_is_framework_line(line))
        return 0;
    if (side == 0 && strncmp(line, "RESULT ", 7) == 0 && strncmp(line + 7, id, idl) == 0 && line[7 + idl] == ' ') {
        const char *st = line + 8 + idl, *msg = strchr(st, ' ');

        ps->done = 1;
        ps->at_ms = cf_now_ms();
        ps->v = strncmp(st, "pass", 4) == 0 ? V_PASS : strncmp(st, "skip", 4) == 0 ? V_SKIP : V_FAIL;
        set_msg(ps->msg, sizeof(ps->msg), "%s", msg ? msg + 1 : "");
    } else if (side == 1 && strncmp(line, "ABORT ", 6) == 0 && strncmp(line + 6, id, idl) == 0 &&
               (line[6 + idl] == ' ' || line[6 + idl] == '\0')) {
        ps->done = 1;
        ps->at_ms = cf_now_ms();
        ps->v = V_FAIL;
        set_msg(ps->msg, sizeof(ps->msg), "%s", line[6 + idl] ? line + 7 + idl : "");
    }
    /* Anything else is a leftover of an earlier case: dropped. */
    return 1;
}

static void ctx_template(struct cf_ctx *ctx, const struct cf_case *c, int side, enum cf_column col, uint32_t port_base)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->c = c;
    ctx->col = col;
    ctx->side = side;
    ctx->expect = c->expect[col];
    ctx->short_timeout_ms = scaled(SHORT_MS) > 500 ? 500 : scaled(SHORT_MS);
    ctx->vm_id = O.vm;
    ctx->vm2_id = O.vm2;
    ctx->hcs_id = O.hcs;
    ctx->port_base = port_base;
}

static void outcome_from_rc(struct outcome *out, int rc, const struct cf_ctx *ctx)
{
    if (rc == 0) {
        out->v = V_PASS;
    } else if (rc == CF_NA) {
        out->v = V_SKIP;
        set_msg(out->msg, sizeof(out->msg), "%s", ctx->fail[0] ? ctx->fail : "the case skipped itself");
    } else if (ctx->fail[0]) {
        out->v = V_FAIL;
        set_msg(out->msg, sizeof(out->msg), "%s", ctx->fail);
    } else {
        out->v = V_FAIL;
        set_msg(out->msg, sizeof(out->msg), "returned %d without a message%s%s", rc, ctx->where[0] ? ", at " : "",
                ctx->where);
    }
}

/* This side failed after the other side had ended badly: most likely because
 * of it (a line that never came), so it is the second failure, not the cause. */
static void secondary(struct outcome *out, const struct peer_state *ps, int side)
{
    char m[sizeof(out->msg)];

    if (out->v != V_FAIL || !ps->done || ps->v == V_PASS || ps->at_ms > out->end_ms)
        return;
    out->v = V_ABORTED;
    set_msg(m, sizeof(m), "stopped after the %s side ended: %s", side == 0 ? "guest" : "host", out->msg);
    set_msg(out->msg, sizeof(out->msg), "%s", m);
}

static struct cf_notes *notes; /* the host side's record of admin changes, per case */

#ifndef _WIN32

struct shared {
    struct cf_ctx ctx;
    int rc;
    int finished;
    struct cf_notes notes;
};
static struct shared *sh;

static void shared_init(void)
{
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        fatal("mmap: %s", strerror(errno));
    notes = &sh->notes;
}

static void write_all_nb(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);

        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return; /* the child stopped reading (full pipe or gone): it cannot use more */
        }
        s += w;
        n -= (size_t)w;
    }
}

static void run_side(const struct cf_case *c, const struct cf_ctx *tmpl, struct cf_control *ctl, uint64_t deadline,
                     struct peer_state *ps, struct outcome *out)
{
    int fwd[2], done[2], st = 0, timed_out = 0, stopped = 0, ctl_open = ctl->fd != CF_NO_SOCK;
    uint64_t kill_at = 0, t0 = cf_now_ms();
    cf_fn fn = tmpl->side == 0 ? c->host : c->guest;
    pid_t pid;

    memset(out, 0, sizeof(*out));
    memset(sh, 0, sizeof(*sh));
    sh->ctx = *tmpl;
    if (pipe2(fwd, O_CLOEXEC) < 0 || pipe2(done, O_CLOEXEC) < 0)
        fatal("pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    if (report_f)
        fflush(report_f);
    pid = fork();
    if (pid < 0)
        fatal("fork: %s", strerror(errno));
    if (pid == 0) {
        struct cf_control cc = *ctl;

        /* Its own process group: a case that forks is ended whole. */
        setpgid(0, 0);
        close(fwd[1]);
        close(done[0]);
        /* stdout is the host's TAP: a case's printf goes to stderr instead. */
        dup2(2, 1);
        if (cc.lfd != CF_NO_SOCK)
            close((int)cc.lfd);
        cc.lfd = CF_NO_SOCK;
        cc.in_fd = fwd[0];
        cc.len = 0; /* what the parent had read, it forwards */
        cc.stash[0] = '\0';
        cc.deadline_ms = deadline > 1000 ? deadline - scaled(1000) : deadline;
        cc.path[0] = '\0';
        sh->ctx.ctl = &cc;
        cf__side = tmpl->side;
        cf__notes = &sh->notes;
        sh->rc = fn(&sh->ctx);
        sh->finished = 1;
        /* _exit: the parent's atexit work (and a sanitizer's leak report of
         * the agent's own memory) is not the case's; its output is. */
        fflush(NULL);
        _exit(0);
    }
    close(fwd[0]);
    close(done[1]);
    (void)fcntl(fwd[1], F_SETFL, O_NONBLOCK);
    for (;;) {
        char line[CF_CTL_LINE_MAX];
        struct pollfd p[2];
        uint64_t now, until;
        int np = 1, rc;

        while (ctl_open && cf_ctl_take(ctl, line, sizeof(line))) {
            if (frame_line(tmpl->side, c->id, line, ps))
                continue;
            {
                size_t n = strlen(line);

                line[n] = '\n';
                if (fwd[1] >= 0)
                    write_all_nb(fwd[1], line, n + 1);
            }
        }
        if (ps->done && ps->v != V_PASS && kill_at == 0) {
            kill_at = cf_now_ms() + PEER_GRACE_MS;
            /* The end of the forwarded lines ends a wait for the peer's next
             * line at once; a wait in a socket call ends with the grace. */
            if (fwd[1] >= 0)
                close(fwd[1]);
            fwd[1] = -1;
        }
        if (ps->lost && tmpl->side == 1 && kill_at == 0)
            kill_at = cf_now_ms(); /* the host is gone: nobody will read our result */
        now = cf_now_ms();
        until = deadline;
        if (kill_at && kill_at < until)
            until = kill_at;
        if (now >= until) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            if (kill_at && now >= kill_at && now < deadline)
                stopped = 1;
            else
                timed_out = 1;
            break;
        }
        p[0].fd = done[0];
        p[0].events = POLLIN;
        if (ctl_open) {
            p[1].fd = (int)ctl->fd;
            p[1].events = POLLIN;
            np = 2;
        }
        rc = poll(p, (nfds_t)np, (int)(until - now));
        if (rc < 0 && errno != EINTR)
            fatal("poll: %s", strerror(errno));
        if (rc <= 0)
            continue;
        if (p[0].revents)
            break;
        if (np == 2 && p[1].revents) {
            rc = cf_ctl_fill(ctl);
            if (rc <= 0) {
                ctl_open = 0;
                ps->lost = 1;
            }
        }
    }
    if (fwd[1] >= 0)
        close(fwd[1]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    close(done[0]);
    out->end_ms = cf_now_ms();
    if (timed_out) {
        out->v = V_FAIL;
        set_msg(out->msg, sizeof(out->msg), "timed out after %llu ms%s%s",
                (unsigned long long)(out->end_ms - t0), sh->ctx.where[0] ? ", at " : "", sh->ctx.where);
    } else if (stopped) {
        out->v = V_ABORTED;
        set_msg(out->msg, sizeof(out->msg), "stopped: the %s side %s first%s%s", peer_of(tmpl->side),
                ps->lost ? "went away" : "ended", sh->ctx.where[0] ? "; this side was at " : "", sh->ctx.where);
    } else if (WIFSIGNALED(st)) {
        out->v = V_FAIL;
        set_msg(out->msg, sizeof(out->msg), "crashed: signal %d (%s)%s%s", WTERMSIG(st), strsignal(WTERMSIG(st)),
                sh->ctx.where[0] ? ", at " : "", sh->ctx.where);
    } else if (!sh->finished) {
        out->v = V_FAIL;
        set_msg(out->msg, sizeof(out->msg), "exited with status %d before the case returned%s%s",
                WIFEXITED(st) ? WEXITSTATUS(st) : -1, sh->ctx.where[0] ? ", at " : "", sh->ctx.where);
    } else {
        outcome_from_rc(out, sh->rc, &sh->ctx);
    }
    secondary(out, ps, tmpl->side);
}

#else /* _WIN32 */

static struct cf_notes win_notes;

struct watch {
    HANDLE done; /* set when the case returned */
    uint64_t deadline;
    volatile LONG fired;
    const struct cf_case *c;
    struct cf_ctx *ctx;
    struct cf_control *ctl;
    int tap_num;
};

static void shared_init(void)
{
    notes = &win_notes;
}

static void emergency_report(struct watch *w, const char *msg);

static DWORD WINAPI watchdog(LPVOID arg)
{
    struct watch *w = arg;
    uint64_t now = cf_now_ms();
    DWORD wait = now >= w->deadline ? 0 : (DWORD)(w->deadline - now);
    char msg[700];

    if (WaitForSingleObject(w->done, wait) == WAIT_OBJECT_0)
        return 0;
    /* First resort: close the case's sockets, which ends a blocking call. */
    InterlockedExchange(&w->fired, 1);
    cf__backend_abort_case();
    if (WaitForSingleObject(w->done, WIN_ABORT_MS) == WAIT_OBJECT_0)
        return 0;
    set_msg(msg, sizeof(msg),
            "timed out after %lu ms%s%s and did not return when its sockets were closed; Windows has no fork to end "
            "one case alone, so the agent ends here",
            (unsigned long)(cf_now_ms() - (w->deadline - scaled(CASE_MS))), w->ctx->where[0] ? ", at " : "",
            w->ctx->where);
    fprintf(stderr, "hvsim-agent: case %s %s\n", w->c->id, msg);
    emergency_report(w, msg);
    fflush(stdout);
    fflush(stderr);
    TerminateProcess(GetCurrentProcess(), 3);
    return 0;
}

static int win_tap_num;

static void run_side(const struct cf_case *c, const struct cf_ctx *tmpl, struct cf_control *ctl, uint64_t deadline,
                     struct peer_state *ps, struct outcome *out)
{
    static struct cf_ctx ctx;
    struct watch w;
    HANDLE th;
    cf_fn fn = tmpl->side == 0 ? c->host : c->guest;
    uint64_t t0 = cf_now_ms();
    int rc;

    memset(out, 0, sizeof(*out));
    ctx = *tmpl;
    ctl->stash[0] = '\0';
    ctl->deadline_ms = deadline > 1000 ? deadline - scaled(1000) : deadline;
    ctx.ctl = ctl;
    memset(&w, 0, sizeof(w));
    w.done = CreateEventW(NULL, TRUE, FALSE, NULL);
    w.deadline = deadline;
    w.c = c;
    w.ctx = &ctx;
    w.ctl = ctl;
    w.tap_num = win_tap_num;
    th = CreateThread(NULL, 0, watchdog, &w, 0, NULL);
    if (w.done == NULL || th == NULL)
        fatal("cannot start the watchdog thread (error %lu)", (unsigned long)GetLastError());
    cf__notes = notes;
    rc = fn(&ctx);
    cf__notes = NULL;
    SetEvent(w.done);
    WaitForSingleObject(th, INFINITE);
    /* What a forked child's exit does on POSIX: the case's sockets go. */
    cf__backend_abort_case();
    CloseHandle(th);
    CloseHandle(w.done);
    ctl->deadline_ms = 0;
    out->end_ms = cf_now_ms();
    if (w.fired) {
        out->v = V_FAIL;
        set_msg(out->msg, sizeof(out->msg), "timed out after %llu ms%s%s (its sockets were closed to end it)",
                (unsigned long long)(out->end_ms - t0), ctx.where[0] ? ", at " : "", ctx.where);
    } else {
        outcome_from_rc(out, rc, &ctx);
    }
    if (ctl->stash[0])
        (void)frame_line(tmpl->side, c->id, ctl->stash, ps);
    ctl->stash[0] = '\0';
    secondary(out, ps, tmpl->side);
}

#endif /* _WIN32 */

/* ---- the host side ---------------------------------------------------------------------- */

struct planned {
    const struct cf_case *c;
    size_t ordinal;
    char skip[200]; /* non-empty: skipped before it runs, with this reason */
};

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static const char *backend_label(void)
{
    static char buf[160];

    if (guest_backend[0] == '\0' || strcmp(guest_backend, cf_backend_name()) == 0)
        return cf_backend_name();
    set_msg(buf, sizeof(buf), "%s/%s", cf_backend_name(), guest_backend);
    return buf;
}

/* result: pass, fail, skip or divergence; msg: the reason or failure. */
static void emit(int num, const struct cf_case *c, enum cf_column col, const char *result, const char *msg,
                 uint64_t ms)
{
    char expected[48], m[800];

    set_msg(m, sizeof(m), "%s", msg ? msg : "");
    flatten(m);
    if (strcmp(result, "pass") == 0)
        printf("ok %d - %s # %s\n", num, c->id, cf_confidence_name(c->confidence));
    else if (strcmp(result, "skip") == 0)
        printf("ok %d - %s # SKIP %s\n", num, c->id, m);
    else if (strcmp(result, "divergence") == 0)
        printf("ok %d - %s # TODO known divergence: %s\n", num, c->id, c->diverge[col]);
    else
        printf("not ok %d - %s # %s\n", num, c->id, m);
    fflush(stdout);
    if (report_f == NULL)
        return;
    if (strcmp(result, "divergence") == 0) {
        char d[800];

        set_msg(d, sizeof(d), "known divergence: %s; observed: %s", c->diverge[col], m);
        set_msg(m, sizeof(m), "%s", d);
        flatten(m);
    }
    fputs("{\"id\":", report_f);
    json_str(report_f, c->id);
    fputs(",\"area\":", report_f);
    json_str(report_f, c->area);
    fputs(",\"rule\":", report_f);
    json_str(report_f, c->rule);
    fputs(",\"source\":", report_f);
    json_str(report_f, c->source);
    fputs(",\"confidence\":", report_f);
    json_str(report_f, cf_confidence_name(c->confidence));
    fputs(",\"column\":", report_f);
    json_str(report_f, cf_column_name(col));
    fputs(",\"target\":", report_f);
    json_str(report_f, O.target);
    fputs(",\"backend\":", report_f);
    json_str(report_f, backend_label());
    fputs(",\"expected\":", report_f);
    json_str(report_f, cf_expect_name(c->expect[col], expected, sizeof(expected)));
    fputs(",\"result\":", report_f);
    json_str(report_f, result);
    fputs(",\"message\":", report_f);
    json_str(report_f, m);
    fprintf(report_f, ",\"ms\":%llu}\n", (unsigned long long)ms);
    fflush(report_f);
}

#ifdef _WIN32
static enum cf_column win_col;

static void emergency_report(struct watch *w, const char *msg)
{
    char m[760];

    if (O.side == 0) {
        set_msg(m, sizeof(m), "host: %s", msg);
        emit(w->tap_num, w->c, win_col, "fail", m, scaled(CASE_MS));
        printf("Bail out! case %s hung the Windows host agent\n", w->c->id);
    } else {
        char line[CF_CTL_LINE_MAX];

        set_msg(line, sizeof(line), "RESULT %s fail %s", w->c->id, msg);
        (void)cf_ctl_send(w->ctl, line);
    }
}
#endif

static void warn_comment(const char *msg)
{
    printf("# warning: %s\n", msg);
    fflush(stdout);
}

static void restore_vms(void)
{
    const cf_guid_t *vms[3] = { &O.vm, &O.vm2, &O.hcs };
    static unsigned warned; /* once per VM: the next cases would say the same */
    int i;

    for (i = 0; i < 3; i++) {
        char g[37];
        int rc;

        if (cf_guid_eq(vms[i], &CF_GUID_ZERO))
            continue;
        rc = cf__admin_vm_restore(vms[i]);
        if (rc < 0 && rc != -ENOTSUP && !(warned & (1u << i))) {
            warned |= 1u << i;
            cf_guid_format(vms[i], g);
            printf("# warning: could not make VM %s running: %s\n", g, cf_errno_name(rc));
        }
    }
}

static unsigned target_caps(void)
{
    unsigned caps = 0;

    if (strcmp(O.target, "hyperv") != 0)
        caps |= CF_NEED_ADMIN | CF_NEED_SETTINGS; /* sim and qemu: the host side is hvsim */
    if (!cf_guid_eq(&O.hcs, &CF_GUID_ZERO))
        caps |= CF_NEED_HCS;
    if (!cf_guid_eq(&O.vm2, &CF_GUID_ZERO))
        caps |= CF_NEED_TWO_VMS;
    return caps;
}

/* Before waiting for the guest: a mistyped --pick should not cost a run. */
static void check_patterns(void)
{
    size_t i, j, n = cf_catalogue_size();

    for (j = 0; j < O.npick; j++) {
        for (i = 0; i < n && !pattern_matches(O.pick[j], cf_catalogue_at(i)); i++)
            ;
        if (i == n)
            fatal("--pick %s matches no case (hvsim-agent --list shows them)", O.pick[j]);
    }
    for (j = 0; j < O.nskip; j++) {
        for (i = 0; i < n && !pattern_matches(O.skip[j], cf_catalogue_at(i)); i++)
            ;
        if (i == n)
            fprintf(stderr, "hvsim-agent: note: --skip %s matches no case\n", O.skip[j]);
    }
}

static struct planned *make_plan(enum cf_column col, size_t *count)
{
    size_t i, j, n = cf_catalogue_size(), k = 0;
    struct planned *plan = calloc(n ? n : 1, sizeof(*plan));
    unsigned caps = target_caps();

    if (plan == NULL)
        fatal("out of memory");
    for (i = 0; i < n; i++) {
        const struct cf_case *c = cf_catalogue_at(i);
        struct planned *p;
        unsigned lack;

        if (O.npick) {
            for (j = 0; j < O.npick && !pattern_matches(O.pick[j], c); j++)
                ;
            if (j == O.npick)
                continue;
        }
        p = &plan[k++];
        p->c = c;
        p->ordinal = i;
        for (j = 0; j < O.nskip && !pattern_matches(O.skip[j], c); j++)
            ;
        lack = c->needs & ~caps;
        if (j < O.nskip)
            set_msg(p->skip, sizeof(p->skip), "skipped by --skip %s", O.skip[j]);
        else if (c->expect[col] == CF_NA)
            set_msg(p->skip, sizeof(p->skip), "not applicable to column %s", cf_column_name(col));
        else if (c->host == NULL && c->guest == NULL)
            set_msg(p->skip, sizeof(p->skip), "the case has no host or guest function");
        else if (lack & CF_NEED_ADMIN)
            set_msg(p->skip, sizeof(p->skip), "needs administration of the target, which target %s does not offer",
                    O.target);
        else if (lack & CF_NEED_SETTINGS)
            set_msg(p->skip, sizeof(p->skip), "needs hvsim settings, which target %s does not have", O.target);
        else if (lack & CF_NEED_HCS)
            set_msg(p->skip, sizeof(p->skip), "needs an HCS VM (--hcs GUID)");
        else if (lack & CF_NEED_TWO_VMS)
            set_msg(p->skip, sizeof(p->skip), "needs a second VM (--vm2 GUID)");
    }
    *count = k;
    return plan;
}

/* Wait for the guest's HELLO and answer with the run's configuration. */
static int greet(struct cf_control *ctl, uint64_t deadline, int *col)
{
    char line[CF_CTL_LINE_MAX], cfg[400], vm[37], vm2[37], hcs[37], colname[32] = "", be[64] = "";
    int rc;

    rc = cf_ctl_accept(ctl, deadline);
    if (rc < 0)
        return rc;
    rc = cf_ctl_recv(ctl, line, sizeof(line), cf_now_ms() + scaled(READY_MS));
    if (rc < 0)
        return rc;
    if (sscanf(line, "HELLO %31s %63s", colname, be) < 1 || column_by_name(colname) < 0) {
        set_msg(ctl->err, sizeof(ctl->err), "expected 'HELLO <column> <backend>' from the guest agent, got '%.200s'",
                line);
        return -EPROTO;
    }
    if (*col >= 0 && *col != column_by_name(colname)) {
        set_msg(ctl->err, sizeof(ctl->err), "the guest agent speaks column %s, but this side was told --column %s",
                colname, cf_column_name((enum cf_column)*col));
        return -EPROTO;
    }
    *col = column_by_name(colname);
    set_msg(guest_backend, sizeof(guest_backend), "%s", be);
    cf_guid_format(&O.vm, vm);
    cf_guid_format(&O.vm2, vm2);
    cf_guid_format(&O.hcs, hcs);
    set_msg(cfg, sizeof(cfg), "CONFIG %s %s %s %s %g", O.target, vm, vm2, hcs, O.scale);
    return cf_ctl_send(ctl, cfg);
}

static int run_host(void)
{
    struct cf_control ctl;
    struct planned *plan;
    size_t n, i;
    int col = O.column, failures = 0, gone = 0, rc;

    check_patterns();
    cf_ctl_init(&ctl);
    rc = cf_ctl_listen(&ctl, O.control);
    if (rc < 0)
        fatal("%s", ctl.err);
    if (O.report) {
        report_f = fopen(O.report, "wb");
        if (report_f == NULL)
            fatal("--report %s: %s", O.report, strerror(errno));
    }
    rc = greet(&ctl, cf_now_ms() + scaled(HELLO_MS), &col);
    if (rc < 0) {
        cf_ctl_shutdown(&ctl);
        fatal("no guest agent: %s", ctl.err);
    }
#ifdef _WIN32
    win_col = (enum cf_column)col;
#endif
    plan = make_plan((enum cf_column)col, &n);
    printf("# hvsim-agent: target %s, column %s, backend %s, %zu cases\n", O.target, cf_column_name((enum cf_column)col),
           backend_label(), n);
    printf("1..%zu\n", n);
    fflush(stdout);
    restore_vms();
    for (i = 0; i < n; i++) {
        const struct planned *p = &plan[i];
        const struct cf_case *c = p->c;
        struct cf_ctx tmpl;
        struct outcome host;
        struct peer_state ps;
        char line[CF_CTL_LINE_MAX], msg[1600];
        const char *result;
        uint64_t t0, deadline;
        int num = (int)i + 1;

        if (p->skip[0]) {
            emit(num, c, (enum cf_column)col, "skip", p->skip, 0);
            continue;
        }
        if (gone) {
            emit(num, c, (enum cf_column)col, "fail", "not run: the guest agent is gone (control channel lost)", 0);
            failures++;
            continue;
        }
        if (ctl.fd == CF_NO_SOCK) {
            /* The guest agent went away (a VM reset ends it on a real guest): a
             * restarted one may come back. */
            if (greet(&ctl, cf_now_ms() + scaled(RECONNECT_MS), &col) < 0) {
                printf("# guest agent gone: %s\n", ctl.err);
                gone = 1;
                i--;
                continue;
            }
            printf("# the guest agent reconnected\n");
        }
        memset(&ps, 0, sizeof(ps));
        memset(&host, 0, sizeof(host));
        ctx_template(&tmpl, c, 0, (enum cf_column)col, PORT_BASE + 100u * (uint32_t)p->ordinal);
        t0 = cf_now_ms();
        deadline = t0 + scaled(CASE_MS);
        notes->n = 0;
        notes->overflow = 0;
        set_msg(line, sizeof(line), "CASE %s %u", c->id, (unsigned)tmpl.port_base);
        rc = cf_ctl_send(&ctl, line);
        /* The barrier: READY, or SKIP with the guest's reason. */
        while (rc == 0) {
            rc = cf_ctl_recv(&ctl, line, sizeof(line), t0 + scaled(READY_MS));
            if (rc < 0)
                break;
            if (strncmp(line, "READY ", 6) == 0 && strcmp(line + 6, c->id) == 0)
                break;
            if (strncmp(line, "SKIP ", 5) == 0 && strncmp(line + 5, c->id, strlen(c->id)) == 0 &&
                (line[5 + strlen(c->id)] == ' ' || line[5 + strlen(c->id)] == '\0'))
                break;
        }
        if (rc < 0) {
            set_msg(msg, sizeof(msg), "no READY from the guest agent: %s", ctl.err);
            cf_ctl_close(&ctl);
            emit(num, c, (enum cf_column)col, "fail", msg, cf_now_ms() - t0);
            failures++;
            continue;
        }
        if (line[0] == 'S') {
            const char *why = line + 5 + strlen(c->id);

            set_msg(msg, sizeof(msg), "guest: %s", *why ? why + 1 : "skipped");
            emit(num, c, (enum cf_column)col, "skip", msg, cf_now_ms() - t0);
            continue;
        }
        if (c->host != NULL) {
#ifdef _WIN32
            win_tap_num = num;
#endif
            run_side(c, &tmpl, &ctl, deadline, &ps, &host);
        } else {
            host.v = V_NONE;
            host.end_ms = cf_now_ms();
        }
        if ((host.v == V_FAIL || host.v == V_SKIP) && !ps.done && !ps.lost) {
            set_msg(line, sizeof(line), "ABORT %s host side %s: %s", c->id, host.v == V_SKIP ? "skipped" : "failed",
                    host.msg);
            (void)cf_ctl_send(&ctl, line);
        }
        /* The guest's RESULT, if it did not come while this side ran. */
        while (!ps.done && !ps.lost) {
            /* A Windows guest's watchdog may take WIN_ABORT_MS more to report. */
            rc = cf_ctl_recv(&ctl, line, sizeof(line), deadline + scaled(RESULT_GRACE_MS) + WIN_ABORT_MS);
            if (rc < 0) {
                ps.lost = 1;
                break;
            }
            (void)frame_line(0, c->id, line, &ps);
        }
        if (ps.lost && !ps.done) {
            ps.v = V_FAIL;
            set_msg(ps.msg, sizeof(ps.msg), "no RESULT from the guest agent: %s", ctl.err[0] ? ctl.err : "gone");
            ps.at_ms = cf_now_ms();
            cf_ctl_close(&ctl);
        }
        {
            uint64_t ms = cf_now_ms() - t0;
            int host_bad = host.v == V_FAIL || host.v == V_SKIP || host.v == V_ABORTED;
            int guest_bad = ps.v != V_PASS;
            /* The first side to end badly has the cause; the other was stopped. */
            int guest_first = guest_bad && (!host_bad || host.v == V_ABORTED || (ps.at_ms < host.end_ms && ps.done));
            enum verdict v;

            if (!host_bad && !guest_bad) {
                v = V_PASS;
                msg[0] = '\0';
            } else if (guest_first) {
                v = ps.v;
                if (host_bad && host.v != V_ABORTED)
                    set_msg(msg, sizeof(msg), "guest: %s | host: %s", ps.msg, host.msg);
                else
                    set_msg(msg, sizeof(msg), "guest: %s", ps.msg);
            } else {
                v = host.v == V_ABORTED ? V_FAIL : host.v;
                if (guest_bad && strncmp(ps.msg, "stopped", 7) != 0)
                    set_msg(msg, sizeof(msg), "host: %s | guest: %s", host.msg, ps.msg);
                else
                    set_msg(msg, sizeof(msg), "host: %s", host.msg);
            }
            cf__admin_revert(notes, warn_comment);
            restore_vms();
            if (v == V_PASS)
                result = "pass";
            else if (v == V_SKIP)
                result = "skip";
            else if (c->diverge[col] != NULL)
                result = "divergence";
            else
                result = "fail", failures++;
            emit(num, c, (enum cf_column)col, result, msg, ms);
        }
    }
    if (ctl.fd != CF_NO_SOCK)
        (void)cf_ctl_send(&ctl, "DONE");
    cf_ctl_shutdown(&ctl);
    free(plan);
    if (report_f)
        fclose(report_f);
    return failures ? 1 : 0;
}

/* ---- the guest side ---------------------------------------------------------------------- */

static int run_guest(void)
{
    struct cf_control ctl;
    char line[CF_CTL_LINE_MAX], target[32] = "", vm[40] = "", vm2[40] = "", hcs[40] = "";
    double scale = 0;
    int rc;

    cf_ctl_init(&ctl);
    rc = cf_ctl_connect(&ctl, O.control, cf_now_ms() + scaled(HELLO_MS));
    if (rc < 0)
        fatal("%s", ctl.err);
    set_msg(line, sizeof(line), "HELLO %s %s", cf_column_name((enum cf_column)O.column), cf_backend_name());
    rc = cf_ctl_send(&ctl, line);
    if (rc == 0)
        rc = cf_ctl_recv(&ctl, line, sizeof(line), cf_now_ms() + scaled(HELLO_MS));
    if (rc < 0)
        fatal("talking to the host agent: %s", ctl.err);
    if (sscanf(line, "CONFIG %31s %39s %39s %39s %lf", target, vm, vm2, hcs, &scale) != 5 ||
        cf_guid_parse(vm, &O.vm) < 0 || cf_guid_parse(vm2, &O.vm2) < 0 || cf_guid_parse(hcs, &O.hcs) < 0 ||
        !(scale > 0))
        fatal("expected 'CONFIG <target> <vm> <vm2> <hcs> <scale>' from the host agent, got '%.200s'", line);
    /* The host's choices rule the run: both sides wait the same. */
    O.scale = scale;
    for (;;) {
        char id[CF_CTL_LINE_MAX];
        unsigned port_base = 0;
        const struct cf_case *c;
        struct cf_ctx tmpl;
        struct outcome out;
        struct peer_state ps;

        rc = cf_ctl_recv(&ctl, line, sizeof(line), cf_now_ms() + scaled(10 * CASE_MS));
        if (rc == -EPIPE)
            fatal("the host agent closed the control channel before DONE");
        if (rc < 0)
            fatal("waiting for the host agent's next case: %s", ctl.err);
        if (strcmp(line, "DONE") == 0)
            break;
        if (sscanf(line, "CASE %1000s %u", id, &port_base) != 2)
            continue; /* a leftover line of a case that ended */
        c = find_case(id, NULL);
        if (c == NULL) {
            set_msg(line, sizeof(line), "SKIP %s this guest agent does not know the case (a different build?)", id);
            (void)cf_ctl_send(&ctl, line);
            continue;
        }
        set_msg(line, sizeof(line), "READY %s", id);
        if (cf_ctl_send(&ctl, line) < 0)
            fatal("%s", ctl.err);
        memset(&ps, 0, sizeof(ps));
        if (c->guest == NULL) {
            out.v = V_PASS;
            set_msg(out.msg, sizeof(out.msg), "no guest part");
        } else {
            ctx_template(&tmpl, c, 1, (enum cf_column)O.column, port_base);
            run_side(c, &tmpl, &ctl, cf_now_ms() + scaled(CASE_MS), &ps, &out);
        }
        if (ps.lost)
            fatal("the host agent went away during case %s", id);
        if (out.v == V_ABORTED && ps.msg[0])
            set_msg(out.msg + strlen(out.msg), sizeof(out.msg) - strlen(out.msg), " (%s)", ps.msg);
        flatten(out.msg);
        set_msg(line, sizeof(line), "RESULT %s %s %s", id, verdict_word(out.v), out.msg);
        if (cf_ctl_send(&ctl, line) < 0)
            fatal("%s", ctl.err);
    }
    cf_ctl_shutdown(&ctl);
    (void)target;
    return 0;
}

int main(int argc, char **argv)
{
    int rc;

    parse_args(argc, argv);
    if (O.list) {
        list_cases();
        return 0;
    }
#ifdef _WIN32
    _setmode(_fileno(stdout), _O_BINARY);
#else
    /* A send to a closed peer must be an EPIPE the case sees, not a death. */
    signal(SIGPIPE, SIG_IGN);
#endif
    rc = cf_backend_init();
    if (rc < 0) {
        fprintf(stderr, "hvsim-agent: the %s backend cannot start: %s\n", cf_backend_name(), cf_errno_name(rc));
        return 2;
    }
    cf__side = O.side;
    shared_init();
    return O.side == 0 ? run_host() : run_guest();
}
