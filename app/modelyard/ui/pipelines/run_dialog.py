"""Run… : the pipeline's parameters (defaults filled in, one line each, read as YAML scalars),
"Run all steps again (ignore the cache)" and how many steps may run at once."""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.ui.common import theme


def scalar_text(value: Any) -> str:
    """A default as the user would type it (YAML): ``churn.csv``, ``0.25``, ``true``, ``[a, b]``."""
    if isinstance(value, str):
        return value
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def parse_value(name: str, text: str) -> Any:
    """``text`` read as a YAML scalar (``0.3`` a number, ``true`` a boolean, ``a b`` a string)."""
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        raise ModelyardError(f"Parameter {name}: {text!r} is not a value.",
                             hint="Quote it, e.g. \"a: b\"." if ":" in text else str(exc).splitlines()[0]) from exc


class RunDialog(QDialog):
    def __init__(self, name: str, params: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pipelineRunDialog")
        self.setWindowTitle(f"Run {name}")
        self.defaults = dict(params)
        layout = QVBoxLayout(self)
        layout.setSpacing(theme.SPACE_M)
        intro = QLabel(f"Runs <b>{name}</b> now. Steps whose inputs did not change since an earlier run are "
                       "not run again: their outputs are reused (shown as cached).", self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.edits: dict[str, QLineEdit] = {}
        for key, value in params.items():
            edit = QLineEdit(scalar_text(value), self)
            edit.setObjectName(f"param_{key}")
            edit.setToolTip(f"Default: {scalar_text(value)} (read as YAML: 0.3 is a number, true a yes/no)")
            edit.setMinimumWidth(260)
            form.addRow(f"{key}:", edit)
            self.edits[key] = edit
        if not params:
            form.addRow(QLabel("This pipeline has no parameters.", self))
        self.force = QCheckBox("Run all steps again (ignore the cache)", self)
        self.force.setObjectName("forceRun")
        self.jobs = QSpinBox(self)
        self.jobs.setObjectName("parallelSteps")
        self.jobs.setRange(1, max(1, os.cpu_count() or 1) * 2)
        self.jobs.setValue(1)
        self.jobs.setToolTip("Steps that do not need each other run side by side, up to this many at once")
        form.addRow("Parallel steps:", self.jobs)
        form.addRow(self.force)
        layout.addLayout(form)
        self.error = QLabel(self)
        self.error.setObjectName("runDialogError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {theme.status_colour('failed', self.palette()).name()}")
        self.error.hide()
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.run_button = buttons.addButton("Run", QDialogButtonBox.ButtonRole.AcceptRole)
        self.run_button.setObjectName("runPipelineButton")
        self.run_button.setIcon(theme.icon("play"))
        self.run_button.setDefault(True)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def params(self) -> dict[str, Any]:
        """The values that differ from the defaults (ModelyardError for one that is not a value)."""
        out = {}
        for key, edit in self.edits.items():
            value = parse_value(key, edit.text())
            if value != self.defaults.get(key):
                out[key] = value
        return out

    def _accept(self) -> None:
        try:
            self.params()
        except ModelyardError as exc:
            self.error.setText(f"{exc.message} {exc.hint or ''}".strip())
            self.error.show()
            return
        self.accept()
