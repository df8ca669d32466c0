/* SPDX-License-Identifier: MIT */
/*
 * ticketset.c: the ids of the tickets a listener has taken, kept until each
 * one expires, so a ticket is good for one connection only, however many
 * come after it (a fixed window of recent ids let a replay through once it
 * had scrolled out). An open-addressing table of (id, expiry); expired
 * entries are dropped whenever the table is rebuilt.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

static int put(struct hvsim__ticketset *t, uint64_t id, uint64_t expires_ns)
{
    size_t mask = t->cap - 1, i = (size_t)(id * 0x9e3779b97f4a7c15ull >> 20) & mask;

    while (t->slots[i].id != 0) {
        if (t->slots[i].id == id)
            return 0;
        i = (i + 1) & mask;
    }
    t->slots[i].id = id;
    t->slots[i].expires_ns = expires_ns;
    t->n++;
    return 1;
}

/* Rebuild at a size with room for twice the live entries, forgetting the
 * expired ones. */
static int rebuild(struct hvsim__ticketset *t, uint64_t now)
{
    struct hvsim__ticketset old = *t;
    size_t live = 0, cap = 64, i;

    for (i = 0; i < old.cap; i++)
        live += old.slots[i].id != 0 && old.slots[i].expires_ns >= now;
    while (cap < 4 * (live + 1))
        cap *= 2;
    t->slots = calloc(cap, sizeof(*t->slots));
    if (t->slots == NULL) {
        *t = old;
        return -ENOMEM;
    }
    t->cap = cap;
    t->n = 0;
    for (i = 0; i < old.cap; i++)
        if (old.slots[i].id != 0 && old.slots[i].expires_ns >= now)
            put(t, old.slots[i].id, old.slots[i].expires_ns);
    free(old.slots);
    return 0;
}

int hvsim__ticketset_take(struct hvsim__ticketset *t, uint64_t id, uint64_t expires_ns, uint64_t now)
{
    if (id == 0 || expires_ns < now)
        return 0;
    if ((t->n + 1) * 2 > t->cap && rebuild(t, now) < 0)
        return -ENOMEM;
    return put(t, id, expires_ns);
}

int hvsim__ticketset_reserve(struct hvsim__ticketset *t, size_t cap)
{
    if (t->slots != NULL)
        return 0;
    t->slots = calloc(cap, sizeof(*t->slots));
    if (t->slots == NULL)
        return -ENOMEM;
    t->cap = cap;
    t->n = 0;
    return 0;
}

void hvsim__ticketset_free(struct hvsim__ticketset *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->n = 0;
}
