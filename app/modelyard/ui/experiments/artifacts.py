"""The run detail's Artifacts tab: the run's files, and the selected one shown inline — text,
JSON (as a tree), images (png, jpg, svg…) and tables (csv, parquet: the first rows) — with Open
(in the desktop's application for its type) and Save as….

Every file is read off the main thread through the window's client (the core's
:mod:`modelyard.core.experiments.tracking.previews`); big files are shown in part, with a note.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QUrl, Signal
from PySide6.QtGui import (
    QDesktopServices,
    QFontDatabase,
    QImage,
    QPainter,
    QPixmap,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from modelyard.core.common.names import fmt_bytes, plural
from modelyard.ui.common import theme
from modelyard.ui.common.rows import RowsTableModel
from modelyard.ui.common.widgets import ElidedLabel, rows_view

JSON_TREE_CAP = 5000  # tree items built for a JSON file; beyond them a node says how many more


def open_url(url: QUrl) -> bool:
    """Hand ``url`` to the desktop (a module function: tests replace it)."""
    return QDesktopServices.openUrl(url)


def ask_save_path(parent: QWidget, suggested: str) -> str:
    """The file the user chose to save to, or "" (a module function: tests replace it)."""
    path, _ = QFileDialog.getSaveFileName(parent, "Save the artifact as", suggested)
    return path


class ArtifactsModel(RowsTableModel[Any]):
    headers = ("Path", "Kind", "Size")

    def cell(self, a: Any, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return (a.path, a.kind or "", fmt_bytes(a.size or 0))[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{a.path}\n{fmt_bytes(a.size or 0)} · sha256 {a.sha256}"
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class _TableModel(RowsTableModel[list[str]]):
    """The first rows of a table artifact."""

    headers: tuple[str, ...] = ()

    def set_table(self, columns: list[str], rows: list[list[str]]) -> None:
        self.beginResetModel()
        self.headers = tuple(columns)
        self.rows = list(rows)
        self.endResetModel()

    def cell(self, row: list[str], column: int, role: int) -> Any:
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole) and column < len(row):
            return row[column]
        return None


def json_model(value: Any, parent: Any = None) -> QStandardItemModel:
    """A JSON value as a two-column tree (key, value); at most :data:`JSON_TREE_CAP` items."""
    model = QStandardItemModel(parent)
    model.setHorizontalHeaderLabels(["Key", "Value"])
    budget = [JSON_TREE_CAP]

    def add(into: Any, key: str, v: Any) -> None:
        if budget[0] <= 0:
            return
        budget[0] -= 1
        k = QStandardItem(key)
        k.setEditable(False)
        if isinstance(v, dict):
            text = "{" + plural(len(v), "key") + "}"
            children = [(str(ck), cv) for ck, cv in v.items()]
        elif isinstance(v, list):
            text = "[" + plural(len(v), "item") + "]"
            children = [(f"[{i}]", cv) for i, cv in enumerate(v)]
        else:
            text, children = ("null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)), []
        val = QStandardItem(text)
        val.setEditable(False)
        val.setToolTip(text)
        into.appendRow([k, val])
        for n, (ck, cv) in enumerate(children):
            if budget[0] <= 0:
                more = QStandardItem(f"… {len(children) - n:,} more not shown")
                more.setEditable(False)
                k.appendRow([more, QStandardItem("")])
                break
            add(k, ck, cv)

    if isinstance(value, dict):
        for key, v in value.items():
            add(model.invisibleRootItem(), str(key), v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            add(model.invisibleRootItem(), f"[{i}]", v)
    else:
        add(model.invisibleRootItem(), "value", value)
    return model


def image_of(path: str, data: bytes) -> QImage:
    """An image artifact's bytes as an image (SVG drawn at its own size); null when unreadable."""
    if path.lower().endswith(".svg"):
        from PySide6.QtSvg import QSvgRenderer

        renderer = QSvgRenderer(QByteArray(data))
        if not renderer.isValid():
            return QImage()
        size = renderer.defaultSize()
        if size.isEmpty():
            size.setWidth(400)
            size.setHeight(300)
        image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        renderer.render(painter)
        painter.end()
        return image
    return QImage.fromData(QByteArray(data))


class ArtifactViewer(QWidget):
    """One artifact, shown by its kind, with Open and Save as…."""

    shown = Signal(str)  # the kind shown ("text", "json", "image", "table", "binary", "message")
    saved = Signal(str, str)  # what, where

    def __init__(self, client: Callable[[], Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("artifactViewer")
        self._client = client
        self.artifact: Any = None
        self.preview: Any = None
        self.title = ElidedLabel("", self)
        theme.make_heading(self.title, 1.0)
        self.open_button = QPushButton("Open", self)
        self.open_button.setObjectName("artifactOpen")
        self.open_button.setToolTip("Open the file in the application your desktop uses for its type")
        self.save_button = QPushButton("Save as…", self)
        self.save_button.setObjectName("artifactSave")
        self.save_button.setToolTip("Save a copy of the file")
        self.open_button.clicked.connect(self.open_external)
        self.save_button.clicked.connect(lambda: self.save_as())
        self.note = QLabel(self)
        self.note.setObjectName("artifactNote")
        self.note.setWordWrap(True)
        self.note.setStyleSheet(f"color: {self.palette().color(self.palette().ColorRole.PlaceholderText).name()}")
        self.message = QLabel("Select an artifact to see it here.", self)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.text = QPlainTextEdit(self)
        self.text.setObjectName("artifactText")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.tree = QTreeView(self)
        self.tree.setObjectName("artifactJson")
        self.tree.setUniformRowHeights(True)
        self.image = QLabel(self)
        self.image.setObjectName("artifactImage")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image_scroll = QScrollArea(self)
        self.image_scroll.setWidget(self.image)
        self.image_scroll.setWidgetResizable(True)
        self.image_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.table_model = _TableModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("artifactTable")
        self.table.setModel(self.table_model)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setDefaultSectionSize(110)
        self.stack = QStackedWidget(self)
        for w in (self.message, self.text, self.tree, self.image_scroll, self.table):
            self.stack.addWidget(w)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.open_button)
        head.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(theme.SPACE_S)
        layout.addLayout(head)
        layout.addWidget(self.note)
        layout.addWidget(self.stack, 1)
        self.show_artifact(None)

    @property
    def client(self) -> Any:
        return self._client()

    def current_kind(self) -> str:
        return {self.text: "text", self.tree: "json", self.image_scroll: "image", self.table: "table"}.get(
            self.stack.currentWidget(), "message")

    def show_artifact(self, artifact: Any) -> None:
        """Show ``artifact`` (a LoggedArtifact), read off the main thread; None: nothing selected."""
        self.artifact, self.preview = artifact, None
        self.open_button.setEnabled(artifact is not None)
        self.save_button.setEnabled(artifact is not None)
        self.note.hide()
        if artifact is None:
            self.title.setText("")
            self._message("Select an artifact to see it here.")
            return
        self.title.setText(artifact.path)
        self._message(f"Reading {artifact.path}…")
        if self.client is None:
            return
        from modelyard.core.experiments.tracking.previews import preview_artifact

        self.client.read("experiments.artifact", lambda store: preview_artifact(store, artifact),
                         lambda preview: self._show_preview(artifact, preview),
                         lambda exc: self._message(f"Cannot read {artifact.path}: {exc}")
                         if self.artifact is artifact else None)

    def _message(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)

    def _show_preview(self, artifact: Any, preview: Any) -> None:
        if self.artifact is not artifact:
            return  # another artifact was chosen meanwhile
        self.preview = preview
        if preview.note:
            self.note.setText(preview.note)
            self.note.show()
        kind = preview.kind
        if kind == "text":
            self.text.setPlainText(preview.text)
            self.stack.setCurrentWidget(self.text)
        elif kind == "json":
            old = self.tree.model()
            self.tree.setModel(json_model(preview.data, self.tree))
            if old is not None:
                old.deleteLater()
            self.tree.expandToDepth(0)
            self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
            self.stack.setCurrentWidget(self.tree)
        elif kind == "image":
            image = image_of(preview.path, preview.data)
            if image.isNull():
                kind = "binary"
                self._message(f"{Path(preview.path).name} is not an image this window can read: use Open.")
            else:
                self.image.setPixmap(QPixmap.fromImage(image))
                self.image.setToolTip(f"{image.width()} × {image.height()} pixels")
                self.stack.setCurrentWidget(self.image_scroll)
        elif kind == "table":
            self.table_model.set_table(preview.columns, preview.rows)
            self.table.resizeColumnsToContents()
            for c in range(len(preview.columns)):
                self.table.setColumnWidth(c, min(self.table.columnWidth(c), 240))
            self.stack.setCurrentWidget(self.table)
        else:
            self.note.hide()
            self._message(preview.note or "No preview for this file: use Open or Save as….")
        self.shown.emit(kind if kind != "binary" else "message")

    # -- open and save
    def open_external(self) -> None:
        """Open a copy of the file (under its own name, so the desktop knows its type)."""
        artifact = self.artifact
        if artifact is None or self.client is None:
            return
        from modelyard.core.experiments.tracking.previews import openable_copy

        self.client.read("experiments.artifact.open", lambda store: openable_copy(store, artifact),
                         lambda path: open_url(QUrl.fromLocalFile(str(path))) or self._failed_open(path),
                         self._save_failed)

    def _failed_open(self, path: Path) -> None:
        self.note.setText(f"No application opened {path.name}: its copy is at {path}.")
        self.note.show()

    def save_as(self, path: str | None = None) -> None:
        artifact = self.artifact
        if artifact is None or self.client is None:
            return
        path = path or ask_save_path(self, Path(artifact.path).name)
        if not path:
            return
        from modelyard.core.experiments.tracking.previews import save_artifact

        self.client.read("experiments.artifact.save", lambda store: save_artifact(store, artifact, path),
                         lambda target: self._saved(artifact, target), self._save_failed)

    def _saved(self, artifact: Any, target: Path) -> None:
        self.note.setText(f"Saved {Path(artifact.path).name} to {target}.")
        self.note.show()
        client = self.client
        if client is not None and hasattr(client, "saved"):
            client.saved.emit(f"Artifact {artifact.path}", str(target))
        self.saved.emit(artifact.path, str(target))

    def _save_failed(self, exc: Exception) -> None:
        self.note.setText(str(exc))
        self.note.show()


class ArtifactsPane(QSplitter):
    """The Artifacts tab: the run's files beside the viewer of the selected one."""

    def __init__(self, client: Callable[[], Any], parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setObjectName("artifactsPane")
        self.model = ArtifactsModel(self)
        self.view = rows_view(self, "artifactsTable", self.model)
        self.view.setTextElideMode(Qt.TextElideMode.ElideLeft)  # "…confusion_matrix.json": the file's name shows
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.viewer = ArtifactViewer(client, self)
        self.addWidget(self.view)
        self.addWidget(self.viewer)
        self.setStretchFactor(0, 1)
        self.setStretchFactor(1, 1)
        self.setChildrenCollapsible(False)
        self.view.selectionModel().currentRowChanged.connect(lambda cur, _prev: self.viewer.show_artifact(
            self.model.rows[cur.row()] if cur.isValid() and cur.row() < len(self.model.rows) else None))

    def set_artifacts(self, artifacts: list[Any]) -> None:
        """The run's artifacts; the viewer keeps the same path shown when the new run has it."""
        current = self.viewer.artifact.path if self.viewer.artifact is not None else None
        self.model.set_rows(sorted(artifacts, key=lambda a: a.path))
        row = next((i for i, a in enumerate(self.model.rows) if a.path == current), -1)
        if row >= 0:
            self.view.selectRow(row)
            self.viewer.show_artifact(self.model.rows[row])
        else:
            self.view.clearSelection()
            self.viewer.show_artifact(None)
