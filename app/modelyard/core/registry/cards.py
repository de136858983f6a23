"""Model cards: what a model version is for, what it was trained on, how well it does (overall
and per group), what it takes and gives, where it came from and whether its data has drifted.

::

    from modelyard.core.registry import cards

    card = cards.model_card(store, "churn@v3")          # a JSON-able dict (below)
    cards.set_card_notes(store, "churn@v3", intended_use="Monthly churn scoring of retail customers.",
                         known_limitations="Not tested on business customers.",
                         comment="first card")          # audited: edit_card; the card's revision + 1
    cards.card_history(store, "churn@v3")               # each edit: who, when, why, from and to
    html = cards.render_html(card)                      # one self-contained page
    cards.export_html(store, "churn@v3", "churn-v3.html")

The card (:func:`model_card`) is built from the version's record, its run (params and the
artifacts ``evaluation/slices.json`` and ``reproducibility.json``, see
:mod:`modelyard.core.experiments.training.train`), its dataset version and split, its lineage graph
(:mod:`modelyard.core.registry.lineage`), its latest drift check, its latest evidence
(:mod:`modelyard.core.registry.review.evidence`), its gates' verdict and its promotion requests::

    {"ref", "name", "version", "model_id", "version_id", "stage", "aliases", "source", "description",
     "created_at", "created_by", "model_sha256", "bundle": {..} | None,
     "notes": {"intended_use", "out_of_scope_uses", "known_limitations", "ethical_considerations", "notes"},
     "notes_revision": int,                         # 0 until the texts are first written, + 1 each edit
     "review_missing": [label],                     # the REVIEW_FIELDS still empty (a request needs them)
     "card_history": [{"revision", "at", "by", "comment", "fields", "from", "to"}],   # newest first
     "evidence": {"document": {the evidence document}, "id", "sha256", "champion", "created_at",
                  "created_by"} | None,             # the latest evidence (docs/governance.md)
     "gates": {the model's gate settings}, "gate_report": GateReport.to_json(),
     "requests": [{"id", "target", "replaces", "reason", "requested_by", "requested_at", "status",
                   "decided_by", "decided_at", "decision_comment"}],            # oldest first
     "run": {"run_id", "name", "experiment", "status", "start_time", "end_time", "user", "source_type"} | None,
     "data": {"dataset", "version", "ref", "dataset_version_id", "n_rows", "n_cols", "target", "task",
              "source_file", "content_hash", "features", "dropped_missing_target",
              "split": {"id", "name", "method", "seed", "test", "validation", "column", "counts"} | None} | None,
     "metrics": {name: value},                      # the version's test metrics
     "slices": {"metric", "greater_is_better", "columns": [{"column", "groups": [{"value", "n", "metrics"}],
                "best", "worst", "gap"}]} | None,   # per-group metrics and their gap
     "params": {name: text},
     "signature": {"inputs": [{"name", "dtype", "type", "step"}], "target": {..}, "output": {..}} | None,
     "lineage": {"columns": [[{"id", "type", "label", "role"}]], "counts": {type: n}, "hidden": {..}},
     "drift": {"check_id", "verdict", "drift_share", "created_at", "created_by", "batch", "n_checks"} | None,
     "reproducibility": {"python", "python_implementation", "platform", "system", "machine", "modelyard",
                         "threads", "seed", "packages", "git", "data_hash", "content_hash"} | None,
     "generated_at"}

A version with no run in this store (imported from a bundle) takes ``params``, ``slices``,
``reproducibility`` and ``data`` from its ``ModelVersion.card`` when the import put them there.

:func:`render_html` (:mod:`modelyard.core.registry.card_html`) writes the card as one
self-contained page that reads the same in a browser and in Qt's ``QTextBrowser``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.outputs import write_replacing
from modelyard.core.registry import gates, lineage
from modelyard.core.registry.card_html import (
    CLI_EDIT_HINT,
    WINDOW_EDIT_HINT,
    render_html,
)
from modelyard.core.registry.refs import ENTITY
from modelyard.core.registry.review.evidence import latest_evidence_of
from modelyard.core.registry.versions import (
    ModelVersionInfo,
    _audit,
    _need_comment,
    _resolve,
    _version_info,
)
from modelyard.core.store import Store, lookup
from modelyard.core.store import models as m

__all__ = ["CLI_EDIT_HINT", "NOTES_FIELDS", "NOTES_MAX", "REVIEW_FIELDS", "WINDOW_EDIT_HINT", "card_history",
           "export_html", "missing_review_fields", "model_card", "render_html", "set_card_notes", "write_html"]

NOTES_MAX = 20_000
# the card's fields a reviewer expects and Modelyard cannot infer: all four are needed before a
# promotion can be requested (modelyard.core.registry.review.requests); key -> label
REVIEW_FIELDS: dict[str, str] = {"intended_use": "Intended use", "out_of_scope_uses": "Out-of-scope uses",
                                 "known_limitations": "Known limitations",
                                 "ethical_considerations": "Ethical considerations"}
# every text of the card the user writes, in the order the card shows them: the review fields, then free notes
NOTES_FIELDS: dict[str, str] = REVIEW_FIELDS | {"notes": "Notes"}
SLICES_PATH = "evaluation/slices.json"
REPRO_PATH = "reproducibility.json"
_REPRO_KEYS = ("python", "python_implementation", "platform", "system", "machine", "modelyard", "threads", "seed",
               "packages", "git")


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# =========================================================================== the card


def _model_and_version(s: Any, ref: str | int) -> tuple[m.RegisteredModel, m.ModelVersion]:
    """The model and version ``ref`` names (``NAME@vN``, ``NAME@ALIAS``, ``NAME``) or its integer id."""
    if isinstance(ref, int):
        mv = lookup.model_version_by_id(s, ref)
        model = s.get(m.RegisteredModel, mv.model_id)
        assert model is not None
        return model, mv
    return _resolve(s, ref)


def model_card(store: Store, ref: str | int) -> dict[str, Any]:
    """The card of one version (``NAME@vN``, ``NAME@ALIAS``, ``NAME``, or its integer id)."""
    from modelyard._version import __version__

    with store.session() as s:
        model, mv = _model_and_version(s, ref)
        info = _version_info(s, model, mv)
        stored = dict(mv.card or {})
        run = s.get(m.Run, mv.run_id) if mv.run_id is not None else None
        run_facts = params = arts = None
        if run is not None:
            experiment = s.scalar(select(m.Experiment.name).where(m.Experiment.id == run.experiment_id))
            run_facts = {"run_id": run.uuid, "name": run.name, "experiment": experiment, "status": run.status,
                         "start_time": _iso(run.start_time), "end_time": _iso(run.end_time), "user": run.user,
                         "source_type": run.source_type}
            params = dict(sorted(s.execute(select(m.Param.key, m.Param.value).where(m.Param.run_id == run.id)).all()))
            arts = dict(s.execute(select(m.RunArtifact.path, m.RunArtifact.sha256).where(
                m.RunArtifact.run_id == run.id, m.RunArtifact.path.in_([SLICES_PATH, REPRO_PATH]))).all())
        # only this store's links: an imported version's card may carry ids of the store it came from
        dv = s.get(m.DatasetVersion, mv.dataset_version_id) if mv.dataset_version_id is not None else None
        dataset_name = s.scalar(select(m.Dataset.name).where(m.Dataset.id == dv.dataset_id)) if dv else None
        split = s.get(m.DatasetSplit, run.split_id) if run is not None and run.split_id is not None else None
        c = m.MonitoringCheck
        check = s.scalars(select(c).where(c.model_version_id == mv.id)
                          .order_by(c.created_at.desc(), c.id.desc()).limit(1)).first()
        drift = None
        if check is not None:
            n_checks = s.scalar(select(func.count()).select_from(c).where(c.model_version_id == mv.id))
            batch = None
            if check.batch_dataset_version_id is not None:
                row = s.execute(select(m.Dataset.name, m.DatasetVersion.version)
                                .join(m.Dataset, m.Dataset.id == m.DatasetVersion.dataset_id)
                                .where(m.DatasetVersion.id == check.batch_dataset_version_id)).first()
                batch = f"{row.name}@v{row.version}" if row is not None else None
            drift = {"check_id": check.id, "verdict": check.verdict, "drift_share": check.drift_share,
                     "created_at": _iso(check.created_at), "created_by": check.created_by, "batch": batch,
                     "n_checks": n_checks}
        model_id, version_id = model.id, mv.id
        found = latest_evidence_of(s, store, mv.id)
        evidence = ({"document": found.payload, "id": found.id, "sha256": found.sha256, "champion": found.champion,
                     "created_at": _iso(found.created_at), "created_by": found.created_by}
                    if found is not None else None)
        model_gates = dict(model.gates or {})
        requests = _requests_of(s, model, mv)
        history = _history(s, model, mv)

    slices = store.artifacts.read_json((arts or {}).get(SLICES_PATH), missing_ok=True) if arts is not None else stored.get("slices")
    repro = store.artifacts.read_json((arts or {}).get(REPRO_PATH), missing_ok=True) if arts is not None else stored.get("reproducibility")
    if params is None:
        params = {str(k): str(v) for k, v in (stored.get("params") or {}).items()}
    graph = lineage.version_lineage(store, version_id)
    notes = stored.get("notes") if isinstance(stored.get("notes"), dict) else {}
    report = gates.check_gates(store, info.ref)
    signature = info.signature or None
    return {
        "ref": info.ref, "name": info.name, "version": info.version, "model_id": model_id, "version_id": version_id,
        "stage": info.stage, "aliases": info.aliases, "source": info.source, "description": info.description,
        "created_at": _iso(info.created_at), "created_by": info.created_by, "model_sha256": info.model_sha256,
        "bundle": stored.get("bundle"),
        "notes": _notes_of(notes), "notes_revision": _revision_of(stored),
        "review_missing": missing_review_fields(stored), "card_history": history,
        "evidence": evidence, "gates": model_gates, "gate_report": report.to_json(), "requests": requests,
        "run": run_facts,
        "data": _data(dv, dataset_name, split, repro, signature, stored),
        "metrics": dict(info.metrics),
        "slices": slices if isinstance(slices, dict) and slices.get("columns") else None,
        "params": params,
        "signature": ({k: signature.get(k) for k in ("inputs", "target", "output")}
                      if isinstance(signature, dict) else None),
        "lineage": _lineage_summary(graph),
        "drift": drift,
        "reproducibility": _repro(repro),
        "modelyard": __version__,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _data(dv: m.DatasetVersion | None, dataset_name: str | None, split: m.DatasetSplit | None, repro: Any,
          signature: Any, stored: dict[str, Any]) -> dict[str, Any] | None:
    recorded = repro.get("dataset") if isinstance(repro, dict) and isinstance(repro.get("dataset"), dict) else {}
    features = repro.get("features") if isinstance(repro, dict) else None
    if features is None and isinstance(signature, dict):
        features = [i.get("name") for i in signature.get("inputs") or [] if isinstance(i, dict)]
    split_facts = None
    if split is not None:
        spec = dict(split.spec or {})
        split_facts = {"id": split.id, "name": split.name, "method": split.method, "seed": split.seed,
                       "test": spec.get("test"), "validation": spec.get("validation"), "column": spec.get("column"),
                       "counts": dict(spec.get("counts") or {})}
    elif isinstance(repro, dict) and isinstance(repro.get("split"), dict):
        split_facts = {k: repro["split"].get(k) for k in ("id", "name", "method", "seed", "test", "validation",
                                                          "column", "counts")}
    if dv is not None:
        return {"dataset": dataset_name, "version": dv.version, "ref": f"{dataset_name}@v{dv.version}",
                "dataset_version_id": dv.id, "n_rows": dv.n_rows, "n_cols": dv.n_cols, "target": dv.target,
                "task": dv.task, "source_file": lineage._basename(dv.source_path) if dv.source_path else None,
                "content_hash": dv.content_hash, "features": features,
                "dropped_missing_target": recorded.get("dropped_missing_target"), "split": split_facts}
    if recorded:
        return {"dataset": recorded.get("name"), "version": recorded.get("version"), "ref": recorded.get("ref"),
                "dataset_version_id": recorded.get("dataset_version_id"), "n_rows": recorded.get("n_rows"),
                "n_cols": None, "target": repro.get("target"), "task": repro.get("task"), "source_file": None,
                "content_hash": recorded.get("content_hash"), "features": features,
                "dropped_missing_target": recorded.get("dropped_missing_target"), "split": split_facts}
    data = stored.get("data")
    return dict(data) if isinstance(data, dict) else None


def _repro(repro: Any) -> dict[str, Any] | None:
    if not isinstance(repro, dict):
        return None
    out = {k: repro.get(k) for k in _REPRO_KEYS}
    recorded = repro.get("dataset") if isinstance(repro.get("dataset"), dict) else {}
    out["data_hash"] = recorded.get("data_hash")
    out["content_hash"] = recorded.get("content_hash")
    return out


def _lineage_summary(graph: lineage.LineageGraph) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for n in graph.nodes:
        counts[n.type] = counts.get(n.type, 0) + 1
    return {"columns": [[{"id": n.id, "type": n.type, "label": n.label, "role": n.role} for n in col]
                        for col in graph.columns()],
            "counts": counts, "hidden": dict(graph.hidden)}


# =========================================================================== notes


def missing_review_fields(card: dict[str, Any] | None) -> list[str]:
    """The labels of :data:`REVIEW_FIELDS` the stored card (``ModelVersion.card``) leaves empty."""
    notes = (card or {}).get("notes")
    notes = notes if isinstance(notes, dict) else {}
    return [label for key, label in REVIEW_FIELDS.items() if not str(notes.get(key) or "").strip()]



def _clean_note(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ModelyardError(f"The {what} must be text, not {type(value).__name__}.")
    text = value.replace("\r\n", "\n").strip()
    if len(text) > NOTES_MAX:
        raise ModelyardError(f"The {what} is too long ({len(text):,} characters, at most {NOTES_MAX:,}).",
                             hint="Shorten it, or link to a longer document from it.")
    return text


def _notes_of(notes: dict[str, Any] | None) -> dict[str, str]:
    """Every user-written text of a stored card (:data:`NOTES_FIELDS`), "" when not written."""
    notes = notes if isinstance(notes, dict) else {}
    return {key: str(notes.get(key) or "") for key in NOTES_FIELDS}


def _revision_of(stored: dict[str, Any] | None) -> int:
    value = (stored or {}).get("notes_revision")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def set_card_notes(store: Store, ref: str, *, intended_use: str | None = None, notes: str | None = None,
                   out_of_scope_uses: str | None = None, known_limitations: str | None = None,
                   ethical_considerations: str | None = None, comment: str | None) -> ModelVersionInfo:
    """Set the card's user-written texts (:data:`NOTES_FIELDS`: the four review fields and free
    notes; ``None`` leaves a text as it is, ``""`` clears it).

    One transaction with an audit event ``edit_card`` (from and to: the texts as JSON; the details
    name the version, the changed fields and the card's new ``revision``). Each real edit bumps the
    card's ``notes_revision`` (stored in ``ModelVersion.card``); setting the texts they already
    have changes nothing and records nothing.
    """
    given = {"intended_use": intended_use, "out_of_scope_uses": out_of_scope_uses,
             "known_limitations": known_limitations, "ethical_considerations": ethical_considerations,
             "notes": notes}
    if all(v is None for v in given.values()):
        raise ModelyardError("Nothing to change on the model card.",
                             hint="Give a text to set, e.g. --intended-use TEXT, --out-of-scope-uses TEXT, "
                                  "--known-limitations TEXT, --ethical-considerations TEXT or --notes TEXT.")
    new_values = {key: _clean_note(value, NOTES_FIELDS[key].lower()) for key, value in given.items()
                  if value is not None}
    comment = _need_comment(comment, "Editing the model card")
    with store.write() as s:
        model, mv = _resolve(s, ref)
        card = dict(mv.card or {})
        old = _notes_of(card.get("notes"))
        new = old | new_values
        if new == old:
            return _version_info(s, model, mv)
        revision = _revision_of(card) + 1
        card["notes"] = new
        card["notes_revision"] = revision
        mv.card = card
        _audit(s, model, "edit_card", version=mv.version, from_value=json.dumps(old, ensure_ascii=False),
               to_value=json.dumps(new, ensure_ascii=False), comment=comment,
               details={"fields": sorted(k for k in new if new[k] != old[k]), "revision": revision})
        s.flush()
        return _version_info(s, model, mv)


def _texts(value: str | None) -> dict[str, str]:
    try:
        loaded = json.loads(value) if value else {}
    except ValueError:
        loaded = {}
    return _notes_of(loaded if isinstance(loaded, dict) else {})


def _history(s: Any, model: m.RegisteredModel, mv: m.ModelVersion) -> list[dict[str, Any]]:
    a = m.AuditEvent
    events = s.scalars(select(a).where(a.entity_type == ENTITY, a.entity_id == str(model.id),
                                       a.action == "edit_card").order_by(a.id)).all()
    out: list[dict[str, Any]] = []
    for e in events:
        details = e.details or {}
        if details.get("version") != mv.version:
            continue
        before, after = _texts(e.from_value), _texts(e.to_value)
        revision = details.get("revision")
        out.append({"revision": revision if isinstance(revision, int) else len(out) + 1,
                    "at": _iso(e.at), "by": e.actor, "comment": e.comment,
                    "fields": [k for k in NOTES_FIELDS if before[k] != after[k]], "from": before, "to": after})
    return out[::-1]


def card_history(store: Store, ref: str | int) -> list[dict[str, Any]]:
    """The edits of a version's card, newest first, from its audit events ``edit_card``:
    ``{"revision", "at", "by", "comment", "fields", "from": {field: text}, "to": {field: text}}``
    (``fields``: the keys of :data:`NOTES_FIELDS` the edit changed; an edit made before revisions
    were counted gets its place in the order)."""
    with store.session() as s:
        model, mv = _model_and_version(s, ref)
        return _history(s, model, mv)


def _requests_of(s: Any, model: m.RegisteredModel, mv: m.ModelVersion) -> list[dict[str, Any]]:
    """The promotion requests made for ``mv``, oldest first, and their decisions."""
    r = m.PromotionRequest
    rows = s.scalars(select(r).where(r.version_id == mv.id).order_by(r.id)).all()
    numbers = dict(s.execute(select(m.ModelVersion.id, m.ModelVersion.version).where(
        m.ModelVersion.id.in_({row.replaces_version_id for row in rows if row.replaces_version_id}))).all())
    return [{"id": row.id, "target": row.target,
             "replaces": f"{model.name}@v{numbers[row.replaces_version_id]}"
             if row.replaces_version_id in numbers else None,
             "reason": row.reason, "requested_by": row.requested_by, "requested_at": _iso(row.requested_at),
             "status": row.status, "decided_by": row.decided_by, "decided_at": _iso(row.decided_at),
             "decision_comment": row.decision_comment} for row in rows]


# =========================================================================== HTML


def write_html(card: dict[str, Any], path: str | os.PathLike[str], *, edit_hint: str | None = None) -> Path:
    """Write :func:`render_html` of ``card`` to ``path`` (a temp file in the same folder, then renamed)."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise ModelyardError(f"{target} is a folder.", hint="Give a file name, e.g. card.html.")
    page = render_html(card, edit_hint=edit_hint)
    write_replacing(target, lambda tmp: tmp.write_text(page, encoding="utf-8"), what="the model card")
    return target.resolve()


def export_html(store: Store, ref: str | int, path: str | os.PathLike[str], *, edit_hint: str | None = None) -> Path:
    """Write the card of ``ref`` to ``path`` as one HTML page (temp file, then renamed)."""
    return write_html(model_card(store, ref), path, edit_hint=edit_hint)
