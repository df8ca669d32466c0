# SPDX-License-Identifier: MIT
"""ci/soak.py's judge: which fault a cut stream is laid to (no daemon; the function alone)."""
import importlib.util
from pathlib import Path

SOAK = Path(__file__).resolve().parent.parent / "ci" / "soak.py"


def load():
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def cut(vm, end_ms):
    return {"vm": vm, "stream": 1, "end": "EPIPE", "end_ms": end_ms}


def test_a_cut_while_a_slow_fault_runs_is_laid_to_it():
    soak = load()
    # vm-off-start began at 0 and its commands returned at 12.5 s (a loaded machine); the streams
    # it cut ended at 13 s: more than the window after its start, within it after its end.
    faults = [{"ms": 0, "end_ms": 12500, "t": 0.0, "fault": "vm-off-start"}]
    [c] = soak.judge([cut("vm1", 13000)], faults)
    assert c["cause"] == "vm-off-start" and not c["unexpected"]


def test_a_cut_long_after_the_fault_ended_is_unexpected():
    soak = load()
    faults = [{"ms": 0, "end_ms": 100, "t": 0.0, "fault": "vm-off-start"}]
    [c] = soak.judge([cut("vm1", 100 + int(soak.CUT_WINDOW_S * 1000) + 500)], faults)
    assert c["cause"] is None and c["unexpected"]


def test_a_cut_after_a_fault_that_must_cut_nothing_is_unexpected():
    soak = load()
    faults = [{"ms": 0, "end_ms": 100, "t": 0.0, "fault": "vm-reset"},
              {"ms": 1000, "end_ms": 1600, "t": 1.0, "fault": "daemon-kill"}]
    [c] = soak.judge([cut("vm1", 2000)], faults)
    assert c["cause"] == "daemon-kill" and c["unexpected"]
    [v2] = soak.judge([cut("vm2", 200)], faults)
    assert v2["unexpected"]
