/* SPDX-License-Identifier: MIT */
/*
 * test_regfile.c: unit tests of the `reg export` reader (sim/lib/regfile.c):
 * the encodings regedit and editors produce, the key and value syntax a real
 * export contains, and the malformed inputs a user may feed to
 * `hvsimctl service import`, each of which must fail with a message that
 * names the line.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvsim/hvsim.h"
#include "hvproto/regfile.h"

#define GCS "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Virtualization\\GuestCommunicationServices"
#define V5 "Windows Registry Editor Version 5.00\r\n\r\n"
#define G1 "999e53d4-3d5c-4c3e-8779-bed06ec056e1"
#define G2 "00000808-facb-11e6-bd58-64006a7986d3"
#define G3 "a42e7cda-d03f-480c-9cc2-a4de20abb878"

/*
 * The test inputs are written as UTF-8 literals; regedit writes UTF-16LE with
 * a BOM, so convert (code points above U+FFFF become surrogate pairs). The
 * literals are ours, so the decoder trusts them.
 */
static uint8_t *utf16le(const char *s, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), w = 0;
    uint8_t *o = malloc(2 + n * 4);

    cr_assert_not_null(o);
    o[w++] = 0xFF;
    o[w++] = 0xFE;
    while (*u != '\0') {
        uint32_t cp;

        if (*u < 0x80) {
            cp = *u++;
        } else if (*u < 0xE0) {
            cp = (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F);
            u += 2;
        } else if (*u < 0xF0) {
            cp = (uint32_t)(u[0] & 0x0F) << 12 | (uint32_t)(u[1] & 0x3F) << 6 | (u[2] & 0x3F);
            u += 3;
        } else {
            cp = (uint32_t)(u[0] & 0x07) << 18 | (uint32_t)(u[1] & 0x3F) << 12 | (uint32_t)(u[2] & 0x3F) << 6 |
                 (u[3] & 0x3F);
            u += 4;
        }
        if (cp >= 0x10000) {
            uint32_t hi = 0xD800 + ((cp - 0x10000) >> 10), lo = 0xDC00 + ((cp - 0x10000) & 0x3FF);

            o[w++] = (uint8_t)hi;
            o[w++] = (uint8_t)(hi >> 8);
            cp = lo;
        }
        o[w++] = (uint8_t)cp;
        o[w++] = (uint8_t)(cp >> 8);
    }
    *len = w;
    return o;
}

static int parse_text(const char *text, hvsim_regfile_t *r, char *err, size_t errlen)
{
    return hvsim__regfile_parse((const uint8_t *)text, strlen(text), r, err, errlen);
}

/* The ElementName of the service with this GUID, or NULL when it is absent. */
static const char *name_of(const hvsim_regfile_t *r, const char *guid)
{
    GUID g;
    size_t i;

    cr_assert_eq(hvsim_guid_parse(guid, &g), 0);
    for (i = 0; i < r->n; i++)
        if (hvsim_guid_equal(&r->v[i].id, &g))
            return r->v[i].element_name;
    return NULL;
}

/* Parse text that must fail; check the error code, that the result is empty,
 * and that the message contains want. */
static void expect_fail(const uint8_t *data, size_t len, const char *want)
{
    hvsim_regfile_t r = { (hvsim_service_info_t *)1, 99 };
    char err[256] = "";
    int rc = hvsim__regfile_parse(data, len, &r, err, sizeof(err));

    cr_assert_eq(rc, -EINVAL, "rc %d for input expecting '%s' (err '%s')", rc, want, err);
    cr_assert_null(r.v);
    cr_assert_eq(r.n, 0);
    cr_assert_not_null(strstr(err, want), "message '%s' lacks '%s'", err, want);
}

static void expect_fail_text(const char *text, const char *want)
{
    expect_fail((const uint8_t *)text, strlen(text), want);
}

static const char *const export_text =
    "Windows Registry Editor Version 5.00\r\n"
    "\r\n"
    "[" GCS "]\r\n"
    "\r\n"
    "[" GCS "\\" G1 "]\r\n"
    "\"ElementName\"=\"VM Session Service\"\r\n"
    "\r\n"
    "[" GCS "\\{00000808-FACB-11E6-BD58-64006A7986D3}]\r\n"
    "\"ElementName\"=\"Dienst für VMs\"\r\n"
    "\r\n"
    "[" GCS "\\" G3 "]\r\n"
    "\"ElementName\"=\"Emoji \xF0\x9F\x98\x80 service\"\r\n"
    "\r\n";

Test(regfile, utf16le_with_bom, .timeout = 5)
{
    hvsim_regfile_t r;
    char err[256] = "";
    size_t len;
    uint8_t *data = utf16le(export_text, &len);

    cr_assert_eq(data[0], 0xFF);
    cr_assert_eq(hvsim__regfile_parse(data, len, &r, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(r.n, 3);
    cr_assert_str_eq(name_of(&r, G1), "VM Session Service");
    cr_assert_str_eq(name_of(&r, G2), "Dienst f\xC3\xBCr VMs");
    cr_assert_str_eq(name_of(&r, G3), "Emoji \xF0\x9F\x98\x80 service");
    /* In file order, so an import lists them as the export did. */
    cr_assert_eq(r.v[0].id.Data1, 0x999e53d4);
    cr_assert_eq(r.v[1].id.Data1, 0x00000808);
    hvsim__regfile_free(&r);
    cr_assert_null(r.v);
    cr_assert_eq(r.n, 0);
    free(data);
}

Test(regfile, utf8_without_and_with_bom, .timeout = 5)
{
    hvsim_regfile_t r;
    char err[256] = "";
    size_t n = strlen(export_text);
    uint8_t *bom = malloc(n + 3);

    cr_assert_eq(parse_text(export_text, &r, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(r.n, 3);
    cr_assert_str_eq(name_of(&r, G2), "Dienst f\xC3\xBCr VMs");
    hvsim__regfile_free(&r);

    cr_assert_not_null(bom);
    memcpy(bom, "\xEF\xBB\xBF", 3);
    memcpy(bom + 3, export_text, n);
    cr_assert_eq(hvsim__regfile_parse(bom, n + 3, &r, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(r.n, 3);
    cr_assert_str_eq(name_of(&r, G3), "Emoji \xF0\x9F\x98\x80 service");
    hvsim__regfile_free(&r);
    free(bom);
}

Test(regfile, regedit4_lf_and_hklm, .timeout = 5)
{
    hvsim_regfile_t r;
    char err[256] = "";
    const char *text = "\n\nREGEDIT4\n"
                       "[HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Virtualization\\"
                       "GuestCommunicationServices\\" G1 "]\n"
                       "\"ElementName\"=\"four\"\n";

    cr_assert_eq(parse_text(text, &r, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(name_of(&r, G1), "four");
    hvsim__regfile_free(&r);
}

Test(regfile, case_insensitive_key_and_value_name, .timeout = 5)
{
    hvsim_regfile_t r;
    char err[256] = "";
    const char *text = V5 "[hkey_local_machine\\software\\microsoft\\WINDOWS NT\\currentversion\\virtualization\\"
                          "guestcommunicationservices\\{" G1 "}]\r\n"
                          "\"elementname\" = \"lower\"\r\n";

    cr_assert_eq(parse_text(text, &r, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(name_of(&r, G1), "lower");
    hvsim__regfile_free(&r);
}

Test(regfile, escapes_and_other_values, .timeout = 5)
{
    hvsim_regfile_t r;
    char err[256] = "";
    /* The continuation lines would be rejected as stray lines if the parser
     * did not follow the trailing backslashes. */
    const char *text = V5 "; exported by hand\r\n"
                          "[" GCS "\\" G1 "]\r\n"
                          "@=\"default is ignored\"\r\n"
                          "\"Port\"=dword:0000001\r\n"
                          "\"Blob\"=hex:00,01,02,\\\r\n"
                          "  03,04,\\\r\n"
                          "  ff\r\n"
                          "\"Multi\"=hex(7):41,00,00,00,\\\r\n"
                          "  00,00\r\n"
                          "\"Quoted \\\"name\\\"\"=\"x\"\r\n"
                          "\"ElementName\"=\"C:\\\\path \\\"quoted\\\"\"   ; trailing comment\r\n"
                          "\"Gone\"=-\r\n";

    cr_assert_eq(parse_text(text, &r, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(r.v[0].element_name, "C:\\path \"quoted\"");
    hvsim__regfile_free(&r);
}

Test(regfile, unrelated_keys_are_skipped, .timeout = 5)
{
    hvsim_regfile_t r;
    char err[256] = "";
    const char *text = V5 "[HKEY_CURRENT_USER\\Software\\Foo\\" G2 "]\r\n"
                          "\"ElementName\"=dword:00000001\r\n"
                          "[" GCS "]\r\n"
                          "\"ElementName\"=\"the parent key\"\r\n"
                          "[" GCS "\\" G1 "\\Sub]\r\n"
                          "\"ElementName\"=hex:01\r\n"
                          "[" GCS "Extra\\" G2 "]\r\n"
                          "\"ElementName\"=\"not ours\"\r\n"
                          "[-" GCS "\\" G3 "]\r\n"
                          "[" GCS "\\" G1 "]\r\n"
                          "\"ElementName\"=\"kept\"\r\n";

    cr_assert_eq(parse_text(text, &r, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(name_of(&r, G1), "kept");
    cr_assert_null(name_of(&r, G2));
    cr_assert_null(name_of(&r, G3));
    hvsim__regfile_free(&r);
}

Test(regfile, duplicate_keys_merge_and_missing_name, .timeout = 5)
{
    hvsim_regfile_t r;
    char err[256] = "";
    const char *text = V5 "[" GCS "\\" G1 "]\r\n"
                          "\"ElementName\"=\"first\"\r\n"
                          "[" GCS "\\" G2 "]\r\n"
                          "[" GCS "\\{" G1 "}]\r\n"
                          "\"ElementName\"=\"second\"\r\n"
                          "[" GCS "\\" G1 "]\r\n"
                          "\"Other\"=\"keeps the name\"\r\n"
                          "[" GCS "\\" G3 "]\r\n"
                          "\"ElementName\"=\"deleted below\"\r\n"
                          "\"ElementName\"=-\r\n";

    cr_assert_eq(parse_text(text, &r, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(r.n, 3);
    cr_assert_str_eq(name_of(&r, G1), "second");
    cr_assert_str_eq(name_of(&r, G2), "");
    cr_assert_str_eq(name_of(&r, G3), "");
    hvsim__regfile_free(&r);
}

Test(regfile, element_name_length_limit, .timeout = 5)
{
    hvsim_regfile_t r;
    char err[256] = "";
    char text[1024];
    char name[HVSIM_ELEMENT_NAME_MAX + 1];

    memset(name, 'a', HVSIM_ELEMENT_NAME_MAX - 1);
    name[HVSIM_ELEMENT_NAME_MAX - 1] = '\0';
    snprintf(text, sizeof(text), V5 "[" GCS "\\" G1 "]\r\n\"ElementName\"=\"%s\"\r\n", name);
    cr_assert_eq(parse_text(text, &r, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(strlen(r.v[0].element_name), HVSIM_ELEMENT_NAME_MAX - 1);
    hvsim__regfile_free(&r);

    /* One byte more: 254 ASCII bytes and a two-byte "ü" (the limit is in UTF-8 bytes). */
    name[HVSIM_ELEMENT_NAME_MAX - 2] = '\0';
    snprintf(text, sizeof(text), V5 "[" GCS "\\" G1 "]\r\n\"ElementName\"=\"%s\xC3\xBC\"\r\n", name);
    expect_fail_text(text, "line 4: expected an ElementName of at most 255 bytes");
}

Test(regfile, empty_results, .timeout = 5)
{
    hvsim_regfile_t r;

    cr_assert_eq(parse_text(V5, &r, NULL, 0), 0);
    cr_assert_eq(r.n, 0);
    hvsim__regfile_free(&r);
    cr_assert_eq(parse_text("REGEDIT4", &r, NULL, 0), 0);
    cr_assert_eq(r.n, 0);
    hvsim__regfile_free(&r);
}

Test(regfile, bad_header, .timeout = 5)
{
    expect_fail_text("", "line 1: expected 'Windows Registry Editor Version 5.00' or 'REGEDIT4', got end of file");
    expect_fail_text("\r\n[" GCS "\\" G1 "]\r\n", "line 2: expected 'Windows Registry Editor Version 5.00'");
    expect_fail_text("Windows Registry Editor Version 4.00\r\n", "got 'Windows Registry Editor ...'");
    expect_fail_text("; comment\r\n" V5, "line 1: expected");
}

Test(regfile, bad_guid_names_line, .timeout = 5)
{
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\r\n[" GCS "\\not-a-guid]\r\n",
                     "line 5: expected a service GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) as the key name, "
                     "got 'not-a-guid'");
    expect_fail_text(V5 "[" GCS "\\{" G1 "]\r\n", "line 3: expected a service GUID");
    expect_fail_text(V5 "[" GCS "\\]\r\n", "line 3: expected a service GUID");
}

Test(regfile, bad_syntax, .timeout = 5)
{
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"ElementName\"=\"never closed\r\n",
                     "line 4: expected a closing '\"', got end of line");
    expect_fail_text(V5 "[" GCS "\\" G1 "\r\n", "line 3: expected a key name closed by ']'");
    expect_fail_text(V5 "[" GCS "\\" G1 "] junk\r\n", "line 3: expected end of line after the key name, got 'junk'");
    expect_fail_text(V5 "\"ElementName\"=\"x\"\r\n", "line 3: expected a key ('[...]') before the first value");
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"ElementName\"\"x\"\r\n", "line 4: expected '=' after the value name");
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"ElementName\"=\"a\\nb\"\r\n",
                     "line 4: expected '\\\\' or '\\\"' after a backslash");
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"A\"=\"x\" y\r\n", "line 4: expected end of line after the string");
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"A\"=qword:1\r\n", "line 4: expected a value");
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"A\"=dword:123456789\r\n", "line 4: expected 1 to 8 hex digits");
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"A\"=hex(x):00\r\n", "line 4: expected a hex type number");
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"A\"=hex:00,zz\r\n", "line 4: expected a hex byte, got 'zz'");
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"A\"=hex:00 01\r\n", "line 4: expected ',' between hex bytes");
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"A\"=hex:00,\\\r\n  01,\\\r\n  zz\r\n",
                     "line 6: expected a hex byte");
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"A\"=hex:00,\\\r\n",
                     "line 4: expected a continuation line of hex bytes, got end of file");
    expect_fail_text(V5 "  garbage\r\n", "line 3: expected a key '[...]', a value or a comment, got 'garbage'");
}

Test(regfile, element_name_rules, .timeout = 5)
{
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"ElementName\"=dword:00000001\r\n",
                     "line 4: expected ElementName to be a string (REG_SZ), got 'dword:'");
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"ElementName\"=hex(2):41,00,00,00\r\n",
                     "line 4: expected ElementName to be a string (REG_SZ), got 'hex(2):'");
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"ElementName\"=\"tab\there\"\r\n",
                     "line 4: expected an ElementName without control characters");
    expect_fail_text(V5 "[" GCS "\\" G1 "]\r\n\"ElementName\"=\"c1 \xC2\x85\"\r\n",
                     "expected an ElementName without control characters");
}

Test(regfile, bad_encodings, .timeout = 5)
{
    static const uint8_t be[] = { 0xFE, 0xFF, 0x00, 'W' };
    static const uint8_t odd[] = { 0xFF, 0xFE, 'W', 0x00, 'i' };
    static const uint8_t nul8[] = { 'W', 0x00, 'i', 0x00 };
    static const uint8_t utf32[] = { 0xFF, 0xFE, 0x00, 0x00, 'W', 0, 0, 0 };
    size_t len;
    uint8_t *u;

    expect_fail(be, sizeof(be), "got a UTF-16BE byte order mark");
    expect_fail(odd, sizeof(odd), "got an odd length of 3 bytes");
    expect_fail(nul8, sizeof(nul8), "line 1: expected UTF-8 text, got a NUL byte at offset 1");
    expect_fail(utf32, sizeof(utf32), "UTF-32LE");
    expect_fail_text(V5 "bad \xC3\x28\r\n", "line 3: expected UTF-8 text, got an invalid byte 0xc3 at offset 44");
    expect_fail_text(V5 "\xFF", "invalid byte 0xff");
    expect_fail_text(V5 "\xC0\x80", "invalid byte 0xc0"); /* overlong NUL */
    expect_fail_text(V5 "\xED\xA0\x80", "invalid byte 0xed"); /* a surrogate in UTF-8 */
    expect_fail_text(V5 "\xF4\x90\x80\x80", "invalid byte 0xf4"); /* past U+10FFFF */
    expect_fail_text(V5 "\xE2\x82", "invalid byte 0xe2"); /* truncated at the end */

    /* Lone surrogates: patch the code units of a converted file. "X" marks the spot. */
    u = utf16le(V5 "; X\r\n", &len);
    cr_assert_eq(u[len - 6], 'X');
    u[len - 6] = 0x00;
    u[len - 5] = 0xD8; /* U+D800 followed by CR */
    expect_fail(u, len, "line 3: expected UTF-16LE text, got a lone high surrogate U+D800");
    u[len - 5] = 0xDC;
    expect_fail(u, len, "line 3: expected UTF-16LE text, got a lone low surrogate U+DC00");
    u[len - 6] = 0x00;
    u[len - 5] = 0x00;
    expect_fail(u, len, "line 3: expected text, got a NUL character");
    free(u);
    u = utf16le(V5 "X", &len);
    u[len - 2] = 0x3D;
    u[len - 1] = 0xD8; /* a high surrogate as the very last code unit */
    expect_fail(u, len, "lone high surrogate U+D83D");
    free(u);
}

Test(regfile, error_buffer_is_bounded, .timeout = 5)
{
    hvsim_regfile_t r;
    char err[8];

    memset(err, 'x', sizeof(err));
    cr_assert_eq(parse_text("nope", &r, err, sizeof(err)), -EINVAL);
    cr_assert_eq(strnlen(err, sizeof(err)), sizeof(err) - 1);
    cr_assert_eq(parse_text("nope", &r, NULL, 0), -EINVAL);
    cr_assert_eq(hvsim__regfile_parse(NULL, 0, &r, NULL, 0), -EINVAL);
    cr_assert_eq(r.n, 0);
}
