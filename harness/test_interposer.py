# SPDX-License-Identifier: MIT
"""Unmodified programs on the simulator: hvsim-run, the LD_PRELOAD interposer
(libhvsim-preload.so) and the hybrid-vsock relay (hvsim-hybrid), fail-closed.

Debian's socat, `ncat --vsock` and /usr/bin/python3 run as host and as guest
processes in each combination Hyper-V allows, with 1 MiB checksummed both
ways; the refusals of the forbidden combinations show; dup, fork, threads and
exec keep hvsim semantics; with no daemon a program fails with a clear
message and strace shows that no kernel vsock socket was ever made.

SAFETY: this machine's AF_VSOCK belongs to its infrastructure. Every program
here that could reach AF_VSOCK runs under hvsim-run, whose seccomp filter
answers the kernel's socket(AF_VSOCK/34) with EAFNOSUPPORT; the C probes
also check /proc/self/status (Seccomp: 2) and refuse to run otherwise.

Run with: /usr/bin/python3 -m pytest harness/test_interposer.py
Binaries come from build/bin (or $HVSIM_BIN): hvsimd, hvsimctl, hvcat,
hvsim-run, hvsim-hybrid, and ../lib/libhvsim-preload.so beside them.
Every daemon is started with --ready-fd and every listener is waited for
through `hvsimctl status --json` or /proc/net/unix: nothing sleeps to
synchronise.
"""
import errno
import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import qemu

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HVSIM_BIN") or REPO / "build" / "bin")
PRELOAD = BIN.parent / "lib" / "libhvsim-preload.so"
PY = "/usr/bin/python3"
TIMEOUT = 30  # seconds; a bound for hangs, never a wait
MIB = 1024 * 1024
AF_VSOCK = 40
AF_HYPERV = 34


# ---- fixtures and helpers --------------------------------------------------------------


def tool(name):
    path = BIN / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: build it first (make all), or point HVSIM_BIN at the binaries")
    return str(path)


@pytest.fixture(scope="session", autouse=True)
def debian_tools():
    """socat, ncat and strace from Debian (ci/deps.sh installs what is missing)."""
    r = subprocess.run(["sh", str(REPO / "ci" / "deps.sh"), "socat", "ncat", "strace"], capture_output=True,
                       text=True, timeout=600)
    if r.returncode != 0:
        pytest.fail(f"ci/deps.sh socat ncat strace failed: {r.stderr}")
    if not PRELOAD.exists():
        pytest.fail(f"{PRELOAD} is missing: build the interposer first")


def clean_env():
    e = dict(os.environ)
    for k in ("HVSIM_DIR", "HVSIM_PARTITION", "LD_PRELOAD", "HVSIM_PRELOAD_LOG"):
        e.pop(k, None)
    return e


def short_tmpdir():
    # Unix socket paths are at most 107 bytes; pytest's tmp_path can be longer.
    return tempfile.mkdtemp(prefix="hvsim-i-", dir="/tmp")


class Daemon(qemu.Daemon):
    """One hvsimd in its own folder, with VM vm1, and the processes of its world."""

    def __init__(self):
        super().__init__(short_tmpdir(), tool("hvsimd"))

    def stop(self):
        super().stop(TIMEOUT)
        shutil.rmtree(self.dir, ignore_errors=True)

    def ctl(self, *args, json_out=False):
        cmd = [tool("hvsimctl"), "--dir", self.dir] + (["--json"] if json_out else []) + [str(a) for a in args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=clean_env())
        assert r.returncode == 0, f"{' '.join(cmd[1:])} failed ({r.returncode}): {r.stderr}"
        return json.loads(r.stdout) if json_out else r.stdout

    def cid(self, vm="vm1"):
        return next(v["cid"] for v in self.ctl("vm", "list", json_out=True) if v["name"] == vm)

    def listeners(self):
        return self.ctl("status", json_out=True)["listeners"]

    def run_argv(self, partition, argv, log=None, mode=()):
        """argv as a process of this daemon's world: hvsim-run --host|--vm NAME
        (the default mode unless mode says, e.g. ["--interpose"])."""
        where = ["--host"] if partition == "host" else ["--vm", partition]
        extra = (["--log", str(log)] if log else []) + list(mode)
        return [tool("hvsim-run")] + where + ["--dir", self.dir] + extra + ["--"] + [str(a) for a in argv]

    def spawn(self, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE):
        p = subprocess.Popen(argv, env=clean_env(), stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                             start_new_session=True)
        self.children.append(p)
        return p


@pytest.fixture
def daemon():
    d = Daemon()
    d.start()
    d.ctl("vm", "add", "vm1")
    yield d
    d.stop()


def exchange(pairs):
    """Feed and drain several processes at once: [(proc, bytes_in)] ->
    [(returncode, stdout, stderr)], so neither side of a connection blocks
    on a full pipe while the other waits for it."""
    out = [None] * len(pairs)

    def run(i, proc, data):
        try:
            so, se = proc.communicate(data, timeout=TIMEOUT)
            out[i] = (proc.returncode, so, se)
        except subprocess.TimeoutExpired:
            proc.kill()
            so, se = proc.communicate()
            out[i] = ("timeout", so, se)

    threads = [threading.Thread(target=run, args=(i, p, d)) for i, (p, d) in enumerate(pairs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def sha(b):
    return hashlib.sha256(b).hexdigest()


def compile_c(name, source, static=False):
    """A helper program built with plain gcc against plain libc: no hvsim header."""
    d = Path(short_tmpdir())
    src = d / f"{name}.c"
    src.write_text(source)
    exe = d / name
    cmd = ["gcc", "-std=c11", "-D_GNU_SOURCE", "-O1", "-Wall", "-o", str(exe), str(src), "-pthread"]
    if static:
        cmd.insert(1, "-static")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"gcc {name}: {r.stderr}"
    return str(exe)


# A Python program that uses AF_VSOCK like any other: a stdio pump.
PY_PUMP = r'''
import socket, sys, threading
if sys.argv[1] == "listen":
    l = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    l.bind((socket.VMADDR_CID_ANY, int(sys.argv[2])))
    l.listen(1)
    s, peer = l.accept()
    l.close()
else:
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.connect((int(sys.argv[2]), int(sys.argv[3])))
    peer = s.getpeername()
sys.stderr.write("peer %r local %r\n" % (peer, s.getsockname()))
def up():
    while True:
        b = sys.stdin.buffer.read1(65536)
        if not b:
            break
        s.sendall(b)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=up)
t.start()
while True:
    b = s.recv(65536)
    if not b:
        break
    sys.stdout.buffer.write(b)
sys.stdout.buffer.flush()
t.join()
s.close()
'''

# AF_HYPERV (34) from a C program that knows nothing of hvsim: SOCKADDR_HV by
# hand, plain socket calls. listen PORT | connect PORT | refused PORT.
C_HV_PUMP = r'''
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
struct guid { uint32_t d1; uint16_t d2, d3; uint8_t d4[8]; };
struct sockaddr_hv { uint16_t family, reserved; struct guid vmid, svc; };
static const struct guid PARENT = {0xa42e7cda, 0xd03f, 0x480c, {0x9c,0xc2,0xa4,0xde,0x20,0xab,0xb8,0x78}};
static const struct guid TEMPLATE = {0, 0xfacb, 0x11e6, {0xbd,0x58,0x64,0x00,0x6a,0x79,0x86,0xd3}};
static void die(const char *what) { fprintf(stderr, "%s: %s (errno %d)\n", what, strerror(errno), errno); exit(1); }
int main(int argc, char **argv) {
    struct sockaddr_hv a = { .family = 34 }, peer;
    socklen_t pl = sizeof(peer);
    int s, c;
    if (argc != 3) return 2;
    a.svc = TEMPLATE;
    a.svc.d1 = (uint32_t)atoi(argv[2]);
    s = socket(34, SOCK_STREAM, 1);
    if (s < 0) die("socket(34)");
    if (strcmp(argv[1], "listen") == 0) {
        /* the wildcard VmId: any VM may connect */
        if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0) die("bind");
        if (listen(s, 1) < 0) die("listen");
        c = accept(s, (struct sockaddr *)&peer, &pl);
        if (c < 0) die("accept");
        close(s);
        s = c;
    } else {
        a.vmid = PARENT;
        if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
            if (strcmp(argv[1], "refused") == 0 && errno == ECONNREFUSED) { puts("ECONNREFUSED"); return 0; }
            die("connect");
        }
        if (getpeername(s, (struct sockaddr *)&peer, &pl) < 0) die("getpeername");
    }
    fprintf(stderr, "peer family %u length %u\n", peer.family, (unsigned)pl);
    if (peer.family != 34 || pl != 36) return 3;
    {
        struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = s, .events = POLLIN } };
        static char buf[65536];
        /* until both directions ended: stdin's EOF is a half-close, the peer's EOF ends reading */
        while (p[0].fd >= 0 || p[1].fd >= 0) {
            if (poll(p, 2, -1) < 0) die("poll");
            if (p[0].fd >= 0 && (p[0].revents & (POLLIN | POLLHUP))) {
                ssize_t n = read(0, buf, sizeof buf);
                if (n <= 0) { p[0].fd = -1; if (shutdown(s, SHUT_WR) < 0) die("shutdown"); }
                else for (ssize_t o = 0; o < n;) { ssize_t w = send(s, buf + o, (size_t)(n - o), 0); if (w < 0) die("send"); o += w; }
            }
            if (p[1].fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t n = recv(s, buf, sizeof buf, 0);
                if (n < 0) die("recv");
                if (n == 0) { p[1].fd = -1; continue; }
                for (ssize_t o = 0; o < n;) { ssize_t w = write(1, buf + o, (size_t)(n - o)); if (w < 0) die("write"); o += w; }
            }
        }
    }
    close(s);
    return 0;
}
'''

# The probe of the seccomp filter alone: raw system calls, no libc wrapper
# the interposer could take over. It refuses to run unless it is already
# under a seccomp filter, so it can never reach the machine's vsock.
C_PROBE = r'''
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/vm_sockets.h>
static int filtered(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char l[256];
    int s = 0;
    while (f && fgets(l, sizeof l, f))
        if (strncmp(l, "Seccomp:", 8) == 0) s = atoi(l + 8);
    if (f) fclose(f);
    return s == 2;
}
static void report(const char *what, long r) {
    printf("%s = %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "OK");
    if (r >= 0 && strstr(what, "AF_UNIX") == NULL) close((int)r);
}
int main(int argc, char **argv) {
    int sv[2];
    unsigned cid;
    if (!filtered()) { fprintf(stderr, "probe: not under a seccomp filter; refusing to try socket(AF_VSOCK)\n"); return 2; }
    if (argc > 1 && strcmp(argv[1], "libc") == 0) {
        /* through libc's socket(): the interposer, when there is one */
        report("libc socket(AF_VSOCK)", socket(AF_VSOCK, SOCK_STREAM, 0));
        return 0;
    }
    report("socket(AF_VSOCK)", syscall(SYS_socket, AF_VSOCK, SOCK_STREAM, 0));
    report("socket(AF_VSOCK|garbage<<32)", syscall(SYS_socket, 0x1234567800000000UL | AF_VSOCK, SOCK_STREAM, 0));
    report("socket(34)", syscall(SYS_socket, 34, SOCK_STREAM, 1));
    report("socketpair(AF_VSOCK)", syscall(SYS_socketpair, AF_VSOCK, SOCK_STREAM, 0, sv));
    report("socketpair(34)", syscall(SYS_socketpair, 34, SOCK_STREAM, 0, sv));
    report("io_uring_setup", syscall(425, 4, NULL));
    report("ioctl(GET_LOCAL_CID)", syscall(SYS_ioctl, 0, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid));
    report("x32 getpid", syscall(0x40000000 | 39));
    report("socket(AF_UNIX)", syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0));
    report("socket(AF_INET)", syscall(SYS_socket, 2, SOCK_STREAM, 0));
    return 0;
}
'''

C_I386 = r'''
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int filtered(void) {
    FILE *f = fopen("/proc/self/status", "r"); char l[256]; int s = 0;
    while (f && fgets(l, sizeof l, f)) if (strncmp(l, "Seccomp:", 8) == 0) s = atoi(l + 8);
    if (f) fclose(f);
    return s == 2;
}
int main(void) {
    long r;
    if (!filtered()) return 2;
    /* int 0x80: the i386 ABI, where 359 is socket; the filter must kill first */
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(359L), "b"(40L), "c"(1L), "d"(0L) : "memory");
    printf("still alive: %ld\n", r);
    return 1;
}
'''

VSOCK_SOCKET_RE = re.compile(r"socket(?:pair)?\((AF_VSOCK|AF_ISDN|40|34)\b[^=]*=\s*(-?\d+)")


def kernel_vsock_calls(strace_log):
    """The socket()/socketpair() system calls of family 40 or 34 in an strace
    -f log, as (family, return value)."""
    return [(m.group(1), int(m.group(2))) for m in VSOCK_SOCKET_RE.finditer(Path(strace_log).read_text())]


# ---- the seccomp wall, alone (hvsim-run --interpose) ---------------------------------------


def test_filter_refuses_kernel_vsock_to_raw_syscalls():
    """Raw system calls, which no LD_PRELOAD sees: the filter answers them."""
    probe = compile_c("probe", C_PROBE)
    empty = short_tmpdir()
    r = subprocess.run([tool("hvsim-run"), "--vm", "vm1", "--dir", empty, "--interpose", probe],
                       capture_output=True, text=True, timeout=TIMEOUT, env=clean_env())
    assert r.returncode == 0, r.stderr
    got = dict(line.split(" = ", 1) for line in r.stdout.splitlines())
    assert got["socket(AF_VSOCK)"] == "-1 EAFNOSUPPORT"
    assert got["socket(AF_VSOCK|garbage<<32)"] == "-1 EAFNOSUPPORT"  # the kernel reads an int
    assert got["socket(34)"] == "-1 EAFNOSUPPORT"
    assert got["socketpair(AF_VSOCK)"] == "-1 EAFNOSUPPORT"
    assert got["socketpair(34)"] == "-1 EAFNOSUPPORT"
    assert got["io_uring_setup"] == "-1 ENOSYS"
    assert got["ioctl(GET_LOCAL_CID)"] == "-1 EPERM"
    assert got["x32 getpid"] == "-1 ENOSYS"
    assert got["socket(AF_UNIX)"].endswith("OK")
    assert got["socket(AF_INET)"].endswith("OK")  # other families pass untouched


def test_filter_kills_another_abi():
    """int 0x80 has i386 numbers; the arch check kills before they are read."""
    exe = compile_c("i386", C_I386)
    r = subprocess.run([tool("hvsim-run"), "--host", "--dir", short_tmpdir(), "--interpose", exe], capture_output=True,
                       text=True, timeout=TIMEOUT, env=clean_env())
    assert r.returncode == -signal.SIGSYS, (r.returncode, r.stdout, r.stderr)


def test_static_binary_gets_eafnosupport():
    """A static binary ignores LD_PRELOAD; its libc socket() meets the filter."""
    probe = compile_c("probe_static", C_PROBE, static=True)
    r = subprocess.run([tool("hvsim-run"), "--vm", "vm1", "--dir", short_tmpdir(), "--interpose", probe, "libc"],
                       capture_output=True, text=True, timeout=TIMEOUT, env=clean_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "libc socket(AF_VSOCK) = -1 EAFNOSUPPORT"


def test_launcher_refuses_to_run_half_set_up():
    env = clean_env()
    r = subprocess.run([tool("hvsim-run"), "true"], capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert r.returncode == 125 and "--host or --vm NAME" in r.stderr
    r = subprocess.run([tool("hvsim-run"), "--host", "--preload", "/nonexistent/libx.so", "true"],
                       capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert r.returncode == 125 and "/nonexistent/libx.so" in r.stderr
    r = subprocess.run([tool("hvsim-run"), "--vm", "a/b", "true"], capture_output=True, text=True,
                       timeout=TIMEOUT, env=env)
    assert r.returncode == 125 and "without '/'" in r.stderr
    r = subprocess.run([tool("hvsim-run"), "--host", "/nonexistent-program"], capture_output=True, text=True,
                       timeout=TIMEOUT, env=env)
    assert r.returncode == 127 and "/nonexistent-program" in r.stderr


# ---- fail closed: no daemon ----------------------------------------------------------------


def test_no_daemon_socat_fails_closed_and_no_kernel_vsock(tmp_path):
    """HVSIM_DIR names an empty folder: socat fails with the interposer's
    message, and strace shows no socket(AF_VSOCK) system call at all (under
    --interpose: the default mode refuses to start under a tracer)."""
    empty = short_tmpdir()
    log = tmp_path / "strace.log"
    cmd = ["strace", "-f", "-o", str(log), "-e", "trace=socket,socketpair", tool("hvsim-run"), "--vm", "vm1",
           "--dir", empty, "--interpose", "socat", "-", "VSOCK-CONNECT:2:5000"]
    r = subprocess.run(cmd, input=b"x", capture_output=True, timeout=TIMEOUT, env=clean_env())
    err = r.stderr.decode()
    assert r.returncode != 0
    line = next((l for l in err.splitlines() if l.startswith("hvsim-preload[")), None)
    assert line is not None, err
    assert "socket(AF_VSOCK)" in line and "cannot reach the hvsim daemon" in line and empty in line
    assert "ENETDOWN" in line
    assert "Network is down" in err  # socat's own report of the errno
    assert kernel_vsock_calls(log) == [], log.read_text()
    # python3 and ncat, the same
    r = subprocess.run([tool("hvsim-run"), "--host", "--dir", empty, PY, "-c",
                        "import socket\ntry:\n socket.socket(socket.AF_VSOCK)\nexcept OSError as e:\n print(e.errno)"],
                       capture_output=True, text=True, timeout=TIMEOUT, env=clean_env())
    assert r.stdout.strip() == str(errno.ENETDOWN) and "host.sock" in r.stderr
    r = subprocess.run([tool("hvsim-run"), "--vm", "vm1", "--dir", empty, "ncat", "--vsock", "2", "5000"],
                       input=b"x", capture_output=True, timeout=TIMEOUT, env=clean_env())
    assert r.returncode != 0 and b"cannot reach the hvsim daemon" in r.stderr


def test_unsupported_calls_fail_with_a_named_cause(daemon):
    """What the emulated transport does not offer fails with an errno and one
    line naming it, and never falls through to the kernel."""
    prog = ("import errno, socket\n"
            "for args in ((socket.AF_VSOCK, socket.SOCK_DGRAM), (socket.AF_VSOCK, socket.SOCK_RAW)):\n"
            "    try:\n"
            "        socket.socket(*args)\n"
            "        print('created')\n"
            "    except OSError as e:\n"
            "        print(errno.errorcode[e.errno])\n"
            "try:\n"
            "    socket.socketpair(socket.AF_VSOCK, socket.SOCK_STREAM)\n"
            "except OSError as e:\n"
            "    print(e.errno == errno.EOPNOTSUPP)\n")
    r = subprocess.run(daemon.run_argv("vm1", [PY, "-c", prog]), capture_output=True, text=True, timeout=TIMEOUT,
                       env=clean_env())
    assert r.returncode == 0, r.stderr
    got = r.stdout.split()
    assert "created" not in got and got[2] == "True", got  # vsock has no socketpair
    lines = [l for l in r.stderr.splitlines() if l.startswith("hvsim-preload[")]
    assert len(lines) == 3, r.stderr
    assert all("AF_VSOCK" in l and ("not supported" in l or "no socket pairs" in l) for l in lines), lines


def test_emulated_session_makes_no_kernel_vsock_socket(daemon, tmp_path):
    """A working guest-to-host session under strace: every socket system call
    is AF_UNIX; the interposer's log names each AF_VSOCK socket it emulated."""
    daemon.ctl("service", "add", 5100)
    base = daemon.listeners()
    srv = daemon.spawn(daemon.run_argv("host", ["socat", "-t", "30", "VSOCK-LISTEN:5100", "-"]))
    daemon.wait_listeners(srv, base + 1)
    log = tmp_path / "strace.log"
    plog = tmp_path / "preload.log"
    cli = daemon.spawn(["strace", "-f", "-o", str(log), "-e", "trace=socket,socketpair"] +
                       daemon.run_argv("vm1", ["socat", "-t", "30", "-", "VSOCK-CONNECT:2:5100"], log=plog,
                                       mode=["--interpose"]))
    (rs, outs, _), (rc, outc, errc) = exchange([(srv, b"from host"), (cli, b"from guest")])
    assert (rs, rc) == (0, 0), errc
    assert (outs, outc) == (b"from guest", b"from host")
    assert kernel_vsock_calls(log) == []
    families = set(re.findall(r"socket(?:pair)?\((\w+)", log.read_text()))
    assert families == {"AF_UNIX"}, families
    assert re.search(r"socket\(AF_VSOCK\) -> fd \d+ \(emulated by hvsim, partition vm1\)", plog.read_text())


# ---- data both ways, every allowed combination --------------------------------------------

PORT = 5200


def socat_listen(port):
    return ["socat", "-t", "30", f"VSOCK-LISTEN:{port}", "-"]


def socat_connect(cid, port):
    return ["socat", "-t", "30", "-", f"VSOCK-CONNECT:{cid}:{port}"]


def ncat_listen(port):
    return ["ncat", "--vsock", "-l", str(port)]


def ncat_connect(cid, port):
    # Without --no-shutdown, ncat half-closes at its stdin's EOF and the
    # listening ncat then exits before it has sent all of its own stdin: a
    # property of ncat (it would lose the same bytes over a real vsock), so
    # the connector keeps its write side open and the listener ends the stream.
    return ["ncat", "--vsock", "--no-shutdown", str(cid), str(port)]


def py_listen(port):
    return [PY, "-c", PY_PUMP, "listen", port]


def py_connect(cid, port):
    return [PY, "-c", PY_PUMP, "connect", cid, port]


def launch(daemon, part, argv):
    """argv as a process of partition part: through hvsim-run ("host", "vm1"),
    or, for a program built on libhvsim itself (hvcat), "libhvsim:host" with
    just the environment."""
    if part.startswith("libhvsim:"):
        env = clean_env()
        env.update(HVSIM_DIR=daemon.dir, HVSIM_PARTITION=part.split(":", 1)[1])
        p = subprocess.Popen([str(a) for a in argv], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        daemon.children.append(p)
        return p
    return daemon.spawn(daemon.run_argv(part, argv))


# (name, listener's partition, its argv(port), connector's partition, its argv(daemon, port)).
# A guest reaching a host listener of a classic VM needs the service registered.
COMBOS = [
    ("guest socat -> host socat", "host", socat_listen, "vm1", lambda d, p: socat_connect(2, p)),
    ("guest socat -> host hvcat -l wildcard", "libhvsim:host", lambda p: [tool("hvcat"), "-l", f"wildcard:{p}"],
     "vm1", lambda d, p: socat_connect(2, p)),
    ("guest ncat -> host ncat", "host", ncat_listen, "vm1", lambda d, p: ncat_connect(2, p)),
    ("guest python -> host python", "host", py_listen, "vm1", lambda d, p: py_connect(2, p)),
    ("guest socat -> host python", "host", py_listen, "vm1", lambda d, p: socat_connect(2, p)),
    ("host python -> guest socat (by CID)", "vm1", socat_listen, "host", lambda d, p: py_connect(d.cid(), p)),
    ("host ncat -> guest ncat (by CID)", "vm1", ncat_listen, "host", lambda d, p: ncat_connect(d.cid(), p)),
    ("host socat -> guest python (by CID)", "vm1", py_listen, "host", lambda d, p: socat_connect(d.cid(), p)),
    ("host hvcat vm1:port -> guest socat", "vm1", socat_listen, "libhvsim:host",
     lambda d, p: [tool("hvcat"), f"vm1:{p}"]),
]


@pytest.mark.parametrize("combo", COMBOS, ids=[c[0] for c in COMBOS])
def test_unmodified_tools_both_ways(daemon, combo):
    name, lpart, largv, cpart, cargv = combo
    port = PORT + COMBOS.index(combo)
    if cpart == "vm1":
        daemon.ctl("service", "add", port)  # GuestCommunicationServices\<port>-facb-...
    a, b = os.urandom(MIB), os.urandom(MIB)
    base = daemon.listeners()
    srv = launch(daemon, lpart, largv(port))
    daemon.wait_listeners(srv, base + 1)
    cli = launch(daemon, cpart, cargv(daemon, port))
    (rs, outs, errs), (rc, outc, errc) = exchange([(srv, a), (cli, b)])
    assert rs == 0, f"{name}: listener {rs}: {errs.decode(errors='replace')}"
    assert rc == 0, f"{name}: connector {rc}: {errc.decode(errors='replace')}"
    assert sha(outs) == sha(b), f"{name}: the listener got {len(outs)} bytes"
    assert sha(outc) == sha(a), f"{name}: the connector got {len(outc)} bytes"


def test_af_hyperv_windows_guest_and_host_from_plain_c(daemon):
    """Family 34 from a C program that knows nothing of hvsim: a Windows guest
    dials HV_GUID_PARENT, a host program listens on the wildcard VmId."""
    exe = compile_c("hvpump", C_HV_PUMP)
    port = 5300
    daemon.ctl("service", "add", port)
    base = daemon.listeners()
    srv = daemon.spawn(daemon.run_argv("host", [exe, "listen", port]))
    daemon.wait_listeners(srv, base + 1)
    cli = daemon.spawn(daemon.run_argv("vm1", [exe, "connect", port]))
    a, b = os.urandom(MIB), os.urandom(MIB)
    (rs, outs, errs), (rc, outc, errc) = exchange([(srv, a), (cli, b)])
    assert (rs, rc) == (0, 0), (errs, errc)
    assert sha(outs) == sha(b) and sha(outc) == sha(a)
    # A Windows guest dialing a service no listener matches: WSAECONNREFUSED at once.
    r = subprocess.run(daemon.run_argv("vm1", [exe, "refused", 5399]), capture_output=True, text=True,
                       timeout=TIMEOUT, env=clean_env())
    assert r.returncode == 0 and r.stdout.strip() == "ECONNREFUSED", r.stderr


# ---- what Hyper-V refuses -------------------------------------------------------------------

PY_REFUSALS = r'''
import ctypes, errno, socket, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)  # the process's setsockopt: the interposer's
def attempt(cid, port, timeout_s=None):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    if timeout_s is not None:
        # Python's setsockopt passes 8 bytes for AF_VSOCK; the option is a struct timeval.
        tv = struct.pack("ll", int(timeout_s), int((timeout_s % 1) * 1e6))
        assert libc.setsockopt(s.fileno(), socket.AF_VSOCK, 6, tv, len(tv)) == 0, ctypes.get_errno()
    t = time.monotonic()
    try:
        s.connect((cid, port))
        r = "connected"
    except OSError as e:
        r = errno.errorcode[e.errno]
    finally:
        s.close()
    return [r, round(time.monotonic() - t, 3)]
print(__import__("json").dumps({a: attempt(*[float(x) if "." in x else int(x) for x in a.split(":")])
                                for a in sys.argv[1:]}))
'''


def refusals(daemon, partition, *attempts):
    r = subprocess.run(daemon.run_argv(partition, [PY, "-c", PY_REFUSALS] + list(attempts)), capture_output=True,
                       text=True, timeout=TIMEOUT, env=clean_env())
    assert r.returncode == 0, r.stderr
    return {k: v for k, v in json.loads(r.stdout).items()}


def test_guest_refusals(daemon):
    daemon.ctl("service", "add", 5401)  # registered, but nobody listens
    got = refusals(daemon, "vm1", f"{daemon.cid()}:5400", "2:5400:0.3", "2:5401:0.3")
    # hv_sock's stream_allow(): a guest reaches CID 2 only
    assert got[f"{daemon.cid()}:5400"][0] == "ENETUNREACH"
    # no answer for an unregistered service, nor for no listener: the guest times out,
    # after its own SO_VM_SOCKETS_CONNECT_TIMEOUT (0.3 s), well before the 2 s default
    for k in ("2:5400:0.3", "2:5401:0.3"):
        res, took = got[k]
        assert res == "ETIMEDOUT", got
        assert 0.25 <= took < 1.9, got
    # socat reports the same refusal in its words
    r = subprocess.run(daemon.run_argv("vm1", ["socat", "-", "VSOCK-CONNECT:3:5400"]), input="",
                       capture_output=True, text=True, timeout=TIMEOUT, env=clean_env())
    assert r.returncode != 0 and "Network is unreachable" in r.stderr


def test_host_refusals(daemon):
    got = refusals(daemon, "host", "99:5500", f"{daemon.cid()}:5500:0.3")
    # KVM-style host vsock: no VM has CID 99, and vhost-vsock answers a packet
    # for an unknown CID with RST (sim/daemon/route.c)
    assert got["99:5500"][0] == "ECONNRESET"
    res, took = got[f"{daemon.cid()}:5500:0.3"]  # no listener in the guest: no answer
    assert res == "ETIMEDOUT" and took < 1.9, got


def test_dev_vsock_local_cid(daemon):
    """socat and friends ask /dev/vsock for the local CID: the interposer
    answers from hvsim (hv_sock says VMADDR_CID_ANY in a guest; the host is 2)."""
    prog = ("import fcntl, socket, struct\n"
            "f = open('/dev/vsock', 'rb', buffering=0)\n"
            "b = bytearray(4)\n"
            "fcntl.ioctl(f, socket.IOCTL_VM_SOCKETS_GET_LOCAL_CID, b)\n"
            "print(struct.unpack('I', b)[0])\n")
    for part, want in (("vm1", 0xFFFFFFFF), ("host", 2)):
        r = subprocess.run(daemon.run_argv(part, [PY, "-c", prog]), capture_output=True, text=True,
                           timeout=TIMEOUT, env=clean_env())
        assert r.returncode == 0, r.stderr
        assert int(r.stdout) == want


# ---- dup, fork, threads, exec ------------------------------------------------------------------

PY_HOST_COLLECT = r'''
import json, socket, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
l = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
l.bind((socket.VMADDR_CID_ANY, port))
l.listen(16)
out, lock = [], threading.Lock()
def serve(c):
    data = b""
    while True:
        b = c.recv(65536)
        if not b:
            break
        data += b
    try:
        c.sendall(b"ok:" + data[:2])
    except OSError:
        pass  # a peer that closed without reading (the fdopen case)
    c.close()
    with lock:
        out.append(data.decode())
threads = []
for i in range(n):
    c, peer = l.accept()
    t = threading.Thread(target=serve, args=(c,))
    t.start()
    threads.append(t)
for t in threads:
    t.join()
print(json.dumps(sorted(out)))
'''

PY_GUEST_LIFECYCLE = r'''
import errno, os, socket, subprocess, sys, threading
port = int(sys.argv[1])
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.connect((2, port))
# dup, then close the original: the copy is still the emulated vsock socket
d = os.dup(s.fileno())
s.close()
t = socket.socket(fileno=d)
assert t.family == socket.AF_VSOCK, t.family
assert t.getpeername() == (2, port), t.getpeername()
try:
    t.recv(1, socket.MSG_PEEK)  # AF_UNIX would peek; hv_sock refuses
    sys.exit("MSG_PEEK worked on the dup: it lost hvsim's semantics")
except OSError as e:
    assert e.errno == errno.EOPNOTSUPP, e
# dup2 onto a chosen number, then close_range over it: t lives on
os.dup2(t.fileno(), 60)
os.closerange(55, 70)
t.sendall(b"AA")
# fork: the child writes through its inherited copy and closes it, which
# must neither end nor drain the parent's connection
pid = os.fork()
if pid == 0:
    t.sendall(b"BB")
    t.close()
    os._exit(0)
assert os.waitpid(pid, 0)[1] == 0
t.sendall(b"CC")
# threads: four connections at once
def worker(i, res):
    c = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    c.connect((2, port))
    c.sendall(b"T%d" % i)
    c.shutdown(socket.SHUT_WR)
    res[i] = c.recv(100)
    c.close()
res = {}
ws = [threading.Thread(target=worker, args=(i, res)) for i in range(4)]
for w in ws:
    w.start()
for w in ws:
    w.join()
assert res == {i: b"ok:T%d" % i for i in range(4)}, res
# exec with an empty environment: the child is still a process of vm1
child = ("import os, socket\n"
         "s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)\n"
         "s.connect((2, %d))\n"
         "s.sendall(b'EX:' + os.environ['HVSIM_PARTITION'].encode())\n"
         "s.shutdown(socket.SHUT_WR)\n"
         "assert s.recv(100) == b'ok:EX'\n") % port
r = subprocess.run([sys.executable, "-c", child], env={}, capture_output=True)
assert r.returncode == 0, r.stderr
# shutdown through the dup: the host reads EOF and answers
t.shutdown(socket.SHUT_WR)
assert t.recv(100) == b"ok:AA"
t.close()
print("lifecycle ok")
'''


def test_dup_fork_threads_exec_keep_hvsim_semantics(daemon):
    port = 5600
    daemon.ctl("service", "add", port)
    base = daemon.listeners()
    srv = daemon.spawn(daemon.run_argv("host", [PY, "-c", PY_HOST_COLLECT, port, 6]))
    daemon.wait_listeners(srv, base + 1)
    cli = daemon.spawn(daemon.run_argv("vm1", [PY, "-c", PY_GUEST_LIFECYCLE, port]))
    (rs, outs, errs), (rc, outc, errc) = exchange([(srv, b""), (cli, b"")])
    assert rc == 0 and outc.strip() == b"lifecycle ok", errc.decode()
    assert rs == 0, errs.decode()
    got = json.loads(outs)
    assert got == sorted(["AABBCC", "T0", "T1", "T2", "T3", "EX:vm1"]), got


C_FDOPEN = r'''
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>
int main(int argc, char **argv) {
    struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = (unsigned)atoi(argv[1]) };
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    FILE *f;
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("socket/connect"); return 1; }
    /* stdio owns the socket now; fclose() closes it through libc's internals */
    f = fdopen(s, "w");
    if (f == NULL) { perror("fdopen"); return 1; }
    fputs("FD", f);
    if (fclose(f) != 0) { perror("fclose"); return 1; }
    /* the process goes on: only the interposer's release can end the stream now */
    pause();
    return 0;
}
'''


# An emulated socket's number closed past the interposer (a raw close system
# call) and handed out again by socket(), socketpair(), dup() or SCM_RIGHTS:
# send and recv on the new descriptor are the kernel's, not the old emulated
# socket's (which would say ENOTCONN: it never connected). The data calls
# trust the interposer's map of numbers without an fstat, so each way a
# number comes back must clear it.
C_FD_REUSE = r'''
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/vm_sockets.h>
static int stale(void)
{
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    char c = 0;
    if (s < 0 || send(s, "x", 1, MSG_NOSIGNAL) != -1 || errno != ENOTCONN) { printf("emulated BAD\n"); return -1; }
    if (recv(s, &c, 1, MSG_DONTWAIT) != -1) { printf("emulated BAD\n"); return -1; }
    syscall(SYS_close, s); /* past the interposer */
    return s;
}
static void check(const char *how, int got, int want, int peer)
{
    char c = 0;
    int ok = got == want && send(got, "y", 1, 0) == 1 && recv(peer, &c, 1, 0) == 1 && c == 'y' &&
             send(peer, "z", 1, 0) == 1 && recv(got, &c, 1, 0) == 1 && c == 'z';
    printf("%s %s\n", how, got != want ? "MISSED" : ok ? "OK" : strerror(errno));
}
int main(void)
{
    int n, sv[2], pp[2];
    char c = 'm', cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
    struct iovec iov = { &c, 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    struct cmsghdr *h;

    /* socketpair */
    n = stale();
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return 1;
    check("socketpair", sv[0], n, sv[1]);
    /* dup of a plain socket */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pp) < 0) return 1;
    n = stale();
    check("dup", dup(pp[0]), n, pp[1]);
    /* SCM_RIGHTS: the received descriptor lands on the number */
    n = stale();
    h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &pp[0], sizeof(int));
    if (sendmsg(sv[1], &m, 0) != 1) return 1;
    memset(cbuf, 0, sizeof cbuf);
    m.msg_controllen = sizeof cbuf;
    if (recvmsg(sv[0], &m, 0) != 1 || (h = CMSG_FIRSTHDR(&m)) == NULL) return 1;
    {
        int got;
        memcpy(&got, CMSG_DATA(h), sizeof(int));
        check("scm_rights", got, n, pp[1]);
    }
    /* socket(): an unconnected UDP socket's send says EDESTADDRREQ */
    n = stale();
    {
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        printf("socket %s\n", u != n ? "MISSED" : send(u, "x", 1, 0) == -1 && errno == EDESTADDRREQ ? "OK" : "BAD");
    }
    return 0;
}
'''


@pytest.mark.parametrize("mode", [["--interpose"], []])
def test_fd_closed_past_the_interposer_and_reused(daemon, mode):
    exe = compile_c("fd_reuse", C_FD_REUSE)
    r = subprocess.run(daemon.run_argv("vm1", [exe], mode=mode), capture_output=True, text=True, timeout=TIMEOUT,
                       env=clean_env())
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split("\n") == ["socketpair OK", "dup OK", "scm_rights OK", "socket OK", ""], r.stdout + r.stderr


def test_fclose_of_fdopen_socket_ends_the_stream(daemon):
    """fclose() closes through libc's internal close(), past close(): the
    interposer must still let the emulated socket go, or the peer would
    never read EOF while the process lives."""
    exe = compile_c("fdopen", C_FDOPEN)
    port = 5650
    daemon.ctl("service", "add", port)
    base = daemon.listeners()
    srv = daemon.spawn(daemon.run_argv("host", [PY, "-c", PY_HOST_COLLECT, port, 1]))
    daemon.wait_listeners(srv, base + 1)
    cli = daemon.spawn(daemon.run_argv("vm1", [exe, port]), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    out, err = srv.communicate(timeout=TIMEOUT)
    assert srv.returncode == 0, err.decode()
    assert json.loads(out) == ["FD"]
    assert cli.poll() is None  # still running: EOF came from the release, not from exit


def test_socat_fork_server(daemon):
    """socat's fork option: the parent closes each accepted socket after fork,
    which must not take the child's data (no drain of a shared socket)."""
    port = 5700
    daemon.ctl("service", "add", port)
    base = daemon.listeners()
    srv = daemon.spawn(daemon.run_argv("host", ["socat", f"VSOCK-LISTEN:{port},fork", "SYSTEM:cat"]),
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    daemon.wait_listeners(srv, base + 1)
    for i in range(3):
        blob = os.urandom(256 * 1024)
        r = subprocess.run(daemon.run_argv("vm1", socat_connect(2, port)), input=blob, capture_output=True,
                           timeout=TIMEOUT, env=clean_env())
        assert r.returncode == 0, r.stderr
        assert sha(r.stdout) == sha(blob), f"round {i}: {len(r.stdout)} bytes back"


# ---- the hybrid-vsock relay ---------------------------------------------------------------------


def wait_unix_listener(path, proc):
    """Until /proc/net/unix shows a listening socket bound to path, or proc
    exits. Connecting to find out would use up a one-shot listener."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
            f = line.split()
            # Flags __SO_ACCEPTCON (0x10000), state SS_UNCONNECTED (01)
            if len(f) >= 8 and f[-1] == path and int(f[3], 16) & 0x10000:
                return
        try:
            proc.wait(timeout=0.02)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"{proc.args} exited ({proc.returncode}) before listening on {path}")
    pytest.fail(f"nothing listens on {path} after {TIMEOUT} s")


@pytest.fixture
def hybrid(daemon):
    path = os.path.join(daemon.dir, "vm1.hvsock")
    r, w = os.pipe()
    p = subprocess.Popen([tool("hvsim-hybrid"), "--vm", "vm1", "--path", path, "--dir", daemon.dir, "--ready-fd",
                          str(w), "--forward-port", "5802", "-v"], pass_fds=(w,), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
    os.close(w)
    daemon.children.append(p)
    got = b""
    while True:
        if not select.select([r], [], [], TIMEOUT)[0]:
            pytest.fail("hvsim-hybrid did not get ready")
        chunk = os.read(r, 64)
        if not chunk:
            break
        got += chunk
    os.close(r)
    if b"READY=1" not in got:
        p.wait(TIMEOUT)
        pytest.fail(f"hvsim-hybrid exited ({p.returncode}): {p.stderr.read().decode()}")
    return path, p


def test_hybrid_host_to_guest_with_plain_socat(daemon, hybrid):
    """`CONNECT <port>\\n` over the VM's unix socket, `OK <port>\\n` back, then
    the stream, both ways; OpenVMM's GUID form and a case-insensitive prefix too."""
    path, relay = hybrid
    for i, request in enumerate(["CONNECT 5801\n", "connect 000016a9-facb-11e6-bd58-64006a7986d3\n"]):
        base = daemon.listeners()
        guest = daemon.spawn(daemon.run_argv("vm1", socat_listen(5801)))
        daemon.wait_listeners(guest, base + 1)
        a, b = os.urandom(MIB), os.urandom(MIB)
        host = daemon.spawn(["socat", "-t", "30", "-", f"UNIX-CONNECT:{path}"])
        (rg, outg, errg), (rh, outh, errh) = exchange([(guest, b), (host, request.encode() + a)])
        assert (rg, rh) == (0, 0), (errg, errh)
        head, _, rest = outh.partition(b"\n")
        if i == 0:
            assert re.fullmatch(rb"OK \d+", head), head
        else:
            assert re.fullmatch(rb"OK [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", head), head
        assert sha(rest) == sha(b) and sha(outg) == sha(a)


def test_hybrid_refuses_bad_requests(daemon, hybrid):
    path, relay = hybrid
    for request in (b"HELLO 5801\n", b"CONNECT 99999999999\n", b"CONNECT " + b"1" * 60 + b"\n"):
        r = subprocess.run(["socat", "-", f"UNIX-CONNECT:{path}"], input=request, capture_output=True,
                           timeout=TIMEOUT, env=clean_env())
        assert r.stdout == b"", r.stdout  # closed without an answer
    # nobody listens in the guest: no OK either, after the 2 s the relay waits
    r = subprocess.run(["socat", "-", f"UNIX-CONNECT:{path}"], input=b"CONNECT 5899\n", capture_output=True,
                       timeout=TIMEOUT, env=clean_env())
    assert r.stdout == b""


def test_hybrid_guest_to_host_with_plain_socat(daemon, hybrid):
    """The guest dials host port 5802; the relay delivers it to PATH_5802,
    where a plain socat UNIX-LISTEN answers."""
    path, relay = hybrid
    daemon.ctl("service", "add", 5802)
    host = daemon.spawn(["socat", "-t", "30", f"UNIX-LISTEN:{path}_5802", "-"])
    wait_unix_listener(f"{path}_5802", host)
    guest = daemon.spawn(daemon.run_argv("vm1", socat_connect(2, 5802)))
    a, b = os.urandom(MIB), os.urandom(MIB)
    (rh, outh, errh), (rg, outg, errg) = exchange([(host, a), (guest, b)])
    assert (rh, rg) == (0, 0), (errh, errg)
    assert sha(outh) == sha(b) and sha(outg) == sha(a)


def start_hybrid(daemon, path, log, *extra):
    """hvsim-hybrid with its messages in the file log (a pipe nobody reads would fill)."""
    r, w = os.pipe()
    with open(log, "wb") as err:
        p = subprocess.Popen([tool("hvsim-hybrid"), "--vm", "vm1", "--path", path, "--dir", daemon.dir, "--ready-fd",
                              str(w)] + list(extra), pass_fds=(w,), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err, env=clean_env())
    os.close(w)
    daemon.children.append(p)
    with os.fdopen(r, "rb") as ready:
        assert b"READY=1" in ready.read(), "hvsim-hybrid did not get ready"
    return p


def threads_of(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def test_hybrid_holds_2000_idle_connections_in_a_few_threads(daemon):
    """Issue 11, finding 11: 2,000 host connections that send nothing are
    entries of one event loop, not 2,000 threads; and each is dropped when
    its CONNECT line has not come by the deadline, while a connection that
    does send one in time still reaches the guest (positive control)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4500:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < 4500")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4500), hard))
    path = os.path.join(daemon.dir, "vm1-idle.hvsock")
    log = os.path.join(daemon.dir, "hybrid.log")
    relay = start_hybrid(daemon, path, log, "--request-timeout-ms", "3000")
    idle = []
    try:
        for _ in range(2000):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            idle.append(s)
        t0 = time.monotonic()
        # All accepted (the relay's fd count) ...
        deadline = t0 + 10
        while len(os.listdir(f"/proc/{relay.pid}/fd")) < 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(os.listdir(f"/proc/{relay.pid}/fd")) >= 2000
        # ... in a few threads (the loop, libhvsim's helper, the connect pool).
        n = threads_of(relay.pid)
        assert n <= 20, f"{n} threads for 2000 idle connections"
        # A prompt CONNECT still works meanwhile.
        base = daemon.listeners()
        guest = daemon.spawn(daemon.run_argv("vm1", socat_listen(5803)))
        daemon.wait_listeners(guest, base + 1)
        ok = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ok.connect(path)
        ok.sendall(b"CONNECT 5803\n")
        ok.settimeout(10)
        assert ok.recv(64).startswith(b"OK "), "a prompt CONNECT was not served"
        ok.close()
        # Every silent one is dropped after the deadline (EOF), none before.
        for s in idle:
            s.settimeout(15)
            assert s.recv(1) == b""
        took = time.monotonic() - t0
        assert 1.0 < took < 15, took
        assert threads_of(relay.pid) <= 20
    finally:
        for s in idle:
            s.close()
    relay.kill()
    relay.wait()
    with open(log, "rb") as f:
        err = f.read()
    assert err.count(b"no CONNECT line within 3000 ms") == 2000, err[-500:]


# ---- a VM's transport and kernel (issue 13) ------------------------------------------------------

PY_TRANSPORT_HOST = r'''
import socket, sys
l = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
l.bind((socket.VMADDR_CID_ANY, int(sys.argv[1])))
l.listen(4)
print("ready", flush=True)
for _ in range(int(sys.argv[2])):
    c, _ = l.accept()
    c.sendall(b"xyz")
    while c.recv(64):
        pass
    c.close()
'''

PY_TRANSPORT_GUEST = r'''
import errno, fcntl, json, socket, struct, sys, termios, time
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.connect((2, int(sys.argv[1])))
out = {}
def ioctl(req):
    try:
        return struct.unpack("i", fcntl.ioctl(s.fileno(), req, b"\0\0\0\0"))[0]
    except OSError as e:
        return errno.errorcode[e.errno]
s.sendall(b"q")
time.sleep(0.1)
out["outq"] = ioctl(termios.TIOCOUTQ)
out["inq"] = ioctl(termios.FIONREAD)
try:
    out["peek"] = s.recv(3, socket.MSG_PEEK | socket.MSG_WAITALL).decode()
except OSError as e:
    out["peek"] = errno.errorcode[e.errno]
try:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 3)
    out["rcvlowat"] = "ok"
except OSError as e:
    out["rcvlowat"] = errno.errorcode[e.errno]
print(json.dumps(out))
s.close()
'''


def test_transport_and_kernel_through_the_interposer(daemon):
    """ioctl, recv and setsockopt of an unmodified program get its VM's
    transport's and kernel's answers (README, "Transports and kernel versions")."""
    daemon.ctl("vm", "add", "kvm1", "--transport", "virtio", "--kernel", "newest")
    daemon.ctl("service", "add", 5600)
    host = daemon.spawn(daemon.run_argv("host", [PY, "-c", PY_TRANSPORT_HOST, "5600", "2"]))
    assert host.stdout.readline().strip() == b"ready"
    got = {}
    for vm in ("kvm1", "vm1"):
        r = subprocess.run(daemon.run_argv(vm, [PY, "-c", PY_TRANSPORT_GUEST, "5600"]), capture_output=True,
                           text=True, timeout=TIMEOUT, env=clean_env())
        assert r.returncode == 0, r.stderr
        got[vm] = json.loads(r.stdout)
    # virtio on the newest kernel: SIOCOUTQ (6.11), SIOCINQ (6.17), peek, SO_RCVLOWAT
    assert got["kvm1"] == {"outq": 0, "inq": 3, "peek": "xyz", "rcvlowat": "ok"}, got
    # hv_sock on 6.1: no vsock ioctl at all, no peek, no SO_RCVLOWAT
    # (errno.errorcode names 95 ENOTSUP, which is EOPNOTSUPP on Linux)
    assert got["vm1"] == dict.fromkeys(("outq", "inq", "peek", "rcvlowat"), errno.errorcode[errno.EOPNOTSUPP]), got
    host.wait(timeout=TIMEOUT)


# ---- SOCK_SEQPACKET from an unmodified Python program (issue 15) ------------------------

PY_SEQ = r'''
import errno, socket, sys
SIZES = [1, 2, 7, 100, 4095, 4096, 4097, 65535, 65536]
def msg(i, n):
    return bytes((o * 7 + i * 13 + 1) & 0xff for o in range(n))
def expect(s, i, n, eor=False):
    data, anc, flags, _ = s.recvmsg(300000)
    assert data == msg(i, n), "message %d: %d bytes, expected %d" % (i, len(data), n)
    assert bool(flags & socket.MSG_EOR) == eor, "message %d: flags %#x" % (i, flags)
    assert not flags & socket.MSG_TRUNC
if sys.argv[1] == "listen":
    l = socket.socket(socket.AF_VSOCK, socket.SOCK_SEQPACKET)
    l.bind((socket.VMADDR_CID_ANY, int(sys.argv[2])))
    l.listen(1)
    s, _ = l.accept()
    for i, n in enumerate(SIZES):
        expect(s, i, n)
    expect(s, 99, 3, eor=True)
    for i, n in enumerate(SIZES):
        s.send(msg(i, n))
    # A short buffer: the head, MSG_TRUNC, the rest gone.
    data, _, flags, _ = s.recvmsg(4)
    assert data == b"0123" and flags & socket.MSG_TRUNC, (data, flags)
    expect(s, 98, 5)
else:
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_SEQPACKET)
    s.connect((int(sys.argv[2]), int(sys.argv[3])))
    for i, n in enumerate(SIZES):
        s.send(msg(i, n))
    s.sendmsg([msg(99, 3)], [], socket.MSG_EOR)
    try:
        s.send(b"z" * (256 * 1024 + 1))
        raise SystemExit("a message above 256 KiB was sent")
    except OSError as e:
        # 6.12 says EMSGSIZE; 6.1 (the KVM-style host's kernel) ENOMEM.
        assert errno.errorcode[e.errno] == sys.argv[4], errno.errorcode[e.errno]
    for i, n in enumerate(SIZES):
        expect(s, i, n)
    s.send(b"0123456789")
    s.send(msg(98, 5))
s.close()
print("OK")
'''


def test_seqpacket_from_unmodified_python_both_ways(daemon):
    """Python's own socket module, SOCK_SEQPACKET over a virtio VM under
    hvsim-run: every boundary kept, MSG_EOR and MSG_TRUNC in recvmsg's flags,
    EMSGSIZE above the largest message; the guest dials the host, then the
    host dials the guest by CID."""
    daemon.ctl("vm", "add", "vq", "--transport", "virtio", "--kernel", "6.12")
    for n, (lpart, cpart) in enumerate([("host", "vq"), ("vq", "host")]):
        port = 5500 + n
        if cpart == "vq":
            daemon.ctl("service", "add", port)
        base = daemon.listeners()
        srv = daemon.spawn(daemon.run_argv(lpart, [PY, "-c", PY_SEQ, "listen", port]))
        daemon.wait_listeners(srv, base + 1)
        cid = 2 if lpart == "host" else daemon.cid("vq")
        too_big = "EMSGSIZE" if cpart == "vq" else "ENOMEM"
        cli = daemon.spawn(daemon.run_argv(cpart, [PY, "-c", PY_SEQ, "connect", cid, port, too_big]))
        (rs, outs, errs), (rc, outc, errc) = exchange([(srv, b""), (cli, b"")])
        assert (rs, outs.strip()) == (0, b"OK"), f"{lpart} listener: {errs.decode(errors='replace')}"
        assert (rc, outc.strip()) == (0, b"OK"), f"{cpart} connector: {errc.decode(errors='replace')}"


def test_hybrid_log_lines_are_whole(daemon, tmp_path):
    """A failed CONNECT's line carries Winsock's long WSAETIMEDOUT text and
    then the names; it was cut at 273 characters (a 200-byte buffer for the
    error text), so the names never showed."""
    path = os.path.join(daemon.dir, "vm1.hvsock")
    log = tmp_path / "hybrid.log"
    start_hybrid(daemon, path, log)
    # nobody listens in the guest: the relay's connect times out (2 s)
    r = subprocess.run(["socat", "-", f"UNIX-CONNECT:{path}"], input=b"CONNECT 5899\n", capture_output=True,
                       timeout=TIMEOUT, env=clean_env())
    assert r.stdout == b""
    deadline = time.monotonic() + TIMEOUT
    lines = []
    while time.monotonic() < deadline:
        lines = [x for x in log.read_text().splitlines() if "CONNECT" in x and "failed" in x]
        if lines:
            break
        time.sleep(0.05)
    assert lines, log.read_text()
    line = lines[0]
    assert len(line) > 273, line
    assert line.endswith("(ETIMEDOUT, WSAETIMEDOUT)"), line
    assert "A connection attempt failed because the connected party did not properly respond" in line


def test_seqpacket_unmodified_c_program_on_the_simulator(daemon):
    """vm-images/vsock-seq.c, the program the QEMU guests run (plain
    socket(AF_VSOCK, SOCK_SEQPACKET, 0)), as a host program and as a process
    of a virtio VM of the simulator, both dial directions: messages of 1 byte
    to 64 KiB, MSG_TRUNC both ways, the message above the largest refused
    (ENOMEM on 6.1, the host's kernel and the VM's here) and MSG_EOR carried."""
    exe = compile_c("vsock-seq", (REPO / "vm-images" / "vsock-seq.c").read_text())
    daemon.ctl("vm", "add", "vs", "--transport", "virtio", "--kernel", "6.1")
    for n, (lpart, cpart) in enumerate([("host", "vs"), ("vs", "host")]):
        port = 5600 + n
        if cpart == "vs":
            daemon.ctl("service", "add", port)
        base = daemon.listeners()
        srv = daemon.spawn(daemon.run_argv(lpart, [exe, "listen", port]), stdin=subprocess.DEVNULL)
        daemon.wait_listeners(srv, base + 1)
        cid = 2 if lpart == "host" else daemon.cid("vs")
        cli = daemon.spawn(daemon.run_argv(cpart, [exe, "connect", cid, port]), stdin=subprocess.DEVNULL)
        (rs, outs, errs), (rc, outc, errc) = exchange([(srv, None), (cli, None)])
        for who, code, out, err in (("listener", rs, outs, errs), ("connector", rc, outc, errc)):
            text = out.decode(errors="replace")
            assert code == 0 and text.rstrip().endswith("SEQ PASS"), f"{lpart}<-{cpart} {who}:\n{text}\n{err!r}"
            assert "SEQ info too-big ENOMEM" in text, text
            assert "SEQ info recv-eor MSG_EOR" in text, text
