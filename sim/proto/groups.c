/* SPDX-License-Identifier: MIT */
/*
 * groups.c: a virtio VM's sibling groups (vm add --group A+B), the opt-in
 * that vhost-device-vsock offers with its groups= option: two VMs that share
 * a group reach each other by CID (docs/reference/vsock-virtio.md 7.8). One
 * rule for the text, used by hvsimctl, the daemon's model and its state file.
 *
 * The text is NAME[+NAME...]: at most HVSIM_GROUPS_COUNT names, each 1 to
 * HVSIM_GROUP_NAME_MAX characters of [A-Za-z0-9._-], none twice; "" is no
 * group at all (the default: a VM reaches no sibling).
 */
#include <errno.h>
#include <string.h>

#include "hvsim/hvsim.h"
#include "hvproto/util.h"

static int name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
           ch == '_' || ch == '-';
}

/* Does the '+'-separated list in s (length n) hold the name a (length an)? */
static int holds(const char *s, size_t n, const char *a, size_t an)
{
    size_t i = 0;

    while (i < n) {
        size_t j = i;

        while (j < n && s[j] != '+')
            j++;
        if (j - i == an && memcmp(s + i, a, an) == 0)
            return 1;
        i = j + 1;
    }
    return 0;
}

int hvsim__groups_check(const char *text, char *err, size_t errlen)
{
    size_t len, i = 0, count = 0;

    if (text == NULL)
        return 0;
    len = strnlen(text, HVSIM_GROUPS_MAX);
    if (len == HVSIM_GROUPS_MAX) {
        hvsim__set_err(err, errlen, "expected at most %d characters in all, got more", HVSIM_GROUPS_MAX - 1);
        return -EINVAL;
    }
    if (len == 0)
        return 0;
    while (i <= len) {
        size_t j = i;

        while (j < len && text[j] != '+') {
            if (!name_char(text[j])) {
                hvsim__set_err(err, errlen, "group %zu: character '%c' is not allowed: expected names of "
                               "[A-Za-z0-9._-] joined by '+'", count + 1, text[j]);
                return -EINVAL;
            }
            j++;
        }
        if (j == i) {
            hvsim__set_err(err, errlen, "group %zu is empty: expected NAME[+NAME...]", count + 1);
            return -EINVAL;
        }
        if (j - i > HVSIM_GROUP_NAME_MAX) {
            hvsim__set_err(err, errlen, "group %zu is %zu characters long: expected at most %d", count + 1, j - i,
                           HVSIM_GROUP_NAME_MAX);
            return -EINVAL;
        }
        if (holds(text, i ? i - 1 : 0, text + i, j - i)) {
            hvsim__set_err(err, errlen, "group '%.*s' is named twice", (int)(j - i), text + i);
            return -EINVAL;
        }
        if (++count > HVSIM_GROUPS_COUNT) {
            hvsim__set_err(err, errlen, "expected at most %d groups", HVSIM_GROUPS_COUNT);
            return -EINVAL;
        }
        i = j + 1;
    }
    return 0;
}

int hvsim__groups_share(const char *a, const char *b)
{
    size_t an = strnlen(a, HVSIM_GROUPS_MAX), bn = strnlen(b, HVSIM_GROUPS_MAX), i = 0;

    while (i < an) {
        size_t j = i;

        while (j < an && a[j] != '+')
            j++;
        if (j > i && holds(b, bn, a + i, j - i))
            return 1;
        i = j + 1;
    }
    return 0;
}
