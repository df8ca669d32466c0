/* SPDX-License-Identifier: MIT */
/*
 * stream_pair.h: what the stream cases (cases_data.c, cases_shutdown.c,
 * cases_readiness.c, cases_lifecycle.c) share: one connected pair between the
 * two agents in either direction, each side speaking its own personality; a
 * repeatable byte pattern with a running checksum, so a receiver can say which
 * byte went wrong and both sides can compare sums over the control channel;
 * and the few checks those cases all repeat.
 *
 * The declarations; stream_pair.c has the code. Everything goes through
 * backend.h and catalogue.h, so the same code runs on every target.
 */
#ifndef HVSIM_CF_STREAM_PAIR_H
#define HVSIM_CF_STREAM_PAIR_H

#include <stddef.h>
#include <stdint.h>

#include "../catalogue.h"

#define SP_HOST 0
#define SP_GUEST 1

/* "host" or "guest", for steps: sp_side_name(ctx->side) is this end. */
const char *sp_side_name(int side);

/* Who dials. A guest dialing the host needs the service registered on the
 * host (classic VMs, reference 2.2), so those cases need CF_NEED_ADMIN; the
 * host dialing a guest listener needs nothing. SP_EITHER_DIALS is for rules
 * that do not depend on the direction: the host dials, so a Hyper-V host run
 * by hand without administration still runs the case, except in the virtio
 * column, where the guest dials: every target with a virtio column runs
 * hvsimd, so the host can register its service there, and the rule is then
 * tested on the guest kernel's own connect. */
enum sp_dir { SP_GUEST_DIALS, SP_HOST_DIALS, SP_EITHER_DIALS };
enum sp_dir sp_resolve(const struct cf_ctx *ctx, enum sp_dir dir);

/* Which end sets HVSOCKET_CONNECTED_SUSPEND before connecting or listening. */
enum sp_suspend { SP_SUSPEND_NONE = -1, SP_SUSPEND_HOST = SP_HOST, SP_SUSPEND_GUEST = SP_GUEST };

/* Port k of this case's fresh range, and its service id. */
uint32_t sp_port(const struct cf_ctx *ctx, uint32_t k);
cf_guid_t sp_svc(const struct cf_ctx *ctx, uint32_t k);

/* A Linux guest program gets SIGPIPE from vsock on a write to a shut or
 * broken stream; the cases want the error code, as Winsock gives it. */
void sp_no_sigpipe(void);

/* ---- the control channel ------------------------------------------------------ */

/* The first failure of a case is the one reported (cf_fail_at keeps it), so
 * these only add a message when the control call itself left none. */
int sp_writeln(struct cf_ctx *ctx, const char *line);
int sp_expectln(struct cf_ctx *ctx, const char *line);
int sp_write_u64(struct cf_ctx *ctx, uint64_t v);
int sp_read_u64(struct cf_ctx *ctx, uint64_t *v);

/* ---- sockets of each personality ------------------------------------------------- */

/* The guest's socket: AF_HYPERV in the Windows column, AF_VSOCK otherwise. */
int sp_guest_socket(struct cf_ctx *ctx, int nonblock, cf_sock_t *s);

/* A guest reaches the host service {PARENT, svc}, or CID 2 port P. */
int sp_guest_connect(cf_sock_t s, const struct cf_ctx *ctx, uint32_t k);

/* A guest listener: the wildcard VmId, or VMADDR_CID_ANY (reference 3.1). */
int sp_guest_listen(struct cf_ctx *ctx, uint32_t k, int backlog, int suspend, cf_sock_t *l);

/* The host registers the service (the framework removes it after the case). */
int sp_host_register(struct cf_ctx *ctx, uint32_t k);

/* A host listener bound to the VM under test's id, which every kind of VM
 * reaches (a wildcard needs AllowWildcardBinds on HCS VMs, reference 4.2). */
int sp_host_listen(struct cf_ctx *ctx, uint32_t k, int backlog, int suspend, cf_sock_t *l);
int sp_host_connect(cf_sock_t s, const struct cf_ctx *ctx, uint32_t k);

/* ---- one connected pair ---------------------------------------------------------- */

/* Both sides call this; each gets its end in *s. The acceptor confirms over
 * the control channel, so both ends are established when it returns. */
int sp_pair_ex(struct cf_ctx *ctx, enum sp_dir dir, uint32_t k, enum sp_suspend suspend, cf_sock_t *s);
int sp_pair(struct cf_ctx *ctx, enum sp_dir dir, uint32_t k, cf_sock_t *s);

/* ---- checks ------------------------------------------------------------------------ */

/* CF_POLL* bits (or an error) as text for failure messages. */
const char *sp_events(int ev, char *buf, size_t len);

/* Nothing readable (no data, no EOF) for ms: also a pause that proves it. */
int sp_quiet(struct cf_ctx *ctx, cf_sock_t s, int ms, const char *why);

/* Readable within ms (data, EOF or an error to collect). */
int sp_readable(struct cf_ctx *ctx, cf_sock_t s, int ms, const char *why);

/* Receive exactly len bytes (a stream may split them). */
int sp_recv_exact(struct cf_ctx *ctx, cf_sock_t s, void *buf, size_t len);
int sp_send_all(struct cf_ctx *ctx, cf_sock_t s, const void *buf, size_t len);

/* Receive len bytes and check they equal want. */
int sp_recv_text(struct cf_ctx *ctx, cf_sock_t s, const char *want);

/* ---- the byte pattern and its checksum ------------------------------------------- */

/* Byte o of a stream is pattern[(start + o) % SP_PERIOD]: a prime period, so
 * message boundaries (1, 7, 4088, 4096, 16 KiB, ...) never line up with it
 * and a dropped, repeated or reordered chunk changes what follows. */
#define SP_PERIOD 65521u
#define SP_SUM_INIT 0xcbf29ce484222325ull

struct sp_pattern {
    uint8_t *buf; /* SP_PERIOD + max bytes, so any slice up to max is contiguous */
    size_t max;
};
int sp_pattern_init(struct cf_ctx *ctx, struct sp_pattern *p, uint64_t seed, size_t max);
void sp_pattern_free(struct sp_pattern *p);
const uint8_t *sp_pattern_at(const struct sp_pattern *p, uint64_t off);

/* FNV-1a, 64 bits, over the stream in order. */
uint64_t sp_sum(uint64_t h, const void *buf, size_t len);

/* What one direction of a stream carried, as its sender or receiver saw it. */
struct sp_tally {
    uint64_t bytes;
    uint64_t sum;
    int64_t first_bad; /* receiver: offset of the first byte that differs, or -1 */
};
void sp_tally_init(struct sp_tally *t);

/* Account for received bytes, checking them against the pattern. */
void sp_tally_recv(struct sp_tally *t, const struct sp_pattern *p, uint64_t start, const void *buf, size_t n);

/* Send count messages of msg bytes each, one send() call per message unless
 * the stream takes it in parts. */
int sp_send_msgs(struct cf_ctx *ctx, cf_sock_t s, const struct sp_pattern *p, uint64_t start,
                 size_t msg, size_t count, struct sp_tally *t);

/* Receive total bytes into the tally with reads of at most chunk bytes. A
 * short stream or an error fails; a wrong byte is left in t->first_bad so the
 * caller still reports its sums before failing. */
int sp_recv_bytes(struct cf_ctx *ctx, cf_sock_t s, const struct sp_pattern *p, uint64_t start,
                  uint64_t total, size_t chunk, struct sp_tally *t);

/* -1 with the offset in the message when the tally saw a byte that is not the pattern's. */
int sp_tally_intact(struct cf_ctx *ctx, const struct sp_tally *t);

/* The whole of a one-way transfer of pattern seed from offset 0: send count
 * messages of msg bytes; receive total bytes with reads of at most chunk
 * bytes, each byte checked. */
int sp_send_pattern(struct cf_ctx *ctx, cf_sock_t s, uint64_t seed, size_t msg, size_t count);
int sp_recv_pattern(struct cf_ctx *ctx, cf_sock_t s, uint64_t seed, uint64_t total, size_t chunk);

/* The receiver reports what it got; the sender compares with what it sent. */
int sp_report_tally(struct cf_ctx *ctx, const struct sp_tally *t);
int sp_compare_tally(struct cf_ctx *ctx, const struct sp_tally *sent);

#endif /* HVSIM_CF_STREAM_PAIR_H */
