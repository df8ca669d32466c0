/* SPDX-License-Identifier: MIT */
/*
 * route.c: every bind and connect decision of the emulated host, from the
 * model alone (no I/O), following hvsock-semantics.md:
 *
 *   - which VmIds a partition may bind (1.3-1.4, 2.3, 4.2) and conflicts (4.1);
 *   - where a connect goes: loopback, parent, a child VM by ID or CID, never a
 *     sibling (1.3, 2.3, 3.1), and the zero GUID from a guest (2.3);
 *   - which listener wins: exact VM ID, then children, then wildcard (README);
 *   - the registry for classic VMs (2.2), HCS service tables (2.4, 4.2);
 *   - what the caller sees when nobody accepts: WSAECONNREFUSED for Windows
 *     callers on loopback or to the host (4.1, 4.2), no answer (ETIMEDOUT
 *     later) for Linux guests and host-to-guest under the Hyper-V profile,
 *     ECONNRESET at once under the KVM profile (3.3, 4.4);
 *   - the addresses each side reports afterwards (4.1, 4.2).
 *
 * Each rule has a name; with `hvsimd --mutant NAME` (tests only) that one rule
 * gives its most plausible wrong outcome, so the conformance suite can show it
 * notices.
 */
#include <errno.h>
#include <string.h>

#include "daemon.h"
#include "hvproto/util.h"

static int mutant(const struct model *m, const char *rule)
{
    return m->mutant != NULL && strcmp(m->mutant, rule) == 0;
}

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

int route_bind(struct model *m, const struct route_bind_req *rq, GUID *vmid, GUID *svc, int *not_taken)
{
    const struct part *p = rq->from;
    int rc;

    *vmid = rq->vmid;
    *svc = rq->svc;
    *not_taken = 0;
    /* Addressing VMs by CID is the host's view (KVM): a guest partition
     * asking for it is a broken or hostile client. */
    if (rq->pers == HVSIM_PERS_VSOCK_HOST && !p->is_host)
        return -EINVAL;
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
            if (!mutant(m, "bind.host-parent-unsupported"))
                return -EADDRNOTAVAIL;
        }
        /* A bind to an HCS VM's ID is checked against its service table (4.2). */
        {
            const struct part *vm = model_vm_by_id(m, vmid);
            const hvsim_hcs_service_t *h = vm && vm->kind == HVSIM_VM_HCS ? model_hcs_find(vm, svc) : NULL;

            if (h && h->bind_deny && !mutant(m, "hcs.bind-deny"))
                return -EACCES;
            if (h && h->disabled && !mutant(m, "hcs.disabled-bind"))
                *not_taken = 1;
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
    if (conflict(m, p, rq->pers, vmid, svc) && !mutant(m, "bind.duplicate"))
        return -EADDRINUSE;
    return 0;
}

int route_listen(const struct model *m, const struct bind *b)
{
    /* HCS Disabled: the bind silently did not take; listen() says WSAEINVAL (4.2). */
    if (b->not_taken && !mutant(m, "hcs.disabled-bind"))
        return -EINVAL;
    return 0;
}

/* The personality's "nobody answered" outcome, or the KVM profile's RST. */
static void no_answer(const struct model *m, const struct route_conn_req *rq, struct route_conn_res *out)
{
    uint32_t def = rq->pers == HVSIM_PERS_WINDOWS ? m->set.win_timeout_ms : m->set.linux_timeout_ms;

    out->timeout_ms = rq->timeout_ms ? rq->timeout_ms : def;
    if (m->set.profile == PROFILE_KVM && !mutant(m, "profile.kvm-rst")) {
        out->verdict = HVSIM_VERDICT_REFUSE;
        out->error = -ECONNRESET;
        return;
    }
    out->verdict = HVSIM_VERDICT_NOANSWER;
    if (mutant(m, "profile.hyperv-no-answer")) {
        out->verdict = HVSIM_VERDICT_REFUSE;
        out->error = -ECONNRESET;
    }
}

static void refuse(struct route_conn_res *out, int err)
{
    out->verdict = HVSIM_VERDICT_REFUSE;
    out->error = err;
}

/* A setting's error: -errno, or 1 for "no answer". */
static void setting_error(const struct model *m, const struct route_conn_req *rq, struct route_conn_res *out,
                          int32_t e)
{
    if (e == 1) {
        uint32_t def = rq->pers == HVSIM_PERS_WINDOWS ? m->set.win_timeout_ms : m->set.linux_timeout_ms;

        out->verdict = HVSIM_VERDICT_NOANSWER;
        out->timeout_ms = rq->timeout_ms ? rq->timeout_ms : def;
    } else {
        refuse(out, e);
    }
}

enum domain { D_LOOPBACK, D_TO_HOST, D_TO_VM };

/* Rank a listener for a connection; 0 = no match, higher wins. */
static int rank(const struct model *m, const struct bind *b, enum domain d, const struct part *from,
                const struct part *to, const GUID *svc)
{
    if (!b->listening || b->part != to || !eq(&b->svc, svc))
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
            return mutant(m, "listen.precedence") ? 1 : 3;
        if (eq(&b->vmid, &HV_GUID_CHILDREN))
            return 2;
        if (eq(&b->vmid, &HV_GUID_ZERO))
            return mutant(m, "listen.precedence") ? 3 : 1;
        return 0;
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
        if (h && h->disabled && !mutant(m, "hcs.disabled-wildcard"))
            return 0;
        if (exact)
            return 1;
        if (mutant(m, "hcs.wildcard-needs-allow"))
            return 1;
        return h && h->allow_wildcard_binds;
    }
    /* Classic VMs: the service must be registered on the host (2.2). */
    if (model_service_find(m, svc) == NULL && !mutant(m, "registry.required"))
        return 0;
    return 1;
}

int route_connect(struct model *m, const struct route_conn_req *rq, struct route_conn_res *out)
{
    struct part *from = rq->from, *to = NULL;
    const struct bind *best = NULL;
    enum domain d;
    int best_rank = 0;
    GUID vmid = rq->vmid;
    size_t i;

    memset(out, 0, sizeof(*out));
    /* Only the host addresses VMs by CID: from a guest it would reach a sibling. */
    if (rq->pers == HVSIM_PERS_VSOCK_HOST && !from->is_host)
        return -EINVAL;

    /* 1. Where does the address point? */
    if (rq->pers == HVSIM_PERS_VSOCK_HOST) {
        uint32_t cid = vmid.Data1;

        if (cid == VMADDR_CID_LOCAL) {
            to = from;
            d = D_LOOPBACK;
        } else {
            to = model_vm_by_cid(m, cid);
            if (to == NULL) {
                /* vhost-vsock answers a packet for an unknown CID with RST. */
                refuse(out, -ECONNRESET);
                return 0;
            }
            d = D_TO_VM;
        }
    } else if (eq(&vmid, &HV_GUID_ZERO) && !from->is_host && m->set.zero_reaches_parent &&
               !mutant(m, "connect.guest-zero-is-parent")) {
        to = &m->host;
        d = D_TO_HOST;
    } else if (eq(&vmid, &HV_GUID_ZERO) || eq(&vmid, &HV_GUID_CHILDREN) || eq(&vmid, &HV_GUID_BROADCAST)) {
        /* A wildcard is not a destination: WSAEADDRNOTAVAIL (4.2). */
        if (mutant(m, "connect.wildcard-target"))
            refuse(out, -ECONNREFUSED);
        else
            refuse(out, -EADDRNOTAVAIL);
        return 0;
    } else if (eq(&vmid, &HV_GUID_LOOPBACK) || eq(&vmid, &from->id)) {
        to = from;
        d = D_LOOPBACK;
    } else if (eq(&vmid, &HV_GUID_PARENT)) {
        if (from->is_host) {
            refuse(out, -ENETUNREACH);
            return 0;
        }
        to = &m->host;
        d = D_TO_HOST;
    } else if (from->is_host && !eq(&vmid, &HV_GUID_SILOHOST)) {
        to = model_vm_by_id(m, &vmid);
        if (to == NULL) {
            setting_error(m, rq, out, m->set.unknown_vm_error);
            return 0;
        }
        d = D_TO_VM;
    } else {
        /* A guest names another VM, the host's own ID or a silo: no route. */
        if (mutant(m, "connect.no-sibling"))
            setting_error(m, rq, out, 1);
        else
            setting_error(m, rq, out, m->set.sibling_error);
        return 0;
    }

    /* 2. Is the way open? */
    if (!from->is_host && from->state != HVSIM_VM_RUNNING) {
        refuse(out, -ENETDOWN);
        return 0;
    }
    if (!to->is_host && to->state == HVSIM_VM_OFF) {
        setting_error(m, rq, out, mutant(m, "vm.off") ? 1 : m->set.off_vm_error);
        return 0;
    }
    if (!to->is_host && to->state == HVSIM_VM_PAUSED && to != from) {
        /* A paused guest runs nothing that could answer. */
        if (mutant(m, "vm.paused-no-answer"))
            refuse(out, -ECONNREFUSED);
        else
            setting_error(m, rq, out, 1);
        return 0;
    }
    if (d == D_TO_VM && to->kind == HVSIM_VM_HCS) {
        const hvsim_hcs_service_t *h = model_hcs_find(to, &rq->svc);

        if (h && h->connect_deny && !mutant(m, "hcs.connect-deny")) {
            refuse(out, -EACCES);
            return 0;
        }
        if (h && h->disabled && !mutant(m, "hcs.disabled-connect")) {
            refuse(out, -EINVAL);
            return 0;
        }
    }

    /* 3. Who listens? */
    for (i = 0; i < m->nbinds; i++) {
        const struct bind *b = m->binds[i];
        int r = rank(m, b, d, from, to, &rq->svc);

        if (r == 0)
            continue;
        if (d == D_TO_HOST && !host_listener_allowed(m, b, from, &rq->svc))
            continue;
        /* A Linux guest hears only template service IDs (3.1); the port
         * mapping is on the bind already, so a non-template svc never matches. */
        if (r > best_rank) {
            best = b;
            best_rank = r;
        }
    }
    /* A guest with its own kernel (QEMU) is heard through its back-end's
     * gateway, which asks the guest; its listeners are invisible here. */
    if (best == NULL && d == D_TO_VM) {
        uint32_t port;

        for (i = 0; i < m->nbinds && hvsim_guid_to_port(&rq->svc, &port); i++) {
            const struct bind *b = m->binds[i];

            if (b->gateway && b->gw_fd >= 0 && b->listening && b->part == to) {
                best = b;
                break;
            }
        }
    }
    out->to = to;
    if (best == NULL) {
        if (d == D_LOOPBACK) {
            /* go-winio: WSAECONNREFUSED at once (4.1). */
            if (mutant(m, "loopback.refused"))
                setting_error(m, rq, out, 1);
            else
                refuse(out, -ECONNREFUSED);
        } else if (d == D_TO_HOST && rq->pers == HVSIM_PERS_WINDOWS) {
            /* A Windows guest is told: the host sends TL_CONNECT_RESULT (3.3, 4.2). */
            if (mutant(m, "guest.windows-refused"))
                setting_error(m, rq, out, 1);
            else
                refuse(out, -ECONNREFUSED);
        } else {
            /* Linux ignores TL_CONNECT_RESULT, and a guest without a listener
             * ignores the host's offer: the caller times out (3.2, 3.3). */
            no_answer(m, rq, out);
        }
        return 0;
    }

    /* 4. Addresses (4.1, 4.2; the INFERRED ones are in the README). */
    out->verdict = HVSIM_VERDICT_OK;
    out->listener = best;
    {
        GUID csvc;
        uint32_t to_cid = to->is_host ? VMADDR_CID_HOST : to->cid;
        uint32_t from_cid = from->is_host ? VMADDR_CID_HOST : from->cid;

        if (rq->bound)
            csvc = rq->bound->svc;
        else if (is_vsock(rq->pers))
            pick_port(m, from, rq->pers, &csvc);
        else
            hvsim__guid_random(&csvc);

        out->local_svc = csvc;
        out->peer_svc = rq->svc;
        out->acc_local_svc = best->gateway ? rq->svc : best->svc;
        out->acc_peer_svc = csvc;
        out->peer_cid = to_cid;
        out->acc_peer_cid = from_cid;
        switch (d) {
        case D_LOOPBACK:
            out->local_vmid = HV_GUID_CHILDREN;
            out->peer_vmid = rq->vmid;
            out->acc_local_vmid = HV_GUID_CHILDREN;
            out->acc_peer_vmid = HV_GUID_LOOPBACK;
            if (rq->pers == HVSIM_PERS_VSOCK_HOST) {
                out->peer_cid = VMADDR_CID_LOCAL;
                out->acc_peer_cid = VMADDR_CID_LOCAL;
            }
            break;
        case D_TO_HOST:
            out->local_vmid = from->id;
            out->peer_vmid = HV_GUID_PARENT;
            out->acc_local_vmid = from->id;
            out->acc_peer_vmid = from->id;
            break;
        case D_TO_VM:
            out->local_vmid = HV_GUID_CHILDREN;
            out->peer_vmid = to->id;
            out->acc_local_vmid = HV_GUID_PARENT;
            out->acc_peer_vmid = HV_GUID_PARENT;
            break;
        }
        if (mutant(m, "address.loopback-peer") && d == D_LOOPBACK)
            out->acc_peer_vmid = HV_GUID_CHILDREN;
        if (mutant(m, "address.host-accept-local") && d == D_TO_HOST)
            out->acc_local_vmid = HV_GUID_ZERO;
    }
    /* If the listener is gone by the time the caller connects, it is as if
     * there had been none: remember that outcome's timeout. */
    if (d == D_LOOPBACK || (d == D_TO_HOST && rq->pers == HVSIM_PERS_WINDOWS) || m->set.profile == PROFILE_KVM)
        out->timeout_ms = 0;
    else
        out->timeout_ms = rq->timeout_ms ? rq->timeout_ms
                                         : (rq->pers == HVSIM_PERS_WINDOWS ? m->set.win_timeout_ms
                                                                           : m->set.linux_timeout_ms);
    return 0;
}
