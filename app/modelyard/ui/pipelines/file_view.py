"""The File tab: the pipeline's YAML, read-only with line numbers, beside its problems.

Each problem reads "line:col message hint"; clicking one puts the cursor on that line and column
and highlights the line. The file is validated when a pipeline is shown and again whenever it
changes on disk (a ``QFileSystemWatcher``); validating writes nothing.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontDatabase, QPainter, QTextCursor, QTextFormat
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.names import plural
from modelyard.ui.common import theme
from modelyard.ui.common.widgets import ElidedLabel, rows_view
from modelyard.ui.pipelines.tables import ProblemsModel


class _Gutter(QWidget):
    def __init__(self, editor: CodeView) -> None:
        super().__init__(editor)
        self.editor = editor

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(self.editor.gutter_width(), 0)

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self.editor.paint_gutter(event)


class CodeView(QPlainTextEdit):
    """Read-only monospace text with line numbers and one highlighted line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.gutter = _Gutter(self)
        self.blockCountChanged.connect(lambda _n: self.setViewportMargins(self.gutter_width(), 0, 0, 0))
        self.updateRequest.connect(self._scroll_gutter)
        self.setViewportMargins(self.gutter_width(), 0, 0, 0)
        self.marked_line: int | None = None

    def gutter_width(self) -> int:
        digits = max(3, len(str(max(1, self.blockCount()))))
        return 10 + self.fontMetrics().horizontalAdvance("9") * digits

    def _scroll_gutter(self, rect: QRect, dy: int) -> None:
        if dy:
            self.gutter.scroll(0, dy)
        else:
            self.gutter.update(0, rect.y(), self.gutter.width(), rect.height())

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        r = self.contentsRect()
        self.gutter.setGeometry(QRect(r.left(), r.top(), self.gutter_width(), r.height()))

    def paint_gutter(self, event: Any) -> None:
        painter = QPainter(self.gutter)
        pal = self.palette()
        painter.fillRect(event.rect(), pal.color(pal.ColorRole.AlternateBase))
        block = self.firstVisibleBlock()
        number = block.blockNumber()
        top = round(self.blockBoundingGeometry(block).translated(self.contentOffset()).top())
        height = round(self.blockBoundingRect(block).height())
        while block.isValid() and top <= event.rect().bottom():
            if block.isVisible() and top + height >= event.rect().top():
                marked = self.marked_line == number + 1
                painter.setPen(pal.color(pal.ColorRole.Text) if marked else pal.color(pal.ColorRole.PlaceholderText))
                painter.drawText(0, top, self.gutter.width() - 5, height, Qt.AlignmentFlag.AlignRight, str(number + 1))
            block = block.next()
            top += height
            number += 1

    def go_to(self, line: int, column: int) -> None:
        """Put the cursor on ``line``:``column`` (1-based), highlight the line and show it."""
        doc = self.document()
        block = doc.findBlockByNumber(max(0, min(line, doc.blockCount()) - 1))
        cursor = QTextCursor(block)
        cursor.movePosition(QTextCursor.MoveOperation.Right, QTextCursor.MoveMode.MoveAnchor,
                            max(0, min(column - 1, block.length() - 1)))
        self.setTextCursor(cursor)
        self.marked_line = block.blockNumber() + 1
        mark = QTextEdit.ExtraSelection()
        colour = QColor(theme.status_colour("failed", self.palette()))
        colour.setAlpha(50)
        mark.format.setBackground(colour)
        mark.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
        mark.cursor = QTextCursor(block)
        self.setExtraSelections([mark])
        self.centerCursor()
        self.gutter.update()

    def clear_mark(self) -> None:
        self.marked_line = None
        self.setExtraSelections([])


class FileView(QWidget):
    """The File tab. ``show_file(path)`` asks the panel (``validate_requested``) to read and validate
    the file off the main thread; :meth:`show_result` shows what came back."""

    validate_requested = Signal(str)  # path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from PySide6.QtCore import QFileSystemWatcher

        self.path: str | None = None
        self.problems: list[dict[str, Any]] = []
        self.path_label = ElidedLabel("", self)
        self.path_label.setObjectName("pipelineFilePath")
        self.verdict = QLabel(self)
        self.verdict.setObjectName("pipelineFileVerdict")
        self.verdict.setWordWrap(True)
        self.code = CodeView(self)
        self.code.setObjectName("pipelineYaml")
        self.problems_model = ProblemsModel(self)
        self.problems_view = rows_view(self, "pipelineProblems", self.problems_model)
        self.problems_view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.problems_view.setWordWrap(True)
        header = self.problems_view.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.problems_view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.problems_view.clicked.connect(lambda index: self.go_to_problem(index.row()))
        self.problems_view.selectionModel().currentRowChanged.connect(lambda cur, _p: self.go_to_problem(cur.row()))
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setObjectName("pipelineFileSplit")
        split.addWidget(self.code)
        split.addWidget(self.problems_view)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([600, 360])
        self.split = split
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, theme.SPACE_S, 0, 0)
        layout.setSpacing(theme.SPACE_S)
        layout.addWidget(self.path_label)
        layout.addWidget(self.verdict)
        layout.addWidget(split, 1)
        self.watcher = QFileSystemWatcher(self)
        self.watcher.fileChanged.connect(self._changed_on_disk)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(150)  # an editor's save is a few events: validate once
        self._debounce.timeout.connect(lambda: self.path and self.validate_requested.emit(self.path))

    def show_file(self, path: str | None) -> None:
        """Watch and validate ``path`` (None: show nothing)."""
        if path != self.path:
            if self.watcher.files():
                self.watcher.removePaths(self.watcher.files())
            self.path = path
            self.code.clear()
            self.code.clear_mark()
            self.problems_model.set_rows([])
            self.verdict.setText("")
        self.path_label.setText(path or "")
        if path:
            self._watch()
            self.validate_requested.emit(path)

    def _watch(self) -> None:
        if self.path and self.path not in self.watcher.files():
            self.watcher.addPath(self.path)  # False when the file is gone: it is watched again when shown

    def _changed_on_disk(self, _path: str) -> None:
        self._watch()  # an editor that replaces the file drops it from the watcher
        self._debounce.start()

    def show_result(self, path: str, text: str | None, problems: list[dict[str, Any]]) -> None:
        if path != self.path:
            return
        self._watch()
        line = self.code.marked_line
        if text is None:
            self.code.setPlainText("")
        elif text != self.code.toPlainText():
            self.code.setPlainText(text)
            line = None
        self.problems = problems
        self.problems_model.set_rows(problems)
        self.problems_view.resizeRowsToContents()
        if text is None:
            self.verdict.setText("The file cannot be read: it was moved or deleted. Runs use the pipeline as "
                                 "last listed.")
        elif problems:
            self.verdict.setText(f"{plural(len(problems), 'problem')} in the file: fix "
                                 f"{'it' if len(problems) == 1 else 'them'} before the next run. Click one to see "
                                 "where it is.")
        else:
            self.verdict.setText("The file is valid.")
        colour = theme.status_colour("failed" if problems or text is None else "succeeded", self.palette()).name()
        self.verdict.setStyleSheet(f"color: {colour}")
        self.problems_view.setVisible(bool(problems))
        if line is None:
            self.code.clear_mark()

    def go_to_problem(self, row: int) -> None:
        if 0 <= row < len(self.problems):
            p = self.problems[row]
            self.code.go_to(int(p.get("line") or 1), int(p.get("column") or 1))
