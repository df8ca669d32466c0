# SPDX-License-Identifier: MIT
"""Tests of the command-line tools against a real hvsimd: hvsimctl (VMs,
services, .reg import, settings, persistence), hvcat (both personalities,
1 MiB each way) and the host-service/guest-service examples.

Run with: /usr/bin/python3 -m pytest harness/test_tools.py
Binaries come from build/bin of the repository, or from $HVSIM_BIN.

Every daemon is started with --ready-fd, and every listener is waited for
through `hvsimctl status --json`: nothing here sleeps to synchronise.
"""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

import qemu

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HVSIM_BIN") or REPO / "build" / "bin")
TIMEOUT = 30  # seconds; a bound for hangs, never a wait
EXAMPLE_SERVICE = "0000c0de-facb-11e6-bd58-64006a7986d3"  # the examples' default
GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def tool(name):
    path = BIN / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: build it first (make all), or point HVSIM_BIN at the binaries")
    return str(path)


class Daemon(qemu.Daemon):
    """One hvsimd in its own folder; state_dir may be shared by two runs.
    Processes started with spawn() are killed at stop()."""

    def __init__(self, run_dir, state_dir):
        super().__init__(run_dir, tool("hvsimd"), state_dir)

    def stop(self):
        """The exit status; a daemon that ignored SIGTERM fails the test."""
        rc = super().stop(TIMEOUT)
        self.proc = None  # may start again (persistence tests)
        if isinstance(rc, str):
            pytest.fail(f"hvsimd {rc}:\n{self.log()}")
        return rc

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def spawn(self, argv, partition=None, stdin=None, stdout=None):
        """A background process of this daemon's world, killed at teardown."""
        p = subprocess.Popen([str(a) for a in argv], env=self.env(partition), stdin=stdin or subprocess.DEVNULL,
                             stdout=stdout or subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        self.children.append(p)
        return p


clean_env = qemu.clean_env


def short_tmpdir():
    # Unix socket paths are at most 107 bytes; pytest's tmp_path can be longer.
    return tempfile.mkdtemp(prefix="hvsim-t-", dir="/tmp")


@pytest.fixture
def state_dir():
    d = short_tmpdir()
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_daemon(request, state_dir):
    """Start daemons on state_dir (each in a fresh run folder); all stopped at the end."""
    made = []

    def make():
        run = short_tmpdir()
        d = Daemon(run, state_dir)
        made.append(d)
        d.start()
        return d

    def fin():
        bad = []
        for d in made:
            rc = d.stop()
            if rc != 0:
                bad.append(f"hvsimd in {d.dir} exited {rc} on SIGTERM:\n{d.log()}")
            shutil.rmtree(d.dir, ignore_errors=True)
        if bad:
            pytest.fail("\n".join(bad))

    request.addfinalizer(fin)
    return make


@pytest.fixture
def daemon(make_daemon):
    return make_daemon()


def table(text):
    """Rows of an aligned table as dicts keyed by its header."""
    lines = text.rstrip("\n").split("\n")
    header = re.split(r"\s{2,}", lines[0].strip())
    return header, [dict(zip(header, re.split(r"\s{2,}", line.rstrip(), maxsplit=len(header) - 1)))
                    for line in lines[1:]]


def vm(daemon, name):
    found = [v for v in daemon.ctl("vm", "list", json_out=True) if v["name"] == name]
    return found[0] if found else None


def one_error_line(r, code=1):
    assert r.returncode == code, f"exit {r.returncode}, expected {code}: {r.stderr}"
    lines = r.stderr.strip("\n").split("\n")
    assert lines[0].startswith("hvsimctl: "), r.stderr
    return lines[0]


# ---- hvsimctl: VMs ---------------------------------------------------------------------


def test_vm_add_list_human_and_json(daemon):
    r = daemon.ctl("vm", "add", "vm1")
    header, rows = table(r.stdout)
    assert header == ["NAME", "ID", "KIND", "STATE", "CID", "PROCS", "TRANSPORT", "KERNEL", "OWNER", "GROUPS"]
    assert rows[0]["NAME"] == "vm1" and rows[0]["KIND"] == "classic" and rows[0]["STATE"] == "running"
    assert rows[0]["TRANSPORT"] == "hv_sock" and rows[0]["KERNEL"] == "6.1"
    assert GUID_RE.match(rows[0]["ID"])

    fixed = "01234567-89ab-cdef-0123-456789abcdef"
    added = daemon.ctl("vm", "add", "vm2", "--kind", "hcs", "--id", "{%s}" % fixed.upper(), json_out=True)
    assert added["name"] == "vm2" and added["id"] == fixed and added["kind"] == "hcs"

    header, rows = table(daemon.ctl("vm", "list").stdout)
    assert header == ["NAME", "ID", "KIND", "STATE", "CID", "PROCS", "TRANSPORT", "KERNEL", "OWNER", "GROUPS"]
    assert [r["NAME"] for r in rows] == ["vm1", "vm2"]
    # Columns are aligned: every row starts its ID where the header does.
    lines = daemon.ctl("vm", "list").stdout.splitlines()
    assert len({line.index(r["ID"]) for line, r in zip(lines[1:], rows)} | {lines[0].index("ID")}) == 1

    vms = daemon.ctl("vm", "list", json_out=True)
    assert isinstance(vms, list) and [v["name"] for v in vms] == ["vm1", "vm2"]
    for v in vms:
        assert set(v) == {"name", "id", "kind", "state", "cid", "procs", "transport", "kernel", "owner", "groups"}
        assert v["owner"] is None and v["groups"] == []
        assert GUID_RE.match(v["id"]) and isinstance(v["cid"], int) and v["cid"] >= 3 and v["procs"] == 0
    assert vms[0]["cid"] != vms[1]["cid"]


def test_vm_transport_and_kernel_chosen_shown_and_kept(daemon):
    added = daemon.ctl("vm", "add", "kvm1", "--transport", "virtio", "--kernel", "6.12", json_out=True)
    assert added["transport"] == "virtio" and added["kernel"] == "6.12"
    plain = daemon.ctl("vm", "add", "hv1", json_out=True)
    assert plain["transport"] == "hv_sock" and plain["kernel"] == "6.1"
    newest = daemon.ctl("vm", "add", "kvm2", "--transport", "virtio", "--kernel", "newest", json_out=True)
    assert newest["kernel"] == "newest"
    header, rows = table(daemon.ctl("vm", "list").stdout)
    by = {r["NAME"]: r for r in rows}
    assert by["kvm1"]["TRANSPORT"] == "virtio" and by["kvm1"]["KERNEL"] == "6.12"
    r = daemon.ctl("vm", "add", "bad", "--transport", "vmci", check=False)
    assert r.returncode != 0 and "hv_sock or virtio" in r.stderr
    r = daemon.ctl("vm", "add", "bad", "--kernel", "5.10", check=False)
    assert r.returncode != 0 and "6.1, 6.12 or newest" in r.stderr


def test_vm_groups_chosen_shown_and_checked(daemon):
    """vm add --group: virtio VMs only; the names are checked by hvsimd and
    the error names the option, the group and what was expected."""
    added = daemon.ctl("vm", "add", "kvm1", "--transport", "virtio", "--group", "lab+ci.2", json_out=True)
    assert added["groups"] == ["lab", "ci.2"]
    daemon.ctl("vm", "add", "kvm2", "--transport", "virtio")
    header, rows = table(daemon.ctl("vm", "list").stdout)
    by = {r["NAME"]: r for r in rows}
    assert by["kvm1"]["GROUPS"] == "lab+ci.2" and by["kvm2"]["GROUPS"] == "-"
    line = one_error_line(daemon.ctl("vm", "add", "hv1", "--group", "lab", check=False))
    assert "--group" in line and "virtio" in line and "Hyper-V has no path between sibling VMs" in line, line
    for bad, why in (("a++b", "group 2 is empty"), ("a b", "character ' '"), ("x+x", "'x' is named twice"),
                     ("a" * 32, "32 characters long: expected at most 31"), ("+".join("abcdefghi"), "at most 8 groups")):
        line = one_error_line(daemon.ctl("vm", "add", "bad", "--transport", "virtio", "--group", bad, check=False))
        assert "--group" in line and why in line, (bad, line)
    assert [v["name"] for v in daemon.ctl("vm", "list", json_out=True)] == ["kvm1", "kvm2"], "no refused VM stays"


def test_vm_power_operations(daemon):
    daemon.ctl("vm", "add", "vm1")
    vm_id = vm(daemon, "vm1")["id"]

    daemon.ctl("vm", "pause", "vm1")
    assert vm(daemon, "vm1")["state"] == "paused"
    line = one_error_line(daemon.ctl("vm", "pause", "vm1", check=False))
    assert "vm pause" in line and "not running" in line

    daemon.ctl("vm", "resume", vm_id)  # by GUID as well as by name
    assert vm(daemon, "vm1")["state"] == "running"
    line = one_error_line(daemon.ctl("vm", "resume", "vm1", check=False))
    assert "not paused" in line

    daemon.ctl("vm", "reset", "vm1")
    assert vm(daemon, "vm1")["state"] == "running"
    daemon.ctl("vm", "off", "vm1")
    assert vm(daemon, "vm1")["state"] == "off"
    daemon.ctl("vm", "start", "vm1")
    assert vm(daemon, "vm1")["state"] == "running"

    line = one_error_line(daemon.ctl("vm", "pause", "nosuch", check=False))
    assert "'nosuch'" in line


def test_vm_rm_by_name_and_guid(daemon):
    daemon.ctl("vm", "add", "vm1")
    v2 = daemon.ctl("vm", "add", "vm2", json_out=True)
    daemon.ctl("vm", "rm", "vm1")
    assert [v["name"] for v in daemon.ctl("vm", "list", json_out=True)] == ["vm2"]
    daemon.ctl("vm", "rm", v2["id"])
    assert daemon.ctl("vm", "list", json_out=True) == []
    line = one_error_line(daemon.ctl("vm", "rm", "vm1", check=False))
    assert "vm rm" in line and "'vm1'" in line


def test_duplicate_vm_name(daemon):
    daemon.ctl("vm", "add", "vm1")
    r = daemon.ctl("vm", "add", "vm1", check=False)
    line = one_error_line(r, 1)
    assert line == "hvsimctl: vm add: a VM named 'vm1' already exists"
    assert r.stderr.count("\n") == 1 and r.stdout == ""


def test_bad_arguments_are_named(daemon):
    line = one_error_line(daemon.ctl("vm", "add", "vm1", "--id", "xyz", check=False), 1)
    assert "--id" in line and "'xyz'" in line and "GUID" in line
    line = one_error_line(daemon.ctl("vm", "add", "vm1", "--kind", "fancy", check=False), 1)
    assert "'fancy'" in line and "classic or hcs" in line
    line = one_error_line(daemon.ctl("service", "add", "xyz", check=False), 1)
    assert line.startswith("hvsimctl: service add: 'xyz' is not a GUID or a port number")
    line = one_error_line(daemon.ctl("service", "rm", "12345678-1234", check=False), 1)
    assert "'12345678-1234'" in line
    # Usage errors: exit 2 with the command's usage line.
    r = daemon.ctl("vm", "add", check=False)
    assert r.returncode == 2 and "usage: hvsimctl" in r.stderr and "vm add NAME" in r.stderr
    r = daemon.ctl("vm", "frobnicate", "x", check=False)
    assert r.returncode == 2 and "unknown command" in r.stderr
    r = daemon.ctl("vm", "list", "--bogus", check=False)
    assert r.returncode == 2 and "'--bogus'" in r.stderr
    assert vm(daemon, "vm1") is None


def test_vm_hcs_service_table(daemon):
    daemon.ctl("vm", "add", "classic1")
    daemon.ctl("vm", "add", "hcs1", "--kind", "hcs")
    daemon.ctl("vm", "hcs", "hcs1", "--service", "5000", "--bind", "deny", "--allow-wildcard", "1")
    daemon.ctl("vm", "hcs", "hcs1", "--service", str(uuid.uuid4()), "--connect=deny", "--disabled", "1")
    line = one_error_line(daemon.ctl("vm", "hcs", "classic1", "--service", "5000", check=False))
    assert "vm hcs" in line and "hcs" in line
    line = one_error_line(daemon.ctl("vm", "hcs", "hcs1", "--service", "5000", "--bind", "maybe", check=False))
    assert "--bind" in line and "'maybe'" in line and "allow or deny" in line
    r = daemon.ctl("vm", "hcs", "hcs1", check=False)
    assert r.returncode == 2 and "--service" in r.stderr


def test_daemon_unreachable_names_the_folder(tmp_path):
    missing = tmp_path / "no-daemon-here"
    r = subprocess.run([tool("hvsimctl"), "--dir", str(missing), "vm", "list"], capture_output=True, text=True,
                       timeout=TIMEOUT, env=clean_env())
    assert r.returncode == 1
    assert str(missing) in r.stderr and "daemon" in r.stderr


# ---- hvsimctl: services ----------------------------------------------------------------


def test_service_add_list_rm(daemon):
    r = daemon.ctl("service", "add", "5000", "Port five thousand")
    header, rows = table(r.stdout)
    assert header == ["SERVICE ID", "PORT", "ELEMENT NAME"]
    assert rows == [{"SERVICE ID": "00001388-facb-11e6-bd58-64006a7986d3", "PORT": "5000",
                     "ELEMENT NAME": "Port five thousand"}]

    svc = str(uuid.uuid4())
    added = daemon.ctl("service", "add", svc, 'Quote " and \\ back', json_out=True)
    assert added == {"id": svc, "port": None, "element_name": 'Quote " and \\ back'}
    daemon.ctl("service", "add", "0x808")  # hex port, no name

    listed = {s["id"]: s for s in daemon.ctl("service", "list", json_out=True)}
    assert listed["00001388-facb-11e6-bd58-64006a7986d3"]["port"] == 5000
    assert listed[svc]["port"] is None and listed[svc]["element_name"] == 'Quote " and \\ back'
    assert listed["00000808-facb-11e6-bd58-64006a7986d3"] == {
        "id": "00000808-facb-11e6-bd58-64006a7986d3", "port": 2056, "element_name": ""}

    header, rows = table(daemon.ctl("service", "list").stdout)
    by_id = {r["SERVICE ID"]: r for r in rows}
    assert by_id[svc]["PORT"] == "-"
    assert by_id["00001388-facb-11e6-bd58-64006a7986d3"]["PORT"] == "5000"

    daemon.ctl("service", "rm", "5000")
    daemon.ctl("service", "rm", svc)
    left = [s["id"] for s in daemon.ctl("service", "list", json_out=True)]
    assert left == ["00000808-facb-11e6-bd58-64006a7986d3"]
    line = one_error_line(daemon.ctl("service", "rm", svc, check=False))
    assert "service rm" in line and svc in line


def test_service_import_reg(daemon, tmp_path):
    reg = tmp_path / "services.reg"
    reg.write_text(
        "Windows Registry Editor Version 5.00\r\n\r\n"
        "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Virtualization\\"
        "GuestCommunicationServices\\00000808-facb-11e6-bd58-64006a7986d3]\r\n"
        '"ElementName"="My service"\r\n', encoding="utf-8", newline="")
    r = daemon.ctl("service", "import-reg", reg)
    assert "imported 1 service" in r.stdout
    services = daemon.ctl("service", "list", json_out=True)
    assert {"id": "00000808-facb-11e6-bd58-64006a7986d3", "port": 2056, "element_name": "My service"} in services

    bad = tmp_path / "bad.reg"
    bad.write_text("not a registry file\n")
    line = one_error_line(daemon.ctl("service", "import-reg", bad, check=False))
    assert "import-reg" in line and str(bad) in line


# ---- hvsimctl: settings, status, persistence -------------------------------------------


def test_settings_get_set(daemon):
    text = daemon.ctl("settings").stdout
    pairs = dict(line.split("=", 1) for line in text.splitlines())
    assert pairs["windows_connect_timeout_ms"] == "2000" and pairs["refusal_profile"] == "hyperv"
    assert daemon.ctl("settings", json_out=True) == pairs

    assert daemon.ctl("get", "refusal_profile").stdout == "hyperv\n"
    daemon.ctl("set", "refusal_profile", "kvm")
    daemon.ctl("set", "windows_connect_timeout_ms", "30000")
    assert daemon.ctl("get", "refusal_profile").stdout == "kvm\n"
    assert daemon.ctl("get", "windows_connect_timeout_ms", json_out=True) == {
        "name": "windows_connect_timeout_ms", "value": "30000"}

    line = one_error_line(daemon.ctl("set", "windows_connect_timeout_ms", "bogus", check=False))
    assert "windows_connect_timeout_ms" in line and "1..300000" in line and "'bogus'" in line
    line = one_error_line(daemon.ctl("set", "no_such_setting", "1", check=False))
    assert "no_such_setting" in line
    line = one_error_line(daemon.ctl("get", "no_such_setting", check=False))
    assert "no_such_setting" in line
    assert daemon.ctl("get", "windows_connect_timeout_ms").stdout == "30000\n"


def test_status(daemon):
    daemon.ctl("vm", "add", "vm1")
    st = daemon.ctl("status", json_out=True)
    assert st["vms"] == 1 and st["services"] == 0 and st["listeners"] == 0
    assert st["dir"] == daemon.dir and st["pid"] == daemon.proc.pid
    human = daemon.ctl("status").stdout
    assert re.search(r"^vms\s+1$", human, re.M) and re.search(r"^listeners\s+0$", human, re.M)


def test_state_persists_across_restart(make_daemon):
    first = make_daemon()
    v = first.ctl("vm", "add", "keep", "--kind", "hcs", json_out=True)
    first.ctl("vm", "off", "keep")
    first.ctl("vm", "add", "kvm", "--transport", "virtio", "--kernel", "newest", "--group", "lab+ci")
    first.ctl("service", "add", "5000", "kept service")
    first.ctl("set", "linux_connect_timeout_ms", "1234")
    assert first.stop() == 0, first.log()

    second = make_daemon()  # a new run folder, the same --state-dir
    kept = vm(second, "keep")
    assert kept is not None and kept["id"] == v["id"] and kept["kind"] == "hcs" and kept["cid"] == v["cid"]
    assert kept["state"] == "off"
    assert kept["transport"] == "hv_sock" and kept["kernel"] == "6.1"
    assert vm(second, "kvm")["transport"] == "virtio" and vm(second, "kvm")["kernel"] == "newest"
    assert vm(second, "kvm")["groups"] == ["lab", "ci"] and kept["groups"] == []
    assert {"id": "00001388-facb-11e6-bd58-64006a7986d3", "port": 5000, "element_name": "kept service"} in \
        second.ctl("service", "list", json_out=True)
    assert second.ctl("get", "linux_connect_timeout_ms").stdout == "1234\n"


def test_service_import_reg_utf16_as_regedit_writes_it(daemon, tmp_path):
    text = ("Windows Registry Editor Version 5.00\r\n\r\n"
            "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Virtualization\\"
            "GuestCommunicationServices]\r\n\r\n"
            "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Virtualization\\"
            "GuestCommunicationServices\\999E53D4-3D5C-4C3E-8779-BED06EC056E1]\r\n"
            '"ElementName"="VM Session Service"\r\n\r\n'
            "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Virtualization\\"
            "GuestCommunicationServices\\00001770-facb-11e6-bd58-64006a7986d3]\r\n"
            '"ElementName"="X410 \u00e9t\u00e9"\r\n')
    reg = tmp_path / "utf16.reg"
    reg.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    daemon.ctl("service", "import-reg", reg)
    services = daemon.ctl("service", "list", json_out=True)
    names = {s["id"]: s["element_name"] for s in services}
    assert names["999e53d4-3d5c-4c3e-8779-bed06ec056e1"] == "VM Session Service"
    assert names["00001770-facb-11e6-bd58-64006a7986d3"] == "X410 \u00e9t\u00e9"


@pytest.mark.parametrize("content", [
    b"\xfe\xff" + "Windows Registry Editor Version 5.00\r\n".encode("utf-16-be"),  # UTF-16BE: not regedit's
    b"Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\"
    b"CurrentVersion\\Virtualization\\GuestCommunicationServices\\not-a-guid]\r\n",
    b"\x80\x81 neither UTF-8 nor UTF-16\n",
])
def test_bad_reg_file_changes_nothing(daemon, tmp_path, content):
    daemon.ctl("service", "add", "5000", "before")
    before = daemon.ctl("service", "list", json_out=True)
    reg = tmp_path / "bad.reg"
    reg.write_bytes(content)
    line = one_error_line(daemon.ctl("service", "import-reg", reg, check=False))
    assert str(reg) in line
    assert daemon.ctl("service", "list", json_out=True) == before


def test_corrupt_state_file_refuses_to_start_and_is_kept(make_daemon, state_dir):
    first = make_daemon()
    first.ctl("vm", "add", "keep")
    first.ctl("service", "add", "5000", "kept service")
    assert first.stop() == 0
    state = state_dir / "state"
    good = state.read_bytes()
    state.write_bytes(good + b"vm this-is-not-a-guid classic running 9 broken\n")
    corrupt = state.read_bytes()
    run = short_tmpdir()
    try:
        r = subprocess.run([tool("hvsimd"), "--dir", run, "--state-dir", str(state_dir)], capture_output=True,
                           text=True, timeout=TIMEOUT, env=clean_env())
    finally:
        shutil.rmtree(run, ignore_errors=True)
    assert r.returncode != 0
    assert "state line" in r.stderr, r.stderr
    assert state.read_bytes() == corrupt  # nothing rewritten, nothing lost
    state.write_bytes(good)
    second = make_daemon()
    assert vm(second, "keep") is not None


def test_partition_sockets_are_the_owners_only(daemon):
    daemon.ctl("vm", "add", "vm1")
    for sock in (Path(daemon.dir) / "host.sock", Path(daemon.dir) / "vm" / "vm1.sock",
                 Path(daemon.dir) / "admin.sock"):
        assert (sock.stat().st_mode & 0o077) == 0, f"{sock} is reachable by others"


# ---- hvcat -----------------------------------------------------------------------------


def random_file(path, size=1 << 20):
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def exchange(daemon, tmp_path, listen_argv, connect_argv, connect_partition, listen_partition=None):
    """Run a listening and a connecting hvcat, each sending 1 MiB to the other;
    check both arrive intact and both exit 0."""
    to_guest, to_host = tmp_path / "to-guest", tmp_path / "to-host"
    sum_to_guest, sum_to_host = random_file(to_guest), random_file(to_host)
    got_host, got_guest = tmp_path / "got-host", tmp_path / "got-guest"
    with open(to_guest, "rb") as i, open(got_host, "wb") as o:
        listener = daemon.spawn([tool("hvcat")] + listen_argv, partition=listen_partition, stdin=i, stdout=o)
    daemon.wait_listeners(listener)
    with open(to_host, "rb") as i, open(got_guest, "wb") as o:
        conn = subprocess.run([tool("hvcat")] + connect_argv, env=daemon.env(connect_partition), stdin=i, stdout=o,
                              stderr=subprocess.PIPE, timeout=TIMEOUT)
    assert conn.returncode == 0, conn.stderr.decode()
    assert listener.wait(TIMEOUT) == 0, listener.stderr.read().decode()
    assert digest(got_guest) == sum_to_guest
    assert digest(got_host) == sum_to_host


def test_hvcat_host_and_guest_1mib_both_ways(daemon, tmp_path):
    daemon.ctl("vm", "add", "vm1")
    svc = str(uuid.uuid4())
    daemon.ctl("service", "add", svc, "hvcat test")  # a classic VM reaches registered services only
    exchange(daemon, tmp_path, ["-l", f"wildcard:{svc}"], ["parent:" + svc], "vm1")


def test_hvcat_host_connects_to_guest_by_vm_name(daemon, tmp_path):
    daemon.ctl("vm", "add", "vm1")
    exchange(daemon, tmp_path, ["-l", "parent:4242"], ["-v", "vm1:4242"], None, listen_partition="vm1")


@pytest.mark.parametrize("host_listen", [["-l", "wildcard:5000"], ["--vsock", "-l", "5000"]],
                         ids=["windows-host", "vsock-host"])
def test_hvcat_vsock_guest_to_host(daemon, tmp_path, host_listen):
    daemon.ctl("vm", "add", "vm1")
    daemon.ctl("service", "add", "5000", "vsock port 5000")
    exchange(daemon, tmp_path, host_listen, ["--vsock", "2:5000"], "vm1")


def test_hvcat_errors_name_errno_and_winsock(daemon):
    r = subprocess.run([tool("hvcat"), "loopback:7777"], env=daemon.env(), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 1
    assert r.stderr.startswith("hvcat: connect to {e0e16197-dd56-4a10-9195-5ee7a155a838}:"
                               "{00001e61-facb-11e6-bd58-64006a7986d3}: WSAECONNREFUSED 10061: No connection could be made")
    r = subprocess.run([tool("hvcat"), "nosuchvm:1"], env=daemon.env(), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 1 and "'nosuchvm'" in r.stderr
    r = subprocess.run([tool("hvcat")], env=daemon.env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 2 and "usage" in r.stderr


@pytest.mark.parametrize("argv,partition,words",
                         [(["-t", "100", "vm1:7777"], None, ": WSAETIMEDOUT 10060: A connection attempt failed"),
                          (["--vsock", "-t", "100", "2:7777"], "vm1", ": ETIMEDOUT: Connection timed out")],
                         ids=["host-to-guest", "vsock-guest-to-host"])
def test_hvcat_connect_timeout(daemon, argv, partition, words):
    # Under the default hyperv refusal profile nobody answers these: the
    # caller waits for its own connect timeout, here 100 ms.
    daemon.ctl("vm", "add", "vm1")
    daemon.ctl("service", "add", "7777")
    r = subprocess.run([tool("hvcat")] + argv, env=daemon.env(partition), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=TIMEOUT)
    # Each personality in its own words: Winsock's, or errno's name and strerror.
    assert r.returncode == 1
    assert words in r.stderr


# ---- the examples ----------------------------------------------------------------------


def test_host_and_guest_service_examples(daemon):
    daemon.ctl("vm", "add", "vm1")
    daemon.ctl("service", "add", EXAMPLE_SERVICE, "hvsim echo example")
    host = daemon.spawn([tool("host-service")], stdout=subprocess.PIPE)
    daemon.wait_listeners(host)
    guest = subprocess.run([tool("guest-service")], env=daemon.env("vm1"), capture_output=True, text=True,
                           timeout=TIMEOUT)
    assert guest.returncode == 0, guest.stderr
    assert "echo: hello from the guest" in guest.stdout
    out, err = host.communicate(timeout=TIMEOUT)
    assert host.returncode == 0, err.decode()
    assert b"listening" in out


def test_guest_service_fails_without_a_host(daemon):
    daemon.ctl("vm", "add", "vm1")
    daemon.ctl("service", "add", EXAMPLE_SERVICE)
    guest = subprocess.run([tool("guest-service")], env=daemon.env("vm1"), capture_output=True, text=True,
                           timeout=TIMEOUT)
    assert guest.returncode != 0 and "10061" in guest.stderr


def test_vhost_backend_takes_the_daemons_cid(hvsimd, tmp_path):
    """hvsim-vhost serves the CID hvsimd gave the VM: by default, and a
    different --cid is refused with both numbers, so a guest can never read
    a CID that host programs do not route by."""
    vm = hvsimd.ctl("vm", "add", "cidvm", json_out=True)
    vhost = str(qemu.BIN / "hvsim-vhost")
    sock = tmp_path / "v.sock"
    wrong = vm["cid"] + 40
    r = subprocess.run([vhost, "--socket", str(sock), "--cid", str(wrong)], env=hvsimd.env("cidvm"),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    assert f"--cid {wrong}: hvsimd gave VM 'cidvm' CID {vm['cid']}" in r.stderr, r.stderr
    log = tmp_path / "vhost.log"
    p = qemu.start_ready([vhost, "-v", "--socket", str(sock), "--ready-fd", "{fd}"], hvsimd.env("cidvm"), log,
                         "hvsim-vhost")
    try:
        assert f"(guest CID {vm['cid']})" in log.read_text()
    finally:
        p.terminate()
        assert p.wait(30) == 0, log.read_text()
