/* SPDX-License-Identifier: MIT */
/*
 * gateway.h: the back-end's end of a VM gateway channel (hvproto/proto.h,
 * OFFER and VERDICT): how hvsim-vhost hears of host connections to its guest
 * and gives the guest's answer. hvsim__listen_gateway (hvsim_adapter.h)
 * opens the channel.
 */
#ifndef HVSIM_VHOST_GATEWAY_H
#define HVSIM_VHOST_GATEWAY_H

#include <stdint.h>

#include "hvproto/proto.h"

/* 1 and an offer, 0 when none is waiting, -ENETDOWN when the daemon closed
 * the channel, -EPROTO for anything but an OFFER. */
int hvsim__gateway_recv(int chan, struct hvsim_msg_offer *out);
/* answer: enum hvsim_gw_answer. Returns 0 or -errno. */
int hvsim__gateway_answer(int chan, uint64_t id, unsigned answer);

#endif /* HVSIM_VHOST_GATEWAY_H */
