/* SPDX-License-Identifier: MIT */
/*
 * test_error.c: unit tests of sim/lib/error.c and of SipHash in
 * sim/lib/util.c. The error map (HVSIM_ERRNO_MAP): every errno's Winsock
 * code against winerror.h, either sign, the symbolic and Winsock names
 * (EPIPE and ENOMEM borrow WSAESHUTDOWN and WSAENOBUFS), non-empty messages,
 * the "unknown errno" answers, one row per errno, and the per-thread
 * WSAGetLastError stand-in. SipHash-2-4-128: the reference implementation's
 * vectors (key 00..0f, message 00..len-1) and two properties of a MAC.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hvsim/hvsim.h"
#include "hvproto/util.h"

/* The map as the test sees it, built from the public X-macro. */
#define ROW(name, err, wsa, wsa_name, msg) { #name, err, wsa, msg },
static const struct {
    const char *name;
    int err;
    int wsa;
    const char *msg;
} rows[] = { HVSIM_ERRNO_MAP(ROW) };
#undef ROW

/* The first row with this errno: the one every lookup answers with. */
static size_t first_row(int err)
{
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(rows); i++)
        if (rows[i].err == err)
            return i;
    return 0;
}

/* Winsock codes as winerror.h defines them (WSABASEERR 10000 + n). */
static const struct {
    int err;
    int wsa;
    const char *wsa_name;
} winsock[] = {
    { EINTR, 10004, "WSAEINTR" },
    { EBADF, 10009, "WSAEBADF" },
    { EACCES, 10013, "WSAEACCES" },
    { EFAULT, 10014, "WSAEFAULT" },
    { EINVAL, 10022, "WSAEINVAL" },
    { EMFILE, 10024, "WSAEMFILE" },
    { EAGAIN, 10035, "WSAEWOULDBLOCK" },
    { EINPROGRESS, 10036, "WSAEINPROGRESS" },
    { EALREADY, 10037, "WSAEALREADY" },
    { ENOTSOCK, 10038, "WSAENOTSOCK" },
    { EDESTADDRREQ, 10039, "WSAEDESTADDRREQ" },
    { EMSGSIZE, 10040, "WSAEMSGSIZE" },
    { EPROTOTYPE, 10041, "WSAEPROTOTYPE" },
    { ENOPROTOOPT, 10042, "WSAENOPROTOOPT" },
    { EPROTONOSUPPORT, 10043, "WSAEPROTONOSUPPORT" },
    { ESOCKTNOSUPPORT, 10044, "WSAESOCKTNOSUPPORT" },
    { EOPNOTSUPP, 10045, "WSAEOPNOTSUPP" },
    { EAFNOSUPPORT, 10047, "WSAEAFNOSUPPORT" },
    { EADDRINUSE, 10048, "WSAEADDRINUSE" },
    { EADDRNOTAVAIL, 10049, "WSAEADDRNOTAVAIL" },
    { ENETDOWN, 10050, "WSAENETDOWN" },
    { ENETUNREACH, 10051, "WSAENETUNREACH" },
    { ECONNABORTED, 10053, "WSAECONNABORTED" },
    { ECONNRESET, 10054, "WSAECONNRESET" },
    { ENOBUFS, 10055, "WSAENOBUFS" },
    { EISCONN, 10056, "WSAEISCONN" },
    { ENOTCONN, 10057, "WSAENOTCONN" },
    { ESHUTDOWN, 10058, "WSAESHUTDOWN" },
    { EPIPE, 10058, "WSAESHUTDOWN" },
    { ETIMEDOUT, 10060, "WSAETIMEDOUT" },
    { ECONNREFUSED, 10061, "WSAECONNREFUSED" },
    { EHOSTDOWN, 10064, "WSAEHOSTDOWN" },
    { EHOSTUNREACH, 10065, "WSAEHOSTUNREACH" },
    { ENOMEM, 10055, "WSAENOBUFS" },
};

Test(errors, brief_rows, .timeout = 5)
{
    static const struct {
        int err;
        int wsa;
    } want[] = {
        { ECONNREFUSED, 10061 }, { ETIMEDOUT, 10060 },   { EADDRINUSE, 10048 }, { EADDRNOTAVAIL, 10049 },
        { EACCES, 10013 },       { EINVAL, 10022 },      { ENETUNREACH, 10051 }, { ENETDOWN, 10050 },
        { ESHUTDOWN, 10058 },    { ECONNRESET, 10054 },  { EPROTOTYPE, 10041 }, { EAGAIN, 10035 },
    };
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(want); i++) {
        int got = hvsim_wsa_error(want[i].err);
        int neg = hvsim_wsa_error(-want[i].err);

        cr_assert_eq(got, want[i].wsa, "wsa(%s): %d vs %d", hvsim_err_name(want[i].err), got, want[i].wsa);
        cr_assert_eq(neg, want[i].wsa, "wsa(-%s): %d vs %d", hvsim_err_name(want[i].err), neg, want[i].wsa);
    }
}

Test(errors, winsock_codes_and_names_match_winerror_h, .timeout = 5)
{
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(winsock); i++) {
        int e = winsock[i].err;
        int got = hvsim_wsa_error(e);
        const char *n = hvsim_wsa_name(e), *nn = hvsim_wsa_name(-e);

        cr_assert_eq(got, winsock[i].wsa, "wsa(%d %s): %d vs %d", e, hvsim_err_name(e), got, winsock[i].wsa);
        cr_assert_str_eq(n, winsock[i].wsa_name, "wsa_name(%d): %s vs %s", e, n, winsock[i].wsa_name);
        cr_assert_str_eq(nn, winsock[i].wsa_name, "wsa_name(-%d): %s vs %s", e, nn, winsock[i].wsa_name);
    }
}

Test(errors, names, .timeout = 5)
{
    static const struct {
        int err;
        const char *name;
    } want[] = {
        { ECONNREFUSED, "ECONNREFUSED" }, { ETIMEDOUT, "ETIMEDOUT" }, { EADDRINUSE, "EADDRINUSE" },
        { ENETUNREACH, "ENETUNREACH" },   { ESHUTDOWN, "ESHUTDOWN" }, { EPIPE, "EPIPE" },
        { ENOENT, "ENOENT" },             { EPROTO, "EPROTO" },       { ENOMEM, "ENOMEM" },
    };
    const char *n;
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(want); i++) {
        n = hvsim_err_name(want[i].err);
        cr_assert_str_eq(n, want[i].name, "err_name(%d): %s vs %s", want[i].err, n, want[i].name);
        n = hvsim_err_name(-want[i].err);
        cr_assert_str_eq(n, want[i].name, "err_name(-%d): %s vs %s", want[i].err, n, want[i].name);
    }
    /* EAGAIN and EWOULDBLOCK are one value on Linux; either name is right. */
    n = hvsim_err_name(EAGAIN);
    cr_assert(strcmp(n, "EAGAIN") == 0 || strcmp(n, "EWOULDBLOCK") == 0, "err_name(EAGAIN): %s", n);
    n = hvsim_wsa_name(ECONNREFUSED);
    cr_assert_str_eq(n, "WSAECONNREFUSED", "%s vs %s", n, "WSAECONNREFUSED");
    n = hvsim_wsa_name(EPIPE);
    cr_assert_str_eq(n, "WSAESHUTDOWN", "%s vs %s", n, "WSAESHUTDOWN");
    n = hvsim_wsa_name(EAGAIN);
    cr_assert_str_eq(n, "WSAEWOULDBLOCK", "%s vs %s", n, "WSAEWOULDBLOCK");
    n = hvsim_wsa_name(-EAGAIN);
    cr_assert_str_eq(n, "WSAEWOULDBLOCK", "%s vs %s", n, "WSAEWOULDBLOCK");
}

Test(errors, codes_without_winsock_equivalent, .timeout = 5)
{
    static const int none[] = { ENOENT, EEXIST, EPROTO };
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(none); i++) {
        int w = hvsim_wsa_error(none[i]);
        const char *n = hvsim_wsa_name(none[i]);

        cr_assert_eq(w, 0, "wsa(%s): %d vs 0", hvsim_err_name(none[i]), w);
        cr_assert_str_eq(n, "", "wsa_name(%s): \"%s\" vs \"\"", hvsim_err_name(none[i]), n);
        cr_assert_str_neq(hvsim_err_name(none[i]), "UNKNOWN", "%d is in the map", none[i]);
    }
}

Test(errors, every_row_consistent, .timeout = 5)
{
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(rows); i++) {
        int e = rows[i].err;
        size_t first = first_row(e);
        const char *msg = hvsim_strerror(e), *nmsg = hvsim_strerror(-e), *name = hvsim_err_name(e);
        int w = hvsim_wsa_error(e);

        cr_assert_eq(w, rows[i].wsa, "row %s: wsa %d vs %d", rows[i].name, w, rows[i].wsa);
        /* An alias row (EWOULDBLOCK, ENOTSUP on Linux) answers with its first row's name. */
        cr_assert_str_eq(name, rows[first].name, "row %s: name %s vs %s", rows[i].name, name, rows[first].name);
        cr_assert(msg != NULL && msg[0] != '\0', "row %s: empty message", rows[i].name);
        cr_assert_str_eq(msg, rows[first].msg, "row %s: message \"%s\" vs \"%s\"", rows[i].name, msg, rows[i].msg);
        cr_assert_str_eq(nmsg, msg, "row %s: negative gives \"%s\" vs \"%s\"", rows[i].name, nmsg, msg);
        cr_assert_gt(e, 0, "row %s: errno %d", rows[i].name, e);
        if (rows[i].wsa != 0) {
            const char *wn = hvsim_wsa_name(e);

            cr_assert(rows[i].wsa > 10000 && rows[i].wsa < 11100, "row %s: %d is no Winsock code", rows[i].name,
                      rows[i].wsa);
            cr_assert(strncmp(wn, "WSAE", 4) == 0, "row %s: wsa_name %s", rows[i].name, wn);
        } else {
            cr_assert_str_eq(hvsim_wsa_name(e), "", "row %s: wsa_name %s vs \"\"", rows[i].name, hvsim_wsa_name(e));
        }
    }
}

/* Two rows share a value only where Linux gives two names one value; such a
 * pair must agree on the Winsock code, or the lookup would depend on order. */
Test(errors, only_aliases_share_an_errno, .timeout = 5)
{
    size_t i, j;

    for (i = 0; i < HVSIM_ARRAY_SIZE(rows); i++)
        for (j = i + 1; j < HVSIM_ARRAY_SIZE(rows); j++) {
            int alias = (strcmp(rows[i].name, "EAGAIN") == 0 && strcmp(rows[j].name, "EWOULDBLOCK") == 0) ||
                        (strcmp(rows[i].name, "EOPNOTSUPP") == 0 && strcmp(rows[j].name, "ENOTSUP") == 0);

            if (rows[i].err != rows[j].err)
                continue;
            cr_assert(alias, "rows %s and %s share errno %d", rows[i].name, rows[j].name, rows[i].err);
            cr_assert_eq(rows[i].wsa, rows[j].wsa, "aliases %s and %s: wsa %d vs %d", rows[i].name, rows[j].name,
                         rows[i].wsa, rows[j].wsa);
        }
}

Test(errors, unknown_errno, .timeout = 5)
{
    static const int unknown[] = { 0, 4095, 9999, ENOTTY, EROFS, ENOSPC };
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(unknown); i++) {
        int e = unknown[i];
        int w = hvsim_wsa_error(e), wn = hvsim_wsa_error(-e);
        const char *n = hvsim_err_name(e), *m;

        cr_assert_eq(w, 0, "wsa(%d): %d vs 0", e, w);
        cr_assert_eq(wn, 0, "wsa(-%d): %d vs 0", e, wn);
        cr_assert_str_eq(n, "UNKNOWN", "err_name(%d): %s vs UNKNOWN", e, n);
        cr_assert_str_eq(hvsim_err_name(-e), "UNKNOWN", "err_name(-%d): %s vs UNKNOWN", e, hvsim_err_name(-e));
        cr_assert_str_eq(hvsim_wsa_name(e), "", "wsa_name(%d): \"%s\" vs \"\"", e, hvsim_wsa_name(e));
        /* Unknown codes fall back to strerror(), whose text the next call may
         * replace: check each before the next call. */
        m = hvsim_strerror(e);
        cr_assert(m != NULL && m[0] != '\0', "strerror(%d) is empty", e);
        m = hvsim_strerror(-e);
        cr_assert(m != NULL && m[0] != '\0', "strerror(-%d) is empty", e);
    }
}

/* The library's one failure path (sim/lib/error.c). Only sim/lib includes the
 * library's internal header, so this white-box test names the one function. */
int hvsim__fail(int negerr);

Test(errors, fail_sets_errno_and_last_error, .timeout = 5)
{
    int rc;

    errno = 0;
    rc = hvsim__fail(-ECONNREFUSED);
    cr_assert_eq(rc, -1, "%d vs -1", rc);
    cr_assert_eq(errno, ECONNREFUSED, "errno %d vs %d", errno, ECONNREFUSED);
    cr_assert_eq(hvsim_get_last_error(), 10061, "%d vs %d", hvsim_get_last_error(), 10061);
    rc = hvsim__fail(ETIMEDOUT);
    cr_assert_eq(rc, -1, "%d vs -1", rc);
    cr_assert_eq(errno, ETIMEDOUT, "errno %d vs %d", errno, ETIMEDOUT);
    cr_assert_eq(hvsim_get_last_error(), 10060, "%d vs %d", hvsim_get_last_error(), 10060);
    rc = hvsim__fail(-ENOENT);
    cr_assert_eq(errno, ENOENT, "errno %d vs %d", errno, ENOENT);
    cr_assert_eq(hvsim_get_last_error(), 0, "%d vs %d", hvsim_get_last_error(), 0);
}

static void *other_thread(void *arg)
{
    int *seen = arg;

    seen[0] = hvsim_get_last_error();
    hvsim__fail(-EADDRINUSE);
    seen[1] = hvsim_get_last_error();
    return NULL;
}

Test(errors, last_error_is_per_thread, .timeout = 5)
{
    pthread_t t;
    int seen[2] = { -1, -1 };

    hvsim__fail(-ECONNRESET);
    cr_assert_eq(pthread_create(&t, NULL, other_thread, seen), 0, "pthread_create failed");
    pthread_join(t, NULL);
    cr_assert_eq(seen[0], 0, "a new thread starts with %d vs 0", seen[0]);
    cr_assert_eq(seen[1], 10048, "%d vs %d", seen[1], 10048);
    cr_assert_eq(hvsim_get_last_error(), 10054, "this thread's: %d vs %d", hvsim_get_last_error(), 10054);
}

/* ---- SipHash-2-4, 128-bit output ------------------------------------------------ */

/* From the reference implementation's vectors.h (vectors_sip128), key 00..0f,
 * message 00 01 .. (len-1). */
static const struct {
    size_t len;
    uint8_t mac[16];
} sip128[] = {
    { 0, { 0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93 } },
    { 1, { 0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44, 0x34, 0x76, 0x59, 0x11, 0x9b, 0x22, 0xfc, 0x45 } },
    { 7, { 0xa1, 0xf1, 0xeb, 0xbe, 0xd8, 0xdb, 0xc1, 0x53, 0xc0, 0xb8, 0x4a, 0xa6, 0x1f, 0xf0, 0x82, 0x39 } },
    { 8, { 0x3b, 0x62, 0xa9, 0xba, 0x62, 0x58, 0xf5, 0x61, 0x0f, 0x83, 0xe2, 0x64, 0xf3, 0x14, 0x97, 0xb4 } },
    { 15, { 0x54, 0x93, 0xe9, 0x99, 0x33, 0xb0, 0xa8, 0x11, 0x7e, 0x08, 0xec, 0x0f, 0x97, 0xcf, 0xc3, 0xd9 } },
    { 16, { 0x6e, 0xe2, 0xa4, 0xca, 0x67, 0xb0, 0x54, 0xbb, 0xfd, 0x33, 0x15, 0xbf, 0x85, 0x23, 0x05, 0x77 } },
    { 63, { 0x51, 0x50, 0xd1, 0x77, 0x2f, 0x50, 0x83, 0x4a, 0x50, 0x3e, 0x06, 0x9a, 0x97, 0x3f, 0xbd, 0x7c } },
};

static const char *hex(const uint8_t *b, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return out;
}

static void ref_key(uint8_t key[16])
{
    int i;

    for (i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
}

Test(errors, siphash128_reference_vectors, .timeout = 5)
{
    uint8_t key[16], msg[64], out[16];
    size_t i;

    ref_key(key);
    for (i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    for (i = 0; i < HVSIM_ARRAY_SIZE(sip128); i++) {
        char g[33], w[33];

        memset(out, 0, sizeof(out));
        hvsim__siphash128(key, msg, sip128[i].len, out);
        cr_assert(memcmp(out, sip128[i].mac, 16) == 0, "len %zu: %s vs %s", sip128[i].len, hex(out, 16, g),
                  hex(sip128[i].mac, 16, w));
    }
}

Test(errors, siphash128_empty_is_a3817f04, .timeout = 5)
{
    uint8_t key[16], out[16];
    char g[33];

    ref_key(key);
    hvsim__siphash128(key, "", 0, out);
    cr_assert_str_eq(hex(out, 16, g), "a3817f04ba25a8e66df67214c7550293", "%s vs %s", g,
                     "a3817f04ba25a8e66df67214c7550293");
}

Test(errors, siphash128_unaligned_input, .timeout = 5)
{
    uint8_t key[16], buf[80], out[16];
    size_t i;

    ref_key(key);
    for (i = 0; i < 15; i++)
        buf[i + 3] = (uint8_t)i;
    hvsim__siphash128(key, buf + 3, 15, out);
    cr_assert(memcmp(out, sip128[4].mac, 16) == 0, "unaligned 15-byte message gives another MAC");
}

Test(errors, siphash128_mac_properties, .timeout = 5)
{
    uint8_t key[16], key2[16], msg[40], a[16], b[16];
    size_t i, bit;

    ref_key(key);
    for (i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7 + 1);
    hvsim__siphash128(key, msg, sizeof(msg), a);
    /* Deterministic. */
    hvsim__siphash128(key, msg, sizeof(msg), b);
    cr_assert(memcmp(a, b, 16) == 0, "same input, different MACs");
    /* Every 1-bit change of the key changes the MAC. */
    for (bit = 0; bit < 128; bit++) {
        memcpy(key2, key, 16);
        key2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        hvsim__siphash128(key2, msg, sizeof(msg), b);
        cr_assert(memcmp(a, b, 16) != 0, "key bit %zu flipped, same MAC", bit);
    }
    /* Every 1-bit change of the message changes the MAC. */
    for (bit = 0; bit < sizeof(msg) * 8; bit++) {
        msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        hvsim__siphash128(key, msg, sizeof(msg), b);
        msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert(memcmp(a, b, 16) != 0, "message bit %zu flipped, same MAC", bit);
    }
    /* Length is part of the MAC: a trailing zero byte changes it. */
    msg[sizeof(msg) - 1] = 0;
    hvsim__siphash128(key, msg, sizeof(msg), a);
    hvsim__siphash128(key, msg, sizeof(msg) - 1, b);
    cr_assert(memcmp(a, b, 16) != 0, "a trailing zero byte does not change the MAC");
}
