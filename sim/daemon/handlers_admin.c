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
}

/* Every admin change is written to disk before the reply: a crash after the
 * reply loses nothing the user was told had happened. */
static int admin_commit(struct req *r, unsigned type, const void *body, size_t len)
{
    char err[256] = "";
    int rc = save_state(r->s, err, sizeof(err));

    if (rc < 0) {
        logmsg("saving state failed: %s", err);
        return reply_err(r->c, type, r->h.seq, rc, err);
    }
    return reply(r->c, type, r->h.seq, body, len);
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
    rc = open_part(r->s, p);
    if (rc < 0) {
        snprintf(err, sizeof(err), "cannot create the control socket of VM '%s': %s", p->name, strerror(-rc));
        close_part(r->s, p);
        model_vm_remove(&r->s->m, p);
        return reply_err(r->c, HVSIM_MSG_VM_INFO, r->h.seq, rc, err);
    }
    vm_info(&r->s->m, p, &info);
    return admin_commit(r, HVSIM_MSG_VM_INFO, &info, sizeof(info));
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
    int rc = 0;

    memcpy(&m, r->body, sizeof(m));
    p = vm_ref(r, m.ref, HVSIM_MSG_VM_RM, &rc);
    if (p == NULL)
        return rc;
    id = p->id;
    broadcast(r->s, &id, HVSIM_EV_REMOVED);
    if (r->s->m.set.reset_kills)
        signal_vm(r->s, p, SIGKILL);
    disconnect_vm(r->s, p);
    close_part(r->s, p);
    model_vm_remove(&r->s->m, p);
    return admin_commit(r, HVSIM_MSG_VM_RM, &m, sizeof(m));
}

int h_vm_op(struct req *r)
{
    struct hvsim_msg_vm_op m;
    hvsim_vm_info_t info;
    struct part *p;
    char err[160];
    int rc = 0;

    memcpy(&m, r->body, sizeof(m));
    m.op[sizeof(m.op) - 1] = '\0';
    p = vm_ref(r, m.ref, HVSIM_MSG_VM_INFO, &rc);
    if (p == NULL)
        return rc;
    if (strcmp(m.op, "start") == 0 || strcmp(m.op, "resume") == 0) {
        if (strcmp(m.op, "resume") == 0 && p->state != HVSIM_VM_PAUSED) {
            snprintf(err, sizeof(err), "VM '%s' is not paused", p->name);
            return reply_err(r->c, HVSIM_MSG_VM_INFO, r->h.seq, -EINVAL, err);
        }
        if (p->state == HVSIM_VM_PAUSED && r->s->m.set.pause_freezes)
            signal_vm(r->s, p, SIGCONT);
        if (p->state == HVSIM_VM_PAUSED)
            broadcast(r->s, &p->id, HVSIM_EV_RESUME);
        p->state = HVSIM_VM_RUNNING;
    } else if (strcmp(m.op, "pause") == 0) {
        if (p->state != HVSIM_VM_RUNNING) {
            snprintf(err, sizeof(err), "VM '%s' is not running", p->name);
            return reply_err(r->c, HVSIM_MSG_VM_INFO, r->h.seq, -EINVAL, err);
        }
        p->state = HVSIM_VM_PAUSED;
        broadcast(r->s, &p->id, HVSIM_EV_PAUSE);
        if (r->s->m.set.pause_freezes)
            signal_vm(r->s, p, SIGSTOP);
    } else if (strcmp(m.op, "reset") == 0 || strcmp(m.op, "off") == 0) {
        int off = m.op[0] == 'o';

        if (p->state == HVSIM_VM_PAUSED && r->s->m.set.pause_freezes)
            signal_vm(r->s, p, SIGCONT);
        p->state = off ? HVSIM_VM_OFF : HVSIM_VM_RUNNING;
        broadcast(r->s, &p->id, off ? HVSIM_EV_OFF : HVSIM_EV_RESET);
        if (r->s->m.set.reset_kills)
            signal_vm(r->s, p, SIGKILL);
    } else {
        snprintf(err, sizeof(err), "VM operation '%s': expected start, pause, resume, reset or off", m.op);
        return reply_err(r->c, HVSIM_MSG_VM_INFO, r->h.seq, -EINVAL, err);
    }
    vm_info(&r->s->m, p, &info);
    return admin_commit(r, HVSIM_MSG_VM_INFO, &info, sizeof(info));
}

int h_vm_list(struct req *r)
{
    struct hvsim_msg_count cnt = { .count = (uint32_t)r->s->m.nvms };
    size_t i, max = (HVSIM_MSG_MAX - 64) / sizeof(hvsim_vm_info_t);
    hvsim_vm_info_t *v;
    int rc;

    if (r->s->m.nvms > max)
        cnt.count = (uint32_t)max;
    v = calloc(cnt.count ? cnt.count : 1, sizeof(*v));
    if (v == NULL)
        return reply_err(r->c, HVSIM_MSG_VM_LIST_REPLY, r->h.seq, -ENOMEM, NULL);
    for (i = 0; i < cnt.count; i++)
        vm_info(&r->s->m, r->s->m.vms[i], &v[i]);
    rc = reply_extra(r->c, HVSIM_MSG_VM_LIST_REPLY, r->h.seq, &cnt, sizeof(cnt), v, cnt.count * sizeof(*v));
    free(v);
    return rc;
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

int h_svc_add(struct req *r)
{
    hvsim_service_info_t m;
    int rc;

    memcpy(&m, r->body, sizeof(m));
    if (!element_name_ok(m.element_name, sizeof(m.element_name)))
        return reply_err(r->c, HVSIM_MSG_SVC_ADD, r->h.seq, -EINVAL,
                         "ElementName: expected at most 255 bytes without control characters");
    rc = model_service_add(&r->s->m, &m.id, m.element_name);
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_SVC_ADD, r->h.seq, rc, NULL);
    return admin_commit(r, HVSIM_MSG_SVC_ADD, &m, sizeof(m));
}

int h_svc_rm(struct req *r)
{
    struct hvsim_msg_guid m;
    char text[HVSIM_GUID_STRLEN], err[128];

    memcpy(&m, r->body, sizeof(m));
    if (model_service_rm(&r->s->m, &m.id) < 0) {
        snprintf(err, sizeof(err), "service %s is not registered", hvsim_guid_format(&m.id, text));
        return reply_err(r->c, HVSIM_MSG_SVC_RM, r->h.seq, -ENOENT, err);
    }
    return admin_commit(r, HVSIM_MSG_SVC_RM, &m, sizeof(m));
}

int h_svc_list(struct req *r)
{
    struct hvsim_msg_count cnt = { .count = (uint32_t)r->s->m.nservices };
    size_t max = (HVSIM_MSG_MAX - 64) / sizeof(hvsim_service_info_t);

    if (r->s->m.nservices > max)
        cnt.count = (uint32_t)max;
    return reply_extra(r->c, HVSIM_MSG_SVC_LIST_REPLY, r->h.seq, &cnt, sizeof(cnt), r->s->m.services,
                       cnt.count * sizeof(hvsim_service_info_t));
}

int h_svc_import(struct req *r)
{
    struct hvsim_msg_count cnt;
    const hvsim_service_info_t *v;
    size_t i;
    int rc;

    memcpy(&cnt, r->body, sizeof(cnt));
    if ((size_t)r->h.len - sizeof(cnt) != (size_t)cnt.count * sizeof(hvsim_service_info_t))
        return reply_err(r->c, HVSIM_MSG_SVC_IMPORT, r->h.seq, -EPROTO, "import: count does not match the length");
    v = (const hvsim_service_info_t *)(r->body + sizeof(cnt));
    /* All or nothing: check every entry before changing anything. */
    for (i = 0; i < cnt.count; i++)
        if (!element_name_ok(v[i].element_name, sizeof(v[i].element_name)))
            return reply_err(r->c, HVSIM_MSG_SVC_IMPORT, r->h.seq, -EINVAL, "import: bad ElementName");
    for (i = 0; i < cnt.count; i++) {
        hvsim_service_info_t e;

        memcpy(&e, &v[i], sizeof(e));
        rc = model_service_add(&r->s->m, &e.id, e.element_name);
        if (rc < 0)
            return reply_err(r->c, HVSIM_MSG_SVC_IMPORT, r->h.seq, rc, NULL);
    }
    return admin_commit(r, HVSIM_MSG_SVC_IMPORT, &cnt, sizeof(cnt));
}

int h_hcs_set(struct req *r)
{
    struct hvsim_msg_hcs_set m;
    struct part *p;
    int rc = 0;

    memcpy(&m, r->body, sizeof(m));
    p = vm_ref(r, m.vm, HVSIM_MSG_HCS_SET, &rc);
    if (p == NULL)
        return rc;
    if (p->kind != HVSIM_VM_HCS)
        return reply_err(r->c, HVSIM_MSG_HCS_SET, r->h.seq, -EINVAL,
                         "HvSocket service tables belong to hcs VMs (vm add --kind hcs)");
    rc = model_hcs_set(p, &m.svc);
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_HCS_SET, r->h.seq, rc, NULL);
    return admin_commit(r, HVSIM_MSG_HCS_SET, &m, sizeof(m));
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
    char err[256];
    int rc;

    memcpy(&m, r->body, sizeof(m));
    m.name[sizeof(m.name) - 1] = '\0';
    m.value[sizeof(m.value) - 1] = '\0';
    rc = settings_set(&r->s->m.set, m.name, m.value, err, sizeof(err));
    if (rc < 0)
        return reply_err(r->c, HVSIM_MSG_SETTING_REPLY, r->h.seq, rc, err);
    return admin_commit(r, HVSIM_MSG_SETTING_REPLY, &m, sizeof(m));
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
