"""The import dialog: what was detected in a file, overrides, and a preview of the rows as parsed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.errors import ModelyardError
from modelyard.core.datasets.dates import DATE_FORMATS
from modelyard.core.datasets.dates import TEXT as AS_TEXT
from modelyard.core.datasets.specs import ImportOptions
from modelyard.ui.common import theme
from modelyard.ui.common.paged_table import PagedTableModel
from modelyard.ui.common.widgets import fit_to_screen

if TYPE_CHECKING:  # the service brings pandas: it is loaded on the reading thread, not here
    from modelyard.core.datasets.service import SniffResult

AUTO = "Detect"
DATE_COLUMNS_PER_ROW = 3
PREVIEW_MIN_WIDTH, PREVIEW_MAX_WIDTH = 60, 260
DATE_LABEL_WIDTH = 160
DELIMITERS = {AUTO: None, "Comma  ,": ",", "Semicolon  ;": ";", "Tab": "\t", "Pipe  |": "|", "Space": " "}
ENCODINGS = (AUTO, "utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16")
NO_TARGET = "(none)"


class ImportDialog(QDialog):
    """Shows ``sniff(path)``; every change of an override re-parses the first rows.

    The file is read off the main thread — through ``client`` (the window's client of the core)
    when given, else a reader of the dialog's own — and the newest parse wins."""

    def __init__(self, path: str | Path, parent: QWidget | None = None, client: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("importDialog")
        self.path = Path(path)
        self._client = client
        self._reader: Any = None
        self.result_: SniffResult | None = None
        self.setWindowTitle(f"Import {self.path.name}")
        fit_to_screen(self, 900, 600, parent)

        self.file_label = QLabel(str(self.path), self)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.format_label = QLabel(self)
        self.delimiter = QComboBox(self)
        for label, value in DELIMITERS.items():
            self.delimiter.addItem(label, value)
        self.encoding = QComboBox(self)
        for label in ENCODINGS:
            self.encoding.addItem(label, None if label == AUTO else label)
        for combo in (self.delimiter, self.encoding):  # "Detect (…)" names what was detected: grow to it
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.header = QCheckBox("First row holds the column names", self)
        self.header.setChecked(True)
        self.sheet = QComboBox(self)
        self.name = QLineEdit(self)
        self.name.setObjectName("datasetName")
        self.target = QComboBox(self)
        self.target.setObjectName("targetColumn")
        self.dates_box = QWidget(self)
        self.dates_box.setObjectName("importDates")
        self.dates_grid = QGridLayout(self.dates_box)
        self.dates_grid.setContentsMargins(0, 0, 0, 0)
        self.dates_grid.setHorizontalSpacing(theme.SPACE_M)
        self.date_formats: dict[str, QComboBox] = {}
        self.notes = QLabel(self)
        self.notes.setObjectName("importNotes")
        self.notes.setWordWrap(True)
        self.error = QLabel(self)
        self.error.setObjectName("importError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {theme.status_colour('failed').name()}")
        self.error.hide()  # until a parse fails
        self.preview = QTableView(self)
        self.preview.setObjectName("importPreview")
        self.preview.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.preview.verticalHeader().setDefaultSectionSize(22)
        self.preview.horizontalHeader().setTextElideMode(Qt.TextElideMode.ElideMiddle)
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
        form.addRow("Dates:", self.dates_box)
        self.form = form
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
        chosen = {col: combo.currentData() for col, combo in self.date_formats.items()
                  if combo.currentData() is not None}
        if chosen:
            opts["date_formats"] = chosen
        return opts

    def options(self) -> ImportOptions:
        target = self.target.currentText()
        return ImportOptions(**self.overrides(), name=self.name.text().strip() or None,
                             target=None if target in ("", NO_TARGET) else target)

    def _resniff(self, *, first: bool = False) -> None:
        """Parse the first rows again (off the main thread: the file, and pandas, are read there)."""
        if self._loading and not first:
            return
        path, overrides = self.path, None if first else self.overrides()

        def read(_store: Any = None) -> SniffResult:
            from modelyard.core.datasets.service import sniff

            return sniff(path, overrides)

        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)  # until parsed
        if self._client is not None:
            self._client.read(f"import.sniff.{id(self)}", read, lambda r: self._sniffed(r, first), self._sniff_failed)
        else:
            if self._reader is None:
                from modelyard.ui.common.background import BackgroundReader

                self._reader = BackgroundReader(self)
            self._reader.submit(read, lambda r: self._sniffed(r, first), self._sniff_failed)

    def _sniff_failed(self, exc: Exception) -> None:
        message = f"{exc.message}\n{exc.hint or ''}".strip() if isinstance(exc, ModelyardError) else str(exc)
        self.error.setText(message)
        self.error.show()
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
        self.preview.setModel(None)

    def done(self, result: int) -> None:
        if self._reader is not None:
            self._reader.close()
        super().done(result)

    def _sniffed(self, result: SniffResult, first: bool) -> None:
        ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
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
                found = detected.get(result.delimiter, result.delimiter or "—")
                self.delimiter.setItemText(0, f"{AUTO} ({found.split()[0] if found.strip() else found})")
                self.encoding.setItemText(0, f"{AUTO} ({result.encoding or '—'})")
                for combo in (self.delimiter, self.encoding):  # what was detected, whole, however narrow
                    combo.setItemData(0, f"{combo.itemText(0)}: what the file holds", Qt.ItemDataRole.ToolTipRole)
                self.header.setChecked(result.header)
                self.name.setText(result.suggested_name)
                self.sheet.clear()
                self.sheet.addItems(result.sheets)
                if result.sheet:
                    self.sheet.setCurrentText(result.sheet)
            self.sheet.setEnabled(bool(result.sheets))
            self.form.setRowVisible(self.sheet, bool(result.sheets))
            current_target = self.target.currentText()
            self.target.clear()
            self.target.addItems([NO_TARGET, *result.columns])
            if current_target in result.columns:
                self.target.setCurrentText(current_target)
            elif first and result.likely_target in result.columns:  # the user can change it, or pick (none)
                self.target.setCurrentText(result.likely_target)
                self.target.setToolTip(f"'{result.likely_target}' looks like what to predict "
                                       "(its name, or a last column with few classes). Pick (none) for no target.")
            self._show_dates(result)
            notes = [*result.notes, *_date_notes(result.dates)]
            self.notes.setText("\n".join(notes))
            self.notes.setVisible(bool(notes))
            frame = result.preview
            model = PagedTableModel(len(frame), [str(c) for c in frame.columns],
                                    lambda start, count, f=frame: f.iloc[start:start + count], parent=self)
            self.preview.setModel(model)
            # 50 rows: fit each column to its header and values (dates with their times), within reason.
            self.preview.resizeColumnsToContents()
            header = self.preview.horizontalHeader()
            for col in range(model.columnCount()):
                header.resizeSection(col, min(max(header.sectionSize(col), PREVIEW_MIN_WIDTH), PREVIEW_MAX_WIDTH))
        finally:
            self._loading = False

    # -- dates
    def _show_dates(self, result: SniffResult) -> None:
        """One format choice per column that holds (or was taken for) dates, keeping earlier choices."""
        chosen = {col: combo.currentData() for col, combo in self.date_formats.items()}
        while self.dates_grid.count():
            item = self.dates_grid.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.hide()
                widget.setParent(None)  # gone from findChild at once; deleted once its signal returns
                widget.deleteLater()
        self.date_formats = {}
        for k, (col, info) in enumerate(result.dates.items()):
            combo = QComboBox(self.dates_box)
            combo.setObjectName(f"dateFormat:{col}")
            detected = info.get("detected")
            candidates = list(info.get("candidates") or [])
            if not detected:
                auto = f"{AUTO} (text)"
            elif len(candidates) > 1:
                auto = f"{AUTO} ({detected}, a guess)"
            else:
                auto = f"{AUTO} ({detected})"
            combo.addItem(auto, None)
            for fmt in candidates or DATE_FORMATS:
                combo.addItem(fmt, fmt)
            combo.addItem("Keep as text", AS_TEXT)
            previous = chosen.get(col)
            if previous is not None:
                index = combo.findData(previous)
                if index < 0:
                    combo.addItem(previous, previous)
                    index = combo.count() - 1
                combo.setCurrentIndex(index)
            combo.setToolTip(_date_tooltip(col, info))
            combo.currentIndexChanged.connect(lambda _i: self._resniff())
            label = QLabel(self.dates_box)
            label.setText(label.fontMetrics().elidedText(f"{col}:", Qt.TextElideMode.ElideMiddle, DATE_LABEL_WIDTH))
            label.setToolTip(col)
            row, pair = divmod(k, DATE_COLUMNS_PER_ROW)
            self.dates_grid.addWidget(label, row, 2 * pair, Qt.AlignmentFlag.AlignRight)
            self.dates_grid.addWidget(combo, row, 2 * pair + 1)
            self.date_formats[col] = combo
        self.dates_grid.setColumnStretch(2 * DATE_COLUMNS_PER_ROW, 1)
        self.form.setRowVisible(self.dates_box, bool(self.date_formats))


def _date_tooltip(col: str, info: dict[str, Any]) -> str:
    candidates = info.get("candidates") or []
    if len(candidates) > 1:
        return (f"Every value of '{col}' fits {' and '.join(candidates)}: the order of day and month cannot be "
                f"told from the data, so {info.get('detected')} is a guess. Choose the right one.")
    if info.get("detected"):
        return f"Every value of '{col}' fits {info['detected']}."
    return f"The values of '{col}' do not all fit one date format."


def _date_notes(dates: dict[str, dict[str, Any]]) -> list[str]:
    """What the user should check about the date columns, one line each."""
    notes = []
    for col, info in dates.items():
        bad = info.get("not_dates")
        if bad:
            notes.append(f"Column '{col}' stays text: row {bad['row']:,} holds {bad['value']!r}, which is not a "
                         f"date in the format {bad['format']}.")
        elif info.get("format") and len(info.get("candidates") or []) > 1 and not info.get("given"):
            others = " or ".join(c for c in info["candidates"] if c != info["format"])
            notes.append(f"Column '{col}': every date fits both {info['format']} and {others}; it is read as "
                         f"{info['format']}. Choose its format under Dates if the order is wrong.")
    return notes
