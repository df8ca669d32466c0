/* SPDX-License-Identifier: MIT */
/*
 * model.c: the emulated host's objects and their bookkeeping: the host
 * partition and its VMs, the GuestCommunicationServices registry, per-VM HCS
 * service tables, and the bind table. No I/O happens here.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "hvproto/util.h"

void model_init(struct model *m)
{
    memset(m, 0, sizeof(*m));
    settings_defaults(&m->set);
    m->host.is_host = 1;
    m->host.cid = VMADDR_CID_HOST;
    m->host.transport = HVSIM_TRANSPORT_VIRTIO;
    m->host.kernel = HVSIM_KERNEL_6_1;
    m->host.listen_fd = -1;
    snprintf(m->host.name, sizeof(m->host.name), "host");
    hvsim__guid_random(&m->host.id);
    hvsim__random(&m->instance, sizeof(m->instance));
    /* Bind ids start at a random place of this run's own: a process still
     * holding an id of the last daemon's never names one of this daemon's
     * binds (both runs' first bind was id 1 once). */
    m->next_bind_id = (m->instance & 0xffffffff00000000ull) | 1;
    m->next_conn_id = 1;
    hvsim__random(&m->next_port, sizeof(m->next_port));
    m->next_port = 1024 + m->next_port % (0x7fffffffu - 1024);
}

void model_free(struct model *m)
{
    size_t i;

    for (i = 0; i < m->nvms; i++) {
        free(m->vms[i]->hcs);
        free(m->vms[i]->trk.v);
        free(m->vms[i]);
    }
    free(m->host.trk.v);
    free(m->vms);
    free(m->services);
    for (i = 0; i < m->nbinds; i++)
        free(m->binds[i]);
    free(m->binds);
    m->vms = NULL;
    m->binds = NULL;
    m->services = NULL;
    m->nvms = m->nbinds = m->nservices = 0;
}

struct part *model_vm_by_id(const struct model *m, const GUID *id)
{
    size_t i;

    for (i = 0; i < m->nvms; i++)
        if (hvsim_guid_equal(&m->vms[i]->id, id))
            return m->vms[i];
    return NULL;
}

struct part *model_vm_by_cid(const struct model *m, uint32_t cid)
{
    size_t i;

    for (i = 0; i < m->nvms; i++)
        if (m->vms[i]->cid == cid)
            return m->vms[i];
    return NULL;
}

struct part *model_vm_find(const struct model *m, const char *ref)
{
    GUID id;
    size_t i;

    for (i = 0; i < m->nvms; i++)
        if (strcmp(m->vms[i]->name, ref) == 0)
            return m->vms[i];
    if (hvsim_guid_parse(ref, &id) == 0)
        return model_vm_by_id(m, &id);
    return NULL;
}

static int valid_name(const char *name)
{
    size_t i, n = strlen(name);

    if (n == 0 || n >= HVSIM_NAME_MAX || strcmp(name, "host") == 0 || name[0] == '.' || name[0] == '-')
        return 0;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_' && name[i] != '.')
            return 0;
    return 1;
}

static int reserved_id(const GUID *id)
{
    return hvsim__vmid_name(id) != NULL || hvsim_guid_equal(id, &HV_GUID_ZERO);
}

int model_vm_add(struct model *m, const char *name, const GUID *id, uint32_t kind, struct part **out, char *err,
                 size_t errlen)
{
    struct part *p, **v;
    uint32_t cid = 3;
    size_t i;
    char text[HVSIM_GUID_STRLEN];

    if (!valid_name(name)) {
        snprintf(err, errlen, "VM name '%s': expected 1-%d characters of A-Z a-z 0-9 . _ - (not 'host', not starting "
                 "with . or -)", name, HVSIM_NAME_MAX - 1);
        return -EINVAL;
    }
    if (kind != HVSIM_VM_CLASSIC && kind != HVSIM_VM_HCS) {
        snprintf(err, errlen, "VM kind: expected classic or hcs");
        return -EINVAL;
    }
    for (i = 0; i < m->nvms; i++) {
        if (strcmp(m->vms[i]->name, name) == 0) {
            snprintf(err, errlen, "a VM named '%s' already exists", name);
            return -EEXIST;
        }
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    if (id) {
        if (reserved_id(id) || hvsim_guid_equal(id, &m->host.id)) {
            snprintf(err, errlen, "VM ID %s is a well-known or the host's ID", hvsim_guid_format(id, text));
            free(p);
            return -EINVAL;
        }
        if (model_vm_by_id(m, id)) {
            snprintf(err, errlen, "a VM with ID %s already exists", hvsim_guid_format(id, text));
            free(p);
            return -EEXIST;
        }
        p->id = *id;
    } else {
        do
            hvsim__guid_random(&p->id);
        while (model_vm_by_id(m, &p->id));
    }
    while (model_vm_by_cid(m, cid))
        cid++;
    v = realloc(m->vms, (m->nvms + 1) * sizeof(*v));
    if (v == NULL) {
        free(p);
        return -ENOMEM;
    }
    m->vms = v;
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->kind = kind;
    p->state = HVSIM_VM_RUNNING;
    p->cid = cid;
    p->transport = HVSIM_TRANSPORT_HV_SOCK;
    p->kernel = HVSIM_KERNEL_6_1;
    p->listen_fd = -1;
    m->vms[m->nvms++] = p;
    m->gen++;
    *out = p;
    return 0;
}

size_t model_vm_detach(struct model *m, struct part *p)
{
    size_t i;

    for (i = 0; i < m->nvms && m->vms[i] != p; i++)
        ;
    if (i < m->nvms) {
        memmove(&m->vms[i], &m->vms[i + 1], (m->nvms - i - 1) * sizeof(*m->vms));
        m->nvms--;
        m->gen++;
    }
    return i;
}

void model_vm_reattach(struct model *m, struct part *p, size_t at)
{
    /* The array had room for it a moment ago: no allocation. */
    if (at > m->nvms)
        at = m->nvms;
    memmove(&m->vms[at + 1], &m->vms[at], (m->nvms - at) * sizeof(*m->vms));
    m->vms[at] = p;
    m->nvms++;
    m->gen++;
}

void model_vm_remove(struct model *m, struct part *p)
{
    size_t i;

    for (i = 0; i < m->nbinds;) {
        if (m->binds[i]->part == p)
            model_bind_remove(m, m->binds[i]);
        else
            i++;
    }
    for (i = 0; i < m->nvms; i++) {
        if (m->vms[i] == p) {
            memmove(&m->vms[i], &m->vms[i + 1], (m->nvms - i - 1) * sizeof(*m->vms));
            m->nvms--;
            break;
        }
    }
    m->gen++;
    free(p->hcs);
    free(p->trk.v);
    free(p);
}

int model_vm_set_transport(struct part *p, uint32_t transport, uint32_t kernel, char *err, size_t errlen)
{
    if (kernel == 0)
        kernel = HVSIM_KERNEL_6_1;
    if (hvsim__transport_name(transport) == NULL) {
        snprintf(err, errlen, "VM transport: expected hv_sock or virtio");
        return -EINVAL;
    }
    if (hvsim__kernel_name(kernel) == NULL) {
        snprintf(err, errlen, "VM kernel: expected 6.1, 6.12 or newest");
        return -EINVAL;
    }
    p->transport = transport;
    p->kernel = kernel;
    return 0;
}

int model_vm_set_groups(struct part *p, const char *groups, char *err, size_t errlen)
{
    char why[160];

    if (groups == NULL)
        groups = "";
    if (hvsim__groups_check(groups, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "VM groups (--group '%.*s'): %s", HVSIM_GROUPS_MAX - 1, groups, why);
        return -EINVAL;
    }
    /* Hyper-V carries a guest's hv_sock connections to its parent alone
     * (hyperv-sockets.md 1.3, 3.1): there is no sibling path to open. */
    if (groups[0] != '\0' && p->transport != HVSIM_TRANSPORT_VIRTIO) {
        snprintf(err, errlen, "VM groups (--group): only a virtio VM (--transport virtio) may have sibling groups; "
                              "'%s' is %s, and Hyper-V has no path between sibling VMs", p->name,
                 hvsim__transport_name(p->transport) ? hvsim__transport_name(p->transport) : "?");
        return -EINVAL;
    }
    snprintf(p->groups, sizeof(p->groups), "%s", groups);
    return 0;
}

int model_vm_set_owner(struct part *p, const hvsim_vm_owner_t *owner, char *err, size_t errlen)
{
    /* (uid_t)-1 means "leave as is" to chown: never an owner. */
    if (owner->set && (owner->uid == UINT32_MAX || (owner->has_gid && owner->gid == UINT32_MAX))) {
        snprintf(err, errlen, "VM owner: uid and gid must be 0 to %u", UINT32_MAX - 1);
        return -EINVAL;
    }
    memset(&p->owner, 0, sizeof(p->owner));
    if (owner->set) {
        p->owner.set = 1;
        p->owner.uid = owner->uid;
        p->owner.has_gid = owner->has_gid ? 1 : 0;
        p->owner.gid = owner->has_gid ? owner->gid : 0;
    }
    return 0;
}

const hvsim_service_info_t *model_service_find(const struct model *m, const GUID *id)
{
    size_t i;

    for (i = 0; i < m->nservices; i++)
        if (hvsim_guid_equal(&m->services[i].id, id))
            return &m->services[i];
    return NULL;
}

int model_service_add(struct model *m, const GUID *id, const char *element_name)
{
    hvsim_service_info_t *s = (hvsim_service_info_t *)model_service_find(m, id), *v;

    if (strlen(element_name) >= HVSIM_ELEMENT_NAME_MAX)
        return -EINVAL;
    if (s == NULL) {
        v = realloc(m->services, (m->nservices + 1) * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        m->services = v;
        s = &m->services[m->nservices++];
        s->id = *id;
    }
    snprintf(s->element_name, sizeof(s->element_name), "%s", element_name);
    m->gen++;
    return 0;
}

int model_service_rm(struct model *m, const GUID *id)
{
    const hvsim_service_info_t *s = model_service_find(m, id);
    size_t i;

    if (s == NULL)
        return -ENOENT;
    i = (size_t)(s - m->services);
    memmove(&m->services[i], &m->services[i + 1], (m->nservices - i - 1) * sizeof(*m->services));
    m->nservices--;
    m->gen++;
    return 0;
}

const hvsim_hcs_service_t *model_hcs_find(const struct part *p, const GUID *svc)
{
    size_t i;

    for (i = 0; i < p->nhcs; i++)
        if (hvsim_guid_equal(&p->hcs[i].id, svc))
            return &p->hcs[i];
    return NULL;
}

int model_hcs_set(struct part *p, const hvsim_hcs_service_t *svc)
{
    hvsim_hcs_service_t *e = (hvsim_hcs_service_t *)model_hcs_find(p, &svc->id), *v;

    if (e == NULL) {
        v = realloc(p->hcs, (p->nhcs + 1) * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        p->hcs = v;
        e = &p->hcs[p->nhcs++];
    }
    *e = *svc;
    return 0;
}

struct bind *model_bind_find(const struct model *m, uint64_t id)
{
    size_t i;

    for (i = 0; i < m->nbinds; i++)
        if (m->binds[i]->id == id)
            return m->binds[i];
    return NULL;
}

int model_bind_add(struct model *m, struct bind *b)
{
    struct bind **v = realloc(m->binds, (m->nbinds + 1) * sizeof(*v));

    if (v == NULL)
        return -ENOMEM;
    m->binds = v;
    b->id = m->next_bind_id++;
    m->binds[m->nbinds++] = b;
    b->part->nbinds++;
    m->track_gen++;
    return 0;
}

void model_bind_remove(struct model *m, struct bind *b)
{
    size_t i;

    for (i = 0; i < m->nbinds; i++) {
        if (m->binds[i] == b) {
            m->binds[i] = m->binds[--m->nbinds];
            b->part->nbinds--;
            m->track_gen++;
            /* gateway.c closes a gateway's channel first (and takes it out of
             * epoll); this is for binds removed without it. */
            if (b->gateway && b->gw_fd >= 0)
                close(b->gw_fd);
            free(b);
            return;
        }
    }
}

uint32_t model_vm_nprocs(const struct model *m, const struct part *p)
{
    const struct proc *c;
    uint32_t n = 0;

    for (c = m->procs; c; c = c->next)
        if (c->part == p && !c->admin)
            n++;
    return n;
}
