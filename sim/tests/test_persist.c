/* SPDX-License-Identifier: MIT */
/*
 * test_persist.c: unit tests of the daemon's state file (sim/daemon/persist.c):
 * the exact text format and its round trip, the parser's refusal of damaged
 * files (with the line named), and the atomic save, whose failures must
 * leave the previous state file as it was.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hvsim/hvsim.h"
#include "../daemon/persist.h"

#define HOST "11111111-2222-3333-4444-555555555555"
#define VM1 "6a4f3e2d-1c0b-4a9e-8d7c-6b5a49382716"
#define VM2 "c0ffee00-0000-4000-8000-00000000beef"
#define S1 "999e53d4-3d5c-4c3e-8779-bed06ec056e1"
#define S2 "00000808-facb-11e6-bd58-64006a7986d3"
#define S3 "a42e7cda-d03f-480c-9cc2-a4de20abb878"

/* The text persist_format must produce for sample_state(), byte for byte. */
static const char expected_text[] =
    "# hvsim state 1\n"
    "host " HOST "\n"
    "vm " VM1 " classic running 3 web-01\n"
    "owner " VM1 " 65534 -\n"
    "vm " VM2 " hcs paused 4294967294 wsl.2_x\n"
    "transport " VM2 " virtio 6.12\n"
    "owner " VM2 " 0 4294967294\n"
    "groups " VM2 " lab+ci.2\n"
    "hcs " VM2 " " S1 " bind=allow connect=deny wildcard=1 disabled=0\n"
    "hcs " VM2 " " S2 " bind=deny connect=allow wildcard=0 disabled=1\n"
    "service " S1 " VM Session Service\n"
    "service " S2 " back\\\\slash\\nnew line  \n"
    "service " S3 " \\ttab f\xC3\xBCr VMs\n"
    "setting connect_timeout 2000\n"
    "setting motd  two  spaces\\\\ and \\t\n"
    "setting empty\n";

static GUID guid(const char *s)
{
    GUID g;

    cr_assert_eq(hvsim_guid_parse(s, &g), 0, "bad test GUID %s", s);
    return g;
}

/* Two VMs (the HCS one with two service entries), three services whose names
 * need escaping, and settings including an empty value. The caller frees. */
static void sample_state(persist_t *p)
{
    persist_vm_t *vm;

    memset(p, 0, sizeof(*p));
    p->host_id = guid(HOST);
    p->nvms = 2;
    p->vms = calloc(2, sizeof(*p->vms));
    cr_assert_not_null(p->vms);
    vm = &p->vms[0];
    vm->info.id = guid(VM1);
    strcpy(vm->info.name, "web-01");
    vm->info.kind = HVSIM_VM_CLASSIC;
    vm->info.state = HVSIM_VM_RUNNING;
    vm->info.cid = 3;
    vm->info.kernel = HVSIM_KERNEL_6_1; /* hv_sock on 6.1: no transport line */
    vm->info.nprocs = 7; /* not persisted */
    vm->info.owner = (hvsim_vm_owner_t){ .set = 1, .uid = 65534 };
    vm = &p->vms[1];
    vm->info.id = guid(VM2);
    strcpy(vm->info.name, "wsl.2_x");
    vm->info.kind = HVSIM_VM_HCS;
    vm->info.state = HVSIM_VM_PAUSED;
    vm->info.cid = 0xfffffffe;
    vm->info.transport = HVSIM_TRANSPORT_VIRTIO;
    vm->info.kernel = HVSIM_KERNEL_6_12;
    vm->info.owner = (hvsim_vm_owner_t){ .set = 1, .uid = 0, .has_gid = 1, .gid = 4294967294u };
    strcpy(vm->info.groups, "lab+ci.2");
    vm->nhcs = 2;
    vm->hcs = calloc(2, sizeof(*vm->hcs));
    cr_assert_not_null(vm->hcs);
    vm->hcs[0].id = guid(S1);
    vm->hcs[0].connect_deny = 1;
    vm->hcs[0].allow_wildcard_binds = 1;
    vm->hcs[1].id = guid(S2);
    vm->hcs[1].bind_deny = 1;
    vm->hcs[1].disabled = 1;
    p->nservices = 3;
    p->services = calloc(3, sizeof(*p->services));
    cr_assert_not_null(p->services);
    p->services[0].id = guid(S1);
    strcpy(p->services[0].element_name, "VM Session Service");
    p->services[1].id = guid(S2);
    strcpy(p->services[1].element_name, "back\\slash\nnew line  ");
    p->services[2].id = guid(S3);
    strcpy(p->services[2].element_name, "\ttab f\xC3\xBCr VMs");
    p->nsettings = 3;
    p->settings = calloc(3, sizeof(*p->settings));
    cr_assert_not_null(p->settings);
    strcpy(p->settings[0].name, "connect_timeout");
    strcpy(p->settings[0].value, "2000");
    strcpy(p->settings[1].name, "motd");
    strcpy(p->settings[1].value, " two  spaces\\ and \t");
    strcpy(p->settings[2].name, "empty");
}

static void assert_same_state(const persist_t *a, const persist_t *b)
{
    size_t i, j;

    cr_assert(hvsim_guid_equal(&a->host_id, &b->host_id));
    cr_assert_eq(a->nvms, b->nvms);
    for (i = 0; i < a->nvms; i++) {
        const persist_vm_t *x = &a->vms[i], *y = &b->vms[i];

        cr_assert(hvsim_guid_equal(&x->info.id, &y->info.id), "vm %zu id", i);
        cr_assert_str_eq(x->info.name, y->info.name);
        cr_assert_eq(x->info.kind, y->info.kind);
        cr_assert_eq(x->info.state, y->info.state);
        cr_assert_eq(x->info.cid, y->info.cid);
        cr_assert_eq(x->info.transport, y->info.transport);
        cr_assert_eq(x->info.kernel, y->info.kernel);
        cr_assert_eq(memcmp(&x->info.owner, &y->info.owner, sizeof(x->info.owner)), 0, "vm %zu owner", i);
        cr_assert_eq(x->nhcs, y->nhcs);
        for (j = 0; j < x->nhcs; j++) {
            cr_assert(hvsim_guid_equal(&x->hcs[j].id, &y->hcs[j].id));
            cr_assert_eq(x->hcs[j].bind_deny, y->hcs[j].bind_deny);
            cr_assert_eq(x->hcs[j].connect_deny, y->hcs[j].connect_deny);
            cr_assert_eq(x->hcs[j].allow_wildcard_binds, y->hcs[j].allow_wildcard_binds);
            cr_assert_eq(x->hcs[j].disabled, y->hcs[j].disabled);
        }
    }
    cr_assert_eq(a->nservices, b->nservices);
    for (i = 0; i < a->nservices; i++) {
        cr_assert(hvsim_guid_equal(&a->services[i].id, &b->services[i].id));
        cr_assert_str_eq(a->services[i].element_name, b->services[i].element_name);
    }
    cr_assert_eq(a->nsettings, b->nsettings);
    for (i = 0; i < a->nsettings; i++) {
        cr_assert_str_eq(a->settings[i].name, b->settings[i].name);
        cr_assert_str_eq(a->settings[i].value, b->settings[i].value);
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/hvsim-persist-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    if (tmpdir[0] != '\0')
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    cr_assert_eq(fclose(f), 0);
}

/* The file's content (malloc'ed), or NULL when it cannot be read. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    size_t n;

    if (f == NULL)
        return NULL;
    buf = calloc(1, 65536);
    cr_assert_not_null(buf);
    n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static char *path_in(const char *name)
{
    char *p;

    cr_assert_gt(asprintf(&p, "%s/%s", tmpdir, name), 0);
    return p;
}

Test(persist, format_exact_text, .timeout = 5)
{
    persist_t p;
    char *text = NULL;

    sample_state(&p);
    cr_assert_eq(persist_format(&p, &text), 0);
    cr_assert_str_eq(text, expected_text);
    free(text);
    persist_free(&p);
    cr_assert_null(p.vms);
    cr_assert_eq(p.nvms, 0);
}

Test(persist, round_trip, .timeout = 5)
{
    persist_t p, q;
    char *text = NULL, *again = NULL;
    char err[256] = "";

    sample_state(&p);
    cr_assert_eq(persist_format(&p, &text), 0);
    cr_assert_eq(persist_parse(text, strlen(text), &q, err, sizeof(err)), 0, "%s", err);
    assert_same_state(&p, &q);
    cr_assert_eq(q.vms[0].info.nprocs, 0, "nprocs is not persisted");
    cr_assert_eq(persist_format(&q, &again), 0);
    cr_assert_str_eq(again, text);
    free(text);
    free(again);
    persist_free(&p);
    persist_free(&q);
}

Test(persist, parse_tolerates_comments_and_order, .timeout = 5)
{
    /* Hand-written: comments, blank lines, no trailing newline, braces and
     * upper case in GUIDs, hcs lines away from their VM, a bare service. */
    const char *text = "# hvsim state 1\n"
                       "\n"
                       "# a comment\n"
                       "vm {" VM1 "} hcs off 0042 a\n"
                       "service " S3 "\n"
                       "host C0FFEE00-0000-4000-8000-00000000BEEF\n"
                       "hcs " VM1 " " S1 " bind=deny connect=deny wildcard=0 disabled=0\n"
                       "setting x.y-z_1 v";
    persist_t p;
    char err[256] = "";
    char *out = NULL;

    cr_assert_eq(persist_parse(text, strlen(text), &p, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(p.host_id.Data1, 0xc0ffee00);
    cr_assert_eq(p.nvms, 1);
    cr_assert_eq(p.vms[0].info.cid, 42);
    cr_assert_eq(p.vms[0].info.kind, HVSIM_VM_HCS);
    cr_assert_eq(p.vms[0].info.state, HVSIM_VM_OFF);
    cr_assert_eq(p.vms[0].nhcs, 1);
    cr_assert_eq(p.vms[0].hcs[0].bind_deny, 1);
    cr_assert_eq(p.vms[0].hcs[0].connect_deny, 1);
    cr_assert_eq(p.nservices, 1);
    cr_assert_str_eq(p.services[0].element_name, "");
    cr_assert_eq(p.nsettings, 1);
    cr_assert_str_eq(p.settings[0].value, "v");
    cr_assert_eq(persist_format(&p, &out), 0);
    cr_assert_str_eq(out, "# hvsim state 1\n"
                          "host c0ffee00-0000-4000-8000-00000000beef\n"
                          "vm " VM1 " hcs off 42 a\n"
                          "hcs " VM1 " " S1 " bind=deny connect=deny wildcard=0 disabled=0\n"
                          "service " S3 "\n"
                          "setting x.y-z_1 v\n");
    free(out);
    persist_free(&p);

    /* Only the header: an empty state. */
    cr_assert_eq(persist_parse("# hvsim state 1\n", 16, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(p.nvms + p.nservices + p.nsettings, 0);
    persist_free(&p);
}

/* Each of these lines, after a valid prefix, must fail naming the line. */
static const struct {
    const char *text;
    const char *want;
} bad_inputs[] = {
    { "", "state line 1: expected '# hvsim state 1', got ''" },
    { "# hvsim state 2\n", "state line 1: expected '# hvsim state 1'" },
    { "# hvsim state 1\r\n", "state line 1: expected '# hvsim state 1'" },
    { "# hvsim state 1\nhost nope\n", "state line 2: expected the host GUID, got 'nope'" },
    { "# hvsim state 1\nhost " HOST "\nhost " HOST "\n", "state line 3: expected one host line" },
    { "# hvsim state 1\nhost " HOST " x\n", "state line 2: expected end of line, got 'x'" },
    { "# hvsim state 1\nvm " VM1 " classic running 3 a\ntransport " VM1 " vmci 6.1\n",
      "expected a transport (hv_sock or virtio), got 'vmci'" },
    { "# hvsim state 1\nvm " VM1 " classic running 3 a\ntransport " VM1 " virtio 5.10\n",
      "expected a kernel (6.1, 6.12 or newest), got '5.10'" },
    { "# hvsim state 1\ntransport " VM1 " virtio 6.1\n", "expected the id of a VM defined above" },
    { "# hvsim state 1\nowner " VM1 " 5 -\n", "expected the id of a VM defined above" },
    { "# hvsim state 1\ngroups " VM1 " lab\n", "expected the id of a VM defined above" },
    { "# hvsim state 1\nvm " VM1 " classic running 3 a\ngroups " VM1 " lab\n",
      "state line 3: expected sibling groups only for a VM whose transport line (above) says virtio" },
    { "# hvsim state 1\nvm " VM1 " classic running 3 a\ntransport " VM1 " virtio 6.1\ngroups " VM1 " a++b\n",
      "state line 4: sibling groups 'a++b': group 2 is empty" },
    { "# hvsim state 1\nvm " VM1 " classic running 3 a\ntransport " VM1 " virtio 6.1\ngroups " VM1 "\n",
      "state line 4: expected sibling groups NAME[+NAME...], got nothing" },
    { "# hvsim state 1\nvm " VM1 " classic running 3 a\ntransport " VM1 " virtio 6.1\ngroups " VM1 " a b\n",
      "state line 4: expected end of line, got 'b'" },
    { "# hvsim state 1\nvm " VM1 " classic running 3 a\ntransport " VM1 " virtio 6.1\ngroups " VM1
      " a\ntransport " VM1 " hv_sock 6.1\n",
      "state line 5: expected virtio for a VM with sibling groups, got 'hv_sock'" },
    { "# hvsim state 1\nvm " VM1 " classic running 3 a\nowner " VM1 " 4294967295 -\n", "expected a uid or gid" },
    { "# hvsim state 1\nvm " VM1 " classic running 3 a\nowner " VM1 " 5 -1\n", "expected a uid or gid" },
    { "# hvsim state 1\nvm " VM1 " classic running 3 a\nowner " VM1 " +5 -\n", "expected a uid or gid" },
    { "# hvsim state 1\nvm " VM1 " classic running 3 a\nowner " VM1 " 5\n", "expected a uid or gid" },
    { "# hvsim state 1\nvm " VM1 " classic running 3 a\nowner " VM1 " 5 6 7\n", "expected end of line" },
    { "# hvsim state 1\nvms " VM1 "\n", "state line 2: expected host, vm, hcs, transport, owner, groups, service or setting, got 'vms'" },
    { "# hvsim state 1\n vm " VM1 " hcs off 3 a\n", "state line 2: expected host, vm, hcs" },
    { "# hvsim state 1\nvm " VM1 " kvm off 3 a\n", "state line 2: expected a VM kind (classic or hcs), got 'kvm'" },
    { "# hvsim state 1\nvm " VM1 " hcs on 3 a\n", "state line 2: expected a VM state" },
    { "# hvsim state 1\nvm " VM1 " hcs off 2 a\n", "state line 2: expected a decimal cid in 3..4294967294, got '2'" },
    { "# hvsim state 1\nvm " VM1 " hcs off 4294967295 a\n", "state line 2: expected a decimal cid" },
    { "# hvsim state 1\nvm " VM1 " hcs off 99999999999 a\n", "state line 2: expected a decimal cid" },
    { "# hvsim state 1\nvm " VM1 " hcs off 0x10 a\n", "state line 2: expected a decimal cid" },
    { "# hvsim state 1\nvm " VM1 " hcs off -5 a\n", "state line 2: expected a decimal cid" },
    { "# hvsim state 1\nvm " VM1 " hcs off 3 two words\n", "state line 2: expected a VM name of 1 to 63" },
    { "# hvsim state 1\nvm " VM1 " hcs off 3 \n", "state line 2: expected a VM name" },
    { "# hvsim state 1\nvm " VM1 " hcs off 3\n", "state line 2: expected a VM name" },
    { "# hvsim state 1\nvm " VM1 "  hcs off 3 a\n", "state line 2: expected a VM kind" },
    { "# hvsim state 1\nvm " VM1 " hcs off 3 "
      "a123456789012345678901234567890123456789012345678901234567890123\n",
      "state line 2: expected a VM name" },
    { "# hvsim state 1\nvm " VM1 " hcs off 3 a\nvm " VM1 " hcs off 4 b\n", "state line 3: duplicate VM id" },
    { "# hvsim state 1\nvm " VM1 " hcs off 3 a\nvm " VM2 " hcs off 4 a\n", "state line 3: duplicate VM name 'a'" },
    { "# hvsim state 1\nvm " VM1 " hcs off 3 a\nvm " VM2 " hcs off 3 b\n", "state line 3: duplicate cid 3" },
    { "# hvsim state 1\nhcs " VM1 " " S1 " bind=deny connect=deny wildcard=0 disabled=0\nvm " VM1
      " hcs off 3 a\n",
      "state line 2: expected the id of a VM defined above" },
    { "# hvsim state 1\nvm " VM1 " hcs off 3 a\nhcs " VM1 " " S1 " bind=maybe connect=deny wildcard=0 disabled=0\n",
      "state line 3: expected bind=allow or bind=deny, got 'bind=maybe'" },
    { "# hvsim state 1\nvm " VM1 " hcs off 3 a\nhcs " VM1 " " S1 " connect=deny bind=deny wildcard=0 disabled=0\n",
      "state line 3: expected bind=allow" },
    { "# hvsim state 1\nvm " VM1 " hcs off 3 a\nhcs " VM1 " " S1 " bind=deny connect=deny wildcard=2 disabled=0\n",
      "state line 3: expected wildcard=0 or wildcard=1" },
    { "# hvsim state 1\nvm " VM1 " hcs off 3 a\nhcs " VM1 " " S1 " bind=deny connect=deny wildcard=0\n",
      "state line 3: expected disabled=0 or disabled=1, got ''" },
    { "# hvsim state 1\nvm " VM1 " hcs off 3 a\nhcs " VM1 " " S1
      " bind=deny connect=deny wildcard=0 disabled=0 extra\n",
      "state line 3: expected end of line, got 'extra'" },
    { "# hvsim state 1\nvm " VM1 " hcs off 3 a\nhcs " VM1 " " S1 " bind=deny connect=deny wildcard=0 disabled=0\n"
      "hcs " VM1 " " S1 " bind=allow connect=deny wildcard=0 disabled=0\n",
      "state line 4: duplicate hcs entry " S1 " for VM 'a'" },
    { "# hvsim state 1\nservice " S1 " a\nservice " S1 " b\n", "state line 3: duplicate service " S1 },
    { "# hvsim state 1\nservice " S1 " bad \\x escape\n", "state line 2: expected \\\\, \\n or \\t in an element name, got '\\x'" },
    { "# hvsim state 1\nservice " S1 " trailing \\\n", "state line 2: expected \\\\, \\n or \\t in an element name" },
    { "# hvsim state 1\nservice " S1 " raw\ttab\n", "state line 2: expected an element name without control characters, got byte 0x09" },
    { "# hvsim state 1\nservice " S1 " cr\r\n", "state line 2: expected an element name without control characters" },
    { "# hvsim state 1\nservice nope name\n", "state line 2: expected a service GUID, got 'nope'" },
    { "# hvsim state 1\nsetting a=b c\n", "state line 2: expected a setting name" },
    { "# hvsim state 1\nsetting\n", "state line 2: expected a setting name" },
    { "# hvsim state 1\nsetting a 1\nsetting a 2\n", "state line 3: duplicate setting 'a'" },
};

Test(persist, parse_rejects_malformed, .timeout = 5)
{
    size_t i;

    for (i = 0; i < sizeof(bad_inputs) / sizeof(bad_inputs[0]); i++) {
        persist_t p;
        char err[256] = "";
        int r = persist_parse(bad_inputs[i].text, strlen(bad_inputs[i].text), &p, err, sizeof(err));

        cr_assert_eq(r, -EINVAL, "input %zu: rc %d", i, r);
        cr_assert_not_null(strstr(err, bad_inputs[i].want), "input %zu: message '%s' lacks '%s'", i, err,
                           bad_inputs[i].want);
        cr_assert_eq(p.nvms + p.nservices + p.nsettings, 0, "input %zu: state not emptied", i);
        cr_assert_null(p.vms);
    }
}

Test(persist, parse_rejects_long_text_and_nul, .timeout = 5)
{
    char text[1024];
    char name[HVSIM_ELEMENT_NAME_MAX + 1];
    static const char nul[] = "# hvsim state 1\nservice " S1 " a\0b\n";
    persist_t p;
    char err[256] = "";

    /* 255 bytes of element name fit; "\\n" counts as the one byte it stands for. */
    memset(name, 'n', sizeof(name));
    name[HVSIM_ELEMENT_NAME_MAX - 2] = '\0';
    snprintf(text, sizeof(text), "# hvsim state 1\nservice " S1 " %s\\n\n", name);
    cr_assert_eq(persist_parse(text, strlen(text), &p, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(strlen(p.services[0].element_name), HVSIM_ELEMENT_NAME_MAX - 1);
    cr_assert_eq(p.services[0].element_name[HVSIM_ELEMENT_NAME_MAX - 2], '\n');
    persist_free(&p);
    name[HVSIM_ELEMENT_NAME_MAX - 2] = 'n';
    name[HVSIM_ELEMENT_NAME_MAX] = '\0';
    snprintf(text, sizeof(text), "# hvsim state 1\nservice " S1 " %s\n", name);
    cr_assert_eq(persist_parse(text, strlen(text), &p, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "state line 2: expected an element name of at most 255 bytes"), "%s", err);

    memset(name, 'v', sizeof(name));
    name[192] = '\0';
    snprintf(text, sizeof(text), "# hvsim state 1\nsetting s %s\n", name);
    cr_assert_eq(persist_parse(text, strlen(text), &p, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "state line 2: expected a setting value of at most 191 bytes"), "%s", err);

    cr_assert_eq(persist_parse(nul, sizeof(nul) - 1, &p, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "state line 2: expected text, got a NUL byte"), "%s", err);
}

Test(persist, format_rejects_unloadable_state, .timeout = 5)
{
    persist_t p;
    char *text = (char *)1;

    sample_state(&p);
    p.vms[0].info.cid = 2;
    cr_assert_eq(persist_format(&p, &text), -EINVAL);
    cr_assert_null(text);
    p.vms[0].info.cid = 5;
    strcpy(p.vms[0].info.name, "has space");
    cr_assert_eq(persist_format(&p, &text), -EINVAL);
    strcpy(p.vms[0].info.name, "wsl.2_x");
    cr_assert_eq(persist_format(&p, &text), -EINVAL, "duplicate VM name");
    strcpy(p.vms[0].info.name, "web-01");
    p.vms[0].info.kind = 7;
    cr_assert_eq(persist_format(&p, &text), -EINVAL);
    p.vms[0].info.kind = HVSIM_VM_CLASSIC;
    p.services[0].element_name[0] = '\r';
    cr_assert_eq(persist_format(&p, &text), -EINVAL);
    p.services[0].element_name[0] = 'V';
    memset(p.settings[0].value, 'x', sizeof(p.settings[0].value)); /* unterminated */
    cr_assert_eq(persist_format(&p, &text), -EINVAL);
    strcpy(p.settings[0].value, "ok");
    p.services[2].id = p.services[0].id;
    cr_assert_eq(persist_format(&p, &text), -EINVAL, "duplicate service");
    p.services[2].id = guid(S3);
    /* Sibling groups: only on a virtio VM, and only names groups.c takes. */
    strcpy(p.vms[0].info.groups, "lab");
    cr_assert_eq(persist_format(&p, &text), -EINVAL, "groups on an hv_sock VM");
    p.vms[0].info.groups[0] = '\0';
    strcpy(p.vms[1].info.groups, "lab+");
    cr_assert_eq(persist_format(&p, &text), -EINVAL, "an empty group name");
    memset(p.vms[1].info.groups, 'g', sizeof(p.vms[1].info.groups)); /* unterminated */
    cr_assert_eq(persist_format(&p, &text), -EINVAL, "unterminated groups");
    strcpy(p.vms[1].info.groups, "lab");
    cr_assert_eq(persist_format(&p, &text), 0);
    free(text);
    persist_free(&p);
}

Test(persist, save_and_load, .timeout = 5, .init = make_tmpdir, .fini = remove_tmpdir)
{
    persist_t p, q;
    char err[256] = "";
    char *state = path_in("state"), *tmp = path_in("state.tmp"), *text;
    struct stat st;

    memset(&q, 0xAA, sizeof(q));
    cr_assert_eq(persist_load(tmpdir, &q, err, sizeof(err)), -ENOENT);
    cr_assert_eq(q.nvms + q.nservices + q.nsettings, 0);
    cr_assert(hvsim_guid_equal(&q.host_id, &HV_GUID_ZERO));

    sample_state(&p);
    cr_assert_eq(persist_save(tmpdir, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(stat(state, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(access(tmp, F_OK), -1, "state.tmp left behind");
    text = read_file(state);
    cr_assert_str_eq(text, expected_text);
    free(text);
    cr_assert_eq(persist_load(tmpdir, &q, err, sizeof(err)), 0, "%s", err);
    assert_same_state(&p, &q);
    persist_free(&q);

    /* A second save replaces the first. */
    p.nvms = 1;
    p.nsettings = 0;
    cr_assert_eq(persist_save(tmpdir, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(persist_load(tmpdir, &q, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(q.nvms, 1);
    cr_assert_eq(q.nsettings, 0);
    cr_assert_eq(q.nservices, 3);
    persist_free(&q);
    p.nvms = 2;
    p.nsettings = 3;
    persist_free(&p);
    free(state);
    free(tmp);
}

Test(persist, corrupt_file_is_left_alone, .timeout = 5, .init = make_tmpdir, .fini = remove_tmpdir)
{
    static const char corrupt[] = "# hvsim state 1\nhost " HOST "\nvm " VM1 " classic running 1 a\n";
    persist_t p;
    char err[256] = "";
    char *state = path_in("state"), *text;

    write_file(state, corrupt);
    cr_assert_eq(persist_load(tmpdir, &p, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "state line 3:"), "%s", err);
    cr_assert_not_null(strstr(err, "cid"), "%s", err);
    cr_assert_eq(p.nvms, 0);
    text = read_file(state);
    cr_assert_str_eq(text, corrupt);
    free(text);
    free(state);
}

Test(persist, state_that_is_not_a_file, .timeout = 5, .init = make_tmpdir, .fini = remove_tmpdir)
{
    persist_t p;
    char err[256] = "";
    char *state = path_in("state");

    cr_assert_eq(mkdir(state, 0700), 0);
    cr_assert_eq(persist_load(tmpdir, &p, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "not a regular file"), "%s", err);
    free(state);
}

Test(persist, failed_save_keeps_old_state, .timeout = 5, .init = make_tmpdir, .fini = remove_tmpdir)
{
    persist_t p;
    char err[256] = "";
    char *state = path_in("state"), *tmp = path_in("state.tmp"), *plain = path_in("plain"), *under, *text;

    sample_state(&p);
    cr_assert_eq(persist_save(tmpdir, &p, err, sizeof(err)), 0, "%s", err);
    p.vms[0].info.cid = 100;

    /* A directory path that runs through a regular file: open fails with ENOTDIR. */
    write_file(plain, "x");
    cr_assert_gt(asprintf(&under, "%s/sub", plain), 0);
    cr_assert_eq(persist_save(under, &p, err, sizeof(err)), -ENOTDIR);
    /* The folder is checked (and opened) first: the message names it. */
    cr_assert_not_null(strstr(err, under), "%s", err);
    free(under);

    /* state.tmp is taken by a directory: open fails with EISDIR. */
    cr_assert_eq(mkdir(tmp, 0700), 0);
    err[0] = '\0';
    cr_assert_eq(persist_save(tmpdir, &p, err, sizeof(err)), -EISDIR);
    cr_assert_not_null(strstr(err, "open "), "%s", err);
    cr_assert_eq(rmdir(tmp), 0);

    /* An invalid state is refused before anything is written. */
    p.vms[1].info.cid = 100;
    cr_assert_eq(persist_save(tmpdir, &p, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "share an id, name or cid"), "%s", err);
    cr_assert_eq(access(tmp, F_OK), -1);

    text = read_file(state);
    cr_assert_str_eq(text, expected_text, "old state changed");
    free(text);
    persist_free(&p);
    free(state);
    free(tmp);
    free(plain);
}

Test(persist, failed_rename_removes_tmp, .timeout = 5, .init = make_tmpdir, .fini = remove_tmpdir)
{
    persist_t p;
    char err[256] = "";
    char *state = path_in("state"), *tmp = path_in("state.tmp"), *inner = path_in("state/keep");
    int r;

    /* A non-empty directory named "state": the write succeeds, the rename cannot. */
    cr_assert_eq(mkdir(state, 0700), 0);
    write_file(inner, "keep");
    sample_state(&p);
    r = persist_save(tmpdir, &p, err, sizeof(err));
    cr_assert(r == -EISDIR || r == -ENOTEMPTY, "rc %d", r);
    cr_assert_not_null(strstr(err, "rename "), "%s", err);
    cr_assert_eq(access(tmp, F_OK), -1, "state.tmp left behind");
    cr_assert_eq(access(inner, F_OK), 0);
    persist_free(&p);
    free(state);
    free(tmp);
    free(inner);
}

/* Issue 11, finding 3: the state folder is checked, and the state file is
 * reached through it without following links. */
Test(persist, untrusted_folder_and_linked_file_are_refused, .timeout = 5, .init = make_tmpdir, .fini = remove_tmpdir)
{
    persist_t p, q;
    char err[512] = "";
    char *state = path_in("state"), *victim = path_in("victim"), *text;

    sample_state(&p);
    cr_assert_eq(chmod(tmpdir, 0777), 0);
    cr_assert_eq(persist_save(tmpdir, &p, err, sizeof(err)), -EPERM);
    cr_assert_not_null(strstr(err, "writable by everyone"), "%s", err);
    cr_assert_eq(access(state, F_OK), -1, "nothing may be written into an untrusted folder");
    cr_assert_eq(chmod(tmpdir, 0700), 0);
    /* A link in place of the state file is never followed, for reading ... */
    write_file(victim, "precious\n");
    cr_assert_eq(symlink(victim, state), 0);
    cr_assert_eq(persist_load(tmpdir, &q, err, sizeof(err)), -ELOOP, "%s", err);
    /* ... nor for writing: the save replaces the link, the target is untouched. */
    cr_assert_eq(persist_save(tmpdir, &p, err, sizeof(err)), 0, "%s", err);
    text = read_file(victim);
    cr_assert_str_eq(text, "precious\n");
    free(text);
    persist_free(&p);
    free(state);
    free(victim);
}
