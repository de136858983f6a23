"""Drag-and-drop of files: which dropped URLs are local files Modelyard can take."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent

DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".xlsx", ".json", ".jsonl", ".ndjson")

# Run ids dragged from the runs table (onto the Registry to register them).
RUN_IDS_MIME = "application/x-modelyard-run-ids"


def local_files(mime: QMimeData | None) -> list[Path]:
    """The local files (not folders, not remote URLs) in a drag's mime data, in order."""
    if mime is None or not mime.hasUrls():
        return []
    files = []
    for url in mime.urls():
        if url.isLocalFile():
            path = Path(url.toLocalFile())
            if not path.is_dir():
                files.append(path)
    return files


def accepted(paths: Iterable[Path], suffixes: tuple[str, ...] = DATA_SUFFIXES) -> list[Path]:
    return [p for p in paths if p.suffix.lower() in suffixes]


class FileDropTarget:
    """Mix into a QWidget (listed first) to take drops of local files: implement ``files_dropped``."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.setAcceptDrops(True)  # type: ignore[attr-defined]

    def files_dropped(self, files: list[Path]) -> None:
        raise NotImplementedError

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if local_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = local_files(event.mimeData())
        if not files:
            event.ignore()
            return
        event.acceptProposedAction()
        self.files_dropped(files)
