"""Data steps: ``import`` (a file, a glob or a folder -> one dataset version) and ``split``."""

from __future__ import annotations

import glob
from collections.abc import Iterator, Mapping
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
    """Job: import one file as the datasets room does, or several files (the same columns) as
    one dataset version: their rows one after the other, in the order given."""
    from modelyard.core.datasets import importing, readers
    from modelyard.core.datasets.importing import (
        _delimiter,
        _import,
        _Progress,
        check_name,
        default_name,
    )
    from modelyard.core.datasets.read_common import file_size
    from modelyard.core.datasets.specs import ImportOptions

    if len(paths) == 1:
        return importing.import_dataset(ctx, path=paths[0], options=options)
    opts = ImportOptions.from_params(options)
    files = [Path(p) for p in paths]
    settings = [readers.resolve_settings(f, delimiter=_delimiter(opts.delimiter), quotechar=opts.quotechar,
                                         encoding=opts.encoding, header=opts.header, sheet=opts.sheet) for f in files]
    sizes = [file_size(f) for f in files]
    total = max(sum(sizes), 1)
    name = check_name(opts.name or default_name(files[0].parent))
    progress = _Progress(ctx)
    ctx.log(f"Importing {len(files)} files as one version of {name}: " + ", ".join(f.name for f in files))

    def batches(column_types: dict[str, Any]) -> Iterator[Any]:
        done = 0
        columns: list[str] | None = None
        for f, s, size in zip(files, settings, sizes, strict=True):
            tick = progress.phase(done / total * importing.PARSE_END, (done + size) / total * importing.PARSE_END,
                                  f"Reading {f.name}")
            for batch in readers.iter_batches(f, s, tick, column_types=column_types, size=size):
                if columns is None:
                    columns = list(batch.schema.names)
                elif list(batch.schema.names) != columns:
                    raise ModelyardError(f"{f} has other columns than {files[0].name}, so the two cannot be one "
                                         "dataset version.",
                                         hint=f"Give files with the columns {', '.join(columns[:10])}, or import them "
                                              "as separate steps.")
                if batch.num_rows or f is files[-1]:
                    yield batch
            done += size

    source = {"path": str(files[0].parent), "size": sum(sizes), "mtime": None, "format": settings[0].format,
              "label": f"{len(files)} files in {files[0].parent}"}
    from modelyard.core.datasets import dates

    return _import(ctx.store, progress, batches, name, opts.target, source, job_id=ctx.job_id,
                   date_formats=dates.check_formats(opts.date_formats))


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
