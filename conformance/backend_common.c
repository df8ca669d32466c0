/* SPDX-License-Identifier: MIT */
/*
 * backend_common.c: what every backend shares, built into all three agents
 * (the simulator's, the static QEMU guest's and the Windows one): the
 * well-known GUIDs, GUID text, the one errno table (symbolic name and Winsock
 * code of each errno the suite can meet) and a monotonic clock. It needs
 * neither libhvsim nor libuuid, so the static and Windows builds link it as is.
 */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "hvsim/errmap.h" /* after backend.h, which supplies the errno names MinGW lacks */

#ifdef _WIN32
#include <windows.h>
#else
#include <time.h>
#endif

#define G(d1, d2, d3, b0, b1, b2, b3, b4, b5, b6, b7) \
    { (d1), (d2), (d3), { (b0), (b1), (b2), (b3), (b4), (b5), (b6), (b7) } }

/* docs/reference/hyperv-sockets.md 1.3. */
const cf_guid_t CF_GUID_ZERO = G(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
const cf_guid_t CF_GUID_BROADCAST =
    G(0xffffffffu, 0xffff, 0xffff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
const cf_guid_t CF_GUID_CHILDREN = G(0x90db8b89u, 0x0d35, 0x4f79, 0x8c, 0xe9, 0x49, 0xea, 0x0a, 0xc8, 0xb7, 0xcd);
const cf_guid_t CF_GUID_LOOPBACK = G(0xe0e16197u, 0xdd56, 0x4a10, 0x91, 0x95, 0x5e, 0xe7, 0xa1, 0x55, 0xa8, 0x38);
const cf_guid_t CF_GUID_PARENT = G(0xa42e7cdau, 0xd03f, 0x480c, 0x9c, 0xc2, 0xa4, 0xde, 0x20, 0xab, 0xb8, 0x78);
const cf_guid_t CF_GUID_SILOHOST = G(0x36bd0c5cu, 0x7276, 0x4223, 0x88, 0xba, 0x7d, 0x03, 0xb6, 0x54, 0xc5, 0x68);

cf_guid_t cf_guid_port(uint32_t port)
{
    cf_guid_t g = G(0, 0xfacb, 0x11e6, 0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3);

    g.d1 = port;
    return g;
}

/* Data2 is not 0xfacb, so no test service is ever mistaken for a vsock port;
 * the tail spells "hvsimcf" so a stray registry entry says who left it. */
cf_guid_t cf_guid_test(uint32_t n)
{
    cf_guid_t g = G(0, 0xcf00, 0x4e57, 0x9d, 0x68, 0x76, 0x73, 0x69, 0x6d, 0x63, 0x66);

    g.d1 = n;
    return g;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", optionally in braces. */
int cf_guid_parse(const char *text, cf_guid_t *out)
{
    uint8_t b[16];
    size_t len, i, n = 0;
    const char *p;

    if (text == NULL || out == NULL)
        return -EINVAL;
    len = strlen(text);
    if (len == 38 && text[0] == '{' && text[37] == '}') {
        text++;
        len = 36;
    }
    if (len != 36)
        return -EINVAL;
    for (i = 0, p = text; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (p[i] != '-')
                return -EINVAL;
            continue;
        }
        if (hexval(p[i]) < 0 || hexval(p[i + 1]) < 0)
            return -EINVAL;
        b[n++] = (uint8_t)(hexval(p[i]) << 4 | hexval(p[i + 1]));
        i++;
    }
    out->d1 = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    out->d2 = (uint16_t)(b[4] << 8 | b[5]);
    out->d3 = (uint16_t)(b[6] << 8 | b[7]);
    memcpy(out->d4, b + 8, 8);
    return 0;
}

void cf_guid_format(const cf_guid_t *g, char out[37])
{
    snprintf(out, 37, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", (unsigned)g->d1, (unsigned)g->d2,
             (unsigned)g->d3, g->d4[0], g->d4[1], g->d4[2], g->d4[3], g->d4[4], g->d4[5], g->d4[6], g->d4[7]);
}

int cf_guid_eq(const cf_guid_t *a, const cf_guid_t *b)
{
    return a->d1 == b->d1 && a->d2 == b->d2 && a->d3 == b->d3 && memcmp(a->d4, b->d4, 8) == 0;
}

/*
 * The errno table is libhvsim's (HVSIM_ERRNO_MAP, sim/include/hvsim/errmap.h):
 * each errno a case may expect, its name, and the Winsock code a Windows
 * program sees for it. Where two names share a value on a platform (EAGAIN
 * and EWOULDBLOCK, EOPNOTSUPP and ENOTSUP on Linux) the first row names it,
 * and the first row with a Winsock code is the one that code maps back to.
 */
#define ROW(name, e, wsa_code, wsa_name, msg) { e, wsa_code, #name },
static const struct {
    int err;
    int wsa;
    const char *name;
} errs[] = { HVSIM_ERRNO_MAP(ROW) };
#undef ROW

const char *cf_errno_name(int err)
{
    size_t i;

    if (err < 0)
        err = -err;
    for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
        if (errs[i].err == err)
            return errs[i].name;
    return "UNKNOWN";
}

int cf__errno_from_wsa(int wsa)
{
    size_t i;

    if (wsa == 0)
        return 0;
    for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
        if (errs[i].wsa == wsa)
            return errs[i].err;
    /* Anything else (WSANOTINITIALISED, WSASYSNOTREADY, ...) has no socket
     * meaning a case could expect: EIO, so it reads as an error, never a match. */
    return EIO;
}

uint64_t cf_now_ms(void)
{
#ifdef _WIN32
    return (uint64_t)GetTickCount64();
#else
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
#endif
}
