/* SPDX-License-Identifier: MIT */
/*
 * agent.h: what the agent's own files share (agent.c, util.c, cases.c,
 * control.c); cases and backends never include it.
 *
 * The framework undoes what a case changed on the target: the backends' admin
 * calls report each change (cf__note_admin, backend.h) into a notes table that
 * lives where the agent can read it after the case ended, in shared memory
 * over a forked case child, in plain memory on Windows.
 */
#ifndef HVSIM_CF_AGENT_H
#define HVSIM_CF_AGENT_H

#include <stdio.h>

#include "../catalogue.h"

#define CF_NOTES_MAX 128

struct cf_note {
    int kind; /* enum cf_note_kind */
    cf_guid_t a, b;
    /* CF_NOTE_SET: "name=old value"; CF_NOTE_SERVICE_RM: the element name the
     * service had (removed, or renamed by an add over it); CF_NOTE_VM_OP: the op */
    char text[320];
};

struct cf_notes {
    int n;
    int overflow; /* more changes than CF_NOTES_MAX: some cannot be undone */
    struct cf_note v[CF_NOTES_MAX];
};

/* Where cf__note_admin records, or NULL when no case runs in this process. */
extern struct cf_notes *cf__notes;
/* 0 host, 1 guest, -1 not an agent; the guest side may not administer. */
extern int cf__side;

/* Undo the notes, newest first; each problem is reported through warn. */
void cf__admin_revert(struct cf_notes *notes, void (*warn)(const char *msg));

#endif /* HVSIM_CF_AGENT_H */
