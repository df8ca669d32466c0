/* SPDX-License-Identifier: MIT */
/*
 * mutant.c: which mutant a mutant build runs (hvproto/mutants.h). Empty in
 * every other build: the product carries no test hook.
 */
#ifdef HVSIM_MUTANTS
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hvproto/mutants.h"

static const struct {
    const char *name, *rule, *wrong;
} rows[HVSIM_MUT_COUNT] = {
    [HVSIM_MUT_NONE] = { "", "", "" },
#define X(id, n, r, w) [HVSIM_MUT_##id] = { n, r, w },
    HVSIM_MUTANT_MAP(X)
#undef X
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int chosen = -1; /* -1: not yet read from the environment */

static int find(const char *name)
{
    int i;

    for (i = 1; i < HVSIM_MUT_COUNT; i++)
        if (strcmp(rows[i].name, name) == 0)
            return i;
    return -1;
}

static void from_env(void)
{
    const char *e = getenv("HVSIM_MUTANT");

    if (chosen < 0)
        chosen = e && *e ? find(e) : HVSIM_MUT_NONE;
    /* An unknown name must not pass for a clean run: every rule breaks. */
}

int hvsim__mutant_active(enum hvsim_mutant m)
{
    pthread_once(&once, from_env);
    return chosen < 0 || (int)m == chosen;
}

int hvsim__mutant_select(const char *name)
{
    int i = name == NULL ? HVSIM_MUT_NONE : find(name);

    if (i < 0)
        return -EINVAL;
    chosen = i;
    return 0;
}

void hvsim__mutant_row(unsigned i, const char **name, const char **rule, const char **wrong)
{
    if (i >= HVSIM_MUT_COUNT)
        i = HVSIM_MUT_NONE;
    *name = rows[i].name;
    *rule = rows[i].rule;
    *wrong = rows[i].wrong;
}
#else
/* ISO C wants a translation unit to declare something. */
typedef int hvsim_no_mutants;
#endif
