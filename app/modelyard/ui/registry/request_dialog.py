"""The "Request promotion…" dialog: ask an approver to make a version champion (or move it to
Production), with a reason.

It shows the candidate against the version it would replace, and what must be done before the
request can be made, each with the way to do it: the model card's review fields
(``cards.missing_review_fields``; "Edit card…") and evidence computed against the current
champion (none, or computed against another champion; "Compute evidence" starts the evidence
job). It reads all that off the main thread, and again whenever the models change (a card saved,
the evidence job done). The panel makes the request once the dialog is accepted.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from modelyard.ui.common import theme
from modelyard.ui.common.widgets import push_button
from modelyard.ui.registry.tables import short_when

TARGETS = ("champion", "Production")
MAX_COMPARED = 6  # metrics shown side by side (the evidence view has them all)


@dataclass(frozen=True)
class Readiness:
    """What the dialog shows of a candidate (plain data, read off the main thread)."""

    ref: str
    version: int
    champion: str | None  # NAME@vN of the current champion when another version
    production: list[str]  # NAME@vN of the versions in Production (other than the candidate)
    missing_fields: list[str]  # labels of the card's review fields left empty
    evidence_at: Any = None  # when the newest evidence was computed (None: never)
    evidence_champion: str | None = None  # the champion it was computed against
    metrics: list[tuple[str, str, str]] = field(default_factory=list)  # metric, candidate, champion (text)
    gates_passed: bool = True
    gate_reasons: list[str] = field(default_factory=list)

    @property
    def evidence_ok(self) -> bool:
        return self.evidence_at is not None and self.evidence_champion == self.champion


def _cell(cell: dict[str, Any] | None) -> str:
    if not cell or not isinstance(cell.get("value"), (int, float)):
        return "—"
    text = f"{cell['value']:.4g}"
    if isinstance(cell.get("low"), (int, float)) and isinstance(cell.get("high"), (int, float)):
        text += f" [{cell['low']:.3g}–{cell['high']:.3g}]"
    return text


def read_readiness(store: Any, ref: str) -> Readiness:
    """The candidate's card, evidence and gates against the current champion (reading thread)."""
    from modelyard.core.registry import cards
    from modelyard.core.registry import versions as registry
    from modelyard.core.registry.review import evidence

    info = registry.get_version(store, ref)
    model = registry.get_model(store, info.name)
    champ_n = model.aliases.get(registry.CHAMPION)
    champion = f"{info.name}@v{champ_n}" if champ_n and champ_n != info.version else None
    production = [f"{info.name}@v{n}" for n in model.stages.get("Production", []) if n != info.version]
    ev = evidence.latest_evidence(store, info.ref)
    metrics: list[tuple[str, str, str]] = []
    if ev is not None and ev.payload.get("metrics"):
        for m in ev.payload["metrics"][:MAX_COMPARED]:
            metrics.append((str(m.get("metric")), _cell(m.get("candidate")), _cell(m.get("champion"))))
    else:
        other = registry.get_version(store, champion).metrics if champion else {}
        for key, value in list(info.metrics.items())[:MAX_COMPARED]:
            theirs = other.get(key)
            metrics.append((key, f"{value:.4g}" if isinstance(value, (int, float)) else "—",
                            f"{theirs:.4g}" if isinstance(theirs, (int, float)) else "—"))
    report = registry.check_gates(store, info.ref)
    return Readiness(ref=info.ref, version=info.version, champion=champion, production=production,
                     missing_fields=cards.missing_review_fields(info.card),
                     evidence_at=ev.created_at if ev is not None else None,
                     evidence_champion=ev.champion if ev is not None else None, metrics=metrics,
                     gates_passed=bool(report.passed), gate_reasons=list(report.reasons))


class RequestDialog(QDialog):
    """Asks for the reason of a promotion request; ``panel`` gives the client, the job runner and
    the card editor."""

    def __init__(self, panel: Any, ref: str, target: str = "champion", reason: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent or panel)
        self.setObjectName("requestDialog")
        self.setWindowTitle(f"Request promotion of {ref}")
        self.setMinimumWidth(600)
        self.panel = panel
        self.ref = ref
        self.readiness: Readiness | None = None
        self.job: Any = None  # the evidence job this dialog started
        self.job_error = ""

        self.summary = QLabel(self)
        self.summary.setObjectName("requestIntro")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.target = QComboBox(self)
        self.target.setObjectName("requestTarget")
        self.target.addItems(list(TARGETS))
        self.target.setCurrentText(target if target in TARGETS else TARGETS[0])
        self.target.currentTextChanged.connect(lambda _t: self._show())
        self.compare = QLabel(self)
        self.compare.setObjectName("requestCompare")
        self.compare.setTextFormat(Qt.TextFormat.RichText)
        self.compare.setWordWrap(True)

        self.card_label = self._line("requestCardLabel")
        self.evidence_label = self._line("requestEvidenceLabel")
        self.gates_label = self._line("requestGatesLabel")
        self.edit_card_button = push_button(self, "Edit card…", self._edit_card, name="editCardButton",
                                            tip="Fill the model card's review fields (they are versioned with "
                                                "the card)")
        self.evidence_button = push_button(self, "Compute evidence", self._compute, name="computeEvidenceButton",
                                           tip="Start the evidence job: metrics with intervals against the "
                                               "champion, group metrics, explanations")
        checks = QGridLayout()
        checks.setHorizontalSpacing(theme.SPACE_M)
        checks.setColumnStretch(0, 1)
        checks.addWidget(self.card_label, 0, 0)
        checks.addWidget(self.edit_card_button, 0, 1)
        checks.addWidget(self.evidence_label, 1, 0)
        checks.addWidget(self.evidence_button, 1, 1)
        checks.addWidget(self.gates_label, 2, 0, 1, 2)

        self.reason = QPlainTextEdit(reason, self)
        self.reason.setObjectName("requestReason")
        self.reason.setTabChangesFocus(True)
        self.reason.setPlaceholderText("Why should this version be promoted? The approver reads this first.")
        self.reason.setFixedHeight(self.fontMetrics().lineSpacing() * 4 + 12)
        self.reason.textChanged.connect(self._update)
        form = QFormLayout()
        form.addRow("Move to:", self.target)
        form.addRow("Reason:", self.reason)
        self.status = QLabel(self)
        self.status.setObjectName("requestStatus")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.ok_button.setText("Request promotion")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setSpacing(theme.SPACE_M)
        layout.addWidget(self.summary)
        layout.addWidget(self.compare)
        heading = QLabel("<b>Before an approver can review it</b>", self)
        layout.addWidget(heading)
        layout.addLayout(checks)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        client = panel.client
        client.changed.connect(self._changed)
        if panel.runner is not None:
            panel.runner.job_finished.connect(self._job_finished)
        self.finished.connect(lambda _r: self._disconnect())
        self._show()
        self.reload()

    def _line(self, name: str) -> QLabel:
        label = QLabel(self)
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.RichText)
        return label

    @property
    def ok_button(self) -> Any:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    def values(self) -> tuple[str, str]:
        """(target, reason) as asked."""
        return self.target.currentText(), self.reason.toPlainText().strip()

    # ------------------------------------------------------------------ reading
    def reload(self) -> None:
        ref = self.ref
        self.panel.client.read(f"registry.request-ready.{id(self)}", lambda store: read_readiness(store, ref),
                               self._read, self._read_failed)

    def _read(self, readiness: Readiness) -> None:
        self.readiness = readiness
        if readiness.evidence_ok:
            self.job, self.job_error = None, ""
        self._show()

    def _read_failed(self, exc: Exception) -> None:
        self._say(f"Cannot read {self.ref}: {getattr(exc, 'message', None) or exc}")

    def _changed(self, topics: frozenset[str]) -> None:
        if "models" in topics and self.isVisible():
            self.reload()

    def _job_finished(self, handle: Any, outcome: Any) -> None:
        if handle is None or handle is not self.job:
            return
        self.job = None
        if not outcome.ok:
            self.job_error = (outcome.message or "the evidence job failed").rstrip(".") + "."
        self._show()

    def _disconnect(self) -> None:
        try:
            self.panel.client.changed.disconnect(self._changed)
            if self.panel.runner is not None:
                self.panel.runner.job_finished.disconnect(self._job_finished)
        except (RuntimeError, TypeError):
            pass

    # ------------------------------------------------------------------ showing
    def _show(self) -> None:
        esc = html.escape
        r = self.readiness
        target = self.target.currentText()
        ok, bad = theme.status_colour("ok").name(), theme.status_colour("failed").name()
        if r is None:
            self.summary.setText(f"Ask an approver to move <b>{esc(self.ref)}</b> to <b>{esc(target)}</b>.")
            self.card_label.setText("Reading the model card and its evidence…")
            self.evidence_label.setText("")
            self.gates_label.setText("")
            self.edit_card_button.hide()
            self.evidence_button.hide()
            self._update()
            return
        replaced = r.champion if target == "champion" else ", ".join(r.production) or None
        self.summary.setText(
            f"Ask an approver to make <b>{esc(r.ref)}</b> {esc(target)}"
            + (f", replacing <b>{esc(replaced)}</b>" if replaced else f" (no version is {esc(target)} now)")
            + ". It moves when an approver approves; until then you can withdraw the request.")
        if r.metrics:
            # the summary names both versions in full: the columns say v3 and v2 (champion)
            against = esc(r.champion.rpartition("@")[2]) if r.champion else ""
            rows = "".join(f"<tr><td>{esc(m)}</td><td align=right>{esc(a)}</td>"
                           + (f"<td align=right>{esc(b)}</td>" if r.champion else "") + "</tr>"
                           for m, a, b in r.metrics)
            self.compare.setText(f"<table cellspacing=6><tr><th align=left>metric</th>"
                                 f"<th align=right>v{r.version}</th>"
                                 + (f"<th align=right>{against} (champion)</th>" if r.champion else "")
                                 + f"</tr>{rows}</table>")
            self.compare.show()
        else:
            self.compare.hide()
        if r.missing_fields:
            self.card_label.setText(f"<span style='color:{bad}'>✖</span> The model card leaves empty: "
                                    f"{esc(', '.join(r.missing_fields))}; Edit card… fills them.")
        else:
            self.card_label.setText(f"<span style='color:{ok}'>✔</span> The model card's review fields are filled.")
        self.edit_card_button.setVisible(True)
        self.evidence_button.setVisible(not r.evidence_ok)
        self.evidence_button.setEnabled(self.job is None)
        if self.job is not None:
            self.evidence_label.setText(f"Computing the evidence of {esc(r.ref)}… (see the Jobs dock)")
            self.evidence_button.setText("Computing…")
        elif r.evidence_ok:
            self.evidence_label.setText(f"<span style='color:{ok}'>✔</span> Evidence computed "
                                        f"{esc(short_when(r.evidence_at))}"
                                        + (f" against {esc(r.champion)}." if r.champion else " (no champion)."))
        elif r.evidence_at is None:
            self.evidence_label.setText(f"<span style='color:{bad}'>✖</span> No evidence yet for {esc(r.ref)}: "
                                        "compute it (metrics with intervals, groups, explanations).")
            self.evidence_button.setText("Compute evidence")
        else:
            was = esc(r.evidence_champion or "no champion")
            now = esc(r.champion or "no champion")
            self.evidence_label.setText(f"<span style='color:{bad}'>✖</span> The evidence was computed against "
                                        f"{was}, but the champion is now {now}: compute it again.")
            self.evidence_button.setText("Compute again")
        if self.job_error:
            self.evidence_label.setText(self.evidence_label.text() + f"<br><span style='color:{bad}'>"
                                        f"{esc(self.job_error)}</span>")
        if r.gates_passed:
            self.gates_label.setText(f"<span style='color:{ok}'>✔</span> It passes the gates today; the approver's "
                                     "approval checks them again.")
        else:
            self.gates_label.setText(f"<span style='color:{bad}'>✖</span> The gates would block it today: "
                                     + esc(" ".join(r.gate_reasons)) + " An approver may still override them.")
        self._update()
        if self.isVisible():  # the texts grew from "Reading…": make room, never clip them
            self.layout().activate()
            self.resize(self.width(), max(self.height(), self.layout().totalHeightForWidth(self.width())))

    def _update(self) -> None:
        r = self.readiness
        reason = bool(self.reason.toPlainText().strip())
        missing = []
        if r is None:
            missing.append("the card and evidence are being read")
        else:
            if r.missing_fields:
                missing.append("the card's review fields")
            if not r.evidence_ok:
                missing.append("evidence against the current champion")
        if not reason:
            missing.append("a reason")
        self.ok_button.setEnabled(not missing)
        self.ok_button.setToolTip("Needs " + ", ".join(missing) + "." if missing else "Send the request to the approvers")
        self._say("")

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))

    # ------------------------------------------------------------------ actions
    def _edit_card(self) -> None:
        version = self.panel.version
        if version is None or version.ref != self.ref:
            self._say(f"Select {self.ref} in the Versions tab to edit its card.")
            return
        self.panel.edit_card_notes()

    def _compute(self) -> None:
        if self.job is not None:
            return
        self.job_error = ""
        self.evidence_button.setEnabled(False)
        self.job = self.panel.compute_evidence(self.ref)  # the same job a registration starts
        if self.job is None:
            self.job_error = "Cannot start the evidence job: this window runs no jobs."
        self._show()
