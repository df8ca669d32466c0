/* SPDX-License-Identifier: MIT */
/*
 * rules.h: the ids of the rules and settings that decide a connect. The
 * router (sim/daemon/route.c) puts one in every outcome (hvproto/proto.h,
 * struct hvsim_outcome), so whoever applies an outcome can say why; each id
 * names a row of the README's routing tables. The last two name the bind and
 * listen decisions in hvsimd's decision log (hvsimd --log).
 *
 * X(ID, "name", what it decides)
 */
#ifndef HVPROTO_RULES_H
#define HVPROTO_RULES_H

#define HVSIM_RULE_MAP(X)                                                                                      \
    X(NONE, "none", "no decision yet")                                                                        \
    X(LISTENER, "route.listener", "a listener takes the connection (exact VM id, then children, then wildcard)") \
    X(GATEWAY, "route.gateway", "a QEMU guest's back-end asks the guest kernel")                              \
    X(GUEST_ACCEPTED, "gateway.accepted", "the guest kernel accepted the request")                            \
    X(GUEST_RST, "gateway.guest-rst", "the guest kernel reset the request (no listener)")                     \
    X(GUEST_SILENT, "gateway.guest-silent", "the guest kernel did not answer in time")                        \
    X(CID_UNKNOWN, "connect.cid-unknown", "a CID no VM has: vhost-vsock resets")                              \
    X(CID_NOT_HOST, "connect.cid-host-only", "a Linux guest over hv_sock reaches only CID 2")                  \
    X(WILDCARD_TARGET, "connect.wildcard-target", "wildcard, children or broadcast as a target: EADDRNOTAVAIL") \
    X(HOST_TO_PARENT, "connect.host-to-parent", "the host has no parent: ENETUNREACH")                        \
    X(UNKNOWN_VM, "setting.connect_to_unknown_vm", "a VM id the host does not know")                          \
    X(NO_SIBLING, "setting.guest_to_other_vm", "a guest cannot reach another VM")                             \
    X(FROM_NOT_RUNNING, "connect.from-stopped-vm", "a paused or off VM's process cannot connect: ENETDOWN")   \
    X(VM_OFF, "setting.connect_to_off_vm", "a VM that is off")                                                \
    X(VM_PAUSED, "connect.paused-no-answer", "a paused VM runs nothing that could answer")                    \
    X(HCS_CONNECT_DENY, "hcs.connect-deny", "ConnectSecurityDescriptor denies the host: EACCES")              \
    X(HCS_DISABLED, "hcs.disabled-connect", "a Disabled HCS service: EINVAL")                                 \
    X(LOOPBACK_REFUSED, "loopback.refused", "loopback without a listener: ECONNREFUSED at once")             \
    X(WINDOWS_GUEST_REFUSED, "guest.windows-refused", "a Windows guest without a host listener: ECONNREFUSED") \
    X(WAIT_LISTENER, "connect.host-waits-for-listener", "a blocking host connect waits for a late guest listener") \
    X(NO_ANSWER, "setting.refusal_profile.hyperv", "Hyper-V profile: nobody listens, nobody answers (ETIMEDOUT)") \
    X(KVM_RST, "setting.refusal_profile.kvm", "KVM profile: nobody listens, the transport resets (ECONNRESET)") \
    X(OTHER_TYPE, "connect.other-type", "only a listener of the other socket type (stream or SEQPACKET): vsock resets (ECONNRESET)") \
    X(SEQPACKET_TRANSPORT, "connect.seqpacket-transport", "the transport has no SOCK_SEQPACKET (hv_sock, no virtio device at the CID): ESOCKTNOSUPPORT") \
    X(LIMIT_PENDING, "setting.max_pending_connects", "the VM's gateway has its ceiling of waiting connects: reset") \
    X(BIND, "route.bind", "route_bind: the address a partition may bind, conflicts, ephemeral ports, ceilings")  \
    X(LISTEN, "route.listen", "route_listen: whether a bound socket may listen (HCS Disabled, bind deny)")    \
    X(SIBLING, "route.sibling-group", "a virtio guest reaches a VM it shares a sibling group with, by CID")  \
    X(VIRTIO_NO_SIBLING, "setting.virtio_guest_to_other_vm", "a virtio guest names a CID it shares no group with: the back-end drops it")

enum hvsim_rule {
#define X(id, name, what) HVSIM_RULE_##id,
    HVSIM_RULE_MAP(X)
#undef X
    HVSIM_RULE_COUNT
};

#endif /* HVPROTO_RULES_H */
