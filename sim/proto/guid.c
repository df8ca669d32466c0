/* SPDX-License-Identifier: MIT */
/*
 * guid.c: GUID text <-> Windows byte order, and the Linux port <-> service
 * GUID mapping of hv_sock (reference 3.1).
 *
 * libuuid parses and formats RFC 4122 text into big-endian bytes; Windows keeps
 * Data1/Data2/Data3 little-endian in memory, so the first three fields are
 * converted here. This is the one place that knows about the difference.
 */
#include <ctype.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>

#include "hvsim/hvsim.h"
#include "hvproto/util.h"

int hvsim_guid_parse(const char *text, GUID *out)
{
    char buf[HVSIM_GUID_STRLEN];
    size_t n;
    uuid_t u;

    if (text == NULL || out == NULL)
        return -EINVAL;
    n = strlen(text);
    if (n == 38 && text[0] == '{' && text[37] == '}') {
        memcpy(buf, text + 1, 36);
        buf[36] = '\0';
    } else if (n == 36) {
        memcpy(buf, text, 37);
    } else {
        return -EINVAL;
    }
    /* uuid_parse accepts only the exact 8-4-4-4-12 hex layout; keep it that strict. */
    if (uuid_parse(buf, u) != 0)
        return -EINVAL;
    out->Data1 = (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
    out->Data2 = (uint16_t)(u[4] << 8 | u[5]);
    out->Data3 = (uint16_t)(u[6] << 8 | u[7]);
    memcpy(out->Data4, u + 8, 8);
    return 0;
}

char *hvsim_guid_format(const GUID *g, char *out)
{
    uuid_t u;

    u[0] = (uint8_t)(g->Data1 >> 24);
    u[1] = (uint8_t)(g->Data1 >> 16);
    u[2] = (uint8_t)(g->Data1 >> 8);
    u[3] = (uint8_t)g->Data1;
    u[4] = (uint8_t)(g->Data2 >> 8);
    u[5] = (uint8_t)g->Data2;
    u[6] = (uint8_t)(g->Data3 >> 8);
    u[7] = (uint8_t)g->Data3;
    memcpy(u + 8, g->Data4, 8);
    uuid_unparse_lower(u, out);
    return out;
}

int hvsim_guid_equal(const GUID *a, const GUID *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

GUID hvsim_guid_from_port(uint32_t port)
{
    GUID g = HV_GUID_VSOCK_TEMPLATE;

    g.Data1 = port;
    return g;
}

int hvsim_guid_to_port(const GUID *g, uint32_t *port)
{
    /* hv_sock's is_valid_srv_id(): bytes 4..15 must equal the template. */
    if (memcmp((const uint8_t *)g + 4, (const uint8_t *)&HV_GUID_VSOCK_TEMPLATE + 4, 12) != 0)
        return 0;
    if (port != NULL)
        *port = g->Data1;
    return 1;
}

static const struct {
    const char *name;
    const GUID *id;
} well_known[] = {
    { "zero", &HV_GUID_ZERO },
    { "wildcard", &HV_GUID_ZERO },
    { "broadcast", &HV_GUID_BROADCAST },
    { "children", &HV_GUID_CHILDREN },
    { "loopback", &HV_GUID_LOOPBACK },
    { "parent", &HV_GUID_PARENT },
    { "silohost", &HV_GUID_SILOHOST },
};

int hvsim_vmid_parse_name(const char *text, GUID *out)
{
    size_t i;

    if (text == NULL || out == NULL)
        return -EINVAL;
    for (i = 0; i < sizeof(well_known) / sizeof(well_known[0]); i++) {
        if (strcasecmp(text, well_known[i].name) == 0) {
            *out = *well_known[i].id;
            return 0;
        }
    }
    return hvsim_guid_parse(text, out);
}

const char *hvsim__vmid_name(const GUID *g)
{
    size_t i;

    for (i = 1; i < sizeof(well_known) / sizeof(well_known[0]); i++)
        if (hvsim_guid_equal(g, well_known[i].id))
            return well_known[i].name;
    return NULL;
}

/* Random (version 4) GUIDs, from a pool refilled 4 KiB at a time: hvsimd
 * makes one per connection, and a getrandom() call each (libuuid made six
 * system calls) was most of what a connection cost it. The lock makes it
 * safe for threads; a forked child drops the pool so it never repeats its
 * parent's GUIDs. */
static struct {
    pthread_mutex_t lock;
    uint8_t bytes[4096];
    size_t used;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER, .used = sizeof(pool.bytes) };
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_drop(void)
{
    pool.used = sizeof(pool.bytes);
    pthread_mutex_init(&pool.lock, NULL);
}

static void pool_init(void)
{
    pthread_atfork(NULL, NULL, pool_drop);
}

int hvsim__guid_random(GUID *out)
{
    uint8_t b[16] = { 0 };
    int rc = 0;

    pthread_once(&pool_once, pool_init);
    pthread_mutex_lock(&pool.lock);
    if (pool.used + sizeof(b) > sizeof(pool.bytes)) {
        rc = hvsim__random(pool.bytes, sizeof(pool.bytes));
        if (rc == 0)
            pool.used = 0;
    }
    if (rc == 0) {
        memcpy(b, pool.bytes + pool.used, sizeof(b));
        /* Spent bytes are not left behind in the pool. */
        memset(pool.bytes + pool.used, 0, sizeof(b));
        pool.used += sizeof(b);
    }
    pthread_mutex_unlock(&pool.lock);
    if (rc < 0)
        return rc;
    memcpy(out, b, sizeof(*out));
    /* RFC 4122 4.4: version 4 in time_hi_and_version (Data3), variant 10 in
     * clock_seq_hi (Data4[0]); the text form then reads xxxxxxxx-xxxx-4xxx-[89ab]xxx. */
    out->Data3 = (uint16_t)((out->Data3 & 0x0fffu) | 0x4000u);
    out->Data4[0] = (uint8_t)((out->Data4[0] & 0x3fu) | 0x80u);
    return 0;
}
