# SPDX-License-Identifier: MIT
"""`make bench TARGET=qemu`: one QEMU guest (Debian's cloud kernel under TCG),
measured over vsock through hvsim and over TCP through QEMU's user-mode
network, in the same run, by the same two programs:

  - in the guest, hvsim-guest-bench (vm-images/guest-bench.c) serves both
    transports;
  - on the host, hvsim-qemu-bench (sim/tools/hvsim-qemu-bench.c) connects
    to {vm id, port} through libhvsim (the guest's virtio-vsock device is
    served by hvsim-vhost) and to 127.0.0.1:<hostfwd port> for TCP, and
    measures host->guest and guest->host throughput and the 1-byte round
    trip, alternating the transports round by round.

The user-mode network is isolated (restrict=on): the only way in is the one
hostfwd port on 127.0.0.1. Writes OUT/latest.json (schema
hvsim-bench-qemu/1), OUT/table.txt and OUT/raw.json, and prints the table.
Called by bench/run.py; standard library only, plus harness/qemu.py.
"""
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "harness"))
import qemu  # noqa: E402

SCHEMA = "hvsim-bench-qemu/1"
VSOCK_PORT = 5555
TCP_GUEST_PORT = 5556
FULL = {"rounds": 5, "bytes": 64 << 20, "size": 64 << 10, "pings": 2000}
QUICK = {"rounds": 1, "bytes": 4 << 20, "size": 64 << 10, "pings": 200}
FIGURES = (("h2g_MBps", "throughput host->guest", "MB/s", True),
           ("g2h_MBps", "throughput guest->host", "MB/s", True),
           ("rtt_p50_us", "1-byte round trip p50", "us", False),
           ("rtt_p99_us", "1-byte round trip p99", "us", False))
TOOL_TIMEOUT_S = 900  # a bound for a hung run, never a wait


class BenchError(Exception):
    pass


def free_port():
    """A TCP port on 127.0.0.1 for QEMU's hostfwd (QEMU binds it itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summarise(raw):
    """Median, min and max of every figure per transport, and vsock/TCP ratios."""
    figs = {}
    for key, label, unit, higher in FIGURES:
        row = {"label": label, "unit": unit, "higher_is_better": higher}
        for t in ("vsock", "tcp"):
            vals = [r[t][key] for r in raw["rounds"]]
            row[t] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "rounds": vals}
        row["ratio"] = row["vsock"]["median"] / row["tcp"]["median"] if row["tcp"]["median"] else None
        figs[key] = row
    return figs


def table_lines(doc):
    c = doc["config"]
    lines = [f"hvsim bench, target qemu: one guest under TCG, vsock (hvsim) beside TCP (QEMU user network), "
             f"{c['rounds']} rounds of {c['bytes'] >> 20} MiB in {c['size'] >> 10} KiB writes, {c['pings']} pings",
             f"{'figure':<28} {'vsock (hvsim)':>16} {'TCP (user net)':>16} {'vsock/TCP':>10}"]
    for key, row in doc["figures"].items():
        def cell(t):
            m = row[t]
            return f"{m['median']:.1f} {row['unit']}"
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "-"
        lines.append(f"{row['label']:<28} {cell('vsock'):>16} {cell('tcp'):>16} {ratio:>10}")
    lines.append("medians over rounds; min-max per figure in latest.json. Higher is better for throughput, "
                 "lower for round trips.")
    return lines


def run(bin_dir, out, quick=False, vm_dir=None, say=print):
    cfg = dict(QUICK if quick else FULL)
    qemu.BIN = Path(bin_dir)
    for name in ("hvsimd", "hvsimctl", "hvsim-vhost", "hvsim-qemu-bench"):
        if not os.access(qemu.BIN / name, os.X_OK):
            raise BenchError(f"{qemu.BIN / name} is missing: build it first (make all)")
    img, why = qemu.find_image(vm_dir)
    if img is None:
        raise BenchError(why)
    if qemu.find_qemu()[1]:
        raise BenchError(qemu.find_qemu()[1])
    qemu.set_progress(lambda m: say(f"[qemu] {m}"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = tempfile.mkdtemp(prefix="hvsim-bq-", dir="/tmp")
    daemon = backend = guest = None
    try:
        daemon = qemu.Daemon(run_dir).start()
        vm = daemon.ctl("vm", "add", "bench-vm", json_out=True)
        backend = qemu.Backend(qemu.BIN / "hvsim-vhost", f"{run_dir}/vhost.sock", vm["cid"],
                               daemon.env("bench-vm"), out / "vhost.log").start()
        hport = free_port()
        guest = qemu.Guest(out, img, cmd=f"hvsim-guest-bench serve {VSOCK_PORT} {TCP_GUEST_PORT}",
                           vsock_socket=f"{run_dir}/vhost.sock", name="bench-guest", append="hvsim.guest=1",
                           net=([], [f"{hport}-{TCP_GUEST_PORT}"])).start()
        guest.wait_for(re.compile(r"HVSIM-BENCH-LISTENING"))
        raw_path = out / "raw.json"
        argv = [str(qemu.BIN / "hvsim-qemu-bench"), "--vm", vm["id"], "--vsock-port", str(VSOCK_PORT),
                "--tcp-port", str(hport), "--rounds", str(cfg["rounds"]), "--bytes", str(cfg["bytes"]),
                "--size", str(cfg["size"]), "--pings", str(cfg["pings"]), "--json", str(raw_path), "--quit"]
        say(f"measuring: {' '.join(Path(a).name if i == 0 else a for i, a in enumerate(argv))}")
        tool = subprocess.Popen(argv, env=daemon.env("host"), stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + TOOL_TIMEOUT_S
        # Keep reading the guest's console while the tool runs: QEMU stalls on a full pipe.
        while tool.poll() is None:
            if time.monotonic() > deadline:
                tool.kill()
                raise BenchError(f"hvsim-qemu-bench did not finish in {TOOL_TIMEOUT_S} s")
            guest._pump(time.monotonic() + 0.5)
        if tool.returncode != 0:
            raise BenchError(f"hvsim-qemu-bench exited {tool.returncode}\n{guest.logs(20)}\n{backend.logs(20)}")
        res = guest.wait_exit()
        if res.code != 0:
            raise BenchError(f"the guest's server exited {res.code}\n{guest.logs(20)}")
        raw = json.loads(raw_path.read_text())
    except qemu.GuestError as e:
        raise BenchError(str(e)) from e
    finally:
        if guest is not None:
            guest.stop()
        if backend is not None:
            backend.stop()
        if daemon is not None:
            daemon.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    doc = {
        "schema": SCHEMA,
        "target": "qemu",
        "mode": "quick" if quick else "full",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "arch": platform.machine()},
        "guest": {"image": str(Path(img.vmlinuz).parent), "accel": "tcg", "memory": qemu.MEM},
        "config": cfg,
        "figures": summarise(raw),
    }
    lines = table_lines(doc)
    (out / "table.txt").write_text("\n".join(lines) + "\n")
    with open(out / "latest.json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    say("")
    say("\n".join(lines))
    say(f"wrote {out / 'latest.json'}, {out / 'table.txt'}")
    return doc
