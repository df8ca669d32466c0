/* SPDX-License-Identifier: MIT */
/*
 * test_guid.c: unit tests of sim/lib/guid.c and the address layout of
 * hvsocket.h: GUID text parsing and formatting (braces, case, every kind of
 * malformed input), the Windows in-memory byte order of the well-known VmIds
 * against the reference table 1.3 byte for byte, the Linux port <-> service
 * GUID template of hv_sock (reference 3.1), the VmId names hvsimctl accepts,
 * and the 36-byte SOCKADDR_HV layout (reference 1.2).
 */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvsim/hvsim.h"
#include "hvproto/util.h"

/* Print 16 bytes as "aa bb cc ..." for failure messages. */
static const char *hex16(const void *p, char out[49])
{
    const uint8_t *b = p;
    int i;

    for (i = 0; i < 16; i++)
        snprintf(out + 3 * i, 4, "%02x%s", b[i], i == 15 ? "" : " ");
    return out;
}

#define assert_bytes16(got, want)                                                              \
    do {                                                                                       \
        char gh_[49], wh_[49];                                                                 \
        cr_assert(memcmp((got), (want), 16) == 0, "%s: bytes %s vs %s", #got, hex16((got), gh_), \
                  hex16((want), wh_));                                                         \
    } while (0)

#define assert_guid_eq(a, b)                                                                  \
    do {                                                                                      \
        GUID ga_ = (a), gb_ = (b);                                                            \
        char ta_[HVSIM_GUID_STRLEN], tb_[HVSIM_GUID_STRLEN];                                  \
        cr_assert(hvsim_guid_equal(&ga_, &gb_), "%s: %s vs %s", #a, hvsim_guid_format(&ga_, ta_), \
                  hvsim_guid_format(&gb_, tb_));                                              \
    } while (0)

/* Reference 1.3, column "bytes (LE layout)", copied as text from the table. */
static const struct {
    const char *name;
    const GUID *g;
    const char *text;
    uint8_t bytes[16];
} table13[] = {
    { "HV_GUID_ZERO", &HV_GUID_ZERO, "00000000-0000-0000-0000-000000000000", { 0 } },
    { "HV_GUID_BROADCAST", &HV_GUID_BROADCAST, "ffffffff-ffff-ffff-ffff-ffffffffffff",
      { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } },
    { "HV_GUID_CHILDREN", &HV_GUID_CHILDREN, "90db8b89-0d35-4f79-8ce9-49ea0ac8b7cd",
      { 0x89, 0x8b, 0xdb, 0x90, 0x35, 0x0d, 0x79, 0x4f, 0x8c, 0xe9, 0x49, 0xea, 0x0a, 0xc8, 0xb7, 0xcd } },
    { "HV_GUID_LOOPBACK", &HV_GUID_LOOPBACK, "e0e16197-dd56-4a10-9195-5ee7a155a838",
      { 0x97, 0x61, 0xe1, 0xe0, 0x56, 0xdd, 0x10, 0x4a, 0x91, 0x95, 0x5e, 0xe7, 0xa1, 0x55, 0xa8, 0x38 } },
    { "HV_GUID_PARENT", &HV_GUID_PARENT, "a42e7cda-d03f-480c-9cc2-a4de20abb878",
      { 0xda, 0x7c, 0x2e, 0xa4, 0x3f, 0xd0, 0x0c, 0x48, 0x9c, 0xc2, 0xa4, 0xde, 0x20, 0xab, 0xb8, 0x78 } },
    { "HV_GUID_SILOHOST", &HV_GUID_SILOHOST, "36bd0c5c-7276-4223-88ba-7d03b654c568",
      { 0x5c, 0x0c, 0xbd, 0x36, 0x76, 0x72, 0x23, 0x42, 0x88, 0xba, 0x7d, 0x03, 0xb6, 0x54, 0xc5, 0x68 } },
    { "HV_GUID_VSOCK_TEMPLATE", &HV_GUID_VSOCK_TEMPLATE, "00000000-facb-11e6-bd58-64006a7986d3",
      { 0x00, 0x00, 0x00, 0x00, 0xcb, 0xfa, 0xe6, 0x11, 0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3 } },
};

Test(guid, well_known_bytes_match_reference_table, .timeout = 5)
{
    size_t i;

    cr_assert_eq(sizeof(GUID), 16u, "%zu vs %u", sizeof(GUID), 16u);
    for (i = 0; i < HVSIM_ARRAY_SIZE(table13); i++) {
        char gh[49], wh[49];

        cr_assert(memcmp(table13[i].g, table13[i].bytes, 16) == 0, "%s in memory: %s vs reference %s",
                  table13[i].name, hex16(table13[i].g, gh), hex16(table13[i].bytes, wh));
    }
    assert_guid_eq(HV_GUID_WILDCARD, HV_GUID_ZERO);
}

Test(guid, well_known_parse_to_reference_bytes, .timeout = 5)
{
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(table13); i++) {
        GUID g;
        char text[HVSIM_GUID_STRLEN];
        int rc = hvsim_guid_parse(table13[i].text, &g);

        cr_assert_eq(rc, 0, "parse %s: %d vs 0", table13[i].text, rc);
        assert_bytes16(&g, table13[i].bytes);
        cr_assert_str_eq(hvsim_guid_format(&g, text), table13[i].text, "%s vs %s", text, table13[i].text);
    }
}

Test(guid, parse_parent_text_gives_parent_bytes, .timeout = 5)
{
    GUID g;
    int rc = hvsim_guid_parse("a42e7cda-d03f-480c-9cc2-a4de20abb878", &g);

    cr_assert_eq(rc, 0, "%d vs 0", rc);
    assert_bytes16(&g, &HV_GUID_PARENT);
    cr_assert_eq(g.Data1, 0xa42e7cdau, "Data1 %#x vs %#x", g.Data1, 0xa42e7cdau);
    cr_assert_eq(g.Data2, 0xd03f, "Data2 %#x vs %#x", g.Data2, 0xd03f);
    cr_assert_eq(g.Data3, 0x480c, "Data3 %#x vs %#x", g.Data3, 0x480c);
    cr_assert_eq(g.Data4[0], 0x9c, "Data4[0] %#x vs %#x", g.Data4[0], 0x9c);
    cr_assert_eq(g.Data4[7], 0x78, "Data4[7] %#x vs %#x", g.Data4[7], 0x78);
}

Test(guid, format_parse_round_trip, .timeout = 5)
{
    static const char *texts[] = {
        "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "01234567-89ab-cdef-0123-456789abcdef", "999e53d4-3d5c-4c3e-8779-bed06ec056e1",
        "00000ac9-facb-11e6-bd58-64006a7986d3", "80000000-0001-8000-00ff-ff0000000001",
    };
    size_t i;
    int k;

    for (i = 0; i < HVSIM_ARRAY_SIZE(texts); i++) {
        GUID g;
        char out[HVSIM_GUID_STRLEN];
        int rc = hvsim_guid_parse(texts[i], &g);

        cr_assert_eq(rc, 0, "parse %s: %d vs 0", texts[i], rc);
        cr_assert_str_eq(hvsim_guid_format(&g, out), texts[i], "%s vs %s", out, texts[i]);
    }
    /* And the other way: bytes -> text -> the same bytes, for random GUIDs. */
    for (k = 0; k < 64; k++) {
        GUID g, back;
        char out[HVSIM_GUID_STRLEN];
        int rc;

        cr_assert_eq(hvsim__random(&g, sizeof(g)), 0, "getrandom failed");
        hvsim_guid_format(&g, out);
        cr_assert_eq(strlen(out), 36u, "%zu vs %u (%s)", strlen(out), 36u, out);
        rc = hvsim_guid_parse(out, &back);
        cr_assert_eq(rc, 0, "parse %s: %d vs 0", out, rc);
        assert_bytes16(&back, &g);
    }
}

Test(guid, format_returns_its_buffer, .timeout = 5)
{
    char out[HVSIM_GUID_STRLEN];

    cr_assert_eq(hvsim_guid_format(&HV_GUID_PARENT, out), out, "returned pointer is not the buffer");
    cr_assert_eq(HVSIM_GUID_STRLEN, 37, "%d vs %d", HVSIM_GUID_STRLEN, 37);
}

Test(guid, braces_and_upper_case_accepted_lower_case_formatted, .timeout = 5)
{
    static const char *forms[] = {
        "{a42e7cda-d03f-480c-9cc2-a4de20abb878}",
        "A42E7CDA-D03F-480C-9CC2-A4DE20ABB878",
        "{A42E7CDA-D03F-480C-9CC2-A4DE20ABB878}",
        "a42E7cDA-d03F-480C-9cC2-A4de20aBB878",
    };
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(forms); i++) {
        GUID g;
        char out[HVSIM_GUID_STRLEN];
        int rc = hvsim_guid_parse(forms[i], &g);

        cr_assert_eq(rc, 0, "parse %s: %d vs 0", forms[i], rc);
        assert_bytes16(&g, &HV_GUID_PARENT);
        cr_assert_str_eq(hvsim_guid_format(&g, out), "a42e7cda-d03f-480c-9cc2-a4de20abb878", "%s vs %s", out,
                         "a42e7cda-d03f-480c-9cc2-a4de20abb878");
    }
}

Test(guid, invalid_text_is_einval, .timeout = 5)
{
    static const char *bad[] = {
        "",
        "a42e7cda-d03f-480c-9cc2-a4de20abb87", /* 35 characters */
        "a42e7cda-d03f-480c-9cc2-a4de20abb8780", /* 37 */
        "a42e7cda-d03f-480c-9cc2-a4de20abb87800", /* 38 without braces */
        "a42e7cdad03f480c9cc2a4de20abb878", /* no dashes at all (32) */
        "a42e7cda0d03f-480c-9cc2-a4de20abb878", /* 36, first dash missing */
        "a42e7cda-d03f0480c-9cc2-a4de20abb878", /* 36, second dash missing */
        "a42e7cda-d03f-480c09cc2-a4de20abb878", /* 36, third dash missing */
        "a42e7cda-d03f-480c-9cc20a4de20abb878", /* 36, fourth dash missing */
        "a42e7cd-ad03f-480c-9cc2-a4de20abb878", /* dash in the wrong place */
        "g42e7cda-d03f-480c-9cc2-a4de20abb878", /* bad hex */
        "a42e7cda-d03f-480c-9cc2-a4de20abb87z",
        "a42e7cda-d03f-48 c-9cc2-a4de20abb878",
        "a42e7cda-d03f-480c-9cc2-a4de20abb8\xe9" "8",
        "{a42e7cda-d03f-480c-9cc2-a4de20abb878", /* unbalanced braces */
        "a42e7cda-d03f-480c-9cc2-a4de20abb878}",
        "{a42e7cda-d03f-480c-9cc2-a4de20abb878)",
        "(a42e7cda-d03f-480c-9cc2-a4de20abb878}",
        "}a42e7cda-d03f-480c-9cc2-a4de20abb878{",
        "{{a42e7cda-d03f-480c-9cc2-a4de20abb878}}",
        "{a42e7cda-d03f-480c-9cc2-a4de20abb878 }",
        " a42e7cda-d03f-480c-9cc2-a4de20abb878",
        "parent",
    };
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(bad); i++) {
        GUID g = HV_GUID_ZERO;
        int rc = hvsim_guid_parse(bad[i], &g);

        cr_assert_eq(rc, -EINVAL, "parse \"%s\": %d vs %d", bad[i], rc, -EINVAL);
    }
}

Test(guid, null_arguments_are_einval, .timeout = 5)
{
    GUID g;
    int rc;

    rc = hvsim_guid_parse(NULL, &g);
    cr_assert_eq(rc, -EINVAL, "parse(NULL, g): %d vs %d", rc, -EINVAL);
    rc = hvsim_guid_parse("a42e7cda-d03f-480c-9cc2-a4de20abb878", NULL);
    cr_assert_eq(rc, -EINVAL, "parse(text, NULL): %d vs %d", rc, -EINVAL);
    rc = hvsim_vmid_parse_name(NULL, &g);
    cr_assert_eq(rc, -EINVAL, "vmid_parse_name(NULL, g): %d vs %d", rc, -EINVAL);
    rc = hvsim_vmid_parse_name("parent", NULL);
    cr_assert_eq(rc, -EINVAL, "vmid_parse_name(text, NULL): %d vs %d", rc, -EINVAL);
}

Test(guid, equal_compares_every_byte, .timeout = 5)
{
    GUID a = HV_GUID_PARENT, b;
    size_t i;

    cr_assert(hvsim_guid_equal(&a, &HV_GUID_PARENT), "a GUID differs from its copy");
    for (i = 0; i < sizeof(GUID); i++) {
        b = a;
        ((uint8_t *)&b)[i] ^= 0x01;
        cr_assert(!hvsim_guid_equal(&a, &b), "byte %zu changed but still equal", i);
    }
}

Test(guid, port_2761_is_the_documented_service, .timeout = 5)
{
    GUID g = hvsim_guid_from_port(2761), want;
    char out[HVSIM_GUID_STRLEN];
    uint32_t port = 0;
    int rc;

    cr_assert_str_eq(hvsim_guid_format(&g, out), "00000ac9-facb-11e6-bd58-64006a7986d3", "%s vs %s", out,
                     "00000ac9-facb-11e6-bd58-64006a7986d3");
    rc = hvsim_guid_parse("00000ac9-facb-11e6-bd58-64006a7986d3", &want);
    cr_assert_eq(rc, 0, "%d vs 0", rc);
    assert_guid_eq(g, want);
    rc = hvsim_guid_to_port(&want, &port);
    cr_assert_eq(rc, 1, "to_port: %d vs 1", rc);
    cr_assert_eq(port, 2761u, "port %u vs %u", port, 2761u);
}

Test(guid, port_round_trip_and_bytes, .timeout = 5)
{
    static const uint32_t ports[] = { 0, 1, 1023, 1024, 0x808, 0x1337, 0x40000081, 0x7fffffff, 0x80000000,
                                      0xfffffffe, 0xffffffff };
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(ports); i++) {
        GUID g = hvsim_guid_from_port(ports[i]);
        uint32_t port = 0x12345678;
        uint8_t le[4] = { (uint8_t)ports[i], (uint8_t)(ports[i] >> 8), (uint8_t)(ports[i] >> 16),
                          (uint8_t)(ports[i] >> 24) };
        int rc;

        /* Data1 is the port, little-endian in memory; bytes 4..15 are the template's. */
        cr_assert(memcmp(&g, le, 4) == 0, "port %#x: first bytes %02x %02x %02x %02x", ports[i],
                  ((uint8_t *)&g)[0], ((uint8_t *)&g)[1], ((uint8_t *)&g)[2], ((uint8_t *)&g)[3]);
        cr_assert(memcmp((uint8_t *)&g + 4, (const uint8_t *)&HV_GUID_VSOCK_TEMPLATE + 4, 12) == 0,
                  "port %#x: template bytes differ", ports[i]);
        rc = hvsim_guid_to_port(&g, &port);
        cr_assert_eq(rc, 1, "to_port(%#x): %d vs 1", ports[i], rc);
        cr_assert_eq(port, ports[i], "%#x vs %#x", port, ports[i]);
        rc = hvsim_guid_to_port(&g, NULL);
        cr_assert_eq(rc, 1, "to_port(%#x, NULL): %d vs 1", ports[i], rc);
    }
}

Test(guid, non_template_has_no_port, .timeout = 5)
{
    const GUID *others[] = { &HV_GUID_ZERO, &HV_GUID_BROADCAST, &HV_GUID_PARENT, &HV_GUID_CHILDREN,
                             &HV_GUID_LOOPBACK, &HV_GUID_SILOHOST };
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(others); i++) {
        uint32_t port = 0;
        int rc = hvsim_guid_to_port(others[i], &port);

        cr_assert_eq(rc, 0, "well-known %zu: %d vs 0", i, rc);
    }
    /* Any change in bytes 4..15 of the template makes it a non-template GUID. */
    for (i = 4; i < 16; i++) {
        GUID g = hvsim_guid_from_port(2761);
        uint32_t port = 0;
        int rc;

        ((uint8_t *)&g)[i] ^= 0x80;
        rc = hvsim_guid_to_port(&g, &port);
        cr_assert_eq(rc, 0, "template with byte %zu flipped: %d vs 0", i, rc);
    }
}

Test(guid, vmid_names, .timeout = 5)
{
    static const struct {
        const char *name;
        const GUID *g;
    } names[] = {
        { "zero", &HV_GUID_ZERO },         { "wildcard", &HV_GUID_WILDCARD },  { "broadcast", &HV_GUID_BROADCAST },
        { "children", &HV_GUID_CHILDREN }, { "loopback", &HV_GUID_LOOPBACK },  { "parent", &HV_GUID_PARENT },
        { "silohost", &HV_GUID_SILOHOST }, { "ZERO", &HV_GUID_ZERO },          { "WildCard", &HV_GUID_ZERO },
        { "BROADCAST", &HV_GUID_BROADCAST }, { "Children", &HV_GUID_CHILDREN }, { "LoopBack", &HV_GUID_LOOPBACK },
        { "PARENT", &HV_GUID_PARENT },     { "SiloHost", &HV_GUID_SILOHOST },
    };
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(names); i++) {
        GUID g;
        int rc;

        memset(&g, 0xa5, sizeof(g));
        rc = hvsim_vmid_parse_name(names[i].name, &g);
        cr_assert_eq(rc, 0, "%s: %d vs 0", names[i].name, rc);
        assert_guid_eq(g, *names[i].g);
    }
}

Test(guid, vmid_guid_text_and_bad_names, .timeout = 5)
{
    static const char *bad[] = { "", "parents", "host", "child", "loop back", "0", "{parent}" };
    GUID g, want;
    size_t i;
    int rc;

    rc = hvsim_vmid_parse_name("6a4f3e2d-1c0b-4a9e-8d7c-6b5a49382716", &g);
    cr_assert_eq(rc, 0, "%d vs 0", rc);
    cr_assert_eq(hvsim_guid_parse("6a4f3e2d-1c0b-4a9e-8d7c-6b5a49382716", &want), 0, "parse failed");
    assert_guid_eq(g, want);
    rc = hvsim_vmid_parse_name("{E0E16197-DD56-4A10-9195-5EE7A155A838}", &g);
    cr_assert_eq(rc, 0, "%d vs 0", rc);
    assert_guid_eq(g, HV_GUID_LOOPBACK);
    for (i = 0; i < HVSIM_ARRAY_SIZE(bad); i++) {
        rc = hvsim_vmid_parse_name(bad[i], &g);
        cr_assert_eq(rc, -EINVAL, "\"%s\": %d vs %d", bad[i], rc, -EINVAL);
    }
}

Test(guid, vmid_name_of_well_known, .timeout = 5)
{
    const char *n;
    GUID other;

    n = hvsim__vmid_name(&HV_GUID_PARENT);
    cr_assert(n != NULL && strcmp(n, "parent") == 0, "PARENT: %s vs parent", n ? n : "(null)");
    n = hvsim__vmid_name(&HV_GUID_CHILDREN);
    cr_assert(n != NULL && strcmp(n, "children") == 0, "CHILDREN: %s vs children", n ? n : "(null)");
    cr_assert_eq(hvsim_guid_parse("6a4f3e2d-1c0b-4a9e-8d7c-6b5a49382716", &other), 0, "parse failed");
    n = hvsim__vmid_name(&other);
    cr_assert_null(n, "a VM's own id has no name, got %s", n ? n : "(null)");
}

Test(guid, random_guids_differ, .timeout = 5)
{
    GUID a, b;

    cr_assert_eq(hvsim__guid_random(&a), 0, "guid_random failed");
    cr_assert_eq(hvsim__guid_random(&b), 0, "guid_random failed");
    cr_assert(!hvsim_guid_equal(&a, &b), "two random GUIDs are equal");
    cr_assert(!hvsim_guid_equal(&a, &HV_GUID_ZERO), "a random GUID is zero");
}

static int guid_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(GUID));
}

/* .timeout as the suite's other tests: Criterion 2.4's runner leaks a timer
 * (ASan reports 48 bytes) when tests with different timeouts run side by side. */
Test(guid, random_guids_are_version_4_and_unique_across_pool_refills, .timeout = 5)
{
    static GUID seen[1000]; /* 16 KB: several refills of the 4 KiB pool */
    char text[HVSIM_GUID_STRLEN];
    size_t i, failed = 0, bad_version = 0, dups = 0;

    /* One assertion per property, not per GUID: Criterion reports every one. */
    for (i = 0; i < 1000; i++) {
        failed += hvsim__guid_random(&seen[i]) != 0;
        hvsim_guid_format(&seen[i], text);
        bad_version += text[14] != '4' || strchr("89ab", text[19]) == NULL;
    }
    qsort(seen, 1000, sizeof(seen[0]), guid_cmp);
    for (i = 1; i < 1000; i++)
        dups += hvsim_guid_equal(&seen[i - 1], &seen[i]);
    cr_assert_eq(failed, 0, "hvsim__guid_random failed %zu times", failed);
    cr_assert_eq(bad_version, 0, "%zu GUIDs without version 4 and variant 10 (last: %s)", bad_version, text);
    cr_assert_eq(dups, 0, "%zu repeated GUIDs", dups);
}

Test(guid, sockaddr_hv_layout, .timeout = 5)
{
    SOCKADDR_HV sa;
    const uint8_t *p = (const uint8_t *)&sa;

    cr_assert_eq(sizeof(SOCKADDR_HV), 36u, "%zu vs %u", sizeof(SOCKADDR_HV), 36u);
    cr_assert_eq(offsetof(SOCKADDR_HV, Family), 0u, "%zu vs %u", offsetof(SOCKADDR_HV, Family), 0u);
    cr_assert_eq(offsetof(SOCKADDR_HV, Reserved), 2u, "%zu vs %u", offsetof(SOCKADDR_HV, Reserved), 2u);
    cr_assert_eq(offsetof(SOCKADDR_HV, VmId), 4u, "%zu vs %u", offsetof(SOCKADDR_HV, VmId), 4u);
    cr_assert_eq(offsetof(SOCKADDR_HV, ServiceId), 20u, "%zu vs %u", offsetof(SOCKADDR_HV, ServiceId), 20u);
    cr_assert_eq(AF_HYPERV, 34, "%d vs %d", AF_HYPERV, 34);
    cr_assert_eq(HV_PROTOCOL_RAW, 1, "%d vs %d", HV_PROTOCOL_RAW, 1);

    memset(&sa, 0xee, sizeof(sa));
    sa.Family = AF_HYPERV;
    sa.Reserved = 0;
    sa.VmId = HV_GUID_PARENT;
    sa.ServiceId = hvsim_guid_from_port(2761);
    cr_assert_eq(p[0], 0x22, "Family byte 0: %#x vs %#x", p[0], 0x22);
    cr_assert_eq(p[1], 0x00, "Family byte 1: %#x vs %#x", p[1], 0x00);
    cr_assert_eq(p[2], 0x00, "Reserved byte 0: %#x vs %#x", p[2], 0x00);
    cr_assert_eq(p[3], 0x00, "Reserved byte 1: %#x vs %#x", p[3], 0x00);
    assert_bytes16(p + 4, table13[4].bytes); /* PARENT */
    {
        static const uint8_t svc[16] = { 0xc9, 0x0a, 0x00, 0x00, 0xcb, 0xfa, 0xe6, 0x11,
                                         0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3 };

        assert_bytes16(p + 20, svc);
    }
}

Test(guid, address_info_layout, .timeout = 5)
{
    /* Reference 1.5: 52 bytes by layout arithmetic. */
    cr_assert_eq(sizeof(HVSOCKET_ADDRESS_INFO), 52u, "%zu vs %u", sizeof(HVSOCKET_ADDRESS_INFO), 52u);
    cr_assert_eq(offsetof(HVSOCKET_ADDRESS_INFO, Flags), 48u, "%zu vs %u", offsetof(HVSOCKET_ADDRESS_INFO, Flags),
                 48u);
}

Test(guid, socket_option_constants, .timeout = 5)
{
    /* Reference 1.5, copied exactly. */
    cr_assert_eq(HVSOCKET_CONNECT_TIMEOUT, 0x01, "%#x vs %#x", HVSOCKET_CONNECT_TIMEOUT, 0x01);
    cr_assert_eq(HVSOCKET_CONNECT_TIMEOUT_MAX, 300000, "%d vs %d", HVSOCKET_CONNECT_TIMEOUT_MAX, 300000);
    cr_assert_eq(HVSOCKET_CONTAINER_PASSTHRU, 0x02, "%#x vs %#x", HVSOCKET_CONTAINER_PASSTHRU, 0x02);
    cr_assert_eq(HVSOCKET_CONNECTED_SUSPEND, 0x04, "%#x vs %#x", HVSOCKET_CONNECTED_SUSPEND, 0x04);
    cr_assert_eq(HVSOCKET_HIGH_VTL, 0x08, "%#x vs %#x", HVSOCKET_HIGH_VTL, 0x08);
    cr_assert_eq(HVSOCKET_ADDRESS_FLAG_PASSTHRU, 0x01, "%#x vs %#x", HVSOCKET_ADDRESS_FLAG_PASSTHRU, 0x01);
}
