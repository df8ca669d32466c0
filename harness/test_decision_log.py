# SPDX-License-Identifier: MIT
"""hvsimd's decision log (issue 17): `hvsimd --log FILE --log-format json`
gives one JSON line per bind, listen and connect decision, naming who asked,
the addresses, the verdict and the rule id; every rule id of hvproto/rules.h
names a row of the README's tables, and every id the conformance run produces
is one of them.

Run with: /usr/bin/python3 -m pytest harness/test_decision_log.py (HVSIM_BIN: the binaries).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from test_tools import BIN, REPO, TIMEOUT, clean_env, tool

VERDICTS = {"ok", "refuse", "noanswer", "pending"}
OPS = {"bind", "listen", "connect"}


def rule_ids():
    text = (REPO / "sim/proto/include/hvproto/rules.h").read_text()
    return re.findall(r'X\(\w+, "([^"]+)", "', text)


def readme_table_ids():
    """The rule ids named in a row of a README table (`id` in backquotes)."""
    ids = set()
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith("|"):
            ids.update(re.findall(r"`([a-z_]+(?:\.[a-z_-]+)*)`", line))
    return ids


def test_every_rule_id_names_a_readme_row():
    missing = [r for r in rule_ids() if r not in readme_table_ids()]
    assert not missing, f"rule ids without a README table row: {missing}"


def check_record(rec):
    assert rec["op"] in OPS and rec["verdict"] in VERDICTS, rec
    assert rec["partition"] and rec["pid"] > 0, rec
    assert rec["rule"] in rule_ids() and rec["rule"] != "none", rec
    assert (rec["error"] is None) == (rec["verdict"] in ("ok", "pending")), rec
    assert re.fullmatch(r"\{[0-9a-f-]{36}\}:\{[0-9a-f-]{36}\}|\d+:\d+", rec["address"]), rec


@pytest.fixture
def logged_daemon():
    d = tempfile.mkdtemp(prefix="hvsim-dl-", dir="/tmp")
    run, log = os.path.join(d, "run"), os.path.join(d, "decisions.jsonl")
    r_fd, w_fd = os.pipe()
    p = subprocess.Popen([tool("hvsimd"), "--dir", run, "--state-dir", "", "--ready-fd", str(w_fd), "--log", log,
                          "--log-format", "json"], pass_fds=(w_fd,), env=clean_env(), stderr=subprocess.PIPE)
    os.close(w_fd)
    with os.fdopen(r_fd, "rb") as f:
        assert f.read() == b"READY=1\n"
    env = dict(clean_env(), HVSIM_DIR=run)
    yield run, log, env
    p.terminate()
    assert p.wait(TIMEOUT) == 0
    shutil.rmtree(d, ignore_errors=True)


def records(log):
    with open(log) as f:
        return [json.loads(line) for line in f]


def test_one_json_line_per_decision(logged_daemon):
    run, log, env = logged_daemon
    ctl = [tool("hvsimctl"), "--dir", run]
    subprocess.run(ctl + ["vm", "add", "vm1"], check=True, capture_output=True, env=env)
    r = subprocess.run([tool("hvcat"), "loopback:7777"], env=env, capture_output=True, stdin=subprocess.DEVNULL,
                       timeout=TIMEOUT)
    assert r.returncode == 1
    r = subprocess.run([tool("hvcat"), "parent:7777"], env=dict(env, HVSIM_PARTITION="vm1"), capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    assert r.returncode == 1
    lis = subprocess.Popen([tool("hvcat"), "-l", "wildcard:5000"], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not any(x["op"] == "listen" for x in records(log)) and time.monotonic() < deadline:
            time.sleep(0.01)
        r = subprocess.run([tool("hvcat"), "loopback:5000"], env=env, input=b"", capture_output=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert lis.wait(TIMEOUT) == 0
    finally:
        if lis.poll() is None:
            lis.kill()
    recs = records(log)
    for rec in recs:
        check_record(rec)
    pid_of = {x["pid"] for x in recs}
    assert len(pid_of) >= 3
    refused = [x for x in recs if x["op"] == "connect" and x["verdict"] == "refuse"]
    assert [(x["partition"], x["error"], x["rule"]) for x in refused] == [
        ("host", "ECONNREFUSED", "loopback.refused"), ("vm1", "ECONNREFUSED", "guest.windows-refused")]
    ok = [x for x in recs if x["op"] == "connect" and x["verdict"] == "ok"]
    assert len(ok) == 1 and ok[0]["rule"] == "route.listener" and ok[0]["to"] == "host"
    assert ok[0]["vanished_rule"] == "loopback.refused"
    assert [x["op"] for x in recs if x["pid"] == lis.pid] == ["bind", "listen"]


def test_text_format_and_bad_options(tmp_path):
    r = subprocess.run([tool("hvsimd"), "--log-format", "xml", "--log", str(tmp_path / "l")], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "expected text or json" in r.stderr
    r = subprocess.run([tool("hvsimd"), "--log-format", "json"], capture_output=True, text=True)
    assert r.returncode == 2 and "needs --log" in r.stderr
    r = subprocess.run([tool("hvsimd"), "--log", str(tmp_path / "no/such/dir/log")], capture_output=True, text=True)
    assert r.returncode == 1 and "--log" in r.stderr


def test_text_format(tmp_path):
    d = tempfile.mkdtemp(prefix="hvsim-dl-", dir="/tmp")
    run, log = os.path.join(d, "run"), os.path.join(d, "log.txt")
    r_fd, w_fd = os.pipe()
    p = subprocess.Popen([tool("hvsimd"), "--dir", run, "--state-dir", "", "--ready-fd", str(w_fd), "--log", log],
                         pass_fds=(w_fd,), env=clean_env())
    os.close(w_fd)
    try:
        with os.fdopen(r_fd, "rb") as f:
            f.read()
        env = dict(clean_env(), HVSIM_DIR=run)
        subprocess.run([tool("hvcat"), "loopback:7777"], env=env, capture_output=True, stdin=subprocess.DEVNULL,
                       timeout=TIMEOUT)
        line = open(log).read().strip()
        assert re.fullmatch(r"\S+Z connect host pid=\d+ windows \{[0-9a-f-]+\}:\{[0-9a-f-]+\} to host -> refuse "
                            r"ECONNREFUSED rule=loopback\.refused", line), line
    finally:
        p.terminate()
        p.wait(TIMEOUT)
        shutil.rmtree(d, ignore_errors=True)


def test_conformance_run_ids_name_readme_rows(tmp_path):
    """The catalogue against the simulator with the decision log on: every
    record is well formed and every rule id it produced names a README row."""
    out = tmp_path / "cf"
    log = out / "decisions.jsonl"
    r = subprocess.run([sys.executable, str(REPO / "conformance/run.py"), "--target", "sim", "--bin", str(BIN),
                        "--out", str(out), "--decision-log", str(log), "--quiet"],
                       capture_output=True, text=True, timeout=600, env=clean_env())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    recs = records(log)
    assert len(recs) > 100
    for rec in recs:
        check_record(rec)
    produced = {x["rule"] for x in recs}
    missing = sorted(produced - readme_table_ids())
    assert not missing, f"rule ids produced during the conformance run without a README row: {missing}"
    # The run exercises the router broadly: refusals, silences and listeners.
    assert {"route.listener", "route.bind", "route.listen", "loopback.refused",
            "setting.refusal_profile.hyperv"} <= produced
