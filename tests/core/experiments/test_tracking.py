"""The tracking API: runs, params, metrics, tags, artifacts, models, buffering, concurrency, trash."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from pathlib import Path

import modelyard
import numpy as np
import pytest
from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.experiments import tracking
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[3]


def count(store: Store, model: type, *where: object) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "app"), str(ROOT / "tests")])
    return env


# --------------------------------------------------------------------------- status and values


def test_run_that_ends_normally_is_succeeded_with_its_values(store: Store) -> None:
    with modelyard.start_run(experiment="churn", name="rf-1", tags={"team": "risk"}, store=store) as run:
        assert len(run.id) == 32 and run.status == "running"
        run.log_param("model", "random_forest")
        run.log_params({"n_estimators": 300, "max_depth": None, "lr": 0.1})
        run.set_tag("stage", "dev")
        run.log_metric("f1", 0.8, step=0)
        run.log_metrics({"f1": 0.85, "auc": 0.9}, step=1)
    assert run.status == "succeeded"
    info = modelyard.get_run(run.id, store=store)
    assert info.status == "succeeded" and info.error is None
    assert info.experiment == "churn" and info.name == "rf-1" and info.user == "tester"
    assert info.params == {"lr": "0.1", "max_depth": "None", "model": "random_forest", "n_estimators": "300"}
    assert info.metrics == {"auc": 0.9, "f1": 0.85}
    assert info.tags == {"stage": "dev", "team": "risk"}
    assert info.end_time is not None and info.duration_s >= 0
    assert info.source_type in ("script", "interactive") and info.pid == os.getpid()
    assert modelyard.get_run(run.id[:8], store=store).id == run.id  # a unique prefix will do
    with pytest.raises(ModelyardError, match="has ended"):
        run.log_metric("f1", 1.0)


def test_run_ended_by_an_exception_is_failed_with_the_error(store: Store) -> None:
    with pytest.raises(ZeroDivisionError), tracking.start_run("churn", store=store) as run:
        run.log_metric("loss", 0.5)
        1 / 0  # noqa: B018
    info = tracking.get_run(run.id, store=store)
    assert info.status == "failed"
    assert info.error.startswith("ZeroDivisionError: division by zero")
    assert "Traceback" in info.error
    assert info.metrics == {"loss": 0.5}  # what was logged before the error is kept

    with pytest.raises(KeyboardInterrupt), tracking.start_run("churn", store=store) as run2:
        raise KeyboardInterrupt
    assert tracking.get_run(run2.id, store=store).status == "cancelled"

    run3 = tracking.start_run("churn", store=store)
    run3.end("cancelled")
    assert tracking.get_run(run3.id, store=store).status == "cancelled"
    with pytest.raises(ModelyardError, match="cannot end"):
        tracking.start_run("churn", store=store).end("finished")


def test_params_keep_their_first_value_and_names_are_checked(store: Store) -> None:
    with tracking.start_run("p", store=store, params={"seed": 1}) as run:
        run.log_param("seed", 1)  # the same value again is fine
        with pytest.raises(ModelyardError, match="cannot become '2'"):
            run.log_param("seed", 2)
        for bad in ("", " x", "a\nb", "k" * 251):
            with pytest.raises(ModelyardError, match="not allowed"):
                run.log_metric(bad, 1.0)
        with pytest.raises(ModelyardError, match="must be text"):
            run.log_params({3: "x"})
    assert tracking.get_run(run.id, store=store).params == {"seed": "1"}


def test_unknown_run_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="There is no run"):
        tracking.get_run("0" * 32, store=store)


@pytest.mark.sqlite_only("MODELYARD_STORE's folder holds the database; on a server MODELYARD_DB_URL names it")
def test_default_store_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_STORE", str(tmp_path / "env-store"))
    with pytest.raises(ModelyardError, match="No Modelyard store at"):  # a named folder is not created
        modelyard.start_run("env")
    assert not (tmp_path / "env-store").exists()
    Store.open(tmp_path / "env-store", create=True).close()  # 'modelyard store init'
    with modelyard.start_run("env") as run:
        run.log_metric("x", 1.0)
    with Store.open(tmp_path / "env-store") as store:
        assert tracking.get_run(run.id, store=store).metrics == {"x": 1.0}
    run.store.close()


@pytest.mark.sqlite_only("a store named by its folder; with MODELYARD_DB_URL the database decides (and is named)")
@pytest.mark.parametrize("folder", ["holds other files", "empty", "missing"])
def test_start_run_on_a_folder_that_is_not_a_store_fails_as_the_cli_does(
        folder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``store=`` names a store that must exist, as ``--store`` does in the CLI: the same one-line
    error, and nothing is created. Creating a store is explicit ('modelyard store init')."""
    from cli_helpers import cli

    target = tmp_path / "target"
    if folder != "missing":
        target.mkdir()
    if folder == "holds other files":
        (target / "notes.txt").write_text("my thesis")

    def listing() -> list[str] | None:
        return sorted(p.name for p in target.iterdir()) if target.exists() else None

    before = listing()
    with pytest.raises(ModelyardError) as err:
        tracking.start_run("exp", store=target)
    assert "No Modelyard store" in err.value.message and str(target) in err.value.message
    assert "\n" not in err.value.message and "store init" in (err.value.hint or "")
    code, _out, cli_err = cli(capsys, "run", "list", "--store", str(target))
    assert code == 1 and err.value.message in cli_err  # the CLI's words for the same mistake
    assert listing() == before and not (target / "modelyard.db").exists()
    if folder != "holds other files":
        Store.open(target, create=True).close()  # explicit: 'modelyard store init'
        with tracking.start_run("exp", store=target) as run:
            run.log_metric("x", 1.0)
        assert tracking.get_run(run.id, store=target).metrics == {"x": 1.0}
        run.store.close()


# --------------------------------------------------------------------------- metric series


def test_metric_history_is_in_step_order_with_automatic_steps(store: Store) -> None:
    with tracking.start_run("h", store=store) as run:
        for v in (0.9, 0.7, 0.5):
            run.log_metric("loss", v)  # no step: 0, 1, 2
        run.log_metric("loss", 0.6, step=1, timestamp=2_000_000_000_000)
        run.log_metric("loss", 0.4)  # next step after the highest seen: 3
        hist = run.metric_history("loss")
    assert list(hist.columns) == ["step", "timestamp", "value"]
    assert hist["step"].tolist() == [0, 1, 1, 2, 3]
    assert hist["value"].tolist() == [0.9, 0.7, 0.6, 0.5, 0.4]
    assert hist["step"].dtype == np.int64 and hist["value"].dtype == np.float64
    steps, stamps, values = tracking.metric_history(run.id, "loss", store=store, as_numpy=True)
    assert steps.tolist() == [0, 1, 1, 2, 3] and len(stamps) == 5
    assert tracking.metric_history(run.id, "nope", store=store).empty


def test_latest_metric_is_highest_step_then_latest_time(store: Store) -> None:
    run = tracking.start_run("latest", store=store)
    run.log_metric("a", 5.0, step=10)
    run.log_metric("a", 1.0, step=3)  # an earlier step, logged later: not the latest
    run.log_metric("b", 1.0, step=2, timestamp=2000)
    run.log_metric("b", 2.0, step=2, timestamp=1000)  # same step, older time
    run.log_metric("c", 1.0, step=1, timestamp=1000)
    run.log_metric("c", 2.0, step=1, timestamp=1000)  # a full tie: the later write wins
    run.flush()
    assert run.info.metrics == {"a": 5.0, "b": 1.0, "c": 2.0}
    # across flushes (batches), against what is already stored
    run.log_metric("a", 4.0, step=9)
    run.flush()
    run.log_metric("b", 3.0, step=2, timestamp=3000)
    run.log_metric("a", 6.0, step=11)
    run.end()
    info = tracking.get_run(run.id, store=store)
    assert info.metrics == {"a": 6.0, "b": 3.0, "c": 2.0}
    assert info.metric_steps == {"a": 11, "b": 2, "c": 1}
    assert count(store, m.LatestMetric) == 3
    assert count(store, m.Metric) == 9


@pytest.mark.sqlite_only("SQLite stores NaN as NULL; PostgreSQL keeps it (test_nan_metric_points_are_kept_on_postgresql)")
def test_nan_metrics_are_skipped_with_a_warning_on_sqlite(store: Store) -> None:
    with tracking.start_run("nan", store=store) as run:
        with pytest.warns(RuntimeWarning, match="NaN values of metric 'loss'"):
            run.log_metrics({"loss": float("nan"), "acc": 0.5})
        run.log_metric("loss", float("inf"))
    assert tracking.get_run(run.id, store=store).metrics == {"acc": 0.5, "loss": float("inf")}


def test_nested_runs_point_to_their_parent(store: Store) -> None:
    with tracking.start_run("search", store=store) as parent:
        for i in range(2):
            with tracking.start_run("search", parent=parent, store=store, name=f"trial-{i}") as child:
                child.log_metric("score", i)
        with tracking.start_run("search", parent=parent.id[:10], store=store) as by_prefix:
            pass
    assert tracking.get_run(child.id, store=store).parent_id == parent.id
    assert tracking.get_run(by_prefix.id, store=store).parent_id == parent.id
    frame = tracking.search_runs("search", store=store)
    assert (frame["parent_run_id"] == parent.id).sum() == 3


# --------------------------------------------------------------------------- buffering


class WriteCounter:
    """Counts the store's write transactions: write() blocks, and direct() connections (PostgreSQL:
    each of the tracking API's writes there is one statement on one)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = 0
        for name in ("write", "direct"):
            original = getattr(Store, name)

            def counting(store_self: Store, original=original):  # type: ignore[no-untyped-def]
                self.n += 1
                return original(store_self)

            monkeypatch.setattr(Store, name, counting)


def test_writes_are_batched_and_nothing_is_lost_on_exit(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracking.active, "FLUSH_INTERVAL_S", 3600.0)
    writes = WriteCounter(monkeypatch)
    with tracking.start_run("batch", store=store) as run:
        assert writes.n == 1  # the run's row
        for step in range(2000):
            run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 2000}, step=step)
            run.log_params({f"p{step % 7}": step % 7})
            run.set_tag("last", "x")
        assert writes.n == 1  # all buffered
        assert count(store, m.Metric) == 0
    assert writes.n == 2  # one transaction at the end wrote it all
    assert run.flushes == 1
    assert count(store, m.Metric) == 4000
    assert count(store, m.Param) == 7


def test_buffer_flushes_by_size_and_by_time(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracking.active, "FLUSH_INTERVAL_S", 3600.0)
    writes = WriteCounter(monkeypatch)
    run = tracking.start_run("batch", store=store)
    run._flush_points = 100 * 5  # 100 points
    for step in range(1000):
        run.log_metric("x", step, step=step)
    assert writes.n == 1 + 10 and count(store, m.Metric) == 1000

    monkeypatch.setattr(tracking.active, "FLUSH_INTERVAL_S", 0.05)
    run._flush_points = 10**9
    run.log_metric("y", 1.0)
    time.sleep(0.06)
    run.log_metric("y", 2.0)  # the interval has passed: flushed inside this call
    assert count(store, m.Metric, m.Metric.key == "y") == 2
    with store.session() as s:
        heartbeat = s.scalar(select(m.Run.heartbeat_at).where(m.Run.uuid == run.id))
    assert (m.utcnow() - heartbeat).total_seconds() < 5
    run.end()


def test_four_threads_logging_into_one_run_lose_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracking.active, "FLUSH_INTERVAL_S", 0.01)
    run = tracking.start_run("threads", store=store)
    run._flush_points = 50 * 5
    errors: list[str] = []

    def work(t: int) -> None:
        try:
            for i in range(500):
                run.log_metrics({f"t{t}": float(i), "shared": float(t)}, step=i)
                if i % 100 == 0:
                    run.set_tag(f"tag{t}", i)
                    run.log_param(f"param{t}", t)
        except Exception:  # noqa: BLE001
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=work, args=(t,), name=f"logger-{t}") for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    run.end()
    assert not errors, errors[0]
    info = tracking.get_run(run.id, store=store)
    assert count(store, m.Metric) == 4 * 500 * 2
    for t in range(4):
        steps = tracking.metric_history(run.id, f"t{t}", store=store)["step"].tolist()
        assert steps == list(range(500))
        assert info.metrics[f"t{t}"] == 499.0
        assert info.tags[f"tag{t}"] == "400" and info.params[f"param{t}"] == str(t)
    assert len(tracking.metric_history(run.id, "shared", store=store)) == 2000
    assert run.flushes > 4


def process_logger(store_dir: str, worker: int, n_runs: int, n_steps: int, queue) -> None:  # type: ignore[no-untyped-def]
    """Spawned child: log its own runs into the shared store."""
    try:
        tracking.active.FLUSH_INTERVAL_S = 0.02
        store = Store.open(store_dir)
        for r in range(n_runs):
            with tracking.start_run("procs", store=store, name=f"w{worker}-r{r}", tags={"worker": worker}) as run:
                run.log_params({"worker": worker, "run": r})
                for step in range(n_steps):
                    run.log_metrics({"loss": 1.0 / (step + 1), "w": float(worker)}, step=step)
        store.close()
        queue.put(("ok", worker, ""))
    except BaseException:  # noqa: BLE001
        queue.put(("error", worker, traceback.format_exc()))


@pytest.mark.slow
def test_four_processes_logging_into_one_store_lose_nothing(store_dir: Path) -> None:
    Store.open(store_dir).close()
    n_procs, n_runs, n_steps = 4, 5, 400
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=process_logger, args=(str(store_dir), w, n_runs, n_steps, queue),
                         name=f"tracking-test-{w}") for w in range(n_procs)]
    reports = []
    try:
        for p in procs:
            p.start()
        for _ in procs:
            reports.append(queue.get(timeout=90))
        for p in procs:
            p.join(30)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
        queue.close()
        queue.join_thread()
    errors = [r[2] for r in reports if r[0] != "ok"]
    assert not errors, errors[0]
    with Store.open(store_dir) as store:
        assert count(store, m.Run) == n_procs * n_runs
        assert count(store, m.Run, m.Run.status == "succeeded") == n_procs * n_runs
        assert count(store, m.Metric) == n_procs * n_runs * n_steps * 2
        assert count(store, m.LatestMetric) == n_procs * n_runs * 2
        assert count(store, m.Param) == n_procs * n_runs * 2
        frame = tracking.search_runs("procs", store=store)
        assert len(frame) == n_procs * n_runs
        assert set(frame["metrics.loss"]) == {1.0 / n_steps}
        assert sorted(frame["tags.worker"].value_counts().tolist()) == [n_runs] * n_procs


KILLABLE = textwrap.dedent("""
    import sys, time
    from modelyard.core.experiments import tracking
    run = tracking.start_run("crash", store=sys.argv[1])
    run.log_metric("loss", 1.0)
    run.flush()
    print("ready", run.id, flush=True)
    time.sleep(60)
""")


@pytest.mark.slow
def test_run_of_a_killed_process_is_marked_interrupted(store_dir: Path) -> None:
    Store.open(store_dir).close()
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(store_dir)], env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready"), proc.stderr.read()
        run_id = line.split()[1]
        with Store.open(store_dir) as other:  # alive: left alone
            assert tracking.get_run(run_id, store=other).status == "running"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        with Store.open(store_dir) as reopened:
            info = tracking.get_run(run_id, store=reopened)
        assert info.status == "interrupted"
        assert "ended before the run finished" in info.error
        assert info.metrics == {"loss": 1.0}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_importing_modelyard_stays_cheap() -> None:
    code = ("import sys, modelyard\n"
            "print([n for n in ('sqlalchemy', 'pandas', 'modelyard.core.experiments.tracking') if n in sys.modules])\n"
            "modelyard.start_run\n"
            "print('modelyard.core.experiments.tracking' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "True"]


# --------------------------------------------------------------------------- bad values and failed flushes

STEP_RANGE = "-9223372036854775808 to 9223372036854775807"


def _started(store: Store) -> tracking.ActiveRun:
    run = tracking.start_run("bad", store=store, params={"model": "rf"}, tags={"team": "risk"})
    run.log_param("depth", 8)
    run.set_tag("stage", "dev")
    run.log_metric("f1", 0.8, step=0)
    return run


def _assert_everything_kept(store: Store, run: tracking.ActiveRun) -> None:
    info = tracking.get_run(run.id, store=store)
    assert info.status == "succeeded" and info.error is None
    assert info.params == {"depth": "8", "model": "rf"}
    assert info.tags == {"stage": "dev", "team": "risk"}
    assert info.metrics["f1"] == 0.8


@pytest.mark.parametrize("bad, words", [
    ({"step": 1e20}, ["step", STEP_RANGE]),
    ({"step": 2**63}, ["step", STEP_RANGE]),
    ({"step": -2**63 - 1}, ["step", STEP_RANGE]),
    ({"step": np.uint64(2**64 - 1)}, ["step", STEP_RANGE]),
    ({"step": 2.5}, ["step", "whole number"]),
    ({"step": float("nan")}, ["step", "whole number"]),
    ({"step": "3"}, ["step", "whole number"]),
    ({"timestamp": 2**70}, ["timestamp", "0 to 253402300799999", "milliseconds"]),
    ({"timestamp": time.time_ns()}, ["timestamp", "0 to 253402300799999", "milliseconds"]),  # ns, not ms
    ({"timestamp": -1}, ["timestamp", "0 to 253402300799999"]),
])
def test_an_out_of_range_step_or_timestamp_is_refused_at_the_call_and_loses_nothing(
        store: Store, bad: dict, words: list[str]) -> None:
    run = _started(store)
    with pytest.raises(ModelyardError) as err:
        run.log_metric("loss", 0.5, **bad)
    assert "'loss'" in str(err.value)
    for word in words:
        assert word in str(err.value)
    with pytest.raises(ModelyardError, match="'loss', 'acc'"):
        run.log_metrics({"loss": 0.5, "acc": 0.9}, **bad)
    run.log_metric("acc", 0.9, step=1)  # the run goes on
    run.end()
    _assert_everything_kept(store, run)
    assert tracking.get_run(run.id, store=store).metrics == {"acc": 0.9, "f1": 0.8}
    assert count(store, m.Metric) == 2


def test_steps_and_timestamps_at_the_edges_of_the_range_are_stored_exactly(store: Store) -> None:
    with tracking.start_run("edges", store=store) as run:
        run.log_metric("a", 1.0, step=-2**63, timestamp=0)
        run.log_metric("a", 2.0, step=np.int64(2**63 - 1), timestamp=253402300799999)
        run.log_metric("b", 3.0, step=4.0, timestamp=np.uint64(5))  # whole floats and numpy ints are fine
        with pytest.raises(ModelyardError, match="'a'.*step"):
            run.log_metric("a", 4.0)  # no step after the largest one
    steps, stamps, values = tracking.metric_history(run.id, "a", store=store, as_numpy=True)
    assert steps.tolist() == [-2**63, 2**63 - 1] and stamps.tolist() == [0, 253402300799999]
    assert values.tolist() == [1.0, 2.0]
    assert tracking.metric_history(run.id, "b", store=store)["step"].tolist() == [4]


@pytest.mark.parametrize("value", [10**400, "abc", None, 1 + 2j, np.complex64(1 + 2j), [1.0, 2.0]],
                         ids=["int-beyond-float", "text", "none", "complex", "numpy-complex", "list"])
def test_a_metric_value_that_is_not_a_real_number_is_refused_naming_the_key(store: Store, value: object) -> None:
    run = _started(store)
    with pytest.raises(ModelyardError, match="'loss'"):
        run.log_metrics({"acc": 0.5, "loss": value}, step=3)
    run.end()
    _assert_everything_kept(store, run)
    assert count(store, m.Metric) == 1  # nothing of the refused call was recorded, not even 'acc'


@pytest.mark.parametrize("kind", ["param", "tag"])
def test_a_param_or_tag_that_the_database_cannot_hold_is_refused_at_the_call(store: Store, kind: str) -> None:
    run = _started(store)
    log = run.log_param if kind == "param" else run.set_tag
    with pytest.raises(ModelyardError, match=f"{kind.capitalize()} 'note'"):
        log("note", "bad \ud800 surrogate")
    with pytest.raises(ModelyardError, match="not allowed"):
        log("bad \udcff key", "x")
    run.end()
    _assert_everything_kept(store, run)


def test_a_run_failed_by_an_error_whose_text_is_not_valid_unicode_still_ends_failed(store: Store) -> None:
    with pytest.raises(ValueError):
        with tracking.start_run("bad", store=store) as run:
            run.log_metric("loss", 0.5)
            raise ValueError("cannot read data-\udcff.csv")  # a file name decoded with surrogateescape
    info = tracking.get_run(run.id, store=store)
    assert info.status == "failed" and "data-\\udcff.csv" in info.error and info.metrics == {"loss": 0.5}
    with pytest.raises(ModelyardError, match="not valid Unicode"):
        tracking.start_run("bad \udcff", store=store)
    with pytest.raises(ModelyardError, match="not valid Unicode"):
        tracking.start_run("bad", name="run \ud800", store=store)


def test_a_full_disk_when_starting_a_run_or_tagging_one_is_one_message(store: Store,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import sqlite3

    from sqlalchemy.exc import OperationalError

    done = tracking.start_run("bad", store=store)
    done.end()

    @contextlib.contextmanager
    def full(self: Store):  # type: ignore[no-untyped-def]
        raise OperationalError("INSERT ...", (), sqlite3.OperationalError("database or disk is full"))
        yield

    monkeypatch.setattr(Store, "write", full)
    monkeypatch.setattr(Store, "direct", full)  # PostgreSQL's one-statement writes
    with pytest.raises(ModelyardError, match="disk"):
        tracking.start_run("bad", store=store)
    with pytest.raises(ModelyardError, match="disk"):
        tracking.set_tags(done.id, {"x": "1"}, store=store)


def test_a_flush_that_fails_on_one_value_writes_every_other_value(store: Store,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: a value the checks at the call let through (here: with the checks
    switched off) is dropped with a warning naming it; the rest of the buffer is written."""
    monkeypatch.setattr(tracking.active, "FLUSH_INTERVAL_S", 3600.0)
    run = _started(store)
    for step in range(1, 100):
        run.log_metric("loss", 1.0 / step, step=step)
    monkeypatch.setattr(tracking.active, "_step", lambda value, keys: value)  # let a bad step through
    monkeypatch.setattr(tracking.active, "_text", lambda value, key, what: value)  # and a bad param
    run.log_metric("loss", 0.5, step=2**70)
    run.log_param("bad", "\ud800")
    run.log_metric("acc", 0.75)
    with pytest.warns(RuntimeWarning) as caught:
        run.end()
    messages = " ".join(str(w.message) for w in caught)
    assert "'loss'" in messages and "'bad'" in messages
    _assert_everything_kept(store, run)
    info = tracking.get_run(run.id, store=store)
    assert info.metrics == {"acc": 0.75, "f1": 0.8, "loss": 1.0 / 99}
    assert count(store, m.Metric) == 1 + 99 + 1


def test_a_full_disk_during_a_flush_keeps_the_values_for_the_next_try(store: Store,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    run = _started(store)
    run.flush()  # committed: must survive what follows
    run.log_metric("loss", 0.5, step=1)
    run.log_param("lr", 0.1)
    original = tracking.active._insert_metric_points
    original_pg = tracking.pgwrites.flush

    def full(*args: object) -> None:
        raise OperationalError("INSERT ...", (), sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(tracking.active, "_insert_metric_points", full)
    monkeypatch.setattr(tracking.pgwrites, "flush", full)  # PostgreSQL's flush: one statement
    with pytest.raises(ModelyardError) as err:
        run.flush()
    assert "disk" in str(err.value).lower() and "\n" not in err.value.message
    assert err.value.hint and "kept" in err.value.hint
    with pytest.raises(ModelyardError, match="disk"):
        run.end()
    assert run.status == "running"
    assert tracking.get_run(run.id, store=store).params == {"depth": "8", "model": "rf"}  # committed data intact
    monkeypatch.setattr(tracking.active, "_insert_metric_points", original)  # space freed
    monkeypatch.setattr(tracking.pgwrites, "flush", original_pg)
    run.end()
    info = tracking.get_run(run.id, store=store)
    assert info.status == "succeeded" and info.params["lr"] == "0.1" and info.metrics["loss"] == 0.5


def test_a_full_disk_while_storing_an_artifact_is_one_message(store: Store, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    src = tmp_path / "report.txt"
    src.write_text("hello")
    run = _started(store)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.artifacts, "put_file", full)
    with pytest.raises(ModelyardError) as err:
        run.log_artifact(src)
    assert "'report.txt'" in err.value.message and "disk" in err.value.message and "\n" not in err.value.message
    run.end()
    _assert_everything_kept(store, run)


# --------------------------------------------------------------------------- artifacts and models


def test_log_artifact_copies_the_file(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "report.txt"
    src.write_text("hello")
    with tracking.start_run("art", store=store) as run:
        a = run.log_artifact(src)
        b = run.log_artifact(src, artifact_path="reports/daily")
        with pytest.raises(ModelyardError, match="not a file"):
            run.log_artifact(tmp_path / "missing.txt")
    assert (a.path, b.path) == ("report.txt", "reports/daily/report.txt")
    assert a.sha256 == b.sha256
    assert store.artifacts.read_bytes(a.sha256) == b"hello"
    info = tracking.get_run(run.id, store=store)
    assert [x.path for x in info.artifacts] == ["report.txt", "reports/daily/report.txt"]
    assert info.artifacts[0].size == 5 and info.artifacts[0].kind == "file"


def test_log_model_round_trip_predicts_identically(store: Store) -> None:
    import joblib
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"tenure": rng.integers(1, 60, 200), "spend": rng.normal(50, 10, 200),
                      "plan": rng.integers(0, 3, 200)})
    y = (X["spend"] + rng.normal(0, 5, 200) > 50).astype(int)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    with tracking.start_run("models", store=store) as run:
        logged = run.log_model(model, input_example=X)
    assert logged.path == "model/model.joblib" and logged.kind == "model"
    info = tracking.get_run(run.id, store=store)
    kinds = {a.path: a.kind for a in info.artifacts}
    assert kinds == {"model/model.joblib": "model", "model/input_example.json": "input_example"}
    loaded = joblib.load(store.artifacts.path(logged.sha256))
    assert (loaded.predict(X) == model.predict(X)).all()
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    example_sha = next(a.sha256 for a in info.artifacts if a.kind == "input_example")
    example = json.loads(store.artifacts.read_bytes(example_sha))
    assert example["columns"] == ["tenure", "spend", "plan"]
    assert [i["name"] for i in example["signature"]["inputs"]] == ["tenure", "spend", "plan"]
    assert example["signature"]["inputs"][1]["dtype"] == "float64"
    assert len(example["data"]) == 5 and example["model_class"].endswith("RandomForestClassifier")
    # leaves no temp files behind
    assert list(store.artifacts.tmp.iterdir()) == []


# --------------------------------------------------------------------------- trash


def test_delete_restore_and_purge(store: Store, tmp_path: Path) -> None:
    shared = tmp_path / "shared.txt"
    shared.write_text("used by two runs")
    own = tmp_path / "own.txt"
    own.write_text("only the deleted run")
    with tracking.start_run("trash", store=store) as doomed:
        doomed.log_metric("x", 1.0)
        doomed.log_artifact(shared)
        own_sha = doomed.log_artifact(own).sha256
        with tracking.start_run("trash", store=store, parent=doomed) as child:
            child.log_metric("x", 2.0)
    with tracking.start_run("trash", store=store) as keeper:
        shared_sha = keeper.log_artifact(shared).sha256

    assert tracking.delete_run(doomed.id, store=store) == 2  # with its nested run
    visible = set(tracking.search_runs("trash", store=store)["run_id"])
    assert visible == {keeper.id}
    assert set(tracking.search_runs("trash", store=store, include_deleted=True)["run_id"]) == {
        keeper.id, doomed.id, child.id}
    assert tracking.get_run(doomed.id, store=store).deleted
    assert [e.runs for e in tracking.list_experiments(store=store)] == [1]

    assert tracking.restore_run(doomed.id, store=store) == 2
    assert set(tracking.search_runs("trash", store=store)["run_id"]) == {keeper.id, doomed.id, child.id}

    tracking.delete_run(doomed.id, store=store)
    assert tracking.purge_deleted(store, older_than=3600)["runs"] == 0  # too recent
    result = tracking.purge_deleted(store)
    assert result["runs"] == 2 and result["artifacts"] == 1 and result["bytes"] == own.stat().st_size
    assert count(store, m.Run) == 1
    assert count(store, m.Metric) == 0
    assert not store.artifacts.exists(own_sha)
    assert store.artifacts.exists(shared_sha)
    with pytest.raises(NotFoundError):
        tracking.get_run(doomed.id, store=store)
    with store.session() as s:
        actions = s.scalars(select(m.AuditEvent.action).where(m.AuditEvent.entity_type == "run")
                                .order_by(m.AuditEvent.id)).all()
    assert actions == ["delete", "restore", "delete", "purge"]


def test_set_tags_on_a_finished_run_and_removing_one(store: Store) -> None:
    with tracking.start_run("tags", store=store, tags={"a": 1, "b": 2}) as run:
        pass
    tracking.set_tags(run.id, {"a": "x", "b": None, "c": 3}, store=store)
    assert tracking.get_run(run.id, store=store).tags == {"a": "x", "c": "3"}


def test_list_experiments_counts_runs(store: Store) -> None:
    for name in ("b", "a", "a"):
        tracking.start_run(name, store=store).end()
    exps = tracking.list_experiments(store=store)
    assert [(e.name, e.runs) for e in exps] == [("a", 2), ("b", 1)]
    assert exps[0].last_run_at is not None and exps[0].last_run_at.tzinfo is not None
    assert json.dumps([e.to_json() for e in exps])


def test_query_runs_table_for_the_gui(store: Store) -> None:
    from modelyard.core.experiments.runquery import available_columns, query_runs

    for i in range(30):
        with tracking.start_run("gui" if i % 3 else "other", store=store, name=f"r{i}") as run:
            run.log_params({"model": "rf" if i % 2 else "gbm", "depth": i})
            run.log_metrics({"f1": i / 30})
            run.set_tag("odd", i % 2)
    cols = available_columns(store, ["gui"])
    assert cols == {"params": ["depth", "model"], "metrics": ["f1"], "tags": ["odd"]}
    table = query_runs(store, ["gui"])
    assert len(table) == 20
    assert table.frame["start_time"].is_monotonic_decreasing  # newest first
    assert table.frame["metrics.f1"].dtype == np.float64
    best = table.filter('metrics.f1 > 0.5 and params.model = "rf"').sort("metrics.f1", ascending=False)
    assert best.frame["name"].tolist() == ["r29", "r25", "r23", "r19", "r17"]
    assert table.sort("params.depth").frame["params.depth"].tolist()[:3] == ["1", "2", "4"]
    some = query_runs(store, ["gui"], columns=["metrics.f1"])
    assert [c for c in some.columns if "." in c] == ["metrics.f1"]
    # a filter on a column that was not loaded is answered by the database
    assert len(some.filter('params.model = "rf"')) == 10
    limited = query_runs(store, None, order_by="metrics.f1 DESC", limit=3)
    assert limited.frame["name"].tolist() == ["r29", "r28", "r27"]


def test_runs_table_refresh_reads_only_what_changed(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    from modelyard.core.experiments import runquery
    from modelyard.core.experiments.runquery import query_runs

    ids = []
    for i in range(10):
        with tracking.start_run("live", store=store, name=f"r{i}") as run:
            run.log_metric("f1", i / 10)
        ids.append(run.id)
    table = query_runs(store, ["live"])
    running = tracking.start_run("live", store=store, name="new")
    running.log_metrics({"f1": 0.95, "auc": 0.5})
    running.flush()
    tracking.delete_run(ids[0], store=store)
    tracking.set_tags(ids[1], {"team": "risk"}, store=store)
    fresh = table.refresh()
    assert len(fresh) == 10
    assert fresh.column("name")[0] == "new" and fresh.column("status")[0] == "running"
    assert ids[0] not in set(fresh.run_ids)
    assert fresh.frame.loc[fresh.frame["run_id"] == ids[1], "tags.team"].tolist() == ["risk"]
    assert fresh.frame["tags.team"].isna().sum() == 9 and fresh.frame["tags.team"].dtype == object
    assert fresh.frame["metrics.auc"].notna().sum() == 1
    running.end()
    tracking.restore_run(ids[0], store=store)
    again = fresh.refresh()
    assert len(again) == 11 and again.column("status")[0] == "succeeded"
    tracking.delete_run(ids[2], store=store)
    tracking.purge_deleted(store)  # runs left the store: read everything again
    assert len(again.refresh()) == 10
    # an in-memory sort or filter keeps the loaded columns and only reorders
    best = again.sort("metrics.f1", ascending=False).filter("metrics.f1 > 0.5")
    assert best.column("name").tolist() == ["new", "r9", "r8", "r7", "r6"]
    assert best.frame["name"].tolist() == ["new", "r9", "r8", "r7", "r6"]
    # nothing written since the load: the same rows come back without reading them
    monkeypatch.setattr(runquery.query, "REFRESH_OVERLAP", dt.timedelta(0))
    loaded = query_runs(store, ["live"])
    time.sleep(0.01)
    same = loaded.refresh()
    assert same.run_ids.tolist() == loaded.run_ids.tolist() and same.loaded_at > loaded.loaded_at


def test_a_refresh_that_finds_nothing_new_shares_the_loaded_rows(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    from modelyard.core.experiments import runquery
    from modelyard.core.experiments.runquery import query_runs

    monkeypatch.setattr(runquery.query, "REFRESH_OVERLAP", dt.timedelta(0))  # no writes still in flight here

    with tracking.start_run("quiet", store=store) as run:
        run.log_metric("f1", 0.5)
    table = query_runs(store, ["quiet"])
    again = table.refresh()
    assert again.shares_data_with(table) and len(again) == 1
    with tracking.start_run("quiet", store=store) as run:
        run.log_metric("f1", 0.6)
    newer = again.refresh()
    assert not newer.shares_data_with(again) and len(newer) == 2
    start = newer.column("start_time")
    assert start.dtype.kind == "M" and start[0] >= start[1]  # naive UTC datetime64, newest first


def test_a_large_batch_of_mixed_keys_is_stored_exactly(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 1,000+ points take PostgreSQL's binary COPY (tracking/writes.py): keys of
    several byte lengths (non-ASCII too), in order, each value exact; SQLite the same."""
    monkeypatch.setattr(tracking.active, "FLUSH_INTERVAL_S", 3600.0)
    keys = ["a", "précision", "loss", "vàl/ℓoss"]
    with tracking.start_run("copy", store=store) as run:
        for step in range(600):
            run.log_metrics({k: step * (i + 1) + 1 / 3 for i, k in enumerate(keys)}, step=step,
                            timestamp=1_700_000_000_000 + step)
    assert run.flushes == 1 and count(store, m.Metric) == 2400
    for i, key in enumerate(keys):
        history = tracking.metric_history(run.id, key, store=store)
        assert history["step"].tolist() == list(range(600))
        assert history["value"].tolist() == [step * (i + 1) + 1 / 3 for step in range(600)]
        assert history["timestamp"].tolist() == [1_700_000_000_000 + step for step in range(600)]


def test_points_of_a_run_deleted_meanwhile_are_refused_not_orphaned(store: Store) -> None:
    """A run's row deleted by someone else while it logs: its next flush is refused and writes no
    point (on PostgreSQL the one-statement flush skips the points' run-check trigger; the
    foreign key of the latest values it always writes with them checks the run instead)."""
    from sqlalchemy import text

    run = tracking.start_run("gone", store=store)
    run.log_metric("loss", 0.5, step=1)
    run.flush()
    with store.write() as s:
        pk = s.execute(text("SELECT id FROM runs WHERE uuid = :u"), {"u": run.id}).scalar()
        s.execute(text("DELETE FROM runs WHERE id = :pk"), {"pk": pk})
    run.log_metric("loss", 0.25, step=2)
    with pytest.raises(Exception):  # noqa: B017 - the store's refusal, whichever class the backend raises
        run.flush()
    with store.session() as s:
        assert s.execute(text("SELECT count(*) FROM metrics WHERE run_id = :pk"), {"pk": pk}).scalar() == 0
        assert s.execute(text("SELECT count(*) FROM latest_metrics WHERE run_id = :pk"), {"pk": pk}).scalar() == 0
