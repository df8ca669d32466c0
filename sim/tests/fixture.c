/* SPDX-License-Identifier: MIT */
/*
 * fixture.c: a private hvsimd per integration test, and processes attached as
 * partitions. See fixture.h.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "fixture.h"

static const char *bin_dir(void)
{
    const char *b = getenv("HVSIM_BIN");

    return b && *b ? b : "build/bin";
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Exec hvsimd on f->dir and f->state with SETS; returns when it is ready. */
static void start_daemon(struct fx *f, const char *const *sets, const struct fx_opts *o)
{
    char exe[PATH_MAX + 16], fdtext[16];
    const char *argv[64];
    int ready[2], n = 0, i;
    char buf[64];
    ssize_t r;

    snprintf(exe, sizeof(exe), "%s/hvsimd", bin_dir());
    cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
    snprintf(fdtext, sizeof(fdtext), "%d", ready[1]);
    argv[n++] = exe;
    argv[n++] = "--dir";
    argv[n++] = f->dir;
    argv[n++] = "--state-dir";
    argv[n++] = f->state;
    argv[n++] = "--ready-fd";
    argv[n++] = fdtext;
    for (i = 0; sets && sets[i] && n < 60; i++) {
        argv[n++] = "--set";
        argv[n++] = sets[i];
    }
    argv[n] = NULL;
    f->daemon = fork();
    cr_assert_geq(f->daemon, 0);
    if (f->daemon == 0) {
        /* A test that dies (timeout, crash) must not leave its daemon behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        fcntl(ready[1], F_SETFD, 0);
        if (o && o->nofile > 0) {
            struct rlimit rl = { (rlim_t)o->nofile, (rlim_t)o->nofile };

            if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                _exit(126);
        }
        execv(exe, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(ready[1]);
    /* Ready is a line and then EOF; EOF alone means it died. */
    r = read(ready[0], buf, sizeof(buf));
    close(ready[0]);
    cr_assert_gt(r, 0, "hvsimd did not become ready (see its stderr)");
    cr_assert_eq(hvsim_admin_open(f->dir, &f->admin), 0);
}

void fx_start_opts(struct fx *f, const char *const *sets, const struct fx_opts *o)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/hvsim-test-XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir), "mkdtemp: %s", strerror(errno));
    if (o && o->state_dir)
        snprintf(f->state, sizeof(f->state), "%s", o->state_dir);
    else
        snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
    setenv("HVSIM_DIR", f->dir, 1);
    setenv("HVSIM_PARTITION", "host", 1);
    start_daemon(f, sets, o);
}

void fx_start(struct fx *f, const char *const *sets)
{
    fx_start_opts(f, sets, NULL);
}

void fx_restart(struct fx *f, const char *const *sets, const struct fx_opts *o)
{
    if (f->admin) {
        hvsim_admin_close(f->admin);
        f->admin = NULL;
    }
    fx_kill_daemon(f);
    start_daemon(f, sets, o);
}

void fx_kill_daemon(struct fx *f)
{
    if (f->daemon > 0) {
        kill(f->daemon, SIGKILL);
        waitpid(f->daemon, NULL, 0);
        f->daemon = 0;
    }
}

void fx_stop(struct fx *f)
{
    if (f->admin) {
        hvsim_admin_close(f->admin);
        f->admin = NULL;
    }
    if (f->daemon > 0) {
        int st;

        kill(f->daemon, SIGTERM);
        waitpid(f->daemon, &st, 0);
        f->daemon = 0;
    }
    if (f->dir[0])
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

GUID fx_vm(struct fx *f, const char *name, uint32_t kind)
{
    hvsim_vm_info_t info;
    int rc = hvsim_admin_vm_add(f->admin, name, NULL, kind, &info);

    cr_assert_eq(rc, 0, "vm add %s: %s", name, hvsim_admin_errmsg(f->admin));
    return info.id;
}

void fx_service(struct fx *f, const GUID *svc, const char *name)
{
    int rc = hvsim_admin_service_add(f->admin, svc, name);

    cr_assert_eq(rc, 0, "service add: %s", hvsim_admin_errmsg(f->admin));
}

void fx_vm_op(struct fx *f, const char *name, const char *op)
{
    int rc = hvsim_admin_vm_op(f->admin, name, op);

    cr_assert_eq(rc, 0, "vm %s %s: %s", op, name, hvsim_admin_errmsg(f->admin));
}

void fx_set(struct fx *f, const char *name, const char *value)
{
    int rc = hvsim_admin_setting_set(f->admin, name, value);

    cr_assert_eq(rc, 0, "set %s %s: %s", name, value, hvsim_admin_errmsg(f->admin));
}

pid_t fx_spawn(struct fx *f, const char *partition, int (*fn)(void *arg), void *arg)
{
    pid_t pid;

    fflush(NULL);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setenv("HVSIM_DIR", f->dir, 1);
        setenv("HVSIM_PARTITION", partition, 1);
        _exit(fn(arg));
    }
    return pid;
}

int fx_wait(pid_t pid)
{
    int st;

    if (waitpid(pid, &st, 0) < 0)
        return -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

void fx_pipe_init(struct fx_pipe *p)
{
    int fds[2];

    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
    p->r = fds[0];
    p->w = fds[1];
}

void fx_signal(struct fx_pipe *p, uint32_t value)
{
    CHECK(write(p->w, &value, sizeof(value)) == (ssize_t)sizeof(value));
}

uint32_t fx_await(struct fx_pipe *p)
{
    struct pollfd pf = { .fd = p->r, .events = POLLIN };
    uint32_t v = 0;

    CHECK(poll(&pf, 1, 10000) == 1);
    CHECK(read(p->r, &v, sizeof(v)) == (ssize_t)sizeof(v));
    return v;
}

uint64_t fx_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

SOCKADDR_HV fx_hv(const GUID *vm, const GUID *svc)
{
    SOCKADDR_HV a = { .Family = AF_HYPERV, .VmId = *vm, .ServiceId = *svc };

    return a;
}

struct sockaddr_vm fx_vsock(uint32_t cid, uint32_t port)
{
    struct sockaddr_vm a;

    memset(&a, 0, sizeof(a));
    a.svm_family = AF_VSOCK;
    a.svm_cid = cid;
    a.svm_port = port;
    return a;
}

GUID fx_svc(uint32_t n)
{
    GUID g = HVSIM_GUID_INIT(0x0bad0000u, 0x5e57, 0x4a11, 0x9a, 0x5e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);

    g.Data1 |= n;
    return g;
}

void fx_fill(void *buf, size_t len, uint32_t seed)
{
    uint8_t *p = buf;
    uint32_t x = seed * 2654435761u + 1;
    size_t i;

    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

uint32_t fx_crc(const void *buf, size_t len, uint32_t crc)
{
    const uint8_t *p = buf;
    size_t i;
    int k;

    crc = ~crc;
    for (i = 0; i < len; i++) {
        crc ^= p[i];
        for (k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}
