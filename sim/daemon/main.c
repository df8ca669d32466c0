/* SPDX-License-Identifier: MIT */
/*
 * main.c: hvsimd, the emulated Hyper-V host. It runs in the foreground, logs
 * to stderr, says it is ready on --ready-fd, and exits cleanly on SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hvproto/cli.h"
#include "hvproto/util.h"
#include "hvproto/mutants.h"
#include "dlog.h"
#include "server.h"

static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: hvsimd [--dir DIR] [--state-dir DIR] [--ready-fd N] [--set NAME=VALUE]...\n"
               "              [--log FILE [--log-format text|json]]\n"
               "  --dir DIR        control sockets (default: $HVSIM_DIR, $XDG_RUNTIME_DIR/hvsim or /tmp/hvsim-UID)\n"
               "  --state-dir DIR  where VMs, services and settings persist (default: DIR/state; '' for none)\n"
               "  --ready-fd N     write READY=1 and close fd N once clients may connect\n"
               "  --set NAME=VALUE an emulation choice (settings below)\n"
               "  --log FILE       the decision log: one line per bind, listen and connect decision (who,\n"
               "                   the addresses, the verdict, the rule id of the README's tables); appended\n"
               "  --log-format F   text (the default) or json (one object a line)\n"
               "  --version        print the version and exit\n"
               "  -h, --help       print this text and exit\n"
               "Readiness: --ready-fd, and systemd's NOTIFY_SOCKET (Type=notify; a path or @abstract name):\n"
               "READY=1 once clients may connect, STOPPING=1 at SIGTERM.\n"
#ifdef HVSIM_MUTANTS
               "  --mutant NAME    this mutant build breaks one named rule (also HVSIM_MUTANT=NAME)\n"
               "  --list-mutants   the rules it can break\n"
#endif
               "\nsettings:\n");
    for (i = 0; i < settings_count(); i++) {
        const char *name, *choices, *conf, *why = settings_doc(i, &name, &choices, &conf);

        fprintf(f, "  %-30s %-22s %-11s %s\n", name, choices, conf, why);
    }
}

#ifdef HVSIM_MUTANTS
/* The mutant build's two options (hvproto/mutants.h): 0 handled, 1 exit 0,
 * 2 exit 2, -1 not a mutant option. */
static int mutant_option(int c, const char *arg)
{
    unsigned i;

    if (c == 'M') {
        if (hvsim__mutant_select(arg) < 0) {
            fprintf(stderr, "hvsimd: --mutant: unknown rule '%s' (hvsimd --list-mutants)\n", arg);
            return 2;
        }
        fprintf(stderr, "hvsimd: TEST MUTANT '%s' is active: one rule is deliberately wrong\n", arg);
        return 0;
    }
    if (c != 'L')
        return -1;
    for (i = 1; i < HVSIM_MUT_COUNT; i++) {
        const char *name, *rule, *wrong;

        hvsim__mutant_row(i, &name, &rule, &wrong);
        printf("%s\t%s\t%s\n", name, rule, wrong);
    }
    return 1;
}
#endif

struct log_opts {
    const char *path; /* --log, or NULL */
    int json; /* --log-format json */
};

/* --ready-fd N: the number, or -1 after a message. */
static int parse_fd(const char *text)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno || *end || end == text || v < 0 || v > INT_MAX) {
        fprintf(stderr, "hvsimd: --ready-fd: expected a file descriptor number, got '%s'\n", text);
        return -1;
    }
    return (int)v;
}

static int log_format_parse(const char *text, struct log_opts *log)
{
    if (strcmp(text, "json") != 0 && strcmp(text, "text") != 0) {
        fprintf(stderr, "hvsimd: --log-format: expected text or json, got '%s'\n", text);
        return -1;
    }
    log->json = strcmp(text, "json") == 0;
    return 0;
}

/* Serve DIR (NULL: the default) until SIGTERM; the exit status. */
static int run(const char *dir, const char *state, const char *const *sets, size_t nsets, int ready_fd,
               const struct log_opts *log)
{
    static struct server srv;
    char dirbuf[PATH_MAX], statebuf[PATH_MAX + 8], err[512] = "";
    int rc;

    if (dir == NULL)
        dir = hvsim__default_dir(dirbuf, sizeof(dirbuf));
    if (state == NULL) {
        snprintf(statebuf, sizeof(statebuf), "%s/state", dir);
        state = statebuf;
    }
    if (log->path && dlog_open(log->path, log->json, err, sizeof(err)) < 0) {
        fprintf(stderr, "hvsimd: %s\n", err);
        return 1;
    }
    rc = server_init(&srv, dir, state, sets, nsets, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "hvsimd: %s\n", err[0] ? err : strerror(-rc));
        server_fini(&srv);
        return 1;
    }
    rc = server_run(&srv, ready_fd);
    server_fini(&srv);
    dlog_close();
    if (rc < 0) {
        fprintf(stderr, "hvsimd: %s\n", strerror(-rc));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },      { "state-dir", required_argument, NULL, 's' },
        { "ready-fd", required_argument, NULL, 'r' }, { "set", required_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },           { "version", no_argument, NULL, 'V' },
        { "log", required_argument, NULL, 'l' },      { "log-format", required_argument, NULL, 'F' },
#ifdef HVSIM_MUTANTS
        { "mutant", required_argument, NULL, 'M' },   { "list-mutants", no_argument, NULL, 'L' },
#endif
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL, *state = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof(*sets));
    size_t nsets = 0;
    struct log_opts log = { NULL, 0 };
    const char *log_format = NULL;
    int ready_fd = -1, c, rc;

    if (sets == NULL)
        return 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 's':
            state = optarg;
            break;
        case 'r':
            ready_fd = parse_fd(optarg);
            if (ready_fd < 0)
                return 2;
            break;
        case 'S':
            sets[nsets++] = optarg;
            break;
        case 'l':
            log.path = optarg;
            break;
        case 'F':
            log_format = optarg;
            if (log_format_parse(optarg, &log) < 0)
                return 2;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            return hvsim__cli_version("hvsimd");
        default:
#ifdef HVSIM_MUTANTS
            rc = mutant_option(c, optarg);
            if (rc == 0)
                break;
            if (rc > 0)
                return rc == 1 ? 0 : 2;
#endif
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hvsimd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (log_format && log.path == NULL) {
        fprintf(stderr, "hvsimd: --log-format needs --log FILE\n");
        return 2;
    }
    rc = run(dir, state, sets, nsets, ready_fd, &log);
    free(sets);
    return rc;
}
