"""The drift check: a batch against a model version's training reference, and the stored checks.

::

    result = run_check(store, "churn@champion", frame)          # a CheckResult; nothing is stored
    spec = check_spec("churn@champion", batch_path="march.csv")  # the job: import, check, record
    outcome = run_job(store, spec)    # {"check_id", "verdict", "drift_share", "drifted", "reasons", ...}

**Reference.** The training rows of the version (the train part of its dataset version's
split, read from the Parquet snapshot) when the store holds them; else the reference profile
stored with the version (an imported bundle), from which the binned tests run and the domain
classifier and the reference side of score drift are skipped (``skipped`` says so).

**What a check reports** (:meth:`CheckResult.to_json`, also what :func:`get_check` returns):

``features``
    one row per model input: ``name``, ``kind`` (numeric | categorical), ``status`` (checked |
    missing | empty | ignored), ``test`` (ks | wasserstein | chisquare | js | psi),
    ``statistic_name``/``statistic``, ``p_value`` and ``p_adjusted`` (p-value tests),
    ``effect_name``/``effect`` (normed Wasserstein distance, or Jensen–Shannon distance for
    categories and numbers with at most 5 values), ``threshold``, ``min_effect``, ``drift``,
    ``score`` (the effect size clipped to 0..1, for sorting and the timeline), ``critical``,
    ``reason`` (the decision in words), ``approximate`` (computed from a binned profile),
    ``stats`` (every measure computed: ks_d, ks_p, wasserstein, wasserstein_norm, psi, js,
    chi2, chi2_p, cramers_v...), ``reference``/``batch`` summaries (n, missing share, mean, std,
    min, max, median; or the number of categories), ``histogram`` (numeric: shared ``edges`` and
    the ``reference``/``batch`` share per bin; categorical: ``categories`` with both shares) and
    ``unseen`` (categories the reference never had, with counts).
``schema``
    problems, each ``{"kind", "column", "message", "severity", "details"}``: missing_column,
    new_column, type_change, unseen_categories, missing_values.
``target``
    the target column's row (like a feature's) when the batch carries it: label drift.
``prediction``
    ``{"output": "label" | "number", "rows": n, "labels" | "values": row, "scores": row | None,
    "drift", "error"}``: the model run on (a sample of) the batch against its outputs on the
    reference.
``performance``
    ``{"task", "rows", "metrics": [{"metric", "recorded", "batch", "change", "relative_drop",
    "greater_is_better", "decides", "degraded"}], "degraded"}`` when the batch carries the target.
``multivariate``
    ``{"auc", "threshold", "drift", "n_reference", "n_batch", "folds", "columns"}``: a gradient
    boosting classifier trained to tell reference rows from batch rows; its cross-validated ROC
    AUC (0.5 = indistinguishable).
``verdict``, ``drift_share``, ``drifted``, ``reasons``, ``config`` (the whole configuration the
check was decided with), ``reference``, ``batch``, ``skipped``, ``seconds``.

The dataset verdict: ``drift`` when at least ``rule.drift_share`` of the checked features drift
or a critical feature drifts; other findings raise it to their configured severity (see
:mod:`modelyard.core.monitoring.drift.config`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.core.common.procs import current_user
from modelyard.core.jobs.progress import ProgressSlice
from modelyard.core.jobs.runner import JobContext, JobSpec
from modelyard.core.monitoring.drift import stats as st
from modelyard.core.monitoring.drift.baseline import (
    Progress,
    Reference,
    _kinds,
    _load_reference,
    _need_reference,
    _profile_reference,
)
from modelyard.core.monitoring.drift.columns import (
    Columns,
    FrameColumns,
    TableColumns,
    columns_of,
)
from modelyard.core.monitoring.drift.compare import (
    _base_row,
    _decide,
    _family,
    _sample,
    compare_categorical,
    compare_numeric,
)
from modelyard.core.monitoring.drift.config import (
    get_config,
    merge_config,
    validate_config,
)
from modelyard.core.monitoring.drift.outputs import _domain_classifier, _model_checks
from modelyard.core.monitoring.drift.stored import (  # noqa: F401 - re-exported: the stored checks
    VERDICTS,
    get_check,
    list_checks,
    model_status,
    summary_line,
    timeline,
)
from modelyard.core.registry import reference as refmod
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store, records
from modelyard.core.store import models as m

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "CheckResult",
    "Reference",
    "batch_dataset_name",
    "check_drift_job",
    "check_frames",
    "check_spec",
    "get_check",
    "list_checks",
    "model_status",
    "notify_drift",
    "prepare_reference",
    "run_check",
    "summary_line",
    "timeline",
]



# =========================================================================== the result


@dataclass
class CheckResult:
    """One check's outcome (plain data; :meth:`to_json` is what is stored)."""

    model: str
    version: int
    model_version_id: int
    verdict: str
    drift_share: float | None
    n_features: int
    drifted: list[str]
    reasons: list[str]
    features: list[dict[str, Any]]
    schema: list[dict[str, Any]]
    target: dict[str, Any] | None
    prediction: dict[str, Any] | None
    performance: dict[str, Any] | None
    multivariate: dict[str, Any] | None
    reference: dict[str, Any]
    batch: dict[str, Any]
    config: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ref(self) -> str:
        return f"{self.model}@v{self.version}"

    def feature(self, name: str) -> dict[str, Any]:
        for row in self.features:
            if row["name"] == name:
                return row
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["ref"] = self.ref
        return _clean(d)


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# =========================================================================== the check


def _resolve_config(store: Store, name: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    base = get_config(store, name)
    return merge_config(base, validate_config(config or {}))


def _noop(_f: float, _m: str) -> None:
    return None


def run_check(store: Store, ref: str, batch: pd.DataFrame | pa.Table | int, *, config: Mapping[str, Any] | None = None,
              progress: Progress | None = None, batch_info: Mapping[str, Any] | None = None) -> CheckResult:
    """Check ``batch`` (a frame, an Arrow table, or a dataset version id) against the reference of the
    model version ``ref`` (``NAME@vN``, ``NAME@ALIAS``...). ``config`` lays settings over the model's own
    (see :mod:`modelyard.core.monitoring.drift.config`). ``progress(fraction, message)`` is called per
    feature (``ctx.progress`` fits: it is a cancellation point). Nothing is stored."""
    import pandas as pd

    t0 = time.perf_counter()
    report = progress or _noop
    info = registry.get_version(store, ref)
    cfg = _resolve_config(store, info.name, config)
    binfo: dict[str, Any] = dict(batch_info or {})
    if isinstance(batch, pd.DataFrame):
        source: Columns = FrameColumns(batch)
    elif not isinstance(batch, (int, np.integer)):
        source = TableColumns(batch)
    else:
        import pyarrow.parquet as pq

        from modelyard.core.datasets import service

        dv = service.get_version(store, int(batch))
        report(0.0, f"Reading {dv.ref}")
        source = TableColumns(pq.read_table(service.snapshot_path(store, dv.id)))
        binfo.setdefault("dataset_version_id", dv.id)
        binfo.setdefault("dataset_ref", dv.ref)
    reference = _load_reference(store, info, report)
    return _evaluate(reference, source, cfg, load_model=lambda: registry.load_model(store, info.ref),
                     recorded=info.metrics, meta=(info.name, info.version, info.id), batch_info=binfo,
                     progress=report, t0=t0)


def prepare_reference(reference: pd.DataFrame | Mapping[str, Any], *, target: str | None = None,
                      categorical: Sequence[str] | None = None, features: Sequence[str] | None = None,
                      task: str | None = None, eager: bool = True) -> Reference:
    """A reference ready to check batches against (sorted values, category counts), from a frame
    of training rows or a reference profile; reuse it for several batches. ``features`` default
    to every column but the target; ``categorical`` as for
    :func:`~modelyard.core.registry.reference.build_reference`. ``eager=False`` leaves the columns to
    be built by the check's worker threads."""
    import pandas as pd

    if not isinstance(reference, pd.DataFrame):
        return _profile_reference(refmod.validate_reference(dict(reference)), task, features)
    source = FrameColumns(reference)
    names = source.names
    feats = [str(f) for f in features] if features is not None else [c for c in names if c != target]
    missing = [c for c in [*feats, *([target] if target else [])] if c not in names]
    if missing:
        raise ModelyardError(f"The reference has no column(s) {', '.join(map(repr, missing))}.")
    kinds, skipped = _kinds(source, [*feats, *([target] if target else [])], set(categorical or []))
    feats = [f for f in feats if f in kinds]
    if task is None and target is not None and target in kinds:
        task = "classification" if kinds[target] == "categorical" else "regression"
    ref = Reference("rows", kinds, feats, target if target in kinds else None, task, feats, source, None,
                    {"source": "rows", "n_rows": source.n_rows}, skipped)
    return ref.prepare() if eager else ref


def check_frames(reference: pd.DataFrame | Mapping[str, Any] | Reference, batch: pd.DataFrame | Any, *,
                 target: str | None = None, categorical: Sequence[str] | None = None,
                 features: Sequence[str] | None = None, task: str | None = None,
                 config: Mapping[str, Any] | None = None, model: Any = None, metrics: Mapping[str, float] | None = None,
                 progress: Progress | None = None) -> CheckResult:
    """The same check without a store: ``reference`` is a frame of training rows, a reference
    profile (:func:`~modelyard.core.registry.reference.build_reference`) or a :func:`prepare_reference`
    result; ``model`` (a fitted estimator taking the feature columns) enables prediction drift,
    and with ``metrics`` (its recorded test metrics) the performance comparison; ``config`` lays
    settings over :func:`~modelyard.core.monitoring.drift.config.default_config`."""
    from modelyard.core.monitoring.drift.config import default_config

    t0 = time.perf_counter()
    report = progress or _noop
    cfg = merge_config(default_config(), validate_config(config or {}))
    ref = reference if isinstance(reference, Reference) else prepare_reference(
        reference, target=target, categorical=categorical, features=features, task=task, eager=False)
    return _evaluate(ref, columns_of(batch), cfg, load_model=(lambda: model) if model is not None else None,
                     recorded=dict(metrics or {}), meta=("(frames)", 0, 0), batch_info={}, progress=report, t0=t0)


def _evaluate(reference: Reference, batch: Columns, cfg: dict[str, Any], *,
              load_model: Callable[[], Any] | None, recorded: Mapping[str, Any] | None,
              meta: tuple[str, int, int], batch_info: dict[str, Any], progress: Progress, t0: float) -> CheckResult:
    report = progress
    binfo = batch_info
    binfo.update(n_rows=batch.n_rows, n_cols=len(batch.names))
    if batch.n_rows == 0:
        raise ModelyardError("The batch has no rows to check.", hint="Choose a file that holds data rows.")
    skipped = dict(reference.skipped)
    critical = set(cfg.get("critical") or []) | {n for n, s in (cfg.get("features") or {}).items() if s.get("critical")}
    ignored = {n for n, s in (cfg.get("features") or {}).items() if s.get("ignore")}

    # ---- schema
    schema: list[dict[str, Any]] = []
    sev = cfg["severity"]

    def problem(kind: str, column: str, message: str, **details: Any) -> None:
        schema.append({"kind": kind, "column": column, "message": message, "severity": sev[kind],
                       "details": details})

    batch_cols = set(batch.names)
    known = set(reference.features) | set(reference.inputs) | set(reference.skipped) \
        | ({reference.target} if reference.target else set())
    for name in reference.inputs if reference.inputs else reference.features:
        if name not in batch_cols and name not in ignored:
            problem("missing_column", name, f"The batch has no column '{name}', which the model takes as input.")
    for name in batch.names:
        if name not in known:
            problem("new_column", name, f"The batch has a column '{name}' the model was not trained with.")

    # ---- per feature
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for name in reference.features:
        kind = reference.kinds[name]
        if name in ignored:
            row = _base_row(name, kind, "feature")
            row.update(status="ignored", reason="ignored by the configuration")
            rows[name] = row
        elif name not in batch_cols:
            row = _base_row(name, kind, "feature")
            row.update(status="missing", reason="not in the batch")
            rows[name] = row
        else:
            todo.append(name)
    target_name = reference.target if reference.target and reference.target in batch_cols else None
    jobs = [(n, "feature") for n in todo] + ([(target_name, "target")] if target_name else [])

    def work(name: str, role: str) -> tuple[dict[str, Any], dict[str, Any]]:
        col = reference.column(name)
        batch_dtype = batch.dtype(name)
        extra: dict[str, Any] = {"batch_dtype": batch_dtype}
        if col.kind == "numeric":
            assert col.num is not None
            dtype = col.num.values.dtype if isinstance(col.num, st.NumericSample) else np.float64
            values, bad = batch.numeric(name)
            extra["unparseable"] = bad
            row = compare_numeric(name, col.num, _sample(values, dtype), cfg, role=role)
        else:
            counts, missing = batch.counts(name)
            row = compare_categorical(name, col, counts, missing, cfg, role=role)
        row["critical"] = name in critical
        row["reference"]["dtype"] = col.dtype
        row["batch"]["dtype"] = batch_dtype
        return row, extra

    extras: dict[str, dict[str, Any]] = {}
    if jobs:
        workers = max(1, min(len(jobs), os.cpu_count() or 1, 4))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="modelyard-drift")
        try:
            futures = {pool.submit(work, n, role): n for n, role in jobs}
            pending = set(futures)
            done_n = 0
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in done:
                    row, extra = fut.result()
                    rows[futures[fut]] = row
                    extras[futures[fut]] = extra
                    done_n += 1
                    report(0.1 + 0.6 * done_n / len(jobs), f"Compared {futures[fut]}")
                if not done:
                    report(0.1 + 0.6 * done_n / len(jobs), "Comparing the columns")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    features = [rows[n] for n in reference.features if n in rows]
    _decide([r for r in features], cfg["p_adjust"])
    target_row = rows.get(target_name) if target_name else None
    if target_row is not None:
        _decide([target_row], "none")

    # ---- schema problems found while comparing
    for name in [*todo, *([target_name] if target_name else [])]:
        row, extra, col = rows[name], extras.get(name, {}), reference.column(name)
        rf, bf = _family(col.dtype), _family(extra.get("batch_dtype"))
        if rf != bf:
            problem("type_change", name, f"'{name}' was {rf} ({col.dtype}) in the reference and is {bf} "
                    f"({extra.get('batch_dtype')}) in the batch.", reference=col.dtype, batch=extra.get("batch_dtype"),
                    unparseable=extra.get("unparseable", 0))
        elif extra.get("unparseable"):
            problem("type_change", name, f"{plural(extra['unparseable'], 'value')} of '{name}' in the batch are not numbers.",
                    reference=col.dtype, batch=extra.get("batch_dtype"), unparseable=extra["unparseable"])
        if row["unseen"]:
            total = sum(u["count"] for u in row["unseen"])
            shown = ", ".join(repr(u["category"]) for u in row["unseen"][:5])
            more = len(row["unseen"]) + row.get("unseen_more", 0) - 5
            problem("unseen_categories", name,
                    f"'{name}' has {len(row['unseen']) + row.get('unseen_more', 0)} categor"
                    f"{'y' if len(row['unseen']) == 1 else 'ies'} the reference never had ({shown}"
                    f"{f', and {more} more' if more > 0 else ''}) in {plural(total, 'row')} "
                    f"({total / max(row['batch']['n'], 1):.1%} of the batch).",
                    categories=[u["category"] for u in row["unseen"]], rows=total)
        ref_missing, cur_missing = col.missing_share, row["batch"].get("missing") or 0.0
        if cur_missing - ref_missing >= float(cfg["missing_jump"]):
            problem("missing_values", name, f"'{name}' is missing in {cur_missing:.1%} of the batch "
                    f"(reference {ref_missing:.1%}).", reference=ref_missing, batch=cur_missing)

    # ---- the model: prediction drift and performance
    prediction = performance = None
    if cfg["prediction"]["enabled"] or cfg["performance"]["enabled"]:
        report(0.72, "Running the model")
        prediction, performance = _model_checks(load_model, recorded or {}, reference, batch, cfg, skipped)
    else:
        skipped["prediction"] = "turned off in the configuration"
    if not cfg["performance"]["enabled"]:
        performance = None
        skipped.setdefault("performance", "turned off in the configuration")
    elif performance is None and "performance" not in skipped:
        skipped["performance"] = (f"the batch has no target column '{reference.target}'" if reference.target
                                  else "the reference names no target")
    if not cfg["prediction"]["enabled"]:
        prediction = None
        skipped.setdefault("prediction", "turned off in the configuration")

    # ---- multivariate
    multivariate = None
    if not cfg["multivariate"]["enabled"]:
        skipped["multivariate"] = "turned off in the configuration"
    elif reference.rows is None:
        skipped["multivariate"] = ("the domain classifier needs the reference's rows; this version has only a "
                                   "binned reference profile (e.g. imported from a bundle)")
    else:
        report(0.85, "Training the domain classifier")
        cols = [r["name"] for r in features if r["status"] == "checked"]
        multivariate = _domain_classifier(reference, batch, cols, cfg, skipped)
    report(0.98, "Deciding")

    # ---- verdict
    checked = [r for r in features if r["status"] == "checked"]
    drifted = [r["name"] for r in checked if r["drift"]]
    share = len(drifted) / len(checked) if checked else None
    findings: list[tuple[str, str]] = []
    rule = float(cfg["rule"]["drift_share"])
    crit = [n for n in drifted if n in critical]
    if drifted and share is not None and share >= rule:
        findings.append(("drift", (f"{len(drifted)} of {len(checked)} features drift ({share:.0%}; the rule is "
                                  f"{rule:.0%}): {', '.join(drifted)}")))
    elif drifted:
        findings.append((sev["features"], (f"{len(drifted)} of {len(checked)} features drift ({share:.0%}, below "
                                          f"the rule's {rule:.0%}): {', '.join(drifted)}")))
    if crit:
        findings.append(("drift", f"critical {'feature' if len(crit) == 1 else 'features'} drift: {', '.join(crit)}"))
    missing = [p for p in schema if p["kind"] == "missing_column"]
    if missing:  # one finding for the columns the batch lacks, not one per column
        names = [p["column"] for p in missing]
        findings.append((missing[0]["severity"], (f"the batch lacks {len(names)} of the model's input columns "
                                                  f"({', '.join(names)}): they were not compared")
                         if len(names) > 1 else missing[0]["message"]))
    for p in schema:
        if p["kind"] != "missing_column":
            findings.append((p["severity"], p["message"]))
    if target_row is not None and target_row["drift"]:
        findings.append((sev["target"], f"the target '{target_name}' drifts ({target_row['reason']})"))
    if prediction and prediction.get("drift"):
        findings.append((sev["prediction"], f"the model's outputs drift ({prediction['reason']})"))
    if performance and performance.get("degraded"):
        findings.append((sev["performance"], performance["reason"]))
    if multivariate and multivariate.get("drift"):
        findings.append((sev["multivariate"], (f"a classifier tells the batch from the reference (ROC AUC "
                                              f"{multivariate['auc']:.3f} ≥ {multivariate['threshold']:.3g})")))
    levels = [lvl for lvl, _ in findings]
    verdict = "drift" if "drift" in levels else "warning" if "warning" in levels else "ok"
    reasons = list(dict.fromkeys(f"{lvl}: {text}" for lvl, text in findings if lvl != "ignore"))
    return CheckResult(model=meta[0], version=meta[1], model_version_id=meta[2], verdict=verdict,
                       drift_share=share, n_features=len(checked), drifted=drifted, reasons=reasons,
                       features=features, schema=schema, target=target_row, prediction=prediction,
                       performance=performance, multivariate=multivariate, reference=reference.info, batch=binfo,
                       config=cfg, skipped=skipped, seconds=round(time.perf_counter() - t0, 3))


# =========================================================================== the job


def batch_dataset_name(model_name: str) -> str:
    """The dataset a model's batch files are imported into."""
    return f"{model_name}-batches"


def check_spec(model_ref: str, *, batch_path: str | os.PathLike[str] | None = None,
               batch_dataset_version_id: int | None = None, config: Mapping[str, Any] | None = None,
               dataset_name: str | None = None, title: str | None = None) -> JobSpec:
    """The job that checks a batch file (imported first) or dataset version against ``model_ref``."""
    params: dict[str, Any] = {"model_ref": model_ref}
    if batch_path is not None:
        params["batch_path"] = os.fspath(batch_path)
    if batch_dataset_version_id is not None:
        params["batch_dataset_version_id"] = int(batch_dataset_version_id)
    if config:
        params["config"] = dict(config)
    if dataset_name:
        params["dataset_name"] = dataset_name
    what = os.path.basename(os.fspath(batch_path)) if batch_path is not None else f"dataset version " \
                                                                                   f"{batch_dataset_version_id}"
    return JobSpec.for_kind("drift.check", title or f"Drift check of {model_ref}: {what}", params)


def check_drift_job(ctx: JobContext, *, model_ref: str, batch_path: str | None = None,
                    batch_dataset_version_id: int | None = None, config: Mapping[str, Any] | None = None,
                    dataset_name: str | None = None) -> dict[str, Any]:
    """Job: import ``batch_path`` as a version of ``<model>-batches`` (or use the dataset version
    given), check it against ``model_ref``, and record the check (a ``monitoring_checks`` row, the
    lineage edge ``dataset_version -> monitoring_check`` "checked" and the audit event
    ``drift_check``) in one transaction. Returns a summary with ``check_id``."""
    import pyarrow.parquet as pq

    from modelyard.core.datasets import service

    store = ctx.store
    if (batch_path is None) == (batch_dataset_version_id is None):
        raise ModelyardError("A drift check needs exactly one batch: a file or a dataset version.")
    info = registry.get_version(store, model_ref)
    validate_config(config or {})
    _need_reference(store, info)  # before importing anything
    from modelyard.core.monitoring.drift.admit import admit_batch

    admit_batch(store, info, path=batch_path, dataset_version_id=batch_dataset_version_id)  # its header: a batch?
    if batch_path is not None:
        ctx.progress(0.0, f"Importing {os.path.basename(batch_path)}")
        imported = service.import_dataset(ProgressSlice(ctx, 0.0, 0.35), path=str(batch_path),  # type: ignore[arg-type]
                                          options={"name": dataset_name or batch_dataset_name(info.name)},
                                          date_hints=service.date_formats_of(store, info.dataset_version_id))
        dvid = int(imported["dataset_version_id"])
        ctx.log(f"Batch: {imported.get('ref')} ({'new' if imported.get('created') else 'already stored'}).")
        start = 0.35
    else:
        dvid = int(batch_dataset_version_id)  # type: ignore[arg-type]
        start = 0.0
    dv = service.get_version(store, dvid)
    ctx.progress(start, f"Reading {dv.ref}")
    table = pq.read_table(service.snapshot_path(store, dvid))
    scaled = ProgressSlice(ctx, start + 0.05, 0.98)
    result = run_check(store, info.ref, table, config=config, progress=scaled.progress,
                       batch_info={"dataset_version_id": dvid, "dataset_ref": dv.ref,
                                   "source_path": str(batch_path) if batch_path else dv.source_path})
    del table
    ctx.progress(0.99, "Recording the check")
    data = result.to_json()
    with store.write() as s:
        row = m.MonitoringCheck(model_version_id=info.id, batch_dataset_version_id=dvid,
                                reference_dataset_version_id=result.reference.get("dataset_version_id")
                                if result.reference.get("source") == "rows" else None,
                                created_by=current_user(), verdict=result.verdict, drift_share=result.drift_share,
                                config=data["config"], result={k: v for k, v in data.items() if k != "config"},
                                job_id=ctx.job_id)
        s.add(row)
        s.flush()
        records.link(s, "dataset_version", dvid, "monitoring_check", row.id, "checked",
                     {"model": info.name, "version": info.version, "verdict": result.verdict})
        records.audit(s, registry.ENTITY, info.model_id, "drift_check", from_value=dv.ref, to_value=result.verdict,
                      details={"version": info.version, "check_id": row.id, "verdict": result.verdict,
                               "drift_share": result.drift_share, "drifted": result.drifted,
                               "batch_dataset_version_id": dvid})
        model = s.get(m.RegisteredModel, info.model_id)
        if model is not None:
            model.updated_at = m.utcnow()
        check_id = row.id
    ctx.log(f"Check {check_id}: {result.verdict}" + (f" ({len(result.drifted)} of {result.n_features} features "
                                                     f"drift)" if result.n_features else ""))
    for reason in result.reasons:
        ctx.log(f"  {reason}")
    summary = _clean({"check_id": check_id, "verdict": result.verdict, "drift_share": result.drift_share,
                   "model": info.name, "version": info.version, "ref": info.ref, "model_version_id": info.id,
                   "batch_dataset_version_id": dvid, "batch_ref": dv.ref, "n_features": result.n_features,
                   "drifted": result.drifted, "reasons": result.reasons, "seconds": result.seconds})
    if result.verdict == "drift":
        notify_drift(store, summary, log=ctx.log)
    return summary


def notify_drift(store: Store, summary: Mapping[str, Any], *, log: Callable[[str], None] | None = None) -> list[int]:
    """Send the store's notifications (event ``check.drift``) about a recorded check that found drift;
    ``summary`` is what :func:`check_drift_job` returns. Never raises: the check stands whatever happens here."""
    try:
        from modelyard.core.notify import get_notifications, notify

        ref, batch, check_id = summary["ref"], summary["batch_ref"], summary["check_id"]
        drifted = list(summary.get("drifted") or [])
        lines = [f"Drift check {check_id} of {ref} on the batch {batch} found drift.",
                 f"Drifted columns: {', '.join(drifted) if drifted else 'none (see the reasons)'}"]
        if summary.get("reasons"):
            lines += ["", "Reasons:", *(f"- {r}" for r in summary["reasons"])]
        lines += ["", f"See it: modelyard monitor show {check_id}"]
        ids = notify(store, "check.drift", subject=f"Drift in {ref}: batch {batch}", body="\n".join(lines),
                     payload={k: summary.get(k) for k in ("check_id", "ref", "model", "version", "batch_ref",
                                                          "verdict", "drift_share", "drifted", "reasons")},
                     check_id=int(check_id))
        if log is not None and ids:
            sent = get_notifications(store, ids)
            log("Notified: " + "; ".join(f"{n.channel} {n.status}" + (f" ({n.last_error})" if n.last_error else "")
                                         for n in sent))
        return ids
    except Exception as exc:  # noqa: BLE001 - a notification problem never fails the check
        if log is not None:
            log(f"Could not send the drift notification: {exc}")
        return []
