"""``modelyard pipeline ...``: validate (every problem as FILE:LINE:COL, nothing written), run / runs /
show / list / resume with --json and their exit codes, add and schedules, and Ctrl+C cancelling a run.

The pipelines here are ``python`` steps calling functions of a module written beside the pipeline file
(each step runs in a child process, as in real use); the gate that blocks is the shipped example's own
gate with a minimum accuracy no model reaches.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import cli, cli_json, run_modelyard, subprocess_env

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "churn-pipeline"

STEPS_MODULE = '''\
import os
import pathlib
import time


def make(n):
    print(f"making {n}")
    return {"n": n, "items": list(range(n))}


def triple(n):
    return n * 3


def slow(marker, seconds=120):
    pathlib.Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return "done"
'''

GOOD = """\
name: cli-flow
description: two python steps
params:
  n: 2
steps:
  make:
    kind: python
    params: {function: "flow_steps:make", args: {n: "${params.n}"}}
  triple:
    kind: python
    params: {function: "flow_steps:triple", args: {n: "${steps.make.outputs.return.n}"}}
"""

FLAKY = """\
name: cli-flaky
params:
  flag: missing.flag
steps:
  first:
    kind: python
    params: {function: "flow_steps:make", args: {n: 1}}
  flaky:
    kind: shell
    params: {command: "test -f ${params.flag}"}
  after:
    kind: python
    needs: [flaky]
    params: {function: "flow_steps:triple", args: {n: "${steps.first.outputs.return.n}"}}
"""

SLOW = """\
name: cli-slow
params:
  marker: started.txt   # the test gives an absolute path
steps:
  wait:
    kind: python
    params: {function: "flow_steps:slow", args: {marker: "${params.marker}"}}
  after:
    kind: python
    needs: [wait]
    params: {function: "flow_steps:triple", args: {n: 1}}
"""

SCHEDULED = """\
name: cli-nightly
triggers:
  - schedule: "0 2 * * *"
steps:
  make:
    kind: python
    params: {function: "flow_steps:make", args: {n: 1}}
"""

# Bad files: the lines marked "# <-" are where the problem is (any of them, for a cycle).
BAD = {
    "malformed-yaml": ("""\
name: bad-yaml
steps:
  a: kind: python   # <-
""", None),
    "unknown-kind": ("""\
name: bad-kind
steps:
  a:
    kind: pyhton   # <-
    params: {function: "flow_steps:make"}
""", "python"),
    "cycle": ("""\
name: bad-cycle
steps:
  a:   # <-
    kind: python
    needs: [b]   # <-
    params: {function: "flow_steps:make"}
  b:   # <-
    kind: python
    needs: [a]   # <-
    params: {function: "flow_steps:make"}
""", None),
    "missing-step": ("""\
name: bad-reference
steps:
  a:
    kind: python
    params: {function: "flow_steps:triple", args: {n: "${steps.nope.outputs.return}"}}   # <-
""", None),
    "bad-cron": ("""\
name: bad-cron
triggers:
  - schedule: "61 * * * *"   # <-
steps:
  a:
    kind: python
    params: {function: "flow_steps:make"}
""", None),
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with the steps' module and the pipeline files."""
    f = tmp_path / "pipelines"
    f.mkdir()
    (f / "flow_steps.py").write_text(STEPS_MODULE)
    for name, text in (("good.yml", GOOD), ("flaky.yml", FLAKY), ("slow.yml", SLOW), ("scheduled.yml", SCHEDULED)):
        (f / name).write_text(text)
    return f


def _marked_lines(text: str) -> set[int]:
    return {i for i, line in enumerate(text.splitlines(), 1) if "# <-" in line}


def _nothing_recorded(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    assert cli_json(capsys, "--store", str(store), "pipeline", "list")[1] == []
    assert cli_json(capsys, "--store", str(store), "pipeline", "runs")[1] == []


# --------------------------------------------------------------------------- validate


def test_validate_a_good_file(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, out, err = cli(capsys, "pipeline", "validate", str(folder / "good.yml"))
    assert code == 0, err
    assert "good.yml is valid." in out and err == ""
    code, data, _ = cli_json(capsys, "pipeline", "validate", str(folder / "good.yml"), str(folder / "flaky.yml"))
    assert code == 0 and data["valid"] is True and data["problems"] == []


@pytest.mark.parametrize("case", sorted(BAD))
def test_validate_names_file_line_and_column_and_writes_nothing(capsys: pytest.CaptureFixture[str], folder: Path,
                                                                store_dir: Path, case: str) -> None:
    text, hint_word = BAD[case]
    path = folder / f"{case}.yml"
    path.write_text(text)
    lines = _marked_lines(text)

    code, out, err = cli(capsys, "--store", str(store_dir), "pipeline", "validate", str(path))
    assert code == 1, out + err
    found = re.findall(rf"^{re.escape(str(path))}:(\d+):(\d+): (.+)$", err, re.M)
    assert found, f"no FILE:LINE:COL line on stderr:\n{err}"
    assert any(int(line) in lines for line, _, _ in found), f"expected a problem on line {sorted(lines)}:\n{err}"
    assert all(int(col) >= 1 for _, col, _ in found)
    if hint_word:
        assert hint_word in err

    code, data, _ = cli_json(capsys, "--store", str(store_dir), "pipeline", "validate", str(path))
    assert code == 1 and data["valid"] is False
    assert data["problems"] and {"file", "line", "column", "message", "hint"} <= set(data["problems"][0])
    assert any(p["line"] in lines for p in data["problems"])

    # 'run' and 'add' refuse it the same way, and nothing reaches the store
    for verb in ("run", "add"):
        code, out, err = cli(capsys, "--store", str(store_dir), "pipeline", verb, str(path))
        assert code == 1
        assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: ", err, re.M), err
        assert "nothing was run or recorded" in err
    _nothing_recorded(capsys, store_dir)


def test_validate_a_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(capsys, "pipeline", "validate", str(tmp_path / "nope.yml"))
    assert code == 1
    assert f"{tmp_path / 'nope.yml'}:1:1: " in err


# --------------------------------------------------------------------------- run, runs, show, list


def test_run_then_cached_then_forced_with_runs_show_and_list(capsys: pytest.CaptureFixture[str], folder: Path,
                                                             store_dir: Path) -> None:
    s = ("--store", str(store_dir))
    code, run, err = cli_json(capsys, *s, "pipeline", "run", str(folder / "good.yml"))
    assert code == 0, err
    assert run["status"] == "succeeded" and run["exit_code"] == 0 and run["pipeline"] == "cli-flow"
    steps = {st["name"]: st for st in run["steps"]}
    assert steps["make"]["outputs"]["return"] == {"n": 2, "items": [0, 1]}
    assert steps["triple"]["outputs"]["return"] == 6
    lines = err.splitlines()
    assert lines.index("make: running") < next(i for i, ln in enumerate(lines) if ln.startswith("make: succeeded"))
    assert lines.index("make: running") < lines.index("triple: running")

    # nothing changed: every step cached, with the first run's outputs
    code, out, err = cli(capsys, *s, "pipeline", "run", str(folder / "good.yml"))
    assert code == 0, err
    assert "make: cached" in err and "triple: cached" in err
    assert re.search(r"Run \d+ of cli-flow succeeded in .*\(0 steps ran, 2 cached\)\.", out), out

    # a parameter changes what runs; --force reruns everything
    code, run3, err = cli_json(capsys, *s, "pipeline", "run", "cli-flow", "--param", "n=4")  # by its listed name
    assert code == 0, err
    assert {st["name"]: st["outputs"]["return"] for st in run3["steps"]}["triple"] == 12
    assert run3["params"]["n"] == 4
    code, run4, err = cli_json(capsys, *s, "pipeline", "run", str(folder / "good.yml"), "--force", "--jobs", "2")
    assert code == 0 and {st["status"] for st in run4["steps"]} == {"succeeded"}

    code, runs, _ = cli_json(capsys, *s, "pipeline", "runs", "cli-flow", "--limit", "3")
    assert code == 0 and len(runs) == 3 and [r["id"] for r in runs][:2] == [run4["id"], run3["id"]]
    assert all(r["status"] == "succeeded" and r["pipeline"] == "cli-flow" for r in runs)
    code, out, _ = cli(capsys, *s, "pipeline", "runs")
    assert code == 0 and "cli-flow" in out and "succeeded" in out

    code, shown, _ = cli_json(capsys, *s, "pipeline", "show", str(run["id"]))
    assert code == 0 and shown["id"] == run["id"] and shown["steps"] == run["steps"]
    code, out, _ = cli(capsys, *s, "pipeline", "show", str(run["id"]))
    assert code == 0 and "make" in out and "triple" in out and "succeeded" in out
    code, out, _ = cli(capsys, *s, "pipeline", "show", str(run["id"]), "--log", "make")
    assert code == 0 and "making 2" in out
    code, log, _ = cli_json(capsys, *s, "pipeline", "show", str(run["id"]), "--log", "make")
    assert "making 2" in log["log"]

    code, listed, _ = cli_json(capsys, *s, "pipeline", "list")
    assert code == 0 and [p["name"] for p in listed] == ["cli-flow"]
    assert listed[0]["last_run"]["id"] == run4["id"] and listed[0]["path"] == str(folder / "good.yml")
    code, out, _ = cli(capsys, *s, "pipeline", "list")
    assert "cli-flow" in out and "succeeded" in out


def test_unknown_names_and_bad_params_say_what_to_do(capsys: pytest.CaptureFixture[str], folder: Path,
                                                     store_dir: Path) -> None:
    s = ("--store", str(store_dir))
    code, _, err = cli(capsys, *s, "pipeline", "run", "no-such-pipeline")
    assert code == 1 and "no-such-pipeline" in err
    code, _, err = cli(capsys, *s, "pipeline", "run", str(folder / "good.yml"), "--param", "n")
    assert code == 2 and "KEY=VALUE" in err
    code, _, err = cli(capsys, *s, "pipeline", "run", str(folder / "good.yml"), "--param", "typo=3")
    assert code == 1 and "typo" in err
    code, _, err = cli(capsys, *s, "pipeline", "show", "999")
    assert code == 1 and "999" in err
    assert cli_json(capsys, *s, "pipeline", "runs")[1] == []


def test_a_failed_step_exits_1_and_resume_runs_it_and_what_follows(capsys: pytest.CaptureFixture[str],
                                                                     folder: Path, store_dir: Path) -> None:
    s = ("--store", str(store_dir))
    flag = folder / "go.flag"
    code, run, err = cli_json(capsys, *s, "pipeline", "run", str(folder / "flaky.yml"), "--param", f"flag={flag}")
    assert code == 1
    assert run["status"] == "failed" and run["exit_code"] == 1
    status = {st["name"]: st["status"] for st in run["steps"]}
    assert status == {"first": "succeeded", "flaky": "failed", "after": "skipped"}
    assert "exited with code 1" in {st["name"]: st for st in run["steps"]}["flaky"]["error"]
    assert f"error: run {run['id']} of cli-flaky failed" in err
    assert f"modelyard pipeline resume {run['id']}" in err

    flag.write_text("go")
    code, again, err = cli_json(capsys, *s, "pipeline", "resume", str(run["id"]))
    assert code == 0, err
    assert again["resumed_from"] == run["id"] and again["status"] == "succeeded"
    assert {st["name"]: st["status"] for st in again["steps"]} == {"first": "cached", "flaky": "succeeded",
                                                                    "after": "succeeded"}
    assert "first: cached" in err and "flaky: running" in err and "first: running" not in err
    code, _, err = cli(capsys, *s, "pipeline", "resume", str(again["id"]))  # a run that succeeded
    assert code == 1 and "nothing to resume" in err and "modelyard pipeline run cli-flaky" in err


def test_a_gate_that_blocks_exits_3(capsys: pytest.CaptureFixture[str], tmp_path: Path, store_dir: Path) -> None:
    example = tmp_path / "example"
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("bundles", "__pycache__"))
    code, run, err = cli_json(capsys, "--store", str(store_dir), "pipeline", "run", str(example / "pipeline.yml"),
                              "--param", "min_accuracy=0.99")
    assert code == 3, err
    assert run["status"] == "blocked" and run["exit_code"] == 3
    status = {st["name"]: st["status"] for st in run["steps"]}
    assert status["gate"] == "blocked"
    assert status["register"] == status["bundle"] == status["check"] == "skipped"
    assert "gate: BLOCKED" in err and f"error: run {run['id']} of churn-example was blocked" in err
    assert not (example / "bundles").exists()
    code, _, _ = cli(capsys, "--store", str(store_dir), "model", "show", "churn")
    assert code == 1  # nothing was registered


# --------------------------------------------------------------------------- add, schedules


def test_add_and_switch_schedules(capsys: pytest.CaptureFixture[str], folder: Path, store_dir: Path) -> None:
    s = ("--store", str(store_dir))
    code, out, _ = cli(capsys, *s, "pipeline", "add", str(folder / "scheduled.yml"))
    assert code == 0 and "Listed cli-nightly (1 step)" in out and "cron 0 2 * * *" in out
    code, info, _ = cli_json(capsys, *s, "pipeline", "schedules", "cli-nightly", "off")
    assert code == 0 and info["schedules_enabled"] is False
    code, out, _ = cli(capsys, *s, "pipeline", "list")
    assert re.search(r"cli-nightly\s+1\s+cron 0 2 \* \* \*\s+off\s+never", out), out
    code, out, _ = cli(capsys, *s, "pipeline", "schedules", "cli-nightly", "on")
    assert code == 0 and "are on" in out
    assert cli_json(capsys, *s, "pipeline", "runs")[1] == []  # adding runs nothing
    code, _, err = cli(capsys, *s, "pipeline", "schedules", "nope", "off")
    assert code == 1 and "nope" in err


# --------------------------------------------------------------------------- Ctrl+C


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie is gone too
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_cancels_the_run(folder: Path, store_dir: Path, sig: signal.Signals) -> None:
    marker = folder / "started.txt"
    command = [sys.executable, "-m", "modelyard", "--store", str(store_dir), "pipeline", "run",
               str(folder / "slow.yml"), "--param", f"marker={marker}"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        deadline = time.monotonic() + 60
        while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert marker.exists(), "the slow step never started"
        step_pid = int(marker.read_text())
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, out + err
    assert "Cancelling the run" in err and "was cancelled" in err
    assert "Traceback" not in err
    runs = json.loads(run_modelyard("--store", str(store_dir), "pipeline", "runs", "--json").stdout)
    assert [r["status"] for r in runs] == ["cancelled"]
    shown = json.loads(run_modelyard("--store", str(store_dir), "pipeline", "show", str(runs[0]["id"]),
                                     "--json").stdout)
    assert {st["name"]: st["status"] for st in shown["steps"]} == {"wait": "cancelled", "after": "skipped"}
    deadline = time.monotonic() + 15
    while not _gone(step_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(step_pid), "the step's child process outlived the cancelled run"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "pipeline", "--help")
    assert code == 0
    for verb in ("validate", "run", "resume", "list", "runs", "show", "add", "schedules"):
        assert re.search(rf"^\s+{verb}\s", out, re.M), verb
