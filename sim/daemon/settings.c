/* SPDX-License-Identifier: MIT */
/*
 * settings.c: the emulation choices, one row each. Every behaviour that the
 * reference marks UNCONFIRMED or INFERRED, and every place where hvsim picks
 * between two real behaviours (Hyper-V or KVM), is a row here with its
 * default, its choices and its confidence, so it can be changed with
 * `hvsimd --set name=value` or `hvsimctl set name value` and is listed by
 * `hvsimctl settings` and in the README.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

enum kind { K_MS, K_BOOL, K_PROFILE, K_ERR, K_CLAMP, K_COUNT };

#define COUNT_MAX 1000000u

static const struct row {
    const char *name;
    enum kind kind;
    size_t off;
    const char *def;
    const char *choices;
    const char *confidence;
    const char *why;
} rows[] = {
    { "windows_connect_timeout_ms", K_MS, offsetof(struct settings, win_timeout_ms), "2000", "1..300000",
      "sourced", "Default of HVSOCKET_CONNECT_TIMEOUT: 2 s in Microsoft's openvmm code (hyperv-sockets.md 7, "
                 "item 1); WSL's 30 s is its own choice. 30000 gives WSL's." },
    { "linux_connect_timeout_ms", K_MS, offsetof(struct settings, linux_timeout_ms), "2000", "1..300000",
      "sourced", "VSOCK_DEFAULT_CONNECT_TIMEOUT is 2 * HZ (reference 3.3)." },
    { "connect_timeout_above_max", K_CLAMP, offsetof(struct settings, timeout_clamp), "reject", "reject|clamp",
      "UNCONFIRMED", "HVSOCKET_CONNECT_TIMEOUT above 300000: EINVAL (as libzmq checks) or clamped." },
    { "guest_zero_vmid_reaches_host", K_BOOL, offsetof(struct settings, zero_reaches_parent), "1", "0|1",
      "sourced", "The 2015 guide: a guest connects to the host with the zero GUID; the current one says "
                 "HV_GUID_PARENT (reference 2.3). 1 accepts both." },
    { "refusal_profile", K_PROFILE, offsetof(struct settings, profile), "hyperv", "hyperv|kvm", "INFERRED",
      "No listener for a Linux guest's request, or for a host request to a guest: hyperv = no answer (the "
      "caller times out, reference 3.2-3.3); kvm = RST, ECONNRESET at once. Decides for hv_sock VMs only: a "
      "virtio VM (vm add --transport virtio) always resets, as its transport does." },
    { "connect_to_off_vm", K_ERR, offsetof(struct settings, off_vm_error), "ENETUNREACH",
      "ENETDOWN|EINVAL|ENETUNREACH|EADDRNOTAVAIL|ECONNREFUSED|timeout", "INFERRED",
      "Host connects to a VM that is off. Microsoft's client code reads WSAENETUNREACH and WSAEADDRNOTAVAIL "
      "as 'the VM has not started'; nothing ties power-off to WSAENETDOWN (hyperv-sockets.md 7, item 2)." },
    { "connect_to_unknown_vm", K_ERR, offsetof(struct settings, unknown_vm_error), "ENETUNREACH",
      "ENETDOWN|EINVAL|ENETUNREACH|EADDRNOTAVAIL|ECONNREFUSED|timeout", "INFERRED",
      "Host connects to a VM ID that no VM has: 'not started' to Microsoft's client code, which takes "
      "WSAENETUNREACH or WSAEADDRNOTAVAIL (7, item 2); go-winio redials on WSAENETUNREACH (4.3)." },
    { "guest_to_other_vm", K_ERR, offsetof(struct settings, sibling_error), "ENETUNREACH",
      "ENETDOWN|EINVAL|ENETUNREACH|EADDRNOTAVAIL|ECONNREFUSED|timeout", "INFERRED",
      "A guest connects to any VM ID but its parent's or loopback: guests cannot reach siblings; the error "
      "is the one a Linux guest gets for a CID other than 2 (reference 3.3)." },
    { "virtio_guest_to_other_vm", K_ERR, offsetof(struct settings, virtio_sibling_error), "timeout",
      "ENETDOWN|EINVAL|ENETUNREACH|EADDRNOTAVAIL|ECONNREFUSED|timeout", "sourced",
      "A virtio guest connects to a CID other than 1, 2 and its own that shares no sibling group with it "
      "(vm add --group), or that no VM has: kernel vhost-vsock and vhost-device-vsock drop the request, so "
      "the connect times out (vsock-virtio.md 7.8)." },
    { "pause_freezes_guests", K_BOOL, offsetof(struct settings, pause_freezes), "0", "0|1", "INFERRED",
      "1: pausing a VM also stops (SIGSTOP) the processes attached as it, and resume continues them, as a "
      "paused VM's programs do not run." },
    { "reset_kills_guests", K_BOOL, offsetof(struct settings, reset_kills), "0", "0|1", "INFERRED",
      "1: reset and power-off also SIGKILL the processes attached as the VM, as a real reset ends every "
      "guest program; 0 breaks their connections only." },
    { "max_connections_per_partition", K_COUNT, offsetof(struct settings, max_conns), "1024", "1..1000000",
      "INFERRED", "Control connections (one per attached process) of one partition; more: the process's HELLO is "
                  "answered EMFILE, so its socket() fails as a full descriptor table does." },
    { "max_binds_per_partition", K_COUNT, offsetof(struct settings, max_binds), "4096", "1..1000000", "INFERRED",
      "Bound sockets of one partition; more: bind (or the bind a listen or connect makes) fails with ENOBUFS "
      "(Winsock WSAENOBUFS), the resource error both socket layers give." },
    { "max_pending_connects", K_COUNT, offsetof(struct settings, max_pending), "64", "1..1000000", "INFERRED",
      "Host connects waiting for one VM's guest (its back-end's gateway); more: a full virtio backlog, "
      "ECONNRESET at once (Winsock WSAENOBUFS)." },
    { "max_queued_events", K_COUNT, offsetof(struct settings, max_events), "1024", "1..1000000", "INFERRED",
      "VM events (pause, reset, ...) hvsimd holds for one partition's processes that do not read them; a "
      "process whose event would pass it is detached (its control connection closed)." },
    { "max_tracked_connections", K_COUNT, offsetof(struct settings, max_tracked), "1024", "1..1000000",
      "INFERRED", "Records of routed connections hvsimd keeps for one partition's connects (hvsimctl vm connections); more: "
                  "the oldest record is forgotten and counted, the connection itself is not touched." },
    { "hello_timeout_ms", K_MS, offsetof(struct settings, hello_ms), "5000", "1..300000", "INFERRED",
      "A control connection must send HELLO within this time or is dropped, so idle connections cannot hold "
      "a partition's ceiling." },
};

static const struct {
    const char *name;
    int32_t value;
} errs[] = {
    { "ENETDOWN", -ENETDOWN }, { "EINVAL", -EINVAL }, { "ENETUNREACH", -ENETUNREACH },
    { "EADDRNOTAVAIL", -EADDRNOTAVAIL }, { "ECONNREFUSED", -ECONNREFUSED }, { "timeout", 1 },
};

static const struct row *find(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

int settings_set(struct settings *s, const char *name, const char *value, char *err, size_t errlen)
{
    const struct row *r = find(name);
    void *p;
    size_t i;

    if (r == NULL) {
        snprintf(err, errlen, "unknown setting '%s' (hvsimctl settings lists them)", name);
        return -ENOENT;
    }
    p = (char *)s + r->off;
    switch (r->kind) {
    case K_MS: {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(value, &end, 10);
        if (errno || value[0] < '0' || value[0] > '9' || *end != '\0' || v < 1 || v > HVSOCKET_CONNECT_TIMEOUT_MAX)
            goto bad;
        *(uint32_t *)p = (uint32_t)v;
        return 0;
    }
    case K_COUNT: {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(value, &end, 10);
        if (errno || value[0] < '0' || value[0] > '9' || *end != '\0' || v < 1 || v > COUNT_MAX)
            goto bad;
        *(uint32_t *)p = (uint32_t)v;
        return 0;
    }
    case K_BOOL:
        if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0)
            goto bad;
        *(uint32_t *)p = value[0] == '1';
        return 0;
    case K_PROFILE:
        if (strcmp(value, "hyperv") == 0)
            *(uint32_t *)p = PROFILE_HYPERV;
        else if (strcmp(value, "kvm") == 0)
            *(uint32_t *)p = PROFILE_KVM;
        else
            goto bad;
        return 0;
    case K_CLAMP:
        if (strcmp(value, "reject") == 0)
            *(uint32_t *)p = 0;
        else if (strcmp(value, "clamp") == 0)
            *(uint32_t *)p = 1;
        else
            goto bad;
        return 0;
    case K_ERR:
        for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
            if (strcmp(errs[i].name, value) == 0) {
                *(int32_t *)p = errs[i].value;
                return 0;
            }
        }
        goto bad;
    }
bad:
    snprintf(err, errlen, "setting %s: expected %s, got '%s'", name, r->choices, value);
    return -EINVAL;
}

int settings_get(const struct settings *s, const char *name, char *value, size_t len)
{
    const struct row *r = find(name);
    const void *p;
    size_t i;

    if (r == NULL)
        return -ENOENT;
    p = (const char *)s + r->off;
    switch (r->kind) {
    case K_MS:
    case K_BOOL:
    case K_COUNT:
        snprintf(value, len, "%u", *(const uint32_t *)p);
        break;
    case K_PROFILE:
        snprintf(value, len, "%s", *(const uint32_t *)p == PROFILE_KVM ? "kvm" : "hyperv");
        break;
    case K_CLAMP:
        snprintf(value, len, "%s", *(const uint32_t *)p ? "clamp" : "reject");
        break;
    case K_ERR:
        snprintf(value, len, "?");
        for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
            if (errs[i].value == *(const int32_t *)p)
                snprintf(value, len, "%s", errs[i].name);
        break;
    }
    return 0;
}

void settings_defaults(struct settings *s)
{
    char err[128];
    size_t i;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        (void)settings_set(s, rows[i].name, rows[i].def, err, sizeof(err));
}

char *settings_list(const struct settings *s)
{
    size_t i, cap = 4096, used = 0;
    char *out = malloc(cap), v[64];

    if (out == NULL)
        return NULL;
    out[0] = '\0';
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        settings_get(s, rows[i].name, v, sizeof(v));
        used += (size_t)snprintf(out + used, cap - used, "%s=%s\n", rows[i].name, v);
    }
    return out;
}

size_t settings_count(void)
{
    return sizeof(rows) / sizeof(rows[0]);
}

const char *settings_doc(size_t i, const char **name, const char **choices, const char **confidence)
{
    if (i >= settings_count())
        return NULL;
    *name = rows[i].name;
    *choices = rows[i].choices;
    *confidence = rows[i].confidence;
    return rows[i].why;
}
