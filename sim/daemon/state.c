/* SPDX-License-Identifier: MIT */
/*
 * state.c: the model to and from its state file. persist.c knows the file
 * (format, atomic save) and nothing of the model, so that it can be tested and
 * fuzzed alone; this glue copies VMs, services and settings across.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"
#include "server_int.h"

int save_state(struct server *s, char *err, size_t errlen)
{
    persist_t p = { 0 };
    persist_setting_t *set = NULL;
    size_t i, n = settings_count();
    int rc;

    if (s->state_dir[0] == '\0')
        return 0;
    p.host_id = s->m.host.id;
    p.nvms = s->m.nvms;
    p.vms = calloc(p.nvms ? p.nvms : 1, sizeof(*p.vms));
    set = calloc(n, sizeof(*set));
    if (p.vms == NULL || set == NULL) {
        free(p.vms);
        free(set);
        return -ENOMEM;
    }
    for (i = 0; i < s->m.nvms; i++) {
        struct part *v = s->m.vms[i];

        p.vms[i].info.id = v->id;
        memcpy(p.vms[i].info.name, v->name, sizeof(v->name));
        p.vms[i].info.kind = v->kind;
        p.vms[i].info.state = v->state;
        p.vms[i].info.cid = v->cid;
        p.vms[i].info.transport = v->transport;
        p.vms[i].info.kernel = v->kernel;
        p.vms[i].info.owner = v->owner;
        memcpy(p.vms[i].info.groups, v->groups, sizeof(v->groups));
        p.vms[i].hcs = v->hcs;
        p.vms[i].nhcs = v->nhcs;
    }
    p.services = s->m.services;
    p.nservices = s->m.nservices;
    for (i = 0; i < n; i++) {
        const char *name, *choices, *conf;

        settings_doc(i, &name, &choices, &conf);
        snprintf(set[i].name, sizeof(set[i].name), "%s", name);
        settings_get(&s->m.set, name, set[i].value, sizeof(set[i].value));
    }
    p.settings = set;
    p.nsettings = n;
    rc = persist_save(s->state_dir, &p, err, errlen);
    free(p.vms);
    free(set);
    return rc;
}

int load_state(struct server *s, char *err, size_t errlen)
{
    persist_t p = { 0 };
    size_t i, j;
    int rc;

    if (s->state_dir[0] == '\0')
        return 0;
    rc = persist_load(s->state_dir, &p, err, errlen);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    if (!hvsim_guid_equal(&p.host_id, &HV_GUID_ZERO))
        s->m.host.id = p.host_id;
    for (i = 0; i < p.nsettings && rc == 0; i++)
        rc = settings_set(&s->m.set, p.settings[i].name, p.settings[i].value, err, errlen);
    for (i = 0; i < p.nservices && rc == 0; i++)
        rc = model_service_add(&s->m, &p.services[i].id, p.services[i].element_name);
    for (i = 0; i < p.nvms && rc == 0; i++) {
        struct part *v;

        rc = model_vm_add(&s->m, p.vms[i].info.name, &p.vms[i].info.id, p.vms[i].info.kind, &v, err, errlen);
        if (rc < 0)
            break;
        v->state = p.vms[i].info.state;
        v->cid = p.vms[i].info.cid;
        rc = model_vm_set_transport(v, p.vms[i].info.transport, p.vms[i].info.kernel, err, errlen);
        if (rc == 0)
            rc = model_vm_set_owner(v, &p.vms[i].info.owner, err, errlen);
        if (rc == 0)
            rc = model_vm_set_groups(v, p.vms[i].info.groups, err, errlen);
        for (j = 0; j < p.vms[i].nhcs && rc == 0; j++)
            rc = model_hcs_set(v, &p.vms[i].hcs[j]);
    }
    persist_free(&p);
    return rc;
}
