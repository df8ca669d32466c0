# SPDX-License-Identifier: MIT
"""The conformance suite against the simulator, as `make conformance` runs it,
plus a unit test of the report writers on a synthetic result set.

Run with: /usr/bin/python3 -m pytest harness/test_conformance_sim.py
Binaries come from build/bin of the repository, or from $HVSIM_BIN.
"""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HVSIM_BIN") or REPO / "build" / "bin")
sys.path.insert(0, str(REPO / "conformance"))
import report  # noqa: E402

MIN_CASES = 60
RUN_TIMEOUT = 400  # run.py's own deadline is 300 s: this bounds run.py itself


def run_py(*args, timeout=RUN_TIMEOUT):
    for name in ("hvsimd", "hvsimctl", "hvsim-agent"):
        if not os.access(BIN / name, os.X_OK):
            pytest.fail(f"{BIN / name} is missing: build it first (make conformance builds it), "
                        "or point HVSIM_BIN at the binaries")
    return subprocess.run(["/usr/bin/python3", str(REPO / "conformance" / "run.py"), "--target", "sim",
                           "--bin", str(BIN), "--quiet"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory):
    """One unsharded run, as make conformance makes it: (run.py's result, out dir)."""
    out = tmp_path_factory.mktemp("conformance") / "out"
    return run_py("--out", out), out


def test_sim_target_passes(unsharded):
    r, out = unsharded
    assert r.returncode == 0, f"run.py exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    res = json.loads((out / "results.json").read_text())
    assert res["schema"] == "hvsim-conformance/1" and res["target"] == "sim"
    assert res["columns"] == ["windows", "hvsock", "virtio"]
    for col in res["columns"]:
        ids = [c["id"] for c in res["cases"] if c["column"] == col]
        assert len(ids) >= MIN_CASES, f"column {col}: {len(ids)} cases, expected at least {MIN_CASES}"
    bad = [f"{c['id']} [{c['column']}]: {c['message']}" for c in res["cases"] if c["result"] == "fail"]
    assert not bad, "failures:\n" + "\n".join(bad)
    ET.parse(out / "junit.xml")
    for name in ("matrix.md", "matrix.html", "results-sim.json", "results.tap", "results.ktap"):
        assert (out / name).stat().st_size > 0, name
    ktap = (out / "results.ktap").read_text().splitlines()
    assert ktap[0] == "KTAP version 1" and ktap[-1] == "ok 3 sim.virtio"


def test_shards_merged_equal_the_unsharded_run(unsharded, tmp_path):
    """run.py --shard 1/3, 2/3, 3/3 (as three CI jobs), report.py --merge:
    the same cases, results and messages in the same order as one run."""
    r, full_out = unsharded
    assert r.returncode == 0, r.stdout + r.stderr
    shard_files, seen = [], []
    for i in (1, 2, 3):
        out = tmp_path / f"shard-{i}"
        rs = run_py("--shard", f"{i}/3", "--out", out)
        assert rs.returncode == 0, f"shard {i}/3 exited {rs.returncode}:\n{rs.stdout}\n{rs.stderr}"
        s = report.load_set(out / "results-sim.json")
        assert s["shard"]["index"] == i and s["shard"]["count"] == 3
        seen += s["shard"]["ids"]
        shard_files.append(out / "results-sim.json")
    full = report.load_set(full_out / "results-sim.json")
    assert sorted(seen) == sorted({c["id"] for c in full["cases"]}) and len(seen) == len(set(seen))
    merged_out = tmp_path / "merged"
    m = subprocess.run(["/usr/bin/python3", str(REPO / "conformance" / "report.py"), "--merge", "--out",
                        str(merged_out)] + [str(f) for f in reversed(shard_files)], capture_output=True, text=True)
    assert m.returncode == 0, m.stdout + m.stderr
    merged = report.load_set(merged_out / "results-sim.json")
    assert report.comparable(merged) == report.comparable(full)
    assert report.render_text([merged]) == report.render_text([full])
    names = lambda p: [(t.get("classname"), t.get("name")) for t in ET.parse(p).getroot().iter("testcase")]
    assert names(merged_out / "junit.xml") == names(full_out / "junit.xml")
    assert (merged_out / "results.ktap").read_text() == (full_out / "results.ktap").read_text()


def test_merge_refuses_a_missing_or_doubled_shard():
    base = synthetic()
    ids = ["bind.duplicate-eaddrinuse", "conn.refused", "data.peek"]

    def shard(i, n=2):
        mine = ids[i - 1::n]
        return report.make_set("sim", [c for c in base["cases"] if c["id"] in mine], base["columns"],
                               shard={"index": i, "count": n, "ids": mine, "catalogue": ids})
    merged = report.merge_sets([shard(2), shard(1)])
    assert report.comparable(merged) == report.comparable(base)
    for bad in ([shard(1)], [shard(1), shard(1)], [shard(1), shard(2), shard(2)], [base]):
        with pytest.raises(report.ReportError):
            report.merge_sets(bad)


def synthetic():
    def case(cid, area, col, result, message="", conf="INFERRED"):
        return {"id": cid, "area": area, "rule": f"rule <{cid}> | a & b", "source": "docs/reference/hyperv-sockets.md 4.1 [S7b]",
                "confidence": conf, "column": col, "target": "sim", "backend": "hvsim", "expected": "ECONNREFUSED",
                "result": result, "message": message, "ms": 12}
    cases = []
    for col in ("windows", "hvsock"):
        cases += [case("bind.duplicate-eaddrinuse", "binding", col, "pass", conf="sourced"),
                  case("conn.refused", "connecting", col, "fail" if col == "hvsock" else "pass",
                       'expected ECONNREFUSED, got ETIMEDOUT, at "connect" <x> (cases_connecting.c:10)'),
                  case("data.peek", "data", col, "divergence" if col == "hvsock" else "skip",
                       "known divergence: hv_sock refuses MSG_PEEK" if col == "hvsock" else "does not apply")]
    return report.make_set("sim", cases, ["windows", "hvsock"])


def test_report_writes_every_format(tmp_path):
    sim = synthetic()
    hv = report.make_set("hyperv", [dict(c, target="hyperv", result="pass") for c in sim["cases"]
                                    if c["column"] == "windows"])
    paths = report.write_all(tmp_path, sim, [sim, hv])

    res = json.loads(paths["results"].read_text())
    assert res["schema"] == report.SCHEMA and len(res["cases"]) == 6

    root = ET.parse(paths["junit"]).getroot()
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["sim.windows", "sim.hvsock"]
    hvsock = suites[1]
    assert hvsock.get("tests") == "3" and hvsock.get("failures") == "1"
    failed = [tc for tc in hvsock.findall("testcase") if tc.find("failure") is not None]
    assert [(tc.get("classname"), tc.get("name")) for tc in failed] == [("connecting", "conn.refused")]
    assert "ETIMEDOUT" in failed[0].find("failure").get("message")
    props = {p.get("name"): p.get("value") for p in failed[0].find("properties")}
    assert props["confidence"] == "INFERRED" and props["source"].startswith("docs/reference/hyperv-sockets.md")
    assert suites[0].find("testcase[@name='data.peek']/skipped") is not None

    page = paths["matrix.html"].read_text()
    assert report.LEGEND.split(":")[0] in page and "NOT proof of Hyper-V behaviour" in page
    assert "hyperv / windows" in page and "&lt;conn.refused&gt;" in page  # escaped, side by side
    assert page.count("<table") == page.count("</table>")

    md = paths["matrix.md"].read_text()
    assert "NOT proof of Hyper-V behaviour" in md
    assert "| sim / windows | sim / hvsock | hyperv / windows |" in md
    assert "FAIL [" in md and "divergence [" in md and "(passes on hyperv)" in md
    assert "## binding" in md and md.index("## binding") < md.index("## connecting") < md.index("## data")
    assert "1 FAIL" in md

    text = report.render_text([sim, hv])
    assert "FAIL conn.refused [sim/hvsock]" in text

    # The summary at a glance and the colour by confidence.
    assert '<p class="verdict bad">1 failure in 3 cases</p>' in page
    assert '<td class="conf conf-sourced">sourced</td>' in page and 'class="pass conf-inferred"' in page
    assert "Colour by confidence" in page

    tap = paths["tap"].read_text().splitlines()
    assert tap[:2] == ["TAP version 13", "1..6"] and "not ok 5 - sim.hvsock conn.refused" in tap
    ktap = paths["ktap"].read_text().splitlines()
    assert ktap[:3] == ["KTAP version 1", "# hvsim conformance: sim", "1..2"]
    assert "  ok 3 data.peek # SKIP does not apply" in ktap
    assert "  ok 3 data.peek # XFAIL known divergence: hv_sock refuses MSG_PEEK" in ktap
    assert "  not ok 2 conn.refused" in ktap and ktap[-1] == "not ok 2 sim.hvsock"
