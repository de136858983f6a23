"""Searches and cross-validation on a Dask cluster (issue 17): a local cluster of worker processes,
and a scheduler and workers started as separate processes on 127.0.0.1 (the address path).

Every process a test starts is stopped in a ``finally``; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modelyard.core.common.errors import ModelyardError
from modelyard.core.experiments import tracking
from modelyard.core.experiments.training import engine
from modelyard.core.experiments.training.spec import TrainSpec
from modelyard.core.experiments.training.train import runs_of_job, train_and_wait
from modelyard.core.store import Store
from search_helpers import Recorder, blobs_store

APP = Path(__file__).resolve().parents[3] / "app"
PY = sys.executable


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Store]:
    with blobs_store(tmp_path / "store") as store:
        yield store


def search_spec(**search: Any) -> TrainSpec:
    return TrainSpec(dataset="blobs", model="random_forest", cv=search.pop("cv", 2), seed=7,
                     params={"max_depth": 6}, search={"method": "random", "trials": 4, **search})


def trial_results(store: Store, outcome: Any) -> list[dict[str, Any]]:
    """Each trial's params, score, status and its child run's metrics, by trial."""
    out = []
    for t in sorted(outcome.result["search"]["trials"], key=lambda t: t["trial"]):
        child = tracking.get_run(t["run_id"], store=store)
        out.append({"trial": t["trial"], "params": t["params"], "score": t["score"], "status": t["status"],
                    "metrics": child.metrics, "tag": child.tags["search_trial"]})
    return out


# --------------------------------------------------------------------------- a scheduler and workers as processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DaskProcesses:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 (the team's way, on one machine)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, "PYTHONPATH": str(APP),
                    # as docs/scale.md says: a task whose worker died runs once more, then fails
                    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}
        self.address = ""
        self.monitor: Any = None

    def _start(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([PY, *args], stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                stdin=subprocess.DEVNULL, cwd=self.folder)
        log.close()
        self.procs.append(proc)
        return proc

    def start(self, workers: int) -> DaskProcesses:
        file = self.folder / "scheduler.json"
        self._start("-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(file), name="scheduler")
        deadline = time.monotonic() + 60
        while not file.exists() or not file.read_text().strip():
            assert time.monotonic() < deadline, (self.folder / "scheduler.log").read_text()[-2000:]
            time.sleep(0.1)
        time.sleep(0.1)  # the file is written whole, but give its writer the moment
        self.address = json.loads(file.read_text())["address"]
        for i in range(workers):
            self.add_worker(f"worker{i}")
        from distributed import Client

        self.monitor = Client(self.address, timeout=30, set_as_default=False)
        self.monitor.wait_for_workers(workers, timeout=90)
        return self

    def add_worker(self, name: str) -> None:
        self._start("-m", "distributed.cli.dask_worker", self.address, "--nthreads", "1", "--no-nanny",
                    "--no-dashboard", "--host", "127.0.0.1", "--death-timeout", "60", "--name", name, name=name)

    def pids(self) -> dict[str, int]:
        return self.monitor.run(os.getpid)

    def executing(self) -> dict[str, list[str]]:
        def keys(dask_worker: Any) -> list[str]:
            return [str(ts.key) for ts in dask_worker.state.executing]

        return self.monitor.run(keys)

    def scheduler_keys(self) -> list[str]:
        def keys(dask_scheduler: Any) -> list[str]:
            return [str(k) for k in dask_scheduler.tasks if str(k).startswith("modelyard-")]

        return self.monitor.run_on_scheduler(keys)

    def wait_executing(self, part: str, timeout: float = 60, not_on: set[str] = frozenset()) -> str:  # type: ignore[assignment]
        """The worker that executes a task whose key contains ``part`` (and is not in ``not_on``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                for worker, keys in self.executing().items():
                    if worker not in not_on and any(part in k for k in keys):
                        return worker
            except (OSError, TimeoutError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"no worker executed {part} within {timeout} s: {self.executing()}")

    def stop(self) -> None:
        if self.monitor is not None:
            try:
                self.monitor.close(timeout=5)
            except Exception:  # noqa: BLE001 - stopping anyway
                pass
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(3)  # a dask worker sometimes hangs in its own close after SIGTERM: then killed
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def dask_processes(tmp_path: Path) -> Iterator[Any]:
    started: list[DaskProcesses] = []

    def start(workers: int = 2) -> DaskProcesses:
        d = DaskProcesses(tmp_path)
        started.append(d)
        return d.start(workers)

    try:
        yield start
    finally:
        for d in started:
            d.stop()


def in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["out"] = fn()
        except BaseException as exc:  # noqa: BLE001 - the test looks
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


# --------------------------------------------------------------------------- choosing the cluster


def test_cluster_values_are_parsed_and_chosen_in_order(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine.parse_cluster("serial").kind == "serial"
    assert engine.parse_cluster("local:3") == engine.Cluster("local", workers=3, source="the cluster setting")
    assert engine.parse_cluster("10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    assert engine.parse_cluster("tcp://sched.lab:8786").address == "tcp://sched.lab:8786"
    with pytest.raises(ModelyardError, match="'ftp://x' is not a cluster") as err:
        engine.parse_cluster("ftp://x", "--cluster")
    assert "tcp://host:8786" in (err.value.hint or "")
    with pytest.raises(ModelyardError, match="local:0"):
        engine.parse_cluster("local:0")

    monkeypatch.delenv(engine.ENV_VAR, raising=False)
    assert engine.choose_cluster(store).kind == "auto"
    engine.set_cluster_preference(store, "sched.lab:8786")
    assert engine.get_cluster_preference(store) == "tcp://sched.lab:8786"
    assert engine.choose_cluster(store).address == "tcp://sched.lab:8786"
    monkeypatch.setenv(engine.ENV_VAR, "local:2")
    assert engine.choose_cluster(store).text == "local:2"
    assert engine.choose_cluster(store, "serial").kind == "serial"
    with pytest.raises(ModelyardError, match="The cluster preference: 'nowhere' is not a cluster"):
        engine.set_cluster_preference(store, "nowhere")
    engine.set_cluster_preference(store, None)
    assert engine.get_cluster_preference(store) is None
    from modelyard.core.store import models as m
    from sqlalchemy import select

    with store.session() as s:
        actions = [(a.action, a.from_value, a.to_value) for a in s.scalars(
            select(m.AuditEvent).where(m.AuditEvent.entity_id == engine.META_KEY).order_by(m.AuditEvent.id))]
    assert actions == [("cluster_preference", None, "tcp://sched.lab:8786"),
                       ("cluster_preference", "tcp://sched.lab:8786", None)]


# --------------------------------------------------------------------------- the same results everywhere


@pytest.mark.slow
def test_a_search_on_a_local_cluster_of_two_workers_equals_the_serial_search(lab: Store) -> None:
    spec = search_spec()
    serial = train_and_wait(lab, spec, cluster="serial")
    assert serial.status == "succeeded", serial.error
    rec = Recorder()
    t0 = time.monotonic()
    local = train_and_wait(lab, spec, cluster="local:2", reporter=rec)
    assert local.status == "succeeded", local.error
    assert time.monotonic() - t0 < 180
    assert any("on a local cluster of 2 worker processes (2 worker(s)" in line for line in rec.lines), rec.lines
    assert trial_results(lab, local) == trial_results(lab, serial)
    assert local.result["search"]["best"]["params"] == serial.result["search"]["best"]["params"]
    assert local.result["metrics"] == serial.result["metrics"]
    runs = runs_of_job(lab, local.job_id)
    assert len(runs) == 5 and all(r["status"] == "succeeded" for r in runs)
    worker_tags = {tracking.get_run(r["run_id"], store=lab).tags.get("search_worker") for r in runs[1:]}
    assert all(w and w.startswith("tcp://127.0.0.1:") for w in worker_tags), worker_tags
    # a plain cross-validation's folds on the cluster: the same fold metrics too
    cv_spec = TrainSpec(dataset="blobs", model="random_forest", cv=3, seed=7, params={"n_estimators": 30})
    a = train_and_wait(lab, cv_spec, cluster="serial")
    b = train_and_wait(lab, cv_spec, cluster="local:2")
    assert a.status == b.status == "succeeded", (a.error, b.error)
    assert a.result["cv"] == b.result["cv"] and a.result["metrics"] == b.result["metrics"]


@pytest.mark.slow
def test_a_search_through_a_scheduler_address_equals_the_serial_search(lab: Store, dask_processes: Any) -> None:
    spec = search_spec(cv=0)  # holdout: one task per trial
    serial = train_and_wait(lab, spec, cluster="serial")
    assert serial.status == "succeeded", serial.error
    procs = dask_processes(2)
    rec = Recorder()
    remote = train_and_wait(lab, spec, cluster=procs.address, reporter=rec)
    assert remote.status == "succeeded", remote.error
    assert any(f"on the Dask scheduler at {procs.address}" in line for line in rec.lines), rec.lines
    assert trial_results(lab, remote) == trial_results(lab, serial)
    used = {tracking.get_run(t["run_id"], store=lab).tags["search_worker"]
            for t in remote.result["search"]["trials"]}
    assert used <= set(procs.pids()), used
    assert procs.scheduler_keys() == []  # the client released its tasks and the data


# --------------------------------------------------------------------------- workers that die, cancel, no scheduler


def slow_grid(first: int = 1500) -> TrainSpec:
    """A grid whose first trial is slow (a big forest), so a kill lands mid-trial; the rest are quick."""
    return TrainSpec(dataset="blobs", model="random_forest", seed=7, params={"max_depth": 8},
                     search={"method": "grid", "space": {"n_estimators": [first, 10, 20]}})


@pytest.mark.slow
def test_a_worker_killed_mid_trial_has_the_trial_retried_on_another(lab: Store, dask_processes: Any) -> None:
    procs = dask_processes(2)
    pids = procs.pids()
    rec = Recorder()
    thread, box = in_thread(lambda: train_and_wait(lab, slow_grid(), cluster=procs.address, reporter=rec))
    victim = procs.wait_executing("modelyard-trial1-")
    os.kill(pids[victim], signal.SIGKILL)
    thread.join(180)
    assert not thread.is_alive(), "the search did not end within 180 s"
    out = box["out"]
    assert out.status == "succeeded", (out.error, rec.lines)
    trials = {t["trial"]: t for t in out.result["search"]["trials"]}
    assert [trials[i]["status"] for i in (1, 2, 3)] == ["succeeded"] * 3
    slow = tracking.get_run(trials[1]["run_id"], store=lab)
    assert slow.tags["search_worker"] != victim and slow.tags["search_worker"] in pids
    serial = train_and_wait(lab, slow_grid(), cluster="serial")
    assert trial_results(lab, out) == trial_results(lab, serial)  # the retried trial scores the same


@pytest.mark.slow
def test_a_trial_whose_workers_die_twice_fails_with_the_reason_and_the_search_goes_on(
        lab: Store, dask_processes: Any) -> None:
    procs = dask_processes(3)
    pids = procs.pids()
    rec = Recorder()
    thread, box = in_thread(lambda: train_and_wait(lab, slow_grid(), cluster=procs.address, reporter=rec))
    first = procs.wait_executing("modelyard-trial1-")
    os.kill(pids[first], signal.SIGKILL)
    second = procs.wait_executing("modelyard-trial1-", not_on={first})
    os.kill(pids[second], signal.SIGKILL)
    thread.join(180)
    assert not thread.is_alive(), "the search did not end within 180 s"
    out = box["out"]
    assert out.status == "succeeded", out.error
    trials = {t["trial"]: t for t in out.result["search"]["trials"]}
    assert trials[1]["status"] == "failed" and trials[2]["status"] == trials[3]["status"] == "succeeded"
    assert trials[1]["error"] == f"The workers running it died 2 times (the last was {second})."
    assert f"Trial 1 failed: {trials[1]['error']}" in rec.lines
    child = tracking.get_run(trials[1]["run_id"], store=lab)
    assert child.status == "failed" and "died 2 times" in (child.error or "")
    assert out.result["search"]["best"]["trial"] in (2, 3)


@pytest.mark.slow
def test_cancel_cancels_the_outstanding_tasks_and_records_the_search_cancelled(
        lab: Store, dask_processes: Any) -> None:
    procs = dask_processes(1)
    cancel = threading.Event()
    spec = TrainSpec(dataset="blobs", model="random_forest", seed=7, params={"max_depth": 8},
                     search={"method": "grid", "space": {"n_estimators": [400, 10, 20, 30]}})
    thread, box = in_thread(lambda: train_and_wait(lab, spec, cluster=procs.address, cancel_event=cancel))
    procs.wait_executing("modelyard-trial1-")
    assert len(procs.scheduler_keys()) == 4  # the trials, waiting for the one worker

    def dependencies(dask_scheduler: Any) -> dict[str, list[str]]:
        return {str(k): [str(d.key) for d in ts.dependencies] for k, ts in dask_scheduler.tasks.items()
                if str(k).startswith("modelyard-")}

    deps = procs.monitor.run_on_scheduler(dependencies)
    data_keys = {key for keys in deps.values() for key in keys}
    assert all(len(keys) == 1 for keys in deps.values()), deps  # each trial needs only the data...
    assert len(data_keys) == 1 and data_keys.pop().startswith("TrialData-")  # ...sent once for all of them
    t0 = time.monotonic()
    cancel.set()
    thread.join(30)
    assert not thread.is_alive() and time.monotonic() - t0 < 5
    out = box["out"]
    assert out.status == "cancelled"
    runs = runs_of_job(lab, out.job_id)
    assert runs[0]["parent_id"] is None and runs[0]["status"] == "cancelled"
    assert all(r["status"] != "running" for r in runs)
    deadline = time.monotonic() + 10
    while procs.scheduler_keys() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert procs.scheduler_keys() == []  # nothing waits to run
    deadline = time.monotonic() + 60  # a fit already running finishes in its thread; nothing follows it
    while any(procs.executing().values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(procs.executing().values())
    time.sleep(1.0)
    assert not any(procs.executing().values()) and procs.scheduler_keys() == []


@pytest.mark.slow
def test_cancel_on_a_local_cluster_stops_its_worker_processes_and_records_the_search_cancelled(lab: Store) -> None:
    import psutil

    class Watch(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.running = threading.Event()

        def progress(self, fraction: float | None, message: str) -> None:
            super().progress(fraction, message)
            if "trials on a local cluster" in message:
                self.running.set()

    rec = Watch()
    cancel = threading.Event()
    spec = TrainSpec(dataset="blobs", model="random_forest", seed=7, params={"max_depth": 8},
                     search={"method": "grid", "space": {"n_estimators": [3000, 2000, 10]}})
    thread, box = in_thread(lambda: train_and_wait(lab, spec, cluster="local:2", reporter=rec, cancel_event=cancel))
    assert rec.running.wait(120), rec.messages[-3:]
    job_pid = int(next(line for line in rec.lines if line.startswith("Started in process"))
                  .removeprefix("Started in process ").rstrip("."))
    workers = psutil.Process(job_pid).children(recursive=True)
    assert len(workers) >= 2, workers  # the cluster's worker processes (and multiprocessing's helper)
    cancel.set()
    thread.join(30)
    assert not thread.is_alive()
    out = box["out"]
    assert out.status == "cancelled"
    runs = runs_of_job(lab, out.job_id)
    assert runs[0]["status"] == "cancelled" and all(r["status"] != "running" for r in runs)
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert alive == [], f"worker processes left running: {alive}"


def test_an_unreachable_scheduler_is_a_one_line_error_naming_it_within_seconds(lab: Store) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(ModelyardError) as err:
        engine.connect(engine.parse_cluster(address, "--cluster"))
    assert time.monotonic() - t0 < engine.CONNECT_TIMEOUT_S + 3
    assert err.value.message == (f"Cannot reach the Dask scheduler at {address} (from --cluster) within "
                                 f"{engine.CONNECT_TIMEOUT_S:.0f} s.")
    out = train_and_wait(lab, search_spec(), cluster=address)
    assert out.status == "failed" and (out.error or "").splitlines()[0] == err.value.message
    assert runs_of_job(lab, out.job_id) == []  # nothing recorded: the cluster is checked first


# --------------------------------------------------------------------------- a cluster started while the data loads


def silent_scheduler() -> Iterator[str]:
    """An address that takes the TCP connection and never answers Dask's handshake."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def test_a_cancel_while_the_cluster_starts_returns_at_once_not_after_the_handshake_timeout() -> None:
    from modelyard.core.common.errors import JobCancelled

    for address in silent_scheduler():
        start = engine.EngineStart(engine.parse_cluster(address, "--cluster"), n_rows=0, n_jobs=1, model="ridge")
        t0 = time.monotonic()

        def check() -> None:
            if time.monotonic() - t0 > 0.3:
                raise JobCancelled()

        with pytest.raises(JobCancelled):
            start.wait(check, lambda line: None)
        start.close()  # the start goes on in its thread and closes what it made
        assert time.monotonic() - t0 < 2, "the cancel waited for the scheduler's handshake"


@pytest.mark.slow
def test_a_local_cluster_starts_with_the_job_and_its_workers_have_imported_the_model_before_the_first_trial() -> None:
    start = engine.EngineStart(engine.parse_cluster("local:2", "--cluster"), n_rows=0, n_jobs=1,
                               model="random_forest")
    lines: list[str] = []
    try:
        got = start.wait(lambda: None, lines.append)
        assert isinstance(got, engine.DaskEngine) and got.workers == 2
        imported = got.client.run(lambda: sorted(m for m in ("sklearn.ensemble", "sklearn.metrics", "pandas")
                                                 if m in sys.modules))
        assert list(imported.values()) == [["pandas", "sklearn.ensemble", "sklearn.metrics"]] * 2
        assert len(lines) == 1 and lines[0].startswith(
            "The fits run on a local cluster of 2 worker processes (2 worker(s), ready in "), lines
        assert "started with the job" in lines[0]
    finally:
        start.close()


def test_a_spec_error_is_reported_while_the_named_cluster_starts_and_nothing_is_recorded(lab: Store) -> None:
    for address in silent_scheduler():
        spec = TrainSpec(dataset="blobs", model="random_forest", target="no_such_column", seed=7,
                         search={"method": "random", "trials": 2})
        t0 = time.monotonic()
        out = train_and_wait(lab, spec, cluster=address)
        assert out.status == "failed" and "has no column 'no_such_column' to predict" in (out.error or "")
        assert time.monotonic() - t0 < 20  # not held by the scheduler that never answers
        assert runs_of_job(lab, out.job_id) == []
