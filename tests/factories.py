"""Shared builders for the tests: frames, trained and registered models, bundles, drops.

One module, so test files never import from each other."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from modelyard.core.bundles import format as bformat
from modelyard.core.bundles.signing import sign_manifest
from modelyard.core.datasets import service
from modelyard.core.datasets.service import import_frame, sample_frame
from modelyard.core.experiments.training.spec import TrainSpec, train_spec_job
from modelyard.core.jobs.runner import JobOutcome, JobSpec, run_job
from modelyard.core.monitoring import drift, retraining
from modelyard.core.monitoring.drift import check as dc
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import func, select

# ---- churn (from core/monitoring/test_retraining.py)

def churn_frame(n: int = 600, seed: int = 0, *, shift: float = 0.0, flipped: bool = False,
                plans: tuple[float, float, float] = (0.6, 0.3, 0.1)) -> pd.DataFrame:
    """Customers: age, plan, visits and whether they churned. ``shift`` moves the ages, ``plans`` the
    share of each plan; ``flipped`` turns the relation around (the young churn instead of the old):
    concept drift."""
    rng = np.random.default_rng(seed)
    age = (rng.normal(40 + shift, 10, n)).round(1)
    plan = rng.choice(["basic", "pro", "team"], n, p=list(plans))
    visits = rng.integers(0, 6, n)
    noise = rng.normal(0, 3, n)
    cut = 40 + shift
    churned = np.where((age + noise < cut) if flipped else (age + noise > cut), "yes", "no")
    return pd.DataFrame({"age": age, "plan": plan, "visits": visits, "churned": churned})


def train_churn_model(store: Store, frame: pd.DataFrame | None = None, *, name: str = "churn",
                champion: bool = True) -> registry.ModelVersionInfo:
    """Import ``frame``, train it with the real training job (in this process: quicker), register it,
    and make it the champion."""
    frame = churn_frame() if frame is None else frame
    service.import_frame(store, frame, name, target="churned")
    spec = TrainSpec(dataset=name, model="logistic_regression", split={"test": 0.25, "seed": 0},
                     experiment=name, curves=False)
    outcome = run_job(store, JobSpec(func="modelyard.core.experiments.training.train:train", title="train",
                                     params={"spec": spec.to_json()}))
    assert outcome.status == "succeeded", outcome.error
    info = registry.register(store, outcome.result["run_id"], name)
    if champion:
        info = registry.set_alias(store, info.ref, "champion", comment="first model")
    return info


def write_batch(folder: Path, frame: pd.DataFrame, name: str = "batch.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def check_file(store: Store, path: Path, ref: str = "churn@champion") -> dict[str, Any]:
    """The real drift check job on a batch file; returns its result (``check_id``...)."""
    outcome = run_job(store, drift.check_spec(ref, batch_path=path))
    assert outcome.status == "succeeded", outcome.error
    return outcome.result


def retrain(store: Store, check_id: int, **params: Any) -> Any:
    """The retraining job in this process (the CLI runs it in a child, like training)."""
    spec = retraining.retrain_spec(check_id, process=False, **params)
    return run_job(store, spec)


def drifted_batch(n: int = 300, seed: int = 1) -> pd.DataFrame:
    return churn_frame(n, seed, shift=12.0, flipped=True, plans=(0.2, 0.3, 0.5))


# ---- drift (from core/monitoring/test_drift.py)

CATEGORIES = {"c0": (["a", "b", "c"], [0.5, 0.3, 0.2]),
              "c1": (["north", "south", "east", "west", "centre"], [0.3, 0.25, 0.2, 0.15, 0.1]),
              "c2": (["x", "y"], [0.7, 0.3]),
              "c3": ([f"k{i}" for i in range(8)], None),
              "c4": ([f"shop{i:02d}" for i in range(40)], None)}


CATEGORICAL = [*CATEGORIES, "label"]


SHIFTS = (None, "mean", "variance", "category", "drop", "label", "joint")


def make_frame(n: int, seed: int, shift: str | None = None) -> pd.DataFrame:
    """15 numeric and 5 categorical features and a binary target ``label``; ``shift`` moves one
    thing (see :func:`shift_frame`)."""
    rng = np.random.default_rng(seed)
    d: dict[str, Any] = {}
    d["n0"] = rng.normal(0, 1, n)
    d["n1"] = rng.normal(50, 10, n)
    d["n2"] = rng.lognormal(1, 0.5, n)
    d["n3"] = rng.uniform(0, 100, n)
    d["n4"] = rng.poisson(3, n).astype(float)
    d["n5"] = rng.exponential(2, n)
    d["n6"] = rng.normal(10, 2, n)
    for i in range(7, 12):
        d[f"n{i}"] = rng.normal(i, 1 + i / 10, n)
    z1, z2 = rng.normal(size=n), rng.normal(size=n)
    d["n12"] = z1
    d["n13"] = 0.8 * z1 + 0.6 * z2
    d["n14"] = (rng.random(n) < 0.4).astype(float)
    for c, (cats, p) in CATEGORIES.items():
        d[c] = rng.choice(cats, n, p=p)
    d["label"] = _labels(d["n0"], d["c0"], 0.0, rng)
    return shift_frame(pd.DataFrame(d), shift, seed)


def _labels(n0: np.ndarray, c0: np.ndarray, offset: float, rng: np.random.Generator) -> np.ndarray:
    logit = 1.2 * np.asarray(n0) + (np.asarray(c0) == "a") * 0.8 - 1.3 + offset
    return np.where(rng.random(len(logit)) < 1 / (1 + np.exp(-logit)), "yes", "no")


def shift_frame(df: pd.DataFrame, shift: str | None, seed: int = 0) -> pd.DataFrame:
    """``df`` (from :func:`make_frame`) with one known shift: ``mean`` (n1 by half a standard
    deviation), ``variance`` (n6's spread x1.6), ``category`` (a new category on 15 % of c1),
    ``drop`` (no n3), ``label`` (the target's prior, features unchanged), ``joint`` (the
    correlation of n12 and n13 flips from +0.8 to -0.8, both marginals unchanged)."""
    rng = np.random.default_rng(seed + 10_000)
    if shift is None:
        return df
    if shift == "mean":
        return df.assign(n1=df["n1"] + 5)
    if shift == "variance":
        return df.assign(n6=10 + (df["n6"] - 10) * 1.6)
    if shift == "category":
        return df.assign(c1=np.where(rng.random(len(df)) < 0.15, "atlantis", df["c1"]))
    if shift == "drop":
        return df.drop(columns=["n3"])
    if shift == "label":
        return df.assign(label=_labels(df["n0"], df["c0"], 1.4, rng))
    if shift == "joint":
        z2 = (df["n13"] - 0.8 * df["n12"]) / 0.6
        return df.assign(n13=-0.8 * df["n12"] + 0.6 * z2)
    raise ValueError(shift)


EXPECTED: dict[str | None, dict[str, Any]] = {
    None: {"drifted": [], "schema": [], "target": False, "multivariate": False, "verdict": "ok"},
    "mean": {"drifted": ["n1"], "schema": [], "target": False, "verdict": "warning"},
    "variance": {"drifted": ["n6"], "schema": [], "target": False, "verdict": "warning"},
    "category": {"drifted": ["c1"], "schema": [("unseen_categories", "c1")], "target": False, "verdict": "warning"},
    "drop": {"drifted": [], "schema": [("missing_column", "n3")], "target": False, "multivariate": False,
             "verdict": "drift"},
    "label": {"drifted": [], "schema": [], "target": True, "multivariate": False, "verdict": "warning"},
    "joint": {"drifted": [], "schema": [], "target": False, "multivariate": True, "verdict": "warning"},
}


def assert_scenario(result: dc.CheckResult, shift: str | None, *, multivariate: bool = True) -> None:
    exp = EXPECTED[shift]
    assert result.drifted == exp["drifted"], [(f["name"], f["reason"]) for f in result.features if f["drift"]]
    assert [(p["kind"], p["column"]) for p in result.schema] == exp["schema"], result.schema
    assert result.target is not None and result.target["drift"] is exp["target"], result.target
    if multivariate and "multivariate" in exp:
        assert result.multivariate is not None and result.multivariate["drift"] is exp["multivariate"], \
            result.multivariate
    if multivariate:
        assert result.verdict == exp["verdict"], result.reasons
    expected_checked = 19 if shift == "drop" else 20
    assert result.n_features == expected_checked


def train_drift_model(store: Store, frame: pd.DataFrame, name: str) -> registry.ModelVersionInfo:
    import_frame(store, frame, name, target="label")
    spec = TrainSpec(dataset=name, model="logistic_regression", split={"test": 0.25, "seed": 0}, curves=False)
    outcome = run_job(store, JobSpec(func="modelyard.core.experiments.training.train:train", title="train",
                                     params={"spec": spec.to_json()}))
    assert outcome.status == "succeeded", outcome.error
    return registry.register(store, outcome.result["run_id"], name)


# ---- bundles (from core/bundles/test_bundles.py)

def iris_table() -> pd.DataFrame:
    """Iris with a category, a date, a flag and a few gaps, like a real table."""
    df, _ = sample_frame("iris")
    rng = np.random.default_rng(1)
    n = len(df)
    df["region"] = rng.choice(["north", "south", "east"], n)
    df["measured"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    df["greenhouse"] = rng.random(n) < 0.5
    df.loc[[3, 50], "sepal width (cm)"] = np.nan
    df.loc[[7], "region"] = None
    return df


def read_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def write_zip(path: Path, items: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in items:
            zf.writestr(name, data)
    return path


def remanifest(items: dict[str, bytes], edit: Callable[[dict[str, Any]], None] | None = None,
               key: Any = None) -> dict[str, bytes]:
    """Make the manifest agree with the members again (what a careful forger does)."""
    items = dict(items)
    man = json.loads(items["manifest.json"])
    man["files"] = {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in sorted(items.items())
                    if n not in bformat.CONTROL_MEMBERS and not n.endswith("/")}
    if edit is not None:
        edit(man)
    raw = bformat.manifest_bytes(man)
    items["manifest.json"] = raw
    items["manifest.sha256"] = f"{hashlib.sha256(raw).hexdigest()}  manifest.json\n".encode()
    items.pop("manifest.sig", None)
    if key is not None:
        items["manifest.sig"] = sign_manifest(raw, key)
    return items


# ---- datasets (from core/datasets/test_datasets_bad_input.py)

def assert_store_unchanged(store: Store) -> None:
    with store.session() as s:
        for model in (m.Dataset, m.DatasetVersion, m.Artifact, m.AuditEvent):
            assert (s.scalar(select(func.count()).select_from(model)) or 0) == 0, model.__name__
    assert [p for p in store.artifacts.root.rglob("*") if p.is_file()] == []
    assert [p for p in store.artifacts.tmp.rglob("*") if p.is_file()] == []


def import_fails(store: Store, path: Path, **options: Any) -> JobOutcome:
    outcome = run_job(store, service.import_spec(path, service.ImportOptions(**options)))
    assert outcome.status == "failed", outcome
    assert outcome.error and "Unexpected error" not in outcome.error, outcome.error
    assert outcome.hint, "every bad input says what to do"
    return outcome


# ---- scoring (from core/serving/test_scoring.py)

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)", "region", "measured",
            "greenhouse"]


def garden_frame() -> pd.DataFrame:
    """Iris with a category, a date, a yes/no column, an id and gaps: what a real table has."""
    df, _ = sample_frame("iris")
    rng = np.random.default_rng(0)
    n = len(df)
    df["region"] = rng.choice(["north", "south", "east"], n)
    df["measured"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24, n), unit="h")
    df["greenhouse"] = rng.random(n) < 0.5
    df["plant_id"] = np.arange(1000, 1000 + n)
    df.loc[[3, 50, 100], "sepal width (cm)"] = np.nan
    df.loc[[7, 60], "region"] = None
    return df


def train_registered(store: Store, name: str, model: str = "logistic_regression",
                     params: dict[str, Any] | None = None) -> registry.ModelVersionInfo:
    """Train ``model`` on garden@v1 (in this process, for speed) and register it as ``name``."""
    job = train_spec_job(TrainSpec(dataset="garden@v1", model=model, params=params or {}, curves=False,
                                   source="api"))
    outcome = run_job(store, JobSpec(job.func, job.title, job.params, process=False, kind=job.kind))
    assert outcome.ok, outcome.error
    return registry.register(store, outcome.result["run_id"], name)


def make_garden_store(root: Path) -> tuple[Store, registry.ModelVersionInfo]:
    store = Store.open(root)
    import_frame(store, garden_frame(), "garden", target="species")
    info = train_registered(store, "flowers")
    registry.set_alias(store, info.ref, "champion", comment="first")
    return store, info


# ---- ui (from ui/datasets/test_ui_datasets.py)

def drop_files(widget, paths: list[Path], pos=None):
    """Send the drag-enter and drop events a real drag of files produces (Qt is imported here, so
    the core and CLI tests that use this module do not load it)."""
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    point = QPointF(pos or widget.rect().center())
    enter = QDragEnterEvent(point.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted(), "the widget refused the drag"
    drop = QDropEvent(point, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    return drop


def settle(qtbot: Any, window: Any, timeout: int = 10_000) -> None:
    """Until the window's client of the core has answered every call asked of it (reads that
    panels chain on an answer included): what a click's write or a refresh shows has landed."""
    qtbot.waitUntil(lambda: not window.client.busy, timeout=timeout)


def settle_panel(panel: Any, *, only_client: bool = False) -> None:
    """Let a panel's reads and writes off the main thread (and those their answers start) deliver.
    ``only_client``: deliver the client's answers and nothing else (a form loading on a dialog's
    own reader stays in flight)."""
    from PySide6.QtWidgets import QApplication

    while panel.client.busy:
        panel.client.wait()
        if only_client:
            QApplication.sendPostedEvents(panel.client, 0)  # the answers arrive…
            panel.client.deliver_arrived()  # …and are delivered without a turn of the event loop
        else:
            QApplication.processEvents()


# ---- a populated store (the acceptance tests and docs/screenshots/make_screenshots.py)

LONG_DATASET = "penguins-species-from-the-palmer-station-2026"


def penguins_frame(n: int = 344, seed: int = 3) -> pd.DataFrame:
    """Penguins as the Palmer station records them, with a nest-site column of 40 categories (a
    many-category chart) and a few gaps."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], n, p=[0.44, 0.2, 0.36])
    base = {"Adelie": (38.8, 18.3, 190, 3700), "Chinstrap": (48.8, 18.4, 196, 3730), "Gentoo": (47.5, 15.0, 217, 5076)}
    bill_l, bill_d, flip, mass = (np.array([base[s][i] for s in species], dtype=float) for i in range(4))
    df = pd.DataFrame({
        "island": np.where(species == "Gentoo", "Biscoe",
                           np.where(species == "Chinstrap", "Dream", rng.choice(["Torgersen", "Biscoe", "Dream"], n))),
        "nest_site": rng.choice([f"nest-site-{i:02d}" for i in range(40)], n),
        "bill_length_mm": (bill_l + rng.normal(0, 2.5, n)).round(1),
        "bill_depth_mm": (bill_d + rng.normal(0, 1.0, n)).round(1),
        "flipper_length_mm": (flip + rng.normal(0, 6, n)).round(0),
        "body_mass_g": (mass + rng.normal(0, 350, n)).round(0),
        "sex": rng.choice(["male", "female"], n),
        "species": species,
    })
    df.loc[[i for i in (3, 40, 271) if i < n], "bill_length_mm"] = np.nan
    df.loc[[i for i in (8, 9, 10) if i < n], "sex"] = None
    return df


def _train_here(store: Store, spec: TrainSpec) -> dict[str, Any]:
    """The real training job, in this process (quicker than a child); its result."""
    job = train_spec_job(spec)
    outcome = run_job(store, JobSpec(job.func, job.title, job.params, process=False, kind=job.kind))
    assert outcome.ok, outcome.error
    return outcome.result


def build_populated_store(root: Path, work: Path) -> dict[str, Any]:
    """A store as a team has it after a few weeks, built with the real core services in this
    process (~10-20 s): datasets (churn; the penguins under a long name, with a 40-category column;
    diabetes, a regression), training runs (a hyper-parameter search with its trials, runs with
    cross-validation), registered versions (churn v1 champion, v2 challenger, gates, card notes),
    drift checks on the champion (one ok, one drifted) and a scored file (a generated dataset).
    ``work`` holds the files it writes (batches). Returns what it made, by name."""
    store = Store.open(root)
    made: dict[str, Any] = {"store": store}
    import_frame(store, churn_frame(600), "churn", target="churned")
    import_frame(store, penguins_frame(), LONG_DATASET, target="species")
    diabetes, target = sample_frame("diabetes")
    import_frame(store, diabetes, "diabetes", target=target)
    service.create_split(store, f"{LONG_DATASET}@v1", test=0.2, validation=0.1, method="stratified", seed=42)

    first = _train_here(store, TrainSpec(dataset="churn", model="logistic_regression", experiment="churn",
                                         split={"test": 0.25, "seed": 0}, cv=3, curves=False, run_name="baseline"))
    second = _train_here(store, TrainSpec(dataset="churn", model="random_forest", experiment="churn",
                                          params={"n_estimators": 20, "max_depth": 6}, cv=3, curves=False,
                                          split={"test": 0.25, "seed": 0}, run_name="forest",
                                          slice_columns=["plan"]))
    search = _train_here(store, TrainSpec(dataset=LONG_DATASET, model="random_forest", experiment="penguins",
                                          params={"n_estimators": 10},
                                          search={"method": "grid", "space": {"max_depth": [2, 4, 8]}},
                                          split={"test": 0.2, "seed": 0}, curves=False))
    regression = _train_here(store, TrainSpec(dataset="diabetes", model="ridge", experiment="diabetes", cv=3,
                                              split={"test": 0.2, "seed": 0}, curves=False))
    made["runs"] = {"baseline": first["run_id"], "forest": second["run_id"], "search": search["run_id"],
                    "regression": regression["run_id"]}

    v1 = registry.register(store, first["run_id"], "churn", comment="first model")
    registry.set_alias(store, v1.ref, "champion", comment="baseline for the March campaign")
    v2 = registry.register(store, second["run_id"], "churn", comment="more trees")
    registry.set_gates(store, "churn", {"min_metrics": {"accuracy": 0.6}}, comment="team policy")
    registry.set_alias(store, v2.ref, "challenger", comment="shadow it for a week")
    from modelyard.core.registry import cards

    cards.set_card_notes(store, v2.ref, comment="written with the risk team",
                         intended_use="Rank customers by churn risk for the retention team's call list.",
                         notes="Trained on 2023-2025 sign-ups.")
    penguins = registry.register(store, search["run_id"], "penguins", comment="best of the search")
    made["versions"] = {"champion": v1.ref, "challenger": v2.ref, "penguins": penguins.ref}

    ok = check_file(store, write_batch(work, churn_frame(300, seed=5), "churn-batch-ok.csv"))
    drifted = check_file(store, write_batch(work, drifted_batch(), "churn-batch-drifted.csv"))
    made["checks"] = {"ok": ok["check_id"], "drifted": drifted["check_id"]}

    from modelyard.core.serving import scoring

    to_score = write_batch(work, churn_frame(50, seed=9).drop(columns=["churned"]), "churn-to-score.csv")
    outcome = run_job(store, scoring.score_spec(v1.ref, path=to_score))
    assert outcome.ok, outcome.error
    made["pipeline_runs"] = _run_pipelines(store, work)
    return made


POPULATED_PIPELINE = """\
name: churn-weekly
description: Prepare the week's customers, train two candidates, compare them and publish the better one
params:
  week: 2026-W10
  fail_publish: false
  pause: 0
triggers:
  - schedule: "0 6 * * 1"
  - on: new_file
    folder: incoming
    pattern: "*.csv"
    param: week
steps:
  prepare:
    kind: shell
    params: {command: "echo preparing ${params.week}"}
  train-forest:
    kind: shell
    params: {command: "sleep ${params.pause} && echo forest"}
    needs: [prepare]
  train-logistic-regression:
    kind: shell
    params: {command: "echo logistic"}
    needs: [prepare]
  compare:
    kind: shell
    params: {command: "echo compare"}
    needs: [train-forest, train-logistic-regression]
  publish:
    kind: shell
    params: {command: "echo publish && test ${params.fail_publish} = false"}
    needs: [compare]
"""


def _run_pipelines(store: Store, work: Path) -> list[int]:
    """A pipeline file beside the batches, run twice (the second run's last step fails): the
    Pipelines panel's list, graph and history."""
    from modelyard.core.pipelines import loading, runner

    path = work / "churn-weekly.yml"
    path.write_text(POPULATED_PIPELINE, encoding="utf-8")
    pipeline = loading.load_pipeline(path)
    ok = runner.run_pipeline(store, pipeline)
    failed = runner.run_pipeline(store, pipeline, params={"week": "2026-W11", "fail_publish": True})
    assert ok.status == "succeeded" and failed.status == "failed", (ok, failed)
    return [ok.run_id, failed.run_id]


# --------------------------------------------------------------------------- the window


def open_window(qtbot: Any, store: Any, size: tuple[int, int] | None = None, *, ask_to_quit: bool = False) -> Any:
    """The real main window over ``store``, resized to ``size`` and shown (offscreen); closing it
    with jobs running does not ask first unless ``ask_to_quit``."""
    from modelyard.ui.common.settings import open_settings
    from modelyard.ui.main_window import MainWindow

    window = MainWindow(store, open_settings())
    if not ask_to_quit:
        window.settings.setValue("confirm/quit_with_jobs", "false")
    qtbot.addWidget(window)
    if size is not None:
        window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    return window
