/* SPDX-License-Identifier: MIT */
/*
 * backend_noadmin.c: the administration a target without hvsimd's admin
 * socket cannot do, for the two backends that run on real systems (the QEMU
 * guest's backend_native.c and Winsock's backend_winsock.c): VM operations,
 * settings, HCS service tables and moving a process to another VM are all
 * -ENOTSUP there, so the cases that need them skip. backend_hvsim.c does them
 * all and is never linked with this file.
 */
#include "backend.h"

int cf_admin_vm_op(const cf_guid_t *vm, const char *op)
{
    (void)vm;
    (void)op;
    return -ENOTSUP;
}

int cf_admin_set(const char *setting, const char *value)
{
    (void)setting;
    (void)value;
    return -ENOTSUP;
}

int cf_admin_hcs(const cf_guid_t *vm, const cf_guid_t *svc, int bind_deny, int connect_deny, int allow_wildcard,
                 int disabled)
{
    (void)vm;
    (void)svc;
    (void)bind_deny;
    (void)connect_deny;
    (void)allow_wildcard;
    (void)disabled;
    return -ENOTSUP;
}

int cf__admin_vm_restore(const cf_guid_t *vm)
{
    (void)vm;
    return -ENOTSUP;
}

int cf_join_vm(const cf_guid_t *vm)
{
    (void)vm;
    return -ENOTSUP; /* a real guest's processes cannot change VM */
}
