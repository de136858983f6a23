"""Promotion gates: what a version must reach before it becomes ``champion`` or goes to Production.

``min_metrics`` (each recorded test metric at least its minimum) and ``beat_champion`` (the
version's test metric strictly better than the current champion's, evaluated on the same test
split, or on the same held-out recent rows of a retraining). Gates fail closed: a metric that is
missing, NaN, infinite or not a number never passes, and the reason says which value it was.
Setting the gates is an edit of the model (:func:`modelyard.core.registry.edits.set_gates`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.core.common.errors import GateFailed, ModelyardError
from modelyard.core.registry.refs import CHAMPION, ENTITY, _audit, _resolve
from modelyard.core.store import Store
from modelyard.core.store import models as m


@dataclass(frozen=True)
class GateReport:
    ref: str
    passed: bool
    reasons: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # what was checked, passed or not
    is_champion: bool = False  # the version is the champion (beating the champion applies to the others)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

# =========================================================================== gates


def _validate_gates(gates: Any) -> dict[str, Any]:
    if gates is None:
        return {}
    if not isinstance(gates, dict):
        raise ModelyardError("Gates must be a mapping like {\"min_metrics\": {\"accuracy\": 0.9}}.")
    unknown = set(gates) - {"min_metrics", "beat_champion"}
    if unknown:
        raise ModelyardError(f"Unknown {'gate' if len(unknown) == 1 else 'gates'}: {', '.join(sorted(unknown))}.",
                             hint="The gates are min_metrics and beat_champion.")
    out: dict[str, Any] = {}
    mins = gates.get("min_metrics")
    if mins:
        if not isinstance(mins, dict):
            raise ModelyardError("min_metrics must map metric names to minimum values.")
        clean: dict[str, float] = {}
        for key, value in mins.items():
            if not isinstance(key, str) or not key.strip():
                raise ModelyardError(f"{key!r} is not a metric name.")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ModelyardError(f"The minimum for {key} must be a number, not {value!r}.") from None
            if math.isnan(number):
                raise ModelyardError(f"The minimum for {key} must be a number, not NaN.")
            clean[key.strip()] = number
        out["min_metrics"] = clean
    beat = gates.get("beat_champion")
    if beat:
        if isinstance(beat, str):
            beat = {"metric": beat}
        if not isinstance(beat, dict) or not isinstance(beat.get("metric"), str) or not beat["metric"].strip():
            raise ModelyardError("beat_champion needs a metric, as in {\"metric\": \"f1\", \"higher_is_better\": true}.")
        out["beat_champion"] = {"metric": beat["metric"].strip(),
                                "higher_is_better": bool(beat.get("higher_is_better", True))}
    return out


def _split_key(s: Session, mv: m.ModelVersion) -> tuple[Any, str] | None:
    """What identifies the test split a version was evaluated on, and how to name it."""
    card = mv.card or {}
    split_id = card.get("split_id")
    spec = card.get("spec")
    if mv.run_id is not None:
        row = s.execute(select(m.Run.split_id, m.Run.spec).where(m.Run.id == mv.run_id)).first()
        if row is not None:
            split_id, spec = row.split_id, row.spec
    return _split_key_of(s, split_id, spec)


def _split_key_of(s: Session, split_id: Any, spec: Any) -> tuple[Any, str] | None:
    """The test split of a run (its stored split, or its training spec's ``split``) as :func:`_split_key`."""
    if split_id is not None:
        return ("split", split_id), _split_label(s, split_id)
    if isinstance(spec, dict) and spec.get("split") is not None:
        text = json.dumps(spec["split"], sort_keys=True, default=str)
        return ("spec", text), f"the split {text} of its training spec"
    return None


def _split_label(s: Session, split_id: Any) -> str:
    """A split as the user knows it: ``the split "stratified-test0.2-seed0" of iris@v1``."""
    row = s.execute(select(m.DatasetSplit.name, m.Dataset.name, m.DatasetVersion.version)
                    .join(m.DatasetVersion, m.DatasetVersion.id == m.DatasetSplit.dataset_version_id)
                    .join(m.Dataset, m.Dataset.id == m.DatasetVersion.dataset_id)
                    .where(m.DatasetSplit.id == split_id)).first()
    if row is None:
        return "a test split that is no longer stored"
    return f"the split \"{row[0]}\" of {row[1]}@v{row[2]}"


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _not_comparable(value: Any) -> str | None:
    """Why a recorded metric cannot be compared with a number (a gate then fails), or None when it can."""
    if value is None:
        return "has no recorded value"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"is {value!r}, not a number"
    if math.isnan(value):
        return "is NaN (not a number)"
    if math.isinf(value):
        return f"is {value} (not a finite number)"
    return None


def _beat_reason(key: str, ref: str, cref: str, value: Any, best: Any, higher: bool, where: str) -> str | None:
    """The reason ``ref`` does not beat the champion ``cref`` on ``key`` (evaluated on ``where``), or None."""
    for who, v in ((ref, value), (f"the champion {cref}", best)):
        problem = _not_comparable(v)
        if problem is not None:
            return (f"{key} of {who} {problem} on {where}, so {ref} cannot be shown to beat the champion {cref} "
                    "(a gate fails on a value it cannot compare).")
    if not (value > best if higher else value < best):
        return (f"{key} {_fmt(value)} of {ref} does not beat the champion {cref} "
                f"({_fmt(best)}; {'higher' if higher else 'lower'} is better) on {where}.")
    return None


def _check(s: Session, model: m.RegisteredModel, mv: m.ModelVersion) -> GateReport:
    return _judge(s, model, f"{model.name}@v{mv.version}", mv.metrics or {}, _split_key(s, mv), mv.id,
                  model.gates or {})


def _judge(s: Session, model: m.RegisteredModel | None, ref: str, metrics: dict[str, Any], mine: tuple[Any, str] | None,
           mv_id: int | None, gates: dict[str, Any]) -> GateReport:
    """The gates ``gates`` of ``model`` for a candidate called ``ref`` with these test ``metrics``,
    evaluated on the split ``mine`` (:func:`_split_key`); ``mv_id`` is its version (None for a run
    not registered yet); ``model`` None: the model is not registered yet (there is no champion)."""
    reasons: list[str] = []
    checked: list[str] = []
    for key, minimum in (gates.get("min_metrics") or {}).items():
        checked.append(f"min {key} >= {_fmt(minimum)}")
        value = metrics.get(key)
        problem = _not_comparable(value)
        if value is None:
            reasons.append(f"{ref} has no recorded test metric {key!r} (the gate asks for {key} >= {_fmt(minimum)}).")
        elif problem is not None:
            reasons.append(f"{key} of {ref} {problem}, so it cannot pass the minimum {_fmt(minimum)} (a gate fails "
                           "on a value it cannot compare).")
        elif value < minimum:
            reasons.append(f"{key} {_fmt(value)} of {ref} is below the minimum {_fmt(minimum)}.")
    beat = gates.get("beat_champion")
    if beat:
        key, higher = beat["metric"], beat.get("higher_is_better", True)
        checked.append(f"beat the champion on {key} ({'higher' if higher else 'lower'} is better)")
        row = s.get(m.ModelAlias, (model.id, CHAMPION)) if model is not None else None
        champ = s.get(m.ModelVersion, row.version_id) if row is not None else None
        if champ is None:
            pass  # nothing to beat yet
        elif champ.id == mv_id:  # nothing to beat: it is the champion
            checked[-1] = f"beating the champion on {key} applies to the other versions"
        else:
            assert model is not None
            cref = f"{model.name}@v{champ.version}"
            theirs = _split_key(s, champ)
            value, best = metrics.get(key), (champ.metrics or {}).get(key)
            h2h = None if mine is not None and mine == theirs else _head_to_head(s, model, ref, cref, key)
            reason = None
            if h2h is not None:  # a retraining evaluated both on the same recent rows
                reason = _beat_reason(key, ref, cref, *h2h[:2], higher, h2h[2])
            elif mine is None or theirs is None or mine[0] != theirs[0]:
                reasons.append(
                    f"{ref} cannot be compared with the champion {cref}: they were not evaluated on the same test "
                    f"split ({ref}: {mine[1] if mine else 'no recorded split'}; "
                    f"{cref}: {theirs[1] if theirs else 'no recorded split'}).")
            elif value is None or best is None:
                missing = ref if value is None else cref
                reasons.append(f"{missing} has no recorded test metric {key!r} to compare with.")
            else:
                reason = _beat_reason(key, ref, cref, value, best, higher, mine[1])
            if reason is not None:
                reasons.append(reason)
    is_champion = s.get(m.ModelAlias, (model.id, CHAMPION)) if model is not None else None
    return GateReport(ref=ref, passed=not reasons, reasons=reasons, checked=checked,
                      is_champion=is_champion is not None and is_champion.version_id == mv_id)


def _head_to_head(s: Session, model: m.RegisteredModel, ref: str, cref: str, key: str
                  ) -> tuple[Any, Any, str] | None:
    """``(value of ref, value of cref, where)`` when a retraining registered ``ref`` after evaluating
    it and ``cref`` (the champion it was compared with) on the same held-out recent rows. The values
    are as recorded: None where the metric came out NaN there (the gate then fails, saying so)."""
    events = s.scalars(select(m.AuditEvent).where(
        m.AuditEvent.entity_type == ENTITY, m.AuditEvent.entity_id == str(model.id),
        m.AuditEvent.action == "retrain", m.AuditEvent.to_value == ref).order_by(m.AuditEvent.id.desc())).all()
    for event in events:
        d = event.details or {}
        new_metrics, old_metrics = d.get("metrics_new") or {}, d.get("metrics_champion") or {}
        if d.get("champion") != cref or not isinstance(new_metrics, dict) or not isinstance(old_metrics, dict) \
                or key not in new_metrics or key not in old_metrics:
            continue
        new, old = new_metrics[key], old_metrics[key]
        rows = (d.get("eval_rows") or {}).get("batch_ref") or (d.get("eval_rows") or {}).get("ref") or "the batch"
        n = d.get("n_eval_rows")
        where = (f"the same {n:,} recent rows of {rows}" if isinstance(n, int) else f"the same recent rows of {rows}")
        return new, old, where + f" (retraining after drift check #{d.get('check_id')})"
    return None


def check_gates(store: Store, ref: str) -> GateReport:
    """Whether ``ref`` passes its model's promotion gates, and every reason it does not."""
    with store.session() as s:
        model, mv = _resolve(s, ref)
        return _check(s, model, mv)


def _enforce(s: Session, model: m.RegisteredModel, mv: m.ModelVersion, what: str, *, force: bool,
             comment: str) -> None:
    report = _check(s, model, mv)
    if report.passed:
        return
    if not force:
        raise GateFailed(
            f"The gates of {model.name!r} block {what}: " + " ".join(report.reasons),
            hint="Fix the cause, or override with --force and a --comment saying why (the override is audited).")
    _audit(s, model, "gate_override", version=mv.version, to_value=what, comment=comment,
           details={"reasons": report.reasons})
