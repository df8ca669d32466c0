/* SPDX-License-Identifier: MIT */
/*
 * test_settings.c: unit tests of the emulation-choice table in
 * sim/daemon/settings.c: the defaults (as text and as the struct fields
 * route.c reads), a set/get round trip of every choice of every row (read
 * from settings_doc, so a new row is covered without editing this file),
 * refusal of bad values with a message that names the setting and its
 * choices and leaves the old value, unknown names, the timeout bounds
 * (1..HVSOCKET_CONNECT_TIMEOUT_MAX), the documentation rows and the
 * "name=value" listing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvsim/hvsim.h"
#include "hvproto/util.h"
#include "../daemon/daemon.h"

static const struct {
    const char *name;
    const char *value;
} defaults[] = {
    { "windows_connect_timeout_ms", "2000" },
    { "linux_connect_timeout_ms", "2000" },
    { "connect_timeout_above_max", "reject" },
    { "guest_zero_vmid_reaches_host", "1" },
    { "refusal_profile", "hyperv" },
    { "connect_to_off_vm", "ENETUNREACH" },
    { "connect_to_unknown_vm", "ENETUNREACH" },
    { "guest_to_other_vm", "ENETUNREACH" },
    { "virtio_guest_to_other_vm", "timeout" },
    { "pause_freezes_guests", "0" },
    { "reset_kills_guests", "0" },
    { "max_connections_per_partition", "1024" },
    { "max_binds_per_partition", "4096" },
    { "max_pending_connects", "64" },
    { "max_queued_events", "1024" },
    { "max_tracked_connections", "1024" },
    { "hello_timeout_ms", "5000" },
};

static void get(const struct settings *s, const char *name, char *v, size_t len)
{
    int rc = settings_get(s, name, v, len);

    cr_assert_eq(rc, 0, "get %s: %d vs 0", name, rc);
}

Test(settings, default_values_as_text, .timeout = 5)
{
    struct settings s;
    char v[192];
    size_t i;

    settings_defaults(&s);
    for (i = 0; i < HVSIM_ARRAY_SIZE(defaults); i++) {
        get(&s, defaults[i].name, v, sizeof(v));
        cr_assert_str_eq(v, defaults[i].value, "%s: %s vs %s", defaults[i].name, v, defaults[i].value);
    }
    cr_assert_eq(settings_count(), HVSIM_ARRAY_SIZE(defaults), "rows: %zu vs %zu (a new row needs a default here)",
                 settings_count(), HVSIM_ARRAY_SIZE(defaults));
}

Test(settings, default_values_in_struct, .timeout = 5)
{
    struct settings s;

    memset(&s, 0x5a, sizeof(s));
    settings_defaults(&s);
    cr_assert_eq(s.win_timeout_ms, 2000u, "%u vs %u", s.win_timeout_ms, 2000u);
    cr_assert_eq(s.linux_timeout_ms, 2000u, "%u vs %u", s.linux_timeout_ms, 2000u);
    cr_assert_eq(s.timeout_clamp, 0u, "%u vs %u", s.timeout_clamp, 0u);
    cr_assert_eq(s.zero_reaches_parent, 1u, "%u vs %u", s.zero_reaches_parent, 1u);
    cr_assert_eq(s.profile, (uint32_t)PROFILE_HYPERV, "%u vs %u", s.profile, (uint32_t)PROFILE_HYPERV);
    cr_assert_eq(s.off_vm_error, -ENETUNREACH, "%d vs %d", s.off_vm_error, -ENETUNREACH);
    cr_assert_eq(s.unknown_vm_error, -ENETUNREACH, "%d vs %d", s.unknown_vm_error, -ENETUNREACH);
    cr_assert_eq(s.sibling_error, -ENETUNREACH, "%d vs %d", s.sibling_error, -ENETUNREACH);
    cr_assert_eq(s.pause_freezes, 0u, "%u vs %u", s.pause_freezes, 0u);
    cr_assert_eq(s.reset_kills, 0u, "%u vs %u", s.reset_kills, 0u);
}

Test(settings, model_init_applies_defaults, .timeout = 5)
{
    struct model m;
    struct settings s;

    model_init(&m);
    settings_defaults(&s);
    cr_assert(memcmp(&m.set, &s, sizeof(s)) == 0, "model_init's settings differ from settings_defaults");
    model_free(&m);
}

/* Split a row's choices into values to try: "a|b|c" gives a, b, c;
 * "lo..hi" gives lo, hi and a value in between. */
static size_t choices_of(const char *choices, char out[][64], size_t max)
{
    const char *dots = strstr(choices, "..");
    size_t n = 0;

    if (dots) {
        unsigned long lo = strtoul(choices, NULL, 10), hi = strtoul(dots + 2, NULL, 10);

        snprintf(out[n++], 64, "%lu", lo);
        snprintf(out[n++], 64, "%lu", hi);
        snprintf(out[n++], 64, "%lu", lo + (hi - lo) / 3);
        return n;
    }
    while (*choices && n < max) {
        size_t len = strcspn(choices, "|");

        cr_assert_lt(len, (size_t)64, "choice too long in %s", choices);
        memcpy(out[n], choices, len);
        out[n++][len] = '\0';
        choices += len;
        if (*choices == '|')
            choices++;
    }
    return n;
}

Test(settings, set_get_round_trip_every_row, .timeout = 5)
{
    size_t i, k, n;

    cr_assert_gt(settings_count(), 0u, "no settings");
    for (i = 0; i < settings_count(); i++) {
        const char *name = NULL, *choices = NULL, *conf = NULL;
        char vals[16][64], v[192], err[256];

        cr_assert_not_null(settings_doc(i, &name, &choices, &conf), "row %zu has no doc", i);
        n = choices_of(choices, vals, 16);
        cr_assert_geq(n, 2u, "%s: %zu choices in \"%s\"", name, n, choices);
        for (k = 0; k < n; k++) {
            struct settings s;
            int rc;

            settings_defaults(&s);
            err[0] = '\0';
            rc = settings_set(&s, name, vals[k], err, sizeof(err));
            cr_assert_eq(rc, 0, "set %s=%s: %d vs 0 (%s)", name, vals[k], rc, err);
            get(&s, name, v, sizeof(v));
            cr_assert_str_eq(v, vals[k], "%s: got %s vs set %s", name, v, vals[k]);
        }
    }
}

Test(settings, set_reaches_struct_fields, .timeout = 5)
{
    static const struct {
        const char *name, *value;
        size_t off;
        int32_t want;
    } cases[] = {
        { "windows_connect_timeout_ms", "30000", offsetof(struct settings, win_timeout_ms), 30000 },
        { "linux_connect_timeout_ms", "1", offsetof(struct settings, linux_timeout_ms), 1 },
        { "connect_timeout_above_max", "clamp", offsetof(struct settings, timeout_clamp), 1 },
        { "guest_zero_vmid_reaches_host", "0", offsetof(struct settings, zero_reaches_parent), 0 },
        { "refusal_profile", "kvm", offsetof(struct settings, profile), PROFILE_KVM },
        { "connect_to_off_vm", "EINVAL", offsetof(struct settings, off_vm_error), -EINVAL },
        { "connect_to_off_vm", "timeout", offsetof(struct settings, off_vm_error), 1 },
        { "connect_to_unknown_vm", "ECONNREFUSED", offsetof(struct settings, unknown_vm_error), -ECONNREFUSED },
        { "connect_to_unknown_vm", "ENETDOWN", offsetof(struct settings, unknown_vm_error), -ENETDOWN },
        { "guest_to_other_vm", "timeout", offsetof(struct settings, sibling_error), 1 },
        { "virtio_guest_to_other_vm", "ENETUNREACH", offsetof(struct settings, virtio_sibling_error), -ENETUNREACH },
        { "pause_freezes_guests", "1", offsetof(struct settings, pause_freezes), 1 },
        { "reset_kills_guests", "1", offsetof(struct settings, reset_kills), 1 },
    };
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(cases); i++) {
        struct settings s, before;
        char err[256];
        int32_t got;
        int rc;

        settings_defaults(&s);
        before = s;
        rc = settings_set(&s, cases[i].name, cases[i].value, err, sizeof(err));
        cr_assert_eq(rc, 0, "set %s=%s: %d vs 0 (%s)", cases[i].name, cases[i].value, rc, err);
        memcpy(&got, (char *)&s + cases[i].off, sizeof(got));
        cr_assert_eq(got, cases[i].want, "%s=%s: field %d vs %d", cases[i].name, cases[i].value, got, cases[i].want);
        /* Nothing else changed. */
        memcpy((char *)&before + cases[i].off, &got, sizeof(got));
        cr_assert(memcmp(&before, &s, sizeof(s)) == 0, "%s=%s changed another field", cases[i].name, cases[i].value);
    }
}

Test(settings, bad_values_are_einval_with_message, .timeout = 5)
{
    static const char *bad_any[] = { "", "bogus", "2 ", "-1" };
    size_t i, k;

    for (i = 0; i < settings_count(); i++) {
        const char *name = NULL, *choices = NULL, *conf = NULL;

        settings_doc(i, &name, &choices, &conf);
        for (k = 0; k < HVSIM_ARRAY_SIZE(bad_any); k++) {
            struct settings s, before;
            char err[256];
            int rc;

            settings_defaults(&s);
            before = s;
            err[0] = '\0';
            rc = settings_set(&s, name, bad_any[k], err, sizeof(err));
            cr_assert_eq(rc, -EINVAL, "set %s='%s': %d vs %d", name, bad_any[k], rc, -EINVAL);
            cr_assert(strstr(err, name) != NULL, "message for %s='%s' does not name it: \"%s\"", name, bad_any[k],
                      err);
            cr_assert(strstr(err, choices) != NULL, "message for %s='%s' does not give the choices %s: \"%s\"", name,
                      bad_any[k], choices, err);
            cr_assert(memcmp(&before, &s, sizeof(s)) == 0, "a rejected %s='%s' changed the settings", name,
                      bad_any[k]);
        }
    }
}

Test(settings, bad_values_per_kind, .timeout = 5)
{
    static const struct {
        const char *name, *value;
    } bad[] = {
        { "windows_connect_timeout_ms", "12x" },
        { "windows_connect_timeout_ms", "2.5" },
        { "windows_connect_timeout_ms", "99999999999999999999999" },
        { "windows_connect_timeout_ms", "4294969296" }, /* 2^32 + 2000: must not wrap to 2000 */
        { "linux_connect_timeout_ms", "0x10" },
        { "guest_zero_vmid_reaches_host", "2" },
        { "guest_zero_vmid_reaches_host", "true" },
        { "guest_zero_vmid_reaches_host", "10" },
        { "pause_freezes_guests", "yes" },
        { "refusal_profile", "HYPERV" },
        { "refusal_profile", "kvm2" },
        { "connect_timeout_above_max", "Clamp" },
        { "connect_to_off_vm", "ETIMEDOUT" },
        { "connect_to_off_vm", "enetdown" },
        { "connect_to_unknown_vm", "110" },
        { "guest_to_other_vm", "Timeout" },
    };
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(bad); i++) {
        struct settings s;
        char err[256], before[192], after[192];
        int rc;

        settings_defaults(&s);
        get(&s, bad[i].name, before, sizeof(before));
        err[0] = '\0';
        rc = settings_set(&s, bad[i].name, bad[i].value, err, sizeof(err));
        cr_assert_eq(rc, -EINVAL, "set %s='%s': %d vs %d", bad[i].name, bad[i].value, rc, -EINVAL);
        cr_assert(strstr(err, bad[i].name) != NULL, "message does not name %s: \"%s\"", bad[i].name, err);
        cr_assert(strstr(err, bad[i].value) != NULL, "message does not quote '%s': \"%s\"", bad[i].value, err);
        get(&s, bad[i].name, after, sizeof(after));
        cr_assert_str_eq(after, before, "%s changed to %s vs %s", bad[i].name, after, before);
    }
}

Test(settings, timeout_bounds, .timeout = 5)
{
    static const char *names[] = { "windows_connect_timeout_ms", "linux_connect_timeout_ms" };
    size_t i;

    for (i = 0; i < HVSIM_ARRAY_SIZE(names); i++) {
        struct settings s;
        char err[256], v[64];
        int rc;

        settings_defaults(&s);
        rc = settings_set(&s, names[i], "0", err, sizeof(err));
        cr_assert_eq(rc, -EINVAL, "%s=0: %d vs %d", names[i], rc, -EINVAL);
        rc = settings_set(&s, names[i], "300001", err, sizeof(err));
        cr_assert_eq(rc, -EINVAL, "%s=300001: %d vs %d", names[i], rc, -EINVAL);
        get(&s, names[i], v, sizeof(v));
        cr_assert_str_eq(v, "2000", "%s after rejected values: %s vs 2000", names[i], v);
        rc = settings_set(&s, names[i], "300000", err, sizeof(err));
        cr_assert_eq(rc, 0, "%s=300000: %d vs 0 (%s)", names[i], rc, err);
        get(&s, names[i], v, sizeof(v));
        cr_assert_str_eq(v, "300000", "%s: %s vs 300000", names[i], v);
        rc = settings_set(&s, names[i], "1", err, sizeof(err));
        cr_assert_eq(rc, 0, "%s=1: %d vs 0 (%s)", names[i], rc, err);
        get(&s, names[i], v, sizeof(v));
        cr_assert_str_eq(v, "1", "%s: %s vs 1", names[i], v);
    }
}

Test(settings, unknown_names_are_enoent, .timeout = 5)
{
    static const char *names[] = { "", "no_such_setting", "Refusal_Profile", "refusal_profile ",
                                   "windows_connect_timeout" };
    struct settings s, before;
    size_t i;

    settings_defaults(&s);
    before = s;
    for (i = 0; i < HVSIM_ARRAY_SIZE(names); i++) {
        char err[256], v[64];
        int rc;

        err[0] = '\0';
        rc = settings_set(&s, names[i], "1", err, sizeof(err));
        cr_assert_eq(rc, -ENOENT, "set '%s': %d vs %d", names[i], rc, -ENOENT);
        cr_assert_neq(err[0], '\0', "set '%s': no message", names[i]);
        if (names[i][0])
            cr_assert(strstr(err, names[i]) != NULL, "message does not name '%s': \"%s\"", names[i], err);
        rc = settings_get(&s, names[i], v, sizeof(v));
        cr_assert_eq(rc, -ENOENT, "get '%s': %d vs %d", names[i], rc, -ENOENT);
    }
    cr_assert(memcmp(&before, &s, sizeof(s)) == 0, "unknown names changed the settings");
}

Test(settings, small_error_buffer_is_safe, .timeout = 5)
{
    struct settings s;
    char err[8];
    int rc;

    settings_defaults(&s);
    memset(err, 'x', sizeof(err));
    rc = settings_set(&s, "refusal_profile", "a-value-much-longer-than-the-buffer", err, sizeof(err));
    cr_assert_eq(rc, -EINVAL, "%d vs %d", rc, -EINVAL);
    cr_assert_eq(err[sizeof(err) - 1], '\0', "error text not terminated in a small buffer");
    rc = settings_set(&s, "a-name-much-longer-than-the-buffer", "1", err, sizeof(err));
    cr_assert_eq(rc, -ENOENT, "%d vs %d", rc, -ENOENT);
    cr_assert_eq(err[sizeof(err) - 1], '\0', "error text not terminated in a small buffer");
}

Test(settings, docs, .timeout = 5)
{
    size_t i, j;
    const char *name, *choices, *conf, *why;

    for (i = 0; i < settings_count(); i++) {
        name = choices = conf = NULL;
        why = settings_doc(i, &name, &choices, &conf);
        cr_assert_not_null(why, "row %zu: no why", i);
        cr_assert(name && name[0], "row %zu: no name", i);
        cr_assert(choices && choices[0], "%s: no choices", name);
        cr_assert(why[0] != '\0', "%s: empty why", name);
        cr_assert(conf && (strcmp(conf, "sourced") == 0 || strcmp(conf, "UNCONFIRMED") == 0 ||
                           strcmp(conf, "INFERRED") == 0),
                  "%s: confidence %s", name, conf ? conf : "(null)");
        cr_assert_eq(strcspn(name, " =\n\t"), strlen(name), "%s: name has a space, '=' or newline", name);
        for (j = 0; j < i; j++) {
            const char *n2, *c2, *f2;

            settings_doc(j, &n2, &c2, &f2);
            cr_assert_str_neq(name, n2, "rows %zu and %zu share the name %s", j, i, name);
        }
    }
    cr_assert_null(settings_doc(settings_count(), &name, &choices, &conf), "doc past the end is not NULL");
    cr_assert_null(settings_doc((size_t)-1, &name, &choices, &conf), "doc of -1 is not NULL");
}

Test(settings, list_has_one_line_per_setting, .timeout = 5)
{
    struct settings s;
    char err[256];
    char *text, *line, *save = NULL;
    size_t i = 0;

    settings_defaults(&s);
    cr_assert_eq(settings_set(&s, "refusal_profile", "kvm", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(settings_set(&s, "connect_to_off_vm", "timeout", err, sizeof(err)), 0, "%s", err);
    text = settings_list(&s);
    cr_assert_not_null(text, "settings_list returned NULL");
    cr_assert(text[0] != '\0' && text[strlen(text) - 1] == '\n', "listing does not end in a newline: \"%s\"", text);
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
        const char *name, *choices, *conf;
        char v[192], want[300];

        cr_assert_lt(i, settings_count(), "more lines than settings: \"%s\"", line);
        settings_doc(i, &name, &choices, &conf);
        get(&s, name, v, sizeof(v));
        snprintf(want, sizeof(want), "%s=%s", name, v);
        cr_assert_str_eq(line, want, "line %zu: %s vs %s", i, line, want);
    }
    cr_assert_eq(i, settings_count(), "lines: %zu vs %zu", i, settings_count());
    free(text);
}

/* The ceilings (issue 11): counts from 1 to 1000000, each reaching its field. */
Test(settings, limits_are_counts_in_range, .timeout = 5)
{
    static const struct {
        const char *name;
        size_t off;
    } rows[] = {
        { "max_connections_per_partition", offsetof(struct settings, max_conns) },
        { "max_binds_per_partition", offsetof(struct settings, max_binds) },
        { "max_pending_connects", offsetof(struct settings, max_pending) },
        { "max_queued_events", offsetof(struct settings, max_events) },
        { "max_tracked_connections", offsetof(struct settings, max_tracked) },
    };
    static const char *const bad[] = { "0", "1000001", "-1", "", "12x", "1e3" };
    struct settings s;
    char err[256], v[64];
    size_t i, j;

    settings_defaults(&s);
    for (i = 0; i < HVSIM_ARRAY_SIZE(rows); i++) {
        cr_assert_eq(settings_set(&s, rows[i].name, "1", err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(*(uint32_t *)((char *)&s + rows[i].off), 1u, "%s", rows[i].name);
        cr_assert_eq(settings_set(&s, rows[i].name, "1000000", err, sizeof(err)), 0, "%s", err);
        get(&s, rows[i].name, v, sizeof(v));
        cr_assert_str_eq(v, "1000000");
        for (j = 0; j < HVSIM_ARRAY_SIZE(bad); j++)
            cr_assert_eq(settings_set(&s, rows[i].name, bad[j], err, sizeof(err)), -EINVAL, "%s=%s", rows[i].name,
                         bad[j]);
        cr_assert_str_eq(v, "1000000", "a bad value leaves it");
    }
    cr_assert_eq(settings_set(&s, "hello_timeout_ms", "250", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(s.hello_ms, 250u);
}
