"""A run artifact's preview (what the window's artifact viewer shows) and a copy of it saved for
the user: text, JSON, images and tables, read in part when the file is big.

Call these off the main thread: they read files (and tables through pandas).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import fmt_bytes
from modelyard.core.store import Store

TEXT_CAP = 1_000_000  # bytes of text or JSON shown; beyond it the viewer says so
IMAGE_CAP = 25_000_000  # bytes of an image decoded for the viewer
TABLE_ROWS = 200  # first rows of a table shown

TEXT_SUFFIXES = {".txt", ".log", ".md", ".py", ".yaml", ".yml", ".cfg", ".ini", ".toml", ".html", ".xml", ".sql",
                 ".r", ".sh", ".rst", ".out", ".err", ".jsonl"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".svg", ".webp"}
TABLE_SUFFIXES = {".csv", ".tsv", ".parquet"}


@dataclass(frozen=True)
class ArtifactPreview:
    """What to show of one artifact. ``kind``: "text", "json", "image", "table" or "binary".
    ``note``: one line about what is not shown (a big file), or why it cannot be shown."""

    path: str
    kind: str
    size: int
    text: str = ""
    data: Any = None  # json: the parsed value; image: the file's bytes
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    n_rows: int | None = None  # a table's row count when known
    note: str = ""


def kind_of(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in TABLE_SUFFIXES:
        return "table"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return "unknown"


def preview_artifact(store: Store, artifact: Any) -> ArtifactPreview:
    """The preview of ``artifact`` (a LoggedArtifact of a RunInfo): big files in part, with a note."""
    path, sha, size = artifact.path, artifact.sha256, int(artifact.size or 0)
    file = store.artifacts.path(sha)
    if not file.is_file():
        return ArtifactPreview(path, "binary", size, note="The artifact's file is missing from the store: "
                                                          "run Store → Verify to find what else is missing.")
    kind = kind_of(path)
    if kind == "image":
        if size > IMAGE_CAP:
            return ArtifactPreview(path, "binary", size, note=f"The image is {fmt_bytes(size)}: too big to show here; "
                                                              "use Open to see it.")
        return ArtifactPreview(path, "image", size, data=file.read_bytes())
    if kind == "table":
        return _table(path, file, size)
    with open(file, "rb") as f:
        head = f.read(TEXT_CAP)
    cut = size > TEXT_CAP
    if kind == "unknown":
        if b"\x00" in head[:8192]:
            return ArtifactPreview(path, "binary", size, note=f"A binary file ({fmt_bytes(size)}): no preview; use Open "
                                                              "or Save as… to use it in another application.")
        kind = "text"
    text = head.decode("utf-8", errors="replace")
    if cut:
        text = text[: text.rfind("\n") + 1 or len(text)]
    note = f"Showing the first {fmt_bytes(len(head))} of {fmt_bytes(size)}: use Open to see it all." if cut else ""
    if kind == "json" and not cut:
        try:
            return ArtifactPreview(path, "json", size, text=text, data=json.loads(text))
        except ValueError as exc:
            return ArtifactPreview(path, "text", size, text=text, note=f"Not valid JSON ({exc}): shown as text.")
    return ArtifactPreview(path, "text", size, text=text, note=note)


def _table(path: str, file: Path, size: int) -> ArtifactPreview:
    import pandas as pd

    try:
        if path.lower().endswith(".parquet"):
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(file)
            n_rows = pf.metadata.num_rows
            batch = next(pf.iter_batches(batch_size=TABLE_ROWS), None)
            frame = batch.to_pandas() if batch is not None else pf.schema_arrow.empty_table().to_pandas()
        else:
            sep = "\t" if path.lower().endswith(".tsv") else ","
            frame = pd.read_csv(file, sep=sep, nrows=TABLE_ROWS, dtype=str, keep_default_na=False)
            n_rows = None
    except Exception as exc:  # noqa: BLE001 - an unreadable table is shown as a note, not an error dialog
        return ArtifactPreview(path, "binary", size, note=f"Cannot read {Path(path).name} as a table "
                                                          f"({type(exc).__name__}: {exc}); use Open.")
    frame = frame.head(TABLE_ROWS)
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    shown = len(rows)
    if n_rows is not None:
        note = f"The first {shown:,} of {n_rows:,} rows." if n_rows > shown else ""
    else:
        note = f"The first {shown:,} rows ({fmt_bytes(size)} in all)." if shown == TABLE_ROWS else ""
    return ArtifactPreview(path, "table", size, columns=[str(c) for c in frame.columns], rows=rows,
                           n_rows=n_rows, note=note)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if value != value else f"{value:.6g}"
    return str(value)


def save_artifact(store: Store, artifact: Any, dest: str | os.PathLike[str]) -> Path:
    """Copy ``artifact``'s file to ``dest`` (a temporary file beside it, then renamed: ``dest`` is
    whole or untouched). Returns ``dest``."""
    target = Path(dest).expanduser()
    src = store.artifacts.path(artifact.sha256)
    if not src.is_file():
        raise ModelyardError(f"The file of {artifact.path} is missing from the store.",
                             hint="Run Store → Verify to find what else is missing.")
    if not target.parent.is_dir():
        raise ModelyardError(f"Cannot save to {target}: the folder {target.parent} does not exist.",
                             hint="Choose an existing folder.")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as f:
            shutil.copyfileobj(f, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ModelyardError(f"Cannot save {artifact.path} to {target}: {exc.strerror or exc}.",
                             hint="Choose a folder you can write to, with free space.") from exc
    return target


def openable_copy(store: Store, artifact: Any, folder: str | os.PathLike[str] | None = None) -> Path:
    """A copy of ``artifact`` under its own file name (so another application knows its type), in a
    temporary folder: what the viewer's Open hands to the desktop."""
    base = Path(folder) if folder is not None else Path(tempfile.gettempdir()) / "modelyard-artifacts"
    where = base / artifact.sha256[:16]
    where.mkdir(parents=True, exist_ok=True)
    target = where / (Path(artifact.path).name or "artifact")
    if not target.is_file() or target.stat().st_size != int(artifact.size or -1):
        save_artifact(store, artifact, target)
    return target
