"""Data steps: ``import`` (a file, a glob or a folder -> one dataset version) and ``split``."""

from __future__ import annotations

import glob
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.jobs.runner import JobContext, JobSpec
from modelyard.core.pipelines.steps.base import StepContext, StepResult, need, record

#: file names an import of a folder takes (what the datasets room reads)
DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".xlsx", ".xlsm", ".json", ".jsonl", ".ndjson")


def input_files(path: str | Path, folder: str | Path = ".") -> list[Path]:
    """The files an import's ``path`` names: one file, the files a glob matches, or a folder's
    data files, sorted by name. Raises a ModelyardError naming the path when there are none."""
    text = str(path)
    p = Path(text).expanduser()
    if not p.is_absolute():
        p = Path(folder) / p
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in DATA_SUFFIXES
                       and not f.name.startswith("."))
        if not files:
            raise ModelyardError(f"The folder {p} holds no data files to import.",
                                 hint=f"Put the data files ({', '.join(DATA_SUFFIXES[:4])}, ...) in it, or give a file.")
        return files
    if glob.has_magic(text):
        files = sorted(Path(f) for f in glob.glob(str(p)) if Path(f).is_file())
        if not files:
            raise ModelyardError(f"No file matches {text} (looked in {p.parent}).",
                                 hint="Check the pattern in the import step's 'path'.")
        return files
    raise ModelyardError(f"The file {p} does not exist.", hint="Check the import step's 'path' (relative paths are "
                                                               "relative to the pipeline file's folder).")


def import_files_job(ctx: JobContext, *, paths: list[str], options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Job: import one file, or several files with the same columns as one dataset version
    (the datasets room's :func:`~modelyard.core.datasets.importing.import_files`)."""
    from modelyard.core.datasets import importing

    if len(paths) == 1:
        return importing.import_dataset(ctx, path=paths[0], options=options)
    return importing.import_files(ctx, paths=paths, options=options)


def import_files_spec(paths: list[str | Path], options: Mapping[str, Any] | None = None) -> JobSpec:
    """The job that imports ``paths`` as one dataset version (:func:`import_files_job`)."""
    title = f"Import {Path(paths[0]).name}" if len(paths) == 1 else f"Import {len(paths)} files"
    return JobSpec.for_kind("pipeline.import", title, {"paths": [str(p) for p in paths], "options": dict(options or {})})


def do_import(sc: StepContext, params: dict[str, Any]) -> StepResult:
    files = input_files(need(params, "path", "import"), sc.folder)
    options = dict(params.get("options") or {})
    options["name"] = str(need(params, "name", "import"))
    result = sc.run_job(import_files_spec(list(files), options))
    outputs = {"dataset_version_id": result["dataset_version_id"], "ref": result["ref"], "dataset": result["dataset"],
               "version": result["version"], "rows": result.get("n_rows"), "content_hash": result.get("content_hash")}
    records = [record("dataset_version", result["dataset_version_id"])] if result.get("created") else []
    return StepResult(outputs, records)


def do_split(sc: StepContext, params: dict[str, Any]) -> StepResult:
    from modelyard.core.datasets.versions import create_split

    dataset = need(params, "dataset", "split")
    kwargs = {k: params[k] for k in ("validation", "method", "column", "seed", "name") if params.get(k) is not None}
    info = create_split(sc.store, dataset, test=float(params.get("test", 0.2)), **kwargs)
    sc.log(f"Split {info.name} of {info.ref}: {info.counts}.")
    return StepResult({"split_id": info.id, "name": info.name, "dataset_version_id": info.dataset_version_id},
                      [record("split", info.id)])
