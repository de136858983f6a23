"""An unzipped bundle is an MLflow model folder: ``mlflow.pyfunc.load_model`` gives the same predictions.

MLflow comes with the ``test`` extra (``mlflow-skinny``) only; Modelyard does not need it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from factories import iris_table
from modelyard.core import bundles
from modelyard.core.datasets.service import import_frame
from modelyard.core.experiments import tracking
from modelyard.core.experiments.training.spec import TrainSpec, train_spec_job
from modelyard.core.jobs.runner import JobSpec, run_job
from modelyard.core.registry import versions as registry
from modelyard.core.registry.reference import load_reference_data
from modelyard.core.store import Store


@pytest.fixture
def mlflow_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    # Recent MLflow loads no model, skops included, unless told the source is trusted; no telemetry.
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    import mlflow.environment_variables as mlflow_env_vars
    import mlflow.pyfunc
    import mlflow.sklearn

    # the variable's name changed in MLflow 3.x; the old one still works there but warns
    if hasattr(mlflow_env_vars, "MLFLOW_ALLOW_MODEL_CODE_EXECUTION"):
        monkeypatch.setenv("MLFLOW_ALLOW_MODEL_CODE_EXECUTION", "true")
    else:
        monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")

    return mlflow


def unzip(path: str, folder: Path) -> Path:
    with zipfile.ZipFile(path) as zf:
        zf.extractall(folder)
    return folder


def test_mlflow_loads_a_modelyard_trained_pipeline_with_the_same_predictions(store: Store, tmp_path: Path,
                                                                             mlflow_env: Any) -> None:
    import_frame(store, iris_table(), "iris", target="species")
    spec = train_spec_job(TrainSpec(dataset="iris@v1", model="logistic_regression", curves=False))
    outcome = run_job(store, JobSpec(spec.func, spec.title, spec.params, process=False, kind=spec.kind))
    assert outcome.status == "succeeded", outcome.error
    version = registry.register(store, outcome.result["run_id"], "iris")
    info = bundles.export_bundle(store, "iris@v1", tmp_path / "iris.mybundle")
    folder = unzip(info.path, tmp_path / "iris")

    features = [c["name"] for c in version.signature["inputs"]]
    data = load_reference_data(store, version.id, columns=features)
    assert data is not None
    X = data.frame[features]  # with missing values, categories, dates and flags
    model = registry.load_model(store, "iris@v1")

    loaded = mlflow_env.pyfunc.load_model(str(folder))
    assert list(loaded.predict(X)) == list(model.predict(X))
    assert [c.name for c in loaded.metadata.get_input_schema().inputs] == features
    assert loaded.metadata.load_input_example(str(folder)).shape == (5, len(features))
    sk = mlflow_env.sklearn.load_model(str(folder))
    assert np.array_equal(sk.predict_proba(X), model.predict_proba(X))


def test_mlflow_loads_a_script_logged_tree_model(store: Store, tmp_path: Path, mlflow_env: Any) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X[:, 0] * 2 + np.sin(X[:, 1])
    with tracking.start_run("trees", store=store) as run:
        run.log_model(HistGradientBoostingRegressor(max_iter=30).fit(X, y), input_example=X[:3])
    registry.register(store, run.id, "trees")
    info = bundles.export_bundle(store, "trees", tmp_path / "trees.mybundle")
    assert info.safe_load  # its fitted trees are scikit-learn classes skops does not trust by default
    loaded = mlflow_env.pyfunc.load_model(str(unzip(info.path, tmp_path / "trees")))
    assert np.array_equal(loaded.predict(X), registry.load_model(store, "trees").predict(X))
