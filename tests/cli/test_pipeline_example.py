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
