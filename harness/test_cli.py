# SPDX-License-Identifier: MIT
"""The command line scripts rely on (issue 17): one version on every binary,
--help on every binary and hvsimctl subcommand (exit 0, on stdout), errors in
the personality's words, the idempotent forms (--exist-ok, reset) and hvcat's
socat address forms and VM names for CIDs.

Run with: /usr/bin/python3 -m pytest harness/test_cli.py (HVSIM_BIN: the binaries).
"""
import re
import shlex
import subprocess
import uuid

import pytest

from test_tools import REPO, TIMEOUT, daemon, exchange, make_daemon, state_dir, tool  # noqa: F401 (fixtures)

# Every binary `make all` builds; INSTALLED are those `make install` installs.
BINARIES = ["hvsimd", "hvsimctl", "hvcat", "hvsim-run", "hvsim-hybrid", "hvsim-vhost", "hvsim-bench",
            "hvsim-qemu-bench", "hvsim-agent", "host-service", "guest-service"]


def version():
    h = (REPO / "sim" / "include" / "hvsim" / "hvsim.h").read_text()
    parts = [re.search(rf"^#define HVSIM_VERSION_{p} (\d+)$", h, re.M).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


def run(argv, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL, **kw)


@pytest.mark.parametrize("name", BINARIES)
def test_version_is_the_one_version(name):
    r = run([tool(name), "--version"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{name} (hvsim) {version()}\n"


@pytest.mark.parametrize("name", BINARIES)
def test_help_exits_0_on_stdout(name):
    r = run([tool(name), "--help"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: "), r.stdout
    assert "--version" in r.stdout and "--help" in r.stdout


def hvsimctl_commands():
    r = run([tool("hvsimctl"), "--help"])
    return re.findall(r"^  ([a-z][a-z-]*(?: [a-z][a-z-]*)?)(?: [A-Z\[]|$)", r.stdout, re.M)


def test_hvsimctl_help_lists_commands():
    cmds = hvsimctl_commands()
    assert "vm add" in cmds and "service import-reg" in cmds and "reset" in cmds and "status" in cmds


@pytest.mark.parametrize("words", ["vm", "service"] + [c for c in
                                                      ["vm add", "vm list", "vm rm", "vm start", "vm pause",
                                                       "vm resume", "vm reset", "vm off", "vm hcs",
                                                       "vm listeners", "vm connections", "service add",
                                                       "service list", "service rm", "service import-reg",
                                                       "settings", "get", "set", "reset", "status"]])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_hvsimctl_subcommand_help(words, flag, tmp_path):
    # No daemon: help never needs one.
    r = run([tool("hvsimctl"), "--dir", tmp_path / "none"] + words.split() + [flag])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: hvsimctl"), r.stdout
    assert words in r.stdout


def test_hvsimctl_every_listed_command_is_tested():
    tested = {"vm add", "vm list", "vm rm", "vm start", "vm pause", "vm resume", "vm reset", "vm off", "vm hcs",
              "vm listeners", "vm connections",
              "service add", "service list", "service rm", "service import-reg", "settings", "get", "set",
              "reset", "status"}
    assert set(hvsimctl_commands()) == tested


def test_hvsimctl_group_without_command_is_a_usage_error(tmp_path):
    r = run([tool("hvsimctl"), "--dir", tmp_path, "vm"])
    assert r.returncode == 2 and "missing a command" in r.stderr and "vm add" in r.stderr
    r = run([tool("hvsimctl"), "--dir", tmp_path, "vm", "frobnicate"])
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr


def test_host_service_help_is_not_a_guid():
    r = run([tool("host-service"), "--help"])
    assert r.returncode == 0 and "not a GUID" not in r.stderr + r.stdout


# ---- idempotent forms ---------------------------------------------------------------------


def test_vm_add_exist_ok(daemon):
    first = daemon.ctl("vm", "add", "vm1", json_out=True)
    again = daemon.ctl("vm", "add", "vm1", json_out=True, check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    same = daemon.ctl("vm", "add", "vm1", "--exist-ok", json_out=True)
    assert same["id"] == first["id"]
    other = daemon.ctl("vm", "add", "vm1", "--exist-ok", "--kind", "hcs", check=False)
    assert other.returncode == 1 and "exists as a classic VM" in other.stderr
    other = daemon.ctl("vm", "add", "vm1", "--exist-ok", "--id", str(uuid.uuid4()), check=False)
    assert other.returncode == 1 and f"exists with ID {first['id']}" in other.stderr
    assert len(daemon.ctl("vm", "list", json_out=True)) == 1


def test_service_add_exist_ok_keeps_the_name(daemon):
    daemon.ctl("service", "add", "5000", "first")
    r = daemon.ctl("service", "add", "5000", "second", "--exist-ok", json_out=True)
    assert r["element_name"] == "first"
    daemon.ctl("service", "add", "5000", "third")  # without it: replaced, as reg add /f
    assert [s["element_name"] for s in daemon.ctl("service", "list", json_out=True)] == ["third"]


def test_exist_ok_only_where_the_command_takes_it(daemon):
    r = daemon.ctl("vm", "rm", "vm1", "--exist-ok", check=False)
    assert r.returncode == 2 and "unknown option '--exist-ok'" in r.stderr


def test_reset_empties_the_host_and_runs_twice(daemon):
    daemon.ctl("vm", "add", "vm1")
    daemon.ctl("vm", "add", "vm2", "--kind", "hcs")
    daemon.ctl("service", "add", "5000", "x")
    daemon.ctl("set", "linux_connect_timeout_ms", "1234")
    assert daemon.ctl("reset", json_out=True) == {"vms_removed": 2, "services_removed": 1}
    assert daemon.ctl("vm", "list", json_out=True) == []
    assert daemon.ctl("service", "list", json_out=True) == []
    assert daemon.ctl("get", "linux_connect_timeout_ms").stdout.strip() == "1234"  # settings stay
    assert daemon.ctl("reset").stdout == "removed 0 VMs and 0 services\n"


def test_quick_start_runs_twice(daemon):
    """The README's quick start, twice against the same daemon: the second run
    must not fail on what the first left."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    ctl = [shlex.split(line, comments=True) for line in block.splitlines() if line.startswith("build/bin/hvsimctl")]
    assert ctl, block
    assert "HVSIM_DIR" in block and "every" in block.lower()  # says what each shell needs
    for _ in range(2):
        for argv in ctl:
            daemon.ctl(*argv[1:])


# ---- hvcat: personalities' words, socat's forms, VM names for CIDs ------------------------


def test_hvcat_linux_words_for_vsock(daemon):
    daemon.ctl("vm", "add", "vm1")
    daemon.ctl("set", "refusal_profile", "kvm")
    r = run([tool("hvcat"), "--vsock", "2:7777"], env=daemon.env("vm1"))
    assert r.returncode == 1
    assert r.stderr.startswith("hvcat: connect to 2:7777: ECONNRESET: Connection reset by peer"), r.stderr
    assert "WSA" not in r.stderr


@pytest.mark.parametrize("listen,connect", [
    (["VSOCK-LISTEN:5000"], ["VSOCK-CONNECT:2:5000"]),
    (["vsock-listen:5000"], ["--vsock", "2:5000"]),
    (["--vsock", "-l", "5000"], ["VSOCK-CONNECT:2:0x1388"]),
], ids=["socat-both", "lower-case-listen", "hex-port-connect"])
def test_hvcat_socat_forms(daemon, tmp_path, listen, connect):
    daemon.ctl("vm", "add", "vm1")
    daemon.ctl("service", "add", "5000", "socat forms")
    exchange(daemon, tmp_path, listen, connect, "vm1")


def test_hvcat_vm_name_for_cid(daemon, tmp_path):
    daemon.ctl("vm", "add", "vm1")
    exchange(daemon, tmp_path, ["VSOCK-LISTEN:6000"], ["VSOCK-CONNECT:vm1:6000"], None, listen_partition="vm1")
    r = run([tool("hvcat"), "VSOCK-CONNECT:nosuchvm:6000"], env=daemon.env())
    assert r.returncode == 1 and "CID 'nosuchvm' is not a number" in r.stderr


def test_sample_regedit_export_imports(daemon):
    """examples/guest-communication-services.reg: what `reg export` of the key
    writes (UTF-16LE with a BOM, CRLF), the file the README's import names."""
    path = REPO / "examples" / "guest-communication-services.reg"
    assert path.read_bytes()[:2] == b"\xff\xfe"
    assert "service import-reg examples/guest-communication-services.reg" in (REPO / "README.md").read_text()
    r = daemon.ctl("service", "import-reg", path, json_out=True)
    assert r["imported"] == 3
    names = {s["port"]: s["element_name"] for s in daemon.ctl("service", "list", json_out=True)}
    assert names[5000] == "demo service (AF_VSOCK port 5000)"


# ---- listeners and connections (hvsimctl vm listeners / vm connections) ------------------


def settle(fn, want, timeout=5.0):
    """fn() until it returns want (a process's exit reaches hvsimd on its own time)."""
    import time
    deadline = time.monotonic() + timeout
    got = fn()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.01)
        got = fn()
    return got


def test_vm_listeners_and_connections(daemon):
    daemon.ctl("vm", "add", "vm1")
    listener = daemon.spawn([tool("hvcat"), "VSOCK-LISTEN:6000"], partition="vm1", stdin=subprocess.PIPE)
    daemon.wait_listeners(listener)
    ls = daemon.ctl("vm", "listeners", "vm1", json_out=True)
    assert len(ls) == 1, ls
    assert ls[0]["address"]["port"] == 6000 and ls[0]["type"] == "vsock-guest"
    assert ls[0]["pid"] == listener.pid and ls[0]["gateway"] is False and ls[0]["backlog"] > 0
    text = daemon.ctl("vm", "listeners", "vm1").stdout
    assert text.splitlines()[0].split() == ["ADDRESS", "TYPE", "PID", "BACKLOG", "GATEWAY"]
    assert ":6000 " in text and f" {listener.pid} " in text

    conn = daemon.spawn([tool("hvcat"), "VSOCK-CONNECT:vm1:6000"], stdin=subprocess.PIPE)
    count = lambda: len(daemon.ctl("vm", "connections", "vm1", json_out=True)["connections"])  # noqa: E731
    assert settle(count, 1) == 1
    doc = daemon.ctl("vm", "connections", "vm1", json_out=True)
    c = doc["connections"][0]
    assert c["connector"]["partition"] == "host" and c["connector"]["pid"] == conn.pid
    assert c["acceptor"]["partition"] == "vm1" and c["acceptor"]["pid"] == listener.pid
    assert c["acceptor"]["address"]["port"] == 6000 and c["type"] == "vsock-host"
    assert c["rule"] == "route.listener" and doc["limit"] == 1024 and doc["forgotten"] == 0
    assert "never passes through" in doc["note"]
    text = daemon.ctl("vm", "connections", "vm1").stdout
    assert "route.listener" in text and "note: hvsimd routes each connection" in text
    assert "1 connection (at most 1024 kept per partition; 0 older forgotten)" in text

    conn.kill()
    conn.wait(TIMEOUT)
    assert settle(count, 0) == 0  # the connector detached: its record ends
    r = daemon.ctl("vm", "connections", "nosuchvm", check=False)
    assert r.returncode == 1 and "no VM named or with ID 'nosuchvm'" in r.stderr
