/* SPDX-License-Identifier: MIT */
/*
 * util.h: the small things every room of hvsim needs and none owns: the
 * monotonic clock, random bytes and GUIDs, the default run folder, error
 * text for callers, and SipHash for ticket MACs. Part of libhvsim-proto, the
 * one library the daemon, the library, the back-end and the tools share.
 * Functions return 0 or a negative errno.
 */
#ifndef HVPROTO_UTIL_H
#define HVPROTO_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "hvsim/hvsocket.h"

#define HVSIM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

uint64_t hvsim__now_ns(void); /* CLOCK_MONOTONIC */
/* 0 once fd is readable, -ETIMEDOUT at deadline_ns (CLOCK_MONOTONIC), or -errno. */
int hvsim__wait_readable(int fd, uint64_t deadline_ns);
int hvsim__random(void *buf, size_t len);
/* A random (version 4) GUID from a per-process pool of getrandom bytes. */
int hvsim__guid_random(GUID *out);
/* "parent", "children", ... for a well-known VmId, else NULL. */
const char *hvsim__vmid_name(const GUID *g);

/* A VM's transport and kernel (hvsim.h) as text: "hv_sock", "virtio"; "6.1",
 * "6.12", "newest". NULL for a value that has no name; parse: 0 or -EINVAL. */
const char *hvsim__transport_name(uint32_t transport);
int hvsim__transport_parse(const char *s, uint32_t *out);
const char *hvsim__kernel_name(uint32_t kernel);
int hvsim__kernel_parse(const char *s, uint32_t *out);

/* A virtio VM's sibling groups, NAME[+NAME...] (groups.c): check gives 0
 * ("" is no group) or -EINVAL with err saying which group is wrong and what
 * was expected; share is 1 when the lists have a name in common. */
int hvsim__groups_check(const char *text, char *err, size_t errlen);
int hvsim__groups_share(const char *a, const char *b);

/* The daemon's run folder: $HVSIM_DIR, else $XDG_RUNTIME_DIR/hvsim, else /tmp/hvsim-<uid>. */
const char *hvsim__default_dir(char *buf, size_t len);

/*
 * Open a run or state folder the caller can trust (the rules of ssh-agent and
 * XDG_RUNTIME_DIR): a directory, not a symbolic link, owned by the effective
 * uid, writable by neither group nor others. create: mkdir it 0700 first when
 * missing. Returns an O_DIRECTORY fd (close-on-exec), to reach the folder's
 * files without following the path again; or -EPERM for an untrusted folder,
 * another -errno for a missing or unreadable one, with err naming the path,
 * what is wrong and what to do. hvsimd, libhvsim and hvsimctl all use it
 * before they create, open, connect or send anything there.
 */
int hvsim__dir_open_trusted(const char *dir, int create, char *err, size_t errlen);

/* How long a process waits for any answer of hvsimd (HVSIM_REQUEST_TIMEOUT_MS,
 * 1..3600000; default HVSIM_REQUEST_TIMEOUT_DEFAULT_MS). */
#define HVSIM_REQUEST_TIMEOUT_DEFAULT_MS 5000
int hvsim__request_timeout_ms(void);

/* snprintf into a caller's error buffer, which may be NULL. */
void hvsim__set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* SipHash-2-4 with a 128-bit output. */
void hvsim__siphash128(const uint8_t key[16], const void *data, size_t len, uint8_t out[16]);

#endif /* HVPROTO_UTIL_H */
