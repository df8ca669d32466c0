/* SPDX-License-Identifier: MIT */
/*
 * fd_count.h: how many fds this process has open, for the fuzz targets that
 * check an input leaks none (the count before and after must be equal).
 */
#ifndef HVSIM_FUZZ_FD_COUNT_H
#define HVSIM_FUZZ_FD_COUNT_H

#include <dirent.h>
#include <stdlib.h>

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        abort();
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

#endif /* HVSIM_FUZZ_FD_COUNT_H */
