"""Drift check reports: one self-contained HTML file a business stakeholder can open without Modelyard.

::

    from modelyard.core.monitoring import reports

    reports.export_check_html(store, check_id, "march-drift.html")     # -> Path of the file written
    html = reports.render_check_html(drift.get_check(store, check_id))   # the same, as text
    svg = reports.histogram_svg(feature_row["histogram"], title="age")   # one chart

The page holds everything inline: the styles, and per feature an SVG chart drawn here from the
histogram the check stored (numbers: the reference's and the batch's share per bin as overlaid
bars on a shared axis; categories: grouped horizontal bars per category). No JavaScript, no
fonts, images or links to fetch, so it reads the same offline, in a mail attachment or printed.
Every text that comes from data (column names, categories, file names, comments) is escaped.

Contents: the title (model and batch), the verdict banner with its reasons, the facts (model,
batch, reference, when, who), the dataset rule, a summary table of every feature sorted by drift
score (test, statistic, p-value, effect size, threshold, verdict), schema problems, the target's
drift, prediction drift, performance against the recorded test metrics, the multivariate
(domain classifier) AUC, what was skipped and why, per feature its chart and numbers, retraining
runs that came from the check, and the whole configuration the check was decided with.

The writer (:func:`export_check_html`) writes a temporary file next to the target and renames it,
so a reader never sees half a report.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelyard.core.common.outputs import write_replacing
from modelyard.core.store import Store

__all__ = ["COLOURS", "check_report_html", "export_check_html", "histogram_svg", "render_check_html"]

COLOURS = {"reference": "#1f6feb", "batch": "#bc4c00", "ok": "#1a7f37", "warning": "#9a6700", "drift": "#bc4c00",
           "error": "#cf222e", "grid": "#d0d7de", "text": "#1f2328", "muted": "#59636e"}
VERDICT_WORDS = {"ok": "No drift", "warning": "Warning", "drift": "Drift", "error": "Error"}
VERDICT_TEXT = {"ok": "The batch looks like the data the model was trained on.",
                "warning": "Some things changed and are worth a look; the dataset as a whole does not drift.",
                "drift": "The batch differs from the data the model was trained on: its predictions may no "
                         "longer be trusted.",
                "error": "The check could not be completed."}
TEST_NAMES = {"ks": "Kolmogorov–Smirnov", "chisquare": "chi-square", "wasserstein": "Wasserstein (normed)",
              "js": "Jensen–Shannon", "psi": "PSI"}
EFFECT_NAMES = {"wasserstein_norm": "normed Wasserstein", "js_distance": "Jensen–Shannon distance"}
SVG_WIDTH = 640
MAX_LABEL = 26


# =========================================================================== small helpers


def _e(value: Any) -> str:
    """Escaped text (None as an empty string)."""
    return "" if value is None else html.escape(str(value), quote=True)


def _num(value: Any, *, digits: int = 3) -> str:
    if value is None or isinstance(value, bool):
        return "–" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return _e(value)
    if not math.isfinite(x):
        return "–"
    if x != 0 and abs(x) < 1e-3:
        return f"{x:.2e}"
    if abs(x) >= 1e6:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _pct(value: Any) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(x):
        return "–"
    return f"{x * 100:.1f}%" if x < 0.1 and x != 0 else f"{x * 100:.0f}%"


def _shares(values: Any, n: int) -> list[float]:
    out = []
    for i in range(n):
        try:
            x = float(values[i])
        except (TypeError, ValueError, IndexError):
            x = 0.0
        out.append(x if math.isfinite(x) and x > 0 else 0.0)
    return out


def _cut(text: str, n: int = MAX_LABEL) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _when(value: Any) -> str:
    if not value:
        return "–"
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return _e(value)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# =========================================================================== charts


def _legend(x: float, y: float, n_ref: Any, n_batch: Any) -> str:
    parts = []
    for i, (key, label, n) in enumerate((("reference", "reference (training data)", n_ref),
                                         ("batch", "batch (new data)", n_batch))):
        lx = x + i * 230
        count = f" · {_num(n)} rows" if isinstance(n, int) else ""
        parts.append(f'<rect x="{lx:.1f}" y="{y - 9:.1f}" width="11" height="11" fill="{COLOURS[key]}" '
                     f'fill-opacity="0.6"/><text x="{lx + 16:.1f}" y="{y:.1f}">{_e(label + count)}</text>')
    return "".join(parts)


def _svg_open(width: int, height: int, title: str, standalone: bool) -> str:
    ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    return (f'<svg{ns} width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{_e(title)}" font-family="Segoe UI, Helvetica, Arial, sans-serif" font-size="11" '
            f'fill="{COLOURS["text"]}"><title>{_e(title)}</title>'
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>')


def _numeric_svg(hist: Mapping[str, Any], title: str, standalone: bool, n_ref: Any, n_batch: Any) -> str:
    edges = [float(e) for e in hist.get("edges") or []]
    k = len(edges) - 1
    ref, cur = _shares(hist.get("reference"), k), _shares(hist.get("batch"), k)
    width, height = SVG_WIDTH, 250
    left, right, top, bottom = 52, 16, 30, 40
    pw, ph = width - left - right, height - top - bottom
    top_share = max([*ref, *cur, 1e-12])
    nice = _nice_max(top_share)
    lo, hi = edges[0], edges[-1]
    span = hi - lo if hi > lo else 1.0

    def X(v: float) -> float:
        return left + (v - lo) / span * pw

    def Y(share: float) -> float:
        return top + ph - share / nice * ph

    out = [_svg_open(width, height, title, standalone), _legend(left, 16, n_ref, n_batch)]
    for i in range(5):  # horizontal grid and share labels
        share = nice * i / 4
        y = Y(share)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="{COLOURS["grid"]}" '
                   f'stroke-width="1"/><text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                   f'fill="{COLOURS["muted"]}">{share * 100:g}%</text>')
    for key, values in (("reference", ref), ("batch", cur)):
        for i, share in enumerate(values):
            if share <= 0:
                continue
            x0, x1 = X(edges[i]), X(edges[i + 1])
            y = Y(share)
            out.append(f'<rect x="{x0 + 0.5:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 1, 0.8):.1f}" '
                       f'height="{top + ph - y:.1f}" fill="{COLOURS[key]}" fill-opacity="0.45">'
                       f'<title>{_e(key)}: {_pct(share)} of rows in [{_num(edges[i])}, {_num(edges[i + 1])})'
                       f'</title></rect>')
    out.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="{COLOURS["muted"]}"/>')
    for i in range(5):  # value ticks
        v = lo + span * i / 4
        x = X(v)
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        out.append(f'<line x1="{x:.1f}" y1="{top + ph}" x2="{x:.1f}" y2="{top + ph + 4}" '
                   f'stroke="{COLOURS["muted"]}"/><text x="{x:.1f}" y="{top + ph + 16}" text-anchor="{anchor}" '
                   f'fill="{COLOURS["muted"]}">{_e(_tick(v, span))}</text>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle" fill="{COLOURS["muted"]}">'
               f'{_e(_cut(title, 60))} (share of rows per range; the outer bars hold the tails)</text></svg>')
    return "".join(out)


def _nice_max(x: float) -> float:
    """A round upper bound for a share axis whose quarters are round too (0.04 -> 1 %, 0.2 -> 5 %...)."""
    for top in (0.02, 0.04, 0.08, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0):
        if x <= top:
            return top
    return x


def _tick(value: float, span: float) -> str:
    """An axis label with as many decimals as the axis' steps need (no 5.75e-07 for a zero)."""
    step = span / 4 if span > 0 else 1.0
    if abs(value) < step * 1e-6:
        value = 0.0
    if abs(value) >= 1e5 or step >= 1:
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    decimals = min(max(0, -math.floor(math.log10(step)) + 1), 8)
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".") or "0"


def _categorical_svg(hist: Mapping[str, Any], title: str, standalone: bool, n_ref: Any, n_batch: Any) -> str:
    cats = [str(c) for c in hist.get("categories") or []]
    k = len(cats)
    ref, cur = _shares(hist.get("reference"), k), _shares(hist.get("batch"), k)
    label_w, row_h, top, bottom, right = 170, 28, 30, 12, 56
    width = SVG_WIDTH
    pw = width - label_w - right
    height = top + bottom + row_h * max(k, 1)
    nice = _nice_max(max([*ref, *cur, 1e-12]))
    out = [_svg_open(width, height, title, standalone), _legend(label_w, 16, n_ref, n_batch)]
    for i in range(5):
        x = label_w + pw * i / 4
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}" stroke="{COLOURS["grid"]}"/>')
    for j, cat in enumerate(cats):
        y0 = top + j * row_h
        out.append(f'<text x="{label_w - 8}" y="{y0 + row_h / 2 + 4:.1f}" text-anchor="end"><title>{_e(cat)}'
                   f'</title>{_e(_cut(cat))}</text>')
        for b, (key, share) in enumerate((("reference", ref[j]), ("batch", cur[j]))):
            y = y0 + 4 + b * 10
            w = share / nice * pw
            out.append(f'<rect x="{label_w}" y="{y:.1f}" width="{max(w, 0.0):.1f}" height="9" fill="{COLOURS[key]}" '
                       f'fill-opacity="0.75"><title>{_e(key)}: {_pct(share)} of rows are {_e(cat)}</title></rect>'
                       f'<text x="{label_w + w + 4:.1f}" y="{y + 8:.1f}" fill="{COLOURS["muted"]}" font-size="9">'
                       f'{_pct(share)}</text>')
    out.append("</svg>")
    return "".join(out)


def histogram_svg(hist: Mapping[str, Any] | None, *, title: str = "", standalone: bool = False,
                  n_reference: int | None = None, n_batch: int | None = None) -> str:
    """An SVG chart of a check's histogram (numeric: overlaid bars; categorical: grouped bars).

    ``standalone`` adds the SVG namespace (for a ``.svg`` file; inline SVG in HTML needs none).
    An empty string when there is nothing to draw.
    """
    if not hist:
        return ""
    if hist.get("kind") == "categorical":
        if not hist.get("categories"):
            return ""
        return _categorical_svg(hist, title, standalone, n_reference, n_batch)
    if len(hist.get("edges") or []) < 2:
        return ""
    return _numeric_svg(hist, title, standalone, n_reference, n_batch)


# =========================================================================== the page

STYLE = """
body{font-family:"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;margin:0;background:#f6f8fa;line-height:1.45}
main{max-width:1000px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #d0d7de;
padding-bottom:4px}h3{font-size:16px;margin:24px 0 6px}
.sub{color:#59636e;margin:0 0 16px}
.banner{border-radius:8px;padding:14px 18px;color:#fff;margin:16px 0}
.banner .word{font-size:24px;font-weight:700;letter-spacing:.5px;margin-right:12px}
.banner ul{margin:8px 0 0;padding-left:20px}
.v-ok{background:#1a7f37}.v-warning{background:#9a6700}.v-drift{background:#bc4c00}.v-error{background:#cf222e}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13px}
th,td{border-bottom:1px solid #d0d7de;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.facts td:first-child{color:#59636e;width:180px}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;color:#fff}
.b-drift{background:#bc4c00}.b-ok{background:#1a7f37}.b-none{background:#6e7781}.b-warning{background:#9a6700}
.muted{color:#59636e}.note{font-size:13px;color:#59636e}
.feature{border:1px solid #d0d7de;border-radius:8px;padding:4px 16px 12px;margin:16px 0;break-inside:avoid}
.chart{overflow-x:auto;margin:8px 0}
pre{background:#f6f8fa;padding:12px;border-radius:6px;overflow-x:auto;font-size:12px}
footer{margin-top:40px;font-size:12px;color:#59636e}
@media print{body{background:#fff}main{padding:0}}
"""


def _badge(drift: Any, status: str | None = None) -> str:
    if status and status != "checked":
        return f'<span class="badge b-none">{_e(status)}</span>'
    if drift is None:
        return '<span class="badge b-none">n/a</span>'
    return '<span class="badge b-drift">drift</span>' if drift else '<span class="badge b-ok">no drift</span>'


def _test_cell(row: Mapping[str, Any]) -> str:
    test = row.get("test")
    if not test:
        return "–"
    text = TEST_NAMES.get(str(test), str(test))
    return _e(text + (" (approx.)" if row.get("approximate") else ""))


def _p_cell(row: Mapping[str, Any]) -> str:
    p = row.get("p_value")
    if p is None:
        return "–"
    adj = row.get("p_adjusted")
    text = _num(p)
    if adj is not None and adj != p:
        text += f" (adj. {_num(adj)})"
    return _e(text)


def _effect_cell(row: Mapping[str, Any]) -> str:
    if row.get("effect") is None:
        return "–"
    name = EFFECT_NAMES.get(str(row.get("effect_name")), str(row.get("effect_name") or ""))
    return f'{_num(row["effect"])} <span class="muted">{_e(name)}</span>'


def _threshold_cell(row: Mapping[str, Any]) -> str:
    th = row.get("threshold")
    if th is None:
        return "–"
    if row.get("test") in ("ks", "chisquare"):
        text = f"p < {_num(th)}"
        if row.get("min_effect") is not None:
            text += f" and effect ≥ {_num(row['min_effect'])}"
        return _e(text)
    return _e(f"≥ {_num(th)}")


def _anchor(i: int) -> str:
    return f"feature-{i}"


def _feature_table(features: Sequence[Mapping[str, Any]]) -> str:
    head = ("<tr><th>Feature</th><th>Verdict</th><th>Test</th><th>Statistic</th><th>p-value</th>"
            "<th>Effect size</th><th>Threshold</th><th>Drift score</th></tr>")
    rows = []
    for i, r in enumerate(features):
        crit = ' <span class="badge b-warning">critical</span>' if r.get("critical") else ""
        stat = "–" if r.get("statistic") is None else f"{_num(r['statistic'])} <span class=\"muted\">" \
                                                         f"{_e(r.get('statistic_name'))}</span>"
        rows.append(f'<tr><td><a href="#{_anchor(i)}">{_e(r.get("name"))}</a>{crit}'
                    f'<div class="muted">{_e(r.get("kind"))}</div></td>'
                    f'<td>{_badge(r.get("drift"), r.get("status"))}</td><td>{_test_cell(r)}</td>'
                    f'<td class="n">{stat}</td><td class="n">{_p_cell(r)}</td><td class="n">{_effect_cell(r)}</td>'
                    f'<td class="n">{_threshold_cell(r)}</td><td class="n">{_num(r.get("score"))}</td></tr>')
    if not rows:
        return '<p class="muted">No feature was compared.</p>'
    return f"<table>{head}{''.join(rows)}</table>"


def _summary_pairs(row: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    ref, cur = row.get("reference") or {}, row.get("batch") or {}
    out = [("values", _num(ref.get("n")), _num(cur.get("n"))),
           ("missing", _pct(ref.get("missing")), _pct(cur.get("missing")))]
    if row.get("kind") == "numeric":
        for key in ("mean", "std", "min", "median", "max"):
            out.append((key, _num(ref.get(key)), _num(cur.get(key))))
    else:
        out.append(("categories", _num(ref.get("categories")), _num(cur.get("categories"))))
    out.append(("type", _e(ref.get("dtype")), _e(cur.get("dtype"))))
    return out


def _feature_section(i: int, row: Mapping[str, Any], *, what: str = "feature") -> str:
    name = str(row.get("name"))
    ref, cur = row.get("reference") or {}, row.get("batch") or {}
    svg = histogram_svg(row.get("histogram"), title=f"{name}: reference vs batch", n_reference=ref.get("n"),
                        n_batch=cur.get("n"))
    pairs = "".join(f'<tr><td>{_e(k)}</td><td class="n">{a}</td><td class="n">{b}</td></tr>'
                    for k, a, b in _summary_pairs(row))
    unseen = row.get("unseen") or []
    unseen_html = ""
    if unseen:
        items = ", ".join(f"{_e(u.get('category'))} ({_num(u.get('count'))} row{'' if u.get('count') == 1 else 's'})"
                          for u in unseen[:20])
        more = len(unseen) - 20 + int(row.get("unseen_more") or 0)
        unseen_html = (f'<p>Categories the training data never had: {items}'
                       f'{f", and {more} more" if more > 0 else ""}.</p>')
    crit = ' <span class="badge b-warning">critical</span>' if row.get("critical") else ""
    anchor = f' id="{_anchor(i)}"' if i >= 0 else ""
    return (f'<section class="feature"{anchor}><h3>{_e(name)} {_badge(row.get("drift"), row.get("status"))}{crit}</h3>'
            f'<p class="muted">{_e(what)} · {_e(row.get("kind"))} · {_e(row.get("reason") or "")}</p>'
            f'<div class="chart">{svg or "<p class=muted>Nothing to plot.</p>"}</div>'
            f'<table><tr><th></th><th class="n">reference</th><th class="n">batch</th></tr>{pairs}</table>'
            f"{unseen_html}</section>")


def _schema_section(schema: Sequence[Mapping[str, Any]]) -> str:
    if not schema:
        return '<p>None: every column the model reads is there, with the same kind of values.</p>'
    rows = "".join(f"<tr><td>{_e(p.get('column'))}</td><td>{_e(str(p.get('kind', '')).replace('_', ' '))}</td>"
                   f"<td>{_e(p.get('severity'))}</td><td>{_e(p.get('message'))}</td></tr>" for p in schema)
    return f"<table><tr><th>Column</th><th>Problem</th><th>Severity</th><th>What was found</th></tr>{rows}</table>"


def _prediction_section(pred: Mapping[str, Any] | None, skipped: Mapping[str, str]) -> str:
    if not pred:
        why = skipped.get("prediction")
        return f'<p class="muted">Not measured{": " + _e(why) if why else ""}.</p>'
    verdict = _badge(pred.get("drift"))
    what = "predicted labels" if pred.get("output") == "label" else "predicted values"
    intro = (f"<p>{verdict} The model's {what} on {_num(pred.get('rows'))} batch rows compared with its outputs "
             f"on the training data. {_e(pred.get('reason') or '')}</p>")
    parts = [intro]
    main_row = pred.get("labels") or pred.get("values")
    if main_row:
        parts.append(_feature_section(-1, {**main_row, "name": "predictions"}, what="the model's outputs"))
    if pred.get("scores"):
        parts.append(_feature_section(-1, {**pred["scores"], "name": "scores"},
                                      what="the model's probability of the positive class"))
    return "".join(parts)


def _performance_section(perf: Mapping[str, Any] | None, skipped: Mapping[str, str]) -> str:
    if not perf:
        why = skipped.get("performance")
        return f'<p class="muted">Not measured{": " + _e(why) if why else ""}.</p>'
    rows = []
    for r in perf.get("metrics") or []:
        drop = r.get("relative_drop")
        drop_text = "–" if drop is None else (f"{drop:.1%} worse" if drop > 0 else f"{-drop:.1%} better")
        flag = '<span class="badge b-drift">degraded</span>' if r.get("degraded") else \
            ('<span class="badge b-ok">ok</span>' if r.get("decides") else "")
        rows.append(f"<tr><td>{_e(r.get('metric'))}{' (decides)' if r.get('decides') else ''}</td>"
                    f"<td class='n'>{_num(r.get('recorded'))}</td><td class='n'>{_num(r.get('batch'))}</td>"
                    f"<td class='n'>{_e(drop_text)}</td><td>{flag}</td></tr>")
    intro = (f"<p>On the {_num(perf.get('rows'))} batch rows that carry the true outcome, compared with the "
             f"model's recorded test metrics (a metric that decides is degraded when it is more than "
             f"{_pct(perf.get('max_relative_drop'))} worse).</p>")
    return (intro + "<table><tr><th>Metric</th><th class='n'>Recorded (test)</th><th class='n'>This batch</th>"
            "<th class='n'>Change</th><th></th></tr>" + "".join(rows) + "</table>")


def _multivariate_section(mv: Mapping[str, Any] | None, skipped: Mapping[str, str]) -> str:
    if not mv:
        why = skipped.get("multivariate")
        return f'<p class="muted">Not measured{": " + _e(why) if why else ""}.</p>'
    return (f"<p>{_badge(mv.get('drift'))} A classifier trained to tell batch rows from training rows "
            f"({_num(mv.get('n_reference'))} and {_num(mv.get('n_batch'))} rows, {_num(mv.get('folds'))}-fold "
            f"cross-validation on {_e(', '.join(map(str, mv.get('columns') or [])))}) reaches a ROC AUC of "
            f"<b>{_num(mv.get('auc'))}</b> (0.5 means it cannot tell them apart; the threshold is "
            f"{_num(mv.get('threshold'))}). This catches changes in how features combine that each "
            f"feature alone may not show.</p>")


def _rule_text(check: Mapping[str, Any]) -> str:
    cfg = check.get("config") or {}
    rule = (cfg.get("rule") or {}).get("drift_share")
    critical = list(cfg.get("critical") or []) + [n for n, s in (cfg.get("features") or {}).items()
                                                   if isinstance(s, Mapping) and s.get("critical")]
    n = check.get("n_features") or 0
    k = len(check.get("drifted") or [])
    share = check.get("drift_share")
    text = (f"The dataset drifts when at least <b>{_pct(rule)}</b> of the model's features drift"
            + (f", or when a critical feature drifts ({_e(', '.join(dict.fromkeys(critical)))})" if critical else "")
            + f". In this batch <b>{k} of {n}</b> feature{'s' if n != 1 else ''} drift ({_pct(share)}).")
    th = cfg.get("thresholds") or {}
    tests = (f"Each feature is compared with the training data: with few values, by a statistical test "
             f"(Kolmogorov–Smirnov for numbers, chi-square for categories; p-value below {_num(th.get('p_value'))} "
             f"after correcting for the number of features, and an effect size of at least "
             f"{_num(th.get('min_effect'))}); with many values, by a distance (normed Wasserstein ≥ "
             f"{_num(th.get('wasserstein'))}, Jensen–Shannon ≥ {_num(th.get('js'))}), so a large batch "
             "does not flag a trivial shift.")
    return f"<p>{text}</p><p class='note'>{_e(tests)}</p>"


def _facts(check: Mapping[str, Any]) -> str:
    batch = check.get("batch") or {}
    reference = check.get("reference") or {}
    source = batch.get("source_path")
    batch_text = _e(check.get("batch_ref") or batch.get("dataset_ref") or "the batch")
    if source:
        batch_text += f' <span class="muted">from {_e(os.path.basename(str(source)))}</span>'
    batch_text += f" · {_num(batch.get('n_rows'))} rows"
    if reference.get("source") == "rows":
        part = "training rows" if reference.get("part") == "train" else "rows"
        ref_text = f"the {part} the model was trained on ({_num(reference.get('n_rows'))} rows)"
    elif reference.get("source") == "profile":
        ref_text = f"the stored profile of the training data ({_num(reference.get('n_rows'))} rows)"
    else:
        ref_text = "the training data"
    rows = [("Model", _e(check.get("ref"))), ("Batch", batch_text), ("Compared with", _e(ref_text)),
            ("Checked", _e(_when(check.get("created_at")))), ("Checked by", _e(check.get("created_by") or "–")),
            ("Check", _e(f"#{check.get('id')}"))]
    return "<table class='facts'>" + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _retraining_section(items: Sequence[Mapping[str, Any]]) -> str:
    if not items:
        return ""
    rows = "".join(f"<tr><td>{_e(r.get('ref'))}</td><td>{_e(r.get('comparison') or '')}</td></tr>" for r in items)
    return ("<h2>Retrained from this check</h2><p>New versions trained on this data and registered as "
            "challengers (promotion is a separate decision).</p>"
            f"<table><tr><th>Version</th><th>Compared with the champion</th></tr>{rows}</table>")


def render_check_html(check: Mapping[str, Any]) -> str:
    """The whole report of a check (:func:`modelyard.core.monitoring.drift.get_check`'s dict) as one HTML page."""
    from modelyard._version import __version__

    verdict = str(check.get("verdict") or "error")
    features = sorted(check.get("features") or [],
                      key=lambda r: (r.get("status") != "checked", not r.get("drift"), -(r.get("score") or 0.0),
                                     str(r.get("name"))))
    skipped = dict(check.get("skipped") or {})
    reasons = "".join(f"<li>{_e(r)}</li>" for r in check.get("reasons") or [])
    title = f"Drift report: {check.get('ref')} on {check.get('batch_file') or check.get('batch_ref') or 'a batch'}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        (f'<p class="sub">Is the new data still like the data the model learnt from? Checked '
        f"{_e(_when(check.get('created_at')))}.</p>"),
        f'<div class="banner v-{_e(verdict)}"><span class="word">{_e(VERDICT_WORDS.get(verdict, verdict))}</span> '
        f"{_e(VERDICT_TEXT.get(verdict, ''))}" + (f"<ul>{reasons}</ul>" if reasons else "") + "</div>",
        _facts(check),
        "<h2>The rule</h2>", _rule_text(check),
        "<h2>Features</h2>",
        ('<p class="note">Sorted by drift: drifting features first, then by drift score (the effect size, '
        "0 = same distribution, 1 = completely different).</p>"),
        _feature_table(features),
        "<h2>Schema problems</h2>", _schema_section(check.get("schema") or []),
    ]
    target = check.get("target")
    parts.append("<h2>The target</h2>")
    if target:
        parts.append(_feature_section(-1, target, what="the outcome the model predicts (label drift)"))
    else:
        parts.append('<p class="muted">The batch does not carry the target, so the outcomes could not be '
                     "compared.</p>")
    parts += ["<h2>Prediction drift</h2>", _prediction_section(check.get("prediction"), skipped),
              "<h2>Performance</h2>", _performance_section(check.get("performance"), skipped),
              "<h2>All features together</h2>", _multivariate_section(check.get("multivariate"), skipped)]
    if skipped:
        parts.append("<h2>Not measured</h2><ul>" + "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>"
                                                           for k, v in skipped.items()) + "</ul>")
    parts.append("<h2>Each feature</h2>")
    parts += [_feature_section(i, row) for i, row in enumerate(features)]
    parts.append(_retraining_section(check.get("retrained") or []))
    config = json.dumps(check.get("config") or {}, indent=2, sort_keys=True, default=str)
    parts.append(f"<h2>Configuration</h2><details><summary>The settings this check was decided with</summary>"
                 f"<pre>{_e(config)}</pre></details>")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<footer>Generated by Modelyard {_e(__version__)} on {_e(now)} from drift check "
                 f"#{_e(check.get('id'))}. This file is self-contained: it needs nothing else to open.</footer>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


# =========================================================================== the file


def _retrained(store: Store, check_id: int) -> list[dict[str, Any]]:
    """Versions retrained from the check, with their comparison (from the ``retrain`` audit events)."""
    from sqlalchemy import select

    from modelyard.core.store import models as m

    with store.session() as s:
        edges = s.execute(select(m.LineageEdge.dst_id, m.LineageEdge.details).where(
            m.LineageEdge.src_type == "monitoring_check", m.LineageEdge.src_id == str(check_id),
            m.LineageEdge.relation == "retrained_as").order_by(m.LineageEdge.id)).all()
        if not edges:
            return []
        events = s.execute(select(m.AuditEvent.to_value, m.AuditEvent.comment, m.AuditEvent.details).where(
            m.AuditEvent.action == "retrain")).all()
    comments = {str((d or {}).get("run_id")): c for _, c, d in events}
    return [{"run_id": run, "ref": (details or {}).get("ref"), "comparison": comments.get(run)}
            for run, details in edges]


def check_report_html(store: Store, check_id: int) -> str:
    """Check ``check_id``'s whole report as HTML text (what :func:`export_check_html` writes; the
    window shows it in its Report view)."""
    from modelyard.core.monitoring import drift

    check = dict(drift.get_check(store, int(check_id)))
    check["retrained"] = _retrained(store, int(check_id))
    return render_check_html(check)


def export_check_html(store: Store, check_id: int, path: str | os.PathLike[str]) -> Path:
    """Write check ``check_id``'s report to ``path`` (a file, or a folder to put
    ``drift-check-<id>.html`` in); returns the file written."""
    from modelyard.core.common.errors import ModelyardError

    text = check_report_html(store, check_id)
    target = Path(os.path.expanduser(os.fspath(path)))
    if target.is_dir():
        target = target / f"drift-check-{int(check_id)}.html"
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ModelyardError(f"There is no folder {folder} to write the report into.",
                             hint="Create the folder, or choose another path.")

    def write(tmp: Path) -> None:
        with open(tmp, "x", encoding="utf-8", newline="\n") as f:
            f.write(text)

    write_replacing(target, write, what="the report")
    return target
