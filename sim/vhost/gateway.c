/* SPDX-License-Identifier: MIT */
/*
 * gateway.c: the back-end's end of a gateway channel (gateway.h).
 */
#include <errno.h>
#include <string.h>

#include "gateway.h"

int hvsim__gateway_recv(int chan, struct hvsim_msg_offer *out)
{
    char buf[sizeof(struct hvsim_msg_hdr) + sizeof(*out) + 64];
    struct hvsim_msg_hdr h;
    ssize_t n = hvsim__msg_recv(chan, buf, sizeof(buf), NULL);

    if (n == -EAGAIN || n == -EINTR)
        return 0;
    if (n == 0)
        return -ENETDOWN;
    if (n < 0)
        return (int)n;
    memcpy(&h, buf, sizeof(h));
    if (h.type != HVSIM_MSG_OFFER || h.status != 0)
        return -EPROTO;
    memcpy(out, buf + sizeof(h), sizeof(*out));
    return 1;
}

int hvsim__gateway_answer(int chan, uint64_t id, unsigned answer)
{
    struct hvsim_msg_verdict v = { .id = id, .answer = answer };

    if (answer > HVSIM_GW_NO_SEQPACKET)
        return -EINVAL;
    return hvsim__msg_send(chan, HVSIM_MSG_VERDICT, 0, 0, &v, sizeof(v), NULL, 0, -1);
}
