"""Pipelines: the runner's overhead per step, validation speed, parallel branches, and Prefect.

    python tests/benchmarks/pipeline.py [--steps 20] [--repeat 5] [--validate-steps 200]
                                        [--rows 8000] [--parallel-repeat 3] [--no-prefect] [--prefect-venv DIR] [--only PART]

Measures, on a fresh store in a temporary folder (PART is overhead, validation, parallel or prefect):

* ``overhead``: ``--steps`` no-op steps in a chain (``kind: shell``, ``command: "true"``, ``cache:
  false``) through :func:`modelyard.core.pipelines.runner.run_pipeline` (jobs=1), against the same
  ``pipeline.shell`` jobs called one after the other with :func:`modelyard.core.jobs.runner.run_job`.
  ``overhead_ms_per_step`` = (pipeline - direct) / steps: what the runner adds to each step
  (recording the run and its steps, resolving params, the cache key, the scheduler, the log).
  Medians of ``--repeat`` runs after one warm-up run. Target < 50 ms.
* ``validation``: :func:`modelyard.core.pipelines.loading.validate_text` of a generated pipeline of
  ``--validate-steps`` steps (each referencing the previous step's output), median of ``--repeat``.
  Target < 100 ms.
* ``parallel``: a pipeline importing one CSV (``--rows`` rows x 12 columns, made here; 100 trees each) and training
  two random forests from it in two independent branches (each ``train`` runs in its own child
  process, on one core: a training job uses all cores but one), run with jobs=1 and with jobs=2,
  ``--parallel-repeat`` times each, alternating (the import is cached after a warm-up run; the two
  train steps are ``cache: false``); medians. ``jobsN_overlap_s``: how long the two train steps
  ran at the same time; ``jobsN_cores_used``: the training processes' CPU seconds per wall second
  (near 2 when both cores were ours; other work on the machine shows as less). ``speedup`` = seconds(jobs=1) / seconds(jobs=2) of the whole run;
  ``branch_speedup`` the same over the span of the two train steps. The ideal on 2 cores is 2.
* ``prefect``: the same no-op chain as a Prefect 3 flow of ``--steps`` tasks (each returns its
  input; task i gets task i-1's result), run locally: Prefect in a virtualenv of its own
  (``--prefect-venv``, default /tmp/prefect-venv, created with ``python -m venv`` and ``pip install
  prefect`` when missing; Prefect is never a dependency of Modelyard or its tests), in a child process
  with ``PREFECT_HOME`` in a temporary folder, ``PREFECT_API_URL`` unset and
  ``PREFECT_SERVER_ALLOW_EPHEMERAL_MODE=true`` (Prefect starts a temporary local server on SQLite).
  ``startup_s`` = the import plus the first flow run (which starts that server); then ``--repeat``
  flow runs are timed and ``ms_per_task`` = median flow seconds / tasks. Prefect's console logging is
  set to WARNING (its INFO lines would cost it time). ``ratio`` = our ms per step (the whole step:
  the no-op job, a ``true`` process included, plus the runner) / Prefect's ms per task. Target <= 0.5.

Prints one JSON object: machine, date, overhead, validation, parallel, prefect, ratio_ours_to_prefect
and targets.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "app") not in sys.path:
    sys.path.insert(0, str(ROOT / "app"))

PREFECT_VENV = Path(os.environ.get("MODELYARD_PREFECT_VENV", "/tmp/prefect-venv"))


# --------------------------------------------------------------------------- pipelines as text


def noop_chain(n: int, name: str = "bench-noop") -> str:
    lines = [f"name: {name}", "steps:"]
    for i in range(n):
        lines += [f"  s{i}:", "    kind: shell", "    cache: false", '    params: {command: "true"}']
        if i:
            lines.append(f"    needs: [s{i - 1}]")
    return "\n".join(lines) + "\n"


def big_pipeline(n: int) -> str:
    lines = ["name: bench-validate", "params:", "  n: 1", "triggers:", '  - schedule: "0 2 * * *"', "steps:",
             "  s0:", "    kind: python", '    params: {function: "mod:f", args: {n: "${params.n}"}}']
    for i in range(1, n):
        lines += [f"  s{i}:", "    kind: python", "    retries: 1",
                  f'    params: {{function: "mod:f", args: {{n: "${{steps.s{i - 1}.outputs.return}}"}}}}']
    return "\n".join(lines) + "\n"


PARALLEL = """\
name: bench-parallel
steps:
  load:
    kind: import
    params: {path: data.csv, name: bench, options: {target: y}}
  forest_a:
    kind: train
    cache: false
    params: {dataset: "${steps.load.outputs.ref}", target: y, model: random_forest, seed: 1,
             params: {n_estimators: 100}, experiment: bench}
  forest_b:
    kind: train
    cache: false
    params: {dataset: "${steps.load.outputs.ref}", target: y, model: random_forest, seed: 2,
             params: {n_estimators: 100}, experiment: bench}
"""


def write_parallel_data(path: Path, rows: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 11))
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3] + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join([f"x{i}" for i in range(11)] + ["y"]) + "\n")
        for row, target in zip(x, y, strict=True):
            f.write(",".join(f"{v:.5f}" for v in row) + f",{target}\n")


# --------------------------------------------------------------------------- ours


def _timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def overhead(store: Any, folder: Path, steps: int, repeat: int) -> dict[str, Any]:
    from modelyard.core.jobs.runner import JobSpec, run_job
    from modelyard.core.pipelines.loading import load_text
    from modelyard.core.pipelines.runner import run_pipeline

    pipeline = load_text(noop_chain(steps), file="bench-noop.yml", folder=str(folder))

    def through_runner() -> None:
        outcome = run_pipeline(store, pipeline, jobs=1)
        assert outcome.status == "succeeded", outcome

    def direct() -> None:
        for i in range(steps):
            out = run_job(store, JobSpec.for_kind("pipeline.shell", f"Run true ({i})",
                                                  {"command": "true", "cwd": str(folder), "env": {}}))
            assert out.status == "succeeded", out

    through_runner()  # warm-up: lists the pipeline, imports the step kinds
    direct()
    runner_s, direct_s = [], []
    for _ in range(repeat):  # interleaved, so a busy moment of the machine hits both
        runner_s.append(_timed(through_runner))
        direct_s.append(_timed(direct))
    r, d = statistics.median(runner_s), statistics.median(direct_s)
    return {"steps": steps, "repeat": repeat, "pipeline_s": round(r, 4), "direct_s": round(d, 4),
            "ms_per_step": round(1000 * r / steps, 2), "direct_ms_per_job": round(1000 * d / steps, 2),
            "overhead_ms_per_step": round(1000 * (r - d) / steps, 2),
            "pipeline_runs_s": [round(x, 3) for x in runner_s], "direct_runs_s": [round(x, 3) for x in direct_s]}


def validation(n: int, repeat: int) -> dict[str, Any]:
    from modelyard.core.pipelines.loading import validate_text

    text = big_pipeline(n)
    problems = validate_text(text, file="big.yml")
    assert not problems, problems[:3]
    times = []
    for _ in range(max(repeat, 5)):
        t = time.perf_counter()
        validate_text(text, file="big.yml")
        times.append(time.perf_counter() - t)
    bad = text.replace("${steps.s150.outputs.return}", "${steps.nope.outputs.return}")
    t = time.perf_counter()
    found = validate_text(bad, file="big.yml")
    bad_ms = 1000 * (time.perf_counter() - t)
    return {"steps": n, "bytes": len(text.encode()), "ms": round(1000 * statistics.median(times), 2),
            "ms_runs": [round(1000 * x, 2) for x in times], "with_a_problem_ms": round(bad_ms, 2),
            "problems_found": len(found)}


def _children_cpu() -> float:
    """CPU seconds of this process's finished child processes (the training jobs run in children)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _when(v: Any) -> dt.datetime:
    return v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(v)


def _span(run: dict[str, Any], names: tuple[str, ...]) -> float:
    steps = [s for s in run["steps"] if s["name"] in names]
    return (max(_when(s["ended_at"]) for s in steps) - min(_when(s["started_at"]) for s in steps)).total_seconds()


def _overlap(run: dict[str, Any], a: str, b: str) -> float:
    """Seconds during which steps ``a`` and ``b`` both ran."""
    sa, sb = (next(s for s in run["steps"] if s["name"] == n) for n in (a, b))
    start = max(_when(sa["started_at"]), _when(sb["started_at"]))
    end = min(_when(sa["ended_at"]), _when(sb["ended_at"]))
    return max(0.0, (end - start).total_seconds())


def parallel(store: Any, folder: Path, rows: int, repeat: int) -> dict[str, Any]:
    from modelyard.core.pipelines import catalog
    from modelyard.core.pipelines.loading import load_text
    from modelyard.core.pipelines.runner import run_pipeline

    write_parallel_data(folder / "data.csv", rows)
    pipeline = load_text(PARALLEL, file="bench-parallel.yml", folder=str(folder))
    warm = run_pipeline(store, pipeline, jobs=2)  # imports the data (cached from now on)
    assert warm.status == "succeeded", warm
    times: dict[int, list[float]] = {1: [], 2: []}
    spans: dict[int, list[float]] = {1: [], 2: []}
    overlaps: dict[int, list[float]] = {1: [], 2: []}  # proof that jobs=2 ran the branches at once
    steps_s: dict[int, list[float]] = {1: [], 2: []}  # the two train steps' own durations, summed
    cores: dict[int, list[float]] = {1: [], 2: []}  # CPU seconds of the training processes / wall seconds
    for i in range(repeat):  # alternated (1, 2, 2, 1, ...) so a busy spell of the machine hits both
        for jobs in ((1, 2) if i % 2 == 0 else (2, 1)):
            t, cpu = time.perf_counter(), _children_cpu()
            outcome = run_pipeline(store, pipeline, jobs=jobs)
            times[jobs].append(time.perf_counter() - t)
            cores[jobs].append((_children_cpu() - cpu) / times[jobs][-1])
            assert outcome.status == "succeeded", outcome
            run = catalog.get_run(store, outcome.run_id).to_json()
            assert {s["name"]: s["status"] for s in run["steps"]}["load"] == "cached"
            spans[jobs].append(_span(run, ("forest_a", "forest_b")))
            overlaps[jobs].append(_overlap(run, "forest_a", "forest_b"))
            steps_s[jobs].append(sum(s["duration_s"] for s in run["steps"] if s["name"].startswith("forest")))
    out: dict[str, Any] = {"rows": rows, "cpus": os.cpu_count(), "repeat": repeat}
    for jobs in (1, 2):
        out[f"jobs{jobs}_s"] = round(statistics.median(times[jobs]), 3)
        out[f"jobs{jobs}_branches_s"] = round(statistics.median(spans[jobs]), 3)
        out[f"jobs{jobs}_runs_s"] = [round(x, 2) for x in times[jobs]]
        out[f"jobs{jobs}_overlap_s"] = round(statistics.median(overlaps[jobs]), 2)
        out[f"jobs{jobs}_train_steps_sum_s"] = round(statistics.median(steps_s[jobs]), 2)
        out[f"jobs{jobs}_cores_used"] = round(statistics.median(cores[jobs]), 2)
    out["speedup"] = round(out["jobs1_s"] / out["jobs2_s"], 2)
    out["branch_speedup"] = round(out["jobs1_branches_s"] / out["jobs2_branches_s"], 2)
    return out


# --------------------------------------------------------------------------- Prefect

PREFECT_FLOW = textwrap.dedent("""\
    import json, statistics, sys, time
    t0 = time.perf_counter()
    from prefect import flow, task
    import prefect
    imported = time.perf_counter() - t0

    @task
    def noop(x):
        return x

    @flow
    def chain(n: int):
        value = 0
        for _ in range(n):
            value = noop(value)
        return value

    n, repeat = int(sys.argv[1]), int(sys.argv[2])
    t = time.perf_counter()
    chain(n)  # starts the temporary server: start-up
    first = time.perf_counter() - t
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        assert chain(n) == 0
        runs.append(time.perf_counter() - t)
    print(json.dumps({"version": prefect.__version__, "import_s": imported, "first_flow_s": first, "runs_s": runs}))
""")


def ensure_prefect(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with Prefect (once)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "prefect"], check=True)
    return python


def prefect(steps: int, repeat: int, venv: Path) -> dict[str, Any]:
    python = ensure_prefect(venv)
    with tempfile.TemporaryDirectory(prefix="prefect-bench-") as d:
        script = Path(d) / "flow.py"
        script.write_text(PREFECT_FLOW)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(PREFECT_HOME=str(Path(d) / "home"), PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="true",
                   PREFECT_LOGGING_LEVEL="WARNING", PREFECT_LOGGING_TO_API_ENABLED="false",
                   DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
        t = time.perf_counter()
        proc = subprocess.run([str(python), str(script), str(steps), str(repeat)], capture_output=True, text=True,
                              env=env, cwd=d, timeout=600)
        wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"the Prefect flow failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    median = statistics.median(data["runs_s"])
    return {"version": data["version"], "tasks": steps, "repeat": repeat,
            "startup_s": round(data["import_s"] + data["first_flow_s"], 3), "import_s": round(data["import_s"], 3),
            "first_flow_s": round(data["first_flow_s"], 3), "flow_s": round(median, 4),
            "flow_runs_s": [round(x, 3) for x in data["runs_s"]], "ms_per_task": round(1000 * median / steps, 2),
            "process_wall_s": round(wall, 2)}


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--validate-steps", type=int, default=200)
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--parallel-repeat", type=int, default=3)
    parser.add_argument("--no-prefect", action="store_true")
    parser.add_argument("--prefect-venv", type=Path, default=PREFECT_VENV)
    parser.add_argument("--only", choices=("overhead", "validation", "parallel", "prefect"), action="append")
    args = parser.parse_args()
    parts = set(args.only or ("overhead", "validation", "parallel", "prefect"))
    if args.no_prefect:
        parts.discard("prefect")

    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
    }
    if parts & {"overhead", "parallel"}:
        from modelyard.core.store import Store

        with tempfile.TemporaryDirectory(prefix="modelyard-pipeline-bench-") as d:
            folder = Path(d)
            t = time.perf_counter()
            store = Store.open(folder / "store", create=True)
            import modelyard.core.pipelines.runner  # noqa: F401 - start-up, reported on its own
            result["startup_s"] = round(time.perf_counter() - t, 3)
            try:
                if "overhead" in parts:
                    result["overhead"] = overhead(store, folder, args.steps, args.repeat)
                if "parallel" in parts:
                    result["parallel"] = parallel(store, folder, args.rows, args.parallel_repeat)
            finally:
                store.close()
    if "validation" in parts:
        result["validation"] = validation(args.validate_steps, args.repeat)
    if "prefect" in parts:
        result["prefect"] = prefect(args.steps, args.repeat, args.prefect_venv)

    targets: dict[str, bool] = {}
    if "overhead" in result:
        targets["overhead < 50 ms per step"] = result["overhead"]["overhead_ms_per_step"] < 50
    if "validation" in result:
        targets["validation of 200 steps < 100 ms"] = result["validation"]["ms"] < 100
    if "overhead" in result and "prefect" in result:
        ratio = result["overhead"]["ms_per_step"] / result["prefect"]["ms_per_task"]
        result["ratio_ours_to_prefect"] = round(ratio, 3)
        targets["ours / Prefect per task <= 0.5"] = ratio <= 0.5
    result["targets"] = targets
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
