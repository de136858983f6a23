"""Retraining from a drift check: train the checked model's recorded spec on the new data, compare
it with the champion on the same recent rows, and register it as ``challenger``.

::

    from modelyard.core.monitoring import retraining

    job = retraining.retrain_spec(check_id, data="reference+batch", comment="March drift")
    outcome = run_job(store, job)             # a child process, like training
    outcome.result == {"run_id", "ref": "churn@v4", "metrics_new": {..}, "metrics_champion": {..},
                       "n_eval_rows": 412, "champion": "churn@v2", "comparison": "f1_macro 0.81 vs ...", ...}

What the job does (:func:`retrain_job`):

1. Reads the check (``monitoring_checks``): the model version it checked, the batch dataset
   version and the reference dataset version; and that version's recorded training spec (its
   run's ``spec``, else ``card["spec"]``) and preprocessing plan (the run's ``preprocessing.json``).
   A version without a recorded spec (logged from a script, imported from a bundle) cannot be
   retrained: the error says so. The batch must carry the target (the outcomes, once known).
2. The training data: ``data="batch"`` trains on the batch dataset version itself;
   ``data="reference+batch"`` stores a new version of the dataset ``<model>-retraining`` holding
   every row of the reference dataset version followed by the batch's rows (the columns both
   have), with ``lineage_edges`` ``dataset_version -> dataset_version`` (relation
   ``combined_into``, ``details.role`` "reference" or "batch" and ``details.rows`` [start, end)).
3. The split (stored, like any split, method ``time``): the test rows are the most recent rows of
   the BATCH that carry the target -- the newest by the batch's only date/time column when it has
   exactly one, else the last rows of the file -- as many as the recorded spec's test share
   (default 0.2) of them; a validation part (when the recorded split had one) is drawn at random
   from the other rows. Reference rows are never test rows.
4. Trains with the recorded spec (the same model, parameters, seed, cross-validation and search;
   each column keeps the recorded preprocessing step, columns the model did not read are dropped),
   recorded as a run through the tracking API like any training, in the same experiment, tagged
   ``retrained_from_check`` (the check id), ``retrained_from_version`` and ``retrain_data``.
5. Evaluates the new model and the current champion (the ``champion`` alias, else the checked
   version) on exactly the held-out recent rows, with the training's own metric code, and logs the
   comparison on the new run (``retraining/comparison.json``, kind ``comparison``).
6. Registers the run's model as the next version and points ``challenger`` at it, with the
   comparison ("f1_macro 0.81 vs champion churn@v2 0.74 on 412 recent rows of churn-batch@v3") as
   the audit comment; in the same transaction as the alias it records the audit event ``retrain``
   (``details``: check, run, data, both metric sets, rows) and the lineage edge ``monitoring_check ->
   run`` (``retrained_as``). It never moves ``champion``: promotion stays a decision a person makes
   through the registry's gates (a ``beat_champion`` gate reads this ``retrain`` event: the
   challenger must beat the champion it was compared with on these same recent rows).

The comparison's headline metric is the model's ``beat_champion`` gate metric when it has one,
else ``f1_macro`` (classification) or ``rmse`` (regression).

Run it with ``process=True`` (the default of :func:`retrain_spec`): after a cancel or a crash the
runner ends the job's runs (the kind's clean-up, :mod:`modelyard.core.jobs.kinds`), as for training.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.core.jobs.runner import JobContext, JobSpec
from modelyard.core.store import Store, lookup, records
from modelyard.core.store import models as m

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "CHALLENGER",
    "COMPARISON_PATH",
    "DATA_CHOICES",
    "MIN_BATCH_ROWS",
    "retrain_blocker",
    "retrain_job",
    "retrain_spec",
]

DATA_CHOICES = ("batch", "reference+batch")
CHALLENGER = "challenger"
COMPARISON_PATH = "retraining/comparison.json"
COMBINED_SUFFIX = "-retraining"
MIN_BATCH_ROWS = 10  # batch rows with a target needed to retrain and compare
DEFAULT_TEST_SHARE = 0.2
HEADLINE = {"classification": "f1_macro", "regression": "rmse"}
ALSO_SHOWN = {"classification": ("accuracy", "roc_auc"), "regression": ("mae", "r2")}
LOWER_IS_BETTER = frozenset({"rmse", "mae", "mape", "log_loss"})
STEP_OPTIONS = ("step", "impute", "scale", "max_categories", "parts")


# =========================================================================== the job spec


def check_data_choice(data: str) -> str:
    if data not in DATA_CHOICES:
        raise ModelyardError(f"Unknown training data choice {data!r}.",
                             hint="Use 'batch' (the checked batch alone) or 'reference+batch' "
                                  "(the reference rows followed by the batch).")
    return data


def retrain_spec(check_id: int, *, data: str = "batch", comment: str | None = None, source: str = "api",
                 process: bool = True, title: str | None = None) -> JobSpec:
    """The job that retrains from drift check ``check_id`` (see the module docstring); ``title``
    names it in the jobs list (default: by the check's number, as the CLI knows it)."""
    check_data_choice(data)
    try:
        check_id = int(check_id)
    except (TypeError, ValueError):
        raise ModelyardError(f"{check_id!r} is not a drift check id (a whole number).",
                             hint="'modelyard monitor list NAME' lists a model's checks.") from None
    what = "the batch" if data == "batch" else "the reference and the batch"
    return JobSpec.for_kind("monitor.retrain", title or f"Retrain from drift check {check_id} on {what}",
                            {"check_id": check_id, "data": data, "comment": comment, "source": source},
                            process=process)


# =========================================================================== what the check says


@dataclass
class _Origin:
    """The check, the version it checked, its recorded spec and plan, and the champion."""

    check_id: int
    verdict: str
    model_id: int
    model: str
    version_id: int
    version: int
    run_uuid: str | None
    experiment: str | None
    spec: dict[str, Any]
    plan: dict[str, Any] | None
    signature: dict[str, Any]
    batch_dv_id: int
    reference_dv_id: int | None
    champion_id: int
    champion_ref: str
    champion_is_alias: bool
    gate_metric: str | None
    gate_lower: bool = False
    features: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.model}@v{self.version}"


def _read_origin(store: Store, check_id: int) -> _Origin:
    from modelyard.core.registry.versions import CHAMPION

    with store.session() as s:
        check = lookup.drift_check_by_id(s, check_id)
        mv = s.get(m.ModelVersion, check.model_version_id)
        assert mv is not None
        model = s.get(m.RegisteredModel, mv.model_id)
        assert model is not None
        ref = f"{model.name}@v{mv.version}"
        if check.batch_dataset_version_id is None:
            raise ModelyardError(f"Drift check {check_id} of {ref} has no batch stored in this store, so there is "
                                 "no new data to retrain on.",
                                 hint="Check a batch file that carries the target, then retrain from that check.")
        card = dict(mv.card or {})
        spec = card.get("spec")
        run_uuid = card.get("run_id")
        plan = None
        if mv.run_id is not None:
            run = s.get(m.Run, mv.run_id)
            if run is not None:
                spec, run_uuid = run.spec or spec, run.uuid
                sha = s.scalar(select(m.RunArtifact.sha256).where(m.RunArtifact.run_id == run.id,
                                                                  m.RunArtifact.path == "preprocessing.json"))
                plan = store.artifacts.read_json(sha, missing_ok=True)
        if not isinstance(spec, Mapping) or not spec.get("model"):
            how = "imported from a bundle" if mv.source != "run" else "logged by a script, not trained by Modelyard"
            raise ModelyardError(f"{ref} has no recorded training spec (it was {how}), so it cannot be retrained "
                                 f"from drift check {check_id}.",
                                 hint="Train a model on the new data with 'modelyard train' and register it instead.")
        alias = s.get(m.ModelAlias, (model.id, CHAMPION))
        champ = s.get(m.ModelVersion, alias.version_id) if alias is not None else None
        if champ is None:
            champ = mv
        beat = (model.gates or {}).get("beat_champion") or {}
        signature = dict(mv.signature or {})
        features = [str(c["name"]) for c in signature.get("inputs") or []]
        if not features and isinstance(plan, Mapping):
            features = list(plan.get("features") or [])
        return _Origin(
            check_id=check.id, verdict=check.verdict, model_id=model.id, model=model.name, version_id=mv.id,
            version=mv.version, run_uuid=run_uuid, experiment=card.get("experiment"), spec=dict(spec), plan=plan,
            signature=signature, batch_dv_id=check.batch_dataset_version_id,
            reference_dv_id=check.reference_dataset_version_id or mv.dataset_version_id, champion_id=champ.id,
            champion_ref=f"{model.name}@v{champ.version}", champion_is_alias=alias is not None,
            gate_metric=beat.get("metric"), gate_lower=not beat.get("higher_is_better", True), features=features)


# =========================================================================== the data


def _target_of(origin: _Origin) -> tuple[str, str]:
    tgt = origin.signature.get("target") or {}
    target = tgt.get("name") or origin.spec.get("target")
    task = tgt.get("task") or origin.spec.get("task")
    if not target or task not in ("classification", "regression"):
        raise ModelyardError(f"{origin.ref} records no target and task, so it cannot be retrained.",
                             hint="Train a model on the new data with 'modelyard train' instead.")
    return str(target), str(task)


def _recent_order(frame: pd.DataFrame, known: np.ndarray, time_column: str | None) -> np.ndarray:
    """Positions of the rows with a target, oldest first (by the time column, else file order)."""
    import numpy as np
    import pandas as pd

    rows = np.flatnonzero(known)
    if time_column is None:
        return rows
    values = frame[time_column].iloc[rows]
    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        values = pd.to_datetime(values, errors="coerce", format="mixed")
    stamps = values.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
    stamps[pd.isna(values).to_numpy()] = -np.inf  # rows without a time count as the oldest
    return rows[np.argsort(stamps, kind="stable")]


def _time_column(schema: Mapping[str, Any] | None, target: str) -> str | None:
    dates = [c["name"] for c in (schema or {}).get("columns", [])
             if c.get("type") == "datetime" and c["name"] != target]
    return dates[0] if len(dates) == 1 else None


def _check_batch(origin: _Origin, batch: Any, frame: pd.DataFrame, target: str) -> np.ndarray:
    """The batch's rows that carry the target (a clear error when it lacks the target or features)."""
    if target not in frame.columns:
        raise ModelyardError(
            f"The batch {batch.ref} of drift check {origin.check_id} has no column '{target}', the target of "
            f"{origin.ref}: retraining learns from the true outcomes, so the batch must carry them.",
            hint=f"Import the batch again with its '{target}' column once the outcomes are known, check it, "
                 "and retrain from that check.")
    known = frame[target].notna().to_numpy()
    n_known = int(known.sum())
    if n_known == 0:
        raise ModelyardError(
            f"Every row of the batch {batch.ref} has an empty '{target}' (the target of {origin.ref}): there are no "
            "outcomes to learn from yet.",
            hint=f"Fill in '{target}' once the outcomes are known, check the batch again, and retrain from that check.")
    if n_known < MIN_BATCH_ROWS:
        raise ModelyardError(
            f"Only {plural(n_known, 'row')} of the batch {batch.ref} carry the target '{target}': too few to retrain and "
            f"compare (at least {MIN_BATCH_ROWS} are needed).", hint="Retrain from a check of a larger batch.")
    missing = [f for f in origin.features if f not in frame.columns]
    if missing:
        raise ModelyardError(
            f"The batch {batch.ref} lacks column(s) {', '.join(map(repr, missing))} that {origin.ref} reads.",
            hint="Retraining keeps the model's inputs; import a batch with every input column.")
    return known


def retrain_blocker(store: Store, check_id: int) -> str | None:
    """Why drift check ``check_id`` cannot be retrained from (one line), or None when it can: no
    batch stored, no recorded training spec or target, or a batch without the target or an input
    column. Cheap: the batch's schema is read, not its rows (the job still checks the rows)."""
    from modelyard.core.datasets import service

    try:
        origin = _read_origin(store, int(check_id))
        target, _task = _target_of(origin)
        batch = service.get_version(store, origin.batch_dv_id)
    except ModelyardError as exc:
        return exc.message
    columns = {str(c["name"]) for c in (batch.schema or {}).get("columns") or []}
    source = (batch.source_path or "").replace("\\", "/").rsplit("/", 1)[-1] or batch.ref
    if target not in columns:
        return (f"The batch {source} has no '{target}' column (the target of {origin.ref}): retraining learns from "
                "the true outcomes, so check a batch that carries them.")
    missing = [f for f in origin.features if f not in columns]
    if missing:
        return (f"The batch {source} lacks {', '.join(map(repr, missing))}, which {origin.ref} reads: retraining "
                "keeps the model's inputs.")
    return None


def _combined_version(ctx: JobContext, origin: _Origin, batch: Any, batch_frame: pd.DataFrame,
                      target: str) -> tuple[Any, int]:
    """A version of ``<model>-retraining``: the reference's rows, then the batch's; and the offset."""
    import pandas as pd

    from modelyard.core.datasets import service

    store = ctx.store
    if origin.reference_dv_id is None:
        raise ModelyardError(
            f"{origin.ref} has no reference data in this store (it has no dataset version here, e.g. it was "
            "imported from a bundle), so it cannot be retrained on the reference plus the batch.",
            hint="Retrain on the batch alone (--data batch).")
    reference = service.get_version(store, origin.reference_dv_id)
    ref_frame = service.load_frame(store, reference.id)
    columns = [c for c in ref_frame.columns if c in batch_frame.columns]
    missing = [c for c in [*origin.features, target] if c not in columns]
    if missing:
        raise ModelyardError(f"The reference {reference.ref} lacks column(s) {', '.join(map(repr, missing))} of "
                             f"{origin.ref}, so it cannot be combined with the batch.",
                             hint="Retrain on the batch alone (--data batch).")
    n_ref = len(ref_frame)
    frame = pd.concat([ref_frame[columns], batch_frame[columns]], ignore_index=True)
    del ref_frame
    n_total = len(frame)
    name = f"{origin.model}{COMBINED_SUFFIX}"[:200]
    ctx.log(f"Combining {reference.ref} ({n_ref:,} rows) and {batch.ref} ({len(batch_frame):,} rows) into a "
            f"version of '{name}'.")
    parts = ((reference, "reference", [0, n_ref]), (batch, "batch", [n_ref, n_total]))

    def edges(s: Any, dv_id: int, created: bool) -> None:
        for src, role, rows in parts:
            exists = s.scalar(select(m.LineageEdge.id).where(
                m.LineageEdge.src_type == "dataset_version", m.LineageEdge.src_id == str(src.id),
                m.LineageEdge.dst_type == "dataset_version", m.LineageEdge.dst_id == str(dv_id),
                m.LineageEdge.relation == "combined_into").limit(1))
            if exists is None:
                records.link(s, "dataset_version", src.id, "dataset_version", dv_id, "combined_into",
                             {"role": role, "rows": rows, "ref": src.ref, "check_id": origin.check_id})

    result = service.import_frame(store, frame, name, target=target,
                                  source={"format": "retraining", "label": f"{reference.ref} + {batch.ref}"},
                                  on_commit=edges)
    return service.get_version(store, int(result["dataset_version_id"])), n_ref


@dataclass
class _Split:
    id: int
    name: str
    test: np.ndarray  # row positions in the training version
    n_test: int


def _store_split(ctx: JobContext, origin: _Origin, version: Any, batch: Any, assignment: np.ndarray,
                 facts: dict[str, Any], seed: int) -> _Split:
    """Record ``assignment`` as a split of ``version`` (reused when the same one exists)."""
    from modelyard.core.datasets import service, splits

    data = splits.to_bytes(assignment)
    digest = hashlib.sha256(assignment.astype("int8").tobytes()).hexdigest()
    n_test = int((assignment == splits.TEST).sum())
    name = f"recent{n_test}-of-{batch.ref}-{digest[:8]}"
    if len(name) > 100:
        name = f"recent{n_test}-{digest[:16]}"
    spec = {**facts, "n_rows": len(assignment), "assignment_sha": digest}
    with ctx.store.write() as s:
        sp = s.scalar(select(m.DatasetSplit).where(m.DatasetSplit.dataset_version_id == version.id,
                                                   m.DatasetSplit.name == name))
        if sp is None:
            ref = ctx.store.artifacts.put_bytes(data, session=s, media_type=service.SPLIT_MEDIA_TYPE)
            sp = m.DatasetSplit(dataset_version_id=version.id, name=name, method="time", seed=seed, spec=spec,
                                assignment_sha256=ref.sha256)
            s.add(sp)
            s.flush()
            records.audit(s, "dataset_split", sp.id, "create", to_value=f"{version.ref}:{name}",
                          comment=f"Recent rows of {batch.ref} held out to retrain from drift check "
                                  f"{origin.check_id}.", details=spec)
        split_id = sp.id
    import numpy as np

    return _Split(split_id, name, np.flatnonzero(assignment == splits.TEST), n_test)


def _make_split(ctx: JobContext, origin: _Origin, version: Any, batch: Any, batch_frame: pd.DataFrame,
                known: np.ndarray, offset: int, target: str) -> _Split:
    import numpy as np

    from modelyard.core.datasets import splits

    recorded = origin.spec.get("split") or {}
    test_share = recorded.get("test") if isinstance(recorded, Mapping) else None
    val_share = recorded.get("validation") if isinstance(recorded, Mapping) else None
    test_share = float(test_share) if test_share else DEFAULT_TEST_SHARE
    val_share = float(val_share) if val_share else 0.0
    seed = int(origin.spec.get("seed") or 0)
    time_column = _time_column(batch.schema, target)
    order = _recent_order(batch_frame, known, time_column)
    n_test = max(1, round(test_share * len(order)))
    if len(order) - n_test < 1 and offset == 0:
        n_test = len(order) - 1
    test = np.sort(order[len(order) - n_test:]) + offset
    assignment = np.full(version.n_rows, splits.TRAIN, dtype=np.int8)
    assignment[test] = splits.TEST
    n_val = 0
    if val_share > 0:
        full_known = np.ones(version.n_rows, dtype=bool)
        full_known[offset:offset + len(known)] = known
        candidates = np.flatnonzero((assignment == splits.TRAIN) & full_known)
        n_val = round(val_share * len(candidates))
        if 0 < n_val < len(candidates) - 1:
            pick = np.random.default_rng(seed).choice(candidates, size=n_val, replace=False)
            assignment[pick] = splits.VALIDATION
        else:
            n_val = 0
    counts = np.bincount(assignment, minlength=3)
    order_text = f"newest by '{time_column}'" if time_column else "last rows of the file"
    ctx.log(f"Held out the {n_test:,} most recent rows of {batch.ref} with a target ({order_text}) as test rows"
            + (f", and {n_val:,} random other rows for validation." if n_val else "."))
    facts = {"test": test_share, "validation": val_share if n_val else 0.0, "column": time_column,
             "counts": {"train": int(counts[splits.TRAIN]), "validation": int(counts[splits.VALIDATION]),
                        "test": int(counts[splits.TEST])},
             "recent": {"batch_dataset_version_id": batch.id, "batch_ref": batch.ref, "order": order_text,
                        "rows": n_test, "offset": offset, "check_id": origin.check_id}}
    return _store_split(ctx, origin, version, batch, assignment, facts, seed)


def _overrides(origin: _Origin, version: Any, target: str) -> dict[str, Any]:
    """Each column keeps the step the checked version used; columns it did not read are dropped."""
    entries = {e["name"]: e for e in (origin.plan or {}).get("columns", []) if isinstance(e, Mapping)}
    steps = {str(c["name"]): c.get("step") for c in origin.signature.get("inputs") or []}
    out: dict[str, Any] = {}
    for col in version.columns:
        name = col["name"]
        if name == target:
            continue
        if name not in origin.features:
            out[name] = "drop"
            continue
        entry = entries.get(name) or {"step": steps.get(name)}
        change = {k: entry[k] for k in STEP_OPTIONS if entry.get(k) is not None}
        out[name] = change if change.get("step") else "drop"
    return out


# =========================================================================== evaluation


def _model_features(model: Any, fallback: list[str]) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else list(fallback)


def _evaluate(model: Any, frame: pd.DataFrame, y: Any, task: str, fallback: list[str]) -> dict[str, float]:
    from modelyard.core.experiments.training.train import _evaluate as evaluate
    from modelyard.core.experiments.training.train import _quiet

    X = frame[_model_features(model, fallback)].reset_index(drop=True)
    with _quiet():
        return evaluate(model, X, y, task, getattr(model, "classes_", None))


def _headline(origin: _Origin, task: str, new: Mapping[str, float], old: Mapping[str, float]) -> str:
    for key in (origin.gate_metric, HEADLINE[task], *ALSO_SHOWN[task]):
        if key and key in new and key in old:
            return key
    common = sorted(set(new) & set(old))
    return common[0] if common else HEADLINE[task]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3g}"


def comparison_text(metric: str, new: Mapping[str, float], old: Mapping[str, float], *, champion: str,
                    champion_is_alias: bool, n_rows: int, batch_ref: str, task: str) -> str:
    """``"f1_macro 0.81 vs champion churn@v2 0.74 on 412 recent rows of churn-batch@v3 (accuracy 0.85 vs 0.8)"``."""
    who = f"champion {champion}" if champion_is_alias else f"{champion} (the checked version; no champion)"
    text = f"{metric} {_fmt(new.get(metric))} vs {who} {_fmt(old.get(metric))} on {n_rows:,} recent rows of {batch_ref}"
    also = [f"{k} {_fmt(new[k])} vs {_fmt(old[k])}" for k in (HEADLINE[task], *ALSO_SHOWN[task])
            if k != metric and k in new and k in old]
    return text + (f" ({', '.join(also)})" if also else "")


# =========================================================================== the job


def retrain_job(ctx: JobContext, *, check_id: int, data: str = "batch", comment: str | None = None,
                source: str = "api") -> dict[str, Any]:
    """Job: retrain from drift check ``check_id`` and register a ``challenger`` (module docstring)."""
    from modelyard.core.datasets import service
    from modelyard.core.experiments.training.spec import TrainSpec
    from modelyard.core.experiments.training.train import (
        _target_values,
        clean,
        run_training,
    )
    from modelyard.core.registry import versions as registry
    from modelyard.core.registry.modelfiles import load_artifact

    store = ctx.store
    data = check_data_choice(data)
    comment = comment.strip() or None if isinstance(comment, str) else None
    ctx.progress(0.0, f"Reading drift check {check_id}")
    origin = _read_origin(store, int(check_id))
    target, task = _target_of(origin)
    if origin.verdict not in ("drift", "warning"):
        ctx.log(f"Note: drift check {origin.check_id} found no drift (verdict {origin.verdict}); retraining anyway.")
    batch = service.get_version(store, origin.batch_dv_id)
    ctx.progress(0.03, f"Reading the batch {batch.ref}")
    batch_frame = service.load_frame(store, batch.id)
    known = _check_batch(origin, batch, batch_frame, target)
    if int((~known).sum()):
        ctx.log(f"{plural(int((~known).sum()), 'row')} of {batch.ref} have no '{target}' and are not used.")

    ctx.progress(0.08, "Building the training data")
    if data == "batch":
        version, offset = batch, 0
    else:
        version, offset = _combined_version(ctx, origin, batch, batch_frame, target)
    ctx.progress(0.18, f"Holding out the recent rows of {batch.ref}")
    split = _make_split(ctx, origin, version, batch, batch_frame, known, offset, target)
    del batch_frame

    eval_frame = service.load_frame(store, version.id).iloc[split.test].reset_index(drop=True)
    y_eval = _target_values(eval_frame[target], task)
    champion = registry.load_model(store, origin.champion_ref)
    tags = {"retrained_from_check": str(origin.check_id), "retrained_from_version": origin.ref,
            "retrain_data": data}
    ts = TrainSpec.from_json(origin.spec)
    ts.dataset, ts.dataset_version_id, ts.content_hash = version.ref, None, None
    ts.target, ts.task = target, task
    ts.split = {"id": split.id}
    ts.preprocessing = _overrides(origin, version, target)
    names = {c["name"] for c in version.columns}
    ts.slice_columns = [c for c in ts.slice_columns if c in names and c != target]
    ts.experiment = ts.experiment or origin.experiment
    ts.run_name = f"retrain {origin.ref} on {batch.ref}" + (" + reference" if data != "batch" else "")
    ts.tags = {**ts.tags, **tags}
    ts.source, ts.cwd = source, None
    ts.validate()
    box: dict[str, Any] = {}

    def compare(run: Any) -> None:  # inside the new run, before it ends: evaluate both on the recent rows
        art = next(a for a in run.info.artifacts if a.path == "model/model.joblib")
        new_model = load_artifact(store, art.sha256, what=f"the model of run {run.id[:12]}")
        ctx.progress(0.92, f"Comparing with {origin.champion_ref} on {split.n_test:,} recent rows")
        new = _evaluate(new_model, eval_frame, y_eval, task, origin.features)
        old = _evaluate(champion, eval_frame, y_eval, task, origin.features)
        metric = _headline(origin, task, new, old)
        text = comparison_text(metric, new, old, champion=origin.champion_ref,
                               champion_is_alias=origin.champion_is_alias, n_rows=len(eval_frame),
                               batch_ref=batch.ref, task=task)
        report = clean({"check_id": origin.check_id, "checked_version": origin.ref, "data": data,
                        "champion": origin.champion_ref, "champion_is_alias": origin.champion_is_alias,
                        "n_eval_rows": len(eval_frame),
                        "eval_rows": {"dataset_version_id": version.id, "ref": version.ref, "split_id": split.id,
                                      "split": split.name, "batch_ref": batch.ref},
                        "metric": metric, "lower_is_better": metric in LOWER_IS_BETTER,
                        "metrics_new": new, "metrics_champion": old, "summary": text})
        run.set_tag("retrain_compared_with", origin.champion_ref)
        run.log_bytes(json.dumps(report, indent=1, allow_nan=False).encode(), COMPARISON_PATH, kind="comparison",
                      media_type="application/json")
        box["report"] = report

    result = run_training(ctx, ts, progress=ctx.sub(0.2, 0.9), before_end=compare)
    report = box["report"]
    ctx.log(report["summary"])
    ctx.progress(0.95, f"Registering run {result['run_id'][:12]} as a challenger of {origin.model}")
    audit_comment = report["summary"] + (f" -- {comment}" if comment else "")
    info = registry.register(store, result["run_id"], origin.model, comment=audit_comment)
    _make_challenger(store, origin, info, result["run_id"], report, audit_comment)
    ctx.progress(1.0, f"{info.ref} is the challenger")
    return clean({
        "check_id": origin.check_id, "model": origin.model, "checked_version": origin.ref, "run_id": result["run_id"],
        "ref": info.ref, "version": info.version, "alias": CHALLENGER, "data": data, "experiment": result["experiment"],
        "dataset": version.ref, "dataset_version_id": version.id, "split_id": split.id,
        "champion": origin.champion_ref, "metric": report["metric"], "metrics_new": report["metrics_new"],
        "metrics_champion": report["metrics_champion"], "n_eval_rows": report["n_eval_rows"],
        "comparison": report["summary"], "n_train": result["n_train"], "duration_s": result["duration_s"]})


def _make_challenger(store: Store, origin: _Origin, info: Any, run_uuid: str, report: Mapping[str, Any],
                     comment: str) -> None:
    """Point ``challenger`` at the new version; record the audit events and the lineage edge (one transaction)."""
    from modelyard.core.registry.edits import bump_revision
    from modelyard.core.registry.versions import _audit

    with store.write() as s:
        model = s.get(m.RegisteredModel, origin.model_id)
        assert model is not None
        revision = bump_revision(s, model)  # an alias move: a member's edit from before it is stale
        row = s.get(m.ModelAlias, (model.id, CHALLENGER))
        old_ref = None
        if row is None:
            s.add(m.ModelAlias(model_id=model.id, alias=CHALLENGER, version_id=info.id))
        elif row.version_id != info.id:
            old = s.scalar(select(m.ModelVersion.version).where(m.ModelVersion.id == row.version_id))
            old_ref = f"{model.name}@v{old}"
            row.version_id, row.updated_at = info.id, m.utcnow()
        _audit(s, model, "set_alias", version=info.version, from_value=old_ref, to_value=info.ref, comment=comment,
               details={"alias": CHALLENGER, "revision": revision})
        _audit(s, model, "retrain", version=info.version, from_value=f"check {origin.check_id}", to_value=info.ref,
               comment=comment,
               details={"check_id": origin.check_id, "run_id": run_uuid, "checked_version": origin.ref,
                        "data": report["data"], "champion": report["champion"], "metric": report["metric"],
                        "metrics_new": report["metrics_new"], "metrics_champion": report["metrics_champion"],
                        "n_eval_rows": report["n_eval_rows"], "eval_rows": report["eval_rows"]})
        records.link(s, "monitoring_check", origin.check_id, "run", run_uuid, "retrained_as",
                     {"data": report["data"], "model_version_id": info.id, "ref": info.ref,
                      "compared_with": report["champion"], "n_eval_rows": report["n_eval_rows"],
                      "dataset_version_id": report["eval_rows"]["dataset_version_id"],
                      "split_id": report["eval_rows"]["split_id"]})
