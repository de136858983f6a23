"""Model cards: what they say about a real trained model, the user's notes (audited), the latest
drift status, and the self-contained HTML page (escaped; readable in a browser and in Qt)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backends import backend_params, module_store
from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.experiments import tracking
from modelyard.core.registry import cards
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from modelyard.core.store import models as m

T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module", params=backend_params())
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """iris (with a region column) imported from a CSV file, a random forest trained in this
    process with per-region metrics, registered as iris-clf@v1; on each backend."""
    from modelyard.core.datasets.service import import_spec, sample_frame
    from modelyard.core.experiments.training.spec import TrainSpec, train_spec_job
    from modelyard.core.jobs.runner import JobSpec, run_job

    root = tmp_path_factory.mktemp("cards")
    df, _ = sample_frame("iris")
    df["region"] = np.random.default_rng(0).choice(["north", "south", "east"], len(df))
    csv = root / "iris.csv"
    df.to_csv(csv, index=False)
    with module_store(request, root / "store") as store:
        imported = run_job(store, import_spec(csv, {"target": "species"}))
        assert imported.ok, imported.error
        job = train_spec_job(TrainSpec(dataset="iris", model="random_forest", params={"n_estimators": 10},
                                       slice_columns=["region"], curves=False))
        outcome = run_job(store, JobSpec(job.func, job.title, job.params, process=False, kind=job.kind))
        assert outcome.ok, outcome.error
        info = registry.register(store, outcome.result["run_id"], "iris-clf")
        yield {"store": store, "result": outcome.result, "version": info, "csv": csv}


def make_version(store: Store, name: str = "churn") -> registry.ModelVersionInfo:
    """A registered version of a run that logged a stand-in model file (no training)."""
    with tracking.start_run("churn", store=store, spec={"model": "knn"}) as run:
        run.log_params({"model": "knn", "n_neighbors": 5})
        run.log_metrics({"accuracy": 0.75})
        run.log_bytes(b"stand-in", "model/model.joblib", kind="model")
    return registry.register(store, run.id, name)


# --------------------------------------------------------------------------- the card


def test_card_of_a_trained_model(trained: dict[str, Any]) -> None:
    store, result, info = trained["store"], trained["result"], trained["version"]
    card = cards.model_card(store, "iris-clf@v1")
    assert (card["ref"], card["name"], card["version"], card["stage"], card["aliases"]) == (
        "iris-clf@v1", "iris-clf", 1, "None", [])
    assert card["notes"] == {k: "" for k in cards.NOTES_FIELDS} and card["drift"] is None
    assert card["run"]["run_id"] == result["run_id"] and card["run"]["status"] == "succeeded"
    data = card["data"]
    assert data["ref"] == "iris@v1" and data["n_rows"] == 150 and data["target"] == "species"
    assert data["source_file"] == "iris.csv" and data["task"] == "classification"
    assert data["split"]["id"] == result["split_id"]
    assert sum(data["split"]["counts"].values()) == 150 and data["split"]["counts"]["test"] == result["n_test"]
    assert data["features"] == ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)",
                                "region"]
    assert card["metrics"] == info.metrics and card["metrics"]["accuracy"] == pytest.approx(
        result["metrics"]["accuracy"])
    # per-group metrics and their gap
    (region,) = card["slices"]["columns"]
    assert card["slices"]["metric"] == "accuracy" and region["column"] == "region"
    scores = [g["metrics"]["accuracy"] for g in region["groups"]]
    assert {g["value"] for g in region["groups"]} == {"north", "south", "east"}
    assert sum(g["n"] for g in region["groups"]) == result["n_test"]
    assert region["gap"] == pytest.approx(max(scores) - min(scores))
    assert card["params"]["n_estimators"] == "10" and card["params"]["model"] == "random_forest"
    sig = card["signature"]
    assert [i["name"] for i in sig["inputs"]] == data["features"] and "example" not in sig
    assert sig["target"]["classes"] == ["setosa", "versicolor", "virginica"] and sig["output"]["proba"] is True
    labels = [[n["label"] for n in col] for col in card["lineage"]["columns"]]
    assert labels == [["iris.csv"], ["iris@v1"], [f"run {result['run_id'][:8]} (random_forest)"], ["iris-clf@v1"]]
    repro = card["reproducibility"]
    assert repro["packages"]["scikit-learn"] and repro["python"] and repro["seed"] == 0
    assert repro["data_hash"] == repro["content_hash"] and len(repro["content_hash"]) == 64
    json.dumps(card)  # plain JSON values only


def test_card_html_of_a_trained_model(trained: dict[str, Any]) -> None:
    card = cards.model_card(trained["store"], "iris-clf@v1")
    page = cards.render_html(card)
    for heading in ("Intended use and limitations", "Evidence for a promotion", "Drift", "Data", "Test metrics", "Per-group metrics", "Parameters",
                    "Signature", "Lineage", "Reproducibility"):
        assert f"<h2>{heading}</h2>" in page
    assert "Never checked for drift." in page and "iris@v1" in page and "scikit-learn" in page
    (region,) = card["slices"]["columns"]
    # one bar per group, as wide as its score (accuracy on a 0..1 scale)
    for g in region["groups"]:
        pct = round(g["metrics"]["accuracy"] * 100)
        assert f'<td width="{pct}%" bgcolor=' in page or pct == 0
    gap = f"gap <b>{region['gap']:.4g}</b>"
    assert gap in page


def test_drift_status_is_the_latest_check(store: Store) -> None:
    v = make_version(store)
    other = make_version(store, "other")
    assert cards.model_card(store, "churn@v1")["drift"] is None
    with store.write() as s:
        ds = m.Dataset(name="march")
        s.add(ds)
        s.flush()
        batch = m.DatasetVersion(dataset_id=ds.id, version=1, content_hash="0" * 64, n_rows=1, n_cols=1)
        s.add(batch)
        s.flush()
        for when, verdict, share in ((T0, "ok", 0.0), (T0 + dt.timedelta(days=2), "drift", 0.6),
                                     (T0 + dt.timedelta(days=1), "warning", 0.2)):
            s.add(m.MonitoringCheck(model_version_id=v.id, batch_dataset_version_id=batch.id, verdict=verdict,
                                    drift_share=share, config={}, created_at=when, created_by="ana"))
        s.add(m.MonitoringCheck(model_version_id=other.id, verdict="ok", drift_share=0.0, config={},
                                created_at=T0 + dt.timedelta(days=9)))
    card = cards.model_card(store, "churn@v1")
    assert card["drift"]["verdict"] == "drift" and card["drift"]["drift_share"] == 0.6
    assert card["drift"]["batch"] == "march@v1" and card["drift"]["n_checks"] == 3
    assert card["drift"]["created_at"] == (T0 + dt.timedelta(days=2)).isoformat()
    page = cards.render_html(card)
    assert ">&nbsp;drift&nbsp;<" in page and "60%" in page and "march@v1" in page
    # a version without slices or a reproducibility record says so
    assert card["slices"] is None and card["reproducibility"] is None and card["data"] is None
    assert "No per-group metrics" in page and "No dataset version is recorded" in page


# --------------------------------------------------------------------------- notes


def texts(intended_use: str = "", notes: str = "") -> dict[str, str]:
    """The card's five texts with these two set (the review fields stay empty)."""
    return {k: "" for k in cards.NOTES_FIELDS} | {"intended_use": intended_use, "notes": notes}


def test_card_notes_are_set_partially_and_audited(store: Store) -> None:
    make_version(store)
    info = cards.set_card_notes(store, "churn@v1", intended_use="  Monthly churn scoring.\r\n", comment="first card")
    assert info.card["notes"] == texts("Monthly churn scoring.")
    assert info.card["run_id"] == info.run_id  # the rest of the card is kept
    cards.set_card_notes(store, "churn", notes="Not for business customers.", comment="limits")
    assert cards.model_card(store, "churn@v1")["notes"] == texts("Monthly churn scoring.",
                                                                 "Not for business customers.")
    cards.set_card_notes(store, "churn@v1", notes="Not for business customers.", comment="same again")
    cards.set_card_notes(store, "churn@v1", intended_use="", comment="withdrawn")
    events = [e for e in registry.timeline(store, "churn") if e["action"] == "edit_card"]
    assert [(json.loads(e["from_value"]), json.loads(e["to_value"]), e["comment"], e["version"],
             e["details"]["fields"], e["actor"]) for e in events] == [
        (texts("Monthly churn scoring.", "Not for business customers."), texts("", "Not for business customers."),
         "withdrawn", 1, ["intended_use"], "tester"),
        (texts("Monthly churn scoring."), texts("Monthly churn scoring.", "Not for business customers."), "limits", 1,
         ["notes"], "tester"),
        (texts(), texts("Monthly churn scoring."), "first card", 1, ["intended_use"], "tester")]


def test_card_notes_refuse_bad_input_and_write_nothing(store: Store) -> None:
    make_version(store)
    with pytest.raises(ModelyardError, match="needs a short comment"):
        cards.set_card_notes(store, "churn@v1", intended_use="x", comment=" ")
    with pytest.raises(ModelyardError, match="Nothing to change"):
        cards.set_card_notes(store, "churn@v1", comment="x")
    with pytest.raises(ModelyardError, match="too long"):
        cards.set_card_notes(store, "churn@v1", intended_use="ok", notes="x" * (cards.NOTES_MAX + 1), comment="x")
    with pytest.raises(NotFoundError, match="no version 7"):
        cards.set_card_notes(store, "churn@v7", notes="x", comment="x")
    assert cards.model_card(store, "churn@v1")["notes"] == {k: "" for k in cards.NOTES_FIELDS}
    assert [e["action"] for e in registry.timeline(store, "churn")] == ["register", "create_model"]


# --------------------------------------------------------------------------- HTML


def hostile_card(store: Store) -> dict[str, Any]:
    make_version(store, "churn<b>")
    with pytest.raises(ModelyardError):  # names cannot hold '@', but may hold markup
        make_version(store, "a@b")
    cards.set_card_notes(store, "churn<b>@v1", intended_use="Scores <script>alert('x')</script> & more\n\nline 2",
                         notes='"quoted" <img src=x onerror=alert(1)>', comment="test")
    card = cards.model_card(store, "churn<b>@v1")
    card["slices"] = {"metric": "accuracy", "greater_is_better": True, "columns": [{
        "column": "<i>region</i>", "groups": [
            {"value": "<script>north</script>", "n": 10, "metrics": {"accuracy": 0.5, "f1_macro": 0.4}},
            {"value": "south", "n": 12, "metrics": {"accuracy": 0.9, "f1_macro": 0.8}}],
        "best": {"value": "south", "score": 0.9}, "worst": {"value": "<script>north</script>", "score": 0.5},
        "gap": 0.4}]}
    return card


def parse_tags(page: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    from html.parser import HTMLParser

    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, attrs))

    Collect().feed(page)
    return found


def test_html_is_escaped_and_self_contained(store: Store) -> None:
    page = cards.render_html(hostile_card(store))
    assert "<script" not in page.lower() and "<img" not in page and "<i>region" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "churn&lt;b&gt;@v1" in page
    assert "&lt;script&gt;north&lt;/script&gt;" in page
    # nothing outside the page: no scripts, links or sources; tables balanced
    tags = parse_tags(page)
    assert {t for t, _ in tags} <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "br",
                                    "b", "i", "span", "font", "table", "tr", "th", "td", "code"}
    assert not [a for _, attrs in tags for a, _ in attrs if a in ("src", "href", "action") or a.startswith("on")]
    style = page[page.index("<style>"):page.index("</style>")]
    assert "url(" not in style and "@import" not in style
    assert page.count("<table") == page.count("</table>")
    # bars: a share of the cell as wide as the score (0.5 and 0.9 of the 0..1 scale), worst and best coloured
    assert re.search(r'<td width="50%" bgcolor="#e16f24"', page) and re.search(r'<td width="90%" bgcolor="#2da44e"',
                                                                              page)
    assert "gap <b>0.4</b>" in page


def test_html_reads_as_the_user_wrote_it_in_qt(store: Store, qapp: Any) -> None:
    from PySide6.QtGui import QTextDocument

    doc = QTextDocument()
    doc.setHtml(cards.render_html(hostile_card(store)))
    text = doc.toPlainText()
    assert "Scores <script>alert('x')</script> & more" in text and "line 2" in text
    assert '"quoted" <img src=x onerror=alert(1)>' in text
    assert "Per-group metrics" in text and "<script>north</script>" in text
    assert doc.toPlainText().count("\n") > 40  # tables became rows, not one line


def test_export_html_writes_the_whole_file_or_nothing(store: Store, tmp_path: Path) -> None:
    make_version(store)
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    target = tmp_path / "card.html"
    target.write_text("old")
    written = cards.export_html(store, "churn@v1", target)
    assert written == target.resolve()
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<title>Model card: churn@v1</title>" in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.html"]  # no temp file left
    with pytest.raises(ModelyardError, match="does not exist"):
        cards.export_html(store, "churn@v1", tmp_path / "missing" / "card.html")
    with pytest.raises(ModelyardError, match="is a folder"):
        cards.export_html(store, "churn@v1", tmp_path)
    with pytest.raises(NotFoundError):
        cards.export_html(store, "nope@v1", tmp_path / "nope.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.html"]


def test_an_imported_version_uses_the_facts_its_card_carries(store: Store) -> None:
    slices = {"metric": "rmse", "greater_is_better": False, "columns": [{
        "column": "sex", "groups": [{"value": "f", "n": 3, "metrics": {"rmse": 2.0}},
                                    {"value": "m", "n": 4, "metrics": {"rmse": 4.0}}],
        "best": {"value": "f", "score": 2.0}, "worst": {"value": "m", "score": 4.0}, "gap": 2.0}]}
    with store.write() as s:
        local = m.Dataset(name="local")  # dataset version 1 of this store is not the one it was trained on
        s.add(local)
        s.flush()
        s.add(m.DatasetVersion(dataset_id=local.id, version=1, content_hash="0" * 64, n_rows=1, n_cols=1))
        model = m.RegisteredModel(name="imported")
        s.add(model)
        s.flush()
        s.add(m.ModelVersion(model_id=model.id, version=1, source="bundle", metrics={"rmse": 3.1},
                             card={"run_id": "f" * 32, "dataset_version_id": 1, "split_id": 1,
                                   "data": {"ref": "diabetes@v4", "n_rows": 442, "target": "progression"},
                                   "params": {"alpha": 0.5}, "slices": slices,
                                   "reproducibility": {"python": "3.12.1", "packages": {"scikit-learn": "1.5.0"}},
                                   "bundle": {"sha256": "c" * 64, "signer": "ana", "imported_from": "/in/x.mybundle"},
                                   "notes": {"intended_use": "Dose planning", "notes": ""}}))
    card = cards.model_card(store, "imported@v1")
    assert card["run"] is None and card["params"] == {"alpha": "0.5"} and card["slices"] == slices
    assert card["reproducibility"]["packages"] == {"scikit-learn": "1.5.0"} and card["source"] == "bundle"
    assert card["notes"]["intended_use"] == "Dose planning"
    assert card["data"] == {"ref": "diabetes@v4", "n_rows": 442, "target": "progression"}
    assert [[n["label"] for n in col] for col in card["lineage"]["columns"]] == [["imported@v1"]]
    page = cards.render_html(card)
    # lower is better: bars scale to the largest error
    assert '<td width="50%" bgcolor="#2da44e"' in page and '<td width="100%" bgcolor="#e16f24"' in page
    assert "imported from bundle" in page and "/in/x.mybundle" in page and "signed by ana" in page
