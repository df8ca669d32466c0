/* SPDX-License-Identifier: MIT */
/*
 * util.c: the small shared services of the agent: failure messages and
 * checks for the cases (cf_fail_at, cf_check_at), names for reports, and the
 * bookkeeping that lets the framework undo every administrative change a case
 * made (settings, services, VM states, HCS entries) before the next case runs.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../catalogue.h"
#include "agent.h"

struct cf_notes *cf__notes;
int cf__side = -1;

static const char *base_name(const char *file)
{
    const char *s = strrchr(file, '/');
    const char *b = strrchr(file, '\\');

    if (b != NULL && (s == NULL || b > s))
        s = b;
    return s ? s + 1 : file;
}

/* snprintf that may cut: the messages are for people, a cut one is still useful. */
static void fmt_into(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fmt_into(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

int cf_fail_at(struct cf_ctx *ctx, const char *file, int line, const char *fmt, ...)
{
    char msg[sizeof(ctx->fail)];
    va_list ap;

    /* The first failure is the cause; what a case says after it (often its
     * own cf_fail on the same error) would only hide it. */
    if (ctx->fail[0] != '\0')
        return -1;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* A long message is cut at the end: the file and line matter less than
     * what went wrong. */
    if (ctx->where[0] != '\0')
        fmt_into(ctx->fail, sizeof(ctx->fail), "%s, at %s (%s:%d)", msg, ctx->where, base_name(file), line);
    else
        fmt_into(ctx->fail, sizeof(ctx->fail), "%s (%s:%d)", msg, base_name(file), line);
    return -1;
}

static void describe(long v, char *buf, size_t len)
{
    if (v < 0)
        snprintf(buf, len, "%s", cf_errno_name((int)v));
    else
        snprintf(buf, len, "ok (%ld)", v);
}

int cf_check_at(struct cf_ctx *ctx, const char *file, int line, long got, int want, const char *what)
{
    char w[48], g[48];
    int ok;

    if (want == 0)
        ok = got >= 0;
    else if (want == CF_EOF)
        ok = got == 0;
    else if (want == CF_NA)
        ok = 1;
    else
        ok = got == want;
    if (ok)
        return 0;
    cf_expect_name(want, w, sizeof(w));
    if (want == CF_EOF && got > 0)
        snprintf(g, sizeof(g), "%ld bytes", got);
    else
        describe(got, g, sizeof(g));
    return cf_fail_at(ctx, file, line, "%s: expected %s, got %s", what ? what : "result", w, g);
}

const char *cf_column_name(enum cf_column col)
{
    switch (col) {
    case CF_COL_WINDOWS:
        return "windows";
    case CF_COL_HVSOCK:
        return "hvsock";
    case CF_COL_VIRTIO:
        return "virtio";
    default:
        return "?";
    }
}

const char *cf_confidence_name(enum cf_confidence c)
{
    switch (c) {
    case CF_SOURCED:
        return "sourced";
    case CF_INFERRED:
        return "inferred";
    case CF_UNCONFIRMED:
        return "unconfirmed";
    default:
        return "?";
    }
}

const char *cf_expect_name(int e, char *buf, size_t len)
{
    if (e == 0)
        snprintf(buf, len, "ok");
    else if (e == CF_NA)
        snprintf(buf, len, "n/a");
    else if (e == CF_EOF)
        snprintf(buf, len, "EOF");
    else if (e < 0)
        snprintf(buf, len, "%s", cf_errno_name(e));
    else
        snprintf(buf, len, "%d", e);
    return buf;
}

/* ---- administrative bookkeeping ------------------------------------------------------ */

int cf__admin_allowed(void)
{
    if (cf__side == 1) {
        fprintf(stderr, "hvsim-agent: cf_admin_* called on the guest side: administration is the host side's "
                        "(ask it over the control channel)\n");
        return -EPERM;
    }
    return 0;
}

void cf__note_admin(enum cf_note_kind kind, const cf_guid_t *a, const cf_guid_t *b, const char *text)
{
    struct cf_note *n;

    if (cf__notes == NULL)
        return;
    if (cf__notes->n >= CF_NOTES_MAX) {
        cf__notes->overflow = 1;
        return;
    }
    n = &cf__notes->v[cf__notes->n];
    memset(n, 0, sizeof(*n));
    n->kind = (int)kind;
    if (a)
        n->a = *a;
    if (b)
        n->b = *b;
    if (text)
        snprintf(n->text, sizeof(n->text), "%s", text);
    /* Counted last: a case killed in the middle leaves no half-written note. */
    cf__notes->n++;
}

static void warnf(void (*warn)(const char *), const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(void (*warn)(const char *), const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    warn(msg);
}

void cf__admin_revert(struct cf_notes *notes, void (*warn)(const char *msg))
{
    struct cf_notes *saved = cf__notes;
    int i, rc;

    /* The undo calls are admin calls too: they must not be noted. */
    cf__notes = NULL;
    if (notes->overflow)
        warnf(warn, "the case made more than %d administrative changes: the later ones were not undone",
              CF_NOTES_MAX);
    /* Newest first, so that a setting changed twice ends at its first old value. */
    for (i = notes->n - 1; i >= 0; i--) {
        const struct cf_note *n = &notes->v[i];
        char g[37], name[128];
        const char *eq;

        cf_guid_format(&n->a, g);
        switch (n->kind) {
        case CF_NOTE_SET:
            eq = strchr(n->text, '=');
            if (eq == NULL || (size_t)(eq - n->text) >= sizeof(name))
                break;
            memcpy(name, n->text, (size_t)(eq - n->text));
            name[eq - n->text] = '\0';
            rc = cf_admin_set(name, eq + 1);
            if (rc < 0)
                warnf(warn, "could not put setting %s back to '%s': %s", name, eq + 1, cf_errno_name(rc));
            break;
        case CF_NOTE_SERVICE_ADD:
            rc = cf_admin_service_rm(&n->a);
            if (rc < 0 && rc != -ENOENT)
                warnf(warn, "could not remove service %s that the case registered: %s", g, cf_errno_name(rc));
            break;
        case CF_NOTE_SERVICE_RM:
            rc = cf_admin_service_add(&n->a, n->text);
            if (rc < 0 && rc != -EEXIST)
                warnf(warn, "could not register service %s again after the case removed it: %s", g,
                      cf_errno_name(rc));
            break;
        case CF_NOTE_VM_OP:
            rc = cf__admin_vm_restore(&n->a);
            if (rc < 0 && rc != -ENOENT)
                warnf(warn, "could not bring VM %s back to running after '%s': %s", g, n->text, cf_errno_name(rc));
            break;
        case CF_NOTE_HCS:
            /* An all-clear entry is what an unlisted service means (reference 2.4). */
            rc = cf_admin_hcs(&n->a, &n->b, 0, 0, 0, 0);
            if (rc < 0)
                warnf(warn, "could not clear the HCS entry the case set on VM %s: %s", g, cf_errno_name(rc));
            break;
        default:
            break;
        }
    }
    notes->n = 0;
    notes->overflow = 0;
    cf__notes = saved;
}
