/* SPDX-License-Identifier: MIT */
/*
 * mutants.h: the named rules a mutant build can break, one at a time, so the
 * conformance suite's mutant run (make conformance-mutants) shows it notices.
 * Each row: an id, the mutant's name, the rule, and the most plausible wrong
 * outcome it gives instead (another personality's or the KVM host's result,
 * EOF for ECONNRESET, a timeout for an immediate refusal): never a crash or a
 * generic error. Daemon rules are broken in route.c (and the one event rule,
 * Disabled ending connections, in handlers_admin.c), library rules in
 * socket.c.
 *
 * Only a mutant build (make MUTANTS=1, its own folder build/mutant) compiles
 * HVSIM_MUTANTS: there HVSIM_MUTANT(ID) asks which mutant the environment
 * (HVSIM_MUTANT=name) or `hvsimd --mutant` chose. In every other build it is
 * the constant 0, so the product carries neither the checks nor the names,
 * and nothing of them travels in the protocol.
 *
 * X(ID, "name", "rule", "wrong outcome")
 */
#ifndef HVPROTO_MUTANTS_H
#define HVPROTO_MUTANTS_H

#define HVSIM_MUTANT_MAP(X) \
    X(ADDRESS_HOST_ACCEPT_LOCAL, "address.host-accept-local", "host-accepted local address is {VM id, svc}", "{zero, svc}") \
    X(ADDRESS_LOOPBACK_PEER, "address.loopback-peer", "loopback accepted peer is {LOOPBACK, client svc}", "{CHILDREN, client svc}") \
    X(BIND_DUPLICATE, "bind.duplicate", "a second bind of the same address is EADDRINUSE", "it succeeds") \
    X(BIND_HOST_PARENT_UNSUPPORTED, "bind.host-parent-unsupported", "the host cannot bind HV_GUID_PARENT (EADDRNOTAVAIL)", "it succeeds") \
    X(CONNECT_GUEST_ZERO_IS_PARENT, "connect.guest-zero-is-parent", "a guest's zero VmId reaches the host", "EADDRNOTAVAIL") \
    X(CONNECT_NO_SIBLING, "connect.no-sibling", "a guest cannot reach another VM: ENETUNREACH", "a timeout") \
    X(CONNECT_HOST_WAITS, "wait.host-connect", "a host's blocking connect completes when a guest listener appears in time", "it times out anyway") \
    X(CONNECT_WILDCARD_TARGET, "connect.wildcard-target-refused", "wildcard/children as a target: EADDRNOTAVAIL", "ECONNREFUSED") \
    X(GUEST_WINDOWS_REFUSED, "guest.windows-times-out", "a Windows guest with no host listener: ECONNREFUSED at once", "a timeout") \
    X(HCS_BIND_DENY, "hcs.bind-deny", "BindSecurityDescriptor deny: the host's listen fails with EACCES", "the listen succeeds") \
    X(HCS_CONNECT_DENY, "hcs.connect-deny-ignored", "ConnectSecurityDescriptor deny: EACCES", "the connect proceeds") \
    X(HCS_DISABLED_BIND, "hcs.disabled-bind", "Disabled: listen() fails with EINVAL", "listen succeeds") \
    X(HCS_DISABLED_CONNECT, "hcs.disabled-connect-proceeds", "Disabled: host connect fails with EINVAL", "the connect proceeds") \
    X(HCS_DISABLED_CANCELS, "hcs.disabled-keeps-connections", "turning a service Disabled ends its connections", "they go on") \
    X(HCS_DISABLED_WILDCARD, "hcs.disabled-wildcard", "Disabled hides the service from host listeners", "the listener hears it") \
    X(HCS_WILDCARD_NEEDS_ALLOW, "hcs.wildcard-needs-allow", "HCS VMs reach wildcard listeners only with AllowWildcardBinds", "always") \
    X(LISTEN_PRECEDENCE, "listen.precedence", "exact VM id beats children beats wildcard", "wildcard beats exact") \
    X(LOOPBACK_REFUSED, "loopback.times-out", "loopback without listener: ECONNREFUSED at once", "a timeout") \
    X(PROFILE_HYPERV_NO_ANSWER, "profile.hyperv-no-answer", "Hyper-V profile: no listener means no answer (ETIMEDOUT)", "ECONNRESET") \
    X(PROFILE_KVM_RST, "profile.kvm-rst", "KVM profile: no listener means RST (ECONNRESET)", "a timeout") \
    X(REGISTRY_REQUIRED, "registry.required", "classic VMs need the GuestCommunicationServices registration", "not needed") \
    X(VM_OFF, "vm.off", "connect to an off VM: connect_to_off_vm (ENETUNREACH)", "a timeout") \
    X(VM_PAUSED_NO_ANSWER, "vm.paused-no-answer", "connect to a paused VM: no answer", "ECONNREFUSED") \
    X(LINUX_CID_HOST_ONLY, "linux.cid-host-only", "a Linux guest reaches only CID 2: ENETUNREACH", "ECONNRESET") \
    X(LINUX_LOCAL_CID_ANY, "linux.local-cid-any", "hv_sock reports VMADDR_CID_ANY as the local CID", "the VM's CID") \
    X(LINUX_PEEK_REFUSED, "linux.peek-refused", "hv_sock refuses MSG_PEEK: EOPNOTSUPP", "peek works (virtio)") \
    X(SHUTDOWN_RD_LOCAL, "shutdown.rd-local", "SHUT_RD sends nothing: the peer may still write", "the peer's writes fail (EPIPE)") \
    X(SEND_AFTER_SHUT_WR, "send.after-shut-wr", "Windows send after SD_SEND: WSAESHUTDOWN", "EPIPE (the Linux result)") \
    X(RECV_AFTER_SHUT_RD, "recv.after-shut-rd", "Windows recv after SD_RECEIVE: WSAESHUTDOWN", "0 (the Linux result)") \
    X(CLOSE_DRAIN, "close.drain", "close with unread data: the peer reads EOF", "the peer gets ECONNRESET") \
    X(PAUSE_CONNECTED_SUSPEND, "pause.connected-suspend", "HVSOCKET_CONNECTED_SUSPEND keeps a connection through pause", "it breaks") \
    X(RESET_BREAKS, "reset.breaks", "reset and power-off break the VM's connections", "they survive") \
    X(SOCKET_PROTOCOL, "socket.protocol", "AF_HYPERV with another protocol: WSAEPROTOTYPE", "EPROTONOSUPPORT") \
    X(TIMEOUT_ABOVE_MAX, "timeout.above-max", "HVSOCKET_CONNECT_TIMEOUT above 300000: EINVAL", "clamped") \
    X(ADDR_SHORT, "addr.short", "an address shorter than SOCKADDR_HV: WSAEFAULT", "EINVAL") \
    X(ADDR_RESERVED, "addr.reserved", "a non-zero Reserved field: EINVAL", "accepted") \
    X(NONBLOCK_EINPROGRESS, "nonblock.einprogress", "a non-blocking connect returns EINPROGRESS", "0 at once") \
    X(HV_SOCK_RINGS, "hv-sock.rings", "hv_sock sockets start with 6-page buffers and a ring-sized window", "AF_UNIX's 208 KiB") \
    X(SEQPACKET_TRANSPORT, "seqpacket.transport", "hv_sock has no SOCK_SEQPACKET: connect fails with ESOCKTNOSUPPORT", "it connects as over virtio") \
    X(SEQPACKET_EMSGSIZE, "seqpacket.emsgsize", "a message above the peer's buffer size: EMSGSIZE", "it is sent") \
    X(BROKEN_WINDOWS_SEND, "broken.windows-send", "send on a broken Windows socket: WSAECONNRESET", "EPIPE") \
    X(VIRTIO_SHUT_RD_TELLS, "virtio.shut-rd-tells", "virtio SHUT_RD tells the peer: its sends fail with EPIPE", "they succeed (hv_sock's SHUT_RD)") \
    X(LINGER_ABORTS, "linger.no-abort", "a vsock close with SO_LINGER {1, 0} still drains: the peer reads EOF", "the peer gets ECONNRESET (TCP's abort)") \
    X(ZEROCOPY_REFUSED, "zerocopy.refused", "SO_ZEROCOPY is EOPNOTSUPP before 6.7, on hv_sock and on an accepted socket before the fix", "it is taken") \
    X(ZEROCOPY_MERGE, "zerocopy.merge", "adjacent zerocopy completions merge into one range", "each send's waiting completion replaces the last")

enum hvsim_mutant {
    HVSIM_MUT_NONE = 0,
#define X(id, name, rule, wrong) HVSIM_MUT_##id,
    HVSIM_MUTANT_MAP(X)
#undef X
    HVSIM_MUT_COUNT
};

#ifdef HVSIM_MUTANTS
/* 1 when this process runs with mutant m (HVSIM_MUTANT, read once). */
int hvsim__mutant_active(enum hvsim_mutant m);
/* Choose a mutant by name (hvsimd --mutant; NULL: none); 0 or -EINVAL for an unknown name. */
int hvsim__mutant_select(const char *name);
/* The name, rule and wrong outcome of mutant i (1 .. HVSIM_MUT_COUNT - 1). */
void hvsim__mutant_row(unsigned i, const char **name, const char **rule, const char **wrong);
#define HVSIM_MUTANT(id) hvsim__mutant_active(HVSIM_MUT_##id)
#else
#define HVSIM_MUTANT(id) 0
#endif

#endif /* HVPROTO_MUTANTS_H */
