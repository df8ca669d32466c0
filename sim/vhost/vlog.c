/* SPDX-License-Identifier: MIT */
/*
 * vlog.c: the backend's stderr log (see vlog.h). One fprintf per line, so
 * lines from a log shared with other processes do not interleave mid-line.
 */
#include <stdarg.h>
#include <stdio.h>

#include "vlog.h"

int vlog_level = VLOG_ERR;

static void vline(const char *fmt, va_list ap)
{
    char line[512];

    vsnprintf(line, sizeof(line), fmt, ap);
    fprintf(stderr, "hvsim-vhost: %s\n", line);
}

void vlog(int level, const char *fmt, ...)
{
    va_list ap;

    if (level > vlog_level)
        return;
    va_start(ap, fmt);
    vline(fmt, ap);
    va_end(ap);
}

void vlog_peer(const char *fmt, ...)
{
    static unsigned long count;
    va_list ap;

    count++;
    if (vlog_level < VLOG_ERR || (count > VLOG_PEER_BURST && count % 1000 != 0))
        return;
    va_start(ap, fmt);
    vline(fmt, ap);
    va_end(ap);
    if (count == VLOG_PEER_BURST)
        fprintf(stderr, "hvsim-vhost: (further peer errors: one line in 1000)\n");
}
