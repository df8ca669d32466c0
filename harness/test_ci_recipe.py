# SPDX-License-Identifier: MIT
"""The CI recipes of examples/ci/ run here as a script: every `run:` step of
github-actions.yml in job order (the conformance job once per matrix shard,
then the merge), then the Containerfile's RUN and CMD steps. GitHub's own
actions (checkout, upload/download-artifact) cannot run offline; the test
checks instead that the artifacts they would move are where the next step
looks. Each step is examples/ci/ci.sh, which CI and users run the same way."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CI = REPO / "examples" / "ci"
BIN = Path(os.environ.get("HVSIM_BIN") or REPO / "build" / "bin").resolve()
sys.path.insert(0, str(REPO / "conformance"))
import report  # noqa: E402

KNOWN_ACTIONS = ("actions/checkout@", "actions/upload-artifact@", "actions/download-artifact@")
STEP_TIMEOUT = 600


def parse_workflow(text):
    """{job: {"steps": [(kind, value, with)], "matrix": {...}, "needs": ...}} from the
    recipe's small YAML subset (no YAML library here: standard library only)."""
    jobs, job, step, in_with = {}, None, None, False
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        ind = len(line) - len(line.lstrip())
        s = line.strip()
        if ind == 2 and s.endswith(":"):
            job = jobs[s[:-1]] = {"steps": [], "matrix": {}, "needs": None}
            continue
        if job is None:
            continue
        if ind == 4 and s.startswith("needs:"):
            job["needs"] = s.split(":", 1)[1].strip()
        m = re.match(r"(\w+): \[(.*)\]$", s)
        if ind == 8 and m:
            job["matrix"][m.group(1)] = [v.strip() for v in m.group(2).split(",")]
        m = re.match(r"- (run|uses): (.*)$", s)
        if m:
            step = [m.group(1), m.group(2), {}]
            job["steps"].append(step)
            in_with = False
            continue
        if step is not None and s == "with:":
            in_with = True
            continue
        if step is not None and in_with and ind >= 10 and ":" in s:
            k, v = s.split(":", 1)
            step[2][k.strip()] = v.strip()
    return jobs


@pytest.fixture
def ci_env(tmp_path):
    for name in ("hvsimd", "hvsimctl", "hvsim-run", "hvsim-agent"):
        if not os.access(BIN / name, os.X_OK):
            pytest.fail(f"{BIN / name} is missing: build it first (make all), or point HVSIM_BIN at the binaries")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "HVSIM_DIR",
                                                            "HVSIM_PARTITION", "HVSIM_SESSION_DIR")}
    san = {"asan": "address", "ubsan": "undefined", "tsan": "thread"}.get(BIN.parent.name)
    env.update(HVSIM_BIN=str(BIN), HVSIM_CI_OUT=str(tmp_path / "conformance"),
               HVSIM_CI_DIR=tempfile.mkdtemp(prefix="hvsim-ci-", dir="/tmp"), MAKE_ARGS=f"SANITIZE={san}" if san else "")
    yield env
    pidfile = Path(env["HVSIM_CI_DIR"], "hvsimd.pid")
    if pidfile.exists():  # a failed step before daemon-stop: stop the daemon the recipe started
        subprocess.run([sys.executable, "-m", "hvsim", "stop-daemon", "--dir", env["HVSIM_CI_DIR"]],
                       env=dict(env, PYTHONPATH=str(REPO / "sim" / "python")), capture_output=True)
    shutil.rmtree(env["HVSIM_CI_DIR"], ignore_errors=True)


def step(cmd, env):
    r = subprocess.run(["sh", "-c", cmd], cwd=REPO, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"step `{cmd}` exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_github_actions_steps_run_as_a_script(ci_env):
    jobs = parse_workflow((CI / "github-actions.yml").read_text())
    assert list(jobs) == ["tests", "conformance", "report"] and jobs["report"]["needs"] == "conformance"
    out = Path(ci_env["HVSIM_CI_OUT"])
    ran = []
    for name, job in jobs.items():
        for value in job["matrix"].get("shard", [None]):
            for kind, text, with_ in job["steps"]:
                if value is not None:
                    text = text.replace("${{ matrix.shard }}", value)
                    with_ = {k: v.replace("${{ matrix.shard }}", value) for k, v in with_.items()}
                if kind == "uses":
                    assert text.startswith(KNOWN_ACTIONS), f"job {name}: unknown action {text}"
                    # What the artifact actions move must be where ci.sh writes and reads it.
                    path = with_.get("path", "")
                    if "upload-artifact" in text and name == "conformance":
                        local = out / Path(path).relative_to("build/conformance")
                        assert (local / "results-sim.json").is_file(), f"nothing to upload at {path}"
                        assert with_["name"] == Path(path).name
                    if "download-artifact" in text:
                        assert path == "build/conformance/shards" and with_["pattern"] == "shard-*"
                    continue
                assert text.startswith("sh examples/ci/ci.sh "), f"job {name}: a step outside ci.sh: {text}"
                r = step(text, ci_env)
                ran.append(text)
                if "user-tests" in text:
                    assert re.search(r"\b\d+ passed\b", r.stdout) and " failed" not in r.stdout, r.stdout
    assert any("conformance 3/3" in s for s in ran) and ran[-1].endswith("merge")
    merged = report.load_set(out / "merged" / "results-sim.json")
    assert [s["index"] for s in merged["shards"]] == [1, 2, 3]
    assert not report.failures(merged)
    assert (out / "merged" / "results.ktap").read_text().startswith("KTAP version 1\n")
    assert not os.path.exists(os.path.join(ci_env["HVSIM_CI_DIR"], "hvsimd.pid")), "daemon-stop left the daemon"


def test_container_recipe_steps_run_as_a_script(ci_env):
    text = (CI / "Containerfile").read_text()
    assert re.search(r"^FROM debian:12$", text, re.M)
    runs = re.findall(r"^RUN (.*)$", text, re.M)
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    assert runs and cmd == ["sh", "examples/ci/ci.sh", "all"]
    for r in runs:
        step(r, ci_env)
    r = step(shlex.join(cmd), ci_env)
    res = json.loads((Path(ci_env["HVSIM_CI_OUT"]) / "results.json").read_text())
    assert res["target"] == "sim" and not report.failures(report.make_set("sim", res["cases"]))
    assert re.search(r"\b\d+ passed\b", r.stdout), r.stdout


def test_unknown_step_is_an_error():
    r = subprocess.run(["sh", str(CI / "ci.sh"), "nonsense"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2 and "unknown step" in r.stderr
