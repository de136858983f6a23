"""Drift checks (``modelyard.core.monitoring.drift``): the acceptance scenarios of the issue at 1,000 and
1,000,000 rows, the dataset rule and thresholds, and checks recorded through the job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backends import backend_params, module_store
from factories import (
    CATEGORICAL,
    SHIFTS,
    assert_scenario,
    make_frame,
)
from factories import train_drift_model as train_model
from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.jobs.runner import JobSpec, run_job
from modelyard.core.monitoring.drift import check as dc
from modelyard.core.monitoring.drift import config as dcfg
from modelyard.core.registry import reference as dref
from modelyard.core.registry import versions as registry
from modelyard.core.store import models as m
from sqlalchemy import select

# --------------------------------------------------------------------------- generated data with known shifts

NUMERIC = [f"n{i}" for i in range(15)]


# --------------------------------------------------------------------------- acceptance: 1,000 rows


@pytest.fixture(scope="module")
def ref_1k() -> dc.Reference:
    return dc.prepare_reference(make_frame(1000, 1), target="label", categorical=CATEGORICAL)


@pytest.mark.parametrize("shift", SHIFTS)
def test_known_shifts_at_1000_rows(ref_1k: dc.Reference, shift: str | None) -> None:
    result = dc.check_frames(ref_1k, make_frame(1000, 2, shift))
    assert_scenario(result, shift)
    # small samples: p-value tests (adjusted across the features) with a minimal effect
    row = result.feature("n0")
    assert row["test"] == "ks" and row["p_value"] is not None and row["p_adjusted"] >= row["p_value"]
    assert result.feature("c0")["test"] == "chisquare"
    assert result.feature("n14")["test"] == "chisquare"  # numbers with two values are compared as categories
    if shift == "drop":
        assert result.feature("n3")["status"] == "missing" and result.feature("n3")["drift"] is None
    if shift == "joint":
        assert not result.feature("n12")["drift"] and not result.feature("n13")["drift"]
        assert result.multivariate["auc"] > 0.7


def test_an_effect_size_sits_beside_every_p_value(ref_1k: dc.Reference) -> None:
    result = dc.check_frames(ref_1k, make_frame(1000, 2, "mean"))
    for row in result.features:
        assert row["p_value"] is not None and row["effect"] is not None and row["threshold"] is not None
        assert row["min_effect"] == 0.1 and 0 <= row["score"] <= 1
    n1 = result.feature("n1")
    assert n1["effect_name"] == "wasserstein_norm" and n1["effect"] > 0.3 and n1["p_adjusted"] < 1e-10
    assert "KS" in n1["reason"] and "normed Wasserstein" in n1["reason"]


# --------------------------------------------------------------------------- from a binned profile


@pytest.mark.parametrize("n", [1000, 100_000])
@pytest.mark.parametrize("shift", ["mean", "variance", "category", "label", None])
def test_the_binned_profile_finds_the_same_shifts(n: int, shift: str | None) -> None:
    profile = dref.build_reference(make_frame(n, 1), target="label", categorical=CATEGORICAL)
    profile = json.loads(json.dumps(profile))  # as shipped in a bundle
    result = dc.check_frames(profile, make_frame(n, 2, shift))
    assert_scenario(result, shift, multivariate=False)
    assert result.multivariate is None and "domain classifier needs the reference's rows" in \
        result.skipped["multivariate"]
    assert result.feature("n0")["approximate"] is True and result.reference["source"] == "profile"


def test_profile_distances_agree_with_the_raw_ones() -> None:
    ref, batch = make_frame(50_000, 1), make_frame(50_000, 2, "mean")
    raw = dc.check_frames(ref, batch, target="label", categorical=CATEGORICAL,
                          config={"multivariate": {"enabled": False}})
    binned = dc.check_frames(dref.build_reference(ref, target="label", categorical=CATEGORICAL), batch,
                             config={"multivariate": {"enabled": False}})
    for name in ["n0", "n1", "n2", "n5", "n6"]:
        a, b = raw.feature(name)["stats"], binned.feature(name)["stats"]
        assert b["wasserstein_norm"] == pytest.approx(a["wasserstein_norm"], abs=0.01), name
        assert b["ks_d"] == pytest.approx(a["ks_d"], abs=0.01), name
    for name in ["c0", "c4"]:
        assert binned.feature(name)["stats"]["js"] == pytest.approx(raw.feature(name)["stats"]["js"], abs=1e-9)


# --------------------------------------------------------------------------- the rule, thresholds, tests


def test_the_dataset_rule_and_critical_features(ref_1k: dc.Reference) -> None:
    batch = make_frame(1000, 2, "mean")
    off = {"multivariate": {"enabled": False}}
    assert dc.check_frames(ref_1k, batch, config=off).verdict == "warning"
    result = dc.check_frames(ref_1k, batch, config={**off, "critical": ["n1"]})
    assert result.verdict == "drift" and any("critical feature drift: n1" in r for r in result.reasons)
    assert result.feature("n1")["critical"] is True
    # half the features drifting
    many = make_frame(1000, 2)
    for i in range(10):
        many[f"n{i}"] = many[f"n{i}"] * 1.0 + 3 * many[f"n{i}"].std()
    result = dc.check_frames(ref_1k, many, config=off)
    assert len(result.drifted) == 10 and result.drift_share == 0.5 and result.verdict == "drift"
    assert dc.check_frames(ref_1k, many, config={**off, "rule": {"drift_share": 0.6}}).verdict == "warning"
    # severities
    result = dc.check_frames(ref_1k, make_frame(1000, 2, "label"), config={**off, "severity": {"target": "drift"}})
    assert result.verdict == "drift"
    result = dc.check_frames(ref_1k, make_frame(1000, 2, "drop"),
                             config={**off, "severity": {"missing_column": "ignore"}})
    assert result.verdict == "ok" and result.schema[0]["severity"] == "ignore"


def test_per_feature_tests_and_thresholds(ref_1k: dc.Reference) -> None:
    batch = make_frame(1000, 2, "mean")
    cfg = {"multivariate": {"enabled": False},
           "features": {"n1": {"test": "psi", "threshold": 5.0}, "c0": {"test": "js"}, "n2": {"ignore": True}},
           "numeric_test": "wasserstein"}
    result = dc.check_frames(ref_1k, batch, config=cfg)
    n1 = result.feature("n1")
    assert n1["test"] == "psi" and n1["threshold"] == 5.0 and n1["drift"] is False and "PSI" in n1["reason"]
    assert result.feature("c0")["test"] == "js" and result.feature("n0")["test"] == "wasserstein"
    assert result.feature("n2")["status"] == "ignored" and result.n_features == 19
    assert result.config["features"]["n1"] == {"test": "psi", "threshold": 5.0}  # stored with the result
    strict = dc.check_frames(ref_1k, batch, config={"multivariate": {"enabled": False},
                                                    "thresholds": {"min_effect": 0.5}})
    assert strict.drifted == [] and "too small a shift" in strict.feature("n1")["reason"]


def test_schema_problems_are_named(ref_1k: dc.Reference) -> None:
    batch = make_frame(1000, 2)
    batch["extra"] = 1
    batch["n5"] = batch["n5"].astype(str)
    batch.loc[:399, "n7"] = np.nan
    batch.loc[:9, "n5"] = "n/a"
    result = dc.check_frames(ref_1k, batch, config={"multivariate": {"enabled": False}})
    kinds = {(p["kind"], p["column"]) for p in result.schema}
    assert kinds == {("new_column", "extra"), ("type_change", "n5"), ("missing_values", "n7")}
    by_kind = {p["kind"]: p for p in result.schema}
    assert "was number (float64)" in by_kind["type_change"]["message"]
    assert by_kind["type_change"]["details"]["unparseable"] == 10
    assert "40.0% of the batch" in by_kind["missing_values"]["message"]
    assert by_kind["new_column"]["severity"] == "ignore"
    assert result.feature("n5")["drift"] is False  # the numbers that parse did not move
    assert result.verdict == "warning"


def test_histograms_for_the_views(ref_1k: dc.Reference) -> None:
    result = dc.check_frames(ref_1k, make_frame(1000, 2, "category"), config={"multivariate": {"enabled": False}})
    h = result.feature("n1")["histogram"]
    assert h["kind"] == "numeric" and len(h["edges"]) == 31 and len(h["reference"]) == len(h["batch"]) == 30
    assert sum(h["reference"]) == pytest.approx(1) and sum(h["batch"]) == pytest.approx(1)
    c = result.feature("c1")["histogram"]
    assert c["kind"] == "categorical" and "atlantis" in c["categories"]
    i = c["categories"].index("atlantis")
    assert c["reference"][i] == 0 and c["batch"][i] == pytest.approx(0.15, abs=0.03)
    assert result.feature("c1")["unseen"][0]["category"] == "atlantis"
    json.dumps(result.to_json(), allow_nan=False)  # plain JSON, no NaN


def test_config_validation_names_the_field() -> None:
    cfg = dcfg.validate_config({"thresholds": {"psi": "0.3"}, "critical": "age"})
    assert cfg == {"thresholds": {"psi": 0.3}, "critical": ["age"]}
    for bad, text in [({"thresholds": {"p_value": 2}}, "thresholds.p_value must be between 0 and 1"),
                      ({"numeric_test": "t-test"}, "numeric_test must be one of"),
                      ({"features": {"age": {"test": "magic"}}}, "features.age.test"),
                      ({"rules": {}}, "unknown key(s) 'rules'"),
                      ({"severity": {"target": "panic"}}, "severity.target"),
                      ({"multivariate": {"auc_threshold": 0.2}}, "multivariate.auc_threshold")]:
        with pytest.raises(ModelyardError, match=text.replace("(", r"\(").replace(")", r"\)")):
            dcfg.validate_config(bad)


# --------------------------------------------------------------------------- through the store and the job


@pytest.fixture(scope="module", params=backend_params())
def shop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A store with a trained model (shop@v1), on each backend."""
    root = tmp_path_factory.mktemp("drift")
    with module_store(request, root / "store") as store:
        info = train_model(store, make_frame(2000, 1), "shop")
        yield {"store": store, "info": info, "dir": root}


def test_check_job_records_the_check_with_lineage_and_audit(shop: dict[str, Any]) -> None:
    store, info = shop["store"], shop["info"]
    path = shop["dir"] / "march.csv"
    make_frame(1500, 7, "mean").to_csv(path, index=False)
    outcome = run_job(store, dc.check_spec("shop@latest", batch_path=path))
    assert outcome.status == "succeeded", outcome.error
    res = outcome.result
    assert res["verdict"] == "warning" and res["drifted"] == ["n1"] and res["ref"] == "shop@v1"
    assert res["batch_ref"] == "shop-batches@v1"
    with store.session() as s:
        row = s.get(m.MonitoringCheck, res["check_id"])
        assert row.model_version_id == info.id and row.batch_dataset_version_id == res["batch_dataset_version_id"]
        assert row.reference_dataset_version_id == info.dataset_version_id and row.job_id == outcome.job_id
        assert row.config == dcfg.get_config(store, "shop") and row.verdict == "warning"
        edge = s.scalars(select(m.LineageEdge).where(m.LineageEdge.dst_type == "monitoring_check")).one()
        assert (edge.src_type, edge.src_id, edge.dst_id, edge.relation) == (
            "dataset_version", str(res["batch_dataset_version_id"]), str(res["check_id"]), "checked")
    event = registry.timeline(store, "shop")[0]
    assert event["action"] == "drift_check" and event["version"] == 1 and event["to_value"] == "warning"
    assert event["details"]["check_id"] == res["check_id"]

    full = dc.get_check(store, res["check_id"])
    assert full["verdict"] == "warning" and full["features"][0]["name"] == "n1"  # drifting first
    assert full["reference"]["source"] == "rows" and full["reference"]["part"] == "train"
    assert full["reference"]["n_rows"] == 1500  # the train part of the split, not the test rows
    assert full["batch"]["n_rows"] == 1500 and full["config"]["rule"] == {"drift_share": 0.5}
    # the model's outputs and its performance on the batch (it carries the target)
    pred = full["prediction"]
    assert pred["output"] == "label" and pred["labels"]["test"] in ("chisquare", "js") and pred["scores"] is not None
    perf = full["performance"]
    metrics = {r["metric"]: r for r in perf["metrics"]}
    assert metrics["accuracy"]["decides"] and metrics["accuracy"]["recorded"] == info.metrics["accuracy"]
    assert 0.5 < metrics["accuracy"]["batch"] <= 1 and perf["rows"] == 1500
    assert full["multivariate"]["auc"] < 0.75 and full["multivariate"]["n_batch"] == 1500
    assert dc.model_status(store, "shop") == "warning"


def test_prediction_drift_and_performance_drop_are_reported(shop: dict[str, Any]) -> None:
    store = shop["store"]
    batch = make_frame(1500, 8)
    batch["n0"] = batch["n0"] + 2.0  # the model's main input: its predictions move
    batch["label"] = np.where(np.random.default_rng(3).random(len(batch)) < 0.5, "yes", "no")  # noise labels
    result = dc.run_check(store, "shop", batch, config={"multivariate": {"enabled": False}})
    assert result.prediction["drift"] is True and "labels" in result.prediction["reason"]
    assert result.performance["degraded"] is True and "accuracy" in result.performance["reason"]
    assert any(r.startswith("warning: the model performs worse") for r in result.reasons)
    assert result.drifted == ["n0"]


def test_check_of_a_stored_dataset_version_and_the_timeline(shop: dict[str, Any]) -> None:
    from modelyard.core.datasets.service import import_frame

    store = shop["store"]
    dv = import_frame(store, make_frame(1000, 9, "variance"), "april")["dataset_version_id"]
    outcome = run_job(store, dc.check_spec("shop", batch_dataset_version_id=dv,
                                           config={"critical": ["n6"], "multivariate": {"enabled": False}}))
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result["verdict"] == "drift" and outcome.result["drifted"] == ["n6"]
    checks = dc.list_checks(store, "shop")
    assert checks[0]["id"] == outcome.result["check_id"] and checks[0]["batch_ref"] == "april@v1"
    assert checks[0]["verdict"] == "drift" and checks[0]["drifted"] == ["n6"]
    assert dc.get_check(store, checks[0]["id"])["config"]["critical"] == ["n6"]  # decided with it
    assert dc.model_status(store, "shop") == "drift"
    tl = dc.timeline(store, "shop")
    assert [c["id"] for c in tl["checks"]] == sorted(c["id"] for c in checks)
    last = tl["checks"][-1]
    assert last["verdict"] == "drift" and last["drift"]["n6"] is True and last["scores"]["n6"] > 0.3
    assert set(tl["features"]) >= {"n0", "n6", "c1"} and tl["metric"] == "accuracy"
    with pytest.raises(NotFoundError):
        dc.get_check(store, 10_000)


def test_bad_batches_record_nothing(shop: dict[str, Any]) -> None:
    store = shop["store"]
    with store.session() as s:
        before = len(s.scalars(select(m.MonitoringCheck.id)).all())
    empty = shop["dir"] / "empty.csv"
    empty.write_text(",".join(make_frame(5, 1).columns) + "\n")  # the model's columns, no rows
    outcome = run_job(store, dc.check_spec("shop", batch_path=empty))
    assert outcome.status == "failed" and "no data rows" in (outcome.error or "")
    outcome = run_job(store, JobSpec(func="modelyard.core.monitoring.drift.check:check_drift_job", title="x",
                                     params={"model_ref": "shop"}))
    assert outcome.status == "failed" and "exactly one batch" in (outcome.error or "")
    outcome = run_job(store, dc.check_spec("nope", batch_dataset_version_id=1))
    assert outcome.status == "failed" and "no registered model 'nope'" in (outcome.error or "")
    # a version with neither its training rows nor a stored profile: refused before the file is imported
    with store.write() as s:
        mv = s.get(m.ModelVersion, shop["info"].id)
        s.add(m.ModelVersion(model_id=mv.model_id, version=98, model_sha256=mv.model_sha256, source="bundle",
                             signature=mv.signature, metrics=mv.metrics, card={}))
    try:
        with store.session() as s:
            versions = len(s.scalars(select(m.DatasetVersion.id)).all())
        path = shop["dir"] / "april.csv"
        make_frame(200, 5).to_csv(path, index=False)
        outcome = run_job(store, dc.check_spec("shop@v98", batch_path=path))
        assert outcome.status == "failed" and "shop@v98 has no training reference" in (outcome.error or "")
        with store.session() as s:
            assert len(s.scalars(select(m.DatasetVersion.id)).all()) == versions
    finally:
        with store.write() as s:
            s.execute(m.ModelVersion.__table__.delete().where(m.ModelVersion.version == 98))
    with store.session() as s:
        assert len(s.scalars(select(m.MonitoringCheck.id)).all()) == before


def test_a_cancelled_check_records_nothing(shop: dict[str, Any], tmp_path: Path) -> None:
    import threading

    store = shop["store"]
    with store.session() as s:
        before = len(s.scalars(select(m.MonitoringCheck.id)).all())
    cancel = threading.Event()

    class Rec:
        def progress(self, fraction: float | None, message: str) -> None:
            if message.startswith("Compared"):
                cancel.set()  # cancel once the first feature is done

        def log(self, line: str) -> None:
            pass

    dv = registry.get_version(store, "shop").dataset_version_id
    outcome = run_job(store, dc.check_spec("shop", batch_dataset_version_id=dv), reporter=Rec(), cancel_event=cancel)
    assert outcome.status == "cancelled"
    with store.session() as s:
        assert len(s.scalars(select(m.MonitoringCheck.id)).all()) == before


def test_a_version_with_only_a_profile_is_checked_from_its_bins(shop: dict[str, Any]) -> None:
    store = shop["store"]
    info = shop["info"]
    profile = dref.reference_for_version(store, info.id)
    # a copy of the version as if imported from a bundle: same model, no dataset version, the profile stored
    with store.write() as s:
        sha = store.artifacts.put_bytes(json.dumps(profile).encode(), session=s, media_type="application/json").sha256
        mv = s.get(m.ModelVersion, info.id)
        s.add(m.ModelVersion(model_id=mv.model_id, version=99, model_sha256=mv.model_sha256, source="bundle",
                             signature=mv.signature, metrics=mv.metrics, card={"reference_profile_sha256": sha}))
    try:
        result = dc.run_check(store, "shop@v99", make_frame(1500, 11, "mean"))
    finally:
        with store.write() as s:
            s.execute(m.ModelVersion.__table__.delete().where(m.ModelVersion.version == 99))
    assert result.reference["source"] == "profile" and result.drifted == ["n1"]
    assert result.multivariate is None and "multivariate" in result.skipped
    assert result.prediction is not None and result.prediction["scores"] is None  # labels from the profile
    assert result.performance is not None


def test_model_settings_are_validated_audited_and_keep_the_watch_folder(shop: dict[str, Any]) -> None:
    store = shop["store"]
    with store.write() as s:
        s.scalars(select(m.RegisteredModel).where(m.RegisteredModel.name == "shop")).one().monitoring = {
            "watch_folder": "/data/incoming"}
    with pytest.raises(ModelyardError, match="needs a short comment"):
        dcfg.set_config(store, "shop", {"critical": ["n1"]}, comment="")
    with pytest.raises(ModelyardError, match="rule.drift_share"):
        dcfg.set_config(store, "shop", {"rule": {"drift_share": 3}}, comment="x")
    cfg = dcfg.set_config(store, "shop@champion", {"critical": ["n1"], "thresholds": {"psi": 0.2, "js": 0.15}},
                          comment="n1 matters")
    assert cfg["critical"] == ["n1"] and cfg["thresholds"]["js"] == 0.15 and cfg["thresholds"]["psi"] == 0.2
    stored = dcfg.stored_config(store, "shop")
    assert stored == {"critical": ["n1"], "thresholds": {"js": 0.15}, "watch_folder": "/data/incoming"}
    event = registry.timeline(store, "shop")[0]
    assert event["action"] == "set_monitoring" and event["comment"] == "n1 matters"
    assert json.loads(event["to_value"])["critical"] == ["n1"]
    result = dc.run_check(store, "shop", make_frame(1000, 12, "mean"), config={"multivariate": {"enabled": False}})
    assert result.verdict == "drift" and result.config["thresholds"]["js"] == 0.15
    dcfg.set_config(store, "shop", {}, comment="defaults")
    assert dcfg.stored_config(store, "shop") == {"watch_folder": "/data/incoming"}
