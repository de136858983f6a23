"""Where a search's trials and a cross-validation's folds run: here, one after the other, or on a
Dask cluster (dask.distributed) - a local cluster of worker processes, or a team's scheduler.

Which one (the first given wins):

1. the job's ``cluster`` (``modelyard train --cluster``, a spec file's ``cluster:``);
2. the environment variable ``MODELYARD_CLUSTER``;
3. the store's preference (``store_meta`` key ``training.cluster``; :func:`set_cluster_preference`);
4. ``auto``.

The values: ``serial`` (no cluster: the fits run in the training job's process, one after the
other), ``local`` or ``local:N`` (a cluster of N worker processes on this machine, one per core
by default, started for the search and stopped after it), a scheduler's address
(``tcp://host:8786``; ``host:8786`` means the same), or ``auto``: ``local`` when the work is big
enough to gain from it (at least :data:`AUTO_MIN_ROWS` training rows and two fits, on a machine
with two cores or more), else ``serial``.

The data goes to the workers once per search (``client.scatter(..., broadcast=True)``); each
task is :func:`.trials.run_part_on_worker`, a pure function returning metrics. The workers never
see the store. A worker that dies while fitting: Dask runs the task again on another worker;
when the workers running it died twice (the local cluster's ``allowed_failures`` is 1; a team's
scheduler decides with its own ``distributed.scheduler.allowed-failures``), the trial fails with
that reason and the search goes on. Cancel (the job's cancellation, or the SIGTERM that stops a
job's process) cancels every outstanding task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Union

from modelyard.core.common.errors import JobCancelled, ModelyardError
from modelyard.core.experiments.training.trials import (
    PipeSpec,
    Task,
    TrialData,
    run_part,
    run_part_on_worker,
    warm_worker,
)

ENV_VAR = "MODELYARD_CLUSTER"
META_KEY = "training.cluster"
STORE_SOURCE = "The store's cluster preference"  # a Cluster's source when the store's preference chose it
AUTO_MIN_ROWS = 10_000
CONNECT_TIMEOUT_S = 5.0  # to reach the scheduler's port
HANDSHAKE_TIMEOUT_S = 30.0  # then for a busy scheduler to answer
LOCAL_ALLOWED_FAILURES = 1  # a task whose worker died runs once more, then fails
POLL_S = 0.02
WARM_TIMEOUT_S = 60.0  # the workers' imports before the first trial (a busy team cluster: the trials wait anyway)
# A local cluster has no dashboard, so its workers do not sample their tasks' stacks for it (every
# 10 ms, holding the interpreter's lock: 6-10 % of a forest's fit, measured; docs/scale.md)
LOCAL_WORKER_CONFIG = {"distributed.worker.profile.enabled": False}
CHOICES_HINT = "Use serial, local, local:N, auto, or a Dask scheduler's address such as tcp://host:8786."

_ADDRESS = re.compile(r"^(?:(?P<scheme>tcp|tls)://)?(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class Cluster:
    """A parsed cluster choice: ``kind`` is serial | local | address | auto; ``source`` says
    where it came from (for messages: "--cluster", "MODELYARD_CLUSTER"...)."""

    kind: str
    address: str | None = None
    workers: int | None = None
    source: str = "the default"

    @property
    def text(self) -> str:
        if self.kind == "address":
            return str(self.address)
        if self.kind == "local" and self.workers:
            return f"local:{self.workers}"
        return self.kind


def parse_cluster(value: str, source: str = "the cluster setting") -> Cluster:
    """``serial``, ``local``, ``local:N``, ``auto`` or ``[tcp://]host:port`` (else a ModelyardError
    naming ``source``)."""
    text = str(value).strip()
    low = text.lower()
    if low in ("", "auto"):
        return Cluster("auto", source=source)
    if low in ("serial", "none", "off"):
        return Cluster("serial", source=source)
    if low == "local":
        return Cluster("local", source=source)
    if low.startswith("local:"):
        n = low[6:]
        if not n.isdigit() or int(n) < 1:
            raise ModelyardError(f"{source}: {text!r} needs a number of workers of at least 1 (local:2).",
                                 hint=CHOICES_HINT)
        return Cluster("local", workers=int(n), source=source)
    match = _ADDRESS.match(text)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ModelyardError(f"{source}: {text!r} is not a cluster.", hint=CHOICES_HINT)
    return Cluster("address", address=f"{match['scheme'] or 'tcp'}://{match['host']}:{match['port']}", source=source)


def get_cluster_preference(store: Any) -> str | None:
    """The store's cluster preference (the value as the user gave it), or None."""
    from modelyard.core.store import models as m

    with store.session() as s:
        row = s.get(m.StoreMeta, META_KEY)
        return row.value if row is not None else None


def set_cluster_preference(store: Any, value: str | None) -> None:
    """Keep (or with None, forget) where this store's searches run; checked, audited. Changing it
    decides which machines see training data, so it needs the right to manage the store."""
    from modelyard.core.store import models as m
    from modelyard.core.store import records, team

    if value is not None:
        value = parse_cluster(value, "The cluster preference").text
    team.require(store, "manage", "Changing where searches run")
    with store.write() as s:
        row = s.get(m.StoreMeta, META_KEY)
        before = row.value if row is not None else None
        if value is None:
            if row is not None:
                s.delete(row)
        elif row is None:
            s.add(m.StoreMeta(key=META_KEY, value=value))
        else:
            row.value = value
        if before != value:
            records.audit(s, "store", META_KEY, "cluster_preference", from_value=before, to_value=value)


def choose_cluster(store: Any, given: str | None = None, *, given_by: str = "--cluster") -> Cluster:
    """The cluster a job uses: ``given`` (by ``given_by``, for messages), else ``MODELYARD_CLUSTER``,
    else the store's preference, else auto."""
    if given:
        return parse_cluster(given, given_by)
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return parse_cluster(env, ENV_VAR)
    pref = get_cluster_preference(store) if store is not None else None
    if pref:
        return parse_cluster(pref, STORE_SOURCE)
    return Cluster("auto")


def local_workers(requested: int | None = None) -> int:
    return max(1, requested or os.cpu_count() or 1)


# =========================================================================== engines


class _Engine:
    """What both engines share: :meth:`run`, every fit of a list through a session."""

    def session(self, data: TrialData, pipe: PipeSpec, *, check: Callable[[], None],
                before: Callable[[Any], None] | None = None) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def run(self, data: TrialData, pipe: PipeSpec, tasks: Sequence[Task], *,
            before: Callable[[int], None], check: Callable[[], None]) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(index in tasks, result)`` for every task, as they finish; ``before(index)`` as a fit
        starts in this process (the serial engine: progress as the fits go)."""
        with self.session(data, pipe, check=check, before=before) as session:
            for i, t in enumerate(tasks):
                session.submit(i, t)
            while session.pending:
                yield session.next()


class SerialEngine(_Engine):
    """The fits one after the other in this process (small searches, and where that is the point)."""

    description = "in this process"
    workers = 1

    def __init__(self, n_jobs: int) -> None:
        self.n_jobs = n_jobs

    @contextlib.contextmanager
    def session(self, data: TrialData, pipe: PipeSpec, *, check: Callable[[], None],
                before: Callable[[Any], None] | None = None) -> Iterator[SerialSession]:
        """Fits submitted one at a time as the work goes (an Optuna study asks as it learns)."""
        yield SerialSession(self, data, pipe, check, before)

    def close(self) -> None:
        pass


class SerialSession:
    """:meth:`SerialEngine.session`: ``submit`` queues a fit, ``next`` makes the oldest one here
    (calling ``before(key)`` first)."""

    def __init__(self, engine: SerialEngine, data: TrialData, pipe: PipeSpec, check: Callable[[], None],
                 before: Callable[[Any], None] | None = None) -> None:
        self.engine, self.data, self.pipe, self.check, self.before = engine, data, pipe, check, before
        self.queue: deque[tuple[Any, Task]] = deque()

    def submit(self, key: Any, task: Task) -> None:
        self.queue.append((key, task))

    @property
    def pending(self) -> int:
        return len(self.queue)

    def next(self) -> tuple[Any, dict[str, Any]]:
        self.check()
        key, t = self.queue.popleft()
        if self.before is not None:
            self.before(key)
        return key, run_part(self.data, self.pipe, t.params, t.part, t.what, n_jobs=self.engine.n_jobs)


class DaskEngine(_Engine):
    """The fits as tasks on a Dask cluster; results in the order they finish."""

    def __init__(self, client: Any, cluster: Any, description: str) -> None:
        self.client = client
        self.cluster = cluster
        self.description = description

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1).get("workers", {})) if self.client else 0

    @contextlib.contextmanager
    def session(self, data: TrialData, pipe: PipeSpec, *, check: Callable[[], None],
                before: Callable[[Any], None] | None = None) -> Iterator[DaskSession]:
        """Fits submitted as the work goes, results as they finish; the data is sent once; on the way
        out (a cancel too) every outstanding task is cancelled. (``before``: the fits start on the
        workers, unseen here.)"""
        check()
        session = DaskSession(self.client, data, pipe, check)
        try:
            with _cancel_on_sigterm():
                yield session
        finally:
            session.close()

    def warm(self, model: str) -> None:
        """Every worker imports what fitting ``model`` takes, before the first trial: a task pinned to
        each (in the worker's task thread, as a fit runs; ``client.run`` would hold the worker's event
        loop). A worker that cannot is left alone: its first fit says why."""
        token = uuid.uuid4().hex[:8]
        futures = [self.client.submit(warm_worker, model, workers=[w], allow_other_workers=False, pure=False,
                                      key=f"modelyard-warm{i}-{token}")
                   for i, w in enumerate(self.client.scheduler_info(n_workers=-1).get("workers", {}))]
        deadline = time.monotonic() + WARM_TIMEOUT_S
        try:
            for f in futures:
                with contextlib.suppress(Exception, asyncio.CancelledError):  # a lost worker: its fits say
                    f.result(timeout=max(0.1, deadline - time.monotonic()))
        finally:
            with contextlib.suppress(Exception):
                self.client.cancel(futures, force=True)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close(timeout=5)
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=5)
            _allow_children(False)


class DaskSession:
    """:meth:`DaskEngine.session`: ``submit(key, task)`` sends a fit to the cluster; ``next()`` waits
    for one to finish (checking for a cancel) and returns ``(key, result)``. A fit whose result was
    lost with its worker runs once more."""

    def __init__(self, client: Any, data: TrialData, pipe: PipeSpec, check: Callable[[], None]) -> None:
        from distributed import as_completed

        self.client, self.pipe, self.check = client, pipe, check
        self.data_future = client.scatter(data, broadcast=True, hash=False)  # once per search, not per trial
        self.token = uuid.uuid4().hex[:8]
        self.futures: dict[str, tuple[Any, Task, Any]] = {}  # the future's key -> (key, task, future)
        self.left: set[str] = set()
        self.resubmitted: set[Any] = set()
        self.ready: deque[Any] = deque()
        self.done = as_completed([], loop=client.loop)

    def submit(self, key: Any, task: Task, again: str = "") -> None:
        f = self.client.submit(run_part_on_worker, self.data_future, self.pipe, task.params, task.part, task.what,
                               pure=False, key=f"modelyard-trial{task.trial}-part{task.part}-{self.token}{again}")
        self.futures[f.key] = (key, task, f)
        self.left.add(f.key)
        self.done.add(f)

    @property
    def pending(self) -> int:
        return len(self.left)

    def next(self) -> tuple[Any, dict[str, Any]]:
        while True:
            self.check()
            if not self.ready:
                if not self.done.has_ready():
                    time.sleep(POLL_S)
                    continue
                self.ready.extend(self.done.next_batch(block=False))
            f = self.ready.popleft()
            key, task, _ = self.futures[f.key]
            self.left.discard(f.key)
            result = _outcome(f)
            if result.pop("lost", False) and key not in self.resubmitted:  # fit it again, once
                self.resubmitted.add(key)
                self.submit(key, task, "-again")
                continue
            return key, result

    def close(self) -> None:
        outstanding = [self.futures[k][2] for k in self.left]
        if outstanding:
            with contextlib.suppress(Exception):
                self.client.cancel(outstanding, force=True)
        with contextlib.suppress(Exception):
            self.client.cancel([self.data_future], force=True)


def _outcome(future: Any) -> dict[str, Any]:
    """What a finished task returned, or why it failed (a worker that died twice...)."""
    if future.status == "finished":
        try:
            return future.result()
        except (JobCancelled, KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - the trial's failure; Dask's CancelledError (a result
            # lost with its worker) is a BaseException: it must not end the search
            if isinstance(exc, asyncio.CancelledError):
                return {**_failure(f"Its result was lost with its worker ({type(exc).__name__})."), "lost": True}
            return _failure(f"{type(exc).__name__}: {exc}")
    if future.status == "cancelled":
        return _failure("The cluster dropped the task (its scheduler restarted or lost it).")
    exc = future.exception()
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        last = getattr(getattr(exc, "last_worker", None), "address", None)
        tries = getattr(exc, "allowed_failures", LOCAL_ALLOWED_FAILURES) + 1
        return _failure(f"The workers running it died {tries} times"
                        + (f" (the last was {last})" if last else "") + ".")
    return _failure(f"{type(exc).__name__}: {exc}")


def _failure(reason: str) -> dict[str, Any]:
    return {"metrics": None, "warnings": [], "error": reason, "hint": None, "worker": None, "seconds": None}


@contextlib.contextmanager
def _cancel_on_sigterm() -> Iterator[None]:
    """In a job's process (the main thread), the SIGTERM that stops the job raises JobCancelled, so
    the outstanding tasks are cancelled on the way out; elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise JobCancelled()

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _allow_children(allow: bool) -> None:
    """A job's process is daemonic (it dies with its parent), and multiprocessing refuses children
    to daemonic processes; the local cluster's worker processes watch this one and exit with it,
    so they may be started (and restarted) while the cluster lives."""
    import multiprocessing.process as mpp

    config = mpp.current_process()._config  # noqa: SLF001
    if allow:
        config["_modelyard_daemon"] = config.get("daemon")
        config["daemon"] = False
    elif "_modelyard_daemon" in config:
        config["daemon"] = config.pop("_modelyard_daemon")


def _quiet_dask() -> None:
    # Dask's own logs (a worker that died, a task retried) go to the job's log, told by Modelyard
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.worker",
                 "distributed.client", "distributed.core", "distributed.comm"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def connect(cluster: Cluster) -> DaskEngine:
    """A Dask engine on ``cluster`` (local or an address); a scheduler that cannot be reached is a
    one-line ModelyardError naming its address within :data:`CONNECT_TIMEOUT_S` seconds."""
    from distributed import Client

    _quiet_dask()
    if cluster.kind == "address":
        unreachable = ModelyardError(
            f"Cannot reach the Dask scheduler at {cluster.address} (from {cluster.source}) "
            f"within {CONNECT_TIMEOUT_S:.0f} s.",
            hint="Start it there with 'dask scheduler', or choose another cluster (serial, local, local:N, "
                 "auto, or tcp://host:8786).")
        # Dask retries a refused connection until its timeout: a plain TCP connect answers at once,
        # and a scheduler that answers gets longer for the handshake (it may be busy)
        _, _, hostport = str(cluster.address).partition("://")
        host, _, port = hostport.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
                pass
            client = Client(cluster.address, timeout=HANDSHAKE_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise unreachable from exc
        return DaskEngine(client, None, f"the Dask scheduler at {cluster.address}")
    import dask
    from distributed import LocalCluster

    n = local_workers(cluster.workers)
    _allow_children(True)
    try:
        with dask.config.set(LOCAL_WORKER_CONFIG):  # the worker processes take the config they start with
            local = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                 dashboard_address=None, silence_logs=logging.CRITICAL,
                                 scheduler_kwargs={"allowed_failures": LOCAL_ALLOWED_FAILURES})
        client = Client(local, set_as_default=False)
    except BaseException:
        _allow_children(False)
        raise
    return DaskEngine(client, local, f"a local cluster of {n} worker process{'es' if n != 1 else ''}")


Engine = Union[SerialEngine, DaskEngine]  # noqa: UP007 - a runtime alias


def engine_kind(cluster: Cluster, n_rows: int) -> str:
    """serial | local | address: ``auto`` decided from the work's size (a search or a
    cross-validation has at least two fits, so only the training rows count)."""
    if cluster.kind != "auto":
        return cluster.kind
    return "local" if n_rows >= AUTO_MIN_ROWS and (os.cpu_count() or 1) >= 2 else "serial"


class EngineStart:
    """The engine ``cluster`` asks for, started in a thread so that the cluster comes up (and its
    workers import what a fit needs, :func:`.trials.warm_worker`) while the job loads its data.
    :meth:`wait` returns it (raising what stopped it: a scheduler that cannot be reached...);
    :meth:`close` stops it: call it in every case."""

    def __init__(self, cluster: Cluster, *, n_rows: int, n_jobs: int, model: str | None = None) -> None:
        self.kind = engine_kind(cluster, n_rows)
        self.t0 = time.monotonic()
        self.seconds = 0.0
        self._engine: Engine | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        if self.kind == "serial":
            self._engine = SerialEngine(n_jobs)
            return
        target = cluster if cluster.kind != "auto" else Cluster("local", source=cluster.source)
        self._thread = threading.Thread(target=self._start, args=(target, model), daemon=True,
                                        name="modelyard-cluster-start")
        self._thread.start()

    def _start(self, cluster: Cluster, model: str | None) -> None:
        try:
            engine = connect(cluster)
            if model is not None and not self._closed:
                engine.warm(model)
        except BaseException as exc:  # noqa: BLE001 - handed to wait(), in the job's thread
            self._error = exc
            return
        finally:
            self.seconds = time.monotonic() - self.t0
        with self._lock:
            if not self._closed:
                self._engine = engine
                return
        engine.close()  # the job stopped (a cancel, a bad spec) while the cluster came up

    def wait(self, check: Callable[[], None], log: Callable[[str], None]) -> Engine:
        """The engine, once started (``check`` is called while waiting: a cancel stops the wait)."""
        waited = time.monotonic()
        while self._thread is not None and self._thread.is_alive():
            check()
            self._thread.join(0.05)
        if self._error is not None:
            raise self._error
        assert self._engine is not None
        if self._thread is not None:
            log(f"The fits run on {self._engine.description} ({self._engine.workers} worker(s), ready in "
                f"{self.seconds:.1f} s, started with the job; waited {time.monotonic() - waited:.1f} s for it).")
        return self._engine

    def close(self) -> None:
        """Stop the engine; one still starting is stopped by its thread once up (not waited for: a
        scheduler that is slow to answer does not hold a cancel)."""
        with self._lock:
            self._closed = True
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
