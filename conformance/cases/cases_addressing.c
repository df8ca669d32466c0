/* SPDX-License-Identifier: MIT */
/*
 * cases_addressing.c: the address formats and the socket() arguments
 * (docs/reference/hyperv-sockets.md 1.1-1.3, 3.1, 4.4, 6.1): SOCKADDR_HV's 36-byte layout
 * and GUID byte order as getsockname reports them, the well-known VmIds,
 * malformed addresses in both personalities, and what socket() refuses.
 *
 * The malformed addresses are written byte by byte (cf_bind_raw and
 * cf_connect_raw), never through a structure, so the cases check the layout
 * the documents give rather than the one the build machine's headers assume.
 * A malformed sockaddr_vm gets the kernel's answer (EINVAL from vsock_bind
 * and vsock_connect), which libhvsim's Linux personality gives too.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../catalogue.h"
#include "case_util.h"

/* Family and type numbers as socket() takes them, the same on Windows and
 * Linux (ws2def.h, linux/socket.h). */
#define RAW_AF_INET 2
#define RAW_AF_HYPERV 34
#define RAW_AF_VSOCK 40
#define RAW_SOCK_STREAM 1
#define RAW_SOCK_DGRAM 2
#define RAW_HV_PROTOCOL_RAW 1

#define SOCKADDR_HV_LEN 36
#define SOCKADDR_VM_LEN 16

/* ---- helpers -------------------------------------------------------------------------- */

/* A GUID's 16 bytes in SOCKADDR_HV: Data1/2/3 little-endian, Data4 raw (1.2). */
static void guid_bytes(const cf_guid_t *g, uint8_t *p)
{
    p[0] = (uint8_t)g->d1;
    p[1] = (uint8_t)(g->d1 >> 8);
    p[2] = (uint8_t)(g->d1 >> 16);
    p[3] = (uint8_t)(g->d1 >> 24);
    p[4] = (uint8_t)g->d2;
    p[5] = (uint8_t)(g->d2 >> 8);
    p[6] = (uint8_t)g->d3;
    p[7] = (uint8_t)(g->d3 >> 8);
    memcpy(p + 8, g->d4, 8);
}

static void hv_bytes(uint8_t out[SOCKADDR_HV_LEN], uint16_t family, uint16_t reserved, const cf_guid_t *vm,
                     const cf_guid_t *svc)
{
    out[0] = (uint8_t)family;
    out[1] = (uint8_t)(family >> 8);
    out[2] = (uint8_t)reserved;
    out[3] = (uint8_t)(reserved >> 8);
    guid_bytes(vm, out + 4);
    guid_bytes(svc, out + 20);
}

/* struct sockaddr_vm: family u16, reserved u16, port u32, cid u32, flags u8,
 * zero[3]; little-endian on every machine the suite runs on. */
static void vm_bytes(uint8_t out[SOCKADDR_VM_LEN], uint16_t family, uint32_t cid, uint32_t port)
{
    memset(out, 0, SOCKADDR_VM_LEN);
    out[0] = (uint8_t)family;
    out[1] = (uint8_t)(family >> 8);
    out[4] = (uint8_t)port;
    out[5] = (uint8_t)(port >> 8);
    out[6] = (uint8_t)(port >> 16);
    out[7] = (uint8_t)(port >> 24);
    out[8] = (uint8_t)cid;
    out[9] = (uint8_t)(cid >> 8);
    out[10] = (uint8_t)(cid >> 16);
    out[11] = (uint8_t)(cid >> 24);
}

/* ---- addr.sockaddr-hv-layout ----------------------------------------------------------- */

/* HV_GUID_CHILDREN and HV_GUID_PARENT as the reference's table writes their
 * bytes, and the VSOCK template's tail: if the backend or the target swapped
 * a Data field, getsockname would not give the constants back. */
static const uint8_t children_le[16] = { 0x89, 0x8b, 0xdb, 0x90, 0x35, 0x0d, 0x79, 0x4f,
                                         0x8c, 0xe9, 0x49, 0xea, 0x0a, 0xc8, 0xb7, 0xcd };
static const uint8_t parent_le[16] = { 0xda, 0x7c, 0x2e, 0xa4, 0x3f, 0xd0, 0x0c, 0x48,
                                       0x9c, 0xc2, 0xa4, 0xde, 0x20, 0xab, 0xb8, 0x78 };
static const uint8_t template_tail_le[12] = { 0xcb, 0xfa, 0xe6, 0x11, 0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3 };

static void layout_bytes(uint8_t out[SOCKADDR_HV_LEN], const uint8_t vm_le[16], uint32_t port)
{
    out[0] = 0x22; /* 34, little-endian */
    out[1] = 0x00;
    out[2] = 0x00;
    out[3] = 0x00;
    memcpy(out + 4, vm_le, 16);
    out[20] = (uint8_t)port;
    out[21] = (uint8_t)(port >> 8);
    out[22] = (uint8_t)(port >> 16);
    out[23] = (uint8_t)(port >> 24);
    memcpy(out + 24, template_tail_le, 12);
}

static int hv_layout(struct cf_ctx *ctx, const uint8_t vm_le[16], const cf_guid_t *vm, uint32_t port)
{
    uint8_t a[SOCKADDR_HV_LEN];
    cf_guid_t svc = cf_guid_port(port);
    cf_sock_t s;

    if (cfc_open_sock(ctx, CF_AF_HYPERV, 0, &s) < 0)
        return -1;
    layout_bytes(a, vm_le, port);
    cf_step(ctx, "bind to 36 bytes written by hand");
    CF_CHECK(ctx, cf_bind_raw(s, a, (int)sizeof(a)), 0, "bind");
    if (cfc_hv_name_is(ctx, s, 0, vm, &svc, "socket bound by hand") < 0)
        return -1;
    cf_close(s);
    return 0;
}

static int layout_host(struct cf_ctx *ctx)
{
    return hv_layout(ctx, children_le, &CF_GUID_CHILDREN, ctx->port_base);
}

static int layout_guest(struct cf_ctx *ctx)
{
    uint8_t a[SOCKADDR_VM_LEN];
    uint32_t cid = 0, port = 0;
    cf_sock_t s;

    if (!cfc_is_vsock(ctx))
        return hv_layout(ctx, parent_le, &CF_GUID_PARENT, ctx->port_base + 1);
    if (cfc_open_sock(ctx, CF_AF_VSOCK, 0, &s) < 0)
        return -1;
    vm_bytes(a, RAW_AF_VSOCK, CF_VMADDR_CID_ANY, ctx->port_base + 1);
    cf_step(ctx, "bind to a 16-byte sockaddr_vm written by hand");
    CF_CHECK(ctx, cf_bind_raw(s, a, (int)sizeof(a)), 0, "bind");
    cf_step(ctx, "getsockname after the hand-written bind");
    CF_CHECK(ctx, cf_name_vsock(s, 0, &cid, &port), 0, "getsockname");
    if (port != ctx->port_base + 1)
        return cf_fail(ctx, "getsockname port: expected %u, got %u", ctx->port_base + 1, port);
    if (cid != CF_VMADDR_CID_ANY)
        return cf_fail(ctx, "getsockname CID of a socket bound to VMADDR_CID_ANY: expected %u, got %u",
                       CF_VMADDR_CID_ANY, cid);
    cf_close(s);
    return 0;
}

/* ---- addr.well-known-guids ------------------------------------------------------------- */

static int well_known_host(struct cf_ctx *ctx)
{
    static const struct {
        const cf_guid_t *g;
        const char *text;
    } table[] = {
        { &CF_GUID_ZERO, "00000000-0000-0000-0000-000000000000" },
        { &CF_GUID_BROADCAST, "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF" },
        { &CF_GUID_CHILDREN, "90db8b89-0d35-4f79-8ce9-49ea0ac8b7cd" },
        { &CF_GUID_LOOPBACK, "e0e16197-dd56-4a10-9195-5ee7a155a838" },
        { &CF_GUID_PARENT, "a42e7cda-d03f-480c-9cc2-a4de20abb878" },
        { &CF_GUID_SILOHOST, "36bd0c5c-7276-4223-88ba-7d03b654c568" },
    };
    static const uint8_t loopback_le[16] = { 0x97, 0x61, 0xe1, 0xe0, 0x56, 0xdd, 0x10, 0x4a,
                                             0x91, 0x95, 0x5e, 0xe7, 0xa1, 0x55, 0xa8, 0x38 };
    cf_guid_t g, want;
    size_t i;

    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        cf_step(ctx, "the constant %s", table[i].text);
        CF_CHECK(ctx, cf_guid_parse(table[i].text, &g), 0, "parse");
        if (cfc_guid_is(ctx, table[i].g, &g, "well-known VmId") < 0)
            return -1;
    }
    /* The doc's example: port 2761 is service 00000ac9-facb-... (2.2). */
    cf_step(ctx, "the VSOCK template for port 2761");
    CF_CHECK(ctx, cf_guid_parse("00000ac9-facb-11e6-bd58-64006a7986d3", &want), 0, "parse");
    g = cf_guid_port(2761);
    if (cfc_guid_is(ctx, &g, &want, "cf_guid_port(2761)") < 0)
        return -1;
    /* And through the target: a host bound to HV_GUID_LOOPBACK's documented
     * bytes reads the constant back. */
    cf_step(ctx, "bind to HV_GUID_LOOPBACK's documented bytes");
    return hv_layout(ctx, loopback_le, &CF_GUID_LOOPBACK, ctx->port_base);
}

/* ---- malformed AF_HYPERV addresses ----------------------------------------------------- */

/* Bind and connect one malformed address; both must fail with ctx->expect,
 * and the socket must still be unbound (a correct bind then succeeds). */
static int hv_malformed(struct cf_ctx *ctx, const uint8_t *a, int len, const char *what, int bind_too,
                        uint32_t port)
{
    uint8_t good[SOCKADDR_HV_LEN];
    cf_guid_t svc = cf_guid_port(port);
    cf_sock_t s;

    if (cfc_open_sock(ctx, CF_AF_HYPERV, 0, &s) < 0)
        return -1;
    if (bind_too) {
        cf_step(ctx, "bind to %s", what);
        CF_CHECK(ctx, cf_bind_raw(s, a, len), ctx->expect, "bind");
    }
    cf_step(ctx, "connect to %s", what);
    CF_CHECK(ctx, cf_connect_raw(s, a, len), ctx->expect, "connect");
    /* Nothing was bound or spent by the refused calls. */
    hv_bytes(good, RAW_AF_HYPERV, 0, &CF_GUID_LOOPBACK, &svc);
    cf_step(ctx, "bind to a correct address after the refused calls");
    CF_CHECK(ctx, cf_bind_raw(s, good, (int)sizeof(good)), 0, "bind");
    cf_close(s);
    return 0;
}

static int hv_short(struct cf_ctx *ctx, uint32_t port)
{
    uint8_t a[SOCKADDR_HV_LEN];
    cf_guid_t svc = cf_guid_port(port);

    hv_bytes(a, RAW_AF_HYPERV, 0, &CF_GUID_LOOPBACK, &svc);
    return hv_malformed(ctx, a, SOCKADDR_HV_LEN - 1, "a 35-byte SOCKADDR_HV", 1, port);
}

static int short_host(struct cf_ctx *ctx)
{
    return hv_short(ctx, ctx->port_base);
}

static int short_guest(struct cf_ctx *ctx)
{
    return cfc_is_vsock(ctx) ? 0 : hv_short(ctx, ctx->port_base + 1);
}

static int hv_family(struct cf_ctx *ctx, uint32_t port)
{
    uint8_t a[SOCKADDR_HV_LEN];
    cf_guid_t svc = cf_guid_port(port);

    /* connect only: for bind, MSDN documents WSAEFAULT when the family does
     * not match the socket's, so the two calls need not agree. */
    hv_bytes(a, RAW_AF_INET, 0, &CF_GUID_LOOPBACK, &svc);
    return hv_malformed(ctx, a, SOCKADDR_HV_LEN, "a SOCKADDR_HV with Family 2 (AF_INET)", 0, port);
}

static int family_host(struct cf_ctx *ctx)
{
    return hv_family(ctx, ctx->port_base);
}

static int family_guest(struct cf_ctx *ctx)
{
    return cfc_is_vsock(ctx) ? 0 : hv_family(ctx, ctx->port_base + 1);
}

static int hv_reserved(struct cf_ctx *ctx, uint32_t port)
{
    uint8_t a[SOCKADDR_HV_LEN];
    cf_guid_t svc = cf_guid_port(port);

    hv_bytes(a, RAW_AF_HYPERV, 1, &CF_GUID_LOOPBACK, &svc);
    return hv_malformed(ctx, a, SOCKADDR_HV_LEN, "a SOCKADDR_HV with Reserved = 1", 1, port);
}

static int reserved_host(struct cf_ctx *ctx)
{
    return hv_reserved(ctx, ctx->port_base);
}

static int reserved_guest(struct cf_ctx *ctx)
{
    return cfc_is_vsock(ctx) ? 0 : hv_reserved(ctx, ctx->port_base + 1);
}

/* ---- malformed sockaddr_vm (guest side, AF_VSOCK) -------------------------------------- */

static int vm_malformed(struct cf_ctx *ctx, const uint8_t *a, int len, const char *what)
{
    uint8_t good[SOCKADDR_VM_LEN];
    cf_sock_t s;

    if (cfc_open_sock(ctx, CF_AF_VSOCK, 0, &s) < 0)
        return -1;
    cf_step(ctx, "bind to %s", what);
    CF_CHECK(ctx, cf_bind_raw(s, a, len), ctx->expect, "bind");
    cf_step(ctx, "connect to %s", what);
    CF_CHECK(ctx, cf_connect_raw(s, a, len), ctx->expect, "connect");
    vm_bytes(good, RAW_AF_VSOCK, CF_VMADDR_CID_ANY, ctx->port_base);
    cf_step(ctx, "bind to a correct sockaddr_vm after the refused calls");
    CF_CHECK(ctx, cf_bind_raw(s, good, (int)sizeof(good)), 0, "bind");
    cf_close(s);
    return 0;
}

static int vm_short_guest(struct cf_ctx *ctx)
{
    uint8_t a[SOCKADDR_VM_LEN];

    vm_bytes(a, RAW_AF_VSOCK, CF_VMADDR_CID_HOST, ctx->port_base);
    return vm_malformed(ctx, a, SOCKADDR_VM_LEN - 1, "a 15-byte sockaddr_vm");
}

static int vm_family_guest(struct cf_ctx *ctx)
{
    uint8_t a[SOCKADDR_VM_LEN];

    vm_bytes(a, RAW_AF_INET, 2, ctx->port_base);
    return vm_malformed(ctx, a, SOCKADDR_VM_LEN, "a sockaddr_vm with svm_family 2 (AF_INET)");
}

/* ---- socket() arguments ------------------------------------------------------------------ */

static int hv_protocol(struct cf_ctx *ctx)
{
    cf_sock_t ok, s = CF_NO_SOCK;
    int rc;

    /* The documented triple first: it works, so the refusals below are about
     * the protocol (and on the simulator it attaches the process first, so a
     * library rule is judged as the daemon configured it). */
    cf_step(ctx, "socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW)");
    CF_CHECK(ctx, cf_socket_raw(RAW_AF_HYPERV, RAW_SOCK_STREAM, RAW_HV_PROTOCOL_RAW, &ok), 0, "socket");
    cf_step(ctx, "socket(AF_HYPERV, SOCK_STREAM, 0)");
    rc = cf_socket_raw(RAW_AF_HYPERV, RAW_SOCK_STREAM, 0, &s);
    if (rc == 0)
        cf_close(s);
    CF_CHECK(ctx, rc, ctx->expect, "socket");
    cf_step(ctx, "socket(AF_HYPERV, SOCK_STREAM, 2)");
    rc = cf_socket_raw(RAW_AF_HYPERV, RAW_SOCK_STREAM, 2, &s);
    if (rc == 0)
        cf_close(s);
    CF_CHECK(ctx, rc, ctx->expect, "socket");
    cf_close(ok);
    return 0;
}

static int protocol_guest(struct cf_ctx *ctx)
{
    return cfc_is_vsock(ctx) ? 0 : hv_protocol(ctx);
}

static int hv_dgram(struct cf_ctx *ctx)
{
    cf_sock_t s = CF_NO_SOCK;
    int rc;

    cf_step(ctx, "socket(AF_HYPERV, SOCK_DGRAM, HV_PROTOCOL_RAW)");
    rc = cf_socket_raw(RAW_AF_HYPERV, RAW_SOCK_DGRAM, RAW_HV_PROTOCOL_RAW, &s);
    if (rc == 0)
        cf_close(s);
    CF_CHECK(ctx, rc, ctx->expect, "socket");
    return 0;
}

static int vm_dgram_guest(struct cf_ctx *ctx)
{
    cf_sock_t s = CF_NO_SOCK;
    int rc;

    cf_step(ctx, "socket(AF_VSOCK, SOCK_DGRAM, 0)");
    rc = cf_socket_raw(RAW_AF_VSOCK, RAW_SOCK_DGRAM, 0, &s);
    if (rc == 0)
        cf_close(s);
    CF_CHECK(ctx, rc, ctx->expect, "socket");
    /* And the stream socket of the same family works. */
    cf_step(ctx, "socket(AF_VSOCK, SOCK_STREAM, 0)");
    CF_CHECK(ctx, cf_socket_raw(RAW_AF_VSOCK, RAW_SOCK_STREAM, 0, &s), 0, "socket");
    cf_close(s);
    return 0;
}

/* ---- names of unbound and unconnected sockets -------------------------------------------- */

static int unbound_name_guest(struct cf_ctx *ctx)
{
    cf_guid_t vm, svc;
    uint32_t cid = 0, port = 0;
    cf_sock_t s;

    if (!cfc_is_vsock(ctx)) {
        if (cfc_open_sock(ctx, CF_AF_HYPERV, 0, &s) < 0)
            return -1;
        cf_step(ctx, "getsockname on an unbound AF_HYPERV socket");
        CF_CHECK(ctx, cf_name_hv(s, 0, &vm, &svc), ctx->expect, "getsockname");
        cf_close(s);
        return 0;
    }
    if (cfc_open_sock(ctx, CF_AF_VSOCK, 0, &s) < 0)
        return -1;
    cf_step(ctx, "getsockname on an unbound AF_VSOCK socket");
    CF_CHECK(ctx, cf_name_vsock(s, 0, &cid, &port), ctx->expect, "getsockname");
    if (cid != CF_VMADDR_CID_ANY || port != CF_VMADDR_PORT_ANY)
        return cf_fail(ctx, "unbound name: expected (VMADDR_CID_ANY, VMADDR_PORT_ANY), got (%u, %u)", cid, port);
    cf_close(s);
    return 0;
}

static int unconnected_peer(struct cf_ctx *ctx, enum cf_family fam)
{
    cf_guid_t vm, svc;
    uint32_t cid, port;
    cf_sock_t s;

    if (cfc_open_sock(ctx, fam, 0, &s) < 0)
        return -1;
    cf_step(ctx, "getpeername on a new socket");
    if (fam == CF_AF_HYPERV)
        CF_CHECK(ctx, cf_name_hv(s, 1, &vm, &svc), ctx->expect, "getpeername");
    else
        CF_CHECK(ctx, cf_name_vsock(s, 1, &cid, &port), ctx->expect, "getpeername");
    cf_close(s);
    return 0;
}

static int unconnected_host(struct cf_ctx *ctx)
{
    return unconnected_peer(ctx, CF_AF_HYPERV);
}

static int unconnected_guest(struct cf_ctx *ctx)
{
    return unconnected_peer(ctx, cfc_is_vsock(ctx) ? CF_AF_VSOCK : CF_AF_HYPERV);
}

/* ---- the table ----------------------------------------------------------------------------- */


const struct cf_case cf_cases_addressing[] = {
    {
        .id = "addr.sockaddr-hv-layout",
        .area = "addressing",
        .rule = "SOCKADDR_HV is 36 bytes: Family 34 little-endian at 0, Reserved at 2, VmId at 4, ServiceId at "
                "20, GUIDs as Data1/2/3 little-endian then Data4; getsockname gives back the GUIDs written "
                "(a Linux guest: the 16-byte sockaddr_vm, port at 4, CID at 8)",
        .source = "docs/reference/hyperv-sockets.md 1.2, 1.3 [S1][S3][S6][S25], 3.1 [S17]",
        .confidence = CF_SOURCED,
        .expect = { 0, 0, 0 },
        .host = layout_host,
        .guest = layout_guest,
    },
    {
        .id = "addr.well-known-guids",
        .area = "addressing",
        .rule = "the well-known VmIds and the VSOCK template have the documented values (port 2761 is "
                "00000ac9-facb-11e6-bd58-64006a7986d3), and HV_GUID_LOOPBACK's documented bytes bind as it",
        .source = "docs/reference/hyperv-sockets.md 1.3 [S1][S3][S4b][S7b], 2.2 [S2]",
        .confidence = CF_SOURCED,
        .expect = { 0, 0, 0 },
        .host = well_known_host,
    },
    {
        .id = "addr.hv-short-length-efault",
        .area = "addressing",
        .rule = "bind and connect with a SOCKADDR_HV length below 36 fail with WSAEFAULT and leave the socket "
                "unbound",
        .source = "docs/reference/hyperv-sockets.md 1.2 (36 bytes) [S1][S6][S25]; "
                  "docs/reference/platform-behaviour.md 1.1 (Winsock bind/connect: namelen too small)",
        .confidence = CF_INFERRED,
        .expect = { -EFAULT, -EFAULT, -EFAULT },
        .host = short_host,
        .guest = short_guest,
    },
    {
        .id = "addr.vsock-short-length-einval",
        .area = "addressing",
        .rule = "a Linux guest's bind and connect with a sockaddr_vm shorter than 16 bytes fail with EINVAL "
                "(vsock_addr_cast's EFAULT does not reach the caller)",
        .source = "docs/reference/hyperv-sockets.md 3.1 [S17]; docs/reference/platform-behaviour.md 1.3 (af_vsock.c "
                  "vsock_bind, vsock_connect)",
        .confidence = CF_INFERRED,
        .expect = { CF_NA, -EINVAL, -EINVAL },
        .guest = vm_short_guest,
    },
    {
        .id = "addr.hv-wrong-family-eafnosupport",
        .area = "addressing",
        .rule = "connect to a SOCKADDR_HV whose Family is not AF_HYPERV fails with WSAEAFNOSUPPORT",
        .source = "docs/reference/hyperv-sockets.md 1.2 [S1]; docs/reference/platform-behaviour.md 1.2 (Winsock "
                  "connect: WSAEAFNOSUPPORT)",
        .confidence = CF_INFERRED,
        .expect = { -EAFNOSUPPORT, -EAFNOSUPPORT, -EAFNOSUPPORT },
        .host = family_host,
        .guest = family_guest,
    },
    {
        .id = "addr.vsock-wrong-family-einval",
        .area = "addressing",
        .rule = "a Linux guest's bind and connect with svm_family other than AF_VSOCK fail with EINVAL",
        .source = "docs/reference/hyperv-sockets.md 3.1 [S17]; docs/reference/platform-behaviour.md 1.3 (af_vsock.c "
                  "vsock_bind, vsock_connect)",
        .confidence = CF_INFERRED,
        .expect = { CF_NA, -EINVAL, -EINVAL },
        .guest = vm_family_guest,
    },
    {
        .id = "addr.hv-reserved-nonzero-einval",
        .area = "addressing",
        .rule = "bind and connect with a non-zero SOCKADDR_HV Reserved field fail with WSAEINVAL",
        .source = "docs/reference/hyperv-sockets.md 1.2 (Reserved must be 0) [S1], 6 (item 1)",
        .confidence = CF_INFERRED,
        .expect = { -EINVAL, -EINVAL, -EINVAL },
        .host = reserved_host,
        .guest = reserved_guest,
    },
    {
        .id = "addr.socket-protocol-eprototype",
        .area = "addressing",
        .rule = "socket(AF_HYPERV, SOCK_STREAM, p) with p other than HV_PROTOCOL_RAW (0 included) fails with "
                "WSAEPROTOTYPE",
        .source = "docs/reference/hyperv-sockets.md 1.5 (CPython test, WinError 10041) [S31], 4.4",
        .confidence = CF_SOURCED,
        .expect = { -EPROTOTYPE, -EPROTOTYPE, -EPROTOTYPE },
        .host = hv_protocol,
        .guest = protocol_guest,
    },
    {
        .id = "addr.socket-hv-dgram-unsupported",
        .area = "addressing",
        .rule = "socket(AF_HYPERV, SOCK_DGRAM, HV_PROTOCOL_RAW) fails with WSAESOCKTNOSUPPORT: data stream only",
        .source = "docs/reference/hyperv-sockets.md 1.1, 2.1 [S2]",
        .confidence = CF_INFERRED,
        .expect = { -ESOCKTNOSUPPORT, -ESOCKTNOSUPPORT, -ESOCKTNOSUPPORT },
        .host = hv_dgram,
    },
    {
        .id = "addr.socket-vsock-dgram-unsupported",
        .area = "addressing",
        .rule = "a Linux guest's socket(AF_VSOCK, SOCK_DGRAM, 0) fails with ENODEV: neither hv_sock nor "
                "virtio registers a datagram transport",
        .source = "docs/reference/hyperv-sockets.md 3.4 (datagrams not supported) [S8], 6 (item 3); "
                  "docs/reference/platform-behaviour.md 2.1 (af_vsock.c vsock_create, vsock_assign_transport, 5.5+)",
        .confidence = CF_INFERRED,
        .expect = { CF_NA, -ENODEV, -ENODEV },
        .guest = vm_dgram_guest,
    },
    {
        .id = "addr.getsockname-unbound",
        .area = "addressing",
        .rule = "getsockname on an unbound socket: Winsock fails with WSAEINVAL; vsock reports "
                "(VMADDR_CID_ANY, VMADDR_PORT_ANY)",
        .source = "docs/reference/hyperv-sockets.md 3.1 [S8] (CID_ANY); docs/reference/platform-behaviour.md 3.1 "
                  "(Winsock getsockname: WSAEINVAL when not bound)",
        .confidence = CF_INFERRED,
        .expect = { -EINVAL, 0, 0 },
        .guest = unbound_name_guest,
    },
    {
        .id = "addr.getpeername-unconnected",
        .area = "addressing",
        .rule = "getpeername on a socket that never connected fails with ENOTCONN (WSAENOTCONN)",
        .source = "docs/reference/hyperv-sockets.md 4.1 [S7b] (names only after connect); "
                  "docs/reference/platform-behaviour.md 3.2 (vsock_getname)",
        .confidence = CF_INFERRED,
        .expect = { -ENOTCONN, -ENOTCONN, -ENOTCONN },
        .host = unconnected_host,
        .guest = unconnected_guest,
    },
    { .id = NULL },
};
