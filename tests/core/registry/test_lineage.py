"""Lineage graphs: a model version's upstream (file, dataset versions, run) and downstream (bundles,
servers, scored data, drift checks, retraining), the column layout, caps, and one real trained model.

The records are written directly (rows and lineage_edges per docs/architecture.md and the
cross-feature contract), so these tests do not depend on the bundle, serving, scoring and drift
features themselves."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from modelyard.core.common.errors import NotFoundError
from modelyard.core.experiments import tracking
from modelyard.core.registry import lineage
from modelyard.core.registry import versions as registry
from modelyard.core.registry.lineage import LineageGraph
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import event, select

T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)


# --------------------------------------------------------------------------- helpers


def make_dataset(store: Store, name: str, paths: list[str | None]) -> list[int]:
    """A dataset whose versions 1..n come from ``paths`` (None: no source file), each the parent of the next."""
    ids: list[int] = []
    with store.write() as s:
        ds = m.Dataset(name=name)
        s.add(ds)
        s.flush()
        for i, path in enumerate(paths, 1):
            v = m.DatasetVersion(dataset_id=ds.id, version=i, parent_id=ids[-1] if ids else None,
                                 content_hash=f"{i:064d}", n_rows=100 + i, n_cols=5, target="churned",
                                 source_path=path, source_size=1000 + i if path else None,
                                 source_mtime=T0 + dt.timedelta(days=i) if path else None,
                                 source_format="csv" if path else None)
            s.add(v)
            s.flush()
            ids.append(v.id)
    return ids


def make_split(store: Store, dv: int) -> int:
    with store.write() as s:
        sp = m.DatasetSplit(dataset_version_id=dv, name="holdout", method="random", seed=0,
                            spec={"test": 0.2, "counts": {"train": 80, "validation": 0, "test": 20}})
        s.add(sp)
        s.flush()
        return sp.id


def make_run(store: Store, dv: int | None, split: int | None = None, *, model: str = "random_forest") -> str:
    """A run that logged a (stand-in) model file, so it can be registered."""
    with tracking.start_run("churn", store=store, dataset_version_id=dv, split_id=split,
                            spec={"model": model}) as run:
        run.log_bytes(b"stand-in for a joblib file", "model/model.joblib", kind="model")
    return run.id


def add_edge(store: Store, src: tuple[str, Any], dst: tuple[str, Any], relation: str, **details: Any) -> None:
    with store.write() as s:
        s.add(m.LineageEdge(src_type=src[0], src_id=str(src[1]), dst_type=dst[0], dst_id=str(dst[1]),
                            relation=relation, details=details or None))


def add_check(store: Store, mv: int, batch: int | None, verdict: str, at: dt.datetime) -> int:
    with store.write() as s:
        c = m.MonitoringCheck(model_version_id=mv, batch_dataset_version_id=batch, verdict=verdict,
                              drift_share=0.5 if verdict == "drift" else 0.0, config={}, created_at=at)
        s.add(c)
        s.flush()
        if batch is not None:
            s.add(m.LineageEdge(src_type="dataset_version", src_id=str(batch), dst_type="monitoring_check",
                                dst_id=str(c.id), relation="checked"))
        return c.id


def labelled_edges(graph: LineageGraph) -> set[tuple[str, str, str]]:
    label = {n.id: n.label for n in graph.nodes}
    return {(label[e.src], e.relation, label[e.dst]) for e in graph.edges}


def column_of(graph: LineageGraph) -> dict[str, int]:
    return {n.label: i for i, col in enumerate(graph.columns()) for n in col}


def assert_arrows_point_right(graph: LineageGraph) -> None:
    index = graph.column_index()
    for e in graph.edges:
        assert index[e.src] < index[e.dst], (e, index[e.src], index[e.dst])
    assert sorted(n.id for col in graph.columns() for n in col) == sorted(n.id for n in graph.nodes)


@pytest.fixture
def world(store: Store) -> dict[str, Any]:
    """churn@v1 trained on iris@v2 (a re-import of iris@v1), exported, imported elsewhere as
    churn-copy@v1, served, used to score customers@v1, checked twice; the second check (drift on
    march@v1) was retrained as churn@v2."""
    iris1, iris2 = make_dataset(store, "iris", ["/data/iris-2023.csv", "/data/iris.csv"])
    split = make_split(store, iris2)
    r1 = make_run(store, iris2, split)
    v1 = registry.register(store, r1, "churn")
    bundle = "b" * 64
    add_edge(store, ("model_version", v1.id), ("bundle", bundle), "exported_as",
             path="/out/churn-v1.mybundle", signed=True, created_at=T0.isoformat())
    with store.write() as s:
        copy = m.RegisteredModel(name="churn-copy")
        s.add(copy)
        s.flush()
        copy_v1 = m.ModelVersion(model_id=copy.id, version=1, source="bundle",
                                 card={"bundle": {"sha256": bundle, "signer": "ana", "imported_from": "x"}})
        s.add(copy_v1)
        s.flush()
        copy_id = copy_v1.id
    add_edge(store, ("bundle", bundle), ("model_version", copy_id), "imported_as", path="/in/churn-v1.mybundle")
    add_edge(store, ("model_version", v1.id), ("server", "127.0.0.1:8765"), "served_by",
             url="http://127.0.0.1:8765", pid=4242, started_at=T0.isoformat())
    (customers,) = make_dataset(store, "customers", ["/data/customers.csv"])
    (scores,) = make_dataset(store, "churn-scores", [None])
    add_edge(store, ("model_version", v1.id), ("dataset_version", scores), "scored", rows=101)
    add_edge(store, ("dataset_version", customers), ("dataset_version", scores), "scored_into")
    (march,) = make_dataset(store, "march", ["/data/march.csv"])
    check_ok = add_check(store, v1.id, customers, "ok", T0 + dt.timedelta(days=10))
    check_drift = add_check(store, v1.id, march, "drift", T0 + dt.timedelta(days=40))
    r2 = make_run(store, march, model="hist_gradient_boosting")
    add_edge(store, ("monitoring_check", check_drift), ("run", r2), "retrained_as")
    v2 = registry.register(store, r2, "churn")
    return {"store": store, "iris": (iris1, iris2), "split": split, "r1": r1, "r2": r2, "v1": v1, "v2": v2,
            "bundle": bundle, "copy": copy_id, "customers": customers, "scores": scores, "march": march,
            "checks": (check_ok, check_drift)}


# --------------------------------------------------------------------------- a version's lineage


def test_version_lineage_follows_every_recorded_link(world: dict[str, Any]) -> None:
    store, w = world["store"], world
    graph = lineage.version_lineage(store, "churn@v1")
    r1, r2 = f"run {w['r1'][:8]} (random_forest)", f"run {w['r2'][:8]} (hist_gradient_boosting)"
    ok, drift = (f"check #{c} {v}" for c, v in zip(w["checks"], ("ok", "drift"), strict=True))
    assert graph.focus == f"model_version:{w['v1'].id}" and graph.node(graph.focus).focus
    roles = {n.label: n.role for n in graph.nodes}
    assert roles == {
        "iris-2023.csv": "upstream", "iris.csv": "upstream", "iris@v1": "upstream", "iris@v2": "upstream",
        r1: "upstream", "churn@v1": "focus", "churn-v1.mybundle": "downstream", "churn-copy@v1": "downstream",
        "server 127.0.0.1:8765": "downstream", "churn-scores@v1": "downstream", ok: "downstream",
        drift: "downstream", r2: "downstream", "churn@v2": "downstream", "customers@v1": "input",
        "march@v1": "input"}
    assert labelled_edges(graph) == {
        ("iris-2023.csv", "imported_as", "iris@v1"), ("iris.csv", "imported_as", "iris@v2"),
        ("iris@v1", "parent_of", "iris@v2"), ("iris@v2", "used_by", r1), (r1, "registered_as", "churn@v1"),
        ("churn@v1", "exported_as", "churn-v1.mybundle"), ("churn-v1.mybundle", "imported_as", "churn-copy@v1"),
        ("churn@v1", "served_by", "server 127.0.0.1:8765"), ("churn@v1", "scored", "churn-scores@v1"),
        ("customers@v1", "scored_into", "churn-scores@v1"), ("churn@v1", "monitored_by", ok),
        ("churn@v1", "monitored_by", drift), ("customers@v1", "checked", ok), ("march@v1", "checked", drift),
        (drift, "retrained_as", r2), ("march@v1", "used_by", r2), (r2, "registered_as", "churn@v2")}
    # iris@v2 -trained-> churn@v1 is recorded too, but says what iris@v2 -> run -> churn@v1 says
    with store.session() as s:
        assert s.scalar(select(m.LineageEdge.id).where(m.LineageEdge.relation == "trained",
                                                       m.LineageEdge.dst_id == str(w["v1"].id))) is not None
    # what each node knows
    file = graph.find("file", f"/data/iris.csv@{(T0 + dt.timedelta(days=2)).isoformat()}")
    assert file is not None and file.details == {"path": "/data/iris.csv", "size": 1002,
                                                 "mtime": (T0 + dt.timedelta(days=2)).isoformat(), "format": "csv"}
    run = graph.find("run", w["r1"])
    assert run is not None and run.details["split"]["name"] == "holdout" and run.details["experiment"] == "churn"
    assert run.details["split"]["counts"]["test"] == 20
    bundle = graph.find("bundle", w["bundle"])
    assert bundle is not None and bundle.details["signed"] is True and bundle.details["sha256"] == w["bundle"]
    server = graph.find("server", "127.0.0.1:8765")
    assert server is not None and server.details["url"] == "http://127.0.0.1:8765"
    scores = graph.find("dataset_version", w["scores"])
    assert scores is not None and scores.details["kind"] == "predictions"
    check = graph.find("monitoring_check", w["checks"][1])
    assert check is not None and check.details["verdict"] == "drift" and check.details["batch"] == "march@v1"
    focus = graph.node(graph.focus)
    assert focus.details["stage"] == "None" and focus.details["ref"] == "churn@v1"
    assert graph.hidden == {}
    # the same graph by alias and by id
    registry.set_alias(store, "churn@v1", "champion", comment="first")
    assert labelled_edges(lineage.version_lineage(store, "churn@champion")) == labelled_edges(graph)
    by_id = lineage.version_lineage(store, w["v1"].id)
    assert by_id.node(by_id.focus).details["aliases"] == ["champion"]


def test_columns_follow_the_arrows_in_the_contract_order(world: dict[str, Any]) -> None:
    graph = lineage.version_lineage(world["store"], "churn@v1")
    assert_arrows_point_right(graph)
    col = column_of(graph)
    r1 = f"run {world['r1'][:8]} (random_forest)"
    assert [n.type for n in graph.columns()[0]] == ["file"]
    assert col["iris-2023.csv"] < col["iris@v1"] < col["iris@v2"] < col[r1] < col["churn@v1"]
    assert col["iris.csv"] == col["iris@v2"] - 1  # a source file sits next to its version
    after = col["churn@v1"] + 1
    assert col["churn-v1.mybundle"] == col["server 127.0.0.1:8765"] == col["churn-scores@v1"] == after
    checks = [n for n in graph.nodes if n.type == "monitoring_check"]
    assert {col[c.label] for c in checks} == {after + 1}
    assert col[f"run {world['r2'][:8]} (hist_gradient_boosting)"] == after + 2 and col["churn@v2"] == after + 3
    assert col["march@v1"] == after  # a check's batch sits just left of the check
    as_json = graph.to_json()
    assert as_json["columns"] == [[n.id for n in c] for c in graph.columns()]
    assert {n["id"]: n["column"] for n in as_json["nodes"]} == graph.column_index()


def test_a_retrained_version_shows_the_check_that_caused_it(world: dict[str, Any]) -> None:
    graph = lineage.version_lineage(world["store"], "churn@v2")
    r2 = f"run {world['r2'][:8]} (hist_gradient_boosting)"
    drift = f"check #{world['checks'][1]} drift"
    assert {(n.label, n.role) for n in graph.nodes} == {
        ("churn@v2", "focus"), (r2, "upstream"), ("march@v1", "upstream"), ("march.csv", "upstream"),
        (drift, "upstream"), ("churn@v1", "upstream")}
    # the version that was checked is shown, not followed (its own lineage is one click away)
    assert labelled_edges(graph) == {
        ("march.csv", "imported_as", "march@v1"), ("march@v1", "used_by", r2), ("march@v1", "checked", drift),
        ("churn@v1", "monitored_by", drift), (drift, "retrained_as", r2), (r2, "registered_as", "churn@v2")}
    assert_arrows_point_right(graph)


def test_an_imported_version_has_its_bundle_upstream(world: dict[str, Any]) -> None:
    graph = lineage.version_lineage(world["store"], "churn-copy@v1")
    assert labelled_edges(graph) == {("churn@v1", "exported_as", "churn-v1.mybundle"),
                                     ("churn-v1.mybundle", "imported_as", "churn-copy@v1")}
    assert [[n.label for n in c] for c in graph.columns()] == [["churn@v1"], ["churn-v1.mybundle"],
                                                               ["churn-copy@v1"]]
    # the import's own details are on its edge; the export's path names the node
    bundle = graph.find("bundle", world["bundle"])
    assert bundle is not None and bundle.details["path"] == "/out/churn-v1.mybundle"


def test_checks_beyond_the_limit_are_counted_newest_shown(store: Store) -> None:
    (dv,) = make_dataset(store, "d", ["/d.csv"])
    v = registry.register(store, make_run(store, dv), "m")
    ids = [add_check(store, v.id, None, "ok", T0 + dt.timedelta(hours=i))
           for i in range(lineage.LIMIT_PER_RELATION + 5)]
    graph = lineage.version_lineage(store, "m@v1")
    shown = {int(n.key) for n in graph.nodes if n.type == "monitoring_check"}
    assert shown == set(ids[5:]) and graph.hidden == {"monitored_by": 5}


def test_dataset_ancestors_are_capped(store: Store) -> None:
    ids = make_dataset(store, "d", [f"/d{i}.csv" for i in range(1, 10)])
    registry.register(store, make_run(store, ids[-1]), "m")
    graph = lineage.version_lineage(store, "m")
    versions = sorted(int(n.label.split("@v")[1]) for n in graph.nodes if n.type == "dataset_version")
    assert versions == [4, 5, 6, 7, 8, 9]  # the training data and MAX_DATASET_ANCESTORS (5) generations
    assert lineage.MAX_DATASET_ANCESTORS == 5 and graph.hidden == {"parent_of": 3}
    assert len([n for n in graph.nodes if n.type == "file"]) == 6
    assert_arrows_point_right(graph)


def test_reading_a_graph_takes_few_queries_however_many_checks(world: dict[str, Any]) -> None:
    store = world["store"]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        lineage.version_lineage(store, "churn@v1")
        few = len(statements)
        for i in range(20):
            add_check(store, world["v1"].id, world["customers"], "warning", T0 + dt.timedelta(days=50 + i))
        statements.clear()
        graph = lineage.version_lineage(store, "churn@v1")
        many = len([s for s in statements if s.lstrip().upper().startswith("SELECT")])
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert len([n for n in graph.nodes if n.type == "monitoring_check"]) == 22
    assert few <= 40 and many <= few  # no query per record


def test_a_version_whose_run_is_gone_keeps_its_data_link(store: Store) -> None:
    (dv,) = make_dataset(store, "d", ["/d.csv"])
    run_id = make_run(store, dv)
    registry.register(store, run_id, "m")
    with store.write() as s:
        s.delete(s.scalars(select(m.Run).where(m.Run.uuid == run_id)).one())
    graph = lineage.version_lineage(store, "m@v1")
    run = graph.find("run", run_id)
    assert run is not None and run.label == f"run {run_id[:8]}" and run.details["missing"] is True
    assert ("d@v1", "trained", "m@v1") in labelled_edges(graph)
    assert_arrows_point_right(graph)


def test_unknown_versions_are_refused(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no registered model 'nope'"):
        lineage.version_lineage(store, "nope@v1")
    with pytest.raises(NotFoundError):
        lineage.version_lineage(store, 999)
    with pytest.raises(NotFoundError):
        lineage.dataset_lineage(store, 999)


# --------------------------------------------------------------------------- a dataset version's lineage


def test_dataset_lineage_shows_files_parents_runs_versions_children_and_checks(world: dict[str, Any]) -> None:
    store, w = world["store"], world
    with store.write() as s:
        s.add(m.DatasetVersion(dataset_id=s.get(m.DatasetVersion, w["iris"][1]).dataset_id, version=3,
                               parent_id=w["iris"][1], content_hash="3" * 64, n_rows=1, n_cols=1))
    for i in range(3):  # search trials are not listed on their own
        with tracking.start_run("churn", store=store, dataset_version_id=w["iris"][1],
                                parent=w["r1"]) as trial:
            trial.log_metric("score", i)
    graph = lineage.dataset_lineage(store, w["iris"][1])
    r1 = f"run {w['r1'][:8]} (random_forest)"
    assert graph.node(graph.focus).label == "iris@v2"
    assert labelled_edges(graph) == {
        ("iris-2023.csv", "imported_as", "iris@v1"), ("iris.csv", "imported_as", "iris@v2"),
        ("iris@v1", "parent_of", "iris@v2"), ("iris@v2", "used_by", r1), (r1, "registered_as", "churn@v1"),
        ("iris@v2", "parent_of", "iris@v3")}
    assert_arrows_point_right(graph)
    # a batch that was checked and scored
    customers = lineage.dataset_lineage(store, w["customers"])
    ok = f"check #{w['checks'][0]} ok"
    assert labelled_edges(customers) == {("customers.csv", "imported_as", "customers@v1"),
                                         ("customers@v1", "scored_into", "churn-scores@v1"),
                                         ("customers@v1", "checked", ok)}


# --------------------------------------------------------------------------- end to end


def test_lineage_of_a_registered_trained_model(store: Store, tmp_path: Path) -> None:
    from modelyard.core.datasets.service import import_spec, sample_frame
    from modelyard.core.experiments.training.spec import TrainSpec, train_spec_job
    from modelyard.core.jobs.runner import JobSpec, run_job

    df, _ = sample_frame("iris")
    csv = tmp_path / "iris.csv"
    df.to_csv(csv, index=False)
    imported = run_job(store, import_spec(csv, {"target": "species"}))
    assert imported.ok, imported.error
    job = train_spec_job(TrainSpec(dataset="iris", model="logistic_regression", curves=False))
    trained = run_job(store, JobSpec(job.func, job.title, job.params, process=False, kind=job.kind))
    assert trained.ok, trained.error
    run_id = trained.result["run_id"]
    registry.register(store, run_id, "iris-clf")
    graph = lineage.version_lineage(store, "iris-clf")
    assert [[n.label for n in col] for col in graph.columns()] == [
        ["iris.csv"], ["iris@v1"], [f"run {run_id[:8]} (logistic_regression)"], ["iris-clf@v1"]]
    assert labelled_edges(graph) == {("iris.csv", "imported_as", "iris@v1"),
                                     ("iris@v1", "used_by", f"run {run_id[:8]} (logistic_regression)"),
                                     (f"run {run_id[:8]} (logistic_regression)", "registered_as", "iris-clf@v1")}
    file = graph.columns()[0][0]
    assert file.details["path"] == str(csv.resolve()) and file.details["size"] == csv.stat().st_size
    run = graph.columns()[2][0]
    assert run.details["status"] == "succeeded" and run.details["split"]["counts"]["test"] > 0
    assert [e.recorded for e in graph.edges if e.relation == "registered_as"] == [True]
