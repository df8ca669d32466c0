/* SPDX-License-Identifier: MIT */
/*
 * dlog.c: the decision log (dlog.h). One line per decision, flushed as it is
 * written so that a reader (tail -f, a test) sees each one at once. Text:
 *   2026-01-02T03:04:05.678Z connect vm1 pid=42 windows {VMID}:{SVC} -> refuse ECONNREFUSED rule=guest.windows-refused
 * JSON (--log-format json): the same fields as one object a line.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hvproto/rules.h"
#include "dlog.h"

static FILE *log_f;
static int log_json;

static const char *const rule_names[] = {
#define X(id, name, what) [HVSIM_RULE_##id] = name,
    HVSIM_RULE_MAP(X)
#undef X
};

static const char *rule_name(uint32_t r)
{
    return r < HVSIM_RULE_COUNT ? rule_names[r] : "unknown";
}

const char *dlog_rule_name(uint32_t rule)
{
    return rule_name(rule);
}

static const char *verdict_name(uint32_t v)
{
    static const char *const names[] = { "ok", "refuse", "noanswer", "pending" };

    return v < sizeof(names) / sizeof(names[0]) ? names[v] : "unknown";
}

static const char *pers_name(uint32_t p)
{
    return p == HVSIM_PERS_WINDOWS ? "windows" : p == HVSIM_PERS_LINUX ? "linux-guest" : "vsock-host";
}

int dlog_open(const char *path, int json, char *err, size_t errlen)
{
    log_f = fopen(path, "ae");
    if (log_f == NULL) {
        snprintf(err, errlen, "--log %s: %s", path, strerror(errno));
        return -errno;
    }
    setvbuf(log_f, NULL, _IOLBF, 0);
    log_json = json;
    return 0;
}

void dlog_close(void)
{
    if (log_f)
        fclose(log_f);
    log_f = NULL;
}

/* A JSON string of a name the model holds (VM names are users' text). */
static void jstr(const char *s)
{
    fputc('"', log_f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\')
            fprintf(log_f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(log_f, "\\u%04x", ch);
        else
            fputc(ch, log_f);
    }
    fputc('"', log_f);
}

static void timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(ts.tv_nsec / 1000000) % 1000);
}

/* The address as asked: {VMID}:{SVC}, or CID:PORT for the host's AF_VSOCK. */
static void addr_text(uint32_t pers, const GUID *vmid, const GUID *svc, char *buf, size_t len)
{
    char v[HVSIM_GUID_STRLEN], s[HVSIM_GUID_STRLEN];
    uint32_t port;

    if (pers == HVSIM_PERS_VSOCK_HOST && hvsim_guid_to_port(svc, &port))
        snprintf(buf, len, "%u:%u", vmid->Data1, port);
    else
        snprintf(buf, len, "{%s}:{%s}", hvsim_guid_format(vmid, v), hvsim_guid_format(svc, s));
}

/* One record; o->error as its errno name, "" when none. */
static void record(const char *op, const struct proc *c, uint32_t pers, const char *addr, const char *to,
                   const struct hvsim_outcome *o, const struct hvsim_outcome *vanished)
{
    char ts[96];
    const char *err = o->error ? hvsim_err_name(o->error) : "";

    timestamp(ts, sizeof(ts));
    if (!log_json) {
        fprintf(log_f, "%s %s %s pid=%ld %s %s%s%s -> %s%s%s", ts, op, c->part->name, (long)c->pid, pers_name(pers),
                addr, to ? " to " : "", to ? to : "", verdict_name(o->verdict), err[0] ? " " : "", err);
        if (o->verdict == HVSIM_VERDICT_NOANSWER || o->verdict == HVSIM_VERDICT_PENDING)
            fprintf(log_f, " after=%ums", o->wait_ms);
        fprintf(log_f, " rule=%s", rule_name(o->rule));
        if (vanished)
            fprintf(log_f, " vanished=%s", rule_name(vanished->rule));
        fputc('\n', log_f);
        return;
    }
    fprintf(log_f, "{\"time\": \"%s\", \"op\": \"%s\", \"partition\": ", ts, op);
    jstr(c->part->name);
    fprintf(log_f, ", \"pid\": %ld, \"personality\": \"%s\", \"address\": \"%s\", \"to\": ", (long)c->pid,
            pers_name(pers), addr);
    if (to)
        jstr(to);
    else
        fputs("null", log_f);
    fprintf(log_f, ", \"verdict\": \"%s\", \"error\": ", verdict_name(o->verdict));
    if (err[0])
        fprintf(log_f, "\"%s\"", err);
    else
        fputs("null", log_f);
    fprintf(log_f, ", \"wait_ms\": %u, \"rule\": \"%s\"", o->wait_ms, rule_name(o->rule));
    if (vanished)
        fprintf(log_f, ", \"vanished_rule\": \"%s\"", rule_name(vanished->rule));
    fputs("}\n", log_f);
}

void dlog_bind(const struct proc *c, uint32_t pers, const GUID *vmid, const GUID *svc, int rc)
{
    struct hvsim_outcome o = { rc < 0 ? HVSIM_VERDICT_REFUSE : HVSIM_VERDICT_OK, rc < 0 ? rc : 0, 0, HVSIM_RULE_BIND };
    char addr[96];

    if (log_f == NULL)
        return;
    addr_text(pers, vmid, svc, addr, sizeof(addr));
    record("bind", c, pers, addr, NULL, &o, NULL);
}

void dlog_listen(const struct proc *c, const struct bind *b, int rc)
{
    struct hvsim_outcome o = { rc < 0 ? HVSIM_VERDICT_REFUSE : HVSIM_VERDICT_OK, rc < 0 ? rc : 0, 0,
                               HVSIM_RULE_LISTEN };
    char addr[96];

    if (log_f == NULL)
        return;
    addr_text(b->pers, &b->vmid, &b->svc, addr, sizeof(addr));
    record("listen", c, b->pers, addr, NULL, &o, NULL);
}

void dlog_connect(const struct proc *c, uint32_t pers, const GUID *vmid, const GUID *svc, const char *to,
                  const struct hvsim_outcome *o, const struct hvsim_outcome *vanished)
{
    char addr[96];

    if (log_f == NULL)
        return;
    addr_text(pers, vmid, svc, addr, sizeof(addr));
    record("connect", c, pers, addr, to, o, vanished);
}
