"""Whether a file is a batch of a model's data at all, decided from its header before anything is imported.

A file that shares no column with the model's inputs (another table, a wrong export) would be
imported, "checked" with every feature missing, declared drift and turn the model's badge red.
It is refused instead, with one line naming the file and the columns expected::

    march.csv has none of churn@v1's columns: age, plan, visits — check it is a batch of this model's data.

**The rule for a partial overlap** (strict): a batch must carry at least half of the model's input
columns (:data:`MIN_SHARE`). With fewer, the model cannot score it and the dataset verdict (a share
of the features drifting) would be decided on a minority of the features, so the file is refused,
naming the columns it has and those it lacks. With half or more, the batch is checked on the
columns it has: each missing one is a ``missing_column`` schema problem (a warning by default), and
the check's summary says which are missing.

The same rule holds for the window (before a job starts), ``modelyard monitor check``, the watch
folder and the job itself (before the import): nothing is stored for a refused file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.core.store import Store

__all__ = ["MIN_SHARE", "admit_batch", "admit_columns", "model_inputs", "read_columns"]

MIN_SHARE = 0.5
SHOWN = 8


def _list(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f", … and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def admit_columns(label: str, ref: str, inputs: Sequence[str], columns: Sequence[str]) -> list[str]:
    """The model inputs ``columns`` lacks; raises when the batch ``label`` cannot be a batch of ``ref``."""
    if not inputs:
        return []
    have = set(columns)
    present = [c for c in inputs if c in have]
    missing = [c for c in inputs if c not in have]
    hint = (f"Its columns are {_list(list(columns))}." if columns else "It has no columns.")
    if not present:
        raise ModelyardError(f"{label} has none of {ref}'s columns: {_list(list(inputs))} — check it is a batch of "
                             "this model's data.", hint=hint)
    if len(present) < MIN_SHARE * len(inputs):
        raise ModelyardError(
            f"{label} has only {len(present)} of {ref}'s {plural(len(inputs), 'column')} ({_list(present)}); it lacks "
            f"{_list(missing)} — check it is a batch of this model's data.",
            hint=f"A batch needs at least half of the model's columns. {hint}")
    return missing


def read_columns(path: str | os.PathLike[str]) -> list[str]:
    """The column names of a data file as the import reads them (only the start of the file is read)."""
    from modelyard.core.datasets import readers

    src = Path(os.fspath(path)).expanduser()
    settings = readers.resolve_settings(src)
    return [str(c) for c in readers.preview_table(src, settings, 1).column_names]


def model_inputs(store: Store, info: Any) -> list[str]:
    """The input columns of model version ``info`` (its signature, else its reference profile)."""
    sig = info.signature or {}
    inputs = [str(c["name"]) for c in sig.get("inputs") or [] if c.get("name")]
    if inputs:
        return inputs
    from modelyard.core.registry import reference as refmod

    profile = refmod.stored_profile(store, info.id) or {}
    target = profile.get("target")
    return [str(c) for c in profile.get("features") or [c for c in (profile.get("columns") or {}) if c != target]]


def admit_batch(store: Store, info: Any, *, path: str | os.PathLike[str] | None = None,
                dataset_version_id: int | None = None) -> list[str]:
    """Refuse a batch file (or stored dataset version) of ``info`` (a model version) that is not a
    batch of its data (see the module docstring); returns the model inputs it lacks."""
    if path is not None:
        label, columns = os.path.basename(os.fspath(path)), read_columns(path)
    elif dataset_version_id is not None:
        from modelyard.core.datasets import service

        dv = service.get_version(store, int(dataset_version_id))
        label = dv.ref
        columns = [str(c["name"]) for c in (dv.schema or {}).get("columns") or []]
    else:
        return []
    return admit_columns(label, info.ref, model_inputs(store, info), columns)
