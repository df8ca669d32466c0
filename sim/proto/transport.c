/* SPDX-License-Identifier: MIT */
/*
 * transport.c: the names of a VM's Linux vsock transport and kernel version
 * (hvsim.h: enum hvsim_vm_transport, enum hvsim_kernel), one table for
 * hvsimctl, the daemon's state file and its messages.
 */
#include <errno.h>
#include <string.h>

#include "hvsim/hvsim.h"
#include "hvproto/util.h"

static const struct {
    uint32_t v;
    const char *name;
} transports[] = { { HVSIM_TRANSPORT_HV_SOCK, "hv_sock" }, { HVSIM_TRANSPORT_VIRTIO, "virtio" } },
  kernels[] = { { HVSIM_KERNEL_6_1, "6.1" }, { HVSIM_KERNEL_6_12, "6.12" }, { HVSIM_KERNEL_NEWEST, "newest" } };

const char *hvsim__transport_name(uint32_t t)
{
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(transports); i++)
        if (transports[i].v == t)
            return transports[i].name;
    return NULL;
}

int hvsim__transport_parse(const char *s, uint32_t *out)
{
    size_t i;

    for (i = 0; s && i < HVSIM_ARRAY_SIZE(transports); i++) {
        if (strcmp(transports[i].name, s) == 0) {
            *out = transports[i].v;
            return 0;
        }
    }
    return -EINVAL;
}

const char *hvsim__kernel_name(uint32_t k)
{
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(kernels); i++)
        if (kernels[i].v == k)
            return kernels[i].name;
    return NULL;
}

int hvsim__kernel_parse(const char *s, uint32_t *out)
{
    size_t i;

    for (i = 0; s && i < HVSIM_ARRAY_SIZE(kernels); i++) {
        if (strcmp(kernels[i].name, s) == 0) {
            *out = kernels[i].v;
            return 0;
        }
    }
    return -EINVAL;
}
