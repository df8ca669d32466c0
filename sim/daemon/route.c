/* SPDX-License-Identifier: MIT */
/*
 * route.c: every bind and connect decision of the emulated host, from the
 * model alone (no I/O), following docs/reference/hyperv-sockets.md:
 *
 *   - which VmIds a partition may bind (1.3-1.4, 2.3, 4.2) and conflicts (4.1);
 *   - where a connect goes: loopback, parent, a child VM by ID or CID, never a
 *     sibling (1.3, 2.3, 3.1) but between virtio VMs that share a sibling
 *     group (vsock-virtio.md 7.8), and the zero GUID from a guest (2.3);
 *   - which listener wins: exact VM ID, then children, then wildcard (README);
 *   - the registry for classic VMs (2.2), HCS service tables (2.4, 4.2);
 *   - what the caller sees when nobody accepts: WSAECONNREFUSED for Windows
 *     callers on loopback or to the host (4.1, 4.2), no answer (ETIMEDOUT
 *     later) for Linux guests and host-to-guest under the Hyper-V profile,
 *     ECONNRESET at once under the KVM profile (3.3, 4.4);
 *   - the addresses each side reports afterwards (4.1, 4.2);
 *   - SOCK_SEQPACKET: which transports carry it, and that only a listener of
 *     the connector's type takes a connection (vsock-virtio.md 9).
 *
 * Each rule has a name; with `hvsimd --mutant NAME` (tests only) that one rule
 * gives its most plausible wrong outcome, so the conformance suite can show it
 * notices.
 */
#include <errno.h>
#include <string.h>

#include "daemon.h"
#include "hvproto/mutants.h"
#include "hvproto/util.h"

static int eq(const GUID *a, const GUID *b)
{
    return hvsim_guid_equal(a, b);
}

static int is_vsock(uint32_t pers)
{
    return pers == HVSIM_PERS_LINUX || pers == HVSIM_PERS_VSOCK_HOST;
}

/* Two binds in one partition conflict when they name the same service and
 * the same VmId; vsock ports are one namespace per partition whatever VmId. */
static const struct bind *conflict(const struct model *m, const struct part *p, uint32_t pers, const GUID *vmid,
                                   const GUID *svc)
{
    size_t i;

    for (i = 0; i < m->nbinds; i++) {
        const struct bind *b = m->binds[i];

        if (b->part != p || !eq(&b->svc, svc))
            continue;
        if (eq(&b->vmid, vmid) || is_vsock(b->pers) || is_vsock(pers))
            return b;
    }
    return NULL;
}

static int pick_port(struct model *m, const struct part *p, uint32_t pers, GUID *svc)
{
    uint32_t tries;

    for (tries = 0; tries < 100000; tries++) {
        GUID g = hvsim_guid_from_port(m->next_port);

        m->next_port = m->next_port >= 0x7ffffffeu ? 1024 : m->next_port + 1;
        if (!conflict(m, p, pers, &HV_GUID_ZERO, &g)) {
            *svc = g;
            return 0;
        }
    }
    return -EADDRINUSE;
}

int route_bind(struct model *m, const struct route_bind_req *rq, GUID *vmid, GUID *svc, int *listen_err)
{
    const struct part *p = rq->from;
    int rc;

    *vmid = rq->vmid;
    *svc = rq->svc;
    *listen_err = 0;
    /* Addressing VMs by CID is the host's view (KVM): a guest partition
     * asking for it is a broken or hostile client. */
    if (rq->pers == HVSIM_PERS_VSOCK_HOST && !p->is_host)
        return -EINVAL;
    /* A partition's ceiling (max_binds_per_partition): a resource limit,
     * which Winsock and the socket layer both name ENOBUFS. */
    if (p->nbinds >= m->set.max_binds)
        return -ENOBUFS;
    if (is_vsock(rq->pers)) {
        /* The library checked the CID; the port is the service GUID's Data1. */
        *vmid = HV_GUID_ZERO;
        if (eq(svc, &HV_GUID_ZERO)) {
            rc = pick_port(m, p, rq->pers, svc);
            if (rc < 0)
                return rc;
        }
    } else if (p->is_host) {
        /* PARENT on a physical host "is not supported" (reference 1.4). */
        if (eq(vmid, &HV_GUID_PARENT) || eq(vmid, &HV_GUID_BROADCAST) || eq(vmid, &HV_GUID_SILOHOST)) {
            if (!HVSIM_MUTANT(BIND_HOST_PARENT_UNSUPPORTED))
                return -EADDRNOTAVAIL;
        }
        /* A bind to an HCS VM's ID is checked against its service table, and
         * it is the listen that fails: WSAEACCES for a denying
         * BindSecurityDescriptor (7, item 4), WSAEINVAL for Disabled (4.2). */
        {
            const struct part *vm = model_vm_by_id(m, vmid);
            const hvsim_hcs_service_t *h = vm && vm->kind == HVSIM_VM_HCS ? model_hcs_find(vm, svc) : NULL;

            if (h && h->bind_deny)
                *listen_err = -EACCES;
            else if (h && h->disabled)
                *listen_err = -EINVAL;
        }
        if (eq(svc, &HV_GUID_ZERO))
            hvsim__guid_random(svc);
    } else {
        /* A guest binds its parent, the wildcard, loopback or its own ID. */
        if (!eq(vmid, &HV_GUID_PARENT) && !eq(vmid, &HV_GUID_ZERO) && !eq(vmid, &HV_GUID_LOOPBACK) &&
            !eq(vmid, &p->id))
            return -EADDRNOTAVAIL;
        if (eq(svc, &HV_GUID_ZERO))
            hvsim__guid_random(svc);
    }
    if (conflict(m, p, rq->pers, vmid, svc) && !HVSIM_MUTANT(BIND_DUPLICATE))
        return -EADDRINUSE;
    return 0;
}

int route_listen(const struct model *m, const struct bind *b)
{
    (void)m; /* the listen rules need only the bind today */
    /* A denying BindSecurityDescriptor: the host's listen fails (7, item 4). */
    if (b->listen_err == -EACCES && !HVSIM_MUTANT(HCS_BIND_DENY))
        return -EACCES;
    /* HCS Disabled: the bind silently did not take; listen() says WSAEINVAL (4.2). */
    if (b->listen_err == -EINVAL && !HVSIM_MUTANT(HCS_DISABLED_BIND))
        return -EINVAL;
    return 0;
}

/* How long a caller waits for an answer: its socket's timeout, else the
 * personality's default (settings.c). The one place a default wait is chosen. */
static uint32_t wait_for(const struct model *m, const struct route_conn_req *rq)
{
    if (rq->timeout_ms)
        return rq->timeout_ms;
    return rq->pers == HVSIM_PERS_WINDOWS ? m->set.win_timeout_ms : m->set.linux_timeout_ms;
}

static struct hvsim_outcome refused(int err, enum hvsim_rule rule)
{
    return (struct hvsim_outcome){ .verdict = HVSIM_VERDICT_REFUSE, .error = err, .rule = rule };
}

static struct hvsim_outcome unanswered(uint32_t wait_ms, enum hvsim_rule rule)
{
    return (struct hvsim_outcome){ .verdict = HVSIM_VERDICT_NOANSWER, .error = -ETIMEDOUT, .wait_ms = wait_ms,
                                   .rule = rule };
}

/* Nobody listens at the far end of a connection across partitions: the
 * Hyper-V profile's silence (the caller times out) or the KVM profile's RST,
 * as the kernel's virtio transport answers a request nobody takes (3.3, 4.4).
 * The refusal is the VM's transport's: a virtio VM (VM NULL: none known)
 * always answers with the RST; an hv_sock VM follows refusal_profile. A QEMU
 * guest kernel's RST, relayed by its gateway, follows the setting too. */
static struct hvsim_outcome transport_no_listener(const struct model *m, const struct part *vm, uint32_t wait_ms)
{
    int kvm = m->set.profile == PROFILE_KVM || (vm != NULL && vm->transport == HVSIM_TRANSPORT_VIRTIO);

    if (kvm && !HVSIM_MUTANT(PROFILE_KVM_RST))
        return refused(-ECONNRESET, HVSIM_RULE_KVM_RST);
    if (HVSIM_MUTANT(PROFILE_HYPERV_NO_ANSWER))
        return refused(-ECONNRESET, HVSIM_RULE_NO_ANSWER);
    return unanswered(wait_ms, HVSIM_RULE_NO_ANSWER);
}

/* A setting's error: -errno, or 1 for "no answer". */
static struct hvsim_outcome setting_outcome(const struct model *m, const struct route_conn_req *rq, int32_t e,
                                            enum hvsim_rule rule)
{
    return e == 1 ? unanswered(wait_for(m, rq), rule) : refused(e, rule);
}

enum domain { D_LOOPBACK, D_TO_HOST, D_TO_VM, D_SIBLING };

/* Rank a listener for a connection; 0 = no match, higher wins. */
static int rank(const struct bind *b, enum domain d, const struct part *from, const struct part *to, const GUID *svc,
                uint32_t flags)
{
    if (!b->listening || b->part != to || !eq(&b->svc, svc) || b->gateway == HVSIM_GW_SEQPACKET)
        return 0;
    /* A request of the other socket type finds no socket of its own:
     * virtio_transport_recv_pkt resets it (vsock-virtio.md 9). No mutant:
     * the AF_UNIX carrier would refuse the other type all the same. */
    if ((b->flags ^ flags) & HVSIM_SF_SEQPACKET)
        return 0;
    switch (d) {
    case D_LOOPBACK:
        if (eq(&b->vmid, &HV_GUID_LOOPBACK))
            return 4;
        if (eq(&b->vmid, &to->id))
            return 3;
        /* go-winio sees CHILDREN as the local VmId of both loopback ends, so a
         * children listener hears loopback; wildcard means every partition. */
        if (to->is_host && eq(&b->vmid, &HV_GUID_CHILDREN))
            return 2;
        if (eq(&b->vmid, &HV_GUID_ZERO))
            return 1;
        return 0;
    case D_TO_HOST:
        if (eq(&b->vmid, &from->id))
            return HVSIM_MUTANT(LISTEN_PRECEDENCE) ? 1 : 3;
        if (eq(&b->vmid, &HV_GUID_CHILDREN))
            return 2;
        if (eq(&b->vmid, &HV_GUID_ZERO))
            return HVSIM_MUTANT(LISTEN_PRECEDENCE) ? 3 : 1;
        return 0;
    case D_SIBLING:
        /* The sibling's request arrives in its guest's vsock stack: only an
         * AF_VSOCK listener there hears it (bound to CID_ANY or its CID). */
        if (b->pers != HVSIM_PERS_LINUX)
            return 0;
        /* fall through */
    case D_TO_VM:
        /* Guest listeners: {PARENT, svc}, the wildcard (vsock CID_ANY), or own ID. */
        if (eq(&b->vmid, &to->id))
            return 3;
        if (eq(&b->vmid, &HV_GUID_PARENT))
            return 2;
        if (eq(&b->vmid, &HV_GUID_ZERO))
            return 1;
        return 0;
    }
    return 0;
}

/* For guest-to-host: may this wildcard or children listener hear this VM? */
static int host_listener_allowed(const struct model *m, const struct bind *b, const struct part *vm,
                                 const GUID *svc)
{
    int exact = eq(&b->vmid, &vm->id);

    if (vm->kind == HVSIM_VM_HCS) {
        const hvsim_hcs_service_t *h = model_hcs_find(vm, svc);

        /* HCS VMs: the registry is not consulted; wildcard and children
         * listeners hear them only with AllowWildcardBinds (2.4, 4.2, 4.7). */
        if (h && h->disabled && !HVSIM_MUTANT(HCS_DISABLED_WILDCARD))
            return 0;
        if (exact)
            return 1;
        if (HVSIM_MUTANT(HCS_WILDCARD_NEEDS_ALLOW))
            return 1;
        return h && h->allow_wildcard_binds;
    }
    /* Classic VMs: the service must be registered on the host (2.2). */
    if (model_service_find(m, svc) == NULL && !HVSIM_MUTANT(REGISTRY_REQUIRED))
        return 0;
    return 1;
}

/* The outcome when nobody listens at the address (and, for a connection that
 * was routed, when its listener is gone or full by the time the caller
 * connects: the same as if there had been none). */
static struct hvsim_outcome nobody_listens(const struct model *m, const struct route_conn_req *rq, enum domain d,
                                           const struct part *to)
{
    if (d == D_LOOPBACK && is_vsock(rq->pers) && !HVSIM_MUTANT(LOOPBACK_REFUSED)) {
        /* VMADDR_CID_LOCAL is the vsock_loopback transport, virtio's code:
         * a request nobody takes gets its RST (virtio_transport_reset_no_sock). */
        return refused(-ECONNRESET, HVSIM_RULE_LOOPBACK_REFUSED);
    }
    if (d == D_LOOPBACK) {
        /* go-winio: WSAECONNREFUSED at once (4.1). */
        if (HVSIM_MUTANT(LOOPBACK_REFUSED))
            return unanswered(wait_for(m, rq), HVSIM_RULE_LOOPBACK_REFUSED);
        return refused(-ECONNREFUSED, HVSIM_RULE_LOOPBACK_REFUSED);
    }
    if (d == D_TO_HOST && rq->pers == HVSIM_PERS_WINDOWS) {
        /* A Windows guest is told: the host sends TL_CONNECT_RESULT (3.3, 4.2). */
        if (HVSIM_MUTANT(GUEST_WINDOWS_REFUSED))
            return unanswered(wait_for(m, rq), HVSIM_RULE_WINDOWS_GUEST_REFUSED);
        return refused(-ECONNREFUSED, HVSIM_RULE_WINDOWS_GUEST_REFUSED);
    }
    /* Linux ignores TL_CONNECT_RESULT, and a guest without a listener
     * ignores the host's offer: the caller times out (3.2, 3.3). */
    return transport_no_listener(m, d == D_TO_VM || d == D_SIBLING ? to : rq->from, wait_for(m, rq));
}

struct target {
    struct part *to;
    enum domain d;
};

/* A Linux guest's CONNECT names a CID as the host's does: zero but Data1. */
static int names_cid(const GUID *g)
{
    static const uint8_t zero[8];

    return g->Data2 == 0 && g->Data3 == 0 && memcmp(g->Data4, zero, sizeof(zero)) == 0 && g->Data1 > VMADDR_CID_HOST;
}

/* A Linux guest names a CID above 2 (its library passes only a virtio
 * guest's). The virtio transport sends the request to the host, whose
 * back-end decides: kernel vhost-vsock takes only packets for CID 2 and
 * drops the rest; vhost-device-vsock hands it to the VM of that CID when
 * the two share a group, and drops it otherwise (vsock-virtio.md 7.8). Its
 * own CID is the loopback transport's (vsock_use_local_transport). */
static int sibling_target(struct model *m, const struct route_conn_req *rq, struct target *t,
                          struct hvsim_outcome *out)
{
    struct part *from = rq->from, *to = model_vm_by_cid(m, rq->vmid.Data1);

    if (from->transport != HVSIM_TRANSPORT_VIRTIO) {
        /* Hyper-V keeps "no sibling": hv_sock reaches CID 2 alone. */
        *out = setting_outcome(m, rq, m->set.sibling_error, HVSIM_RULE_NO_SIBLING);
        return 0;
    }
    if (to == from) {
        *t = (struct target){ from, D_LOOPBACK };
        return 1;
    }
    /* A QEMU guest's back-end (hvsim-vhost) carries no sibling traffic:
     * such a VM is outside every group, as its own guest's requests are. */
    if (to == NULL || !hvsim__groups_share(from->groups, to->groups) || route_gateway(m, to) != NULL) {
        *out = setting_outcome(m, rq, m->set.virtio_sibling_error, HVSIM_RULE_VIRTIO_NO_SIBLING);
        return 0;
    }
    *t = (struct target){ to, D_SIBLING };
    return 1;
}

/* Step 1: where does the address point? 1 with *t, or 0 with the refusal in *out. */
static int resolve_target(struct model *m, const struct route_conn_req *rq, struct target *t,
                          struct hvsim_outcome *out)
{
    struct part *from = rq->from;
    const GUID *vmid = &rq->vmid;

    if (rq->pers == HVSIM_PERS_VSOCK_HOST) {
        uint32_t cid = vmid->Data1;

        if (cid == VMADDR_CID_LOCAL) {
            *t = (struct target){ from, D_LOOPBACK };
            return 1;
        }
        t->to = model_vm_by_cid(m, cid);
        t->d = D_TO_VM;
        if (t->to == NULL) /* vhost-vsock answers a packet for an unknown CID with RST. */
            *out = refused(-ECONNRESET, HVSIM_RULE_CID_UNKNOWN);
        return t->to != NULL;
    }
    if (rq->pers == HVSIM_PERS_LINUX && !from->is_host && names_cid(vmid))
        return sibling_target(m, rq, t, out);
    if (eq(vmid, &HV_GUID_ZERO) && !from->is_host && m->set.zero_reaches_parent &&
        !HVSIM_MUTANT(CONNECT_GUEST_ZERO_IS_PARENT)) {
        *t = (struct target){ &m->host, D_TO_HOST };
        return 1;
    }
    if (eq(vmid, &HV_GUID_ZERO) || eq(vmid, &HV_GUID_CHILDREN) || eq(vmid, &HV_GUID_BROADCAST)) {
        /* A wildcard is not a destination: WSAEADDRNOTAVAIL (4.2). */
        *out = refused(HVSIM_MUTANT(CONNECT_WILDCARD_TARGET) ? -ECONNREFUSED : -EADDRNOTAVAIL,
                       HVSIM_RULE_WILDCARD_TARGET);
        return 0;
    }
    if (eq(vmid, &HV_GUID_LOOPBACK) || eq(vmid, &from->id)) {
        *t = (struct target){ from, D_LOOPBACK };
        return 1;
    }
    if (eq(vmid, &HV_GUID_PARENT)) {
        *t = (struct target){ &m->host, D_TO_HOST };
        if (from->is_host)
            *out = refused(-ENETUNREACH, HVSIM_RULE_HOST_TO_PARENT);
        return !from->is_host;
    }
    if (from->is_host && !eq(vmid, &HV_GUID_SILOHOST)) {
        *t = (struct target){ model_vm_by_id(m, vmid), D_TO_VM };
        if (t->to == NULL)
            *out = setting_outcome(m, rq, m->set.unknown_vm_error, HVSIM_RULE_UNKNOWN_VM);
        return t->to != NULL;
    }
    /* A guest names another VM, the host's own ID or a silo: no route. */
    *out = setting_outcome(m, rq, HVSIM_MUTANT(CONNECT_NO_SIBLING) ? 1 : m->set.sibling_error, HVSIM_RULE_NO_SIBLING);
    return 0;
}

/* Step 2: is the way open? 1, or 0 with the refusal in *out. */
static int path_open(const struct model *m, const struct route_conn_req *rq, const struct target *t,
                     struct hvsim_outcome *out)
{
    const struct part *from = rq->from, *to = t->to;

    if (!from->is_host && from->state != HVSIM_VM_RUNNING) {
        *out = refused(-ENETDOWN, HVSIM_RULE_FROM_NOT_RUNNING);
        return 0;
    }
    if (!to->is_host && to->state == HVSIM_VM_OFF) {
        /* A sibling that is off has no guest to take the forwarded request:
         * it is lost as one to no VM is (the virtio setting). */
        int32_t e = t->d == D_SIBLING ? m->set.virtio_sibling_error : m->set.off_vm_error;

        *out = setting_outcome(m, rq, HVSIM_MUTANT(VM_OFF) ? 1 : e, HVSIM_RULE_VM_OFF);
        return 0;
    }
    if (!to->is_host && to->state == HVSIM_VM_PAUSED && to != from) {
        /* A paused guest runs nothing that could answer. */
        *out = HVSIM_MUTANT(VM_PAUSED_NO_ANSWER) ? refused(-ECONNREFUSED, HVSIM_RULE_VM_PAUSED)
                                                : unanswered(wait_for(m, rq), HVSIM_RULE_VM_PAUSED);
        return 0;
    }
    if (t->d == D_TO_VM && to->kind == HVSIM_VM_HCS) {
        const hvsim_hcs_service_t *h = model_hcs_find(to, &rq->svc);

        if (h && h->connect_deny && !HVSIM_MUTANT(HCS_CONNECT_DENY)) {
            *out = refused(-EACCES, HVSIM_RULE_HCS_CONNECT_DENY);
            return 0;
        }
        if (h && h->disabled && !HVSIM_MUTANT(HCS_DISABLED_CONNECT)) {
            *out = refused(-EINVAL, HVSIM_RULE_HCS_DISABLED);
            return 0;
        }
    }
    return 1;
}

/* Step 3: who listens? The best-ranked listener, else a QEMU guest's gateway
 * (its listeners are invisible here: the back-end asks the guest), else NULL. */
static const struct bind *find_listener(const struct model *m, const struct route_conn_req *rq,
                                        const struct target *t)
{
    const struct bind *best = NULL;
    int best_rank = 0;
    uint32_t port;
    size_t i;

    for (i = 0; i < m->nbinds; i++) {
        const struct bind *b = m->binds[i];
        int r = rank(b, t->d, rq->from, t->to, &rq->svc, rq->flags);

        /* A Linux guest hears only template service IDs (3.1); the port
         * mapping is on the bind already, so a non-template svc never matches. */
        if (r == 0 || (t->d == D_TO_HOST && !host_listener_allowed(m, b, rq->from, &rq->svc)))
            continue;
        if (r > best_rank) {
            best = b;
            best_rank = r;
        }
    }
    if (best != NULL || t->d != D_TO_VM || !hvsim_guid_to_port(&rq->svc, &port) ||
        route_gateway(m, t->to) == NULL)
        return best;
    /* A SEQPACKET connection arrives on the gateway's SEQPACKET listener. */
    for (i = 0; i < m->nbinds; i++) {
        const struct bind *b = m->binds[i];
        unsigned kind = (rq->flags & HVSIM_SF_SEQPACKET) ? HVSIM_GW_SEQPACKET : HVSIM_GW_STREAM;

        if (b->gateway == kind && b->listening && b->part == t->to)
            return b;
    }
    return NULL;
}

/* A listener the connection would have had, were it of the other socket
 * type: only vsock has two types, and its code (virtio, vhost, loopback)
 * resets such a request (virtio_transport_recv_pkt), whatever the refusal
 * profile says of a port nobody listens on (vsock-virtio.md 9.1). */
static int other_type_listens(const struct model *m, const struct route_conn_req *rq, const struct target *t)
{
    struct route_conn_req other = *rq;

    other.flags ^= HVSIM_SF_SEQPACKET;
    return is_vsock(rq->pers) && find_listener(m, &other, t) != NULL;
}

const struct bind *route_gateway(const struct model *m, const struct part *vm)
{
    size_t i;

    for (i = 0; i < m->nbinds; i++) {
        const struct bind *b = m->binds[i];

        if (b->gateway == HVSIM_GW_STREAM && b->gw_fd >= 0 && b->listening && b->part == vm)
            return b;
    }
    return NULL;
}

/* A virtio VM, or one a virtio back-end serves (a QEMU guest, whatever
 * transport the VM was declared with: its guest's kernel is virtio). */
static int carries_seqpacket(const struct model *m, const struct part *vm)
{
    return vm->transport == HVSIM_TRANSPORT_VIRTIO || route_gateway(m, vm) != NULL;
}

/* Step 0, for SOCK_SEQPACKET: vsock_assign_transport() refuses it with
 * ESOCKTNOSUPPORT before anything else when the transport the address picks
 * has no seqpacket_allow: hv_sock never; vhost-vsock only for a CID whose
 * device is there and took VIRTIO_VSOCK_F_SEQPACKET (a QEMU guest's driver
 * answers that through its gateway: route_guest_answer); virtio and
 * vsock_loopback always (vsock-virtio.md 9). Returns 1 with the refusal. */
static int seqpacket_refused(const struct model *m, const struct route_conn_req *rq, struct hvsim_outcome *out)
{
    const struct part *vm = rq->from;
    int ok;

    if (!(rq->flags & HVSIM_SF_SEQPACKET))
        return 0;
    if (rq->pers == HVSIM_PERS_VSOCK_HOST) {
        if (rq->vmid.Data1 == VMADDR_CID_LOCAL)
            return 0;
        vm = model_vm_by_cid(m, rq->vmid.Data1);
        /* An off VM's device is gone with its process. */
        ok = vm != NULL && carries_seqpacket(m, vm) && vm->state != HVSIM_VM_OFF;
    } else {
        if (eq(&rq->vmid, &HV_GUID_LOOPBACK) || eq(&rq->vmid, &vm->id))
            return 0;
        ok = !vm->is_host && carries_seqpacket(m, vm);
    }
    if (ok || HVSIM_MUTANT(SEQPACKET_TRANSPORT))
        return 0;
    *out = refused(-ESOCKTNOSUPPORT, HVSIM_RULE_SEQPACKET_TRANSPORT);
    return 1;
}

/* Step 4: the addresses each side reports (4.1, 4.2; the INFERRED ones are in
 * the README), and who each side is. */
static void fill_views(struct model *m, const struct route_conn_req *rq, const struct target *t,
                       const struct bind *best, struct route_conn_res *out)
{
    const struct part *from = rq->from, *to = t->to;
    struct hvsim_endpoint *cl = &out->conn_local, *cp = &out->conn_peer, *al = &out->acc_local, *ap = &out->acc_peer;
    GUID csvc;

    if (rq->bound)
        csvc = rq->bound->svc;
    else if (is_vsock(rq->pers))
        pick_port(m, from, rq->pers, &csvc);
    else
        hvsim__guid_random(&csvc);
    *cl = (struct hvsim_endpoint){ .svc = csvc, .partition = from->id, .flags = rq->flags };
    *cp = (struct hvsim_endpoint){ .svc = rq->svc, .partition = to->id, .flags = best->flags,
                                   .cid = to->is_host ? VMADDR_CID_HOST : to->cid };
    *al = (struct hvsim_endpoint){ .svc = best->gateway ? rq->svc : best->svc, .partition = to->id,
                                   .flags = best->flags };
    *ap = (struct hvsim_endpoint){ .svc = csvc, .partition = from->id, .flags = rq->flags,
                                   .cid = from->is_host ? VMADDR_CID_HOST : from->cid };
    switch (t->d) {
    case D_LOOPBACK:
        cl->vmid = al->vmid = HV_GUID_CHILDREN;
        cp->vmid = rq->vmid;
        ap->vmid = HVSIM_MUTANT(ADDRESS_LOOPBACK_PEER) ? HV_GUID_CHILDREN : HV_GUID_LOOPBACK;
        /* vsock_loopback's requests come from CID 1; a guest that named its
         * own CID sees that CID as its peer (vsock_use_local_transport). */
        if (is_vsock(rq->pers)) {
            cp->cid = names_cid(&rq->vmid) ? rq->vmid.Data1 : VMADDR_CID_LOCAL;
            ap->cid = VMADDR_CID_LOCAL;
        }
        break;
    case D_TO_HOST:
        cl->vmid = ap->vmid = from->id;
        al->vmid = HVSIM_MUTANT(ADDRESS_HOST_ACCEPT_LOCAL) ? HV_GUID_ZERO : from->id;
        cp->vmid = HV_GUID_PARENT;
        break;
    case D_TO_VM:
        cl->vmid = HV_GUID_CHILDREN;
        cp->vmid = to->id;
        al->vmid = ap->vmid = HV_GUID_PARENT;
        break;
    case D_SIBLING:
        /* Each end names the other by its CID (set above): the request's
         * source and destination, which the back-end passes on unchanged. */
        cl->vmid = ap->vmid = from->id;
        cp->vmid = al->vmid = to->id;
        ap->flags |= HVSIM_SF_TO_HOST;
        break;
    }
}

int route_connect(struct model *m, const struct route_conn_req *rq, struct route_conn_res *out)
{
    struct target t;
    const struct bind *best;

    memset(out, 0, sizeof(*out));
    /* Only the host addresses VMs by CID: from a guest it would reach a sibling. */
    if (rq->pers == HVSIM_PERS_VSOCK_HOST && !rq->from->is_host)
        return -EINVAL;
    if (seqpacket_refused(m, rq, &out->outcome) || !resolve_target(m, rq, &t, &out->outcome) ||
        !path_open(m, rq, &t, &out->outcome))
        return 0;
    out->to = t.to;
    best = find_listener(m, rq, &t);
    if (best == NULL) {
        out->outcome = other_type_listens(m, rq, &t) ? refused(-ECONNRESET, HVSIM_RULE_OTHER_TYPE)
                                                     : nobody_listens(m, rq, t.d, t.to);
        return 0;
    }
    out->listener = best;
    out->vanished = nobody_listens(m, rq, t.d, t.to);
    if (best->gateway)
        out->outcome = (struct hvsim_outcome){ .verdict = HVSIM_VERDICT_PENDING, .wait_ms = wait_for(m, rq),
                                               .rule = HVSIM_RULE_GATEWAY };
    else
        out->outcome = (struct hvsim_outcome){ .verdict = HVSIM_VERDICT_OK, .rule = HVSIM_RULE_LISTENER };
    fill_views(m, rq, &t, best, out);
    return 0;
}

struct hvsim_outcome route_guest_answer(const struct model *m, unsigned answer, uint32_t remaining_ms)
{
    switch (answer) {
    case HVSIM_GW_ACCEPT:
        return (struct hvsim_outcome){ .verdict = HVSIM_VERDICT_OK, .rule = HVSIM_RULE_GUEST_ACCEPTED };
    case HVSIM_GW_NO_SEQPACKET:
        return refused(-ESOCKTNOSUPPORT, HVSIM_RULE_SEQPACKET_TRANSPORT);
    case HVSIM_GW_REFUSE: {
        /* The guest kernel's RST: the KVM profile passes it on, the Hyper-V
         * profile withholds it and the connector times out (3.3). */
        struct hvsim_outcome o = transport_no_listener(m, NULL, remaining_ms);

        if (o.verdict == HVSIM_VERDICT_REFUSE)
            o.rule = HVSIM_RULE_GUEST_RST;
        return o;
    }
    default:
        return unanswered(remaining_ms, HVSIM_RULE_GUEST_SILENT);
    }
}
