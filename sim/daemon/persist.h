/* SPDX-License-Identifier: MIT */
/*
 * persist.h: the daemon's state on disk (VMs, the service registry, HCS
 * service tables, settings), written atomically so that a crash at any moment
 * leaves either the old or the new file, never a mixture.
 */
#ifndef HVSIM_PERSIST_H
#define HVSIM_PERSIST_H

#include <stddef.h>

#include "hvsim/hvsim.h"

typedef struct persist_vm {
    hvsim_vm_info_t info; /* nprocs is not persisted */
    hvsim_hcs_service_t *hcs;
    size_t nhcs;
} persist_vm_t;

typedef struct persist_setting {
    char name[64];
    char value[192];
} persist_setting_t;

typedef struct persist {
    GUID host_id;
    persist_vm_t *vms;
    size_t nvms;
    hvsim_service_info_t *services;
    size_t nservices;
    persist_setting_t *settings;
    size_t nsettings;
} persist_t;

/* Load DIR/state. Returns 0, -ENOENT (no file yet: *p is empty), -EINVAL (corrupt:
 * err names the line and the problem; the file is left untouched), -errno. */
int persist_load(const char *dir, persist_t *p, char *err, size_t errlen);
/* Save to DIR/state atomically (write DIR/state.tmp, fsync, rename, fsync DIR). */
int persist_save(const char *dir, const persist_t *p, char *err, size_t errlen);
/* Text form, for save and for tests and fuzzing: parse from memory. */
int persist_parse(const char *text, size_t len, persist_t *p, char *err, size_t errlen);
/* Serialize into a malloc'ed NUL-terminated string. */
int persist_format(const persist_t *p, char **out);
void persist_free(persist_t *p);

#endif /* HVSIM_PERSIST_H */
