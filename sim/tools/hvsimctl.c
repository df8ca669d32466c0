/* SPDX-License-Identifier: MIT */
/*
 * hvsimctl.c: the administration command line of the emulated Hyper-V host.
 * It adds, removes and powers VMs, registers services as the host's
 * GuestCommunicationServices registry key does, and reads or changes the
 * emulation settings, all through the admin calls of hvsim.h.
 *
 * The commands are one table of {words, function, arguments, description}, as
 * in wireguard-tools' wg.c, so the usage text cannot drift from what is
 * accepted. Output is aligned tables for people and, with --json, one JSON
 * value for scripts. Exit status: 0 done, 1 the operation failed, 2 bad usage.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hvsim/hvsim.h"
#include "hvproto/cli.h"
#include "hvproto/util.h" /* hvsim__default_dir: the folder the library and hvsimd use */

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define TABLE_COLS 10
#define MAX_POS 4

struct command;

struct ctx {
    const char *dir;
    int json;
    int exist_ok; /* --exist-ok, where the command takes it */
    hvsim_admin_t *a;
    const struct command *cmd;
};

typedef int command_fn(struct ctx *c, int argc, char **argv);
typedef int plain_fn(struct ctx *c, char **pos);

/* A command either parses its own arguments (fn: it has options, or checks
 * an argument before it needs the daemon), or is plain (run): exactly NPOS
 * positional arguments, then the daemon, both done by main() for it. */
struct command {
    const char *words;
    command_fn *fn;
    plain_fn *run;
    int npos;
    const char *args;
    const char *desc;
};

static const char *const global_usage = "[--dir DIR] [--json]";

/* ---- messages ------------------------------------------------------------------- */

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
    va_list ap;

    fputs("hvsimctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAIL;
}

/* A failed admin call: the daemon's explanation names the argument, so it
 * wins over the bare errno text. */
static int admin_fail(struct ctx *c, int rc, const char *what)
{
    const char *msg = c->a ? hvsim_admin_errmsg(c->a) : "";

    return fail("%s: %s", what, msg && msg[0] ? msg : strerror(-rc));
}

__attribute__((format(printf, 2, 3))) static int usage_fail(const struct ctx *c, const char *fmt, ...)
{
    va_list ap;

    fputs("hvsimctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: hvsimctl %s %s %s\n", global_usage, c->cmd->words, c->cmd->args);
    return EXIT_USAGE;
}

/* ---- the daemon ----------------------------------------------------------------- */

/* Opened only once the arguments are known good, so a usage error never
 * depends on whether a daemon runs. */
static hvsim_admin_t *admin(struct ctx *c)
{
    char path[PATH_MAX];
    struct stat st;
    int rc;

    if (c->a)
        return c->a;
    rc = hvsim_admin_open(c->dir, &c->a);
    if (rc == 0)
        return c->a;
    c->a = NULL;
    if (rc == -EPERM) {
        /* The library refused the folder; the same check says why. */
        char why[512];
        int fd = hvsim__dir_open_trusted(c->dir, 0, why, sizeof(why));

        if (fd >= 0)
            close(fd);
        fail("%s", fd >= 0 ? "the daemon's folder changed while it was checked" : why);
        return NULL;
    }
    if (rc == -ETIMEDOUT) {
        fail("the hvsim daemon in %s did not answer within %d ms (HVSIM_REQUEST_TIMEOUT_MS): is hvsimd stopped?",
             c->dir, hvsim__request_timeout_ms());
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/admin.sock", c->dir);
    /* hvsim_admin_open says ENETDOWN for every failed connect; whether the
     * socket exists tells "never started" from "died" for the message. */
    if (rc == -ENETDOWN && stat(path, &st) < 0)
        fail("no hvsim daemon in %s (%s: %s); start one with: hvsimd --dir %s", c->dir, path, strerror(errno),
             c->dir);
    else if (rc == -ENETDOWN)
        fail("the hvsim daemon in %s does not answer on %s: is hvsimd still running?", c->dir, path);
    else
        fail("cannot reach the hvsim daemon in %s: %s", c->dir, strerror(-rc));
    return NULL;
}

/* ---- arguments ------------------------------------------------------------------ */

struct opt {
    const char *name; /* "--kind" */
    const char **val;
};

/*
 * Split argv into positional arguments and "--name VALUE" / "--name=VALUE"
 * options of opts (a NULL-terminated list). "--" ends the options, so an
 * ElementName may start with a dash. Returns the number of positionals, or -1
 * after a usage message.
 */
static int parse_args(struct ctx *c, int argc, char **argv, const struct opt *opts, char **pos, int maxpos)
{
    int i, npos = 0, options = 1;

    for (i = 0; i < argc; i++) {
        const char *a = argv[i];

        if (options && strcmp(a, "--") == 0) {
            options = 0;
            continue;
        }
        if (options && strcmp(a, "--json") == 0) {
            c->json = 1;
            continue;
        }
        /* A flag of the commands whose usage (the table) names it. */
        if (options && strcmp(a, "--exist-ok") == 0 && strstr(c->cmd->args, "[--exist-ok]")) {
            c->exist_ok = 1;
            continue;
        }
        if (options && a[0] == '-' && a[1] != '\0') {
            const struct opt *o;
            size_t n;

            for (o = opts; o && o->name; o++) {
                n = strlen(o->name);
                if (strncmp(a, o->name, n) == 0 && (a[n] == '\0' || a[n] == '='))
                    break;
            }
            if (o == NULL || o->name == NULL) {
                usage_fail(c, "%s: unknown option '%s'", c->cmd->words, a);
                return -1;
            }
            if (a[n] == '=') {
                *o->val = a + n + 1;
            } else if (i + 1 < argc) {
                *o->val = argv[++i];
            } else {
                usage_fail(c, "%s: option %s needs a value", c->cmd->words, o->name);
                return -1;
            }
            continue;
        }
        if (npos == maxpos) {
            usage_fail(c, "%s: unexpected argument '%s'", c->cmd->words, a);
            return -1;
        }
        pos[npos++] = argv[i];
    }
    return npos;
}

/* Positionals between min and max, no options. */
static int plain_args(struct ctx *c, int argc, char **argv, char **pos, int min, int max)
{
    int n = parse_args(c, argc, argv, NULL, pos, max);

    if (n < 0)
        return -1;
    if (n < min) {
        usage_fail(c, "%s: missing argument", c->cmd->words);
        return -1;
    }
    return n;
}

static int parse_port(const char *s, uint32_t *port)
{
    const char *digits = s;
    unsigned long long v;
    char *end;
    int base = 10;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        digits = s + 2;
        base = 16;
    }
    /* strtoull alone would take leading blanks, signs and a second "0x". */
    if (*digits == '\0' || strspn(digits, base == 16 ? "0123456789abcdefABCDEF" : "0123456789") != strlen(digits))
        return -EINVAL;
    errno = 0;
    v = strtoull(digits, &end, base);
    if (errno || v > UINT32_MAX)
        return -ERANGE;
    *port = (uint32_t)v;
    return 0;
}

/* A service as users write it: a GUID, or a port for the VSOCK template. */
static int parse_service(const char *what, const char *s, GUID *out)
{
    uint32_t port;
    int rc;

    if (hvsim_guid_parse(s, out) == 0)
        return 0;
    rc = parse_port(s, &port);
    if (rc == 0) {
        *out = hvsim_guid_from_port(port);
        return 0;
    }
    if (rc == -ERANGE)
        return fail("%s: port '%s' is out of range (expected 0 to 4294967295)", what, s);
    return fail("%s: '%s' is not a GUID or a port number (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, "
                "a decimal port or a 0x-hex port)",
                what, s);
}

static int parse_choice(const char *what, const char *opt, const char *s, const char *no, const char *yes,
                        uint8_t *out)
{
    if (strcmp(s, no) == 0)
        *out = 0;
    else if (strcmp(s, yes) == 0)
        *out = 1;
    else
        return fail("%s: %s '%s': expected %s or %s", what, opt, s, no, yes);
    return 0;
}

/* ---- output --------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n, i;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, cp = s[0] & 0x07;
    else
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A JSON string. Bytes that are not UTF-8 become U+FFFD, so the output
 * always parses. */
static void json_str(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    putchar('"');
    while (*p) {
        size_t n = utf8_len(p);

        if (n == 0) {
            fputs("\\ufffd", stdout);
            p++;
        } else if (*p == '"' || *p == '\\') {
            printf("\\%c", *p++);
        } else if (*p == '\n') {
            fputs("\\n", stdout), p++;
        } else if (*p == '\t') {
            fputs("\\t", stdout), p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            printf("\\u%04x", *p++);
        } else {
            fwrite(p, 1, n, stdout);
            p += n;
        }
    }
    putchar('"');
}

struct table {
    size_t ncols, nrows;
    char *(*rows)[TABLE_COLS];
};

/* Add a row of t->ncols strings (copied). */
static int table_row(struct table *t, ...)
{
    char *(*rows)[TABLE_COLS] = realloc(t->rows, (t->nrows + 1) * sizeof(*rows));
    va_list ap;
    size_t i;

    if (rows == NULL)
        return -ENOMEM;
    t->rows = rows;
    va_start(ap, t);
    for (i = 0; i < t->ncols; i++)
        rows[t->nrows][i] = strdup(va_arg(ap, const char *));
    va_end(ap);
    t->nrows++;
    return 0;
}

/* Print with columns padded to their widest cell (the last one is not
 * padded: an ElementName may hold anything), then free. */
static void table_print(struct table *t)
{
    size_t w[TABLE_COLS] = { 0 }, r, i;

    for (r = 0; r < t->nrows; r++)
        for (i = 0; i < t->ncols; i++)
            if (t->rows[r][i] && strlen(t->rows[r][i]) > w[i])
                w[i] = strlen(t->rows[r][i]);
    for (r = 0; r < t->nrows; r++) {
        for (i = 0; i < t->ncols; i++) {
            const char *cell = t->rows[r][i] ? t->rows[r][i] : "?";

            if (i + 1 < t->ncols)
                printf("%-*s  ", (int)w[i], cell);
            else
                printf("%s\n", cell);
            free(t->rows[r][i]);
        }
    }
    free(t->rows);
    t->rows = NULL;
    t->nrows = 0;
}

static const char *kind_name(uint32_t kind)
{
    return kind == HVSIM_VM_HCS ? "hcs" : kind == HVSIM_VM_CLASSIC ? "classic" : "unknown";
}

static const char *state_name(uint32_t state)
{
    switch (state) {
    case HVSIM_VM_RUNNING:
        return "running";
    case HVSIM_VM_PAUSED:
        return "paused";
    case HVSIM_VM_OFF:
        return "off";
    }
    return "unknown";
}

/* "-", "UID" or "UID:GID". */
static void owner_text(const hvsim_vm_owner_t *o, char *out, size_t len)
{
    if (!o->set)
        snprintf(out, len, "-");
    else if (o->has_gid)
        snprintf(out, len, "%u:%u", o->uid, o->gid);
    else
        snprintf(out, len, "%u", o->uid);
}

/* "UID" or "UID:GID", decimal, each below 2^32 - 1. */
static int owner_parse(const char *text, hvsim_vm_owner_t *o)
{
    unsigned long long v[2] = { 0, 0 };
    const char *p = text;
    char *end;
    int i;

    memset(o, 0, sizeof(*o));
    for (i = 0; i < 2; i++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        errno = 0;
        v[i] = strtoull(p, &end, 10);
        if (errno != 0 || v[i] >= UINT32_MAX)
            return -EINVAL;
        if (*end == '\0')
            break;
        if (*end != ':' || i == 1)
            return -EINVAL;
        p = end + 1;
    }
    o->set = 1;
    o->uid = (uint32_t)v[0];
    o->has_gid = i == 1;
    o->gid = (uint32_t)v[1];
    return 0;
}

static void print_vms(const struct ctx *c, const hvsim_vm_info_t *v, size_t n, int as_array)
{
    struct table t = { .ncols = 10 };
    char id[HVSIM_GUID_STRLEN], cid[16], procs[16], owner[32], groups[HVSIM_GROUPS_MAX];
    const char *tr, *kn;
    size_t i;

    if (c->json) {
        if (as_array)
            putchar('[');
        for (i = 0; i < n; i++) {
            printf("%s{\"name\": ", i ? ", " : "");
            json_str(v[i].name);
            tr = hvsim__transport_name(v[i].transport);
            kn = hvsim__kernel_name(v[i].kernel);
            printf(", \"id\": \"%s\", \"kind\": \"%s\", \"state\": \"%s\", \"cid\": %u, \"procs\": %u, "
                   "\"transport\": \"%s\", \"kernel\": \"%s\", \"owner\": ",
                   hvsim_guid_format(&v[i].id, id), kind_name(v[i].kind), state_name(v[i].state), v[i].cid,
                   v[i].nprocs, tr ? tr : "unknown", kn ? kn : "unknown");
            if (!v[i].owner.set)
                fputs("null", stdout);
            else if (v[i].owner.has_gid)
                printf("{\"uid\": %u, \"gid\": %u}", v[i].owner.uid, v[i].owner.gid);
            else
                printf("{\"uid\": %u, \"gid\": null}", v[i].owner.uid);
            /* The sibling groups as a list: [] for none. */
            snprintf(groups, sizeof(groups), "%s", v[i].groups);
            fputs(", \"groups\": [", stdout);
            for (char *save, *g = strtok_r(groups, "+", &save), *sep = ""; g; g = strtok_r(NULL, "+", &save), sep = ", ") {
                fputs(sep, stdout);
                json_str(g);
            }
            fputs("]}", stdout);
        }
        printf("%s\n", as_array ? "]" : "");
        return;
    }
    table_row(&t, "NAME", "ID", "KIND", "STATE", "CID", "PROCS", "TRANSPORT", "KERNEL", "OWNER", "GROUPS");
    for (i = 0; i < n; i++) {
        snprintf(cid, sizeof(cid), "%u", v[i].cid);
        snprintf(procs, sizeof(procs), "%u", v[i].nprocs);
        tr = hvsim__transport_name(v[i].transport);
        kn = hvsim__kernel_name(v[i].kernel);
        owner_text(&v[i].owner, owner, sizeof(owner));
        snprintf(groups, sizeof(groups), "%s", v[i].groups[0] ? v[i].groups : "-");
        table_row(&t, v[i].name, hvsim_guid_format(&v[i].id, id), kind_name(v[i].kind), state_name(v[i].state), cid,
                  procs, tr ? tr : "unknown", kn ? kn : "unknown", owner, groups);
    }
    table_print(&t);
}

static void print_services(const struct ctx *c, const hvsim_service_info_t *v, size_t n, int as_array)
{
    struct table t = { .ncols = 3 };
    char id[HVSIM_GUID_STRLEN], port[16];
    uint32_t p;
    size_t i;

    if (c->json) {
        if (as_array)
            putchar('[');
        for (i = 0; i < n; i++) {
            printf("%s{\"id\": \"%s\", \"port\": ", i ? ", " : "", hvsim_guid_format(&v[i].id, id));
            if (hvsim_guid_to_port(&v[i].id, &p))
                printf("%u", p);
            else
                fputs("null", stdout);
            fputs(", \"element_name\": ", stdout);
            json_str(v[i].element_name);
            putchar('}');
        }
        printf("%s\n", as_array ? "]" : "");
        return;
    }
    table_row(&t, "SERVICE ID", "PORT", "ELEMENT NAME");
    for (i = 0; i < n; i++) {
        if (hvsim_guid_to_port(&v[i].id, &p))
            snprintf(port, sizeof(port), "%u", p);
        else
            snprintf(port, sizeof(port), "-");
        table_row(&t, hvsim_guid_format(&v[i].id, id), port, v[i].element_name);
    }
    table_print(&t);
}

/* ---- vm ------------------------------------------------------------------------- */

/* vm add --exist-ok found NAME taken: fine if it is that VM as asked for
 * (the same ID when --id was given, the same kind); print it as add does. */
static int vm_exists(struct ctx *c, const char *name, const GUID *id, uint32_t kind)
{
    char want[HVSIM_GUID_STRLEN], have[HVSIM_GUID_STRLEN];
    hvsim_vm_info_t *v;
    size_t n, i;
    int rc;

    rc = hvsim_admin_vm_list(c->a, &v, &n);
    if (rc < 0)
        return admin_fail(c, rc, "vm add");
    for (i = 0; i < n && strcmp(v[i].name, name) != 0; i++)
        ;
    if (i == n)
        rc = fail("vm add: %s (and no VM is named '%s': another VM has that ID)", hvsim_admin_errmsg(c->a), name);
    else if (id && !hvsim_guid_equal(id, &v[i].id))
        rc = fail("vm add --exist-ok: VM '%s' exists with ID %s, not %s", name, hvsim_guid_format(&v[i].id, have),
                  hvsim_guid_format(id, want));
    else if (v[i].kind != kind)
        rc = fail("vm add --exist-ok: VM '%s' exists as a %s VM, not %s", name, kind_name(v[i].kind), kind_name(kind));
    else
        print_vms(c, &v[i], 1, 0);
    free(v);
    return rc;
}

static int cmd_vm_add(struct ctx *c, int argc, char **argv)
{
    const char *id_text = NULL, *kind_text = "classic", *tr_text = "hv_sock", *kn_text = "6.1", *own_text = NULL,
               *grp_text = NULL;
    const struct opt opts[] = { { "--id", &id_text }, { "--kind", &kind_text }, { "--transport", &tr_text },
                                { "--kernel", &kn_text }, { "--owner", &own_text }, { "--group", &grp_text },
                                { NULL, NULL } };
    char *pos[1];
    hvsim_vm_info_t info;
    hvsim_vm_owner_t owner = { 0 };
    uint32_t kind, transport, kernel;
    GUID id;
    int n, rc;

    n = parse_args(c, argc, argv, opts, pos, 1);
    if (n < 0)
        return EXIT_USAGE;
    if (n < 1)
        return usage_fail(c, "vm add: missing the VM's NAME");
    if (id_text && hvsim_guid_parse(id_text, &id) < 0)
        return fail("vm add: --id '%s' is not a GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", id_text);
    if (strcmp(kind_text, "classic") == 0)
        kind = HVSIM_VM_CLASSIC;
    else if (strcmp(kind_text, "hcs") == 0)
        kind = HVSIM_VM_HCS;
    else
        return fail("vm add: --kind '%s': expected classic or hcs", kind_text);
    if (hvsim__transport_parse(tr_text, &transport) < 0)
        return fail("vm add: --transport '%s': expected hv_sock or virtio", tr_text);
    if (hvsim__kernel_parse(kn_text, &kernel) < 0)
        return fail("vm add: --kernel '%s': expected 6.1, 6.12 or newest", kn_text);
    if (own_text && owner_parse(own_text, &owner) < 0)
        return fail("vm add: --owner '%s': expected UID or UID:GID (numbers below 4294967295)", own_text);
    if (admin(c) == NULL)
        return EXIT_FAIL;
    /* The group names and the virtio-only rule are the daemon's to check
     * (groups.c, model.c): its error says which and what was expected. */
    rc = hvsim_admin_vm_add_grouped(c->a, pos[0], id_text ? &id : NULL, kind, transport, kernel, &owner, grp_text,
                                    &info);
    if (rc == -EEXIST && c->exist_ok)
        return vm_exists(c, pos[0], id_text ? &id : NULL, kind);
    if (rc < 0)
        return admin_fail(c, rc, "vm add");
    print_vms(c, &info, 1, 0);
    return 0;
}

static int cmd_vm_list(struct ctx *c, char **pos)
{
    hvsim_vm_info_t *v;
    size_t n;
    int rc;

    (void)pos;
    rc = hvsim_admin_vm_list(c->a, &v, &n);
    if (rc < 0)
        return admin_fail(c, rc, "vm list");
    print_vms(c, v, n, 1);
    free(v);
    return 0;
}

static int cmd_vm_rm(struct ctx *c, char **pos)
{
    int rc;

    rc = hvsim_admin_vm_rm(c->a, pos[0]);
    return rc < 0 ? admin_fail(c, rc, "vm rm") : 0;
}

/* vm start|pause|resume|reset|off: the operation is the command's last word. */
static int cmd_vm_op(struct ctx *c, char **pos)
{
    const char *op = strrchr(c->cmd->words, ' ') + 1;
    int rc;

    rc = hvsim_admin_vm_op(c->a, pos[0], op);
    return rc < 0 ? admin_fail(c, rc, c->cmd->words) : 0;
}

static int cmd_vm_hcs(struct ctx *c, int argc, char **argv)
{
    const char *svc = NULL, *bind = "allow", *conn = "allow", *wild = "0", *dis = "0";
    const struct opt opts[] = {
        { "--service", &svc }, { "--bind", &bind }, { "--connect", &conn },
        { "--allow-wildcard", &wild }, { "--disabled", &dis }, { NULL, NULL },
    };
    hvsim_hcs_service_t h;
    char *pos[1];
    int n, rc;

    memset(&h, 0, sizeof(h));
    n = parse_args(c, argc, argv, opts, pos, 1);
    if (n < 0)
        return EXIT_USAGE;
    if (n < 1)
        return usage_fail(c, "vm hcs: missing the VM's NAME or GUID");
    if (svc == NULL)
        return usage_fail(c, "vm hcs: --service GUID is required");
    if (parse_service("vm hcs: --service", svc, &h.id) || parse_choice("vm hcs", "--bind", bind, "allow", "deny",
                                                                       &h.bind_deny) ||
        parse_choice("vm hcs", "--connect", conn, "allow", "deny", &h.connect_deny) ||
        parse_choice("vm hcs", "--allow-wildcard", wild, "0", "1", &h.allow_wildcard_binds) ||
        parse_choice("vm hcs", "--disabled", dis, "0", "1", &h.disabled))
        return EXIT_FAIL;
    if (admin(c) == NULL)
        return EXIT_FAIL;
    rc = hvsim_admin_hcs_set(c->a, pos[0], &h);
    return rc < 0 ? admin_fail(c, rc, "vm hcs") : 0;
}

/* ---- service -------------------------------------------------------------------- */

/* The registered service id, or NULL (list freed by the caller). */
static const hvsim_service_info_t *service_find(const hvsim_service_info_t *v, size_t n, const GUID *id)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (hvsim_guid_equal(&v[i].id, id))
            return &v[i];
    return NULL;
}

static int cmd_service_add(struct ctx *c, int argc, char **argv)
{
    hvsim_service_info_t s, *v = NULL;
    const hvsim_service_info_t *old = NULL;
    char *pos[2];
    size_t nv = 0;
    int n, rc;

    memset(&s, 0, sizeof(s));
    n = plain_args(c, argc, argv, pos, 1, 2);
    if (n < 0)
        return EXIT_USAGE;
    if (parse_service("service add", pos[0], &s.id))
        return EXIT_FAIL;
    if (n == 2 && strlen(pos[1]) >= sizeof(s.element_name))
        return fail("service add: NAME is %zu bytes long (expected at most %zu)", strlen(pos[1]),
                    sizeof(s.element_name) - 1);
    if (n == 2)
        memcpy(s.element_name, pos[1], strlen(pos[1]) + 1);
    if (admin(c) == NULL)
        return EXIT_FAIL;
    /* Without --exist-ok add replaces the ElementName, as `reg add /f`
     * does; with it a registered service is left as it is. */
    if (c->exist_ok) {
        rc = hvsim_admin_service_list(c->a, &v, &nv);
        if (rc < 0)
            return admin_fail(c, rc, "service add");
        old = service_find(v, nv, &s.id);
    }
    rc = old ? 0 : hvsim_admin_service_add(c->a, &s.id, s.element_name);
    if (rc < 0) {
        free(v);
        return admin_fail(c, rc, "service add");
    }
    print_services(c, old ? old : &s, 1, 0);
    free(v);
    return 0;
}

/* reset: remove every VM and every service, so a script starts from an
 * empty host whatever an earlier run left; settings stay. */
static int cmd_reset(struct ctx *c, char **pos)
{
    hvsim_service_info_t *sv;
    hvsim_vm_info_t *vv;
    char id[HVSIM_GUID_STRLEN];
    size_t nv, ns, i;
    int rc;

    (void)pos;
    rc = hvsim_admin_vm_list(c->a, &vv, &nv);
    if (rc < 0)
        return admin_fail(c, rc, "reset: vm list");
    for (i = 0; i < nv && rc >= 0; i++)
        rc = hvsim_admin_vm_rm(c->a, hvsim_guid_format(&vv[i].id, id));
    free(vv);
    if (rc < 0)
        return admin_fail(c, rc, "reset: vm rm");
    rc = hvsim_admin_service_list(c->a, &sv, &ns);
    if (rc < 0)
        return admin_fail(c, rc, "reset: service list");
    for (i = 0; i < ns && rc >= 0; i++)
        rc = hvsim_admin_service_rm(c->a, &sv[i].id);
    free(sv);
    if (rc < 0)
        return admin_fail(c, rc, "reset: service rm");
    if (c->json)
        printf("{\"vms_removed\": %zu, \"services_removed\": %zu}\n", nv, ns);
    else
        printf("removed %zu VM%s and %zu service%s\n", nv, nv == 1 ? "" : "s", ns, ns == 1 ? "" : "s");
    return 0;
}

static int cmd_service_list(struct ctx *c, char **pos)
{
    hvsim_service_info_t *v;
    size_t n;
    int rc;

    (void)pos;
    rc = hvsim_admin_service_list(c->a, &v, &n);
    if (rc < 0)
        return admin_fail(c, rc, "service list");
    print_services(c, v, n, 1);
    free(v);
    return 0;
}

static int cmd_service_rm(struct ctx *c, int argc, char **argv)
{
    char *pos[1];
    GUID id;
    int rc;

    if (plain_args(c, argc, argv, pos, 1, 1) < 0)
        return EXIT_USAGE;
    if (parse_service("service rm", pos[0], &id))
        return EXIT_FAIL;
    if (admin(c) == NULL)
        return EXIT_FAIL;
    rc = hvsim_admin_service_rm(c->a, &id);
    return rc < 0 ? admin_fail(c, rc, "service rm") : 0;
}

static int cmd_service_import(struct ctx *c, char **pos)
{
    size_t added = 0;
    int rc;

    /* The library reads the file in this process, so a relative path is ours. */
    rc = hvsim_admin_service_import(c->a, pos[0], &added);
    if (rc < 0)
        return admin_fail(c, rc, "service import-reg");
    if (c->json) {
        fputs("{\"file\": ", stdout);
        json_str(pos[0]);
        printf(", \"imported\": %zu}\n", added);
    } else {
        printf("imported %zu service%s from %s\n", added, added == 1 ? "" : "s", pos[0]);
    }
    return 0;
}

/* ---- listeners and connections ------------------------------------------------- */

/* What the daemon cannot know, said with every listing of connections. */
static const char *const conns_note =
    "hvsimd routes each connection but the stream never passes through it: it sees no bytes, and not when the "
    "two processes close the stream. A record ends when the process of either end detaches (exits or closes "
    "the library), or when the VM of either end is reset, turned off, removed, paused (unless either end set "
    "CONNECTED_SUSPEND) or its HCS service is disabled. A closed listener ends nothing: its accepted streams "
    "live on.";

static const char *pers_name(uint32_t p)
{
    return p == 0 ? "hyperv" : p == 1 ? "vsock-guest" : p == 2 ? "vsock-host" : "unknown";
}

/* "VMID:PORT" for a template service, "VMID:SERVICE" otherwise. */
static const char *addr_text(const GUID *vmid, const GUID *svc, char *buf, size_t len)
{
    char v[HVSIM_GUID_STRLEN], g[HVSIM_GUID_STRLEN];
    uint32_t port;

    if (hvsim_guid_to_port(svc, &port))
        snprintf(buf, len, "%s:%u", hvsim_guid_format(vmid, v), port);
    else
        snprintf(buf, len, "%s:%s", hvsim_guid_format(vmid, v), hvsim_guid_format(svc, g));
    return buf;
}

static void json_addr(const char *key, const GUID *vmid, const GUID *svc)
{
    char v[HVSIM_GUID_STRLEN], g[HVSIM_GUID_STRLEN];
    uint32_t port;

    printf("\"%s\": {\"vmid\": \"%s\", \"service\": \"%s\", \"port\": ", key, hvsim_guid_format(vmid, v),
           hvsim_guid_format(svc, g));
    if (hvsim_guid_to_port(svc, &port))
        printf("%u}", port);
    else
        fputs("null}", stdout);
}

static int cmd_vm_listeners(struct ctx *c, char **pos)
{
    struct table t = { .ncols = 5 };
    hvsim_listener_info_t *v;
    char addr[96], pid[16], backlog[16], type[32];
    size_t n, i;
    int rc;

    rc = hvsim_admin_listeners(c->a, pos[0], &v, &n, NULL, NULL);
    if (rc < 0)
        return admin_fail(c, rc, "vm listeners");
    if (c->json) {
        putchar('[');
        for (i = 0; i < n; i++) {
            fputs(i ? ", {" : "{", stdout);
            json_addr("address", &v[i].vmid, &v[i].svc);
            printf(", \"type\": \"%s\", \"seqpacket\": %s, \"pid\": %u, \"backlog\": %u, \"gateway\": %s}",
                   pers_name(v[i].personality), v[i].seqpacket ? "true" : "false", v[i].pid, v[i].backlog,
                   v[i].gateway ? "true" : "false");
        }
        puts("]");
    } else {
        table_row(&t, "ADDRESS", "TYPE", "PID", "BACKLOG", "GATEWAY");
        for (i = 0; i < n; i++) {
            snprintf(pid, sizeof(pid), "%u", v[i].pid);
            snprintf(backlog, sizeof(backlog), "%u", v[i].backlog);
            snprintf(type, sizeof(type), "%s%s", pers_name(v[i].personality), v[i].seqpacket ? "/seqpacket" : "");
            table_row(&t, addr_text(&v[i].vmid, &v[i].svc, addr, sizeof(addr)), type, pid, backlog,
                      v[i].gateway ? "yes" : "no");
        }
        table_print(&t);
    }
    free(v);
    return 0;
}

static void routed_text(uint64_t ms, char *buf, size_t len)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&sec, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(buf, len, "?");
    else
        snprintf(buf + strlen(buf), len - strlen(buf), ".%03uZ", (unsigned)(ms % 1000));
}

static void print_conns_json(const hvsim_conn_info_t *v, size_t n, uint32_t limit, uint64_t forgotten)
{
    char when[40];
    size_t i;

    printf("{\"limit\": %u, \"forgotten\": %llu, \"connections\": [", limit, (unsigned long long)forgotten);
    for (i = 0; i < n; i++) {
        routed_text(v[i].routed_ms, when, sizeof(when));
        printf("%s{\"id\": %llu, \"routed\": \"%s\", \"connector\": {\"partition\": ", i ? ", " : "",
               (unsigned long long)v[i].id, when);
        json_str(v[i].connector_name);
        printf(", \"pid\": %u, ", v[i].connector_pid);
        json_addr("address", &v[i].connector_vmid, &v[i].connector_svc);
        fputs("}, \"acceptor\": {\"partition\": ", stdout);
        json_str(v[i].acceptor_name);
        printf(", \"pid\": %u, ", v[i].acceptor_pid);
        json_addr("address", &v[i].acceptor_vmid, &v[i].acceptor_svc);
        printf("}, \"type\": \"%s\", \"rule\": ", pers_name(v[i].personality));
        json_str(v[i].rule);
        putchar('}');
    }
    fputs("], \"note\": ", stdout);
    json_str(conns_note);
    puts("}");
}

static int cmd_vm_connections(struct ctx *c, char **pos)
{
    struct table t = { .ncols = 7 };
    hvsim_conn_info_t *v;
    char id[24], when[40], from[96], to[96], fpid[80], tpid[80];
    uint64_t forgotten = 0;
    uint32_t limit = 0;
    size_t n, i;
    int rc;

    rc = hvsim_admin_connections(c->a, pos[0], &v, &n, &limit, &forgotten);
    if (rc < 0)
        return admin_fail(c, rc, "vm connections");
    if (c->json) {
        print_conns_json(v, n, limit, forgotten);
        free(v);
        return 0;
    }
    table_row(&t, "ID", "ROUTED", "CONNECTOR", "FROM", "ACCEPTOR", "TO", "RULE");
    for (i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%llu", (unsigned long long)v[i].id);
        routed_text(v[i].routed_ms, when, sizeof(when));
        snprintf(fpid, sizeof(fpid), "%s pid %u", v[i].connector_name, v[i].connector_pid);
        snprintf(tpid, sizeof(tpid), "%s pid %u", v[i].acceptor_name, v[i].acceptor_pid);
        table_row(&t, id, when, fpid, addr_text(&v[i].connector_vmid, &v[i].connector_svc, from, sizeof(from)), tpid,
                  addr_text(&v[i].acceptor_vmid, &v[i].acceptor_svc, to, sizeof(to)), v[i].rule);
    }
    table_print(&t);
    printf("%zu connection%s (at most %u kept per partition; %llu older forgotten)\nnote: %s\n", n, n == 1 ? "" : "s",
           limit, (unsigned long long)forgotten, conns_note);
    free(v);
    return 0;
}

/* ---- settings and status -------------------------------------------------------- */

/* "key=value" lines as one JSON object; all-digit values become numbers
 * when numeric is set. */
static void print_kv_json(const char *text, int numeric)
{
    const char *line = text, *nl, *eq;
    int first = 1;

    putchar('{');
    for (; *line; line = *nl ? nl + 1 : nl) {
        char *key, *val;

        nl = strchr(line, '\n');
        if (nl == NULL)
            nl = line + strlen(line);
        eq = memchr(line, '=', (size_t)(nl - line));
        if (eq == NULL)
            continue;
        key = strndup(line, (size_t)(eq - line));
        val = strndup(eq + 1, (size_t)(nl - eq - 1));
        if (key && val) {
            fputs(first ? "" : ", ", stdout);
            json_str(key);
            fputs(": ", stdout);
            if (numeric && val[0] && strlen(val) < 16 && strspn(val, "0123456789") == strlen(val))
                fputs(val, stdout);
            else
                json_str(val);
            first = 0;
        }
        free(key);
        free(val);
    }
    puts("}");
}

static int cmd_settings(struct ctx *c, char **pos)
{
    char *text;
    int rc;

    (void)pos;
    rc = hvsim_admin_setting_list(c->a, &text);
    if (rc < 0)
        return admin_fail(c, rc, "settings");
    /* Values stay strings in JSON: they are what `set` takes back. */
    if (c->json)
        print_kv_json(text, 0);
    else
        fputs(text, stdout);
    free(text);
    return 0;
}

static int cmd_get(struct ctx *c, char **pos)
{
    char value[256], what[128];
    int rc;

    rc = hvsim_admin_setting_get(c->a, pos[0], value, sizeof(value));
    if (rc < 0) {
        snprintf(what, sizeof(what), "get '%s'", pos[0]);
        if (rc == -ENOENT)
            return fail("%s: unknown setting (hvsimctl settings lists them)", what);
        return admin_fail(c, rc, what);
    }
    if (c->json) {
        fputs("{\"name\": ", stdout);
        json_str(pos[0]);
        fputs(", \"value\": ", stdout);
        json_str(value);
        puts("}");
    } else {
        puts(value);
    }
    return 0;
}

static int cmd_set(struct ctx *c, char **pos)
{
    int rc;

    rc = hvsim_admin_setting_set(c->a, pos[0], pos[1]);
    return rc < 0 ? admin_fail(c, rc, "set") : 0;
}

static int cmd_status(struct ctx *c, char **pos)
{
    struct table t = { .ncols = 2 };
    char *text, *line, *save = NULL;
    int rc;

    (void)pos;
    rc = hvsim_admin_status(c->a, &text);
    if (rc < 0)
        return admin_fail(c, rc, "status");
    if (c->json) {
        print_kv_json(text, 1);
    } else {
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *eq = strchr(line, '=');

            if (eq == NULL)
                continue;
            *eq = '\0';
            table_row(&t, line, eq + 1);
        }
        table_print(&t);
    }
    free(text);
    return 0;
}

/* ---- the table ------------------------------------------------------------------ */

static const struct command commands[] = {
    { "vm add", cmd_vm_add, NULL, 0,
      "NAME [--id GUID] [--kind classic|hcs] [--transport hv_sock|virtio] [--kernel 6.1|6.12|newest] [--owner UID[:GID]] "
      "[--group NAME[+NAME...]] [--exist-ok]",
      "add a running VM (a random ID unless --id; hv_sock on 6.1 unless told); --exist-ok: a VM of that name, "
      "ID and kind is no error" },
    { "vm list", NULL, cmd_vm_list, 0, "", "list the VMs: NAME, ID, KIND, STATE, CID, PROCS, TRANSPORT, KERNEL, OWNER, GROUPS" },
    { "vm rm", NULL, cmd_vm_rm, 1, "NAME|GUID", "remove a VM; its processes lose their connections" },
    { "vm start", NULL, cmd_vm_op, 1, "NAME|GUID", "power on a VM that is off" },
    { "vm pause", NULL, cmd_vm_op, 1, "NAME|GUID", "pause a running VM (connections break unless CONNECTED_SUSPEND)" },
    { "vm resume", NULL, cmd_vm_op, 1, "NAME|GUID", "resume a paused VM" },
    { "vm reset", NULL, cmd_vm_op, 1, "NAME|GUID", "reset a VM: its connections break, it keeps running" },
    { "vm off", NULL, cmd_vm_op, 1, "NAME|GUID", "power a VM off" },
    { "vm listeners", NULL, cmd_vm_listeners, 1, "NAME|GUID|host",
      "list a VM's listeners: ADDRESS, TYPE, PID, BACKLOG, GATEWAY (a QEMU guest's back-end)" },
    { "vm connections", NULL, cmd_vm_connections, 1, "NAME|GUID|host",
      "list the connections routed to or from a VM that hvsimd has not seen end, and what it cannot know" },
    { "vm hcs", cmd_vm_hcs, NULL, 0,
      "NAME|GUID --service GUID [--bind allow|deny] [--connect allow|deny] [--allow-wildcard 0|1] [--disabled 0|1]",
      "set one row of an hcs VM's HvSocket ServiceTable (unset options: allow, allow, 0, 0)" },
    { "service add", cmd_service_add, NULL, 0, "GUID|PORT [NAME] [--exist-ok]",
      "register a service as GuestCommunicationServices\\GUID does; a port means its VSOCK template GUID;\n"
      "      it replaces a registered service's NAME, unless --exist-ok, which leaves it as it is" },
    { "service list", NULL, cmd_service_list, 0, "", "list the registered services: SERVICE ID, PORT, ELEMENT NAME" },
    { "service rm", cmd_service_rm, NULL, 0, "GUID|PORT", "unregister a service" },
    { "service import-reg", NULL, cmd_service_import, 1, "FILE",
      "register the services of a `reg export` file of GuestCommunicationServices" },
    { "settings", NULL, cmd_settings, 0, "", "list the emulation settings as name=value" },
    { "get", NULL, cmd_get, 1, "NAME", "print one setting" },
    { "set", NULL, cmd_set, 2, "NAME VALUE", "change one setting (it persists)" },
    { "reset", NULL, cmd_reset, 0, "", "remove every VM and every service (an empty host; settings stay)" },
    { "status", NULL, cmd_status, 0, "", "counts of VMs, services, processes and listeners; the daemon's folders" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void command_line(FILE *f, const struct command *cmd)
{
    fprintf(f, "  %s%s%s\n      %s\n", cmd->words, cmd->args[0] ? " " : "", cmd->args, cmd->desc);
}

/* The commands whose first word is group (NULL: all). */
static void usage_of(FILE *f, const char *group)
{
    size_t i, n = group ? strlen(group) : 0;

    fprintf(f,
            "usage: hvsimctl %s %s%sCOMMAND [ARGS]\n\n"
            "  --dir DIR  the daemon's folder (default: $HVSIM_DIR, else $XDG_RUNTIME_DIR/hvsim, else /tmp/hvsim-UID)\n"
            "  --json     machine-readable output of the list, listeners, connections, add, get, settings, reset and status commands\n"
            "  --version  print the version and exit\n"
            "  -h, --help this text; COMMAND --help: one command's\n\n"
            "commands:\n",
            global_usage, group ? group : "", group ? " " : "");
    for (i = 0; i < NCOMMANDS; i++)
        if (group == NULL || (strncmp(commands[i].words, group, n) == 0 && commands[i].words[n] == ' '))
            command_line(f, &commands[i]);
}

static void usage(FILE *f)
{
    usage_of(f, NULL);
}

/* 1 if group is the first word of a command with more than one word. */
static int is_group(const char *group)
{
    size_t i, n = strlen(group);

    for (i = 0; i < NCOMMANDS; i++)
        if (strncmp(commands[i].words, group, n) == 0 && commands[i].words[n] == ' ')
            return 1;
    return 0;
}

/* --help or -h among a command's options (before "--"). */
static int wants_help(int argc, char **argv)
{
    int i;

    for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

/* How many of argv's words the command's words match (0: not this one). */
static int match(const struct command *cmd, int argc, char **argv)
{
    const char *w = cmd->words;
    int n = 0;

    while (*w) {
        size_t len = strcspn(w, " ");

        if (n >= argc || strlen(argv[n]) != len || strncmp(argv[n], w, len) != 0)
            return 0;
        n++;
        w += len;
        w += *w == ' ';
    }
    return n;
}

/* A plain command's arguments are checked before the daemon is asked for,
 * so a usage error never depends on whether a daemon runs. */
static int run_command(struct ctx *c, int argc, char **argv)
{
    char *pos[MAX_POS];

    if (c->cmd->fn)
        return c->cmd->fn(c, argc, argv);
    if (plain_args(c, argc, argv, pos, c->cmd->npos, c->cmd->npos) < 0)
        return EXIT_USAGE;
    if (admin(c) == NULL)
        return EXIT_FAIL;
    return c->cmd->run(c, pos);
}

int main(int argc, char **argv)
{
    struct ctx c = { 0 };
    const struct command *best = NULL;
    char dirbuf[PATH_MAX];
    const char *dir = NULL;
    int i = 1, n, best_n = 0, rc;
    size_t k;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            c.json = 1;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strncmp(argv[i], "--dir=", 6) == 0) {
            dir = argv[i] + 6;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            return hvsim__cli_version("hvsimctl");
        } else {
            fprintf(stderr, "hvsimctl: %s '%s'\n",
                    strcmp(argv[i], "--dir") == 0 ? "missing the folder after" : "unknown option", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i == argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (k = 0; k < NCOMMANDS; k++) {
        n = match(&commands[k], argc - i, argv + i);
        if (n > best_n) {
            best = &commands[k];
            best_n = n;
        }
    }
    if (best == NULL && is_group(argv[i])) {
        /* "vm", "vm --help", "service -h": the group's commands. */
        if (wants_help(argc - i - 1, argv + i + 1)) {
            usage_of(stdout, argv[i]);
            return 0;
        }
        fprintf(stderr, "hvsimctl: %s: %s '%s'\n", argv[i], i + 1 < argc ? "unknown command" : "missing a command",
                i + 1 < argc ? argv[i + 1] : "");
        usage_of(stderr, argv[i]);
        return EXIT_USAGE;
    }
    if (best == NULL) {
        fprintf(stderr, "hvsimctl: unknown command '%s%s%s'\n", argv[i], i + 1 < argc ? " " : "",
                i + 1 < argc ? argv[i + 1] : "");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (dir && dir[0] == '\0') {
        fprintf(stderr, "hvsimctl: --dir: expected a folder, got ''\n");
        return EXIT_USAGE;
    }
    c.dir = dir ? dir : hvsim__default_dir(dirbuf, sizeof(dirbuf));
    c.cmd = best;
    if (wants_help(argc - i - best_n, argv + i + best_n)) {
        printf("usage: hvsimctl %s %s %s\n", global_usage, best->words, best->args);
        command_line(stdout, best);
        return 0;
    }
    rc = run_command(&c, argc - i - best_n, argv + i + best_n);
    hvsim_admin_close(c.a);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "hvsimctl: writing the output: %s\n", strerror(errno));
        return EXIT_FAIL;
    }
    return rc;
}
