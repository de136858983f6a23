"""``modelyard train ...`` and ``modelyard run reproduce RUN_ID``: options, spec files, output, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import cli
from modelyard.cli import _common
from modelyard.cli.train import register_reproduce
from modelyard.core.datasets.service import import_frame, sample_frame
from modelyard.core.experiments import tracking
from modelyard.core.store import Store


@pytest.fixture
def store_dir(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The CLI's initialised store (tests/cli/conftest.py) with the iris sample imported."""
    root = store_dir
    store = Store.open(root)
    try:
        df, target = sample_frame("iris")
        import_frame(store, df, "iris", target=target)
    finally:
        store.close()
    capsys.readouterr()
    return root


@pytest.fixture
def with_reproduce() -> Iterator[None]:
    """``modelyard run reproduce`` is registered by cli/run.py itself (kept as a fixture for clarity)."""
    yield


def test_list_models_and_show_params(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "train", "--list-models")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["MODEL", "NAME", "TASKS"]
    assert "hist_gradient_boosting" in out and "Dummy baseline" in out
    code, out, _ = cli(capsys, "train", "--list-models", "--task", "regression", "--json")
    keys = [m["key"] for m in json.loads(out)]
    assert code == 0 and "ridge" in keys and "logistic_regression" not in keys
    code, out, _ = cli(capsys, "train", "--show-params", "random_forest")
    assert code == 0 and "n_estimators" in out and "an int in the range [1, inf)" in out
    assert "--task regression" in out
    code, out, _ = cli(capsys, "train", "--show-params", "svm", "--task", "regression", "--json")
    data = json.loads(out)
    assert code == 0 and data["model"] == "svm" and data["task"] == "regression"
    params = {p["name"]: p for p in data["params"]}
    assert params["epsilon"]["default"] == 0.1 and params["C"]["log_scale"] is True
    assert "C" in data["search_space"]
    code, _, err = cli(capsys, "train", "--show-params", "forest_of_trees")
    assert code == 1 and "no model 'forest_of_trees'" in err


def test_usage_errors(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    s = str(store_dir)
    for args, message in [
        (["train", "--model", "knn"], "Which dataset?"),
        (["train", "--dataset", "iris"], "Which model?"),
        (["train", "--dataset", "iris", "--model", "knn", "--trials", "3"], "need --search"),
        (["train", "--dataset", "iris", "--model", "knn", "--param", "n_neighbors"], "KEY=VALUE"),
        (["train", "--dataset", "iris", "--model", "knn", "--split", "3", "--test", "0.3"], "--split ID"),
        (["train", "--dataset", "iris", "--model", "knn", "--cluster", "ftp://x"], "--cluster: 'ftp://x' is not a cluster"),
    ]:
        code, _, err = cli(capsys, "--store", s, *args)
        assert code == 2 and message in err, (args, err)
    code, _, err = cli(capsys, "--store", s, "train", "--dataset", "iris", "--model", "linear_regression",
                       "--task", "classification")
    assert code == 1 and "not a classification model" in err
    code, _, err = cli(capsys, "--store", s, "train", "--spec", str(store_dir / "nope.yaml"))
    assert code == 1 and "There is no spec file" in err


@pytest.mark.slow
def test_where_a_search_runs_comes_from_cluster_the_spec_file_or_the_environment(
        capsys: pytest.CaptureFixture[str], store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nowhere = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    s = str(store_dir)
    search = ["train", "--dataset", "iris", "--model", "knn", "--search", "random", "--trials", "2"]
    monkeypatch.setenv("MODELYARD_CLUSTER", nowhere)
    code, _, err = cli(capsys, "--store", s, *search)
    assert code == 1 and f"error: Cannot reach the Dask scheduler at {nowhere} (from MODELYARD_CLUSTER)" in err
    code, out, err = cli(capsys, "--store", s, *search, "--cluster", "serial")
    assert code == 0 and "Random search: best of 2 trials" in out, err
    spec = tmp_path / "train.json"
    spec.write_text(json.dumps({"dataset": "iris", "model": "knn", "search": "random", "cluster": "nowhere"}))
    code, _, err = cli(capsys, "--store", s, "train", "--spec", str(spec))
    assert code == 2 and f"{spec}: cluster: 'nowhere' is not a cluster" in err
    spec.write_text(json.dumps({"dataset": "iris", "model": "knn", "search": {"method": "random", "trials": 2},
                                "cluster": "serial"}))
    code, out, err = cli(capsys, "--store", s, "train", "--spec", str(spec))
    assert code == 0 and "Random search: best of 2 trials" in out, err


@pytest.mark.slow
def test_a_bad_param_fails_the_job_with_a_message_naming_it(capsys: pytest.CaptureFixture[str],
                                                           store_dir: Path) -> None:
    code, out, err = cli(capsys, "--store", str(store_dir), "--json", "train", "--dataset", "iris", "--model",
                         "knn", "--param", "n_neighbors=0")
    assert code == 1
    assert "error: Parameter 'n_neighbors' of k-nearest neighbours must be an int in the range [1, inf)" in err
    assert json.loads(out)["error"]["exit_code"] == 1


@pytest.mark.slow
def test_train_from_a_spec_file_then_reproduce(capsys: pytest.CaptureFixture[str], store_dir: Path,
                                               tmp_path: Path, with_reproduce: None) -> None:
    s = str(store_dir)
    spec = tmp_path / "train.json"
    spec.write_text(json.dumps({"dataset": "iris", "model": "logistic_regression", "params": {"C": 0.5},
                                "cv": 3, "experiment": "flowers", "split": {"test": 0.3}}))
    code, out, err = cli(capsys, "--store", s, "train", "--spec", str(spec), "--param", "max_iter=500",
                         "--seed", "2", "--name", "baseline", "--tag", "team=botany", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["status"] == "succeeded" and isinstance(data["job_id"], int)
    result = data["result"]
    assert result["experiment"] == "flowers" and result["dataset"] == "iris@v1" and result["n_test"] == 45
    assert set(result["cv"]) >= {"accuracy", "f1_macro"}
    store = Store.open(store_dir)
    try:
        info = tracking.get_run(result["run_id"], store=store)
    finally:
        store.close()
    assert info.source_type == "cli" and info.name == "baseline" and info.tags["team"] == "botany"
    assert (info.params["C"], info.params["max_iter"], info.params["seed"]) == ("0.5", "500", "2")
    assert info.spec["cwd"] and info.spec["split"]["test"] == 0.3

    run_id = result["run_id"]
    code, out, err = cli(capsys, "--store", s, "run", "reproduce", run_id[:10])
    assert code == 0, err
    assert out.startswith(f"Reproduced run {run_id} as run ")
    assert "Reproduced: all" in out and " NO" not in out

    # new data in the dataset: the spec named it without a version, so reproducing uses the new data
    store = Store.open(store_dir)
    try:
        df, target = sample_frame("iris")
        df.loc[df.index[::2], "sepal width (cm)"] += 0.8
        import_frame(store, df, "iris", target=target)
    finally:
        store.close()
    code, out, err = cli(capsys, "--store", s, "run", "reproduce", run_id)
    assert code == 3
    assert "recorded facts that differ:" in out and "data hash" in out and "iris@v2" in out and " NO" in out
    assert "error: Not reproduced:" in err and "data hash: recorded" in err and "--recorded-data" in err
    code, out, err = cli(capsys, "--store", s, "--json", "run", "reproduce", run_id, "--recorded-data")
    assert code == 0, err
    report = json.loads(out)["result"]
    assert report["matches"] is True and report["differences"] == [] and report["data"] == "recorded"


@pytest.mark.slow
def test_a_time_split_is_ordered_by_the_column_given_with_split_column(capsys: pytest.CaptureFixture[str],
                                                                      store_dir: Path) -> None:
    import pandas as pd

    s = str(store_dir)
    # iris has no date column: the hint names the option train has (cli() checks every option a hint names)
    code, _, err = cli(capsys, "--store", s, "train", "--dataset", "iris", "--model", "logistic_regression",
                       "--split-method", "time")
    assert code == 1 and "needs the time column" in err
    assert "--split-column" in err

    n = 60
    frame = pd.DataFrame({"x": range(n), "y": [i % 2 for i in range(n)],
                          "made": pd.date_range("2024-01-01", periods=n, freq="D")[::-1],
                          "sold": pd.date_range("2024-03-01", periods=n, freq="D")})
    store = Store.open(store_dir)
    try:
        import_frame(store, frame, "sales", target="y")
    finally:
        store.close()
    code, out, err = cli(capsys, "--store", s, "--json", "train", "--dataset", "sales", "--model",
                         "logistic_regression", "--split-method", "time", "--split-column", "made", "--test", "0.25")
    assert code == 0, err
    store = Store.open(store_dir)
    try:
        from modelyard.core.datasets.service import get_split

        split = get_split(store, json.loads(out)["result"]["split_id"])
    finally:
        store.close()
    assert split.method == "time" and split.spec["column"] == "made"


def test_human_output_of_a_training_result(capsys: pytest.CaptureFixture[str]) -> None:
    from modelyard.cli.train import _print_result

    _print_result({"run_id": "ab" * 16, "model": "svm", "dataset": "iris@v2", "target": "species",
                   "task": "classification", "experiment": "iris", "n_train": 1200, "n_test": 300,
                   "duration_s": 2.25, "metrics": {"accuracy": 0.9, "f1_macro": 0.875},
                   "validation": None, "cv": {"accuracy": 0.91},
                   "search": {"method": "random", "metric": "accuracy", "trials": [{}, {}, {}],
                              "best": {"trial": 2, "score": 0.93, "params": {"C": 1.5}}}})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Trained svm on iris@v2 (target 'species', classification): run {'ab' * 16} in experiment 'iris'."
    assert out[1] == "1,200 training rows, 300 test rows, 2.2 s."
    assert out[2] == "Random search: best of 3 trials is trial 2 (accuracy 0.93): C=1.5."
    assert "  accuracy: 0.9" in out and "cross-validation (mean of the folds):" in out


def test_register_reproduce_adds_the_verb_to_a_run_noun() -> None:
    import argparse

    from modelyard.cli.main import _common_parent

    common = _common_parent()
    parser = argparse.ArgumentParser(parents=[common])
    nouns = parser.add_subparsers(dest="noun")
    verbs = _common.add_noun(nouns, "run", common, help="runs")
    register_reproduce(verbs, common)
    ns = parser.parse_args(["run", "reproduce", "abc123", "--recorded-data", "--json"])
    assert ns.run_id == "abc123" and ns.recorded_data and ns.json and callable(ns.func)
