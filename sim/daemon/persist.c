/* SPDX-License-Identifier: MIT */
/*
 * persist.c: the daemon's state file (persist.h). A line-oriented text format,
 * so a user can read it and a test can write one by hand:
 *
 *   # hvsim state 1
 *   host <guid>
 *   vm <guid> <classic|hcs> <running|paused|off> <cid> <name>
 *   hcs <vm-guid> <svc-guid> bind=<allow|deny> connect=<allow|deny> wildcard=<0|1> disabled=<0|1>
 *   transport <vm-guid> <hv_sock|virtio> <6.1|6.12|newest>
 *   owner <vm-guid> <uid> <gid|->
 *   groups <vm-guid> <NAME[+NAME...]>
 *   service <guid> <element name>
 *   setting <name> <value>
 *
 * Fields are separated by exactly one space and the last field of service and
 * setting lines is the rest of the line, so names with spaces survive; \\, \n
 * and \t are the only escapes. The parser is strict (the file may have been
 * edited or damaged), and persist_format refuses a state the parser would
 * reject, so whatever is saved can be loaded again. A VM without a transport
 * line is hv_sock on 6.1 (the files written before VMs had transports); the line is written only
 * for other VMs. A VM without an owner line has none (its control socket is
 * the daemon user's). A VM without a groups line has no sibling group; the
 * line may only follow a virtio VM's transport line (groups.c has the rule
 * for the names), and the transport line of a VM with groups must stay virtio.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hvsim/hvsim.h"
#include "hvproto/util.h"
#include "persist.h"

#define HEADER "# hvsim state 1"
#define STATE_FILE "state"
#define STATE_TMP "state.tmp"
/* Far above any real state; stops a wrong or runaway file from eating memory. */
#define STATE_MAX ((size_t)64 << 20)
#define CID_MIN 3u
#define CID_MAX 0xfffffffeu

static const char *const kind_names[] = { [HVSIM_VM_CLASSIC] = "classic", [HVSIM_VM_HCS] = "hcs" };
static const char *const state_names[] = {
    [HVSIM_VM_RUNNING] = "running", [HVSIM_VM_PAUSED] = "paused", [HVSIM_VM_OFF] = "off"
};


static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    size_t ncap;
    void *nv;

    if (n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 4;
    if (ncap < *cap || ncap > SIZE_MAX / elem)
        return -ENOMEM;
    nv = realloc(*arr, ncap * elem);
    if (nv == NULL)
        return -ENOMEM;
    *arr = nv;
    *cap = ncap;
    return 0;
}

/* VM names: [A-Za-z0-9._-]{1,63}, the same rule for setting names. */
static int valid_name(const char *s, size_t max)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        char ch = s[i];

        if (i + 1 >= max)
            return 0;
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '_' || ch == '-'))
            return 0;
    }
    return i > 0;
}

static int is_ctl(unsigned char ch)
{
    return ch < 0x20 || ch == 0x7F;
}

/* ---- Parsing --------------------------------------------------------------------- */

struct pctx {
    char *err;
    size_t errlen;
    unsigned long line;
    persist_t *p;
    size_t cap_vms, cap_svc, cap_set;
    int have_host;
};

__attribute__((format(printf, 2, 3))) static int bad(struct pctx *c, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    size_t i;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* The message quotes the file; keep its control bytes off the user's terminal. */
    for (i = 0; msg[i] != '\0'; i++)
        if (is_ctl((unsigned char)msg[i]))
            msg[i] = '?';
    hvsim__set_err(c->err, c->errlen, "state line %lu: %s", c->line, msg);
    return -EINVAL;
}

/* The next space-separated field, NUL-terminated in place; *s moves past one space. */
static char *field(char **s)
{
    char *start = *s, *sp = strchr(start, ' ');

    if (sp != NULL) {
        *sp = '\0';
        *s = sp + 1;
    } else {
        *s = start + strlen(start);
    }
    return start;
}

static int parse_guid_field(struct pctx *c, char **s, const char *what, GUID *out)
{
    char *f = field(s);

    if (hvsim_guid_parse(f, out) < 0)
        return bad(c, "expected %s GUID, got '%.40s'", what, f);
    return 0;
}

static int end_of_line(struct pctx *c, const char *s)
{
    if (*s != '\0')
        return bad(c, "expected end of line, got '%.40s'", s);
    return 0;
}

/* Undo the \\, \n, \t escapes into out (size bytes, NUL included). */
static int unescape(struct pctx *c, const char *s, char *out, size_t size, const char *what)
{
    size_t w = 0;

    for (; *s != '\0'; s++) {
        char ch = *s;

        if (is_ctl((unsigned char)ch))
            return bad(c, "expected %s without control characters, got byte 0x%02x", what, (unsigned char)ch);
        if (ch == '\\') {
            s++;
            if (*s == '\\')
                ch = '\\';
            else if (*s == 'n')
                ch = '\n';
            else if (*s == 't')
                ch = '\t';
            else
                return bad(c, "expected \\\\, \\n or \\t in %s, got '\\%.1s'", what, s);
        }
        if (w + 1 >= size)
            return bad(c, "expected %s of at most %zu bytes, got more", what, size - 1);
        out[w++] = ch;
    }
    out[w] = '\0';
    return 0;
}

static int lookup(const char *const *names, size_t n, const char *s)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

static persist_vm_t *find_vm(persist_t *p, const GUID *id)
{
    size_t i;

    for (i = 0; i < p->nvms; i++)
        if (hvsim_guid_equal(&p->vms[i].info.id, id))
            return &p->vms[i];
    return NULL;
}

static int parse_host(struct pctx *c, char *s)
{
    int r;

    if (c->have_host)
        return bad(c, "expected one host line, got a second one");
    r = parse_guid_field(c, &s, "the host", &c->p->host_id);
    if (r < 0)
        return r;
    c->have_host = 1;
    return end_of_line(c, s);
}

static int parse_cid(struct pctx *c, const char *f, uint32_t *out)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; f[i] >= '0' && f[i] <= '9'; i++) {
        if (i >= 10)
            break;
        v = v * 10 + (uint64_t)(f[i] - '0');
    }
    if (i == 0 || f[i] != '\0' || v < CID_MIN || v > CID_MAX)
        return bad(c, "expected a decimal cid in %u..%u, got '%.40s'", CID_MIN, CID_MAX, f);
    *out = (uint32_t)v;
    return 0;
}

static int parse_vm(struct pctx *c, char *s)
{
    persist_t *p = c->p;
    persist_vm_t vm;
    char *f;
    size_t i;
    int k, r;

    memset(&vm, 0, sizeof(vm));
    vm.info.transport = HVSIM_TRANSPORT_HV_SOCK;
    vm.info.kernel = HVSIM_KERNEL_6_1;
    r = parse_guid_field(c, &s, "a VM", &vm.info.id);
    if (r < 0)
        return r;
    f = field(&s);
    k = lookup(kind_names, HVSIM_ARRAY_SIZE(kind_names), f);
    if (k < 0)
        return bad(c, "expected a VM kind (classic or hcs), got '%.40s'", f);
    vm.info.kind = (uint32_t)k;
    f = field(&s);
    k = lookup(state_names, HVSIM_ARRAY_SIZE(state_names), f);
    if (k < 0)
        return bad(c, "expected a VM state (running, paused or off), got '%.40s'", f);
    vm.info.state = (uint32_t)k;
    r = parse_cid(c, field(&s), &vm.info.cid);
    if (r < 0)
        return r;
    /* The name is the rest of the line; valid_name rejects spaces anyway. */
    if (!valid_name(s, sizeof(vm.info.name)))
        return bad(c, "expected a VM name of 1 to %zu characters from [A-Za-z0-9._-], got '%.70s'",
                   sizeof(vm.info.name) - 1, s);
    strcpy(vm.info.name, s);
    for (i = 0; i < p->nvms; i++) {
        const hvsim_vm_info_t *o = &p->vms[i].info;

        if (hvsim_guid_equal(&o->id, &vm.info.id))
            return bad(c, "duplicate VM id (also VM '%s')", o->name);
        if (strcmp(o->name, vm.info.name) == 0)
            return bad(c, "duplicate VM name '%s'", o->name);
        if (o->cid == vm.info.cid)
            return bad(c, "duplicate cid %u (also VM '%s')", o->cid, o->name);
    }
    r = grow((void **)&p->vms, &c->cap_vms, p->nvms, sizeof(*p->vms));
    if (r < 0)
        return r;
    p->vms[p->nvms++] = vm;
    return 0;
}

static int parse_flag(struct pctx *c, char **s, const char *key, const char *no, const char *yes, uint8_t *out)
{
    char *f = field(s);
    size_t klen = strlen(key);

    if (strncmp(f, key, klen) == 0 && f[klen] == '=') {
        if (strcmp(f + klen + 1, no) == 0) {
            *out = 0;
            return 0;
        }
        if (strcmp(f + klen + 1, yes) == 0) {
            *out = 1;
            return 0;
        }
    }
    return bad(c, "expected %s=%s or %s=%s, got '%.40s'", key, no, key, yes, f);
}

static int parse_hcs(struct pctx *c, char *s)
{
    hvsim_hcs_service_t svc;
    persist_vm_t *vm;
    GUID vmid;
    char g[HVSIM_GUID_STRLEN];
    size_t i, cap;
    int r;

    memset(&svc, 0, sizeof(svc));
    r = parse_guid_field(c, &s, "a VM", &vmid);
    if (r < 0)
        return r;
    vm = find_vm(c->p, &vmid);
    if (vm == NULL)
        return bad(c, "expected the id of a VM defined above, got %s", hvsim_guid_format(&vmid, g));
    r = parse_guid_field(c, &s, "a service", &svc.id);
    if (r < 0)
        return r;
    if ((r = parse_flag(c, &s, "bind", "allow", "deny", &svc.bind_deny)) < 0 ||
        (r = parse_flag(c, &s, "connect", "allow", "deny", &svc.connect_deny)) < 0 ||
        (r = parse_flag(c, &s, "wildcard", "0", "1", &svc.allow_wildcard_binds)) < 0 ||
        (r = parse_flag(c, &s, "disabled", "0", "1", &svc.disabled)) < 0)
        return r;
    r = end_of_line(c, s);
    if (r < 0)
        return r;
    for (i = 0; i < vm->nhcs; i++)
        if (hvsim_guid_equal(&vm->hcs[i].id, &svc.id))
            return bad(c, "duplicate hcs entry %s for VM '%s'", hvsim_guid_format(&svc.id, g), vm->info.name);
    /* Each VM's table grows on its own; its capacity is not stored, so use powers of two. */
    cap = vm->nhcs;
    if (cap == 0 || (cap & (cap - 1)) == 0) {
        hvsim_hcs_service_t *nv;

        cap = cap ? cap * 2 : 1;
        if (cap > SIZE_MAX / sizeof(*nv))
            return -ENOMEM;
        nv = realloc(vm->hcs, cap * sizeof(*nv));
        if (nv == NULL)
            return -ENOMEM;
        vm->hcs = nv;
    }
    vm->hcs[vm->nhcs++] = svc;
    return 0;
}

/* "transport <vm-guid> <transport> <kernel>", after the VM's line. */
static int parse_transport(struct pctx *c, char *s)
{
    persist_vm_t *vm;
    GUID vmid;
    char g[HVSIM_GUID_STRLEN], *f;
    int r;

    r = parse_guid_field(c, &s, "a VM", &vmid);
    if (r < 0)
        return r;
    vm = find_vm(c->p, &vmid);
    if (vm == NULL)
        return bad(c, "expected the id of a VM defined above, got %s", hvsim_guid_format(&vmid, g));
    f = field(&s);
    if (hvsim__transport_parse(f, &vm->info.transport) < 0)
        return bad(c, "expected a transport (hv_sock or virtio), got '%.40s'", f);
    if (vm->info.groups[0] != '\0' && vm->info.transport != HVSIM_TRANSPORT_VIRTIO)
        return bad(c, "expected virtio for a VM with sibling groups, got '%.40s'", f);
    f = field(&s);
    if (hvsim__kernel_parse(f, &vm->info.kernel) < 0)
        return bad(c, "expected a kernel (6.1, 6.12 or newest), got '%.40s'", f);
    return end_of_line(c, s);
}

/* A uid or gid: decimal, below 2^32 - 1 ((uid_t)-1 means "no change" to chown). */
static int parse_id(struct pctx *c, const char *f, uint32_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(f, &end, 10);
    if (*f < '0' || *f > '9' || *end != '\0' || errno != 0 || v >= UINT32_MAX)
        return bad(c, "expected a uid or gid (0 to %u), got '%.40s'", UINT32_MAX - 1, f);
    *out = (uint32_t)v;
    return 0;
}

/* "owner <vm-guid> <uid> <gid|->", after the VM's line. */
static int parse_owner(struct pctx *c, char *s)
{
    persist_vm_t *vm;
    GUID vmid;
    char g[HVSIM_GUID_STRLEN], *f;
    int r;

    r = parse_guid_field(c, &s, "a VM", &vmid);
    if (r < 0)
        return r;
    vm = find_vm(c->p, &vmid);
    if (vm == NULL)
        return bad(c, "expected the id of a VM defined above, got %s", hvsim_guid_format(&vmid, g));
    r = parse_id(c, field(&s), &vm->info.owner.uid);
    if (r < 0)
        return r;
    f = field(&s);
    if (strcmp(f, "-") != 0) {
        r = parse_id(c, f, &vm->info.owner.gid);
        if (r < 0)
            return r;
        vm->info.owner.has_gid = 1;
    }
    vm->info.owner.set = 1;
    return end_of_line(c, s);
}

/* "groups <vm-guid> <NAME[+NAME...]>", after the VM's virtio transport line. */
static int parse_groups(struct pctx *c, char *s)
{
    persist_vm_t *vm;
    GUID vmid;
    char g[HVSIM_GUID_STRLEN], why[160], *f;
    int r;

    r = parse_guid_field(c, &s, "a VM", &vmid);
    if (r < 0)
        return r;
    vm = find_vm(c->p, &vmid);
    if (vm == NULL)
        return bad(c, "expected the id of a VM defined above, got %s", hvsim_guid_format(&vmid, g));
    if (vm->info.transport != HVSIM_TRANSPORT_VIRTIO)
        return bad(c, "expected sibling groups only for a VM whose transport line (above) says virtio");
    f = field(&s);
    if (f[0] == '\0')
        return bad(c, "expected sibling groups NAME[+NAME...], got nothing");
    if (hvsim__groups_check(f, why, sizeof(why)) < 0)
        return bad(c, "sibling groups '%.40s': %s", f, why);
    snprintf(vm->info.groups, sizeof(vm->info.groups), "%s", f);
    return end_of_line(c, s);
}

/* "service <guid>" alone is an empty name; otherwise one space and the escaped name. */
static int parse_service(struct pctx *c, char *s)
{
    persist_t *p = c->p;
    hvsim_service_info_t svc;
    char g[HVSIM_GUID_STRLEN];
    size_t i;
    int r;

    memset(&svc, 0, sizeof(svc));
    r = parse_guid_field(c, &s, "a service", &svc.id);
    if (r < 0)
        return r;
    r = unescape(c, s, svc.element_name, sizeof(svc.element_name), "an element name");
    if (r < 0)
        return r;
    for (i = 0; i < p->nservices; i++)
        if (hvsim_guid_equal(&p->services[i].id, &svc.id))
            return bad(c, "duplicate service %s", hvsim_guid_format(&svc.id, g));
    r = grow((void **)&p->services, &c->cap_svc, p->nservices, sizeof(*p->services));
    if (r < 0)
        return r;
    p->services[p->nservices++] = svc;
    return 0;
}

static int parse_setting(struct pctx *c, char *s)
{
    persist_t *p = c->p;
    persist_setting_t set;
    char *name;
    size_t i;
    int r;

    memset(&set, 0, sizeof(set));
    name = field(&s);
    if (!valid_name(name, sizeof(set.name)))
        return bad(c, "expected a setting name of 1 to %zu characters from [A-Za-z0-9._-], got '%.70s'",
                   sizeof(set.name) - 1, name);
    strcpy(set.name, name);
    r = unescape(c, s, set.value, sizeof(set.value), "a setting value");
    if (r < 0)
        return r;
    for (i = 0; i < p->nsettings; i++)
        if (strcmp(p->settings[i].name, set.name) == 0)
            return bad(c, "duplicate setting '%s'", set.name);
    r = grow((void **)&p->settings, &c->cap_set, p->nsettings, sizeof(*p->settings));
    if (r < 0)
        return r;
    p->settings[p->nsettings++] = set;
    return 0;
}

static int parse_line(struct pctx *c, char *s)
{
    char *kw = field(&s);

    if (strcmp(kw, "host") == 0)
        return parse_host(c, s);
    if (strcmp(kw, "vm") == 0)
        return parse_vm(c, s);
    if (strcmp(kw, "hcs") == 0)
        return parse_hcs(c, s);
    if (strcmp(kw, "service") == 0)
        return parse_service(c, s);
    if (strcmp(kw, "transport") == 0)
        return parse_transport(c, s);
    if (strcmp(kw, "owner") == 0)
        return parse_owner(c, s);
    if (strcmp(kw, "groups") == 0)
        return parse_groups(c, s);
    if (strcmp(kw, "setting") == 0)
        return parse_setting(c, s);
    return bad(c, "expected host, vm, hcs, transport, owner, groups, service or setting, got '%.40s'", kw);
}

int persist_parse(const char *text, size_t len, persist_t *p, char *err, size_t errlen)
{
    struct pctx c;
    char *buf, *s, *end;
    int r = 0;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (p == NULL || (text == NULL && len > 0))
        return -EINVAL;
    memset(p, 0, sizeof(*p));
    memset(&c, 0, sizeof(c));
    c.err = err;
    c.errlen = errlen;
    c.p = p;
    /* A private NUL-terminated copy, so lines can be cut up in place. */
    if (len == SIZE_MAX)
        return -ENOMEM;
    buf = malloc(len + 1);
    if (buf == NULL) {
        hvsim__set_err(err, errlen, "out of memory reading %zu bytes of state", len);
        return -ENOMEM;
    }
    if (len > 0)
        memcpy(buf, text, len);
    buf[len] = '\0';
    end = buf + len;
    s = buf;
    while (r == 0 && (s < end || c.line == 0)) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n;

        c.line++;
        if (nl != NULL)
            *nl = '\0';
        n = nl != NULL ? (size_t)(nl - s) : (size_t)(end - s);
        if (memchr(s, '\0', n) != NULL) {
            r = bad(&c, "expected text, got a NUL byte");
        } else if (c.line == 1) {
            if (strcmp(s, HEADER) != 0)
                r = bad(&c, "expected '%s', got '%.40s'", HEADER, s);
        } else if (*s != '\0' && *s != '#') {
            r = parse_line(&c, s);
        }
        s = nl != NULL ? nl + 1 : end;
    }
    free(buf);
    if (r < 0) {
        if (r == -ENOMEM)
            hvsim__set_err(err, errlen, "state line %lu: out of memory", c.line);
        persist_free(p);
    }
    return r;
}

/* ---- Formatting ---------------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n >= b->cap - b->len || b->p == NULL) {
        size_t ncap = b->cap ? b->cap : 1024;
        char *np;

        while (ncap - b->len <= n) {
            if (ncap > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            ncap *= 2;
        }
        np = realloc(b->p, ncap);
        if (np == NULL) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    /* Only used for fixed-size fields, which always fit. */
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        b->oom = 1;
        return;
    }
    sb_add(b, tmp, (size_t)n);
}

static void sb_escaped(struct sbuf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            sb_str(b, "\\\\");
        else if (*s == '\n')
            sb_str(b, "\\n");
        else if (*s == '\t')
            sb_str(b, "\\t");
        else
            sb_add(b, s, 1);
    }
}

/* A fixed-size text field that is NUL-terminated, and whose control characters
 * are only the escapable \n and \t. */
static int text_ok(const char *s, size_t size)
{
    size_t n = strnlen(s, size), i;

    if (n == size)
        return 0;
    for (i = 0; i < n; i++)
        if (is_ctl((unsigned char)s[i]) && s[i] != '\n' && s[i] != '\t')
            return 0;
    return 1;
}

/* check_state's part for VM I: its fields, and against the VMs before it. */
static int check_vm(const persist_t *p, size_t i, char *err, size_t errlen)
{
    const persist_vm_t *vm = &p->vms[i];
    const hvsim_vm_info_t *in = &vm->info;
    char g[HVSIM_GUID_STRLEN];
    size_t j;

    if (strnlen(in->name, sizeof(in->name)) == sizeof(in->name) || !valid_name(in->name, sizeof(in->name))) {
        hvsim__set_err(err, errlen, "state: VM %zu: name is not 1 to %zu characters from [A-Za-z0-9._-]", i,
                sizeof(in->name) - 1);
        return -EINVAL;
    }
    if (in->kind >= HVSIM_ARRAY_SIZE(kind_names) || in->state >= HVSIM_ARRAY_SIZE(state_names) ||
        in->cid < CID_MIN || in->cid > CID_MAX) {
        hvsim__set_err(err, errlen, "state: VM '%s': kind %u, state %u or cid %u out of range", in->name, in->kind,
                in->state, in->cid);
        return -EINVAL;
    }
    if (hvsim__transport_name(in->transport) == NULL || (in->kernel != 0 && hvsim__kernel_name(in->kernel) == NULL)) {
        hvsim__set_err(err, errlen, "state: VM '%s': transport %u or kernel %u unknown", in->name, in->transport,
                       in->kernel);
        return -EINVAL;
    }
    if (in->owner.set && (in->owner.uid == UINT32_MAX || (in->owner.has_gid && in->owner.gid == UINT32_MAX))) {
        hvsim__set_err(err, errlen, "state: VM '%s': owner uid or gid out of range", in->name);
        return -EINVAL;
    }
    if (memchr(in->groups, '\0', sizeof(in->groups)) == NULL || hvsim__groups_check(in->groups, NULL, 0) < 0 ||
        (in->groups[0] != '\0' && in->transport != HVSIM_TRANSPORT_VIRTIO)) {
        hvsim__set_err(err, errlen, "state: VM '%s': sibling groups not NAME[+NAME...] or not on a virtio VM",
                       in->name);
        return -EINVAL;
    }
    if (vm->nhcs > 0 && vm->hcs == NULL) {
        hvsim__set_err(err, errlen, "state: VM '%s': nhcs is set but hcs is missing", in->name);
        return -EINVAL;
    }
    for (j = 0; j < i; j++) {
        const hvsim_vm_info_t *o = &p->vms[j].info;

        if (hvsim_guid_equal(&o->id, &in->id) || strcmp(o->name, in->name) == 0 || o->cid == in->cid) {
            hvsim__set_err(err, errlen, "state: VMs '%s' and '%s' share an id, name or cid", o->name, in->name);
            return -EINVAL;
        }
    }
    for (j = 0; j < vm->nhcs; j++) {
        size_t k;

        for (k = 0; k < j; k++) {
            if (hvsim_guid_equal(&vm->hcs[k].id, &vm->hcs[j].id)) {
                hvsim__set_err(err, errlen, "state: VM '%s': duplicate hcs entry %s", in->name,
                        hvsim_guid_format(&vm->hcs[j].id, g));
                return -EINVAL;
            }
        }
    }
    return 0;
}

/*
 * Everything persist_parse would reject, checked on the structure, so a save
 * fails loudly instead of writing a file the next start cannot load.
 */
static int check_state(const persist_t *p, char *err, size_t errlen)
{
    char g[HVSIM_GUID_STRLEN];
    size_t i, j;
    int rc;

    if ((p->nvms > 0 && p->vms == NULL) || (p->nservices > 0 && p->services == NULL) ||
        (p->nsettings > 0 && p->settings == NULL)) {
        hvsim__set_err(err, errlen, "state: a count is set but its array is missing");
        return -EINVAL;
    }
    for (i = 0; i < p->nvms; i++) {
        rc = check_vm(p, i, err, errlen);
        if (rc < 0)
            return rc;
    }
    for (i = 0; i < p->nservices; i++) {
        const hvsim_service_info_t *s = &p->services[i];

        if (!text_ok(s->element_name, sizeof(s->element_name))) {
            hvsim__set_err(err, errlen, "state: service %s: element name is unterminated or has control characters",
                    hvsim_guid_format(&s->id, g));
            return -EINVAL;
        }
        for (j = 0; j < i; j++) {
            if (hvsim_guid_equal(&p->services[j].id, &s->id)) {
                hvsim__set_err(err, errlen, "state: duplicate service %s", hvsim_guid_format(&s->id, g));
                return -EINVAL;
            }
        }
    }
    for (i = 0; i < p->nsettings; i++) {
        const persist_setting_t *s = &p->settings[i];

        if (strnlen(s->name, sizeof(s->name)) == sizeof(s->name) || !valid_name(s->name, sizeof(s->name)) ||
            !text_ok(s->value, sizeof(s->value))) {
            hvsim__set_err(err, errlen, "state: setting %zu: bad name, or value unterminated or with control characters",
                    i);
            return -EINVAL;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(p->settings[j].name, s->name) == 0) {
                hvsim__set_err(err, errlen, "state: duplicate setting '%s'", s->name);
                return -EINVAL;
            }
        }
    }
    return 0;
}

int persist_format(const persist_t *p, char **out)
{
    struct sbuf b = { NULL, 0, 0, 0 };
    char g[HVSIM_GUID_STRLEN], g2[HVSIM_GUID_STRLEN];
    size_t i, j;
    int r;

    if (p == NULL || out == NULL)
        return -EINVAL;
    *out = NULL;
    r = check_state(p, NULL, 0);
    if (r < 0)
        return r;
    sb_str(&b, HEADER "\n");
    sb_printf(&b, "host %s\n", hvsim_guid_format(&p->host_id, g));
    for (i = 0; i < p->nvms; i++) {
        const persist_vm_t *vm = &p->vms[i];

        hvsim_guid_format(&vm->info.id, g);
        sb_printf(&b, "vm %s %s %s %u ", g, kind_names[vm->info.kind], state_names[vm->info.state], vm->info.cid);
        sb_str(&b, vm->info.name);
        sb_str(&b, "\n");
        /* Kernel 0 is the default, 6.1. */
        if (vm->info.transport != HVSIM_TRANSPORT_HV_SOCK ||
            (vm->info.kernel != 0 && vm->info.kernel != HVSIM_KERNEL_6_1))
            sb_printf(&b, "transport %s %s %s\n", g, hvsim__transport_name(vm->info.transport),
                      hvsim__kernel_name(vm->info.kernel ? vm->info.kernel : HVSIM_KERNEL_6_1));
        if (vm->info.owner.set) {
            sb_printf(&b, "owner %s %u ", g, vm->info.owner.uid);
            if (vm->info.owner.has_gid)
                sb_printf(&b, "%u\n", vm->info.owner.gid);
            else
                sb_str(&b, "-\n");
        }
        if (vm->info.groups[0] != '\0')
            sb_printf(&b, "groups %s %s\n", g, vm->info.groups);
        /* Nonzero flags are written as 1: the struct holds booleans in bytes. */
        for (j = 0; j < vm->nhcs; j++) {
            const hvsim_hcs_service_t *h = &vm->hcs[j];

            sb_printf(&b, "hcs %s %s bind=%s connect=%s wildcard=%d disabled=%d\n", g,
                      hvsim_guid_format(&h->id, g2), h->bind_deny ? "deny" : "allow",
                      h->connect_deny ? "deny" : "allow", h->allow_wildcard_binds ? 1 : 0, h->disabled ? 1 : 0);
        }
    }
    for (i = 0; i < p->nservices; i++) {
        sb_printf(&b, "service %s", hvsim_guid_format(&p->services[i].id, g));
        if (p->services[i].element_name[0] != '\0') {
            sb_str(&b, " ");
            sb_escaped(&b, p->services[i].element_name);
        }
        sb_str(&b, "\n");
    }
    for (i = 0; i < p->nsettings; i++) {
        sb_printf(&b, "setting %s", p->settings[i].name);
        if (p->settings[i].value[0] != '\0') {
            sb_str(&b, " ");
            sb_escaped(&b, p->settings[i].value);
        }
        sb_str(&b, "\n");
    }
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    *out = b.p;
    return 0;
}

void persist_free(persist_t *p)
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; i < p->nvms; i++)
        free(p->vms[i].hcs);
    free(p->vms);
    free(p->services);
    free(p->settings);
    memset(p, 0, sizeof(*p));
}

/* ---- Files ----------------------------------------------------------------------- */

static int join(char **out, const char *dir, const char *name)
{
    if (asprintf(out, "%s/%s", dir, name) < 0) {
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}

static int read_all(int fd, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap), *nb;
    ssize_t k;

    if (buf == NULL)
        return -ENOMEM;
    for (;;) {
        if (n == cap) {
            if (cap >= STATE_MAX) {
                free(buf);
                return -EFBIG;
            }
            cap *= 2;
            nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
        }
        k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int r = -errno;

            free(buf);
            return r;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    *out = buf;
    *len = n;
    return 0;
}

int persist_load(const char *dir, persist_t *p, char *err, size_t errlen)
{
    char *path = NULL, *text = NULL;
    size_t len = 0;
    struct stat st;
    int fd, dfd, r;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (p == NULL || dir == NULL)
        return -EINVAL;
    memset(p, 0, sizeof(*p));
    if (join(&path, dir, STATE_FILE) < 0)
        return -ENOMEM;
    /* Through the checked folder, never through a link (hvsim__dir_open_trusted). */
    dfd = hvsim__dir_open_trusted(dir, 0, err, errlen);
    if (dfd < 0) {
        r = dfd;
        goto out;
    }
    fd = openat(dfd, STATE_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    close(dfd);
    if (fd < 0) {
        r = -errno;
        hvsim__set_err(err, errlen, "open %s: %s", path, strerror(-r));
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        r = -errno;
        hvsim__set_err(err, errlen, "stat %s: %s", path, strerror(-r));
    } else if (!S_ISREG(st.st_mode)) {
        r = -EINVAL;
        hvsim__set_err(err, errlen, "%s: not a regular file", path);
    } else {
        r = read_all(fd, &text, &len);
        if (r < 0)
            hvsim__set_err(err, errlen, "read %s: %s", path, strerror(-r));
    }
    close(fd);
    if (r == 0)
        r = persist_parse(text, len, p, err, errlen);
out:
    free(text);
    free(path);
    return r;
}

static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, s, n);

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

int persist_save(const char *dir, const persist_t *p, char *err, size_t errlen)
{
    char *text = NULL, *tmp = NULL;
    const char *step;
    int fd = -1, dfd = -1, r;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (p == NULL || dir == NULL)
        return -EINVAL;
    r = check_state(p, err, errlen);
    if (r < 0)
        return r;
    r = persist_format(p, &text);
    if (r == 0)
        r = join(&tmp, dir, STATE_TMP);
    if (r < 0) {
        hvsim__set_err(err, errlen, "saving state: %s", strerror(-r));
        goto out;
    }
    /* O_NOFOLLOW: a planted symlink must not redirect the write; fchmod because
     * O_CREAT's mode does not apply to a state.tmp left by a crash. */
    dfd = hvsim__dir_open_trusted(dir, 0, err, errlen);
    if (dfd < 0) {
        r = dfd;
        goto out;
    }
    fd = openat(dfd, STATE_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        r = -errno;
        hvsim__set_err(err, errlen, "open %s: %s", tmp, strerror(-r));
        goto out;
    }
    step = "chmod";
    r = fchmod(fd, 0600) < 0 ? -errno : 0;
    if (r == 0) {
        step = "write";
        r = write_all(fd, text, strlen(text));
    }
    if (r == 0) {
        step = "fsync";
        r = fsync(fd) < 0 ? -errno : 0;
    }
    /* close can report a delayed write error (NFS): it counts as a failure too. */
    if (close(fd) < 0 && r == 0) {
        step = "close";
        r = -errno;
    }
    if (r == 0 && renameat(dfd, STATE_TMP, dfd, STATE_FILE) < 0) {
        step = "rename";
        r = -errno;
    }
    if (r < 0) {
        hvsim__set_err(err, errlen, "%s %s: %s", step, tmp, strerror(-r));
        unlinkat(dfd, STATE_TMP, 0);
        goto out;
    }
    /* Without this the rename itself may not survive a crash. EINVAL: the file
     * system cannot sync a directory, and there is nothing better to do. */
    if (fsync(dfd) < 0 && errno != EINVAL) {
        r = -errno;
        hvsim__set_err(err, errlen, "fsync directory %s: %s", dir, strerror(-r));
    }
out:
    if (dfd >= 0)
        close(dfd);
    free(tmp);
    free(text);
    return r;
}
