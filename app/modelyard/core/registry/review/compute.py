"""Computing a version's evidence: the document a reviewer decides on (docs/governance.md, "The
evidence"), stored with :func:`modelyard.core.registry.review.evidence.store_evidence`.

::

    info = compute_evidence(store, "churn@v3", sensitive=["sex", "age_band"])   # -> EvidenceInfo
    run_job(store, evidence_spec("churn@v3"))                                    # the same, as a job

On the held-out rows (the TEST part of the version's split, :mod:`.heldout`): the candidate and
the current champion (when it is another version) are scored on the same rows and the same
bootstrap resamples (:mod:`.stats`: the difference's interval is paired); each sensitive column's
groups get their metrics, gap and ratio (:mod:`.fairness`, fairlearn's ``MetricFrame``); and
:mod:`.explain` adds permutation importance, the near-copy warning, partial dependence of the
top features and a calibration curve. Nothing is refitted.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select

from modelyard.core.common.errors import JobCancelled, ModelyardError
from modelyard.core.registry.refs import CHAMPION, _resolve
from modelyard.core.registry.review.evidence import (
    EVIDENCE_FORMAT,
    EvidenceInfo,
    store_evidence,
)
from modelyard.core.store import Store
from modelyard.core.store import models as m

KIND = "registry.evidence"
N_BOOT = 1000
REPEATS = 5
CONFIDENCE = 0.95
IMPORTANCE_ROWS = 10_000  # permutation importance on at most this many held-out rows (a seeded sample)

Progress = Callable[[float, str], None]


class _Steps:
    """Progress in slices of the whole, and a cancellation point at every report."""

    def __init__(self, progress: Progress | None, cancelled: Callable[[], bool] | None) -> None:
        self.progress, self.cancelled = progress, cancelled
        self.start, self.end, self.message = 0.0, 0.0, ""

    def step(self, start: float, end: float, message: str) -> None:
        self.start, self.end, self.message = start, end, message
        self(0.0)

    def __call__(self, fraction: float) -> None:
        if self.cancelled is not None and self.cancelled():
            raise JobCancelled()
        if self.progress is not None:
            self.progress(self.start + (self.end - self.start) * min(max(fraction, 0.0), 1.0), self.message)


def _clean_sensitive(sensitive: Any) -> list[str]:
    if sensitive is None:
        return []
    if isinstance(sensitive, str):
        sensitive = [sensitive]
    out: list[str] = []
    for c in sensitive:
        if not isinstance(c, str) or not c.strip():
            raise ModelyardError(f"{c!r} is not a column name (the sensitive columns are column names).")
        if c.strip() not in out:
            out.append(c.strip())
    return out


def _versions(store: Store, ref: str) -> dict[str, Any]:
    """The candidate's and the champion's facts, read in one session."""
    from modelyard.core.registry.gates import _split_key

    with store.session() as s:
        model, mv = _resolve(s, ref)
        out: dict[str, Any] = {"ref": f"{model.name}@v{mv.version}", "id": mv.id, "gates": dict(model.gates or {}),
                               "sha": mv.model_sha256, "card": dict(mv.card or {}), "champion": None}
        alias = s.get(m.ModelAlias, (model.id, CHAMPION))
        out["is_champion"] = alias is not None and alias.version_id == mv.id
        if alias is not None and alias.version_id != mv.id:
            champ = s.get(m.ModelVersion, alias.version_id)
            same_split = _split_key(s, champ) == _split_key(s, mv)
            out["champion"] = {"ref": f"{model.name}@v{champ.version}", "id": champ.id, "sha": champ.model_sha256,
                               "card": dict(champ.card or {}), "same_split": same_split,
                               "inputs": [str(c.get("name")) for c in (champ.signature or {}).get("inputs") or []]}
        return out


def _load(store: Store, facts: dict[str, Any]) -> Any:
    from modelyard.core.registry.modelfiles import load_version_model

    return load_version_model(store, ref=facts["ref"], model_sha256=facts["sha"], card=facts["card"])


def _classes(model: Any) -> list[Any]:
    """A classifier's classes in its column order (none for a regressor or no model)."""
    classes = getattr(model, "classes_", None)
    return list(classes) if classes is not None else []


def _proba(model: Any, X: Any) -> Any:
    from modelyard.core.experiments.training.metrics import _scores

    return _scores(model, X)


def compute_evidence(store: Store, ref: str, *, sensitive: Sequence[str] | None = None, n_boot: int = N_BOOT,
                     repeats: int = REPEATS, seed: int = 0, confidence: float = CONFIDENCE,
                     progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> EvidenceInfo:
    """Compute and store the evidence of ``ref`` (see the module docstring). ``sensitive`` None:
    the model's gates' ``sensitive_columns``. ``progress(fraction, message)`` is called often;
    ``cancelled()`` True (or a ``progress`` that raises) stops it with JobCancelled, storing nothing."""
    import numpy as np

    from modelyard.core.registry.review import explain, fairness, stats
    from modelyard.core.registry.review.heldout import load_heldout

    started = time.monotonic()
    if not isinstance(n_boot, int) or n_boot < 10:
        raise ModelyardError(f"The number of bootstrap resamples must be at least 10, not {n_boot!r}.")
    if not isinstance(repeats, int) or repeats < 1:
        raise ModelyardError(f"The number of permutation repeats must be at least 1, not {repeats!r}.")
    if not 0.5 <= float(confidence) < 1:
        raise ModelyardError(f"The confidence must be between 0.5 and 1, not {confidence!r}.")
    steps = _Steps(progress, cancelled)
    steps.step(0.0, 0.05, "reading the held-out rows")
    facts = _versions(store, ref)
    ref = facts["ref"]
    champ = facts["champion"]
    columns = _clean_sensitive(sensitive if sensitive is not None else facts["gates"].get("sensitive_columns"))
    held = load_heldout(store, ref, facts["id"], also=[*columns, *(champ["inputs"] if champ else [])])
    frame, target, task = held.frame, held.target, held.task
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ModelyardError(f"The sensitive {'column' if len(absent) == 1 else 'columns'} {', '.join(absent)} "
                             f"{'is' if len(absent) == 1 else 'are'} not in the rows of {held.dataset_version or ref}.",
                             hint="Name columns of the dataset version the model was trained on (--sensitive COL).")
    notes: list[str] = []
    steps.step(0.05, 0.15, f"predicting {len(frame):,} held-out rows")
    model = _load(store, facts)
    X = frame[held.features]
    pred = np.asarray(model.predict(X))
    champion_model = champion_pred = None
    if champ is not None:
        champion_model = _load(store, champ)
        Xc = frame[[c for c in champ["inputs"] if c in frame.columns] or held.features]
        champion_pred = np.asarray(champion_model.predict(Xc))
        if not champ["same_split"]:
            notes.append(f"The champion {champ['ref']} was trained on another split: some of these rows may have been "
                         "in its training data, which flatters it.")
    elif facts["is_champion"]:
        notes.append(f"{ref} is the champion: there is no other version to compare it with.")
    else:
        notes.append("No champion to compare with.")
    steps(1.0)
    y_raw = frame[target].to_numpy()
    n = len(frame)
    groups = {c: fairness.encode_groups(frame[c], c) for c in columns}
    positive = None
    proba = None
    scorers: dict[str, Callable[[Any], Any]] = {}
    if task == "classification":
        classes = _classes(model)
        if not classes:
            classes = sorted({*map(str, y_raw)})
        labels = list(classes)
        for c in _classes(champion_model):
            if c not in labels:
                labels.append(c)
        import pandas as pd

        index = pd.Index(labels)
        other = len(labels)

        def codes(values: Any) -> Any:
            out = index.get_indexer(pd.Index(values))
            return np.where(out < 0, other, out).astype(np.int64)

        y = codes(y_raw)
        L, k = len(labels) + 1, len(labels)
        binary = len(classes) == 2
        positive = classes[1] if binary else None
        pos = 1 if binary else None
        proba, decision = _proba(model, X)
        score = None
        if binary:
            score = (np.asarray(proba)[:, 1] if proba is not None else
                     np.asarray(decision).reshape(len(X), -1)[:, -1] if decision is not None else None)

        def loss_of(p: Any) -> Any:
            if p is None or (y >= p.shape[1]).any():
                return None
            eps = np.finfo(np.float64).eps
            return -np.log(np.clip(np.asarray(p, dtype=float)[np.arange(n), y], eps, 1))

        loss = loss_of(proba)
        if not binary and (proba is not None or decision is not None):
            notes.append("ROC AUC is left out: the evidence computes it for two classes only.")
        scorers["candidate"] = stats.ClassificationScorer(y, codes(pred), L, k, pos, score=score, loss=loss)
        if champion_model is not None:
            cproba, cdecision = _proba(champion_model, Xc)
            cscore = None
            if binary and len(_classes(champion_model)) == 2:
                cscore = (np.asarray(cproba)[:, 1] if cproba is not None else
                          np.asarray(cdecision).reshape(n, -1)[:, -1] if cdecision is not None else None)
            closs = loss_of(cproba) if _classes(champion_model) == labels[:k] else None
            scorers["champion"] = stats.ClassificationScorer(y, codes(champion_pred), L, k, pos, score=cscore,
                                                             loss=closs)
        for c, (g, names) in groups.items():
            scorers[f"group:{c}"] = stats.ClassificationScorer(y, codes(pred), L, k, pos, groups=g,
                                                               n_groups=len(names))
    else:
        binary = False
        classes = []
        y = np.asarray(frame[target], dtype=float)
        yp = np.asarray(pred, dtype=float)
        scorers["candidate"] = stats.RegressionScorer(y, yp)
        if champion_pred is not None:
            scorers["champion"] = stats.RegressionScorer(y, np.asarray(champion_pred, dtype=float))
        for c, (g, names) in groups.items():
            scorers[f"group:{c}"] = stats.RegressionScorer(y, yp, groups=g, n_groups=len(names))
    steps.step(0.15, 0.55, f"bootstrap: {n_boot:,} resamples of {n:,} rows")
    points, samples = stats.run_bootstrap(scorers, n, n_boot, seed, progress=steps)
    metrics = []
    for key in points["candidate"]:
        if key in stats.BINARY_RATES:
            continue
        entry: dict[str, Any] = {"metric": key, "higher_is_better": stats.HIGHER_IS_BETTER.get(key, True),
                                 "candidate": stats.estimate(points["candidate"][key], samples["candidate"][key],
                                                             confidence),
                                 "champion": None, "difference": None}
        if "champion" in points and key in points["champion"]:
            entry["champion"] = stats.estimate(points["champion"][key], samples["champion"][key], confidence)
            entry["difference"] = stats.estimate(points["candidate"][key] - points["champion"][key],
                                                 samples["candidate"][key] - samples["champion"][key], confidence)
        metrics.append(entry)
    steps.step(0.55, 0.6, "group metrics")
    sections = []
    if task == "classification":  # label codes: the same values, without sorting text labels per call
        fns = fairness.metric_functions(task, list(range(k)), 1 if binary else None)
        truth, guess = y, codes(pred)
    else:
        fns = fairness.metric_functions(task, [], None)
        truth, guess = y, np.asarray(pred, dtype=float)
    for c, (g, names) in groups.items():
        mf = fairness.metric_frame(truth, guess, g, names, fns, compress=task == "classification")
        sections.append(fairness.group_section(c, names, g, mf, samples[f"group:{c}"], confidence))
        steps(1.0)
    steps.step(0.6, 0.9, "permutation importance")
    rows_for = X
    if n > IMPORTANCE_ROWS:
        take = np.sort(np.random.default_rng(seed).choice(n, IMPORTANCE_ROWS, replace=False))
        rows_for = X.iloc[take]
        notes.append(f"Permutation importance and partial dependence use a sample of {IMPORTANCE_ROWS:,} of the "
                     f"{n:,} held-out rows.")
        y_for = y_raw[take] if task == "classification" else y[take]
    else:
        y_for = y_raw if task == "classification" else y
    importance = explain.permutation_importance(model, rows_for, y_for, task, repeats=repeats, seed=seed,
                                                progress=steps)
    categorical = _categorical_inputs(store, facts["id"])
    numeric = [f for f in held.features if f not in categorical]
    pairs = explain.near_copies(frame, numeric)
    importance["correlated"] = pairs
    importance["warning"] = explain.near_copy_warning(pairs)
    steps.step(0.9, 0.97, "partial dependence and calibration")
    top = [f["feature"] for f in importance["features"][: explain.PDP_TOP]]
    pdp = explain.partial_dependence(model, rows_for, top, categorical, task=task, target=target, seed=seed)
    calib = None
    if task == "classification":
        calib = explain.calibration(y_raw, proba, classes, positive)
        if calib is None:
            notes.append("No calibration curve: the model gives no probabilities, or the rows hold one class only.")
    steps.step(0.97, 1.0, "storing the evidence")
    doc: dict[str, Any] = {
        "format": EVIDENCE_FORMAT, "version": ref, "champion": champ["ref"] if champ else None, "task": task,
        "target": target, "positive_label": _json_label(positive),
        "rows": {"n": int(n), "part": "test", "split": held.split_label, "dataset_version": held.dataset_version},
        "confidence": float(confidence), "n_boot": int(n_boot), "seed": int(seed),
        "metrics": metrics, "sensitive": columns, "groups": sections, "importance": importance,
        "partial_dependence": pdp, "calibration": calib, "notes": notes,
        "computed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    doc["seconds"] = round(time.monotonic() - started, 2)
    settings = {"sensitive": columns, "n_boot": int(n_boot), "repeats": int(repeats), "seed": int(seed),
                "confidence": float(confidence)}
    info = store_evidence(store, facts["id"], doc, settings=settings,
                          champion_version_id=champ["id"] if champ else None)
    steps(1.0)
    return info


def _json_label(value: Any) -> Any:
    if value is None:
        return None
    item = getattr(value, "item", None)
    value = item() if callable(item) else value
    return value if isinstance(value, str | int | float | bool) else str(value)


def _categorical_inputs(store: Store, version_id: int) -> list[str]:
    from modelyard.core.registry.reference import CATEGORICAL_STEPS, CATEGORICAL_TYPES

    with store.session() as s:
        signature = s.scalar(select(m.ModelVersion.signature).where(m.ModelVersion.id == version_id)) or {}
    return [str(c.get("name")) for c in signature.get("inputs") or []
            if c.get("step") in CATEGORICAL_STEPS or c.get("type") in CATEGORICAL_TYPES]


# =========================================================================== the job


def evidence_spec(ref: str, *, sensitive: Sequence[str] | None = None, n_boot: int = N_BOOT, repeats: int = REPEATS,
                  seed: int = 0, process: bool | None = None) -> Any:
    """The job (kind ``registry.evidence``, in a child process) that computes ``ref``'s evidence."""
    from modelyard.core.jobs.runner import JobSpec

    params: dict[str, Any] = {"ref": ref, "n_boot": int(n_boot), "repeats": int(repeats), "seed": int(seed)}
    if sensitive is not None:
        params["sensitive"] = list(sensitive)
    return JobSpec.for_kind(KIND, f"Evidence for {ref}", params, process=process)


def evidence_job(ctx: Any, *, ref: str, sensitive: list[str] | None = None, n_boot: int = N_BOOT,
                 repeats: int = REPEATS, seed: int = 0) -> dict[str, Any]:
    """The job function: computes and stores the evidence; returns what a list shows.

    The models predict on one thread (OpenMP and BLAS limited to 1): the job runs beside the
    window and other jobs, and a parallel prediction on a busy machine waits for its slowest
    thread (a gradient boosting's predictions were 2-3x slower with 2 threads on a loaded 2-core
    machine than with 1)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        info = compute_evidence(ctx.store, ref, sensitive=sensitive, n_boot=n_boot, repeats=repeats, seed=seed,
                                progress=ctx.progress)
    doc = info.payload
    ctx.log(f"Evidence for {info.ref} on {doc['rows']['n']:,} held-out rows in {doc['seconds']:.1f} s.")
    return {"evidence_id": info.id, "ref": info.ref, "champion": info.champion, "sha256": info.sha256,
            "seconds": doc["seconds"], "rows": doc["rows"]["n"]}
