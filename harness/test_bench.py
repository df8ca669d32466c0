# SPDX-License-Identifier: MIT
"""Tests of the benchmark's regression gate (bench/run.py, bench/compare.py).

The gate is only worth having if it catches a slower library and lets an
unchanged one through. So this runs the CI benchmark (`bench/run.py --ci`,
what `make bench-ci` runs) four times on the same binaries: twice as they are,
once with HVSIM_TEST_SLOWDOWN=message (hvsim-bench makes one extra system call
beside each hvsim_send and hvsim_recv: the library carries no test switch) and
once with HVSIM_TEST_SLOWDOWN=connection (one per hvsim_connect), and checks that compare, with CI's settings (counts
gated, wall-clock reported), passes the normal pair and fails each slowed run
on the figure that should catch it. It also checks the wall-clock noise rule on
made-up files, and what a run writes.

Run with: /usr/bin/python3 -m pytest harness/test_bench.py
Binaries come from build/bin of the repository, or from $HVSIM_BIN. A
sanitizer build is skipped: valgrind cannot run it, and its counts mean
nothing for the plain build the gate is about.
"""
import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HVSIM_BIN") or REPO / "build" / "bin")
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
RUN = REPO / "bench" / "run.py"
COMPARE = REPO / "bench" / "compare.py"
TIMEOUT = 300  # seconds for one benchmark run: a bound for hangs


def sanitized():
    return any(p in ("asan", "ubsan", "tsan") for p in BIN.resolve().parts)


def ensure_tools():
    missing = [p for p in ("valgrind", "strace") if shutil.which(p) is None]
    if missing:
        # The repository's way: install what is missing (as root), else say what to install.
        subprocess.run(["sh", str(REPO / "ci" / "deps.sh")] + missing, timeout=900)
    missing = [p for p in ("valgrind", "strace") if shutil.which(p) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: sh ci/deps.sh valgrind strace")


def bench_ci(out, slowdown=None):
    env = dict(os.environ)
    env.pop("HVSIM_TEST_SLOWDOWN", None)
    if slowdown:
        env["HVSIM_TEST_SLOWDOWN"] = slowdown
    r = subprocess.run([PY, str(RUN), "--ci", "--bin", str(BIN), "--out", str(out)], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, f"bench/run.py --ci failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return out / "latest.json"


def compare(base, new, *extra):
    return subprocess.run([PY, str(COMPARE), "--wallclock", "report", *extra, str(base), str(new)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if sanitized():
        pytest.skip("benchmark gate: runs on the plain build only (valgrind cannot run a sanitizer build)")
    for name in ("hvsim-bench", "hvsimd"):
        if not os.access(BIN / name, os.X_OK):
            pytest.fail(f"{BIN / name} is missing: build it first (make all), or point HVSIM_BIN at the binaries")
    ensure_tools()
    root = tmp_path_factory.mktemp("bench")
    return {label: bench_ci(root / label, slow) for label, slow in
            (("normal", None), ("normal2", None), ("message", "message"), ("connection", "connection"))}


def verdicts(stdout):
    """figure -> verdict text, from compare's table."""
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if parts and "." in parts[0] and len(parts) >= 3:
            out[parts[0]] = line
    return out


def test_normal_vs_normal_passes(runs):
    r = compare(runs["normal"], runs["normal2"])
    assert r.returncode == 0, f"two unchanged runs were judged different:\n{r.stdout}\n{r.stderr}"
    v = verdicts(r.stdout)
    for fig in ("syscalls.per_message", "syscalls.per_connection", "cpu.instructions_per_message",
                "cpu.instructions_per_connection"):
        assert fig in v and v[fig].endswith(" ok"), f"{fig}: {v.get(fig)}"


def test_message_slowdown_is_caught(runs):
    r = compare(runs["normal"], runs["message"])
    assert r.returncode == 1, f"one more system call per send/recv went unnoticed:\n{r.stdout}\n{r.stderr}"
    assert "SLOWER" in verdicts(r.stdout)["syscalls.per_message"], r.stdout


def test_connection_slowdown_is_caught(runs):
    r = compare(runs["normal"], runs["connection"])
    assert r.returncode == 1, f"one more system call per connect went unnoticed:\n{r.stdout}\n{r.stderr}"
    v = verdicts(r.stdout)
    assert "SLOWER" in v["syscalls.per_connection"], r.stdout
    assert "SLOWER" not in v["syscalls.per_message"], r.stdout


def test_counts_are_exact_per_operation(runs):
    """The fixed workloads cost a whole number of system calls per operation,
    the same in both runs: what makes a fixed threshold safe."""
    a, b = (json.loads(Path(runs[k]).read_text())["figures"] for k in ("normal", "normal2"))
    for fig in ("syscalls.per_message", "syscalls.per_connection"):
        x, y = a[fig]["values"]["hvsim"]["median"], b[fig]["values"]["hvsim"]["median"]
        assert abs(x - y) < 0.2, f"{fig}: {x} vs {y}"
    assert abs(a["syscalls.per_message"]["values"]["hvsim"]["median"] - 2.0) < 0.05  # one send + one recv
    assert abs(a["syscalls.per_message"]["values"]["af_unix"]["median"] - 2.0) < 0.05
    for fig in ("cpu.instructions_per_message", "cpu.instructions_per_connection"):
        x, y = a[fig]["values"]["hvsim"]["median"], b[fig]["values"]["hvsim"]["median"]
        assert abs(x - y) / x < 0.01, f"{fig}: {x} vs {y}"


def test_outputs(runs):
    doc = json.loads(Path(runs["normal"]).read_text())
    assert doc["schema"] == "hvsim-bench/1"
    assert doc["target"] == "simulator" and doc["subject"] == "hvsim"
    figs = doc["figures"]
    for name in ("throughput.h2g.64", "throughput.h2g.65536", "rtt.1.p50", "connrate", "scale.100.throughput",
                 "scale.100.client_fds", "memcpy"):
        assert name in figs, name
    for name in ("throughput.h2g.65536", "rtt.1.p50", "connrate"):
        f = figs[name]
        assert f["class"] == "wallclock" and f["ratio_to"] == "af_unix"
        r = f["ratios"]["af_unix"]
        assert len(r["rounds"]) == doc["config"]["rounds"] and r["min"] <= r["median"] <= r["max"]
        assert set(f["values"]) >= {"hvsim", "af_unix", "tcp"}
    assert figs["scale.100.client_fds"]["values"]["hvsim"]["median"] == 2  # one fd in each peer
    assert figs["scale.100.daemon_fds"]["values"]["hvsim"]["median"] == 0  # no byte through the daemon
    assert (Path(runs["normal"]).parent / "table.txt").exists()


def test_ci_run_writes_its_charts(runs):
    """What `make bench-ci` runs writes PNG charts (issue 17), each non-empty."""
    out = Path(runs["normal"]).parent
    doc = json.loads(Path(runs["normal"]).read_text())
    for name in ("throughput", "latency", "scale"):
        png = out / f"{name}.png"
        assert png.exists() and png.stat().st_size > 1000, png
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert doc["outputs"][f"{name}_png"] == str(png)
    assert (out / "report.html").stat().st_size > 0


def test_chart_titles_fit_inside_the_image(runs):
    """The CI run's single panel is narrower than its title was: every title
    (the figure's and each panel's) is laid out inside the image."""
    # By path: another module named report (conformance's) may be imported already.
    spec = importlib.util.spec_from_file_location("bench_report", REPO / "bench" / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)

    doc = json.loads(Path(runs["normal"]).read_text())
    for name in ("throughput", "latency", "scale"):
        fig = getattr(report, f"{name}_chart")(doc)
        assert fig is not None, name
        report.layout(fig)
        assert report.titles_outside(fig) == [], name
        if name == "throughput":  # wrapped, never cut
            assert " ".join(report._titles(fig)[0].get_text().split()) == \
                f"Stream throughput: {doc['subject']} beside its same-run baselines ({doc['target']})"
        report.plt.close(fig)


def test_compare_refuses_another_target(runs, tmp_path):
    doc = json.loads(Path(runs["normal"]).read_text())
    doc["target"] = "qemu"
    other = tmp_path / "qemu.json"
    other.write_text(json.dumps(doc))
    r = compare(runs["normal"], other)
    assert r.returncode == 2 and "different targets" in r.stderr


def test_compare_rejects_missing_gated_count(runs, tmp_path):
    doc = json.loads(Path(runs["normal"]).read_text())
    del doc["figures"]["syscalls.per_message"]
    other = tmp_path / "partial.json"
    other.write_text(json.dumps(doc))
    assert compare(runs["normal"], other).returncode == 2


def _wallclock_doc(rounds):
    """A minimal hvsim-bench/1 file with one wall-clock figure of the given ratio rounds."""
    med = sorted(rounds)[len(rounds) // 2]
    ratio = {"median": med, "min": min(rounds), "max": max(rounds), "spread": (max(rounds) - min(rounds)) / med,
             "rounds": rounds}
    fig = {"class": "wallclock", "kind": "throughput", "unit": "GB/s", "better": "higher", "params": {},
           "values": {"hvsim": copy.deepcopy(ratio), "af_unix": {"median": 1, "min": 1, "max": 1, "spread": 0,
                                                                 "rounds": [1] * len(rounds)}},
           "ratio_to": "af_unix", "ratios": {"af_unix": ratio}, "gate": "noise"}
    return {"schema": "hvsim-bench/1", "target": "simulator", "subject": "hvsim", "mode": "full",
            "config": {"slowdown": ""}, "git": {}, "figures": {"throughput.h2g.65536": fig}}


@pytest.mark.parametrize("base,new,gate_rc", [
    ([0.99, 1.00, 1.01], [0.89, 0.90, 0.91], 1),   # 10 % slower, rounds agree within 2 %: slower
    ([0.99, 1.00, 1.01], [0.96, 0.97, 0.98], 0),   # 3 %: inside the 5 % floor
    ([0.80, 1.00, 1.20], [0.79, 0.85, 0.90], 0),   # 15 % slower, but the rounds spread 40 %: noise
    ([0.99, 1.00, 1.01], [1.20, 1.21, 1.22], 0),   # faster is never a failure
])
def test_wallclock_noise_rule(tmp_path, base, new, gate_rc):
    b, n = tmp_path / "b.json", tmp_path / "n.json"
    b.write_text(json.dumps(_wallclock_doc(base)))
    n.write_text(json.dumps(_wallclock_doc(new)))
    r = subprocess.run([PY, str(COMPARE), str(b), str(n)], capture_output=True, text=True, timeout=60)
    assert r.returncode == gate_rc, r.stdout + r.stderr
    # CI's setting reports a wall-clock slowdown without failing.
    r = subprocess.run([PY, str(COMPARE), "--wallclock", "report", str(b), str(n)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# ---- the guest program under each mode (bench/modes.py, part of `make bench`) ----------------
MODES_PY = REPO / "bench" / "modes.py"
NR_READ, NR_WRITE, NR_SENDTO, NR_RECVFROM, NR_SOCKET = 0, 1, 44, 45, 41


def test_modes_quick_run(tmp_path):
    """A very short run of what `make bench` measures per mode: every figure
    present for libhvsim, the interposer and the supervisor beside AF_UNIX
    with the same buffer sizes; the supervisor's counters show that the data
    path (read/write/send/recv) never reaches it, that TCP sockets at low fd
    numbers cost it nothing (socket(AF_INET) and their connect, accept and
    close stay in the kernel's filter), and that from fd 800 on it serves
    them (the tax the README reports)."""
    if sanitized():
        # A sanitizer's runtime must be the first library loaded, which the
        # interposer's LD_PRELOAD makes impossible; and its figures mean nothing.
        pytest.skip("the modes benchmark runs on the plain build only")
    for name in ("hvsimd", "hvsimctl", "hvsim-run", "hvsim-modebench"):
        if not os.access(BIN / name, os.X_OK):
            pytest.fail(f"{BIN / name} is missing: build it first (make all)")
    r = subprocess.run([PY, str(MODES_PY), "--quick", "--bin", str(BIN), "--out", str(tmp_path)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = json.loads((tmp_path / "modes.json").read_text())
    # The gated modes run in a virtio VM; lib-hvsock (an hv_sock VM's small
    # rings) is reported beside them and gated by nothing.
    assert set(doc["vsock"]) == {"lib", "interposer", "supervisor", "default", "lib-hvsock"}
    for mode, e in doc["vsock"].items():
        b = e["buffers"]
        assert b["host_rcvbuf"] == b["af_unix_host_rcvbuf"] > 0 and b["host_sndbuf"] == b["af_unix_host_sndbuf"] > 0
        for fig in ("connrate", "rtt1_p50_us", "rtt1_p99_us", "tput64k_mib_s"):
            assert e[fig]["vsock"]["median"] > 0 and e[fig]["af_unix"]["median"] > 0, (mode, fig)
            assert e[fig]["ratio"]["median"] > 0, (mode, fig)
    assert {a["check"].split(":")[0] for a in doc["acceptance"]} == {"lib", "interposer", "supervisor", "default"}
    assert set(doc["tcp"]) == {f"{m}.fd{f}" for m in ("plain", "interposer", "supervisor", "default")
                               for f in (0, 800)}
    calls = {k: {int(nr): n for nr, n in v.items()} for k, v in doc["supervisor_calls"].items()}
    guest = calls["supervisor_calls_guest"]
    conns = doc["config"]["conns"]
    # One socket, connect and close per vsock connection (and AF_UNIX's never).
    assert guest.get(NR_SOCKET, 0) >= conns and guest.get(NR_SOCKET, 0) < 2 * conns, guest
    for nr in (NR_READ, NR_WRITE, NR_SENDTO, NR_RECVFROM):
        assert nr not in guest, f"the data path reached the supervisor: {guest}"
    assert calls["supervisor_calls_tcp_fd0"] == {}, calls["supervisor_calls_tcp_fd0"]
    # The default mode on this dynamically linked program: the interposer
    # serves every vsock call in-process, and nothing reaches the supervisor.
    assert calls["default_calls_guest"] == {} and calls["default_calls_tcp_fd0"] == {}, calls
    high = calls["supervisor_calls_tcp_fd800"]
    assert NR_SOCKET not in high and high.get(42, 0) == doc["config"]["tcp_conns"], high
    assert "TCP connect+accept" in r.stdout and "supervisor" in r.stdout
