"""Batch scoring: input checked against the signature (by column name), predictions with class
probabilities, the scoring job (a new dataset version linked to the model and the input), and
``modelyard predict``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_helpers import cli
from factories import FEATURES, garden_frame, make_garden_store
from modelyard.core.datasets.service import (
    list_datasets,
    load_frame,
)
from modelyard.core.experiments import tracking
from modelyard.core.jobs.runner import run_job
from modelyard.core.registry import versions as registry
from modelyard.core.serving import scoring
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import func, select


@pytest.fixture(scope="module")
def garden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    store, info = make_garden_store(tmp_path_factory.mktemp("scoring") / "store")
    try:
        yield {"store": store, "info": info, "model": registry.load_model(store, info.ref), "root": store.root}
    finally:
        store.close()


def rows(frame: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    return frame.head(n).reset_index(drop=True).copy()


# --------------------------------------------------------------------------- checking input


def test_signature_of_a_trained_model_knows_kinds_and_training_categories(garden: dict[str, Any]) -> None:
    spec = scoring.input_spec(garden["info"].signature, garden["model"])
    kinds = {c.name: c.kind for c in spec.columns or []}
    assert kinds == {"sepal length (cm)": "number", "sepal width (cm)": "number", "petal length (cm)": "number",
                     "petal width (cm)": "number", "region": "category", "measured": "datetime",
                     "greenhouse": "boolean"}
    region = next(c for c in spec.columns or [] if c.name == "region")
    assert region.categories == frozenset({"north", "south", "east"})


def test_missing_and_wrongly_typed_columns_are_named_together(garden: dict[str, Any]) -> None:
    frame = rows(garden_frame()).drop(columns=["greenhouse", "measured"])
    frame["petal width (cm)"] = frame["petal width (cm)"].astype(object)
    frame.loc[3, "petal width (cm)"] = "wide"
    with pytest.raises(scoring.InputError) as err:
        scoring.validate_input(garden["info"].signature, frame, model=garden["model"])
    msg = err.value.message
    assert "Missing column(s) the model needs: 'measured', 'greenhouse'" in msg
    assert "Column 'petal width (cm)' should hold numbers (float64), but row 4 holds 'wide' (text)" in msg
    assert set(err.value.fields) == {"measured", "greenhouse", "petal width (cm)"}
    kinds = {p["kind"] for p in err.value.problems}
    assert kinds == {"missing_columns", "wrong_type"}
    assert "The model reads" in (err.value.hint or "")


def test_extra_columns_are_dropped_with_a_warning_and_types_converted(garden: dict[str, Any]) -> None:
    frame = rows(garden_frame()).astype(object)  # everything arrives as text, as from a lax CSV or JSON
    frame["sepal length (cm)"] = [str(v) for v in frame["sepal length (cm)"]]
    frame["greenhouse"] = ["yes", "no", "TRUE", "0", None]
    frame["measured"] = ["2024-03-01", "2024-03-01T12:30:00", "2024-03-01T12:30:00+02:00", None, "March 5, 2024"]
    warnings: list[dict[str, Any]] = []
    out = scoring.validate_input(garden["info"].signature, frame, model=garden["model"], warnings=warnings)
    assert list(out.columns) == FEATURES  # the model's columns, in its order; species and plant_id dropped
    assert warnings[0]["kind"] == "extra_columns" and warnings[0]["columns"] == ["species", "plant_id"]
    assert out["sepal length (cm)"].dtype == np.float64
    assert out["sepal length (cm)"].tolist() == rows(garden_frame())["sepal length (cm)"].tolist()
    assert out["greenhouse"].tolist() == [True, False, True, False, None]
    measured = out["measured"].tolist()
    assert measured[0] == pd.Timestamp("2024-03-01") and measured[2] == pd.Timestamp("2024-03-01T10:30:00")
    assert pd.isna(measured[3]) and measured[4] == pd.Timestamp("2024-03-05")


@pytest.mark.parametrize(("column", "value", "found"), [
    ("measured", "not a date", "'not a date' (text), which is not a date or time"),
    ("measured", 17, "17 (a number)"),
    ("greenhouse", "maybe", "'maybe' (text)"),
    ("sepal width (cm)", float("inf"), "inf (a number), which is not a finite number"),
    ("region", {"a": 1}, "an object"),
])
def test_a_wrong_type_names_column_expected_type_found_value_and_row(garden: dict[str, Any], column: str,
                                                                      value: Any, found: str) -> None:
    frame = rows(garden_frame()).astype(object)
    frame.at[2, column] = value
    with pytest.raises(scoring.InputError) as err:
        scoring.validate_input(garden["info"].signature, frame, model=garden["model"])
    assert err.value.fields == [column]
    assert f"Column '{column}' should hold" in err.value.message
    assert f"row 3 holds {found}" in err.value.message


def test_unseen_categories_are_reported_by_column_and_refused_when_strict(garden: dict[str, Any]) -> None:
    frame = rows(garden_frame(), 6)
    frame["region"] = ["west", "north", "atlantis", "west", None, "south"]
    warnings: list[dict[str, Any]] = []
    preds = scoring.predict_frame(garden["model"], garden["info"].signature, frame, warnings=warnings)
    assert len(preds) == 6  # scored: the encoder treats them as unknown
    (unseen,) = [w for w in warnings if w["kind"] == "unseen_categories"]
    assert unseen["column"] == "region" and unseen["values"] == ["atlantis", "west"] and unseen["rows"] == 3
    assert "Column 'region' has value(s) never seen in training: 'atlantis', 'west'" in unseen["message"]
    with pytest.raises(scoring.InputError) as err:
        scoring.predict_frame(garden["model"], garden["info"].signature, frame, strict=True)
    assert err.value.fields == ["region"] and "'atlantis', 'west'" in err.value.message


def test_predictions_match_the_pipeline_with_one_probability_column_per_class(garden: dict[str, Any]) -> None:
    frame = garden_frame()
    preds = scoring.predict_frame(garden["model"], garden["info"].signature, frame)
    assert list(preds.columns) == ["prediction", "proba_setosa", "proba_versicolor", "proba_virginica"]
    assert preds["prediction"].tolist() == list(garden["model"].predict(frame[FEATURES]))
    np.testing.assert_allclose(preds.iloc[:, 1:].to_numpy(), garden["model"].predict_proba(frame[FEATURES]))
    np.testing.assert_allclose(preds.iloc[:, 1:].sum(axis=1), 1.0)
    # a shuffled column order and JSON-ish values give the same answer
    shuffled = frame[FEATURES[::-1]].head(10)
    assert scoring.predict_frame(garden["model"], garden["info"].signature, shuffled)["prediction"].tolist() == \
        preds["prediction"].head(10).tolist()


def test_signatures_logged_with_a_frame_or_an_array_are_checked_too(store: Store) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.tree import DecisionTreeClassifier

    X = pd.DataFrame({"rooms": [1, 2, 3, 4, 5, 6], "area": [20.0, 35.5, 50, 70, 90, 120]})
    y = X["area"] * 1000.0
    with tracking.start_run("houses", store=store) as run:
        run.log_model(LinearRegression().fit(X, y), input_example=X.head(3))
    frame_info = registry.register(store, run.id, "price")
    assert frame_info.signature == {"inputs": [{"name": "rooms", "dtype": "int64"},
                                               {"name": "area", "dtype": "float64"}]}
    model = registry.load_model(store, frame_info.ref)
    out = scoring.predict_frame(model, frame_info.signature, pd.DataFrame({"area": ["60"], "rooms": [3], "x": [1]}))
    assert out.columns.tolist() == ["prediction"]  # a regressor: no probabilities
    assert out["prediction"].iloc[0] == pytest.approx(model.predict(pd.DataFrame({"rooms": [3], "area": [60.0]}))[0])
    with pytest.raises(scoring.InputError, match="Missing column.*'rooms'"):
        scoring.predict_frame(model, frame_info.signature, pd.DataFrame({"area": [60.0]}))

    A = np.array([[0, 1], [1, 0], [1, 1], [0, 0]], dtype=float)
    with tracking.start_run("grid", store=store) as run:
        run.log_model(DecisionTreeClassifier().fit(A, [0, 1, 1, 0]), input_example=A[:2])
    arr_info = registry.register(store, run.id, "grid")
    assert arr_info.signature == {"inputs": [{"shape": [-1, 2], "dtype": "float64"}]}
    tree = registry.load_model(store, arr_info.ref)
    got = scoring.predict_frame(tree, arr_info.signature, pd.DataFrame({"a": [1, 0], "b": [0, 0]}))
    assert got["prediction"].tolist() == [1, 0] and got.columns.tolist() == ["prediction", "proba_0", "proba_1"]
    with pytest.raises(scoring.InputError, match="reads 2 column.*by position.*has 3"):
        scoring.predict_frame(tree, arr_info.signature, pd.DataFrame({"a": [1], "b": [0], "c": [0]}))


# --------------------------------------------------------------------------- the job


def _edges(store: Store, dst_id: int) -> set[tuple[str, str, str]]:
    with store.session() as s:
        rows_ = s.execute(select(m.LineageEdge.src_type, m.LineageEdge.src_id, m.LineageEdge.relation)
                          .where(m.LineageEdge.dst_type == "dataset_version",
                                 m.LineageEdge.dst_id == str(dst_id))).all()
    return {tuple(r) for r in rows_}


def test_score_job_stores_predictions_as_a_version_linked_to_model_and_input(garden: dict[str, Any]) -> None:
    store, info = garden["store"], garden["info"]
    outcome = run_job(store, scoring.score_spec("flowers@champion", dataset="garden@v1"))
    assert outcome.ok, outcome.error
    r = outcome.result
    assert r["model"] == {"ref": info.ref, "model_version_id": info.id}
    assert r["input"]["ref"] == "garden@v1" and r["n_rows"] == 150
    assert r["output"]["name"] == "flowers-predictions" and r["output"]["created"] is True
    assert r["columns"] == ["prediction", "proba_setosa", "proba_versicolor", "proba_virginica"]
    out = load_frame(store, r["output"]["dataset_version_id"])
    source = garden_frame()
    assert list(out.columns) == [*source.columns, *r["columns"]]  # the input's columns are kept
    assert out["plant_id"].tolist() == source["plant_id"].tolist()  # row order kept
    assert out["prediction"].tolist() == list(garden["model"].predict(source[FEATURES]))
    np.testing.assert_allclose(out[r["columns"][1:]].to_numpy(), garden["model"].predict_proba(source[FEATURES]))
    out_id = r["output"]["dataset_version_id"]
    assert _edges(store, out_id) == {("model_version", str(info.id), "scored"),
                                     ("dataset_version", str(r["input"]["dataset_version_id"]), "scored_into")}
    events = [e for e in registry.timeline(store, "flowers") if e["action"] == "batch_score"]
    assert events and events[0]["details"]["output_dataset_version_id"] == out_id
    assert events[0]["version"] == info.version and events[0]["from_value"] == "garden@v1"
    assert events[0]["to_value"] == r["output"]["ref"]  # the predictions by name, not an internal id
    with store.session() as s:
        job = s.get(m.Job, outcome.job_id)
        assert job is not None and job.kind == "score" and "warning: Ignored column(s)" in (job.log or "")

    # scoring the same data again: the same content is the same version; the lineage is not duplicated
    again = run_job(store, scoring.score_spec("flowers@v1", dataset=r["input"]["dataset_version_id"]))
    assert again.ok and again.result["output"]["ref"] == r["output"]["ref"]
    assert again.result["output"]["created"] is False
    with store.session() as s:
        n = s.scalar(select(func.count()).select_from(m.LineageEdge).where(m.LineageEdge.dst_id == str(out_id),
                                                                            m.LineageEdge.relation == "scored"))
    assert n == 1
    assert len([e for e in registry.timeline(store, "flowers") if e["action"] == "batch_score"]) == 2


def test_score_job_refuses_bad_input_and_writes_nothing(garden: dict[str, Any], tmp_path: Path) -> None:
    store = garden["store"]
    bad = garden_frame().drop(columns=["region"])
    bad.loc[120, "sepal length (cm)"] = None
    bad = bad.astype({"petal length (cm)": object})
    bad.loc[130, "petal length (cm)"] = "long"
    path = tmp_path / "batch.csv"
    bad.to_csv(path, index=False)
    before = {d.name for d in list_datasets(store)}
    with store.session() as s:
        edges_before = s.scalar(select(func.count()).select_from(m.LineageEdge))
    outcome = run_job(store, scoring.score_spec("flowers@champion", path=path, output_name="never"))
    assert outcome.status == "failed"
    assert "Missing column(s) the model needs: 'region'" in (outcome.error or "")
    assert "Column 'petal length (cm)' should hold numbers (float64), but row 131 holds 'long'" in (outcome.error or "")
    after = {d.name for d in list_datasets(store)}
    assert after == before  # not even the input file was stored
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(m.LineageEdge)) == edges_before


def test_score_job_imports_a_dropped_file_first(garden: dict[str, Any], tmp_path: Path) -> None:
    store = garden["store"]
    path = tmp_path / "april.csv"
    new = garden_frame().sample(40, random_state=1)[FEATURES]
    new.loc[new.index[:3], "region"] = "west"
    new.to_csv(path, index=False)
    outcome = run_job(store, scoring.score_spec("flowers@champion", path=path, output_name="april-scored"))
    assert outcome.ok, outcome.error
    r = outcome.result
    assert r["input"]["ref"] == "april@v1" and r["input"]["imported"] is True
    assert r["output"]["ref"] == "april-scored@v1" and r["n_rows"] == 40
    (w,) = r["warnings"]
    assert w["kind"] == "unseen_categories" and w["column"] == "region" and w["values"] == ["west"] and w["rows"] == 3
    assert ("dataset_version", str(r["input"]["dataset_version_id"]), "scored_into") in \
        _edges(store, r["output"]["dataset_version_id"])
    strict = run_job(store, scoring.score_spec("flowers@champion", path=path, output_name="strict", strict=True))
    assert strict.status == "failed" and "'west'" in (strict.error or "")


# --------------------------------------------------------------------------- the command


def test_cli_predict_scores_a_file_and_writes_the_output(garden: dict[str, Any], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = str(garden["root"])
    data = tmp_path / "may.csv"
    garden_frame().head(30).to_csv(data, index=False)
    out = tmp_path / "may-scored.parquet"
    code, text, err = cli(capsys, "predict", "flowers@champion", str(data), "-o", str(out), "--store", root, "--json")
    assert code == 0, err
    doc = json.loads(text)
    assert doc["status"] == "succeeded" and doc["output_path"] == str(out)
    written = pd.read_parquet(out)
    assert len(written) == 30 and written["prediction"].tolist() == \
        list(garden["model"].predict(garden_frame().head(30)[FEATURES]))
    assert doc["result"]["output"]["ref"] == "flowers-predictions@v2"
    assert not list(tmp_path.glob(".may-scored*"))  # no temp file left

    code, text, err = cli(capsys, "predict", "flowers@v1", "garden@v1", "-o", str(tmp_path / "all.csv"),
                          "--name", "garden-scored", "--store", root)
    assert code == 0, err
    assert "Scored 150 rows of garden@v1 with flowers@v1: predictions in garden-scored@v1." in text
    assert len(pd.read_csv(tmp_path / "all.csv")) == 150

    code, _, err = cli(capsys, "predict", "flowers@champion", str(data), "-o", str(tmp_path / "x.txt"), "--store", root)
    assert code == 2 and ".csv or .parquet" in err
    code, _, err = cli(capsys, "predict", "flowers@champion", "nowhere.csv", "--store", root)
    assert code == 2 and "There is no file nowhere.csv" in err
    bad = tmp_path / "bad.csv"
    garden_frame().drop(columns=["measured"]).head(5).to_csv(bad, index=False)
    code, _, err = cli(capsys, "predict", "flowers@champion", str(bad), "-o", str(tmp_path / "bad-out.csv"),
                       "--store", root)
    assert code == 1 and "Missing column(s) the model needs: 'measured'" in err
    assert not (tmp_path / "bad-out.csv").exists()


# --------------------------------------------------------------------------- a tampered model file


class _Planted:
    """What an attacker writes over a model file: unpickling it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


def test_a_replaced_model_file_is_refused_by_predict_and_serve_and_never_unpickled(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pickle

    from modelyard.core import bundles
    from modelyard.core.common.errors import ModelyardError

    store, info = make_garden_store(tmp_path / "store")
    root = str(store.root)
    marker = tmp_path / "pwned"
    crafted = pickle.dumps(_Planted(marker))
    pickle.loads(crafted)  # the payload works when unpickled...
    assert marker.exists()
    marker.unlink()
    try:
        assert info.model_sha256 is not None
        store.artifacts.path(info.model_sha256).write_bytes(crafted)  # ...and replaces the stored model
        data = tmp_path / "may.csv"
        garden_frame().head(5).to_csv(data, index=False)
        code, _, err = cli(capsys, "predict", "flowers@champion", str(data), "-o", str(tmp_path / "out.csv"),
                           "--store", root)
        assert code == 1 and "Traceback" not in err
        assert "flowers@v1" in err and info.model_sha256[:12] in err and "modelyard store verify" in err
        assert not marker.exists() and not (tmp_path / "out.csv").exists()
        code, _, err = cli(capsys, "serve", "flowers@champion", "--port", "0", "--store", root)
        assert code == 1 and "Traceback" not in err and "does not match" in err and "modelyard store verify" in err
        assert not marker.exists()
        with pytest.raises(ModelyardError, match="does not match"):
            registry.load_model(store, "flowers@champion")
        with pytest.raises(ModelyardError, match="does not match"):
            bundles.export_bundle(store, "flowers@champion", tmp_path / "out.mybundle")
        assert not marker.exists() and not (tmp_path / "out.mybundle").exists()
    finally:
        store.close()
