/* SPDX-License-Identifier: MIT */
/*
 * cases.c: the catalogue as one list, walking the per-area arrays of cases/
 * in a fixed order (the order of the reference's checklist: addresses first,
 * life cycle last; arrays added later come after, so numbers never move), so
 * every agent and report numbers cases alike.
 */
#include <stddef.h>

#include "../catalogue.h"

static const struct cf_case *const areas[] = {
    cf_cases_addressing, cf_cases_binding, cf_cases_connecting, cf_cases_registry,
    cf_cases_data, cf_cases_shutdown, cf_cases_readiness, cf_cases_lifecycle,
    cf_cases_msg, /* appended: the send/receive family */
    cf_cases_vsock, /* appended: a Linux guest's transport and kernel (issue 13) */
    cf_cases_seqpacket, /* appended: SOCK_SEQPACKET over vsock (issue 15) */
};

#define NAREAS (sizeof(areas) / sizeof(areas[0]))

static size_t area_len(const struct cf_case *a)
{
    size_t n = 0;

    while (a[n].id != NULL)
        n++;
    return n;
}

size_t cf_catalogue_size(void)
{
    size_t i, n = 0;

    for (i = 0; i < NAREAS; i++)
        n += area_len(areas[i]);
    return n;
}

const struct cf_case *cf_catalogue_at(size_t i)
{
    size_t a;

    for (a = 0; a < NAREAS; a++) {
        size_t n = area_len(areas[a]);

        if (i < n)
            return &areas[a][i];
        i -= n;
    }
    return NULL;
}
