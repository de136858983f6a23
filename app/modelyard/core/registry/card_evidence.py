"""The review part of the model card's HTML: the card's review fields, the evidence (metrics with
their intervals against the champion, the gates' verdict, the group table with each sensitive
column's gap and ratio, permutation importance, partial dependence and calibration as small SVG
charts), the promotion requests and their decisions, and the card's own edits.

The charts are SVG drawings embedded as ``data:`` images: a browser and Qt's ``QTextBrowser``
both show them, the page stays one file, and no text in them can reach the page's markup (every
text is XML-escaped inside the drawing, which is then base64-encoded).

:func:`failing_fairness` (which sensitive columns and metrics break a fairness gate, from the gate
settings and the evidence document) is shared with the window's evidence view.
"""

from __future__ import annotations

import base64
import math
from typing import Any
from xml.sax.saxutils import escape as _xml

from modelyard.core.registry.card_html import (
    _BAR,
    _MUTED,
    _RULE,
    _e,
    _fmt,
    _grid,
    _muted,
    _paragraphs,
    _when,
)

REVIEW_TEXT_KEYS = ("intended_use", "out_of_scope_uses", "known_limitations", "ethical_considerations")
_FAIL = "#cf222e"
_FAIL_BG = "#ffebe9"
_PASS = "#1a7f37"
_LINE = "#4c72b0"
_CHAMP = "#8c959f"
_SVG_FONT = "Helvetica, Arial, sans-serif"
IMPORTANCE_WIDTH = 420  # fits the Model card tab of an 800-wide window


# =========================================================================== shared with the window


def number(value: Any) -> float | None:
    """A finite float, or None (missing, NaN, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def interval_text(iv: Any, digits: int = 3, *, compact: bool = False) -> str:
    """``0.912 (0.903 to 0.921)``, or ``0.912 [0.903, 0.921]`` when ``compact`` (a narrow table);
    "" when there is no value."""
    if not isinstance(iv, dict) or number(iv.get("value")) is None:
        return ""
    text = f"{iv['value']:.{digits}f}"
    low, high = number(iv.get("low")), number(iv.get("high"))
    if low is not None and high is not None:
        text += (f" [{low:.{digits}f}, {high:.{digits}f}]" if compact else f" ({low:.{digits}f} to {high:.{digits}f})")
    return text


def _three(value: Any) -> str:
    v = number(value)
    return f"{v:.3f}" if v is not None else "—"


def failing_fairness(gates: dict[str, Any] | None, evidence: dict[str, Any] | None) -> dict[tuple[str, str], str]:
    """``{(column, metric): why}`` for each fairness gate the evidence breaks, e.g.
    ``("sex", "accuracy"): "gap 0.083 above the maximum 0.05"``. What the gates themselves judge
    (:mod:`modelyard.core.registry.gates`) decides a promotion; this only says where to look."""
    out: dict[tuple[str, str], str] = {}
    by_column = {g.get("column"): g for g in (evidence or {}).get("groups") or [] if isinstance(g, dict)}
    for rule in (gates or {}).get("fairness") or []:
        if not isinstance(rule, dict):
            continue
        column, metric = str(rule.get("column")), str(rule.get("metric"))
        gap = ((by_column.get(column) or {}).get("gaps") or {}).get(metric) or {}
        max_gap, min_ratio = number(rule.get("max_gap")), number(rule.get("min_ratio"))
        value, ratio = number(gap.get("gap")), number(gap.get("ratio"))
        if column not in by_column:
            out[(column, metric)] = "not in the evidence"
        elif max_gap is not None and (value is None or value > max_gap):
            out[(column, metric)] = f"gap {_three(value)} above the maximum {_fmt(max_gap)}"
        elif min_ratio is not None and (ratio is None or ratio < min_ratio):
            out[(column, metric)] = f"ratio {_three(ratio)} below the minimum {_fmt(min_ratio)}"
    return out


# =========================================================================== SVG charts


def _img(svg: str, width: int, height: int, alt: str) -> str:
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (f'<img src="data:image/svg+xml;base64,{data}" width="{width}" height="{height}" '
            f'alt="{_e(alt)}">')


def _svg(width: int, height: int, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="{_SVG_FONT}" font-size="11">'
            f'<rect width="{width}" height="{height}" fill="#ffffff"/>' + "".join(body) + "</svg>")


def _text(x: float, y: float, text: str, *, anchor: str = "start", colour: str = "#1f2328", size: int = 11) -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{colour}" font-size="{size}">'
            f"{_xml(text)}</text>")


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def importance_svg(features: list[dict[str, Any]], width: int = IMPORTANCE_WIDTH) -> tuple[str, int]:
    """Horizontal bars (mean drop of the score) with error bars (one standard deviation)."""
    rows = [f for f in features if isinstance(f, dict)][:15]
    left, right, row_h, top = 150, 70, 20, 8
    height = top + row_h * len(rows) + 24
    top_value = max([(number(f.get("mean")) or 0.0) + (number(f.get("std")) or 0.0) for f in rows] + [1e-9])
    span = width - left - right
    body = [f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + row_h * len(rows)}" stroke="{_RULE}"/>']
    for i, f in enumerate(rows):
        y = top + i * row_h
        mean, std = number(f.get("mean")) or 0.0, number(f.get("std")) or 0.0
        w = max(0.0, mean) / top_value * span
        body.append(_text(left - 6, y + 14, _short(str(f.get("feature")), 22), anchor="end"))
        body.append(f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{_BAR}"/>')
        lo, hi = max(0.0, mean - std) / top_value * span, (mean + std) / top_value * span
        body.append(f'<line x1="{left + lo:.1f}" y1="{y + row_h / 2}" x2="{left + hi:.1f}" y2="{y + row_h / 2}" '
                    'stroke="#1f2328" stroke-width="1.2"/>')
        body.append(_text(left + max(w, hi) + 5, y + 14, f"{mean:.3f}", colour=_MUTED))
    axis_y = top + row_h * len(rows) + 16
    body.append(_text(left, axis_y, "0", colour=_MUTED))
    body.append(_text(width - right, axis_y, f"{top_value:.3f}", anchor="end", colour=_MUTED))
    return _svg(width, height, body), height


def _scale(values: list[float], lo_pad: float = 0.0) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.08 + lo_pad
    return lo - pad, hi + pad


def line_svg(xs: list[Any], ys: list[Any], *, title: str, y_label: str, x_label: str = "", width: int = 260,
             height: int = 190, categorical: bool = False, diagonal: bool = False) -> str:
    """A small line chart (points joined; categories as evenly spaced ticks), optionally with the
    y = x diagonal on a 0..1 square (a calibration curve)."""
    left, bottom, top, right = 52, 44, 22, 12
    pts = [(x, number(y)) for x, y in zip(xs, ys, strict=False) if number(y) is not None]
    body = [_text(width / 2, 14, _short(title, 40), anchor="middle", size=12)]
    if not pts:
        return _svg(width, height, body + [_text(width / 2, height / 2, "no values", anchor="middle")])
    cats = categorical or not all(number(x) is not None for x, _ in pts)
    xv = list(range(len(pts))) if cats else [float(x) for x, _ in pts]
    yv = [float(y) for _, y in pts]
    if diagonal:
        (x_lo, x_hi), (y_lo, y_hi) = (0.0, 1.0), (0.0, 1.0)
    else:
        x_lo, x_hi = (-0.5, len(pts) - 0.5) if cats else _scale(xv)
        y_lo, y_hi = _scale(yv)
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * pw

    def py(y: float) -> float:
        return top + ph - (y - y_lo) / (y_hi - y_lo) * ph

    body.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="{_RULE}"/>')
    if diagonal:
        body.append(f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(1):.1f}" y2="{py(1):.1f}" '
                    f'stroke="{_CHAMP}" stroke-dasharray="4 3"/>')
    path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xv, yv, strict=True))
    body.append(f'<polyline points="{path}" fill="none" stroke="{_LINE}" stroke-width="2"/>')
    body += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{_LINE}"/>' for x, y in zip(xv, yv, strict=True)]
    y_top, y_bottom = (1.0, 0.0) if diagonal else (max(yv), min(yv))
    body.append(_text(left - 4, py(y_top) + 4, f"{y_top:.2f}", anchor="end", colour=_MUTED, size=10))
    body.append(_text(left - 4, py(y_bottom) + 4, f"{y_bottom:.2f}", anchor="end", colour=_MUTED, size=10))
    mid_y = top + ph / 2
    body.append(f'<text x="12" y="{mid_y:.1f}" text-anchor="middle" fill="{_MUTED}" font-size="10" '
                f'transform="rotate(-90 12 {mid_y:.1f})">{_xml(_short(y_label, 28))}</text>')
    tick_y = height - bottom + 14
    if cats:  # every category named; when they crowd, every other one a line lower
        step = max(1, math.ceil(len(pts) / 8))
        shown = range(0, len(pts), step)
        room = pw / max(1, len(shown))
        stagger = room < 75
        chars = max(4, int((2 * room if stagger else room) / 6))
        for n, i in enumerate(shown):
            body.append(_text(px(i), tick_y + (11 if stagger and n % 2 else 0), _short(str(pts[i][0]), chars),
                              anchor="middle", colour=_MUTED, size=10))
    else:
        first, last = (0.0, 1.0) if diagonal else (min(xv), max(xv))
        body.append(_text(px(first), tick_y, f"{first:.3g}", anchor="middle", colour=_MUTED, size=10))
        body.append(_text(px(last), tick_y, f"{last:.3g}", anchor="middle", colour=_MUTED, size=10))
    if x_label:
        body.append(_text(left + pw / 2, height - 4, _short(x_label, 44), anchor="middle", colour=_MUTED, size=10))
    return _svg(width, height, body)


# =========================================================================== sections


def review_fields_html(card: dict[str, Any], labels: dict[str, str], hint: str) -> str:
    """The four review fields and the free notes; a missing review field is marked as required."""
    notes = card.get("notes") or {}
    parts = []
    for key, label in labels.items():
        text = str(notes.get(key) or "")
        if text.strip():
            parts.append(f"<h3>{_e(label)}</h3>" + _paragraphs(text))
        elif key in REVIEW_TEXT_KEYS:
            parts.append(f'<h3>{_e(label)} <font color="{_FAIL}">(required)</font></h3>'
                         f'<p><font color="{_FAIL}"><i>Not written yet. A promotion request needs it'
                         + (f" ({_e(hint)})" if hint else "") + ".</i></font></p>")
        else:
            parts.append(f"<h3>{_e(label)}</h3>" + _muted("None."))
    revision = card.get("notes_revision") or 0
    history = card.get("card_history") or []
    if revision and history:
        last = history[0]
        parts.append(f'<p><font color="{_MUTED}">Revision {_e(revision)}, last edited {_e(_when(last.get("at")))}'
                     + (f" by {_e(last['by'])}" if last.get("by") else "") + ".</font></p>")
    return "".join(parts)


def _verdict(report: dict[str, Any], failing: dict[tuple[str, str], str]) -> str:
    if not report:
        return ""
    checked = report.get("checked") or []
    if not checked:
        return _muted("The model has no promotion gates.")
    if report.get("passed"):
        head = f'<p><font color="{_PASS}"><b>The gates pass</b></font> ({_e(len(checked))} checked).</p>'
    else:
        reasons = report.get("reasons") or []
        head = (f'<p><font color="{_FAIL}"><b>The gates block a promotion</b></font>: {_e(len(reasons))} of '
                f"{_e(len(checked))} checks fail.</p>")
        head += "".join(f'<p><font color="{_FAIL}">&#10007;</font> {_e(r)}</p>' for r in reasons)
    head += "<p>" + "<br>".join(f'<font color="{_MUTED}">checked: {_e(c)}</font>' for c in checked) + "</p>"
    return head


EVIDENCE_HINTS = {"cli": "compute it with `modelyard model evidence {ref}`",
                  "window": "compute it with Compute evidence in the version's menu"}


def evidence_html(card: dict[str, Any], where: str = "cli") -> str:
    """The evidence section's body: rows, verdict, metrics, groups, importance, PDP, calibration.
    ``where`` the page is read ("cli", "window" or "" for an exported page) picks how a missing
    evidence is to be computed."""
    found = card.get("evidence") or {}
    doc = found.get("document") if isinstance(found.get("document"), dict) else None
    report = card.get("gate_report") or {}
    failing = failing_fairness(card.get("gates"), doc)
    out = [_verdict(report, failing)]
    if doc is None:
        hint = EVIDENCE_HINTS.get(where, "").replace("{ref}", str(card.get("ref")))
        out.append(_muted("No evidence was computed for this version yet" + (f": {hint}." if hint else ".")))
        return "".join(out)
    rows = doc.get("rows") or {}
    conf = number(doc.get("confidence")) or 0.95
    champion = doc.get("champion")
    out.append(f"<p>Measured on <b>{_e(_fmt(rows.get('n')))}</b> held-out rows ({_e(rows.get('split') or '')})"
               + (f", against the champion <b>{_e(champion)}</b> on the same rows" if champion else
                  ", with no champion to compare with")
               + f"; {conf:.0%} intervals from {_e(_fmt(doc.get('n_boot')))} bootstrap resamples. "
               f'<font color="{_MUTED}">Computed {_e(_when(doc.get("computed_at") or found.get("created_at")))}'
               + (f" by {_e(found['created_by'])}" if found.get("created_by") else "") + ".</font></p>")
    table = []
    for row in doc.get("metrics") or []:
        if not isinstance(row, dict):
            continue
        diff = row.get("difference") or {}
        higher = bool(row.get("higher_is_better", True))
        low, high = number(diff.get("low")), number(diff.get("high"))
        if low is None or high is None:
            word = ""
        elif (low > 0) == higher and (low > 0 or high < 0):
            word = f'<font color="{_PASS}">better</font>'
        elif low > 0 or high < 0:
            word = f'<font color="{_FAIL}">worse</font>'
        else:
            word = f'<font color="{_MUTED}">no clear difference</font>'
        table.append([_e(row.get("metric")) + ("" if higher else f' <font color="{_MUTED}">(lower is better)</font>'),
                      _e(interval_text(row.get("candidate"))), _e(interval_text(row.get("champion"))),
                      _e(interval_text(row.get("difference"))), word])
    out.append("<h3>Candidate against the champion</h3>" + _grid(
        ["metric", "candidate", f"champion {champion or ''}".strip(), "difference", ""], table))
    out.append(groups_html(doc, failing))
    out.append(explanations_html(doc))
    for note in doc.get("notes") or []:
        out.append(_muted(str(note)))
    return "".join(out)


def groups_html(doc: dict[str, Any], failing: dict[tuple[str, str], str]) -> str:
    groups = [g for g in doc.get("groups") or [] if isinstance(g, dict)]
    if not groups:
        return "<h3>Groups</h3>" + _muted("No sensitive columns were marked, so no group metrics were computed "
                                          "(mark them with the model's gates: sensitive_columns).")
    parts = [f'<p><font color="{_MUTED}">Each group\'s metrics with their intervals; the gap is the best group '
             "minus the worst, the ratio the worst divided by the best.</font></p>"]
    for col in groups:
        column = str(col.get("column"))
        members = [r for r in col.get("rows") or [] if isinstance(r, dict)]
        metrics = list(dict.fromkeys(k for r in members for k in (r.get("metrics") or {})))
        # one row per metric, one column per group: a few groups side by side, however many metrics
        rows, notes = [], []
        for k in metrics:
            g = (col.get("gaps") or {}).get(k) or {}
            why = failing.get((column, k))
            gap, ratio = _e(_three(g.get("gap"))), _e(_three(g.get("ratio")))
            if why:
                gap = f'<font color="{_FAIL}"><b>&#10007; {gap}</b></font>'
                ratio = f'<font color="{_FAIL}"><b>{ratio}</b></font>'
                notes.append(f'<p><font color="{_FAIL}">&#10007; {_e(k)} by {_e(column)} fails its fairness gate: '
                             f"{_e(why)} (worst {_e(g.get('worst'))}, best {_e(g.get('best'))}).</font></p>")
            rows.append([_e(k.replace("_", " "))]
                        + [_e(interval_text((r.get("metrics") or {}).get(k), compact=True)) for r in members]
                        + [gap, ratio])
        heads = ["metric"] + [f"{r.get('group')} ({_fmt(r.get('n'))} rows)" for r in members] + ["gap", "ratio"]
        parts.append(f"<h3>By {_e(column)}</h3>" + _grid(heads, rows, numeric=set(range(1, len(heads))))
                     + "".join(notes))
    return "".join(parts)


def explanations_html(doc: dict[str, Any]) -> str:
    parts = []
    imp = doc.get("importance") or {}
    features = [f for f in imp.get("features") or [] if isinstance(f, dict)]
    if features:
        svg, height = importance_svg(features)
        parts.append(f"<h3>What the model relies on</h3><p>How much {_e(imp.get('metric'))} drops when a feature's "
                     f"values are shuffled on the held-out rows (mean of {_e(imp.get('repeats'))} repeats; "
                     "the line is one standard deviation).</p>"
                     f"<p>{_img(svg, IMPORTANCE_WIDTH, height, 'permutation importance')}</p>")
        if imp.get("warning"):
            parts.append(f'<p><font color="#9a6700">&#9888; {_e(imp["warning"])}</font></p>')
    pdp = [p for p in doc.get("partial_dependence") or [] if isinstance(p, dict)]
    if pdp:
        charts = []
        for p in pdp[:3]:
            of = p.get("of")
            svg = line_svg(p.get("grid") or [], p.get("average") or [], title=str(p.get("feature")),
                           y_label=f"average {of}" if of else "average prediction",  # "P(yes)"
                           x_label=str(p.get("feature")), categorical=p.get("kind") == "categorical")
            charts.append(_img(svg, 260, 190, "partial dependence of " + str(p.get("feature"))))
        # inline images: side by side where the page is wide enough, below each other where not
        parts.append("<h3>How the prediction moves with the top features</h3><p>Partial dependence: the average "
                     "prediction when the feature is set to each value for every held-out row.</p>"
                     "<p>" + "&nbsp;&nbsp;".join(charts) + "</p>")
    cal = doc.get("calibration")
    if isinstance(cal, dict) and cal.get("prob_pred"):
        svg = line_svg(cal.get("prob_pred") or [], cal.get("prob_true") or [], title="Calibration",
                       y_label=f"observed share of {cal.get('of')}", x_label="predicted probability", width=300,
                       height=230, diagonal=True)
        parts.append("<h3>Are the probabilities honest?</h3><p>Predicted probability (across) against the observed "
                     f"share (up); the dashed diagonal is perfect calibration. Brier score "
                     f"<b>{_e(_fmt(cal.get('brier')))}</b>.</p>" + f"<p>{_img(svg, 300, 230, 'calibration curve')}</p>")
    return "".join(parts) or _muted("No explanations were computed.")


def requests_html(card: dict[str, Any]) -> str:
    rows = []
    for r in card.get("requests") or []:
        asked = (f"{_e(_when(r.get('requested_at')))}<br>{_e(r.get('requested_by'))}: make it "
                 f"{_e(r.get('target'))}" + (f" instead of {_e(r.get('replaces'))}" if r.get("replaces") else "")
                 + f"<br><i>{_e(r.get('reason'))}</i>")
        status = str(r.get("status") or "")
        colour = {"approved": _PASS, "rejected": _FAIL}.get(status, _MUTED)
        decided = ""
        if r.get("decided_at") or r.get("decided_by"):
            decided = (f"{_e(_when(r.get('decided_at')))}<br>{_e(r.get('decided_by'))}".removeprefix("<br>")
                       + (f"<br><i>{_e(r.get('decision_comment'))}</i>" if r.get("decision_comment") else ""))
        rows.append([f"#{_e(r.get('id'))}", asked, f'<font color="{colour}"><b>{_e(status)}</b></font>', decided])
    if not rows:
        return _muted("No promotion was requested for this version.")
    return _grid(["", "request", "status", "decision"], rows, widths={0: "36", 2: "90"})


def card_history_html(card: dict[str, Any], labels: dict[str, str]) -> str:
    rows = [[_e(h.get("revision")), _e(_when(h.get("at"))), _e(h.get("by")),
             _e(", ".join(labels.get(f, f).lower() for f in h.get("fields") or [])), _e(h.get("comment"))]
            for h in card.get("card_history") or []]
    if not rows:
        return _muted("The card's texts were never edited.")
    return _grid(["revision", "when", "who", "changed", "comment"], rows, numeric={0}, widths={0: "90"})

