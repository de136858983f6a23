"""Stored drift checks read back: a model's checks, one check in full, the timeline, the status.

Every summary row carries what a person needs to tell checks apart and read them at a glance:
the batch's source file name (``batch_file``) and when that file was written (``batch_date``, its
modification time, else when it was imported: ``batch_imported``), and ``summary``, one line saying
what moved and why the verdict is what it is (:func:`summary_line`)::

    DRIFT: 2 of 3 features drifted (67%, the rule is ≥ 50%): age, plan; predictions shifted too
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.core.common.names import plural
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store, lookup
from modelyard.core.store import models as m

__all__ = ["VERDICTS", "get_check", "list_checks", "model_status", "summary_line", "timeline"]

VERDICTS = ("ok", "warning", "drift")
SHOWN_NAMES = 5


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


def _pct(x: float) -> str:
    return f"{x:.0%}"


def summary_line(verdict: str | None, result: Mapping[str, Any], config: Mapping[str, Any] | None) -> str:
    """One line: the verdict, what drifted against the dataset rule, and what else decided it."""
    res = result or {}
    cfg = config or {}
    word = (verdict or "unknown").upper()
    drifted = [str(n) for n in res.get("drifted") or []]
    n = int(res.get("n_features") or 0)
    share = res.get("drift_share")
    rule = (cfg.get("rule") or {}).get("drift_share")
    rule_text = f", the rule is ≥ {_pct(float(rule))}" if isinstance(rule, (int, float)) else ""
    if not n:
        head = "no feature could be compared"
    elif drifted:
        head = (f"{len(drifted)} of {plural(n, 'feature')} drifted"
                + (f" ({_pct(float(share))}{rule_text})" if isinstance(share, (int, float)) else "")
                + f": {_names(drifted)}")
    else:
        head = f"none of the {plural(n, 'feature')} drifted" if n > 1 else "its one feature did not drift"
    also: list[str] = []
    critical = set(cfg.get("critical") or []) | {k for k, v in (cfg.get("features") or {}).items()
                                                  if isinstance(v, Mapping) and v.get("critical")}
    crit = [d for d in drifted if d in critical]
    if crit:
        also.append(f"critical {'feature' if len(crit) == 1 else 'features'} {_names(crit)} drifted")
    if (res.get("prediction") or {}).get("drift"):
        also.append("predictions shifted")
    if (res.get("performance") or {}).get("degraded"):
        also.append("performance dropped")
    target = res.get("target") or {}
    if target.get("drift"):
        also.append(f"the target '{target.get('name')}' shifted")
    if (res.get("multivariate") or {}).get("drift"):
        also.append("a classifier tells the batch from the training data")
    missing = [p.get("column") for p in res.get("schema") or [] if p.get("kind") == "missing_column"]
    if missing:
        also.append(f"{plural(len(missing), 'model column')} missing from the batch ({_names(missing)})")
    line = f"{word}: {head}"
    if also:
        line += "; " + ", ".join(also) + (" too" if drifted and verdict == "drift" else "")
    return line


def _batch_facts(s: Any, ids: set[int]) -> dict[int, dict[str, Any]]:
    """Per batch dataset version: its ref, source file name, file date and import date."""
    if not ids:
        return {}
    rows = s.execute(select(m.DatasetVersion.id, m.Dataset.name, m.DatasetVersion.version,
                            m.DatasetVersion.source_path, m.DatasetVersion.source_mtime, m.DatasetVersion.created_at)
                     .join(m.Dataset, m.Dataset.id == m.DatasetVersion.dataset_id)
                     .where(m.DatasetVersion.id.in_(ids))).all()
    return {i: {"batch_ref": f"{n}@v{v}", "batch_file": os.path.basename(path) if path else None,
                "batch_date": (mtime or created).isoformat() if (mtime or created) else None,
                "batch_imported": created.isoformat() if created else None}
            for i, n, v, path, mtime, created in rows}


def _summary(c: m.MonitoringCheck, model: str, version: int, batch: Mapping[str, Any] | None) -> dict[str, Any]:
    res = c.result or {}
    facts = dict(batch or {})
    if not facts.get("batch_file") and (res.get("batch") or {}).get("source_path"):
        facts["batch_file"] = os.path.basename(str(res["batch"]["source_path"]))
    return {"id": c.id, "created_at": c.created_at.isoformat() if c.created_at else None, "created_by": c.created_by,
            "model": model, "version": version, "ref": f"{model}@v{version}", "model_version_id": c.model_version_id,
            "verdict": c.verdict, "drift_share": c.drift_share, "n_features": res.get("n_features"),
            "drifted": res.get("drifted") or [], "batch_dataset_version_id": c.batch_dataset_version_id,
            "batch_ref": facts.get("batch_ref"), "batch_file": facts.get("batch_file"),
            "batch_date": facts.get("batch_date"), "batch_imported": facts.get("batch_imported"),
            "batch_rows": (res.get("batch") or {}).get("n_rows"),
            "reference_dataset_version_id": c.reference_dataset_version_id, "job_id": c.job_id,
            "reasons": list(dict.fromkeys(res.get("reasons") or [])),
            "summary": summary_line(c.verdict, res, c.config)}


def _newest_checks(s: Session, model_id: int, limit: int | None) -> list[Any]:
    """(check, version number) rows of every version of a model, newest first."""
    q = (select(m.MonitoringCheck, m.ModelVersion.version)
         .join(m.ModelVersion, m.ModelVersion.id == m.MonitoringCheck.model_version_id)
         .where(m.ModelVersion.model_id == model_id)
         .order_by(m.MonitoringCheck.created_at.desc(), m.MonitoringCheck.id.desc()))
    if limit is not None:
        q = q.limit(int(limit))
    return list(s.execute(q).all())


def list_checks(store: Store, name: str, *, limit: int | None = 50) -> list[dict[str, Any]]:
    """The checks of every version of ``name``, newest first (summaries: no per-feature rows)."""
    with store.session() as s:
        model = registry.model_of(s, name)
        rows = _newest_checks(s, model.id, limit)
        facts = _batch_facts(s, {c.batch_dataset_version_id for c, _ in rows if c.batch_dataset_version_id})
        return [_summary(c, model.name, v, facts.get(c.batch_dataset_version_id or -1)) for c, v in rows]


def get_check(store: Store, check_id: int) -> dict[str, Any]:
    """Everything about one check: the summary, the configuration it was decided with, and the
    whole result (see :mod:`modelyard.core.monitoring.drift.check`), per-feature rows ordered by drift score."""
    with store.session() as s:
        c = lookup.drift_check_by_id(s, check_id)
        mv = s.get(m.ModelVersion, c.model_version_id)
        model = s.get(m.RegisteredModel, mv.model_id) if mv is not None else None
        facts = _batch_facts(s, {c.batch_dataset_version_id} if c.batch_dataset_version_id else set())
        out = _summary(c, model.name if model else "?", mv.version if mv else 0,
                       facts.get(c.batch_dataset_version_id or -1))
        res = dict(c.result or {})
        config = dict(c.config or {})
    for key in ("model", "version", "ref", "model_version_id", "verdict", "drift_share", "drifted", "reasons",
                "n_features"):
        res.pop(key, None)
    feats = list(res.pop("features", []) or [])
    feats.sort(key=lambda r: (not r.get("drift"), -(r.get("score") or 0.0), r.get("name", "")))
    return {**out, **res, "features": feats, "config": config}


def _score_threshold(config: Mapping[str, Any]) -> float | None:
    """The drift score (effect size) a feature drifts at under ``config``: the shared effect
    threshold when the settings agree on one, else the minimum effect a p-value test requires."""
    th = config.get("thresholds") or {}
    values = {float(th[k]) for k in ("min_effect", "wasserstein", "js") if isinstance(th.get(k), (int, float))}
    if len(values) == 1:
        return values.pop()
    value = th.get("min_effect")
    return float(value) if isinstance(value, (int, float)) else None


def timeline(store: Store, name: str, *, limit: int | None = 500) -> dict[str, Any]:
    """Per check (oldest first): drift score and verdict per feature, the dataset verdict and share,
    the batch's file name and date, and the model's primary metric on the batch (when it carried the
    target) with its recorded value; ``threshold`` is the drift score a feature drifts at and
    ``rule`` the share of drifting features the dataset drifts at (both under the newest check's settings)."""
    with store.session() as s:
        model = registry.model_of(s, name)
        rows = list(reversed(_newest_checks(s, model.id, limit)))
        facts = _batch_facts(s, {c.batch_dataset_version_id for c, _ in rows if c.batch_dataset_version_id})
        data = [(c.id, c.created_at, v, c.verdict, c.drift_share, dict(c.result or {}), dict(c.config or {}),
                 facts.get(c.batch_dataset_version_id or -1) or {}) for c, v in rows]
    names: list[str] = []
    checks = []
    metric_name = None
    config: dict[str, Any] = {}
    for cid, at, version, verdict, share, res, config, batch in data:
        scores, drift = {}, {}
        for r in res.get("features") or []:
            if r.get("status") != "checked":
                continue
            if r["name"] not in names:
                names.append(r["name"])
            scores[r["name"]] = r.get("score")
            drift[r["name"]] = r.get("drift")
        metric = recorded = None
        perf = res.get("performance") or {}
        for row in perf.get("metrics") or []:
            if row.get("decides"):
                metric_name = metric_name or row["metric"]
                if row["metric"] == metric_name:
                    metric, recorded = row.get("batch"), row.get("recorded")
        mv = res.get("multivariate") or {}
        checks.append({"id": cid, "created_at": at.isoformat() if at else None, "version": version,
                       "verdict": verdict, "drift_share": share, "batch_ref": batch.get("batch_ref"),
                       "batch_file": batch.get("batch_file"), "batch_date": batch.get("batch_date"),
                       "scores": scores, "drift": drift, "metric": metric, "metric_recorded": recorded,
                       "prediction_drift": (res.get("prediction") or {}).get("drift"), "auc": mv.get("auc"),
                       "summary": summary_line(verdict, res, config)})
    rule = (config.get("rule") or {}).get("drift_share")
    return {"model": model.name, "features": names, "metric": metric_name, "checks": checks,
            "threshold": _score_threshold(config) if checks else None,
            "rule": float(rule) if isinstance(rule, (int, float)) else None}


def model_status(store: Store, name: str) -> str | None:
    """The verdict of the model's latest check (``ok`` | ``warning`` | ``drift``), None if never checked."""
    with store.session() as s:
        model = registry.model_of(s, name)
        verdict = s.scalar(select(m.MonitoringCheck.verdict)
                           .join(m.ModelVersion, m.ModelVersion.id == m.MonitoringCheck.model_version_id)
                           .where(m.ModelVersion.model_id == model.id)
                           .order_by(m.MonitoringCheck.created_at.desc(), m.MonitoringCheck.id.desc()).limit(1))
    if verdict is None:
        return None
    return verdict if verdict in VERDICTS else "warning"
