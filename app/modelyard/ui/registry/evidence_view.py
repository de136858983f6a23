"""A snapshot document (docs/governance.md "Replay") on one page: the verdict, the metrics with
their intervals against the champion, the gates as they were set, the groups' gaps and the model
card's review fields.

A minimal stand-in of helper "card"'s EvidenceView (same name, same ``set_snapshot``) so the Review
tab works before it lands; it renders the document as rich text, no plots.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTextBrowser, QVBoxLayout, QWidget

from modelyard.ui.common import theme


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else "—"


def _interval(cell: dict[str, Any] | None) -> str:
    if not cell:
        return "—"
    text = _num(cell.get("value"))
    if cell.get("low") is not None and cell.get("high") is not None:
        text += f" <span style='color:gray'>[{_num(cell['low'])} – {_num(cell['high'])}]</span>"
    return text


def snapshot_html(snap: dict[str, Any]) -> str:
    esc = html.escape
    ok, bad = theme.status_colour("ok").name(), theme.status_colour("failed").name()
    report = snap.get("gate_report") or {}
    parts: list[str] = []
    if report:
        passed = bool(report.get("passed"))
        colour, mark = (ok, "✔") if passed else (bad, "✖")
        verdict = "passes the gates" if passed else "is blocked by the gates"
        parts.append(f"<p style='color:{colour}'><b>{mark} {esc(str(snap.get('candidate') or ''))} {verdict}</b></p>")
        if report.get("reasons"):
            parts.append("<ul>" + "".join(f"<li>{esc(r)}</li>" for r in report["reasons"]) + "</ul>")
    gates = snap.get("gates") or {}
    rules = [f"{esc(k)} at least {_num(v)}" for k, v in (gates.get("min_metrics") or {}).items()]
    if gates.get("beat_champion"):
        rules.append("beat the champion on " + esc(", ".join(gates["beat_champion"]) if isinstance(
            gates["beat_champion"], list) else str(gates["beat_champion"])))
    for f in gates.get("fairness") or []:
        limit = (f"gap at most {_num(f['max_gap'])}" if f.get("max_gap") is not None
                 else f"ratio at least {_num(f.get('min_ratio'))}")
        rules.append(f"{esc(str(f.get('metric')))} {limit} between groups of {esc(str(f.get('column')))}")
    parts.append("<p><b>Gates</b>: " + ("; ".join(rules) if rules else "none set") + "</p>")
    evidence = snap.get("evidence") or {}
    metrics = evidence.get("metrics") or []
    if metrics:
        champion = esc(str(evidence.get("champion") or snap.get("champion") or "champion"))
        rows = "".join(f"<tr><td>{esc(str(m.get('metric')))}</td><td>{_interval(m.get('candidate'))}</td>"
                       f"<td>{_interval(m.get('champion'))}</td><td>{_interval(m.get('difference'))}</td></tr>"
                       for m in metrics)
        n = (evidence.get("rows") or {}).get("n")
        parts.append(f"<p><b>Metrics</b> on {n or '?'} held-out rows ({_num(evidence.get('confidence'))} intervals)</p>"
                     f"<table cellspacing=4><tr><th align=left>metric</th><th align=left>"
                     f"{esc(str(snap.get('candidate') or 'candidate'))}</th><th align=left>{champion}</th>"
                     f"<th align=left>difference</th></tr>{rows}</table>")
    elif snap.get("evidence") is None:
        parts.append("<p style='color:gray'>No evidence was computed for this version.</p>")
    for group in evidence.get("groups") or []:
        gaps = "; ".join(f"{esc(k)} gap {_num(g.get('gap'))} (worst {esc(str(g.get('worst')))})"
                         for k, g in (group.get("gaps") or {}).items())
        parts.append(f"<p><b>Groups of {esc(str(group.get('column')))}</b>: {gaps or 'no gaps'}</p>")
    card = snap.get("card") or {}
    labels = {"intended_use": "Intended use", "out_of_scope_uses": "Out-of-scope uses",
              "known_limitations": "Known limitations", "ethical_considerations": "Ethical considerations"}
    for key, label in labels.items():
        text = str(card.get(key) or "").strip()
        parts.append(f"<p><b>{label}</b>: " + (esc(text) if text else "<span style='color:gray'>not filled</span>")
                     + "</p>")
    return "".join(parts)


class EvidenceView(QWidget):
    """Shows one snapshot document (or a hint when there is none)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evidenceView")
        self.snapshot: dict[str, Any] | None = None
        self.browser = QTextBrowser(self)
        self.browser.setObjectName("evidenceBrowser")
        self.browser.setOpenLinks(False)
        self.browser.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.browser)
        self.set_snapshot(None)

    def set_snapshot(self, snapshot: dict[str, Any] | None) -> None:
        self.snapshot = snapshot
        if snapshot is None:
            self.browser.setHtml("<p style='color:gray'>Select a request to see the evidence it was made on.</p>")
            return
        self.browser.setHtml(snapshot_html(snapshot))

    def text(self) -> str:
        """What the view shows, as plain text (tests read it)."""
        return self.browser.toPlainText()
