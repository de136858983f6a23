"""Model cards: what a model version is for, what it was trained on, how well it does (overall
and per group), what it takes and gives, where it came from and whether its data has drifted.

::

    from modelyard.core.registry import cards

    card = cards.model_card(store, "churn@v3")          # a JSON-able dict (below)
    cards.set_card_notes(store, "churn@v3", intended_use="Monthly churn scoring of retail customers.",
                         comment="first card")          # audited: edit_card
    html = cards.render_html(card)                      # one self-contained page
    cards.export_html(store, "churn@v3", "churn-v3.html")

The card (:func:`model_card`) is built from the version's record, its run (params and the
artifacts ``evaluation/slices.json`` and ``reproducibility.json``, see
:mod:`modelyard.core.experiments.training.train`), its dataset version and split, its lineage graph
(:mod:`modelyard.core.registry.lineage`) and its latest drift check::

    {"ref", "name", "version", "model_id", "version_id", "stage", "aliases", "source", "description",
     "created_at", "created_by", "model_sha256", "bundle": {..} | None,
     "notes": {"intended_use": str, "notes": str},
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

:func:`render_html` writes HTML 4 with tables, headings, paragraphs and inline styles only (no
script, no external resource, no flexbox or grid), so the same page reads well in a browser and
in Qt's ``QTextBrowser``; per-group bars are table cells with a background colour. Every text
from the store is escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.outputs import write_replacing
from modelyard.core.registry import lineage
from modelyard.core.registry.versions import (
    ModelVersionInfo,
    _audit,
    _need_comment,
    _resolve,
    _version_info,
)
from modelyard.core.store import Store, lookup
from modelyard.core.store import models as m

__all__ = ["NOTES_MAX", "REVIEW_FIELDS", "export_html", "model_card", "missing_review_fields", "render_html",
           "set_card_notes", "write_html"]

NOTES_MAX = 20_000
# the card's fields a reviewer expects and Modelyard cannot infer: all four are needed before a
# promotion can be requested (modelyard.core.registry.review.requests); key -> label
REVIEW_FIELDS: dict[str, str] = {"intended_use": "Intended use", "out_of_scope_uses": "Out-of-scope uses",
                                 "known_limitations": "Known limitations",
                                 "ethical_considerations": "Ethical considerations"}
SLICES_PATH = "evaluation/slices.json"
REPRO_PATH = "reproducibility.json"
_REPRO_KEYS = ("python", "python_implementation", "platform", "system", "machine", "modelyard", "threads", "seed",
               "packages", "git")
_METRICS_0_1 = frozenset({"accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc",
                          "r2"})
_GREATER = {"accuracy": True, "balanced_accuracy": True, "precision_macro": True, "recall_macro": True,
            "f1_macro": True, "roc_auc": True, "log_loss": False, "rmse": False, "mae": False, "r2": True,
            "mape": False}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# =========================================================================== the card


def model_card(store: Store, ref: str | int) -> dict[str, Any]:
    """The card of one version (``NAME@vN``, ``NAME@ALIAS``, ``NAME``, or its integer id)."""
    from modelyard._version import __version__

    with store.session() as s:
        if isinstance(ref, int):
            mv = lookup.model_version_by_id(s, ref)
            model = s.get(m.RegisteredModel, mv.model_id)
            assert model is not None
        else:
            model, mv = _resolve(s, ref)
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

    slices = store.artifacts.read_json((arts or {}).get(SLICES_PATH), missing_ok=True) if arts is not None else stored.get("slices")
    repro = store.artifacts.read_json((arts or {}).get(REPRO_PATH), missing_ok=True) if arts is not None else stored.get("reproducibility")
    if params is None:
        params = {str(k): str(v) for k, v in (stored.get("params") or {}).items()}
    graph = lineage.version_lineage(store, version_id)
    notes = stored.get("notes") if isinstance(stored.get("notes"), dict) else {}
    signature = info.signature or None
    return {
        "ref": info.ref, "name": info.name, "version": info.version, "model_id": model_id, "version_id": version_id,
        "stage": info.stage, "aliases": info.aliases, "source": info.source, "description": info.description,
        "created_at": _iso(info.created_at), "created_by": info.created_by, "model_sha256": info.model_sha256,
        "bundle": stored.get("bundle"),
        "notes": {"intended_use": str(notes.get("intended_use") or ""), "notes": str(notes.get("notes") or "")},
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


def set_card_notes(store: Store, ref: str, *, intended_use: str | None = None, notes: str | None = None,
                   comment: str | None) -> ModelVersionInfo:
    """Set the card's user-written texts (``None`` leaves a text as it is; ``""`` clears it).

    One transaction with an audit event ``edit_card`` (from and to: the notes as JSON; the
    details name the version and the changed fields). Setting the texts they already have
    changes nothing and records nothing.
    """
    if intended_use is None and notes is None:
        raise ModelyardError("Nothing to change on the model card.",
                             hint="Give the intended use (--intended-use TEXT) or notes (--notes TEXT).")
    new_values = {}
    if intended_use is not None:
        new_values["intended_use"] = _clean_note(intended_use, "intended use")
    if notes is not None:
        new_values["notes"] = _clean_note(notes, "notes")
    comment = _need_comment(comment, "Editing the model card")
    with store.write() as s:
        model, mv = _resolve(s, ref)
        card = dict(mv.card or {})
        old_notes = card.get("notes") if isinstance(card.get("notes"), dict) else {}
        old = {"intended_use": str(old_notes.get("intended_use") or ""), "notes": str(old_notes.get("notes") or "")}
        new = old | new_values
        if new == old:
            return _version_info(s, model, mv)
        card["notes"] = new
        mv.card = card
        _audit(s, model, "edit_card", version=mv.version, from_value=json.dumps(old, ensure_ascii=False),
               to_value=json.dumps(new, ensure_ascii=False), comment=comment,
               details={"fields": sorted(k for k in new if new[k] != old[k])})
        s.flush()
        return _version_info(s, model, mv)


# =========================================================================== HTML

# light status colours of modelyard.ui.common.theme (the core cannot import the UI)
_STATUS = {"ok": "#1a7f37", "succeeded": "#1a7f37", "warning": "#9a6700", "drift": "#bc4c00", "error": "#cf222e",
           "failed": "#cf222e", "running": "#1f6feb", "interrupted": "#8250df"}
_TEXT = "#1f2328"
_MUTED = "#59636e"
_RULE = "#d1d9e0"
_HEAD_BG = "#f6f8fa"
_BAR = "#4c72b0"
_BAR_BEST = "#2da44e"
_BAR_WORST = "#e16f24"
_BAR_TRACK = "#eaeef2"
_FONT = "'Segoe UI', 'Helvetica Neue', Helvetica, Arial, sans-serif"

_CSS = f"""
body {{ font-family: {_FONT}; font-size: 14px; color: {_TEXT}; background-color: #ffffff; margin: 24px; }}
h1 {{ font-size: 24px; margin: 0 0 4px 0; }}
h2 {{ font-size: 17px; margin: 22px 0 6px 0; padding-bottom: 3px; border-bottom: 1px solid {_RULE}; }}
h3 {{ font-size: 14px; margin: 14px 0 4px 0; }}
p {{ margin: 4px 0 8px 0; }}
table.grid {{ border-collapse: collapse; }}
table.grid th {{ text-align: left; background-color: {_HEAD_BG}; border: 1px solid {_RULE}; font-weight: 600; }}
table.grid td {{ border: 1px solid {_RULE}; vertical-align: top; }}
td.num {{ text-align: right; font-family: Menlo, Consolas, 'DejaVu Sans Mono', monospace; }}
.muted {{ color: {_MUTED}; }}
code {{ font-family: Menlo, Consolas, 'DejaVu Sans Mono', monospace; font-size: 13px; }}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def _when(value: Any) -> str:
    if not value:
        return ""
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M UTC")


def _paragraphs(text: str) -> str:
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    return "".join(f"<p>{_e(b).replace(chr(10), '<br>')}</p>" for b in blocks)


def _muted(text: str) -> str:
    return f'<p><font color="{_MUTED}"><i>{_e(text)}</i></font></p>'


def _badge(text: str, colour: str) -> str:
    return (f'<span style="background-color: {colour}; color: #ffffff; font-weight: 600;">'
            f'&nbsp;{_e(text)}&nbsp;</span>')


def _kv(rows: list[tuple[str, str]]) -> str:
    """A two-column table of label / value (values are HTML already)."""
    body = "".join(f'<tr><th width="200" align="left" bgcolor="{_HEAD_BG}">{_e(k)}</th><td>{v}</td></tr>'
                   for k, v in rows if v not in (None, ""))
    return (f'<table class="grid" border="1" cellspacing="0" cellpadding="5" width="100%" '
            f'style="border-color: {_RULE};">{body}</table>')


def _grid(headers: list[str], rows: list[list[str]], *, numeric: set[int] | None = None,
          widths: dict[int, str] | None = None, width: str = "100%") -> str:
    numeric, widths = numeric or set(), widths or {}
    head = "".join(f'<th align="{"right" if i in numeric else "left"}" bgcolor="{_HEAD_BG}"'
                   + (f' width="{widths[i]}"' if i in widths else "") + f">{_e(h)}</th>"
                   for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(
        f'<td class="num" align="right">{c or "&nbsp;"}</td>' if i in numeric else f"<td>{c or '&nbsp;'}</td>"
        for i, c in enumerate(r))
        + "</tr>" for r in rows)
    return (f'<table class="grid" border="1" cellspacing="0" cellpadding="5" width="{width}" '
            f'style="border-color: {_RULE};"><tr>{head}</tr>{body}</table>')


def _bar(share: float, colour: str) -> str:
    """A horizontal bar of ``share`` (0..1) of its cell: two table cells with background colours."""
    pct = max(0, min(100, round(share * 100)))
    cells = []
    if pct > 0:
        cells.append(f'<td width="{pct}%" bgcolor="{colour}" style="background-color: {colour};">&nbsp;</td>')
    if pct < 100:
        cells.append(f'<td width="{100 - pct}%" bgcolor="{_BAR_TRACK}" style="background-color: {_BAR_TRACK};">'
                     "&nbsp;</td>")
    return ('<table width="100%" border="0" cellspacing="0" cellpadding="0" style="font-size: 9px;"><tr>'
            + "".join(cells) + "</tr></table>")


def _section(title: str, body: str) -> str:
    return f"<h2>{_e(title)}</h2>{body}"


def _slices_html(slices: dict[str, Any] | None) -> str:
    if not slices:
        return _muted("No per-group metrics: the run was not trained with slice columns "
                      "(train with --slice COLUMN to see how the model does for each group).")
    metric = str(slices.get("metric") or "")
    greater = bool(slices.get("greater_is_better", _GREATER.get(metric, True)))
    parts = [(f'<p class="muted"><font color="{_MUTED}">{_e(metric)} on the test rows of each group '
             f'({"higher" if greater else "lower"} is better). The gap is the best group\'s score minus the worst\'s.'
             "</font></p>")]
    for col in slices.get("columns") or []:
        if not isinstance(col, dict):
            continue
        groups = [g for g in col.get("groups") or [] if isinstance(g, dict)]
        gap, best, worst = col.get("gap"), col.get("best") or {}, col.get("worst") or {}
        head = f"By {_e(col.get('column'))}"
        if gap is not None:
            head += (f' &mdash; gap <b>{_e(_fmt(gap))}</b> <font color="{_MUTED}">(best {_e(best.get("value"))} '
                     f'{_e(_fmt(best.get("score")))}, worst {_e(worst.get("value"))} '
                     f'{_e(_fmt(worst.get("score")))})</font>')
        parts.append(f"<h3>{head}</h3>")
        others = [k for k in (groups[0].get("metrics") or {}) if k != metric] if groups else []
        values = [g.get("metrics", {}).get(metric) for g in groups]
        finite = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
        scale = 1.0 if metric in _METRICS_0_1 else (max([abs(v) for v in finite], default=0.0) or 1.0)
        rows = []
        for g, v in zip(groups, values, strict=True):
            colour = _BAR
            if g.get("value") == best.get("value") and len(groups) > 1:
                colour = _BAR_BEST
            elif g.get("value") == worst.get("value") and len(groups) > 1:
                colour = _BAR_WORST
            share = max(0.0, v / scale) if isinstance(v, int | float) and math.isfinite(v) else 0.0
            rows.append([_e(g.get("value")), _e(_fmt(g.get("n"))), _e(_fmt(v)), _bar(share, colour)]
                        + [_e(_fmt((g.get("metrics") or {}).get(k))) for k in others])
        n_cols = 4 + len(others)
        parts.append(_grid(["group", "rows", metric, ""] + others, rows,
                           numeric={1, 2} | set(range(4, n_cols)), widths={3: "34%"}))
    return "".join(parts)


def _lineage_html(summary: dict[str, Any]) -> str:
    rows = []
    for i, col in enumerate(summary.get("columns") or [], 1):
        kinds: list[str] = []
        for n in col:
            title = lineage.TYPE_TITLES.get(n["type"], n["type"].replace("_", " ").capitalize())
            if title not in kinds:
                kinds.append(title)
        items = ", ".join((f"<b>{_e(n['label'])}</b>" if n["role"] == "focus" else _e(n["label"])) for n in col)
        rows.append([f"{i}", _e(" / ".join(kinds)), items])
    if not rows:
        return _muted("No recorded lineage.")
    hidden = summary.get("hidden") or {}
    note = ""
    if hidden:
        note = _muted("Not shown: " + ", ".join(f"{n} more {rel.replace('_', ' ')}" for rel, n in hidden.items()) + ".")
    return (f'<p><font color="{_MUTED}">Left to right, from the source file to what came of this version.</font></p>'
            + _grid(["", "step", "records"], rows, widths={0: "24", 1: "190"}) + note)


CLI_EDIT_HINT = "modelyard model card {ref} --intended-use TEXT --notes TEXT --comment WHY"
WINDOW_EDIT_HINT = "use Edit notes… beside this card"


def render_html(card: dict[str, Any], *, edit_hint: str | None = None) -> str:
    """The card as one self-contained HTML page (inline CSS; no scripts or external resources).
    ``edit_hint`` says how to write the missing notes where the card is read (``{ref}`` is
    filled in): by default the command (:data:`CLI_EDIT_HINT`), in the window
    :data:`WINDOW_EDIT_HINT`; "" says nothing (a page exported for others)."""
    ref = str(card.get("ref") or "")
    out: list[str] = []
    # header
    stage = str(card.get("stage") or "None")
    badges = [_badge("no stage" if stage == "None" else stage,
                     "#57606a" if stage in ("None", "Archived") else "#1f6feb")]
    badges += [_badge(a, "#8250df") for a in card.get("aliases") or []]
    out.append(f"<h1>{_e(ref)}</h1>")
    sub = [f"registered {_e(_when(card.get('created_at')))}"]
    if card.get("created_by"):
        sub.append(f"by {_e(card['created_by'])}")
    if card.get("source") and card.get("source") != "run":
        sub.append(f"from a {_e(card['source'])}")
    out.append(f'<p>{" ".join(badges)} &nbsp;<font color="{_MUTED}">{" ".join(sub)}</font></p>')
    if card.get("description"):
        out.append(_paragraphs(str(card["description"])))

    # intended use and notes
    notes = card.get("notes") or {}
    hint = (CLI_EDIT_HINT if edit_hint is None else edit_hint).replace("{ref}", ref)
    body = "<h3>Intended use</h3>" + (_paragraphs(notes["intended_use"]) if notes.get("intended_use")
                                       else _muted(f"Not written yet ({hint})." if hint else "Not written yet."))
    body += "<h3>Notes</h3>" + (_paragraphs(notes["notes"]) if notes.get("notes") else _muted("None."))
    out.append(_section("Intended use and notes", body))

    # drift
    drift = card.get("drift")
    if drift:
        verdict = str(drift.get("verdict") or "")
        share = drift.get("drift_share")
        rows = [("latest verdict", _badge(verdict, _STATUS.get(verdict, "#57606a"))),
                ("drifted columns", f"{share:.0%}" if isinstance(share, int | float) else ""),
                ("checked", _e(_when(drift.get("created_at"))) + (f" by {_e(drift['created_by'])}"
                                                                  if drift.get("created_by") else "")),
                ("batch", _e(drift.get("batch"))), ("check", (f"#{_e(drift.get('check_id'))} "
                                                    f"({_e(_fmt(drift.get('n_checks')))} in all)"))]
        out.append(_section("Drift", _kv(rows)))
    else:
        out.append(_section("Drift", _muted("Never checked for drift.")))

    # data
    data = card.get("data")
    if data:
        split = data.get("split") or {}
        counts = split.get("counts") or {}
        split_text = ""
        if split:
            split_text = _e(f"{split.get('name') or ''} ({split.get('method') or ''}"
                            + (f", seed {split['seed']}" if split.get("seed") is not None else "") + ")")
            if counts:
                split_text += " &mdash; " + ", ".join(f"{_e(k)} {_e(_fmt(v))}" for k, v in counts.items() if v)
        features = data.get("features") or []
        rows = [("dataset version", f"<b>{_e(data.get('ref'))}</b>"),
                ("rows x columns",
                 f"{_e(_fmt(data.get('n_rows')))} &times; {_e(_fmt(data.get('n_cols')))}"
                 if data.get("n_cols") is not None else _e(_fmt(data.get("n_rows")))),
                ("target", _e(data.get("target")) + (f" ({_e(data.get('task'))})" if data.get("task") else "")),
                ("split", split_text),
                ("features", f"{len(features)}: " + ", ".join(_e(f) for f in features) if features else ""),
                ("rows without a target", _e(_fmt(data.get("dropped_missing_target")))
                 if data.get("dropped_missing_target") else ""),
                ("source file", _e(data.get("source_file"))),
                ("content hash", f"<code>{_e(data.get('content_hash'))}</code>" if data.get("content_hash") else "")]
        out.append(_section("Data", _kv(rows)))
    else:
        out.append(_section("Data", _muted("No dataset version is recorded for this version.")))

    # metrics
    metrics = card.get("metrics") or {}
    if metrics:
        out.append(_section("Test metrics", _grid(["metric", "value"], [[_e(k), _e(_fmt(v))]
                                                                          for k, v in metrics.items()],
                                                  numeric={1}, widths={0: "70%"}, width="50%")))
    else:
        out.append(_section("Test metrics", _muted("No test metrics were recorded.")))
    out.append(_section("Per-group metrics", _slices_html(card.get("slices"))))

    # parameters
    params = list((card.get("params") or {}).items())
    half = (len(params) + 1) // 2
    rows = [[_e(k), _e(v)] + ([_e(params[i + half][0]), _e(params[i + half][1])] if i + half < len(params)
                              else ["", ""]) for i, (k, v) in enumerate(params[:half])]
    out.append(_section("Parameters", _grid(["parameter", "value", "parameter", "value"], rows,
                                            widths={0: "25%", 1: "25%", 2: "25%", 3: "25%"})
                        if params else _muted("No parameters recorded.")))

    # signature
    sig = card.get("signature")
    if sig:
        inputs = [i for i in sig.get("inputs") or [] if isinstance(i, dict)]
        body = _grid(["input column", "dtype", "type", "preprocessing"],
                     [[_e(i.get("name")), _e(i.get("dtype")), _e(i.get("type")), _e(i.get("step"))] for i in inputs])
        target, output = sig.get("target") or {}, sig.get("output") or {}
        classes = target.get("classes")
        rows = [("target", _e(target.get("name")) + (f" ({_e(target.get('dtype'))})" if target.get("dtype") else "")),
                ("classes", ", ".join(_e(c) for c in classes) if classes else ""),
                ("output", _e(output.get("kind")) + (" with class probabilities" if output.get("proba") else ""))]
        out.append(_section("Signature", body + "<p></p>" + _kv(rows)))
    else:
        out.append(_section("Signature", _muted("No signature recorded.")))

    out.append(_section("Lineage", _lineage_html(card.get("lineage") or {})))

    # reproducibility
    repro = card.get("reproducibility")
    run = card.get("run") or {}
    rows = []
    if run:
        rows += [("run", f"<code>{_e(run.get('run_id'))}</code>"),
                 ("experiment", _e(run.get("experiment"))),
                 ("trained", _e(_when(run.get("start_time"))) + (f" by {_e(run['user'])}" if run.get("user") else ""))]
    if repro:
        git = repro.get("git") or {}
        rows += [("python", _e(" ".join(str(x) for x in (repro.get("python_implementation"), repro.get("python"))
                                        if x))),
                 ("platform", _e(repro.get("platform"))),
                 ("modelyard", _e(repro.get("modelyard"))),
                 ("seed", _e(_fmt(repro.get("seed")))),
                 ("git commit", (f"<code>{_e(git.get('commit'))}</code>" + (" (uncommitted changes)"
                                                                             if git.get("dirty") else ""))
                  if git.get("commit") else ""),
                 ("packages", ", ".join(f"{_e(k)} {_e(v)}" for k, v in (repro.get("packages") or {}).items() if v))]
    if card.get("model_sha256"):
        rows.append(("model file sha256", f"<code>{_e(card['model_sha256'])}</code>"))
    bundle = card.get("bundle")
    if isinstance(bundle, dict):
        rows.append(("imported from bundle", _e(bundle.get("imported_from") or bundle.get("sha256"))
                     + (f" (signed by {_e(bundle['signer'])})" if bundle.get("signer") else "")))
    out.append(_section("Reproducibility", _kv(rows) if rows else _muted("Nothing recorded.")))

    out.append(f'<p><font color="{_MUTED}" size="2">Model card generated by Modelyard {_e(card.get("modelyard"))} '
               f"on {_e(_when(card.get('generated_at')))}.</font></p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Model card: {_e(ref)}</title><style>{_CSS}</style></head>"
            f'<body bgcolor="#ffffff" text="{_TEXT}">' + "\n".join(out) + "</body></html>\n")


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
