"""What the Monitoring panel says about a check: its summary line, its findings, and why Retrain is off."""

from __future__ import annotations

import html
from typing import Any

from modelyard.ui.common import theme
from modelyard.ui.monitoring.tables import num, when

RETRAIN_TIP = "Retrain {ref}'s recorded training spec on this batch and register it as challenger"


def summary_html(c: dict[str, Any]) -> str:
    """The check's one-line summary, its verdict word coloured, then the batch and when."""
    colour = theme.status_colour(c.get("verdict") or "ok").name()
    summary = c.get("summary") or (c.get("verdict") or "").upper()
    word, _, rest = summary.partition(":")
    batch = c.get("batch_file") or c.get("batch_ref") or "a batch"
    return (f"<b style='color:{colour}'>{html.escape(word)}</b>{html.escape(':' + rest if rest else '')}"
            f"<br><span style='color:gray'>{html.escape(batch)} against {html.escape(c.get('ref') or '')} · "
            f"checked {html.escape(when(c.get('created_at')))} · <a href='#report'>the whole report</a></span>")


def findings_text(c: dict[str, Any]) -> str:
    """Every finding of the check, once each, as plain lines (the summary's tooltip)."""
    lines = [c.get("summary") or ""]
    lines += [f"• {r}" for r in c.get("reasons") or []]
    pred = c.get("prediction") or {}
    row = (pred.get("labels") or pred.get("values") or {}) if pred and not pred.get("error") else {}
    if row:
        lines.append(f"Prediction drift: {row.get('test', '')} {row.get('effect_name') or ''} {num(row.get('effect'))}"
                     f" → {'drift' if row.get('drift') else 'ok'}")
    for mrow in (c.get("performance") or {}).get("metrics") or []:
        if mrow.get("decides") or mrow.get("degraded"):
            lines.append(f"Performance: {mrow['metric']} {num(mrow.get('batch'))} on this batch vs "
                         f"{num(mrow.get('recorded'))} recorded" + (" — degraded" if mrow.get("degraded") else ""))
    mv = c.get("multivariate") or {}
    if mv.get("auc") is not None:
        lines.append(f"Domain classifier ROC AUC {mv['auc']:.3f} (threshold {mv.get('threshold')}) → "
                     f"{'drift' if mv.get('drift') else 'ok'}")
    for what, why in (c.get("skipped") or {}).items():
        lines.append(f"Not measured: {what} ({why})")
    return "\n".join(dict.fromkeys(x for x in lines if x))


def retrain_state(c: dict[str, Any] | None, blocker: str | None) -> tuple[bool, str]:
    """(whether Retrain… can start from check ``c``, the button's tooltip saying why or why not)."""
    if c is None:
        return False, "Select a check to retrain from its batch."
    if blocker:
        return False, f"Cannot retrain: {blocker}"
    if c.get("verdict") not in ("drift", "warning"):
        return False, "This batch does not drift from the training data: there is nothing to retrain for."
    return True, RETRAIN_TIP.format(ref=c.get("ref") or "the model")
