# SPDX-License-Identifier: MIT
"""Issue 11, findings 3 and 5, from the command line: hvsimd, hvsimctl and
hvcat refuse a run or state folder another user could have planted sockets
or links in (a symbolic link, not owned by the user, group- or
world-writable), each with a message that names the path, what is wrong and
what to do; a stopped daemon (SIGSTOP) makes every hvsimctl command fail by
its deadline (HVSIM_REQUEST_TIMEOUT_MS), never hang. Each attack has its
positive control. The planting is done as uid 65534 with setpriv.

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
        rows = {ln.split()[0]: ln.split()[-1] for ln in r.stdout.splitlines()[1:]}
        assert rows == {"own1": "65534:65534", "own2": "65533", "plain": "-"}, r.stdout
        assert (run_dir / "vm/own1.sock").lstat().st_uid == 65534
        assert attached(NOBODY, run_dir, "own1") and not attached(OTHER, run_dir, "own1")
    finally:
        d.stop()


@pytest.mark.parametrize("bad", ["x", "-1", "1:", ":1", "1:2:3", "4294967295", "99999999999"])
def test_vm_owner_bad_text_is_refused(tmp, bad):
    r = run([tool("hvsimctl"), "--dir", tmp / "nowhere", "vm", "add", "v", "--owner", bad])
    assert r.returncode != 0 and "--owner" in r.stderr and "UID or UID:GID" in r.stderr, r.stderr
