/* SPDX-License-Identifier: MIT */
/*
 * hvsim_run.c: hvsim-run, the launcher that makes an unmodified program a
 * process of the emulated Hyper-V host.
 *
 *   hvsim-run --vm vm1 ./guest-agent        a Linux or Windows guest program of vm1
 *   hvsim-run --host ./host-service         a host program
 *
 * It sets the environment that attaches a process tree to a partition
 * (HVSIM_PARTITION, HVSIM_DIR) and puts the interposer (libhvsim-preload.so,
 * found next to the launcher as ../lib/) in LD_PRELOAD. Then, by mode:
 *
 *   default      the supervisor's filter stack for the whole tree (supervisor.c)
 *                with the interposer preloaded too: a dynamic program's
 *                vsock calls are served in-process by the interposer and
 *                never reach the filter's notify rules (its sockets are
 *                AF_UNIX at low fd numbers), while a Go or static program
 *                anywhere in the tree is served by the supervisor. Filters are
 *                inherited and cannot be removed, so only this stack serves a
 *                mixed tree (a script starting a Go agent).
 *   --interpose  the errno wall of vsock_filter.h and exec in place: same pid,
 *                same signals; the cheapest, for trees of dynamic programs only
 *                (a static or Go program gets EAFNOSUPPORT).
 *   --supervise  the supervisor alone, no interposer: every process is served
 *                through system calls.
 *
 * Both layers fail closed. The interposer turns AF_VSOCK and AF_HYPERV calls
 * into libhvsim's emulated sockets and never passes those families to the
 * kernel; a socket() of those families that reaches the kernel anyway is
 * notified to the supervisor (default) or refused with EAFNOSUPPORT
 * (--interpose). If the launcher cannot set up its layers it refuses to run
 * the program at all (exit 125).
 *
 * Reporting: the kernel cannot count what a RET_ERRNO filter refused, and a
 * trap-based audit would steal the program's SIGSYS, so the record of what
 * happened is kept where it is known: `--log FILE` makes the interposer append
 * one line per AF_VSOCK/AF_HYPERV socket() it handles (emulated, or refused
 * and why); `--stats FILE` counts what reached the supervisor. To show that
 * no kernel vsock socket was made, run `hvsim-run --interpose` under
 * `strace -f -e trace=socket,socketpair`: every socket(AF_VSOCK, ...) that
 * appears there failed with EAFNOSUPPORT (the default mode and --supervise
 * refuse to start under a tracer, which could turn the guard into "run it").
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
    "The default mode serves any process tree: the interposer (LD_PRELOAD) serves dynamic\n"
    "programs in-process and a supervisor (seccomp user notification) serves Go, static and\n"
    "raw-syscall programs, also as children of a script or of a dynamic parent.\n"
    "  --interpose     the interposer alone, exec'd in place under an errno wall: cheaper, for\n"
    "                  trees of dynamic programs only (Go and static programs get EAFNOSUPPORT)\n"
    "  --supervise     the supervisor alone, no LD_PRELOAD: every process served by system call\n"
    "  --serve-family N  (tests) serve stand-in family N (64-255) as AF_VSOCK; 40 and 34 refused\n"
    "  --stats FILE    write 'syscall-number count' per call that reached the supervisor at exit\n"
    "  --print-filters print the seccomp filters the mode installs, one BPF instruction a line,\n"
    "                  and exit\n"
    "  --version       print the version and exit\n"
    "  -h, --help      print this text and exit\n"
    "The environment and the seccomp filters are inherited by the program's children, which\n"
    "cannot remove them. The default mode and --supervise refuse to start under a tracer.\n"
    "Exit status: the program's, or 125 when hvsim-run could not set it up, 126/127 when the\n"
    "program cannot be executed / was not found.\n";

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

/*
 * The machine's /dev/vsock is never opened on behalf of the program (it
 * answers IOCTL_VM_SOCKETS_GET_LOCAL_CID, which the interposer and the
 * supervisor answer by request number, whatever the fd). The tree runs in a
 * private mount namespace (mounts of the machine still reach it: slave
 * propagation; its own do not leave it) where /dev/vsock is a bind mount of
 * /dev/null, so Go's vsock.ContextID() and vsock.Listen() open /dev/null and
 * get the emulated CID. That takes CAP_SYS_ADMIN. Without it, a device this
 * user could open makes the launcher refuse to run (an unprivileged user
 * namespace would show the program other owners and capabilities); a device
 * it cannot open is left alone: the open fails as it would without hvsim.
 * No device: nothing to hide (ENOENT, as on a machine without one).
 */
static void hide_dev_vsock(void)
{
    struct stat st, null;

    if (lstat("/dev/vsock", &st) != 0)
        return;
    if (unshare(CLONE_NEWNS) != 0) {
        int e = errno;

        if (access("/dev/vsock", R_OK) != 0 && access("/dev/vsock", W_OK) != 0)
            return;
        die("cannot hide the machine's /dev/vsock from the program (unshare(CLONE_NEWNS): %s; it takes "
            "CAP_SYS_ADMIN), and this user may open it: refusing to run",
            strerror(e));
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0)
        die("cannot make the private mount namespace a slave of the machine's: %s", strerror(errno));
    if (mount("/dev/null", "/dev/vsock", NULL, MS_BIND, NULL) != 0)
        die("cannot put /dev/null over /dev/vsock: %s", strerror(errno));
    /* Trust nothing: the path must now be /dev/null. */
    if (stat("/dev/null", &null) != 0 || stat("/dev/vsock", &st) != 0 || st.st_rdev != null.st_rdev ||
        !S_ISCHR(st.st_mode))
        die("/dev/vsock is still not /dev/null after the bind mount: refusing to run");
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
    if (interpose && (supervise || sv.standin))
        die("--interpose and --%s both given: a tree has one mode (filters cannot be removed)",
            supervise ? "supervise" : "serve-family");
    if (interpose && sv.stats)
        die("--stats counts the supervisor's calls; --interpose has no supervisor");
    if (supervise && log)
        die("--log is the interposer's record; --supervise runs without the interposer");
    if (print)
        return print_filters(!interpose, sv.standin);
    if (optind >= argc) {
        fputs(usage_text, stderr);
        die("no program to run");
    }
    if (partition == NULL) {
        partition = getenv("HVSIM_PARTITION");
        if (partition == NULL || *partition == '\0')
            die("say which partition the program is: --host or --vm NAME");
    }
    hide_dev_vsock();
    if (supervise) {
        /* The supervisor alone: the interposer is not added (an LD_PRELOAD
         * of the caller's own is left as it is). */
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
    if (!interpose) {
        /* The interposer keeps its own sockets below the supervisor's
         * floor, so a dynamic program's calls never wait for the supervisor. */
        char floor[16];

        snprintf(floor, sizeof(floor), "%d", HVSIM_SV_FD_FLOOR);
        if (setenv("HVSIM_SV_FD_FLOOR", floor, 1) != 0)
            die("setenv: %s", strerror(errno));
        return hvsim_supervise(argv + optind, &sv);
    }

    /* Last, so nothing above runs filtered; after this, only execvp. */
    if (hvsim_filter_install(why, sizeof(why)) != 0)
        die("%s; not running %s without it", why, argv[optind]);
    execvp(argv[optind], argv + optind);
    c = errno;
    fprintf(stderr, "hvsim-run: cannot run %s: %s\n", argv[optind], strerror(c));
    return c == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}
