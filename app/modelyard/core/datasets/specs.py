"""What a dataset job is asked to do: import options and the job specs, as plain data.

Light on purpose: the window builds these specs on the main thread when a file is dropped, so
this module loads no pandas or pyarrow (the job itself loads them, on its worker thread).
Re-exported by :mod:`modelyard.core.datasets.service`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from modelyard.core.common.errors import NotFoundError
from modelyard.core.datasets.catalog import SAMPLES
from modelyard.core.jobs.runner import JobSpec


@dataclass
class ImportOptions:
    """Overrides for an import. None means: detect it (or, for ``name``, use the file's name)."""

    delimiter: str | None = None
    quotechar: str | None = None
    encoding: str | None = None
    header: bool | None = None
    sheet: str | None = None
    name: str | None = None
    target: str | None = None
    # {column: format} for text columns holding dates ("*": every date column; "text": keep as
    # text); see modelyard.core.datasets.dates for the formats.
    date_formats: dict[str, str] | None = None

    def to_params(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_params(cls, params: ImportOptions | Mapping[str, Any] | None) -> ImportOptions:
        if params is None:
            return cls()
        if isinstance(params, ImportOptions):
            return params
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in params.items() if k in known})


def import_spec(path: str | Path, options: ImportOptions | Mapping[str, Any] | None = None) -> JobSpec:
    """The job that imports ``path`` (run it with ``run_job`` or the GUI's job runner)."""
    opts = ImportOptions.from_params(options)
    src = Path(path).expanduser()
    try:
        src = src.resolve()
    except OSError:
        pass
    return JobSpec.for_kind("dataset.import", f"Import {src.name}", {"path": str(src), "options": opts.to_params()})


def sample_spec(name: str = "iris", dataset_name: str | None = None) -> JobSpec:
    if name not in SAMPLES:
        raise NotFoundError(f"There is no sample dataset '{name}'.", hint=f"Choose one of {', '.join(SAMPLES)}.")
    return JobSpec.for_kind("dataset.sample", f"Import the {name} sample dataset",
                            {"name": name, "dataset_name": dataset_name})
