/* SPDX-License-Identifier: MIT */
/*
 * hvsim_adapter.h: the library's door for the project's own adapters (the
 * interposer, the VM back-end, the tools), which need a little more than
 * <hvsim/hvsim.h> offers users: who this process is attached as, why an
 * attach failed, and a VM gateway's listen. Nothing else of the library's
 * internals is visible outside sim/lib. Not installed.
 */
#ifndef HVSIM_ADAPTER_H
#define HVSIM_ADAPTER_H

#include <stdint.h>

#include "hvsim/hvsim.h"

struct hvsim__attach {
    GUID self; /* this process's partition */
    GUID host;
    char name[HVSIM_NAME_MAX];
    int is_host;
    uint32_t cid;
    uint64_t instance;
    uint32_t win_timeout_ms;
    uint32_t linux_timeout_ms;
    uint32_t timeout_clamp;
};

/* Attach (once per process, again after fork) and report who we are.
 * Returns 0 or -ENETDOWN when the daemon cannot be reached. */
int hvsim__attach_get(struct hvsim__attach *out);
/* Why the last attach failed, for messages. */
const char *hvsim__attach_error(void);

/* Listen on a bound AF_VSOCK socket of a VM partition as the VM's gateway
 * (hvproto/proto.h, OFFER). Returns the channel fd (offers arrive on it) or
 * -errno. */
int hvsim__listen_gateway(int fd, int backlog);

#endif /* HVSIM_ADAPTER_H */
