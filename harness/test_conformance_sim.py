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


def test_sim_target_passes(tmp_path):
    for name in ("hvsimd", "hvsimctl", "hvsim-agent"):
        if not os.access(BIN / name, os.X_OK):
            pytest.fail(f"{BIN / name} is missing: build it first (make conformance builds it), "
                        "or point HVSIM_BIN at the binaries")
    out = tmp_path / "out"
    r = subprocess.run(["/usr/bin/python3", str(REPO / "conformance" / "run.py"), "--target", "sim", "--bin", str(BIN),
                        "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=RUN_TIMEOUT,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"run.py exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    res = json.loads((out / "results.json").read_text())
    assert res["schema"] == "hvsim-conformance/1" and res["target"] == "sim"
    assert res["columns"] == ["windows", "hvsock"]
    for col in res["columns"]:
        ids = [c["id"] for c in res["cases"] if c["column"] == col]
        assert len(ids) >= MIN_CASES, f"column {col}: {len(ids)} cases, expected at least {MIN_CASES}"
    bad = [f"{c['id']} [{c['column']}]: {c['message']}" for c in res["cases"] if c["result"] == "fail"]
    assert not bad, "failures:\n" + "\n".join(bad)
    ET.parse(out / "junit.xml")
    for name in ("matrix.md", "matrix.html", "results-sim.json"):
        assert (out / name).stat().st_size > 0, name


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
