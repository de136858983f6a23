"""The example pipeline (docs/examples/churn-pipeline) runs as its README says: from its folder, on a
fresh store, by the real ``modelyard`` command in a child process; a second run reuses every step.

The example's folder is copied first (the run writes ``bundles/`` beside the pipeline file, which must
not land in the checkout); the copy holds exactly the files a user runs it with.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_modelyard

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "churn-pipeline"
STEPS = ["import", "search", "gate", "register", "bundle", "check"]


def _copy_example(tmp_path: Path) -> Path:
    folder = tmp_path / "churn-pipeline"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("bundles", "__pycache__"))
    return folder


def test_the_data_files_are_what_make_data_writes(tmp_path: Path) -> None:
    folder = _copy_example(tmp_path)
    for name in ("churn.csv", "batch.csv"):
        (folder / name).unlink()
    subprocess.run([sys.executable, "make_data.py"], cwd=folder, check=True, timeout=60)
    for name in ("churn.csv", "batch.csv"):
        assert (folder / name).read_bytes() == (EXAMPLE / name).read_bytes(), f"{name} differs from make_data.py's"


def test_the_example_runs_on_a_fresh_store_and_a_second_run_is_all_cached(tmp_path: Path) -> None:
    folder = _copy_example(tmp_path)
    store = tmp_path / "store"
    assert run_modelyard("store", "init", str(store)).returncode == 0

    first = run_modelyard("--store", str(store), "pipeline", "run", "pipeline.yml", "--json", cwd=folder, timeout=300)
    # The batch shipped beside the pipeline comes from the same population as the training rows:
    # the drift check passes, so the whole run succeeds (exit 0, not 3).
    assert first.returncode == 0, first.stderr
    run = json.loads(first.stdout)
    assert run["status"] == "succeeded" and run["exit_code"] == 0
    steps = {s["name"]: s for s in run["steps"]}
    assert list(steps) == STEPS or sorted(steps) == sorted(STEPS)
    assert {s["status"] for s in steps.values()} == {"succeeded"}
    for name in STEPS:  # the live step lines on stderr
        assert f"{name}: running" in first.stderr and f"{name}: succeeded" in first.stderr
    assert steps["gate"]["outputs"]["passed"] is True
    assert steps["register"]["outputs"]["ref"] == "churn@v1"
    assert steps["check"]["outputs"]["verdict"] != "drift"
    bundle = Path(steps["bundle"]["outputs"]["path"])
    assert bundle.is_file() and bundle.parent == folder / "bundles"

    second = run_modelyard("--store", str(store), "pipeline", "run", "pipeline.yml", "--json", cwd=folder, timeout=120)
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["id"] != run["id"]
    assert {s["name"]: s["status"] for s in again["steps"]} == {name: "cached" for name in STEPS}
    for s in again["steps"]:  # the outputs are the first run's
        assert s["outputs"] == steps[s["name"]]["outputs"]
    assert all(f"{name}: cached" in second.stderr for name in STEPS)

    listed = json.loads(run_modelyard("--store", str(store), "pipeline", "runs", "churn-example", "--json").stdout)
    assert [r["id"] for r in listed] == [again["id"], run["id"]]


@pytest.mark.sqlite_only("two stores in one test; MODELYARD_DB_URL names one database")
@pytest.mark.slow
def test_the_cli_and_the_python_api_make_the_same_records_from_the_example(tmp_path: Path) -> None:
    """The same file through `modelyard pipeline run` and `modelyard.run_pipeline`, each on a fresh
    store of its own: the same steps end the same way, create the same kinds of records, register
    the same version as champion and give the same check verdict on the same data."""
    import modelyard
    from modelyard.core.pipelines import catalog
    from modelyard.core.registry import versions as registry
    from modelyard.core.store import Store

    cli_store = tmp_path / "cli-store"
    assert run_modelyard("store", "init", str(cli_store)).returncode == 0
    done = run_modelyard("--store", str(cli_store), "pipeline", "run", "pipeline.yml", "--json",
                         cwd=_copy_example(tmp_path / "cli"), timeout=300)
    assert done.returncode == 0, done.stderr
    by_cli = json.loads(done.stdout)

    api_store = Store.open(tmp_path / "api-store", create=True)
    try:
        outcome = modelyard.run_pipeline(_copy_example(tmp_path / "api") / "pipeline.yml", store=api_store)
        assert outcome.status == "succeeded", outcome.error
        by_api = catalog.get_run(api_store, outcome.run_id).to_json()
        api_champion = registry.get_version(api_store, "churn@champion").ref
    finally:
        api_store.close()

    def shape(run: dict) -> dict[str, tuple[str, list[str]]]:
        return {s["name"]: (s["status"], sorted(r["type"] for r in s.get("records") or [])) for s in run["steps"]}

    assert shape(by_cli) == shape(by_api)
    assert {"dataset_version", "run", "model_version", "bundle", "check"} <= {
        t for _status, types in shape(by_cli).values() for t in types}
    cli_steps, api_steps = ({s["name"]: s["outputs"] for s in run["steps"]} for run in (by_cli, by_api))
    assert cli_steps["import"]["content_hash"] == api_steps["import"]["content_hash"]
    assert cli_steps["register"]["ref"] == api_steps["register"]["ref"] == api_champion
    assert cli_steps["check"]["verdict"] == api_steps["check"]["verdict"]
    assert cli_steps["gate"]["passed"] is api_steps["gate"]["passed"] is True
