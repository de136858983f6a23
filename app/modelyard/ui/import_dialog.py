"""The import dialog: what was detected in a file, overrides, and a preview of the rows as parsed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.datasets.service import SniffResult, sniff
from modelyard.core.datasets.specs import ImportOptions
from modelyard.core.errors import ModelyardError
from modelyard.ui import theme
from modelyard.ui.models.paged_table import PagedTableModel

AUTO = "Detect"
DELIMITERS = {AUTO: None, "Comma  ,": ",", "Semicolon  ;": ";", "Tab": "\t", "Pipe  |": "|", "Space": " "}
ENCODINGS = (AUTO, "utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16")
NO_TARGET = "(none)"


class ImportDialog(QDialog):
    """Shows ``sniff(path)``; every change of an override re-parses the first rows."""

    def __init__(self, path: str | Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("importDialog")
        self.path = Path(path)
        self.result_: SniffResult | None = None
        self.setWindowTitle(f"Import {self.path.name}")
        self.resize(900, 600)

        self.file_label = QLabel(str(self.path), self)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.format_label = QLabel(self)
        self.delimiter = QComboBox(self)
        for label, value in DELIMITERS.items():
            self.delimiter.addItem(label, value)
        self.encoding = QComboBox(self)
        for label in ENCODINGS:
            self.encoding.addItem(label, None if label == AUTO else label)
        self.header = QCheckBox("First row holds the column names", self)
        self.header.setChecked(True)
        self.sheet = QComboBox(self)
        self.name = QLineEdit(self)
        self.name.setObjectName("datasetName")
        self.target = QComboBox(self)
        self.target.setObjectName("targetColumn")
        self.notes = QLabel(self)
        self.notes.setWordWrap(True)
        self.error = QLabel(self)
        self.error.setObjectName("importError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {theme.status_colour('failed').name()}")
        self.preview = QTableView(self)
        self.preview.setObjectName("importPreview")
        self.preview.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.preview.verticalHeader().setDefaultSectionSize(22)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Import")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow("File:", self.file_label)
        form.addRow("Format:", self.format_label)
        dialect = QHBoxLayout()
        dialect.addWidget(QLabel("Delimiter:", self))
        dialect.addWidget(self.delimiter)
        dialect.addSpacing(theme.SPACE_L)
        dialect.addWidget(QLabel("Encoding:", self))
        dialect.addWidget(self.encoding)
        dialect.addSpacing(theme.SPACE_L)
        dialect.addWidget(self.header)
        dialect.addStretch(1)
        self.dialect_row = QWidget(self)
        self.dialect_row.setLayout(dialect)
        dialect.setContentsMargins(0, 0, 0, 0)
        form.addRow("Reading:", self.dialect_row)
        form.addRow("Sheet:", self.sheet)
        form.addRow("Dataset name:", self.name)
        form.addRow("Target column:", self.target)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.notes)
        layout.addWidget(self.error)
        layout.addWidget(QLabel("Preview of the first rows, as they will be read:", self))
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.buttons)

        self._loading = True
        self._resniff(first=True)
        self._loading = False
        for combo in (self.delimiter, self.encoding, self.sheet):
            combo.currentIndexChanged.connect(lambda _i: self._resniff())
        self.header.toggled.connect(lambda _c: self._resniff())

    # -- options
    def overrides(self) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        if self.delimiter.currentData() is not None:  # item 0 is "Detect (…)": no override
            opts["delimiter"] = self.delimiter.currentData()
        if self.encoding.currentData() is not None:
            opts["encoding"] = self.encoding.currentData()
        if self.result_ is not None and self.result_.format == "csv" and not self.header.isChecked():
            opts["header"] = False
        if self.sheet.isEnabled() and self.sheet.currentText():
            opts["sheet"] = self.sheet.currentText()
        return opts

    def options(self) -> ImportOptions:
        target = self.target.currentText()
        return ImportOptions(**self.overrides(), name=self.name.text().strip() or None,
                             target=None if target in ("", NO_TARGET) else target)

    def _resniff(self, *, first: bool = False) -> None:
        if self._loading and not first:
            return
        ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        try:
            result = sniff(self.path, None if first else self.overrides())
        except ModelyardError as exc:
            self.error.setText(f"{exc.message}\n{exc.hint or ''}".strip())
            self.error.show()
            ok_button.setEnabled(False)
            self.preview.setModel(None)
            return
        self.result_ = result
        self.error.hide()
        ok_button.setEnabled(True)
        self._loading = True
        try:
            self.format_label.setText(f"{result.format.upper()} · {result.size / 1e6:.1f} MB"
                                      if result.size >= 100_000 else f"{result.format.upper()} · {result.size:,} bytes")
            is_csv = result.format == "csv"
            self.dialect_row.setEnabled(is_csv)
            if first:
                detected = {v: k for k, v in DELIMITERS.items() if v is not None}
                self.delimiter.setItemText(0, f"{AUTO} ({detected.get(result.delimiter, result.delimiter or '—')})")
                self.encoding.setItemText(0, f"{AUTO} ({result.encoding or '—'})")
                self.header.setChecked(result.header)
                self.name.setText(result.suggested_name)
                self.sheet.clear()
                self.sheet.addItems(result.sheets)
                if result.sheet:
                    self.sheet.setCurrentText(result.sheet)
            self.sheet.setEnabled(bool(result.sheets))
            current_target = self.target.currentText()
            self.target.clear()
            self.target.addItems([NO_TARGET, *result.columns])
            if current_target in result.columns:
                self.target.setCurrentText(current_target)
            self.notes.setText(" ".join(result.notes))
            self.notes.setVisible(bool(result.notes))
            frame = result.preview
            model = PagedTableModel(len(frame), [str(c) for c in frame.columns],
                                    lambda start, count, f=frame: f.iloc[start:start + count], parent=self)
            self.preview.setModel(model)
        finally:
            self._loading = False

