"""Promotion gates: what a version must reach before it becomes ``champion`` or goes to Production.

``min_metrics`` (each recorded test metric at least its minimum) and ``beat_champion`` (the
version's test metric strictly better than the current champion's, evaluated on the same test
split, or on the same held-out recent rows of a retraining). Gates fail closed: a metric that is
missing, NaN, infinite or not a number never passes, and the reason says which value it was.

Fairness gates: ``sensitive_columns`` (the columns whose groups the evidence compares; a column a
``fairness`` rule names is added) and ``fairness`` rules ``{"column", "metric", "max_gap"}`` and/or
``"min_ratio"``, checked against the version's latest evidence (:mod:`.review.evidence`): no
evidence, a column or metric not in it, or fewer than two groups with a value all fail, saying
how to compute it (``modelyard model evidence REF``). A run not registered yet has no evidence:
its fairness rules are listed as checked when it is promoted.
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
    unknown = set(gates) - {"min_metrics", "beat_champion", "sensitive_columns", "fairness"}
    if unknown:
        raise ModelyardError(f"Unknown {'gate' if len(unknown) == 1 else 'gates'}: {', '.join(sorted(unknown))}.",
                             hint="The gates are min_metrics, beat_champion, sensitive_columns and fairness.")
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
    out.update(_validate_fairness(gates.get("sensitive_columns"), gates.get("fairness")))
    return out


def _validate_fairness(columns: Any, rules: Any) -> dict[str, Any]:
    """``sensitive_columns`` and ``fairness`` cleaned; every message names the field and what to write."""
    from modelyard.core.registry.review.stats import GROUP_METRICS

    out: dict[str, Any] = {}
    clean_columns: list[str] = []
    if columns:
        if isinstance(columns, str):
            columns = [columns]
        if not isinstance(columns, list | tuple):
            raise ModelyardError("sensitive_columns must be a list of column names, as in [\"sex\", \"age_band\"].")
        for c in columns:
            if not isinstance(c, str) or not c.strip():
                raise ModelyardError(f"sensitive_columns holds {c!r}, which is not a column name.")
            if c.strip() not in clean_columns:
                clean_columns.append(c.strip())
    clean_rules: list[dict[str, Any]] = []
    if rules:
        if isinstance(rules, dict):
            rules = [rules]
        if not isinstance(rules, list | tuple):
            raise ModelyardError("fairness must be a list of rules like {\"column\": \"sex\", \"metric\": \"accuracy\", "
                                 "\"max_gap\": 0.05}.")
        for rule in rules:
            if not isinstance(rule, dict):
                raise ModelyardError(f"A fairness rule must be a mapping like {{\"column\": \"sex\", \"metric\": "
                                     f"\"accuracy\", \"max_gap\": 0.05}}, not {rule!r}.")
            extra = set(rule) - {"column", "metric", "max_gap", "min_ratio"}
            if extra:
                raise ModelyardError(f"A fairness rule has unknown keys {', '.join(sorted(map(str, extra)))}; it takes "
                                     "column, metric, max_gap and min_ratio.")
            column, metric = rule.get("column"), rule.get("metric")
            if not isinstance(column, str) or not column.strip():
                raise ModelyardError(f"The fairness rule {rule} needs a column, as in \"column\": \"sex\".")
            if not isinstance(metric, str) or metric.strip() not in GROUP_METRICS:
                raise ModelyardError(f"The fairness rule on {column} needs a metric, one of {', '.join(GROUP_METRICS)} "
                                     f"(not {metric!r}).")
            clean: dict[str, Any] = {"column": column.strip(), "metric": metric.strip()}
            if rule.get("max_gap") is None and rule.get("min_ratio") is None:
                raise ModelyardError(f"The fairness rule on {metric} of {column} needs max_gap (e.g. 0.05) or "
                                     "min_ratio (e.g. 0.8).")
            for key, low, high in (("max_gap", 0.0, math.inf), ("min_ratio", 0.0, 1.0)):
                if rule.get(key) is None:
                    continue
                value = rule[key]
                if isinstance(value, bool) or not isinstance(value, int | float | str):
                    raise ModelyardError(f"{key} of the fairness rule on {metric} of {column} must be a number, "
                                         f"not {value!r}.")
                try:
                    number = float(value)
                except ValueError:
                    raise ModelyardError(f"{key} of the fairness rule on {metric} of {column} must be a number, "
                                         f"not {value!r}.") from None
                if not low <= number <= high:
                    raise ModelyardError(f"{key} of the fairness rule on {metric} of {column} must be between "
                                         f"{_fmt(low)} and {_fmt(high)}, not {value!r}.")
                clean[key] = number
            clean_rules.append(clean)
            if clean["column"] not in clean_columns:
                clean_columns.append(clean["column"])
    if clean_columns:
        out["sensitive_columns"] = clean_columns
    if clean_rules:
        out["fairness"] = clean_rules
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
    reasons.extend(_judge_fairness(s, ref, mv_id, gates.get("fairness") or [], checked))
    is_champion = s.get(m.ModelAlias, (model.id, CHAMPION)) if model is not None else None
    return GateReport(ref=ref, passed=not reasons, reasons=reasons, checked=checked,
                      is_champion=is_champion is not None and is_champion.version_id == mv_id)


def _rule_label(rule: dict[str, Any]) -> str:
    parts = []
    if rule.get("max_gap") is not None:
        parts.append(f"gap at most {_fmt(rule['max_gap'])}")
    if rule.get("min_ratio") is not None:
        parts.append(f"ratio at least {_fmt(rule['min_ratio'])}")
    return f"{rule['metric']} between groups of {rule['column']}: {' and '.join(parts)}"


def _judge_fairness(s: Session, ref: str, mv_id: int | None, rules: list[dict[str, Any]],
                    checked: list[str]) -> list[str]:
    """The reasons the fairness ``rules`` fail on ``ref``'s latest evidence (fail closed)."""
    if not rules:
        return []
    if mv_id is None:  # a run not registered yet: its evidence comes after registering
        checked.extend(f"{_rule_label(r)} (checked on the evidence when it is promoted)" for r in rules)
        return []
    from modelyard.core.registry.review.evidence import latest_evidence_of
    from modelyard.core.store.records import STORE_KEY

    store = s.info.get(STORE_KEY)
    evidence = latest_evidence_of(s, store, mv_id) if store is not None else None
    doc = evidence.payload if evidence is not None else None
    how = f"modelyard model evidence {ref}"
    reasons: list[str] = []
    if doc is None:
        checked.extend(_rule_label(r) for r in rules)
        return [f"{ref} has no evidence to check the fairness gates on; compute it with '{how}'."]
    sections = {g.get("column"): g for g in doc.get("groups") or [] if isinstance(g, dict)}
    for rule in rules:
        checked.append(_rule_label(rule))
        column, metric = rule["column"], rule["metric"]
        section = sections.get(column)
        if section is None:
            reasons.append(f"The evidence of {ref} has no groups of {column}; compute it again with "
                           f"'{how} --sensitive {column}'.")
            continue
        gap = (section.get("gaps") or {}).get(metric)
        if gap is None:
            have = ", ".join(sorted(section.get("gaps") or {})) or "none"
            reasons.append(f"The evidence of {ref} has no {metric} for the groups of {column} (it has {have}), so the "
                           f"fairness gate on it cannot pass; compute it again with '{how}'.")
            continue
        values = {r.get("group"): ((r.get("metrics") or {}).get(metric) or {}).get("value")
                  for r in section.get("rows") or []}
        worst, best = gap.get("worst"), gap.get("best")
        between = (f" ({worst} {_fmt3(values.get(worst))}, {best} {_fmt3(values.get(best))})"
                   if worst is not None and best is not None else "")
        for key, word, bad in (("max_gap", "gap", lambda v, lim: v > lim), ("min_ratio", "ratio", lambda v, lim: v < lim)):
            if rule.get(key) is None:
                continue
            value = gap.get("gap" if key == "max_gap" else "ratio")
            limit = rule[key]
            if _not_comparable(value) is not None:
                reasons.append(f"The {metric} {word} between groups of {column} in the evidence of {ref} is not a "
                               f"number (fewer than two groups have a value), so it cannot pass the "
                               f"{'maximum' if key == 'max_gap' else 'minimum'} {_fmt(limit)}.")
            elif bad(value, limit):
                reasons.append(f"{metric} {word} between groups of {column} is {_fmt3(value)}{between}, "
                               f"{'above the maximum' if key == 'max_gap' else 'below the minimum'} {_fmt(limit)}.")
    return reasons


def _fmt3(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) and not isinstance(value, bool) else "?"


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
