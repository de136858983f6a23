"""The model card as one self-contained HTML page (:func:`render_html`).

HTML 4 with tables, headings, paragraphs and inline styles only (no script, no external resource,
no flexbox or grid), so the same page reads well in a browser and in Qt's ``QTextBrowser``;
per-group bars are table cells with a background colour, and the evidence's charts (importance,
partial dependence, calibration) are small SVG drawings embedded as ``data:`` images
(:mod:`modelyard.core.registry.card_evidence`). Every text from the store is escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from typing import Any

from modelyard.core.registry import lineage

_METRICS_0_1 = frozenset({"accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc",
                          "r2"})
_GREATER = {"accuracy": True, "balanced_accuracy": True, "precision_macro": True, "recall_macro": True,
            "f1_macro": True, "roc_auc": True, "log_loss": False, "rmse": False, "mae": False, "r2": True,
            "mape": False}
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


CLI_EDIT_HINT = ("modelyard model card {ref} --intended-use TEXT --out-of-scope-uses TEXT --known-limitations TEXT "
                 "--ethical-considerations TEXT --comment WHY")
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

    # the texts a reviewer reads first, the evidence, the requests
    from modelyard.core.registry import card_evidence as ev
    from modelyard.core.registry.cards import NOTES_FIELDS

    hint = (CLI_EDIT_HINT if edit_hint is None else edit_hint).replace("{ref}", ref)
    out.append(_section("Intended use and limitations", ev.review_fields_html(card, NOTES_FIELDS, hint)))
    where = "cli" if edit_hint is None else "window" if edit_hint == WINDOW_EDIT_HINT else ""
    out.append(_section("Evidence for a promotion", ev.evidence_html(card, where)))
    out.append(_section("Review history", ev.requests_html(card)))

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

    out.append(_section("Card history", ev.card_history_html(card, NOTES_FIELDS)))
    out.append(f'<p><font color="{_MUTED}" size="2">Model card generated by Modelyard {_e(card.get("modelyard"))} '
               f"on {_e(_when(card.get('generated_at')))}.</font></p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Model card: {_e(ref)}</title><style>{_CSS}</style></head>"
            f'<body bgcolor="#ffffff" text="{_TEXT}">' + "\n".join(out) + "</body></html>\n")
