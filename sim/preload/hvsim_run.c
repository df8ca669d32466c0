/* SPDX-License-Identifier: MIT */
/*
 * hvsim_run.c: hvsim-run, the launcher that makes an unmodified program a
 * process of the emulated Hyper-V host.
 *
 *   hvsim-run --vm vm1 ./guest-agent        a Linux or Windows guest program of vm1
 *   hvsim-run --host ./host-service         a host program
 *
 * It sets the environment that attaches a process tree to a partition
 * (HVSIM_PARTITION, HVSIM_DIR), puts the interposer (libhvsim-preload.so,
 * found next to the launcher as ../lib/) in LD_PRELOAD, installs the seccomp
 * filter of vsock_filter.h and execs the program in place: same pid, same
 * signals, same exit status, so it composes with timeout(1), strace and
 * process supervisors.
 *
 * The two layers fail closed together. The interposer turns AF_VSOCK and
 * AF_HYPERV calls into libhvsim's emulated sockets and never passes those
 * families to the kernel; the filter answers EAFNOSUPPORT to any socket() of
 * those families that reaches the kernel anyway (static binaries, raw
 * syscalls, a child that dropped LD_PRELOAD). If the launcher cannot set up
 * either layer it refuses to run the program at all (exit 125).
 *
 * Reporting: the kernel cannot count what a RET_ERRNO filter refused, and a
 * trap-based audit would steal the program's SIGSYS, so the record of what
 * happened is kept where it is known: `--log FILE` makes the interposer append
 * one line per AF_VSOCK/AF_HYPERV socket() it handles (emulated, or refused
 * and why). To show that no kernel vsock socket was made, run the launcher
 * under `strace -f -e trace=socket,socketpair`: every socket(AF_VSOCK, ...)
 * that appears there failed with EAFNOSUPPORT.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hvproto/cli.h"
#include "supervisor.h"
#include "vsock_filter.h"

#define EXIT_LAUNCHER 125 /* as env(1) and timeout(1): the launcher itself failed */
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127
#define PRELOAD_NAME "libhvsim-preload.so"

static const char *const usage_text =
    "usage: hvsim-run (--host | --vm NAME) [--dir DIR] [--log FILE] [--preload PATH] [--] PROGRAM [ARG]...\n"
    "Runs PROGRAM as a process of the emulated Hyper-V host: its AF_VSOCK and AF_HYPERV (34)\n"
    "sockets are hvsim's, and the machine's own vsock is out of its reach.\n"
    "  --host          a host process (HVSIM_PARTITION=host)\n"
    "  --vm NAME       a guest process of VM NAME (HVSIM_PARTITION=NAME)\n"
    "  --dir DIR       the daemon's folder (HVSIM_DIR; default: inherited, else libhvsim's default)\n"
    "  --log FILE      the interposer appends one line per vsock/hyperv socket() it handles and\n"
    "                  per refusal (FILE may be 'stderr')\n"
    "  --preload PATH  the interposer (default: ../lib/" PRELOAD_NAME " next to hvsim-run)\n"
    "  --supervise     serve the program's vsock calls from a supervisor (seccomp user\n"
    "                  notification) instead of LD_PRELOAD: for Go, static and raw-syscall programs\n"
    "                  (the default when PROGRAM is a Go program)\n"
    "  --interpose     the interposer (LD_PRELOAD) even for a Go program\n"
    "  --serve-family N  (tests) serve stand-in family N (64-255) as AF_VSOCK; 40 and 34 refused\n"
    "  --stats FILE    with --supervise: write 'syscall-number count' per served call at exit\n"
    "  --print-filters print the seccomp filters the program would get (with --supervise or\n"
    "                  --serve-family: the supervisor's), one BPF instruction a line, and exit\n"
    "  --version       print the version and exit\n"
    "  -h, --help      print this text and exit\n"
    "The environment is inherited by the program's children; the seccomp filter (socket and\n"
    "socketpair of AF_VSOCK/34: EAFNOSUPPORT; io_uring: ENOSYS) cannot be removed by them.\n"
    "Exit status: the program's, or 125 when hvsim-run could not set it up, 126/127 when the\n"
    "program cannot be executed / was not found.\n";

/* 1 when the file is a Go program (an ELF with a .go.buildinfo or
 * .note.go.buildid section): Go makes its system calls itself, so only the
 * supervisor reaches it. Anything unreadable or odd: 0. */
static int elf_is_go(const char *path)
{
    Elf64_Ehdr eh;
    Elf64_Shdr sh, str;
    char name[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC), go = 0;

    if (fd < 0)
        return 0;
    if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(sh) || eh.e_shstrndx >= eh.e_shnum ||
        pread(fd, &str, sizeof(str), (off_t)(eh.e_shoff + (uint64_t)eh.e_shstrndx * sizeof(sh))) != sizeof(str)) {
        close(fd);
        return 0;
    }
    for (unsigned i = 0; i < eh.e_shnum && i < 4096 && !go; i++) {
        if (pread(fd, &sh, sizeof(sh), (off_t)(eh.e_shoff + (uint64_t)i * sizeof(sh))) != sizeof(sh) ||
            sh.sh_name >= str.sh_size)
            break;
        memset(name, 0, sizeof(name));
        if (pread(fd, name, sizeof(name) - 1, (off_t)(str.sh_offset + sh.sh_name)) <= 0)
            break;
        go = strcmp(name, ".go.buildinfo") == 0 || strcmp(name, ".note.go.buildid") == 0;
    }
    close(fd);
    return go;
}

/* The program's file as execvp would find it, or NULL. */
static const char *find_program(const char *prog, char *out, size_t len)
{
    const char *path = getenv("PATH");

    if (strchr(prog, '/'))
        return prog;
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        size_t n = strcspn(p, ":");

        snprintf(out, len, "%.*s/%s", (int)n, n ? p : ".", prog);
        if (access(out, X_OK) == 0)
            return out;
        p += n + (p[n] == ':');
    }
    return NULL;
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;

    fputs("hvsim-run: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_LAUNCHER);
}

/* ../lib/libhvsim-preload.so relative to this executable, resolved. */
static void default_preload(char *out, size_t len)
{
    char self[PATH_MAX], guess[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    if (n < 0)
        die("cannot find where hvsim-run is (readlink /proc/self/exe: %s); pass --preload PATH", strerror(errno));
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(guess, sizeof(guess), "%s/../lib/%s", self, PRELOAD_NAME);
    if (realpath(guess, out) == NULL)
        die("the interposer is not at %s (%s): build it, or pass --preload PATH", guess, strerror(errno));
    (void)len;
}

/* LD_PRELOAD with ours first, keeping what the caller preloads already. */
static void set_preload(const char *lib)
{
    const char *old = getenv("LD_PRELOAD");
    char *v;

    if (old && *old) {
        if (strstr(old, lib) != NULL)
            return;
        if (asprintf(&v, "%s:%s", lib, old) < 0)
            die("out of memory");
    } else {
        v = strdup(lib);
        if (v == NULL)
            die("out of memory");
    }
    if (setenv("LD_PRELOAD", v, 1) != 0)
        die("setenv LD_PRELOAD: %s", strerror(errno));
    free(v);
}

/* --print-filters: what the mode installs, as the kernel gets it. */
static int print_filters(int supervise, int standin)
{
    const struct hvsim_filter_args wall = { .fam_a = AF_VSOCK, .fam_b = HVSIM_FILTER_AF_HYPERV };
    int rc;

    if (supervise) {
        rc = hvsim_sv_export_filters(standin, stdout);
    } else {
        printf("filter other-abi\n");
        rc = hvsim_filter_export(HVSIM_FILTER_ABI, &wall, stdout);
        if (rc == 0) {
            printf("filter errno\n");
            rc = hvsim_filter_export(HVSIM_FILTER_ERRNO, &wall, stdout);
        }
    }
    if (rc < 0)
        die("building the seccomp filters: %s", strerror(-rc));
    return fflush(stdout) == 0 ? 0 : EXIT_LAUNCHER;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "host", no_argument, NULL, 'H' },
        { "vm", required_argument, NULL, 'v' },
        { "dir", required_argument, NULL, 'd' },
        { "log", required_argument, NULL, 'l' },
        { "preload", required_argument, NULL, 'p' },
        { "supervise", no_argument, NULL, 'S' },
        { "interpose", no_argument, NULL, 'I' },
        { "serve-family", required_argument, NULL, 'F' },
        { "stats", required_argument, NULL, 's' },
        { "print-filters", no_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *partition = NULL, *dir = NULL, *log = NULL, *preload = NULL;
    char lib[PATH_MAX], why[256], *log_abs = NULL;
    struct hvsim_sv_opts sv = { 0 };
    int c, supervise = 0, interpose = 0, print = 0;

    /* '+': stop at the program's name, so its own options are left alone. */
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            if (partition && strcmp(partition, "host") != 0)
                die("--host and --vm %s both given: a process is one partition", partition);
            partition = "host";
            break;
        case 'v':
            if (partition)
                die("--vm %s and --%s both given: a process is one partition", optarg,
                    strcmp(partition, "host") == 0 ? "host" : "vm");
            if (optarg[0] == '\0' || strchr(optarg, '/') != NULL || strlen(optarg) >= 64)
                die("--vm '%s': a VM name is 1 to 63 characters without '/'", optarg);
            partition = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'l':
            log = optarg;
            break;
        case 'p':
            preload = optarg;
            break;
        case 'S':
            supervise = 1;
            break;
        case 'I':
            interpose = 1;
            break;
        case 'F': {
            char *end;
            long f = strtol(optarg, &end, 10);

            /* A stand-in is never a family the kernel knows (AF_MAX is below 64). */
            if (*end != '\0' || f < 64 || f > 255)
                die("--serve-family %s: a stand-in family is a number from 64 to 255", optarg);
            sv.standin = (int)f;
            break;
        }
        case 's':
            sv.stats = optarg;
            break;
        case 'P':
            print = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'V':
            return hvsim__cli_version("hvsim-run");
        default:
            fputs(usage_text, stderr);
            return EXIT_LAUNCHER;
        }
    }
    if (print)
        return print_filters(supervise || sv.standin, sv.standin);
    if (optind >= argc) {
        fputs(usage_text, stderr);
        die("no program to run");
    }
    if (partition == NULL) {
        partition = getenv("HVSIM_PARTITION");
        if (partition == NULL || *partition == '\0')
            die("say which partition the program is: --host or --vm NAME");
    }
    if (!supervise && !sv.standin && !interpose) {
        char found[PATH_MAX];
        const char *exe = find_program(argv[optind], found, sizeof(found));

        supervise = exe != NULL && elf_is_go(exe);
    }
    if (supervise || sv.standin) {
        if (setenv("HVSIM_PARTITION", partition, 1) != 0 || (dir && setenv("HVSIM_DIR", dir, 1) != 0))
            die("setenv: %s", strerror(errno));
        return hvsim_supervise(argv + optind, &sv);
    }
    if (preload) {
        if (realpath(preload, lib) == NULL)
            die("--preload %s: %s", preload, strerror(errno));
    } else {
        default_preload(lib, sizeof(lib));
    }
    if (access(lib, R_OK) != 0)
        die("the interposer %s cannot be read: %s", lib, strerror(errno));

    /* The log is opened by every process of the tree, wherever it chdir()s. */
    if (log && log[0] != '/' && strcmp(log, "stderr") != 0) {
        char cwd[PATH_MAX];

        if (getcwd(cwd, sizeof(cwd)) == NULL || asprintf(&log_abs, "%s/%s", cwd, log) < 0)
            die("--log %s: cannot make the path absolute: %s", log, strerror(errno));
        log = log_abs;
    }
    if (setenv("HVSIM_PARTITION", partition, 1) != 0 || (dir && setenv("HVSIM_DIR", dir, 1) != 0) ||
        (log && setenv("HVSIM_PRELOAD_LOG", log, 1) != 0))
        die("setenv: %s", strerror(errno));
    set_preload(lib);

    /* Last, so nothing above runs filtered; after this, only execvp. */
    if (hvsim_filter_install(why, sizeof(why)) != 0)
        die("%s; not running %s without it", why, argv[optind]);
    execvp(argv[optind], argv + optind);
    c = errno;
    fprintf(stderr, "hvsim-run: cannot run %s: %s\n", argv[optind], strerror(c));
    return c == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}
