"""Training: the catalogue's forms, preprocessing from the schema, training jobs in a child
process (what every run records), search, slices, cancelling, and reproducing."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from modelyard.core.common.errors import ModelyardError
from modelyard.core.datasets.service import import_frame, sample_frame
from modelyard.core.experiments import tracking
from modelyard.core.experiments.training import catalogue, preprocess
from modelyard.core.experiments.training.fitting import search_candidates
from modelyard.core.experiments.training.reproduce import reproduce, reproduce_spec
from modelyard.core.experiments.training.spec import (
    SpecError,
    TrainSpec,
    read_spec_file,
    train_spec_job,
)
from modelyard.core.experiments.training.train import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    mark_runs_of_job_cancelled,
    runs_of_job,
    train_and_wait,
)
from modelyard.core.jobs.runner import JobContext, JobSpec, create_job, run_job
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[3]


# --------------------------------------------------------------------------- helpers


class Recorder:
    def __init__(self, trigger: str | None = None) -> None:
        self.messages: list[str] = []
        self.lines: list[str] = []
        self.trigger = trigger
        self.hit = threading.Event()

    def progress(self, fraction: float | None, message: str) -> None:
        self.messages.append(message)
        if self.trigger and message.startswith(self.trigger):
            self.hit.set()

    def log(self, line: str) -> None:
        self.lines.append(line)


def in_process(spec: JobSpec) -> JobSpec:
    """The same job in this process (faster for tests that do not need the child)."""
    return JobSpec(spec.func, spec.title, spec.params, process=False, kind=spec.kind)


def artifact(store: Store, info: tracking.RunInfo, path: str) -> Any:
    art = next(a for a in info.artifacts if a.path == path)
    return json.loads(store.artifacts.read_bytes(art.sha256))


def iris_frame() -> pd.DataFrame:
    """Iris with the column kinds a real table has: a category, a date, a flag, an id, gaps."""
    df, _ = sample_frame("iris")
    rng = np.random.default_rng(0)
    n = len(df)
    df["region"] = rng.choice(["north", "south", "east"], n)
    df["measured"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    df["greenhouse"] = rng.random(n) < 0.5
    df["plant_id"] = np.arange(1000, 1000 + n)
    df.loc[[3, 50, 100], "sepal width (cm)"] = np.nan
    df.loc[[7, 60], "region"] = None
    df.loc[[11, 77], "species"] = None  # rows without a target are dropped
    return df


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A store with iris and diabetes, and a classifier trained (in a child process) on iris."""
    store = Store.open(tmp_path_factory.mktemp("training") / "store")
    import_frame(store, iris_frame(), "iris", target="species")
    diabetes, target = sample_frame("diabetes")
    import_frame(store, diabetes, "diabetes", target=target)
    rec = Recorder()
    spec = TrainSpec(dataset="iris@v1", model="random_forest", params={"n_estimators": "20", "max_depth": 6},
                     cv=3, slice_columns=["region"], source="api", cwd=str(ROOT))
    outcome = train_and_wait(store, spec, reporter=rec)
    assert outcome.status == "succeeded", outcome.error
    try:
        yield {"store": store, "clf": outcome, "clf_rec": rec}
    finally:
        store.close()


# --------------------------------------------------------------------------- the catalogue


def test_catalogue_has_the_models_the_issue_asks_for() -> None:
    clf = {e.key for e in catalogue.list_models("classification")}
    reg = {e.key for e in catalogue.list_models("regression")}
    assert {"logistic_regression", "random_forest", "extra_trees", "hist_gradient_boosting", "svm", "knn",
            "dummy"} <= clf
    assert {"linear_regression", "ridge", "random_forest", "extra_trees", "hist_gradient_boosting", "svm", "knn",
            "dummy"} <= reg
    assert catalogue.get_model("rf").key == "random_forest"
    with pytest.raises(ModelyardError, match="not a classification model") as err:
        catalogue.get_model("linear_regression", "classification")
    assert "logistic_regression" in (err.value.hint or "")


@pytest.mark.parametrize(("key", "task"), [(e.key, t) for e in catalogue.MODELS.values() for t in e.tasks])
def test_param_form_has_defaults_and_constraints_of_every_model(key: str, task: str) -> None:
    form = catalogue.param_form(key, task)
    assert form, f"{key} has an empty form"
    names = [f.name for f in form]
    assert not set(names) & {"n_jobs", "verbose", "warm_start", "random_state"}
    est = catalogue.estimator_class(key, task)()
    fixed = catalogue.get_model(key).fixed_defaults(task)
    for f in form:
        assert f.kind in ("int", "float", "bool", "choice", "str")
        expected = fixed.get(f.name, est.get_params()[f.name])
        assert f.default == expected, (f.name, f.default, expected)
        # the default passes the form's own validation, and comes back unchanged
        assert catalogue.coerce_params(key, {f.name: f.default}, task)[f.name] == f.default
        assert f.alternatives and all("text" in a for a in f.alternatives)
        if f.kind == "choice":
            assert f.default in f.choices or (f.default is None and f.nullable)
        json.dumps(f.to_json())
    assert sum(1 for f in form if f.help) >= len(form) // 2


def test_param_form_takes_types_ranges_and_choices_from_the_constraints() -> None:
    rf = {f.name: f for f in catalogue.param_form("random_forest", "classification")}
    assert (rf["n_estimators"].kind, rf["n_estimators"].default, rf["n_estimators"].low) == ("int", 100, 1)
    assert rf["n_estimators"].help == "The number of trees in the forest."
    assert set(rf["criterion"].choices) == {"gini", "entropy", "log_loss"}
    assert rf["max_depth"].nullable and rf["max_depth"].kind == "int"
    assert rf["max_features"].kind == "choice" and set(rf["max_features"].choices) == {"sqrt", "log2"}
    assert {a["kind"] for a in rf["max_features"].alternatives} == {"int", "float", "choice", "none"}
    lr = {f.name: f for f in catalogue.param_form("logistic_regression")}
    assert lr["max_iter"].default == 1000  # the catalogue's fixed default, not scikit-learn's 100
    assert lr["C"].kind == "float" and lr["C"].low == 0 and not lr["C"].low_inclusive and lr["C"].log_scale
    assert "penalty" not in lr  # deprecated in scikit-learn 1.8+: its default is a placeholder
    svm = {f.name: f for f in catalogue.param_form("svm", "classification")}
    assert "precomputed" not in svm["kernel"].choices and "probability" not in svm
    assert svm["gamma"].default == "scale" and any(a["kind"] == "float" for a in svm["gamma"].alternatives)


def test_coerce_params_converts_text_and_names_what_is_wrong() -> None:
    got = catalogue.coerce_params("random_forest", {"n_estimators": "50", "max_depth": "none", "max_features": "0.5",
                                                    "bootstrap": "false", "criterion": "entropy"}, "classification")
    assert got == {"n_estimators": 50, "max_depth": None, "max_features": 0.5, "bootstrap": False,
                   "criterion": "entropy"}
    assert catalogue.coerce_params("random_forest", {"max_features": "3"})["max_features"] == 3
    assert catalogue.coerce_params("svm", {"C": 2, "gamma": "0.1"}, "regression") == {"C": 2, "gamma": 0.1}
    cases = [
        ({"n_estimators": "0"}, r"Parameter 'n_estimators' of Random forest must be an int in the range \[1, inf\)"),
        ({"n_estimators": "many"}, "'n_estimators'.*got many"),
        ({"criterion": "best"}, "'criterion'.*one of 'entropy', 'gini', 'log_loss'.*got best"),
        ({"max_depth": 2.5}, "'max_depth'.*or None"),
        ({"min_weight_fraction_leaf": "0.9"}, r"'min_weight_fraction_leaf'.*\[0.0, 0.5\]"),
    ]
    for raw, pattern in cases:
        with pytest.raises(ModelyardError, match=pattern):
            catalogue.coerce_params("random_forest", raw, "classification")
    with pytest.raises(ModelyardError, match="has no parameter 'n_estimator'") as err:
        catalogue.coerce_params("random_forest", {"n_estimator": "5"})
    assert "Did you mean 'n_estimators'" in (err.value.hint or "")
    with pytest.raises(ModelyardError, match="'random_state'.*the run's seed sets it"):
        catalogue.coerce_params("random_forest", {"random_state": "1"})


def test_default_search_spaces_are_valid_and_sampled_within_the_budget() -> None:
    for entry in catalogue.MODELS.values():
        for task in entry.tasks:
            space = catalogue.check_search_space(entry.key, task, catalogue.default_search_space(entry.key, task))
            for method in ("random", "grid"):
                cands = search_candidates(space, method, 4, seed=1)
                assert 1 <= len(cands) <= 4
                for c in cands:  # every candidate is a valid parameter set
                    assert catalogue.coerce_params(entry.key, c, task) == c
    space = {"C": {"type": "float", "low": 0.01, "high": 100, "log": True}, "class_weight": [None, "balanced"]}
    a = search_candidates(space, "random", 5, seed=3)
    assert a == search_candidates(space, "random", 5, seed=3) and len(a) == 5
    assert all(0.01 <= c["C"] <= 100 for c in a)
    grid = search_candidates(space, "grid", None, seed=0)
    assert len(grid) == 6 and {c["C"] for c in grid} == {0.01, 1.0, 100.0}
    with pytest.raises(ModelyardError, match="'C'.*low < high"):
        catalogue.check_search_space("logistic_regression", "classification", {"C": {"low": 5, "high": 1}})
    with pytest.raises(ModelyardError, match="no parameter 'depth'"):
        catalogue.check_search_space("random_forest", "classification", {"depth": [1, 2]})


# --------------------------------------------------------------------------- preprocessing

SCHEMA = {"columns": [
    {"name": "age", "dtype": "double", "type": "numeric", "role": "feature"},
    {"name": "plan", "dtype": "string", "type": "categorical", "role": "feature"},
    {"name": "active", "dtype": "bool", "type": "boolean", "role": "feature"},
    {"name": "signup", "dtype": "timestamp[us]", "type": "datetime", "role": "feature"},
    {"name": "customer_id", "dtype": "string", "type": "id", "role": "identifier"},
    {"name": "notes", "dtype": "string", "type": "text", "role": "ignored"},
    {"name": "internal", "dtype": "int64", "type": "numeric", "role": "ignored"},
    {"name": "churned", "dtype": "string", "type": "categorical", "role": "target"},
], "target": "churned", "task": "classification"}


def schema_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "age": [31.0, np.nan, 45.0, 52.0, 23.0],
        "plan": pd.array(["basic", "pro", None, "pro", "team"], dtype="str"),
        "active": pd.array([True, False, None, True, True], dtype=object),
        "signup": pd.to_datetime(["2023-01-05", "2023-03-10 14:00", None, "2024-02-29", "2022-12-31"],
                                 format="ISO8601"),
        "customer_id": ["c1", "c2", "c3", "c4", "c5"],
        "notes": ["a long note"] * 5,
        "internal": [1, 2, 3, 4, 5],
        "churned": ["no", "yes", "no", "no", "yes"],
    })


def test_preprocessing_plan_follows_the_schema() -> None:
    plan = preprocess.describe_preprocessing(SCHEMA)
    steps = {c["name"]: c["step"] for c in plan["columns"]}
    assert steps == {"age": "numeric", "plan": "onehot", "active": "boolean", "signup": "datetime",
                     "customer_id": "drop", "notes": "drop", "internal": "drop", "churned": "target"}
    assert plan["features"] == ["age", "plan", "active", "signup"]
    by = {c["name"]: c for c in plan["columns"]}
    assert by["age"]["impute"] == "median" and by["age"]["scale"] is True
    assert by["plan"]["max_categories"] == preprocess.MAX_CATEGORIES
    json.dumps(plan)
    tree = {c["name"]: c for c in preprocess.describe_preprocessing(SCHEMA, model_key="random_forest")["columns"]}
    assert tree["plan"]["step"] == "ordinal" and tree["age"]["scale"] is False


def test_preprocessor_handles_missing_values_dates_booleans_and_unseen_categories() -> None:
    df = schema_frame()
    ct = preprocess.build_preprocessor(SCHEMA)
    out = ct.fit_transform(df)
    names = list(ct.get_feature_names_out())
    assert out.dtype == np.float64 and not np.isnan(out).any()
    assert out.shape == (5, 1 + 3 + 1 + 5)
    assert "datetime__signup_year" in names and "onehot__plan_pro" in names and "boolean__active" in names
    year = out[:, names.index("datetime__signup_year")]
    assert year[3] > year[0] > year[4]  # scaled, order kept
    new = df.copy()
    new["plan"] = pd.array(["enterprise", "pro", "basic", None, "pro"], dtype="str")
    new = new.astype({"age": "int64"}, errors="ignore").fillna({"age": 40})
    got = ct.transform(new)
    assert got.shape == out.shape and not np.isnan(got).any()
    assert got[0, names.index("onehot__plan_pro")] == 0 and got[0, names.index("onehot__plan_basic")] == 0
    import pickle

    assert np.allclose(pickle.loads(pickle.dumps(ct)).transform(df), out)


def test_preprocessing_overrides_are_applied_and_checked() -> None:
    plan = preprocess.describe_preprocessing(SCHEMA, overrides={
        "age": {"impute": "mean", "scale": False}, "notes": "onehot", "plan": "drop", "internal": "numeric",
        "signup": {"parts": ["year", "quarter"]}})
    by = {c["name"]: c for c in plan["columns"]}
    assert (by["age"]["impute"], by["age"]["scale"], by["age"]["reason"]) == ("mean", False, "set by you")
    assert by["notes"]["step"] == "onehot" and by["plan"]["step"] == "drop" and by["internal"]["step"] == "numeric"
    assert plan["features"] == ["age", "active", "signup", "notes", "internal"]
    out = preprocess.build_preprocessor(plan=plan).fit_transform(schema_frame())
    assert out.shape == (5, 1 + 1 + 2 + 1 + 1)
    bad = [({"plan": "datetime"}, "cannot use the 'datetime' step"), ({"nope": "drop"}, "does not have: 'nope'"),
           ({"age": "scale"}, "Unknown preprocessing step 'scale'"), ({"age": {"impute": "most_often"}}, "most_often"),
           ({"churned": "onehot"}, "is the target"), ({"signup": {"parts": ["week"]}}, "'parts'")]
    for overrides, pattern in bad:
        with pytest.raises(ModelyardError, match=pattern):
            preprocess.describe_preprocessing(SCHEMA, overrides=overrides)
    with pytest.raises(ModelyardError, match="No column is left"):
        preprocess.build_preprocessor(SCHEMA, {c: "drop" for c in ("age", "plan", "active", "signup")})


# --------------------------------------------------------------------------- the spec


def test_spec_round_trips_and_reads_yaml_and_json_files(tmp_path: Path) -> None:
    spec = TrainSpec(dataset="churn@v2", model="svm", params={"C": 2.0}, cv=5, search={"method": "random"},
                     slice_columns=["region"])
    assert spec.search == {"method": "random", "trials": 10, "space": None, "metric": None}
    assert TrainSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    yaml_file = tmp_path / "train.yaml"
    yaml_file.write_text("dataset: churn\nmodel: random_forest\nparams:\n  n_estimators: 200\n  max_depth: null\n"
                         "cv: 3\nsearch: {method: grid, trials: 4}\nslices: [region, sex]\nsplit: {test: 0.25}\n")
    try:
        import yaml  # noqa: F401
    except ImportError:
        with pytest.raises(SpecError, match="needs PyYAML"):
            TrainSpec.from_file(yaml_file)
    else:
        got = TrainSpec.from_file(yaml_file)
        assert (got.dataset, got.model, got.params, got.cv) == ("churn", "random_forest",
                                                                {"n_estimators": 200, "max_depth": None}, 3)
        assert got.search["trials"] == 4 and got.slice_columns == ["region", "sex"] and got.split == {"test": 0.25}
    json_file = tmp_path / "train.json"
    json_file.write_text(json.dumps({"dataset": "iris", "model": "knn", "folds": 4}))
    assert TrainSpec.from_file(json_file).cv == 4
    assert read_spec_file(json_file)["model"] == "knn"
    for data, pattern in [({"dataset": "x", "model": "knn", "epochs": 3}, "Unknown field.*epochs"),
                          ({"model": "knn"}, "names no dataset"), ({"dataset": "x"}, "names no model"),
                          ({"dataset": "x", "model": "knn", "cv": 1}, "at least 2 folds"),
                          ({"dataset": "x", "model": "knn", "search": {"method": "bayes"}}, "Unknown search method")]:
        with pytest.raises(SpecError, match=pattern):
            TrainSpec.from_json(data)
    job = train_spec_job(spec)
    assert job.process and job.kind == "train" and job.func == "modelyard.core.experiments.training.train:train"
    assert job.params["spec"]["dataset"] == "churn@v2"


# --------------------------------------------------------------------------- a classifier, end to end


@pytest.mark.slow
def test_classifier_run_records_params_metrics_artifacts_and_facts(lab: dict[str, Any]) -> None:
    store, outcome, rec = lab["store"], lab["clf"], lab["clf_rec"]
    result = outcome.result
    info = tracking.get_run(result["run_id"], store=store)
    assert info.status == "succeeded" and info.experiment == "iris" and info.source == "api"
    assert any(ln.startswith(f"Run {info.id} started") for ln in rec.lines)
    assert "Dropped 2 row(s) whose target 'species' is missing." in rec.lines
    assert any(msg.startswith("Cross-validation: fold 2/3") for msg in rec.messages)
    with store.session() as s:
        row = s.scalar(select(m.Run).where(m.Run.uuid == info.id))
        assert row.job_id == outcome.job_id and row.split_id == result["split_id"]
        assert row.dataset_version_id == result["dataset_version_id"]
    # params
    assert info.params["model"] == "random_forest" and info.params["n_estimators"] == "20"
    assert info.params["max_depth"] == "6" and info.params["dataset"] == "iris@v1" and info.params["cv"] == "3"
    assert int(info.params["n_train"]) + int(info.params["n_test"]) == 148
    # metrics: on test, per fold and their summary, a learning curve, slice gaps
    for key in CLASSIFICATION_METRICS:
        assert key in info.metrics and key in result["metrics"], key
        assert f"cv_{key}_mean" in info.metrics and f"cv_{key}_std" in info.metrics
    folds = tracking.metric_history(info.id, "cv_accuracy", store=store)
    assert list(folds["step"]) == [0, 1, 2] and folds["value"].between(0, 1).all()
    assert math.isclose(folds["value"].mean(), info.metrics["cv_accuracy_mean"])
    curve = tracking.metric_history(info.id, "learning_curve_accuracy", store=store)
    assert len(curve) >= 3 and list(curve["step"]) == sorted(curve["step"])
    assert curve["step"].iloc[-1] == int(info.params["n_train"])
    assert "slice_gap_region" in info.metrics
    # artifacts
    paths = {a.path for a in info.artifacts}
    assert {"model/model.joblib", "model/input_example.json", "model/signature.json", "preprocessing.json",
            "reproducibility.json", "evaluation/confusion_matrix.json", "evaluation/roc_curve.json",
            "evaluation/pr_curve.json", "evaluation/permutation_importance.json",
            "evaluation/slices.json"} <= paths
    cm = artifact(store, info, "evaluation/confusion_matrix.json")
    assert cm["labels"] == ["setosa", "versicolor", "virginica"]
    assert sum(map(sum, cm["matrix"])) == cm["n"] == int(info.params["n_test"])
    roc = artifact(store, info, "evaluation/roc_curve.json")
    assert roc["kind"] == "one_vs_rest" and roc["score"] == "probability" and len(roc["curves"]) == 3
    assert all(len(c["fpr"]) == len(c["tpr"]) <= 200 and c["fpr"][0] == 0 for c in roc["curves"])
    assert math.isclose(roc["auc_macro"], info.metrics["roc_auc"])
    pr = artifact(store, info, "evaluation/pr_curve.json")
    assert {c["label"] for c in pr["curves"]} == set(cm["labels"])
    assert all(0 < c["prevalence"] < 1 for c in pr["curves"])
    imp = artifact(store, info, "evaluation/permutation_importance.json")
    assert imp["n_repeats"] == 5 and imp["metric"] == "accuracy"
    assert imp["features"][0]["name"].startswith("petal")  # what tells irises apart
    assert "plant_id" not in {f["name"] for f in imp["features"]}
    slices = artifact(store, info, "evaluation/slices.json")
    region = slices["columns"][0]
    assert region["column"] == "region" and {g["value"] for g in region["groups"]} <= {"north", "south", "east",
                                                                                       "(missing)"}
    assert sum(g["n"] for g in region["groups"]) == int(info.params["n_test"])
    assert region["gap"] == pytest.approx(region["best"]["score"] - region["worst"]["score"])
    plan = artifact(store, info, "preprocessing.json")
    assert {c["name"]: c["step"] for c in plan["columns"]}["plant_id"] == "drop"
    # signature and example rows
    sig = artifact(store, info, "model/signature.json")
    assert [i["name"] for i in sig["inputs"]] == ["sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                                                  "petal width (cm)", "region", "measured", "greenhouse"]
    assert {i["name"]: i["type"] for i in sig["inputs"]}["measured"] == "datetime"
    assert sig["target"]["classes"] == cm["labels"] and sig["output"] == {"kind": "label", "proba": True}
    assert len(sig["example"]["rows"]) == 5 and len(sig["example"]["rows"][0]) == 7
    # the reproducibility record
    repro = artifact(store, info, "reproducibility.json")
    v = repro["dataset"]
    assert v["ref"] == "iris@v1" and v["data_hash"] == v["content_hash"] and len(v["content_hash"]) == 64
    assert repro["split"]["id"] == result["split_id"] and repro["split"]["method"] == "stratified"
    assert repro["seed"] == 0 and repro["spec"]["model"] == "random_forest" and repro["spec"]["cv"] == 3
    assert repro["spec"]["params"] == {"n_estimators": 20, "max_depth": 6}
    assert repro["packages"]["scikit-learn"] and repro["packages"]["numpy"] and repro["python"]
    assert repro["platform"] and repro["modelyard"]
    if (ROOT / ".git").exists():
        assert len(repro["git"]["commit"]) == 40 and info.tags["git_commit"] == repro["git"]["commit"]
    assert info.spec == repro["spec"] and info.spec["dataset_version_id"] == v["dataset_version_id"]
    # the model loads and predicts
    import joblib

    model_art = next(a for a in info.artifacts if a.path == "model/model.joblib")
    model = joblib.load(store.artifacts.path(model_art.sha256))
    rows = pd.DataFrame(sig["example"]["rows"], columns=sig["example"]["columns"])
    rows["measured"] = pd.to_datetime(rows["measured"])
    assert set(model.predict(rows)) <= set(cm["labels"])
    assert model.predict_proba(rows).shape == (5, 3)


@pytest.mark.slow
def test_reproduce_gives_identical_metrics(lab: dict[str, Any]) -> None:
    store, first = lab["store"], lab["clf"].result["run_id"]
    outcome = run_job(store, reproduce_spec(first, cwd=str(ROOT)))
    assert outcome.status == "succeeded", outcome.error
    r = outcome.result
    assert r["matches"] is True and r["differences"] == [] and r["summary"].startswith("Reproduced: all")
    assert len(r["metrics"]) >= 20 and all(m_["equal"] and m_["abs_diff"] == 0 for m_ in r["metrics"])
    assert "fit_time_s" not in {m_["key"] for m_ in r["metrics"]}
    new = tracking.get_run(r["new_run_id"], store=store)
    assert new.tags["reproduces"] == first and new.tags["reproduce_matches"] == "true"
    assert artifact(store, new, "reproduction.json")["matches"] is True
    assert new.experiment == "iris" and new.spec["dataset"] == "iris@v1"


@pytest.mark.slow
def test_regressor_on_diabetes_records_series_residuals_and_a_slice_gap(lab: dict[str, Any]) -> None:
    store = lab["store"]
    spec = TrainSpec(dataset="diabetes", model="hist_gradient_boosting", params={"max_iter": 30},
                     slice_columns=["sex", "age"], split={"test": 0.25, "validation": 0.15})
    outcome = train_and_wait(store, spec)
    assert outcome.status == "succeeded", outcome.error
    info = tracking.get_run(outcome.result["run_id"], store=store)
    assert info.params["task"] == "regression" and info.params["max_iter"] == "30"
    for key in REGRESSION_METRICS:
        assert key in info.metrics and f"val_{key}" in info.metrics
    staged = tracking.metric_history(info.id, "staged_rmse", store=store)
    assert list(staged["step"]) == list(range(1, 31))
    assert math.isclose(staged["value"].iloc[-1], info.metrics["rmse"])
    res = artifact(store, info, "evaluation/residuals.json")
    assert res["n"] == int(info.params["n_test"]) == res["shown"]
    assert len(res["points"]["actual"]) == len(res["points"]["predicted"]) == res["n"]
    assert res["points"]["residual"][0] == pytest.approx(res["points"]["actual"][0] - res["points"]["predicted"][0])
    assert sum(res["histogram"]["counts"]) == res["n"] and len(res["histogram"]["edges"]) == 31
    slices = {c["column"]: c for c in artifact(store, info, "evaluation/slices.json")["columns"]}
    sex = slices["sex"]
    assert len(sex["groups"]) == 2 and sex["gap"] > 0 and slices["age"]["groups"][0]["value"].startswith("(")
    assert info.metrics["slice_gap_sex"] == pytest.approx(sex["gap"])
    assert sex["best"]["score"] <= sex["worst"]["score"]  # rmse: lower is better
    assert "evaluation/confusion_matrix.json" not in {a.path for a in info.artifacts}


@pytest.mark.slow
def test_random_search_creates_a_parent_and_one_child_run_per_trial(lab: dict[str, Any]) -> None:
    store = lab["store"]
    spec = TrainSpec(dataset="iris", model="logistic_regression", cv=2, experiment="iris-search",
                     search={"method": "random", "trials": 3, "metric": "f1_macro",
                             "space": {"C": {"type": "float", "low": 0.01, "high": 10, "log": True}}})
    rec = Recorder()
    outcome = train_and_wait(store, spec, reporter=rec)
    assert outcome.status == "succeeded", outcome.error
    parent_id = outcome.result["run_id"]
    runs = runs_of_job(store, outcome.job_id)
    assert len(runs) == 4 and runs[0]["run_id"] == parent_id and runs[0]["parent_id"] is None
    children = runs[1:]
    assert all(c["parent_id"] == parent_id and c["status"] == "succeeded" for c in children)
    assert any(msg.startswith("Trial 2/3: fold 1/2") for msg in rec.messages)
    search = outcome.result["search"]
    assert len(search["trials"]) == 3 and search["metric"] == "f1_macro" and search["evaluation"] == "cv"
    scores = [t["score"] for t in search["trials"]]
    assert search["best"]["score"] == max(scores)
    parent = tracking.get_run(parent_id, store=store)
    assert parent.params["search"] == "random" and parent.params["search_trials"] == "3"
    assert parent.params["C"] == str(search["best"]["params"]["C"])
    assert parent.metrics["best_score"] == search["best"]["score"]
    assert "search/trials.json" in {a.path for a in parent.artifacts} and "accuracy" in parent.metrics
    for child, trial in zip(children, search["trials"], strict=True):
        c = tracking.get_run(child["run_id"], store=store)
        assert c.tags["search_trial"] == str(trial["trial"]) and c.metrics["score"] == trial["score"]
        assert float(c.params["C"]) == trial["params"]["C"] and "cv_f1_macro_mean" in c.metrics
        assert len(tracking.metric_history(c.id, "cv_accuracy", store=store)) == 2
        assert c.spec is None  # a trial is reproduced through its search
    with pytest.raises(ModelyardError, match="trial 1 of the search") as err:
        reproduce(JobContext(store, create_job(store, reproduce_spec(children[0]["run_id"])), record=False),
                  run_id=children[0]["run_id"])
    assert parent_id[:12] in (err.value.hint or "")


@pytest.mark.slow
def test_cancelling_a_training_job_kills_it_within_two_seconds_and_marks_the_run(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    try:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(20_000, 8))
        df = pd.DataFrame(X, columns=[f"x{i}" for i in range(8)])
        df["label"] = np.where(X[:, 0] + rng.normal(size=len(X)) > 0, "yes", "no")
        import_frame(store, df, "big", target="label")
        spec = TrainSpec(dataset="big", model="random_forest", params={"n_estimators": 5000})
        rec = Recorder(trigger="Fitting")
        cancel = threading.Event()
        box: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: box.update(out=train_and_wait(store, spec, reporter=rec,
                                                                               cancel_event=cancel)), daemon=True)
        worker.start()
        assert rec.hit.wait(60), f"training never started fitting: {rec.messages[-3:]}"
        t0 = time.monotonic()
        cancel.set()
        worker.join(10)
        elapsed = time.monotonic() - t0
        assert not worker.is_alive()
        assert elapsed < 2.0, f"cancelling took {elapsed:.2f} s"
        out = box["out"]
        assert out.status == "cancelled"
        runs = runs_of_job(store, out.job_id)
        assert len(runs) == 1 and runs[0]["status"] == "cancelled"
        info = tracking.get_run(runs[0]["run_id"], store=store)
        assert info.error == "Cancelled by the user." and info.end_time is not None
        assert mark_runs_of_job_cancelled(store, out.job_id) == []  # nothing left running
    finally:
        store.close()


# --------------------------------------------------------------------------- changing data, in this process


def test_new_data_makes_reproduce_report_the_data_hash_difference(tmp_path: Path) -> None:
    """The user's way of changing a dataset: import changed data as its next version.

    A spec that names the dataset without a version reproduces on the latest data, and the
    report says the data hash (and the version) differ; pinned to the recorded version it
    reproduces exactly.
    """
    store = Store.open(tmp_path / "store")
    try:
        df, target = sample_frame("iris")
        import_frame(store, df, "flowers", target=target)
        spec = TrainSpec(dataset="flowers", model="logistic_regression", seed=3)
        first = run_job(store, in_process(train_spec_job(spec)))
        assert first.status == "succeeded", first.error
        run_id = first.result["run_id"]
        changed = df.copy()
        changed.loc[changed.index[::3], "petal width (cm)"] *= 1.7
        assert import_frame(store, changed, "flowers", target=target)["ref"] == "flowers@v2"
        again = run_job(store, in_process(reproduce_spec(run_id)))
        assert again.status == "succeeded", again.error
        r = again.result
        assert r["matches"] is False
        facts = {d["fact"]: d for d in r["differences"]}
        assert set(facts) == {"data hash", "dataset version"}
        old = tracking.get_run(run_id, store=store).spec["content_hash"]
        assert facts["data hash"]["recorded"] == old and facts["data hash"]["now"] != old
        assert (facts["dataset version"]["recorded"], facts["dataset version"]["now"]) == ("flowers@v1", "flowers@v2")
        assert "data hash" in r["summary"] and any(not x["equal"] for x in r["metrics"])
        assert tracking.get_run(r["new_run_id"], store=store).tags["reproduce_matches"] == "false"
        pinned = run_job(store, in_process(reproduce_spec(run_id, data="recorded")))
        assert pinned.result["matches"] is True and pinned.result["differences"] == []
    finally:
        store.close()


def test_bad_specs_fail_before_any_run_is_recorded(store: Store) -> None:
    df, target = sample_frame("iris")
    import_frame(store, df, "iris", target=target)
    cases = [
        (TrainSpec(dataset="iris", model="linear_regression"), "Linear regression is not a classification model"),
        (TrainSpec(dataset="iris", model="knn", target="colour"), "iris@v1 has no column 'colour' to predict"),
        (TrainSpec(dataset="iris", model="knn", params={"n_neighbors": "-3"}), "'n_neighbors'"),
        (TrainSpec(dataset="iris", model="knn", slice_columns=["region"]), "no column(s) 'region' to slice by"),
        (TrainSpec(dataset="roses", model="knn"), "There is no dataset 'roses'"),
        (TrainSpec(dataset="iris", model="knn", preprocessing={"petal width (cm)": "datetime"}), "cannot use"),
    ]
    for spec, message in cases:
        out = run_job(store, in_process(train_spec_job(spec)))
        assert out.status == "failed" and message in out.error, (message, out.error)
    assert runs_of_job(store, out.job_id) == []
    with store.session() as s:
        assert s.scalar(select(m.Run.id).limit(1)) is None


def test_a_run_logged_by_a_script_cannot_be_reproduced(store: Store) -> None:
    with tracking.start_run("notebook", store=store) as run:
        run.log_metric("acc", 0.5)
    out = run_job(store, in_process(reproduce_spec(run.id)))
    assert out.status == "failed" and "has no training spec" in out.error


def test_mark_runs_of_job_cancelled_ends_only_that_jobs_running_runs(store: Store) -> None:
    job = create_job(store, JobSpec("x:y", "t"))
    other = create_job(store, JobSpec("x:y", "t"))
    a = tracking.start_run("e", store=store, job_id=job)
    b = tracking.start_run("e", store=store, job_id=other)
    c = tracking.start_run("e", store=store, job_id=job)
    c.end("succeeded")
    assert mark_runs_of_job_cancelled(store, job) == [a.id]
    assert tracking.get_run(a.id, store=store).status == "cancelled"
    assert tracking.get_run(b.id, store=store).status == "running"
    assert tracking.get_run(c.id, store=store).status == "succeeded"
    b.end("succeeded")
    a.end("cancelled")  # the object itself never learnt (in real life its process is gone)


def test_a_warning_with_an_empty_message_is_logged_not_a_failure() -> None:
    """A library's warnings.warn("") gave the training job an IndexError when its warnings were
    logged (the first line of an empty message); now a line naming the warning's class."""
    import warnings

    from modelyard.core.experiments.training.recording import _warnings_to_log

    class Ctx:
        lines: list[str] = []

        def log(self, text: str) -> None:
            self.lines.append(text)

    ctx = Ctx()
    with _warnings_to_log(ctx):  # type: ignore[arg-type]
        warnings.warn("", UserWarning, stacklevel=1)
        warnings.warn("solver did not converge\nsecond line", UserWarning, stacklevel=1)
    assert ctx.lines == ["warning: UserWarning: ", "warning: UserWarning: solver did not converge"]
