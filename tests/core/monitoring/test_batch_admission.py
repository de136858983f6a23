"""A file that is not a batch of the model's data is refused from its header, before anything is
stored; a batch with half or more of the columns is checked on those; what a check says at a
glance (the summary line, findings without repeats); why a check cannot be retrained from."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from factories import check_file, churn_frame, drifted_batch, write_batch
from factories import train_churn_model as train_model
from modelyard.core.common.errors import ModelyardError
from modelyard.core.jobs.runner import run_job
from modelyard.core.monitoring import drift, retraining, watch
from modelyard.core.monitoring.drift.admit import admit_columns
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import func, select


def counts(store: Store) -> tuple[tuple[int, ...], list[Path]]:
    with store.session() as s:
        rows = tuple(s.scalar(select(func.count()).select_from(model)) or 0
                     for model in (m.Dataset, m.DatasetVersion, m.MonitoringCheck, m.Artifact, m.LineageEdge))
    return rows, sorted(p for p in store.artifacts.root.rglob("*") if p.is_file())


def test_a_file_with_none_of_the_models_columns_is_refused_and_nothing_is_stored(store: Store, tmp_path: Path) -> None:
    train_model(store)
    before = counts(store)
    path = write_batch(tmp_path, pd.DataFrame({"city": ["Oslo", "Lima"] * 20, "sales": range(40)}), "march.csv")
    outcome = run_job(store, drift.check_spec("churn@champion", batch_path=path))
    assert outcome.status == "failed"
    assert outcome.error.startswith("march.csv has none of churn@v1's columns: age, plan, visits — check it is a "
                                    "batch of this model's data")
    assert outcome.error.splitlines()[0].endswith("this model's data.") and "city, sales" in (outcome.hint or "")
    assert counts(store) == before  # no dataset version, no check, no artifact, no lineage
    assert drift.model_status(store, "churn") is None  # the badge stays as it was

    # the window asks before starting a job: the same refusal, from the header
    with pytest.raises(ModelyardError, match="march.csv has none of churn@v1's columns"):
        watch.check_spec_for(store, "churn", path, admit=True)
    # a watch folder's file: the job refuses it, and it is not tried again until it changes
    folder = tmp_path / "drops"
    folder.mkdir()
    watch.set_watch_folder(store, "churn", folder)
    write_batch(folder, pd.DataFrame({"city": ["Oslo"] * 20}), "night.csv")
    later = time.time() + 10  # settled
    [row] = watch.process_pending(store, "churn", now=later)
    assert row["status"] == "failed" and "night.csv has none of churn@v1's columns" in row["error"]
    assert counts(store)[0][:3] == before[0][:3]
    assert watch.pending_files(store, "churn", now=later) == []


def test_fewer_than_half_of_the_columns_is_refused_half_or_more_is_checked_on_those(
        store: Store, tmp_path: Path) -> None:
    train_model(store)
    before = counts(store)
    only_age = write_batch(tmp_path, churn_frame(200, seed=3)[["age"]], "ages.csv")
    outcome = run_job(store, drift.check_spec("churn", batch_path=only_age))
    assert outcome.status == "failed"
    assert outcome.error.startswith("ages.csv has only 1 of churn@v1's 3 columns (age); it lacks plan, visits")
    assert counts(store) == before

    no_visits = write_batch(tmp_path, churn_frame(300, seed=4).drop(columns=["visits"]), "april.csv")
    result = check_file(store, no_visits)
    check = drift.get_check(store, result["check_id"])
    assert [p["column"] for p in check["schema"] if p["kind"] == "missing_column"] == ["visits"]
    assert {f["name"]: f["status"] for f in check["features"]}["visits"] == "missing"
    assert "1 model column missing from the batch (visits)" in check["summary"]
    assert len(check["reasons"]) == len(set(check["reasons"]))


def test_admission_rule_in_words() -> None:
    assert admit_columns("b.csv", "m@v1", ["a", "b", "c", "d"], ["a", "b", "x"]) == ["c", "d"]  # half: checked
    with pytest.raises(ModelyardError, match=r"b.csv has only 1 of m@v1's 4 columns \(a\); it lacks b, c, d"):
        admit_columns("b.csv", "m@v1", ["a", "b", "c", "d"], ["a"])
    many = [f"f{i}" for i in range(12)]
    with pytest.raises(ModelyardError, match=r"none of m@v1's columns: f0, f1, .*f7, … and 4 more — check"):
        admit_columns("b.csv", "m@v1", many, ["x"])


def test_the_summary_line_says_what_moved_and_why_the_verdict(store: Store, tmp_path: Path) -> None:
    train_model(store)
    result = check_file(store, write_batch(tmp_path, drifted_batch(), "march.csv"))
    [summary] = drift.list_checks(store, "churn")
    drifted = summary["drifted"]
    n = summary["n_features"]
    assert summary["summary"].startswith(f"DRIFT: {len(drifted)} of {n} features drifted "
                                         f"({len(drifted) / n:.0%}, the rule is ≥ 50%): {', '.join(drifted)}")
    assert summary["batch_file"] == "march.csv" and summary["batch_date"] and summary["batch_imported"]
    assert len(summary["reasons"]) == len(set(summary["reasons"]))
    calm = check_file(store, write_batch(tmp_path, churn_frame(400, seed=7), "april.csv"))
    text = drift.get_check(store, calm["check_id"])["summary"]
    assert text.startswith(f"{calm['verdict'].upper()}: ") and ("none of the 3 features drifted" in text
                                                                 or "of 3 features drifted" in text)
    line = drift.timeline(store, "churn")
    assert [c["batch_file"] for c in line["checks"]] == ["march.csv", "april.csv"]
    assert line["threshold"] == pytest.approx(0.1) and line["rule"] == pytest.approx(0.5)
    assert result["check_id"] == line["checks"][0]["id"]


def test_why_a_check_cannot_be_retrained_from(store: Store, tmp_path: Path) -> None:
    train_model(store)
    with_target = check_file(store, write_batch(tmp_path, drifted_batch(), "march.csv"))
    assert retraining.retrain_blocker(store, with_target["check_id"]) is None
    no_target = check_file(store, write_batch(tmp_path, drifted_batch(seed=5).drop(columns=["churned"]), "may.csv"))
    why = retraining.retrain_blocker(store, no_target["check_id"])
    assert why is not None and why.startswith("The batch may.csv has no 'churned' column (the target of churn@v1)")
    assert "\n" not in why


def test_the_summary_line_says_why_when_the_share_is_below_the_rule() -> None:
    rule = {"rule": {"drift_share": 0.5}}
    assert drift.summary_line("warning", {"n_features": 6, "drifted": ["age"], "drift_share": 1 / 6}, rule) == \
        "WARNING: 1 of 6 features drifted (17%, the rule is ≥ 50%): age"
    assert drift.summary_line("drift", {"n_features": 6, "drifted": ["age"], "drift_share": 1 / 6},
                              {**rule, "critical": ["age"]}) == \
        "DRIFT: 1 of 6 features drifted (17%, the rule is ≥ 50%): age; critical feature age drifted too"
    assert drift.summary_line("drift", {"n_features": 2, "drifted": [], "drift_share": 0.0,
                                        "prediction": {"drift": True}}, rule) == \
        "DRIFT: none of the 2 features drifted; predictions shifted"
