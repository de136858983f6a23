"""Reference profiles (``modelyard.core.registry.reference``): built from a frame, from a model version's
training rows, or read back from a stored profile (bundles)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.jobs.runner import JobSpec, run_job
from modelyard.core.registry import reference as ref
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from modelyard.core.store import models as m


def churn_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n).round(1)
    plan = rng.choice(["basic", "pro", "team"], n, p=[0.6, 0.3, 0.1])
    visits = rng.integers(0, 6, n)
    churned = np.where(age + rng.normal(0, 5, n) > 45, "yes", "no")
    df = pd.DataFrame({"age": age, "plan": plan, "visits": visits, "churned": churned})
    df.loc[[3, 9], "age"] = np.nan
    return df


def train_version(store: Store, frame: pd.DataFrame, *, name: str = "churn", target: str = "churned",
                  model: str = "logistic_regression",
                  params: dict[str, Any] | None = None) -> registry.ModelVersionInfo:
    """Import ``frame``, train in this process (quicker than the child process), register."""
    from modelyard.core.datasets.service import import_frame
    from modelyard.core.experiments.training.spec import TrainSpec

    import_frame(store, frame, name, target=target)
    spec = TrainSpec(dataset=name, model=model, params=params or {},
                     split={"test": 0.25, "seed": 0})
    outcome = run_job(store, JobSpec(func="modelyard.core.experiments.training.train:train", title="train",
                                     params={"spec": spec.to_json()}))
    assert outcome.status == "succeeded", outcome.error
    return registry.register(store, outcome.result["run_id"], name)


# --------------------------------------------------------------------------- from a frame


def test_build_reference_profiles_every_kind_of_column() -> None:
    df = churn_frame()
    df["signup"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(df)), unit="D")
    df["flag"] = df["visits"] > 2
    profile = ref.build_reference(df, target="churned", categorical=["visits"])
    assert json.loads(json.dumps(profile)) == profile  # plain JSON
    assert profile["format"] == 1 and profile["n_rows"] == 600 and profile["target"] == "churned"
    cols = profile["columns"]
    assert set(cols) == {"age", "plan", "visits", "churned", "flag"}
    assert profile["skipped"] == {"signup": ref.SKIPPED_TYPES["datetime"]}

    age = cols["age"]
    assert age["kind"] == "numeric" and age["missing"] == pytest.approx(2 / 600) and age["n"] == 598
    assert len(age["quantiles"]) == len(age["counts"]) + 1
    assert ref.MAX_BINS < len(age["quantiles"]) <= len(ref.quantile_levels())  # repeated edges merged
    assert sum(age["counts"]) == 598 and not age["discrete"]
    assert age["min"] == df["age"].min() and age["max"] == df["age"].max()
    assert age["mean"] == pytest.approx(df["age"].mean()) and age["std"] == pytest.approx(df["age"].std())
    assert age["quantiles"][0] == age["min"] and age["quantiles"][-1] == age["max"]
    # quantile bins: each holds about 1 % of the rows (finer in the tails)
    assert max(age["counts"]) < 3 * 598 / ref.MAX_BINS
    assert ref.quantile_levels()[:3].tolist() == [0.0, 0.0005, 0.001]

    plan = cols["plan"]
    assert plan["kind"] == "categorical" and plan["categories"][0] == "basic"
    assert dict(zip(plan["categories"], plan["counts"], strict=True)) == df["plan"].value_counts().to_dict()
    visits = cols["visits"]  # integers asked to be categorical: keys are text
    assert visits["kind"] == "categorical" and set(visits["categories"]) == {"0", "1", "2", "3", "4", "5"}
    assert cols["flag"]["kind"] == "categorical" and set(cols["flag"]["categories"]) == {"True", "False"}


def test_numeric_column_with_few_values_gets_one_bin_per_value() -> None:
    values = np.array([0.0, 1, 1, 2, 2, 2, 7, 7, 7, 7])
    prof = ref.numeric_profile(values)
    assert prof["discrete"] and prof["quantiles"] == [0.0, 1.0, 2.0, 7.0, 7.0] and prof["counts"] == [1, 2, 3, 4]
    # a later batch binned with the same edges lines up value by value, tails go to the outer bins
    batch = np.array([-5.0, 0, 1, 2, 2, 7, 9, 9])
    assert ref.bin_counts(prof["quantiles"], batch).tolist() == [2, 1, 2, 3]
    assert ref.bin_counts(prof["quantiles"], np.sort(batch), sorted_values=True).tolist() == [2, 1, 2, 3]


def test_category_keys_match_across_types() -> None:
    assert ref.category_key(1) == ref.category_key(1.0) == ref.category_key("1") == ref.category_key(np.int64(1))
    assert ref.category_key(True) == "True" and ref.category_key(np.bool_(False)) == "False"
    assert ref.category_key(1.5) == "1.5"


def test_many_categories_are_capped_with_the_rest_counted() -> None:
    series = pd.Series([f"c{i}" for i in range(1500)] + ["c0"] * 10)
    counts, missing = ref.category_counts(series)
    prof = ref.categorical_profile(counts, missing)
    assert len(prof["categories"]) == ref.MAX_CATEGORIES and prof["categories"][0] == "c0"
    assert prof["counts"][0] == 11 and prof["other_count"] == 500 and prof["n"] == 1510


def test_build_reference_refuses_unknown_columns() -> None:
    with pytest.raises(ModelyardError, match="no target column 'nope'"):
        ref.build_reference(churn_frame(), target="nope")
    with pytest.raises(ModelyardError, match="'colour'"):
        ref.build_reference(churn_frame(), categorical=["colour"])


def test_validate_reference_names_the_broken_column() -> None:
    good = ref.build_reference(churn_frame(), target="churned")
    assert ref.validate_reference(good) is good
    bad = json.loads(json.dumps(good))
    bad["columns"]["age"]["counts"].pop()
    with pytest.raises(ModelyardError, match="'age' is malformed"):
        ref.validate_reference(bad)
    with pytest.raises(ModelyardError, match="format 9"):
        ref.validate_reference({**good, "format": 9})
    with pytest.raises(ModelyardError, match="not a reference profile"):
        ref.validate_reference([1, 2])


# --------------------------------------------------------------------------- from a model version


def test_reference_for_version_uses_the_training_rows_of_the_split(store: Store) -> None:
    from modelyard.core.datasets.service import get_split

    df = churn_frame()
    mv = train_version(store, df)
    profile = ref.reference_for_version(store, mv.id)
    assert profile is not None and json.loads(json.dumps(profile)) == profile
    n_train = get_split(store, mv.split_id).counts["train"]
    assert profile["n_rows"] == n_train < len(df)
    assert profile["source"] == {"dataset_version_id": mv.dataset_version_id, "split_id": mv.split_id,
                                 "part": "train", "n_rows": n_train, "model_version_id": mv.id}
    assert profile["target"] == "churned" and profile["task"] == "classification"
    assert set(profile["columns"]) == {"age", "plan", "visits", "churned"}
    assert profile["columns"]["churned"]["kind"] == "categorical"  # a classification target
    assert profile["columns"]["plan"]["kind"] == "categorical" and profile["columns"]["age"]["kind"] == "numeric"
    assert profile["features"] == ["age", "plan", "visits"]
    # the model's predictions on those rows: labels
    pred = profile["predictions"]
    assert pred["kind"] == "categorical" and set(pred["categories"]) <= {"yes", "no"} and pred["n"] == n_train


def test_a_model_with_a_date_input_gets_the_profile_of_its_outputs(store: Store) -> None:
    df = churn_frame()
    df["signup"] = pd.date_range("2024-01-01", periods=len(df), freq="D")
    mv = train_version(store, df)
    assert "signup" in [c["name"] for c in registry.get_version(store, mv.ref).signature["inputs"]]
    profile = ref.reference_for_version(store, mv.id)
    # the date is not compared (time moves on) but the model still runs on the rows, date included
    assert "signup" not in profile["columns"] and "signup" in profile["skipped"]
    assert "predictions_error" not in profile, profile.get("predictions_error")
    assert profile["predictions"]["kind"] == "categorical" and profile["predictions"]["n"] == profile["n_rows"]


def test_reference_for_version_falls_back_to_the_stored_profile(store: Store) -> None:
    mv = train_version(store, churn_frame())
    stored = ref.build_reference(churn_frame(200, seed=5), target="churned")
    with store.write() as s:
        sha = store.artifacts.put_bytes(json.dumps(stored).encode(), session=s, media_type="application/json").sha256
        row = s.get(m.ModelVersion, mv.id)
        # a version imported from a bundle: no dataset version in this store, the profile as an artifact
        row.dataset_version_id = None
        row.card = {**(row.card or {}), "reference_profile_sha256": sha}
    assert ref.reference_for_version(store, mv.id) == stored
    with store.write() as s:
        s.get(m.ModelVersion, mv.id).card = {}
    assert ref.reference_for_version(store, mv.id) is None
    with pytest.raises(NotFoundError):
        ref.reference_for_version(store, 999)
