/* SPDX-License-Identifier: MIT */
/*
 * handlers_admin.c: what hvsimctl asks of hvsimd on the admin socket: VMs
 * (VM_ADD, VM_RM, VM_OP, VM_LIST), the service registry (SVC_*), hcs VMs'
 * service tables (HCS_SET), the emulation choices (SETTING_*) and STATUS.
 * Every change is saved (state.c) before its reply.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hvproto/mutants.h"
#include "server_int.h"

static void vm_info(const struct model *m, const struct part *p, hvsim_vm_info_t *out)
{
    memset(out, 0, sizeof(*out));
    out->id = p->id;
    memcpy(out->name, p->name, sizeof(out->name));
    out->kind = p->kind;
    out->state = p->state;
    out->cid = p->cid;
    out->nprocs = model_vm_nprocs(m, p);
    out->transport = p->transport;
    out->kernel = p->kernel;
    out->owner = p->owner;
    memcpy(out->groups, p->groups, sizeof(out->groups));
}

/* Every admin change is saved before it is acknowledged, and takes effect
 * only once saved: the handlers change the model, save_change writes it,
 * and when that fails (a full disk, say) they put the model back as it was
 * before replying the error. So a retry works, and a restart shows exactly
 * what was acknowledged. Returns 0 when saved; otherwise the error has been
 * replied and the handler returns *rc after undoing its change. */
static int save_change(struct req *r, unsigned type, int *rc)
{
    char err[256] = "";
    int st = save_state(r->s, err, sizeof(err));

    if (st == 0)
        return 0;
    logmsg("saving state failed: %s (the change is undone)", err);
    *rc = reply_err(r->c, type, r->h.seq, st, err);
    return -1;
}

/* A copy of an array, to put back when a save fails. */
static void *snapshot(const void *v, size_t n, size_t size)
{
    void *copy = malloc(n ? n * size : 1);

    if (copy && n)
        memcpy(copy, v, n * size);
    return copy;
}

int h_vm_add(struct req *r)
{
    struct hvsim_msg_vm_add m;
    hvsim_vm_info_t info;
    struct part *p;
    char err[256] = "";
    int rc;

    memcpy(&m, r->body, sizeof(m));
    m.name[sizeof(m.name) - 1] = '\0';
    rc = model_vm_add(&r->s->m, m.name, m.has_id ? &m.id : NULL, m.kind, &p, err, sizeof(err));
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_VM_INFO, r->h.seq, rc, err);
    rc = model_vm_set_transport(p, m.transport, m.kernel, err, sizeof(err));
    if (rc == 0)
        rc = model_vm_set_owner(p, &m.owner, err, sizeof(err));
    m.groups[sizeof(m.groups) - 1] = '\0';
    if (rc == 0)
        rc = model_vm_set_groups(p, m.groups, err, sizeof(err));
    if (rc < 0) {
        model_vm_remove(&r->s->m, p);
        return reply_err(r->c, HVSIM_MSG_VM_INFO, r->h.seq, rc, err);
    }
    rc = open_part(r->s, p);
    if (rc < 0) {
        if (p->owner.set && rc == -EPERM)
            snprintf(err, sizeof(err),
                     "cannot give the control socket of VM '%s' to uid %u: %s (hvsimd must run as root, or as that "
                     "user, to give a VM an owner)", p->name, p->owner.uid, strerror(-rc));
        else
            snprintf(err, sizeof(err), "cannot create the control socket of VM '%s': %s", p->name, strerror(-rc));
        close_part(r->s, p);
        model_vm_remove(&r->s->m, p);
        return reply_err(r->c, HVSIM_MSG_VM_INFO, r->h.seq, rc, err);
    }
    if (save_change(r, HVSIM_MSG_VM_INFO, &rc) < 0) {
        close_part(r->s, p);
        model_vm_remove(&r->s->m, p);
        return rc;
    }
    vm_info(&r->s->m, p, &info);
    return reply(r->c, HVSIM_MSG_VM_INFO, r->h.seq, &info, sizeof(info));
}

static struct part *vm_ref(struct req *r, const char *ref, unsigned type, int *replied)
{
    char text[HVSIM_NAME_MAX + 1], err[160];
    struct part *p;

    memcpy(text, ref, HVSIM_NAME_MAX);
    text[HVSIM_NAME_MAX] = '\0';
    p = model_vm_find(&r->s->m, text);
    if (p == NULL) {
        snprintf(err, sizeof(err), "no VM named or with ID '%s' (hvsimctl vm list)", text);
        *replied = reply_err(r->c, type, r->h.seq, -ENOENT, err);
    }
    return p;
}

static void disconnect_vm(struct server *s, struct part *p)
{
    struct proc *c = s->m.procs, *next;

    for (; c; c = next) {
        next = c->next;
        if (c->part == p && !c->admin)
            drop_proc(s, c);
    }
}

int h_vm_rm(struct req *r)
{
    struct hvsim_msg_vm_ref m;
    struct part *p;
    GUID id;
    size_t at;
    int rc = 0;

    memcpy(&m, r->body, sizeof(m));
    p = vm_ref(r, m.ref, HVSIM_MSG_VM_RM, &rc);
    if (p == NULL)
        return rc;
    /* Saved without it first: nothing is broken for a removal that is not kept. */
    at = model_vm_detach(&r->s->m, p);
    if (save_change(r, HVSIM_MSG_VM_RM, &rc) < 0) {
        model_vm_reattach(&r->s->m, p, at);
        return rc;
    }
    model_vm_reattach(&r->s->m, p, at);
    id = p->id;
    broadcast(r->s, &id, HVSIM_EV_REMOVED);
    if (r->s->m.set.reset_kills)
        signal_vm(r->s, p, SIGKILL);
    disconnect_vm(r->s, p);
    close_part(r->s, p);
    model_vm_remove(&r->s->m, p);
    return reply(r->c, HVSIM_MSG_VM_RM, r->h.seq, &m, sizeof(m));
}

/* The state OP takes P to, or -1 with the reason in err. */
static int vm_op_state(const struct part *p, const char *op, char *err, size_t len)
{
    if (strcmp(op, "start") == 0)
        return HVSIM_VM_RUNNING;
    if (strcmp(op, "resume") == 0) {
        if (p->state == HVSIM_VM_PAUSED)
            return HVSIM_VM_RUNNING;
        snprintf(err, len, "VM '%s' is not paused", p->name);
        return -1;
    }
    if (strcmp(op, "pause") == 0) {
        if (p->state == HVSIM_VM_RUNNING)
            return HVSIM_VM_PAUSED;
        snprintf(err, len, "VM '%s' is not running", p->name);
        return -1;
    }
    if (strcmp(op, "reset") == 0)
        return HVSIM_VM_RUNNING;
    if (strcmp(op, "off") == 0)
        return HVSIM_VM_OFF;
    snprintf(err, len, "VM operation '%s': expected start, pause, resume, reset or off", op);
    return -1;
}

/* What OP does to P's processes and connections, once saved (OLD: the state before). */
static void vm_op_effects(struct server *s, struct part *p, uint32_t old, const char *op)
{
    int freezes = (int)s->m.set.pause_freezes;

    if (strcmp(op, "pause") == 0) {
        broadcast(s, &p->id, HVSIM_EV_PAUSE);
        if (freezes)
            signal_vm(s, p, SIGSTOP);
        return;
    }
    if (old == HVSIM_VM_PAUSED && freezes)
        signal_vm(s, p, SIGCONT);
    if (strcmp(op, "reset") == 0 || strcmp(op, "off") == 0) {
        broadcast(s, &p->id, op[0] == 'o' ? HVSIM_EV_OFF : HVSIM_EV_RESET);
        if (s->m.set.reset_kills)
            signal_vm(s, p, SIGKILL);
    } else if (old == HVSIM_VM_PAUSED) {
        broadcast(s, &p->id, HVSIM_EV_RESUME);
    }
}

int h_vm_op(struct req *r)
{
    struct hvsim_msg_vm_op m;
    hvsim_vm_info_t info;
    struct part *p;
    char err[160];
    uint32_t old;
    int rc = 0, to;

    memcpy(&m, r->body, sizeof(m));
    m.op[sizeof(m.op) - 1] = '\0';
    p = vm_ref(r, m.ref, HVSIM_MSG_VM_INFO, &rc);
    if (p == NULL)
        return rc;
    to = vm_op_state(p, m.op, err, sizeof(err));
    if (to < 0)
        return reply_err(r->c, HVSIM_MSG_VM_INFO, r->h.seq, -EINVAL, err);
    old = p->state;
    p->state = (uint32_t)to;
    if (save_change(r, HVSIM_MSG_VM_INFO, &rc) < 0) {
        p->state = old;
        return rc;
    }
    vm_op_effects(r->s, p, old, m.op);
    vm_info(&r->s->m, p, &info);
    return reply(r->c, HVSIM_MSG_VM_INFO, r->h.seq, &info, sizeof(info));
}

/* One page of a list of TOTAL entries of ESIZE bytes from the request's
 * cursor; FILL writes entry i. */
static int list_page(struct req *r, unsigned type, size_t total, size_t esize,
                     void (*fill)(const struct server *s, size_t i, void *out))
{
    struct hvsim_msg_page pg;
    struct hvsim_msg_list out = { .total = (uint32_t)total, .gen = r->s->m.gen };
    size_t i, per = HVSIM_PAGE_BYTES / esize, from;
    char *v;
    int rc;

    memcpy(&pg, r->body, sizeof(pg));
    from = pg.cursor < total ? pg.cursor : total;
    out.count = (uint32_t)(total - from < per ? total - from : per);
    out.next = (uint32_t)(from + out.count);
    v = calloc(out.count ? out.count : 1, esize);
    if (v == NULL)
        return reply_err(r->c, type, r->h.seq, -ENOMEM, NULL);
    for (i = 0; i < out.count; i++)
        fill(r->s, from + i, v + i * esize);
    rc = reply_extra(r->c, type, r->h.seq, &out, sizeof(out), v, out.count * esize);
    free(v);
    return rc;
}

static void fill_vm(const struct server *s, size_t i, void *out)
{
    vm_info(&s->m, s->m.vms[i], out);
}

static void fill_svc(const struct server *s, size_t i, void *out)
{
    memcpy(out, &s->m.services[i], sizeof(s->m.services[i]));
}

int h_vm_list(struct req *r)
{
    return list_page(r, HVSIM_MSG_VM_LIST_REPLY, r->s->m.nvms, sizeof(hvsim_vm_info_t), fill_vm);
}

static int element_name_ok(const char *s, size_t cap)
{
    size_t i, n = strnlen(s, cap);

    if (n >= cap)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* The registry as it was (SNAP, N entries) comes back: a save failed. */
static void services_restore(struct model *m, hvsim_service_info_t *snap, size_t n)
{
    free(m->services);
    m->services = snap;
    m->nservices = n;
    m->gen++;
}

/* Save the registry's change, or put SNAP back; frees SNAP when saved. */
static int services_commit(struct req *r, unsigned type, hvsim_service_info_t *snap, size_t n, const void *body,
                           size_t len)
{
    int rc;

    if (save_change(r, type, &rc) < 0) {
        services_restore(&r->s->m, snap, n);
        return rc;
    }
    free(snap);
    return reply(r->c, type, r->h.seq, body, len);
}

int h_svc_add(struct req *r)
{
    hvsim_service_info_t m, *snap;
    size_t n = r->s->m.nservices;
    int rc;

    memcpy(&m, r->body, sizeof(m));
    if (!element_name_ok(m.element_name, sizeof(m.element_name)))
        return reply_err(r->c, HVSIM_MSG_SVC_ADD, r->h.seq, -EINVAL,
                         "ElementName: expected at most 255 bytes without control characters");
    snap = snapshot(r->s->m.services, n, sizeof(*snap));
    if (snap == NULL)
        return reply_err(r->c, HVSIM_MSG_SVC_ADD, r->h.seq, -ENOMEM, NULL);
    rc = model_service_add(&r->s->m, &m.id, m.element_name);
    if (rc < 0) {
        free(snap);
        return reply_err(r->c, HVSIM_MSG_SVC_ADD, r->h.seq, rc, NULL);
    }
    return services_commit(r, HVSIM_MSG_SVC_ADD, snap, n, &m, sizeof(m));
}

int h_svc_rm(struct req *r)
{
    struct hvsim_msg_guid m;
    hvsim_service_info_t *snap;
    size_t n = r->s->m.nservices;
    char text[HVSIM_GUID_STRLEN], err[128];
    int rc;

    memcpy(&m, r->body, sizeof(m));
    snap = snapshot(r->s->m.services, n, sizeof(*snap));
    if (snap == NULL)
        return reply_err(r->c, HVSIM_MSG_SVC_RM, r->h.seq, -ENOMEM, NULL);
    if (model_service_rm(&r->s->m, &m.id) < 0) {
        free(snap);
        snprintf(err, sizeof(err), "service %s is not registered", hvsim_guid_format(&m.id, text));
        return reply_err(r->c, HVSIM_MSG_SVC_RM, r->h.seq, -ENOENT, err);
    }
    if (save_change(r, HVSIM_MSG_SVC_RM, &rc) < 0) {
        services_restore(&r->s->m, snap, n);
        return rc;
    }
    free(snap);
    /* Before the reply: once it is back, the route's unused tickets are void. */
    broadcast_service_removed(r->s, &m.id);
    return reply(r->c, HVSIM_MSG_SVC_RM, r->h.seq, &m, sizeof(m));
}

int h_svc_list(struct req *r)
{
    return list_page(r, HVSIM_MSG_SVC_LIST_REPLY, r->s->m.nservices, sizeof(hvsim_service_info_t), fill_svc);
}

static void import_discard(struct proc *c)
{
    free(c->staged);
    c->staged = NULL;
    c->nstaged = 0;
}

/* Check an import page and keep its entries with the connection's earlier
 * pages. Returns 0, or the -errno replied with its reason in err. */
static int import_stage(struct req *r, const struct hvsim_msg_import *m, char *err, size_t len)
{
    const hvsim_service_info_t *v = (const hvsim_service_info_t *)(r->body + sizeof(*m));
    hvsim_service_info_t *t;
    struct proc *c = r->c;
    size_t i;

    if ((size_t)r->h.len - sizeof(*m) != (size_t)m->count * sizeof(*v)) {
        snprintf(err, len, "import: count does not match the length");
        return -EPROTO;
    }
    if ((size_t)m->count * sizeof(*v) > HVSIM_PAGE_BYTES) {
        snprintf(err, len, "import: at most %zu services per message (the library sends pages)",
                 HVSIM_PAGE_BYTES / sizeof(*v));
        return -EMSGSIZE;
    }
    if (c->nstaged + m->count > HVSIM_IMPORT_MAX) {
        snprintf(err, len, "import: at most %d services in one import", HVSIM_IMPORT_MAX);
        return -E2BIG;
    }
    for (i = 0; i < m->count; i++) {
        if (!element_name_ok(v[i].element_name, sizeof(v[i].element_name))) {
            snprintf(err, len, "import: bad ElementName (entry %zu)", c->nstaged + i + 1);
            return -EINVAL;
        }
    }
    t = realloc(c->staged, (c->nstaged + m->count + 1) * sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    c->staged = t;
    memcpy(c->staged + c->nstaged, v, (size_t)m->count * sizeof(*v));
    c->nstaged += m->count;
    return 0;
}

/* An import comes in pages (HVSIM_IMPORT_MORE) and takes effect with the
 * last, all or nothing: every entry is checked before any is added, and the
 * registry comes back as it was if the save fails. */
int h_svc_import(struct req *r)
{
    struct hvsim_msg_import m;
    hvsim_service_info_t *snap;
    size_t i, n = r->s->m.nservices;
    char err[160] = "";
    int rc;

    memcpy(&m, r->body, sizeof(m));
    rc = import_stage(r, &m, err, sizeof(err));
    if (rc < 0) {
        import_discard(r->c);
        return reply_err(r->c, HVSIM_MSG_SVC_IMPORT, r->h.seq, rc, err[0] ? err : NULL);
    }
    m.count = (uint32_t)r->c->nstaged;
    if (m.flags & HVSIM_IMPORT_MORE)
        return reply(r->c, HVSIM_MSG_SVC_IMPORT, r->h.seq, &m, sizeof(m));
    snap = snapshot(r->s->m.services, n, sizeof(*snap));
    for (i = 0, rc = snap ? 0 : -ENOMEM; i < r->c->nstaged && rc == 0; i++)
        rc = model_service_add(&r->s->m, &r->c->staged[i].id, r->c->staged[i].element_name);
    import_discard(r->c);
    if (rc < 0) {
        if (snap)
            services_restore(&r->s->m, snap, n);
        return reply_err(r->c, HVSIM_MSG_SVC_IMPORT, r->h.seq, rc, NULL);
    }
    return services_commit(r, HVSIM_MSG_SVC_IMPORT, snap, n, &m, sizeof(m));
}

int h_hcs_set(struct req *r)
{
    struct hvsim_msg_hcs_set m;
    hvsim_hcs_service_t *snap;
    const hvsim_hcs_service_t *was;
    struct part *p;
    size_t n;
    int rc = 0, was_disabled;

    memcpy(&m, r->body, sizeof(m));
    p = vm_ref(r, m.vm, HVSIM_MSG_HCS_SET, &rc);
    if (p == NULL)
        return rc;
    if (p->kind != HVSIM_VM_HCS)
        return reply_err(r->c, HVSIM_MSG_HCS_SET, r->h.seq, -EINVAL,
                         "HvSocket service tables belong to hcs VMs (vm add --kind hcs)");
    n = p->nhcs;
    was = model_hcs_find(p, &m.svc.id);
    was_disabled = was != NULL && was->disabled;
    snap = snapshot(p->hcs, n, sizeof(*snap));
    if (snap == NULL)
        return reply_err(r->c, HVSIM_MSG_HCS_SET, r->h.seq, -ENOMEM, NULL);
    rc = model_hcs_set(p, &m.svc);
    if (rc < 0) {
        free(snap);
        return reply_err(r->c, HVSIM_MSG_HCS_SET, r->h.seq, rc, NULL);
    }
    if (save_change(r, HVSIM_MSG_HCS_SET, &rc) < 0) {
        free(p->hcs);
        p->hcs = snap;
        p->nhcs = n;
        return rc;
    }
    free(snap);
    /* Disabled also cancels the connections already made (the HCS schema's
     * own comment; hyperv-sockets.md 7, item 4). */
    if (m.svc.disabled && !was_disabled)
        if (!HVSIM_MUTANT(HCS_DISABLED_CANCELS))
            broadcast_service(r->s, &p->id, &m.svc.id);
    return reply(r->c, HVSIM_MSG_HCS_SET, r->h.seq, &m, sizeof(m));
}

int h_setting_get(struct req *r)
{
    struct hvsim_msg_setting m;

    memcpy(&m, r->body, sizeof(m));
    m.name[sizeof(m.name) - 1] = '\0';
    if (settings_get(&r->s->m.set, m.name, m.value, sizeof(m.value)) < 0)
        return reply_err(r->c, HVSIM_MSG_SETTING_REPLY, r->h.seq, -ENOENT, "unknown setting");
    return reply(r->c, HVSIM_MSG_SETTING_REPLY, r->h.seq, &m, sizeof(m));
}

int h_setting_set(struct req *r)
{
    struct hvsim_msg_setting m;
    struct settings old;
    char err[256];
    int rc;

    memcpy(&m, r->body, sizeof(m));
    m.name[sizeof(m.name) - 1] = '\0';
    m.value[sizeof(m.value) - 1] = '\0';
    old = r->s->m.set;
    rc = settings_set(&r->s->m.set, m.name, m.value, err, sizeof(err));
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_SETTING_REPLY, r->h.seq, rc, err);
    if (save_change(r, HVSIM_MSG_SETTING_REPLY, &rc) < 0) {
        r->s->m.set = old;
        return rc;
    }
    return reply(r->c, HVSIM_MSG_SETTING_REPLY, r->h.seq, &m, sizeof(m));
}

int h_setting_list(struct req *r)
{
    struct hvsim_msg_setting m = { 0 };
    char *text = settings_list(&r->s->m.set);
    int rc;

    if (text == NULL)
        return reply_err(r->c, HVSIM_MSG_SETTING_REPLY, r->h.seq, -ENOMEM, NULL);
    rc = reply_extra(r->c, HVSIM_MSG_SETTING_REPLY, r->h.seq, &m, sizeof(m), text, strlen(text));
    free(text);
    return rc;
}

/* "usage.<partition>=connections N/MAX binds N/MAX pending N/MAX events N/MAX\n" */
static size_t usage_line(const struct server *s, const struct part *p, char *out, size_t len)
{
    const struct settings *set = &s->m.set;
    uint32_t pending = 0;
    size_t i, j;
    int n;

    for (i = 0; i < s->noffers; i++)
        for (j = 0; j < s->m.nbinds; j++)
            pending += s->m.binds[j]->id == s->offers[i].bind_id && s->m.binds[j]->part == p;
    n = snprintf(out, len, "usage.%s=connections %u/%u binds %u/%u pending %u/%u events %u/%u\n", p->name, p->nconns,
                 set->max_conns, p->nbinds, set->max_binds, pending, set->max_pending, p->nqueued, set->max_events);
    return n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
}

/* The limits and every partition's use of them (the first STATUS_VMS_MAX
 * VMs': the reply is one message), after the folders. */
#define STATUS_VMS_MAX 256u
static char *status_text(const struct server *s)
{
    size_t shown = s->m.nvms < STATUS_VMS_MAX ? s->m.nvms : STATUS_VMS_MAX;
    size_t cap = 600 + 2 * PATH_MAX + (shown + 1) * 160, used;
    char *text = malloc(cap), id[HVSIM_GUID_STRLEN];
    size_t i;

    if (text == NULL)
        return NULL;
    used = (size_t)snprintf(text, cap, "dir=%s\nstate_dir=%s\nhost_id=%s\npid=%d\n"
                            "limits=connections %u binds %u pending %u events %u (per partition), hello %u ms\n",
                            s->dir, s->state_dir[0] ? s->state_dir : "(none)", hvsim_guid_format(&s->m.host.id, id),
                            (int)getpid(), s->m.set.max_conns, s->m.set.max_binds, s->m.set.max_pending,
                            s->m.set.max_events, s->m.set.hello_ms);
    if (used >= cap)
        used = cap - 1;
    used += usage_line(s, &s->m.host, text + used, cap - used);
    for (i = 0; i < shown; i++)
        used += usage_line(s, s->m.vms[i], text + used, cap - used);
    if (shown < s->m.nvms)
        snprintf(text + used, cap - used, "usage_not_shown=%zu VMs\n", s->m.nvms - shown);
    return text;
}

int h_status(struct req *r)
{
    struct hvsim_msg_status st = { 0 };
    char *text;
    struct proc *c;
    size_t i;
    int rc;

    st.nvms = (uint32_t)r->s->m.nvms;
    st.nservices = (uint32_t)r->s->m.nservices;
    for (c = r->s->m.procs; c; c = c->next)
        st.nprocs += !c->admin;
    for (i = 0; i < r->s->m.nbinds; i++)
        st.nlisteners += r->s->m.binds[i]->listening;
    text = status_text(r->s);
    if (text == NULL)
        return reply_err(r->c, HVSIM_MSG_STATUS, r->h.seq, -ENOMEM, NULL);
    rc = reply_extra(r->c, HVSIM_MSG_STATUS, r->h.seq, &st, sizeof(st), text, strlen(text));
    free(text);
    return rc;
}
