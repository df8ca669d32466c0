/* SPDX-License-Identifier: MIT */
/*
 * ticketset.c: which tickets a listener has taken, so a ticket is good for
 * one connection only, however many come after it (a list of the last 64 ids
 * let a replay through once it had scrolled out).
 *
 * The daemon numbers tickets in the order it issues them, and a connector
 * uses its ticket the moment it gets it, so the ids a listener sees climb. A
 * bitmap over the last HVSIM__TICKET_WINDOW ids records the ones taken: an
 * id below the window is refused as stale, one above it slides the window.
 * The memory is fixed (8 KiB a listener) whatever the connection rate: a
 * table of every id until it expired grew with the rate (16 bytes an id,
 * ten seconds of them), and with it every busy listener's memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define WORDS (HVSIM__TICKET_WINDOW / 64)

int hvsim__ticketset_reserve(struct hvsim__ticketset *t)
{
    if (t->bits != NULL)
        return 0;
    t->bits = calloc(WORDS, sizeof(*t->bits));
    if (t->bits == NULL)
        return -ENOMEM;
    t->base = 0;
    return 0;
}

/* Move the window so that id is its last slot, forgetting what falls out. */
static void slide(struct hvsim__ticketset *t, uint64_t id)
{
    uint64_t new_base = (id - HVSIM__TICKET_WINDOW + 64) & ~63ull, shift = (new_base - t->base) / 64, i;

    if (shift >= WORDS) {
        memset(t->bits, 0, WORDS * sizeof(*t->bits));
    } else {
        for (i = 0; i + shift < WORDS; i++)
            t->bits[i] = t->bits[i + shift];
        for (; i < WORDS; i++)
            t->bits[i] = 0;
    }
    t->base = new_base;
}

int hvsim__ticketset_take(struct hvsim__ticketset *t, uint64_t id, uint64_t expires_ns, uint64_t now)
{
    uint64_t off, mask;

    if (id == 0 || expires_ns < now)
        return 0;
    if (t->bits == NULL && hvsim__ticketset_reserve(t) < 0)
        return -ENOMEM;
    if (id < t->base)
        return 0; /* older than the window: it could have been taken, so it is refused */
    if (id - t->base >= HVSIM__TICKET_WINDOW)
        slide(t, id);
    off = id - t->base;
    mask = 1ull << (off % 64);
    if (t->bits[off / 64] & mask)
        return 0;
    t->bits[off / 64] |= mask;
    return 1;
}

void hvsim__ticketset_free(struct hvsim__ticketset *t)
{
    free(t->bits);
    t->bits = NULL;
    t->base = 0;
}
