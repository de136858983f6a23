"""``modelyard agent``: real agent processes on one store — a due trigger runs exactly once, an agent
killed mid-run leaves its run interrupted and resumable, Ctrl+C and SIGTERM stop it cleanly."""

from __future__ import annotations

import configparser
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import assert_no_traceback, cli, subprocess_env
from modelyard.core.pipelines.catalog import save_pipeline
from modelyard.core.pipelines.spec import Pipeline, Step, Trigger
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import select, update

ROOT = Path(__file__).resolve().parents[2]
YEARLY = "0 0 1 1 *"  # with the pipeline listed years ago: due now (this year's 1 January), whatever the time


def list_pipeline(root: Path, folder: Path, command: str, *, name: str = "hello") -> None:
    """List a one-step shell pipeline with a yearly schedule, as if listed two years ago."""
    pipeline = Pipeline(name=name, path=str(folder / f"{name}.yaml"), folder=str(folder),
                        steps=(Step("say", "shell", {"command": command}),),
                        triggers=(Trigger(key="schedule:0", type="schedule", cron=YEARLY),), sha256="1" * 64)
    with Store.open(root, create=False) as store:
        pid = save_pipeline(store, pipeline)
        with store.write() as s:
            s.execute(update(m.Pipeline).where(m.Pipeline.id == pid)
                      .values(created_at=m.utcnow() - dt.timedelta(days=800)))


def pipeline_runs(root: Path) -> list[tuple[int, str, dict]]:
    with Store.open(root, create=False, sweep=False) as store, store.session() as s:
        return [(r.id, r.status, r.trigger or {}) for r in s.scalars(select(m.PipelineRun).order_by(m.PipelineRun.id))]


def agent(root: Path, *args: str, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "modelyard", "agent", "--store", str(root), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
                            start_new_session=True, **kwargs)


def stop(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` and its process group if it is still there (finally blocks)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.communicate(timeout=10)
    except (subprocess.TimeoutExpired, ValueError):
        pass


def events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_two_agents_run_a_due_trigger_exactly_once(store_dir: Path, tmp_path: Path) -> None:
    list_pipeline(store_dir, tmp_path, "echo hello from the pipeline")
    procs = [agent(store_dir, "--once", "--json") for _ in range(2)]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            stop(p)
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert_no_traceback(["agent", "--once"], out, err)
    runs = pipeline_runs(store_dir)
    assert len(runs) == 1, runs
    run_id, status, trigger = runs[0]
    assert status == "succeeded"
    assert trigger["type"] == "schedule" and trigger["due"] == f"{dt.datetime.now(dt.UTC).year}-01-01T00:00:00Z"
    claimed = [e for out, _ in outs for e in events(out) if e["event"] == "claimed"]
    finished = [e for out, _ in outs for e in events(out) if e["event"] == "finished"]
    assert [e["run_id"] for e in claimed] == [run_id] and [e["status"] for e in finished] == ["succeeded"]
    with Store.open(store_dir, create=False) as store, store.session() as s:
        assert [(f.decision, f.run_id) for f in s.scalars(select(m.TriggerFiring))] == [("run", run_id)]

    # a third pass finds nothing due any more
    code, out, err = run_once(store_dir)
    assert code == 0 and "started by" not in out
    assert len(pipeline_runs(store_dir)) == 1


def run_once(root: Path, *args: str) -> tuple[int, str, str]:
    proc = agent(root, "--once", *args)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        stop(proc)
    assert_no_traceback(["agent", "--once", *args], out, err)
    return proc.returncode, out, err


def test_an_agent_killed_mid_run_leaves_the_run_interrupted_and_resume_completes_it(
        store_dir: Path, tmp_path: Path) -> None:
    from modelyard.core.pipelines.runner import resume_run

    go, step_pid = tmp_path / "go", tmp_path / "step.pid"
    # the step waits for the file 'go' (at most 60 s): the agent is killed while it waits
    list_pipeline(store_dir, tmp_path, f"echo $$ > '{step_pid}'; i=0; while [ ! -f '{go}' ] && [ $i -lt 600 ]; "
                                       "do sleep 0.1; i=$((i+1)); done; test -f '" + str(go) + "'")
    proc = agent(store_dir, "--interval", "1")
    try:
        wait_for(lambda: step_pid.exists() and step_pid.read_text().strip(), 60, "the step to start")
        [(run_id, status, _)] = pipeline_runs(store_dir)
        assert status == "running"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert pipeline_runs(store_dir)[0][1] == "running"  # nobody has looked yet

        code, out, _ = run_once(store_dir)  # the next agent's sweep
        assert code == 0
        assert "whose process had ended as interrupted" in out
        [(_, status, _)] = pipeline_runs(store_dir)
        assert status == "interrupted"
        with Store.open(store_dir, create=False) as store, store.session() as s:
            steps = s.scalars(select(m.PipelineStepRun).where(m.PipelineStepRun.run_id == run_id)).all()
            assert [st.status for st in steps] == ["interrupted"]

        go.write_text("go")
        with Store.open(store_dir, create=False) as store:
            outcome = resume_run(store, run_id)
        assert outcome.status == "succeeded", outcome
        runs = pipeline_runs(store_dir)
        assert [r[1] for r in runs] == ["interrupted", "succeeded"]
        assert runs[1][2] == {"type": "resume", "run": run_id}
    finally:
        stop(proc)
        go.touch()  # the killed agent's step (in a session of its own) ends too
        if step_pid.exists() and step_pid.read_text().strip():
            try:
                os.kill(int(step_pid.read_text().strip()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_agent_cleanly_and_cancels_the_run_going(store_dir: Path, tmp_path: Path,
                                                                     sig: signal.Signals) -> None:
    step_pid = tmp_path / "step.pid"
    list_pipeline(store_dir, tmp_path, f"echo $$ > '{step_pid}'; sleep 60")
    proc = agent(store_dir, "--interval", "1")
    try:
        wait_for(lambda: step_pid.exists() and step_pid.read_text().strip(), 60, "the step to start")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 0, err
    assert_no_traceback(["agent"], out, err)
    assert "Stopping: cancelling 1 pipeline run still going." in out
    assert "Agent stopped: 1 run started, 1 finished, 1 not succeeded." in out
    [(_, status, _)] = pipeline_runs(store_dir)
    assert status == "cancelled"
    wait_for(lambda: _gone(int(step_pid.read_text())), 10, "the step's command to end")  # stopped with it


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.sqlite_only("the first line names the store folder alone (SQLite)")
def test_agent_once_with_nothing_due(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "agent", "--once", "--store", str(store_dir))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"Agent on the store at {store_dir} (one pass, up to 1 run at once).")
    assert lines[-1] == "Agent stopped: 0 runs started, 0 finished."

    code, out, _ = cli(capsys, "agent", "--once", "--json", "--store", str(store_dir))
    assert code == 0
    assert events(out) == [{"event": "stopped", "claimed": 0, "finished": 0, "failed": 0, "skipped": 0,
                            "errors": 0}]


@pytest.mark.sqlite_only("a store named by its folder; with MODELYARD_DB_URL the database decides")
def test_agent_refuses_a_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "agent", "--once", "--store", str(tmp_path / "nowhere"))
    assert code == 1 and "No Modelyard store" in err


@pytest.mark.parametrize("args", [["--interval", "0"], ["--jobs", "0"], ["--interval", "soon"]])
def test_agent_usage_errors(store_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = cli(capsys, "agent", "--once", *args, "--store", str(store_dir))
    assert code == 2 and args[0] in err


# --------------------------------------------------------------------------- the systemd unit


def test_the_systemd_user_unit_runs_the_agent() -> None:
    unit_path = ROOT / "packaging" / "systemd" / "modelyard-agent.service"
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # keys are case-sensitive
    unit.read_string(unit_path.read_text())
    service = unit["Service"]
    assert service["ExecStart"].split()[1:3] == ["agent", "--interval"]
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"
    assert "MODELYARD_STORE=" in service["Environment"] or "MODELYARD_STORE" in unit_path.read_text()
    assert unit["Install"]["WantedBy"] == "default.target"  # a user unit: started with the user's manager
    readme = (ROOT / "packaging" / "systemd" / "README.md").read_text()
    for needed in ("systemctl --user enable --now modelyard-agent", "journalctl --user -u modelyard-agent",
                   "MODELYARD_STORE", "MODELYARD_DB_URL", "loginctl enable-linger"):
        assert needed in readme


def test_the_systemd_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    """systemd's own check of the unit's syntax (the command is pointed at an executable that exists)."""
    assert shutil.which("systemd-analyze"), "this test needs systemd-analyze: apt-get install systemd"
    text = (ROOT / "packaging" / "systemd" / "modelyard-agent.service").read_text()
    copy = tmp_path / "modelyard-agent.service"
    copy.write_text(text.replace("%h/.local/bin/modelyard", sys.executable))
    proc = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "modelyard-agent" in ln]
    assert not problems, problems


def test_a_run_the_stop_came_before_is_left_queued_and_the_next_agent_runs_it(store_dir: Path,
                                                                              tmp_path: Path) -> None:
    step_pid = tmp_path / "step.pid"
    list_pipeline(store_dir, tmp_path, f"echo $$ > '{step_pid}'; sleep 60", name="slow")
    list_pipeline(store_dir, tmp_path, "echo quick", name="quick")
    proc = agent(store_dir, "--interval", "1", "--jobs", "1")
    try:
        wait_for(lambda: step_pid.exists() and step_pid.read_text().strip(), 60, "the slow step to start")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 0, err
    assert "left queued (stopped before its turn); the next agent starts it." in out
    assert [r[1] for r in pipeline_runs(store_dir)] == ["cancelled", "queued"]

    code, out, _ = run_once(store_dir)
    assert code == 0
    assert f"quick: the agent that claimed its schedule '{YEARLY}' (due {dt.datetime.now(dt.UTC).year}-01-01T00:00:00Z" \
           ") stopped before running it; this one takes it over." in out
    assert [r[1] for r in pipeline_runs(store_dir)] == ["cancelled", "succeeded"]
