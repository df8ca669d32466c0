/* SPDX-License-Identifier: MIT */
/*
 * fixture.h: what the integration tests share: a private hvsimd per test
 * (started with --ready-fd, stopped with SIGTERM), processes that attach as a
 * given partition, and pipes to order them without sleeping.
 *
 * Child processes cannot use Criterion's assertions, so they use CHECK*,
 * which print file:line with expected and actual values and _exit(1); the
 * test then asserts the child's exit status.
 */
#ifndef HVSIM_FIXTURE_H
#define HVSIM_FIXTURE_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "hvsim/hvsim.h"

struct fx {
    char dir[PATH_MAX];
    char state[PATH_MAX + 16];
    pid_t daemon;
    hvsim_admin_t *admin;
};

/* Start a daemon with optional "name=value" settings (NULL-terminated);
 * attach this process as the host. */
void fx_start(struct fx *f, const char *const *sets);
/* The same with options: a state folder elsewhere (NULL: DIR/state), the
 * daemon's RLIMIT_NOFILE (0: inherited). */
struct fx_opts {
    const char *state_dir;
    long nofile;
};
void fx_start_opts(struct fx *f, const char *const *sets, const struct fx_opts *o);
/* Kill the daemon (SIGKILL) and start another on the same folders. */
void fx_restart(struct fx *f, const char *const *sets, const struct fx_opts *o);
/* SIGTERM, wait, remove the folder. */
void fx_stop(struct fx *f);
/* Kill the daemon hard (SIGKILL) and reap it. */
void fx_kill_daemon(struct fx *f);
/* Add a VM; returns its ID. */
GUID fx_vm(struct fx *f, const char *name, uint32_t kind);
void fx_service(struct fx *f, const GUID *svc, const char *name);
void fx_vm_op(struct fx *f, const char *name, const char *op);
void fx_set(struct fx *f, const char *name, const char *value);

/* Run fn(arg) in a child attached as partition (a VM name or "host"). */
pid_t fx_spawn(struct fx *f, const char *partition, int (*fn)(void *arg), void *arg);
/* Wait for a child; returns its exit status, or 128+signal. */
int fx_wait(pid_t pid);

/* Ordering between processes. */
struct fx_pipe {
    int r, w;
};
void fx_pipe_init(struct fx_pipe *p);
void fx_signal(struct fx_pipe *p, uint32_t value);
uint32_t fx_await(struct fx_pipe *p); /* at most 10 s, then the process fails */

uint64_t fx_now_ms(void);
SOCKADDR_HV fx_hv(const GUID *vm, const GUID *svc);
struct sockaddr_vm fx_vsock(uint32_t cid, uint32_t port);
GUID fx_svc(uint32_t n); /* a distinct test service GUID (not a VSOCK template one) */

/* Simple deterministic data and its checksum. */
void fx_fill(void *buf, size_t len, uint32_t seed);
uint32_t fx_crc(const void *buf, size_t len, uint32_t crc);

#define CHECK(cond)                                                                                       \
    do {                                                                                                  \
        if (!(cond)) {                                                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                      \
            _exit(1);                                                                                     \
        }                                                                                                 \
    } while (0)

#define CHECK_EQ(a, b)                                                                                    \
    do {                                                                                                  \
        long long _a = (long long)(a), _b = (long long)(b);                                               \
        if (_a != _b) {                                                                                   \
            fprintf(stderr, "%s:%d: %s == %s: expected %lld, got %lld\n", __FILE__, __LINE__, #a, #b, _b, _a); \
            _exit(1);                                                                                     \
        }                                                                                                 \
    } while (0)

/* A call that must fail with errno E (and so the Winsock code of E). */
#define CHECK_ERR(call, E)                                                                                \
    do {                                                                                                  \
        long long _r = (long long)(call);                                                                 \
        int _e = errno;                                                                                   \
        if (_r != -1 || _e != (E)) {                                                                      \
            fprintf(stderr, "%s:%d: %s: expected -1 %s, got %lld %s\n", __FILE__, __LINE__, #call,        \
                    hvsim_err_name(E), _r, _r == -1 ? hvsim_err_name(_e) : "");                           \
            _exit(1);                                                                                     \
        }                                                                                                 \
        if (hvsim_get_last_error() != hvsim_wsa_error(E)) {                                               \
            fprintf(stderr, "%s:%d: %s: expected Winsock %d, got %d\n", __FILE__, __LINE__, #call,         \
                    hvsim_wsa_error(E), hvsim_get_last_error());                                          \
            _exit(1);                                                                                     \
        }                                                                                                 \
    } while (0)

#define CHECK_OK(call)                                                                                    \
    do {                                                                                                  \
        long long _r = (long long)(call);                                                                 \
        if (_r < 0) {                                                                                     \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, hvsim_err_name(errno));  \
            _exit(1);                                                                                     \
        }                                                                                                 \
    } while (0)

#endif /* HVSIM_FIXTURE_H */
