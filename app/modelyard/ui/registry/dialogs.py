"""The Registry panel's dialogs: every change asks for a comment, gates are edited in a form.

Each dialog is modal (``exec``) and small; the panel calls the registry once it is accepted, so
nothing here writes to the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.names import plural
from modelyard.ui.common import theme
from modelyard.ui.common.widgets import comment_and_save
from modelyard.ui.registry.tables import short_when


def override_gates(parent: QWidget, title: str, message: str, what: str, comment: str, action: str) -> bool:
    """Ask whether to override the gates that blocked ``what`` (a promotion or an approval): the
    gates' reasons (``message``), and that the override is audited with ``comment``. ``action``
    names the button ("Override and promote"). True when the user chose to override."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Cancel, parent)
    box.setObjectName("gateBlockedBox")
    box.setInformativeText(f"You can override the gates for {what}; the override and your comment "
                           f"“{comment}” are written to the audit log.")
    override = box.addButton(action, QMessageBox.ButtonRole.DestructiveRole)
    override.setObjectName("overrideButton")
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is override

LOWER_IS_BETTER = ("rmse", "mae", "mape", "log_loss", "mse", "loss")


class ChangeDialog(QDialog):
    """A change to a registered model: what it does, an optional choice, and a required comment.

    ``choices`` (with ``editable``) adds a combo box above the comment: the alias to set, the
    stage to move to, the name to register under.
    """

    def __init__(self, title: str, summary: str, parent: QWidget | None = None, *, choice_label: str = "",
                 choices: Sequence[str] = (), current: str | None = None, editable: bool = False,
                 placeholder: str = "Why? (written to the audit log)", ok_text: str = "OK",
                 comment_required: bool = True) -> None:
        super().__init__(parent)
        self.setObjectName("changeDialog")
        self.setWindowTitle(title)
        self.setMinimumWidth(460)
        self.summary = QLabel(summary, self)
        self.summary.setObjectName("changeSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.choice: QComboBox | None = None
        form = QFormLayout()
        if choice_label:
            self.choice = QComboBox(self)
            self.choice.setObjectName("changeChoice")
            self.choice.setEditable(editable)
            self.choice.addItems(list(choices))
            if current is not None:
                self.choice.setCurrentText(current)
            self.choice.currentTextChanged.connect(self._update)
            form.addRow(choice_label, self.choice)
        self.comment = QLineEdit(self)
        self.comment.setObjectName("changeComment")
        self.comment.setPlaceholderText(placeholder)
        self.comment.textChanged.connect(self._update)
        form.addRow("Comment:", self.comment)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.comment_required = comment_required
        layout = QVBoxLayout(self)
        layout.setSpacing(theme.SPACE_M)
        layout.addWidget(self.summary)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self._update()

    @property
    def ok_button(self) -> Any:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    def _update(self) -> None:
        ok = bool(self.comment.text().strip()) or not self.comment_required
        if self.choice is not None:
            ok = ok and bool(self.choice.currentText().strip())
        self.ok_button.setEnabled(ok)

    def choice_text(self) -> str:
        return self.choice.currentText().strip() if self.choice is not None else ""

    def comment_text(self) -> str:
        return self.comment.text().strip()


class GatesDialog(QDialog):
    """A model's promotion gates: minimum test metrics and "must beat the champion"."""

    def __init__(self, name: str, metrics: Sequence[str], gates: dict[str, Any] | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gatesDialog")
        self.setWindowTitle(f"Promotion gates of {name}")
        self.setMinimumWidth(480)
        gates = gates or {}
        mins = gates.get("min_metrics") or {}
        intro = QLabel(f"Making a version of <b>{name}</b> <i>champion</i>, or moving it to <i>Production</i>, "
                       "must pass these gates. A failing gate blocks the promotion and says why.", self)
        intro.setWordWrap(True)
        grid = QGridLayout()
        grid.addWidget(QLabel("<b>Minimum test metrics</b>", self), 0, 0, 1, 2)
        self.min_checks: dict[str, QCheckBox] = {}
        self.min_values: dict[str, QDoubleSpinBox] = {}
        keys = list(dict.fromkeys([*metrics, *mins]))
        for row, key in enumerate(keys, start=1):
            check = QCheckBox(key, self)
            check.setObjectName(f"minCheck_{key}")
            spin = QDoubleSpinBox(self)
            spin.setObjectName(f"minValue_{key}")
            spin.setDecimals(4)
            spin.setRange(-1e9, 1e9)
            spin.setSingleStep(0.01)
            if key in mins:
                check.setChecked(True)
                spin.setValue(float(mins[key]))
            spin.setEnabled(check.isChecked())
            check.toggled.connect(spin.setEnabled)
            grid.addWidget(check, row, 0)
            grid.addWidget(spin, row, 1)
            self.min_checks[key], self.min_values[key] = check, spin
        if not keys:
            grid.addWidget(QLabel("The versions record no test metrics.", self), 1, 0, 1, 2)
        beat = gates.get("beat_champion") or {}
        self.beat_check = QCheckBox("Must beat the current champion on the same test split", self)
        self.beat_check.setObjectName("beatCheck")
        self.beat_metric = QComboBox(self)
        self.beat_metric.setObjectName("beatMetric")
        self.beat_metric.addItems(keys)
        self.lower_check = QCheckBox("lower is better", self)
        self.lower_check.setObjectName("lowerCheck")
        if beat:
            self.beat_check.setChecked(True)
            self.beat_metric.setCurrentText(beat.get("metric", ""))
            self.lower_check.setChecked(not beat.get("higher_is_better", True))
        else:
            self.beat_metric.currentTextChanged.connect(
                lambda k: self.lower_check.setChecked(k.lower().startswith(LOWER_IS_BETTER)))
        self.beat_metric.setEnabled(self.beat_check.isChecked())
        self.beat_check.toggled.connect(self.beat_metric.setEnabled)
        n = len(keys) + 1
        grid.addWidget(self.beat_check, n, 0, 1, 2)  # its own row: the sentence is never cut
        on = QHBoxLayout()
        on.setContentsMargins(theme.SPACE_L, 0, 0, 0)
        on.addWidget(QLabel("on", self))
        on.addWidget(self.beat_metric, 1)
        on.addWidget(self.lower_check)
        grid.addLayout(on, n + 1, 0, 1, 2)
        self.comment = QLineEdit(self)
        self.comment.setObjectName("changeComment")
        self.comment.setPlaceholderText("Why? (written to the audit log)")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.comment.textChanged.connect(
            lambda t: self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(t.strip())))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
        form = QFormLayout()
        form.addRow("Comment:", self.comment)
        layout = QVBoxLayout(self)
        layout.setSpacing(theme.SPACE_M)
        layout.addWidget(intro)
        layout.addLayout(grid)
        layout.addLayout(form)
        layout.addWidget(self.buttons)

    def gates(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        mins = {k: self.min_values[k].value() for k, c in self.min_checks.items() if c.isChecked()}
        if mins:
            out["min_metrics"] = mins
        if self.beat_check.isChecked() and self.beat_metric.currentText():
            out["beat_champion"] = {"metric": self.beat_metric.currentText(),
                                    "higher_is_better": not self.lower_check.isChecked()}
        return out

    def comment_text(self) -> str:
        return self.comment.text().strip()


class RegisterDialog(QDialog):
    """Pick a run that logged a model, the name to register it under, and a comment."""

    def __init__(self, runs: Sequence[dict[str, Any]], names: Sequence[str], current_name: str | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("registerDialog")
        self.setWindowTitle("Register a model")
        self.setMinimumWidth(560)
        self.runs = list(runs)
        intro = QLabel("Register the model a run logged as the next version of a named model. The version keeps "
                       "links to its run, dataset version and training spec.", self)
        intro.setWordWrap(True)
        self.run_combo = QComboBox(self)
        self.run_combo.setObjectName("runCombo")
        # long labels do not widen the dialog past the screen: the combo elides, each item's tooltip is whole
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.run_combo.setMinimumContentsLength(40)
        for r in self.runs:
            when = short_when(r.get("start_time"))
            label = f"{r['run_id'][:8]} · {r.get('name') or r.get('model') or ''} · {when}"
            if r["experiment"] != current_name:  # the usual case says it once, in the name below
                label += f" · {r['experiment']}"
            if r.get("registered_as"):
                label += f"  (already {', '.join(r['registered_as'])})"
            self.run_combo.addItem(label, r["run_id"])
            self.run_combo.setItemData(self.run_combo.count() - 1, f"run {r['run_id']}\n{label}",
                                       Qt.ItemDataRole.ToolTipRole)
        self.name_combo = QComboBox(self)
        self.name_combo.setObjectName("nameCombo")
        self.name_combo.setEditable(True)
        self.name_combo.addItems(list(names))
        self.name_combo.setCurrentText(current_name or (self.runs[0]["experiment"] if self.runs else ""))
        self.comment = QLineEdit(self)
        self.comment.setObjectName("changeComment")
        self.comment.setPlaceholderText("What is this version? (optional, written to the audit log)")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Register")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.name_combo.currentTextChanged.connect(
            lambda t: self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(t.strip())))
        form = QFormLayout()
        form.addRow("Run:", self.run_combo)
        form.addRow("Model name:", self.name_combo)
        form.addRow("Comment:", self.comment)
        layout = QVBoxLayout(self)
        layout.setSpacing(theme.SPACE_M)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.buttons)

    def run_id(self) -> str:
        return str(self.run_combo.currentData())

    def name(self) -> str:
        return self.name_combo.currentText().strip()

    def comment_text(self) -> str:
        return self.comment.text().strip()


NOTES_HINTS = {
    "intended_use": "What the model is for and who uses its scores, e.g. “Monthly churn scoring of retail "
                    "customers, to choose whom the retention team calls.”",
    "out_of_scope_uses": "What it must not be used for, e.g. “Pricing or credit decisions; business customers.”",
    "known_limitations": "Where it is known to do badly: data it was not trained on, groups it serves worse, "
                         "drift it is sensitive to.",
    "ethical_considerations": "Risks to the people it scores and how they are handled (see the group table "
                              "of the evidence).",
    "notes": "Anything else: links, caveats about the data… (optional)",
}


class NotesDialog(QDialog):
    """The parts of a model card the user writes: the four review fields a promotion request needs
    (intended use, out-of-scope uses, known limitations, ethical considerations) and free notes,
    saved together with one comment."""

    def __init__(self, ref: str, texts: dict[str, str], parent: QWidget | None = None, *,
                 revision: int = 0) -> None:
        from PySide6.QtWidgets import QPlainTextEdit

        from modelyard.core.registry.cards import NOTES_FIELDS, REVIEW_FIELDS
        from modelyard.ui.common.widgets import fit_to_screen

        super().__init__(parent)
        self.setObjectName("notesDialog")
        self.setWindowTitle(f"Model card of {ref}")
        self.setMinimumSize(480, 420)
        intro = QLabel(f"What a reviewer reads before <b>{ref}</b> is promoted. The four fields marked "
                       "<b>*</b> are required before a promotion can be requested."
                       + (f" This is revision {revision} of the card's texts." if revision else ""), self)
        intro.setWordWrap(True)
        self.intro = intro
        self.edits: dict[str, Any] = {}
        self.titles: dict[str, QLabel] = {}
        grid = QGridLayout()
        grid.setVerticalSpacing(theme.SPACE_XS)
        grid.setHorizontalSpacing(theme.SPACE_L)
        for i, (key, label) in enumerate(NOTES_FIELDS.items()):
            edit = QPlainTextEdit(str(texts.get(key) or ""), self)
            first, *rest = key.split("_")
            edit.setObjectName(first + "".join(w.title() for w in rest) + "Edit")  # intendedUseEdit
            edit.setPlaceholderText(NOTES_HINTS[key])
            edit.setTabChangesFocus(True)  # Tab moves to the next field, as in a form
            edit.setMinimumHeight(52)
            title = QLabel(self)
            title.setBuddy(edit)
            if key in REVIEW_FIELDS:  # a required field says so while it is empty (the intro says for what)
                mark = (lambda _t=None, title=title, edit=edit, label=label:
                        title.setText(f"<b>{label}</b> *" + ("" if edit.toPlainText().strip() else
                                      f" <span style='color:{theme.status_colour('failed').name()}'>"
                                      "required</span>")))
                edit.textChanged.connect(mark)
                mark()
            else:
                title.setText(f"<b>{label}</b>")
            self.titles[key] = title
            row, col = divmod(i, 2)
            span = 2 if key == "notes" else 1  # the free notes take the whole last row
            grid.addWidget(title, 2 * row, col, 1, span)
            grid.addWidget(edit, 2 * row + 1, col, 1, span)
            grid.setRowStretch(2 * row + 1, 1)
            self.edits[key] = edit
        self.intended_use = self.edits["intended_use"]
        self.out_of_scope_uses = self.edits["out_of_scope_uses"]
        self.known_limitations = self.edits["known_limitations"]
        self.ethical_considerations = self.edits["ethical_considerations"]
        self.notes = self.edits["notes"]
        self.comment, self.buttons = comment_and_save(self)
        form = QFormLayout()
        form.addRow("Comment:", self.comment)
        layout = QVBoxLayout(self)
        layout.setSpacing(theme.SPACE_M)
        layout.addWidget(intro)
        layout.addLayout(grid, 1)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        fit_to_screen(self, 820, 560, parent)

    def texts(self) -> dict[str, str]:
        """Every text as written (trimmed), by its key in :data:`modelyard.core.registry.cards.NOTES_FIELDS`."""
        return {key: edit.toPlainText().strip() for key, edit in self.edits.items()}

    def comment_text(self) -> str:
        return self.comment.text().strip()


class BundleImportDialog(QDialog):
    """What a verified bundle holds, its warnings, and the explicit trust an unpickle-only model needs."""

    def __init__(self, path: Any, report: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("bundleImportDialog")
        self.setWindowTitle(f"Import {path.name}")
        self.setMinimumWidth(560)
        self.report = report
        name, version = report.name, report.version
        ok = theme.status_colour("ok").name()
        warn = theme.status_colour("warning").name()
        lines = [f"<b>{name}</b> v{version}" + (f", exported by {report.created_by}" if report.created_by else "")
                 + (f" on {report.created_at[:16].replace('T', ' ')}" if report.created_at else ""),
                 f"<span style='color:{ok}'>✔ every checksum verified ({plural(len(report.files), 'file')})</span>"]
        sig = report.signature or {}
        if sig.get("status") == "verified":
            lines.append(f"<span style='color:{ok}'>✔ signed by {sig.get('signer') or sig.get('key_id')}</span>")
        elif sig.get("status") == "unknown_key":
            lines.append(f"<span style='color:{warn}'>⚠ signed with a key this store does not trust</span>")
        else:
            lines.append(f"<span style='color:{warn}'>⚠ not signed</span>")
        if report.safe_load:
            lines.append(f"<span style='color:{ok}'>✔ the model loads without unpickling (skops)</span>")
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in list(report.metrics.items())[:4] if isinstance(v, (int, float)))
        if metrics:
            lines.append(f"Test metrics: {metrics}")
        if not report.has_profile:
            lines.append(f"<span style='color:{warn}'>⚠ no reference profile: drift checks need a dataset</span>")
        for w in report.warnings or []:
            lines.append(f"<span style='color:{warn}'>⚠ {w}</span>")
        summary = QLabel("<br>".join(lines), self)
        summary.setObjectName("bundleSummary")
        summary.setWordWrap(True)
        summary.setTextFormat(Qt.TextFormat.RichText)
        self.name_edit = QLineEdit(self)
        self.name_edit.setObjectName("bundleName")
        self.name_edit.setPlaceholderText(f"{name} (the name in the bundle)")
        self.trust = QCheckBox("I trust this bundle: load its model by unpickling it", self)
        self.trust.setObjectName("trustPickle")
        safe = bool(report.safe_load)
        self.trust.setVisible(not safe)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Import")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Register as:", self.name_edit)
        layout = QVBoxLayout(self)
        layout.setSpacing(theme.SPACE_M)
        layout.addWidget(summary)
        if not safe:
            why = QLabel("The model in this bundle can only be loaded by unpickling it, which can run any code "
                         "its author put in it. Import it only if you trust where it came from.", self)
            why.setWordWrap(True)
            why.setStyleSheet(f"color: {theme.status_colour('failed').name()}")
            layout.addWidget(why)
            ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
            ok_button.setEnabled(False)
            self.trust.toggled.connect(ok_button.setEnabled)
        layout.addLayout(form)
        layout.addWidget(self.trust)
        layout.addWidget(self.buttons)

    def trust_pickle(self) -> bool:
        return self.trust.isChecked()

    def name(self) -> str | None:
        return self.name_edit.text().strip() or None
