# SPDX-License-Identifier: MIT
"""Issue 11, findings 3 and 5, from the command line: hvsimd, hvsimctl and
hvcat refuse a run or state folder another user could have planted sockets
or links in (a symbolic link, not owned by the user, group- or
world-writable), each with a message that names the path, what is wrong and
what to do; a stopped daemon (SIGSTOP) makes every hvsimctl command fail by
its deadline (HVSIM_REQUEST_TIMEOUT_MS), never hang. Each attack has its
positive control. The planting is done as uid 65534 with setpriv.

Also: per-VM owners (vm add --owner: only that uid attaches as the VM, tried
with uids 65534 and 65533); a process attached as one partition acting as
another (forged bind ids, another VM's ID, a host gateway LISTEN, another
session's ticket, another listener's path or socket file), each refused; and
unused tickets revoked when their route stops holding (service rm, vm
off/reset/rm, the listener closing).

Run with: /usr/bin/python3 -m pytest harness/test_trust.py (HVSIM_BIN as for test_tools.py).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import qemu

BIN = Path(os.environ.get("HVSIM_BIN") or Path(__file__).resolve().parent.parent / "build" / "bin")
NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--inh-caps=-all"]
TIMEOUT = 30


def tool(name):
    path = BIN / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: build it first (make all), or point HVSIM_BIN at the binaries")
    return str(path)


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="hvsim-tr-", dir="/tmp")
    os.chmod(d, 0o755)  # others may enter (uid 65534 plants below), not write
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def run(argv, env=None, timeout=TIMEOUT):
    e = qemu.clean_env()
    e.update(env or {})
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, env=e)


def hvsimd_refuses(args, path, problem):
    r = run([tool("hvsimd")] + args, timeout=10)
    assert r.returncode != 0, f"hvsimd started on a bad folder: {r.stderr}"
    assert path in r.stderr and problem in r.stderr and "HVSIM_DIR" in r.stderr, r.stderr
    return r.stderr


def bad_folders(tmp):
    """(path, expected problem) for each kind of untrusted folder."""
    world = tmp / "world"
    world.mkdir()
    os.chmod(world, 0o1777)  # even sticky, as /tmp is
    group = tmp / "group"
    group.mkdir()
    os.chmod(group, 0o770)
    theirs = tmp / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    good = tmp / "good"
    good.mkdir(mode=0o700)
    link = tmp / "link"
    link.symlink_to(good)
    return [(world, "writable by everyone"), (group, "writable by its group"), (theirs, "owned by uid 65534"),
            (link, "is a symbolic link")]


def test_hvsimd_refuses_untrusted_run_and_state_folders(tmp):
    for path, problem in bad_folders(tmp):
        hvsimd_refuses(["--dir", path], str(path), problem)
        run_ok = tmp / f"run-{path.name}"
        hvsimd_refuses(["--dir", run_ok, "--state-dir", path], str(path), problem)
        # Nothing was created inside the refused folder.
        if path.name != "theirs":
            assert not (path / "admin.sock").exists() and not (path / "state.tmp").exists()


def test_state_file_is_never_written_through_a_planted_link(tmp):
    # uid 65534 makes a world-writable state folder with links to a file of ours.
    victim = tmp / "victim"
    victim.write_text("precious\n")
    state = tmp / "state"
    state.mkdir()
    os.chmod(state, 0o777)
    os.chown(state, 65534, 65534)
    subprocess.run(NOBODY + ["ln", "-s", str(victim), str(state / "state.tmp")], check=True)
    subprocess.run(NOBODY + ["ln", "-s", str(victim), str(state / "state")], check=True)
    hvsimd_refuses(["--dir", tmp / "run", "--state-dir", state], str(state), "owned by uid 65534")
    assert victim.read_text() == "precious\n"


def test_daemon_creates_its_folders_private_and_works(tmp):
    # Positive control: missing folders are made 0700 and used.
    run_dir, state = tmp / "run", tmp / "state"
    d = qemu.Daemon(run_dir, tool("hvsimd"), state)
    d.log_path = tmp / "hvsimd.log"  # the run folder is the daemon's to make
    try:
        d.start()
        for p in (run_dir, run_dir / "vm", state):
            st = p.lstat()
            assert (st.st_mode & 0o777) == 0o700 and st.st_uid == os.geteuid(), p
        d.ctl("vm", "add", "vm1")
        assert (state / "state").is_file()
        r = run([tool("hvsimctl"), "--dir", run_dir, "vm", "list"])
        assert r.returncode == 0 and "vm1" in r.stdout, r.stderr
    finally:
        d.stop()


def test_clients_never_speak_to_a_socket_planted_by_another_user(tmp):
    """uid 65534 makes a world-writable HVSIM_DIR with its own host.sock and
    admin.sock listening: neither hvcat nor hvsimctl connects to them."""
    planted = tmp / "planted"
    planted.mkdir()
    os.chown(planted, 65534, 65534)
    script = (
        "import socket, sys, os, select\n"
        "d = sys.argv[1]\n"
        "os.chmod(d, 0o777)\n"
        "ls = []\n"
        "for n in ('host.sock', 'admin.sock'):\n"
        "    l = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); l.bind(os.path.join(d, n)); l.listen(8)\n"
        "    ls.append(l)\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "r, _, _ = select.select(ls, [], [], 0)\n"
        "print('connected' if r else 'untouched', flush=True)\n"
    )
    p = subprocess.Popen(NOBODY + ["/usr/bin/python3", "-c", script, str(planted)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        r = run([tool("hvcat"), "parent:5000"], env={"HVSIM_DIR": str(planted)})
        assert r.returncode != 0
        r = run([tool("hvsimctl"), "--dir", planted, "vm", "list"])
        assert r.returncode != 0
        assert str(planted) in r.stderr and "owned by uid 65534" in r.stderr, r.stderr
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "untouched", "a client spoke to the planted socket"
    finally:
        p.kill()
        p.wait()


# ---- finding 5: a stopped daemon ------------------------------------------------------------

COMMANDS = [["status"], ["vm", "list"], ["vm", "add", "vmx"], ["vm", "pause", "vm1"], ["service", "list"],
            ["service", "add", "5000", "x"], ["settings"], ["set", "refusal_profile", "kvm"], ["vm", "rm", "vm1"]]


def test_every_hvsimctl_command_fails_by_the_deadline_when_the_daemon_is_stopped(tmp):
    d = qemu.Daemon(tmp / "run", tool("hvsimd"), "")
    d.log_path = tmp / "hvsimd.log"
    d.start()
    try:
        d.ctl("vm", "add", "vm1")
        os.kill(d.proc.pid, signal.SIGSTOP)
        for cmd in COMMANDS:
            t0 = time.monotonic()
            r = run([tool("hvsimctl"), "--dir", d.dir] + cmd, env={"HVSIM_REQUEST_TIMEOUT_MS": "300"}, timeout=10)
            took = time.monotonic() - t0
            assert r.returncode != 0, cmd
            assert "did not answer within 300 ms" in r.stderr, (cmd, r.stderr)
            assert took < 2.5, (cmd, took)
        # A process attaching while it is stopped: socket() fails, no hang.
        t0 = time.monotonic()
        r = run([tool("hvcat"), "parent:5000"], env={"HVSIM_DIR": d.dir, "HVSIM_REQUEST_TIMEOUT_MS": "300"},
                timeout=10)
        assert r.returncode != 0 and "ENETDOWN" in r.stderr, r.stderr
        assert time.monotonic() - t0 < 2.5
        os.kill(d.proc.pid, signal.SIGCONT)
        # Positive control: it answers once it runs again. (The requests that
        # timed out were queued in its socket: it may still apply them.)
        r = run([tool("hvsimctl"), "--dir", d.dir, "vm", "list"], env={"HVSIM_REQUEST_TIMEOUT_MS": "3000"})
        assert r.returncode == 0 and "NAME" in r.stdout, r.stderr
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
        d.stop()


# ---- per-VM owners (vm add --owner) ---------------------------------------------------------

OTHER = ["setpriv", "--reuid", "65533", "--regid", "65533", "--clear-groups", "--inh-caps=-all"]


def attach(prefix, run_dir, partition):
    """hvcat as PARTITION (under the setpriv PREFIX, or as root): its stderr.
    Attached, a Windows guest's connect to an unregistered host service is
    refused at once (WSAECONNREFUSED); not attached, socket() gives ENETDOWN."""
    env = {"HVSIM_DIR": str(run_dir), "HVSIM_PARTITION": partition, "HVSIM_REQUEST_TIMEOUT_MS": "3000"}
    r = run(prefix + [tool("hvcat"), "parent:5000"], env=env)
    assert r.returncode != 0
    return r.stderr


def attached(prefix, run_dir, partition):
    err = attach(prefix, run_dir, partition)
    assert ("WSAECONNREFUSED" in err) != ("ENETDOWN" in err), err
    return "WSAECONNREFUSED" in err


def test_vm_owner_alone_attaches_as_its_vm(tmp):
    run_dir, state = tmp / "run", tmp / "state"
    d = qemu.Daemon(run_dir, tool("hvsimd"), state)
    d.log_path = tmp / "hvsimd.log"
    try:
        d.start()
        d.ctl("vm", "add", "own1", "--owner", "65534:65534")
        d.ctl("vm", "add", "own2", "--owner", "65533")
        d.ctl("vm", "add", "plain")
        for name, uid, gid, mode in (("vm/own1.sock", 65534, 65534, 0o660), ("vm/own2.sock", 65533, 0, 0o600),
                                     ("vm/plain.sock", 0, 0, 0o700), ("host.sock", 0, 0, 0o700)):
            st = (run_dir / name).lstat()
            assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (uid, gid, mode), name
        # The folders are searchable, not listable nor writable, by others.
        for p in (run_dir, run_dir / "vm"):
            assert p.lstat().st_mode & 0o777 == 0o711, p
        assert (run_dir / "l").lstat().st_mode & 0o777 == 0o700
        # Each VM's owner attaches as it (positive controls), and root does.
        assert attached(NOBODY, run_dir, "own1")
        assert attached(OTHER, run_dir, "own2")
        assert attached([], run_dir, "own1") and attached([], run_dir, "plain")
        # Nobody attaches as another's VM, as a VM without an owner or as the host.
        for prefix, part in ((NOBODY, "own2"), (NOBODY, "plain"), (NOBODY, "host"), (OTHER, "own1"),
                             (OTHER, "host"), (OTHER, "plain")):
            assert not attached(prefix, run_dir, part), (prefix[2], part)
        # Nor reaches the admin socket.
        r = run(NOBODY + [tool("hvsimctl"), "--dir", run_dir, "vm", "list"])
        assert r.returncode != 0
        # Shown by vm list and its --json, and kept across a restart.
        r = run([tool("hvsimctl"), "--dir", run_dir, "--json", "vm", "list"])
        assert r.returncode == 0, r.stderr
        import json
        owners = {v["name"]: v["owner"] for v in json.loads(r.stdout)}
        assert owners == {"own1": {"uid": 65534, "gid": 65534}, "own2": {"uid": 65533, "gid": None},
                          "plain": None}, owners
        d.stop()
        d.start()
        r = run([tool("hvsimctl"), "--dir", run_dir, "vm", "list"])
        assert r.returncode == 0, r.stderr
        head = r.stdout.splitlines()[0].split()
        rows = {ln.split()[0]: ln.split()[head.index("OWNER")] for ln in r.stdout.splitlines()[1:]}
        assert rows == {"own1": "65534:65534", "own2": "65533", "plain": "-"}, r.stdout
        assert (run_dir / "vm/own1.sock").lstat().st_uid == 65534
        assert attached(NOBODY, run_dir, "own1") and not attached(OTHER, run_dir, "own1")
    finally:
        d.stop()


@pytest.mark.parametrize("bad", ["x", "-1", "1:", ":1", "1:2:3", "4294967295", "99999999999"])
def test_vm_owner_bad_text_is_refused(tmp, bad):
    r = run([tool("hvsimctl"), "--dir", tmp / "nowhere", "vm", "add", "v", "--owner", bad])
    assert r.returncode != 0 and "--owner" in r.stderr and "UID or UID:GID" in r.stderr, r.stderr


# ---- a process attached as one partition acting as another ----------------------------------
# A raw client speaks the control protocol itself (hvproto/proto.h), as a
# hostile process would; the acceptors are libhvsim's own (ctypes), so what
# is refused is what a real service refuses.

import ctypes  # noqa: E402
import re  # noqa: E402
import struct  # noqa: E402
import uuid  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
HDR = struct.Struct("<HHiII")  # struct hvsim_msg_hdr
HELLO, BIND, UNBIND, LISTEN, CONNECT = 1, 3, 5, 6, 8  # HVSIM_MSG_MAP's order
PERS_WINDOWS, PERS_LINUX, PERS_VSOCK_HOST = 0, 1, 2
WILDCARD = uuid.UUID(int=0)
PARENT = uuid.UUID("a42e7cda-d03f-480c-9cc2-a4de20abb878")
REPLY = 440  # sizeof(struct hvsim_msg_connect_reply), no spares asked; checked below against the replies
ENDPOINT = struct.Struct("<16s16s16sII")


def proto_version():
    text = (REPO / "sim/proto/include/hvproto/proto.h").read_text()
    return int(re.search(r"#define HVSIM_PROTO_VERSION (\d+)", text).group(1))


def port_svc(port):
    return uuid.UUID(f"{port:08x}-facb-11e6-bd58-64006a7986d3")


class Raw:
    """A control session of PARTITION, spoken by hand."""

    def __init__(self, run_dir, partition):
        path = run_dir / ("host.sock" if partition == "host" else f"vm/{partition}.sock")
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(5)
        self.s.connect(str(path))
        self.evt = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.seq = 0
        st, body = self.call(HELLO, struct.pack("<II", proto_version(), 0), fd=self.evt[1].fileno())
        assert st == 0, (st, body)
        self.self_id = uuid.UUID(bytes_le=body[:16])

    def call(self, typ, body, fd=None):
        self.seq += 1
        msg = HDR.pack(typ, 0, 0, self.seq, len(body)) + body
        if fd is None:
            self.s.send(msg)
        else:
            socket.send_fds(self.s, [msg], [fd])
        while True:
            data = self.s.recv(300000)
            _, _, st, seq, ln = HDR.unpack_from(data)
            if seq == self.seq:
                return st, data[HDR.size:HDR.size + ln]

    def bind(self, vmid, svc, pers=PERS_WINDOWS):
        st, body = self.call(BIND, struct.pack("<II16s16s", pers, 0, vmid.bytes_le, svc.bytes_le))
        return st, (struct.unpack_from("<Q", body)[0] if st == 0 else None)

    def listen(self, bind_id, uname, gateway=0, fd=None):
        return self.call(LISTEN, struct.pack("<QIIII108s4x", bind_id, 64, 0, gateway, 0, uname.encode()), fd=fd)[0]

    def unbind(self, bind_id):
        return self.call(UNBIND, struct.pack("<Q", bind_id))[0]

    def connect(self, vmid, svc, bind_id=0):
        st, body = self.call(CONNECT, struct.pack("<QIIII16s16sII", bind_id, PERS_WINDOWS, 0, 1000, 1,
                                                  vmid.bytes_le, svc.bytes_le, 0, 0))
        assert st == 0 and len(body) == REPLY, (st, len(body))
        return body

    def close(self):
        self.s.close()
        for e in self.evt:
            e.close()


def verdict(rep):
    return struct.unpack_from("<I", rep)[0]  # 0: OK


def local_endpoint(rep):
    vmid, svc, part, _, _ = ENDPOINT.unpack_from(rep, 32)
    return uuid.UUID(bytes_le=vmid), uuid.UUID(bytes_le=svc), uuid.UUID(bytes_le=part)


def listener_path(rep):
    return rep[144:252].split(b"\0")[0].decode()


def present(path, rep, name_rep=None):
    """Connect to the listener file PATH as a connector would: bound to the
    tagged name of NAME_REP's ticket (REP's own when None), then REP's ticket."""
    n = name_rep or rep
    conn_id = struct.unpack_from("<Q", n, 272 + 8)[0]
    name = f"\0hvsim-c-{conn_id:016x}-{n[252:268].hex()}"
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.bind(name)
    c.connect(path)
    c.send(rep[272:424])
    return c


ACCEPTOR = r"""
import ctypes, os, select, socket, struct, sys, uuid
lib = ctypes.CDLL(sys.argv[1], use_errno=True)
vm, svc = uuid.UUID(sys.argv[2]), uuid.UUID(sys.argv[3])
fd = lib.hvsim_socket(34, socket.SOCK_STREAM | socket.SOCK_NONBLOCK, 1)
a = struct.pack("<HH16s16s", 34, 0, vm.bytes_le, svc.bytes_le)
assert fd >= 0 and lib.hvsim_bind(fd, a, 36) == 0 and lib.hvsim_listen(fd, 64) == 0, ctypes.get_errno()
print(socket.socket(fileno=os.dup(fd)).getsockname(), flush=True)


def quiet():
    # Until libhvsim's helper thread has applied every event the daemon sent
    # (they were sent before the admin command's reply): no socket of ours has
    # unread data and every other thread sleeps.
    import array, fcntl, termios
    main = str(threading.get_native_id())
    for _ in range(5000):
        busy = False
        for f in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{f}").startswith("socket:") and int(f) != fd:
                    n = array.array("i", [0])
                    fcntl.ioctl(int(f), termios.FIONREAD, n)
                    busy = busy or n[0] > 0
            except OSError:
                pass
        for t in os.listdir("/proc/self/task"):
            if t != main:
                with open(f"/proc/self/task/{t}/stat") as st:
                    busy = busy or st.read().rsplit(")", 1)[1].split()[0] != "S"
        if not busy:
            return
        select.select([], [], [], 0.001)
    raise SystemExit("the helper thread never settled")


import threading
for line in sys.stdin:
    if line.strip() == "close":
        lib.hvsim_close(fd)
        print("closed", flush=True)
        continue
    quiet()
    select.select([fd], [], [], 0.3)
    c = lib.hvsim_accept4(fd, None, None, 0)
    print("taken" if c >= 0 else "none", flush=True)
    if c >= 0:
        lib.hvsim_close(c)
"""


def sanitizer_preload(env):
    """A sanitizer-built libhvsim.so loaded into Python with ctypes needs its
    runtime loaded first (ASan refuses to start otherwise): preload it, and
    leave Python's own allocations out of the leak check."""
    for part, lib in (("asan", "libasan.so"), ("ubsan", "libubsan.so")):
        if part in BIN.parts:
            path = subprocess.run(["gcc", f"-print-file-name={lib}"], capture_output=True, text=True).stdout.strip()
            env["LD_PRELOAD"] = path
            env["ASAN_OPTIONS"] = "detect_leaks=0:" + env.get("ASAN_OPTIONS", "")
    if "tsan" in BIN.parts:
        pytest.skip("a ThreadSanitizer libhvsim.so cannot be loaded into Python with ctypes")


class Acceptor:
    """A libhvsim listener of PARTITION on {vmid, svc}: .path is its file;
    taken() is 1 when a non-blocking accept takes a connection now."""

    def __init__(self, run_dir, partition, vmid, svc):
        e = qemu.clean_env()
        e.update(HVSIM_DIR=str(run_dir), HVSIM_PARTITION=partition)
        sanitizer_preload(e)
        lib = BIN.parent / "lib" / "libhvsim.so"
        self.p = subprocess.Popen(["/usr/bin/python3", "-c", ACCEPTOR, str(lib), str(vmid), str(svc)], env=e,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.path = self.p.stdout.readline().strip()
        assert self.path.startswith(str(run_dir)), self.path

    def taken(self):
        self.p.stdin.write("accept\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip() == "taken"

    def close_listener(self):
        self.p.stdin.write("close\n")
        self.p.stdin.flush()
        assert self.p.stdout.readline().strip() == "closed"

    def close(self):
        self.p.kill()
        self.p.wait()


@pytest.fixture
def two_vms(tmp):
    d = qemu.Daemon(tmp / "run", tool("hvsimd"), "")
    d.log_path = tmp / "hvsimd.log"
    d.start()
    d.ctl("vm", "add", "vm1")
    d.ctl("vm", "add", "vm2")
    d.ctl("service", "add", "7001", "one")
    d.ctl("service", "add", "7002", "two")
    yield d
    d.stop()


def test_outsider_forged_bind_id_of_another_partition(two_vms):
    run_dir = Path(two_vms.dir)
    a, b = Raw(run_dir, "vm1"), Raw(run_dir, "vm2")
    try:
        st, x = a.bind(WILDCARD, port_svc(7101))
        assert st == 0
        # vm2 names vm1's bind id: LISTEN and UNBIND do nothing to it...
        assert b.listen(x, "0" * 24) != 0
        assert b.unbind(x) == 0  # acknowledged (a close), but not vm1's bind
        # ... and a CONNECT through it is vm2's own, unbound (not as vm1's socket).
        acc = Acceptor(run_dir, "host", WILDCARD, port_svc(7001))
        rep = b.connect(PARENT, port_svc(7001), bind_id=x)
        assert verdict(rep) == 0
        _, svc, part = local_endpoint(rep)
        assert part == b.self_id and svc != port_svc(7101), (part, svc)
        # Positive controls: vm1's own uses of its bind work, and it was not removed.
        rep = a.connect(PARENT, port_svc(7001), bind_id=x)
        assert verdict(rep) == 0 and local_endpoint(rep)[1:] == (port_svc(7101), a.self_id)
        assert a.listen(x, "1" * 24) == 0
        acc.close()
    finally:
        a.close()
        b.close()


def test_outsider_another_vms_id_and_a_gateway_from_the_host(two_vms):
    run_dir = Path(two_vms.dir)
    a, b, h = Raw(run_dir, "vm1"), Raw(run_dir, "vm2"), Raw(run_dir, "host")
    try:
        # vm2 binds as vm1 (its VM ID): refused; its own ID: the control.
        assert b.bind(a.self_id, port_svc(7102))[0] != 0
        assert b.bind(b.self_id, port_svc(7102))[0] == 0
        # vm2 connects to vm1 directly (guests reach only their parent): not OK.
        Acceptor(run_dir, "vm1", WILDCARD, port_svc(7103))
        assert verdict(b.connect(a.self_id, port_svc(7103))) != 0
        # A guest may not claim the host's CID addressing, nor the host a VM's gateway.
        assert b.bind(WILDCARD, port_svc(7104), pers=PERS_VSOCK_HOST)[0] != 0
        st, hb = h.bind(WILDCARD, port_svc(7105), pers=PERS_VSOCK_HOST)
        assert st == 0
        chan = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        assert h.listen(hb, "2" * 24, gateway=1, fd=chan[1].fileno()) != 0
        # Positive control: the VM's own process may be its gateway.
        st, gb = a.bind(WILDCARD, port_svc(7105), pers=PERS_LINUX)
        assert st == 0
        assert a.listen(gb, "3" * 24, gateway=1, fd=chan[1].fileno()) == 0
    finally:
        for r in (a, b, h):
            r.close()


def test_outsider_another_sessions_ticket_and_another_listener(two_vms):
    run_dir = Path(two_vms.dir)
    acc = Acceptor(run_dir, "host", WILDCARD, port_svc(7001))
    other = Acceptor(run_dir, "vm1", WILDCARD, port_svc(7106))
    a, b = Raw(run_dir, "vm1"), Raw(run_dir, "vm2")
    try:
        rep_a, rep_b = a.connect(PARENT, port_svc(7001)), b.connect(PARENT, port_svc(7001))
        assert verdict(rep_a) == 0 and verdict(rep_b) == 0
        path = listener_path(rep_a)
        assert path == acc.path
        # A's ticket on a connection bound to B's name: refused.
        c = present(path, rep_a, name_rep=rep_b)
        assert not acc.taken(), "a ticket was accepted on another session's connection"
        c.close()
        # A ticket for the host's listener presented at vm1's listener: refused.
        c = present(other.path, rep_b)
        assert not other.taken(), "a ticket was accepted by a listener it was not issued for"
        c.close()
        # Positive controls: each ticket on its own session's name, at its listener.
        c3, c4 = present(path, rep_a), present(path, rep_b)
        assert acc.taken() and acc.taken()
        for c in (c3, c4):
            c.close()
    finally:
        for x in (a, b, acc, other):
            x.close()


def test_outsider_cannot_claim_another_listeners_file(two_vms):
    """A guest learns the host listener's file from its CONNECT reply, LISTENs
    on a bind of its own under that name, then closes it: the daemon must
    neither route to it as the guest's nor remove the host's file."""
    run_dir = Path(two_vms.dir)
    acc = Acceptor(run_dir, "host", WILDCARD, port_svc(7001))
    a, b = Raw(run_dir, "vm1"), Raw(run_dir, "vm2")
    try:
        name = os.path.basename(listener_path(a.connect(PARENT, port_svc(7001))))
        st, x = a.bind(WILDCARD, port_svc(7107))
        assert st == 0
        assert a.listen(x, name) != 0, "a guest registered the host listener's file as its own"
        a.unbind(x)
        assert os.path.exists(acc.path), "the host listener's file was removed by a guest's close"
        rep = b.connect(PARENT, port_svc(7001))
        c = present(acc.path, rep)
        assert acc.taken()
        c.close()
        # Positive control: a name of its own is accepted.
        st, y = a.bind(WILDCARD, port_svc(7108))
        assert st == 0 and a.listen(y, "4" * 24) == 0
    finally:
        for x in (a, b, acc):
            x.close()


# ---- unused tickets are revoked when their route stops holding ------------------------------

def test_service_rm_revokes_unused_tickets(two_vms):
    run_dir = Path(two_vms.dir)
    acc = Acceptor(run_dir, "host", WILDCARD, port_svc(7001))
    a = Raw(run_dir, "vm1")
    try:
        c = present(acc.path, a.connect(PARENT, port_svc(7001)))
        assert acc.taken(), "positive control: a fresh ticket"
        c.close()
        rep = a.connect(PARENT, port_svc(7001))
        two_vms.ctl("service", "rm", "7001")
        c = present(acc.path, rep)
        assert not acc.taken(), "a ticket issued before service rm was accepted after it"
        c.close()
        # The route holds again: a new ticket is good.
        two_vms.ctl("service", "add", "7001", "one")
        c = present(acc.path, a.connect(PARENT, port_svc(7001)))
        assert acc.taken(), "a ticket issued after service add was refused"
        c.close()
    finally:
        a.close()
        acc.close()


@pytest.mark.parametrize("op", ["off", "reset", "rm"])
def test_vm_off_reset_rm_revoke_the_vms_unused_tickets(two_vms, op):
    run_dir = Path(two_vms.dir)
    acc = Acceptor(run_dir, "host", WILDCARD, port_svc(7001))
    guest = Acceptor(run_dir, "vm1", WILDCARD, port_svc(7109))
    a, b, h = Raw(run_dir, "vm1"), Raw(run_dir, "vm2"), Raw(run_dir, "host")
    try:
        rep_a, rep_b = a.connect(PARENT, port_svc(7001)), b.connect(PARENT, port_svc(7001))
        rep_h = h.connect(a.self_id, port_svc(7109))  # the host to vm1's listener
        assert verdict(rep_a) == 0 and verdict(rep_b) == 0 and verdict(rep_h) == 0
        two_vms.ctl("vm", op, "vm1")
        c1 = present(acc.path, rep_a)
        assert not acc.taken(), f"vm1's ticket was accepted after vm {op}"
        try:
            c2 = present(guest.path, rep_h)
            assert not guest.taken(), f"a ticket to vm1's listener was accepted after vm {op}"
        except FileNotFoundError:  # vm rm took the VM's listeners (and their files) with it
            assert op == "rm"
            c2 = socket.socket()
        # Positive control: vm2's ticket, issued at the same time, is good.
        c3 = present(acc.path, rep_b)
        assert acc.taken(), "another VM's ticket was revoked"
        if op != "rm":
            two_vms.ctl("vm", "start", "vm1")
            c4 = present(acc.path, a.connect(PARENT, port_svc(7001)))
            assert acc.taken(), f"a ticket issued after vm {op} and start was refused"
            c4.close()
        for c in (c1, c2, c3):
            c.close()
    finally:
        for x in (a, b, h, acc, guest):
            x.close()


def test_listener_close_voids_its_unused_tickets(two_vms):
    run_dir = Path(two_vms.dir)
    acc = Acceptor(run_dir, "host", WILDCARD, port_svc(7001))
    a = Raw(run_dir, "vm1")
    try:
        rep = a.connect(PARENT, port_svc(7001))
        acc.close_listener()
        with pytest.raises((FileNotFoundError, ConnectionRefusedError)):
            present(acc.path, rep)
        # A new listener on the same address gets a new file and key: the old ticket is nothing there.
        acc2 = Acceptor(run_dir, "host", WILDCARD, port_svc(7001))
        c = present(acc2.path, rep)
        assert not acc2.taken(), "a ticket of a closed listener was accepted by its successor"
        c.close()
        c = present(acc2.path, a.connect(PARENT, port_svc(7001)))
        assert acc2.taken(), "positive control: the new listener's own ticket"
        c.close()
        acc2.close()
    finally:
        a.close()
        acc.close()
