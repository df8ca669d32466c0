/* SPDX-License-Identifier: MIT */
/*
 * mutants.h: the named rules that `hvsimd --mutant NAME` can break, one at a
 * time, for the conformance suite's mutant run (issue: "the suite must be able
 * to fail"). Each row: the rule's name, the rule, and the most plausible wrong
 * outcome the mutant gives instead (another personality's or the KVM host's
 * result, EOF for ECONNRESET, a timeout for an immediate refusal): never a
 * crash or a generic error. Daemon rules live in route.c, library rules in
 * socket.c; the daemon passes the active name to every process at HELLO.
 */
#ifndef HVSIM_MUTANTS_H
#define HVSIM_MUTANTS_H

#define HVSIM_MUTANT_MAP(X)                                                                                      \
    X("address.host-accept-local", "host-accepted local address is {VM id, svc}", "{zero, svc}")                \
    X("address.loopback-peer", "loopback accepted peer is {LOOPBACK, client svc}", "{CHILDREN, client svc}")    \
    X("bind.duplicate", "a second bind of the same address is EADDRINUSE", "it succeeds")                        \
    X("bind.host-parent-unsupported", "the host cannot bind HV_GUID_PARENT (EADDRNOTAVAIL)", "it succeeds")      \
    X("connect.guest-zero-is-parent", "a guest's zero VmId reaches the host", "EADDRNOTAVAIL")                    \
    X("connect.no-sibling", "a guest cannot reach another VM: ENETUNREACH", "a timeout")                        \
    X("connect.wildcard-target", "wildcard/children as a target: EADDRNOTAVAIL", "ECONNREFUSED")               \
    X("guest.windows-refused", "a Windows guest with no host listener: ECONNREFUSED at once", "a timeout")     \
    X("hcs.bind-deny", "BindSecurityDescriptor deny: EACCES", "the bind succeeds")                              \
    X("hcs.connect-deny", "ConnectSecurityDescriptor deny: EACCES", "the connect proceeds")                     \
    X("hcs.disabled-bind", "Disabled: listen() fails with EINVAL", "listen succeeds")                           \
    X("hcs.disabled-connect", "Disabled: host connect fails with EINVAL", "the connect proceeds")               \
    X("hcs.disabled-wildcard", "Disabled hides the service from host listeners", "the listener hears it")      \
    X("hcs.wildcard-needs-allow", "HCS VMs reach wildcard listeners only with AllowWildcardBinds", "always")  \
    X("listen.precedence", "exact VM id beats children beats wildcard", "wildcard beats exact")                 \
    X("loopback.refused", "loopback without listener: ECONNREFUSED at once", "a timeout")                      \
    X("profile.hyperv-no-answer", "Hyper-V profile: no listener means no answer (ETIMEDOUT)", "ECONNRESET")     \
    X("profile.kvm-rst", "KVM profile: no listener means RST (ECONNRESET)", "a timeout")                         \
    X("registry.required", "classic VMs need the GuestCommunicationServices registration", "not needed")       \
    X("vm.off", "connect to an off VM: connect_to_off_vm (ENETDOWN)", "a timeout")                              \
    X("vm.paused-no-answer", "connect to a paused VM: no answer", "ECONNREFUSED")                               \
    X("linux.cid-host-only", "a Linux guest reaches only CID 2: ENETUNREACH", "ECONNRESET")                    \
    X("linux.local-cid-any", "hv_sock reports VMADDR_CID_ANY as the local CID", "the VM's CID")                  \
    X("linux.peek-refused", "hv_sock refuses MSG_PEEK: EOPNOTSUPP", "peek works (virtio)")                       \
    X("shutdown.rd-local", "SHUT_RD sends nothing: the peer may still write", "the peer's writes fail (EPIPE)")  \
    X("send.after-shut-wr", "Windows send after SD_SEND: WSAESHUTDOWN", "EPIPE (the Linux result)")             \
    X("recv.after-shut-rd", "Windows recv after SD_RECEIVE: WSAESHUTDOWN", "0 (the Linux result)")               \
    X("close.drain", "close with unread data: the peer reads EOF", "the peer gets ECONNRESET")                  \
    X("pause.connected-suspend", "HVSOCKET_CONNECTED_SUSPEND keeps a connection through pause", "it breaks")   \
    X("reset.breaks", "reset and power-off break the VM's connections", "they survive")                          \
    X("socket.protocol", "AF_HYPERV with another protocol: WSAEPROTOTYPE", "EPROTONOSUPPORT")                    \
    X("timeout.above-max", "HVSOCKET_CONNECT_TIMEOUT above 300000: EINVAL", "clamped")                           \
    X("addr.short", "an address shorter than SOCKADDR_HV: WSAEFAULT", "EINVAL")                                 \
    X("addr.reserved", "a non-zero Reserved field: EINVAL", "accepted")                                          \
    X("nonblock.einprogress", "a non-blocking connect returns EINPROGRESS", "0 at once")                         \
    X("broken.windows-send", "send on a broken Windows socket: WSAECONNRESET", "EPIPE")

#endif /* HVSIM_MUTANTS_H */
