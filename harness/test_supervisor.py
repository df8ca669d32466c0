# SPDX-License-Identifier: MIT
"""hvsim-run --supervise: programs that bypass libc (here static C programs
making their socket calls through glibc's syscall wrappers) served by the
seccomp user-notification supervisor (sim/preload/supervisor.c).

SAFETY: this machine's AF_VSOCK belongs to its infrastructure. Every test
here serves a STAND-IN family (250) with --serve-family, under which the
launcher first installs the errno guard of vsock_filter.h (socket and
socketpair of 40 and 34: EAFNOSUPPORT) on the supervisor and the program both,
so a mistake in the supervisor can never reach the device: an ERRNO action
outranks USER_NOTIF whatever the order of the filters. The programs check
that 40 and 34 are refused.

Run with: /usr/bin/python3 -m pytest harness/test_supervisor.py
"""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

import qemu

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HVSIM_BIN") or REPO / "build" / "bin")
TIMEOUT = 30
MIB = 1024 * 1024
STANDIN = 250
NR = {"read": 0, "write": 1, "close": 3, "socket": 41, "connect": 42, "accept": 43, "shutdown": 48,
      "bind": 49, "listen": 50, "getsockname": 51, "getpeername": 52, "getsockopt": 55}

PROG = r'''
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int fam, s;
static const char *en(int r) { return r < 0 ? strerrorname_np(errno) : "OK"; }
static void *up(void *a)
{
    char b[65536];
    ssize_t n;
    (void)a;
    while ((n = read(0, b, sizeof b)) > 0)
        for (ssize_t o = 0; o < n;) {
            ssize_t w = write(s, b + o, n - o);
            if (w <= 0) { perror("write"); exit(3); }
            o += w;
        }
    if (shutdown(s, SHUT_WR) < 0) { perror("shutdown"); exit(3); }
    return NULL;
}
static void on_alarm(int sig)
{
    (void)sig;
    if (write(2, "signal\n", 7) != 7)
        _exit(4);
}
/* A signal arrives during the blocking accept: with SA_RESTART the accept
 * goes on (a new notification), without it the accept fails with EINTR and
 * is called again. Either way the connection that comes later is not lost. */
static void arm(int restart)
{
    struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = restart ? SA_RESTART : 0 };
    struct itimerval it = { .it_value = { 0, 200000 } };
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
}
static void addr(struct sockaddr_vm *a, unsigned cid, unsigned port)
{
    memset(a, 0, sizeof *a);
    a->svm_family = fam;
    a->svm_cid = cid;
    a->svm_port = port;
}
static int probe(int die)
{
    int sv[2], d = 0, r;
    socklen_t dl = sizeof d;

    r = (int)syscall(SYS_socket, 40, SOCK_STREAM, 0);
    printf("socket40 %s\n", en(r));
    r = (int)syscall(SYS_socket, 34, SOCK_STREAM, 1);
    printf("socket34 %s\n", en(r));
    printf("socketpair %s\n", en(socketpair(fam, SOCK_STREAM, 0, sv)));
    printf("x32 getpid %s\n", en((int)syscall(0x40000000 | 39)));
    printf("io_uring_setup %s\n", en((int)syscall(425, 1, NULL)));
    r = socket(fam, SOCK_STREAM, 0);
    printf("served %s %s\n", en(r), r >= 768 ? "high" : "low");
    if (r >= 0 && getsockopt(r, SOL_SOCKET, SO_DOMAIN, &d, &dl) == 0)
        printf("domain %d\n", d);
    for (int i = 0; i < 100; i++) {
        int t = socket(AF_INET, SOCK_STREAM, 0), p[2];
        char c = 'x';
        if (t < 0 || t >= 768 || pipe(p) < 0 || write(p[1], &c, 1) != 1 || read(p[0], &c, 1) != 1) {
            printf("plain calls BAD\n");
            return 1;
        }
        close(t); close(p[0]); close(p[1]);
    }
    printf("plain calls OK\n");
    if (die) {
        fflush(stdout);
        kill(getppid(), SIGKILL);
        while (getppid() != 1 && kill(getppid(), 0) == 0)
            usleep(10000);
        usleep(100000);
        r = socket(fam, SOCK_STREAM, 0);
        printf("after-death %s\n", en(r));
    }
    fflush(stdout);
    return 0;
}
int main(int argc, char **argv)
{
    struct sockaddr_vm a, b, me;
    socklen_t l = sizeof b, ml = sizeof me;
    char buf[65536];
    ssize_t n;
    pthread_t t;

    fam = atoi(argv[1]);
    if (strcmp(argv[2], "probe") == 0)
        return probe(argc > 3);
    s = socket(fam, SOCK_STREAM, 0);
    if (s < 0) { perror("socket"); return 2; }
    if (strcmp(argv[2], "listen") == 0) {
        int c;
        addr(&a, VMADDR_CID_ANY, atoi(argv[3]));
        if (bind(s, (void *)&a, sizeof a) < 0) { perror("bind"); return 2; }
        if (listen(s, 4) < 0) { perror("listen"); return 2; }
        fprintf(stderr, "listening\n");
        if (argc > 4) {
            arm(atoi(argv[4]));
            if (!atoi(argv[4])) {
                c = accept(s, (void *)&b, &l);
                fprintf(stderr, "first accept %s\n", en(c));
            }
        }
        c = accept(s, (void *)&b, &l);
        if (c < 0) { perror("accept"); return 2; }
        close(s);
        s = c;
    } else if (strcmp(argv[2], "intr") == 0) {
        /* A signal during a blocking connect nobody answers yet: EINTR, with
         * or without SA_RESTART (vsock_connect's wait has a time-out), and
         * the socket stays unconnected: once the test says a listener is
         * there (a line on stdin), a second connect on it succeeds. */
        char line[8];
        int r;
        addr(&a, atoi(argv[3]), atoi(argv[4]));
        arm(atoi(argv[5]));
        r = connect(s, (void *)&a, sizeof a);
        fprintf(stderr, "first connect %s\n", en(r));
        if (fgets(line, sizeof line, stdin) == NULL) return 2;
        r = connect(s, (void *)&a, sizeof a);
        fprintf(stderr, "second connect %s\n", en(r));
        if (r < 0) return 2;
        if (getpeername(s, (void *)&b, &l) < 0) { perror("getpeername"); return 2; }
    } else {
        addr(&a, atoi(argv[3]), atoi(argv[4]));
        if (connect(s, (void *)&a, sizeof a) < 0) { perror("connect"); return 2; }
        if (getpeername(s, (void *)&b, &l) < 0) { perror("getpeername"); return 2; }
    }
    if (getsockname(s, (void *)&me, &ml) < 0) { perror("getsockname"); return 2; }
    fprintf(stderr, "peer %d %u %u local %u\n", b.svm_family, b.svm_cid, b.svm_port, me.svm_port);
    pthread_create(&t, NULL, up, NULL);
    while ((n = read(s, buf, sizeof buf)) > 0)
        if (write(1, buf, n) != n) return 3;
    if (n < 0) { perror("read"); return 3; }
    pthread_join(t, NULL);
    close(s);
    return 0;
}
'''


def tool(name):
    path = BIN / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: build it first (make all)")
    return str(path)


def clean_env():
    e = dict(os.environ)
    for k in ("HVSIM_DIR", "HVSIM_PARTITION", "LD_PRELOAD", "HVSIM_PRELOAD_LOG"):
        e.pop(k, None)
    return e


@pytest.fixture(scope="module")
def prog():
    d = Path(tempfile.mkdtemp(prefix="hvsim-sv-", dir="/tmp"))
    (d / "sv_prog.c").write_text(PROG)
    exe = d / "sv_prog"
    r = subprocess.run(["gcc", "-static", "-std=c11", "-D_GNU_SOURCE", "-O1", "-Wall", "-pthread", "-o", str(exe),
                        str(d / "sv_prog.c")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    yield str(exe)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemon():
    d = qemu.Daemon(tempfile.mkdtemp(prefix="hvsim-sv-", dir="/tmp"), tool("hvsimd"))
    d.start()
    for args in (["vm", "add", "vm1"], ["service", "add", "5000", "sv"]):
        r = subprocess.run([tool("hvsimctl"), "--dir", d.dir] + args, capture_output=True, text=True,
                           timeout=TIMEOUT, env=clean_env())
        assert r.returncode == 0, r.stderr
    yield d
    d.stop(TIMEOUT)
    shutil.rmtree(d.dir, ignore_errors=True)


def run_sv(d, partition, argv, stats=None):
    where = ["--host"] if partition == "host" else ["--vm", partition]
    extra = ["--stats", str(stats)] if stats else []
    return [tool("hvsim-run")] + where + ["--dir", d, "--serve-family", str(STANDIN)] + extra + ["--"] + argv


def counts(path):
    out = {}
    for line in Path(path).read_text().split("\n"):
        if line:
            nr, n = line.split()
            out[int(nr)] = int(n)
    return out


def test_standin_fail_closed_and_counters(daemon, prog, tmp_path):
    """40 and 34 refused, socketpair refused as the kernel does, x32 and
    io_uring ENOSYS (the libseccomp-built filters, live), the stand-in
    served at a high fd with SO_DOMAIN its own; 100 AF_INET sockets, pipe
    reads and writes and closes never reach the supervisor."""
    st = tmp_path / "stats"
    r = subprocess.run(run_sv(daemon.dir, "vm1", [prog, str(STANDIN), "probe"], st), capture_output=True,
                       text=True, timeout=TIMEOUT, env=clean_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:8] == ["socket40 EAFNOSUPPORT", "socket34 EAFNOSUPPORT", "socketpair EOPNOTSUPP",
                                        "x32 getpid ENOSYS", "io_uring_setup ENOSYS", "served OK high",
                                        f"domain {STANDIN}", "plain calls OK"], r.stdout
    assert counts(st) == {NR["socket"]: 1, NR["getsockopt"]: 1}


def test_supervisor_death_fails_closed(daemon, prog):
    """The program kills its supervisor: its next socket() of the served
    family fails (ENOSYS), it never reaches the kernel."""
    p = subprocess.Popen(run_sv(daemon.dir, "vm1", [prog, str(STANDIN), "probe", "die"]), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=clean_env())
    out, err = p.communicate(timeout=TIMEOUT)
    assert p.returncode == -9
    assert "after-death ENOSYS" in out, (out, err)


def test_refuses_to_serve_under_a_tracer(prog):
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (make test-deps)")
    r = subprocess.run(["strace", "-f", "-o", "/dev/null", tool("hvsim-run"), "--vm", "vm1", "--serve-family",
                        str(STANDIN), "--", prog, str(STANDIN), "probe"], capture_output=True, text=True,
                       timeout=TIMEOUT, env=dict(clean_env(), ASAN_OPTIONS="detect_leaks=0"))
    # (A sanitizer build's leak check cannot run under ptrace and would turn
    # the refusal's exit status into its own: it is switched off here.)
    assert r.returncode == 125 and "tracer" in r.stderr, r.stderr


def pump(procs_inputs):
    res = [None] * len(procs_inputs)

    def one(i, p, data):
        res[i] = p.communicate(data, timeout=TIMEOUT)

    ts = [threading.Thread(target=one, args=(i, p, d)) for i, (p, d) in enumerate(procs_inputs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return res


def test_static_guest_and_host_one_mib_each_way(daemon, prog, tmp_path):
    """A static guest of vm1 connects to CID 2 port 5000 where a static host
    program listens, both served by supervisors: 1 MiB checksummed each way,
    half-close giving EOF, and the data path never intercepted."""
    a, b = os.urandom(MIB), os.urandom(MIB)
    hst, gst = tmp_path / "host.stats", tmp_path / "guest.stats"
    host = subprocess.Popen(run_sv(daemon.dir, "host", [prog, str(STANDIN), "listen", "5000"], hst),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    assert host.stderr.readline() == b"listening\n"
    guest = subprocess.Popen(run_sv(daemon.dir, "vm1", [prog, str(STANDIN), "connect", "2", "5000"], gst),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    (hout, herr), (gout, gerr) = pump([(host, a), (guest, b)])
    assert host.returncode == 0 and guest.returncode == 0, (herr, gerr)
    assert hashlib.sha256(hout).digest() == hashlib.sha256(b).digest()
    assert hashlib.sha256(gout).digest() == hashlib.sha256(a).digest()
    assert gerr.decode().startswith(f"peer {STANDIN} 2 5000"), gerr
    assert herr.decode().startswith(f"peer {STANDIN} "), herr
    for st in (hst, gst):
        c = counts(st)
        assert NR["read"] not in c and NR["write"] not in c, c
        assert c[NR["socket"]] == 1


# ---- family 40 itself (after the stand-in tests above prove the mechanism) -----------------
# The program's filter stack can only notify or fail for socket(40/34): the
# notify filter sends them to the supervisor, whose handler has no CONTINUE
# path, and the TRACE guard under it gives ENOSYS if they ever got past
# (hvsim-run refuses to start under a tracer).


def plain(d, partition, argv):
    e = clean_env()
    e["HVSIM_DIR"] = d
    e["HVSIM_PARTITION"] = partition
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)


def supervised(d, partition, argv, stats=None, mode=("--supervise",)):
    where = ["--host"] if partition == "host" else ["--vm", partition]
    extra = ["--stats", str(stats)] if stats else []
    return subprocess.Popen([tool("hvsim-run")] + where + ["--dir", d] + list(mode) + extra + ["--"] + argv,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=clean_env())


def wait_listener(d):
    """Until the daemon lists a listener (bounded; no sleeps)."""
    for _ in range(3000):
        r = subprocess.run([tool("hvsimctl"), "--dir", d, "--json", "status"], capture_output=True, text=True,
                           timeout=TIMEOUT, env=clean_env())
        if r.returncode == 0 and json.loads(r.stdout)["listeners"]:
            return
    pytest.fail("the listener never showed up")


def check_exchange(host, guest, a, b):
    (hout, herr), (gout, gerr) = pump([(host, a), (guest, b)])
    assert host.returncode == 0 and guest.returncode == 0, (herr, gerr)
    assert hashlib.sha256(hout).digest() == hashlib.sha256(b).digest()
    assert hashlib.sha256(gout).digest() == hashlib.sha256(a).digest()


def test_static_guest_af_vsock_to_libhvsim_host(daemon, prog, tmp_path):
    """A static guest of vm1: socket(AF_VSOCK)/connect to CID 2 port 5000,
    served by the supervisor, with hvcat (libhvsim) listening on the host."""
    a, b = os.urandom(MIB), os.urandom(MIB)
    st = tmp_path / "stats"
    host = plain(daemon.dir, "host", [tool("hvcat"), "--vsock", "-l", "5000"])
    wait_listener(daemon.dir)
    guest = supervised(daemon.dir, "vm1", [prog, "40", "connect", "2", "5000"], st)
    check_exchange(host, guest, a, b)
    c = counts(st)
    assert NR["read"] not in c and NR["write"] not in c and c[NR["socket"]] == 1, c


def test_static_host_listener_af_vsock_from_libhvsim_guest(daemon, prog):
    """A static host listener served the same way; hvcat --vsock as the guest."""
    a, b = os.urandom(MIB), os.urandom(MIB)
    host = supervised(daemon.dir, "host", [prog, "40", "listen", "5000"])
    assert host.stderr.readline() == b"listening\n"
    guest = plain(daemon.dir, "vm1", [tool("hvcat"), "--vsock", "2:5000"])
    check_exchange(host, guest, a, b)


# ---- Go: github.com/mdlayher/vsock (Debian's golang-github-mdlayher-vsock-dev) -------------
# Built in GOPATH mode (no module download) in the build folder. vsock.Listen
# and ContextID open /dev/vsock: hvsim-run gives the program /dev/null there.


@pytest.fixture(scope="module")
def govsock():
    if shutil.which("go") is None or not Path("/usr/share/gocode/src/github.com/mdlayher/vsock").is_dir():
        pytest.skip("golang-go and golang-github-mdlayher-vsock-dev are not installed (make test-deps)")
    root = BIN.parent / "go"
    src = root / "src" / "govsock"
    src.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "harness" / "data" / "govsock.go", src / "main.go")
    exe = root / "govsock"
    env = clean_env()
    env.update(GO111MODULE="off", GOPATH=f"{root}:/usr/share/gocode", GOCACHE=str(root / "cache"), GOFLAGS="")
    r = subprocess.run(["go", "build", "-o", str(exe), "govsock"], capture_output=True, text=True, timeout=300,
                       env=env)
    assert r.returncode == 0, r.stderr
    return str(exe)


def vm_cid(d, name="vm1"):
    r = subprocess.run([tool("hvsimctl"), "--dir", d, "--json", "vm", "list"], capture_output=True, text=True,
                       timeout=TIMEOUT, env=clean_env())
    return next(v["cid"] for v in json.loads(r.stdout) if v["name"] == name)


def go_pair(exe, d, lpart, lcid, port, dpart, dcid, gostats, mode=("--supervise",)):
    """A Go listener and a Go dialer, both supervised: an accept deadline and
    a read deadline that must time out, the data each way (the dialer sends,
    half-closes, the listener reads to EOF and answers), close giving EOF.
    64 MiB checksummed each way."""
    a, b = os.urandom(64 * MIB), os.urandom(64 * MIB)
    lst, dst = gostats / "l.stats", gostats / "d.stats"
    lis = supervised(d, lpart, [exe, "listen", str(lcid), str(port)], lst, mode)
    line = lis.stderr.readline()
    assert line.startswith(b"listening"), line + lis.stderr.read()
    dial = supervised(d, dpart, [exe, "dial", str(dcid), str(port)], dst, mode)
    check_exchange(lis, dial, a, b)
    for st in (lst, dst):
        c = counts(st)
        # The data never reaches the supervisor. How many sockets a Go program
        # opens is the Go runtime's business (mdlayher/socket tries again with
        # other flags when a first try fails on a loaded machine): one or more.
        assert NR["read"] not in c and NR["write"] not in c and c.get(NR["socket"], 0) >= 1, c



def go_dial_echo(d, govsock, port, size=64 * 1024):
    """vm1's Go agent (mdlayher/vsock, supervised) dials the host's port, sends
    SIZE random bytes, half-closes and must read them all back (the agent reads
    only after it has sent everything, so SIZE stays within the two streams'
    buffers, or an echo server would wait for it)."""
    data = os.urandom(size)
    dial = supervised(d, "vm1", [govsock, "dial", "2", str(port)])
    out, err = dial.communicate(data, timeout=TIMEOUT)
    assert dial.returncode == 0, err
    assert hashlib.sha256(out).digest() == hashlib.sha256(data).digest(), f"{len(out)} of {len(data)} bytes back"


def ctl(d, *args):
    r = subprocess.run([tool("hvsimctl"), "--dir", d] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=TIMEOUT, env=clean_env())
    assert r.returncode == 0, r.stderr


def test_go_guest_agent_with_c_host_service_on_libhvsim(daemon, govsock):
    """Interoperation: a Go guest agent and Microsoft's host service sample in C
    (examples/host-service.c on libhvsim, AF_HYPERV on the port's service GUID)."""
    ctl(daemon.dir, "service", "add", 5010, "host-service")
    host = plain(daemon.dir, "host", [tool("host-service"), "00001392-facb-11e6-bd58-64006a7986d3"])
    wait_listener(daemon.dir)
    go_dial_echo(daemon.dir, govsock, 5010)
    host.communicate(timeout=TIMEOUT)
    assert host.returncode == 0


def test_go_guest_agent_with_socat_under_the_interposer(daemon, govsock):
    """Interoperation: the Go agent and Debian's socat (VSOCK-LISTEN, echoing
    with cat) on the host under hvsim-run --interpose."""
    ctl(daemon.dir, "service", "add", 5011, "socat")
    host = subprocess.Popen([tool("hvsim-run"), "--host", "--dir", daemon.dir, "--interpose", "--", "socat",
                             "VSOCK-LISTEN:5011", "SYSTEM:cat"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
    try:
        wait_listener(daemon.dir)
        go_dial_echo(daemon.dir, govsock, 5011)
        host.wait(timeout=TIMEOUT)
        assert host.returncode == 0, host.stderr.read()
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()


@pytest.mark.parametrize("profile,words", [("hyperv", "connection timed out"), ("kvm", "connection reset by peer")])
def test_go_guest_refusals_of_both_profiles(daemon, govsock, profile, words):
    """A registered port nobody listens on: the Hyper-V profile withholds the
    refusal (the hv_sock guest times out), the KVM profile resets; Go reports
    each errno in its own words. (Another VM's CID is not tried here: the
    mdlayher/socket in Debian 12 drops an error that connect returns at once,
    ENETUNREACH included, and reports the dial as made, on a real kernel too;
    the static C programs and the interposer's tests check that refusal.)"""
    ctl(daemon.dir, "service", "add", 5012, "nobody")
    ctl(daemon.dir, "set", "refusal_profile", profile)
    dial = supervised(daemon.dir, "vm1", [govsock, "dial", "2", "5012"])
    out, err = dial.communicate(b"", timeout=TIMEOUT)
    assert dial.returncode != 0 and words in err.decode(), err


def test_go_guest_dialer_to_go_host_listener(daemon, govsock, tmp_path):
    go_pair(govsock, daemon.dir, "host", 2, 5000, "vm1", 2, tmp_path)


def test_go_guest_listener_reached_from_host_by_cid(daemon, govsock, tmp_path):
    # An hv_sock guest's own CID is VMADDR_CID_ANY (what vsock.Listen's
    # ContextID() gets there): the guest listens on it; the host dials the VM's CID.
    go_pair(govsock, daemon.dir, "vm1", 0xFFFFFFFF, 6000, "host", vm_cid(daemon.dir), tmp_path)


@pytest.mark.skipif(not os.path.exists("/dev/vsock"), reason="no /dev/vsock on this machine: nothing to hide")
@pytest.mark.parametrize("mode", [(), ("--interpose",)])
def test_dev_vsock_is_dev_null_in_the_tree_and_refused_without_the_capability(daemon, mode):
    """The tree's /dev/vsock is /dev/null (stat in the program, no open).
    Without CAP_SYS_ADMIN, a caller that could open the device (root) is
    refused before anything runs; one that could not (nobody) runs."""
    null = os.stat("/dev/null").st_rdev
    want = f"{os.major(null):x}:{os.minor(null):x}"
    argv = [tool("hvsim-run"), "--host", "--dir", daemon.dir] + list(mode) + ["--", "stat", "-c", "%t:%T",
                                                                              "/dev/vsock"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, env=clean_env())
    assert r.returncode == 0 and r.stdout.strip() == want, r.stdout + r.stderr
    if os.geteuid() != 0:
        return
    drop = ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin"]
    r = subprocess.run(drop + argv, capture_output=True, text=True, timeout=TIMEOUT, env=clean_env())
    assert r.returncode == 125 and "refusing to run" in r.stderr and r.stdout == "", r.stdout + r.stderr
    dev = os.stat("/dev/vsock")
    if dev.st_mode & 0o006 == 0:  # others may not open it: nobody is let through
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + argv,
                           capture_output=True, text=True, timeout=TIMEOUT, env=clean_env())
        assert r.returncode == 0 and r.stdout.strip() == f"{os.major(dev.st_rdev):x}:{os.minor(dev.st_rdev):x}", \
            r.stdout + r.stderr


@pytest.mark.parametrize("part,mode", [("host", ()), ("vm1", ()), ("vm1", ("--supervise",))])
def test_go_listen_and_context_id_get_dev_null_not_the_device(daemon, govsock, part, mode):
    """vsock.ContextID() and vsock.Listen() open /dev/vsock: under hvsim-run
    the program gets /dev/null there (a private mount namespace), and the
    supervisor answers IOCTL_VM_SOCKETS_GET_LOCAL_CID on it with the
    partition's CID. The machine's device is only stat()ed here, never
    opened: the fd the program got must not be that device."""
    dev = os.stat("/dev/vsock").st_rdev if os.path.exists("/dev/vsock") else None
    port = 5000 if part == "host" else 6000
    lis = supervised(daemon.dir, part, [govsock, "devcid", "0", str(port)], mode=mode)
    line = lis.stderr.readline().decode()
    assert line.startswith("cid "), line + lis.stderr.read().decode()
    f = line.split()
    assert int(f[1]) == (2 if part == "host" else 0xFFFFFFFF), line
    assert int(f[3]) == os.stat("/dev/null").st_rdev and int(f[3]) != dev, line
    if part == "host":
        peer = plain(daemon.dir, "vm1", [tool("hvcat"), "--vsock", f"2:{port}"])
    else:
        peer = plain(daemon.dir, "host", [tool("hvcat"), "--vsock", f"{vm_cid(daemon.dir)}:{port}"])
    (_lout, lerr), (pout, perr) = pump([(lis, b"hello"), (peer, b"")])
    assert lis.returncode == 0 and peer.returncode == 0, (lerr, perr)
    assert pout == b"hello"


@pytest.mark.parametrize("restart", [0, 1])
def test_signal_during_blocking_accept(daemon, prog, restart):
    """SIGALRM during a blocking accept: EINTR without SA_RESTART, a restart
    with it; the worker serving the interrupted call takes no connection, so
    the connector that comes afterwards is accepted and exchanges its data."""
    a, b = os.urandom(64 * 1024), os.urandom(64 * 1024)
    host = supervised(daemon.dir, "host", [prog, "40", "listen", "5000", str(restart)])
    assert host.stderr.readline() == b"listening\n"
    assert host.stderr.readline() == b"signal\n"
    if not restart:
        assert host.stderr.readline() == b"first accept EINTR\n"
    guest = plain(daemon.dir, "vm1", [tool("hvcat"), "--vsock", "2:5000"])
    check_exchange(host, guest, a, b)


@pytest.mark.parametrize("restart", [0, 1])
def test_signal_during_blocking_connect(daemon, prog, restart):
    """SIGALRM during a host's blocking connect to a vm1 port nobody listens
    on yet (the daemon keeps it waiting for a listener): EINTR with and
    without SA_RESTART, as vsock_connect() answers (its wait has a time-out,
    so sock_intr_errno() gives EINTR, never a restart). The supervisor
    withdraws the connect its worker was waiting in: the socket stays
    unconnected and no listener that shows up later gets it, so the second
    connect on the same socket reaches the listener and exchanges data."""
    a, b = os.urandom(64 * 1024), os.urandom(64 * 1024)
    host = supervised(daemon.dir, "host", [prog, "40", "intr", str(vm_cid(daemon.dir)), "7000", str(restart)])
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(host.stderr.readline() for _ in range(2)), daemon=True)
    reader.start()
    reader.join(TIMEOUT)
    if reader.is_alive():
        host.kill()
        pytest.fail(f"the connect was not interrupted: {lines}")
    assert lines == [b"signal\n", b"first connect EINTR\n"], lines
    guest = plain(daemon.dir, "vm1", [tool("hvcat"), "--vsock", "-l", "7000"])
    wait_listener(daemon.dir)
    host.stdin.write(b"go\n")
    host.stdin.flush()
    assert host.stderr.readline() == b"second connect OK\n"
    check_exchange(guest, host, b, a)


def test_go_program_takes_the_supervisor_by_default(daemon, govsock, tmp_path):
    """Plain `hvsim-run --vm vm1 GO-PROGRAM` (no mode given) serves a Go
    program: hvsim-run recognises it by its .go.buildinfo section. With
    --interpose it fails as before (Go never calls libc's socket)."""
    go_pair(govsock, daemon.dir, "host", 2, 5000, "vm1", 2, tmp_path, mode=[])
    r = subprocess.run([tool("hvsim-run"), "--vm", "vm1", "--dir", daemon.dir, "--interpose", "--", govsock, "dial",
                        "2", "5000"], capture_output=True, text=True, timeout=TIMEOUT, env=clean_env())
    assert r.returncode == 2 and "address family not supported" in r.stderr, r.stderr


# ---- copies, queue ioctls, socket options, fork and exec ---------------------------------------
FEAT = r'''
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <linux/vm_sockets.h>

static const char *en(int r) { return r < 0 ? strerrorname_np(errno) : "OK"; }
static int fam_of(int fd)
{
    struct sockaddr_vm a = { 0 };
    socklen_t l = sizeof a;
    return getpeername(fd, (void *)&a, &l) < 0 ? -errno : a.svm_family;
}
int main(int argc, char **argv)
{
    int fam = atoi(argv[1]), s, d, f, v = -1, t = -1, p = -1, r;
    socklen_t l = sizeof v;
    struct sockaddr_vm a = { .svm_family = fam, .svm_cid = 2, .svm_port = 5000 };
    struct pollfd pf;
    char c;

    if (strcmp(argv[2], "forkhold") == 0) {   /* the parent closes first, the child holds on */
        int pp[2];
        s = socket(fam, SOCK_STREAM, 0);
        if (s < 0 || connect(s, (void *)&a, sizeof a) < 0 || pipe(pp) < 0) { perror("connect"); return 2; }
        if (fork() == 0) {
            close(pp[1]);
            if (read(pp[0], &c, 1) != 0) return 3;   /* EOF: the parent has closed */
            printf("child after the parent's close family %d\n", fam_of(s));
            return 0;
        }
        close(pp[0]);
        close(s);
        close(pp[1]);
        wait(NULL);
        return 0;
    }
    if (strcmp(argv[2], "child") == 0) {      /* exec'd by the parent below */
        s = atoi(argv[3]);
        printf("child inherited %d family %d\n", s >= 768, fam_of(s));
        r = socket(fam, SOCK_STREAM, 0);
        printf("child socket %s %s\n", en(r), r >= 768 ? "high" : "low");
        return 0;
    }
    s = socket(fam, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (void *)&a, sizeof a) < 0) { perror("connect"); return 2; }
    d = dup(s);
    f = fcntl(s, F_DUPFD_CLOEXEC, 900);
    printf("dup %s %s\n", en(d), d >= 768 ? "high" : "low");
    printf("dupfd %s %d cloexec %d\n", en(f), f >= 900, f >= 0 && (fcntl(f, F_GETFD) & FD_CLOEXEC) != 0);
    printf("dup family %d\n", fam_of(d));
    close(d);
    close(f);
    printf("after closing the copies family %d\n", fam_of(s));
    getsockopt(s, SOL_SOCKET, SO_TYPE, &t, &l);
    l = sizeof p;
    getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &p, &l);
    printf("type %d protocol %d\n", t, p);
    pf = (struct pollfd){ .fd = s, .events = POLLIN };
    if (poll(&pf, 1, 10000) != 1) { printf("no data\n"); return 2; }
    r = ioctl(s, SIOCINQ, &v);
    printf("inq %s %d\n", en(r), r < 0 ? -1 : v);
    v = -1;
    r = ioctl(s, SIOCOUTQ, &v);
    printf("outq %s %d\n", en(r), r < 0 ? -1 : v);
    fflush(stdout);
    if (fork() == 0) {
        char fd[16];
        snprintf(fd, sizeof fd, "%d", s);
        execl("/proc/self/exe", argv[0], argv[1], "child", fd, (char *)NULL);
        _exit(3);
    }
    wait(NULL);
    while (read(s, &c, 1) > 0)
        ;
    return 0;
}
'''


@pytest.fixture(scope="module")
def feat(tmp_path_factory):
    d = tmp_path_factory.mktemp("feat")
    (d / "feat.c").write_text(FEAT)
    exe = d / "feat"
    r = subprocess.run(["gcc", "-static", "-std=c11", "-D_GNU_SOURCE", "-O1", "-Wall", "-o", str(exe),
                        str(d / "feat.c")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return str(exe)


@pytest.mark.parametrize("vm,inq,outq", [
    (["--transport", "virtio", "--kernel", "newest"], "OK 5", "OK 0"),
    ([], "EOPNOTSUPP -1", "EOPNOTSUPP -1"),  # hv_sock on 6.1 (the default): no ioctl at all
])
def test_copies_queue_ioctls_options_and_exec(daemon, feat, tmp_path, vm, inq, outq):
    """A static guest under the supervisor: dup and F_DUPFD_CLOEXEC give
    served numbers (>= 768, the second >= 900 and close-on-exec) that answer
    as the emulated family; closing the copies leaves the original served;
    SO_TYPE/SO_PROTOCOL as a vsock stream's; SIOCINQ/SIOCOUTQ as the VM's
    transport and kernel answer them (an AF_UNIX socket would say 5 and 0 on
    every VM); a forked and exec'd child still has its inherited socket
    served and its own socket() served."""
    r = subprocess.run([tool("hvsimctl"), "--dir", daemon.dir, "vm", "add", "vmx"] + vm, capture_output=True,
                       text=True, timeout=TIMEOUT, env=clean_env())
    assert r.returncode == 0, r.stderr
    host = plain(daemon.dir, "host", [tool("hvcat"), "--vsock", "-l", "5000"])
    wait_listener(daemon.dir)
    st = tmp_path / "stats"
    guest = subprocess.Popen(run_sv(daemon.dir, "vmx", [feat, str(STANDIN), "main"], st), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    host.stdin.write(b"hello")
    host.stdin.close()
    out, err = guest.communicate(timeout=TIMEOUT)
    host.wait(TIMEOUT)
    assert guest.returncode == 0, out + err
    lines = out.decode().splitlines()
    assert lines == ["dup OK high", "dupfd OK 1 cloexec 1", f"dup family {STANDIN}",
                     f"after closing the copies family {STANDIN}", "type 1 protocol 0", f"inq {inq}",
                     f"outq {outq}", f"child inherited 1 family {STANDIN}", "child socket OK high"], lines
    c = counts(st)
    assert c.get(32) == 1 and c.get(72) == 1 and c.get(16) == 2, c  # dup, fcntl(F_DUPFD_CLOEXEC), 2 ioctls


def test_socket_held_by_a_forked_child_stays_served(daemon, feat):
    """A parent connects, forks, and closes its fd first; the child, which
    never made a served call, still has the socket served (the supervisor
    looks for other holders in the whole tree before dropping its copy)."""
    host = plain(daemon.dir, "host", [tool("hvcat"), "--vsock", "-l", "5000"])
    wait_listener(daemon.dir)
    r = subprocess.run(run_sv(daemon.dir, "vm1", [feat, str(STANDIN), "forkhold"]), capture_output=True, text=True,
                       timeout=TIMEOUT, env=clean_env())
    host.stdin.close()
    host.wait(TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == [f"child after the parent's close family {STANDIN}"], r.stdout



def test_family_40_stack_live(daemon, prog):
    """The stack a real program gets (other-ABI, TRACE guard, notify filter;
    no errno wall): socket(40) and socket(34) served (a high fd), socketpair
    refused as the kernel refuses it, x32 and io_uring ENOSYS."""
    p = supervised(daemon.dir, "vm1", [prog, "40", "probe"])
    out, err = p.communicate(timeout=TIMEOUT)
    assert p.returncode == 0, err
    assert out.decode().split("\n")[:5] == ["socket40 OK", "socket34 OK", "socketpair EOPNOTSUPP",
                                            "x32 getpid ENOSYS", "io_uring_setup ENOSYS"], out
